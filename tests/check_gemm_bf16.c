/*
 * check_gemm_bf16.c - fmnn__gemm_bf16 (lib/kernels/gemm_bf16.c) on every
 * path this CPU runs ("amx", "avx512bf16", and "portable" everywhere:
 * each test is a loop over them; under valgrind, whose CPUID hides AMX
 * and AVX512-BF16, only the portable one runs).
 *
 * Each element of C is checked against two double-precision references:
 *
 *   rounded:   the product of the bf16-rounded inputs, to within the error
 *              of fp32 sums, (k + 4) 2^-23 sum |alpha a b| + 2^-22 |beta c|
 *              (the products of bf16 values are exact in fp32; only the
 *              sums round);
 *   unrounded: the product of the fp32 inputs, to within what rounding
 *              the inputs to bf16's 8 significant bits costs, each input
 *              off by at most half an ulp, 2^-8 of itself (the ulp of 1
 *              is 2^-7): (2^-7 + 2^-16) sum |alpha a b| more.
 *
 * The rounded reference is tight enough that a path which does not round
 * its inputs fails it.  Covered: sizes on and off every tile's edges
 * (k = 1, m or n = 1), the four transpose combinations, alpha, beta,
 * leading dimensions past the rows (whose padding must be neither read
 * nor written), beta 0 over a C of NaN, alpha 0 and k 0, the model's
 * shapes, the rounding itself on known values, every packing bit for bit
 * (a product with the identity is exact), and determinism: the same
 * bits on 1 and 2 threads, from run to run, and whatever block of C a
 * row or column is computed in.
 */
#include <check.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmnn.h"
#include "kernels/gemm_bf16_impl.h"
#include "kernels/gemm_impl.h"
#include "kernels/kernels.h"
#include "layer_impl.h"

/* ---- code paths --------------------------------------------------------- */

static const char *const paths[] = { "amx", "avx512bf16", "portable" };
#define N_PATHS ((int)(sizeof paths / sizeof paths[0]))

/* Selects path i; 0 when this CPU cannot run it (the test then passes). */
static int use_path(int i)
{
    if (!fmnn__gemm_bf16_available(paths[i])) {
        ck_assert_int_eq(fmnn__gemm_bf16_select(paths[i]), 0);
        return 0;
    }
    ck_assert_int_eq(fmnn__gemm_bf16_select(paths[i]), 1);
    ck_assert_str_eq(fmnn__gemm_bf16_path(), paths[i]);
    return 1;
}

/* ---- operands ------------------------------------------------------------ */

typedef struct bf16_case {
    int trans_a, trans_b, m, n, k;
    float alpha, beta;
    int pad;   /* lda, ldb, ldc exceed the row length by this much */
    uint64_t seed;
} bf16_case;

typedef struct operands {
    bf16_case g;
    int lda, ldb, ldc;
    float *a, *b, *c0, *c;
} operands;

static void *checked_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        ck_abort_msg("out of memory");
    return p;
}

/* Uniform in [-1, 1), the padding columns NaN so that reading them shows. */
static float *random_floats(int rows, int cols, int ld, fmnn_rng *rng)
{
    float *x = checked_malloc(sizeof(float) * (size_t)rows * (size_t)ld);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++)
            x[(size_t)i * ld + j] = j < cols ? 2.0f * fmnn__rng_uniform(rng) - 1.0f : NAN;
    return x;
}

/* C starts as NaN where beta is 0, so that reading it shows too. */
static void make_operands(operands *d, const bf16_case *g)
{
    d->g = *g;
    const int a_rows = g->trans_a ? g->k : g->m, a_cols = g->trans_a ? g->m : g->k;
    const int b_rows = g->trans_b ? g->n : g->k, b_cols = g->trans_b ? g->k : g->n;
    d->lda = a_cols + g->pad;
    d->ldb = b_cols + g->pad;
    d->ldc = g->n + g->pad;
    fmnn_rng rng;
    fmnn__rng_seed(&rng, g->seed);
    d->a = random_floats(a_rows, a_cols, d->lda, &rng);
    d->b = random_floats(b_rows, b_cols, d->ldb, &rng);
    d->c0 = random_floats(g->m, g->n, d->ldc, &rng);
    if (g->beta == 0.0f)
        for (size_t i = 0; i < (size_t)g->m * d->ldc; i++)
            d->c0[i] = NAN;
    d->c = checked_malloc(sizeof(float) * (size_t)g->m * d->ldc);
    memcpy(d->c, d->c0, sizeof(float) * (size_t)g->m * d->ldc);
}

static void free_operands(operands *d)
{
    free(d->a);
    free(d->b);
    free(d->c0);
    free(d->c);
}

static void restart(operands *d)
{
    memcpy(d->c, d->c0, sizeof(float) * (size_t)d->g.m * d->ldc);
}

static void multiply(operands *d)
{
    const bf16_case *g = &d->g;
    fmnn__gemm_bf16(g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, d->a, d->lda, d->b, d->ldb, g->beta,
                    d->c, d->ldc);
}

static double rounded(float x)
{
    return fmnn__bf16_to_float(fmnn__bf16_round(x));
}

/* ---- the references ------------------------------------------------------ */

typedef struct reference {
    double *with_rounding, *rounding_tolerance;   /* from the bf16 inputs */
    double *without_rounding, *input_tolerance;   /* from the fp32 inputs */
} reference;

static void make_reference(const operands *d, reference *r)
{
    const bf16_case *g = &d->g;
    const size_t size = (size_t)g->m * g->n;
    r->with_rounding = checked_malloc(sizeof(double) * size);
    r->rounding_tolerance = checked_malloc(sizeof(double) * size);
    r->without_rounding = checked_malloc(sizeof(double) * size);
    r->input_tolerance = checked_malloc(sizeof(double) * size);
    const double sum_error = (g->k + 4.0) * ldexp(1.0, -23), input_error = ldexp(1.0, -7) + ldexp(1.0, -16);
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            double exact = 0.0, exact_abs = 0.0, sum = 0.0, sum_abs = 0.0;
            for (int p = 0; p < g->k; p++) {
                const float x = g->trans_a ? d->a[(size_t)p * d->lda + i] : d->a[(size_t)i * d->lda + p];
                const float y = g->trans_b ? d->b[(size_t)j * d->ldb + p] : d->b[(size_t)p * d->ldb + j];
                exact += (double)x * y;
                exact_abs += fabs((double)x * y);
                sum += rounded(x) * rounded(y);
                sum_abs += fabs(rounded(x) * rounded(y));
            }
            const double c0 = g->beta != 0.0f ? d->c0[(size_t)i * d->ldc + j] : 0.0;
            const double alpha = g->alpha, beta = g->beta;
            const size_t at = (size_t)i * g->n + j;
            r->with_rounding[at] = alpha * sum + beta * c0;
            r->rounding_tolerance[at] = sum_error * fabs(alpha) * sum_abs + ldexp(fabs(beta * c0), -22) + 1e-30;
            r->without_rounding[at] = alpha * exact + beta * c0;
            r->input_tolerance[at] = r->rounding_tolerance[at] + input_error * fabs(alpha) * exact_abs;
        }
}

static void free_reference(reference *r)
{
    free(r->with_rounding);
    free(r->rounding_tolerance);
    free(r->without_rounding);
    free(r->input_tolerance);
}

static void fail_element(const operands *d, const char *what, const char *against, int i, int j, double got,
                         double want, double tolerance)
{
    const bf16_case *g = &d->g;
    ck_abort_msg("%s: %s on %d threads, ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g pad=%d: C[%d][%d] = %.9g, "
                 "want %.9g (%s reference, tolerance %.3g)",
                 what, fmnn__gemm_bf16_path(), fmnn_get_num_threads(), g->trans_a, g->trans_b, g->m, g->n, g->k,
                 g->alpha, g->beta, g->pad, i, j, got, want, against, tolerance);
}

/* Every element against both references, and the padding of C untouched.
 * (if + ck_abort_msg: a ck_assert per element is too slow.) */
static void check_against(const operands *d, const reference *r, const char *what)
{
    const bf16_case *g = &d->g;
    for (int i = 0; i < g->m; i++) {
        for (int j = 0; j < g->n; j++) {
            const size_t at = (size_t)i * g->n + j;
            const double got = d->c[(size_t)i * d->ldc + j];
            if (!(fabs(got - r->with_rounding[at]) <= r->rounding_tolerance[at]))
                fail_element(d, what, "rounded", i, j, got, r->with_rounding[at], r->rounding_tolerance[at]);
            if (!(fabs(got - r->without_rounding[at]) <= r->input_tolerance[at]))
                fail_element(d, what, "unrounded", i, j, got, r->without_rounding[at], r->input_tolerance[at]);
        }
        for (int j = g->n; j < d->ldc; j++)
            if (!isnan(d->c[(size_t)i * d->ldc + j]))
                ck_abort_msg("%s: %s: the padding of C row %d was written", what, fmnn__gemm_bf16_path(), i);
    }
}

/* One case on 1 thread, or on 1 and then 2. */
static void check_case(const bf16_case *g, int max_threads, const char *what)
{
    operands d;
    reference r;
    make_operands(&d, g);
    make_reference(&d, &r);
    for (int threads = 1; threads <= max_threads; threads++) {
        fmnn_set_num_threads(threads);
        restart(&d);
        multiply(&d);
        check_against(&d, &r, what);
    }
    free_reference(&r);
    free_operands(&d);
}

/* ---- rounding ------------------------------------------------------------- */

static float from_bits(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* Known values, ties, NaN, infinities, denormals, through the rounding. */
START_TEST(test_rounding)
{
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        { 0x3F800000u, 0x3F80u }, /* 1 */
        { 0x3F808000u, 0x3F80u }, /* 1 + 2^-8, a tie: to the even 1 */
        { 0x3F818000u, 0x3F82u }, /* a tie above an odd value: up */
        { 0x3F808001u, 0x3F81u }, /* just past a tie: up */
        { 0x3F807FFFu, 0x3F80u }, /* just below: down */
        { 0xBF818000u, 0xBF82u }, /* negative ties alike */
        { 0x7F7FFFFFu, 0x7F80u }, /* FLT_MAX rounds to infinity */
        { 0x7F800000u, 0x7F80u }, /* infinities stay */
        { 0xFF800000u, 0xFF80u },
        { 0x80000000u, 0x8000u }, /* -0 */
        { 0x00008000u, 0x0000u }, /* a denormal tie: to the even 0 */
        { 0x00018000u, 0x0002u }, /* a denormal tie above an odd value */
        { 0x00000001u, 0x0000u }, /* the least denormal */
        { 0x007FFFFFu, 0x0080u }, /* the largest denormal rounds up to FLT_MIN */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(fmnn__bf16_round(from_bits(cases[i].in)) == cases[i].out, "bf16(0x%08x) = 0x%04x, want 0x%04x",
                      (unsigned)cases[i].in, (unsigned)fmnn__bf16_round(from_bits(cases[i].in)),
                      (unsigned)cases[i].out);
    static const uint32_t nans[] = { 0x7FC00000u, 0x7F800001u, 0xFFC00001u, 0x7FFFFFFFu };
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        ck_assert(isnan(fmnn__bf16_to_float(fmnn__bf16_round(from_bits(nans[i])))));
}
END_TEST

/* The same values through each path's GEMM, 1 x 1 x 1 times 1: the
 * packing rounds them; NaN and infinity go through, and a denormal is
 * read as zero (the hardware paths do so, and the portable one agrees). */
START_TEST(test_rounding_in_gemm)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(1);
    static const struct { uint32_t in, out; } cases[] = {
        { 0x3F808000u, 0x3F800000u }, { 0x3F818000u, 0x3F820000u }, { 0x3F808001u, 0x3F810000u },
        { 0xBF818000u, 0xBF820000u }, { 0x7F7FFFFFu, 0x7F800000u }, { 0xFF800000u, 0xFF800000u },
        { 0x00018000u, 0x00000000u },
    };
    const float one = 1.0f;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 8; t++) { /* each packing: either layout, as A (t < 4) and as B */
            const float x = from_bits(cases[i].in);
            const float *a = t < 4 ? &x : &one, *b = t < 4 ? &one : &x;
            float c = NAN;
            fmnn__gemm_bf16(t & 1, (t >> 1) & 1, 1, 1, 1, 1.0f, a, 1, b, 1, 0.0f, &c, 1);
            uint32_t got;
            memcpy(&got, &c, sizeof got);
            ck_assert_msg(got == cases[i].out, "%s: 0x%08x as %s = 0x%08x, want 0x%08x (ta=%d tb=%d)",
                          fmnn__gemm_bf16_path(), (unsigned)cases[i].in, t < 4 ? "A" : "B", (unsigned)got,
                          (unsigned)cases[i].out, t & 1, (t >> 1) & 1);
        }
    const float nan = NAN;
    float c = 0.0f;
    fmnn__gemm_bf16(0, 0, 1, 1, 1, 1.0f, &nan, 1, &one, 1, 0.0f, &c, 1);
    ck_assert_msg(isnan(c), "%s: NaN x 1 = %g", fmnn__gemm_bf16_path(), c);
}
END_TEST

/* Random bits for a float of magnitude about 2^-20 .. 2^20, its low half
 * often a tie (0x8000), now and then a denormal. */
static float awkward_float(fmnn_rng *rng)
{
    uint32_t bits = (uint32_t)(fmnn__rng_uniform(rng) * 4294967296.0);
    const uint32_t exponent = 107u + (uint32_t)(fmnn__rng_uniform(rng) * 40.0);
    bits = (bits & 0x807FFFFFu) | exponent << 23;
    if (fmnn__rng_uniform(rng) < 0.25)
        bits = (bits & 0xFFFF0000u) | 0x8000u;
    if (fmnn__rng_uniform(rng) < 0.05)
        bits &= 0x807FFFFFu;
    return from_bits(bits);
}

/* What a path computes from x times 1: its bf16 value, a denormal read as 0. */
static float rounded_times_one(float x)
{
    const uint16_t h = fmnn__bf16_round(x);
    return fmnn__bf16_to_float(h & 0x7F80u ? h : h & 0x8000u);
}

/*
 * Every packing, bit for bit: op(A) times the identity is op(A) rounded
 * (each sum is one exact product and zeros), and so is the identity times
 * op(B); on every path, either layout, sizes off every tile's edge.
 */
START_TEST(test_packing_exact)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(1);
    enum { ROWS = 37, DEPTH = 45 };
    fmnn_rng rng;
    fmnn__rng_seed(&rng, 99);
    float x[ROWS * DEPTH], identity[DEPTH * DEPTH], c[ROWS * DEPTH];
    for (int i = 0; i < ROWS * DEPTH; i++)
        x[i] = awkward_float(&rng);
    for (int i = 0; i < DEPTH * DEPTH; i++)
        identity[i] = i / DEPTH == i % DEPTH ? 1.0f : 0.0f;
    for (int t = 0; t < 4; t++) {
        const int trans = t & 1, as_b = t >> 1;
        /* x holds op(A), ROWS x DEPTH, or op(B), DEPTH x ROWS; transposed
         * or not in memory, the same values */
        const int ld = trans == as_b ? DEPTH : ROWS;
        if (!as_b)
            fmnn__gemm_bf16(trans, 0, ROWS, DEPTH, DEPTH, 1.0f, x, ld, identity, DEPTH, 0.0f, c, DEPTH);
        else
            fmnn__gemm_bf16(0, trans, DEPTH, ROWS, DEPTH, 1.0f, identity, DEPTH, x, ld, 0.0f, c, ROWS);
        for (int i = 0; i < ROWS; i++)
            for (int p = 0; p < DEPTH; p++) {
                const float in = trans == as_b ? x[i * DEPTH + p] : x[p * ROWS + i];
                const float got = as_b ? c[p * ROWS + i] : c[i * DEPTH + p];
                const float want = rounded_times_one(in);
                if (memcmp(&got, &want, sizeof got) != 0 && !(got == 0.0f && want == 0.0f))
                    ck_abort_msg("%s: %s %s[%d][%d] = %a came out %a, want %a", fmnn__gemm_bf16_path(),
                                 trans ? "transposed" : "plain", as_b ? "B" : "A", as_b ? p : i, as_b ? i : p,
                                 (double)in, (double)got, (double)want);
            }
    }
}
END_TEST

/* ---- accuracy ------------------------------------------------------------------ */

/* Off and on every tile's edges: AMX's 16 and 32, vdpbf16ps's 14, the
 * portable 8; k on either side of an AMX tile's 32 steps, and odd (half a
 * pair). */
static const int edge_mn[] = { 1, 2, 13, 17, 31, 33, 47 };
static const int edge_k[] = { 1, 2, 3, 31, 32, 33, 65 };
#define N_EDGE 7

START_TEST(test_edge_sizes)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(1);
    /* under valgrind (FMNN_TEST_QUICK) every other size */
    const int step = getenv("FMNN_TEST_QUICK") ? 2 : 1;
    uint64_t seed = 1;
    for (int t = 0; t < 4; t++)
        for (int mi = 0; mi < N_EDGE; mi += step)
            for (int ni = 0; ni < N_EDGE; ni += step)
                for (int ki = 0; ki < N_EDGE; ki += step) {
                    bf16_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = edge_mn[mi], .n = edge_mn[ni],
                                    .k = edge_k[ki], .alpha = 1.0f, .beta = 0.0f, .seed = seed++ };
                    check_case(&g, 1, "edge sizes");
                }
}
END_TEST

/* The model's GEMMs, scaled down, and blocks past KC and NC. */
static const bf16_case model_shapes[] = {
    { 0, 0, 242, 128, 576, 1, 0, 0, 0 },  /* conv2 forward: 2 images of 11 x 11 */
    { 1, 0, 576, 128, 242, 1, 1, 0, 0 },  /* conv2 kernel gradient, accumulated */
    { 0, 1, 242, 576, 128, 1, 0, 0, 0 },  /* conv2 input gradient */
    { 0, 0, 2704, 32, 9, 1, 0, 0, 0 },    /* conv1 forward */
    { 1, 0, 9, 32, 2704, 1, 0, 0, 0 },    /* conv1 kernel gradient: six k blocks */
    { 0, 0, 64, 10, 200, 1, 0, 0, 0 },    /* dense */
    { 0, 1, 64, 200, 10, 1, 0, 0, 0 },
    { 0, 0, 30, 1100, 500, 1, 0, 0, 0 },  /* two column blocks */
};
#define N_MODEL_SHAPES ((int)(sizeof model_shapes / sizeof model_shapes[0]))

START_TEST(test_model_shapes)
{
    if (!use_path(_i))
        return;
    const int shapes = getenv("FMNN_TEST_QUICK") ? 3 : N_MODEL_SHAPES;
    for (int s = 0; s < shapes; s++) {
        bf16_case g = model_shapes[s];
        g.seed = 100u + (uint64_t)s;
        check_case(&g, 2, "model shape");
        g.trans_a = !g.trans_a;
        g.trans_b = !g.trans_b;
        check_case(&g, 2, "model shape, transposes flipped");
    }
}
END_TEST

/* alpha, beta, NaN in C with beta 0, leading dimensions past the rows. */
START_TEST(test_alpha_beta_ld)
{
    if (!use_path(_i))
        return;
    static const float alphas[] = { 1.0f, 0.5f, -1.25f };
    static const float betas[] = { 0.0f, 1.0f, -0.75f };
    /* the last is large enough to be split over 2 threads */
    static const int shapes[][3] = { { 17, 33, 31 }, { 40, 70, 100 }, { 130, 150, 200 } };
    uint64_t seed = 1000;
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < 3; s++)
            for (int ai = 0; ai < 3; ai++)
                for (int bi = 0; bi < 3; bi++) {
                    bf16_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = shapes[s][0], .n = shapes[s][1],
                                    .k = shapes[s][2], .alpha = alphas[ai], .beta = betas[bi], .pad = 3 + s,
                                    .seed = seed++ };
                    check_case(&g, 2, "alpha, beta, ld");
                }
}
END_TEST

/* alpha 0 or k 0: C = beta C, and A and B (NaN here) are not read. */
START_TEST(test_alpha_zero_and_empty_k)
{
    if (!use_path(_i))
        return;
    float a[6], b[6], c[4] = { 1, 2, 3, 4 };
    for (int i = 0; i < 6; i++)
        a[i] = b[i] = NAN;
    fmnn__gemm_bf16(0, 0, 2, 2, 3, 0.0f, a, 3, b, 2, 0.5f, c, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(c[i], 0.5f * (float)(i + 1));
    fmnn__gemm_bf16(1, 1, 2, 2, 0, 1.0f, a, 2, b, 1, 0.0f, c, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(c[i], 0.0f);
    fmnn__gemm_bf16(0, 0, 0, 2, 3, 1.0f, a, 3, b, 2, 0.0f, NULL, 2); /* m = 0: nothing */
}
END_TEST

/* ---- determinism ---------------------------------------------------------- */

/* The same bits from run to run and on 1 and 2 threads. */
START_TEST(test_repeatable)
{
    if (!use_path(_i))
        return;
    for (int t = 0; t < 4; t++) {
        bf16_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = 250, .n = 130, .k = 700, .alpha = 1.0f,
                        .beta = 0.5f, .seed = 7000u + (uint64_t)t };
        operands d;
        make_operands(&d, &g);
        const size_t floats = (size_t)g.m * d.ldc;
        float *first = checked_malloc(sizeof(float) * floats);
        for (int run = 0; run < 4; run++) {
            fmnn_set_num_threads(1 + run % 2);
            restart(&d);
            multiply(&d);
            if (run == 0)
                memcpy(first, d.c, sizeof(float) * floats);
            else
                ck_assert_msg(memcmp(d.c, first, sizeof(float) * floats) == 0,
                              "%s: run %d (%d threads) differs from the first (1 thread; ta=%d tb=%d)",
                              fmnn__gemm_bf16_path(), run, 1 + run % 2, g.trans_a, g.trans_b);
        }
        free(first);
        free_operands(&d);
    }
}
END_TEST

/* Rows r0.. of C computed alone (A and C offset to row r0) equal the same
 * rows of the whole product, for every block height; the same for blocks
 * of columns: an element's value does not depend on where its tile lies. */
START_TEST(test_independent_of_blocking)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(1);
    for (int t = 0; t < 4; t++) {
        bf16_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = 70, .n = 70, .k = 600, .alpha = 1.0f,
                        .beta = 0.0f, .seed = 8000u + (uint64_t)t };
        operands d;
        make_operands(&d, &g);
        multiply(&d);
        const size_t row_bytes = sizeof(float) * (size_t)g.n;
        float *whole = checked_malloc(sizeof(float) * (size_t)g.m * d.ldc);
        memcpy(whole, d.c, sizeof(float) * (size_t)g.m * d.ldc);
        for (int height = 1; height <= g.m; height += 2) {
            for (int r0 = 0; r0 < g.m; r0 += height) {
                const int rows = g.m - r0 < height ? g.m - r0 : height;
                const float *a = g.trans_a ? d.a + r0 : d.a + (size_t)r0 * d.lda;
                fmnn__gemm_bf16(g.trans_a, g.trans_b, rows, g.n, g.k, 1.0f, a, d.lda, d.b, d.ldb, 0.0f,
                                d.c + (size_t)r0 * d.ldc, d.ldc);
            }
            for (int i = 0; i < g.m; i++)
                if (memcmp(d.c + (size_t)i * d.ldc, whole + (size_t)i * d.ldc, row_bytes))
                    ck_abort_msg("%s: row %d differs when computed in blocks of %d rows (ta=%d tb=%d)",
                                 fmnn__gemm_bf16_path(), i, height, g.trans_a, g.trans_b);
        }
        for (int width = 1; width <= g.n; width += 3) {
            for (int c0 = 0; c0 < g.n; c0 += width) {
                const int cols = g.n - c0 < width ? g.n - c0 : width;
                const float *b = g.trans_b ? d.b + (size_t)c0 * d.ldb : d.b + c0;
                fmnn__gemm_bf16(g.trans_a, g.trans_b, g.m, cols, g.k, 1.0f, d.a, d.lda, b, d.ldb, 0.0f, d.c + c0,
                                d.ldc);
            }
            for (int i = 0; i < g.m; i++)
                if (memcmp(d.c + (size_t)i * d.ldc, whole + (size_t)i * d.ldc, row_bytes))
                    ck_abort_msg("%s: row %d differs when computed in blocks of %d columns (ta=%d tb=%d)",
                                 fmnn__gemm_bf16_path(), i, width, g.trans_a, g.trans_b);
        }
        free(whole);
        free_operands(&d);
    }
}
END_TEST

/* fmnn_kernel_paths names, for each precision, the path in use and then
 * exactly the paths this CPU can run. */
START_TEST(test_kernel_paths)
{
    static const char *const fp32[] = { "avx512", "avx2", "openblas" }, *const bf16[] = { "amx", "avx512bf16",
                                                                                          "portable" };
    char want[160] = "", part[64];
    snprintf(want, sizeof want, "fp32 %s (", fmnn__gemm_path());
    for (int i = 0; i < 3; i++)
        if (fmnn__gemm_available(fp32[i])) {
            snprintf(part, sizeof part, "%s%s", want[strlen(want) - 1] == '(' ? "" : " ", fp32[i]);
            strcat(want, part);
        }
    snprintf(part, sizeof part, "), bf16 %s (", fmnn__gemm_bf16_supported("amx")          ? "amx"
                                                : fmnn__gemm_bf16_supported("avx512bf16") ? "avx512bf16"
                                                                                         : "portable");
    strcat(want, part);
    for (int i = 0; i < 3; i++)
        if (fmnn__gemm_bf16_supported(bf16[i])) {
            snprintf(part, sizeof part, "%s%s", want[strlen(want) - 1] == '(' ? "" : " ", bf16[i]);
            strcat(want, part);
        }
    strcat(want, ")");
    ck_assert_str_eq(fmnn_kernel_paths(), want);
    ck_assert_ptr_nonnull(strstr(fmnn_kernel_paths(), "openblas")); /* always there */
    ck_assert_ptr_nonnull(strstr(fmnn_kernel_paths(), "portable"));
}
END_TEST

/* AMX-TILE and AMX-BF16 (CPUID 7.0 EDX bits 24 and 22) with their state
 * enabled by the OS (XCR0 bits 17 and 18), read here on their own, as
 * the compilers' __builtin_cpu_supports do not all know AMX. */
static int cpu_reports_amx(void)
{
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx, xcr0_low, xcr0_high;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 24)) || !(edx & (1u << 22)))
        return 0;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    return (xcr0_low & 0x60000u) == 0x60000u;
#else
    return 0;
#endif
}

/* A path the CPU and the OS support runs (it is not skipped), checked
 * against libgcc's reading of CPUID and XCR0 (and the one above); and
 * every path the library offers is one they support. */
START_TEST(test_supported_paths_run)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16"))
        ck_assert(fmnn__gemm_bf16_available("avx512bf16"));
    if (cpu_reports_amx() && __builtin_cpu_supports("avx512bf16"))
        ck_assert(fmnn__gemm_bf16_available("amx"));
    for (int i = 0; i < N_PATHS; i++)
        ck_assert_int_eq(fmnn__gemm_bf16_available(paths[i]), fmnn__gemm_bf16_supported(paths[i]));
}
END_TEST

/* A product computed from the same operands as a first one gives its
 * bits: after the tiles were released by other code on the thread, and
 * in a signal handler (which starts with them reset). */
static operands again_ops;
static float *again_c;

static void multiply_again(void)
{
    const operands *o = &again_ops;
    memcpy(again_c, o->c0, (size_t)o->g.m * o->ldc * sizeof *again_c);
    fmnn__gemm_bf16(o->g.trans_a, o->g.trans_b, o->g.m, o->g.n, o->g.k, o->g.alpha, o->a, o->lda, o->b, o->ldb,
                    o->g.beta, again_c, o->ldc);
}

static void on_signal(int sig)
{
    (void)sig;
    multiply_again();
}

#if defined(__x86_64__)
__attribute__((target("amx-tile"))) static void release_tiles(void)
{
    _tile_release();
}
#endif

START_TEST(test_tiles_reset_between_calls)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(1);
    make_operands(&again_ops, &(bf16_case){ 0, 0, 40, 70, 100, 1.0f, 0.0f, 0, 91 });
    const size_t bytes = (size_t)again_ops.g.m * again_ops.ldc * sizeof(float);
    float *first = malloc(bytes);
    again_c = malloc(bytes);
    multiply_again();
    memcpy(first, again_c, bytes);
#if defined(__x86_64__)
    if (!strcmp(paths[_i], "amx")) {
        release_tiles();
        multiply_again();
        ck_assert_mem_eq(again_c, first, bytes);
    }
#endif
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    signal(SIGUSR1, SIG_DFL);
    ck_assert_mem_eq(again_c, first, bytes);
    free(first);
    free(again_c);
    free_operands(&again_ops);
    fmnn_set_num_threads(2);
    fmnn__gemm_bf16_select(NULL);
}
END_TEST

/* ---- the suite --------------------------------------------------------------- */

static Suite *gemm_bf16_suite(void)
{
    Suite *s = suite_create("gemm_bf16");
    TCase *tc = tcase_create("rounding");
    tcase_add_test(tc, test_rounding);
    tcase_add_test(tc, test_kernel_paths);
    tcase_add_test(tc, test_supported_paths_run);
    tcase_add_loop_test(tc, test_tiles_reset_between_calls, 0, N_PATHS);
    tcase_add_loop_test(tc, test_rounding_in_gemm, 0, N_PATHS);
    tcase_add_loop_test(tc, test_packing_exact, 0, N_PATHS);
    suite_add_tcase(s, tc);

    tc = tcase_create("accuracy");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_edge_sizes, 0, N_PATHS);
    tcase_add_loop_test(tc, test_model_shapes, 0, N_PATHS);
    tcase_add_loop_test(tc, test_alpha_beta_ld, 0, N_PATHS);
    tcase_add_loop_test(tc, test_alpha_zero_and_empty_k, 0, N_PATHS);
    suite_add_tcase(s, tc);

    tc = tcase_create("determinism");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_repeatable, 0, N_PATHS);
    tcase_add_loop_test(tc, test_independent_of_blocking, 0, N_PATHS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    for (int i = 0; i < N_PATHS; i++)
        if (fmnn__gemm_bf16_available(paths[i]))
            printf("check_gemm_bf16: path %s runs here\n", paths[i]);
    printf("check_gemm_bf16: fmnn__gemm_bf16 uses %s by default\n", fmnn__gemm_bf16_path());
    SRunner *sr = srunner_create(gemm_bf16_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
