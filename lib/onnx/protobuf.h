/*
 * protobuf.h - the protocol buffers wire format, read and written by
 * hand: no protobuf library, no generated code.
 *
 * A reader is a cursor over [p, end) of one message.  It trusts nothing
 * it reads: every varint is at most 10 bytes, every length must fit in
 * the bytes left, and the first failure is recorded in a fmnn__pb_error
 * that all the readers of one input share, with the byte offset from the
 * start of that input.  After a failure every read returns 0 and
 * fmnn__pb_next ends the loop, so a caller checks once, at the end.
 *
 * The writer appends to a growable buffer; a nested message is written
 * in place and its length inserted in front of it when it ends.
 */
#ifndef FMNN_ONNX_PROTOBUF_H
#define FMNN_ONNX_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

enum {
    FMNN__PB_VARINT = 0,
    FMNN__PB_FIXED64 = 1,
    FMNN__PB_LEN = 2,
    FMNN__PB_FIXED32 = 5
};

typedef struct fmnn__pb_error {
    int status;           /* FMNN_OK until the first failure */
    size_t offset;        /* where it happened, from the start of the input */
    char message[160];
    const char *context;  /* the caller's live description of where it reads */
    char where[224];      /* context, as it was at the failure */
} fmnn__pb_error;

typedef struct fmnn__pb_reader {
    const unsigned char *base; /* the start of the whole input */
    const unsigned char *p, *end;
    fmnn__pb_error *error;
} fmnn__pb_reader;

/* A reader over data[0..size); error starts clear. */
FMNN_INTERNAL void fmnn__pb_init(fmnn__pb_reader *r, fmnn__pb_error *error, const void *data, size_t size);

static inline int fmnn__pb_ok(const fmnn__pb_reader *r)
{
    return r->error->status == 0;
}

static inline size_t fmnn__pb_offset(const fmnn__pb_reader *r)
{
    return (size_t)(r->p - r->base);
}

/* Records a failure at offset unless one is recorded already; the
 * reader then stops at its end. */
FMNN_INTERNAL void fmnn__pb_fail(fmnn__pb_reader *r, int status, size_t offset, const char *fmt, ...)
    FMNN_PRINTF(4, 5);

/* Reads the next tag: 1 with its field number and wire type, 0 at the
 * end of the message or after a failure.  Group wire types (3, 4) and
 * the undefined 6 and 7 are failures. */
FMNN_INTERNAL int fmnn__pb_next(fmnn__pb_reader *r, uint32_t *field, int *wire_type);

FMNN_INTERNAL uint64_t fmnn__pb_varint(fmnn__pb_reader *r);
FMNN_INTERNAL uint32_t fmnn__pb_fixed32(fmnn__pb_reader *r);
FMNN_INTERNAL uint64_t fmnn__pb_fixed64(fmnn__pb_reader *r);

/* A length-delimited field's bytes; sub, when not NULL, becomes a reader
 * over them (a nested message).  0 after a failure (then *len is 0). */
FMNN_INTERNAL int fmnn__pb_bytes(fmnn__pb_reader *r, const unsigned char **data, size_t *len,
                                 fmnn__pb_reader *sub);

/* Skips a field's value of any valid wire type. */
FMNN_INTERNAL void fmnn__pb_skip(fmnn__pb_reader *r, int wire_type);

/*
 * A repeated scalar field whose tag was just read: either one value of
 * elem_wire (FMNN__PB_VARINT or FMNN__PB_FIXED32), or a packed run of
 * them (FMNN__PB_LEN).  Returns their count and sets *values to a reader
 * over exactly those values, to read with fmnn__pb_varint or
 * fmnn__pb_fixed32.  Any other wire type is a failure (count 0).
 */
FMNN_INTERNAL size_t fmnn__pb_values(fmnn__pb_reader *r, int wire_type, int elem_wire, fmnn__pb_reader *values);

/* ---- writing ------------------------------------------------------------ */

typedef struct fmnn__pb_writer {
    unsigned char *data; /* fmnn__alloc'd */
    size_t size, cap;
    int failed;          /* an allocation failed: the rest is not written */
} fmnn__pb_writer;

FMNN_INTERNAL void fmnn__pb_put_varint(fmnn__pb_writer *w, uint64_t v);
FMNN_INTERNAL void fmnn__pb_put_tag(fmnn__pb_writer *w, uint32_t field, int wire_type);
FMNN_INTERNAL void fmnn__pb_put_fixed32(fmnn__pb_writer *w, uint32_t v);
FMNN_INTERNAL void fmnn__pb_put_raw(fmnn__pb_writer *w, const void *data, size_t n);
/* A length-delimited field. */
FMNN_INTERNAL void fmnn__pb_put_bytes(fmnn__pb_writer *w, uint32_t field, const void *data, size_t n);
FMNN_INTERNAL void fmnn__pb_put_string(fmnn__pb_writer *w, uint32_t field, const char *s);

/* A nested message: begin writes the tag and returns where its content
 * starts; end inserts the content's length there. */
FMNN_INTERNAL size_t fmnn__pb_begin(fmnn__pb_writer *w, uint32_t field);
FMNN_INTERNAL void fmnn__pb_end(fmnn__pb_writer *w, size_t start);

#endif /* FMNN_ONNX_PROTOBUF_H */
