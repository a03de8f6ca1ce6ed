/*
 * transpose_avx512.h - a 16 x 16 transpose of 32-bit values in zmm
 * registers, for the packing of gemm_avx512.c and gemm_bf16_pack_avx512.c.
 * Compiled for AVX-512F whatever the library's flags: only callers that
 * are themselves compiled for it, and run on a CPU that has it, may use it.
 */
#ifndef FMNN_TRANSPOSE_AVX512_H
#define FMNN_TRANSPOSE_AVX512_H

#include <immintrin.h>

/* Transposes the 16 x 16 block r[0..15] in place: r[q] becomes column q. */
__attribute__((target("avx512f"))) static inline void fmnn__transpose_16x16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) { /* interleave rows in 32-bit pairs */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* then in 64-bit pairs */
        for (int j = 0; j < 2; j++) {
            __m512d x = _mm512_castps_pd(t[i + j]), y = _mm512_castps_pd(t[i + j + 2]);
            r[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            r[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    }
    for (int i = 0; i < 16; i += 8) { /* then 128-bit lanes of 8 rows */
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xDD);
        }
    }
    for (int j = 0; j < 8; j++) { /* then 128-bit lanes of all 16 */
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
}

#endif /* FMNN_TRANSPOSE_AVX512_H */
