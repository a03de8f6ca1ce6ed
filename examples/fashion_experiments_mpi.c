/*
 * fashion_experiments_mpi.c - the five-model study of fashion_experiments
 * (support/study.h) on the processes of an MPI job: they share every batch
 * of every fit and evaluation, rank 0 prints and writes the files, and an
 * error on any of them stops all.  It takes fashion_experiments' options;
 * a backup goes on only with the same process count.
 *
 *     OMP_NUM_THREADS=1 mpirun -np 2 --bind-to none \
 *         build/examples/fashion_experiments_mpi --threads 1 --out mpi-results
 *
 * (docs/distributed.md, "The study, distributed").
 */
#include <stdio.h>

#include <fmnn.h>
#include <fmnn/mpi.h>

#include "support/study.h"

int main(int argc, char **argv)
{
    fmnn_mpi *mpi = NULL;
    int status;

    MPI_Init(&argc, &argv);
    if (fmnn_mpi_new(&mpi, MPI_COMM_WORLD) != FMNN_OK) {
        /* the ranks that made theirs would wait for this one forever */
        fprintf(stderr, "fashion_experiments_mpi: %s\n", fmnn_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    status = study_run(argc, argv, "fashion_experiments_mpi", fmnn_mpi_collective(mpi));
    /* Rank 0's output goes out now: once a rank has exited with an error,
     * mpirun kills the others. */
    fflush(stdout);
    fmnn_mpi_free(mpi);
    MPI_Finalize();
    return status;
}
