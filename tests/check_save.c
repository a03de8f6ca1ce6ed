/*
 * check_save.c - model files (lib/save.c, lib/model_file.c, docs/FORMAT.md).
 *
 * Round trips (architecture, options, weights, predictions), resuming
 * training from a file with the optimizer's state, every kind of corrupt
 * file the loader must refuse, and atomic saving: a save that fails
 * halfway (a file size limit in a child process) leaves the existing
 * file intact and no temporary file behind.  Every file goes into a
 * temporary directory made in main() and removed at the end.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "fmnn.h"
#include "testutil.h"
#include "model_impl.h" /* to compare the models' insides */

static char tmpdir[] = "/tmp/fmnn_check_save_XXXXXX";

/* The thousands of corrupt files go to memory when /dev/shm exists:
 * rewriting a file on disk costs milliseconds each. */
static char shmdir[] = "/dev/shm/fmnn_check_save_XXXXXX";
static const char *corruptdir = tmpdir;

/* Offsets in a format-1 file of a model with a rank-3 input (docs/FORMAT.md). */
#define HEADER 32
#define RECORDS (HEADER + 52)
#define RECORD 44
#define AT_RECORD(i) (RECORDS + RECORD * (i))

/* Offsets in the format-4 file of small_model() with Adam: each layer
 * record is its code, its flags, its option count, then the options.
 * (The V2_ names date from format 2, whose layout this extends.) */
enum {
    V2_LOSS = HEADER, V2_RANK = HEADER + 4, V2_HEIGHT = HEADER + 8,
    V2_OPTIMIZER = HEADER + 20, V2_SETTINGS = HEADER + 24, /* count, lr, beta_1, beta_2, epsilon, amsgrad,
                                                            * then the 45 settings every optimizer has */
    ADAM_SETTINGS = 5 + 45,
    V2_LAYERS = V2_SETTINGS + 4 + 4 * ADAM_SETTINGS,
    V2_CONV = V2_LAYERS + 4,     /* filters, kernel h, w, strides h, w, padding, activation, l1, l2,
                                  * dilation h, w, use_bias, kernel and bias initializers */
    V2_RELU = V2_CONV + 68,      /* activation */
    V2_POOL = V2_RELU + 16,      /* pool h, w, strides h, w, padding */
    V2_DROPOUT = V2_POOL + 32,   /* rate */
    V2_FLATTEN = V2_DROPOUT + 16,
    V2_DENSE = V2_FLATTEN + 12,  /* units, activation, l1, l2, use_bias, initializers */
    V2_SOFTMAX = V2_DENSE + 40,
    V2_PARAMS = V2_SOFTMAX + 16, /* u64 count, 225 floats */
    V2_STATE = V2_PARAMS + 8 + 4 * 225,
    V2_TRAINING = V2_STATE + 8,  /* u64 epochs, u64 steps, metric count, then each metric: */
    V2_METRIC = V2_TRAINING + 20, /* kind, option count, k, threshold, num_thresholds */
    V2_STEP = V2_METRIC + 20,
    V2_SLOTS = V2_STEP + 8,
    V2_MOMENTS = V2_SLOTS + 4
};

/* tests/format1/NAME, from the source tree Make runs the tests in. */
static unsigned char *format1_file(const char *name, size_t *n);

/* ---- helpers ---------------------------------------------------------- */

static const char *tpath(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", tmpdir, name);
    ck_assert(n > 0 && (size_t)n < cap);
    return buf;
}

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Reads a whole file into a malloc'd buffer (with 64 spare bytes). */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)size + 64);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static unsigned char *format1_file(const char *name, size_t *n)
{
    const char *root = getenv("FMNN_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/format1/%s", root ? root : ".", name);
    return slurp(path, n);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void wrf(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    wr32(p, v);
}

/* Makes the header agree with an edited payload: its size and CRC-32. */
static void fix_header(unsigned char *buf, size_t n)
{
    ck_assert_uint_ge(n, HEADER);
    wr64(buf + 16, n - HEADER);
    wr32(buf + 24, (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf + HEADER, (uInt)(n - HEADER)));
}

/* Count of the largest allocation the library asks for, to prove that
 * oversized counts in a file are refused before anything is allocated. */
static size_t largest_request;

static void *watching_malloc(size_t size, void *user)
{
    (void)user;
    if (size > largest_request)
        largest_request = size;
    return malloc(size);
}

static void watching_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

/*
 * Loads the n bytes as a file and expects status, *out NULL, a message
 * naming the file and containing word, and no allocation larger than
 * 4 times the file (the payload copy and the four parameter arrays).
 */
static void expect_load_error_named(const char *name, const unsigned char *bytes, size_t n, int status,
                                    const char *word)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", corruptdir, name);
    write_bytes(path, bytes, n);
    const fmnn_allocator watch = { watching_malloc, watching_free, NULL };
    largest_request = 0;
    fmnn_set_allocator(&watch);
    fmnn_model *m = NOT_NULL;
    fmnn_clear_error();
    int st = fmnn_model_load(&m, path);
    fmnn_set_allocator(NULL);
    const char *msg = fmnn_last_error();
    ck_assert_msg(st == status, "%s (%zu bytes): status %d, expected %d: %s", name, n, st, status, msg);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(msg, path) != NULL, "message \"%s\" does not name %s", msg, path);
    ck_assert_msg(word == NULL || strstr(msg, word) != NULL, "message \"%s\" does not contain \"%s\"", msg, word);
    ck_assert_msg(largest_request <= 4 * n + 4096, "%s: allocated %zu bytes for a %zu-byte file", name,
                  largest_request, n);
}

static void expect_load_error(const unsigned char *bytes, size_t n, int status, const char *word)
{
    expect_load_error_named("corrupt.fmnn", bytes, n, status, word);
}

/* Fills a tensor with reproducible values in [-1, 1). */
static void fill(fmnn_tensor *t, uint64_t seed)
{
    float *d = fmnn_tensor_data(t);
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < fmnn_tensor_size(t); i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        d[i] = (float)(s >> 40) / 8388608.0f - 1.0f;
    }
}

static fmnn_tensor *images(int n, uint64_t seed)
{
    fmnn_tensor *x;
    ck_assert_int_eq(fmnn_tensor_new(&x, 4, (int[]){ n, 8, 8, 1 }), FMNN_OK);
    fill(x, seed);
    return x;
}

/* Targets for 5 classes: one-hot (N, 5), or class indices (N). */
static fmnn_tensor *targets(int n, fmnn_loss loss)
{
    fmnn_tensor *y;
    if (loss == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) {
        ck_assert_int_eq(fmnn_tensor_new(&y, 1, (int[]){ n }), FMNN_OK);
        for (int i = 0; i < n; i++)
            fmnn_tensor_data(y)[i] = (float)((i * 3) % 5);
    } else {
        ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ n, 5 }), FMNN_OK);
        for (int i = 0; i < n; i++)
            fmnn_tensor_data(y)[i * 5 + (i * 3) % 5] = 1.0f;
    }
    return y;
}

static void add(fmnn_model *m, fmnn_layer *layer)
{
    ck_assert_msg(fmnn_model_add(m, layer) == FMNN_OK, "%s", fmnn_last_error());
}

/* The small model: 8x8x1 -> Conv2D(4, 3x3) -> relu -> MaxPool 2 ->
 * Dropout 0.25 -> Flatten -> Dense(5, l2) -> softmax.  7 layers. */
static fmnn_model *small_model(fmnn_loss loss, const fmnn_optimizer *opt, uint64_t seed)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }), FMNN_OK);
    add(m, fmnn_conv2d(4, 3, 3, NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_maxpool2d(2, 2, NULL));
    add(m, fmnn_dropout(0.25f));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_LINEAR, .kernel_regularizer = fmnn_l2(0.01f) }));
    add(m, fmnn_activation(FMNN_SOFTMAX));
    ck_assert_msg(fmnn_model_compile(m, loss, opt, seed) == FMNN_OK, "%s", fmnn_last_error());
    return m;
}

/* Every layer type and option: strides, both paddings, fused and
 * separate activations, l1, l2 and l1_l2, a dropout rate.  8 layers. */
static fmnn_model *full_model(fmnn_loss loss, const fmnn_optimizer *opt, uint64_t seed)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }), FMNN_OK);
    add(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME, .activation = FMNN_RELU, .kernel_regularizer = fmnn_l1(0.001f) }));
    add(m, fmnn_conv2d(3, 2, 2, &(fmnn_conv2d_options){ .stride_h = 2, .stride_w = 1, .padding = FMNN_PADDING_VALID, .activation = FMNN_LINEAR, .kernel_regularizer = fmnn_l2(0.002f) }));
    add(m, fmnn_activation(FMNN_TANH));
    add(m, fmnn_maxpool2d(2, 2, &(fmnn_maxpool2d_options){ 1, 2, FMNN_PADDING_SAME }));
    add(m, fmnn_dropout(0.375f));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(6, &(fmnn_dense_options){ .activation = FMNN_SIGMOID, .kernel_regularizer = fmnn_l1_l2(0.001f, 0.002f) }));
    add(m, fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX, .kernel_regularizer = fmnn_l2(0.01f) }));
    ck_assert_msg(fmnn_model_compile(m, loss, opt, seed) == FMNN_OK, "%s", fmnn_last_error());
    return m;
}

static void save_ok(const fmnn_model *m, const char *path, unsigned flags)
{
    ck_assert_msg(fmnn_model_save(m, path, flags) == FMNN_OK, "%s", fmnn_last_error());
}

static fmnn_model *load_ok(const char *path)
{
    fmnn_model *m = NULL;
    ck_assert_msg(fmnn_model_load(&m, path) == FMNN_OK, "%s", fmnn_last_error());
    ck_assert_ptr_nonnull(m);
    return m;
}

/* Fit options for a test: the given batch size, no progress output. */
static fmnn_fit_options quiet(int batch_size)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch_size;
    o.verbose = 0;
    return o;
}

static void fit_ok(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const fmnn_fit_options *o)
{
    ck_assert_msg(fmnn_model_fit(m, x, y, o, NULL) == FMNN_OK, "%s", fmnn_last_error());
}

/* Same architecture, options, loss, optimizer settings and weights. */
static void assert_same_model(fmnn_model *a, fmnn_model *b)
{
    ck_assert_int_eq(fmnn_model_layer_count(a), fmnn_model_layer_count(b));
    ck_assert_uint_eq(fmnn_model_param_count(a), fmnn_model_param_count(b));
    ck_assert_int_eq(a->input.rank, b->input.rank);
    ck_assert_mem_eq(a->input.dims, b->input.dims, sizeof a->input.dims);
    ck_assert_int_eq(a->loss, b->loss);
    ck_assert_int_eq(a->optimizer.kind, b->optimizer.kind);
    ck_assert(a->optimizer.learning_rate == b->optimizer.learning_rate);
    ck_assert(a->optimizer.adam.beta_1 == b->optimizer.adam.beta_1);
    ck_assert(a->optimizer.adam.beta_2 == b->optimizer.adam.beta_2);
    ck_assert(a->optimizer.adam.epsilon == b->optimizer.adam.epsilon);
    ck_assert(a->optimizer.sgd.momentum == b->optimizer.sgd.momentum);
    ck_assert_int_eq(a->optimizer.sgd.nesterov, b->optimizer.sgd.nesterov);
    ck_assert_mem_eq(&a->optimizer, &b->optimizer, sizeof a->optimizer); /* every setting, the schedule */
    for (int i = 0; i < fmnn_model_layer_count(a); i++) {
        const fmnn_layer *la = fmnn_model_layer(a, i), *lb = fmnn_model_layer(b, i);
        ck_assert_str_eq(fmnn_layer_name(la), fmnn_layer_name(lb));
        ck_assert_str_eq(fmnn_layer_type(la), fmnn_layer_type(lb));
        int da[FMNN_MAX_RANK], db[FMNN_MAX_RANK];
        ck_assert_int_eq(fmnn_model_output_shape(a, i, da), fmnn_model_output_shape(b, i, db));
        ck_assert_mem_eq(da, db, sizeof da);
        ck_assert_int_eq(la->activation, lb->activation);
        ck_assert(la->regularizer.l1 == lb->regularizer.l1);
        ck_assert(la->regularizer.l2 == lb->regularizer.l2);
        ck_assert_uint_eq(la->n_kernel, lb->n_kernel);
        ck_assert_uint_eq(la->n_bias, lb->n_bias);
        ck_assert_int_eq(la->n_state, lb->n_state);
        const fmnn_fields *config = &la->ops->config; /* every option, as the file keeps them */
        for (int k = 0; k < config->count; k++)
            ck_assert_mem_eq((const char *)la + config->fields[k].offset, (const char *)lb + config->fields[k].offset, 4);
    }
    size_t na, nb;
    const float *wa = fmnn_model_weights(a, &na), *wb = fmnn_model_weights(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(wa, wb, na * sizeof *wa);
}

static void assert_same_predictions(fmnn_model *a, fmnn_model *b, const fmnn_tensor *x)
{
    fmnn_tensor *pa, *pb;
    ck_assert_int_eq(fmnn_model_predict(a, x, 0, &pa), FMNN_OK);
    ck_assert_int_eq(fmnn_model_predict(b, x, 0, &pb), FMNN_OK);
    ck_assert_uint_eq(fmnn_tensor_size(pa), fmnn_tensor_size(pb));
    ck_assert_mem_eq(fmnn_tensor_const_data(pa), fmnn_tensor_const_data(pb), fmnn_tensor_size(pa) * sizeof(float));
    fmnn_tensor_free(pa);
    fmnn_tensor_free(pb);
}

/* The file of the small model after a little training, with its
 * optimizer's state: the base of the corruption tests. */
static unsigned char *good_file(size_t *n, unsigned flags)
{
    fmnn_model *m = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 5);
    fmnn_tensor *x = images(8, 1), *y = targets(8, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_fit_options o = quiet(4);
    fit_ok(m, x, y, &o);
    char path[512];
    save_ok(m, tpath(path, sizeof path, "good.fmnn"), flags);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
    return slurp(path, n);
}

/* Names the files in the temporary directory other than keep (NULL when
 * there are none), so tests can check that no temporary file is left. */
static char *stray_file(const char *dir, const char *keep)
{
    static char name[256];
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char *found = NULL;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, keep) == 0)
            continue;
        snprintf(name, sizeof name, "%s", e->d_name);
        found = name;
        break;
    }
    closedir(d);
    return found;
}

/* ---- round trips ------------------------------------------------------- */

/* Every layer type of the newer kind (format 2 alone has them), after a
 * little training so that the moving statistics have moved: weights,
 * non-trainable values, optimizer state and predictions survive bit for
 * bit, the file saves back to the same bytes, and both models train on
 * identically. */
START_TEST(test_round_trip_new_layers)
{
    fmnn_model *a;
    ck_assert_int_eq(fmnn_model_new(&a, 3, (int[]){ 8, 8, 1 }), FMNN_OK);
    const fmnn_pool2d_options same = { .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME };
    fmnn_batch_normalization_options bn = FMNN_BATCH_NORMALIZATION_OPTIONS_INIT;
    bn.momentum = 0.9f;
    bn.center = 0;
    add(a, fmnn_zero_padding2d(1, 0, 2, 1));
    add(a, fmnn_conv2d(3, 3, 3, &(fmnn_conv2d_options){ .dilation_h = 2, .no_bias = 1,
                                                         .kernel_initializer = FMNN_HE_NORMAL }));
    add(a, fmnn_batch_normalization(NULL));
    add(a, fmnn_activation(FMNN_RELU));
    add(a, fmnn_average_pooling2d(2, 2, &same));
    add(a, fmnn_maxpool2d(2, 2, NULL));
    add(a, fmnn_reshape(2, (int[]){ 4, -1 }));
    add(a, fmnn_reshape(3, (int[]){ 2, 4, 3 }));
    fmnn_layer *frozen = fmnn_global_max_pooling2d();
    ck_assert_int_eq(fmnn_layer_set_trainable(frozen, 0), FMNN_OK);
    add(a, frozen);
    add(a, fmnn_batch_normalization(&bn));
    add(a, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_GELU }));
    add(a, fmnn_leaky_relu(0.25f));
    add(a, fmnn_activation(FMNN_SELU));
    add(a, fmnn_dense(5, NULL));
    add(a, fmnn_activation(FMNN_SOFTMAX));
    ck_assert_msg(fmnn_model_compile(a, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 4) == FMNN_OK, "%s",
                  fmnn_last_error());
    fmnn_tensor *x = images(8, 3), *y = targets(8, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_fit_options o = quiet(4);
    fit_ok(a, x, y, &o);
    ck_assert(a->state[0] != 0.0f); /* the first moving mean has moved */

    char path[512], again[512];
    tpath(path, sizeof path, "new-layers.fmnn");
    tpath(again, sizeof again, "new-layers-again.fmnn");
    save_ok(a, path, FMNN_SAVE_OPTIMIZER);
    fmnn_model *b = load_ok(path);
    assert_same_model(a, b);
    ck_assert_uint_eq(a->n_state, b->n_state);
    ck_assert_mem_eq(a->state, b->state, a->n_state * sizeof *a->state);
    for (int k = 0; k < a->slots.count; k++)
        ck_assert_mem_eq(a->slots.arrays[k], b->slots.arrays[k], a->n_params * sizeof(float));
    assert_same_predictions(a, b, x);
    save_ok(b, again, FMNN_SAVE_OPTIMIZER);
    size_t na, nb;
    unsigned char *fa = slurp(path, &na), *fb = slurp(again, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(fa, fb, na);
    free(fa);
    free(fb);

    fit_ok(a, x, y, &o);
    fit_ok(b, x, y, &o);
    size_t n;
    const float *wa = fmnn_model_weights(a, &n), *wb = fmnn_model_weights(b, NULL);
    ck_assert_mem_eq(wa, wb, n * sizeof *wa);
    ck_assert_mem_eq(a->state, b->state, a->n_state * sizeof *a->state);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(a);
    fmnn_model_free(b);

    /* And GlobalAveragePooling2D, with a binary cross-entropy head. */
    ck_assert_int_eq(fmnn_model_new(&a, 3, (int[]){ 4, 4, 2 }), FMNN_OK);
    add(a, fmnn_global_average_pooling2d());
    add(a, fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_SIGMOID, .bias_initializer = FMNN_ONES }));
    ck_assert_int_eq(fmnn_model_compile(a, FMNN_LOSS_BINARY_CROSSENTROPY, NULL, 2), FMNN_OK);
    save_ok(a, path, 0);
    b = load_ok(path);
    assert_same_model(a, b);
    ck_assert_int_eq(fmnn_tensor_new(&x, 4, (int[]){ 3, 4, 4, 2 }), FMNN_OK);
    fill(x, 9);
    assert_same_predictions(a, b, x);
    fmnn_tensor_free(x);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* _i: the loss.  Architecture, options, weights, predictions survive. */
START_TEST(test_round_trip)
{
    fmnn_loss loss = (fmnn_loss)_i;
    fmnn_optimizer sgd = fmnn_sgd(0.05f, 0.9f);
    sgd.sgd.nesterov = 1;
    fmnn_model *a = full_model(loss, _i == 1 ? &sgd : NULL, 11);
    char path[512];
    tpath(path, sizeof path, "round.fmnn");
    for (int flags = 0; flags <= 1; flags++) {
        save_ok(a, path, (unsigned)flags);
        fmnn_model *b = load_ok(path);
        assert_same_model(a, b);
        fmnn_tensor *x = images(7, 2);
        assert_same_predictions(a, b, x);
        if (loss != FMNN_LOSS_MSE) { /* MSE would need 5 targets per sample: same code path */
            fmnn_tensor *y = targets(7, loss);
            float la, lb, aa, ab;
            ck_assert_int_eq(fmnn_model_evaluate(a, x, y, 0, &la, &aa), FMNN_OK);
            ck_assert_int_eq(fmnn_model_evaluate(b, x, y, 0, &lb, &ab), FMNN_OK);
            ck_assert(la == lb && aa == ab);
            fmnn_tensor_free(y);
        }
        fmnn_tensor_free(x);
        /* Saved again, the loaded model gives the very same bytes. */
        char again[512];
        save_ok(b, tpath(again, sizeof again, "again.fmnn"), (unsigned)flags);
        size_t n1, n2;
        unsigned char *f1 = slurp(path, &n1), *f2 = slurp(again, &n2);
        ck_assert_uint_eq(n1, n2);
        ck_assert_mem_eq(f1, f2, n1);
        free(f1);
        free(f2);
        fmnn_model_free(b);
    }
    fmnn_model_free(a);
}
END_TEST

/* The small model after training; and a model without parameters. */
START_TEST(test_round_trip_trained)
{
    fmnn_model *a = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 3);
    fmnn_tensor *x = images(16, 3), *y = targets(16, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_fit_options o = quiet(8);
    fit_ok(a, x, y, &o);
    char path[512];
    save_ok(a, tpath(path, sizeof path, "trained.fmnn"), 0);
    fmnn_model *b = load_ok(path);
    assert_same_model(a, b);
    assert_same_predictions(a, b, x);
    ck_assert_int_eq(b->step, 0); /* no optimizer state in the file */
    fmnn_model_free(a);
    fmnn_model_free(b);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);

    /* No parameters at all: Flatten and softmax, MSE. */
    ck_assert_int_eq(fmnn_model_new(&a, 2, (int[]){ 2, 3 }), FMNN_OK);
    add(a, fmnn_flatten());
    add(a, fmnn_activation(FMNN_SOFTMAX));
    ck_assert_int_eq(fmnn_model_compile(a, FMNN_LOSS_MSE, NULL, 0), FMNN_OK);
    save_ok(a, path, FMNN_SAVE_OPTIMIZER);
    b = load_ok(path);
    assert_same_model(a, b);
    ck_assert_uint_eq(fmnn_model_param_count(b), 0);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* Saving over an existing file replaces it. */
START_TEST(test_overwrite)
{
    char path[512];
    tpath(path, sizeof path, "overwrite.fmnn");
    fmnn_model *a = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1);
    fmnn_model *b = small_model(FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 2);
    save_ok(a, path, 0);
    save_ok(b, path, FMNN_SAVE_OPTIMIZER);
    fmnn_model *c = load_ok(path);
    assert_same_model(b, c);
    fmnn_model_free(a);
    fmnn_model_free(b);
    fmnn_model_free(c);
}
END_TEST

/* ---- resuming training --------------------------------------------------- */

/*
 * _i: 0 Adam, 1 SGD with momentum.  A trains, is saved with its
 * optimizer's state, trains on; B, loaded from the file, trains the same
 * way and must end with A's weights bit for bit.  C, loaded from a file
 * without the state, must not (or the test could not fail).
 */
START_TEST(test_resume)
{
    fmnn_optimizer sgd = fmnn_sgd(0.05f, 0.9f);
    fmnn_model *a = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, _i ? &sgd : NULL, 7);
    fmnn_tensor *x = images(24, 4), *y = targets(24, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_fit_options o = quiet(8);
    o.seed = 3;
    fit_ok(a, x, y, &o); /* 3 steps */
    char with[512], without[512];
    save_ok(a, tpath(with, sizeof with, "resume-with.fmnn"), FMNN_SAVE_OPTIMIZER);
    save_ok(a, tpath(without, sizeof without, "resume-without.fmnn"), 0);

    fmnn_fit_options more = o;
    more.epochs = 2; /* 6 more steps, shuffled, with dropout */
    more.seed = 4;
    fit_ok(a, x, y, &more);

    fmnn_model *b = load_ok(with);
    ck_assert_int_eq(b->step, 3);
    fit_ok(b, x, y, &more);
    ck_assert_int_eq(b->step, a->step);
    size_t na, nb;
    const float *wa = fmnn_model_weights(a, &na), *wb = fmnn_model_weights(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(wa, wb, na * sizeof *wa);
    for (int k = 0; k < a->slots.count; k++)
        ck_assert_mem_eq(a->slots.arrays[k], b->slots.arrays[k], na * sizeof *wa);

    fmnn_model *c = load_ok(without);
    ck_assert_int_eq(c->step, 0);
    fit_ok(c, x, y, &more);
    const float *wc = fmnn_model_weights(c, NULL);
    ck_assert_msg(memcmp(wa, wc, na * sizeof *wa) != 0, "training without the optimizer state gave the same weights");

    fmnn_model_free(a);
    fmnn_model_free(b);
    fmnn_model_free(c);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/*
 * Sizes at the format's limit, 2^24, compile, save and load; one past it
 * does not compile (check_model.c), so every compiled model can be saved
 * and loaded.  A pool as wide as its input keeps the model small.  The
 * same for the count of layers, 4096, where one more cannot be added.
 */
START_TEST(test_round_trip_at_size_limit)
{
    const int limit = 1 << 24;
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 1, limit, 1 }), FMNN_OK);
    add(m, fmnn_maxpool2d(1, limit, &(fmnn_maxpool2d_options){ limit, limit, FMNN_PADDING_VALID }));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX, .kernel_regularizer = { 0.0f, 0.0f } }));
    ck_assert_msg(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1) == FMNN_OK, "%s",
                  fmnn_last_error());
    char path[512];
    save_ok(m, tpath(path, sizeof path, "size-limit.fmnn"), 0);
    fmnn_model *back = load_ok(path);
    assert_same_model(m, back);
    fmnn_model_free(m);
    fmnn_model_free(back);

    /* The most layers a model holds, and one more. */
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 3 }), FMNN_OK);
    for (int i = 0; i < 4095; i++)
        add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_activation(FMNN_SOFTMAX));
    EXPECT_ERROR(fmnn_model_add(m, fmnn_flatten()), FMNN_EINVAL, "4096 layers");
    ck_assert_int_eq(fmnn_model_layer_count(m), 4096);
    ck_assert_msg(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1) == FMNN_OK, "%s",
                  fmnn_last_error());
    save_ok(m, path, 0);
    back = load_ok(path);
    assert_same_model(m, back);
    fmnn_model_free(m);
    fmnn_model_free(back);
}
END_TEST

/*
 * Whatever fit leaves must load again: a model whose optimizer is at the
 * loader's limit of steps trains up to the step before it, saves and loads,
 * and then fit refuses the next run up front, keeping its weights.
 * (Found by fuzz_model: fit took a loadable count past the limit, and the
 * file it saved could not be loaded.)
 */
START_TEST(test_step_limit)
{
    fmnn_model *m = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 7);
    fmnn_tensor *x = images(24, 4), *y = targets(24, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_fit_options o = quiet(8);
    m->step = FMNN__MAX_STEPS - 1 - 3;
    fit_ok(m, x, y, &o); /* 3 steps, to the last count the loader takes */
    ck_assert(m->step == FMNN__MAX_STEPS - 1);
    char path[512];
    save_ok(m, tpath(path, sizeof path, "step-limit.fmnn"), FMNN_SAVE_OPTIMIZER);
    fmnn_model *back = load_ok(path);
    ck_assert(back->step == m->step);

    size_t n;
    const float *w = fmnn_model_weights(back, &n);
    float *before = malloc(n * sizeof *before);
    ck_assert_ptr_nonnull(before);
    memcpy(before, w, n * sizeof *before);
    EXPECT_ERROR(fmnn_model_fit(back, x, y, &o, NULL), FMNN_EINVAL, "2^62");
    ck_assert(back->step == FMNN__MAX_STEPS - 1);
    ck_assert_mem_eq(fmnn_model_weights(back, NULL), before, n * sizeof *before);
    o.epochs = 0; /* nothing to do is still fine */
    EXPECT_OK(fmnn_model_fit(back, x, y, &o, NULL));

    free(before);
    fmnn_model_free(m);
    fmnn_model_free(back);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/* ---- corrupt files ------------------------------------------------------- */

START_TEST(test_bad_header)
{
    size_t n;
    unsigned char *good = good_file(&n, FMNN_SAVE_OPTIMIZER);
    unsigned char *b = malloc(n + 64);
    ck_assert_ptr_nonnull(b);

    memcpy(b, good, n);
    b[1] = 'G';
    expect_load_error(b, n, FMNN_EFORMAT, "magic");
    memcpy(b, "\x1f\x8b\x08\x00", 4); /* a gzip file is not a model file */
    expect_load_error(b, n, FMNN_EFORMAT, "magic");

    memcpy(b, good, n);
    wr32(b + 8, 6);
    expect_load_error(b, n, FMNN_EFORMAT, "version 6");
    wr32(b + 8, 0);
    expect_load_error(b, n, FMNN_EFORMAT, "version 0");

    memcpy(b, good, n);
    wr32(b + 12, 5);
    expect_load_error(b, n, FMNN_EFORMAT, "flags");
    wr32(b + 12, 2); /* a fit state needs the optimizer's */
    expect_load_error(b, n, FMNN_EFORMAT, "flags");
    wr32(b + 12, 0x80000001u);
    expect_load_error(b, n, FMNN_EFORMAT, "flags");

    memcpy(b, good, n);
    wr32(b + 28, 1);
    expect_load_error(b, n, FMNN_EFORMAT, "reserved");

    /* The flag says there is no optimizer state: then bytes are left over. */
    memcpy(b, good, n);
    wr32(b + 12, 0);
    expect_load_error(b, n, FMNN_EFORMAT, "follow");

    /* A payload size larger and smaller than the file. */
    memcpy(b, good, n);
    wr64(b + 16, n);
    expect_load_error(b, n, FMNN_EFORMAT, "truncated");
    wr64(b + 16, UINT64_MAX);
    expect_load_error(b, n, FMNN_EFORMAT, "truncated");
    wr64(b + 16, n - HEADER - 1);
    expect_load_error(b, n, FMNN_EFORMAT, "corrupt");
    free(b);
    free(good);
}
END_TEST

/* Every prefix of a file, as it is and with a header made to agree. */
START_TEST(test_truncated)
{
    size_t n;
    unsigned char *good = good_file(&n, _i ? FMNN_SAVE_OPTIMIZER : 0);
    unsigned char *b = malloc(n + 64);
    ck_assert_ptr_nonnull(b);
    for (size_t len = 0; len < n; len++) {
        expect_load_error(good, len, FMNN_EFORMAT, NULL);
        if (len >= HEADER) {
            memcpy(b, good, len);
            fix_header(b, len);
            expect_load_error(b, len, FMNN_EFORMAT, "corrupt");
        }
    }
    free(b);
    free(good);
}
END_TEST

START_TEST(test_trailing_garbage)
{
    size_t n;
    unsigned char *good = good_file(&n, _i ? FMNN_SAVE_OPTIMIZER : 0);
    for (size_t extra = 1; extra <= 9; extra += 4) {
        memset(good + n, 0, extra);
        expect_load_error(good, n + extra, FMNN_EFORMAT, "the header announces");
        unsigned char *b = malloc(n + extra);
        ck_assert_ptr_nonnull(b);
        memcpy(b, good, n + extra);
        fix_header(b, n + extra);
        expect_load_error(b, n + extra, FMNN_EFORMAT, "follow");
        free(b);
    }
    free(good);
}
END_TEST

/* A single changed byte anywhere in the payload: a checksum mismatch. */
START_TEST(test_bad_checksum)
{
    size_t n;
    unsigned char *good = good_file(&n, FMNN_SAVE_OPTIMIZER);
    for (size_t at = HEADER; at < n; at++) {
        unsigned char saved = good[at];
        good[at] ^= (unsigned char)(1u << (at % 8));
        expect_load_error(good, n, FMNN_EFORMAT, "checksum");
        good[at] = saved;
    }
    wr32(good + 24, rd32(good + 24) ^ 1u); /* or in the stored CRC */
    expect_load_error(good, n, FMNN_EFORMAT, "checksum");
    free(good);
}
END_TEST

/* Edits to a copy of good at offset `at`, then the header made to agree. */
typedef struct edit {
    const char *what;
    size_t at;       /* offset in the file */
    int is_float;
    uint32_t u;      /* a 32-bit value to write */
    float f;
    const char *word; /* expected in the message */
} edit;

/* Each edit in turn on a copy of good, with a header made to agree. */
static void expect_edits_refused(const unsigned char *good, size_t n, const edit *edits, size_t count,
                                 const char *prefix)
{
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < count; i++) {
        const edit *e = &edits[i];
        memcpy(b, good, n);
        if (e->is_float)
            wrf(b + e->at, e->f);
        else
            wr32(b + e->at, e->u);
        fix_header(b, n);
        char name[128];
        snprintf(name, sizeof name, "%s-%zu.fmnn", prefix, i);
        expect_load_error_named(name, b, n, FMNN_EFORMAT, e->word);
    }
    free(b);
}

/* A valid checksum but an impossible architecture or value: format 2. */
START_TEST(test_impossible_architecture)
{
    size_t n;
    unsigned char *good = good_file(&n, FMNN_SAVE_OPTIMIZER);
    const edit edits[] = {
        { "unknown loss", V2_LOSS, 0, 99, 0, "loss" },
        { "input rank 0", V2_RANK, 0, 0, 0, "rank" },
        { "input rank 4", V2_RANK, 0, 4, 0, "rank" },
        { "input height 0", V2_HEIGHT, 0, 0, 0, "input dimension" },
        { "input height 2^31", V2_HEIGHT, 0, 0x80000000u, 0, "input dimension" },
        { "input height 2^24: 5e8 parameters", V2_HEIGHT, 0, 1u << 24, 0, "parameters" },
        { "unknown optimizer", V2_OPTIMIZER, 0, 99, 0, "optimizer" },
        { "more optimizer settings than Adam has", V2_SETTINGS, 0, ADAM_SETTINGS + 1, 0, "options" },
        { "fewer optimizer settings: the rest is misread", V2_SETTINGS, 0, 3, 0, "layer count" },
        { "negative learning rate", V2_SETTINGS + 4, 1, 0, -1.0f, "learning_rate" },
        { "NaN learning rate", V2_SETTINGS + 4, 1, 0, NAN, "learning_rate" },
        { "beta_1 of 1", V2_SETTINGS + 8, 1, 0, 1.0f, "beta_1" },
        { "negative epsilon", V2_SETTINGS + 16, 1, 0, -1.0f, "epsilon" },
        { "layer count 0", V2_LAYERS, 0, 0, 0, "layer count" },
        { "layer count 1e9", V2_LAYERS, 0, 1000000000u, 0, "layer count" },
        { "layer count 8", V2_LAYERS, 0, 8, 0, "layer 7" },
        { "unknown layer code", V2_RELU, 0, 99, 0, "unknown type code" },
        { "layer code 0", V2_RELU, 0, 0, 0, "unknown type code" },
        { "unknown layer flags", V2_CONV + 4, 0, 2, 0, "flags" },
        { "more conv options than it has", V2_CONV + 8, 0, 15, 0, "options" },
        { "options on a Flatten", V2_FLATTEN + 8, 0, 1, 0, "options" },
        { "conv with 0 filters", V2_CONV + 12, 0, 0, 0, "filters" },
        { "conv with 2^30 filters", V2_CONV + 12, 0, 1u << 30, 0, "filters" },
        { "conv with more filters", V2_CONV + 12, 0, 5, 0, "parameters" },
        { "conv kernel larger than the input", V2_CONV + 16, 0, 9, 0, "larger" },
        { "conv stride 0", V2_CONV + 24, 0, 0, 0, "strides[0]" },
        { "conv stride -1", V2_CONV + 24, 0, 0xffffffffu, 0, "strides[0]" },
        { "conv padding 2", V2_CONV + 32, 0, 2, 0, "padding" },
        { "conv activation 13, past the last", V2_CONV + 36, 0, 13, 0, "activation" },
        { "negative regularizer", V2_CONV + 40, 1, 0, -0.5f, "regularizer" },
        { "conv dilation 0", V2_CONV + 48, 0, 0, 0, "dilation_rate[0]" },
        { "conv use_bias 2", V2_CONV + 56, 0, 2, 0, "use_bias" },
        { "conv kernel initializer 99", V2_CONV + 60, 0, 99, 0, "kernel_initializer" },
        { "NaN regularizer", V2_DENSE + 24, 1, 0, NAN, "regularizer" },
        { "infinite regularizer", V2_DENSE + 24, 1, 0, INFINITY, "regularizer" },
        { "pool larger than the input", V2_POOL + 12, 0, 7, 0, "larger" },
        { "pool stride 0", V2_POOL + 20, 0, 0, 0, "strides[0]" },
        { "dropout rate 2", V2_DROPOUT + 12, 1, 0, 2.0f, "rate" },
        { "dropout rate 1", V2_DROPOUT + 12, 1, 0, 1.0f, "rate" },
        { "dropout rate -0.1", V2_DROPOUT + 12, 1, 0, -0.1f, "rate" },
        { "dropout rate NaN", V2_DROPOUT + 12, 1, 0, NAN, "rate" },
        { "dense with 0 units", V2_DENSE + 12, 0, 0, 0, "units" },
        { "dense with 2^24 units", V2_DENSE + 12, 0, 1u << 24, 0, "parameters" },
        { "dense with 2^24+1 units", V2_DENSE + 12, 0, (1u << 24) + 1, 0, "units" },
        { "activation kind 99", V2_SOFTMAX + 12, 0, 99, 0, "activation" },
        { "parameter count + 1", V2_PARAMS, 0, 225 + 1, 0, "parameters" },
        { "parameter count 2^32", V2_PARAMS + 4, 0, 1, 0, "parameters" },
        { "a non-trainable value", V2_STATE, 0, 1, 0, "non-trainable" },
        { "epochs trained 2^62", V2_TRAINING + 4, 0, 0x40000000u, 0, "epochs and steps" },
        { "steps trained 2^63", V2_TRAINING + 12, 0, 0x80000000u, 0, "epochs and steps" },
        { "9 metrics", V2_TRAINING + 16, 0, 9, 0, "metrics" },
        { "2 metrics: the rest is misread", V2_TRAINING + 16, 0, 2, 0, "" },
        { "unknown metric kind", V2_METRIC, 0, 99, 0, "unknown metric" },
        { "more metric options than known", V2_METRIC + 4, 0, 4, 0, "options" },
        { "k on accuracy", V2_METRIC + 8, 0, 3, 0, "top-k only" },
        { "a threshold on accuracy", V2_METRIC + 12, 1, 0, 0.5f, "precision and recall only" },
        { "top-k with k 0, the default's request", V2_METRIC, 0, 1, 0, "setting of 0" },
        { "step count 2^63", V2_STEP + 4, 0, 0x80000000u, 0, "step" },
        { "step count 2^62", V2_STEP + 4, 0, 0x40000000u, 0, "step" },
        { "one optimizer array for Adam", V2_SLOTS, 0, 1, 0, "optimizer state arrays" },
        { "NaN weight", V2_PARAMS + 8, 1, 0, NAN, "NaN" },
        { "infinite weight", V2_PARAMS + 8 + 4 * 224, 1, 0, -INFINITY, "NaN or Inf" },
        { "NaN first moment", V2_MOMENTS, 1, 0, NAN, "optimizer state" },
        { "negative second moment", V2_MOMENTS + 4 * 225 + 8, 1, 0, -1.0f, "second moment" },
    };
    ck_assert_uint_eq(rd32(good + V2_PARAMS), 225); /* 40 + 185 parameters */
    ck_assert_uint_eq(rd32(good + V2_SLOTS), 2);
    ck_assert_uint_eq(n, V2_MOMENTS + 8 * 225);
    expect_edits_refused(good, n, edits, sizeof edits / sizeof *edits, "impossible");
    free(good);
}
END_TEST

/* A file from before Adam's amsgrad and the settings every optimizer
 * shares (libfmnn 0.3: learning_rate, beta_1, beta_2, epsilon) loads with
 * their fallbacks: no amsgrad, no decay, no clip, a constant rate. */
START_TEST(test_old_optimizer_settings_fall_back)
{
    size_t n;
    unsigned char *good = good_file(&n, FMNN_SAVE_OPTIMIZER);
    ck_assert_uint_eq(rd32(good + V2_SETTINGS), ADAM_SETTINGS);
    const size_t keep = V2_SETTINGS + 4 + 4 * 4, cut = 4 * (ADAM_SETTINGS - 4);
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    memcpy(b, good, keep);
    memcpy(b + keep, good + keep + cut, n - keep - cut);
    wr32(b + V2_SETTINGS, 4);
    fix_header(b, n - cut);
    char path[512];
    write_bytes(tpath(path, sizeof path, "old-settings.fmnn"), b, n - cut);
    fmnn_model *old = load_ok(path), *now = load_ok(tpath(path, sizeof path, "good.fmnn"));
    assert_same_model(old, now);
    fmnn_optimizer o;
    ck_assert_int_eq(fmnn_model_get_optimizer(old, &o), FMNN_OK);
    ck_assert(o.adam.amsgrad == 0 && o.weight_decay == 0.0f && o.clipnorm == 0.0f && o.clipvalue == 0.0f &&
              o.global_clipnorm == 0.0f && o.schedule.kind == FMNN_SCHEDULE_CONSTANT);
    ck_assert_int_eq(old->slots.count, 2);
    ck_assert_mem_eq(old->slots.arrays[1], now->slots.arrays[1], old->n_params * sizeof(float));
    fmnn_model_free(old);
    fmnn_model_free(now);
    free(b);
    free(good);
}
END_TEST

/* Options a file lacks at the end of a record (written before they
 * existed) take their fallback: here Dense's last four, l2 (0), use_bias
 * (1) and the initializers (the defaults). */
START_TEST(test_missing_options_fall_back)
{
    size_t n;
    unsigned char *good = good_file(&n, 0);
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(rd32(good + V2_DENSE + 8), 7);
    const size_t l2_at = V2_DENSE + 24, cut = 16;
    memcpy(b, good, l2_at);
    memcpy(b + l2_at, good + l2_at + cut, n - l2_at - cut);
    wr32(b + V2_DENSE + 8, 3);
    fix_header(b, n - cut);
    char path[512];
    write_bytes(tpath(path, sizeof path, "fallback.fmnn"), b, n - cut);
    fmnn_model *m = load_ok(path);
    const fmnn_layer *dense = fmnn_model_layer(m, 5);
    ck_assert(dense->regularizer.l1 == 0.0f && dense->regularizer.l2 == 0.0f);
    fmnn_model *full = load_ok(tpath(path, sizeof path, "good.fmnn"));
    ck_assert(fmnn_model_layer(full, 5)->regularizer.l2 == 0.01f);
    size_t na, nb;
    const float *wa = fmnn_model_weights(m, &na), *wb = fmnn_model_weights(full, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(wa, wb, na * sizeof *wa);
    fmnn_model_free(m);
    fmnn_model_free(full);
    free(b);
    free(good);
}
END_TEST

/* Format 3 is format 4 without the training record, and format 2 is
 * format 3 without the layer records' flags word.  _i: the version.  Such
 * a file, made here from a format-4 one, loads as the same model, with
 * nothing trained and the loss's default metric. */
START_TEST(test_older_formats_load)
{
    const uint32_t version = (uint32_t)_i;
    size_t n;
    unsigned char *good = good_file(&n, 0);
    size_t cut_at[] = { V2_CONV + 4, V2_RELU + 4, V2_POOL + 4, V2_DROPOUT + 4, V2_FLATTEN + 4,
                        V2_DENSE + 4, V2_SOFTMAX + 4, V2_TRAINING };
    size_t cut_size[] = { 4, 4, 4, 4, 4, 4, 4, V2_STEP - V2_TRAINING };
    const size_t first = version == 3 ? 7 : 0, cuts = sizeof cut_at / sizeof *cut_at;
    ck_assert_uint_eq(rd32(good + V2_TRAINING + 16), 1); /* accuracy */
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    size_t out = 0, from = 0;
    for (size_t k = first; k < cuts; k++) {
        ck_assert(k == cuts - 1 || rd32(good + cut_at[k]) == 0);
        memcpy(b + out, good + from, cut_at[k] - from);
        out += cut_at[k] - from;
        from = cut_at[k] + cut_size[k];
    }
    memcpy(b + out, good + from, n - from);
    out += n - from;
    wr32(b + 8, version);
    fix_header(b, out);
    char path[512];
    write_bytes(tpath(path, sizeof path, "older.fmnn"), b, out);
    fmnn_model *older = load_ok(path);
    fmnn_model *four = load_ok(tpath(path, sizeof path, "good.fmnn"));
    assert_same_model(older, four);
    ck_assert_int_eq(fmnn_model_metric_count(older), 1);
    ck_assert_str_eq(fmnn_model_metric_name(older, 0), "accuracy");
    fmnn_model_free(older);
    fmnn_model_free(four);
    free(b);
    free(good);
}
END_TEST

/* A file whose categorical loss has no final softmax to work on (which
 * the first libraries wrote) still loads, though compile now refuses
 * such a model built by hand. */
START_TEST(test_unfused_categorical_file_loads)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 4 }), FMNN_OK);
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SIGMOID }));
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_OK);
    char path[512];
    save_ok(m, tpath(path, sizeof path, "unfused.fmnn"), 0);
    fmnn_model_free(m);
    size_t n;
    unsigned char *b = slurp(path, &n);
    ck_assert_uint_eq(rd32(b + HEADER), FMNN_LOSS_MSE);
    wr32(b + HEADER, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fix_header(b, n);
    write_bytes(path, b, n);
    m = load_ok(path);
    ck_assert_int_eq(m->loss, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_model_free(m);
    free(b);
}
END_TEST

/* The same for format 1, on the small model's file that the first
 * library wrote (tests/format1/small-optimizer.fmnn). */
START_TEST(test_impossible_architecture_format1)
{
    size_t n;
    unsigned char *good = format1_file("small-optimizer.fmnn", &n);
    /* Layers: 0 conv2d 4 3x3, 1 relu, 2 maxpool 2x2, 3 dropout, 4 flatten,
     * 5 dense 5, 6 softmax.  Record fields: +0 code, +4 activation, +8 l1,
     * +12 l2, +16 six ints, +40 rate. */
    const size_t params = AT_RECORD(7);
    const edit edits[] = {
        { "unknown loss", HEADER + 0, 0, 3, 0, "loss" },
        { "input rank 0", HEADER + 4, 0, 0, 0, "rank" },
        { "input rank 4", HEADER + 4, 0, 4, 0, "rank" },
        { "input height 0", HEADER + 8, 0, 0, 0, "input dimension" },
        { "input height 2^31", HEADER + 8, 0, 0x80000000u, 0, "input dimension" },
        { "input height 2^24: 5e8 parameters", HEADER + 8, 0, 1u << 24, 0, "parameters" },
        { "unknown optimizer", HEADER + 20, 0, 2, 0, "optimizer" },
        { "negative learning rate", HEADER + 24, 1, 0, -1.0f, "learning_rate" },
        { "NaN learning rate", HEADER + 24, 1, 0, NAN, "learning_rate" },
        { "beta_1 of 1", HEADER + 28, 1, 0, 1.0f, "beta" },
        { "layer count 0", HEADER + 48, 0, 0, 0, "layer count" },
        { "layer count 1e9", HEADER + 48, 0, 1000000000u, 0, "layer count" },
        { "layer count 8", HEADER + 48, 0, 8, 0, "layer" },
        { "unknown layer code", AT_RECORD(1), 0, 99, 0, "unknown type code" },
        { "layer code 0", AT_RECORD(1), 0, 0, 0, "unknown type code" },
        { "conv kernel larger than the input", AT_RECORD(0) + 20, 0, 9, 0, "larger" },
        { "conv with 0 filters", AT_RECORD(0) + 16, 0, 0, 0, "option 0" },
        { "conv with 2^30 filters", AT_RECORD(0) + 16, 0, 1u << 30, 0, "option 0" },
        { "conv with more filters", AT_RECORD(0) + 16, 0, 5, 0, "parameters" },
        { "conv stride 0", AT_RECORD(0) + 28, 0, 0, 0, "option 3" },
        { "conv stride -1", AT_RECORD(0) + 28, 0, 0xffffffffu, 0, "option 3" },
        { "conv padding 2", AT_RECORD(0) + 36, 0, 2, 0, "padding" },
        { "conv activation 5", AT_RECORD(0) + 4, 0, 5, 0, "activation" },
        { "negative regularizer", AT_RECORD(0) + 8, 1, 0, -0.5f, "regularizer" },
        { "NaN regularizer", AT_RECORD(5) + 12, 1, 0, NAN, "regularizer" },
        { "infinite regularizer", AT_RECORD(5) + 12, 1, 0, INFINITY, "regularizer" },
        { "regularizer on a pooling layer", AT_RECORD(2) + 12, 1, 0, 0.1f, "regularizer" },
        { "activation on a pooling layer", AT_RECORD(2) + 4, 0, 1, 0, "activation" },
        { "rate on a dense layer", AT_RECORD(5) + 40, 1, 0, 0.5f, "rate" },
        { "unused option on a dense layer", AT_RECORD(5) + 20, 0, 7, 0, "unused" },
        { "unused option on a flatten layer", AT_RECORD(4) + 16, 0, 1, 0, "unused" },
        { "pool larger than the input", AT_RECORD(2) + 16, 0, 7, 0, "larger" },
        { "pool stride 0", AT_RECORD(2) + 24, 0, 0, 0, "option 2" },
        { "dropout rate 2", AT_RECORD(3) + 40, 1, 0, 2.0f, "rate" },
        { "dropout rate 1", AT_RECORD(3) + 40, 1, 0, 1.0f, "rate" },
        { "dropout rate -0.1", AT_RECORD(3) + 40, 1, 0, -0.1f, "rate" },
        { "dropout rate NaN", AT_RECORD(3) + 40, 1, 0, NAN, "rate" },
        { "dense with 0 units", AT_RECORD(5) + 16, 0, 0, 0, "option 0" },
        { "dense with 2^24 units", AT_RECORD(5) + 16, 0, 1u << 24, 0, "parameters" },
        { "dense with 2^24+1 units", AT_RECORD(5) + 16, 0, (1u << 24) + 1, 0, "option 0" },
        { "activation kind 9", AT_RECORD(6) + 4, 0, 9, 0, "activation" },
        { "a Flatten with an activation", AT_RECORD(1), 0, 6, 0, "activation" },
        { "parameter count + 1", params, 0, 225 + 1, 0, "parameters" },
        { "parameter count 2^32", params + 4, 0, 1, 0, "parameters" },
        { "step count 2^63", params + 8 + 4 * 225 + 4, 0, 0x80000000u, 0, "step" },
        { "step count 2^62", params + 8 + 4 * 225 + 4, 0, 0x40000000u, 0, "step" },
        { "NaN weight", params + 8, 1, 0, NAN, "NaN" },
        { "infinite weight", params + 8 + 4 * 224, 1, 0, -INFINITY, "NaN or Inf" },
        { "NaN first moment", params + 16 + 4 * 225, 1, 0, NAN, "optimizer state" },
        { "negative second moment", params + 16 + 8 * 225 + 8, 1, 0, -1.0f, "second moment" },
    };
    ck_assert_uint_eq(rd32(good + params), 225); /* 40 + 185 parameters */
    ck_assert_uint_eq(n, params + 16 + 12 * 225);
    expect_edits_refused(good, n, edits, sizeof edits / sizeof *edits, "impossible-format1");
    free(good);
}
END_TEST

/* A kernel so large that its size would overflow an int inside compile. */
START_TEST(test_oversized_kernel)
{
    size_t n;
    unsigned char *good = good_file(&n, 0);
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    memcpy(b, good, n);
    wr32(b + V2_CONV + 16, 1u << 24); /* kh */
    wr32(b + V2_CONV + 20, 1u << 24); /* kw */
    wr32(b + V2_CONV + 32, FMNN_PADDING_SAME);
    fix_header(b, n);
    expect_load_error(b, n, FMNN_EFORMAT, "too large");
    memcpy(b, good, n);
    wr32(b + V2_CONV + 16, 1u << 16);
    wr32(b + V2_CONV + 20, 1u << 15);
    wr32(b + V2_CONV + 32, FMNN_PADDING_SAME);
    fix_header(b, n);
    expect_load_error(b, n, FMNN_EFORMAT, "too large");
    free(b);
    free(good);

    /* And in format 1. */
    good = format1_file("small.fmnn", &n);
    b = malloc(n);
    ck_assert_ptr_nonnull(b);
    memcpy(b, good, n);
    wr32(b + AT_RECORD(0) + 20, 1u << 24); /* kh */
    wr32(b + AT_RECORD(0) + 24, 1u << 24); /* kw */
    wr32(b + AT_RECORD(0) + 36, FMNN_PADDING_SAME);
    fix_header(b, n);
    expect_load_error(b, n, FMNN_EFORMAT, "too large");
    /* 2^16 x 2^15 with 4 filters: over INT_MAX only with the filters. */
    memcpy(b, good, n);
    wr32(b + AT_RECORD(0) + 20, 1u << 16);
    wr32(b + AT_RECORD(0) + 24, 1u << 15);
    wr32(b + AT_RECORD(0) + 36, FMNN_PADDING_SAME);
    fix_header(b, n);
    expect_load_error(b, n, FMNN_EFORMAT, "too large");
    free(b);
    free(good);
}
END_TEST

START_TEST(test_not_a_file)
{
    char path[512];
    fmnn_model *m = NOT_NULL;
    tpath(path, sizeof path, "missing.fmnn");
    fmnn_clear_error();
    ck_assert_int_eq(fmnn_model_load(&m, path), FMNN_EIO);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), path));

    tpath(path, sizeof path, "a-directory");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    m = NOT_NULL;
    ck_assert_int_eq(fmnn_model_load(&m, path), FMNN_EIO);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), path));
    ck_assert_int_eq(rmdir(path), 0);

    /* An empty file, and a file that is something else entirely. */
    expect_load_error_named("empty.fmnn", (const unsigned char *)"", 0, FMNN_EFORMAT, "only 0 bytes");
    const char text[] = "This is not a model file, only some text that is long enough.\n";
    expect_load_error_named("text.fmnn", (const unsigned char *)text, sizeof text - 1, FMNN_EFORMAT, "magic");
}
END_TEST

START_TEST(test_bad_arguments)
{
    char path[512];
    tpath(path, sizeof path, "args.fmnn");
    fmnn_model *m = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1);
    ck_assert_int_eq(fmnn_model_save(NULL, path, 0), FMNN_EINVAL);
    ck_assert_int_eq(fmnn_model_save(m, NULL, 0), FMNN_EINVAL);
    ck_assert_int_eq(fmnn_model_save(m, path, 4), FMNN_EINVAL);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "flags"));
    ck_assert_int_eq(fmnn_model_save(m, path, ~0u), FMNN_EINVAL);
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing was written */
    save_ok(m, path, 0);
    ck_assert_int_eq(fmnn_model_load(NULL, path), FMNN_EINVAL);
    fmnn_model *out = NOT_NULL;
    ck_assert_int_eq(fmnn_model_load(&out, NULL), FMNN_EINVAL);
    ck_assert_ptr_null(out);
    fmnn_model_free(m);

    /* Saving before compile. */
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 4 }), FMNN_OK);
    add(m, fmnn_dense(2, NULL));
    tpath(path, sizeof path, "uncompiled.fmnn");
    ck_assert_int_eq(fmnn_model_save(m, path, 0), FMNN_ESTATE);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "compile"));
    ck_assert_int_eq(access(path, F_OK), -1);
    fmnn_model_free(m);
}
END_TEST

/*
 * The loader refuses NaN and Inf, so save refuses to write them: a model
 * whose weights a caller set to NaN must not replace a good file with one
 * that cannot be loaded.  Same for the optimizer's state, when saved.
 */
START_TEST(test_nonfinite_not_saved)
{
    char path[512];
    tpath(path, sizeof path, "finite.fmnn");
    fmnn_model *m = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1);
    save_ok(m, path, FMNN_SAVE_OPTIMIZER);
    size_t n_good, n_after;
    unsigned char *good = slurp(path, &n_good);

    size_t n;
    float *w = fmnn_model_weights(m, &n);
    const float bad_values[] = { NAN, INFINITY, -INFINITY };
    for (int k = 0; k < 3; k++) {
        float kept = w[n - 1];
        w[n - 1] = bad_values[k];
        EXPECT_ERROR(fmnn_model_save(m, path, 0), FMNN_ENUMERIC, path);
        ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "NaN or Inf"));
        w[n - 1] = kept;
    }
    m->slots.arrays[1][0] = INFINITY;
    EXPECT_ERROR(fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER), FMNN_ENUMERIC, "optimizer state 0");
    unsigned char *after = slurp(path, &n_after);
    ck_assert_uint_eq(n_after, n_good);
    ck_assert_mem_eq(after, good, n_good);
    save_ok(m, path, 0); /* without the state, the weights alone are fine */

    free(good);
    free(after);
    fmnn_model_free(m);
}
END_TEST

/* ---- atomic saving ------------------------------------------------------- */

/*
 * A save that fails halfway: in a child, a file size limit of a few
 * hundred bytes (SIGXFSZ ignored, so write() fails with EFBIG) makes
 * saving a larger model fail.  The child reports through its exit status:
 * 0 for FMNN_EIO with the path in the message.  The first file must
 * still load with its weights, and no temporary file may be left.
 */
START_TEST(test_failed_save_keeps_file)
{
    char dir[512], path[512];
    tpath(dir, sizeof dir, "atomic");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    tpath(path, sizeof path, "atomic/model.fmnn");
    fmnn_model *first = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1);
    save_ok(first, path, 0);
    size_t n_first;
    unsigned char *bytes_first = slurp(path, &n_first);

    for (rlim_t limit = 100; limit <= 1100; limit += 500) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = { limit, limit };
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(10);
            fmnn_model *second = small_model(FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 2);
            int st = fmnn_model_save(second, path, FMNN_SAVE_OPTIMIZER);
            int named = strstr(fmnn_last_error(), path) != NULL;
            fmnn_model_free(second);
            fmnn_model_free(first); /* the parent's copies: nothing leaks here */
            free(bytes_first);
            _exit(st == FMNN_EIO ? (named ? 0 : 3) : st == FMNN_OK ? 1 : 2);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "limit %d: the child's save returned exit status %d (0 = FMNN_EIO naming the file)",
                      (int)limit, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        fmnn_model *back = load_ok(path);
        assert_same_model(first, back);
        fmnn_model_free(back);
        size_t n;
        unsigned char *bytes = slurp(path, &n);
        ck_assert_uint_eq(n, n_first);
        ck_assert_mem_eq(bytes, bytes_first, n);
        free(bytes);
        char *stray = stray_file(dir, "model.fmnn");
        ck_assert_msg(stray == NULL, "a failed save left %s behind", stray ? stray : "");
    }
    free(bytes_first);
    fmnn_model_free(first);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_save_io_errors)
{
    fmnn_model *m = small_model(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1);
    char path[512];

    /* A directory that does not exist. */
    tpath(path, sizeof path, "no-such-dir/model.fmnn");
    fmnn_clear_error();
    ck_assert_int_eq(fmnn_model_save(m, path, 0), FMNN_EIO);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), path));

    /* The target is a directory: the rename fails, the directory stays,
     * and the temporary file is removed. */
    char dir[512];
    tpath(dir, sizeof dir, "target-is-dir");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    tpath(path, sizeof path, "target-is-dir/model.fmnn");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    fmnn_clear_error();
    ck_assert_int_eq(fmnn_model_save(m, path, 0), FMNN_EIO);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), path));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    char *stray = stray_file(dir, "model.fmnn");
    ck_assert_msg(stray == NULL, "a failed save left %s behind", stray ? stray : "");
    ck_assert_int_eq(rmdir(path), 0);

    /* A read-only directory (meaningless for root, who may write anyway). */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(dir, 0555), 0);
        ck_assert_int_eq(fmnn_model_save(m, path, 0), FMNN_EIO);
        ck_assert_ptr_nonnull(strstr(fmnn_last_error(), path));
        ck_assert_int_eq(chmod(dir, 0755), 0);
    }
    ck_assert_int_eq(rmdir(dir), 0);
    fmnn_model_free(m);
}
END_TEST

/* ---- the suite ------------------------------------------------------------- */

static Suite *save_suite(void)
{
    Suite *s = suite_create("save");

    TCase *tc = tcase_create("round trip");
    tcase_add_test(tc, test_round_trip_new_layers);
    tcase_add_loop_test(tc, test_round_trip, 0, 3);
    tcase_add_test(tc, test_round_trip_trained);
    tcase_add_test(tc, test_overwrite);
    tcase_add_loop_test(tc, test_resume, 0, 2);
    tcase_add_test(tc, test_step_limit);
    tcase_add_test(tc, test_round_trip_at_size_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt files");
    tcase_set_timeout(tc, 120); /* thousands of loads; slow under valgrind */
    tcase_add_test(tc, test_bad_header);
    tcase_add_loop_test(tc, test_truncated, 0, 2);
    tcase_add_loop_test(tc, test_trailing_garbage, 0, 2);
    tcase_add_test(tc, test_bad_checksum);
    tcase_add_test(tc, test_impossible_architecture);
    tcase_add_test(tc, test_impossible_architecture_format1);
    tcase_add_test(tc, test_missing_options_fall_back);
    tcase_add_test(tc, test_old_optimizer_settings_fall_back);
    tcase_add_loop_test(tc, test_older_formats_load, 2, 4);
    tcase_add_test(tc, test_unfused_categorical_file_loads);
    tcase_add_test(tc, test_oversized_kernel);
    tcase_add_test(tc, test_not_a_file);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_nonfinite_not_saved);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic saving");
    tcase_add_test(tc, test_failed_save_keeps_file);
    tcase_add_test(tc, test_save_io_errors);
    suite_add_tcase(s, tc);
    return s;
}

/* Removes the temporary directory and everything the tests left in it. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("check_save: mkdtemp");
        return 1;
    }
    if (mkdtemp(shmdir))
        corruptdir = shmdir;
    SRunner *sr = srunner_create(save_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree(tmpdir);
    if (corruptdir == shmdir)
        remove_tree(shmdir);
    return failed == 0 ? 0 : 1;
}
