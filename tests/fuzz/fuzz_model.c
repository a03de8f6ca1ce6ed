/*
 * fuzz_model.c - libFuzzer target for the model loader (lib/save.c,
 * lib/format1.c, lib/model_file.c).
 *
 * Each input is a model file, loaded with fmnn_model_load from an
 * in-memory file, twice: as it is, and with the header's payload size
 * and CRC-32 recomputed, so that mutations get past the checksum and
 * reach the payload's parser.  Every failure must be FMNN_EFORMAT, leave
 * *out NULL and name the file.  A model that loads must:
 *   - save back to exactly the same bytes, or (from format 1, or from a
 *     file that lacks options, which get their fallbacks) to a file that
 *     loads to the same weights and saves to itself again;
 *   - print its summary, predict, fit one step and evaluate (when its
 *     activations are small) without a sanitizer report;
 *   - after that step, save with its optimizer state and load back with
 *     the same weights, moments and step count.
 *
 *   make fuzz && build/fuzz/fuzz_model build/fuzz/corpus_model tests/fuzz/corpus_model
 */
#define _GNU_SOURCE
#include <zlib.h>

#include "fit_state.h"
#include "fuzz_common.h"
#include "model_impl.h" /* the input shape, the optimizer state */

/* Activations larger than this (values per sample) are not run. */
#define MAX_RUN_VALUES 2048

static memfile input;
static const char *saved;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fmnn_set_num_threads(1);
    memfile_open(&input, "fuzz-model");
    saved = scratch_open("model");
    return 0;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
        abort();
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Values per sample of the input and of every layer's output, at most. */
static size_t largest_activation(const fmnn_model *m)
{
    size_t largest = 1;
    for (int d = 0; d < m->input.rank; d++)
        largest *= (size_t)m->input.dims[d];
    for (int i = 0; i < fmnn_model_layer_count(m); i++) {
        int dims[FMNN_MAX_RANK];
        int rank = fmnn_model_output_shape(m, i, dims);
        if (rank < 1)
            abort();
        size_t n = 1;
        for (int d = 0; d < rank; d++)
            n *= (size_t)dims[d];
        if (n > largest)
            largest = n;
    }
    return largest;
}

/* Predict, fit one step, evaluate; then a save and load with the
 * optimizer's state must give back the same state. */
static void exercise(fmnn_model *m)
{
    FILE *null = fopen("/dev/null", "w");
    if (!null || fmnn_model_summary(m, null) != FMNN_OK)
        abort();
    fclose(null);
    if (largest_activation(m) > MAX_RUN_VALUES)
        return;

    int xdims[FMNN_MAX_RANK] = { 2 };
    for (int d = 0; d < m->input.rank; d++)
        xdims[d + 1] = m->input.dims[d];
    fmnn_tensor *x, *y, *out;
    if (fmnn_tensor_new(&x, m->input.rank + 1, xdims) != FMNN_OK)
        abort();
    float *xd = fmnn_tensor_data(x);
    for (size_t i = 0; i < fmnn_tensor_size(x); i++)
        xd[i] = (float)((i * 37) % 11) / 11.0f - 0.4f;
    if (fmnn_model_predict(m, x, 0, &out) != FMNN_OK)
        abort();
    if (fmnn_tensor_dim(out, 0) != 2)
        abort();
    fmnn_tensor_free(out);

    /* Targets: output_rows rows of output_width classes per sample. */
    int rows = m->output_rows, width = m->output_width;
    if (m->loss_ops->sparse) {
        if (fmnn_tensor_new(&y, 2, (int[]){ 2, rows }) != FMNN_OK)
            abort();
    } else {
        if (fmnn_tensor_new(&y, 2, (int[]){ 2, rows * width }) != FMNN_OK)
            abort();
        if (m->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY || m->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS)
            for (int r = 0; r < 2 * rows; r++)
                fmnn_tensor_data(y)[(size_t)r * width] = 1.0f;
    }
    fmnn_fit_options options = FMNN_FIT_OPTIONS_INIT;
    options.batch_size = 2;
    options.verbose = 0;
    options.seed = 7;
    /* One step; refused only when it would reach the step count the
     * loader refuses, so that what fit leaves always loads again. */
    int st;
    if (m->resume) {
        /* A fit state from the file: resumed when it is this fit's (seed 7,
         * batches of 2 of 2 samples, no validation), else refused. */
        const int stopped = m->resume->stopped, at = m->resume->epoch;
        options.resume = 1;
        options.epochs = at < 64 ? at + 1 : 1;
        fmnn_history *h = NULL;
        st = fmnn_model_fit(m, x, y, &options, &h);
        if (st != FMNN_OK && st != FMNN_ENUMERIC && st != FMNN_EINVAL)
            abort();
        if (st == FMNN_OK && (!h || h->epochs != (stopped ? at : options.epochs) - h->initial_epoch))
            abort();
        fmnn_history_free(h);
        options.resume = 0;
        options.epochs = 1;
    }
    const int64_t step = m->step, trained = m->steps_trained, epochs = m->epochs_trained;
    const int at_limit = step == FMNN__MAX_STEPS - 1 || trained == FMNN__MAX_STEPS - 1 || epochs == FMNN__MAX_STEPS - 1;
    st = fmnn_model_fit(m, x, y, &options, NULL);
    if (st == FMNN_EINVAL && at_limit && m->step == step && m->steps_trained == trained &&
        strstr(fmnn_last_error(), "2^62"))
        st = FMNN_OK;
    if (st != FMNN_OK && st != FMNN_ENUMERIC)
        abort();
    float loss, accuracy;
    if (fmnn_model_evaluate(m, x, y, 0, &loss, &accuracy) != FMNN_OK)
        abort();
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);

    size_t n = m->n_params;
    /* fit keeps every value finite (it refuses an update that is not), so
     * what it leaves must save, with its state, and load again. */
    if (fmnn_model_save(m, saved, FMNN_SAVE_OPTIMIZER) != FMNN_OK) {
        fprintf(stderr, "save after fit: %s\n", fmnn_last_error());
        abort();
    }
    fmnn_model *back = NULL;
    if (fmnn_model_load(&back, saved) != FMNN_OK) {
        fprintf(stderr, "reload after fit: %s\n", fmnn_last_error());
        abort();
    }
    if (back->n_params != n || back->step != m->step ||
        memcmp(back->params, m->params, n * sizeof(float)) != 0 ||
        back->optimizer_ops != m->optimizer_ops)
        abort();
    for (int k = 0; k < m->slots.count; k++)
        if (memcmp(back->slots.arrays[k], m->slots.arrays[k], n * sizeof(float)) != 0)
            abort();
    fmnn_model_free(back);
}

static void try_load(const uint8_t *data, size_t size)
{
    memfile_put(&input, data, size);
    fmnn_model *m = (fmnn_model *)&input;
    int st = fmnn_model_load(&m, input.path);
    if (st != FMNN_OK) {
        if (m != NULL || st != FMNN_EFORMAT) {
            fprintf(stderr, "status %d: %s\n", st, fmnn_last_error());
            abort();
        }
        expect_named(st, input.path);
        return;
    }
    /* Saved again, a model gives back the very same bytes, unless the
     * file was of format 1 or lacked options that then got their
     * fallbacks (which makes the new file longer); a format-4 file (a
     * format-5 one without a fit record) comes back as format 5.  Either
     * way the new file loads back to the same weights and saves to itself
     * again. */
    unsigned flags = data[12] & 2 ? FMNN_SAVE_FIT_STATE : data[12] & 1 ? FMNN_SAVE_OPTIMIZER : 0;
    if (fmnn_model_save(m, saved, flags) != FMNN_OK)
        abort();
    size_t n;
    uint8_t *copy = slurp(saved, &n);
    const int format1 = data[8] == 1; /* then any size: its records are 44 bytes */
    if (data[8] == 4 && n == size)
        copy[8] = 4; /* the rest must be the same bytes */
    if (!format1 && (n == size ? memcmp(copy, data, size) != 0 : n < size)) {
        fprintf(stderr, "the model saved back differs from the file it was loaded from\n");
        abort();
    }
    if (format1 || n != size) {
        fmnn_model *again = NULL;
        if (fmnn_model_load(&again, saved) != FMNN_OK || again->n_params != m->n_params ||
            memcmp(again->params, m->params, m->n_params * sizeof(float)) != 0 ||
            fmnn_model_save(again, saved, flags) != FMNN_OK) {
            fprintf(stderr, "the model saved back does not load back the same\n");
            abort();
        }
        size_t n2;
        uint8_t *copy2 = slurp(saved, &n2);
        if (n2 != n || memcmp(copy2, copy, n) != 0) {
            fprintf(stderr, "saving the model saved back changes it again\n");
            abort();
        }
        free(copy2);
        fmnn_model_free(again);
    }
    free(copy);
    exercise(m);
    fmnn_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_load(data, size);
    if (size < 32)
        return 0;
    /* The same payload under a header whose size and CRC agree with it. */
    uint8_t *fixed = malloc(size);
    if (!fixed)
        abort();
    memcpy(fixed, data, size);
    uint64_t payload = size - 32;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), fixed + 32, (uInt)payload);
    for (int i = 0; i < 8; i++)
        fixed[16 + i] = (uint8_t)(payload >> (8 * i));
    for (int i = 0; i < 4; i++)
        fixed[24 + i] = (uint8_t)(crc >> (8 * i));
    if (memcmp(fixed, data, 32) != 0)
        try_load(fixed, size);
    free(fixed);
    return 0;
}
