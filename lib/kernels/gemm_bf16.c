/*
 * gemm_bf16.c - fmnn__gemm's product with its inputs rounded to bfloat16,
 * for Keras's mixed_bfloat16 policy: every element of op(A) and op(B) is
 * rounded to nearest even (gemm_bf16_impl.h), the products are summed in
 * fp32.  Three paths, chosen once from the CPU and the OS: AMX tiles
 * (gemm_amx.c), AVX512-BF16's vdpbf16ps (gemm_avx512bf16.c), and the
 * portable one here, which widens the bf16 values back to fp32 and
 * multiplies in C, so that the tests run on any x86-64 (and under
 * valgrind, whose CPUID hides AVX-512 and AMX: there the portable path is
 * the one chosen).
 *
 * Blocking, as gemm.c's, for MR x 32 tiles:
 *
 *   for each block of up to NC columns of C
 *     for each k block of up to KC = 512 (its bounds depend on k alone)
 *       round and pack op(B)[k block, columns] into 32-wide pair panels
 *       for each MR rows of C
 *         round and pack op(A)[rows, k block] into a row panel
 *         for each 32-wide panel of the B block
 *           micro-kernel: the MR x 32 tile of C (+)= A panel x B panel
 *
 * The panels are bf16 (gemm_bf16_impl.h gives their layouts), made
 * straight from the fp32 operands: no fp32 copy.  The B block (KC x 1024
 * bf16, 1 MB) stays in L2, the A panel (32 x 512 bf16, 32 KB) in L1.  The
 * first k block applies beta to C (beta 0 never reads C), the later ones
 * add to it.
 *
 * Threads and determinism, as gemm.c's: each thread takes a band of rows
 * or of columns of C with its own buffers, k is never split, and each
 * element of C is the k blocks' sums added in order, each sum a fixed
 * chain over its row of A and column of B.  So for a given path the
 * result does not depend on the thread count or on the blocks of C.
 * The paths may differ in the last bits: they order the two products of
 * a pair their own way.  vdpbf16ps and AMX read bf16 denormals as zero
 * whatever MXCSR says; the portable path does so by hand (valgrind, where
 * it runs, ignores MXCSR's DAZ), and every path runs with fp32 denormals
 * flushed, on one thread as on many.
 */
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <pthread.h>

#include "gemm_bf16_impl.h"
#include "gemm_impl.h"
#include "kernels.h"

#define NR FMNN_GEMM_BF16_NR
#define K_ALIGN FMNN_GEMM_BF16_K_ALIGN

/* Longest k block, a multiple of K_ALIGN. */
#define KC_MAX 512

/* bf16 values in a packed block of B: KC_MAX x 1024 columns (1 MB), or
 * more columns when k is shorter. */
#define B_BLOCK_VALUES (KC_MAX * 1024)

/* The portable tile: 8 x 32 floats of accumulators. */
#define PORTABLE_MR 8

/* The most rows of any micro-kernel's tile. */
#define MR_MAX 32
_Static_assert(FMNN_GEMM_BF16_AMX_MR <= MR_MAX && FMNN_GEMM_BF16_AVX512BF16_MR <= MR_MAX && PORTABLE_MR <= MR_MAX,
               "MR_MAX is too small");
_Static_assert(KC_MAX % K_ALIGN == 0, "k blocks must fill whole AMX tiles");

/* Below this many multiply-adds one thread is faster than a split. */
#define SPLIT_MIN_WORK 2000000.0

/* Cost of rounding and packing one value, in multiply-adds, for
 * fmnn__gemm_split_by_rows. */
#define PACK_COST 16

/* Each thread's packed block of B and panel of A: static, so the hot path
 * never allocates. */
static _Thread_local _Alignas(64) uint16_t b_block[B_BLOCK_VALUES];
static _Thread_local _Alignas(64) uint16_t a_panel[MR_MAX * KC_MAX];

typedef fmnn_gemm_problem gemm_problem;

/* ---- the portable micro-kernel --------------------------------------- */

/* A bf16 value in fp32, a denormal read as zero (as the hardware does). */
static float widen(uint16_t h)
{
    return fmnn__bf16_to_float(h & 0x7F80u ? h : h & 0x8000u);
}

/* The products of two bf16 values are exact in fp32, so only the sums
 * round: (acc + a0 b0) + a1 b1 per pair, with or without FMA. */
static void portable_tile(int kp, const uint16_t *a_panel, const uint16_t *b_panel, float *c, int ldc,
                          int rows, int cols, float alpha, float beta)
{
    float acc[PORTABLE_MR][NR] = { { 0 } };
    for (int q = 0; q < kp / 2; q++) {
        const uint16_t *b_pairs = b_panel + (size_t)q * 2 * NR;
        float b0[NR], b1[NR];
        for (int j = 0; j < NR; j++) {
            b0[j] = widen(b_pairs[2 * j]);
            b1[j] = widen(b_pairs[2 * j + 1]);
        }
        for (int i = 0; i < PORTABLE_MR; i++) {
            const float a0 = widen(a_panel[(size_t)i * kp + 2 * q]);
            const float a1 = widen(a_panel[(size_t)i * kp + 2 * q + 1]);
            for (int j = 0; j < NR; j++) {
                acc[i][j] += a0 * b0[j];
                acc[i][j] += a1 * b1[j];
            }
        }
    }
    for (int i = 0; i < rows; i++) {
        float *row = c + (size_t)i * ldc;
        for (int j = 0; j < cols; j++)
            row[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * row[j];
    }
}

static const fmnn_gemm_bf16_kernel portable_kernel = {
    .name = "portable",
    .mr = PORTABLE_MR,
    .tile = portable_tile,
};

/* ---- choosing the path ------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
/* XCR0: the register state the OS saves, so lets programs use. */
static uint64_t os_enabled_state(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE))
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* XCR0's SSE, AVX, opmask and both halves of the upper zmm state. */
#define XSTATE_AVX512 0xE6u
/* XCR0's XTILECFG and XTILEDATA. */
#define XSTATE_AMX 0x60000u

static int cpu_has_avx512bf16(void)
{
    unsigned eax, ebx, ecx, edx;
    if ((os_enabled_state() & XSTATE_AVX512) != XSTATE_AVX512 || !__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl"))
        return 0;
    return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5));
}

/* AMX-TILE and AMX-BF16 (CPUID 7.0 EDX bits 24 and 22), the OS saving
 * the tiles, and AVX-512 for the way from the tiles to C. */
/* The CPU and the OS have AMX-BF16 (before Linux's permission). */
static int cpu_supports_amx(void)
{
    unsigned eax, ebx, ecx, edx;
    if ((os_enabled_state() & XSTATE_AMX) != XSTATE_AMX || !cpu_has_avx512bf16())
        return 0;
    return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 24)) && (edx & (1u << 22));
}

static int cpu_has_amx(void)
{
    return cpu_supports_amx() && fmnn__gemm_bf16_amx_permitted();
}
#else
static int cpu_supports_amx(void)
{
    return 0;
}

static int cpu_has_avx512bf16(void)
{
    return 0;
}

static int cpu_has_amx(void)
{
    return 0;
}
#endif

static const fmnn_gemm_bf16_kernel *cpu_kernel; /* the best this CPU runs */
static const fmnn_gemm_bf16_kernel *forced;     /* NULL: cpu_kernel */
static pthread_once_t cpu_kernel_once = PTHREAD_ONCE_INIT;

/* Run on first use rather than at load: asking for AMX permission grows
 * every signal frame of the process, which only users of bf16 should pay. */
static void choose_kernel(void)
{
    __builtin_cpu_init();
    cpu_kernel = cpu_has_amx()          ? &fmnn__gemm_bf16_amx
                 : cpu_has_avx512bf16() ? &fmnn__gemm_bf16_avx512bf16
                                        : &portable_kernel;
}

static const fmnn_gemm_bf16_kernel *active_kernel(void)
{
    pthread_once(&cpu_kernel_once, choose_kernel);
    return forced ? forced : cpu_kernel;
}

/* The kernel of that name if this machine runs it, else NULL. */
static const fmnn_gemm_bf16_kernel *runnable_kernel(const char *name)
{
    pthread_once(&cpu_kernel_once, choose_kernel);
    if (strcmp(name, "portable") == 0)
        return &portable_kernel;
    if (strcmp(name, "avx512bf16") == 0 && cpu_has_avx512bf16())
        return &fmnn__gemm_bf16_avx512bf16;
    if (strcmp(name, "amx") == 0 && cpu_has_amx())
        return &fmnn__gemm_bf16_amx;
    return NULL;
}

const char *fmnn__gemm_bf16_path(void)
{
    return active_kernel()->name;
}

int fmnn__gemm_bf16_available(const char *name)
{
    return name && runnable_kernel(name) != NULL;
}

int fmnn__gemm_bf16_supported(const char *name)
{
    __builtin_cpu_init();
    return name && (!strcmp(name, "portable") || (!strcmp(name, "avx512bf16") && cpu_has_avx512bf16()) ||
                    (!strcmp(name, "amx") && cpu_supports_amx()));
}

int fmnn__gemm_bf16_select(const char *name)
{
    if (!name) {
        forced = NULL;
        return 1;
    }
    const fmnn_gemm_bf16_kernel *kern = runnable_kernel(name);
    if (!kern)
        return 0;
    forced = kern;
    return 1;
}

/* ---- rounding and packing ---------------------------------------------- */

static int round_up(int x, int to)
{
    return (x + to - 1) / to * to;
}

/* fmnn_gemm_bf16_pack_a (gemm_bf16_impl.h) in portable C. */
static void pack_a_portable(const float *a, int lda, int trans, int rows, int mr, int kc, int kp, uint16_t *panel)
{
    for (int i = 0; i < rows; i++) {
        uint16_t *row = panel + (size_t)i * kp;
        for (int p = 0; p < kc; p++)
            row[p] = fmnn__bf16_round(trans ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]);
        memset(row + kc, 0, (size_t)(kp - kc) * sizeof *row);
    }
    memset(panel + (size_t)rows * kp, 0, (size_t)(mr - rows) * kp * sizeof *panel);
}

/* fmnn_gemm_bf16_pack_b in portable C. */
static void pack_b_portable(const float *b, int ldb, int trans, int kc, int kp, int cols, uint16_t *block)
{
    for (int j0 = 0; j0 < cols; j0 += NR) {
        const int width = cols - j0 < NR ? cols - j0 : NR;
        uint16_t *panel = block + (size_t)j0 * kp;
        memset(panel, 0, (size_t)kp * NR * sizeof *panel);
        for (int p = 0; p < kc; p++) {
            uint16_t *pairs = panel + (size_t)(p / 2) * 2 * NR + p % 2;
            for (int j = 0; j < width; j++)
                pairs[2 * j] = fmnn__bf16_round(trans ? b[(size_t)(j0 + j) * ldb + p] : b[(size_t)p * ldb + j0 + j]);
        }
    }
}

/* op(A)[row0 .. + rows, p0 .. + kc] as an mr x kp A panel. */
static void pack_a_panel(const fmnn_gemm_bf16_kernel *kern, const gemm_problem *g, int row0, int rows, int p0,
                         int kc, int kp, uint16_t *panel)
{
    const float *src = g->trans_a ? g->a + (size_t)p0 * g->lda + row0 : g->a + (size_t)row0 * g->lda + p0;
    (kern->pack_a ? kern->pack_a : pack_a_portable)(src, g->lda, g->trans_a, rows, kern->mr, kc, kp, panel);
}

/* op(B)[p0 .. + kc, col0 .. + cols] as B panels of kp steps. */
static void pack_b_block(const fmnn_gemm_bf16_kernel *kern, const gemm_problem *g, int p0, int kc, int kp,
                         int col0, int cols, uint16_t *block)
{
    const float *src = g->trans_b ? g->b + (size_t)col0 * g->ldb + p0 : g->b + (size_t)p0 * g->ldb + col0;
    (kern->pack_b ? kern->pack_b : pack_b_portable)(src, g->ldb, g->trans_b, kc, kp, cols, block);
}

/* ---- one thread's share ---------------------------------------------- */

/* Rows m0..m1 by columns n0..n1 of C, by the loops at the top of the file. */
static void multiply_region(const fmnn_gemm_bf16_kernel *kern, const gemm_problem *g, int m0, int m1, int n0,
                            int n1)
{
    if (kern->begin)
        kern->begin();
    const int mr = kern->mr;
    const int blocks = fmnn__gemm_k_block_count(g->k, KC_MAX);
    const int kp_max = round_up((g->k + blocks - 1) / blocks, K_ALIGN);
    const int nc_max = B_BLOCK_VALUES / kp_max / NR * NR;

    for (int jc = n0; jc < n1; jc += nc_max) {
        const int nc = n1 - jc < nc_max ? n1 - jc : nc_max;
        for (int kb = 0; kb < blocks; kb++) {
            const int p0 = fmnn__gemm_k_block_start(g->k, blocks, kb);
            const int kc = fmnn__gemm_k_block_start(g->k, blocks, kb + 1) - p0;
            const int kp = round_up(kc, K_ALIGN);
            const float beta = kb == 0 ? g->beta : 1.0f;
            pack_b_block(kern, g, p0, kc, kp, jc, nc, b_block);
            for (int ir = m0; ir < m1; ir += mr) {
                const int rows = m1 - ir < mr ? m1 - ir : mr;
                pack_a_panel(kern, g, ir, rows, p0, kc, kp, a_panel);
                float *c_row = g->c + (size_t)ir * g->ldc + jc;
                for (int jr = 0; jr < nc; jr += NR)
                    kern->tile(kp, a_panel, b_block + (size_t)jr * kp, c_row + jr, g->ldc, rows,
                               nc - jr < NR ? nc - jr : NR, g->alpha, beta);
            }
        }
    }
    if (kern->end)
        kern->end();
}

/* ---- splitting over threads ------------------------------------------ */

static void multiply(const fmnn_gemm_bf16_kernel *kern, const gemm_problem *g)
{
    const int threads = fmnn__threads();
    if (threads == 1 || (double)g->m * g->n * g->k < SPLIT_MIN_WORK) {
        const unsigned fp = fmnn__flush_denormals();
        multiply_region(kern, g, 0, g->m, 0, g->n);
        fmnn__restore_fp_mode(fp);
        return;
    }
    const int rows = fmnn__gemm_split_by_rows(g, kern->mr, NR, PACK_COST, threads);
#pragma omp parallel num_threads(threads)
    {
        const unsigned fp = fmnn__flush_denormals();
        int first, last;
        fmnn__thread_band(rows ? g->m : g->n, rows ? kern->mr : NR, &first, &last);
        if (first < last) {
            if (rows)
                multiply_region(kern, g, first, last, 0, g->n);
            else
                multiply_region(kern, g, 0, g->m, first, last);
        }
        fmnn__restore_fp_mode(fp);
    }
}

/* ---- the entry point ------------------------------------------------- */

void fmnn__gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f) { /* C = beta C: nothing to round, A and B are not read */
        fmnn__gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const gemm_problem g = {
        .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
        .a = a, .b = b, .c = c, .lda = lda, .ldb = ldb, .ldc = ldc,
    };
    multiply(active_kernel(), &g);
}
