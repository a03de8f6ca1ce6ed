/*
 * metric_impl.h - what a metric is to the library: one const table per
 * fmnn_metric_kind (lib/metrics/), listed in lib/metrics/registry.c.
 * A metric accumulates sums over the batches of an epoch (or of an
 * evaluation) in doubles, and its value is computed from those sums, as
 * Keras's stateful metrics do: precision is TP / (TP + FP) over the whole
 * epoch, not a mean of batch precisions.
 */
#ifndef FMNN_METRIC_IMPL_H
#define FMNN_METRIC_IMPL_H

#include "loss_impl.h"

/* One batch as a metric sees it: the loss's rows (the model's output as
 * predict returns it, and the targets), the loss (for its target layout)
 * and the size of the output's last axis (a row of MSE holds every
 * output value, so it may hold several positions).  Metrics are not
 * weighted: Keras 3 gives the sample weights to weighted_metrics only. */
typedef struct fmnn_metric_batch {
    fmnn_loss_rows rows;
    const struct fmnn_loss_ops *loss;
    int last_dim;
} fmnn_metric_batch;

struct fmnn_metric_ops {
    const char *name;         /* Keras's history key */
    const char *sparse_name;  /* with a sparse loss, if Keras names it apart */
    int higher_is_better;     /* what EarlyStopping's mode "auto" follows */
    /* Doubles of accumulated sums. */
    size_t (*n_sums)(const fmnn_metric *spec);
    /* Whether the metric can be computed for this loss and output width;
     * fills msg when it cannot.  May be NULL. */
    int (*check)(const fmnn_metric *spec, const struct fmnn_loss_ops *loss, int width, char *msg,
                 size_t size);
    void (*update)(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums);
    double (*result)(const fmnn_metric *spec, const double *sums);
};

/* The metric of a kind, or NULL (lib/metrics/registry.c). */
FMNN_INTERNAL const struct fmnn_metric_ops *fmnn__metric_type(fmnn_metric_kind kind);

/* A spec with Keras's defaults filled in for its zero fields. */
FMNN_INTERNAL fmnn_metric fmnn__metric_defaults(fmnn_metric spec);

/* Checks a spec's own settings (k >= 1, threshold in (0, 1)...). */
FMNN_INTERNAL int fmnn__metric_check_settings(const fmnn_metric *spec, char *msg, size_t size);

/* The target class of a row: its index, or the argmax of its one-hot row. */
static inline int fmnn__target_class(const fmnn_metric_batch *b, int row)
{
    const fmnn_loss_rows *r = &b->rows;
    return b->loss->sparse ? (int)r->target[row] : fmnn__argmax(r->target + (size_t)row * r->width, r->width);
}

/* Target value c of a row, for either layout. */
static inline float fmnn__target_value(const fmnn_metric_batch *b, int row, int c)
{
    const fmnn_loss_rows *r = &b->rows;
    return b->loss->sparse ? ((int)r->target[row] == c ? 1.0f : 0.0f) : r->target[(size_t)row * r->width + c];
}

/* A / B, or 0 when B is 0 (Keras's divide_no_nan). */
static inline double fmnn__ratio(double a, double b)
{
    return b != 0.0 ? a / b : 0.0;
}

/* The metrics that are a mean of per-row scores keep two sums, the
 * scores and their count (accuracy.c, errors.c). */
FMNN_INTERNAL size_t fmnn__mean_sums(const fmnn_metric *spec);
FMNN_INTERNAL double fmnn__mean_result(const fmnn_metric *spec, const double *sums);

#endif /* FMNN_METRIC_IMPL_H */
