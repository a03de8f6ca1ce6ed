/*
 * reduce_lr_on_plateau.c - keras.callbacks.ReduceLROnPlateau: when the
 * monitored value has not improved for `patience` epochs, multiply the
 * learning rate by `factor` (not below min_lr), then wait `cooldown`
 * epochs before counting again.  As Keras 3's on_epoch_end: in cooldown
 * the counter steps down and the wait is held at 0; an improvement
 * resets the wait; otherwise, out of cooldown, the wait grows, and at
 * patience the rate is reduced if it is still above min_lr.  The new
 * rate is the optimizer's: model files keep it.
 */
#include <math.h>
#include <stdio.h>

#include "../callback_impl.h"

typedef struct reduce_lr {
    fmnn_callback base;
    fmnn_reduce_lr_options options;
    fmnn_monitor monitor;
    int wait, cooldown_counter;
} reduce_lr;

static int reduce_lr_event(const fmnn_progress *p, void *data)
{
    reduce_lr *r = data;
    const fmnn_reduce_lr_options *o = &r->options;
    fmnn_model *m = p->model;
    if (p->event == FMNN_EVENT_TRAIN_BEGIN) {
        r->wait = r->cooldown_counter = 0;
        if (m->optimizer.schedule.kind != FMNN_SCHEDULE_CONSTANT) /* Keras raises the same */
            return fmnn__error(FMNN_EINVAL, "ReduceLROnPlateau: the optimizer follows a learning-rate schedule, "
                               "whose rate cannot be changed");
        return fmnn__monitor_start(&r->monitor, p, "ReduceLROnPlateau");
    }
    if (p->event != FMNN_EVENT_EPOCH_END)
        return 0;
    const float current = fmnn__monitor_value(&r->monitor, p);
    if (r->cooldown_counter > 0) {
        r->cooldown_counter--;
        r->wait = 0;
    }
    if (fmnn__monitor_improves(&r->monitor, current, r->monitor.has_best, r->monitor.best)) {
        r->monitor.best = current;
        r->monitor.has_best = 1;
        r->wait = 0;
        return 0;
    }
    if (r->cooldown_counter > 0 || ++r->wait < o->patience)
        return 0;
    const float old_lr = m->optimizer.learning_rate;
    if (!(old_lr > o->min_lr))
        return 0;
    /* In double, as Keras multiplies Python floats, then stored as the float it is. */
    const double new_lr = fmax((double)old_lr * o->factor, (double)o->min_lr);
    int err = fmnn_model_set_learning_rate(m, (float)new_lr);
    if (err)
        return err;
    if (o->verbose && fmnn__writes_files(m))
        fprintf(o->verbose, "\nEpoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", p->epoch + 1,
                (double)(float)new_lr);
    r->cooldown_counter = o->cooldown;
    r->wait = 0;
    return 0;
}

/* For a backup: the wait, the cooldown and the best value.  (The rate
 * it set is the optimizer's, which the model file keeps.) */
static void reduce_lr_get_state(const fmnn_callback *cb, const fmnn_model *m, fmnn__callback_state *out)
{
    const reduce_lr *r = (const reduce_lr *)cb;
    (void)m;
    out->counts[0] = r->wait;
    out->counts[1] = r->cooldown_counter;
    out->has_value = r->monitor.has_best;
    out->value = r->monitor.best;
}

static int reduce_lr_set_state(fmnn_callback *cb, const fmnn_model *m, const fmnn__callback_state *in)
{
    reduce_lr *r = (reduce_lr *)cb;
    (void)m;
    if (in->counts[0] < 0 || in->counts[0] > INT32_MAX || in->counts[1] < 0 || in->counts[1] > INT32_MAX ||
        in->n_floats)
        return fmnn__error(FMNN_EINVAL, "ReduceLROnPlateau: the backup's state does not fit this callback");
    r->wait = (int)in->counts[0];
    r->cooldown_counter = (int)in->counts[1];
    r->monitor.has_best = in->has_value;
    r->monitor.best = in->value;
    return FMNN_OK;
}

FMNN_API int fmnn_reduce_lr_on_plateau(fmnn_callback **out, const fmnn_reduce_lr_options *options)
{
    static const char fn[] = "fmnn_reduce_lr_on_plateau";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    const fmnn_reduce_lr_options o = options ? *options : (fmnn_reduce_lr_options)FMNN_REDUCE_LR_INIT;
    if (!(o.factor > 0.0f && o.factor < 1.0f))
        return fmnn__error(FMNN_EINVAL, "%s: factor must be in (0, 1), got %g", fn, (double)o.factor);
    if (o.patience < 0 || o.cooldown < 0)
        return fmnn__error(FMNN_EINVAL, "%s: patience and cooldown must be >= 0, got %d and %d", fn, o.patience,
                           o.cooldown);
    if (!(o.min_lr >= 0.0f) || !isfinite(o.min_lr))
        return fmnn__error(FMNN_EINVAL, "%s: min_lr must be finite and >= 0, got %g", fn, (double)o.min_lr);
    fmnn_monitor monitor;
    int err = fmnn__monitor_init(&monitor, o.monitor, o.mode, o.min_delta, fn);
    if (err)
        return err;
    reduce_lr *r = (reduce_lr *)fmnn__callback_alloc(sizeof *r, "ReduceLROnPlateau", reduce_lr_event);
    if (!r)
        return FMNN_ENOMEM;
    r->base.get_state = reduce_lr_get_state;
    r->base.set_state = reduce_lr_set_state;
    r->options = o;
    r->options.monitor = NULL;
    r->monitor = monitor;
    const float values[] = { o.factor, (float)o.patience, (float)o.cooldown, o.min_lr };
    r->base.options_digest = fmnn__digest(fmnn__monitor_digest(FMNN__DIGEST_START, &monitor), values, sizeof values);
    *out = &r->base;
    return FMNN_OK;
}
