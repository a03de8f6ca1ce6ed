/*
 * program.h - what the Fashion-MNIST example programs share beyond their
 * reports: the dataset's classes and files, command-line values, output
 * folders and the clock.  Used by the study (study.c) and modern_cnn.c.
 *
 * The functions that can fail print a message naming what failed to
 * stderr and return -1; the parsers print nothing (the caller names the
 * option).
 */
#ifndef FMNN_EXAMPLES_PROGRAM_H
#define FMNN_EXAMPLES_PROGRAM_H

#include <stddef.h>

#include <fmnn.h>

#define PROGRAM_NUM_CLASSES 10
#define PROGRAM_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* Fashion-MNIST's class names, by label. */
extern const char *const program_class_names[PROGRAM_NUM_CLASSES];

/* $FMNN_DATA when set and not empty, else PROGRAM_DEFAULT_DATA. */
const char *program_default_data_dir(void);

/*
 * Splits argv[*i], "--name=VALUE" or "--name" (then VALUE is argv[*i + 1],
 * consumed, or NULL at the end of argv), into name (size bytes) and
 * *value.  -1 when the argument does not start with "--" or its name does
 * not fit.
 */
int program_split_option(int argc, char **argv, int *i, char *name, size_t size,
                         const char **value);

/* A whole-string decimal integer in [min, max] into *out; 0 or -1. */
int program_parse_int(const char *s, long min, long max, int *out);

/* A whole-string non-negative decimal integer (a seed); 0 or -1. */
int program_parse_seed(const char *s, unsigned long long *out);

/* A whole-string finite float in [min, max] (max_open: below max); 0 or -1. */
int program_parse_float(const char *s, float min, float max, int max_open, float *out);

/*
 * Loads "<dir>/<prefix>-images-idx3-ubyte.gz" and its labels (prefix
 * "train" or "t10k"), the first limit samples when limit > 0.  When a file
 * is missing, says how to install the dataset.
 */
int program_load_split(fmnn_dataset **out, const char *dir, const char *prefix,
                       int limit);

/* The same, printing nothing: returns an fmnn status and leaves the
 * message to fmnn_last_error() (for the ranks of a distributed run, which
 * agree on it before rank 0 prints it). */
int program_read_split(fmnn_dataset **out, const char *dir, const char *prefix,
                       int limit);

/* mkdir -p */
int program_make_dirs(const char *path);

/* Seconds on the monotonic clock. */
double program_now(void);

/* The first index of the largest of n values, as np.argmax. */
int program_argmax(const float *v, int n);

#endif /* FMNN_EXAMPLES_PROGRAM_H */
