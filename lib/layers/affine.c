/*
 * affine.c - the image sampler of RandomTranslation, RandomRotation and
 * RandomZoom (augment.h), and what every image layer shares.
 *
 * Sampling follows Keras's JAX and NumPy backends (map_coordinates with
 * order 0 or 1, as jax.scipy.ndimage and scipy.ndimage define it): the
 * input is extended past its edges by the fill mode, one whole-pixel
 * index at a time, and the output reads the extended input
 *   - bilinear: from the 4 pixels around the point, weighted by
 *     (1 - fx or fx) * (1 - fy or fy), fx and fy the point's fractional
 *     parts; a constant fill's pixels read fill_value;
 *   - nearest: from the pixel the point rounds to, halves away from zero.
 * Keras's TensorFlow backend (ImageProjectiveTransformV3) maps the point
 * itself, not each pixel around it, so it can differ from this within a
 * pixel of the border.
 */
#include <math.h>
#include <string.h>

#include "augment.h"

int fmnn__image_infer(fmnn_layer *layer)
{
    if (layer->in.rank != 3)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "expects (height, width, channels) input, got rank %d",
                                 layer->in.rank);
    layer->out = layer->in;
    return FMNN_OK;
}

int fmnn__range_check(const fmnn_layer *layer, float lower, float upper, const char *name)
{
    if (lower > upper)
        return fmnn__layer_error(layer, FMNN_EINVAL, "%s[0] (%g) must not be above %s[1] (%g)", name,
                                 (double)lower, name, (double)upper);
    return FMNN_OK;
}

fmnn_image_fill fmnn__image_fill_of(const fmnn_image_fill_options *o)
{
    if (!o)
        return (fmnn_image_fill){ FMNN_FILL_REFLECT, FMNN_INTERPOLATION_BILINEAR, 0.0f, 0 };
    return (fmnn_image_fill){ o->fill_mode, o->interpolation, o->fill_value, o->seed };
}

/* Where whole-pixel index i of an axis of n pixels reads from, or -1 for
 * the constant fill.  Reflect repeats with a period of 2n, mirrored about
 * the edge of the last pixel (jax's _reflect_index_fixer). */
static int fix_index(int i, int n, fmnn_fill_mode mode)
{
    switch (mode) {
    case FMNN_FILL_REFLECT: {
        int m = i % (2 * n);
        if (m < 0)
            m += 2 * n;
        return m < n ? m : 2 * n - 1 - m;
    }
    case FMNN_FILL_WRAP: {
        int m = i % n;
        return m < 0 ? m + n : m;
    }
    case FMNN_FILL_NEAREST:
        return i < 0 ? 0 : i >= n ? n - 1 : i;
    case FMNN_FILL_CONSTANT:
        break;
    }
    return i >= 0 && i < n ? i : -1;
}

/* Keeps a coordinate where its floor fits an int, far outside any image
 * (sizes are at most 2^24); every fill mode reads the same there. */
static float bounded(float v)
{
    const float limit = 1073741824.0f; /* 2^30 */
    return v < -limit ? -limit : v > limit ? limit : v;
}

/* The pixels output pixel (x, y) reads, as offsets into the image (-1:
 * the fill value), and their weights; returns how many (1 or 4). */
static int taps(const fmnn_affine *t, const fmnn_image *im, const fmnn_image_fill *fill, int x, int y,
                long long at[4], float weight[4])
{
    const float xs = bounded(t->a0 * (float)x + t->a1 * (float)y + t->a2);
    const float ys = bounded(t->b0 * (float)x + t->b1 * (float)y + t->b2);
    if (fill->interpolation == FMNN_INTERPOLATION_NEAREST) {
        const int ix = fix_index((int)roundf(xs), im->w, fill->fill_mode);
        const int iy = fix_index((int)roundf(ys), im->h, fill->fill_mode);
        at[0] = ix < 0 || iy < 0 ? -1 : (long long)iy * im->w + ix;
        weight[0] = 1.0f;
        return 1;
    }
    const float fx = floorf(xs), fy = floorf(ys);
    const float wx1 = xs - fx, wy1 = ys - fy;
    const int x0 = (int)fx, y0 = (int)fy;
    int k = 0;
    for (int dy = 0; dy < 2; dy++) {
        const int iy = fix_index(y0 + dy, im->h, fill->fill_mode);
        const float wy = dy ? wy1 : 1.0f - wy1;
        for (int dx = 0; dx < 2; dx++, k++) {
            const int ix = fix_index(x0 + dx, im->w, fill->fill_mode);
            at[k] = ix < 0 || iy < 0 ? -1 : (long long)iy * im->w + ix;
            weight[k] = wy * (dx ? wx1 : 1.0f - wx1);
        }
    }
    return 4;
}

static void sample_image(const fmnn_affine *t, const fmnn_image *im, const fmnn_image_fill *fill, const float *in,
                         float *out)
{
    const size_t c = (size_t)im->c;
    long long at[4];
    float weight[4];
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            const int n = taps(t, im, fill, x, y, at, weight);
            float *o = out + ((size_t)y * (size_t)im->w + (size_t)x) * c;
            for (size_t k = 0; k < c; k++) {
                float v = 0.0f;
                for (int j = 0; j < n; j++)
                    v += weight[j] * (at[j] < 0 ? fill->fill_value : in[(size_t)at[j] * c + k]);
                o[k] = v;
            }
        }
}

/* The adjoint of sample_image: din = sum over the outputs of weight * dout. */
static void scatter_image(const fmnn_affine *t, const fmnn_image *im, const fmnn_image_fill *fill,
                          const float *dout, float *din)
{
    const size_t c = (size_t)im->c;
    long long at[4];
    float weight[4];
    memset(din, 0, (size_t)im->h * (size_t)im->w * c * sizeof *din);
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            const int n = taps(t, im, fill, x, y, at, weight);
            const float *g = dout + ((size_t)y * (size_t)im->w + (size_t)x) * c;
            for (int j = 0; j < n; j++) {
                if (at[j] < 0)
                    continue; /* a constant has no gradient */
                float *d = din + (size_t)at[j] * c;
                for (size_t k = 0; k < c; k++)
                    d[k] += weight[j] * g[k];
            }
        }
}

void fmnn__affine_forward(const fmnn_layer *layer, const fmnn_image_fill *fill, fmnn_affine_of transform,
                          const fmnn_pass *pass, const float *in, float *out)
{
    const size_t per_image = fmnn__shape_size(&layer->in), n = per_image * (size_t)pass->batch;
    if (!pass->training) {
        memcpy(out, in, n * sizeof *out);
        return;
    }
    const fmnn_image im = fmnn__image_of(layer);
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (int b = 0; b < pass->batch; b++) {
            const fmnn_affine t = transform(layer, pass, b);
            sample_image(&t, &im, fill, in + (size_t)b * per_image, out + (size_t)b * per_image);
        }
        fmnn__restore_fp_mode(fp);
    }
}

void fmnn__affine_backward(const fmnn_layer *layer, const fmnn_image_fill *fill, fmnn_affine_of transform,
                           const fmnn_pass *pass, const float *dout, float *din)
{
    const size_t per_image = fmnn__shape_size(&layer->in), n = per_image * (size_t)pass->batch;
    if (!din)
        return;
    if (!pass->training) {
        memcpy(din, dout, n * sizeof *din);
        return;
    }
    const fmnn_image im = fmnn__image_of(layer);
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (int b = 0; b < pass->batch; b++) {
            const fmnn_affine t = transform(layer, pass, b);
            scatter_image(&t, &im, fill, dout + (size_t)b * per_image, din + (size_t)b * per_image);
        }
        fmnn__restore_fp_mode(fp);
    }
}
