/* models.c - the notebook's five configurations and how to build them. */
#include <string.h>

#include "models.h"

#define NONE { 0.0f, 0.0f }

const study_model study_models[STUDY_MODEL_COUNT] = {
    { "base", "Base", { NONE, NONE, NONE, NONE }, { 0, 0 }, 0 },
    { "l1", "L1", { { 0.01f, 0.0f }, { 0.01f, 0.0f }, NONE, NONE }, { 0, 0 }, 0 },
    { "l2", "L2", { { 0.0f, 0.01f }, NONE, NONE, NONE }, { 0, 0 }, 0 },
    { "dropout", "Dropout", { NONE, NONE, NONE, NONE }, { 1, 1 }, 1 },
    { "l2_dropout", "L2+Dropout", { { 0.0f, 0.01f }, NONE, NONE, NONE }, { 1, 1 }, 0 },
};

const study_model *study_find(const char *key)
{
    for (int i = 0; i < STUDY_MODEL_COUNT; i++)
        if (strcmp(study_models[i].key, key) == 0)
            return &study_models[i];
    return NULL;
}

/* Conv2D(filters, 3x3) with the configuration's regularizer, then relu. */
static int conv_relu(fmnn_model *m, int filters, fmnn_regularizer reg)
{
    fmnn_conv2d_options options = { 0 };
    options.kernel_regularizer = reg;
    int err = fmnn_model_add(m, fmnn_conv2d(filters, 3, 3, &options));
    return err ? err : fmnn_model_add(m, fmnn_activation(FMNN_RELU));
}

int study_build(fmnn_model **out, const study_model *c)
{
    static const int filters[4] = { 256, 128, 64, 28 };
    fmnn_model *m;
    int err = fmnn_model_new(&m, 3, (const int[]){ 28, 28, 1 });
    for (int i = 0; i < 4 && !err; i++) {
        err = conv_relu(m, filters[i], c->conv_reg[i]);
        if (!err && i < 2)
            err = fmnn_model_add(m, fmnn_maxpool2d(2, 2, NULL));
        if (!err && i < 2 && c->dropout_after_pool[i])
            err = fmnn_model_add(m, fmnn_dropout(0.2f));
        if (!err && i == 2 && c->dropout_after_conv3)
            err = fmnn_model_add(m, fmnn_dropout(0.2f));
    }
    if (!err)
        err = fmnn_model_add(m, fmnn_flatten());
    if (!err)
        err = fmnn_model_add(m, fmnn_dense(64, NULL));
    if (!err)
        err = fmnn_model_add(m, fmnn_dense(10, NULL));
    if (!err)
        err = fmnn_model_add(m, fmnn_activation(FMNN_SOFTMAX));
    if (err) {
        fmnn_model_free(m);
        return err;
    }
    *out = m;
    return 0;
}
