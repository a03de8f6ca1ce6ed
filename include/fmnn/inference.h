/*
 * fmnn/inference.h - many threads predicting with one model: an inference
 * context per thread.
 *
 *     // once, after compile, fit or load:
 *     fmnn_model *model = ...;
 *     // in each serving thread:
 *     fmnn_inference *ctx;
 *     fmnn_inference_new(&ctx, model);
 *     fmnn_inference_predict(ctx, x, 0, &probs);   // as fmnn_model_predict
 *     fmnn_inference_free(ctx);
 *
 * A context reads the model's weights, non-trainable state and execution
 * plan, and owns the buffers a prediction works in, so that any number
 * of contexts on one model predict at the same time, each from its own
 * thread, with the bits fmnn_model_predict gives.  One context is used by
 * one thread at a time.
 *
 * While contexts predict, the model may be read (summary, shapes,
 * fmnn_model_get_layer_weights, save, fmnn_model_predict and evaluate from
 * one other thread) but not changed: fmnn_model_fit, train_on_batch,
 * set_layer_weights and adapt fail with FMNN_ESTATE while a context is
 * predicting, and a context's prediction fails with FMNN_ESTATE while one
 * of them runs.  Change a model served this way between predictions,
 * from one thread; writing through fmnn_model_weights() is not checked.
 * A context keeps its model alive: fmnn_model_free() may come first, and
 * the last fmnn_inference_free() then frees the model.
 */
#ifndef FMNN_INFERENCE_H
#define FMNN_INFERENCE_H

#include "common.h"
#include "model.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fmnn_inference fmnn_inference;

/**
 * A new inference context on a compiled model.  It allocates nothing
 * more until its first prediction, which sizes its buffers.
 * FMNN_EINVAL, FMNN_ESTATE (not compiled), FMNN_ENOMEM.  Free it with
 * fmnn_inference_free().
 */
FMNN_API int fmnn_inference_new(fmnn_inference **out, const fmnn_model *model);

/**
 * fmnn_model_predict through the context: *out receives a new tensor
 * (N, output shape...), bit for bit what fmnn_model_predict gives with
 * the same thread count.  batch_size 0 means 32.  FMNN_ESTATE while the
 * model is being changed (fit...).
 */
FMNN_API int fmnn_inference_predict(fmnn_inference *ctx, const fmnn_tensor *x, int batch_size,
                                    fmnn_tensor **out);

/**
 * The same into out, a tensor of the caller's of shape (N, output
 * shape...) (FMNN_ESHAPE otherwise).  Once the context has predicted a
 * batch of batch_size, later calls with it allocate nothing.
 */
FMNN_API int fmnn_inference_predict_into(fmnn_inference *ctx, const fmnn_tensor *x, int batch_size,
                                         fmnn_tensor *out);

/**
 * The threads this context's predictions use (n >= 1), whatever
 * fmnn_set_num_threads says; 0, the default, means fmnn_get_num_threads().
 * 1 suits a server with a thread per core.  FMNN_EINVAL when n < 0.
 */
FMNN_API int fmnn_inference_set_num_threads(fmnn_inference *ctx, int n);

/** Frees the context, and its model if fmnn_model_free() came first and
 * this was the last context.  NULL is a no-op. */
FMNN_API void fmnn_inference_free(fmnn_inference *ctx);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_INFERENCE_H */
