/*
 * config.h - a layer's or an optimizer's options as a table of typed
 * fields, so that one piece of code checks them (at compile, for models
 * built by hand and loaded alike), writes them to a model file and reads
 * them back.  Each field is 4 bytes in the struct it describes (an int, an
 * enum or a float) and 4 bytes in the file, in table order.
 *
 * A new option goes at the end of its table with a default: files written
 * before it existed hold fewer values, and the reader fills in the rest.
 */
#ifndef FMNN_CONFIG_H
#define FMNN_CONFIG_H

#include <math.h>
#include <stddef.h>

#include "internal.h"
#include "model_file.h"

typedef enum fmnn_field_kind {
    FMNN__FIELD_SIZE,    /* int in 1..FMNN__MAX_SIZE, a shape (FMNN_ESHAPE) */
    FMNN__FIELD_STRIDE,  /* int in 1..FMNN__MAX_SIZE, an argument (FMNN_EINVAL) */
    FMNN__FIELD_CHOICE,  /* int or enum in 0..max */
    FMNN__FIELD_FLOAT    /* finite float in [min, max], or (min, max) where open */
} fmnn_field_kind;

typedef struct fmnn_field {
    const char *name;     /* as Keras names the argument: "filters", "rate" */
    size_t offset;        /* of the 4-byte value in the struct */
    fmnn_field_kind kind;
    double min, max;      /* CHOICE: max; FLOAT: the range */
    int min_open, max_open;
    double fallback;      /* for files written before the field existed */
} fmnn_field;

/* A table: fields[0..count). */
typedef struct fmnn_fields {
    const fmnn_field *fields;
    int count;
} fmnn_fields;

#define FMNN__FIELDS(array) { array, (int)(sizeof array / sizeof array[0]) }
#define FMNN__NO_FIELDS { NULL, 0 }

#define FMNN__MAX_SIZE (1 << 24)

/* Shorthands for the common kinds. */
#define FMNN__SIZE(type, member, name) { name, offsetof(type, member), FMNN__FIELD_SIZE, 1, FMNN__MAX_SIZE, 0, 0, 1 }
#define FMNN__STRIDE(type, member, name) { name, offsetof(type, member), FMNN__FIELD_STRIDE, 1, FMNN__MAX_SIZE, 0, 0, 1 }
#define FMNN__CHOICE(type, member, name, last) { name, offsetof(type, member), FMNN__FIELD_CHOICE, 0, last, 0, 0, 0 }
/* A regularizer factor or a dropout rate: finite, >= 0. */
#define FMNN__FACTOR(type, member, name) { name, offsetof(type, member), FMNN__FIELD_FLOAT, 0, HUGE_VAL, 0, 1, 0 }

/*
 * Checks every field of the struct at base.  On the first bad value,
 * returns its status, with "<name> must be ..., got <value>" in msg.
 */
FMNN_INTERNAL int fmnn__fields_check(const fmnn_fields *table, const void *base, char *msg, size_t size);

/* Writes the count, then each value. */
FMNN_INTERNAL void fmnn__fields_put(fmnn__writer *w, const fmnn_fields *table, const void *base);

/*
 * Reads a count and that many values into the struct at base; fields the
 * file does not have get their fallback.  A count larger than the table
 * (a file from a newer library) is corrupt for this one; `what` names the
 * record in messages ("layer 3 (Conv2D)").  The values are not checked.
 */
FMNN_INTERNAL int fmnn__fields_get(fmnn__reader *r, const fmnn_fields *table, void *base, const char *what);

#endif /* FMNN_CONFIG_H */
