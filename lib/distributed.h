/*
 * distributed.h - what fit, evaluate and save do when the model has a
 * collective (fmnn/collective.h): each process's share of a batch, sums
 * over the processes, copying rank 0's model to the others, and agreeing
 * on every outcome, so that a failure on one process fails all of them
 * rather than leaving the others waiting.  distributed.c.  Private.
 *
 * The rule that keeps processes from waiting on each other forever: a
 * collective call (a sum, fmnn__agree, a collective save) is reached by
 * every process, at the same place, whatever happened on it before.
 * Code that may fail on one process only therefore ends in fmnn__agree.
 * Without a collective every function here is the one-process identity.
 */
#ifndef FMNN_DISTRIBUTED_H
#define FMNN_DISTRIBUTED_H

#include "model_impl.h"

/* The model's collective, with the scratch its agreements and sums use. */
typedef struct fmnn__group {
    fmnn_collective c;
    double *sums;           /* a step's loss and metric sums */
    size_t n_sums;          /* what sums holds */
    int shared;             /* rank 0's model was copied to the others since the collective was set */
} fmnn__group;

/* The samples [first, first + count) of a batch of `total` that this
 * process runs: all of them without a collective. */
typedef struct fmnn__slice {
    int first, count, total;
} fmnn__slice;

FMNN_INTERNAL fmnn__slice fmnn__slice_of(const fmnn_model *m, int total);

/* The most samples of a batch of `total` that any process runs. */
FMNN_INTERNAL int fmnn__largest_share(const fmnn_model *m, int total);

/* 1 when this process writes files and prints: rank 0, or no collective. */
FMNN_INTERNAL int fmnn__writes_files(const fmnn_model *m);

/* status combined over the processes (fmnn_collective_agree); status as
 * it is without a collective. */
FMNN_INTERNAL int fmnn__agree(const fmnn_model *m, int status);

/* Sums count values at data over the processes, in place; what names
 * them in a message ("the gradients").  FMNN_OK without a collective. */
FMNN_INTERNAL int fmnn__sum(const fmnn_model *m, void *data, size_t count, fmnn_collective_type type,
                            const char *what);

/* Copies rank 0's bytes at data to the other processes; what names
 * them in a message.  FMNN_OK without a collective. */
FMNN_INTERNAL int fmnn__broadcast(const fmnn_model *m, void *data, size_t bytes, const char *what);

/* Room in the group's sums for n doubles (outside the training loop). */
FMNN_INTERNAL int fmnn__group_reserve(fmnn_model *m, size_t n);

/* A value every process must have as rank 0 has it: a count, an option,
 * or a digest of several (fmnn__digest), of which a message says only
 * that it differs. */
typedef struct fmnn__same {
    const char *name;       /* "batch_size", "the layers and their options" */
    int64_t value;
    int is_digest;
} fmnn__same;

/* FNV-1a over n bytes, continuing from h (start with FMNN__DIGEST_START). */
#define FMNN__DIGEST_START 0xcbf29ce484222325ULL
FMNN_INTERNAL uint64_t fmnn__digest(uint64_t h, const void *data, size_t n);

/* Checks that every process calls fn on the same model (its layers, their
 * options and weight counts, loss, metrics, optimizer kind) with the same
 * values[0..n); a process that differs fails all, with a message naming
 * the first value that differs.  Agreed; FMNN_OK without a collective. */
FMNN_INTERNAL int fmnn__group_check(fmnn_model *m, const fmnn__same *values, int n, const char *fn);

/* Copies rank 0's weights, moving statistics, optimizer (settings, state
 * and step) and training counts to the others, as Horovod's
 * broadcast_parameters: the same start everywhere, whatever each process
 * was initialized with.  After fmnn__group_check.  Agreed. */
FMNN_INTERNAL int fmnn__group_share_model(fmnn_model *m);

/* Frees the model's group (fmnn_model_free). */
FMNN_INTERNAL void fmnn__group_free(fmnn__group *g);

#endif /* FMNN_DISTRIBUTED_H */
