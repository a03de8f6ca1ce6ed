/*
 * check_optimizers.c - every optimizer, option and learning-rate schedule
 * against an independent double-precision replay of Keras 3's formulas
 * (keras/src/optimizers/: base_optimizer.py for the order of a step, the
 * clipping and the weight decay; adam.py, sgd.py, rmsprop.py, adagrad.py,
 * adamw.py for the updates; schedules/learning_rate_schedule.py), the
 * schedules at steps worked out by hand, the settings' checks, replacing
 * the optimizer of a compiled model, and saving the new state.
 *
 * The updates are driven through fmnn__optimizer_step on gradients the
 * test writes, so that the replay needs no backward pass; one test runs
 * them through fmnn_model_fit.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "model_impl.h"
#include "testutil.h"

/* ---- a tiny model and its variables ----------------------------------- */

/* Dense(3) on 2 inputs, then Dense(1): Keras's four trainable variables
 * kernel (6), bias (3), kernel (3), bias (1), collated in that order. */
enum { NP = 13, NVARS = 4 };
static const int var_first[NVARS + 1] = { 0, 6, 9, 12, 13 };
static const int var_layer[NVARS] = { 0, 0, 1, 1 };

static fmnn_model *tiny_model(const fmnn_optimizer *o, int freeze_first)
{
    fmnn_model *m;
    EXPECT_OK(fmnn_model_new(&m, 1, (int[]){ 2 }));
    fmnn_layer *first = fmnn_dense(3, NULL);
    if (freeze_first)
        EXPECT_OK(fmnn_layer_set_trainable(first, 0));
    EXPECT_OK(fmnn_model_add(m, first));
    EXPECT_OK(fmnn_model_add(m, fmnn_dense(1, NULL)));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, o, 1));
    size_t n;
    float *w = fmnn_model_weights(m, &n);
    ck_assert_uint_eq(n, NP);
    for (int i = 0; i < NP; i++)
        w[i] = (float)(0.3 * sin(i + 1.0) + 0.1);
    return m;
}

/* The gradients of step s: the kernel of the first layer large, the last
 * bias small, so that a clip takes some variables and leaves others. */
static void gradients(int s, float *g)
{
    static const double amp[NVARS] = { 2.0, 0.5, 1.0, 0.05 };
    for (int v = 0; v < NVARS; v++)
        for (int i = var_first[v]; i < var_first[v + 1]; i++)
            g[i] = (float)(amp[v] * sin(1.7 * i + 0.9 * s + 0.3));
}

/* ---- the replay of Keras's formulas, in double -------------------------- */

/* learning_rate_schedule.py, each class's __call__. */
static double ref_rate(const fmnn_optimizer *o, long step)
{
    const fmnn_schedule *s = &o->schedule;
    const double lr = o->learning_rate, t = (double)step;
    switch (s->kind) {
    case FMNN_SCHEDULE_EXPONENTIAL_DECAY: {
        double p = t / s->decay_steps;
        return lr * pow(s->decay_rate, s->staircase ? floor(p) : p);
    }
    case FMNN_SCHEDULE_INVERSE_TIME_DECAY: {
        double p = t / s->decay_steps;
        return lr / (1.0 + s->decay_rate * (s->staircase ? floor(p) : p));
    }
    case FMNN_SCHEDULE_COSINE_DECAY: {
        double from = lr, x = t;
        if (s->warmup_target != 0.0f) { /* Keras: warmup_target not None */
            x = fmin(x, s->decay_steps + s->warmup_steps);
            if (x < s->warmup_steps)
                return (s->warmup_target - lr) * x / s->warmup_steps + lr;
            x -= s->warmup_steps;
            from = s->warmup_target;
        } else {
            x = fmin(x, s->decay_steps);
        }
        double cosine = 0.5 * (1.0 + cos(3.14159265358979323846 * x / s->decay_steps));
        return from * ((1.0 - s->alpha) * cosine + s->alpha);
    }
    case FMNN_SCHEDULE_PIECEWISE_CONSTANT:
        if (s->n_boundaries == 0 || step <= s->boundaries[0])
            return s->values[0];
        for (int i = 1; i < s->n_boundaries; i++)
            if (step > s->boundaries[i - 1] && step <= s->boundaries[i])
                return s->values[i];
        return s->values[s->n_boundaries];
    default:
        return lr;
    }
}

typedef struct ref_model {
    double w[NP];
    double a[NP], b[NP], c[NP]; /* each optimizer's own state, as Keras names it below */
    long step;
    int frozen[NVARS];
} ref_model;

static void ref_init(ref_model *r, const fmnn_model *m, const fmnn_optimizer *o, int freeze_first)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NP; i++)
        r->w[i] = m->params[i];
    if (o->kind == FMNN_OPTIMIZER_ADAGRAD) /* Adagrad.build: Constant(initial_accumulator_value) */
        for (int i = 0; i < NP; i++)
            r->a[i] = o->adagrad.initial_accumulator_value;
    for (int v = 0; v < NVARS; v++)
        r->frozen[v] = freeze_first && var_layer[v] == 0;
}

/* BaseOptimizer._backend_apply_gradients on the trainable variables. */
static void ref_step(const fmnn_optimizer *o, ref_model *r, const float *gf)
{
    double g[NP];
    for (int i = 0; i < NP; i++)
        g[i] = gf[i];
    const double lr = ref_rate(o, r->step);

    /* _clip_gradients */
    if (o->clipnorm > 0) { /* _clip_by_norm, each variable */
        for (int v = 0; v < NVARS; v++) {
            double sum = 0;
            for (int i = var_first[v]; i < var_first[v + 1]; i++)
                sum += g[i] * g[i];
            double norm = sqrt(sum), c = o->clipnorm;
            for (int i = var_first[v]; i < var_first[v + 1]; i++)
                g[i] = g[i] * c / fmax(norm, c);
        }
    } else if (o->global_clipnorm > 0) { /* clip_by_global_norm */
        double sum = 0, c = o->global_clipnorm;
        for (int v = 0; v < NVARS; v++)
            for (int i = var_first[v]; i < var_first[v + 1]; i++)
                sum += r->frozen[v] ? 0.0 : g[i] * g[i];
        double scale = c * fmin(1.0 / sqrt(sum), 1.0 / c);
        for (int i = 0; i < NP; i++)
            g[i] *= scale;
    } else if (o->clipvalue > 0) {
        for (int i = 0; i < NP; i++)
            g[i] = fmin(fmax(g[i], -o->clipvalue), o->clipvalue);
    }

    for (int v = 0; v < NVARS; v++) {
        if (r->frozen[v])
            continue;
        for (int i = var_first[v]; i < var_first[v + 1]; i++) {
            double *w = &r->w[i];
            *w -= *w * o->weight_decay * lr; /* _apply_weight_decay */
            switch (o->kind) {
            case FMNN_OPTIMIZER_ADAM:
            case FMNN_OPTIMIZER_ADAMW: { /* Adam.update_step: a momentum, b velocity, c velocity_hat */
                const fmnn_adam_settings *s = &o->adam;
                double t = r->step + 1.0;
                double alpha = lr * sqrt(1 - pow(s->beta_2, t)) / (1 - pow(s->beta_1, t));
                r->a[i] += (g[i] - r->a[i]) * (1 - s->beta_1);
                r->b[i] += (g[i] * g[i] - r->b[i]) * (1 - s->beta_2);
                double v = r->b[i];
                if (s->amsgrad)
                    v = r->c[i] = fmax(r->c[i], r->b[i]);
                *w -= r->a[i] * alpha / (sqrt(v) + s->epsilon);
                break;
            }
            case FMNN_OPTIMIZER_SGD: { /* SGD.update_step: a momentum */
                double mu = o->sgd.momentum;
                if (mu != 0) {
                    r->a[i] = r->a[i] * mu - g[i] * lr;
                    *w += o->sgd.nesterov ? r->a[i] * mu - g[i] * lr : r->a[i];
                } else {
                    *w -= g[i] * lr;
                }
                break;
            }
            case FMNN_OPTIMIZER_RMSPROP: { /* RMSprop.update_step: a velocity, b momentum, c average_gradient */
                const fmnn_rmsprop_settings *s = &o->rmsprop;
                r->a[i] = s->rho * r->a[i] + (1 - s->rho) * g[i] * g[i];
                double denominator = r->a[i] + s->epsilon;
                if (s->centered) {
                    r->c[i] = s->rho * r->c[i] + (1 - s->rho) * g[i];
                    denominator = r->a[i] - r->c[i] * r->c[i] + s->epsilon;
                }
                double increment = lr * g[i] / sqrt(denominator);
                if (s->momentum > 0) {
                    r->b[i] = s->momentum * r->b[i] + increment;
                    *w -= r->b[i];
                } else {
                    *w -= increment;
                }
                break;
            }
            case FMNN_OPTIMIZER_ADAGRAD: /* Adagrad.update_step: a accumulator */
                r->a[i] += g[i] * g[i];
                *w -= lr * g[i] / sqrt(r->a[i] + o->adagrad.epsilon);
                break;
            }
        }
    }
    r->step++;
}

/* ---- every optimizer and option against the replay ---------------------- */

/* Within 1e-6 of the weight, or of the weights' scale (0.1) for one near 0,
 * where float's rounding of the larger terms that cancel is all there is. */
#define CLOSE(got, want) (fabs((double)(got) - (want)) <= 1e-6 * fmax(fabs(want), 0.1))

static fmnn_optimizer with_lr(fmnn_optimizer o, float lr)
{
    o.learning_rate = lr;
    return o;
}

static fmnn_optimizer opt_adam(void) { return with_lr(fmnn_adam(), 0.01f); }
static fmnn_optimizer opt_adam_amsgrad(void)
{
    fmnn_optimizer o = opt_adam();
    o.adam.amsgrad = 1;
    o.adam.epsilon = 1e-2f; /* large, so that where it goes shows */
    o.adam.beta_2 = 0.5f; /* v falls fast, so the maximum differs from v */
    return o;
}
static fmnn_optimizer opt_adamw(void) { return with_lr(fmnn_adamw(), 0.05f); }
static fmnn_optimizer opt_adamw_amsgrad(void)
{
    fmnn_optimizer o = opt_adamw();
    o.adam.amsgrad = 1;
    o.adam.beta_2 = 0.6f;
    return o;
}
static fmnn_optimizer opt_sgd(void) { return fmnn_sgd(0.1f, 0.0f); }
static fmnn_optimizer opt_sgd_momentum(void) { return fmnn_sgd(0.1f, 0.9f); }
static fmnn_optimizer opt_sgd_nesterov(void)
{
    fmnn_optimizer o = fmnn_sgd(0.05f, 0.8f);
    o.sgd.nesterov = 1;
    return o;
}
static fmnn_optimizer opt_rmsprop(void) { return with_lr(fmnn_rmsprop(), 0.01f); }
static fmnn_optimizer opt_rmsprop_centered(void)
{
    fmnn_optimizer o = opt_rmsprop();
    o.rmsprop.centered = 1;
    o.rmsprop.epsilon = 1e-2f; /* large, so that where it goes shows */
    return o;
}
static fmnn_optimizer opt_rmsprop_momentum(void)
{
    fmnn_optimizer o = opt_rmsprop();
    o.rmsprop.momentum = 0.7f;
    o.rmsprop.epsilon = 1e-3f;
    return o;
}
static fmnn_optimizer opt_rmsprop_both(void)
{
    fmnn_optimizer o = opt_rmsprop_centered();
    o.rmsprop.momentum = 0.5f;
    o.rmsprop.rho = 0.8f;
    return o;
}
static fmnn_optimizer opt_adagrad(void) { return with_lr(fmnn_adagrad(), 0.1f); }
static fmnn_optimizer opt_adagrad_zero_start(void)
{
    fmnn_optimizer o = opt_adagrad();
    o.adagrad.initial_accumulator_value = 0.0f;
    o.adagrad.epsilon = 1e-3f;
    return o;
}
static fmnn_optimizer opt_adam_clipnorm(void)
{
    fmnn_optimizer o = opt_adam();
    o.clipnorm = 0.8f; /* takes the first kernel and both of the ... first bias (norm ~0.87) */
    return o;
}
static fmnn_optimizer opt_sgd_clipnorm(void)
{
    fmnn_optimizer o = opt_sgd_momentum();
    o.clipnorm = 1.0f;
    return o;
}
static fmnn_optimizer opt_sgd_clipvalue(void)
{
    fmnn_optimizer o = opt_sgd();
    o.clipvalue = 0.3f;
    return o;
}
static fmnn_optimizer opt_rmsprop_global_clipnorm(void)
{
    fmnn_optimizer o = opt_rmsprop_momentum();
    o.global_clipnorm = 1.5f;
    return o;
}
static fmnn_optimizer opt_sgd_global_clipnorm_large(void)
{
    fmnn_optimizer o = opt_sgd();
    o.global_clipnorm = 100.0f; /* never takes: the scale is clip * (1 / clip) */
    return o;
}
static fmnn_optimizer opt_sgd_weight_decay(void)
{
    fmnn_optimizer o = opt_sgd_momentum();
    o.weight_decay = 0.5f;
    return o;
}
static fmnn_optimizer opt_adagrad_weight_decay(void)
{
    fmnn_optimizer o = opt_adagrad();
    o.weight_decay = 0.2f;
    o.clipvalue = 1.0f;
    return o;
}
static fmnn_optimizer opt_sgd_exponential(void)
{
    fmnn_optimizer o = opt_sgd_weight_decay();
    o.schedule = fmnn_exponential_decay(2, 0.5f, 0);
    return o;
}
static fmnn_optimizer opt_adam_exponential_staircase(void)
{
    fmnn_optimizer o = opt_adam();
    o.schedule = fmnn_exponential_decay(2, 0.25f, 1);
    return o;
}
static fmnn_optimizer opt_adamw_piecewise(void)
{
    fmnn_optimizer o = opt_adamw();
    o.schedule = fmnn_piecewise_constant_decay(2, (int[]){ 1, 3 }, (float[]){ 0.1f, 0.03f, 0.01f });
    return o;
}
static fmnn_optimizer opt_sgd_cosine_warmup(void)
{
    fmnn_optimizer o = opt_sgd_nesterov();
    o.learning_rate = 0.0f; /* the warm-up starts from 0, as Keras's examples do */
    o.schedule = fmnn_cosine_decay(3, 0.1f, 2, 0.2f);
    o.weight_decay = 0.1f;
    return o;
}
static fmnn_optimizer opt_rmsprop_cosine(void)
{
    fmnn_optimizer o = opt_rmsprop_centered();
    o.schedule = fmnn_cosine_decay(4, 0.0f, 0, 0.0f);
    return o;
}
static fmnn_optimizer opt_adam_cosine_from_target(void)
{
    fmnn_optimizer o = fmnn_adam();
    o.schedule = fmnn_cosine_decay(4, 0.0f, 0, 0.05f); /* no warm-up steps: the decay starts from the target */
    return o;
}
static fmnn_optimizer opt_adagrad_inverse_time(void)
{
    fmnn_optimizer o = opt_adagrad();
    o.schedule = fmnn_inverse_time_decay(2, 1.5f, 0);
    return o;
}
static fmnn_optimizer opt_adam_inverse_time_staircase(void)
{
    fmnn_optimizer o = opt_adam_amsgrad();
    o.schedule = fmnn_inverse_time_decay(2, 3.0f, 1);
    o.global_clipnorm = 1.0f;
    return o;
}

static const struct {
    const char *name;
    fmnn_optimizer (*make)(void);
    int freeze_first;
} cases[] = {
    { "Adam", opt_adam, 0 },
    { "Adam amsgrad", opt_adam_amsgrad, 0 },
    { "AdamW", opt_adamw, 0 },
    { "AdamW amsgrad", opt_adamw_amsgrad, 0 },
    { "SGD", opt_sgd, 0 },
    { "SGD momentum", opt_sgd_momentum, 0 },
    { "SGD nesterov", opt_sgd_nesterov, 0 },
    { "RMSprop", opt_rmsprop, 0 },
    { "RMSprop centered", opt_rmsprop_centered, 0 },
    { "RMSprop momentum", opt_rmsprop_momentum, 0 },
    { "RMSprop centered momentum", opt_rmsprop_both, 0 },
    { "Adagrad", opt_adagrad, 0 },
    { "Adagrad from 0", opt_adagrad_zero_start, 0 },
    { "Adam clipnorm", opt_adam_clipnorm, 0 },
    { "SGD momentum clipnorm", opt_sgd_clipnorm, 0 },
    { "SGD clipvalue", opt_sgd_clipvalue, 0 },
    { "RMSprop global_clipnorm", opt_rmsprop_global_clipnorm, 0 },
    { "RMSprop global_clipnorm, first layer frozen", opt_rmsprop_global_clipnorm, 1 },
    { "SGD global_clipnorm that never takes", opt_sgd_global_clipnorm_large, 0 },
    { "SGD weight decay", opt_sgd_weight_decay, 0 },
    { "SGD weight decay, first layer frozen", opt_sgd_weight_decay, 1 },
    { "Adagrad weight decay clipvalue", opt_adagrad_weight_decay, 0 },
    { "SGD exponential decay", opt_sgd_exponential, 0 },
    { "Adam exponential decay staircase", opt_adam_exponential_staircase, 0 },
    { "AdamW piecewise constant", opt_adamw_piecewise, 0 },
    { "SGD nesterov cosine warm-up", opt_sgd_cosine_warmup, 0 },
    { "RMSprop centered cosine", opt_rmsprop_cosine, 0 },
    { "Adam cosine from the warm-up target", opt_adam_cosine_from_target, 0 },
    { "Adagrad inverse time", opt_adagrad_inverse_time, 0 },
    { "Adam amsgrad inverse time staircase global_clipnorm", opt_adam_inverse_time_staircase, 0 },
};
enum { N_CASES = sizeof cases / sizeof *cases, STEPS = 6 };

START_TEST(test_against_keras_replay)
{
    const fmnn_optimizer o = cases[_i].make();
    fmnn_model *m = tiny_model(&o, cases[_i].freeze_first);
    ref_model r;
    ref_init(&r, m, &o, cases[_i].freeze_first);
    double moved = 0;
    for (int s = 0; s < STEPS; s++) {
        gradients(s, m->grads);
        float lr;
        EXPECT_OK(fmnn_model_learning_rate(m, &lr));
        ck_assert_msg(fabs(lr - ref_rate(&o, s)) <= 1e-6 * fabs(ref_rate(&o, s)) + 1e-12,
                      "%s, step %d: learning rate %.9g, Keras's %.9g", cases[_i].name, s, (double)lr,
                      ref_rate(&o, s));
        ref_step(&o, &r, m->grads);
        EXPECT_OK(fmnn__optimizer_step(m));
        ck_assert_int_eq(m->step, s + 1);
        for (int i = 0; i < NP; i++) {
            const double got = m->params[i], want = r.w[i];
            ck_assert_msg(CLOSE(got, want), "%s, step %d, weight %d: %.9g, Keras's %.9g",
                          cases[_i].name, s, i, got, want);
        }
    }
    /* The frozen layer's weights did not move; the others did. */
    for (int i = 0; i < NP; i++) {
        double d = fabs(m->params[i] - (0.3 * sin(i + 1.0) + 0.1));
        if (cases[_i].freeze_first && i < var_first[2])
            ck_assert_msg(m->params[i] == (float)(0.3 * sin(i + 1.0) + 0.1), "%s: frozen weight %d moved",
                          cases[_i].name, i);
        else
            moved += d;
    }
    ck_assert_msg(moved > 1e-4, "%s: the weights hardly moved (%g)", cases[_i].name, moved);
    fmnn_model_free(m);
}
END_TEST

/* The clips engage in the cases above: without them the weights differ. */
START_TEST(test_clips_engage)
{
    fmnn_optimizer (*clipped[])(void) = { opt_adam_clipnorm, opt_sgd_clipvalue, opt_rmsprop_global_clipnorm };
    for (size_t k = 0; k < sizeof clipped / sizeof *clipped; k++) {
        fmnn_optimizer o = clipped[k]();
        fmnn_optimizer plain = o;
        plain.clipnorm = plain.clipvalue = plain.global_clipnorm = 0.0f;
        fmnn_model *a = tiny_model(&o, 0), *b = tiny_model(&plain, 0);
        gradients(0, a->grads);
        gradients(0, b->grads);
        EXPECT_OK(fmnn__optimizer_step(a));
        EXPECT_OK(fmnn__optimizer_step(b));
        int differ = 0;
        for (int i = 0; i < NP; i++)
            differ += a->params[i] != b->params[i];
        ck_assert_msg(differ > 0, "clip case %zu changed nothing", k);
        /* and clipnorm leaves the small last bias (norm 0.05 < 0.8) alone */
        if (o.clipnorm > 0)
            ck_assert(a->params[12] == b->params[12]);
        fmnn_model_free(a);
        fmnn_model_free(b);
    }
}
END_TEST

/* ---- schedules at steps worked out by hand ------------------------------ */

static float rate_at_step(fmnn_model *m, int64_t step)
{
    m->step = step;
    float lr = -1.0f;
    EXPECT_OK(fmnn_model_learning_rate(m, &lr));
    return lr;
}

#define ASSERT_RATE(m, step, want)                                                                  \
    do {                                                                                            \
        float got_ = rate_at_step((m), (step));                                                     \
        ck_assert_msg(fabs(got_ - (want)) <= 1e-6 * fabs(want) + 1e-9, "line %d: step %d: %.9g, want %.9g", \
                      __LINE__, (int)(step), (double)got_, (double)(want));                         \
    } while (0)

static fmnn_model *scheduled(float lr, fmnn_schedule s)
{
    fmnn_optimizer o = fmnn_sgd(lr, 0.0f);
    o.schedule = s;
    return tiny_model(&o, 0);
}

START_TEST(test_schedules_by_hand)
{
    /* ExponentialDecay(0.1, 10, 0.5): 0.1 * 0.5^(step / 10) */
    fmnn_model *m = scheduled(0.1f, fmnn_exponential_decay(10, 0.5f, 0));
    ASSERT_RATE(m, 0, 0.1);
    ASSERT_RATE(m, 5, 0.1 * 0.70710678118654752);
    ASSERT_RATE(m, 10, 0.05);
    ASSERT_RATE(m, 30, 0.0125);
    fmnn_model_free(m);
    /* staircase: floor(step / 10) */
    m = scheduled(0.1f, fmnn_exponential_decay(10, 0.5f, 1));
    ASSERT_RATE(m, 9, 0.1);
    ASSERT_RATE(m, 10, 0.05);
    ASSERT_RATE(m, 19, 0.05);
    ASSERT_RATE(m, 20, 0.025);
    fmnn_model_free(m);

    /* InverseTimeDecay(0.1, 10, 1.0): 0.1 / (1 + step / 10) */
    m = scheduled(0.1f, fmnn_inverse_time_decay(10, 1.0f, 0));
    ASSERT_RATE(m, 5, 0.1 / 1.5);
    ASSERT_RATE(m, 10, 0.05);
    ASSERT_RATE(m, 30, 0.025);
    fmnn_model_free(m);
    m = scheduled(0.1f, fmnn_inverse_time_decay(10, 1.0f, 1));
    ASSERT_RATE(m, 5, 0.1);
    ASSERT_RATE(m, 25, 0.1 / 3);
    fmnn_model_free(m);

    /* PiecewiseConstantDecay([10, 20], [1, 0.5, 0.1]): a value holds through
     * its boundary step and changes one step after it. */
    m = scheduled(1.0f, fmnn_piecewise_constant_decay(2, (int[]){ 10, 20 }, (float[]){ 1.0f, 0.5f, 0.1f }));
    ASSERT_RATE(m, 0, 1.0);
    ASSERT_RATE(m, 10, 1.0);
    ASSERT_RATE(m, 11, 0.5);
    ASSERT_RATE(m, 20, 0.5);
    ASSERT_RATE(m, 21, 0.1);
    ASSERT_RATE(m, 1000000, 0.1);
    fmnn_model_free(m);
    /* No boundary: the one value. */
    m = scheduled(1.0f, fmnn_piecewise_constant_decay(0, NULL, (float[]){ 0.25f }));
    ASSERT_RATE(m, 0, 0.25);
    ASSERT_RATE(m, 99, 0.25);
    fmnn_model_free(m);

    /* CosineDecay(1.0, 100, alpha 0.1): 0.1 + 0.9 * (1 + cos(pi * step / 100)) / 2,
     * held at alpha past decay_steps. */
    m = scheduled(1.0f, fmnn_cosine_decay(100, 0.1f, 0, 0.0f));
    ASSERT_RATE(m, 0, 1.0);
    ASSERT_RATE(m, 50, 0.55);
    ASSERT_RATE(m, 100, 0.1);
    ASSERT_RATE(m, 500, 0.1);
    fmnn_model_free(m);
    /* With a warm-up from 0 to 1.0 over 10 steps, then the decay over 100. */
    m = scheduled(0.0f, fmnn_cosine_decay(100, 0.0f, 10, 1.0f));
    ASSERT_RATE(m, 0, 0.0);
    ASSERT_RATE(m, 5, 0.5);
    ASSERT_RATE(m, 10, 1.0);
    ASSERT_RATE(m, 60, 0.5);
    ASSERT_RATE(m, 110, 0.0);
    ASSERT_RATE(m, 5000, 0.0);
    fmnn_model_free(m);
    /* A warm-up from 0.5 to 0.1 goes down, linearly. */
    m = scheduled(0.5f, fmnn_cosine_decay(10, 0.0f, 4, 0.1f));
    ASSERT_RATE(m, 1, 0.4);
    ASSERT_RATE(m, 4, 0.1);
    fmnn_model_free(m);
}
END_TEST

/* A schedule runs through fit: SGD on a line, as check_train's
 * test_sgd_by_hand, with the rate of each step from a piecewise schedule. */
START_TEST(test_schedule_through_fit)
{
    fmnn_optimizer o = fmnn_sgd(0.1f, 0.0f);
    o.schedule = fmnn_piecewise_constant_decay(1, (int[]){ 1 }, (float[]){ 0.1f, 0.02f });
    o.clipvalue = 2.0f;
    fmnn_model *m;
    EXPECT_OK(fmnn_model_new(&m, 1, (int[]){ 1 }));
    EXPECT_OK(fmnn_model_add(m, fmnn_dense(1, NULL)));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1));
    float *p = fmnn_model_weights(m, NULL);
    p[0] = 0.5f;
    p[1] = -0.2f;
    fmnn_tensor *x, *y;
    EXPECT_OK(fmnn_tensor_new(&x, 2, (int[]){ 1, 1 }));
    EXPECT_OK(fmnn_tensor_new(&y, 2, (int[]){ 1, 1 }));
    fmnn_tensor_data(x)[0] = 1.5f;
    fmnn_tensor_data(y)[0] = 2.0f;
    fmnn_fit_options fo = FMNN_FIT_OPTIONS_INIT;
    fo.batch_size = 1;
    fo.epochs = 1;
    fo.verbose = 0;
    double w[2] = { 0.5, -0.2 };
    for (int step = 0; step < 4; step++) {
        double e = w[0] * 1.5 + w[1] - 2.0, g[2] = { 2 * e * 1.5, 2 * e };
        double lr = step <= 1 ? 0.1 : 0.02;
        for (int k = 0; k < 2; k++)
            w[k] -= lr * fmin(fmax(g[k], -2.0), 2.0);
        EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
        ck_assert_msg(fabs(p[0] - w[0]) <= 1e-6 * fabs(w[0]) && fabs(p[1] - w[1]) <= 1e-6 * fabs(w[1]),
                      "step %d: (%.9g, %.9g), by hand (%.9g, %.9g)", step, (double)p[0], (double)p[1], w[0], w[1]);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- the same bits for any thread count, and no allocation -------------- */

static fmnn_model *wide_model(const fmnn_optimizer *o)
{
    fmnn_model *m;
    EXPECT_OK(fmnn_model_new(&m, 1, (int[]){ 200 }));
    EXPECT_OK(fmnn_model_add(m, fmnn_dense(300, NULL))); /* 60300 parameters: the threaded path */
    EXPECT_OK(fmnn_model_add(m, fmnn_dense(3, NULL)));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, o, 7));
    return m;
}

START_TEST(test_threads_give_the_same_bits)
{
    fmnn_optimizer o = fmnn_rmsprop();
    o.rmsprop.centered = 1;
    o.rmsprop.momentum = 0.5f;
    o.weight_decay = 0.01f;
    o.schedule = fmnn_cosine_decay(10, 0.1f, 2, 0.01f);
    for (int clip = 0; clip < 2; clip++) {
        if (clip)
            o.global_clipnorm = 0.5f;
        else
            o.clipnorm = 0.25f;
        const int saved = fmnn_get_num_threads();
        fmnn_model *one = wide_model(&o), *two = wide_model(&o);
        for (int s = 0; s < 3; s++) {
            for (size_t i = 0; i < one->n_params; i++)
                one->grads[i] = two->grads[i] = (float)sin(0.37 * (double)i + s);
            EXPECT_OK(fmnn_set_num_threads(1));
            EXPECT_OK(fmnn__optimizer_step(one));
            EXPECT_OK(fmnn_set_num_threads(2));
            EXPECT_OK(fmnn__optimizer_step(two));
        }
        EXPECT_OK(fmnn_set_num_threads(saved));
        ck_assert_mem_eq(one->params, two->params, one->n_params * sizeof(float));
        for (int k = 0; k < one->slots.count; k++)
            ck_assert_mem_eq(one->slots.arrays[k], two->slots.arrays[k], one->n_params * sizeof(float));
        fmnn_model_free(one);
        fmnn_model_free(two);
        o.clipnorm = 0.0f;
    }
}
END_TEST

START_TEST(test_step_does_not_allocate)
{
    fmnn_optimizer o = fmnn_adamw();
    o.adam.amsgrad = 1;
    o.clipnorm = 0.5f;
    o.schedule = fmnn_exponential_decay(3, 0.5f, 1);
    fmnn_model *m = wide_model(&o);
    for (size_t i = 0; i < m->n_params; i++)
        m->grads[i] = (float)cos((double)i);
    testutil_alloc_install(0); /* the first allocation would fail */
    testutil_alloc_arm(1);
    for (int s = 0; s < 3; s++)
        EXPECT_OK(fmnn__optimizer_step(m));
    const int injected = testutil_alloc_injected();
    testutil_alloc_remove();
    ck_assert_msg(!injected, "an optimizer step allocated");
    fmnn_model_free(m);
}
END_TEST

/* An update that would overflow is refused whole, clipping or not. */
START_TEST(test_overflow_refused_whole)
{
    fmnn_optimizer o = fmnn_sgd(1.0f, 0.0f);
    o.global_clipnorm = 1.0f;
    fmnn_model *m = tiny_model(&o, 0);
    float before[NP];
    memcpy(before, m->params, sizeof before);
    gradients(0, m->grads);
    m->grads[3] = INFINITY; /* the global norm is Inf: Keras's scale is NaN */
    ck_assert_int_eq(fmnn__optimizer_step(m), FMNN_ENUMERIC);
    ck_assert_mem_eq(m->params, before, sizeof before);
    ck_assert_int_eq(m->step, 0);
    fmnn_model_free(m);
    o = fmnn_sgd(1.0f, 0.0f);
    o.clipvalue = 1.0f;
    m = tiny_model(&o, 0);
    memcpy(before, m->params, sizeof before);
    gradients(0, m->grads);
    m->grads[12] = NAN; /* a clip must not turn NaN into a bound */
    ck_assert_int_eq(fmnn__optimizer_step(m), FMNN_ENUMERIC);
    ck_assert_mem_eq(m->params, before, sizeof before);
    fmnn_model_free(m);
}
END_TEST

/* ---- settings ----------------------------------------------------------- */

START_TEST(test_constructors_are_keras_defaults)
{
    fmnn_optimizer a = fmnn_adam();
    ck_assert(a.learning_rate == 1e-3f && a.adam.beta_1 == 0.9f && a.adam.beta_2 == 0.999f &&
              a.adam.epsilon == 1e-7f && a.adam.amsgrad == 0 && a.weight_decay == 0.0f);
    fmnn_optimizer w = fmnn_adamw(); /* adamw.py: weight_decay=0.004 */
    ck_assert_int_eq(w.kind, FMNN_OPTIMIZER_ADAMW);
    ck_assert(w.learning_rate == 1e-3f && w.adam.beta_1 == 0.9f && w.adam.beta_2 == 0.999f &&
              w.adam.epsilon == 1e-7f && w.weight_decay == 0.004f);
    fmnn_optimizer r = fmnn_rmsprop(); /* rmsprop.py */
    ck_assert_int_eq(r.kind, FMNN_OPTIMIZER_RMSPROP);
    ck_assert(r.learning_rate == 1e-3f && r.rmsprop.rho == 0.9f && r.rmsprop.momentum == 0.0f &&
              r.rmsprop.epsilon == 1e-7f && r.rmsprop.centered == 0);
    fmnn_optimizer g = fmnn_adagrad(); /* adagrad.py */
    ck_assert_int_eq(g.kind, FMNN_OPTIMIZER_ADAGRAD);
    ck_assert(g.learning_rate == 1e-3f && g.adagrad.initial_accumulator_value == 0.1f &&
              g.adagrad.epsilon == 1e-7f);
    const fmnn_optimizer all[] = { a, w, r, g, fmnn_sgd(0.01f, 0.0f) };
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
        ck_assert(all[k].clipnorm == 0.0f && all[k].clipvalue == 0.0f && all[k].global_clipnorm == 0.0f);
        ck_assert_int_eq(all[k].schedule.kind, FMNN_SCHEDULE_CONSTANT);
    }
    fmnn_schedule p = fmnn_piecewise_constant_decay(FMNN_MAX_BOUNDARIES + 1, (int[17]){ 0 }, (float[18]){ 0 });
    ck_assert_int_eq(p.kind, FMNN_SCHEDULE_PIECEWISE_CONSTANT);
    ck_assert_int_eq(p.n_boundaries, FMNN_MAX_BOUNDARIES + 1);
}
END_TEST

typedef struct bad_case {
    const char *what;
    fmnn_optimizer o;
    const char *words[3]; /* each in the message */
} bad_case;

START_TEST(test_bad_settings_refused)
{
    fmnn_optimizer o;
    bad_case bad[40];
    int n = 0;
#define BAD(what_, edit, w1, w2, w3)                                      \
    do {                                                                  \
        o = fmnn_adam();                                                  \
        edit;                                                             \
        bad[n++] = (bad_case){ what_, o, { w1, w2, w3 } };                \
    } while (0)
    BAD("two clips", (o.clipnorm = 1.0f, o.clipvalue = 0.5f), "only one of", "clipnorm", "clipvalue");
    BAD("three clips", (o.clipnorm = 1, o.clipvalue = 1, o.global_clipnorm = 1), "only one of", "Adam", NULL);
    BAD("negative weight decay", o.weight_decay = -0.1f, "Adam", "weight_decay", NULL);
    BAD("NaN weight decay", o.weight_decay = NAN, "weight_decay", NULL, NULL);
    BAD("negative clipnorm", o.clipnorm = -1.0f, "clipnorm", NULL, NULL);
    BAD("infinite clipvalue", o.clipvalue = INFINITY, "clipvalue", NULL, NULL);
    BAD("negative global_clipnorm", o.global_clipnorm = -2.0f, "global_clipnorm", NULL, NULL);
    BAD("amsgrad 2", o.adam.amsgrad = 2, "amsgrad", NULL, NULL);
    BAD("unknown schedule kind", o.schedule.kind = (fmnn_schedule_kind)9, "unknown schedule.kind 9", NULL, NULL);
    BAD("negative schedule kind", o.schedule.kind = (fmnn_schedule_kind)-1, "schedule.kind", NULL, NULL);
    BAD("decay_steps 0", o.schedule = fmnn_exponential_decay(0, 0.5f, 0), "ExponentialDecay", "decay_steps", NULL);
    BAD("negative decay_steps", o.schedule = fmnn_inverse_time_decay(-3, 0.5f, 0), "decay_steps", NULL, NULL);
    BAD("cosine decay_steps 0", o.schedule = fmnn_cosine_decay(0, 0.0f, 0, 0.0f), "CosineDecay", "decay_steps", NULL);
    BAD("negative decay_rate", o.schedule = fmnn_exponential_decay(5, -0.5f, 0), "decay_rate", NULL, NULL);
    BAD("staircase 2", o.schedule = fmnn_exponential_decay(5, 0.5f, 2), "staircase", NULL, NULL);
    BAD("alpha 1.5", o.schedule = fmnn_cosine_decay(5, 1.5f, 0, 0.0f), "alpha", NULL, NULL);
    BAD("negative warmup_steps", o.schedule = fmnn_cosine_decay(5, 0.0f, -1, 0.1f), "warmup_steps", NULL, NULL);
    BAD("NaN warmup_target", o.schedule = fmnn_cosine_decay(5, 0.0f, 3, NAN), "warmup_target", NULL, NULL);
    BAD("a warm-up to no target", o.schedule = fmnn_cosine_decay(5, 0.0f, 3, 0.0f), "needs a warmup_target", NULL, NULL);
    BAD("boundaries not increasing",
        o.schedule = fmnn_piecewise_constant_decay(3, (int[]){ 5, 9, 9 }, (float[]){ 1, 1, 1, 1 }),
        "strictly increasing", "boundaries[2]", NULL);
    BAD("boundaries decreasing", o.schedule = fmnn_piecewise_constant_decay(2, (int[]){ 5, 2 }, (float[]){ 1, 1, 1 }),
        "PiecewiseConstantDecay", "boundaries[1] = 2", NULL);
    BAD("a negative boundary", o.schedule = fmnn_piecewise_constant_decay(1, (int[]){ -1 }, (float[]){ 1, 1 }),
        "schedule.boundaries[0]", NULL, NULL);
    BAD("17 boundaries", o.schedule = fmnn_piecewise_constant_decay(17, (int[17]){ 0 }, (float[18]){ 0 }),
        "schedule.n_boundaries", "17", NULL);
    BAD("NULL values", o.schedule = fmnn_piecewise_constant_decay(1, (int[]){ 3 }, NULL), "schedule.n_boundaries",
        NULL, NULL);
    BAD("a NaN value", o.schedule = fmnn_piecewise_constant_decay(1, (int[]){ 3 }, (float[]){ 1, NAN }),
        "schedule.values[1]", NULL, NULL);
    BAD("a negative value", o.schedule = fmnn_piecewise_constant_decay(1, (int[]){ 3 }, (float[]){ -1, 1 }),
        "schedule.values[0]", NULL, NULL);
    BAD("learning rate 0 without a warm-up", o.learning_rate = 0.0f, "learning_rate", "> 0", NULL);
    BAD("learning rate 0 with a cosine decay but no warm-up",
        (o.learning_rate = 0.0f, o.schedule = fmnn_cosine_decay(5, 0.0f, 0, 1.0f)), "learning_rate", NULL, NULL);
    BAD("reserved", o.reserved[7] = 1.0f, "reserved[7]", NULL, NULL);
    BAD("RMSprop centered 2", (o = fmnn_rmsprop(), o.rmsprop.centered = 2), "RMSprop", "centered", NULL);
    BAD("RMSprop rho 1", (o = fmnn_rmsprop(), o.rmsprop.rho = 1.0f), "RMSprop", "rho", NULL);
    BAD("RMSprop momentum -0.5", (o = fmnn_rmsprop(), o.rmsprop.momentum = -0.5f), "RMSprop", "momentum", NULL);
    BAD("RMSprop negative epsilon", (o = fmnn_rmsprop(), o.rmsprop.epsilon = -1e-7f), "RMSprop", "epsilon", NULL);
    BAD("Adagrad negative accumulator", (o = fmnn_adagrad(), o.adagrad.initial_accumulator_value = -0.1f), "Adagrad",
        "initial_accumulator_value", NULL);
    BAD("Adagrad NaN epsilon", (o = fmnn_adagrad(), o.adagrad.epsilon = NAN), "Adagrad", "epsilon", NULL);
    BAD("AdamW negative weight decay", (o = fmnn_adamw(), o.weight_decay = -0.004f), "AdamW", "weight_decay", NULL);
    BAD("SGD with two clips", (o = fmnn_sgd(0.1f, 0.0f), o.clipvalue = 1, o.global_clipnorm = 1), "SGD",
        "only one of", NULL);
    BAD("unknown kind", o.kind = (fmnn_optimizer_kind)5, "unknown optimizer kind 5", NULL, NULL);
#undef BAD
    ck_assert_int_le(n, (int)(sizeof bad / sizeof *bad));

    fmnn_optimizer good = fmnn_rmsprop();
    fmnn_model *set = tiny_model(&good, 0);
    for (int k = 0; k < n; k++) {
        fmnn_model *m;
        EXPECT_OK(fmnn_model_new(&m, 1, (int[]){ 2 }));
        EXPECT_OK(fmnn_model_add(m, fmnn_dense(1, NULL)));
        fmnn_clear_error();
        int st = fmnn_model_compile(m, FMNN_LOSS_MSE, &bad[k].o, 1);
        ck_assert_msg(st == FMNN_EINVAL, "%s: compile gave %d (%s)", bad[k].what, st, fmnn_last_error());
        for (int i = 0; i < 3; i++)
            ck_assert_msg(!bad[k].words[i] || strstr(fmnn_last_error(), bad[k].words[i]),
                          "%s: \"%s\" does not say \"%s\"", bad[k].what, fmnn_last_error(), bad[k].words[i]);
        ck_assert_msg(strstr(fmnn_last_error(), "fmnn_model_compile"), "%s: %s", bad[k].what, fmnn_last_error());
        fmnn_model_free(m);
        /* set_optimizer refuses them alike, changing nothing. */
        fmnn_optimizer before;
        EXPECT_OK(fmnn_model_get_optimizer(set, &before));
        fmnn_clear_error();
        st = fmnn_model_set_optimizer(set, &bad[k].o);
        ck_assert_msg(st == FMNN_EINVAL, "%s: set_optimizer gave %d", bad[k].what, st);
        ck_assert_msg(strstr(fmnn_last_error(), "fmnn_model_set_optimizer") && strstr(fmnn_last_error(), bad[k].words[0]),
                      "%s: %s", bad[k].what, fmnn_last_error());
        fmnn_optimizer after;
        EXPECT_OK(fmnn_model_get_optimizer(set, &after));
        ck_assert_mem_eq(&before, &after, sizeof before);
    }
    fmnn_model_free(set);
}
END_TEST

/* Edge values that are allowed: a warm-up from 0, 16 boundaries, a clip
 * of 0 beside another (0 is off), weight decay on AdamW of 0. */
START_TEST(test_edge_settings_accepted)
{
    fmnn_optimizer ok[6];
    ok[0] = fmnn_sgd(0.0f, 0.0f);
    ok[0].learning_rate = 0.0f;
    ok[0].schedule = fmnn_cosine_decay(10, 0.0f, 5, 0.1f);
    int b[16];
    float v[17];
    for (int i = 0; i < 16; i++)
        b[i] = 10 * i, v[i] = 1.0f / (float)(i + 1);
    v[16] = 0.0f;
    ok[1] = fmnn_adam();
    ok[1].schedule = fmnn_piecewise_constant_decay(16, b, v);
    ok[2] = fmnn_rmsprop();
    ok[2].clipnorm = 1.0f; /* the others 0 */
    ok[3] = fmnn_adamw();
    ok[3].weight_decay = 0.0f;
    ok[4] = fmnn_adagrad();
    ok[4].adagrad.initial_accumulator_value = 0.0f;
    ok[4].schedule = fmnn_exponential_decay(1, 0.0f, 1);
    ok[5] = fmnn_adam();
    ok[5].schedule = fmnn_inverse_time_decay(INT32_MAX, 0.0f, 0);
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        fmnn_model *m = tiny_model(&ok[k], 0);
        fmnn_model_free(m);
    }
}
END_TEST

/* ---- replacing the optimizer of a compiled model ------------------------ */

static void steps(fmnn_model *m, int n)
{
    for (int s = 0; s < n; s++) {
        gradients((int)m->step, m->grads);
        EXPECT_OK(fmnn__optimizer_step(m));
    }
}

START_TEST(test_set_optimizer_keeps_or_resets)
{
    fmnn_optimizer adam = fmnn_adam();
    fmnn_model *m = tiny_model(&adam, 0);
    steps(m, 2);
    float m_before[NP], v_before[NP];
    memcpy(m_before, m->slots.arrays[0], sizeof m_before);
    memcpy(v_before, m->slots.arrays[1], sizeof v_before);

    /* New hyperparameters, a clip and a schedule: the same state and step. */
    fmnn_optimizer tuned = adam;
    tuned.learning_rate = 0.05f;
    tuned.adam.beta_1 = 0.5f;
    tuned.clipnorm = 1.0f;
    tuned.schedule = fmnn_exponential_decay(4, 0.5f, 0);
    EXPECT_OK(fmnn_model_set_optimizer(m, &tuned));
    ck_assert_int_eq(m->step, 2);
    ck_assert_int_eq(m->slots.count, 2);
    ck_assert_mem_eq(m->slots.arrays[0], m_before, sizeof m_before);
    ck_assert_mem_eq(m->slots.arrays[1], v_before, sizeof v_before);
    fmnn_optimizer got;
    EXPECT_OK(fmnn_model_get_optimizer(m, &got));
    ck_assert_mem_eq(&got, &tuned, sizeof got);
    float lr;
    EXPECT_OK(fmnn_model_learning_rate(m, &lr));
    ck_assert_msg(fabs(lr - 0.05 * 0.70710678118654752) < 1e-8, "rate at step 2: %g", (double)lr);

    /* ... and it continues as Keras would with those settings from that state. */
    ref_model r;
    ref_init(&r, m, &tuned, 0);
    r.step = 2;
    for (int i = 0; i < NP; i++)
        r.a[i] = m->slots.arrays[0][i], r.b[i] = m->slots.arrays[1][i];
    for (int s = 2; s < 4; s++) {
        gradients(s, m->grads);
        ref_step(&tuned, &r, m->grads);
        EXPECT_OK(fmnn__optimizer_step(m));
    }
    for (int i = 0; i < NP; i++)
        ck_assert_msg(CLOSE(m->params[i], r.w[i]), "weight %d: %.9g, Keras's %.9g", i,
                      (double)m->params[i], r.w[i]);

    /* amsgrad toggled: a third array, fresh state, iteration 0. */
    fmnn_optimizer ams = tuned;
    ams.adam.amsgrad = 1;
    EXPECT_OK(fmnn_model_set_optimizer(m, &ams));
    ck_assert_int_eq(m->step, 0);
    ck_assert_int_eq(m->slots.count, 3);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < NP; i++)
            ck_assert(m->slots.arrays[k][i] == 0.0f);
    steps(m, 1);

    /* Another kind: its own fresh state (Adagrad's accumulators at 0.1). */
    fmnn_optimizer ada = fmnn_adagrad();
    EXPECT_OK(fmnn_model_set_optimizer(m, &ada));
    ck_assert_int_eq(m->step, 0);
    ck_assert_int_eq(m->slots.count, 1);
    for (int i = 0; i < NP; i++)
        ck_assert(m->slots.arrays[0][i] == 0.1f);
    steps(m, 1);
    /* Adagrad's initial_accumulator_value changed later keeps the accumulators, as Keras's build once. */
    float acc[NP];
    memcpy(acc, m->slots.arrays[0], sizeof acc);
    ada.adagrad.initial_accumulator_value = 0.5f;
    EXPECT_OK(fmnn_model_set_optimizer(m, &ada));
    ck_assert_int_eq(m->step, 1);
    ck_assert_mem_eq(m->slots.arrays[0], acc, sizeof acc);

    /* RMSprop with momentum and RMSprop centered both keep two arrays,
     * but not the same second one: fresh state. */
    fmnn_optimizer swapped = fmnn_rmsprop();
    swapped.rmsprop.momentum = 0.9f;
    EXPECT_OK(fmnn_model_set_optimizer(m, &swapped));
    steps(m, 2);
    ck_assert_int_eq(m->slots.count, 2);
    swapped.rmsprop.momentum = 0.0f;
    swapped.rmsprop.centered = 1;
    EXPECT_OK(fmnn_model_set_optimizer(m, &swapped));
    ck_assert_int_eq(m->step, 0);
    for (int i = 0; i < NP; i++)
        ck_assert(m->slots.arrays[1][i] == 0.0f);

    /* Adam and AdamW are different optimizers, with as many arrays. */
    EXPECT_OK(fmnn_model_set_optimizer(m, &adam));
    steps(m, 2);
    fmnn_optimizer adamw = fmnn_adamw();
    EXPECT_OK(fmnn_model_set_optimizer(m, &adamw));
    ck_assert_int_eq(m->step, 0);
    for (int i = 0; i < NP; i++)
        ck_assert(m->slots.arrays[0][i] == 0.0f && m->slots.arrays[1][i] == 0.0f);

    /* RMSprop's arrays follow momentum and centered. */
    fmnn_optimizer rms = fmnn_rmsprop();
    EXPECT_OK(fmnn_model_set_optimizer(m, &rms));
    ck_assert_int_eq(m->slots.count, 1);
    steps(m, 1);
    rms.rmsprop.rho = 0.8f;
    EXPECT_OK(fmnn_model_set_optimizer(m, &rms));
    ck_assert_int_eq(m->step, 1);
    rms.rmsprop.momentum = 0.9f;
    EXPECT_OK(fmnn_model_set_optimizer(m, &rms));
    ck_assert_int_eq(m->slots.count, 2);
    ck_assert_int_eq(m->step, 0);
    rms.rmsprop.centered = 1;
    EXPECT_OK(fmnn_model_set_optimizer(m, &rms));
    ck_assert_int_eq(m->slots.count, 3);
    steps(m, 2);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_set_optimizer_misuse)
{
    fmnn_optimizer o = fmnn_adam();
    fmnn_model *m;
    EXPECT_OK(fmnn_model_new(&m, 1, (int[]){ 2 }));
    EXPECT_OK(fmnn_model_add(m, fmnn_dense(1, NULL)));
    EXPECT_ERROR(fmnn_model_set_optimizer(m, &o), FMNN_ESTATE, "compile");
    fmnn_optimizer got;
    EXPECT_ERROR(fmnn_model_get_optimizer(m, &got), FMNN_ESTATE, "not compiled");
    EXPECT_ERROR(fmnn_model_set_learning_rate(m, 0.1f), FMNN_ESTATE, "compile");
    float lr;
    EXPECT_ERROR(fmnn_model_learning_rate(m, &lr), FMNN_ESTATE, "not compiled");
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1));
    EXPECT_ERROR(fmnn_model_set_optimizer(NULL, &o), FMNN_EINVAL, "model");
    EXPECT_ERROR(fmnn_model_set_optimizer(m, NULL), FMNN_EINVAL, "optimizer");
    EXPECT_ERROR(fmnn_model_get_optimizer(m, NULL), FMNN_EINVAL, "out");
    EXPECT_ERROR(fmnn_model_get_optimizer(NULL, &got), FMNN_EINVAL, "model");
    EXPECT_ERROR(fmnn_model_learning_rate(m, NULL), FMNN_EINVAL, "out");
    EXPECT_ERROR(fmnn_model_set_learning_rate(NULL, 0.1f), FMNN_EINVAL, "model");

    /* The learning rate of a constant optimizer is settable, and keeps the state. */
    EXPECT_OK(fmnn_model_learning_rate(m, &lr));
    ck_assert(lr == 1e-3f);
    EXPECT_OK(fmnn_model_set_learning_rate(m, 0.25f));
    EXPECT_OK(fmnn_model_learning_rate(m, &lr));
    ck_assert(lr == 0.25f);
    EXPECT_OK(fmnn_model_get_optimizer(m, &got));
    ck_assert(got.learning_rate == 0.25f);
    EXPECT_ERROR(fmnn_model_set_learning_rate(m, 0.0f), FMNN_EINVAL, "learning_rate");
    EXPECT_ERROR(fmnn_model_set_learning_rate(m, -1.0f), FMNN_EINVAL, "learning_rate");
    EXPECT_ERROR(fmnn_model_set_learning_rate(m, NAN), FMNN_EINVAL, "learning_rate");
    EXPECT_ERROR(fmnn_model_set_learning_rate(m, INFINITY), FMNN_EINVAL, "learning_rate");
    /* ... not that of a schedule, as Keras raises. */
    o.schedule = fmnn_cosine_decay(100, 0.0f, 0, 0.0f);
    EXPECT_OK(fmnn_model_set_optimizer(m, &o));
    EXPECT_ERROR(fmnn_model_set_learning_rate(m, 0.1f), FMNN_ESTATE, "schedule");
    EXPECT_OK(fmnn_model_get_optimizer(m, &got));
    ck_assert(got.learning_rate == 1e-3f);
    fmnn_model_free(m);
}
END_TEST

/* set_optimizer under memory failure: ENOMEM, nothing changed, no leak. */
START_TEST(test_set_optimizer_out_of_memory)
{
    fmnn_optimizer adam = fmnn_adam(), ams = fmnn_adam();
    ams.adam.amsgrad = 1;
    fmnn_model *m = tiny_model(&adam, 0);
    steps(m, 1);
    float *block = m->slots.block;
    testutil_alloc_install(0);
    testutil_alloc_arm(1);
    int st = fmnn_model_set_optimizer(m, &ams);
    testutil_alloc_arm(0);
    ck_assert(testutil_alloc_injected());
    ck_assert_int_eq(testutil_alloc_live(), 0);
    testutil_alloc_remove();
    ck_assert_int_eq(st, FMNN_ENOMEM);
    ck_assert_int_eq(m->step, 1);
    ck_assert_int_eq(m->slots.count, 2);
    ck_assert_ptr_eq(m->slots.block, block);
    ck_assert_int_eq(m->optimizer.adam.amsgrad, 0);
    EXPECT_OK(fmnn_model_set_optimizer(m, &ams));
    ck_assert_int_eq(m->slots.count, 3);
    fmnn_model_free(m);
}
END_TEST

/* ---- saving ------------------------------------------------------------- */

static char tmpdir[] = "/tmp/fmnn_check_optimizers_XXXXXX";

static void roundtrip(const fmnn_optimizer *o, int expect_slots)
{
    char path[256];
    snprintf(path, sizeof path, "%s/opt.fmnn", tmpdir);
    fmnn_model *m = tiny_model(o, 0);
    steps(m, 3);
    ck_assert_int_eq(m->slots.count, expect_slots);
    EXPECT_OK(fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER));
    fmnn_model *back;
    EXPECT_OK(fmnn_model_load(&back, path));
    fmnn_optimizer a, b;
    EXPECT_OK(fmnn_model_get_optimizer(m, &a));
    EXPECT_OK(fmnn_model_get_optimizer(back, &b));
    ck_assert_mem_eq(&a, &b, sizeof a); /* every setting, the whole schedule */
    ck_assert_int_eq(back->step, 3);
    ck_assert_int_eq(back->slots.count, expect_slots);
    for (int k = 0; k < expect_slots; k++)
        ck_assert_mem_eq(back->slots.arrays[k], m->slots.arrays[k], NP * sizeof(float));
    /* Both continue alike. */
    steps(m, 2);
    steps(back, 2);
    ck_assert_mem_eq(back->params, m->params, NP * sizeof(float));
    fmnn_model_free(back);

    /* Without the state: the settings, fresh state at step 0. */
    EXPECT_OK(fmnn_model_save(m, path, 0));
    EXPECT_OK(fmnn_model_load(&back, path));
    EXPECT_OK(fmnn_model_get_optimizer(back, &b));
    ck_assert_mem_eq(&a, &b, sizeof a);
    ck_assert_int_eq(back->step, 0);
    for (int i = 0; i < NP; i++)
        ck_assert(back->slots.arrays[0][i] == (o->kind == FMNN_OPTIMIZER_ADAGRAD ? o->adagrad.initial_accumulator_value
                                                                                 : 0.0f));
    fmnn_model_free(back);
    fmnn_model_free(m);
    unlink(path);
}

START_TEST(test_save_load_keeps_settings_and_state)
{
    fmnn_optimizer o = fmnn_adamw();
    o.adam.amsgrad = 1;
    o.clipnorm = 0.7f;
    o.weight_decay = 0.03f;
    o.schedule = fmnn_piecewise_constant_decay(3, (int[]){ 1, 2, 40 }, (float[]){ 0.1f, 0.05f, 0.02f, 0.01f });
    roundtrip(&o, 3);
    o = fmnn_rmsprop();
    o.rmsprop.centered = 1;
    o.rmsprop.momentum = 0.3f;
    o.global_clipnorm = 2.0f;
    o.schedule = fmnn_cosine_decay(50, 0.2f, 3, 0.02f);
    roundtrip(&o, 3);
    o = fmnn_adagrad();
    o.adagrad.initial_accumulator_value = 0.25f;
    o.clipvalue = 0.4f;
    o.schedule = fmnn_inverse_time_decay(7, 0.5f, 1);
    roundtrip(&o, 1);
    o = fmnn_sgd(0.1f, 0.5f);
    o.sgd.nesterov = 1;
    o.weight_decay = 0.01f;
    o.schedule = fmnn_exponential_decay(3, 0.9f, 1);
    roundtrip(&o, 1);
    o = fmnn_rmsprop();
    roundtrip(&o, 1);
}
END_TEST

/* The maximum of v a file holds is checked as v is. */
START_TEST(test_load_checks_the_amsgrad_state)
{
    char path[256];
    snprintf(path, sizeof path, "%s/ams.fmnn", tmpdir);
    fmnn_optimizer o = fmnn_adam();
    o.adam.amsgrad = 1;
    fmnn_model *m = tiny_model(&o, 0);
    steps(m, 1);
    m->slots.arrays[2][4] = -1.0f; /* a negative maximum second moment */
    EXPECT_OK(fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER));
    fmnn_model *back = NOT_NULL;
    EXPECT_ERROR(fmnn_model_load(&back, path), FMNN_EFORMAT, "maximum second moment 4 is negative");
    ck_assert_ptr_null(back);
    fmnn_model_free(m);
    unlink(path);
}
END_TEST

static void make_tmpdir(void)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    rmdir(tmpdir);
}

static Suite *optimizers_suite(void)
{
    Suite *s = suite_create("optimizers");
    TCase *tc = tcase_create("against Keras");
    tcase_add_loop_test(tc, test_against_keras_replay, 0, N_CASES);
    tcase_add_test(tc, test_clips_engage);
    tcase_add_test(tc, test_schedules_by_hand);
    tcase_add_test(tc, test_schedule_through_fit);
    tcase_add_test(tc, test_threads_give_the_same_bits);
    tcase_add_test(tc, test_step_does_not_allocate);
    tcase_add_test(tc, test_overflow_refused_whole);
    suite_add_tcase(s, tc);

    tc = tcase_create("settings");
    tcase_add_test(tc, test_constructors_are_keras_defaults);
    tcase_add_test(tc, test_bad_settings_refused);
    tcase_add_test(tc, test_edge_settings_accepted);
    tcase_add_test(tc, test_set_optimizer_keeps_or_resets);
    tcase_add_test(tc, test_set_optimizer_misuse);
    tcase_add_test(tc, test_set_optimizer_out_of_memory);
    suite_add_tcase(s, tc);

    tc = tcase_create("saving");
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_save_load_keeps_settings_and_state);
    tcase_add_test(tc, test_load_checks_the_amsgrad_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(optimizers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
