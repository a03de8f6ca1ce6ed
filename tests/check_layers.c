/*
 * check_layers.c - the layers beyond the notebook's: BatchNormalization,
 * AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
 * ZeroPadding2D and Reshape.  Each forward pass against its definition
 * computed here in double, each backward pass against central
 * differences (tests/gradcheck.h), and the semantics Keras gives them:
 * BatchNormalization's biased batch variance, its moving statistics and
 * their use at inference, the "same" border of average pooling, the
 * gradient of a max shared among ties.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "gradcheck.h"
#include "model_impl.h"
#include "testutil.h"

#define ALL 0

static void setup(gc_layer *g, fmnn_layer *layer, int rank, const int *dims, int batch, uint64_t seed)
{
    int err = gc_layer_init(g, layer, rank, dims, batch, 0);
    ck_assert_msg(err == FMNN_OK, "layer setup failed (%d): %s", err, fmnn_last_error());
    gc_layer_fill(g, seed);
}

static void assert_checked(const gc_stats *s, const char *what)
{
    ck_assert_msg(s->checked > 0, "%s: nothing was checked", what);
    ck_assert_msg(s->failed == 0, "%s: %zu of %zu entries disagree with central differences (worst %.3g x)", what,
                  s->failed, s->checked, s->max_ratio);
    ck_assert_msg(s->max_grad > 1e-3, "%s: the gradient is trivially zero", what);
}

/* din, and the kernel and bias gradients where the layer has them. */
static void check_gradients(gc_layer *g, const char *name, uint64_t seed)
{
    gc_tol tol = GC_TOL_LAYER;
    gc_layer_report r = gc_layer_check(g, name, ALL, seed, &tol);
    char what[128];
    snprintf(what, sizeof what, "%s: din", name);
    assert_checked(&r.din, what);
    if (g->layer->n_kernel) {
        snprintf(what, sizeof what, "%s: kernel_grad", name);
        assert_checked(&r.kernel, what);
    }
    if (g->layer->n_bias) {
        snprintf(what, sizeof what, "%s: bias_grad", name);
        assert_checked(&r.bias, what);
    }
}

static void assert_close(const char *name, const float *y, const double *ref, size_t n, double rel)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(y[i] - ref[i]) <= rel * fmax(1.0, fabs(ref[i])), "%s: y[%zu] = %.9g, expected %.9g", name,
                      i, (double)y[i], ref[i]);
}

/* ---- BatchNormalization ----------------------------------------------------- */

typedef struct bn_case {
    const char *name;
    int rank, dims[3], batch;
    int center, scale;
} bn_case;

static const bn_case bn_cases[] = {
    { "after a Conv2D (per channel)", 3, { 3, 4, 3 }, 2, 1, 1 },
    { "after a Dense (per unit)", 1, { 5 }, 6, 1, 1 },
    { "without center", 3, { 2, 2, 4 }, 3, 0, 1 },
    { "without scale", 1, { 3 }, 5, 1, 0 },
    { "neither", 2, { 3, 2 }, 4, 0, 0 },
};
#define N_BN_CASES ((int)(sizeof bn_cases / sizeof bn_cases[0]))

static fmnn_layer *bn_layer(const bn_case *k)
{
    fmnn_batch_normalization_options o = FMNN_BATCH_NORMALIZATION_OPTIONS_INIT;
    o.center = k->center;
    o.scale = k->scale;
    return fmnn_batch_normalization(&o);
}

/*
 * y = gamma (x - mean) / sqrt(var + 1e-3) + beta per channel, with the
 * batch's mean and biased variance (training) or the given ones.
 */
static void bn_reference(const gc_layer *g, int training, const float *mean_in, const float *var_in,
                         double *ref, double *batch_mean, double *batch_var)
{
    const fmnn_layer *l = g->layer;
    const size_t c = (size_t)l->in.dims[l->in.rank - 1], rows = g->n_in / c;
    for (size_t k = 0; k < c; k++) {
        double s = 0.0, s2 = 0.0;
        for (size_t r = 0; r < rows; r++)
            s += g->x[r * c + k];
        s /= (double)rows;
        for (size_t r = 0; r < rows; r++)
            s2 += (g->x[r * c + k] - s) * (g->x[r * c + k] - s);
        s2 /= (double)rows; /* biased, as Keras's ops.moments */
        batch_mean[k] = s;
        batch_var[k] = s2;
        const double mean = training ? s : mean_in[k], var = training ? s2 : var_in[k];
        const double gamma = l->n_kernel ? g->kernel[k] : 1.0, beta = l->n_bias ? g->bias[k] : 0.0;
        for (size_t r = 0; r < rows; r++)
            ref[r * c + k] = gamma * (g->x[r * c + k] - mean) / sqrt(var + 1e-3) + beta;
    }
}

START_TEST(batch_normalization_training)
{
    const bn_case *k = &bn_cases[_i];
    gc_layer g;
    setup(&g, bn_layer(k), k->rank, k->dims, k->batch, 100 + (uint64_t)_i);
    const fmnn_layer *l = g.layer;
    const size_t c = (size_t)k->dims[k->rank - 1];
    ck_assert_uint_eq(l->n_kernel, k->scale ? c : 0);
    ck_assert_uint_eq(l->n_bias, k->center ? c : 0);
    ck_assert_uint_eq(l->n_state, 2 * c);
    for (size_t j = 0; j < c; j++) /* Keras's initial moving statistics */
        ck_assert(g.state[j] == 0.0f && g.state[c + j] == 1.0f);
    g.pass.training = 1;

    /* One forward pass: the batch statistics, and one moving-average step. */
    double *ref = calloc(g.n_out, sizeof *ref), mean[8], var[8];
    ck_assert_ptr_nonnull(ref);
    bn_reference(&g, 1, NULL, NULL, ref, mean, var);
    gc_layer_objective(&g);
    assert_close(k->name, g.y, ref, g.n_out, 2e-5);
    for (size_t j = 0; j < c; j++) {
        ck_assert_msg(fabs(g.state[j] - 0.01 * mean[j]) <= 1e-6, "%s: moving mean %g, expected %g", k->name,
                      (double)g.state[j], 0.01 * mean[j]);
        ck_assert_msg(fabs(g.state[c + j] - (0.99 + 0.01 * var[j])) <= 1e-6, "%s: moving variance %g, expected %g",
                      k->name, (double)g.state[c + j], 0.99 + 0.01 * var[j]);
    }
    free(ref);
    check_gradients(&g, k->name, 7 + (uint64_t)_i);
    gc_layer_free(&g);
}
END_TEST

/* The activation the plan hands over (Conv2D-BN-ReLU): the output is the
 * activation of the plain output, and the gradients go through both.
 * _i: ReLU, tanh, sigmoid, on the first case. */
START_TEST(batch_normalization_fused_activation)
{
    static const fmnn_activation_kind kinds[] = { FMNN_RELU, FMNN_TANH, FMNN_SIGMOID };
    const bn_case *k = &bn_cases[0];
    gc_layer g;
    setup(&g, bn_layer(k), k->rank, k->dims, k->batch, 340 + (uint64_t)_i);
    g.pass.training = 1;
    gc_layer_objective(&g);
    float *plain = malloc(g.n_out * sizeof *plain);
    ck_assert_ptr_nonnull(plain);
    memcpy(plain, g.y, g.n_out * sizeof *plain);
    fmnn__activate(kinds[_i], plain, g.n_out / (size_t)k->dims[k->rank - 1], (size_t)k->dims[k->rank - 1]);
    g.pass.activation = kinds[_i];
    gc_layer_objective(&g);
    ck_assert_mem_eq(g.y, plain, g.n_out * sizeof *plain);
    free(plain);
    /* ReLU's kink is within reach of every finite difference through the
     * batch statistics: its backward is checked against an unfused ReLU
     * below instead. */
    if (kinds[_i] != FMNN_RELU)
        check_gradients(&g, "BatchNormalization with a fused activation", 17 + (uint64_t)_i);
    gc_layer_free(&g);
}
END_TEST

/* Conv2D-BN-ReLU, where the plan fuses the ReLU into the BN, trains to the
 * same bits as Conv2D-BN-LeakyReLU(0), which it cannot fuse. */
static fmnn_model *conv_bn_relu(int fused)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 6, 6, 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .no_bias = 1 })), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_batch_normalization(NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fused ? fmnn_activation(FMNN_RELU) : fmnn_leaky_relu(0.0f)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_flatten()), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 8), FMNN_OK);
    return m;
}

START_TEST(batch_normalization_relu_fused_trains_the_same)
{
    fmnn_model *a = conv_bn_relu(1), *b = conv_bn_relu(0);
    ck_assert_int_lt(a->n_steps, b->n_steps); /* the ReLU has no step of its own */
    fmnn_tensor *x = NULL, *y = NULL;
    ck_assert_int_eq(fmnn_tensor_new(&x, 4, (int[]){ 8, 6, 6, 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_new(&y, 1, (int[]){ 8 }), FMNN_OK);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 77);
    for (size_t i = 0; i < fmnn_tensor_size(x); i++)
        fmnn_tensor_data(x)[i] = fmnn__rng_uniform(&rng) * 2.0f - 1.0f;
    for (int i = 0; i < 8; i++)
        fmnn_tensor_data(y)[i] = (float)(i % 3);
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 4;
    o.epochs = 2;
    ck_assert_int_eq(fmnn_model_fit(a, x, y, &o, NULL), FMNN_OK);
    ck_assert_int_eq(fmnn_model_fit(b, x, y, &o, NULL), FMNN_OK);
    size_t na, nb;
    const float *wa = fmnn_model_weights(a, &na), *wb = fmnn_model_weights(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(wa, wb, na * sizeof *wa);
    ck_assert_mem_eq(a->state, b->state, a->n_state * sizeof *a->state);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* At inference the moving statistics normalise, and the batch's are not
 * used or moved. */
START_TEST(batch_normalization_inference)
{
    const bn_case *k = &bn_cases[_i];
    gc_layer g;
    setup(&g, bn_layer(k), k->rank, k->dims, k->batch, 200 + (uint64_t)_i);
    const size_t c = (size_t)k->dims[k->rank - 1];
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 300 + (uint64_t)_i);
    gc_fill_uniform(&rng, g.state, c, -0.5f, 0.5f);
    gc_fill_uniform(&rng, g.state + c, c, 0.2f, 2.0f);
    float before[16];
    memcpy(before, g.state, 2 * c * sizeof *before);
    g.pass.training = 0;
    double *ref = calloc(g.n_out, sizeof *ref), mean[8], var[8];
    ck_assert_ptr_nonnull(ref);
    bn_reference(&g, 0, g.state, g.state + c, ref, mean, var);
    gc_layer_objective(&g);
    assert_close(k->name, g.y, ref, g.n_out, 2e-5);
    ck_assert(memcmp(before, g.state, 2 * c * sizeof *before) == 0);
    free(ref);
    check_gradients(&g, k->name, 17 + (uint64_t)_i);
    gc_layer_free(&g);
}
END_TEST

/* Values so large that their variance overflows a float: fit refuses the
 * step as it refuses a non-finite loss, and leaves the moving statistics
 * of the last good step, so the model can still be saved. */
START_TEST(batch_normalization_overflow_is_refused)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_batch_normalization(NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1), FMNN_OK);
    fmnn_tensor *x, *y;
    ck_assert_int_eq(fmnn_tensor_new(&x, 2, (int[]){ 4, 2 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ 4, 2 }), FMNN_OK);
    for (int i = 0; i < 8; i++)
        fmnn_tensor_data(x)[i] = (i % 2 ? 3e30f : -3e30f) * (float)(i + 1);
    for (int i = 0; i < 4; i++)
        fmnn_tensor_data(y)[2 * i + i % 2] = 1.0f;
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 4;
    o.verbose = 0;
    ck_assert_int_eq(fmnn_model_fit(m, x, y, &o, NULL), FMNN_ENUMERIC);
    ck_assert_msg(strstr(fmnn_last_error(), "moving statistics") != NULL, "%s", fmnn_last_error());
    const float initial[4] = { 0.0f, 0.0f, 1.0f, 1.0f };
    ck_assert(memcmp(m->state, initial, sizeof initial) == 0);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- AveragePooling2D ---------------------------------------------------------- */

typedef struct pool_case {
    const char *name;
    int h, w, c, ph, pw, sh, sw; /* strides 0: the pool size */
    fmnn_padding padding;
    int out_h, out_w;
} pool_case;

static const pool_case pool_cases[] = {
    { "2x2 valid", 4, 6, 3, 2, 2, 0, 0, FMNN_PADDING_VALID, 2, 3 },
    { "3x3 stride 2 same (overlap + padding)", 7, 6, 2, 3, 3, 2, 2, FMNN_PADDING_SAME, 4, 3 },
    { "3x3 stride 1 valid (heavy overlap)", 5, 5, 2, 3, 3, 1, 1, FMNN_PADDING_VALID, 3, 3 },
    { "2x2 same, odd input", 5, 5, 2, 2, 2, 0, 0, FMNN_PADDING_SAME, 3, 3 },
    { "3x3 stride 1 same (every border)", 4, 4, 1, 3, 3, 1, 1, FMNN_PADDING_SAME, 4, 4 },
    { "2x2 stride 3 valid (gaps)", 7, 7, 3, 2, 2, 3, 3, FMNN_PADDING_VALID, 2, 2 },
};
#define N_POOL_CASES ((int)(sizeof pool_cases / sizeof pool_cases[0]))

/* The mean over the part of each window inside the image. */
static void avgpool_reference(const gc_layer *g, const pool_case *k, int batch, double *ref)
{
    const int sh = k->sh ? k->sh : k->ph, sw = k->sw ? k->sw : k->pw;
    int pad_top = 0, pad_left = 0;
    if (k->padding == FMNN_PADDING_SAME) {
        int th = (k->out_h - 1) * sh + k->ph - k->h, tw = (k->out_w - 1) * sw + k->pw - k->w;
        pad_top = th > 0 ? th / 2 : 0;
        pad_left = tw > 0 ? tw / 2 : 0;
    }
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < k->out_h; y++)
            for (int x = 0; x < k->out_w; x++)
                for (int ch = 0; ch < k->c; ch++) {
                    double sum = 0.0;
                    int count = 0;
                    for (int i = 0; i < k->ph; i++)
                        for (int j = 0; j < k->pw; j++) {
                            int iy = y * sh - pad_top + i, ix = x * sw - pad_left + j;
                            if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w)
                                continue;
                            sum += g->x[(((size_t)n * k->h + iy) * k->w + ix) * k->c + ch];
                            count++;
                        }
                    ref[(((size_t)n * k->out_h + y) * k->out_w + x) * k->c + ch] = sum / count;
                }
}

START_TEST(average_pooling2d_gradients)
{
    const pool_case *k = &pool_cases[_i];
    const fmnn_pool2d_options o = { .stride_h = k->sh, .stride_w = k->sw, .padding = k->padding };
    gc_layer g;
    setup(&g, fmnn_average_pooling2d(k->ph, k->pw, &o), 3, (int[]){ k->h, k->w, k->c }, 2, 400 + (uint64_t)_i);
    const fmnn_shape *out = &g.layer->out;
    ck_assert_msg(out->rank == 3 && out->dims[0] == k->out_h && out->dims[1] == k->out_w && out->dims[2] == k->c,
                  "%s: output (%d, %d, %d)", k->name, out->dims[0], out->dims[1], out->dims[2]);
    double *ref = calloc(g.n_out, sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    avgpool_reference(&g, k, 2, ref);
    gc_layer_objective(&g);
    assert_close(k->name, g.y, ref, g.n_out, 1e-6);
    free(ref);
    check_gradients(&g, k->name, 23 + (uint64_t)_i);
    gc_layer_free(&g);
}
END_TEST

/* A "same" corner window of a constant image averages to the constant:
 * it divides by the 4 pixels it covers, not the 9 of the window. */
START_TEST(average_pooling2d_same_border_counts_real_pixels)
{
    const fmnn_pool2d_options o = { .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME };
    gc_layer g;
    setup(&g, fmnn_average_pooling2d(3, 3, &o), 3, (int[]){ 3, 3, 1 }, 1, 1);
    for (size_t i = 0; i < g.n_in; i++)
        g.x[i] = 2.0f;
    gc_layer_objective(&g);
    for (size_t i = 0; i < g.n_out; i++)
        ck_assert_msg(g.y[i] == 2.0f, "y[%zu] = %g, expected 2", i, (double)g.y[i]);
    gc_layer_free(&g);
}
END_TEST

/* ---- global pooling -------------------------------------------------------------- */

START_TEST(global_pooling_gradients)
{
    const int dims[3] = { 3, 4, 3 };
    for (int max = 0; max < 2; max++) {
        const char *name = max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D";
        gc_layer g;
        setup(&g, max ? fmnn_global_max_pooling2d() : fmnn_global_average_pooling2d(), 3, dims, 2, 500);
        ck_assert_int_eq(g.layer->out.rank, 1);
        ck_assert_int_eq(g.layer->out.dims[0], 3);
        fmnn_rng rng;
        fmnn__rng_seed(&rng, 501);
        gc_fill_distinct(&rng, g.x, g.n_in, 0.05f); /* no near-ties for the max */
        double ref[6];
        for (int n = 0; n < 2; n++)
            for (int k = 0; k < 3; k++) {
                double acc = max ? -INFINITY : 0.0;
                for (int i = 0; i < 12; i++) {
                    double v = g.x[((size_t)n * 12 + i) * 3 + k];
                    acc = max ? fmax(acc, v) : acc + v / 12.0;
                }
                ref[n * 3 + k] = acc;
            }
        gc_layer_objective(&g);
        assert_close(name, g.y, ref, 6, 1e-6);
        check_gradients(&g, name, 29 + (uint64_t)max);
        gc_layer_free(&g);
    }
}
END_TEST

/* Tied maxima share the gradient equally, as ops.max's gradient does. */
START_TEST(global_max_pooling_shares_ties)
{
    gc_layer g;
    setup(&g, fmnn_global_max_pooling2d(), 3, (int[]){ 2, 2, 1 }, 1, 1);
    const float x[4] = { 1.0f, 3.0f, 3.0f, -2.0f };
    memcpy(g.x, x, sizeof x);
    g.r[0] = 1.0f;
    gc_layer_gradients(&g);
    ck_assert(g.y[0] == 3.0f);
    ck_assert(g.din[0] == 0.0f && g.din[1] == 0.5f && g.din[2] == 0.5f && g.din[3] == 0.0f);
    gc_layer_free(&g);
}
END_TEST

/* ---- ZeroPadding2D and Reshape --------------------------------------------------- */

START_TEST(zero_padding2d_gradients)
{
    gc_layer g;
    setup(&g, fmnn_zero_padding2d(1, 2, 0, 3), 3, (int[]){ 2, 3, 2 }, 2, 600);
    const fmnn_shape *out = &g.layer->out;
    ck_assert(out->rank == 3 && out->dims[0] == 5 && out->dims[1] == 6 && out->dims[2] == 2);
    double ref[2 * 5 * 6 * 2] = { 0 };
    for (int n = 0; n < 2; n++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                for (int k = 0; k < 2; k++)
                    ref[(((size_t)n * 5 + y + 1) * 6 + x) * 2 + k] = g.x[(((size_t)n * 2 + y) * 3 + x) * 2 + k];
    gc_layer_objective(&g);
    assert_close("ZeroPadding2D", g.y, ref, g.n_out, 0.0);
    check_gradients(&g, "ZeroPadding2D", 31);
    gc_layer_free(&g);
}
END_TEST

START_TEST(reshape_shapes)
{
    gc_layer g;
    setup(&g, fmnn_reshape(2, (int[]){ -1, 4 }), 3, (int[]){ 2, 3, 2 }, 2, 700);
    ck_assert(g.layer->out.rank == 2 && g.layer->out.dims[0] == 3 && g.layer->out.dims[1] == 4);
    gc_layer_gradients(&g); /* a copy both ways */
    ck_assert(memcmp(g.y, g.x, g.n_in * sizeof *g.x) == 0);
    ck_assert(memcmp(g.din, g.r, g.n_in * sizeof *g.r) == 0);
    gc_layer_free(&g);

    /* Sizes whose product passes any int64 are refused before it is taken. */
    fmnn_model *big = NULL;
    ck_assert_int_eq(fmnn_model_new(&big, 1, (int[]){ 8 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(big, fmnn_reshape(3, (int[]){ 1 << 24, 1 << 24, 1 << 24 })), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(big, FMNN_LOSS_MSE, NULL, 1), FMNN_ESHAPE);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "cannot reshape 8 values"));
    fmnn_model_free(big);

    /* Refused: sizes that do not multiply out, two -1, a 0. */
    const int bad[][3] = { { 5, -1, 0 }, { -1, -1, 0 }, { 0, 12, 0 }, { 7, 2, 0 } };
    for (int i = 0; i < 4; i++) {
        fmnn_model *m = NULL;
        ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 2, 3, 2 }), FMNN_OK);
        ck_assert_int_eq(fmnn_model_add(m, fmnn_reshape(2, bad[i])), FMNN_OK);
        int err = fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1);
        ck_assert_msg(err == FMNN_ESHAPE || err == FMNN_EINVAL, "case %d: %d", i, err);
        ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "reshape"));
        fmnn_model_free(m);
    }
}
END_TEST

/* ---- in a model --------------------------------------------------------------- */

/* Every new layer in one trained model: gradients of all parameters
 * through the library's own passes, BatchNormalization in training mode. */
START_TEST(model_with_every_new_layer)
{
    enum { B = 3, H = 6, W = 6, CLASSES = 3 };
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ H, W, 1 }), FMNN_OK);
    const fmnn_pool2d_options same = { .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME };
    fmnn_layer *layers[] = {
        fmnn_zero_padding2d(1, 1, 1, 1),
        fmnn_conv2d(3, 3, 3, NULL),
        fmnn_batch_normalization(NULL),
        fmnn_activation(FMNN_TANH),
        fmnn_average_pooling2d(2, 2, &same),
        fmnn_reshape(3, (int[]){ 6, 6, 3 }),
        fmnn_global_average_pooling2d(),
        fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_TANH }),
        fmnn_batch_normalization(NULL),
        fmnn_dense(CLASSES, NULL),
        fmnn_activation(FMNN_SOFTMAX),
    };
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
        ck_assert_int_eq(fmnn_model_add(m, layers[i]), FMNN_OK);
    ck_assert_msg(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 3) == FMNN_OK, "%s",
                  fmnn_last_error());
    ck_assert_uint_eq(m->n_state, 2 * 3 + 2 * 4);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 800);
    gc_fill_uniform(&rng, m->params, m->n_params, -0.8f, 0.8f);
    float x[B * H * W], y[B * CLASSES] = { 0 };
    gc_fill_uniform(&rng, x, sizeof x / sizeof *x, -1.0f, 1.0f);
    for (int n = 0; n < B; n++)
        y[n * CLASSES + n % CLASSES] = 1.0f;
    gc_model g;
    ck_assert_int_eq(gc_model_init(&g, m, B, x, y, 1, 9), FMNN_OK);
    double objective = gc_model_gradients(&g);
    ck_assert(isfinite(objective));
    float *analytic = malloc(m->n_params * sizeof *analytic);
    ck_assert_ptr_nonnull(analytic);
    memcpy(analytic, m->grads, m->n_params * sizeof *analytic);
    gc_tol tol = { 1e-3, 1e-2, 2e-4 };
    gc_stats s = gc_check("every new layer: all parameters", gc_model_objective, &g, m->params, analytic,
                          m->n_params, ALL, 43, &tol);
    assert_checked(&s, "every new layer: all parameters");
    free(analytic);
    fmnn_model_free(m);
}
END_TEST

/* ---- activations ----------------------------------------------------------------- */

static const fmnn_activation_kind new_kinds[] = { FMNN_LEAKY_RELU, FMNN_ELU, FMNN_SELU, FMNN_GELU,
                                                  FMNN_GELU_TANH, FMNN_SOFTPLUS, FMNN_SWISH, FMNN_HARD_SIGMOID };
#define N_NEW_KINDS ((int)(sizeof new_kinds / sizeof new_kinds[0]))

/* The Activation layer: forward against keras.activations' formula in
 * double, backward against central differences (inputs kept 5h from the
 * kinks at 0 and, for hard_sigmoid, at +-3). */
START_TEST(activation_kinds)
{
    const fmnn_activation_kind kind = new_kinds[_i];
    const char *name = gc_activation_name(kind);
    gc_layer g;
    setup(&g, fmnn_activation(kind), 3, (int[]){ 2, 3, 4 }, 2, 900 + (uint64_t)_i);
    gc_tol tol = GC_TOL_LAYER;
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 901 + (uint64_t)_i);
    gc_fill_signed(&rng, g.x, g.n_in, (float)(5 * tol.h), 2.5f);
    double *ref = calloc(g.n_out, sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    for (size_t i = 0; i < g.n_in; i++)
        ref[i] = gc_activation_reference(kind, g.x[i]);
    gc_layer_objective(&g);
    assert_close(name, g.y, ref, g.n_out, 2e-6);
    free(ref);
    check_gradients(&g, name, 37 + (uint64_t)_i);
    gc_layer_free(&g);
}
END_TEST

/* The LeakyReLU layer has a slope of its own (Keras's layer: 0.3). */
START_TEST(leaky_relu_layer)
{
    gc_layer g;
    setup(&g, fmnn_leaky_relu(0.3f), 2, (int[]){ 3, 4 }, 2, 970);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 971);
    gc_fill_signed(&rng, g.x, g.n_in, 0.05f, 2.0f);
    double ref[24];
    for (size_t i = 0; i < g.n_in; i++)
        ref[i] = g.x[i] > 0.0f ? g.x[i] : 0.3 * g.x[i];
    gc_layer_objective(&g);
    assert_close("LeakyReLU", g.y, ref, g.n_out, 1e-7);
    check_gradients(&g, "LeakyReLU", 53);
    gc_layer_free(&g);
    /* A negative slope is refused at compile, naming the option. */
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 3 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_leaky_relu(-0.1f)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_EINVAL);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "negative_slope"));
    fmnn_model_free(m);
}
END_TEST

/* Dense(4) -> [Activation(kind)] -> Dense(2), MSE. */
static fmnn_model *activation_model(fmnn_activation_kind kind, int as_option)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 5 }), FMNN_OK);
    fmnn_dense_options o = { .activation = as_option ? kind : FMNN_LINEAR };
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &o)), FMNN_OK);
    if (!as_option)
        ck_assert_int_eq(fmnn_model_add(m, fmnn_activation(kind)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(2, NULL)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 5), FMNN_OK);
    return m;
}

/*
 * As Dense's activation option the kind gives the same bits, forward and
 * backward, as an Activation layer after it: fused into the Dense where
 * the derivative follows from the output, run after it from the kept
 * input for GELU and swish.  And the model's gradients pass the check.
 */
START_TEST(activation_option_matches_layer)
{
    enum { B = 3 };
    const fmnn_activation_kind kind = new_kinds[_i];
    const char *name = gc_activation_name(kind);
    fmnn_model *a = activation_model(kind, 1), *b = activation_model(kind, 0);
    const fmnn_step *first = &a->steps[0];
    if (fmnn__activation_needs_input(kind))
        ck_assert_msg(first->post == kind && first->links[0].activation == FMNN_LINEAR, "%s: not a post step", name);
    else
        ck_assert_msg(first->post == FMNN_LINEAR && first->links[0].activation == kind, "%s: not fused", name);
    ck_assert_uint_eq(a->n_params, b->n_params);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 950 + (uint64_t)_i);
    gc_fill_uniform(&rng, a->params, a->n_params, -0.8f, 0.8f);
    memcpy(b->params, a->params, a->n_params * sizeof *a->params);
    float x[B * 5], y[B * 2];
    gc_fill_uniform(&rng, x, B * 5, -1.5f, 1.5f);
    gc_fill_uniform(&rng, y, B * 2, -1.0f, 1.0f);
    gc_model ga, gb;
    ck_assert_int_eq(gc_model_init(&ga, a, B, x, y, 1, 1), FMNN_OK);
    ck_assert_int_eq(gc_model_init(&gb, b, B, x, y, 1, 1), FMNN_OK);
    double la = gc_model_gradients(&ga), lb = gc_model_gradients(&gb);
    ck_assert_msg(la == lb, "%s: loss %.9g as an option, %.9g as a layer", name, la, lb);
    ck_assert_msg(memcmp(a->grads, b->grads, a->n_params * sizeof *a->grads) == 0, "%s: gradients differ", name);
    float *analytic = malloc(a->n_params * sizeof *analytic);
    ck_assert_ptr_nonnull(analytic);
    memcpy(analytic, a->grads, a->n_params * sizeof *analytic);
    gc_tol tol = { 1e-3, 1e-2, 2e-4 };
    gc_stats st = gc_check(name, gc_model_objective, &ga, a->params, analytic, a->n_params, ALL, 47, &tol);
    assert_checked(&st, name);
    free(analytic);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* ---- losses --------------------------------------------------------------------- */

typedef struct loss_case {
    const char *name;
    fmnn_loss loss;
    fmnn_activation_kind last;  /* of the final Dense */
    int activation_layer;       /* the activation as a layer after it instead */
    fmnn_output_fusion fusion;
} loss_case;

static const loss_case loss_cases[] = {
    { "binary, sigmoid option (fused)", FMNN_LOSS_BINARY_CROSSENTROPY, FMNN_SIGMOID, 0, FUSE_ACTIVATION },
    { "binary, sigmoid layer (fused)", FMNN_LOSS_BINARY_CROSSENTROPY, FMNN_SIGMOID, 1, FUSE_LAYER },
    { "binary, hard_sigmoid (clipped probabilities)", FMNN_LOSS_BINARY_CROSSENTROPY, FMNN_HARD_SIGMOID, 1, FUSE_NONE },
    { "binary from logits", FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS, FMNN_LINEAR, 0, FUSE_NONE },
    { "categorical from logits", FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS, FMNN_LINEAR, 0, FUSE_NONE },
    { "sparse categorical from logits", FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS, FMNN_LINEAR, 0,
      FUSE_NONE },
    { "mean absolute error", FMNN_LOSS_MAE, FMNN_LINEAR, 0, FUSE_NONE },
    { "huber", FMNN_LOSS_HUBER, FMNN_LINEAR, 0, FUSE_NONE },
};
#define N_LOSS_CASES ((int)(sizeof loss_cases / sizeof loss_cases[0]))

/* The per-sample loss of one row of outputs z (before any activation the
 * loss fuses) against targets t, from Keras's definitions, in double. */
static double loss_reference(const loss_case *k, const float *out, const float *t, int width)
{
    double sum = 0.0;
    switch (k->loss) {
    case FMNN_LOSS_BINARY_CROSSENTROPY:
    case FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS:
        for (int c = 0; c < width; c++) {
            double p = k->loss == FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS ? 1.0 / (1.0 + exp(-(double)out[c])) : out[c];
            p = fmin(fmax(p, 1e-7), 1.0 - 1e-7);
            sum -= t[c] * log(p) + (1.0 - t[c]) * log(1.0 - p);
        }
        return sum / width;
    case FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS:
    case FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS: {
        double top = out[0], z = 0.0;
        for (int c = 0; c < width; c++)
            top = fmax(top, out[c]);
        for (int c = 0; c < width; c++)
            z += exp(out[c] - top);
        for (int c = 0; c < width; c++) {
            double y = k->loss == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS ? (c == (int)t[0]) : t[c];
            sum -= y * (out[c] - top - log(z));
        }
        return sum;
    }
    case FMNN_LOSS_MAE:
        for (int c = 0; c < width; c++)
            sum += fabs((double)out[c] - t[c]);
        return sum / width;
    case FMNN_LOSS_HUBER:
        for (int c = 0; c < width; c++) {
            double e = fabs((double)out[c] - t[c]);
            sum += e <= 1.0 ? 0.5 * e * e : e - 0.5;
        }
        return sum / width;
    default:
        return NAN;
    }
}

/* Dense(4, tanh) -> Dense(3, last) [-> Activation(last)] with the loss:
 * its fusion, the loss evaluate reports against the definition on the
 * model's predictions, and its gradients against central differences. */
START_TEST(loss_gradients)
{
    enum { B = 4, IN = 5, W = 3 };
    const loss_case *k = &loss_cases[_i];
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ IN }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_TANH })), FMNN_OK);
    fmnn_dense_options o = { .activation = k->activation_layer ? FMNN_LINEAR : k->last };
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(W, &o)), FMNN_OK);
    if (k->activation_layer)
        ck_assert_int_eq(fmnn_model_add(m, fmnn_activation(k->last)), FMNN_OK);
    ck_assert_msg(fmnn_model_compile(m, k->loss, NULL, 3) == FMNN_OK, "%s: %s", k->name, fmnn_last_error());
    ck_assert_msg(m->fusion == k->fusion, "%s: fusion %d, expected %d", k->name, (int)m->fusion, (int)k->fusion);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 1000 + (uint64_t)_i);
    gc_fill_uniform(&rng, m->params, m->n_params, -1.0f, 1.0f);
    const int sparse = k->loss == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
    const int tw = sparse ? 1 : W;
    float x[B * IN], y[B * W] = { 0 };
    gc_fill_uniform(&rng, x, B * IN, -1.0f, 1.0f);
    for (int n = 0; n < B; n++)
        for (int c = 0; c < tw; c++) {
            if (sparse)
                y[n] = (float)(n % W);
            else if (k->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS)
                y[n * W + c] = c == n % W;
            else if (k->loss == FMNN_LOSS_BINARY_CROSSENTROPY || k->loss == FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS)
                y[n * W + c] = (n + c) % 2 ? 1.0f : 0.25f; /* soft targets too */
            else /* regression: errors far from the kinks at 0 and +-1 */
                y[n * W + c] = (n + c) % 2 ? 3.0f : -0.5f + 0.01f * (float)c;
        }
    /* The loss evaluate reports, against the definition. */
    fmnn_tensor *tx, *ty, *pred;
    ck_assert_int_eq(fmnn_tensor_wrap(&tx, x, 2, (int[]){ B, IN }), FMNN_OK);
    ck_assert_int_eq(sparse ? fmnn_tensor_wrap(&ty, y, 1, (int[]){ B }) : fmnn_tensor_wrap(&ty, y, 2, (int[]){ B, W }),
                     FMNN_OK);
    float loss;
    ck_assert_int_eq(fmnn_model_evaluate(m, tx, ty, 0, &loss, NULL), FMNN_OK);
    ck_assert_int_eq(fmnn_model_predict(m, tx, 0, &pred), FMNN_OK);
    double ref = 0.0;
    for (int n = 0; n < B; n++)
        ref += loss_reference(k, fmnn_tensor_const_data(pred) + n * W, y + n * tw, W) / B;
    ck_assert_msg(fabs(loss - ref) <= 2e-6 * fmax(1.0, fabs(ref)), "%s: loss %.8g, expected %.8g", k->name,
                  (double)loss, ref);
    fmnn_tensor_free(pred);
    fmnn_tensor_free(tx);
    fmnn_tensor_free(ty);

    gc_model g;
    ck_assert_int_eq(gc_model_init(&g, m, B, x, y, 1, 1), FMNN_OK);
    gc_model_gradients(&g);
    float *analytic = malloc(m->n_params * sizeof *analytic);
    ck_assert_ptr_nonnull(analytic);
    memcpy(analytic, m->grads, m->n_params * sizeof *analytic);
    gc_tol tol = { 1e-3, 1e-2, 2e-4 };
    gc_stats st = gc_check(k->name, gc_model_objective, &g, m->params, analytic, m->n_params, ALL, 59, &tol);
    assert_checked(&st, k->name);
    free(analytic);
    fmnn_model_free(m);
}
END_TEST

/* ---- per-layer weights and trainable -------------------------------------------- */

/* Input(4) -> Dense(3) -> BatchNormalization -> Dense(2, softmax). */
static fmnn_model *frozen_model(int freeze_dense, int freeze_bn)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 4 }), FMNN_OK);
    fmnn_layer *dense = fmnn_dense(3, NULL), *bn = fmnn_batch_normalization(NULL);
    ck_assert_int_eq(fmnn_layer_set_trainable(dense, !freeze_dense), FMNN_OK);
    ck_assert_int_eq(fmnn_layer_set_trainable(bn, !freeze_bn), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, dense), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, bn), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 6), FMNN_OK);
    return m;
}

static void fit_a_little(fmnn_model *m)
{
    fmnn_tensor *x, *y;
    ck_assert_int_eq(fmnn_tensor_new(&x, 2, (int[]){ 8, 4 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ 8, 2 }), FMNN_OK);
    for (int i = 0; i < 32; i++)
        fmnn_tensor_data(x)[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    for (int i = 0; i < 8; i++)
        fmnn_tensor_data(y)[2 * i + i % 2] = 1.0f;
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 4;
    o.epochs = 2;
    o.verbose = 0;
    ck_assert_msg(fmnn_model_fit(m, x, y, &o, NULL) == FMNN_OK, "%s", fmnn_last_error());
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* A frozen layer's weights and state stay as they were through fit, the
 * others move; the summary counts its parameters as non-trainable; the
 * flag survives a save. */
START_TEST(frozen_layers_do_not_train)
{
    fmnn_model *m = frozen_model(1, 1);
    fmnn_layer_weights dense, bn, head;
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, 0, &dense), FMNN_OK);
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, 1, &bn), FMNN_OK);
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, 2, &head), FMNN_OK);
    ck_assert(dense.kernel_count == 12 && dense.bias_count == 3 && dense.state == NULL);
    ck_assert(bn.kernel_count == 3 && bn.bias_count == 3 && bn.state_count == 6);
    float before_dense[15], before_bn[12], before_head[8];
    memcpy(before_dense, dense.kernel, 15 * sizeof(float)); /* kernel then bias, back to back */
    memcpy(before_bn, bn.kernel, 6 * sizeof(float));
    memcpy(before_bn + 6, bn.state, 6 * sizeof(float));
    memcpy(before_head, head.kernel, 8 * sizeof(float));
    fit_a_little(m);
    ck_assert(memcmp(before_dense, dense.kernel, sizeof before_dense) == 0);
    ck_assert(memcmp(before_bn, bn.kernel, 6 * sizeof(float)) == 0);
    ck_assert_msg(memcmp(before_bn + 6, bn.state, 6 * sizeof(float)) == 0, "a frozen BatchNormalization moved");
    ck_assert(memcmp(before_head, head.kernel, sizeof before_head) != 0);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fmnn_model_summary(m, f), FMNN_OK);
    fclose(f);
    /* 15 + 12 + 8 = 35 in all: 8 trainable (the head), 27 not. */
    ck_assert_msg(strstr(text, "Total params: 35 ") && strstr(text, "Trainable params: 8 ") &&
                      strstr(text, "Non-trainable params: 27 "),
                  "summary:\n%s", text);
    free(text);

    char path[] = "/tmp/fmnn_check_layers_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(fmnn_model_save(m, path, 0), FMNN_OK);
    fmnn_model *back = NULL;
    ck_assert_int_eq(fmnn_model_load(&back, path), FMNN_OK);
    unlink(path);
    ck_assert(!fmnn_layer_trainable(fmnn_model_layer(back, 0)) && !fmnn_layer_trainable(fmnn_model_layer(back, 1)) &&
              fmnn_layer_trainable(fmnn_model_layer(back, 2)));
    fmnn_model_free(back);
    fmnn_model_free(m);

    /* Trainable again, the same layers do train. */
    m = frozen_model(0, 0);
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, 0, &dense), FMNN_OK);
    memcpy(before_dense, dense.kernel, sizeof before_dense);
    fit_a_little(m);
    ck_assert(memcmp(before_dense, dense.kernel, sizeof before_dense) != 0);
    fmnn_model_free(m);
}
END_TEST

START_TEST(set_layer_weights_checks)
{
    fmnn_model *m = frozen_model(0, 0);
    fmnn_layer_weights w;
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, 1, &w), FMNN_OK);
    size_t n;
    float *all = fmnn_model_weights(m, &n);
    ck_assert_ptr_eq(w.kernel, all + 15); /* gamma follows the first Dense's 15 */
    float gamma[3] = { 2.0f, 3.0f, 4.0f }, state[6] = { 0.1f, 0.2f, 0.3f, 1.5f, 2.5f, 3.5f };
    fmnn_layer_weights set = { gamma, 3, NULL, 0, state, 6 };
    ck_assert_int_eq(fmnn_model_set_layer_weights(m, 1, &set), FMNN_OK);
    ck_assert(w.kernel[2] == 4.0f && w.state[5] == 3.5f && w.bias[0] == 0.0f);
    /* Wrong counts, NaN, no such layer: refused, nothing changed. */
    fmnn_layer_weights wrong = { gamma, 2, NULL, 0, NULL, 0 };
    ck_assert_int_eq(fmnn_model_set_layer_weights(m, 1, &wrong), FMNN_ESHAPE);
    gamma[0] = NAN;
    ck_assert_int_eq(fmnn_model_set_layer_weights(m, 1, &set), FMNN_ENUMERIC);
    ck_assert(w.kernel[0] == 2.0f);
    ck_assert_int_eq(fmnn_model_set_layer_weights(m, 3, &set), FMNN_EINVAL);
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, -1, &w), FMNN_EINVAL);
    ck_assert_ptr_null(w.kernel);
    fmnn_model_free(m);
}
END_TEST

/* ---- layer options: dilation, use_bias, initializers -------------------------------- */

/* A dilated convolution in double: tap (i, j) reads row y*s + i*d - pad. */
static void dilated_reference(const gc_layer *g, int batch, int h, int w, int c, int f, int kh, int kw, int dh,
                              int dw, int oh, int ow, int pad_top, int pad_left, int with_bias, double *out)
{
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int o = 0; o < f; o++) {
                    double sum = with_bias ? g->bias[o] : 0.0;
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            int iy = y + i * dh - pad_top, ix = x + j * dw - pad_left;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int k = 0; k < c; k++)
                                sum += (double)g->x[(((size_t)n * h + iy) * w + ix) * c + k] *
                                       g->kernel[(((size_t)i * kw + j) * c + k) * f + o];
                        }
                    out[(((size_t)n * oh + y) * ow + x) * f + o] = sum;
                }
}

typedef struct dilation_case {
    const char *name;
    int h, w, kh, kw, dh, dw;
    fmnn_padding padding;
    int no_bias;
    int oh, ow, pad_top, pad_left;
} dilation_case;

static const dilation_case dilation_cases[] = {
    { "3x3 dilation 2 valid", 7, 8, 3, 3, 2, 2, FMNN_PADDING_VALID, 0, 3, 4, 0, 0 },
    { "3x2 dilation 2x3 same", 6, 7, 3, 2, 2, 3, FMNN_PADDING_SAME, 0, 6, 7, 2, 1 },
    { "2x2 dilation 3 same, no bias", 5, 5, 2, 2, 3, 3, FMNN_PADDING_SAME, 1, 5, 5, 1, 1 },
    { "3x3 no bias", 5, 5, 3, 3, 1, 1, FMNN_PADDING_VALID, 1, 3, 3, 0, 0 },
};
#define N_DILATION_CASES ((int)(sizeof dilation_cases / sizeof dilation_cases[0]))

START_TEST(conv2d_dilation_and_no_bias)
{
    const dilation_case *k = &dilation_cases[_i];
    const fmnn_conv2d_options o = { .padding = k->padding, .dilation_h = k->dh, .dilation_w = k->dw,
                                    .no_bias = k->no_bias };
    gc_layer g;
    setup(&g, fmnn_conv2d(3, k->kh, k->kw, &o), 3, (int[]){ k->h, k->w, 2 }, 2, 1100 + (uint64_t)_i);
    const fmnn_shape *out = &g.layer->out;
    ck_assert_msg(out->dims[0] == k->oh && out->dims[1] == k->ow, "%s: output %dx%d", k->name, out->dims[0],
                  out->dims[1]);
    ck_assert_uint_eq(g.layer->n_bias, k->no_bias ? 0 : 3);
    double *ref = calloc(g.n_out, sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    dilated_reference(&g, 2, k->h, k->w, 2, 3, k->kh, k->kw, k->dh, k->dw, k->oh, k->ow, k->pad_top, k->pad_left,
                      !k->no_bias, ref);
    gc_layer_objective(&g);
    assert_close(k->name, g.y, ref, g.n_out, 1e-5);
    free(ref);
    check_gradients(&g, k->name, 61 + (uint64_t)_i);
    gc_layer_free(&g);
}
END_TEST

START_TEST(dense_without_bias)
{
    gc_layer g;
    setup(&g, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_TANH, .no_bias = 1 }), 1, (int[]){ 4 }, 3, 1200);
    ck_assert_uint_eq(g.layer->n_bias, 0);
    double ref[9];
    for (int n = 0; n < 3; n++)
        for (int o = 0; o < 3; o++) {
            double sum = 0.0;
            for (int i = 0; i < 4; i++)
                sum += (double)g.x[n * 4 + i] * g.kernel[i * 3 + o];
            ref[n * 3 + o] = tanh(sum);
        }
    gc_layer_objective(&g);
    assert_close("Dense without bias", g.y, ref, 9, 1e-6);
    check_gradients(&g, "Dense without bias", 67);
    gc_layer_free(&g);
}
END_TEST

/* Keras refuses strides above 1 together with a dilation above 1. */
START_TEST(conv2d_dilation_with_strides_refused)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }), FMNN_OK);
    const fmnn_conv2d_options o = { .stride_h = 2, .dilation_w = 2 };
    ck_assert_int_eq(fmnn_model_add(m, fmnn_conv2d(2, 3, 3, &o)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_EINVAL);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "dilation_rate"));
    fmnn_model_free(m);
}
END_TEST

typedef struct init_case {
    fmnn_initializer kind;
    double bound;     /* |w| at most this */
    double variance;  /* of the values */
} init_case;

/* A Dense(300) on 200 inputs: fan_in 200, fan_out 300. */
static const init_case init_cases[] = {
    { FMNN_INIT_DEFAULT, 0.10954451, 6.0 / 500 / 3 },
    { FMNN_GLOROT_UNIFORM, 0.10954451, 6.0 / 500 / 3 },
    { FMNN_GLOROT_NORMAL, 2 * 0.06324555 / 0.87962566, 2.0 / 500 },
    { FMNN_HE_UNIFORM, 0.17320508, 6.0 / 200 / 3 },
    { FMNN_HE_NORMAL, 2 * 0.1 / 0.87962566, 2.0 / 200 },
    { FMNN_LECUN_UNIFORM, 0.12247449, 3.0 / 200 / 3 },
    { FMNN_LECUN_NORMAL, 2 * 0.07071068 / 0.87962566, 1.0 / 200 },
    { FMNN_ZEROS, 0.0, 0.0 },
    { FMNN_ONES, 1.0, 0.0 },
};
#define N_INIT_CASES ((int)(sizeof init_cases / sizeof init_cases[0]))

/* The kernel's values stay within the bound (the uniform limit, or two
 * truncated standard deviations), have mean 0 and the variance Keras's
 * VarianceScaling gives; the bias takes its own initializer. */
START_TEST(initializers)
{
    const init_case *k = &init_cases[_i];
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 200 }), FMNN_OK);
    const fmnn_dense_options o = { .kernel_initializer = k->kind, .bias_initializer = FMNN_ONES };
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(300, &o)), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 77), FMNN_OK);
    fmnn_layer_weights w;
    ck_assert_int_eq(fmnn_model_get_layer_weights(m, 0, &w), FMNN_OK);
    double sum = 0.0, sum2 = 0.0, largest = 0.0;
    for (size_t i = 0; i < w.kernel_count; i++) {
        sum += w.kernel[i];
        sum2 += (double)w.kernel[i] * w.kernel[i];
        largest = fmax(largest, fabs(w.kernel[i]));
    }
    const double n = (double)w.kernel_count, mean = sum / n, var = sum2 / n - mean * mean;
    ck_assert_msg(largest <= k->bound * (1 + 1e-6), "initializer %d: |w| reaches %g, bound %g", (int)k->kind, largest,
                  k->bound);
    if (k->kind == FMNN_ONES) {
        ck_assert(mean == 1.0);
    } else {
        ck_assert_msg(fabs(mean) <= 3e-3 * fmax(k->bound, 1e-3), "initializer %d: mean %g", (int)k->kind, mean);
        ck_assert_msg(fabs(var - k->variance) <= 0.02 * fmax(k->variance, 1e-12) + 1e-12,
                      "initializer %d: variance %g, expected %g", (int)k->kind, var, k->variance);
    }
    for (size_t i = 0; i < w.bias_count; i++)
        ck_assert(w.bias[i] == 1.0f);
    fmnn_model_free(m);
}
END_TEST

/* A moving variance below 0 is refused; a frozen layer's kernel
 * regularizer leaves the loss (Keras 3 counts trainable weights only);
 * a model's layer can be frozen by index. */
START_TEST(state_checks_and_frozen_regularizer)
{
    fmnn_model *m = frozen_model(0, 0);
    float state[6] = { 0.0f, 0.0f, 0.0f, 1.0f, -0.5f, 1.0f };
    fmnn_layer_weights set = { NULL, 0, NULL, 0, state, 6 };
    ck_assert_int_eq(fmnn_model_set_layer_weights(m, 1, &set), FMNN_EINVAL);
    ck_assert_ptr_nonnull(strstr(fmnn_last_error(), "moving variance"));
    fmnn_model_free(m);

    fmnn_model *r = NULL;
    ck_assert_int_eq(fmnn_model_new(&r, 1, (int[]){ 3 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(r, fmnn_dense(2, &(fmnn_dense_options){ .kernel_regularizer = fmnn_l2(1.0f) })),
                     FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(r, FMNN_LOSS_MSE, NULL, 1), FMNN_OK);
    fmnn_tensor *x, *y;
    ck_assert_int_eq(fmnn_tensor_new(&x, 2, (int[]){ 2, 3 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ 2, 2 }), FMNN_OK);
    float with, without;
    ck_assert_int_eq(fmnn_model_evaluate(r, x, y, 0, &with, NULL), FMNN_OK);
    ck_assert_int_eq(fmnn_model_set_layer_trainable(r, 0, 0), FMNN_OK);
    ck_assert_int_eq(fmnn_model_evaluate(r, x, y, 0, &without, NULL), FMNN_OK);
    ck_assert_msg(with > 0.0f && without == 0.0f, "loss %g trainable, %g frozen", (double)with, (double)without);
    ck_assert(!fmnn_layer_trainable(fmnn_model_layer(r, 0)));
    ck_assert_int_eq(fmnn_model_set_layer_trainable(r, 1, 0), FMNN_EINVAL);
    ck_assert_int_eq(fmnn_model_set_layer_trainable(NULL, 0, 0), FMNN_EINVAL);
    ck_assert_int_eq(fmnn_layer_set_trainable(NULL, 0), FMNN_EINVAL);
    ck_assert(!fmnn_layer_trainable(NULL));
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(r);
}
END_TEST

/* The newer layers give the same bits with 1 and 2 threads: inference,
 * and the weights and moving statistics after two training steps. */
START_TEST(same_bits_for_any_thread_count)
{
    float *out[2], *weights[2], *state[2];
    size_t n_out = 0, n_w = 0, n_s = 0;
    for (int t = 0; t < 2; t++) {
        fmnn_set_num_threads(t + 1);
        fmnn_model *m = NULL;
        ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 40, 40, 3 }), FMNN_OK);
        const fmnn_pool2d_options same = { .padding = FMNN_PADDING_SAME };
        fmnn_layer *layers[] = {
            fmnn_zero_padding2d(1, 1, 1, 1),
            fmnn_conv2d(16, 3, 3, &(fmnn_conv2d_options){ .dilation_h = 2, .activation = FMNN_SWISH }),
            fmnn_batch_normalization(NULL),
            fmnn_leaky_relu(0.3f),
            fmnn_average_pooling2d(3, 3, &same),
            fmnn_global_max_pooling2d(),
            fmnn_dense(8, &(fmnn_dense_options){ .activation = FMNN_GELU }),
            fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SIGMOID }),
        };
        for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
            ck_assert_int_eq(fmnn_model_add(m, layers[i]), FMNN_OK);
        ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_BINARY_CROSSENTROPY, NULL, 8), FMNN_OK);
        fmnn_tensor *x, *y, *p;
        ck_assert_int_eq(fmnn_tensor_new(&x, 4, (int[]){ 8, 40, 40, 3 }), FMNN_OK);
        ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ 8, 2 }), FMNN_OK);
        fmnn_rng rng;
        fmnn__rng_seed(&rng, 1300);
        gc_fill_uniform(&rng, fmnn_tensor_data(x), fmnn_tensor_size(x), -1.0f, 1.0f);
        for (int i = 0; i < 8; i++)
            fmnn_tensor_data(y)[2 * i + i % 2] = 1.0f;
        fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
        o.batch_size = 4;
        o.verbose = 0;
        ck_assert_int_eq(fmnn_model_fit(m, x, y, &o, NULL), FMNN_OK);
        ck_assert_int_eq(fmnn_model_predict(m, x, 0, &p), FMNN_OK);
        n_out = fmnn_tensor_size(p);
        out[t] = malloc(n_out * sizeof(float));
        memcpy(out[t], fmnn_tensor_const_data(p), n_out * sizeof(float));
        const float *w = fmnn_model_weights(m, &n_w);
        weights[t] = malloc(n_w * sizeof(float));
        memcpy(weights[t], w, n_w * sizeof(float));
        n_s = m->n_state;
        state[t] = malloc(n_s * sizeof(float));
        memcpy(state[t], m->state, n_s * sizeof(float));
        fmnn_tensor_free(x);
        fmnn_tensor_free(y);
        fmnn_tensor_free(p);
        fmnn_model_free(m);
    }
    fmnn_set_num_threads(1);
    ck_assert(memcmp(out[0], out[1], n_out * sizeof(float)) == 0);
    ck_assert(memcmp(weights[0], weights[1], n_w * sizeof(float)) == 0);
    ck_assert(memcmp(state[0], state[1], n_s * sizeof(float)) == 0);
    for (int t = 0; t < 2; t++) {
        free(out[t]);
        free(weights[t]);
        free(state[t]);
    }
}
END_TEST

/* Messages that say what is wrong in words a user reads at once. */
START_TEST(messages_name_the_fix)
{
    fmnn_model *m = NULL;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 3 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1), FMNN_OK);
    fmnn_tensor *x, *labels;
    ck_assert_int_eq(fmnn_tensor_new(&x, 2, (int[]){ 2, 3 }), FMNN_OK);
    ck_assert_int_eq(fmnn_tensor_new(&labels, 1, (int[]){ 2 }), FMNN_OK);
    float loss;
    /* Class indices given to the one-hot loss: point at the sparse one. */
    ck_assert_int_eq(fmnn_model_evaluate(m, x, labels, 0, &loss, NULL), FMNN_ESHAPE);
    ck_assert_msg(strstr(fmnn_last_error(), "y has 1 value per sample") &&
                      strstr(fmnn_last_error(), "sparse form of the loss"),
                  "%s", fmnn_last_error());
    fmnn_model_free(m);
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 3 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, NULL, 1), FMNN_OK);
    fmnn_tensor *onehot;
    ck_assert_int_eq(fmnn_tensor_new(&onehot, 2, (int[]){ 2, 4 }), FMNN_OK);
    ck_assert_int_eq(fmnn_model_evaluate(m, x, onehot, 0, &loss, NULL), FMNN_ESHAPE);
    ck_assert_msg(strstr(fmnn_last_error(), "one class index per sample, 1 per sample, but y has 4"), "%s",
                  fmnn_last_error());
    /* A save names the file asked for, never its temporary name. */
    ck_assert_int_eq(fmnn_model_save(m, "/nonexistent-dir/model.fmnn", 0), FMNN_EIO);
    ck_assert_msg(strstr(fmnn_last_error(), "/nonexistent-dir/model.fmnn:") && !strstr(fmnn_last_error(), ".tmp-"),
                  "%s", fmnn_last_error());
    fmnn_tensor_free(x);
    fmnn_tensor_free(labels);
    fmnn_tensor_free(onehot);
    fmnn_model_free(m);
}
END_TEST

/* batch_size 0 means Keras's 32 in fit too, as in evaluate and predict:
 * the same training as batch_size 32. */
START_TEST(fit_batch_size_zero_is_32)
{
    float *weights[2];
    size_t n = 0;
    for (int t = 0; t < 2; t++) {
        fmnn_model *m = frozen_model(0, 0);
        fmnn_tensor *x, *y;
        ck_assert_int_eq(fmnn_tensor_new(&x, 2, (int[]){ 70, 4 }), FMNN_OK);
        ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ 70, 2 }), FMNN_OK);
        for (int i = 0; i < 280; i++)
            fmnn_tensor_data(x)[i] = (float)((i * 13) % 17) / 8.0f - 1.0f;
        for (int i = 0; i < 70; i++)
            fmnn_tensor_data(y)[2 * i + i % 2] = 1.0f;
        fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
        o.batch_size = t ? 0 : 32;
        o.verbose = 0;
        ck_assert_int_eq(fmnn_model_fit(m, x, y, &o, NULL), FMNN_OK);
        ck_assert_int_eq(m->step, 3); /* 70 samples: batches of 32, 32 and 6 */
        const float *w = fmnn_model_weights(m, &n);
        weights[t] = malloc(n * sizeof *w);
        memcpy(weights[t], w, n * sizeof *w);
        fmnn_tensor_free(x);
        fmnn_tensor_free(y);
        fmnn_model_free(m);
    }
    ck_assert(memcmp(weights[0], weights[1], n * sizeof(float)) == 0);
    free(weights[0]);
    free(weights[1]);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("new layers");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, batch_normalization_training, 0, N_BN_CASES);
    tcase_add_loop_test(tc, batch_normalization_fused_activation, 0, 3);
    tcase_add_test(tc, batch_normalization_relu_fused_trains_the_same);
    tcase_add_loop_test(tc, batch_normalization_inference, 0, N_BN_CASES);
    tcase_add_test(tc, batch_normalization_overflow_is_refused);
    tcase_add_loop_test(tc, average_pooling2d_gradients, 0, N_POOL_CASES);
    tcase_add_test(tc, average_pooling2d_same_border_counts_real_pixels);
    tcase_add_test(tc, global_pooling_gradients);
    tcase_add_test(tc, global_max_pooling_shares_ties);
    tcase_add_test(tc, zero_padding2d_gradients);
    tcase_add_test(tc, reshape_shapes);
    tcase_add_test(tc, model_with_every_new_layer);
    tcase_add_loop_test(tc, activation_kinds, 0, N_NEW_KINDS);
    tcase_add_test(tc, leaky_relu_layer);
    tcase_add_loop_test(tc, loss_gradients, 0, N_LOSS_CASES);
    tcase_add_test(tc, frozen_layers_do_not_train);
    tcase_add_test(tc, set_layer_weights_checks);
    tcase_add_loop_test(tc, conv2d_dilation_and_no_bias, 0, N_DILATION_CASES);
    tcase_add_test(tc, dense_without_bias);
    tcase_add_test(tc, conv2d_dilation_with_strides_refused);
    tcase_add_loop_test(tc, initializers, 0, N_INIT_CASES);
    tcase_add_test(tc, state_checks_and_frozen_regularizer);
    tcase_add_test(tc, same_bits_for_any_thread_count);
    tcase_add_test(tc, messages_name_the_fix);
    tcase_add_test(tc, fit_batch_size_zero_is_32);
    tcase_add_loop_test(tc, activation_option_matches_layer, 0, N_NEW_KINDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    fmnn_set_num_threads(1);
    SRunner *sr = srunner_create(layers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
