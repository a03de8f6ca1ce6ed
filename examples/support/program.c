/* program.c - see program.h. */
#define _POSIX_C_SOURCE 200809L

#include "program.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *const program_class_names[PROGRAM_NUM_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
};

const char *program_default_data_dir(void)
{
    const char *env = getenv("FMNN_DATA");
    return env && *env ? env : PROGRAM_DEFAULT_DATA;
}

int program_split_option(int argc, char **argv, int *i, char *name, size_t size,
                         const char **value)
{
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

    if (strncmp(arg, "--", 2) != 0 || len >= size)
        return -1;
    memcpy(name, arg, len);
    name[len] = '\0';
    if (eq)
        *value = eq + 1;
    else
        *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 0;
}

int program_parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int program_parse_seed(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-')
        return -1;
    *out = v;
    return 0;
}

int program_parse_float(const char *s, float min, float max, int max_open, float *out)
{
    char *end;
    float v;
    errno = 0;
    v = strtof(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min ||
        v > max || (max_open && v == max))
        return -1;
    *out = v;
    return 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int program_read_split(fmnn_dataset **out, const char *dir, const char *prefix,
                       int limit)
{
    char images[4096], labels[4096];
    const char *paths[2] = { images, labels };

    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    for (int i = 0; i < 2; i++)
        if (!file_exists(paths[i]))
            return fmnn_set_error(FMNN_EIO,
                "%s: no such file\n"
                "The Fashion-MNIST data is not there.  Install it with `make deps`\n"
                "(or `apt-get install dataset-fashion-mnist`), or point --data DIR or\n"
                "FMNN_DATA at a folder holding train-images-idx3-ubyte.gz,\n"
                "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and\n"
                "t10k-labels-idx1-ubyte.gz.", paths[i]);
    return fmnn_dataset_load(out, images, labels, PROGRAM_NUM_CLASSES, limit);
}

int program_load_split(fmnn_dataset **out, const char *dir, const char *prefix,
                       int limit)
{
    if (program_read_split(out, dir, prefix, limit) != FMNN_OK) {
        fprintf(stderr, "error: %s\n", fmnn_last_error());
        return -1;
    }
    return 0;
}

int program_make_dirs(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    struct stat st;
    int rc = 0;

    if (p == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    memcpy(p, path, n + 1);
    for (char *s = p + 1; rc == 0 && *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = -1;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = -1;
    if (rc == 0 && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
        errno = ENOTDIR;
        rc = -1;
    }
    if (rc != 0)
        fprintf(stderr, "error: cannot create the directory %s: %s\n", p, strerror(errno));
    free(p);
    return rc;
}

double program_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int program_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}
