/*
 * report.c - metrics, CSV, SVG and HTML reports of the experiments.
 *
 * Sections, in order: small helpers (growing strings, number formats,
 * XML escaping, text widths), metrics as scikit-learn computes them,
 * atomic file writing, CSV, the line chart, the confusion heatmap, PNG
 * and the prediction grid, the HTML page.
 *
 * Sizes follow matplotlib at 100 dpi: a point is 100/72 px, the default
 * font is 10 pt, lines are 1.5 pt wide, axes span [0.125, 0.9] x
 * [0.11, 0.88] of the figure.
 */
#define _POSIX_C_SOURCE 200809L

#include "report.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define PT (100.0 / 72.0)   /* pixels per point */
#define FONT_PX (10.0 * PT) /* matplotlib's default font size */
#define FONT_FAMILY "DejaVu Sans, Bitstream Vera Sans, Arial, Helvetica, sans-serif"
#define SVG_NS "http://www.w3.org/2000/svg"
#define XLINK_NS "http://www.w3.org/1999/xlink"
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"

/* matplotlib's tab10 colour cycle. */
static const char *const TAB10[10] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"
};

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

/*
 * The shortest "%g" form that reads back as the same float: 0.8978 rather
 * than 0.897800028.  NaN and infinities as Python prints them.
 */
static void format_float(char *buf, size_t size, float v)
{
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
        return;
    }
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, size, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

/*
 * Writes s with the five XML special characters escaped, so it is safe in
 * text and in quoted attributes.  Control characters that XML 1.0 forbids
 * become '?'.
 */
static void put_xml(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                fputc('?', out);
            else
                fputc(c, out);
        }
    }
}

/*
 * Advance widths of DejaVu Sans (matplotlib's font) for ' '..'~', in
 * thousandths of the font size: enough to size legends and margins.
 */
static const unsigned short GLYPH_WIDTH[95] = {
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361,
    318, 337, 636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337,
    838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295,
    295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989,
    685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615,
    352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521,
    392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838
};

/* Estimated width in pixels of s drawn at font size px. */
static double text_width(const char *s, double px)
{
    double w = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7F)
            w += GLYPH_WIDTH[c - 0x20];
        else if ((c & 0xC0) != 0x80)
            w += 650; /* a non-ASCII character: a typical width */
    }
    return w * px / 1000.0;
}

/* ---- axis ticks ---- */

typedef struct ticks {
    long first;      /* the first tick is first * step */
    int count;
    double step;
    int decimals;    /* for the labels */
} ticks;

/*
 * Round ticks inside [lo, hi]: the smallest step of the form
 * {1, 2, 2.5, 5} x 10^k (only {1, 2, 5} when integer) that gives at most
 * max_ticks ticks, as matplotlib's MaxNLocator chooses.
 */
static ticks nice_ticks(double lo, double hi, int max_ticks, int integer)
{
    static const double mult[4] = { 1, 2, 2.5, 5 };
    ticks t = { 0, 0, 1, 0 };
    double span = hi - lo;
    int k0;

    if (!(span > 0) || !isfinite(span))
        span = 1;
    k0 = (int)floor(log10(span / max_ticks)) - 1;
    if (integer && k0 < 0)
        k0 = 0;
    for (int k = k0; k < k0 + 5; k++) {
        for (int m = 0; m < 4; m++) {
            double step = mult[m] * pow(10.0, k);
            double a, b;
            if (integer && m == 2)
                continue;
            a = ceil(lo / step - 1e-9);
            b = floor(hi / step + 1e-9);
            if (b - a + 1 <= max_ticks) {
                t.first = (long)a;
                t.count = (int)(b - a + 1);
                t.step = step;
                t.decimals = -k + (m == 2);
                if (t.decimals < 0)
                    t.decimals = 0;
                return t;
            }
        }
    }
    return t;
}

static double tick_value(const ticks *t, int i)
{
    double v = (double)(t->first + i) * t->step;
    return fabs(v) < t->step * 1e-9 ? 0.0 : v; /* never "-0.00" */
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

/* ==== writing files =================================================== */

/* Writes the content of one file to out; -1 with errno on failure. */
typedef int (*emit_fn)(FILE *out, const void *arg);

/*
 * Writes path through emit into "path.tmp", flushes it to disk, and
 * renames it over path.  On failure, removes the temporary file, prints
 * a message naming path, and returns -1 with errno kept.
 */
static int write_file(const char *path, emit_fn emit, const void *arg)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    FILE *f = NULL;
    int err = 0;

    if (tmp == NULL) {
        err = ENOMEM;
        goto fail;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);

    f = fopen(tmp, "wb");
    if (f == NULL) {
        err = errno;
        goto fail;
    }
    errno = 0;
    if (emit(f, arg) != 0) {
        err = errno ? errno : EINVAL;
        goto fail;
    }
    if (fflush(f) != 0 || ferror(f)) {
        err = errno ? errno : EIO;
        goto fail;
    }
    if (fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS) {
        err = errno;
        goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL;
        err = errno ? errno : EIO;
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        err = errno;
        goto fail;
    }
    free(tmp);
    return 0;

fail:
    if (f != NULL)
        fclose(f);
    if (tmp != NULL) {
        remove(tmp);
        free(tmp);
    }
    fprintf(stderr, "report: cannot write %s: %s\n", path, strerror(err));
    errno = err;
    return -1;
}

/* ==== CSV ============================================================= */

/* One CSV field, quoted as RFC 4180 asks when it needs to be. */
static void put_csv_text(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* ",value" where values may be NULL (an empty field). */
static void put_csv_float(FILE *out, const float *values, int i)
{
    char buf[32];
    fputc(',', out);
    if (values == NULL || i < 0)
        return;
    format_float(buf, sizeof buf, values[i]);
    fputs(buf, out);
}

typedef struct runs_arg {
    const report_run *runs;
    int count;
} runs_arg;

static int emit_results_csv(FILE *out, const void *arg)
{
    const runs_arg *a = arg;
    fputs(REPORT_RESULTS_CSV_HEADER "\n", out);
    for (int i = 0; i < a->count; i++) {
        const report_run *r = &a->runs[i];
        int last = r->epochs - 1;
        char buf[32];
        put_csv_text(out, r->name ? r->name : "");
        put_csv_float(out, r->loss, last);
        put_csv_float(out, r->accuracy, last);
        put_csv_float(out, r->val_loss, last);
        put_csv_float(out, r->val_accuracy, last);
        format_float(buf, sizeof buf, r->test_loss);
        fprintf(out, ",%s", buf);
        format_float(buf, sizeof buf, r->test_accuracy);
        fprintf(out, ",%s,%.3f\n", buf, r->seconds);
    }
    return 0;
}

static int emit_history_csv(FILE *out, const void *arg)
{
    const runs_arg *a = arg;
    fputs(REPORT_HISTORY_CSV_HEADER "\n", out);
    for (int i = 0; i < a->count; i++) {
        const report_run *r = &a->runs[i];
        for (int e = 0; e < r->epochs; e++) {
            put_csv_text(out, r->name ? r->name : "");
            fprintf(out, ",%d", e + 1);
            put_csv_float(out, r->loss, e);
            put_csv_float(out, r->accuracy, e);
            put_csv_float(out, r->val_loss, e);
            put_csv_float(out, r->val_accuracy, e);
            fputc('\n', out);
        }
    }
    return 0;
}

static int check_runs(const char *path, const report_run *runs, int count)
{
    if (path == NULL || count < 0 || (count > 0 && runs == NULL)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int report_write_results_csv(const char *path, const report_run *runs,
                             int run_count)
{
    runs_arg a = { runs, run_count };
    if (check_runs(path, runs, run_count) != 0)
        return -1;
    return write_file(path, emit_results_csv, &a);
}

int report_write_history_csv(const char *path, const report_run *runs,
                             int run_count)
{
    runs_arg a = { runs, run_count };
    if (check_runs(path, runs, run_count) != 0)
        return -1;
    return write_file(path, emit_history_csv, &a);
}

/* ==== the line chart ================================================== */

const report_chart REPORT_CHART_VAL_ACCURACY = {
    "Comparison of Validation (Test) Accuracy", "Accuracy",
    REPORT_VAL_ACCURACY, 0, NULL
};

const report_chart REPORT_CHART_VAL_LOSS = {
    "Comparison of Validation Loss (Lower is Better)", "Loss",
    REPORT_VAL_LOSS, 1, " (Val Loss)"
};

static const float *run_series(const report_run *r, report_series s)
{
    switch (s) {
    case REPORT_LOSS: return r->loss;
    case REPORT_ACCURACY: return r->accuracy;
    case REPORT_VAL_LOSS: return r->val_loss;
    case REPORT_VAL_ACCURACY: return r->val_accuracy;
    }
    return NULL;
}

static const char *series_id(report_series s)
{
    switch (s) {
    case REPORT_LOSS: return "loss";
    case REPORT_ACCURACY: return "accuracy";
    case REPORT_VAL_LOSS: return "val_loss";
    case REPORT_VAL_ACCURACY: return "val_accuracy";
    }
    return "series";
}

typedef struct box {
    double x0, y0, x1, y1; /* left, top, right, bottom */
} box;

static int box_contains(const box *b, double x, double y)
{
    return x >= b->x0 && x <= b->x1 && y >= b->y0 && y <= b->y1;
}

/* Does the segment (ax, ay)-(bx, by) touch the box?  (Liang-Barsky) */
static int segment_hits_box(const box *b, double ax, double ay,
                            double bx, double by)
{
    double t0 = 0, t1 = 1, dx = bx - ax, dy = by - ay;
    double p[4] = { -dx, dx, -dy, dy };
    double q[4] = { ax - b->x0, b->x1 - ax, ay - b->y0, b->y1 - ay };
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
        } else {
            double t = q[i] / p[i];
            if (p[i] < 0) {
                if (t > t1)
                    return 0;
                if (t > t0)
                    t0 = t;
            } else {
                if (t < t0)
                    return 0;
                if (t < t1)
                    t1 = t;
            }
        }
    }
    return 1;
}

/* Maps data to pixels. */
typedef struct chart_map {
    box ax;
    double xlo, xhi, ylo, yhi;
} chart_map;

static double map_x(const chart_map *m, double x)
{
    return m->ax.x0 + (x - m->xlo) / (m->xhi - m->xlo) * (m->ax.x1 - m->ax.x0);
}

static double map_y(const chart_map *m, double y)
{
    return m->ax.y1 - (y - m->ylo) / (m->yhi - m->ylo) * (m->ax.y1 - m->ax.y0);
}

/*
 * How badly a legend at b hides the curves: data points inside it plus
 * curves crossing it, as matplotlib's loc='best' counts.
 */
static int legend_badness(const box *b, const chart_map *m,
                          const report_chart *c, const report_run *runs,
                          int count)
{
    int bad = 0;
    for (int i = 0; i < count; i++) {
        const float *v = run_series(&runs[i], c->series);
        int crosses = 0;
        if (v == NULL)
            continue;
        for (int e = 0; e < runs[i].epochs; e++) {
            double x, y;
            if (!isfinite(v[e]))
                continue;
            x = map_x(m, e + 1);
            y = map_y(m, v[e]);
            bad += box_contains(b, x, y);
            if (e > 0 && isfinite(v[e - 1]) &&
                segment_hits_box(b, map_x(m, e), map_y(m, v[e - 1]), x, y))
                crosses = 1;
        }
        bad += crosses;
    }
    return bad;
}

int report_svg_line_chart(FILE *out, const report_chart *c,
                          const report_run *runs, int count)
{
    const double W = 1200, H = 600, fs = FONT_PX;
    const double tick_len = 3.5 * PT, tick_pad = 3.5 * PT;
    const double line_w = 1.5 * PT, marker_r = 3.0 * PT;
    const char *id = series_id(c ? c->series : REPORT_LOSS);
    chart_map m;
    int emax = 0, entries = 0;
    double lo = INFINITY, hi = -INFINITY;
    double label_w = 0;
    ticks xt, yt;

    if (out == NULL || c == NULL || count < 0 || (count > 0 && runs == NULL)) {
        errno = EINVAL;
        return -1;
    }

    /* ---- data ranges ---- */
    for (int i = 0; i < count; i++) {
        const float *v = run_series(&runs[i], c->series);
        if (v == NULL || runs[i].epochs < 1)
            continue;
        entries++;
        if (runs[i].epochs > emax)
            emax = runs[i].epochs;
        for (int e = 0; e < runs[i].epochs; e++) {
            if (!isfinite(v[e]))
                continue;
            if (v[e] < lo)
                lo = v[e];
            if (v[e] > hi)
                hi = v[e];
        }
    }
    m.ax.x0 = 0.125 * W;
    m.ax.x1 = 0.9 * W;
    m.ax.y0 = (1 - 0.88) * H;
    m.ax.y1 = (1 - 0.11) * H;
    if (emax >= 2) {
        double pad = 0.05 * (emax - 1);
        m.xlo = 1 - pad;
        m.xhi = emax + pad;
    } else {
        m.xlo = 0.5;
        m.xhi = 1.5;
    }
    if (!(lo <= hi)) {
        m.ylo = 0;
        m.yhi = 1;
    } else if (hi - lo <= 1e-9 * fmax(1.0, fabs(hi))) {
        double pad = fmax(0.05 * fabs(hi), 0.05);
        m.ylo = lo - pad;
        m.yhi = hi + pad;
    } else {
        double pad = 0.05 * (hi - lo);
        m.ylo = lo - pad;
        m.yhi = hi + pad;
    }
    xt = nice_ticks(m.xlo, m.xhi, 10, 1);
    yt = nice_ticks(m.ylo, m.yhi, 8, 0);

    fprintf(out, "<svg xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"" FONT_FAMILY "\">\n", W, H, W, H);
    fputs("<title>", out);
    put_xml(out, c->title ? c->title : "");
    fputs("</title>\n", out);
    fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    fprintf(out, "<defs><clipPath id=\"%s-clip\"><rect x=\"%.2f\" y=\"%.2f\" "
            "width=\"%.2f\" height=\"%.2f\"/></clipPath></defs>\n", id,
            m.ax.x0, m.ax.y0, m.ax.x1 - m.ax.x0, m.ax.y1 - m.ax.y0);

    /* ---- grid (below the curves) ---- */
    fprintf(out, "<g stroke=\"#b0b0b0\" stroke-width=\"%.2f\" fill=\"none\">\n",
            0.8 * PT);
    for (int i = 0; i < xt.count; i++) {
        double x = map_x(&m, tick_value(&xt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x, m.ax.y0, x, m.ax.y1);
    }
    for (int i = 0; i < yt.count; i++) {
        double y = map_y(&m, tick_value(&yt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                m.ax.x0, y, m.ax.x1, y);
    }
    fputs("</g>\n", out);

    /* ---- curves and markers ---- */
    fprintf(out, "<g clip-path=\"url(#%s-clip)\">\n", id);
    for (int i = 0, k = 0; i < count; i++) {
        const float *v = run_series(&runs[i], c->series);
        const char *color = TAB10[k % 10];
        int pen_down = 0, started = 0;
        if (v == NULL || runs[i].epochs < 1)
            continue;
        k++;
        for (int e = 0; e < runs[i].epochs; e++) {
            if (!isfinite(v[e])) {
                pen_down = 0;
                continue;
            }
            if (!started) {
                fprintf(out, "<path fill=\"none\" stroke=\"%s\" "
                        "stroke-width=\"%.2f\" stroke-linejoin=\"round\"%s d=\"",
                        color, line_w, c->dashed
                        ? " stroke-linecap=\"butt\" stroke-dasharray=\"7.71 3.33\""
                        : " stroke-linecap=\"square\"");
                started = 1;
            }
            fprintf(out, "%s%.2f %.2f ", pen_down ? "L" : "M",
                    map_x(&m, e + 1), map_y(&m, v[e]));
            pen_down = 1;
        }
        if (started)
            fputs("\"/>\n", out);
        fprintf(out, "<g fill=\"%s\">", color);
        for (int e = 0; e < runs[i].epochs; e++)
            if (isfinite(v[e]))
                fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"/>",
                        map_x(&m, e + 1), map_y(&m, v[e]), marker_r);
        fputs("</g>\n", out);
    }
    fputs("</g>\n", out);

    /* ---- frame, ticks and tick labels ---- */
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
            "fill=\"none\" stroke=\"#000000\" stroke-width=\"%.2f\"/>\n",
            m.ax.x0, m.ax.y0, m.ax.x1 - m.ax.x0, m.ax.y1 - m.ax.y0, 0.8 * PT);
    fprintf(out, "<g stroke=\"#000000\" stroke-width=\"%.2f\">\n", 0.8 * PT);
    for (int i = 0; i < xt.count; i++) {
        double x = map_x(&m, tick_value(&xt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x, m.ax.y1, x, m.ax.y1 + tick_len);
    }
    for (int i = 0; i < yt.count; i++) {
        double y = map_y(&m, tick_value(&yt, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                m.ax.x0 - tick_len, y, m.ax.x0, y);
    }
    fputs("</g>\n", out);
    fprintf(out, "<g font-size=\"%.2f\" fill=\"#000000\">\n", fs);
    for (int i = 0; i < xt.count; i++)
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.0f</text>\n",
                map_x(&m, tick_value(&xt, i)),
                m.ax.y1 + tick_len + tick_pad + 0.76 * fs, tick_value(&xt, i));
    for (int i = 0; i < yt.count; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.*f", yt.decimals, tick_value(&yt, i));
        if (text_width(buf, fs) > label_w)
            label_w = text_width(buf, fs);
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                m.ax.x0 - tick_len - tick_pad,
                map_y(&m, tick_value(&yt, i)) + 0.36 * fs, buf);
    }

    /* ---- axis labels and title ---- */
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">Epoch</text>\n",
            (m.ax.x0 + m.ax.x1) / 2,
            m.ax.y1 + tick_len + tick_pad + fs + 4 * PT + 0.76 * fs);
    {
        double x = m.ax.x0 - tick_len - tick_pad - label_w - 4 * PT - 0.24 * fs;
        double y = (m.ax.y0 + m.ax.y1) / 2;
        fprintf(out, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" "
                "text-anchor=\"middle\">", x, y);
        put_xml(out, c->ylabel ? c->ylabel : "");
        fputs("</text>\n", out);
    }
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
            "font-size=\"%.2f\">", (m.ax.x0 + m.ax.x1) / 2, m.ax.y0 - 6 * PT,
            12 * PT);
    put_xml(out, c->title ? c->title : "");
    fputs("</text>\n</g>\n", out);

    /* ---- legend, where it hides the least ---- */
    if (entries > 0) {
        const char *suffix = c->legend_suffix ? c->legend_suffix : "";
        double text_w = 0, row = fs * 1.2, w, h, cx, cy, pad = 0.5 * fs;
        box best = { 0, 0, 0, 0 };
        int best_bad = -1;
        for (int i = 0; i < count; i++) {
            double tw;
            if (run_series(&runs[i], c->series) == NULL || runs[i].epochs < 1)
                continue;
            tw = text_width(runs[i].name ? runs[i].name : "", fs) +
                 text_width(suffix, fs);
            if (tw > text_w)
                text_w = tw;
        }
        w = 0.4 * fs + 2.0 * fs + 0.8 * fs + text_w + 0.4 * fs;
        h = 0.8 * fs + entries * row + (entries - 1) * 0.5 * fs;
        cx = (m.ax.x0 + m.ax.x1 - w) / 2;
        cy = (m.ax.y0 + m.ax.y1 - h) / 2;
        /* matplotlib's order: upper right, upper left, lower left, lower
         * right, right, center left, lower center, upper center, center */
        {
            double xl = m.ax.x0 + pad, xr = m.ax.x1 - pad - w;
            double yt_ = m.ax.y0 + pad, yb = m.ax.y1 - pad - h;
            double xs[9] = { xr, xl, xl, xr, xr, xl, cx, cx, cx };
            double ys[9] = { yt_, yt_, yb, yb, cy, cy, yb, yt_, cy };
            for (int i = 0; i < 9; i++) {
                box b = { xs[i], ys[i], xs[i] + w, ys[i] + h };
                int bad = legend_badness(&b, &m, c, runs, count);
                if (best_bad < 0 || bad < best_bad) {
                    best_bad = bad;
                    best = b;
                }
            }
        }
        fprintf(out, "<g font-size=\"%.2f\">\n", fs);
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "rx=\"%.2f\" fill=\"#ffffff\" fill-opacity=\"0.8\" "
                "stroke=\"#cccccc\" stroke-width=\"%.2f\"/>\n",
                best.x0, best.y0, w, h, 0.2 * fs, 1.0 * PT);
        for (int i = 0, k = 0; i < count; i++) {
            double y, x;
            const char *color = TAB10[k % 10];
            if (run_series(&runs[i], c->series) == NULL || runs[i].epochs < 1)
                continue;
            y = best.y0 + 0.4 * fs + k * (row + 0.5 * fs) + row / 2;
            x = best.x0 + 0.4 * fs;
            k++;
            fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                    "stroke=\"%s\" stroke-width=\"%.2f\"%s/>",
                    x, y, x + 2 * fs, y, color, line_w,
                    c->dashed ? " stroke-dasharray=\"7.71 3.33\"" : "");
            fprintf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\"/>",
                    x + fs, y, marker_r, color);
            fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">", x + 2.8 * fs, y + 0.36 * fs);
            put_xml(out, runs[i].name ? runs[i].name : "");
            put_xml(out, suffix);
            fputs("</text>\n", out);
        }
        fputs("</g>\n", out);
    }
    fputs("</svg>\n", out);
    return 0;
}

/* ==== the confusion matrix heatmap ==================================== */

/* matplotlib's 'Blues' (ColorBrewer), 9 evenly spaced stops. */
static const double BLUES[9][3] = {
    { 0.96862745098039216, 0.98431372549019602, 1.0 },
    { 0.87058823529411766, 0.92156862745098034, 0.96862745098039216 },
    { 0.77647058823529413, 0.85882352941176465, 0.93725490196078431 },
    { 0.61960784313725492, 0.792156862745098, 0.88235294117647056 },
    { 0.41960784313725491, 0.68235294117647061, 0.83921568627450982 },
    { 0.25882352941176473, 0.5725490196078431, 0.77647058823529413 },
    { 0.12941176470588237, 0.44313725490196076, 0.70980392156862748 },
    { 0.03137254901960784, 0.31764705882352939, 0.61176470588235299 },
    { 0.03137254901960784, 0.18823529411764706, 0.41960784313725491 }
};

/* The colour of t in [0, 1], through the 256-entry lookup table as
 * matplotlib's Colormap.__call__ picks it. */
static void blues(double t, double rgb[3])
{
    int idx;
    double x, f;
    int s;
    if (!(t >= 0))
        t = 0;
    idx = t >= 1 ? 255 : (int)(t * 256);
    x = idx / 255.0 * 8;
    s = (int)x;
    if (s >= 8)
        s = 7;
    f = x - s;
    for (int i = 0; i < 3; i++)
        rgb[i] = BLUES[s][i] + f * (BLUES[s + 1][i] - BLUES[s][i]);
}

/* seaborn's utils.relative_luminance. */
static double luminance(const double rgb[3])
{
    static const double k[3] = { 0.2126, 0.7152, 0.0722 };
    double lum = 0;
    for (int i = 0; i < 3; i++) {
        double c = rgb[i] <= 0.03928 ? rgb[i] / 12.92
                                     : pow((rgb[i] + 0.055) / 1.055, 2.4);
        lum += k[i] * c;
    }
    return lum;
}

static void put_rgb(FILE *out, const double rgb[3])
{
    fprintf(out, "#%02x%02x%02x", (int)lround(rgb[0] * 255),
            (int)lround(rgb[1] * 255), (int)lround(rgb[2] * 255));
}

int report_svg_confusion(FILE *out, const long *matrix, int num_classes,
                         const char *const *class_names)
{
    const double W = 1000, H = 800, fs = FONT_PX;
    const double tick_len = 3.5 * PT, tick_pad = 3.5 * PT;
    const double cos45 = 0.70710678118654752;
    size_t k = (size_t)num_classes;
    double name_w = 0, x0, x1, y0, y1, cw, ch, afs;
    double cb_x0, cb_w = 30, vmin, vmax, max_digits;
    long lmin, lmax;
    ticks ct;

    if (out == NULL || matrix == NULL || class_names == NULL || num_classes < 1) {
        errno = EINVAL;
        return -1;
    }
    lmin = lmax = matrix[0];
    for (size_t i = 0; i < k * k; i++) {
        if (matrix[i] < lmin)
            lmin = matrix[i];
        if (matrix[i] > lmax)
            lmax = matrix[i];
    }
    vmin = (double)lmin;
    vmax = (double)lmax;
    for (size_t c = 0; c < k; c++)
        if (text_width(class_names[c], fs) > name_w)
            name_w = text_width(class_names[c], fs);
    {
        char buf[32];
        max_digits = snprintf(buf, sizeof buf, "%ld", lmax);
        if (snprintf(buf, sizeof buf, "%ld", lmin) > max_digits)
            max_digits = snprintf(buf, sizeof buf, "%ld", lmin);
    }

    /* Layout: room for the names on the left and, rotated 45 degrees,
     * below; the colour bar on the right, as seaborn steals it. */
    x0 = fmax(0.125 * W, 20 + 1.2 * fs + 8 + name_w + tick_len + tick_pad);
    cb_x0 = W - 0.1 * W - cb_w;
    x1 = cb_x0 - 0.05 * (cb_x0 - x0);
    y0 = 0.12 * H;
    y1 = H - fmax(0.11 * H, tick_len + tick_pad + (name_w + fs) * cos45 +
                              6 * PT + 1.2 * fs + 16);
    cw = (x1 - x0) / (double)k;
    ch = (y1 - y0) / (double)k;
    afs = fmin(fs, fmin(ch * 0.45, cw / (max_digits * 0.64 + 0.4)));

    fprintf(out, "<svg xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"" FONT_FAMILY "\">\n", W, H, W, H);
    fputs("<title>Confusion Matrix: Where is the model making mistakes?</title>\n", out);
    fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);

    /* ---- cells ---- */
    fputs("<g shape-rendering=\"crispEdges\">\n", out);
    for (size_t r = 0; r < k; r++)
        for (size_t c = 0; c < k; c++) {
            double rgb[3];
            double t = vmax > vmin ? ((double)matrix[r * k + c] - vmin) / (vmax - vmin) : 0;
            blues(t, rgb);
            fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"",
                    x0 + (double)c * cw, y0 + (double)r * ch, cw + 0.5, ch + 0.5);
            put_rgb(out, rgb);
            fputs("\"/>\n", out);
        }
    fputs("</g>\n", out);

    /* ---- counts: white on dark cells, dark grey on light ones ---- */
    fprintf(out, "<g font-size=\"%.2f\" text-anchor=\"middle\">\n", afs);
    for (size_t r = 0; r < k; r++)
        for (size_t c = 0; c < k; c++) {
            double rgb[3];
            double t = vmax > vmin ? ((double)matrix[r * k + c] - vmin) / (vmax - vmin) : 0;
            blues(t, rgb);
            fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" fill=\"%s\">%ld</text>\n",
                    x0 + ((double)c + 0.5) * cw, y0 + ((double)r + 0.5) * ch + 0.36 * afs,
                    luminance(rgb) > 0.408 ? "#262626" : "#ffffff", matrix[r * k + c]);
        }
    fputs("</g>\n", out);

    /* ---- ticks and class names ---- */
    fprintf(out, "<g stroke=\"#000000\" stroke-width=\"%.2f\">\n", 0.8 * PT);
    for (size_t i = 0; i < k; i++) {
        double x = x0 + ((double)i + 0.5) * cw, y = y0 + ((double)i + 0.5) * ch;
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>",
                x, y1, x, y1 + tick_len);
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                x0 - tick_len, y, x0, y);
    }
    fputs("</g>\n", out);
    fprintf(out, "<g font-size=\"%.2f\" fill=\"#000000\">\n", fs);
    for (size_t i = 0; i < k; i++) {
        double x = x0 + ((double)i + 0.5) * cw, y = y0 + ((double)i + 0.5) * ch;
        /* rotated 45 degrees, its end at the tick */
        fprintf(out, "<text transform=\"translate(%.2f %.2f) rotate(-45)\" "
                "text-anchor=\"end\">", x + 0.5 * fs * cos45,
                y1 + tick_len + tick_pad + 0.5 * fs * cos45);
        put_xml(out, class_names[i]);
        fputs("</text>\n", out);
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">",
                x0 - tick_len - tick_pad, y + 0.36 * fs);
        put_xml(out, class_names[i]);
        fputs("</text>\n", out);
    }

    /* ---- axis labels and title ---- */
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">Predicted Label</text>\n",
            (x0 + x1) / 2, y1 + tick_len + tick_pad + (name_w + fs) * cos45 + 6 * PT + 0.76 * fs);
    fprintf(out, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" "
            "text-anchor=\"middle\">Actual Label</text>\n",
            x0 - tick_len - tick_pad - name_w - 6 * PT - 0.24 * fs, (y0 + y1) / 2);
    fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"%.2f\">"
            "Confusion Matrix: Where is the model making mistakes?</text>\n",
            (x0 + x1) / 2, y0 - 6 * PT, 12 * PT);
    fputs("</g>\n", out);

    /* ---- colour bar ---- */
    fputs("<defs><linearGradient id=\"confusion-blues\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">", out);
    for (int i = 0; i < 9; i++) {
        fprintf(out, "<stop offset=\"%.4f\" stop-color=\"", i / 8.0);
        put_rgb(out, BLUES[i]);
        fputs("\"/>", out);
    }
    fputs("</linearGradient></defs>\n", out);
    fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
            "fill=\"url(#confusion-blues)\"/>\n", cb_x0, y0, cb_w, y1 - y0);
    {
        double lo = vmin, hi = vmax > vmin ? vmax : vmin + 1;
        ct = nice_ticks(lo, hi, 8, hi - lo >= 4);
        fprintf(out, "<g font-size=\"%.2f\" fill=\"#000000\" stroke-width=\"%.2f\">\n",
                fs, 0.8 * PT);
        for (int i = 0; i < ct.count; i++) {
            double v = tick_value(&ct, i);
            double y = y1 - (v - lo) / (hi - lo) * (y1 - y0);
            fprintf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                    "stroke=\"#000000\"/>", cb_x0 + cb_w, y, cb_x0 + cb_w + tick_len, y);
            fprintf(out, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n",
                    cb_x0 + cb_w + tick_len + tick_pad, y + 0.36 * fs,
                    ct.decimals, v);
        }
        fputs("</g>\n", out);
    }
    fputs("</svg>\n", out);
    return 0;
}

/* ==== PNG, base64 and the prediction grid ============================= */

void report_gray_binary(uint8_t *gray, const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        float v = values[i];
        if (!(v > 0))
            v = 0; /* also NaN */
        if (v > 1)
            v = 1;
        gray[i] = (uint8_t)lrintf(255.0f - v * 255.0f);
    }
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Appends a chunk: length, type, data, CRC-32 of type and data. */
static unsigned char *put_chunk(unsigned char *p, const char type[4],
                                const unsigned char *data, uint32_t len)
{
    uLong crc;
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (len > 0)
        memcpy(p + 8, data, len);
    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, (uInt)(4 + len));
    put_be32(p + 8 + len, (uint32_t)crc);
    return p + 12 + len;
}

int report_png_gray(unsigned char **png, size_t *size, const uint8_t *pixels,
                    int width, int height)
{
    static const unsigned char signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };
    unsigned char ihdr[13];
    unsigned char *raw = NULL, *z = NULL, *buf = NULL, *p;
    size_t row = (size_t)width + 1, raw_len;
    uLongf z_len;

    if (png == NULL || size == NULL || pixels == NULL || width < 1 ||
        height < 1 || width > (1 << 20) || height > (1 << 20)) {
        errno = EINVAL;
        return -1;
    }
    raw_len = row * (size_t)height;
    raw = malloc(raw_len);
    z_len = compressBound((uLong)raw_len);
    z = malloc(z_len);
    if (raw == NULL || z == NULL)
        goto nomem;
    for (int y = 0; y < height; y++) {
        raw[(size_t)y * row] = 0; /* filter type None */
        memcpy(raw + (size_t)y * row + 1, pixels + (size_t)y * (size_t)width,
               (size_t)width);
    }
    if (compress2(z, &z_len, raw, (uLong)raw_len, Z_BEST_COMPRESSION) != Z_OK)
        goto nomem;

    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;   /* bit depth */
    ihdr[9] = 0;   /* colour type: grayscale */
    ihdr[10] = 0;  /* compression: deflate */
    ihdr[11] = 0;  /* filter method 0 */
    ihdr[12] = 0;  /* no interlace */

    buf = malloc(8 + (12 + 13) + (12 + z_len) + 12);
    if (buf == NULL)
        goto nomem;
    memcpy(buf, signature, 8);
    p = put_chunk(buf + 8, "IHDR", ihdr, 13);
    p = put_chunk(p, "IDAT", z, (uint32_t)z_len);
    p = put_chunk(p, "IEND", NULL, 0);
    *png = buf;
    *size = (size_t)(p - buf);
    free(raw);
    free(z);
    return 0;

nomem:
    free(raw);
    free(z);
    free(buf);
    errno = ENOMEM;
    return -1;
}

char *report_base64(const void *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    char *out, *o;

    if (size > (SIZE_MAX - 1) / 4 * 3 - 3 || (size > 0 && data == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    out = malloc((size + 2) / 3 * 4 + 1);
    if (out == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    o = out;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < size)
            v |= in[i + 2];
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
        *o++ = i + 2 < size ? alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* One image as a base64 PNG drawn with the 'binary' colormap. */
static char *image_base64(const float *values, int width, int height)
{
    size_t n = (size_t)width * (size_t)height, png_size;
    uint8_t *gray = malloc(n);
    unsigned char *png = NULL;
    char *b64 = NULL;

    if (gray == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    report_gray_binary(gray, values, n);
    if (report_png_gray(&png, &png_size, gray, width, height) == 0)
        b64 = report_base64(png, png_size);
    free(gray);
    free(png);
    return b64;
}

int report_svg_predictions(FILE *out, const report_images *im,
                           const char *const *class_names, int columns)
{
    const double cell_w = 300, cell_h = 1000.0 / 3, fs = FONT_PX;
    const double line = 1.25 * fs;
    int rows, n;
    double W, H, side;

    if (out == NULL || im == NULL || class_names == NULL || columns < 1 ||
        im->count < 0 || (im->count > 0 &&
        (im->pixels == NULL || im->true_class == NULL || im->pred_class == NULL ||
         im->width < 1 || im->height < 1))) {
        errno = EINVAL;
        return -1;
    }
    n = im->count;
    rows = n > 0 ? (n + columns - 1) / columns : 1;
    if (columns > n && n > 0)
        columns = n;
    W = cell_w * columns;
    H = cell_h * rows;
    side = fmin(cell_w - 40, cell_h - 2 * line - 40);

    fprintf(out, "<svg xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"" FONT_FAMILY "\" font-size=\"%.2f\">\n",
            W, H, W, H, fs);
    fputs("<title>Predictions on the first test images</title>\n", out);
    fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    if (n == 0)
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">"
                "No images</text>\n", W / 2, H / 2);
    for (int i = 0; i < n; i++) {
        size_t px = (size_t)im->width * (size_t)im->height;
        double cx = (i % columns + 0.5) * cell_w;
        double top = (i / columns) * cell_h + 2 * line + 18;
        double x = cx - side / 2;
        double img_h = side * im->height / im->width;
        int t = im->true_class[i], p = im->pred_class[i];
        const char *color = t == p ? "#008000" : "#ff0000";
        char *b64 = image_base64(im->pixels + (size_t)i * px, im->width, im->height);

        if (b64 == NULL)
            return -1;
        fprintf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" fill=\"%s\">"
                "<tspan x=\"%.2f\" y=\"%.2f\">Pred: ", cx, top - line - 8, color,
                cx, top - line - 8);
        put_xml(out, p >= 0 ? class_names[p] : "?");
        fprintf(out, "</tspan><tspan x=\"%.2f\" y=\"%.2f\">True: ", cx, top - 8);
        put_xml(out, t >= 0 ? class_names[t] : "?");
        fputs("</tspan></text>\n", out);
        fprintf(out, "<image x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "preserveAspectRatio=\"none\" image-rendering=\"optimizeSpeed\" "
                "style=\"image-rendering:pixelated\" "
                "href=\"data:image/png;base64,%s\" "
                "xlink:href=\"data:image/png;base64,%s\"/>\n",
                x, top, side, img_h, b64, b64);
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                "fill=\"none\" stroke=\"#000000\" stroke-width=\"%.2f\"/>\n",
                x, top, side, img_h, 0.8 * PT);
        free(b64);
    }
    fputs("</svg>\n", out);
    return 0;
}

/* ==== standalone SVG files ============================================ */

typedef struct chart_arg {
    const report_chart *chart;
    const report_run *runs;
    int count;
} chart_arg;

static int emit_line_chart(FILE *out, const void *arg)
{
    const chart_arg *a = arg;
    fputs(XML_DECL, out);
    return report_svg_line_chart(out, a->chart, a->runs, a->count);
}

int report_write_line_chart(const char *path, const report_chart *chart,
                            const report_run *runs, int run_count)
{
    chart_arg a = { chart, runs, run_count };
    if (check_runs(path, runs, run_count) != 0 || chart == NULL) {
        errno = EINVAL;
        return -1;
    }
    return write_file(path, emit_line_chart, &a);
}

typedef struct confusion_arg {
    const long *matrix;
    int num_classes;
    const char *const *names;
} confusion_arg;

static int emit_confusion(FILE *out, const void *arg)
{
    const confusion_arg *a = arg;
    fputs(XML_DECL, out);
    return report_svg_confusion(out, a->matrix, a->num_classes, a->names);
}

int report_write_confusion(const char *path, const long *matrix,
                           int num_classes, const char *const *class_names)
{
    confusion_arg a = { matrix, num_classes, class_names };
    if (path == NULL || matrix == NULL || class_names == NULL || num_classes < 1) {
        errno = EINVAL;
        return -1;
    }
    return write_file(path, emit_confusion, &a);
}

typedef struct predictions_arg {
    const report_images *images;
    const char *const *names;
} predictions_arg;

static int emit_predictions(FILE *out, const void *arg)
{
    const predictions_arg *a = arg;
    fputs(XML_DECL, out);
    return report_svg_predictions(out, a->images, a->names, 5);
}

int report_write_predictions(const char *path, const report_images *images,
                             const char *const *class_names)
{
    predictions_arg a = { images, class_names };
    if (path == NULL || images == NULL || class_names == NULL) {
        errno = EINVAL;
        return -1;
    }
    return write_file(path, emit_predictions, &a);
}

typedef struct classification_arg {
    const report_metrics *metrics;
    const char *const *names;
} classification_arg;

static int emit_classification(FILE *out, const void *arg)
{
    const classification_arg *a = arg;
    char *text = report_classification_text(a->metrics, a->names, 2);
    if (text == NULL)
        return -1;
    fputs(text, out);
    free(text);
    return 0;
}

int report_write_classification(const char *path, const report_metrics *metrics,
                                const char *const *class_names)
{
    classification_arg a = { metrics, class_names };
    if (path == NULL || metrics == NULL || class_names == NULL) {
        errno = EINVAL;
        return -1;
    }
    return write_file(path, emit_classification, &a);
}

/* ==== the HTML page =================================================== */

static const char HTML_STYLE[] =
    "body { font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif; color: #222222;\n"
    "       max-width: 1240px; margin: 2em auto; padding: 0 1em; }\n"
    "h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em;\n"
    "     border-bottom: 1px solid #cccccc; padding-bottom: 0.2em; }\n"
    "table { border-collapse: collapse; font-size: 0.9em; }\n"
    "th, td { border: 1px solid #cccccc; padding: 0.25em 0.7em; }\n"
    "th { background: #f2f2f2; } td.num { text-align: right;\n"
    "     font-variant-numeric: tabular-nums; }\n"
    "tr:nth-child(even) td { background: #fafafa; }\n"
    "figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }\n"
    "pre { background: #f7f7f7; border: 1px solid #dddddd; padding: 1em;\n"
    "      overflow-x: auto; }\n"
    "p.note { color: #555555; }\n";

/* <td class="num">value</td>, or an empty cell when values is NULL. */
static void put_html_float(FILE *out, const float *values, int i, int decimals)
{
    fputs("<td class=\"num\">", out);
    if (values != NULL && i >= 0)
        fprintf(out, "%.*f", decimals, (double)values[i]);
    fputs("</td>", out);
}

static int emit_html(FILE *out, const void *arg)
{
    const report_data *d = arg;

    fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n"
          "<head>\n<meta charset=\"utf-8\"/>\n"
          "<title>libfmnn: five CNNs on Fashion-MNIST</title>\n<style>\n", out);
    fputs(HTML_STYLE, out);
    fputs("</style>\n</head>\n<body>\n"
          "<h1>Five CNNs on Fashion-MNIST: regularization and dropout</h1>\n", out);

    /* ---- results ---- */
    fputs("<h2>Results</h2>\n<table>\n<tr><th>Model</th><th>Train loss</th>"
          "<th>Train accuracy</th><th>Val loss</th><th>Val accuracy</th>"
          "<th>Test loss</th><th>Test accuracy</th><th>Seconds</th></tr>\n", out);
    for (int i = 0; i < d->run_count; i++) {
        const report_run *r = &d->runs[i];
        int last = r->epochs - 1;
        fputs("<tr><td>", out);
        put_xml(out, r->name ? r->name : "");
        fputs("</td>", out);
        put_html_float(out, r->loss, last, 4);
        put_html_float(out, r->accuracy, last, 4);
        put_html_float(out, r->val_loss, last, 4);
        put_html_float(out, r->val_accuracy, last, 4);
        put_html_float(out, &r->test_loss, 0, 4);
        put_html_float(out, &r->test_accuracy, 0, 4);
        fprintf(out, "<td class=\"num\">%.1f</td></tr>\n", r->seconds);
    }
    fputs("</table>\n<p class=\"note\">Train and validation columns are the "
          "last epoch's.</p>\n", out);

    /* ---- history ---- */
    fputs("<h2>History</h2>\n<table>\n<tr><th>Model</th><th>Epoch</th>"
          "<th>Loss</th><th>Accuracy</th><th>Val loss</th>"
          "<th>Val accuracy</th></tr>\n", out);
    for (int i = 0; i < d->run_count; i++) {
        const report_run *r = &d->runs[i];
        for (int e = 0; e < r->epochs; e++) {
            fputs("<tr><td>", out);
            put_xml(out, r->name ? r->name : "");
            fprintf(out, "</td><td class=\"num\">%d</td>", e + 1);
            put_html_float(out, r->loss, e, 4);
            put_html_float(out, r->accuracy, e, 4);
            put_html_float(out, r->val_loss, e, 4);
            put_html_float(out, r->val_accuracy, e, 4);
            fputs("</tr>\n", out);
        }
    }
    fputs("</table>\n", out);

    /* ---- charts ---- */
    fputs("<h2>Validation accuracy</h2>\n<figure>\n", out);
    if (report_svg_line_chart(out, &REPORT_CHART_VAL_ACCURACY, d->runs, d->run_count) != 0)
        return -1;
    fputs("</figure>\n<h2>Validation loss</h2>\n<figure>\n", out);
    if (report_svg_line_chart(out, &REPORT_CHART_VAL_LOSS, d->runs, d->run_count) != 0)
        return -1;
    fputs("</figure>\n", out);

    /* ---- predictions, confusion matrix, classification report ---- */
    if (d->images.count > 0) {
        fputs("<h2>Predictions", out);
        if (d->evaluated_model) {
            fputs(" of the ", out);
            put_xml(out, d->evaluated_model);
            fputs(" model", out);
        }
        fprintf(out, " on the first %d test images</h2>\n<figure>\n", d->images.count);
        if (report_svg_predictions(out, &d->images, d->class_names, 5) != 0)
            return -1;
        fputs("</figure>\n", out);
    }
    if (d->confusion != NULL) {
        fputs("<h2>Confusion matrix", out);
        if (d->evaluated_model) {
            fputs(" of the ", out);
            put_xml(out, d->evaluated_model);
            fputs(" model", out);
        }
        fputs("</h2>\n<figure>\n", out);
        if (report_svg_confusion(out, d->confusion, d->num_classes, d->class_names) != 0)
            return -1;
        fputs("</figure>\n", out);
    }
    if (d->metrics != NULL) {
        char *text = report_classification_text(d->metrics, d->class_names, 2);
        if (text == NULL)
            return -1;
        fputs("<h2>Classification report</h2>\n<pre>", out);
        put_xml(out, text);
        fputs("</pre>\n", out);
        free(text);
    }
    fputs("</body>\n</html>\n", out);
    return 0;
}

static int check_data(const report_data *d)
{
    if (d == NULL || d->run_count < 0 || (d->run_count > 0 && d->runs == NULL) ||
        ((d->confusion || d->metrics || d->images.count > 0) &&
         (d->class_names == NULL || d->num_classes < 1))) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int report_write_html(const char *path, const report_data *data)
{
    if (path == NULL || check_data(data) != 0) {
        errno = EINVAL;
        return -1;
    }
    return write_file(path, emit_html, data);
}

/* dir/name in a malloc'd string. */
static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int report_write_all(const char *dir, const report_data *d)
{
    enum { RESULTS, HISTORY, VAL_ACC, VAL_LOSS, PREDICTIONS, CONFUSION,
           CLASSIFICATION, HTML, FILES };
    static const char *const names[FILES] = {
        "results.csv", "history.csv", "val_accuracy.svg", "val_loss.svg",
        "predictions.svg", "confusion_matrix.svg",
        "classification_report.txt", "report.html"
    };
    int rc = 0;

    if (dir == NULL || check_data(d) != 0) {
        errno = EINVAL;
        return -1;
    }
    for (int f = 0; f < FILES && rc == 0; f++) {
        char *path = join_path(dir, names[f]);
        if (path == NULL)
            return -1;
        switch (f) {
        case RESULTS:
            rc = report_write_results_csv(path, d->runs, d->run_count);
            break;
        case HISTORY:
            rc = report_write_history_csv(path, d->runs, d->run_count);
            break;
        case VAL_ACC:
            rc = report_write_line_chart(path, &REPORT_CHART_VAL_ACCURACY,
                                         d->runs, d->run_count);
            break;
        case VAL_LOSS:
            rc = report_write_line_chart(path, &REPORT_CHART_VAL_LOSS,
                                         d->runs, d->run_count);
            break;
        case PREDICTIONS:
            if (d->images.count > 0)
                rc = report_write_predictions(path, &d->images, d->class_names);
            break;
        case CONFUSION:
            if (d->confusion != NULL)
                rc = report_write_confusion(path, d->confusion, d->num_classes,
                                            d->class_names);
            break;
        case CLASSIFICATION:
            if (d->metrics != NULL)
                rc = report_write_classification(path, d->metrics, d->class_names);
            break;
        case HTML:
            rc = report_write_html(path, d);
            break;
        }
        free(path);
    }
    return rc;
}
