/*
 * binary_crossentropy.c - binary cross-entropy, the mean over the last
 * axis of -(y log p + (1 - y) log(1 - p)).
 *
 * After a final sigmoid it is computed from the logits z, as Keras does
 * (TensorFlow keeps the logits of a sigmoid output): max(z, 0) - z y +
 * log(1 + exp(-|z|)), whose gradient is p - y.  from_logits does the same
 * for a model that outputs z.  Otherwise p is clipped to [1e-7, 1 - 1e-7].
 */
#include <math.h>

#include "loss_impl.h"

#define CLIP_EPSILON 1e-7f /* keras.backend.epsilon() */

/* Mean over the row of the logits form; p = sigmoid(z), given or not. */
static double from_logits(const fmnn_loss_rows *b, int row, const float *z, const float *p, float *grad,
                          float scale)
{
    const float *y = b->target + (size_t)row * b->width;
    double sum = 0.0;
    for (int c = 0; c < b->width; c++) {
        const double zc = z[c];
        sum += (zc > 0.0 ? zc : 0.0) - zc * y[c] + log1p(exp(-fabs(zc)));
        if (grad) {
            const float pc = p ? p[c] : (float)(1.0 / (1.0 + exp(-zc)));
            grad[c] = (pc - y[c]) / (float)b->width * scale;
        }
    }
    return sum / b->width;
}

static double from_probabilities(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    const float *p = b->output + (size_t)row * b->width, *y = b->target + (size_t)row * b->width;
    double sum = 0.0;
    for (int c = 0; c < b->width; c++) {
        const double q = p[c] < CLIP_EPSILON ? CLIP_EPSILON : p[c] > 1.0 - CLIP_EPSILON ? 1.0 - CLIP_EPSILON : p[c];
        sum -= y[c] * log(q) + (1.0 - y[c]) * log(1.0 - q);
        if (grad) /* zero where the clip is active */
            grad[c] = q == p[c] ? (float)((q - y[c]) / (q * (1.0 - q))) / (float)b->width * scale : 0.0f;
    }
    return sum / b->width;
}

static double bce_row(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    const size_t at = (size_t)row * b->width;
    return b->fused ? from_logits(b, row, b->logits + at, b->output + at, grad, scale)
                    : from_probabilities(b, row, grad, scale);
}

static double bce_logits_row(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    return from_logits(b, row, b->output + (size_t)row * b->width, NULL, grad, scale);
}

/* Targets are probabilities: in [0, 1]. */
static int check_probabilities(const float *y, size_t count, int width, const char *fn)
{
    (void)width;
    for (size_t i = 0; i < count; i++)
        if (!(y[i] >= 0.0f && y[i] <= 1.0f))
            return fmnn__error(FMNN_EINVAL, "%s: y[%zu] = %g is not a probability in [0, 1] (binary cross-entropy)",
                               fn, i, (double)y[i]);
    return FMNN_OK;
}

const struct fmnn_loss_ops fmnn__binary_crossentropy_loss = {
    .name = "binary_crossentropy",
    .fuses = FMNN_SIGMOID,
    .row = bce_row,
    .check_targets = check_probabilities,
};

const struct fmnn_loss_ops fmnn__binary_crossentropy_from_logits_loss = {
    .name = "binary_crossentropy (from_logits)",
    .fuses = FMNN_LINEAR,
    .row = bce_logits_row,
    .check_targets = check_probabilities,
};
