/* layer.c - what all layers share: allocation, initialisation, errors, the
 * window arithmetic of convolution and pooling, names and regularizers. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "layer_impl.h"

fmnn_layer *fmnn__layer_alloc(const struct fmnn_layer_ops *ops)
{
    return fmnn__layer_alloc_extra(ops, 0);
}

fmnn_layer *fmnn__layer_alloc_extra(const struct fmnn_layer_ops *ops, size_t extra)
{
    /* an impossible size fails in the allocator, with its message */
    fmnn_layer *layer = fmnn__alloc_zeroed(extra > SIZE_MAX - ops->size ? SIZE_MAX : ops->size + extra, ops->base_name);
    if (layer) {
        layer->ops = ops;
        snprintf(layer->name, sizeof layer->name, "%s", ops->base_name);
    }
    return layer;
}

/* A standard normal truncated to [-2, 2] (Box-Muller, redrawn outside). */
static double truncated_normal(fmnn_rng *rng)
{
    for (;;) {
        double u = 1.0 - (double)fmnn__rng_uniform(rng), v = (double)fmnn__rng_uniform(rng); /* u in (0, 1] */
        double z = sqrt(-2.0 * log(u)) * cos(6.28318530717958647692 * v);
        if (fabs(z) <= 2.0)
            return z;
    }
}

/*
 * n values of one initializer, from fans as keras.initializers.
 * VarianceScaling takes them: scale / fan, with fan the mean of fan_in
 * and fan_out (glorot) or fan_in (he, lecun).  A truncated normal's
 * standard deviation is divided by 0.8796..., the standard deviation of
 * a standard normal truncated at 2, so that the variance is scale / fan.
 */
static void initialize(float *w, size_t n, fmnn_initializer kind, double fan_in, double fan_out, fmnn_rng *rng)
{
    double scale = 1.0, fan = fan_in;
    switch (kind) {
    case FMNN_ZEROS:
    case FMNN_ONES:
        for (size_t k = 0; k < n; k++)
            w[k] = kind == FMNN_ONES ? 1.0f : 0.0f;
        return;
    case FMNN_INIT_DEFAULT:
    case FMNN_GLOROT_UNIFORM:
    case FMNN_GLOROT_NORMAL:
        fan = (fan_in + fan_out) / 2.0;
        break;
    case FMNN_HE_UNIFORM:
    case FMNN_HE_NORMAL:
        scale = 2.0;
        break;
    case FMNN_LECUN_UNIFORM:
    case FMNN_LECUN_NORMAL:
        break;
    }
    const int normal = kind == FMNN_GLOROT_NORMAL || kind == FMNN_HE_NORMAL || kind == FMNN_LECUN_NORMAL;
    if (!normal) { /* U(-limit, limit), limit = sqrt(3 scale / fan) */
        const float limit = (float)sqrt(3.0 * scale / fan);
        for (size_t k = 0; k < n; k++)
            w[k] = (2.0f * fmnn__rng_uniform(rng) - 1.0f) * limit;
        return;
    }
    const double stddev = sqrt(scale / fan) / 0.87962566103423978;
    for (size_t k = 0; k < n; k++)
        w[k] = (float)(truncated_normal(rng) * stddev);
}

void fmnn__layer_init_default(fmnn_layer *layer, fmnn_rng *rng)
{
    if (layer->n_kernel)
        initialize(layer->kernel, layer->n_kernel, layer->kernel_initializer, layer->fan_in, layer->fan_out, rng);
    /* A bias's fans are its length, as Keras takes them for a 1-D shape. */
    const fmnn_initializer bias = layer->bias_initializer == FMNN_INIT_DEFAULT ? FMNN_ZEROS : layer->bias_initializer;
    if (layer->n_bias)
        initialize(layer->bias, layer->n_bias, bias, (double)layer->n_bias, (double)layer->n_bias, rng);
    for (size_t k = 0; k < layer->n_state; k++)
        layer->state[k] = 0.0f;
}

int fmnn__layer_error(const fmnn_layer *layer, int status, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return fmnn__error(status, "%s (%s): %s", layer->name, layer->ops->type, detail);
}

/* Output size along one axis, and the padding before it; 0 when a valid
 * window does not fit, -1 when the positions visited pass INT_MAX. */
static int window_axis(int in, int window, int stride, fmnn_padding padding, int *pad_before)
{
    /* In long long: in, window and stride may each be near INT_MAX. */
    long long out, total = 0;
    if (padding == FMNN_PADDING_SAME) {
        out = ((long long)in + stride - 1) / stride;
        total = (out - 1) * stride + window - in;
    } else {
        out = in < window ? 0 : (in - window) / stride + 1;
    }
    *pad_before = total > 0 ? (int)(total / 2) : 0;
    if (out > 0 && (out - 1) * stride + window > INT_MAX)
        return -1;
    return (int)out;
}

int fmnn__window_infer(fmnn_layer *layer, const fmnn_window *win, const char *what, int *out_h, int *out_w,
                       int *pad_top, int *pad_left)
{
    if (layer->in.rank != 3)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "expects (height, width, channels) input, got rank %d",
                                 layer->in.rank);
    const int h = layer->in.dims[0], w = layer->in.dims[1];
    *out_h = window_axis(h, win->h, win->stride_h, win->padding, pad_top);
    *out_w = window_axis(w, win->w, win->stride_w, win->padding, pad_left);
    if (*out_h < 0 || *out_w < 0)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "%s %dx%d with strides %dx%d is too large", what, win->h,
                                 win->w, win->stride_h, win->stride_w);
    if (*out_h < 1 || *out_w < 1)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "%s %dx%d is larger than its %dx%d input", what, win->h,
                                 win->w, h, w);
    return FMNN_OK;
}

fmnn_layer *fmnn__pool2d_new(const struct fmnn_layer_ops *ops, int pool_h, int pool_w,
                             const fmnn_pool2d_options *options)
{
    fmnn_pool2d *p = (fmnn_pool2d *)fmnn__layer_alloc(ops);
    if (!p)
        return NULL;
    p->pool = (fmnn_window){ pool_h, pool_w, pool_h, pool_w, FMNN_PADDING_VALID };
    if (options) {
        p->pool.stride_h = options->stride_h ? options->stride_h : pool_h;
        p->pool.stride_w = options->stride_w ? options->stride_w : pool_w;
        p->pool.padding = options->padding;
    }
    return &p->base;
}

int fmnn__pool2d_infer(fmnn_layer *layer)
{
    fmnn_pool2d *p = (fmnn_pool2d *)layer;
    int oh = 0, ow = 0;
    int err = fmnn__window_infer(layer, &p->pool, "pool", &oh, &ow, &p->pad_top, &p->pad_left);
    if (err)
        return err;
    layer->out = (fmnn_shape){ 3, { oh, ow, layer->in.dims[2], 0 } };
    return FMNN_OK;
}

void fmnn__shape_format(const fmnn_shape *shape, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "(None");
    for (int i = 0; i < shape->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, ", %d", shape->dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, ")");
}

FMNN_API void fmnn_layer_free(fmnn_layer *layer)
{
    fmnn__free(layer);
}

FMNN_API const char *fmnn_layer_name(const fmnn_layer *layer)
{
    return layer ? layer->name : "";
}

FMNN_API const char *fmnn_layer_type(const fmnn_layer *layer)
{
    return layer ? layer->ops->type : "";
}

FMNN_API int fmnn_layer_set_trainable(fmnn_layer *layer, int trainable)
{
    if (!layer)
        return fmnn__error(FMNN_EINVAL, "fmnn_layer_set_trainable: layer is NULL");
    layer->frozen = !trainable;
    return FMNN_OK;
}

FMNN_API int fmnn_layer_trainable(const fmnn_layer *layer)
{
    return layer && !layer->frozen;
}

FMNN_API fmnn_regularizer fmnn_l1(float lambda)
{
    return (fmnn_regularizer){ lambda, 0.0f };
}

FMNN_API fmnn_regularizer fmnn_l2(float lambda)
{
    return (fmnn_regularizer){ 0.0f, lambda };
}

FMNN_API fmnn_regularizer fmnn_l1_l2(float l1, float l2)
{
    return (fmnn_regularizer){ l1, l2 };
}
