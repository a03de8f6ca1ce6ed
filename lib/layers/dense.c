/*
 * dense.c - Dense: y = f(x W + b) over the last axis, f being Keras's
 * activation= argument (the plan hands it over as pass->activation).
 *
 * Start reading the layers here.  The kernel W is (in, units), as Keras
 * stores it, so a batch of rows x (rows, in) is one GEMM.  Inputs of
 * higher rank are treated as rows of their last axis, as Keras does.
 */
#include "layer_impl.h"

typedef struct dense {
    fmnn_layer base;
    int units;
    int use_bias;
} dense;

static int dense_infer(fmnn_layer *layer)
{
    dense *d = (dense *)layer;
    layer->out = layer->in;
    int in_features = layer->in.dims[layer->in.rank - 1];
    layer->out.dims[layer->out.rank - 1] = d->units;
    layer->n_kernel = (size_t)in_features * (size_t)d->units;
    layer->n_bias = d->use_bias ? (size_t)d->units : 0;
    layer->fan_in = in_features;
    layer->fan_out = d->units;
    return FMNN_OK;
}

/* Rows of the GEMM: every axis but the last, over the whole batch. */
static int dense_rows(const fmnn_layer *layer, int batch)
{
    return (int)(fmnn__shape_size(&layer->in) / (size_t)layer->in.dims[layer->in.rank - 1]) * batch;
}

static void dense_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const dense *d = (const dense *)layer;
    int rows = dense_rows(layer, pass->batch);
    int in_features = layer->fan_in;
    fmnn__gemm(0, 0, rows, d->units, in_features, 1.0f, in, in_features,
               layer->kernel, d->units, 0.0f, out, d->units);
    fmnn__bias_activate(pass->activation, out, d->use_bias ? layer->bias : NULL, (size_t)rows, (size_t)d->units);
}

static void dense_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                           const float *out, float *dout, float *din)
{
    dense *d = (dense *)layer;
    int rows = dense_rows(layer, pass->batch);
    int in_features = layer->fan_in;
    /* dY through the activation, db = column sums of dY, dW = x^T dY, dx = dY W^T */
    fmnn__bias_activate_backward(pass->activation, out, dout, d->use_bias ? layer->bias_grad : NULL, (size_t)rows,
                                 (size_t)d->units, 0);
    fmnn__gemm(1, 0, in_features, d->units, rows, 1.0f, in, in_features, dout,
               d->units, 0.0f, layer->kernel_grad, d->units);
    if (din)
        fmnn__gemm(0, 1, rows, in_features, d->units, 1.0f, dout, d->units,
                   layer->kernel, d->units, 0.0f, din, in_features);
}

/* Its options, as model files keep them: checked at compile. */
static const fmnn_field dense_fields[] = {
    FMNN__SIZE(dense, units, "units"),
    FMNN__ACTIVATION_FIELD(dense),
    FMNN__REGULARIZER_FIELDS(dense),
    { "use_bias", FMNN__FIELD_AT(dense, use_bias), FMNN__FIELD_CHOICE, 0, 1, 0, 0, 1 },
    FMNN__INITIALIZER_FIELDS(dense),
};

const struct fmnn_layer_ops fmnn__dense_ops = {
    .type = "Dense",
    .base_name = "dense",
    .size = sizeof(dense),
    .config = FMNN__FIELDS(dense_fields),
    .fuses_activation = 1,
    .infer = dense_infer,
    .forward = dense_forward,
    .backward = dense_backward,
};

FMNN_API fmnn_layer *fmnn_dense(int units, const fmnn_dense_options *options)
{
    dense *d = (dense *)fmnn__layer_alloc(&fmnn__dense_ops);
    if (!d)
        return NULL;
    d->units = units;
    d->use_bias = 1;
    if (options) {
        d->base.activation = options->activation;
        d->base.regularizer = options->kernel_regularizer;
        d->use_bias = !options->no_bias;
        d->base.kernel_initializer = options->kernel_initializer;
        d->base.bias_initializer = options->bias_initializer;
    }
    return &d->base;
}
