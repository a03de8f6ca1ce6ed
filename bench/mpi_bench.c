/*
 * mpi_bench.c - training throughput of the study's Base model on several
 * processes through libfmnn_mpi, for docs/distributed.md's scaling
 * figures:
 *
 *     OMP_NUM_THREADS=1 mpirun -np 2 --bind-to none build/bench/fmnn_mpi_bench --threads 1
 *
 * Each run trains on synthetic images (seeded noise: the cost does not
 * depend on the pixels) for a warm-up epoch, then for a timed one, and
 * rank 0 prints the global images per second and the mean step time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>
#include <fmnn/mpi.h>

#include "support/models.h"

static int int_arg(const char *s)
{
    char *end;
    const long v = strtol(s, &end, 10);
    return *end || v < 1 || v > 1000000 ? -1 : (int)v;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int threads = 1, steps = 20, batch = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        const int v = int_arg(argv[i + 1]);
        if (!strcmp(argv[i], "--threads") && v > 0)
            threads = v;
        else if (!strcmp(argv[i], "--steps") && v > 0)
            steps = v;
        else if (!strcmp(argv[i], "--batch") && v > 0)
            batch = v;
        else {
            fprintf(stderr, "usage: fmnn_mpi_bench [--threads N] [--steps S] [--batch B]\n");
            MPI_Finalize();
            return 2;
        }
    }
    fmnn_set_num_threads(threads);
    fmnn_mpi *mpi = NULL;
    fmnn_model *m = NULL;
    fmnn_tensor *x = NULL, *y = NULL;
    const int n = steps * batch;
    int err = fmnn_mpi_new(&mpi, MPI_COMM_WORLD);
    const fmnn_collective *group = fmnn_mpi_collective(mpi);
    if (!err)
        err = fmnn_tensor_new(&x, 4, (int[]){ n, 28, 28, 1 });
    if (!err)
        err = fmnn_tensor_new(&y, 2, (int[]){ n, 10 });
    if (!err) {
        uint64_t s = 12345;
        float *px = fmnn_tensor_data(x), *py = fmnn_tensor_data(y);
        for (size_t i = 0; i < fmnn_tensor_size(x); i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            px[i] = (float)(s >> 40) / 16777216.0f;
        }
        for (int i = 0; i < n; i++)
            py[i * 10 + i % 10] = 1.0f;
    }
    if (!err)
        err = study_build(&m, study_find("base"));
    fmnn_optimizer adam = fmnn_adam();
    if (!err)
        err = fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, &adam, 42);
    if (!err)
        err = fmnn_model_set_collective(m, group);
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch;
    o.epochs = 1;
    double seconds = 0.0;
    for (int round = 0; round < 2 && !err; round++) { /* a warm-up, then the timed epoch */
        MPI_Barrier(MPI_COMM_WORLD);
        const double start = MPI_Wtime();
        err = fmnn_model_fit(m, x, y, &o, NULL);
        seconds = MPI_Wtime() - start;
    }
    if (err)
        fprintf(stderr, "fmnn_mpi_bench: rank %d: %s\n", group ? group->rank : -1, fmnn_last_error());
    else if (group->rank == 0)
        printf("ranks %d threads %d batch %d: train_images_per_s %.1f step_ms %.2f\n", group->size, threads, batch,
               n / seconds, 1e3 * seconds / steps);
    fmnn_model_free(m);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_mpi_free(mpi);
    MPI_Finalize();
    return err ? 1 : 0;
}
