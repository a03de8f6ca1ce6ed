/*
 * average_pooling2d.c - AveragePooling2D on channels-last images.
 *
 * Each output is the mean of the part of its window that lies inside the
 * image: with "same" padding a border window divides by the pixels it
 * really covers, as Keras (TensorFlow) does, never by the full window.
 */
#include <string.h>

#include "layer_impl.h"

typedef fmnn_pool2d average_pooling2d;

/* The rows [*ya, *yb) and columns [*xa, *xb) of output pixel (y, x)'s
 * window inside the image. */
static void window_of(const average_pooling2d *p, int y, int x, int *ya, int *yb, int *xa, int *xb)
{
    const int h = p->base.in.dims[0], w = p->base.in.dims[1];
    int y0 = y * p->pool.stride_h - p->pad_top, x0 = x * p->pool.stride_w - p->pad_left;
    *ya = y0 < 0 ? 0 : y0;
    *yb = y0 + p->pool.h > h ? h : y0 + p->pool.h;
    *xa = x0 < 0 ? 0 : x0;
    *xb = x0 + p->pool.w > w ? w : x0 + p->pool.w;
}

static void avgpool_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const average_pooling2d *p = (const average_pooling2d *)layer;
    const int w = layer->in.dims[1], ch = layer->in.dims[2];
    const int oh = layer->out.dims[0], ow = layer->out.dims[1];
    const size_t in_image = fmnn__shape_size(&layer->in);
#pragma omp parallel num_threads(fmnn__threads())
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < pass->batch; n++)
            for (int y = 0; y < oh; y++) {
                const float *image = in + (size_t)n * in_image;
                for (int x = 0; x < ow; x++) {
                    int ya, yb, xa, xb;
                    window_of(p, y, x, &ya, &yb, &xa, &xb);
                    float *sum = out + (((size_t)n * oh + y) * ow + x) * ch;
                    memset(sum, 0, (size_t)ch * sizeof *sum);
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++) {
                            const float *v = image + ((size_t)iy * w + ix) * ch;
#pragma omp simd
                            for (int k = 0; k < ch; k++)
                                sum[k] += v[k];
                        }
                    const float count = (float)((yb - ya) * (xb - xa));
#pragma omp simd
                    for (int k = 0; k < ch; k++)
                        sum[k] /= count;
                }
            }
        fmnn__restore_fp_mode(fp);
    }
}

/* Each input gets dy / count from every window that covers it: one image
 * per thread at a time, windows in order, so the sums never race and
 * their order is fixed. */
static void avgpool_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                             float *dout, float *din)
{
    (void)in;
    (void)out;
    if (!din)
        return;
    const average_pooling2d *p = (const average_pooling2d *)layer;
    const int w = layer->in.dims[1], ch = layer->in.dims[2];
    const int oh = layer->out.dims[0], ow = layer->out.dims[1];
    const size_t in_image = fmnn__shape_size(&layer->in), out_image = fmnn__shape_size(&layer->out);
#pragma omp parallel num_threads(fmnn__threads())
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (int n = 0; n < pass->batch; n++) {
            float *dx = din + (size_t)n * in_image;
            const float *dy = dout + (size_t)n * out_image;
            memset(dx, 0, in_image * sizeof *dx);
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int ya, yb, xa, xb;
                    window_of(p, y, x, &ya, &yb, &xa, &xb);
                    const float count = (float)((yb - ya) * (xb - xa));
                    const float *g = dy + ((size_t)y * ow + x) * ch;
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++) {
                            float *d = dx + ((size_t)iy * w + ix) * ch;
#pragma omp simd
                            for (int k = 0; k < ch; k++)
                                d[k] += g[k] / count;
                        }
                }
        }
        fmnn__restore_fp_mode(fp);
    }
}

static const fmnn_field avgpool_fields[] = { FMNN__WINDOW_FIELDS(average_pooling2d, pool, "pool_size") };

const struct fmnn_layer_ops fmnn__average_pooling2d_ops = {
    .type = "AveragePooling2D",
    .base_name = "average_pooling2d",
    .size = sizeof(average_pooling2d),
    .config = FMNN__FIELDS(avgpool_fields),
    .infer = fmnn__pool2d_infer,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

FMNN_API fmnn_layer *fmnn_average_pooling2d(int pool_h, int pool_w, const fmnn_pool2d_options *options)
{
    return fmnn__pool2d_new(&fmnn__average_pooling2d_ops, pool_h, pool_w, options);
}
