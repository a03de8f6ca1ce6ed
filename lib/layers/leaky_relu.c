/*
 * leaky_relu.c - the LeakyReLU layer: y = x for x > 0, negative_slope * x
 * otherwise.  Its slope is its own option, 0.3 by default as Keras's
 * layer has it (the leaky_relu activation, FMNN_LEAKY_RELU, uses 0.2).
 */
#include <math.h>

#include "layer_impl.h"

typedef struct leaky_relu {
    fmnn_layer base;
    float negative_slope;
} leaky_relu;

static int leaky_relu_infer(fmnn_layer *layer)
{
    layer->out = layer->in;
    return FMNN_OK;
}

static void leaky_relu_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const float slope = ((const leaky_relu *)layer)->negative_slope;
    const size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : slope * in[i];
        fmnn__restore_fp_mode(fp);
    }
}

static void leaky_relu_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                                float *dout, float *din)
{
    (void)out;
    if (!din)
        return;
    const float slope = ((const leaky_relu *)layer)->negative_slope;
    const size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            din[i] = in[i] > 0.0f ? dout[i] : slope * dout[i];
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field leaky_relu_fields[] = {
    FMNN__FLOAT(leaky_relu, negative_slope, "negative_slope", 0.0, HUGE_VAL, 0, 1, 0.3),
};

const struct fmnn_layer_ops fmnn__leaky_relu_ops = {
    .type = "LeakyReLU",
    .base_name = "leaky_re_lu",
    .size = sizeof(leaky_relu),
    .config = FMNN__FIELDS(leaky_relu_fields),
    .infer = leaky_relu_infer,
    .forward = leaky_relu_forward,
    .backward = leaky_relu_backward,
};

FMNN_API fmnn_layer *fmnn_leaky_relu(float negative_slope)
{
    leaky_relu *l = (leaky_relu *)fmnn__layer_alloc(&fmnn__leaky_relu_ops);
    if (l)
        l->negative_slope = negative_slope;
    return l ? &l->base : NULL;
}
