/*
 * gradcheck.h - finite-difference gradient checks for libfmnn's layers,
 * losses, regularizers and whole models (tests only).
 *
 * Everything here is independent of the Check framework: functions return
 * what they found (gc_stats) and print the first disagreements to stderr,
 * and the suite decides what to assert.  Set GC_VERBOSE=1 in the
 * environment to print a one-line summary of every check.
 *
 * Central differences: numeric = (L(x + h) - L(x - h)) / (x+h - (x-h)),
 * with L accumulated in double and the actual float perturbation in the
 * denominator.  An entry passes when
 *     |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
 */
#ifndef FMNN_TESTS_GRADCHECK_H
#define FMNN_TESTS_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "model_impl.h"

/* ---- tolerances and results -------------------------------------- */

typedef struct gc_tol {
    double h;     /* the finite-difference step */
    double rtol;  /* relative part of the allowed error */
    double atol;  /* absolute part of the allowed error */
} gc_tol;

/* Float32 forward passes of layers: truncation error is O(h^2), and the
 * rounding of L (a few ulps of |L|) is amplified by 1/2h. */
#define GC_TOL_LAYER ((gc_tol){ 1e-2, 1e-2, 1e-3 })

typedef struct gc_stats {
    size_t checked;    /* entries compared against finite differences */
    size_t failed;     /* entries outside the tolerance (or not finite) */
    double max_grad;   /* max |analytic| over ALL entries, checked or not */
    double max_ratio;  /* max |analytic - numeric| / allowed */
} gc_stats;

/* Records one comparison; prints the first few failures of `what`. */
void gc_stats_add(gc_stats *s, const char *what, size_t i, double analytic,
                  double numeric, const gc_tol *tol);

/* Merges b into a (sums the counts, keeps the maxima). */
void gc_stats_merge(gc_stats *a, const gc_stats *b);

/* A scalar function of some float array the caller perturbs. */
typedef double (*gc_objective)(void *ctx);

/*
 * Compares analytic[i] with the central difference of f in x[i], for every
 * i when max_checks is 0 or >= n, otherwise for max_checks distinct indices
 * drawn from seed.  x is restored exactly.  f must not write analytic.
 */
gc_stats gc_check(const char *what, gc_objective f, void *ctx, float *x,
                  const float *analytic, size_t n, size_t max_checks,
                  uint64_t seed, const gc_tol *tol);

/* ---- random data --------------------------------------------------- */

/* Uniform in [lo, hi). */
void gc_fill_uniform(fmnn_rng *rng, float *x, size_t n, float lo, float hi);

/* |x| uniform in [lo, hi) with a random sign: keeps values off a kink at 0. */
void gc_fill_signed(fmnn_rng *rng, float *x, size_t n, float lo, float hi);

/* A random permutation of n distinct values spaced `spacing` apart and
 * centred on 0: no two entries are within spacing of each other. */
void gc_fill_distinct(fmnn_rng *rng, float *x, size_t n, float spacing);

/* min |x[i]|. */
double gc_min_abs(const float *x, size_t n);

/*
 * Over non-overlapping ph x pw windows of a (batch, h, w, c) array, the
 * smallest gap between a window's largest value and its runner-up, among
 * windows whose largest value is positive (after a ReLU, windows of zeros
 * have no gradient whichever value wins).  Large when there is none.
 */
double gc_pool_min_gap(const float *x, int batch, int h, int w, int c, int ph,
                       int pw);

/* ---- forward references, by definition (for values, not gradients) -- */

/*
 * Conv2D pre-activations in double, straight from TensorFlow's definition:
 * out[n, y, x, f] = bias[f] + sum_{i, j, ch} in[n, y*sh + i - pad_top,
 * x*sw + j - pad_left, ch] * kernel[i, j, ch, f], zero outside the image;
 * valid: out = (in - k) / s + 1; same: out = ceil(in / s) with
 * pad_before = floor(max((out - 1) * s + k - in, 0) / 2).  out holds
 * batch * out_h * out_w * filters values; *out_h and *out_w receive the
 * output size.
 */
void gc_conv2d_reference(const float *x, int batch, int h, int w, int c, const float *kernel,
                         const float *bias, int filters, int kh, int kw, int sh, int sw,
                         fmnn_padding padding, double *out, int *out_h, int *out_w);

/* MaxPooling2D the same way: the max over the part of each window that
 * lies inside the image (padding is never the max). */
void gc_maxpool2d_reference(const float *x, int batch, int h, int w, int c, int ph, int pw, int sh,
                            int sw, fmnn_padding padding, double *out, int *out_h, int *out_w);

/* ---- activations ---------------------------------------------------- */

/* The kind's name in Keras ("leaky_relu"), and its element-wise function
 * in double, written from keras.activations' definitions (softmax and
 * linear: the identity). */
const char *gc_activation_name(fmnn_activation_kind kind);
double gc_activation_reference(fmnn_activation_kind kind, double x);

/* ---- one layer, driven through its ops ----------------------------- */

/*
 * A layer with buffers of its own for one batch: the objective is
 * L = sum_i r_i * out_i with fixed random r, so dL/dout = r.
 */
typedef struct gc_layer {
    fmnn_layer *layer;   /* owned: freed by gc_layer_free */
    fmnn_pass pass;      /* batch, training and seed may be changed */
    size_t n_in, n_out;  /* floats over the whole batch */
    float *x, *y, *r;    /* input, output, dL/dout */
    float *dout, *din;   /* backward's buffers */
    float *kernel, *bias, *kernel_grad, *bias_grad;
    float *state;        /* non-trainable values, as the layer's init set them */
    void *saved;
    float *workspace;
} gc_layer;

/*
 * Gives the layer the input shape (rank, dims) without the batch axis,
 * infers, allocates every buffer for `batch` samples and sets the layer's
 * views into them; index is layer->index (dropout seeds its mask by it).
 * The layer is owned from here on, even on failure.  Returns a status.
 * Fill the data with gc_layer_fill before use.
 */
int gc_layer_init(gc_layer *g, fmnn_layer *layer, int rank, const int *dims,
                  int batch, int index);
void gc_layer_free(gc_layer *g);

/* Kernel U(-a, a) with a = sqrt(3 / fan_in), bias U(-0.5, 0.5),
 * x U(-1, 1), r U(-1, 1), all from seed. */
void gc_layer_fill(gc_layer *g, uint64_t seed);

/* forward, then sum_i r_i * out_i in double.  ctx is a gc_layer. */
double gc_layer_objective(void *ctx);

/* forward, then backward with dout = a copy of r.  din, kernel_grad and
 * bias_grad are filled with a sentinel first, so a layer that leaves any
 * entry unwritten (or accumulates into it) fails the check. */
void gc_layer_gradients(gc_layer *g);

/* The smallest |pre-activation| of a layer with a fused activation
 * (Dense, Conv2D): its output with the activation set to linear. */
double gc_layer_min_preactivation(gc_layer *g);

typedef struct gc_layer_report {
    gc_stats din, kernel, bias;
} gc_layer_report;

/* gc_layer_gradients, then gc_check of din against x, kernel_grad against
 * the kernel and bias_grad against the bias (those with any entries). */
gc_layer_report gc_layer_check(gc_layer *g, const char *name,
                               size_t max_checks, uint64_t seed,
                               const gc_tol *tol);

/* ---- losses through fmnn__loss -------------------------------------- */

/*
 * The mean loss of a batch as a function of x: the logits (fused, the
 * probabilities are recomputed from them with fmnn__activate) or the
 * output (unfused).  ctx is a gc_loss.
 */
typedef struct gc_loss {
    fmnn_loss kind;
    int fused_softmax;
    int batch, width;
    float *x;            /* logits or output: what is perturbed */
    float *probs;        /* fused only: softmax(x), (batch, width) */
    const float *target; /* (batch, width), or (batch) class indices */
} gc_loss;

double gc_loss_mean(void *ctx);

/* fmnn__loss with a gradient; returns the sum it reports. */
double gc_loss_gradient(gc_loss *l, float *grad);

/* ---- a whole compiled model ----------------------------------------- */

/*
 * The training step of lib/train.c on the model's own buffers: its
 * forward pass, mean loss + regularization penalty, its backward pass,
 * the regularization gradient.
 */
typedef struct gc_model {
    fmnn_model *model;   /* borrowed */
    fmnn_pass pass;
    const float *x;      /* (batch, input shape...) */
    const float *y;      /* targets as fmnn__loss takes them */
    const float *weights; /* per-sample loss weights, or NULL (set after gc_model_init) */
} gc_model;

/* Plans the model's buffers for `batch`.  Returns a status. */
int gc_model_init(gc_model *g, fmnn_model *model, int batch, const float *x,
                  const float *y, int training, uint64_t seed);

/* The objective (mean loss + penalty), without gradients.  ctx is a gc_model. */
double gc_model_objective(void *ctx);

/* The objective, with the gradient of all parameters left in model->grads
 * (which are filled with a sentinel first). */
double gc_model_gradients(gc_model *g);

#endif /* FMNN_TESTS_GRADCHECK_H */
