/*
 * minimal.c - the smallest complete libfmnn program: a Dense network learns
 * which points of the square [-1, 1]^2 lie inside a circle, then prints its
 * accuracy on 1000 points it has never seen.  Deterministic: fixed seeds and
 * one thread give the same output on every run.
 */
#include <fmnn.h>
#include <stdio.h>

/* n random points and one-hot labels: {1, 0} outside the circle, {0, 1} inside. */
static int make_points(fmnn_tensor **x, fmnn_tensor **y, int n, unsigned long long state)
{
    int err = fmnn_tensor_new(x, 2, (int[]){n, 2});
    if (err || (err = fmnn_tensor_new(y, 2, (int[]){n, 2})))
        return err;
    float *px = fmnn_tensor_data(*x), *py = fmnn_tensor_data(*y);
    for (int i = 0; i < 2 * n; i++) { /* uniform in [-1, 1), from a 64-bit LCG */
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        px[i] = (float)(state >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
    }
    for (int i = 0; i < n; i++) /* r^2 < 2/pi: half of the square is inside */
        py[2 * i + (px[2 * i] * px[2 * i] + px[2 * i + 1] * px[2 * i + 1] < 0.6366f)] = 1.0f;
    return 0;
}

int main(void)
{
    fmnn_tensor *x = NULL, *y = NULL, *test_x = NULL, *test_y = NULL;
    fmnn_model *model = NULL;
    fmnn_dense_options relu = { .activation = FMNN_RELU };
    fmnn_fit_options fit = FMNN_FIT_OPTIONS_INIT; /* batch_size 32, shuffled */
    fit.epochs = 40;
    fit.verbose = 0;
    fit.seed = 1; /* shuffling */
    float accuracy = 0.0f;

    int err = fmnn_set_num_threads(1); /* same seeds + same threads = same weights */
    if (!err) err = make_points(&x, &y, 2000, 7);
    if (!err) err = make_points(&test_x, &test_y, 1000, 8);
    if (!err) err = fmnn_model_new(&model, 1, (int[]){2});
    if (!err) err = fmnn_model_add(model, fmnn_dense(16, &relu));
    if (!err) err = fmnn_model_add(model, fmnn_dense(16, &relu));
    if (!err) err = fmnn_model_add(model, fmnn_dense(2, NULL));
    if (!err) err = fmnn_model_add(model, fmnn_activation(FMNN_SOFTMAX));
    if (!err) err = fmnn_model_compile(model, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42);
    if (!err) err = fmnn_model_fit(model, x, y, &fit, NULL);
    if (!err) err = fmnn_model_evaluate(model, test_x, test_y, 0, NULL, &accuracy);
    if (err)
        fprintf(stderr, "minimal: %s: %s\n", fmnn_strerror(err), fmnn_last_error());
    else
        printf("Accuracy on 1000 new points: %.1f%%\n", 100.0 * accuracy);
    fmnn_model_free(model);
    fmnn_tensor_free(x);
    fmnn_tensor_free(y);
    fmnn_tensor_free(test_x);
    fmnn_tensor_free(test_y);
    return err ? 1 : 0;
}
