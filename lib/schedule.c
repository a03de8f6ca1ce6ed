/*
 * schedule.c - learning-rate schedules, as
 * keras/src/optimizers/schedules/learning_rate_schedule.py computes them:
 * the learning rate as a function of the optimizer's iteration count,
 * which BaseOptimizer._get_current_learning_rate passes (the count before
 * the step's increment).  The optimizer's learning_rate is the schedules'
 * initial_learning_rate.  Keras computes in float32; this computes in
 * double and rounds once.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optimizer_impl.h"

static const char *schedule_name(fmnn_schedule_kind kind)
{
    switch (kind) {
    case FMNN_SCHEDULE_EXPONENTIAL_DECAY: return "ExponentialDecay";
    case FMNN_SCHEDULE_PIECEWISE_CONSTANT: return "PiecewiseConstantDecay";
    case FMNN_SCHEDULE_COSINE_DECAY: return "CosineDecay";
    case FMNN_SCHEDULE_INVERSE_TIME_DECAY: return "InverseTimeDecay";
    default: return "a constant learning rate";
    }
}

/* The field table (FMNN__COMMON_FIELDS) has checked each field's range;
 * these are the rules between fields. */
int fmnn__schedule_check(const fmnn_optimizer *o, char *msg, size_t size)
{
    const fmnn_schedule *s = &o->schedule;
    switch (s->kind) {
    case FMNN_SCHEDULE_EXPONENTIAL_DECAY:
    case FMNN_SCHEDULE_INVERSE_TIME_DECAY:
    case FMNN_SCHEDULE_COSINE_DECAY:
        /* Each class's __init__ raises for decay_steps <= 0. */
        if (s->decay_steps <= 0) {
            snprintf(msg, size, "schedule.decay_steps must be > 0 for %s, got %d", schedule_name(s->kind),
                     s->decay_steps);
            return 1;
        }
        /* warmup_target 0 is Keras's None, which has no warm-up. */
        if (s->kind == FMNN_SCHEDULE_COSINE_DECAY && s->warmup_steps > 0 && s->warmup_target == 0.0f) {
            snprintf(msg, size, "schedule.warmup_steps (%d) needs a warmup_target > 0 to warm up to",
                     s->warmup_steps);
            return 1;
        }
        return 0;
    case FMNN_SCHEDULE_PIECEWISE_CONSTANT:
        /* Keras assumes increasing boundaries (its ranges are empty otherwise). */
        for (int i = 1; i < s->n_boundaries; i++)
            if (s->boundaries[i] <= s->boundaries[i - 1]) {
                snprintf(msg, size,
                         "schedule.boundaries must be strictly increasing for PiecewiseConstantDecay, "
                         "got boundaries[%d] = %d after boundaries[%d] = %d", i, s->boundaries[i], i - 1,
                         s->boundaries[i - 1]);
                return 1;
            }
        return 0;
    default:
        return 0;
    }
}

/* CosineDecay._decay_function: from `from` down to alpha * from along half a cosine. */
static double cosine(const fmnn_schedule *s, double step, double from)
{
    const double pi = 3.14159265358979323846, completed = step / s->decay_steps;
    const double decayed = 0.5 * (1.0 + cos(pi * completed));
    return from * ((1.0 - s->alpha) * decayed + s->alpha);
}

static double rate_at(const fmnn_optimizer *o, int64_t iteration)
{
    const fmnn_schedule *s = &o->schedule;
    const double lr = o->learning_rate, step = (double)iteration;
    switch (s->kind) {
    case FMNN_SCHEDULE_EXPONENTIAL_DECAY: { /* ExponentialDecay.__call__ */
        double p = step / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return lr * pow(s->decay_rate, p);
    }
    case FMNN_SCHEDULE_INVERSE_TIME_DECAY: { /* InverseTimeDecay.__call__ */
        double p = step / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return lr / (1.0 + s->decay_rate * p);
    }
    case FMNN_SCHEDULE_COSINE_DECAY: { /* CosineDecay.__call__ */
        if (s->warmup_target == 0.0f) /* warmup_target None */
            return cosine(s, fmin(step, s->decay_steps), lr);
        const double warmup = s->warmup_steps, clamped = fmin(step, (double)s->decay_steps + warmup);
        if (clamped < warmup) /* _warmup_function: linear from lr to warmup_target */
            return (s->warmup_target - lr) * (clamped / warmup) + lr;
        return cosine(s, clamped - warmup, s->warmup_target);
    }
    case FMNN_SCHEDULE_PIECEWISE_CONSTANT: { /* PiecewiseConstantDecay.__call__ */
        /* values[0] while step <= boundaries[0], values[i] while
         * boundaries[i - 1] < step <= boundaries[i], then the last. */
        int i = 0;
        while (i < s->n_boundaries && iteration > s->boundaries[i])
            i++;
        return s->values[i];
    }
    default:
        return lr;
    }
}

float fmnn__learning_rate_at(const fmnn_optimizer *o, int64_t step)
{
    return o->schedule.kind == FMNN_SCHEDULE_CONSTANT ? o->learning_rate : (float)rate_at(o, step);
}

/* ---- constructors ---------------------------------------------------- */

FMNN_API fmnn_schedule fmnn_exponential_decay(int decay_steps, float decay_rate, int staircase)
{
    return (fmnn_schedule){ .kind = FMNN_SCHEDULE_EXPONENTIAL_DECAY, .decay_steps = decay_steps,
                            .decay_rate = decay_rate, .staircase = staircase };
}

FMNN_API fmnn_schedule fmnn_inverse_time_decay(int decay_steps, float decay_rate, int staircase)
{
    return (fmnn_schedule){ .kind = FMNN_SCHEDULE_INVERSE_TIME_DECAY, .decay_steps = decay_steps,
                            .decay_rate = decay_rate, .staircase = staircase };
}

FMNN_API fmnn_schedule fmnn_cosine_decay(int decay_steps, float alpha, int warmup_steps, float warmup_target)
{
    return (fmnn_schedule){ .kind = FMNN_SCHEDULE_COSINE_DECAY, .decay_steps = decay_steps, .alpha = alpha,
                            .warmup_steps = warmup_steps, .warmup_target = warmup_target };
}

/* What it cannot copy (too many boundaries, a NULL array) becomes an
 * n_boundaries that compile refuses, so no error goes unnoticed. */
FMNN_API fmnn_schedule fmnn_piecewise_constant_decay(int n_boundaries, const int *boundaries, const float *values)
{
    fmnn_schedule s = { .kind = FMNN_SCHEDULE_PIECEWISE_CONSTANT, .n_boundaries = n_boundaries };
    if (n_boundaries < 0 || n_boundaries > FMNN_MAX_BOUNDARIES || !values || (n_boundaries > 0 && !boundaries)) {
        s.n_boundaries = n_boundaries >= 0 && n_boundaries <= FMNN_MAX_BOUNDARIES ? -1 : n_boundaries;
        return s;
    }
    if (n_boundaries > 0)
        memcpy(s.boundaries, boundaries, (size_t)n_boundaries * sizeof *boundaries);
    memcpy(s.values, values, ((size_t)n_boundaries + 1) * sizeof *values);
    return s;
}
