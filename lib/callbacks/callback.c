/*
 * callback.c - what every callback shares: its object, the wrapper for
 * a function of the caller's (Keras's LambdaCallback), and the
 * monitoring of one history key (Keras's MonitorCallback) that
 * EarlyStopping, ModelCheckpoint and ReduceLROnPlateau build on.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../callback_impl.h"

fmnn_callback *fmnn__callback_alloc(size_t size, const char *name, fmnn_callback_fn fn)
{
    fmnn_callback *cb = fmnn__alloc_zeroed(size, "a callback");
    if (!cb)
        return NULL;
    snprintf(cb->name, sizeof cb->name, "%s", name);
    cb->fn = fn;
    cb->user_data = cb;
    return cb;
}

FMNN_API int fmnn_callback_new(fmnn_callback **out, const char *name, fmnn_callback_fn fn, void *user_data)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn_callback_new: out is NULL");
    *out = NULL;
    if (!fn)
        return fmnn__error(FMNN_EINVAL, "fmnn_callback_new: fn is NULL");
    fmnn_callback *cb = fmnn__callback_alloc(sizeof *cb, name ? name : "callback", fn);
    if (!cb)
        return FMNN_ENOMEM;
    cb->user_data = user_data;
    *out = cb;
    return FMNN_OK;
}

FMNN_API void fmnn_callback_free(fmnn_callback *cb)
{
    if (!cb)
        return;
    if (cb->release)
        cb->release(cb);
    fmnn__free(cb);
}

/* ---- history keys -------------------------------------------------------- */

int fmnn__progress_value(const fmnn_progress *p, const char *key, float *out)
{
    const int val = strncmp(key, "val_", 4) == 0;
    const char *name = val ? key + 4 : key;
    if (val && !p->has_validation)
        return 0;
    if (!strcmp(key, "learning_rate")) {
        *out = p->learning_rate;
        return 1;
    }
    if (!strcmp(name, "loss")) {
        *out = val ? p->val_loss : p->loss;
        return 1;
    }
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(name, fmnn_model_metric_name(p->model, i))) {
            *out = val ? (p->val_metrics ? p->val_metrics[i] : 0.0f) : p->metrics[i];
            return 1;
        }
    return 0;
}

/* The keys a progress has, for messages: "loss, accuracy, val_loss, ...". */
static void list_keys(const fmnn_progress *p, char *buf, size_t size)
{
    snprintf(buf, size, "loss");
    for (int val = 0; val <= p->has_validation; val++)
        for (int i = -1; i < p->n_metrics; i++) {
            if (!val && i < 0)
                continue;
            size_t used = strlen(buf);
            snprintf(buf + used, size - used, ", %s%s", val ? "val_" : "",
                     i < 0 ? "loss" : fmnn_model_metric_name(p->model, i));
        }
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, ", learning_rate");
}

/* ---- monitoring ------------------------------------------------------------ */

int fmnn__monitor_init(fmnn_monitor *mon, const char *key, fmnn_monitor_mode mode, float min_delta, const char *who)
{
    memset(mon, 0, sizeof *mon);
    key = key ? key : "val_loss";
    if (!*key || strlen(key) >= sizeof mon->key)
        return fmnn__error(FMNN_EINVAL, "%s: monitor must be a history key of 1 to %zu characters", who,
                           sizeof mon->key - 1);
    if (mode < FMNN_MODE_AUTO || mode > FMNN_MODE_MAX)
        return fmnn__error(FMNN_EINVAL, "%s: unknown mode %d", who, (int)mode);
    if (!isfinite(min_delta))
        return fmnn__error(FMNN_EINVAL, "%s: min_delta must be finite", who);
    snprintf(mon->key, sizeof mon->key, "%s", key);
    mon->mode = mode;
    mon->min_delta = fabsf(min_delta);
    return FMNN_OK;
}

uint64_t fmnn__monitor_digest(uint64_t h, const fmnn_monitor *mon)
{
    const int mode = mon->mode;
    h = fmnn__digest(h, mon->key, strlen(mon->key) + 1);
    h = fmnn__digest(h, &mode, sizeof mode);
    return fmnn__digest(h, &mon->min_delta, sizeof mon->min_delta);
}

int fmnn__monitor_start(fmnn_monitor *mon, const fmnn_progress *p, const char *who)
{
    float unused;
    char keys[400];
    mon->has_best = 0;
    if (!fmnn__progress_value(p, mon->key, &unused)) {
        list_keys(p, keys, sizeof keys);
        return fmnn__error(FMNN_EINVAL, "%s: monitor \"%s\" is not among this fit's history keys (%s)%s", who,
                           mon->key, keys,
                           !p->has_validation && !strncmp(mon->key, "val_", 4)
                               ? "; give validation_data or a validation_split" : "");
    }
    if (mon->mode != FMNN_MODE_AUTO) {
        mon->lower_is_better = mon->mode == FMNN_MODE_MIN;
        return FMNN_OK;
    }
    const char *name = strncmp(mon->key, "val_", 4) == 0 ? mon->key + 4 : mon->key;
    if (!strcmp(name, "loss")) {
        mon->lower_is_better = 1;
        return FMNN_OK;
    }
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(name, fmnn_model_metric_name(p->model, i))) {
            mon->lower_is_better = !p->model->metric_ops[i]->higher_is_better;
            return FMNN_OK;
        }
    return fmnn__error(FMNN_EINVAL, "%s: cannot tell whether \"%s\" should go down or up: give mode "
                       "FMNN_MODE_MIN or FMNN_MODE_MAX", who, mon->key);
}

float fmnn__monitor_value(const fmnn_monitor *mon, const fmnn_progress *p)
{
    float v = 0.0f;
    fmnn__progress_value(p, mon->key, &v);
    return v;
}

int fmnn__monitor_improves(const fmnn_monitor *mon, float current, int has_reference, float reference)
{
    if (!has_reference)
        return 1;
    /* In double, as Keras compares Python floats. */
    const double d = mon->min_delta;
    return mon->lower_is_better ? (double)current + d < (double)reference : (double)current - d > (double)reference;
}
