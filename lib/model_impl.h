/*
 * model_impl.h - the layout of fmnn_model, shared by model.c (building,
 * compiling, summary), train.c (fit, evaluate, predict) and the loss and
 * optimizer files.  Private to the library.
 */
#ifndef FMNN_MODEL_IMPL_H
#define FMNN_MODEL_IMPL_H

#include "layer_impl.h"

/* The step count stays below this, so that every model fit leaves can be
 * saved and loaded again (the loader refuses larger counts); fit refuses
 * to start a run that would reach it. */
#define FMNN__MAX_STEPS (INT64_C(1) << 62)

/* The most layers a model holds: the model file's limit, checked by
 * fmnn_model_add too, for the same reason. */
#define FMNN__MAX_LAYERS 4096

/* How a final softmax meets a cross-entropy loss. */
typedef enum softmax_fusion {
    FUSE_NONE = 0,       /* the loss sees the output as it is */
    FUSE_LAYER,          /* the last layer is Activation(softmax) */
    FUSE_ACTIVATION      /* the last layer has activation=softmax */
} softmax_fusion;

struct fmnn_model {
    fmnn_shape input;
    fmnn_layer **layers;
    int n_layers, cap_layers;

    int compiled;
    fmnn_loss loss;
    fmnn_optimizer optimizer;
    softmax_fusion fusion;
    /* How the loss sees the output: output_rows rows of output_width
     * values per sample.  Cross-entropy takes a row of class scores per
     * position (one row for a flat output, h*w rows for a convolutional
     * one, as Keras averages over them); MSE takes all values as one row. */
    int output_width;
    int output_rows;

    /* Collated parameters: each array holds every layer's kernel and bias
     * back to back, so the optimizer and regularizers are single loops. */
    size_t n_params;
    float *params, *grads;
    float *adam_m, *adam_v; /* Adam's moments, or SGD's velocity in adam_m */
    int64_t step;           /* optimizer steps taken (Adam's t), < FMNN__MAX_STEPS */

    /* Buffers for batches of up to `capacity` samples, sized by plan(). */
    int capacity;
    float *arena;           /* one block for everything below */
    float **acts;           /* acts[0] = input batch, acts[i + 1] = layer i's output */
    float *logits;          /* FUSE_ACTIVATION: the last layer's output before softmax */
    float *probs;           /* the model's output as predict returns it */
    float *delta[2];        /* gradients flowing backward, ping-pong */
    float *targets;         /* the batch's y */
    float *workspace;
    unsigned char *saved;   /* per-layer state from forward for backward */

    /* Seconds spent in each layer's forward and backward passes, when
     * profiling is on (the benchmark turns it on); NULL otherwise. */
    double *profile_forward, *profile_backward;
};

/* One pass over a batch of pass->batch samples at input (train.c):
 * forward leaves the model's output in m->probs (and m->logits); backward
 * takes the loss's gradient in m->delta[0] and leaves every layer's
 * kernel and bias gradients.  Both handle fusions and the conv-pool
 * pipeline; backward needs the forward pass of the same batch before it. */
FMNN_INTERNAL void fmnn__model_forward(fmnn_model *m, const fmnn_pass *pass, const float *input);
FMNN_INTERNAL void fmnn__model_backward(fmnn_model *m, const fmnn_pass *pass, const float *input);

/* Turns per-layer timing on (allocating its counters) or off.  For the
 * benchmark; the counters accumulate until profiling is turned off. */
FMNN_INTERNAL int fmnn__model_profile(fmnn_model *model, int enable);

/* Sizes every buffer for batches of up to `batch` samples (model.c).
 * Does nothing when the buffers are already large enough. */
FMNN_INTERNAL int fmnn__model_plan(fmnn_model *model, int batch);

/* The largest batch whose every activation still has at most INT_MAX
 * values (layers index a batch with int); at least 1. */
FMNN_INTERNAL int fmnn__model_batch_limit(const fmnn_model *m);

/* The loss of one batch (loss.c).  Returns the sum of per-sample losses
 * (without regularization); when grad is not NULL, writes the gradient
 * of the batch's MEAN loss with respect to the logits (fused softmax) or
 * the output.  *correct receives the number of right predictions. */
typedef struct fmnn_loss_batch {
    fmnn_loss kind;
    int fused_softmax;
    int batch, width;
    const float *logits;   /* when fused_softmax */
    const float *output;   /* probabilities, or whatever the model outputs */
    const float *target;   /* (batch, width), or (batch) class indices */
    float *grad;           /* (batch, width) or NULL */
} fmnn_loss_batch;

FMNN_INTERNAL double fmnn__loss(const fmnn_loss_batch *b, int *correct);

/* Checks that targets fit the loss: widths, class indices in range. */
FMNN_INTERNAL int fmnn__loss_check_targets(fmnn_loss kind, const float *y,
                                           size_t count, int width,
                                           const char *fn);

/* Targets per sample the loss expects: width, or 1 for sparse labels. */
FMNN_INTERNAL int fmnn__loss_target_width(fmnn_loss kind, int width);

/* Regularization (regularizer.c): the penalty of all kernels, and its
 * gradient added to grads. */
FMNN_INTERNAL double fmnn__regularization_penalty(const fmnn_model *model);
FMNN_INTERNAL void fmnn__regularization_gradient(fmnn_model *model);

/* One optimizer update of all parameters (optimizer.c).  Returns
 * FMNN_ENUMERIC, changing nothing, when any new value would not be finite. */
FMNN_INTERNAL int fmnn__optimizer_step(fmnn_model *model);

/* Validates optimizer settings (optimizer.c). */
FMNN_INTERNAL int fmnn__optimizer_check(const fmnn_optimizer *o);

#endif /* FMNN_MODEL_IMPL_H */
