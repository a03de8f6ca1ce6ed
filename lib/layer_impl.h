/*
 * layer_impl.h - the private interface every layer implements.
 *
 * A layer is one struct whose first member is `struct fmnn_layer`, plus
 * one const `struct fmnn_layer_ops` table at the end of its file.  The
 * model owns all memory the layer uses while training: parameters and
 * gradients are views into the model's collated arrays, activations and
 * scratch are views into buffers the model sizes once (see model.c).
 * Read lib/layers/dense.c first: it is the simplest layer with weights.
 */
#ifndef FMNN_LAYER_IMPL_H
#define FMNN_LAYER_IMPL_H

#include "internal.h"
#include "kernels/kernels.h"

typedef struct fmnn_shape {
    int rank;                 /* without the batch axis */
    int dims[FMNN_MAX_RANK];
} fmnn_shape;

static inline size_t fmnn__shape_size(const fmnn_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= (size_t)s->dims[i];
    return n;
}

/* What one forward or backward call of a layer is given. */
typedef struct fmnn_pass {
    int batch;          /* samples in this batch (<= the planned capacity) */
    int training;       /* 1 in fit: dropout is active */
    float *workspace;   /* scratch shared by all layers, ops->workspace floats */
    uint64_t seed;      /* differs every training step: dropout masks */
    /* The index in the batch of this call's first sample: nonzero only
     * when the model runs a Conv2D and its MaxPooling2D on a few images
     * at a time (the pipeline in train.c).  Those two layers then offset
     * their saved state by it, and add to their gradients rather than
     * overwrite them. */
    int first;
} fmnn_pass;

/* A layer's own options as plain numbers, for the model file (save.c). */
typedef struct fmnn_layer_config {
    int32_t ints[6];
    float rate;
} fmnn_layer_config;

/* Layer type codes in model files: never change or reuse one. */
enum fmnn_layer_code {
    FMNN_CODE_DENSE = 1,
    FMNN_CODE_CONV2D = 2,
    FMNN_CODE_MAXPOOL2D = 3,
    FMNN_CODE_DROPOUT = 4,
    FMNN_CODE_ACTIVATION = 5,
    FMNN_CODE_FLATTEN = 6
};

struct fmnn_layer_ops {
    const char *type;       /* as Keras prints it: "Conv2D" */
    uint32_t code;          /* enum fmnn_layer_code */
    const char *base_name;  /* Keras's automatic name: "conv2d", "conv2d_1" */
    int fuses_activation;   /* can apply a following element-wise Activation itself */
    int reshape_only;       /* output is the input under another shape (Flatten) */
    int is_activation;      /* an Activation layer: may fold into the layer before */
    /* Conv2D -> relu -> MaxPooling2D: the first can leave its bias and relu
     * to the pool (defer_bias_activation), which applies them to pooled
     * values (bias_from); right because a per-channel bias and relu both
     * commute with a per-channel max. */
    int can_defer_bias_relu;
    int applies_deferred_bias_relu;

    /*
     * From layer->in, checks the options and sets layer->out, n_kernel,
     * n_bias, fan_in and fan_out.  Errors name the layer.
     */
    int (*infer)(fmnn_layer *layer);

    /* Its own options (activation and regularizer aside), for saving.
     * May be NULL when there are none. */
    void (*get_config)(const fmnn_layer *layer, fmnn_layer_config *config);

    /* Floats of shared scratch one pass needs at this batch size (may be NULL). */
    size_t (*workspace)(const fmnn_layer *layer, int batch);

    /* Bytes the forward pass keeps for the backward pass (may be NULL). */
    size_t (*saved)(const fmnn_layer *layer, int batch);

    /* out = f(in); in and out hold pass->batch samples. */
    void (*forward)(fmnn_layer *layer, const fmnn_pass *pass,
                    const float *in, float *out);

    /*
     * Given dout = dLoss/dout, writes din = dLoss/din (unless din is NULL:
     * the first layer needs none) and overwrites kernel_grad and
     * bias_grad.  May clobber dout.  in and out are the forward's.
     */
    void (*backward)(fmnn_layer *layer, const fmnn_pass *pass,
                     const float *in, const float *out, float *dout,
                     float *din);
};

struct fmnn_layer {
    const struct fmnn_layer_ops *ops;
    char name[32];
    int index;            /* position in the model, from 0 */
    int in_model;         /* owned by a model: cannot be added again */
    fmnn_shape in, out;

    /* Keras's activation= argument of Conv2D and Dense, applied in place. */
    fmnn_activation_kind activation;
    /* Set by the model when a final softmax is folded into the loss: the
     * layer then outputs logits and its backward skips the softmax. */
    int activation_in_loss;
    /* Set by the model when the next layer is an element-wise Activation:
     * this layer applies it in the same pass over its output, and the
     * Activation layer becomes a pass-through (see passthrough). */
    fmnn_activation_kind fused_activation;
    /* Set by the model for Conv2D -> relu -> MaxPool2D: the conv leaves
     * its raw GEMM output, and the pool that follows applies the conv's
     * bias and relu after pooling (exact: max(x) + b rounds the same as
     * max(x + b), and relu is monotone) and computes the conv's bias
     * gradient.  bias_from on the pool points at the conv. */
    int defer_bias_activation;
    fmnn_layer *bias_from;
    /* Set by the model on such a Conv2D when its output is large for the
     * work it costs (a first layer: few multiply-adds per output value).
     * Forward and backward then run the conv and its pool a few images
     * at a time, so the conv's output never leaves the cache and needs
     * no batch-sized buffer: pipeline_images at a time, into the pool
     * pipeline_into (see train.c). */
    fmnn_layer *pipeline_into;
    int pipeline_images;
    /* Set by the model: the layer does no work at run time.  Its output
     * is its input buffer and its backward pass is skipped (a Flatten, or
     * an Activation fused into the layer before it). */
    int passthrough;
    fmnn_regularizer regularizer;

    /* Set by infer.  The kernel comes first in the collated arrays. */
    size_t n_kernel, n_bias;
    int fan_in, fan_out;  /* for glorot_uniform */

    /* Views into the model's collated arrays and buffers. */
    float *kernel, *bias;
    float *kernel_grad, *bias_grad;
    void *saved;
};

/* The activation a Conv2D or Dense applies to its own output. */
static inline fmnn_activation_kind fmnn__output_activation(const fmnn_layer *layer)
{
    if (layer->activation_in_loss)
        return FMNN_LINEAR;
    return layer->activation != FMNN_LINEAR ? layer->activation : layer->fused_activation;
}

/* Allocates a zeroed layer struct of `size` bytes with its ops (layer.c). */
FMNN_INTERNAL fmnn_layer *fmnn__layer_alloc(size_t size,
                                            const struct fmnn_layer_ops *ops);

/*
 * The largest input dimension, unit or filter count, kernel, pool or
 * stride size a model may have: the model file's limit (save.c), checked
 * at compile too so that every model that compiles can be saved and
 * loaded again.  Far beyond any real network.
 */
#define FMNN__MAX_SIZE (1 << 24)

static inline int fmnn__valid_size(long long v)
{
    return v >= 1 && v <= FMNN__MAX_SIZE;
}

/* fmnn__error with the layer's name in front: "conv2d_1: ...". */
FMNN_INTERNAL int fmnn__layer_error(const fmnn_layer *layer, int status,
                                    const char *fmt, ...) FMNN_PRINTF(3, 4);

/*
 * Output size along one axis of a sliding window (convolution or pooling),
 * and the padding before the first element, as TensorFlow computes them.
 * Returns 0 when a valid window does not fit, and -1 when the positions
 * the window visits would not fit in an int.
 */
FMNN_INTERNAL int fmnn__window_axis(int in, int window, int stride,
                                    fmnn_padding padding, int *pad_before);

/* Formats a shape as Keras does, "(None, 26, 26, 256)". */
FMNN_INTERNAL void fmnn__shape_format(const fmnn_shape *shape, char *buf,
                                      size_t size);

#endif /* FMNN_LAYER_IMPL_H */
