/*
 * conv2d.c - Conv2D on channels-last images, by im2col and one GEMM.
 *
 * For each output pixel, im2col copies the kh x kw x c input patch it sees
 * into one row of a matrix `col` (rows: output pixels, columns: kh*kw*c).
 * The kernel, stored (kh, kw, c, filters) as Keras does, is already that
 * matrix's partner: out = col x kernel is then a single large GEMM.
 * Images are processed in groups, so `col` stays a few MB whatever the
 * batch size.  Backward reuses the same buffer for dcol = dY x kernel^T.
 */
#include <limits.h>
#include <string.h>

#include "layer_impl.h"

/* Floats of im2col scratch to aim for: large GEMMs, bounded memory. */
#define COL_BUDGET ((size_t)1 << 22)

typedef struct conv2d {
    fmnn_layer base;
    int filters;
    fmnn_window kernel;    /* its size, strides and padding */
    int dh, dw;            /* dilation_rate: kernel taps dh rows, dw columns apart */
    int use_bias;
    int pad_top, pad_left; /* from the padding mode, set by infer */
} conv2d;

static int conv2d_infer(fmnn_layer *layer)
{
    conv2d *c = (conv2d *)layer;
    if ((c->dh > 1 || c->dw > 1) && (c->kernel.stride_h > 1 || c->kernel.stride_w > 1))
        return fmnn__layer_error(layer, FMNN_EINVAL, "strides %dx%d with dilation_rate %dx%d: Keras allows one of "
                                 "them above 1, not both", c->kernel.stride_h, c->kernel.stride_w, c->dh, c->dw);
    /* The window a dilated kernel spans: (k - 1) * d + 1 (at most 2^48). */
    const long long span_h = (long long)(c->kernel.h - 1) * c->dh + 1, span_w = (long long)(c->kernel.w - 1) * c->dw + 1;
    if (span_h > INT_MAX || span_w > INT_MAX)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "kernel %dx%d with dilation_rate %dx%d is too large",
                                 c->kernel.h, c->kernel.w, c->dh, c->dw);
    fmnn_window span = c->kernel;
    span.h = (int)span_h;
    span.w = (int)span_w;
    int oh, ow;
    int err = fmnn__window_infer(layer, &span, "kernel", &oh, &ow, &c->pad_top, &c->pad_left);
    if (err)
        return err;
    int ch = layer->in.dims[2];
    if ((long long)c->kernel.h * c->kernel.w * ch > INT_MAX || (long long)c->kernel.h * c->kernel.w * c->filters > INT_MAX)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "kernel %dx%d over %d channels, %d filters is too large",
                                 c->kernel.h, c->kernel.w, ch, c->filters);
    layer->out = (fmnn_shape){ 3, { oh, ow, c->filters, 0 } };
    layer->n_kernel = (size_t)c->kernel.h * (size_t)c->kernel.w * (size_t)ch * (size_t)c->filters;
    layer->n_bias = c->use_bias ? (size_t)c->filters : 0;
    layer->fan_in = c->kernel.h * c->kernel.w * ch;
    layer->fan_out = c->kernel.h * c->kernel.w * c->filters;
    return FMNN_OK;
}

/* The 1x1, stride-1, unpadded case needs no im2col: the input is col. */
static int is_pointwise(const conv2d *c)
{
    return c->kernel.h == 1 && c->kernel.w == 1 && c->kernel.stride_h == 1 && c->kernel.stride_w == 1;
}

static size_t col_width(const conv2d *c)
{
    return (size_t)c->kernel.h * (size_t)c->kernel.w * (size_t)c->base.in.dims[2];
}

static size_t pixels_out(const conv2d *c)
{
    return (size_t)c->base.out.dims[0] * (size_t)c->base.out.dims[1];
}

/* How many images go through one im2col + GEMM. */
static int group_size(const conv2d *c, int batch)
{
    size_t per_image = pixels_out(c) * col_width(c);
    size_t g = per_image >= COL_BUDGET ? 1 : COL_BUDGET / per_image;
    return g > (size_t)batch ? batch : (int)g;
}

static size_t conv2d_workspace(const fmnn_layer *layer, int batch)
{
    const conv2d *c = (const conv2d *)layer;
    return is_pointwise(c) ? 0 : (size_t)group_size(c, batch) * pixels_out(c) * col_width(c);
}

/* col[(n, oh, ow), (i, j, ch)] = in[n, oh*sh + i*dh - pad, ow*sw + j*dw - pad, ch], or 0. */
static void im2col(const conv2d *c, const float *in, int images, float *col)
{
    const int h = c->base.in.dims[0], w = c->base.in.dims[1], ch = c->base.in.dims[2];
    const int oh = c->base.out.dims[0], ow = c->base.out.dims[1];
    const size_t width = col_width(c);
    const size_t patch_row = (size_t)c->kernel.w * (size_t)ch;
#pragma omp parallel num_threads(fmnn__threads())
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < images; n++)
            for (int y = 0; y < oh; y++) {
                const float *image = in + (size_t)n * h * w * ch;
                for (int x = 0; x < ow; x++) {
                    float *row = col + (((size_t)n * oh + y) * ow + x) * width;
                    int x0 = x * c->kernel.stride_w - c->pad_left;
                    for (int i = 0; i < c->kernel.h; i++) {
                        int iy = y * c->kernel.stride_h - c->pad_top + i * c->dh;
                        float *dst = row + (size_t)i * patch_row;
                        if (iy < 0 || iy >= h) {
                            memset(dst, 0, patch_row * sizeof *dst);
                            continue;
                        }
                        if (c->dw == 1 && x0 >= 0 && x0 + c->kernel.w <= w) { /* the common case: no edge */
                            memcpy(dst, image + ((size_t)iy * w + x0) * ch, patch_row * sizeof *dst);
                            continue;
                        }
                        for (int j = 0; j < c->kernel.w; j++) {
                            int ix = x0 + j * c->dw;
                            if (ix < 0 || ix >= w)
                                memset(dst + (size_t)j * ch, 0, (size_t)ch * sizeof *dst);
                            else
                                memcpy(dst + (size_t)j * ch, image + ((size_t)iy * w + ix) * ch,
                                       (size_t)ch * sizeof *dst);
                        }
                    }
                }
            }
        fmnn__restore_fp_mode(fp);
    }
}

/*
 * The adjoint of im2col: din[n, iy, ix, ch] = sum of the dcol entries that
 * copied that input value.  Written as a gather over input pixels, so
 * threads never write to the same place and the sum order is fixed.
 */
static void col2im(const conv2d *c, const float *dcol, int images, float *din)
{
    const int h = c->base.in.dims[0], w = c->base.in.dims[1], ch = c->base.in.dims[2];
    const int oh = c->base.out.dims[0], ow = c->base.out.dims[1];
    const size_t width = col_width(c);
#pragma omp parallel num_threads(fmnn__threads())
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < images; n++)
            for (int iy = 0; iy < h; iy++) {
                for (int ix = 0; ix < w; ix++) {
                    float *dst = din + (((size_t)n * h + iy) * w + ix) * ch;
                    memset(dst, 0, (size_t)ch * sizeof *dst);
                    for (int i = 0; i < c->kernel.h; i++) {
                        int ty = iy + c->pad_top - i * c->dh; /* = y * sh when output row y saw iy */
                        if (ty < 0 || ty % c->kernel.stride_h != 0 || ty / c->kernel.stride_h >= oh)
                            continue;
                        int y = ty / c->kernel.stride_h;
                        for (int j = 0; j < c->kernel.w; j++) {
                            int tx = ix + c->pad_left - j * c->dw;
                            if (tx < 0 || tx % c->kernel.stride_w != 0 || tx / c->kernel.stride_w >= ow)
                                continue;
                            int x = tx / c->kernel.stride_w;
                            const float *src = dcol + (((size_t)n * oh + y) * ow + x) * width +
                                               ((size_t)i * c->kernel.w + j) * ch;
#pragma omp simd
                            for (int k = 0; k < ch; k++)
                                dst[k] += src[k];
                        }
                    }
                }
            }
        fmnn__restore_fp_mode(fp);
    }
}

static void conv2d_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    const conv2d *c = (const conv2d *)layer;
    const size_t in_image = fmnn__shape_size(&layer->in);
    const size_t out_image = fmnn__shape_size(&layer->out);
    const int width = (int)col_width(c);
    const int group = group_size(c, pass->batch);
    for (int n0 = 0; n0 < pass->batch; n0 += group) {
        int images = pass->batch - n0 < group ? pass->batch - n0 : group;
        const float *col = in + (size_t)n0 * in_image;
        if (!is_pointwise(c)) {
            im2col(c, col, images, pass->workspace);
            col = pass->workspace;
        }
        float *y = out + (size_t)n0 * out_image;
        int rows = images * (int)pixels_out(c);
        fmnn__gemm(0, 0, rows, c->filters, width, 1.0f, col, width, layer->kernel,
                   c->filters, 0.0f, y, c->filters);
        if (!pass->defer_bias)
            fmnn__bias_activate(pass->activation, y, c->use_bias ? layer->bias : NULL, (size_t)rows,
                                (size_t)c->filters);
    }
}

static void conv2d_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in,
                            const float *out, float *dout, float *din)
{
    conv2d *c = (conv2d *)layer;
    const size_t in_image = fmnn__shape_size(&layer->in);
    const size_t out_image = fmnn__shape_size(&layer->out);
    const int width = (int)col_width(c);
    const int group = group_size(c, pass->batch);
    const size_t all_rows = (size_t)pass->batch * pixels_out(c);

    if (!pass->defer_bias) /* else the pool after us did this */
        fmnn__bias_activate_backward(pass->activation, out, dout, c->use_bias ? layer->bias_grad : NULL, all_rows,
                                     (size_t)c->filters, pass->first > 0);
    for (int n0 = 0; n0 < pass->batch; n0 += group) {
        int images = pass->batch - n0 < group ? pass->batch - n0 : group;
        int rows = images * (int)pixels_out(c);
        const float *dy = dout + (size_t)n0 * out_image;
        const float *x = in + (size_t)n0 * in_image;
        const float *col = x;
        if (!is_pointwise(c)) {
            im2col(c, x, images, pass->workspace);
            col = pass->workspace;
        }
        /* dK += col^T dY, in a fixed group order */
        fmnn__gemm(1, 0, width, c->filters, rows, 1.0f, col, width, dy, c->filters,
                   pass->first + n0 == 0 ? 0.0f : 1.0f, layer->kernel_grad, c->filters);
        if (!din)
            continue;
        float *dx = din + (size_t)n0 * in_image;
        if (is_pointwise(c)) { /* dx = dY K^T directly */
            fmnn__gemm(0, 1, rows, width, c->filters, 1.0f, dy, c->filters, layer->kernel,
                       c->filters, 0.0f, dx, width);
            continue;
        }
        fmnn__gemm(0, 1, rows, width, c->filters, 1.0f, dy, c->filters, layer->kernel,
                   c->filters, 0.0f, pass->workspace, width);
        col2im(c, pass->workspace, images, dx);
    }
}

static const fmnn_field conv2d_fields[] = {
    FMNN__SIZE(conv2d, filters, "filters"),
    FMNN__WINDOW_FIELDS(conv2d, kernel, "kernel_size"),
    FMNN__ACTIVATION_FIELD(conv2d),
    FMNN__REGULARIZER_FIELDS(conv2d),
    FMNN__INT(conv2d, dh, "dilation_rate[0]", 1, FMNN__MAX_SIZE, 1),
    FMNN__INT(conv2d, dw, "dilation_rate[1]", 1, FMNN__MAX_SIZE, 1),
    { "use_bias", FMNN__FIELD_AT(conv2d, use_bias), FMNN__FIELD_CHOICE, 0, 1, 0, 0, 1 },
    FMNN__INITIALIZER_FIELDS(conv2d),
};

const struct fmnn_layer_ops fmnn__conv2d_ops = {
    .type = "Conv2D",
    .base_name = "conv2d",
    .size = sizeof(conv2d),
    .config = FMNN__FIELDS(conv2d_fields),
    .fuses_activation = 1,
    .can_defer_bias_relu = 1,
    .infer = conv2d_infer,
    .workspace = conv2d_workspace,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
};

FMNN_API fmnn_layer *fmnn_conv2d(int filters, int kernel_h, int kernel_w,
                                 const fmnn_conv2d_options *options)
{
    conv2d *c = (conv2d *)fmnn__layer_alloc(&fmnn__conv2d_ops);
    if (!c)
        return NULL;
    c->filters = filters;
    c->kernel = (fmnn_window){ kernel_h, kernel_w, 1, 1, FMNN_PADDING_VALID };
    c->dh = c->dw = 1;
    c->use_bias = 1;
    if (options) {
        c->kernel.stride_h = options->stride_h ? options->stride_h : 1;
        c->kernel.stride_w = options->stride_w ? options->stride_w : 1;
        c->kernel.padding = options->padding;
        c->base.activation = options->activation;
        c->base.regularizer = options->kernel_regularizer;
        c->dh = options->dilation_h ? options->dilation_h : 1;
        c->dw = options->dilation_w ? options->dilation_w : 1;
        c->use_bias = !options->no_bias;
        c->base.kernel_initializer = options->kernel_initializer;
        c->base.bias_initializer = options->bias_initializer;
    }
    return &c->base;
}
