/*
 * global_pooling2d.c - GlobalAveragePooling2D and GlobalMaxPooling2D:
 * (height, width, channels) -> (channels), the mean or the max of each
 * channel over the whole image, as Keras computes them (keepdims off).
 *
 * The max's gradient is shared equally among the positions that hold the
 * maximum, as the gradient of Keras's ops.max is with every backend.
 */
#include <math.h>

#include "layer_impl.h"

static int global_pool_infer(fmnn_layer *layer)
{
    if (layer->in.rank != 3)
        return fmnn__layer_error(layer, FMNN_ESHAPE, "expects (height, width, channels) input, got rank %d",
                                 layer->in.rank);
    layer->out = (fmnn_shape){ 1, { layer->in.dims[2], 0, 0, 0 } };
    return FMNN_OK;
}

/* Pixels per image and channels. */
static void image_size(const fmnn_layer *layer, size_t *pixels, size_t *ch)
{
    *ch = (size_t)layer->in.dims[2];
    *pixels = (size_t)layer->in.dims[0] * (size_t)layer->in.dims[1];
}

static void average_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    size_t pixels, ch;
    image_size(layer, &pixels, &ch);
#pragma omp parallel for num_threads(fmnn__threads()) schedule(static) if (pass->batch > 1)
    for (int n = 0; n < pass->batch; n++) {
        const unsigned fp = fmnn__flush_denormals();
        const float *image = in + (size_t)n * pixels * ch;
        for (size_t k = 0; k < ch; k++) {
            double sum = 0.0; /* pixels in order */
            for (size_t i = 0; i < pixels; i++)
                sum += image[i * ch + k];
            out[(size_t)n * ch + k] = (float)(sum / (double)pixels);
        }
        fmnn__restore_fp_mode(fp);
    }
}

static void average_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                             float *dout, float *din)
{
    (void)in;
    (void)out;
    if (!din)
        return;
    size_t pixels, ch;
    image_size(layer, &pixels, &ch);
    const float share = (float)(1.0 / (double)pixels);
#pragma omp parallel for num_threads(fmnn__threads()) schedule(static) if (pass->batch > 1)
    for (int n = 0; n < pass->batch; n++) {
        const unsigned fp = fmnn__flush_denormals();
        for (size_t i = 0; i < pixels; i++)
            for (size_t k = 0; k < ch; k++)
                din[((size_t)n * pixels + i) * ch + k] = dout[(size_t)n * ch + k] * share;
        fmnn__restore_fp_mode(fp);
    }
}

static void max_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    size_t pixels, ch;
    image_size(layer, &pixels, &ch);
#pragma omp parallel for num_threads(fmnn__threads()) schedule(static) if (pass->batch > 1)
    for (int n = 0; n < pass->batch; n++) {
        const unsigned fp = fmnn__flush_denormals();
        const float *image = in + (size_t)n * pixels * ch;
        float *best = out + (size_t)n * ch;
        for (size_t k = 0; k < ch; k++)
            best[k] = image[k];
        for (size_t i = 1; i < pixels; i++)
            for (size_t k = 0; k < ch; k++)
                best[k] = image[i * ch + k] > best[k] ? image[i * ch + k] : best[k];
        fmnn__restore_fp_mode(fp);
    }
}

/* dy goes to the positions equal to the max, split equally among them. */
static void max_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                         float *dout, float *din)
{
    if (!din)
        return;
    size_t pixels, ch;
    image_size(layer, &pixels, &ch);
#pragma omp parallel for num_threads(fmnn__threads()) schedule(static) if (pass->batch > 1)
    for (int n = 0; n < pass->batch; n++) {
        const unsigned fp = fmnn__flush_denormals();
        const float *image = in + (size_t)n * pixels * ch, *best = out + (size_t)n * ch;
        float *dx = din + (size_t)n * pixels * ch;
        for (size_t k = 0; k < ch; k++) {
            size_t ties = 0;
            for (size_t i = 0; i < pixels; i++)
                ties += image[i * ch + k] == best[k];
            const float share = dout[(size_t)n * ch + k] / (float)ties;
            for (size_t i = 0; i < pixels; i++)
                dx[i * ch + k] = image[i * ch + k] == best[k] ? share : 0.0f;
        }
        fmnn__restore_fp_mode(fp);
    }
}

const struct fmnn_layer_ops fmnn__global_average_pooling2d_ops = {
    .type = "GlobalAveragePooling2D",
    .base_name = "global_average_pooling2d",
    .size = sizeof(fmnn_layer),
    .infer = global_pool_infer,
    .forward = average_forward,
    .backward = average_backward,
};

const struct fmnn_layer_ops fmnn__global_max_pooling2d_ops = {
    .type = "GlobalMaxPooling2D",
    .base_name = "global_max_pooling2d",
    .size = sizeof(fmnn_layer),
    .infer = global_pool_infer,
    .forward = max_forward,
    .backward = max_backward,
};

FMNN_API fmnn_layer *fmnn_global_average_pooling2d(void)
{
    return fmnn__layer_alloc(&fmnn__global_average_pooling2d_ops);
}

FMNN_API fmnn_layer *fmnn_global_max_pooling2d(void)
{
    return fmnn__layer_alloc(&fmnn__global_max_pooling2d_ops);
}
