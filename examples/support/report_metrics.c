/*
 * report_metrics.c - the metrics of report.h as scikit-learn computes
 * them: the confusion matrix, per-class and averaged precision, recall
 * and F1, and classification_report's text.
 */
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ==== small helpers =================================================== */

/* A growing string; after a failed allocation it stays failed. */
typedef struct strbuf {
    char *data;
    size_t len, cap;
    int failed;
} strbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;

    if (sb->failed)
        return;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = 1;
        va_end(ap2);
        return;
    }
    if (sb->len + (size_t)n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        char *p;
        while (cap < sb->len + (size_t)n + 1)
            cap *= 2;
        p = realloc(sb->data, cap);
        if (p == NULL) {
            sb->failed = 1;
            va_end(ap2);
            return;
        }
        sb->data = p;
        sb->cap = cap;
    }
    vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
    va_end(ap2);
    sb->len += (size_t)n;
}

/* Number of UTF-8 code points, as Python's len() counts a str. */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* ==== metrics ========================================================= */

int report_confusion_matrix(long *matrix, int num_classes,
                            const int *y_true, const int *y_pred,
                            size_t count)
{
    if (matrix == NULL || num_classes < 1 ||
        (count > 0 && (y_true == NULL || y_pred == NULL))) {
        errno = EINVAL;
        return -1;
    }
    memset(matrix, 0, sizeof *matrix * (size_t)num_classes * (size_t)num_classes);
    for (size_t i = 0; i < count; i++) {
        if (y_true[i] < 0 || y_true[i] >= num_classes ||
            y_pred[i] < 0 || y_pred[i] >= num_classes) {
            fprintf(stderr, "report: sample %zu has class %d/%d, not in 0..%d\n",
                    i, y_true[i], y_pred[i], num_classes - 1);
            errno = EINVAL;
            return -1;
        }
        matrix[(size_t)y_true[i] * (size_t)num_classes + (size_t)y_pred[i]]++;
    }
    return 0;
}

/*
 * numpy's pairwise summation (pairwise_sum_DOUBLE), so that means come
 * out bit-identical to np.mean / np.average on the same values.
 */
static double pairwise_sum(const double *a, size_t n)
{
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        size_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + (size_t)j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    } else {
        size_t n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
    }
}

/* sklearn's _prf_divide with zero_division = 0.0. */
static double ratio(double num, double den)
{
    return den == 0.0 ? 0.0 : num / den;
}

int report_metrics_compute(report_metrics *out, const long *matrix,
                           int num_classes)
{
    size_t k = (size_t)num_classes;
    double *work;
    long trace = 0;

    if (out == NULL || matrix == NULL || num_classes < 1) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->classes = calloc(k, sizeof *out->classes);
    work = calloc(4 * k, sizeof *work); /* p, r, f1, support as doubles */
    if (out->classes == NULL || work == NULL) {
        free(out->classes);
        free(work);
        out->classes = NULL;
        errno = ENOMEM;
        return -1;
    }
    out->num_classes = num_classes;

    for (size_t c = 0; c < k; c++) {
        long tp = matrix[c * k + c], true_sum = 0, pred_sum = 0;
        report_scores *s = &out->classes[c];
        for (size_t j = 0; j < k; j++) {
            true_sum += matrix[c * k + j];
            pred_sum += matrix[j * k + c];
        }
        s->precision = ratio((double)tp, (double)pred_sum);
        s->recall = ratio((double)tp, (double)true_sum);
        /* (1 + beta^2) tp / (beta^2 true_sum + pred_sum), beta = 1 */
        s->f1 = ratio(2.0 * (double)tp, (double)true_sum + (double)pred_sum);
        s->support = true_sum;
        out->total += true_sum;
        trace += tp;
    }
    out->accuracy = ratio((double)trace, (double)out->total);

    /* macro: np.nanmean; weighted: np.average(weights=support) */
    {
        double *p = work, *r = work + k, *f = work + 2 * k, *w = work + 3 * k;
        double wsum;
        for (size_t c = 0; c < k; c++) {
            p[c] = out->classes[c].precision;
            r[c] = out->classes[c].recall;
            f[c] = out->classes[c].f1;
            w[c] = (double)out->classes[c].support;
        }
        out->macro_avg.precision = pairwise_sum(p, k) / (double)k;
        out->macro_avg.recall = pairwise_sum(r, k) / (double)k;
        out->macro_avg.f1 = pairwise_sum(f, k) / (double)k;
        out->macro_avg.support = out->total;

        wsum = pairwise_sum(w, k);
        if (wsum == 0.0) {
            /* all weights zero: sklearn falls back to the plain mean */
            out->weighted_avg = out->macro_avg;
        } else {
            for (size_t c = 0; c < k; c++) {
                p[c] *= w[c];
                r[c] *= w[c];
                f[c] *= w[c];
            }
            out->weighted_avg.precision = pairwise_sum(p, k) / wsum;
            out->weighted_avg.recall = pairwise_sum(r, k) / wsum;
            out->weighted_avg.f1 = pairwise_sum(f, k) / wsum;
        }
        out->weighted_avg.support = out->total;
    }
    free(work);
    return 0;
}

void report_metrics_free(report_metrics *metrics)
{
    if (metrics == NULL)
        return;
    free(metrics->classes);
    metrics->classes = NULL;
    metrics->num_classes = 0;
}

/* Right-aligns s in width columns, counting code points as Python does. */
static void sb_right(strbuf *sb, const char *s, size_t width)
{
    size_t n = utf8_length(s);
    sb_printf(sb, "%*s%s", (int)(n < width ? width - n : 0), "", s);
}

static void sb_score_row(strbuf *sb, const char *name, size_t width,
                         const report_scores *s, int digits)
{
    sb_right(sb, name, width);
    sb_printf(sb, "  %9.*f %9.*f %9.*f %9ld\n", digits, s->precision,
              digits, s->recall, digits, s->f1, s->support);
}

char *report_classification_text(const report_metrics *metrics,
                                 const char *const *class_names, int digits)
{
    strbuf sb = { 0 };
    size_t width = strlen("weighted avg");

    if (metrics == NULL || metrics->classes == NULL || class_names == NULL ||
        digits < 0 || digits > 15) {
        errno = EINVAL;
        return NULL;
    }
    for (int c = 0; c < metrics->num_classes; c++) {
        size_t n = utf8_length(class_names[c]);
        if (n > width)
            width = n;
    }
    if ((size_t)digits > width)
        width = (size_t)digits;

    /* "{:>{width}s} " + " {:>9}" * 4, then a blank line */
    sb_printf(&sb, "%*s  precision    recall  f1-score   support\n\n",
              (int)width, "");
    for (int c = 0; c < metrics->num_classes; c++)
        sb_score_row(&sb, class_names[c], width, &metrics->classes[c], digits);
    sb_printf(&sb, "\n");
    sb_right(&sb, "accuracy", width);
    sb_printf(&sb, "  %9s %9s %9.*f %9ld\n", "", "", digits,
              metrics->accuracy, metrics->total);
    sb_score_row(&sb, "macro avg", width, &metrics->macro_avg, digits);
    sb_score_row(&sb, "weighted avg", width, &metrics->weighted_avg, digits);

    if (sb.failed) {
        free(sb.data);
        errno = ENOMEM;
        return NULL;
    }
    return sb.data;
}
