/*
 * random_contrast.c - RandomContrast, as Keras 3's
 * (keras/src/layers/preprocessing/image_preprocessing/random_contrast.py):
 * in training each image gets a factor f drawn from
 * U(1 - factor[0], 1 + factor[1]) (get_random_transformation), and
 *     y = clip((x - mean) * f + mean, value_range[0], value_range[1])
 * with mean each channel's over the image's height and width
 * (_adjust_contrast, then transform_images clips); at inference it is the
 * identity, unclipped.  The draws are ours (augment.h): the same
 * distribution as Keras's, not its numbers.
 *
 * Keras's factor=0.2 is (0, 0.2) here, f in [1, 1.2]: its _set_factor
 * bounds a single number below by _FACTOR_BOUNDS[0] = 0, whatever its
 * docstring says; factor=(0.2, 0.2) gives f in [0.8, 1.2].
 */
#include <string.h>

#include "augment.h"

typedef struct random_contrast {
    fmnn_layer base;
    float lower, upper;
    float value_low, value_high;
    int seed;
} random_contrast;

static int contrast_infer(fmnn_layer *layer)
{
    const random_contrast *r = (const random_contrast *)layer;
    int err = fmnn__image_infer(layer);
    if (!err && !(r->value_low < r->value_high))
        return fmnn__layer_error(layer, FMNN_EINVAL, "value_range[0] (%g) must be below value_range[1] (%g)",
                                 (double)r->value_low, (double)r->value_high);
    return err;
}

/* Per image, 4 floats per channel: c double sums, then the c means. */
static size_t contrast_workspace(const fmnn_layer *layer, int batch)
{
    return 4 * (size_t)layer->in.dims[2] * (size_t)batch;
}

typedef struct contrast_scratch {
    double *sum;
    float *mean;
} contrast_scratch;

static contrast_scratch scratch_of(const fmnn_pass *pass, size_t c, int image)
{
    double *sum = (double *)(void *)(pass->workspace + (size_t)image * 4 * c); /* 8-byte aligned */
    return (contrast_scratch){ sum, (float *)(sum + c) };
}

static float factor_of(const fmnn_layer *layer, const fmnn_pass *pass, int image)
{
    const random_contrast *r = (const random_contrast *)layer;
    return fmnn__image_between(1.0f - r->lower, 1.0f + r->upper,
                               fmnn__image_uniform(layer, pass, r->seed, image, 0));
}

/* Each channel's mean over the image, summed in double in pixel order. */
static void channel_means(const float *x, size_t pixels, size_t c, const contrast_scratch *s)
{
    for (size_t k = 0; k < c; k++)
        s->sum[k] = 0.0;
    for (size_t p = 0; p < pixels; p++)
        for (size_t k = 0; k < c; k++)
            s->sum[k] += x[p * c + k];
    for (size_t k = 0; k < c; k++)
        s->mean[k] = (float)(s->sum[k] / (double)pixels);
}

/* Before clipping, as Keras computes it; backward recomputes the same bits. */
static inline float adjusted(float x, float mean, float f)
{
    return (x - mean) * f + mean;
}

static void contrast_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const random_contrast *r = (const random_contrast *)layer;
    const size_t per_image = fmnn__shape_size(&layer->in), n = per_image * (size_t)pass->batch;
    if (!pass->training) {
        memcpy(out, in, n * sizeof *out);
        return;
    }
    const size_t c = (size_t)layer->in.dims[2], pixels = per_image / c;
    const float lo = r->value_low, hi = r->value_high;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (int b = 0; b < pass->batch; b++) {
            const float *x = in + (size_t)b * per_image;
            float *y = out + (size_t)b * per_image;
            const contrast_scratch s = scratch_of(pass, c, b);
            const float f = factor_of(layer, pass, b);
            channel_means(x, pixels, c, &s);
            for (size_t p = 0; p < pixels; p++)
                for (size_t k = 0; k < c; k++) {
                    const float v = adjusted(x[p * c + k], s.mean[k], f);
                    y[p * c + k] = v < lo ? lo : v > hi ? hi : v;
                }
        }
        fmnn__restore_fp_mode(fp);
    }
}

/*
 * With z = f x + (1 - f) mean (mean over the image's pixels P) and y =
 * clip(z): the gradient g = dy where z is inside the range, 0 where it
 * was clipped, and dx_j = f g_j + (1 - f) / P * sum_i g_i per channel.
 */
static void contrast_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                              float *dout, float *din)
{
    (void)out;
    const random_contrast *r = (const random_contrast *)layer;
    const size_t per_image = fmnn__shape_size(&layer->in), n = per_image * (size_t)pass->batch;
    if (!din)
        return;
    if (!pass->training) {
        memcpy(din, dout, n * sizeof *din);
        return;
    }
    const size_t c = (size_t)layer->in.dims[2], pixels = per_image / c;
    const float lo = r->value_low, hi = r->value_high;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (int b = 0; b < pass->batch; b++) {
            const float *x = in + (size_t)b * per_image;
            float *g = dout + (size_t)b * per_image, *dx = din + (size_t)b * per_image;
            const contrast_scratch s = scratch_of(pass, c, b);
            const float f = factor_of(layer, pass, b);
            channel_means(x, pixels, c, &s);
            for (size_t p = 0; p < pixels; p++)
                for (size_t k = 0; k < c; k++) {
                    const float v = adjusted(x[p * c + k], s.mean[k], f);
                    if (v < lo || v > hi)
                        g[p * c + k] = 0.0f; /* dout may be clobbered */
                }
            for (size_t k = 0; k < c; k++)
                s.sum[k] = 0.0;
            for (size_t p = 0; p < pixels; p++)
                for (size_t k = 0; k < c; k++)
                    s.sum[k] += g[p * c + k];
            for (size_t k = 0; k < c; k++)
                s.mean[k] = (float)((1.0 - (double)f) * s.sum[k] / (double)pixels); /* now the shared part */
            for (size_t p = 0; p < pixels; p++)
                for (size_t k = 0; k < c; k++)
                    dx[p * c + k] = f * g[p * c + k] + s.mean[k];
        }
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field contrast_fields[] = {
    FMNN__FLOAT(random_contrast, lower, "factor[0]", 0.0, 1.0, 0, 0, 0.0),
    FMNN__FLOAT(random_contrast, upper, "factor[1]", 0.0, 1.0, 0, 0, 0.0),
    FMNN__FLOAT(random_contrast, value_low, "value_range[0]", -HUGE_VAL, HUGE_VAL, 1, 1, 0.0),
    FMNN__FLOAT(random_contrast, value_high, "value_range[1]", -HUGE_VAL, HUGE_VAL, 1, 1, 255.0),
    FMNN__INT(random_contrast, seed, "seed", INT32_MIN, INT32_MAX, 0),
};

const struct fmnn_layer_ops fmnn__random_contrast_ops = {
    .type = "RandomContrast",
    .base_name = "random_contrast",
    .size = sizeof(random_contrast),
    .config = FMNN__FIELDS(contrast_fields),
    .infer = contrast_infer,
    .workspace = contrast_workspace,
    .forward = contrast_forward,
    .backward = contrast_backward,
};

FMNN_API fmnn_layer *fmnn_random_contrast(float lower, float upper, const fmnn_random_contrast_options *options)
{
    random_contrast *r = (random_contrast *)fmnn__layer_alloc(&fmnn__random_contrast_ops);
    if (!r)
        return NULL;
    const fmnn_random_contrast_options defaults = FMNN_RANDOM_CONTRAST_OPTIONS_INIT;
    const fmnn_random_contrast_options *o = options ? options : &defaults;
    r->lower = lower;
    r->upper = upper;
    r->value_low = o->value_low;
    r->value_high = o->value_high;
    r->seed = o->seed;
    return &r->base;
}
