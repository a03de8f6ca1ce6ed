/*
 * bench.c - training and inference throughput of the notebook's CNNs.
 *
 * Prints the same figures as the PyTorch reference (shared/bench/torch_ref.py):
 *     train_images_per_s X   (Adam steps at --batch, default 64)
 *     infer_images_per_s Y   (predict on 1024 images)
 * followed by the time each layer spends forward and backward, and the
 * model's floating-point work against what the SGEMM sustains.
 *
 *     build/bench/fmnn_bench [--threads N] [--steps S] [--batch B]
 *                            [--model base|l1|l2|dropout|l2_dropout] [--data DIR]
 *                            [--load FILE]
 *     build/bench/fmnn_bench --gemm [--threads N]
 *
 * --load times a saved model instead of a freshly initialised one: the
 * weights of a trained model (say fmnn-results/l2.fmnn from `make
 * experiments`) can be slower to compute with than random ones.
 *
 * --gemm times only the matrix products: the shapes of the Base model's
 * convolutions at batch 64 and a large square one, through our SGEMM,
 * through OpenBLAS with the same number of threads, and through our bf16
 * GEMM on each of its paths this CPU runs.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "fmnn.h"
#include "kernels/gemm_bf16_impl.h" /* fmnn__gemm_bf16_select */
#include "kernels/gemm_impl.h"      /* fmnn__gemm_select: a benchmark may look inside */
#include "model_impl.h"        /* per-layer profiling */
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
                 "                  [--load FILE]\n"
                 "       fmnn_bench --gemm [--threads N]\n"
                 "       fmnn_bench --scaling [--model NAME] [--data DIR]\n"
                 "  NAME is one of base, l1, l2, dropout, l2_dropout (default base).\n"
                 "  Without --data the images are synthetic (seeded noise).\n"
                 "  --load FILE times a saved model (a .fmnn file) instead of NAME.\n"
                 "  --scaling: images/s and peak memory at batch 1 to 1024 on 1 and 2 threads.\n");
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

/*
 * Multiply-adds per sample of the Conv2D and Dense layers: each kernel
 * weight meets every output pixel (or row) once.  Training does this three
 * times (forward, dW, dX) except for dX of the first layer, which nobody needs.
 */
static void model_flops(const fmnn_model *m, double *infer, double *train)
{
    *infer = *train = 0.0;
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *l = m->layers[i];
        if (!l->n_kernel)
            continue;
        double rows = (double)fmnn__shape_size(&l->out) / l->out.dims[l->out.rank - 1];
        double flops = 2.0 * rows * (double)l->n_kernel;
        *infer += flops;
        *train += (i == 0 ? 2.0 : 3.0) * flops;
    }
}

typedef struct gemm_shape {
    const char *what;
    int trans_a, trans_b, m, n, k;
} gemm_shape;

typedef void gemm_fn(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc);

static void openblas_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                          const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
}

/* GFLOP/s of C = op(A) op(B), best of a few repetitions. */
static double time_gemm(const gemm_shape *s, gemm_fn *gemm, float *a, float *b, float *c)
{
    const int lda = s->trans_a ? s->m : s->k, ldb = s->trans_b ? s->k : s->n;
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        double t = now();
        gemm(s->trans_a, s->trans_b, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        t = now() - t;
        if (rep > 0 && t < best) /* the first call warms caches and threads */
            best = t;
    }
    return 2.0 * s->m * s->n * s->k / best * 1e-9;
}

/* The bf16 GEMM's paths (gemm_bf16.c), one column each. */
static const char *const bf16_paths[] = { "amx", "avx512bf16", "portable" };
#define N_BF16_PATHS ((int)(sizeof bf16_paths / sizeof bf16_paths[0]))

static int bench_gemm(int threads)
{
    /* Conv2D 13x13x256 -> 11x11x128 at batch 64 runs in groups of 15
     * images: 15 * 121 = 1815 rows of im2col, 3 * 3 * 256 = 2304 wide;
     * the first Conv2D, 28x28x1 -> 26x26x256, in groups of 15 too. */
    static const gemm_shape shapes[] = {
        { "conv2d forward     Y  = col K", 0, 0, 10140, 256, 9 },
        { "conv2d_1 forward   Y  = col K", 0, 0, 1815, 128, 2304 },
        { "conv2d_1 backward  dK = col^T dY", 1, 0, 2304, 128, 1815 },
        { "conv2d_1 backward  dcol = dY K^T", 0, 1, 1815, 2304, 128 },
        { "conv2d_2 forward   Y  = col K", 0, 0, 576, 64, 1152 },
        { "square 2048", 0, 0, 2048, 2048, 2048 },
    };
    const size_t count = sizeof shapes / sizeof shapes[0];
    size_t floats = 0; /* the largest operand */
    for (size_t i = 0; i < count; i++) {
        const size_t m = (size_t)shapes[i].m, n = (size_t)shapes[i].n, k = (size_t)shapes[i].k;
        const size_t largest = m * k > k * n ? (m * k > m * n ? m * k : m * n) : (k * n > m * n ? k * n : m * n);
        floats = largest > floats ? largest : floats;
    }
    float *a = malloc(floats * sizeof *a), *b = malloc(floats * sizeof *b), *c = malloc(floats * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "fmnn_bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < floats; i++) {
        a[i] = (float)(i % 97) / 97.0f - 0.5f;
        b[i] = (float)(i % 89) / 89.0f - 0.5f;
    }
    printf("sgemm GFLOP/s, %d threads (ours: %s; OpenBLAS with %d threads); bf16 GEMM per path (- where this "
           "CPU has none)\n",
           threads, fmnn__gemm_path(), threads);
    printf("  %-34s %6s %6s %6s %8s %8s", "shape", "m", "n", "k", "ours", "openblas");
    for (int p = 0; p < N_BF16_PATHS; p++)
        printf(" %10s", bf16_paths[p]);
    printf("\n");
    for (size_t i = 0; i < count; i++) {
        const gemm_shape *s = &shapes[i];
        double ours = time_gemm(s, fmnn__gemm, a, b, c), bf16[N_BF16_PATHS];
        for (int p = 0; p < N_BF16_PATHS; p++)
            bf16[p] = fmnn__gemm_bf16_select(bf16_paths[p]) ? time_gemm(s, fmnn__gemm_bf16, a, b, c) : 0.0;
        fmnn__gemm_bf16_select(NULL);
        /* OpenBLAS last, then a pause: its idle threads keep spinning
         * (sched_yield) for a while after a call, taking a core from
         * whatever runs next. */
        openblas_set_num_threads(threads);
        double theirs = time_gemm(s, openblas_gemm, a, b, c);
        openblas_set_num_threads(1);
        nanosleep(&(struct timespec){ .tv_nsec = 300000000 }, NULL);
        printf("  %-34s %6d %6d %6d %8.1f %8.1f", s->what, s->m, s->n, s->k, ours, theirs);
        for (int p = 0; p < N_BF16_PATHS; p++)
            if (bf16[p] > 0.0)
                printf(" %10.1f", bf16[p]);
            else
                printf(" %10s", "-");
        printf("\n");
    }
    free(a);
    free(b);
    free(c);
    return 0;
}

/* One image at a time, as a server answers requests: the mean time of
 * LATENCY_REPS predictions of successive images through an inference
 * context, into one output tensor, after one warm-up (the reference
 * scripts time 200 the same way). */
#define LATENCY_REPS 200

static double latency_batch1(fmnn_model *m, fmnn_tensor *x, int n)
{
    fmnn_inference *ctx = NULL;
    fmnn_tensor *one = NULL, *out = NULL;
    int err = fmnn_inference_new(&ctx, m);
    if (!err)
        err = fmnn_tensor_new(&out, 2, (int[]){ 1, 10 });
    if (err)
        die("the latency's context", err);
    const int dims[4] = { 1, 28, 28, 1 };
    double t = 0.0;
    for (int r = -1; r < LATENCY_REPS && !err; r++) {
        if (r == 0)
            t = now();
        fmnn_tensor_wrap(&one, fmnn_tensor_data(x) + (size_t)((r + 1) % n) * 784, 4, dims);
        err = fmnn_inference_predict_into(ctx, one, 1, out);
        fmnn_tensor_free(one);
    }
    if (err)
        die("predict one image", err);
    const double seconds = now() - t;
    fmnn_tensor_free(out);
    fmnn_inference_free(ctx);
    return 1e3 * seconds / LATENCY_REPS;
}

/* What make_data gave back. */
static void free_data(fmnn_tensor *x, fmnn_tensor *y, fmnn_dataset *dataset)
{
    if (dataset) {
        fmnn_dataset_free(dataset);
        return;
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* A study model, compiled as the study compiles it. */
static fmnn_model *build_model(const study_model *arch)
{
    fmnn_model *m;
    int err;
    if ((err = study_build(&m, arch)) || (err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42)))
        die("building the model", err);
    return m;
}

/* ---- the scaling table ---- */

/* The peak resident memory since the last reset_peak, in MB; -1 where
 * the kernel does not say. */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5" resets VmHWM (Linux 4.0) */
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double peak_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1.0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kb < 0 ? -1.0 : kb / 1024.0;
}

#define SCALING_IMAGES 2048

/* Training and inference at batch 1, 8, 64, 256 and 1024 on 1 and 2
 * threads, each with a model of its own: images/s, and the process's
 * peak memory while it ran (the program and its 2048 images included). */
static int bench_scaling(const study_model *arch, const char *data)
{
    static const int batches[] = { 1, 8, 64, 256, 1024 };
    fmnn_tensor *x = NULL, *y = NULL, *probs = NULL;
    fmnn_dataset *dataset = NULL;
    make_data(data, SCALING_IMAGES, &x, &y, &dataset);
    int err = fmnn_tensor_new(&probs, 2, (int[]){ SCALING_IMAGES / 2, 10 });
    if (err)
        die("the scaling table's output", err);
    printf("scaling: model %s, images/s and peak memory (MB)\n", arch->key);
    printf("  %7s %6s %12s %12s %10s\n", "threads", "batch", "train", "infer", "peak MB");
    for (int threads = 1; threads <= 2; threads++) {
        fmnn_set_num_threads(threads);
        for (size_t k = 0; k < sizeof batches / sizeof *batches; k++) {
            const int b = batches[k], steps = b >= 512 ? 2 : 512 / b;
            reset_peak();
            fmnn_model *m = build_model(arch);
            fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
            o.batch_size = b;
            o.shuffle = 0;
            o.verbose = 0;
            fmnn_tensor *warm_x, *warm_y, *run_x, *run_y, *infer_x, *warm_out;
            const int trained = steps * b > SCALING_IMAGES ? SCALING_IMAGES : steps * b;
            int xs[4] = { b, 28, 28, 1 }, ys[2] = { b, 10 };
            fmnn_tensor_wrap(&warm_x, fmnn_tensor_data(x), 4, xs);
            fmnn_tensor_wrap(&warm_y, fmnn_tensor_data(y), 2, ys);
            fmnn_tensor_wrap(&warm_out, fmnn_tensor_data(probs), 2, ys);
            xs[0] = ys[0] = trained;
            fmnn_tensor_wrap(&run_x, fmnn_tensor_data(x), 4, xs);
            fmnn_tensor_wrap(&run_y, fmnn_tensor_data(y), 2, ys);
            xs[0] = SCALING_IMAGES / 2;
            fmnn_tensor_wrap(&infer_x, fmnn_tensor_data(x), 4, xs);
            if ((err = fmnn_model_fit(m, warm_x, warm_y, &o, NULL)))
                die("warm-up", err);
            double t = now();
            if ((err = fmnn_model_fit(m, run_x, run_y, &o, NULL)))
                die("training", err);
            const double train = trained / (now() - t);
            fmnn_inference *ctx = NULL;
            if ((err = fmnn_inference_new(&ctx, m)) || (err = fmnn_inference_predict_into(ctx, warm_x, b, warm_out)))
                die("inference", err);
            t = now();
            if ((err = fmnn_inference_predict_into(ctx, infer_x, b, probs)))
                die("inference", err);
            const double infer = (SCALING_IMAGES / 2) / (now() - t);
            printf("  %7d %6d %12.1f %12.1f %10.1f\n", threads, b, train, infer, peak_mb());
            fflush(stdout);
            fmnn_inference_free(ctx);
            fmnn_model_free(m);
            fmnn_tensor_free(warm_x);
            fmnn_tensor_free(warm_y);
            fmnn_tensor_free(run_x);
            fmnn_tensor_free(run_y);
            fmnn_tensor_free(infer_x);
            fmnn_tensor_free(warm_out);
        }
    }
    fmnn_tensor_free(probs);
    free_data(x, y, dataset);
    return 0;
}

int main(int argc, char **argv)
{
    int gemm_only = 0, scaling = 0;
    int threads = 2, steps = 100, batch = 64;
    const char *model_name = "base", *data = NULL, *load = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--gemm")) {
            gemm_only = 1;
            continue;
        }
        if (!strcmp(a, "--scaling")) {
            scaling = 1;
            continue;
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
        else if (!strcmp(a, "--load"))
            load = argv[++i];
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
    if (gemm_only)
        return bench_gemm(threads);
    if (scaling)
        return bench_scaling(arch, data);

    const int warmup = 5, infer_n = 1024, infer_reps = 5;
    int n = (warmup + steps) * batch > infer_n ? (warmup + steps) * batch : infer_n;
    fmnn_tensor *x = NULL, *y = NULL;
    fmnn_dataset *dataset = NULL;
    make_data(data, n, &x, &y, &dataset);

    fmnn_model *m;
    if (load) {
        if ((err = fmnn_model_load(&m, load)))
            die(load, err);
        model_name = load;
    } else {
        m = build_model(arch);
    }

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
        fwd[i] = m->buf.profile_forward[i];
        bwd[i] = m->buf.profile_backward[i];
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
    const double latency_ms = latency_batch1(m, x, n);

    printf("fmnn %s threads=%d model=%s batch=%d\n", fmnn_version_string(), threads, model_name, batch);
    printf("kernels: %s\n", fmnn_kernel_paths());
    printf("train_images_per_s %.1f\n", steps * batch / train_s);
    printf("infer_images_per_s %.1f\n", infer_reps * infer_n / infer_s);
    printf("latency_ms_batch1 %.3f\n", latency_ms);
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
    double infer_flops, train_flops;
    model_flops(m, &infer_flops, &train_flops);
    printf("\nwork per image (Conv2D and Dense): %.1f MFLOP trained, %.1f MFLOP inferred\n",
           train_flops * 1e-6, infer_flops * 1e-6);
    printf("sustained: %.1f GFLOP/s training, %.1f GFLOP/s inference\n",
           train_flops * steps * batch / train_s * 1e-9, infer_flops * infer_reps * infer_n / infer_s * 1e-9);
    fmnn_tensor_free(warm_x);
    fmnn_tensor_free(warm_y);
    fmnn_tensor_free(run_x);
    fmnn_tensor_free(run_y);
    fmnn_tensor_free(infer_x);
    fmnn_model_free(m);
    free_data(x, y, dataset);
    return 0;
}
