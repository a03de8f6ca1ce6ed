/*
 * check_gemm.c - fmnn__gemm (lib/kernels/gemm.c) against a double-
 * precision reference, on every code path this CPU can run ("avx512",
 * "avx2", "openblas": each test is a loop over them).
 *
 * Covered: the four transpose combinations; sizes on and around the tile
 * edges and the model's convolution shapes scaled down; leading
 * dimensions past the row length (whose padding must be neither read nor
 * written); beta 0 over a C full of NaN, beta 1, general alpha and beta;
 * alpha 0 and k 0; 1 and 2 threads.  The packed paths must also be
 * deterministic: the same call gives the same bits, and each row (and
 * column) of C comes out the same whatever block of C it is computed in.
 *
 * Element-wise checks use if + ck_abort_msg: every ck_assert writes to
 * check's pipe, too slow for millions of them.
 *
 * The tolerance of each element is (2 sqrt(k) + 4) eps sum |alpha a b| +
 * |beta c|, eps the float epsilon: blocked float sums err by about
 * sqrt(k) eps in practice.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_impl.h"
#include "layer_impl.h"

/* ---- code paths --------------------------------------------------------- */

static const char *const paths[] = { "avx512", "avx2", "openblas" };
#define N_PATHS ((int)(sizeof paths / sizeof paths[0]))

/* Selects path i; 0 when this CPU cannot run it (the test then passes). */
static int use_path(int i)
{
    if (!fmnn__gemm_select(paths[i]))
        return 0;
    ck_assert_str_eq(fmnn__gemm_path(), paths[i]);
    return 1;
}

/* Bit-identical results are promised by our own kernels, not OpenBLAS. */
static int path_is_packed(int i)
{
    return strcmp(paths[i], "openblas") != 0;
}

/* ---- matrices ------------------------------------------------------------ */

/* A rows x cols matrix in a buffer of rows x ld floats, the padding
 * columns NaN so that reading them shows in the result. */
static float *random_matrix(int rows, int cols, int ld, uint64_t seed)
{
    float *m = malloc(sizeof(float) * (size_t)(rows > 0 ? rows : 1) * (size_t)ld);
    if (!m)
        ck_abort_msg("out of memory");
    fmnn_rng rng;
    fmnn__rng_seed(&rng, seed);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++)
            m[(size_t)i * ld + j] = j < cols ? 2.0f * fmnn__rng_uniform(&rng) - 1.0f : NAN;
    return m;
}

static float *copy_of(const float *src, size_t n)
{
    float *m = malloc(sizeof(float) * (n ? n : 1));
    if (!m)
        ck_abort_msg("out of memory");
    memcpy(m, src, sizeof(float) * n);
    return m;
}

/* ---- the reference ---------------------------------------------------------- */

typedef struct gemm_case {
    int trans_a, trans_b, m, n, k;
    float alpha, beta;
    int pad;        /* lda, ldb, ldc exceed the row length by this much */
    int nan_c;      /* C starts as NaN (with beta 0) */
    uint64_t seed;
} gemm_case;

typedef struct gemm_data {
    gemm_case g;
    int lda, ldb, ldc;
    float *a, *b, *c0, *c;
} gemm_data;

static void setup(gemm_data *d, const gemm_case *g)
{
    d->g = *g;
    int a_rows = g->trans_a ? g->k : g->m, a_cols = g->trans_a ? g->m : g->k;
    int b_rows = g->trans_b ? g->n : g->k, b_cols = g->trans_b ? g->k : g->n;
    d->lda = a_cols + g->pad;
    d->ldb = b_cols + g->pad;
    d->ldc = g->n + g->pad;
    d->a = random_matrix(a_rows, a_cols, d->lda, g->seed);
    d->b = random_matrix(b_rows, b_cols, d->ldb, g->seed + 1);
    d->c0 = random_matrix(g->m, g->n, d->ldc, g->seed + 2);
    if (g->nan_c)
        for (int i = 0; i < g->m; i++)
            for (int j = 0; j < g->n; j++)
                d->c0[(size_t)i * d->ldc + j] = NAN;
    d->c = copy_of(d->c0, (size_t)g->m * d->ldc);
}

static void teardown(gemm_data *d)
{
    free(d->a);
    free(d->b);
    free(d->c0);
    free(d->c);
}

static void run(gemm_data *d)
{
    const gemm_case *g = &d->g;
    fmnn__gemm(g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, d->a, d->lda, d->b, d->ldb, g->beta, d->c,
               d->ldc);
}

/* op(A) as m rows and op(B) as n columns, each k long, in doubles. */
static double *op_a_rows(const gemm_data *d)
{
    const gemm_case *g = &d->g;
    double *rows = malloc(sizeof(double) * (size_t)g->m * (size_t)(g->k ? g->k : 1));
    if (!rows)
        ck_abort_msg("out of memory");
    for (int i = 0; i < g->m; i++)
        for (int p = 0; p < g->k; p++)
            rows[(size_t)i * g->k + p] =
                g->trans_a ? d->a[(size_t)p * d->lda + i] : d->a[(size_t)i * d->lda + p];
    return rows;
}

static double *op_b_columns(const gemm_data *d)
{
    const gemm_case *g = &d->g;
    double *cols = malloc(sizeof(double) * (size_t)g->n * (size_t)(g->k ? g->k : 1));
    if (!cols)
        ck_abort_msg("out of memory");
    for (int j = 0; j < g->n; j++)
        for (int p = 0; p < g->k; p++)
            cols[(size_t)j * g->k + p] =
                g->trans_b ? d->b[(size_t)j * d->ldb + p] : d->b[(size_t)p * d->ldb + j];
    return cols;
}

/* The double-precision result of each element of C and its tolerance. */
static void reference(const gemm_data *d, double *want, double *tolerance)
{
    const gemm_case *g = &d->g;
    const double grow = (2.0 * sqrt((double)g->k) + 4.0) * FLT_EPSILON;
    double *a = op_a_rows(d), *b = op_b_columns(d);
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            const double *x = a + (size_t)i * g->k, *y = b + (size_t)j * g->k;
            double sum = 0.0, abs_sum = 0.0;
            for (int p = 0; p < g->k; p++) {
                sum += x[p] * y[p];
                abs_sum += fabs(x[p] * y[p]);
            }
            double c0 = d->c0[(size_t)i * d->ldc + j];
            double value = g->alpha * sum, bound = fabs(g->alpha) * abs_sum;
            if (g->beta != 0.0f) {
                value += g->beta * c0;
                bound += fabs(g->beta * c0);
            }
            want[(size_t)i * g->n + j] = value;
            tolerance[(size_t)i * g->n + j] = grow * bound + 1e-30;
        }
    free(a);
    free(b);
}

/* Every element of C against the reference, and the padding of C
 * untouched. */
static void check_result(const gemm_data *d, const double *want, const double *tolerance, const char *what)
{
    const gemm_case *g = &d->g;
    for (int i = 0; i < g->m; i++) {
        for (int j = 0; j < g->n; j++) {
            size_t at = (size_t)i * g->n + j;
            double got = d->c[(size_t)i * d->ldc + j];
            if (!(fabs(got - want[at]) <= tolerance[at]))
                ck_abort_msg("%s: %s on %d threads, ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g pad=%d: "
                             "C[%d][%d] = %.9g, want %.9g (tolerance %.3g)",
                             what, fmnn__gemm_path(), fmnn_get_num_threads(), g->trans_a, g->trans_b, g->m,
                             g->n, g->k, g->alpha, g->beta, g->pad, i, j, got, want[at], tolerance[at]);
        }
        for (int j = g->n; j < d->ldc; j++)
            if (!isnan(d->c[(size_t)i * d->ldc + j]))
                ck_abort_msg("%s: the padding of C row %d was written", what, i);
    }
}

/* One case on 1 thread, or on 1 and then 2. */
static void check_case(const gemm_case *g, int max_threads, const char *what)
{
    gemm_data d;
    setup(&d, g);
    size_t size = (size_t)g->m * (size_t)g->n;
    double *want = malloc(sizeof(double) * (size ? size : 1));
    double *tolerance = malloc(sizeof(double) * (size ? size : 1));
    if (!want || !tolerance)
        ck_abort_msg("out of memory");
    reference(&d, want, tolerance);
    for (int threads = 1; threads <= max_threads; threads++) {
        fmnn_set_num_threads(threads);
        memcpy(d.c, d.c0, sizeof(float) * (size_t)g->m * d.ldc);
        run(&d);
        check_result(&d, want, tolerance, what);
    }
    free(want);
    free(tolerance);
    teardown(&d);
}

/* ---- accuracy ------------------------------------------------------------------ */

static const int edge_sizes[] = { 1, 2, 15, 16, 17, 31, 33, 100 };
#define N_EDGE_SIZES ((int)(sizeof edge_sizes / sizeof edge_sizes[0]))

/* Every m, n, k in edge_sizes, every transpose combination. */
START_TEST(test_edge_sizes)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(1);
    uint64_t seed = 1;
    for (int t = 0; t < 4; t++)
        for (int mi = 0; mi < N_EDGE_SIZES; mi++)
            for (int ni = 0; ni < N_EDGE_SIZES; ni++)
                for (int ki = 0; ki < N_EDGE_SIZES; ki++) {
                    gemm_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = edge_sizes[mi],
                                    .n = edge_sizes[ni], .k = edge_sizes[ki], .alpha = 1.0f,
                                    .beta = 0.0f, .seed = seed++ };
                    check_case(&g, 1, "edge sizes");
                }
}
END_TEST

/* The model's GEMMs, scaled down, and blocks past KC and NC. */
static const gemm_case model_shapes[] = {
    { 0, 0, 242, 128, 576, 1, 0, 0, 0, 0 },  /* conv2 forward: 2 images of 11 x 11 */
    { 1, 0, 576, 128, 242, 1, 1, 0, 0, 0 },  /* conv2 kernel gradient, accumulated */
    { 0, 1, 242, 576, 128, 1, 0, 0, 0, 0 },  /* conv2 input gradient */
    { 0, 0, 2704, 32, 9, 1, 0, 0, 0, 0 },    /* conv1 forward */
    { 1, 0, 9, 32, 2704, 1, 0, 0, 0, 0 },    /* conv1 kernel gradient */
    { 0, 0, 64, 10, 200, 1, 0, 0, 0, 0 },    /* dense */
    { 1, 0, 200, 10, 64, 1, 0, 0, 0, 0 },
    { 0, 1, 64, 200, 10, 1, 0, 0, 0, 0 },
    { 0, 0, 45, 37, 1000, 1, 0, 0, 0, 0 },   /* three k blocks */
    { 0, 0, 30, 800, 384, 1, 0, 0, 0, 0 },   /* two column blocks */
    { 1, 1, 30, 1601, 200, 1, 0, 0, 0, 0 },
};
#define N_MODEL_SHAPES ((int)(sizeof model_shapes / sizeof model_shapes[0]))

/* The model's shapes on 1 and 2 threads, and with every transpose. */
START_TEST(test_model_shapes)
{
    if (!use_path(_i))
        return;
    for (int s = 0; s < N_MODEL_SHAPES; s++) {
        gemm_case g = model_shapes[s];
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
    static const int shapes[][3] = { { 17, 33, 31 }, { 300, 70, 40 }, { 130, 150, 200 } };
    uint64_t seed = 1000;
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < 3; s++)
            for (int ai = 0; ai < 3; ai++)
                for (int bi = 0; bi < 3; bi++) {
                    gemm_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = shapes[s][0], .n = shapes[s][1],
                                    .k = shapes[s][2], .alpha = alphas[ai], .beta = betas[bi], .pad = 3 + s,
                                    .nan_c = betas[bi] == 0.0f, .seed = seed++ };
                    check_case(&g, 2, "alpha, beta, ld");
                }
}
END_TEST

/* alpha 0 or k 0: C = beta C, and A and B (NaN here) are not read. */
START_TEST(test_alpha_zero_and_empty_k)
{
    if (!use_path(_i))
        return;
    fmnn_set_num_threads(2);
    float a[6], b[6], c[4] = { 1, 2, 3, 4 };
    for (int i = 0; i < 6; i++)
        a[i] = b[i] = NAN;
    fmnn__gemm(0, 0, 2, 2, 3, 0.0f, a, 3, b, 2, 0.5f, c, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(c[i], 0.5f * (float)(i + 1));
    fmnn__gemm(1, 1, 2, 2, 0, 1.0f, a, 2, b, 1, 0.0f, c, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(c[i], 0.0f);
    fmnn__gemm(0, 0, 0, 2, 3, 1.0f, a, 3, b, 2, 0.0f, NULL, 2); /* m = 0: nothing */
}
END_TEST

/* ---- determinism ---------------------------------------------------------- */

/* The same call twice gives the same bits, on 1 and 2 threads; the packed
 * paths give the same bits on 1 and 2 threads too. */
START_TEST(test_repeatable)
{
    if (!use_path(_i))
        return;
    for (int t = 0; t < 4; t++) {
        gemm_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = 250, .n = 130, .k = 700, .alpha = 1.0f,
                        .beta = 0.5f, .seed = 7000u + (uint64_t)t };
        gemm_data d;
        setup(&d, &g);
        size_t size = sizeof(float) * (size_t)g.m * d.ldc;
        float *first[2];
        for (int threads = 1; threads <= 2; threads++) {
            fmnn_set_num_threads(threads);
            run(&d);
            first[threads - 1] = copy_of(d.c, size / sizeof(float));
            memcpy(d.c, d.c0, size);
            run(&d);
            ck_assert_msg(memcmp(d.c, first[threads - 1], size) == 0,
                          "%s: two calls on %d threads differ (ta=%d tb=%d)", fmnn__gemm_path(), threads,
                          g.trans_a, g.trans_b);
            memcpy(d.c, d.c0, size);
        }
        if (path_is_packed(_i))
            ck_assert_msg(memcmp(first[0], first[1], size) == 0, "%s: 1 and 2 threads differ (ta=%d tb=%d)",
                          fmnn__gemm_path(), g.trans_a, g.trans_b);
        free(first[0]);
        free(first[1]);
        teardown(&d);
    }
}
END_TEST

/*
 * Rows r0..r0+rows of C computed alone (A offset to row r0, C to row r0)
 * equal the same rows of the whole product, for every block height 1..m:
 * a row's value does not depend on m or on where its tile starts.  The
 * same for blocks of columns.
 */
START_TEST(test_independent_of_blocking)
{
    if (!use_path(_i) || !path_is_packed(_i))
        return;
    fmnn_set_num_threads(1);
    for (int t = 0; t < 4; t++) {
        gemm_case g = { .trans_a = t & 1, .trans_b = t >> 1, .m = 64, .n = 70, .k = 500, .alpha = 1.0f,
                        .beta = 0.0f, .seed = 8000u + (uint64_t)t };
        gemm_data d;
        setup(&d, &g);
        run(&d);
        float *whole = copy_of(d.c, (size_t)g.m * d.ldc);
        for (int height = 1; height <= g.m; height++) {
            for (int r0 = 0; r0 < g.m; r0 += height) {
                int rows = g.m - r0 < height ? g.m - r0 : height;
                const float *a = g.trans_a ? d.a + r0 : d.a + (size_t)r0 * d.lda;
                float *c = d.c + (size_t)r0 * d.ldc;
                memset(c, 0, sizeof(float) * (size_t)rows * d.ldc);
                fmnn__gemm(g.trans_a, g.trans_b, rows, g.n, g.k, 1.0f, a, d.lda, d.b, d.ldb, 0.0f, c, d.ldc);
                for (int i = r0; i < r0 + rows; i++)
                    if (memcmp(d.c + (size_t)i * d.ldc, whole + (size_t)i * d.ldc, sizeof(float) * (size_t)g.n))
                        ck_abort_msg("%s: row %d differs when computed in blocks of %d rows (ta=%d tb=%d)",
                                     fmnn__gemm_path(), i, height, g.trans_a, g.trans_b);
            }
        }
        for (int width = 1; width <= g.n; width += 3) {
            for (int c0 = 0; c0 < g.n; c0 += width) {
                int cols = g.n - c0 < width ? g.n - c0 : width;
                const float *b = g.trans_b ? d.b + (size_t)c0 * d.ldb : d.b + c0;
                fmnn__gemm(g.trans_a, g.trans_b, g.m, cols, g.k, 1.0f, d.a, d.lda, b, d.ldb, 0.0f, d.c + c0,
                           d.ldc);
            }
            for (int i = 0; i < g.m; i++)
                if (memcmp(d.c + (size_t)i * d.ldc, whole + (size_t)i * d.ldc, sizeof(float) * (size_t)g.n))
                    ck_abort_msg("%s: row %d differs when computed in blocks of %d columns (ta=%d tb=%d)",
                                 fmnn__gemm_path(), i, width, g.trans_a, g.trans_b);
        }
        free(whole);
        teardown(&d);
    }
}
END_TEST

/* ---- the suite --------------------------------------------------------------- */

static Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("accuracy");
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
        if (fmnn__gemm_select(paths[i]))
            printf("check_gemm: path %s runs here\n", paths[i]);
    fmnn__gemm_select(NULL);
    printf("check_gemm: fmnn__gemm uses %s by default\n", fmnn__gemm_path());
    SRunner *sr = srunner_create(gemm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
