/*
 * check_integration.c - the notebook's Base CNN on real Fashion-MNIST:
 * 2,000 training images, one epoch, then the first 1,000 test images.
 * It must beat 0.6 accuracy (chance is 0.1).  Skipped, with a message,
 * when the dataset is not installed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fmnn.h"
#include "support/models.h"

static const char *data_dir(void)
{
    const char *dir = getenv("FMNN_DATA");
    return dir && *dir ? dir : "/usr/share/datasets/fashion-mnist";
}

static int load(fmnn_dataset **out, const char *prefix, int limit)
{
    char images[1024], labels[1024];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", data_dir(), prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", data_dir(), prefix);
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0)
        return 1;
    int err = fmnn_dataset_load(out, images, labels, 10, limit);
    ck_assert_msg(err == FMNN_OK, "loading %s: %s", images, fmnn_last_error());
    return 0;
}

START_TEST(base_learns_fashion_mnist)
{
    fmnn_dataset *train = NULL, *test = NULL;
    if (getenv("FMNN_TEST_QUICK")) { /* under valgrind a real training run takes an hour */
        printf("SKIP base_learns_fashion_mnist: FMNN_TEST_QUICK is set\n");
        return;
    }
    if (load(&train, "train", 2000) || load(&test, "t10k", 1000)) {
        printf("SKIP base_learns_fashion_mnist: the Fashion-MNIST files are not in %s "
               "(run 'make deps', or set FMNN_DATA)\n", data_dir());
        return;
    }
    ck_assert_int_eq(train->count, 2000);
    ck_assert_int_eq(test->count, 1000);

    fmnn_model *model;
    ck_assert_int_eq(study_build(&model, study_find("base")), FMNN_OK);
    ck_assert_int_eq(fmnn_model_compile(model, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 42), FMNN_OK);
    fmnn_fit_options options = FMNN_FIT_OPTIONS_INIT;
    options.batch_size = 32;
    options.epochs = 1;
    options.seed = 42;
    options.verbose = 0;
    fmnn_history *history;
    ck_assert_int_eq(fmnn_model_fit(model, train->images, train->labels, &options, &history), FMNN_OK);
    float loss, accuracy;
    ck_assert_int_eq(fmnn_model_evaluate(model, test->images, test->labels, 64, &loss, &accuracy), FMNN_OK);
    printf("Base, 2000 images, 1 epoch: train accuracy %.4f, test loss %.4f, test accuracy %.4f\n",
           (double)history->accuracy[0], (double)loss, (double)accuracy);
    ck_assert_msg(accuracy > 0.6f, "test accuracy %.4f is not above 0.6", (double)accuracy);
    ck_assert_msg(loss < history->loss[0], "test loss %.4f did not fall below the first epoch's %.4f",
                  (double)loss, (double)history->loss[0]);

    fmnn_history_free(history);
    fmnn_model_free(model);
    fmnn_dataset_free(train);
    fmnn_dataset_free(test);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration");
    TCase *tc = tcase_create("fashion_mnist");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, base_learns_fashion_mnist);
    suite_add_tcase(s, tc);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
