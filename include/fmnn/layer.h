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

/** Activation functions, for fmnn_activation() and the activation
 * option of Conv2D and Dense, as keras.activations computes them. */
typedef enum fmnn_activation_kind {
    FMNN_LINEAR = 0,   /**< identity */
    FMNN_RELU,
    FMNN_SOFTMAX,      /**< over the last axis */
    FMNN_SIGMOID,
    FMNN_TANH,
    FMNN_LEAKY_RELU,   /**< x, or 0.2 x below 0 (the LeakyReLU layer's slope is its own) */
    FMNN_ELU,          /**< x, or exp(x) - 1 below 0 (alpha 1) */
    FMNN_SELU,         /**< scale * elu(x) with Keras's alpha and scale */
    FMNN_GELU,         /**< x * Phi(x), the exact erf form (approximate=False) */
    FMNN_GELU_TANH,    /**< GELU's tanh approximation (approximate=True) */
    FMNN_SOFTPLUS,     /**< log(1 + exp(x)) */
    FMNN_SWISH,        /**< x * sigmoid(x), also called silu */
    FMNN_HARD_SIGMOID  /**< relu6(x + 3) / 6, Keras 3's form */
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

/**
 * Initializers for kernels and biases, as keras.initializers computes
 * them: the variance-scaling ones from the fans (a Conv2D's include its
 * kernel's height and width), the *_normal ones truncated at two standard
 * deviations with Keras's correction of the standard deviation.
 */
typedef enum fmnn_initializer {
    FMNN_INIT_DEFAULT = 0, /**< glorot_uniform for kernels, zeros for biases */
    FMNN_GLOROT_UNIFORM,   /**< U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    FMNN_GLOROT_NORMAL,    /**< truncated normal, variance 2 / (fan_in + fan_out) */
    FMNN_HE_UNIFORM,       /**< U(-a, a), a = sqrt(6 / fan_in) */
    FMNN_HE_NORMAL,        /**< truncated normal, variance 2 / fan_in */
    FMNN_LECUN_UNIFORM,    /**< U(-a, a), a = sqrt(3 / fan_in) */
    FMNN_LECUN_NORMAL,     /**< truncated normal, variance 1 / fan_in */
    FMNN_ZEROS,
    FMNN_ONES
} fmnn_initializer;

FMNN_API fmnn_regularizer fmnn_l1(float lambda);
FMNN_API fmnn_regularizer fmnn_l2(float lambda);
FMNN_API fmnn_regularizer fmnn_l1_l2(float l1, float l2);

/** Conv2D options; zero-filled means Keras's defaults: strides (1, 1),
 * valid padding, no dilation, a bias, glorot_uniform and zeros. */
typedef struct fmnn_conv2d_options {
    int stride_h, stride_w;           /**< 0 means 1 */
    fmnn_padding padding;
    fmnn_activation_kind activation;  /**< Keras's activation= argument */
    fmnn_regularizer kernel_regularizer;
    int dilation_h, dilation_w;       /**< Keras's dilation_rate; 0 means 1 */
    int no_bias;                      /**< 1: Keras's use_bias=False */
    fmnn_initializer kernel_initializer, bias_initializer;
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

/** The options of AveragePooling2D, the same as MaxPooling2D's. */
typedef fmnn_maxpool2d_options fmnn_pool2d_options;

/**
 * AveragePooling2D: the mean of each window.  With "same" padding a
 * window at the border divides by the pixels it covers, as Keras does.
 */
FMNN_API fmnn_layer *fmnn_average_pooling2d(int pool_h, int pool_w,
                                            const fmnn_pool2d_options *options);

/** GlobalAveragePooling2D: (h, w, c) -> (c), the mean of each channel. */
FMNN_API fmnn_layer *fmnn_global_average_pooling2d(void);

/** GlobalMaxPooling2D: (h, w, c) -> (c), the max of each channel. */
FMNN_API fmnn_layer *fmnn_global_max_pooling2d(void);

/** BatchNormalization options.  Unlike the other option structs, a
 * zero-filled one is not Keras's defaults (it has no gamma, no beta and a
 * momentum of 0): start from FMNN_BATCH_NORMALIZATION_OPTIONS_INIT, or
 * pass NULL. */
typedef struct fmnn_batch_normalization_options {
    float momentum;   /**< of the moving statistics, in [0, 1]: Keras 0.99 */
    float epsilon;    /**< added to the variance, > 0; 0 means Keras's 1e-3 */
    int center;       /**< learn an offset beta (0 or 1): Keras 1 */
    int scale;        /**< learn a factor gamma (0 or 1): Keras 1 */
} fmnn_batch_normalization_options;

#define FMNN_BATCH_NORMALIZATION_OPTIONS_INIT { 0.99f, 1e-3f, 1, 1 }

/**
 * BatchNormalization over the last axis (per channel after a Conv2D, per
 * unit after a Dense): batch statistics in fit, the moving mean and
 * variance (non-trainable) in evaluate and predict, as Keras.
 */
FMNN_API fmnn_layer *fmnn_batch_normalization(
    const fmnn_batch_normalization_options *options);

/** ZeroPadding2D: rows of zeros above and below, columns left and right. */
FMNN_API fmnn_layer *fmnn_zero_padding2d(int top, int bottom, int left, int right);

/**
 * Reshape to target_shape (rank 1..3 sizes, without the batch axis); one
 * size may be -1, the number that makes the total match.
 */
FMNN_API fmnn_layer *fmnn_reshape(int rank, const int *target_shape);

/** Dense options; zero-filled means linear activation, no regularizer,
 * a bias, glorot_uniform and zeros. */
typedef struct fmnn_dense_options {
    fmnn_activation_kind activation;
    fmnn_regularizer kernel_regularizer;
    int no_bias;                      /**< 1: Keras's use_bias=False */
    fmnn_initializer kernel_initializer, bias_initializer;
} fmnn_dense_options;

/** Fully connected layer over the last axis; kernel stored (in, units). */
FMNN_API fmnn_layer *fmnn_dense(int units, const fmnn_dense_options *options);

/**
 * Inverted dropout: in training, zeroes each value with probability rate
 * and scales the others by 1 / (1 - rate); the identity at inference.
 */
FMNN_API fmnn_layer *fmnn_dropout(float rate);

FMNN_API fmnn_layer *fmnn_activation(fmnn_activation_kind kind);

/** The LeakyReLU layer: x, or negative_slope * x below 0 (Keras's layer
 * default is 0.3; pass it: there is no "default" value here). */
FMNN_API fmnn_layer *fmnn_leaky_relu(float negative_slope);

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
