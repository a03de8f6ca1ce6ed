/*
 * plan.h - the execution plan: what compile turns the layer list into,
 * and the forward and backward passes that run it (plan.c).
 *
 * A step runs one layer, or a short chain of layers a few images at a
 * time (the Conv2D -> relu -> MaxPooling2D pipeline).  Each link of a step
 * says what the plan asks of its layer: the activation to apply, whether
 * to leave its bias to the next link.  Layers the plan can skip (a Flatten,
 * an Activation fused into the layer before it) are in no step: their
 * output is their input's buffer.  Every fusion is decided in
 * fmnn__plan_build; layers only read their fmnn_pass.
 */
#ifndef FMNN_PLAN_H
#define FMNN_PLAN_H

#include "layer_impl.h"

typedef struct fmnn_model fmnn_model;

/* How the model's final activation meets the loss. */
typedef enum fmnn_output_fusion {
    FUSE_NONE = 0,       /* the loss sees the output as it is */
    FUSE_LAYER,          /* the last layer is an Activation the loss takes over */
    FUSE_ACTIVATION      /* the last layer's own activation= moved into the loss */
} fmnn_output_fusion;

#define FMNN__MAX_LINKS 2

typedef struct fmnn_link {
    fmnn_layer *layer;
    fmnn_activation_kind activation; /* pass->activation */
    int defer_bias;                  /* pass->defer_bias */
    const fmnn_layer *bias_of;       /* whose deferred bias this link applies, or NULL */
} fmnn_link;

typedef struct fmnn_step {
    fmnn_link links[FMNN__MAX_LINKS];
    int n_links;
    /* Images per call: 0 for the whole batch; else the step runs its
     * links on that many images at a time, through a buffer of that many
     * images between them.  In backward, a link after the first writes its
     * din over that buffer, which is also its in; and the link whose
     * output it is gets no `out`: it must have deferred what needs it (its
     * bias and relu, as a Conv2D does). */
    int slice;
    int backward;        /* 0: skipped, the loss took its part over (FUSE_LAYER) */
    /* An activation applied after the (only) link, from its output kept
     * in `pre`: a Conv2D's or Dense's own GELU or swish, whose derivative
     * needs the value before the activation.  FMNN_LINEAR: none. */
    fmnn_activation_kind post;
    float *pre;          /* set by fmnn__plan_buffers */
} fmnn_step;

/* Decides every fusion and writes the steps (compile, after the shapes and
 * the loss are known).  Allocates m->steps; FMNN_ENOMEM. */
FMNN_INTERNAL int fmnn__plan_build(fmnn_model *m);

/* Sizes every buffer for batches of up to `batch` samples.  Does nothing
 * when the buffers are already large enough. */
FMNN_INTERNAL int fmnn__plan_buffers(fmnn_model *m, int batch);

/* Frees what fmnn__plan_buffers allocated. */
FMNN_INTERNAL void fmnn__plan_free_buffers(fmnn_model *m);

/* One pass over a batch of pass->batch samples at input: forward leaves
 * the model's output in m->probs (and m->logits); backward takes the
 * loss's gradient in m->delta[0] and leaves every layer's kernel and bias
 * gradients.  Backward needs the forward pass of the same batch before it. */
FMNN_INTERNAL void fmnn__plan_forward(fmnn_model *m, const fmnn_pass *pass, const float *input);

/* The forward pass of the layers before layer `until` only (fmnn_model_adapt
 * runs them to see what reaches that layer); returns that layer's input.
 * For a layer no step shares with the layer before it: not the pool of a
 * Conv2D -> relu -> MaxPooling2D, nor an activation fused into a layer. */
FMNN_INTERNAL const float *fmnn__plan_forward_until(fmnn_model *m, const fmnn_pass *pass, const float *input,
                                                    int until);
FMNN_INTERNAL void fmnn__plan_backward(fmnn_model *m, const fmnn_pass *pass, const float *input);

/* The pass settings of a layer run alone, as the plan gives them to a
 * layer nothing is fused with: for tests that drive a layer directly.
 * Not for a Conv2D or Dense whose own activation needs its input (GELU,
 * swish): the plan runs those as a step of their own. */
FMNN_INTERNAL void fmnn__plan_alone(const fmnn_layer *layer, fmnn_pass *pass);

#endif /* FMNN_PLAN_H */
