/*
 * backup_and_restore.c - keras.callbacks.BackupAndRestore: keep a backup
 * of the whole training state in backup_dir/latest.fmnn, and continue
 * from it when fit is run again after a crash.
 *
 * The backup is a model file saved with FMNN_SAVE_FIT_STATE: the weights,
 * the optimizer's state, the counts that seed every batch order and
 * dropout mask, and where the fit is (fit_state.h), written once every
 * callback has seen the epoch's (or the batch's) end, so that their
 * states are in it too.  Unlike Keras's, a backup made in the middle of
 * an epoch resumes there, with the epoch's running loss and metrics, so
 * that the resumed fit ends with the very weights and history of one that
 * never stopped.  The save is atomic: a crash during it leaves the
 * previous backup.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../callback_impl.h"
#include "fmnn/callbacks.h"

#define MAX_PATH 4096

typedef struct backup {
    fmnn_callback base;
    fmnn_backup_options options;
    char dir[MAX_PATH];
    char file[MAX_PATH];
    int steps;              /* since the last save */
} backup;

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char path[MAX_PATH];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int save(backup *b, const fmnn_model *m)
{
    b->steps = 0;
    int err = FMNN_OK;
    if (fmnn__writes_files(m) && make_dirs(b->dir) != 0)
        err = fmnn__error(FMNN_EIO, "BackupAndRestore: cannot create %s: %s", b->dir, strerror(errno));
    if ((err = fmnn__agree(m, err)))
        return err;
    return fmnn_model_save(m, b->file, FMNN_SAVE_FIT_STATE); /* by rank 0 alone, with a collective */
}

/* Keras deletes the backup when training finishes, not after an error or
 * an interruption: those are what it is for. */
static int delete_backup(backup *b, const fmnn_model *m)
{
    int err = FMNN_OK;
    if (fmnn__writes_files(m)) {
        if (unlink(b->file) != 0 && errno != ENOENT)
            err = fmnn__error(FMNN_EIO, "BackupAndRestore: cannot delete %s: %s", b->file, strerror(errno));
        else
            rmdir(b->dir); /* when empty: the folder may hold more than the backup */
    }
    return fmnn__agree(m, err);
}

/* With a collective, rank 0's backup is the one: the others get it from
 * rank 0 (fmnn__model_restore), having maybe no disk of rank 0's. */
static int backup_restore(fmnn_callback *cb, fmnn_model *m)
{
    backup *b = (backup *)cb;
    b->steps = 0;
    int found = 0;
    if (fmnn__writes_files(m) && access(b->file, F_OK) == 0)
        found = 1;
    else if (fmnn__writes_files(m) && errno != ENOENT)
        found = fmnn__error(FMNN_EIO, "BackupAndRestore: cannot read %s: %s", b->file, strerror(errno));
    if ((found = fmnn__agree(m, found)) <= 0)
        return found;
    const int err = fmnn__model_restore(m, b->file, "BackupAndRestore");
    return err ? err : 1;
}

static int backup_after(fmnn_callback *cb, const fmnn_progress *p, int status)
{
    backup *b = (backup *)cb;
    const fmnn_backup_options *o = &b->options;
    switch (p->event) {
    case FMNN_EVENT_BATCH_END:
        /* An epoch's last batch is saved with the epoch's end, when that is. */
        if (o->save_every_steps > 0 && ++b->steps >= o->save_every_steps &&
            (p->batch < p->batches || !o->save_at_epoch_end))
            return save(b, p->model);
        return FMNN_OK;
    case FMNN_EVENT_EPOCH_END:
        if (o->save_at_epoch_end || (o->save_every_steps > 0 && b->steps >= o->save_every_steps))
            return save(b, p->model);
        return FMNN_OK;
    case FMNN_EVENT_INTERRUPTED:
        return save(b, p->model);
    case FMNN_EVENT_TRAIN_END:
        if (o->delete_backup && (status == FMNN_OK || status == FMNN_STOP_TRAINING))
            return delete_backup(b, p->model);
        return FMNN_OK;
    default:
        return FMNN_OK;
    }
}

/* Its work is done in restore and after; the events themselves need nothing. */
static int backup_event(const fmnn_progress *p, void *data)
{
    (void)p;
    (void)data;
    return 0;
}

FMNN_API int fmnn_backup_and_restore(fmnn_callback **out, const char *backup_dir, const fmnn_backup_options *options)
{
    static const char fn[] = "fmnn_backup_and_restore";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!backup_dir || !*backup_dir)
        return fmnn__error(FMNN_EINVAL, "%s: backup_dir is NULL or empty (as Keras refuses it)", fn);
    if (strlen(backup_dir) + sizeof "/latest.fmnn" > MAX_PATH)
        return fmnn__error(FMNN_EINVAL, "%s: backup_dir is longer than %zu characters", fn,
                           MAX_PATH - sizeof "/latest.fmnn");
    const fmnn_backup_options o = options ? *options : (fmnn_backup_options)FMNN_BACKUP_INIT;
    if (o.save_every_steps < 0)
        return fmnn__error(FMNN_EINVAL, "%s: save_every_steps must be >= 0, got %d", fn, o.save_every_steps);
    if (!o.save_at_epoch_end && o.save_every_steps == 0)
        return fmnn__error(FMNN_EINVAL, "%s: save_at_epoch_end is 0 and save_every_steps is 0: the backup would be "
                           "made only when fit is interrupted", fn);
    backup *b = (backup *)fmnn__callback_alloc(sizeof *b, "BackupAndRestore", backup_event);
    if (!b)
        return FMNN_ENOMEM;
    b->base.restore = backup_restore;
    b->base.after = backup_after;
    /* Its events do nothing and its saves agree themselves. */
    b->base.agrees_itself = 1;
    const int values[] = { o.save_at_epoch_end, o.save_every_steps, o.delete_backup };
    b->base.options_digest = fmnn__digest(FMNN__DIGEST_START, values, sizeof values);
    b->options = o;
    snprintf(b->dir, sizeof b->dir, "%s", backup_dir);
    snprintf(b->file, sizeof b->file, "%s/latest.fmnn", backup_dir);
    *out = &b->base;
    return FMNN_OK;
}
