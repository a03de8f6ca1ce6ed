/*
 * activation.c - activation functions and their derivatives, shared by
 * the Activation layer and the activation= option of Conv2D and Dense.
 * The derivatives are written in terms of the output y, which is what the
 * backward pass keeps.
 */
#include <math.h>

#include "kernels.h"


/* Below this many values a parallel region costs more than it saves. */
#define PARALLEL_MIN 32768

static void softmax_rows(float *x, size_t rows, size_t cols)
{
#pragma omp parallel num_threads(fmnn__threads()) if (rows * cols > PARALLEL_MIN)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            float *row = x + r * cols;
            float max = row[0];
            for (size_t c = 1; c < cols; c++)
                max = row[c] > max ? row[c] : max;
            float sum = 0.0f;
            for (size_t c = 0; c < cols; c++) {
                row[c] = expf(row[c] - max);
                sum += row[c];
            }
            float inv = 1.0f / sum;
            for (size_t c = 0; c < cols; c++)
                row[c] *= inv;
        }
        fmnn__restore_fp_mode(fp);
    }
}

#define INV_SQRT_2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

static inline float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* f(x) of one element-wise kind; the compiler hoists the switch. */
static inline float apply(fmnn_activation_kind kind, float x)
{
    switch (kind) {
    case FMNN_RELU: return x > 0.0f ? x : 0.0f;
    case FMNN_SIGMOID: return sigmoid(x);
    case FMNN_TANH: return tanhf(x);
    case FMNN_LEAKY_RELU: return x > 0.0f ? x : FMNN__LEAKY_SLOPE * x;
    case FMNN_ELU: return x > 0.0f ? x : expm1f(x);
    case FMNN_SELU: return FMNN__SELU_SCALE * (x > 0.0f ? x : FMNN__SELU_ALPHA * expm1f(x));
    case FMNN_GELU: return 0.5f * x * (1.0f + erff(x * INV_SQRT_2));
    case FMNN_GELU_TANH: return 0.5f * x * (1.0f + tanhf(FMNN__GELU_TANH_C * (x + FMNN__GELU_TANH_A * x * x * x)));
    case FMNN_SOFTPLUS: return (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x))); /* never overflows */
    case FMNN_SWISH: return x * sigmoid(x);
    case FMNN_HARD_SIGMOID: {
        const float t = x + 3.0f;
        return (t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t) / 6.0f;
    }
    default: return x;
    }
}

/* f'(x) written through y = f(x), for the kinds where it can be. */
static inline float slope(fmnn_activation_kind kind, float y)
{
    switch (kind) {
    case FMNN_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case FMNN_SIGMOID: return y * (1.0f - y);
    case FMNN_TANH: return 1.0f - y * y;
    case FMNN_LEAKY_RELU: return y > 0.0f ? 1.0f : FMNN__LEAKY_SLOPE;
    case FMNN_ELU: return y > 0.0f ? 1.0f : y + 1.0f;               /* exp(x) */
    case FMNN_SELU: return y > 0.0f ? FMNN__SELU_SCALE : y + FMNN__SELU_SCALE * FMNN__SELU_ALPHA;
    case FMNN_SOFTPLUS: return -expm1f(-y);                          /* sigmoid(x) */
    case FMNN_HARD_SIGMOID: return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
    default: return 1.0f;
    }
}

/* f'(x) from x, for the kinds whose output does not determine it. */
static inline float slope_at(fmnn_activation_kind kind, float x)
{
    switch (kind) {
    case FMNN_GELU: return 0.5f * (1.0f + erff(x * INV_SQRT_2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
    case FMNN_GELU_TANH: {
        const float t = tanhf(FMNN__GELU_TANH_C * (x + FMNN__GELU_TANH_A * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * FMNN__GELU_TANH_C * (1.0f + 3.0f * FMNN__GELU_TANH_A * x * x);
    }
    case FMNN_SWISH: {
        const float s = sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    default: return 1.0f;
    }
}

/* The gradient through an element-wise kind, given its output y.  relu
 * selects rather than multiplies, so that 0 * Inf cannot make a NaN. */
static inline float back(fmnn_activation_kind kind, float y, float d)
{
    return kind == FMNN_RELU ? (y > 0.0f ? d : 0.0f) : d * slope(kind, y);
}

void fmnn__activate(fmnn_activation_kind kind, float *x, size_t rows, size_t cols)
{
    const size_t n = rows * cols;
    if (kind == FMNN_SOFTMAX) {
        softmax_rows(x, rows, cols);
        return;
    }
    if (kind == FMNN_LINEAR)
        return;
#pragma omp parallel num_threads(fmnn__threads()) if (n > PARALLEL_MIN)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            x[i] = apply(kind, x[i]);
        fmnn__restore_fp_mode(fp);
    }
}

void fmnn__activate_backward(fmnn_activation_kind kind, const float *y, float *d, size_t rows, size_t cols)
{
    const size_t n = rows * cols;
    if (kind == FMNN_SOFTMAX) {
        /* d_i <- y_i * (d_i - sum_j d_j y_j), row by row. */
#pragma omp parallel num_threads(fmnn__threads()) if (n > PARALLEL_MIN)
        {
            const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
            for (size_t r = 0; r < rows; r++) {
                const float *yr = y + r * cols;
                float *dr = d + r * cols;
                float dot = 0.0f;
                for (size_t c = 0; c < cols; c++)
                    dot += dr[c] * yr[c];
                for (size_t c = 0; c < cols; c++)
                    dr[c] = yr[c] * (dr[c] - dot);
            }
            fmnn__restore_fp_mode(fp);
        }
        return;
    }
    if (kind == FMNN_LINEAR)
        return;
#pragma omp parallel num_threads(fmnn__threads()) if (n > PARALLEL_MIN)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            d[i] = back(kind, y[i], d[i]);
        fmnn__restore_fp_mode(fp);
    }
}

void fmnn__activate_backward_from_input(fmnn_activation_kind kind, const float *x, float *d, size_t n)
{
#pragma omp parallel num_threads(fmnn__threads()) if (n > PARALLEL_MIN)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            d[i] *= slope_at(kind, x[i]);
        fmnn__restore_fp_mode(fp);
    }
}

void fmnn__bias_activate(fmnn_activation_kind kind, float *y, const float *bias, size_t rows, size_t cols)
{
    const fmnn_activation_kind pointwise = kind == FMNN_SOFTMAX ? FMNN_LINEAR : kind;
    if (!bias) { /* use_bias=False: the activation alone */
        if (pointwise != FMNN_LINEAR)
            fmnn__activate(pointwise, y, rows, cols);
        if (kind == FMNN_SOFTMAX)
            softmax_rows(y, rows, cols);
        return;
    }
#pragma omp parallel num_threads(fmnn__threads()) if (rows * cols > PARALLEL_MIN)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            float *row = y + r * cols;
            if (pointwise == FMNN_RELU) { /* the hot case, kept branch-free */
                for (size_t c = 0; c < cols; c++) {
                    float v = row[c] + bias[c];
                    row[c] = v > 0.0f ? v : 0.0f;
                }
            } else {
                for (size_t c = 0; c < cols; c++)
                    row[c] = apply(pointwise, row[c] + bias[c]);
            }
        }
        fmnn__restore_fp_mode(fp);
    }
    if (kind == FMNN_SOFTMAX)
        softmax_rows(y, rows, cols);
}

/*
 * Each thread owns a block of columns and sums them over every row in
 * order, so the bias gradient does not depend on the thread count.
 */
void fmnn__bias_activate_backward(fmnn_activation_kind kind, const float *y, float *d, float *bias_grad,
                                  size_t rows, size_t cols, int accumulate)
{
    if (kind == FMNN_SOFTMAX) { /* row-wise: apply it first, then sum */
        fmnn__activate_backward(kind, y, d, rows, cols);
        kind = FMNN_LINEAR;
    }
    if (!bias_grad) { /* use_bias=False: the activation's part alone */
        fmnn__activate_backward(kind, y, d, rows, cols);
        return;
    }
    int threads = fmnn__threads();
    if (rows * cols <= PARALLEL_MIN || cols < 32)
        threads = 1;
#pragma omp parallel num_threads(threads)
    {
        const unsigned fp = fmnn__flush_denormals();
        int first, last;
        fmnn__thread_band((int)cols, 1, &first, &last);
        const size_t c0 = (size_t)first, c1 = (size_t)last;
        for (size_t c = c0; c < c1 && !accumulate; c++)
            bias_grad[c] = 0.0f;
        for (size_t r = 0; r < rows; r++) {
            const float *yr = y + r * cols;
            float *dr = d + r * cols;
            if (kind == FMNN_RELU) {
                for (size_t c = c0; c < c1; c++) {
                    const float incoming = dr[c]; /* loaded always, so the loop vectorizes */
                    const float g = yr[c] > 0.0f ? incoming : 0.0f;
                    dr[c] = g;
                    bias_grad[c] += g;
                }
            } else {
                for (size_t c = c0; c < c1; c++) {
                    float g = back(kind, yr[c], dr[c]);
                    dr[c] = g;
                    bias_grad[c] += g;
                }
            }
        }
        fmnn__restore_fp_mode(fp);
    }
}
