/*
 * internal.h - what every libfmnn source file shares: error reporting,
 * allocation, threads and the random number generator.  Not installed.
 */
#ifndef FMNN_INTERNAL_H
#define FMNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fmnn.h"

/* Functions shared between library files but hidden from users. */
#define FMNN_INTERNAL __attribute__((visibility("hidden")))

#if defined(__GNUC__)
#define FMNN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FMNN_PRINTF(f, a)
#endif

/* ---- errors (error.c) ---------------------------------------------- */

/*
 * Records a message for fmnn_last_error() and returns status, so that a
 * failure reads as one line:
 *     return fmnn__error(FMNN_EINVAL, "fmnn_tensor_new: rank %d is not in 1..4", rank);
 */
FMNN_INTERNAL int fmnn__error(int status, const char *fmt, ...) FMNN_PRINTF(2, 3);

/* Marks the last error as agreed by the processes of a collective
 * (distributed.c), until the next error replaces it; and asks. */
FMNN_INTERNAL void fmnn__error_mark_agreed(void);
FMNN_INTERNAL int fmnn__error_is_agreed(void);

/* ---- memory (alloc.c) ---------------------------------------------- */

/*
 * Every allocation goes through the user's allocator (fmnn_set_allocator).
 * Blocks are 64-byte aligned so SIMD loads never straddle a cache line.
 * fmnn__alloc returns NULL on failure and records FMNN_ENOMEM with what
 * was being allocated; fmnn__alloc_array also catches n * size overflow.
 */
FMNN_INTERNAL void *fmnn__alloc(size_t size, const char *what);
FMNN_INTERNAL void *fmnn__alloc_zeroed(size_t size, const char *what);
FMNN_INTERNAL void *fmnn__alloc_array(size_t n, size_t size, const char *what);
FMNN_INTERNAL void fmnn__free(void *ptr);

/* Returns 1 and stores a * b in *out unless the product overflows. */
static inline int fmnn__mul_ok(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

/* ---- threads (threads.c) ------------------------------------------- */

/* The thread count for OpenMP loops and the GEMM's split: the calling
 * thread's own count while it has one (an inference context's), else the
 * one of fmnn_set_num_threads(). */
FMNN_INTERNAL int fmnn__threads(void);

/* Gives the calling thread its own count (0: none, the global one again);
 * returns the one it replaces, to give back afterwards. */
FMNN_INTERNAL int fmnn__threads_local(int n);

/*
 * Inside an OpenMP parallel region: the calling thread's share
 * [*first, *last) of 0..length, cut in whole tiles (the last may be
 * short).  The cut depends only on the thread count, so results computed
 * per share are the same on every run.
 */
FMNN_INTERNAL void fmnn__thread_band(int length, int tile, int *first, int *last);

/*
 * Denormal floats (magnitudes below 1.2e-38) take a microcode slow path
 * on x86, up to a hundred times slower per instruction.  L2 regularization
 * drives many weights, activations and gradients there; training the
 * notebook's L2 model ran 25% slower for it.  TensorFlow, and so Keras,
 * flushes denormals to zero on the threads that do its math, and so do we:
 * every thread that works for the library calls fmnn__flush_denormals()
 * when it starts (the caller's thread per batch, each OpenMP thread per
 * parallel region) and gives the returned mode back to
 * fmnn__restore_fp_mode() when it is done, so the caller's own floating
 * point is never changed.  A no-op on CPUs without SSE.
 */
FMNN_INTERNAL unsigned fmnn__flush_denormals(void);
FMNN_INTERNAL void fmnn__restore_fp_mode(unsigned saved);

/* ---- random numbers ---------------------------------------------------- */

/*
 * splitmix64: tiny, fast, and good enough for initialisation, shuffling
 * and dropout masks.  Each use gets its own generator from an explicit
 * seed, so there is no hidden global RNG state.
 */
typedef struct fmnn_rng {
    uint64_t state;
} fmnn_rng;

static inline uint64_t fmnn__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void fmnn__rng_seed(fmnn_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

static inline uint64_t fmnn__rng_next(fmnn_rng *rng)
{
    rng->state += 0x9e3779b97f4a7c15ULL;
    return fmnn__mix64(rng->state);
}

/* Uniform float in [0, 1) with 24 random bits. */
static inline float fmnn__rng_uniform(fmnn_rng *rng)
{
    return (float)(fmnn__rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n) for 0 < n < 2^32, by multiply-shift, which
 * avoids the bias of a plain modulo. */
static inline uint32_t fmnn__rng_below(fmnn_rng *rng, uint32_t n)
{
    return (uint32_t)(((fmnn__rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

#endif /* FMNN_INTERNAL_H */
