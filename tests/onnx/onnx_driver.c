/*
 * onnx_driver.c - the libfmnn side of `make check-onnx` (tests/onnx/run.sh).
 *
 *   onnx_driver export DIR [TRAIN]
 *       Builds the five study models and the every-layer models, trains
 *       each for one epoch on the first TRAIN (2000) training images,
 *       exports DIR/NAME.onnx, and writes DIR/NAME.input.f32 (1000 test
 *       images, NCHW) and DIR/NAME.fmnn.f32 (fmnn_model_predict's output)
 *       and DIR/manifest for onnxruntime.  With ONNX_STUDY_MODELS set
 *       to a folder of the study's results, the trained KEY.fmnn models
 *       it holds are loaded instead of being trained here.
 *       Checks the round trip: the
 *       .onnx imported again (from the file and from memory) must
 *       predict bit-identically to the original.
 *   onnx_driver import DIR
 *       For each model of DIR/manifest (torch_models.py's), imports
 *       NAME.onnx, predicts on NAME.input.f32 transposed to NHWC and
 *       writes NAME.fmnn.f32 (compare.py compares it with torch's), then
 *       fine-tunes the imported model on NAME.labels.u8.
 *
 * Result rows go to stdout, tab-separated: model, check, two error
 * columns (empty here), PASS or FAIL, a note.  Diagnostics go to stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fmnn.h>

#include "support/models.h"

#define TEST_COUNT 1000
#define CLASSES 10

static const char *data_dir(void)
{
    const char *d = getenv("FMNN_DATA");
    return d ? d : "/usr/share/datasets/fashion-mnist";
}

static void row(const char *model, const char *check, int pass, const char *note)
{
    printf("%s\t%s\t\t\t%s\t%s\n", model, check, pass ? "PASS" : "FAIL", note);
    fflush(stdout);
}

/* ---- raw float files and layouts -------------------------------------- */

static int write_file(const char *path, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, bytes, f) == bytes;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "onnx_driver: cannot write %s\n", path);
    return ok;
}

/* The whole file, or NULL; *bytes receives its size. */
static void *read_file(const char *path, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc(size ? (size_t)size : 1)) && fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    if (f)
        fclose(f);
    if (!data)
        fprintf(stderr, "onnx_driver: cannot read %s\n", path);
    *bytes = data ? (size_t)size : 0;
    return data;
}

/* NHWC <-> NCHW of n samples (h, w, c); to_nchw says which way. */
static void transpose(const float *src, float *dst, int n, int h, int w, int c, int to_nchw)
{
    for (int s = 0; s < n; s++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < c; k++) {
                    size_t nhwc = (((size_t)s * h + y) * w + x) * c + k;
                    size_t nchw = (((size_t)s * c + k) * h + y) * w + x;
                    if (to_nchw)
                        dst[nchw] = src[nhwc];
                    else
                        dst[nhwc] = src[nchw];
                }
}

/* Writes a tensor of (N, ...) or (N, H, W, C) as ONNX lays it out: NCHW. */
static int write_onnx_layout(const char *path, fmnn_tensor *t)
{
    size_t count = fmnn_tensor_size(t);
    if (fmnn_tensor_rank(t) != 4)
        return write_file(path, fmnn_tensor_data(t), count * sizeof(float));
    float *nchw = malloc(count * sizeof(float));
    int ok = nchw != NULL;
    if (ok) {
        transpose(fmnn_tensor_data(t), nchw, fmnn_tensor_dim(t, 0), fmnn_tensor_dim(t, 1),
                  fmnn_tensor_dim(t, 2), fmnn_tensor_dim(t, 3), 1);
        ok = write_file(path, nchw, count * sizeof(float));
    }
    free(nchw);
    return ok;
}

static void shape_text(char *out, size_t size, const fmnn_tensor *t, int as_nchw)
{
    int r = fmnn_tensor_rank(t), order[4] = { 0, 3, 1, 2 };
    size_t used = 0;
    for (int i = 0; i < r && used < size; i++) {
        int d = (as_nchw && r == 4) ? order[i] : i;
        used += (size_t)snprintf(out + used, size - used, "%s%d", i ? "," : "", fmnn_tensor_dim(t, d));
    }
}

static int same_output(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *expected, char *why, size_t size)
{
    fmnn_tensor *y = NULL;
    int ok = 0;
    if (fmnn_model_predict(m, x, 0, &y) != FMNN_OK)
        snprintf(why, size, "predict: %s", fmnn_last_error());
    else if (fmnn_tensor_size(y) != fmnn_tensor_size(expected))
        snprintf(why, size, "%zu outputs, not %zu", fmnn_tensor_size(y), fmnn_tensor_size(expected));
    else if (memcmp(fmnn_tensor_const_data(y), fmnn_tensor_const_data(expected),
                    fmnn_tensor_size(y) * sizeof(float)) != 0)
        snprintf(why, size, "outputs differ");
    else
        ok = 1;
    fmnn_tensor_free(y);
    return ok;
}

/* ---- export: the models ------------------------------------------------ */

/* Three distinct channels from a one-channel batch: the image, its
 * transpose and 1 - image (as torch_models.py makes them). */
static fmnn_tensor *three_channels(const fmnn_tensor *x)
{
    int n = fmnn_tensor_dim(x, 0);
    fmnn_tensor *t;
    if (fmnn_tensor_new(&t, 4, (int[]){ n, 28, 28, 3 }) != FMNN_OK)
        return NULL;
    const float *src = fmnn_tensor_const_data(x);
    float *dst = fmnn_tensor_data(t);
    for (int s = 0; s < n; s++)
        for (int y = 0; y < 28; y++)
            for (int c = 0; c < 28; c++) {
                const float *img = src + (size_t)s * 784;
                float *px = dst + (((size_t)s * 28 + y) * 28 + c) * 3;
                px[0] = img[y * 28 + c];
                px[1] = img[c * 28 + y];
                px[2] = 1.0f - img[y * 28 + c];
            }
    return t;
}

static int add_all(fmnn_model *m, fmnn_layer **layers, int n)
{
    int err = FMNN_OK;
    for (int i = 0; i < n; i++)  /* add frees each layer, also after an error */
        if (fmnn_model_add(m, layers[i]) != FMNN_OK && !err)
            err = FMNN_EINVAL;
    return err;
}
/* ADD(m, layer, layer, ...): adds them all, counted from the list. */
#define ADD(m, ...) add_all(m, (fmnn_layer *[]){ __VA_ARGS__ }, \
                            (int)(sizeof((fmnn_layer *[]){ __VA_ARGS__ }) / sizeof(fmnn_layer *)))

/* Three channels in: the augmentation layers (which must vanish),
 * preprocessing, every kind of convolution padding, stride and dilation,
 * both poolings, BatchNormalization after a Conv2D and after a Dense. */
static int build_conv(fmnn_model *m)
{
    const fmnn_conv2d_options same_s2 = { .stride_h = 2, .stride_w = 2, .padding = FMNN_PADDING_SAME,
                                          .no_bias = 1, .activation = FMNN_SWISH };
    const fmnn_conv2d_options dilated = { .dilation_h = 2, .dilation_w = 2, .activation = FMNN_GELU };
    const fmnn_pool2d_options avg_same = { .padding = FMNN_PADDING_SAME };
    return ADD(m, fmnn_random_flip(NULL), fmnn_random_translation(-0.1f, 0.1f, -0.1f, 0.1f, NULL),
               fmnn_random_rotation(-0.05f, 0.05f, NULL), fmnn_random_zoom(-0.1f, 0.1f, NULL),
               fmnn_random_contrast(0.2f, 0.2f, &(fmnn_random_contrast_options){ 0.0f, 1.0f, 0 }),
               fmnn_rescaling(2.0f, -1.0f), fmnn_normalization(NULL),
               fmnn_zero_padding2d(1, 1, 0, 1),                          /* 30x29 */
               fmnn_conv2d(8, 3, 3, &(fmnn_conv2d_options){ .activation = FMNN_RELU }), /* 28x27 */
               fmnn_batch_normalization(NULL),
               fmnn_conv2d(8, 3, 3, &same_s2),                           /* 14x14, pads (0,1) (1,1) */
               fmnn_conv2d(8, 3, 3, &dilated),                           /* 10x10 */
               fmnn_maxpool2d(2, 2, NULL),                               /* 5x5 */
               fmnn_average_pooling2d(2, 2, &avg_same),                  /* 3x3, the odd pixel after */
               fmnn_dropout(0.3f), fmnn_flatten(), fmnn_dense(32, NULL),
               fmnn_batch_normalization(NULL), fmnn_activation(FMNN_RELU),
               fmnn_dense(CLASSES, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
}

/* Strides that differ by axis, a LeakyReLU layer, "same" max pooling and
 * GlobalAveragePooling2D. */
static int build_global_avg(fmnn_model *m)
{
    const fmnn_conv2d_options s21 = { .stride_h = 2, .stride_w = 1, .padding = FMNN_PADDING_SAME,
                                      .activation = FMNN_ELU };
    const fmnn_maxpool2d_options max_same = { .stride_h = 2, .stride_w = 2, .padding = FMNN_PADDING_SAME };
    return ADD(m, fmnn_conv2d(8, 5, 5, &(fmnn_conv2d_options){ .stride_h = 2, .stride_w = 2,
                                                                .activation = FMNN_TANH }), /* 12x12 */
               fmnn_leaky_relu(0.1f), fmnn_conv2d(6, 3, 3, &s21),           /* 6x12 */
               fmnn_maxpool2d(3, 3, &max_same),                             /* 3x6 */
               fmnn_global_average_pooling2d(),
               fmnn_dense(CLASSES, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
}

/* Reshape of a Dense's output to an image, and GlobalMaxPooling2D. */
static int build_global_max(fmnn_model *m)
{
    return ADD(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .stride_h = 2, .stride_w = 2 }),
               fmnn_flatten(), fmnn_dense(48, NULL), fmnn_reshape(3, (int[]){ 4, 4, 3 }),
               fmnn_conv2d(6, 3, 3, &(fmnn_conv2d_options){ .padding = FMNN_PADDING_SAME,
                                                            .activation = FMNN_SELU }),
               fmnn_batch_normalization(NULL), fmnn_global_max_pooling2d(),
               fmnn_dense(CLASSES, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
}

static const fmnn_activation_kind every_activation[] = {
    FMNN_LINEAR, FMNN_RELU, FMNN_SOFTMAX, FMNN_SIGMOID, FMNN_TANH, FMNN_LEAKY_RELU, FMNN_ELU,
    FMNN_SELU, FMNN_GELU, FMNN_GELU_TANH, FMNN_SOFTPLUS, FMNN_SWISH, FMNN_HARD_SIGMOID,
};
#define N_ACTIVATIONS (int)(sizeof every_activation / sizeof every_activation[0])

/* A Dense of each activation, then an Activation layer of each. */
static int build_activations(fmnn_model *m)
{
    int err = fmnn_model_add(m, fmnn_flatten());
    for (int i = 0; i < N_ACTIVATIONS && !err; i++)
        err = fmnn_model_add(m, fmnn_dense(24, &(fmnn_dense_options){ .activation = every_activation[i] }));
    for (int i = 0; i < N_ACTIVATIONS && !err; i++)
        err = ADD(m, fmnn_dense(24, NULL), fmnn_activation(every_activation[i]));
    return err ? err : fmnn_model_add(m, fmnn_dense(CLASSES, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
}

typedef struct every_layer_model {
    const char *name;
    int channels;
    int (*build)(fmnn_model *m);
} every_layer_model;

static const every_layer_model every_layer_models[] = {
    { "layers_conv", 3, build_conv },
    { "layers_global_avg", 1, build_global_avg },
    { "layers_global_max", 1, build_global_max },
    { "layers_activations", 1, build_activations },
};
#define N_EVERY_LAYER (int)(sizeof every_layer_models / sizeof every_layer_models[0])

/* Compiles, adapts every Normalization layer and trains one epoch on x, y
 * (BatchNormalization's moving statistics move away from 0 and 1). */
static int compile_and_train(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y)
{
    int err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42);
    for (int i = 0; i < fmnn_model_layer_count(m) && !err; i++)
        if (strcmp(fmnn_layer_type(fmnn_model_layer(m, i)), "Normalization") == 0)
            err = fmnn_model_adapt(m, i, x);
    fmnn_fit_options fit = FMNN_FIT_OPTIONS_INIT;
    fit.batch_size = 64;
    fit.seed = 7;
    return err ? err : fmnn_model_fit(m, x, y, &fit, NULL);
}

/* Exports one trained model, writes its input and output, checks the round trip. */
static void export_one(const char *dir, const char *name, fmnn_model *m, fmnn_tensor *x, FILE *manifest)
{
    char path[4096], why[512], in_shape[64], out_shape[64];
    fmnn_tensor *y = NULL;
    if (fmnn_model_predict(m, x, 0, &y) != FMNN_OK) {
        snprintf(why, sizeof why, "predict: %s", fmnn_last_error());
        row(name, "export", 0, why);
        return;
    }
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    if (fmnn_model_export_onnx(m, path) != FMNN_OK) {
        snprintf(why, sizeof why, "fmnn_model_export_onnx: %s", fmnn_last_error());
        row(name, "export", 0, why);
        fmnn_tensor_free(y);
        return;
    }
    shape_text(in_shape, sizeof in_shape, x, 1);
    shape_text(out_shape, sizeof out_shape, y, 1);
    fprintf(manifest, "%s %s %s\n", name, in_shape, out_shape);
    size_t bytes;
    void *onnx = read_file(path, &bytes);
    snprintf(path, sizeof path, "%s/%s.input.f32", dir, name);
    int wrote = write_onnx_layout(path, x);
    snprintf(path, sizeof path, "%s/%s.fmnn.f32", dir, name);
    wrote = wrote && write_onnx_layout(path, y);
    row(name, "export", wrote && onnx, wrote && onnx ? "" : "cannot write or read its files");

    fmnn_model *file = NULL, *memory = NULL;
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    int ok = 1;
    why[0] = 0;
    if (fmnn_model_import_onnx(&file, path, NULL) != FMNN_OK)
        ok = 0, snprintf(why, sizeof why, "fmnn_model_import_onnx: %s", fmnn_last_error());
    else if (!same_output(file, x, y, why, sizeof why))
        ok = 0;
    if (ok && onnx && fmnn_model_import_onnx_memory(&memory, onnx, bytes, NULL) != FMNN_OK)
        ok = 0, snprintf(why, sizeof why, "fmnn_model_import_onnx_memory: %s", fmnn_last_error());
    else if (ok && onnx && !same_output(memory, x, y, why, sizeof why))
        ok = 0;
    if (ok && !onnx)
        ok = 0, snprintf(why, sizeof why, "cannot read the exported file");
    row(name, "roundtrip", ok, ok ? "bit-identical, from the file and from memory" : why);
    fmnn_model_free(file);
    fmnn_model_free(memory);
    free(onnx);
    fmnn_tensor_free(y);
}

/* The contract's error paths: FMNN_ESTATE, FMNN_EIO, FMNN_EFORMAT, *out NULL. */
static void check_errors(const char *dir)
{
    static int sentinel;  /* a non-NULL *out, which a failed import must set to NULL */
    char path[4096];
    fmnn_model *m = NULL, *out = (fmnn_model *)(void *)&sentinel;
    int ok = fmnn_model_new(&m, 3, (int[]){ 28, 28, 1 }) == FMNN_OK &&
             fmnn_model_add(m, fmnn_flatten()) == FMNN_OK;
    snprintf(path, sizeof path, "%s/uncompiled.onnx", dir);
    ok = ok && fmnn_model_export_onnx(m, path) == FMNN_ESTATE;
    fmnn_model_free(m);
    snprintf(path, sizeof path, "%s/no-such-file.onnx", dir);
    ok = ok && fmnn_model_import_onnx(&out, path, NULL) == FMNN_EIO && out == NULL;
    out = (fmnn_model *)(void *)&sentinel;
    static const char junk[] = "not an ONNX model";
    ok = ok && fmnn_model_import_onnx_memory(&out, junk, sizeof junk, NULL) == FMNN_EFORMAT && out == NULL;
    row("(errors)", "error statuses", ok, "export before compile, a missing file, a file of junk");
}

static int run_export(const char *dir, int train_count)
{
    char images[4096], labels[4096];
    fmnn_dataset *train = NULL, *test = NULL;
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", data_dir());
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", data_dir());
    if (fmnn_dataset_load(&train, images, labels, CLASSES, train_count) != FMNN_OK) {
        fprintf(stderr, "onnx_driver: %s\n", fmnn_last_error());
        return 1;
    }
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", data_dir());
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", data_dir());
    if (fmnn_dataset_load(&test, images, labels, CLASSES, TEST_COUNT) != FMNN_OK) {
        fprintf(stderr, "onnx_driver: %s\n", fmnn_last_error());
        fmnn_dataset_free(train);
        return 1;
    }
    fmnn_tensor *train3 = three_channels(train->images), *test3 = three_channels(test->images);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest", dir);
    FILE *manifest = fopen(path, "w");
    if (!manifest || !train3 || !test3) {
        fprintf(stderr, "onnx_driver: cannot write %s or out of memory\n", path);
        return 1;
    }
    for (int i = 0; i < STUDY_MODEL_COUNT + N_EVERY_LAYER; i++) {
        const every_layer_model *e = i < STUDY_MODEL_COUNT ? NULL : &every_layer_models[i - STUDY_MODEL_COUNT];
        const char *name = e ? e->name : study_models[i].key;
        fmnn_tensor *x = e && e->channels == 3 ? train3 : train->images;
        fmnn_model *m = NULL;
        int err;
        /* The study's own trained models, when a folder of them is given. */
        const char *trained = getenv("ONNX_STUDY_MODELS");
        if (!e && trained && *trained)
            snprintf(path, sizeof path, "%s/%s.fmnn", trained, name);
        if (!e && trained && *trained && access(path, R_OK) == 0) {
            err = fmnn_model_load(&m, path);
        } else {
            err = e ? fmnn_model_new(&m, 3, (int[]){ 28, 28, e->channels }) : study_build(&m, &study_models[i]);
            if (!err && e)
                err = e->build(m);
            if (!err)
                err = compile_and_train(m, x, train->labels);
        }
        if (err) {
            char why[512];
            snprintf(why, sizeof why, "build or train: %s", fmnn_last_error());
            row(name, "export", 0, why);
        } else {
            fprintf(stderr, "onnx_driver: %s trained\n", name);
            export_one(dir, name, m, e && e->channels == 3 ? test3 : test->images, manifest);
        }
        fmnn_model_free(m);
    }
    check_errors(dir);
    fclose(manifest);
    fmnn_tensor_free(train3);
    fmnn_tensor_free(test3);
    fmnn_dataset_free(train);
    fmnn_dataset_free(test);
    return 0;
}

/* ---- import: torch's models -------------------------------------------- */

/* "a,b,c,d" into dims; the rank, or 0. */
static int parse_shape(const char *text, int dims[4])
{
    int r = 0, used;
    while (r < 4 && sscanf(text, "%d%n", &dims[r], &used) == 1 && dims[r] > 0) {
        r++;
        text += used;
        if (*text != ',')
            return *text ? 0 : r;
        text++;
    }
    return 0;
}

/* Fine-tunes an imported model for three epochs on its input and labels. */
static void fine_tune(const char *dir, const char *name, fmnn_model *m, fmnn_tensor *x)
{
    char path[4096], note[512];
    size_t n_labels, n_weights;
    int n = fmnn_tensor_dim(x, 0), dims[FMNN_MAX_RANK];
    snprintf(path, sizeof path, "%s/%s.labels.u8", dir, name);
    unsigned char *labels = read_file(path, &n_labels);
    float *weights = fmnn_model_weights(m, &n_weights), *before = NULL;
    fmnn_tensor *y = NULL;
    fmnn_history *history = NULL;
    int ok = labels && n_labels == (size_t)n && weights &&
             fmnn_model_output_shape(m, -1, dims) == 1 && dims[0] == CLASSES &&
             (before = malloc(n_weights * sizeof(float))) &&
             fmnn_tensor_new(&y, 2, (int[]){ n, CLASSES }) == FMNN_OK;
    if (!ok) {
        row(name, "fine-tune", 0, "no labels, no weights or not 10 outputs");
    } else {
        memcpy(before, weights, n_weights * sizeof(float));
        float *onehot = fmnn_tensor_data(y);
        memset(onehot, 0, (size_t)n * CLASSES * sizeof(float));
        for (int i = 0; i < n; i++)
            onehot[i * CLASSES + labels[i] % CLASSES] = 1.0f;
        fmnn_fit_options fit = FMNN_FIT_OPTIONS_INIT;
        fit.epochs = 3;
        fit.seed = 3;
        int err = fmnn_model_fit(m, x, y, &fit, &history);
        int changed = memcmp(before, fmnn_model_weights(m, &n_weights), n_weights * sizeof(float)) != 0;
        if (err != FMNN_OK)
            snprintf(note, sizeof note, "fmnn_model_fit: %s", fmnn_last_error());
        else
            snprintf(note, sizeof note, "loss %.4g, %.4g, %.4g (%s); weights %s", (double)history->loss[0],
                     (double)history->loss[1], (double)history->loss[2],
                     history->loss[2] < history->loss[0] ? "decreases" : "does not decrease",
                     changed ? "changed" : "unchanged");
        row(name, "fine-tune", err == FMNN_OK && changed, note);
    }
    fmnn_history_free(history);
    fmnn_tensor_free(y);
    free(before);
    free(labels);
}

/* Predicts on NCHW input through x, its NHWC copy. */
static int predict_nchw(fmnn_model *m, const float *nchw, fmnn_tensor *x, fmnn_tensor **y)
{
    transpose(nchw, fmnn_tensor_data(x), fmnn_tensor_dim(x, 0), fmnn_tensor_dim(x, 1),
              fmnn_tensor_dim(x, 2), fmnn_tensor_dim(x, 3), 0);
    return fmnn_model_predict(m, x, 0, y) == FMNN_OK;
}

static void import_one(const char *dir, const char *name, const int in[4], const int out[4], int out_rank)
{
    char path[4096], why[512];
    size_t bytes, count = (size_t)in[0] * in[1] * in[2] * in[3];
    fmnn_model *m = NULL;
    fmnn_tensor *x = NULL, *y = NULL;
    snprintf(path, sizeof path, "%s/%s.input.f32", dir, name);
    float *nchw = read_file(path, &bytes);
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    int dims[FMNN_MAX_RANK], ok = 0;
    if (!nchw || bytes != count * sizeof(float) ||
        fmnn_tensor_new(&x, 4, (int[]){ in[0], in[2], in[3], in[1] }) != FMNN_OK)
        snprintf(why, sizeof why, "cannot read its input");
    else if (fmnn_model_import_onnx(&m, path, NULL) != FMNN_OK)
        snprintf(why, sizeof why, "fmnn_model_import_onnx: %s", fmnn_last_error());
    else if (fmnn_model_input_shape(m, dims) != 3 || dims[0] != in[2] || dims[1] != in[3] || dims[2] != in[1])
        snprintf(why, sizeof why, "input shape is not (H, W, C) = (%d, %d, %d)", in[2], in[3], in[1]);
    else if (!predict_nchw(m, nchw, x, &y))
        snprintf(why, sizeof why, "predict: %s", fmnn_last_error());
    else if (fmnn_tensor_rank(y) != out_rank || fmnn_tensor_dim(y, 0) != out[0])
        snprintf(why, sizeof why, "output of rank %d", fmnn_tensor_rank(y));
    else {
        snprintf(path, sizeof path, "%s/%s.fmnn.f32", dir, name);
        ok = write_onnx_layout(path, y);
        snprintf(why, sizeof why, ok ? "" : "cannot write its output");
    }
    row(name, "import", ok, why);
    if (ok)
        fine_tune(dir, name, m, x);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
    free(nchw);
}

static int run_import(const char *dir)
{
    char path[4096], line[512], name[256], in_text[128], out_text[128];
    snprintf(path, sizeof path, "%s/manifest", dir);
    FILE *manifest = fopen(path, "r");
    if (!manifest) {
        fprintf(stderr, "onnx_driver: cannot read %s\n", path);
        return 1;
    }
    while (fgets(line, sizeof line, manifest)) {
        int in[4], out[4], out_rank;
        if (sscanf(line, "%255s %127s %127s", name, in_text, out_text) != 3 || parse_shape(in_text, in) != 4 ||
            (out_rank = parse_shape(out_text, out)) == 0) {
            fprintf(stderr, "onnx_driver: %s: bad line: %s", path, line);
            fclose(manifest);
            return 1;
        }
        import_one(dir, name, in, out, out_rank);
    }
    fclose(manifest);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "export") == 0)
        return run_export(argv[2], argc > 3 ? atoi(argv[3]) : 2000);
    if (argc == 3 && strcmp(argv[1], "import") == 0)
        return run_import(argv[2]);
    fprintf(stderr, "usage: onnx_driver export DIR [TRAIN] | import DIR\n");
    return 2;
}
