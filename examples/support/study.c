/*
 * study.c - the five-model study (study.h): options, one experiment per
 * model, the comparison and the reports.
 *
 * With a group of processes every rank runs the same steps in the same
 * order, and the rule that keeps one from waiting forever for another is
 * that every collective call (fit, evaluate, save, fmnn_collective_agree)
 * is reached by all ranks whatever happened on each before it.  So a step
 * that may fail on one rank alone, or that rank 0 alone does (printing,
 * the backup's record, the predictions, the reports), ends in an
 * agreement on its outcome: a failure anywhere stops every rank at the
 * same place, and rank 0 says what it was.
 */
#define _POSIX_C_SOURCE 200809L

#include "study.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "models.h"
#include "program.h"
#include "report.h"

#define GRID_IMAGES 15 /* the prediction grid: 3 rows of 5 */

/* ==== the study's state =============================================== */

typedef struct options {
    const char *data_dir;
    const char *out_dir;
    int epochs, batch, train_limit, test_limit, threads, quiet;
    int backup_steps, restart;
    unsigned long long seed;
    int models[STUDY_MODEL_COUNT]; /* indices into study_models, in training order */
    int model_count;
} options;

typedef struct study {
    const char *program;          /* in messages: "fashion_experiments" */
    const fmnn_collective *group; /* NULL: one process */
    int speaks;                   /* rank 0, or the one process: it prints and writes */
    options opt;
    study_backup backup;          /* opened by rank 0, only named on the others */
} study;

/* printf, on the rank that speaks. */
static void say(const study *s, const char *format, ...)
{
    va_list ap;
    if (!s->speaks)
        return;
    va_start(ap, format);
    vprintf(format, ap);
    va_end(ap);
}

/* fprintf(stderr, ...), on the rank that speaks. */
static void say_error(const study *s, const char *format, ...)
{
    va_list ap;
    if (!s->speaks)
        return;
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
}

/* 1 when this rank failed (it has said why if it speaks) or another did:
 * then every rank stops. */
static int any_rank_failed(const study *s, int failed)
{
    return fmnn_collective_agree(s->group, failed ? -1 : FMNN_OK) != FMNN_OK;
}

/* ==== options ========================================================= */

static void usage(const study *s, FILE *out)
{
    if (!s->speaks)
        return;
    fprintf(out,
        "Usage: %s [OPTION]...\n"
        "Trains the notebook's five CNNs on Fashion-MNIST and writes a report.\n",
        s->program);
    if (s->group)
        fprintf(out,
            "Under mpirun -np N, the N processes share every batch (--batch is the\n"
            "global batch); rank 0 prints and writes the files.\n");
    fprintf(out,
        "\n"
        "  --data DIR         the Fashion-MNIST .gz files (default: $FMNN_DATA,\n"
        "                     else " PROGRAM_DEFAULT_DATA ")\n"
        "  --epochs N         epochs per model (default 5)\n"
        "  --batch N          batch size (default 64)\n"
        "  --train-limit N    use only the first N training images (0 = all)\n"
        "  --test-limit N     use only the first N test images (0 = all)\n"
        "  --models LIST      comma-separated from base,l1,l2,dropout,l2_dropout\n"
        "                     (default: all five, in that order)\n"
        "  --seed N           seed of the weights, shuffling and dropout (default 42)\n"
        "  --threads N        threads to use (default: $FMNN_NUM_THREADS,\n"
        "                     else $OMP_NUM_THREADS, else one per CPU)\n"
        "  --out DIR          where the reports go, created if needed\n"
        "                     (default fmnn-results)\n"
        "  --backup-steps N   back up the training every N steps, besides every\n"
        "                     epoch's end (default: 0, only at epochs' ends)\n"
        "  --restart          ignore a backup in --out and start over\n"
        "  --quiet            no model summaries and no progress bars\n"
        "  --help             show this help and exit\n");
}

static int parse_models(study *s, const char *list)
{
    options *opt = &s->opt;
    const char *p = list;
    opt->model_count = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < STUDY_MODEL_COUNT; i++)
            if (strlen(study_models[i].key) == len && strncmp(p, study_models[i].key, len) == 0)
                found = i;
        if (found < 0) {
            say_error(s, "%s: unknown model '%.*s' in --models "
                      "(choose from base,l1,l2,dropout,l2_dropout)\n", s->program, (int)len, p);
            return -1;
        }
        for (int i = 0; i < opt->model_count; i++)
            if (opt->models[i] == found) {
                say_error(s, "%s: model '%s' named twice in --models\n", s->program,
                          study_models[found].key);
                return -1;
            }
        opt->models[opt->model_count++] = found;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

/* 0: run; 1: --help was printed; 2: bad usage (already reported).  Every
 * rank sees the same argv, so every rank gets the same answer. */
static int parse_args(int argc, char **argv, study *s)
{
    options *opt = &s->opt;
    opt->data_dir = program_default_data_dir();
    opt->out_dir = "fmnn-results";
    opt->epochs = 5;
    opt->batch = 64;
    opt->train_limit = opt->test_limit = 0;
    opt->threads = 0;
    opt->quiet = 0;
    opt->backup_steps = 0;
    opt->restart = 0;
    opt->seed = 42;
    opt->model_count = STUDY_MODEL_COUNT;
    for (int i = 0; i < STUDY_MODEL_COUNT; i++)
        opt->models[i] = i;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        char name[32];
        int bad = 0;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(s, stdout);
            return 1;
        }
        if (strcmp(arg, "--quiet") == 0) {
            opt->quiet = 1;
            continue;
        }
        if (strcmp(arg, "--restart") == 0) {
            opt->restart = 1;
            continue;
        }
        /* --name VALUE or --name=VALUE */
        if (program_split_option(argc, argv, &i, name, sizeof name, &value) != 0) {
            say_error(s, "%s: unknown argument '%s'\n", s->program, arg);
            goto bad_usage;
        }
        if (strcmp(name, "--data") == 0 || strcmp(name, "--epochs") == 0 ||
            strcmp(name, "--batch") == 0 || strcmp(name, "--train-limit") == 0 ||
            strcmp(name, "--test-limit") == 0 || strcmp(name, "--models") == 0 ||
            strcmp(name, "--seed") == 0 || strcmp(name, "--threads") == 0 ||
            strcmp(name, "--out") == 0 || strcmp(name, "--backup-steps") == 0) {
            if (value == NULL) {
                say_error(s, "%s: %s needs a value\n", s->program, name);
                goto bad_usage;
            }
        } else {
            say_error(s, "%s: unknown option '%s'\n", s->program, name);
            goto bad_usage;
        }

        if (strcmp(name, "--data") == 0) {
            bad = *value == '\0';
            opt->data_dir = value;
        } else if (strcmp(name, "--out") == 0) {
            bad = *value == '\0';
            opt->out_dir = value;
        } else if (strcmp(name, "--epochs") == 0) {
            bad = program_parse_int(value, 1, 100000, &opt->epochs);
        } else if (strcmp(name, "--batch") == 0) {
            bad = program_parse_int(value, 1, 1 << 20, &opt->batch);
        } else if (strcmp(name, "--train-limit") == 0) {
            bad = program_parse_int(value, 0, 1 << 30, &opt->train_limit);
        } else if (strcmp(name, "--test-limit") == 0) {
            bad = program_parse_int(value, 0, 1 << 30, &opt->test_limit);
        } else if (strcmp(name, "--threads") == 0) {
            bad = program_parse_int(value, 1, 4096, &opt->threads);
        } else if (strcmp(name, "--backup-steps") == 0) {
            bad = program_parse_int(value, 0, 1 << 30, &opt->backup_steps);
        } else if (strcmp(name, "--seed") == 0) {
            bad = program_parse_seed(value, &opt->seed);
        } else if (strcmp(name, "--models") == 0) {
            if (parse_models(s, value) != 0)
                goto bad_usage;
        }
        if (bad) {
            say_error(s, "%s: invalid value '%s' for %s\n", s->program, value, name);
            goto bad_usage;
        }
    }
    return 0;

bad_usage:
    say_error(s, "\n");
    usage(s, stderr);
    return 2;
}

/* The settings a backup must have been made with to be continued: all
 * that changes the results (the thread count may, in the last bits; the
 * process count does, as it changes the order of the gradients' sums). */
static void backup_options(const study *s, char *out, size_t size)
{
    const options *opt = &s->opt;
    int used = snprintf(out, size, "epochs=%d batch=%d train-limit=%d test-limit=%d seed=%llu threads=%d models=",
                        opt->epochs, opt->batch, opt->train_limit, opt->test_limit, opt->seed,
                        fmnn_get_num_threads());
    for (int i = 0; i < opt->model_count && used > 0 && (size_t)used < size; i++)
        used += snprintf(out + used, size - (size_t)used, "%s%s", i ? "," : "",
                         study_models[opt->models[i]].key);
    if (s->group && used > 0 && (size_t)used < size)
        snprintf(out + used, size - (size_t)used, " processes=%d", s->group->size);
}

/* ==== stopping ======================================================== */

/* The signal that asked the study to stop, or 0, agreed by the ranks: a
 * signal may reach one rank only (kill PID), and all must stop at the
 * same place.  Every rank takes it, to exit with the same status. */
static int stop_signal(const study *s)
{
    const int signo = fmnn_collective_agree(s->group, (int)backup_signal);
    if (signo <= 0)
        return 0;
    backup_signal = signo;
    return signo;
}

/* The status to exit with after a signal; rank 0 says how to go on. */
static int interrupted(const study *s)
{
    return s->speaks ? backup_interrupted(&s->backup, s->program) : backup_exit_status();
}

/* ==== one experiment ================================================== */

/*
 * Predicts the test set (the notebook's model_combi.predict(test_X)) into
 * pred, and prints the notebook's check of test image 0.  Rank 0's: the
 * predictions are local, and only the reports need them.
 */
static int predict_test(fmnn_model *m, const fmnn_dataset *test,
                        const char *model_name, int *pred)
{
    fmnn_tensor *probs;
    const float *p;
    float rounded[PROGRAM_NUM_CLASSES];
    int err;

    if ((err = fmnn_model_predict(m, test->images, 256, &probs)) != FMNN_OK)
        return err;
    p = fmnn_tensor_const_data(probs);
    for (int i = 0; i < test->count; i++)
        pred[i] = program_argmax(p + (size_t)i * PROGRAM_NUM_CLASSES, PROGRAM_NUM_CLASSES);

    /* np.argmax(np.round(predictions[0])), rounding half to even */
    for (int j = 0; j < PROGRAM_NUM_CLASSES; j++)
        rounded[j] = rintf(p[j]);
    printf("--- Prediction on Test Image [0] using %s Model ---\n", model_name);
    printf("Predicted Label: %d\n", program_argmax(rounded, PROGRAM_NUM_CLASSES));
    printf("Actual Label: %d\n", test->classes[0]);
    fmnn_tensor_free(probs);
    return FMNN_OK;
}

/* What run_model returns when a signal stopped the training. */
#define INTERRUPTED 2

/*
 * Trains, evaluates, saves and (for the report model, pred not NULL: on
 * rank 0) predicts with one model, then records its results in the
 * backup.  The training goes on from the model's backup folder when a
 * killed run left one there.
 */
static int run_model(study *s, const study_model *spec, const fmnn_dataset *train,
                     const fmnn_dataset *test, int *pred)
{
    const options *opt = &s->opt;
    fmnn_fit_options fit = FMNN_FIT_OPTIONS_INIT;
    fmnn_model *m = NULL;
    fmnn_callback *keeper = NULL;
    fmnn_history *history = NULL;
    float test_loss, test_accuracy;
    char path[4096];
    double start;
    int err;

    say(s, "--- Training %s Model ---\n", spec->title);
    err = study_build(&m, spec);
    if (err == FMNN_OK)
        err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY,
                                 NULL /* Adam, Keras's defaults */, opt->seed);
    if (err == FMNN_OK && s->speaks && !opt->quiet)
        err = fmnn_model_summary(m, stdout);
    if (err == FMNN_OK)
        err = fmnn_model_set_collective(m, s->group);

    /* The study deletes the backup itself, once the results are recorded. */
    fmnn_backup_options bo = FMNN_BACKUP_INIT;
    bo.save_every_steps = opt->backup_steps;
    bo.delete_backup = 0;
    backup_training_dir(&s->backup, spec->key, path, sizeof path);
    if (err == FMNN_OK)
        err = fmnn_backup_and_restore(&keeper, path, &bo);
    /* Every rank has its model, or none goes on to fit. */
    if ((err = fmnn_collective_agree(s->group, err)) != FMNN_OK)
        goto fail;

    fit.batch_size = opt->batch;
    fit.epochs = opt->epochs;
    fit.validation_split = 0.2f;
    fit.shuffle = 1;
    fit.seed = opt->seed;
    fit.verbose = opt->quiet ? 0 : 1;
    fit.callbacks = &keeper;
    fit.n_callbacks = 1;
    fit.interrupt = &backup_signal;

    /* fit, evaluate and save are collective: every rank gets the same status. */
    start = program_now();
    err = fmnn_model_fit(m, train->images, train->labels, &fit, &history);
    if (err == FMNN_ECANCELED && stop_signal(s)) {
        fmnn_history_free(history);
        fmnn_callback_free(keeper);
        fmnn_model_free(m);
        return INTERRUPTED;
    }
    if (err == FMNN_ENUMERIC) {
        /* the history and the last good weights are kept: report them */
        say_error(s, "warning: %s: %s\n", spec->title, fmnn_last_error());
    } else if (err != FMNN_OK) {
        goto fail;
    }
    err = fmnn_model_evaluate(m, test->images, test->labels, 64,
                              &test_loss, &test_accuracy);
    if (err != FMNN_OK)
        goto fail;
    say(s, "%s Model - Test loss: %.4f, Test accuracy: %.4f\n", spec->title,
        test_loss, test_accuracy);

    snprintf(path, sizeof path, "%s/%s.fmnn", opt->out_dir, spec->key);
    if ((err = fmnn_model_save(m, path, 0)) != FMNN_OK)
        goto fail;
    if (!opt->quiet)
        say(s, "Saved %s\n", path);

    /* The predictions and the backup's record are rank 0's; the others
     * wait for the outcome. */
    if (s->speaks) {
        if (pred != NULL && (err = predict_test(m, test, spec->title, pred)) != FMNN_OK)
            fprintf(stderr, "error: %s: %s\n", spec->title, fmnn_last_error());
        else if (backup_record(&s->backup, spec->key, history, test_loss, test_accuracy,
                               program_now() - start) != 0)
            err = -1;
    }
    if (any_rank_failed(s, err != FMNN_OK))
        goto fail_quietly;
    fmnn_history_free(history);
    fmnn_callback_free(keeper);
    fmnn_model_free(m);
    return 0;

fail:
    say_error(s, "error: %s: %s\n", spec->title, fmnn_last_error());
fail_quietly:
    fmnn_history_free(history);
    fmnn_callback_free(keeper);
    fmnn_model_free(m);
    return -1;
}

/* A model the backup says is finished (done, on rank 0): its predictions,
 * when it is the report model, from the model file it saved. */
static int finished_model(const study *s, const study_model *spec, const fmnn_dataset *test,
                          const backup_run *done, int *pred)
{
    char path[4096];
    fmnn_model *m = NULL;
    int err = FMNN_OK;

    say(s, "--- %s Model: trained before (in the backup) ---\n", spec->title);
    if (done != NULL)
        say(s, "%s Model - Test loss: %.4f, Test accuracy: %.4f\n", spec->title,
            done->test_loss, done->test_accuracy);
    if (pred != NULL) {
        snprintf(path, sizeof path, "%s/%s.fmnn", s->opt.out_dir, spec->key);
        err = fmnn_model_load(&m, path);
        if (err == FMNN_OK)
            err = predict_test(m, test, spec->title, pred);
        if (err != FMNN_OK)
            fprintf(stderr, "error: %s: %s\n", spec->title, fmnn_last_error());
        fmnn_model_free(m);
    }
    return any_rank_failed(s, err != FMNN_OK) ? -1 : 0;
}

/* ==== comparison and reports ========================================== */

/* The history's last value, or NAN when there is none. */
static float last(const float *values, int epochs)
{
    return values != NULL && epochs > 0 ? values[epochs - 1] : NAN;
}

static void print_comparison(const report_run *runs, int count)
{
    printf("\n--- Comparison ---\n");
    printf("%-12s %10s %10s %10s %10s %9s\n", "Model", "Train acc",
           "Val acc", "Test loss", "Test acc", "Seconds");
    for (int i = 0; i < count; i++) {
        const report_run *r = &runs[i];
        printf("%-12s %10.4f %10.4f %10.4f %10.4f %9.1f\n", r->name,
               last(r->accuracy, r->epochs), last(r->val_accuracy, r->epochs),
               r->test_loss, r->test_accuracy, r->seconds);
    }
}

/*
 * The comparison, the classification report and the files, from what the
 * backup recorded and the report model's predictions; then the backup is
 * deleted.  Rank 0's.  0 or -1 (said on stderr).
 */
static int write_reports(study *s, const fmnn_dataset *test, const int *y_true,
                         const int *y_pred, int report_model)
{
    const options *opt = &s->opt;
    report_run runs[STUDY_MODEL_COUNT];
    report_metrics metrics = { 0 };
    long confusion[PROGRAM_NUM_CLASSES * PROGRAM_NUM_CLASSES];
    char *text;
    int status = -1;

    for (int i = 0; i < opt->model_count; i++) {
        const backup_run *r = backup_find(&s->backup, study_models[opt->models[i]].key);
        runs[i] = (report_run){
            study_models[opt->models[i]].title, r->epochs, r->loss, r->accuracy,
            r->val_loss, r->val_accuracy, r->test_loss, r->test_accuracy, r->seconds
        };
    }
    print_comparison(runs, opt->model_count);

    if (report_confusion_matrix(confusion, PROGRAM_NUM_CLASSES, y_true, y_pred,
                                (size_t)test->count) != 0 ||
        report_metrics_compute(&metrics, confusion, PROGRAM_NUM_CLASSES) != 0) {
        perror("error: metrics");
        goto done;
    }
    text = report_classification_text(&metrics, program_class_names, 2);
    if (text == NULL) {
        perror("error: classification report");
        goto done;
    }
    printf("\n--- Detailed Classification Report ---\n%s\n", text);
    free(text);

    {
        report_data data = {
            runs, opt->model_count, PROGRAM_NUM_CLASSES, program_class_names,
            study_models[opt->models[report_model]].title, confusion, &metrics,
            { test->count < GRID_IMAGES ? test->count : GRID_IMAGES,
              fmnn_tensor_dim(test->images, 1), fmnn_tensor_dim(test->images, 2),
              fmnn_tensor_const_data(test->images), y_true, y_pred },
            NULL /* the study's title */
        };
        if (report_write_all(opt->out_dir, &data) != 0)
            goto done;
    }
    if (backup_finish(&s->backup) != 0)
        goto done;
    printf("Reports written to %s/: results.csv, history.csv, val_accuracy.svg,\n"
           "val_loss.svg, predictions.svg, confusion_matrix.svg,\n"
           "classification_report.txt and report.html\n", opt->out_dir);
    status = 0;

done:
    report_metrics_free(&metrics);
    return status;
}

/* ==== the study ======================================================= */

int study_run(int argc, char **argv, const char *program_name, const fmnn_collective *group)
{
    study s = { .program = program_name, .group = group, .speaks = group == NULL || group->rank == 0 };
    const options *opt = &s.opt;
    fmnn_dataset *train = NULL, *test = NULL;
    int *y_true = NULL, *y_pred = NULL, report_model, status = 1, failed, err;
    char settings[512];

    switch (parse_args(argc, argv, &s)) {
    case 1: return 0;
    case 2: return 2;
    }
    if (opt->threads > 0 && fmnn_set_num_threads(opt->threads) != FMNN_OK) {
        say_error(&s, "error: %s\n", fmnn_last_error());
        return 1;
    }

    /* Rank 0 writes into --out and keeps the backup; the others only find
     * their models' training backups there, inside fit.  A signal stops
     * every rank. */
    backup_options(&s, settings, sizeof settings);
    if (s.speaks)
        failed = program_make_dirs(opt->out_dir) != 0 || backup_catch_signals() != 0 ||
                 backup_open(&s.backup, opt->out_dir, settings, opt->restart) != 0;
    else
        failed = backup_catch_signals() != 0 || backup_follow(&s.backup, opt->out_dir) != 0;
    if (any_rank_failed(&s, failed))
        goto done;

    /* ---- data: every rank reads it; rank 0 says why one could not ---- */
    if (group)
        say(&s, "libfmnn %s, %d processes of %d threads, data from %s\n", fmnn_version_string(),
            group->size, fmnn_get_num_threads(), opt->data_dir);
    else
        say(&s, "libfmnn %s, %d threads, data from %s\n", fmnn_version_string(),
            fmnn_get_num_threads(), opt->data_dir);
    if (s.backup.resumed)
        say(&s, "Going on from the backup in %s/ (%d of %d models finished)\n", s.backup.dir,
            s.backup.n_runs, opt->model_count);
    err = program_read_split(&train, opt->data_dir, "train", opt->train_limit);
    if (err == FMNN_OK)
        err = program_read_split(&test, opt->data_dir, "t10k", opt->test_limit);
    if (fmnn_collective_agree(group, err) != FMNN_OK) {
        say_error(&s, "error: %s\n", fmnn_last_error());
        goto done;
    }
    say(&s, "Data loaded and preprocessed successfully.\n");
    say(&s, "Training shape: (%d, %d, %d, %d), Test shape: (%d, %d, %d, %d)\n",
        train->count, fmnn_tensor_dim(train->images, 1),
        fmnn_tensor_dim(train->images, 2), fmnn_tensor_dim(train->images, 3),
        test->count, fmnn_tensor_dim(test->images, 1),
        fmnn_tensor_dim(test->images, 2), fmnn_tensor_dim(test->images, 3));

    /* The classes, true and predicted, for the reports: rank 0's. */
    failed = 0;
    if (s.speaks) {
        y_true = malloc(sizeof *y_true * (size_t)test->count);
        y_pred = malloc(sizeof *y_pred * (size_t)test->count);
        failed = y_true == NULL || y_pred == NULL;
        if (failed)
            fprintf(stderr, "error: out of memory\n");
        else
            for (int i = 0; i < test->count; i++)
                y_true[i] = test->classes[i];
    }
    if (any_rank_failed(&s, failed))
        goto done;

    /* ---- the models; the report is on L2+Dropout, else the last one ---- */
    report_model = opt->model_count - 1;
    for (int i = 0; i < opt->model_count; i++)
        if (strcmp(study_models[opt->models[i]].key, "l2_dropout") == 0)
            report_model = i;
    for (int i = 0; i < opt->model_count; i++) {
        const study_model *spec = &study_models[opt->models[i]];
        if (stop_signal(&s)) {
            status = interrupted(&s);
            goto done;
        }
        /* Rank 0 alone has read the backup: it tells the others which
         * models are finished. */
        const backup_run *done = backup_find(&s.backup, spec->key);
        const int finished = fmnn_collective_agree(group, done != NULL);
        int *pred = i == report_model ? y_pred : NULL; /* NULL but on rank 0 */
        if (finished < 0) {
            say_error(&s, "error: %s\n", fmnn_last_error());
            goto done;
        }
        if (i > 0)
            say(&s, "\n");
        const int rc = finished ? finished_model(&s, spec, test, done, pred)
                                : run_model(&s, spec, train, test, pred);
        if (rc == INTERRUPTED)
            status = interrupted(&s);
        if (rc != 0)
            goto done;
    }
    fmnn_dataset_free(train); /* only the test set is needed from here on */
    train = NULL;

    /* ---- comparison and reports: rank 0's; the others wait for them ---- */
    failed = s.speaks && write_reports(&s, test, y_true, y_pred, report_model) != 0;
    if (!any_rank_failed(&s, failed))
        status = 0;

done:
    backup_close(&s.backup);
    free(y_true);
    free(y_pred);
    fmnn_dataset_free(train);
    fmnn_dataset_free(test);
    return status;
}
