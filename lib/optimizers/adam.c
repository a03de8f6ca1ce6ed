/*
 * adam.c - Adam, exactly as Keras runs it: epsilon is added to sqrt(v) of
 * the uncorrected v, and the bias corrections are folded into the step
 * size
 *     alpha_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t).
 */
#include <math.h>
#include <stdio.h>

#include "optimizer_impl.h"

typedef struct adam_step_size {
    float alpha, b1, b2, eps;
} adam_step_size;

static inline int adam_one(const adam_step_size *k, float *w, float g, float *m, float *v, int store)
{
    float m2 = k->b1 * *m + (1.0f - k->b1) * g;
    float v2 = k->b2 * *v + (1.0f - k->b2) * g * g;
    float w2 = *w - k->alpha * m2 / (sqrtf(v2) + k->eps);
    if (store) {
        *m = m2;
        *v = v2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(v2) || !isfinite(m2);
}

static int adam_update(const fmnn_optimizer *o, int64_t step, float *w, const float *g, float *const *slots,
                       size_t n, int store)
{
    const fmnn_adam_settings *s = &o->adam;
    const double t = (double)step + 1.0;
    const adam_step_size k = {
        (float)(o->learning_rate * sqrt(1.0 - pow(s->beta_2, t)) / (1.0 - pow(s->beta_1, t))),
        s->beta_1, s->beta_2, s->epsilon
    };
    float *m = slots[0], *v = slots[1];
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= adam_one(&k, &w[i], g[i], &m[i], &v[i], store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

static int adam_check_state(float *const *slots, size_t n, char *msg, size_t size)
{
    for (size_t i = 0; i < n; i++)
        if (slots[1][i] < 0.0f) {
            snprintf(msg, size, "Adam's second moment %zu is negative", i);
            return 1;
        }
    return 0;
}

static const fmnn_field adam_fields[] = {
    FMNN__LEARNING_RATE_FIELD,
    FMNN__UNIT_FIELD(adam.beta_1, "beta_1"),
    FMNN__UNIT_FIELD(adam.beta_2, "beta_2"),
    FMNN__FLOAT(fmnn_optimizer, adam.epsilon, "epsilon", 0.0, HUGE_VAL, 0, 0, 0.0), /* >= 0 */
};

const struct fmnn_optimizer_ops fmnn__adam_optimizer = {
    .name = "Adam",
    .settings = FMNN__FIELDS(adam_fields),
    .n_slots = 2,
    .update = adam_update,
    .check_state = adam_check_state,
};

FMNN_API fmnn_optimizer fmnn_adam(void)
{
    fmnn_optimizer o = { .kind = FMNN_OPTIMIZER_ADAM, .learning_rate = 1e-3f };
    o.adam = (fmnn_adam_settings){ 0.9f, 0.999f, 1e-7f };
    return o;
}
