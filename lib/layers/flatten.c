/*
 * flatten.c - Flatten: (h, w, c) -> (h * w * c).  Channels-last storage
 * already is (h, w, c) order, so this is a copy that only renames the shape.
 */
#include <string.h>

#include "layer_impl.h"

static int flatten_infer(fmnn_layer *layer)
{
    layer->out.rank = 1;
    layer->out.dims[0] = (int)fmnn__shape_size(&layer->in);
    return FMNN_OK;
}

static void flatten_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    memcpy(out, in, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *out);
}

static void flatten_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                             const float *out, float *dout, float *din)
{
    (void)in;
    (void)out;
    if (din)
        memcpy(din, dout, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *din);
}

const struct fmnn_layer_ops fmnn__flatten_ops = {
    .type = "Flatten",
    .base_name = "flatten",
    .size = sizeof(fmnn_layer),
    .reshape_only = 1,
    .infer = flatten_infer,
    .forward = flatten_forward,
    .backward = flatten_backward,
};

FMNN_API fmnn_layer *fmnn_flatten(void)
{
    return fmnn__layer_alloc(&fmnn__flatten_ops);
}
