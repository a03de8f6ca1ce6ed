/* activation.c - Activation: applies relu, softmax, sigmoid, tanh or linear. */
#include <string.h>

#include "layer_impl.h"

static int activation_infer(fmnn_layer *layer)
{
    if ((unsigned)layer->activation > FMNN_TANH)
        return fmnn__layer_error(layer, FMNN_EINVAL, "unknown activation %d", (int)layer->activation);
    layer->out = layer->in;
    return FMNN_OK;
}

/* Softmax runs over the last axis; the others act elementwise. */
static size_t row_width(const fmnn_layer *layer)
{
    return (size_t)layer->in.dims[layer->in.rank - 1];
}

static void activation_forward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
    if (out != in)
        memcpy(out, in, n * sizeof *out);
    if (!layer->activation_in_loss)
        fmnn__activate(layer->activation, out, n / row_width(layer), row_width(layer));
}

static void activation_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                                const float *out, float *dout, float *din)
{
    (void)in;
    size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
    if (!din)
        return;
    if (!layer->activation_in_loss)
        fmnn__activate_backward(layer->activation, out, dout, n / row_width(layer), row_width(layer));
    memcpy(din, dout, n * sizeof *din);
}

static const struct fmnn_layer_ops activation_ops = {
    .type = "Activation",
    .code = FMNN_CODE_ACTIVATION,
    .base_name = "activation",
    .is_activation = 1,
    .infer = activation_infer,
    .forward = activation_forward,
    .backward = activation_backward,
};

FMNN_API fmnn_layer *fmnn_activation(fmnn_activation_kind kind)
{
    fmnn_layer *layer = fmnn__layer_alloc(sizeof *layer, &activation_ops);
    if (layer)
        layer->activation = kind;
    return layer;
}
