/*
 * rescaling.c - Rescaling, as Keras 3's
 * (keras/src/layers/preprocessing/rescaling.py, call): y = x * scale +
 * offset, in training and inference alike; its gradient is dy * scale.
 * Scalar scale and offset only (Keras also takes one per channel).
 */
#include <math.h>

#include "layer_impl.h"

typedef struct rescaling {
    fmnn_layer base;
    float scale, offset;
} rescaling;

static int rescaling_infer(fmnn_layer *layer)
{
    layer->out = layer->in;
    return FMNN_OK;
}

static void rescaling_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const rescaling *r = (const rescaling *)layer;
    const float scale = r->scale, offset = r->offset;
    const size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] * scale + offset;
        fmnn__restore_fp_mode(fp);
    }
}

static void rescaling_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                               float *dout, float *din)
{
    (void)in;
    (void)out;
    if (!din)
        return;
    const float scale = ((const rescaling *)layer)->scale;
    const size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            din[i] = dout[i] * scale;
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field rescaling_fields[] = {
    FMNN__FLOAT(rescaling, scale, "scale", -HUGE_VAL, HUGE_VAL, 1, 1, 1.0),
    FMNN__FLOAT(rescaling, offset, "offset", -HUGE_VAL, HUGE_VAL, 1, 1, 0.0),
};

const struct fmnn_layer_ops fmnn__rescaling_ops = {
    .type = "Rescaling",
    .base_name = "rescaling",
    .size = sizeof(rescaling),
    .config = FMNN__FIELDS(rescaling_fields),
    .infer = rescaling_infer,
    .forward = rescaling_forward,
    .backward = rescaling_backward,
};

FMNN_API fmnn_layer *fmnn_rescaling(float scale, float offset)
{
    rescaling *r = (rescaling *)fmnn__layer_alloc(&fmnn__rescaling_ops);
    if (!r)
        return NULL;
    r->scale = scale;
    r->offset = offset;
    return &r->base;
}
