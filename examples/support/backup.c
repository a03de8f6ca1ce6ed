/*
 * backup.c - the example programs' backup (backup.h): the state file of
 * the finished models, the per-model BackupAndRestore folders, leftover
 * temporary files, and the signals.
 *
 * The state file, OUT/.backup/study.txt, is text:
 *
 *     libfmnn example backup 1
 *     options <the options that must match>
 *     run <key> <epochs> <has accuracy> <has validation> <test loss> <test accuracy> <seconds>
 *     <loss> <accuracy> <val_loss> <val_accuracy>      one line per epoch
 *     ...
 *
 * with every float in C's %a form, so that it reads back to the same bits.
 */
#define _POSIX_C_SOURCE 200809L

#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "program.h"

#define HEADER "libfmnn example backup 1"

volatile sig_atomic_t backup_signal;

/* The first signal asks to stop at the next step; a second one, to stop
 * now (the default action, only async-signal-safe calls). */
static void on_signal(int signo)
{
    if (backup_signal) {
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    backup_signal = signo;
}

int backup_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* the program's writes go on */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        perror("error: sigaction");
        return -1;
    }
    return 0;
}

int backup_exit_status(void)
{
    return 128 + (int)backup_signal;
}

int backup_interrupted(const study_backup *b, const char *program)
{
    fprintf(stderr, "\n%s: stopped by %s; the backup in %s/ holds the training so far: run the same command "
            "again to go on from there (--restart starts over)\n", program,
            backup_signal == SIGTERM ? "SIGTERM" : "SIGINT", b->dir);
    return backup_exit_status();
}

/* ==== files ============================================================ */

/* The files the programs write, whose temporary copies a kill may leave. */
static const char *const WRITTEN[] = {
    "results.csv", "history.csv", "val_accuracy.svg", "val_loss.svg", "predictions.svg",
    "confusion_matrix.svg", "classification_report.txt", "report.html", "study.txt",
};

/* Digits, a dash, digits, and nothing else. */
static int is_pid_and_count(const char *s)
{
    const size_t a = strspn(s, "0123456789");
    return a > 0 && s[a] == '-' && strspn(s + a + 1, "0123456789") > 0 &&
           s[a + 1 + strspn(s + a + 1, "0123456789")] == '\0';
}

/* A name the library's atomic saves of a model (NAME.fmnn.tmp-PID-N) or
 * the reports' writes (NAME.tmp, NAME one of WRITTEN) leave behind when
 * the process is killed mid-write; nothing else is touched. */
static int is_temporary(const char *name)
{
    const char *tmp = strstr(name, ".fmnn.tmp-");
    if (tmp && tmp > name && is_pid_and_count(tmp + strlen(".fmnn.tmp-")))
        return 1;
    const size_t n = strlen(name);
    for (size_t i = 0; i < sizeof WRITTEN / sizeof WRITTEN[0]; i++)
        if (n == strlen(WRITTEN[i]) + 4 && !strncmp(name, WRITTEN[i], n - 4) && !strcmp(name + n - 4, ".tmp"))
            return 1;
    return 0;
}

/* Removes the temporary files in dir; with depth > 0, in its folders too.
 * remove_all: every file, then the folders themselves.  Folders go
 * before files, so that the state file outlives the training backups. */
static void clean_dir(const char *dir, int depth, int remove_all)
{
    for (int folders = 1; folders >= 0; folders--) {
        DIR *d = opendir(dir);
        if (!d)
            return;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char path[4200];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || lstat(path, &st) != 0 ||
                !S_ISDIR(st.st_mode) != !folders)
                continue;
            if (folders && depth > 0)
                clean_dir(path, depth - 1, remove_all);
            if (folders && remove_all)
                rmdir(path);
            if (!folders && (remove_all || is_temporary(e->d_name)))
                unlink(path);
        }
        closedir(d);
    }
}

/* Writes the state file whole, under a temporary name, then renames it. */
static int write_state(const study_backup *b)
{
    char tmp[2200];
    snprintf(tmp, sizeof tmp, "%s.tmp", b->state);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "error: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\noptions %s\n", HEADER, b->options);
    for (int i = 0; i < b->n_runs; i++) {
        const backup_run *r = &b->runs[i];
        fprintf(f, "run %s %d %d %d %a %a %.17g\n", r->key, r->epochs, r->accuracy != NULL, r->val_loss != NULL,
                (double)r->test_loss, (double)r->test_accuracy, r->seconds);
        for (int e = 0; e < r->epochs; e++)
            fprintf(f, "%a %a %a %a\n", (double)r->loss[e], r->accuracy ? (double)r->accuracy[e] : 0.0,
                    r->val_loss ? (double)r->val_loss[e] : 0.0, r->val_accuracy ? (double)r->val_accuracy[e] : 0.0);
    }
    int failed = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    const int saved = errno;
    failed |= fclose(f) != 0;
    if (failed || rename(tmp, b->state) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", b->state, strerror(failed ? saved : errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ==== reading the state ================================================= */

static int alloc_run(backup_run *r, int epochs, int has_accuracy, int has_val)
{
    float *block = calloc((size_t)(epochs > 0 ? epochs : 1) * 4, sizeof *block);
    if (!block)
        return -1;
    r->epochs = epochs;
    r->loss = block;
    r->accuracy = has_accuracy ? block + epochs : NULL;
    r->val_loss = has_val ? block + 2 * epochs : NULL;
    r->val_accuracy = has_val && has_accuracy ? block + 3 * epochs : NULL;
    return 0;
}

/* Reads the state file into b; -1 when it is not one this program wrote. */
static int read_state(study_backup *b, FILE *f, char *options, size_t size)
{
    char line[1024];
    if (!fgets(line, sizeof line, f) || strcmp(line, HEADER "\n") != 0 || !fgets(line, sizeof line, f) ||
        strncmp(line, "options ", 8) != 0)
        return -1;
    snprintf(options, size, "%s", line + 8);
    options[strcspn(options, "\n")] = '\0';
    while (fgets(line, sizeof line, f)) {
        backup_run *r = &b->runs[b->n_runs];
        int epochs, has_acc, has_val;
        double loss, accuracy;
        if (b->n_runs == BACKUP_MAX_RUNS ||
            sscanf(line, "run %31s %d %d %d %la %la %lg", r->key, &epochs, &has_acc, &has_val, &loss, &accuracy,
                   &r->seconds) != 7 ||
            epochs < 0 || epochs > 1000000 || alloc_run(r, epochs, has_acc, has_val) != 0)
            return -1;
        b->n_runs++;
        r->test_loss = (float)loss;
        r->test_accuracy = (float)accuracy;
        for (int e = 0; e < epochs; e++) {
            double v[4];
            if (!fgets(line, sizeof line, f) || sscanf(line, "%la %la %la %la", &v[0], &v[1], &v[2], &v[3]) != 4)
                return -1;
            r->loss[e] = (float)v[0];
            if (r->accuracy)
                r->accuracy[e] = (float)v[1];
            if (r->val_loss)
                r->val_loss[e] = (float)v[2];
            if (r->val_accuracy)
                r->val_accuracy[e] = (float)v[3];
        }
    }
    return ferror(f) ? -1 : 0;
}

/* ==== the backup ========================================================== */

/* Empties b and names its folder and state file; -1, silently, when
 * out_dir's name is too long. */
static int name_backup(study_backup *b, const char *out_dir)
{
    memset(b, 0, sizeof *b);
    if (snprintf(b->dir, sizeof b->dir, "%s/.backup", out_dir) >= (int)sizeof b->dir)
        return -1;
    snprintf(b->state, sizeof b->state, "%s/study.txt", b->dir);
    return 0;
}

int backup_follow(study_backup *b, const char *out_dir)
{
    return name_backup(b, out_dir);
}

int backup_open(study_backup *b, const char *out_dir, const char *options, int restart)
{
    if (name_backup(b, out_dir) != 0) {
        fprintf(stderr, "error: the output folder's name is too long: %s\n", out_dir);
        return -1;
    }
    snprintf(b->options, sizeof b->options, "%s", options);
    if (restart) {
        clean_dir(b->dir, 1, 1);
        rmdir(b->dir);
    }
    clean_dir(out_dir, 0, 0); /* what a killed run was writing */
    clean_dir(b->dir, 1, 0);

    FILE *f = fopen(b->state, "r");
    if (!f) {
        if (errno != ENOENT) {
            fprintf(stderr, "error: cannot read %s: %s\n", b->state, strerror(errno));
            return -1;
        }
        /* No state: whatever is left in the folder is from a run killed
         * while it deleted its backup (the state goes last), or older. */
        clean_dir(b->dir, 1, 1);
        if (program_make_dirs(b->dir) != 0)
            return -1;
        return write_state(b);
    }
    char saved[1024];
    const int bad = read_state(b, f, saved, sizeof saved);
    fclose(f);
    if (bad) {
        fprintf(stderr, "error: %s is not a backup this program wrote; delete it, or run with --restart\n",
                b->state);
        return -1;
    }
    if (strcmp(saved, options) != 0) {
        fprintf(stderr, "error: the backup in %s/ was made with other options (%s; now %s): run with those "
                "options to go on, or with --restart to start over\n", b->dir, saved, options);
        return -1;
    }
    b->resumed = 1;
    return 0;
}

const backup_run *backup_find(const study_backup *b, const char *key)
{
    for (int i = 0; i < b->n_runs; i++)
        if (!strcmp(b->runs[i].key, key))
            return &b->runs[i];
    return NULL;
}

void backup_training_dir(const study_backup *b, const char *key, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", b->dir, key);
}

static void copy_series(float *to, const float *from, int n)
{
    if (to && from)
        memcpy(to, from, (size_t)n * sizeof *to);
}

int backup_record(study_backup *b, const char *key, const fmnn_history *h, float test_loss, float test_accuracy,
                  double seconds)
{
    if (b->n_runs == BACKUP_MAX_RUNS) {
        fprintf(stderr, "error: the backup holds at most %d models\n", BACKUP_MAX_RUNS);
        return -1;
    }
    backup_run *r = &b->runs[b->n_runs];
    memset(r, 0, sizeof *r);
    const int epochs = h ? h->epochs : 0;
    if (alloc_run(r, epochs, h && h->accuracy, h && h->val_loss) != 0) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    snprintf(r->key, sizeof r->key, "%s", key);
    if (h) {
        copy_series(r->loss, h->loss, epochs);
        copy_series(r->accuracy, h->accuracy, epochs);
        copy_series(r->val_loss, h->val_loss, epochs);
        copy_series(r->val_accuracy, h->val_accuracy, epochs);
    }
    r->test_loss = test_loss;
    r->test_accuracy = test_accuracy;
    r->seconds = seconds;
    b->n_runs++;
    if (write_state(b) != 0)
        return -1;
    /* Only now, with the model's results safe, may its training backup go. */
    char dir[2200];
    backup_training_dir(b, key, dir, sizeof dir);
    clean_dir(dir, 0, 1);
    rmdir(dir);
    return 0;
}

int backup_finish(study_backup *b)
{
    /* The training folders first, the state last: a kill in between
     * leaves a state that says every model is done. */
    clean_dir(b->dir, 1, 1);
    if (rmdir(b->dir) != 0 && errno != ENOENT) {
        fprintf(stderr, "error: cannot delete the backup %s: %s\n", b->dir, strerror(errno));
        return -1;
    }
    return 0;
}

void backup_close(study_backup *b)
{
    for (int i = 0; i < b->n_runs; i++)
        free(b->runs[i].loss);
    b->n_runs = 0;
}
