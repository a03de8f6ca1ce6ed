/*
 * layer_impl.h - the private interface every layer implements.
 *
 * A layer is one struct whose first member is `struct fmnn_layer`, plus
 * one const `struct fmnn_layer_ops` table at the end of its file, listed
 * in lib/layers/registry.c.  The ops say everything the rest of the
 * library needs about the type: its options (a field table, which compile
 * checks and model files store), its shapes, how its weights start, and
 * its passes.  The model owns all memory the layer uses while training:
 * parameters, gradients and non-trainable state are views into the
 * model's collated arrays; activations, scratch and what forward keeps for
 * backward are in buffers the execution plan sizes once (plan.c) and
 * hands each call in its fmnn_pass.  Forward takes a const layer: at
 * inference several threads may run one layer at once (fmnn_inference),
 * each with its own buffers, so forward writes nothing but its pass's
 * buffers and `out` (training also moves the non-trainable state).  Read
 * lib/layers/dense.c first: it is the simplest layer with weights.
 */
#ifndef FMNN_LAYER_IMPL_H
#define FMNN_LAYER_IMPL_H

#include "config.h"
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

/* The last activation kind: options and files name kinds 0..this. */
#define FMNN__LAST_ACTIVATION FMNN_HARD_SIGMOID

/* What one forward or backward call of a layer is given. */
typedef struct fmnn_pass {
    int batch;          /* samples in this call (<= the planned capacity) */
    int training;       /* 1 in fit: dropout is active */
    float *workspace;   /* scratch shared by all layers, ops->workspace floats */
    void *saved;        /* this layer's ops->saved bytes: what forward keeps
                         * for backward (64-byte aligned), or NULL */
    uint64_t seed;      /* differs every training step: dropout masks */
    /* The index in the batch of this call's first sample: nonzero only
     * when the plan runs a step a few images at a time (a pipelined
     * Conv2D and its MaxPooling2D, plan.c).  The layer then offsets its
     * saved state by it, and adds to its gradients rather than
     * overwriting them. */
    int first;
    /* The index in the global batch of this process's first sample, when
     * processes share each batch (distributed.h), else 0: what dropout
     * and augmentation draw from is the sample's global index. */
    int shard;

    /* Set by the execution plan for each call; a layer reads only what
     * its ops flags below ask for. */
    fmnn_activation_kind activation; /* fuses_activation, is_activation: what
                                      * to apply to the output (its own, one
                                      * fused from the next layer, or linear
                                      * when it moved into the loss) */
    int defer_bias;                  /* can_defer_bias_relu: leave the bias and
                                      * relu to the next layer */
    const float *deferred_bias;      /* applies_deferred_bias_relu: the layer
                                      * before's bias to add, then relu; or NULL */
    float *deferred_bias_grad;       /* ... and where its gradient goes */
} fmnn_pass;

struct fmnn_layer_ops {
    const char *type;       /* as Keras prints it: "Conv2D" */
    const char *base_name;  /* Keras's automatic name: "conv2d", "conv2d_1" */
    size_t size;            /* of the layer's struct, for the model loader */
    fmnn_fields config;     /* its options, in file order (config.h) */

    /* What the layer can do for the execution plan (plan.c); all 0 is
     * always right.  fuses_activation: applies pass->activation to its own
     * output (Conv2D, Dense, BatchNormalization).  reshape_only: its output is its input under
     * another shape (Flatten).  is_activation: an Activation layer.
     * can_defer_bias_relu / applies_deferred_bias_relu: the two ends of
     * Conv2D -> relu -> MaxPooling2D, which adds the bias and relu after
     * pooling (exact: a per-channel bias and relu commute with a
     * per-channel max). */
    int fuses_activation;
    int reshape_only;
    int is_activation;
    int can_defer_bias_relu;
    int applies_deferred_bias_relu;
    /* Frozen, the layer runs as at inference in fit too (BatchNormalization). */
    int frozen_runs_as_inference;

    /*
     * From layer->in (its options already checked against the field
     * table), checks the shapes and sets layer->out, n_kernel, n_bias,
     * n_state, fan_in and fan_out.  Errors name the layer.
     */
    int (*infer)(fmnn_layer *layer);

    /* Sets the kernel, bias and non-trainable state at compile.  NULL
     * means Keras's defaults: glorot_uniform kernel, zero bias and state
     * (fmnn__layer_init_default). */
    void (*init)(fmnn_layer *layer, fmnn_rng *rng);

    /* Checks non-trainable values given from outside (a file, set
     * weights) before they are used; fills msg and returns nonzero when
     * they are impossible (a negative variance).  May be NULL. */
    int (*check_state)(const fmnn_layer *layer, const float *state, char *msg, size_t size);

    /* Floats of shared scratch one pass needs at this batch size (may be NULL). */
    size_t (*workspace)(const fmnn_layer *layer, int batch);

    /* Bytes the forward pass keeps for the backward pass (may be NULL). */
    size_t (*saved)(const fmnn_layer *layer, int batch);

    /* out = f(in); in and out hold pass->batch samples.  Writes only out,
     * pass->workspace and pass->saved, and in training the layer's
     * non-trainable state (moving statistics): at inference one layer may
     * run in several threads at once, each pass with its own buffers. */
    void (*forward)(const fmnn_layer *layer, const fmnn_pass *pass,
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
    int frozen;           /* Keras's trainable = False: fit changes nothing of it */
    fmnn_shape in, out;

    /* Options several layer types share; each type's field table says
     * whether it has them.  activation is Keras's activation= of Conv2D
     * and Dense, or the kind of an Activation layer. */
    fmnn_activation_kind activation;
    fmnn_regularizer regularizer; /* on the kernel */
    fmnn_initializer kernel_initializer, bias_initializer; /* for the default init */

    /* Set by infer.  The kernel comes first in the collated arrays. */
    size_t n_kernel, n_bias;
    size_t n_state;       /* non-trainable values (moving statistics) */
    int fan_in, fan_out;  /* for glorot_uniform */

    /* Views into the model's collated arrays. */
    float *kernel, *bias, *state;
    float *kernel_grad, *bias_grad;
};

/* The activation a layer applies to its own output, as built: its
 * activation option, or the kind of an Activation layer; else linear. */
static inline fmnn_activation_kind fmnn__own_activation(const fmnn_layer *layer)
{
    return layer->ops->fuses_activation || layer->ops->is_activation ? layer->activation : FMNN_LINEAR;
}

/* The registered types (lib/layers/registry.c): the ops of a file's type
 * code, or NULL; and the code of a type. */
FMNN_INTERNAL const struct fmnn_layer_ops *fmnn__layer_type(uint32_t code);
FMNN_INTERNAL uint32_t fmnn__layer_code(const struct fmnn_layer_ops *ops);

/* Allocates a zeroed layer struct of ops->size bytes (layer.c). */
FMNN_INTERNAL fmnn_layer *fmnn__layer_alloc(const struct fmnn_layer_ops *ops);

/* The same with `extra` bytes after the struct, for values a constructor
 * is given that are not options (a Normalization's mean and variance);
 * one block, so fmnn_layer_free frees them too. */
FMNN_INTERNAL fmnn_layer *fmnn__layer_alloc_extra(const struct fmnn_layer_ops *ops, size_t extra);

/* The kernel and bias from their initializers (glorot_uniform and zeros
 * by default), zero state. */
FMNN_INTERNAL void fmnn__layer_init_default(fmnn_layer *layer, fmnn_rng *rng);

/* fmnn__error with the layer's name in front: "conv2d_1 (Conv2D): ...". */
FMNN_INTERNAL int fmnn__layer_error(const fmnn_layer *layer, int status,
                                    const char *fmt, ...) FMNN_PRINTF(3, 4);

static inline int fmnn__valid_size(long long v)
{
    return v >= 1 && v <= FMNN__MAX_SIZE;
}

/*
 * A sliding window over (height, width, channels), for convolution and
 * pooling: from the input shape, the window, strides and padding, the
 * output height and width and the padding before the first row and
 * column, as TensorFlow computes them.  Fails, naming the layer and
 * calling the window `what` ("kernel", "pool"), when the input is not
 * rank 3, the window does not fit, or the positions it visits would not
 * fit in an int.
 */
typedef struct fmnn_window {
    int h, w;            /* window */
    int stride_h, stride_w;
    fmnn_padding padding;
} fmnn_window;

FMNN_INTERNAL int fmnn__window_infer(fmnn_layer *layer, const fmnn_window *window, const char *what,
                                     int *out_h, int *out_w, int *pad_top, int *pad_left);

/* What every 2-D pooling layer is: its window, and the padding before
 * the first row and column that infer derives from it. */
typedef struct fmnn_pool2d {
    fmnn_layer base;
    fmnn_window pool;
    int pad_top, pad_left;
} fmnn_pool2d;

/* A pooling layer of these ops from Keras's arguments: strides 0 (or no
 * options) mean the pool size, no options valid padding. */
FMNN_INTERNAL fmnn_layer *fmnn__pool2d_new(const struct fmnn_layer_ops *ops, int pool_h, int pool_w,
                                           const fmnn_pool2d_options *options);

/* A pooling layer's infer: its output (h, w) from the window, channels kept. */
FMNN_INTERNAL int fmnn__pool2d_infer(fmnn_layer *layer);

/* Field-table entries for a window member: its size (named `size`, as
 * "kernel_size" or "pool_size"), strides and padding. */
#define FMNN__WINDOW_FIELDS(type, member, size)                                                  \
    FMNN__SIZE(type, member.h, size "[0]"), FMNN__SIZE(type, member.w, size "[1]"),              \
    FMNN__STRIDE(type, member.stride_h, "strides[0]"), FMNN__STRIDE(type, member.stride_w, "strides[1]"), \
    FMNN__CHOICE(type, member.padding, "padding", FMNN_PADDING_VALID, FMNN_PADDING_SAME)

/* Formats a shape as Keras does, "(None, 26, 26, 256)". */
FMNN_INTERNAL void fmnn__shape_format(const fmnn_shape *shape, char *buf,
                                      size_t size);

/* Field-table entries for the shared options. */
#define FMNN__ACTIVATION_FIELD(type) \
    FMNN__CHOICE(type, base.activation, "activation", FMNN_LINEAR, FMNN__LAST_ACTIVATION)
#define FMNN__REGULARIZER_FIELDS(type)                                          \
    FMNN__FACTOR(type, base.regularizer.l1, "kernel_regularizer.l1"),           \
    FMNN__FACTOR(type, base.regularizer.l2, "kernel_regularizer.l2")
#define FMNN__INITIALIZER_FIELDS(type)                                                                   \
    FMNN__CHOICE(type, base.kernel_initializer, "kernel_initializer", FMNN_INIT_DEFAULT, FMNN_ONES),      \
    FMNN__CHOICE(type, base.bias_initializer, "bias_initializer", FMNN_INIT_DEFAULT, FMNN_ONES)

#endif /* FMNN_LAYER_IMPL_H */
