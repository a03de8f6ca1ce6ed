/*
 * format1.c - reads model files of format 1, which the first library
 * wrote (docs/FORMAT.md keeps its layout): fixed 44-byte layer records of
 * the six layer types it had, fixed optimizer fields, and Adam's two
 * moments (SGD's velocity in the first) after the weights.  This file is
 * frozen with the format: new layer types never appear in it.
 *
 * As for format 2, nothing is trusted: each record is range-checked
 * before a constructor sees it, and the model is checked as compile
 * checks it before anything large is allocated.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "save.h"

#define LAYER_RECORD 44 /* code, activation, l1, l2, 6 ints, rate */

/* Format 1's layer codes. */
enum { DENSE = 1, CONV2D, MAXPOOL2D, DROPOUT, ACTIVATION, FLATTEN };

static const char *const TYPE_NAMES[] = { "?", "Dense", "Conv2D", "MaxPooling2D", "Dropout", "Activation",
                                          "Flatten" };

/* How many of the six ints each layer type uses; the rest must be 0. */
static const int INTS_USED[] = { 0, 1, 6, 5, 0, 0, 0 };

/* One layer record as it is in the file. */
typedef struct record {
    uint32_t code, activation;
    float l1, l2;
    int32_t ints[6];
    float rate;
} record;

static int zero_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    return v == 0;
}

/*
 * Checks a record's fields before any constructor sees them: a known
 * type, a known activation, a finite non-negative regularizer, every size
 * and stride in 1..FMNN__MAX_SIZE, a padding of 0 or 1, a dropout rate in
 * [0, 1), and zeros in every field the type does not use (the writer
 * always wrote zeros there).
 */
static int check_record(fmnn__reader *r, uint32_t i, const record *rec)
{
    if (rec->code < DENSE || rec->code > FLATTEN)
        return fmnn__corrupt(r, "layer %u has the unknown type code %u", (unsigned)i, (unsigned)rec->code);
    const char *type = TYPE_NAMES[rec->code];
    int has_activation = rec->code == DENSE || rec->code == CONV2D || rec->code == ACTIVATION;
    int has_kernel = rec->code == DENSE || rec->code == CONV2D;
    if (rec->activation > FMNN_TANH || (!has_activation && rec->activation != 0))
        return fmnn__corrupt(r, "layer %u (%s) has the invalid activation %u", (unsigned)i, type,
                             (unsigned)rec->activation);
    if (!has_kernel && !(zero_bits(rec->l1) && zero_bits(rec->l2)))
        return fmnn__corrupt(r, "layer %u (%s) has a regularizer but no kernel", (unsigned)i, type);
    if (!isfinite(rec->l1) || !isfinite(rec->l2) || rec->l1 < 0.0f || rec->l2 < 0.0f)
        return fmnn__corrupt(r, "layer %u (%s) has an invalid regularizer l1=%g l2=%g (they must be finite and >= 0)",
                             (unsigned)i, type, (double)rec->l1, (double)rec->l2);
    int padding_at = rec->code == CONV2D ? 5 : rec->code == MAXPOOL2D ? 4 : -1;
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
            return fmnn__corrupt(r, "layer %u (%s) has option %d = %ld, not in 1..%d", (unsigned)i, type, k,
                                 (long)v, FMNN__MAX_SIZE);
        }
    }
    if (rec->code == DROPOUT) {
        if (!(rec->rate >= 0.0f && rec->rate < 1.0f))
            return fmnn__corrupt(r, "layer %u (Dropout) has the rate %g, not in [0, 1)", (unsigned)i,
                                 (double)rec->rate);
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
    case DENSE:
        return fmnn_dense(c[0], &(fmnn_dense_options){ .activation = activation, .kernel_regularizer = reg });
    case CONV2D:
        return fmnn_conv2d(c[0], c[1], c[2],
                           &(fmnn_conv2d_options){ .stride_h = c[3], .stride_w = c[4], .padding = (fmnn_padding)c[5],
                                                   .activation = activation, .kernel_regularizer = reg });
    case MAXPOOL2D:
        return fmnn_maxpool2d(c[0], c[1], &(fmnn_maxpool2d_options){ c[2], c[3], (fmnn_padding)c[4] });
    case DROPOUT:
        return fmnn_dropout(rec->rate);
    case ACTIVATION:
        return fmnn_activation(activation);
    case FLATTEN:
        return fmnn_flatten();
    }
    return NULL;
}

/* Checks the shapes as compile will, then that the parameter count is the
 * one the file holds, with exactly the bytes for the weights (and Adam's
 * two moments) after it, before compile allocates. */
static int check_architecture(fmnn__reader *r, fmnn_model *m, uint32_t flags)
{
    size_t n_params, n_state;
    fmnn__reader peek;
    int err = fmnn__infer_and_peek(r, m, &n_params, &n_state, &peek);
    if (err)
        return err;
    uint64_t left = peek.left;
    if (n_params > left / 4)
        return fmnn__truncated(r, "the weights");
    uint64_t want = 4 * (uint64_t)n_params;
    if (flags & FMNN__FILE_OPTIMIZER)
        want += 8 + 8 * (uint64_t)n_params;
    if (left < want)
        return fmnn__truncated(r, "the optimizer state");
    if (left > want)
        return fmnn__corrupt(r, "%llu bytes follow the last record", (unsigned long long)(left - want));
    return FMNN_OK;
}

/* Reads the architecture into a new, compiled model. */
static int read_model(fmnn__reader *r, uint32_t flags, fmnn_model **out)
{
    fmnn_loss loss;
    int rank, dims[FMNN_MAX_RANK];
    int err = fmnn__read_loss_and_input(r, &loss, &rank, dims);
    if (err)
        return err;
    if (loss > FMNN_LOSS_MSE) /* the losses format 1 had */
        return fmnn__corrupt(r, "unknown loss %u", (unsigned)loss);
    uint32_t kind = fmnn__get_u32(r, "the optimizer");
    fmnn_optimizer o = kind == FMNN_OPTIMIZER_SGD ? fmnn_sgd(0.0f, 0.0f) : fmnn_adam();
    o.learning_rate = fmnn__get_f32(r, "the optimizer");
    float beta_1 = fmnn__get_f32(r, "the optimizer");
    float beta_2 = fmnn__get_f32(r, "the optimizer");
    float epsilon = fmnn__get_f32(r, "the optimizer");
    float momentum = fmnn__get_f32(r, "the optimizer");
    int nesterov = (int)fmnn__get_u32(r, "the optimizer");
    if (kind == FMNN_OPTIMIZER_SGD)
        o.sgd = (fmnn_sgd_settings){ momentum, nesterov };
    else
        o.adam = (fmnn_adam_settings){ .beta_1 = beta_1, .beta_2 = beta_2, .epsilon = epsilon };
    uint32_t n_layers = fmnn__get_u32(r, "the layer count");
    if (r->err)
        return r->err;
    if (kind > FMNN_OPTIMIZER_SGD)
        return fmnn__corrupt(r, "unknown optimizer kind %u", (unsigned)kind);
    if (n_layers < 1 || n_layers > FMNN__MAX_LAYERS || n_layers > r->left / LAYER_RECORD)
        return fmnn__corrupt(r, "the layer count %u is impossible for the file's size", (unsigned)n_layers);

    fmnn_model *m;
    if ((err = fmnn_model_new(&m, rank, dims)))
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
    if (!err && (err = fmnn__model_compile(m, loss, &o, 0, 1)))
        err = fmnn__impossible(r, err);
    if (err) {
        fmnn_model_free(m);
        return err;
    }
    *out = m;
    return FMNN_OK;
}

static int read_weights(fmnn__reader *r, fmnn_model *m, uint32_t flags)
{
    fmnn__get_u64(r, "the parameter count"); /* checked by check_architecture */
    fmnn__get_floats(r, m->params, m->n_params, "the weights");
    const int with_optimizer = (flags & FMNN__FILE_OPTIMIZER) != 0;
    if (with_optimizer) {
        uint64_t step = fmnn__get_u64(r, "the optimizer state");
        if (!r->err && step >= (uint64_t)FMNN__MAX_STEPS)
            return fmnn__corrupt(r, "the optimizer step count %llu is impossible (the limit is 2^62)",
                                 (unsigned long long)step);
        m->step = (int64_t)step;
        m->steps_trained = m->step; /* what seeded dropout then */
        /* Two arrays, always: Adam's m and v, or SGD's velocity and an
         * unused array (zeros), which must be finite all the same. */
        fmnn__get_floats(r, m->slots.arrays[0], m->n_params, "the optimizer state");
        if (m->slots.count > 1)
            fmnn__get_floats(r, m->slots.arrays[1], m->n_params, "the optimizer state");
        else
            for (size_t i = 0; i < m->n_params && !r->err; i++)
                if (!isfinite(fmnn__get_f32(r, "the optimizer state")))
                    return fmnn__corrupt(r, "optimizer state %zu is NaN or Inf", m->n_params + i);
    }
    if (r->err)
        return r->err;
    if (r->left != 0)
        return fmnn__corrupt(r, "%zu bytes follow the last record", r->left);
    return fmnn__check_loaded(r, m, with_optimizer);
}

int fmnn__read_format1(fmnn__reader *r, uint32_t flags, fmnn_model **out)
{
    fmnn_model *m = NULL;
    int err = read_model(r, flags, &m);
    if (!err && (err = read_weights(r, m, flags))) {
        fmnn_model_free(m);
        m = NULL;
    }
    *out = m;
    return err;
}
