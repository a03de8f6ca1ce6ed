/*
 * gemm_avx2.c - the AVX2 + FMA micro-kernel of kernels/gemm.c: a 6 x 16
 * tile of C held in 12 ymm registers.
 *
 * Each step p loads one row of the B panel (16 floats, two ymm) and, for
 * each of the 6 rows of the tile, broadcasts A[i][p] and issues two FMAs.
 * Compiled for AVX2 + FMA whatever the library's flags; gemm.c calls it
 * only on a CPU that has both.
 */
#include <immintrin.h>

#include "gemm_impl.h"

#define MR FMNN_GEMM_AVX2_MR
#define NR FMNN_GEMM_AVX2_NR
#define AVX2 __attribute__((target("avx2,fma")))

/* All-ones in the lanes of a ymm below count, for maskload/maskstore. */
AVX2 static inline __m256i lanes_below(int count)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane);
}

/* The kernel for both layouts of A: element (i, p) at a[p * step_p +
 * i * step_i].  Inlined into the two below.  by_k reads A in place, one
 * row of A per step, so it asks for the row PREFETCH_STEPS ahead. */
#define PREFETCH_STEPS 4

AVX2 static inline __attribute__((always_inline)) void
tile_6x16(int kc, const float *a, size_t step_p, size_t step_i, int prefetch_a, const float *b_panel, float *c,
          int ldc, int rows, int cols, float alpha, float beta)
{
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
        if (i < rows)
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
    }

    for (int p = 0; p < kc; p++) {
        const __m256 b_lo = _mm256_load_ps(b_panel);
        const __m256 b_hi = _mm256_load_ps(b_panel + 8);
        if (prefetch_a)
            _mm_prefetch((const char *)(a + PREFETCH_STEPS * step_p), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 a_ip = _mm256_broadcast_ss(a + i * step_i);
            acc[i][0] = _mm256_fmadd_ps(a_ip, b_lo, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a_ip, b_hi, acc[i][1]);
        }
        a += step_p;
        b_panel += NR;
    }

    /* c = alpha * acc + beta * c, the same arithmetic for full and edge
     * tiles; beta == 0 never reads c. */
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256 vb = _mm256_set1_ps(beta);
    if (rows == MR && cols == NR) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *row = c + (size_t)i * ldc;
            __m256 lo = _mm256_mul_ps(va, acc[i][0]);
            __m256 hi = _mm256_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), lo);
                hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), hi);
            }
            _mm256_storeu_ps(row, lo);
            _mm256_storeu_ps(row + 8, hi);
        }
        return;
    }
    const __m256i mask_lo = lanes_below(cols);
    const __m256i mask_hi = lanes_below(cols - 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (i >= rows)
            break;
        float *row = c + (size_t)i * ldc;
        __m256 lo = _mm256_mul_ps(va, acc[i][0]);
        __m256 hi = _mm256_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            lo = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row, mask_lo), lo);
            hi = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8, mask_hi), hi);
        }
        _mm256_maskstore_ps(row, mask_lo, lo);
        _mm256_maskstore_ps(row + 8, mask_hi, hi);
    }
}

AVX2 static void tile_a_by_k(int kc, const float *a, int a_step, const float *b_panel, float *c, int ldc,
                             int rows, int cols, float alpha, float beta)
{
    tile_6x16(kc, a, (size_t)a_step, 1, 1, b_panel, c, ldc, rows, cols, alpha, beta);
}

AVX2 static void tile_a_by_row(int kc, const float *a, int a_step, const float *b_panel, float *c, int ldc,
                               int rows, int cols, float alpha, float beta)
{
    (void)a_step;
    tile_6x16(kc, a, 1, FMNN_GEMM_KC, 0, b_panel, c, ldc, rows, cols, alpha, beta);
}

const fmnn_gemm_kernel fmnn__gemm_avx2 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .tile_a_by_k = tile_a_by_k,
    .tile_a_by_row = tile_a_by_row,
    .pack = NULL,
};
