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

/* ---- preprocessing and augmentation ------------------------------------ */

/** Rescaling: y = x * scale + offset, in training and inference alike
 * (Keras's Rescaling(scale, offset); 1 / 255 and 0 map bytes to [0, 1]). */
FMNN_API fmnn_layer *fmnn_rescaling(float scale, float offset);

/** Normalization options; zero-filled (or NULL) means Keras's defaults:
 * no values given (fmnn_model_adapt computes them), not inverted. */
typedef struct fmnn_normalization_options {
    const float *mean;     /**< count values, copied; NULL: adapt sets them */
    const float *variance; /**< count values >= 0, copied; given with mean */
    int count;             /**< 1 (every channel the same) or the channel count */
    int invert;            /**< 1: y = mean + x * max(sqrt(var), 1e-7) (Keras's invert=True) */
} fmnn_normalization_options;

#define FMNN_NORMALIZATION_OPTIONS_INIT { NULL, NULL, 0, 0 }

/**
 * Normalization over the last axis (Keras's axis=-1):
 * y = (x - mean) / max(sqrt(variance), 1e-7) per channel, in training and
 * inference alike.  The mean and variance are the layer's non-trainable
 * state: given here, or computed from data by fmnn_model_adapt().
 */
FMNN_API fmnn_layer *fmnn_normalization(const fmnn_normalization_options *options);

/** Which way RandomFlip flips. */
typedef enum fmnn_flip_mode {
    FMNN_FLIP_HORIZONTAL_AND_VERTICAL = 0, /**< Keras's default: both at once, or neither */
    FMNN_FLIP_HORIZONTAL,                  /**< left-right */
    FMNN_FLIP_VERTICAL                     /**< top-bottom */
} fmnn_flip_mode;

/** RandomFlip options; zero-filled (or NULL) means Keras's defaults. */
typedef struct fmnn_random_flip_options {
    fmnn_flip_mode mode;
    int seed;              /**< Keras's seed: mixed into the draws; 0 means none */
} fmnn_random_flip_options;

#define FMNN_RANDOM_FLIP_OPTIONS_INIT { FMNN_FLIP_HORIZONTAL_AND_VERTICAL, 0 }

/**
 * RandomFlip: in fmnn_model_fit, flips each image with probability 1/2;
 * the identity at inference.  Takes (height, width, channels) input.
 */
FMNN_API fmnn_layer *fmnn_random_flip(const fmnn_random_flip_options *options);

/** How an image transform fills the points that fall outside the input
 * (Keras's fill_mode), for abcd extended past both of its edges. */
typedef enum fmnn_fill_mode {
    FMNN_FILL_REFLECT = 0, /**< d c b a | a b c d | d c b a (Keras's default) */
    FMNN_FILL_WRAP,        /**< a b c d | a b c d | a b c d */
    FMNN_FILL_CONSTANT,    /**< k k k k | a b c d | k k k k, k = fill_value */
    FMNN_FILL_NEAREST      /**< a a a a | a b c d | d d d d */
} fmnn_fill_mode;

/** How an image transform reads between pixels (Keras's interpolation). */
typedef enum fmnn_interpolation {
    FMNN_INTERPOLATION_BILINEAR = 0, /**< Keras's default */
    FMNN_INTERPOLATION_NEAREST
} fmnn_interpolation;

/** The options RandomTranslation, RandomRotation and RandomZoom share;
 * zero-filled (or NULL) means Keras's defaults. */
typedef struct fmnn_image_fill_options {
    fmnn_fill_mode fill_mode;
    fmnn_interpolation interpolation;
    float fill_value;      /**< for FMNN_FILL_CONSTANT; finite */
    int seed;              /**< Keras's seed: mixed into the draws; 0 means none */
} fmnn_image_fill_options;

#define FMNN_IMAGE_FILL_OPTIONS_INIT { FMNN_FILL_REFLECT, FMNN_INTERPOLATION_BILINEAR, 0.0f, 0 }

/**
 * RandomTranslation: in fmnn_model_fit, shifts each image down by
 * U(height_lower, height_upper) of its height and right by
 * U(width_lower, width_upper) of its width (each bound in [-1, 1]; Keras's
 * height_factor=0.2 is -0.2, 0.2); the identity at inference.
 */
FMNN_API fmnn_layer *fmnn_random_translation(float height_lower, float height_upper,
                                             float width_lower, float width_upper,
                                             const fmnn_image_fill_options *options);

/**
 * RandomRotation: in fmnn_model_fit, rotates each image about its centre
 * by U(lower, upper) turns (fractions of 2 pi, each in [-1, 1]; positive
 * is counter-clockwise; Keras's factor=0.1 is -0.1, 0.1); the identity at
 * inference.
 */
FMNN_API fmnn_layer *fmnn_random_rotation(float lower, float upper,
                                          const fmnn_image_fill_options *options);

/** RandomZoom options; zero-filled (or NULL) means Keras's defaults. */
typedef struct fmnn_random_zoom_options {
    int has_width_factor;  /**< 0: Keras's width_factor=None, the width zooms as
                            * the height does (the aspect ratio is kept) */
    float width_lower, width_upper; /**< with has_width_factor, in (-1, 1] */
    fmnn_image_fill_options fill;
} fmnn_random_zoom_options;

#define FMNN_RANDOM_ZOOM_OPTIONS_INIT { 0, 0.0f, 0.0f, FMNN_IMAGE_FILL_OPTIONS_INIT }

/**
 * RandomZoom: in fmnn_model_fit, zooms each image about its centre, the
 * height by 1 + U(height_lower, height_upper) (each in (-1, 1]; positive
 * zooms out, negative in; Keras's height_factor=0.2 is -0.2, 0.2); the
 * identity at inference.
 */
FMNN_API fmnn_layer *fmnn_random_zoom(float height_lower, float height_upper,
                                      const fmnn_random_zoom_options *options);

/** RandomContrast options.  A zero-filled one is not Keras's defaults (its
 * value range would be empty): start from FMNN_RANDOM_CONTRAST_OPTIONS_INIT,
 * or pass NULL. */
typedef struct fmnn_random_contrast_options {
    float value_low, value_high; /**< Keras's value_range: (0, 255) */
    int seed;                    /**< Keras's seed: mixed into the draws; 0 means none */
} fmnn_random_contrast_options;

#define FMNN_RANDOM_CONTRAST_OPTIONS_INIT { 0.0f, 255.0f, 0 }

/**
 * RandomContrast: in fmnn_model_fit, y = clip((x - mean) * f + mean,
 * value_low, value_high) with mean each channel's over the image and f
 * drawn per image from U(1 - lower, 1 + upper) (each in [0, 1]); the
 * identity at inference.
 */
FMNN_API fmnn_layer *fmnn_random_contrast(float lower, float upper,
                                          const fmnn_random_contrast_options *options);

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
