/* tensor_impl.h - the layout of fmnn_tensor, private to the library. */
#ifndef FMNN_TENSOR_IMPL_H
#define FMNN_TENSOR_IMPL_H

#include "fmnn/tensor.h"

struct fmnn_tensor {
    int rank;
    int dims[FMNN_MAX_RANK];
    size_t size;     /* prod(dims) */
    float *data;
    int owns_data;   /* 0 when wrapping a caller's buffer */
};

#endif
