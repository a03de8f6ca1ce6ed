/*
 * gemm_avx512bf16.c - the AVX512-BF16 micro-kernel of kernels/gemm_bf16.c:
 * a 14 x 32 tile of C in 28 zmm accumulators, fed by vdpbf16ps.
 *
 * Each step q reads one row of pairs of the B panel (32 columns x steps
 * 2q, 2q + 1: two zmm) and, for each of the 14 rows, broadcasts the pair
 * A[i][2q], A[i][2q + 1] as one 32-bit word and issues two vdpbf16ps,
 * each adding both products of a pair to 16 fp32 sums.  Compiled for
 * AVX512-BF16 whatever the library's flags; gemm_bf16.c calls it only on
 * a CPU and OS that run it.
 */
#include <immintrin.h>

#include "gemm_bf16_impl.h"

#define MR FMNN_GEMM_BF16_AVX512BF16_MR
#define NR FMNN_GEMM_BF16_NR
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

_Static_assert(NR == 32, "a tile row is two zmm");

/* The lanes of the two zmm halves of a tile row that hold valid columns. */
AVX512BF16 static inline __mmask16 lanes_below(int count)
{
    if (count >= 16)
        return (__mmask16)0xFFFF;
    return count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u);
}

/* One row of C from its sums: alpha * sum (+ beta * c), the valid columns. */
AVX512BF16 static inline void store_row(float *row, __m512 lo, __m512 hi, int cols, float alpha, float beta)
{
    const __mmask16 mask_lo = lanes_below(cols), mask_hi = lanes_below(cols - 16);
    lo = _mm512_mul_ps(_mm512_set1_ps(alpha), lo);
    hi = _mm512_mul_ps(_mm512_set1_ps(alpha), hi);
    if (beta != 0.0f) {
        const __m512 vb = _mm512_set1_ps(beta);
        lo = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask_lo, row), lo);
        hi = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask_hi, row + 16), hi);
    }
    _mm512_mask_storeu_ps(row, mask_lo, lo);
    _mm512_mask_storeu_ps(row + 16, mask_hi, hi);
}

AVX512BF16 void fmnn__gemm_bf16_store_avx512(const float *acc, float *c, int ldc, int rows, int cols, float alpha,
                                             float beta)
{
    for (int i = 0; i < rows; i++)
        store_row(c + (size_t)i * ldc, _mm512_load_ps(acc + (size_t)i * NR), _mm512_load_ps(acc + (size_t)i * NR + 16),
                  cols, alpha, beta);
}

AVX512BF16 static void tile_14x32(int kp, const uint16_t *a_panel, const uint16_t *b_panel, float *c, int ldc,
                                  int rows, int cols, float alpha, float beta)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (int q = 0; q < kp / 2; q++) {
        const __m512bh b_lo = (__m512bh)_mm512_load_si512(b_panel + (size_t)q * 2 * NR);
        const __m512bh b_hi = (__m512bh)_mm512_load_si512(b_panel + (size_t)q * 2 * NR + NR);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            uint32_t pair;
            memcpy(&pair, a_panel + (size_t)i * kp + 2 * q, sizeof pair);
            const __m512bh a_pair = (__m512bh)_mm512_set1_epi32((int)pair);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a_pair, b_lo);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a_pair, b_hi);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i >= rows)
            break;
        store_row(c + (size_t)i * ldc, acc[i][0], acc[i][1], cols, alpha, beta);
    }
}

const fmnn_gemm_bf16_kernel fmnn__gemm_bf16_avx512bf16 = {
    .name = "avx512bf16",
    .mr = MR,
    .tile = tile_14x32,
    .pack_a = fmnn__gemm_bf16_pack_a_avx512,
    .pack_b = fmnn__gemm_bf16_pack_b_avx512,
};
