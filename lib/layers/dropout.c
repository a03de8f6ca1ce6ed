/*
 * dropout.c - Dropout, inverted as in Keras: in training each value is
 * zeroed with probability rate and the rest are scaled by 1 / (1 - rate),
 * so inference is the identity.
 *
 * The mask of value i comes from a hash of (step seed, i) rather than a
 * sequential generator, so threads can draw it in any order and still get
 * the same mask; i counts from the global batch's start, so processes
 * sharing a batch draw the mask one process would.
 */
#include <string.h>

#include "layer_impl.h"

typedef struct dropout {
    fmnn_layer base;
    float rate;
} dropout;

static int dropout_infer(fmnn_layer *layer)
{
    layer->out = layer->in;
    return FMNN_OK;
}

static size_t dropout_saved(const fmnn_layer *layer, int batch)
{
    return fmnn__shape_size(&layer->in) * (size_t)batch; /* one keep byte per value */
}

/* 1 if value i is kept in the step with this seed. */
static inline int keep(uint64_t seed, size_t i, float rate)
{
    uint64_t bits = fmnn__mix64(seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1));
    return (float)(bits >> 40) * (1.0f / 16777216.0f) >= rate;
}

static void dropout_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const dropout *d = (const dropout *)layer;
    size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
    if (!pass->training || d->rate == 0.0f) {
        if (out != in)
            memcpy(out, in, n * sizeof *out);
        return;
    }
    unsigned char *mask = pass->saved;
    float scale = 1.0f / (1.0f - d->rate);
    /* Each dropout layer of the model draws its own mask. */
    uint64_t seed = pass->seed ^ fmnn__mix64((uint64_t)layer->index + 1);
    const size_t at = fmnn__shape_size(&layer->in) * (size_t)pass->shard; /* this slice's place in the batch */
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            mask[i] = (unsigned char)keep(seed, at + i, d->rate);
            out[i] = mask[i] ? in[i] * scale : 0.0f;
        }
        fmnn__restore_fp_mode(fp);
    }
}

static void dropout_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                             const float *out, float *dout, float *din)
{
    (void)in;
    (void)out;
    dropout *d = (dropout *)layer;
    size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
    if (!din)
        return;
    if (!pass->training || d->rate == 0.0f) {
        memcpy(din, dout, n * sizeof *din);
        return;
    }
    const unsigned char *mask = pass->saved;
    float scale = 1.0f / (1.0f - d->rate);
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            din[i] = mask[i] ? dout[i] * scale : 0.0f;
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field dropout_fields[] = {
    FMNN__FLOAT(dropout, rate, "rate", 0.0, 1.0, 0, 1, 0.0), /* [0, 1) */
};

const struct fmnn_layer_ops fmnn__dropout_ops = {
    .type = "Dropout",
    .base_name = "dropout",
    .size = sizeof(dropout),
    .config = FMNN__FIELDS(dropout_fields),
    .infer = dropout_infer,
    .saved = dropout_saved,
    .forward = dropout_forward,
    .backward = dropout_backward,
};

FMNN_API fmnn_layer *fmnn_dropout(float rate)
{
    dropout *d = (dropout *)fmnn__layer_alloc(&fmnn__dropout_ops);
    if (!d)
        return NULL;
    d->rate = rate;
    return &d->base;
}
