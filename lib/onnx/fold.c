/*
 * fold.c - the small constant subgraphs ONNX exporters leave behind,
 * computed once at import.
 *
 * torch.onnx.export writes ZeroPad2d's pads, for one, as a dozen nodes
 * (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast) of constant
 * inputs.  The importer needs only the values they compute: each node of
 * such an op whose inputs are all constants is evaluated here, in graph
 * order, and its output becomes one more constant.  Only small integer
 * or float tensors are folded; anything larger is left for the walk,
 * which refuses it.
 */
#include <string.h>

#include "onnx/fold.h"

/* Folded tensors are shapes and pads: a few values. */
#define MAX_FOLDED_VALUES 65536

static size_t count_of(int rank, const int64_t *dims)
{
    size_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= (size_t)dims[d];
    return n;
}

/* A new tensor of `type` (FLOAT or INT64) and these dims; NULL when it
 * is too large, a dim is negative or memory runs out. */
static fmnn__onnx_tensor *tensor_new(const char *name, int32_t type, int rank, const int64_t *dims)
{
    if (rank < 0 || rank > FMNN__ONNX_MAX_RANK)
        return NULL;
    size_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0 || dims[d] > MAX_FOLDED_VALUES)
            return NULL;
        n *= (size_t)dims[d];
        if (n > MAX_FOLDED_VALUES)
            return NULL;
    }
    fmnn__onnx_tensor *t = fmnn__alloc_zeroed(sizeof *t, "a folded constant");
    if (!t)
        return NULL;
    t->name = name;
    t->data_type = type;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->count = n;
    void *data = fmnn__alloc_zeroed((n ? n : 1) * 8, "a folded constant");
    if (!data) {
        fmnn__free(t);
        return NULL;
    }
    if (type == FMNN__ONNX_FLOAT)
        t->floats = data;
    else
        t->ints = data;
    return t;
}

void fmnn__onnx_tensor_free(fmnn__onnx_tensor *t)
{
    if (t) {
        fmnn__free(t->floats);
        fmnn__free(t->ints);
        fmnn__free(t);
    }
}

static int has_values(const fmnn__onnx_tensor *t)
{
    return t && !t->external && (t->floats || t->ints);
}

static void copy_element(fmnn__onnx_tensor *to, size_t i, const fmnn__onnx_tensor *from, size_t j)
{
    if (to->floats)
        to->floats[i] = from->floats ? from->floats[j] : (float)from->ints[j];
    else
        to->ints[i] = from->ints ? from->ints[j] : (int64_t)from->floats[j];
}

static int32_t type_of(const fmnn__onnx_tensor *t)
{
    return t->floats ? FMNN__ONNX_FLOAT : FMNN__ONNX_INT64;
}

/* The strides of a row-major tensor. */
static void strides_of(const fmnn__onnx_tensor *t, size_t *strides)
{
    size_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= (size_t)t->dims[d];
    }
}

static const fmnn__onnx_attr *attr(const fmnn__onnx_node *n, const char *name, int32_t type)
{
    const fmnn__onnx_attr *a = fmnn__onnx_node_attr(n, name);
    return a && a->type == type ? a : NULL;
}

static fmnn__onnx_tensor *constant_of_shape(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const fmnn__onnx_tensor *shape = in[0];
    if (!shape->ints || shape->rank != 1 || shape->count > FMNN__ONNX_MAX_RANK)
        return NULL;
    const fmnn__onnx_attr *v = attr(n, "value", FMNN__ONNX_ATTR_TENSOR);
    if (v && (!has_values(v->t) || v->t->count != 1))
        return NULL;
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], v ? type_of(v->t) : FMNN__ONNX_FLOAT, (int)shape->count,
                                      shape->ints);
    for (size_t i = 0; t && v && i < t->count; i++)
        copy_element(t, i, v->t, 0);
    return t;
}

static fmnn__onnx_tensor *concat(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const fmnn__onnx_attr *a = attr(n, "axis", FMNN__ONNX_ATTR_INT);
    const int rank = in[0]->rank;
    const int64_t axis = a ? (a->i < 0 ? a->i + rank : a->i) : -1;
    if (axis < 0 || axis >= rank)
        return NULL;
    int64_t dims[FMNN__ONNX_MAX_RANK];
    memcpy(dims, in[0]->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        if (in[i]->rank != rank || type_of(in[i]) != type_of(in[0]))
            return NULL;
        for (int d = 0; d < rank; d++)
            if (d != axis && in[i]->dims[d] != in[0]->dims[d])
                return NULL;
        dims[axis] += in[i]->dims[axis];
        if (dims[axis] > MAX_FOLDED_VALUES)
            return NULL;
    }
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], type_of(in[0]), rank, dims);
    if (!t)
        return NULL;
    const size_t outer = count_of((int)axis, dims);
    size_t at = 0;
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < n->n_inputs; i++) {
            const size_t block = in[i]->count / (outer ? outer : 1);
            for (size_t k = 0; k < block; k++)
                copy_element(t, at++, in[i], o * block + k);
        }
    return t;
}

static fmnn__onnx_tensor *reshape(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const fmnn__onnx_tensor *shape = in[1];
    if (n->n_inputs != 2 || !shape || !shape->ints || shape->rank != 1 || shape->count > FMNN__ONNX_MAX_RANK)
        return NULL;
    int64_t dims[FMNN__ONNX_MAX_RANK];
    int unknown = -1;
    size_t known = 1;
    for (int d = 0; d < (int)shape->count; d++) {
        dims[d] = shape->ints[d];
        if (dims[d] == 0 && d < in[0]->rank)
            dims[d] = in[0]->dims[d];
        if (dims[d] == -1 && unknown < 0) {
            unknown = d;
            continue;
        }
        if (dims[d] < 0 || dims[d] > MAX_FOLDED_VALUES)
            return NULL;
        known *= (size_t)dims[d];
        if (known > MAX_FOLDED_VALUES)
            return NULL;
    }
    if (unknown >= 0) {
        if (!known || in[0]->count % known)
            return NULL;
        dims[unknown] = (int64_t)(in[0]->count / known);
    } else if (known != in[0]->count) {
        return NULL;
    }
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], type_of(in[0]), (int)shape->count, dims);
    for (size_t i = 0; t && i < t->count; i++)
        copy_element(t, i, in[0], i);
    return t;
}

/* One axis of a Slice, clamped as the ONNX spec says. */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first, int64_t *size)
{
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *size = end > start ? (end - start + step - 1) / step : 0;
    } else {
        start = start < 0 ? -1 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        *size = start > end ? (start - end - step - 1) / -step : 0;
    }
    *first = start;
}

static fmnn__onnx_tensor *slice(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const fmnn__onnx_tensor *data = in[0], *starts = in[1], *ends = n->n_inputs > 2 ? in[2] : NULL;
    const fmnn__onnx_tensor *axes = n->n_inputs > 3 ? in[3] : NULL, *steps = n->n_inputs > 4 ? in[4] : NULL;
    if (!starts || !ends || !starts->ints || !ends->ints || starts->count != ends->count ||
        (axes && (!axes->ints || axes->count != starts->count)) ||
        (steps && (!steps->ints || steps->count != starts->count)))
        return NULL;
    int64_t first[FMNN__ONNX_MAX_RANK], step[FMNN__ONNX_MAX_RANK], dims[FMNN__ONNX_MAX_RANK];
    for (int d = 0; d < data->rank; d++) {
        first[d] = 0;
        step[d] = 1;
        dims[d] = data->dims[d];
    }
    for (size_t i = 0; i < starts->count; i++) {
        int64_t axis = axes ? axes->ints[i] : (int64_t)i;
        if (axis < 0)
            axis += data->rank;
        const int64_t s = steps ? steps->ints[i] : 1;
        if (axis < 0 || axis >= data->rank || s == 0 || s == INT64_MIN)
            return NULL;
        step[axis] = s;
        slice_axis(data->dims[axis], starts->ints[i], ends->ints[i], s, &first[axis], &dims[axis]);
    }
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], type_of(data), data->rank, dims);
    if (!t)
        return NULL;
    size_t in_strides[FMNN__ONNX_MAX_RANK];
    strides_of(data, in_strides);
    for (size_t i = 0; i < t->count; i++) {
        size_t rest = i, from = 0;
        for (int d = data->rank - 1; d >= 0; d--) {
            const size_t k = rest % (size_t)dims[d];
            rest /= (size_t)dims[d];
            from += (size_t)(first[d] + (int64_t)k * step[d]) * in_strides[d];
        }
        copy_element(t, i, data, from);
    }
    return t;
}

static fmnn__onnx_tensor *transpose(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const fmnn__onnx_tensor *data = in[0];
    const fmnn__onnx_attr *a = attr(n, "perm", FMNN__ONNX_ATTR_INTS);
    int64_t perm[FMNN__ONNX_MAX_RANK], dims[FMNN__ONNX_MAX_RANK];
    unsigned seen = 0;
    if (a && a->n_ints != (size_t)data->rank)
        return NULL;
    for (int d = 0; d < data->rank; d++) {
        perm[d] = a ? a->ints[d] : data->rank - 1 - d;
        if (perm[d] < 0 || perm[d] >= data->rank || (seen & (1u << perm[d])))
            return NULL;
        seen |= 1u << perm[d];
        dims[d] = data->dims[perm[d]];
    }
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], type_of(data), data->rank, dims);
    if (!t)
        return NULL;
    size_t in_strides[FMNN__ONNX_MAX_RANK];
    strides_of(data, in_strides);
    for (size_t i = 0; i < t->count; i++) {
        size_t rest = i, from = 0;
        for (int d = data->rank - 1; d >= 0; d--) {
            from += rest % (size_t)dims[d] * in_strides[perm[d]];
            rest /= (size_t)dims[d];
        }
        copy_element(t, i, data, from);
    }
    return t;
}

/* A copy of `from` holding values of `type`. */
static fmnn__onnx_tensor *cast_to(const fmnn__onnx_node *n, const fmnn__onnx_tensor *from, int32_t type)
{
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], type, from->rank, from->dims);
    for (size_t i = 0; t && i < t->count; i++)
        copy_element(t, i, from, i);
    return t;
}

static fmnn__onnx_tensor *cast(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const fmnn__onnx_attr *to = attr(n, "to", FMNN__ONNX_ATTR_INT);
    if (!to || (to->i != FMNN__ONNX_FLOAT && to->i != FMNN__ONNX_INT64 && to->i != FMNN__ONNX_INT32))
        return NULL;
    return cast_to(n, in[0], to->i == FMNN__ONNX_FLOAT ? FMNN__ONNX_FLOAT : FMNN__ONNX_INT64);
}

/* Unsqueeze and Squeeze, with their axes as an input (opset 13) or an
 * attribute (before). */
static fmnn__onnx_tensor *squeeze(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in, int unsqueeze)
{
    const fmnn__onnx_tensor *data = in[0];
    const fmnn__onnx_attr *a = attr(n, "axes", FMNN__ONNX_ATTR_INTS);
    const fmnn__onnx_tensor *given = n->n_inputs > 1 ? in[1] : NULL;
    const int64_t *axes = given ? given->ints : a ? a->ints : NULL;
    const size_t n_axes = given ? given->count : a ? a->n_ints : 0;
    if (!axes && (unsqueeze || given))
        return NULL;
    const int rank = unsqueeze ? data->rank + (int)n_axes : data->rank;
    if (rank > FMNN__ONNX_MAX_RANK || n_axes > FMNN__ONNX_MAX_RANK)
        return NULL;
    unsigned marked = 0;
    for (size_t i = 0; i < n_axes; i++) {
        const int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (axis < 0 || axis >= rank || (marked & (1u << axis)))
            return NULL;
        marked |= 1u << axis;
    }
    int64_t dims[FMNN__ONNX_MAX_RANK];
    int out_rank = 0;
    for (int d = 0, k = 0; d < rank; d++) {
        if (unsqueeze) {
            dims[out_rank++] = marked & (1u << d) ? 1 : data->dims[k++];
        } else if (axes ? !(marked & (1u << d)) : data->dims[d] != 1) {
            dims[out_rank++] = data->dims[d];
        } else if (data->dims[d] != 1) {
            return NULL;
        }
    }
    fmnn__onnx_tensor *t = tensor_new(n->outputs[0], type_of(data), out_rank, dims);
    for (size_t i = 0; t && i < t->count; i++)
        copy_element(t, i, data, i);
    return t;
}

static fmnn__onnx_tensor *evaluate(const fmnn__onnx_node *n, fmnn__onnx_tensor *const *in)
{
    const char *op = n->op_type;
    if (strcmp(op, "ConstantOfShape") == 0)
        return constant_of_shape(n, in);
    if (strcmp(op, "Concat") == 0)
        return concat(n, in);
    if (strcmp(op, "Reshape") == 0)
        return reshape(n, in);
    if (strcmp(op, "Slice") == 0)
        return n->n_inputs >= 3 ? slice(n, in) : NULL;
    if (strcmp(op, "Transpose") == 0)
        return transpose(n, in);
    if (strcmp(op, "Cast") == 0)
        return cast(n, in);
    if (strcmp(op, "Unsqueeze") == 0)
        return squeeze(n, in, 1);
    if (strcmp(op, "Squeeze") == 0)
        return squeeze(n, in, 0);
    if (strcmp(op, "Identity") == 0)
        return cast_to(n, in[0], type_of(in[0]));
    return NULL;
}

int fmnn__onnx_fold(const fmnn__onnx_model *g, fmnn__onnx_constant_fn constant, void *context,
                    fmnn__onnx_tensor **folded, unsigned char *done)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const fmnn__onnx_node *n = &g->nodes[i];
        folded[i] = NULL;
        if (done[i] || n->n_inputs < 1 || n->n_inputs > 8 || n->n_outputs != 1 || (n->domain[0] &&
            strcmp(n->domain, "ai.onnx") != 0))
            continue;
        /* Every input a constant; only optional ones (not the first) may be omitted. */
        fmnn__onnx_tensor *in[8];
        int all = 1;
        for (int j = 0; j < n->n_inputs && all; j++) {
            in[j] = n->inputs[j][0] ? (fmnn__onnx_tensor *)constant(context, n->inputs[j]) : NULL;
            all = in[j] ? has_values(in[j]) : j > 0;
        }
        if (!all)
            continue;
        if ((folded[i] = evaluate(n, in)))
            done[i] = 1;
    }
    return FMNN_OK;
}
