/*
 * fmnn/onnx.h - ONNX files: export a model to run it in onnxruntime (or
 * any ONNX runtime), import a chain of layers trained elsewhere
 * (torch.onnx.export of an nn.Sequential) to predict, evaluate or
 * fine-tune it here.
 *
 *     fmnn_model_export_onnx(model, "model.onnx");
 *
 *     fmnn_model *m;
 *     fmnn_model_import_onnx(&m, "torch.onnx", NULL);
 *     fmnn_model_predict(m, x, 0, &probs);
 *
 * ONNX images are NCHW, libfmnn's are channels-last (NHWC): an exported
 * model takes (N, channels, height, width) inputs, and an imported one
 * takes (N, height, width, channels) samples as every libfmnn model does.
 * The kernels are transposed between the two layouts, and the Dense
 * kernel after a Flatten is permuted, so that both compute the same
 * function.  For one-channel images the two layouts are the same bytes.
 */
#ifndef FMNN_ONNX_H
#define FMNN_ONNX_H

#include <stddef.h>

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Writes a compiled model as an ONNX file (opset 13, IR version 7), with
 * a symbolic batch dimension "N", atomically as fmnn_model_save does.
 * Dropout and the augmentation layers are left out: they are the
 * identity at inference.  The output is what fmnn_model_predict returns.
 * FMNN_ESTATE before compile, FMNN_EIO, FMNN_ENOMEM.
 */
FMNN_API int fmnn_model_export_onnx(const fmnn_model *model, const char *path);

/** How fmnn_model_import_onnx compiles the model it builds. */
typedef struct fmnn_onnx_import_options {
    /** 0: the loss follows from the model's last op: categorical
     * cross-entropy after a Softmax, binary cross-entropy after a
     * Sigmoid, mean squared error otherwise.  1: use `loss`. */
    int loss_given;
    fmnn_loss loss;
    /** NULL means fmnn_adam(). */
    const fmnn_optimizer *optimizer;
    int reserved[8];       /**< must be 0 */
} fmnn_onnx_import_options;

#define FMNN_ONNX_IMPORT_OPTIONS_INIT { 0, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, { 0 } }

/**
 * Reads an ONNX file whose graph is a chain of supported ops and builds
 * a compiled libfmnn model of it, with the file's weights, ready to
 * predict, evaluate or fit.  options NULL means the defaults above.
 * FMNN_EIO when the file cannot be read; FMNN_EFORMAT when it is not a
 * well-formed ONNX model; FMNN_ENOTSUP, naming the node, its op type and
 * why, for anything valid that has no libfmnn equivalent (an op, an
 * attribute value, a graph that is not a chain, weights in an external
 * data file); FMNN_ENOMEM.  *out is NULL on failure.
 */
FMNN_API int fmnn_model_import_onnx(fmnn_model **out, const char *path, const fmnn_onnx_import_options *options);

/** The same from an ONNX model in memory (size bytes at data). */
FMNN_API int fmnn_model_import_onnx_memory(fmnn_model **out, const void *data, size_t size,
                                           const fmnn_onnx_import_options *options);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_ONNX_H */
