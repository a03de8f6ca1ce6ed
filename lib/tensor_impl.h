/* tensor_impl.h - the layout of fmnn_tensor, private to the library. */
#ifndef FMNN_TENSOR_IMPL_H
#define FMNN_TENSOR_IMPL_H

#include "internal.h"

struct fmnn_tensor {
    int rank;
    int dims[FMNN_MAX_RANK];
    size_t size;     /* prod(dims) */
    float *data;
    int owns_data;   /* 0 when wrapping a caller's buffer */
};

/* Formats dims as "(2, 28, 28, 1)" for messages. */
FMNN_INTERNAL void fmnn__dims_format(const int *dims, int rank, char *buf, size_t size);

#endif
