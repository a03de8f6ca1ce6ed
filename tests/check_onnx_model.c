/*
 * check_onnx_model.c - the ONNX protobuf layer (lib/onnx/protobuf.c,
 * lib/onnx/onnx_model.c): a built model through serialize and parse,
 * the encodings a file may use, a file exported by PyTorch, and
 * malformed bytes, each refused with a message naming the input.
 *
 * The malformed inputs are written with the library's own protobuf
 * writer, field by field, so each breaks exactly one rule.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmnn.h"
#include "onnx/onnx_model.h"
#include "onnx/protobuf.h"
#include "testutil.h"

#define WHAT "bad.onnx"

/* ---- helpers ---------------------------------------------------------- */

/* Parses bytes that must fail with status, naming WHAT and needle. */
static void expect_refused(const void *bytes, size_t n, int status, const char *needle, int line)
{
    fmnn__onnx_model *m = NOT_NULL;
    fmnn_clear_error();
    int rc = fmnn__onnx_parse(bytes, n, WHAT, &m);
    ck_assert_msg(rc == status, "line %d: status %d, expected %d (%s)", line, rc, status, fmnn_last_error());
    ck_assert_msg(m == NULL, "line %d: *out not cleared", line);
    ck_assert_msg(strstr(fmnn_last_error(), WHAT), "line %d: no input name in \"%s\"", line, fmnn_last_error());
    ck_assert_msg(strstr(fmnn_last_error(), needle), "line %d: no \"%s\" in \"%s\"", line, needle,
                  fmnn_last_error());
}
#define EXPECT_REFUSED(w, status, needle) expect_refused((w).data, (w).size, status, needle, __LINE__)

static fmnn__onnx_model *parse_ok(const void *bytes, size_t n)
{
    fmnn__onnx_model *m = NULL;
    int rc = fmnn__onnx_parse(bytes, n, "test", &m);
    ck_assert_msg(rc == FMNN_OK, "parse: %d: %s", rc, fmnn_last_error());
    ck_assert_ptr_nonnull(m);
    return m;
}

static void put_int(fmnn__pb_writer *w, uint32_t field, uint64_t v)
{
    fmnn__pb_put_tag(w, field, FMNN__PB_VARINT);
    fmnn__pb_put_varint(w, v);
}

/* A model whose graph holds one initializer: the tensor fields come from
 * tensor_fields(w), written inside the TensorProto. */
static fmnn__pb_writer model_with_tensor(void (*tensor_fields)(fmnn__pb_writer *))
{
    fmnn__pb_writer w = { 0 };
    put_int(&w, 1, 8);
    const size_t graph = fmnn__pb_begin(&w, 7);
    const size_t init = fmnn__pb_begin(&w, 5);
    fmnn__pb_put_string(&w, 8, "T");
    tensor_fields(&w);
    fmnn__pb_end(&w, init);
    fmnn__pb_end(&w, graph);
    ck_assert(!w.failed);
    return w;
}

static void put_floats_le(fmnn__pb_writer *w, int n, const float *v)
{
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        fmnn__pb_put_fixed32(w, bits);
    }
}

static const float FOUR[4] = { 1.5f, -2.0f, 0.25f, 3e8f };

static void dims_2x2(fmnn__pb_writer *w, int data_type)
{
    put_int(w, 1, 2);
    put_int(w, 1, 2);
    put_int(w, 2, (uint64_t)data_type);
}

/* A model built with every builder call; NULL, or m->failed, when an
 * allocation failed (the calls after a failed fmnn__onnx_new get NULL). */
static fmnn__onnx_model *build_model_quiet(void)
{
    fmnn__onnx_model *m = fmnn__onnx_new(8, 13, "libfmnn", "1.2.3", "g");
    float w[2 * 1 * 3 * 3], b[2] = { 0.5f, -0.5f };
    for (int i = 0; i < 18; i++)
        w[i] = (float)i * 0.125f - 1.0f;
    fmnn__onnx_add_floats(m, "W", 4, (int64_t[]){ 2, 1, 3, 3 }, w);
    fmnn__onnx_add_floats(m, "B", 1, (int64_t[]){ 2 }, b);
    fmnn__onnx_add_int64s(m, "shape", 1, (int64_t[]){ 2 }, (int64_t[]){ -1, 128 });
    fmnn__onnx_node *conv = fmnn__onnx_add_node(m, "Conv", "conv0", 3, (const char *[]){ "X", "W", "B" }, "c");
    fmnn__onnx_attr_ints(m, conv, "kernel_shape", 2, (int64_t[]){ 3, 3 });
    fmnn__onnx_attr_ints(m, conv, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
    fmnn__onnx_attr_int(m, conv, "group", 1);
    fmnn__onnx_node *relu = fmnn__onnx_add_node(m, "LeakyRelu", "act", 1, (const char *[]){ "c" }, "r");
    fmnn__onnx_attr_float(m, relu, "alpha", 0.01f);
    fmnn__onnx_add_node(m, "Reshape", fmnn__onnx_printf(m, "reshape%d", 1), 2, (const char *[]){ "r", "shape" },
                        "Y");
    fmnn__onnx_add_input(m, "X", 4, (int64_t[]){ -1, 1, 8, 8 }, "N");
    fmnn__onnx_add_output(m, "Y", 2, (int64_t[]){ -1, 128 }, "N");
    return m;
}

static fmnn__onnx_model *build_model(void)
{
    fmnn__onnx_model *m = build_model_quiet();
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->failed, 0);
    return m;
}

static unsigned char *serialize(const fmnn__onnx_model *m, size_t *n)
{
    unsigned char *bytes = NULL;
    int rc = fmnn__onnx_serialize(m, &bytes, n);
    ck_assert_msg(rc == FMNN_OK, "serialize: %d: %s", rc, fmnn_last_error());
    return bytes;
}

/* The built model's bytes. */
static unsigned char *built_bytes(size_t *n)
{
    fmnn__onnx_model *m = build_model();
    unsigned char *bytes = serialize(m, n);
    fmnn__onnx_free(m);
    return bytes;
}

static void same_tensor(const fmnn__onnx_tensor *a, const fmnn__onnx_tensor *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->data_type, b->data_type);
    ck_assert_int_eq(a->rank, b->rank);
    for (int d = 0; d < a->rank; d++)
        ck_assert_int_eq(a->dims[d], b->dims[d]);
    ck_assert_uint_eq(a->count, b->count);
    ck_assert_int_eq(a->external, b->external);
    ck_assert_int_eq(!a->floats, !b->floats);
    ck_assert_int_eq(!a->ints, !b->ints);
    if (a->floats)
        ck_assert(memcmp(a->floats, b->floats, a->count * sizeof(float)) == 0);
    if (a->ints)
        ck_assert(memcmp(a->ints, b->ints, a->count * sizeof(int64_t)) == 0);
}

static void same_value(const fmnn__onnx_value *a, const fmnn__onnx_value *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->elem_type, b->elem_type);
    ck_assert_int_eq(a->rank, b->rank);
    for (int d = 0; d < a->rank; d++) {
        ck_assert_int_eq(a->dims[d], b->dims[d]);
        ck_assert_int_eq(!a->dim_params[d], !b->dim_params[d]);
        if (a->dim_params[d])
            ck_assert_str_eq(a->dim_params[d], b->dim_params[d]);
    }
}

/* ---- round trip ------------------------------------------------------- */

START_TEST(test_roundtrip)
{
    fmnn__onnx_model *built = build_model();
    size_t n;
    unsigned char *bytes = serialize(built, &n);
    fmnn__onnx_model *m = parse_ok(bytes, n);

    ck_assert_int_eq(m->ir_version, 8);
    ck_assert_int_eq(m->opset, 13);
    ck_assert_int_eq(m->n_other_opsets, 0);
    ck_assert_str_eq(m->producer_name, "libfmnn");
    ck_assert_str_eq(m->producer_version, "1.2.3");
    ck_assert_str_eq(m->graph_name, "g");
    ck_assert_int_eq(m->n_nodes, 3);
    ck_assert_int_eq(m->n_initializers, 3);
    ck_assert_int_eq(m->n_sparse_initializers, 0);
    for (int i = 0; i < 3; i++) {
        const fmnn__onnx_node *a = &built->nodes[i], *b = &m->nodes[i];
        ck_assert_str_eq(a->name, b->name);
        ck_assert_str_eq(a->op_type, b->op_type);
        ck_assert_str_eq(b->domain, "");
        ck_assert_int_eq(a->n_inputs, b->n_inputs);
        ck_assert_int_eq(b->n_outputs, 1);
        ck_assert_str_eq(a->outputs[0], b->outputs[0]);
        for (int k = 0; k < a->n_inputs; k++)
            ck_assert_str_eq(a->inputs[k], b->inputs[k]);
        ck_assert_int_eq(a->n_attrs, b->n_attrs);
    }
    ck_assert_str_eq(m->nodes[2].name, "reshape1");

    const fmnn__onnx_node *conv = &m->nodes[0];
    const fmnn__onnx_attr *ks = fmnn__onnx_node_attr(conv, "kernel_shape");
    ck_assert_ptr_nonnull(ks);
    ck_assert_int_eq(ks->type, FMNN__ONNX_ATTR_INTS);
    ck_assert_uint_eq(ks->n_ints, 2);
    ck_assert(ks->ints[0] == 3 && ks->ints[1] == 3);
    const fmnn__onnx_attr *pads = fmnn__onnx_node_attr(conv, "pads");
    ck_assert_uint_eq(pads->n_ints, 4);
    ck_assert_int_eq(pads->ints[3], 1);
    const fmnn__onnx_attr *group = fmnn__onnx_node_attr(conv, "group");
    ck_assert_int_eq(group->type, FMNN__ONNX_ATTR_INT);
    ck_assert_int_eq(group->i, 1);
    ck_assert_ptr_null(fmnn__onnx_node_attr(conv, "strides"));
    const fmnn__onnx_attr *alpha = fmnn__onnx_node_attr(&m->nodes[1], "alpha");
    ck_assert_int_eq(alpha->type, FMNN__ONNX_ATTR_FLOAT);
    ck_assert(alpha->f == 0.01f);

    for (int i = 0; i < 3; i++)
        same_tensor(&built->initializers[i], &m->initializers[i]);
    const fmnn__onnx_tensor *w = fmnn__onnx_initializer(m, "W");
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(w->count, 18);
    ck_assert((uintptr_t)w->floats % 64 == 0);
    ck_assert(w->floats[17] == 17 * 0.125f - 1.0f);
    const fmnn__onnx_tensor *shape = fmnn__onnx_initializer(m, "shape");
    ck_assert_int_eq(shape->data_type, FMNN__ONNX_INT64);
    ck_assert(shape->ints[0] == -1 && shape->ints[1] == 128);
    ck_assert_ptr_null(fmnn__onnx_initializer(m, "nothing"));

    ck_assert_int_eq(m->n_inputs, 1);
    ck_assert_int_eq(m->n_outputs, 1);
    same_value(&built->inputs[0], &m->inputs[0]);
    same_value(&built->outputs[0], &m->outputs[0]);
    ck_assert_int_eq(m->inputs[0].elem_type, FMNN__ONNX_FLOAT);
    ck_assert_str_eq(m->inputs[0].dim_params[0], "N");
    ck_assert_int_eq(m->inputs[0].dims[0], -1);
    ck_assert_ptr_null(m->inputs[0].dim_params[1]);
    ck_assert_int_eq(m->inputs[0].dims[3], 8);

    /* Serializing the parse gives the same bytes. */
    size_t n2;
    unsigned char *again = serialize(m, &n2);
    ck_assert_uint_eq(n, n2);
    ck_assert(memcmp(bytes, again, n) == 0);
    fmnn__free(again);
    fmnn__free(bytes);
    fmnn__onnx_free(m);
    fmnn__onnx_free(built);
}
END_TEST

/* An initializer larger than an arena block, between small ones. */
START_TEST(test_large_initializer)
{
    fmnn__onnx_model *built = fmnn__onnx_new(8, 13, "", "", "");
    ck_assert_ptr_nonnull(built);
    enum { N = 100003 };
    float *values = malloc(N * sizeof *values);
    ck_assert_ptr_nonnull(values);
    for (int i = 0; i < N; i++)
        values[i] = (float)i - 0.5f;
    fmnn__onnx_add_floats(built, "a", 1, (int64_t[]){ 1 }, values);
    fmnn__onnx_add_floats(built, "big", 2, (int64_t[]){ 7, N / 7 }, values);
    fmnn__onnx_add_int64s(built, "b", 1, (int64_t[]){ 2 }, (int64_t[]){ INT64_MIN, INT64_MAX });
    size_t n;
    unsigned char *bytes = serialize(built, &n);
    ck_assert_uint_gt(n, 4 * (size_t)N);
    fmnn__onnx_model *m = parse_ok(bytes, n);
    ck_assert_int_eq(m->n_initializers, 3);
    for (int i = 0; i < 3; i++)
        same_tensor(&built->initializers[i], &m->initializers[i]);
    ck_assert((uintptr_t)m->initializers[1].floats % 64 == 0);
    ck_assert(m->initializers[2].ints[0] == INT64_MIN);
    free(values);
    fmnn__free(bytes);
    fmnn__onnx_free(m);
    fmnn__onnx_free(built);
}
END_TEST

/* ---- encodings -------------------------------------------------------- */

static void floats_packed(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_FLOAT);
    const size_t run = fmnn__pb_begin(w, 4);
    put_floats_le(w, 4, FOUR);
    fmnn__pb_end(w, run);
}

static void floats_unpacked(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_FLOAT);
    for (int i = 0; i < 4; i++) {
        fmnn__pb_put_tag(w, 4, FMNN__PB_FIXED32);
        put_floats_le(w, 1, &FOUR[i]);
    }
}

/* Half packed, half not, around another field. */
static void floats_mixed(fmnn__pb_writer *w)
{
    put_int(w, 1, 2);
    const size_t run = fmnn__pb_begin(w, 4);
    put_floats_le(w, 2, FOUR);
    fmnn__pb_end(w, run);
    put_int(w, 2, FMNN__ONNX_FLOAT);
    put_int(w, 1, 2);
    for (int i = 2; i < 4; i++) {
        fmnn__pb_put_tag(w, 4, FMNN__PB_FIXED32);
        put_floats_le(w, 1, &FOUR[i]);
    }
}

static void floats_raw(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_FLOAT);
    unsigned char raw[16];
    for (int i = 0; i < 4; i++) {
        uint32_t bits;
        memcpy(&bits, &FOUR[i], 4);
        for (int b = 0; b < 4; b++)
            raw[4 * i + b] = (unsigned char)(bits >> (8 * b));
    }
    fmnn__pb_put_bytes(w, 9, raw, sizeof raw);
}

START_TEST(test_float_encodings)
{
    void (*const encodings[])(fmnn__pb_writer *) = { floats_packed, floats_unpacked, floats_mixed, floats_raw };
    for (size_t e = 0; e < sizeof encodings / sizeof *encodings; e++) {
        fmnn__pb_writer w = model_with_tensor(encodings[e]);
        fmnn__onnx_model *m = parse_ok(w.data, w.size);
        ck_assert_int_eq(m->n_initializers, 1);
        const fmnn__onnx_tensor *t = &m->initializers[0];
        ck_assert_str_eq(t->name, "T");
        ck_assert_int_eq(t->rank, 2);
        ck_assert_uint_eq(t->count, 4);
        ck_assert_ptr_null(t->ints);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(t->floats[i] == FOUR[i], "encoding %zu, value %d: %g", e, i, t->floats[i]);
        fmnn__onnx_free(m);
        fmnn__free(w.data);
    }
}
END_TEST

static const int64_t INTS[4] = { 7, -1, INT32_MIN, INT32_MAX };

static void int32_packed(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_INT32);
    const size_t run = fmnn__pb_begin(w, 5);
    for (int i = 0; i < 4; i++)
        fmnn__pb_put_varint(w, (uint64_t)INTS[i]); /* int32 varints are sign-extended */
    fmnn__pb_end(w, run);
}

static void int32_unpacked(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_INT32);
    for (int i = 0; i < 4; i++)
        put_int(w, 5, (uint64_t)INTS[i]);
}

static void int32_raw(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_INT32);
    unsigned char raw[16];
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++)
            raw[4 * i + b] = (unsigned char)((uint64_t)INTS[i] >> (8 * b));
    fmnn__pb_put_bytes(w, 9, raw, sizeof raw);
}

static void int64_unpacked(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_INT64);
    for (int i = 0; i < 4; i++)
        put_int(w, 7, (uint64_t)INTS[i]);
}

START_TEST(test_int_encodings)
{
    void (*const encodings[])(fmnn__pb_writer *) = { int32_packed, int32_unpacked, int32_raw, int64_unpacked };
    for (size_t e = 0; e < sizeof encodings / sizeof *encodings; e++) {
        fmnn__pb_writer w = model_with_tensor(encodings[e]);
        fmnn__onnx_model *m = parse_ok(w.data, w.size);
        const fmnn__onnx_tensor *t = &m->initializers[0];
        ck_assert_uint_eq(t->count, 4);
        ck_assert_ptr_null(t->floats);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(t->ints[i] == INTS[i], "encoding %zu, value %d: %lld", e, i, (long long)t->ints[i]);
        fmnn__onnx_free(m);
        fmnn__free(w.data);
    }
}
END_TEST

/* A graph attribute is recorded as such and its bytes skipped, unread;
 * unknown fields anywhere are skipped; the type is inferred without one. */
START_TEST(test_skipped_and_inferred)
{
    fmnn__pb_writer w = { 0 };
    put_int(&w, 1, 3);
    fmnn__pb_put_string(&w, 6, "a doc string");   /* known, unused */
    fmnn__pb_put_tag(&w, 99, FMNN__PB_FIXED64);    /* unknown, 64-bit */
    fmnn__pb_put_raw(&w, "12345678", 8);
    const size_t graph = fmnn__pb_begin(&w, 7);
    const size_t node = fmnn__pb_begin(&w, 1);
    fmnn__pb_put_string(&w, 4, "If");
    size_t attr = fmnn__pb_begin(&w, 5);
    fmnn__pb_put_string(&w, 1, "then_branch");
    put_int(&w, 20, FMNN__ONNX_ATTR_GRAPH);
    fmnn__pb_put_bytes(&w, 6, "\x0b\xff\xff", 3); /* not even a valid graph: never parsed */
    fmnn__pb_end(&w, attr);
    attr = fmnn__pb_begin(&w, 5);
    fmnn__pb_put_string(&w, 1, "axis");
    put_int(&w, 3, (uint64_t)-2);
    fmnn__pb_end(&w, attr);
    fmnn__pb_end(&w, node);
    fmnn__pb_put_tag(&w, 1000, FMNN__PB_FIXED32);
    fmnn__pb_put_fixed32(&w, 0);
    fmnn__pb_end(&w, graph);
    const size_t opset = fmnn__pb_begin(&w, 8);
    fmnn__pb_put_string(&w, 1, "com.microsoft");
    put_int(&w, 2, 1);
    fmnn__pb_end(&w, opset);
    ck_assert(!w.failed);

    fmnn__onnx_model *m = parse_ok(w.data, w.size);
    ck_assert_int_eq(m->opset, 0);
    ck_assert_int_eq(m->n_other_opsets, 1);
    ck_assert_int_eq(m->n_nodes, 1);
    ck_assert_int_eq(m->nodes[0].n_attrs, 2);
    ck_assert_int_eq(m->nodes[0].attrs[0].type, FMNN__ONNX_ATTR_GRAPH);
    ck_assert_int_eq(m->nodes[0].attrs[1].type, FMNN__ONNX_ATTR_INT);
    ck_assert_int_eq(m->nodes[0].attrs[1].i, -2);
    fmnn__onnx_free(m);
    fmnn__free(w.data);
}
END_TEST

/* A file PyTorch exported: Conv, Relu, MaxPool, Flatten, Linear (Gemm),
 * 1x8x8 input with the batch symbolic, opset 13. */
START_TEST(test_torch_export)
{
    const char *root = getenv("FMNN_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/onnx/data/torch_seq.onnx", root ? root : ".");
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s is missing", path);
    static unsigned char buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fmnn__onnx_model *m = parse_ok(buf, n);
    ck_assert_str_eq(m->producer_name, "pytorch");
    ck_assert_int_eq(m->opset, 13);
    const char *ops[] = { "Conv", "Relu", "MaxPool", "Flatten", "Gemm" };
    ck_assert_int_eq(m->n_nodes, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(m->nodes[i].op_type, ops[i]);
    const fmnn__onnx_attr *ks = fmnn__onnx_node_attr(&m->nodes[0], "kernel_shape");
    ck_assert_ptr_nonnull(ks);
    ck_assert(ks->n_ints == 2 && ks->ints[0] == 3 && ks->ints[1] == 3);
    ck_assert_int_eq(m->n_initializers, 4);
    const int64_t dims[4][4] = { { 2, 1, 3, 3 }, { 2 }, { 3, 18 }, { 3 } };
    const int ranks[4] = { 4, 1, 2, 1 };
    for (int i = 0; i < 4; i++) {
        const fmnn__onnx_tensor *t = &m->initializers[i];
        ck_assert_int_eq(t->data_type, FMNN__ONNX_FLOAT);
        ck_assert_int_eq(t->rank, ranks[i]);
        for (int d = 0; d < t->rank; d++)
            ck_assert_int_eq(t->dims[d], dims[i][d]);
        ck_assert_ptr_nonnull(t->floats);
        for (size_t k = 0; k < t->count; k++)
            ck_assert(isfinite(t->floats[k]) && fabsf(t->floats[k]) < 1.0f);
    }
    ck_assert_int_eq(m->n_inputs, 1);
    ck_assert_str_eq(m->inputs[0].name, "input");
    ck_assert_int_eq(m->inputs[0].rank, 4);
    ck_assert_str_eq(m->inputs[0].dim_params[0], "N");
    ck_assert_int_eq(m->inputs[0].dims[2], 8);
    ck_assert_str_eq(m->outputs[0].name, "output");
    fmnn__onnx_free(m);
}
END_TEST

/* ---- malformed bytes -------------------------------------------------- */

START_TEST(test_empty)
{
    fmnn__pb_writer w = { 0 };
    EXPECT_REFUSED(w, FMNN_EFORMAT, "empty");
    put_int(&w, 1, 8); /* a model without its graph */
    EXPECT_REFUSED(w, FMNN_EFORMAT, "no graph");
    fmnn__free(w.data);
}
END_TEST

/* Every prefix of a valid model fails cleanly or, complete, parses. */
START_TEST(test_truncated)
{
    size_t n;
    unsigned char *bytes = built_bytes(&n);
    int parsed = 0;
    for (size_t len = 0; len < n; len++) {
        testutil_alloc_install(-1);
        testutil_alloc_arm(1);
        unsigned char *copy = malloc(len ? len : 1); /* exactly len bytes, for ASan */
        memcpy(copy, bytes, len);
        fmnn__onnx_model *m = NULL;
        fmnn_clear_error();
        int rc = fmnn__onnx_parse(copy, len, WHAT, &m);
        ck_assert_msg(rc == FMNN_OK || rc == FMNN_EFORMAT, "prefix %zu: status %d", len, rc);
        if (rc == FMNN_OK)
            parsed++;
        else
            ck_assert_msg(strstr(fmnn_last_error(), WHAT), "prefix %zu: \"%s\"", len, fmnn_last_error());
        fmnn__onnx_free(m);
        free(copy);
        testutil_alloc_arm(0);
        ck_assert_msg(testutil_alloc_live() == 0, "prefix %zu: %ld blocks leaked", len, testutil_alloc_live());
        testutil_alloc_remove();
    }
    /* The graph is the last field: a prefix ends inside it or before it. */
    ck_assert_int_eq(parsed, 0);
    fmnn__free(bytes);
}
END_TEST

START_TEST(test_wrong_wire_type)
{
    fmnn__pb_writer w = { 0 };
    put_int(&w, 7, 1); /* graph as a varint */
    EXPECT_REFUSED(w, FMNN_EFORMAT, "field graph has wire type 0");
    fmnn__free(w.data);
    w = (fmnn__pb_writer){ 0 };
    fmnn__pb_put_tag(&w, 1, FMNN__PB_LEN); /* ir_version as bytes */
    fmnn__pb_put_varint(&w, 0);
    EXPECT_REFUSED(w, FMNN_EFORMAT, "ir_version");
    fmnn__free(w.data);
}
END_TEST

START_TEST(test_length_past_end)
{
    fmnn__pb_writer w = { 0 };
    fmnn__pb_put_tag(&w, 7, FMNN__PB_LEN);
    fmnn__pb_put_varint(&w, 5);
    fmnn__pb_put_raw(&w, "\0\0", 2);
    EXPECT_REFUSED(w, FMNN_EFORMAT, "a length of 5 bytes exceeds the 2 bytes left");
    const uint64_t huge[] = { SIZE_MAX, (uint64_t)1 << 63, SIZE_MAX - 1 };
    for (int i = 0; i < 3; i++) {
        w.size = 0;
        fmnn__pb_put_tag(&w, 7, FMNN__PB_LEN);
        fmnn__pb_put_varint(&w, huge[i]);
        fmnn__pb_put_raw(&w, "\0\0", 2);
        EXPECT_REFUSED(w, FMNN_EFORMAT, "exceeds the 2 bytes left");
    }
    fmnn__free(w.data);
}
END_TEST

START_TEST(test_overlong_varint)
{
    const unsigned char eleven[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    expect_refused(eleven, sizeof eleven, FMNN_EFORMAT, "longer than 10 bytes", __LINE__);
    /* Ten bytes whose last sets bits past 63. */
    const unsigned char overflow[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
    expect_refused(overflow, sizeof overflow, FMNN_EFORMAT, "overflows 64 bits", __LINE__);
    const unsigned char cut[] = { 0x08, 0xff, 0xff };
    expect_refused(cut, sizeof cut, FMNN_EFORMAT, "cut short", __LINE__);
}
END_TEST

static void dims_overflow(fmnn__pb_writer *w)
{
    for (int i = 0; i < 3; i++)
        put_int(w, 1, (uint64_t)1 << 32);
    put_int(w, 2, FMNN__ONNX_FLOAT);
}

static void raw_mismatch(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_FLOAT);
    fmnn__pb_put_bytes(w, 9, "123456789012", 12);
}

static void typed_mismatch(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_INT64);
    put_int(w, 7, 1);
}

static void negative_dim(fmnn__pb_writer *w)
{
    put_int(w, 1, (uint64_t)-3);
    put_int(w, 2, FMNN__ONNX_FLOAT);
}

static void rank9(fmnn__pb_writer *w)
{
    const size_t run = fmnn__pb_begin(w, 1);
    for (int i = 0; i < 9; i++)
        fmnn__pb_put_varint(w, 1);
    fmnn__pb_end(w, run);
    put_int(w, 2, FMNN__ONNX_FLOAT);
    fmnn__pb_put_tag(w, 4, FMNN__PB_FIXED32);
    fmnn__pb_put_fixed32(w, 0);
}

static void both_raw_and_typed(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_FLOAT);
    floats_packed(w);
    fmnn__pb_put_bytes(w, 9, "1234567890123456", 16);
}

static void packed_floats_odd(fmnn__pb_writer *w)
{
    dims_2x2(w, FMNN__ONNX_FLOAT);
    fmnn__pb_put_bytes(w, 4, "12345", 5);
}

static void packed_varint_cut(fmnn__pb_writer *w)
{
    put_int(w, 2, FMNN__ONNX_INT64);
    fmnn__pb_put_bytes(w, 1, "\x02\x82", 2);
}

START_TEST(test_bad_tensors)
{
    const struct {
        void (*fields)(fmnn__pb_writer *);
        int status;
        const char *needle;
    } cases[] = {
        { dims_overflow, FMNN_EFORMAT, "graph.initializer[0] at byte" },
        { dims_overflow, FMNN_EFORMAT, "the product of the dims overflows" },
        { raw_mismatch, FMNN_EFORMAT, "12 data bytes for 4 values of 4 bytes" },
        { typed_mismatch, FMNN_EFORMAT, "8 data bytes for 4 values of 8 bytes" },
        { negative_dim, FMNN_EFORMAT, "dims[0] is -3, negative" },
        { rank9, FMNN_ENOTSUP, "a tensor of 9 dimensions" },
        { both_raw_and_typed, FMNN_EFORMAT, "both raw_data and a typed data field" },
        { packed_floats_odd, FMNN_EFORMAT, "not a multiple of 4" },
        { packed_varint_cut, FMNN_EFORMAT, "ends inside a varint" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fmnn__pb_writer w = model_with_tensor(cases[i].fields);
        expect_refused(w.data, w.size, cases[i].status, cases[i].needle, (int)i);
        fmnn__free(w.data);
    }
}
END_TEST

/* The path of the failing field, and a shape over the rank limit. */
START_TEST(test_bad_values)
{
    fmnn__pb_writer w = { 0 };
    const size_t graph = fmnn__pb_begin(&w, 7);
    fmnn__pb_end(&w, fmnn__pb_begin(&w, 1)); /* an empty node */
    size_t node = fmnn__pb_begin(&w, 1);
    fmnn__pb_end(&w, fmnn__pb_begin(&w, 5));
    const size_t attr = fmnn__pb_begin(&w, 5);
    put_int(&w, 2, 1); /* f as a varint */
    fmnn__pb_end(&w, attr);
    fmnn__pb_end(&w, node);
    fmnn__pb_end(&w, graph);
    EXPECT_REFUSED(w, FMNN_EFORMAT, "graph.node[1].attribute[1] at byte");
    fmnn__free(w.data);

    w = (fmnn__pb_writer){ 0 };
    const size_t g = fmnn__pb_begin(&w, 7);
    const size_t value = fmnn__pb_begin(&w, 11);
    const size_t type = fmnn__pb_begin(&w, 2);
    const size_t tensor = fmnn__pb_begin(&w, 1);
    const size_t shape = fmnn__pb_begin(&w, 2);
    for (int d = 0; d < 9; d++) {
        const size_t dim = fmnn__pb_begin(&w, 1);
        put_int(&w, 1, 1);
        fmnn__pb_end(&w, dim);
    }
    fmnn__pb_end(&w, shape);
    fmnn__pb_end(&w, tensor);
    fmnn__pb_end(&w, type);
    fmnn__pb_end(&w, value);
    fmnn__pb_end(&w, g);
    EXPECT_REFUSED(w, FMNN_ENOTSUP, "graph.input[0] at byte");
    fmnn__free(w.data);
}
END_TEST

START_TEST(test_group_wire_types)
{
    for (int wt = 3; wt <= 4; wt++) {
        fmnn__pb_writer w = { 0 };
        put_int(&w, 1, 8);
        fmnn__pb_put_tag(&w, 1234, wt); /* even an unknown field */
        put_int(&w, 1, 8);
        EXPECT_REFUSED(w, FMNN_EFORMAT, "group wire type");
        fmnn__free(w.data);
    }
    const unsigned char bad[] = { 0x0e, 0x00 }; /* wire type 6 */
    expect_refused(bad, sizeof bad, FMNN_EFORMAT, "invalid wire type 6", __LINE__);
    const unsigned char zero[] = { 0x00, 0x00 }; /* field number 0 */
    expect_refused(zero, sizeof zero, FMNN_EFORMAT, "field number 0", __LINE__);
}
END_TEST

/* ---- memory ----------------------------------------------------------- */

/* Parsing and building with the k-th allocation failing, for every k. */
START_TEST(test_allocation_failures)
{
    size_t n;
    unsigned char *bytes = built_bytes(&n);
    for (int phase = 0; phase < 2; phase++) {
        int done = 0;
        for (long k = 0; !done; k++) {
            ck_assert(k < 10000);
            testutil_alloc_install(k);
            testutil_alloc_arm(1);
            fmnn_clear_error();
            int rc;
            fmnn__onnx_model *m = NULL;
            unsigned char *out = NULL;
            if (phase == 0) {
                rc = fmnn__onnx_parse(bytes, n, WHAT, &m);
            } else {
                m = build_model_quiet();
                size_t size;
                rc = fmnn__onnx_serialize(m, &out, &size);
            }
            testutil_alloc_arm(0);
            const int failed = testutil_alloc_injected();
            ck_assert_msg(rc == (failed ? FMNN_ENOMEM : FMNN_OK), "phase %d, allocation %ld: %d (%s)", phase, k,
                          rc, fmnn_last_error());
            if (failed)
                ck_assert(fmnn_last_error()[0] != '\0');
            fmnn__free(out);
            fmnn__onnx_free(m);
            ck_assert_msg(testutil_alloc_live() == 0, "phase %d, allocation %ld: %ld leaked", phase, k,
                          testutil_alloc_live());
            testutil_alloc_remove();
            done = !failed;
        }
    }
    fmnn__free(bytes);
}
END_TEST

static Suite *onnx_suite(void)
{
    Suite *s = suite_create("onnx_model");
    TCase *tc = tcase_create("valid");
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_large_initializer);
    tcase_add_test(tc, test_float_encodings);
    tcase_add_test(tc, test_int_encodings);
    tcase_add_test(tc, test_skipped_and_inferred);
    tcase_add_test(tc, test_torch_export);
    suite_add_tcase(s, tc);
    tc = tcase_create("malformed");
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_wrong_wire_type);
    tcase_add_test(tc, test_length_past_end);
    tcase_add_test(tc, test_overlong_varint);
    tcase_add_test(tc, test_bad_tensors);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_group_wire_types);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(onnx_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
