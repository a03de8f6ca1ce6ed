/*
 * zero_padding2d.c - ZeroPadding2D: adds rows of zeros above and below an
 * image and columns of zeros left and right of it, channels untouched.
 */
#include <limits.h>
#include <string.h>

#include "layer_impl.h"

typedef struct zero_padding2d {
    fmnn_layer base;
    int top, bottom, left, right;
} zero_padding2d;

static int zero_padding_infer(fmnn_layer *layer)
{
    const zero_padding2d *z = (const zero_padding2d *)layer;
    if (layer->in.rank != 3)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "expects (height, width, channels) input, got rank %d",
                                 layer->in.rank);
    long long h = (long long)layer->in.dims[0] + z->top + z->bottom;
    long long w = (long long)layer->in.dims[1] + z->left + z->right;
    if (h > FMNN__MAX_SIZE || w > FMNN__MAX_SIZE)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "a padded image of %lldx%lld is larger than %dx%d", h, w,
                                 FMNN__MAX_SIZE, FMNN__MAX_SIZE);
    layer->out = (fmnn_shape){ 3, { (int)h, (int)w, layer->in.dims[2], 0 } };
    return FMNN_OK;
}

/* Copies each input row into the padded image, or back out of it. */
static void copy_rows(const zero_padding2d *z, float *padded, float *image, int batch, int to_padded)
{
    const fmnn_layer *l = &z->base;
    const size_t h = (size_t)l->in.dims[0], w = (size_t)l->in.dims[1], ch = (size_t)l->in.dims[2];
    const size_t ow = (size_t)l->out.dims[1];
    const size_t in_image = h * w * ch, out_image = fmnn__shape_size(&l->out);
    for (int n = 0; n < batch; n++) {
        float *dst_image = padded + (size_t)n * out_image;
        if (to_padded)
            memset(dst_image, 0, out_image * sizeof *dst_image);
        for (size_t y = 0; y < h; y++) {
            float *row = dst_image + ((y + (size_t)z->top) * ow + (size_t)z->left) * ch;
            float *src = image + (size_t)n * in_image + y * w * ch;
            if (to_padded)
                memcpy(row, src, w * ch * sizeof *row);
            else
                memcpy(src, row, w * ch * sizeof *row);
        }
    }
}

static void zero_padding_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    copy_rows((const zero_padding2d *)layer, out, (float *)in, pass->batch, 1);
}

/* The gradient of the padding is dropped: din is dout's interior. */
static void zero_padding_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                                  float *dout, float *din)
{
    (void)in;
    (void)out;
    if (din)
        copy_rows((const zero_padding2d *)layer, dout, din, pass->batch, 0);
}

static const fmnn_field zero_padding_fields[] = {
    FMNN__INT(zero_padding2d, top, "padding[0][0]", 0, FMNN__MAX_SIZE, 0),
    FMNN__INT(zero_padding2d, bottom, "padding[0][1]", 0, FMNN__MAX_SIZE, 0),
    FMNN__INT(zero_padding2d, left, "padding[1][0]", 0, FMNN__MAX_SIZE, 0),
    FMNN__INT(zero_padding2d, right, "padding[1][1]", 0, FMNN__MAX_SIZE, 0),
};

const struct fmnn_layer_ops fmnn__zero_padding2d_ops = {
    .type = "ZeroPadding2D",
    .base_name = "zero_padding2d",
    .size = sizeof(zero_padding2d),
    .config = FMNN__FIELDS(zero_padding_fields),
    .infer = zero_padding_infer,
    .forward = zero_padding_forward,
    .backward = zero_padding_backward,
};

FMNN_API fmnn_layer *fmnn_zero_padding2d(int top, int bottom, int left, int right)
{
    zero_padding2d *z = (zero_padding2d *)fmnn__layer_alloc(&fmnn__zero_padding2d_ops);
    if (!z)
        return NULL;
    z->top = top;
    z->bottom = bottom;
    z->left = left;
    z->right = right;
    return &z->base;
}
