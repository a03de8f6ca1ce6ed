/*
 * fashion_experiments.c - the Keras notebook "Design and Implement the CNN
 * with Regularization and Dropout on Fashion MNIST", with libfmnn: the
 * five-model study of support/study.h, in one process.
 *
 *     build/examples/fashion_experiments                   # the notebook
 *     build/examples/fashion_experiments --epochs 1 --train-limit 2000 \
 *         --test-limit 500 --models base,l2_dropout --quiet  # a quick look
 *
 * fashion_experiments_mpi.c runs the same study on several processes.
 */
#include "support/study.h"

int main(int argc, char **argv)
{
    return study_run(argc, argv, "fashion_experiments", NULL);
}
