/*
 * batch_normalization.c - BatchNormalization over the last axis, as Keras
 * computes it.
 *
 * In training the layer normalises with the batch's mean and biased
 * variance, per channel, over every other axis:
 *     y = gamma * (x - mean) / sqrt(var + epsilon) + beta,
 * and moves its non-trainable statistics towards them:
 *     moving = moving * momentum + batch * (1 - momentum).
 * At inference (evaluate, predict, validation) it uses the moving
 * statistics instead.  gamma is stored as the kernel and beta as the bias
 * (either may be switched off: scale, center), the moving mean and
 * variance as the layer's state; that is Keras's get_weights() order.
 *
 * The execution plan may hand the layer the activation that follows it
 * (pass->activation, as Conv2D and Dense take theirs): the usual
 * Conv2D-BatchNormalization-ReLU block then makes no pass of its own for
 * the ReLU, forward or backward.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layer_impl.h"

typedef struct batch_normalization {
    fmnn_layer base;
    float momentum, epsilon;
    int center, scale;
} batch_normalization;

static int channels(const fmnn_layer *layer)
{
    return layer->in.dims[layer->in.rank - 1];
}

static int bn_infer(fmnn_layer *layer)
{
    const batch_normalization *bn = (const batch_normalization *)layer;
    const size_t c = (size_t)channels(layer);
    layer->out = layer->in;
    layer->n_kernel = bn->scale ? c : 0;
    layer->n_bias = bn->center ? c : 0;
    layer->n_state = 2 * c; /* moving mean, then moving variance */
    return FMNN_OK;
}

/* Keras's initializers: gamma 1, beta 0, moving mean 0, moving variance 1. */
static void bn_init(fmnn_layer *layer, fmnn_rng *rng)
{
    (void)rng;
    const size_t c = (size_t)channels(layer);
    for (size_t k = 0; k < layer->n_kernel; k++)
        layer->kernel[k] = 1.0f;
    for (size_t k = 0; k < layer->n_bias; k++)
        layer->bias[k] = 0.0f;
    for (size_t k = 0; k < c; k++) {
        layer->state[k] = 0.0f;
        layer->state[c + k] = 1.0f;
    }
}

/* A moving variance is never negative (it would make NaN at inference). */
static int bn_check_state(const fmnn_layer *layer, const float *state, char *msg, size_t size)
{
    const size_t c = (size_t)channels(layer);
    for (size_t k = 0; k < c; k++)
        if (state[c + k] < 0.0f) {
            snprintf(msg, size, "the moving variance of channel %zu is negative (%g)", k, (double)state[c + k]);
            return 1;
        }
    return 0;
}

/* What forward keeps for backward: per channel, two double sums (scratch)
 * and the mean and 1 / sqrt(var + epsilon) it normalised with. */
typedef struct bn_saved {
    double *sum, *sum2;
    float *mean, *inv_std;
} bn_saved;

static size_t bn_saved_bytes(const fmnn_layer *layer, int batch)
{
    (void)batch;
    return (size_t)channels(layer) * (2 * sizeof(double) + 2 * sizeof(float));
}

static bn_saved saved_of(const fmnn_layer *layer, const fmnn_pass *pass)
{
    const size_t c = (size_t)channels(layer);
    double *d = pass->saved; /* 64-byte aligned, doubles first */
    float *f = (float *)(d + 2 * c);
    return (bn_saved){ d, d + c, f, f + c };
}

/* The sums over rows below split the channels between the threads, in
 * bands of 16 (a cache line of floats): each channel is summed by one
 * thread, rows in order, so the same bits for any thread count. */
#define CHANNEL_BAND 16

/* The batch's mean and biased variance per channel, in double; the
 * moving statistics move towards them. */
static void batch_moments(const batch_normalization *bn, const float *x, size_t rows, const bn_saved *s)
{
    const size_t c = (size_t)channels(&bn->base);
    float *moving_mean = bn->base.state, *moving_var = bn->base.state + c;
    const float momentum = bn->momentum;
#pragma omp parallel num_threads(fmnn__threads()) if (rows * c > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
        int first, last;
        fmnn__thread_band((int)c, CHANNEL_BAND, &first, &last);
        double *sum = s->sum, *sum2 = s->sum2;
        for (int k = first; k < last; k++)
            sum[k] = sum2[k] = 0.0;
        for (size_t r = 0; r < rows; r++)
            for (int k = first; k < last; k++)
                sum[k] += x[r * c + (size_t)k];
        for (int k = first; k < last; k++)
            sum[k] /= (double)rows;
        for (size_t r = 0; r < rows; r++)
            for (int k = first; k < last; k++) {
                double d = x[r * c + (size_t)k] - sum[k];
                sum2[k] += d * d;
            }
        fmnn__restore_fp_mode(fp);
    }
    for (size_t k = 0; k < c; k++) {
        const float mean = (float)s->sum[k], var = (float)(s->sum2[k] / (double)rows);
        s->mean[k] = mean;
        s->inv_std[k] = (float)(1.0 / sqrt((double)var + (double)bn->epsilon));
        moving_mean[k] = moving_mean[k] * momentum + mean * (1.0f - momentum);
        moving_var[k] = moving_var[k] * momentum + var * (1.0f - momentum);
    }
}

static void bn_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const batch_normalization *bn = (const batch_normalization *)layer;
    const size_t c = (size_t)channels(layer);
    const size_t rows = fmnn__shape_size(&layer->in) / c * (size_t)pass->batch;
    const bn_saved s = saved_of(layer, pass);
    if (pass->training) {
        batch_moments(bn, in, rows, &s);
    } else {
        const float *moving_mean = layer->state, *moving_var = layer->state + c;
        for (size_t k = 0; k < c; k++) {
            s.mean[k] = moving_mean[k];
            s.inv_std[k] = (float)(1.0 / sqrt((double)moving_var[k] + (double)bn->epsilon));
        }
    }
    const float *gamma = bn->scale ? layer->kernel : NULL, *beta = bn->center ? layer->bias : NULL;
    const size_t n = rows * c;
    const int relu = pass->activation == FMNN_RELU; /* in the same pass; any other after it */
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < c; k++) {
                float v = (in[r * c + k] - s.mean[k]) * s.inv_std[k];
                if (gamma)
                    v *= gamma[k];
                if (beta)
                    v += beta[k];
                out[r * c + k] = relu && !(v > 0.0f) ? 0.0f : v;
            }
        fmnn__restore_fp_mode(fp);
    }
    if (!relu && pass->activation != FMNN_LINEAR)
        fmnn__activate(pass->activation, out, rows, c);
}

/*
 * With xhat = (x - mean) * inv_std: dbeta = sum dy, dgamma = sum dy xhat,
 * and, where the mean and variance are the batch's (training),
 *     dx = gamma inv_std / N (N dy - dbeta - xhat dgamma);
 * at inference they are constants, and dx = gamma inv_std dy.
 */
static void bn_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                        float *dout, float *din)
{
    const batch_normalization *bn = (const batch_normalization *)layer;
    const size_t c = (size_t)channels(layer);
    const size_t rows = fmnn__shape_size(&layer->in) / c * (size_t)pass->batch;
    const bn_saved s = saved_of(layer, pass);
    /* Through the fused activation first: a ReLU's mask in the sums' pass
     * below, any other kind here. */
    const int relu = pass->activation == FMNN_RELU;
    if (!relu && pass->activation != FMNN_LINEAR)
        fmnn__activate_backward(pass->activation, out, dout, rows, c);
    double *dbeta = s.sum, *dgamma = s.sum2;
#pragma omp parallel num_threads(fmnn__threads()) if (rows * c > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
        int first, last;
        fmnn__thread_band((int)c, CHANNEL_BAND, &first, &last);
        for (int k = first; k < last; k++)
            dbeta[k] = dgamma[k] = 0.0;
        for (size_t r = 0; r < rows; r++)
            for (int k = first; k < last; k++) {
                const size_t i = r * c + (size_t)k;
                if (relu && !(out[i] > 0.0f))
                    dout[i] = 0.0f;
                const float dy = dout[i];
                dbeta[k] += dy;
                dgamma[k] += (double)dy * ((in[i] - s.mean[k]) * s.inv_std[k]);
            }
        fmnn__restore_fp_mode(fp);
    }
    if (bn->scale)
        for (size_t k = 0; k < c; k++)
            layer->kernel_grad[k] = (float)dgamma[k];
    if (bn->center)
        for (size_t k = 0; k < c; k++)
            layer->bias_grad[k] = (float)dbeta[k];
    if (!din)
        return;
    const float *gamma = bn->scale ? layer->kernel : NULL;
    const int training = pass->training;
    const double inv_rows = 1.0 / (double)rows;
#pragma omp parallel num_threads(fmnn__threads()) if (rows * c > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < c; k++) {
                const float g = (gamma ? gamma[k] : 1.0f) * s.inv_std[k];
                const float dy = dout[r * c + k];
                if (!training) {
                    din[r * c + k] = g * dy;
                    continue;
                }
                const float xhat = (in[r * c + k] - s.mean[k]) * s.inv_std[k];
                din[r * c + k] = (float)(g * (dy - (dbeta[k] + xhat * dgamma[k]) * inv_rows));
            }
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field bn_fields[] = {
    FMNN__FLOAT(batch_normalization, momentum, "momentum", 0.0, 1.0, 0, 0, 0.99),
    FMNN__FLOAT(batch_normalization, epsilon, "epsilon", 0.0, HUGE_VAL, 1, 1, 1e-3),
    { "center", FMNN__FIELD_AT(batch_normalization, center), FMNN__FIELD_CHOICE, 0, 1, 0, 0, 1 },
    { "scale", FMNN__FIELD_AT(batch_normalization, scale), FMNN__FIELD_CHOICE, 0, 1, 0, 0, 1 },
};

const struct fmnn_layer_ops fmnn__batch_normalization_ops = {
    .type = "BatchNormalization",
    .base_name = "batch_normalization",
    .size = sizeof(batch_normalization),
    .config = FMNN__FIELDS(bn_fields),
    .fuses_activation = 1,
    .frozen_runs_as_inference = 1,
    .infer = bn_infer,
    .init = bn_init,
    .check_state = bn_check_state,
    .saved = bn_saved_bytes,
    .forward = bn_forward,
    .backward = bn_backward,
};

FMNN_API fmnn_layer *fmnn_batch_normalization(const fmnn_batch_normalization_options *options)
{
    batch_normalization *bn = (batch_normalization *)fmnn__layer_alloc(&fmnn__batch_normalization_ops);
    if (!bn)
        return NULL;
    const fmnn_batch_normalization_options defaults = FMNN_BATCH_NORMALIZATION_OPTIONS_INIT;
    const fmnn_batch_normalization_options *o = options ? options : &defaults;
    bn->momentum = o->momentum;
    bn->epsilon = o->epsilon != 0.0f ? o->epsilon : 1e-3f;
    bn->center = o->center;
    bn->scale = o->scale;
    return &bn->base;
}
