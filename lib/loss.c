/*
 * loss.c - categorical cross-entropy (one-hot and sparse) and mean
 * squared error, with the accuracy metric Keras pairs with each.
 *
 * When the model ends in softmax, cross-entropy is computed from the
 * logits z: loss = logsumexp(z) - sum_c y_c z_c, gradient p - y.  That is
 * exact and never takes the log of a rounded-off probability.  Without a
 * softmax the probabilities are normalised and clipped as Keras does.
 */
#include <math.h>

#include "model_impl.h"

#define CLIP_EPSILON 1e-7f /* keras.backend.epsilon() */

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* The class a target row names: its index, or its largest entry. */
static int target_class(const fmnn_loss_batch *b, int row)
{
    if (b->kind == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        return (int)b->target[row];
    return argmax(b->target + (size_t)row * b->width, b->width);
}

/* Target value of class c in a row, for either target layout. */
static float target_at(const fmnn_loss_batch *b, int row, int c)
{
    if (b->kind == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
        return (int)b->target[row] == c ? 1.0f : 0.0f;
    return b->target[(size_t)row * b->width + c];
}

static double crossentropy_fused(const fmnn_loss_batch *b, int row, float *grad, float scale)
{
    const float *z = b->logits + (size_t)row * b->width;
    const float *p = b->output + (size_t)row * b->width;
    float max = z[argmax(z, b->width)];
    double sum = 0.0, y_sum = 0.0, y_dot_z = 0.0;
    for (int c = 0; c < b->width; c++) {
        float y = target_at(b, row, c);
        sum += exp((double)(z[c] - max));
        y_sum += y;
        y_dot_z += (double)y * z[c];
    }
    double logsumexp = max + log(sum);
    if (grad)
        for (int c = 0; c < b->width; c++)
            grad[c] = ((float)y_sum * p[c] - target_at(b, row, c)) * scale;
    return y_sum * logsumexp - y_dot_z;
}

/* Keras's categorical_crossentropy on probabilities: q = p / sum(p),
 * clipped to [eps, 1 - eps], loss = -sum y log q. */
static double crossentropy_probs(const fmnn_loss_batch *b, int row, float *grad, float scale)
{
    const float *p = b->output + (size_t)row * b->width;
    double total = 0.0, loss = 0.0, dot = 0.0;
    for (int c = 0; c < b->width; c++)
        total += p[c];
    for (int c = 0; c < b->width; c++) {
        double q = p[c] / total;
        double clipped = q < CLIP_EPSILON ? CLIP_EPSILON : q > 1.0 - CLIP_EPSILON ? 1.0 - CLIP_EPSILON : q;
        float y = target_at(b, row, c);
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

static double squared_error(const fmnn_loss_batch *b, int row, float *grad, float scale)
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

static int is_correct(const fmnn_loss_batch *b, int row)
{
    const float *p = b->output + (size_t)row * b->width;
    if (b->kind == FMNN_LOSS_MSE && b->width == 1) /* binary accuracy */
        return (p[0] > 0.5f) == (b->target[row] > 0.5f);
    return argmax(p, b->width) == target_class(b, row);
}

double fmnn__loss(const fmnn_loss_batch *b, int *correct)
{
    const float scale = 1.0f / (float)b->batch; /* the gradient of the mean */
    double total = 0.0;
    int right = 0;
    /* Rows in order: the sum must not depend on the thread count. */
    for (int row = 0; row < b->batch; row++) {
        float *grad = b->grad ? b->grad + (size_t)row * b->width : NULL;
        if (b->kind == FMNN_LOSS_MSE)
            total += squared_error(b, row, grad, scale);
        else if (b->fused_softmax)
            total += crossentropy_fused(b, row, grad, scale);
        else
            total += crossentropy_probs(b, row, grad, scale);
        right += is_correct(b, row);
    }
    if (correct)
        *correct = right;
    return total;
}

int fmnn__loss_target_width(fmnn_loss kind, int width)
{
    return kind == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY ? 1 : width;
}

int fmnn__loss_check_targets(fmnn_loss kind, const float *y, size_t count, int width, const char *fn)
{
    for (size_t i = 0; i < count; i++) {
        if (kind == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) {
            float label = y[i];
            if (!(label >= 0.0f && label < (float)width) || label != floorf(label))
                return fmnn__error(FMNN_EINVAL, "%s: y[%zu] = %g is not a class index in 0..%d",
                                   fn, i, (double)label, width - 1);
        } else if (!isfinite(y[i])) {
            return fmnn__error(FMNN_ENUMERIC, "%s: y holds a non-finite value at flat index %zu", fn, i);
        }
    }
    return FMNN_OK;
}
