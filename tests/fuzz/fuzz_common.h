/*
 * fuzz_common.h - what the libFuzzer targets share: the input goes into
 * an in-memory file (memfd_create), which the library opens by the path
 * /proc/self/fd/N like any other file; and a scratch folder for the
 * files a target writes.
 */
#ifndef FMNN_FUZZ_COMMON_H
#define FMNN_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create; define it before any include */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmnn.h"

typedef struct memfile {
    int fd;
    char path[64];
} memfile;

static inline void memfile_open(memfile *f, const char *name)
{
    f->fd = memfd_create(name, 0);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's content with data[0..n). */
static inline void memfile_put(const memfile *f, const uint8_t *data, size_t n)
{
    if (ftruncate(f->fd, 0) != 0)
        abort();
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(f->fd, data + done, n - done, (off_t)done);
        if (w <= 0)
            abort();
        done += (size_t)w;
    }
}

/* A failed call must name the file (the path) in its message. */
static inline void expect_named(int status, const char *path)
{
    if (status != FMNN_OK && !strstr(fmnn_last_error(), path)) {
        fprintf(stderr, "status %d, message without the path %s: \"%s\"\n", status, path,
                fmnn_last_error());
        abort();
    }
}

/* A scratch folder for the files a target writes (saves and exports
 * need a real directory: a temporary file, then rename), holding one file
 * called `name`, whose path goes to `path`; both go at exit. */
static char scratch_dir[64];
static char scratch_file[128];

static void scratch_cleanup(void)
{
    unlink(scratch_file);
    if (scratch_dir[0])
        rmdir(scratch_dir);
}

static inline const char *scratch_open(const char *name)
{
    snprintf(scratch_dir, sizeof scratch_dir, "/dev/shm/fmnn-fuzz-XXXXXX");
    if (!mkdtemp(scratch_dir)) {
        snprintf(scratch_dir, sizeof scratch_dir, "/tmp/fmnn-fuzz-XXXXXX");
        if (!mkdtemp(scratch_dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    snprintf(scratch_file, sizeof scratch_file, "%s/%s", scratch_dir, name);
    atexit(scratch_cleanup);
    return scratch_file;
}

#endif /* FMNN_FUZZ_COMMON_H */
