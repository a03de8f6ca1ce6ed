/*
 * check_model.c - building a Sequential model and its Keras semantics
 * (lib/model.c, lib/layer.c, the layers): names, shapes, parameter
 * counts, the summary, glorot_uniform initialisation, inverted dropout,
 * compile-time shape checks, misuse of the API and the version.
 *
 * Every helper is static: the other test files without main() are linked into
 * every test program.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "testutil.h"
#include "model_impl.h" /* to drive a layer's ops directly */

/* ---- helpers ---------------------------------------------------------- */

static fmnn_model *new_model(int rank, const int *dims)
{
    fmnn_model *m = NOT_NULL;
    EXPECT_OK(fmnn_model_new(&m, rank, dims));
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_ne(m, NOT_NULL);
    return m;
}

static void add(fmnn_model *m, fmnn_layer *layer)
{
    ck_assert_ptr_nonnull(layer);
    EXPECT_OK(fmnn_model_add(m, layer));
}

/* The notebook's Base model, not yet compiled. */
static fmnn_model *base_model(void)
{
    fmnn_model *m = new_model(3, (int[]){ 28, 28, 1 });
    add(m, fmnn_conv2d(256, 3, 3, NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_maxpool2d(2, 2, NULL));
    add(m, fmnn_conv2d(128, 3, 3, NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_maxpool2d(2, 2, NULL));
    add(m, fmnn_conv2d(64, 3, 3, NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_conv2d(28, 3, 3, NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(64, NULL));
    add(m, fmnn_dense(10, NULL));
    add(m, fmnn_activation(FMNN_SOFTMAX));
    return m;
}

/* What Keras reports for the Base model, layer by layer. */
static const struct {
    const char *name, *type;
    int rank, dims[3];
    long params;
} base_layers[] = {
    { "conv2d", "Conv2D", 3, { 26, 26, 256 }, 2560 },
    { "activation", "Activation", 3, { 26, 26, 256 }, 0 },
    { "max_pooling2d", "MaxPooling2D", 3, { 13, 13, 256 }, 0 },
    { "conv2d_1", "Conv2D", 3, { 11, 11, 128 }, 295040 },
    { "activation_1", "Activation", 3, { 11, 11, 128 }, 0 },
    { "max_pooling2d_1", "MaxPooling2D", 3, { 5, 5, 128 }, 0 },
    { "conv2d_2", "Conv2D", 3, { 3, 3, 64 }, 73792 },
    { "activation_2", "Activation", 3, { 3, 3, 64 }, 0 },
    { "conv2d_3", "Conv2D", 3, { 1, 1, 28 }, 16156 },
    { "activation_3", "Activation", 3, { 1, 1, 28 }, 0 },
    { "flatten", "Flatten", 1, { 28 }, 0 },
    { "dense", "Dense", 1, { 64 }, 1856 },
    { "dense_1", "Dense", 1, { 10 }, 650 },
    { "activation_4", "Activation", 1, { 10 }, 0 },
};
#define BASE_LAYERS ((int)(sizeof base_layers / sizeof base_layers[0]))

/* "(None, 26, 26, 256)" */
static void keras_shape(int rank, const int *dims, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "(None");
    for (int i = 0; i < rank; i++)
        used += (size_t)snprintf(buf + used, size - used, ", %d", dims[i]);
    snprintf(buf + used, size - used, ")");
}

/* ---- the Base model --------------------------------------------------- */

START_TEST(test_base_param_count)
{
    fmnn_model *m = base_model();
    ck_assert_uint_eq(fmnn_model_param_count(m), 0); /* before compile */
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42));
    ck_assert_uint_eq(fmnn_model_param_count(m), 390054);
    size_t count = 0;
    ck_assert_ptr_nonnull(fmnn_model_weights(m, &count));
    ck_assert_uint_eq(count, 390054);
    long sum = 0;
    for (int i = 0; i < BASE_LAYERS; i++)
        sum += base_layers[i].params;
    ck_assert_int_eq(sum, 390054);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_base_shapes_names_types)
{
    fmnn_model *m = base_model();
    ck_assert_int_eq(fmnn_model_layer_count(m), BASE_LAYERS);
    /* Names are given when a layer is added, before compile. */
    for (int i = 0; i < BASE_LAYERS; i++) {
        const fmnn_layer *layer = fmnn_model_layer(m, i);
        ck_assert_ptr_nonnull(layer);
        ck_assert_str_eq(fmnn_layer_name(layer), base_layers[i].name);
        ck_assert_str_eq(fmnn_layer_type(layer), base_layers[i].type);
    }
    int dims[FMNN_MAX_RANK];
    EXPECT_ERROR(fmnn_model_output_shape(m, 0, dims), FMNN_ESTATE, NULL);
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1));
    for (int i = 0; i < BASE_LAYERS; i++) {
        for (int d = 0; d < FMNN_MAX_RANK; d++)
            dims[d] = -7;
        int rank = fmnn_model_output_shape(m, i, dims);
        ck_assert_msg(rank == base_layers[i].rank, "%s: rank %d, expected %d", base_layers[i].name, rank,
                      base_layers[i].rank);
        for (int d = 0; d < rank; d++)
            ck_assert_msg(dims[d] == base_layers[i].dims[d], "%s: dim %d is %d, expected %d",
                          base_layers[i].name, d, dims[d], base_layers[i].dims[d]);
        ck_assert_str_eq(fmnn_layer_name(fmnn_model_layer(m, i)), base_layers[i].name);
    }
    /* -1 is the model's output. */
    ck_assert_int_eq(fmnn_model_output_shape(m, -1, dims), 1);
    ck_assert_int_eq(dims[0], 10);
    EXPECT_ERROR(fmnn_model_output_shape(m, BASE_LAYERS, dims), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_output_shape(m, -2, dims), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(fmnn_model_layer(m, BASE_LAYERS));
    ck_assert_ptr_null(fmnn_model_layer(m, -1));
    fmnn_model_free(m);
}
END_TEST

/* Names count per type within a model: dense, dense_1, ... dropout_2. */
START_TEST(test_layer_names_per_type)
{
    fmnn_model *m = new_model(1, (int[]){ 8 });
    add(m, fmnn_dense(8, NULL));
    add(m, fmnn_dropout(0.1f));
    add(m, fmnn_dense(8, NULL));
    add(m, fmnn_dropout(0.1f));
    add(m, fmnn_activation(FMNN_TANH));
    add(m, fmnn_dropout(0.1f));
    add(m, fmnn_dense(2, NULL));
    const char *want[] = { "dense", "dropout", "dense_1", "dropout_1", "activation", "dropout_2", "dense_2" };
    const char *types[] = { "Dense", "Dropout", "Dense", "Dropout", "Activation", "Dropout", "Dense" };
    for (int i = 0; i < 7; i++) {
        ck_assert_str_eq(fmnn_layer_name(fmnn_model_layer(m, i)), want[i]);
        ck_assert_str_eq(fmnn_layer_type(fmnn_model_layer(m, i)), types[i]);
    }
    /* A layer not yet added has its base name. */
    fmnn_layer *lonely = fmnn_maxpool2d(2, 2, NULL);
    ck_assert_str_eq(fmnn_layer_name(lonely), "max_pooling2d");
    ck_assert_str_eq(fmnn_layer_type(lonely), "MaxPooling2D");
    fmnn_layer_free(lonely);
    fmnn_layer *flat = fmnn_flatten();
    ck_assert_str_eq(fmnn_layer_type(flat), "Flatten");
    fmnn_layer_free(flat);
    fmnn_model_free(m);
}
END_TEST

/*
 * A layer type of this test's own, with non-trainable state (3 values
 * per model, as moving statistics would be) and no weights.  It is not in
 * the registry, so the model can use it but not save it.
 */
static int held_infer(fmnn_layer *layer)
{
    layer->out = layer->in;
    layer->n_state = 3;
    return FMNN_OK;
}

static void held_forward(const fmnn_layer *layer, const fmnn_pass *pass, const float *in, float *out)
{
    memcpy(out, in, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *out);
}

static void held_backward(fmnn_layer *layer, const fmnn_pass *pass, const float *in, const float *out,
                          float *dout, float *din)
{
    (void)in;
    (void)out;
    if (din)
        memcpy(din, dout, fmnn__shape_size(&layer->in) * (size_t)pass->batch * sizeof *din);
}

static const struct fmnn_layer_ops held_ops = {
    .type = "Held",
    .base_name = "held",
    .size = sizeof(fmnn_layer),
    .infer = held_infer,
    .forward = held_forward,
    .backward = held_backward,
};

/* Non-trainable values are collated apart from the parameters, start at
 * 0, count in the summary's total and its non-trainable line, and are
 * refused by save when the type is not registered. */
START_TEST(test_non_trainable_state)
{
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(2, NULL));
    add(m, fmnn__layer_alloc(&held_ops));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1));
    ck_assert_uint_eq(fmnn_model_param_count(m), 10);
    ck_assert_uint_eq(m->n_state, 3);
    const fmnn_layer *held = fmnn_model_layer(m, 1);
    ck_assert_ptr_eq(held->state, m->state);
    for (int k = 0; k < 3; k++)
        ck_assert(held->state[k] == 0.0f);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    EXPECT_OK(fmnn_model_summary(m, f));
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(strstr(text, "Total params: 13 (52.00 B)") != NULL, "summary:\n%s", text);
    ck_assert_msg(strstr(text, "Trainable params: 10 (40.00 B)") != NULL, "summary:\n%s", text);
    ck_assert_msg(strstr(text, "Non-trainable params: 3 (12.00 B)") != NULL, "summary:\n%s", text);
    ck_assert_msg(strstr(text, " held (Held) ") != NULL, "summary:\n%s", text);
    free(text);
    EXPECT_ERROR(fmnn_model_save(m, "/nonexistent/held.fmnn", 0), FMNN_EINVAL, "not a registered layer type");
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_base_summary)
{
    fmnn_model *m = base_model();
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    EXPECT_OK(fmnn_model_summary(m, f));
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "Total params: 390,054") != NULL, "summary:\n%s", text);
    ck_assert_msg(strstr(text, "Trainable params: 390,054") != NULL, "summary:\n%s", text);
    ck_assert_msg(strstr(text, "Non-trainable params: 0") != NULL, "summary:\n%s", text);
    for (int i = 0; i < BASE_LAYERS; i++) {
        char label[80], shape[64], plain[32], commas[32];
        snprintf(label, sizeof label, " %s (%s) ", base_layers[i].name, base_layers[i].type);
        keras_shape(base_layers[i].rank, base_layers[i].dims, shape, sizeof shape);
        long p = base_layers[i].params;
        snprintf(plain, sizeof plain, " %ld", p);
        if (p >= 1000)
            snprintf(commas, sizeof commas, " %ld,%03ld", p / 1000, p % 1000);
        else
            snprintf(commas, sizeof commas, " %ld", p);
        /* The line of this layer: name (type), shape and params together. */
        const char *at = strstr(text, label);
        ck_assert_msg(at != NULL, "no line for \"%s\" in the summary:\n%s", label, text);
        const char *eol = strchr(at, '\n');
        size_t n = eol ? (size_t)(eol - at) : strlen(at);
        char line[256];
        ck_assert_uint_lt(n, sizeof line);
        memcpy(line, at, n);
        line[n] = '\0';
        ck_assert_msg(strstr(line, shape) != NULL, "line \"%s\" lacks %s", line, shape);
        const char *tail = line + strlen(line);
        while (tail > line && tail[-1] == ' ')
            tail--;
        size_t lp = strlen(plain), lc = strlen(commas), lt = (size_t)(tail - line);
        int ok = (lt >= lc && strncmp(tail - lc, commas, lc) == 0) ||
                 (lt >= lp && strncmp(tail - lp, plain, lp) == 0);
        ck_assert_msg(ok, "line \"%s\" does not end with %ld params", line, p);
    }
    free(text);
    fmnn_model_free(m);
}
END_TEST

/* ---- glorot_uniform --------------------------------------------------- */

START_TEST(test_glorot_uniform_limits)
{
    fmnn_model *m = base_model();
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1234));
    size_t count;
    const float *w = fmnn_model_weights(m, &count);
    ck_assert_ptr_nonnull(w);
    /* kernel size, bias size, fan_in = kh*kw*cin, fan_out = kh*kw*cout */
    const struct { const char *name; long kernel, bias, fan_in, fan_out; } k[] = {
        { "conv2d", 3 * 3 * 1 * 256, 256, 9 * 1, 9 * 256 },
        { "conv2d_1", 3 * 3 * 256 * 128, 128, 9 * 256, 9 * 128 },
        { "conv2d_2", 3 * 3 * 128 * 64, 64, 9 * 128, 9 * 64 },
        { "conv2d_3", 3 * 3 * 64 * 28, 28, 9 * 64, 9 * 28 },
        { "dense", 28 * 64, 64, 28, 64 },
        { "dense_1", 64 * 10, 10, 64, 10 },
    };
    size_t at = 0;
    for (size_t l = 0; l < sizeof k / sizeof k[0]; l++) {
        double limit = sqrt(6.0 / (double)(k[l].fan_in + k[l].fan_out));
        double sum = 0, sq = 0, max = 0;
        long n = k[l].kernel;
        for (long i = 0; i < n; i++) {
            double v = w[at + (size_t)i];
            ck_assert_msg(fabs(v) <= limit * (1 + 1e-6), "%s: kernel[%ld] = %g is beyond the limit %g",
                          k[l].name, i, v, limit);
            sum += v;
            sq += v * v;
            if (fabs(v) > max)
                max = fabs(v);
        }
        double mean = sum / n, var = sq / n - mean * mean;
        ck_assert_msg(max > 0.9 * limit, "%s: max |w| %g is far below the limit %g", k[l].name, max, limit);
        /* Six standard errors of U(-L, L): sd(mean) = L/sqrt(3n),
         * sd(var) = sqrt(4/45) L^2 / sqrt(n). */
        ck_assert_msg(fabs(mean) < 6 * limit / sqrt(3.0 * n), "%s: mean %g", k[l].name, mean);
        ck_assert_msg(fabs(var - limit * limit / 3) < 6 * 0.2982 * limit * limit / sqrt((double)n),
                      "%s: variance %g, expected %g", k[l].name, var, limit * limit / 3);
        at += (size_t)n;
        for (long i = 0; i < k[l].bias; i++)
            ck_assert_msg(w[at + (size_t)i] == 0.0f, "%s: bias[%ld] = %g", k[l].name, i,
                          (double)w[at + (size_t)i]);
        at += (size_t)k[l].bias;
    }
    ck_assert_uint_eq(at, count);
    fmnn_model_free(m);
}
END_TEST

static fmnn_model *small_model(uint64_t seed)
{
    fmnn_model *m = new_model(3, (int[]){ 8, 8, 2 });
    add(m, fmnn_conv2d(6, 3, 3, NULL));
    add(m, fmnn_flatten());
    add(m, fmnn_dropout(0.3f));
    add(m, fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed));
    return m;
}

START_TEST(test_seed_determines_weights)
{
    fmnn_model *a = small_model(7), *b = small_model(7), *c = small_model(8);
    size_t na, nb, nc;
    const float *wa = fmnn_model_weights(a, &na), *wb = fmnn_model_weights(b, &nb),
                *wc = fmnn_model_weights(c, &nc);
    ck_assert_uint_eq(na, 6 * 2 * 9 + 6 + 6 * 6 * 6 * 5 + 5);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(na, nc);
    ck_assert_msg(memcmp(wa, wb, na * sizeof *wa) == 0, "same seed, different weights");
    size_t differ = 0, kernels = 0;
    for (size_t i = 0; i < na; i++) {
        kernels += wa[i] != 0.0f;
        differ += wa[i] != wc[i];
    }
    ck_assert_msg(differ > kernels * 9 / 10, "seeds 7 and 8 share %zu of %zu kernel values",
                  kernels - differ, kernels);
    fmnn_model_free(a);
    fmnn_model_free(b);
    fmnn_model_free(c);
}
END_TEST

/* ---- dropout ---------------------------------------------------------- */

/* Runs one Dropout layer forward (and backward) on all-ones input. */
START_TEST(test_dropout_inverted)
{
    const int width = 1000, batch = 100;
    const size_t n = (size_t)width * batch;
    const float rate = 0.25f;
    fmnn_layer *layer = fmnn_dropout(rate);
    ck_assert_ptr_nonnull(layer);
    layer->in = (fmnn_shape){ 1, { width } };
    EXPECT_OK(layer->ops->infer(layer));
    ck_assert_int_eq(layer->out.rank, 1);
    ck_assert_int_eq(layer->out.dims[0], width);
    ck_assert_uint_eq(layer->n_kernel + layer->n_bias, 0);
    size_t saved = layer->ops->saved ? layer->ops->saved(layer, batch) : 0;
    void *mask = saved ? malloc(saved) : NULL;
    float *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out), *out2 = malloc(n * sizeof *out2);
    float *dout = malloc(n * sizeof *dout), *din = malloc(n * sizeof *din);
    ck_assert(in && out && out2 && dout && din);
    for (size_t i = 0; i < n; i++)
        in[i] = 1.0f;

    fmnn_pass pass = { .batch = batch, .training = 1, .workspace = NULL, .seed = 12345, .saved = mask };
    layer->ops->forward(layer, &pass, in, out);
    const float scale = 1.0f / (1.0f - rate);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(out[i] == 0.0f || out[i] == scale, "out[%zu] = %.9g, neither 0 nor %.9g", i,
                      (double)out[i], (double)scale);
        kept += out[i] != 0.0f;
    }
    double fraction = (double)kept / (double)n;
    ck_assert_msg(fabs(fraction - 0.75) < 0.03, "kept %.4f of the values, expected 0.75", fraction);
    /* The mean is preserved: that is what "inverted" means. */
    ck_assert_msg(fabs(fraction * scale - 1.0) < 0.04, "mean %.4f", fraction * scale);

    /* Backward routes the gradient through the same mask and scale. */
    for (size_t i = 0; i < n; i++)
        dout[i] = 2.0f;
    layer->ops->backward(layer, &pass, in, out, dout, din);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(din[i] == 2.0f * out[i], "din[%zu] = %g for out %g", i, (double)din[i],
                      (double)out[i]);

    /* Another step seed draws another mask. */
    pass.seed = 54321;
    layer->ops->forward(layer, &pass, in, out2);
    ck_assert_msg(memcmp(out, out2, n * sizeof *out) != 0, "two seeds, one mask");

    /* At inference it is the identity, exactly. */
    for (size_t i = 0; i < n; i++)
        in[i] = (float)i * 0.37f - 100.0f;
    pass.training = 0;
    layer->ops->forward(layer, &pass, in, out);
    ck_assert(memcmp(in, out, n * sizeof *in) == 0);

    free(in);
    free(out);
    free(out2);
    free(dout);
    free(din);
    free(mask);
    fmnn_layer_free(layer);
}
END_TEST

/* A model with Dropout predicts exactly what the same model without it does. */
START_TEST(test_dropout_identity_at_inference)
{
    fmnn_model *a = new_model(1, (int[]){ 20 }), *b = new_model(1, (int[]){ 20 });
    add(a, fmnn_dense(30, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(a, fmnn_dropout(0.5f));
    add(a, fmnn_dense(5, NULL));
    add(a, fmnn_dropout(0.25f));
    add(a, fmnn_activation(FMNN_SOFTMAX));
    add(b, fmnn_dense(30, &(fmnn_dense_options){ .activation = FMNN_RELU }));
    add(b, fmnn_dense(5, NULL));
    add(b, fmnn_activation(FMNN_SOFTMAX));
    EXPECT_OK(fmnn_model_compile(a, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 3));
    EXPECT_OK(fmnn_model_compile(b, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 99));
    size_t na, nb;
    float *wa = fmnn_model_weights(a, &na), *wb = fmnn_model_weights(b, &nb);
    ck_assert_uint_eq(na, nb);
    for (size_t i = 0; i < na; i++) /* non-zero biases too */
        wa[i] += 0.01f * (float)(i % 7);
    memcpy(wb, wa, na * sizeof *wa);

    fmnn_tensor *x, *pa, *pb;
    EXPECT_OK(fmnn_tensor_new(&x, 2, (int[]){ 13, 20 }));
    float *xd = fmnn_tensor_data(x);
    for (size_t i = 0; i < fmnn_tensor_size(x); i++)
        xd[i] = (float)sin((double)i * 1.7) * 2.0f;
    EXPECT_OK(fmnn_model_predict(a, x, 4, &pa));
    EXPECT_OK(fmnn_model_predict(b, x, 4, &pb));
    ck_assert_uint_eq(fmnn_tensor_size(pa), 13 * 5);
    ck_assert_uint_eq(fmnn_tensor_size(pb), 13 * 5);
    ck_assert_msg(memcmp(fmnn_tensor_data(pa), fmnn_tensor_data(pb), 13 * 5 * sizeof(float)) == 0,
                  "Dropout changes predictions");
    /* And evaluate agrees too. */
    fmnn_tensor *y;
    EXPECT_OK(fmnn_tensor_new(&y, 2, (int[]){ 13, 5 }));
    for (int i = 0; i < 13; i++)
        fmnn_tensor_data(y)[i * 5 + i % 5] = 1.0f;
    float la, lb, aa, ab;
    EXPECT_OK(fmnn_model_evaluate(a, x, y, 5, &la, &aa));
    EXPECT_OK(fmnn_model_evaluate(b, x, y, 5, &lb, &ab));
    ck_assert(la == lb);
    ck_assert(aa == ab);
    fmnn_tensor_free(pa);
    fmnn_tensor_free(pb);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* ---- compile-time checks ---------------------------------------------- */

/* Builds a model of these layers and expects compile to fail, naming `who`. */
static void compile_fails(int rank, const int *dims, fmnn_layer **layers, int n, int want1, int want2,
                          const char *who, int line)
{
    fmnn_model *m = new_model(rank, dims);
    for (int i = 0; i < n; i++)
        add(m, layers[i]);
    fmnn_clear_error();
    int err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1);
    ck_assert_msg(err == want1 || err == want2, "line %d: compile returned %d (%s), expected %d or %d",
                  line, err, fmnn_last_error(), want1, want2);
    ck_assert_msg(strstr(fmnn_last_error(), who) != NULL, "line %d: message \"%s\" does not name %s",
                  line, fmnn_last_error(), who);
    /* Still not compiled: nothing to train, no weights. */
    ck_assert_uint_eq(fmnn_model_param_count(m), 0);
    ck_assert_ptr_null(fmnn_model_weights(m, NULL));
    ck_assert_int_eq(fmnn_model_summary(m, stderr), FMNN_ESTATE);
    fmnn_model_free(m);
}

#define COMPILE_FAILS(rank, dims, want1, want2, who, ...)                           \
    do {                                                                          \
        fmnn_layer *layers_[] = { __VA_ARGS__ };                                  \
        compile_fails(rank, dims, layers_, (int)(sizeof layers_ / sizeof layers_[0]), want1, want2, \
                      who, __LINE__);                                             \
    } while (0)

START_TEST(test_compile_rejects_bad_shapes)
{
    const int img[] = { 28, 28, 1 }, small[] = { 6, 6, 3 }, flat[] = { 10 };
    /* A kernel larger than its input, on the second Conv2D. */
    COMPILE_FAILS(3, small, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d_1", fmnn_conv2d(4, 3, 3, NULL),
                  fmnn_conv2d(4, 5, 3, NULL));
    COMPILE_FAILS(3, small, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(4, 3, 7, NULL));
    /* Zero units, zero filters. */
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_EINVAL, "dense_1", fmnn_flatten(), fmnn_dense(4, NULL),
                  fmnn_dense(0, NULL));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_EINVAL, "conv2d_1", fmnn_conv2d(4, 3, 3, NULL),
                  fmnn_conv2d(0, 3, 3, NULL));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_EINVAL, "conv2d", fmnn_conv2d(-2, 3, 3, NULL));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_EINVAL, "conv2d", fmnn_conv2d(2, 0, 3, NULL));
    /* Dropout rates outside [0, 1). */
    COMPILE_FAILS(1, flat, FMNN_EINVAL, FMNN_EINVAL, "dropout_1", fmnn_dropout(0.5f), fmnn_dropout(1.0f),
                  fmnn_dense(2, NULL));
    COMPILE_FAILS(1, flat, FMNN_EINVAL, FMNN_EINVAL, "dropout", fmnn_dropout(-0.1f), fmnn_dense(2, NULL));
    COMPILE_FAILS(1, flat, FMNN_EINVAL, FMNN_EINVAL, "dropout", fmnn_dropout(NAN), fmnn_dense(2, NULL));
    /* A pool larger than its input. */
    COMPILE_FAILS(3, small, FMNN_ESHAPE, FMNN_ESHAPE, "max_pooling2d_1", fmnn_maxpool2d(2, 2, NULL),
                  fmnn_maxpool2d(4, 4, NULL));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_ESHAPE, "max_pooling2d", fmnn_conv2d(2, 3, 3, NULL),
                  fmnn_maxpool2d(2, 27, NULL));
    /* Conv2D and MaxPooling2D need (h, w, c). */
    COMPILE_FAILS(1, flat, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(4, 1, 1, NULL));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_ESHAPE, "max_pooling2d", fmnn_flatten(),
                  fmnn_maxpool2d(2, 2, NULL));
    COMPILE_FAILS(2, ((int[]){ 5, 5 }), FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(4, 3, 3, NULL));
    /* Negative strides. */
    COMPILE_FAILS(3, img, FMNN_EINVAL, FMNN_ESHAPE, "conv2d",
                  fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .stride_h = -1 }));
}
END_TEST

/*
 * Sizes near INT_MAX: each is refused with a status, before any index
 * arithmetic could overflow (check-asan runs this under UBSan).
 */
START_TEST(test_compile_rejects_absurd_sizes)
{
    const int img[] = { 28, 28, 1 }, small[] = { 6, 6, 3 }, wide[] = { 1024, 1024, 1 };
    const fmnn_conv2d_options same = { .padding = FMNN_PADDING_SAME };
    const fmnn_maxpool2d_options pool_same = { .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME };
    /* A kernel with more than INT_MAX weights per filter or per input channel. */
    COMPILE_FAILS(3, small, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(INT_MAX, 3, 3, NULL));
    COMPILE_FAILS(3, small, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(1, 65536, 65536, &same));
    /* Windows whose padded extent passes INT_MAX. */
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(1, 1, INT_MAX, &same));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_ESHAPE, "max_pooling2d", fmnn_maxpool2d(INT_MAX, 2, &pool_same));
    /* An output of 2^32 values per sample. */
    COMPILE_FAILS(3, wide, FMNN_ESHAPE, FMNN_ESHAPE, "conv2d", fmnn_conv2d(4096, 1, 1, NULL));
    /* Sizes past 2^24, the model file's limit. */
    COMPILE_FAILS(1, ((int[]){ 1 }), FMNN_ESHAPE, FMNN_ESHAPE, "1..16777216", fmnn_dense((1 << 24) + 1, NULL));
    COMPILE_FAILS(3, img, FMNN_ESHAPE, FMNN_ESHAPE, "1..16777216", fmnn_conv2d((1 << 24) + 1, 1, 1, NULL));
    COMPILE_FAILS(3, img, FMNN_EINVAL, FMNN_EINVAL, "1..16777216",
                  fmnn_maxpool2d(2, 2, &(fmnn_maxpool2d_options){ .stride_h = INT_MAX, .padding = FMNN_PADDING_SAME }));

    /* The largest stride with SAME padding is legal: one window per axis. */
    fmnn_model *m = new_model(3, img);
    add(m, fmnn_maxpool2d(2, 2, &(fmnn_maxpool2d_options){ .stride_h = 1 << 24, .stride_w = 1 << 24,
                                                             .padding = FMNN_PADDING_SAME }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1));
    int dims[4] = { 0 };
    ck_assert_int_eq(fmnn_model_output_shape(m, -1, dims), 3);
    ck_assert_int_eq(dims[0], 1);
    ck_assert_int_eq(dims[1], 1);
    fmnn_model_free(m);

    /* 2^30 values per sample: only one sample fits in a pass. */
    m = new_model(3, wide);
    add(m, fmnn_conv2d(1024, 1, 1, NULL));
    add(m, fmnn_maxpool2d(1024, 1024, NULL));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(2, NULL));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS, NULL, 1));
    fmnn_tensor *x = NULL, *y = NULL;
    EXPECT_OK(fmnn_tensor_new(&x, 4, (int[]){ 2, 1024, 1024, 1 }));
    EXPECT_OK(fmnn_tensor_new(&y, 2, (int[]){ 2, 2 }));
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 2;
    o.verbose = 0;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &o, NULL), FMNN_ESHAPE, "batch of 2");
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_compile_rejects_bad_loss_and_optimizer)
{
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(3, NULL));
    EXPECT_ERROR(fmnn_model_compile(m, (fmnn_loss)99, NULL, 1), FMNN_EINVAL, "loss");
    EXPECT_ERROR(fmnn_model_compile(m, (fmnn_loss)-1, NULL, 1), FMNN_EINVAL, "loss");
    fmnn_optimizer o = fmnn_adam();
    o.learning_rate = 0.0f;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, "learning_rate");
    o.learning_rate = -1e-3f;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o.learning_rate = NAN;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o.learning_rate = INFINITY;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o = fmnn_adam();
    o.adam.beta_1 = 1.0f;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o = fmnn_adam();
    o.adam.beta_2 = -0.5f;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o = fmnn_adam();
    o.adam.epsilon = -1.0f;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o = fmnn_sgd(0.0f, 0.0f);
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o = fmnn_sgd(0.1f, 1.0f);
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, "momentum");
    o = fmnn_sgd(0.1f, -0.1f);
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    o = fmnn_adam();
    o.kind = (fmnn_optimizer_kind)5;
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1), FMNN_EINVAL, NULL);
    /* None of that compiled it; a good call still can. */
    ck_assert_ptr_null(fmnn_model_weights(m, NULL));
    o = fmnn_sgd(0.1f, 0.9f);
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, &o, 1));
    ck_assert_uint_eq(fmnn_model_param_count(m), 15);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_optimizer_constructors)
{
    fmnn_optimizer a = fmnn_adam();
    ck_assert_int_eq(a.kind, FMNN_OPTIMIZER_ADAM);
    ck_assert(a.learning_rate == 1e-3f);
    ck_assert(a.adam.beta_1 == 0.9f);
    ck_assert(a.adam.beta_2 == 0.999f);
    ck_assert(a.adam.epsilon == 1e-7f);
    fmnn_optimizer s = fmnn_sgd(0.05f, 0.9f);
    ck_assert_int_eq(s.kind, FMNN_OPTIMIZER_SGD);
    ck_assert(s.learning_rate == 0.05f);
    ck_assert(s.sgd.momentum == 0.9f);
    ck_assert_int_eq(s.sgd.nesterov, 0);
    fmnn_regularizer r = fmnn_l2(0.5f);
    ck_assert(r.l1 == 0.0f && r.l2 == 0.5f);
    r = fmnn_l1(0.25f);
    ck_assert(r.l1 == 0.25f && r.l2 == 0.0f);
    r = fmnn_l1_l2(0.1f, 0.2f);
    ck_assert(r.l1 == 0.1f && r.l2 == 0.2f);
}
END_TEST

/* ---- misuse ----------------------------------------------------------- */

START_TEST(test_model_new_misuse)
{
    fmnn_model *m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(NULL, 1, (int[]){ 3 }), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_new(&m, 0, (int[]){ 3 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(m);
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(&m, 4, (int[]){ 3, 3, 3, 3 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(m);
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(&m, -1, (int[]){ 3 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(m);
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(&m, 3, (int[]){ 28, 0, 1 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(m);
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(&m, 2, (int[]){ -4, 2 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(m);
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(&m, 2, NULL), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(m);
    m = NOT_NULL; /* 2^32 values per sample */
    EXPECT_ERROR(fmnn_model_new(&m, 3, (int[]){ 65536, 65536, 1 }), FMNN_EINVAL, "values per sample");
    ck_assert_ptr_null(m);
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_new(&m, 3, (int[]){ 1 << 24, 1 << 24, 1 << 24 }), FMNN_EINVAL, "values per sample");
    ck_assert_ptr_null(m);
    m = NOT_NULL; /* past the model file's limit on a size */
    EXPECT_ERROR(fmnn_model_new(&m, 1, (int[]){ (1 << 24) + 1 }), FMNN_EINVAL, "1..16777216");
    ck_assert_ptr_null(m);
    fmnn_model_free(NULL);
}
END_TEST

START_TEST(test_add_misuse)
{
    /* NULL layer: the constructor ran out of memory. */
    fmnn_model *m = new_model(1, (int[]){ 4 });
    EXPECT_ERROR(fmnn_model_add(m, NULL), FMNN_ENOMEM, NULL);
    ck_assert_int_eq(fmnn_model_layer_count(m), 0);
    /* NULL model: the layer is freed (valgrind checks it). */
    EXPECT_ERROR(fmnn_model_add(NULL, fmnn_dense(3, NULL)), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_add(NULL, NULL), FMNN_EINVAL, NULL);
    /* The same layer twice is refused without freeing it. */
    fmnn_layer *d = fmnn_dense(3, NULL);
    add(m, d);
    EXPECT_ERROR(fmnn_model_add(m, d), FMNN_EINVAL, NULL);
    ck_assert_int_eq(fmnn_model_layer_count(m), 1);
    ck_assert_str_eq(fmnn_layer_name(fmnn_model_layer(m, 0)), "dense");
    /* Compile with no layers. */
    fmnn_model *empty = new_model(1, (int[]){ 4 });
    EXPECT_ERROR(fmnn_model_compile(empty, FMNN_LOSS_MSE, NULL, 1), FMNN_ESTATE, NULL);
    fmnn_model_free(empty);
    /* After compile: refused and freed. */
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1));
    EXPECT_ERROR(fmnn_model_add(m, fmnn_dense(2, NULL)), FMNN_ESTATE, NULL);
    EXPECT_ERROR(fmnn_model_add(m, fmnn_dropout(0.5f)), FMNN_ESTATE, NULL);
    ck_assert_int_eq(fmnn_model_layer_count(m), 1);
    ck_assert_uint_eq(fmnn_model_param_count(m), 15);
    /* Compile twice. */
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_ESTATE, NULL);
    ck_assert_uint_eq(fmnn_model_param_count(m), 15);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_before_compile)
{
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(3, NULL));
    fmnn_tensor *x, *y, *p = NOT_NULL;
    EXPECT_OK(fmnn_tensor_new(&x, 2, (int[]){ 5, 4 }));
    EXPECT_OK(fmnn_tensor_new(&y, 2, (int[]){ 5, 3 }));
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.verbose = 0;
    fmnn_history *h = NOT_NULL;
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    EXPECT_ERROR(fmnn_model_summary(m, f), FMNN_ESTATE, NULL);
    ck_assert_int_eq(ftell(f), 0);
    fclose(f);
    EXPECT_ERROR(fmnn_model_fit(m, x, y, &o, &h), FMNN_ESTATE, NULL);
    ck_assert_ptr_null(h);
    float loss = -1, acc = -1;
    EXPECT_ERROR(fmnn_model_evaluate(m, x, y, 0, &loss, &acc), FMNN_ESTATE, NULL);
    EXPECT_ERROR(fmnn_model_predict(m, x, 0, &p), FMNN_ESTATE, NULL);
    ck_assert_ptr_null(p);
    size_t count = 99;
    ck_assert_ptr_null(fmnn_model_weights(m, &count));
    ck_assert_uint_eq(count, 0);
    ck_assert_uint_eq(fmnn_model_param_count(m), 0);
    int dims[FMNN_MAX_RANK];
    EXPECT_ERROR(fmnn_model_output_shape(m, 0, dims), FMNN_ESTATE, NULL);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_null_arguments)
{
    fmnn_model *m = new_model(1, (int[]){ 4 });
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1));
    fmnn_tensor *x, *y, *p = NOT_NULL;
    EXPECT_OK(fmnn_tensor_new(&x, 2, (int[]){ 5, 4 }));
    EXPECT_OK(fmnn_tensor_new(&y, 2, (int[]){ 5, 3 }));
    for (int i = 0; i < 5; i++)
        fmnn_tensor_data(y)[i * 3] = 1.0f;
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.verbose = 0;
    fmnn_history *h = NOT_NULL;
    int dims[FMNN_MAX_RANK];
    float loss, acc;

    EXPECT_ERROR(fmnn_model_compile(NULL, FMNN_LOSS_MSE, NULL, 1), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_summary(NULL, stdout), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_summary(m, NULL), FMNN_EINVAL, NULL);
    ck_assert_int_eq(fmnn_model_layer_count(NULL), 0);
    ck_assert_ptr_null(fmnn_model_layer(NULL, 0));
    EXPECT_ERROR(fmnn_model_output_shape(NULL, 0, dims), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_output_shape(m, 0, NULL), FMNN_EINVAL, NULL);
    ck_assert_uint_eq(fmnn_model_param_count(NULL), 0);
    size_t count = 99;
    ck_assert_ptr_null(fmnn_model_weights(NULL, &count));
    ck_assert_uint_eq(count, 0);
    ck_assert_ptr_null(fmnn_model_weights(NULL, NULL));
    ck_assert_ptr_nonnull(fmnn_model_weights(m, NULL));

    EXPECT_ERROR(fmnn_model_fit(NULL, x, y, &o, &h), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(h);
    h = NOT_NULL;
    EXPECT_ERROR(fmnn_model_fit(m, NULL, y, &o, &h), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(h);
    h = NOT_NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, NULL, &o, &h), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(h);
    h = NOT_NULL;
    EXPECT_ERROR(fmnn_model_fit(m, x, y, NULL, &h), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(h);
    EXPECT_OK(fmnn_model_fit(m, x, y, &o, NULL)); /* history is optional */
    fmnn_history_free(NULL);

    EXPECT_ERROR(fmnn_model_evaluate(NULL, x, y, 0, &loss, &acc), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_evaluate(m, NULL, y, 0, &loss, &acc), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_evaluate(m, x, NULL, 0, &loss, &acc), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_model_evaluate(m, x, y, -1, &loss, &acc), FMNN_EINVAL, NULL);
    EXPECT_OK(fmnn_model_evaluate(m, x, y, 0, NULL, NULL)); /* both outputs optional */

    EXPECT_ERROR(fmnn_model_predict(NULL, x, 0, &p), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(p);
    p = NOT_NULL;
    EXPECT_ERROR(fmnn_model_predict(m, NULL, 0, &p), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(p);
    EXPECT_ERROR(fmnn_model_predict(m, x, 0, NULL), FMNN_EINVAL, NULL);
    p = NOT_NULL;
    EXPECT_ERROR(fmnn_model_predict(m, x, -3, &p), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(p);

    fmnn_layer_free(NULL);
    ck_assert_ptr_nonnull(fmnn_layer_name(NULL));
    ck_assert_ptr_nonnull(fmnn_layer_type(NULL));

    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

START_TEST(test_tensor_misuse)
{
    fmnn_tensor *t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_new(NULL, 1, (int[]){ 3 }), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_tensor_new(&t, 0, (int[]){ 3 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_new(&t, 5, (int[]){ 1, 1, 1, 1, 1 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_new(&t, -2, (int[]){ 3 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_new(&t, 2, (int[]){ 3, 0 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_new(&t, 2, (int[]){ -1, 3 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_new(&t, 2, NULL), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    float buf[6] = { 1, 2, 3, 4, 5, 6 };
    t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_wrap(&t, buf, 2, (int[]){ 0, 6 }), FMNN_EINVAL, NULL);
    ck_assert_ptr_null(t);
    /* Good calls, and the accessors. */
    EXPECT_OK(fmnn_tensor_new(&t, 4, (int[]){ 2, 3, 4, 5 }));
    ck_assert_int_eq(fmnn_tensor_rank(t), 4);
    ck_assert_int_eq(fmnn_tensor_dim(t, 3), 5);
    ck_assert_int_eq(fmnn_tensor_dim(t, 4), 0);
    ck_assert_int_eq(fmnn_tensor_dim(t, -1), 0);
    ck_assert_uint_eq(fmnn_tensor_size(t), 120);
    for (int i = 0; i < 120; i++)
        ck_assert(fmnn_tensor_const_data(t)[i] == 0.0f);
    fmnn_tensor_free(t);
    EXPECT_OK(fmnn_tensor_wrap(&t, buf, 2, (int[]){ 2, 3 }));
    ck_assert_ptr_eq(fmnn_tensor_data(t), buf);
    fmnn_tensor_free(t); /* frees only the wrapper (valgrind) */
    ck_assert(buf[5] == 6.0f);
    fmnn_tensor_free(NULL);
    ck_assert_int_eq(fmnn_tensor_rank(NULL), 0);
    ck_assert_int_eq(fmnn_tensor_dim(NULL, 0), 0);
    ck_assert_uint_eq(fmnn_tensor_size(NULL), 0);
    ck_assert_ptr_null(fmnn_tensor_data(NULL));
    ck_assert_ptr_null(fmnn_tensor_const_data(NULL));
}
END_TEST

/* Like every other constructor, a failed wrap clears *out. */
START_TEST(test_tensor_wrap_null_data)
{
    fmnn_tensor *t = NOT_NULL;
    EXPECT_ERROR(fmnn_tensor_wrap(&t, NULL, 1, (int[]){ 3 }), FMNN_EINVAL, NULL);
    ck_assert_msg(t == NULL, "fmnn_tensor_wrap(&t, NULL, ...) failed but left t = %p", (void *)t);
    EXPECT_ERROR(fmnn_tensor_wrap(NULL, NULL, 1, (int[]){ 3 }), FMNN_EINVAL, NULL);
}
END_TEST

START_TEST(test_threads_and_errors)
{
    int before = fmnn_get_num_threads();
    ck_assert_int_ge(before, 1);
    EXPECT_ERROR(fmnn_set_num_threads(0), FMNN_EINVAL, NULL);
    EXPECT_ERROR(fmnn_set_num_threads(-3), FMNN_EINVAL, NULL);
    ck_assert_int_eq(fmnn_get_num_threads(), before);
    EXPECT_OK(fmnn_set_num_threads(1));
    ck_assert_int_eq(fmnn_get_num_threads(), 1);
    EXPECT_OK(fmnn_set_num_threads(before));

    const int codes[] = { FMNN_OK, FMNN_EINVAL, FMNN_ENOMEM, FMNN_ESHAPE, FMNN_ESTATE,
                          FMNN_EIO, FMNN_EFORMAT, FMNN_ENUMERIC, FMNN_ECANCELED };
    const int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++) {
        const char *s = fmnn_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(s[0] != '\0', "fmnn_strerror(%d) is empty", codes[i]);
        for (int j = 0; j < i; j++)
            ck_assert_msg(strcmp(s, fmnn_strerror(codes[j])) != 0, "codes %d and %d share \"%s\"",
                          codes[i], codes[j], s);
    }
    /* Unknown codes still get a string, distinct from the known ones. */
    const int unknown[] = { 1, -9, -1000, 12345 };
    for (int i = 0; i < 4; i++) {
        const char *s = fmnn_strerror(unknown[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert(s[0] != '\0');
        for (int j = 0; j < n; j++)
            ck_assert(strcmp(s, fmnn_strerror(codes[j])) != 0);
    }
    /* The message is per call and can be cleared. */
    fmnn_set_num_threads(0);
    ck_assert(fmnn_last_error()[0] != '\0');
    fmnn_clear_error();
    ck_assert_str_eq(fmnn_last_error(), "");
}
END_TEST

START_TEST(test_version)
{
    ck_assert_str_eq(fmnn_version_string(), FMNN_VERSION_STRING);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", FMNN_VERSION_MAJOR, FMNN_VERSION_MINOR, FMNN_VERSION_PATCH);
    ck_assert_str_eq(FMNN_VERSION_STRING, expect);
    ck_assert_int_eq(FMNN_VERSION, FMNN_VERSION_MAJOR * 10000 + FMNN_VERSION_MINOR * 100 + FMNN_VERSION_PATCH);
    ck_assert_int_eq(FMNN_VERSION_NUMBER(0, 1, 0), 100);
}
END_TEST

/* ---- the default thread count -------------------------------------------- */

/* What fmnn_get_num_threads says in a new process of this program run
 * with the environment assignments env ("" for none) and, if not NULL,
 * under the command wrap (taskset -c 0); -1 when it cannot be run. */
static int default_threads_with(const char *env, const char *wrap)
{
    char self[PATH_MAX], cmd[PATH_MAX + 256];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "env -u FMNN_NUM_THREADS -u OMP_NUM_THREADS %s %s '%s' --default-threads 2>/dev/null",
             env, wrap ? wrap : "", self);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int count = -1;
    if (fscanf(p, "%d", &count) != 1)
        count = -1;
    return pclose(p) == 0 ? count : -1;
}

/* Without fmnn_set_num_threads: FMNN_NUM_THREADS, else OMP_NUM_THREADS
 * (its first value), else the CPUs the process may run on; a value that
 * is not a count from 1 to 4096 is passed over. */
START_TEST(test_default_thread_count)
{
    const int cpus = default_threads_with("", NULL);
    ck_assert_int_ge(cpus, 1);
    ck_assert_int_eq(default_threads_with("FMNN_NUM_THREADS=3 OMP_NUM_THREADS=5", NULL), 3);
    ck_assert_int_eq(default_threads_with("OMP_NUM_THREADS=5", NULL), 5);
    ck_assert_int_eq(default_threads_with("OMP_NUM_THREADS=4,2", NULL), 4);
    ck_assert_int_eq(default_threads_with("FMNN_NUM_THREADS=zero OMP_NUM_THREADS=6", NULL), 6);
    ck_assert_int_eq(default_threads_with("FMNN_NUM_THREADS=0", NULL), cpus);
    ck_assert_int_eq(default_threads_with("OMP_NUM_THREADS=5000", NULL), cpus);
    if (system("taskset -c 0 true >/dev/null 2>&1") == 0)
        ck_assert_int_eq(default_threads_with("", "taskset -c 0"), 1);
    else
        fprintf(stderr, "check_model: no taskset: the affinity case is not checked\n");
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("building");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_base_param_count);
    tcase_add_test(tc, test_default_thread_count);
    tcase_add_test(tc, test_base_shapes_names_types);
    tcase_add_test(tc, test_layer_names_per_type);
    tcase_add_test(tc, test_base_summary);
    tcase_add_test(tc, test_non_trainable_state);
    tcase_add_test(tc, test_glorot_uniform_limits);
    tcase_add_test(tc, test_seed_determines_weights);
    suite_add_tcase(s, tc);

    tc = tcase_create("dropout");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_dropout_inverted);
    tcase_add_test(tc, test_dropout_identity_at_inference);
    suite_add_tcase(s, tc);

    tc = tcase_create("compile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_compile_rejects_bad_shapes);
    tcase_add_test(tc, test_compile_rejects_absurd_sizes);
    tcase_add_test(tc, test_compile_rejects_bad_loss_and_optimizer);
    tcase_add_test(tc, test_optimizer_constructors);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_model_new_misuse);
    tcase_add_test(tc, test_add_misuse);
    tcase_add_test(tc, test_before_compile);
    tcase_add_test(tc, test_null_arguments);
    tcase_add_test(tc, test_tensor_misuse);
    tcase_add_test(tc, test_tensor_wrap_null_data);
    tcase_add_test(tc, test_threads_and_errors);
    tcase_add_test(tc, test_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--default-threads")) { /* for test_default_thread_count */
        printf("%d\n", fmnn_get_num_threads());
        return 0;
    }
    fmnn_set_num_threads(2);
    SRunner *sr = srunner_create(model_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
