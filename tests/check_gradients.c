/*
 * check_gradients.c - finite-difference checks of every analytic gradient
 * in libfmnn: the input and parameter gradients of each layer (driven
 * directly through its ops), each loss (through fmnn__loss), the kernel
 * regularizers, and whole compiled models (the library's own forward and
 * backward passes, fusions and conv-pool pipeline included).
 *
 * Helpers are in gradcheck.c; GC_VERBOSE=1 prints every check's worst
 * error as a fraction of its tolerance.  The suite runs the library on
 * one thread (GC_THREADS=n to change that); layers_threads compares the
 * parallel loops with two threads against one.
 *
 * Tolerances: |analytic - numeric| <= atol + rtol * max(|a|, |n|) with
 * layers h = 1e-2, rtol = 1e-2, atol = 1e-3; losses h = 1e-3, 1e-3, 1e-5;
 * regularizers h = 1e-3, 1e-4, 1e-6; whole models h = 1e-3, 1e-2, 2e-4.
 * The forward passes of Conv2D and MaxPool2D are also compared with
 * TensorFlow's definition, since a gradient check alone cannot see a
 * forward pass that is consistently wrong.
 *
 * Every check also asserts that the gradient is not trivially zero, and
 * that backward overwrote every entry (outputs hold a sentinel before).
 * Kinks are kept out of reach of the step h: ReLU pre-activations are kept
 * at least 2h from 0 (by reseeding), and MaxPool inputs are distinct
 * values 0.05 apart (> 2h).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* 0: compare every entry.  The layers here are small enough for that. */
#define ALL 0

/* A gradient whose largest entry is below this is "trivially zero". */
#define MIN_GRAD 1e-3

/* ---- assertions ------------------------------------------------------ */

static void assert_stats(const gc_stats *s, const char *what)
{
    ck_assert_msg(s->checked > 0, "%s: nothing was checked", what);
    ck_assert_msg(s->failed == 0,
                  "%s: %zu of %zu entries disagree with central differences (worst %.3g x the tolerance)",
                  what, s->failed, s->checked, s->max_ratio);
    ck_assert_msg(s->max_grad > MIN_GRAD, "%s: the gradient is trivially zero (max |g| = %.3g)", what,
                  s->max_grad);
}

static void assert_report(const gc_layer_report *r, const gc_layer *g, const char *name)
{
    char what[128];
    snprintf(what, sizeof what, "%s: din", name);
    assert_stats(&r->din, what);
    if (g->layer->n_kernel) {
        snprintf(what, sizeof what, "%s: kernel_grad", name);
        assert_stats(&r->kernel, what);
    }
    if (g->layer->n_bias) {
        snprintf(what, sizeof what, "%s: bias_grad", name);
        assert_stats(&r->bias, what);
    }
}

static void setup_layer(gc_layer *g, fmnn_layer *layer, int rank, const int *dims, int batch,
                        uint64_t seed)
{
    int err = gc_layer_init(g, layer, rank, dims, batch, 0);
    ck_assert_msg(err == FMNN_OK, "layer setup failed (%d): %s", err, fmnn_last_error());
    gc_layer_fill(g, seed);
}

/* Reseeds until every pre-activation of a fused ReLU is at least margin
 * from 0, so no perturbation of one value by h crosses the kink. */
static void avoid_relu_kinks(gc_layer *g, uint64_t seed, double margin)
{
    for (int tries = 0; gc_layer_min_preactivation(g) < margin; tries++) {
        ck_assert_msg(tries < 20000, "no sample keeps the ReLU pre-activations %g from 0", margin);
        gc_layer_fill(g, seed + 1000003u * (uint64_t)(tries + 1));
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d;
    }
    return m;
}

static const char *activation_name(fmnn_activation_kind kind)
{
    return gc_activation_name(kind);
}

/* An element-wise activation in double, for forward references. */
static double activate_reference(fmnn_activation_kind kind, double v)
{
    return gc_activation_reference(kind, v);
}

/* The layer's forward output (float32) against a double reference. */
static void assert_forward(const char *name, const float *y, const double *ref, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(y[i] - ref[i]) <= 2e-5 * fmax(1.0, fabs(ref[i])),
                      "%s: forward output[%zu] = %.7g, by definition %.7g", name, i, (double)y[i], ref[i]);
}

/* ---- Conv2D ---------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int h, w, c, filters, kh, kw, sh, sw;
    fmnn_padding padding;
    fmnn_activation_kind activation;
    int batch;
    int out_h, out_w; /* as TensorFlow computes them */
} conv_case;

static const conv_case conv_cases[] = {
    { "valid 3x3 stride 1", 5, 6, 3, 4, 3, 3, 1, 1, FMNN_PADDING_VALID, FMNN_LINEAR, 2, 3, 4 },
    { "same 3x3 stride 1 tanh", 5, 6, 3, 4, 3, 3, 1, 1, FMNN_PADDING_SAME, FMNN_TANH, 2, 5, 6 },
    { "valid 3x3 stride 2 sigmoid", 7, 6, 3, 4, 3, 3, 2, 2, FMNN_PADDING_VALID, FMNN_SIGMOID, 2, 3, 2 },
    { "same 3x3 stride 2", 7, 6, 3, 4, 3, 3, 2, 2, FMNN_PADDING_SAME, FMNN_LINEAR, 2, 4, 3 },
    { "same 2x3 strides 1x2 tanh", 5, 6, 3, 4, 2, 3, 1, 2, FMNN_PADDING_SAME, FMNN_TANH, 2, 5, 3 },
    { "valid 2x3 stride 1", 4, 5, 3, 4, 2, 3, 1, 1, FMNN_PADDING_VALID, FMNN_LINEAR, 2, 3, 3 },
    { "same 4x4 stride 3 sigmoid", 6, 7, 2, 3, 4, 4, 3, 3, FMNN_PADDING_SAME, FMNN_SIGMOID, 2, 2, 3 },
    { "valid 3x3 strides 3x4 (gaps)", 7, 9, 2, 3, 3, 3, 3, 4, FMNN_PADDING_VALID, FMNN_LINEAR, 2, 2, 2 },
    { "pointwise 1x1", 4, 5, 3, 4, 1, 1, 1, 1, FMNN_PADDING_VALID, FMNN_LINEAR, 2, 4, 5 },
    { "pointwise 1x1 same sigmoid", 4, 5, 3, 4, 1, 1, 1, 1, FMNN_PADDING_SAME, FMNN_SIGMOID, 2, 4, 5 },
    { "1x1 stride 2", 5, 5, 3, 4, 1, 1, 2, 2, FMNN_PADDING_VALID, FMNN_LINEAR, 2, 3, 3 },
    { "same 3x3 relu", 4, 4, 2, 3, 3, 3, 1, 1, FMNN_PADDING_SAME, FMNN_RELU, 2, 4, 4 },
    { "valid 2x2 stride 2 relu", 6, 6, 3, 4, 2, 2, 2, 2, FMNN_PADDING_VALID, FMNN_RELU, 2, 3, 3 },
    { "kernel = input, batch 1", 3, 3, 1, 1, 3, 3, 1, 1, FMNN_PADDING_VALID, FMNN_LINEAR, 1, 1, 1 },
};
#define N_CONV_CASES ((int)(sizeof conv_cases / sizeof conv_cases[0]))

START_TEST(conv2d_gradients)
{
    const conv_case *k = &conv_cases[_i];
    fmnn_conv2d_options o = { .stride_h = k->sh, .stride_w = k->sw, .padding = k->padding,
                              .activation = k->activation };
    gc_layer g;
    char name[96];
    snprintf(name, sizeof name, "Conv2D %s", k->name);
    setup_layer(&g, fmnn_conv2d(k->filters, k->kh, k->kw, &o), 3, (int[]){ k->h, k->w, k->c },
                k->batch, 100 + (uint64_t)_i);
    const fmnn_shape *out = &g.layer->out;
    ck_assert_msg(out->rank == 3 && out->dims[0] == k->out_h && out->dims[1] == k->out_w &&
                      out->dims[2] == k->filters,
                  "%s: output (%d, %d, %d), expected (%d, %d, %d)", name, out->dims[0], out->dims[1],
                  out->dims[2], k->out_h, k->out_w, k->filters);
    gc_tol tol = GC_TOL_LAYER;
    if (k->activation == FMNN_RELU)
        avoid_relu_kinks(&g, 100 + (uint64_t)_i, 2 * tol.h);

    /* The forward pass is what the gradient is checked against: pin it. */
    double *ref = calloc(g.n_out, sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    int rh, rw;
    gc_conv2d_reference(g.x, k->batch, k->h, k->w, k->c, g.kernel, g.bias, k->filters, k->kh, k->kw,
                        k->sh, k->sw, k->padding, ref, &rh, &rw);
    ck_assert(rh == k->out_h && rw == k->out_w);
    for (size_t i = 0; i < g.n_out; i++)
        ref[i] = activate_reference(k->activation, ref[i]);
    gc_layer_objective(&g);
    assert_forward(name, g.y, ref, g.n_out);
    free(ref);

    gc_layer_report r = gc_layer_check(&g, name, ALL, 7, &tol);
    assert_report(&r, &g, name);
    gc_layer_free(&g);
}
END_TEST

/* ---- MaxPool2D ---------------------------------------------------------------- */

typedef struct pool_case {
    const char *name;
    int h, w, c, ph, pw, sh, sw; /* strides 0: the pool size */
    fmnn_padding padding;
    int batch;
    int out_h, out_w;
} pool_case;

static const pool_case pool_cases[] = {
    { "2x2 valid", 4, 6, 3, 2, 2, 0, 0, FMNN_PADDING_VALID, 2, 2, 3 },
    { "3x3 stride 2 same (overlap + padding)", 7, 6, 2, 3, 3, 2, 2, FMNN_PADDING_SAME, 2, 4, 3 },
    { "2x2 valid, odd input", 5, 5, 2, 2, 2, 0, 0, FMNN_PADDING_VALID, 2, 2, 2 },
    { "3x3 stride 1 valid (heavy overlap)", 5, 5, 2, 3, 3, 1, 1, FMNN_PADDING_VALID, 2, 3, 3 },
    { "2x2 same, odd input", 5, 5, 2, 2, 2, 0, 0, FMNN_PADDING_SAME, 2, 3, 3 },
    { "3x2 strides 2x1 same", 6, 5, 2, 3, 2, 2, 1, FMNN_PADDING_SAME, 2, 3, 5 },
    { "2x2 stride 3 valid (gaps between windows)", 7, 7, 3, 2, 2, 3, 3, FMNN_PADDING_VALID, 2, 2, 2 },
    { "3x3 stride 3 same (disjoint, padded top)", 4, 5, 2, 3, 3, 3, 3, FMNN_PADDING_SAME, 2, 2, 2 },
};
#define N_POOL_CASES ((int)(sizeof pool_cases / sizeof pool_cases[0]))

START_TEST(maxpool2d_gradients)
{
    const pool_case *k = &pool_cases[_i];
    fmnn_maxpool2d_options o = { .stride_h = k->sh, .stride_w = k->sw, .padding = k->padding };
    gc_layer g;
    char name[96];
    snprintf(name, sizeof name, "MaxPool2D %s", k->name);
    setup_layer(&g, fmnn_maxpool2d(k->ph, k->pw, &o), 3, (int[]){ k->h, k->w, k->c }, k->batch,
                200 + (uint64_t)_i);
    const fmnn_shape *out = &g.layer->out;
    ck_assert_msg(out->rank == 3 && out->dims[0] == k->out_h && out->dims[1] == k->out_w &&
                      out->dims[2] == k->c,
                  "%s: output (%d, %d, %d), expected (%d, %d, %d)", name, out->dims[0], out->dims[1],
                  out->dims[2], k->out_h, k->out_w, k->c);
    /* No near-ties: every value is 0.05 (> 2h) away from every other. */
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 300 + (uint64_t)_i);
    gc_fill_distinct(&rng, g.x, g.n_in, 0.05f);

    double *ref = calloc(g.n_out, sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    int rh, rw;
    gc_maxpool2d_reference(g.x, k->batch, k->h, k->w, k->c, k->ph, k->pw, k->sh ? k->sh : k->ph,
                           k->sw ? k->sw : k->pw, k->padding, ref, &rh, &rw);
    ck_assert(rh == k->out_h && rw == k->out_w);
    gc_layer_objective(&g);
    assert_forward(name, g.y, ref, g.n_out);
    free(ref);

    gc_tol tol = GC_TOL_LAYER;
    gc_layer_report r = gc_layer_check(&g, name, ALL, 11, &tol);
    assert_report(&r, &g, name);
    gc_layer_free(&g);
}
END_TEST

/* ---- Dense ------------------------------------------------------------------------ */

typedef struct dense_case {
    const char *name;
    int rank;
    int dims[3];
    int units;
    fmnn_activation_kind activation;
    int batch;
} dense_case;

static const dense_case dense_cases[] = {
    { "rank 1 linear", 1, { 7 }, 5, FMNN_LINEAR, 3 },
    { "rank 1 relu", 1, { 7 }, 5, FMNN_RELU, 3 },
    { "rank 1 sigmoid", 1, { 7 }, 5, FMNN_SIGMOID, 3 },
    { "rank 1 softmax", 1, { 7 }, 5, FMNN_SOFTMAX, 3 },
    { "rank 3 linear", 3, { 3, 4, 5 }, 6, FMNN_LINEAR, 2 },
    { "rank 3 tanh", 3, { 3, 4, 5 }, 6, FMNN_TANH, 2 },
    { "rank 3 relu", 3, { 2, 3, 4 }, 3, FMNN_RELU, 2 },
    { "rank 3 softmax", 3, { 2, 3, 4 }, 5, FMNN_SOFTMAX, 2 },
};
#define N_DENSE_CASES ((int)(sizeof dense_cases / sizeof dense_cases[0]))

START_TEST(dense_gradients)
{
    const dense_case *k = &dense_cases[_i];
    fmnn_dense_options o = { .activation = k->activation };
    gc_layer g;
    char name[96];
    snprintf(name, sizeof name, "Dense %s", k->name);
    setup_layer(&g, fmnn_dense(k->units, &o), k->rank, k->dims, k->batch, 400 + (uint64_t)_i);
    const fmnn_shape *out = &g.layer->out;
    ck_assert_int_eq(out->rank, k->rank);
    ck_assert_int_eq(out->dims[k->rank - 1], k->units);
    for (int d = 0; d + 1 < k->rank; d++)
        ck_assert_int_eq(out->dims[d], k->dims[d]);
    gc_tol tol = GC_TOL_LAYER;
    if (k->activation == FMNN_RELU)
        avoid_relu_kinks(&g, 400 + (uint64_t)_i, 2 * tol.h);
    gc_layer_report r = gc_layer_check(&g, name, ALL, 13, &tol);
    assert_report(&r, &g, name);
    gc_layer_free(&g);
}
END_TEST

/* ---- Activation ------------------------------------------------------------------- */

static const fmnn_activation_kind activation_kinds[] = { FMNN_RELU, FMNN_SIGMOID, FMNN_TANH,
                                                         FMNN_SOFTMAX, FMNN_LINEAR };
#define N_ACTIVATION_CASES ((int)(2 * sizeof activation_kinds / sizeof activation_kinds[0]))

/* Case i: kind i / 2, on rank 1 (7) for even i and rank 3 (2, 3, 4) for odd. */
START_TEST(activation_gradients)
{
    fmnn_activation_kind kind = activation_kinds[_i / 2];
    int rank3 = _i % 2;
    gc_layer g;
    char name[96];
    snprintf(name, sizeof name, "Activation %s rank %d", activation_name(kind), rank3 ? 3 : 1);
    if (rank3)
        setup_layer(&g, fmnn_activation(kind), 3, (int[]){ 2, 3, 4 }, 2, 500 + (uint64_t)_i);
    else
        setup_layer(&g, fmnn_activation(kind), 1, (int[]){ 7 }, 3, 500 + (uint64_t)_i);
    gc_tol tol = GC_TOL_LAYER;
    /* Inputs at least 5h from 0, on both sides: no ReLU kink in reach. */
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 600 + (uint64_t)_i);
    gc_fill_signed(&rng, g.x, g.n_in, (float)(5 * tol.h), 2.0f);
    gc_layer_report r = gc_layer_check(&g, name, ALL, 17, &tol);
    assert_report(&r, &g, name);
    gc_layer_free(&g);
}
END_TEST

/* ---- Flatten ----------------------------------------------------------------------- */

START_TEST(flatten_gradients)
{
    gc_layer g;
    setup_layer(&g, fmnn_flatten(), 3, (int[]){ 3, 4, 2 }, 2, 700);
    ck_assert_int_eq(g.layer->out.rank, 1);
    ck_assert_int_eq(g.layer->out.dims[0], 24);
    gc_tol tol = GC_TOL_LAYER;
    gc_layer_report r = gc_layer_check(&g, "Flatten", ALL, 19, &tol);
    assert_report(&r, &g, "Flatten");
    /* A copy both ways, in (h, w, c) order. */
    gc_layer_gradients(&g);
    ck_assert(memcmp(g.y, g.x, g.n_in * sizeof *g.x) == 0);
    ck_assert(memcmp(g.din, g.r, g.n_in * sizeof *g.r) == 0);
    gc_layer_free(&g);
}
END_TEST

/* ---- Dropout ----------------------------------------------------------------------- */

/* In training, with a fixed pass.seed, forward draws the same mask every
 * time: the layer is then a fixed linear map, and its gradient is exact. */
START_TEST(dropout_training_gradients)
{
    const float rates[] = { 0.5f, 0.3f };
    for (int t = 0; t < 2; t++) {
        gc_layer g;
        char name[64];
        snprintf(name, sizeof name, "Dropout(%g) training", (double)rates[t]);
        int err = gc_layer_init(&g, fmnn_dropout(rates[t]), 2, (int[]){ 4, 5 }, 2, 3);
        ck_assert_msg(err == FMNN_OK, "%s", fmnn_last_error());
        gc_layer_fill(&g, 800 + (uint64_t)t);
        g.pass.training = 1;
        g.pass.seed = 0x5eedf00dULL + (uint64_t)t;
        gc_tol tol = GC_TOL_LAYER;
        gc_layer_report r = gc_layer_check(&g, name, ALL, 23, &tol);
        assert_report(&r, &g, name);

        /* The mask is not trivial, and forward and backward agree on it. */
        gc_layer_gradients(&g);
        float scale = 1.0f / (1.0f - rates[t]);
        size_t kept = 0;
        for (size_t i = 0; i < g.n_in; i++) {
            int keep = g.din[i] != 0.0f;
            kept += (size_t)keep;
            ck_assert_float_eq(g.y[i], keep ? g.x[i] * scale : 0.0f);
            ck_assert_float_eq(g.din[i], keep ? g.r[i] * scale : 0.0f);
        }
        ck_assert_msg(kept > 0 && kept < g.n_in, "%s: %zu of %zu values kept", name, kept, g.n_in);
        gc_layer_free(&g);
    }
}
END_TEST

START_TEST(dropout_inference_is_identity)
{
    gc_layer g;
    int err = gc_layer_init(&g, fmnn_dropout(0.5f), 2, (int[]){ 4, 5 }, 2, 3);
    ck_assert_msg(err == FMNN_OK, "%s", fmnn_last_error());
    gc_layer_fill(&g, 900);
    g.pass.training = 0;
    g.pass.seed = 0x5eedf00dULL;
    gc_tol tol = GC_TOL_LAYER;
    gc_layer_report r = gc_layer_check(&g, "Dropout(0.5) inference", ALL, 29, &tol);
    assert_report(&r, &g, "Dropout(0.5) inference");
    gc_layer_gradients(&g);
    ck_assert(memcmp(g.y, g.x, g.n_in * sizeof *g.x) == 0);
    ck_assert(memcmp(g.din, g.r, g.n_in * sizeof *g.r) == 0);
    gc_layer_free(&g);
}
END_TEST

/* ---- a softmax left to the loss ---------------------------------------------- */

/*
 * When the model folds a final activation=softmax into cross-entropy the
 * plan gives the layer a linear pass->activation, and the layer must then
 * output the logits and its backward skip the softmax.  The layer is
 * compared with a twin whose activation is linear.
 */
static void check_softmax_left_to_loss(fmnn_layer *fused, fmnn_layer *plain, int rank,
                                       const int *dims, int batch, const char *name)
{
    gc_layer a, b;
    setup_layer(&a, fused, rank, dims, batch, 1000);
    setup_layer(&b, plain, rank, dims, batch, 1000);
    ck_assert_int_eq(a.layer->activation, FMNN_SOFTMAX);
    a.pass.activation = FMNN_LINEAR; /* as fmnn__plan_build does for FUSE_ACTIVATION */
    gc_layer_gradients(&a);
    gc_layer_gradients(&b);
    double dy = max_abs_diff(a.y, b.y, a.n_out);
    double dx = max_abs_diff(a.din, b.din, a.n_in);
    double dk = max_abs_diff(a.kernel_grad, b.kernel_grad, a.layer->n_kernel);
    double db = max_abs_diff(a.bias_grad, b.bias_grad, a.layer->n_bias);
    ck_assert_msg(dy <= 1e-6 && dx <= 1e-6 && dk <= 1e-6 && db <= 1e-6,
                  "%s with a linear pass->activation differs from the linear layer: output by %.3g, din "
                  "by %.3g, kernel_grad by %.3g, bias_grad by %.3g (it still applies the softmax)",
                  name, dy, dx, dk, db);
    gc_layer_free(&a);
    gc_layer_free(&b);
}

START_TEST(dense_softmax_in_loss_outputs_logits)
{
    check_softmax_left_to_loss(fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }),
                               fmnn_dense(4, NULL), 1, (int[]){ 6 }, 3, "Dense");
}
END_TEST

/* Regression test: at commit 9d70f6a, lib/layers/conv2d.c ignored
 * activation_in_loss, since replaced by the plan's pass->activation (conv2d_forward and conv2d_backward applied the
 * activation unconditionally), so a final Conv2D(activation=softmax)
 * had its softmax applied twice.  This test fails on that code. */
START_TEST(conv2d_softmax_in_loss_outputs_logits)
{
    check_softmax_left_to_loss(fmnn_conv2d(3, 2, 2, &(fmnn_conv2d_options){ .activation = FMNN_SOFTMAX }),
                               fmnn_conv2d(3, 2, 2, NULL), 3, (int[]){ 3, 3, 2 }, 2, "Conv2D");
}
END_TEST

/* ---- losses ------------------------------------------------------------------------- */

typedef enum target_style {
    ONE_HOT,
    SOFT,       /* positive rows that sum to 1 (label smoothing, distillation) */
    SOFT_UNNORM /* positive rows that do not sum to 1 */
} target_style;

typedef struct loss_case {
    const char *name;
    fmnn_loss kind;
    int fused;
    target_style targets;
    int batch, width;
} loss_case;

static const loss_case loss_cases[] = {
    { "CCE fused, one-hot", FMNN_LOSS_CATEGORICAL_CROSSENTROPY, 1, ONE_HOT, 4, 5 },
    { "CCE fused, soft targets", FMNN_LOSS_CATEGORICAL_CROSSENTROPY, 1, SOFT, 4, 5 },
    { "CCE fused, unnormalised soft targets", FMNN_LOSS_CATEGORICAL_CROSSENTROPY, 1, SOFT_UNNORM, 4, 5 },
    { "CCE unfused, one-hot", FMNN_LOSS_CATEGORICAL_CROSSENTROPY, 0, ONE_HOT, 4, 5 },
    { "CCE unfused, soft targets", FMNN_LOSS_CATEGORICAL_CROSSENTROPY, 0, SOFT, 4, 5 },
    { "sparse CCE fused", FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1, ONE_HOT, 4, 5 },
    { "sparse CCE unfused", FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, ONE_HOT, 4, 5 },
    { "MSE", FMNN_LOSS_MSE, 0, SOFT_UNNORM, 3, 4 },
    { "MSE, width 1", FMNN_LOSS_MSE, 0, SOFT_UNNORM, 5, 1 },
};
#define N_LOSS_CASES ((int)(sizeof loss_cases / sizeof loss_cases[0]))

/* The sum over the batch of Keras's per-sample loss, by hand in double. */
static double reference_loss(const loss_case *k, const float *x, const float *target)
{
    double total = 0.0;
    for (int row = 0; row < k->batch; row++) {
        const float *v = x + (size_t)row * k->width;
        double t[16];
        for (int c = 0; c < k->width; c++)
            t[c] = k->kind == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY
                       ? (double)((int)target[row] == c)
                       : (double)target[(size_t)row * k->width + c];
        if (k->kind == FMNN_LOSS_MSE) {
            double s = 0.0;
            for (int c = 0; c < k->width; c++)
                s += (v[c] - t[c]) * (v[c] - t[c]);
            total += s / k->width;
        } else if (k->fused) { /* -sum t log softmax(z) */
            double max = v[0], s = 0.0;
            for (int c = 1; c < k->width; c++)
                max = v[c] > max ? v[c] : max;
            for (int c = 0; c < k->width; c++)
                s += exp(v[c] - max);
            for (int c = 0; c < k->width; c++)
                total -= t[c] * (v[c] - max - log(s));
        } else { /* -sum t log(p / sum p), no clipping in reach */
            double s = 0.0;
            for (int c = 0; c < k->width; c++)
                s += v[c];
            for (int c = 0; c < k->width; c++)
                total -= t[c] * log(v[c] / s);
        }
    }
    return total;
}

START_TEST(loss_gradients)
{
    const loss_case *k = &loss_cases[_i];
    size_t n = (size_t)k->batch * (size_t)k->width;
    int sparse = k->kind == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    float *x = calloc(n, sizeof *x), *probs = calloc(n, sizeof *probs);
    float *grad = calloc(n, sizeof *grad), *target = calloc(n, sizeof *target);
    ck_assert(x && probs && grad && target && k->width <= 16);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1100 + (uint64_t)_i);
    if (k->kind == FMNN_LOSS_MSE)
        gc_fill_uniform(&rng, x, n, -1.0f, 1.0f);
    else if (k->fused)
        gc_fill_uniform(&rng, x, n, -3.0f, 3.0f); /* logits */
    else
        gc_fill_uniform(&rng, x, n, 0.2f, 1.0f); /* unnormalised probabilities, far from the clip */
    for (int row = 0; row < k->batch; row++) {
        float *t = target + (size_t)row * k->width;
        int label = (int)fmnn__rng_below(&rng, (uint32_t)k->width);
        if (sparse) {
            target[row] = (float)label;
        } else if (k->targets == ONE_HOT) {
            t[label] = 1.0f;
        } else {
            gc_fill_uniform(&rng, t, (size_t)k->width, 0.05f, 1.0f);
            if (k->targets == SOFT) {
                float s = 0.0f;
                for (int c = 0; c < k->width; c++)
                    s += t[c];
                for (int c = 0; c < k->width; c++)
                    t[c] /= s;
            }
        }
    }
    gc_loss l = { k->kind, k->fused, k->batch, k->width, x, probs, target };

    /* The value: the sum of the per-sample losses, as Keras defines them. */
    double sum = gc_loss_gradient(&l, grad);
    double ref = reference_loss(k, x, target);
    ck_assert_msg(fabs(sum - ref) <= 1e-5 * fmax(1.0, fabs(ref)), "%s: loss %.9g, expected %.9g",
                  k->name, sum, ref);
    ck_assert_msg(fabs(gc_loss_mean(&l) - ref / k->batch) <= 1e-5 * fmax(1.0, fabs(ref)),
                  "%s: gc_loss_mean disagrees with the reference", k->name);

    /* The gradient: of the MEAN over the batch. */
    gc_tol tol = { 1e-3, 1e-3, 1e-5 };
    char what[96];
    snprintf(what, sizeof what, "loss %s", k->name);
    gc_stats s = gc_check(what, gc_loss_mean, &l, x, grad, n, ALL, 31, &tol);
    assert_stats(&s, what);
    free(x);
    free(probs);
    free(grad);
    free(target);
}
END_TEST

/* ---- regularizers --------------------------------------------------------------- */

static double regularization_objective(void *ctx)
{
    return fmnn__regularization_penalty(ctx);
}

START_TEST(regularizer_gradients)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 6 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(5, &(fmnn_dense_options){ .kernel_regularizer = fmnn_l1(0.01f) })), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_TANH,
                                                                           .kernel_regularizer = fmnn_l2(0.02f) })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .kernel_regularizer = fmnn_l1_l2(0.01f, 0.02f) })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(2, NULL)), FMNN_OK); /* not regularized */
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_OK);

    /* Every weight and bias nonzero and away from the |w| kink at 0. */
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1200);
    gc_fill_signed(&rng, m->params, m->n_params, 0.05f, 1.0f);

    /* The penalty: l1 * sum|w| + l2 * sum w^2 over kernels only, no 1/2. */
    const double l1[] = { 0.01f, 0.0, 0.01f, 0.0 }, l2[] = { 0.0, 0.02f, 0.02f, 0.0 };
    double expected = 0.0;
    ck_assert_int_eq(m->n_layers, 4);
    for (int i = 0; i < 4; i++) {
        const fmnn_layer *layer = m->layers[i];
        for (size_t k = 0; k < layer->n_kernel; k++)
            expected += l1[i] * fabs(layer->kernel[k]) + l2[i] * (double)layer->kernel[k] * layer->kernel[k];
    }
    double penalty = fmnn__regularization_penalty(m);
    ck_assert_msg(fabs(penalty - expected) <= 1e-6 * expected, "penalty %.9g, expected %.9g", penalty,
                  expected);

    /* The gradient, from zero grads. */
    memset(m->grads, 0, m->n_params * sizeof *m->grads);
    fmnn__regularization_gradient(m);
    float *analytic = malloc(m->n_params * sizeof *analytic);
    ck_assert_ptr_nonnull(analytic);
    memcpy(analytic, m->grads, m->n_params * sizeof *analytic);
    gc_tol tol = { 1e-3, 1e-4, 1e-6 };
    gc_stats s = gc_check("regularization penalty", regularization_objective, m, m->params, analytic,
                          m->n_params, ALL, 37, &tol);
    assert_stats(&s, "regularization penalty");
    /* Biases and the unregularized layer get nothing. */
    for (int i = 0; i < 4; i++) {
        const fmnn_layer *layer = m->layers[i];
        for (size_t k = 0; k < layer->n_bias; k++)
            ck_assert_float_eq(layer->bias_grad[k], 0.0f);
        if (i == 3)
            for (size_t k = 0; k < layer->n_kernel; k++)
                ck_assert_float_eq(layer->kernel_grad[k], 0.0f);
    }

    /* It is ADDED to what the loss left in grads. */
    gc_fill_uniform(&rng, m->grads, m->n_params, -1.0f, 1.0f);
    float *before = malloc(m->n_params * sizeof *before);
    ck_assert_ptr_nonnull(before);
    memcpy(before, m->grads, m->n_params * sizeof *before);
    fmnn__regularization_gradient(m);
    for (size_t k = 0; k < m->n_params; k++)
        ck_assert_msg(fabsf(m->grads[k] - (before[k] + analytic[k])) <= 1e-6f,
                      "grads[%zu] = %g, expected %g + %g", k, (double)m->grads[k], (double)before[k],
                      (double)analytic[k]);
    free(before);
    free(analytic);
    fmnn_model_free(m);
}
END_TEST

/* ---- whole models ----------------------------------------------------------------- */

/* Compares the model's analytic gradient of (mean loss + penalty) with
 * central differences in every parameter. */
static void check_model(gc_model *g, const char *name)
{
    fmnn_model *m = g->model;
    double objective = gc_model_gradients(g);
    ck_assert_msg(isfinite(objective), "%s: objective %g", name, objective);
    ck_assert_msg(fabs(gc_model_objective(g) - objective) <= 1e-12 * fmax(1.0, fabs(objective)),
                  "%s: the objective is not reproducible", name);
    float *analytic = malloc(m->n_params * sizeof *analytic);
    ck_assert_ptr_nonnull(analytic);
    memcpy(analytic, m->grads, m->n_params * sizeof *analytic);
    gc_tol tol = { 1e-3, 1e-2, 2e-4 };
    char what[96];
    gc_stats all = { 0, 0, 0.0, 0.0 };
    size_t at = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        size_t n = layer->n_kernel + layer->n_bias;
        if (!n)
            continue;
        snprintf(what, sizeof what, "%s: %s kernel+bias", name, layer->name);
        gc_stats s = gc_check(what, gc_model_objective, g, m->params + at, analytic + at, n, ALL,
                              41 + (uint64_t)i, &tol);
        assert_stats(&s, what);
        gc_stats_merge(&all, &s);
        at += n;
    }
    ck_assert_uint_eq(at, m->n_params);
    ck_assert_uint_eq(all.checked, m->n_params);
    free(analytic);
}

/* Conv2D(2, 3x3, same, l2) -> ReLU -> MaxPool 2 -> Flatten -> Dense(3) ->
 * Activation(softmax), compiled: the first three run as one plan step
 * (plan.c) of a conv and a pool, pipeline_images images at a time
 * (steps[0].slice), or the whole batch when 0. */
static fmnn_model *small_cnn(int pipeline_images)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 6, 6, 1 }), FMNN_OK);
    fmnn_conv2d_options co = { .padding = FMNN_PADDING_SAME, .kernel_regularizer = fmnn_l2(0.01f) };
    ck_assert_int_eq(fmnn_model_add(m, fmnn_conv2d(2, 3, 3, &co)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_activation(FMNN_RELU)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_maxpool2d(2, 2, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_flatten()), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(3, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_activation(FMNN_SOFTMAX)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 7), FMNN_OK);
    ck_assert_int_eq(m->steps[0].n_links, 2); /* conv and pool in one step */
    ck_assert_ptr_eq(m->steps[0].links[1].layer, m->layers[2]);
    if (pipeline_images) /* before the buffers are planned */
        m->steps[0].slice = pipeline_images;
    return m;
}

/* The CNN above with categorical cross-entropy (softmax folded into the
 * loss: FUSE_LAYER), its conv-pool pipeline run as one slice, as slices
 * of 2 + 1 images, and of 1 + 1 + 1. */
START_TEST(model_cnn_gradients)
{
    enum { B = 3, H = 6, W = 6, F = 2, CLASSES = 3 };
    const int slices[] = { 0, 2, 1 };
    fmnn_model *m = small_cnn(slices[_i]);
    ck_assert_int_eq(m->fusion, FUSE_LAYER);

    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1300);
    for (int i = 0; i < m->n_layers; i++) /* nonzero biases too */
        gc_fill_uniform(&rng, m->layers[i]->bias, m->layers[i]->n_bias, -0.2f, 0.2f);
    float x[B * H * W], y[B * CLASSES] = { 0 };
    y[0 * CLASSES + 2] = 1.0f;
    y[1 * CLASSES + 0] = 1.0f;
    y[2 * CLASSES + 1] = 1.0f;
    gc_model g;
    ck_assert_int_eq(gc_model_init(&g, m, B, x, y, 1, 0xabcdefULL), FMNN_OK);

    /* Resample the images until no ReLU input is within 3h of 0 and no
     * pooling window has its top two positive values within 3h: a step
     * of h in one parameter moves each conv output by at most h here. */
    const double margin = 3e-3;
    const fmnn_layer *conv = m->layers[0];
    double z[B * H * W * F];
    float relu[B * H * W * F];
    for (int tries = 0;; tries++) {
        ck_assert_msg(tries < 1000, "no kink-free sample found");
        gc_fill_uniform(&rng, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
        int oh, ow;
        gc_conv2d_reference(x, B, H, W, 1, conv->kernel, conv->bias, F, 3, 3, 1, 1, FMNN_PADDING_SAME, z,
                            &oh, &ow);
        double min_z = INFINITY;
        for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
            min_z = fmin(min_z, fabs(z[i]));
            relu[i] = z[i] > 0.0 ? (float)z[i] : 0.0f;
        }
        if (min_z >= margin && gc_pool_min_gap(relu, B, H, W, F, 2, 2) >= margin)
            break;
    }
    check_model(&g, "CNN");

    /* The test's step (loss and penalty summed here) agrees with evaluate. */
    fmnn_tensor *tx = NULL, *ty = NULL;
    ck_assert_int_eq(fmnn_tensor_wrap(&tx, x, 4, (int[]){ B, H, W, 1 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_wrap(&ty, y, 2, (int[]){ B, CLASSES }), FMNN_OK);
    float loss = 0.0f;
    ck_assert_int_eq(fmnn_model_evaluate(m, tx, ty, B, &loss, NULL), FMNN_OK);
    double objective = gc_model_objective(&g);
    ck_assert_msg(fabs(loss - objective) <= 1e-5 * fmax(1.0, fabs(objective)),
                  "evaluate gives %.7g, the test's step %.7g", (double)loss, objective);
    /* Sample weights scale each sample's loss and gradient (Keras's
     * sum_over_batch_size: sum(w * loss) / rows), also through evaluate. */
    const float weights[B] = { 0.5f, 2.0f, 0.0f };
    g.weights = weights;
    check_model(&g, "CNN with sample weights");
    fmnn_tensor *tw = NULL;
    ck_assert_int_eq(fmnn_tensor_wrap(&tw, (float *)weights, 1, (int[]){ B }), FMNN_OK);
    float values[1 + FMNN_MAX_METRICS];
    ck_assert_int_eq(fmnn_model_evaluate_metrics(m, tx, ty, tw, B, values), FMNN_OK);
    objective = gc_model_objective(&g);
    ck_assert_msg(fabs(values[0] - objective) <= 1e-5 * fmax(1.0, fabs(objective)),
                  "weighted evaluate gives %.7g, the test's step %.7g", (double)values[0], objective);
    fmnn_tensor_free(tw);
    fmnn_tensor_free(tx);
    fmnn_tensor_free(ty);
    fmnn_model_free(m);
}
END_TEST

/* Slicing the conv-pool pipeline changes no output bit (each output is
 * the same FMA chain), and the gradients only by rounding: the kernel
 * gradient's sum over pixels is split at other places. */
START_TEST(pipeline_same_as_whole_batch)
{
    enum { B = 5, N = 6 * 6 * 1, CLASSES = 3 };
    fmnn_model *whole = small_cnn(0), *sliced = small_cnn(2);
    ck_assert_uint_eq(whole->n_params, sliced->n_params);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1350);
    float x[B * N], y[B * CLASSES] = { 0 };
    gc_fill_uniform(&rng, x, B * N, -1.0f, 1.0f);
    for (int i = 0; i < B; i++)
        y[i * CLASSES + i % CLASSES] = 1.0f;
    gc_model gw, gs;
    ck_assert_int_eq(gc_model_init(&gw, whole, B, x, y, 1, 5), FMNN_OK);
    ck_assert_int_eq(gc_model_init(&gs, sliced, B, x, y, 1, 5), FMNN_OK);
    double ow = gc_model_gradients(&gw), os = gc_model_gradients(&gs);
    ck_assert_msg(ow == os, "objective %.17g whole, %.17g in slices", ow, os);
    for (size_t i = 0; i < whole->n_params; i++)
        ck_assert_msg(fabsf(whole->grads[i] - sliced->grads[i]) <= 1e-6f + 1e-5f * fabsf(whole->grads[i]),
                      "gradient %zu: %.9g whole, %.9g in slices", i, (double)whole->grads[i],
                      (double)sliced->grads[i]);
    fmnn_model_free(whole);
    fmnn_model_free(sliced);
}
END_TEST

/* Dense(6, tanh, l1) -> Dropout(0.4), in training with a fixed mask ->
 * Dense(4, softmax, l1_l2), sparse cross-entropy (FUSE_ACTIVATION). */
START_TEST(model_mlp_dropout_gradients)
{
    enum { B = 3, IN = 8, CLASSES = 4 };
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ IN }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(6, &(fmnn_dense_options){ .activation = FMNN_TANH,
                                                                           .kernel_regularizer = fmnn_l1(0.01f) })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dropout(0.4f)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(CLASSES, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX,
                                                                                 .kernel_regularizer = fmnn_l1_l2(0.01f, 0.01f) })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 8), FMNN_OK);
    ck_assert_int_eq(m->fusion, FUSE_ACTIVATION);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1400);
    /* Weights away from the |w| kink of l1 (a step of h must not cross 0). */
    gc_fill_signed(&rng, m->params, m->n_params, 0.05f, 0.8f);
    float x[B * IN], y[B] = { 3, 0, 1 };
    gc_fill_uniform(&rng, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
    gc_model g;
    ck_assert_int_eq(gc_model_init(&g, m, B, x, y, 1, 0x1234ULL), FMNN_OK);
    check_model(&g, "MLP with dropout");
    /* The mask really dropped something (the objective differs from inference). */
    double train = gc_model_objective(&g);
    g.pass.training = 0;
    double infer = gc_model_objective(&g);
    ck_assert_msg(fabs(train - infer) > 1e-6, "dropout changed nothing");
    fmnn_model_free(m);
}
END_TEST

/* Dense(4, sigmoid) -> Dense(3) -> Activation(tanh) -> Dense(2) ->
 * Activation(sigmoid), mean squared error (FUSE_NONE; the model may run
 * each Activation inside the Dense before it). */
START_TEST(model_mse_gradients)
{
    enum { B = 3, IN = 5, OUT = 2 };
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ IN }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SIGMOID })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(3, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_activation(FMNN_TANH)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(OUT, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_activation(FMNN_SIGMOID)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 9), FMNN_OK);
    ck_assert_int_eq(m->fusion, FUSE_NONE);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1500);
    gc_fill_uniform(&rng, m->params, m->n_params, -0.8f, 0.8f);
    float x[B * IN], y[B * OUT];
    gc_fill_uniform(&rng, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
    gc_fill_uniform(&rng, y, sizeof y / sizeof y[0], -1.0f, 1.0f);
    gc_model g;
    ck_assert_int_eq(gc_model_init(&g, m, B, x, y, 1, 5), FMNN_OK);
    check_model(&g, "MSE model");
    /* The test's step (loss and penalty summed here) agrees with evaluate. */
    fmnn_tensor *tx = NULL, *ty = NULL;
    ck_assert_int_eq(fmnn_tensor_wrap(&tx, x, 2, (int[]){ B, IN }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_wrap(&ty, y, 2, (int[]){ B, OUT }), FMNN_OK);
    float loss = 0.0f;
    ck_assert_int_eq(fmnn_model_evaluate(m, tx, ty, B, &loss, NULL), FMNN_OK);
    double objective = gc_model_objective(&g);
    ck_assert_msg(fabs(loss - objective) <= 1e-5 * fmax(1.0, fabs(objective)),
                  "evaluate gives %.7g, the test's step %.7g", (double)loss, objective);
    fmnn_tensor_free(tx);
    fmnn_tensor_free(ty);
    fmnn_model_free(m);
}
END_TEST

/* Dense(4, tanh) -> Dense(3, sigmoid) with categorical cross-entropy:
 * its outputs are not a softmax, so compile refuses it and points at the
 * from_logits form (it used to train, and never learned). */
START_TEST(model_unfused_cce_refused)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 5 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_TANH })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SIGMOID })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 10), FMNN_EINVAL);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "softmax"));
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "FROM_LOGITS"));
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "dense_1"));
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 10), FMNN_EINVAL);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS, NULL, 10), FMNN_OK);
    fmnn_model_free(m);
}
END_TEST

/*
 * Regression test for the same bug as conv2d_softmax_in_loss_outputs_logits,
 * seen from the public API: a model ending in Conv2D(activation=softmax)
 * with a 1x1 output must train and evaluate exactly as the same weights
 * in Flatten -> Dense -> Dense(softmax).  Conv2D(4, 3x3) on a 3x3x2 image
 * is Dense(4) on its flattening, and a 1x1 Conv2D(3) is Dense(3); the
 * parameter layouts coincide.  Fails when conv2d.c ignores pass->activation.
 */
START_TEST(model_conv_softmax_matches_dense)
{
    enum { B = 3, CLASSES = 3 };
    fmnn_model *a = NULL, *b = NULL;
    ck_assert_int_eq(fmnn_model_new(&a, 3, (int[]){ 3, 3, 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(a, fmnn_conv2d(4, 3, 3, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(a, fmnn_conv2d(CLASSES, 1, 1, &(fmnn_conv2d_options){ .activation = FMNN_SOFTMAX })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(a, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 11), FMNN_OK);
    ck_assert_int_eq(fmnn_model_new(&b, 3, (int[]){ 3, 3, 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(b, fmnn_flatten()), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(b, fmnn_dense(4, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(b, fmnn_dense(CLASSES, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(b, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 11), FMNN_OK);
    ck_assert_uint_eq(a->n_params, b->n_params);

    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1700);
    gc_fill_uniform(&rng, a->params, a->n_params, -0.8f, 0.8f);
    memcpy(b->params, a->params, a->n_params * sizeof *a->params);
    float x[B * 18], y[B * CLASSES] = { 0 };
    gc_fill_uniform(&rng, x, sizeof x / sizeof x[0], -1.0f, 1.0f);
    y[0 * CLASSES + 0] = 1.0f;
    y[1 * CLASSES + 2] = 1.0f;
    y[2 * CLASSES + 1] = 1.0f;

    /* The Dense model is right (its gradient is checked elsewhere); its
     * loss is also checked here against a hand computation. */
    gc_model ga, gb;
    ck_assert_int_eq(gc_model_init(&ga, a, B, x, y, 1, 1), FMNN_OK);
    ck_assert_int_eq(gc_model_init(&gb, b, B, x, y, 1, 1), FMNN_OK);
    double la = gc_model_gradients(&ga), lb = gc_model_gradients(&gb);
    double ref = 0.0;
    for (int n = 0; n < B; n++) {
        double h[4], z[CLASSES], max = -INFINITY, s = 0.0;
        for (int u = 0; u < 4; u++) {
            h[u] = b->layers[1]->bias[u];
            for (int i = 0; i < 18; i++)
                h[u] += (double)x[n * 18 + i] * b->layers[1]->kernel[i * 4 + u];
        }
        for (int c = 0; c < CLASSES; c++) {
            z[c] = b->layers[2]->bias[c];
            for (int u = 0; u < 4; u++)
                z[c] += h[u] * b->layers[2]->kernel[u * CLASSES + c];
            max = z[c] > max ? z[c] : max;
        }
        for (int c = 0; c < CLASSES; c++)
            s += exp(z[c] - max);
        for (int c = 0; c < CLASSES; c++)
            ref -= y[n * CLASSES + c] * (z[c] - max - log(s));
    }
    ref /= B;
    ck_assert_msg(fabs(lb - ref) <= 1e-5, "Dense model: loss %.7g, expected %.7g", lb, ref);
    ck_assert_msg(fabs(la - ref) <= 1e-5,
                  "Conv2D(softmax) model: loss %.7g, expected %.7g (the Dense twin gives %.7g): "
                  "Conv2D ignores pass->activation, so the softmax is applied twice",
                  la, ref, lb);
    double dg = max_abs_diff(a->grads, b->grads, a->n_params);
    ck_assert_msg(dg <= 1e-5, "Conv2D(softmax) model: gradient differs from the Dense twin by %.3g", dg);

    /* And through the public API. */
    fmnn_tensor *tx = NULL, *ty = NULL;
    ck_assert_int_eq(fmnn_tensor_wrap(&tx, x, 4, (int[]){ B, 3, 3, 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_wrap(&ty, y, 2, (int[]){ B, CLASSES }), FMNN_OK);
    float eva = 0.0f, evb = 0.0f;
    ck_assert_int_eq(fmnn_model_evaluate(a, tx, ty, B, &eva, NULL), FMNN_OK);
    ck_assert_int_eq(fmnn_model_evaluate(b, tx, ty, B, &evb, NULL), FMNN_OK);
    ck_assert_msg(fabsf(eva - evb) <= 1e-5f, "fmnn_model_evaluate: Conv2D(softmax) model %.7g, Dense model %.7g",
                  (double)eva, (double)evb);
    fmnn_tensor_free(tx);
    fmnn_tensor_free(ty);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* ---- thread count ------------------------------------------------------------------ */

static int suite_threads = 1; /* set in main */
static int forked = 1;        /* each test in a child process (Check's default) */

/* The gradients of a layer are the same with 1 thread and with 2 (where
 * im2col, col2im and MaxPool's loops run in parallel even at this size). */
static void compare_threads(fmnn_layer *layer, int rank, const int *dims, int batch, int distinct,
                            const char *name)
{
    gc_layer g;
    setup_layer(&g, layer, rank, dims, batch, 1900);
    if (distinct) {
        fmnn_rng rng;
        fmnn__rng_seed(&rng, 1901);
        gc_fill_distinct(&rng, g.x, g.n_in, 0.05f);
    }
    size_t nk = g.layer->n_kernel, nb = g.layer->n_bias;
    float *y1 = malloc(g.n_out * sizeof *y1), *din1 = malloc(g.n_in * sizeof *din1);
    float *kg1 = malloc((nk + nb + 1) * sizeof *kg1);
    ck_assert(y1 && din1 && kg1);
    ck_assert_int_eq(fmnn_set_num_threads(1), FMNN_OK);
    gc_layer_gradients(&g);
    memcpy(y1, g.y, g.n_out * sizeof *y1);
    memcpy(din1, g.din, g.n_in * sizeof *din1);
    memcpy(kg1, g.kernel_grad, nk * sizeof *kg1);
    memcpy(kg1 + nk, g.bias_grad, nb * sizeof *kg1);
    ck_assert_int_eq(fmnn_set_num_threads(2), FMNN_OK);
    gc_layer_gradients(&g);
    ck_assert_int_eq(fmnn_set_num_threads(suite_threads), FMNN_OK);
    ck_assert_msg(max_abs_diff(y1, g.y, g.n_out) <= 1e-6, "%s: output differs with 2 threads", name);
    ck_assert_msg(max_abs_diff(din1, g.din, g.n_in) <= 1e-6, "%s: din differs with 2 threads", name);
    ck_assert_msg(max_abs_diff(kg1, g.kernel_grad, nk) <= 1e-6, "%s: kernel_grad differs with 2 threads", name);
    ck_assert_msg(max_abs_diff(kg1 + nk, g.bias_grad, nb) <= 1e-6, "%s: bias_grad differs with 2 threads", name);
    free(y1);
    free(din1);
    free(kg1);
    gc_layer_free(&g);
}

START_TEST(layers_threads)
{
    /* libgomp's worker threads outlive the test: only in a child process,
     * or valgrind (run with CK_FORK=no) counts their stacks as leaked. */
    if (!forked)
        return;
    fmnn_conv2d_options o = { .stride_h = 2, .stride_w = 2, .padding = FMNN_PADDING_SAME,
                              .activation = FMNN_TANH };
    compare_threads(fmnn_conv2d(4, 3, 3, &o), 3, (int[]){ 7, 6, 3 }, 3, 0, "Conv2D");
    fmnn_maxpool2d_options p = { .stride_h = 2, .stride_w = 2, .padding = FMNN_PADDING_SAME };
    compare_threads(fmnn_maxpool2d(3, 3, &p), 3, (int[]){ 7, 6, 2 }, 3, 1, "MaxPool2D");
}
END_TEST

/* ---- the suite --------------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *gradients_suite(void)
{
    Suite *s = suite_create("gradients");
    TCase *tc = tcase(s, "layers");
    tcase_add_loop_test(tc, conv2d_gradients, 0, N_CONV_CASES);
    tcase_add_loop_test(tc, maxpool2d_gradients, 0, N_POOL_CASES);
    tcase_add_loop_test(tc, dense_gradients, 0, N_DENSE_CASES);
    tcase_add_loop_test(tc, activation_gradients, 0, N_ACTIVATION_CASES);
    tcase_add_test(tc, flatten_gradients);
    tcase_add_test(tc, dropout_training_gradients);
    tcase_add_test(tc, dropout_inference_is_identity);
    tcase_add_test(tc, layers_threads);

    tc = tcase(s, "softmax_in_loss");
    tcase_add_test(tc, dense_softmax_in_loss_outputs_logits);
    tcase_add_test(tc, conv2d_softmax_in_loss_outputs_logits);

    tc = tcase(s, "losses");
    tcase_add_loop_test(tc, loss_gradients, 0, N_LOSS_CASES);

    tc = tcase(s, "regularizers");
    tcase_add_test(tc, regularizer_gradients);

    tc = tcase(s, "models");
    tcase_add_loop_test(tc, model_cnn_gradients, 0, 3);
    tcase_add_test(tc, pipeline_same_as_whole_batch);
    tcase_add_test(tc, model_mlp_dropout_gradients);
    tcase_add_test(tc, model_mse_gradients);
    tcase_add_test(tc, model_unfused_cce_refused);
    tcase_add_test(tc, model_conv_softmax_matches_dense);
    return s;
}

int main(void)
{
    /* One thread unless GC_THREADS says otherwise: these tensors are far
     * below the sizes where the library splits work, and OpenMP barriers
     * on a loaded machine would otherwise dominate the run time.  The
     * parallel paths are compared with one thread in layers_threads. */
    const char *threads = getenv("GC_THREADS");
    suite_threads = threads && atoi(threads) > 0 ? atoi(threads) : 1;
    fmnn_set_num_threads(suite_threads);
    SRunner *sr = srunner_create(gradients_suite());
    forked = srunner_fork_status(sr) == CK_FORK;
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
