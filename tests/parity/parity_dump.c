/*
 * parity_dump.c - the libfmnn side of `make check-parity`: builds each
 * model of tests/parity/parity.py, runs it, and writes what the PyTorch
 * side must reproduce, one file per model in DIR:
 *
 *   x, y             the batch (x channels-last, as libfmnn takes it)
 *   L<i>.kernel ...  every layer's initial kernel, bias and state
 *   predict          the output at inference, before training
 *   loss             the batch's loss at inference
 *   after.L<i>.*     every layer's arrays after one fit step: SGD with
 *                    learning rate 0.1 on the whole batch, in order
 *
 * Each line is a name, a count and the values as %.9g.  The models must
 * stay the same as parity.py's, layer for layer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>

#define N 6 /* samples */

static int fail(const char *what)
{
    fprintf(stderr, "parity_dump: %s: %s\n", what, fmnn_last_error());
    return 1;
}

static void put(FILE *f, const char *name, const float *v, size_t n)
{
    fprintf(f, "%s %zu", name, n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, " %.9g", (double)v[i]);
    fputc('\n', f);
}

static void put_layers(FILE *f, fmnn_model *m, const char *prefix)
{
    for (int i = 0; i < fmnn_model_layer_count(m); i++) {
        fmnn_layer_weights w;
        char name[64];
        if (fmnn_model_get_layer_weights(m, i, &w) != FMNN_OK)
            continue;
        snprintf(name, sizeof name, "%sL%d.kernel", prefix, i);
        put(f, name, w.kernel, w.kernel_count);
        snprintf(name, sizeof name, "%sL%d.bias", prefix, i);
        put(f, name, w.bias, w.bias_count);
        snprintf(name, sizeof name, "%sL%d.state", prefix, i);
        put(f, name, w.state, w.state_count);
    }
}

/* Deterministic values in [lo, hi). */
static void fill(float *v, size_t n, unsigned seed, float lo, float hi)
{
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = lo + (hi - lo) * (float)(s >> 8) / 16777216.0f;
    }
}

static int add_all(fmnn_model *m, fmnn_layer **layers, int n)
{
    for (int i = 0; i < n; i++)
        if (fmnn_model_add(m, layers[i]) != FMNN_OK)
            return fail("add");
    return 0;
}

/* The CNN: every new layer type and most new activations, with
 * categorical cross-entropy through a fused softmax. */
static int build_cnn(fmnn_model **m)
{
    if (fmnn_model_new(m, 3, (int[]){ 6, 6, 2 }))
        return fail("model");
    const fmnn_conv2d_options dilated = { .dilation_h = 2, .no_bias = 1, .activation = FMNN_GELU };
    const fmnn_conv2d_options same = { .padding = FMNN_PADDING_SAME, .activation = FMNN_SWISH };
    const fmnn_pool2d_options avg = { .stride_h = 1, .stride_w = 1, .padding = FMNN_PADDING_SAME };
    fmnn_layer *layers[] = {
        fmnn_zero_padding2d(1, 1, 0, 1),
        fmnn_conv2d(4, 3, 3, &dilated),
        fmnn_batch_normalization(NULL),
        fmnn_activation(FMNN_ELU),
        fmnn_average_pooling2d(2, 2, &avg),
        fmnn_conv2d(3, 2, 2, &same),
        fmnn_leaky_relu(0.3f),
        fmnn_reshape(3, (int[]){ 5, 4, 3 }),
        fmnn_global_average_pooling2d(),
        fmnn_dense(5, &(fmnn_dense_options){ .activation = FMNN_SELU }),
        fmnn_batch_normalization(NULL),
        fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SOFTMAX }),
    };
    return add_all(*m, layers, (int)(sizeof layers / sizeof *layers));
}

/* The head for the losses: GlobalMaxPooling2D, GELU's tanh form,
 * softplus, hard_sigmoid, and the given final activation. */
static int build_head(fmnn_model **m, fmnn_activation_kind last)
{
    if (fmnn_model_new(m, 3, (int[]){ 5, 5, 1 }))
        return fail("model");
    fmnn_layer *layers[] = {
        fmnn_conv2d(3, 3, 3, &(fmnn_conv2d_options){ .padding = FMNN_PADDING_SAME, .activation = FMNN_GELU_TANH }),
        fmnn_global_max_pooling2d(),
        fmnn_dense(4, &(fmnn_dense_options){ .activation = FMNN_SOFTPLUS }),
        fmnn_activation(FMNN_HARD_SIGMOID),
        fmnn_dense(3, &(fmnn_dense_options){ .activation = last }),
    };
    return add_all(*m, layers, (int)(sizeof layers / sizeof *layers));
}

typedef struct parity_model {
    const char *name;
    int head;                  /* build_head, else build_cnn */
    fmnn_activation_kind last; /* head: its final activation */
    fmnn_loss loss;
} parity_model;

static const parity_model models[] = {
    { "cnn", 0, FMNN_SOFTMAX, FMNN_LOSS_CATEGORICAL_CROSSENTROPY },
    { "bce_sigmoid", 1, FMNN_SIGMOID, FMNN_LOSS_BINARY_CROSSENTROPY },
    { "bce_logits", 1, FMNN_LINEAR, FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS },
    { "cce_logits", 1, FMNN_LINEAR, FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS },
    { "sparse_logits", 1, FMNN_LINEAR, FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS },
    { "mae", 1, FMNN_LINEAR, FMNN_LOSS_MAE },
    { "huber", 1, FMNN_LINEAR, FMNN_LOSS_HUBER },
    { "mse_leaky", 1, FMNN_LEAKY_RELU, FMNN_LOSS_MSE },
};

static int dump(const parity_model *pm, const char *dir)
{
    fmnn_model *m = NULL;
    if ((pm->head ? build_head(&m, pm->last) : build_cnn(&m)))
        return 1;
    fmnn_optimizer sgd = fmnn_sgd(0.1f, 0.0f);
    if (fmnn_model_compile(m, pm->loss, &sgd, 11))
        return fail(pm->name);
    int in_dims[FMNN_MAX_RANK], out_dims[FMNN_MAX_RANK];
    int in_rank = fmnn_model_input_shape(m, in_dims), out_rank = fmnn_model_output_shape(m, -1, out_dims);
    int xd[FMNN_MAX_RANK] = { N }, classes = out_dims[out_rank - 1];
    memcpy(xd + 1, in_dims, (size_t)in_rank * sizeof(int));
    const int sparse = pm->loss == FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
    fmnn_tensor *x, *y;
    if (fmnn_tensor_new(&x, in_rank + 1, xd) ||
        (sparse ? fmnn_tensor_new(&y, 1, (int[]){ N }) : fmnn_tensor_new(&y, 2, (int[]){ N, classes })))
        return fail("tensors");
    fill(fmnn_tensor_data(x), fmnn_tensor_size(x), 3, -1.5f, 1.5f);
    float *t = fmnn_tensor_data(y);
    for (int n = 0; n < N; n++) {
        if (sparse) {
            t[n] = (float)(n % classes);
            continue;
        }
        for (int c = 0; c < classes; c++) {
            int one_hot = pm->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY ||
                          pm->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
            float v = one_hot ? (c == n % classes) : (float)((n * 7 + c * 3) % 5) / 4.0f;
            t[n * classes + c] = pm->loss == FMNN_LOSS_MAE || pm->loss == FMNN_LOSS_HUBER || pm->loss == FMNN_LOSS_MSE
                                     ? 3.0f * v - 1.0f
                                     : v;
        }
    }

    char path[1024];
    snprintf(path, sizeof path, "%s/%s.txt", dir, pm->name);
    FILE *f = fopen(path, "w");
    if (!f)
        return fail(path);
    put(f, "x", fmnn_tensor_const_data(x), fmnn_tensor_size(x));
    put(f, "y", t, fmnn_tensor_size(y));
    put_layers(f, m, "");
    fmnn_tensor *p;
    float loss;
    if (fmnn_model_predict(m, x, N, &p) || fmnn_model_evaluate(m, x, y, N, &loss, NULL))
        return fail("predict");
    put(f, "predict", fmnn_tensor_const_data(p), fmnn_tensor_size(p));
    put(f, "loss", &loss, 1);
    fmnn_tensor_free(p);
    fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
    o.batch_size = N;
    o.shuffle = 0;
    o.verbose = 0;
    if (fmnn_model_fit(m, x, y, &o, NULL))
        return fail("fit");
    put_layers(f, m, "after.");
    fclose(f);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: parity_dump DIR\n");
        return 2;
    }
    fmnn_set_num_threads(1);
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        if (dump(&models[i], argv[1]))
            return 1;
    return 0;
}
