/*
 * fmnn/collective.h - data-parallel training on several processes: the
 * few collective operations libfmnn needs, supplied by the program.
 *
 *     fmnn_collective c = { FMNN_COLLECTIVE_VERSION, rank, size, context,
 *                           my_allreduce_sum, my_broadcast, my_barrier };
 *     fmnn_model_set_collective(model, &c);    // on every process
 *     fmnn_model_fit(model, x, y, &options, &history);
 *
 * libfmnn itself has no MPI in it: libfmnn_mpi (fmnn/mpi.h) supplies
 * these operations over an MPI communicator, and any other transport can.
 * With a collective set, every process calls the same libfmnn calls on
 * models built alike, with the same data, in the same order; then:
 *
 *  - fmnn_model_fit's batch_size is the global batch: each process runs a
 *    contiguous slice of every batch, the gradients are summed over the
 *    processes each step, and every process takes the same optimizer
 *    step.  The batch order, dropout masks and augmentation draws depend
 *    on a sample's index in the global batch, not on the process, so the
 *    result is what one process computes, up to the order of summation.
 *    BatchNormalization normalizes with each process's own slice (Keras's
 *    default, synchronized=False); its moving statistics are averaged.
 *  - Rank 0's weights, moving statistics and optimizer state are copied
 *    to the others as fit begins.
 *  - Validation, fmnn_model_evaluate and _evaluate_metrics split their
 *    samples between the processes and sum the loss and the metrics.
 *  - Only rank 0 shows progress and writes files (fmnn_model_save, the
 *    callbacks' files); the others wait for the write and return its
 *    status.
 *  - A call that fails on one process fails on all of them, with the
 *    failing rank's message, instead of leaving the others waiting.
 *
 * fmnn_model_predict and the inference contexts stay local.
 */
#ifndef FMNN_COLLECTIVE_H
#define FMNN_COLLECTIVE_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The element types an fmnn_collective sums. */
typedef enum fmnn_collective_type {
    FMNN_COLLECTIVE_FLOAT32 = 0, /**< float */
    FMNN_COLLECTIVE_FLOAT64 = 1  /**< double */
} fmnn_collective_type;

/** The version of struct fmnn_collective this header describes. */
#define FMNN_COLLECTIVE_VERSION 1

/**
 * The operations of a group of `size` processes, of which this one is
 * `rank`.  Every process calls each operation with the same arguments
 * (but data), in the same order.  Each function returns FMNN_OK or a
 * negative status; libfmnn then fails the call it was in, with a message
 * naming the operation.
 */
typedef struct fmnn_collective {
    int version;    /**< FMNN_COLLECTIVE_VERSION */
    int rank;       /**< this process: 0 .. size - 1 */
    int size;       /**< processes in the group, >= 1 */
    void *context;  /**< passed to every function */
    /**
     * Sums data[0 .. count) over the processes, in place, leaving the
     * same sum on every one.  It must be deterministic: the same bits for
     * the same inputs, whatever order the messages arrive in (add the
     * processes' values in rank order, not as they come), so that a run
     * can be repeated bit for bit.
     */
    int (*allreduce_sum)(void *context, void *data, size_t count, fmnn_collective_type type);
    /** Copies `bytes` bytes at data on process `root` to data on every other one. */
    int (*broadcast)(void *context, void *data, size_t bytes, int root);
    /** Returns once every process has called it. */
    int (*barrier)(void *context);
} fmnn_collective;

/**
 * Makes m's fit, evaluate and save collective over c (copied; c->context
 * must outlive its use), or, with c NULL, local again.  Call it on every
 * process, before fit.  FMNN_EINVAL for a bad version, rank or size, or
 * a missing function; FMNN_ESTATE inside fit.
 */
FMNN_API int fmnn_model_set_collective(fmnn_model *m, const fmnn_collective *c);

/**
 * Combines one status from every process of c (call it on all of them):
 * returns the status of the lowest rank whose status is negative, with
 * that rank's message ("rank 2: ..."), else the largest status given
 * (FMNN_OK, or a positive value one process chose).  For a program's own
 * steps outside libfmnn, such as reading its data, so that a failure on
 * one process stops all of them.  With c NULL it returns status.
 */
FMNN_API int fmnn_collective_agree(const fmnn_collective *c, int status);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_COLLECTIVE_H */
