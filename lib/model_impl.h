/*
 * model_impl.h - the layout of fmnn_model, shared by model.c (building,
 * compiling, summary), plan.c (the passes), fit.c and train.c (fit, one
 * step, evaluate, predict), metric.c, save.c, the callbacks and the loss
 * and optimizer tables.  Private to the library.
 */
#ifndef FMNN_MODEL_IMPL_H
#define FMNN_MODEL_IMPL_H

#include <stdatomic.h>

#include "layer_impl.h"
#include "loss_impl.h"
#include "metric_impl.h"
#include "optimizer_impl.h"
#include "plan.h"

/* The step count stays below this, so that every model fit leaves can be
 * saved and loaded again (the loader refuses larger counts); fit refuses
 * to start a run that would reach it. */
#define FMNN__MAX_STEPS (INT64_C(1) << 62)

/* The most layers a model holds: the model file's limit, checked by
 * fmnn_model_add too, for the same reason. */
#define FMNN__MAX_LAYERS 4096

/* The most parameters (or non-trainable values) a model has, checked by
 * compile and load alike. */
#define FMNN__MAX_PARAMS (UINT64_C(1) << 60)

struct fmnn_model {
    fmnn_shape input;
    fmnn_layer **layers;
    int n_layers, cap_layers;

    int compiled;
    fmnn_loss loss;
    const struct fmnn_loss_ops *loss_ops;
    fmnn_optimizer optimizer;
    const struct fmnn_optimizer_ops *optimizer_ops;
    /* How the loss sees the output: output_rows rows of output_width
     * values per sample.  Cross-entropy takes a row of class scores per
     * position (one row for a flat output, h*w rows for a convolutional
     * one, as Keras averages over them); MSE takes all values as one row. */
    int output_width;
    int output_rows;

    /* Collated parameters: each array holds every layer's kernel and bias
     * back to back, so the optimizer and regularizers are single loops;
     * the optimizer's state arrays have the same layout, in a block of
     * their own (fmnn_model_set_optimizer may replace it).  The
     * non-trainable state (moving statistics) is collated apart. */
    size_t n_params;
    float *params, *grads;
    fmnn__slots slots;
    size_t n_state;
    float *state;
    float *state_before;    /* its copy before a training step, to restore a bad one */
    int64_t step;           /* optimizer steps taken (Adam's t), < FMNN__MAX_STEPS */

    /* What the model has trained, kept by model files with or without the
     * optimizer's state: the epoch count seeds each epoch's batch order,
     * the step count each step's dropout masks and augmentation, so that
     * a model saved and loaded trains on as it would have. */
    int64_t epochs_trained, steps_trained;
    int in_fit;             /* fit is running: callbacks may not rebuild the model */
    /* Where a fit is (fit_state.h): live while fit runs, pending when a
     * model file held one, until the next fit resumes or drops it. */
    struct fmnn__fit_state *live, *resume;
    /* The processes it trains with (distributed.h), or NULL: alone. */
    struct fmnn__group *group;

    /* The metrics (metric.c): chosen by the caller (metrics_chosen) or the
     * loss's default; their sums for fit's epoch [0] and an evaluation [1]. */
    int metrics_chosen;
    int n_metrics;
    fmnn_metric metrics[FMNN_MAX_METRICS];
    const struct fmnn_metric_ops *metric_ops[FMNN_MAX_METRICS];
    char metric_names[FMNN_MAX_METRICS][48]; /* their history keys */
    double *metric_sums[2];
    size_t n_metric_sums;

    /* The execution plan (plan.c). */
    fmnn_step *steps;
    int n_steps;
    fmnn_output_fusion fusion;
    fmnn_activation_kind output_activation; /* the one FUSE_ACTIVATION moved into the loss */

    /* What fit, evaluate and predict run in (plan.h); sized for training,
     * and for the largest batch seen.  Each fmnn_inference has its own. */
    fmnn_buffers buf;

    /* The inference contexts (inference.c).  handles: the caller's handle
     * plus one per live context, so that the model outlives the last of
     * them.  predicting: contexts inside a prediction now; changing: calls
     * inside a change of what they read (fit, train_on_batch,
     * set_layer_weights, adapt).  Each side enters, then checks the other
     * and backs out with FMNN_ESTATE: misuse fails, never tears a read. */
    atomic_int handles;
    atomic_int predicting;
    atomic_int changing;
};

/* Infers and checks every layer's options and shapes from the input on,
 * and counts the parameters and the non-trainable values: what compile
 * and the model loader both run first.  Stops at the first impossible
 * layer, with an error naming it. */
FMNN_INTERNAL int fmnn__model_infer(fmnn_model *m, size_t *n_params, size_t *n_state);

/* fmnn_model_compile; from_file (the model loaders) lets a file keep a
 * categorical loss without a final softmax, which older libraries
 * accepted, so that every file they wrote still loads. */
FMNN_INTERNAL int fmnn__model_compile(fmnn_model *m, fmnn_loss loss, const fmnn_optimizer *optimizer,
                                      uint64_t seed, int from_file);

/* Drops one handle of the model (fmnn_model_free, fmnn_inference_free);
 * the last frees it. */
FMNN_INTERNAL void fmnn__model_release(fmnn_model *m);

/* Brackets a call that changes what an inference context reads (the
 * weights, the non-trainable state): FMNN_ESTATE, naming fn, while a
 * context is predicting with m; nests.  inference.c. */
FMNN_INTERNAL int fmnn__model_change_begin(fmnn_model *m, const char *fn);
FMNN_INTERNAL void fmnn__model_change_end(fmnn_model *m);

/* Turns per-layer timing on (allocating its counters) or off.  For the
 * benchmark; the counters accumulate until profiling is turned off. */
FMNN_INTERNAL int fmnn__model_profile(fmnn_model *model, int enable);

/* The largest batch whose every activation still has at most INT_MAX
 * values (layers index a batch with int); at least 1. */
FMNN_INTERNAL int fmnn__model_batch_limit(const fmnn_model *m);

/* The loss of a batch of `batch` samples the forward pass just ran
 * (train.c): the sum of the per-row losses, each times its sample's
 * weight (weights NULL: 1), without regularization, from the model's own
 * buffers (m->buf).  With with_grad, the gradient of the mean loss over
 * `total` samples (the global batch, of which this is a slice) goes to
 * m->buf.delta[0]. */
FMNN_INTERNAL double fmnn__model_loss(fmnn_model *m, int batch, int total, const float *targets,
                                      const float *weights, int with_grad);

/* The metrics (metric.c).  prepare checks the chosen (or default) ones
 * against the loss and allocates their sums, at compile and load; the
 * others accumulate a batch the forward pass just ran and read the
 * values, in the order of fmnn_model_metric_name. */
FMNN_INTERNAL int fmnn__metrics_prepare(fmnn_model *m, const char *fn);
FMNN_INTERNAL void fmnn__metrics_reset(fmnn_model *m, double *sums);
FMNN_INTERNAL void fmnn__metrics_update(fmnn_model *m, double *sums, int batch, const float *targets);
FMNN_INTERNAL void fmnn__metrics_results(const fmnn_model *m, const double *sums, float *out);
/* The index of the accuracy metric, or -1. */
FMNN_INTERNAL int fmnn__metric_accuracy_index(const fmnn_model *m);

/* Regularization (regularizer.c): the penalty of all kernels, and its
 * gradient added to grads. */
FMNN_INTERNAL double fmnn__regularization_penalty(const fmnn_model *model);
FMNN_INTERNAL void fmnn__regularization_gradient(fmnn_model *model);

/* One optimizer update of all parameters (optimizer.c).  Returns
 * FMNN_ENUMERIC, changing nothing, when any new value would not be finite. */
FMNN_INTERNAL int fmnn__optimizer_step(fmnn_model *model);

#endif /* FMNN_MODEL_IMPL_H */
