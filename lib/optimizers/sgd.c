/*
 * sgd.c - keras.optimizers.SGD (keras/src/optimizers/sgd.py,
 * SGD.update_step): velocity = momentum * velocity - lr * g, then
 * w += velocity (or, Nesterov, w += momentum * velocity - lr * g); plain
 * w -= lr * g without momentum.  The velocity array is kept even without
 * momentum (Keras builds none then), as model files always had it.
 */
#include <limits.h>
#include <math.h>

#include "optimizer_impl.h"

static inline int sgd_one(const fmnn__update *u, float *w, float g, float *vel, int store)
{
    const fmnn_optimizer *o = u->o;
    const float momentum = o->sgd.momentum, lr = u->lr;
    g = fmnn__clipped(u, g);
    const float w1 = fmnn__decayed(u, *w);
    float vel2 = momentum * *vel - lr * g;
    float w2 = momentum == 0.0f ? w1 - lr * g
             : o->sgd.nesterov ? w1 + (momentum * vel2 - lr * g) /* Keras's grouping */
                               : w1 + vel2;
    if (store) {
        *vel = momentum == 0.0f ? *vel : vel2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(vel2);
}

static int sgd_update(const fmnn__update *u, float *w, const float *g, float *const *slots, size_t n, int store)
{
    float *vel = slots[0];
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= sgd_one(u, &w[i], g[i], &vel[i], store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

static int sgd_n_slots(const fmnn_optimizer *o)
{
    (void)o;
    return 1;
}

static const fmnn_field sgd_fields[] = {
    FMNN__LEARNING_RATE_FIELD,
    FMNN__UNIT_FIELD(sgd.momentum, "momentum"),
    /* any int, non-zero meaning on, as it always was; 0 when missing */
    FMNN__INT(fmnn_optimizer, sgd.nesterov, "nesterov", INT_MIN, INT_MAX, 0),
    FMNN__COMMON_FIELDS,
};

const struct fmnn_optimizer_ops fmnn__sgd_optimizer = {
    .name = "SGD",
    .settings = FMNN__FIELDS(sgd_fields),
    .n_slots = sgd_n_slots,
    .update = sgd_update,
};

FMNN_API fmnn_optimizer fmnn_sgd(float learning_rate, float momentum)
{
    fmnn_optimizer o = { .kind = FMNN_OPTIMIZER_SGD, .learning_rate = learning_rate };
    o.sgd = (fmnn_sgd_settings){ momentum, 0 };
    return o;
}
