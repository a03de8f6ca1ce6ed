/*
 * check_train.c - training semantics (lib/train.c, lib/optimizer.c,
 * lib/losses/, lib/regularizer.c): Adam and SGD against updates computed
 * by hand, Keras's validation_split, partial batches, regularization in
 * the reported loss, determinism, learning a separable problem,
 * callbacks, misuse of fit, NaN handling, sparse labels and predict.
 *
 * Every helper is static: the other test files without main() are linked
 * into every test program.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmnn.h"
#include "testdata.h"
#include "testutil.h"

#ifdef __SSE__
#include <xmmintrin.h>
#endif

/* ---- helpers ---------------------------------------------------------- */

/* |a - b| <= rel * max(|a|, |b|) + abs */
/* A new tensor holding samples [first, first + count) of t. */
static fmnn_tensor *slice(const fmnn_tensor *t, int first, int count)
{
    int rank = fmnn_tensor_rank(t), dims[FMNN_MAX_RANK];
    for (int d = 0; d < rank; d++)
        dims[d] = fmnn_tensor_dim(t, d);
    ck_assert_int_le(first + count, dims[0]);
    size_t width = fmnn_tensor_size(t) / (size_t)dims[0];
    dims[0] = count;
    fmnn_tensor *s = tensor(rank, dims);
    memcpy(fmnn_tensor_data(s), fmnn_tensor_const_data(t) + (size_t)first * width,
           (size_t)count * width * sizeof(float));
    return s;
}

static void fill_normal(fmnn_tensor *t, double scale)
{
    float *d = fmnn_tensor_data(t);
    for (size_t i = 0; i < fmnn_tensor_size(t); i++)
        d[i] = (float)(scale * nrand());
}

static float *copy_weights(fmnn_model *m, size_t *count)
{
    const float *w = fmnn_model_weights(m, count);
    ck_assert_ptr_nonnull(w);
    float *c = malloc(*count * sizeof *c);
    ck_assert_ptr_nonnull(c);
    memcpy(c, w, *count * sizeof *c);
    return c;
}

static void set_weights(fmnn_model *m, const float *w, size_t count)
{
    size_t n;
    float *dst = fmnn_model_weights(m, &n);
    ck_assert_uint_eq(n, count);
    memcpy(dst, w, count * sizeof *w);
}

/* Makes every bias non-zero, so that a tiny learning rate changes nothing. */
static void nonzero_weights(fmnn_model *m)
{
    size_t n;
    float *w = fmnn_model_weights(m, &n);
    for (size_t i = 0; i < n; i++)
        if (w[i] == 0.0f)
            w[i] = 0.05f + 0.01f * (float)(i % 5);
}

static float eval_loss(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, float *acc)
{
    float loss = NAN, a = NAN;
    EXPECT_OK(fmnn_model_evaluate(m, x, y, 0, &loss, &a));
    if (acc)
        *acc = a;
    return loss;
}

/* As testdata.h's quiet_options, with seed 0. */
static fmnn_fit_options seedless_options(int batch, int epochs, int shuffle)
{
    fmnn_fit_options o = quiet_options(batch, epochs, shuffle);
    o.seed = 0;
    return o;
}

/* ---- a callback that records what it is told -------------------------- */

#define MAX_EVENTS 512

typedef struct recorder {
    int n;
    fmnn_progress ev[MAX_EVENTS];
    /* Stop (return 1) at this event of this epoch (and batch for BATCH_END). */
    int stop_event, stop_epoch, stop_batch;
} recorder;

static void recorder_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    r->stop_event = -1;
}

static int record(const fmnn_progress *p, void *user)
{
    recorder *r = user;
    ck_assert_int_lt(r->n, MAX_EVENTS);
    r->ev[r->n++] = *p;
    return (int)p->event == r->stop_event && p->epoch == r->stop_epoch &&
           (p->event != FMNN_EVENT_BATCH_END || p->batch == r->stop_batch);
}

static int count_events(const recorder *r, fmnn_event e, int epoch)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->ev[i].event == e && (epoch < 0 || r->ev[i].epoch == epoch);
    return n;
}

/* True when msg holds `word` directly followed by the number n. */
static int names_number(const char *msg, const char *word, int n)
{
    char want[64];
    snprintf(want, sizeof want, "%s%d", word, n);
    for (const char *at = strstr(msg, want); at; at = strstr(at + 1, want))
        if (!isdigit((unsigned char)at[strlen(want)]))
            return 1;
    return 0;
}

/* ---- optimizers against hand-computed updates -------------------------- */

/* One Dense(1) on input {1}: y = w x + b, MSE, so dL/dw = 2 e x, dL/db = 2 e. */
static fmnn_model *line_model(const fmnn_optimizer *o, float w, float b)
{
    fmnn_model *m = new_model(1, (int[]){ 1 });
    add(m, fmnn_dense(1, NULL));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, o, 1));
    size_t n;
    float *p = fmnn_model_weights(m, &n);
    ck_assert_uint_eq(n, 2);
    p[0] = w; /* kernel, then bias */
    p[1] = b;
    return m;
}

static const struct {
    float lr, beta_1, beta_2, w, b, x, t;
    int defaults;
} adam_cases[] = {
    /* Keras's defaults on an ordinary gradient. */
    { 1e-3f, 0.9f, 0.999f, 0.5f, -0.2f, 1.5f, 2.0f, 1 },
    /* A gradient of 1e-7, comparable to epsilon: only Keras's form,
     * epsilon added to sqrt(v) of the uncorrected v, gives these steps. */
    { 1e-9f, 0.9f, 0.999f, 0.0f, 5e-8f, 1.0f, 0.0f, 1 },
    /* Other betas and a large learning rate. */
    { 0.05f, 0.5f, 0.9f, -0.3f, 0.4f, -2.0f, 1.7f, 0 },
};

START_TEST(test_adam_by_hand)
{
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = adam_cases[_i].lr;
    if (!adam_cases[_i].defaults) {
        o.adam.beta_1 = adam_cases[_i].beta_1;
        o.adam.beta_2 = adam_cases[_i].beta_2;
    }
    fmnn_model *m = line_model(&o, adam_cases[_i].w, adam_cases[_i].b);
    const double x = adam_cases[_i].x, t = adam_cases[_i].t;
    fmnn_tensor *xt = matrix(1, 1), *yt = matrix(1, 1);
    fmnn_tensor_data(xt)[0] = (float)x;
    fmnn_tensor_data(yt)[0] = (float)t;

    const double lr = o.learning_rate, b1 = o.adam.beta_1, b2 = o.adam.beta_2, eps = o.adam.epsilon;
    ck_assert(eps == (double)1e-7f);
    double w[2] = { adam_cases[_i].w, adam_cases[_i].b }, mo[2] = { 0, 0 }, v[2] = { 0, 0 };
    fmnn_fit_options fo = seedless_options(1, 1, 0);
    for (int step = 1; step <= 3; step++) {
        double e = w[0] * x + w[1] - t;
        double g[2] = { 2 * e * x, 2 * e };
        double alpha = lr * sqrt(1 - pow(b2, step)) / (1 - pow(b1, step));
        for (int k = 0; k < 2; k++) {
            mo[k] = b1 * mo[k] + (1 - b1) * g[k];
            v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
            w[k] -= alpha * mo[k] / (sqrt(v[k]) + eps);
        }
        fmnn_history *h = NULL;
        EXPECT_OK(fmnn_model_fit(m, xt, yt, &fo, &h));
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(h->epochs, 1);
        ASSERT_CLOSE(h->loss[0], e * e, 1e-5, 1e-30);
        fmnn_history_free(h);
        const float *p = fmnn_model_weights(m, NULL);
        ck_assert_msg(fabs(p[0] - w[0]) <= 1e-6 * fabs(w[0]) && fabs(p[1] - w[1]) <= 1e-6 * fabs(w[1]),
                      "case %d, step %d: weights (%.9g, %.9g), by hand (%.9g, %.9g)", _i, step,
                      (double)p[0], (double)p[1], w[0], w[1]);
    }
    fmnn_tensor_free(xt);
    fmnn_tensor_free(yt);
    fmnn_model_free(m);
}
END_TEST

static const struct {
    float lr, momentum;
    int nesterov;
} sgd_cases[] = {
    { 0.1f, 0.0f, 0 },
    { 0.1f, 0.9f, 0 },
    { 0.05f, 0.9f, 1 },
};

START_TEST(test_sgd_by_hand)
{
    fmnn_optimizer o = fmnn_sgd(sgd_cases[_i].lr, sgd_cases[_i].momentum);
    o.sgd.nesterov = sgd_cases[_i].nesterov;
    fmnn_model *m = line_model(&o, 0.5f, -0.2f);
    const double x = 1.5, t = 2.0, lr = o.learning_rate, mu = o.sgd.momentum;
    fmnn_tensor *xt = matrix(1, 1), *yt = matrix(1, 1);
    fmnn_tensor_data(xt)[0] = (float)x;
    fmnn_tensor_data(yt)[0] = (float)t;
    double w[2] = { 0.5, -0.2 }, vel[2] = { 0, 0 };
    fmnn_fit_options fo = seedless_options(1, 1, 0);
    for (int step = 1; step <= 3; step++) {
        double e = w[0] * x + w[1] - t;
        double g[2] = { 2 * e * x, 2 * e };
        for (int k = 0; k < 2; k++) {
            /* keras.optimizers.SGD */
            vel[k] = mu * vel[k] - lr * g[k];
            w[k] += o.sgd.nesterov ? mu * vel[k] - lr * g[k] : vel[k];
        }
        EXPECT_OK(fmnn_model_fit(m, xt, yt, &fo, NULL));
        const float *p = fmnn_model_weights(m, NULL);
        ck_assert_msg(fabs(p[0] - w[0]) <= 1e-6 * fabs(w[0]) && fabs(p[1] - w[1]) <= 1e-6 * fabs(w[1]),
                      "case %d, step %d: weights (%.9g, %.9g), by hand (%.9g, %.9g)", _i, step,
                      (double)p[0], (double)p[1], w[0], w[1]);
    }
    fmnn_tensor_free(xt);
    fmnn_tensor_free(yt);
    fmnn_model_free(m);
}
END_TEST

/* The gradient is the batch MEAN, and the last, smaller batch is trained on:
 * 3 samples at batch 2 are one step on samples 0-1, then one on sample 2. */
START_TEST(test_batch_mean_and_partial_batch)
{
    fmnn_optimizer o = fmnn_sgd(0.1f, 0.0f);
    fmnn_model *m = new_model(1, (int[]){ 2 });
    add(m, fmnn_dense(1, NULL));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1));
    float *p = fmnn_model_weights(m, NULL);
    double w[3] = { 0.3, -0.6, 0.1 }; /* kernel (2), bias */
    for (int k = 0; k < 3; k++)
        p[k] = (float)w[k];
    const double xs[3][2] = { { 1.0, 2.0 }, { -1.5, 0.5 }, { 0.25, -2.0 } }, ts[3] = { 1.0, -1.0, 0.5 };
    fmnn_tensor *x = matrix(3, 2), *y = matrix(3, 1);
    for (int i = 0; i < 3; i++) {
        fmnn_tensor_data(x)[2 * i] = (float)xs[i][0];
        fmnn_tensor_data(x)[2 * i + 1] = (float)xs[i][1];
        fmnn_tensor_data(y)[i] = (float)ts[i];
    }
    const int batches[2][2] = { { 0, 2 }, { 2, 3 } };
    for (int b = 0; b < 2; b++) {
        double g[3] = { 0, 0, 0 };
        int count = batches[b][1] - batches[b][0];
        for (int i = batches[b][0]; i < batches[b][1]; i++) {
            double e = w[0] * xs[i][0] + w[1] * xs[i][1] + w[2] - ts[i];
            g[0] += 2 * e * xs[i][0] / count;
            g[1] += 2 * e * xs[i][1] / count;
            g[2] += 2 * e / count;
        }
        for (int k = 0; k < 3; k++)
            w[k] -= 0.1 * g[k];
    }
    recorder r;
    recorder_init(&r);
    fmnn_fit_options fo = seedless_options(2, 1, 0);
    fo.callback = record;
    fo.user_data = &r;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    ck_assert_int_eq(count_events(&r, FMNN_EVENT_BATCH_END, 0), 2);
    for (int k = 0; k < 3; k++)
        ASSERT_CLOSE(p[k], w[k], 1e-6, 0);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- validation_split, batches ------------------------------------------ */

/* Keras holds out the LAST fraction before shuffling. */
START_TEST(test_validation_split_is_the_last_fraction)
{
    rng_seed(101);
    const int n = 100, classes = 3;
    fmnn_optimizer o = fmnn_sgd(1e-30f, 0.0f);
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(classes, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &o, 7));
    nonzero_weights(m);
    fmnn_tensor *x = matrix(n, 4), *y = matrix(n, classes), *pred;
    fill_normal(x, 2.0);
    EXPECT_OK(fmnn_model_predict(m, x, 0, &pred));
    /* Samples 80..99 are all predicted right, 0..79 half right: where the
     * validation samples come from shows in val_accuracy. */
    for (int i = 0; i < n; i++) {
        const float *row = fmnn_tensor_const_data(pred) + i * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (row[c] > row[best])
                best = c;
        int label = i >= 80 || i % 2 == 0 ? best : (best + 1) % classes;
        fmnn_tensor_data(y)[i * classes + label] = 1.0f;
    }
    fmnn_tensor_free(pred);
    fmnn_tensor *x_val = slice(x, 80, 20), *y_val = slice(y, 80, 20);
    fmnn_tensor *x_first = slice(x, 0, 20), *y_first = slice(y, 0, 20);
    fmnn_tensor *x_train = slice(x, 0, 80), *y_train = slice(y, 0, 80);
    float val_acc, first_acc, train_acc;
    float val_loss = eval_loss(m, x_val, y_val, &val_acc);
    float first_loss = eval_loss(m, x_first, y_first, &first_acc);
    float train_loss = eval_loss(m, x_train, y_train, &train_acc);
    ck_assert(val_acc == 1.0f);
    ck_assert(first_acc == 0.5f);
    ck_assert(train_acc == 0.5f);

    size_t count;
    float *before = copy_weights(m, &count);
    fmnn_fit_options fo = seedless_options(16, 3, 1);
    fo.validation_split = 0.2f;
    fo.seed = 5;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_msg(memcmp(before, fmnn_model_weights(m, NULL), count * sizeof *before) == 0,
                  "learning rate 1e-30 changed the weights: the test cannot compare losses");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->epochs, 3);
    ck_assert_int_eq(h->has_validation, 1);
    ck_assert_ptr_nonnull(h->val_loss);
    ck_assert_ptr_nonnull(h->val_accuracy);
    for (int e = 0; e < 3; e++) {
        ASSERT_CLOSE(h->val_loss[e], val_loss, 1e-5, 0);
        ck_assert_msg(h->val_accuracy[e] == val_acc, "epoch %d: val_accuracy %g, samples 80..99 give %g",
                      e, (double)h->val_accuracy[e], (double)val_acc);
        ck_assert_msg(fabs(h->val_loss[e] - first_loss) > 1e-3 * fabs(first_loss),
                      "val_loss equals the loss of samples 0..19");
        ck_assert(h->val_accuracy[e] != first_acc);
        ASSERT_CLOSE(h->loss[e], train_loss, 1e-5, 0);
        ASSERT_CLOSE(h->accuracy[e], train_acc, 1e-6, 0);
    }
    fmnn_history_free(h);
    free(before);
    fmnn_tensor_free(x_val);
    fmnn_tensor_free(y_val);
    fmnn_tensor_free(x_first);
    fmnn_tensor_free(y_first);
    fmnn_tensor_free(x_train);
    fmnn_tensor_free(y_train);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* 10 samples, validation_split 0.25: Keras's floor(10 * 0.75) = 7 train,
 * 3 validate (keras/src/trainers/data_adapters/array_slicing.py,
 * train_validation_split). */
START_TEST(test_validation_split_rounds_down)
{
    rng_seed(102);
    fmnn_optimizer o = fmnn_sgd(1e-30f, 0.0f);
    fmnn_model *m = new_model(1, (int[]){ 3 });
    add(m, fmnn_dense(2, NULL));
    add(m, fmnn_activation(FMNN_SOFTMAX));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &o, 2));
    nonzero_weights(m);
    fmnn_tensor *x = matrix(10, 3), *y = random_one_hot(10, 2);
    fill_normal(x, 1.0);
    fmnn_tensor *x_val = slice(x, 7, 3), *y_val = slice(y, 7, 3);
    float val_acc, val_loss = eval_loss(m, x_val, y_val, &val_acc);
    recorder r;
    recorder_init(&r);
    fmnn_fit_options fo = seedless_options(1, 2, 1);
    fo.validation_split = 0.25f;
    fo.callback = record;
    fo.user_data = &r;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    for (int e = 0; e < 2; e++) {
        ck_assert_int_eq(count_events(&r, FMNN_EVENT_BATCH_END, e), 7);
        ASSERT_CLOSE(h->val_loss[e], val_loss, 1e-5, 0);
        ck_assert(h->val_accuracy[e] == val_acc);
    }
    for (int i = 0; i < r.n; i++)
        ck_assert_int_eq(r.ev[i].batches, 7);
    fmnn_history_free(h);
    fmnn_tensor_free(x_val);
    fmnn_tensor_free(y_val);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* 10 samples at batch 4: 4 + 4 + 2, three batches per epoch. */
START_TEST(test_last_partial_batch_is_kept)
{
    rng_seed(103);
    fmnn_model *m = new_model(1, (int[]){ 3 });
    add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 2));
    fmnn_tensor *x = matrix(10, 3), *y = random_one_hot(10, 2);
    fill_normal(x, 1.0);
    recorder r;
    recorder_init(&r);
    fmnn_fit_options fo = seedless_options(4, 2, 1);
    fo.callback = record;
    fo.user_data = &r;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    for (int e = 0; e < 2; e++)
        ck_assert_int_eq(count_events(&r, FMNN_EVENT_BATCH_END, e), 3);
    for (int i = 0; i < r.n; i++)
        ck_assert_int_eq(r.ev[i].batches, 3);
    /* A batch larger than the data is one batch. */
    recorder_init(&r);
    fo.batch_size = 1000;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    ck_assert_int_eq(count_events(&r, FMNN_EVENT_BATCH_END, -1), 2);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- regularization ----------------------------------------------------- */

static fmnn_model *reg_model(int regularized, const fmnn_optimizer *o)
{
    fmnn_model *m = new_model(1, (int[]){ 4 });
    fmnn_dense_options first = { .activation = FMNN_RELU }, second = { .activation = FMNN_SOFTMAX };
    if (regularized) {
        first.kernel_regularizer = fmnn_l2(0.5f);
        second.kernel_regularizer = fmnn_l1(0.25f);
    }
    add(m, fmnn_dense(5, &first));
    add(m, fmnn_dense(3, &second));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, o, 3));
    return m;
}

START_TEST(test_regularization_in_the_loss)
{
    rng_seed(104);
    fmnn_optimizer tiny = fmnn_sgd(1e-30f, 0.0f);
    fmnn_model *reg = reg_model(1, &tiny), *plain = reg_model(0, &tiny);
    nonzero_weights(reg);
    size_t count;
    float *w = copy_weights(reg, &count);
    ck_assert_uint_eq(count, 4 * 5 + 5 + 5 * 3 + 3);
    set_weights(plain, w, count);
    /* Kernel 1 is w[0..20), bias 1 w[20..25), kernel 2 w[25..40), bias 2 w[40..43). */
    double penalty = 0;
    for (int i = 0; i < 20; i++)
        penalty += 0.5 * (double)w[i] * w[i];
    for (int i = 25; i < 40; i++)
        penalty += 0.25 * fabs((double)w[i]);

    fmnn_tensor *x = matrix(40, 4), *y = random_one_hot(40, 3);
    fill_normal(x, 1.0);
    float acc_reg, acc_plain;
    float loss_reg = eval_loss(reg, x, y, &acc_reg), loss_plain = eval_loss(plain, x, y, &acc_plain);
    ASSERT_CLOSE(loss_reg, loss_plain + penalty, 1e-5, 0);
    ck_assert(acc_reg == acc_plain);

    /* fit reports the same, for training and validation losses. */
    fmnn_tensor *x_train = slice(x, 0, 30), *y_train = slice(y, 0, 30);
    fmnn_tensor *x_val = slice(x, 30, 10), *y_val = slice(y, 30, 10);
    float train_loss = eval_loss(reg, x_train, y_train, NULL), val_loss = eval_loss(reg, x_val, y_val, NULL);
    fmnn_fit_options fo = seedless_options(8, 1, 1);
    fo.validation_split = 0.25f;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(reg, x, y, &fo, &h));
    ck_assert_msg(memcmp(w, fmnn_model_weights(reg, NULL), count * sizeof *w) == 0,
                  "learning rate 1e-30 changed the weights");
    ASSERT_CLOSE(h->loss[0], train_loss, 1e-5, 0);
    ASSERT_CLOSE(h->val_loss[0], val_loss, 1e-5, 0);
    fmnn_history_free(h);

    fmnn_tensor_free(x_train);
    fmnn_tensor_free(y_train);
    fmnn_tensor_free(x_val);
    fmnn_tensor_free(y_val);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    free(w);
    fmnn_model_free(reg);
    fmnn_model_free(plain);
}
END_TEST

/* The penalty's gradient: one SGD step differs from the unregularized one
 * by -lr * 2 * 0.5 * w (l2) and -lr * 0.25 * sign(w) (l1); biases not at all. */
START_TEST(test_regularization_gradient)
{
    rng_seed(105);
    const float lr = 0.1f;
    fmnn_optimizer o = fmnn_sgd(lr, 0.0f);
    fmnn_model *reg = reg_model(1, &o), *plain = reg_model(0, &o);
    nonzero_weights(reg);
    size_t count;
    float *w = copy_weights(reg, &count);
    set_weights(plain, w, count);
    fmnn_tensor *x = matrix(16, 4), *y = random_one_hot(16, 3);
    fill_normal(x, 1.0);
    fmnn_fit_options fo = seedless_options(16, 1, 0);
    EXPECT_OK(fmnn_model_fit(reg, x, y, &fo, NULL));
    EXPECT_OK(fmnn_model_fit(plain, x, y, &fo, NULL));
    const float *wr = fmnn_model_weights(reg, NULL), *wp = fmnn_model_weights(plain, NULL);
    for (size_t i = 0; i < count; i++) {
        double expect = 0;
        if (i < 20)
            expect = -lr * 2 * 0.5 * w[i];
        else if (i >= 25 && i < 40)
            expect = -lr * 0.25 * (w[i] > 0 ? 1 : -1);
        ck_assert_msg(fabs((wr[i] - wp[i]) - expect) < 2e-6, "param %zu: difference %.9g, expected %.9g", i,
                      (double)(wr[i] - wp[i]), expect);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    free(w);
    fmnn_model_free(reg);
    fmnn_model_free(plain);
}
END_TEST

/* ---- determinism -------------------------------------------------------- */

static fmnn_model *conv_dropout_model(uint64_t seed)
{
    fmnn_model *m = new_model(3, (int[]){ 16, 16, 1 });
    add(m, fmnn_conv2d(32, 3, 3, &(fmnn_conv2d_options){ .activation = FMNN_RELU }));
    add(m, fmnn_dropout(0.25f)); /* 8 x 14 x 14 x 32 values: large enough to run threaded */
    add(m, fmnn_maxpool2d(2, 2, NULL));
    add(m, fmnn_flatten());
    add(m, fmnn_dropout(0.5f));
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed));
    return m;
}

START_TEST(test_determinism)
{
    const int threads = _i == 0 ? 2 : 1;
    int old = fmnn_get_num_threads();
    EXPECT_OK(fmnn_set_num_threads(threads));
    rng_seed(106);
    fmnn_tensor *x = tensor(4, (int[]){ 160, 16, 16, 1 }), *y = random_one_hot(160, 3);
    fill_normal(x, 1.0);
    fmnn_model *a = conv_dropout_model(5), *b = conv_dropout_model(5), *c = conv_dropout_model(5);
    size_t count;
    float *init = copy_weights(a, &count);
    fmnn_fit_options fo = seedless_options(8, 1, 1); /* 20 steps */
    fo.seed = 77;
    EXPECT_OK(fmnn_model_fit(a, x, y, &fo, NULL));
    EXPECT_OK(fmnn_model_fit(b, x, y, &fo, NULL));
    fo.seed = 78;
    EXPECT_OK(fmnn_model_fit(c, x, y, &fo, NULL));
    const float *wa = fmnn_model_weights(a, NULL), *wb = fmnn_model_weights(b, NULL),
                *wc = fmnn_model_weights(c, NULL);
    ck_assert_msg(memcmp(init, wa, count * sizeof *wa) != 0, "training changed nothing");
    ck_assert_msg(memcmp(wa, wb, count * sizeof *wa) == 0, "%d threads: same seeds, different weights",
                  threads);
    ck_assert_msg(memcmp(wa, wc, count * sizeof *wa) != 0, "%d threads: fit seeds 77 and 78 give the same weights",
                  threads);
    /* And predictions are deterministic too. */
    fmnn_tensor *pa, *pb;
    EXPECT_OK(fmnn_model_predict(a, x, 0, &pa));
    EXPECT_OK(fmnn_model_predict(b, x, 0, &pb));
    ck_assert(memcmp(fmnn_tensor_data(pa), fmnn_tensor_data(pb), fmnn_tensor_size(pa) * sizeof(float)) == 0);
    fmnn_tensor_free(pa);
    fmnn_tensor_free(pb);
    free(init);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(a);
    fmnn_model_free(b);
    fmnn_model_free(c);
    fmnn_set_num_threads(old);
}
END_TEST

/* ---- the training loop does not allocate -------------------------------- */

static long allocations;

static void *counting_malloc(size_t size, void *user)
{
    (void)user;
    allocations++;
    return malloc(size);
}

static void counting_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

/* Allocations made by one fit of `epochs` epochs on a planned model. */
static long fit_allocations(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, int epochs)
{
    fmnn_fit_options fo = seedless_options(8, epochs, 1);
    fo.validation_split = 0.25f;
    fmnn_history *h;
    fmnn_allocator counting = { counting_malloc, counting_free, NULL };
    allocations = 0;
    fmnn_set_allocator(&counting);
    int err = fmnn_model_fit(m, x, y, &fo, &h);
    fmnn_set_allocator(NULL);
    EXPECT_OK(err);
    fmnn_history_free(h);
    return allocations;
}

START_TEST(test_training_loop_does_not_allocate)
{
    rng_seed(107);
    fmnn_tensor *x = tensor(4, (int[]){ 64, 16, 16, 1 }), *y = random_one_hot(64, 3);
    fill_normal(x, 1.0);
    fmnn_model *m = conv_dropout_model(5);
    fit_allocations(m, x, y, 1); /* the first fit sizes the buffers */
    long one = fit_allocations(m, x, y, 1), five = fit_allocations(m, x, y, 5);
    /* Per call: the shuffle order and the history, never per step. */
    ck_assert_msg(one == five, "fit allocated %ld times for 1 epoch but %ld for 5", one, five);
    ck_assert_msg(one > 0 && one <= 4, "fit allocated %ld times outside its loop", one);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- learning ----------------------------------------------------------- */

/* Three Gaussian blobs in the plane, 6 standard deviations apart. */
static void blobs(fmnn_tensor **x, fmnn_tensor **y, int n)
{
    static const double centers[3][2] = { { 0.0, 0.0 }, { 3.0, 0.0 }, { 1.5, 2.6 } };
    *x = matrix(n, 2);
    *y = matrix(n, 3);
    for (int i = 0; i < n; i++) {
        int c = irand(3);
        fmnn_tensor_data(*x)[2 * i] = (float)(centers[c][0] + 0.5 * nrand());
        fmnn_tensor_data(*x)[2 * i + 1] = (float)(centers[c][1] + 0.5 * nrand());
        fmnn_tensor_data(*y)[3 * i + c] = 1.0f;
    }
}

START_TEST(test_learns_blobs)
{
    rng_seed(107);
    fmnn_tensor *x, *y, *xt, *yt;
    blobs(&x, &y, 300);
    blobs(&xt, &yt, 300);
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = 0.01f;
    fmnn_model *m = new_model(1, (int[]){ 2 });
    add(m, fmnn_dense(16, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(m, fmnn_dense(3, NULL));
    add(m, fmnn_activation(FMNN_SOFTMAX));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &o, 1));
    fmnn_fit_options fo = seedless_options(16, 20, 1);
    fo.seed = 3;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_msg(h->loss[19] < 0.5f * h->loss[0], "loss went from %g to %g", (double)h->loss[0],
                  (double)h->loss[19]);
    float acc;
    eval_loss(m, xt, yt, &acc);
    ck_assert_msg(acc >= 0.95f, "held-out accuracy %.3f", (double)acc);
    fmnn_history_free(h);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(xt);
    fmnn_tensor_free(yt);
    fmnn_model_free(m);
}
END_TEST

/* 8x8 images of one horizontal (class 0) or vertical (class 1) bar, with
 * noise; sparse labels. */
static void bars(fmnn_tensor **x, fmnn_tensor **y, int n)
{
    *x = tensor(4, (int[]){ n, 8, 8, 1 });
    *y = tensor(1, (int[]){ n });
    for (int i = 0; i < n; i++) {
        float *img = fmnn_tensor_data(*x) + i * 64;
        int c = irand(2), at = irand(8);
        for (int p = 0; p < 64; p++)
            img[p] = (float)(0.3 * urand());
        for (int k = 0; k < 8; k++)
            img[c == 0 ? at * 8 + k : k * 8 + at] = 1.0f;
        fmnn_tensor_data(*y)[i] = (float)c;
    }
}

START_TEST(test_learns_bars)
{
    rng_seed(108);
    fmnn_tensor *x, *y, *xt, *yt;
    bars(&x, &y, 200);
    bars(&xt, &yt, 200);
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = 0.01f;
    fmnn_model *m = new_model(3, (int[]){ 8, 8, 1 });
    add(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .activation = FMNN_RELU }));
    add(m, fmnn_maxpool2d(2, 2, NULL));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, &o, 4));
    fmnn_fit_options fo = seedless_options(16, 10, 1);
    fo.seed = 9;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    float acc;
    eval_loss(m, xt, yt, &acc);
    ck_assert_msg(acc >= 0.95f, "held-out accuracy %.3f", (double)acc);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(xt);
    fmnn_tensor_free(yt);
    fmnn_model_free(m);
}
END_TEST

/* ---- callbacks ---------------------------------------------------------- */

static fmnn_model *tiny_classifier(void)
{
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1));
    return m;
}

START_TEST(test_callback_event_order)
{
    rng_seed(109);
    fmnn_model *m = tiny_classifier();
    fmnn_tensor *x = matrix(12, 4), *y = random_one_hot(12, 3);
    fill_normal(x, 1.0);
    recorder r;
    recorder_init(&r);
    fmnn_fit_options fo = seedless_options(4, 3, 1);
    fo.validation_split = 0.25f; /* 9 train: batches of 4, 4, 1 */
    fo.callback = record;
    fo.user_data = &r;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_int_eq(r.n, 1 + 3 * (1 + 3 + 1) + 1);
    ck_assert_int_eq(r.ev[0].event, FMNN_EVENT_TRAIN_BEGIN);
    ck_assert_int_eq(r.ev[r.n - 1].event, FMNN_EVENT_TRAIN_END);
    for (int e = 0, i = 1; e < 3; e++) {
        ck_assert_int_eq(r.ev[i].event, FMNN_EVENT_EPOCH_BEGIN);
        ck_assert_int_eq(r.ev[i].epoch, e);
        ck_assert_int_eq(r.ev[i].batch, 0);
        i++;
        for (int b = 1; b <= 3; b++, i++) {
            ck_assert_int_eq(r.ev[i].event, FMNN_EVENT_BATCH_END);
            ck_assert_int_eq(r.ev[i].epoch, e);
            ck_assert_int_eq(r.ev[i].batch, b);
            ck_assert(isfinite(r.ev[i].loss) && r.ev[i].loss > 0);
        }
        const fmnn_progress *end = &r.ev[i++];
        ck_assert_int_eq(end->event, FMNN_EVENT_EPOCH_END);
        ck_assert_int_eq(end->epoch, e);
        ck_assert_int_eq(end->batch, 3);
        ck_assert_int_eq(end->has_validation, 1);
        /* The epoch's metrics are those of its last batch and the history's. */
        ck_assert(end->loss == r.ev[i - 2].loss);
        ck_assert(end->loss == h->loss[e]);
        ck_assert(end->accuracy == h->accuracy[e]);
        ck_assert(end->val_loss == h->val_loss[e]);
        ck_assert(end->val_accuracy == h->val_accuracy[e]);
    }
    for (int i = 0; i < r.n; i++) {
        ck_assert_int_eq(r.ev[i].epochs, 3);
        ck_assert_int_eq(r.ev[i].batches, 3);
        ck_assert(r.ev[i].seconds >= 0);
    }
    fmnn_history_free(h);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

static int fail_at_second_batch(const fmnn_progress *p, void *user)
{
    (void)user;
    return p->event == FMNN_EVENT_BATCH_END && p->batch == 2 ? FMNN_EIO : 0;
}

START_TEST(test_callback_stops_training)
{
    rng_seed(110);
    fmnn_model *m = tiny_classifier();
    fmnn_tensor *x = matrix(10, 4), *y = random_one_hot(10, 3);
    fill_normal(x, 1.0);
    size_t count;
    float *init = copy_weights(m, &count);
    recorder r;
    fmnn_fit_options fo = seedless_options(4, 5, 1);
    fo.callback = record;
    fo.user_data = &r;
    fmnn_history *h = NOT_NULL;

    /* Keras's stop_training: fit succeeds, and the history says who
     * stopped it and when.  At the end of the second epoch: two epochs. */
    recorder_init(&r);
    r.stop_event = FMNN_EVENT_EPOCH_END;
    r.stop_epoch = 1;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_ne(h, NOT_NULL);
    ck_assert_int_eq(h->epochs, 2);
    ck_assert_int_eq(h->stop_reason, FMNN_STOP_CALLBACK);
    ck_assert_int_eq(h->stopped_epoch, 1);
    ck_assert_str_eq(h->stopped_by, "the callback");
    ck_assert_int_eq(r.n, 1 + 2 * (1 + 3 + 1) + 1);
    ck_assert_int_eq(r.ev[r.n - 2].event, FMNN_EVENT_EPOCH_END);
    ck_assert_int_eq(r.ev[r.n - 1].event, FMNN_EVENT_TRAIN_END);
    ck_assert(h->loss[1] == r.ev[r.n - 2].loss);
    fmnn_history_free(h);

    /* After batch 2 of the second epoch: that epoch still ends, as Keras
     * ends it (validation, EPOCH_END), on the batches it ran. */
    recorder_init(&r);
    r.stop_event = FMNN_EVENT_BATCH_END;
    r.stop_epoch = 1;
    r.stop_batch = 2;
    h = NOT_NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->epochs, 2);
    ck_assert_int_eq(h->stopped_epoch, 1);
    ck_assert_int_eq(r.n, 1 + 5 + 1 + 2 + 1 + 1);
    ck_assert_int_eq(r.ev[r.n - 2].event, FMNN_EVENT_EPOCH_END);
    ck_assert_int_eq(r.ev[r.n - 2].batch, 2);
    fmnn_history_free(h);

    /* At the first epoch's beginning: no step is taken. */
    set_weights(m, init, count);
    recorder_init(&r);
    r.stop_event = FMNN_EVENT_EPOCH_BEGIN;
    r.stop_epoch = 0;
    h = NOT_NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->epochs, 0);
    ck_assert_int_eq(h->stopped_epoch, 0);
    ck_assert_int_eq(r.n, 3);
    ck_assert(memcmp(init, fmnn_model_weights(m, NULL), count * sizeof *init) == 0);
    fmnn_history_free(h);

    /* A negative answer is an error fit returns, with a message. */
    recorder_init(&r);
    fo.callback = fail_at_second_batch;
    h = NOT_NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_EIO, "the callback failed in epoch 1");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->stop_reason, FMNN_STOP_ERROR);
    fmnn_history_free(h);

    free(init);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- fit misuse --------------------------------------------------------- */

START_TEST(test_fit_misuse)
{
    rng_seed(111);
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(6, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1));
    size_t count;
    float *init = copy_weights(m, &count);
    fmnn_tensor *x = matrix(10, 4), *y = random_one_hot(10, 3);
    fill_normal(x, 1.0);
    fmnn_tensor *y9 = random_one_hot(9, 3), *y_wide = random_one_hot(10, 4), *x5 = matrix(10, 5);
    fmnn_tensor *x_flat = tensor(1, (int[]){ 10 }), *x_3d = tensor(3, (int[]){ 10, 2, 2 });
    fmnn_fit_options fo = seedless_options(4, 2, 1);
    fmnn_history *h = NOT_NULL;

    EXPECT_ERROR(fmnn_model_fit(m, x, y9, &fo, &h), FMNN_ESHAPE, NULL);
    ck_assert_ptr_null(h);
    EXPECT_ERROR(fmnn_model_fit(m, x, y_wide, &fo, &h), FMNN_ESHAPE, "dense_1");
    EXPECT_ERROR(fmnn_model_fit(m, x5, y, &fo, &h), FMNN_ESHAPE, NULL);
    EXPECT_ERROR(fmnn_model_fit(m, x_flat, y, &fo, &h), FMNN_ESHAPE, NULL);
    EXPECT_ERROR(fmnn_model_fit(m, x_3d, y, &fo, &h), FMNN_ESHAPE, NULL);
    EXPECT_ERROR(fmnn_model_fit(m, x, y, NULL, &h), FMNN_EINVAL, NULL);

    fmnn_fit_options bad = fo;
    bad.batch_size = -4;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &bad, &h), FMNN_EINVAL, "batch_size");
    bad = fo;
    bad.epochs = -1;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &bad, &h), FMNN_EINVAL, "epochs");
    bad = fo;
    bad.validation_split = 1.0f;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &bad, &h), FMNN_EINVAL, "validation_split");
    bad.validation_split = -0.1f;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &bad, &h), FMNN_EINVAL, "validation_split");
    bad.validation_split = NAN;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &bad, &h), FMNN_EINVAL, "validation_split");
    bad = fo;
    bad.verbose = 3;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &bad, &h), FMNN_EINVAL, NULL);

    /* Non-finite inputs and targets. */
    fmnn_tensor_data(x)[13] = NAN;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_ENUMERIC, NULL);
    EXPECT_ERROR(fmnn_model_evaluate(m, x, y, 0, NULL, NULL), FMNN_ENUMERIC, NULL);
    fmnn_tensor_data(x)[13] = INFINITY;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_ENUMERIC, NULL);
    fmnn_tensor_data(x)[13] = 0.5f;
    fmnn_tensor_data(y)[5] = NAN;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_ENUMERIC, NULL);
    fmnn_tensor_data(y)[5] = 0.0f;
    ck_assert_ptr_null(h);
    ck_assert_msg(memcmp(init, fmnn_model_weights(m, NULL), count * sizeof *init) == 0,
                  "a refused fit changed the weights");

    /* Evaluate checks the same things. */
    EXPECT_ERROR(fmnn_model_evaluate(m, x, y9, 0, NULL, NULL), FMNN_ESHAPE, NULL);
    EXPECT_ERROR(fmnn_model_evaluate(m, x, y_wide, 0, NULL, NULL), FMNN_ESHAPE, "dense_1");
    EXPECT_ERROR(fmnn_model_evaluate(m, x5, y, 0, NULL, NULL), FMNN_ESHAPE, NULL);
    fmnn_tensor *p = NOT_NULL;
    EXPECT_ERROR(fmnn_model_predict(m, x5, 0, &p), FMNN_ESHAPE, NULL);
    ck_assert_ptr_null(p);

    /* Zero epochs is allowed and does nothing. */
    fmnn_fit_options zero = fo;
    zero.epochs = 0;
    EXPECT_OK(fmnn_model_fit(m, x, y, &zero, &h));
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->epochs, 0);
    fmnn_history_free(h);
    ck_assert(memcmp(init, fmnn_model_weights(m, NULL), count * sizeof *init) == 0);

    free(init);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(y9);
    fmnn_tensor_free(y_wide);
    fmnn_tensor_free(x5);
    fmnn_tensor_free(x_flat);
    fmnn_tensor_free(x_3d);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_fit_sparse_label_misuse)
{
    rng_seed(112);
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 1));
    fmnn_tensor *x = matrix(6, 4), *y = tensor(1, (int[]){ 6 }), *y_col = matrix(6, 1);
    fmnn_tensor *y_hot = random_one_hot(6, 3);
    fill_normal(x, 1.0);
    for (int i = 0; i < 6; i++)
        fmnn_tensor_data(y)[i] = fmnn_tensor_data(y_col)[i] = (float)(i % 3);
    fmnn_fit_options fo = seedless_options(2, 1, 0);
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    EXPECT_OK(fmnn_model_fit(m, x, y_col, &fo, NULL));
    EXPECT_ERROR(fmnn_model_fit(m, x, y_hot, &fo, NULL), FMNN_ESHAPE, NULL);
    const float bad[] = { 3.0f, -1.0f, 1.5f, 0.5f, NAN, INFINITY, 2.0001f };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        fmnn_tensor_data(y)[4] = bad[k];
        EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EINVAL, NULL);
        EXPECT_ERROR(fmnn_model_evaluate(m, x, y, 0, NULL, NULL), FMNN_EINVAL, NULL);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(y_col);
    fmnn_tensor_free(y_hot);
    fmnn_model_free(m);
}
END_TEST

/* ---- non-finite losses during training --------------------------------- */

static int all_finite(const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return 0;
    return 1;
}

/* SGD at lr 1e30 on MSE with large targets: the weights overflow within a
 * few steps.  fit must stop with FMNN_ENUMERIC, say where, and leave the
 * weights of the last good step, which are finite. */
START_TEST(test_nan_during_training)
{
    fmnn_optimizer o = fmnn_sgd(1e30f, 0.0f);
    fmnn_model *m = line_model(&o, 0.5f, 0.0f);
    fmnn_tensor *x = matrix(4, 1), *y = matrix(4, 1);
    for (int i = 0; i < 4; i++) {
        fmnn_tensor_data(x)[i] = 1.0f;
        fmnn_tensor_data(y)[i] = 1000.0f;
    }
    recorder r;
    recorder_init(&r);
    fmnn_fit_options fo = seedless_options(1, 5, 0);
    fo.callback = record;
    fo.user_data = &r;
    fmnn_history *h = NOT_NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_ENUMERIC, NULL);
    /* Where it stopped: the batch after the last one reported. */
    ck_assert_int_gt(r.n, 0);
    int epoch = r.ev[r.n - 1].epoch;
    int done = count_events(&r, FMNN_EVENT_BATCH_END, epoch);
    const char *msg = fmnn_last_error();
    ck_assert_msg(names_number(msg, "epoch ", epoch + 1) && names_number(msg, "batch ", done + 1),
                  "message \"%s\" should name epoch %d, batch %d", msg, epoch + 1, done + 1);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_ne(h, NOT_NULL);
    ck_assert_int_eq(h->epochs, epoch);
    fmnn_history_free(h);
    size_t count;
    const float *w = fmnn_model_weights(m, &count);
    int finite = all_finite(w, count);
    double w0 = w[0], w1 = w[1];
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
    ck_assert_msg(finite, "after FMNN_ENUMERIC the weights are (%g, %g), not those of the last good step",
                  w0, w1);
}
END_TEST

/* A loss that is Inf at the very first batch: no step is taken. */
START_TEST(test_nan_at_first_batch_keeps_weights)
{
    fmnn_optimizer o = fmnn_sgd(0.1f, 0.0f);
    fmnn_model *m = line_model(&o, 3e38f, 0.0f);
    fmnn_tensor *x = matrix(3, 1), *y = matrix(3, 1);
    for (int i = 0; i < 3; i++)
        fmnn_tensor_data(x)[i] = 10.0f; /* 3e39 overflows float */
    size_t count;
    float *init = copy_weights(m, &count);
    fmnn_fit_options fo = seedless_options(1, 2, 0);
    fmnn_history *h = NOT_NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_ENUMERIC, NULL);
    ck_assert(names_number(fmnn_last_error(), "epoch ", 1) && names_number(fmnn_last_error(), "batch ", 1));
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->epochs, 0);
    fmnn_history_free(h);
    ck_assert(memcmp(init, fmnn_model_weights(m, NULL), count * sizeof *init) == 0);
    free(init);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- sparse and one-hot cross-entropy ----------------------------------- */

/* 0: Dense -> Activation(softmax); 1: Dense(activation=softmax);
 * 2: a Dense that outputs logits, with the from_logits losses. */
static fmnn_model *ce_model(int variant, fmnn_loss loss)
{
    fmnn_optimizer o = fmnn_sgd(0.5f, 0.0f);
    fmnn_model *m = new_model(1, (int[]){ 6 });
    add(m, fmnn_dense(8, &(fmnn_dense_options){ .activation = FMNN_TANH }));
    fmnn_activation_kind last = variant == 1 ? FMNN_SOFTMAX : FMNN_LINEAR;
    if (variant == 2)
        loss = loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY ? FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS
                                                          : FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
    add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = last }));
    if (variant == 0)
        add(m, fmnn_activation(FMNN_SOFTMAX));
    EXPECT_OK(fmnn_model_compile(m, loss, &o, 21));
    return m;
}

START_TEST(test_sparse_equals_categorical)
{
    rng_seed(113);
    const int n = 30, classes = 4;
    fmnn_model *cat = ce_model(_i, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
    fmnn_model *sparse = ce_model(_i, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    nonzero_weights(cat);
    size_t count;
    float *w = copy_weights(cat, &count);
    set_weights(sparse, w, count);
    fmnn_tensor *x = matrix(n, 6), *y = matrix(n, classes), *labels = tensor(1, (int[]){ n });
    fmnn_tensor *labels_col = matrix(n, 1);
    fill_normal(x, 1.5);
    for (int i = 0; i < n; i++) {
        int c = irand(classes);
        fmnn_tensor_data(y)[i * classes + c] = 1.0f;
        fmnn_tensor_data(labels)[i] = fmnn_tensor_data(labels_col)[i] = (float)c;
    }
    float acc_cat, acc_sparse, acc_col;
    float loss_cat = eval_loss(cat, x, y, &acc_cat);
    float loss_sparse = eval_loss(sparse, x, labels, &acc_sparse);
    float loss_col = eval_loss(sparse, x, labels_col, &acc_col);
    ASSERT_CLOSE(loss_sparse, loss_cat, 1e-6, 0);
    ASSERT_CLOSE(loss_col, loss_cat, 1e-6, 0);
    ck_assert(acc_sparse == acc_cat);
    ck_assert(acc_col == acc_cat);

    /* By hand from the predictions: mean of -log(clip(p_c / sum p)), the
     * predictions being logits (softmax taken here) for the from_logits
     * losses. */
    fmnn_tensor *p;
    EXPECT_OK(fmnn_model_predict(cat, x, 0, &p));
    double total = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *out = fmnn_tensor_const_data(p) + i * classes;
        double row[4], top = out[0];
        for (int k = 0; k < classes; k++)
            top = fmax(top, out[k]);
        for (int k = 0; k < classes; k++)
            row[k] = _i == 2 ? exp(out[k] - top) : out[k];
        int c = (int)fmnn_tensor_data(labels)[i], best = 0;
        double sum = 0;
        for (int k = 0; k < classes; k++) {
            sum += row[k];
            if (row[k] > row[best])
                best = k;
        }
        double q = fmin(fmax(row[c] / sum, 1e-7), 1 - 1e-7);
        total -= log(q);
        right += best == c;
    }
    ASSERT_CLOSE(loss_cat, total / n, 1e-5, 0);
    ASSERT_CLOSE(acc_cat, (double)right / n, 1e-6, 0);
    fmnn_tensor_free(p);

    /* And the gradients agree: one full-batch SGD step each. */
    fmnn_fit_options fo = seedless_options(n, 1, 0);
    EXPECT_OK(fmnn_model_fit(cat, x, y, &fo, NULL));
    EXPECT_OK(fmnn_model_fit(sparse, x, labels, &fo, NULL));
    const float *wc = fmnn_model_weights(cat, NULL), *ws = fmnn_model_weights(sparse, NULL);
    int moved = 0;
    for (size_t i = 0; i < count; i++) {
        ASSERT_CLOSE(ws[i], wc[i], 1e-6, 1e-7);
        moved += wc[i] != w[i];
    }
    ck_assert_int_gt(moved, (int)count / 2);

    free(w);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(labels);
    fmnn_tensor_free(labels_col);
    fmnn_model_free(cat);
    fmnn_model_free(sparse);
}
END_TEST

/* ---- predict ------------------------------------------------------------ */

static fmnn_model *softmax_conv_model(int fused)
{
    fmnn_model *m = new_model(3, (int[]){ 8, 8, 1 });
    add(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .activation = FMNN_RELU }));
    add(m, fmnn_flatten());
    if (fused) {
        add(m, fmnn_dense(10, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    } else {
        add(m, fmnn_dense(10, NULL));
        add(m, fmnn_activation(FMNN_SOFTMAX));
    }
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 8));
    return m;
}

START_TEST(test_predict)
{
    rng_seed(114);
    const int n = 50;
    fmnn_model *m = softmax_conv_model(_i);
    fmnn_tensor *x = tensor(4, (int[]){ n, 8, 8, 1 }), *y = random_one_hot(n, 10);
    fill_normal(x, 2.0);
    /* Train a little first, so the outputs are not near uniform, and so the
     * training buffers exist. */
    fmnn_fit_options fo = seedless_options(5, 2, 1);
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));

    const int batch_sizes[] = { 0, 1, 7, 1000 };
    fmnn_tensor *p[4];
    for (int b = 0; b < 4; b++) {
        p[b] = NOT_NULL;
        EXPECT_OK(fmnn_model_predict(m, x, batch_sizes[b], &p[b]));
        ck_assert_int_eq(fmnn_tensor_rank(p[b]), 2);
        ck_assert_int_eq(fmnn_tensor_dim(p[b], 0), n);
        ck_assert_int_eq(fmnn_tensor_dim(p[b], 1), 10);
    }
    const float *p0 = fmnn_tensor_const_data(p[0]);
    double spread = 0;
    for (int i = 0; i < n; i++) {
        double sum = 0, max = 0;
        for (int c = 0; c < 10; c++) {
            float v = p0[i * 10 + c];
            ck_assert_msg(v >= 0.0f && v <= 1.0f, "p[%d][%d] = %g", i, c, (double)v);
            sum += v;
            max = fmax(max, v);
        }
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "row %d sums to %.8f", i, sum);
        spread += max - 0.1;
    }
    ck_assert_msg(spread / n > 0.01, "predictions are uniform");
    for (int b = 1; b < 4; b++)
        for (int i = 0; i < n * 10; i++)
            ck_assert_msg(fabsf(fmnn_tensor_const_data(p[b])[i] - p0[i]) <= 1e-6f,
                          "batch_size %d: value %d is %.9g, not %.9g", batch_sizes[b], i,
                          (double)fmnn_tensor_const_data(p[b])[i], (double)p0[i]);
    /* Evaluate does not depend on batch_size either. */
    float l1, l7, a1, a7;
    EXPECT_OK(fmnn_model_evaluate(m, x, y, 1, &l1, &a1));
    EXPECT_OK(fmnn_model_evaluate(m, x, y, 7, &l7, &a7));
    ASSERT_CLOSE(l1, l7, 1e-6, 0);
    ck_assert(a1 == a7);
    for (int b = 0; b < 4; b++)
        fmnn_tensor_free(p[b]);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* Predicting more samples than any buffer holds, on a fresh model. */
START_TEST(test_predict_many_samples_untrained)
{
    rng_seed(115);
    fmnn_model *m = softmax_conv_model(1);
    fmnn_tensor *x = tensor(4, (int[]){ 300, 8, 8, 1 }), *p, *q;
    fill_normal(x, 1.0);
    EXPECT_OK(fmnn_model_predict(m, x, 300, &p));
    fmnn_tensor *x_last = slice(x, 250, 50);
    EXPECT_OK(fmnn_model_predict(m, x_last, 3, &q));
    for (int i = 0; i < 50 * 10; i++)
        ck_assert(fabsf(fmnn_tensor_const_data(q)[i] - fmnn_tensor_const_data(p)[250 * 10 + i]) <= 1e-6f);
    fmnn_tensor_free(p);
    fmnn_tensor_free(q);
    fmnn_tensor_free(x_last);
    fmnn_tensor_free(x);
    fmnn_model_free(m);
}
END_TEST

/*
 * Like TensorFlow, the library flushes denormals to zero while it works
 * (see lib/internal.h), on the caller's thread and on every OpenMP thread,
 * and gives the caller's thread its floating-point mode back.  A relu over
 * denormal inputs, large enough to be split over two threads, then gives
 * exact zeros everywhere.
 */
START_TEST(test_denormals_flushed_while_working)
{
#ifdef __SSE__
    ck_assert_int_eq(fmnn_set_num_threads(2), FMNN_OK);
    fmnn_model *m = NOT_NULL;
    EXPECT_OK(fmnn_model_new(&m, 3, (int[]){ 256, 256, 1 }));
    add(m, fmnn_activation(FMNN_RELU));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1));
    fmnn_tensor *x = tensor(4, (int[]){ 2, 256, 256, 1 }), *p;
    float *xd = fmnn_tensor_data(x);
    for (size_t i = 0; i < fmnn_tensor_size(x); i++)
        xd[i] = 1e-39f; /* a denormal: FLT_MIN is 1.18e-38 */
    const unsigned mode_bits = ~0x3fu; /* the low six are exception flags */
    const unsigned mode = _mm_getcsr() & mode_bits;
    EXPECT_OK(fmnn_model_predict(m, x, 0, &p));
    ck_assert_uint_eq(_mm_getcsr() & mode_bits, mode);
    /* Valgrind ignores the FTZ and DAZ bits (every real x86-64 CPU has
     * them): there only the restored mode can be checked. */
    _mm_setcsr(_mm_getcsr() | 0x8040u);
    volatile float denormal = 1e-39f;
    const int cpu_flushes = denormal * 0.5f == 0.0f;
    _mm_setcsr((_mm_getcsr() & ~0x8040u) | (mode & 0x8040u));
    for (size_t i = 0; cpu_flushes && i < fmnn_tensor_size(p); i++)
        ck_assert_msg(fmnn_tensor_const_data(p)[i] == 0.0f, "output %zu is %g, not flushed to 0", i,
                      (double)fmnn_tensor_const_data(p)[i]);
    /* Outside the library denormals are the caller's business. */
    volatile float tiny = 1e-39f;
    ck_assert(tiny * 0.5f > 0.0f);
    fmnn_tensor_free(p);
    fmnn_tensor_free(x);
    fmnn_model_free(m);
#endif
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("optimizers");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_adam_by_hand, 0, 3);
    tcase_add_loop_test(tc, test_sgd_by_hand, 0, 3);
    tcase_add_test(tc, test_batch_mean_and_partial_batch);
    suite_add_tcase(s, tc);

    tc = tcase_create("fit");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_validation_split_is_the_last_fraction);
    tcase_add_test(tc, test_validation_split_rounds_down);
    tcase_add_test(tc, test_last_partial_batch_is_kept);
    tcase_add_test(tc, test_regularization_in_the_loss);
    tcase_add_test(tc, test_regularization_gradient);
    tcase_add_loop_test(tc, test_determinism, 0, 2);
    tcase_add_test(tc, test_training_loop_does_not_allocate);
    tcase_add_test(tc, test_learns_blobs);
    tcase_add_test(tc, test_learns_bars);
    suite_add_tcase(s, tc);

    tc = tcase_create("callbacks and errors");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_callback_event_order);
    tcase_add_test(tc, test_callback_stops_training);
    tcase_add_test(tc, test_fit_misuse);
    tcase_add_test(tc, test_fit_sparse_label_misuse);
    tcase_add_test(tc, test_nan_during_training);
    tcase_add_test(tc, test_nan_at_first_batch_keeps_weights);
    suite_add_tcase(s, tc);

    tc = tcase_create("losses and predict");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_sparse_equals_categorical, 0, 3);
    tcase_add_loop_test(tc, test_predict, 0, 2);
    tcase_add_test(tc, test_predict_many_samples_untrained);
    tcase_add_test(tc, test_denormals_flushed_while_working);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    fmnn_set_num_threads(2);
    SRunner *sr = srunner_create(train_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
