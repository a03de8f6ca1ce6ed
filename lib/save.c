/*
 * save.c - model files: the architecture, the loss, the optimizer and all
 * weights (optionally with the optimizer's state), little-endian, with a
 * CRC-32 over the payload.  docs/FORMAT.md describes the layout.
 *
 * Saving is atomic: the file is written under a temporary name in the
 * same directory, flushed to disk, and only then renamed over the target,
 * so a failure at any point leaves an existing file as it was.
 * Loading trusts nothing: every count is checked against the bytes that
 * are really there before anything is allocated or read, and every
 * layer's options are range-checked before its shapes are inferred.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "model_impl.h"

static const unsigned char MAGIC[8] = { 0x89, 'F', 'M', 'N', 'N', '\r', '\n', 0x1a };
#define FORMAT_VERSION 1u
#define HEADER_SIZE 32
#define FLAG_OPTIMIZER 1u
#define MAX_VALUES ((uint64_t)1 << 31) /* values per sample in any activation */
#define MAX_PARAMS ((uint64_t)1 << 60)
#define LAYER_RECORD 44 /* code, activation, l1, l2, 6 ints, rate */

/* ---- writing ------------------------------------------------------------ */

typedef struct writer {
    FILE *file;
    uLong crc;
    uint64_t size;
    int failed;
} writer;

static void put_bytes(writer *w, const void *data, size_t n)
{
    if (w->failed || n == 0)
        return;
    errno = 0;
    if (fwrite(data, 1, n, w->file) != n) {
        w->failed = errno ? errno : EIO;
        return;
    }
    w->crc = crc32(w->crc, data, (uInt)n); /* n <= 4096 */
    w->size += n;
}

static void le32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void put_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    le32(b, v);
    put_bytes(w, b, 4);
}

static void put_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    le64(b, v);
    put_bytes(w, b, 8);
}

static void put_f32(writer *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(w, v);
}

/* Floats in blocks, converted to little-endian on the way. */
static void put_floats(writer *w, const float *f, size_t n)
{
    unsigned char block[4096];
    while (n > 0 && !w->failed) {
        size_t count = n < sizeof block / 4 ? n : sizeof block / 4;
        for (size_t i = 0; i < count; i++) {
            uint32_t v;
            memcpy(&v, &f[i], 4);
            le32(block + 4 * i, v);
        }
        put_bytes(w, block, 4 * count);
        f += count;
        n -= count;
    }
}

static void put_payload(writer *w, const fmnn_model *m, int with_optimizer)
{
    put_u32(w, (uint32_t)m->loss);
    put_u32(w, (uint32_t)m->input.rank);
    for (int d = 0; d < m->input.rank; d++)
        put_u32(w, (uint32_t)m->input.dims[d]);
    const fmnn_optimizer *o = &m->optimizer;
    put_u32(w, (uint32_t)o->kind);
    put_f32(w, o->learning_rate);
    put_f32(w, o->beta_1);
    put_f32(w, o->beta_2);
    put_f32(w, o->epsilon);
    put_f32(w, o->momentum);
    put_u32(w, (uint32_t)o->nesterov);
    put_u32(w, (uint32_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        fmnn_layer_config config = { { 0 }, 0.0f };
        if (layer->ops->get_config)
            layer->ops->get_config(layer, &config);
        put_u32(w, layer->ops->code);
        put_u32(w, (uint32_t)layer->activation);
        put_f32(w, layer->regularizer.l1);
        put_f32(w, layer->regularizer.l2);
        for (int k = 0; k < 6; k++)
            put_u32(w, (uint32_t)config.ints[k]);
        put_f32(w, config.rate);
    }
    put_u64(w, m->n_params);
    put_floats(w, m->params, m->n_params);
    if (with_optimizer) {
        put_u64(w, (uint64_t)m->step);
        put_floats(w, m->adam_m, m->n_params);
        put_floats(w, m->adam_v, m->n_params);
    }
}

/* The directory of path, so that the rename can be made durable too. */
static void sync_directory(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int write_file(const fmnn_model *m, FILE *file, int with_optimizer, int *error)
{
    unsigned char header[HEADER_SIZE] = { 0 };
    writer w = { file, crc32(0L, Z_NULL, 0), 0, 0 };
    /* The header holds the payload's size and CRC: write a blank one,
     * then the payload, then come back for the real header. */
    errno = 0;
    if (fwrite(header, 1, HEADER_SIZE, file) != HEADER_SIZE) {
        *error = errno ? errno : EIO;
        return -1;
    }
    put_payload(&w, m, with_optimizer);
    if (w.failed) {
        *error = w.failed;
        return -1;
    }
    memcpy(header, MAGIC, 8);
    le32(header + 8, FORMAT_VERSION);
    le32(header + 12, with_optimizer ? FLAG_OPTIMIZER : 0u);
    le64(header + 16, w.size);
    le32(header + 24, (uint32_t)w.crc);
    le32(header + 28, 0u); /* reserved */
    errno = 0;
    if (fseek(file, 0, SEEK_SET) != 0 || fwrite(header, 1, HEADER_SIZE, file) != HEADER_SIZE ||
        fflush(file) != 0 || fsync(fileno(file)) != 0) {
        *error = errno ? errno : EIO;
        return -1;
    }
    return 0;
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

    /* A new name in the target's directory, so that rename() is atomic.
     * O_EXCL never reuses a name: a leftover of a crashed process with
     * the same pid only makes us try the next one. */
    static _Thread_local unsigned counter;
    char temp[4096];
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        if (snprintf(temp, sizeof temp, "%s.tmp-%ld-%u", path, (long)getpid(), counter++) >= (int)sizeof temp)
            return fmnn__error(FMNN_EIO, "fmnn_model_save: path is too long: %s", path);
        fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return fmnn__error(FMNN_EIO, "fmnn_model_save: cannot create %s: %s", temp, strerror(errno));
    FILE *file = fdopen(fd, "wb");
    if (!file) {
        int e = errno;
        close(fd);
        unlink(temp);
        return fmnn__error(FMNN_EIO, "fmnn_model_save: cannot write %s: %s", temp, strerror(e));
    }
    int error = 0;
    int failed = write_file(m, file, flags & FMNN_SAVE_OPTIMIZER, &error);
    errno = 0;
    if (fclose(file) != 0 && !failed) {
        failed = -1;
        error = errno;
    }
    if (!failed && rename(temp, path) != 0) {
        failed = -1;
        error = errno;
    }
    if (failed) {
        unlink(temp);
        return fmnn__error(FMNN_EIO, "fmnn_model_save: writing %s failed: %s; any existing file is unchanged",
                           path, strerror(error ? error : EIO));
    }
    sync_directory(path);
    return FMNN_OK;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct reader {
    const unsigned char *p;
    size_t left;
    const char *path;
    int err;
} reader;

/* Records "<path>: corrupt model file: <detail>" once; returns FMNN_EFORMAT. */
static int bad(reader *r, const char *fmt, ...) FMNN_PRINTF(2, 3);

static int bad(reader *r, const char *fmt, ...)
{
    if (r->err)
        return r->err;
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    r->err = fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: %s", r->path, detail);
    return r->err;
}

static int truncated(reader *r, const char *what)
{
    return bad(r, "the payload ends inside %s", what);
}

static uint32_t get_u32(reader *r, const char *what)
{
    if (r->err || r->left < 4) {
        truncated(r, what);
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t get_u64(reader *r, const char *what)
{
    uint64_t lo = get_u32(r, what);
    return lo | (uint64_t)get_u32(r, what) << 32;
}

static float get_f32(reader *r, const char *what)
{
    uint32_t v = get_u32(r, what);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static void get_floats(reader *r, float *out, size_t n, const char *what)
{
    if (r->err || r->left / 4 < n) {
        truncated(r, what);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = get_f32(r, what);
}

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
static int check_record(reader *r, uint32_t i, const record *rec)
{
    if (rec->code < FMNN_CODE_DENSE || rec->code > FMNN_CODE_FLATTEN)
        return bad(r, "layer %u has the unknown type code %u", (unsigned)i, (unsigned)rec->code);
    const char *type = TYPE_NAMES[rec->code];
    int has_activation = rec->code == FMNN_CODE_DENSE || rec->code == FMNN_CODE_CONV2D ||
                         rec->code == FMNN_CODE_ACTIVATION;
    int has_kernel = rec->code == FMNN_CODE_DENSE || rec->code == FMNN_CODE_CONV2D;
    if (rec->activation > FMNN_TANH || (!has_activation && rec->activation != 0))
        return bad(r, "layer %u (%s) has the invalid activation %u", (unsigned)i, type,
                   (unsigned)rec->activation);
    if (!has_kernel && !(zero_bits(rec->l1) && zero_bits(rec->l2)))
        return bad(r, "layer %u (%s) has a regularizer but no kernel", (unsigned)i, type);
    if (!isfinite(rec->l1) || !isfinite(rec->l2) || rec->l1 < 0.0f || rec->l2 < 0.0f)
        return bad(r, "layer %u (%s) has an invalid regularizer l1=%g l2=%g (they must be finite and >= 0)",
                   (unsigned)i, type, (double)rec->l1, (double)rec->l2);
    int padding_at = rec->code == FMNN_CODE_CONV2D ? 5 : rec->code == FMNN_CODE_MAXPOOL2D ? 4 : -1;
    for (int k = 0; k < 6; k++) {
        int32_t v = rec->ints[k];
        if (k >= INTS_USED[rec->code]) {
            if (v != 0)
                return bad(r, "layer %u (%s) has the unused option %d set to %ld", (unsigned)i, type, k,
                           (long)v);
        } else if (k == padding_at) {
            if (v != FMNN_PADDING_VALID && v != FMNN_PADDING_SAME)
                return bad(r, "layer %u (%s) has the unknown padding %ld", (unsigned)i, type, (long)v);
        } else if (!fmnn__valid_size(v)) {
            return bad(r, "layer %u (%s) has option %d = %ld, not in 1..%d", (unsigned)i, type, k, (long)v,
                       FMNN__MAX_SIZE);
        }
    }
    if (rec->code == FMNN_CODE_DROPOUT) {
        if (!(rec->rate >= 0.0f && rec->rate < 1.0f))
            return bad(r, "layer %u (Dropout) has the rate %g, not in [0, 1)", (unsigned)i, (double)rec->rate);
    } else if (!zero_bits(rec->rate)) {
        return bad(r, "layer %u (%s) has a rate but is not a Dropout", (unsigned)i, type);
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
static int impossible(reader *r, int status)
{
    if (status == FMNN_ENOMEM)
        return status;
    char detail[400];
    snprintf(detail, sizeof detail, "%s", fmnn_last_error());
    return bad(r, "impossible architecture: %s", detail);
}

/*
 * Infers every shape as compile will (each layer's infer refuses sizes
 * whose arithmetic would overflow an int), and checks what compile takes
 * for granted: no activation has more than MAX_VALUES values per sample, and the parameter count is the one the file holds, with
 * exactly the bytes for the weights (and the optimizer's state) after it.
 * Only then may compile allocate: its memory is bounded by the file size.
 */
static int check_architecture(reader *r, fmnn_model *m, uint32_t flags)
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
                return bad(r, "impossible architecture: %s (%s): output dimension %d is empty", layer->name,
                           layer->ops->type, d);
            values *= (uint64_t)layer->out.dims[d];
            if (values > MAX_VALUES)
                return bad(r, "impossible architecture: %s (%s): the output has more than %llu values per sample",
                           layer->name, layer->ops->type, (unsigned long long)MAX_VALUES);
        }
        if ((uint64_t)(unsigned)layer->fan_in + (uint64_t)(unsigned)layer->fan_out > INT_MAX ||
            layer->n_kernel > MAX_PARAMS || layer->n_bias > MAX_PARAMS)
            return bad(r, "impossible architecture: %s (%s) is too large", layer->name, layer->ops->type);
        n_params += layer->n_kernel + layer->n_bias;
        if (n_params > MAX_PARAMS)
            return bad(r, "impossible architecture: more than %llu parameters", (unsigned long long)MAX_PARAMS);
        shape = layer->out;
    }

    /* The count is read again with the weights; here it is only peeked. */
    reader peek = *r;
    uint64_t count = get_u64(&peek, "the parameter count");
    if (peek.err)
        return r->err = peek.err;
    if (count != n_params)
        return bad(r, "the architecture has %llu parameters but the file says %llu",
                   (unsigned long long)n_params, (unsigned long long)count);
    uint64_t left = peek.left;
    if (n_params > left / 4)
        return truncated(r, "the weights");
    uint64_t want = 4 * n_params;
    if (flags & FLAG_OPTIMIZER)
        want += 8 + 8 * n_params;
    if (left < want)
        return truncated(r, "the optimizer state");
    if (left > want)
        return bad(r, "%llu bytes follow the last record", (unsigned long long)(left - want));
    return FMNN_OK;
}

/* Reads the architecture into a new, compiled model. */
static int read_model(reader *r, uint32_t flags, fmnn_model **out)
{
    uint32_t loss = get_u32(r, "the loss");
    uint32_t rank = get_u32(r, "the input shape");
    if (r->err)
        return r->err;
    if (loss > FMNN_LOSS_MSE)
        return bad(r, "unknown loss %u", (unsigned)loss);
    if (rank < 1 || rank > FMNN_MAX_RANK - 1)
        return bad(r, "input rank %u is not in 1..%d", (unsigned)rank, FMNN_MAX_RANK - 1);
    int dims[FMNN_MAX_RANK] = { 0 };
    uint64_t values = 1;
    for (uint32_t d = 0; d < rank; d++) {
        uint32_t v = get_u32(r, "the input shape");
        if (r->err)
            return r->err;
        if (!fmnn__valid_size(v))
            return bad(r, "input dimension %u is %u, not in 1..%d", (unsigned)d, (unsigned)v, FMNN__MAX_SIZE);
        values *= v;
        if (values > MAX_VALUES)
            return bad(r, "the input has more than %llu values per sample", (unsigned long long)MAX_VALUES);
        dims[d] = (int)v;
    }
    fmnn_optimizer o;
    uint32_t kind = get_u32(r, "the optimizer");
    o.kind = kind == FMNN_OPTIMIZER_SGD ? FMNN_OPTIMIZER_SGD : FMNN_OPTIMIZER_ADAM;
    o.learning_rate = get_f32(r, "the optimizer");
    o.beta_1 = get_f32(r, "the optimizer");
    o.beta_2 = get_f32(r, "the optimizer");
    o.epsilon = get_f32(r, "the optimizer");
    o.momentum = get_f32(r, "the optimizer");
    o.nesterov = (int)get_u32(r, "the optimizer");
    uint32_t n_layers = get_u32(r, "the layer count");
    if (r->err)
        return r->err;
    if (kind > FMNN_OPTIMIZER_SGD)
        return bad(r, "unknown optimizer kind %u", (unsigned)kind);
    if (n_layers < 1 || n_layers > FMNN__MAX_LAYERS || n_layers > r->left / LAYER_RECORD)
        return bad(r, "the layer count %u is impossible for the file's size", (unsigned)n_layers);

    fmnn_model *m;
    int err = fmnn_model_new(&m, (int)rank, dims);
    if (err)
        return err;
    for (uint32_t i = 0; i < n_layers && !err; i++) {
        record rec;
        rec.code = get_u32(r, "a layer");
        rec.activation = get_u32(r, "a layer");
        rec.l1 = get_f32(r, "a layer");
        rec.l2 = get_f32(r, "a layer");
        for (int k = 0; k < 6; k++)
            rec.ints[k] = (int32_t)get_u32(r, "a layer");
        rec.rate = get_f32(r, "a layer");
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

static int read_weights(reader *r, fmnn_model *m, uint32_t flags)
{
    uint64_t n = get_u64(r, "the parameter count");
    if (r->err)
        return r->err;
    if (n != m->n_params)
        return bad(r, "the architecture has %zu parameters but the file says %llu", m->n_params,
                   (unsigned long long)n);
    get_floats(r, m->params, m->n_params, "the weights");
    if (flags & FLAG_OPTIMIZER) {
        uint64_t step = get_u64(r, "the optimizer state");
        if (!r->err && step >= (uint64_t)FMNN__MAX_STEPS)
            return bad(r, "the optimizer step count %llu is impossible (the limit is 2^62)",
                       (unsigned long long)step);
        m->step = (int64_t)step;
        get_floats(r, m->adam_m, m->n_params, "the optimizer state");
        get_floats(r, m->adam_v, m->n_params, "the optimizer state");
    }
    if (r->err)
        return r->err;
    if (r->left != 0)
        return bad(r, "%zu bytes follow the last record", r->left);
    size_t at = first_nonfinite(m->params, m->n_params);
    if (at < m->n_params)
        return bad(r, "weight %zu is NaN or Inf", at);
    if (flags & FLAG_OPTIMIZER) {
        if ((at = first_nonfinite(m->adam_m, m->n_params)) < m->n_params ||
            (at = first_nonfinite(m->adam_v, m->n_params)) < m->n_params)
            return bad(r, "optimizer state %zu is NaN or Inf", at);
        if (m->optimizer.kind == FMNN_OPTIMIZER_ADAM)
            for (size_t i = 0; i < m->n_params; i++)
                if (m->adam_v[i] < 0.0f)
                    return bad(r, "Adam's second moment %zu is negative", i);
    }
    return FMNN_OK;
}

/* Reads and checks the header: the magic, the version, the flags, the
 * reserved word, and that the payload size is the file's. */
static int read_header(FILE *file, const char *path, uint64_t file_size, uint32_t *flags, uint64_t *payload,
                       uint32_t *crc)
{
    unsigned char h[HEADER_SIZE];
    if (file_size < HEADER_SIZE || fread(h, 1, HEADER_SIZE, file) != HEADER_SIZE)
        return fmnn__error(FMNN_EFORMAT, "%s: not a model file: only %llu bytes, less than the %d-byte header",
                           path, (unsigned long long)file_size, HEADER_SIZE);
    if (memcmp(h, MAGIC, 8) != 0)
        return fmnn__error(FMNN_EFORMAT, "%s: not a libfmnn model file (wrong magic number)", path);
    reader r = { h + 8, HEADER_SIZE - 8, path, 0 };
    uint32_t version = get_u32(&r, "the header");
    *flags = get_u32(&r, "the header");
    *payload = get_u64(&r, "the header");
    *crc = get_u32(&r, "the header");
    uint32_t reserved = get_u32(&r, "the header");
    if (version != FORMAT_VERSION)
        return fmnn__error(FMNN_EFORMAT, "%s: model file format version %u is not supported (this is %u)", path,
                           (unsigned)version, FORMAT_VERSION);
    if (*flags & ~FLAG_OPTIMIZER)
        return fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: unknown flags 0x%x", path, (unsigned)*flags);
    if (reserved != 0)
        return fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: the reserved header word is 0x%x, not 0", path,
                           (unsigned)reserved);
    if (*payload != file_size - HEADER_SIZE)
        return fmnn__error(FMNN_EFORMAT,
                           "%s: %s model file: the header announces %llu payload bytes, the file has %llu", path,
                           *payload > file_size - HEADER_SIZE ? "truncated" : "corrupt",
                           (unsigned long long)*payload, (unsigned long long)(file_size - HEADER_SIZE));
    return FMNN_OK;
}

/* zlib's crc32 takes an unsigned int length: large payloads go in parts. */
static uint32_t crc_of(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt part = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, part);
        p += part;
        n -= part;
    }
    return (uint32_t)crc;
}

FMNN_API int fmnn_model_load(fmnn_model **out, const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_load: out or path is NULL");
    FILE *file = fopen(path, "rb");
    if (!file)
        return fmnn__error(FMNN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(file);
        return fmnn__error(FMNN_EIO, "%s: not a regular file", path);
    }
    uint32_t flags = 0, crc = 0;
    uint64_t payload = 0;
    int err = read_header(file, path, (uint64_t)st.st_size, &flags, &payload, &crc);
    if (err) {
        fclose(file);
        return err;
    }
    if (payload > SIZE_MAX - 1) {
        fclose(file);
        return fmnn__error(FMNN_EFORMAT, "%s: the model file is too large", path);
    }
    /* The payload is no larger than the file itself, so this allocation
     * is bounded by bytes that really exist. */
    unsigned char *data = fmnn__alloc(payload ? (size_t)payload : 1, "the model file");
    if (!data) {
        fclose(file);
        char detail[400];
        snprintf(detail, sizeof detail, "%s", fmnn_last_error());
        return fmnn__error(FMNN_ENOMEM, "%s: %s", path, detail);
    }
    if (fread(data, 1, (size_t)payload, file) != (size_t)payload)
        err = fmnn__error(FMNN_EIO, "%s: read error: %s", path, ferror(file) ? strerror(errno) : "file shrank");
    else if (crc_of(data, (size_t)payload) != crc)
        err = fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: checksum mismatch", path);
    fclose(file);
    fmnn_model *m = NULL;
    if (!err) {
        reader r = { data, (size_t)payload, path, 0 };
        err = read_model(&r, flags, &m);
        if (!err && (err = read_weights(&r, m, flags))) {
            fmnn_model_free(m);
            m = NULL;
        }
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
