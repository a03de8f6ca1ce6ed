/*
 * gen_corpus.c - writes the fuzzers' seed corpora: small valid IDX files
 * (images and labels, plain and gzip) and model files (with and without
 * the optimizer's state), small ONNX models written with the builder of
 * lib/onnx/onnx_model.h, plus a few broken ones.
 *
 *   make fuzz-corpus    (rewrites tests/fuzz/corpus_idx, corpus_model and
 *                        the built models of corpus_onnx)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fmnn.h"
#include "onnx/onnx_model.h"

static const char *root;

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, fmnn_last_error());
    exit(1);
}

static void write_raw(const char *dir, const char *name, const void *data, size_t n, int gz)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb9");
        if (!f || (n && gzwrite(f, data, (unsigned)n) != (int)n) || gzclose(f) != Z_OK)
            die(path);
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
            die(path);
    }
}

static size_t idx(unsigned char *buf, int rank, const unsigned *dims, const unsigned char *data, size_t n)
{
    size_t len = 0;
    buf[len++] = 0;
    buf[len++] = 0;
    buf[len++] = 8;
    buf[len++] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int s = 24; s >= 0; s -= 8)
            buf[len++] = (unsigned char)(dims[i] >> s);
    memcpy(buf + len, data, n);
    return len + n;
}

static void idx_corpus(void)
{
    unsigned char buf[256], pixels[3 * 4 * 4], labels[3] = { 2, 0, 1 };
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (unsigned char)(i * 17);
    size_t n = idx(buf, 3, (unsigned[]){ 3, 4, 4 }, pixels, sizeof pixels);
    write_raw("corpus_idx", "images", buf, n, 0);
    write_raw("corpus_idx", "images.gz", buf, n, 1);
    write_raw("corpus_idx", "broken-truncated", buf, n - 5, 0);
    write_raw("corpus_idx", "broken-truncated.gz", buf, n - 5, 1);
    buf[n] = 0x42;
    write_raw("corpus_idx", "broken-trailing", buf, n + 1, 0);
    n = idx(buf, 1, (unsigned[]){ 3 }, labels, 3);
    write_raw("corpus_idx", "labels", buf, n, 0);
    write_raw("corpus_idx", "labels.gz", buf, n, 1);
    n = idx(buf, 4, (unsigned[]){ 1, 2, 2, 2 }, pixels, 8);
    write_raw("corpus_idx", "rank4", buf, n, 0);
    buf[2] = 0x0D; /* float: unsupported */
    write_raw("corpus_idx", "broken-type", buf, n, 0);
    buf[0] = 0x1f;
    buf[1] = 0x8b; /* a gzip magic followed by garbage */
    write_raw("corpus_idx", "broken-gzip", buf, n, 0);
}

static void save(fmnn_model *m, const char *name, unsigned flags)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus_model/%s", root, name);
    if (fmnn_model_save(m, path, flags) != FMNN_OK)
        die(path);
}

/* Trains two steps on tiny data, so the optimizer's state is not zero. */
static void train(fmnn_model *m, int rank, const int *dims, int classes, int sparse)
{
    int xd[4] = { 4 }, n = 4;
    size_t per = 1;
    for (int d = 0; d < rank; d++) {
        xd[d + 1] = dims[d];
        per *= (size_t)dims[d];
    }
    fmnn_tensor *x, *y;
    if (fmnn_tensor_new(&x, rank + 1, xd) || fmnn_tensor_new(&y, sparse ? 1 : 2, (int[]){ n, classes }))
        die("tensor");
    for (size_t i = 0; i < per * (size_t)n; i++)
        fmnn_tensor_data(x)[i] = (float)((i * 7) % 13) / 13.0f;
    for (int i = 0; i < n; i++) {
        if (sparse)
            fmnn_tensor_data(y)[i] = (float)(i % classes);
        else
            fmnn_tensor_data(y)[i * classes + i % classes] = 1.0f;
    }
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 2;
    o.verbose = 0;
    if (fmnn_model_fit(m, x, y, &o, NULL))
        die("fit");
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}

/* Saves the model in the middle of its fit, with the fit's state. */
static int save_mid_fit(const fmnn_progress *p, void *data)
{
    if (p->event == FMNN_EVENT_BATCH_END && p->epoch == 1)
        save(p->model, data, FMNN_SAVE_FIT_STATE);
    return 0;
}

/* Files with a fit record: one saved mid-fit with callback states
 * (EarlyStopping's best weights among them), and one of the fit the
 * fuzzer itself runs (seed 7, two samples in one batch), which it can
 * resume. */
static void fit_state_corpus(void)
{
    fmnn_model *m;
    if (fmnn_model_new(&m, 1, (int[]){ 4 }) || fmnn_model_add(m, fmnn_dense(3, NULL)) ||
        fmnn_model_add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })) ||
        fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 4))
        die("fit state model");
    fmnn_tensor *x, *y;
    if (fmnn_tensor_new(&x, 2, (int[]){ 8, 4 }) || fmnn_tensor_new(&y, 2, (int[]){ 8, 2 }))
        die("tensor");
    for (int i = 0; i < 32; i++)
        fmnn_tensor_data(x)[i] = (float)((i * 5) % 9) / 9.0f;
    for (int i = 0; i < 8; i++)
        fmnn_tensor_data(y)[2 * i + i % 2] = 1.0f;
    fmnn_callback *cbs[2] = { NULL, NULL };
    fmnn_early_stopping_options es = FMNN_EARLY_STOPPING_INIT;
    es.restore_best_weights = 1;
    es.patience = 5;
    if (fmnn_early_stopping(&cbs[0], &es) || fmnn_reduce_lr_on_plateau(&cbs[1], NULL))
        die("callbacks");
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = 2;
    o.epochs = 3;
    o.validation_split = 0.25f;
    o.callbacks = cbs;
    o.n_callbacks = 2;
    o.callback = save_mid_fit;
    o.user_data = "fit-state-callbacks";
    if (fmnn_model_fit(m, x, y, &o, NULL))
        die("fit");
    fmnn_callback_free(cbs[0]);
    fmnn_callback_free(cbs[1]);

    fmnn_tensor_free(x);
    if (fmnn_tensor_new(&x, 2, (int[]){ 2, 4 }))
        die("tensor");
    fmnn_fit_options f = FMNN_FIT_OPTIONS_INIT;
    f.batch_size = 2;
    f.epochs = 2;
    f.seed = 7;
    f.callback = save_mid_fit;
    f.user_data = "fit-state-resumable";
    fmnn_tensor_free(y);
    if (fmnn_tensor_new(&y, 2, (int[]){ 2, 2 }))
        die("tensor");
    fmnn_tensor_data(y)[0] = fmnn_tensor_data(y)[3] = 1.0f;
    if (fmnn_model_fit(m, x, y, &f, NULL))
        die("fit");
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}

static void model_corpus(void)
{
    /* Dense only: input 4, sparse loss, SGD with Nesterov momentum. */
    fmnn_model *m;
    if (fmnn_model_new(&m, 1, (int[]){ 4 }) ||
        fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_RELU, .kernel_regularizer = fmnn_l1(0.01f) })) ||
        fmnn_model_add(m, fmnn_dense(2, NULL)) || fmnn_model_add(m, fmnn_activation(FMNN_SOFTMAX)))
        die("dense model");
    fmnn_optimizer sgd = fmnn_sgd(0.1f, 0.9f);
    sgd.sgd.nesterov = 1;
    if (fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, &sgd, 1))
        die("compile");
    save(m, "dense", 0);
    train(m, 1, (int[]){ 4 }, 2, 1);
    save(m, "dense-optimizer", FMNN_SAVE_OPTIMIZER);
    fmnn_model_free(m);

    /* The small CNN: every layer type, 8x8x1, Adam, categorical. */
    if (fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }) ||
        fmnn_model_add(m, fmnn_conv2d(2, 3, 3, &(fmnn_conv2d_options){ .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME, .activation = FMNN_LINEAR, .kernel_regularizer = fmnn_l2(0.001f) })) ||
        fmnn_model_add(m, fmnn_activation(FMNN_RELU)) ||
        fmnn_model_add(m, fmnn_maxpool2d(2, 2, &(fmnn_maxpool2d_options){ 2, 1, FMNN_PADDING_VALID })) ||
        fmnn_model_add(m, fmnn_dropout(0.25f)) || fmnn_model_add(m, fmnn_flatten()) ||
        fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX, .kernel_regularizer = fmnn_l1_l2(0.01f, 0.01f) })))
        die("conv model");
    if (fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 2))
        die("compile");
    save(m, "cnn", 0);
    train(m, 3, (int[]){ 8, 8, 1 }, 3, 0);
    save(m, "cnn-optimizer", FMNN_SAVE_OPTIMIZER);
    fmnn_model_free(m);

    /* The newer layer types: padding, BatchNormalization (its moving
     * statistics moved by training), both global poolings' inputs,
     * average pooling with "same" borders and reshapes. */
    fmnn_batch_normalization_options bn = FMNN_BATCH_NORMALIZATION_OPTIONS_INIT;
    bn.center = 0;
    if (fmnn_model_new(&m, 3, (int[]){ 6, 6, 1 }) || fmnn_model_add(m, fmnn_zero_padding2d(1, 0, 0, 1)) ||
        fmnn_model_add(m, fmnn_conv2d(2, 3, 3, NULL)) || fmnn_model_add(m, fmnn_batch_normalization(NULL)) ||
        fmnn_model_add(m, fmnn_average_pooling2d(2, 2, &(fmnn_pool2d_options){ 1, 1, FMNN_PADDING_SAME })) ||
        fmnn_model_add(m, fmnn_reshape(3, (int[]){ 5, -1, 2 })) ||
        fmnn_model_add(m, fmnn_global_max_pooling2d()) || fmnn_model_add(m, fmnn_batch_normalization(&bn)) ||
        fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SWISH, .kernel_regularizer = { 0, 0 } })) ||
        fmnn_model_add(m, fmnn_leaky_relu(0.3f)) || fmnn_model_add(m, fmnn_activation(FMNN_HARD_SIGMOID)) ||
        fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX, .kernel_regularizer = { 0, 0 } })))
        die("newer layers model");
    if (fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 4))
        die("compile");
    train(m, 3, (int[]){ 6, 6, 1 }, 3, 0);
    save(m, "newer-layers", 0);
    save(m, "newer-layers-optimizer", FMNN_SAVE_OPTIMIZER);
    fmnn_model_free(m);
    /* The preprocessing and augmentation layers, every fill mode, with
     * adapted Normalization statistics. */
    fmnn_tensor *ax;
    if (fmnn_tensor_new(&ax, 4, (int[]){ 3, 6, 6, 2 }))
        die("tensor");
    for (size_t i = 0; i < fmnn_tensor_size(ax); i++)
        fmnn_tensor_data(ax)[i] = (float)((i * 5) % 11);
    if (fmnn_model_new(&m, 3, (int[]){ 6, 6, 2 }) || fmnn_model_add(m, fmnn_rescaling(1.0f / 255.0f, -0.5f)) ||
        fmnn_model_add(m, fmnn_normalization(NULL)) ||
        fmnn_model_add(m, fmnn_random_flip(&(fmnn_random_flip_options){ FMNN_FLIP_VERTICAL, 3 })) ||
        fmnn_model_add(m, fmnn_random_translation(-0.2f, 0.2f, 0.0f, 0.3f, &(fmnn_image_fill_options){ FMNN_FILL_WRAP, FMNN_INTERPOLATION_NEAREST, 0.0f, 1 })) ||
        fmnn_model_add(m, fmnn_random_rotation(-0.1f, 0.1f, &(fmnn_image_fill_options){ FMNN_FILL_CONSTANT, FMNN_INTERPOLATION_BILINEAR, 0.5f, 0 })) ||
        fmnn_model_add(m, fmnn_random_zoom(-0.2f, 0.3f, &(fmnn_random_zoom_options){ 1, -0.1f, 0.1f, { FMNN_FILL_NEAREST, FMNN_INTERPOLATION_BILINEAR, 0.0f, 2 } })) ||
        fmnn_model_add(m, fmnn_random_contrast(0.2f, 0.4f, &(fmnn_random_contrast_options){ -2.0f, 2.0f, 0 })) ||
        fmnn_model_add(m, fmnn_normalization(&(fmnn_normalization_options){ (const float[]){ 0.1f }, (const float[]){ 2.0f }, 1, 1 })) ||
        fmnn_model_add(m, fmnn_flatten()) ||
        fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })))
        die("augmentation model");
    if (fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 6) || fmnn_model_adapt(m, 1, ax))
        die("compile");
    fmnn_tensor_free(ax);
    train(m, 3, (int[]){ 6, 6, 2 }, 3, 0);
    save(m, "augment", 0);
    save(m, "augment-optimizer", FMNN_SAVE_OPTIMIZER);
    fmnn_model_free(m);

    if (fmnn_model_new(&m, 3, (int[]){ 4, 4, 2 }) || fmnn_model_add(m, fmnn_global_average_pooling2d()) ||
        fmnn_model_add(m, fmnn_dense(2, NULL)))
        die("global average model");
    if (fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 5))
        die("compile");
    save(m, "global-average", 0);
    fmnn_model_free(m);

    /* The optimizers' settings and state: AdamW with amsgrad's third array,
     * a clip and a piecewise schedule; RMSprop with all three arrays and a
     * cosine warm-up; Adagrad's accumulators. */
    fmnn_optimizer opts[3] = { fmnn_adamw(), fmnn_rmsprop(), fmnn_adagrad() };
    opts[0].adam.amsgrad = 1;
    opts[0].clipnorm = 1.0f;
    opts[0].schedule = fmnn_piecewise_constant_decay(2, (int[]){ 1, 5 }, (float[]){ 0.01f, 0.005f, 0.001f });
    opts[1].rmsprop.centered = 1;
    opts[1].rmsprop.momentum = 0.5f;
    opts[1].global_clipnorm = 2.0f;
    opts[1].schedule = fmnn_cosine_decay(10, 0.1f, 2, 0.01f);
    opts[2].weight_decay = 0.01f;
    opts[2].clipvalue = 0.5f;
    opts[2].schedule = fmnn_exponential_decay(3, 0.5f, 1);
    static const char *const names[3] = { "adamw-optimizer", "rmsprop-optimizer", "adagrad-optimizer" };
    for (int k = 0; k < 3; k++) {
        if (fmnn_model_new(&m, 1, (int[]){ 4 }) || fmnn_model_add(m, fmnn_dense(3, NULL)) ||
            fmnn_model_add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })))
            die("optimizer model");
        if (fmnn_model_compile(m, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, &opts[k], 6))
            die("compile");
        train(m, 1, (int[]){ 4 }, 2, 1);
        save(m, names[k], FMNN_SAVE_OPTIMIZER);
        fmnn_model_free(m);
    }

    /* Rank-2 input, MSE, tanh and sigmoid. */
    if (fmnn_model_new(&m, 2, (int[]){ 2, 3 }) ||
        fmnn_model_add(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_TANH, .kernel_regularizer = { 0, 0 } })) ||
        fmnn_model_add(m, fmnn_activation(FMNN_SIGMOID)))
        die("mse model");
    if (fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 3))
        die("compile");
    save(m, "mse", 0);
    /* The same with every metric that suits it, after some training: a
     * training record with counts and metric records. */
    const fmnn_metric metrics[] = { { .kind = FMNN_METRIC_MAE }, { .kind = FMNN_METRIC_MSE },
                                    { .kind = FMNN_METRIC_PRECISION, .threshold = 0.25f },
                                    { .kind = FMNN_METRIC_AUC, .num_thresholds = 7 } };
    if (fmnn_model_set_metrics(m, 4, metrics))
        die("metrics");
    train(m, 2, (int[]){ 2, 3 }, 4, 0); /* y: the 4 output values per sample */
    save(m, "metrics", 0);
    fmnn_model_free(m);

    fit_state_corpus();

    /* Broken copies of the dense model. */
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus_model/dense", root);
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || n == 0)
        die(path);
    fclose(f);
    write_raw("corpus_model", "broken-truncated", buf, n / 2, 0);
    buf[n] = 0;
    write_raw("corpus_model", "broken-trailing", buf, n + 1, 0);
    buf[n - 1] ^= 0x10; /* a weight bit: the checksum no longer matches */
    write_raw("corpus_model", "broken-checksum", buf, n, 0);
    buf[1] = 'X';
    write_raw("corpus_model", "broken-magic", buf, n, 0);
}

static void write_onnx(fmnn__onnx_model *m, const char *name)
{
    unsigned char *bytes;
    size_t n;
    if (!m || fmnn__onnx_serialize(m, &bytes, &n) != FMNN_OK)
        die(name);
    write_raw("corpus_onnx", name, bytes, n, 0);
    if (strcmp(name, "conv") == 0)
        write_raw("corpus_onnx", "broken-truncated", bytes, n / 2, 0);
    fmnn__free(bytes);
    fmnn__onnx_free(m);
}

/* A Conv with its attributes, LeakyRelu, Reshape by an INT64 initializer;
 * and Flatten then Gemm. */
static void onnx_corpus(void)
{
    fmnn__onnx_model *m = fmnn__onnx_new(8, 13, "libfmnn", "gen_corpus", "conv");
    float w[2 * 9], b[2] = { 0.5f, -0.5f };
    for (int i = 0; i < 18; i++)
        w[i] = (float)i * 0.125f - 1.0f;
    fmnn__onnx_add_floats(m, "W", 4, (int64_t[]){ 2, 1, 3, 3 }, w);
    fmnn__onnx_add_floats(m, "B", 1, (int64_t[]){ 2 }, b);
    fmnn__onnx_add_int64s(m, "shape", 1, (int64_t[]){ 2 }, (int64_t[]){ -1, 72 });
    fmnn__onnx_node *conv = fmnn__onnx_add_node(m, "Conv", "conv", 3, (const char *[]){ "X", "W", "B" }, "c");
    fmnn__onnx_attr_ints(m, conv, "kernel_shape", 2, (int64_t[]){ 3, 3 });
    fmnn__onnx_attr_ints(m, conv, "strides", 2, (int64_t[]){ 1, 1 });
    fmnn__onnx_attr_int(m, conv, "group", 1);
    fmnn__onnx_node *relu = fmnn__onnx_add_node(m, "LeakyRelu", "relu", 1, (const char *[]){ "c" }, "r");
    fmnn__onnx_attr_float(m, relu, "alpha", 0.01f);
    fmnn__onnx_add_node(m, "Reshape", "reshape", 2, (const char *[]){ "r", "shape" }, "Y");
    fmnn__onnx_add_input(m, "X", 4, (int64_t[]){ -1, 1, 8, 8 }, "N");
    fmnn__onnx_add_output(m, "Y", 2, (int64_t[]){ -1, 72 }, "N");
    write_onnx(m, "conv");

    m = fmnn__onnx_new(8, 13, "libfmnn", "gen_corpus", "dense");
    float k[4 * 3] = { 0 }, bias[3] = { 1, 2, 3 };
    for (int i = 0; i < 4; i++)
        k[4 * (i % 3) + i] = 1.0f;
    fmnn__onnx_add_floats(m, "K", 2, (int64_t[]){ 3, 4 }, k);
    fmnn__onnx_add_floats(m, "bias", 1, (int64_t[]){ 3 }, bias);
    fmnn__onnx_node *flat = fmnn__onnx_add_node(m, "Flatten", "flatten", 1, (const char *[]){ "X" }, "f");
    fmnn__onnx_attr_int(m, flat, "axis", 1);
    fmnn__onnx_node *gemm = fmnn__onnx_add_node(m, "Gemm", "gemm", 3, (const char *[]){ "f", "K", "bias" }, "Y");
    fmnn__onnx_attr_float(m, gemm, "alpha", 1.0f);
    fmnn__onnx_attr_int(m, gemm, "transB", 1);
    fmnn__onnx_add_input(m, "X", 3, (int64_t[]){ -1, 2, 2 }, "batch");
    fmnn__onnx_add_output(m, "Y", 2, (int64_t[]){ -1, 3 }, "batch");
    write_onnx(m, "dense");
}

static void export_onnx(fmnn_model *m, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus_onnx/%s", root, name);
    if (fmnn_model_export_onnx(m, path) != FMNN_OK)
        die(path);
    fmnn_model_free(m);
}

/* Real exports of small compiled models (their initial weights: the
 * seeds fix them), so that the fuzzer starts from what the exporter
 * writes. */
static void onnx_export_corpus(void)
{
    fmnn_model *m;
    if (fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }) ||
        fmnn_model_add(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME, .activation = FMNN_RELU })) ||
        fmnn_model_add(m, fmnn_maxpool2d(2, 2, NULL)) || fmnn_model_add(m, fmnn_batch_normalization(NULL)) ||
        fmnn_model_add(m, fmnn_flatten()) ||
        fmnn_model_add(m, fmnn_dense(10, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX })) ||
        fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 11))
        die("export cnn model");
    export_onnx(m, "export-cnn.onnx");

    if (fmnn_model_new(&m, 3, (int[]){ 6, 6, 2 }) || fmnn_model_add(m, fmnn_rescaling(1.0f / 255.0f, -0.5f)) ||
        fmnn_model_add(m, fmnn_zero_padding2d(1, 0, 2, 1)) || fmnn_model_add(m, fmnn_conv2d(3, 3, 3, NULL)) ||
        fmnn_model_add(m, fmnn_leaky_relu(0.2f)) || fmnn_model_add(m, fmnn_global_average_pooling2d()) ||
        fmnn_model_add(m, fmnn_dense(8, &(fmnn_dense_options){ .activation = FMNN_GELU })) ||
        fmnn_model_add(m, fmnn_reshape(2, (int[]){ 2, 4 })) || fmnn_model_add(m, fmnn_flatten()) ||
        fmnn_model_add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SIGMOID })) ||
        fmnn_model_compile(m, FMNN_LOSS_BINARY_CROSSENTROPY, NULL, 12))
        die("export mixed model");
    export_onnx(m, "export-mixed.onnx");

    if (fmnn_model_new(&m, 1, (int[]){ 5 }) ||
        fmnn_model_add(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_TANH })) ||
        fmnn_model_add(m, fmnn_dense(2, NULL)) ||
        fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 13))
        die("export dense model");
    export_onnx(m, "export-dense.onnx");
}

int main(int argc, char **argv)
{
    root = argc > 1 ? argv[1] : "tests/fuzz";
    idx_corpus();
    model_corpus();
    onnx_corpus();
    onnx_export_corpus();
    return 0;
}
