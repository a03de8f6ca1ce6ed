/*
 * progress.h - the Keras-like progress output of fmnn_model_fit.
 * Redrawn in place on a terminal; one line per epoch on a pipe or file.
 */
#ifndef FMNN_PROGRESS_H
#define FMNN_PROGRESS_H

#include <stdio.h>

#include "internal.h"

typedef struct fmnn_progress_bar {
    FILE *out;
    int verbose;        /* 1: bar, 2: one line per epoch */
    int redraw;         /* out is a terminal */
    double last_draw;   /* seconds since the epoch began */
} fmnn_progress_bar;

/* verbose 0 draws nothing; out is where the rest goes. */
FMNN_INTERNAL void fmnn__progress_init(fmnn_progress_bar *bar, int verbose, FILE *out);

/* Monotonic seconds, for timing epochs. */
FMNN_INTERNAL double fmnn__now(void);

/* Called with the numbers of fmnn_progress, at each event. */
FMNN_INTERNAL void fmnn__progress_update(fmnn_progress_bar *bar, const fmnn_progress *p);

#endif
