/*
 * check_augment.c - the preprocessing and augmentation layers: Rescaling,
 * Normalization and fmnn_model_adapt, RandomFlip, RandomTranslation,
 * RandomRotation, RandomZoom and RandomContrast.
 *
 * Forward passes against small images worked by hand (each fill mode,
 * both interpolations, transforms forced by a range of one value), and
 * against a reference sampler written here from Keras's definitions
 * (the input extended as np.pad extends it, then map_coordinates' order 0
 * or 1) for random transforms; backward passes against central
 * differences (tests/gradcheck.h) with the step's seed fixed, so both
 * evaluations draw the same transform; identity at inference; the same
 * bits for one thread and two; the distributions of the draws; saving
 * and loading; and every error a caller can make.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmnn.h"
#include "gradcheck.h"
#include "layers/augment.h"
#include "model_impl.h"
#include "testutil.h"

/* adapt.c's chunked form, for the chunking test. */
int fmnn__model_adapt(fmnn_model *m, int layer_index, const fmnn_tensor *x, int chunk);

static char tmpdir[] = "/tmp/fmnn-augment-XXXXXX";

/* ---- helpers ---------------------------------------------------------- */

static void setup_image(gc_layer *g, fmnn_layer *layer, int h, int w, int c, int batch)
{
    int err = gc_layer_init(g, layer, 3, (int[]){ h, w, c }, batch, 0);
    ck_assert_msg(err == FMNN_OK, "layer setup failed (%d): %s", err, fmnn_last_error());
}

static void forward(gc_layer *g, int training, uint64_t seed)
{
    g->pass.training = training;
    g->pass.seed = seed;
    g->layer->ops->forward(g->layer, &g->pass, g->x, g->y);
}

static void assert_close(const float *got, const double *want, size_t n, double tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol, "%s[%zu]: got %.7g, want %.7g", what, i,
                      (double)got[i], want[i]);
}

static void add(fmnn_model *m, fmnn_layer *layer)
{
    ck_assert_msg(fmnn_model_add(m, layer) == FMNN_OK, "%s", fmnn_last_error());
}

static fmnn_tensor *tensor(int rank, const int *dims, uint64_t seed, float lo, float hi)
{
    fmnn_tensor *t;
    ck_assert_int_eq(fmnn_tensor_new(&t, rank, dims), FMNN_OK);
    fmnn_rng rng;
    fmnn__rng_seed(&rng, seed);
    gc_fill_uniform(&rng, fmnn_tensor_data(t), fmnn_tensor_size(t), lo, hi);
    return t;
}

static fmnn_tensor *one_hot(int n, int classes)
{
    fmnn_tensor *y;
    ck_assert_int_eq(fmnn_tensor_new(&y, 2, (int[]){ n, classes }), FMNN_OK);
    memset(fmnn_tensor_data(y), 0, fmnn_tensor_size(y) * sizeof(float));
    for (int i = 0; i < n; i++)
        fmnn_tensor_data(y)[i * classes + (i * 7) % classes] = 1.0f;
    return y;
}

static fmnn_fit_options quiet(int batch_size, int epochs)
{
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = batch_size;
    o.epochs = epochs;
    o.verbose = 0;
    return o;
}

/* ---- the reference sampler --------------------------------------------- */

/* Index i of an axis of n pixels in the input extended by the fill mode,
 * folded back one edge at a time (np.pad's symmetric, wrap and edge). */
static int ref_fold(int i, int n, fmnn_fill_mode mode)
{
    switch (mode) {
    case FMNN_FILL_NEAREST:
        return i < 0 ? 0 : i >= n ? n - 1 : i;
    case FMNN_FILL_WRAP:
        while (i < 0)
            i += n;
        while (i >= n)
            i -= n;
        return i;
    default: /* reflect: mirror about the edge that was crossed, until inside */
        while (i < 0 || i >= n)
            i = i < 0 ? -1 - i : 2 * n - 1 - i;
        return i;
    }
}

static double ref_pixel(const float *img, int h, int w, int c, int y, int x, int k, const fmnn_image_fill *f)
{
    if (f->fill_mode == FMNN_FILL_CONSTANT && (y < 0 || y >= h || x < 0 || x >= w))
        return f->fill_value;
    return img[((size_t)ref_fold(y, h, f->fill_mode) * (size_t)w + (size_t)ref_fold(x, w, f->fill_mode)) * (size_t)c +
               (size_t)k];
}

/* Keras's affine_transform of one image by t: out(x, y) reads the
 * extended input at (a0 x + a1 y + a2, b0 x + b1 y + b2), the point
 * computed in float as Keras does; bilinear or nearest (halves rounded
 * away from zero, as jax's map_coordinates). */
static void ref_affine(const float *img, int h, int w, int c, const fmnn_affine *t, const fmnn_image_fill *f,
                       double *out)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double xs = t->a0 * (float)x + t->a1 * (float)y + t->a2;
            const double ys = t->b0 * (float)x + t->b1 * (float)y + t->b2;
            for (int k = 0; k < c; k++) {
                double v;
                if (f->interpolation == FMNN_INTERPOLATION_NEAREST) {
                    int ix = (int)(xs < 0 ? -floor(0.5 - xs) : floor(xs + 0.5));
                    int iy = (int)(ys < 0 ? -floor(0.5 - ys) : floor(ys + 0.5));
                    v = ref_pixel(img, h, w, c, iy, ix, k, f);
                } else {
                    const int x0 = (int)floor(xs), y0 = (int)floor(ys);
                    const double fx = xs - x0, fy = ys - y0;
                    v = (1 - fy) * ((1 - fx) * ref_pixel(img, h, w, c, y0, x0, k, f) +
                                    fx * ref_pixel(img, h, w, c, y0, x0 + 1, k, f)) +
                        fy * ((1 - fx) * ref_pixel(img, h, w, c, y0 + 1, x0, k, f) +
                              fx * ref_pixel(img, h, w, c, y0 + 1, x0 + 1, k, f));
                }
                out[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)k] = v;
            }
        }
}

/* The transforms Keras builds, written here from its sources, with the
 * library's draws (augment.h). */
static fmnn_affine ref_translation(const gc_layer *g, int image, float hl, float hu, float wl, float wu, int seed)
{
    const fmnn_layer *l = g->layer;
    const float dy = (hl + (hu - hl) * fmnn__image_uniform(l, &g->pass, seed, image, 0)) * (float)l->in.dims[0];
    const float dx = (wl + (wu - wl) * fmnn__image_uniform(l, &g->pass, seed, image, 1)) * (float)l->in.dims[1];
    return (fmnn_affine){ 1, 0, -dx, 0, 1, -dy };
}

static fmnn_affine ref_rotation(const gc_layer *g, int image, float lo, float hi, int seed)
{
    const fmnn_layer *l = g->layer;
    const float deg = lo * 360.0f + (hi * 360.0f - lo * 360.0f) * fmnn__image_uniform(l, &g->pass, seed, image, 0);
    const float a = deg * (float)(3.14159265358979323846 / 180.0), c = cosf(a), s = sinf(a);
    const float cx = 0.5f * (float)(l->in.dims[1] - 1), cy = 0.5f * (float)(l->in.dims[0] - 1);
    return (fmnn_affine){ c, -s, cx - cx * c - cy * -s, s, c, cy - cx * s - cy * c };
}

static fmnn_affine ref_zoom(const gc_layer *g, int image, float hl, float hu, int has_w, float wl, float wu, int seed)
{
    const fmnn_layer *l = g->layer;
    const float zy = (1 + hl) + ((1 + hu) - (1 + hl)) * fmnn__image_uniform(l, &g->pass, seed, image, 0);
    const float zx = has_w ? (1 + wl) + ((1 + wu) - (1 + wl)) * fmnn__image_uniform(l, &g->pass, seed, image, 1) : zy;
    return (fmnn_affine){ zx, 0, ((float)l->in.dims[1] - 1) / 2 * (1 - zx), 0, zy,
                          ((float)l->in.dims[0] - 1) / 2 * (1 - zy) };
}

/* ---- Rescaling and Normalization ---------------------------------------- */

START_TEST(rescaling_values)
{
    gc_layer g;
    ck_assert_int_eq(gc_layer_init(&g, fmnn_rescaling(0.5f, -1.0f), 1, (int[]){ 4 }, 1, 0), FMNN_OK);
    const float x[] = { 0, 1, 255, -2 };
    const double want[] = { -1, -0.5, 126.5, -2 };
    memcpy(g.x, x, sizeof x);
    for (int training = 0; training < 2; training++) { /* always, in fit too */
        forward(&g, training, 3);
        assert_close(g.y, want, 4, 0, "rescaling");
    }
    gc_layer_free(&g);
}
END_TEST

/* y = (x - mean) / max(sqrt(var), 1e-7): a variance of 0 divides by 1e-7. */
START_TEST(normalization_given_values)
{
    gc_layer g;
    fmnn_normalization_options o = { (const float[]){ 1, -2 }, (const float[]){ 4, 0 }, 2, 0 };
    ck_assert_int_eq(gc_layer_init(&g, fmnn_normalization(&o), 2, (int[]){ 2, 2 }, 1, 0), FMNN_OK);
    const float x[] = { 3, -2, 5, -1.5f };
    memcpy(g.x, x, sizeof x);
    forward(&g, 0, 0);
    ck_assert_float_eq(g.y[0], 1.0f);
    ck_assert_float_eq(g.y[1], 0.0f);
    ck_assert_float_eq(g.y[2], 2.0f);
    ck_assert_float_eq(g.y[3], 0.5f / 1e-7f);
    ck_assert_float_eq(g.state[0], 1.0f); /* the state holds them */
    ck_assert_float_eq(g.state[3], 0.0f);
    gc_layer_free(&g);

    /* One value for every channel; and invert. */
    o = (fmnn_normalization_options){ (const float[]){ 3 }, (const float[]){ 2.25f }, 1, 1 };
    ck_assert_int_eq(gc_layer_init(&g, fmnn_normalization(&o), 1, (int[]){ 3 }, 1, 0), FMNN_OK);
    memcpy(g.x, (const float[]){ 0, 1, -2 }, 3 * sizeof(float));
    forward(&g, 1, 0);
    assert_close(g.y, (const double[]){ 3, 4.5, 0 }, 3, 0, "inverted");
    gc_layer_free(&g);

    /* No values: 0 and 1 until adapt, the identity. */
    ck_assert_int_eq(gc_layer_init(&g, fmnn_normalization(NULL), 1, (int[]){ 2 }, 1, 0), FMNN_OK);
    memcpy(g.x, (const float[]){ 0.25f, -7 }, 2 * sizeof(float));
    forward(&g, 0, 0);
    assert_close(g.y, (const double[]){ 0.25, -7 }, 2, 0, "unadapted");
    gc_layer_free(&g);
}
END_TEST

/* The example of Keras's Normalization docstring: adapt on
 * [[0, 7, 4], [2, 9, 6], [0, 7, 4], [2, 9, 6]], then [0, 7, 4] -> -1s. */
START_TEST(normalization_keras_example)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 3 }), FMNN_OK);
    add(m, fmnn_normalization(NULL));
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_OK);
    fmnn_tensor *x;
    const float data[] = { 0, 7, 4, 2, 9, 6, 0, 7, 4, 2, 9, 6 };
    ck_assert_int_eq(fmnn_tensor_new(&x, 2, (int[]){ 4, 3 }), FMNN_OK);
    memcpy(fmnn_tensor_data(x), data, sizeof data);
    EXPECT_OK(fmnn_model_adapt(m, 0, x));
    fmnn_layer_weights w;
    EXPECT_OK(fmnn_model_get_layer_weights(m, 0, &w));
    ck_assert_uint_eq(w.state_count, 6);
    assert_close(w.state, (const double[]){ 1, 8, 5, 1, 1, 1 }, 6, 0, "mean and variance");
    fmnn_tensor *p;
    EXPECT_OK(fmnn_model_predict(m, x, 0, &p));
    assert_close(fmnn_tensor_const_data(p), (const double[]){ -1, -1, -1, 1, 1, 1 }, 6, 0, "normalized");
    fmnn_tensor_free(p);
    fmnn_tensor_free(x);
    fmnn_model_free(m);
}
END_TEST

/* After Rescaling and a (skipped) Flatten: the statistics of what reaches
 * the layer, against a two-pass computation in double here; the same bits
 * for chunks of 1, 7 and all; and the summary counts them as
 * non-trainable. */
START_TEST(adapt_matches_double_and_any_chunking)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 3, 2, 2 }), FMNN_OK);
    add(m, fmnn_rescaling(2.0f, 1000.0f)); /* a mean far from 0 */
    add(m, fmnn_reshape(2, (int[]){ 6, 2 }));
    add(m, fmnn_normalization(NULL));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(2, NULL));
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_OK);
    const int n = 53;
    fmnn_tensor *x = tensor(4, (int[]){ n, 3, 2, 2 }, 5, -3.0f, 5.0f);
    const float *v = fmnn_tensor_const_data(x);
    double mean[2] = { 0, 0 }, var[2] = { 0, 0 };
    const size_t rows = (size_t)n * 6;
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < 2; k++)
            mean[k] += (double)(v[r * 2 + k] * 2.0f + 1000.0f);
    for (int k = 0; k < 2; k++)
        mean[k] /= (double)rows;
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < 2; k++) {
            double d = (double)(v[r * 2 + k] * 2.0f + 1000.0f) - mean[k];
            var[k] += d * d;
        }
    for (int k = 0; k < 2; k++)
        var[k] /= (double)rows;

    EXPECT_OK(fmnn__model_adapt(m, 2, x, 1));
    float first[4];
    memcpy(first, m->layers[2]->state, sizeof first);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(fabs(first[k] - mean[k]) <= 1e-6 * fabs(mean[k]), "mean %g, want %g", first[k], mean[k]);
        ck_assert_msg(fabs(first[2 + k] - var[k]) <= 1e-6 * var[k], "variance %g, want %g", first[2 + k], var[k]);
    }
    const int chunks[] = { 7, 53, 0 };
    for (int i = 0; i < 3; i++) {
        memset(m->layers[2]->state, 0, sizeof first);
        EXPECT_OK(fmnn__model_adapt(m, 2, x, chunks[i]));
        ck_assert_mem_eq(m->layers[2]->state, first, sizeof first);
    }
    EXPECT_OK(fmnn_model_adapt(m, 2, x));
    ck_assert_mem_eq(m->layers[2]->state, first, sizeof first);

    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    ck_assert_ptr_nonnull(f);
    EXPECT_OK(fmnn_model_summary(m, f));
    fclose(f);
    ck_assert_msg(strstr(buf, "Non-trainable params: 4 ") != NULL, "%s", buf);
    fmnn_tensor_free(x);
    fmnn_model_free(m);
}
END_TEST

/* ---- every random layer at inference ------------------------------------- */

#define N_RANDOM 5

static fmnn_layer *random_layer(int i)
{
    switch (i) {
    case 0: return fmnn_random_flip(NULL);
    case 1: return fmnn_random_translation(-0.3f, 0.3f, -0.2f, 0.4f, NULL);
    case 2: return fmnn_random_rotation(-0.2f, 0.2f, NULL);
    case 3: return fmnn_random_zoom(-0.3f, 0.4f, NULL);
    default: return fmnn_random_contrast(0.5f, 0.5f, NULL);
    }
}

/* Identity at inference, both ways, whatever the seed; and in training
 * an actual change (each layer's ranges are wide enough for that). */
START_TEST(identity_at_inference)
{
    gc_layer g;
    setup_image(&g, random_layer(_i), 5, 6, 2, 3);
    gc_layer_fill(&g, 11);
    for (size_t k = 0; k < g.n_in; k++)
        g.x[k] = 100.0f + 50.0f * g.x[k]; /* inside RandomContrast's (0, 255) */
    forward(&g, 0, 12345);
    ck_assert_mem_eq(g.y, g.x, g.n_in * sizeof *g.x);
    memcpy(g.dout, g.r, g.n_out * sizeof *g.r);
    g.layer->ops->backward(g.layer, &g.pass, g.x, g.y, g.dout, g.din);
    ck_assert_mem_eq(g.din, g.r, g.n_in * sizeof *g.r);
    int changed = 0;
    for (uint64_t seed = 1; seed < 5; seed++) {
        forward(&g, 1, seed);
        changed |= memcmp(g.y, g.x, g.n_in * sizeof *g.x) != 0;
    }
    ck_assert_msg(changed, "%s never changed its input in training", fmnn_layer_type(g.layer));
    gc_layer_free(&g);
}
END_TEST

/* ---- RandomFlip -------------------------------------------------------- */

/* [1 2 3; 4 5 6] in each mode, flipped or not as the draw says (u <= 0.5). */
START_TEST(flip_modes)
{
    static const struct {
        fmnn_flip_mode mode;
        float want[6];
    } cases[] = {
        { FMNN_FLIP_HORIZONTAL, { 3, 2, 1, 6, 5, 4 } },
        { FMNN_FLIP_VERTICAL, { 4, 5, 6, 1, 2, 3 } },
        { FMNN_FLIP_HORIZONTAL_AND_VERTICAL, { 6, 5, 4, 3, 2, 1 } },
    };
    const float x[] = { 1, 2, 3, 4, 5, 6 };
    for (int i = 0; i < 3; i++) {
        gc_layer g;
        fmnn_random_flip_options o = { cases[i].mode, 7 };
        setup_image(&g, fmnn_random_flip(&o), 2, 3, 1, 1);
        memcpy(g.x, x, sizeof x);
        int seen[2] = { 0, 0 };
        for (uint64_t seed = 0; seed < 64; seed++) {
            g.pass.seed = seed;
            const int flip = fmnn__image_uniform(g.layer, &g.pass, 7, 0, 0) <= 0.5f;
            forward(&g, 1, seed);
            ck_assert_mem_eq(g.y, flip ? cases[i].want : x, sizeof x);
            seen[flip] = 1;
        }
        ck_assert(seen[0] && seen[1]);
        gc_layer_free(&g);
    }
}
END_TEST

/* About half the images flip; a different step flips others; the layer
 * seed changes the draws too. */
START_TEST(flip_probability)
{
    enum { N = 4000 };
    gc_layer g;
    setup_image(&g, fmnn_random_flip(&(fmnn_random_flip_options){ FMNN_FLIP_HORIZONTAL, 0 }), 1, 2, 1, N);
    for (int i = 0; i < N; i++) {
        g.x[2 * i] = 0.0f;
        g.x[2 * i + 1] = 1.0f;
    }
    forward(&g, 1, 99);
    int flipped = 0;
    for (int i = 0; i < N; i++)
        flipped += g.y[2 * i] == 1.0f;
    ck_assert_msg(abs(flipped - N / 2) < 150, "%d of %d flipped", flipped, N); /* 4.7 sigma */
    float *first = malloc(g.n_out * sizeof *first);
    ck_assert_ptr_nonnull(first);
    memcpy(first, g.y, g.n_out * sizeof *first);
    forward(&g, 1, 100);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += g.y[2 * i] == first[2 * i];
    ck_assert_msg(abs(same - N / 2) < 150, "another step repeats %d of %d", same, N);
    forward(&g, 1, 99);
    ck_assert_mem_eq(g.y, first, g.n_out * sizeof *first); /* the same step, the same flips */
    free(first);
    gc_layer_free(&g);
}
END_TEST

/* ---- RandomTranslation ------------------------------------------------- */

/* 4x5, in[y][x] = 10 y + x, shifted 2 down and 1 left (height 0.5 of 4,
 * width -0.2 of 5: exact), out(y, x) = in(y - 2, x + 1), in each fill
 * mode; nearest and bilinear agree on whole shifts. */
START_TEST(translation_fill_modes)
{
    static const float want[4][20] = {
        [FMNN_FILL_REFLECT] = { 11, 12, 13, 14, 14, 1, 2, 3, 4, 4, 1, 2, 3, 4, 4, 11, 12, 13, 14, 14 },
        [FMNN_FILL_WRAP] = { 21, 22, 23, 24, 20, 31, 32, 33, 34, 30, 1, 2, 3, 4, 0, 11, 12, 13, 14, 10 },
        [FMNN_FILL_CONSTANT] = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 2, 3, 4, -1, 11, 12, 13, 14, -1 },
        [FMNN_FILL_NEAREST] = { 1, 2, 3, 4, 4, 1, 2, 3, 4, 4, 1, 2, 3, 4, 4, 11, 12, 13, 14, 14 },
    };
    for (int mode = 0; mode < 4; mode++)
        for (int interp = 0; interp < 2; interp++) {
            gc_layer g;
            fmnn_image_fill_options o = { (fmnn_fill_mode)mode, (fmnn_interpolation)interp, -1.0f, 0 };
            setup_image(&g, fmnn_random_translation(0.5f, 0.5f, -0.2f, -0.2f, &o), 4, 5, 1, 1);
            for (int k = 0; k < 20; k++)
                g.x[k] = (float)(10 * (k / 5) + k % 5);
            forward(&g, 1, 42);
            ck_assert_mem_eq(g.y, want[mode], sizeof want[mode]);
            gc_layer_free(&g);
        }
}
END_TEST

/* Half a pixel right (width 0.1 of 5) on [0 1 2 3 4]: bilinear averages
 * neighbours, nearest rounds x - 0.5 away from zero, and the first pixel
 * reads the fill: constant 9, reflect 0, wrap 4, nearest 0. */
START_TEST(translation_half_pixel)
{
    static const float bilinear[4][5] = {
        [FMNN_FILL_REFLECT] = { 0, 0.5f, 1.5f, 2.5f, 3.5f }, [FMNN_FILL_WRAP] = { 2, 0.5f, 1.5f, 2.5f, 3.5f },
        [FMNN_FILL_CONSTANT] = { 4.5f, 0.5f, 1.5f, 2.5f, 3.5f }, [FMNN_FILL_NEAREST] = { 0, 0.5f, 1.5f, 2.5f, 3.5f },
    };
    static const float nearest[4][5] = {
        [FMNN_FILL_REFLECT] = { 0, 1, 2, 3, 4 }, [FMNN_FILL_WRAP] = { 4, 1, 2, 3, 4 },
        [FMNN_FILL_CONSTANT] = { 9, 1, 2, 3, 4 }, [FMNN_FILL_NEAREST] = { 0, 1, 2, 3, 4 },
    };
    for (int mode = 0; mode < 4; mode++)
        for (int interp = 0; interp < 2; interp++) {
            gc_layer g;
            fmnn_image_fill_options o = { (fmnn_fill_mode)mode, (fmnn_interpolation)interp, 9.0f, 0 };
            setup_image(&g, fmnn_random_translation(0, 0, 0.1f, 0.1f, &o), 1, 5, 1, 1);
            for (int k = 0; k < 5; k++)
                g.x[k] = (float)k;
            forward(&g, 1, 1);
            ck_assert_mem_eq(g.y, interp ? nearest[mode] : bilinear[mode], 5 * sizeof(float));
            gc_layer_free(&g);
        }
}
END_TEST

/* An impulse at x = 10 of a 1x21 row moves by round(dx), dx from
 * U(-0.2, 0.3) * 21 = U(-4.2, 6.3): every shift in -4..6, both ends
 * reached, the mean near 1.05. */
START_TEST(translation_range)
{
    enum { N = 2000, W = 21 };
    gc_layer g;
    fmnn_image_fill_options o = { FMNN_FILL_CONSTANT, FMNN_INTERPOLATION_NEAREST, 0.0f, 3 };
    setup_image(&g, fmnn_random_translation(0, 0, -0.2f, 0.3f, &o), 1, W, 1, N);
    memset(g.x, 0, g.n_in * sizeof *g.x);
    for (int i = 0; i < N; i++)
        g.x[i * W + 10] = 1.0f;
    forward(&g, 1, 5);
    int lo = W, hi = -1;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        int at = -1;
        for (int x = 0; x < W; x++)
            if (g.y[i * W + x] == 1.0f)
                at = x;
        ck_assert_msg(at >= 0, "image %d lost its impulse", i);
        lo = at < lo ? at : lo;
        hi = at > hi ? at : hi;
        sum += at - 10;
    }
    ck_assert_int_eq(lo, 6);
    ck_assert_int_eq(hi, 16);
    ck_assert_msg(fabs(sum / N - 1.05) < 0.15, "mean shift %g", sum / N);
    gc_layer_free(&g);
}
END_TEST

/* ---- RandomRotation ---------------------------------------------------- */

/* A quarter turn (factor 0.25) is counter-clockwise, a half turn both
 * flips; cos(pi / 2) is not quite 0 in float, hence the tolerance. */
START_TEST(rotation_turns)
{
    const double quarter[] = { 3, 6, 9, 2, 5, 8, 1, 4, 7 }, half[] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
    for (int interp = 0; interp < 2; interp++)
        for (int turn = 0; turn < 2; turn++) {
            gc_layer g;
            const float f = turn ? 0.5f : 0.25f;
            fmnn_image_fill_options o = { FMNN_FILL_CONSTANT, (fmnn_interpolation)interp, 0.0f, 0 };
            setup_image(&g, fmnn_random_rotation(f, f, &o), 3, 3, 1, 1);
            for (int k = 0; k < 9; k++)
                g.x[k] = (float)(k + 1);
            forward(&g, 1, 8);
            assert_close(g.y, turn ? half : quarter, 9, 1e-5, "rotation");
            gc_layer_free(&g);
        }
}
END_TEST

/* ---- RandomZoom ------------------------------------------------------- */

/* A 5x1 column [0 1 2 3 4], the height zoomed by 2 (factor 1: out, reads
 * rows 2y - 2) and by 0.5 (factor -0.5: in, reads 0.5 y + 1), the width
 * kept (width factor 0). */
START_TEST(zoom_height)
{
    static const float out2[4][5] = {
        [FMNN_FILL_REFLECT] = { 1, 0, 2, 4, 3 }, [FMNN_FILL_WRAP] = { 3, 0, 2, 4, 1 },
        [FMNN_FILL_CONSTANT] = { -1, 0, 2, 4, -1 }, [FMNN_FILL_NEAREST] = { 0, 0, 2, 4, 4 },
    };
    for (int mode = 0; mode < 4; mode++)
        for (int interp = 0; interp < 2; interp++)
            for (int in = 0; in < 2; in++) {
                gc_layer g;
                fmnn_random_zoom_options o = { 1, 0.0f, 0.0f, { (fmnn_fill_mode)mode, (fmnn_interpolation)interp, -1.0f, 0 } };
                const float f = in ? -0.5f : 1.0f;
                setup_image(&g, fmnn_random_zoom(f, f, &o), 5, 1, 1, 1);
                for (int k = 0; k < 5; k++)
                    g.x[k] = (float)k;
                forward(&g, 1, 2);
                static const float in_bilinear[5] = { 1, 1.5f, 2, 2.5f, 3 }, in_nearest[5] = { 1, 2, 2, 3, 3 };
                const float *want = !in ? out2[mode] : interp ? in_nearest : in_bilinear;
                ck_assert_mem_eq(g.y, want, 5 * sizeof(float));
                gc_layer_free(&g);
            }
}
END_TEST

/* ---- every affine layer against the reference -------------------------- */

#define N_AFFINE_CASES (3 * 4 * 2)

/* _i: layer (translation, rotation, zoom without and with a width
 * factor alternating), fill mode, interpolation; random transforms of a
 * 6x7x2 image, 3 images, compared with ref_affine. */
START_TEST(affine_matches_reference)
{
    const int kind = _i / 8, mode = (_i / 2) % 4, interp = _i % 2, seed = 17 + _i;
    enum { H = 6, W = 7, C = 2, N = 3 };
    const fmnn_image_fill fill = { (fmnn_fill_mode)mode, (fmnn_interpolation)interp, 0.75f, seed };
    const fmnn_image_fill_options o = { fill.fill_mode, fill.interpolation, fill.fill_value, seed };
    const int has_w = mode % 2;
    fmnn_layer *layer = kind == 0   ? fmnn_random_translation(-0.4f, 0.3f, -0.5f, 0.6f, &o)
                        : kind == 1 ? fmnn_random_rotation(-0.5f, 0.5f, &o)
                                    : fmnn_random_zoom(-0.6f, 0.8f, &(fmnn_random_zoom_options){ has_w, -0.3f, 0.9f, o });
    gc_layer g;
    setup_image(&g, layer, H, W, C, N);
    gc_layer_fill(&g, 31 + (uint64_t)_i);
    forward(&g, 1, 77);
    double want[H * W * C];
    for (int b = 0; b < N; b++) {
        const fmnn_affine t = kind == 0   ? ref_translation(&g, b, -0.4f, 0.3f, -0.5f, 0.6f, seed)
                              : kind == 1 ? ref_rotation(&g, b, -0.5f, 0.5f, seed)
                                          : ref_zoom(&g, b, -0.6f, 0.8f, has_w, -0.3f, 0.9f, seed);
        ref_affine(g.x + b * H * W * C, H, W, C, &t, &fill, want);
        assert_close(g.y + b * H * W * C, want, H * W * C, 1e-5, fmnn_layer_type(layer));
    }
    gc_layer_free(&g);
}
END_TEST

/* ---- RandomContrast -------------------------------------------------- */

START_TEST(contrast_values)
{
    gc_layer g;
    /* f = 1 (factor 0, 0): values outside (0, 255) are clipped. */
    setup_image(&g, fmnn_random_contrast(0, 0, NULL), 2, 2, 1, 1);
    memcpy(g.x, (const float[]){ -4, 0, 4, 260 }, 4 * sizeof(float));
    forward(&g, 1, 3);
    assert_close(g.y, (const double[]){ 0, 0, 4, 255 }, 4, 0, "clipped");
    forward(&g, 0, 3); /* not at inference */
    assert_close(g.y, (const double[]){ -4, 0, 4, 260 }, 4, 0, "inference");
    gc_layer_free(&g);

    /* Drawn factors: (x - mean) * f + mean per channel, then clipped to
     * (-1, 1); f in [1 - 0.3, 1 + 0.8]. */
    fmnn_random_contrast_options o = { -1.0f, 1.0f, 5 };
    enum { H = 3, W = 4, C = 2, N = 40 };
    setup_image(&g, fmnn_random_contrast(0.3f, 0.8f, &o), H, W, C, N);
    gc_layer_fill(&g, 4);
    forward(&g, 1, 6);
    double f_lo = 9, f_hi = 0;
    for (int b = 0; b < N; b++) {
        const float f = 0.7f + (1.8f - 0.7f) * fmnn__image_uniform(g.layer, &g.pass, 5, b, 0);
        f_lo = f < f_lo ? f : f_lo;
        f_hi = f > f_hi ? f : f_hi;
        for (int k = 0; k < C; k++) {
            double mean = 0;
            for (int p = 0; p < H * W; p++)
                mean += g.x[(b * H * W + p) * C + k];
            mean /= H * W;
            for (int p = 0; p < H * W; p++) {
                const size_t at = (size_t)(b * H * W + p) * C + (size_t)k;
                double v = (g.x[at] - mean) * f + mean;
                v = v < -1 ? -1 : v > 1 ? 1 : v;
                ck_assert_msg(fabs(g.y[at] - v) < 1e-5, "image %d: %g, want %g", b, (double)g.y[at], v);
            }
        }
    }
    ck_assert_msg(f_lo >= 0.7f && f_hi <= 1.8f && f_lo < 0.8 && f_hi > 1.7, "f in [%g, %g]", f_lo, f_hi);
    gc_layer_free(&g);
}
END_TEST

/* ---- gradients ----------------------------------------------------------- */

#define N_GRAD_CASES 11

static fmnn_layer *grad_layer(int i)
{
    fmnn_image_fill_options constant = { FMNN_FILL_CONSTANT, FMNN_INTERPOLATION_BILINEAR, 0.5f, 0 };
    fmnn_image_fill_options wrap_nearest = { FMNN_FILL_WRAP, FMNN_INTERPOLATION_NEAREST, 0.0f, 4 };
    switch (i) {
    case 0: return fmnn_rescaling(-1.5f, 2.0f);
    case 1: return fmnn_normalization(&(fmnn_normalization_options){ (const float[]){ 0.5f, -1 }, (const float[]){ 2, 0.25f }, 2, 0 });
    case 2: return fmnn_normalization(&(fmnn_normalization_options){ (const float[]){ 0.5f }, (const float[]){ 3 }, 1, 1 });
    case 3: return fmnn_random_flip(NULL);
    case 4: return fmnn_random_translation(-0.4f, 0.4f, -0.3f, 0.3f, NULL);
    case 5: return fmnn_random_translation(-0.4f, 0.4f, -0.3f, 0.3f, &wrap_nearest);
    case 6: return fmnn_random_rotation(-0.3f, 0.3f, &constant);
    case 7: return fmnn_random_rotation(-0.3f, 0.3f, NULL);
    case 8: return fmnn_random_zoom(-0.5f, 0.5f, &(fmnn_random_zoom_options){ 1, -0.4f, 0.6f, { FMNN_FILL_NEAREST, 0, 0, 0 } });
    case 9: return fmnn_random_contrast(0.5f, 0.5f, &(fmnn_random_contrast_options){ -10.0f, 10.0f, 0 });
    default: return fmnn_random_contrast(0.5f, 0.9f, &(fmnn_random_contrast_options){ -0.6f, 0.6f, 0 });
    }
}

/* The smallest distance of a RandomContrast's unclipped values from its
 * clipping bounds: perturbing an input by h must not cross one. */
static double contrast_margin(gc_layer *g, float lo, float hi)
{
    fmnn_layer *l = g->layer;
    const int h = l->in.dims[0], w = l->in.dims[1], c = l->in.dims[2];
    double margin = INFINITY;
    for (int b = 0; b < g->pass.batch; b++) {
        const float f = fmnn__image_between(1.0f - 0.5f, 1.0f + 0.9f, fmnn__image_uniform(l, &g->pass, 0, b, 0));
        for (int k = 0; k < c; k++) {
            double mean = 0;
            for (int p = 0; p < h * w; p++)
                mean += g->x[(b * h * w + p) * c + k];
            mean /= h * w;
            for (int p = 0; p < h * w; p++) {
                double v = (g->x[(b * h * w + p) * c + k] - mean) * f + mean;
                double d = fmin(fabs(v - lo), fabs(v - hi));
                margin = d < margin ? d : margin;
            }
        }
    }
    return margin;
}

/* _i: grad_layer.  din against central differences in training, the
 * transforms fixed by the step's seed. */
START_TEST(layer_gradients)
{
    gc_layer g;
    fmnn_layer *layer = grad_layer(_i);
    const int image = layer->ops != fmnn__layer_type(14) && layer->ops != fmnn__layer_type(15);
    int err = image ? gc_layer_init(&g, layer, 3, (int[]){ 5, 6, 2 }, 2, 3)
                    : gc_layer_init(&g, layer, 2, (int[]){ 3, 2 }, 2, 3);
    ck_assert_msg(err == FMNN_OK, "%s", fmnn_last_error());
    g.pass.training = 1;
    g.pass.seed = 1234;
    if (layer->ops == fmnn__layer_type(16)) /* a step that flips one image and not the other */
        while (!(fmnn__image_uniform(layer, &g.pass, 0, 0, 0) <= 0.5f && fmnn__image_uniform(layer, &g.pass, 0, 1, 0) > 0.5f))
            g.pass.seed++;
    uint64_t seed = 50 + (uint64_t)_i;
    gc_layer_fill(&g, seed);
    if (_i == N_GRAD_CASES - 1) { /* some values clipped, none within 2h of a bound */
        int tries = 0;
        while (contrast_margin(&g, -0.6f, 0.6f) < 0.05) {
            ck_assert(++tries < 2000);
            gc_layer_fill(&g, ++seed);
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%s (case %d)", fmnn_layer_type(layer), _i);
    gc_layer_report r = gc_layer_check(&g, name, 0, seed, &GC_TOL_LAYER);
    ck_assert_msg(r.din.checked > 0 && r.din.failed == 0, "%s: %zu of %zu entries disagree (worst %.3g x)", name,
                  r.din.failed, r.din.checked, r.din.max_ratio);
    ck_assert_msg(r.din.max_grad > 1e-3, "%s: the gradient is trivially zero", name);
    gc_layer_free(&g);
}
END_TEST

/* Through a whole model, the layers after a Conv2D (so din is used), in
 * training with the step's seed fixed: the library's own passes. */
START_TEST(model_gradients)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 5, 5, 1 }), FMNN_OK);
    add(m, fmnn_conv2d(2, 3, 3, &(fmnn_conv2d_options){ .padding = FMNN_PADDING_SAME }));
    add(m, fmnn_rescaling(0.5f, 0.1f));
    add(m, fmnn_normalization(&(fmnn_normalization_options){ (const float[]){ 0.1f, -0.2f }, (const float[]){ 0.5f, 2 }, 2, 0 }));
    add(m, fmnn_random_flip(NULL));
    add(m, fmnn_random_translation(-0.3f, 0.3f, -0.3f, 0.3f, NULL));
    add(m, fmnn_random_rotation(-0.2f, 0.2f, NULL));
    add(m, fmnn_random_zoom(-0.3f, 0.3f, NULL));
    add(m, fmnn_random_contrast(0.3f, 0.3f, &(fmnn_random_contrast_options){ -100, 100, 0 }));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 3), FMNN_OK);
    fmnn_tensor *x = tensor(4, (int[]){ 2, 5, 5, 1 }, 8, -1, 1), *y = one_hot(2, 3);
    gc_model gm;
    ck_assert_int_eq(gc_model_init(&gm, m, 2, fmnn_tensor_const_data(x), fmnn_tensor_const_data(y), 1, 99), FMNN_OK);
    while (!(fmnn__image_uniform(m->layers[3], &gm.pass, 0, 0, 0) <= 0.5f)) /* the flip flips image 0 */
        gm.pass.seed++;
    gc_model_gradients(&gm);
    float *grads = malloc(m->n_params * sizeof *grads);
    ck_assert_ptr_nonnull(grads);
    memcpy(grads, m->grads, m->n_params * sizeof *grads);
    const gc_tol tol = { 1e-3, 1e-2, 2e-4 };
    gc_stats s = gc_check("model", gc_model_objective, &gm, m->params, grads, m->n_params, 0, 1, &tol);
    ck_assert_msg(s.failed == 0, "%zu of %zu parameters disagree (worst %.3g x)", s.failed, s.checked, s.max_ratio);
    ck_assert(s.max_grad > 1e-3);
    free(grads);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
}
END_TEST

/* ---- models: threads, steps, files ------------------------------------ */

/* Every new layer, 16x16x3 (batches of 48 images run the parallel loops). */
static fmnn_model *augment_model(uint64_t seed)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 3, (int[]){ 16, 16, 3 }), FMNN_OK);
    add(m, fmnn_rescaling(1.0f / 255.0f, 0.0f));
    add(m, fmnn_normalization(NULL));
    add(m, fmnn_random_flip(&(fmnn_random_flip_options){ FMNN_FLIP_HORIZONTAL, 0 }));
    add(m, fmnn_random_translation(-0.1f, 0.1f, -0.2f, 0.1f, &(fmnn_image_fill_options){ FMNN_FILL_WRAP, 0, 0, 3 }));
    add(m, fmnn_random_rotation(-0.1f, 0.1f, &(fmnn_image_fill_options){ FMNN_FILL_CONSTANT, FMNN_INTERPOLATION_NEAREST, 0.5f, 0 }));
    add(m, fmnn_random_zoom(-0.2f, 0.2f, &(fmnn_random_zoom_options){ 1, -0.1f, 0.3f, { FMNN_FILL_NEAREST, 0, 0, 0 } }));
    add(m, fmnn_random_contrast(0.2f, 0.2f, &(fmnn_random_contrast_options){ -3.0f, 3.0f, 9 }));
    add(m, fmnn_conv2d(4, 3, 3, NULL));
    add(m, fmnn_activation(FMNN_RELU));
    add(m, fmnn_flatten());
    add(m, fmnn_dense(3, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }));
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, seed), FMNN_OK);
    return m;
}

START_TEST(same_bits_any_thread_count)
{
    fmnn_tensor *x = tensor(4, (int[]){ 96, 16, 16, 3 }, 21, 0, 255), *y = one_hot(96, 3);
    fmnn_fit_options o = quiet(48, 2);
    float *weights[2];
    size_t n = 0;
    for (int threads = 1; threads <= 2; threads++) {
        fmnn_set_num_threads(threads);
        fmnn_model *m = augment_model(4);
        EXPECT_OK(fmnn_model_adapt(m, 1, x));
        EXPECT_OK(fmnn_model_fit(m, x, y, &o, NULL));
        const float *w = fmnn_model_weights(m, &n);
        weights[threads - 1] = malloc(n * sizeof(float));
        ck_assert_ptr_nonnull(weights[threads - 1]);
        memcpy(weights[threads - 1], w, n * sizeof(float));
        fmnn_model_free(m);
    }
    fmnn_set_num_threads(1);
    ck_assert_mem_eq(weights[0], weights[1], n * sizeof(float));
    free(weights[0]);
    free(weights[1]);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
}
END_TEST

/* Every random layer draws anew each step (and with each seed option),
 * and again the same for the same step. */
START_TEST(steps_draw_anew)
{
    for (int i = 0; i < N_RANDOM; i++) {
        gc_layer g;
        setup_image(&g, random_layer(i), 6, 6, 1, 4);
        gc_layer_fill(&g, 3);
        for (size_t k = 0; k < g.n_in; k++)
            g.x[k] = 128.0f + 100.0f * g.x[k];
        float first[144];
        forward(&g, 1, 1000);
        memcpy(first, g.y, sizeof first);
        forward(&g, 1, 1000);
        ck_assert_mem_eq(g.y, first, sizeof first);
        int differs = 0;
        for (uint64_t step = 1001; step < 1004; step++) {
            forward(&g, 1, step);
            differs |= memcmp(g.y, first, sizeof first) != 0;
        }
        ck_assert_msg(differs, "%s draws the same at every step", fmnn_layer_type(g.layer));
        gc_layer_free(&g);
    }
    /* A seed option of its own changes the draws. */
    gc_layer a, b;
    setup_image(&a, fmnn_random_rotation(-0.5f, 0.5f, &(fmnn_image_fill_options){ .seed = 1 }), 6, 6, 1, 4);
    setup_image(&b, fmnn_random_rotation(-0.5f, 0.5f, &(fmnn_image_fill_options){ .seed = 2 }), 6, 6, 1, 4);
    gc_layer_fill(&a, 3);
    memcpy(b.x, a.x, a.n_in * sizeof *a.x);
    forward(&a, 1, 5);
    forward(&b, 1, 5);
    ck_assert(memcmp(a.y, b.y, a.n_out * sizeof *a.y) != 0);
    gc_layer_free(&a);
    gc_layer_free(&b);
}
END_TEST

/* Saved and loaded: every option, the adapted statistics, the
 * predictions; the file saves back to the same bytes, and both models
 * train on identically (the same draws). */
START_TEST(save_round_trip)
{
    fmnn_model *a = augment_model(6);
    fmnn_tensor *x = tensor(4, (int[]){ 20, 16, 16, 3 }, 2, 0, 255), *y = one_hot(20, 3);
    EXPECT_OK(fmnn_model_adapt(a, 1, x));
    fmnn_fit_options o = quiet(8, 1);
    EXPECT_OK(fmnn_model_fit(a, x, y, &o, NULL));
    char path[512], again[512];
    snprintf(path, sizeof path, "%s/augment.fmnn", tmpdir);
    snprintf(again, sizeof again, "%s/augment-again.fmnn", tmpdir);
    EXPECT_OK(fmnn_model_save(a, path, FMNN_SAVE_OPTIMIZER));
    fmnn_model *b = NULL;
    EXPECT_OK(fmnn_model_load(&b, path));
    ck_assert_int_eq(fmnn_model_layer_count(a), fmnn_model_layer_count(b));
    for (int i = 0; i < fmnn_model_layer_count(a); i++) {
        const fmnn_layer *la = fmnn_model_layer(a, i), *lb = fmnn_model_layer(b, i);
        ck_assert_str_eq(fmnn_layer_type(la), fmnn_layer_type(lb));
        const fmnn_fields *config = &la->ops->config;
        for (int k = 0; k < config->count; k++)
            ck_assert_mem_eq((const char *)la + config->fields[k].offset, (const char *)lb + config->fields[k].offset, 4);
    }
    ck_assert_uint_eq(a->n_state, 6);
    ck_assert(a->state[0] != 0.0f && a->state[3] != 1.0f); /* adapted */
    ck_assert_mem_eq(a->state, b->state, a->n_state * sizeof *a->state);
    fmnn_tensor *pa, *pb;
    EXPECT_OK(fmnn_model_predict(a, x, 0, &pa));
    EXPECT_OK(fmnn_model_predict(b, x, 0, &pb));
    ck_assert_mem_eq(fmnn_tensor_const_data(pa), fmnn_tensor_const_data(pb), fmnn_tensor_size(pa) * sizeof(float));
    fmnn_tensor_free(pa);
    fmnn_tensor_free(pb);
    EXPECT_OK(fmnn_model_save(b, again, FMNN_SAVE_OPTIMIZER));
    FILE *fa = fopen(path, "rb"), *fb = fopen(again, "rb");
    ck_assert(fa && fb);
    static unsigned char ba[1 << 16], bb[1 << 16];
    size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
    fclose(fa);
    fclose(fb);
    ck_assert(na > 0 && na < sizeof ba);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(ba, bb, na);
    EXPECT_OK(fmnn_model_fit(a, x, y, &o, NULL));
    EXPECT_OK(fmnn_model_fit(b, x, y, &o, NULL));
    size_t n;
    const float *wa = fmnn_model_weights(a, &n), *wb = fmnn_model_weights(b, NULL);
    ck_assert_mem_eq(wa, wb, n * sizeof *wa);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(a);
    fmnn_model_free(b);
}
END_TEST

/* ---- errors ---------------------------------------------------------- */

/* A model of input `dims` with one layer: compile's status and message. */
static void expect_compile_error(int rank, const int *dims, fmnn_layer *layer, int status, const char *needle)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, rank, dims), FMNN_OK);
    add(m, layer);
    EXPECT_ERROR(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), status, needle);
    fmnn_model_free(m);
}

START_TEST(bad_options)
{
    const int image[] = { 4, 4, 1 };
    const fmnn_image_fill_options bad_fill = { (fmnn_fill_mode)7, 0, 0, 0 };
    const fmnn_image_fill_options bad_interp = { 0, (fmnn_interpolation)2, 0, 0 };
    const fmnn_image_fill_options bad_value = { FMNN_FILL_CONSTANT, 0, INFINITY, 0 };
    expect_compile_error(3, image, fmnn_rescaling(NAN, 0), FMNN_EINVAL, "rescaling (Rescaling): scale must be finite");
    expect_compile_error(3, image, fmnn_rescaling(1, INFINITY), FMNN_EINVAL, "offset must be finite");
    expect_compile_error(3, image, fmnn_random_flip(&(fmnn_random_flip_options){ (fmnn_flip_mode)3, 0 }), FMNN_EINVAL,
                         "random_flip (RandomFlip): unknown mode 3");
    expect_compile_error(3, image, fmnn_random_translation(-1.5f, 0, 0, 0, NULL), FMNN_EINVAL,
                         "random_translation (RandomTranslation): height_factor[0] must be in [-1, 1], got -1.5");
    expect_compile_error(3, image, fmnn_random_translation(0, 0, 0.5f, 0.25f, NULL), FMNN_EINVAL,
                         "width_factor[0] (0.5) must not be above width_factor[1] (0.25)");
    expect_compile_error(3, image, fmnn_random_translation(0, 0, 0, 0, &bad_fill), FMNN_EINVAL, "unknown fill_mode 7");
    expect_compile_error(3, image, fmnn_random_rotation(0, 0, &bad_interp), FMNN_EINVAL,
                         "random_rotation (RandomRotation): unknown interpolation 2");
    expect_compile_error(3, image, fmnn_random_rotation(0, 0, &bad_value), FMNN_EINVAL, "fill_value must be finite");
    expect_compile_error(3, image, fmnn_random_rotation(0, 1.25f, NULL), FMNN_EINVAL, "factor[1] must be in [-1, 1], got 1.25");
    expect_compile_error(3, image, fmnn_random_zoom(-1, 0, NULL), FMNN_EINVAL,
                         "random_zoom (RandomZoom): height_factor[0] must be in (-1, 1], got -1");
    expect_compile_error(3, image, fmnn_random_zoom(0, 0, &(fmnn_random_zoom_options){ 1, 0.5f, -0.5f, { 0, 0, 0, 0 } }),
                         FMNN_EINVAL, "width_factor[0] (0.5) must not be above width_factor[1] (-0.5)");
    expect_compile_error(3, image, fmnn_random_zoom(0, 0, &(fmnn_random_zoom_options){ 2, 0, 0, { 0, 0, 0, 0 } }),
                         FMNN_EINVAL, "unknown has_width_factor 2");
    expect_compile_error(3, image, fmnn_random_contrast(0, 1.5f, NULL), FMNN_EINVAL,
                         "random_contrast (RandomContrast): factor[1] must be in [0, 1], got 1.5");
    expect_compile_error(3, image, fmnn_random_contrast(0.1f, 0.1f, &(fmnn_random_contrast_options){ 0, 0, 0 }),
                         FMNN_EINVAL, "value_range[0] (0) must be below value_range[1] (0)");
    /* Normalization's given values. */
    const float two[] = { 1, 2 }, negative[] = { 1, -1 };
    expect_compile_error(3, image, fmnn_normalization(&(fmnn_normalization_options){ two, NULL, 2, 0 }), FMNN_EINVAL,
                         "normalization (Normalization): mean and variance must be given together");
    expect_compile_error(3, image, fmnn_normalization(&(fmnn_normalization_options){ two, two, 2, 0 }), FMNN_ESHAPE,
                         "mean and variance have 2 values, but the input has 1 channels (give 1 or 1)");
    expect_compile_error(3, image, fmnn_normalization(&(fmnn_normalization_options){ two, two, 0, 0 }), FMNN_ESHAPE,
                         "have 0 values");
    expect_compile_error(1, (int[]){ 2 }, fmnn_normalization(&(fmnn_normalization_options){ two, negative, 2, 0 }),
                         FMNN_EINVAL, "variance[1] is negative (-1)");
    expect_compile_error(1, (int[]){ 1 }, fmnn_normalization(&(fmnn_normalization_options){ (const float[]){ NAN }, two, 1, 0 }),
                         FMNN_ENUMERIC, "mean[0] or variance[0] is NaN or Inf");
    expect_compile_error(1, (int[]){ 2 }, fmnn_normalization(&(fmnn_normalization_options){ .invert = 2 }), FMNN_EINVAL,
                         "unknown invert 2");
}
END_TEST

START_TEST(wrong_rank)
{
    for (int i = 0; i < N_RANDOM; i++) {
        fmnn_layer *layer = random_layer(i);
        char needle[128];
        snprintf(needle, sizeof needle, "%s): expects (height, width, channels) input, got rank 2", fmnn_layer_type(layer));
        expect_compile_error(2, (int[]){ 4, 4 }, layer, FMNN_ESHAPE, needle);
    }
    /* Rescaling and Normalization take any rank. */
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 5 }), FMNN_OK);
    add(m, fmnn_rescaling(2, 0));
    add(m, fmnn_normalization(NULL));
    EXPECT_OK(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1));
    fmnn_model_free(m);
}
END_TEST

START_TEST(adapt_misuse)
{
    fmnn_model *m;
    ck_assert_int_eq(fmnn_model_new(&m, 1, (int[]){ 3 }), FMNN_OK);
    add(m, fmnn_rescaling(1e30f, 0));
    add(m, fmnn_normalization(NULL));
    add(m, fmnn_dense(2, NULL));
    fmnn_tensor *x = tensor(2, (int[]){ 4, 3 }, 1, -1, 1), *wrong = tensor(2, (int[]){ 4, 2 }, 1, -1, 1);
    EXPECT_ERROR(fmnn_model_adapt(NULL, 1, x), FMNN_EINVAL, "fmnn_model_adapt: model is NULL");
    EXPECT_ERROR(fmnn_model_adapt(m, 1, x), FMNN_ESTATE, "fmnn_model_adapt: call fmnn_model_compile first");
    ck_assert_int_eq(fmnn_model_compile(m, FMNN_LOSS_MSE, NULL, 1), FMNN_OK);
    EXPECT_ERROR(fmnn_model_adapt(m, 3, x), FMNN_EINVAL, "fmnn_model_adapt: layer_index 3 is not in 0..2");
    EXPECT_ERROR(fmnn_model_adapt(m, -1, x), FMNN_EINVAL, "layer_index -1");
    EXPECT_ERROR(fmnn_model_adapt(m, 2, x), FMNN_EINVAL, "layer 2, dense (Dense), is not a Normalization layer");
    EXPECT_ERROR(fmnn_model_adapt(m, 1, NULL), FMNN_EINVAL, "fmnn_model_adapt: x is NULL");
    EXPECT_ERROR(fmnn_model_adapt(m, 1, wrong), FMNN_ESHAPE, "fmnn_model_adapt: x has shape (4, 2) but the model takes (None, 3)");
    fmnn_tensor_data(x)[7] = NAN;
    EXPECT_ERROR(fmnn_model_adapt(m, 1, x), FMNN_ENUMERIC, "fmnn_model_adapt: x holds NaN or Inf (sample 2)");
    /* Finite x that the layers before make Inf: refused, nothing changed. */
    fmnn_tensor_data(x)[7] = 1e10f;
    EXPECT_ERROR(fmnn_model_adapt(m, 1, x), FMNN_ENUMERIC,
                 "fmnn_model_adapt: what reaches normalization (Normalization) from sample 2 is NaN or Inf");
    const float *state = m->layers[1]->state;
    ck_assert(state[0] == 0 && state[1] == 0 && state[2] == 0 && state[3] == 1 && state[4] == 1 && state[5] == 1);
    /* A negative variance set from outside is refused too. */
    fmnn_layer_weights w = { NULL, 0, NULL, 0, (float[]){ 0, 0, 0, 1, -1, 1 }, 6 };
    EXPECT_ERROR(fmnn_model_set_layer_weights(m, 1, &w), FMNN_EINVAL,
                 "normalization (Normalization): the variance of channel 1 is negative (-1)");
    fmnn_tensor_free(x);
    fmnn_tensor_free(wrong);
    fmnn_model_free(m);
}
END_TEST

static Suite *augment_suite(void)
{
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("preprocessing and augmentation");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, rescaling_values);
    tcase_add_test(tc, normalization_given_values);
    tcase_add_test(tc, normalization_keras_example);
    tcase_add_test(tc, adapt_matches_double_and_any_chunking);
    tcase_add_loop_test(tc, identity_at_inference, 0, N_RANDOM);
    tcase_add_test(tc, flip_modes);
    tcase_add_test(tc, flip_probability);
    tcase_add_test(tc, translation_fill_modes);
    tcase_add_test(tc, translation_half_pixel);
    tcase_add_test(tc, translation_range);
    tcase_add_test(tc, rotation_turns);
    tcase_add_test(tc, zoom_height);
    tcase_add_loop_test(tc, affine_matches_reference, 0, N_AFFINE_CASES);
    tcase_add_test(tc, contrast_values);
    tcase_add_loop_test(tc, layer_gradients, 0, N_GRAD_CASES);
    tcase_add_test(tc, model_gradients);
    tcase_add_test(tc, same_bits_any_thread_count);
    tcase_add_test(tc, steps_draw_anew);
    tcase_add_test(tc, save_round_trip);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, wrong_rank);
    tcase_add_test(tc, adapt_misuse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("check_augment: mkdtemp");
        return 1;
    }
    fmnn_set_num_threads(1);
    SRunner *sr = srunner_create(augment_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char path[600];
    snprintf(path, sizeof path, "%s/augment.fmnn", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/augment-again.fmnn", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
