/*
 * random_flip.c - RandomFlip, as Keras 3's
 * (keras/src/layers/preprocessing/image_preprocessing/random_flip.py): in
 * training each image is flipped when its draw from U(0, 1) is <= 0.5
 * (get_random_transformation), left-right, top-bottom, or, in Keras's
 * default horizontal_and_vertical mode, both at once on the same draw
 * (_flip_inputs applies both flips where `flips` is true): so half the
 * images turn by 180 degrees and the others stay.  At inference it is the
 * identity.  The draws are ours (augment.h): the same distribution as
 * Keras's, not its numbers.
 */
#include <string.h>

#include "augment.h"

typedef struct random_flip {
    fmnn_layer base;
    fmnn_flip_mode mode;
    int seed;
} random_flip;

static int flipped(const fmnn_layer *layer, const fmnn_pass *pass, int image)
{
    return fmnn__image_uniform(layer, pass, ((const random_flip *)layer)->seed, image, 0) <= 0.5f;
}

/* out = in flipped, image by image; a flip is its own inverse, so
 * backward flips the gradient the same way. */
static void flip(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const fmnn_flip_mode mode = ((const random_flip *)layer)->mode;
    const fmnn_image im = fmnn__image_of(layer);
    const size_t c = (size_t)im.c, row = (size_t)im.w * c, per_image = (size_t)im.h * row;
    const size_t n = per_image * (size_t)pass->batch;
    const int rows = mode != FMNN_FLIP_HORIZONTAL, columns = mode != FMNN_FLIP_VERTICAL;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
#pragma omp for schedule(static)
        for (int b = 0; b < pass->batch; b++) {
            const float *src = in + (size_t)b * per_image;
            float *dst = out + (size_t)b * per_image;
            if (!flipped(layer, pass, b)) {
                memcpy(dst, src, per_image * sizeof *dst);
                continue;
            }
            for (int y = 0; y < im.h; y++) {
                const float *s = src + (size_t)(rows ? im.h - 1 - y : y) * row;
                float *d = dst + (size_t)y * row;
                if (!columns) {
                    memcpy(d, s, row * sizeof *d);
                    continue;
                }
                for (int x = 0; x < im.w; x++)
                    memcpy(d + (size_t)x * c, s + (size_t)(im.w - 1 - x) * c, c * sizeof *d);
            }
        }
    }
}

static void flip_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    if (pass->training)
        flip(layer, pass, in, out);
    else
        memcpy(out, in, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *out);
}

static void flip_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                          float *dout, float *din)
{
    (void)in;
    (void)out;
    if (din)
        flip_forward(layer, pass, dout, din);
}

static const fmnn_field flip_fields[] = {
    FMNN__CHOICE(random_flip, mode, "mode", FMNN_FLIP_HORIZONTAL_AND_VERTICAL, FMNN_FLIP_VERTICAL),
    FMNN__INT(random_flip, seed, "seed", INT32_MIN, INT32_MAX, 0),
};

const struct fmnn_layer_ops fmnn__random_flip_ops = {
    .type = "RandomFlip",
    .base_name = "random_flip",
    .size = sizeof(random_flip),
    .config = FMNN__FIELDS(flip_fields),
    .infer = fmnn__image_infer,
    .forward = flip_forward,
    .backward = flip_backward,
};

FMNN_API fmnn_layer *fmnn_random_flip(const fmnn_random_flip_options *options)
{
    random_flip *f = (random_flip *)fmnn__layer_alloc(&fmnn__random_flip_ops);
    if (!f)
        return NULL;
    if (options) {
        f->mode = options->mode;
        f->seed = options->seed;
    }
    return &f->base;
}
