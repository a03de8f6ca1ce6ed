/*
 * gemm_avx512.c - the AVX-512 micro-kernel of kernels/gemm.c: a 14 x 32
 * tile of C held in 28 zmm registers, and the packing of its panels.
 *
 * Each step p of the kernel loads one row of the B panel (32 floats, two
 * zmm) and, for each of the 14 rows of the tile, broadcasts A[i][p] and
 * issues two FMAs: 28 FMAs for 2 loads and 14 broadcasts, so the two FMA
 * ports stay busy.  The functions are compiled for AVX-512 whatever the
 * library's flags; gemm.c calls them only on a CPU that has it.
 */
#include <immintrin.h>

#include "gemm_impl.h"
#include "transpose_avx512.h"

#define MR FMNN_GEMM_AVX512_MR
#define NR FMNN_GEMM_AVX512_NR
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

/* The lanes of the two zmm halves of a tile row that hold valid columns. */
AVX512 static inline __mmask16 lanes_below(int count)
{
    if (count >= 16)
        return (__mmask16)0xFFFF;
    return count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u);
}

/* The kernel for both layouts of A: element (i, p) at a[p * step_p +
 * i * step_i].  Inlined into the two below, each with constant strides
 * where it can.  by_k reads A in place, one row of A per step, so it asks
 * for the row PREFETCH_STEPS ahead (rows of a large A are 4 KB or more
 * apart, where the hardware prefetchers do not follow). */
#define PREFETCH_STEPS 4

AVX512 static inline __attribute__((always_inline)) void
tile_14x32(int kc, const float *a, size_t step_p, size_t step_i, int prefetch_a, const float *b_panel,
           float *c, int ldc, int rows, int cols, float alpha, float beta)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
        if (i < rows) { /* C is written at the end: start bringing it in */
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + (size_t)i * ldc + NR - 1), _MM_HINT_T0);
        }
    }

    for (int p = 0; p < kc; p++) {
        const __m512 b_lo = _mm512_load_ps(b_panel);
        const __m512 b_hi = _mm512_load_ps(b_panel + 16);
        if (prefetch_a)
            _mm_prefetch((const char *)(a + PREFETCH_STEPS * step_p), _MM_HINT_T0);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512 a_ip = _mm512_set1_ps(a[i * step_i]);
            acc[i][0] = _mm512_fmadd_ps(a_ip, b_lo, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a_ip, b_hi, acc[i][1]);
        }
        a += step_p;
        b_panel += NR;
    }

    /* c = alpha * acc + beta * c, the same arithmetic for full and edge
     * tiles; beta == 0 never reads c. */
    const __m512 va = _mm512_set1_ps(alpha);
    const __m512 vb = _mm512_set1_ps(beta);
    if (rows == MR && cols == NR) {
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            float *row = c + (size_t)i * ldc;
            __m512 lo = _mm512_mul_ps(va, acc[i][0]);
            __m512 hi = _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                lo = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), lo);
                hi = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + 16), hi);
            }
            _mm512_storeu_ps(row, lo);
            _mm512_storeu_ps(row + 16, hi);
        }
        return;
    }
    const __mmask16 mask_lo = lanes_below(cols);
    const __mmask16 mask_hi = lanes_below(cols - 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i >= rows)
            break;
        float *row = c + (size_t)i * ldc;
        __m512 lo = _mm512_mul_ps(va, acc[i][0]);
        __m512 hi = _mm512_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            lo = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask_lo, row), lo);
            hi = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask_hi, row + 16), hi);
        }
        _mm512_mask_storeu_ps(row, mask_lo, lo);
        _mm512_mask_storeu_ps(row + 16, mask_hi, hi);
    }
}

AVX512 static void tile_a_by_k(int kc, const float *a, int a_step, const float *b_panel, float *c, int ldc,
                               int rows, int cols, float alpha, float beta)
{
    tile_14x32(kc, a, (size_t)a_step, 1, 1, b_panel, c, ldc, rows, cols, alpha, beta);
}

AVX512 static void tile_a_by_row(int kc, const float *a, int a_step, const float *b_panel, float *c,
                                 int ldc, int rows, int cols, float alpha, float beta)
{
    (void)a_step;
    tile_14x32(kc, a, 1, FMNN_GEMM_KC, 0, b_panel, c, ldc, rows, cols, alpha, beta);
}

/* k_rows: row p of every panel is a run of the source row src + p * ld,
 * copied with masked loads and stores. */
AVX512 static void pack_copy(const float *src, int ld, int count, int kc, int width, float *panels)
{
    const __mmask16 store_lo = lanes_below(width), store_hi = lanes_below(width - 16);
    for (int p = 0; p < kc; p++) {
        const float *from = src + (size_t)p * ld;
        for (int q0 = 0; q0 < count; q0 += width) {
            const int n = count - q0;
            float *to = panels + (size_t)q0 * kc + (size_t)p * width;
            _mm512_mask_storeu_ps(to, store_lo, _mm512_maskz_loadu_ps(lanes_below(n), from + q0));
            if (width > 16)
                _mm512_mask_storeu_ps(to + 16, store_hi,
                                      _mm512_maskz_loadu_ps(lanes_below(n - 16), from + q0 + 16));
        }
    }
}

/* Otherwise vector i is the source row src + i * ld: 16 x 16 transposes
 * of 16 vectors by 16 steps of k, the vectors past count zero. */
AVX512 static void pack_transpose(const float *src, int ld, int count, int kc, int width, float *panels)
{
    for (int q0 = 0; q0 < count; q0 += width) {
        float *panel = panels + (size_t)q0 * kc;
        for (int h = 0; h < width; h += 16) {
            const __mmask16 store_mask = lanes_below(width - h);
            const int first = q0 + h; /* the vector in lane 0 */
            for (int p = 0; p < kc; p += 16) {
                const int steps = kc - p < 16 ? kc - p : 16;
                const __mmask16 load_mask = lanes_below(steps);
                __m512 r[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    r[i] = first + i < count && h + i < width
                               ? _mm512_maskz_loadu_ps(load_mask, src + (size_t)(first + i) * ld + p)
                               : _mm512_setzero_ps();
                fmnn__transpose_16x16(r);
#pragma GCC unroll 16
                for (int q = 0; q < 16; q++) {
                    if (q >= steps)
                        break;
                    _mm512_mask_storeu_ps(panel + (size_t)(p + q) * width + h, store_mask, r[q]);
                }
            }
        }
    }
}

AVX512 static void pack_panels(const float *src, int ld, int k_rows, int count, int kc, int width,
                               float *panels)
{
    if (k_rows)
        pack_copy(src, ld, count, kc, width, panels);
    else
        pack_transpose(src, ld, count, kc, width, panels);
}

const fmnn_gemm_kernel fmnn__gemm_avx512 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .tile_a_by_k = tile_a_by_k,
    .tile_a_by_row = tile_a_by_row,
    .pack = pack_panels,
};
