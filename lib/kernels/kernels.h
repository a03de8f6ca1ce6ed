/*
 * kernels.h - the compute kernels layers share: activations (activation.c)
 * and the matrix products (gemm.c, gemm_bf16.c).  Kernels are leaves: they
 * know arrays and activation kinds, nothing of layers or models.
 */
#ifndef FMNN_KERNELS_H
#define FMNN_KERNELS_H

#include <stddef.h>

#include "internal.h"

/* keras.activations' constants, which ONNX files spell out too. */
#define FMNN__LEAKY_SLOPE 0.2f /* leaky_relu's negative_slope */
#define FMNN__SELU_ALPHA 1.67326324235437728481f
#define FMNN__SELU_SCALE 1.05070098735548049342f
#define FMNN__GELU_TANH_C 0.79788456080286535588f /* sqrt(2 / pi) */
#define FMNN__GELU_TANH_A 0.044715f

/* In place over rows of `cols` values (softmax normalises each row). */
FMNN_INTERNAL void fmnn__activate(fmnn_activation_kind kind, float *x,
                                  size_t rows, size_t cols);

/* Kinds whose derivative is not a function of their output (GELU,
 * swish): their backward pass needs the input x. */
static inline int fmnn__activation_needs_input(fmnn_activation_kind kind)
{
    return kind == FMNN_GELU || kind == FMNN_GELU_TANH || kind == FMNN_SWISH;
}

/* d *= f'(x) for those kinds, over n values. */
FMNN_INTERNAL void fmnn__activate_backward_from_input(fmnn_activation_kind kind, const float *x, float *d,
                                                     size_t n);

/* d *= f'(.) expressed through the activation's output y (every other kind). */
FMNN_INTERNAL void fmnn__activate_backward(fmnn_activation_kind kind,
                                           const float *y, float *d,
                                           size_t rows, size_t cols);

/* y[r, :] = f(y[r, :] + bias) for every row, in one pass; bias may be
 * NULL (no bias). */
FMNN_INTERNAL void fmnn__bias_activate(fmnn_activation_kind kind, float *y,
                                       const float *bias, size_t rows,
                                       size_t cols);

/* d *= f'(.) through the output y, then bias_grad[c] = sum over rows of
 * d[r, c] (added to bias_grad when accumulate is set; no sums when
 * bias_grad is NULL); element-wise kinds in one pass. */
FMNN_INTERNAL void fmnn__bias_activate_backward(fmnn_activation_kind kind,
                                                const float *y, float *d,
                                                float *bias_grad,
                                                size_t rows, size_t cols,
                                                int accumulate);

/* C = alpha * op(A) * op(B) + beta * C, row-major (gemm.c). */
FMNN_INTERNAL void fmnn__gemm(int trans_a, int trans_b, int m, int n, int k,
                              float alpha, const float *a, int lda,
                              const float *b, int ldb, float beta, float *c,
                              int ldc);

/* The same product with every element of op(A) and op(B) first rounded to
 * bfloat16 (to nearest even), the products summed in fp32: the GEMM of
 * Keras's mixed_bfloat16 policy (gemm_bf16.c). */
FMNN_INTERNAL void fmnn__gemm_bf16(int trans_a, int trans_b, int m, int n,
                                   int k, float alpha, const float *a,
                                   int lda, const float *b, int ldb,
                                   float beta, float *c, int ldc);

#endif /* FMNN_KERNELS_H */
