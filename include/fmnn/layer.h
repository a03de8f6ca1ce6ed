/*
 * fmnn/layer.h - the layers a Sequential model is built from.
 *
 * Each constructor takes Keras's positional arguments and an optional
 * options struct; a NULL or zero-filled options struct means Keras's
 * defaults.  Constructors only record their arguments: the model checks
 * them against the shapes at fmnn_model_compile() and names the layer in
 * any error.  A constructor returns NULL only when memory runs out, and
 * fmnn_model_add() turns that NULL into FMNN_ENOMEM, so calls nest:
 *
 *     err = fmnn_model_add(model, fmnn_conv2d(256, 3, 3, NULL));
 *
 * A layer belongs to the caller until it is added to a model; after that
 * the model owns it.
 */
#ifndef FMNN_LAYER_H
#define FMNN_LAYER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fmnn_layer fmnn_layer;

/** Activation functions, for fmnn_activation() and fused activations. */
typedef enum fmnn_activation_kind {
    FMNN_LINEAR = 0, /**< identity */
    FMNN_RELU,
    FMNN_SOFTMAX,    /**< over the last axis */
    FMNN_SIGMOID,
    FMNN_TANH
} fmnn_activation_kind;

typedef enum fmnn_padding {
    FMNN_PADDING_VALID = 0, /**< no padding: output = (in - k) / stride + 1 */
    FMNN_PADDING_SAME       /**< zero padding: output = ceil(in / stride) */
} fmnn_padding;

/**
 * A kernel regularizer: adds l1 * sum|w| + l2 * sum(w^2) to the loss
 * (Keras's l1, l2 and l1_l2; note there is no factor 1/2).  Applies to
 * kernels only, never to biases.  {0, 0} means none.
 */
typedef struct fmnn_regularizer {
    float l1;
    float l2;
} fmnn_regularizer;

FMNN_API fmnn_regularizer fmnn_l1(float lambda);
FMNN_API fmnn_regularizer fmnn_l2(float lambda);
FMNN_API fmnn_regularizer fmnn_l1_l2(float l1, float l2);

/** Conv2D options; zero-filled means strides (1, 1), valid padding. */
typedef struct fmnn_conv2d_options {
    int stride_h, stride_w;           /**< 0 means 1 */
    fmnn_padding padding;
    fmnn_activation_kind activation;  /**< Keras's activation= argument */
    fmnn_regularizer kernel_regularizer;
} fmnn_conv2d_options;

/** 2-D convolution with bias; kernel stored (kh, kw, in_channels, filters). */
FMNN_API fmnn_layer *fmnn_conv2d(int filters, int kernel_h, int kernel_w,
                                 const fmnn_conv2d_options *options);

/** MaxPooling2D options; zero-filled means strides = pool size, valid. */
typedef struct fmnn_maxpool2d_options {
    int stride_h, stride_w;  /**< 0 means the pool size */
    fmnn_padding padding;
} fmnn_maxpool2d_options;

FMNN_API fmnn_layer *fmnn_maxpool2d(int pool_h, int pool_w,
                                    const fmnn_maxpool2d_options *options);

/** Dense options; zero-filled means linear activation, no regularizer. */
typedef struct fmnn_dense_options {
    fmnn_activation_kind activation;
    fmnn_regularizer kernel_regularizer;
} fmnn_dense_options;

/** Fully connected layer over the last axis; kernel stored (in, units). */
FMNN_API fmnn_layer *fmnn_dense(int units, const fmnn_dense_options *options);

/**
 * Inverted dropout: in training, zeroes each value with probability rate
 * and scales the others by 1 / (1 - rate); the identity at inference.
 */
FMNN_API fmnn_layer *fmnn_dropout(float rate);

FMNN_API fmnn_layer *fmnn_activation(fmnn_activation_kind kind);

/** Flattens each sample in (height, width, channels) order. */
FMNN_API fmnn_layer *fmnn_flatten(void);

/** Frees a layer that was never added to a model.  NULL is a no-op. */
FMNN_API void fmnn_layer_free(fmnn_layer *layer);

/** The layer's name, as Keras would give it ("conv2d_1").  Borrowed. */
FMNN_API const char *fmnn_layer_name(const fmnn_layer *layer);

/** The layer's type, as Keras prints it ("Conv2D").  Static. */
FMNN_API const char *fmnn_layer_type(const fmnn_layer *layer);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_LAYER_H */
