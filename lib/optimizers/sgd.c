/*
 * sgd.c - keras.optimizers.SGD: velocity = momentum * velocity - lr * g,
 * then w += velocity (or, Nesterov, w += momentum * velocity - lr * g);
 * plain w -= lr * g without momentum.
 */
#include <limits.h>
#include <math.h>

#include "optimizer_impl.h"

static inline int sgd_one(const fmnn_optimizer *o, float *w, float g, float *vel, int store)
{
    const float momentum = o->sgd.momentum;
    float vel2 = momentum * *vel - o->learning_rate * g;
    float w2 = momentum == 0.0f ? *w - o->learning_rate * g
             : o->sgd.nesterov ? *w + momentum * vel2 - o->learning_rate * g
                               : *w + vel2;
    if (store) {
        *vel = momentum == 0.0f ? *vel : vel2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(vel2);
}

static int sgd_update(const fmnn_optimizer *settings, int64_t step, float *w, const float *g, float *const *slots,
                      size_t n, int store)
{
    (void)step;
    const fmnn_optimizer o = *settings;
    float *vel = slots[0];
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= sgd_one(&o, &w[i], g[i], &vel[i], store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

static const fmnn_field sgd_fields[] = {
    FMNN__LEARNING_RATE_FIELD,
    FMNN__UNIT_FIELD(sgd.momentum, "momentum"),
    /* any int, non-zero meaning on, as it always was; 0 when missing */
    FMNN__INT(fmnn_optimizer, sgd.nesterov, "nesterov", INT_MIN, INT_MAX, 0),
};

const struct fmnn_optimizer_ops fmnn__sgd_optimizer = {
    .name = "SGD",
    .settings = FMNN__FIELDS(sgd_fields),
    .n_slots = 1,
    .update = sgd_update,
};

FMNN_API fmnn_optimizer fmnn_sgd(float learning_rate, float momentum)
{
    fmnn_optimizer o = { .kind = FMNN_OPTIMIZER_SGD, .learning_rate = learning_rate };
    o.sgd = (fmnn_sgd_settings){ momentum, 0 };
    return o;
}
