/*
 * check_alloc.c - every allocation failure is reported, and leaks nothing.
 *
 * A counting allocator (fmnn_set_allocator) fails the k-th allocation of
 * one operation, for k = 0, 1, 2, ... until the operation runs out of
 * allocations to fail and succeeds.  Each run must return FMNN_ENOMEM
 * (FMNN_OK once k is past the last allocation), clear its out pointers,
 * leave the objects it was given usable (the same call, made again
 * without the failure, succeeds), and after everything is freed no block
 * may be live.  The operations: building and compiling a model, fit,
 * evaluate, predict, save, load (with and without the optimizer's state)
 * and fmnn_tensor_new.  (fmnn_dataset_load is swept in check_idx.c.)
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "testutil.h"

static char tmpdir[] = "/tmp/fmnn_check_alloc_XXXXXX";

/* ---- what the operations work on ----------------------------------------- */

typedef struct ctx {
    fmnn_model *model;
    fmnn_tensor *x, *y, *out;
    fmnn_history *history;
    int all_added;     /* build: every layer is in the model */
    char path[512];    /* save and load */
} ctx;

/* 8x8x1 -> Conv2D(4, 3x3) -> relu -> MaxPool 2 -> Dropout 0.25 ->
 * Flatten -> Dense(5, l2) -> softmax, as one call per step so that a
 * failure anywhere returns its status. */
static int build(ctx *c, uint64_t seed)
{
    int err = fmnn_model_new(&c->model, 3, (int[]){ 8, 8, 1 });
    if (err)
        return err;
    if ((err = fmnn_model_add(c->model, fmnn_conv2d(4, 3, 3, NULL))) ||
        (err = fmnn_model_add(c->model, fmnn_activation(FMNN_RELU))) ||
        (err = fmnn_model_add(c->model, fmnn_maxpool2d(2, 2, NULL))) ||
        (err = fmnn_model_add(c->model, fmnn_dropout(0.25f))) ||
        (err = fmnn_model_add(c->model, fmnn_flatten())) ||
        (err = fmnn_model_add(c->model, fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_LINEAR, .kernel_regularizer = fmnn_l2(0.01f) }))) ||
        (err = fmnn_model_add(c->model, fmnn_activation(FMNN_SOFTMAX))))
        return err;
    c->all_added = 1;
    return fmnn_model_compile(c->model, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed);
}

static void build_ok(ctx *c)
{
    ck_assert_msg(build(c, 1) == FMNN_OK, "%s", fmnn_last_error());
}

/* 16 samples of 8x8x1 and one-hot targets for 5 classes. */
static int make_data(ctx *c)
{
    int err = fmnn_tensor_new(&c->x, 4, (int[]){ 16, 8, 8, 1 });
    if (!err)
        err = fmnn_tensor_new(&c->y, 2, (int[]){ 16, 5 });
    if (err)
        return err;
    float *x = fmnn_tensor_data(c->x), *y = fmnn_tensor_data(c->y);
    for (size_t i = 0; i < fmnn_tensor_size(c->x); i++)
        x[i] = (float)((i * 29) % 17) / 17.0f;
    for (int i = 0; i < 16; i++)
        y[i * 5 + (i * 3) % 5] = 1.0f;
    return FMNN_OK;
}

static void data_ok(ctx *c)
{
    ck_assert_msg(make_data(c) == FMNN_OK, "%s", fmnn_last_error());
}

static void teardown(ctx *c)
{
    fmnn_history_free(c->history);
    fmnn_tensor_free(c->out);
    fmnn_tensor_free(c->x);
    fmnn_tensor_free(c->y);
    fmnn_model_free(c->model);
}

static fmnn_fit_options fit_options(void)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 8;
    o.validation_split = 0.25f; /* 12 samples: 2 steps, then validation */
    o.verbose = 0;
    o.seed = 9;
    return o;
}

/* ---- the scenarios --------------------------------------------------------- */

typedef struct scenario {
    const char *name;
    void (*setup)(ctx *);          /* not counted, never fails */
    int (*run)(ctx *);             /* counted: its k-th allocation fails */
    void (*after)(ctx *, int st);  /* checks, and the retry after a failure */
    int min_allocations;           /* to show the sweep is not vacuous */
} scenario;

static void setup_nothing(ctx *c)
{
    (void)c;
}

static void setup_model(ctx *c)
{
    build_ok(c);
    data_ok(c);
}

static int run_build(ctx *c)
{
    return build(c, 1);
}

static void after_build(ctx *c, int st)
{
    if (st == FMNN_OK)
        return;
    /* A model whose compile failed can still be compiled. */
    if (c->model && c->all_added)
        ck_assert_msg(fmnn_model_compile(c->model, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1) == FMNN_OK,
                      "compile after a failed compile: %s", fmnn_last_error());
}

static int run_fit(ctx *c)
{
    fmnn_fit_options o = fit_options();
    c->history = NOT_NULL;
    return fmnn_model_fit(c->model, c->x, c->y, &o, &c->history);
}

static void after_fit(ctx *c, int st)
{
    if (st == FMNN_OK) {
        ck_assert_ptr_nonnull(c->history);
        ck_assert_int_eq(c->history->epochs, 1);
        return;
    }
    ck_assert_ptr_null(c->history);
    fmnn_fit_options o = fit_options();
    ck_assert_msg(fmnn_model_fit(c->model, c->x, c->y, &o, &c->history) == FMNN_OK,
                  "fit after a failed fit: %s", fmnn_last_error());
}

static int run_evaluate(ctx *c)
{
    float loss, accuracy;
    return fmnn_model_evaluate(c->model, c->x, c->y, 4, &loss, &accuracy);
}

static void after_evaluate(ctx *c, int st)
{
    if (st != FMNN_OK)
        ck_assert_msg(fmnn_model_evaluate(c->model, c->x, c->y, 4, NULL, NULL) == FMNN_OK,
                      "evaluate after a failed evaluate: %s", fmnn_last_error());
}

static int run_predict(ctx *c)
{
    c->out = NOT_NULL;
    return fmnn_model_predict(c->model, c->x, 0, &c->out);
}

static void after_predict(ctx *c, int st)
{
    if (st == FMNN_OK) {
        ck_assert_int_eq(fmnn_tensor_dim(c->out, 0), 16);
        ck_assert_int_eq(fmnn_tensor_dim(c->out, 1), 5);
        return;
    }
    ck_assert_ptr_null(c->out);
    ck_assert_msg(fmnn_model_predict(c->model, c->x, 0, &c->out) == FMNN_OK,
                  "predict after a failed predict: %s", fmnn_last_error());
}

static void setup_save(ctx *c)
{
    build_ok(c);
    snprintf(c->path, sizeof c->path, "%s/save.fmnn", tmpdir);
}

static int run_save(ctx *c)
{
    return fmnn_model_save(c->model, c->path, FMNN_SAVE_OPTIMIZER);
}

static void after_save(ctx *c, int st)
{
    (void)st;
    ck_assert_int_eq(access(c->path, R_OK), 0);
}

/* The files to load, written (unarmed) by the first load scenario after
 * two training steps.  Not in main(): OpenMP must not start its threads
 * before Check forks the tests (libgomp does not survive a fork). */
static char model_file[512], model_file_optimizer[512];

static void setup_load(ctx *unused)
{
    (void)unused;
    snprintf(model_file, sizeof model_file, "%s/model.fmnn", tmpdir);
    snprintf(model_file_optimizer, sizeof model_file_optimizer, "%s/model-optimizer.fmnn", tmpdir);
    if (access(model_file, R_OK) == 0 && access(model_file_optimizer, R_OK) == 0)
        return;
    ctx c;
    memset(&c, 0, sizeof c);
    build_ok(&c);
    data_ok(&c);
    fmnn_fit_options o = fit_options();
    ck_assert_msg(fmnn_model_fit(c.model, c.x, c.y, &o, NULL) == FMNN_OK, "%s", fmnn_last_error());
    ck_assert_msg(fmnn_model_save(c.model, model_file, 0) == FMNN_OK, "%s", fmnn_last_error());
    ck_assert_msg(fmnn_model_save(c.model, model_file_optimizer, FMNN_SAVE_OPTIMIZER) == FMNN_OK, "%s",
                  fmnn_last_error());
    teardown(&c);
}

static int run_load(ctx *c)
{
    c->model = NOT_NULL;
    return fmnn_model_load(&c->model, model_file);
}

static int run_load_optimizer(ctx *c)
{
    c->model = NOT_NULL;
    return fmnn_model_load(&c->model, model_file_optimizer);
}

static void after_load(ctx *c, int st)
{
    if (st == FMNN_OK) {
        ck_assert_uint_eq(fmnn_model_param_count(c->model), 225);
        return;
    }
    ck_assert_ptr_null(c->model);
    /* The message names the file. */
    ck_assert_msg(strstr(fmnn_last_error(), tmpdir) != NULL, "message without the path: %s", fmnn_last_error());
}

static int run_tensor_new(ctx *c)
{
    c->out = NOT_NULL;
    return fmnn_tensor_new(&c->out, 3, (int[]){ 4, 5, 6 });
}

static void after_tensor_new(ctx *c, int st)
{
    if (st == FMNN_OK)
        ck_assert_uint_eq(fmnn_tensor_size(c->out), 120);
    else
        ck_assert_ptr_null(c->out);
}

static const scenario scenarios[] = {
    { "build and compile", setup_nothing, run_build, after_build, 9 },
    { "fit", setup_model, run_fit, after_fit, 3 },
    { "evaluate", setup_model, run_evaluate, after_evaluate, 1 },
    { "predict", setup_model, run_predict, after_predict, 2 },
    { "save", setup_save, run_save, after_save, 0 },
    { "load", setup_load, run_load, after_load, 10 },
    { "load with optimizer state", setup_load, run_load_optimizer, after_load, 10 },
    { "fmnn_tensor_new", setup_nothing, run_tensor_new, after_tensor_new, 2 },
};

#define SCENARIOS (int)(sizeof scenarios / sizeof *scenarios)

/* _i: the scenario.  Fails its k-th allocation, for every k. */
START_TEST(test_allocation_failures)
{
    const scenario *s = &scenarios[_i];
    long total = -1;
    for (long k = 0; k < 100000 && total < 0; k++) {
        testutil_alloc_install(k);
        ctx c;
        memset(&c, 0, sizeof c);
        s->setup(&c);
        fmnn_clear_error();
        testutil_alloc_arm(1);
        int st = s->run(&c);
        testutil_alloc_arm(0);
        int failed = testutil_alloc_injected();
        if (failed)
            ck_assert_msg(st == FMNN_ENOMEM, "%s, allocation %ld failed: status %d (%s), expected FMNN_ENOMEM",
                          s->name, k, st, fmnn_last_error());
        else
            ck_assert_msg(st == FMNN_OK, "%s: status %d (%s) without any failure", s->name, st,
                          fmnn_last_error());
        if (failed && st == FMNN_ENOMEM)
            ck_assert_msg(fmnn_last_error()[0] != '\0', "%s, allocation %ld: FMNN_ENOMEM without a message",
                          s->name, k);
        s->after(&c, st);
        teardown(&c);
        long left = testutil_alloc_live();
        ck_assert_msg(left == 0, "%s, allocation %ld failed: %ld blocks leaked", s->name, k, left);
        testutil_alloc_remove();
        if (!failed)
            total = k;
    }
    ck_assert_msg(total >= 0, "%s never succeeded", s->name);
    ck_assert_msg(total >= s->min_allocations, "%s made only %ld allocations", s->name, total);
}
END_TEST

/* The allocator's own bookkeeping: a sweep that cannot fail is useless. */
START_TEST(test_allocator_counts)
{
    testutil_alloc_install(-1);
    fmnn_tensor *t;
    ck_assert_int_eq(fmnn_tensor_new(&t, 1, (int[]){ 10 }), FMNN_OK);
    ck_assert_int_eq(testutil_alloc_live(), 2); /* the struct and its data */
    fmnn_tensor_free(t);
    ck_assert_int_eq(testutil_alloc_live(), 0);
    /* Armed, the k-th allocation fails and is reported. */
    testutil_alloc_install(1);
    testutil_alloc_arm(1);
    ck_assert_int_eq(fmnn_tensor_new(&t, 1, (int[]){ 10 }), FMNN_ENOMEM);
    ck_assert(testutil_alloc_injected());
    ck_assert_int_eq(testutil_alloc_live(), 0);
    testutil_alloc_remove();
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("allocation failures");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_allocator_counts);
    tcase_add_loop_test(tc, test_allocation_failures, 0, SCENARIOS);
    suite_add_tcase(s, tc);
    return s;
}

static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    if (!dir)
        return;
    struct dirent *e;
    char path[1024];
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
        perror("check_alloc: mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed == 0 ? 0 : 1;
}
