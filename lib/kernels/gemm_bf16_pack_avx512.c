/*
 * gemm_bf16_pack_avx512.c - the rounding and packing of gemm_bf16.c's
 * panels with AVX-512, for the AMX and AVX512-BF16 paths: the same bits as
 * the portable packing (fmnn__bf16_round on 16 lanes with integer
 * arithmetic, not vcvtne2ps2bf16, which reads denormals as zero).
 *
 * Everything is built from 32-bit words holding a pair of bf16 values,
 * steps p and p + 1 of k in the low and high halves:
 *   - a row of A panel is 16 such words per 32 steps (16 consecutive
 *     words of one source row when A is not transposed);
 *   - a row of pairs of a B panel is 32 words, one a column (two source
 *     rows interleaved when B is not transposed).
 * The other layout of each is a 16 x 16 transpose of words away.
 */
#include <immintrin.h>

#include "gemm_bf16_impl.h"
#include "transpose_avx512.h"

#define NR FMNN_GEMM_BF16_NR
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

_Static_assert(NR == 32 && FMNN_GEMM_BF16_K_ALIGN == 32, "a panel's rows are whole zmm");

AVX512 static inline __mmask16 lanes_below(int count)
{
    if (count >= 16)
        return (__mmask16)0xFFFF;
    return count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1u);
}

/* fmnn__bf16_round of 16 floats, each in the low half of its lane. */
AVX512 static inline __m512i round_lanes(__m512 x)
{
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i upper = _mm512_srli_epi32(bits, 16);
    const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(upper, _mm512_set1_epi32(1)));
    const __m512i nearest = _mm512_srli_epi32(_mm512_add_epi32(bits, bias), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)),
                                                  _mm512_set1_epi32(0x7F800000));
    return _mm512_mask_or_epi32(nearest, nan, upper, _mm512_set1_epi32(0x0040));
}

/* Words pairing lane i of `low` (step p) with lane i of `high` (step p + 1). */
AVX512 static inline __m512i pairs_across(__m512 low, __m512 high)
{
    return _mm512_or_si512(round_lanes(low), _mm512_slli_epi32(round_lanes(high), 16));
}

/* The 16 words of 32 consecutive floats x[0 .. n) (zero past n; x + 16 is
 * formed only when it points into the operand). */
AVX512 static inline __m512i pairs_along(const float *x, int n)
{
    const __m512 upper = n > 16 ? _mm512_maskz_loadu_ps(lanes_below(n - 16), x + 16) : _mm512_setzero_ps();
    const __m256i low = _mm512_cvtepi32_epi16(round_lanes(_mm512_maskz_loadu_ps(lanes_below(n), x)));
    const __m256i high = _mm512_cvtepi32_epi16(round_lanes(upper));
    return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

/* The floats from column `first` of row `step` of src (rows ld apart),
 * in the lanes given; zero for a step past kc or no lanes, whose address
 * is then not even formed. */
AVX512 static inline __m512 load_step(const float *src, size_t ld, int step, int first, int kc, __mmask16 lanes)
{
    return step < kc && lanes ? _mm512_maskz_loadu_ps(lanes, src + (size_t)step * ld + first) : _mm512_setzero_ps();
}

AVX512 static inline void transpose_words(__m512i w[16])
{
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_castsi512_ps(w[i]);
    fmnn__transpose_16x16(r);
    for (int i = 0; i < 16; i++)
        w[i] = _mm512_castps_si512(r[i]);
}

AVX512 void fmnn__gemm_bf16_pack_a_avx512(const float *a, int lda, int trans, int rows, int mr, int kc, int kp,
                                          uint16_t *panel)
{
    if (!trans) {
        for (int i = 0; i < rows; i++)
            for (int p = 0; p < kp; p += 32)
                _mm512_store_si512(panel + (size_t)i * kp + p, pairs_along(a + (size_t)i * lda + p, kc - p));
    } else { /* a row of A is one step of k: pair two rows, then transpose */
        for (int i0 = 0; i0 < rows; i0 += 16) {
            const __mmask16 lanes = lanes_below(rows - i0);
            for (int p = 0; p < kp; p += 32) {
                __m512i w[16];
#pragma GCC unroll 16
                for (int q = 0; q < 16; q++) {
                    const int step = p + 2 * q;
                    w[q] = pairs_across(load_step(a, (size_t)lda, step, i0, kc, lanes),
                                        load_step(a, (size_t)lda, step + 1, i0, kc, lanes));
                }
                transpose_words(w);
                for (int i = 0; i < 16 && i0 + i < rows; i++)
                    _mm512_store_si512(panel + (size_t)(i0 + i) * kp + p, w[i]);
            }
        }
    }
    memset(panel + (size_t)rows * kp, 0, (size_t)(mr - rows) * kp * sizeof *panel);
}

AVX512 void fmnn__gemm_bf16_pack_b_avx512(const float *b, int ldb, int trans, int kc, int kp, int cols,
                                          uint16_t *block)
{
    for (int j0 = 0; j0 < cols; j0 += NR) {
        uint16_t *panel = block + (size_t)j0 * kp;
        for (int h = 0; h < NR; h += 16) {
            const int first = j0 + h; /* the column in lane 0 */
            if (!trans) {
                const __mmask16 lanes = lanes_below(cols - first);
                for (int q = 0; q < kp / 2; q++)
                    _mm512_store_si512(panel + (size_t)q * 2 * NR + 2 * h,
                                       pairs_across(load_step(b, (size_t)ldb, 2 * q, first, kc, lanes),
                                                    load_step(b, (size_t)ldb, 2 * q + 1, first, kc, lanes)));
            } else { /* a row of B is one column: its words, transposed */
                for (int p = 0; p < kp; p += 32) {
                    __m512i w[16];
#pragma GCC unroll 16
                    for (int j = 0; j < 16; j++)
                        w[j] = first + j < cols ? pairs_along(b + (size_t)(first + j) * ldb + p, kc - p)
                                                : _mm512_setzero_si512();
                    transpose_words(w);
#pragma GCC unroll 16
                    for (int q = 0; q < 16; q++)
                        _mm512_store_si512(panel + (size_t)(p / 2 + q) * 2 * NR + 2 * h, w[q]);
                }
            }
        }
    }
}
