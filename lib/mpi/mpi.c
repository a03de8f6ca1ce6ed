/*
 * mpi.c - libfmnn_mpi: the collective of fmnn/collective.h over an MPI
 * communicator.
 *
 * MPI_Allreduce may add the processes' values in any order (a ring, a
 * tree, recursive halving: Open MPI chooses by message size and process
 * count), and float addition is not associative, so its sums may differ
 * in the last bit from run to run.  The sum here is fixed instead, with
 * the traffic of a ring allreduce (each process sends and receives about
 * twice the buffer): the buffer is cut into one block per process; an
 * all-to-all gives process r every process's block r, which it adds in
 * rank order; an allgather then gives every process every summed block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmnn/mpi.h"

struct fmnn_mpi {
    fmnn_collective collective;
    MPI_Comm comm;
    int *counts, *displs;   /* per process: its block's elements and start */
    int *send_counts, *send_displs, *recv_counts, *recv_displs;
    void *blocks;           /* what the all-to-all receives: size blocks */
    size_t blocks_bytes;
};

/* FMNN_EIO, with MPI's message for the error code. */
static int mpi_failed(int code, const char *call)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", code);
    return fmnn_set_error(FMNN_EIO, "libfmnn_mpi: %s failed: %s", call, text);
}

/* Room for a sum's blocks.  Every process asks for the same size (that of
 * the largest block, times the process count) at the same call, so all
 * grow together, and agree on it: one that cannot must not leave the
 * others waiting in the all-to-all. */
static int grow_blocks(fmnn_mpi *mpi, size_t bytes)
{
    if (bytes <= mpi->blocks_bytes)
        return FMNN_OK;
    void *blocks = realloc(mpi->blocks, bytes);
    if (blocks)
        mpi->blocks = blocks;
    /* The lowest rank that could not grow, or size when all could. */
    const int size = mpi->collective.size, mine = blocks ? size : mpi->collective.rank;
    int first_short = size;
    const int code = MPI_Allreduce(&mine, &first_short, 1, MPI_INT, MPI_MIN, mpi->comm);
    if (code != MPI_SUCCESS)
        return mpi_failed(code, "MPI_Allreduce");
    if (first_short < size)
        return fmnn_set_error(FMNN_ENOMEM, "libfmnn_mpi: rank %d is out of memory for the %zu bytes of a sum's "
                              "blocks", first_short, bytes);
    mpi->blocks_bytes = bytes; /* only once all have it: all ask again alike */
    return FMNN_OK;
}

/* Sums one piece of at most INT_MAX elements (MPI counts are ints). */
static int sum_piece(fmnn_mpi *mpi, void *data, int count, fmnn_collective_type type)
{
    const int size = mpi->collective.size, rank = mpi->collective.rank;
    const MPI_Datatype dt = type == FMNN_COLLECTIVE_FLOAT64 ? MPI_DOUBLE : MPI_FLOAT;
    const size_t elem = type == FMNN_COLLECTIVE_FLOAT64 ? sizeof(double) : sizeof(float);
    for (int r = 0; r < size; r++) {
        mpi->displs[r] = (int)((int64_t)count * r / size);
        mpi->counts[r] = (int)((int64_t)count * (r + 1) / size) - mpi->displs[r];
    }
    const int mine = mpi->counts[rank];
    const size_t largest = ((size_t)count + (size_t)size - 1) / (size_t)size;
    int code = grow_blocks(mpi, largest * (size_t)size * elem);
    if (code)
        return code;
    /* Block r of this process's data goes to process r; this process
     * receives block `rank` of every process, one after the other. */
    for (int r = 0; r < size; r++) {
        mpi->send_counts[r] = mpi->counts[r];
        mpi->send_displs[r] = mpi->displs[r];
        mpi->recv_counts[r] = mine;
        mpi->recv_displs[r] = mine * r;
    }
    code = MPI_Alltoallv(data, mpi->send_counts, mpi->send_displs, dt, mpi->blocks, mpi->recv_counts,
                             mpi->recv_displs, dt, mpi->comm);
    if (code != MPI_SUCCESS)
        return mpi_failed(code, "MPI_Alltoallv");
    /* In rank order, always: the deterministic part. */
    if (type == FMNN_COLLECTIVE_FLOAT64) {
        double *out = (double *)data + mpi->displs[rank];
        const double *in = mpi->blocks;
        for (int i = 0; i < mine; i++) {
            double s = in[i];
            for (int r = 1; r < size; r++)
                s += in[(size_t)r * mine + i];
            out[i] = s;
        }
    } else {
        float *out = (float *)data + mpi->displs[rank];
        const float *in = mpi->blocks;
        for (int i = 0; i < mine; i++) {
            float s = in[i];
            for (int r = 1; r < size; r++)
                s += in[(size_t)r * mine + i];
            out[i] = s;
        }
    }
    code = MPI_Allgatherv(MPI_IN_PLACE, 0, dt, data, mpi->counts, mpi->displs, dt, mpi->comm);
    return code == MPI_SUCCESS ? FMNN_OK : mpi_failed(code, "MPI_Allgatherv");
}

static int mpi_allreduce_sum(void *context, void *data, size_t count, fmnn_collective_type type)
{
    fmnn_mpi *mpi = context;
    if (type != FMNN_COLLECTIVE_FLOAT32 && type != FMNN_COLLECTIVE_FLOAT64)
        return fmnn_set_error(FMNN_EINVAL, "libfmnn_mpi: allreduce_sum: unknown type %d", (int)type);
    if (mpi->collective.size == 1)
        return FMNN_OK;
    const size_t elem = type == FMNN_COLLECTIVE_FLOAT64 ? sizeof(double) : sizeof(float);
    const size_t piece = (size_t)1 << 28; /* elements per call: MPI's counts are ints */
    for (size_t at = 0; at < count; at += piece) {
        const size_t n = count - at < piece ? count - at : piece;
        const int err = sum_piece(mpi, (char *)data + at * elem, (int)n, type);
        if (err)
            return err;
    }
    return FMNN_OK;
}

static int mpi_broadcast(void *context, void *data, size_t bytes, int root)
{
    fmnn_mpi *mpi = context;
    const size_t piece = (size_t)1 << 30;
    for (size_t at = 0; at < bytes; at += piece) {
        const size_t n = bytes - at < piece ? bytes - at : piece;
        const int code = MPI_Bcast((char *)data + at, (int)n, MPI_BYTE, root, mpi->comm);
        if (code != MPI_SUCCESS)
            return mpi_failed(code, "MPI_Bcast");
    }
    return FMNN_OK;
}

static int mpi_barrier(void *context)
{
    fmnn_mpi *mpi = context;
    const int code = MPI_Barrier(mpi->comm);
    return code == MPI_SUCCESS ? FMNN_OK : mpi_failed(code, "MPI_Barrier");
}

FMNN_API int fmnn_mpi_new(fmnn_mpi **out, MPI_Comm comm)
{
    if (!out)
        return fmnn_set_error(FMNN_EINVAL, "fmnn_mpi_new: out is NULL");
    *out = NULL;
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        return fmnn_set_error(FMNN_EINVAL, "fmnn_mpi_new: MPI is %s", finalized ? "finalized" : "not initialized "
                              "(call MPI_Init first)");
    fmnn_mpi *mpi = calloc(1, sizeof *mpi);
    if (!mpi)
        return fmnn_set_error(FMNN_ENOMEM, "fmnn_mpi_new: out of memory");
    int code = MPI_Comm_dup(comm, &mpi->comm);
    if (code != MPI_SUCCESS) {
        free(mpi);
        return mpi_failed(code, "MPI_Comm_dup");
    }
    /* Errors come back as codes, so that libfmnn can report them. */
    MPI_Comm_set_errhandler(mpi->comm, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(mpi->comm, &rank);
    MPI_Comm_size(mpi->comm, &size);
    const size_t n = (size_t)size;
    mpi->counts = calloc(6 * n, sizeof(int));
    if (!mpi->counts) {
        MPI_Comm_free(&mpi->comm);
        free(mpi);
        return fmnn_set_error(FMNN_ENOMEM, "fmnn_mpi_new: out of memory for %d processes", size);
    }
    mpi->displs = mpi->counts + n;
    mpi->send_counts = mpi->counts + 2 * n;
    mpi->send_displs = mpi->counts + 3 * n;
    mpi->recv_counts = mpi->counts + 4 * n;
    mpi->recv_displs = mpi->counts + 5 * n;
    mpi->collective = (fmnn_collective){ .version = FMNN_COLLECTIVE_VERSION, .rank = rank, .size = size,
                                         .context = mpi, .allreduce_sum = mpi_allreduce_sum,
                                         .broadcast = mpi_broadcast, .barrier = mpi_barrier };
    *out = mpi;
    return FMNN_OK;
}

FMNN_API const fmnn_collective *fmnn_mpi_collective(const fmnn_mpi *mpi)
{
    return mpi ? &mpi->collective : NULL;
}

FMNN_API void fmnn_mpi_free(fmnn_mpi *mpi)
{
    if (!mpi)
        return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&mpi->comm);
    free(mpi->counts);
    free(mpi->blocks);
    free(mpi);
}
