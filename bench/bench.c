/*
 * bench.c - training and inference throughput of the notebook's CNNs.
 *
 * Prints the same figures as the PyTorch reference (shared/bench/torch_ref.py):
 *     train_images_per_s X   (Adam steps at --batch, default 64)
 *     infer_images_per_s Y   (predict on 1024 images)
 * followed by the time each layer spends forward and backward.
 *
 *     build/bench/fmnn_bench [--threads N] [--steps S] [--batch B]
 *                            [--model base|l1|l2|dropout|l2_dropout] [--data DIR]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmnn.h"
#include "model_impl.h" /* per-layer profiling: a benchmark may look inside */
#include "support/models.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "fmnn_bench: %s: %s: %s\n", what, fmnn_strerror(err), fmnn_last_error());
    exit(1);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fmnn_bench [--threads N] [--steps S] [--batch B] [--model NAME] [--data DIR]\n"
                 "  NAME is one of base, l1, l2, dropout, l2_dropout (default base).\n"
                 "  Without --data the images are synthetic (seeded noise).\n");
}

static int int_arg(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 1000000) {
        usage(stderr);
        exit(2);
    }
    return (int)v;
}

/* n samples: real images when dir is given, else seeded noise. */
static void make_data(const char *dir, int n, fmnn_tensor **x, fmnn_tensor **y, fmnn_dataset **keep)
{
    int err;
    if (dir) {
        char images[4096], labels[4096];
        snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", dir);
        snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", dir);
        if ((err = fmnn_dataset_load(keep, images, labels, 10, n)))
            die("loading data", err);
        if ((*keep)->count < n) {
            fprintf(stderr, "fmnn_bench: %s has only %d images, %d needed\n", images, (*keep)->count, n);
            exit(1);
        }
        *x = (*keep)->images;
        *y = (*keep)->labels;
        return;
    }
    if ((err = fmnn_tensor_new(x, 4, (int[]){ n, 28, 28, 1 })) ||
        (err = fmnn_tensor_new(y, 2, (int[]){ n, 10 })))
        die("allocating data", err);
    float *xd = fmnn_tensor_data(*x), *yd = fmnn_tensor_data(*y);
    uint64_t s = 12345;
    for (size_t i = 0; i < fmnn_tensor_size(*x); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        xd[i] = (float)(s >> 40) / 16777216.0f;
    }
    for (int i = 0; i < n; i++)
        yd[i * 10 + i % 10] = 1.0f;
}

int main(int argc, char **argv)
{
    int threads = 2, steps = 100, batch = 64;
    const char *model_name = "base", *data = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--threads"))
            threads = int_arg(argv[++i]);
        else if (!strcmp(a, "--steps"))
            steps = int_arg(argv[++i]);
        else if (!strcmp(a, "--batch"))
            batch = int_arg(argv[++i]);
        else if (!strcmp(a, "--model"))
            model_name = argv[++i];
        else if (!strcmp(a, "--data"))
            data = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    const study_model *arch = study_find(model_name);
    if (!arch) {
        usage(stderr);
        return 2;
    }
    int err;
    if ((err = fmnn_set_num_threads(threads)))
        die("--threads", err);

    const int warmup = 5, infer_n = 1024, infer_reps = 5;
    int n = (warmup + steps) * batch > infer_n ? (warmup + steps) * batch : infer_n;
    fmnn_tensor *x = NULL, *y = NULL;
    fmnn_dataset *dataset = NULL;
    make_data(data, n, &x, &y, &dataset);

    fmnn_model *m;
    if ((err = study_build(&m, arch)) ||
        (err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42)))
        die("building the model", err);

    /* Training: fit over consecutive slices, so every step sees new images. */
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch;
    o.shuffle = 0;
    o.verbose = 0;
    fmnn_tensor *warm_x, *warm_y, *run_x, *run_y;
    int xs[4] = { warmup * batch, 28, 28, 1 }, ys[2] = { warmup * batch, 10 };
    fmnn_tensor_wrap(&warm_x, fmnn_tensor_data(x), 4, xs);
    fmnn_tensor_wrap(&warm_y, fmnn_tensor_data(y), 2, ys);
    xs[0] = ys[0] = steps * batch;
    fmnn_tensor_wrap(&run_x, fmnn_tensor_data(x) + (size_t)warmup * batch * 784, 4, xs);
    fmnn_tensor_wrap(&run_y, fmnn_tensor_data(y) + (size_t)warmup * batch * 10, 2, ys);
    if ((err = fmnn_model_fit(m, warm_x, warm_y, &o, NULL)))
        die("warm-up", err);
    if ((err = fmnn__model_profile(m, 1)))
        die("profiling", err);
    double t = now();
    if ((err = fmnn_model_fit(m, run_x, run_y, &o, NULL)))
        die("training", err);
    double train_s = now() - t;
    double fwd[256] = { 0 }, bwd[256] = { 0 };
    for (int i = 0; i < fmnn_model_layer_count(m) && i < 256; i++) {
        fwd[i] = m->profile_forward[i];
        bwd[i] = m->profile_backward[i];
    }
    fmnn__model_profile(m, 0);

    /* Inference on 1024 images, as the reference does. */
    fmnn_tensor *infer_x, *probs;
    int is[4] = { infer_n, 28, 28, 1 };
    fmnn_tensor_wrap(&infer_x, fmnn_tensor_data(x), 4, is);
    if ((err = fmnn_model_predict(m, infer_x, infer_n, &probs)))
        die("predict", err);
    fmnn_tensor_free(probs);
    t = now();
    for (int r = 0; r < infer_reps; r++) {
        if ((err = fmnn_model_predict(m, infer_x, infer_n, &probs)))
            die("predict", err);
        fmnn_tensor_free(probs);
    }
    double infer_s = now() - t;

    printf("fmnn %s threads=%d model=%s batch=%d\n", fmnn_version_string(), threads, model_name, batch);
    printf("train_images_per_s %.1f\n", steps * batch / train_s);
    printf("infer_images_per_s %.1f\n", infer_reps * infer_n / infer_s);
    printf("\nper-layer time per training step (ms), %d steps:\n", steps);
    printf("  %-30s %10s %10s\n", "layer", "forward", "backward");
    double total_f = 0, total_b = 0;
    for (int i = 0; i < fmnn_model_layer_count(m); i++) {
        const fmnn_layer *l = fmnn_model_layer(m, i);
        char name[64];
        snprintf(name, sizeof name, "%s (%s)", fmnn_layer_name(l), fmnn_layer_type(l));
        printf("  %-30s %10.2f %10.2f\n", name, 1e3 * fwd[i] / steps, 1e3 * bwd[i] / steps);
        total_f += fwd[i];
        total_b += bwd[i];
    }
    printf("  %-30s %10.2f %10.2f\n", "total", 1e3 * total_f / steps, 1e3 * total_b / steps);
    printf("  %-30s %10.2f\n", "step (incl. loss, Adam, copy)", 1e3 * train_s / steps);
    fmnn_tensor_free(warm_x);
    fmnn_tensor_free(warm_y);
    fmnn_tensor_free(run_x);
    fmnn_tensor_free(run_y);
    fmnn_tensor_free(infer_x);
    fmnn_model_free(m);
    if (dataset)
        fmnn_dataset_free(dataset);
    else {
        fmnn_tensor_free(x);
        fmnn_tensor_free(y);
    }
    return 0;
}
