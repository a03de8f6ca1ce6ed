/*
 * onnx_model.c - an ONNX ModelProto's bytes to the structs of
 * onnx_model.h and back, the builder calls and the lookups.
 *
 * Reading takes two passes over each message that holds repeated
 * fields: the first counts them (and checks their wire types), the
 * second allocates exactly that many and fills them, so no count comes
 * from anywhere but the bytes present.  The nesting is the schema's
 * (model, graph, node, attribute, tensor; value, type, shape, dim):
 * a graph inside an attribute is skipped, never parsed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx/onnx_model.h"
#include "onnx/protobuf.h"

/* ---- the arena ---------------------------------------------------------- */

#define ARENA_BLOCK (64 * 1024)
#define BLOCK_HEADER 64 /* keeps the data 64-byte aligned, as fmnn__alloc's blocks are */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
} arena_block;

struct fmnn__onnx_arena {
    arena_block *blocks; /* the current one first */
};

static void arena_free(fmnn__onnx_arena *a)
{
    if (!a)
        return;
    for (arena_block *b = a->blocks, *next; b; b = next) {
        next = b->next;
        fmnn__free(b);
    }
    fmnn__free(a);
}

static size_t align_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

/* size bytes, zeroed, aligned to align (a power of two up to 64).  Large
 * requests get a block of their own, so a block wastes little.  (A
 * block's cap is a multiple of 64, so an aligned used never passes it.) */
static void *arena_alloc(fmnn__onnx_arena *a, size_t size, size_t align)
{
    arena_block *b = a->blocks;
    if (!b || size > b->cap - align_up(b->used, align)) {
        if (size > SIZE_MAX - BLOCK_HEADER - 63) {
            fmnn__error(FMNN_ENOMEM, "ONNX model: %zu bytes are more than memory can hold", size);
            return NULL;
        }
        const int own = size > ARENA_BLOCK / 4;
        const size_t cap = own ? align_up(size, 64) : ARENA_BLOCK;
        arena_block *nb = fmnn__alloc(BLOCK_HEADER + cap, "ONNX model arena");
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (own && b) { /* the current block stays current */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->blocks = nb;
        }
        b = nb;
    }
    const size_t at = align_up(b->used, align);
    b->used = at + size;
    void *p = (unsigned char *)b + BLOCK_HEADER + at;
    memset(p, 0, size);
    return p;
}

static void *arena_array(fmnn__onnx_arena *a, size_t n, size_t size, size_t align)
{
    size_t total;
    if (!fmnn__mul_ok(n, size, &total)) {
        fmnn__error(FMNN_ENOMEM, "ONNX model: %zu elements of %zu bytes are more than memory can hold", n, size);
        return NULL;
    }
    return arena_alloc(a, total ? total : 1, align);
}

static char *arena_strndup(fmnn__onnx_arena *a, const void *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *copy = arena_alloc(a, n + 1, 1);
    if (copy && n)
        memcpy(copy, s, n);
    return copy;
}

static fmnn__onnx_model *model_new(void)
{
    fmnn__onnx_model *m = fmnn__alloc_zeroed(sizeof *m, "ONNX model");
    if (!m)
        return NULL;
    m->arena = fmnn__alloc_zeroed(sizeof *m->arena, "ONNX model arena");
    if (!m->arena) {
        fmnn__free(m);
        return NULL;
    }
    return m;
}

void fmnn__onnx_free(fmnn__onnx_model *model)
{
    if (!model)
        return;
    arena_free(model->arena);
    fmnn__free(model);
}

/* ---- parsing: context and errors ------------------------------------------ */

typedef struct parser {
    fmnn__pb_error error;
    fmnn__onnx_arena *arena;
    char path[200];   /* the field being read, "graph.node[3].attribute[1]" */
    size_t path_len;
} parser;

/* Appends a step to the path; returns the length to go back to. */
static size_t path_push(parser *ps, const char *fmt, ...) FMNN_PRINTF(2, 3);
static size_t path_push(parser *ps, const char *fmt, ...)
{
    const size_t old = ps->path_len;
    if (old + 1 < sizeof ps->path) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(ps->path + old, sizeof ps->path - old, fmt, ap);
        va_end(ap);
        if (n > 0)
            ps->path_len = old + (size_t)n < sizeof ps->path ? old + (size_t)n : sizeof ps->path - 1;
    }
    return old;
}

static void path_pop(parser *ps, size_t len)
{
    ps->path_len = len;
    ps->path[len] = '\0';
}

static void out_of_memory(fmnn__pb_reader *r)
{
    /* fmnn__alloc has recorded the message */
    fmnn__pb_fail(r, FMNN_ENOMEM, fmnn__pb_offset(r), "out of memory");
}

/* The field's wire type must be want; else a failure naming the field. */
static int expect_wire(fmnn__pb_reader *r, const char *name, int wire_type, int want)
{
    if (wire_type == want)
        return 1;
    fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "field %s has wire type %d, not %d", name, wire_type, want);
    return 0;
}

static const char *read_string(parser *ps, fmnn__pb_reader *r, const char *name, int wire_type)
{
    const unsigned char *data;
    size_t len;
    if (!expect_wire(r, name, wire_type, FMNN__PB_LEN) || !fmnn__pb_bytes(r, &data, &len, NULL))
        return NULL;
    char *s = arena_strndup(ps->arena, data, len);
    if (!s)
        out_of_memory(r);
    return s;
}

/* A nested message's reader, after checking the wire type. */
static int read_message(fmnn__pb_reader *r, const char *name, int wire_type, fmnn__pb_reader *sub)
{
    const unsigned char *data;
    size_t len;
    return expect_wire(r, name, wire_type, FMNN__PB_LEN) && fmnn__pb_bytes(r, &data, &len, sub);
}

static int64_t read_int(fmnn__pb_reader *r, const char *name, int wire_type)
{
    if (!expect_wire(r, name, wire_type, FMNN__PB_VARINT))
        return 0;
    return (int64_t)fmnn__pb_varint(r);
}

static float bits_float(uint32_t v)
{
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* The values of a repeated int64 or float field, packed or not, appended
 * at out[*n]; the first pass counted them, so they fit. */
static void read_ints(fmnn__pb_reader *r, int wire_type, int64_t *out, size_t *n)
{
    fmnn__pb_reader v;
    const size_t count = fmnn__pb_values(r, wire_type, FMNN__PB_VARINT, &v);
    for (size_t k = 0; k < count && fmnn__pb_ok(r); k++)
        out[(*n)++] = (int64_t)fmnn__pb_varint(&v);
}

static void read_floats(fmnn__pb_reader *r, int wire_type, float *out, size_t *n)
{
    fmnn__pb_reader v;
    const size_t count = fmnn__pb_values(r, wire_type, FMNN__PB_FIXED32, &v);
    for (size_t k = 0; k < count && fmnn__pb_ok(r); k++)
        out[(*n)++] = bits_float(fmnn__pb_fixed32(&v));
}

/* Adds a repeated scalar field's count to *n (first pass). */
static void count_values(fmnn__pb_reader *r, int wire_type, int elem_wire, size_t *n)
{
    fmnn__pb_reader v;
    *n += fmnn__pb_values(r, wire_type, elem_wire, &v);
}

/* Counts a repeated message field (first pass). */
static void count_message(fmnn__pb_reader *r, const char *name, int wire_type, size_t *n)
{
    fmnn__pb_reader sub;
    if (read_message(r, name, wire_type, &sub))
        (*n)++;
}

/* A count of entries as the int the structs hold. */
static int to_int(fmnn__pb_reader *r, size_t n, const char *what)
{
    if (n > INT32_MAX) {
        fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "%zu %s are more than %d", n, what, INT32_MAX);
        return 0;
    }
    return (int)n;
}

/* ---- parsing: tensors --------------------------------------------------- */

/* More dimensions than the structs hold: valid ONNX, but unsupported. */
static int rank_ok(fmnn__pb_reader *r, size_t rank, size_t at, const char *what)
{
    if (rank <= FMNN__ONNX_MAX_RANK)
        return 1;
    fmnn__pb_fail(r, FMNN_ENOTSUP, at, "a %s of %zu dimensions (at most %d are supported)", what, rank,
                  FMNN__ONNX_MAX_RANK);
    return 0;
}

static int64_t le_int(const unsigned char *b, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return bytes == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
}

/* Checks a tensor's data against its dims and decodes it. */
static void tensor_data(parser *ps, fmnn__pb_reader *r, fmnn__onnx_tensor *t, size_t at, const unsigned char *raw,
                        size_t raw_len, int has_raw, fmnn__pb_reader *msg, size_t n_typed)
{
    size_t count = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0) {
            fmnn__pb_fail(r, FMNN_EFORMAT, at, "dims[%d] is %lld, negative", d, (long long)t->dims[d]);
            return;
        }
        /* 16 bytes per value bounds every element type's size. */
        if ((uint64_t)t->dims[d] > SIZE_MAX / 16 || !fmnn__mul_ok(count, (size_t)t->dims[d], &count) ||
            count > SIZE_MAX / 16) {
            fmnn__pb_fail(r, FMNN_EFORMAT, at, "the product of the dims overflows");
            return;
        }
    }
    t->count = count;
    if (t->external)
        return;
    const int is_float = t->data_type == FMNN__ONNX_FLOAT;
    const int elem = is_float || t->data_type == FMNN__ONNX_INT32 ? 4 : t->data_type == FMNN__ONNX_INT64 ? 8 : 0;
    if (elem == 0)
        return; /* a type whose values the library does not read */
    if (has_raw && n_typed > 0) {
        fmnn__pb_fail(r, FMNN_EFORMAT, at, "both raw_data and a typed data field are given");
        return;
    }
    const size_t have = has_raw ? raw_len : n_typed * (size_t)elem;
    if (have / (size_t)elem != count || have % (size_t)elem != 0) {
        fmnn__pb_fail(r, FMNN_EFORMAT, at, "%zu data bytes for %zu values of %d bytes", have, count, elem);
        return;
    }
    if (count == 0)
        return;
    void *values = arena_array(ps->arena, count, is_float ? sizeof(float) : sizeof(int64_t), 64);
    if (!values) {
        out_of_memory(r);
        return;
    }
    if (is_float)
        t->floats = values;
    else
        t->ints = values;
    if (has_raw) {
        for (size_t i = 0; i < count; i++) {
            if (is_float)
                t->floats[i] = bits_float((uint32_t)le_int(raw + 4 * i, 4));
            else
                t->ints[i] = le_int(raw + (size_t)elem * i, elem);
        }
        return;
    }
    /* The second pass over the message, for the typed field. */
    const uint32_t want = is_float ? 4 : t->data_type == FMNN__ONNX_INT32 ? 5 : 7;
    size_t n = 0;
    uint32_t field;
    int wt;
    while (fmnn__pb_next(msg, &field, &wt)) {
        if (field != want)
            fmnn__pb_skip(msg, wt);
        else if (is_float)
            read_floats(msg, wt, t->floats, &n);
        else
            read_ints(msg, wt, t->ints, &n);
    }
    if (t->data_type == FMNN__ONNX_INT32)
        for (size_t i = 0; i < n; i++)
            t->ints[i] = (int32_t)(uint32_t)t->ints[i]; /* an int32 varint is sign-extended */
}

static void parse_tensor(parser *ps, fmnn__pb_reader *r, fmnn__onnx_tensor *t)
{
    const fmnn__pb_reader start = *r;
    const size_t at = fmnn__pb_offset(r);
    const unsigned char *raw = NULL;
    size_t raw_len = 0, n_dims = 0, n_float = 0, n_int32 = 0, n_int64 = 0;
    int has_raw = 0;
    uint32_t field;
    int wt;
    t->name = "";
    while (fmnn__pb_next(r, &field, &wt)) {
        switch (field) {
        case 1:
            count_values(r, wt, FMNN__PB_VARINT, &n_dims);
            break;
        case 2:
            t->data_type = (int32_t)read_int(r, "data_type", wt);
            break;
        case 4:
            count_values(r, wt, FMNN__PB_FIXED32, &n_float);
            break;
        case 5:
            count_values(r, wt, FMNN__PB_VARINT, &n_int32);
            break;
        case 7:
            count_values(r, wt, FMNN__PB_VARINT, &n_int64);
            break;
        case 8:
            t->name = read_string(ps, r, "name", wt);
            break;
        case 9:
            has_raw = expect_wire(r, "raw_data", wt, FMNN__PB_LEN) && fmnn__pb_bytes(r, &raw, &raw_len, NULL);
            break;
        case 13: {
            fmnn__pb_reader entry;
            if (read_message(r, "external_data", wt, &entry))
                t->external = 1;
            break;
        }
        case 14:
            if (read_int(r, "data_location", wt) == 1)
                t->external = 1;
            break;
        default:
            fmnn__pb_skip(r, wt);
        }
    }
    if (!fmnn__pb_ok(r) || !rank_ok(r, n_dims, at, "tensor"))
        return;
    /* Second pass: the dims. */
    fmnn__pb_reader again = start;
    size_t n = 0;
    while (fmnn__pb_next(&again, &field, &wt)) {
        if (field == 1)
            read_ints(&again, wt, t->dims, &n);
        else
            fmnn__pb_skip(&again, wt);
    }
    t->rank = (int)n;
    const size_t n_typed = t->data_type == FMNN__ONNX_FLOAT   ? n_float
                           : t->data_type == FMNN__ONNX_INT32 ? n_int32
                           : t->data_type == FMNN__ONNX_INT64 ? n_int64
                                                              : 0;
    again = start;
    tensor_data(ps, r, t, at, raw, raw_len, has_raw, &again, n_typed);
}

/* ---- parsing: attributes and nodes ---------------------------------------- */

/* The type an attribute has by the value field that field number holds
 * (for files that leave out the type, IR version 1). */
static int32_t attr_type_of_field(uint32_t field)
{
    static const int32_t types[23] = { [2] = FMNN__ONNX_ATTR_FLOAT, [3] = FMNN__ONNX_ATTR_INT,
                                       [4] = FMNN__ONNX_ATTR_STRING, [5] = FMNN__ONNX_ATTR_TENSOR,
                                       [6] = FMNN__ONNX_ATTR_GRAPH, [7] = FMNN__ONNX_ATTR_FLOATS,
                                       [8] = FMNN__ONNX_ATTR_INTS, [9] = FMNN__ONNX_ATTR_STRINGS,
                                       [10] = 9, [11] = 10, [14] = 13, [22] = 11 };
    return field < 23 ? types[field] : 0;
}

static void parse_attr(parser *ps, fmnn__pb_reader *r, fmnn__onnx_attr *a)
{
    const fmnn__pb_reader start = *r;
    int32_t inferred = 0;
    int has_type = 0;
    uint32_t field;
    int wt;
    a->name = "";
    while (fmnn__pb_next(r, &field, &wt)) {
        if (!inferred)
            inferred = attr_type_of_field(field);
        switch (field) {
        case 1:
            a->name = read_string(ps, r, "name", wt);
            break;
        case 2:
            if (expect_wire(r, "f", wt, FMNN__PB_FIXED32))
                a->f = bits_float(fmnn__pb_fixed32(r));
            break;
        case 3:
            a->i = read_int(r, "i", wt);
            break;
        case 4: {
            const unsigned char *data;
            if (expect_wire(r, "s", wt, FMNN__PB_LEN) && fmnn__pb_bytes(r, &data, &a->s_len, NULL) &&
                !(a->s = arena_strndup(ps->arena, data, a->s_len)))
                out_of_memory(r);
            break;
        }
        case 5: {
            fmnn__pb_reader sub;
            if (!read_message(r, "t", wt, &sub))
                break;
            if (!(a->t = arena_alloc(ps->arena, sizeof *a->t, 16))) {
                out_of_memory(r);
                break;
            }
            const size_t mark = path_push(ps, ".t");
            parse_tensor(ps, &sub, a->t);
            path_pop(ps, mark);
            break;
        }
        case 7:
            count_values(r, wt, FMNN__PB_FIXED32, &a->n_floats);
            break;
        case 8:
            count_values(r, wt, FMNN__PB_VARINT, &a->n_ints);
            break;
        case 20:
            a->type = (int32_t)read_int(r, "type", wt);
            has_type = 1;
            break;
        default: /* a graph (g, graphs) among them: never parsed here */
            fmnn__pb_skip(r, wt);
        }
    }
    if (!fmnn__pb_ok(r))
        return;
    if (!has_type)
        a->type = inferred;
    /* Only the member the type names is kept. */
    if (a->type != FMNN__ONNX_ATTR_FLOAT)
        a->f = 0;
    if (a->type != FMNN__ONNX_ATTR_INT)
        a->i = 0;
    if (a->type != FMNN__ONNX_ATTR_STRING) {
        a->s = NULL;
        a->s_len = 0;
    }
    if (a->type != FMNN__ONNX_ATTR_TENSOR)
        a->t = NULL;
    if (a->type != FMNN__ONNX_ATTR_FLOATS)
        a->n_floats = 0;
    if (a->type != FMNN__ONNX_ATTR_INTS)
        a->n_ints = 0;
    if (a->n_floats == 0 && a->n_ints == 0)
        return;
    a->floats = a->n_floats ? arena_array(ps->arena, a->n_floats, sizeof(float), 64) : NULL;
    a->ints = a->n_ints ? arena_array(ps->arena, a->n_ints, sizeof(int64_t), 64) : NULL;
    if ((a->n_floats && !a->floats) || (a->n_ints && !a->ints)) {
        out_of_memory(r);
        return;
    }
    fmnn__pb_reader again = start;
    size_t n_floats = 0, n_ints = 0;
    while (fmnn__pb_next(&again, &field, &wt)) {
        if (field == 7 && a->floats)
            read_floats(&again, wt, a->floats, &n_floats);
        else if (field == 8 && a->ints)
            read_ints(&again, wt, a->ints, &n_ints);
        else
            fmnn__pb_skip(&again, wt);
    }
}

static void parse_node(parser *ps, fmnn__pb_reader *r, fmnn__onnx_node *node)
{
    const fmnn__pb_reader start = *r;
    size_t n_in = 0, n_out = 0, n_attrs = 0;
    uint32_t field;
    int wt;
    node->name = node->op_type = node->domain = "";
    while (fmnn__pb_next(r, &field, &wt)) {
        if (field == 1 || field == 2 || field == 5) {
            count_message(r, field == 1 ? "input" : field == 2 ? "output" : "attribute", wt,
                          field == 1 ? &n_in : field == 2 ? &n_out : &n_attrs);
        } else if (field == 3) {
            node->name = read_string(ps, r, "name", wt);
        } else if (field == 4) {
            node->op_type = read_string(ps, r, "op_type", wt);
        } else if (field == 7) {
            node->domain = read_string(ps, r, "domain", wt);
        } else {
            fmnn__pb_skip(r, wt);
        }
    }
    node->n_inputs = to_int(r, n_in, "inputs");
    node->n_outputs = to_int(r, n_out, "outputs");
    node->n_attrs = to_int(r, n_attrs, "attributes");
    if (!fmnn__pb_ok(r))
        return;
    node->inputs = arena_array(ps->arena, n_in, sizeof *node->inputs, 16);
    node->outputs = arena_array(ps->arena, n_out, sizeof *node->outputs, 16);
    node->attrs = arena_array(ps->arena, n_attrs, sizeof *node->attrs, 16);
    if (!node->inputs || !node->outputs || !node->attrs) {
        out_of_memory(r);
        return;
    }
    fmnn__pb_reader again = start;
    int i = 0, o = 0, k = 0;
    while (fmnn__pb_next(&again, &field, &wt)) {
        if (field == 1) {
            node->inputs[i++] = read_string(ps, &again, "input", wt);
        } else if (field == 2) {
            node->outputs[o++] = read_string(ps, &again, "output", wt);
        } else if (field == 5) {
            fmnn__pb_reader sub;
            read_message(&again, "attribute", wt, &sub);
            const size_t mark = path_push(ps, ".attribute[%d]", k);
            parse_attr(ps, &sub, &node->attrs[k++]);
            path_pop(ps, mark);
        } else {
            fmnn__pb_skip(&again, wt);
        }
    }
}

/* ---- parsing: graph inputs and outputs ------------------------------------ */

/* A TensorShapeProto: its dims, counted first (rank at most the limit). */
static void parse_shape(parser *ps, fmnn__pb_reader *r, fmnn__onnx_value *v)
{
    const fmnn__pb_reader start = *r;
    const size_t at = fmnn__pb_offset(r);
    size_t n = 0;
    uint32_t field;
    int wt;
    while (fmnn__pb_next(r, &field, &wt)) {
        if (field == 1)
            count_message(r, "dim", wt, &n);
        else
            fmnn__pb_skip(r, wt);
    }
    if (!fmnn__pb_ok(r) || !rank_ok(r, n, at, "shape"))
        return;
    fmnn__pb_reader again = start;
    v->rank = 0;
    while (fmnn__pb_next(&again, &field, &wt)) {
        if (field != 1) {
            fmnn__pb_skip(&again, wt);
            continue;
        }
        fmnn__pb_reader dim;
        read_message(&again, "dim", wt, &dim);
        const int d = v->rank++;
        v->dims[d] = -1;
        v->dim_params[d] = NULL;
        /* dim_value and dim_param are a oneof: the last one given wins. */
        while (fmnn__pb_next(&dim, &field, &wt)) {
            if (field == 1) {
                const size_t value_at = fmnn__pb_offset(&dim);
                v->dims[d] = read_int(&dim, "dim_value", wt);
                v->dim_params[d] = NULL;
                if (v->dims[d] < 0)
                    fmnn__pb_fail(&dim, FMNN_EFORMAT, value_at, "dim[%d] is %lld, negative", d,
                                  (long long)v->dims[d]);
            } else if (field == 2) {
                v->dim_params[d] = read_string(ps, &dim, "dim_param", wt);
                v->dims[d] = -1;
            } else {
                fmnn__pb_skip(&dim, wt);
            }
        }
    }
}

static void parse_value(parser *ps, fmnn__pb_reader *r, fmnn__onnx_value *v)
{
    uint32_t field;
    int wt;
    v->name = "";
    v->rank = -1;
    while (fmnn__pb_next(r, &field, &wt)) {
        if (field == 1) {
            v->name = read_string(ps, r, "name", wt);
            continue;
        }
        if (field != 2) {
            fmnn__pb_skip(r, wt);
            continue;
        }
        fmnn__pb_reader type, tensor;
        if (!read_message(r, "type", wt, &type))
            break;
        while (fmnn__pb_next(&type, &field, &wt)) {
            if (field != 1) { /* sequences, maps and the like: no tensor type */
                fmnn__pb_skip(&type, wt);
                continue;
            }
            if (!read_message(&type, "type.tensor_type", wt, &tensor))
                break;
            while (fmnn__pb_next(&tensor, &field, &wt)) {
                if (field == 1) {
                    v->elem_type = (int32_t)read_int(&tensor, "elem_type", wt);
                } else if (field == 2) {
                    fmnn__pb_reader shape;
                    if (read_message(&tensor, "shape", wt, &shape))
                        parse_shape(ps, &shape, v);
                } else {
                    fmnn__pb_skip(&tensor, wt);
                }
            }
        }
    }
}

/* ---- parsing: graph and model --------------------------------------------- */

static void parse_graph(parser *ps, fmnn__pb_reader *r, fmnn__onnx_model *m)
{
    const fmnn__pb_reader start = *r;
    size_t n_nodes = 0, n_inits = 0, n_in = 0, n_out = 0, n_sparse = 0;
    uint32_t field;
    int wt;
    while (fmnn__pb_next(r, &field, &wt)) {
        switch (field) {
        case 1:
            count_message(r, "node", wt, &n_nodes);
            break;
        case 2:
            m->graph_name = read_string(ps, r, "name", wt);
            break;
        case 5:
            count_message(r, "initializer", wt, &n_inits);
            break;
        case 11:
            count_message(r, "input", wt, &n_in);
            break;
        case 12:
            count_message(r, "output", wt, &n_out);
            break;
        case 15:
            count_message(r, "sparse_initializer", wt, &n_sparse);
            break;
        default:
            fmnn__pb_skip(r, wt);
        }
    }
    m->n_nodes = to_int(r, n_nodes, "nodes");
    m->n_initializers = to_int(r, n_inits, "initializers");
    m->n_inputs = to_int(r, n_in, "inputs");
    m->n_outputs = to_int(r, n_out, "outputs");
    m->n_sparse_initializers = to_int(r, n_sparse, "sparse initializers");
    if (!fmnn__pb_ok(r))
        return;
    m->nodes = arena_array(ps->arena, n_nodes, sizeof *m->nodes, 16);
    m->initializers = arena_array(ps->arena, n_inits, sizeof *m->initializers, 16);
    m->inputs = arena_array(ps->arena, n_in, sizeof *m->inputs, 16);
    m->outputs = arena_array(ps->arena, n_out, sizeof *m->outputs, 16);
    if (!m->nodes || !m->initializers || !m->inputs || !m->outputs) {
        out_of_memory(r);
        return;
    }
    fmnn__pb_reader again = start;
    int nodes = 0, inits = 0, ins = 0, outs = 0;
    while (fmnn__pb_next(&again, &field, &wt)) {
        fmnn__pb_reader sub;
        size_t mark;
        switch (field) {
        case 1:
            read_message(&again, "node", wt, &sub);
            mark = path_push(ps, ".node[%d]", nodes);
            parse_node(ps, &sub, &m->nodes[nodes++]);
            break;
        case 5:
            read_message(&again, "initializer", wt, &sub);
            mark = path_push(ps, ".initializer[%d]", inits);
            parse_tensor(ps, &sub, &m->initializers[inits++]);
            break;
        case 11:
            read_message(&again, "input", wt, &sub);
            mark = path_push(ps, ".input[%d]", ins);
            parse_value(ps, &sub, &m->inputs[ins++]);
            break;
        case 12:
            read_message(&again, "output", wt, &sub);
            mark = path_push(ps, ".output[%d]", outs);
            parse_value(ps, &sub, &m->outputs[outs++]);
            break;
        default:
            fmnn__pb_skip(&again, wt);
            continue;
        }
        path_pop(ps, mark);
    }
}

static void parse_opset(parser *ps, fmnn__pb_reader *r, fmnn__onnx_model *m)
{
    const char *domain = "";
    int64_t version = 0;
    uint32_t field;
    int wt;
    while (fmnn__pb_next(r, &field, &wt)) {
        if (field == 1)
            domain = read_string(ps, r, "domain", wt);
        else if (field == 2)
            version = read_int(r, "version", wt);
        else
            fmnn__pb_skip(r, wt);
    }
    if (!fmnn__pb_ok(r))
        return;
    if (strcmp(domain, "") == 0 || strcmp(domain, "ai.onnx") == 0)
        m->opset = version;
    else
        m->n_other_opsets++;
}

static void parse_model(parser *ps, fmnn__pb_reader *r, fmnn__onnx_model *m)
{
    int has_graph = 0;
    uint32_t field;
    int wt;
    while (fmnn__pb_next(r, &field, &wt)) {
        fmnn__pb_reader sub;
        size_t mark;
        switch (field) {
        case 1:
            m->ir_version = read_int(r, "ir_version", wt);
            break;
        case 2:
            m->producer_name = read_string(ps, r, "producer_name", wt);
            break;
        case 3:
            m->producer_version = read_string(ps, r, "producer_version", wt);
            break;
        case 7:
            if (has_graph) {
                fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "a second graph");
                break;
            }
            if (!read_message(r, "graph", wt, &sub))
                break;
            has_graph = 1;
            mark = path_push(ps, "graph");
            parse_graph(ps, &sub, m);
            path_pop(ps, mark);
            break;
        case 8:
            if (!read_message(r, "opset_import", wt, &sub))
                break;
            mark = path_push(ps, "opset_import");
            parse_opset(ps, &sub, m);
            path_pop(ps, mark);
            break;
        default:
            fmnn__pb_skip(r, wt);
        }
    }
    if (fmnn__pb_ok(r) && !has_graph)
        fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "the model has no graph");
}

int fmnn__onnx_parse(const void *data, size_t size, const char *what, fmnn__onnx_model **out)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn__onnx_parse: out is NULL");
    *out = NULL;
    if (!what)
        what = "memory";
    if (!data && size > 0)
        return fmnn__error(FMNN_EINVAL, "fmnn__onnx_parse: %s: data is NULL", what);
    if (size == 0)
        return fmnn__error(FMNN_EFORMAT, "%s: an empty file is not an ONNX model", what);
    fmnn__onnx_model *m = model_new();
    if (!m)
        return FMNN_ENOMEM;
    parser ps = { .arena = m->arena };
    fmnn__pb_reader r;
    fmnn__pb_init(&r, &ps.error, data, size);
    ps.error.context = ps.path;
    m->producer_name = m->producer_version = m->graph_name = "";
    parse_model(&ps, &r, m);
    const fmnn__pb_error *e = &ps.error;
    if (e->status != FMNN_OK) {
        fmnn__onnx_free(m);
        if (e->status == FMNN_ENOMEM)
            return FMNN_ENOMEM; /* with the allocator's message */
        return fmnn__error(e->status, "%s: not a valid ONNX model: %s%sat byte %zu: %s", what, e->where,
                           e->where[0] ? " " : "", e->offset, e->message);
    }
    *out = m;
    return FMNN_OK;
}

/* ---- serializing ---------------------------------------------------------- */

static void put_int(fmnn__pb_writer *w, uint32_t field, int64_t v)
{
    fmnn__pb_put_tag(w, field, FMNN__PB_VARINT);
    fmnn__pb_put_varint(w, (uint64_t)v);
}

/* A string field, left out when empty (protobuf's default). */
static void put_nonempty(fmnn__pb_writer *w, uint32_t field, const char *s)
{
    if (s && s[0])
        fmnn__pb_put_string(w, field, s);
}

static uint32_t float_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    return v;
}

static void put_packed_ints(fmnn__pb_writer *w, uint32_t field, size_t n, const int64_t *v)
{
    if (n == 0)
        return;
    const size_t start = fmnn__pb_begin(w, field);
    for (size_t i = 0; i < n; i++)
        fmnn__pb_put_varint(w, (uint64_t)v[i]);
    fmnn__pb_end(w, start);
}

static void put_tensor(fmnn__pb_writer *w, uint32_t field, const fmnn__onnx_tensor *t)
{
    const size_t start = fmnn__pb_begin(w, field);
    put_packed_ints(w, 1, (size_t)t->rank, t->dims);
    put_int(w, 2, t->data_type);
    put_nonempty(w, 8, t->name);
    const int elem = t->data_type == FMNN__ONNX_INT64 ? 8 : 4;
    if ((t->floats || t->ints) && t->count > 0 && !w->failed) {
        /* raw_data, little-endian, in blocks through a small buffer */
        fmnn__pb_put_tag(w, 9, FMNN__PB_LEN);
        fmnn__pb_put_varint(w, (uint64_t)t->count * (uint64_t)elem);
        unsigned char block[4096];
        size_t used = 0;
        for (size_t i = 0; i < t->count; i++) {
            const uint64_t v = t->floats ? float_bits(t->floats[i]) : (uint64_t)t->ints[i];
            for (int b = 0; b < elem; b++)
                block[used++] = (unsigned char)(v >> (8 * b));
            if (used == sizeof block || i + 1 == t->count) {
                fmnn__pb_put_raw(w, block, used);
                used = 0;
            }
        }
    }
    if (t->external)
        put_int(w, 14, 1);
    fmnn__pb_end(w, start);
}

static void put_attr(fmnn__pb_writer *w, const fmnn__onnx_attr *a)
{
    const size_t start = fmnn__pb_begin(w, 5);
    put_nonempty(w, 1, a->name);
    put_int(w, 20, a->type);
    switch (a->type) {
    case FMNN__ONNX_ATTR_FLOAT:
        fmnn__pb_put_tag(w, 2, FMNN__PB_FIXED32);
        fmnn__pb_put_fixed32(w, float_bits(a->f));
        break;
    case FMNN__ONNX_ATTR_INT:
        put_int(w, 3, a->i);
        break;
    case FMNN__ONNX_ATTR_STRING:
        if (a->s)
            fmnn__pb_put_bytes(w, 4, a->s, a->s_len);
        break;
    case FMNN__ONNX_ATTR_TENSOR:
        if (a->t)
            put_tensor(w, 5, a->t);
        break;
    case FMNN__ONNX_ATTR_FLOATS:
        if (a->n_floats) {
            const size_t run = fmnn__pb_begin(w, 7);
            for (size_t i = 0; i < a->n_floats; i++)
                fmnn__pb_put_fixed32(w, float_bits(a->floats[i]));
            fmnn__pb_end(w, run);
        }
        break;
    case FMNN__ONNX_ATTR_INTS:
        put_packed_ints(w, 8, a->n_ints, a->ints);
        break;
    default: /* values the library does not keep */
        break;
    }
    fmnn__pb_end(w, start);
}

static void put_node(fmnn__pb_writer *w, const fmnn__onnx_node *node)
{
    const size_t start = fmnn__pb_begin(w, 1);
    for (int i = 0; i < node->n_inputs; i++)
        fmnn__pb_put_string(w, 1, node->inputs[i]);
    for (int i = 0; i < node->n_outputs; i++)
        fmnn__pb_put_string(w, 2, node->outputs[i]);
    put_nonempty(w, 3, node->name);
    put_nonempty(w, 4, node->op_type);
    put_nonempty(w, 7, node->domain);
    for (int i = 0; i < node->n_attrs; i++)
        put_attr(w, &node->attrs[i]);
    fmnn__pb_end(w, start);
}

/* A ValueInfoProto: name, then type.tensor_type with elem_type and shape. */
static void put_value(fmnn__pb_writer *w, uint32_t field, const fmnn__onnx_value *v)
{
    const size_t start = fmnn__pb_begin(w, field);
    put_nonempty(w, 1, v->name);
    if (v->elem_type != 0 || v->rank >= 0) {
        const size_t type = fmnn__pb_begin(w, 2);
        const size_t tensor = fmnn__pb_begin(w, 1);
        if (v->elem_type != 0)
            put_int(w, 1, v->elem_type);
        if (v->rank >= 0) {
            const size_t shape = fmnn__pb_begin(w, 2);
            for (int d = 0; d < v->rank; d++) {
                const size_t dim = fmnn__pb_begin(w, 1);
                if (v->dim_params[d])
                    fmnn__pb_put_string(w, 2, v->dim_params[d]);
                else if (v->dims[d] >= 0)
                    put_int(w, 1, v->dims[d]);
                fmnn__pb_end(w, dim);
            }
            fmnn__pb_end(w, shape);
        }
        fmnn__pb_end(w, tensor);
        fmnn__pb_end(w, type);
    }
    fmnn__pb_end(w, start);
}

int fmnn__onnx_serialize(const fmnn__onnx_model *m, unsigned char **data, size_t *size)
{
    if (!data || !size)
        return fmnn__error(FMNN_EINVAL, "fmnn__onnx_serialize: a NULL argument");
    *data = NULL;
    *size = 0;
    if (!m || m->failed) /* fmnn__onnx_new or a builder call ran out */
        return fmnn__error(FMNN_ENOMEM, "fmnn__onnx_serialize: building the model ran out of memory");
    fmnn__pb_writer w = { 0 };
    put_int(&w, 1, m->ir_version);
    if (m->opset != 0) {
        const size_t opset = fmnn__pb_begin(&w, 8);
        fmnn__pb_put_string(&w, 1, "");
        put_int(&w, 2, m->opset);
        fmnn__pb_end(&w, opset);
    }
    put_nonempty(&w, 2, m->producer_name);
    put_nonempty(&w, 3, m->producer_version);
    const size_t graph = fmnn__pb_begin(&w, 7);
    for (int i = 0; i < m->n_nodes; i++)
        put_node(&w, &m->nodes[i]);
    put_nonempty(&w, 2, m->graph_name);
    for (int i = 0; i < m->n_initializers; i++)
        put_tensor(&w, 5, &m->initializers[i]);
    for (int i = 0; i < m->n_inputs; i++)
        put_value(&w, 11, &m->inputs[i]);
    for (int i = 0; i < m->n_outputs; i++)
        put_value(&w, 12, &m->outputs[i]);
    fmnn__pb_end(&w, graph);
    if (w.failed) {
        fmnn__free(w.data);
        return FMNN_ENOMEM;
    }
    *data = w.data;
    *size = w.size;
    return FMNN_OK;
}

/* ---- building ------------------------------------------------------------- */

/* Memory for a builder call; NULL (and the model failed) when there is none. */
static void *build_alloc(fmnn__onnx_model *m, size_t n, size_t size)
{
    if (m->failed)
        return NULL;
    void *p = arena_array(m->arena, n, size, n * size >= 64 ? 64 : 16);
    if (!p)
        m->failed = 1;
    return p;
}

static const char *build_string(fmnn__onnx_model *m, const char *s)
{
    if (m->failed)
        return NULL;
    char *copy = arena_strndup(m->arena, s ? s : "", s ? strlen(s) : 0);
    if (!copy)
        m->failed = 1;
    return copy;
}

/*
 * Makes room for one more entry in an array of n entries built in the
 * arena.  Its capacity is implied by n (4, or the next power of two), so
 * it doubles when n reaches one: the arena keeps the old copy, which adds at
 * most as much again.
 */
static void *grow(fmnn__onnx_model *m, void *array, int n, size_t size)
{
    const int full = n == 0 || (n >= 4 && (n & (n - 1)) == 0);
    if (!full)
        return array;
    void *bigger = build_alloc(m, n == 0 ? 4 : 2 * (size_t)n, size);
    if (bigger && n > 0)
        memcpy(bigger, array, (size_t)n * size);
    return bigger;
}

fmnn__onnx_model *fmnn__onnx_new(int64_t ir_version, int64_t opset, const char *producer_name,
                                 const char *producer_version, const char *graph_name)
{
    fmnn__onnx_model *m = model_new();
    if (!m)
        return NULL;
    m->ir_version = ir_version;
    m->opset = opset;
    m->producer_name = build_string(m, producer_name);
    m->producer_version = build_string(m, producer_version);
    m->graph_name = build_string(m, graph_name);
    if (m->failed) {
        fmnn__onnx_free(m);
        return NULL;
    }
    return m;
}

const char *fmnn__onnx_printf(fmnn__onnx_model *m, const char *fmt, ...)
{
    if (!m || m->failed)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        m->failed = 1;
        return NULL;
    }
    char *s = build_alloc(m, (size_t)n + 1, 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

fmnn__onnx_node *fmnn__onnx_add_node(fmnn__onnx_model *m, const char *op_type, const char *name, int n_in,
                                     const char *const *inputs, const char *output)
{
    if (!m || m->failed || n_in < 0)
        return NULL;
    fmnn__onnx_node *nodes = grow(m, m->nodes, m->n_nodes, sizeof *m->nodes);
    if (!nodes)
        return NULL;
    m->nodes = nodes;
    fmnn__onnx_node node = { .op_type = build_string(m, op_type), .name = build_string(m, name),
                             .domain = "", .n_inputs = n_in, .n_outputs = 1 };
    node.inputs = build_alloc(m, (size_t)n_in, sizeof *node.inputs);
    node.outputs = build_alloc(m, 1, sizeof *node.outputs);
    for (int i = 0; i < n_in && node.inputs; i++)
        node.inputs[i] = build_string(m, inputs[i]);
    if (node.outputs)
        node.outputs[0] = build_string(m, output);
    if (m->failed)
        return NULL;
    m->nodes[m->n_nodes] = node;
    return &m->nodes[m->n_nodes++];
}

/* A new attribute of node, or NULL. */
static fmnn__onnx_attr *add_attr(fmnn__onnx_model *m, fmnn__onnx_node *node, const char *name, int32_t type)
{
    if (!m || !node || m->failed)
        return NULL;
    fmnn__onnx_attr *attrs = grow(m, node->attrs, node->n_attrs, sizeof *node->attrs);
    const char *copy = build_string(m, name);
    if (!attrs || !copy)
        return NULL;
    node->attrs = attrs;
    fmnn__onnx_attr *a = &node->attrs[node->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = copy;
    a->type = type;
    return a;
}

void fmnn__onnx_attr_int(fmnn__onnx_model *m, fmnn__onnx_node *node, const char *name, int64_t v)
{
    fmnn__onnx_attr *a = add_attr(m, node, name, FMNN__ONNX_ATTR_INT);
    if (a)
        a->i = v;
}

void fmnn__onnx_attr_float(fmnn__onnx_model *m, fmnn__onnx_node *node, const char *name, float v)
{
    fmnn__onnx_attr *a = add_attr(m, node, name, FMNN__ONNX_ATTR_FLOAT);
    if (a)
        a->f = v;
}

void fmnn__onnx_attr_ints(fmnn__onnx_model *m, fmnn__onnx_node *node, const char *name, size_t n,
                          const int64_t *v)
{
    if (!m)
        return;
    int64_t *ints = build_alloc(m, n, sizeof *ints);
    fmnn__onnx_attr *a = add_attr(m, node, name, FMNN__ONNX_ATTR_INTS);
    if (!a || !ints)
        return;
    if (n)
        memcpy(ints, v, n * sizeof *ints);
    a->ints = ints;
    a->n_ints = n;
}

/* An initializer with its dims set and room for its values; NULL for a
 * bad rank or dims, or without memory. */
static fmnn__onnx_tensor *add_initializer(fmnn__onnx_model *m, const char *name, int32_t data_type, int rank,
                                          const int64_t *dims)
{
    if (!m || m->failed)
        return NULL;
    size_t count = 1;
    for (int d = 0; d < rank; d++)
        if (dims[d] < 0 || !fmnn__mul_ok(count, (size_t)dims[d], &count))
            rank = -1;
    if (rank < 0 || rank > FMNN__ONNX_MAX_RANK) {
        fmnn__error(FMNN_EINVAL, "fmnn__onnx_add_*: initializer %s has a bad rank or dims", name);
        m->failed = 1;
        return NULL;
    }
    fmnn__onnx_tensor *inits = grow(m, m->initializers, m->n_initializers, sizeof *m->initializers);
    if (!inits)
        return NULL;
    m->initializers = inits;
    fmnn__onnx_tensor t = { .name = build_string(m, name), .data_type = data_type, .rank = rank, .count = count };
    if (rank > 0)
        memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    if (data_type == FMNN__ONNX_FLOAT)
        t.floats = build_alloc(m, count, sizeof(float));
    else
        t.ints = build_alloc(m, count, sizeof(int64_t));
    if (m->failed)
        return NULL;
    m->initializers[m->n_initializers] = t;
    return &m->initializers[m->n_initializers++];
}

fmnn__onnx_tensor *fmnn__onnx_add_floats(fmnn__onnx_model *m, const char *name, int rank, const int64_t *dims,
                                         const float *values)
{
    fmnn__onnx_tensor *t = add_initializer(m, name, FMNN__ONNX_FLOAT, rank, dims);
    if (t && t->count)
        memcpy(t->floats, values, t->count * sizeof *values);
    return t;
}

fmnn__onnx_tensor *fmnn__onnx_add_int64s(fmnn__onnx_model *m, const char *name, int rank, const int64_t *dims,
                                         const int64_t *values)
{
    fmnn__onnx_tensor *t = add_initializer(m, name, FMNN__ONNX_INT64, rank, dims);
    if (t && t->count)
        memcpy(t->ints, values, t->count * sizeof *values);
    return t;
}

static void add_value(fmnn__onnx_model *m, fmnn__onnx_value **values, int *n, const char *name, int rank,
                      const int64_t *dims, const char *dim_param)
{
    if (m->failed)
        return;
    if (rank < 0 || rank > FMNN__ONNX_MAX_RANK) {
        fmnn__error(FMNN_EINVAL, "fmnn__onnx_add_input/output: %s has rank %d", name, rank);
        m->failed = 1;
        return;
    }
    fmnn__onnx_value *grown = grow(m, *values, *n, sizeof **values);
    if (!grown)
        return;
    *values = grown;
    fmnn__onnx_value v = { .name = build_string(m, name), .elem_type = FMNN__ONNX_FLOAT, .rank = rank };
    for (int d = 0; d < rank; d++) {
        v.dims[d] = dims[d] < 0 ? -1 : dims[d];
        if (dims[d] < 0)
            v.dim_params[d] = build_string(m, dim_param);
    }
    if (!m->failed)
        (*values)[(*n)++] = v;
}

void fmnn__onnx_add_input(fmnn__onnx_model *m, const char *name, int rank, const int64_t *dims,
                          const char *dim_param)
{
    if (m)
        add_value(m, &m->inputs, &m->n_inputs, name, rank, dims, dim_param);
}

void fmnn__onnx_add_output(fmnn__onnx_model *m, const char *name, int rank, const int64_t *dims,
                           const char *dim_param)
{
    if (m)
        add_value(m, &m->outputs, &m->n_outputs, name, rank, dims, dim_param);
}

/* ---- lookups -------------------------------------------------------------- */

const fmnn__onnx_attr *fmnn__onnx_node_attr(const fmnn__onnx_node *node, const char *name)
{
    for (int i = 0; node && i < node->n_attrs; i++)
        if (node->attrs[i].name && strcmp(node->attrs[i].name, name) == 0)
            return &node->attrs[i];
    return NULL;
}

const fmnn__onnx_tensor *fmnn__onnx_initializer(const fmnn__onnx_model *model, const char *name)
{
    for (int i = 0; model && i < model->n_initializers; i++)
        if (strcmp(model->initializers[i].name, name) == 0)
            return &model->initializers[i];
    return NULL;
}
