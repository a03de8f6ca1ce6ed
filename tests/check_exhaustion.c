/*
 * check_exhaustion.c - running out of disk and out of memory (issue #18).
 *
 * A full disk: fmnn_model_save onto a small tmpfs that cannot hold the
 * new file (nothing of it, or only part) returns FMNN_EIO naming the file
 * and saying no space is left, leaves the file it would have replaced
 * byte for byte, and no temporary file nor its blocks; so does one that
 * cannot create its temporary file (no inode left), a ModelCheckpoint
 * inside fit, and the examples' report writer.
 *
 * Out of memory: fit, evaluate and predict under an address-space limit
 * (RLIMIT_AS), lowered a page at a time, return FMNN_OK or FMNN_ENOMEM
 * with a message, leak nothing, and leave the model as it was: with the
 * limit raised again it runs a smaller batch, then trains, predicts and
 * saves to the same bits as a model that never hit the limit.  Through
 * malloc only the large buffers can fail; through an allocator that maps
 * every block on its own, each allocation gets its turn.  With two
 * threads and with OpenBLAS's GEMM too, their threads and buffers started
 * before the limit (see sweep_case for why they must be).
 *
 * Every test does its work in a child of its own, which reports through
 * a shared page and dies with the test: the disk tests mount their tmpfs
 * in a private mount namespace, which goes when the child goes, and the
 * memory tests lower a limit that must not outlive them.  Under ASan or
 * valgrind, which cannot run under RLIMIT_AS, the mapping allocator's own
 * budget stands in for the limit and the rest is skipped; a disk test
 * that cannot mount (not root, not permitted) says why and passes.
 */
#define _GNU_SOURCE /* unshare, mallopt */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmnn.h"
#include "kernels/gemm_impl.h" /* fmnn__gemm_select: the OpenBLAS path */
#include "support/report.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
#if UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

static char workdir[] = "/tmp/fmnn_check_exhaustion_XXXXXX";

/* ---- the children -------------------------------------------------------- */

enum { PASSED = 0, FAILED = 1, SKIPPED = 2 };

/* What a child tells its test: shared memory, so that it survives the
 * child's death. */
typedef struct verdict {
    int code;
    char text[2048];
} verdict;

static verdict *told; /* in the child */

static void child_exit(int code) __attribute__((noreturn));
static void child_exit(int code)
{
    told->code = code;
    fflush(stdout);
#if UNDER_ASAN
    if (code == PASSED)
        __lsan_do_leak_check(); /* _exit skips LeakSanitizer's own check */
#endif
    _exit(code);
}

/* Fails the child: the message goes to the test, which fails with it. */
static void child_fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void child_fail(int line, const char *fmt, ...)
{
    int n = snprintf(told->text, sizeof told->text, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(told->text + n, sizeof told->text - (size_t)n, fmt, ap);
    va_end(ap);
    child_exit(FAILED);
}

#define REQUIRE(cond, ...)                          \
    do {                                            \
        if (!(cond))                                \
            child_fail(__LINE__, __VA_ARGS__);      \
    } while (0)

#define REQUIRE_OK(call)                                                                          \
    do {                                                                                          \
        int rc_ = (call);                                                                         \
        REQUIRE(rc_ == FMNN_OK, "%s returned %d: %s", #call, rc_, fmnn_last_error());             \
    } while (0)

/* Passes without running, saying why. */
static int skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(told->text, sizeof told->text, fmt, ap);
    va_end(ap);
    return SKIPPED;
}

/* Runs body in a child and fails the test as the child did. */
static void in_child(const char *name, int (*body)(void))
{
    verdict *v = mmap(NULL, sizeof *v, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(v, MAP_FAILED);
    v->code = -1;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        told = v;
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that times out takes its child along */
        alarm(600);                       /* and one that hangs ends, under CK_FORK=no too */
        child_exit(body());
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    verdict got = *v;
    munmap(v, sizeof *v);
    ck_assert_msg(!WIFSIGNALED(status), "%s: the child died of signal %d (%s)%s%s", name, WTERMSIG(status),
                  strsignal(WTERMSIG(status)), got.text[0] ? ", " : "", got.text);
    ck_assert_msg(got.code != FAILED, "%s: %s", name, got.text);
    if (got.code == SKIPPED) {
        printf("check_exhaustion: %s: skipped: %s\n", name, got.text);
        return;
    }
    ck_assert_msg(got.code == PASSED && WEXITSTATUS(status) == 0,
                  "%s: the child exited with status %d (a leak or a sanitizer's report?)", name,
                  WEXITSTATUS(status));
}

/* ---- what the tests work on --------------------------------------------------- */

static fmnn_tensor *new_tensor(int rank, const int *dims)
{
    fmnn_tensor *t = NULL;
    REQUIRE_OK(fmnn_tensor_new(&t, rank, dims));
    return t;
}

/* n samples of 8x8x1 and one-hot targets for 5 classes, the same every time. */
static void make_data(int n, fmnn_tensor **x, fmnn_tensor **y)
{
    *x = new_tensor(4, (int[]){ n, 8, 8, 1 });
    *y = new_tensor(2, (int[]){ n, 5 });
    float *xd = fmnn_tensor_data(*x), *yd = fmnn_tensor_data(*y);
    for (size_t i = 0; i < fmnn_tensor_size(*x); i++)
        xd[i] = (float)((i * 29) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < n; i++)
        yd[i * 5 + (i * 3 + i / 7) % 5] = 1.0f;
}

/* 8x8x1 -> Conv2D(4, 3x3) -> relu -> MaxPool 2 -> Dropout 0.25 ->
 * Flatten -> Dense(5, l2) -> softmax: every kind of buffer (saved
 * state for the pool's argmax and the dropout mask), and Adam's state. */
static fmnn_model *small_model(uint64_t seed)
{
    fmnn_model *m = NULL;
    REQUIRE_OK(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }));
    fmnn_layer *layers[] = {
        fmnn_conv2d(4, 3, 3, NULL),
        fmnn_activation(FMNN_RELU),
        fmnn_maxpool2d(2, 2, NULL),
        fmnn_dropout(0.25f),
        fmnn_flatten(),
        fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_LINEAR, .kernel_regularizer = fmnn_l2(0.01f) }),
        fmnn_activation(FMNN_SOFTMAX),
    };
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
        REQUIRE_OK(fmnn_model_add(m, layers[i]));
    REQUIRE_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed));
    return m;
}

/* A model whose file takes a few pages: 8x8x1 -> Flatten -> Dense(32,
 * relu) -> Dropout 0.25 -> Dense(5) -> softmax, 2245 parameters (9 KiB;
 * 27 KiB with Adam's state). */
static fmnn_model *wide_model(uint64_t seed)
{
    fmnn_model *m = NULL;
    REQUIRE_OK(fmnn_model_new(&m, 3, (int[]){ 8, 8, 1 }));
    fmnn_layer *layers[] = {
        fmnn_flatten(),
        fmnn_dense(32, &(fmnn_dense_options){ .activation = FMNN_RELU }),
        fmnn_dropout(0.25f),
        fmnn_dense(5, NULL),
        fmnn_activation(FMNN_SOFTMAX),
    };
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
        REQUIRE_OK(fmnn_model_add(m, layers[i]));
    REQUIRE_OK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed));
    return m;
}

static fmnn_fit_options quiet(int batch_size, int epochs)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch_size;
    o.epochs = epochs;
    o.verbose = 0;
    o.seed = 11;
    return o;
}

/* The whole of a file (malloc'd), or NULL when it cannot be read. */
static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *data = NULL;
    size_t n = 0, cap = 0, got = 1;
    while (got > 0) {
        if (n == cap) {
            unsigned char *more = realloc(data, cap = cap ? 2 * cap : 4096);
            if (!more) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = more;
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
    }
    fclose(f);
    *size = n;
    return data;
}

static int same_file(const char *path, const unsigned char *bytes, size_t size)
{
    size_t n = 0;
    unsigned char *now = slurp(path, &n);
    int same = now && n == size && memcmp(now, bytes, n) == 0;
    free(now);
    return same;
}

/* The bytes fmnn_model_save writes for m, through a file in workdir. */
static unsigned char *saved_bytes(const fmnn_model *m, unsigned flags, size_t *size)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bytes-%ld.fmnn", workdir, (long)getpid());
    REQUIRE_OK(fmnn_model_save(m, path, flags));
    unsigned char *bytes = slurp(path, size);
    REQUIRE(bytes, "cannot read back %s", path);
    unlink(path);
    return bytes;
}

/* The names in dir other than the ones listed (NULL-terminated), or NULL. */
static const char *stray_file(const char *dir, const char *const *keep)
{
    static char name[256];
    DIR *d = opendir(dir);
    REQUIRE(d, "opendir %s: %s", dir, strerror(errno));
    const char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        int kept = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
        for (int i = 0; keep[i] && !kept; i++)
            kept = strcmp(e->d_name, keep[i]) == 0;
        if (!kept) {
            snprintf(name, sizeof name, "%s", e->d_name);
            found = name;
        }
    }
    closedir(d);
    return found;
}

/* ---- a full disk ------------------------------------------------------------ */

#define SMALL_DISK "size=64k,mode=0700"

static long page_size(void)
{
    return sysconf(_SC_PAGESIZE);
}

/* Mounts a tmpfs with these options on a new directory of workdir, in a
 * mount namespace of the child's own, so that nothing outlives the
 * child, and names the file `name` there in path.  SKIPPED (with the
 * reason told) when this machine will not let us. */
static int mount_small_disk(const char *options, char *dir, size_t size, const char *name, char *path,
                            size_t path_size)
{
    if (geteuid() != 0)
        return skip("mounting a tmpfs needs root");
    if (unshare(CLONE_NEWNS) != 0)
        return skip("unshare(CLONE_NEWNS) is not permitted here: %s", strerror(errno));
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) /* the type is ignored */
        return skip("cannot make the mounts private: %s", strerror(errno));
    snprintf(dir, size, "%s/disk-%ld", workdir, (long)getpid());
    REQUIRE(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0)
        return skip("cannot mount a tmpfs: %s", strerror(errno));
    snprintf(path, path_size, "%s/%s", dir, name);
    return PASSED;
}

static long free_pages(const char *dir)
{
    struct statvfs s;
    REQUIRE(statvfs(dir, &s) == 0, "statvfs %s: %s", dir, strerror(errno));
    return (long)(s.f_bavail * s.f_frsize / (unsigned long)page_size());
}

/* Fills the disk of dir with dir/filler until exactly `pages` pages are
 * left free. */
static void fill_leaving(const char *dir, long pages)
{
    char path[512];
    snprintf(path, sizeof path, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0, "open %s: %s", path, strerror(errno));
    static const char zeros[65536];
    off_t size = 0;
    ssize_t n;
    while ((n = write(fd, zeros, (size_t)page_size())) > 0)
        size += n;
    REQUIRE(n < 0 && errno == ENOSPC, "filling %s stopped without ENOSPC: %s", dir, strerror(errno));
    REQUIRE(size >= pages * page_size(), "only %ld bytes of the disk were free, not %ld pages", (long)size, pages);
    REQUIRE(ftruncate(fd, size - pages * page_size()) == 0, "ftruncate %s: %s", path, strerror(errno));
    close(fd);
    REQUIRE(free_pages(dir) == pages, "%ld pages free, not %ld", free_pages(dir), pages);
}

static void empty_disk(const char *dir)
{
    DIR *d = opendir(dir);
    REQUIRE(d, "opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    char path[768];
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

/* What a save that ran out of space must have left: FMNN_EIO naming the
 * file and the cause, the old file as it was, loading as the model it
 * holds (which saves back to the same bytes), no other file, and the
 * free space it found. */
static void expect_full_disk_failure(int st, const char *dir, const char *path, const unsigned char *old,
                                     size_t old_size, unsigned flags, long pages, const char *what)
{
    REQUIRE(st == FMNN_EIO, "%s with %ld pages free: status %d (%s), not FMNN_EIO", what, pages, st,
            fmnn_last_error());
    REQUIRE(strstr(fmnn_last_error(), path), "%s: the message does not name %s: %s", what, path, fmnn_last_error());
    REQUIRE(strstr(fmnn_last_error(), strerror(ENOSPC)), "%s: the message does not say \"%s\": %s", what,
            strerror(ENOSPC), fmnn_last_error());
    REQUIRE(same_file(path, old, old_size), "%s with %ld pages free changed the file it failed to replace", what,
            pages);
    fmnn_model *back = NULL;
    REQUIRE_OK(fmnn_model_load(&back, path));
    size_t n;
    unsigned char *again = saved_bytes(back, flags, &n);
    REQUIRE(n == old_size && memcmp(again, old, n) == 0, "%s: the old file loads as another model", what);
    free(again);
    fmnn_model_free(back);
    const char *stray = stray_file(dir, (const char *const[]){ "model.fmnn", "filler", NULL });
    REQUIRE(!stray, "%s with %ld pages free left %s behind", what, pages, stray);
    /* The temporary file's blocks came back: it is not held open. */
    REQUIRE(free_pages(dir) == pages, "%s: %ld pages free after the failure, %ld before", what, free_pages(dir),
            pages);
}

/* fmnn_model_save of `new` over a file of `old` on a disk with 0, 1,
 * 2, ... pages free: it fails while the new file cannot fit (outright
 * with no page free, after writing part of the temporary file with
 * some), and succeeds, writing what it writes anywhere, once it can.
 * Returns the pages the new file takes. */
static long save_sweep(const char *dir, const char *path, const fmnn_model *old, const fmnn_model *new,
                       unsigned flags)
{
    size_t old_size, new_size;
    unsigned char *old_bytes = saved_bytes(old, flags, &old_size);
    unsigned char *new_bytes = saved_bytes(new, flags, &new_size);
    const long needed = (long)((new_size + (size_t)page_size() - 1) / (size_t)page_size());
    for (long pages = 0; pages <= needed + 1; pages++) {
        empty_disk(dir);
        REQUIRE_OK(fmnn_model_save(old, path, flags));
        fill_leaving(dir, pages);
        fmnn_clear_error();
        int st = fmnn_model_save(new, path, flags);
        if (pages < needed) {
            expect_full_disk_failure(st, dir, path, old_bytes, old_size, flags, pages, "fmnn_model_save");
            continue;
        }
        REQUIRE(st == FMNN_OK, "the save failed with %ld pages free for its %ld: %s", pages, needed,
                fmnn_last_error());
        REQUIRE(same_file(path, new_bytes, new_size), "the save with %ld pages free wrote other bytes", pages);
        REQUIRE(!stray_file(dir, (const char *const[]){ "model.fmnn", "filler", NULL }), "a save left a file behind");
    }
    free(old_bytes);
    free(new_bytes);
    return needed;
}

/* Without and with the optimizer's state, files of 3 and 7 pages (the
 * writes fail in the middle of the payload); and a file smaller than
 * stdio's buffer, whose every byte waits in it until the header is
 * written back, so that no space shows only then. */
static int save_on_full_disk(void)
{
    char dir[512], path[600];
    int st = mount_small_disk(SMALL_DISK, dir, sizeof dir, "model.fmnn", path, sizeof path);
    if (st != PASSED)
        return st;
    fmnn_tensor *x, *y;
    make_data(16, &x, &y);
    fmnn_model *old = wide_model(1), *new = wide_model(2), *small = small_model(3);
    fmnn_fit_options o = quiet(8, 1);
    REQUIRE_OK(fmnn_model_fit(new, x, y, &o, NULL)); /* so that the optimizer has a state to save */
    long pages = save_sweep(dir, path, old, new, 0);
    REQUIRE(pages >= 3, "the file takes %ld pages, too few to be written in part", pages);
    pages = save_sweep(dir, path, old, new, FMNN_SAVE_OPTIMIZER);
    REQUIRE(pages >= 7, "the file with the optimizer's state takes only %ld pages", pages);
    size_t n;
    free(saved_bytes(small, FMNN_SAVE_OPTIMIZER, &n));
    REQUIRE(n < 4096, "the small model's file takes %zu bytes", n);
    save_sweep(dir, path, old, small, FMNN_SAVE_OPTIMIZER);
    fmnn_model_free(old);
    fmnn_model_free(new);
    fmnn_model_free(small);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    return PASSED;
}

/* A disk with room but no inode left for the temporary file: the save
 * fails before it writes anything, as the others do. */
static int save_without_inodes(void)
{
    char dir[512], path[600];
    /* Two inodes: the directory's and the old file's. */
    int st = mount_small_disk(SMALL_DISK ",nr_inodes=2", dir, sizeof dir, "model.fmnn", path, sizeof path);
    if (st != PASSED)
        return st;
    fmnn_model *old = wide_model(1), *new = wide_model(2);
    REQUIRE_OK(fmnn_model_save(old, path, FMNN_SAVE_OPTIMIZER));
    size_t old_size;
    unsigned char *old_bytes = saved_bytes(old, FMNN_SAVE_OPTIMIZER, &old_size);
    const long pages = free_pages(dir);
    REQUIRE(pages > 8, "only %ld pages free", pages);
    fmnn_clear_error();
    st = fmnn_model_save(new, path, FMNN_SAVE_OPTIMIZER);
    expect_full_disk_failure(st, dir, path, old_bytes, old_size, FMNN_SAVE_OPTIMIZER, pages, "fmnn_model_save");
    REQUIRE(strstr(fmnn_last_error(), "temporary file"), "the message does not say what failed: %s",
            fmnn_last_error());
    free(old_bytes);
    fmnn_model_free(old);
    fmnn_model_free(new);
    return PASSED;
}

/* A ModelCheckpoint that cannot write its file stops fit with FMNN_EIO
 * (its message, naming the file), leaves the last checkpoint whole, and
 * the model trains on once there is room. */
static int checkpoint_on_full_disk(void)
{
    char dir[512], path[600];
    int st = mount_small_disk(SMALL_DISK, dir, sizeof dir, "model.fmnn", path, sizeof path);
    if (st != PASSED)
        return st;
    fmnn_tensor *x, *y;
    make_data(16, &x, &y);
    fmnn_model *m = wide_model(3);
    fmnn_callback *checkpoint;
    REQUIRE_OK(fmnn_model_checkpoint(&checkpoint, path,
                                     &(fmnn_checkpoint_options){ .save_flags = FMNN_SAVE_OPTIMIZER }));
    fmnn_fit_options o = quiet(8, 1);
    o.callbacks = &checkpoint;
    o.n_callbacks = 1;
    REQUIRE_OK(fmnn_model_fit(m, x, y, &o, NULL));
    size_t old_size;
    unsigned char *old = slurp(path, &old_size);
    REQUIRE(old, "no checkpoint at %s", path);
    const long needed = (long)((old_size + (size_t)page_size() - 1) / (size_t)page_size());
    REQUIRE(needed >= 3, "the checkpoint takes only %ld pages", needed);
    for (long pages = 0; pages < needed; pages++) {
        fill_leaving(dir, pages);
        fmnn_history *h = NULL;
        fmnn_clear_error();
        st = fmnn_model_fit(m, x, y, &o, &h);
        REQUIRE(h && h->epochs == 1 && h->stop_reason == FMNN_STOP_ERROR,
                "fit's history does not show its finished epoch and the error: status %d (%s), %d epochs, reason %d",
                st, fmnn_last_error(), h ? h->epochs : -1, h ? (int)h->stop_reason : -1);
        fmnn_history_free(h);
        expect_full_disk_failure(st, dir, path, old, old_size, FMNN_SAVE_OPTIMIZER, pages, "ModelCheckpoint");
        REQUIRE(strstr(fmnn_last_error(), "ModelCheckpoint"), "the message does not name the callback");
    }
    empty_disk(dir);
    REQUIRE_OK(fmnn_model_fit(m, x, y, &o, NULL));
    size_t now_size;
    unsigned char *now = saved_bytes(m, FMNN_SAVE_OPTIMIZER, &now_size);
    REQUIRE(same_file(path, now, now_size), "the checkpoint after the disk emptied is not the model");
    free(now);
    free(old);
    fmnn_callback_free(checkpoint);
    fmnn_model_free(m);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    return PASSED;
}

/* A BackupAndRestore that cannot write its backup stops fit with
 * FMNN_EIO naming the backup's file, and leaves the previous backup
 * whole: the next run resumes from it once there is room. */
static int backup_on_full_disk(void)
{
    char dir[512], path[640], backup[600];
    int st = mount_small_disk(SMALL_DISK, dir, sizeof dir, "backup", backup, sizeof backup);
    if (st != PASSED)
        return st;
    snprintf(path, sizeof path, "%s/latest.fmnn", backup);
    fmnn_tensor *x, *y;
    make_data(16, &x, &y);
    fmnn_callback *keeper;
    REQUIRE_OK(fmnn_backup_and_restore(&keeper, backup, &(fmnn_backup_options){ 1, 0, 0 }));
    fmnn_fit_options o = quiet(8, 1);
    o.callbacks = &keeper;
    o.n_callbacks = 1;
    fmnn_model *m = wide_model(3);
    REQUIRE_OK(fmnn_model_fit(m, x, y, &o, NULL)); /* the backup of epoch 1 */
    fmnn_model_free(m);
    size_t old_size;
    unsigned char *old = slurp(path, &old_size);
    REQUIRE(old, "no backup at %s", path);
    const long needed = (long)((old_size + (size_t)page_size() - 1) / (size_t)page_size());
    o.epochs = 2;
    for (long pages = 0; pages < needed; pages++) {
        fill_leaving(dir, pages);
        m = wide_model(3); /* a program run again: it resumes, then cannot back up epoch 2 */
        fmnn_clear_error();
        st = fmnn_model_fit(m, x, y, &o, NULL);
        fmnn_model_free(m);
        REQUIRE(st == FMNN_EIO, "a backup with %ld pages free: status %d (%s), not FMNN_EIO", pages, st,
                fmnn_last_error());
        REQUIRE(strstr(fmnn_last_error(), path) && strstr(fmnn_last_error(), strerror(ENOSPC)) &&
                    strstr(fmnn_last_error(), "BackupAndRestore"),
                "the message does not name the callback, %s and \"%s\": %s", path, strerror(ENOSPC),
                fmnn_last_error());
        REQUIRE(same_file(path, old, old_size), "a backup with %ld pages free changed the previous one", pages);
        const char *stray = stray_file(backup, (const char *const[]){ "latest.fmnn", NULL });
        REQUIRE(!stray, "a backup with %ld pages free left %s behind", pages, stray);
    }
    empty_disk(dir);
    m = wide_model(3);
    fmnn_history *h = NULL;
    REQUIRE_OK(fmnn_model_fit(m, x, y, &o, &h));
    REQUIRE(h->initial_epoch == 0 && h->epochs == 2, "the run after the disk emptied did not resume: %d epochs from %d",
            h->epochs, h->initial_epoch);
    fmnn_history_free(h);
    free(old);
    fmnn_callback_free(keeper);
    fmnn_model_free(m);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    return PASSED;
}

/* report_write_history_csv with stderr going to a file: what it
 * printed (malloc'd, NUL-terminated), its result and errno. */
static char *write_history_capturing(const char *path, const report_run *run, int *rc, int *err)
{
    char said[600];
    snprintf(said, sizeof said, "%s/stderr-%ld", workdir, (long)getpid());
    fflush(stderr);
    int saved_stderr = dup(2), fd = open(said, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(saved_stderr >= 0 && fd >= 0 && dup2(fd, 2) == 2, "cannot redirect stderr: %s", strerror(errno));
    close(fd);
    errno = 0;
    *rc = report_write_history_csv(path, run, 1);
    *err = errno;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    size_t n = 0;
    char *text = (char *)slurp(said, &n);
    unlink(said);
    REQUIRE(text, "cannot read %s", said);
    char *whole = realloc(text, n + 1);
    REQUIRE(whole, "out of memory in the test");
    whole[n] = '\0';
    return whole;
}

/* The examples' report writer (examples/support/report_files.c): a CSV
 * that does not fit fails with ENOSPC, keeps the old file and removes
 * its PATH.tmp. */
static int report_on_full_disk(void)
{
    char dir[512], path[600];
    int st = mount_small_disk(SMALL_DISK, dir, sizeof dir, "history.csv", path, sizeof path);
    if (st != PASSED)
        return st;
    enum { EPOCHS = 600 }; /* about 24 KiB of CSV */
    static float loss[EPOCHS], accuracy[EPOCHS];
    for (int e = 0; e < EPOCHS; e++) {
        loss[e] = 1.0f / (float)(e + 3);
        accuracy[e] = 1.0f - loss[e];
    }
    report_run small = { "old", 2, loss, accuracy, NULL, NULL, 0.5f, 0.5f, 1.0 };
    report_run big = { "new", EPOCHS, loss, accuracy, loss, accuracy, 0.5f, 0.5f, 1.0 };
    char ref[600];
    snprintf(ref, sizeof ref, "%s/ref-%ld.csv", workdir, (long)getpid());
    REQUIRE(report_write_history_csv(ref, &big, 1) == 0, "writing %s: %s", ref, strerror(errno));
    size_t big_size;
    unsigned char *big_bytes = slurp(ref, &big_size);
    unlink(ref);
    REQUIRE(big_bytes, "cannot read %s", ref);
    const long needed = (long)((big_size + (size_t)page_size() - 1) / (size_t)page_size());
    for (long pages = 0; pages <= needed; pages++) {
        empty_disk(dir);
        REQUIRE(report_write_history_csv(path, &small, 1) == 0, "writing %s: %s", path, strerror(errno));
        size_t old_size;
        unsigned char *old = slurp(path, &old_size);
        fill_leaving(dir, pages);
        int rc, err;
        char *message = write_history_capturing(path, &big, &rc, &err);
        if (pages < needed) {
            REQUIRE(rc == -1 && err == ENOSPC, "%ld pages free for %ld: returned %d, errno %s", pages, needed, rc,
                    strerror(err));
            REQUIRE(strstr(message, path) && strstr(message, strerror(ENOSPC)),
                    "the message does not name %s and say \"%s\": %s", path, strerror(ENOSPC), message);
            REQUIRE(same_file(path, old, old_size), "the failed write changed %s", path);
            const char *stray = stray_file(dir, (const char *const[]){ "history.csv", "filler", NULL });
            REQUIRE(!stray, "the failed write left %s behind", stray);
            REQUIRE(free_pages(dir) == pages, "%ld pages free after the failure, %ld before", free_pages(dir),
                    pages);
        } else {
            REQUIRE(rc == 0, "%ld pages free for %ld: %s", pages, needed, strerror(err));
            REQUIRE(same_file(path, big_bytes, big_size), "the write with room wrote other bytes");
            REQUIRE(!*message, "a write that succeeded printed %s", message);
        }
        free(message);
        free(old);
    }
    free(big_bytes);
    return PASSED;
}

START_TEST(test_save_on_full_disk)
{
    in_child("fmnn_model_save on a full disk", save_on_full_disk);
}
END_TEST

START_TEST(test_save_without_inodes)
{
    in_child("fmnn_model_save without an inode", save_without_inodes);
}
END_TEST

START_TEST(test_checkpoint_on_full_disk)
{
    in_child("ModelCheckpoint on a full disk", checkpoint_on_full_disk);
}
END_TEST

START_TEST(test_backup_on_full_disk)
{
    in_child("BackupAndRestore on a full disk", backup_on_full_disk);
}
END_TEST

START_TEST(test_report_on_full_disk)
{
    in_child("the report writer on a full disk", report_on_full_disk);
}
END_TEST

/* ---- out of memory ---------------------------------------------------------- */

static int under_valgrind(void)
{
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    const char *preload = getenv("LD_PRELOAD"); /* for a build without valgrind.h */
    return preload && strstr(preload, "vgpreload") != NULL;
}

/* Why the address-space limit cannot be used here, or NULL. */
static const char *no_rlimit_as(void)
{
    if (UNDER_ASAN || UNDER_TSAN)
        return "a sanitizer's shadow memory cannot live under RLIMIT_AS";
    if (under_valgrind())
        return "valgrind cannot run a program under RLIMIT_AS";
    return NULL;
}

/* An allocator that gives every block pages of its own.  Under malloc, a
 * small block comes from memory its heap already holds, which no limit
 * takes away; through this one each of the library's allocations asks
 * the kernel for its pages (mmap).  And a block freed during the call
 * under test stays mapped until the call is over, so that no allocation
 * reuses another's pages: each then fails at a level of its own as the
 * sweep lowers the limit a page at a time.
 *
 * Under ASan or valgrind, which cannot run under RLIMIT_AS, the limit is
 * this allocator's own: it refuses a block that would take its pages past
 * a budget, and takes its blocks from malloc, where the tools watch them
 * (a block freed during the call is freed at once, its pages counted
 * until the call is over). */
typedef struct block_header {
    size_t total; /* bytes, whole pages */
    struct block_header *next_held;
} block_header;

static int emulated;            /* the budget, not RLIMIT_AS, is the limit */
static long budget = -1;        /* bytes the blocks may take; -1: any */
static long block_bytes;        /* what live blocks and held ones take */
static int holding;             /* a call is under test: hold freed blocks */
static block_header *held;      /* the blocks held (RLIMIT_AS) */
static long held_bytes;         /* the pages of blocks freed while holding (budget) */
static atomic_long live_blocks; /* allocated and not freed, by either test allocator */

static void *map_block(size_t size, void *user)
{
    (void)user;
    const size_t page = (size_t)page_size();
    size_t total = (size + sizeof(block_header) + page - 1) / page * page;
    if (budget >= 0 && block_bytes + (long)total > budget)
        return NULL;
    block_header *b = emulated ? malloc(total)
                               : mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!b || b == MAP_FAILED)
        return NULL;
    b->total = total;
    block_bytes += (long)total;
    live_blocks++;
    return b + 1;
}

static void release(block_header *b)
{
    block_bytes -= (long)b->total;
    if (emulated)
        free(b);
    else
        munmap(b, b->total);
}

static void unmap_block(void *ptr, void *user)
{
    (void)user;
    if (!ptr)
        return;
    block_header *b = (block_header *)ptr - 1;
    live_blocks--;
    if (holding && emulated) {
        held_bytes += (long)b->total;
        free(b);
    } else if (holding) {
        b->next_held = held;
        held = b;
    } else {
        release(b);
    }
}

static void hold_freed_blocks(int on)
{
    holding = on;
    if (on)
        return;
    block_bytes -= held_bytes;
    held_bytes = 0;
    while (held) {
        block_header *b = held;
        held = b->next_held;
        release(b);
    }
}

static const fmnn_allocator mapping_allocator = { map_block, unmap_block, NULL };

/* malloc, counted, so that a level can tell that nothing leaked. */
static void *counted_malloc(size_t size, void *user)
{
    (void)user;
    void *p = malloc(size);
    live_blocks += p != NULL;
    return p;
}

static void counted_free(void *ptr, void *user)
{
    (void)user;
    live_blocks -= ptr != NULL;
    free(ptr);
}

static const fmnn_allocator counted_allocator = { counted_malloc, counted_free, NULL };

/* The address space in use now, read without stdio (which allocates). */
static size_t address_space(void)
{
    char text[64] = "";
    int fd = open("/proc/self/statm", O_RDONLY);
    REQUIRE(fd >= 0, "/proc/self/statm: %s", strerror(errno));
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    REQUIRE(n > 0, "reading /proc/self/statm: %s", strerror(errno));
    return strtoul(text, NULL, 10) * (size_t)page_size();
}

/* The limit, `room` bytes above what is in use; room < 0 lifts it: the
 * soft limit of RLIMIT_AS, or, emulated, the mapping allocator's budget. */
static void limit_memory(long room)
{
    if (emulated) {
        budget = room < 0 ? -1 : block_bytes + room;
        return;
    }
    struct rlimit r;
    REQUIRE(getrlimit(RLIMIT_AS, &r) == 0, "getrlimit: %s", strerror(errno));
    r.rlim_cur = room < 0 ? r.rlim_max : (rlim_t)(address_space() + (size_t)room);
    REQUIRE(setrlimit(RLIMIT_AS, &r) == 0, "setrlimit: %s", strerror(errno));
}

/* What one case's call gave, compared bit for bit with the reference's. */
typedef struct outcome {
    float values[1024];
    size_t n;
} outcome;

typedef struct oom_case {
    const char *name;
    /* At full memory: what the model has done before (may be NULL). */
    void (*prepare)(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y);
    /* The call under test, under the limit: FMNN_OK or FMNN_ENOMEM. */
    int (*attempt)(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, outcome *out);
    /* The allocations every sweep of the case must have seen fail. */
    const char *must_fail[8];
} oom_case;

static void record_history(const fmnn_history *h, outcome *out)
{
    out->n = 0;
    for (int e = 0; e < h->epochs; e++) {
        out->values[out->n++] = h->loss[e];
        out->values[out->n++] = h->val_loss ? h->val_loss[e] : 0.0f;
        out->values[out->n++] = h->accuracy ? h->accuracy[e] : 0.0f;
    }
}

/* Two epochs of batches of 64 with a validation split and the history.
 * (Batches of 64 make the training buffers large enough that malloc maps
 * them apart from its heap, where the limit can refuse them.) */
static int fit_from_scratch(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, outcome *out)
{
    fmnn_fit_options o = quiet(64, 2);
    o.validation_split = 0.25f;
    fmnn_history *h = NOT_NULL;
    int st = fmnn_model_fit(m, x, y, &o, &h);
    if (st == FMNN_OK)
        record_history(h, out);
    else
        REQUIRE(h == NULL, "a failed fit gave a history");
    fmnn_history_free(h);
    return st;
}

/* Batches of 8 first, so that the next fit must grow the buffers. */
static void fit_small_batches(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y)
{
    fmnn_fit_options o = quiet(8, 1);
    REQUIRE_OK(fmnn_model_fit(m, x, y, &o, NULL));
}

/* A larger batch than before, with class weights. */
static int fit_larger_batch(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, outcome *out)
{
    fmnn_fit_options o = quiet(96, 1);
    const float class_weight[5] = { 1.0f, 2.0f, 0.5f, 1.0f, 1.5f };
    o.class_weight = class_weight;
    o.n_class_weight = 5;
    fmnn_history *h = NOT_NULL;
    int st = fmnn_model_fit(m, x, y, &o, &h);
    if (st == FMNN_OK)
        record_history(h, out);
    fmnn_history_free(h);
    return st;
}

static int evaluate(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, outcome *out)
{
    out->n = 2;
    return fmnn_model_evaluate(m, x, y, 64, &out->values[0], &out->values[1]);
}

static int predict(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, outcome *out)
{
    (void)y;
    fmnn_tensor *p = NOT_NULL;
    int st = fmnn_model_predict(m, x, 64, &p);
    if (st != FMNN_OK) {
        REQUIRE(p == NULL, "a failed predict gave a tensor");
        return st;
    }
    out->n = fmnn_tensor_size(p);
    REQUIRE(out->n <= sizeof out->values / sizeof *out->values, "too many outputs");
    memcpy(out->values, fmnn_tensor_const_data(p), out->n * sizeof(float));
    fmnn_tensor_free(p);
    return st;
}

static const oom_case oom_cases[] = {
    { "fit", NULL, fit_from_scratch,
      { "the training buffers", "the activation list", "the layers' saved state", "the shuffle order",
        "the history", NULL } },
    { "fit with a larger batch", fit_small_batches, fit_larger_batch,
      { "the training buffers", "the class weights", NULL } },
    { "evaluate", NULL, evaluate, { "the training buffers", NULL } },
    { "predict", NULL, predict, { "the training buffers", "a tensor", "tensor data", NULL } },
};

#define OOM_CASES (int)(sizeof oom_cases / sizeof *oom_cases)

/* What every model goes on to do after the call under test, at full
 * memory, and what that leaves: the model's file and its predictions. */
typedef struct result {
    outcome call, predicted;
    unsigned char *file;
    size_t file_size;
} result;

static void run_on(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, result *r)
{
    fmnn_fit_options o = quiet(8, 1);
    REQUIRE_OK(fmnn_model_fit(m, x, y, &o, NULL));
    REQUIRE_OK(predict(m, x, y, &r->predicted));
    r->file = saved_bytes(m, FMNN_SAVE_OPTIMIZER, &r->file_size);
}

static int same_outcome(const outcome *a, const outcome *b)
{
    return a->n == b->n && memcmp(a->values, b->values, a->n * sizeof *a->values) == 0;
}

/* A sweep of one case: its reference and the failures it has seen. */
typedef struct sweep_state {
    const oom_case *c;
    const fmnn_tensor *x, *y;
    const fmnn_tensor *x4, *y4; /* their first 4 samples */
    result ref;
    char seen[32][160];
    int n_seen, levels, failures;
} sweep_state;

/* One level: a new model does the case's call with `room` bytes of
 * address space to spare; 1 when the call ran out of memory.  The call
 * must succeed or fail with FMNN_ENOMEM and a message, and a failed one
 * must have trained nothing and succeed when made again.  Then (after
 * each success and the first failure of each kind, and every eighth
 * level but under FMNN_TEST_QUICK, that is valgrind) the model trains
 * on, predicts and saves, to the reference's bits. */
static int try_level(sweep_state *sw, long room)
{
    const oom_case *c = sw->c;
    fmnn_model *m = small_model(5);
    if (c->prepare)
        c->prepare(m, sw->x, sw->y);
    size_t n_weights;
    const float *weights = fmnn_model_weights(m, &n_weights);
    float *before = malloc(n_weights * sizeof *before);
    REQUIRE(before, "out of memory in the test");
    memcpy(before, weights, n_weights * sizeof *before);
    int64_t epochs_before, steps_before, epochs, steps;
    REQUIRE_OK(fmnn_model_trained(m, &epochs_before, &steps_before));

    /* Where the child was, should it die. */
    snprintf(told->text, sizeof told->text, "trying %s with %ld bytes to spare", c->name, room);
    result r = { 0 };
    fmnn_clear_error();
    limit_memory(room);
    hold_freed_blocks(1);
    int st = c->attempt(m, sw->x, sw->y, &r.call);
    hold_freed_blocks(0);
    limit_memory(-1);
    REQUIRE(st == FMNN_OK || st == FMNN_ENOMEM, "%s with %ld bytes to spare: status %d (%s)", c->name, room, st,
            fmnn_last_error());
    int thorough = st == FMNN_OK || (sw->levels % 8 == 0 && !getenv("FMNN_TEST_QUICK"));
    sw->levels++;
    if (st == FMNN_ENOMEM) {
        sw->failures++;
        const char *msg = fmnn_last_error();
        REQUIRE(strstr(msg, "out of memory"), "%s with %ld bytes to spare: FMNN_ENOMEM with the message \"%s\"",
                c->name, room, msg);
        int known = 0;
        for (int i = 0; i < sw->n_seen && !known; i++)
            known = strcmp(sw->seen[i], msg) == 0;
        if (!known && sw->n_seen < 32) {
            snprintf(sw->seen[sw->n_seen++], sizeof sw->seen[0], "%s", msg);
            thorough = 1;
        }
        /* Nothing was trained, and the same call now succeeds. */
        REQUIRE(memcmp(before, fmnn_model_weights(m, NULL), n_weights * sizeof *before) == 0,
                "%s failed with %ld bytes to spare but changed the weights", c->name, room);
        REQUIRE_OK(fmnn_model_trained(m, &epochs, &steps));
        REQUIRE(epochs == epochs_before && steps == steps_before, "%s failed but counted training", c->name);
        if (thorough) {
            /* A batch smaller than any before: buffers the failure freed
             * must not be thought still there. */
            float values[1 + FMNN_MAX_METRICS];
            REQUIRE_OK(fmnn_model_test_on_batch(m, sw->x4, sw->y4, NULL, values));
            int again = c->attempt(m, sw->x, sw->y, &r.call);
            REQUIRE(again == FMNN_OK, "%s after running out of memory: %s", c->name, fmnn_last_error());
        }
    }
    free(before);
    if (thorough) {
        REQUIRE(same_outcome(&r.call, &sw->ref.call), "%s with %ld bytes to spare gave other results", c->name,
                room);
        run_on(m, sw->x, sw->y, &r);
        REQUIRE(same_outcome(&r.predicted, &sw->ref.predicted),
                "%s with %ld bytes to spare: other predictions after", c->name, room);
        REQUIRE(r.file_size == sw->ref.file_size && memcmp(r.file, sw->ref.file, r.file_size) == 0,
                "%s with %ld bytes to spare: the model trained on to other bits", c->name, room);
        free(r.file);
    }
    fmnn_model_free(m);
    REQUIRE(live_blocks == 0, "%s with %ld bytes to spare: %ld blocks leaked", c->name, room, (long)live_blocks);
    return st == FMNN_ENOMEM;
}

/* One case through one allocator, at every level of spare address space
 * from the least that is enough down to none, a page at a time;
 * must_fail lists what the failures must have included. */
static void sweep_case(const oom_case *c, const char *allocator, const char *const *must_fail,
                       const fmnn_tensor *x, const fmnn_tensor *y, const fmnn_tensor *x4, const fmnn_tensor *y4)
{
    static sweep_state sw;
    memset(&sw, 0, sizeof sw);
    sw.c = c;
    sw.x = x;
    sw.y = y;
    sw.x4 = x4;
    sw.y4 = y4;
    /* The reference, at full memory.  It also starts what must exist
     * before any limit: libgomp exits the process ("Thread creation
     * failed") when it cannot create its threads, so with more than one
     * thread its pool has to be up first; and OpenBLAS spins forever in
     * blas_memory_alloc when it cannot get its first buffer. */
    fmnn_model *m = small_model(5);
    if (c->prepare)
        c->prepare(m, x, y);
    REQUIRE_OK(c->attempt(m, x, y, &sw.ref.call));
    run_on(m, x, y, &sw.ref);
    fmnn_model_free(m);
    REQUIRE(live_blocks == 0, "%s: %ld blocks leaked at full memory", c->name, (long)live_blocks);

    /* The least room that is enough, to a page: doubled, then halved. */
    const long page = page_size();
    long enough = page, short_of = 0;
    while (try_level(&sw, enough)) {
        REQUIRE(enough < (1L << 30), "%s still fails with 1 GiB to spare", c->name);
        short_of = enough;
        enough *= 2;
    }
    while (enough - short_of > page) {
        const long mid = (short_of + enough) / 2 / page * page;
        if (try_level(&sw, mid))
            short_of = mid;
        else
            enough = mid;
    }
    for (long room = short_of; room >= 0; room -= page)
        try_level(&sw, room);

    char list[32 * 162] = "";
    for (int i = 0; i < sw.n_seen; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "\n  %s", sw.seen[i]);
    REQUIRE(sw.failures > 0, "%s (%s) never ran out of memory", c->name, allocator);
    for (int i = 0; must_fail[i]; i++) {
        int found = 0;
        for (int j = 0; j < sw.n_seen && !found; j++)
            found = strstr(sw.seen[j], must_fail[i]) != NULL;
        REQUIRE(found, "%s (%s): no level made %s fail; the failures seen:%s", c->name, allocator, must_fail[i],
                list);
    }
    if (getenv("FMNN_TEST_VERBOSE"))
        printf("%s (%s): %d of %d levels ran out of memory (%ld bytes were enough); the failures:%s\n", c->name,
               allocator, sw.failures, sw.levels, enough, list);
    free(sw.ref.file);
}

/* The first n_cases cases, with this many threads and this GEMM (NULL:
 * the CPU's own): through malloc (where the large buffers can fail) and,
 * when every_block, through the mapping allocator (where every
 * allocation can).  Where RLIMIT_AS cannot be used, the mapping
 * allocator's budget alone, when every_block. */
static int sweep(int threads, const char *gemm, int n_cases, int every_block)
{
    const char *why = no_rlimit_as();
    if (why && !every_block)
        return skip("%s", why);
    emulated = why != NULL;
    REQUIRE_OK(fmnn_set_num_threads(threads));
    REQUIRE(fmnn__gemm_select(gemm), "no %s GEMM on this CPU", gemm ? gemm : "default");
    /* malloc maps a block of 128 KiB or more apart from its heap, so that
     * the limit can refuse it; but after such a block is freed it raises
     * that threshold to its size and keeps the next ones in the heap,
     * out of the limit's reach.  A threshold set by hand stays put.  And
     * a malloc that fails in one arena tries another: in the arena of
     * another thread, whose address space is reserved already, it would
     * not fail.  One arena for every thread.  (A sanitizer's malloc has
     * neither setting, and needs neither under the budget.) */
    REQUIRE(emulated || mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1, "mallopt(M_MMAP_THRESHOLD) refused");
    REQUIRE(emulated || mallopt(M_ARENA_MAX, 1) == 1, "mallopt(M_ARENA_MAX) refused");
    fmnn_tensor *x, *y, *x4, *y4;
    make_data(128, &x, &y);
    make_data(4, &x4, &y4); /* the first samples of any make_data */
    for (int k = 0; k < n_cases; k++) {
        if (!emulated) {
            fmnn_set_allocator(&counted_allocator);
            sweep_case(&oom_cases[k], "malloc", (const char *const[]){ "the training buffers", NULL }, x, y, x4,
                       y4);
        }
        if (every_block) {
            fmnn_set_allocator(&mapping_allocator);
            sweep_case(&oom_cases[k], emulated ? "a budget of pages" : "a mapping per block",
                       oom_cases[k].must_fail, x, y, x4, y4);
        }
        fmnn_set_allocator(NULL);
    }
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(x4);
    fmnn_tensor_free(y4);
    if (emulated)
        printf("check_exhaustion: %s, and so the allocator's own limit stands in for RLIMIT_AS\n", why ? why : "");
    return PASSED;
}

/* One thread: libgomp creates none, so nothing outside the library needs
 * memory that the limit could refuse. */
static int sweep_one_thread(void)
{
    return sweep(1, NULL, OOM_CASES, 1);
}

/* Two threads, their pool started before the limit (see sweep_case).
 * The allocations are those of one thread: malloc alone, and fit alone
 * (libgomp's idle thread spins, which makes every level slow). */
static int sweep_two_threads(void)
{
    return sweep(2, NULL, 1, 0);
}

/* The OpenBLAS GEMM of CPUs without AVX2, its buffers taken before the
 * limit (see sweep_case). */
static int sweep_openblas(void)
{
    return sweep(1, "openblas", OOM_CASES, 0);
}

START_TEST(test_out_of_memory_one_thread)
{
    in_child("out of memory, one thread", sweep_one_thread);
}
END_TEST

START_TEST(test_out_of_memory_two_threads)
{
    in_child("out of memory, two threads", sweep_two_threads);
}
END_TEST

START_TEST(test_out_of_memory_openblas)
{
    in_child("out of memory, OpenBLAS", sweep_openblas);
}
END_TEST

/* ---- the suite ----------------------------------------------------------------- */

static Suite *exhaustion_suite(void)
{
    Suite *s = suite_create("exhaustion");
    TCase *disk = tcase_create("full disk");
    tcase_set_timeout(disk, 300);
    tcase_add_test(disk, test_save_on_full_disk);
    tcase_add_test(disk, test_save_without_inodes);
    tcase_add_test(disk, test_checkpoint_on_full_disk);
    tcase_add_test(disk, test_backup_on_full_disk);
    tcase_add_test(disk, test_report_on_full_disk);
    suite_add_tcase(s, disk);
    TCase *memory = tcase_create("out of memory");
    tcase_set_timeout(memory, 300);
    tcase_add_test(memory, test_out_of_memory_one_thread);
    tcase_add_test(memory, test_out_of_memory_two_threads);
    tcase_add_test(memory, test_out_of_memory_openblas);
    suite_add_tcase(s, memory);
    return s;
}

/* Removes workdir and what is in it (the tmpfs mount points, empty once
 * their namespaces are gone). */
static void remove_workdir(void)
{
    DIR *d = opendir(workdir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", workdir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(workdir);
}

int main(void)
{
    if (!mkdtemp(workdir)) {
        perror("check_exhaustion: mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(exhaustion_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_workdir();
    return failed == 0 ? 0 : 1;
}
