/*
 * fuzz_onnx.c - libFuzzer target for the ONNX protobuf layer
 * (lib/onnx/protobuf.c, lib/onnx/onnx_model.c).
 *
 * Each input is parsed as a ModelProto from memory.  A failure must be
 * FMNN_EFORMAT, FMNN_ENOTSUP or FMNN_ENOMEM, leave *out NULL and name the
 * input.  A model that parses must serialize, and its bytes parse again
 * to the same model: counts, names, attributes, dims and every value
 * (bit for bit).  What the serializer does not write (opsets of other
 * domains, sparse initializers, values of attribute types the library
 * does not keep) is not compared.
 *
 * Each input that parses is also imported (fmnn_model_import_onnx_memory),
 * with the same rule for failures.  An imported model that is small
 * predicts on two samples of zeros, is exported, imported again from
 * that file, and must predict the very same bits.
 *
 *   make fuzz && build/fuzz/fuzz_onnx build/fuzz/corpus_onnx tests/fuzz/corpus_onnx
 */
#include "fuzz_common.h" /* first: it defines _GNU_SOURCE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "onnx/onnx_model.h"

#define WHAT "fuzz-input"

static void mismatch(const char *what)
{
    fprintf(stderr, "fuzz_onnx: the reparsed model differs: %s\n", what);
    abort();
}

static void same_str(const char *a, const char *b, const char *what)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        mismatch(what);
}

static void same_mem(const void *a, const void *b, size_t n, const char *what)
{
    if (n && ((a == NULL) != (b == NULL) || memcmp(a, b, n) != 0))
        mismatch(what);
}

static void same_tensor(const fmnn__onnx_tensor *a, const fmnn__onnx_tensor *b)
{
    same_str(a->name, b->name, "tensor name");
    if (a->data_type != b->data_type || a->rank != b->rank || a->count != b->count || a->external != b->external)
        mismatch("tensor type, rank, count or location");
    same_mem(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims, "tensor dims");
    if ((a->floats == NULL) != (b->floats == NULL) || (a->ints == NULL) != (b->ints == NULL))
        mismatch("tensor values present");
    same_mem(a->floats, b->floats, a->floats ? a->count * sizeof(float) : 0, "tensor floats");
    same_mem(a->ints, b->ints, a->ints ? a->count * sizeof(int64_t) : 0, "tensor ints");
}

static void same_attr(const fmnn__onnx_attr *a, const fmnn__onnx_attr *b)
{
    same_str(a->name, b->name, "attribute name");
    if (a->type != b->type || a->i != b->i || memcmp(&a->f, &b->f, sizeof a->f) != 0)
        mismatch("attribute type, i or f");
    if (a->s_len != b->s_len || a->n_floats != b->n_floats || a->n_ints != b->n_ints)
        mismatch("attribute lengths");
    same_mem(a->s, b->s, a->s_len, "attribute s");
    same_mem(a->floats, b->floats, a->n_floats * sizeof(float), "attribute floats");
    same_mem(a->ints, b->ints, a->n_ints * sizeof(int64_t), "attribute ints");
    if ((a->t == NULL) != (b->t == NULL))
        mismatch("attribute t present");
    if (a->t)
        same_tensor(a->t, b->t);
}

static void same_value(const fmnn__onnx_value *a, const fmnn__onnx_value *b)
{
    same_str(a->name, b->name, "value name");
    if (a->elem_type != b->elem_type || a->rank != b->rank)
        mismatch("value type or rank");
    for (int d = 0; d < a->rank; d++) {
        if (a->dims[d] != b->dims[d])
            mismatch("value dims");
        same_str(a->dim_params[d], b->dim_params[d], "value dim_param");
    }
}

static void same_model(const fmnn__onnx_model *a, const fmnn__onnx_model *b)
{
    if (a->ir_version != b->ir_version || a->opset != b->opset)
        mismatch("ir_version or opset");
    same_str(a->producer_name, b->producer_name, "producer_name");
    same_str(a->producer_version, b->producer_version, "producer_version");
    same_str(a->graph_name, b->graph_name, "graph name");
    if (a->n_nodes != b->n_nodes || a->n_initializers != b->n_initializers || a->n_inputs != b->n_inputs ||
        a->n_outputs != b->n_outputs)
        mismatch("counts");
    for (int i = 0; i < a->n_nodes; i++) {
        const fmnn__onnx_node *x = &a->nodes[i], *y = &b->nodes[i];
        same_str(x->name, y->name, "node name");
        same_str(x->op_type, y->op_type, "node op_type");
        same_str(x->domain, y->domain, "node domain");
        if (x->n_inputs != y->n_inputs || x->n_outputs != y->n_outputs || x->n_attrs != y->n_attrs)
            mismatch("node counts");
        for (int k = 0; k < x->n_inputs; k++)
            same_str(x->inputs[k], y->inputs[k], "node input");
        for (int k = 0; k < x->n_outputs; k++)
            same_str(x->outputs[k], y->outputs[k], "node output");
        for (int k = 0; k < x->n_attrs; k++)
            same_attr(&x->attrs[k], &y->attrs[k]);
    }
    for (int i = 0; i < a->n_initializers; i++)
        same_tensor(&a->initializers[i], &b->initializers[i]);
    for (int i = 0; i < a->n_inputs; i++)
        same_value(&a->inputs[i], &b->inputs[i]);
    for (int i = 0; i < a->n_outputs; i++)
        same_value(&a->outputs[i], &b->outputs[i]);
}

/* A failure of the right kind, naming the input, with nothing returned. */
static void expect_clean_failure(int status, const fmnn__onnx_model *m)
{
    if (status != FMNN_EFORMAT && status != FMNN_ENOTSUP && status != FMNN_ENOMEM) {
        fprintf(stderr, "fuzz_onnx: status %d: %s\n", status, fmnn_last_error());
        abort();
    }
    if (m != NULL) {
        fprintf(stderr, "fuzz_onnx: *out is not NULL after a failure\n");
        abort();
    }
    if (status != FMNN_ENOMEM && !strstr(fmnn_last_error(), WHAT)) {
        fprintf(stderr, "fuzz_onnx: a message without the input's name: \"%s\"\n", fmnn_last_error());
        abort();
    }
}

/* Models larger than this are imported but not run nor exported. */
#define MAX_INPUT_VALUES 4096
#define MAX_PARAMS 1000000
/* Nor those with a layer output larger than this, per sample (a huge
 * padding makes a large activation of a small input). */
#define MAX_ACTIVATION_VALUES (1 << 20)

static const char *exported;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fmnn_set_num_threads(1);
    exported = scratch_open("model.onnx");
    return 0;
}

static void import_failed(int status, const fmnn_model *m, const char *what)
{
    if ((status != FMNN_EFORMAT && status != FMNN_ENOTSUP && status != FMNN_ENOMEM) || m != NULL ||
        fmnn_last_error()[0] == '\0') {
        fprintf(stderr, "fuzz_onnx: %s: status %d, *out %s: \"%s\"\n", what, status,
                m ? "not NULL" : "NULL", fmnn_last_error());
        abort();
    }
}

/* Predictions on two samples of zeros; NULL when the model is too large. */
static fmnn_tensor *predict_zeros(fmnn_model *m, const char *what)
{
    int dims[FMNN_MAX_RANK + 1] = { 2 };
    int rank = fmnn_model_input_shape(m, dims + 1);
    if (rank < 1 || rank > FMNN_MAX_RANK) {
        fprintf(stderr, "fuzz_onnx: %s: input rank %d\n", what, rank);
        abort();
    }
    size_t n = 1;
    for (int d = 1; d <= rank; d++)
        n *= (size_t)dims[d];
    if (n > MAX_INPUT_VALUES || fmnn_model_param_count(m) > MAX_PARAMS)
        return NULL;
    for (int i = 0; i < fmnn_model_layer_count(m); i++) {
        int out[FMNN_MAX_RANK];
        int r = fmnn_model_output_shape(m, i, out);
        if (r < 1)
            abort();
        size_t values = 1;
        for (int d = 0; d < r; d++)
            values *= (size_t)out[d];
        if (values > MAX_ACTIVATION_VALUES)
            return NULL;
    }
    fmnn_tensor *x = NULL, *y = NULL;
    if (fmnn_tensor_new(&x, rank + 1, dims) != FMNN_OK) /* zeros */
        abort();
    int st = fmnn_model_predict(m, x, 0, &y);
    fmnn_tensor_free(x);
    if (st != FMNN_OK || !y || fmnn_tensor_dim(y, 0) != 2) {
        fprintf(stderr, "fuzz_onnx: %s: predict: status %d: %s\n", what, st, fmnn_last_error());
        abort();
    }
    return y;
}

/* Import; a small model must export, import again and predict the same bits. */
static void import_roundtrip(const uint8_t *data, size_t size)
{
    fmnn_model *m = (fmnn_model *)&scratch_dir; /* must come back NULL on failure */
    int st = fmnn_model_import_onnx_memory(&m, data, size, NULL);
    if (st != FMNN_OK) {
        import_failed(st, m, "import");
        return;
    }
    fmnn_tensor *y = predict_zeros(m, "imported");
    if (!y) {
        fmnn_model_free(m);
        return;
    }
    st = fmnn_model_export_onnx(m, exported);
    if (st != FMNN_OK) {
        /* Memory is the one excuse: an imported model is compiled. */
        if (st != FMNN_ENOMEM) {
            fprintf(stderr, "fuzz_onnx: export: status %d: %s\n", st, fmnn_last_error());
            abort();
        }
        fmnn_tensor_free(y);
        fmnn_model_free(m);
        return;
    }
    fmnn_model *again = (fmnn_model *)&scratch_dir;
    st = fmnn_model_import_onnx(&again, exported, NULL);
    if (st != FMNN_OK) {
        if (st == FMNN_ENOMEM && again == NULL) {
            fmnn_tensor_free(y);
            fmnn_model_free(m);
            return;
        }
        fprintf(stderr, "fuzz_onnx: the exported model does not import: status %d: %s\n", st,
                fmnn_last_error());
        abort();
    }
    fmnn_tensor *y2 = predict_zeros(again, "reimported");
    if (!y2) {
        fprintf(stderr, "fuzz_onnx: the reimported model is larger than the imported one\n");
        abort();
    }
    int rank = fmnn_tensor_rank(y);
    if (rank != fmnn_tensor_rank(y2) || fmnn_tensor_size(y) != fmnn_tensor_size(y2))
        mismatch("the reimported model's output shape");
    for (int d = 0; d < rank; d++)
        if (fmnn_tensor_dim(y, d) != fmnn_tensor_dim(y2, d))
            mismatch("the reimported model's output shape");
    if (memcmp(fmnn_tensor_data(y), fmnn_tensor_data(y2), fmnn_tensor_size(y) * sizeof(float)) != 0)
        mismatch("the reimported model's predictions");
    fmnn_tensor_free(y2);
    fmnn_tensor_free(y);
    fmnn_model_free(again);
    fmnn_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fmnn__onnx_model *m = NULL;
    int status = fmnn__onnx_parse(data, size, WHAT, &m);
    if (status != FMNN_OK) {
        expect_clean_failure(status, m);
        return 0;
    }
    unsigned char *bytes = NULL;
    size_t n = 0;
    status = fmnn__onnx_serialize(m, &bytes, &n);
    if (status != FMNN_OK) {
        if (status != FMNN_ENOMEM)
            abort();
        fmnn__onnx_free(m);
        return 0;
    }
    fmnn__onnx_model *again = NULL;
    status = fmnn__onnx_parse(bytes, n, "reserialized", &again);
    if (status != FMNN_OK) {
        fprintf(stderr, "fuzz_onnx: the serialized model does not parse: %s\n", fmnn_last_error());
        abort();
    }
    same_model(m, again);
    fmnn__onnx_free(again);
    fmnn__free(bytes);
    fmnn__onnx_free(m);
    import_roundtrip(data, size);
    return 0;
}
