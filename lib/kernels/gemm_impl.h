/*
 * gemm_impl.h - what gemm.c shares with its micro-kernels (gemm_avx512.c,
 * gemm_avx2.c) and with tests/check_gemm.c.  Not installed.
 *
 * A micro-kernel computes one MR x NR tile of C from two packed panels:
 *
 *     a_panel: kc x MR floats, a_panel[p * MR + i] = op(A)[i][p]
 *     b_panel: kc x NR floats, b_panel[p * NR + j] = op(B)[p][j]
 *
 * both 64-byte aligned and zero-padded past the valid rows and columns.
 * It sums over p = 0, 1, ..., kc - 1 in that order, one FMA chain per
 * element of C, then writes only the valid rows x cols of the tile:
 *
 *     c[i][j] = alpha * sum + beta * c[i][j]    (beta != 0)
 *     c[i][j] = alpha * sum                     (beta == 0: c is not read)
 *
 * Every element of C goes through the same instructions whether its tile
 * is full or an edge, so its value does not depend on where it lies.
 */
#ifndef FMNN_GEMM_IMPL_H
#define FMNN_GEMM_IMPL_H

#include "internal.h"

typedef void fmnn_gemm_microkernel(int kc, const float *a_panel, const float *b_panel, float *c,
                                   int ldc, int rows, int cols, float alpha, float beta);

/*
 * Fills a panel of kc rows x width floats (width <= 32) from count <=
 * width vectors of a row-major matrix, zero beyond count.  k_rows: row p
 * of the panel is contiguous at src + p * ld (a plain copy); otherwise
 * column i is, at src + i * ld (a transposing copy).  The panel is
 * 64-byte aligned.
 */
typedef void fmnn_gemm_pack(const float *src, int ld, int k_rows, int count, int kc, int width,
                            float *panel);

typedef struct fmnn_gemm_kernel {
    const char *name;
    int mr, nr;                       /* the tile of C it computes */
    fmnn_gemm_microkernel *tile;
    fmnn_gemm_pack *pack;             /* NULL: gemm.c's portable one */
} fmnn_gemm_kernel;

/* 14 x 32 tiles: 28 zmm accumulators, two loads of B and one broadcast of A
 * per step. */
#define FMNN_GEMM_AVX512_MR 14
#define FMNN_GEMM_AVX512_NR 32
FMNN_INTERNAL extern const fmnn_gemm_kernel fmnn__gemm_avx512;

/* 6 x 16 tiles: 12 ymm accumulators. */
#define FMNN_GEMM_AVX2_MR 6
#define FMNN_GEMM_AVX2_NR 16
FMNN_INTERNAL extern const fmnn_gemm_kernel fmnn__gemm_avx2;

/*
 * For tests and benchmarks: the name of the code path fmnn__gemm takes
 * ("avx512", "avx2" or "openblas"), and a way to force one.  Selecting
 * a path this CPU cannot run is refused (returns 0); NULL restores the
 * automatic choice.  Not thread-safe: call it between GEMMs.
 */
FMNN_INTERNAL const char *fmnn__gemm_path(void);
FMNN_INTERNAL int fmnn__gemm_select(const char *name);

#endif /* FMNN_GEMM_IMPL_H */
