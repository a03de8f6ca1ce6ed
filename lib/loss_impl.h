/*
 * loss_impl.h - what a loss is to the library: one const table per loss
 * (lib/losses/), listed in lib/losses/registry.c by its fmnn_loss value.
 */
#ifndef FMNN_LOSS_IMPL_H
#define FMNN_LOSS_IMPL_H

#include <math.h>

#include "layer_impl.h"

/* The rows of one batch, as the loss sees them. */
typedef struct fmnn_loss_rows {
    int rows, width;
    int fused;             /* the final activation moved into the loss */
    const float *logits;   /* when fused: the output before that activation */
    const float *output;   /* the model's output (after it) */
    const float *target;   /* (rows, width), or (rows) class indices */
} fmnn_loss_rows;

struct fmnn_loss_ops {
    const char *name;      /* as Keras names it: "categorical_crossentropy" */
    /* The final activation the loss works through itself, from the
     * logits, when the model ends in it (softmax for cross-entropy); or
     * FMNN_LINEAR. */
    fmnn_activation_kind fuses;
    /* The final activation the loss is only correct after (softmax for
     * categorical cross-entropy on probabilities), or FMNN_LINEAR. */
    fmnn_activation_kind requires;
    int whole_output;      /* one row of every output value (MSE); else a row
                            * per position, over the last axis */
    int sparse;            /* targets are class indices, one per row */

    /* The loss of one row; when grad is not NULL, writes the row's
     * gradient with respect to the logits (fused) or the output, times
     * scale. */
    double (*row)(const fmnn_loss_rows *b, int row, float *grad, float scale);

    /* Checks the targets (count values, rows of width): class indices in
     * range, or finite.  fn names the caller in messages. */
    int (*check_targets)(const float *y, size_t count, int width, const char *fn);
};

/* The loss of a fmnn_loss value, or NULL (lib/losses/registry.c). */
FMNN_INTERNAL const struct fmnn_loss_ops *fmnn__loss_type(fmnn_loss kind);

/* The index of the largest of v[0..n), the first of equal ones. */
static inline int fmnn__argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* check_targets for targets that may be any finite value. */
static inline int fmnn__check_finite_targets(const float *y, size_t count, int width, const char *fn)
{
    (void)width;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(y[i]))
            return fmnn__error(FMNN_ENUMERIC, "%s: y holds a non-finite value at flat index %zu", fn, i);
    return FMNN_OK;
}

#endif /* FMNN_LOSS_IMPL_H */
