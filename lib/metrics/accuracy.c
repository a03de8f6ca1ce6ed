/*
 * accuracy.c - Keras's "accuracy" and top-k categorical accuracy, both
 * means of a per-position score: sums[0] is the total score, sums[1] the
 * positions counted.
 *
 * "accuracy" is what Keras 3's compile makes of the string (get_metric in
 * trainers/compile_utils.py), from the shapes alone: binary accuracy,
 * y == (p > 0.5) for each value, when the output's last axis is 1;
 * sparse categorical accuracy when the targets are class indices;
 * categorical accuracy, argmax(p) == argmax(y), otherwise.
 */
#include <stdio.h>

#include "metric_impl.h"

size_t fmnn__mean_sums(const fmnn_metric *spec)
{
    (void)spec;
    return 2;
}

double fmnn__mean_result(const fmnn_metric *spec, const double *sums)
{
    (void)spec;
    return fmnn__ratio(sums[0], sums[1]);
}

static void accuracy_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    (void)spec;
    const fmnn_loss_rows *r = &b->rows;
    const int group = b->loss->sparse ? r->width : b->last_dim; /* the values of one position */
    for (int row = 0; row < r->rows; row++) {
        const float *p = r->output + (size_t)row * r->width;
        const float *y = b->loss->sparse ? NULL : r->target + (size_t)row * r->width;
        for (int at = 0; at < r->width; at += group) {
            int right;
            if (b->loss->sparse)
                right = fmnn__argmax(p, r->width) == (int)r->target[row];
            else if (group == 1)
                right = y[at] == (p[at] > 0.5f ? 1.0f : 0.0f);
            else
                right = fmnn__argmax(p + at, group) == fmnn__argmax(y + at, group);
            sums[0] += right;
            sums[1] += 1.0;
        }
    }
}

const struct fmnn_metric_ops fmnn__accuracy_metric = {
    .name = "accuracy",
    .higher_is_better = 1,
    .n_sums = fmnn__mean_sums,
    .update = accuracy_update,
    .result = fmnn__mean_result,
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
        sums[0] += higher < spec->k;
        sums[1] += 1.0;
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
    .n_sums = fmnn__mean_sums,
    .check = top_k_check,
    .update = top_k_update,
    .result = fmnn__mean_result,
};
