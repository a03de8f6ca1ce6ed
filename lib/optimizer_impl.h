/*
 * optimizer_impl.h - what an optimizer is to the library: one const table
 * per kind (lib/optimizers/), listed in lib/optimizers/registry.c by its
 * fmnn_optimizer_kind.
 */
#ifndef FMNN_OPTIMIZER_IMPL_H
#define FMNN_OPTIMIZER_IMPL_H

#include "config.h"
#include "internal.h"

/* The most state arrays an optimizer keeps, each one float per parameter. */
#define FMNN__MAX_SLOTS 2

struct fmnn_optimizer_ops {
    const char *name;       /* as Keras names it: "Adam" */
    /* Its settings in fmnn_optimizer, learning_rate first, in the order
     * model files keep them: checked at compile. */
    fmnn_fields settings;
    int n_slots;            /* state arrays: Adam's m and v, SGD's velocity */

    /*
     * One pass over the n parameters w with gradients g, at step `step`
     * (0 for the first update).  With store 0 it only computes: it returns
     * nonzero when any new weight or state value would not be finite, so
     * that fmnn__optimizer_step can refuse the update whole.  With store 1
     * it writes them.  Same result for any thread count.
     */
    int (*update)(const fmnn_optimizer *o, int64_t step, float *w, const float *g, float *const *slots,
                  size_t n, int store);

    /* Checks state read from a model file (Adam's v is never negative);
     * fills msg and returns nonzero when it is impossible.  May be NULL. */
    int (*check_state)(float *const *slots, size_t n, char *msg, size_t size);
};

/* The optimizer of a kind, or NULL (lib/optimizers/registry.c). */
FMNN_INTERNAL const struct fmnn_optimizer_ops *fmnn__optimizer_type(fmnn_optimizer_kind kind);

/* Checks settings for compile: a known kind, its fields in range, zero
 * reserved fields.  Errors name fn. */
FMNN_INTERNAL int fmnn__optimizer_check(const fmnn_optimizer *o, const char *fn);

/* The learning rate, first in every optimizer's settings. */
#define FMNN__LEARNING_RATE_FIELD \
    FMNN__FLOAT(fmnn_optimizer, learning_rate, "learning_rate", 0.0, HUGE_VAL, 1, 1, 0.0) /* finite, > 0 */

/* A setting in [0, 1): betas, momentum. */
#define FMNN__UNIT_FIELD(member, name) FMNN__FLOAT(fmnn_optimizer, member, name, 0.0, 1.0, 0, 1, 0.0)

#endif /* FMNN_OPTIMIZER_IMPL_H */
