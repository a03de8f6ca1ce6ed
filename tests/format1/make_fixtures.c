/*
 * make_fixtures.c - wrote the format-1 model files of this folder, with
 * libfmnn 0.1.0 at commit d588794's library code, and what they must give.
 *
 * It is kept to say how the fixtures were made, not to remake them: built
 * against a later library it would write that library's format, and the
 * point of the fixtures is that they stay the files format 1 wrote.  It is
 * not part of the build.  It was built and run from the top folder as
 *
 *   cc -std=c11 -O2 -Iinclude -Iexamples -o build/make_fixtures \
 *      tests/format1/make_fixtures.c examples/support/models.c build/libfmnn.a \
 *      $(pkg-config --libs openblas zlib) -fopenmp -lm
 *   build/make_fixtures tests/format1
 *
 * For the Base and the L2+Dropout models of the study, each trained for one
 * epoch on the first 2,000 Fashion-MNIST training images (batch 64, seed
 * 42, 2 threads), it writes MODEL.fmnn (weights only) and
 * MODEL-optimizer.fmnn (with Adam's state), then keeps training the model
 * in memory for one more epoch on the 64 samples of samples-*-ubyte (the
 * first 64 test images; batch 32, seed 5): the uninterrupted run that a
 * model resumed from MODEL-optimizer.fmnn must reproduce.  expected.txt
 * gets, per model, the 10 class probabilities of the first 16 samples as
 * the hex bits of each float, before and after that epoch, and the FNV-1a
 * hash of all the weights after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>

#include "support/models.h"

#define DATA "/usr/share/datasets/fashion-mnist/"
#define SAMPLES 64
#define PREDICTED 16

static int fail(const char *what)
{
    fprintf(stderr, "make_fixtures: %s: %s\n", what, fmnn_last_error());
    return 1;
}

static uint64_t fnv1a(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

/* Writes "KEY WHAT" and the probabilities of the first PREDICTED samples. */
static int write_predictions(FILE *out, fmnn_model *m, const fmnn_tensor *x,
                             const char *key, const char *what)
{
    fmnn_tensor *p;
    if (fmnn_model_predict(m, x, 32, &p))
        return fail("predict");
    fprintf(out, "%s %s", key, what);
    const float *v = fmnn_tensor_const_data(p);
    for (int i = 0; i < PREDICTED * 10; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        fprintf(out, " %08" PRIx32, bits);
    }
    fputc('\n', out);
    fmnn_tensor_free(p);
    return 0;
}

/* An IDX file of the first SAMPLES images or labels of the test set. */
static int write_idx(const char *dir, const char *name, const fmnn_dataset *d, int images)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "make_fixtures: %s: %s\n", path, strerror(errno));
        return 1;
    }
    unsigned char header[16] = {0, 0, 8, images ? 3 : 1, 0, 0, 0, SAMPLES, 0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(header, 1, images ? 16 : 8, f);
    if (images) {
        const float *px = fmnn_tensor_const_data(d->images);
        for (int i = 0; i < SAMPLES * 28 * 28; i++)
            fputc((int)(px[i] * 255.0f + 0.5f), f);
    } else {
        fwrite(d->classes, 1, SAMPLES, f);
    }
    return fclose(f) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_fixtures DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    fmnn_set_num_threads(2);

    fmnn_dataset *train, *test;
    if (fmnn_dataset_load(&train, DATA "train-images-idx3-ubyte.gz",
                          DATA "train-labels-idx1-ubyte.gz", 10, 2000))
        return fail("training set");
    if (fmnn_dataset_load(&test, DATA "t10k-images-idx3-ubyte.gz",
                          DATA "t10k-labels-idx1-ubyte.gz", 10, SAMPLES))
        return fail("test set");
    if (write_idx(dir, "samples-images-idx3-ubyte", test, 1) ||
        write_idx(dir, "samples-labels-idx1-ubyte", test, 0))
        return 1;

    char path[1024];
    snprintf(path, sizeof path, "%s/expected.txt", dir);
    FILE *expected = fopen(path, "w");
    if (!expected)
        return fail(path);
    fprintf(expected, "# written by make_fixtures.c at libfmnn %s\n", fmnn_version_string());

    const char *keys[] = {"base", "l2_dropout"};
    for (int k = 0; k < 2; k++) {
        fmnn_model *m;
        if (study_build(&m, study_find(keys[k])))
            return fail("build");
        if (fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42))
            return fail("compile");
        fmnn_fit_options o = FMNN_FIT_OPTIONS_INIT;
        o.batch_size = 64;
        o.seed = 42;
        o.verbose = 0;
        if (fmnn_model_fit(m, train->images, train->labels, &o, NULL))
            return fail("fit");

        snprintf(path, sizeof path, "%s/%s.fmnn", dir, keys[k]);
        if (fmnn_model_save(m, path, 0))
            return fail("save");
        snprintf(path, sizeof path, "%s/%s-optimizer.fmnn", dir, keys[k]);
        if (fmnn_model_save(m, path, FMNN_SAVE_OPTIMIZER))
            return fail("save");
        if (write_predictions(expected, m, test->images, keys[k], "predict"))
            return 1;

        fmnn_fit_options more = FMNN_FIT_OPTIONS_INIT;
        more.batch_size = 32;
        more.seed = 5;
        more.verbose = 0;
        if (fmnn_model_fit(m, test->images, test->labels, &more, NULL))
            return fail("fit on");
        if (write_predictions(expected, m, test->images, keys[k], "resumed"))
            return 1;
        size_t n;
        const float *w = fmnn_model_weights(m, &n);
        fprintf(expected, "%s weights %zu %016" PRIx64 "\n", keys[k], n, fnv1a(w, n * sizeof *w));
        fmnn_model_free(m);
    }
    fmnn_dataset_free(train);
    fmnn_dataset_free(test);
    return fclose(expected) ? 1 : 0;
}
