/*
 * fit_state.c - the fit record of a model file (fit_state.h): writing a
 * live or pending state, and reading one back into a pending state, with
 * every count checked against the bytes that are really there and every
 * field against the others (a batch count that the sample count allows,
 * the samples seen that those batches hold, a history row per epoch).
 */
#include <math.h>
#include <string.h>

#include "callback_impl.h"
#include "fit_state.h"

/* Values in one epoch's history row: loss, learning rate, the validation
 * loss, then each metric and its validation value. */
static size_t row_width(int has_validation, int n_metrics)
{
    return (size_t)(2 + has_validation) + (size_t)n_metrics * (size_t)(1 + has_validation);
}

/* ---- writing ------------------------------------------------------------ */

static void put_name(fmnn__writer *w, const char *name)
{
    char padded[48] = { 0 };
    const size_t len = strlen(name);
    memcpy(padded, name, len < sizeof padded ? len : sizeof padded - 1);
    fmnn__put_bytes(w, padded, sizeof padded);
}

static void put_history(fmnn__writer *w, const fmnn__fit_state *s, int n_metrics)
{
    const fmnn_history *h = s->history;
    const int has_val = h ? h->has_validation : s->n_val > 0;
    fmnn__put_u32(w, (uint32_t)has_val);
    fmnn__put_u32(w, (uint32_t)n_metrics);
    for (int e = 0; h && e < h->epochs; e++) {
        fmnn__put_f32(w, h->loss[e]);
        fmnn__put_f32(w, h->learning_rate[e]);
        if (has_val)
            fmnn__put_f32(w, h->val_loss[e]);
        for (int k = 0; k < n_metrics; k++) {
            fmnn__put_f32(w, h->metrics[k][e]);
            if (has_val)
                fmnn__put_f32(w, h->val_metrics[k][e]);
        }
    }
}

static void put_callback_state(fmnn__writer *w, const fmnn__callback_state *c)
{
    put_name(w, c->name);
    for (int i = 0; i < 4; i++)
        fmnn__put_u64(w, (uint64_t)c->counts[i]);
    fmnn__put_u32(w, (uint32_t)c->has_value);
    fmnn__put_f32(w, c->value);
    fmnn__put_u64(w, (uint64_t)c->n_floats);
    fmnn__put_floats(w, c->floats, c->n_floats);
}

/* The callbacks that have a state, in fit's order. */
static int stateful_count(const fmnn__fit_state *s)
{
    if (!s->callbacks)
        return s->n_states;
    int n = 0;
    for (int i = 0; i < s->n_callbacks; i++)
        n += s->callbacks[i]->get_state != NULL;
    return n;
}

void fmnn__fit_state_put(fmnn__writer *w, const fmnn_model *m, const fmnn__fit_state *s)
{
    fmnn__put_u64(w, s->seed);
    fmnn__put_u32(w, (uint32_t)s->shuffle);
    fmnn__put_u32(w, (uint32_t)s->batch_size);
    fmnn__put_u32(w, (uint32_t)s->n_train);
    fmnn__put_u32(w, (uint32_t)s->n_val);
    fmnn__put_u32(w, (uint32_t)s->initial_epoch);
    fmnn__put_u32(w, (uint32_t)s->epoch);
    fmnn__put_u32(w, (uint32_t)s->batch);
    fmnn__put_u32(w, (uint32_t)s->stopped);
    put_name(w, s->stopped_by);
    fmnn__put_f64(w, s->loss_sum);
    fmnn__put_u64(w, (uint64_t)s->seen);
    fmnn__put_u32(w, (uint32_t)s->n_sums);
    for (size_t i = 0; i < s->n_sums; i++)
        fmnn__put_f64(w, s->sums[i]);
    put_history(w, s, m->n_metrics);
    fmnn__put_u32(w, (uint32_t)stateful_count(s));
    if (!s->callbacks) {
        for (int i = 0; i < s->n_states; i++)
            put_callback_state(w, &s->states[i]);
        return;
    }
    for (int i = 0; i < s->n_callbacks; i++) {
        const fmnn_callback *cb = s->callbacks[i];
        if (!cb->get_state)
            continue;
        fmnn__callback_state c = { .value = 0.0f };
        snprintf(c.name, sizeof c.name, "%s", cb->name);
        cb->get_state(cb, m, &c);
        put_callback_state(w, &c);
    }
}

/* ---- reading ------------------------------------------------------------ */

void fmnn__fit_state_free(fmnn__fit_state *s)
{
    if (!s)
        return;
    fmnn__free(s->sums);
    fmnn_history_free(s->history);
    for (int i = 0; s->states && i < s->n_states; i++)
        fmnn__free(s->states[i].floats);
    fmnn__free(s->states);
    fmnn__free(s);
}

/* A 48-byte name that ends in NUL padding and holds no other control byte. */
static int get_name(fmnn__reader *r, char name[48], const char *what)
{
    fmnn__get_bytes(r, name, 48, what);
    if (r->err)
        return r->err;
    size_t len = 0;
    while (len < 48 && name[len])
        len++;
    for (size_t i = 0; i < 48; i++)
        if ((i < len && (unsigned char)name[i] < 0x20) || (i >= len && name[i] != 0))
            return fmnn__corrupt(r, "%s is not a NUL-padded name", what);
    return FMNN_OK;
}

static int get_int(fmnn__reader *r, int *out, uint32_t max, const char *what)
{
    uint32_t v = fmnn__get_u32(r, what);
    if (r->err)
        return r->err;
    if (v > max)
        return fmnn__corrupt(r, "the fit record's %s is %u, more than %u", what, (unsigned)v, (unsigned)max);
    *out = (int)v;
    return FMNN_OK;
}

/* The fields that say which fit it is and where it stands. */
static int read_position(fmnn__reader *r, fmnn__fit_state *s)
{
    s->seed = fmnn__get_u64(r, "the fit record");
    int err;
    if ((err = get_int(r, &s->shuffle, 1, "shuffle flag")) || (err = get_int(r, &s->batch_size, INT32_MAX, "batch size")) ||
        (err = get_int(r, &s->n_train, INT32_MAX, "training sample count")) ||
        (err = get_int(r, &s->n_val, INT32_MAX, "validation sample count")) ||
        (err = get_int(r, &s->initial_epoch, INT32_MAX, "first epoch")) ||
        (err = get_int(r, &s->epoch, INT32_MAX, "epoch")) || (err = get_int(r, &s->batch, INT32_MAX, "batch")) ||
        (err = get_int(r, &s->stopped, 1, "stop flag")) ||
        (err = get_name(r, s->stopped_by, "the fit record's stopping callback")))
        return err;
    s->loss_sum = fmnn__get_f64(r, "the fit record");
    const uint64_t seen = fmnn__get_u64(r, "the fit record");
    if (r->err)
        return r->err;
    if (s->batch_size < 1 || s->n_train < 1)
        return fmnn__corrupt(r, "the fit record has batch size %d and %d training samples", s->batch_size, s->n_train);
    if (s->epoch < s->initial_epoch || (s->stopped && s->epoch == s->initial_epoch))
        return fmnn__corrupt(r, "the fit record is at epoch %d, %s its first epoch %d", s->epoch,
                             s->stopped ? "stopped at or before" : "before", s->initial_epoch);
    if (!s->stopped && s->stopped_by[0])
        return fmnn__corrupt(r, "the fit record names a callback that stopped it, but it did not stop");
    /* Every batch but an epoch's last is full; after the last one the
     * epoch has still to end (a save at its BATCH_END). */
    const int64_t batches = ((int64_t)s->n_train + s->batch_size - 1) / s->batch_size;
    if (s->batch > batches || (s->stopped && s->batch != 0))
        return fmnn__corrupt(r, "the fit record is at batch %d of an epoch of %lld", s->batch, (long long)batches);
    const uint64_t full = (uint64_t)s->batch * (uint64_t)s->batch_size;
    if (seen != (full < (uint64_t)s->n_train ? full : (uint64_t)s->n_train))
        return fmnn__corrupt(r, "the fit record has seen %llu samples in %d batches of %d",
                             (unsigned long long)seen, s->batch, s->batch_size);
    if (!isfinite(s->loss_sum) || (s->batch == 0 && s->loss_sum != 0.0))
        return fmnn__corrupt(r, "the fit record's running loss is impossible");
    s->seen = (int64_t)seen;
    return FMNN_OK;
}

static int read_sums(fmnn__reader *r, const fmnn_model *m, fmnn__fit_state *s)
{
    const uint32_t n = fmnn__get_u32(r, "the fit record's metric sums");
    if (r->err)
        return r->err;
    if (n != m->n_metric_sums)
        return fmnn__corrupt(r, "the fit record has %u metric sums, but the model's metrics keep %zu", (unsigned)n,
                             m->n_metric_sums);
    if (n > r->left / 8)
        return fmnn__truncated(r, "the fit record's metric sums");
    s->n_sums = n;
    if (n && !(s->sums = fmnn__alloc_array(n, sizeof *s->sums, "a backup's metric sums")))
        return FMNN_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(s->sums[i] = fmnn__get_f64(r, "the fit record's metric sums")))
            return fmnn__corrupt(r, "the fit record's metric sum %u is not finite", (unsigned)i);
    return r->err;
}

static int read_history(fmnn__reader *r, const fmnn_model *m, fmnn__fit_state *s)
{
    int has_val = 0, n_metrics = 0, err;
    if ((err = get_int(r, &has_val, 1, "validation flag")) ||
        (err = get_int(r, &n_metrics, FMNN_MAX_METRICS, "history's metric count")))
        return err;
    if (has_val != (s->n_val > 0) || n_metrics != m->n_metrics)
        return fmnn__corrupt(r, "the fit record's history (%d metrics, validation %d) does not match its fit",
                             n_metrics, has_val);
    const int epochs = s->epoch - s->initial_epoch;
    const size_t width = row_width(has_val, n_metrics);
    if ((size_t)epochs > r->left / 4 / width)
        return fmnn__truncated(r, "the fit record's history");
    if ((err = fmnn__history_new(&s->history, m, s->initial_epoch, epochs, has_val)))
        return err;
    fmnn_history *h = s->history;
    for (int e = 0; e < epochs; e++) {
        h->loss[e] = fmnn__get_f32(r, "the history");
        h->learning_rate[e] = fmnn__get_f32(r, "the history");
        if (has_val)
            h->val_loss[e] = fmnn__get_f32(r, "the history");
        for (int k = 0; k < n_metrics; k++) {
            h->metrics[k][e] = fmnn__get_f32(r, "the history");
            if (has_val)
                h->val_metrics[k][e] = fmnn__get_f32(r, "the history");
        }
    }
    h->epochs = epochs;
    return r->err;
}

/* The smallest callback state: a name, four counts, the flag, the value
 * and the array's count. */
#define MIN_CALLBACK_STATE (48 + 32 + 4 + 4 + 8)

static int read_callback_state(fmnn__reader *r, fmnn__callback_state *c, uint32_t i)
{
    char what[48];
    snprintf(what, sizeof what, "callback state %u", (unsigned)i);
    int err = get_name(r, c->name, what);
    if (err)
        return err;
    for (int k = 0; k < 4; k++)
        c->counts[k] = (int64_t)fmnn__get_u64(r, what);
    int has_value = 0;
    if ((err = get_int(r, &has_value, 1, "callback's value flag")))
        return err;
    c->has_value = has_value;
    c->value = fmnn__get_f32(r, what);
    const uint64_t n = fmnn__get_u64(r, what);
    if (r->err)
        return r->err;
    if (n > r->left / 4)
        return fmnn__truncated(r, what);
    c->n_floats = (size_t)n;
    if (n && !(c->floats = fmnn__alloc_array((size_t)n, sizeof(float), "a backup's callback state")))
        return FMNN_ENOMEM;
    fmnn__get_floats(r, c->floats, c->n_floats, what);
    return r->err;
}

int fmnn__fit_state_read(fmnn__reader *r, const fmnn_model *m, fmnn__fit_state **out)
{
    *out = NULL;
    fmnn__fit_state *s = fmnn__alloc_zeroed(sizeof *s, "a backup's fit state");
    if (!s)
        return FMNN_ENOMEM;
    snprintf(s->source, sizeof s->source, "%s", r->path);
    int err = read_position(r, s);
    if (!err)
        err = read_sums(r, m, s);
    if (!err)
        err = read_history(r, m, s);
    uint32_t n = err ? 0 : fmnn__get_u32(r, "the callback states");
    if (!err && (err = r->err) == 0 && n > r->left / MIN_CALLBACK_STATE)
        err = fmnn__truncated(r, "the callback states");
    if (!err && n && !(s->states = fmnn__alloc_array(n, sizeof *s->states, "a backup's callback states")))
        err = FMNN_ENOMEM;
    if (!err && n) {
        memset(s->states, 0, n * sizeof *s->states);
        s->n_states = (int)n;
    }
    for (uint32_t i = 0; i < n && !err; i++)
        err = read_callback_state(r, &s->states[i], i);
    if (err) {
        fmnn__fit_state_free(s);
        return err;
    }
    *out = s;
    return FMNN_OK;
}

/* ---- continuing ------------------------------------------------------------ */

int fmnn__fit_state_matches(const fmnn__fit_state *s, const fmnn_model *m)
{
    return s->n_sums == m->n_metric_sums && s->history && s->history->n_metrics == m->n_metrics;
}

int fmnn__fit_state_check_resume(const fmnn__fit_state *saved, const fmnn__fit_state *now, int epochs, const char *fn)
{
    const char *what = saved->seed != now->seed             ? "seed"
                       : saved->shuffle != now->shuffle       ? "shuffle"
                       : saved->batch_size != now->batch_size ? "batch_size"
                       : saved->n_train != now->n_train       ? "number of training samples"
                       : saved->n_val != now->n_val           ? "number of validation samples"
                                                              : NULL;
    if (what)
        return fmnn__error(FMNN_EINVAL,
                           "%s: cannot resume the fit saved in %s: it had another %s (seed %llu, shuffle %d, "
                           "batch_size %d, %d training and %d validation samples; this fit: %llu, %d, %d, %d, %d)",
                           fn, saved->source, what, (unsigned long long)saved->seed, saved->shuffle, saved->batch_size,
                           saved->n_train, saved->n_val, (unsigned long long)now->seed, now->shuffle,
                           now->batch_size, now->n_train, now->n_val);
    if (saved->epoch > epochs || (saved->epoch == epochs && saved->batch > 0))
        return fmnn__error(FMNN_EINVAL, "%s: cannot resume the fit saved in %s: it is at epoch %d, past this fit's "
                           "epochs (%d)", fn, saved->source, saved->epoch, epochs);
    return FMNN_OK;
}

void fmnn__fit_state_continue(fmnn__fit_state *s, const fmnn__fit_state *saved, fmnn_history *h)
{
    s->resumed = 1;
    s->initial_epoch = saved->initial_epoch;
    s->epoch = saved->epoch;
    s->batch = saved->batch;
    s->stopped = saved->stopped;
    memcpy(s->stopped_by, saved->stopped_by, sizeof s->stopped_by);
    s->loss_sum = saved->loss_sum;
    s->seen = saved->seen;
    if (saved->n_sums)
        memcpy(s->sums, saved->sums, saved->n_sums * sizeof *s->sums);
    const fmnn_history *from = saved->history;
    const int n = from->epochs;
    memcpy(h->loss, from->loss, (size_t)n * sizeof(float));
    memcpy(h->learning_rate, from->learning_rate, (size_t)n * sizeof(float));
    if (h->has_validation)
        memcpy(h->val_loss, from->val_loss, (size_t)n * sizeof(float));
    for (int k = 0; k < h->n_metrics; k++) {
        memcpy(h->metrics[k], from->metrics[k], (size_t)n * sizeof(float));
        if (h->has_validation)
            memcpy(h->val_metrics[k], from->val_metrics[k], (size_t)n * sizeof(float));
    }
    h->epochs = n;
}

int fmnn__fit_state_give_callbacks(const fmnn__fit_state *saved, const fmnn_model *m, fmnn_callback *const *callbacks,
                                   int n_callbacks)
{
    int next = 0;
    for (int i = 0; i < n_callbacks; i++) {
        fmnn_callback *cb = callbacks[i];
        if (!cb->set_state)
            continue;
        if (next >= saved->n_states || strcmp(saved->states[next].name, cb->name) != 0)
            return fmnn__error(FMNN_EINVAL,
                               "fmnn_model_fit: cannot resume the fit saved in %s: the backup has no state for "
                               "callback %d (%s); resume with the callbacks it was made with, in the same order",
                               saved->source, i, cb->name);
        next++;
    }
    if (next != saved->n_states)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_fit: cannot resume the fit saved in %s: the backup holds the "
                           "state of %s, which no callback of this fit takes", saved->source,
                           saved->states[next].name);
    /* All are there: only now does any callback take its own. */
    next = 0;
    for (int i = 0; i < n_callbacks; i++) {
        fmnn_callback *cb = callbacks[i];
        if (!cb->set_state)
            continue;
        const int err = cb->set_state(cb, m, &saved->states[next++]);
        if (err)
            return err;
    }
    return FMNN_OK;
}
