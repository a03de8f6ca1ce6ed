/*
 * fmnn/mpi.h - libfmnn_mpi: data-parallel training over MPI.
 *
 *     MPI_Init(&argc, &argv);
 *     fmnn_mpi *mpi;
 *     fmnn_mpi_new(&mpi, MPI_COMM_WORLD);
 *     fmnn_model_set_collective(model, fmnn_mpi_collective(mpi));
 *     fmnn_model_fit(model, x, y, &options, &history);  // on every rank
 *     ...
 *     fmnn_mpi_free(mpi);
 *     MPI_Finalize();
 *
 * Link with `pkg-config --libs fmnn-mpi` (libfmnn_mpi, libfmnn and MPI).
 * What a collective model does is described in fmnn/collective.h; how to
 * run on a cluster, in docs/distributed.md.
 */
#ifndef FMNN_MPI_H
#define FMNN_MPI_H

#include <mpi.h>

#include "collective.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fmnn_mpi fmnn_mpi;

/**
 * A collective over comm, which it duplicates (so that libfmnn's messages
 * never meet the program's), with errors returned rather than fatal.
 * MPI must be initialized; call it on every rank of comm.  FMNN_EINVAL
 * when out is NULL or MPI is not initialized, FMNN_EIO when MPI fails.
 */
FMNN_API int fmnn_mpi_new(fmnn_mpi **out, MPI_Comm comm);

/** The collective to give fmnn_model_set_collective; valid until fmnn_mpi_free. */
FMNN_API const fmnn_collective *fmnn_mpi_collective(const fmnn_mpi *mpi);

/** Frees mpi (call it before MPI_Finalize, on every rank); NULL is ignored. */
FMNN_API void fmnn_mpi_free(fmnn_mpi *mpi);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_MPI_H */
