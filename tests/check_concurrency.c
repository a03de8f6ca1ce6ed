/*
 * check_concurrency.c - threads: inference contexts predicting with one
 * model at once give fmnn_model_predict's bits, models trained in
 * threads of their own give the weights they give one after the other,
 * and the guard between contexts and the calls that change a model.
 *
 * Small models and a few rounds, so that the suite also runs under
 * ThreadSanitizer and helgrind (make check-tsan, make check-helgrind).
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "testdata.h"

#define THREADS 4
#define SAMPLES 48

/* Input 10 x 10 x 2: Conv2D -> BatchNormalization -> relu -> MaxPool ->
 * Conv2D (relu) -> Dropout -> Flatten -> Dense (relu) -> Dense -> softmax:
 * the plan's fusions, saved state in inference (BatchNormalization's
 * statistics, MaxPooling2D's argmax), scratch (im2col) and dropout. */
static fmnn_model *conv_model(uint64_t seed)
{
    fmnn_model *m = new_model(3, (int[]){ 10, 10, 2 });
    fmnn_conv2d_options same = { .padding = FMNN_PADDING_SAME };
    fmnn_conv2d_options relu = { .activation = FMNN_RELU };
    add(m, fmnn_conv2d(6, 3, 3, &same));
    add(m, fmnn_batch_normalization(NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_maxpool2d(2, 2, NULL));
    add(m, fmnn_conv2d(8, 3, 3, &relu));
    add(m, fmnn_dropout(0.25f));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(12, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(m, fmnn_dense(4, NULL));
    add(m, fmnn_activation(FMNN_SOFTMAX));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed));
    return m;
}

static void fill(fmnn_tensor *x, fmnn_tensor *y, uint64_t seed)
{
    rng_seed(seed);
    float *v = fmnn_tensor_data(x);
    for (size_t i = 0; i < fmnn_tensor_size(x); i++)
        v[i] = (float)nrand();
    if (!y)
        return;
    float *t = fmnn_tensor_data(y);
    memset(t, 0, fmnn_tensor_size(y) * sizeof *t);
    for (int i = 0; i < fmnn_tensor_dim(y, 0); i++)
        t[i * 4 + irand(4)] = 1.0f;
}

static void train(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, int epochs)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.epochs = epochs;
    o.batch_size = 16;
    o.verbose = 0;
    o.seed = 5;
    EXPECT_OK(fmnn_model_fit(m, x, y, &o, NULL));
}

static fmnn_tensor *images(int n)
{
    return tensor(4, (int[]){ n, 10, 10, 2 });
}

static int same_bits(const fmnn_tensor *a, const fmnn_tensor *b)
{
    return fmnn_tensor_size(a) == fmnn_tensor_size(b) &&
           memcmp(fmnn_tensor_const_data(a), fmnn_tensor_const_data(b), fmnn_tensor_size(a) * sizeof(float)) == 0;
}

/* ---- many contexts, one model -------------------------------------------- */

typedef struct predictor {
    const fmnn_model *model;
    const fmnn_tensor *x;
    const fmnn_tensor *want;   /* fmnn_model_predict's, at this thread count */
    int threads, batch_size;
    pthread_barrier_t *start;
    int mismatches, failures;
    char error[256];
} predictor;

static void *predict_in_thread(void *arg)
{
    predictor *p = arg;
    fmnn_inference *ctx;
    int err = fmnn_inference_new(&ctx, p->model);
    if (!err)
        err = fmnn_inference_set_num_threads(ctx, p->threads);
    fmnn_tensor *into = NULL;
    if (!err)
        err = fmnn_tensor_new(&into, 2, (int[]){ SAMPLES, 4 });
    pthread_barrier_wait(p->start);
    for (int round = 0; round < 3 && !err; round++) {
        fmnn_tensor *got = NULL;
        if ((err = fmnn_inference_predict(ctx, p->x, p->batch_size, &got)))
            break;
        p->mismatches += !same_bits(got, p->want);
        fmnn_tensor_free(got);
        if ((err = fmnn_inference_predict_into(ctx, p->x, p->batch_size, into)))
            break;
        p->mismatches += !same_bits(into, p->want);
    }
    if (err) {
        p->failures++;
        snprintf(p->error, sizeof p->error, "%s", fmnn_last_error());
    }
    fmnn_tensor_free(into);
    fmnn_inference_free(ctx);
    return NULL;
}

/* A model's predictions at a thread count, the ordinary way. */
static fmnn_tensor *predicted(fmnn_model *m, const fmnn_tensor *x, int threads)
{
    const int before = fmnn_get_num_threads();
    EXPECT_OK(fmnn_set_num_threads(threads));
    fmnn_tensor *out = NULL;
    EXPECT_OK(fmnn_model_predict(m, x, 16, &out));
    EXPECT_OK(fmnn_set_num_threads(before));
    return out;
}

START_TEST(test_contexts_predict_as_the_model_does)
{
    fmnn_model *m = conv_model(3);
    fmnn_tensor *x = images(SAMPLES), *y = matrix(SAMPLES, 4);
    fill(x, y, 11);
    train(m, x, y, 1); /* moving statistics that are not the initial ones */
    fmnn_tensor *want[2] = { predicted(m, x, fmnn_get_num_threads()), predicted(m, x, 1) };

    /* Four threads at once, each with its own context: two on the global
     * count, two on one thread of their own; batch sizes that split
     * the samples differently.  Meanwhile this thread predicts the
     * ordinary way, in the model's own buffers. */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    static const int batch_sizes[THREADS] = { 16, 5, 0, SAMPLES };
    predictor p[THREADS];
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++) {
        p[t] = (predictor){ .model = m, .x = x, .threads = t % 2 ? 1 : 0, .batch_size = batch_sizes[t],
                            .start = &start };
        p[t].want = want[p[t].threads];
        ck_assert_int_eq(pthread_create(&tid[t], NULL, predict_in_thread, &p[t]), 0);
    }
    pthread_barrier_wait(&start);
    fmnn_tensor *mine = NULL;
    EXPECT_OK(fmnn_model_predict(m, x, 16, &mine));
    for (int t = 0; t < THREADS; t++)
        pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&start);

    ck_assert_msg(same_bits(mine, want[0]), "fmnn_model_predict beside the contexts changed its answer");
    for (int t = 0; t < THREADS; t++) {
        ck_assert_msg(p[t].failures == 0, "thread %d: %s", t, p[t].error);
        ck_assert_msg(p[t].mismatches == 0, "thread %d (%d threads, batch %d): %d of 6 predictions differ from "
                      "fmnn_model_predict's", t, p[t].threads, p[t].batch_size, p[t].mismatches);
    }
    fmnn_tensor_free(mine);
    fmnn_tensor_free(want[0]);
    fmnn_tensor_free(want[1]);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- many models, many threads ---------------------------------------- */

typedef struct trainer {
    fmnn_model *model;
    const fmnn_tensor *x, *y;
    int status;
    char error[256];
} trainer;

static void *fit_in_thread(void *arg)
{
    trainer *t = arg;
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.epochs = 2;
    o.batch_size = 16;
    o.verbose = 0;
    o.seed = 5;
    t->status = fmnn_model_fit(t->model, t->x, t->y, &o, NULL);
    if (t->status)
        snprintf(t->error, sizeof t->error, "%s", fmnn_last_error());
    return NULL;
}

START_TEST(test_models_train_in_threads_of_their_own)
{
    fmnn_tensor *x = images(SAMPLES), *y = matrix(SAMPLES, 4);
    fill(x, y, 12);
    /* One after the other... */
    fmnn_model *alone[2] = { conv_model(1), conv_model(2) };
    for (int i = 0; i < 2; i++)
        train(alone[i], x, y, 2);
    /* ... and at the same time. */
    trainer t[2];
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        t[i] = (trainer){ .model = conv_model((uint64_t)i + 1), .x = x, .y = y };
        ck_assert_int_eq(pthread_create(&tid[i], NULL, fit_in_thread, &t[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(t[i].status == FMNN_OK, "model %d: %s", i, t[i].error);
        size_t n, n2;
        const float *a = fmnn_model_weights(alone[i], &n), *b = fmnn_model_weights(t[i].model, &n2);
        ck_assert_uint_eq(n, n2);
        ck_assert_msg(memcmp(a, b, n * sizeof *a) == 0, "model %d trained in a thread has other weights", i);
        fmnn_layer_weights wa, wb; /* BatchNormalization's moving statistics */
        EXPECT_OK(fmnn_model_get_layer_weights(alone[i], 1, &wa));
        EXPECT_OK(fmnn_model_get_layer_weights(t[i].model, 1, &wb));
        ck_assert_msg(memcmp(wa.state, wb.state, wa.state_count * sizeof *wa.state) == 0,
                      "model %d trained in a thread has other moving statistics", i);
        fmnn_model_free(alone[i]);
        fmnn_model_free(t[i].model);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/* ---- the guard, the handle and the errors ----------------------------- */

/* The guard's two sides, each seen from the other: the counters set by
 * hand stand for a call running in another thread. */
START_TEST(test_changes_and_predictions_exclude_each_other)
{
    fmnn_model *m = conv_model(3);
    fmnn_tensor *x = images(8), *y = matrix(8, 4);
    fill(x, y, 13);
    fmnn_inference *ctx = NULL;
    EXPECT_OK(fmnn_inference_new(&ctx, m));
    fmnn_layer_weights w;
    EXPECT_OK(fmnn_model_get_layer_weights(m, 0, &w));
    float *kernel = malloc(w.kernel_count * sizeof *kernel);
    ck_assert_ptr_nonnull(kernel);
    memcpy(kernel, w.kernel, w.kernel_count * sizeof *kernel);
    const fmnn_layer_weights set = { kernel, w.kernel_count, NULL, 0, NULL, 0 };
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.verbose = 0;

    atomic_store(&m->predicting, 1); /* a context is predicting */
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &o, NULL), FMNN_ESTATE, "1 inference context is predicting");
    EXPECT_ERROR(fmnn_model_train_on_batch(m, x, y, NULL, 1, NULL), FMNN_ESTATE, "predicting");
    EXPECT_ERROR(fmnn_model_set_layer_weights(m, 0, &set), FMNN_ESTATE, "predicting");
    ck_assert_int_eq(atomic_load(&m->changing), 0); /* each backed out */
    fmnn_tensor *out = NOT_NULL;
    EXPECT_OK(fmnn_inference_predict(ctx, x, 0, &out)); /* predictions go on together */
    fmnn_tensor_free(out);
    atomic_store(&m->predicting, 0);

    atomic_store(&m->changing, 1); /* fit is running */
    out = NOT_NULL;
    EXPECT_ERROR(fmnn_inference_predict(ctx, x, 0, &out), FMNN_ESTATE, "the model is being changed");
    ck_assert_ptr_null(out);
    EXPECT_OK(fmnn_model_set_layer_weights(m, 0, &set)); /* changes nest: a callback inside fit */
    ck_assert_int_eq(atomic_load(&m->predicting), 0);
    atomic_store(&m->changing, 0);

    EXPECT_OK(fmnn_model_set_layer_weights(m, 0, &set)); /* and between predictions, all is allowed */
    EXPECT_OK(fmnn_model_train_on_batch(m, x, y, NULL, 1, NULL));
    ck_assert_int_eq(atomic_load(&m->changing), 0);
    free(kernel);
    fmnn_inference_free(ctx);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* A context keeps its model: freed first, the model still predicts
 * through it, and goes with the context (the leak checkers see the rest). */
START_TEST(test_context_outlives_its_model)
{
    fmnn_model *m = conv_model(4);
    fmnn_tensor *x = images(6);
    fill(x, NULL, 14);
    fmnn_tensor *want = predicted(m, x, fmnn_get_num_threads());
    fmnn_inference *a = NULL, *b = NULL;
    EXPECT_OK(fmnn_inference_new(&a, m));
    EXPECT_OK(fmnn_inference_new(&b, m));
    fmnn_model_free(m);
    fmnn_inference_free(b);
    fmnn_tensor *got = NULL;
    EXPECT_OK(fmnn_inference_predict(a, x, 0, &got));
    ck_assert(same_bits(got, want));
    fmnn_inference_free(a); /* frees the model */
    fmnn_tensor_free(got);
    fmnn_tensor_free(want);
    fmnn_tensor_free(x);
}
END_TEST

START_TEST(test_context_errors)
{
    fmnn_inference *ctx = NOT_NULL;
    EXPECT_ERROR(fmnn_inference_new(NULL, NULL), FMNN_EINVAL, "out is NULL");
    EXPECT_ERROR(fmnn_inference_new(&ctx, NULL), FMNN_EINVAL, "model is NULL");
    ck_assert_ptr_null(ctx);
    fmnn_model *raw = new_model(1, (int[]){ 3 });
    add(raw, fmnn_dense(2, NULL));
    EXPECT_ERROR(fmnn_inference_new(&ctx, raw), FMNN_ESTATE, "compile");
    fmnn_model_free(raw);

    fmnn_model *m = conv_model(5);
    EXPECT_OK(fmnn_inference_new(&ctx, m));
    fmnn_tensor *x = images(3), *wrong = matrix(3, 200), *out = NOT_NULL;
    fill(x, NULL, 15);
    EXPECT_ERROR(fmnn_inference_predict(NULL, x, 0, &out), FMNN_EINVAL, "ctx is NULL");
    ck_assert_ptr_null(out);
    EXPECT_ERROR(fmnn_inference_predict(ctx, x, 0, NULL), FMNN_EINVAL, "out is NULL");
    EXPECT_ERROR(fmnn_inference_predict(ctx, wrong, 0, &out), FMNN_ESHAPE, "x has shape (3, 200)");
    EXPECT_ERROR(fmnn_inference_predict(ctx, x, -1, &out), FMNN_EINVAL, "batch_size");
    EXPECT_ERROR(fmnn_inference_predict_into(ctx, x, 0, NULL), FMNN_EINVAL, "out is NULL");
    EXPECT_ERROR(fmnn_inference_predict_into(ctx, x, 0, wrong), FMNN_ESHAPE,
                 "out has shape (3, 200) but the model's output for x is (3, 4)");
    EXPECT_ERROR(fmnn_inference_set_num_threads(ctx, -1), FMNN_EINVAL, "n must be >= 0");
    EXPECT_ERROR(fmnn_inference_set_num_threads(NULL, 1), FMNN_EINVAL, "ctx is NULL");
    fmnn_tensor_data(x)[7] = NAN;
    EXPECT_ERROR(fmnn_inference_predict(ctx, x, 0, &out), FMNN_ENUMERIC, "NaN");
    fmnn_inference_free(NULL);
    fmnn_inference_free(ctx);
    fmnn_tensor_free(x);
    fmnn_tensor_free(wrong);
    fmnn_model_free(m);
}
END_TEST

/* ---- predict_into allocates nothing once sized -------------------------- */

START_TEST(test_predict_into_does_not_allocate)
{
    fmnn_model *m = conv_model(6);
    fmnn_tensor *x = images(20), *out = matrix(20, 4);
    fill(x, NULL, 16);
    fmnn_inference *ctx = NULL;
    EXPECT_OK(fmnn_inference_new(&ctx, m));
    EXPECT_OK(fmnn_inference_predict_into(ctx, x, 8, out)); /* sizes the buffers */
    testutil_alloc_install(-1); /* malloc's blocks, so either allocator frees them */
    testutil_alloc_arm(1);
    EXPECT_OK(fmnn_inference_predict_into(ctx, x, 8, out));
    testutil_alloc_remove();
    ck_assert_msg(testutil_alloc_counted() == 0, "a second prediction allocated %ld blocks",
                  testutil_alloc_counted());
    fmnn_inference_free(ctx);
    fmnn_tensor_free(x);
    fmnn_tensor_free(out);
    fmnn_model_free(m);
}
END_TEST

static Suite *concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300); /* ThreadSanitizer and helgrind are slow */
    tcase_add_test(tc, test_contexts_predict_as_the_model_does);
    tcase_add_test(tc, test_models_train_in_threads_of_their_own);
    tcase_add_test(tc, test_changes_and_predictions_exclude_each_other);
    tcase_add_test(tc, test_context_outlives_its_model);
    tcase_add_test(tc, test_context_errors);
    tcase_add_test(tc, test_predict_into_does_not_allocate);
    suite_add_tcase(s, tc);
    return s;
}

/* FMNN_TEST_THREADS: the global thread count, 2 by default; make
 * check-helgrind runs with 1, one thread per call, where helgrind cannot
 * follow OpenMP's own synchronization. */
int main(void)
{
    const char *threads = getenv("FMNN_TEST_THREADS");
    fmnn_set_num_threads(threads ? atoi(threads) : 2);
    SRunner *sr = srunner_create(concurrency_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
