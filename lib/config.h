/*
 * config.h - a layer's or an optimizer's options as a table of typed
 * fields, so that one piece of code checks them (at compile, for models
 * built by hand and loaded alike), writes them to a model file and reads
 * them back.  Each field is 4 bytes in the struct it describes (an int, an
 * enum or a float; the macros below refuse anything else at compile time)
 * and 4 bytes in the file, in table order.
 *
 * A new option goes at the end of its table with a fallback: files written
 * before it existed hold fewer values, and the reader fills in the rest.
 */
#ifndef FMNN_CONFIG_H
#define FMNN_CONFIG_H

#include <math.h>
#include <stddef.h>

#include "internal.h"

struct fmnn__writer;
struct fmnn__reader;

/*
 * The largest size (input dimension, unit or filter count, kernel, pool
 * or stride) a model may have: the model file's limit, checked at compile
 * too, so that every model that compiles can be saved and loaded again.
 * Far beyond any real network, and it keeps all window and kernel
 * arithmetic far from overflow.
 */
#define FMNN__MAX_SIZE (1 << 24)

typedef enum fmnn_field_kind {
    /* An int in min..max.  SIZE and INT differ only in the status a bad
     * value gets: a size is a shape (FMNN_ESHAPE), an INT (a stride, a
     * padding width) or a CHOICE an argument (FMNN_EINVAL). */
    FMNN__FIELD_SIZE,
    FMNN__FIELD_INT,
    FMNN__FIELD_CHOICE,  /* an int or an enum in min..max, named in messages as "unknown" */
    FMNN__FIELD_FLOAT    /* a float between min and max, each bound open or closed;
                          * an open infinite bound means finite */
} fmnn_field_kind;

typedef struct fmnn_field {
    const char *name;     /* as Keras names the argument: "filters", "rate" */
    size_t offset;        /* of the 4-byte value in the struct */
    fmnn_field_kind kind;
    double min, max;      /* the accepted range */
    int min_open, max_open; /* FLOAT: the bound itself is excluded */
    double fallback;      /* for files written before the field existed */
} fmnn_field;

/* A table: fields[0..count). */
typedef struct fmnn_fields {
    const fmnn_field *fields;
    int count;
} fmnn_fields;

#define FMNN__FIELDS(array) { array, (int)(sizeof array / sizeof array[0]) }

/* The offset of a member that must be 4 bytes (a negative array size
 * otherwise stops the build). */
#define FMNN__FIELD_AT(type, member) \
    (offsetof(type, member) + 0 * sizeof(char[sizeof(((type *)0)->member) == 4 ? 1 : -1]))

/* A required size has no fallback: a file without it is refused. */
#define FMNN__SIZE(type, member, name) \
    { name, FMNN__FIELD_AT(type, member), FMNN__FIELD_SIZE, 1, FMNN__MAX_SIZE, 0, 0, 0 }
#define FMNN__STRIDE(type, member, name) \
    { name, FMNN__FIELD_AT(type, member), FMNN__FIELD_INT, 1, FMNN__MAX_SIZE, 0, 0, 1 }
#define FMNN__INT(type, member, name, min, max, fallback) \
    { name, FMNN__FIELD_AT(type, member), FMNN__FIELD_INT, min, max, 0, 0, fallback }
#define FMNN__CHOICE(type, member, name, first, last) \
    { name, FMNN__FIELD_AT(type, member), FMNN__FIELD_CHOICE, first, last, 0, 0, first }
#define FMNN__FLOAT(type, member, name, min, max, min_open, max_open, fallback) \
    { name, FMNN__FIELD_AT(type, member), FMNN__FIELD_FLOAT, min, max, min_open, max_open, fallback }
/* A regularizer factor: finite, >= 0. */
#define FMNN__FACTOR(type, member, name) FMNN__FLOAT(type, member, name, 0.0, HUGE_VAL, 0, 1, 0.0)

/*
 * Checks every field of the struct at base.  On the first bad value,
 * returns its status, with "<name> must be ..., got <value>" in msg.
 */
FMNN_INTERNAL int fmnn__fields_check(const fmnn_fields *table, const void *base, char *msg, size_t size);

/* Writes the count, then each value. */
FMNN_INTERNAL void fmnn__fields_put(struct fmnn__writer *w, const fmnn_fields *table, const void *base);

/*
 * Reads a count and that many values into the struct at base; fields the
 * file does not have get their fallback.  A count larger than the table
 * (a file from a newer library) is corrupt for this one; `what` names the
 * record in messages ("layer 3 (Conv2D)").  The values are not checked.
 */
FMNN_INTERNAL int fmnn__fields_get(struct fmnn__reader *r, const fmnn_fields *table, void *base,
                                   const char *what);

/* The value of the field named `name` ("strides[0]") of the struct at
 * base, as a double, in *value; 0 when the table has no such field. */
FMNN_INTERNAL int fmnn__fields_value(const fmnn_fields *table, const void *base, const char *name, double *value);

#endif /* FMNN_CONFIG_H */
