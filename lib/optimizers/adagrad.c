/*
 * adagrad.c - keras.optimizers.Adagrad (keras/src/optimizers/adagrad.py,
 * Adagrad.update_step): the accumulator, which starts at
 * initial_accumulator_value (Adagrad.build), adds g^2, then
 *     w -= lr * g / sqrt(accumulator + epsilon)        (epsilon inside the root)
 */
#include <math.h>
#include <stdio.h>

#include "optimizer_impl.h"

static inline int adagrad_one(const fmnn__update *u, float *w, float g, float *acc, int store)
{
    g = fmnn__clipped(u, g);
    const float w1 = fmnn__decayed(u, *w);
    const float acc2 = *acc + g * g;
    const float w2 = w1 - u->lr * g / sqrtf(acc2 + u->o->adagrad.epsilon);
    if (store) {
        *acc = acc2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(acc2);
}

static int adagrad_update(const fmnn__update *u, float *w, const float *g, float *const *slots, size_t n, int store)
{
    float *acc = slots[0];
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= adagrad_one(u, &w[i], g[i], &acc[i], store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

static int adagrad_n_slots(const fmnn_optimizer *o)
{
    (void)o;
    return 1;
}

static void adagrad_init_slots(const fmnn_optimizer *o, float *const *slots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        slots[0][i] = o->adagrad.initial_accumulator_value;
}

static int adagrad_check_state(const fmnn_optimizer *o, float *const *slots, size_t n, char *msg, size_t size)
{
    (void)o;
    for (size_t i = 0; i < n; i++)
        if (slots[0][i] < 0.0f) {
            snprintf(msg, size, "Adagrad's accumulator %zu is negative", i);
            return 1;
        }
    return 0;
}

static const fmnn_field adagrad_fields[] = {
    FMNN__LEARNING_RATE_FIELD,
    FMNN__NONNEGATIVE_FIELD(adagrad.initial_accumulator_value, "initial_accumulator_value"),
    FMNN__NONNEGATIVE_FIELD(adagrad.epsilon, "epsilon"),
    FMNN__COMMON_FIELDS,
};

const struct fmnn_optimizer_ops fmnn__adagrad_optimizer = {
    .name = "Adagrad",
    .settings = FMNN__FIELDS(adagrad_fields),
    .n_slots = adagrad_n_slots,
    .init_slots = adagrad_init_slots,
    .update = adagrad_update,
    .check_state = adagrad_check_state,
};

FMNN_API fmnn_optimizer fmnn_adagrad(void)
{
    fmnn_optimizer o = { .kind = FMNN_OPTIMIZER_ADAGRAD, .learning_rate = 1e-3f }; /* Adagrad.__init__ */
    o.adagrad = (fmnn_adagrad_settings){ .initial_accumulator_value = 0.1f, .epsilon = 1e-7f };
    return o;
}
