/*
 * save.c - what a model file says: the architecture, the loss, the
 * optimizer and all weights (optionally with the optimizer's state), laid
 * out as docs/FORMAT.md describes.  model_file.c writes and reads the
 * bytes, with the header, the checksum and the atomic replace.
 *
 * Loading trusts nothing: every count is checked against the bytes that
 * are really there before anything is allocated or read, and every
 * layer's options are range-checked before its shapes are inferred.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "model_file.h"
#include "model_impl.h"

#define MAX_VALUES ((uint64_t)1 << 31) /* values per sample in any activation */
#define MAX_PARAMS ((uint64_t)1 << 60)
#define LAYER_RECORD 44 /* code, activation, l1, l2, 6 ints, rate */

/* ---- writing ------------------------------------------------------------ */

/* The payload of a model file; context is a saving, below. */
typedef struct saving {
    const fmnn_model *model;
    int with_optimizer;
} saving;

static void put_payload(fmnn__writer *w, const void *context)
{
    const fmnn_model *m = ((const saving *)context)->model;
    int with_optimizer = ((const saving *)context)->with_optimizer;
    fmnn__put_u32(w, (uint32_t)m->loss);
    fmnn__put_u32(w, (uint32_t)m->input.rank);
    for (int d = 0; d < m->input.rank; d++)
        fmnn__put_u32(w, (uint32_t)m->input.dims[d]);
    const fmnn_optimizer *o = &m->optimizer;
    fmnn__put_u32(w, (uint32_t)o->kind);
    fmnn__put_f32(w, o->learning_rate);
    fmnn__put_f32(w, o->beta_1);
    fmnn__put_f32(w, o->beta_2);
    fmnn__put_f32(w, o->epsilon);
    fmnn__put_f32(w, o->momentum);
    fmnn__put_u32(w, (uint32_t)o->nesterov);
    fmnn__put_u32(w, (uint32_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        fmnn_layer_config config = { { 0 }, 0.0f };
        if (layer->ops->get_config)
            layer->ops->get_config(layer, &config);
        fmnn__put_u32(w, layer->ops->code);
        fmnn__put_u32(w, (uint32_t)layer->activation);
        fmnn__put_f32(w, layer->regularizer.l1);
        fmnn__put_f32(w, layer->regularizer.l2);
        for (int k = 0; k < 6; k++)
            fmnn__put_u32(w, (uint32_t)config.ints[k]);
        fmnn__put_f32(w, config.rate);
    }
    fmnn__put_u64(w, m->n_params);
    fmnn__put_floats(w, m->params, m->n_params);
    if (with_optimizer) {
        fmnn__put_u64(w, (uint64_t)m->step);
        fmnn__put_floats(w, m->adam_m, m->n_params);
        fmnn__put_floats(w, m->adam_v, m->n_params);
    }
}

/* Index of the first value of f[0..n) that is NaN or Inf, or n. */
static size_t first_nonfinite(const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(f[i]))
            return i;
    return n;
}

FMNN_API int fmnn_model_save(const fmnn_model *m, const char *path, unsigned flags)
{
    if (!m || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: model or path is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_save: compile the model before saving it to %s", path);
    if (flags & ~(unsigned)FMNN_SAVE_OPTIMIZER)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: unknown flags 0x%x (saving %s)", flags, path);
    /* The loader refuses NaN and Inf, so such a file could never be read
     * back: refuse it here, before it can replace a good one.  (fit never
     * leaves them; weights written through fmnn_model_weights() can.) */
    size_t at = first_nonfinite(m->params, m->n_params);
    if (at < m->n_params)
        return fmnn__error(FMNN_ENUMERIC, "fmnn_model_save: weight %zu is NaN or Inf, so %s is not written",
                           at, path);
    if ((flags & FMNN_SAVE_OPTIMIZER) && ((at = first_nonfinite(m->adam_m, m->n_params)) < m->n_params ||
                                          (at = first_nonfinite(m->adam_v, m->n_params)) < m->n_params))
        return fmnn__error(FMNN_ENUMERIC,
                           "fmnn_model_save: optimizer state %zu is NaN or Inf, so %s is not written", at, path);

    saving what = { m, (flags & FMNN_SAVE_OPTIMIZER) != 0 };
    return fmnn__file_save(path, what.with_optimizer ? FMNN__FILE_OPTIMIZER : 0u, put_payload, &what);
}

/* ---- reading ------------------------------------------------------------ */

/* One layer record as it is in the file. */
typedef struct record {
    uint32_t code, activation;
    float l1, l2;
    int32_t ints[6];
    float rate;
} record;

static const char *const TYPE_NAMES[] = { "?", "Dense", "Conv2D", "MaxPooling2D", "Dropout", "Activation",
                                          "Flatten" };

/* How many of the six ints each layer type uses; the rest must be 0. */
static const int INTS_USED[] = { 0, 1, 6, 5, 0, 0, 0 };

static int zero_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    return v == 0;
}

/*
 * Checks a record's fields before any constructor or shape inference
 * sees them: a known type, a known activation, a finite non-negative
 * regularizer, every size and stride in 1..FMNN__MAX_SIZE (which keeps
 * all the window and kernel arithmetic far from overflow), a padding of 0 or 1,
 * a dropout rate in [0, 1), and zeros in every field the type does not
 * use (the writer always writes zeros there).
 */
static int check_record(fmnn__reader *r, uint32_t i, const record *rec)
{
    if (rec->code < FMNN_CODE_DENSE || rec->code > FMNN_CODE_FLATTEN)
        return fmnn__corrupt(r, "layer %u has the unknown type code %u", (unsigned)i, (unsigned)rec->code);
    const char *type = TYPE_NAMES[rec->code];
    int has_activation = rec->code == FMNN_CODE_DENSE || rec->code == FMNN_CODE_CONV2D ||
                         rec->code == FMNN_CODE_ACTIVATION;
    int has_kernel = rec->code == FMNN_CODE_DENSE || rec->code == FMNN_CODE_CONV2D;
    if (rec->activation > FMNN_TANH || (!has_activation && rec->activation != 0))
        return fmnn__corrupt(r, "layer %u (%s) has the invalid activation %u", (unsigned)i, type,
                   (unsigned)rec->activation);
    if (!has_kernel && !(zero_bits(rec->l1) && zero_bits(rec->l2)))
        return fmnn__corrupt(r, "layer %u (%s) has a regularizer but no kernel", (unsigned)i, type);
    if (!isfinite(rec->l1) || !isfinite(rec->l2) || rec->l1 < 0.0f || rec->l2 < 0.0f)
        return fmnn__corrupt(r, "layer %u (%s) has an invalid regularizer l1=%g l2=%g (they must be finite and >= 0)",
                   (unsigned)i, type, (double)rec->l1, (double)rec->l2);
    int padding_at = rec->code == FMNN_CODE_CONV2D ? 5 : rec->code == FMNN_CODE_MAXPOOL2D ? 4 : -1;
    for (int k = 0; k < 6; k++) {
        int32_t v = rec->ints[k];
        if (k >= INTS_USED[rec->code]) {
            if (v != 0)
                return fmnn__corrupt(r, "layer %u (%s) has the unused option %d set to %ld", (unsigned)i, type, k,
                           (long)v);
        } else if (k == padding_at) {
            if (v != FMNN_PADDING_VALID && v != FMNN_PADDING_SAME)
                return fmnn__corrupt(r, "layer %u (%s) has the unknown padding %ld", (unsigned)i, type, (long)v);
        } else if (!fmnn__valid_size(v)) {
            return fmnn__corrupt(r, "layer %u (%s) has option %d = %ld, not in 1..%d", (unsigned)i, type, k, (long)v,
                       FMNN__MAX_SIZE);
        }
    }
    if (rec->code == FMNN_CODE_DROPOUT) {
        if (!(rec->rate >= 0.0f && rec->rate < 1.0f))
            return fmnn__corrupt(r, "layer %u (Dropout) has the rate %g, not in [0, 1)", (unsigned)i, (double)rec->rate);
    } else if (!zero_bits(rec->rate)) {
        return fmnn__corrupt(r, "layer %u (%s) has a rate but is not a Dropout", (unsigned)i, type);
    }
    return FMNN_OK;
}

/* Rebuilds one layer from its record, with the public constructors. */
static fmnn_layer *layer_from_record(const record *rec)
{
    fmnn_activation_kind activation = (fmnn_activation_kind)rec->activation;
    fmnn_regularizer reg = { rec->l1, rec->l2 };
    const int32_t *c = rec->ints;
    switch (rec->code) {
    case FMNN_CODE_DENSE:
        return fmnn_dense(c[0], &(fmnn_dense_options){ activation, reg });
    case FMNN_CODE_CONV2D:
        return fmnn_conv2d(c[0], c[1], c[2],
                           &(fmnn_conv2d_options){ c[3], c[4], (fmnn_padding)c[5], activation, reg });
    case FMNN_CODE_MAXPOOL2D:
        return fmnn_maxpool2d(c[0], c[1], &(fmnn_maxpool2d_options){ c[2], c[3], (fmnn_padding)c[4] });
    case FMNN_CODE_DROPOUT:
        return fmnn_dropout(rec->rate);
    case FMNN_CODE_ACTIVATION:
        return fmnn_activation(activation);
    case FMNN_CODE_FLATTEN:
        return fmnn_flatten();
    }
    return NULL;
}

/* Wraps the message a layer or compile left: "<path>: corrupt model file:
 * impossible architecture: conv2d (Conv2D): kernel 5x5 is larger ...". */
static int impossible(fmnn__reader *r, int status)
{
    if (status == FMNN_ENOMEM)
        return status;
    char detail[400];
    snprintf(detail, sizeof detail, "%s", fmnn_last_error());
    return fmnn__corrupt(r, "impossible architecture: %s", detail);
}

/*
 * Infers every shape as compile will (each layer's infer refuses sizes
 * whose arithmetic would overflow an int), and checks what compile takes
 * for granted: no activation has more than MAX_VALUES values per sample, and the parameter count is the one the file holds, with
 * exactly the bytes for the weights (and the optimizer's state) after it.
 * Only then may compile allocate: its memory is bounded by the file size.
 */
static int check_architecture(fmnn__reader *r, fmnn_model *m, uint32_t flags)
{
    fmnn_shape shape = m->input;
    uint64_t n_params = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        layer->in = shape;
        int err = layer->ops->infer(layer);
        if (err)
            return impossible(r, err);
        uint64_t values = 1;
        for (int d = 0; d < layer->out.rank; d++) {
            if (layer->out.dims[d] < 1)
                return fmnn__corrupt(r, "impossible architecture: %s (%s): output dimension %d is empty", layer->name,
                           layer->ops->type, d);
            values *= (uint64_t)layer->out.dims[d];
            if (values > MAX_VALUES)
                return fmnn__corrupt(r, "impossible architecture: %s (%s): the output has more than %llu values per sample",
                           layer->name, layer->ops->type, (unsigned long long)MAX_VALUES);
        }
        if ((uint64_t)(unsigned)layer->fan_in + (uint64_t)(unsigned)layer->fan_out > INT_MAX ||
            layer->n_kernel > MAX_PARAMS || layer->n_bias > MAX_PARAMS)
            return fmnn__corrupt(r, "impossible architecture: %s (%s) is too large", layer->name, layer->ops->type);
        n_params += layer->n_kernel + layer->n_bias;
        if (n_params > MAX_PARAMS)
            return fmnn__corrupt(r, "impossible architecture: more than %llu parameters", (unsigned long long)MAX_PARAMS);
        shape = layer->out;
    }

    /* The count is read again with the weights; here it is only peeked. */
    fmnn__reader peek = *r;
    uint64_t count = fmnn__get_u64(&peek, "the parameter count");
    if (peek.err)
        return r->err = peek.err;
    if (count != n_params)
        return fmnn__corrupt(r, "the architecture has %llu parameters but the file says %llu",
                   (unsigned long long)n_params, (unsigned long long)count);
    uint64_t left = peek.left;
    if (n_params > left / 4)
        return fmnn__truncated(r, "the weights");
    uint64_t want = 4 * n_params;
    if (flags & FMNN__FILE_OPTIMIZER)
        want += 8 + 8 * n_params;
    if (left < want)
        return fmnn__truncated(r, "the optimizer state");
    if (left > want)
        return fmnn__corrupt(r, "%llu bytes follow the last record", (unsigned long long)(left - want));
    return FMNN_OK;
}

/* Reads the architecture into a new, compiled model. */
static int read_model(fmnn__reader *r, uint32_t flags, fmnn_model **out)
{
    uint32_t loss = fmnn__get_u32(r, "the loss");
    uint32_t rank = fmnn__get_u32(r, "the input shape");
    if (r->err)
        return r->err;
    if (loss > FMNN_LOSS_MSE)
        return fmnn__corrupt(r, "unknown loss %u", (unsigned)loss);
    if (rank < 1 || rank > FMNN_MAX_RANK - 1)
        return fmnn__corrupt(r, "input rank %u is not in 1..%d", (unsigned)rank, FMNN_MAX_RANK - 1);
    int dims[FMNN_MAX_RANK] = { 0 };
    uint64_t values = 1;
    for (uint32_t d = 0; d < rank; d++) {
        uint32_t v = fmnn__get_u32(r, "the input shape");
        if (r->err)
            return r->err;
        if (!fmnn__valid_size(v))
            return fmnn__corrupt(r, "input dimension %u is %u, not in 1..%d", (unsigned)d, (unsigned)v, FMNN__MAX_SIZE);
        values *= v;
        if (values > MAX_VALUES)
            return fmnn__corrupt(r, "the input has more than %llu values per sample", (unsigned long long)MAX_VALUES);
        dims[d] = (int)v;
    }
    fmnn_optimizer o;
    uint32_t kind = fmnn__get_u32(r, "the optimizer");
    o.kind = kind == FMNN_OPTIMIZER_SGD ? FMNN_OPTIMIZER_SGD : FMNN_OPTIMIZER_ADAM;
    o.learning_rate = fmnn__get_f32(r, "the optimizer");
    o.beta_1 = fmnn__get_f32(r, "the optimizer");
    o.beta_2 = fmnn__get_f32(r, "the optimizer");
    o.epsilon = fmnn__get_f32(r, "the optimizer");
    o.momentum = fmnn__get_f32(r, "the optimizer");
    o.nesterov = (int)fmnn__get_u32(r, "the optimizer");
    uint32_t n_layers = fmnn__get_u32(r, "the layer count");
    if (r->err)
        return r->err;
    if (kind > FMNN_OPTIMIZER_SGD)
        return fmnn__corrupt(r, "unknown optimizer kind %u", (unsigned)kind);
    if (n_layers < 1 || n_layers > FMNN__MAX_LAYERS || n_layers > r->left / LAYER_RECORD)
        return fmnn__corrupt(r, "the layer count %u is impossible for the file's size", (unsigned)n_layers);

    fmnn_model *m;
    int err = fmnn_model_new(&m, (int)rank, dims);
    if (err)
        return err;
    for (uint32_t i = 0; i < n_layers && !err; i++) {
        record rec;
        rec.code = fmnn__get_u32(r, "a layer");
        rec.activation = fmnn__get_u32(r, "a layer");
        rec.l1 = fmnn__get_f32(r, "a layer");
        rec.l2 = fmnn__get_f32(r, "a layer");
        for (int k = 0; k < 6; k++)
            rec.ints[k] = (int32_t)fmnn__get_u32(r, "a layer");
        rec.rate = fmnn__get_f32(r, "a layer");
        if (r->err || (err = check_record(r, i, &rec)))
            break;
        err = fmnn_model_add(m, layer_from_record(&rec));
    }
    if (!err && r->err)
        err = r->err;
    if (!err)
        err = check_architecture(r, m, flags);
    /* compile checks the optimizer and the loss against the output, like
     * for a model built by hand; its errors name the layer. */
    if (!err && (err = fmnn_model_compile(m, (fmnn_loss)loss, &o, 0)))
        err = impossible(r, err);
    if (err) {
        fmnn_model_free(m);
        return err;
    }
    *out = m;
    return FMNN_OK;
}

static int read_weights(fmnn__reader *r, fmnn_model *m, uint32_t flags)
{
    uint64_t n = fmnn__get_u64(r, "the parameter count");
    if (r->err)
        return r->err;
    if (n != m->n_params)
        return fmnn__corrupt(r, "the architecture has %zu parameters but the file says %llu", m->n_params,
                   (unsigned long long)n);
    fmnn__get_floats(r, m->params, m->n_params, "the weights");
    if (flags & FMNN__FILE_OPTIMIZER) {
        uint64_t step = fmnn__get_u64(r, "the optimizer state");
        if (!r->err && step >= (uint64_t)FMNN__MAX_STEPS)
            return fmnn__corrupt(r, "the optimizer step count %llu is impossible (the limit is 2^62)",
                       (unsigned long long)step);
        m->step = (int64_t)step;
        fmnn__get_floats(r, m->adam_m, m->n_params, "the optimizer state");
        fmnn__get_floats(r, m->adam_v, m->n_params, "the optimizer state");
    }
    if (r->err)
        return r->err;
    if (r->left != 0)
        return fmnn__corrupt(r, "%zu bytes follow the last record", r->left);
    size_t at = first_nonfinite(m->params, m->n_params);
    if (at < m->n_params)
        return fmnn__corrupt(r, "weight %zu is NaN or Inf", at);
    if (flags & FMNN__FILE_OPTIMIZER) {
        if ((at = first_nonfinite(m->adam_m, m->n_params)) < m->n_params ||
            (at = first_nonfinite(m->adam_v, m->n_params)) < m->n_params)
            return fmnn__corrupt(r, "optimizer state %zu is NaN or Inf", at);
        if (m->optimizer.kind == FMNN_OPTIMIZER_ADAM)
            for (size_t i = 0; i < m->n_params; i++)
                if (m->adam_v[i] < 0.0f)
                    return fmnn__corrupt(r, "Adam's second moment %zu is negative", i);
    }
    return FMNN_OK;
}

FMNN_API int fmnn_model_load(fmnn_model **out, const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_load: out or path is NULL");
    unsigned char *data;
    size_t size;
    uint32_t flags = 0;
    int err = fmnn__file_load(path, &data, &size, &flags);
    if (err)
        return err;
    fmnn_model *m = NULL;
    fmnn__reader r = { data, size, path, 0 };
    err = read_model(&r, flags, &m);
    if (!err && (err = read_weights(&r, m, flags))) {
        fmnn_model_free(m);
        m = NULL;
    }
    fmnn__free(data);
    if (err == FMNN_ENOMEM) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s", fmnn_last_error());
        if (strncmp(detail, path, strlen(path)) != 0)
            fmnn__error(FMNN_ENOMEM, "%s: %s", path, detail);
    }
    *out = m;
    return err;
}
