/*
 * check_callbacks.c - fit's callbacks and training control
 * (lib/callbacks/, lib/fit.c, lib/metric.c, lib/metrics/, lib/train.c's
 * *_on_batch, lib/save.c's training record): EarlyStopping against
 * Keras's rule, resuming from a ModelCheckpoint bit for bit, per-epoch
 * batch orders, the metrics against values computed by hand, class and
 * sample weights, validation data, train/test/predict_on_batch,
 * CSVLogger, TerminateOnNaN, ReduceLROnPlateau, what a callback may
 * call, and where progress goes.
 *
 * Every helper is static: the other test files without main() are linked
 * into every test program.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fmnn.h"
#include "testdata.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------- */

/* |a - b| <= rel * max(|a|, |b|) + abs */
/* Two floats with the same bits (NaN-safe, and -0 is not 0). */
#define ASSERT_SAME_FLOAT(a, b)                                                            \
    do {                                                                                   \
        float a_ = (a), b_ = (b);                                                          \
        ck_assert_msg(!memcmp(&a_, &b_, sizeof a_), "line %d: %s = %.9g but %s = %.9g", __LINE__, #a, \
                      (double)a_, #b, (double)b_);                                         \
    } while (0)

static fmnn_tensor *vector(int n, const float *values)
{
    fmnn_tensor *t = tensor(1, (int[]){ n });
    if (values)
        memcpy(fmnn_tensor_data(t), values, (size_t)n * sizeof *values);
    return t;
}

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

static int all_finite(const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return 0;
    return 1;
}

static int same_as(fmnn_model *m, snapshot s)
{
    snapshot now = take(m);
    int result = same(now, s);
    free(now.v);
    return result;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static fmnn_model *tiny_classifier(void)
{
    fmnn_model *m = new_model(1, (int[]){ 5 });
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1));
    return m;
}

/* ---- a callback that keeps each epoch's weights and values -------------- */

#define MAX_EPOCHS 16

typedef struct epoch_log {
    int epochs;                    /* EPOCH_END events seen */
    int epoch[MAX_EPOCHS];         /* their epoch numbers */
    snapshot weights[MAX_EPOCHS];
    float lr_after[MAX_EPOCHS];    /* fmnn_model_learning_rate after the earlier callbacks */
    float first_batch_loss;        /* of batch 1 of the first epoch */
} epoch_log;

static int log_epochs(const fmnn_progress *p, void *data)
{
    epoch_log *log = data;
    if (p->event == FMNN_EVENT_BATCH_END && p->batch == 1 && log->epochs == 0)
        log->first_batch_loss = p->loss;
    if (p->event != FMNN_EVENT_EPOCH_END)
        return 0;
    ck_assert_int_lt(log->epochs, MAX_EPOCHS);
    log->epoch[log->epochs] = p->epoch;
    log->weights[log->epochs] = take(p->model);
    EXPECT_OK(fmnn_model_learning_rate(p->model, &log->lr_after[log->epochs]));
    log->epochs++;
    return 0;
}

static void epoch_log_free(epoch_log *log)
{
    for (int e = 0; e < log->epochs; e++)
        free(log->weights[e].v);
    memset(log, 0, sizeof *log);
}

/* Keras's _is_improvement, in double as Python compares. */
static int keras_improves(int lower_is_better, double min_delta, float current, int has_reference,
                          float reference)
{
    if (!has_reference)
        return 1;
    return lower_is_better ? (double)current + min_delta < (double)reference
                           : (double)current - min_delta > (double)reference;
}

/* ---- 1. EarlyStopping ------------------------------------------------------ */

typedef struct es_case {
    const char *monitor;
    fmnn_monitor_mode mode;
    int lower_is_better; /* what the mode resolves to */
    float min_delta;
    int patience, start_from_epoch, has_baseline;
    float baseline;
    int validation;      /* validation_data with labels of their own */
} es_case;

static const es_case es_cases[] = {
    { "loss", FMNN_MODE_MAX, 0, 0.0f, 2, 0, 0, 0.0f, 0 },     /* only the first epoch is best */
    { "loss", FMNN_MODE_MAX, 0, 0.0f, 1, 2, 0, 0.0f, 0 },     /* ... counting from epoch 2 */
    { "loss", FMNN_MODE_MAX, 0, 0.0f, 2, 0, 1, 1e9f, 0 },     /* a baseline never beaten */
    { "loss", FMNN_MODE_MIN, 1, 0.05f, 1, 0, 0, 0.0f, 0 },    /* small gains are no gains */
    { "val_loss", FMNN_MODE_AUTO, 1, 0.02f, 2, 0, 0, 0.0f, 1 }, /* gains against the best, not the last */
    { "accuracy", FMNN_MODE_AUTO, 0, 0.0f, 3, 0, 0, 0.0f, 0 }, /* the best in the middle */
};

/* Keras 3's EarlyStopping.on_epoch_end over the values of one fit, with
 * restore_best_weights: the epoch it stops in (-1: none) and the best. */
static void keras_early_stopping(const es_case *c, const float *v, int n, int *stop, int *best_epoch)
{
    int wait = 0, has_best = 0;
    float best = 0.0f;
    *stop = -1;
    *best_epoch = -1;
    const double d = fabs((double)c->min_delta);
    for (int e = 0; e < n; e++) {
        if (e < c->start_from_epoch)
            continue;
        if (*best_epoch < 0)
            *best_epoch = e;
        wait++;
        if (keras_improves(c->lower_is_better, d, v[e], has_best, best)) {
            best = v[e];
            has_best = 1;
            *best_epoch = e;
            if (!c->has_baseline || keras_improves(c->lower_is_better, d, v[e], 1, c->baseline))
                wait = 0;
            continue;
        }
        if (wait >= c->patience && e > 0) {
            *stop = e;
            return;
        }
    }
}

START_TEST(test_early_stopping_restores_best)
{
    const es_case *c = &es_cases[_i];
    rng_seed(11);
    fmnn_model *m = bn_classifier();
    fmnn_tensor *x = random_normal(32, 5), *y = random_one_hot(32, 3);
    fmnn_tensor *xv = random_normal(16, 5), *yv = random_one_hot(16, 3);
    fmnn_early_stopping_options eo = FMNN_EARLY_STOPPING_INIT;
    eo.monitor = c->monitor;
    eo.mode = c->mode;
    eo.min_delta = c->min_delta;
    eo.patience = c->patience;
    eo.start_from_epoch = c->start_from_epoch;
    eo.has_baseline = c->has_baseline;
    eo.baseline = c->baseline;
    eo.restore_best_weights = 1;
    fmnn_callback *es = NOT_NULL;
    EXPECT_OK(fmnn_early_stopping(&es, &eo));
    epoch_log log = { 0 };
    fmnn_callback *rec = callback("recorder", log_epochs, &log);
    fmnn_callback *list[] = { es, rec };
    const int epochs = 12;
    fmnn_fit_options fo = quiet_options(8, epochs, 1);
    fo.callbacks = list;
    fo.n_callbacks = 2;
    if (c->validation) {
        fo.x_val = xv;
        fo.y_val = yv;
    }
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_ptr_nonnull(h);
    const float *values = !strcmp(c->monitor, "loss") ? h->loss : !strcmp(c->monitor, "val_loss") ? h->val_loss
                                                                                                  : h->accuracy;
    ck_assert_ptr_nonnull(values);
    int stop, best;
    keras_early_stopping(c, values, h->epochs, &stop, &best);
    ck_assert_int_eq(log.epochs, h->epochs);
    if (stop >= 0) {
        ck_assert_int_eq(h->epochs, stop + 1);
        ck_assert_int_eq(h->stop_reason, FMNN_STOP_CALLBACK);
        ck_assert_int_eq(h->stopped_epoch, stop);
        ck_assert_str_eq(h->stopped_by, "EarlyStopping");
    } else {
        ck_assert_int_eq(h->epochs, epochs);
        ck_assert_int_eq(h->stop_reason, FMNN_STOP_COMPLETED);
        ck_assert_int_eq(h->stopped_epoch, -1);
        ck_assert_str_eq(h->stopped_by, "");
    }
    /* The cases are built so that each stops, and in a known epoch when
     * the loss falls every epoch. */
    ck_assert_msg(stop >= 0, "case %d did not stop: pick other settings", _i);
    ck_assert_int_ge(best, 0);
    ck_assert_msg(same_as(m, log.weights[best]), "the weights are not those of the end of epoch %d", best);
    ck_assert_int_lt(best, h->epochs - 1); /* so that restoring changes the weights */
    ck_assert(!same(log.weights[best], log.weights[h->epochs - 1]));
    int falling = 1;
    for (int e = 1; e < h->epochs; e++)
        falling &= h->loss[e] < h->loss[e - 1];
    if (falling && _i <= 2) { /* Keras's rule, by hand */
        static const int want_stop[] = { 2, 3, 1 }, want_best[] = { 0, 2, 0 };
        ck_assert_int_eq(stop, want_stop[_i]);
        ck_assert_int_eq(best, want_best[_i]);
    }
    fmnn_history_free(h);
    epoch_log_free(&log);
    fmnn_callback_free(es);
    fmnn_callback_free(rec);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(xv);
    fmnn_tensor_free(yv);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_early_stopping_monitor_errors)
{
    rng_seed(12);
    fmnn_model *m = tiny_classifier();
    fmnn_tensor *x = random_normal(8, 5), *y = random_one_hot(8, 3);
    fmnn_early_stopping_options eo = FMNN_EARLY_STOPPING_INIT;
    eo.monitor = "val_acuracy";
    fmnn_callback *es = NOT_NULL;
    EXPECT_OK(fmnn_early_stopping(&es, &eo));
    fmnn_fit_options fo = quiet_options(4, 2, 0);
    fo.callbacks = &es;
    fo.n_callbacks = 1;
    fo.validation_split = 0.25f;
    fmnn_history *h = NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_EINVAL, "\"val_acuracy\"");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "EarlyStopping"));
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->epochs, 0);
    ck_assert_int_eq(h->stop_reason, FMNN_STOP_ERROR);
    fmnn_history_free(h);
    fmnn_callback_free(es);

    /* val_loss (the default) without validation: say how to get it. */
    EXPECT_OK(fmnn_early_stopping(&es, NULL));
    fo.validation_split = 0.0f;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EINVAL, "val_loss");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "validation"));
    fmnn_callback_free(es);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- 2. resuming from a checkpoint -------------------------------------------- */

/* After the checkpoint: the file at its path is the model as it is now. */
typedef struct reloader {
    const char *path;
    int checked;
} reloader;

static int reload_checkpoint(const fmnn_progress *p, void *data)
{
    reloader *r = data;
    if (p->event != FMNN_EVENT_EPOCH_END)
        return 0;
    fmnn_model *loaded = NULL;
    EXPECT_OK(fmnn_model_load(&loaded, r->path));
    snapshot a = take(p->model), b = take(loaded);
    ck_assert_msg(same(a, b), "the checkpoint of epoch %d is not the model", p->epoch + 1);
    int64_t e1, s1, e2, s2;
    EXPECT_OK(fmnn_model_trained(p->model, &e1, &s1));
    EXPECT_OK(fmnn_model_trained(loaded, &e2, &s2));
    ck_assert(e1 == e2 && s1 == s2);
    free(a.v);
    free(b.v);
    fmnn_model_free(loaded);
    r->checked++;
    return 0;
}

/* A process that trains with a ModelCheckpoint saving every epoch,
 * killed (SIGKILL) at 20 moments: the file it leaves is always a whole
 * model that loads, never a partly written one. */
START_TEST(test_checkpoint_survives_kills)
{
    scratch_dir();
    char path[128];
    scratch_path(path, sizeof path, "killed.fmnn");
    rng_seed(23);
    fmnn_tensor *x = random_normal(64, 5), *y = random_one_hot(64, 3);
    fmnn_model *m = dropout_classifier();
    EXPECT_OK(fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER)); /* a file from the start */
    struct timespec seed_time;
    clock_gettime(CLOCK_MONOTONIC, &seed_time);
    srand((unsigned)seed_time.tv_nsec);
    for (int kill_at = 0; kill_at < 20; kill_at++) {
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) { /* epochs of 8 steps, each ending in a save, until killed */
            fmnn_checkpoint_options co = FMNN_CHECKPOINT_INIT;
            co.save_flags = FMNN_SAVE_OPTIMIZER;
            fmnn_callback *ck = NULL;
            if (fmnn_model_checkpoint(&ck, path, &co) != FMNN_OK)
                _exit(2);
            fmnn_fit_options fo = quiet_options(8, 1000000, 1);
            fo.callbacks = &ck;
            fo.n_callbacks = 1;
            fmnn_model_fit(m, x, y, &fo, NULL);
            _exit(1);
        }
        struct timespec pause = { 0, (long)(rand() % 40000) * 1000L }; /* 0 to 40 ms */
        nanosleep(&pause, NULL);
        ck_assert_int_eq(kill(child, SIGKILL), 0);
        int status;
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFSIGNALED(status));
        fmnn_model *back = NULL;
        EXPECT_OK(fmnn_model_load(&back, path));
        fmnn_model_free(back);
    }
    fmnn_model_free(m);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove(); /* and the temporary files a kill may leave beside it */
}
END_TEST

/* _i: 0 the Dropout classifier, 1 the augmented CNN. */
START_TEST(test_resume_from_checkpoint)
{
    fmnn_model *(*const build)(void) = _i ? augmented_cnn : dropout_classifier;
    scratch_dir();
    char path[128];
    scratch_path(path, sizeof path, "ck.fmnn");
    rng_seed(21);
    fmnn_tensor *x = random_normal(40, _i ? 36 : 5), *y = random_one_hot(40, 3);
    if (_i) { /* the same values as 40 images of 6x6x1 */
        fmnn_tensor *images = NULL;
        EXPECT_OK(fmnn_tensor_new(&images, 4, (int[]){ 40, 6, 6, 1 }));
        memcpy(fmnn_tensor_data(images), fmnn_tensor_data(x), fmnn_tensor_size(x) * sizeof(float));
        fmnn_tensor_free(x);
        x = images;
    }

    fmnn_model *whole = build();
    fmnn_fit_options fo = quiet_options(8, 4, 1);
    EXPECT_OK(fmnn_model_fit(whole, x, y, &fo, NULL));

    fmnn_model *first = build();
    fmnn_checkpoint_options co = FMNN_CHECKPOINT_INIT;
    co.save_flags = FMNN_SAVE_OPTIMIZER;
    fmnn_callback *ck = NOT_NULL;
    EXPECT_OK(fmnn_model_checkpoint(&ck, path, &co));
    reloader r = { path, 0 };
    fmnn_callback *check = callback("reloader", reload_checkpoint, &r);
    fmnn_callback *list[] = { ck, check };
    fo.epochs = 2;
    fo.callbacks = list;
    fo.n_callbacks = 2;
    EXPECT_OK(fmnn_model_fit(first, x, y, &fo, NULL));
    ck_assert_int_eq(r.checked, 2);
    fmnn_model_free(first);

    fmnn_model *resumed = NULL;
    EXPECT_OK(fmnn_model_load(&resumed, path));
    int64_t epochs, steps;
    EXPECT_OK(fmnn_model_trained(resumed, &epochs, &steps));
    ck_assert(epochs == 2 && steps == 10);
    fo = quiet_options(8, 4, 1);
    fo.initial_epoch = 2;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(resumed, x, y, &fo, &h));
    ck_assert_int_eq(h->epochs, 2);
    ck_assert_int_eq(h->initial_epoch, 2);
    fmnn_history_free(h);
    snapshot a = take(whole), b = take(resumed);
    ck_assert_msg(same(a, b), "training resumed from the checkpoint differs from training uninterrupted");
    EXPECT_OK(fmnn_model_trained(resumed, &epochs, &steps));
    ck_assert(epochs == 4 && steps == 20);
    free(a.v);
    free(b.v);
    fmnn_callback_free(ck);
    fmnn_callback_free(check);
    fmnn_model_free(whole);
    fmnn_model_free(resumed);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* {epoch:02d}: one file per epoch, each that epoch's model; with
 * save_best_only, files only for the epochs that improved. */
START_TEST(test_checkpoint_per_epoch_and_best_only)
{
    scratch_dir();
    char pattern[128], path[128];
    rng_seed(22);
    fmnn_tensor *x = random_normal(24, 5), *y = random_one_hot(24, 3);
    for (int best_only = 0; best_only <= 1; best_only++) {
        scratch_path(pattern, sizeof pattern, best_only ? "best-{epoch:02d}.fmnn" : "every-{epoch:02d}.fmnn");
        fmnn_model *m = bn_classifier();
        fmnn_checkpoint_options co = FMNN_CHECKPOINT_INIT;
        co.save_best_only = best_only;
        co.monitor = "loss";
        co.mode = FMNN_MODE_MAX; /* a falling loss improves only at first */
        fmnn_callback *ck = NOT_NULL;
        EXPECT_OK(fmnn_model_checkpoint(&ck, pattern, &co));
        epoch_log log = { 0 };
        fmnn_callback *rec = callback("recorder", log_epochs, &log);
        fmnn_callback *list[] = { ck, rec };
        fmnn_fit_options fo = quiet_options(8, 4, 1);
        fo.callbacks = list;
        fo.n_callbacks = 2;
        fmnn_history *h = NULL;
        EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
        int has_best = 0, saved = 0;
        float best = 0.0f;
        for (int e = 0; e < 5; e++) {
            snprintf(path, sizeof path, "%s/%s-%02d.fmnn", scratch, best_only ? "best" : "every", e + 1);
            int want = e < 4;
            if (best_only && want) {
                want = keras_improves(0, 0.0, h->loss[e], has_best, best);
                if (want) {
                    best = h->loss[e];
                    has_best = 1;
                }
            }
            ck_assert_msg(file_exists(path) == want, "%s %s", path, want ? "is missing" : "should not exist");
            if (!want)
                continue;
            saved++;
            fmnn_model *loaded = NULL;
            EXPECT_OK(fmnn_model_load(&loaded, path));
            ck_assert_msg(same_as(loaded, log.weights[e]), "%s is not the model of epoch %d", path, e + 1);
            fmnn_model_free(loaded);
        }
        ck_assert_int_eq(saved, best_only ? saved : 4);
        if (best_only)
            ck_assert_int_lt(saved, 4); /* with mode MAX on a loss that mostly falls */
        fmnn_history_free(h);
        epoch_log_free(&log);
        fmnn_callback_free(ck);
        fmnn_callback_free(rec);
        fmnn_model_free(m);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* A file without the optimizer's state still says what the model trained. */
START_TEST(test_save_keeps_trained_counts)
{
    scratch_dir();
    char path[128];
    scratch_path(path, sizeof path, "plain.fmnn");
    rng_seed(23);
    fmnn_tensor *x = random_normal(40, 5), *y = random_one_hot(40, 3);
    fmnn_model *m = dropout_classifier();
    fmnn_fit_options fo = quiet_options(8, 2, 1);
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    EXPECT_OK(fmnn_model_save(m, path, 0));
    fmnn_model *loaded = NULL;
    EXPECT_OK(fmnn_model_load(&loaded, path));
    int64_t epochs = -1, steps = -1;
    EXPECT_OK(fmnn_model_trained(loaded, &epochs, &steps));
    ck_assert_msg(epochs == 2 && steps == 10, "loaded without optimizer: %lld epochs, %lld steps",
                  (long long)epochs, (long long)steps);
    fmnn_model_free(loaded);
    fmnn_model_free(m);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* ---- 3. per-epoch batch orders ------------------------------------------------ */

START_TEST(test_each_epoch_its_own_order)
{
    rng_seed(31);
    fmnn_tensor *x = random_normal(16, 5), *y = random_one_hot(16, 3);
    fmnn_model *twice = bn_classifier(), *again = bn_classifier(), *once = bn_classifier();
    fmnn_fit_options fo = quiet_options(4, 1, 1);
    EXPECT_OK(fmnn_model_fit(twice, x, y, &fo, NULL));

    /* Same weights and same state, but the counts of a fresh model: the
     * first batch of the next fit is epoch 0's for it, epoch 1's for the
     * model that trained. */
    snapshot after_one = take(twice);
    size_t n_params;
    memcpy(fmnn_model_weights(again, &n_params), after_one.v, fmnn_model_param_count(again) * sizeof(float));
    fmnn_layer_weights lw;
    EXPECT_OK(fmnn_model_get_layer_weights(twice, 1, &lw));
    EXPECT_OK(fmnn_model_set_layer_weights(again, 1, &(fmnn_layer_weights){ .state = lw.state,
                                                                           .state_count = lw.state_count }));
    ck_assert(same_as(again, after_one));
    epoch_log log_twice = { 0 }, log_again = { 0 };
    fmnn_callback *rec = callback("recorder", log_epochs, &log_twice);
    fo.callbacks = &rec;
    fo.n_callbacks = 1;
    EXPECT_OK(fmnn_model_fit(twice, x, y, &fo, NULL));
    fmnn_callback_free(rec);
    rec = callback("recorder", log_epochs, &log_again);
    fo.callbacks = &rec;
    EXPECT_OK(fmnn_model_fit(again, x, y, &fo, NULL));
    ck_assert_msg(log_twice.first_batch_loss != log_again.first_batch_loss,
                  "the second fit(epochs=1) took the first one's batch order (first batch loss %.9g both)",
                  (double)log_twice.first_batch_loss);

    fo = quiet_options(4, 2, 1);
    EXPECT_OK(fmnn_model_fit(once, x, y, &fo, NULL));
    snapshot two = take(twice);
    ck_assert_msg(same_as(once, two), "fit(epochs=1) twice differs from fit(epochs=2)");
    free(two.v);
    int64_t e1, s1, e2, s2;
    EXPECT_OK(fmnn_model_trained(once, &e1, &s1));
    EXPECT_OK(fmnn_model_trained(twice, &e2, &s2));
    ck_assert(e1 == 2 && e2 == 2 && s1 == 8 && s2 == 8);
    free(after_one.v);
    epoch_log_free(&log_twice);
    epoch_log_free(&log_again);
    fmnn_callback_free(rec);
    fmnn_model_free(twice);
    fmnn_model_free(again);
    fmnn_model_free(once);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/* ---- 4. metrics against values computed by hand --------------------------------- */

/* Dense(width) with an identity kernel and no bias: the output is x. */
static fmnn_model *identity_model(int width, fmnn_loss loss)
{
    fmnn_model *m = new_model(1, (int[]){ width });
    add(m, fmnn_dense(width, &(fmnn_dense_options){ .no_bias = 1 }));
    EXPECT_OK(fmnn_model_compile(m, loss, NULL, 1));
    size_t n;
    float *w = fmnn_model_weights(m, &n);
    ck_assert_uint_eq(n, (size_t)width * width);
    for (int i = 0; i < width; i++)
        for (int j = 0; j < width; j++)
            w[i * width + j] = i == j ? 1.0f : 0.0f;
    return m;
}

/* Scores with ties: row 2's target ties for first, row 4's for second. */
static const float topk_out[5][4] = {
    { 0.1f, 0.9f, 0.5f, 0.2f }, /* target 1: top-1 */
    { 0.8f, 0.1f, 0.7f, 0.3f }, /* target 2: top-2 only */
    { 0.5f, 0.5f, 0.2f, 0.1f }, /* target 1, tied with 0: top-1 (argmax picks 0) */
    { 0.3f, 0.6f, 0.6f, 0.9f }, /* target 0: neither */
    { 0.2f, 0.4f, 0.4f, 0.1f }, /* target 2, tied with 1: top-1 */
};
static const int topk_target[5] = { 1, 2, 1, 0, 2 };
static const float topk_w[5] = { 1.0f, 2.0f, 0.5f, 1.0f, 4.0f };

START_TEST(test_top_k_by_hand)
{
    const int sparse = _i;
    fmnn_model *m = identity_model(4, sparse ? FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS
                                             : FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS);
    const fmnn_metric metrics[] = { { .kind = FMNN_METRIC_ACCURACY },
                                    { .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 1 },
                                    { .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 2 } };
    EXPECT_OK(fmnn_model_set_metrics(m, 3, metrics));
    ck_assert_int_eq(fmnn_model_metric_count(m), 3);
    ck_assert_str_eq(fmnn_model_metric_name(m, 0), "accuracy");
    ck_assert_str_eq(fmnn_model_metric_name(m, 1),
                     sparse ? "sparse_top_k_categorical_accuracy" : "top_k_categorical_accuracy");
    ck_assert_ptr_null(fmnn_model_metric_name(m, 3));
    fmnn_tensor *x = matrix(5, 4), *y = sparse ? vector(5, NULL) : matrix(5, 4), *w = vector(5, topk_w);
    memcpy(fmnn_tensor_data(x), topk_out, sizeof topk_out);
    double loss = 0.0, wloss = 0.0;
    for (int i = 0; i < 5; i++) {
        if (sparse)
            fmnn_tensor_data(y)[i] = (float)topk_target[i];
        else
            fmnn_tensor_data(y)[i * 4 + topk_target[i]] = 1.0f;
        double z = 0.0;
        for (int c = 0; c < 4; c++)
            z += exp((double)topk_out[i][c]);
        const double ce = log(z) - (double)topk_out[i][topk_target[i]];
        loss += ce / 5;
        wloss += topk_w[i] * ce / 5;
    }
    float v[4];
    EXPECT_OK(fmnn_model_evaluate_metrics(m, x, y, NULL, 0, v));
    ASSERT_CLOSE(v[0], loss, 1e-6, 0.0);
    ASSERT_CLOSE(v[1], 1.0 / 5, 1e-7, 0.0);  /* argmax: row 0 */
    ASSERT_CLOSE(v[2], 3.0 / 5, 1e-7, 0.0);  /* rows 0, 2, 4 */
    ASSERT_CLOSE(v[3], 4.0 / 5, 1e-7, 0.0);  /* and row 1 */
    /* Sample weights weigh the loss, not the metrics: Keras 3 gives them to
     * weighted_metrics only (CompileMetrics.update_state). */
    EXPECT_OK(fmnn_model_evaluate_metrics(m, x, y, w, 2, v));
    ASSERT_CLOSE(v[0], wloss, 1e-6, 0.0);
    ASSERT_CLOSE(v[1], 1.0 / 5, 1e-7, 0.0);
    ASSERT_CLOSE(v[2], 3.0 / 5, 1e-7, 0.0);
    ASSERT_CLOSE(v[3], 4.0 / 5, 1e-7, 0.0);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(w);
    fmnn_model_free(m);
}
END_TEST

/* Two outputs per sample, some outside [0, 1] (AUC clips them), and a
 * soft label, 0.3, which Keras casts to a positive. */
static const float conf_out[4][2] = { { 0.9f, 0.2f }, { 0.6f, 0.3f }, { 0.4f, 1.3f }, { -0.2f, 0.55f } };
static const float conf_y[4][2] = { { 1.0f, 0.0f }, { 0.0f, 1.0f }, { 1.0f, 1.0f }, { 0.0f, 0.3f } };
static const float conf_w[4] = { 1.0f, 2.0f, 1.0f, 3.0f };

/* keras.metrics.AUC(num_thresholds=n) as Keras 3 computes it
 * (_update_confusion_matrix_variables_optimized, then result()): labels
 * cast to bool, predictions clipped, bucket ceil(p (n - 1)) - 1 (at least
 * 0), reversed cumulative sums, the trapezoid over the ROC curve. */
static double keras_auc(int n, const float *pred, const float *label, const float *w, int count, int width)
{
    double *tp_b = calloc((size_t)n, sizeof(double)), *fp_b = calloc((size_t)n, sizeof(double));
    double *tp = calloc((size_t)n, sizeof(double)), *fp = calloc((size_t)n, sizeof(double));
    ck_assert(tp_b && fp_b && tp && fp);
    double pos = 0.0, neg = 0.0;
    for (int i = 0; i < count * width; i++) {
        const double weight = w ? w[i / width] : 1.0;
        const double p = fmin(fmax((double)pred[i], 0.0), 1.0);
        int bucket = (int)ceil(p * (n - 1)) - 1;
        if (bucket < 0)
            bucket = 0;
        const double t = label[i] != 0.0f ? 1.0 : 0.0;
        tp_b[bucket] += t * weight;
        fp_b[bucket] += (1.0 - t) * weight;
        pos += t * weight;
        neg += (1.0 - t) * weight;
    }
    double run_tp = 0.0, run_fp = 0.0;
    for (int b = n - 1; b >= 0; b--) {
        run_tp += tp_b[b];
        run_fp += fp_b[b];
        tp[b] = run_tp;
        fp[b] = run_fp;
    }
    double area = 0.0;
    for (int t = 0; t + 1 < n; t++) {
        const double tpr0 = pos ? tp[t] / pos : 0.0, tpr1 = pos ? tp[t + 1] / pos : 0.0;
        const double fpr0 = neg ? fp[t] / neg : 0.0, fpr1 = neg ? fp[t + 1] / neg : 0.0;
        area += (fpr0 - fpr1) * (tpr0 + tpr1) / 2.0;
    }
    free(tp_b);
    free(fp_b);
    free(tp);
    free(fp);
    return area;
}

START_TEST(test_confusion_and_error_metrics_by_hand)
{
    fmnn_model *m = identity_model(2, FMNN_LOSS_MSE);
    ck_assert_int_eq(fmnn_model_metric_count(m), 0); /* regression: none by default */
    const fmnn_metric metrics[] = {
        { .kind = FMNN_METRIC_PRECISION }, { .kind = FMNN_METRIC_RECALL },
        { .kind = FMNN_METRIC_AUC, .num_thresholds = 3 }, { .kind = FMNN_METRIC_AUC },
        { .kind = FMNN_METRIC_MAE }, { .kind = FMNN_METRIC_MSE },
    };
    EXPECT_OK(fmnn_model_set_metrics(m, 6, metrics));
    static const char *const names[] = { "precision", "recall", "auc", "auc_1", "mae", "mse" };
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(fmnn_model_metric_name(m, i), names[i]);
    fmnn_tensor *x = matrix(4, 2), *y = matrix(4, 2), *w = vector(4, conf_w);
    memcpy(fmnn_tensor_data(x), conf_out, sizeof conf_out);
    memcpy(fmnn_tensor_data(y), conf_y, sizeof conf_y);
    double mae = 0.0, mse = 0.0, wmse = 0.0;
    for (int i = 0; i < 4; i++) {
        double a = 0.0, s = 0.0;
        for (int c = 0; c < 2; c++) {
            const double d = (double)conf_out[i][c] - (double)conf_y[i][c];
            a += fabs(d) / 2;
            s += d * d / 2;
        }
        mae += a / 4;
        mse += s / 4;
        wmse += conf_w[i] * s / 7;
    }
    float v[7];
    EXPECT_OK(fmnn_model_evaluate_metrics(m, x, y, NULL, 0, v));
    ASSERT_CLOSE(v[0], mse, 1e-6, 0.0); /* the loss first */
    /* > 0.5: (1, 0), (1, 0), (0, 1), (0, 1) against (1, 0), (0, 1), (1, 1), (0, 1):
     * TP 3, FP 1, FN 2. */
    ASSERT_CLOSE(v[1], 3.0 / 4, 1e-7, 0.0);
    ASSERT_CLOSE(v[2], 3.0 / 5, 1e-7, 0.0);
    /* Thresholds -eps, 0.5, 1 + eps; 5 positives, 3 negatives; above 0.5:
     * 3 positives (0.9, 1.3, 0.55), 1 negative (0.6): the ROC points
     * (1, 1), (1/3, 3/5), (0, 0). */
    ASSERT_CLOSE(v[3], (2.0 / 3) * (1.6 / 2) + (1.0 / 3) * (0.6 / 2), 1e-6, 0.0);
    ASSERT_CLOSE(v[3], keras_auc(3, &conf_out[0][0], &conf_y[0][0], NULL, 4, 2), 1e-6, 0.0);
    ASSERT_CLOSE(v[4], keras_auc(200, &conf_out[0][0], &conf_y[0][0], NULL, 4, 2), 1e-6, 0.0);
    ASSERT_CLOSE(v[5], mae, 1e-6, 0.0);
    ASSERT_CLOSE(v[6], mse, 1e-6, 0.0);

    /* The weights weigh the loss only, as in Keras 3. */
    EXPECT_OK(fmnn_model_evaluate_metrics(m, x, y, w, 3, v));
    ASSERT_CLOSE(v[0], wmse * 7 / 4, 1e-6, 0.0); /* sum(w * loss) / N */
    ASSERT_CLOSE(v[1], 3.0 / 4, 1e-7, 0.0);
    ASSERT_CLOSE(v[2], 3.0 / 5, 1e-7, 0.0);
    ASSERT_CLOSE(v[3], keras_auc(3, &conf_out[0][0], &conf_y[0][0], NULL, 4, 2), 1e-6, 0.0);
    ASSERT_CLOSE(v[4], keras_auc(200, &conf_out[0][0], &conf_y[0][0], NULL, 4, 2), 1e-6, 0.0);
    ASSERT_CLOSE(v[5], mae, 1e-6, 0.0);
    ASSERT_CLOSE(v[6], mse, 1e-6, 0.0);

    /* AUC on more values, against the independent computation. */
    rng_seed(41);
    fmnn_tensor *xr = matrix(50, 2), *yr = matrix(50, 2), *wr = vector(50, NULL);
    for (int i = 0; i < 100; i++) {
        fmnn_tensor_data(yr)[i] = (float)irand(2);
        fmnn_tensor_data(xr)[i] = (float)(0.35 * fmnn_tensor_data(yr)[i] + 0.8 * urand() - 0.1);
    }
    for (int i = 0; i < 50; i++)
        fmnn_tensor_data(wr)[i] = (float)irand(4);
    EXPECT_OK(fmnn_model_evaluate_metrics(m, xr, yr, wr, 16, v));
    ASSERT_CLOSE(v[4], keras_auc(200, fmnn_tensor_data(xr), fmnn_tensor_data(yr), NULL, 50, 2), 1e-6, 0.0);
    fmnn_tensor_free(xr);
    fmnn_tensor_free(yr);
    fmnn_tensor_free(wr);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(w);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_metric_defaults_errors_and_files)
{
    /* A regression model reports no accuracy. */
    rng_seed(42);
    fmnn_model *reg = identity_model(2, FMNN_LOSS_MSE);
    fmnn_tensor *x = random_normal(8, 2), *y = random_normal(8, 2);
    float loss = NAN, acc = 0.0f;
    EXPECT_OK(fmnn_model_evaluate(reg, x, y, 0, &loss, &acc));
    ck_assert(isfinite(loss) && isnan(acc));
    fmnn_history *h = NULL;
    fmnn_fit_options fo = quiet_options(4, 1, 0);
    EXPECT_OK(fmnn_model_fit(reg, x, y, &fo, &h));
    ck_assert_ptr_null(h->accuracy);
    ck_assert_int_eq(h->n_metrics, 0);
    fmnn_history_free(h);
    fmnn_model_free(reg);

    fmnn_model *m = identity_model(4, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS);
    EXPECT_ERROR(fmnn_model_set_metrics(m, 1, &(fmnn_metric){ .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY,
                                                               .k = -1 }),
                 FMNN_EINVAL, "k must be >= 1");
    EXPECT_ERROR(fmnn_model_set_metrics(m, 1, &(fmnn_metric){ .kind = FMNN_METRIC_ACCURACY, .k = 2 }),
                 FMNN_EINVAL, "top-k only");
    const fmnn_metric twice[] = { { .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY },
                                  { .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 5 } };
    EXPECT_ERROR(fmnn_model_set_metrics(m, 2, twice), FMNN_EINVAL, "repeats metric 0");
    EXPECT_ERROR(fmnn_model_set_metrics(m, 1, &(fmnn_metric){ .kind = FMNN_METRIC_MAE }), FMNN_EINVAL,
                 "class indices");
    fmnn_metric many[FMNN_MAX_METRICS + 1];
    for (int i = 0; i <= FMNN_MAX_METRICS; i++)
        many[i] = (fmnn_metric){ .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = i + 1 };
    EXPECT_ERROR(fmnn_model_set_metrics(m, FMNN_MAX_METRICS + 1, many), FMNN_EINVAL, "count must be in 0..8");
    EXPECT_ERROR(fmnn_model_set_metrics(m, 1, &(fmnn_metric){ .kind = FMNN_METRIC_PRECISION, .threshold = 1.0f }),
                 FMNN_EINVAL, "threshold");
    EXPECT_ERROR(fmnn_model_set_metrics(m, 1, &(fmnn_metric){ .kind = FMNN_METRIC_AUC, .num_thresholds = 1 }),
                 FMNN_EINVAL, "num_thresholds");
    /* Nothing changed: still the default accuracy. */
    ck_assert_int_eq(fmnn_model_metric_count(m), 1);
    ck_assert_str_eq(fmnn_model_metric_name(m, 0), "accuracy");
    EXPECT_OK(fmnn_model_set_metrics(m, FMNN_MAX_METRICS, many));

    /* Chosen metrics are saved and come back. */
    const fmnn_metric chosen[] = { { .kind = FMNN_METRIC_TOP_K_CATEGORICAL_ACCURACY, .k = 2 },
                                   { .kind = FMNN_METRIC_ACCURACY },
                                   { .kind = FMNN_METRIC_AUC, .num_thresholds = 7 },
                                   { .kind = FMNN_METRIC_PRECISION, .threshold = 0.25f } };
    EXPECT_OK(fmnn_model_set_metrics(m, 4, chosen));
    scratch_dir();
    char path[128];
    scratch_path(path, sizeof path, "metrics.fmnn");
    EXPECT_OK(fmnn_model_save(m, path, 0));
    fmnn_model *loaded = NULL;
    EXPECT_OK(fmnn_model_load(&loaded, path));
    ck_assert_int_eq(fmnn_model_metric_count(loaded), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(fmnn_model_metric_name(loaded, i), fmnn_model_metric_name(m, i));
    fmnn_tensor *xs = random_normal(12, 4), *ys = vector(12, NULL);
    for (int i = 0; i < 12; i++)
        fmnn_tensor_data(ys)[i] = (float)irand(4);
    float a[5], b[5];
    EXPECT_OK(fmnn_model_evaluate_metrics(m, xs, ys, NULL, 0, a));
    EXPECT_OK(fmnn_model_evaluate_metrics(loaded, xs, ys, NULL, 0, b));
    ck_assert(!memcmp(a, b, sizeof a));
    /* Choosing none is kept too. */
    EXPECT_OK(fmnn_model_set_metrics(m, 0, NULL));
    EXPECT_OK(fmnn_model_save(m, path, 0));
    fmnn_model_free(loaded);
    EXPECT_OK(fmnn_model_load(&loaded, path));
    ck_assert_int_eq(fmnn_model_metric_count(loaded), 0);
    fmnn_model_free(loaded);
    scratch_remove();
    fmnn_tensor_free(xs);
    fmnn_tensor_free(ys);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- 5. class and sample weights -------------------------------------------------- */

START_TEST(test_class_weight_is_sample_weight)
{
    rng_seed(51);
    fmnn_tensor *x = random_normal(24, 5), *y = random_one_hot(24, 3);
    const float cw[3] = { 1.0f, 3.0f, 0.5f };
    fmnn_tensor *sw = vector(24, NULL);
    for (int i = 0; i < 24; i++)
        for (int c = 0; c < 3; c++)
            if (fmnn_tensor_data(y)[i * 3 + c] == 1.0f)
                fmnn_tensor_data(sw)[i] = cw[c];
    fmnn_model *by_class = dropout_classifier(), *by_sample = dropout_classifier(), *plain = dropout_classifier();
    fmnn_fit_options fo = quiet_options(5, 3, 1);
    EXPECT_OK(fmnn_model_fit(plain, x, y, &fo, NULL));
    fo.class_weight = cw;
    fo.n_class_weight = 3;
    fmnn_history *h1 = NULL, *h2 = NULL;
    EXPECT_OK(fmnn_model_fit(by_class, x, y, &fo, &h1));
    fo.class_weight = NULL;
    fo.n_class_weight = 0;
    fo.sample_weight = sw;
    EXPECT_OK(fmnn_model_fit(by_sample, x, y, &fo, &h2));
    snapshot a = take(by_class), b = take(by_sample), c = take(plain);
    ck_assert_msg(same(a, b), "class_weight and the same sample_weight trained differently");
    ck_assert(!same(a, c));
    for (int e = 0; e < 3; e++)
        ASSERT_SAME_FLOAT(h1->loss[e], h2->loss[e]);
    fmnn_history_free(h1);
    fmnn_history_free(h2);

    fo.class_weight = cw;
    fo.n_class_weight = 3;
    EXPECT_ERROR(fmnn_model_fit(plain, x, y, &fo, NULL), FMNN_EINVAL, "class_weight and sample_weight");
    fo.sample_weight = NULL;
    const float bad_cw[3] = { 1.0f, -2.0f, 1.0f };
    fo.class_weight = bad_cw;
    EXPECT_ERROR(fmnn_model_fit(plain, x, y, &fo, NULL), FMNN_EINVAL, "class_weight[1] = -2");
    const float nan_cw[3] = { 1.0f, 1.0f, NAN };
    fo.class_weight = nan_cw;
    EXPECT_ERROR(fmnn_model_fit(plain, x, y, &fo, NULL), FMNN_EINVAL, "class_weight[2] = nan");
    fo.class_weight = NULL;
    fo.n_class_weight = 0;
    fo.sample_weight = sw;
    fmnn_tensor_data(sw)[4] = -1.0f;
    EXPECT_ERROR(fmnn_model_fit(plain, x, y, &fo, NULL), FMNN_EINVAL, "sample_weight[4] = -1");
    fmnn_tensor_data(sw)[4] = NAN;
    EXPECT_ERROR(fmnn_model_fit(plain, x, y, &fo, NULL), FMNN_EINVAL, "sample_weight[4] = nan");
    fmnn_tensor_data(sw)[4] = INFINITY;
    EXPECT_ERROR(fmnn_model_fit(plain, x, y, &fo, NULL), FMNN_EINVAL, "sample_weight[4] = inf");
    fmnn_tensor_data(sw)[4] = 1.0f;
    EXPECT_ERROR(fmnn_model_evaluate_metrics(plain, x, y, (fmnn_tensor_data(sw)[5] = -3.0f, sw), 0,
                                             (float[2]){ 0 }),
                 FMNN_EINVAL, "sample_weight[5] = -3");
    /* None of the refused calls trained. */
    ck_assert(same_as(plain, c));
    free(a.v);
    free(b.v);
    free(c.v);
    fmnn_model_free(by_class);
    fmnn_model_free(by_sample);
    fmnn_model_free(plain);
    fmnn_tensor_free(sw);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

START_TEST(test_validation_split_splits_weights)
{
    rng_seed(52);
    fmnn_tensor *x = random_normal(20, 5), *y = random_one_hot(20, 3), *sw = vector(20, NULL);
    for (int i = 0; i < 20; i++)
        fmnn_tensor_data(sw)[i] = (float)(0.25 + 2.0 * urand());
    fmnn_model *m = bn_classifier();
    fmnn_fit_options fo = quiet_options(5, 2, 1);
    fo.validation_split = 0.25f; /* the last 5 samples */
    fo.sample_weight = sw;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    fmnn_tensor *xt = slice(x, 15, 5), *yt = slice(y, 15, 5), *wt = slice(sw, 15, 5);
    float v[2], unweighted[2];
    EXPECT_OK(fmnn_model_evaluate_metrics(m, xt, yt, wt, 5, v));
    EXPECT_OK(fmnn_model_evaluate_metrics(m, xt, yt, NULL, 5, unweighted));
    ASSERT_SAME_FLOAT(h->val_loss[1], v[0]);
    ASSERT_SAME_FLOAT(h->val_accuracy[1], v[1]);
    ck_assert(v[0] != unweighted[0]);
    fmnn_history_free(h);
    fmnn_tensor_free(xt);
    fmnn_tensor_free(yt);
    fmnn_tensor_free(wt);
    fmnn_tensor_free(sw);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- 6. validation_data -------------------------------------------------------------- */

START_TEST(test_validation_data)
{
    rng_seed(61);
    fmnn_tensor *x = random_normal(24, 5), *y = random_one_hot(24, 3);
    fmnn_tensor *xv = random_normal(10, 5), *yv = random_one_hot(10, 3);
    fmnn_model *m = bn_classifier();
    fmnn_fit_options fo = quiet_options(6, 2, 1);
    fo.x_val = xv;
    fo.y_val = yv;
    fo.validation_split = 0.5f; /* validation_data wins, as in Keras */
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert(h->has_validation);
    ck_assert_int_eq(h->epochs, 2);
    float loss, acc;
    EXPECT_OK(fmnn_model_evaluate(m, xv, yv, 6, &loss, &acc));
    ASSERT_SAME_FLOAT(h->val_loss[1], loss);
    ASSERT_SAME_FLOAT(h->val_accuracy[1], acc);
    fmnn_history_free(h);
    int64_t steps;
    EXPECT_OK(fmnn_model_trained(m, NULL, &steps));
    ck_assert(steps == 8); /* every sample trained: 4 batches an epoch */

    fo.y_val = NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EINVAL, "x_val and y_val");
    fo.x_val = NULL;
    fo.y_val = yv;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EINVAL, "x_val and y_val");
    fo.x_val = xv;
    fo.y_val = y;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_ESHAPE, "y_val");
    fmnn_tensor_free(xv);
    fmnn_tensor_free(yv);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- 7. the *_on_batch calls ------------------------------------------------------------ */

START_TEST(test_on_batch)
{
    rng_seed(71);
    fmnn_tensor *x = random_normal(12, 5), *y = random_one_hot(12, 3), *sw = vector(12, NULL);
    for (int i = 0; i < 12; i++)
        fmnn_tensor_data(sw)[i] = (float)(1 + i % 3);
    const fmnn_metric metrics[] = { { .kind = FMNN_METRIC_ACCURACY }, { .kind = FMNN_METRIC_AUC } };
    for (int weighted = 0; weighted <= 1; weighted++) {
        fmnn_model *a = dropout_classifier(), *b = dropout_classifier();
        EXPECT_OK(fmnn_model_set_metrics(a, 2, metrics));
        EXPECT_OK(fmnn_model_set_metrics(b, 2, metrics));
        float v[3];
        EXPECT_OK(fmnn_model_train_on_batch(a, x, y, weighted ? sw : NULL, 77, v));
        fmnn_fit_options fo = quiet_options(12, 1, 0);
        fo.seed = 77;
        fo.sample_weight = weighted ? sw : NULL;
        fmnn_history *h = NULL;
        EXPECT_OK(fmnn_model_fit(b, x, y, &fo, &h));
        snapshot sa = take(a), sb = take(b);
        ck_assert_msg(same(sa, sb), "train_on_batch differs from fit on one batch");
        ASSERT_SAME_FLOAT(v[0], h->loss[0]);
        ASSERT_SAME_FLOAT(v[1], h->metrics[0][0]);
        ASSERT_SAME_FLOAT(v[2], h->metrics[1][0]);
        int64_t e, s;
        EXPECT_OK(fmnn_model_trained(a, &e, &s));
        ck_assert(e == 0 && s == 1);
        fmnn_history_free(h);

        float t[3], u[3];
        EXPECT_OK(fmnn_model_test_on_batch(a, x, y, weighted ? sw : NULL, t));
        EXPECT_OK(fmnn_model_evaluate_metrics(a, x, y, weighted ? sw : NULL, 12, u));
        ck_assert(!memcmp(t, u, sizeof t));
        fmnn_tensor *p1 = NULL, *p2 = NULL;
        EXPECT_OK(fmnn_model_predict_on_batch(a, x, &p1));
        EXPECT_OK(fmnn_model_predict(a, x, 0, &p2));
        ck_assert_uint_eq(fmnn_tensor_size(p1), fmnn_tensor_size(p2));
        ck_assert(!memcmp(fmnn_tensor_const_data(p1), fmnn_tensor_const_data(p2),
                          fmnn_tensor_size(p1) * sizeof(float)));
        fmnn_tensor_free(p1);
        fmnn_tensor_free(p2);
        free(sa.v);
        free(sb.v);
        fmnn_model_free(a);
        fmnn_model_free(b);
    }
    fmnn_tensor_free(sw);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/* ---- 8. CSVLogger ----------------------------------------------------------------------- */

/* Reads the rows of a CSV file written by CSVLogger: the header into
 * header, the values into v[row][col]. */
static int read_csv(const char *path, char *header, size_t size, float v[][5], int max_rows, int *headers)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int rows = 0;
    *headers = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "epoch", 5)) {
            snprintf(header, size, "%s", line);
            header[strcspn(header, "\n")] = '\0';
            (*headers)++;
            continue;
        }
        ck_assert_int_lt(rows, max_rows);
        int n = sscanf(line, "%g,%g,%g,%g,%g", &v[rows][0], &v[rows][1], &v[rows][2], &v[rows][3], &v[rows][4]);
        ck_assert_msg(n == 5, "a row of %d values: %s", n, line);
        rows++;
    }
    fclose(f);
    return rows;
}

START_TEST(test_csv_logger)
{
    scratch_dir();
    char path[128];
    scratch_path(path, sizeof path, "log.csv");
    rng_seed(81);
    fmnn_tensor *x = random_normal(20, 5), *y = random_one_hot(20, 3);
    fmnn_model *m = bn_classifier();
    fmnn_callback *csv = NOT_NULL;
    EXPECT_OK(fmnn_csv_logger(&csv, path, ',', 0));
    fmnn_fit_options fo = quiet_options(5, 3, 1);
    fo.validation_split = 0.25f;
    fo.callbacks = &csv;
    fo.n_callbacks = 1;
    fmnn_history *h1 = NULL, *h2 = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h1));
    char header[512] = "";
    float v[8][5];
    int headers;
    int rows = read_csv(path, header, sizeof header, v, 8, &headers);
    ck_assert_str_eq(header, "epoch,accuracy,loss,val_accuracy,val_loss");
    ck_assert_int_eq(headers, 1);
    ck_assert_int_eq(rows, 3);
    for (int e = 0; e < 3; e++) {
        ck_assert(v[e][0] == (float)e);
        ck_assert(v[e][1] == h1->accuracy[e]);
        ck_assert(v[e][2] == h1->loss[e]);
        ck_assert(v[e][3] == h1->val_accuracy[e]);
        ck_assert(v[e][4] == h1->val_loss[e]);
    }
    fmnn_callback_free(csv);

    /* Appending: more rows, no second header. */
    EXPECT_OK(fmnn_csv_logger(&csv, path, ',', 1));
    fo.epochs = 2;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h2));
    rows = read_csv(path, header, sizeof header, v, 8, &headers);
    ck_assert_int_eq(headers, 1);
    ck_assert_int_eq(rows, 5);
    for (int e = 0; e < 3; e++)
        ck_assert(v[e][2] == h1->loss[e]);
    for (int e = 0; e < 2; e++) {
        ck_assert(v[3 + e][0] == (float)e);
        ck_assert(v[3 + e][2] == h2->loss[e]);
        ck_assert(v[3 + e][4] == h2->val_loss[e]);
    }
    fmnn_history_free(h1);
    fmnn_history_free(h2);
    fmnn_callback_free(csv);

    /* Appending to a file that is not there writes the header. */
    char fresh[128];
    scratch_path(fresh, sizeof fresh, "fresh.csv");
    EXPECT_OK(fmnn_csv_logger(&csv, fresh, ',', 1));
    fo.epochs = 1;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    rows = read_csv(fresh, header, sizeof header, v, 8, &headers);
    ck_assert_int_eq(headers, 1);
    ck_assert_int_eq(rows, 1);
    fmnn_callback_free(csv);

    /* A file that cannot be written. */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no-such-dir/log.csv", scratch);
    EXPECT_OK(fmnn_csv_logger(&csv, bad, ',', 0));
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EIO, bad);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "CSVLogger"));
    fmnn_callback_free(csv);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
    scratch_remove();
}
END_TEST

/* ---- 9. TerminateOnNaN ------------------------------------------------------------------- */

/* tests/check_train.c's test_nan_during_training: SGD at lr 1e30 on MSE
 * with large targets overflows the weights within a few steps. */
START_TEST(test_terminate_on_nan)
{
    fmnn_tensor *x = matrix(4, 1), *y = matrix(4, 1);
    for (int i = 0; i < 4; i++) {
        fmnn_tensor_data(x)[i] = 1.0f;
        fmnn_tensor_data(y)[i] = 1000.0f;
    }
    for (int with = 0; with <= 1; with++) {
        fmnn_optimizer o = fmnn_sgd(1e30f, 0.0f);
        fmnn_model *m = new_model(1, (int[]){ 1 });
        add(m, fmnn_dense(1, NULL));
        EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1));
        size_t n;
        float *w = fmnn_model_weights(m, &n);
        w[0] = 0.5f;
        w[1] = 0.0f;
        fmnn_callback *nan = NOT_NULL;
        EXPECT_OK(fmnn_terminate_on_nan(&nan));
        fmnn_fit_options fo = quiet_options(1, 5, 0);
        fo.callbacks = &nan;
        fo.n_callbacks = with;
        fmnn_history *h = NULL;
        if (with) {
            EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
            ck_assert_int_eq(h->stop_reason, FMNN_STOP_CALLBACK);
            ck_assert_str_eq(h->stopped_by, "TerminateOnNaN");
            ck_assert_int_ge(h->stopped_epoch, 0);
            ck_assert_int_lt(h->stopped_epoch, 5);
        } else {
            EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_ENUMERIC, "last good step");
            ck_assert_int_eq(h->stop_reason, FMNN_STOP_ERROR);
            ck_assert_str_eq(h->stopped_by, "");
        }
        ck_assert(all_finite(fmnn_model_weights(m, &n), n));
        fmnn_history_free(h);
        fmnn_callback_free(nan);
        fmnn_model_free(m);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/* ---- 10. ReduceLROnPlateau ----------------------------------------------------------------- */

START_TEST(test_reduce_lr_on_plateau)
{
    rng_seed(101);
    fmnn_tensor *x = random_normal(16, 5), *y = random_one_hot(16, 3);
    fmnn_model *m = tiny_classifier();
    const float lr0 = 0.01f;
    EXPECT_OK(fmnn_model_set_learning_rate(m, lr0));
    fmnn_reduce_lr_options ro = FMNN_REDUCE_LR_INIT;
    ro.monitor = "loss";
    ro.mode = FMNN_MODE_MAX; /* a falling loss never improves after the first epoch */
    ro.patience = 1;
    ro.factor = 0.5f;
    ro.cooldown = 2;
    ro.min_lr = 0.002f;
    fmnn_callback *reduce = NOT_NULL;
    EXPECT_OK(fmnn_reduce_lr_on_plateau(&reduce, &ro));
    epoch_log log = { 0 };
    fmnn_callback *rec = callback("recorder", log_epochs, &log);
    fmnn_callback *list[] = { reduce, rec };
    const int epochs = 12;
    fmnn_fit_options fo = quiet_options(4, epochs, 1);
    fo.callbacks = list;
    fo.n_callbacks = 2;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert_int_eq(h->epochs, epochs);

    /* Keras 3's on_epoch_end, over the losses of this fit. */
    float lr = lr0, best = 0.0f;
    int has_best = 0, wait = 0, cooldown = 0, reductions = 0;
    for (int e = 0; e < epochs; e++) {
        ASSERT_SAME_FLOAT(h->learning_rate[e], lr); /* the rate the epoch trained with */
        if (cooldown > 0) {
            cooldown--;
            wait = 0;
        }
        if (keras_improves(0, (double)ro.min_delta, h->loss[e], has_best, best)) {
            best = h->loss[e];
            has_best = 1;
            wait = 0;
        } else if (cooldown == 0 && ++wait >= ro.patience && lr > ro.min_lr) {
            lr = (float)fmax((double)lr * ro.factor, (double)ro.min_lr);
            cooldown = ro.cooldown;
            wait = 0;
            reductions++;
        }
        ASSERT_SAME_FLOAT(log.lr_after[e], lr);
    }
    float now;
    EXPECT_OK(fmnn_model_learning_rate(m, &now));
    ASSERT_SAME_FLOAT(now, lr);
    /* 0.01 -> 0.005 -> 0.0025 -> 0.002 (min_lr) when the loss falls
     * throughout: a reduction every other epoch from epoch 1, since the
     * cooldown counter steps down before the wait is counted. */
    ck_assert_int_ge(reductions, 2);
    int falling = 1;
    for (int e = 1; e < epochs; e++)
        falling &= h->loss[e] < h->loss[e - 1];
    if (falling) {
        static const float want[12] = { 0.01f, 0.005f, 0.005f, 0.0025f, 0.0025f, 0.002f,
                                        0.002f, 0.002f, 0.002f, 0.002f, 0.002f, 0.002f };
        for (int e = 0; e < epochs; e++)
            ASSERT_SAME_FLOAT(log.lr_after[e], want[e]);
    }
    fmnn_history_free(h);
    epoch_log_free(&log);

    /* With a schedule, the rate is not the callback's to change. */
    fmnn_optimizer o = fmnn_adam();
    o.schedule = fmnn_exponential_decay(10, 0.9f, 0);
    EXPECT_OK(fmnn_model_set_optimizer(m, &o));
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EINVAL, "schedule");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "ReduceLROnPlateau"));
    fmnn_callback_free(reduce);
    fmnn_callback_free(rec);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- 11. what a callback may call ------------------------------------------------------------ */

typedef struct inside {
    const fmnn_tensor *x, *y;
    const char *path;
    int done;
    int fit, set_optimizer, set_metrics, set_trainable, train_on_batch;
    int save, evaluate, set_lr, predict;
    float loss;
} inside;

static int call_inside(const fmnn_progress *p, void *data)
{
    inside *in = data;
    if (p->event != FMNN_EVENT_BATCH_END || in->done)
        return 0;
    in->done = 1;
    fmnn_model *m = p->model;
    fmnn_fit_options fo = FMNN_FIT_OPTIONS_INIT;
    fmnn_optimizer o;
    fmnn_model_get_optimizer(m, &o);
    in->fit = fmnn_model_fit(m, in->x, in->y, &fo, NULL);
    in->set_optimizer = fmnn_model_set_optimizer(m, &o);
    in->set_metrics = fmnn_model_set_metrics(m, 0, NULL);
    in->set_trainable = fmnn_model_set_layer_trainable(m, 0, 0);
    in->train_on_batch = fmnn_model_train_on_batch(m, in->x, in->y, NULL, 1, NULL);
    in->save = fmnn_model_save(m, in->path, FMNN_SAVE_OPTIMIZER);
    in->evaluate = fmnn_model_evaluate(m, in->x, in->y, 64, &in->loss, NULL);
    in->set_lr = fmnn_model_set_learning_rate(m, 0.002f);
    fmnn_tensor *out = NULL;
    in->predict = fmnn_model_predict(m, in->x, 0, &out);
    fmnn_tensor_free(out);
    return 0;
}

static int fail_in_epoch_2(const fmnn_progress *p, void *data)
{
    (void)data;
    return p->event == FMNN_EVENT_EPOCH_END && p->epoch == 1 ? FMNN_EIO : 0;
}

/* Returns the status of a save that cannot succeed. */
static int save_nowhere(const fmnn_progress *p, void *data)
{
    return p->event == FMNN_EVENT_EPOCH_END ? fmnn_model_save(p->model, data, 0) : 0;
}

START_TEST(test_callback_contract)
{
    scratch_dir();
    char path[128];
    scratch_path(path, sizeof path, "inside.fmnn");
    rng_seed(111);
    fmnn_tensor *x = random_normal(16, 5), *y = random_one_hot(16, 3);
    fmnn_model *m = bn_classifier();
    inside in = { .x = x, .y = y, .path = path };
    fmnn_callback *cb = callback("inside", call_inside, &in);
    fmnn_fit_options fo = quiet_options(4, 2, 1);
    fo.callbacks = &cb;
    fo.n_callbacks = 1;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, &h));
    ck_assert(in.done);
    ck_assert_int_eq(in.fit, FMNN_ESTATE);
    ck_assert_int_eq(in.set_optimizer, FMNN_ESTATE);
    ck_assert_int_eq(in.set_metrics, FMNN_ESTATE);
    ck_assert_int_eq(in.set_trainable, FMNN_ESTATE);
    ck_assert_int_eq(in.train_on_batch, FMNN_ESTATE);
    ck_assert_int_eq(in.save, FMNN_OK);
    ck_assert_int_eq(in.evaluate, FMNN_OK);
    ck_assert(isfinite(in.loss));
    ck_assert_int_eq(in.set_lr, FMNN_OK);
    ck_assert_int_eq(in.predict, FMNN_OK);
    /* The refused calls changed nothing; the rate set inside holds. */
    ck_assert_int_eq(h->epochs, 2);
    ck_assert_int_eq(h->stop_reason, FMNN_STOP_COMPLETED);
    ck_assert(h->learning_rate[0] == 0.002f);
    ck_assert_int_eq(fmnn_model_metric_count(m), 1);
    ck_assert_int_eq(fmnn_layer_trainable(fmnn_model_layer(m, 0)), 1);
    int64_t steps;
    EXPECT_OK(fmnn_model_trained(m, NULL, &steps));
    ck_assert(steps == 8);
    fmnn_model *saved = NULL;
    EXPECT_OK(fmnn_model_load(&saved, path)); /* a whole model, saved mid-epoch */
    fmnn_model_free(saved);
    fmnn_history_free(h);
    fmnn_callback_free(cb);

    /* A negative status fails fit with it, naming the callback. */
    cb = callback("my_failing_callback", fail_in_epoch_2, NULL);
    fo.callbacks = &cb;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, &h), FMNN_EIO, "my_failing_callback");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "epoch 2"));
    ck_assert_int_eq(h->stop_reason, FMNN_STOP_ERROR);
    ck_assert_int_eq(h->epochs, 2); /* its history row was written before the callbacks ran */
    fmnn_history_free(h);
    /* ... and as the options' function. */
    fo.n_callbacks = 0;
    fo.callback = fail_in_epoch_2;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EIO, "the callback");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), fmnn_strerror(FMNN_EIO)));
    fmnn_callback_free(cb);
    /* The message of the call that failed inside it comes along. */
    char nowhere[160];
    snprintf(nowhere, sizeof nowhere, "%s/no-such-dir/m.fmnn", scratch);
    cb = callback("saver", save_nowhere, nowhere);
    fo.callback = NULL;
    fo.n_callbacks = 1;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_EIO, "saver");
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), nowhere));
    fmnn_callback_free(cb);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
    scratch_remove();
}
END_TEST

/* ---- 12. where progress goes ---------------------------------------------------------------- */

/* Runs fit with stdout sent to a file; returns how many bytes it got. */
static long fit_stdout_bytes(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const fmnn_fit_options *fo)
{
    fflush(stdout);
    FILE *capture = tmpfile();
    ck_assert_ptr_nonnull(capture);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(capture), STDOUT_FILENO), 0);
    int rc = fmnn_model_fit(m, x, y, fo, NULL);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ck_assert_int_eq(rc, FMNN_OK);
    long bytes = (fseek(capture, 0, SEEK_END), ftell(capture));
    fclose(capture);
    return bytes;
}

START_TEST(test_progress_output)
{
    rng_seed(121);
    fmnn_tensor *x = random_normal(16, 5), *y = random_one_hot(16, 3);
    fmnn_model *m = tiny_classifier();
    fmnn_fit_options fo = FMNN_FIT_OPTIONS_INIT;
    fo.epochs = 2;
    fo.validation_split = 0.25f;
    ck_assert_int_eq(fo.verbose, 0);
    ck_assert_int_eq(fit_stdout_bytes(m, x, y, &fo), 0);
    /* The control: verbose 2 to stdout does print. */
    fo.verbose = 2;
    ck_assert_int_gt(fit_stdout_bytes(m, x, y, &fo), 0);

    FILE *stream = tmpfile();
    ck_assert_ptr_nonnull(stream);
    fo.progress_stream = stream;
    ck_assert_int_eq(fit_stdout_bytes(m, x, y, &fo), 0);
    char text[2048] = "";
    rewind(stream);
    size_t n = fread(text, 1, sizeof text - 1, stream);
    text[n] = '\0';
    fclose(stream);
    ck_assert_msg(strstr(text, "Epoch 1/2\n") && strstr(text, "Epoch 2/2\n"), "progress: %s", text);
    ck_assert_msg(strstr(text, " - accuracy: ") && strstr(text, " - loss: ") && strstr(text, " - val_loss: ") &&
                      strstr(text, " - val_accuracy: "),
                  "progress: %s", text);
    ck_assert_ptr_null(strchr(text, '\r')); /* one line per epoch */
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

static Suite *callbacks_suite(void)
{
    Suite *s = suite_create("callbacks");
    TCase *tc = tcase_create("callbacks");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_early_stopping_restores_best, 0, (int)(sizeof es_cases / sizeof *es_cases));
    tcase_add_test(tc, test_early_stopping_monitor_errors);
    tcase_add_loop_test(tc, test_resume_from_checkpoint, 0, 2);
    tcase_add_test(tc, test_checkpoint_survives_kills);
    tcase_add_test(tc, test_checkpoint_per_epoch_and_best_only);
    tcase_add_test(tc, test_save_keeps_trained_counts);
    tcase_add_test(tc, test_each_epoch_its_own_order);
    tcase_add_test(tc, test_csv_logger);
    tcase_add_test(tc, test_terminate_on_nan);
    tcase_add_test(tc, test_reduce_lr_on_plateau);
    tcase_add_test(tc, test_callback_contract);
    tcase_add_test(tc, test_progress_output);
    suite_add_tcase(s, tc);

    tc = tcase_create("metrics and weights");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_top_k_by_hand, 0, 2);
    tcase_add_test(tc, test_confusion_and_error_metrics_by_hand);
    tcase_add_test(tc, test_metric_defaults_errors_and_files);
    tcase_add_test(tc, test_class_weight_is_sample_weight);
    tcase_add_test(tc, test_validation_split_splits_weights);
    tcase_add_test(tc, test_validation_data);
    tcase_add_test(tc, test_on_batch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    fmnn_set_num_threads(2);
    SRunner *sr = srunner_create(callbacks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
