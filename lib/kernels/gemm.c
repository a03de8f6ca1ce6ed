/*
 * gemm.c - C = alpha * op(A) * op(B) + beta * C, row-major, for every
 * layer: a packed, cache-blocked SGEMM in the manner of BLIS, with
 * micro-kernels for AVX-512 (gemm_avx512.c) and AVX2 + FMA (gemm_avx2.c)
 * chosen once from the CPU, and OpenBLAS for every other CPU.
 *
 * Blocking.  For the micro-kernel's MR x NR tiles (14 x 32 or 6 x 16):
 *
 *   for each block of up to NC columns of C
 *     for each k block of up to KC = 384 (its bounds depend on k alone)
 *       pack op(B)[k block, columns] into NR-wide panels   (L2: b_block)
 *       for each MR rows of C
 *         find op(A)[rows, k block]                          (L1: A panel)
 *         for each NR-wide panel of the B block
 *           micro-kernel: the MR x NR tile of C (+)= A panel x B panel
 *
 * The A panel (MR x KC floats, 21 KB for 14 x 384) stays in L1 while the
 * B panels stream from the B block, which fills about 1.2 MB of the 2 MB
 * L2 (NC = 768 columns at KC = 384, more for a shorter k).  A needs no
 * transposing copy: a transposed A is read in place (its rows are the
 * panel's steps of k), and the rows of an A that is not transposed are
 * copied whole (see prepare_a).  B is packed, transposing when op(B) =
 * B^T.  The first k block applies beta to C (and so never reads C when
 * beta is 0); the later ones add to it.
 *
 * Threads.  Each OpenMP thread takes a band of rows of C, or a band of
 * columns when that balances better (fmnn__gemm_split_by_rows), and
 * runs the loops above on it with its own buffers; no two threads write
 * the same element and k is never split.
 *
 * Determinism.  Every element of C is one FMA chain per k block in
 * increasing k, the k blocks in increasing order, through the same
 * instructions for full and edge tiles and either layout of A.  So its
 * value depends on the inputs and k alone: not on m, n, its place in a
 * tile, or the number of threads.
 */
#include <cblas.h>
#include <string.h>

#include "gemm_impl.h"
#include "kernels.h"

/* Longest run of k summed by one micro-kernel call. */
#define KC_MAX FMNN_GEMM_KC

/* Floats in a packed block of B: KC_MAX x 768 columns (1.2 MB), or more
 * columns when k is shorter. */
#define B_BLOCK_FLOATS (KC_MAX * 768)

/* The most rows of any micro-kernel's tile. */
#define MR_MAX 14
_Static_assert(FMNN_GEMM_AVX512_MR <= MR_MAX && FMNN_GEMM_AVX2_MR <= MR_MAX, "MR_MAX is too small");
_Static_assert(FMNN_GEMM_AVX512_NR <= 32 && FMNN_GEMM_AVX2_NR <= 32, "packing handles NR <= 32");

/* Below this many multiply-adds one thread is faster than a split. */
#define SPLIT_MIN_WORK 2000000.0

/* Cost of packing one float, in multiply-adds, for fmnn__gemm_split_by_rows. */
#define PACK_COST 16

/* Each thread's packed block of B: static, so the hot path never allocates. */
static _Thread_local _Alignas(64) float b_block[B_BLOCK_FLOATS];

typedef fmnn_gemm_problem gemm_problem;

/* ---- choosing the micro-kernel ----------------------------------------- */

static const fmnn_gemm_kernel *cpu_kernel; /* the best this CPU runs, or NULL */
static const fmnn_gemm_kernel *active;     /* NULL: OpenBLAS */

static int cpu_has_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
}

static int cpu_has_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

__attribute__((constructor)) static void choose_kernel(void)
{
    __builtin_cpu_init();
    cpu_kernel = cpu_has_avx512() ? &fmnn__gemm_avx512 : cpu_has_avx2() ? &fmnn__gemm_avx2 : NULL;
    active = cpu_kernel;
}

const char *fmnn__gemm_path(void)
{
    return active ? active->name : "openblas";
}

int fmnn__gemm_available(const char *name)
{
    return !strcmp(name, "openblas") || (!strcmp(name, "avx512") && cpu_has_avx512()) ||
           (!strcmp(name, "avx2") && cpu_has_avx2());
}

int fmnn__gemm_select(const char *name)
{
    if (!name)
        active = cpu_kernel;
    else if (strcmp(name, "openblas") == 0)
        active = NULL;
    else if (strcmp(name, "avx512") == 0 && cpu_has_avx512())
        active = &fmnn__gemm_avx512;
    else if (strcmp(name, "avx2") == 0 && cpu_has_avx2())
        active = &fmnn__gemm_avx2;
    else
        return 0;
    return 1;
}

/* ---- packing --------------------------------------------------------- */

/* What fmnn_gemm_pack (gemm_impl.h) does, in portable C. */
static void pack_portable(const float *src, int ld, int k_rows, int count, int kc, int width, float *panels)
{
    for (int q0 = 0; q0 < count; q0 += width) {
        const int n = count - q0 < width ? count - q0 : width;
        float *panel = panels + (size_t)q0 * kc;
        for (int p = 0; p < kc; p++) {
            float *row = panel + (size_t)p * width;
            if (k_rows)
                memcpy(row, src + (size_t)p * ld + q0, (size_t)n * sizeof *row);
            else
                for (int i = 0; i < n; i++)
                    row[i] = src[(size_t)(q0 + i) * ld + p];
            for (int i = n; i < width; i++)
                row[i] = 0.0f;
        }
    }
}

static void pack(const fmnn_gemm_kernel *kern, const float *src, int ld, int k_rows, int count, int kc,
                 int width, float *panels)
{
    if (kern->pack)
        kern->pack(src, ld, k_rows, count, kc, width, panels);
    else
        pack_portable(src, ld, k_rows, count, kc, width, panels);
}

/* Where a micro-kernel finds op(A)[row0 .., p0 ..], and which kernel reads it. */
typedef struct a_operand {
    const float *a;
    int step;
    fmnn_gemm_microkernel *tile;
} a_operand;

/*
 * A transposed: op(A)[i][p] = a[p * lda + i] is read in place, by k; only
 * a short last panel is copied, zero-padded to MR.  A not transposed: its
 * rows are copied whole (memcpy) into a panel of rows FMNN_GEMM_KC apart,
 * the rows past `rows` zero.  Neither needs a transposing copy.
 */
static a_operand prepare_a(const fmnn_gemm_kernel *kern, const gemm_problem *g, int row0, int rows, int p0,
                           int kc, float *a_panel)
{
    const int mr = kern->mr;
    if (g->trans_a) {
        const float *src = g->a + (size_t)p0 * g->lda + row0;
        if (rows == mr)
            return (a_operand){ src, g->lda, kern->tile_a_by_k };
        pack(kern, src, g->lda, 1, rows, kc, mr, a_panel);
        return (a_operand){ a_panel, mr, kern->tile_a_by_k };
    }
    const float *src = g->a + (size_t)row0 * g->lda + p0;
    for (int i = 0; i < mr; i++) {
        float *row = a_panel + (size_t)i * FMNN_GEMM_KC;
        if (i < rows)
            memcpy(row, src + (size_t)i * g->lda, (size_t)kc * sizeof *row);
        else
            memset(row, 0, (size_t)kc * sizeof *row);
    }
    return (a_operand){ a_panel, 0, kern->tile_a_by_row };
}

/* op(B)[p0 .. p0 + kc, col0 .. col0 + cols] as NR-wide panels. */
static void pack_b_block(const fmnn_gemm_kernel *kern, const gemm_problem *g, int p0, int kc, int col0,
                         int cols, float *block)
{
    const float *src = g->trans_b ? g->b + (size_t)col0 * g->ldb + p0 : g->b + (size_t)p0 * g->ldb + col0;
    pack(kern, src, g->ldb, !g->trans_b, cols, kc, kern->nr, block);
}

/* ---- one thread's share ---------------------------------------------- */

/* Rows m0..m1 by columns n0..n1 of C, by the loops at the top of the file. */
static void multiply_region(const fmnn_gemm_kernel *kern, const gemm_problem *g, int m0, int m1, int n0, int n1)
{
    _Alignas(64) float a_panel[MR_MAX * KC_MAX];
    const int mr = kern->mr, nr = kern->nr;
    const int blocks = fmnn__gemm_k_block_count(g->k, KC_MAX);
    const int kc_max = (g->k + blocks - 1) / blocks;
    const int nc_max = B_BLOCK_FLOATS / kc_max / nr * nr;

    for (int jc = n0; jc < n1; jc += nc_max) {
        const int nc = n1 - jc < nc_max ? n1 - jc : nc_max;
        for (int kb = 0; kb < blocks; kb++) {
            const int p0 = fmnn__gemm_k_block_start(g->k, blocks, kb);
            const int kc = fmnn__gemm_k_block_start(g->k, blocks, kb + 1) - p0;
            const float beta = kb == 0 ? g->beta : 1.0f;
            pack_b_block(kern, g, p0, kc, jc, nc, b_block);
            for (int ir = m0; ir < m1; ir += mr) {
                const int rows = m1 - ir < mr ? m1 - ir : mr;
                const a_operand a = prepare_a(kern, g, ir, rows, p0, kc, a_panel);
                float *c_row = g->c + (size_t)ir * g->ldc + jc;
                for (int jr = 0; jr < nc; jr += nr)
                    a.tile(kc, a.a, a.step, b_block + (size_t)jr * kc, c_row + jr, g->ldc, rows,
                           nc - jr < nr ? nc - jr : nr, g->alpha, beta);
            }
        }
    }
}

/* ---- splitting over threads ------------------------------------------ */

static long ceil_div(long a, long b)
{
    return (a + b - 1) / b;
}

int fmnn__gemm_split_by_rows(const gemm_problem *g, int mr, int nr, int pack_cost, int parts)
{
    const long rows = ceil_div(g->m, mr) * mr, cols = ceil_div(g->n, nr) * nr;
    const long band_rows = ceil_div(ceil_div(g->m, mr), parts) * mr;
    const long band_cols = ceil_div(ceil_div(g->n, nr), parts) * nr;
    const long by_rows = band_rows * cols + pack_cost * (band_rows + cols);
    const long by_cols = rows * band_cols + pack_cost * (rows + band_cols);
    return by_rows <= by_cols;
}

/* Part `part` of `parts` of 0..length, in whole tiles. */
static void multiply_packed(const fmnn_gemm_kernel *kern, const gemm_problem *g)
{
    const int threads = fmnn__threads();
    if (threads == 1 || (double)g->m * g->n * g->k < SPLIT_MIN_WORK) {
        multiply_region(kern, g, 0, g->m, 0, g->n);
        return;
    }
    const int rows = fmnn__gemm_split_by_rows(g, kern->mr, kern->nr, PACK_COST, threads);
#pragma omp parallel num_threads(threads)
    {
        const unsigned fp = fmnn__flush_denormals();
        int first, last;
        fmnn__thread_band(rows ? g->m : g->n, rows ? kern->mr : kern->nr, &first, &last);
        if (first < last) {
            if (rows)
                multiply_region(kern, g, first, last, 0, g->n);
            else
                multiply_region(kern, g, 0, g->m, first, last);
        }
        fmnn__restore_fp_mode(fp);
    }
}

/* ---- OpenBLAS, for CPUs without AVX2 --------------------------------- */

static void sgemm(const gemm_problem *g, int m, int n, const float *a, const float *b, float *c)
{
    cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans, m,
                n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c, g->ldc);
}

/* OpenBLAS runs single-threaded (see threads.c): each of our threads
 * gives it a band of rows or columns of C, in multiples of 16. */
static void multiply_openblas(const gemm_problem *g)
{
    const int threads = fmnn__threads();
    if (threads == 1 || (double)g->m * g->n * g->k < SPLIT_MIN_WORK) {
        sgemm(g, g->m, g->n, g->a, g->b, g->c);
        return;
    }
    const int rows = g->m >= g->n;
#pragma omp parallel num_threads(threads)
    {
        const unsigned fp = fmnn__flush_denormals();
        int first, last;
        fmnn__thread_band(rows ? g->m : g->n, 16, &first, &last);
        if (first < last && rows)
            sgemm(g, last - first, g->n, g->trans_a ? g->a + first : g->a + (size_t)first * g->lda, g->b,
                  g->c + (size_t)first * g->ldc);
        else if (first < last)
            sgemm(g, g->m, last - first, g->a, g->trans_b ? g->b + (size_t)first * g->ldb : g->b + first,
                  g->c + first);
        fmnn__restore_fp_mode(fp);
    }
}

/* ---- the entry point ------------------------------------------------- */

/* C = beta * C, for k == 0 or alpha == 0, where A and B are not read. */
static void scale(int m, int n, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++)
            row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
}

void fmnn__gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f) {
        if (beta != 1.0f)
            scale(m, n, beta, c, ldc);
        return;
    }
    const gemm_problem g = {
        .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
        .a = a, .b = b, .c = c, .lda = lda, .ldb = ldb, .ldc = ldc,
    };
    const fmnn_gemm_kernel *kern = active;
    if (kern)
        multiply_packed(kern, &g);
    else
        multiply_openblas(&g);
}
