/*
 * threads.c - one thread count for the whole library, which a thread may
 * override for itself (an inference context's own count).  Our OpenMP
 * loops use it, and so do the GEMMs, which kernels/gemm.c splits over the
 * same threads (OpenBLAS is told to use one thread per call).
 */
#define _GNU_SOURCE /* sched_getaffinity */
#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __SSE__
#include <xmmintrin.h>
#endif

/* Atomic: any thread may set it while others compute (they see the new
 * count from their next parallel loop on). */
static atomic_int thread_count; /* 0 until first asked: then the CPU count */

/* A count of this thread's own, while an inference context predicts on it. */
static _Thread_local int local_count;

/* The count an environment variable asks for: a whole number from 1 to
 * 4096 at its start (OMP_NUM_THREADS may list one per nesting level: the
 * first is ours); 0 when it is unset or says something else. */
static int env_count(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return 0;
    char *end;
    const long n = strtol(v, &end, 10);
    return end != v && (*end == '\0' || *end == ',') && n >= 1 && n <= 4096 ? (int)n : 0;
}

/* Without fmnn_set_num_threads: FMNN_NUM_THREADS, else OMP_NUM_THREADS,
 * as every OpenMP program honours it, else the CPUs this process may run
 * on (taskset, cgroups and MPI's binding shrink that set), else the
 * online CPUs. */
static int default_threads(void)
{
    int n = env_count("FMNN_NUM_THREADS");
    if (!n)
        n = env_count("OMP_NUM_THREADS");
#ifdef __linux__
    cpu_set_t cpus;
    if (!n && sched_getaffinity(0, sizeof cpus, &cpus) == 0)
        n = CPU_COUNT(&cpus);
#endif
    if (!n) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online < 1 ? 1 : online > 4096 ? 4096 : (int)online;
    }
    return n;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Once, before the first count is read or set, so that no GEMM can run
 * while OpenBLAS changes its setting: OpenBLAS itself stays
 * single-threaded, since kernels/gemm.c hands each of our threads its own
 * block of every large GEMM.  Then the default count, unless
 * fmnn_set_num_threads came first. */
static void init(void)
{
    openblas_set_num_threads(1);
    int unset = 0;
    atomic_compare_exchange_strong(&thread_count, &unset, default_threads());
}

FMNN_API int fmnn_set_num_threads(int n)
{
    if (n < 1)
        return fmnn__error(FMNN_EINVAL, "fmnn_set_num_threads: n must be >= 1, got %d", n);
    pthread_once(&init_once, init); /* safe if threads race to be first */
    atomic_store(&thread_count, n);
    return FMNN_OK;
}

FMNN_API int fmnn_get_num_threads(void)
{
    pthread_once(&init_once, init);
    return atomic_load(&thread_count);
}

int fmnn__threads(void)
{
    return local_count ? local_count : fmnn_get_num_threads();
}

int fmnn__threads_local(int n)
{
    const int before = local_count;
    local_count = n;
    return before;
}

void fmnn__thread_band(int length, int tile, int *first, int *last)
{
    int part = 0, parts = 1;
#ifdef _OPENMP
    part = omp_get_thread_num();
    parts = omp_get_num_threads();
#endif
    const long tiles = ((long)length + tile - 1) / tile;
    *first = (int)(tiles * part / parts) * tile;
    *last = (int)(tiles * (part + 1) / parts) * tile;
    if (*first > length)
        *first = length;
    if (*last > length)
        *last = length;
}

/* MXCSR bit 15 flushes denormal results to zero (FTZ); bit 6 reads
 * denormal inputs as zero (DAZ). */
#define MXCSR_FLUSH_TO_ZERO 0x8000u
#define MXCSR_DENORMALS_ARE_ZERO 0x0040u

unsigned fmnn__flush_denormals(void)
{
#ifdef __SSE__
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | MXCSR_FLUSH_TO_ZERO | MXCSR_DENORMALS_ARE_ZERO);
    return saved;
#else
    return 0;
#endif
}

/* Only the two mode bits go back: exception flags raised meanwhile stay
 * raised, as after any other floating-point code. */
void fmnn__restore_fp_mode(unsigned saved)
{
#ifdef __SSE__
    const unsigned ours = MXCSR_FLUSH_TO_ZERO | MXCSR_DENORMALS_ARE_ZERO;
    _mm_setcsr((_mm_getcsr() & ~ours) | (saved & ours));
#else
    (void)saved;
#endif
}
