/*
 * layout.h - what export.c and import.c share about the two image
 * layouts: ONNX's (c, h, w) and libfmnn's channels-last (h, w, c).
 */
#ifndef FMNN_ONNX_LAYOUT_H
#define FMNN_ONNX_LAYOUT_H

#include "layer_impl.h"

/* Where value i of a flattened (h, w, c) image is in (c, h, w) order:
 * the row of a Dense kernel after a Flatten, in the other layout. */
static inline size_t fmnn__chw_index(const fmnn_shape *image, size_t i)
{
    const size_t w = (size_t)image->dims[1], c = (size_t)image->dims[2];
    const size_t k = i % c, x = i / c % w, y = i / c / w;
    return (k * (size_t)image->dims[0] + y) * w + x;
}

#endif /* FMNN_ONNX_LAYOUT_H */
