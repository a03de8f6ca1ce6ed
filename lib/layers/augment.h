/*
 * augment.h - what the random augmentation layers share: their per-image
 * random draws, and the affine image sampler of RandomTranslation,
 * RandomRotation and RandomZoom (affine.c).
 *
 * Keras draws each image's transform from its own generator, which we
 * cannot reproduce; we draw from the same distributions (uniform in the
 * layer's range, once per image) with a hash instead of a sequence:
 * draw d of image n is a function of the step's seed (pass->seed, new at
 * every training step), the layer's index in the model, the layer's own
 * seed option and the image's index in the batch.  Threads may then draw
 * in any order, a backward pass recomputes exactly the forward's
 * transform instead of keeping it, and a resumed run draws the same.
 */
#ifndef FMNN_AUGMENT_H
#define FMNN_AUGMENT_H

#include "layer_impl.h"

/* Uniform in [0, 1), 24 random bits: draw `draw` (0, 1, ...) of image
 * `image` of this call (pass->shard and pass->first are added: the
 * image's index in the global batch), for a layer whose seed option is `seed`. */
static inline float fmnn__image_uniform(const fmnn_layer *layer, const fmnn_pass *pass, int seed, int image,
                                        unsigned draw)
{
    uint64_t key = pass->seed ^ fmnn__mix64((uint64_t)layer->index + 1);
    if (seed != 0) /* Keras's seed=None draws as some seed does: 0 changes nothing */
        key ^= fmnn__mix64(((uint64_t)(uint32_t)seed << 8) ^ 0x5eedULL);
    const uint64_t sample = (uint64_t)(pass->shard + pass->first + image) * 4 + draw; /* up to 4 draws per image */
    uint64_t bits = fmnn__mix64(key + 0x9e3779b97f4a7c15ULL * (sample + 1));
    return (float)(bits >> 40) * (1.0f / 16777216.0f);
}

/* A value drawn from U(lo, hi), as keras.random.uniform computes it. */
static inline float fmnn__image_between(float lo, float hi, float u)
{
    return lo + (hi - lo) * u;
}

/* The image size and channels of a (height, width, channels) layer. */
typedef struct fmnn_image {
    int h, w, c;
} fmnn_image;

static inline fmnn_image fmnn__image_of(const fmnn_layer *layer)
{
    return (fmnn_image){ layer->in.dims[0], layer->in.dims[1], layer->in.dims[2] };
}

/* Infer of every image layer: (height, width, channels) in, the same out;
 * any other rank is refused, naming the layer. */
FMNN_INTERNAL int fmnn__image_infer(fmnn_layer *layer);

/* Infer's check of a random range: lower <= upper, naming both options. */
FMNN_INTERNAL int fmnn__range_check(const fmnn_layer *layer, float lower, float upper, const char *name);

/*
 * Keras's affine_transform (keras/src/ops/image.py) with its JAX and
 * NumPy backends' sampling: output pixel (x, y), x the column and y the
 * row, pixel centres at whole numbers, reads the input at
 *     (a0 x + a1 y + a2, b0 x + b1 y + b2)
 * (Keras's transform row [a0, a1, a2, b0, b1, b2, 0, 0]).
 */
typedef struct fmnn_affine {
    float a0, a1, a2, b0, b1, b2;
} fmnn_affine;

/* The fill and interpolation options, as four 4-byte fields in a layer. */
typedef struct fmnn_image_fill {
    fmnn_fill_mode fill_mode;
    fmnn_interpolation interpolation;
    float fill_value;
    int seed;
} fmnn_image_fill;

/* Field-table entries for a fmnn_image_fill member, in Keras's argument
 * order after the factors: fill_mode, interpolation, seed, fill_value. */
#define FMNN__IMAGE_FILL_FIELDS(type, member)                                                             \
    FMNN__CHOICE(type, member.fill_mode, "fill_mode", FMNN_FILL_REFLECT, FMNN_FILL_NEAREST),              \
    FMNN__CHOICE(type, member.interpolation, "interpolation", FMNN_INTERPOLATION_BILINEAR,                \
                 FMNN_INTERPOLATION_NEAREST),                                                             \
    FMNN__INT(type, member.seed, "seed", INT32_MIN, INT32_MAX, 0),                                        \
    FMNN__FLOAT(type, member.fill_value, "fill_value", -HUGE_VAL, HUGE_VAL, 1, 1, 0.0)

/* The options struct's values, or Keras's defaults for NULL. */
FMNN_INTERNAL fmnn_image_fill fmnn__image_fill_of(const fmnn_image_fill_options *options);

/* The transform of image `image` of this call: each layer's own. */
typedef fmnn_affine (*fmnn_affine_of)(const fmnn_layer *layer, const fmnn_pass *pass, int image);

/*
 * The sampler: out = the input sampled through each image's transform, in
 * training; a copy at inference.  backward is its exact adjoint: each
 * output gradient goes back to the pixels it was read from, with the same
 * weights (none to a constant fill), the transforms recomputed from the
 * same draws.  Both parallel over images, so the bits do not depend on
 * the thread count.
 */
FMNN_INTERNAL void fmnn__affine_forward(const fmnn_layer *layer, const fmnn_image_fill *fill, fmnn_affine_of transform,
                                        const fmnn_pass *pass, const float *in, float *out);
FMNN_INTERNAL void fmnn__affine_backward(const fmnn_layer *layer, const fmnn_image_fill *fill,
                                         fmnn_affine_of transform, const fmnn_pass *pass, const float *dout,
                                         float *din);

#endif /* FMNN_AUGMENT_H */
