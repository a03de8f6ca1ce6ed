/*
 * check_idx.c - IDX reading and dataset loading (lib/data_idx.c).
 *
 * Every test writes its own small IDX files, plain or gzip-compressed,
 * into a temporary directory made in main() and removed at the end.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fmnn.h"
#include "testutil.h"

#define DATASET_DIR "/usr/share/datasets/fashion-mnist"

static char tmpdir[] = "/tmp/fmnn_check_idx_XXXXXX";

/* ---- helpers ---------------------------------------------------------- */

/* The full path of a file in the temporary directory. */
static const char *tpath(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", tmpdir, name);
    ck_assert(n > 0 && (size_t)n < cap);
    return buf;
}

/* Writes n bytes to path, through gzip when gz is nonzero. */
static void write_file(const char *path, const void *bytes, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n > 0)
            ck_assert_int_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n > 0) /* fwrite(NULL, 1, 0, f) is undefined */
            ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* Reads a whole (small) file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);
    *n = fread(buf, 1, 1 << 16, f);
    ck_assert(feof(f));
    fclose(f);
    return buf;
}

/*
 * Builds an IDX image in buf: magic (0, 0, type, rank), the dims, then n
 * data bytes.  Returns the length.
 */
static size_t make_idx(unsigned char *buf, int type, int rank, const uint32_t *dims,
                       const unsigned char *data, size_t n)
{
    size_t len = 0;
    buf[len++] = 0;
    buf[len++] = 0;
    buf[len++] = (unsigned char)type;
    buf[len++] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        buf[len++] = (unsigned char)(dims[i] >> 24);
        buf[len++] = (unsigned char)(dims[i] >> 16);
        buf[len++] = (unsigned char)(dims[i] >> 8);
        buf[len++] = (unsigned char)dims[i];
    }
    if (n > 0)
        memcpy(buf + len, data, n);
    return len + n;
}

/* Writes an unsigned-byte IDX file and returns its path (in buf). */
static const char *write_idx(char *buf, size_t cap, const char *name, int gz, int rank,
                             const uint32_t *dims, const unsigned char *data, size_t n)
{
    unsigned char bytes[4096];
    ck_assert_uint_le(4 + 4 * (size_t)rank + n, sizeof bytes);
    size_t len = make_idx(bytes, 0x08, rank, dims, data, n);
    tpath(buf, cap, name);
    write_file(buf, bytes, len, gz);
    return buf;
}

/*
 * Asserts that call failed with status and that the message contains
 * word1 and word2 (the latter may be NULL).
 */
#define EXPECT_ERROR_WORDS(call, status, word1, word2)                               \
    do {                                                                             \
        int st_ = (call);                                                            \
        testutil_expect_error(st_, (status), (word1), #call, __LINE__);              \
        const char *msg_ = fmnn_last_error(), *w2_ = (word2);                        \
        ck_assert_msg(w2_ == NULL || strstr(msg_, w2_) != NULL,                      \
                      "message \"%s\" does not contain \"%s\"", msg_, w2_ ? w2_ : ""); \
    } while (0)

/* fmnn_idx_read must fail on path with status, naming the file and word. */
static void expect_idx_error(const char *path, int status, const char *word)
{
    fmnn_idx *idx = NOT_NULL;
    fmnn_clear_error();
    EXPECT_ERROR_WORDS(fmnn_idx_read(&idx, path), status, path, word);
    ck_assert_ptr_null(idx);
}

/* Writes the raw bytes as a file named name and expects the read to fail. */
static void expect_bytes_error(const char *name, const unsigned char *bytes, size_t n,
                               int gz, int status, const char *word)
{
    char path[512];
    tpath(path, sizeof path, name);
    write_file(path, bytes, n, gz);
    expect_idx_error(path, status, word);
}

/* 3 images of 2x2 and their labels, shared by the dataset tests. */
static const uint32_t image_dims[3] = { 3, 2, 2 };
static const unsigned char image_data[12] = {
    0, 255, 51, 128,
    1, 2, 3, 4,
    254, 253, 252, 251,
};
static const uint32_t label_dims[1] = { 3 };
static const unsigned char label_data[3] = { 2, 0, 1 };

static void write_pair(char *ipath, char *lpath, size_t cap, int gz)
{
    write_idx(ipath, cap, gz ? "pair-images.gz" : "pair-images", gz, 3, image_dims,
              image_data, sizeof image_data);
    write_idx(lpath, cap, gz ? "pair-labels.gz" : "pair-labels", gz, 1, label_dims,
              label_data, sizeof label_data);
}

/* ---- valid files ------------------------------------------------------ */

/* _i: 0 plain, 1 gzip. */
START_TEST(test_read_valid)
{
    char path[512];
    write_idx(path, sizeof path, _i ? "valid.gz" : "valid", _i, 3, image_dims, image_data,
              sizeof image_data);
    fmnn_idx *idx = NULL;
    ck_assert_int_eq(fmnn_idx_read(&idx, path), FMNN_OK);
    ck_assert_ptr_nonnull(idx);
    ck_assert_int_eq(idx->rank, 3);
    ck_assert_int_eq(idx->dims[0], 3);
    ck_assert_int_eq(idx->dims[1], 2);
    ck_assert_int_eq(idx->dims[2], 2);
    ck_assert_uint_eq(idx->size, 12);
    ck_assert_mem_eq(idx->data, image_data, sizeof image_data);
    fmnn_idx_free(idx);
}
END_TEST

/* Rank 1 and rank 4 are the limits; one element is the smallest file. */
START_TEST(test_read_rank_limits)
{
    char path[512];
    const uint32_t one = 1;
    const unsigned char byte = 7;
    write_idx(path, sizeof path, "rank1", _i, 1, &one, &byte, 1);
    fmnn_idx *idx = NULL;
    ck_assert_int_eq(fmnn_idx_read(&idx, path), FMNN_OK);
    ck_assert_int_eq(idx->rank, 1);
    ck_assert_uint_eq(idx->size, 1);
    ck_assert_uint_eq(idx->data[0], 7);
    fmnn_idx_free(idx);

    const uint32_t dims4[4] = { 2, 1, 3, 2 };
    unsigned char data[12];
    for (int i = 0; i < 12; i++)
        data[i] = (unsigned char)(i * 20);
    write_idx(path, sizeof path, "rank4", _i, 4, dims4, data, sizeof data);
    ck_assert_int_eq(fmnn_idx_read(&idx, path), FMNN_OK);
    ck_assert_int_eq(idx->rank, 4);
    ck_assert_int_eq(idx->dims[3], 2);
    ck_assert_uint_eq(idx->size, 12);
    ck_assert_mem_eq(idx->data, data, sizeof data);
    fmnn_idx_free(idx);
}
END_TEST

/* Larger than the reader's first buffer, to exercise its growth. */
START_TEST(test_read_large)
{
    enum { H = 1100, W = 1000 };
    size_t n = (size_t)H * W;
    unsigned char *bytes = malloc(8 + 8 + n);
    ck_assert_ptr_nonnull(bytes);
    const uint32_t dims[2] = { H, W };
    unsigned char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7 + i / 1000);
    size_t len = make_idx(bytes, 0x08, 2, dims, data, n);
    char path[512];
    tpath(path, sizeof path, "large.gz");
    write_file(path, bytes, len, 1);

    fmnn_idx *idx = NULL;
    ck_assert_int_eq(fmnn_idx_read(&idx, path), FMNN_OK);
    ck_assert_uint_eq(idx->size, n);
    ck_assert_int_eq(memcmp(idx->data, data, n), 0);
    fmnn_idx_free(idx);
    free(data);
    free(bytes);
}
END_TEST

START_TEST(test_dataset_valid)
{
    char ipath[512], lpath[512];
    write_pair(ipath, lpath, sizeof ipath, _i);
    fmnn_dataset *ds = NULL;
    ck_assert_int_eq(fmnn_dataset_load(&ds, ipath, lpath, 3, 0), FMNN_OK);
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(ds->count, 3);
    ck_assert_int_eq(ds->num_classes, 3);

    ck_assert_int_eq(fmnn_tensor_rank(ds->images), 4);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 0), 3);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 1), 2);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 2), 2);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 3), 1);
    const float *x = fmnn_tensor_const_data(ds->images);
    ck_assert(x[0] == 0.0f);
    ck_assert(x[1] == 1.0f);
    ck_assert(x[2] == (float)51 / 255.0f);
    ck_assert(x[2] == 0.2f);
    for (int i = 0; i < 12; i++) {
        ck_assert(x[i] == (float)image_data[i] / 255.0f);
        ck_assert(x[i] >= 0.0f && x[i] <= 1.0f);
    }

    ck_assert_int_eq(fmnn_tensor_rank(ds->labels), 2);
    ck_assert_int_eq(fmnn_tensor_dim(ds->labels, 0), 3);
    ck_assert_int_eq(fmnn_tensor_dim(ds->labels, 1), 3);
    const float *y = fmnn_tensor_const_data(ds->labels);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(ds->classes[i], label_data[i]);
        for (int c = 0; c < 3; c++)
            ck_assert(y[i * 3 + c] == (c == label_data[i] ? 1.0f : 0.0f));
    }
    fmnn_dataset_free(ds);
}
END_TEST

START_TEST(test_dataset_limit)
{
    char ipath[512], lpath[512];
    write_pair(ipath, lpath, sizeof ipath, _i);
    fmnn_dataset *ds = NULL;
    ck_assert_int_eq(fmnn_dataset_load(&ds, ipath, lpath, 3, 2), FMNN_OK);
    ck_assert_int_eq(ds->count, 2);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 0), 2);
    ck_assert_uint_eq(fmnn_tensor_size(ds->images), 8);
    ck_assert_int_eq(fmnn_tensor_dim(ds->labels, 0), 2);
    ck_assert_uint_eq(fmnn_tensor_size(ds->labels), 6);
    ck_assert_uint_eq(ds->classes[0], 2);
    ck_assert_uint_eq(ds->classes[1], 0);
    const float *x = fmnn_tensor_const_data(ds->images);
    ck_assert(x[7] == 4.0f / 255.0f);
    fmnn_dataset_free(ds);

    /* A limit above the count keeps every sample. */
    ck_assert_int_eq(fmnn_dataset_load(&ds, ipath, lpath, 3, 1000), FMNN_OK);
    ck_assert_int_eq(ds->count, 3);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 0), 3);
    fmnn_dataset_free(ds);

    /* More classes than labels used: the one-hot rows just get wider. */
    ck_assert_int_eq(fmnn_dataset_load(&ds, ipath, lpath, 10, 1), FMNN_OK);
    ck_assert_int_eq(ds->num_classes, 10);
    ck_assert_int_eq(fmnn_tensor_dim(ds->labels, 1), 10);
    ck_assert(fmnn_tensor_const_data(ds->labels)[2] == 1.0f);
    fmnn_dataset_free(ds);
}
END_TEST

/* ---- bad headers ------------------------------------------------------- */

START_TEST(test_missing_file)
{
    char path[512];
    tpath(path, sizeof path, "does-not-exist.idx");
    expect_idx_error(path, FMNN_EIO, "No such file");
    expect_idx_error(path, FMNN_EIO, "open");
}
END_TEST

/* A directory opens but cannot be read. */
START_TEST(test_directory)
{
    expect_idx_error(tmpdir, FMNN_EIO, "read");
}
END_TEST

START_TEST(test_bad_magic)
{
    unsigned char bytes[64];
    const uint32_t dims[1] = { 2 };
    const unsigned char data[2] = { 1, 2 };
    size_t len = make_idx(bytes, 0x08, 1, dims, data, 2);
    bytes[0] = 0x12;
    expect_bytes_error("magic0", bytes, len, _i, FMNN_EFORMAT, "magic");
    bytes[0] = 0;
    bytes[1] = 0x01;
    expect_bytes_error("magic1", bytes, len, _i, FMNN_EFORMAT, "magic");
    /* A text file is not an IDX file either. */
    expect_bytes_error("text", (const unsigned char *)"hello, world\n", 13, _i,
                       FMNN_EFORMAT, "magic");
}
END_TEST

START_TEST(test_unsupported_type)
{
    unsigned char bytes[64];
    const uint32_t dims[1] = { 1 };
    const unsigned char data[4] = { 0x3f, 0x80, 0, 0 };
    size_t len = make_idx(bytes, 0x0D, 1, dims, data, 4);
    expect_bytes_error("float", bytes, len, _i, FMNN_EFORMAT, "type 0x0d");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "float"));
}
END_TEST

START_TEST(test_bad_rank)
{
    unsigned char bytes[64];
    size_t len = make_idx(bytes, 0x08, 0, NULL, (const unsigned char *)"\1", 1);
    expect_bytes_error("rank0", bytes, len, _i, FMNN_EFORMAT, "rank 0");

    const uint32_t dims[5] = { 1, 1, 1, 1, 1 };
    len = make_idx(bytes, 0x08, 5, dims, (const unsigned char *)"\1", 1);
    expect_bytes_error("rank5", bytes, len, _i, FMNN_EFORMAT, "rank 5");
}
END_TEST

START_TEST(test_bad_dims)
{
    unsigned char bytes[64];
    const uint32_t zero[3] = { 2, 0, 3 };
    size_t len = make_idx(bytes, 0x08, 3, zero, NULL, 0);
    expect_bytes_error("zero-dim", bytes, len, _i, FMNN_EFORMAT, "dimension 1 is 0");

    const uint32_t big[1] = { (uint32_t)INT_MAX + 1 };
    len = make_idx(bytes, 0x08, 1, big, NULL, 0);
    expect_bytes_error("dim-over-int-max", bytes, len, _i, FMNN_EFORMAT, "dimension 0 is 2147483648");

    const uint32_t ones[4] = { 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu };
    len = make_idx(bytes, 0x08, 4, ones, NULL, 0);
    expect_bytes_error("dims-all-ones", bytes, len, _i, FMNN_EFORMAT, "dimension 0");

    /* Each dim is valid; the product overflows even 64-bit size_t. */
    const uint32_t huge[4] = { INT_MAX, INT_MAX, INT_MAX, INT_MAX };
    len = make_idx(bytes, 0x08, 4, huge, NULL, 0);
    expect_bytes_error("dims-overflow", bytes, len, _i, FMNN_EFORMAT, "too large");

    /* 2 GiB + 64 KiB: over the cap, refused before any allocation. */
    const uint32_t over[2] = { 32769, 65536 };
    len = make_idx(bytes, 0x08, 2, over, NULL, 0);
    expect_bytes_error("dims-over-cap", bytes, len, _i, FMNN_EFORMAT, "too large");
}
END_TEST

START_TEST(test_truncated_header)
{
    expect_bytes_error("empty", NULL, 0, _i, FMNN_EFORMAT, "truncated header");
    expect_bytes_error("two-bytes", (const unsigned char *)"\0\0", 2, _i, FMNN_EFORMAT,
                       "truncated header");

    unsigned char bytes[64];
    const uint32_t dims[3] = { 3, 2, 2 };
    size_t len = make_idx(bytes, 0x08, 3, dims, NULL, 0);
    expect_bytes_error("half-dims", bytes, len - 6, _i, FMNN_EFORMAT, "truncated header");
}
END_TEST

/* ---- bad data ---------------------------------------------------------- */

START_TEST(test_truncated_data)
{
    unsigned char bytes[64];
    size_t len = make_idx(bytes, 0x08, 3, image_dims, image_data, sizeof image_data);
    expect_bytes_error("short-data", bytes, len - 5, _i, FMNN_EFORMAT,
                       "truncated: expected 12 data bytes, found 7");
    expect_bytes_error("no-data", bytes, len - 12, _i, FMNN_EFORMAT,
                       "truncated: expected 12 data bytes, found 0");

    /* A header claiming exactly the 2 GiB cap over a few bytes: the reader
     * must notice the truncation without allocating 2 GiB first. */
    const uint32_t cap[2] = { 32768, 65536 };
    len = make_idx(bytes, 0x08, 2, cap, image_data, sizeof image_data);
    expect_bytes_error("claims-2gib", bytes, len, _i, FMNN_EFORMAT,
                       "expected 2147483648 data bytes, found 12");
}
END_TEST

START_TEST(test_trailing_bytes)
{
    unsigned char bytes[64];
    size_t len = make_idx(bytes, 0x08, 3, image_dims, image_data, sizeof image_data);
    bytes[len++] = 9;
    bytes[len++] = 9;
    bytes[len++] = 9;
    expect_bytes_error("trailing", bytes, len, _i, FMNN_EFORMAT, "3 unexpected trailing bytes");
}
END_TEST

/* Far more trailing bytes than the reader bothers to count. */
START_TEST(test_many_trailing_bytes)
{
    size_t n = (size_t)3 << 20;
    unsigned char *bytes = calloc(1, n);
    ck_assert_ptr_nonnull(bytes);
    make_idx(bytes, 0x08, 3, image_dims, image_data, sizeof image_data);
    expect_bytes_error("many-trailing.gz", bytes, n, 1, FMNN_EFORMAT, "trailing bytes");
    free(bytes);
}
END_TEST

/* A valid gzip header followed by garbage. */
START_TEST(test_corrupt_gzip)
{
    unsigned char bytes[64] = { 0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03 };
    memset(bytes + 10, 0xff, sizeof bytes - 10);
    expect_bytes_error("garbage.gz", bytes, sizeof bytes, 0, FMNN_EFORMAT, "gzip");
}
END_TEST

/* A gzip file cut in half, and one whose CRC is wrong. */
START_TEST(test_damaged_gzip)
{
    enum { N = 2000 };
    unsigned char data[N];
    uint32_t state = 12345;
    for (int i = 0; i < N; i++) {   /* incompressible, so the file is long */
        state = state * 1103515245u + 12345u;
        data[i] = (unsigned char)(state >> 24);
    }
    const uint32_t dims[2] = { 40, 50 };
    char path[512];
    write_idx(path, sizeof path, "whole.gz", 1, 2, dims, data, N);
    fmnn_idx *idx = NULL;
    ck_assert_int_eq(fmnn_idx_read(&idx, path), FMNN_OK);
    fmnn_idx_free(idx);

    size_t len;
    unsigned char *gz = slurp(path, &len);
    ck_assert_uint_gt(len, 1000);
    expect_bytes_error("half.gz", gz, len / 2, 0, FMNN_EFORMAT, "gzip");
    /* Only the 8-byte trailer missing: every data byte is there. */
    expect_bytes_error("no-trailer.gz", gz, len - 8, 0, FMNN_EFORMAT, "gzip");
    gz[len - 8] ^= 0x5a;   /* the CRC32 of the trailer */
    expect_bytes_error("bad-crc.gz", gz, len, 0, FMNN_EFORMAT, "gzip");
    free(gz);
}
END_TEST

/* ---- datasets that do not fit -------------------------------------------- */

START_TEST(test_dataset_count_mismatch)
{
    char ipath[512], lpath[512];
    write_idx(ipath, sizeof ipath, "mm-images", _i, 3, image_dims, image_data,
              sizeof image_data);
    const uint32_t two[1] = { 2 };
    write_idx(lpath, sizeof lpath, "mm-labels", _i, 1, two, label_data, 2);
    fmnn_dataset *ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, lpath, 3, 0), FMNN_EFORMAT, ipath, lpath);
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "3 images"));
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "2 labels"));
}
END_TEST

START_TEST(test_dataset_label_out_of_range)
{
    char ipath[512], lpath[512];
    write_pair(ipath, lpath, sizeof ipath, _i);
    fmnn_dataset *ds = NOT_NULL;
    /* label_data is { 2, 0, 1 }: label 0 is 2, which 2 classes cannot hold. */
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, lpath, 2, 0), FMNN_EFORMAT, lpath, "the label of sample 0 is 2");
    ck_assert_ptr_null(ds);

    /* Checked beyond the limit too: a bad label means a bad file. */
    const unsigned char bad[3] = { 0, 1, 200 };
    write_idx(lpath, sizeof lpath, "bad-labels", _i, 1, label_dims, bad, 3);
    ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, lpath, 10, 1), FMNN_EFORMAT, lpath, "the label of sample 2 is 200");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(test_dataset_bad_ranks)
{
    char ipath[512], lpath[512];
    write_pair(ipath, lpath, sizeof ipath, _i);
    char path[512];
    const uint32_t dims2[2] = { 3, 1 };
    write_idx(path, sizeof path, "labels-rank2", _i, 2, dims2, label_data, 3);
    fmnn_dataset *ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, path, 3, 0), FMNN_EFORMAT, path, "rank 2");
    ck_assert_ptr_null(ds);

    /* Labels given as images. */
    ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, lpath, lpath, 3, 0), FMNN_EFORMAT, lpath, "rank 1");
    ck_assert_ptr_null(ds);
}
END_TEST

/* A broken file in a pair is reported with its own name. */
START_TEST(test_dataset_bad_file)
{
    char ipath[512], lpath[512], missing[512];
    write_pair(ipath, lpath, sizeof ipath, _i);
    tpath(missing, sizeof missing, "missing-labels");
    fmnn_dataset *ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, missing, 3, 0), FMNN_EIO, missing, "open");
    ck_assert_ptr_null(ds);

    unsigned char bytes[64];
    size_t len = make_idx(bytes, 0x08, 3, image_dims, image_data, sizeof image_data);
    char cut[512];
    tpath(cut, sizeof cut, "cut-images");
    write_file(cut, bytes, len - 1, _i);
    ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, cut, lpath, 3, 0), FMNN_EFORMAT, cut, "truncated");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(test_null_and_bad_arguments)
{
    char ipath[512], lpath[512];
    write_pair(ipath, lpath, sizeof ipath, 0);

    fmnn_idx *idx = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_idx_read(NULL, ipath), FMNN_EINVAL, "out", NULL);
    EXPECT_ERROR_WORDS(fmnn_idx_read(&idx, NULL), FMNN_EINVAL, "path", NULL);
    ck_assert_ptr_null(idx);
    fmnn_idx_free(NULL);

    fmnn_dataset *ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(NULL, ipath, lpath, 3, 0), FMNN_EINVAL, "out", NULL);
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, NULL, lpath, 3, 0), FMNN_EINVAL, "images_path", NULL);
    ck_assert_ptr_null(ds);
    ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, NULL, 3, 0), FMNN_EINVAL, "labels_path", NULL);
    ck_assert_ptr_null(ds);
    ds = NOT_NULL;
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, lpath, 0, 0), FMNN_EINVAL, "num_classes", NULL);
    ck_assert_ptr_null(ds);
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, lpath, 65536, 0), FMNN_EINVAL, "num_classes", NULL);
    EXPECT_ERROR_WORDS(fmnn_dataset_load(&ds, ipath, lpath, 3, -1), FMNN_EINVAL, "limit", NULL);
    ck_assert_ptr_null(ds);
    fmnn_dataset_free(NULL);

    /* 65535 classes is the largest accepted. */
    ck_assert_int_eq(fmnn_dataset_load(&ds, ipath, lpath, 65535, 0), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_dim(ds->labels, 1), 65535);
    fmnn_dataset_free(ds);
}
END_TEST

/* ---- allocation failures ----------------------------------------------- */

/* Failing each allocation in turn: ENOMEM, *out NULL, nothing leaked. */
START_TEST(test_allocation_failures)
{
    char ipath[512], lpath[512];
    write_pair(ipath, lpath, sizeof ipath, 1);
    int ok = 0;
    for (long k = 0; k < 100 && !ok; k++) {
        testutil_alloc_install(k);
        testutil_alloc_arm(1);
        fmnn_dataset *ds = NOT_NULL;
        int st = fmnn_dataset_load(&ds, ipath, lpath, 3, 0);
        if (st == FMNN_OK) {
            ck_assert_int_eq(ds->count, 3);
            fmnn_dataset_free(ds);
            ok = 1;
        } else {
            ck_assert_msg(st == FMNN_ENOMEM, "allocation %ld: status %d: %s", k, st,
                          fmnn_last_error());
            ck_assert_ptr_null(ds);
        }
        testutil_alloc_remove();
        ck_assert_msg(testutil_alloc_live() == 0, "allocation %ld: %ld blocks leaked", k,
                      testutil_alloc_live());
    }
    ck_assert(ok);
}
END_TEST

/* ---- the real dataset ------------------------------------------------------ */

START_TEST(test_fashion_mnist)
{
    const char *images = DATASET_DIR "/t10k-images-idx3-ubyte.gz";
    const char *labels = DATASET_DIR "/t10k-labels-idx1-ubyte.gz";
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0) {
        printf("check_idx: SKIP test_fashion_mnist: %s or %s is missing "
               "(apt-get install dataset-fashion-mnist)\n", images, labels);
        return;
    }
    fmnn_dataset *ds = NULL;
    ck_assert_msg(fmnn_dataset_load(&ds, images, labels, 10, 0) == FMNN_OK, "%s",
                  fmnn_last_error());
    ck_assert_int_eq(ds->count, 10000);
    ck_assert_int_eq(fmnn_tensor_rank(ds->images), 4);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 0), 10000);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 1), 28);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 2), 28);
    ck_assert_int_eq(fmnn_tensor_dim(ds->images, 3), 1);
    ck_assert_int_eq(fmnn_tensor_dim(ds->labels, 1), 10);
    ck_assert_uint_eq(ds->classes[0], 9);   /* Ankle boot */
    ck_assert(fmnn_tensor_const_data(ds->labels)[9] == 1.0f);
    fmnn_dataset_free(ds);
}
END_TEST

/* ---- the suite ------------------------------------------------------------- */

static Suite *idx_suite(void)
{
    Suite *s = suite_create("idx");

    TCase *tc = tcase_create("valid");
    tcase_add_loop_test(tc, test_read_valid, 0, 2);
    tcase_add_loop_test(tc, test_read_rank_limits, 0, 2);
    tcase_add_test(tc, test_read_large);
    tcase_add_loop_test(tc, test_dataset_valid, 0, 2);
    tcase_add_loop_test(tc, test_dataset_limit, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad files");
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_directory);
    tcase_add_loop_test(tc, test_bad_magic, 0, 2);
    tcase_add_loop_test(tc, test_unsupported_type, 0, 2);
    tcase_add_loop_test(tc, test_bad_rank, 0, 2);
    tcase_add_loop_test(tc, test_bad_dims, 0, 2);
    tcase_add_loop_test(tc, test_truncated_header, 0, 2);
    tcase_add_loop_test(tc, test_truncated_data, 0, 2);
    tcase_add_loop_test(tc, test_trailing_bytes, 0, 2);
    tcase_add_test(tc, test_many_trailing_bytes);
    tcase_add_test(tc, test_corrupt_gzip);
    tcase_add_test(tc, test_damaged_gzip);
    suite_add_tcase(s, tc);

    tc = tcase_create("datasets");
    tcase_add_loop_test(tc, test_dataset_count_mismatch, 0, 2);
    tcase_add_loop_test(tc, test_dataset_label_out_of_range, 0, 2);
    tcase_add_loop_test(tc, test_dataset_bad_ranks, 0, 2);
    tcase_add_loop_test(tc, test_dataset_bad_file, 0, 2);
    tcase_add_test(tc, test_null_and_bad_arguments);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);

    tc = tcase_create("fashion-mnist");
    tcase_set_timeout(tc, 120);   /* decompressing 8 MB is slow under valgrind */
    tcase_add_test(tc, test_fashion_mnist);
    suite_add_tcase(s, tc);
    return s;
}

/* Removes the temporary directory and every file the tests left in it. */
static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    if (!dir)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(tmpdir);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("check_idx: mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(idx_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed == 0 ? 0 : 1;
}
