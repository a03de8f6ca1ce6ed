/* progress.c - Keras-like progress bar and epoch lines for fit. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH 30

double fmnn__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void fmnn__progress_init(fmnn_progress_bar *bar, int verbose, FILE *out)
{
    bar->out = out;
    bar->verbose = verbose;
    bar->redraw = verbose == 1 && isatty(fileno(out));
    bar->last_draw = -1.0;
}

/* " - name: value" for the loss and each metric, by name as Keras sorts
 * them ("accuracy" before "loss"). */
static void values(FILE *out, const fmnn_progress *p, int validation)
{
    const char *names[FMNN_MAX_METRICS + 1] = { "loss" };
    float v[FMNN_MAX_METRICS + 1] = { validation ? p->val_loss : p->loss };
    int n = 1;
    for (int i = 0; i < p->n_metrics; i++, n++) {
        names[n] = fmnn_model_metric_name(p->model, i);
        v[n] = validation ? p->val_metrics[i] : p->metrics[i];
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of names */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
            float f = v[j];
            v[j] = v[j - 1];
            v[j - 1] = f;
        }
    for (int i = 0; i < n; i++)
        fprintf(out, " - %s%s: %.4f", validation ? "val_" : "", names[i], (double)v[i]);
}

static void metrics(FILE *out, const fmnn_progress *p)
{
    values(out, p, 0);
    if (p->event == FMNN_EVENT_EPOCH_END && p->has_validation)
        values(out, p, 1);
}

/* "123/750 [======>.......]" */
static void bar_text(FILE *out, int done, int total)
{
    int filled = total > 0 ? BAR_WIDTH * done / total : BAR_WIDTH;
    fprintf(out, "%*d/%d [", (int)snprintf(NULL, 0, "%d", total), done, total);
    for (int i = 0; i < BAR_WIDTH; i++)
        fputc(i < filled ? '=' : (i == filled ? '>' : '.'), out);
    fputc(']', out);
}

void fmnn__progress_update(fmnn_progress_bar *bar, const fmnn_progress *p)
{
    if (!bar->verbose)
        return;
    FILE *out = bar->out;
    double per_step = p->batch > 0 ? p->seconds / p->batch : 0.0;
    switch (p->event) {
    case FMNN_EVENT_EPOCH_BEGIN:
        fprintf(out, "Epoch %d/%d\n", p->epoch + 1, p->epochs);
        bar->last_draw = -1.0;
        break;
    case FMNN_EVENT_BATCH_END:
        /* Redraw at most ten times a second; the final state is drawn at
         * the epoch's end, with the validation figures. */
        if (!bar->redraw || p->seconds - bar->last_draw < 0.1 || p->batch == p->batches)
            return;
        bar->last_draw = p->seconds;
        fputc('\r', out);
        bar_text(out, p->batch, p->batches);
        fprintf(out, " - ETA: %.0fs", per_step * (p->batches - p->batch));
        metrics(out, p);
        fprintf(out, "\033[K"); /* clear what a longer earlier line left */
        break;
    case FMNN_EVENT_EPOCH_END:
        if (bar->redraw)
            fputc('\r', out);
        if (bar->verbose == 1)
            bar_text(out, p->batch, p->batches);
        else
            fprintf(out, "%d/%d", p->batch, p->batches);
        fprintf(out, " - %.0fs %.0fms/step", p->seconds, per_step * 1000.0);
        metrics(out, p);
        if (bar->redraw)
            fprintf(out, "\033[K");
        fputc('\n', out);
        break;
    case FMNN_EVENT_NONFINITE: /* fit stops: end the line being redrawn */
        if (!bar->redraw)
            return;
        fputc('\n', out);
        break;
    default: /* the other events draw nothing */
        return;
    }
    fflush(out);
}
