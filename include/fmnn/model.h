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
 * A model is used from one thread at a time (it uses
 * fmnn_get_num_threads() threads internally); different models may be
 * used from different threads at once.  To predict with one model from
 * many threads, give each an inference context (fmnn/inference.h).
 */
#ifndef FMNN_MODEL_H
#define FMNN_MODEL_H

#include <signal.h> /* sig_atomic_t */
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
    FMNN_OPTIMIZER_SGD,
    FMNN_OPTIMIZER_RMSPROP,
    FMNN_OPTIMIZER_ADAGRAD,
    FMNN_OPTIMIZER_ADAMW
} fmnn_optimizer_kind;

/** Adam's and AdamW's own settings (keras.optimizers.Adam, AdamW). */
typedef struct fmnn_adam_settings {
    float beta_1, beta_2;  /**< in [0, 1) */
    float epsilon;         /**< >= 0, added to sqrt(v) */
    int amsgrad;           /**< 0 or 1: AMSGrad, a third state array (the running maximum of v) */
} fmnn_adam_settings;

/** SGD's own settings (keras.optimizers.SGD). */
typedef struct fmnn_sgd_settings {
    float momentum;        /**< in [0, 1) */
    int nesterov;          /**< non-zero: Nesterov momentum */
} fmnn_sgd_settings;

/** RMSprop's own settings (keras.optimizers.RMSprop). */
typedef struct fmnn_rmsprop_settings {
    float rho;             /**< in [0, 1) */
    float momentum;        /**< in [0, 1); > 0 keeps a momentum array */
    float epsilon;         /**< >= 0, added to the mean square under the root */
    int centered;          /**< 0 or 1: divide by the estimated variance (keeps the mean gradient) */
} fmnn_rmsprop_settings;

/** Adagrad's own settings (keras.optimizers.Adagrad). */
typedef struct fmnn_adagrad_settings {
    float initial_accumulator_value; /**< >= 0, the accumulators' start */
    float epsilon;         /**< >= 0, added to the accumulator under the root */
} fmnn_adagrad_settings;

typedef enum fmnn_schedule_kind {
    FMNN_SCHEDULE_CONSTANT = 0,
    FMNN_SCHEDULE_EXPONENTIAL_DECAY,
    FMNN_SCHEDULE_PIECEWISE_CONSTANT,
    FMNN_SCHEDULE_COSINE_DECAY,
    FMNN_SCHEDULE_INVERSE_TIME_DECAY
} fmnn_schedule_kind;

/** The most boundaries a piecewise constant schedule has. */
#define FMNN_MAX_BOUNDARIES 16

/**
 * A learning-rate schedule (keras.optimizers.schedules): the learning rate
 * as a function of the optimizer's iteration count, the optimizer's
 * learning_rate being Keras's initial_learning_rate.  Zeroed, it is the
 * constant learning_rate.  Build one with the fmnn_*_decay() functions.
 */
typedef struct fmnn_schedule {
    fmnn_schedule_kind kind;
    int decay_steps;       /**< > 0: exponential, inverse time and cosine decay */
    float decay_rate;      /**< >= 0: exponential and inverse time decay */
    int staircase;         /**< 0 or 1: exponential and inverse time decay in whole periods */
    float alpha;           /**< in [0, 1]: cosine decay's floor, a fraction of its start */
    int warmup_steps;      /**< >= 0: cosine decay's linear warm-up (needs a warmup_target) */
    float warmup_target;   /**< >= 0: the rate the warm-up reaches, where the decay starts; 0: none */
    int n_boundaries;      /**< 0..FMNN_MAX_BOUNDARIES: piecewise constant */
    int boundaries[FMNN_MAX_BOUNDARIES];   /**< >= 0, strictly increasing */
    float values[FMNN_MAX_BOUNDARIES + 1]; /**< >= 0, n_boundaries + 1 of them */
} fmnn_schedule;

/**
 * Optimizer settings; build them with fmnn_adam(), fmnn_sgd(),
 * fmnn_rmsprop(), fmnn_adagrad() or fmnn_adamw() and change what you
 * need.  The settings of each kind are nested under its name
 * (o.adam.beta_1, o.sgd.momentum; AdamW's are o.adam); those every kind
 * shares follow the union, as Keras's base optimizer's arguments.
 */
typedef struct fmnn_optimizer {
    fmnn_optimizer_kind kind;
    float learning_rate;   /**< > 0 (0 only to start a cosine warm-up) */
    union {
        fmnn_adam_settings adam;
        fmnn_sgd_settings sgd;
        fmnn_rmsprop_settings rmsprop;
        fmnn_adagrad_settings adagrad;
        float reserved_kind[16];
    };
    /** >= 0: decoupled weight decay, w -= w * weight_decay * lr before
     * each update, for any kind (AdamW's default is 0.004). */
    float weight_decay;
    /** >= 0, 0 meaning off, at most one of the three set: clip each
     * variable's gradient (a layer's kernel, its bias) to this norm, each
     * gradient value to [-clipvalue, clipvalue], or all trainable
     * gradients together to this norm. */
    float clipnorm, clipvalue, global_clipnorm;
    fmnn_schedule schedule; /**< zeroed: the constant learning_rate */
    float reserved[8];     /**< must be 0 */
} fmnn_optimizer;

/** Adam with Keras's defaults: lr 1e-3, beta_1 0.9, beta_2 0.999, eps 1e-7. */
FMNN_API fmnn_optimizer fmnn_adam(void);

/** SGD with (optional) momentum, as keras.optimizers.SGD. */
FMNN_API fmnn_optimizer fmnn_sgd(float learning_rate, float momentum);

/** RMSprop with Keras's defaults: lr 1e-3, rho 0.9, momentum 0, eps 1e-7. */
FMNN_API fmnn_optimizer fmnn_rmsprop(void);

/** Adagrad with Keras's defaults: lr 1e-3, accumulators from 0.1, eps 1e-7. */
FMNN_API fmnn_optimizer fmnn_adagrad(void);

/** AdamW with Keras's defaults: Adam's, and weight_decay 0.004. */
FMNN_API fmnn_optimizer fmnn_adamw(void);

/** keras.optimizers.schedules.ExponentialDecay: lr * rate^(step / decay_steps). */
FMNN_API fmnn_schedule fmnn_exponential_decay(int decay_steps, float decay_rate, int staircase);

/** keras.optimizers.schedules.InverseTimeDecay: lr / (1 + rate * step / decay_steps). */
FMNN_API fmnn_schedule fmnn_inverse_time_decay(int decay_steps, float decay_rate, int staircase);

/** keras.optimizers.schedules.CosineDecay, with an optional linear warm-up
 * from lr to warmup_target over warmup_steps before the decay from
 * warmup_target (warmup_target 0, Keras's None: no warm-up, the decay
 * from lr). */
FMNN_API fmnn_schedule fmnn_cosine_decay(int decay_steps, float alpha, int warmup_steps, float warmup_target);

/** keras.optimizers.schedules.PiecewiseConstantDecay: values[0] up to and
 * including step boundaries[0], values[i] up to boundaries[i], then
 * values[n].  values holds n_boundaries + 1 floats.  More than
 * FMNN_MAX_BOUNDARIES give a schedule that compile refuses. */
FMNN_API fmnn_schedule fmnn_piecewise_constant_decay(int n_boundaries, const int *boundaries,
                                                     const float *values);

/**
 * Replaces the optimizer of a compiled (or loaded) model, checked as
 * compile checks it; on any error nothing changes.  The same kind with as
 * many state arrays keeps its state and iteration count (new
 * hyperparameters, as setting them on a Keras optimizer); another kind,
 * or a change of state arrays (amsgrad, RMSprop's momentum or centered),
 * starts fresh state at iteration 0.  FMNN_ESTATE before compile
 * (fmnn_model_compile() takes the first optimizer).
 */
FMNN_API int fmnn_model_set_optimizer(fmnn_model *model, const fmnn_optimizer *optimizer);

/** The optimizer settings of a compiled model. */
FMNN_API int fmnn_model_get_optimizer(const fmnn_model *model, fmnn_optimizer *out);

/** Sets the constant learning rate (> 0) of a compiled model, keeping the
 * optimizer's state.  FMNN_ESTATE when a schedule is set, as Keras
 * refuses to set the rate of an optimizer built on a schedule. */
FMNN_API int fmnn_model_set_learning_rate(fmnn_model *model, float learning_rate);

/** The learning rate the next update will use: the schedule at the
 * current iteration count. */
FMNN_API int fmnn_model_learning_rate(const fmnn_model *model, float *out);

/**
 * Creates an empty Sequential model for samples of the given shape
 * (without the batch axis): {28, 28, 1} for Fashion-MNIST images.
 */
FMNN_API int fmnn_model_new(fmnn_model **out, int rank, const int *input_shape);

/** Frees the model and every layer in it.  NULL is a no-op.  A model with
 * inference contexts lives on until the last of them is freed. */
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

/* ---- metrics ----------------------------------------------------------- */

/** What fit, evaluate and the callbacks report besides the loss. */
typedef enum fmnn_metric_kind {
    /** Accuracy as Keras's "accuracy" picks it from the loss: categorical
     * (argmax against the one-hot row), sparse categorical (argmax against
     * the index) or binary (each output value > 0.5 against the target; the
     * raw output, also from logits, as Keras computes it). */
    FMNN_METRIC_ACCURACY = 0,
    /** The target's class among the k highest scores (k defaults to 5);
     * "sparse_top_k_categorical_accuracy" with a sparse loss. */
    FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY,
    /** Mean absolute and mean squared error over every output value. */
    FMNN_METRIC_MAE,
    FMNN_METRIC_MSE,
    /** Over every output value read as a binary prediction, output >
     * threshold (0.5 by default) against target != 0: TP / (TP + FP) and
     * TP / (TP + FN), accumulated over the epoch as Keras does. */
    FMNN_METRIC_PRECISION,
    FMNN_METRIC_RECALL,
    /** Area under the ROC curve, as keras.metrics.AUC(): outputs clipped to
     * [0, 1], num_thresholds (200 by default) evenly spaced thresholds,
     * trapezoidal sum. */
    FMNN_METRIC_AUC
} fmnn_metric_kind;

/** A metric and its settings; 0 means Keras's default for each. */
typedef struct fmnn_metric {
    fmnn_metric_kind kind;
    int k;                 /**< top-k: 0 means 5 */
    float threshold;       /**< precision, recall: 0 means 0.5; in (0, 1) */
    int num_thresholds;    /**< AUC: 0 means 200; in 2..10000 */
} fmnn_metric;

/** The most metrics a model reports. */
#define FMNN_MAX_METRICS 8

/**
 * Chooses the metrics fit, evaluate and the callbacks report (Keras's
 * compile(metrics=...)), before or after compile; saved with the model.
 * Until it is called, a model with a cross-entropy loss reports
 * accuracy, and a regression model (MSE, MAE, Huber) no metric.  count 0
 * reports none.  A metric that does not fit the loss (MAE against sparse
 * class indices, top-k of a single output) is refused when both are known.
 */
FMNN_API int fmnn_model_set_metrics(fmnn_model *model, int count, const fmnn_metric *metrics);

/** The number of metrics the model reports. */
FMNN_API int fmnn_model_metric_count(const fmnn_model *model);

/** Metric i's name as Keras's history keys it ("accuracy", "auc"; a
 * second metric of a kind gets "_1", as "auc_1"), or NULL when i is out
 * of range.  The validation key adds "val_". */
FMNN_API const char *fmnn_model_metric_name(const fmnn_model *model, int i);

/* ---- fit ----------------------------------------------------------------- */

/** Events a fit callback receives, in this order: TRAIN_BEGIN, then for
 * each epoch EPOCH_BEGIN, BATCH_END after every batch, EPOCH_END; then
 * TRAIN_END, always, also after an error or a stop. */
typedef enum fmnn_event {
    FMNN_EVENT_EPOCH_BEGIN = 0,
    FMNN_EVENT_BATCH_END,
    FMNN_EVENT_EPOCH_END,
    FMNN_EVENT_TRAIN_BEGIN,
    FMNN_EVENT_TRAIN_END,
    /** A step's loss or update was NaN or Inf and was refused: the model
     * holds the last good step.  Stopping here (TerminateOnNaN) makes fit
     * return FMNN_OK; otherwise it returns FMNN_ENUMERIC. */
    FMNN_EVENT_NONFINITE,
    /** The fit's interrupt flag was set: fit stops at this step boundary
     * without ending the epoch (a BackupAndRestore callback saves here),
     * then TRAIN_END, and fit returns FMNN_ECANCELED. */
    FMNN_EVENT_INTERRUPTED
} fmnn_event;

/** What a fit callback is told.  Losses include regularization. */
typedef struct fmnn_progress {
    fmnn_event event;
    fmnn_model *model;       /**< the model being trained (see fmnn_callback_fn) */
    int epoch, epochs;       /**< 0-based epoch (counting from initial_epoch), and fit's epochs */
    int batch, batches;      /**< batches done in this epoch, and per epoch */
    float loss;              /**< running mean over this epoch so far */
    float accuracy;          /**< the accuracy metric's, NaN when the model has none */
    int n_metrics;           /**< fmnn_model_metric_count() */
    const float *metrics;    /**< their running values, n_metrics of them */
    int has_validation;
    float val_loss, val_accuracy;  /**< at FMNN_EVENT_EPOCH_END only */
    const float *val_metrics;      /**< ditto; NULL without validation */
    float learning_rate;     /**< the optimizer's current rate */
    double seconds;          /**< since the epoch began */
} fmnn_progress;

/** A callback's return value that stops training, as Keras's
 * model.stop_training = True: fit then returns FMNN_OK. */
#define FMNN_STOP_TRAINING 1

/**
 * A callback: return 0 to go on, FMNN_STOP_TRAINING to stop after this
 * event (fit returns FMNN_OK and history says who stopped it), or a
 * negative status to make fit fail with it: fit's message names the
 * callback and the epoch, then gives the message of the last libfmnn
 * call that failed inside the callback, or the status's fmnn_strerror().
 *
 * From inside a callback these may be called on progress->model: every
 * read (weights, layers, shapes, learning rate, metric names),
 * fmnn_model_save, fmnn_model_evaluate and predict,
 * fmnn_model_set_layer_weights (restoring best weights) and
 * fmnn_model_set_learning_rate.  Calls that would rebuild what fit is
 * using (fit itself, train_on_batch, set_optimizer, set_metrics,
 * set_layer_trainable, adapt) return FMNN_ESTATE; never free the model
 * there.
 */
typedef int (*fmnn_callback_fn)(const fmnn_progress *progress, void *user_data);

typedef struct fmnn_callback fmnn_callback; /* include/fmnn/callbacks.h */

typedef struct fmnn_fit_options {
    int batch_size;          /**< >= 1; 0 means Keras's 32, as in evaluate and predict */
    int epochs;              /**< the epoch to stop before, counting from 0 (Keras: 1) */
    float validation_split;  /**< in [0, 1): the LAST fraction, before shuffling */
    int shuffle;             /**< reshuffle the training part every epoch */
    uint64_t seed;           /**< for shuffling, dropout and augmentation */
    int verbose;             /**< 0 silent (the default), 1 progress bar, 2 one line per epoch */
    fmnn_callback_fn callback; /**< optional; called after the callbacks below */
    void *user_data;         /**< passed to callback */

    /** Validation data (Keras's validation_data), instead of a split. */
    const fmnn_tensor *x_val, *y_val;
    /** The first epoch's number, to resume (Keras's initial_epoch): fit
     * trains epochs initial_epoch .. epochs - 1. */
    int initial_epoch;
    /** Per-sample weights of the loss, shape (N), >= 0: sum(w * loss) / N,
     * as Keras's sum_over_batch_size; the metrics are not weighted, as in
     * Keras 3. */
    const fmnn_tensor *sample_weight;
    /** Class weights: sample i weighs class_weight[its class] (argmax of
     * a one-hot row, the index for a sparse loss, round(y) for one binary
     * output); not with sample_weight, and only in training. */
    const float *class_weight;
    int n_class_weight;
    /** Built-in or wrapped callbacks (include/fmnn/callbacks.h), run in
     * this order at every event; the model does not own them. */
    fmnn_callback *const *callbacks;
    int n_callbacks;
    /** Where verbose output goes; NULL means stdout. */
    FILE *progress_stream;
    /** Non-zero: continue the fit the model was saved in, with
     * FMNN_SAVE_FIT_STATE (fmnn_model_load), at the epoch and batch it had
     * reached, with its running loss and metrics, its history and its
     * callbacks' states, exactly as if it had never stopped; the fit must
     * have the same data sizes, batch size, shuffle and seed (initial_epoch
     * is then the saved one).  Without resume, or with a model holding no
     * such state, fit starts from initial_epoch and drops any saved one. */
    int resume;
    /** Optional: fit stops at the first step boundary after *interrupt
     * becomes non-zero (set it from a SIGINT handler), without ending the
     * epoch: FMNN_EVENT_INTERRUPTED, TRAIN_END, then FMNN_ECANCELED. */
    const volatile sig_atomic_t *interrupt;
} fmnn_fit_options;

/** Keras's fit() defaults, except verbose: the library prints nothing
 * unless asked. */
#define FMNN_FIT_OPTIONS_INIT { 32, 1, 0.0f, 1, 0, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, 0, NULL, 0, NULL }

/** Why fit stopped. */
typedef enum fmnn_stop_reason {
    FMNN_STOP_COMPLETED = 0,  /**< every epoch ran */
    FMNN_STOP_CALLBACK,       /**< a callback returned FMNN_STOP_TRAINING */
    FMNN_STOP_ERROR,          /**< fit returned an error (history has the epochs before it) */
    FMNN_STOP_INTERRUPTED     /**< the interrupt flag stopped it (fit returned FMNN_ECANCELED) */
} fmnn_stop_reason;

/** Per-epoch metrics from fmnn_model_fit(), as Keras's history.history;
 * index e is epoch initial_epoch + e. */
typedef struct fmnn_history {
    int epochs;              /**< epochs completed */
    int initial_epoch;
    int has_validation;
    float *loss, *accuracy;  /**< accuracy NULL when the model has no accuracy metric */
    float *val_loss, *val_accuracy;  /**< NULL without validation */
    int n_metrics;
    const char *metric_names[FMNN_MAX_METRICS];
    float *metrics[FMNN_MAX_METRICS];      /**< metrics[k][e] */
    float *val_metrics[FMNN_MAX_METRICS];  /**< NULL without validation */
    float *learning_rate;    /**< the rate at each epoch's end */
    fmnn_stop_reason stop_reason;
    int stopped_epoch;       /**< the epoch training stopped in; -1 when it completed */
    char stopped_by[48];     /**< the callback that stopped it ("EarlyStopping"), or "" */
} fmnn_history;

FMNN_API void fmnn_history_free(fmnn_history *history);

/**
 * Trains the model.  x is (N, sample shape...); y is shaped as the output
 * (one-hot for categorical cross-entropy, probabilities for binary
 * cross-entropy, values for MSE, MAE and Huber), or (N) class indices for
 * the sparse losses.  When history is not NULL it receives the per-epoch
 * metrics (also after an error, with the epochs finished); free it with
 * fmnn_history_free().  If the loss, an update or a moving statistic
 * turns NaN or Inf, fit stops with FMNN_ENUMERIC and the weights and
 * moving statistics of the last good step.
 *
 * Every batch order, dropout mask and augmentation depends on the seed
 * and on the model's own counts of epochs and steps trained, which fit
 * advances and model files keep: calling fit(epochs = 1) again continues
 * with new orders, and a model saved and loaded again (with its optimizer
 * state) trains on exactly as it would have.
 */
FMNN_API int fmnn_model_fit(fmnn_model *model, const fmnn_tensor *x,
                            const fmnn_tensor *y,
                            const fmnn_fit_options *options,
                            fmnn_history **history);

/**
 * Computes the loss (with regularization) and accuracy over x and y, in
 * batches of batch_size (0 means 32).  Either out pointer may be NULL;
 * accuracy is NaN for a model without an accuracy metric.
 */
FMNN_API int fmnn_model_evaluate(fmnn_model *model, const fmnn_tensor *x,
                                 const fmnn_tensor *y, int batch_size,
                                 float *loss, float *accuracy);

/**
 * Keras's evaluate() with every metric: values[0] receives the loss,
 * values[1 + i] metric i, so values holds 1 + fmnn_model_metric_count().
 * sample_weight (N) may be NULL.
 */
FMNN_API int fmnn_model_evaluate_metrics(fmnn_model *model, const fmnn_tensor *x,
                                         const fmnn_tensor *y, const fmnn_tensor *sample_weight,
                                         int batch_size, float *values);

/**
 * Runs the model in inference mode.  *out receives a new tensor
 * (N, output shape...), class probabilities for a softmax model; free it
 * with fmnn_tensor_free().  batch_size 0 means 32.
 */
FMNN_API int fmnn_model_predict(fmnn_model *model, const fmnn_tensor *x,
                                int batch_size, fmnn_tensor **out);

/**
 * One optimizer step on the batch x, y as Keras's train_on_batch: no
 * shuffling, the model's step count seeds dropout.  values (may be NULL)
 * receives the batch's loss, then its metrics, as fmnn_model_evaluate_metrics.
 * sample_weight may be NULL.  FMNN_ENUMERIC leaves the last good weights.
 */
FMNN_API int fmnn_model_train_on_batch(fmnn_model *model, const fmnn_tensor *x, const fmnn_tensor *y,
                                       const fmnn_tensor *sample_weight, uint64_t seed, float *values);

/** Loss and metrics of one batch in inference mode (Keras's test_on_batch). */
FMNN_API int fmnn_model_test_on_batch(fmnn_model *model, const fmnn_tensor *x, const fmnn_tensor *y,
                                      const fmnn_tensor *sample_weight, float *values);

/** The model's output on one batch (Keras's predict_on_batch): predict
 * with the whole of x as one batch. */
FMNN_API int fmnn_model_predict_on_batch(fmnn_model *model, const fmnn_tensor *x, fmnn_tensor **out);

/** Epochs and steps the model has trained: what seeds its next batch
 * orders and dropout masks.  Either pointer may be NULL. */
FMNN_API int fmnn_model_trained(const fmnn_model *model, int64_t *epochs, int64_t *steps);

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
/** fmnn_model_save flag: the optimizer's state and, when saved during fit
 * (from a callback) or from a model loaded with one, where that fit is,
 * for fmnn_fit_options.resume: the epoch and batch, the running loss and
 * metrics, the history so far and the built-in callbacks' states.  (The
 * random state is the seed and the counts of epochs and steps trained,
 * which every file keeps.) */
#define FMNN_SAVE_FIT_STATE 2u

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
