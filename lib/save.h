/*
 * save.h - what the model file readers share: save.c reads formats 2 to
 * 4 and dispatches, format1.c reads the files the first library wrote.
 */
#ifndef FMNN_SAVE_H
#define FMNN_SAVE_H

#include "model_file.h"
#include "model_impl.h"

/* Reads a format-1 payload into a new compiled model with its weights. */
FMNN_INTERNAL int fmnn__read_format1(fmnn__reader *r, uint32_t flags, fmnn_model **out);

/* Reads the loss and the input shape, which both formats begin with, and
 * checks them: a known loss, a rank of 1..3, sizes in 1..2^24 and at most
 * INT_MAX values per sample. */
FMNN_INTERNAL int fmnn__read_loss_and_input(fmnn__reader *r, fmnn_loss *loss, int *rank, int dims[FMNN_MAX_RANK]);

/* Wraps the message a layer or compile left: "<path>: corrupt model file:
 * impossible architecture: conv2d (Conv2D): kernel 5x5 is larger ...". */
FMNN_INTERNAL int fmnn__impossible(fmnn__reader *r, int status);

/* Checks the model's options and shapes as compile does, then that the
 * parameter count the file holds next is the architecture's; peek is left
 * just after that count, r where it was.  Both formats begin their
 * values so. */
FMNN_INTERNAL int fmnn__infer_and_peek(fmnn__reader *r, fmnn_model *m, size_t *n_params, size_t *n_state,
                                       fmnn__reader *peek);

/* Checks what was read into a model: every weight, state value and
 * optimizer slot finite, the optimizer's state possible. */
FMNN_INTERNAL int fmnn__check_loaded(fmnn__reader *r, const fmnn_model *m, int with_optimizer);

#endif /* FMNN_SAVE_H */
