/*
 * testdata.h - what the training tests share: a tolerance assertion, a
 * random generator of the tests' own (the data must not depend on the
 * library's), and small constructors that fail the test on error.
 * Everything is static inline, so each suite has its own copy.
 */
#ifndef FMNN_TESTS_TESTDATA_H
#define FMNN_TESTS_TESTDATA_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmnn.h"
#include "testutil.h"

#define ASSERT_CLOSE(a, b, rel, abs_tol)                                                   \
    do {                                                                                   \
        double a_ = (a), b_ = (b);                                                         \
        double tol_ = (rel) * fmax(fabs(a_), fabs(b_)) + (abs_tol);                        \
        ck_assert_msg(fabs(a_ - b_) <= tol_, "line %d: %s = %.10g but %s = %.10g (diff %.3g)", \
                      __LINE__, #a, a_, #b, b_, fabs(a_ - b_));                            \
    } while (0)

/* splitmix64, our own: the data must not depend on the library's RNG. */
static uint64_t rng_state = 1;

static inline void rng_seed(uint64_t seed)
{
    rng_state = seed;
}

static inline uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline double urand(void) /* [0, 1) */
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static inline double nrand(void) /* N(0, 1), Box-Muller */
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

static inline int irand(int n)
{
    return (int)(urand() * n);
}

static inline fmnn_model *new_model(int rank, const int *dims)
{
    fmnn_model *m = NOT_NULL;
    EXPECT_OK(fmnn_model_new(&m, rank, dims));
    ck_assert_ptr_nonnull(m);
    return m;
}

static inline void add(fmnn_model *m, fmnn_layer *layer)
{
    ck_assert_ptr_nonnull(layer);
    EXPECT_OK(fmnn_model_add(m, layer));
}

static inline fmnn_tensor *tensor(int rank, const int *dims)
{
    fmnn_tensor *t = NULL;
    EXPECT_OK(fmnn_tensor_new(&t, rank, dims));
    return t;
}

static inline fmnn_tensor *matrix(int rows, int cols)
{
    return tensor(2, (int[]){ rows, cols });
}

/* ---- data, fit options and models that training tests share ----------- */

static inline fmnn_tensor *random_normal(int rows, int cols)
{
    fmnn_tensor *t = matrix(rows, cols);
    float *d = fmnn_tensor_data(t);
    for (size_t i = 0; i < fmnn_tensor_size(t); i++)
        d[i] = (float)nrand();
    return t;
}

/* Random one-hot rows. */
static inline fmnn_tensor *random_one_hot(int n, int classes)
{
    fmnn_tensor *y = matrix(n, classes);
    for (int i = 0; i < n; i++)
        fmnn_tensor_data(y)[i * classes + irand(classes)] = 1.0f;
    return y;
}

static inline fmnn_fit_options quiet_options(int batch, int epochs, int shuffle)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch;
    o.epochs = epochs;
    o.shuffle = shuffle;
    o.seed = 5;
    return o;
}

static inline fmnn_callback *callback(const char *name, fmnn_callback_fn fn, void *data)
{
    fmnn_callback *cb = NOT_NULL;
    EXPECT_OK(fmnn_callback_new(&cb, name, fn, data));
    return cb;
}

/* What get_weights() holds: every parameter, then every layer's
 * non-trainable state (BatchNormalization's moving statistics). */
typedef struct snapshot {
    size_t n;
    float *v;
} snapshot;

static inline snapshot take(fmnn_model *m)
{
    size_t n_params;
    const float *params = fmnn_model_weights(m, &n_params);
    size_t n = n_params;
    for (int i = 0; i < fmnn_model_layer_count(m); i++) {
        fmnn_layer_weights lw;
        EXPECT_OK(fmnn_model_get_layer_weights(m, i, &lw));
        n += lw.state_count;
    }
    snapshot s = { n, malloc((n ? n : 1) * sizeof(float)) };
    ck_assert_ptr_nonnull(s.v);
    memcpy(s.v, params, n_params * sizeof(float));
    size_t at = n_params;
    for (int i = 0; i < fmnn_model_layer_count(m); i++) {
        fmnn_layer_weights lw;
        EXPECT_OK(fmnn_model_get_layer_weights(m, i, &lw));
        if (lw.state_count) /* a layer without state has a NULL array */
            memcpy(s.v + at, lw.state, lw.state_count * sizeof(float));
        at += lw.state_count;
    }
    return s;
}

static inline int same(snapshot a, snapshot b)
{
    return a.n == b.n && !memcmp(a.v, b.v, a.n * sizeof(float));
}

/* A scratch directory for files, and its cleanup (mkdtemp needs
 * _POSIX_C_SOURCE 200809L in the suite). */
static inline char *scratch_name(void)
{
    static char name[64];
    return name;
}
#define scratch (scratch_name())


static inline const char *scratch_dir(void)
{
    snprintf(scratch, 64, "/tmp/fmnn-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    return scratch;
}

static inline void scratch_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", scratch, name);
}

static inline void scratch_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    ck_assert_int_eq(system(cmd), 0);
}

/* Dense(6) -> BatchNormalization -> Dense(3, softmax): moving statistics
 * that change every step. */
static inline fmnn_model *bn_classifier(void)
{
    fmnn_model *m = new_model(1, (int[]){ 5 });
    add(m, fmnn_dense(6, &(fmnn_dense_options){ .activation = FMNN_TANH }));
    add(m, fmnn_batch_normalization(NULL));
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = 0.01f;
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &o, 3));
    return m;
}

/* Dense(16, relu) -> Dropout -> Dense(3, softmax), Adam: the seed, the
 * step count and the batch order all matter. */
static inline fmnn_model *dropout_classifier(void)
{
    fmnn_model *m = new_model(1, (int[]){ 5 });
    add(m, fmnn_dense(16, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(m, fmnn_dropout(0.3f));
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = 0.01f;
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &o, 9));
    return m;
}

/* 6x6 images through RandomFlip, RandomTranslation, a Conv2D and
 * Dropout: every per-step draw of the library. */
static inline fmnn_model *augmented_cnn(void)
{
    fmnn_model *m = new_model(3, (int[]){ 6, 6, 1 });
    add(m, fmnn_random_flip(NULL));
    add(m, fmnn_random_translation(-0.2f, 0.2f, -0.2f, 0.2f, NULL));
    add(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .activation = FMNN_RELU }));
    add(m, fmnn_dropout(0.25f));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = 0.01f;
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &o, 9));
    return m;
}

#endif /* FMNN_TESTS_TESTDATA_H */
