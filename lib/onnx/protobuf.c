/*
 * protobuf.c - the wire format's reader and writer (protobuf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "protobuf.h"

/* ---- reading ------------------------------------------------------------ */

void fmnn__pb_init(fmnn__pb_reader *r, fmnn__pb_error *error, const void *data, size_t size)
{
    memset(error, 0, sizeof *error);
    r->base = data;
    r->p = data;
    r->end = r->p + size;
    r->error = error;
}

void fmnn__pb_fail(fmnn__pb_reader *r, int status, size_t offset, const char *fmt, ...)
{
    fmnn__pb_error *e = r->error;
    r->p = r->end;
    if (e->status != 0)
        return;
    e->status = status;
    e->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    snprintf(e->where, sizeof e->where, "%s", e->context ? e->context : "");
}

static size_t left(const fmnn__pb_reader *r)
{
    return (size_t)(r->end - r->p);
}

uint64_t fmnn__pb_varint(fmnn__pb_reader *r)
{
    const size_t at = fmnn__pb_offset(r);
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) {
            fmnn__pb_fail(r, FMNN_EFORMAT, at, "a varint is cut short by the end of the message");
            return 0;
        }
        const unsigned b = *r->p++;
        /* The 10th byte holds bit 63 alone. */
        if (i == 9 && b > 1) {
            fmnn__pb_fail(r, FMNN_EFORMAT, at, "a varint is longer than 10 bytes or overflows 64 bits");
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            return v;
    }
    return v; /* not reached: the 10th byte ends it or fails */
}

static const unsigned char *take(fmnn__pb_reader *r, size_t n, const char *what)
{
    if (left(r) < n) {
        fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "%s needs %zu bytes, %zu are left", what, n, left(r));
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    return p;
}

uint32_t fmnn__pb_fixed32(fmnn__pb_reader *r)
{
    const unsigned char *b = take(r, 4, "a fixed32");
    if (!b)
        return 0;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t fmnn__pb_fixed64(fmnn__pb_reader *r)
{
    const unsigned char *b = take(r, 8, "a fixed64");
    uint64_t v = 0;
    for (int i = 7; b && i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

int fmnn__pb_next(fmnn__pb_reader *r, uint32_t *field, int *wire_type)
{
    if (!fmnn__pb_ok(r) || r->p >= r->end)
        return 0;
    const size_t at = fmnn__pb_offset(r);
    const uint64_t tag = fmnn__pb_varint(r);
    if (!fmnn__pb_ok(r))
        return 0;
    const int wt = (int)(tag & 7);
    if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff) {
        fmnn__pb_fail(r, FMNN_EFORMAT, at, "field number %llu is not in 1..2^29-1", (unsigned long long)(tag >> 3));
        return 0;
    }
    if (wt == 3 || wt == 4) {
        fmnn__pb_fail(r, FMNN_EFORMAT, at, "field %u has the group wire type %d, which is not supported",
                      (unsigned)(tag >> 3), wt);
        return 0;
    }
    if (wt > 5) {
        fmnn__pb_fail(r, FMNN_EFORMAT, at, "field %u has the invalid wire type %d", (unsigned)(tag >> 3), wt);
        return 0;
    }
    *field = (uint32_t)(tag >> 3);
    *wire_type = wt;
    return 1;
}

int fmnn__pb_bytes(fmnn__pb_reader *r, const unsigned char **data, size_t *len, fmnn__pb_reader *sub)
{
    *data = NULL;
    *len = 0;
    if (sub)
        *sub = (fmnn__pb_reader){ r->base, r->end, r->end, r->error };
    const size_t at = fmnn__pb_offset(r);
    const uint64_t n = fmnn__pb_varint(r);
    if (!fmnn__pb_ok(r))
        return 0;
    if (n > left(r)) {
        fmnn__pb_fail(r, FMNN_EFORMAT, at, "a length of %llu bytes exceeds the %zu bytes left",
                      (unsigned long long)n, left(r));
        return 0;
    }
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    if (sub)
        *sub = (fmnn__pb_reader){ r->base, *data, r->p, r->error };
    return 1;
}

void fmnn__pb_skip(fmnn__pb_reader *r, int wire_type)
{
    const unsigned char *data;
    size_t len;
    switch (wire_type) {
    case FMNN__PB_VARINT:
        fmnn__pb_varint(r);
        break;
    case FMNN__PB_FIXED64:
        take(r, 8, "a fixed64");
        break;
    case FMNN__PB_LEN:
        fmnn__pb_bytes(r, &data, &len, NULL);
        break;
    case FMNN__PB_FIXED32:
        take(r, 4, "a fixed32");
        break;
    default:
        fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "wire type %d cannot be skipped", wire_type);
    }
}

size_t fmnn__pb_values(fmnn__pb_reader *r, int wire_type, int elem_wire, fmnn__pb_reader *values)
{
    *values = (fmnn__pb_reader){ r->base, r->end, r->end, r->error };
    const unsigned char *start = r->p;
    if (wire_type == elem_wire) {
        fmnn__pb_skip(r, wire_type);
        if (!fmnn__pb_ok(r))
            return 0;
        *values = (fmnn__pb_reader){ r->base, start, r->p, r->error };
        return 1;
    }
    if (wire_type != FMNN__PB_LEN) {
        fmnn__pb_fail(r, FMNN_EFORMAT, fmnn__pb_offset(r), "wire type %d where %d or packed (2) was expected",
                      wire_type, elem_wire);
        return 0;
    }
    const unsigned char *data;
    size_t len;
    if (!fmnn__pb_bytes(r, &data, &len, values))
        return 0;
    if (elem_wire == FMNN__PB_FIXED32) {
        if (len % 4 != 0) {
            fmnn__pb_fail(r, FMNN_EFORMAT, (size_t)(data - r->base),
                          "a packed run of fixed32 values has %zu bytes, not a multiple of 4", len);
            return 0;
        }
        return len / 4;
    }
    /* One varint ends at each byte without the continuation bit; a run
     * whose last byte has it is cut short. */
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += !(data[i] & 0x80);
    if (len > 0 && (data[len - 1] & 0x80)) {
        fmnn__pb_fail(r, FMNN_EFORMAT, (size_t)(data - r->base), "a packed run of varints ends inside a varint");
        return 0;
    }
    return count;
}

/* ---- writing ------------------------------------------------------------ */

/* Room for n more bytes. */
static int reserve(fmnn__pb_writer *w, size_t n)
{
    if (w->failed)
        return 0;
    if (w->cap - w->size >= n)
        return 1;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->size < n) {
        if (cap > SIZE_MAX / 2) {
            w->failed = 1;
            fmnn__error(FMNN_ENOMEM, "ONNX serialization: the output exceeds SIZE_MAX");
            return 0;
        }
        cap *= 2;
    }
    unsigned char *data = fmnn__alloc(cap, "ONNX serialization buffer");
    if (!data) {
        w->failed = 1;
        return 0;
    }
    if (w->size)
        memcpy(data, w->data, w->size);
    fmnn__free(w->data);
    w->data = data;
    w->cap = cap;
    return 1;
}

void fmnn__pb_put_raw(fmnn__pb_writer *w, const void *data, size_t n)
{
    if (n == 0 || !reserve(w, n))
        return;
    memcpy(w->data + w->size, data, n);
    w->size += n;
}

static size_t encode_varint(unsigned char *b, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (unsigned char)v;
    return n;
}

void fmnn__pb_put_varint(fmnn__pb_writer *w, uint64_t v)
{
    unsigned char b[10];
    fmnn__pb_put_raw(w, b, encode_varint(b, v));
}

void fmnn__pb_put_tag(fmnn__pb_writer *w, uint32_t field, int wire_type)
{
    fmnn__pb_put_varint(w, (uint64_t)field << 3 | (unsigned)wire_type);
}

void fmnn__pb_put_fixed32(fmnn__pb_writer *w, uint32_t v)
{
    const unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                 (unsigned char)(v >> 24) };
    fmnn__pb_put_raw(w, b, 4);
}

void fmnn__pb_put_bytes(fmnn__pb_writer *w, uint32_t field, const void *data, size_t n)
{
    fmnn__pb_put_tag(w, field, FMNN__PB_LEN);
    fmnn__pb_put_varint(w, n);
    fmnn__pb_put_raw(w, data, n);
}

void fmnn__pb_put_string(fmnn__pb_writer *w, uint32_t field, const char *s)
{
    fmnn__pb_put_bytes(w, field, s, strlen(s));
}

size_t fmnn__pb_begin(fmnn__pb_writer *w, uint32_t field)
{
    fmnn__pb_put_tag(w, field, FMNN__PB_LEN);
    return w->size;
}

/* The length goes in front of the content, which moves up to make room:
 * one move per nesting level, simpler than computing sizes first. */
void fmnn__pb_end(fmnn__pb_writer *w, size_t start)
{
    unsigned char b[10];
    const size_t n = encode_varint(b, w->size - start);
    if (!reserve(w, n))
        return;
    memmove(w->data + start + n, w->data + start, w->size - start);
    memcpy(w->data + start, b, n);
    w->size += n;
}
