/*
 * random_zoom.c - RandomZoom, as Keras 3's
 * (keras/src/layers/preprocessing/image_preprocessing/random_zoom.py): in
 * training each image is zoomed about its centre, the height by
 * zy = U(1 + height_factor[0], 1 + height_factor[1]) and the width by
 * zx = U(1 + width_factor[0], 1 + width_factor[1]), or zx = zy (the same
 * draw) when width_factor is None (get_random_transformation), through
 *     [zx, 0, (w - 1) / 2 (1 - zx),  0, zy, (h - 1) / 2 (1 - zy)]
 * (_get_zoom_matrix) and the affine sampler (affine.c): a factor above 1
 * reads a larger part of the input, zooming out.  At inference it is the
 * identity.  Keras's defaults: reflect, bilinear, fill_value 0.  The
 * draws are ours (augment.h): the same distribution as Keras's, not its
 * numbers.
 */
#include "augment.h"

typedef struct random_zoom {
    fmnn_layer base;
    float height_lower, height_upper, width_lower, width_upper;
    fmnn_image_fill fill;
    int has_width_factor;
} random_zoom;

static int zoom_infer(fmnn_layer *layer)
{
    const random_zoom *z = (const random_zoom *)layer;
    int err = fmnn__image_infer(layer);
    if (!err)
        err = fmnn__range_check(layer, z->height_lower, z->height_upper, "height_factor");
    if (!err && z->has_width_factor)
        err = fmnn__range_check(layer, z->width_lower, z->width_upper, "width_factor");
    return err;
}

static fmnn_affine zoom_of(const fmnn_layer *layer, const fmnn_pass *pass, int image)
{
    const random_zoom *z = (const random_zoom *)layer;
    const fmnn_image im = fmnn__image_of(layer);
    const float zy = fmnn__image_between(1.0f + z->height_lower, 1.0f + z->height_upper,
                                         fmnn__image_uniform(layer, pass, z->fill.seed, image, 0));
    const float zx = !z->has_width_factor ? zy
                     : fmnn__image_between(1.0f + z->width_lower, 1.0f + z->width_upper,
                                           fmnn__image_uniform(layer, pass, z->fill.seed, image, 1));
    return (fmnn_affine){ zx, 0.0f, ((float)im.w - 1.0f) / 2.0f * (1.0f - zx),
                          0.0f, zy, ((float)im.h - 1.0f) / 2.0f * (1.0f - zy) };
}

static void zoom_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    fmnn__affine_forward(layer, &((const random_zoom *)layer)->fill, zoom_of, pass, in, out);
}

static void zoom_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                          float *dout, float *din)
{
    (void)in;
    (void)out;
    fmnn__affine_backward(layer, &((const random_zoom *)layer)->fill, zoom_of, pass, dout, din);
}

/* Keras refuses factors of -1 and below: a zoom of 0 or less. */
static const fmnn_field zoom_fields[] = {
    FMNN__FLOAT(random_zoom, height_lower, "height_factor[0]", -1.0, 1.0, 1, 0, 0.0),
    FMNN__FLOAT(random_zoom, height_upper, "height_factor[1]", -1.0, 1.0, 1, 0, 0.0),
    FMNN__FLOAT(random_zoom, width_lower, "width_factor[0]", -1.0, 1.0, 1, 0, 0.0),
    FMNN__FLOAT(random_zoom, width_upper, "width_factor[1]", -1.0, 1.0, 1, 0, 0.0),
    FMNN__IMAGE_FILL_FIELDS(random_zoom, fill),
    FMNN__CHOICE(random_zoom, has_width_factor, "has_width_factor", 0, 1),
};

const struct fmnn_layer_ops fmnn__random_zoom_ops = {
    .type = "RandomZoom",
    .base_name = "random_zoom",
    .size = sizeof(random_zoom),
    .config = FMNN__FIELDS(zoom_fields),
    .infer = zoom_infer,
    .forward = zoom_forward,
    .backward = zoom_backward,
};

FMNN_API fmnn_layer *fmnn_random_zoom(float height_lower, float height_upper,
                                      const fmnn_random_zoom_options *options)
{
    random_zoom *z = (random_zoom *)fmnn__layer_alloc(&fmnn__random_zoom_ops);
    if (!z)
        return NULL;
    const fmnn_random_zoom_options defaults = FMNN_RANDOM_ZOOM_OPTIONS_INIT;
    const fmnn_random_zoom_options *o = options ? options : &defaults;
    z->height_lower = height_lower;
    z->height_upper = height_upper;
    z->has_width_factor = o->has_width_factor;
    if (o->has_width_factor) { /* else unused, and kept out of the checks */
        z->width_lower = o->width_lower;
        z->width_upper = o->width_upper;
    }
    z->fill = fmnn__image_fill_of(&o->fill);
    return &z->base;
}
