/*
 * save.c - model files: the architecture, the loss, the optimizer and all
 * weights (optionally with the optimizer's state), little-endian, with a
 * CRC-32 over the payload.  docs/FORMAT.md describes the layout.
 *
 * Saving is atomic: the file is written under a temporary name in the
 * same directory, flushed to disk, and only then renamed over the target,
 * so a failure at any point leaves an existing file as it was.
 * Loading trusts nothing: every count is checked against the bytes that
 * are really there before anything is allocated or read.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
#define MAX_LAYERS 4096u
#define MAX_DIM (1u << 24)
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
    if (fwrite(data, 1, n, w->file) != n) {
        w->failed = errno ? errno : EIO;
        return;
    }
    w->crc = crc32(w->crc, data, (uInt)n);
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
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
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
    if (fseek(file, 0, SEEK_SET) != 0 || fwrite(header, 1, HEADER_SIZE, file) != HEADER_SIZE ||
        fflush(file) != 0 || fsync(fileno(file)) != 0) {
        *error = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

FMNN_API int fmnn_model_save(const fmnn_model *m, const char *path, unsigned flags)
{
    if (!m || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: model or path is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_save: compile the model before saving it");
    if (flags & ~(unsigned)FMNN_SAVE_OPTIMIZER)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: unknown flags 0x%x", flags);

    /* A new name in the target's directory, so that rename() is atomic. */
    static _Thread_local unsigned counter;
    char temp[4096];
    if (snprintf(temp, sizeof temp, "%s.tmp-%ld-%u", path, (long)getpid(), counter++) >= (int)sizeof temp)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_save: path is too long: %s", path);
    int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0644);
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

static int truncated(reader *r, const char *what)
{
    if (!r->err)
        r->err = fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: the payload ends inside %s", r->path, what);
    return r->err;
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

static int bad(reader *r, const char *fmt, const char *detail, long value)
{
    char message[256];
    snprintf(message, sizeof message, fmt, detail, value);
    if (!r->err)
        r->err = fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: %s", r->path, message);
    return r->err;
}

/* Rebuilds one layer from its record, with the public constructors. */
static fmnn_layer *layer_from_record(uint32_t code, fmnn_activation_kind activation, fmnn_regularizer reg,
                                     const fmnn_layer_config *c)
{
    switch (code) {
    case FMNN_CODE_DENSE:
        return fmnn_dense(c->ints[0], &(fmnn_dense_options){ activation, reg });
    case FMNN_CODE_CONV2D:
        return fmnn_conv2d(c->ints[0], c->ints[1], c->ints[2],
                           &(fmnn_conv2d_options){ c->ints[3], c->ints[4], (fmnn_padding)c->ints[5], activation,
                                                   reg });
    case FMNN_CODE_MAXPOOL2D:
        return fmnn_maxpool2d(c->ints[0], c->ints[1],
                              &(fmnn_maxpool2d_options){ c->ints[2], c->ints[3], (fmnn_padding)c->ints[4] });
    case FMNN_CODE_DROPOUT:
        return fmnn_dropout(c->rate);
    case FMNN_CODE_ACTIVATION:
        return fmnn_activation(activation);
    case FMNN_CODE_FLATTEN:
        return fmnn_flatten();
    }
    return NULL;
}

/* Reads the architecture into a new, compiled model. */
static int read_model(reader *r, fmnn_model **out)
{
    fmnn_loss loss = (fmnn_loss)get_u32(r, "the loss");
    uint32_t rank = get_u32(r, "the input shape");
    if (r->err)
        return r->err;
    if ((unsigned)loss > FMNN_LOSS_MSE)
        return bad(r, "unknown loss%s %ld", "", (long)loss);
    if (rank < 1 || rank > FMNN_MAX_RANK - 1)
        return bad(r, "input rank%s %ld is not in 1..3", "", (long)rank);
    int dims[FMNN_MAX_RANK];
    for (uint32_t d = 0; d < rank; d++) {
        uint32_t v = get_u32(r, "the input shape");
        if (!r->err && (v < 1 || v > MAX_DIM))
            return bad(r, "input dimension%s %ld is out of range", "", (long)v);
        dims[d] = (int)v;
    }
    fmnn_optimizer o;
    o.kind = (fmnn_optimizer_kind)get_u32(r, "the optimizer");
    o.learning_rate = get_f32(r, "the optimizer");
    o.beta_1 = get_f32(r, "the optimizer");
    o.beta_2 = get_f32(r, "the optimizer");
    o.epsilon = get_f32(r, "the optimizer");
    o.momentum = get_f32(r, "the optimizer");
    o.nesterov = (int)get_u32(r, "the optimizer");
    uint32_t n_layers = get_u32(r, "the layer count");
    if (r->err)
        return r->err;
    if (n_layers < 1 || n_layers > MAX_LAYERS || n_layers > r->left / LAYER_RECORD)
        return bad(r, "layer count%s %ld is impossible for the file's size", "", (long)n_layers);

    fmnn_model *m;
    int err = fmnn_model_new(&m, (int)rank, dims);
    if (err)
        return err;
    for (uint32_t i = 0; i < n_layers && !err; i++) {
        uint32_t code = get_u32(r, "a layer");
        fmnn_activation_kind activation = (fmnn_activation_kind)get_u32(r, "a layer");
        fmnn_regularizer reg;
        reg.l1 = get_f32(r, "a layer");
        reg.l2 = get_f32(r, "a layer");
        fmnn_layer_config config;
        for (int k = 0; k < 6; k++)
            config.ints[k] = (int32_t)get_u32(r, "a layer");
        config.rate = get_f32(r, "a layer");
        if (r->err)
            break;
        if (code < FMNN_CODE_DENSE || code > FMNN_CODE_FLATTEN) {
            err = bad(r, "layer %s%ld has an unknown type code", "", (long)i);
            break;
        }
        if ((unsigned)activation > FMNN_TANH || !isfinite(reg.l1) || !isfinite(reg.l2) || reg.l1 < 0 ||
            reg.l2 < 0) {
            err = bad(r, "layer %s%ld has an invalid activation or regularizer", "", (long)i);
            break;
        }
        err = fmnn_model_add(m, layer_from_record(code, activation, reg, &config));
    }
    if (!err && r->err)
        err = r->err;
    /* compile checks every layer's options against the shapes, like for
     * a model built by hand; its errors name the layer. */
    if (!err && (err = fmnn_model_compile(m, loss, &o, 0)))
        err = fmnn__error(err, "%s: corrupt model file: impossible architecture: %s", r->path,
                          fmnn_last_error());
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
        return bad(r, "the architecture has %s%ld parameters but the file holds a different count", "",
                   (long)m->n_params);
    get_floats(r, m->params, m->n_params, "the weights");
    if (flags & FLAG_OPTIMIZER) {
        uint64_t step = get_u64(r, "the optimizer state");
        if (!r->err && step > (uint64_t)1 << 62)
            return bad(r, "optimizer step count%s %ld is impossible", "", (long)step);
        m->step = (long)step;
        get_floats(r, m->adam_m, m->n_params, "the optimizer state");
        get_floats(r, m->adam_v, m->n_params, "the optimizer state");
    }
    if (r->err)
        return r->err;
    if (r->left != 0)
        return bad(r, "%s%ld bytes follow the last record", "", (long)r->left);
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i]))
            return bad(r, "weight %s%ld is NaN or Inf", "", (long)i);
    return FMNN_OK;
}

/* Reads and checks the header; returns the payload's size. */
static int read_header(FILE *file, const char *path, uint64_t file_size, uint32_t *flags, uint64_t *payload,
                       uint32_t *crc)
{
    unsigned char h[HEADER_SIZE];
    if (file_size < HEADER_SIZE || fread(h, 1, HEADER_SIZE, file) != HEADER_SIZE)
        return fmnn__error(FMNN_EFORMAT, "%s: not a model file: only %llu bytes", path,
                           (unsigned long long)file_size);
    if (memcmp(h, MAGIC, 8) != 0)
        return fmnn__error(FMNN_EFORMAT, "%s: not a libfmnn model file (wrong magic number)", path);
    reader r = { h + 8, HEADER_SIZE - 8, path, 0 };
    uint32_t version = get_u32(&r, "the header");
    *flags = get_u32(&r, "the header");
    *payload = get_u64(&r, "the header");
    *crc = get_u32(&r, "the header");
    if (version != FORMAT_VERSION)
        return fmnn__error(FMNN_EFORMAT, "%s: model file format version %u is not supported (this is %u)", path,
                           version, FORMAT_VERSION);
    if (*flags & ~FLAG_OPTIMIZER)
        return fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: unknown flags 0x%x", path, *flags);
    if (*payload != file_size - HEADER_SIZE)
        return fmnn__error(FMNN_EFORMAT, "%s: %s model file: the header announces %llu payload bytes, the file has %llu",
                           path, *payload > file_size - HEADER_SIZE ? "truncated" : "corrupt",
                           (unsigned long long)*payload, (unsigned long long)(file_size - HEADER_SIZE));
    return FMNN_OK;
}

FMNN_API int fmnn_model_load(fmnn_model **out, const char *path)
{
    if (!out || !path)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_load: out or path is NULL");
    *out = NULL;
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
    /* The payload is no larger than the file itself, so this allocation
     * is bounded by bytes that really exist. */
    unsigned char *data = fmnn__alloc(payload ? (size_t)payload : 1, "the model file");
    if (!data) {
        fclose(file);
        return FMNN_ENOMEM;
    }
    if (fread(data, 1, (size_t)payload, file) != (size_t)payload) {
        err = fmnn__error(FMNN_EIO, "%s: read error: %s", path, ferror(file) ? strerror(errno) : "file shrank");
    } else if (crc32(crc32(0L, Z_NULL, 0), data, (uInt)payload) != crc) {
        err = fmnn__error(FMNN_EFORMAT, "%s: corrupt model file: checksum mismatch", path);
    }
    fclose(file);
    fmnn_model *m = NULL;
    if (!err) {
        reader r = { data, (size_t)payload, path, 0 };
        err = read_model(&r, &m);
        if (!err && (err = read_weights(&r, m, flags))) {
            fmnn_model_free(m);
            m = NULL;
        }
    }
    fmnn__free(data);
    *out = m;
    return err;
}
