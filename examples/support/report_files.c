/*
 * report_files.c - the files of report.h: results.csv and history.csv,
 * the standalone SVG files, classification_report.txt and report.html,
 * each written to "PATH.tmp" and renamed, and report_write_all().
 */
#define _POSIX_C_SOURCE 200809L

#include "report.h"
#include "report_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"

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
    const char *title = d->title ? d->title
                                 : "Five CNNs on Fashion-MNIST: regularization and dropout";

    fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n"
          "<head>\n<meta charset=\"utf-8\"/>\n<title>libfmnn: ", out);
    report__put_xml(out, title);
    fputs("</title>\n<style>\n", out);
    fputs(HTML_STYLE, out);
    fputs("</style>\n</head>\n<body>\n<h1>", out);
    report__put_xml(out, title);
    fputs("</h1>\n", out);

    /* ---- results ---- */
    fputs("<h2>Results</h2>\n<table>\n<tr><th>Model</th><th>Train loss</th>"
          "<th>Train accuracy</th><th>Val loss</th><th>Val accuracy</th>"
          "<th>Test loss</th><th>Test accuracy</th><th>Seconds</th></tr>\n", out);
    for (int i = 0; i < d->run_count; i++) {
        const report_run *r = &d->runs[i];
        int last = r->epochs - 1;
        fputs("<tr><td>", out);
        report__put_xml(out, r->name ? r->name : "");
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
            report__put_xml(out, r->name ? r->name : "");
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
            report__put_xml(out, d->evaluated_model);
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
            report__put_xml(out, d->evaluated_model);
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
        report__put_xml(out, text);
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
