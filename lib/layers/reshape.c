/*
 * reshape.c - Reshape: the same values under another shape (without the
 * batch axis), one of whose sizes may be -1, meaning "what is left", as
 * in Keras.  Channels-last storage does not move: the plan gives the
 * layer its input's buffer, as it does a Flatten.
 */
#include <string.h>

#include "layer_impl.h"

#define MAX_TARGET_RANK (FMNN_MAX_RANK - 1)

typedef struct reshape {
    fmnn_layer base;
    int rank;
    int dims[MAX_TARGET_RANK]; /* 0 past rank */
} reshape;

static int reshape_infer(fmnn_layer *layer)
{
    const reshape *r = (const reshape *)layer;
    const long long total = (long long)fmnn__shape_size(&layer->in);
    long long known = 1;
    int unknown = -1;
    for (int d = 0; d < MAX_TARGET_RANK; d++) {
        const int v = r->dims[d];
        if (d >= r->rank) {
            if (v != 0)
                return fmnn__layer_error(layer, FMNN_EINVAL, "target_shape[%d] is %d past the rank %d", d, v,
                                         r->rank);
        } else if (v == -1) {
            if (unknown >= 0)
                return fmnn__layer_error(layer, FMNN_EINVAL, "only one size of target_shape may be -1");
            unknown = d;
        } else if (v < 1) {
            return fmnn__layer_error(layer, FMNN_EINVAL, "target_shape[%d] is %d: sizes are >= 1, or -1 once",
                                     d, v);
        } else {
            known *= v; /* at most 2^31 * 2^24: no overflow, and the test below stops it growing */
            if (known > total)
                return fmnn__layer_error(layer, FMNN_ESHAPE, "cannot reshape %lld values into target_shape[0..%d] "
                                         "of more", total, d);
        }
    }
    layer->out.rank = r->rank;
    for (int d = 0; d < FMNN_MAX_RANK; d++)
        layer->out.dims[d] = d < r->rank ? r->dims[d] : 0;
    if (unknown >= 0) {
        if (total % known != 0)
            return fmnn__layer_error(layer, FMNN_ESHAPE, "%lld values do not divide into sizes of %lld", total,
                                     known);
        layer->out.dims[unknown] = (int)(total / known); /* total <= INT_MAX */
        known = total;
    }
    if (known != total)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "cannot reshape %lld values into %lld", total, known);
    return FMNN_OK;
}

/* As the first layer (no input buffer to share) it copies. */
static void reshape_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    memcpy(out, in, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *out);
}

static void reshape_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                             float *dout, float *din)
{
    (void)in;
    (void)out;
    if (din)
        memcpy(din, dout, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *din);
}

static const fmnn_field reshape_fields[] = {
    FMNN__INT(reshape, rank, "rank", 1, MAX_TARGET_RANK, 0),
    FMNN__INT(reshape, dims[0], "target_shape[0]", -1, FMNN__MAX_SIZE, 0),
    FMNN__INT(reshape, dims[1], "target_shape[1]", -1, FMNN__MAX_SIZE, 0),
    FMNN__INT(reshape, dims[2], "target_shape[2]", -1, FMNN__MAX_SIZE, 0),
};
_Static_assert(MAX_TARGET_RANK == 3, "one field per target size");

const struct fmnn_layer_ops fmnn__reshape_ops = {
    .type = "Reshape",
    .base_name = "reshape",
    .size = sizeof(reshape),
    .config = FMNN__FIELDS(reshape_fields),
    .reshape_only = 1,
    .infer = reshape_infer,
    .forward = reshape_forward,
    .backward = reshape_backward,
};

FMNN_API fmnn_layer *fmnn_reshape(int rank, const int *target_shape)
{
    reshape *r = (reshape *)fmnn__layer_alloc(&fmnn__reshape_ops);
    if (!r)
        return NULL;
    r->rank = rank;
    for (int d = 0; target_shape && d < rank && d < MAX_TARGET_RANK; d++)
        r->dims[d] = target_shape[d];
    return &r->base;
}
