/*
 * fmnn/common.h - status codes, error messages, threads and allocation.
 *
 * Every fallible call in libfmnn returns an int: FMNN_OK (0) on success or
 * a negative FMNN_E... code on failure.  fmnn_last_error() then gives a
 * message, kept per thread, that names the layer, argument, file or shape.
 */
#ifndef FMNN_COMMON_H
#define FMNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(FMNN_BUILDING) && defined(__GNUC__)
#define FMNN_API __attribute__((visibility("default")))
#else
#define FMNN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes.  New codes are only ever added at the end. */
enum fmnn_status {
    FMNN_OK = 0,
    FMNN_EINVAL = -1,    /**< an argument is invalid (NULL, out of range) */
    FMNN_ENOMEM = -2,    /**< an allocation failed */
    FMNN_ESHAPE = -3,    /**< shapes do not fit together */
    FMNN_ESTATE = -4,    /**< call made in the wrong order (fit before compile) */
    FMNN_EIO = -5,       /**< reading or writing a file failed */
    FMNN_EFORMAT = -6,   /**< a file is corrupt, truncated or of the wrong kind */
    FMNN_ENUMERIC = -7,  /**< NaN or Inf in the inputs or the loss */
    FMNN_ECANCELED = -8, /**< canceled: what a fit callback may return to make fit fail */
    FMNN_ENOTSUP = -9    /**< valid, but beyond what the library does (an ONNX op it cannot import) */
};

/** A short, static description of a status code.  Never NULL. */
FMNN_API const char *fmnn_strerror(int status);

/**
 * The message of the last error raised on this thread, naming what went
 * wrong ("conv2d_1: kernel 3x3 is larger than its 2x2 input").  Empty
 * string when there was none.  The pointer stays valid until the next
 * libfmnn call on this thread.
 */
FMNN_API const char *fmnn_last_error(void);

/** Forgets the last error of this thread. */
FMNN_API void fmnn_clear_error(void);

/**
 * Records a message for fmnn_last_error(), printf-style, and returns
 * status: for code that plugs into libfmnn (a callback, a collective)
 * to say what failed in the words libfmnn's own errors use.
 */
FMNN_API int fmnn_set_error(int status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/**
 * Sets how many threads each libfmnn call uses (n >= 1), in an OpenMP
 * team of the calling thread's own; OpenBLAS stays on one.  Results are
 * bit-identical for the same seed and the same thread count.  Returns
 * FMNN_EINVAL when n < 1.  Thread-safe, but a call already running may
 * switch to the new count midway: set it before work.
 */
FMNN_API int fmnn_set_num_threads(int n);

/** The thread count in effect (default: the number of online CPUs). */
FMNN_API int fmnn_get_num_threads(void);

/**
 * Replaces the allocator libfmnn uses for everything it allocates
 * (tests use it to make the k-th allocation fail).  NULL, or a struct
 * with a NULL function, restores malloc and free.  Call it only while no
 * libfmnn object exists: a block must be freed by the allocator that
 * made it.
 */
typedef struct fmnn_allocator {
    void *(*malloc_fn)(size_t size, void *user);
    void (*free_fn)(void *ptr, void *user);
    void *user;
} fmnn_allocator;

FMNN_API void fmnn_set_allocator(const fmnn_allocator *allocator);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_COMMON_H */
