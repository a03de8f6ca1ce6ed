/*
 * model_checkpoint.c - keras.callbacks.ModelCheckpoint: save the model
 * at the end of every epoch, or only of those where the monitored value
 * beat the best so far.  fmnn_model_save is atomic, so a process killed
 * at any moment leaves the previous file or the new one, whole.
 *
 * The path may hold Keras's placeholders: {epoch} (1-based), or any
 * history key ({val_loss}), each with an optional printf-style format
 * after a colon, {epoch:02d} or {val_loss:.4f}.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "../callback_impl.h"

#define MAX_PATH 4096

typedef struct checkpoint {
    fmnn_callback base;
    fmnn_checkpoint_options options;
    fmnn_monitor monitor;
    char path[MAX_PATH];
    char file[MAX_PATH];   /* the path of this epoch's file */
} checkpoint;

/* Checks a placeholder's format, as printf takes it: flags, a width, a
 * precision, then one conversion that suits the value (d for the epoch,
 * f, e or g for a float). */
static int format_ok(const char *spec, size_t n, int integer)
{
    if (n == 0)
        return 1;
    size_t i = 0;
    while (i < n && strchr("-+ 0", spec[i]))
        i++;
    const size_t width = i;
    while (i < n && spec[i] >= '0' && spec[i] <= '9')
        i++;
    if (i - width > 3)
        return 0;
    if (i < n && spec[i] == '.') {
        const size_t precision = ++i;
        while (i < n && spec[i] >= '0' && spec[i] <= '9')
            i++;
        if (i - precision > 2)
            return 0;
    }
    return i + 1 == n && (integer ? spec[i] == 'd' : strchr("feg", spec[i]) != NULL);
}

/* Expands the placeholders of path into out; p NULL only checks them
 * (at construction).  Fills msg on a bad one. */
static int expand(const char *path, const fmnn_progress *p, char *out, size_t size, char *msg, size_t msg_size)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *c = path; *c;) {
        if (*c != '{') {
            if (used + 1 >= size)
                goto too_long;
            out[used++] = *c++;
            out[used] = '\0';
            continue;
        }
        const char *close = strchr(c, '}');
        if (!close) {
            snprintf(msg, msg_size, "an unclosed '{' in \"%s\"", path);
            return 1;
        }
        char name[64] = "", spec[16] = "";
        const char *colon = memchr(c, ':', (size_t)(close - c));
        size_t name_len = (size_t)((colon ? colon : close) - c - 1);
        size_t spec_len = colon ? (size_t)(close - colon - 1) : 0;
        if (name_len == 0 || name_len >= sizeof name || spec_len >= sizeof spec - 1) {
            snprintf(msg, msg_size, "a bad placeholder in \"%s\"", path);
            return 1;
        }
        memcpy(name, c + 1, name_len);
        if (colon)
            memcpy(spec, colon + 1, spec_len);
        const int is_epoch = !strcmp(name, "epoch");
        if (!format_ok(spec, spec_len, is_epoch)) {
            snprintf(msg, msg_size, "the format of {%s} in \"%s\" must be like %s", name, path,
                     is_epoch ? "02d" : ".4f");
            return 1;
        }
        char fmt[20];
        snprintf(fmt, sizeof fmt, "%%%s", spec_len ? spec : is_epoch ? "d" : "g");
        int n = 0;
        if (p && is_epoch) {
            n = snprintf(out + used, size - used, fmt, p->epoch + 1);
        } else if (p) {
            float v;
            if (!fmnn__progress_value(p, name, &v)) {
                snprintf(msg, msg_size, "{%s} in \"%s\" is not a history key of this fit", name, path);
                return 1;
            }
            n = snprintf(out + used, size - used, fmt, (double)v);
        }
        if (n < 0 || (size_t)n >= size - used)
            goto too_long;
        used += (size_t)n;
        c = close + 1;
    }
    return 0;
too_long:
    snprintf(msg, msg_size, "\"%s\" expands to more than %zu characters", path, size - 1);
    return 1;
}

static int checkpoint_event(const fmnn_progress *p, void *data)
{
    checkpoint *ck = data;
    const fmnn_checkpoint_options *o = &ck->options;
    char msg[200];
    if (p->event == FMNN_EVENT_TRAIN_BEGIN) {
        /* Every placeholder must name a key of this fit: found now, not
         * after the first epoch. */
        if (expand(ck->path, p, ck->file, sizeof ck->file, msg, sizeof msg))
            return fmnn__error(FMNN_EINVAL, "ModelCheckpoint: %s", msg);
        if (!o->save_best_only)
            return FMNN_OK;
        /* The best so far lasts from fit to fit, as in Keras, where it
         * is set once, when the callback is made. */
        const fmnn_monitor before = ck->monitor;
        int err = fmnn__monitor_start(&ck->monitor, p, "ModelCheckpoint");
        ck->monitor.has_best = before.has_best;
        ck->monitor.best = before.best;
        return err;
    }
    if (p->event != FMNN_EVENT_EPOCH_END)
        return 0;
    if (o->save_best_only) {
        const float current = fmnn__monitor_value(&ck->monitor, p);
        if (!fmnn__monitor_improves(&ck->monitor, current, ck->monitor.has_best, ck->monitor.best)) {
            if (o->verbose && fmnn__writes_files(p->model))
                fprintf(o->verbose, "Epoch %d: %s did not improve from %.5f\n", p->epoch + 1, ck->monitor.key,
                        (double)ck->monitor.best);
            return 0;
        }
        if (o->verbose && ck->monitor.has_best && fmnn__writes_files(p->model))
            fprintf(o->verbose, "Epoch %d: %s improved from %.5f to %.5f, saving the model\n", p->epoch + 1,
                    ck->monitor.key, (double)ck->monitor.best, (double)current);
        ck->monitor.best = current;
        ck->monitor.has_best = 1;
    }
    /* The path a process cannot make stops all before the (collective) save. */
    int err = FMNN_OK;
    if (expand(ck->path, p, ck->file, sizeof ck->file, msg, sizeof msg))
        err = fmnn__error(FMNN_EINVAL, "ModelCheckpoint: %s", msg);
    if (!(err = fmnn__agree(p->model, err)))
        err = fmnn_model_save(p->model, ck->file, o->save_flags);
    if (!err && o->verbose && fmnn__writes_files(p->model))
        fprintf(o->verbose, "Epoch %d: saving the model to %s\n", p->epoch + 1, ck->file);
    return err;
}

/* For a backup: the best value so far. */
static void checkpoint_get_state(const fmnn_callback *cb, const fmnn_model *m, fmnn__callback_state *out)
{
    (void)m;
    out->has_value = ((const checkpoint *)cb)->monitor.has_best;
    out->value = ((const checkpoint *)cb)->monitor.best;
}

static int checkpoint_set_state(fmnn_callback *cb, const fmnn_model *m, const fmnn__callback_state *in)
{
    (void)m;
    if (in->n_floats)
        return fmnn__error(FMNN_EINVAL, "ModelCheckpoint: the backup's state does not fit this callback");
    ((checkpoint *)cb)->monitor.has_best = in->has_value;
    ((checkpoint *)cb)->monitor.best = in->value;
    return FMNN_OK;
}

FMNN_API int fmnn_model_checkpoint(fmnn_callback **out, const char *path, const fmnn_checkpoint_options *options)
{
    static const char fn[] = "fmnn_model_checkpoint";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!path || !*path)
        return fmnn__error(FMNN_EINVAL, "%s: path is NULL or empty", fn);
    if (strlen(path) >= MAX_PATH)
        return fmnn__error(FMNN_EINVAL, "%s: path is longer than %d characters", fn, MAX_PATH - 1);
    const fmnn_checkpoint_options o = options ? *options : (fmnn_checkpoint_options)FMNN_CHECKPOINT_INIT;
    /* Not FMNN_SAVE_FIT_STATE: it saves before the callbacks after it have
     * seen the epoch's end; BackupAndRestore is for that. */
    if (o.save_flags & ~(unsigned)FMNN_SAVE_OPTIMIZER)
        return fmnn__error(FMNN_EINVAL, "%s: save_flags must be 0 or FMNN_SAVE_OPTIMIZER, got 0x%x (a fit's state is "
                           "BackupAndRestore's to save)", fn, o.save_flags);
    char file[MAX_PATH], msg[200];
    if (expand(path, NULL, file, sizeof file, msg, sizeof msg))
        return fmnn__error(FMNN_EINVAL, "%s: %s", fn, msg);
    fmnn_monitor monitor;
    int err = fmnn__monitor_init(&monitor, o.monitor, o.mode, 0.0f, fn);
    if (err)
        return err;
    checkpoint *ck = (checkpoint *)fmnn__callback_alloc(sizeof *ck, "ModelCheckpoint", checkpoint_event);
    if (!ck)
        return FMNN_ENOMEM;
    ck->base.get_state = checkpoint_get_state;
    ck->base.set_state = checkpoint_set_state;
    ck->options = o;
    ck->options.monitor = NULL;
    ck->monitor = monitor;
    const unsigned values[] = { (unsigned)o.save_best_only, o.save_flags };
    ck->base.options_digest = fmnn__digest(fmnn__monitor_digest(FMNN__DIGEST_START, &monitor), values, sizeof values);
    snprintf(ck->path, sizeof ck->path, "%s", path);
    *out = &ck->base;
    return FMNN_OK;
}
