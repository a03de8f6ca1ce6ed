/*
 * models.h - the five CNNs of the Keras notebook, as data: which Conv2D
 * kernels carry a regularizer and where Dropout goes.  Shared by the
 * experiments program and the benchmark.
 */
#ifndef STUDY_MODELS_H
#define STUDY_MODELS_H

#include <fmnn.h>

typedef struct study_model {
    const char *key;                 /* on the command line: "l2_dropout" */
    const char *title;               /* in reports: "L2+Dropout" */
    fmnn_regularizer conv_reg[4];    /* kernel_regularizer of each Conv2D */
    int dropout_after_pool[2];       /* Dropout(0.2) after MaxPool 1, 2 */
    int dropout_after_conv3;         /* Dropout(0.2) after the 3rd conv's relu */
} study_model;

#define STUDY_MODEL_COUNT 5
extern const study_model study_models[STUDY_MODEL_COUNT];

/* The model with this key, or NULL. */
const study_model *study_find(const char *key);

/*
 * Builds the notebook's architecture for one configuration, input
 * 28x28x1, uncompiled:
 *   Conv2D 256 3x3, relu, MaxPool 2 -> Conv2D 128 3x3, relu, MaxPool 2 ->
 *   Conv2D 64 3x3, relu -> Conv2D 28 3x3, relu -> Flatten -> Dense 64 ->
 *   Dense 10 -> softmax
 */
int study_build(fmnn_model **out, const study_model *config);

#endif
