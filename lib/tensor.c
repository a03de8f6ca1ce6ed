/* tensor.c - float32 tensors that own or wrap their data. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "tensor_impl.h"

static int check_shape(const char *fn, int rank, const int *dims, size_t *size)
{
    if (rank < 1 || rank > FMNN_MAX_RANK)
        return fmnn__error(FMNN_EINVAL, "%s: rank %d is not in 1..%d", fn, rank, FMNN_MAX_RANK);
    if (!dims)
        return fmnn__error(FMNN_EINVAL, "%s: dims is NULL", fn);
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1)
            return fmnn__error(FMNN_EINVAL, "%s: dimension %d is %d; sizes must be >= 1", fn, i, dims[i]);
        if (!fmnn__mul_ok(n, (size_t)dims[i], &n) || n > SIZE_MAX / sizeof(float))
            return fmnn__error(FMNN_EINVAL, "%s: the shape is too large", fn);
    }
    *size = n;
    return FMNN_OK;
}

static int make(fmnn_tensor **out, const char *fn, float *data, int rank, const int *dims)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    size_t size = 0;
    int err = check_shape(fn, rank, dims, &size);
    if (err)
        return err;
    fmnn_tensor *t = fmnn__alloc(sizeof *t, "a tensor");
    if (!t)
        return FMNN_ENOMEM;
    t->rank = rank;
    memset(t->dims, 0, sizeof t->dims);
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->size = size;
    t->owns_data = data == NULL;
    t->data = data ? data : fmnn__alloc_zeroed(size * sizeof(float), "tensor data");
    if (!t->data) {
        fmnn__free(t);
        return FMNN_ENOMEM;
    }
    *out = t;
    return FMNN_OK;
}

FMNN_API int fmnn_tensor_new(fmnn_tensor **out, int rank, const int *dims)
{
    return make(out, "fmnn_tensor_new", NULL, rank, dims);
}

FMNN_API int fmnn_tensor_wrap(fmnn_tensor **out, float *data, int rank, const int *dims)
{
    if (out)
        *out = NULL;
    if (!data)
        return fmnn__error(FMNN_EINVAL, "fmnn_tensor_wrap: data is NULL");
    return make(out, "fmnn_tensor_wrap", data, rank, dims);
}

FMNN_API void fmnn_tensor_free(fmnn_tensor *t)
{
    if (!t)
        return;
    if (t->owns_data)
        fmnn__free(t->data);
    fmnn__free(t);
}

FMNN_API int fmnn_tensor_rank(const fmnn_tensor *t)
{
    return t ? t->rank : 0;
}

FMNN_API int fmnn_tensor_dim(const fmnn_tensor *t, int i)
{
    return t && i >= 0 && i < t->rank ? t->dims[i] : 0;
}

FMNN_API size_t fmnn_tensor_size(const fmnn_tensor *t)
{
    return t ? t->size : 0;
}

FMNN_API float *fmnn_tensor_data(fmnn_tensor *t)
{
    return t ? t->data : NULL;
}

FMNN_API const float *fmnn_tensor_const_data(const fmnn_tensor *t)
{
    return t ? t->data : NULL;
}

void fmnn__dims_format(const int *dims, int rank, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < rank && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ", %d" : "%d", dims[d]);
    if (used < size)
        snprintf(buf + used, size - used, ")");
}
