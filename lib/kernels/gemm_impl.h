/*
 * gemm_impl.h - what gemm.c shares with its micro-kernels (gemm_avx512.c,
 * gemm_avx2.c) and with tests/check_gemm.c.  Not installed.
 *
 * A micro-kernel computes one MR x NR tile of C from kc steps of A and a
 * packed panel of B:
 *
 *     b_panel[p * NR + j] = op(B)[p][j]     (64-byte aligned, zero-padded)
 *
 * and, for A, one of two layouts, one kernel each:
 *
 *     tile_a_by_k:    op(A)[i][p] = a[p * a_step + i]
 *                     (op(A) read in place when A is transposed, a_step =
 *                     lda; or a panel packed by k, a_step = MR)
 *     tile_a_by_row:  op(A)[i][p] = a[i * FMNN_GEMM_KC + p]
 *                     (rows of A copied into a panel; a_step is unused)
 *
 * It sums over p = 0, 1, ..., kc - 1 in that order, one FMA chain per
 * element of C, then writes only the valid rows x cols of the tile:
 *
 *     c[i][j] = alpha * sum + beta * c[i][j]    (beta != 0)
 *     c[i][j] = alpha * sum                     (beta == 0: c is not read)
 *
 * The rows of A past `rows` are read (they must exist, and are best zero)
 * but do not reach C.  Every element of C goes through the same
 * instructions whether its tile is full or an edge, and whichever layout
 * A has, so its value does not depend on where it lies.
 */
#ifndef FMNN_GEMM_IMPL_H
#define FMNN_GEMM_IMPL_H

#include "internal.h"

/* The longest run of k a micro-kernel sums (kc <= FMNN_GEMM_KC), and the
 * row stride of the A panels of tile_a_by_row. */
#define FMNN_GEMM_KC 384

typedef void fmnn_gemm_microkernel(int kc, const float *a, int a_step, const float *b_panel, float *c,
                                   int ldc, int rows, int cols, float alpha, float beta);

/*
 * Packs count vectors of kc floats into ceil(count / width) panels of kc
 * x width floats (width <= 32), one after another, the last zero-padded:
 *
 *     panels[(i / width) * kc * width + p * width + i % width] = vector i [p]
 *
 * Element p of vector i is src[p * ld + i] when k_rows (a plain copy of
 * rows), else src[i * ld + p] (a transposing copy).  panels is 64-byte
 * aligned.
 */
typedef void fmnn_gemm_pack(const float *src, int ld, int k_rows, int count, int kc, int width,
                            float *panels);

typedef struct fmnn_gemm_kernel {
    const char *name;
    int mr, nr;                       /* the tile of C it computes */
    fmnn_gemm_microkernel *tile_a_by_k;
    fmnn_gemm_microkernel *tile_a_by_row;
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

/* A product's operands as fmnn__gemm and fmnn__gemm_bf16 take them. */
typedef struct fmnn_gemm_problem {
    int trans_a, trans_b;
    int m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
} fmnn_gemm_problem;

/* The k blocks of both GEMMs: as few as kc_max allows, of sizes differing
 * by at most one; their bounds depend on k alone. */
static inline int fmnn__gemm_k_block_count(int k, int kc_max)
{
    return (k + kc_max - 1) / kc_max;
}

static inline int fmnn__gemm_k_block_start(int k, int blocks, int index)
{
    return (int)((long)k * index / blocks);
}

/*
 * Whether bands of rows of C beat bands of columns for `parts` threads
 * with mr x nr tiles: each thread's multiply-adds (whole tiles) plus its
 * packing, pack_cost multiply-adds a value, for the busiest thread.  A
 * band of rows packs its rows of A and all of B; a band of columns packs
 * all of A and its columns of B (gemm.c).
 */
FMNN_INTERNAL int fmnn__gemm_split_by_rows(const fmnn_gemm_problem *g, int mr, int nr, int pack_cost, int parts);

/*
 * For tests and benchmarks: the name of the code path fmnn__gemm takes
 * ("avx512", "avx2" or "openblas"), and a way to force one.  Selecting
 * a path this CPU cannot run is refused (returns 0); NULL restores the
 * automatic choice.  Not thread-safe: call it between GEMMs.
 */
FMNN_INTERNAL const char *fmnn__gemm_path(void);
FMNN_INTERNAL int fmnn__gemm_select(const char *name);
/* Whether this CPU can run that path. */
FMNN_INTERNAL int fmnn__gemm_available(const char *name);

#endif /* FMNN_GEMM_IMPL_H */
