/*
 * export.c - fmnn_model_export_onnx: a compiled model as an ONNX graph
 * (opset 13), one layer after the other.
 *
 * The one difficulty is the layout.  libfmnn stores images channels-last
 * (h, w, c); ONNX's Conv, pooling and BatchNormalization want (c, h, w).
 * The exported graph takes NCHW input and keeps every image NCHW, so each
 * kernel is transposed once here.  A Flatten of an NCHW image orders its
 * values (c, h, w) where ours are (h, w, c): rather than transpose at run
 * time, the value is marked FLAT_CHW and the Dense that reads it gets its
 * kernel rows permuted to match.  Element-wise layers keep the mark; any
 * other layer that meets it first puts the values back in our order.
 *
 * Activations ONNX 13 has no op for are written as the small graphs
 * torch.onnx.export writes for them (GELU from Erf or Tanh, swish as
 * x * Sigmoid(x)), which import.c recognises.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_file.h"
#include "model_impl.h"
#include "onnx/layout.h"
#include "onnx/onnx_model.h"
#include "fmnn/version.h"

#define OPSET 13
#define IR_VERSION 7 /* the IR of opset 13 */

/* How an ONNX value holds one of our samples. */
typedef enum layout {
    PLAIN,    /* as we store it: rank 1 or 2, our order */
    IMAGE,    /* a (h, w, c) image held as (c, h, w) */
    FLAT_CHW  /* a flattened image in (c, h, w) order; `image` is its shape */
} layout;

typedef struct value {
    const char *name;
    layout layout;
    fmnn_shape shape; /* ours, without the batch axis */
    fmnn_shape image; /* FLAT_CHW: the image it was flattened from */
} value;

typedef struct exporter {
    fmnn__onnx_model *g;
    value v;                  /* the value the next layer reads */
    const fmnn_layer *layer;  /* the layer being written */
    int nodes_of_layer;       /* nodes written for it so far */
} exporter;

static double option(const fmnn_layer *layer, const char *name)
{
    double v = 0.0;
    fmnn__fields_value(&layer->ops->config, layer, name, &v);
    return v;
}

/* ---- nodes and constants ------------------------------------------------- */

/* A node of the current layer reading `inputs`; its output becomes the
 * current value.  The layer's first node is named after the layer, the
 * others "<layer>/<op><k>". */
static fmnn__onnx_node *node(exporter *e, const char *op, int n_in, const char *const *inputs)
{
    const char *name = e->nodes_of_layer == 0
                           ? fmnn__onnx_printf(e->g, "%s", e->layer->name)
                           : fmnn__onnx_printf(e->g, "%s/%s%d", e->layer->name, op, e->nodes_of_layer);
    e->nodes_of_layer++;
    fmnn__onnx_node *n = fmnn__onnx_add_node(e->g, op, name, n_in, inputs, name);
    if (name)
        e->v.name = name;
    return n;
}

/* A node of the current value and, when given, one constant. */
static fmnn__onnx_node *unary(exporter *e, const char *op)
{
    return node(e, op, 1, (const char *const[]){ e->v.name });
}

static fmnn__onnx_node *binary(exporter *e, const char *op, const char *other)
{
    return node(e, op, 2, (const char *const[]){ e->v.name, other });
}

/* An initializer named "<layer>.<what>". */
static const char *floats(exporter *e, const char *what, int rank, const int64_t *dims, const float *values)
{
    const char *name = fmnn__onnx_printf(e->g, "%s.%s", e->layer->name, what);
    fmnn__onnx_add_floats(e->g, name, rank, dims, values);
    return name;
}

static const char *scalar(exporter *e, const char *what, float v)
{
    return floats(e, what, 0, NULL, &v);
}

static const char *int64s(exporter *e, const char *what, int n, const int64_t *values)
{
    const char *name = fmnn__onnx_printf(e->g, "%s.%s", e->layer->name, what);
    fmnn__onnx_add_int64s(e->g, name, 1, (const int64_t[]){ n }, values);
    return name;
}

/* A per-channel constant shaped to broadcast over the current value:
 * (c, 1, 1) against an NCHW image, (c) against the last axis otherwise. */
static const char *per_channel(exporter *e, const char *what, const float *values, int c)
{
    if (e->v.layout == IMAGE)
        return floats(e, what, 3, (const int64_t[]){ c, 1, 1 }, values);
    return floats(e, what, 1, (const int64_t[]){ c }, values);
}

/* ---- layouts ------------------------------------------------------------- */

/* Puts the current value in our own order, channels last: an NCHW image
 * becomes NHWC (so that a Reshape sees our order), a FLAT_CHW vector is
 * unflattened, transposed and flattened again. */
static void to_our_order(exporter *e)
{
    if (e->v.layout == FLAT_CHW) {
        const fmnn_shape *s = &e->v.image;
        const int64_t chw[4] = { -1, s->dims[2], s->dims[0], s->dims[1] };
        binary(e, "Reshape", int64s(e, "chw", 4, chw));
        fmnn__onnx_attr_ints(e->g, unary(e, "Transpose"), "perm", 4, (const int64_t[]){ 0, 2, 3, 1 });
        fmnn__onnx_attr_int(e->g, unary(e, "Flatten"), "axis", 1);
    } else if (e->v.layout == IMAGE) {
        fmnn__onnx_attr_ints(e->g, unary(e, "Transpose"), "perm", 4, (const int64_t[]){ 0, 2, 3, 1 });
    }
    e->v.layout = PLAIN;
}

/* ---- activations --------------------------------------------------------- */

#define SQRT_2 1.41421356237309504880f

/* x * sigmoid(x), or GELU, as torch.onnx.export writes them at opset 13. */
static void swish(exporter *e)
{
    const char *x = e->v.name;
    unary(e, "Sigmoid");
    node(e, "Mul", 2, (const char *const[]){ x, e->v.name });
}

static void gelu(exporter *e)
{
    const char *x = e->v.name;
    binary(e, "Div", scalar(e, "sqrt_2", SQRT_2));
    unary(e, "Erf");
    binary(e, "Add", scalar(e, "one", 1.0f));
    node(e, "Mul", 2, (const char *const[]){ x, e->v.name });
    binary(e, "Mul", scalar(e, "half", 0.5f));
}

static void gelu_tanh(exporter *e)
{
    const char *x = e->v.name;
    node(e, "Mul", 2, (const char *const[]){ x, x });
    node(e, "Mul", 2, (const char *const[]){ x, e->v.name });
    binary(e, "Mul", scalar(e, "kappa", FMNN__GELU_TANH_A));
    node(e, "Add", 2, (const char *const[]){ x, e->v.name });
    binary(e, "Mul", scalar(e, "beta", FMNN__GELU_TANH_C));
    unary(e, "Tanh");
    binary(e, "Add", scalar(e, "one", 1.0f));
    node(e, "Mul", 2, (const char *const[]){ x, e->v.name });
    binary(e, "Mul", scalar(e, "half", 0.5f));
}

static void activation(exporter *e, fmnn_activation_kind kind)
{
    fmnn__onnx_node *n;
    switch (kind) {
    case FMNN_LINEAR: break;
    case FMNN_RELU: unary(e, "Relu"); break;
    case FMNN_SIGMOID: unary(e, "Sigmoid"); break;
    case FMNN_TANH: unary(e, "Tanh"); break;
    case FMNN_SOFTPLUS: unary(e, "Softplus"); break;
    case FMNN_SOFTMAX: /* over our last axis: the channels of an image */
        fmnn__onnx_attr_int(e->g, unary(e, "Softmax"), "axis", e->v.layout == IMAGE ? 1 : -1);
        break;
    case FMNN_LEAKY_RELU: fmnn__onnx_attr_float(e->g, unary(e, "LeakyRelu"), "alpha", FMNN__LEAKY_SLOPE); break;
    case FMNN_ELU: fmnn__onnx_attr_float(e->g, unary(e, "Elu"), "alpha", 1.0f); break;
    case FMNN_SELU:
        n = unary(e, "Selu");
        fmnn__onnx_attr_float(e->g, n, "alpha", FMNN__SELU_ALPHA);
        fmnn__onnx_attr_float(e->g, n, "gamma", FMNN__SELU_SCALE);
        break;
    case FMNN_HARD_SIGMOID:
        n = unary(e, "HardSigmoid");
        fmnn__onnx_attr_float(e->g, n, "alpha", 1.0f / 6.0f);
        fmnn__onnx_attr_float(e->g, n, "beta", 0.5f);
        break;
    case FMNN_SWISH: swish(e); break;
    case FMNN_GELU: gelu(e); break;
    case FMNN_GELU_TANH: gelu_tanh(e); break;
    }
}

/* ---- layers -------------------------------------------------------------- */

/* The padding TensorFlow puts before and after a window of `span` moved
 * by `stride` over `in` values to give `out` (none for valid padding). */
static void window_pads(int in, int out, int span, int stride, int64_t *before, int64_t *after)
{
    long long total = (long long)(out - 1) * stride + span - in;
    if (total < 0)
        total = 0;
    *before = total / 2;
    *after = total - total / 2;
}

/* kernel_shape, strides and pads of a 2-D window over the layer's input. */
static void window_attrs(exporter *e, fmnn__onnx_node *n, int kh, int kw, int dh, int dw)
{
    const fmnn_layer *l = e->layer;
    const int sh = (int)option(l, "strides[0]"), sw = (int)option(l, "strides[1]");
    int64_t pads[4];
    window_pads(l->in.dims[0], l->out.dims[0], (kh - 1) * dh + 1, sh, &pads[0], &pads[2]);
    window_pads(l->in.dims[1], l->out.dims[1], (kw - 1) * dw + 1, sw, &pads[1], &pads[3]);
    fmnn__onnx_attr_ints(e->g, n, "kernel_shape", 2, (const int64_t[]){ kh, kw });
    fmnn__onnx_attr_ints(e->g, n, "strides", 2, (const int64_t[]){ sh, sw });
    fmnn__onnx_attr_ints(e->g, n, "pads", 4, pads);
}

static int export_conv2d(exporter *e, const fmnn_layer *l)
{
    const int kh = (int)option(l, "kernel_size[0]"), kw = (int)option(l, "kernel_size[1]");
    const int dh = (int)option(l, "dilation_rate[0]"), dw = (int)option(l, "dilation_rate[1]");
    const int c = l->in.dims[2], f = l->out.dims[2];
    /* (kh, kw, c, f) -> (f, c, kh, kw) */
    float *w = fmnn__alloc_array(l->n_kernel, sizeof *w, "the ONNX kernel");
    if (!w)
        return FMNN_ENOMEM;
    for (int y = 0; y < kh; y++)
        for (int x = 0; x < kw; x++)
            for (int k = 0; k < c; k++)
                for (int o = 0; o < f; o++)
                    w[(((size_t)o * c + k) * kh + y) * kw + x] = l->kernel[(((size_t)y * kw + x) * c + k) * f + o];
    const char *inputs[3] = { e->v.name, floats(e, "kernel", 4, (const int64_t[]){ f, c, kh, kw }, w), NULL };
    fmnn__free(w);
    if (l->n_bias)
        inputs[2] = floats(e, "bias", 1, (const int64_t[]){ f }, l->bias);
    fmnn__onnx_node *n = node(e, "Conv", l->n_bias ? 3 : 2, inputs);
    window_attrs(e, n, kh, kw, dh, dw);
    fmnn__onnx_attr_ints(e->g, n, "dilations", 2, (const int64_t[]){ dh, dw });
    fmnn__onnx_attr_int(e->g, n, "group", 1);
    activation(e, l->activation);
    return FMNN_OK;
}

/* Dense over an image's channels is a 1x1 convolution; over a vector a
 * Gemm, its kernel rows permuted after a Flatten; over a rank-2 sample
 * a MatMul over the last axis. */
static int export_dense(exporter *e, const fmnn_layer *l)
{
    const int in = l->fan_in, units = l->fan_out;
    float *w = fmnn__alloc_array(l->n_kernel, sizeof *w, "the ONNX kernel");
    if (!w)
        return FMNN_ENOMEM;
    const char *bias = l->n_bias ? floats(e, "bias", 1, (const int64_t[]){ units }, l->bias) : NULL;
    if (e->v.layout == IMAGE) {
        for (int i = 0; i < in; i++)
            for (int o = 0; o < units; o++)
                w[(size_t)o * in + i] = l->kernel[(size_t)i * units + o];
        const char *inputs[3] = { e->v.name, floats(e, "kernel", 4, (const int64_t[]){ units, in, 1, 1 }, w), bias };
        fmnn__onnx_node *n = node(e, "Conv", bias ? 3 : 2, inputs);
        fmnn__onnx_attr_ints(e->g, n, "kernel_shape", 2, (const int64_t[]){ 1, 1 });
    } else {
        for (size_t i = 0; i < (size_t)in; i++) {
            const size_t row = e->v.layout == FLAT_CHW ? fmnn__chw_index(&e->v.image, i) : i;
            memcpy(w + row * (size_t)units, l->kernel + i * (size_t)units, (size_t)units * sizeof *w);
        }
        e->v.layout = PLAIN;
        const char *kernel = floats(e, "kernel", 2, (const int64_t[]){ in, units }, w);
        if (l->in.rank == 1) {
            node(e, "Gemm", bias ? 3 : 2, (const char *const[]){ e->v.name, kernel, bias });
        } else {
            binary(e, "MatMul", kernel);
            if (bias)
                binary(e, "Add", bias);
        }
    }
    fmnn__free(w);
    activation(e, l->activation);
    return FMNN_OK;
}

static int export_pool(exporter *e, const fmnn_layer *l, const char *op)
{
    fmnn__onnx_node *n = unary(e, op);
    window_attrs(e, n, (int)option(l, "pool_size[0]"), (int)option(l, "pool_size[1]"), 1, 1);
    if (strcmp(op, "AveragePool") == 0) /* Keras divides a border window by the pixels it covers */
        fmnn__onnx_attr_int(e->g, n, "count_include_pad", 0);
    return FMNN_OK;
}

static int export_maxpool2d(exporter *e, const fmnn_layer *l)
{
    return export_pool(e, l, "MaxPool");
}

static int export_average_pooling2d(exporter *e, const fmnn_layer *l)
{
    return export_pool(e, l, "AveragePool");
}

/* ONNX keeps the 1x1 image: flatten it to our (c). */
static int export_global_pool(exporter *e, const char *op)
{
    unary(e, op);
    fmnn__onnx_attr_int(e->g, unary(e, "Flatten"), "axis", 1);
    e->v.layout = PLAIN;
    return FMNN_OK;
}

static int export_global_average_pooling2d(exporter *e, const fmnn_layer *l)
{
    (void)l;
    return export_global_pool(e, "GlobalAveragePool");
}

static int export_global_max_pooling2d(exporter *e, const fmnn_layer *l)
{
    (void)l;
    return export_global_pool(e, "GlobalMaxPool");
}

static int export_batch_normalization(exporter *e, const fmnn_layer *l)
{
    if (l->in.rank == 2)
        return fmnn__layer_error(l, FMNN_ENOTSUP, "fmnn_model_export_onnx: ONNX normalizes axis 1, this layer the "
                                 "last axis of a rank-2 sample");
    if (e->v.layout == FLAT_CHW)
        to_our_order(e);
    const int c = l->in.dims[l->in.rank - 1];
    float *ones = fmnn__alloc_array((size_t)c, 2 * sizeof *ones, "BatchNormalization's defaults");
    if (!ones)
        return FMNN_ENOMEM;
    for (int k = 0; k < c; k++) {
        ones[k] = 1.0f;
        ones[c + k] = 0.0f;
    }
    const int64_t dims[1] = { c };
    const char *inputs[5] = {
        e->v.name,
        floats(e, "gamma", 1, dims, option(l, "scale") != 0.0 ? l->kernel : ones),
        floats(e, "beta", 1, dims, option(l, "center") != 0.0 ? l->bias : ones + c),
        floats(e, "moving_mean", 1, dims, l->state),
        floats(e, "moving_variance", 1, dims, l->state + c),
    };
    fmnn__free(ones);
    fmnn__onnx_node *n = node(e, "BatchNormalization", 5, inputs);
    fmnn__onnx_attr_float(e->g, n, "epsilon", (float)option(l, "epsilon"));
    fmnn__onnx_attr_float(e->g, n, "momentum", (float)option(l, "momentum"));
    return FMNN_OK;
}

static int export_flatten(exporter *e, const fmnn_layer *l)
{
    if (l->in.rank == 1)
        return FMNN_OK;
    const int was_image = e->v.layout == IMAGE;
    fmnn__onnx_attr_int(e->g, unary(e, "Flatten"), "axis", 1);
    /* A 1x1 image, or a one-channel one, flattens in the same order either way. */
    e->v.layout = was_image && l->in.dims[0] * l->in.dims[1] > 1 && l->in.dims[2] > 1 ? FLAT_CHW : PLAIN;
    e->v.image = l->in;
    return FMNN_OK;
}

static int export_reshape(exporter *e, const fmnn_layer *l)
{
    if (l->out.rank > 3)
        return fmnn__layer_error(l, FMNN_ENOTSUP, "fmnn_model_export_onnx: a rank-%d sample has no ONNX layout here",
                                 l->out.rank);
    to_our_order(e);
    int64_t shape[FMNN_MAX_RANK + 1] = { -1 };
    for (int d = 0; d < l->out.rank; d++)
        shape[d + 1] = l->out.dims[d];
    binary(e, "Reshape", int64s(e, "shape", l->out.rank + 1, shape));
    if (l->out.rank == 3) {
        fmnn__onnx_attr_ints(e->g, unary(e, "Transpose"), "perm", 4, (const int64_t[]){ 0, 3, 1, 2 });
        e->v.layout = IMAGE;
    }
    return FMNN_OK;
}

static int export_zero_padding2d(exporter *e, const fmnn_layer *l)
{
    const int64_t pads[8] = { 0, 0, (int64_t)option(l, "padding[0][0]"), (int64_t)option(l, "padding[1][0]"),
                              0, 0, (int64_t)option(l, "padding[0][1]"), (int64_t)option(l, "padding[1][1]") };
    binary(e, "Pad", int64s(e, "pads", 8, pads));
    return FMNN_OK;
}

static int export_activation(exporter *e, const fmnn_layer *l)
{
    activation(e, l->activation);
    return FMNN_OK;
}

static int export_leaky_relu(exporter *e, const fmnn_layer *l)
{
    fmnn__onnx_attr_float(e->g, unary(e, "LeakyRelu"), "alpha", (float)option(l, "negative_slope"));
    return FMNN_OK;
}

static int export_rescaling(exporter *e, const fmnn_layer *l)
{
    binary(e, "Mul", scalar(e, "scale", (float)option(l, "scale")));
    binary(e, "Add", scalar(e, "offset", (float)option(l, "offset")));
    return FMNN_OK;
}

/* (x - mean) / max(sqrt(variance), 1e-7), or its inverse, per channel. */
static int export_normalization(exporter *e, const fmnn_layer *l)
{
    if (e->v.layout == FLAT_CHW)
        to_our_order(e);
    const int c = l->in.dims[l->in.rank - 1];
    float *d = fmnn__alloc_array((size_t)c, sizeof *d, "Normalization's divisors");
    if (!d)
        return FMNN_ENOMEM;
    for (int k = 0; k < c; k++)
        d[k] = fmaxf(sqrtf(l->state[c + k]), 1e-7f);
    const char *mean = per_channel(e, "mean", l->state, c), *divisor = per_channel(e, "divisor", d, c);
    fmnn__free(d);
    if (option(l, "invert") != 0.0) {
        binary(e, "Mul", divisor);
        binary(e, "Add", mean);
    } else {
        binary(e, "Sub", mean);
        binary(e, "Div", divisor);
    }
    return FMNN_OK;
}

/* Dropout and augmentation are the identity at inference. */
static int export_nothing(exporter *e, const fmnn_layer *l)
{
    (void)e;
    (void)l;
    return FMNN_OK;
}

static const struct {
    const char *type;
    int (*write)(exporter *e, const fmnn_layer *l);
} layer_writers[] = {
    { "Conv2D", export_conv2d },
    { "Dense", export_dense },
    { "MaxPooling2D", export_maxpool2d },
    { "AveragePooling2D", export_average_pooling2d },
    { "GlobalAveragePooling2D", export_global_average_pooling2d },
    { "GlobalMaxPooling2D", export_global_max_pooling2d },
    { "BatchNormalization", export_batch_normalization },
    { "Flatten", export_flatten },
    { "Reshape", export_reshape },
    { "ZeroPadding2D", export_zero_padding2d },
    { "Activation", export_activation },
    { "LeakyReLU", export_leaky_relu },
    { "Rescaling", export_rescaling },
    { "Normalization", export_normalization },
    { "Dropout", export_nothing },
    { "RandomFlip", export_nothing },
    { "RandomTranslation", export_nothing },
    { "RandomRotation", export_nothing },
    { "RandomZoom", export_nothing },
    { "RandomContrast", export_nothing },
};

static int export_layer(exporter *e, const fmnn_layer *l)
{
    e->layer = l;
    e->nodes_of_layer = 0;
    for (size_t i = 0; i < sizeof layer_writers / sizeof *layer_writers; i++)
        if (strcmp(l->ops->type, layer_writers[i].type) == 0) {
            int err = layer_writers[i].write(e, l);
            e->v.shape = l->out;
            return err;
        }
    return fmnn__layer_error(l, FMNN_ENOTSUP, "fmnn_model_export_onnx: no ONNX form for %s", l->ops->type);
}

/* ---- the graph ----------------------------------------------------------- */

/* The batch, then the sample in ONNX's layout: (c, h, w) for an image. */
static int onnx_dims(const fmnn_shape *s, layout layout, int64_t *dims)
{
    dims[0] = -1;
    if (layout == IMAGE) {
        dims[1] = s->dims[2];
        dims[2] = s->dims[0];
        dims[3] = s->dims[1];
    } else {
        for (int d = 0; d < s->rank; d++)
            dims[d + 1] = s->dims[d];
    }
    return s->rank + 1;
}

static int build_graph(const fmnn_model *m, fmnn__onnx_model *g)
{
    if (m->input.rank > 3)
        return fmnn__error(FMNN_ENOTSUP, "fmnn_model_export_onnx: a rank-%d input has no ONNX layout here",
                           m->input.rank);
    exporter e = { g, { "input", m->input.rank == 3 ? IMAGE : PLAIN, m->input, { 0 } }, NULL, 0 };
    int64_t dims[FMNN_MAX_RANK + 1];
    fmnn__onnx_add_input(g, "input", onnx_dims(&m->input, e.v.layout, dims), dims, "N");
    for (int i = 0; i < m->n_layers; i++) {
        int err = export_layer(&e, m->layers[i]);
        if (err)
            return err;
    }
    e.layer = m->layers[m->n_layers - 1];
    if (e.v.layout == FLAT_CHW)
        to_our_order(&e);
    if (strcmp(e.v.name, "input") == 0) /* every layer vanished */
        unary(&e, "Identity");
    if (g->n_nodes > 0 && !g->failed)
        g->nodes[g->n_nodes - 1].outputs[0] = "output";
    fmnn__onnx_add_output(g, "output", onnx_dims(&e.v.shape, e.v.layout, dims), dims, "N");
    return FMNN_OK;
}

static int write_bytes(FILE *file, const void *context, int *error)
{
    const struct { const unsigned char *data; size_t size; } *bytes = context;
    errno = 0;
    if (fwrite(bytes->data, 1, bytes->size, file) != bytes->size) {
        *error = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

FMNN_API int fmnn_model_export_onnx(const fmnn_model *m, const char *path)
{
    if (!m || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_export_onnx: %s is NULL", m ? "path" : "model");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_export_onnx: compile the model first");
    fmnn__onnx_model *g = fmnn__onnx_new(IR_VERSION, OPSET, "libfmnn", FMNN_VERSION_STRING, "libfmnn");
    if (!g)
        return FMNN_ENOMEM;
    int err = build_graph(m, g);
    struct { unsigned char *data; size_t size; } bytes = { NULL, 0 };
    if (!err)
        err = fmnn__onnx_serialize(g, &bytes.data, &bytes.size);
    fmnn__onnx_free(g);
    if (!err)
        err = fmnn__file_replace(path, "fmnn_model_export_onnx", write_bytes, &bytes);
    fmnn__free(bytes.data);
    return err;
}
