/* activation.c - Activation: applies any fmnn_activation_kind (its
 * derivative from the output, or from the input for GELU and swish). */
#include <string.h>

#include "layer_impl.h"

static int activation_infer(fmnn_layer *layer)
{
    layer->out = layer->in;
    return FMNN_OK;
}

/* Softmax runs over the last axis; the others act elementwise. */
static size_t row_width(const fmnn_layer *layer)
{
    return (size_t)layer->in.dims[layer->in.rank - 1];
}

static void activation_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
    if (out != in)
        memcpy(out, in, n * sizeof *out);
    fmnn__activate(pass->activation, out, n / row_width(layer), row_width(layer));
}

static void activation_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                                const float *out, float *dout, float *din)
{
    size_t n = fmnn__shape_size(&layer->in) * (size_t)pass->batch;
    if (!din)
        return;
    if (fmnn__activation_needs_input(pass->activation))
        fmnn__activate_backward_from_input(pass->activation, in, dout, n);
    else
        fmnn__activate_backward(pass->activation, out, dout, n / row_width(layer), row_width(layer));
    memcpy(din, dout, n * sizeof *din);
}

static const fmnn_field activation_fields[] = {
    FMNN__CHOICE(fmnn_layer, activation, "activation", FMNN_LINEAR, FMNN__LAST_ACTIVATION),
};

const struct fmnn_layer_ops fmnn__activation_ops = {
    .type = "Activation",
    .base_name = "activation",
    .size = sizeof(fmnn_layer),
    .config = FMNN__FIELDS(activation_fields),
    .is_activation = 1,
    .infer = activation_infer,
    .forward = activation_forward,
    .backward = activation_backward,
};

FMNN_API fmnn_layer *fmnn_activation(fmnn_activation_kind kind)
{
    fmnn_layer *layer = fmnn__layer_alloc(&fmnn__activation_ops);
    if (layer)
        layer->activation = kind;
    return layer;
}
