/*
 * crossentropy.c - categorical cross-entropy, with one-hot targets or
 * (sparse) class indices.
 *
 * When the model ends in softmax, the loss is computed from the logits z:
 * loss = logsumexp(z) - sum_c y_c z_c, gradient p - y.  That is exact and
 * never takes the log of a rounded-off probability.  The from_logits
 * losses do the same for a model that outputs the logits themselves.
 * Otherwise (a lone softmax layer) the probabilities are normalised and
 * clipped as Keras does.
 */
#include <math.h>

#include "loss_impl.h"

#define CLIP_EPSILON 1e-7f /* keras.backend.epsilon() */

/* Target value of class c in a row, for either target layout. */
static float target_at(const fmnn_loss_rows *b, int sparse, int row, int c)
{
    if (sparse)
        return (int)b->target[row] == c ? 1.0f : 0.0f;
    return b->target[(size_t)row * b->width + c];
}

/* The loss from logits z; p = softmax(z), given (a fused softmax) or
 * computed here (from_logits, p NULL). */
static double from_logits(const fmnn_loss_rows *b, int sparse, int row, const float *z, const float *p,
                          float *grad, float scale)
{
    float max = z[fmnn__argmax(z, b->width)];
    double sum = 0.0, y_sum = 0.0, y_dot_z = 0.0;
    for (int c = 0; c < b->width; c++) {
        float y = target_at(b, sparse, row, c);
        sum += exp((double)(z[c] - max));
        y_sum += y;
        y_dot_z += (double)y * z[c];
    }
    double logsumexp = max + log(sum);
    if (grad)
        for (int c = 0; c < b->width; c++) {
            const float pc = p ? p[c] : (float)exp((double)z[c] - logsumexp);
            grad[c] = ((float)y_sum * pc - target_at(b, sparse, row, c)) * scale;
        }
    return y_sum * logsumexp - y_dot_z;
}

/* Keras's categorical_crossentropy on probabilities: q = p / sum(p),
 * clipped to [eps, 1 - eps], loss = -sum y log q. */
static double from_probabilities(const fmnn_loss_rows *b, int sparse, int row, float *grad, float scale)
{
    const float *p = b->output + (size_t)row * b->width;
    double total = 0.0, loss = 0.0, dot = 0.0;
    for (int c = 0; c < b->width; c++)
        total += p[c];
    for (int c = 0; c < b->width; c++) {
        double q = p[c] / total;
        double clipped = q < CLIP_EPSILON ? CLIP_EPSILON : q > 1.0 - CLIP_EPSILON ? 1.0 - CLIP_EPSILON : q;
        float y = target_at(b, sparse, row, c);
        loss -= y * log(clipped);
        /* dL/dq, zero where the clip is active; kept in grad for now */
        double dq = (q == clipped) ? -y / q : 0.0;
        if (grad)
            grad[c] = (float)dq;
        dot += dq * q;
    }
    if (grad) /* through the normalisation: dL/dp_j = (dL/dq_j - sum_i dL/dq_i q_i) / total */
        for (int c = 0; c < b->width; c++)
            grad[c] = (float)((grad[c] - dot) / total) * scale;
    return loss;
}

static double crossentropy_row(const fmnn_loss_rows *b, int sparse, int row, float *grad, float scale)
{
    const size_t at = (size_t)row * b->width;
    return b->fused ? from_logits(b, sparse, row, b->logits + at, b->output + at, grad, scale)
                    : from_probabilities(b, sparse, row, grad, scale);
}

/* from_logits: the model's output is z. */
static double categorical_logits_row(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    return from_logits(b, 0, row, b->output + (size_t)row * b->width, NULL, grad, scale);
}

static double sparse_logits_row(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    return from_logits(b, 1, row, b->output + (size_t)row * b->width, NULL, grad, scale);
}

static double categorical_row(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    return crossentropy_row(b, 0, row, grad, scale);
}

static double sparse_row(const fmnn_loss_rows *b, int row, float *grad, float scale)
{
    return crossentropy_row(b, 1, row, grad, scale);
}

static int check_class_indices(const float *y, size_t count, int width, const char *fn)
{
    for (size_t i = 0; i < count; i++) {
        float label = y[i];
        if (!(label >= 0.0f && label < (float)width) || label != floorf(label))
            return fmnn__error(FMNN_EINVAL, "%s: y[%zu] = %g is not a class index in 0..%d", fn, i,
                               (double)label, width - 1);
    }
    return FMNN_OK;
}

const struct fmnn_loss_ops fmnn__categorical_crossentropy_loss = {
    .name = "categorical_crossentropy",
    .fuses = FMNN_SOFTMAX,
    .requires = FMNN_SOFTMAX,
    .row = categorical_row,
    .check_targets = fmnn__check_finite_targets,
};

const struct fmnn_loss_ops fmnn__sparse_categorical_crossentropy_loss = {
    .name = "sparse_categorical_crossentropy",
    .fuses = FMNN_SOFTMAX,
    .requires = FMNN_SOFTMAX,
    .sparse = 1,
    .row = sparse_row,
    .check_targets = check_class_indices,
};

const struct fmnn_loss_ops fmnn__categorical_crossentropy_from_logits_loss = {
    .name = "categorical_crossentropy (from_logits)",
    .fuses = FMNN_LINEAR,
    .row = categorical_logits_row,
    .check_targets = fmnn__check_finite_targets,
};

const struct fmnn_loss_ops fmnn__sparse_categorical_crossentropy_from_logits_loss = {
    .name = "sparse_categorical_crossentropy (from_logits)",
    .fuses = FMNN_LINEAR,
    .sparse = 1,
    .row = sparse_logits_row,
    .check_targets = check_class_indices,
};
