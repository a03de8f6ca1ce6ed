/*
 * fmnn/callbacks.h - Keras's built-in fit callbacks: EarlyStopping,
 * ModelCheckpoint, ReduceLROnPlateau, CSVLogger, TerminateOnNaN and
 * BackupAndRestore, and
 * a wrapper that puts a function of the caller's among them.
 *
 *     fmnn_early_stopping_options es = FMNN_EARLY_STOPPING_INIT;
 *     es.patience = 3;
 *     es.restore_best_weights = 1;
 *     fmnn_callback *stop;
 *     fmnn_early_stopping(&stop, &es);
 *     fit.callbacks = &stop;
 *     fit.n_callbacks = 1;
 *     fmnn_model_fit(m, x, y, &fit, &history);   (FMNN_OK when it stops early)
 *     fmnn_callback_free(stop);
 *
 * A callback object keeps its state from TRAIN_BEGIN to TRAIN_END of one
 * fit; it may be used again by a later fit, not by two at once.
 */
#ifndef FMNN_CALLBACKS_H
#define FMNN_CALLBACKS_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Whether the monitored value should go down or up; AUTO: up for
 * accuracies, precision, recall and AUC, down for losses and errors. */
typedef enum fmnn_monitor_mode {
    FMNN_MODE_AUTO = 0,
    FMNN_MODE_MIN,
    FMNN_MODE_MAX
} fmnn_monitor_mode;

/** keras.callbacks.EarlyStopping's arguments. */
typedef struct fmnn_early_stopping_options {
    const char *monitor;       /**< a history key: "val_loss", "accuracy"...; NULL means "val_loss" */
    float min_delta;           /**< a smaller change is no improvement */
    int patience;              /**< epochs without improvement before stopping */
    fmnn_monitor_mode mode;
    int has_baseline;          /**< non-zero: wait stops resetting until baseline is beaten */
    float baseline;
    int restore_best_weights;  /**< at the end, the weights of the best epoch */
    int start_from_epoch;      /**< epochs to wait before monitoring */
    FILE *verbose;             /**< where to say it stopped (and restored), or NULL */
} fmnn_early_stopping_options;

#define FMNN_EARLY_STOPPING_INIT { NULL, 0.0f, 0, FMNN_MODE_AUTO, 0, 0.0f, 0, 0, NULL }

FMNN_API int fmnn_early_stopping(fmnn_callback **out, const fmnn_early_stopping_options *options);

/** keras.callbacks.ModelCheckpoint's arguments. */
typedef struct fmnn_checkpoint_options {
    const char *monitor;       /**< NULL means "val_loss"; used with save_best_only */
    fmnn_monitor_mode mode;
    int save_best_only;        /**< only when monitor improved on the best so far */
    unsigned save_flags;       /**< fmnn_model_save flags: FMNN_SAVE_OPTIMIZER to resume */
    FILE *verbose;             /**< where to say it saved, or NULL */
} fmnn_checkpoint_options;

#define FMNN_CHECKPOINT_INIT { NULL, FMNN_MODE_AUTO, 0, 0u, NULL }

/**
 * Saves the model at the end of every epoch (or of every improving one)
 * with fmnn_model_save, so the file at path is always a whole model.
 * "{epoch}" in path is replaced with the 1-based epoch number, as
 * Keras's "{epoch:02d}" (a width such as {epoch:02d} is honoured).
 * A failed save stops fit with its status.
 */
FMNN_API int fmnn_model_checkpoint(fmnn_callback **out, const char *path,
                                   const fmnn_checkpoint_options *options);

/** keras.callbacks.ReduceLROnPlateau's arguments. */
typedef struct fmnn_reduce_lr_options {
    const char *monitor;       /**< NULL means "val_loss" */
    float factor;              /**< new rate = rate * factor, in (0, 1) */
    int patience;
    fmnn_monitor_mode mode;
    float min_delta;
    int cooldown;              /**< epochs to wait after a reduction */
    float min_lr;
    FILE *verbose;
} fmnn_reduce_lr_options;

#define FMNN_REDUCE_LR_INIT { NULL, 0.1f, 10, FMNN_MODE_AUTO, 1e-4f, 0, 0.0f, NULL }

FMNN_API int fmnn_reduce_lr_on_plateau(fmnn_callback **out, const fmnn_reduce_lr_options *options);

/**
 * keras.callbacks.CSVLogger: a header, then one row per epoch (the
 * 0-based epoch, then the history keys in sorted order: loss, the
 * metrics and their val_ forms), written and flushed at each epoch's
 * end.  append: keep an existing file's rows, and write the header only
 * into an empty or new file.
 */
FMNN_API int fmnn_csv_logger(fmnn_callback **out, const char *path, char separator, int append);

/** keras.callbacks.TerminateOnNaN: a NaN or Inf loss stops training with
 * FMNN_OK (the model keeps the last good step) instead of FMNN_ENUMERIC. */
FMNN_API int fmnn_terminate_on_nan(fmnn_callback **out);

/** keras.callbacks.BackupAndRestore's arguments.  Keras's
 * save_freq="epoch" is the default; save_freq=N is save_every_steps = N
 * with save_at_epoch_end = 0. */
typedef struct fmnn_backup_options {
    int save_at_epoch_end;     /**< back up at every epoch's end */
    int save_every_steps;      /**< N > 0: also after every N steps (batches) */
    int delete_backup;         /**< Keras's delete_checkpoint: delete it once fit completes */
} fmnn_backup_options;

#define FMNN_BACKUP_INIT { 1, 0, 1 }

/**
 * Keeps a backup of the training state in backup_dir/latest.fmnn (the
 * folder is created when needed), and, when a fit starts and finds one,
 * continues from it: fit goes on at the backup's epoch and batch with
 * its weights, optimizer state, running loss and metrics, history and
 * the built-in callbacks' states, and ends exactly as a fit that was
 * never stopped would (the model must be the same network with the same
 * optimizer, the fit the same data sizes, batch size, shuffle, seed and
 * callbacks).  The backup is saved atomically once every callback has
 * seen the event, and also when the fit's interrupt flag stops it; it is
 * deleted (and the folder, when empty) when fit completes or a callback
 * stops it, and kept after an error or an interruption.
 */
FMNN_API int fmnn_backup_and_restore(fmnn_callback **out, const char *backup_dir,
                                     const fmnn_backup_options *options);

/** A callback of the caller's own, to run among the others (Keras's
 * LambdaCallback); name shows in fmnn_history.stopped_by (NULL: "callback"). */
FMNN_API int fmnn_callback_new(fmnn_callback **out, const char *name, fmnn_callback_fn fn,
                               void *user_data);

/** Frees a callback; NULL is a no-op. */
FMNN_API void fmnn_callback_free(fmnn_callback *callback);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_CALLBACKS_H */
