/*
 * early_stopping.c - keras.callbacks.EarlyStopping: stop when the
 * monitored value has not improved for `patience` epochs, optionally
 * putting back the weights of the best epoch at the end.
 *
 * As Keras 3's on_epoch_end: epochs before start_from_epoch are not
 * watched; the first watched epoch is the first best (and, with
 * restore_best_weights, the first weights kept); every watched epoch
 * counts one more wait, an improvement sets it back to 0 (unless a
 * baseline is given and not beaten); once the wait reaches patience, in
 * an epoch after the first, training stops.  At the end the best weights
 * (kernels, biases and the non-trainable state, as get_weights() holds
 * them) are restored whether or not training stopped early.
 */
#include <string.h>

#include "../callback_impl.h"

typedef struct early_stopping {
    fmnn_callback base;
    fmnn_early_stopping_options options;
    fmnn_monitor monitor;
    int wait, best_epoch;
    float *best_weights;     /* params, then state; NULL until the first watched epoch */
    size_t n_weights;
} early_stopping;

static void keep_weights(early_stopping *es, const fmnn_model *m)
{
    memcpy(es->best_weights, m->params, m->n_params * sizeof(float));
    memcpy(es->best_weights + m->n_params, m->state, m->n_state * sizeof(float));
}

static int early_stopping_event(const fmnn_progress *p, void *data)
{
    early_stopping *es = data;
    fmnn_model *m = p->model;
    const fmnn_early_stopping_options *o = &es->options;
    switch (p->event) {
    case FMNN_EVENT_TRAIN_BEGIN: {
        es->wait = 0;
        es->best_epoch = -1;
        const size_t n = m->n_params + m->n_state;
        if (o->restore_best_weights && es->n_weights != n) {
            fmnn__free(es->best_weights);
            es->n_weights = 0;
            if (!(es->best_weights = fmnn__alloc_array(n ? n : 1, sizeof(float), "EarlyStopping's best weights")))
                return FMNN_ENOMEM;
            es->n_weights = n;
        }
        return fmnn__monitor_start(&es->monitor, p, "EarlyStopping");
    }
    case FMNN_EVENT_EPOCH_END: {
        if (p->epoch < o->start_from_epoch)
            return 0;
        const float current = fmnn__monitor_value(&es->monitor, p);
        if (o->restore_best_weights && es->best_epoch < 0) {
            keep_weights(es, m);
            es->best_epoch = p->epoch;
        }
        es->wait++;
        if (fmnn__monitor_improves(&es->monitor, current, es->monitor.has_best, es->monitor.best)) {
            es->monitor.best = current;
            es->monitor.has_best = 1;
            es->best_epoch = p->epoch;
            if (o->restore_best_weights)
                keep_weights(es, m);
            if (!o->has_baseline || fmnn__monitor_improves(&es->monitor, current, 1, o->baseline))
                es->wait = 0;
            return 0;
        }
        if (es->wait >= o->patience && p->epoch > 0) {
            if (o->verbose && fmnn__writes_files(m))
                fprintf(o->verbose, "Epoch %d: early stopping\n", p->epoch + 1);
            return FMNN_STOP_TRAINING;
        }
        return 0;
    }
    case FMNN_EVENT_TRAIN_END:
        if (o->restore_best_weights && es->best_epoch >= 0 && es->n_weights == m->n_params + m->n_state) {
            if (o->verbose && fmnn__writes_files(m))
                fprintf(o->verbose, "Restoring model weights from the end of the best epoch: %d.\n",
                        es->best_epoch + 1);
            memcpy(m->params, es->best_weights, m->n_params * sizeof(float));
            memcpy(m->state, es->best_weights + m->n_params, m->n_state * sizeof(float));
        }
        es->best_epoch = -1; /* nothing is left to restore in a later fit */
        return 0;
    default:
        return 0;
    }
}

/* For a backup: the wait, the best epoch and value, the best weights. */
static void early_stopping_get_state(const fmnn_callback *cb, const fmnn_model *m, fmnn__callback_state *out)
{
    const early_stopping *es = (const early_stopping *)cb;
    (void)m;
    out->counts[0] = es->wait;
    out->counts[1] = es->best_epoch;
    out->has_value = es->monitor.has_best;
    out->value = es->monitor.best;
    if (es->options.restore_best_weights && es->best_epoch >= 0) {
        out->n_floats = es->n_weights;
        out->floats = es->best_weights;
    }
}

static int early_stopping_set_state(fmnn_callback *cb, const fmnn_model *m, const fmnn__callback_state *in)
{
    early_stopping *es = (early_stopping *)cb;
    const int keeps = es->options.restore_best_weights && in->counts[1] >= 0;
    if (in->counts[0] < 0 || in->counts[0] > INT32_MAX || in->counts[1] < -1 || in->counts[1] > INT32_MAX ||
        in->n_floats != (keeps ? m->n_params + m->n_state : 0))
        return fmnn__error(FMNN_EINVAL, "EarlyStopping: the backup's state does not fit this callback and model");
    es->wait = (int)in->counts[0];
    es->best_epoch = (int)in->counts[1];
    es->monitor.has_best = in->has_value;
    es->monitor.best = in->value;
    if (keeps)
        memcpy(es->best_weights, in->floats, in->n_floats * sizeof(float));
    return FMNN_OK;
}

static void early_stopping_release(fmnn_callback *cb)
{
    fmnn__free(((early_stopping *)cb)->best_weights);
}

FMNN_API int fmnn_early_stopping(fmnn_callback **out, const fmnn_early_stopping_options *options)
{
    static const char fn[] = "fmnn_early_stopping";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    const fmnn_early_stopping_options o = options ? *options : (fmnn_early_stopping_options)FMNN_EARLY_STOPPING_INIT;
    if (o.patience < 0)
        return fmnn__error(FMNN_EINVAL, "%s: patience must be >= 0, got %d", fn, o.patience);
    if (o.start_from_epoch < 0)
        return fmnn__error(FMNN_EINVAL, "%s: start_from_epoch must be >= 0, got %d", fn, o.start_from_epoch);
    if (o.has_baseline && !isfinite(o.baseline))
        return fmnn__error(FMNN_EINVAL, "%s: baseline must be finite", fn);
    fmnn_monitor monitor;
    int err = fmnn__monitor_init(&monitor, o.monitor, o.mode, o.min_delta, fn);
    if (err)
        return err;
    early_stopping *es = (early_stopping *)fmnn__callback_alloc(sizeof *es, "EarlyStopping", early_stopping_event);
    if (!es)
        return FMNN_ENOMEM;
    es->base.release = early_stopping_release;
    es->base.get_state = early_stopping_get_state;
    es->base.set_state = early_stopping_set_state;
    es->options = o;
    es->options.monitor = NULL; /* the monitor keeps its own copy of the key */
    es->monitor = monitor;
    const int values[] = { o.patience, o.has_baseline, o.restore_best_weights, o.start_from_epoch };
    uint64_t h = fmnn__digest(fmnn__monitor_digest(FMNN__DIGEST_START, &monitor), values, sizeof values);
    es->base.options_digest = fmnn__digest(h, &o.baseline, sizeof o.baseline);
    *out = &es->base;
    return FMNN_OK;
}
