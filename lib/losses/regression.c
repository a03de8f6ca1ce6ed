/*
 * regression.c - mean squared error, mean absolute error and Huber (delta
 * 1.0), each the mean over every output value of a sample.
 */
#include <math.h>

#include "loss_impl.h"

#define HUBER_DELTA 1.0 /* keras.losses.Huber's default */

static double squared_error(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    const float *p = b->output + (size_t)row * b->width;
    const float *y = b->target + (size_t)row * b->width;
    double sum = 0.0;
    for (int c = 0; c < b->width; c++) {
        float diff = p[c] - y[c];
        sum += (double)diff * diff;
        if (grad)
            grad[c] = 2.0f * diff / (float)b->width * scale;
    }
    return sum / b->width;
}

static double absolute_error(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    const float *p = b->output + (size_t)row * b->width, *y = b->target + (size_t)row * b->width;
    double sum = 0.0;
    for (int c = 0; c < b->width; c++) {
        const float e = p[c] - y[c];
        sum += fabs((double)e);
        if (grad) /* sign(0) = 0, as in TensorFlow */
            grad[c] = (float)((e > 0.0f) - (e < 0.0f)) / (float)b->width * scale;
    }
    return sum / b->width;
}

/* 0.5 e^2 within delta, delta (|e| - 0.5 delta) beyond. */
static double huber(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    const float *p = b->output + (size_t)row * b->width, *y = b->target + (size_t)row * b->width;
    double sum = 0.0;
    for (int c = 0; c < b->width; c++) {
        const double e = (double)p[c] - y[c], a = fabs(e);
        sum += a <= HUBER_DELTA ? 0.5 * e * e : HUBER_DELTA * (a - 0.5 * HUBER_DELTA);
        if (grad)
            grad[c] = (float)(a <= HUBER_DELTA ? e : HUBER_DELTA * ((e > 0.0) - (e < 0.0))) / (float)b->width * scale;
    }
    return sum / b->width;
}

const struct fmnn_loss_ops fmnn__mean_squared_error_loss = {
    .name = "mean_squared_error",
    .fuses = FMNN_LINEAR,
    .whole_output = 1,
    .row = squared_error,
    .check_targets = fmnn__check_finite_targets,
};

const struct fmnn_loss_ops fmnn__mean_absolute_error_loss = {
    .name = "mean_absolute_error",
    .fuses = FMNN_LINEAR,
    .whole_output = 1,
    .row = absolute_error,
    .check_targets = fmnn__check_finite_targets,
};

const struct fmnn_loss_ops fmnn__huber_loss = {
    .name = "huber",
    .fuses = FMNN_LINEAR,
    .whole_output = 1,
    .row = huber,
    .check_targets = fmnn__check_finite_targets,
};
