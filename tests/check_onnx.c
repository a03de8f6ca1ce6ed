/*
 * check_onnx.c - fmnn_model_export_onnx and fmnn_model_import_onnx
 * (lib/onnx/export.c, import.c, fold.c): small models of every layer
 * the export writes, exported, imported back and predicting the same
 * bits; the exported graph's interface; and graphs the import must
 * refuse, each with the status and a message naming the node and op.
 *
 * onnxruntime, onnx.checker and PyTorch's exports are `make check-onnx`'s
 * (tests/onnx/), which needs packages this suite does without.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "onnx/onnx_model.h"
#include "testutil.h"

static char dir[64];
static char path[128];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/fmnn-onnx-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.onnx", dir);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

/* A batch of n samples of the model's input, from a fixed pattern. */
static fmnn_tensor *inputs(const fmnn_model *m, int n)
{
    int dims[FMNN_MAX_RANK + 1] = { n };
    const int rank = fmnn_model_input_shape(m, dims + 1);
    fmnn_tensor *x = NULL;
    EXPECT_OK(fmnn_tensor_new(&x, rank + 1, dims));
    float *p = fmnn_tensor_data(x);
    for (size_t i = 0; i < fmnn_tensor_size(x); i++)
        p[i] = (float)((i * 7919 % 1000) / 500.0 - 1.0);
    return x;
}

/* Trains a step so that BatchNormalization's statistics and the weights
 * are not their starting values, then checks the round trip: export,
 * import, the same prediction bit for bit. */
static void check_round_trip(fmnn_model *m, fmnn_loss loss)
{
    EXPECT_OK(fmnn_model_compile(m, loss, NULL, 7));
    fmnn_tensor *x = inputs(m, 8), *y = NULL, *before = NULL, *after = NULL;
    EXPECT_OK(fmnn_model_predict(m, x, 0, &before));
    EXPECT_OK(fmnn_tensor_new(&y, fmnn_tensor_rank(before), (const int[]){ 8, fmnn_tensor_dim(before, 1),
                                                                            fmnn_tensor_dim(before, 2),
                                                                            fmnn_tensor_dim(before, 3) }));
    memcpy(fmnn_tensor_data(y), fmnn_tensor_const_data(before), fmnn_tensor_size(y) * sizeof(float));
    fmnn_tensor_free(before);
    fmnn_fit_options fo = FMNN_FIT_OPTIONS_INIT;
    fo.epochs = 1;
    fo.batch_size = 4;
    fo.verbose = 0;
    EXPECT_OK(fmnn_model_fit(m, x, y, &fo, NULL));
    EXPECT_OK(fmnn_model_predict(m, x, 0, &before));

    make_dir();
    EXPECT_OK(fmnn_model_export_onnx(m, path));
    fmnn_model *back = NULL;
    EXPECT_OK(fmnn_model_import_onnx(&back, path, NULL));
    EXPECT_OK(fmnn_model_predict(back, x, 0, &after));
    ck_assert_uint_eq(fmnn_tensor_size(after), fmnn_tensor_size(before));
    ck_assert_msg(!memcmp(fmnn_tensor_const_data(after), fmnn_tensor_const_data(before),
                          fmnn_tensor_size(before) * sizeof(float)),
                  "the imported model predicts other bits");
    remove_dir();
    fmnn_tensor_free(after);
    fmnn_tensor_free(before);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(back);
    fmnn_model_free(m);
}

static fmnn_model *new_model(int rank, const int *shape)
{
    fmnn_model *m = NULL;
    EXPECT_OK(fmnn_model_new(&m, rank, shape));
    return m;
}

#define ADD(m, layer) EXPECT_OK(fmnn_model_add((m), (layer)))

START_TEST(test_round_trip_convolutions)
{
    fmnn_model *m = new_model(3, (const int[]){ 9, 10, 2 });
    ADD(m, fmnn_rescaling(0.5f, -0.25f));
    ADD(m, fmnn_random_flip(NULL));
    ADD(m, fmnn_conv2d(4, 3, 3, &(fmnn_conv2d_options){ .padding = FMNN_PADDING_SAME, .activation = FMNN_RELU }));
    ADD(m, fmnn_maxpool2d(2, 2, &(fmnn_maxpool2d_options){ 2, 2, FMNN_PADDING_SAME }));
    ADD(m, fmnn_zero_padding2d(1, 0, 2, 1));
    ADD(m, fmnn_conv2d(5, 2, 3, &(fmnn_conv2d_options){ .stride_h = 2, .no_bias = 1 }));
    ADD(m, fmnn_batch_normalization(NULL));
    ADD(m, fmnn_activation(FMNN_SWISH));
    ADD(m, fmnn_conv2d(3, 2, 2, &(fmnn_conv2d_options){ .dilation_h = 2, .padding = FMNN_PADDING_SAME }));
    ADD(m, fmnn_average_pooling2d(2, 2, &(fmnn_pool2d_options){ 1, 1, FMNN_PADDING_SAME }));
    ADD(m, fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_GELU })); /* over the channels */
    ADD(m, fmnn_dropout(0.3f));
    ADD(m, fmnn_flatten());
    ADD(m, fmnn_batch_normalization(NULL));
    ADD(m, fmnn_dense(6, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    check_round_trip(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY);
}
END_TEST

START_TEST(test_round_trip_activations)
{
    static const fmnn_activation_kind kinds[] = { FMNN_SIGMOID, FMNN_TANH, FMNN_LEAKY_RELU, FMNN_ELU, FMNN_SELU,
                                                  FMNN_GELU_TANH, FMNN_SOFTPLUS, FMNN_HARD_SIGMOID };
    fmnn_model *m = new_model(1, (const int[]){ 12 });
    const float mean[12] = { 0.1f, -0.2f }, variance[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0.5f };
    ADD(m, fmnn_normalization(&(fmnn_normalization_options){ mean, variance, 12, 0 }));
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        ADD(m, fmnn_dense(12, &(fmnn_dense_options){ .activation = kinds[i] }));
    ADD(m, fmnn_leaky_relu(0.3f));
    ADD(m, fmnn_reshape(3, (const int[]){ 2, 3, 2 }));
    ADD(m, fmnn_conv2d(3, 1, 2, NULL));
    ADD(m, fmnn_global_max_pooling2d());
    ADD(m, fmnn_reshape(2, (const int[]){ 3, 1 }));
    ADD(m, fmnn_dense(2, NULL)); /* over the last axis of (3, 1) */
    ADD(m, fmnn_flatten());
    ADD(m, fmnn_activation(FMNN_SIGMOID));
    check_round_trip(m, FMNN_LOSS_BINARY_CROSSENTROPY);
}
END_TEST

START_TEST(test_round_trip_global_average)
{
    fmnn_model *m = new_model(3, (const int[]){ 6, 6, 3 });
    ADD(m, fmnn_conv2d(4, 3, 3, NULL));
    ADD(m, fmnn_activation(FMNN_RELU));
    ADD(m, fmnn_flatten());
    ADD(m, fmnn_reshape(3, (const int[]){ 4, 4, 4 })); /* back through our order */
    ADD(m, fmnn_global_average_pooling2d());
    ADD(m, fmnn_dense(3, NULL));
    check_round_trip(m, FMNN_LOSS_MSE);
}
END_TEST

/* The exported file's interface: NCHW input "input" with a symbolic
 * batch, output "output", opset 13, no Dropout. */
START_TEST(test_export_interface)
{
    fmnn_model *m = new_model(3, (const int[]){ 5, 4, 2 });
    ADD(m, fmnn_conv2d(3, 3, 3, NULL));
    ADD(m, fmnn_dropout(0.5f));
    ADD(m, fmnn_flatten());
    ADD(m, fmnn_dense(2, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    EXPECT_ERROR(fmnn_model_export_onnx(m, "never.onnx"), FMNN_ESTATE, "compile");
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1));
    make_dir();
    EXPECT_OK(fmnn_model_export_onnx(m, path));
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char bytes[65536];
    const size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    fmnn__onnx_model *g = NULL;
    EXPECT_OK(fmnn__onnx_parse(bytes, n, path, &g));
    ck_assert_int_eq(g->opset, 13);
    ck_assert_int_eq(g->ir_version, 7);
    ck_assert_int_eq(g->n_inputs, 1);
    ck_assert_str_eq(g->inputs[0].name, "input");
    ck_assert_int_eq(g->inputs[0].rank, 4);
    ck_assert_str_eq(g->inputs[0].dim_params[0], "N");
    ck_assert_int_eq(g->inputs[0].dims[1], 2); /* channels first */
    ck_assert_int_eq(g->inputs[0].dims[2], 5);
    ck_assert_int_eq(g->inputs[0].dims[3], 4);
    ck_assert_str_eq(g->outputs[0].name, "output");
    for (int i = 0; i < g->n_nodes; i++)
        ck_assert_str_ne(g->nodes[i].op_type, "Dropout");
    fmnn__onnx_free(g);
    EXPECT_ERROR(fmnn_model_export_onnx(m, "/nonexistent-dir/model.onnx"), FMNN_EIO, "nonexistent-dir");
    remove_dir();
    fmnn_model_free(m);
}
END_TEST

/* ---- graphs the import refuses ------------------------------------------- */

/* A graph of input x (N, 1, 4, 4) whose nodes the caller adds, then
 * serialized. */
static fmnn__onnx_model *graph(void)
{
    fmnn__onnx_model *g = fmnn__onnx_new(7, 13, "test", "1", "g");
    ck_assert_ptr_nonnull(g);
    fmnn__onnx_add_input(g, "x", 4, (const int64_t[]){ -1, 1, 4, 4 }, "N");
    return g;
}

/* Imports the graph with `output` as its output: must fail with status
 * and a message holding each of the needles. */
static void expect_import_error(fmnn__onnx_model *g, const char *output, int status, const char *needle,
                                const char *needle2, int line)
{
    if (output)
        fmnn__onnx_add_output(g, output, 2, (const int64_t[]){ -1, 16 }, "N");
    unsigned char *bytes;
    size_t n;
    EXPECT_OK(fmnn__onnx_serialize(g, &bytes, &n));
    fmnn__onnx_free(g);
    fmnn_model *m = NOT_NULL;
    fmnn_clear_error();
    int rc = fmnn_model_import_onnx_memory(&m, bytes, n, NULL);
    fmnn__free(bytes);
    ck_assert_msg(rc == status, "line %d: status %d, expected %d (%s)", line, rc, status, fmnn_last_error());
    ck_assert_msg(m == NULL, "line %d: *out not cleared", line);
    ck_assert_msg(strstr(fmnn_last_error(), needle), "line %d: no \"%s\" in \"%s\"", line, needle,
                  fmnn_last_error());
    if (needle2)
        ck_assert_msg(strstr(fmnn_last_error(), needle2), "line %d: no \"%s\" in \"%s\"", line, needle2,
                      fmnn_last_error());
}
#define EXPECT_IMPORT_ERROR(g, output, status, needle, needle2) \
    expect_import_error(g, output, status, needle, needle2, __LINE__)

static void node(fmnn__onnx_model *g, const char *op, const char *name, int n_in, const char *const *in,
                 const char *out)
{
    ck_assert_ptr_nonnull(fmnn__onnx_add_node(g, op, name, n_in, in, out));
}

START_TEST(test_import_refuses)
{
    fmnn__onnx_model *g = graph();
    node(g, "LSTM", "lstm_0", 1, (const char *const[]){ "x" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "'lstm_0' (LSTM)", "no layer");

    g = graph(); /* a node reading its own output: a cycle */
    node(g, "Add", "loop", 2, (const char *const[]){ "x", "y" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_EFORMAT, "'loop' (Add)", "cyclic");

    g = graph(); /* read before it is written */
    node(g, "Relu", "late", 1, (const char *const[]){ "z" }, "y");
    node(g, "Relu", "early", 1, (const char *const[]){ "x" }, "z");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_EFORMAT, "'late' (Relu)", "not sorted");

    g = graph(); /* a Conv whose weight does not fit the input's channels */
    fmnn__onnx_add_floats(g, "w", 4, (const int64_t[]){ 2, 3, 1, 1 }, (const float[6]){ 0 });
    node(g, "Conv", "conv", 2, (const char *const[]){ "x", "w" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "'conv' (Conv)", "1-channel");

    g = graph(); /* its weight is not a constant */
    node(g, "Conv", "conv", 2, (const char *const[]){ "x", "x" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "'conv' (Conv)", "twice");

    g = graph(); /* weights in an external file */
    fmnn__onnx_tensor *w = fmnn__onnx_add_floats(g, "w", 4, (const int64_t[]){ 2, 1, 1, 1 }, (const float[2]){ 0 });
    ck_assert_ptr_nonnull(w);
    w->external = 1;
    node(g, "Conv", "conv", 2, (const char *const[]){ "x", "w" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "external data", "'conv' (Conv)");

    g = graph(); /* a branch: two readers that are no activation */
    node(g, "Relu", "a", 1, (const char *const[]){ "x" }, "y");
    node(g, "Sigmoid", "b", 1, (const char *const[]){ "x" }, "z");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "not a chain", NULL);

    g = graph(); /* a node off the chain */
    node(g, "Relu", "a", 1, (const char *const[]){ "x" }, "y");
    fmnn__onnx_add_floats(g, "c", 1, (const int64_t[]){ 1 }, (const float[1]){ 0 });
    node(g, "Relu", "stray", 1, (const char *const[]){ "c" }, "z");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "'stray' (Relu)", "not on the chain");

    g = graph(); /* Gemm of an image */
    fmnn__onnx_add_floats(g, "w", 2, (const int64_t[]){ 16, 2 }, (const float[32]){ 0 });
    node(g, "Gemm", "gemm", 2, (const char *const[]){ "x", "w" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "'gemm' (Gemm)", "flatten it first");

    g = graph(); /* a grouped convolution */
    fmnn__onnx_add_floats(g, "w", 4, (const int64_t[]){ 2, 1, 1, 1 }, (const float[2]){ 0 });
    fmnn__onnx_node *conv = fmnn__onnx_add_node(g, "Conv", "grouped", 2, (const char *const[]){ "x", "w" }, "y");
    fmnn__onnx_attr_int(g, conv, "group", 2);
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "'grouped' (Conv)", "group 2");

    g = graph(); /* the chain does not reach the output */
    node(g, "Relu", "a", 1, (const char *const[]){ "x" }, "y");
    EXPECT_IMPORT_ERROR(g, "x", FMNN_ENOTSUP, "ends at 'y', not at the output 'x'", NULL);

    g = fmnn__onnx_new(7, 9, "test", "1", "g"); /* an opset before Pad took its pads as an input */
    fmnn__onnx_add_input(g, "x", 2, (const int64_t[]){ -1, 16 }, "N");
    node(g, "Relu", "a", 1, (const char *const[]){ "x" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "opset 9", NULL);

    g = graph(); /* a size unknown but the batch */
    fmnn__onnx_add_input(g, "x2", 4, (const int64_t[]){ -1, 1, -1, 4 }, "H");
    node(g, "Relu", "a", 1, (const char *const[]){ "x" }, "y");
    EXPECT_IMPORT_ERROR(g, "y", FMNN_ENOTSUP, "inputs 'x' and 'x2'", NULL);
}
END_TEST

START_TEST(test_import_bad_files)
{
    fmnn_model *m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_import_onnx(&m, "/nonexistent/model.onnx", NULL), FMNN_EIO, "/nonexistent/model.onnx");
    ck_assert_ptr_null(m);
    static const unsigned char junk[] = "not an ONNX model at all";
    m = NOT_NULL;
    EXPECT_ERROR(fmnn_model_import_onnx_memory(&m, junk, sizeof junk, NULL), FMNN_EFORMAT, "in memory");
    ck_assert_ptr_null(m);
    EXPECT_ERROR(fmnn_model_import_onnx_memory(NULL, junk, sizeof junk, NULL), FMNN_EINVAL, "out");
    fmnn_onnx_import_options o = FMNN_ONNX_IMPORT_OPTIONS_INIT;
    o.reserved[3] = 1;
    EXPECT_ERROR(fmnn_model_import_onnx_memory(&m, junk, sizeof junk, &o), FMNN_EINVAL, "reserved[3]");
}
END_TEST

/* torch's ZeroPad2d: pads computed by a subgraph of constants, which the
 * import folds. */
START_TEST(test_import_folds_constants)
{
    fmnn__onnx_model *g = graph();
    fmnn__onnx_add_int64s(g, "four", 1, (const int64_t[]){ 1 }, (const int64_t[]){ 4 });
    fmnn__onnx_add_int64s(g, "hw", 1, (const int64_t[]){ 4 }, (const int64_t[]){ 1, 2, 0, 3 });
    fmnn__onnx_add_int64s(g, "shape", 1, (const int64_t[]){ 2 }, (const int64_t[]){ 4, 2 });
    node(g, "ConstantOfShape", "zeros", 1, (const char *const[]){ "four" }, "z");
    fmnn__onnx_node *cast = fmnn__onnx_add_node(g, "Cast", "cast", 1, (const char *const[]){ "z" }, "zi");
    fmnn__onnx_attr_int(g, cast, "to", 7);
    fmnn__onnx_node *cat = fmnn__onnx_add_node(g, "Concat", "cat", 2, (const char *const[]){ "zi", "hw" }, "p8");
    fmnn__onnx_attr_int(g, cat, "axis", 0);
    /* (0 0 0 0 1 2 0 3) as (4, 2), transposed: (0 0 1 0 0 0 2 3) */
    node(g, "Reshape", "r", 2, (const char *const[]){ "p8", "shape" }, "p42");
    fmnn__onnx_node *t = fmnn__onnx_add_node(g, "Transpose", "t", 1, (const char *const[]){ "p42" }, "p24");
    fmnn__onnx_attr_ints(g, t, "perm", 2, (const int64_t[]){ 1, 0 });
    fmnn__onnx_add_int64s(g, "flat", 1, (const int64_t[]){ 1 }, (const int64_t[]){ -1 });
    node(g, "Reshape", "r2", 2, (const char *const[]){ "p24", "flat" }, "pads");
    node(g, "Pad", "pad", 2, (const char *const[]){ "x", "pads" }, "padded");
    node(g, "Flatten", "flatten", 1, (const char *const[]){ "padded" }, "y");
    fmnn__onnx_add_output(g, "y", 2, (const int64_t[]){ -1, 42 }, "N");
    unsigned char *bytes;
    size_t n;
    EXPECT_OK(fmnn__onnx_serialize(g, &bytes, &n));
    fmnn__onnx_free(g);
    fmnn_model *m = NULL;
    EXPECT_OK(fmnn_model_import_onnx_memory(&m, bytes, n, NULL));
    fmnn__free(bytes);
    /* pads (top 1, left 0) before, (bottom 2, right 3) after: 4x4 -> 7x7 */
    int dims[FMNN_MAX_RANK];
    ck_assert_int_eq(fmnn_model_output_shape(m, 0, dims), 3);
    ck_assert_int_eq(dims[0], 7);
    ck_assert_int_eq(dims[1], 7);
    ck_assert_str_eq(fmnn_layer_type(fmnn_model_layer(m, 0)), "ZeroPadding2D");
    fmnn_model_free(m);
}
END_TEST

static Suite *onnx_suite(void)
{
    Suite *s = suite_create("onnx");
    TCase *tc = tcase_create("export");
    tcase_add_test(tc, test_round_trip_convolutions);
    tcase_add_test(tc, test_round_trip_activations);
    tcase_add_test(tc, test_round_trip_global_average);
    tcase_add_test(tc, test_export_interface);
    suite_add_tcase(s, tc);
    tc = tcase_create("import");
    tcase_add_test(tc, test_import_refuses);
    tcase_add_test(tc, test_import_bad_files);
    tcase_add_test(tc, test_import_folds_constants);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    fmnn_set_num_threads(1);
    SRunner *sr = srunner_create(onnx_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
