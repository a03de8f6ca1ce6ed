/*
 * check_mpi.c - data-parallel training over libfmnn_mpi, run by
 * tests/mpi/run.sh under `mpirun -np 2` and `-np 3`.
 *
 * Every rank runs every test, and every test reaches the same collective
 * calls on every rank whatever its checks find, so a failed check never
 * leaves the others waiting: CHECK records and prints, it does not jump.
 * A single-process reference is computed on each rank by the same model
 * without a collective.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmnn.h"
#include "fmnn/mpi.h"

static int rank, size, failures;
static const fmnn_collective *group;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "rank %d: %s:%d: FAIL: %s: ", rank, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

#define OK(call)                                                                         \
    do {                                                                                 \
        int err_ = (call);                                                               \
        CHECK(err_ == FMNN_OK, "%s returned %d: %s", #call, err_, fmnn_last_error());  \
    } while (0)

/* ---- data and models, the same on every rank ---------------------------------- */

static uint64_t rng = 1;

static double urand(void)
{
    rng += 0x9e3779b97f4a7c15ULL;
    uint64_t z = rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

/* n 8x8 images of three classes: a bright row, column or diagonal in noise. */
static void images(int n, uint64_t seed, fmnn_tensor **x, fmnn_tensor **y)
{
    rng = seed;
    fmnn_tensor_new(x, 4, (int[]){ n, 8, 8, 1 });
    fmnn_tensor_new(y, 2, (int[]){ n, 3 });
    float *px = fmnn_tensor_data(*x), *py = fmnn_tensor_data(*y);
    for (int i = 0; i < n; i++) {
        const int c = (int)(urand() * 3), at = 1 + (int)(urand() * 6);
        for (int r = 0; r < 8; r++)
            for (int k = 0; k < 8; k++) {
                const int on = c == 0 ? r == at : c == 1 ? k == at : r == k;
                px[(size_t)i * 64 + r * 8 + k] = (float)(0.5 * urand() + (on ? 1.5 : 0.0));
            }
        py[i * 3 + c] = 1.0f;
    }
}

/* Conv2D -> MaxPooling2D -> Dropout -> Dense: dropout masks depend on
 * each sample's index in the global batch. */
static fmnn_model *cnn(int batch_norm)
{
    fmnn_model *m = NULL;
    OK(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }));
    OK(fmnn_model_add(m, fmnn_conv2d(6, 3, 3, &(fmnn_conv2d_options){ .activation = FMNN_RELU })));
    if (batch_norm)
        OK(fmnn_model_add(m, fmnn_batch_normalization(NULL)));
    OK(fmnn_model_add(m, fmnn_maxpool2d(2, 2, NULL)));
    OK(fmnn_model_add(m, fmnn_dropout(0.3f)));
    OK(fmnn_model_add(m, fmnn_flatten()));
    OK(fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })));
    fmnn_optimizer adam = fmnn_adam();
    adam.learning_rate = 0.01f; /* so that a small epoch learns */
    OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &adam, 11));
    return m;
}

static fmnn_model *distributed(fmnn_model *m)
{
    OK(fmnn_model_set_collective(m, group));
    return m;
}

static fmnn_fit_options options(int batch, int epochs)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch;
    o.epochs = epochs;
    o.seed = 7;
    return o;
}

/* max |a - b| / max(|a|, |b|) over the weights (0 where both are 0). */
static double max_relative_difference(fmnn_model *a, fmnn_model *b)
{
    size_t n = 0, nb = 0;
    const float *wa = fmnn_model_weights(a, &n), *wb = fmnn_model_weights(b, &nb);
    if (n != nb)
        return INFINITY;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double scale = fmax(fabs(wa[i]), fabs(wb[i]));
        if (scale > 0.0)
            worst = fmax(worst, fabs((double)wa[i] - wb[i]) / scale);
    }
    return worst;
}

/* 1 when every rank holds the same bits as rank 0. */
static int same_on_every_rank(const void *data, size_t bytes)
{
    char *root = malloc(bytes ? bytes : 1);
    memcpy(root, data, bytes);
    MPI_Bcast(root, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = !memcmp(root, data, bytes), all = 0;
    free(root);
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}

static int weights_same_on_every_rank(fmnn_model *m)
{
    size_t n = 0;
    const float *w = fmnn_model_weights(m, &n);
    return same_on_every_rank(w, n * sizeof *w);
}

/* ---- the tests ------------------------------------------------------------------- */

/* One step (and the short or empty shares of uneven batches) equals one
 * process's within float32 rounding: batch 64 on n ranks, batches of 50
 * then a short 20, and a batch of 2 that leaves a third rank nothing. */
static void test_steps_equal_one_process(void)
{
    const int cases[][2] = { { 64, 64 }, { 70, 50 }, { 2, 2 } }; /* samples, batch */
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        fmnn_tensor *x, *y;
        images(cases[k][0], 3 + k, &x, &y);
        fmnn_model *alone = cnn(0), *together = distributed(cnn(0));
        fmnn_fit_options o = options(cases[k][1], 1);
        OK(fmnn_model_fit(alone, x, y, &o, NULL));
        OK(fmnn_model_fit(together, x, y, &o, NULL));
        const double diff = max_relative_difference(alone, together);
        if (rank == 0)
            printf("  %d samples in batches of %d on %d ranks: max relative weight difference %.3g\n",
                   cases[k][0], cases[k][1], size, diff);
        CHECK(diff <= 1e-5, "case %zu: max relative difference %.3g", k, diff);
        CHECK(weights_same_on_every_rank(together), "case %zu: the ranks' weights differ", k);
        fmnn_model_free(alone);
        fmnn_model_free(together);
        fmnn_tensor_free(x);
        fmnn_tensor_free(y);
    }
}

/* A full small epoch, with validation: accuracy within 0.5 points of one
 * process's, and evaluate sharded over the ranks agrees with one process. */
static void test_epoch_accuracy(void)
{
    fmnn_tensor *x, *y, *xt, *yt;
    images(1200, 21, &x, &y);
    images(500, 22, &xt, &yt);
    fmnn_model *alone = cnn(0), *together = distributed(cnn(0));
    fmnn_fit_options o = options(32, 1);
    o.validation_split = 0.25f;
    fmnn_history *ha = NULL, *ht = NULL;
    OK(fmnn_model_fit(alone, x, y, &o, &ha));
    OK(fmnn_model_fit(together, x, y, &o, &ht));
    float la = 0, aa = 0, lt = 0, at = 0, local_loss = 0, local_accuracy = 0;
    OK(fmnn_model_evaluate(alone, xt, yt, 0, &la, &aa));
    OK(fmnn_model_evaluate(together, xt, yt, 0, &lt, &at));
    /* the distributed model evaluated alone: the sharded sums are the whole */
    OK(fmnn_model_set_collective(together, NULL));
    OK(fmnn_model_evaluate(together, xt, yt, 0, &local_loss, &local_accuracy));
    if (rank == 0)
        printf("  one epoch: test accuracy %.4f alone, %.4f on %d ranks; val_accuracy %.4f and %.4f\n", aa, at,
               size, ha ? ha->val_accuracy[0] : NAN,
               ht ? ht->val_accuracy[0] : NAN);
    CHECK(fabsf(aa - at) <= 0.005f, "accuracy %.4f alone, %.4f distributed", aa, at);
    CHECK(aa > 0.9f, "the model did not learn: accuracy %.4f", aa);
    CHECK(fabsf(at - local_accuracy) <= 1e-6f, "sharded evaluate %.6f, local %.6f", at, local_accuracy);
    CHECK(fabsf(lt - local_loss) <= 1e-5f * fabsf(local_loss), "sharded loss %.7g, local %.7g", lt, local_loss);
    if (ha && ht) {
        const float va = ha->val_accuracy[0], vt = ht->val_accuracy[0];
        CHECK(fabsf(va - vt) <= 0.005f, "val_accuracy %.4f alone, %.4f distributed", va, vt);
    }
    fmnn_history_free(ha);
    fmnn_history_free(ht);
    fmnn_model_free(alone);
    fmnn_model_free(together);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(xt);
    fmnn_tensor_free(yt);
}

/* Two runs with the same rank count give the same bits, every rank the
 * same as rank 0; BatchNormalization's moving statistics included. */
static void test_repeatable(void)
{
    fmnn_tensor *x, *y;
    images(300, 31, &x, &y);
    for (int bn = 0; bn <= 1; bn++) {
        fmnn_model *a = distributed(cnn(bn)), *b = distributed(cnn(bn));
        fmnn_fit_options o = options(25, 2);
        fmnn_history *ha = NULL, *hb = NULL;
        OK(fmnn_model_fit(a, x, y, &o, &ha));
        OK(fmnn_model_fit(b, x, y, &o, &hb));
        size_t n = 0;
        const float *wa = fmnn_model_weights(a, &n), *wb = fmnn_model_weights(b, &n);
        CHECK(!memcmp(wa, wb, n * sizeof *wa), "batch_norm %d: two runs differ", bn);
        CHECK(weights_same_on_every_rank(a), "batch_norm %d: the ranks' weights differ", bn);
        if (bn) {
            fmnn_layer_weights lw;
            OK(fmnn_model_get_layer_weights(a, 1, &lw));
            CHECK(lw.state_count > 0 && same_on_every_rank(lw.state, lw.state_count * sizeof(float)),
                  "the moving statistics differ between the ranks");
        }
        const float la = ha ? ha->loss[1] : NAN, lb = hb ? hb->loss[1] : NAN;
        CHECK(!memcmp(&la, &lb, sizeof la) && same_on_every_rank(&la, sizeof la),
              "batch_norm %d: the loss differs: %.9g, %.9g", bn, la, lb);
        fmnn_history_free(ha);
        fmnn_history_free(hb);
        fmnn_model_free(a);
        fmnn_model_free(b);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* A callback that fails on the last rank at the given batch. */
static int fail_at(const fmnn_progress *p, void *data)
{
    const int *batch = data;
    if (rank == size - 1 && p->event == FMNN_EVENT_BATCH_END && p->batch == *batch)
        return fmnn_set_error(FMNN_ECANCELED, "the test's callback gave up at batch %d", p->batch);
    return 0;
}

/* Runs a fit in which the last rank fails; every rank must fail, with the
 * failing rank's message, within 10 s. */
static void expect_all_fail(const char *what, fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                            const fmnn_fit_options *o, int want, int names_rank)
{
    const double start = MPI_Wtime();
    const int err = fmnn_model_fit(m, x, y, o, NULL);
    const double seconds = MPI_Wtime() - start;
    char expected[32];
    snprintf(expected, sizeof expected, "rank %d", size - 1);
    if (rank == 0)
        printf("  %s: rank 0 returned %d after %.3f s: %s\n", what, err, seconds, fmnn_last_error());
    CHECK(err == want, "%s: fit returned %d, expected %d (%s)", what, err, want, fmnn_last_error());
    CHECK(!names_rank || rank == size - 1 || strstr(fmnn_last_error(), expected), "%s: the message does not name %s: %s", what,
          expected, fmnn_last_error());
    CHECK(seconds < 10.0, "%s: %.1f s", what, seconds);
}

static void test_failing_rank(void)
{
    fmnn_tensor *x, *y;
    images(200, 41, &x, &y);
    fmnn_fit_options o = options(20, 2);

    /* bad data on one rank: refused before training */
    fmnn_tensor *bad_x, *bad_y;
    images(200, 41, &bad_x, &bad_y);
    if (rank == size - 1)
        fmnn_tensor_data(bad_x)[5 * 64] = NAN;
    fmnn_model *m = distributed(cnn(0));
    expect_all_fail("NaN in one rank's x", m, bad_x, y, &o, FMNN_ENUMERIC, 1);
    fmnn_model_free(m);

    /* a loss that overflows on one rank's share only: the sums carry it
     * to every rank, which all refuse the step themselves */
    memcpy(fmnn_tensor_data(bad_x), fmnn_tensor_data(x), fmnn_tensor_size(x) * sizeof(float));
    if (rank == size - 1)
        for (size_t i = 0; i < fmnn_tensor_size(bad_x); i++)
            fmnn_tensor_data(bad_x)[i] *= 1e30f;
    m = distributed(cnn(0));
    expect_all_fail("a loss that overflows on one rank", m, bad_x, y, &o, FMNN_ENUMERIC, 0);
    fmnn_model_free(m);

    /* a callback that fails on one rank in the middle of an epoch */
    int batch = 3;
    fmnn_callback *cb = NULL;
    OK(fmnn_callback_new(&cb, "failing", fail_at, &batch));
    fmnn_fit_options oc = o;
    oc.callbacks = &cb;
    oc.n_callbacks = 1;
    m = distributed(cnn(0));
    expect_all_fail("a callback failing on one rank", m, x, y, &oc, FMNN_ECANCELED, 1);
    fmnn_model_free(m);
    fmnn_callback_free(cb);

    /* a rank with another model */
    m = distributed(cnn(rank == size - 1));
    expect_all_fail("another model on one rank", m, x, y, &o, FMNN_EINVAL, 1);
    fmnn_model_free(m);

    /* another batch size on one rank */
    fmnn_fit_options other = o;
    if (rank == size - 1)
        other.batch_size = 21;
    m = distributed(cnn(0));
    expect_all_fail("another batch_size on one rank", m, x, y, &other, FMNN_EINVAL, 1);
    fmnn_model_free(m);

    fmnn_tensor_free(bad_x);
    fmnn_tensor_free(bad_y);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* A value that differs on the last rank only fails every rank, with a
 * message that names it. */
static void expect_mismatch(const char *what, int err, const char *named)
{
    if (rank == 0)
        printf("  %s: %s\n", what, fmnn_last_error());
    CHECK(err == FMNN_EINVAL, "%s: returned %d (%s)", what, err, fmnn_last_error());
    CHECK(strstr(fmnn_last_error(), named), "%s: the message does not name %s: %s", what, named, fmnn_last_error());
}

static int stop_never(const fmnn_progress *p, void *data)
{
    (void)p;
    (void)data;
    return 0;
}

static void test_same_everywhere(void)
{
    fmnn_tensor *x, *y;
    images(120, 61, &x, &y);
    fmnn_fit_options o = options(20, 1);

    /* a layer's option: another dropout rate */
    fmnn_model *m = NULL;
    OK(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }));
    OK(fmnn_model_add(m, fmnn_flatten()));
    OK(fmnn_model_add(m, fmnn_dropout(rank == size - 1 ? 0.4f : 0.3f)));
    OK(fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })));
    fmnn_optimizer adam = fmnn_adam();
    OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &adam, 11));
    distributed(m);
    expect_mismatch("another dropout rate", fmnn_model_fit(m, x, y, &o, NULL), "the layers and their options");
    fmnn_model_free(m);

    /* the metrics */
    m = distributed(cnn(0));
    if (rank == size - 1)
        OK(fmnn_model_set_metrics(m, 1, &(fmnn_metric){ .kind = FMNN_METRIC_MSE }));
    expect_mismatch("other metrics", fmnn_model_fit(m, x, y, &o, NULL), "the metrics");
    float loss, accuracy;
    expect_mismatch("other metrics in evaluate", fmnn_model_evaluate(m, x, y, 0, &loss, &accuracy), "the metrics");
    fmnn_model_free(m);

    /* the callbacks: as many, of another kind */
    fmnn_callback *cb = NULL;
    OK(fmnn_callback_new(&cb, rank == size - 1 ? "another" : "one", stop_never, NULL));
    fmnn_fit_options oc = o;
    oc.callbacks = &cb;
    oc.n_callbacks = 1;
    m = distributed(cnn(0));
    expect_mismatch("another callback", fmnn_model_fit(m, x, y, &oc, NULL), "the callbacks");
    fmnn_callback_free(cb);

    /* a callback's options: backups after every 2 steps on one rank only */
    char never_written[64];
    snprintf(never_written, sizeof never_written, "/nonexistent-%d", rank);
    fmnn_backup_options every = FMNN_BACKUP_INIT;
    every.save_every_steps = rank == size - 1 ? 2 : 0;
    OK(fmnn_backup_and_restore(&cb, never_written, &every));
    expect_mismatch("another backup interval", fmnn_model_fit(m, x, y, &oc, NULL), "the callbacks");
    fmnn_callback_free(cb);

    /* evaluate and test_on_batch on as many samples */
    fmnn_tensor *x2, *y2;
    images(rank == size - 1 ? 90 : 100, 62, &x2, &y2);
    expect_mismatch("evaluate on fewer samples", fmnn_model_evaluate(m, x2, y2, 0, &loss, &accuracy),
                    "the sample count");
    float values[4];
    expect_mismatch("test_on_batch on fewer samples", fmnn_model_test_on_batch(m, x2, y2, NULL, values),
                    "the sample count");
    expect_mismatch("train_on_batch on fewer samples", fmnn_model_train_on_batch(m, x2, y2, NULL, 5, values),
                    "the batch's sample count");
    fmnn_model_free(m);
    fmnn_tensor_free(x2);
    fmnn_tensor_free(y2);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* Rank 0's model is everyone's: other initial weights and another
 * learning rate on the last rank are replaced by rank 0's, in fit and in
 * a first train_on_batch alike. */
static void test_rank_zero_model(void)
{
    fmnn_tensor *x, *y;
    images(60, 71, &x, &y);
    for (int on_batch = 0; on_batch < 2; on_batch++) {
        fmnn_model *m = cnn(0);
        if (rank == size - 1) {
            size_t n = 0;
            float *w = fmnn_model_weights(m, &n);
            for (size_t i = 0; i < n; i++)
                w[i] += 0.25f;
            fmnn_optimizer faster;
            OK(fmnn_model_get_optimizer(m, &faster));
            faster.learning_rate = 0.5f;
            OK(fmnn_model_set_optimizer(m, &faster));
        }
        distributed(m);
        if (on_batch) {
            float values[4];
            OK(fmnn_model_train_on_batch(m, x, y, NULL, 5, values));
            OK(fmnn_model_train_on_batch(m, x, y, NULL, 6, values));
        } else {
            fmnn_fit_options o = options(20, 1);
            OK(fmnn_model_fit(m, x, y, &o, NULL));
        }
        fmnn_optimizer now;
        OK(fmnn_model_get_optimizer(m, &now));
        CHECK(now.learning_rate == 0.01f, "%s: the learning rate is %g, not rank 0's", on_batch ? "train_on_batch" : "fit",
              (double)now.learning_rate);
        CHECK(weights_same_on_every_rank(m), "%s: the weights differ between ranks", on_batch ? "train_on_batch" : "fit");
        fmnn_model_free(m);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* Moving statistics: those of a frozen BatchNormalization stay exactly
 * as they were (each rank's move of them is zero), the others move alike
 * on every rank. */
static void test_moving_statistics(void)
{
    fmnn_tensor *x, *y;
    images(90, 81, &x, &y);
    fmnn_fit_options o = options(29, 1); /* shares such as 14/29 are not exact in float */
    for (int frozen = 0; frozen < 2; frozen++) {
        fmnn_model *m = distributed(cnn(1));
        fmnn_layer_weights bn;
        OK(fmnn_model_get_layer_weights(m, 1, &bn));
        for (size_t i = 0; i < bn.state_count; i++) /* not the defaults: a sum of zeros would keep those */
            bn.state[i] = 0.1f * (float)(i + 1) + (float)(i >= bn.state_count / 2);
        float before[64];
        CHECK(bn.state_count <= 64, "%zu moving statistics", bn.state_count);
        memcpy(before, bn.state, bn.state_count * sizeof *before);
        if (frozen)
            OK(fmnn_model_set_layer_trainable(m, 1, 0));
        OK(fmnn_model_fit(m, x, y, &o, NULL));
        OK(fmnn_model_get_layer_weights(m, 1, &bn));
        const int kept = !memcmp(before, bn.state, bn.state_count * sizeof *before);
        CHECK(frozen ? kept : !kept, "the %s layer's moving statistics %s", frozen ? "frozen" : "trainable",
              frozen ? "moved" : "did not move");
        CHECK(same_on_every_rank(bn.state, bn.state_count * sizeof *bn.state), "the moving statistics differ "
              "between ranks");
        fmnn_model_free(m);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* Only rank 0 writes: each rank names its own path, and only rank 0's
 * exists; a save rank 0 cannot make fails on every rank. */
static void test_rank_zero_writes(char *dir)
{
    fmnn_model *m = distributed(cnn(0));
    char path[512];
    snprintf(path, sizeof path, "%s/model-%d.fmnn", dir, rank);
    OK(fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER));
    MPI_Barrier(MPI_COMM_WORLD);
    for (int r = 0; r < size; r++) {
        snprintf(path, sizeof path, "%s/model-%d.fmnn", dir, r);
        CHECK((access(path, F_OK) == 0) == (r == 0), "%s %s", path, r == 0 ? "is missing" : "was written");
    }
    snprintf(path, sizeof path, "%s/no/such/folder/model.fmnn", dir);
    const int err = fmnn_model_save(m, path, 0);
    CHECK(err == FMNN_EIO, "a save into a missing folder returned %d: %s", err, fmnn_last_error());
    CHECK(rank == 0 || strstr(fmnn_last_error(), "rank 0"), "the message does not name rank 0: %s",
          fmnn_last_error());
    fmnn_model_free(m);
}

/* The interrupt flag raised on the last rank alone stops every rank at
 * the same step; BackupAndRestore then resumes, and the result is the
 * uninterrupted distributed run's, bit for bit.  Each rank names its own
 * backup folder, as on machines that share no disk: only rank 0's is
 * written, and the others resume from it. */
static volatile sig_atomic_t stop_flag;

static int raise_at(const fmnn_progress *p, void *data)
{
    const int *batch = data;
    if (rank == size - 1 && p->event == FMNN_EVENT_BATCH_END && p->epoch == 1 && p->batch == *batch)
        stop_flag = 1;
    return 0;
}

static void test_interrupt_and_resume(char *dir)
{
    fmnn_tensor *x, *y;
    images(240, 51, &x, &y);
    fmnn_model *whole = distributed(cnn(0));
    fmnn_fit_options o = options(24, 3);
    OK(fmnn_model_fit(whole, x, y, &o, NULL));

    char backup_dir[512];
    snprintf(backup_dir, sizeof backup_dir, "%s/backup-%d", dir, rank);
    fmnn_callback *cbs[2] = { NULL, NULL };
    int batch = 4;
    OK(fmnn_backup_and_restore(&cbs[0], backup_dir, NULL));
    OK(fmnn_callback_new(&cbs[1], "interrupter", raise_at, &batch));
    fmnn_fit_options oi = o;
    oi.callbacks = cbs;
    oi.n_callbacks = 2;
    oi.interrupt = &stop_flag;
    stop_flag = 0;
    fmnn_model *first = distributed(cnn(0));
    int err = fmnn_model_fit(first, x, y, &oi, NULL);
    CHECK(err == FMNN_ECANCELED, "the interrupted fit returned %d: %s", err, fmnn_last_error());
    int64_t steps = 0;
    fmnn_model_trained(first, NULL, &steps);
    CHECK(same_on_every_rank(&steps, sizeof steps), "the ranks stopped at different steps");
    CHECK(steps == 10 + batch + 1 || steps == 10 + batch, "stopped after %lld steps", (long long)steps);
    CHECK((access(backup_dir, F_OK) == 0) == (rank == 0), "%s %s", backup_dir,
          rank == 0 ? "is missing" : "was written");
    fmnn_model_free(first);

    stop_flag = 0;
    batch = -1;
    fmnn_model *second = distributed(cnn(0));
    OK(fmnn_model_fit(second, x, y, &oi, NULL));
    size_t n = 0;
    const float *a = fmnn_model_weights(whole, &n), *b = fmnn_model_weights(second, &n);
    CHECK(!memcmp(a, b, n * sizeof *a), "the resumed run differs from the uninterrupted one");
    CHECK(access(backup_dir, F_OK) != 0, "the backup was not deleted");
    fmnn_model_free(second);

    /* A backup rank 0 cannot read fails every rank, naming rank 0's file. */
    char file[600];
    snprintf(file, sizeof file, "%s/latest.fmnn", backup_dir);
    if (rank == 0) {
        mkdir(backup_dir, 0700);
        FILE *f = fopen(file, "wb");
        CHECK(f && fputs("not a model file", f) >= 0 && fclose(f) == 0, "cannot write %s", file);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    fmnn_model *third = distributed(cnn(0));
    err = fmnn_model_fit(third, x, y, &oi, NULL);
    CHECK(err == FMNN_EFORMAT, "a corrupt backup on rank 0: fit returned %d (%s)", err, fmnn_last_error());
    CHECK(strstr(fmnn_last_error(), "latest.fmnn") && (rank == 0 || strstr(fmnn_last_error(), "rank 0")),
          "the message does not name rank 0's backup: %s", fmnn_last_error());
    if (rank == 0) {
        printf("  a corrupt backup on rank 0: %s\n", fmnn_last_error());
        unlink(file);
        rmdir(backup_dir);
    }
    fmnn_model_free(third);
    fmnn_model_free(whole);
    fmnn_callback_free(cbs[0]);
    fmnn_callback_free(cbs[1]);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* The collective's sums are the processes' values added in rank order,
 * whatever MPI's own algorithm would do: values whose sum depends on the
 * order (1e8 + 1 - 1e8 is 0 or 1 in float) come out as rank order says. */
static void test_sum_in_rank_order(void)
{
    const float pattern[] = { 1e8f, 1.0f, -1e8f, 3.0f, 1e-8f, -3.0f };
    enum { N = 1000 };
    float v[N], want[N];
    for (int i = 0; i < N; i++) {
        float sum = 0.0f;
        for (int r = 0; r < size; r++) {
            const float value = pattern[(i + r) % 6] * (float)(1 + i % 7);
            sum = r == 0 ? value : sum + value;
            if (r == rank)
                v[i] = value;
        }
        want[i] = sum;
    }
    OK(group->allreduce_sum(group->context, v, N, FMNN_COLLECTIVE_FLOAT32));
    CHECK(!memcmp(v, want, sizeof v), "the sum is not in rank order");
    double d[3] = { rank == 0 ? 1e17 : 1.0, rank == 1 ? -1e17 : 1.0, (double)rank }, dwant[3] = { 0, 0, 0 };
    for (int r = 0; r < size; r++) {
        const double row[3] = { r == 0 ? 1e17 : 1.0, r == 1 ? -1e17 : 1.0, (double)r };
        for (int k = 0; k < 3; k++)
            dwant[k] = r == 0 ? row[k] : dwant[k] + row[k];
    }
    OK(group->allreduce_sum(group->context, d, 3, FMNN_COLLECTIVE_FLOAT64));
    CHECK(!memcmp(d, dwant, sizeof d), "the double sum is not in rank order: %.17g %.17g %.17g", d[0], d[1], d[2]);
}

/* A program's own failure, agreed before libfmnn is called. */
static void test_agree(void)
{
    int err = fmnn_collective_agree(group, rank == size - 1 ? fmnn_set_error(FMNN_EIO, "cannot read data") : 0);
    CHECK(err == FMNN_EIO, "fmnn_collective_agree returned %d", err);
    CHECK(rank == size - 1 || strstr(fmnn_last_error(), "cannot read data"), "message: %s", fmnn_last_error());
    /* agreed again, as a caller passes an agreed status on: each keeps its message */
    char before[512];
    snprintf(before, sizeof before, "%s", fmnn_last_error());
    err = fmnn_collective_agree(group, err);
    CHECK(err == FMNN_EIO && !strcmp(before, fmnn_last_error()), "agreed again: %d, \"%s\" became \"%s\"", err, before,
          fmnn_last_error());
    CHECK(fmnn_collective_agree(group, rank == 0 ? 1 : 0) == 1, "a positive vote is not the result");
    CHECK(fmnn_collective_agree(group, FMNN_OK) == FMNN_OK, "all OK is not OK");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    fmnn_mpi *mpi = NULL;
    if (fmnn_mpi_new(&mpi, MPI_COMM_WORLD) != FMNN_OK) {
        fprintf(stderr, "fmnn_mpi_new: %s\n", fmnn_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    group = fmnn_mpi_collective(mpi);
    rank = group->rank;
    size = group->size;
    fmnn_set_num_threads(1);
    /* one scratch folder, made by rank 0 */
    char dir[256] = "/tmp/fmnn-mpi-XXXXXX";
    if (rank == 0 && !mkdtemp(dir))
        dir[0] = '\0';
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    struct {
        const char *name;
        void (*run)(void);
    } tests[] = { { "steps equal one process's", test_steps_equal_one_process },
                  { "a small epoch's accuracy", test_epoch_accuracy },
                  { "repeatable", test_repeatable },
                  { "a failing rank fails all", test_failing_rank },
                  { "the same model and options everywhere", test_same_everywhere },
                  { "rank 0's model everywhere", test_rank_zero_model },
                  { "moving statistics", test_moving_statistics },
                  { "agreeing", test_agree },
                  { "sums in rank order", test_sum_in_rank_order } };
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (rank == 0)
            printf("%d ranks: %s\n", size, tests[i].name);
        tests[i].run();
    }
    if (rank == 0)
        printf("%d ranks: only rank 0 writes\n", size);
    test_rank_zero_writes(dir);
    if (rank == 0)
        printf("%d ranks: interrupted and resumed\n", size);
    test_interrupt_and_resume(dir);

    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (*dir && system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
        printf("%d ranks: %s (%d failed checks)\n", size, total ? "FAILED" : "all passed", total);
    }
    fmnn_mpi_free(mpi);
    MPI_Finalize();
    return total ? 1 : 0;
}
