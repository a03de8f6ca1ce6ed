/*
 * gemm.c - the one place that calls OpenBLAS.
 *
 * OpenBLAS runs single-threaded; we split each large GEMM into blocks
 * of rows (or columns) and give one block to each of our OpenMP threads.
 * Then a single pool of threads does all the work: OpenBLAS's own pool
 * would otherwise spin while ours runs the element-wise loops and the
 * two would fight over the cores.  The split depends only on the thread
 * count, so results are reproducible for a given count.
 */
#include <cblas.h>

#include "layer_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many multiply-adds one thread is faster than a split. */
#define SPLIT_MIN_WORK 2000000.0

static void sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void fmnn__gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc)
{
    int threads = fmnn__threads();
    if (threads == 1 || (double)m * n * k < SPLIT_MIN_WORK) {
        sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* Split the longer side of C, in multiples of 16 to keep the
     * micro-kernels on full tiles. */
    const int split_rows = m >= n;
    const int length = split_rows ? m : n;
    const int tiles = (length + 15) / 16;
#pragma omp parallel num_threads(threads)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int first = (int)((long)tiles * t / nt) * 16;
        int last = (int)((long)tiles * (t + 1) / nt) * 16;
        if (last > length)
            last = length;
        if (first < last) {
            int size = last - first;
            if (split_rows) /* rows first..last of op(A) and C */
                sgemm(trans_a, trans_b, size, n, k, alpha, trans_a ? a + first : a + (size_t)first * lda,
                      lda, b, ldb, beta, c + (size_t)first * ldc, ldc);
            else /* columns first..last of op(B) and C */
                sgemm(trans_a, trans_b, m, size, k, alpha, a, lda,
                      trans_b ? b + (size_t)first * ldb : b + first, ldb, beta, c + first, ldc);
        }
    }
}
