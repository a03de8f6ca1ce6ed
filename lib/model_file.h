/*
 * model_file.h - the bytes of a model file, whatever they describe: the
 * 32-byte header with its CRC-32 over the payload (docs/FORMAT.md), the
 * atomic replace of the target, and little-endian readers and writers that
 * never read past the end.  What the payload holds is save.c's business.
 */
#ifndef FMNN_MODEL_FILE_H
#define FMNN_MODEL_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "internal.h"

/* Header flags: the payload holds the optimizer's state; then, after
 * it, where a fit was (fit_state.h), which needs the optimizer's state. */
#define FMNN__FILE_OPTIMIZER 1u
#define FMNN__FILE_FIT 2u

/* ---- writing ------------------------------------------------------------ */

/* Appends to the payload, keeping its CRC and size; the first error
 * (an errno value) stops every later write. */
typedef struct fmnn__writer {
    FILE *file;
    unsigned long crc;
    uint64_t size;
    int failed;
} fmnn__writer;

FMNN_INTERNAL void fmnn__put_u32(fmnn__writer *w, uint32_t v);
FMNN_INTERNAL void fmnn__put_u64(fmnn__writer *w, uint64_t v);
FMNN_INTERNAL void fmnn__put_f32(fmnn__writer *w, float f);
FMNN_INTERNAL void fmnn__put_floats(fmnn__writer *w, const float *f, size_t n);
FMNN_INTERNAL void fmnn__put_f64(fmnn__writer *w, double d);
FMNN_INTERNAL void fmnn__put_bytes(fmnn__writer *w, const void *data, size_t n);

/* Writes the payload of one file through the writer. */
typedef void (*fmnn__payload_writer)(fmnn__writer *w, const void *context);

/*
 * Writes a model file at path with these header flags and the payload
 * that write_payload produces, atomically: under a temporary name in the
 * same directory, synced, then renamed over path.  On failure path is
 * left as it was and FMNN_EIO says why.
 */
FMNN_INTERNAL int fmnn__file_save(const char *path, uint32_t flags,
                                  fmnn__payload_writer write_payload,
                                  const void *context);

/* Writes a file's bytes to an open temporary file; on failure returns
 * nonzero with an errno value in *error. */
typedef int (*fmnn__file_writer)(FILE *file, const void *context, int *error);

/* The atomic replace behind fmnn__file_save, for any file: write writes
 * the temporary file, which is then synced and renamed over path.
 * FMNN_EIO names `caller` and path; path is left as it was. */
FMNN_INTERNAL int fmnn__file_replace(const char *path, const char *caller, fmnn__file_writer write,
                                     const void *context);

/* ---- reading ------------------------------------------------------------ */

/* Reads a payload in memory; the first error (FMNN_EFORMAT, with a
 * message naming the file) makes every later read return 0. */
typedef struct fmnn__reader {
    const unsigned char *p;
    size_t left;
    const char *path;
    int err;
} fmnn__reader;

/* Records "<path>: corrupt model file: <detail>" once; returns FMNN_EFORMAT. */
FMNN_INTERNAL int fmnn__corrupt(fmnn__reader *r, const char *fmt, ...) FMNN_PRINTF(2, 3);
/* The payload ends inside `what`. */
FMNN_INTERNAL int fmnn__truncated(fmnn__reader *r, const char *what);

FMNN_INTERNAL uint32_t fmnn__get_u32(fmnn__reader *r, const char *what);
FMNN_INTERNAL uint64_t fmnn__get_u64(fmnn__reader *r, const char *what);
FMNN_INTERNAL float fmnn__get_f32(fmnn__reader *r, const char *what);
FMNN_INTERNAL void fmnn__get_floats(fmnn__reader *r, float *out, size_t n, const char *what);
FMNN_INTERNAL double fmnn__get_f64(fmnn__reader *r, const char *what);
FMNN_INTERNAL void fmnn__get_bytes(fmnn__reader *r, void *out, size_t n, const char *what);

/*
 * Reads the model file at path, checks its header (magic, a version this
 * library reads, known flags, payload size) and its checksum, and gives
 * the payload (free it with fmnn__free), the format version and the
 * header flags.  FMNN_EIO, FMNN_EFORMAT or FMNN_ENOMEM, with a message
 * naming the file.
 */
FMNN_INTERNAL int fmnn__file_load(const char *path, unsigned char **payload,
                                  size_t *size, uint32_t *version,
                                  uint32_t *flags);

/* Skips n bytes of the payload (truncated when fewer are left). */
FMNN_INTERNAL void fmnn__skip(fmnn__reader *r, size_t n, const char *what);

#endif /* FMNN_MODEL_FILE_H */
