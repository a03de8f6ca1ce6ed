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
#include <math.h>
#include <stdio.h>

#include "metric_impl.h"

/* Precision and recall: sums = true positives, false positives, false negatives. */
static size_t pr_sums(const fmnn_metric *spec)
{
    (void)spec;
    return 3;
}

static void pr_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    const int width = b->rows.width;
    for (int row = 0; row < b->rows.rows; row++)
        for (int c = 0; c < width; c++) {
            const int predicted = b->rows.output[(size_t)row * width + c] > spec->threshold;
            const int actual = fmnn__target_value(b, row, c) != 0.0f;
            sums[0] += predicted && actual;
            sums[1] += predicted && !actual;
            sums[2] += !predicted && actual;
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

/* AUC: sums = positives and negatives per bucket k, 0..n-1: a prediction
 * p is above thresholds 0..k (threshold 0 is below every p, threshold
 * n - 1 above every p; threshold i in between is i / (n - 1)). */
static size_t auc_sums(const fmnn_metric *spec)
{
    return 2 * (size_t)spec->num_thresholds;
}

/* In float, as Keras computes the bucket. */
static int auc_bucket(float p, int n)
{
    p = p < 0.0f ? 0.0f : p > 1.0f ? 1.0f : p;
    const int k = (int)ceilf(p * (float)(n - 1)) - 1; /* p > i / (n - 1) for i <= k */
    return k < 0 ? 0 : k;
}

static void auc_update(const fmnn_metric *spec, const fmnn_metric_batch *b, double *sums)
{
    const int width = b->rows.width, n = spec->num_thresholds;
    double *pos = sums, *neg = sums + n;
    for (int row = 0; row < b->rows.rows; row++)
        for (int c = 0; c < width; c++) {
            const int k = auc_bucket(b->rows.output[(size_t)row * width + c], n);
            if (fmnn__target_value(b, row, c) != 0.0f)
                pos[k] += 1.0;
            else
                neg[k] += 1.0;
        }
}

/* The trapezoids under (false positive rate, true positive rate) as the
 * threshold rises; at threshold i, the positives are buckets i..n-1. */
static double auc_result(const fmnn_metric *spec, const double *sums)
{
    const int n = spec->num_thresholds;
    const double *pos = sums, *neg = sums + n;
    double all_pos = 0.0, all_neg = 0.0;
    for (int k = 0; k < n; k++) {
        all_pos += pos[k];
        all_neg += neg[k];
    }
    double area = 0.0, tp = all_pos, fp = all_neg; /* at threshold 0 */
    for (int t = 0; t + 1 < n; t++) {
        const double tp_next = tp - pos[t], fp_next = fp - neg[t];
        const double x0 = fmnn__ratio(fp, all_neg), x1 = fmnn__ratio(fp_next, all_neg);
        const double y0 = fmnn__ratio(tp, all_pos), y1 = fmnn__ratio(tp_next, all_pos);
        area += (x0 - x1) * (y0 + y1) / 2.0;
        tp = tp_next;
        fp = fp_next;
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
