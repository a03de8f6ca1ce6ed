/*
 * onnx_model.h - an ONNX model in memory: the part of onnx.proto that
 * libfmnn reads and writes, as plain structs.
 *
 * onnx_model.c parses a ModelProto's bytes into these structs (through
 * protobuf.h, which trusts no length, count or offset) and serializes
 * them back; export.c builds one with the fmnn__onnx_add_* calls below,
 * import.c reads one.  Everything a model points to lives in its arena
 * and goes with fmnn__onnx_free.  Fields the library has no use for
 * (doc strings, metadata, value_info, training info, functions) are
 * skipped when reading and never written.
 */
#ifndef FMNN_ONNX_MODEL_H
#define FMNN_ONNX_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The most dimensions a tensor or a value may have here (ONNX has no
 * limit; a file with more is refused as unsupported by the reader). */
#define FMNN__ONNX_MAX_RANK 8

/* TensorProto.DataType values the library knows by name. */
enum {
    FMNN__ONNX_FLOAT = 1,
    FMNN__ONNX_INT32 = 6,
    FMNN__ONNX_INT64 = 7
};

/* AttributeProto.AttributeType. */
enum {
    FMNN__ONNX_ATTR_UNDEFINED = 0,
    FMNN__ONNX_ATTR_FLOAT = 1,
    FMNN__ONNX_ATTR_INT = 2,
    FMNN__ONNX_ATTR_STRING = 3,
    FMNN__ONNX_ATTR_TENSOR = 4,
    FMNN__ONNX_ATTR_GRAPH = 5,
    FMNN__ONNX_ATTR_FLOATS = 6,
    FMNN__ONNX_ATTR_INTS = 7,
    FMNN__ONNX_ATTR_STRINGS = 8
    /* ... up to 14: kept as numbers, their values not read */
};

/* A TensorProto (an initializer, a Constant's value). */
typedef struct fmnn__onnx_tensor {
    const char *name;       /* "" when absent */
    int32_t data_type;      /* FMNN__ONNX_FLOAT, ... as in the file */
    int rank;               /* 0..FMNN__ONNX_MAX_RANK: 0 is a scalar */
    int64_t dims[FMNN__ONNX_MAX_RANK];
    size_t count;           /* the product of dims (1 for a scalar) */
    /* The values, decoded from raw_data (little-endian) or from the typed
     * field, whichever the file used: floats for FLOAT, ints for INT64
     * and INT32 (widened).  NULL for any other type and for external. */
    float *floats;
    int64_t *ints;
    int external;           /* data_location EXTERNAL or external_data given */
} fmnn__onnx_tensor;

/* An AttributeProto.  Only the member its type names is set. */
typedef struct fmnn__onnx_attr {
    const char *name;
    int32_t type;           /* FMNN__ONNX_ATTR_*; when the file omits it
                             * (IR < 2) the reader infers it from the one
                             * value field present */
    float f;
    int64_t i;
    const char *s;          /* NUL-terminated; s_len bytes before the NUL */
    size_t s_len;
    size_t n_floats, n_ints;
    float *floats;
    int64_t *ints;
    fmnn__onnx_tensor *t;   /* type TENSOR */
} fmnn__onnx_attr;

/* A NodeProto. */
typedef struct fmnn__onnx_node {
    const char *name;       /* "" when absent */
    const char *op_type;
    const char *domain;     /* "" for the default domain */
    int n_inputs, n_outputs, n_attrs;
    const char **inputs;    /* "" for an omitted optional input */
    const char **outputs;
    fmnn__onnx_attr *attrs;
} fmnn__onnx_node;

/* A graph input or output (a ValueInfoProto of a tensor type). */
typedef struct fmnn__onnx_value {
    const char *name;
    int32_t elem_type;      /* 0 when the type is absent or not a tensor */
    int rank;               /* -1 when the shape is absent */
    int64_t dims[FMNN__ONNX_MAX_RANK]; /* -1: symbolic or unknown */
    const char *dim_params[FMNN__ONNX_MAX_RANK]; /* the symbol, or NULL */
} fmnn__onnx_value;

typedef struct fmnn__onnx_arena fmnn__onnx_arena;

typedef struct fmnn__onnx_model {
    int64_t ir_version;
    int64_t opset;          /* the default domain's ("" or "ai.onnx"); 0 when not imported */
    int n_other_opsets;     /* opset_import entries of other domains */
    const char *producer_name, *producer_version, *graph_name;
    int n_nodes, n_initializers, n_inputs, n_outputs;
    fmnn__onnx_node *nodes;
    fmnn__onnx_tensor *initializers;
    fmnn__onnx_value *inputs, *outputs;
    int n_sparse_initializers; /* counted, not read: the importer refuses them */

    fmnn__onnx_arena *arena;
    int failed;             /* a builder call ran out of memory (sticky) */
} fmnn__onnx_model;

/*
 * Parses a serialized ModelProto.  `what` names the input in messages
 * (a path, or "memory").  FMNN_EFORMAT, with a message naming `what`,
 * the field and the byte offset, for anything malformed: a truncated
 * field, a wire type the field cannot have, a length or count past the
 * end or past a limit, tensor data whose size does not match its dims;
 * FMNN_ENOTSUP for a tensor of more than FMNN__ONNX_MAX_RANK dimensions;
 * FMNN_ENOMEM.  *out is NULL on failure.
 */
FMNN_INTERNAL int fmnn__onnx_parse(const void *data, size_t size, const char *what, fmnn__onnx_model **out);

/* Frees a parsed or built model; NULL is a no-op. */
FMNN_INTERNAL void fmnn__onnx_free(fmnn__onnx_model *model);

/* Serializes a model to a new buffer (free it with fmnn__free).
 * FMNN_ENOMEM, also when a builder call had failed or model is the NULL
 * of a failed fmnn__onnx_new. */
FMNN_INTERNAL int fmnn__onnx_serialize(const fmnn__onnx_model *model, unsigned char **data, size_t *size);

/* ---- building (export.c) -------------------------------------------------
 * Each call copies what it is given into the arena.  On allocation
 * failure a call returns NULL (or nothing) and sets model->failed; later
 * calls do nothing, and fmnn__onnx_serialize returns FMNN_ENOMEM, so a
 * builder need not check every call.  The calls also take the NULL of a
 * failed fmnn__onnx_new, and do nothing with it. */

/* An empty model: IR version, default-domain opset, producer. */
FMNN_INTERNAL fmnn__onnx_model *fmnn__onnx_new(int64_t ir_version, int64_t opset, const char *producer_name,
                                             const char *producer_version, const char *graph_name);

/* A string in the arena (printf-style). */
FMNN_INTERNAL const char *fmnn__onnx_printf(fmnn__onnx_model *model, const char *fmt, ...) FMNN_PRINTF(2, 3);

/* Appends a node with n_in inputs and one output. */
FMNN_INTERNAL fmnn__onnx_node *fmnn__onnx_add_node(fmnn__onnx_model *model, const char *op_type, const char *name,
                                                 int n_in, const char *const *inputs, const char *output);

/* Appends an attribute to a node. */
FMNN_INTERNAL void fmnn__onnx_attr_int(fmnn__onnx_model *model, fmnn__onnx_node *node, const char *name, int64_t v);
FMNN_INTERNAL void fmnn__onnx_attr_float(fmnn__onnx_model *model, fmnn__onnx_node *node, const char *name, float v);
FMNN_INTERNAL void fmnn__onnx_attr_ints(fmnn__onnx_model *model, fmnn__onnx_node *node, const char *name,
                                        size_t n, const int64_t *v);

/* Appends an initializer of FLOAT or INT64 values (count = product of dims). */
FMNN_INTERNAL fmnn__onnx_tensor *fmnn__onnx_add_floats(fmnn__onnx_model *model, const char *name, int rank,
                                                     const int64_t *dims, const float *values);
FMNN_INTERNAL fmnn__onnx_tensor *fmnn__onnx_add_int64s(fmnn__onnx_model *model, const char *name, int rank,
                                                     const int64_t *dims, const int64_t *values);

/* Appends a graph input or output of FLOAT elements; a dim of -1 is
 * written as the symbol dim_param (the batch: "N"). */
FMNN_INTERNAL void fmnn__onnx_add_input(fmnn__onnx_model *model, const char *name, int rank, const int64_t *dims,
                                        const char *dim_param);
FMNN_INTERNAL void fmnn__onnx_add_output(fmnn__onnx_model *model, const char *name, int rank, const int64_t *dims,
                                         const char *dim_param);

/* ---- reading helpers (import.c) ------------------------------------------ */

/* A node's attribute by name, or NULL.  (Not fmnn__onnx_attr: C gives a
 * typedef and a function one namespace.) */
FMNN_INTERNAL const fmnn__onnx_attr *fmnn__onnx_node_attr(const fmnn__onnx_node *node, const char *name);

/* An initializer by name, or NULL. */
FMNN_INTERNAL const fmnn__onnx_tensor *fmnn__onnx_initializer(const fmnn__onnx_model *model, const char *name);

#endif /* FMNN_ONNX_MODEL_H */
