/*
 * maxpool2d.c - MaxPooling2D on channels-last images.
 *
 * The forward pass keeps, for every output value, where its maximum came
 * from (an offset inside the input image), so the backward pass routes
 * each gradient straight back without searching the window again.
 */
#include <string.h>

#include "layer_impl.h"

typedef fmnn_pool2d maxpool2d;

static size_t maxpool2d_saved(const fmnn_layer *layer, int batch)
{
    return fmnn__shape_size(&layer->out) * (size_t)batch * sizeof(int32_t);
}

/*
 * One output pixel, all channels at once: the max over the window rows
 * [ya, yb) and columns [xa, xb).  Start from the window's first value,
 * then keep the first strictly larger one, so ties go to the earliest.
 * Written without branches so that the channel loop vectorizes; a branch
 * on `v > best` would be mispredicted half the time.
 */
static void pool_pixel(const float *image, int w, int ch, int ya, int yb, int xa, int xb,
                       float *restrict best, int32_t *restrict where)
{
    const int32_t first = (int32_t)(((size_t)ya * w + xa) * ch);
#pragma omp simd
    for (int k = 0; k < ch; k++) {
        best[k] = image[first + k];
        where[k] = first + k;
    }
    for (int iy = ya; iy < yb; iy++)
        for (int ix = xa; ix < xb; ix++) {
            const int32_t at = (int32_t)(((size_t)iy * w + ix) * ch);
            const float *v = image + at;
#pragma omp simd
            for (int k = 0; k < ch; k++) {
                const float candidate = v[k], current = best[k];
                const int32_t better = -(int32_t)(candidate > current); /* all ones or 0 */
                best[k] = candidate > current ? candidate : current;
                where[k] = (where[k] & ~better) | ((at + k) & better);
            }
        }
}

static void maxpool2d_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const maxpool2d *p = (const maxpool2d *)layer;
    const int h = layer->in.dims[0], w = layer->in.dims[1], ch = layer->in.dims[2];
    const int oh = layer->out.dims[0], ow = layer->out.dims[1];
    const size_t in_image = fmnn__shape_size(&layer->in);
    int32_t *argmax = (int32_t *)pass->saved + (size_t)pass->first * fmnn__shape_size(&layer->out);
    const float *bias = pass->deferred_bias;
#pragma omp parallel num_threads(fmnn__threads())
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < pass->batch; n++)
            for (int y = 0; y < oh; y++) {
                const float *image = in + (size_t)n * in_image;
                int y0 = y * p->pool.stride_h - p->pad_top;
                int ya = y0 < 0 ? 0 : y0, yb = y0 + p->pool.h > h ? h : y0 + p->pool.h;
                for (int x = 0; x < ow; x++) {
                    size_t o = (((size_t)n * oh + y) * ow + x) * ch;
                    float *best = out + o;
                    int x0 = x * p->pool.stride_w - p->pad_left;
                    int xa = x0 < 0 ? 0 : x0, xb = x0 + p->pool.w > w ? w : x0 + p->pool.w;
                    pool_pixel(image, w, ch, ya, yb, xa, xb, best, argmax + o);
                    if (bias) { /* the conv before us deferred its bias and relu */
#pragma omp simd
                        for (int k = 0; k < ch; k++) {
                            float v = best[k] + bias[k];
                            best[k] = v > 0.0f ? v : 0.0f;
                        }
                    }
                }
            }
        fmnn__restore_fp_mode(fp);
    }
}

/* Windows that never overlap let backward write each input once. */
static int windows_disjoint(const maxpool2d *p)
{
    return p->pool.stride_h >= p->pool.h && p->pool.stride_w >= p->pool.w;
}

/* ... and when they also tile the input exactly, nothing needs zeroing. */
static int windows_tile_input(const maxpool2d *p)
{
    const fmnn_layer *l = &p->base;
    return p->pool.stride_h == p->pool.h && p->pool.stride_w == p->pool.w && p->pad_top == 0 && p->pad_left == 0 &&
           l->out.dims[0] * p->pool.h == l->in.dims[0] && l->out.dims[1] * p->pool.w == l->in.dims[1];
}

/*
 * When windows are disjoint, output row y of an image owns the input rows
 * from its windows' top to the next row's (to the bottom, for the last),
 * and writes all of them: every input of a window gets its output's
 * gradient if it was the max, else 0, and rows and columns no window
 * covers get 0.  So rows of all images can be shared out among threads.
 */
static void unpool_row(const maxpool2d *p, int y, const float *dy, const int32_t *where, float *dx)
{
    const int h = p->base.in.dims[0], w = p->base.in.dims[1], ch = p->base.in.dims[2];
    const int oh = p->base.out.dims[0], ow = p->base.out.dims[1];
    int y0 = y * p->pool.stride_h - p->pad_top;
    int ya = y0 < 0 ? 0 : y0, yb = y0 + p->pool.h > h ? h : y0 + p->pool.h;
    if (!windows_tile_input(p)) {
        int end = y == oh - 1 || y0 + p->pool.stride_h > h ? h : y0 + p->pool.stride_h;
        memset(dx + (size_t)ya * w * ch, 0, (size_t)(end - ya) * w * ch * sizeof *dx);
    }
    for (int x = 0; x < ow; x++) {
        size_t o = ((size_t)y * ow + x) * ch;
        int x0 = x * p->pool.stride_w - p->pad_left;
        int xa = x0 < 0 ? 0 : x0, xb = x0 + p->pool.w > w ? w : x0 + p->pool.w;
        for (int iy = ya; iy < yb; iy++)
            for (int ix = xa; ix < xb; ix++) {
                const int32_t at = (int32_t)(((size_t)iy * w + ix) * ch);
#pragma omp simd
                for (int k = 0; k < ch; k++) {
                    const float g = dy[o + k]; /* loaded always, so no branch */
                    dx[at + k] = where[o + k] == at + k ? g : 0.0f;
                }
            }
    }
}

static void maxpool2d_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                               const float *out, float *dout, float *din)
{
    (void)in;
    const maxpool2d *p = (const maxpool2d *)layer;
    const size_t in_image = fmnn__shape_size(&layer->in);
    const size_t out_image = fmnn__shape_size(&layer->out);
    if (pass->deferred_bias) /* relu's mask and the conv's bias gradient, on pooled values */
        fmnn__bias_activate_backward(FMNN_RELU, out, dout, pass->deferred_bias_grad,
                                     out_image / (size_t)layer->out.dims[2] * (size_t)pass->batch,
                                     (size_t)layer->out.dims[2], pass->first > 0);
    if (!din)
        return;
    const int32_t *argmax = (const int32_t *)pass->saved + (size_t)pass->first * out_image;
    const int oh = layer->out.dims[0];
#pragma omp parallel num_threads(fmnn__threads())
    {
        const unsigned fp = fmnn__flush_denormals();
        if (windows_disjoint(p)) {
#pragma omp for collapse(2) schedule(static)
            for (int n = 0; n < pass->batch; n++)
                for (int y = 0; y < oh; y++)
                    unpool_row(p, y, dout + (size_t)n * out_image, argmax + (size_t)n * out_image,
                               din + (size_t)n * in_image);
        } else {
            /* One image per thread at a time: overlapping windows add
             * into the same input value, but never across images. */
#pragma omp for schedule(static)
            for (int n = 0; n < pass->batch; n++) {
                float *dx = din + (size_t)n * in_image;
                const float *dy = dout + (size_t)n * out_image;
                const int32_t *where = argmax + (size_t)n * out_image;
                memset(dx, 0, in_image * sizeof *dx);
                for (size_t o = 0; o < out_image; o++)
                    dx[where[o]] += dy[o];
            }
        }
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field maxpool2d_fields[] = { FMNN__WINDOW_FIELDS(maxpool2d, pool, "pool_size") };

const struct fmnn_layer_ops fmnn__maxpool2d_ops = {
    .type = "MaxPooling2D",
    .base_name = "max_pooling2d",
    .size = sizeof(maxpool2d),
    .config = FMNN__FIELDS(maxpool2d_fields),
    .applies_deferred_bias_relu = 1,
    .infer = fmnn__pool2d_infer,
    .saved = maxpool2d_saved,
    .forward = maxpool2d_forward,
    .backward = maxpool2d_backward,
};

FMNN_API fmnn_layer *fmnn_maxpool2d(int pool_h, int pool_w, const fmnn_maxpool2d_options *options)
{
    return fmnn__pool2d_new(&fmnn__maxpool2d_ops, pool_h, pool_w, options);
}
