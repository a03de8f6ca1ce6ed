/*
 * errors.c - keras.metrics.MeanAbsoluteError and MeanSquaredError: the
 * mean over the last axis of each row, then the mean over rows.  sums[0]
 * is the sum of row means, sums[1] the rows counted.
 */
#include <math.h>
#include <stdio.h>

#include "metric_impl.h"

static void error_update(const fmnn_metric_batch *b, int squared, double *sums)
{
    const int width = b->rows.width;
    for (int row = 0; row < b->rows.rows; row++) {
        const float *p = b->rows.output + (size_t)row * width, *y = b->rows.target + (size_t)row * width;
        double sum = 0.0;
        for (int c = 0; c < width; c++) {
            const double d = (double)p[c] - (double)y[c];
            sum += squared ? d * d : fabs(d);
        }
        sums[0] += sum / width;
        sums[1] += 1.0;
    }
}

static void mae_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    (void)spec;
    error_update(b, 0, sums);
}

static void mse_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    (void)spec;
    error_update(b, 1, sums);
}

/* The targets must be shaped as the output, not class indices. */
static int error_check(const fmnn_metric *spec, const struct fmnn_loss_ops *loss, int width, char *msg,
                       size_t size)
{
    (void)spec;
    (void)width;
    if (loss->sparse) {
        snprintf(msg, size, "compares the output with targets of its shape, but %s takes class indices",
                 loss->name);
        return 1;
    }
    return 0;
}

const struct fmnn_metric_ops fmnn__mae_metric = {
    .name = "mae",
    .n_sums = fmnn__mean_sums,
    .check = error_check,
    .update = mae_update,
    .result = fmnn__mean_result,
};

const struct fmnn_metric_ops fmnn__mse_metric = {
    .name = "mse",
    .n_sums = fmnn__mean_sums,
    .check = error_check,
    .update = mse_update,
    .result = fmnn__mean_result,
};
