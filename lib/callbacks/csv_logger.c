/*
 * csv_logger.c - keras.callbacks.CSVLogger: the history, one row per
 * epoch, flushed as each epoch ends so that a run killed midway leaves
 * the rows of the epochs it finished.  The columns are "epoch" then the
 * history keys sorted by name, as Keras sorts them, and without
 * validation the val_ forms of the same keys after them, holding "NA", as
 * Keras writes them; values have the nine digits that give back the float
 * exactly.
 *
 * For a backup it keeps the length of the file it has written: a resumed
 * fit (BackupAndRestore) opens the file without truncating it, cuts it
 * back to that length, and goes on writing, so that the rows of the
 * epochs after the backup are not written twice.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../callback_impl.h"

#define MAX_KEYS (2 * (FMNN_MAX_METRICS + 1))

typedef struct csv_logger {
    fmnn_callback base;
    char path[4096];
    char separator;
    int append;
    FILE *file;
    int n_keys;
    char keys[MAX_KEYS][72];
} csv_logger;

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The history keys of this fit, sorted, then (without validation) their
 * val_ forms, as Keras's on_epoch_end lists them. */
static void collect_keys(csv_logger *log, const fmnn_progress *p)
{
    log->n_keys = 0;
    for (int val = 0; val <= p->has_validation; val++)
        for (int i = -1; i < p->n_metrics; i++)
            snprintf(log->keys[log->n_keys++], sizeof log->keys[0], "%s%s", val ? "val_" : "",
                     i < 0 ? "loss" : fmnn_model_metric_name(p->model, i));
    qsort(log->keys, (size_t)log->n_keys, sizeof log->keys[0], by_name);
    if (p->has_validation)
        return;
    const int n = log->n_keys;
    for (int k = 0; k < n; k++) {
        char key[64];
        snprintf(key, sizeof key, "%s", log->keys[k]);
        snprintf(log->keys[log->n_keys++], sizeof log->keys[0], "val_%s", key);
    }
}

static int io_error(csv_logger *log, const char *what)
{
    return fmnn__error(FMNN_EIO, "CSVLogger: cannot %s %s: %s", what, log->path, strerror(errno));
}

static int csv_open(csv_logger *log, const fmnn_progress *p)
{
    collect_keys(log, p);
    /* Resumed: the file has the rows of the fit so far; set_state cuts
     * off what came after the backup. */
    if (p->model->live && p->model->live->resumed && (log->file = fopen(log->path, "r+")) != NULL)
        return fseek(log->file, 0, SEEK_END) ? io_error(log, "seek in") : FMNN_OK;
    int header = 1;
    if (log->append) {
        FILE *old = fopen(log->path, "r");
        if (old) {
            header = fgetc(old) == EOF; /* only into an empty file */
            fclose(old);
        }
    }
    if (!(log->file = fopen(log->path, log->append ? "a" : "w")))
        return io_error(log, "open");
    if (header) {
        fprintf(log->file, "epoch");
        for (int k = 0; k < log->n_keys; k++)
            fprintf(log->file, "%c%s", log->separator, log->keys[k]);
        fputc('\n', log->file);
    }
    return fflush(log->file) ? io_error(log, "write") : FMNN_OK;
}

static int csv_row(csv_logger *log, const fmnn_progress *p)
{
    fprintf(log->file, "%d", p->epoch);
    for (int k = 0; k < log->n_keys; k++) {
        float v = 0.0f;
        if (fmnn__progress_value(p, log->keys[k], &v))
            fprintf(log->file, "%c%.9g", log->separator, (double)v);
        else
            fprintf(log->file, "%cNA", log->separator);
    }
    fputc('\n', log->file);
    return fflush(log->file) || ferror(log->file) ? io_error(log, "write") : FMNN_OK;
}

static int csv_close(csv_logger *log)
{
    if (!log->file)
        return FMNN_OK;
    const int failed = fclose(log->file) != 0;
    log->file = NULL;
    return failed ? io_error(log, "close") : FMNN_OK;
}

static int csv_logger_event(const fmnn_progress *p, void *data)
{
    csv_logger *log = data;
    if (!fmnn__writes_files(p->model))
        return 0; /* one process writes the log */
    switch (p->event) {
    case FMNN_EVENT_TRAIN_BEGIN:
        csv_close(log);
        return csv_open(log, p);
    case FMNN_EVENT_EPOCH_END:
        return log->file ? csv_row(log, p) : FMNN_OK;
    case FMNN_EVENT_TRAIN_END:
        return csv_close(log);
    default:
        return 0;
    }
}

/* For a backup: the bytes written so far (-1: no file open). */
static void csv_logger_get_state(const fmnn_callback *cb, const fmnn_model *m, fmnn__callback_state *out)
{
    const csv_logger *log = (const csv_logger *)cb;
    (void)m;
    out->counts[0] = log->file ? (int64_t)ftell(log->file) : -1;
}

static int csv_logger_set_state(fmnn_callback *cb, const fmnn_model *m, const fmnn__callback_state *in)
{
    csv_logger *log = (csv_logger *)cb;
    (void)m;
    const int64_t length = in->counts[0];
    if (length < 0 || !log->file)
        return FMNN_OK;
    struct stat st;
    if (fflush(log->file) != 0 || fstat(fileno(log->file), &st) != 0)
        return io_error(log, "read");
    if ((int64_t)st.st_size < length)
        return fmnn__error(FMNN_EINVAL, "CSVLogger: %s has %lld bytes, fewer than the %lld of the backup's fit: "
                           "it is not that fit's log", log->path, (long long)st.st_size, (long long)length);
    if (ftruncate(fileno(log->file), (off_t)length) != 0 || fseek(log->file, (long)length, SEEK_SET) != 0)
        return io_error(log, "cut back");
    return FMNN_OK;
}

static void csv_logger_release(fmnn_callback *cb)
{
    csv_logger *log = (csv_logger *)cb;
    if (log->file)
        fclose(log->file);
}

FMNN_API int fmnn_csv_logger(fmnn_callback **out, const char *path, char separator, int append)
{
    static const char fn[] = "fmnn_csv_logger";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!path || !*path)
        return fmnn__error(FMNN_EINVAL, "%s: path is NULL or empty", fn);
    if (strlen(path) >= sizeof ((csv_logger *)0)->path)
        return fmnn__error(FMNN_EINVAL, "%s: path is too long", fn);
    /* Nothing a value or a key can hold: a digit, a sign, a point, an
     * exponent, a letter or a quote would make the rows unreadable. */
    if (separator != '\t' && (!isprint((unsigned char)separator) || isalnum((unsigned char)separator) ||
                               strchr(".+-_\"", separator)))
        return fmnn__error(FMNN_EINVAL, "%s: the separator must be a tab or a printable character that is "
                           "not a letter, digit, sign, point, underscore or quote, got 0x%02x", fn,
                           (unsigned)(unsigned char)separator);
    csv_logger *log = (csv_logger *)fmnn__callback_alloc(sizeof *log, "CSVLogger", csv_logger_event);
    if (!log)
        return FMNN_ENOMEM;
    log->base.release = csv_logger_release;
    log->base.get_state = csv_logger_get_state;
    log->base.set_state = csv_logger_set_state;
    snprintf(log->path, sizeof log->path, "%s", path);
    log->separator = separator;
    log->append = append != 0;
    *out = &log->base;
    return FMNN_OK;
}
