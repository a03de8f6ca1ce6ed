/*
 * registry.c - every metric, by its fmnn_metric_kind, and the defaults
 * and checks of a metric's settings.  A new metric is its table in
 * lib/metrics/, one line here and its kind at the end of enum
 * fmnn_metric_kind (include/fmnn/model.h).
 */
#include <stdio.h>

#include "metric_impl.h"

#define METRIC_TYPES(X)                                 \
    X(FMNN_METRIC_ACCURACY, accuracy)                   \
    X(FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY, top_k)    \
    X(FMNN_METRIC_MAE, mae)                             \
    X(FMNN_METRIC_MSE, mse)                             \
    X(FMNN_METRIC_PRECISION, precision)                 \
    X(FMNN_METRIC_RECALL, recall)                       \
    X(FMNN_METRIC_AUC, auc)

#define DECLARE(kind, name) extern const struct fmnn_metric_ops fmnn__##name##_metric;
METRIC_TYPES(DECLARE)

#define ENTRY(kind, name) [kind] = &fmnn__##name##_metric,
static const struct fmnn_metric_ops *const by_kind[] = { METRIC_TYPES(ENTRY) };

/* The kinds run 0..N-1, each once (as in lib/layers/registry.c). */
#define UNIQUE(kind, name) listed_##kind,
enum { METRIC_TYPES(UNIQUE) };
#define ONE(kind, name) +1
enum { METRIC_COUNT = 0 METRIC_TYPES(ONE) };
_Static_assert(sizeof by_kind / sizeof *by_kind == METRIC_COUNT, "metric kinds must be 0..N-1 with no gap");

const struct fmnn_metric_ops *fmnn__metric_type(fmnn_metric_kind kind)
{
    return (unsigned)kind < METRIC_COUNT ? by_kind[kind] : NULL;
}

fmnn_metric fmnn__metric_defaults(fmnn_metric spec)
{
    if (spec.kind == FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY && spec.k == 0)
        spec.k = 5;
    if ((spec.kind == FMNN_METRIC_PRECISION || spec.kind == FMNN_METRIC_RECALL) && spec.threshold == 0.0f)
        spec.threshold = 0.5f;
    if (spec.kind == FMNN_METRIC_AUC && spec.num_thresholds == 0)
        spec.num_thresholds = 200;
    return spec;
}

/* Settings a kind does not use must be 0, so that no typo passes unseen. */
int fmnn__metric_check_settings(const fmnn_metric *spec, char *msg, size_t size)
{
    const int top_k = spec->kind == FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY;
    const int thresholded = spec->kind == FMNN_METRIC_PRECISION || spec->kind == FMNN_METRIC_RECALL;
    const int auc = spec->kind == FMNN_METRIC_AUC;
    if (!fmnn__metric_type(spec->kind))
        snprintf(msg, size, "unknown metric kind %d", (int)spec->kind);
    else if (top_k ? spec->k < 1 : spec->k != 0)
        snprintf(msg, size, top_k ? "k must be >= 1 (0 means 5), got %d" : "k is for top-k only, got %d", spec->k);
    else if (thresholded ? !(spec->threshold > 0.0f && spec->threshold < 1.0f) : spec->threshold != 0.0f)
        snprintf(msg, size, thresholded ? "threshold must be in (0, 1) (0 means 0.5), got %g"
                                        : "threshold is for precision and recall only, got %g",
                 (double)spec->threshold);
    else if (auc ? spec->num_thresholds < 2 || spec->num_thresholds > 10000 : spec->num_thresholds != 0)
        snprintf(msg, size, auc ? "num_thresholds must be in 2..10000 (0 means 200), got %d"
                                : "num_thresholds is for AUC only, got %d",
                 spec->num_thresholds);
    else
        return 0;
    return 1;
}
