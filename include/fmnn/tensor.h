/*
 * fmnn/tensor.h - float32 tensors of up to 4 dimensions.
 *
 * Images are channels-last, as in Keras: (batch, height, width, channels).
 * A tensor either owns its data or wraps a buffer that the caller owns.
 */
#ifndef FMNN_TENSOR_H
#define FMNN_TENSOR_H

#include "common.h"

#define FMNN_MAX_RANK 4

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fmnn_tensor fmnn_tensor;

/**
 * Creates a zero-filled tensor of the given shape.
 * @param out   receives the tensor; free it with fmnn_tensor_free()
 * @param rank  1..FMNN_MAX_RANK
 * @param dims  rank positive sizes
 * @return FMNN_OK, FMNN_EINVAL (bad rank or size) or FMNN_ENOMEM
 */
FMNN_API int fmnn_tensor_new(fmnn_tensor **out, int rank, const int *dims);

/**
 * Wraps a caller's buffer of prod(dims) floats without copying it.  The
 * caller keeps ownership of data, which must outlive the tensor;
 * fmnn_tensor_free() frees only the wrapper.
 */
FMNN_API int fmnn_tensor_wrap(fmnn_tensor **out, float *data, int rank,
                              const int *dims);

/** Frees a tensor (and its data, unless wrapped).  NULL is a no-op. */
FMNN_API void fmnn_tensor_free(fmnn_tensor *t);

/** Number of dimensions. */
FMNN_API int fmnn_tensor_rank(const fmnn_tensor *t);

/** Size of dimension i, or 0 when i is out of range. */
FMNN_API int fmnn_tensor_dim(const fmnn_tensor *t, int i);

/** Total number of elements. */
FMNN_API size_t fmnn_tensor_size(const fmnn_tensor *t);

/** The elements, row-major (last dimension fastest).  Borrowed. */
FMNN_API float *fmnn_tensor_data(fmnn_tensor *t);
FMNN_API const float *fmnn_tensor_const_data(const fmnn_tensor *t);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_TENSOR_H */
