/*
 * testdata.h - what the training tests share: a tolerance assertion, a
 * random generator of the tests' own (the data must not depend on the
 * library's), and small constructors that fail the test on error.
 * Everything is static inline, so each suite has its own copy.
 */
#ifndef FMNN_TESTS_TESTDATA_H
#define FMNN_TESTS_TESTDATA_H

#include <check.h>
#include <math.h>
#include <stdint.h>

#include "fmnn.h"
#include "testutil.h"

#define ASSERT_CLOSE(a, b, rel, abs_tol)                                                   \
    do {                                                                                   \
        double a_ = (a), b_ = (b);                                                         \
        double tol_ = (rel) * fmax(fabs(a_), fabs(b_)) + (abs_tol);                        \
        ck_assert_msg(fabs(a_ - b_) <= tol_, "line %d: %s = %.10g but %s = %.10g (diff %.3g)", \
                      __LINE__, #a, a_, #b, b_, fabs(a_ - b_));                            \
    } while (0)

/* splitmix64, our own: the data must not depend on the library's RNG. */
static uint64_t rng_state = 1;

static inline void rng_seed(uint64_t seed)
{
    rng_state = seed;
}

static inline uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline double urand(void) /* [0, 1) */
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static inline double nrand(void) /* N(0, 1), Box-Muller */
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

static inline int irand(int n)
{
    return (int)(urand() * n);
}

static inline fmnn_model *new_model(int rank, const int *dims)
{
    fmnn_model *m = NOT_NULL;
    EXPECT_OK(fmnn_model_new(&m, rank, dims));
    ck_assert_ptr_nonnull(m);
    return m;
}

static inline void add(fmnn_model *m, fmnn_layer *layer)
{
    ck_assert_ptr_nonnull(layer);
    EXPECT_OK(fmnn_model_add(m, layer));
}

static inline fmnn_tensor *tensor(int rank, const int *dims)
{
    fmnn_tensor *t = NULL;
    EXPECT_OK(fmnn_tensor_new(&t, rank, dims));
    return t;
}

static inline fmnn_tensor *matrix(int rows, int cols)
{
    return tensor(2, (int[]){ rows, cols });
}

#endif /* FMNN_TESTS_TESTDATA_H */
