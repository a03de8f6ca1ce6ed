/*
 * fashion_experiments.c - the Keras notebook "Design and Implement the CNN
 * with Regularization and Dropout on Fashion MNIST", with libfmnn.
 *
 * Trains the notebook's five CNNs (no regularization, L1, L2, Dropout,
 * L2 + Dropout) on Fashion-MNIST with Adam and categorical cross-entropy,
 * holding out the last 20% of the training images for validation, and
 * evaluates each on the test set.  With the last model (L2 + Dropout when
 * it was trained) it predicts the test set and builds the notebook's
 * confusion matrix, classification report and prediction grid.
 *
 * It prints what the notebook prints, then a comparison table, and writes
 * into --out: results.csv, history.csv, val_accuracy.svg, val_loss.svg,
 * predictions.svg, confusion_matrix.svg, classification_report.txt and
 * report.html (one page with all of them).
 *
 * It keeps a backup in --out/.backup (support/backup.h): killed, or
 * stopped with Ctrl-C (which exits with status 130, 143 for SIGTERM),
 * the same command goes on where the backup left off and ends with the
 * files an uninterrupted run writes, all but the seconds.
 *
 *     build/examples/fashion_experiments                   # the notebook
 *     build/examples/fashion_experiments --epochs 1 --train-limit 2000 \
 *         --test-limit 500 --models base,l2_dropout --quiet  # a quick look
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>

#include "support/backup.h"
#include "support/models.h"
#include "support/program.h"
#include "support/report.h"

#define GRID_IMAGES 15 /* the prediction grid: 3 rows of 5 */

/* ==== options ========================================================= */

typedef struct options {
    const char *data_dir;
    const char *out_dir;
    int epochs, batch, train_limit, test_limit, threads, quiet;
    int backup_steps, restart;
    unsigned long long seed;
    int models[STUDY_MODEL_COUNT]; /* indices into study_models, in training order */
    int model_count;
} options;

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: fashion_experiments [OPTION]...\n"
        "Trains the notebook's five CNNs on Fashion-MNIST and writes a report.\n"
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

static int parse_models(const char *list, options *opt)
{
    const char *p = list;
    opt->model_count = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < STUDY_MODEL_COUNT; i++)
            if (strlen(study_models[i].key) == len && strncmp(p, study_models[i].key, len) == 0)
                found = i;
        if (found < 0) {
            fprintf(stderr, "fashion_experiments: unknown model '%.*s' in --models "
                    "(choose from base,l1,l2,dropout,l2_dropout)\n", (int)len, p);
            return -1;
        }
        for (int i = 0; i < opt->model_count; i++)
            if (opt->models[i] == found) {
                fprintf(stderr, "fashion_experiments: model '%s' named twice "
                        "in --models\n", study_models[found].key);
                return -1;
            }
        opt->models[opt->model_count++] = found;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

/* 0: run; 1: --help was printed; 2: bad usage (already reported). */
static int parse_args(int argc, char **argv, options *opt)
{
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
            usage(stdout);
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
            fprintf(stderr, "fashion_experiments: unknown argument '%s'\n", arg);
            goto bad_usage;
        }
        if (strcmp(name, "--data") == 0 || strcmp(name, "--epochs") == 0 ||
            strcmp(name, "--batch") == 0 || strcmp(name, "--train-limit") == 0 ||
            strcmp(name, "--test-limit") == 0 || strcmp(name, "--models") == 0 ||
            strcmp(name, "--seed") == 0 || strcmp(name, "--threads") == 0 ||
            strcmp(name, "--out") == 0 || strcmp(name, "--backup-steps") == 0) {
            if (value == NULL) {
                fprintf(stderr, "fashion_experiments: %s needs a value\n", name);
                goto bad_usage;
            }
        } else {
            fprintf(stderr, "fashion_experiments: unknown option '%s'\n", name);
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
            if (parse_models(value, opt) != 0)
                goto bad_usage;
        }
        if (bad) {
            fprintf(stderr, "fashion_experiments: invalid value '%s' for %s\n",
                    value, name);
            goto bad_usage;
        }
    }
    return 0;

bad_usage:
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

/* ==== one experiment ================================================== */

/*
 * Predicts the test set (the notebook's model_combi.predict(test_X)) into
 * pred, and prints the notebook's check of test image 0.
 */
static int predict_test(fmnn_model *m, const fmnn_dataset *test,
                        const char *model_name, int *pred)
{
    fmnn_tensor *probs;
    const float *p;
    float rounded[PROGRAM_NUM_CLASSES];

    if (fmnn_model_predict(m, test->images, 256, &probs) != FMNN_OK)
        return -1;
    p = fmnn_tensor_const_data(probs);
    for (int i = 0; i < test->count; i++)
        pred[i] = program_argmax(p + (size_t)i * PROGRAM_NUM_CLASSES, PROGRAM_NUM_CLASSES);

    /* np.program_argmax(np.round(predictions[0])), rounding half to even */
    for (int j = 0; j < PROGRAM_NUM_CLASSES; j++)
        rounded[j] = rintf(p[j]);
    printf("--- Prediction on Test Image [0] using %s Model ---\n", model_name);
    printf("Predicted Label: %d\n", program_argmax(rounded, PROGRAM_NUM_CLASSES));
    printf("Actual Label: %d\n", test->classes[0]);
    fmnn_tensor_free(probs);
    return 0;
}

/* What run_model returns when a signal stopped the training. */
#define INTERRUPTED 2

/*
 * Trains, evaluates, saves and (for the report model) predicts with one
 * model, then records its results in the backup.  The training goes on
 * from the model's backup folder when a killed run left one there.
 */
static int run_model(const study_model *spec, const options *opt,
                     const fmnn_dataset *train, const fmnn_dataset *test,
                     study_backup *backup, int *pred)
{
    fmnn_fit_options fit = FMNN_FIT_OPTIONS_INIT;
    fmnn_model *m = NULL;
    fmnn_callback *keeper = NULL;
    fmnn_history *history = NULL;
    float test_loss, test_accuracy;
    char path[4096];
    double start;
    int err;

    printf("--- Training %s Model ---\n", spec->title);
    err = study_build(&m, spec);
    if (err == FMNN_OK)
        err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY,
                                 NULL /* Adam, Keras's defaults */, opt->seed);
    if (err == FMNN_OK && !opt->quiet)
        err = fmnn_model_summary(m, stdout);

    /* The study deletes the backup itself, once the results are recorded. */
    fmnn_backup_options bo = FMNN_BACKUP_INIT;
    bo.save_every_steps = opt->backup_steps;
    bo.delete_backup = 0;
    backup_training_dir(backup, spec->key, path, sizeof path);
    if (err == FMNN_OK)
        err = fmnn_backup_and_restore(&keeper, path, &bo);
    if (err != FMNN_OK)
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

    start = program_now();
    err = fmnn_model_fit(m, train->images, train->labels, &fit, &history);
    if (err == FMNN_ECANCELED && backup_signal) {
        fmnn_history_free(history);
        fmnn_callback_free(keeper);
        fmnn_model_free(m);
        return INTERRUPTED;
    }
    if (err == FMNN_ENUMERIC) {
        /* the history and the last good weights are kept: report them */
        fprintf(stderr, "warning: %s: %s\n", spec->title, fmnn_last_error());
    } else if (err != FMNN_OK) {
        goto fail;
    }
    err = fmnn_model_evaluate(m, test->images, test->labels, 64,
                              &test_loss, &test_accuracy);
    if (err != FMNN_OK)
        goto fail;
    printf("%s Model - Test loss: %.4f, Test accuracy: %.4f\n", spec->title,
           test_loss, test_accuracy);

    snprintf(path, sizeof path, "%s/%s.fmnn", opt->out_dir, spec->key);
    if ((err = fmnn_model_save(m, path, 0)) != FMNN_OK)
        goto fail;
    if (!opt->quiet)
        printf("Saved %s\n", path);

    if (pred != NULL && predict_test(m, test, spec->title, pred) != 0)
        goto fail;
    if (backup_record(backup, spec->key, history, test_loss, test_accuracy,
                      program_now() - start) != 0)
        goto fail_quietly;
    fmnn_history_free(history);
    fmnn_callback_free(keeper);
    fmnn_model_free(m);
    return 0;

fail:
    fprintf(stderr, "error: %s: %s\n", spec->title, fmnn_last_error());
fail_quietly:
    fmnn_history_free(history);
    fmnn_callback_free(keeper);
    fmnn_model_free(m);
    return -1;
}

/* A model the backup says is finished: its predictions, when it is the
 * report model, from the model file it saved. */
static int finished_model(const study_model *spec, const options *opt,
                          const fmnn_dataset *test, const backup_run *done, int *pred)
{
    char path[4096];
    fmnn_model *m = NULL;

    printf("--- %s Model: trained before (in the backup) ---\n", spec->title);
    printf("%s Model - Test loss: %.4f, Test accuracy: %.4f\n", spec->title,
           done->test_loss, done->test_accuracy);
    if (pred == NULL)
        return 0;
    snprintf(path, sizeof path, "%s/%s.fmnn", opt->out_dir, spec->key);
    if (fmnn_model_load(&m, path) != FMNN_OK || predict_test(m, test, spec->title, pred) != 0) {
        fprintf(stderr, "error: %s: %s\n", spec->title, fmnn_last_error());
        fmnn_model_free(m);
        return -1;
    }
    fmnn_model_free(m);
    return 0;
}

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

/* The settings a backup must have been made with to be continued: all
 * that changes the results (the thread count may, in the last bits). */
static void backup_options(const options *opt, char *out, size_t size)
{
    int used = snprintf(out, size, "epochs=%d batch=%d train-limit=%d test-limit=%d seed=%llu threads=%d models=",
                        opt->epochs, opt->batch, opt->train_limit, opt->test_limit, opt->seed,
                        fmnn_get_num_threads());
    for (int i = 0; i < opt->model_count && used > 0 && (size_t)used < size; i++)
        used += snprintf(out + used, size - (size_t)used, "%s%s", i ? "," : "",
                         study_models[opt->models[i]].key);
}

/* ==== main ============================================================ */

int main(int argc, char **argv)
{
    options opt;
    fmnn_dataset *train = NULL, *test = NULL;
    study_backup backup = { .n_runs = 0 };
    report_run runs[STUDY_MODEL_COUNT];
    report_metrics metrics = { 0 };
    long confusion[PROGRAM_NUM_CLASSES * PROGRAM_NUM_CLASSES];
    int *y_true = NULL, *y_pred = NULL, report_model, status = 1;
    char *text, settings[512];

    switch (parse_args(argc, argv, &opt)) {
    case 1: return 0;
    case 2: return 2;
    }
    if (opt.threads > 0 && fmnn_set_num_threads(opt.threads) != FMNN_OK) {
        fprintf(stderr, "error: %s\n", fmnn_last_error());
        return 1;
    }
    backup_options(&opt, settings, sizeof settings);
    if (program_make_dirs(opt.out_dir) != 0 || backup_catch_signals() != 0 ||
        backup_open(&backup, opt.out_dir, settings, opt.restart) != 0)
        return 1;

    /* ---- data ---- */
    printf("libfmnn %s, %d threads, data from %s\n", fmnn_version_string(),
           fmnn_get_num_threads(), opt.data_dir);
    if (backup.resumed)
        printf("Going on from the backup in %s/ (%d of %d models finished)\n", backup.dir,
               backup.n_runs, opt.model_count);
    if (program_load_split(&train, opt.data_dir, "train", opt.train_limit) != 0 ||
        program_load_split(&test, opt.data_dir, "t10k", opt.test_limit) != 0)
        goto done;
    printf("Data loaded and preprocessed successfully.\n");
    printf("Training shape: (%d, %d, %d, %d), Test shape: (%d, %d, %d, %d)\n",
           train->count, fmnn_tensor_dim(train->images, 1),
           fmnn_tensor_dim(train->images, 2), fmnn_tensor_dim(train->images, 3),
           test->count, fmnn_tensor_dim(test->images, 1),
           fmnn_tensor_dim(test->images, 2), fmnn_tensor_dim(test->images, 3));

    y_true = malloc(sizeof *y_true * (size_t)test->count);
    y_pred = malloc(sizeof *y_pred * (size_t)test->count);
    if (y_true == NULL || y_pred == NULL) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    for (int i = 0; i < test->count; i++)
        y_true[i] = test->classes[i];

    /* ---- the models; the report is on L2+Dropout, else the last one ---- */
    report_model = opt.model_count - 1;
    for (int i = 0; i < opt.model_count; i++)
        if (strcmp(study_models[opt.models[i]].key, "l2_dropout") == 0)
            report_model = i;
    for (int i = 0; i < opt.model_count; i++) {
        const study_model *spec = &study_models[opt.models[i]];
        const backup_run *done = backup_find(&backup, spec->key);
        int *pred = i == report_model ? y_pred : NULL;
        if (backup_signal) {
            status = backup_interrupted(&backup, "fashion_experiments");
            goto done;
        }
        if (i > 0)
            printf("\n");
        const int rc = done ? finished_model(spec, &opt, test, done, pred)
                            : run_model(spec, &opt, train, test, &backup, pred);
        if (rc == INTERRUPTED)
            status = backup_interrupted(&backup, "fashion_experiments");
        if (rc != 0)
            goto done;
    }
    fmnn_dataset_free(train); /* only the test set is needed from here on */
    train = NULL;

    /* ---- comparison and reports, from what the backup recorded ---- */
    for (int i = 0; i < opt.model_count; i++) {
        const backup_run *r = backup_find(&backup, study_models[opt.models[i]].key);
        runs[i] = (report_run){
            study_models[opt.models[i]].title, r->epochs, r->loss, r->accuracy,
            r->val_loss, r->val_accuracy, r->test_loss, r->test_accuracy, r->seconds
        };
    }
    print_comparison(runs, opt.model_count);

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
            runs, opt.model_count, PROGRAM_NUM_CLASSES, program_class_names,
            study_models[opt.models[report_model]].title, confusion, &metrics,
            { test->count < GRID_IMAGES ? test->count : GRID_IMAGES,
              fmnn_tensor_dim(test->images, 1), fmnn_tensor_dim(test->images, 2),
              fmnn_tensor_const_data(test->images), y_true, y_pred },
            NULL /* the study's title */
        };
        if (report_write_all(opt.out_dir, &data) != 0)
            goto done;
    }
    if (backup_finish(&backup) != 0)
        goto done;
    printf("Reports written to %s/: results.csv, history.csv, val_accuracy.svg,\n"
           "val_loss.svg, predictions.svg, confusion_matrix.svg,\n"
           "classification_report.txt and report.html\n", opt.out_dir);
    status = 0;

done:
    report_metrics_free(&metrics);
    backup_close(&backup);
    free(y_true);
    free(y_pred);
    fmnn_dataset_free(train);
    fmnn_dataset_free(test);
    return status;
}
