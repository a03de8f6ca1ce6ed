/*
 * train.h - what fit (fit.c) shares with the rest of training (train.c):
 * checking the data, gathering a batch, one training step and measuring
 * the loss and metrics of samples in inference mode.  Private.
 */
#ifndef FMNN_TRAIN_H
#define FMNN_TRAIN_H

#include "distributed.h"
#include "model_impl.h"

/* Checks x against the model's input (and that the model is compiled),
 * y against its output and loss, and per-sample weights (NULL: none):
 * (N) values, finite and >= 0.  fn names the caller. */
FMNN_INTERNAL int fmnn__check_x(const fmnn_model *m, const fmnn_tensor *x, const char *fn);
FMNN_INTERNAL int fmnn__check_y(const fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const char *fn);
FMNN_INTERNAL int fmnn__check_weights(const fmnn_tensor *x, const fmnn_tensor *w, const char *what, const char *fn);

/* The samples one inference pass in buf takes at a time: batch_size, but
 * never more than the larger of what buf holds and 64 (inside fit, for
 * the model's own buffers, than they hold), so memory stays bounded. */
FMNN_INTERNAL int fmnn__inference_chunk(const fmnn_model *m, const fmnn_buffers *buf, int batch_size);

/* The shape of the model's output for n samples, (n, output shape...),
 * as a tensor's rank and dims; FMNN_ESHAPE, naming fn, when a tensor
 * cannot hold it. */
FMNN_INTERNAL int fmnn__output_dims(const fmnn_model *m, int n, int dims[FMNN_MAX_RANK], int *rank,
                                    const char *fn);

/*
 * predict, for the model's own buffers and for an inference context's
 * alike: runs x (checked) through m in inference mode, chunk samples at a
 * time, in buf, which it sizes for chunk.  The output goes into `into`
 * (of the output's shape, checked by the caller) or, when into is NULL,
 * into a new tensor; *out (may be NULL) receives the tensor.
 */
FMNN_INTERNAL int fmnn__predict(const fmnn_model *m, fmnn_buffers *buf, const fmnn_tensor *x, int chunk,
                                fmnn_tensor *into, fmnn_tensor **out, const char *fn);

/* Copies samples order[first..first + count) (order NULL: first..first +
 * count) of x, y and weights (NULL: all 1) into the batch buffers. */
FMNN_INTERNAL void fmnn__gather(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const float *weights,
                                const int *order, int first, int count);

/* What went wrong in a refused step, for messages: "loss became NaN". */
typedef struct fmnn_bad_step {
    const char *what;   /* "loss", "moving statistics", "update" */
    const char *value;  /* "NaN", "Inf", "NaN or Inf" */
} fmnn_bad_step;

/*
 * One training step on a batch, of which this process gathered the
 * samples of `slice` into the batch buffers (with their weights when
 * weighted): forward, loss, metrics added to sums (may be NULL), backward,
 * regularization and the optimizer's update; the step count then
 * advances.  With a collective, the loss, metrics, moving statistics and
 * gradients are summed over the processes first, so that every process
 * takes the same step.  Dropout and augmentation are seeded from seed and
 * the model's step count.  *loss receives the batch's mean loss with the
 * penalty.  A loss, moving statistic or update that would not be finite
 * is refused: the model keeps its last good state, *bad says what, and
 * the result is FMNN_ENUMERIC.  Another failure is the collective's.
 */
FMNN_INTERNAL int fmnn__train_step(fmnn_model *m, fmnn__slice slice, uint64_t seed, int weighted, double *sums,
                                   double *loss, fmnn_bad_step *bad);

/* The mean loss (with the penalty) and the metrics over samples
 * [first, first + count) of x and y in inference mode, weighted by
 * weights[first..] when not NULL.  metrics (may be NULL) receives the
 * model's n_metrics values.  With a collective, each process measures a
 * share of the samples and the sums are added up: collective, agreed. */
FMNN_INTERNAL int fmnn__measure(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const float *weights,
                                int first, int count, int batch_size, float *loss, float *metrics);

#endif /* FMNN_TRAIN_H */
