/*
 * confusion.c - keras.metrics.Precision, Recall and AUC, from confusion
 * counts accumulated over the epoch.  Every output value is one binary
 * prediction (a one-hot row is as many predictions as classes; a sparse
 * target is read as its one-hot row), positive when it is above the
 * threshold; a target is positive when it is not 0.
 *
 * AUC is keras.metrics.AUC() with its defaults: the ROC curve over
 * num_thresholds thresholds, evenly spaced (i / (n - 1), the first and
 * last moved just outside [0, 1] by epsilon), predictions clipped to
 * [0, 1], a target positive when it is not 0 (Keras's bucketed update
 * casts y_true to bool, so a soft label 0.3 is a whole positive), and
 * the trapezoid rule.
 */
#include <stdio.h>

#include "metric_impl.h"

#define EPSILON 1e-7 /* keras.backend.epsilon() */

/* Precision and recall: sums = true positives, false positives, false negatives. */
static size_t pr_sums(const fmnn_metric *spec)
{
    (void)spec;
    return 3;
}

static void pr_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    const int width = b->rows.width;
    for (int row = 0; row < b->rows.rows; row++) {
        const double w = fmnn__row_weight(b, row);
        for (int c = 0; c < width; c++) {
            const int predicted = b->rows.output[(size_t)row * width + c] > spec->threshold;
            const int actual = fmnn__target_value(b, row, c) != 0.0f;
            sums[0] += w * (predicted && actual);
            sums[1] += w * (predicted && !actual);
            sums[2] += w * (!predicted && actual);
        }
    }
}

static double precision_result(const fmnn_metric *spec, const double *sums)
{
    (void)spec;
    return fmnn__ratio(sums[0], sums[0] + sums[1]);
}

static double recall_result(const fmnn_metric *spec, const double *sums)
{
    (void)spec;
    return fmnn__ratio(sums[0], sums[0] + sums[2]);
}

const struct fmnn_metric_ops fmnn__precision_metric = {
    .name = "precision",
    .higher_is_better = 1,
    .n_sums = pr_sums,
    .update = pr_update,
    .result = precision_result,
};

const struct fmnn_metric_ops fmnn__recall_metric = {
    .name = "recall",
    .higher_is_better = 1,
    .n_sums = pr_sums,
    .update = pr_update,
    .result = recall_result,
};

/* AUC: sums = for each threshold t, TP[t], FP[t], TN[t], FN[t]. */
static size_t auc_sums(const fmnn_metric *spec)
{
    return 4 * (size_t)spec->num_thresholds;
}

static double auc_threshold(int i, int n)
{
    return i == 0 ? -EPSILON : i == n - 1 ? 1.0 + EPSILON : (double)i / (n - 1);
}

static void auc_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    const int width = b->rows.width, n = spec->num_thresholds;
    double *tp = sums, *fp = sums + n, *tn = sums + 2 * n, *fn = sums + 3 * n;
    for (int row = 0; row < b->rows.rows; row++) {
        const double w = fmnn__row_weight(b, row);
        for (int c = 0; c < width; c++) {
            double p = b->rows.output[(size_t)row * width + c];
            p = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
            const double pos = fmnn__target_value(b, row, c) != 0.0f ? w : 0.0, neg = w - pos;
            for (int t = 0; t < n; t++) {
                if (p > auc_threshold(t, n)) {
                    tp[t] += pos;
                    fp[t] += neg;
                } else {
                    fn[t] += pos;
                    tn[t] += neg;
                }
            }
        }
    }
}

static double auc_result(const fmnn_metric *spec, const double *sums)
{
    const int n = spec->num_thresholds;
    const double *tp = sums, *fp = sums + n, *tn = sums + 2 * n, *fn = sums + 3 * n;
    double area = 0.0;
    for (int t = 0; t + 1 < n; t++) {
        const double x0 = fmnn__ratio(fp[t], fp[t] + tn[t]), x1 = fmnn__ratio(fp[t + 1], fp[t + 1] + tn[t + 1]);
        const double y0 = fmnn__ratio(tp[t], tp[t] + fn[t]), y1 = fmnn__ratio(tp[t + 1], tp[t + 1] + fn[t + 1]);
        area += (x0 - x1) * (y0 + y1) / 2.0;
    }
    return area;
}

const struct fmnn_metric_ops fmnn__auc_metric = {
    .name = "auc",
    .higher_is_better = 1,
    .n_sums = auc_sums,
    .update = auc_update,
    .result = auc_result,
};
