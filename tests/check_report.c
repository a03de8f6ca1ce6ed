/*
 * check_report.c - the report writers of examples/support/report_*.c:
 * metrics against hand-computed values, scikit-learn's report layout,
 * well-formed SVG and XHTML (with a checker that is itself tested), the
 * PNG encoder, and the CSV files.  Needs no model: it runs in a second.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "support/report.h"
#include "xmlcheck.h"

#define TOL 1e-12

/* ---- helpers --------------------------------------------------------- */

/* A fresh temporary directory; free the result with remove_dir(). */
static char *make_dir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    ck_assert_ptr_nonnull(path);
    snprintf(path, 4096, "%s/fmnn-report-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp: %s", strerror(errno));
    return path;
}

/* Removes every file in dir, then dir, and frees the path. */
static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            remove(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

/* The whole content of dir/name, NUL-terminated (malloc'd). */
static char *slurp(const char *dir, const char *name, size_t *size)
{
    char path[4096];
    FILE *f;
    char *buf;
    long n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (size)
        *size = (size_t)n;
    return buf;
}

static void assert_well_formed(const char *dir, const char *name)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_msg(xml_check_file(path, err, sizeof err) == 0,
                  "%s is not well-formed XML: %s", name, err);
}

/* Runs an SVG writer into memory and returns its text. */
typedef int (*svg_fn)(FILE *out, const void *arg);

static char *to_string(svg_fn fn, const void *arg, size_t *size)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, size);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fn(f, arg), 0);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- metrics --------------------------------------------------------- */

START_TEST(test_confusion_from_arrays)
{
    /* rows are the true classes, columns the predicted ones */
    static const int y_true[7] = { 0, 0, 1, 2, 2, 2, 1 };
    static const int y_pred[7] = { 0, 1, 1, 2, 0, 2, 1 };
    static const long expected[9] = { 1, 1, 0,
                                      0, 2, 0,
                                      1, 0, 2 };
    long cm[9] = { 99, 99, 99, 99, 99, 99, 99, 99, 99 };
    ck_assert_int_eq(report_confusion_matrix(cm, 3, y_true, y_pred, 7), 0);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(cm[i], expected[i]);
}
END_TEST

START_TEST(test_confusion_rejects_bad_class)
{
    static const int y_true[2] = { 0, 3 };
    static const int y_pred[2] = { 0, 1 };
    long cm[9];
    errno = 0;
    ck_assert_int_eq(report_confusion_matrix(cm, 3, y_true, y_pred, 2), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_metrics_known)
{
    /*
     *            pred 0  1  2  3   support
     *   true 0:       5  1  0  0     6
     *   true 1:       2  3  1  0     6
     *   true 2:       0  1  4  0     5
     *   true 3:       1  0  2  0     3   (class 3 is never predicted)
     *   predicted:    8  5  7  0    20, trace 12
     */
    static const long cm[16] = { 5, 1, 0, 0,
                                 2, 3, 1, 0,
                                 0, 1, 4, 0,
                                 1, 0, 2, 0 };
    /* precision tp/pred, recall tp/true, F1 2tp/(true+pred); 0/0 -> 0 */
    static const double precision[4] = { 0.625, 0.6, 0.571428571428571429 /* 4/7 */, 0.0 };
    static const double recall[4] = { 0.833333333333333333 /* 5/6 */, 0.5, 0.8, 0.0 };
    static const double f1[4] = { 0.714285714285714286 /* 10/14 */,
                                  0.545454545454545455 /* 6/11 */,
                                  0.666666666666666667 /* 8/12 */, 0.0 /* 0/3 */ };
    static const long support[4] = { 6, 6, 5, 3 };
    report_metrics m;

    ck_assert_int_eq(report_metrics_compute(&m, cm, 4), 0);
    ck_assert_int_eq(m.num_classes, 4);
    for (int c = 0; c < 4; c++) {
        ck_assert_double_eq_tol(m.classes[c].precision, precision[c], TOL);
        ck_assert_double_eq_tol(m.classes[c].recall, recall[c], TOL);
        ck_assert_double_eq_tol(m.classes[c].f1, f1[c], TOL);
        ck_assert_int_eq(m.classes[c].support, support[c]);
    }
    ck_assert_int_eq(m.total, 20);
    ck_assert_double_eq_tol(m.accuracy, 0.6, TOL);                            /* 12/20 */
    ck_assert_double_eq_tol(m.macro_avg.precision, 0.449107142857142857, TOL); /* 503/1120 */
    ck_assert_double_eq_tol(m.macro_avg.recall, 0.533333333333333333, TOL);    /* 8/15 */
    ck_assert_double_eq_tol(m.macro_avg.f1, 0.481601731601731602, TOL);        /* 445/924 */
    ck_assert_double_eq_tol(m.weighted_avg.precision, 0.510357142857142857, TOL); /* 1429/2800 */
    ck_assert_double_eq_tol(m.weighted_avg.recall, 0.6, TOL);
    ck_assert_double_eq_tol(m.weighted_avg.f1, 0.544588744588744589, TOL);     /* 629/1155 */
    ck_assert_int_eq(m.macro_avg.support, 20);
    ck_assert_int_eq(m.weighted_avg.support, 20);
    report_metrics_free(&m);
    ck_assert_ptr_null(m.classes);
}
END_TEST

START_TEST(test_metrics_absent_class)
{
    /* class 1 has no samples and no predictions: every ratio is 0/0 */
    static const long cm[4] = { 2, 0,
                                0, 0 };
    report_metrics m;
    ck_assert_int_eq(report_metrics_compute(&m, cm, 2), 0);
    ck_assert_double_eq(m.classes[1].precision, 0.0);
    ck_assert_double_eq(m.classes[1].recall, 0.0);
    ck_assert_double_eq(m.classes[1].f1, 0.0);
    ck_assert_int_eq(m.classes[1].support, 0);
    ck_assert_double_eq(m.accuracy, 1.0);
    ck_assert_double_eq(m.macro_avg.precision, 0.5);
    ck_assert_double_eq(m.macro_avg.f1, 0.5);
    ck_assert_double_eq(m.weighted_avg.precision, 1.0); /* weights 2 and 0 */
    ck_assert_double_eq(m.weighted_avg.f1, 1.0);
    report_metrics_free(&m);
}
END_TEST

/* ---- classification report text ------------------------------------- */

/* rows true, columns predicted */
static const long CM3[9] = { 4, 1, 0,
                             1, 2, 1,
                             0, 2, 1 };

START_TEST(test_report_text_three_classes)
{
    /*
     * cat:  p 4/5  r 4/5  f 8/10  n 5
     * dog:  p 2/5  r 2/4  f 4/9   n 4
     * bird: p 1/2  r 1/3  f 2/5   n 3
     * accuracy 7/12; macro p 1.7/3, r 1.6333/3, f 1.6444/3;
     * weighted p 7.1/12, r 7/12, f 6.9778/12
     */
    static const char *const names[3] = { "cat", "dog", "bird" };
    static const char expected[] =
        "              precision    recall  f1-score   support\n"
        "\n"
        "         cat       0.80      0.80      0.80         5\n"
        "         dog       0.40      0.50      0.44         4\n"
        "        bird       0.50      0.33      0.40         3\n"
        "\n"
        "    accuracy                           0.58        12\n"
        "   macro avg       0.57      0.54      0.55        12\n"
        "weighted avg       0.59      0.58      0.58        12\n";
    report_metrics m;
    char *text;
    ck_assert_int_eq(report_metrics_compute(&m, CM3, 3), 0);
    text = report_classification_text(&m, names, 2);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, expected);
    free(text);
    report_metrics_free(&m);
}
END_TEST

START_TEST(test_report_text_sklearn_example)
{
    /* The example of sklearn's classification_report documentation:
     * y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1]. */
    static const int y_true[5] = { 0, 1, 2, 2, 2 };
    static const int y_pred[5] = { 0, 0, 2, 2, 1 };
    static const char *const names[3] = { "class 0", "class 1", "class 2" };
    static const char expected[] =
        "              precision    recall  f1-score   support\n"
        "\n"
        "     class 0       0.50      1.00      0.67         1\n"
        "     class 1       0.00      0.00      0.00         1\n"
        "     class 2       1.00      0.67      0.80         3\n"
        "\n"
        "    accuracy                           0.60         5\n"
        "   macro avg       0.50      0.56      0.49         5\n"
        "weighted avg       0.70      0.60      0.61         5\n";
    long cm[9];
    report_metrics m;
    char *text;
    ck_assert_int_eq(report_confusion_matrix(cm, 3, y_true, y_pred, 5), 0);
    ck_assert_int_eq(report_metrics_compute(&m, cm, 3), 0);
    text = report_classification_text(&m, names, 2);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, expected);
    free(text);
    report_metrics_free(&m);
}
END_TEST

START_TEST(test_report_text_wide_names)
{
    /* a name longer than "weighted avg" widens the first column */
    static const char *const names[3] = { "cat", "dog", "hippopotamuses" };
    static const char expected[] =
        "                precision    recall  f1-score   support\n"
        "\n"
        "           cat     0.8000    0.8000    0.8000         5\n"
        "           dog     0.4000    0.5000    0.4444         4\n"
        "hippopotamuses     0.5000    0.3333    0.4000         3\n"
        "\n"
        "      accuracy                         0.5833        12\n"
        "     macro avg     0.5667    0.5444    0.5481        12\n"
        "  weighted avg     0.5917    0.5833    0.5815        12\n";
    report_metrics m;
    char *text;
    ck_assert_int_eq(report_metrics_compute(&m, CM3, 3), 0);
    text = report_classification_text(&m, names, 4);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, expected);
    free(text);
    report_metrics_free(&m);
}
END_TEST

/* ---- the XML checker itself ------------------------------------------ */

START_TEST(test_xmlcheck_accepts_valid)
{
    static const char *const good[] = {
        "<a/>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        "<!-- a comment -->\n<svg xmlns=\"http://www.w3.org/2000/svg\">"
        "<g a='1' b=\"&amp;&lt;&gt;&quot;&apos;&#39;&#x263A;\">"
        "text &amp; more<![CDATA[ <raw> & ]]></g><?pi data?><e /></svg>\n"
        "<!-- trailing -->\n",
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">"
        "<head><meta charset=\"utf-8\"/></head><body><p>caf\xC3\xA9 > ok</p>"
        "</body></html>\n",
        "<!DOCTYPE r [ <!ENTITY x \"y\"> ]><r>]</r>",
        "<a\n  b = \"1\"\n></a >",
    };
    char err[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(xml_check(good[i], strlen(good[i]), err, sizeof err) == 0,
                      "valid snippet %zu rejected: %s", i, err);
}
END_TEST

START_TEST(test_xmlcheck_rejects_broken)
{
    static const char *const bad[] = {
        "",                                   /* no root */
        "   ",                                /* no root */
        "<a>",                                /* never closed */
        "<a><b></a></b>",                     /* misnested */
        "<a></A>",                            /* names differ in case */
        "</a>",                               /* end tag alone */
        "<a x=1/>",                           /* unquoted attribute */
        "<a x/>",                             /* attribute without value */
        "<a x='1'y='2'/>",                    /* no space between attributes */
        "<a x='1' x='2'/>",                   /* duplicate attribute */
        "<a x=\"<\"/>",                       /* '<' in a value */
        "<a x=\"AT&T\"/>",                    /* bare '&' in a value */
        "<a>1 < 2</a>",                       /* raw '<' in text */
        "<a>AT&T</a>",                        /* bare '&' */
        "<a>&nbsp;</a>",                      /* undefined entity */
        "<a>&amp</a>",                        /* reference without ';' */
        "<a>&#0;</a>",                        /* forbidden character */
        "<a>&#xZZ;</a>",                      /* malformed reference */
        "<a>]]></a>",                         /* ']]>' in text */
        "<a>\x01</a>",                        /* control character */
        "<a>\xC3</a>",                        /* truncated UTF-8 */
        "<a>\xC0\xAF</a>",                    /* overlong UTF-8 */
        "<a/><b/>",                           /* two roots */
        "text<a/>",                           /* text before the root */
        "<a/>text",                           /* text after the root */
        "<a><!-- x -- y --></a>",             /* '--' in a comment */
        "<a><!-- x </a>",                     /* unterminated comment */
        " <?xml version=\"1.0\"?><a/>",       /* declaration not first */
        "<?xml encoding=\"UTF-8\"?><a/>",     /* declaration without version */
        "<a><?xml version=\"1.0\"?></a>",     /* declaration inside */
        "<![CDATA[x]]><a/>",                  /* CDATA outside the root */
        "<a><![CDATA[x</a>",                  /* unterminated CDATA */
        "<1a/>",                              /* bad name */
        "<a",                                 /* unterminated tag */
        "<a><!DOCTYPE a></a>",                /* DOCTYPE inside */
        "<!DOCTYPE a><!DOCTYPE a><a/>",       /* two DOCTYPEs */
        "<a/><!DOCTYPE a>",                   /* DOCTYPE after the root */
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(xml_check(bad[i], strlen(bad[i]), err, sizeof err) == -1,
                      "broken snippet %zu accepted: %s", i, bad[i]);
        ck_assert_msg(strncmp(err, "line ", 5) == 0,
                      "snippet %zu: no position in the message '%s'", i, err);
    }
}
END_TEST

static int chart_loss(FILE *out, const void *arg);

START_TEST(test_xmlcheck_rejects_truncations)
{
    /* every cut of a real document before its root closes is an error */
    static const float v[3] = { 0.5f, 0.25f, 0.125f };
    report_run run = { "A & B", 3, v, v, v, v, 0.1f, 0.9f, 1.0 };
    char err[256];
    size_t size, end;
    char *svg = to_string(chart_loss, &run, &size);

    ck_assert_int_eq(xml_check(svg, size, err, sizeof err), 0);
    end = size;
    while (end > 0 && (svg[end - 1] == '\n' || svg[end - 1] == ' '))
        end--;
    for (size_t n = 0; n < end; n++)
        ck_assert_msg(xml_check(svg, n, err, sizeof err) == -1,
                      "the first %zu of %zu bytes were accepted", n, size);
    free(svg);
}
END_TEST

/* ---- SVG and HTML --------------------------------------------------- */

/* Names full of characters that must be escaped. */
static const char *const NASTY[10] = {
    "T-shirt/top", "Trousers & <Pants>", "\"Quoted\"", "it's", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
};

typedef struct fixture {
    float loss[5][3], acc[5][3], vloss[5][3], vacc[5][3];
    report_run runs[5];
    long cm[100];
    report_metrics metrics;
    float pixels[15 * 28 * 28];
    int truth[15], pred[15];
    report_data data;
} fixture;

static void fixture_init(fixture *f)
{
    static const char *const run_names[5] = {
        "Base", "L1 & <co>", "L2", "Dropout", "L2+Dropout"
    };
    memset(f, 0, sizeof *f);
    for (int r = 0; r < 5; r++) {
        for (int e = 0; e < 3; e++) {
            f->loss[r][e] = 0.5f - 0.1f * (float)e + 0.01f * (float)r;
            f->acc[r][e] = 0.8f + 0.03f * (float)e;
            f->vloss[r][e] = 0.55f - 0.1f * (float)e + 0.02f * (float)r;
            f->vacc[r][e] = 0.78f + 0.03f * (float)e - 0.01f * (float)r;
        }
        f->runs[r] = (report_run){ run_names[r], 3, f->loss[r], f->acc[r],
                                   f->vloss[r], f->vacc[r], 0.3f, 0.88f, 1.25 };
    }
    f->vacc[2][1] = NAN; /* a gap in one curve */
    for (int t = 0; t < 10; t++)
        for (int p = 0; p < 10; p++)
            f->cm[t * 10 + p] = t == p ? 900 + t : (t + p) % 7;
    ck_assert_int_eq(report_metrics_compute(&f->metrics, f->cm, 10), 0);
    for (size_t i = 0; i < sizeof f->pixels / sizeof f->pixels[0]; i++)
        f->pixels[i] = (float)(i % 29) / 28.0f;
    for (int i = 0; i < 15; i++) {
        f->truth[i] = i % 10;
        f->pred[i] = i % 3 ? i % 10 : (i + 1) % 10;
    }
    f->data = (report_data){ f->runs, 5, 10, NASTY, "L2+Dropout & <b>", f->cm,
                             &f->metrics, { 15, 28, 28, f->pixels, f->truth, f->pred },
                             NULL };
}

START_TEST(test_files_are_well_formed)
{
    static const char *const xml_files[5] = {
        "val_accuracy.svg", "val_loss.svg", "predictions.svg",
        "confusion_matrix.svg", "report.html"
    };
    static const char *const all_files[8] = {
        "results.csv", "history.csv", "val_accuracy.svg", "val_loss.svg",
        "predictions.svg", "confusion_matrix.svg", "classification_report.txt",
        "report.html"
    };
    fixture *f = malloc(sizeof *f);
    char *dir = make_dir();
    char *text;
    DIR *d;
    struct dirent *e;
    int files = 0;

    ck_assert_ptr_nonnull(f);
    fixture_init(f);
    ck_assert_int_eq(report_write_all(dir, &f->data), 0);

    for (int i = 0; i < 8; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, all_files[i]);
        ck_assert_msg(access(path, R_OK) == 0, "%s was not written", all_files[i]);
    }
    d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        ck_assert_msg(strstr(e->d_name, ".tmp") == NULL, "left behind: %s", e->d_name);
        files += e->d_name[0] != '.';
    }
    closedir(d);
    ck_assert_int_eq(files, 8);

    for (int i = 0; i < 5; i++)
        assert_well_formed(dir, xml_files[i]);

    /* what the pictures must contain */
    text = slurp(dir, "predictions.svg", NULL);
    ck_assert_ptr_nonnull(strstr(text, "href=\"data:image/png;base64,iVBORw0KGgo"));
    ck_assert_ptr_nonnull(strstr(text, "xlink:href=\"data:image/png;base64,"));
    ck_assert_ptr_nonnull(strstr(text, "image-rendering:pixelated"));
    ck_assert_ptr_nonnull(strstr(text, "fill=\"#008000\""));       /* right: green */
    ck_assert_ptr_nonnull(strstr(text, "fill=\"#ff0000\""));       /* wrong: red */
    ck_assert_ptr_nonnull(strstr(text, "True: Trousers &amp; &lt;Pants&gt;"));
    free(text);
    text = slurp(dir, "confusion_matrix.svg", NULL);
    ck_assert_ptr_nonnull(strstr(text, "Confusion Matrix: Where is the model making mistakes?"));
    ck_assert_ptr_nonnull(strstr(text, "Predicted Label"));
    ck_assert_ptr_nonnull(strstr(text, "Actual Label"));
    ck_assert_ptr_nonnull(strstr(text, ">909<"));  /* an annotated count */
    ck_assert_ptr_nonnull(strstr(text, "#08306b")); /* the darkest blue */
    free(text);
    text = slurp(dir, "val_loss.svg", NULL);
    ck_assert_ptr_nonnull(strstr(text, "Comparison of Validation Loss (Lower is Better)"));
    ck_assert_ptr_nonnull(strstr(text, "stroke-dasharray"));
    ck_assert_ptr_nonnull(strstr(text, "L1 &amp; &lt;co&gt; (Val Loss)"));
    ck_assert_ptr_nonnull(strstr(text, "#9467bd")); /* the fifth tab10 colour */
    free(text);
    text = slurp(dir, "val_accuracy.svg", NULL);
    ck_assert_ptr_nonnull(strstr(text, "Comparison of Validation (Test) Accuracy"));
    ck_assert_ptr_null(strstr(text, "stroke-dasharray"));
    ck_assert_ptr_null(strstr(text, "nan"));
    free(text);
    text = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(strstr(text, "<pre>"));
    ck_assert_ptr_nonnull(strstr(text, "weighted avg"));
    ck_assert_ptr_null(strstr(text, "http://www.w3.org/1999/xhtml\" src="));
    ck_assert_ptr_null(strstr(text, " src=\"http"));  /* nothing external */
    ck_assert_ptr_null(strstr(text, "<link"));
    /* without a title, the study's heading */
    ck_assert_ptr_nonnull(strstr(text, "<h1>Five CNNs on Fashion-MNIST: regularization and dropout</h1>"));
    free(text);

    report_metrics_free(&f->metrics);
    free(f);
    remove_dir(dir);
}
END_TEST

/* A report's own title heads the page, escaped, and names it. */
START_TEST(test_html_title)
{
    fixture *f = malloc(sizeof *f);
    char *dir = make_dir();
    char path[4096];
    char *text;

    ck_assert_ptr_nonnull(f);
    fixture_init(f);
    f->data.run_count = 1;
    f->data.title = "One CNN & <BN>";
    snprintf(path, sizeof path, "%s/report.html", dir);
    ck_assert_int_eq(report_write_html(path, &f->data), 0);
    assert_well_formed(dir, "report.html");
    text = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(strstr(text, "<title>libfmnn: One CNN &amp; &lt;BN&gt;</title>"));
    ck_assert_ptr_nonnull(strstr(text, "<h1>One CNN &amp; &lt;BN&gt;</h1>"));
    ck_assert_ptr_null(strstr(text, "Five CNNs"));
    free(text);

    report_metrics_free(&f->metrics);
    free(f);
    remove_dir(dir);
}
END_TEST

static int chart_loss(FILE *out, const void *arg)
{
    return report_svg_line_chart(out, &REPORT_CHART_VAL_LOSS, arg, 1);
}

static int chart_accuracy(FILE *out, const void *arg)
{
    const report_run *run = arg;
    return report_svg_line_chart(out, &REPORT_CHART_VAL_ACCURACY, run, 2);
}

START_TEST(test_chart_single_epoch_and_nan)
{
    /* one point per model, one model with nothing but NaN and Inf */
    static const float one[1] = { 0.85f }, bad[2] = { NAN, INFINITY };
    report_run runs[2] = {
        { "One epoch", 1, one, one, one, one, 0.1f, 0.9f, 1.0 },
        { "Broken", 2, bad, bad, bad, bad, NAN, NAN, 1.0 },
    };
    char err[256];
    size_t size;
    char *svg = to_string(chart_accuracy, runs, &size);
    ck_assert_msg(xml_check(svg, size, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_null(strstr(svg, "nan"));
    ck_assert_ptr_null(strstr(svg, "inf"));
    ck_assert_ptr_nonnull(strstr(svg, "<circle"));   /* the single point */
    free(svg);

    /* all values missing: still a valid, empty chart */
    runs[0] = runs[1];
    svg = to_string(chart_accuracy, runs, &size);
    ck_assert_msg(xml_check(svg, size, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_null(strstr(svg, "nan"));
    free(svg);
}
END_TEST

START_TEST(test_write_failure)
{
    report_run run = { "x", 0, NULL, NULL, NULL, NULL, 0, 0, 0 };
    char *dir = make_dir();
    char path[4096], tmp[4200];

    /* a missing directory: -1 and errno from fopen */
    snprintf(path, sizeof path, "%s/missing/results.csv", dir);
    errno = 0;
    ck_assert_int_eq(report_write_results_csv(path, &run, 1), -1);
    ck_assert_int_eq(errno, ENOENT);

    /* the target is a directory: the rename fails and the .tmp goes */
    snprintf(path, sizeof path, "%s/adir", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    errno = 0;
    ck_assert_int_eq(report_write_results_csv(path, &run, 1), -1);
    ck_assert_int_ne(errno, 0);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    rmdir(path);
    remove_dir(dir);
}
END_TEST

/* ---- PNG and base64 --------------------------------------------------- */

START_TEST(test_gray_binary)
{
    static const float v[6] = { 0.0f, 1.0f, 0.5f, 2.0f, -1.0f, NAN };
    static const uint8_t expected[6] = { 255, 0, 128, 0, 255, 255 };
    uint8_t g[6];
    report_gray_binary(g, v, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(g[i], expected[i]);
}
END_TEST

START_TEST(test_base64_vectors)
{
    /* RFC 4648, section 10 */
    static const char *const in[7] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const out[7] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                        "Zm9vYmE=", "Zm9vYmFy" };
    for (int i = 0; i < 7; i++) {
        char *b = report_base64(in[i], strlen(in[i]));
        ck_assert_ptr_nonnull(b);
        ck_assert_str_eq(b, out[i]);
        free(b);
    }
}
END_TEST

START_TEST(test_png_structure)
{
    enum { W = 5, H = 3 };
    static const unsigned char signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };
    uint8_t pixels[W * H];
    unsigned char *png, *p, raw[H * (W + 1)];
    size_t size;
    uLongf raw_len = sizeof raw;
    uint32_t len;

    for (int i = 0; i < W * H; i++)
        pixels[i] = (uint8_t)(i * 17);
    ck_assert_int_eq(report_png_gray(&png, &size, pixels, W, H), 0);
    ck_assert_uint_ge(size, 8 + 25 + 12 + 12);
    ck_assert_int_eq(memcmp(png, signature, 8), 0);

    /* IHDR */
    p = png + 8;
    ck_assert_uint_eq(be32(p), 13);
    ck_assert_int_eq(memcmp(p + 4, "IHDR", 4), 0);
    ck_assert_uint_eq(be32(p + 8), W);
    ck_assert_uint_eq(be32(p + 12), H);
    ck_assert_uint_eq(p[16], 8); /* bit depth */
    ck_assert_uint_eq(p[17], 0); /* grayscale */
    ck_assert_uint_eq(p[18], 0); /* deflate */
    ck_assert_uint_eq(p[19], 0); /* filter method */
    ck_assert_uint_eq(p[20], 0); /* no interlace */
    ck_assert_uint_eq(be32(p + 21), crc32(crc32(0, Z_NULL, 0), p + 4, 17));

    /* IDAT: inflates to the rows, each prefixed by filter byte 0 */
    p += 12 + 13;
    len = be32(p);
    ck_assert_int_eq(memcmp(p + 4, "IDAT", 4), 0);
    ck_assert_uint_le(8 + 25 + 12 + len, size);
    ck_assert_uint_eq(be32(p + 8 + len), crc32(crc32(0, Z_NULL, 0), p + 4, 4 + len));
    ck_assert_int_eq(uncompress(raw, &raw_len, p + 8, len), Z_OK);
    ck_assert_uint_eq(raw_len, H * (W + 1));
    for (int y = 0; y < H; y++) {
        ck_assert_uint_eq(raw[y * (W + 1)], 0);
        ck_assert_int_eq(memcmp(raw + y * (W + 1) + 1, pixels + y * W, W), 0);
    }

    /* IEND, and nothing after it */
    p += 12 + len;
    ck_assert_uint_eq(be32(p), 0);
    ck_assert_int_eq(memcmp(p + 4, "IEND", 4), 0);
    ck_assert_uint_eq(be32(p + 8), crc32(crc32(0, Z_NULL, 0), p + 4, 4));
    ck_assert_uint_eq((size_t)(p + 12 - png), size);
    free(png);
}
END_TEST

/* ---- CSV ------------------------------------------------------------- */

START_TEST(test_csv_files)
{
    static const float loss[2] = { 0.5f, 0.25f }, acc[2] = { 0.75f, 0.875f };
    static const float vloss[2] = { 0.5f, 0.375f }, vacc[2] = { 0.5f, 0.8978f };
    static const float loss2[1] = { 1.0f }, acc2[1] = { 0.125f };
    report_run runs[2] = {
        { "Base", 2, loss, acc, vloss, vacc, 0.25f, 0.75f, 1.5 },
        { "No, \"val\"", 1, loss2, acc2, NULL, NULL, 2.0f, 0.5f, 0.25 },
    };
    char *dir = make_dir(), path[4096], *text;

    snprintf(path, sizeof path, "%s/results.csv", dir);
    ck_assert_int_eq(report_write_results_csv(path, runs, 2), 0);
    text = slurp(dir, "results.csv", NULL);
    ck_assert_str_eq(text,
        "model,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,seconds\n"
        "Base,0.25,0.875,0.375,0.8978,0.25,0.75,1.500\n"
        "\"No, \"\"val\"\"\",1,0.125,,,2,0.5,0.250\n");
    free(text);

    snprintf(path, sizeof path, "%s/history.csv", dir);
    ck_assert_int_eq(report_write_history_csv(path, runs, 2), 0);
    text = slurp(dir, "history.csv", NULL);
    ck_assert_str_eq(text,
        "model,epoch,loss,accuracy,val_loss,val_accuracy\n"
        "Base,1,0.5,0.75,0.5,0.5\n"
        "Base,2,0.25,0.875,0.375,0.8978\n"
        "\"No, \"\"val\"\"\",1,1,0.125,,\n");
    free(text);
    remove_dir(dir);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc;

    tc = tcase_create("metrics");
    tcase_add_test(tc, test_confusion_from_arrays);
    tcase_add_test(tc, test_confusion_rejects_bad_class);
    tcase_add_test(tc, test_metrics_known);
    tcase_add_test(tc, test_metrics_absent_class);
    suite_add_tcase(s, tc);

    tc = tcase_create("classification_report");
    tcase_add_test(tc, test_report_text_three_classes);
    tcase_add_test(tc, test_report_text_sklearn_example);
    tcase_add_test(tc, test_report_text_wide_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("xml");
    tcase_add_test(tc, test_xmlcheck_accepts_valid);
    tcase_add_test(tc, test_xmlcheck_rejects_broken);
    tcase_add_test(tc, test_xmlcheck_rejects_truncations);
    tcase_add_test(tc, test_files_are_well_formed);
    tcase_add_test(tc, test_html_title);
    tcase_add_test(tc, test_chart_single_epoch_and_nan);
    tcase_add_test(tc, test_write_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("png");
    tcase_add_test(tc, test_gray_binary);
    tcase_add_test(tc, test_base64_vectors);
    tcase_add_test(tc, test_png_structure);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_add_test(tc, test_csv_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(report_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
