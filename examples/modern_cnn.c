/*
 * modern_cnn.c - a present-day CNN for Fashion-MNIST with libfmnn, where
 * fashion_experiments.c is the 2010s notebook: augmentation, Conv2D-
 * BatchNormalization-ReLU blocks, global average pooling instead of
 * Flatten and big Dense layers, AdamW on a cosine schedule, and early
 * stopping that keeps the best epoch.
 *
 * The network (input 28x28x1; every Conv2D 3x3 with 'same' padding, no
 * bias since the BatchNormalization after it has an offset, he_normal
 * kernels):
 *
 *     RandomFlip horizontal, RandomTranslation +-2 px    (training only)
 *     [Conv2D 32 - BN - ReLU]                            28x28
 *     MaxPooling2D 2                                     14x14
 *     [Conv2D 64 - BN - ReLU] x 2                        14x14
 *     MaxPooling2D 2                                      7x7
 *     [Conv2D 128 - BN - ReLU] x 2                        7x7
 *     MaxPooling2D 2                                      3x3
 *     [Conv2D 256 - BN - ReLU]                            3x3
 *     GlobalAveragePooling2D -> Dense 10, softmax
 *
 * About 580,000 parameters, nearly all the work at 14x14 and 7x7: the
 * usual 32-32-pool-64-64-pool-128 layout spends it at 28x28 instead, and
 * trains slower per epoch without learning faster.
 *
 * Training: AdamW (Keras's defaults: learning rate 1e-3, weight decay
 * 0.004) whose rate falls to 0 along a cosine over every step of the run;
 * the last --validation-split of the training images held out, with
 * EarlyStopping on their accuracy (restoring the best epoch's weights)
 * and ModelCheckpoint keeping the best epoch's model as training goes.
 * Then it evaluates on the test set and writes into --out:
 * modern_cnn.fmnn (the trained model, written atomically; predict.c reads
 * it with --model), results.csv, history.csv, val_accuracy.svg,
 * val_loss.svg, predictions.svg, confusion_matrix.svg,
 * classification_report.txt and report.html, as the study does
 * (examples/support/report.h).
 *
 * A backup in --out/.backup (support/backup.h) lets a killed or
 * Ctrl-C'd run (status 130, 143 for SIGTERM) go on where it stopped when
 * the same command runs again, to the same files but for the seconds.
 *
 *     build/examples/modern_cnn --out modern-cnn-results    # the full run
 *     build/examples/modern_cnn --epochs 1 --train-limit 2000 \
 *         --test-limit 500 --quiet                          # a quick look
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>

#include "support/backup.h"
#include "support/program.h"
#include "support/report.h"

#define PROGRAM "modern_cnn"
#define MODEL_NAME "Modern CNN"
#define MODEL_FILE "modern_cnn.fmnn"
#define GRID_IMAGES 15 /* the prediction grid: 3 rows of 5 */

/* The convolution blocks, in order: filters, and a MaxPooling2D after. */
static const struct block {
    int filters;
    int pool_after;
} BLOCKS[] = {
    { 32, 1 },
    { 64, 0 },
    { 64, 1 },
    { 128, 0 },
    { 128, 1 },
    { 256, 0 },
};

/* The augmentation: a shift of up to 2 of the 28 pixels each way. */
#define SHIFT (2.0f / 28.0f)
#define PATIENCE 5 /* epochs without a better validation accuracy before stopping */
#define BLOCK_COUNT ((int)(sizeof BLOCKS / sizeof BLOCKS[0]))

/* ==== options ========================================================= */

typedef struct options {
    const char *data_dir;
    const char *out_dir;
    int epochs, batch, train_limit, test_limit, threads, quiet;
    int backup_steps, restart;
    float learning_rate, validation_split;
    unsigned long long seed;
} options;

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: " PROGRAM " [OPTION]...\n"
        "Trains a Conv2D-BatchNormalization-ReLU network with global average\n"
        "pooling on Fashion-MNIST and writes a report.\n"
        "\n"
        "  --data DIR               the Fashion-MNIST .gz files (default: $FMNN_DATA,\n"
        "                           else " PROGRAM_DEFAULT_DATA ")\n"
        "  --epochs N               epochs (default 14)\n"
        "  --batch-size N           batch size (default 64)\n"
        "  --learning-rate F        AdamW's learning rate at the start of the\n"
        "                           cosine decay (default 0.001)\n"
        "  --validation-split F     the last fraction of the training images held\n"
        "                           out for validation, in [0, 1) (default 0.1)\n"
        "  --train-limit N          use only the first N training images (0 = all)\n"
        "  --test-limit N           use only the first N test images (0 = all)\n"
        "  --seed N                 seed of the weights and the shuffling (default 42)\n"
        "  --threads N              threads to use (default: $FMNN_NUM_THREADS,\n"
        "                           else $OMP_NUM_THREADS, else one per CPU)\n"
        "  --out DIR                where the model and the reports go, created if\n"
        "                           needed (default modern-cnn-results)\n"
        "  --backup-steps N         back up the training every N steps, besides every\n"
        "                           epoch's end (default: 0, only at epochs' ends)\n"
        "  --restart                ignore a backup in --out and start over\n"
        "  --quiet                  no model summary and no progress bars\n"
        "  --help                   show this help and exit\n");
}

/* The options that take a value. */
static const char *const VALUE_OPTIONS[] = {
    "--data", "--epochs", "--batch-size", "--learning-rate", "--validation-split",
    "--train-limit", "--test-limit", "--seed", "--threads", "--out", "--backup-steps"
};

/* 0: run; 1: --help was printed; 2: bad usage (already reported). */
static int parse_args(int argc, char **argv, options *opt)
{
    opt->data_dir = program_default_data_dir();
    opt->out_dir = "modern-cnn-results";
    opt->epochs = 14;
    opt->batch = 64;
    opt->learning_rate = 1e-3f;
    opt->validation_split = 0.1f;
    opt->train_limit = opt->test_limit = 0;
    opt->threads = 0;
    opt->quiet = 0;
    opt->backup_steps = 0;
    opt->restart = 0;
    opt->seed = 42;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        char name[32];
        int bad = 0, known = 0;

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
            fprintf(stderr, PROGRAM ": unknown argument '%s'\n", arg);
            goto bad_usage;
        }
        for (size_t k = 0; k < sizeof VALUE_OPTIONS / sizeof VALUE_OPTIONS[0]; k++)
            known |= strcmp(name, VALUE_OPTIONS[k]) == 0;
        if (!known) {
            fprintf(stderr, PROGRAM ": unknown option '%s'\n", name);
            goto bad_usage;
        }
        if (value == NULL) {
            fprintf(stderr, PROGRAM ": %s needs a value\n", name);
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
        } else if (strcmp(name, "--batch-size") == 0) {
            bad = program_parse_int(value, 1, 1 << 20, &opt->batch);
        } else if (strcmp(name, "--learning-rate") == 0) {
            bad = program_parse_float(value, 0.0f, 1e3f, 0, &opt->learning_rate) ||
                  opt->learning_rate <= 0.0f;
        } else if (strcmp(name, "--validation-split") == 0) {
            bad = program_parse_float(value, 0.0f, 1.0f, 1, &opt->validation_split);
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
        }
        if (bad) {
            fprintf(stderr, PROGRAM ": invalid value '%s' for %s\n", value, name);
            goto bad_usage;
        }
    }
    return 0;

bad_usage:
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

/* ==== the model ======================================================= */

/* The network of the header comment, compiled with AdamW whose rate
 * decays along a cosine over the run's steps. */
static int build_and_compile(fmnn_model **out, const options *opt, int train_count)
{
    const fmnn_conv2d_options conv = {
        .padding = FMNN_PADDING_SAME,
        .no_bias = 1, /* BatchNormalization's beta is the offset */
        .kernel_initializer = FMNN_HE_NORMAL,
    };
    const fmnn_dense_options classifier = { .activation = FMNN_SOFTMAX };
    const fmnn_random_flip_options flip = { .mode = FMNN_FLIP_HORIZONTAL };
    const fmnn_image_fill_options shift = { .fill_mode = FMNN_FILL_CONSTANT,
                                            .interpolation = FMNN_INTERPOLATION_NEAREST };
    /* The steps fit will take: the training part's batches, every epoch. */
    const int trained = train_count - (int)floor(train_count * (double)opt->validation_split);
    const int steps = (trained / opt->batch + (trained % opt->batch != 0)) * opt->epochs;
    fmnn_optimizer adamw = fmnn_adamw();
    fmnn_model *m;
    int err;

    adamw.learning_rate = opt->learning_rate;
    adamw.schedule = fmnn_cosine_decay(steps, 0.0f, 0, 0.0f);
    if ((err = fmnn_model_new(&m, 3, (const int[]){ 28, 28, 1 })) != FMNN_OK)
        return err;
    err = fmnn_model_add(m, fmnn_random_flip(&flip));
    if (err == FMNN_OK)
        err = fmnn_model_add(m, fmnn_random_translation(-SHIFT, SHIFT, -SHIFT, SHIFT, &shift));
    for (int b = 0; b < BLOCK_COUNT && err == FMNN_OK; b++) {
        err = fmnn_model_add(m, fmnn_conv2d(BLOCKS[b].filters, 3, 3, &conv));
        if (err == FMNN_OK)
            err = fmnn_model_add(m, fmnn_batch_normalization(NULL));
        if (err == FMNN_OK)
            err = fmnn_model_add(m, fmnn_activation(FMNN_RELU));
        if (err == FMNN_OK && BLOCKS[b].pool_after)
            err = fmnn_model_add(m, fmnn_maxpool2d(2, 2, NULL));
    }
    if (err == FMNN_OK)
        err = fmnn_model_add(m, fmnn_global_average_pooling2d());
    if (err == FMNN_OK)
        err = fmnn_model_add(m, fmnn_dense(PROGRAM_NUM_CLASSES, &classifier));
    if (err == FMNN_OK)
        err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &adamw, opt->seed);
    if (err != FMNN_OK) {
        fmnn_model_free(m);
        return err;
    }
    *out = m;
    return FMNN_OK;
}

/* ==== training ======================================================== */

/* What fit's callback keeps: each epoch's wall time. */
typedef struct epoch_times {
    double *seconds; /* opt->epochs entries */
    int count;
} epoch_times;

static int on_progress(const fmnn_progress *p, void *user_data)
{
    epoch_times *t = user_data;
    if (p->event == FMNN_EVENT_EPOCH_END && t->count < p->epochs) /* a resumed run: its epochs only */
        t->seconds[t->count++] = p->seconds;
    return 0;
}

/*
 * Trains m on train (the last opt->validation_split held out), keeping
 * the history and each epoch's time.  With validation, EarlyStopping
 * ends the run once the validation accuracy has not improved for
 * PATIENCE epochs and puts back the best epoch's weights, and
 * ModelCheckpoint writes that best model to model_path as training goes
 * (*saved then says so).  A loss or an update that turns NaN stops fit
 * with the last good weights: that is reported and kept.  BackupAndRestore
 * keeps everything in backup_dir, to go on from there after a crash; the
 * program deletes it once the reports are written.
 */
static int train(fmnn_model *m, const options *opt, const fmnn_dataset *train_set, const char *model_path,
                 const char *backup_dir, fmnn_history **history, epoch_times *times, int *saved)
{
    fmnn_fit_options fit = FMNN_FIT_OPTIONS_INIT;
    fmnn_early_stopping_options stop = FMNN_EARLY_STOPPING_INIT;
    fmnn_checkpoint_options keep = FMNN_CHECKPOINT_INIT;
    fmnn_backup_options backup = FMNN_BACKUP_INIT;
    fmnn_callback *callbacks[3] = { NULL, NULL, NULL };
    int err;

    fit.batch_size = opt->batch;
    fit.epochs = opt->epochs;
    fit.validation_split = opt->validation_split;
    fit.shuffle = 1;
    fit.seed = opt->seed;
    fit.verbose = opt->quiet ? 0 : 1;
    fit.callback = on_progress;
    fit.user_data = times;
    stop.monitor = keep.monitor = "val_accuracy";
    stop.patience = PATIENCE;
    stop.restore_best_weights = 1;
    keep.save_best_only = 1;
    if (!opt->quiet)
        stop.verbose = keep.verbose = stdout;
    backup.save_every_steps = opt->backup_steps;
    backup.delete_backup = 0;
    fit.interrupt = &backup_signal;
    fit.callbacks = callbacks;
    fit.n_callbacks = 1;
    *saved = opt->validation_split > 0.0f;
    err = fmnn_backup_and_restore(&callbacks[0], backup_dir, &backup);
    if (err == FMNN_OK && *saved) {
        if ((err = fmnn_early_stopping(&callbacks[1], &stop)) == FMNN_OK)
            err = fmnn_model_checkpoint(&callbacks[2], model_path, &keep);
        fit.n_callbacks = 3;
    }
    if (err == FMNN_OK)
        err = fmnn_model_fit(m, train_set->images, train_set->labels, &fit, history);
    for (int i = 0; i < 3; i++)
        fmnn_callback_free(callbacks[i]);
    if (err == FMNN_OK && (*history)->stop_reason == FMNN_STOP_CALLBACK)
        printf("%s stopped training after epoch %d\n", (*history)->stopped_by, (*history)->stopped_epoch + 1);
    if (err == FMNN_ENUMERIC) {
        fprintf(stderr, "warning: %s\n", fmnn_last_error());
        return FMNN_OK;
    }
    return err;
}

/* Predicts the test set's classes into pred. */
static int predict_classes(fmnn_model *m, const fmnn_dataset *test, int *pred)
{
    fmnn_tensor *probs;
    const float *p;
    int err = fmnn_model_predict(m, test->images, 256, &probs);

    if (err != FMNN_OK)
        return err;
    p = fmnn_tensor_const_data(probs);
    for (int i = 0; i < test->count; i++)
        pred[i] = program_argmax(p + (size_t)i * PROGRAM_NUM_CLASSES, PROGRAM_NUM_CLASSES);
    fmnn_tensor_free(probs);
    return FMNN_OK;
}

/* The history's last value, or NAN when there is none. */
static float last(const float *values, int epochs)
{
    return values != NULL && epochs > 0 ? values[epochs - 1] : NAN;
}

/* ==== main ============================================================ */

int main(int argc, char **argv)
{
    options opt;
    fmnn_dataset *train_set = NULL, *test = NULL;
    fmnn_model *model = NULL;
    fmnn_history *history = NULL;
    epoch_times times = { NULL, 0 };
    report_metrics metrics = { 0 };
    long confusion[PROGRAM_NUM_CLASSES * PROGRAM_NUM_CLASSES];
    int *y_true = NULL, *y_pred = NULL, status = 1, saved = 0, err;
    float test_loss, test_accuracy;
    double start, seconds, epoch_sum = 0;
    char path[4096], backup_dir[4200], settings[512];
    study_backup backup = { .n_runs = 0 };
    char *text;

    switch (parse_args(argc, argv, &opt)) {
    case 1: return 0;
    case 2: return 2;
    }
    if (opt.threads > 0 && fmnn_set_num_threads(opt.threads) != FMNN_OK) {
        fprintf(stderr, "error: %s\n", fmnn_last_error());
        return 1;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/" MODEL_FILE, opt.out_dir) >= sizeof path) {
        fprintf(stderr, "error: the --out path is too long\n");
        return 1;
    }
    /* What the backup must have been made with: all that changes the results. */
    snprintf(settings, sizeof settings,
             "epochs=%d batch-size=%d learning-rate=%a validation-split=%a train-limit=%d test-limit=%d "
             "seed=%llu threads=%d", opt.epochs, opt.batch, (double)opt.learning_rate,
             (double)opt.validation_split, opt.train_limit, opt.test_limit, opt.seed, fmnn_get_num_threads());
    if (program_make_dirs(opt.out_dir) != 0 || backup_catch_signals() != 0 ||
        backup_open(&backup, opt.out_dir, settings, opt.restart) != 0)
        return 1;
    backup_training_dir(&backup, "modern_cnn", backup_dir, sizeof backup_dir);

    /* ---- data ---- */
    printf("libfmnn %s, %d threads, data from %s\n", fmnn_version_string(),
           fmnn_get_num_threads(), opt.data_dir);
    if (program_load_split(&train_set, opt.data_dir, "train", opt.train_limit) != 0 ||
        program_load_split(&test, opt.data_dir, "t10k", opt.test_limit) != 0)
        goto done;
    if (backup.resumed)
        printf("Going on from the backup in %s/\n", backup.dir);
    printf("%d training images (the last %g%% for validation), %d test images\n",
           train_set->count, 100.0 * opt.validation_split, test->count);

    times.seconds = malloc(sizeof *times.seconds * (size_t)opt.epochs);
    y_true = malloc(sizeof *y_true * (size_t)test->count);
    y_pred = malloc(sizeof *y_pred * (size_t)test->count);
    if (times.seconds == NULL || y_true == NULL || y_pred == NULL) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    for (int i = 0; i < test->count; i++)
        y_true[i] = test->classes[i];

    /* ---- model, training, test ---- */
    if ((err = build_and_compile(&model, &opt, train_set->count)) != FMNN_OK)
        goto fail;
    if (!opt.quiet && (err = fmnn_model_summary(model, stdout)) != FMNN_OK)
        goto fail;
    printf("--- Training %s: %d epoch%s, batch size %d, AdamW, learning rate %g in a cosine decay ---\n",
           MODEL_NAME, opt.epochs, opt.epochs == 1 ? "" : "s", opt.batch,
           (double)opt.learning_rate);
    start = program_now();
    err = train(model, &opt, train_set, path, backup_dir, &history, &times, &saved);
    if (err == FMNN_ECANCELED && backup_signal) {
        status = backup_interrupted(&backup, PROGRAM);
        goto done;
    }
    if (err != FMNN_OK)
        goto fail;
    if ((err = fmnn_model_evaluate(model, test->images, test->labels, 256,
                                   &test_loss, &test_accuracy)) != FMNN_OK)
        goto fail;
    seconds = program_now() - start;
    for (int e = 0; e < times.count; e++)
        epoch_sum += times.seconds[e];
    printf("Trained %d epoch%s in %.1f s (%.1f s per epoch); with the test set, %.1f s\n",
           times.count, times.count == 1 ? "" : "s", epoch_sum,
           times.count ? epoch_sum / times.count : 0.0, seconds);
    printf("%s - Train accuracy: %.4f", MODEL_NAME, last(history->accuracy, history->epochs));
    if (history->has_validation)
        printf(", Val accuracy: %.4f", last(history->val_accuracy, history->epochs));
    printf("\n");
    printf("%s - Test loss: %.4f, Test accuracy: %.4f\n", MODEL_NAME, test_loss, test_accuracy);

    fmnn_dataset_free(train_set); /* only the test set is needed from here on */
    train_set = NULL;
    if (!saved && (err = fmnn_model_save(model, path, 0)) != FMNN_OK) /* else ModelCheckpoint wrote it */
        goto fail;
    printf("Saved %s\n", path);
    if ((err = predict_classes(model, test, y_pred)) != FMNN_OK)
        goto fail;

    /* ---- reports ---- */
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
    printf("\n--- Classification Report ---\n%s\n", text);
    free(text);
    {
        const report_run run = {
            MODEL_NAME, history->epochs, history->loss, history->accuracy,
            history->val_loss, history->val_accuracy, test_loss, test_accuracy, seconds
        };
        const report_data data = {
            &run, 1, PROGRAM_NUM_CLASSES, program_class_names, MODEL_NAME,
            confusion, &metrics,
            { test->count < GRID_IMAGES ? test->count : GRID_IMAGES,
              fmnn_tensor_dim(test->images, 1), fmnn_tensor_dim(test->images, 2),
              fmnn_tensor_const_data(test->images), y_true, y_pred },
            "A modern CNN on Fashion-MNIST: Conv2D-BatchNormalization-ReLU blocks "
            "and global average pooling"
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
    goto done;

fail:
    fprintf(stderr, "error: %s: %s\n", MODEL_NAME, fmnn_last_error());
done:
    report_metrics_free(&metrics);
    backup_close(&backup);
    fmnn_history_free(history);
    fmnn_model_free(model);
    free(times.seconds);
    free(y_true);
    free(y_pred);
    fmnn_dataset_free(train_set);
    fmnn_dataset_free(test);
    return status;
}
