/*
 * fuzz_idx.c - libFuzzer target for the IDX reader (lib/data_idx.c).
 *
 * Each input is an IDX file, plain or gzip-compressed, read with
 * fmnn_idx_read from an in-memory file.  A successful read must describe
 * its data consistently; a rank-3 array is then loaded as a dataset with
 * generated labels, and a rank-1 array as labels of generated images,
 * so that fmnn_dataset_load's checks and preprocessing run too.
 * Every failure must be FMNN_EFORMAT with the file named in the message.
 *
 *   make fuzz && build/fuzz/fuzz_idx build/fuzz/corpus_idx tests/fuzz/corpus_idx
 */
#define _GNU_SOURCE
#include "fuzz_common.h"

static memfile input, other;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fmnn_set_num_threads(1);
    memfile_open(&input, "fuzz-idx");
    memfile_open(&other, "fuzz-idx-other");
    return 0;
}

/* A valid IDX file of unsigned bytes: rank, dims, then the data. */
static size_t make_idx(uint8_t *buf, int rank, const int *dims, const uint8_t *data, size_t n)
{
    size_t len = 0;
    buf[len++] = 0;
    buf[len++] = 0;
    buf[len++] = 8;
    buf[len++] = (uint8_t)rank;
    for (int i = 0; i < rank; i++)
        for (int s = 24; s >= 0; s -= 8)
            buf[len++] = (uint8_t)((unsigned)dims[i] >> s);
    memcpy(buf + len, data, n);
    return len + n;
}

static void check_dataset(int status, fmnn_dataset *ds, int count, int limit)
{
    if (status != FMNN_OK) {
        if (ds || status != FMNN_EFORMAT)
            abort();
        return;
    }
    int n = limit > 0 && limit < count ? limit : count;
    if (ds->count != n || fmnn_tensor_dim(ds->images, 0) != n || fmnn_tensor_dim(ds->labels, 0) != n)
        abort();
    const float *x = fmnn_tensor_const_data(ds->images);
    for (size_t i = 0; i < fmnn_tensor_size(ds->images); i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            abort();
    const float *y = fmnn_tensor_const_data(ds->labels);
    for (int i = 0; i < n; i++)
        if (ds->classes[i] >= ds->num_classes || y[(size_t)i * ds->num_classes + ds->classes[i]] != 1.0f)
            abort();
    fmnn_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memfile_put(&input, data, size);
    fmnn_idx *idx = (fmnn_idx *)&input;
    int st = fmnn_idx_read(&idx, input.path);
    if (st != FMNN_OK) {
        if (idx != NULL || st != FMNN_EFORMAT)
            abort();
        expect_named(st, input.path);
        return 0;
    }
    if (idx->rank < 1 || idx->rank > FMNN_MAX_RANK)
        abort();
    size_t n = 1;
    for (int i = 0; i < idx->rank; i++) {
        if (idx->dims[i] < 1)
            abort();
        n *= (size_t)idx->dims[i];
    }
    if (n != idx->size)
        abort();
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) /* every byte must be readable (ASan) */
        sum += idx->data[i];
    (void)sum;

    int limit = size > 0 ? data[size - 1] % 4 : 0;
    static uint8_t buf[4 * 4096 + 32];
    if (idx->rank == 3 && idx->dims[0] <= 4096) {
        /* As images, with labels 0, 1, 2, 0, ... */
        uint8_t labels[4096];
        for (int i = 0; i < idx->dims[0]; i++)
            labels[i] = (uint8_t)(i % 3);
        memfile_put(&other, buf, make_idx(buf, 1, idx->dims, labels, (size_t)idx->dims[0]));
        fmnn_dataset *ds = NULL;
        st = fmnn_dataset_load(&ds, input.path, other.path, 3, limit);
        if (st != FMNN_OK)
            abort(); /* the same bytes read fine a moment ago */
        check_dataset(st, ds, idx->dims[0], limit);
    } else if (idx->rank == 1 && idx->dims[0] <= 4096) {
        /* As labels, of 2x2 images; some labels may exceed num_classes. */
        int dims[3] = { idx->dims[0], 2, 2 };
        static const uint8_t pixels[4 * 4096];
        memfile_put(&other, buf, make_idx(buf, 3, dims, pixels, 4 * (size_t)idx->dims[0]));
        int classes = size > 1 ? 1 + data[size - 2] % 16 : 10;
        fmnn_dataset *ds = NULL;
        st = fmnn_dataset_load(&ds, other.path, input.path, classes, limit);
        expect_named(st, input.path);
        check_dataset(st, ds, idx->dims[0], limit);
    }
    fmnn_idx_free(idx);
    return 0;
}
