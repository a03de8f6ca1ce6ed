/*
 * save.c - what a model file says (format 5, docs/FORMAT.md; formats 4,
 * 3 and 2 are read too: 4 lacks the fit record, 3 also the training
 * record, 2 also the layer records' flags word): the architecture as
 * self-describing records (each layer's type code and its count-prefixed
 * options, from its field table), the loss, the optimizer and its
 * settings, the weights and the non-trainable state, the training record
 * (the counts of epochs and steps trained, the metrics), optionally the
 * optimizer's state and after it where a fit was (fit_state.c); and
 * restoring a backup into a model.  model_file.c writes and reads the
 * bytes, with the header, the checksum and the atomic replace; format1.c
 * reads the files of the first format.
 *
 * Loading trusts nothing: every count is checked against the bytes that
 * are really there before anything is allocated or read, and the model is
 * checked as compile checks a model built by hand (the options of every
 * layer against its field table, then the shapes) before it allocates.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "distributed.h"
#include "fit_state.h"
#include "save.h"

/* Layer record flags. */
#define RECORD_FROZEN 1u /* trainable = False */

/* A metric record: its kind, then these settings as options. */
static const fmnn_field metric_fields[] = {
    FMNN__INT(fmnn_metric, k, "k", 0, INT_MAX, 0),
    FMNN__FLOAT(fmnn_metric, threshold, "threshold", 0.0, 1.0, 0, 1, 0.0),
    FMNN__INT(fmnn_metric, num_thresholds, "num_thresholds", 0, INT_MAX, 0),
};
static const fmnn_fields metric_table = FMNN__FIELDS(metric_fields);

/* ---- writing ------------------------------------------------------------ */

/* The payload of a model file; context is a saving, below. */
typedef struct saving {
    const fmnn_model *model;
    int with_optimizer;
    const fmnn__fit_state *fit; /* the fit record's, or NULL */
} saving;

static void put_payload(fmnn__writer *w, const void *context)
{
    const fmnn_model *m = ((const saving *)context)->model;
    fmnn__put_u32(w, (uint32_t)m->loss);
    fmnn__put_u32(w, (uint32_t)m->input.rank);
    for (int d = 0; d < m->input.rank; d++)
        fmnn__put_u32(w, (uint32_t)m->input.dims[d]);
    fmnn__put_u32(w, (uint32_t)m->optimizer.kind);
    fmnn__fields_put(w, &m->optimizer_ops->settings, &m->optimizer);
    fmnn__put_u32(w, (uint32_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        fmnn__put_u32(w, fmnn__layer_code(layer->ops));
        fmnn__put_u32(w, layer->frozen ? RECORD_FROZEN : 0u);
        fmnn__fields_put(w, &layer->ops->config, layer);
    }
    fmnn__put_u64(w, m->n_params);
    fmnn__put_floats(w, m->params, m->n_params);
    fmnn__put_u64(w, m->n_state);
    fmnn__put_floats(w, m->state, m->n_state);
    /* The training record (format 4). */
    fmnn__put_u64(w, (uint64_t)m->epochs_trained);
    fmnn__put_u64(w, (uint64_t)m->steps_trained);
    fmnn__put_u32(w, (uint32_t)m->n_metrics);
    for (int i = 0; i < m->n_metrics; i++) {
        fmnn__put_u32(w, (uint32_t)m->metrics[i].kind);
        fmnn__fields_put(w, &metric_table, &m->metrics[i]);
    }
    if (((const saving *)context)->with_optimizer) {
        fmnn__put_u64(w, (uint64_t)m->step);
        fmnn__put_u32(w, (uint32_t)m->slots.count);
        for (int k = 0; k < m->slots.count; k++)
            fmnn__put_floats(w, m->slots.arrays[k], m->n_params);
    }
    if (((const saving *)context)->fit)
        fmnn__fit_state_put(w, m, ((const saving *)context)->fit);
}

/* Index of the first value of f[0..n) that is NaN or Inf, or n. */
static size_t first_nonfinite(const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(f[i]))
            return i;
    return n;
}

static int save_here(const fmnn_model *m, const char *path, unsigned flags)
{
    if (!path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: path is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_save: compile the model before saving it to %s", path);
    if (flags & ~(unsigned)(FMNN_SAVE_OPTIMIZER | FMNN_SAVE_FIT_STATE))
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: unknown flags 0x%x (saving %s)", flags, path);
    for (int i = 0; i < m->n_layers; i++)
        if (!fmnn__layer_code(m->layers[i]->ops))
            return fmnn__error(FMNN_EINVAL, "fmnn_model_save: %s (%s) is not a registered layer type, so %s is not written",
                               m->layers[i]->name, m->layers[i]->ops->type, path);
    /* The loader refuses NaN and Inf, so such a file could never be read
     * back: refuse it here, before it can replace a good one.  (fit never
     * leaves them; weights written through fmnn_model_weights() can.) */
    size_t at = first_nonfinite(m->params, m->n_params);
    if (at < m->n_params)
        return fmnn__error(FMNN_ENUMERIC, "fmnn_model_save: weight %zu is NaN or Inf, so %s is not written",
                           at, path);
    if ((at = first_nonfinite(m->state, m->n_state)) < m->n_state)
        return fmnn__error(FMNN_ENUMERIC, "fmnn_model_save: non-trainable value %zu is NaN or Inf, so %s is not written",
                           at, path);
    if (flags & FMNN_SAVE_FIT_STATE)
        flags |= FMNN_SAVE_OPTIMIZER;
    for (int k = 0; (flags & FMNN_SAVE_OPTIMIZER) && k < m->slots.count; k++)
        if ((at = first_nonfinite(m->slots.arrays[k], m->n_params)) < m->n_params)
            return fmnn__error(FMNN_ENUMERIC,
                               "fmnn_model_save: optimizer state %zu is NaN or Inf, so %s is not written", at, path);

    /* The live state of a fit running now, else one loaded and not yet resumed. */
    const fmnn__fit_state *fit = m->live ? m->live : m->resume;
    saving what = { m, (flags & FMNN_SAVE_OPTIMIZER) != 0,
                    (flags & FMNN_SAVE_FIT_STATE) && fit && (m->live || fmnn__fit_state_matches(fit, m)) ? fit : NULL };
    const uint32_t file_flags = (what.with_optimizer ? FMNN__FILE_OPTIMIZER : 0u) | (what.fit ? FMNN__FILE_FIT : 0u);
    return fmnn__file_save(path, file_flags, put_payload, &what);
}

FMNN_API int fmnn_model_save(const fmnn_model *m, const char *path, unsigned flags)
{
    if (!m)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: model is NULL");
    /* With a collective, rank 0 writes and the others wait for its status. */
    return fmnn__agree(m, fmnn__writes_files(m) ? save_here(m, path, flags) : FMNN_OK);
}

/* ---- reading ------------------------------------------------------------ */

int fmnn__impossible(fmnn__reader *r, int status)
{
    if (status == FMNN_ENOMEM)
        return status;
    char detail[400];
    snprintf(detail, sizeof detail, "%s", fmnn_last_error());
    return fmnn__corrupt(r, "impossible architecture: %s", detail);
}

int fmnn__check_loaded(fmnn__reader *r, const fmnn_model *m, int with_optimizer)
{
    size_t at = first_nonfinite(m->params, m->n_params);
    if (at < m->n_params)
        return fmnn__corrupt(r, "weight %zu is NaN or Inf", at);
    if ((at = first_nonfinite(m->state, m->n_state)) < m->n_state)
        return fmnn__corrupt(r, "non-trainable value %zu is NaN or Inf", at);
    char msg[200];
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        if (layer->ops->check_state && layer->ops->check_state(layer, layer->state, msg, sizeof msg))
            return fmnn__corrupt(r, "%s (%s): %s", layer->name, layer->ops->type, msg);
    }
    if (!with_optimizer)
        return FMNN_OK;
    for (int k = 0; k < m->slots.count; k++)
        if ((at = first_nonfinite(m->slots.arrays[k], m->n_params)) < m->n_params)
            return fmnn__corrupt(r, "optimizer state %zu is NaN or Inf", at);
    if (m->optimizer_ops->check_state &&
        m->optimizer_ops->check_state(&m->optimizer, m->slots.arrays, m->n_params, msg, sizeof msg))
        return fmnn__corrupt(r, "%s", msg);
    return FMNN_OK;
}

int fmnn__read_loss_and_input(fmnn__reader *r, fmnn_loss *loss_out, int *rank_out, int dims[FMNN_MAX_RANK])
{
    uint32_t loss = fmnn__get_u32(r, "the loss");
    uint32_t rank = fmnn__get_u32(r, "the input shape");
    if (r->err)
        return r->err;
    if (!fmnn__loss_type((fmnn_loss)loss))
        return fmnn__corrupt(r, "unknown loss %u", (unsigned)loss);
    if (rank < 1 || rank > FMNN_MAX_RANK - 1)
        return fmnn__corrupt(r, "input rank %u is not in 1..%d", (unsigned)rank, FMNN_MAX_RANK - 1);
    memset(dims, 0, FMNN_MAX_RANK * sizeof *dims);
    uint64_t values = 1;
    for (uint32_t d = 0; d < rank; d++) {
        uint32_t v = fmnn__get_u32(r, "the input shape");
        if (r->err)
            return r->err;
        if (!fmnn__valid_size(v))
            return fmnn__corrupt(r, "input dimension %u is %u, not in 1..%d", (unsigned)d, (unsigned)v, FMNN__MAX_SIZE);
        values *= v;
        if (values > INT_MAX)
            return fmnn__corrupt(r, "the input has more than %d values per sample", INT_MAX);
        dims[d] = (int)v;
    }
    *loss_out = (fmnn_loss)loss;
    *rank_out = (int)rank;
    return FMNN_OK;
}

int fmnn__infer_and_peek(fmnn__reader *r, fmnn_model *m, size_t *n_params, size_t *n_state, fmnn__reader *peek)
{
    int err = fmnn__model_infer(m, n_params, n_state);
    if (err)
        return fmnn__impossible(r, err);
    *peek = *r; /* the count is read again with the weights */
    uint64_t count = fmnn__get_u64(peek, "the parameter count");
    if (peek->err)
        return r->err = peek->err;
    if (count != *n_params)
        return fmnn__corrupt(r, "the architecture has %zu parameters but the file says %llu", *n_params,
                             (unsigned long long)count);
    return FMNN_OK;
}

/* Reads one layer record: its type code, its flags (from version 3 on),
 * then its options. */
static int read_layer(fmnn__reader *r, uint32_t version, uint32_t i, fmnn_layer **out)
{
    *out = NULL;
    uint32_t code = fmnn__get_u32(r, "a layer");
    if (r->err)
        return r->err;
    const struct fmnn_layer_ops *ops = fmnn__layer_type(code);
    if (!ops)
        return fmnn__corrupt(r, "layer %u has the unknown type code %u", (unsigned)i, (unsigned)code);
    uint32_t flags = version >= 3 ? fmnn__get_u32(r, "a layer") : 0;
    if (r->err)
        return r->err;
    if (flags & ~RECORD_FROZEN)
        return fmnn__corrupt(r, "layer %u (%s) has the unknown flags 0x%x", (unsigned)i, ops->type, (unsigned)flags);
    fmnn_layer *layer = fmnn__layer_alloc(ops);
    if (!layer)
        return FMNN_ENOMEM;
    char what[64];
    snprintf(what, sizeof what, "layer %u (%s)", (unsigned)i, ops->type);
    layer->frozen = (flags & RECORD_FROZEN) != 0;
    int err = fmnn__fields_get(r, &ops->config, layer, what);
    if (err) {
        fmnn_layer_free(layer);
        return err;
    }
    *out = layer;
    return FMNN_OK;
}

/* What a model has trained and the metrics it reports (format 4 on). */
typedef struct training_record {
    int64_t epochs, steps;
    int n_metrics;
    fmnn_metric metrics[FMNN_MAX_METRICS];
} training_record;

static int read_training(fmnn__reader *r, training_record *t)
{
    uint64_t epochs = fmnn__get_u64(r, "the training record");
    uint64_t steps = fmnn__get_u64(r, "the training record");
    uint32_t count = fmnn__get_u32(r, "the training record");
    if (r->err)
        return r->err;
    if (epochs >= (uint64_t)FMNN__MAX_STEPS || steps >= (uint64_t)FMNN__MAX_STEPS)
        return fmnn__corrupt(r, "the counts of epochs and steps trained (%llu, %llu) are impossible (the limit is 2^62)",
                             (unsigned long long)epochs, (unsigned long long)steps);
    if (count > FMNN_MAX_METRICS)
        return fmnn__corrupt(r, "%u metrics, more than %d", (unsigned)count, FMNN_MAX_METRICS);
    t->epochs = (int64_t)epochs;
    t->steps = (int64_t)steps;
    t->n_metrics = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        char what[32];
        snprintf(what, sizeof what, "metric %u", (unsigned)i);
        t->metrics[i] = (fmnn_metric){ .kind = (fmnn_metric_kind)fmnn__get_u32(r, what) };
        int err = r->err ? r->err : fmnn__fields_get(r, &metric_table, &t->metrics[i], what);
        if (err)
            return err;
        /* The library writes each setting's value, never the 0 that asks
         * for its default: a file that has one was not written by it. */
        const fmnn_metric resolved = fmnn__metric_defaults(t->metrics[i]);
        if (memcmp(&resolved, &t->metrics[i], sizeof resolved) != 0)
            return fmnn__corrupt(r, "metric %u has a setting of 0, where files hold its value", (unsigned)i);
    }
    return FMNN_OK;
}

/*
 * Checks the architecture as compile will, then that the file holds
 * exactly the bytes its counts call for: the weights, the non-trainable
 * state, and the optimizer's state when the flag says so.  Only then may
 * compile allocate: its memory is bounded by the file size.
 */
static int check_architecture(fmnn__reader *r, fmnn_model *m, const struct fmnn_optimizer_ops *optimizer,
                              const fmnn_optimizer *settings, uint32_t version, uint32_t flags)
{
    size_t n_params, n_state;
    fmnn__reader peek;
    int err = fmnn__infer_and_peek(r, m, &n_params, &n_state, &peek);
    if (err)
        return err;
    if (n_params > peek.left / 4)
        return fmnn__truncated(r, "the weights");
    fmnn__skip(&peek, 4 * n_params, "the weights");
    uint64_t count = fmnn__get_u64(&peek, "the non-trainable count");
    if (peek.err)
        return r->err = peek.err;
    if (count != n_state)
        return fmnn__corrupt(r, "the architecture has %zu non-trainable values but the file says %llu", n_state,
                             (unsigned long long)count);
    if (n_state > peek.left / 4)
        return fmnn__truncated(r, "the non-trainable values");
    fmnn__skip(&peek, 4 * n_state, "the non-trainable values");
    if (version >= 4) {
        /* The metrics are chosen before compile checks them against the loss. */
        training_record t;
        if ((err = read_training(&peek, &t)))
            return r->err = err;
        if ((err = fmnn_model_set_metrics(m, t.n_metrics, t.metrics)))
            return fmnn__impossible(r, err);
    }
    uint64_t left = peek.left, want = 0;
    if (flags & FMNN__FILE_OPTIMIZER) {
        /* The settings' count (amsgrad adds one); the slot count read
         * with the state must agree. */
        uint64_t slots = (uint64_t)optimizer->n_slots(settings);
        if (left < 12 || (slots && n_params > (left - 12) / 4 / slots))
            return fmnn__truncated(r, "the optimizer state");
        want = 12 + 4 * slots * n_params;
    }
    if (left < want)
        return fmnn__truncated(r, "the optimizer state");
    if (left > want && !(flags & FMNN__FILE_FIT)) /* the fit record, read with the values, is checked there */
        return fmnn__corrupt(r, "%llu bytes follow the last record", (unsigned long long)(left - want));
    return FMNN_OK;
}

/* Reads the architecture and settings into a new, compiled model. */
static int read_model(fmnn__reader *r, uint32_t version, uint32_t flags, fmnn_model **out)
{
    fmnn_loss loss;
    int rank, dims[FMNN_MAX_RANK];
    int err = fmnn__read_loss_and_input(r, &loss, &rank, dims);
    if (err)
        return err;
    fmnn_optimizer o = { .kind = (fmnn_optimizer_kind)fmnn__get_u32(r, "the optimizer") };
    if (r->err)
        return r->err;
    const struct fmnn_optimizer_ops *optimizer = fmnn__optimizer_type(o.kind);
    if (!optimizer)
        return fmnn__corrupt(r, "unknown optimizer kind %u", (unsigned)o.kind);
    if ((err = fmnn__fields_get(r, &optimizer->settings, &o, "the optimizer")))
        return err;
    uint32_t n_layers = fmnn__get_u32(r, "the layer count");
    if (r->err)
        return r->err;
    if (n_layers < 1 || n_layers > FMNN__MAX_LAYERS || n_layers > r->left / (version >= 3 ? 12 : 8))
        return fmnn__corrupt(r, "the layer count %u is impossible for the file's size", (unsigned)n_layers);

    fmnn_model *m;
    if ((err = fmnn_model_new(&m, rank, dims)))
        return err;
    for (uint32_t i = 0; i < n_layers && !err; i++) {
        fmnn_layer *layer;
        if (!(err = read_layer(r, version, i, &layer)))
            err = fmnn_model_add(m, layer);
    }
    if (!err)
        err = check_architecture(r, m, optimizer, &o, version, flags);
    /* compile checks the optimizer and the loss against the output, like
     * for a model built by hand; its errors name the layer. */
    if (!err && (err = fmnn__model_compile(m, loss, &o, 0, 1)))
        err = fmnn__impossible(r, err);
    if (err) {
        fmnn_model_free(m);
        return err;
    }
    *out = m;
    return FMNN_OK;
}

/* The values after the architecture; check_architecture has checked
 * their counts against the file's size. */
static int read_values(fmnn__reader *r, fmnn_model *m, uint32_t version, uint32_t flags)
{
    fmnn__get_u64(r, "the parameter count");
    fmnn__get_floats(r, m->params, m->n_params, "the weights");
    fmnn__get_u64(r, "the non-trainable count");
    fmnn__get_floats(r, m->state, m->n_state, "the non-trainable values");
    training_record t = { 0 };
    int err = version >= 4 ? read_training(r, &t) : r->err;
    if (err)
        return err;
    m->epochs_trained = t.epochs;
    m->steps_trained = t.steps;
    const int with_optimizer = (flags & FMNN__FILE_OPTIMIZER) != 0;
    if (with_optimizer) {
        uint64_t step = fmnn__get_u64(r, "the optimizer state");
        uint32_t slots = fmnn__get_u32(r, "the optimizer state");
        if (r->err)
            return r->err;
        if (step >= (uint64_t)FMNN__MAX_STEPS)
            return fmnn__corrupt(r, "the optimizer step count %llu is impossible (the limit is 2^62)",
                                 (unsigned long long)step);
        if (slots != (uint32_t)m->slots.count)
            return fmnn__corrupt(r, "%u optimizer state arrays, but %s with these settings keeps %d", (unsigned)slots,
                                 m->optimizer_ops->name, m->slots.count);
        m->step = (int64_t)step;
        if (version < 4) /* before the training record, the optimizer's steps seeded dropout */
            m->steps_trained = m->step;
        for (uint32_t k = 0; k < slots; k++)
            fmnn__get_floats(r, m->slots.arrays[k], m->n_params, "the optimizer state");
    }
    if (r->err)
        return r->err;
    if ((flags & FMNN__FILE_FIT) && (err = fmnn__fit_state_read(r, m, &m->resume)))
        return err;
    if (r->left != 0)
        return fmnn__corrupt(r, "%zu bytes follow the last record", r->left);
    return fmnn__check_loaded(r, m, with_optimizer);
}

/* The model in a payload that fmnn__file_load read from path. */
static int model_of_payload(const unsigned char *data, size_t size, uint32_t version, uint32_t flags,
                            const char *path, fmnn_model **out)
{
    fmnn_model *m = NULL;
    fmnn__reader r = { data, size, path, 0 };
    int err;
    if (version == 1) {
        err = fmnn__read_format1(&r, flags, &m);
    } else {
        err = read_model(&r, version, flags, &m);
        if (!err && (err = read_values(&r, m, version, flags))) {
            fmnn_model_free(m);
            m = NULL;
        }
    }
    if (err == FMNN_ENOMEM) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s", fmnn_last_error());
        if (strncmp(detail, path, strlen(path)) != 0)
            fmnn__error(FMNN_ENOMEM, "%s: %s", path, detail);
    }
    *out = m;
    return err;
}

FMNN_API int fmnn_model_load(fmnn_model **out, const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_load: out or path is NULL");
    unsigned char *data;
    size_t size;
    uint32_t version = 0, flags = 0;
    int err = fmnn__file_load(path, &data, &size, &version, &flags);
    if (err)
        return err;
    err = model_of_payload(data, size, version, flags, path, out);
    fmnn__free(data);
    return err;
}

/* ---- restoring into a model ------------------------------------------------ */

/* Whether a loaded model is the same network, trained the same way, as m:
 * the one whose training state it may take over. */
static const char *incompatible(const fmnn_model *m, const fmnn_model *t)
{
    if (t->n_layers != m->n_layers || t->loss != m->loss)
        return "its layers or loss differ";
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *a = m->layers[i], *b = t->layers[i];
        int same = a->ops == b->ops && a->frozen == b->frozen && a->out.rank == b->out.rank;
        for (int d = 0; same && d < a->out.rank; d++)
            same = a->out.dims[d] == b->out.dims[d];
        /* Every option too (each a 4-byte value in its field table). */
        const fmnn_fields *options = &a->ops->config;
        for (int f = 0; same && f < options->count; f++)
            same = !memcmp((const char *)a + options->fields[f].offset, (const char *)b + options->fields[f].offset, 4);
        if (!same)
            return "its layers differ";
    }
    if (t->n_params != m->n_params || t->n_state != m->n_state)
        return "its weights differ in number";
    if (t->optimizer.kind != m->optimizer.kind || t->slots.count != m->slots.count)
        return "its optimizer differs";
    if (t->n_metric_sums != m->n_metric_sums)
        return "its metrics differ";
    return NULL;
}

/* The file at path as rank 0 reads it, loaded on every process: the
 * others need not see rank 0's disk.  Agreed.  Without a collective,
 * fmnn_model_load. */
static int load_on_every_process(const fmnn_model *m, const char *path, fmnn_model **out)
{
    *out = NULL;
    if (!m->group)
        return fmnn_model_load(out, path);
    unsigned char *data = NULL;
    uint64_t head[3] = { 0 }; /* the payload's size, the format version, the flags */
    int err = FMNN_OK;
    if (fmnn__writes_files(m)) {
        size_t size = 0;
        uint32_t version = 0, flags = 0;
        err = fmnn__file_load(path, &data, &size, &version, &flags);
        head[0] = size;
        head[1] = version;
        head[2] = flags;
    }
    if (!(err = fmnn__agree(m, err)) && !(err = fmnn__broadcast(m, head, sizeof head, "a backup's size")) &&
        !fmnn__writes_files(m) && !(data = fmnn__alloc(head[0] ? (size_t)head[0] : 1, "a backup from rank 0")))
        err = FMNN_ENOMEM;
    if (!(err = fmnn__agree(m, err)) && !(err = fmnn__broadcast(m, data, (size_t)head[0], "a backup")))
        err = model_of_payload(data, (size_t)head[0], (uint32_t)head[1], (uint32_t)head[2], path, out);
    fmnn__free(data);
    if ((err = fmnn__agree(m, err))) {
        fmnn_model_free(*out);
        *out = NULL;
    }
    return err;
}

int fmnn__model_restore(fmnn_model *m, const char *path, const char *fn)
{
    fmnn_model *t;
    int err = load_on_every_process(m, path, &t);
    if (err)
        return err;
    const char *why = incompatible(m, t);
    if (why || !t->resume) {
        fmnn_model_free(t);
        return fmnn__error(FMNN_EINVAL, "%s: %s is not a backup of this model's fit: %s", fn, path,
                           why ? why : "it holds no fit state");
    }
    memcpy(m->params, t->params, m->n_params * sizeof(float));
    if (m->n_state)
        memcpy(m->state, t->state, m->n_state * sizeof(float));
    m->optimizer = t->optimizer; /* its rate, as ReduceLROnPlateau left it */
    for (int k = 0; k < m->slots.count; k++)
        memcpy(m->slots.arrays[k], t->slots.arrays[k], m->n_params * sizeof(float));
    m->step = t->step;
    m->epochs_trained = t->epochs_trained;
    m->steps_trained = t->steps_trained;
    fmnn__fit_state_free(m->resume);
    m->resume = t->resume;
    t->resume = NULL;
    fmnn_model_free(t);
    return FMNN_OK;
}
