/*
 * callback_impl.h - what a callback is to the library: a name, the
 * function fit calls at every event, its data, and how to free it.  The
 * built-in callbacks (lib/callbacks/) are structs whose first member is
 * a struct fmnn_callback, and whose function gets the struct itself as
 * its data.  They share the monitoring of one history key below.
 */
#ifndef FMNN_CALLBACK_IMPL_H
#define FMNN_CALLBACK_IMPL_H

#include "distributed.h"
#include "fit_state.h"

struct fmnn_callback {
    char name[48];          /* "EarlyStopping"; fmnn_history.stopped_by */
    fmnn_callback_fn fn;
    void *user_data;
    void (*release)(fmnn_callback *cb); /* frees what the callback owns besides itself; may be NULL */

    /* Its state, for a backup to keep (fit_state.h): get_state fills in
     * all but the name and may lend its array; set_state takes a state
     * back after TRAIN_BEGIN of a resumed fit.  NULL for a callback
     * without state. */
    void (*get_state)(const fmnn_callback *cb, const fmnn_model *m, fmnn__callback_state *out);
    int (*set_state)(fmnn_callback *cb, const fmnn_model *m, const fmnn__callback_state *in);

    /* A backup (BackupAndRestore).  restore runs before TRAIN_BEGIN and
     * returns 1 when it put a backup into the model (m->resume), for fit
     * to continue; after runs once every callback has seen an event,
     * with fit's status so far (FMNN_FIT_INTERRUPTED when it was told to
     * stop).  NULL for every other callback. */
    int (*restore)(fmnn_callback *cb, fmnn_model *m);
    int (*after)(fmnn_callback *cb, const fmnn_progress *p, int status);

    /* With a collective (distributed.h): a digest of the options that
     * decide what the callback does (fit checks that every process has
     * the same), and whether its answers are agreed already (fn never
     * fails and after agrees itself), so that fit need not agree on them
     * every step. */
    uint64_t options_digest;
    int agrees_itself;
};

/* fit's status once its interrupt flag was seen (never returned). */
#define FMNN_FIT_INTERRUPTED 2

/* Allocates a zeroed callback struct of size bytes whose function gets
 * it as its data.  NULL when out of memory. */
FMNN_INTERNAL fmnn_callback *fmnn__callback_alloc(size_t size, const char *name, fmnn_callback_fn fn);

/* Keras's MonitorCallback: one history key watched for improvement. */
typedef struct fmnn_monitor {
    char key[64];
    fmnn_monitor_mode mode;
    float min_delta;        /* as given; its sign follows the direction */
    int lower_is_better;    /* resolved at the start of training */
    int has_best;
    float best;
} fmnn_monitor;

/* A digest of a monitor's key, mode and min_delta, mixed into h. */
FMNN_INTERNAL uint64_t fmnn__monitor_digest(uint64_t h, const fmnn_monitor *monitor);

/* Sets up a monitor (NULL key: "val_loss"); errors name who. */
FMNN_INTERNAL int fmnn__monitor_init(fmnn_monitor *mon, const char *key, fmnn_monitor_mode mode, float min_delta,
                                     const char *who);

/* At TRAIN_BEGIN: checks that the key will be in the logs and picks
 * the direction for mode AUTO. */
FMNN_INTERNAL int fmnn__monitor_start(fmnn_monitor *mon, const fmnn_progress *p, const char *who);

/* The key's value at EPOCH_END. */
FMNN_INTERNAL float fmnn__monitor_value(const fmnn_monitor *mon, const fmnn_progress *p);

/* Keras's _is_improvement: current beats reference by more than min_delta
 * (always true without a reference). */
FMNN_INTERNAL int fmnn__monitor_improves(const fmnn_monitor *mon, float current, int has_reference,
                                         float reference);

/* A history key's value in p: "loss", "val_loss", a metric's name with
 * or without "val_", or "learning_rate".  0 when p has no such key. */
FMNN_INTERNAL int fmnn__progress_value(const fmnn_progress *p, const char *key, float *out);

#endif /* FMNN_CALLBACK_IMPL_H */
