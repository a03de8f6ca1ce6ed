/* progress.c - Keras-like progress bar and epoch lines for fit. */
#define _POSIX_C_SOURCE 200809L
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

void fmnn__progress_init(fmnn_progress_bar *bar, int verbose)
{
    bar->out = stdout;
    bar->verbose = verbose;
    bar->redraw = verbose == 1 && isatty(fileno(stdout));
    bar->last_draw = -1.0;
}

static void metrics(FILE *out, const fmnn_progress *p)
{
    fprintf(out, " - accuracy: %.4f - loss: %.4f", (double)p->accuracy, (double)p->loss);
    if (p->event == FMNN_EVENT_EPOCH_END && p->has_validation)
        fprintf(out, " - val_accuracy: %.4f - val_loss: %.4f", (double)p->val_accuracy,
                (double)p->val_loss);
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
    }
    fflush(out);
}
