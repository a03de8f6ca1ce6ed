/*
 * fmnn.h - libfmnn, convolutional neural networks in C11 with Keras's
 * semantics.  Include this one header and link with `pkg-config --libs fmnn`.
 */
#ifndef FMNN_H
#define FMNN_H

#include "fmnn/common.h"
#include "fmnn/version.h"
#include "fmnn/tensor.h"
#include "fmnn/layer.h"
#include "fmnn/model.h"
#include "fmnn/inference.h"
#include "fmnn/callbacks.h"
#include "fmnn/data.h"
#include "fmnn/collective.h"
#include "fmnn/onnx.h"

#endif /* FMNN_H */
