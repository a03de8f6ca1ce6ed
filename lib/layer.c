/* layer.c - what all layers share: allocation, names, errors, regularizers. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "layer_impl.h"

fmnn_layer *fmnn__layer_alloc(size_t size, const struct fmnn_layer_ops *ops)
{
    fmnn_layer *layer = fmnn__alloc_zeroed(size, ops->base_name);
    if (layer) {
        layer->ops = ops;
        snprintf(layer->name, sizeof layer->name, "%s", ops->base_name);
    }
    return layer;
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

int fmnn__window_axis(int in, int window, int stride, fmnn_padding padding, int *pad_before)
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
    /* Every index the window visits, padding included, must fit in int. */
    if (out > 0 && (out - 1) * stride + window > INT_MAX)
        return -1;
    return (int)out;
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
