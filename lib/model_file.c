/*
 * model_file.c - the bytes of a model file: the header and its CRC-32,
 * the atomic replace, and bounds-checked little-endian reads and writes
 * (model_file.h).  save.c decides what the payload says.
 *
 * Saving is atomic: the file is written under a temporary name in the
 * same directory, flushed to disk, and only then renamed over the target,
 * so a failure at any point leaves an existing file as it was.  Loading
 * checks the header against the file's real size before it allocates the
 * payload, and the checksum before anyone reads it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "model_file.h"

static const unsigned char MAGIC[8] = { 0x89, 'F', 'M', 'N', 'N', '\r', '\n', 0x1a };
/* The version written; every version from 1 on is read. */
#define FORMAT_VERSION 5u
#define HEADER_SIZE 32

/* ---- writing ------------------------------------------------------------ */

static void put_bytes(fmnn__writer *w, const void *data, size_t n)
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

void fmnn__put_bytes(fmnn__writer *w, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        const size_t count = n < 4096 ? n : 4096;
        put_bytes(w, p, count);
        p += count;
        n -= count;
    }
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

void fmnn__put_u32(fmnn__writer *w, uint32_t v)
{
    unsigned char b[4];
    le32(b, v);
    put_bytes(w, b, 4);
}

void fmnn__put_u64(fmnn__writer *w, uint64_t v)
{
    unsigned char b[8];
    le64(b, v);
    put_bytes(w, b, 8);
}

void fmnn__put_f32(fmnn__writer *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    fmnn__put_u32(w, v);
}

void fmnn__put_f64(fmnn__writer *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    fmnn__put_u64(w, v);
}

/* Floats in blocks, converted to little-endian on the way. */
void fmnn__put_floats(fmnn__writer *w, const float *f, size_t n)
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

/* What fmnn__file_save writes through fmnn__file_replace. */
typedef struct model_file_job {
    uint32_t flags;
    fmnn__payload_writer write_payload;
    const void *context;
} model_file_job;

static int write_model_file(FILE *file, const void *context, int *error)
{
    const model_file_job *job = context;
    unsigned char header[HEADER_SIZE] = { 0 };
    fmnn__writer w = { file, crc32(0L, Z_NULL, 0), 0, 0 };
    /* The header holds the payload's size and CRC: write a blank one,
     * then the payload, then come back for the real header. */
    errno = 0;
    if (fwrite(header, 1, HEADER_SIZE, file) != HEADER_SIZE) {
        *error = errno ? errno : EIO;
        return -1;
    }
    job->write_payload(&w, job->context);
    if (w.failed) {
        *error = w.failed;
        return -1;
    }
    memcpy(header, MAGIC, 8);
    le32(header + 8, FORMAT_VERSION);
    le32(header + 12, job->flags);
    le64(header + 16, w.size);
    le32(header + 24, (uint32_t)w.crc);
    le32(header + 28, 0u); /* reserved */
    errno = 0;
    if (fseek(file, 0, SEEK_SET) != 0 || fwrite(header, 1, HEADER_SIZE, file) != HEADER_SIZE) {
        *error = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int fmnn__file_save(const char *path, uint32_t flags, fmnn__payload_writer write_payload, const void *context)
{
    const model_file_job job = { flags, write_payload, context };
    return fmnn__file_replace(path, "fmnn_model_save", write_model_file, &job);
}

int fmnn__file_replace(const char *path, const char *caller, fmnn__file_writer write, const void *context)
{
    /* A new name in the target's directory, so that rename() is atomic.
     * O_EXCL never reuses a name: a leftover of a crashed process with
     * the same pid only makes us try the next one. */
    static _Thread_local unsigned counter;
    char temp[4096];
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        if (snprintf(temp, sizeof temp, "%s.tmp-%ld-%u", path, (long)getpid(), counter++) >= (int)sizeof temp)
            return fmnn__error(FMNN_EIO, "%s: path is too long: %s", caller, path);
        fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return fmnn__error(FMNN_EIO, "%s: cannot save %s: creating its temporary file failed: %s", caller, path,
                           strerror(errno));
    FILE *file = fdopen(fd, "wb");
    if (!file) {
        int e = errno;
        close(fd);
        unlink(temp);
        return fmnn__error(FMNN_EIO, "%s: cannot save %s: %s", caller, path, strerror(e));
    }
    int error = 0;
    int failed = write(file, context, &error);
    errno = 0;
    if (!failed && (fflush(file) != 0 || fsync(fileno(file)) != 0)) {
        failed = -1;
        error = errno;
    }
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
        return fmnn__error(FMNN_EIO, "%s: writing %s failed: %s; any existing file is unchanged", caller, path,
                           strerror(error ? error : EIO));
    }
    sync_directory(path);
    return FMNN_OK;
}

/* ---- reading ------------------------------------------------------------ */

int fmnn__corrupt(fmnn__reader *r, const char *fmt, ...)
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

int fmnn__truncated(fmnn__reader *r, const char *what)
{
    return fmnn__corrupt(r, "the payload ends inside %s", what);
}

uint32_t fmnn__get_u32(fmnn__reader *r, const char *what)
{
    if (r->err || r->left < 4) {
        fmnn__truncated(r, what);
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

uint64_t fmnn__get_u64(fmnn__reader *r, const char *what)
{
    uint64_t lo = fmnn__get_u32(r, what);
    return lo | (uint64_t)fmnn__get_u32(r, what) << 32;
}

float fmnn__get_f32(fmnn__reader *r, const char *what)
{
    uint32_t v = fmnn__get_u32(r, what);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

double fmnn__get_f64(fmnn__reader *r, const char *what)
{
    uint64_t v = fmnn__get_u64(r, what);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

void fmnn__get_bytes(fmnn__reader *r, void *out, size_t n, const char *what)
{
    if (r->err || r->left < n) {
        fmnn__truncated(r, what);
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

void fmnn__skip(fmnn__reader *r, size_t n, const char *what)
{
    if (r->err || r->left < n) {
        fmnn__truncated(r, what);
        return;
    }
    r->p += n;
    r->left -= n;
}

void fmnn__get_floats(fmnn__reader *r, float *out, size_t n, const char *what)
{
    if (r->err || r->left / 4 < n) {
        fmnn__truncated(r, what);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = fmnn__get_f32(r, what);
}

/* Reads and checks the header: the magic, the version, the flags, the
 * reserved word, and that the payload size is the file's. */
static int read_header(FILE *file, const char *path, uint64_t file_size, uint32_t *version, uint32_t *flags,
                       uint64_t *payload, uint32_t *crc)
{
    unsigned char h[HEADER_SIZE];
    if (file_size < HEADER_SIZE || fread(h, 1, HEADER_SIZE, file) != HEADER_SIZE)
        return fmnn__error(FMNN_EFORMAT, "%s: not a model file: only %llu bytes, less than the %d-byte header",
                           path, (unsigned long long)file_size, HEADER_SIZE);
    if (memcmp(h, MAGIC, 8) != 0)
        return fmnn__error(FMNN_EFORMAT, "%s: not a libfmnn model file (wrong magic number)", path);
    fmnn__reader r = { h + 8, HEADER_SIZE - 8, path, 0 };
    *version = fmnn__get_u32(&r, "the header");
    *flags = fmnn__get_u32(&r, "the header");
    *payload = fmnn__get_u64(&r, "the header");
    *crc = fmnn__get_u32(&r, "the header");
    uint32_t reserved = fmnn__get_u32(&r, "the header");
    if (*version < 1 || *version > FORMAT_VERSION)
        return fmnn__error(FMNN_EFORMAT, "%s: model file format version %u is not supported (this library reads 1 to %u)",
                           path, (unsigned)*version, FORMAT_VERSION);
    if ((*flags & ~(FMNN__FILE_OPTIMIZER | FMNN__FILE_FIT)) ||
        ((*flags & FMNN__FILE_FIT) && (*version < 5 || !(*flags & FMNN__FILE_OPTIMIZER))))
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

int fmnn__file_load(const char *path, unsigned char **out, size_t *size, uint32_t *version, uint32_t *flags)
{
    *out = NULL;
    *size = 0;
    FILE *file = fopen(path, "rb");
    if (!file)
        return fmnn__error(FMNN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(file);
        return fmnn__error(FMNN_EIO, "%s: not a regular file", path);
    }
    uint32_t crc = 0;
    uint64_t payload = 0;
    int err = read_header(file, path, (uint64_t)st.st_size, version, flags, &payload, &crc);
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
    if (err) {
        fmnn__free(data);
        return err;
    }
    *out = data;
    *size = (size_t)payload;
    return FMNN_OK;
}
