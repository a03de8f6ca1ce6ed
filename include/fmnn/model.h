/*
 * fmnn/model.h - the Sequential model: build, compile, fit, evaluate,
 * predict and summary, as in Keras.
 *
 *     fmnn_model *m;
 *     fmnn_model_new(&m, 3, (int[]){28, 28, 1});
 *     fmnn_model_add(m, fmnn_conv2d(32, 3, 3, NULL));
 *     ...
 *     fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42);
 *     fmnn_model_fit(m, x, y, &options, &history);
 *
 * A model is not thread-safe: use one model from one thread at a time
 * (it uses fmnn_get_num_threads() threads internally).
 */
#ifndef FMNN_MODEL_H
#define FMNN_MODEL_H

#include <stdio.h>

#include "common.h"
#include "layer.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fmnn_model fmnn_model;

typedef enum fmnn_loss {
    /** Targets one-hot (N, classes).  The model must end in a softmax,
     * which is fused into the loss (else use the _FROM_LOGITS form). */
    FMNN_LOSS_CATEGORICAL_CROSSENTROPY = 0,
    /** Targets are class indices stored as floats, shape (N) or (N, 1);
     * a final softmax, as for the categorical loss. */
    FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
    /** Mean squared error over every output value. */
    FMNN_LOSS_MSE,
    /** Binary cross-entropy, mean over the last axis; targets in [0, 1],
     * shaped as the output.  Fused with a final sigmoid. */
    FMNN_LOSS_BINARY_CROSSENTROPY,
    /** The three cross-entropies with from_logits=True: the model outputs
     * logits (no final softmax or sigmoid), and predict returns them. */
    FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS,
    FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS,
    FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS,
    /** Mean absolute error over every output value. */
    FMNN_LOSS_MAE,
    /** Huber loss with delta 1.0 over every output value. */
    FMNN_LOSS_HUBER
} fmnn_loss;

typedef enum fmnn_optimizer_kind {
    FMNN_OPTIMIZER_ADAM = 0,
    FMNN_OPTIMIZER_SGD
} fmnn_optimizer_kind;

/** Adam's own settings (keras.optimizers.Adam). */
typedef struct fmnn_adam_settings {
    float beta_1, beta_2;  /**< in [0, 1) */
    float epsilon;         /**< >= 0, added to sqrt(v) */
} fmnn_adam_settings;

/** SGD's own settings (keras.optimizers.SGD). */
typedef struct fmnn_sgd_settings {
    float momentum;        /**< in [0, 1) */
    int nesterov;          /**< non-zero: Nesterov momentum */
} fmnn_sgd_settings;

/**
 * Optimizer settings; build them with fmnn_adam() or fmnn_sgd() and
 * change what you need.  The settings of each kind are nested under its
 * name (o.adam.beta_1, o.sgd.momentum).  The struct's size is fixed: later
 * optimizers' settings go in the union, and settings every optimizer
 * shares in the reserved floats, which must be 0.
 */
typedef struct fmnn_optimizer {
    fmnn_optimizer_kind kind;
    float learning_rate;   /**< > 0 */
    union {
        fmnn_adam_settings adam;
        fmnn_sgd_settings sgd;
        float reserved_kind[16];
    };
    float reserved[8];
} fmnn_optimizer;

/** Adam with Keras's defaults: lr 1e-3, beta_1 0.9, beta_2 0.999, eps 1e-7. */
FMNN_API fmnn_optimizer fmnn_adam(void);

/** SGD with (optional) momentum, as keras.optimizers.SGD. */
FMNN_API fmnn_optimizer fmnn_sgd(float learning_rate, float momentum);

/**
 * Creates an empty Sequential model for samples of the given shape
 * (without the batch axis): {28, 28, 1} for Fashion-MNIST images.
 */
FMNN_API int fmnn_model_new(fmnn_model **out, int rank, const int *input_shape);

/** Frees the model and every layer in it.  NULL is a no-op. */
FMNN_API void fmnn_model_free(fmnn_model *model);

/**
 * Appends a layer; the model takes ownership of it in every case, and
 * frees it if the call fails.  A NULL layer (a constructor that ran out of
 * memory) gives FMNN_ENOMEM.  FMNN_ESTATE after compile.
 */
FMNN_API int fmnn_model_add(fmnn_model *model, fmnn_layer *layer);

/**
 * Infers every shape, checks it, allocates parameters and buffers and
 * initialises the weights (glorot_uniform kernels, zero biases) from
 * seed.  optimizer NULL means fmnn_adam().  Errors name the layer.
 */
FMNN_API int fmnn_model_compile(fmnn_model *model, fmnn_loss loss,
                                const fmnn_optimizer *optimizer,
                                uint64_t seed);

/** Prints Keras's summary table (layer, output shape, params, trainable and
 * non-trainable totals) to out. */
FMNN_API int fmnn_model_summary(const fmnn_model *model, FILE *out);

/** Number of layers added so far. */
FMNN_API int fmnn_model_layer_count(const fmnn_model *model);

/** Layer i (0-based), or NULL when out of range.  Borrowed. */
FMNN_API const fmnn_layer *fmnn_model_layer(const fmnn_model *model, int i);

/**
 * The shape of one input sample (without the batch axis), as given to
 * fmnn_model_new: {28, 28, 1}.  Returns the rank (> 0) or a status.
 */
FMNN_API int fmnn_model_input_shape(const fmnn_model *model,
                                    int dims[FMNN_MAX_RANK]);

/**
 * The output shape of layer i without the batch axis, after compile;
 * i = -1 means the model's output.  Returns the rank (> 0) or a status.
 */
FMNN_API int fmnn_model_output_shape(const fmnn_model *model, int i,
                                     int dims[FMNN_MAX_RANK]);

/** Total number of parameters (after compile; 0 before). */
FMNN_API size_t fmnn_model_param_count(const fmnn_model *model);

/**
 * All parameters, collated layer by layer (kernel, then bias), after
 * compile.  Borrowed: valid until the model is freed.  Writing to it sets
 * the weights.  NULL before compile.
 */
FMNN_API float *fmnn_model_weights(fmnn_model *model, size_t *count);

/** One layer's arrays, as Keras's layer.get_weights() orders them. */
typedef struct fmnn_layer_weights {
    float *kernel;        /**< (kh, kw, in, filters), (in, units), gamma */
    size_t kernel_count;
    float *bias;          /**< bias, beta */
    size_t bias_count;
    float *state;         /**< non-trainable: moving mean, then moving variance */
    size_t state_count;
} fmnn_layer_weights;

/**
 * Layer i's kernel, bias and non-trainable state, after compile: views
 * into the model (borrowed, valid until the model is freed; writing sets
 * them), NULL with a count of 0 where the layer has none.
 */
FMNN_API int fmnn_model_get_layer_weights(fmnn_model *model, int i,
                                          fmnn_layer_weights *out);

/**
 * Copies values into layer i's arrays, as Keras's set_weights(): each
 * non-NULL array of w must have the layer's count, and every value must
 * be finite; a NULL array leaves that one as it is.  On any error nothing
 * changes.
 */
FMNN_API int fmnn_model_set_layer_weights(fmnn_model *model, int i,
                                          const fmnn_layer_weights *w);

/**
 * Keras's layer.trainable: a frozen layer (0) keeps its weights and its
 * state through fit (a frozen BatchNormalization normalises with its
 * moving statistics, as Keras 3 does), and its parameters count as
 * non-trainable in the summary.  Layers are trainable (1) by default;
 * this may be set before or after compile, and is saved with the model.
 */
FMNN_API int fmnn_layer_set_trainable(fmnn_layer *layer, int trainable);

/** 1 when the layer is trainable. */
FMNN_API int fmnn_layer_trainable(const fmnn_layer *layer);

/** fmnn_layer_set_trainable on layer i of a model (0-based), for the
 * layers of a loaded model: fine-tuning a few of them. */
FMNN_API int fmnn_model_set_layer_trainable(fmnn_model *model, int i, int trainable);

/** Events a fit callback receives. */
typedef enum fmnn_event {
    FMNN_EVENT_EPOCH_BEGIN = 0,
    FMNN_EVENT_BATCH_END,
    FMNN_EVENT_EPOCH_END
} fmnn_event;

/** What a fit callback is told.  Losses include regularization. */
typedef struct fmnn_progress {
    fmnn_event event;
    int epoch, epochs;       /**< 0-based epoch, and the total */
    int batch, batches;      /**< batches done in this epoch, and per epoch */
    float loss, accuracy;    /**< running means over this epoch so far */
    int has_validation;
    float val_loss, val_accuracy;  /**< at FMNN_EVENT_EPOCH_END only */
    double seconds;          /**< since the epoch began */
} fmnn_progress;

/** Return non-zero to stop training: fit then returns FMNN_ECANCELED. */
typedef int (*fmnn_callback)(const fmnn_progress *progress, void *user_data);

typedef struct fmnn_fit_options {
    int batch_size;          /**< >= 1; 0 means Keras's 32, as in evaluate and predict */
    int epochs;              /**< >= 0 (Keras: 1) */
    float validation_split;  /**< in [0, 1): the LAST fraction, before shuffling */
    int shuffle;             /**< reshuffle the training part every epoch */
    uint64_t seed;           /**< for shuffling and dropout */
    int verbose;             /**< 0 silent, 1 progress bar, 2 one line per epoch */
    fmnn_callback callback;  /**< optional */
    void *user_data;         /**< passed to callback */
} fmnn_fit_options;

/** Keras's fit() defaults. */
#define FMNN_FIT_OPTIONS_INIT { 32, 1, 0.0f, 1, 0, 1, NULL, NULL }

/** Per-epoch metrics from fmnn_model_fit(), as Keras's history.history. */
typedef struct fmnn_history {
    int epochs;              /**< epochs completed */
    int has_validation;
    float *loss, *accuracy;
    float *val_loss, *val_accuracy;  /**< NULL without validation */
} fmnn_history;

FMNN_API void fmnn_history_free(fmnn_history *history);

/**
 * Trains the model.  x is (N, sample shape...); y is shaped as the output
 * (one-hot for categorical cross-entropy, probabilities for binary
 * cross-entropy, values for MSE, MAE and Huber), or (N) class indices for
 * the sparse losses.  When history is not NULL it receives the per-epoch metrics
 * (also after FMNN_ENUMERIC or FMNN_ECANCELED, with the epochs finished);
 * free it with fmnn_history_free().  If the loss, an update or a moving
 * statistic turns NaN or Inf, fit stops with FMNN_ENUMERIC and the
 * weights and moving statistics of the last good step.
 */
FMNN_API int fmnn_model_fit(fmnn_model *model, const fmnn_tensor *x,
                            const fmnn_tensor *y,
                            const fmnn_fit_options *options,
                            fmnn_history **history);

/**
 * Computes the loss (with regularization) and accuracy over x and y, in
 * batches of batch_size (0 means 32).  Either out pointer may be NULL.
 */
FMNN_API int fmnn_model_evaluate(fmnn_model *model, const fmnn_tensor *x,
                                 const fmnn_tensor *y, int batch_size,
                                 float *loss, float *accuracy);

/**
 * Runs the model in inference mode.  *out receives a new tensor
 * (N, output shape...), class probabilities for a softmax model; free it
 * with fmnn_tensor_free().  batch_size 0 means 32.
 */
FMNN_API int fmnn_model_predict(fmnn_model *model, const fmnn_tensor *x,
                                int batch_size, fmnn_tensor **out);

/**
 * Keras's Normalization.adapt(): sets the mean and the (biased) variance
 * of the Normalization layer at layer_index, per channel, over every axis
 * but the last of what reaches it when the model runs on x.  x is shaped
 * as the model's input (N, input shape...); the layers before layer_index
 * run in inference mode, a bounded number of samples at a time.  After
 * compile; the statistics are accumulated in double, in sample order, so
 * they do not depend on how the samples were grouped.
 */
FMNN_API int fmnn_model_adapt(fmnn_model *model, int layer_index, const fmnn_tensor *x);

/** fmnn_model_save flag: also save the optimizer's state, to resume training. */
#define FMNN_SAVE_OPTIMIZER 1u

/**
 * Saves the architecture, loss, optimizer settings and weights (with
 * FMNN_SAVE_OPTIMIZER, also the optimizer's state and step count) to path, in
 * the format of docs/FORMAT.md.  Atomic: the file is written under a
 * temporary name in the same directory, synced, then renamed, so on any
 * failure an existing file at path is left intact.  FMNN_EIO on failure.
 */
FMNN_API int fmnn_model_save(const fmnn_model *model, const char *path,
                             unsigned flags);

/**
 * Loads a model saved by fmnn_model_save, compiled and ready to predict
 * or to continue training.  Rejects a wrong magic number, an unknown
 * version, truncation, a bad checksum, an impossible architecture and
 * oversized counts with FMNN_EFORMAT and a message naming the file.
 */
FMNN_API int fmnn_model_load(fmnn_model **out, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_MODEL_H */
