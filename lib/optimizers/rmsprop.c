/*
 * rmsprop.c - keras.optimizers.RMSprop (keras/src/optimizers/rmsprop.py,
 * RMSprop.update_step):
 *     v = rho * v + (1 - rho) * g^2
 *     increment = lr * g / sqrt(v + epsilon)          (epsilon inside the root)
 * centered, with the mean gradient a = rho * a + (1 - rho) * g:
 *     increment = lr * g / sqrt(v - a^2 + epsilon)
 * then w -= increment, or with momentum: mom = momentum * mom + increment,
 * w -= mom.  As RMSprop.build, the arrays are the velocity, then the
 * momentum only when momentum > 0, then the mean gradient only when
 * centered.
 */
#include <math.h>
#include <stdio.h>

#include "optimizer_impl.h"

typedef struct rmsprop_arrays {
    float *v, *mom, *avg; /* mom and avg NULL when not kept */
} rmsprop_arrays;

static inline int rmsprop_one(const fmnn__update *u, float *w, float g, const rmsprop_arrays *a, size_t i,
                              int store)
{
    const fmnn_rmsprop_settings *s = &u->o->rmsprop;
    const float rho = s->rho;
    g = fmnn__clipped(u, g);
    const float w1 = fmnn__decayed(u, *w);
    const float v2 = rho * a->v[i] + (1.0f - rho) * (g * g);
    float avg2 = 0.0f, denominator = v2 + s->epsilon;
    if (a->avg) {
        avg2 = rho * a->avg[i] + (1.0f - rho) * g;
        denominator = v2 - avg2 * avg2 + s->epsilon;
    }
    const float increment = u->lr * g / sqrtf(denominator);
    const float mom2 = a->mom ? s->momentum * a->mom[i] + increment : increment;
    const float w2 = w1 - mom2;
    if (store) {
        a->v[i] = v2;
        if (a->avg)
            a->avg[i] = avg2;
        if (a->mom)
            a->mom[i] = mom2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(v2) || !isfinite(mom2) || !isfinite(avg2);
}

static int rmsprop_update(const fmnn__update *u, float *w, const float *g, float *const *slots, size_t n, int store)
{
    const fmnn_rmsprop_settings *s = &u->o->rmsprop;
    int k = 0;
    rmsprop_arrays a = { slots[k++], NULL, NULL };
    if (s->momentum > 0.0f)
        a.mom = slots[k++];
    if (s->centered)
        a.avg = slots[k++];
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= rmsprop_one(u, &w[i], g[i], &a, i, store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

static int rmsprop_n_slots(const fmnn_optimizer *o)
{
    return 1 + (o->rmsprop.momentum > 0.0f) + (o->rmsprop.centered != 0);
}

static int rmsprop_check_state(const fmnn_optimizer *o, float *const *slots, size_t n, char *msg, size_t size)
{
    (void)o;
    for (size_t i = 0; i < n; i++)
        if (slots[0][i] < 0.0f) {
            snprintf(msg, size, "RMSprop's mean square %zu is negative", i);
            return 1;
        }
    return 0;
}

static const fmnn_field rmsprop_fields[] = {
    FMNN__LEARNING_RATE_FIELD,
    FMNN__UNIT_FIELD(rmsprop.rho, "rho"),
    FMNN__UNIT_FIELD(rmsprop.momentum, "momentum"),
    FMNN__NONNEGATIVE_FIELD(rmsprop.epsilon, "epsilon"),
    FMNN__SWITCH_FIELD(rmsprop.centered, "centered"),
    FMNN__COMMON_FIELDS,
};

const struct fmnn_optimizer_ops fmnn__rmsprop_optimizer = {
    .name = "RMSprop",
    .settings = FMNN__FIELDS(rmsprop_fields),
    .n_slots = rmsprop_n_slots,
    .update = rmsprop_update,
    .check_state = rmsprop_check_state,
};

FMNN_API fmnn_optimizer fmnn_rmsprop(void)
{
    fmnn_optimizer o = { .kind = FMNN_OPTIMIZER_RMSPROP, .learning_rate = 1e-3f }; /* RMSprop.__init__ */
    o.rmsprop = (fmnn_rmsprop_settings){ .rho = 0.9f, .momentum = 0.0f, .epsilon = 1e-7f, .centered = 0 };
    return o;
}
