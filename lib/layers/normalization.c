/*
 * normalization.c - Normalization over the last axis, as Keras 3's
 * (keras/src/layers/preprocessing/normalization.py, call):
 *     y = (x - mean) / max(sqrt(variance), epsilon)
 * per channel, epsilon = backend.epsilon() = 1e-7, in training and
 * inference alike; with invert, y = mean + x * max(sqrt(variance),
 * epsilon).  The gradient is dy over (or times) the same divisor.
 *
 * The mean and variance are the layer's non-trainable state (mean, then
 * variance, per channel): given to the constructor (one value broadcast
 * to every channel, or one per channel), else 0 and 1 as Keras's adapt
 * weights start, until fmnn_model_adapt (adapt.c) computes them.  Keras
 * keeps given values as constants rather than weights; here they are
 * state either way, saved with the model.  Keras's axis other than -1 and
 * its count weight are not supported.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layer_impl.h"

typedef struct normalization {
    fmnn_layer base;
    int invert;
    /* What the constructor was given, for infer to check: */
    int has_values;   /* mean and variance were given */
    int unpaired;     /* one of them without the other */
    int count;        /* values of each, as given */
    float given[];    /* the mean, then the variance (count each, when copied) */
} normalization;

#define NORMALIZATION_EPSILON 1e-7f

static int channels(const fmnn_layer *layer)
{
    return layer->in.dims[layer->in.rank - 1];
}

static int normalization_infer(fmnn_layer *layer)
{
    const normalization *nz = (const normalization *)layer;
    const int c = channels(layer);
    if (nz->unpaired)
        return fmnn__layer_error(layer, FMNN_EINVAL, "mean and variance must be given together, or neither");
    const int count = nz->has_values ? nz->count : 0;
    if (nz->has_values && count != 1 && count != c)
        return fmnn__layer_error(layer, FMNN_ESHAPE,
                                 "mean and variance have %d values, but the input has %d channels (give 1 or %d)",
                                 count, c, c);
    for (int k = 0; k < count; k++) { /* 1 or c: the constructor copied them */
        if (!isfinite(nz->given[k]) || !isfinite(nz->given[count + k]))
            return fmnn__layer_error(layer, FMNN_ENUMERIC, "mean[%d] or variance[%d] is NaN or Inf", k, k);
        if (nz->given[count + k] < 0.0f)
            return fmnn__layer_error(layer, FMNN_EINVAL, "variance[%d] is negative (%g)", k,
                                     (double)nz->given[count + k]);
    }
    layer->out = layer->in;
    layer->n_state = 2 * (size_t)c;
    return FMNN_OK;
}

/* The given values, or Keras's adapt weights' zeros and ones. */
static void normalization_init(fmnn_layer *layer, fmnn_rng *rng)
{
    (void)rng;
    const normalization *nz = (const normalization *)layer;
    const size_t c = (size_t)channels(layer);
    const size_t count = nz->has_values ? (size_t)nz->count : 0; /* 0, 1 or c: infer checked it */
    for (size_t k = 0; k < c; k++) {
        const size_t at = count == 1 ? 0 : k;
        layer->state[k] = count ? nz->given[at] : 0.0f;
        layer->state[c + k] = count ? nz->given[count + at] : 1.0f;
    }
}

static int normalization_check_state(const fmnn_layer *layer, const float *state, char *msg, size_t size)
{
    const size_t c = (size_t)channels(layer);
    for (size_t k = 0; k < c; k++)
        if (state[c + k] < 0.0f) {
            snprintf(msg, size, "the variance of channel %zu is negative (%g)", k, (double)state[c + k]);
            return 1;
        }
    return 0;
}

/* The divisor of each channel. */
static size_t normalization_workspace(const fmnn_layer *layer, int batch)
{
    (void)batch;
    return (size_t)channels(layer);
}

static const float *divisors(const fmnn_layer *layer, const fmnn_pass *pass)
{
    const size_t c = (size_t)channels(layer);
    const float *variance = layer->state + c;
    for (size_t k = 0; k < c; k++)
        pass->workspace[k] = fmaxf(sqrtf(variance[k]), NORMALIZATION_EPSILON);
    return pass->workspace;
}

static void normalization_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const int invert = ((const normalization *)layer)->invert;
    const size_t c = (size_t)channels(layer);
    const size_t rows = fmnn__shape_size(&layer->in) / c * (size_t)pass->batch;
    const float *mean = layer->state, *d = divisors(layer, pass);
#pragma omp parallel num_threads(fmnn__threads()) if (rows * c > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < c; k++) {
                const float x = in[r * c + k];
                out[r * c + k] = invert ? mean[k] + x * d[k] : (x - mean[k]) / d[k];
            }
        fmnn__restore_fp_mode(fp);
    }
}

static void normalization_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                                   float *dout, float *din)
{
    (void)in;
    (void)out;
    if (!din)
        return;
    const int invert = ((const normalization *)layer)->invert;
    const size_t c = (size_t)channels(layer);
    const size_t rows = fmnn__shape_size(&layer->in) / c * (size_t)pass->batch;
    const float *d = divisors(layer, pass);
#pragma omp parallel num_threads(fmnn__threads()) if (rows * c > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < c; k++)
                din[r * c + k] = invert ? dout[r * c + k] * d[k] : dout[r * c + k] / d[k];
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field normalization_fields[] = {
    FMNN__CHOICE(normalization, invert, "invert", 0, 1),
};

const struct fmnn_layer_ops fmnn__normalization_ops = {
    .type = "Normalization",
    .base_name = "normalization",
    .size = sizeof(normalization),
    .config = FMNN__FIELDS(normalization_fields),
    .infer = normalization_infer,
    .init = normalization_init,
    .check_state = normalization_check_state,
    .workspace = normalization_workspace,
    .forward = normalization_forward,
    .backward = normalization_backward,
};

FMNN_API fmnn_layer *fmnn_normalization(const fmnn_normalization_options *options)
{
    const fmnn_normalization_options none = FMNN_NORMALIZATION_OPTIONS_INIT;
    const fmnn_normalization_options *o = options ? options : &none;
    /* Copied only when they can be: a count infer refuses is kept for its message. */
    const int copy = o->mean && o->variance && o->count >= 1 && o->count <= FMNN__MAX_SIZE;
    const size_t n = copy ? (size_t)o->count : 0;
    normalization *nz = (normalization *)fmnn__layer_alloc_extra(&fmnn__normalization_ops, 2 * n * sizeof(float));
    if (!nz)
        return NULL;
    nz->invert = o->invert;
    nz->has_values = o->mean && o->variance;
    nz->unpaired = !o->mean != !o->variance;
    nz->count = o->count;
    if (copy) {
        memcpy(nz->given, o->mean, n * sizeof(float));
        memcpy(nz->given + n, o->variance, n * sizeof(float));
    }
    return &nz->base;
}
