/*
 * fit_state.h - where a fit is, as a backup keeps it: the fit it belongs
 * to (seed, batch size, sample counts), the epoch and batch it has
 * reached, the epoch's running loss and metric sums, the history so far
 * and the state of every callback that has one.  With the model's
 * weights, optimizer state and counts of epochs and steps trained (which
 * seed every batch order, dropout mask and augmentation), it is all a fit
 * needs to go on exactly as if it had never stopped.
 *
 * A model holds one in two ways: live, while fit runs (fit.c keeps it up
 * to date, and a save with FMNN_SAVE_FIT_STATE writes it), and pending,
 * read from a file, until a fit with resume (or a BackupAndRestore
 * callback) takes it over.  The record's bytes are in docs/FORMAT.md.
 */
#ifndef FMNN_FIT_STATE_H
#define FMNN_FIT_STATE_H

#include "model_file.h"
#include "model_impl.h"

/* A callback's state: a few counts, the monitor's best value, and an
 * array (EarlyStopping's best weights).  get_state lends floats. */
typedef struct fmnn__callback_state {
    char name[48];          /* the callback's, checked on restore */
    int64_t counts[4];      /* what each callback says they mean */
    int has_value;
    float value;
    size_t n_floats;
    float *floats;
} fmnn__callback_state;

typedef struct fmnn__fit_state {
    /* The fit it belongs to; a resumed fit must have the same. */
    uint64_t seed;
    int shuffle, batch_size, n_train, n_val;
    int initial_epoch;      /* the first fit's: its history starts there */
    /* Where it is: batch batches of epoch done (batch 0: at its start). */
    int epoch, batch;
    int stopped;            /* a callback stopped training: only TRAIN_END is left */
    char stopped_by[48];
    double loss_sum;        /* the epoch's batch losses times their sizes */
    int64_t seen;           /* and its samples */
    size_t n_sums;
    double *sums;           /* the metrics' running sums (live: the model's) */
    /* The history of epochs initial_epoch .. epoch - 1. */
    fmnn_history *history;
    /* Live: the fit's callbacks, asked when saving; pending: their states. */
    fmnn_callback *const *callbacks;
    int n_callbacks;
    fmnn__callback_state *states;
    int n_states;
    int resumed;            /* live: this fit continues a saved one (not in files) */
    char source[4096];      /* pending: the file it was read from, for messages */
} fmnn__fit_state;

/* Writes the record of s (docs/FORMAT.md, "the fit record"). */
FMNN_INTERNAL void fmnn__fit_state_put(fmnn__writer *w, const fmnn_model *m, const fmnn__fit_state *s);

/* Reads a record into a new pending state for m (its metric count and
 * sums), checking every count against the bytes left before allocating.
 * FMNN_EFORMAT naming the file, or FMNN_ENOMEM. */
FMNN_INTERNAL int fmnn__fit_state_read(fmnn__reader *r, const fmnn_model *m, fmnn__fit_state **out);

/* Checks that a saved state belongs to a fit like now (its seed,
 * shuffle, batch size and sample counts) that has not gone past epochs.
 * FMNN_EINVAL saying what differs. */
FMNN_INTERNAL int fmnn__fit_state_check_resume(const fmnn__fit_state *saved, const fmnn__fit_state *now, int epochs,
                                               const char *fn);

/* Makes the live state s continue saved: its position, running sums and
 * stop, and its history copied into h (which has room for it). */
FMNN_INTERNAL void fmnn__fit_state_continue(fmnn__fit_state *s, const fmnn__fit_state *saved, fmnn_history *h);

/* Gives the saved callback states back to the fit's callbacks that have
 * a state, in order, after TRAIN_BEGIN.  FMNN_EINVAL when they are not
 * the callbacks the backup was made with. */
FMNN_INTERNAL int fmnn__fit_state_give_callbacks(const fmnn__fit_state *saved, const fmnn_model *m,
                                                 fmnn_callback *const *callbacks, int n_callbacks);

/* Whether a pending state still fits m: its metric sums and history are
 * those of m's metrics. */
FMNN_INTERNAL int fmnn__fit_state_matches(const fmnn__fit_state *s, const fmnn_model *m);

/* Frees a pending state; NULL is a no-op. */
FMNN_INTERNAL void fmnn__fit_state_free(fmnn__fit_state *s);

/* Loads the model file at path (a backup) into m, which must be the same
 * network with the same optimizer: its weights, optimizer state, counts
 * and pending fit state (save.c).  m is unchanged on failure. */
FMNN_INTERNAL int fmnn__model_restore(fmnn_model *m, const char *path, const char *fn);

/* A history of the metrics of m with room for capacity epochs. */
FMNN_INTERNAL int fmnn__history_new(fmnn_history **out, const fmnn_model *m, int initial_epoch, int capacity,
                                    int has_validation);

#endif /* FMNN_FIT_STATE_H */
