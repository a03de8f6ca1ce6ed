/*
 * data_idx.c - IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed,
 * and the dataset preprocessing the notebook does with numpy and Keras.
 *
 * IDX layout: a 4-byte big-endian magic (0, 0, type, rank), rank
 * big-endian uint32 dimensions, then prod(dims) elements.  Only type 0x08
 * (unsigned byte) is read.  Nothing in a header is trusted until checked:
 * a hostile header must not make us allocate gigabytes, and a file whose
 * header disagrees with its length is reported as corrupt.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "tensor_impl.h"

#define IDX_TYPE_UBYTE 0x08

/* Larger than any real IDX file; a header asking for more is hostile. */
#define IDX_MAX_BYTES ((size_t)1 << 31)

/* The data buffer starts at this size and doubles as bytes arrive, so a
 * header that lies about the size costs memory only for bytes present. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)

/* Trailing bytes are counted up to this many, then we stop reading. */
#define IDX_MAX_TRAILING_COUNT ((size_t)1 << 20)

/* ---- reading through zlib ------------------------------------------- */

/*
 * zlib prefixes its messages with the path; we name the file ourselves,
 * so drop that prefix.
 */
static const char *gz_message(const char *msg, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

/*
 * After a short read, tells a clean end of file (FMNN_OK) from a read
 * error or a corrupt or truncated gzip stream, which gzread does not
 * always signal with -1.
 */
static int gz_status(gzFile gz, const char *path)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum == Z_OK)
        return FMNN_OK;
    if (errnum == Z_ERRNO)
        return fmnn__error(FMNN_EIO, "%s: read error: %s", path, strerror(errno));
    if (errnum == Z_MEM_ERROR)
        return fmnn__error(FMNN_ENOMEM, "%s: out of memory while decompressing", path);
    return fmnn__error(FMNN_EFORMAT, "%s: corrupt gzip stream: %s", path,
                       gz_message(msg, path));
}

/*
 * Reads up to n bytes into buf and stores the count in *got; fewer than n
 * only at a clean end of file.  gzread takes an unsigned count and
 * returns an int, hence the chunks.
 */
static int read_bytes(gzFile gz, const char *path, void *buf, size_t n, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > (size_t)1 << 30)
            want = (size_t)1 << 30;
        int r = gzread(gz, p + *got, (unsigned)want);
        if (r < 0) {
            int err = gz_status(gz, path);
            return err ? err : fmnn__error(FMNN_EIO, "%s: read error", path);
        }
        *got += (size_t)r;
        if ((size_t)r < want)
            return gz_status(gz, path);
    }
    return FMNN_OK;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static const char *type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "not an IDX type";
    }
}

/* ---- the header ------------------------------------------------------ */

/* Reads and checks the magic and the dimensions into idx. */
static int read_header(gzFile gz, const char *path, fmnn_idx *idx)
{
    unsigned char magic[4];
    size_t got;
    int err = read_bytes(gz, path, magic, sizeof magic, &got);
    if (err)
        return err;
    if (got < sizeof magic)
        return fmnn__error(FMNN_EFORMAT, "%s: truncated header: expected a 4-byte magic number, found %zu bytes",
                           path, got);
    if (magic[0] != 0 || magic[1] != 0)
        return fmnn__error(FMNN_EFORMAT,
                           "%s: bad magic number 0x%02x%02x%02x%02x: not an IDX file (it must start with two zero bytes)",
                           path, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return fmnn__error(FMNN_EFORMAT,
                           "%s: unsupported IDX type 0x%02x (%s); only 0x08 (unsigned byte) is supported",
                           path, magic[2], type_name(magic[2]));
    int rank = magic[3];
    if (rank < 1 || rank > FMNN_MAX_RANK)
        return fmnn__error(FMNN_EFORMAT, "%s: rank %d is not in 1..%d", path, rank, FMNN_MAX_RANK);

    unsigned char raw[4 * FMNN_MAX_RANK];
    size_t want = 4 * (size_t)rank;
    err = read_bytes(gz, path, raw, want, &got);
    if (err)
        return err;
    if (got < want)
        return fmnn__error(FMNN_EFORMAT,
                           "%s: truncated header: expected %zu bytes of dimensions, found %zu",
                           path, want, got);

    size_t size = 1;
    for (int i = 0; i < rank; i++) {
        uint32_t d = be32(raw + 4 * i);
        if (d < 1 || d > INT_MAX)
            return fmnn__error(FMNN_EFORMAT, "%s: dimension %d is %lu; it must be in 1..%d",
                               path, i, (unsigned long)d, INT_MAX);
        /* Checked at each step, so the cap also stops any overflow. */
        if (!fmnn__mul_ok(size, d, &size) || size > IDX_MAX_BYTES)
            return fmnn__error(FMNN_EFORMAT,
                               "%s: dimensions are too large: the data would exceed %zu bytes",
                               path, IDX_MAX_BYTES);
        idx->dims[i] = (int)d;
    }
    idx->rank = rank;
    idx->size = size;
    return FMNN_OK;
}

/* ---- the data -------------------------------------------------------- */

/*
 * Reads exactly idx->size bytes into a new idx->data, growing the buffer
 * as bytes arrive, then checks that nothing follows them.
 */
static int read_data(gzFile gz, const char *path, fmnn_idx *idx)
{
    size_t cap = idx->size < IDX_FIRST_CHUNK ? idx->size : IDX_FIRST_CHUNK;
    unsigned char *buf = fmnn__alloc(cap, "IDX data");
    if (!buf)
        return fmnn__error(FMNN_ENOMEM, "%s: out of memory for %zu data bytes", path, cap);
    size_t have = 0;
    for (;;) {
        size_t got;
        int err = read_bytes(gz, path, buf + have, cap - have, &got);
        if (err) {
            fmnn__free(buf);
            return err;
        }
        have += got;
        if (have < cap || cap == idx->size)
            break;
        size_t bigger = cap > idx->size / 2 ? idx->size : cap * 2;
        unsigned char *grown = fmnn__alloc(bigger, "IDX data");
        if (!grown) {
            fmnn__free(buf);
            return fmnn__error(FMNN_ENOMEM, "%s: out of memory for %zu data bytes", path, bigger);
        }
        memcpy(grown, buf, have);
        fmnn__free(buf);
        buf = grown;
        cap = bigger;
    }
    if (have < idx->size) {
        fmnn__free(buf);
        return fmnn__error(FMNN_EFORMAT, "%s: truncated: expected %zu data bytes, found %zu",
                           path, idx->size, have);
    }

    /* A longer file than its header says is as corrupt as a shorter one.
     * Reading on also makes zlib verify the gzip trailer (CRC, length). */
    unsigned char extra[4096];
    size_t trailing = 0, got;
    do {
        int err = read_bytes(gz, path, extra, sizeof extra, &got);
        if (err) {
            fmnn__free(buf);
            return err;
        }
        trailing += got;
    } while (got == sizeof extra && trailing < IDX_MAX_TRAILING_COUNT);
    if (trailing > 0) {
        fmnn__free(buf);
        return fmnn__error(FMNN_EFORMAT, "%s: has %s%zu unexpected trailing bytes after the %zu data bytes",
                           path, got == sizeof extra ? "at least " : "", trailing, idx->size);
    }
    idx->data = buf;
    return FMNN_OK;
}

FMNN_API int fmnn_idx_read(fmnn_idx **out, const char *path)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn_idx_read: out is NULL");
    *out = NULL;
    if (!path)
        return fmnn__error(FMNN_EINVAL, "fmnn_idx_read: path is NULL");

    fmnn_idx *idx = fmnn__alloc(sizeof *idx, "an IDX array");
    if (!idx)
        return fmnn__error(FMNN_ENOMEM, "%s: out of memory", path);
    memset(idx, 0, sizeof *idx);

    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        /* errno is 0 when zlib itself ran out of memory. */
        int e = errno;
        fmnn__free(idx);
        if (e == 0)
            return fmnn__error(FMNN_ENOMEM, "%s: cannot open: out of memory", path);
        return fmnn__error(FMNN_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    gzbuffer(gz, 1 << 17);   /* fewer, larger reads than zlib's 8 KiB */

    int err = read_header(gz, path, idx);
    if (!err)
        err = read_data(gz, path, idx);
    gzclose(gz);   /* read-only: nothing to flush, nothing to report */
    if (err) {
        fmnn__free(idx);
        return err;
    }
    *out = idx;
    return FMNN_OK;
}

FMNN_API void fmnn_idx_free(fmnn_idx *idx)
{
    if (!idx)
        return;
    fmnn__free(idx->data);
    fmnn__free(idx);
}

/* ---- datasets -------------------------------------------------------- */

/* Checks that the two files describe the same samples and valid labels. */
static int check_pair(const fmnn_idx *images, const char *images_path,
                      const fmnn_idx *labels, const char *labels_path, int num_classes)
{
    if (images->rank != 3)
        return fmnn__error(FMNN_EFORMAT, "%s: images must have rank 3 (N, H, W), found rank %d",
                           images_path, images->rank);
    if (labels->rank != 1)
        return fmnn__error(FMNN_EFORMAT, "%s: labels must have rank 1 (N), found rank %d",
                           labels_path, labels->rank);
    if (images->dims[0] != labels->dims[0])
        return fmnn__error(FMNN_EFORMAT, "count mismatch: %s has %d images but %s has %d labels",
                           images_path, images->dims[0], labels_path, labels->dims[0]);
    /* Every label, not only those kept by limit: a bad one means a bad file. */
    for (size_t i = 0; i < labels->size; i++)
        if (labels->data[i] >= num_classes)
            return fmnn__error(FMNN_EFORMAT, "%s: the label of sample %zu is %d; it must be below num_classes = %d",
                               labels_path, i, labels->data[i], num_classes);
    return FMNN_OK;
}

/* Builds the float images, the one-hot labels and the class indices. */
static int fill_dataset(fmnn_dataset *ds, const fmnn_idx *images, const fmnn_idx *labels,
                        int count, int num_classes)
{
    int h = images->dims[1], w = images->dims[2];
    int image_dims[4] = { count, h, w, 1 };
    int err = fmnn_tensor_new(&ds->images, 4, image_dims);
    if (err)
        return err;
    /* Exactly numpy's astype('float32') / 255, so results match bit for bit. */
    float *x = ds->images->data;
    for (size_t i = 0; i < ds->images->size; i++)
        x[i] = (float)images->data[i] / 255.0f;

    int label_dims[2] = { count, num_classes };
    err = fmnn_tensor_new(&ds->labels, 2, label_dims);
    if (err)
        return err;
    ds->classes = fmnn__alloc((size_t)count, "dataset classes");
    if (!ds->classes)
        return FMNN_ENOMEM;
    float *y = ds->labels->data;   /* zero-filled by fmnn_tensor_new */
    for (int i = 0; i < count; i++) {
        ds->classes[i] = labels->data[i];
        y[(size_t)i * (size_t)num_classes + labels->data[i]] = 1.0f;
    }
    ds->count = count;
    ds->num_classes = num_classes;
    return FMNN_OK;
}

FMNN_API int fmnn_dataset_load(fmnn_dataset **out, const char *images_path,
                               const char *labels_path, int num_classes, int limit)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn_dataset_load: out is NULL");
    *out = NULL;
    if (!images_path)
        return fmnn__error(FMNN_EINVAL, "fmnn_dataset_load: images_path is NULL");
    if (!labels_path)
        return fmnn__error(FMNN_EINVAL, "fmnn_dataset_load: labels_path is NULL");
    /* Labels are bytes; 65535 keeps the one-hot row count sane. */
    if (num_classes < 1 || num_classes > 65535)
        return fmnn__error(FMNN_EINVAL, "fmnn_dataset_load: num_classes %d is not in 1..65535",
                           num_classes);
    if (limit < 0)
        return fmnn__error(FMNN_EINVAL, "fmnn_dataset_load: limit %d is negative (0 keeps every sample)",
                           limit);

    fmnn_idx *images = NULL, *labels = NULL;
    fmnn_dataset *ds = NULL;
    int err = fmnn_idx_read(&images, images_path);
    if (!err)
        err = fmnn_idx_read(&labels, labels_path);
    if (!err)
        err = check_pair(images, images_path, labels, labels_path, num_classes);
    if (!err) {
        ds = fmnn__alloc(sizeof *ds, "a dataset");
        if (ds)
            memset(ds, 0, sizeof *ds);
        else
            err = FMNN_ENOMEM;
    }
    if (!err) {
        int count = images->dims[0];
        if (limit > 0 && limit < count)
            count = limit;
        err = fill_dataset(ds, images, labels, count, num_classes);
    }
    fmnn_idx_free(images);
    fmnn_idx_free(labels);
    if (err) {
        fmnn_dataset_free(ds);
        return err;
    }
    *out = ds;
    return FMNN_OK;
}

FMNN_API void fmnn_dataset_free(fmnn_dataset *dataset)
{
    if (!dataset)
        return;
    fmnn_tensor_free(dataset->images);
    fmnn_tensor_free(dataset->labels);
    fmnn__free(dataset->classes);
    fmnn__free(dataset);
}
