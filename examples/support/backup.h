/*
 * backup.h - what the example programs need to survive a crash or a
 * Ctrl-C, as Keras's BackupAndRestore gives a notebook: a backup folder
 * inside --out (OUT/.backup) with a text record of the models already
 * finished (their history and test scores, exactly, as hexadecimal
 * floats) and, for the model in training, a BackupAndRestore folder of
 * its own (OUT/.backup/KEY); and SIGINT and SIGTERM turned into a flag
 * that stops fit at the next step boundary.
 *
 * Run again with the same options, a program picks up where the backup
 * left off and ends with the same results, models and reports (all but
 * the seconds) as a run that was never stopped; a run that completes
 * deletes its backup.  Every file is written whole under a temporary name
 * and renamed, so none is ever left half-written.
 *
 * The functions that can fail print a message to stderr and return -1.
 */
#ifndef FMNN_EXAMPLES_BACKUP_H
#define FMNN_EXAMPLES_BACKUP_H

#include <signal.h>
#include <stddef.h>

#include <fmnn.h>

#define BACKUP_MAX_RUNS 8

/* A finished model, as the reports need it. */
typedef struct backup_run {
    char key[32];
    int epochs;
    float *loss, *accuracy, *val_loss, *val_accuracy; /* one block, epochs values each */
    float test_loss, test_accuracy;
    double seconds;
} backup_run;

typedef struct study_backup {
    char dir[2048];          /* OUT/.backup */
    char state[2100];        /* OUT/.backup/study.txt */
    char options[1024];      /* what must match for the backup to be resumed */
    int resumed;             /* the backup was there and is being continued */
    int n_runs;
    backup_run runs[BACKUP_MAX_RUNS];
} study_backup;

/* The signal (SIGINT or SIGTERM) that asked the program to stop, or 0:
 * give it to fit as fmnn_fit_options.interrupt. */
extern volatile sig_atomic_t backup_signal;

/* From now on SIGINT and SIGTERM set backup_signal instead of killing. */
int backup_catch_signals(void);

/* The status to exit with after a signal: 128 + its number (130, 143). */
int backup_exit_status(void);

/*
 * Opens the backup of a program writing into out_dir.  options is what
 * must be the same for a backup to be resumed (the program's settings
 * that change its results); a backup made with others is refused with a
 * message saying so, unless restart, which deletes any backup and starts
 * afresh.  Leftover temporary files of a killed run are removed.
 */
int backup_open(study_backup *b, const char *out_dir, const char *options, int restart);

/*
 * For the ranks but 0 of a distributed run: names the backup of out_dir
 * without reading or writing it, so that backup_training_dir names the
 * same training backups as rank 0 (BackupAndRestore reads rank 0's and
 * sends it to the others).  It holds no finished runs: rank 0 alone opens the
 * backup.  -1 when out_dir's name is too long, silently (rank 0's
 * backup_open says so).
 */
int backup_follow(study_backup *b, const char *out_dir);

/* The finished run of a model, or NULL. */
const backup_run *backup_find(const study_backup *b, const char *key);

/* The folder of the BackupAndRestore callback of model key. */
void backup_training_dir(const study_backup *b, const char *key, char *out, size_t size);

/* Records a finished model (its history and test scores) in the state
 * file, then deletes its training backup. */
int backup_record(study_backup *b, const char *key, const fmnn_history *h, float test_loss,
                  float test_accuracy, double seconds);

/* The program completed: deletes the backup folder. */
int backup_finish(study_backup *b);

/* Frees what the backup holds in memory (not the files). */
void backup_close(study_backup *b);

/* Says on stderr that the program was stopped and how to go on, and
 * returns backup_exit_status(). */
int backup_interrupted(const study_backup *b, const char *program);

#endif /* FMNN_EXAMPLES_BACKUP_H */
