/*
 * random_translation.c - RandomTranslation, as Keras 3's
 * (keras/src/layers/preprocessing/image_preprocessing/random_translation.py):
 * in training each image is shifted down by dy = U(height_factor) * height
 * and right by dx = U(width_factor) * width pixels, drawn per image
 * (get_random_transformation), through the transform
 * [1, 0, -dx, 0, 1, -dy] (_get_translation_matrix) and the affine sampler
 * (affine.c); at inference it is the identity.  Keras's defaults:
 * reflect, bilinear, fill_value 0.  The draws are ours (augment.h): the
 * same distribution as Keras's, not its numbers.
 */
#include "augment.h"

typedef struct random_translation {
    fmnn_layer base;
    float height_lower, height_upper, width_lower, width_upper;
    fmnn_image_fill fill;
} random_translation;

static int translation_infer(fmnn_layer *layer)
{
    const random_translation *t = (const random_translation *)layer;
    int err = fmnn__image_infer(layer);
    if (!err)
        err = fmnn__range_check(layer, t->height_lower, t->height_upper, "height_factor");
    if (!err)
        err = fmnn__range_check(layer, t->width_lower, t->width_upper, "width_factor");
    return err;
}

static fmnn_affine translation_of(const fmnn_layer *layer, const fmnn_pass *pass, int image)
{
    const random_translation *t = (const random_translation *)layer;
    const fmnn_image im = fmnn__image_of(layer);
    const float dy = fmnn__image_between(t->height_lower, t->height_upper,
                                         fmnn__image_uniform(layer, pass, t->fill.seed, image, 0)) * (float)im.h;
    const float dx = fmnn__image_between(t->width_lower, t->width_upper,
                                         fmnn__image_uniform(layer, pass, t->fill.seed, image, 1)) * (float)im.w;
    return (fmnn_affine){ 1.0f, 0.0f, -dx, 0.0f, 1.0f, -dy };
}

static void translation_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    fmnn__affine_forward(layer, &((const random_translation *)layer)->fill, translation_of, pass, in, out);
}

static void translation_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                                 float *dout, float *din)
{
    (void)in;
    (void)out;
    fmnn__affine_backward(layer, &((const random_translation *)layer)->fill, translation_of, pass, dout, din);
}

static const fmnn_field translation_fields[] = {
    FMNN__FLOAT(random_translation, height_lower, "height_factor[0]", -1.0, 1.0, 0, 0, 0.0),
    FMNN__FLOAT(random_translation, height_upper, "height_factor[1]", -1.0, 1.0, 0, 0, 0.0),
    FMNN__FLOAT(random_translation, width_lower, "width_factor[0]", -1.0, 1.0, 0, 0, 0.0),
    FMNN__FLOAT(random_translation, width_upper, "width_factor[1]", -1.0, 1.0, 0, 0, 0.0),
    FMNN__IMAGE_FILL_FIELDS(random_translation, fill),
};

const struct fmnn_layer_ops fmnn__random_translation_ops = {
    .type = "RandomTranslation",
    .base_name = "random_translation",
    .size = sizeof(random_translation),
    .config = FMNN__FIELDS(translation_fields),
    .infer = translation_infer,
    .forward = translation_forward,
    .backward = translation_backward,
};

FMNN_API fmnn_layer *fmnn_random_translation(float height_lower, float height_upper, float width_lower,
                                             float width_upper, const fmnn_image_fill_options *options)
{
    random_translation *t = (random_translation *)fmnn__layer_alloc(&fmnn__random_translation_ops);
    if (!t)
        return NULL;
    t->height_lower = height_lower;
    t->height_upper = height_upper;
    t->width_lower = width_lower;
    t->width_upper = width_upper;
    t->fill = fmnn__image_fill_of(options);
    return &t->base;
}
