/*
 * check_backup.c - training that survives being stopped (lib/fit_state.c,
 * lib/callbacks/backup_and_restore.c, fit's resume and interrupt): a fit
 * saved with FMNN_SAVE_FIT_STATE at any batch or epoch end, loaded and
 * resumed, ends with the same bits (weights, optimizer state, counts,
 * history) as one that never stopped; so does one restarted through
 * BackupAndRestore with EarlyStopping, ReduceLROnPlateau and
 * ModelCheckpoint, whose states the backup keeps; a process SIGKILLed at
 * 20 random moments and restarted each time ends as an uninterrupted
 * one, byte for byte; a backup that does not fit the model or the fit is
 * refused with a message.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "fmnn.h"
#include "testdata.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------- */

/* The samples of a model: 48 rows of 5 values, or of 6x6x1 images. */
static void make_data(int images, fmnn_tensor **x, fmnn_tensor **y)
{
    rng_seed(31);
    *x = images ? tensor(4, (int[]){ 48, 6, 6, 1 }) : matrix(48, 5);
    float *d = fmnn_tensor_data(*x);
    for (size_t i = 0; i < fmnn_tensor_size(*x); i++)
        d[i] = (float)nrand();
    *y = random_one_hot(48, 3);
}

static fmnn_model *(*const builders[])(void) = { dropout_classifier, bn_classifier, augmented_cnn };

/* 4 epochs of 5 batches (36 training samples in batches of 8, the last
 * one short), 12 validation samples. */
static fmnn_fit_options options(void)
{
    fmnn_fit_options o = quiet_options(8, 4, 1);
    o.validation_split = 0.25f;
    return o;
}

/* Two histories with the same epochs and the same bits in every array. */
static void assert_same_history(const fmnn_history *a, const fmnn_history *b)
{
    ck_assert_int_eq(a->epochs, b->epochs);
    ck_assert_int_eq(a->initial_epoch, b->initial_epoch);
    ck_assert_int_eq(a->stop_reason, b->stop_reason);
    ck_assert_int_eq(a->stopped_epoch, b->stopped_epoch);
    ck_assert_str_eq(a->stopped_by, b->stopped_by);
    const size_t n = (size_t)a->epochs * sizeof(float);
    ck_assert_msg(!memcmp(a->loss, b->loss, n), "the losses differ");
    ck_assert(!memcmp(a->learning_rate, b->learning_rate, n));
    ck_assert(!memcmp(a->val_loss, b->val_loss, n));
    for (int k = 0; k < a->n_metrics; k++) {
        ck_assert_msg(!memcmp(a->metrics[k], b->metrics[k], n), "metric %s differs", a->metric_names[k]);
        ck_assert(!memcmp(a->val_metrics[k], b->val_metrics[k], n));
    }
}

/* The bytes of a file, malloc'd; *size receives their count. */
static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *da = slurp(a, &na), *db = slurp(b, &nb);
    const int same_bytes = na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same_bytes;
}

/* Saves the model and everything the optimizer has, to compare bytes. */
static void save_all(fmnn_model *m, const char *name, char *path, size_t size)
{
    scratch_path(path, size, name);
    EXPECT_OK(fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER));
}

/* ---- resuming a fit saved at any batch ----------------------------------- */

/* A callback that, at global step `at` (or at the end of epoch `at` when
 * at_epoch_end), saves the fit's state to path (unless NULL) and raises
 * the interrupt flag; with crash, fails there instead (FMNN_EIO), as a
 * process killed before the backups see the event. */
typedef struct stopper {
    int at, at_epoch_end, steps;
    const char *path;
    volatile sig_atomic_t flag;
    int crash;
} stopper;

static int save_and_interrupt(const fmnn_progress *p, void *data)
{
    stopper *s = data;
    const int now = p->event == FMNN_EVENT_BATCH_END ? ++s->steps == s->at && !s->at_epoch_end
                    : p->event == FMNN_EVENT_EPOCH_END ? s->at_epoch_end && p->epoch == s->at
                                                       : 0;
    if (!now)
        return 0;
    if (s->crash)
        return FMNN_EIO;
    int err = s->path ? fmnn_model_save(p->model, s->path, FMNN_SAVE_FIT_STATE) : FMNN_OK;
    s->flag = 1;
    return err;
}

/* What callbacks are told at each epoch's end and at TRAIN_END, to
 * compare a resumed fit's with an uninterrupted one's. */
typedef struct told {
    int seen[8];                  /* EPOCH_END of epoch e was seen */
    float values[8][6];           /* epoch, batch, loss, accuracy, val_loss, val_accuracy */
    float end[6];                 /* at TRAIN_END */
} told;

static void keep_told(float *v, const fmnn_progress *p)
{
    const float values[6] = { (float)p->epoch, (float)p->batch, p->loss, p->accuracy, p->val_loss, p->val_accuracy };
    memcpy(v, values, sizeof values);
}

static int record_told(const fmnn_progress *p, void *data)
{
    told *t = data;
    if (p->event == FMNN_EVENT_EPOCH_END && p->epoch < 8) {
        t->seen[p->epoch] = 1;
        keep_told(t->values[p->epoch], p);
    } else if (p->event == FMNN_EVENT_TRAIN_END) {
        keep_told(t->end, p);
    }
    return 0;
}

/* The resumed fit was told what the uninterrupted one was, at every
 * epoch end it saw and at TRAIN_END. */
static void assert_same_told(const told *whole, const told *resumed, int point)
{
    for (int e = 0; e < 8; e++)
        if (resumed->seen[e])
            ck_assert_msg(!memcmp(whole->values[e], resumed->values[e], sizeof whole->values[e]),
                          "point %d: EPOCH_END %d was told other values", point, e);
    ck_assert_msg(!memcmp(whole->end, resumed->end, sizeof whole->end), "point %d: TRAIN_END was told %g %g %g %g, "
                  "not %g %g %g %g", point, (double)resumed->end[0], (double)resumed->end[1],
                  (double)resumed->end[2], (double)resumed->end[3], (double)whole->end[0], (double)whole->end[1],
                  (double)whole->end[2], (double)whole->end[3]);
}

/* Interrupts a fit of the Dropout classifier after global step `step`,
 * saving its state to path; the message must contain needle. */
static void interrupted_fit(const char *path, int step, const fmnn_tensor *x, const fmnn_tensor *y, const char *needle)
{
    stopper s = { step, 0, 0, path, 0, 0 };
    fmnn_model *m = dropout_classifier();
    fmnn_fit_options fo = options();
    fo.callback = save_and_interrupt;
    fo.user_data = &s;
    fo.interrupt = &s.flag;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &fo, NULL), FMNN_ECANCELED, needle);
    fmnn_model_free(m);
}

/* _i picks the model.  Every batch end and every epoch end: a fit saved
 * there and interrupted, loaded into a new model and resumed, ends with
 * the weights, optimizer state, counts and history of the fit that was
 * never stopped. */
START_TEST(test_resume_at_every_batch)
{
    scratch_dir();
    fmnn_tensor *x, *y;
    make_data(_i == 2, &x, &y);
    fmnn_model *whole = builders[_i]();
    fmnn_fit_options fo = options();
    told told_whole;
    memset(&told_whole, 0, sizeof told_whole);
    fo.callback = record_told;
    fo.user_data = &told_whole;
    fmnn_history *expected = NULL;
    EXPECT_OK(fmnn_model_fit(whole, x, y, &fo, &expected));
    char want[256], got[256], path[256];
    save_all(whole, "whole.fmnn", want, sizeof want);
    scratch_path(path, sizeof path, "state.fmnn");

    for (int point = 0; point < 4 * 5 + 4; point++) {
        /* points 0..19: after global step point + 1; 20..23: after epoch point - 20 */
        stopper s = { point < 20 ? point + 1 : point - 20, point >= 20, 0, path, 0, 0 };
        fmnn_model *first = builders[_i]();
        fmnn_fit_options stop = options();
        stop.callback = save_and_interrupt;
        stop.user_data = &s;
        stop.interrupt = &s.flag;
        fmnn_history *partial = NULL;
        const int last_batch_of_last_epoch = point == 19;
        const int status = fmnn_model_fit(first, x, y, &stop, &partial);
        /* After an epoch's last batch the epoch ends first; after the last
         * epoch nothing is left to interrupt. */
        ck_assert_int_eq(status, last_batch_of_last_epoch || point == 23 ? FMNN_OK : FMNN_ECANCELED);
        if (status == FMNN_ECANCELED) {
            ck_assert_int_eq(partial->stop_reason, FMNN_STOP_INTERRUPTED);
            ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "interrupted"));
        }
        fmnn_history_free(partial);
        fmnn_model_free(first);

        fmnn_model *resumed = NULL;
        EXPECT_OK(fmnn_model_load(&resumed, path));
        fmnn_fit_options go_on = options();
        go_on.resume = 1;
        told told_resumed;
        memset(&told_resumed, 0, sizeof told_resumed);
        go_on.callback = record_told;
        go_on.user_data = &told_resumed;
        fmnn_history *h = NULL;
        EXPECT_OK(fmnn_model_fit(resumed, x, y, &go_on, &h));
        assert_same_told(&told_whole, &told_resumed, point);
        save_all(resumed, "resumed.fmnn", got, sizeof got);
        ck_assert_msg(same_file(want, got), "model %d resumed at point %d differs from the fit never stopped", _i,
                      point);
        assert_same_history(expected, h);
        fmnn_history_free(h);
        fmnn_model_free(resumed);
    }
    fmnn_history_free(expected);
    fmnn_model_free(whole);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* A file saved mid-fit loads and saves back to the same bytes, state and
 * all; saved without FMNN_SAVE_FIT_STATE it has no state, and resume
 * then starts afresh, as does a fit without resume. */
START_TEST(test_fit_state_in_files)
{
    scratch_dir();
    fmnn_tensor *x, *y;
    make_data(0, &x, &y);
    char path[256], again[256], plain[256];
    scratch_path(path, sizeof path, "state.fmnn");
    scratch_path(again, sizeof again, "again.fmnn");
    scratch_path(plain, sizeof plain, "plain.fmnn");
    interrupted_fit(path, 7, x, y, "epoch 2 of 4 (index 1) after batch 2 of 5");
    fmnn_model *m = NULL;
    EXPECT_OK(fmnn_model_load(&m, path));
    EXPECT_OK(fmnn_model_save(m, again, FMNN_SAVE_FIT_STATE));
    ck_assert_msg(same_file(path, again), "a fit state does not save back to its bytes");
    EXPECT_OK(fmnn_model_save(m, plain, FMNN_SAVE_OPTIMIZER));
    fmnn_model *no_state = NULL;
    EXPECT_OK(fmnn_model_load(&no_state, plain));

    /* Other metrics than the saved fit's: its sums no longer fit, and it
     * is neither resumed nor saved again. */
    fmnn_model *other = NULL;
    EXPECT_OK(fmnn_model_load(&other, path));
    const fmnn_metric two[] = { { .kind = FMNN_METRIC_ACCURACY }, { .kind = FMNN_METRIC_AUC } };
    EXPECT_OK(fmnn_model_set_metrics(other, 2, two));
    fmnn_fit_options go_on = options();
    go_on.resume = 1;
    fmnn_history *hist = NULL;
    EXPECT_OK(fmnn_model_fit(other, x, y, &go_on, &hist)); /* a fresh fit: nothing is left to resume */
    ck_assert_int_eq(hist->initial_epoch, 0);
    ck_assert_int_eq(hist->epochs, 4);
    fmnn_history_free(hist);
    fmnn_model_free(other);
    EXPECT_OK(fmnn_model_save(no_state, again, FMNN_SAVE_FIT_STATE));
    ck_assert_msg(same_file(plain, again), "a file without a fit state gained one");

    /* Without resume the fit starts at initial_epoch and drops the state. */
    fmnn_fit_options fresh = options();
    fresh.epochs = 1;
    fmnn_history *h = NULL;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fresh, &h));
    ck_assert_int_eq(h->epochs, 1);
    ck_assert_int_eq(h->initial_epoch, 0);
    fmnn_history_free(h);
    EXPECT_OK(fmnn_model_save(m, again, FMNN_SAVE_FIT_STATE));
    EXPECT_OK(fmnn_model_save(m, plain, FMNN_SAVE_OPTIMIZER));
    ck_assert_msg(same_file(plain, again), "a fit without resume kept the saved state");

    fmnn_model_free(m);
    fmnn_model_free(no_state);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* Writes bytes as path, the header's payload size and checksum made
 * right for them, so that the loader looks at what the payload says. */
static void write_with_header(const char *path, unsigned char *bytes, size_t n)
{
    const uint64_t payload = n - 32;
    for (int i = 0; i < 8; i++)
        bytes[16 + i] = (unsigned char)(payload >> (8 * i));
    const uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), bytes + 32, (uInt)payload);
    for (int i = 0; i < 4; i++)
        bytes[24 + i] = (unsigned char)(crc >> (8 * i));
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* A fit record cut short anywhere, or with any of its last 300 bytes
 * changed (the checksum made right), loads as a model or is refused with
 * FMNN_EFORMAT naming the file: never anything else.  The cuts and the
 * impossible counts are refused. */
START_TEST(test_bad_fit_records)
{
    scratch_dir();
    fmnn_tensor *x, *y;
    make_data(0, &x, &y);
    char path[256], bad[256];
    scratch_path(path, sizeof path, "state.fmnn");
    scratch_path(bad, sizeof bad, "bad.fmnn");
    interrupted_fit(path, 12, x, y, "interrupted");
    size_t n;
    unsigned char *good = slurp(path, &n), *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    fmnn_model *m = NULL;
    for (size_t cut = 1; cut <= 300; cut++) {
        memcpy(b, good, n);
        write_with_header(bad, b, n - cut);
        EXPECT_ERROR(fmnn_model_load(&m, bad), FMNN_EFORMAT, bad);
        ck_assert_ptr_null(m);
    }
    int refused = 0;
    for (size_t at = n - 300; at < n; at++) {
        memcpy(b, good, n);
        b[at] ^= 0x41;
        write_with_header(bad, b, n);
        fmnn_clear_error();
        const int st = fmnn_model_load(&m, bad);
        ck_assert_msg(st == FMNN_OK || (st == FMNN_EFORMAT && strstr(fmnn_last_error(), bad)),
                      "byte %zu changed: status %d: %s", at, st, fmnn_last_error());
        refused += st != FMNN_OK;
        fmnn_model_free(m);
        m = NULL;
    }
    ck_assert_int_gt(refused, 0);
    free(b);
    free(good);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* A resume must be the same fit: another batch size, seed, shuffle or
 * sample count, or fewer epochs than the state has reached, is refused. */
START_TEST(test_resume_refuses_another_fit)
{
    scratch_dir();
    fmnn_tensor *x, *y;
    make_data(0, &x, &y);
    char path[256];
    scratch_path(path, sizeof path, "state.fmnn");
    interrupted_fit(path, 12, x, y, "interrupted");
    fmnn_model *m = NULL;

    for (int c = 0; c < 5; c++) {
        EXPECT_OK(fmnn_model_load(&m, path));
        fmnn_fit_options o = options();
        o.resume = 1;
        const char *needle[] = { "another batch_size", "another seed", "another shuffle",
                                 "another number of training samples", "past this fit's epochs" };
        switch (c) {
        case 0: o.batch_size = 16; break;
        case 1: o.seed = 6; break;
        case 2: o.shuffle = 0; break;
        case 3: o.validation_split = 0.5f; break;
        case 4: o.epochs = 2; break;
        }
        EXPECT_ERROR(fmnn_model_fit(m, x, y, &o, NULL), FMNN_EINVAL, needle[c]);
        fmnn_model_free(m);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* ---- BackupAndRestore ------------------------------------------------------- */

/* The callbacks of one run of a program: made afresh each time, as a
 * restarted process would. */
typedef struct run_callbacks {
    fmnn_callback *list[5];
    int count;
} run_callbacks;

/* best_path is ModelCheckpoint's, and best_path with ".csv" CSVLogger's. */
static run_callbacks make_callbacks(const char *backup_dir, const char *best_path, int every_steps)
{
    run_callbacks c = { { NULL }, 0 };
    fmnn_backup_options bo = FMNN_BACKUP_INIT;
    bo.save_every_steps = every_steps;
    EXPECT_OK(fmnn_backup_and_restore(&c.list[c.count++], backup_dir, &bo));
    fmnn_early_stopping_options es = FMNN_EARLY_STOPPING_INIT;
    es.monitor = "val_accuracy";
    es.patience = 4;
    es.restore_best_weights = 1;
    EXPECT_OK(fmnn_early_stopping(&c.list[c.count++], &es));
    fmnn_reduce_lr_options rl = FMNN_REDUCE_LR_INIT;
    rl.patience = 1;
    rl.factor = 0.5f;
    EXPECT_OK(fmnn_reduce_lr_on_plateau(&c.list[c.count++], &rl));
    fmnn_checkpoint_options ck = FMNN_CHECKPOINT_INIT;
    ck.save_best_only = 1;
    EXPECT_OK(fmnn_model_checkpoint(&c.list[c.count++], best_path, &ck));
    char log[300];
    snprintf(log, sizeof log, "%s.csv", best_path);
    EXPECT_OK(fmnn_csv_logger(&c.list[c.count++], log, ',', 0));
    return c;
}

static void free_callbacks(run_callbacks *c)
{
    for (int i = 0; i < c->count; i++)
        fmnn_callback_free(c->list[i]);
}

/* One run of a program: a new model, fresh callbacks, fit with the
 * interrupt flag raised at global step stop_at (0: never), or with a
 * crash at the end of epoch -stop_at.  Returns fit's status; the model
 * is saved to final. */
static int run_program(const char *backup_dir, const char *best, const char *final, int stop_at,
                       const fmnn_tensor *x, const fmnn_tensor *y, fmnn_history **h)
{
    fmnn_model *m = dropout_classifier();
    run_callbacks c = make_callbacks(backup_dir, best, 2);
    stopper s = { stop_at > 0 ? stop_at : -stop_at, stop_at < 0, 0, NULL, 0, stop_at < 0 };
    fmnn_fit_options fo = options();
    fo.epochs = 12;
    fo.callbacks = c.list;
    fo.n_callbacks = c.count;
    fo.interrupt = &s.flag;
    fo.callback = stop_at ? save_and_interrupt : NULL;
    fo.user_data = &s;
    const int err = fmnn_model_fit(m, x, y, &fo, h);
    EXPECT_OK(fmnn_model_save(m, final, FMNN_SAVE_OPTIMIZER));
    free_callbacks(&c);
    fmnn_model_free(m);
    return err;
}

/* A program stopped at a batch and run again, as often as it takes:
 * BackupAndRestore brings back the weights, the optimizer (with the rate
 * ReduceLROnPlateau lowered), EarlyStopping's wait and best weights,
 * ModelCheckpoint's best and CSVLogger's length, so the end is the
 * uninterrupted run's: the same model, history, early stop, best-model
 * file and log; the backup is gone. */
START_TEST(test_backup_and_restore_with_callbacks)
{
    const char *dir = scratch_dir();
    fmnn_tensor *x, *y;
    make_data(0, &x, &y);
    char backup[256], best_whole[256], best[256], whole[256], final[256];
    scratch_path(backup, sizeof backup, "backup");
    scratch_path(best_whole, sizeof best_whole, "best-whole.fmnn");
    scratch_path(best, sizeof best, "best.fmnn");
    scratch_path(whole, sizeof whole, "whole.fmnn");
    scratch_path(final, sizeof final, "final.fmnn");
    fmnn_history *expected = NULL, *h = NULL;
    EXPECT_OK(run_program(backup, best_whole, whole, 0, x, y, &expected));
    ck_assert_msg(expected->stop_reason == FMNN_STOP_CALLBACK && expected->epochs >= 5,
                  "the test wants EarlyStopping to stop the fit after epoch 5, not %d", expected->epochs);
    struct stat st;
    ck_assert_int_ne(stat(backup, &st), 0); /* deleted once the fit completed */

    /* Stopped after steps 3 and 9, then crashed at the end of epoch 3
     * (index 2; its CSV row is written, its backup not: the rerun starts
     * from step 13), then stopped after step 15, its epoch's last (so at
     * the next epoch's start). */
    const int stops[] = { 3, 6, -2, 2 };
    for (int i = 0; i < 4; i++) {
        fmnn_history_free(h);
        h = NULL;
        ck_assert_int_eq(run_program(backup, best, final, stops[i], x, y, &h),
                         stops[i] < 0 ? FMNN_EIO : FMNN_ECANCELED);
        ck_assert_int_eq(stat(backup, &st), 0);
    }
    fmnn_history_free(h);
    h = NULL;
    EXPECT_OK(run_program(backup, best, final, 0, x, y, &h));
    ck_assert_msg(same_file(whole, final), "the model after restarts differs from the uninterrupted one");
    ck_assert_msg(same_file(best_whole, best), "ModelCheckpoint's best model differs");
    char log_whole[300], log[300];
    snprintf(log_whole, sizeof log_whole, "%s.csv", best_whole);
    snprintf(log, sizeof log, "%s.csv", best);
    ck_assert_msg(same_file(log_whole, log), "CSVLogger's log differs");
    assert_same_history(expected, h);
    ck_assert_int_ne(stat(backup, &st), 0);
    (void)dir;
    fmnn_history_free(expected);
    fmnn_history_free(h);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* A backup of another model, or one made with other callbacks, is
 * refused with a message naming it; so are bad options. */
START_TEST(test_backup_refusals)
{
    scratch_dir();
    fmnn_tensor *x, *y;
    make_data(0, &x, &y);
    char backup[256], best[256], final[256];
    scratch_path(backup, sizeof backup, "backup");
    scratch_path(best, sizeof best, "best.fmnn");
    scratch_path(final, sizeof final, "final.fmnn");
    ck_assert_int_eq(run_program(backup, best, final, 4, x, y, NULL), FMNN_ECANCELED);

    fmnn_model *other = bn_classifier();
    fmnn_callback *b = NULL;
    EXPECT_OK(fmnn_backup_and_restore(&b, backup, NULL));
    fmnn_fit_options fo = options();
    fo.callbacks = &b;
    fo.n_callbacks = 1;
    EXPECT_ERROR(fmnn_model_fit(other, x, y, &fo, NULL), FMNN_EINVAL, "is not a backup of this model's fit");
    fmnn_model_free(other);

    /* The same shapes and counts, another dropout rate. */
    fmnn_model *other_rate = new_model(1, (int[]){ 5 });
    add(other_rate, fmnn_dense(16, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(other_rate, fmnn_dropout(0.5f));
    add(other_rate, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    fmnn_optimizer adam = fmnn_adam();
    adam.learning_rate = 0.01f;
    EXPECT_OK(fmnn_model_compile(other_rate, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &adam, 9));
    EXPECT_ERROR(fmnn_model_fit(other_rate, x, y, &fo, NULL), FMNN_EINVAL, "its layers differ");
    fmnn_model_free(other_rate);

    fmnn_model *same_model = dropout_classifier();
    EXPECT_ERROR(fmnn_model_fit(same_model, x, y, &fo, NULL), FMNN_EINVAL,
                 "holds the state of EarlyStopping, which no callback of this fit takes");
    fmnn_callback *ck = NULL, *list[2] = { b, NULL };
    EXPECT_OK(fmnn_model_checkpoint(&ck, best, NULL));
    list[1] = ck;
    fo.callbacks = list;
    fo.n_callbacks = 2;
    EXPECT_ERROR(fmnn_model_fit(same_model, x, y, &fo, NULL), FMNN_EINVAL,
                 "the backup has no state for callback 1 (ModelCheckpoint)");
    fmnn_model_free(same_model);
    fmnn_callback_free(ck);
    fmnn_callback_free(b);

    fmnn_backup_options none = FMNN_BACKUP_INIT;
    none.save_at_epoch_end = 0;
    EXPECT_ERROR(fmnn_backup_and_restore(&b, backup, &none), FMNN_EINVAL, "only when fit is interrupted");
    EXPECT_ERROR(fmnn_backup_and_restore(&b, "", NULL), FMNN_EINVAL, "backup_dir");
    EXPECT_ERROR(fmnn_backup_and_restore(&b, backup, &(fmnn_backup_options){ 1, -1, 1 }), FMNN_EINVAL,
                 "save_every_steps must be >= 0");
    EXPECT_ERROR(fmnn_backup_and_restore(NULL, backup, NULL), FMNN_EINVAL, "out is NULL");
    ck_assert_ptr_null(b);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

/* ---- SIGKILL ------------------------------------------------------------------- */

/* The program of the kill test: train with a backup after every step,
 * then save the model and the history, and exit 0. */
static void killable_program(const char *backup, const char *final, const char *history,
                             const fmnn_tensor *x, const fmnn_tensor *y)
{
    fmnn_set_num_threads(1); /* a forked child: no OpenMP team of the parent's */
    fmnn_model *m = augmented_cnn();
    fmnn_callback *b = NULL;
    fmnn_backup_options bo = FMNN_BACKUP_INIT;
    bo.save_every_steps = 1;
    if (fmnn_backup_and_restore(&b, backup, &bo) != FMNN_OK)
        _exit(2);
    fmnn_fit_options fo = options();
    fo.epochs = 30;
    fo.callbacks = &b;
    fo.n_callbacks = 1;
    fmnn_history *h = NULL;
    if (fmnn_model_fit(m, x, y, &fo, &h) != FMNN_OK || fmnn_model_save(m, final, FMNN_SAVE_OPTIMIZER) != FMNN_OK)
        _exit(3);
    FILE *f = fopen(history, "wb");
    if (!f || fwrite(h->loss, sizeof(float), (size_t)h->epochs, f) != (size_t)h->epochs ||
        fwrite(h->val_accuracy, sizeof(float), (size_t)h->epochs, f) != (size_t)h->epochs || fclose(f) != 0)
        _exit(4);
    _exit(0);
}

static pid_t start_program(const char *backup, const char *final, const char *history, const fmnn_tensor *x,
                           const fmnn_tensor *y)
{
    fflush(NULL);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        killable_program(backup, final, history, x, y);
    return child;
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The program SIGKILLed at 20 random moments and started again each
 * time, until it finishes: its model and history are the bytes of a run
 * that was never killed. */
START_TEST(test_killed_20_times)
{
    scratch_dir();
    fmnn_tensor *x, *y;
    make_data(1, &x, &y);
    char backup[256], final[256], history[256], want[256], want_history[256];
    scratch_path(backup, sizeof backup, "backup");
    scratch_path(final, sizeof final, "final.fmnn");
    scratch_path(history, sizeof history, "history.bin");
    scratch_path(want, sizeof want, "whole.fmnn");
    scratch_path(want_history, sizeof want_history, "whole-history.bin");
    char whole_backup[256];
    scratch_path(whole_backup, sizeof whole_backup, "whole-backup");

    int status;
    const double start = seconds_now();
    pid_t child = start_program(whole_backup, want, want_history, x, y);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the uninterrupted run failed (%d)", status);
    const double run_seconds = seconds_now() - start;

    srand((unsigned)(seconds_now() * 1e6));
    int kills = 0, runs = 0;
    for (;;) {
        child = start_program(backup, final, history, x, y);
        runs++;
        if (kills < 20) {
            /* up to a twentieth of a whole run: the kills land all over it */
            const double pause = run_seconds / 20.0 * (double)rand() / RAND_MAX;
            struct timespec ts = { (time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9) };
            nanosleep(&ts, NULL);
            kill(child, SIGKILL);
        }
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        if (WIFSIGNALED(status)) {
            kills++;
            continue;
        }
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a restarted run failed (%d)", status);
        if (kills >= 20)
            break;
        /* It finished before the kill: start over from scratch. */
        unlink(final);
    }
    ck_assert_msg(same_file(want, final), "the model after %d kills differs from the uninterrupted run", kills);
    ck_assert_msg(same_file(want_history, history), "the history after %d kills differs", kills);
    fprintf(stderr, "test_killed_20_times: %d kills in %d runs (an uninterrupted run takes %.2f s)\n", kills, runs,
            run_seconds);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    scratch_remove();
}
END_TEST

static Suite *backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_resume_at_every_batch, 0, 3);
    tcase_add_test(tc, test_fit_state_in_files);
    tcase_add_test(tc, test_bad_fit_records);
    tcase_add_test(tc, test_resume_refuses_another_fit);
    tcase_add_test(tc, test_backup_and_restore_with_callbacks);
    tcase_add_test(tc, test_backup_refusals);
    suite_add_tcase(s, tc);
    /* Forks and kills processes: not under valgrind, which runs the
     * suites in one process. */
    if (!getenv("FMNN_TEST_QUICK")) {
        TCase *kill_tc = tcase_create("kill");
        tcase_set_timeout(kill_tc, 300);
        tcase_add_test(kill_tc, test_killed_20_times);
        suite_add_tcase(s, kill_tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backup_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
