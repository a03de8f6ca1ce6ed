/*
 * accuracy.c - Keras's "accuracy" and top-k categorical accuracy.  Both
 * are weighted means of a per-row score: sums[0] is the weighted score,
 * sums[1] the total weight.
 *
 * "accuracy" is whatever the loss pairs with it (categorical, sparse
 * categorical or binary accuracy: the loss's correct()), as Keras's
 * compile resolves the string "accuracy" from the loss.
 */
#include <stdio.h>

#include "metric_impl.h"

static size_t mean_sums(const fmnn_metric *spec)
{
    (void)spec;
    return 2;
}

static double mean_result(const fmnn_metric *spec, const double *sums)
{
    (void)spec;
    return fmnn__ratio(sums[0], sums[1]);
}

static void accuracy_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    (void)spec;
    for (int row = 0; row < b->rows.rows; row++) {
        const double w = fmnn__row_weight(b, row);
        sums[0] += w * b->loss->correct(&b->rows, row);
        sums[1] += w;
    }
}

const struct fmnn_metric_ops fmnn__accuracy_metric = {
    .name = "accuracy",
    .higher_is_better = 1,
    .n_sums = mean_sums,
    .update = accuracy_update,
    .result = mean_result,
};

/* keras.metrics.top_k_categorical_accuracy: the target's class is in the
 * top k when fewer than k classes score strictly higher (so ties count
 * in, as in_top_k does). */
static void top_k_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    const int width = b->rows.width;
    for (int row = 0; row < b->rows.rows; row++) {
        const float *p = b->rows.output + (size_t)row * width;
        const float target = p[fmnn__target_class(b, row)];
        int higher = 0;
        for (int c = 0; c < width; c++)
            higher += p[c] > target;
        const double w = fmnn__row_weight(b, row);
        sums[0] += w * (higher < spec->k);
        sums[1] += w;
    }
}

static int top_k_check(const fmnn_metric *spec, const struct fmnn_loss_ops *loss, int width, char *msg,
                       size_t size)
{
    (void)spec;
    (void)loss;
    if (width < 2) {
        snprintf(msg, size, "needs scores of two or more classes, but the output has %d per row", width);
        return 1;
    }
    return 0;
}

const struct fmnn_metric_ops fmnn__top_k_metric = {
    .name = "top_k_categorical_accuracy",
    .sparse_name = "sparse_top_k_categorical_accuracy",
    .higher_is_better = 1,
    .n_sums = mean_sums,
    .check = top_k_check,
    .update = top_k_update,
    .result = mean_result,
};
