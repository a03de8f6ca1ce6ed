/*
 * check_format1.c - model files that the format-1 library wrote still load,
 * predict and resume training bit for bit.
 *
 * tests/format1/ holds a trained Base and a trained L2+Dropout model, each
 * saved with and without Adam's state by libfmnn 0.1.0 (make_fixtures.c
 * says how), 64 Fashion-MNIST samples, and expected.txt: the probabilities
 * the models gave for the first 16 samples, as float bits, and after one
 * more epoch on the 64 samples, uninterrupted, their probabilities and a
 * hash of their weights.  Every later library must give the same bits.
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fmnn.h>

#include "testutil.h"

#define PREDICTED 16
#define CLASSES 10

static const char *const KEYS[] = {"base", "l2_dropout"};

/* tests/format1/NAME, from the source tree Make runs the tests in. */
static const char *fixture(char *buf, size_t cap, const char *name)
{
    const char *root = getenv("FMNN_SOURCE_DIR");
    snprintf(buf, cap, "%s/tests/format1/%s", root ? root : ".", name);
    return buf;
}

static uint64_t fnv1a(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

/* The line of expected.txt that starts with "KEY WHAT ", without them. */
static char *expected_line(const char *key, const char *what, char *buf, size_t cap)
{
    char path[1024], prefix[64];
    FILE *f = fopen(fixture(path, sizeof path, "expected.txt"), "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    snprintf(prefix, sizeof prefix, "%s %s ", key, what);
    char *found = NULL;
    while (!found && fgets(buf, (int)cap, f))
        if (strncmp(buf, prefix, strlen(prefix)) == 0)
            found = buf + strlen(prefix);
    fclose(f);
    ck_assert_msg(found != NULL, "%s has no line '%s'", path, prefix);
    return found;
}

/* The probabilities of the first PREDICTED samples must be these bits. */
static void assert_predictions(fmnn_model *m, const fmnn_tensor *x, const char *key,
                               const char *what, const char *file)
{
    char line[8192];
    char *p = expected_line(key, what, line, sizeof line);
    /* Only those samples, and 2 under FMNN_TEST_QUICK (valgrind), where
     * each image of these models costs seconds. */
    int count = getenv("FMNN_TEST_QUICK") ? 2 : PREDICTED;
    fmnn_tensor *first, *probs;
    EXPECT_OK(fmnn_tensor_wrap(&first, (float *)fmnn_tensor_const_data(x), 4,
                               (const int[]){count, 28, 28, 1}));
    EXPECT_OK(fmnn_model_predict(m, first, 32, &probs));
    fmnn_tensor_free(first);
    const float *v = fmnn_tensor_const_data(probs);
    for (int i = 0; i < count * CLASSES; i++) {
        char *end;
        uint32_t want = (uint32_t)strtoul(p, &end, 16), got;
        ck_assert_msg(end != p, "expected.txt: %s %s has too few values", key, what);
        p = end;
        memcpy(&got, &v[i], sizeof got);
        ck_assert_msg(got == want, "%s: sample %d, class %d: %08" PRIx32 " (%g), expected %08" PRIx32,
                      file, i / CLASSES, i % CLASSES, got, (double)v[i], want);
    }
    fmnn_tensor_free(probs);
}

static fmnn_dataset *samples(void)
{
    char images[1024], labels[1024];
    fmnn_dataset *d;
    EXPECT_OK(fmnn_dataset_load(&d, fixture(images, sizeof images, "samples-images-idx3-ubyte"),
                                fixture(labels, sizeof labels, "samples-labels-idx1-ubyte"),
                                CLASSES, 0));
    ck_assert_int_eq(d->count, 64);
    return d;
}

/* The epoch make_fixtures.c ran after saving. */
static void train_on(fmnn_model *m, const fmnn_dataset *d)
{
    fmnn_fit_options more = FMNN_FIT_OPTIONS_INIT;
    more.batch_size = 32;
    more.seed = 5;
    more.verbose = 0;
    EXPECT_OK(fmnn_model_fit(m, d->images, d->labels, &more, NULL));
}

/* _i: 0 base, 1 base-optimizer, 2 l2_dropout, 3 l2_dropout-optimizer. */
START_TEST(test_format1_predicts)
{
    const char *key = KEYS[_i / 2];
    char name[64], path[1024];
    snprintf(name, sizeof name, "%s%s.fmnn", key, _i % 2 ? "-optimizer" : "");
    fmnn_set_num_threads(2);
    fmnn_dataset *d = samples();
    fmnn_model *m;
    EXPECT_OK(fmnn_model_load(&m, fixture(path, sizeof path, name)));
    assert_predictions(m, d->images, key, "predict", name);
    fmnn_model_free(m);
    fmnn_dataset_free(d);
}
END_TEST

/*
 * _i: the model.  Resumed from its file with Adam's state, one epoch
 * gives the uninterrupted run's weights and predictions; from the file
 * without the state it must not (or the test could not fail).
 */
START_TEST(test_format1_resumes)
{
    const char *key = KEYS[_i];
    char name[64], path[1024], line[256];
    if (getenv("FMNN_TEST_QUICK")) { /* 4 epochs of 64 images: an hour under valgrind */
        printf("SKIP test_format1_resumes: FMNN_TEST_QUICK is set\n");
        return;
    }
    fmnn_set_num_threads(2);
    fmnn_dataset *d = samples();
    char *hash_text = expected_line(key, "weights", line, sizeof line);
    size_t want_count = 0;
    uint64_t want_hash = 0;
    ck_assert_int_eq(sscanf(hash_text, "%zu %" SCNx64, &want_count, &want_hash), 2);

    fmnn_model *m;
    snprintf(name, sizeof name, "%s-optimizer.fmnn", key);
    EXPECT_OK(fmnn_model_load(&m, fixture(path, sizeof path, name)));
    train_on(m, d);
    size_t n;
    const float *w = fmnn_model_weights(m, &n);
    ck_assert_uint_eq(n, want_count);
    ck_assert_msg(fnv1a(w, n * sizeof *w) == want_hash,
                  "%s: the resumed weights differ from the uninterrupted run's", name);
    assert_predictions(m, d->images, key, "resumed", name);
    fmnn_model_free(m);

    snprintf(name, sizeof name, "%s.fmnn", key);
    EXPECT_OK(fmnn_model_load(&m, fixture(path, sizeof path, name)));
    train_on(m, d);
    w = fmnn_model_weights(m, &n);
    ck_assert_msg(fnv1a(w, n * sizeof *w) != want_hash,
                  "%s: training without Adam's state gave the resumed weights", name);
    fmnn_model_free(m);
    fmnn_dataset_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format1");
    TCase *tc = tcase_create("format1");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_format1_predicts, 0, 4);
    tcase_add_loop_test(tc, test_format1_resumes, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
