/* mse.c - mean squared error over every output value of a sample, with
 * Keras's accuracy for it: binary for one output, else the argmax. */
#include "loss_impl.h"

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

static int mse_correct(const fmnn_loss_rows *b, int row)
{
    const float *p = b->output + (size_t)row * b->width;
    if (b->width == 1) /* binary accuracy */
        return (p[0] > 0.5f) == (b->target[row] > 0.5f);
    return fmnn__argmax(p, b->width) == fmnn__argmax(b->target + (size_t)row * b->width, b->width);
}

const struct fmnn_loss_ops fmnn__mean_squared_error_loss = {
    .name = "mean_squared_error",
    .fuses = FMNN_LINEAR,
    .whole_output = 1,
    .row = squared_error,
    .correct = mse_correct,
    .check_targets = fmnn__check_finite_targets,
};
