/*
 * report.h - the reports of the Fashion-MNIST experiments: metrics as
 * scikit-learn computes them, CSV files, SVG charts like matplotlib's and
 * seaborn's, and one self-contained HTML page.
 *
 * Plain C11 over libc, libm and zlib; nothing here calls libfmnn, so the
 * reports can be tested (and reused) without a model.
 *
 * Every writer returns 0 on success and -1 on failure.  On failure errno
 * tells why, and the writers that take a path have printed a message that
 * names it to stderr.  A file is written to "PATH.tmp" and renamed to
 * PATH only once complete, so a crash never leaves half a file behind.
 *
 * Class indices are ints in [0, num_classes); a confusion matrix is a
 * row-major num_classes x num_classes array of longs, rows the true
 * classes and columns the predicted ones, as scikit-learn's.
 */
#ifndef FMNN_EXAMPLES_REPORT_H
#define FMNN_EXAMPLES_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- metrics ------------------------------------------------------- */

/**
 * Counts matrix[t * num_classes + p] = how many of the count samples have
 * true class t and predicted class p (sklearn's confusion_matrix).  The
 * matrix is overwritten.  -1 with errno EINVAL if a class is out of range.
 */
int report_confusion_matrix(long *matrix, int num_classes,
                            const int *y_true, const int *y_pred,
                            size_t count);

/** Precision, recall, F1 and support of one class, or an average. */
typedef struct report_scores {
    double precision;
    double recall;
    double f1;
    long support;     /**< true samples of the class; for averages, all */
} report_scores;

/** What sklearn's classification_report shows. */
typedef struct report_metrics {
    int num_classes;
    report_scores *classes;      /**< num_classes entries, owned */
    double accuracy;             /**< trace / total */
    long total;                  /**< number of samples */
    report_scores macro_avg;     /**< unweighted means over the classes */
    report_scores weighted_avg;  /**< means weighted by support */
} report_metrics;

/**
 * Computes per-class and averaged scores from a confusion matrix exactly
 * as scikit-learn does (labels = all num_classes classes,
 * zero_division = 0.0: a score whose denominator is 0 is 0, and the means
 * sum in numpy's pairwise order).  Free *out with report_metrics_free().
 * -1 with errno EINVAL or ENOMEM on failure.
 */
int report_metrics_compute(report_metrics *out, const long *matrix,
                           int num_classes);

/** Frees what report_metrics_compute() allocated.  NULL-safe. */
void report_metrics_free(report_metrics *metrics);

/**
 * sklearn's classification_report(..., target_names=class_names,
 * digits=digits) text, byte for byte, ending in a newline.  Returns a
 * malloc'd string for the caller to free, or NULL (errno ENOMEM/EINVAL).
 */
char *report_classification_text(const report_metrics *metrics,
                                 const char *const *class_names, int digits);

/* ---- training runs -------------------------------------------------- */

/** One trained model: its Keras-like history and its test scores. */
typedef struct report_run {
    const char *name;          /**< display name: "Base", "L2+Dropout" */
    int epochs;                /**< entries in each array below */
    const float *loss;         /**< per epoch (training) */
    const float *accuracy;
    const float *val_loss;     /**< NULL without validation */
    const float *val_accuracy; /**< NULL without validation */
    float test_loss;
    float test_accuracy;
    double seconds;            /**< wall time of fit + evaluate */
} report_run;

/* The CSV headers, exactly as written. */
#define REPORT_RESULTS_CSV_HEADER \
    "model,train_loss,train_accuracy,val_loss,val_accuracy," \
    "test_loss,test_accuracy,seconds"
#define REPORT_HISTORY_CSV_HEADER \
    "model,epoch,loss,accuracy,val_loss,val_accuracy"

/**
 * results.csv: one row per run, train/val columns from the last epoch.
 * Floats are written in the shortest form that reads back to the same
 * float; a missing value (no validation, no epoch) is an empty field.
 */
int report_write_results_csv(const char *path, const report_run *runs,
                             int run_count);

/** history.csv: one row per run and epoch (epochs counted from 1). */
int report_write_history_csv(const char *path, const report_run *runs,
                             int run_count);

/* ---- SVG charts ----------------------------------------------------- */

/** Which per-epoch series of a run a chart plots. */
typedef enum report_series {
    REPORT_LOSS = 0,
    REPORT_ACCURACY,
    REPORT_VAL_LOSS,
    REPORT_VAL_ACCURACY
} report_series;

/** A line chart: one curve per run, epoch on the x axis. */
typedef struct report_chart {
    const char *title;
    const char *ylabel;
    report_series series;
    int dashed;                 /**< dashed lines (matplotlib's '--') */
    const char *legend_suffix;  /**< appended to each name, or NULL */
} report_chart;

/** The notebook's two charts. */
extern const report_chart REPORT_CHART_VAL_ACCURACY;
extern const report_chart REPORT_CHART_VAL_LOSS;

/**
 * Writes an <svg> element (no XML declaration, so that it can be inlined
 * in HTML) drawing the chart like matplotlib's figure(figsize=(12, 6)):
 * tab10 colours, markers, grid, integer epoch ticks, legend placed where
 * it hides the fewest points.  NaN and infinite values are left out and
 * break the line; a run without the series is left out.  Returns -1 only
 * on invalid arguments or a failed allocation; check ferror(out).
 */
int report_svg_line_chart(FILE *out, const report_chart *chart,
                          const report_run *runs, int run_count);

/**
 * Writes an <svg> heatmap of the confusion matrix like seaborn's
 * heatmap(annot=True, fmt='d', cmap='Blues'): counts in the cells, class
 * names on both axes, a colour bar.
 */
int report_svg_confusion(FILE *out, const long *matrix, int num_classes,
                         const char *const *class_names);

/** The first images of the test set with their true and predicted classes. */
typedef struct report_images {
    int count;                /**< images to show */
    int height, width;        /**< of each image, in pixels */
    const float *pixels;      /**< count * height * width values in [0, 1] */
    const int *true_class;    /**< count entries */
    const int *pred_class;    /**< count entries */
} report_images;

/**
 * Writes an <svg> grid of the images, `columns` per row, drawn like
 * imshow(cmap=plt.cm.binary) (0 white, 1 black) as embedded PNGs, each
 * titled "Pred: <name>" / "True: <name>", green when right, red when wrong.
 */
int report_svg_predictions(FILE *out, const report_images *images,
                           const char *const *class_names, int columns);

/* ---- PNG and base64 (used by the prediction grid) ------------------- */

/**
 * Maps values in [0, 1] to 8-bit gray as matplotlib's 'binary' colormap
 * does: 0 -> 255 (white), 1 -> 0 (black).  Out-of-range values are
 * clamped and NaN is drawn white.
 */
void report_gray_binary(uint8_t *gray, const float *values, size_t count);

/**
 * Encodes an 8-bit grayscale image (row-major, top row first) as a PNG:
 * signature, IHDR, one zlib-compressed IDAT (filter 0 on every row),
 * IEND.  *png receives a malloc'd buffer of *size bytes.
 */
int report_png_gray(unsigned char **png, size_t *size, const uint8_t *pixels,
                    int width, int height);

/** Standard base64 (RFC 4648, padded).  malloc'd, NUL-terminated, or NULL. */
char *report_base64(const void *data, size_t size);

/* ---- files ----------------------------------------------------------- */

/**
 * Everything one experiment reports.  The confusion matrix, metrics and
 * images are optional: with confusion or metrics NULL, or images.count 0,
 * the files and sections built from them are left out.
 */
typedef struct report_data {
    const report_run *runs;
    int run_count;
    int num_classes;
    const char *const *class_names;  /**< num_classes names */
    const char *evaluated_model;     /**< whose predictions these are */
    const long *confusion;           /**< num_classes^2, or NULL */
    const report_metrics *metrics;   /**< or NULL */
    report_images images;            /**< the prediction grid */
    const char *title;               /**< report.html's heading, or NULL for
                                          the five-model study's */
} report_data;

/** classification_report.txt: report_classification_text(), 2 digits. */
int report_write_classification(const char *path,
                                const report_metrics *metrics,
                                const char *const *class_names);

/** A standalone SVG file of report_svg_line_chart(). */
int report_write_line_chart(const char *path, const report_chart *chart,
                            const report_run *runs, int run_count);

/** A standalone SVG file of report_svg_confusion(). */
int report_write_confusion(const char *path, const long *matrix,
                           int num_classes, const char *const *class_names);

/** A standalone SVG file of report_svg_predictions(), 5 columns. */
int report_write_predictions(const char *path, const report_images *images,
                             const char *const *class_names);

/**
 * report.html: one self-contained XHTML-compatible page (inline CSS and
 * SVG, PNGs as data URIs, no external resource) with the results and
 * history tables, both charts, the prediction grid, the confusion matrix
 * and the classification report.
 */
int report_write_html(const char *path, const report_data *data);

/**
 * Writes every file into the existing directory dir: results.csv,
 * history.csv, val_accuracy.svg, val_loss.svg, and, when their data is
 * there, predictions.svg, confusion_matrix.svg, classification_report.txt;
 * then report.html.  Stops at the first failure.
 */
int report_write_all(const char *dir, const report_data *data);

#endif /* FMNN_EXAMPLES_REPORT_H */
