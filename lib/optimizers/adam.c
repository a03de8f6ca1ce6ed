/*
 * adam.c - Adam (keras/src/optimizers/adam.py, Adam.update_step), exactly
 * as Keras runs it: epsilon is added to sqrt(v) of the uncorrected v, and
 * the bias corrections are folded into the step size
 *     alpha_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t).
 * With amsgrad a third array keeps the running maximum of the raw v, which
 * then takes v's place in the step.  AdamW (adamw.c) is this update with
 * a default weight decay.
 */
#include <math.h>
#include <stdio.h>

#include "optimizer_impl.h"
#include "optimizers/adam.h"

typedef struct adam_step_size {
    float alpha, b1, b2, eps;
} adam_step_size;

static inline int adam_one(const fmnn__update *u, const adam_step_size *k, float *w, float g, float *m, float *v,
                           float *v_hat, int store)
{
    g = fmnn__clipped(u, g);
    const float w1 = fmnn__decayed(u, *w);
    float m2 = k->b1 * *m + (1.0f - k->b1) * g;
    float v2 = k->b2 * *v + (1.0f - k->b2) * g * g;
    float v_hat2 = v_hat && *v_hat > v2 ? *v_hat : v2; /* ops.maximum(v_hat, v) */
    float w2 = w1 - k->alpha * m2 / (sqrtf(v_hat2) + k->eps);
    if (store) {
        *m = m2;
        *v = v2;
        if (v_hat)
            *v_hat = v_hat2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(v2) || !isfinite(m2);
}

int fmnn__adam_update(const fmnn__update *u, float *w, const float *g, float *const *slots, size_t n, int store)
{
    const fmnn_adam_settings *s = &u->o->adam;
    const double t = (double)u->step + 1.0;
    const adam_step_size k = {
        (float)(u->lr * sqrt(1.0 - pow(s->beta_2, t)) / (1.0 - pow(s->beta_1, t))),
        s->beta_1, s->beta_2, s->epsilon
    };
    float *m = slots[0], *v = slots[1], *v_hat = s->amsgrad ? slots[2] : NULL;
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
        if (v_hat) {
#pragma omp for schedule(static) reduction(| : bad)
            for (size_t i = 0; i < n; i++)
                bad |= adam_one(u, &k, &w[i], g[i], &m[i], &v[i], &v_hat[i], store);
        } else {
#pragma omp for schedule(static) reduction(| : bad)
            for (size_t i = 0; i < n; i++)
                bad |= adam_one(u, &k, &w[i], g[i], &m[i], &v[i], NULL, store);
        }
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

int fmnn__adam_n_slots(const fmnn_optimizer *o)
{
    return o->adam.amsgrad ? 3 : 2; /* Adam.build: momentums, velocities, velocity_hats */
}

int fmnn__adam_check_state(const fmnn_optimizer *o, float *const *slots, size_t n, char *msg, size_t size)
{
    for (int k = 1; k < fmnn__adam_n_slots(o); k++)
        for (size_t i = 0; i < n; i++)
            if (slots[k][i] < 0.0f) {
                snprintf(msg, size, "Adam's %s %zu is negative", k == 1 ? "second moment" : "maximum second moment",
                         i);
                return 1;
            }
    return 0;
}

static const fmnn_field adam_fields[] = {
    FMNN__ADAM_FIELDS,
};

const struct fmnn_optimizer_ops fmnn__adam_optimizer = {
    .name = "Adam",
    .settings = FMNN__FIELDS(adam_fields),
    .n_slots = fmnn__adam_n_slots,
    .update = fmnn__adam_update,
    .check_state = fmnn__adam_check_state,
};

FMNN_API fmnn_optimizer fmnn_adam(void)
{
    fmnn_optimizer o = { .kind = FMNN_OPTIMIZER_ADAM, .learning_rate = 1e-3f };
    o.adam = (fmnn_adam_settings){ .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f, .amsgrad = 0 };
    return o;
}
