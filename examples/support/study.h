/*
 * study.h - the Keras notebook "Design and Implement the CNN with
 * Regularization and Dropout on Fashion MNIST", with libfmnn, as one call:
 * fashion_experiments.c runs it in one process, fashion_experiments_mpi.c
 * on the processes of an MPI job.
 *
 * It trains the notebook's five CNNs (no regularization, L1, L2, Dropout,
 * L2 + Dropout) on Fashion-MNIST with Adam and categorical cross-entropy,
 * holding out the last 20% of the training images for validation, and
 * evaluates each on the test set.  With the last model (L2 + Dropout when
 * it was trained) it predicts the test set and builds the notebook's
 * confusion matrix, classification report and prediction grid.
 *
 * It prints what the notebook prints, then a comparison table, and writes
 * into --out: the models (KEY.fmnn), results.csv, history.csv,
 * val_accuracy.svg, val_loss.svg, predictions.svg, confusion_matrix.svg,
 * classification_report.txt and report.html (one page with all of them).
 *
 * It keeps a backup in --out/.backup (backup.h): killed, or stopped with
 * Ctrl-C (which exits with status 130, 143 for SIGTERM), the same command
 * goes on where the backup left off and ends with the files an
 * uninterrupted run writes, all but the seconds.
 */
#ifndef FMNN_EXAMPLES_STUDY_H
#define FMNN_EXAMPLES_STUDY_H

#include <fmnn.h>

/*
 * Runs the study as the command line argc, argv asks (--help lists the
 * options), naming itself program_name in its messages, and returns the
 * status to exit with: 0, 1 after an error (said on stderr), 2 after a
 * usage error, 130 or 143 when stopped by SIGINT or SIGTERM.
 *
 * group NULL: one process.  Else every process of group calls it with the
 * same arguments and gets the same status: the processes share every
 * batch of every fit and evaluation (fmnn/collective.h), rank 0 alone
 * prints and writes into --out, and an error on any of them stops all.
 * A backup goes on only with the same process count.
 */
int study_run(int argc, char **argv, const char *program_name, const fmnn_collective *group);

#endif /* FMNN_EXAMPLES_STUDY_H */
