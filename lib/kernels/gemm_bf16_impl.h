/*
 * gemm_bf16_impl.h - what gemm_bf16.c shares with its micro-kernels
 * (gemm_amx.c, gemm_avx512bf16.c) and with tests/check_gemm_bf16.c.  Not
 * installed.
 *
 * Every path reads the same packed bfloat16 panels, made straight from
 * the fp32 operands by gemm_bf16.c, or with AVX-512 and the same bits by
 * gemm_bf16_pack_avx512.c (the rounding happens in the packing):
 *
 *     A panel:  a_panel[i * kp + p] = bf16(op(A)[row0 + i][p0 + p])
 *               MR rows, each kp long (row-major: an AMX A tile's rows)
 *     B panel:  b_panel[(p / 2) * 2 * NR + 2 * j + p % 2] = bf16(op(B)[p][j])
 *               NR = 32 columns in the VNNI pair layout: each 32-bit word
 *               holds steps p and p + 1 of one column, as vdpbf16ps and
 *               an AMX B tile want them
 *
 * kp is the block's kc rounded up to FMNN_GEMM_BF16_K_ALIGN (an AMX
 * tile's 32 steps of k); the rows past `rows`, the columns past `cols`
 * and the steps past kc are zero.  Both panels are 64-byte aligned.
 *
 * A micro-kernel sums the kp steps in increasing pairs, in fp32, one sum
 * per element of C, and writes the valid rows x cols of its MR x NR tile:
 *
 *     c[i][j] = alpha * sum + beta * c[i][j]    (beta != 0)
 *     c[i][j] = alpha * sum                     (beta == 0: c is not read)
 *
 * The sum of an element depends on its row of A and column of B alone,
 * not on its place in the tile, so neither does its value.
 */
#ifndef FMNN_GEMM_BF16_IMPL_H
#define FMNN_GEMM_BF16_IMPL_H

#include <stdint.h>
#include <string.h>

#include "internal.h"

/* The columns of a tile of C and of a B panel, on every path. */
#define FMNN_GEMM_BF16_NR 32

/* kp is a multiple of this: the steps of k in one AMX tile. */
#define FMNN_GEMM_BF16_K_ALIGN 32

typedef void fmnn_gemm_bf16_microkernel(int kp, const uint16_t *a_panel, const uint16_t *b_panel, float *c,
                                        int ldc, int rows, int cols, float alpha, float beta);

/*
 * Round and pack op(A)[0 .. rows, 0 .. kc] into an mr x kp A panel, the
 * element (i, p) at a[p * lda + i] when trans, else a[i * lda + p]; and
 * op(B)[0 .. kc, 0 .. cols] into ceil(cols / NR) B panels of kp steps, one
 * after another, (p, j) at b[j * ldb + p] when trans, else b[p * ldb + j].
 */
typedef void fmnn_gemm_bf16_pack_a(const float *a, int lda, int trans, int rows, int mr, int kc, int kp,
                                   uint16_t *panel);
typedef void fmnn_gemm_bf16_pack_b(const float *b, int ldb, int trans, int kc, int kp, int cols,
                                   uint16_t *block);

typedef struct fmnn_gemm_bf16_kernel {
    const char *name;
    int mr;                           /* the rows of its tile of C */
    fmnn_gemm_bf16_microkernel *tile;
    void (*begin)(void);              /* NULL, or called before a region's tiles (AMX's configuration) */
    void (*end)(void);                /* NULL, or called after them */
    fmnn_gemm_bf16_pack_a *pack_a;    /* NULL: gemm_bf16.c's portable ones */
    fmnn_gemm_bf16_pack_b *pack_b;
} fmnn_gemm_bf16_kernel;

/* The packing with AVX-512F/BW/VL, bit for bit the portable one's
 * (gemm_bf16_pack_avx512.c). */
FMNN_INTERNAL fmnn_gemm_bf16_pack_a fmnn__gemm_bf16_pack_a_avx512;
FMNN_INTERNAL fmnn_gemm_bf16_pack_b fmnn__gemm_bf16_pack_b_avx512;

/* 32 x 32 tiles: four AMX accumulator tiles (gemm_amx.c). */
#define FMNN_GEMM_BF16_AMX_MR 32
FMNN_INTERNAL extern const fmnn_gemm_bf16_kernel fmnn__gemm_bf16_amx;

/* Asks Linux, once per process, to let this process's threads use the AMX
 * tile data; 0 if it refuses (or is not Linux). */
FMNN_INTERNAL int fmnn__gemm_bf16_amx_permitted(void);

/* 14 x 32 tiles: 28 zmm accumulators (gemm_avx512bf16.c). */
#define FMNN_GEMM_BF16_AVX512BF16_MR 14
FMNN_INTERNAL extern const fmnn_gemm_bf16_kernel fmnn__gemm_bf16_avx512bf16;

/* c[i][j] = alpha * acc[i * NR + j] (+ beta * c[i][j]) for the valid rows x
 * cols, with AVX-512F: the AMX kernel's way from its tiles to C. */
FMNN_INTERNAL void fmnn__gemm_bf16_store_avx512(const float *acc, float *c, int ldc, int rows, int cols,
                                                float alpha, float beta);

/*
 * x rounded to bfloat16 (its top 16 bits) to nearest, ties to even; a NaN
 * stays a NaN (made quiet), infinities and signed zeros stay, denormals
 * round like any other value.
 */
static inline uint16_t fmnn__bf16_round(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((bits >> 16) | 0x0040u);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

static inline float fmnn__bf16_to_float(uint16_t h)
{
    const uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/*
 * For tests and benchmarks, as fmnn__gemm_path and fmnn__gemm_select: the
 * path fmnn__gemm_bf16 takes ("amx", "avx512bf16" or "portable"), forcing
 * one (refused, 0, when this CPU or OS cannot run it; NULL restores the
 * automatic choice; not thread-safe: call it between GEMMs), and whether
 * this CPU can run a path at all.
 */
FMNN_INTERNAL const char *fmnn__gemm_bf16_path(void);
FMNN_INTERNAL int fmnn__gemm_bf16_select(const char *name);
FMNN_INTERNAL int fmnn__gemm_bf16_available(const char *name);
/* Whether the CPU and the OS support that path, without asking Linux for
 * AMX's permission (which fmnn__gemm_bf16_available and the first bf16
 * product do, once: it grows every signal frame of the process). */
FMNN_INTERNAL int fmnn__gemm_bf16_supported(const char *name);

#endif /* FMNN_GEMM_BF16_IMPL_H */
