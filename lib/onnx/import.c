/*
 * import.c - fmnn_model_import_onnx: an ONNX graph that is a chain of
 * supported ops, as a compiled libfmnn model.
 *
 * The walk starts at the graph's one input and follows its value from
 * node to node: each value must be read by one node (or by the few nodes
 * of an activation ONNX spells out, GELU or swish), whose other inputs
 * are constants (initializers or Constant nodes).  Each op becomes a
 * layer, or folds into the layer before it (an activation after Conv2D or
 * Dense), or vanishes (Dropout, Identity).  Anything else is refused with
 * FMNN_ENOTSUP naming the node, its op type and why.
 *
 * Layouts, as in export.c: ONNX images are (c, h, w), ours (h, w, c), so
 * kernels are transposed, and a Flatten of an image gives values in
 * (c, h, w) order (FLAT_CHW), which the next Dense absorbs by permuting
 * its kernel rows.  Shapes come from the layers themselves: after each
 * layer is added the model's shapes are inferred again.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"
#include "onnx/fold.h"
#include "onnx/layout.h"
#include "onnx/onnx_model.h"

#define MIN_OPSET 11
#define MAX_OPSET 21
#define MAX_FILE_BYTES 0x7fffffffUL /* protobuf's limit on a message */

/* How an ONNX value holds one of our samples: PLAIN, a vector or (T, F)
 * in our order; IMAGE, our (h, w, c) image as ONNX's (c, h, w); FLAT_CHW,
 * a flattened image in (c, h, w) order; CHANNELS_LAST, our image as
 * ONNX's (h, w, c) (between export.c's Transposes around a Reshape). */
typedef enum layout { PLAIN, IMAGE, FLAT_CHW, CHANNELS_LAST } layout;

typedef struct value {
    const char *name;
    layout layout;
    fmnn_shape image;    /* FLAT_CHW: the image it was flattened from */
    int squeezed;        /* ours (c), ONNX's (c, 1, 1): after a global pooling */
} value;

/* Weights for a layer, set once the model is compiled. */
typedef struct weights {
    float *kernel, *bias, *state;
} weights;

typedef struct importer {
    const fmnn__onnx_model *g;
    const char *what;           /* the file, for messages */
    fmnn_model *m;
    weights *w;                 /* one per layer of m */
    int cap_w;
    unsigned char *done;        /* per node: walked, or folded into a constant */
    fmnn__onnx_tensor **folded; /* per node: the constant it computes (fold.h), or NULL */
    value v;                    /* the value the next node reads */
    const char *next;           /* the value after this node: its output, or
                                 * that of a node it took with it (MatMul's Add) */
    const fmnn__onnx_node *node; /* the node being read, for messages */
    int node_index;
    int folds_into_last;        /* the last layer's output is v: an activation may fold into it */
    const char *output;         /* the graph's output */
} importer;

/* "<file>: node 3 'name' (Conv): ..." with this status. */
static int node_error(const importer *im, int status, const char *fmt, ...) FMNN_PRINTF(3, 4);
static int node_error(const importer *im, int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return fmnn__error(status, "%s: node %d '%s' (%s): %s", im->what, im->node_index, im->node->name,
                       im->node->op_type, detail);
}

#define UNSUPPORTED(im, ...) node_error(im, FMNN_ENOTSUP, __VA_ARGS__)

/* ---- constants and attributes -------------------------------------------- */

/* The constant value called `name`: an initializer or a Constant's value. */
static const fmnn__onnx_tensor *constant(const importer *im, const char *name)
{
    const fmnn__onnx_tensor *t = fmnn__onnx_initializer(im->g, name);
    if (t)
        return t;
    for (int i = 0; i < im->g->n_nodes; i++) {
        const fmnn__onnx_node *n = &im->g->nodes[i];
        if (strcmp(n->op_type, "Constant") == 0 && n->n_outputs == 1 && strcmp(n->outputs[0], name) == 0) {
            const fmnn__onnx_attr *a = fmnn__onnx_node_attr(n, "value");
            return a && a->type == FMNN__ONNX_ATTR_TENSOR ? a->t : NULL;
        }
    }
    for (int i = 0; im->folded && i < im->g->n_nodes; i++)
        if (im->folded[i] && strcmp(im->folded[i]->name, name) == 0)
            return im->folded[i];
    return NULL;
}

static const fmnn__onnx_tensor *constant_for_fold(void *context, const char *name)
{
    return constant(context, name);
}

/* Input i of the node as float values, with a message when it is not
 * one: it must be a constant of FLOAT values, in memory. */
static const fmnn__onnx_tensor *float_input(const importer *im, int i, const char *role, int *err)
{
    const fmnn__onnx_node *n = im->node;
    const fmnn__onnx_tensor *t = i < n->n_inputs && n->inputs[i][0] ? constant(im, n->inputs[i]) : NULL;
    *err = FMNN_OK;
    if (!t)
        *err = UNSUPPORTED(im, "its %s (input %d) must be a constant: an initializer or a Constant node", role, i);
    else if (t->external)
        *err = UNSUPPORTED(im, "its %s '%s' is in an external data file, which libfmnn does not read", role, t->name);
    else if (t->data_type != FMNN__ONNX_FLOAT || !t->floats)
        *err = UNSUPPORTED(im, "its %s '%s' holds data type %d, not float", role, t->name, (int)t->data_type);
    return *err ? NULL : t;
}

static int64_t attr_int(const fmnn__onnx_node *n, const char *name, int64_t fallback)
{
    const fmnn__onnx_attr *a = fmnn__onnx_node_attr(n, name);
    return a && a->type == FMNN__ONNX_ATTR_INT ? a->i : fallback;
}

static float attr_float(const fmnn__onnx_node *n, const char *name, float fallback)
{
    const fmnn__onnx_attr *a = fmnn__onnx_node_attr(n, name);
    return a && a->type == FMNN__ONNX_ATTR_FLOAT ? a->f : fallback;
}

/* An INTS attribute of exactly n values into out (fallback when absent);
 * -1 with a message when it has another count. */
static int attr_ints(const importer *im, const char *name, int n, int64_t *out, int64_t fallback)
{
    const fmnn__onnx_attr *a = fmnn__onnx_node_attr(im->node, name);
    for (int i = 0; i < n; i++)
        out[i] = fallback;
    if (!a)
        return 0;
    if (a->type != FMNN__ONNX_ATTR_INTS || a->n_ints != (size_t)n)
        return UNSUPPORTED(im, "attribute %s must be %d integers", name, n);
    memcpy(out, a->ints, (size_t)n * sizeof *out);
    return 0;
}

static const char *attr_string(const fmnn__onnx_node *n, const char *name, const char *fallback)
{
    const fmnn__onnx_attr *a = fmnn__onnx_node_attr(n, name);
    return a && a->type == FMNN__ONNX_ATTR_STRING ? a->s : fallback;
}

static int near(float a, double b)
{
    return fabs((double)a - b) <= 1e-6 * fmax(1.0, fabs(b));
}

/* ---- the model being built ----------------------------------------------- */

static fmnn_layer *last_layer(const importer *im)
{
    return im->m->n_layers ? im->m->layers[im->m->n_layers - 1] : NULL;
}

/* Our shape of the current value: the model's input or the last layer's output. */
static const fmnn_shape *shape(const importer *im)
{
    const fmnn_layer *l = last_layer(im);
    return l ? &l->out : &im->m->input;
}

/* Adds a layer (taking `w`'s arrays), infers the shapes again and makes
 * the node's output the current value.  A layer the shapes refuse is
 * the node's error. */
static int add_layer(importer *im, fmnn_layer *layer, weights w, layout layout)
{
    if (im->m->n_layers == im->cap_w) {
        const int cap = im->cap_w ? 2 * im->cap_w : 16;
        weights *grown = fmnn__alloc_array((size_t)cap, sizeof *grown, "the imported weights");
        if (!grown) {
            fmnn_layer_free(layer);
            fmnn__free(w.kernel);
            fmnn__free(w.bias);
            fmnn__free(w.state);
            return FMNN_ENOMEM;
        }
        if (im->cap_w)
            memcpy(grown, im->w, (size_t)im->cap_w * sizeof *grown);
        fmnn__free(im->w);
        im->w = grown;
        im->cap_w = cap;
    }
    const int index = im->m->n_layers;
    int err = fmnn_model_add(im->m, layer);
    if (err) {
        fmnn__free(w.kernel);
        fmnn__free(w.bias);
        fmnn__free(w.state);
        return err;
    }
    im->w[index] = w;
    size_t n_params, n_state;
    if ((err = fmnn__model_infer(im->m, &n_params, &n_state)))
        return node_error(im, err == FMNN_ENOMEM ? err : FMNN_ENOTSUP, "as a libfmnn layer: %s", fmnn_last_error());
    im->v.layout = layout;
    im->v.squeezed = 0;
    im->folds_into_last = 1;
    return FMNN_OK;
}

/* add_layer for a layer that keeps its input's layout: element-wise or
 * per-channel, so the value is held as before. */
static int add_layer_in_place(importer *im, fmnn_layer *layer, weights w)
{
    const value before = im->v;
    const int err = add_layer(im, layer, w, before.layout);
    im->v.image = before.image;
    im->v.squeezed = before.squeezed;
    im->folds_into_last = 0; /* only a Conv2D's or Dense's output takes an activation */
    return err;
}

static float *copy_floats(const float *src, size_t n, const char *what)
{
    float *dst = fmnn__alloc_array(n ? n : 1, sizeof *dst, what);
    if (dst && n)
        memcpy(dst, src, n * sizeof *dst);
    return dst;
}

/* ---- windows ------------------------------------------------------------- */

/* A 2-D window's geometry from kernel_shape, strides, dilations, pads and
 * auto_pad, as Keras's padding: same when the pads are TensorFlow's
 * "same" for this input, valid when they are 0; else the explicit pads
 * in *pads (top, left, bottom, right) for a ZeroPadding2D before it. */
typedef struct window {
    int64_t kernel[2], strides[2], dilations[2], pads[4];
    fmnn_padding padding;
    int explicit_pads;
} window;

static int read_window(importer *im, window *w, int has_kernel_attr)
{
    const fmnn_shape *in = shape(im);
    if (attr_ints(im, "strides", 2, w->strides, 1) || attr_ints(im, "dilations", 2, w->dilations, 1) ||
        attr_ints(im, "pads", 4, w->pads, 0))
        return FMNN_ENOTSUP;
    if (has_kernel_attr && attr_ints(im, "kernel_shape", 2, w->kernel, 0))
        return FMNN_ENOTSUP;
    for (int d = 0; d < 2; d++) {
        if (w->kernel[d] < 1 || w->kernel[d] > FMNN__MAX_SIZE || w->strides[d] < 1 || w->strides[d] > FMNN__MAX_SIZE ||
            w->dilations[d] < 1 || w->dilations[d] > FMNN__MAX_SIZE)
            return UNSUPPORTED(im, "kernel %lldx%lld, strides %lldx%lld or dilations %lldx%lld out of range",
                               (long long)w->kernel[0], (long long)w->kernel[1], (long long)w->strides[0],
                               (long long)w->strides[1], (long long)w->dilations[0], (long long)w->dilations[1]);
    }
    for (int i = 0; i < 4; i++)
        if (w->pads[i] < 0 || w->pads[i] > FMNN__MAX_SIZE)
            return UNSUPPORTED(im, "pads[%d] is %lld", i, (long long)w->pads[i]);
    const char *auto_pad = attr_string(im->node, "auto_pad", "NOTSET");
    /* TensorFlow's "same": ceil(in / stride) outputs, the odd pad after. */
    int64_t same[4];
    for (int d = 0; d < 2; d++) {
        const int64_t in_d = in->dims[d], out = (in_d + w->strides[d] - 1) / w->strides[d];
        int64_t total = (out - 1) * w->strides[d] + (w->kernel[d] - 1) * w->dilations[d] + 1 - in_d;
        if (total < 0)
            total = 0;
        same[d] = total / 2;
        same[d + 2] = total - total / 2;
    }
    w->explicit_pads = 0;
    if (strcmp(auto_pad, "SAME_UPPER") == 0) {
        w->padding = FMNN_PADDING_SAME;
    } else if (strcmp(auto_pad, "VALID") == 0) {
        w->padding = FMNN_PADDING_VALID;
    } else if (strcmp(auto_pad, "NOTSET") == 0) {
        const int zero = !w->pads[0] && !w->pads[1] && !w->pads[2] && !w->pads[3];
        const int is_same = !memcmp(w->pads, same, sizeof same);
        w->padding = is_same && !zero ? FMNN_PADDING_SAME : FMNN_PADDING_VALID;
        w->explicit_pads = !zero && !is_same;
    } else {
        return UNSUPPORTED(im, "auto_pad %s: libfmnn pads as TensorFlow does (SAME_UPPER) or not at all", auto_pad);
    }
    return FMNN_OK;
}

/* A ZeroPadding2D of the window's explicit pads. */
static int add_padding(importer *im, const int64_t pads[4])
{
    return add_layer(im, fmnn_zero_padding2d((int)pads[0], (int)pads[2], (int)pads[1], (int)pads[3]),
                     (weights){ 0 }, IMAGE);
}

static int need_image(const importer *im)
{
    if (im->v.layout != IMAGE)
        return UNSUPPORTED(im, "its input must be an image (N, C, H, W)");
    return FMNN_OK;
}

/* ---- ops ----------------------------------------------------------------- */

static int import_conv(importer *im)
{
    int err;
    if ((err = need_image(im)))
        return err;
    const fmnn__onnx_tensor *k = float_input(im, 1, "weight", &err);
    if (err)
        return err;
    const int c = shape(im)->dims[2];
    if (k->rank != 4 || k->dims[1] != c)
        return UNSUPPORTED(im, "weight '%s' must be (filters, %d, kh, kw) for a %d-channel input", k->name, c, c);
    if (attr_int(im->node, "group", 1) != 1)
        return UNSUPPORTED(im, "group %lld: libfmnn's Conv2D is not grouped", (long long)attr_int(im->node, "group", 1));
    const int f = (int)k->dims[0], kh = (int)k->dims[2], kw = (int)k->dims[3];
    window w = { .kernel = { kh, kw } };
    if ((err = read_window(im, &w, 0)))
        return err;
    int64_t given[2];
    if (attr_ints(im, "kernel_shape", 2, given, 0) || (given[0] && (given[0] != kh || given[1] != kw)))
        return UNSUPPORTED(im, "kernel_shape does not match weight '%s'", k->name);
    const fmnn__onnx_tensor *b = NULL;
    if (im->node->n_inputs > 2 && im->node->inputs[2][0]) {
        if (!(b = float_input(im, 2, "bias", &err)))
            return err;
        if (b->count != (size_t)f)
            return UNSUPPORTED(im, "bias '%s' has %zu values for %d filters", b->name, b->count, f);
    }
    if (w.explicit_pads && (err = add_padding(im, w.pads)))
        return err;
    float *kernel = fmnn__alloc_array(k->count, sizeof *kernel, "the imported kernel");
    if (!kernel)
        return FMNN_ENOMEM;
    for (int o = 0; o < f; o++) /* (f, c, kh, kw) -> (kh, kw, c, f) */
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < kh; y++)
                for (int x = 0; x < kw; x++)
                    kernel[(((size_t)y * kw + x) * c + ch) * f + o] = k->floats[(((size_t)o * c + ch) * kh + y) * kw + x];
    fmnn_conv2d_options o = { 0 };
    o.stride_h = (int)w.strides[0];
    o.stride_w = (int)w.strides[1];
    o.padding = w.padding;
    o.dilation_h = (int)w.dilations[0];
    o.dilation_w = (int)w.dilations[1];
    o.no_bias = !b;
    weights wt = { kernel, b ? copy_floats(b->floats, b->count, "the imported bias") : NULL, NULL };
    if (b && !wt.bias) {
        fmnn__free(kernel);
        return FMNN_ENOMEM;
    }
    return add_layer(im, fmnn_conv2d(f, kh, kw, &o), wt, IMAGE);
}

/* The kernel (in, units) of a Dense reading the current value, from an
 * ONNX matrix b (in, units), or (units, in) when transposed, scaled by
 * alpha; its rows permuted when the value is a flattened NCHW image. */
static float *dense_kernel(const importer *im, const fmnn__onnx_tensor *b, int trans, float alpha, int in,
                           int units)
{
    float *k = fmnn__alloc_array((size_t)in * (size_t)units, sizeof *k, "the imported kernel");
    if (!k)
        return NULL;
    for (size_t i = 0; i < (size_t)in; i++) {
        const size_t row = im->v.layout == FLAT_CHW ? fmnn__chw_index(&im->v.image, i) : i;
        for (size_t o = 0; o < (size_t)units; o++) {
            const float x = trans ? b->floats[o * (size_t)in + row] : b->floats[row * (size_t)units + o];
            k[i * (size_t)units + o] = alpha == 1.0f ? x : alpha * x;
        }
    }
    return k;
}

/* A bias of `units` values from c (a scalar, (units) or (1, units)) times beta. */
static float *dense_bias(const importer *im, const fmnn__onnx_tensor *c, float beta, int units, int *err)
{
    *err = FMNN_OK;
    if (c->count != 1 && c->count != (size_t)units) {
        *err = UNSUPPORTED(im, "bias '%s' has %zu values for %d units", c->name, c->count, units);
        return NULL;
    }
    float *bias = fmnn__alloc_array((size_t)units, sizeof *bias, "the imported bias");
    if (!bias) {
        *err = FMNN_ENOMEM;
        return NULL;
    }
    for (int o = 0; o < units; o++)
        bias[o] = beta * c->floats[c->count == 1 ? 0 : o];
    return bias;
}

static int add_dense(importer *im, float *kernel, float *bias, int units)
{
    fmnn_dense_options o = { 0 };
    o.no_bias = !bias;
    return add_layer(im, fmnn_dense(units, &o), (weights){ kernel, bias, NULL }, PLAIN);
}

/* The features a Dense reads: the last axis of a vector or rank-2 sample. */
static int dense_input(const importer *im, int *in)
{
    const fmnn_shape *s = shape(im);
    *in = 0;
    if (im->v.layout == IMAGE)
        return UNSUPPORTED(im, "its input is an image: flatten it first");
    *in = s->dims[s->rank - 1];
    return FMNN_OK;
}

static int import_gemm(importer *im)
{
    int err, in;
    if ((err = dense_input(im, &in)))
        return err;
    if (shape(im)->rank != 1)
        return UNSUPPORTED(im, "Gemm multiplies matrices: its input must be (N, features)");
    if (attr_int(im->node, "transA", 0))
        return UNSUPPORTED(im, "transA=1 transposes the batch");
    const int trans = attr_int(im->node, "transB", 0) != 0;
    const fmnn__onnx_tensor *b = float_input(im, 1, "weight", &err);
    if (err)
        return err;
    if (b->rank != 2 || b->dims[trans ? 1 : 0] != in)
        return UNSUPPORTED(im, "weight '%s' must be a matrix of %d %s", b->name, in, trans ? "columns" : "rows");
    const int units = (int)b->dims[trans ? 0 : 1];
    const float alpha = attr_float(im->node, "alpha", 1.0f), beta = attr_float(im->node, "beta", 1.0f);
    float *bias = NULL;
    if (im->node->n_inputs > 2 && im->node->inputs[2][0]) {
        const fmnn__onnx_tensor *c = float_input(im, 2, "bias", &err);
        if (err || !(bias = dense_bias(im, c, beta, units, &err)))
            return err;
    }
    float *kernel = dense_kernel(im, b, trans, alpha, in, units);
    if (!kernel) {
        fmnn__free(bias);
        return FMNN_ENOMEM;
    }
    return add_dense(im, kernel, bias, units);
}

/* The one node reading `name` that the walk has not visited, or NULL;
 * *count is how many read it. */
static const fmnn__onnx_node *reader_of(const importer *im, const char *name, int *count, int *index)
{
    const fmnn__onnx_node *found = NULL;
    *count = 0;
    *index = -1;
    for (int i = 0; i < im->g->n_nodes; i++) {
        const fmnn__onnx_node *n = &im->g->nodes[i];
        if (im->done[i])
            continue;
        for (int j = 0; j < n->n_inputs; j++)
            if (strcmp(n->inputs[j], name) == 0) {
                if (!found) {
                    found = n;
                    *index = i;
                }
                ++*count;
                break;
            }
    }
    return found;
}

/* MatMul, and the Add of a bias that follows it, as one Dense. */
static int import_matmul(importer *im)
{
    int err, in;
    if ((err = dense_input(im, &in)))
        return err;
    const fmnn__onnx_tensor *b = float_input(im, 1, "weight", &err);
    if (err)
        return err;
    if (b->rank != 2 || b->dims[0] != in)
        return UNSUPPORTED(im, "weight '%s' must be a matrix of %d rows", b->name, in);
    const int units = (int)b->dims[1];
    float *bias = NULL;
    int readers, index;
    const fmnn__onnx_node *add = reader_of(im, im->node->outputs[0], &readers, &index);
    if (add && readers == 1 && strcmp(add->op_type, "Add") == 0 && add->n_inputs == 2 &&
        strcmp(add->inputs[0], im->node->outputs[0]) == 0) {
        const fmnn__onnx_tensor *c = constant(im, add->inputs[1]);
        if (c && !c->external && c->floats && (c->count == (size_t)units || c->count == 1)) {
            if (!(bias = dense_bias(im, c, 1.0f, units, &err)))
                return err;
            im->done[index] = 1;
            im->next = add->outputs[0];
        }
    }
    float *kernel = dense_kernel(im, b, 0, 1.0f, in, units);
    if (!kernel) {
        fmnn__free(bias);
        return FMNN_ENOMEM;
    }
    return add_dense(im, kernel, bias, units);
}

static int import_pool(importer *im, int average)
{
    int err;
    if ((err = need_image(im)))
        return err;
    window w = { 0 };
    if ((err = read_window(im, &w, 1)))
        return err;
    if (w.dilations[0] != 1 || w.dilations[1] != 1)
        return UNSUPPORTED(im, "dilations: libfmnn's pooling windows are not dilated");
    if (attr_int(im->node, "ceil_mode", 0))
        return UNSUPPORTED(im, "ceil_mode=1: libfmnn's pooling rounds the output size down");
    if (w.explicit_pads) {
        /* Zeros before an average over whole windows is count_include_pad=1;
         * a max ignores pads, which zeros would not. */
        if (!average || !attr_int(im->node, "count_include_pad", 0))
            return UNSUPPORTED(im, "pads %lld,%lld,%lld,%lld are neither none nor TensorFlow's same padding",
                               (long long)w.pads[0], (long long)w.pads[1], (long long)w.pads[2], (long long)w.pads[3]);
        if ((err = add_padding(im, w.pads)))
            return err;
    } else if (average && w.padding == FMNN_PADDING_SAME && attr_int(im->node, "count_include_pad", 0)) {
        return UNSUPPORTED(im, "count_include_pad=1 with same padding: Keras divides by the pixels a window covers");
    }
    fmnn_maxpool2d_options o = { (int)w.strides[0], (int)w.strides[1], w.padding };
    fmnn_layer *l = average ? fmnn_average_pooling2d((int)w.kernel[0], (int)w.kernel[1], &o)
                            : fmnn_maxpool2d((int)w.kernel[0], (int)w.kernel[1], &o);
    return add_layer(im, l, (weights){ 0 }, IMAGE);
}

static int import_maxpool(importer *im)
{
    return import_pool(im, 0);
}

static int import_averagepool(importer *im)
{
    return import_pool(im, 1);
}

static int import_global_pool(importer *im, fmnn_layer *layer)
{
    int err = need_image(im);
    if (err) {
        fmnn_layer_free(layer);
        return err;
    }
    if ((err = add_layer(im, layer, (weights){ 0 }, PLAIN)))
        return err;
    im->v.squeezed = 1;
    return FMNN_OK;
}

static int import_globalaveragepool(importer *im)
{
    return import_global_pool(im, fmnn_global_average_pooling2d());
}

static int import_globalmaxpool(importer *im)
{
    return import_global_pool(im, fmnn_global_max_pooling2d());
}

/* A per-channel array of the current value: in our order, and so
 * permuted when the value is a flattened NCHW image. */
static float *channel_array(const importer *im, const fmnn__onnx_tensor *t, int c, const char *role, int *err)
{
    *err = FMNN_OK;
    if (t->count != (size_t)c) {
        *err = UNSUPPORTED(im, "its %s '%s' has %zu values for %d channels", role, t->name, t->count, c);
        return NULL;
    }
    float *out = fmnn__alloc_array((size_t)c, sizeof *out, "an imported array");
    if (!out) {
        *err = FMNN_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < (size_t)c; i++)
        out[i] = t->floats[im->v.layout == FLAT_CHW ? fmnn__chw_index(&im->v.image, i) : i];
    return out;
}

static int import_batchnormalization(importer *im)
{
    const fmnn_shape *s = shape(im);
    if (s->rank == 2)
        return UNSUPPORTED(im, "ONNX normalizes axis 1 of (N, T, F); libfmnn's BatchNormalization the last axis");
    if (attr_int(im->node, "training_mode", 0))
        return UNSUPPORTED(im, "training_mode=1: import a model exported in eval mode");
    const int c = s->dims[s->rank - 1];
    const char *roles[4] = { "scale", "bias", "mean", "variance" };
    float *arrays[4] = { NULL };
    int err = FMNN_OK;
    for (int i = 0; i < 4 && !err; i++) {
        const fmnn__onnx_tensor *t = float_input(im, i + 1, roles[i], &err);
        if (!err)
            arrays[i] = channel_array(im, t, c, roles[i], &err);
    }
    float *state = err ? NULL : fmnn__alloc_array((size_t)c, 2 * sizeof *state, "the imported statistics");
    if (!err && !state)
        err = FMNN_ENOMEM;
    if (!err) {
        memcpy(state, arrays[2], (size_t)c * sizeof *state);
        memcpy(state + c, arrays[3], (size_t)c * sizeof *state);
        for (int k = 0; k < c && !err; k++)
            if (!(state[c + k] >= 0.0f))
                err = node_error(im, FMNN_EFORMAT, "variance[%d] is %g", k, (double)state[c + k]);
    }
    fmnn__free(arrays[2]);
    fmnn__free(arrays[3]);
    if (err) {
        fmnn__free(arrays[0]);
        fmnn__free(arrays[1]);
        fmnn__free(state);
        return err;
    }
    fmnn_batch_normalization_options o = FMNN_BATCH_NORMALIZATION_OPTIONS_INIT;
    o.momentum = attr_float(im->node, "momentum", 0.9f);
    o.epsilon = attr_float(im->node, "epsilon", 1e-5f);
    return add_layer_in_place(im, fmnn_batch_normalization(&o), (weights){ arrays[0], arrays[1], state });
}

/* The value is in our own order: a reshape of it is ours too. */
static int in_our_order(const importer *im)
{
    return im->v.layout == PLAIN || im->v.layout == CHANNELS_LAST || im->v.squeezed;
}

/* Permutes the outputs of the Dense that the current vector comes from
 * (through element-wise layers only), so that they come out in our
 * (h, w, c) order where ONNX reads them as (c, h, w): the Dense before
 * an Unflatten to an image. */
static int permute_dense_outputs(importer *im, const fmnn_shape *image)
{
    for (int i = im->m->n_layers - 1; i >= 0; i--) {
        const fmnn_layer *l = im->m->layers[i];
        const char *type = l->ops->type;
        if (strcmp(type, "Activation") == 0 || strcmp(type, "LeakyReLU") == 0 || strcmp(type, "Rescaling") == 0)
            continue;
        if (strcmp(type, "Dense") != 0 || l->in.rank != 1)
            break;
        const size_t in = (size_t)l->in.dims[0], units = (size_t)l->out.dims[0];
        float *k = fmnn__alloc_array(in * units + units, sizeof *k, "the permuted kernel");
        if (!k)
            return FMNN_ENOMEM;
        weights *w = &im->w[i];
        for (size_t j = 0; j < units; j++) {
            const size_t from = fmnn__chw_index(image, j);
            for (size_t r = 0; r < in; r++)
                k[r * units + j] = w->kernel[r * units + from];
            if (w->bias)
                k[in * units + j] = w->bias[from];
        }
        memcpy(w->kernel, k, in * units * sizeof *k);
        if (w->bias)
            memcpy(w->bias, k + in * units, units * sizeof *k);
        fmnn__free(k);
        return FMNN_OK;
    }
    return UNSUPPORTED(im, "a vector unflattened into ONNX's (c, h, w) must come from a Dense (through element-wise "
                       "layers only), whose outputs can be put in libfmnn's (h, w, c) order");
}

/* Whether the next node is a Transpose of this permutation. */
static int next_is_transpose(const importer *im, const int64_t perm[4])
{
    int readers, index;
    const fmnn__onnx_node *n = reader_of(im, im->node->outputs[0], &readers, &index);
    const fmnn__onnx_attr *a = n && readers == 1 && strcmp(n->op_type, "Transpose") == 0
                                   ? fmnn__onnx_node_attr(n, "perm") : NULL;
    return a && a->type == FMNN__ONNX_ATTR_INTS && a->n_ints == 4 && !memcmp(a->ints, perm, 4 * sizeof *perm);
}

static const int64_t to_channels_last[4] = { 0, 2, 3, 1 }, to_channels_first[4] = { 0, 3, 1, 2 };

/* A Transpose between ONNX's image layout and ours changes no value of
 * ours: only how ONNX holds it. */
static int import_transpose(importer *im)
{
    const fmnn__onnx_attr *a = fmnn__onnx_node_attr(im->node, "perm");
    const int ok = a && a->type == FMNN__ONNX_ATTR_INTS && a->n_ints == 4;
    if (ok && im->v.layout == IMAGE && !memcmp(a->ints, to_channels_last, sizeof to_channels_last)) {
        im->v.layout = CHANNELS_LAST;
        return FMNN_OK;
    }
    if (ok && im->v.layout == CHANNELS_LAST && !memcmp(a->ints, to_channels_first, sizeof to_channels_first)) {
        im->v.layout = IMAGE;
        return FMNN_OK;
    }
    return UNSUPPORTED(im, "libfmnn transposes only an image between (N, C, H, W) and (N, H, W, C)");
}

/* A Reshape (or Flatten) of the current value to `rank` sizes without
 * the batch. */
static int reshape_to(importer *im, int rank, const int64_t *target)
{
    const fmnn_shape s = *shape(im);
    if (rank == 1 && s.rank == 1) {
        im->v.squeezed = 0;
        return FMNN_OK;
    }
    if (rank == 1) {
        /* A 1x1 image, or a one-channel one, flattens in the same order either way. */
        const int chw = im->v.layout == IMAGE && s.dims[0] * s.dims[1] > 1 && s.dims[2] > 1;
        int err = add_layer(im, fmnn_flatten(), (weights){ 0 }, chw ? FLAT_CHW : PLAIN);
        im->v.image = s;
        return err;
    }
    if (rank > 3)
        return UNSUPPORTED(im, "a sample of rank %d: libfmnn's Reshape gives ranks 1 to 3", rank);
    int dims[3] = { (int)target[0], (int)target[1], rank == 3 ? (int)target[2] : 0 };
    if (rank == 3 && im->v.layout == FLAT_CHW && im->v.image.dims[2] == dims[0] && im->v.image.dims[0] == dims[1] &&
        im->v.image.dims[1] == dims[2]) /* back to the image it came from */
        return add_layer(im, fmnn_reshape(3, im->v.image.dims), (weights){ 0 }, IMAGE);
    if (!in_our_order(im))
        return UNSUPPORTED(im, "this reshape moves values between ONNX's channels-first and libfmnn's channels-last "
                           "orders in a way no libfmnn layer does");
    if (rank == 3 && !next_is_transpose(im, to_channels_first)) {
        /* ONNX reads the result as (c, h, w): ours is (h, w, c). */
        const fmnn_shape image = { 3, { dims[1], dims[2], dims[0], 0 } };
        if (s.rank != 1)
            return UNSUPPORTED(im, "only a vector is unflattened into an image");
        int err = permute_dense_outputs(im, &image);
        if (err)
            return err;
        return add_layer(im, fmnn_reshape(3, image.dims), (weights){ 0 }, IMAGE);
    }
    return add_layer(im, fmnn_reshape(rank, dims), (weights){ 0 }, rank == 3 ? CHANNELS_LAST : PLAIN);
}

/* A Reshape to a constant shape that keeps the batch. */
static int import_reshape(importer *im)
{
    const fmnn__onnx_node *n = im->node;
    const fmnn__onnx_tensor *t = n->n_inputs > 1 ? constant(im, n->inputs[1]) : NULL;
    if (!t || !t->ints || t->rank != 1 || t->count < 2 || t->count > 4)
        return UNSUPPORTED(im, "its shape must be a constant of 2 to 4 integers (this one is computed at run time "
                           "or has another rank)");
    if (attr_int(n, "allowzero", 0))
        return UNSUPPORTED(im, "allowzero=1");
    const fmnn_shape s = *shape(im);
    int64_t onnx_in[3] = { 0 }; /* the input's ONNX dims without the batch */
    int onnx_rank = s.rank;
    if (im->v.layout == IMAGE) {
        onnx_in[0] = s.dims[2], onnx_in[1] = s.dims[0], onnx_in[2] = s.dims[1];
    } else if (im->v.squeezed) {
        onnx_in[0] = s.dims[0], onnx_in[1] = onnx_in[2] = 1, onnx_rank = 3;
    } else {
        for (int d = 0; d < s.rank; d++)
            onnx_in[d] = s.dims[d];
    }
    const long long total = (long long)fmnn__shape_size(&s);
    if (t->ints[0] != 0 && t->ints[0] != -1)
        return UNSUPPORTED(im, "its shape must keep the batch (0 or -1 first), not %lld", (long long)t->ints[0]);
    long long known = 1;
    int unknown = -1;
    const int rank = (int)t->count - 1;
    int64_t target[3];
    for (int d = 0; d < rank; d++) {
        int64_t v = t->ints[d + 1];
        if (v == 0 && d < onnx_rank)
            v = onnx_in[d];
        if (t->ints[0] == 0 && v == -1 && unknown < 0) {
            unknown = d;
            continue;
        }
        if (v < 1 || v > total)
            return UNSUPPORTED(im, "shape[%d] is %lld", d + 1, (long long)t->ints[d + 1]);
        target[d] = v;
        known *= v;
    }
    if (unknown >= 0)
        target[unknown] = total / known;
    long long product = 1;
    for (int d = 0; d < rank; d++)
        product *= target[d];
    if (product != total)
        return UNSUPPORTED(im, "%lld values per sample do not reshape into this shape", total);
    if (rank == 3 && im->v.layout == IMAGE && target[0] == onnx_in[0] && target[1] == onnx_in[1])
        return FMNN_OK; /* the same shape */
    return reshape_to(im, rank, target);
}

static int import_flatten(importer *im)
{
    if (attr_int(im->node, "axis", 1) != 1)
        return UNSUPPORTED(im, "axis %lld: only the batch axis stays", (long long)attr_int(im->node, "axis", 1));
    return reshape_to(im, 1, NULL);
}

static int import_pad(importer *im)
{
    int err;
    if ((err = need_image(im)))
        return err;
    if (strcmp(attr_string(im->node, "mode", "constant"), "constant") != 0)
        return UNSUPPORTED(im, "mode %s: libfmnn pads with zeros", attr_string(im->node, "mode", ""));
    const fmnn__onnx_tensor *p = im->node->n_inputs > 1 ? constant(im, im->node->inputs[1]) : NULL;
    if (!p || !p->ints || p->count != 8)
        return UNSUPPORTED(im, "its pads must be a constant of 8 integers");
    if (im->node->n_inputs > 2 && im->node->inputs[2][0]) {
        const fmnn__onnx_tensor *c = constant(im, im->node->inputs[2]);
        if (!c || !c->floats || c->count != 1 || c->floats[0] != 0.0f)
            return UNSUPPORTED(im, "its constant_value must be 0");
    }
    const int64_t *q = p->ints;
    if (q[0] || q[1] || q[4] || q[5])
        return UNSUPPORTED(im, "it pads the batch or the channels");
    for (int i = 0; i < 8; i++)
        if (q[i] < 0 || q[i] > FMNN__MAX_SIZE)
            return UNSUPPORTED(im, "pads[%d] is %lld: libfmnn pads, it does not crop", i, (long long)q[i]);
    return add_padding(im, (const int64_t[]){ q[2], q[3], q[6], q[7] });
}

/* ---- activations --------------------------------------------------------- */

/* An activation: folded into the Conv2D or Dense just before it when that
 * one has none, else an Activation layer. */
static int add_activation(importer *im, fmnn_activation_kind kind)
{
    fmnn_layer *last = last_layer(im);
    if (last && im->folds_into_last && last->ops->fuses_activation && last->activation == FMNN_LINEAR &&
        (strcmp(last->ops->type, "Conv2D") == 0 || strcmp(last->ops->type, "Dense") == 0)) {
        last->activation = kind;
        im->folds_into_last = 0;
        return FMNN_OK;
    }
    return add_layer_in_place(im, fmnn_activation(kind), (weights){ 0 });
}

static int import_relu(importer *im) { return add_activation(im, FMNN_RELU); }
static int import_sigmoid(importer *im) { return add_activation(im, FMNN_SIGMOID); }
static int import_tanh(importer *im) { return add_activation(im, FMNN_TANH); }
static int import_softplus(importer *im) { return add_activation(im, FMNN_SOFTPLUS); }

static int import_elu(importer *im)
{
    if (!near(attr_float(im->node, "alpha", 1.0f), 1.0))
        return UNSUPPORTED(im, "alpha %g: libfmnn's elu has alpha 1", (double)attr_float(im->node, "alpha", 1.0f));
    return add_activation(im, FMNN_ELU);
}

static int import_selu(importer *im)
{
    if (!near(attr_float(im->node, "alpha", FMNN__SELU_ALPHA), FMNN__SELU_ALPHA) ||
        !near(attr_float(im->node, "gamma", FMNN__SELU_SCALE), FMNN__SELU_SCALE))
        return UNSUPPORTED(im, "alpha and gamma must be selu's own constants");
    return add_activation(im, FMNN_SELU);
}

static int import_hardsigmoid(importer *im)
{
    if (!near(attr_float(im->node, "alpha", 0.2f), 1.0 / 6.0) || !near(attr_float(im->node, "beta", 0.5f), 0.5))
        return UNSUPPORTED(im, "alpha and beta must be 1/6 and 0.5, relu6(x + 3) / 6 as Keras 3 has it");
    return add_activation(im, FMNN_HARD_SIGMOID);
}

static int import_leakyrelu(importer *im)
{
    const float alpha = attr_float(im->node, "alpha", 0.01f);
    fmnn_layer *last = last_layer(im);
    if (alpha == FMNN__LEAKY_SLOPE && last && im->folds_into_last && last->activation == FMNN_LINEAR &&
        (strcmp(last->ops->type, "Conv2D") == 0 || strcmp(last->ops->type, "Dense") == 0))
        return add_activation(im, FMNN_LEAKY_RELU);
    return add_layer_in_place(im, fmnn_leaky_relu(alpha), (weights){ 0 });
}

static int import_softmax(importer *im)
{
    const int64_t axis = attr_int(im->node, "axis", im->g->opset >= 13 ? -1 : 1);
    const int onnx_rank = im->v.layout == IMAGE || im->v.squeezed ? 3 : shape(im)->rank;
    const int64_t last = im->v.layout == IMAGE || im->v.squeezed ? 1 : onnx_rank; /* our last axis in ONNX's numbering */
    if (axis != last && axis != last - onnx_rank - 1)
        return UNSUPPORTED(im, "axis %lld: libfmnn's softmax runs over the channels", (long long)axis);
    if (im->g->opset < 13 && onnx_rank > 1)
        return UNSUPPORTED(im, "before opset 13 Softmax flattens its input from the axis on");
    if (im->v.squeezed)
        return UNSUPPORTED(im, "a softmax over a (C, 1, 1) value: flatten it first");
    return add_activation(im, FMNN_SOFTMAX);
}

/* Dropout and Identity are the identity at inference: the value goes on. */
static int import_identity(importer *im)
{
    const fmnn__onnx_node *n = im->node;
    if (strcmp(n->op_type, "Dropout") == 0 && n->n_outputs > 1 && n->outputs[1][0]) {
        int readers, index;
        reader_of(im, n->outputs[1], &readers, &index);
        if (readers || (im->output && strcmp(im->output, n->outputs[1]) == 0))
            return UNSUPPORTED(im, "its mask output is used");
    }
    return FMNN_OK;
}

/* ---- arithmetic with constants: Rescaling and Normalization -------------- */

/* How a constant broadcasts over the current value: a single value, one
 * per channel (our last axis), or neither (0). */
typedef enum { OTHER, SCALAR, PER_CHANNEL } spread;

static spread spread_of(const importer *im, const fmnn__onnx_tensor *t)
{
    if (!t || t->external || !t->floats)
        return OTHER;
    if (t->count == 1)
        return SCALAR;
    const fmnn_shape *s = shape(im);
    const int64_t c = s->dims[s->rank - 1];
    if ((size_t)c != t->count)
        return OTHER;
    /* The channel axis is ONNX's axis 1 of an image and the last of a
     * vector: (c, 1, 1) or (1, c, 1, 1) against (N, c, h, w); (c) or (1, c)
     * against (N, c). */
    if (im->v.layout == IMAGE || im->v.squeezed) {
        const int lead = t->rank == 4;
        if ((t->rank != 3 && t->rank != 4) || (lead && t->dims[0] != 1))
            return OTHER;
        return t->dims[lead + 1] == 1 && t->dims[lead + 2] == 1 ? PER_CHANNEL : OTHER;
    }
    if (s->rank != 1)
        return t->rank >= 1 && t->dims[t->rank - 1] == c ? PER_CHANNEL : OTHER;
    return t->rank == 1 || (t->rank == 2 && t->dims[0] == 1) ? PER_CHANNEL : OTHER;
}

/* The constant operand of a binary node whose other operand is the value
 * x, or NULL; *x_first says whether x came first (for Sub, Div). */
static const fmnn__onnx_tensor *operand(const importer *im, const fmnn__onnx_node *n, const char *x, int *x_first)
{
    if (n->n_inputs != 2)
        return NULL;
    *x_first = strcmp(n->inputs[0], x) == 0;
    if (!*x_first && strcmp(n->inputs[1], x) != 0)
        return NULL;
    return constant(im, n->inputs[*x_first ? 1 : 0]);
}

/* The next node, when it is the one reader of the current node's output,
 * has op type `op` and a constant of this spread: its constant, and the
 * node is marked walked. */
static const fmnn__onnx_tensor *next_with_constant(importer *im, const char *op, spread want)
{
    int readers, index, first;
    const fmnn__onnx_node *n = reader_of(im, im->node->outputs[0], &readers, &index);
    if (!n || readers != 1 || strcmp(n->op_type, op) != 0)
        return NULL;
    const fmnn__onnx_tensor *c = operand(im, n, im->node->outputs[0], &first);
    if (!c || spread_of(im, c) != want || (!first && (strcmp(op, "Sub") == 0 || strcmp(op, "Div") == 0)))
        return NULL;
    im->done[index] = 1;
    im->next = n->outputs[0];
    return c;
}

static int add_rescaling(importer *im, float scale, float offset)
{
    return add_layer_in_place(im, fmnn_rescaling(scale, offset), (weights){ 0 });
}

/* A Normalization of a per-channel mean and divisor: (x - mean) / d, or
 * mean + x * d inverted; its variance is d * d, whose root is d again. */
static int add_normalization(importer *im, const fmnn__onnx_tensor *mean, const fmnn__onnx_tensor *divisor,
                             int invert)
{
    const fmnn_shape *s = shape(im);
    const int c = s->dims[s->rank - 1];
    int err;
    float *m = NULL, *d = channel_array(im, divisor, c, "divisor", &err);
    if (d && mean)
        m = channel_array(im, mean, c, "mean", &err);
    else if (d && !(m = fmnn__alloc_zeroed((size_t)c * sizeof *m, "the imported mean")))
        err = FMNN_ENOMEM;
    if (err) {
        fmnn__free(d);
        return err;
    }
    for (int k = 0; k < c && !err; k++) {
        if (!(d[k] >= 1e-7f && isfinite(d[k] * d[k])))
            err = UNSUPPORTED(im, "divisor[%d] is %g: a Normalization divides by at least 1e-7", k, (double)d[k]);
        d[k] *= d[k];
    }
    const fmnn_normalization_options o = { m, d, c, invert };
    if (!err)
        err = add_layer_in_place(im, fmnn_normalization(&o), (weights){ 0 });
    fmnn__free(m);
    fmnn__free(d);
    return err;
}

/* Mul, Add, Sub and Div of the value and a constant: x * a + b as a
 * Rescaling, per-channel (x - mean) / d or mean + x * d as a Normalization. */
static int import_arithmetic(importer *im)
{
    const fmnn__onnx_node *n = im->node;
    int first;
    const fmnn__onnx_tensor *c = operand(im, n, im->v.name, &first);
    const spread sp = spread_of(im, c);
    if (sp == OTHER)
        return UNSUPPORTED(im, "only a constant, one value or one per channel, may be its other operand");
    const char *op = n->op_type;
    if ((strcmp(op, "Sub") == 0 || strcmp(op, "Div") == 0) && !first)
        return UNSUPPORTED(im, "the constant comes first: libfmnn has no layer for c - x or c / x");
    if (sp == SCALAR) {
        const float a = c->floats[0];
        if (strcmp(op, "Mul") == 0) {
            const fmnn__onnx_tensor *b = next_with_constant(im, "Add", SCALAR);
            return add_rescaling(im, a, b ? b->floats[0] : 0.0f);
        }
        if (strcmp(op, "Add") == 0)
            return add_rescaling(im, 1.0f, a);
        if (strcmp(op, "Sub") == 0)
            return add_rescaling(im, 1.0f, -a);
        if (a == 0.0f || !isfinite(1.0f / a))
            return UNSUPPORTED(im, "division by %g", (double)a);
        return add_rescaling(im, 1.0f / a, 0.0f);
    }
    if (strcmp(op, "Sub") == 0) {
        const fmnn__onnx_tensor *d = next_with_constant(im, "Div", PER_CHANNEL);
        if (!d)
            return UNSUPPORTED(im, "a per-channel Sub must be followed by a per-channel Div (a Normalization)");
        return add_normalization(im, c, d, 0);
    }
    if (strcmp(op, "Div") == 0)
        return add_normalization(im, NULL, c, 0);
    if (strcmp(op, "Mul") == 0) {
        const fmnn__onnx_tensor *m = next_with_constant(im, "Add", PER_CHANNEL);
        return add_normalization(im, m, c, 1);
    }
    return UNSUPPORTED(im, "a per-channel Add alone has no libfmnn layer");
}

/* ---- activations ONNX spells out ------------------------------------------
 * GELU and swish read their input twice, so the value has several
 * readers.  From the first, the walk follows a path of single-reader
 * nodes, each reading the previous one and either x itself or a constant,
 * and compares it with the forms torch.onnx.export writes (export.c
 * writes the same). */

typedef struct step {
    const char *op;
    char other;    /* 'x': the value itself; 'c': a constant; 0: none */
    double c;
} step;

#define MAX_STEPS 9

typedef struct pattern {
    fmnn_activation_kind kind;
    int n;
    step steps[MAX_STEPS];
} pattern;

static const pattern patterns[] = {
    { FMNN_SWISH, 2, { { "Sigmoid", 0, 0 }, { "Mul", 'x', 0 } } },
    { FMNN_GELU, 5, { { "Div", 'c', 1.41421356237309504880 }, { "Erf", 0, 0 }, { "Add", 'c', 1 },
                      { "Mul", 'x', 0 }, { "Mul", 'c', 0.5 } } },
    { FMNN_GELU, 5, { { "Mul", 'c', 0.70710678118654752440 }, { "Erf", 0, 0 }, { "Add", 'c', 1 },
                      { "Mul", 'x', 0 }, { "Mul", 'c', 0.5 } } },
    { FMNN_GELU, 5, { { "Div", 'c', 1.41421356237309504880 }, { "Erf", 0, 0 }, { "Add", 'c', 1 },
                      { "Mul", 'c', 0.5 }, { "Mul", 'x', 0 } } },
    { FMNN_GELU_TANH, 9, { { "Mul", 'x', 0 }, { "Mul", 'x', 0 }, { "Mul", 'c', FMNN__GELU_TANH_A }, { "Add", 'x', 0 },
                           { "Mul", 'c', FMNN__GELU_TANH_C }, { "Tanh", 0, 0 }, { "Add", 'c', 1 },
                           { "Mul", 'x', 0 }, { "Mul", 'c', 0.5 } } },
};

/* Whether node n, reading `prev`, is this step of a pattern over x. */
static int is_step(const importer *im, const fmnn__onnx_node *n, const char *prev, const char *x, const step *s)
{
    if (strcmp(n->op_type, s->op) != 0)
        return 0;
    if (!s->other)
        return n->n_inputs == 1 && strcmp(n->inputs[0], prev) == 0;
    if (n->n_inputs != 2)
        return 0;
    const int at = strcmp(n->inputs[0], prev) == 0 ? 0 : strcmp(n->inputs[1], prev) == 0 ? 1 : -1;
    if (at < 0)
        return 0;
    const char *other = n->inputs[1 - at];
    if (s->other == 'x')
        return strcmp(other, x) == 0;
    const fmnn__onnx_tensor *c = constant(im, other);
    return c && c->floats && c->count == 1 && near(c->floats[0], s->c);
}

/* Tries one pattern from node `start` (index i): on a match marks its
 * nodes walked and returns the last one's output. */
static const char *match(importer *im, const pattern *p, int start)
{
    const char *x = im->v.name, *prev = x;
    int path[MAX_STEPS], at = start;
    for (int k = 0; k < p->n; k++) {
        const fmnn__onnx_node *n = &im->g->nodes[at];
        if (!is_step(im, n, prev, x, &p->steps[k]))
            return NULL;
        path[k] = at;
        prev = n->outputs[0];
        if (k + 1 < p->n) {
            int readers;
            if (!reader_of(im, prev, &readers, &at) || readers != 1)
                return NULL;
        }
    }
    /* Every reader of x must be on the path. */
    for (int i = 0; i < im->g->n_nodes; i++) {
        const fmnn__onnx_node *n = &im->g->nodes[i];
        if (im->done[i])
            continue;
        int on_path = 0;
        for (int k = 0; k < p->n; k++)
            on_path |= path[k] == i;
        for (int j = 0; j < n->n_inputs && !on_path; j++)
            if (strcmp(n->inputs[j], x) == 0)
                return NULL;
    }
    for (int k = 0; k < p->n; k++)
        im->done[path[k]] = 1;
    return prev;
}

static int import_spelled_activation(importer *im, int first)
{
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        const char *out = match(im, &patterns[i], first);
        if (out) {
            im->next = out;
            return add_activation(im, patterns[i].kind);
        }
    }
    return UNSUPPORTED(im, "value '%s' is read by several nodes, and they are not an activation libfmnn knows "
                       "(GELU, swish): the graph is not a chain", im->v.name);
}

/* ---- the walk ------------------------------------------------------------ */

typedef int (*op_reader)(importer *im);

static const struct {
    const char *op;
    op_reader read;
} op_readers[] = {
    { "Conv", import_conv },
    { "Gemm", import_gemm },
    { "MatMul", import_matmul },
    { "MaxPool", import_maxpool },
    { "AveragePool", import_averagepool },
    { "GlobalAveragePool", import_globalaveragepool },
    { "GlobalMaxPool", import_globalmaxpool },
    { "BatchNormalization", import_batchnormalization },
    { "Flatten", import_flatten },
    { "Reshape", import_reshape },
    { "Pad", import_pad },
    { "Transpose", import_transpose },
    { "Relu", import_relu },
    { "Sigmoid", import_sigmoid },
    { "Tanh", import_tanh },
    { "Softplus", import_softplus },
    { "Elu", import_elu },
    { "Selu", import_selu },
    { "HardSigmoid", import_hardsigmoid },
    { "LeakyRelu", import_leakyrelu },
    { "Softmax", import_softmax },
    { "Mul", import_arithmetic },
    { "Add", import_arithmetic },
    { "Sub", import_arithmetic },
    { "Div", import_arithmetic },
    { "Dropout", import_identity },
    { "Identity", import_identity },
};

static int read_node(importer *im, int index)
{
    const fmnn__onnx_node *n = &im->g->nodes[index];
    im->node = n;
    im->node_index = index;
    im->done[index] = 1;
    if (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return UNSUPPORTED(im, "domain '%s': libfmnn reads ONNX's own ops", n->domain);
    if (n->n_outputs < 1 || !n->outputs[0][0])
        return node_error(im, FMNN_EFORMAT, "it has no output");
    im->next = n->outputs[0];
    for (size_t i = 0; i < sizeof op_readers / sizeof *op_readers; i++)
        if (strcmp(n->op_type, op_readers[i].op) == 0) {
            const int binary = op_readers[i].read == import_arithmetic;
            if (!binary && strcmp(n->inputs[0], im->v.name) != 0)
                return UNSUPPORTED(im, "it reads '%s' as a weight: the value must be its first input", im->v.name);
            for (int j = 1; j < n->n_inputs; j++)
                if (strcmp(n->inputs[j], im->v.name) == 0 && !binary)
                    return UNSUPPORTED(im, "it reads '%s' twice", im->v.name);
            int err = op_readers[i].read(im);
            im->v.name = im->next;
            return err;
        }
    return UNSUPPORTED(im, "libfmnn has no layer for this op");
}

static int walk(importer *im)
{
    for (;;) {
        int readers, index;
        const fmnn__onnx_node *n = reader_of(im, im->v.name, &readers, &index);
        if (!n)
            return FMNN_OK;
        int err;
        if (readers == 1) {
            err = read_node(im, index);
        } else {
            im->node = n;
            im->node_index = index;
            err = import_spelled_activation(im, index);
            im->v.name = im->next;
        }
        if (err)
            return err;
    }
}

/* ---- the graph ----------------------------------------------------------- */

/* ONNX's own rules the walk relies on: one graph output, each value
 * written once, and every input a node reads written before it (the
 * nodes are sorted, so there is no cycle). */
static int check_graph(const importer *im)
{
    const fmnn__onnx_model *g = im->g;
    if (g->n_outputs != 1)
        return fmnn__error(g->n_outputs ? FMNN_ENOTSUP : FMNN_EFORMAT, "%s: the graph has %d outputs: libfmnn "
                           "models have one", im->what, g->n_outputs);
    for (int i = 0; i < g->n_nodes; i++) {
        const fmnn__onnx_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++) {
            const char *in = n->inputs[j];
            int known = !in[0] || fmnn__onnx_initializer(g, in) != NULL;
            for (int k = 0; k < g->n_inputs && !known; k++)
                known = strcmp(g->inputs[k].name, in) == 0;
            for (int k = 0; k < i && !known; k++)
                for (int o = 0; o < g->nodes[k].n_outputs && !known; o++)
                    known = strcmp(g->nodes[k].outputs[o], in) == 0;
            if (!known)
                return fmnn__error(FMNN_EFORMAT, "%s: node %d '%s' (%s) reads '%s', which no earlier node writes: "
                                   "the graph is cyclic or not sorted", im->what, i, n->name, n->op_type, in);
        }
        for (int o = 0; o < n->n_outputs; o++)
            for (int k = 0; k <= i; k++)
                for (int p = 0; p < (k == i ? o : g->nodes[k].n_outputs); p++)
                    if (n->outputs[o][0] && strcmp(g->nodes[k].outputs[p], n->outputs[o]) == 0)
                        return fmnn__error(FMNN_EFORMAT, "%s: node %d '%s' (%s) writes '%s' again", im->what, i,
                                           n->name, n->op_type, n->outputs[o]);
    }
    return FMNN_OK;
}

/* The one graph input that is not an initializer, as the model's input. */
static int read_input(importer *im, const fmnn__onnx_value **input)
{
    const fmnn__onnx_model *g = im->g;
    *input = NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        if (fmnn__onnx_initializer(g, g->inputs[i].name))
            continue; /* IR 3 lists the initializers as inputs too */
        if (*input)
            return fmnn__error(FMNN_ENOTSUP, "%s: the graph has inputs '%s' and '%s': libfmnn models have one",
                               im->what, (*input)->name, g->inputs[i].name);
        *input = &g->inputs[i];
    }
    const fmnn__onnx_value *in = *input;
    if (!in)
        return fmnn__error(FMNN_EFORMAT, "%s: the graph has no input", im->what);
    if (in->elem_type != FMNN__ONNX_FLOAT)
        return fmnn__error(FMNN_ENOTSUP, "%s: input '%s' is of type %d, not float", im->what, in->name,
                           (int)in->elem_type);
    if (in->rank != 2 && in->rank != 3 && in->rank != 4)
        return fmnn__error(FMNN_ENOTSUP, "%s: input '%s' has rank %d: libfmnn reads (N, features), (N, T, F) and "
                           "(N, C, H, W)", im->what, in->name, in->rank);
    int dims[3];
    for (int d = 1; d < in->rank; d++) {
        if (in->dims[d] < 1 || in->dims[d] > FMNN__MAX_SIZE)
            return fmnn__error(FMNN_ENOTSUP, "%s: input '%s' has dimension %d of size %s", im->what, in->name, d,
                               in->dims[d] < 0 ? "unknown: every size but the batch must be fixed" : "out of range");
        dims[d - 1] = (int)in->dims[d];
    }
    int err;
    if (in->rank == 4) { /* (c, h, w) -> (h, w, c) */
        err = fmnn_model_new(&im->m, 3, (const int[]){ dims[1], dims[2], dims[0] });
        im->v.layout = IMAGE;
    } else {
        err = fmnn_model_new(&im->m, in->rank - 1, dims);
        im->v.layout = PLAIN;
    }
    im->v.name = in->name;
    return err;
}

/* The loss fmnn_onnx_import_options defaults to, from the last activation. */
static fmnn_loss default_loss(const fmnn_model *m)
{
    const fmnn_activation_kind last = fmnn__own_activation(m->layers[m->n_layers - 1]);
    return last == FMNN_SOFTMAX ? FMNN_LOSS_CATEGORICAL_CROSSENTROPY
           : last == FMNN_SIGMOID ? FMNN_LOSS_BINARY_CROSSENTROPY
                                  : FMNN_LOSS_MSE;
}

/* Compiles the model and gives each layer the file's weights. */
static int finish(importer *im, const fmnn_onnx_import_options *o)
{
    fmnn_model *m = im->m;
    if (m->n_layers == 0)
        return fmnn__error(FMNN_ENOTSUP, "%s: the graph computes nothing libfmnn keeps (no layer)", im->what);
    int err = fmnn_model_compile(m, o->loss_given ? o->loss : default_loss(m), o->optimizer, 0);
    if (err)
        return fmnn__error(err, "%s: %s", im->what, fmnn_last_error());
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *l = m->layers[i];
        const weights *w = &im->w[i];
        const fmnn_layer_weights lw = { w->kernel, w->kernel ? l->n_kernel : 0, w->bias, w->bias ? l->n_bias : 0,
                                        w->state, w->state ? l->n_state : 0 };
        if ((lw.kernel || lw.bias || lw.state) && (err = fmnn_model_set_layer_weights(m, i, &lw)))
            return fmnn__error(err == FMNN_ENOMEM ? err : FMNN_EFORMAT, "%s: %s", im->what, fmnn_last_error());
    }
    return FMNN_OK;
}

static void importer_free(importer *im)
{
    for (int i = 0; im->m && i < im->m->n_layers && i < im->cap_w; i++) {
        fmnn__free(im->w[i].kernel);
        fmnn__free(im->w[i].bias);
        fmnn__free(im->w[i].state);
    }
    fmnn__free(im->w);
    for (int i = 0; im->folded && i < im->g->n_nodes; i++)
        fmnn__onnx_tensor_free(im->folded[i]);
    fmnn__free(im->folded);
    fmnn__free(im->done);
}

static int import_model(importer *im, const fmnn_onnx_import_options *o)
{
    const fmnn__onnx_model *g = im->g;
    if (g->opset < MIN_OPSET || g->opset > MAX_OPSET)
        return fmnn__error(FMNN_ENOTSUP, "%s: opset %lld: libfmnn reads opsets %d to %d", im->what,
                           (long long)g->opset, MIN_OPSET, MAX_OPSET);
    if (g->n_sparse_initializers)
        return fmnn__error(FMNN_ENOTSUP, "%s: sparse initializers are not read", im->what);
    int err = check_graph(im);
    if (err)
        return err;
    im->output = g->outputs[0].name;
    const fmnn__onnx_value *input;
    if ((err = read_input(im, &input)))
        return err;
    if (!(im->done = fmnn__alloc_zeroed((size_t)g->n_nodes + 1, "the walk of the graph")))
        return FMNN_ENOMEM;
    for (int i = 0; i < g->n_nodes; i++) /* read where they are used */
        im->done[i] = strcmp(g->nodes[i].op_type, "Constant") == 0;
    if (!(im->folded = fmnn__alloc_zeroed(((size_t)g->n_nodes + 1) * sizeof *im->folded, "the folded constants")))
        return FMNN_ENOMEM;
    fmnn__onnx_fold(g, constant_for_fold, im, im->folded, im->done);
    if ((err = walk(im)))
        return err;
    for (int i = 0; i < g->n_nodes; i++)
        if (!im->done[i]) {
            im->node = &g->nodes[i];
            im->node_index = i;
            return UNSUPPORTED(im, "it is not on the chain from input '%s' to output '%s'", input->name, im->output);
        }
    if (strcmp(im->v.name, im->output) != 0)
        return fmnn__error(FMNN_ENOTSUP, "%s: the chain from input '%s' ends at '%s', not at the output '%s'",
                           im->what, input->name, im->v.name, im->output);
    if (im->v.layout == FLAT_CHW)
        return fmnn__error(FMNN_ENOTSUP, "%s: the output is a flattened image in ONNX's channels-first order, which "
                           "libfmnn's Flatten does not give", im->what);
    return finish(im, o);
}

static int import_bytes(fmnn_model **out, const void *data, size_t size, const char *what,
                        const fmnn_onnx_import_options *options)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_import_onnx: out is NULL");
    *out = NULL;
    if (!data && size)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_import_onnx: data is NULL");
    const fmnn_onnx_import_options defaults = FMNN_ONNX_IMPORT_OPTIONS_INIT;
    const fmnn_onnx_import_options *o = options ? options : &defaults;
    for (size_t i = 0; i < sizeof o->reserved / sizeof *o->reserved; i++)
        if (o->reserved[i])
            return fmnn__error(FMNN_EINVAL, "fmnn_model_import_onnx: options->reserved[%zu] must be 0", i);
    fmnn__onnx_model *g;
    int err = fmnn__onnx_parse(data, size, what, &g);
    if (err)
        return err;
    importer im = { .g = g, .what = what };
    err = import_model(&im, o);
    importer_free(&im);
    fmnn__onnx_free(g);
    if (err) {
        fmnn_model_free(im.m);
        return err;
    }
    *out = im.m;
    return FMNN_OK;
}

FMNN_API int fmnn_model_import_onnx_memory(fmnn_model **out, const void *data, size_t size,
                                           const fmnn_onnx_import_options *options)
{
    return import_bytes(out, data, size, "ONNX model in memory", options);
}

FMNN_API int fmnn_model_import_onnx(fmnn_model **out, const char *path, const fmnn_onnx_import_options *options)
{
    if (out)
        *out = NULL;
    if (!path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_import_onnx: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return fmnn__error(FMNN_EIO, "fmnn_model_import_onnx: cannot open %s: %s", path, strerror(errno));
    unsigned char *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    int err = FMNN_OK;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        err = fmnn__error(FMNN_EIO, "fmnn_model_import_onnx: cannot read %s: %s", path, strerror(errno));
    else if ((unsigned long)size > MAX_FILE_BYTES)
        err = fmnn__error(FMNN_EFORMAT, "%s: %ld bytes: protobuf messages are below 2 GiB", path, size);
    else if (!(data = fmnn__alloc(size ? (size_t)size : 1, "the ONNX file")))
        err = FMNN_ENOMEM;
    else if (fread(data, 1, (size_t)size, f) != (size_t)size)
        err = fmnn__error(FMNN_EIO, "fmnn_model_import_onnx: cannot read %s: %s", path,
                          ferror(f) ? strerror(errno) : "it shrank while being read");
    fclose(f);
    if (!err)
        err = import_bytes(out, data, (size_t)size, path, options);
    fmnn__free(data);
    return err;
}
