/*
 * fold.h - constant subgraphs of an ONNX graph, computed at import (fold.c).
 */
#ifndef FMNN_ONNX_FOLD_H
#define FMNN_ONNX_FOLD_H

#include "onnx/onnx_model.h"

/* The constant called `name` (an initializer, a Constant's value or a
 * value folded so far), or NULL. */
typedef const fmnn__onnx_tensor *(*fmnn__onnx_constant_fn)(void *context, const char *name);

/*
 * For each node not yet done, in graph order, whose op is one fold.c
 * computes and whose inputs are all constants: its output in folded[i]
 * (a new tensor, free with fmnn__onnx_tensor_free) and done[i] set.
 * folded has a slot per node; the others are NULL.  Always FMNN_OK:
 * what cannot be folded (out of memory included) is left to the walk.
 */
FMNN_INTERNAL int fmnn__onnx_fold(const fmnn__onnx_model *g, fmnn__onnx_constant_fn constant, void *context,
                                  fmnn__onnx_tensor **folded, unsigned char *done);

FMNN_INTERNAL void fmnn__onnx_tensor_free(fmnn__onnx_tensor *t);

#endif /* FMNN_ONNX_FOLD_H */
