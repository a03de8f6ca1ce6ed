/*
 * random_rotation.c - RandomRotation, as Keras 3's
 * (keras/src/layers/preprocessing/image_preprocessing/random_rotation.py):
 * in training each image turns about its centre ((w - 1) / 2, (h - 1) / 2)
 * by an angle drawn per image from U(factor[0] * 360, factor[1] * 360)
 * degrees (get_random_transformation), through the matrix
 * _compute_affine_matrix builds (base_image_preprocessing_layer.py) with
 * no translation, shear or scaling:
 *     [cos, -sin, cx - cx cos + cy sin,  sin, cos, cy - cx sin - cy cos]
 * and the affine sampler (affine.c); at inference it is the identity.
 * Keras's defaults: reflect, bilinear, fill_value 0.  The draws are ours
 * (augment.h): the same distribution as Keras's, not its numbers.
 */
#include <math.h>

#include "augment.h"

typedef struct random_rotation {
    fmnn_layer base;
    float lower, upper;
    fmnn_image_fill fill;
} random_rotation;

static int rotation_infer(fmnn_layer *layer)
{
    const random_rotation *r = (const random_rotation *)layer;
    int err = fmnn__image_infer(layer);
    return err ? err : fmnn__range_check(layer, r->lower, r->upper, "factor");
}

static fmnn_affine rotation_of(const fmnn_layer *layer, const fmnn_pass *pass, int image)
{
    const random_rotation *r = (const random_rotation *)layer;
    const fmnn_image im = fmnn__image_of(layer);
    const float degrees = fmnn__image_between(r->lower * 360.0f, r->upper * 360.0f,
                                              fmnn__image_uniform(layer, pass, r->fill.seed, image, 0));
    const float angle = degrees * (float)(3.14159265358979323846 / 180.0);
    const float c = cosf(angle), s = sinf(angle);
    const float cx = 0.5f * (float)(im.w - 1), cy = 0.5f * (float)(im.h - 1);
    return (fmnn_affine){ c, -s, cx - cx * c - cy * -s, s, c, cy - cx * s - cy * c };
}

static void rotation_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    fmnn__affine_forward(layer, &((const random_rotation *)layer)->fill, rotation_of, pass, in, out);
}

static void rotation_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                              float *dout, float *din)
{
    (void)in;
    (void)out;
    fmnn__affine_backward(layer, &((const random_rotation *)layer)->fill, rotation_of, pass, dout, din);
}

static const fmnn_field rotation_fields[] = {
    FMNN__FLOAT(random_rotation, lower, "factor[0]", -1.0, 1.0, 0, 0, 0.0),
    FMNN__FLOAT(random_rotation, upper, "factor[1]", -1.0, 1.0, 0, 0, 0.0),
    FMNN__IMAGE_FILL_FIELDS(random_rotation, fill),
};

const struct fmnn_layer_ops fmnn__random_rotation_ops = {
    .type = "RandomRotation",
    .base_name = "random_rotation",
    .size = sizeof(random_rotation),
    .config = FMNN__FIELDS(rotation_fields),
    .infer = rotation_infer,
    .forward = rotation_forward,
    .backward = rotation_backward,
};

FMNN_API fmnn_layer *fmnn_random_rotation(float lower, float upper, const fmnn_image_fill_options *options)
{
    random_rotation *r = (random_rotation *)fmnn__layer_alloc(&fmnn__random_rotation_ops);
    if (!r)
        return NULL;
    r->lower = lower;
    r->upper = upper;
    r->fill = fmnn__image_fill_of(options);
    return &r->base;
}
