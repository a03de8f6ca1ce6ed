/*
 * gradcheck.c - finite-difference gradient checks (see gradcheck.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* What backward's outputs hold before it runs: it must overwrite them. */
#define GC_SENTINEL 1234.5f

/* Failures printed per check; the rest are only counted. */
#define GC_MAX_REPORTS 5

static int gc_verbose(void)
{
    const char *v = getenv("GC_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

/* ---- results ---------------------------------------------------------- */

void gc_stats_add(gc_stats *s, const char *what, size_t i, double analytic, double numeric,
                  const gc_tol *tol)
{
    double err = fabs(analytic - numeric);
    double scale = fabs(analytic) > fabs(numeric) ? fabs(analytic) : fabs(numeric);
    double allowed = tol->atol + tol->rtol * scale;
    int ok = isfinite(analytic) && isfinite(numeric) && err <= allowed;
    double ratio = isfinite(err) ? err / allowed : INFINITY;
    s->checked++;
    if (ratio > s->max_ratio)
        s->max_ratio = ratio;
    if (!ok) {
        if (s->failed < GC_MAX_REPORTS)
            fprintf(stderr, "gradcheck: %s[%zu]: analytic %.7g, numeric %.7g (error %.3g, allowed %.3g)\n",
                    what, i, analytic, numeric, err, allowed);
        s->failed++;
    }
}

void gc_stats_merge(gc_stats *a, const gc_stats *b)
{
    a->checked += b->checked;
    a->failed += b->failed;
    if (b->max_grad > a->max_grad)
        a->max_grad = b->max_grad;
    if (b->max_ratio > a->max_ratio)
        a->max_ratio = b->max_ratio;
}

gc_stats gc_check(const char *what, gc_objective f, void *ctx, float *x, const float *analytic,
                  size_t n, size_t max_checks, uint64_t seed, const gc_tol *tol)
{
    gc_stats s = { 0, 0, 0.0, 0.0 };
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)analytic[i]);
        if (!(a <= s.max_grad)) /* NaN propagates */
            s.max_grad = a;
    }
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) {
        fprintf(stderr, "gradcheck: %s: out of memory\n", what);
        s.failed = 1;
        return s;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    size_t count = n;
    if (max_checks && max_checks < n) { /* a random subset: partial Fisher-Yates */
        fmnn_rng rng;
        fmnn__rng_seed(&rng, seed);
        for (size_t k = 0; k < max_checks; k++) {
            size_t j = k + fmnn__rng_below(&rng, (uint32_t)(n - k));
            size_t t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        count = max_checks;
    }
    for (size_t k = 0; k < count; k++) {
        size_t i = order[k];
        float v = x[i];
        float up = (float)((double)v + tol->h), down = (float)((double)v - tol->h);
        x[i] = up;
        double l_up = f(ctx);
        x[i] = down;
        double l_down = f(ctx);
        x[i] = v;
        double numeric = (l_up - l_down) / ((double)up - (double)down);
        gc_stats_add(&s, what, i, analytic[i], numeric, tol);
    }
    free(order);
    if (gc_verbose())
        fprintf(stderr, "gradcheck: %-44s %4zu/%-4zu checked, %zu failed, max |grad| %.3g, worst %.3f of tolerance\n",
                what, s.checked, n, s.failed, s.max_grad, s.max_ratio);
    return s;
}

/* ---- random data -------------------------------------------------------- */

void gc_fill_uniform(fmnn_rng *rng, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * fmnn__rng_uniform(rng);
}

void gc_fill_signed(fmnn_rng *rng, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        float v = lo + (hi - lo) * fmnn__rng_uniform(rng);
        x[i] = (fmnn__rng_next(rng) & 1) ? v : -v;
    }
}

void gc_fill_distinct(fmnn_rng *rng, float *x, size_t n, float spacing)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)i - 0.5f * (float)(n - 1)) * spacing;
    for (size_t i = n; i > 1; i--) {
        size_t j = fmnn__rng_below(rng, (uint32_t)i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

double gc_min_abs(const float *x, size_t n)
{
    double m = INFINITY;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) < m)
            m = fabs((double)x[i]);
    return m;
}

double gc_pool_min_gap(const float *x, int batch, int h, int w, int c, int ph, int pw)
{
    double gap = INFINITY;
    for (int n = 0; n < batch; n++)
        for (int y0 = 0; y0 + ph <= h; y0 += ph)
            for (int x0 = 0; x0 + pw <= w; x0 += pw)
                for (int k = 0; k < c; k++) {
                    double top = -INFINITY, second = -INFINITY;
                    for (int i = 0; i < ph; i++)
                        for (int j = 0; j < pw; j++) {
                            double v = x[(((size_t)n * h + y0 + i) * w + x0 + j) * c + k];
                            if (v > top) {
                                second = top;
                                top = v;
                            } else if (v > second) {
                                second = v;
                            }
                        }
                    if (top > 0.0 && top - second < gap)
                        gap = top - second;
                }
    return gap;
}

/* ---- forward references ------------------------------------------------------ */

/* Output size and padding before, as TensorFlow defines them. */
static int gc_window(int in, int k, int s, fmnn_padding padding, int *pad)
{
    if (padding == FMNN_PADDING_SAME) {
        int out = (in + s - 1) / s;
        int total = (out - 1) * s + k - in;
        *pad = total > 0 ? total / 2 : 0;
        return out;
    }
    *pad = 0;
    return in < k ? 0 : (in - k) / s + 1;
}

void gc_conv2d_reference(const float *x, int batch, int h, int w, int c, const float *kernel,
                         const float *bias, int filters, int kh, int kw, int sh, int sw,
                         fmnn_padding padding, double *out, int *out_h, int *out_w)
{
    int pt, pl;
    int oh = gc_window(h, kh, sh, padding, &pt), ow = gc_window(w, kw, sw, padding, &pl);
    *out_h = oh;
    *out_w = ow;
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < oh; y++)
            for (int xo = 0; xo < ow; xo++)
                for (int f = 0; f < filters; f++) {
                    double sum = bias[f];
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            int iy = y * sh + i - pt, ix = xo * sw + j - pl;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int ch = 0; ch < c; ch++)
                                sum += (double)x[(((size_t)n * h + iy) * w + ix) * c + ch] *
                                       kernel[(((size_t)i * kw + j) * c + ch) * filters + f];
                        }
                    out[(((size_t)n * oh + y) * ow + xo) * filters + f] = sum;
                }
}

void gc_maxpool2d_reference(const float *x, int batch, int h, int w, int c, int ph, int pw, int sh,
                            int sw, fmnn_padding padding, double *out, int *out_h, int *out_w)
{
    int pt, pl;
    int oh = gc_window(h, ph, sh, padding, &pt), ow = gc_window(w, pw, sw, padding, &pl);
    *out_h = oh;
    *out_w = ow;
    for (int n = 0; n < batch; n++)
        for (int y = 0; y < oh; y++)
            for (int xo = 0; xo < ow; xo++)
                for (int ch = 0; ch < c; ch++) {
                    double best = -INFINITY;
                    for (int i = 0; i < ph; i++)
                        for (int j = 0; j < pw; j++) {
                            int iy = y * sh + i - pt, ix = xo * sw + j - pl;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            double v = x[(((size_t)n * h + iy) * w + ix) * c + ch];
                            if (v > best)
                                best = v;
                        }
                    out[(((size_t)n * oh + y) * ow + xo) * c + ch] = best;
                }
}

/* ---- one layer ------------------------------------------------------------ */

const char *gc_activation_name(fmnn_activation_kind kind)
{
    switch (kind) {
    case FMNN_LINEAR: return "linear";
    case FMNN_RELU: return "relu";
    case FMNN_SOFTMAX: return "softmax";
    case FMNN_SIGMOID: return "sigmoid";
    case FMNN_TANH: return "tanh";
    case FMNN_LEAKY_RELU: return "leaky_relu";
    case FMNN_ELU: return "elu";
    case FMNN_SELU: return "selu";
    case FMNN_GELU: return "gelu";
    case FMNN_GELU_TANH: return "gelu (approximate)";
    case FMNN_SOFTPLUS: return "softplus";
    case FMNN_SWISH: return "swish";
    case FMNN_HARD_SIGMOID: return "hard_sigmoid";
    }
    return "?";
}

double gc_activation_reference(fmnn_activation_kind kind, double x)
{
    const double pi = 3.14159265358979323846;
    switch (kind) {
    case FMNN_RELU: return x > 0.0 ? x : 0.0;
    case FMNN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case FMNN_TANH: return tanh(x);
    case FMNN_LEAKY_RELU: return x > 0.0 ? x : 0.2 * x;
    case FMNN_ELU: return x > 0.0 ? x : exp(x) - 1.0;
    case FMNN_SELU: return 1.0507009873554804934193349852946 * (x > 0.0 ? x : 1.6732632423543772848170429916717 * (exp(x) - 1.0));
    case FMNN_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case FMNN_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
    case FMNN_SOFTPLUS: return log(1.0 + exp(x));
    case FMNN_SWISH: return x / (1.0 + exp(-x));
    case FMNN_HARD_SIGMOID: return fmin(fmax(x + 3.0, 0.0), 6.0) / 6.0;
    default: return x;
    }
}

static float *gc_floats(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

int gc_layer_init(gc_layer *g, fmnn_layer *layer, int rank, const int *dims, int batch, int index)
{
    memset(g, 0, sizeof *g);
    g->layer = layer;
    if (!layer)
        return FMNN_ENOMEM;
    if (rank < 1 || rank > FMNN_MAX_RANK - 1 || batch < 1)
        return FMNN_EINVAL;
    layer->index = index;
    layer->in.rank = rank;
    for (int d = 0; d < FMNN_MAX_RANK; d++)
        layer->in.dims[d] = d < rank ? dims[d] : 0;
    int err = layer->ops->infer(layer);
    if (err)
        return err;
    g->n_in = fmnn__shape_size(&layer->in) * (size_t)batch;
    g->n_out = fmnn__shape_size(&layer->out) * (size_t)batch;
    size_t work = layer->ops->workspace ? layer->ops->workspace(layer, batch) : 0;
    size_t saved = layer->ops->saved ? layer->ops->saved(layer, batch) : 0;
    g->x = gc_floats(g->n_in);
    g->din = gc_floats(g->n_in);
    g->y = gc_floats(g->n_out);
    g->r = gc_floats(g->n_out);
    g->dout = gc_floats(g->n_out);
    g->kernel = gc_floats(layer->n_kernel);
    g->kernel_grad = gc_floats(layer->n_kernel);
    g->bias = gc_floats(layer->n_bias);
    g->bias_grad = gc_floats(layer->n_bias);
    g->workspace = gc_floats(work);
    g->state = gc_floats(layer->n_state);
    g->saved = calloc(saved ? saved : 1, 1);
    if (!g->x || !g->din || !g->y || !g->r || !g->dout || !g->kernel || !g->kernel_grad ||
        !g->bias || !g->bias_grad || !g->workspace || !g->state || !g->saved)
        return FMNN_ENOMEM;
    layer->kernel = g->kernel;
    layer->bias = g->bias;
    layer->kernel_grad = g->kernel_grad;
    layer->bias_grad = g->bias_grad;
    layer->state = g->state;
    g->pass.saved = g->saved;
    if (layer->ops->init) { /* its own initial values: moving statistics */
        fmnn_rng rng;
        fmnn__rng_seed(&rng, 1);
        layer->ops->init(layer, &rng);
    }
    g->pass.batch = batch;
    g->pass.training = 0;
    g->pass.workspace = g->workspace;
    g->pass.seed = 0;
    if (layer->ops->fuses_activation && fmnn__activation_needs_input(layer->activation))
        return FMNN_EINVAL; /* the plan applies such an activation itself: test it through a model */
    fmnn__plan_alone(layer, &g->pass); /* its own activation, nothing fused */
    return FMNN_OK;
}

void gc_layer_free(gc_layer *g)
{
    fmnn_layer_free(g->layer);
    free(g->x);
    free(g->din);
    free(g->y);
    free(g->r);
    free(g->dout);
    free(g->kernel);
    free(g->kernel_grad);
    free(g->bias);
    free(g->bias_grad);
    free(g->workspace);
    free(g->state);
    free(g->saved);
    memset(g, 0, sizeof *g);
}

void gc_layer_fill(gc_layer *g, uint64_t seed)
{
    fmnn_rng rng;
    fmnn__rng_seed(&rng, seed);
    const fmnn_layer *layer = g->layer;
    float a = layer->fan_in > 0 ? sqrtf(3.0f / (float)layer->fan_in) : 1.0f;
    gc_fill_uniform(&rng, g->kernel, layer->n_kernel, -a, a);
    gc_fill_uniform(&rng, g->bias, layer->n_bias, -0.5f, 0.5f);
    gc_fill_uniform(&rng, g->x, g->n_in, -1.0f, 1.0f);
    gc_fill_uniform(&rng, g->r, g->n_out, -1.0f, 1.0f);
}

double gc_layer_objective(void *ctx)
{
    gc_layer *g = ctx;
    g->layer->ops->forward(g->layer, &g->pass, g->x, g->y);
    double sum = 0.0;
    for (size_t i = 0; i < g->n_out; i++)
        sum += (double)g->r[i] * (double)g->y[i];
    return sum;
}

static void gc_fill_value(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

void gc_layer_gradients(gc_layer *g)
{
    fmnn_layer *layer = g->layer;
    layer->ops->forward(layer, &g->pass, g->x, g->y);
    memcpy(g->dout, g->r, g->n_out * sizeof *g->dout);
    gc_fill_value(g->din, g->n_in, GC_SENTINEL);
    gc_fill_value(g->kernel_grad, layer->n_kernel, GC_SENTINEL);
    gc_fill_value(g->bias_grad, layer->n_bias, GC_SENTINEL);
    layer->ops->backward(layer, &g->pass, g->x, g->y, g->dout, g->din);
}

double gc_layer_min_preactivation(gc_layer *g)
{
    fmnn_pass linear = g->pass; /* the output before the activation */
    linear.activation = FMNN_LINEAR;
    g->layer->ops->forward(g->layer, &linear, g->x, g->y);
    return gc_min_abs(g->y, g->n_out);
}

static float *gc_copy(const float *x, size_t n)
{
    float *c = gc_floats(n);
    if (c && n)
        memcpy(c, x, n * sizeof *c);
    return c;
}

gc_layer_report gc_layer_check(gc_layer *g, const char *name, size_t max_checks, uint64_t seed,
                               const gc_tol *tol)
{
    gc_layer_report rep;
    memset(&rep, 0, sizeof rep);
    gc_layer_gradients(g);
    /* Copies: the objective's forward passes may reuse the layer's buffers. */
    float *din = gc_copy(g->din, g->n_in);
    float *kg = gc_copy(g->kernel_grad, g->layer->n_kernel);
    float *bg = gc_copy(g->bias_grad, g->layer->n_bias);
    char what[96];
    if (!din || !kg || !bg) {
        fprintf(stderr, "gradcheck: %s: out of memory\n", name);
        rep.din.failed = 1;
    } else {
        snprintf(what, sizeof what, "%s: din", name);
        rep.din = gc_check(what, gc_layer_objective, g, g->x, din, g->n_in, max_checks, seed, tol);
        if (g->layer->n_kernel) {
            snprintf(what, sizeof what, "%s: kernel_grad", name);
            rep.kernel = gc_check(what, gc_layer_objective, g, g->kernel, kg, g->layer->n_kernel,
                                  max_checks, seed + 1, tol);
        }
        if (g->layer->n_bias) {
            snprintf(what, sizeof what, "%s: bias_grad", name);
            rep.bias = gc_check(what, gc_layer_objective, g, g->bias, bg, g->layer->n_bias,
                                max_checks, seed + 2, tol);
        }
    }
    free(din);
    free(kg);
    free(bg);
    return rep;
}

/* ---- losses ------------------------------------------------------------------ */

static double gc_loss_run(gc_loss *l, float *grad)
{
    if (l->fused_softmax) {
        size_t n = (size_t)l->batch * (size_t)l->width;
        memcpy(l->probs, l->x, n * sizeof *l->probs);
        fmnn__activate(FMNN_SOFTMAX, l->probs, (size_t)l->batch, (size_t)l->width);
    }
    const struct fmnn_loss_ops *ops = fmnn__loss_type(l->kind);
    const fmnn_loss_rows b = {
        .rows = l->batch,
        .width = l->width,
        .fused = l->fused_softmax,
        .logits = l->fused_softmax ? l->x : NULL,
        .output = l->fused_softmax ? l->probs : l->x,
        .target = l->target,
    };
    double total = 0.0;
    for (int row = 0; row < b.rows; row++)
        total += ops->row(&b, row, grad ? grad + (size_t)row * b.width : NULL, 1.0f / (float)l->batch);
    return total;
}

double gc_loss_mean(void *ctx)
{
    gc_loss *l = ctx;
    return gc_loss_run(l, NULL) / l->batch;
}

double gc_loss_gradient(gc_loss *l, float *grad)
{
    gc_fill_value(grad, (size_t)l->batch * (size_t)l->width, GC_SENTINEL);
    return gc_loss_run(l, grad);
}

/* ---- a whole model ---------------------------------------------------------- */

int gc_model_init(gc_model *g, fmnn_model *model, int batch, const float *x, const float *y,
                  int training, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->model = model;
    g->x = x;
    g->y = y;
    g->weights = NULL;
    if (!model || !model->compiled || batch < 1)
        return FMNN_ESTATE;
    int err = fmnn__plan_buffers(model, &model->buf, batch);
    if (err)
        return err;
    g->pass.batch = batch;
    g->pass.training = training;
    g->pass.seed = seed;
    return FMNN_OK;
}

/* As train.c's step: the library's forward pass (with its fusions and
 * pipeline), the loss, the library's backward pass, regularization. */
static double gc_model_run(gc_model *g, int with_grad)
{
    fmnn_model *m = g->model;
    const fmnn_pass *pass = &g->pass;
    memcpy(m->buf.acts[0], g->x, fmnn__shape_size(&m->input) * (size_t)pass->batch * sizeof(float));
    fmnn__plan_forward(m, &m->buf, pass, m->buf.acts[0]);
    double objective = fmnn__model_loss(m, pass->batch, pass->batch, g->y, g->weights, with_grad) /
                       ((double)pass->batch * m->output_rows) + fmnn__regularization_penalty(m);
    if (!with_grad)
        return objective;
    fmnn__plan_backward(m, &m->buf, pass, m->buf.acts[0]);
    fmnn__regularization_gradient(m);
    return objective;
}

double gc_model_objective(void *ctx)
{
    return gc_model_run(ctx, 0);
}

double gc_model_gradients(gc_model *g)
{
    gc_fill_value(g->model->grads, g->model->n_params, GC_SENTINEL);
    return gc_model_run(g, 1);
}
