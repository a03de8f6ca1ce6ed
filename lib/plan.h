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
} fmnn_step;

/*
 * The memory one run of the plan works in, for batches of up to
 * `capacity` samples: the input batch, every layer's output, what each
 * layer's forward keeps for its backward, the values before a step's own
 * activation, the one shared scratch and, when sized for training, the
 * gradients and the batch's targets and weights.  Everything a forward
 * pass writes, other than the moving statistics a training pass moves,
 * is in here.  The model owns one set (its fit, evaluate and predict);
 * each fmnn_inference owns another, so threads predicting with one model
 * through their own contexts share only what forward reads.
 */
typedef struct fmnn_buffers {
    int training;           /* set by the owner: size the backward pass's buffers too */
    int capacity;           /* 0 until fmnn__plan_buffers sizes it */
    float *arena;           /* one block for every float buffer below */
    float **acts;           /* acts[0] = input batch, acts[i + 1] = layer i's output */
    float **pre;            /* pre[s]: step s's values before its post activation, or NULL */
    void **saved;           /* saved[i]: layer i's ops->saved bytes, or NULL */
    unsigned char *saved_block;
    float *logits;          /* with a fusion: what the loss works from */
    float *probs;           /* the model's output as predict returns it */
    float *workspace;
    float *delta[2];        /* training: gradients flowing backward, ping-pong */
    float *targets;         /* training: the batch's y */
    float *weights;         /* training: the batch's sample weights */
    /* Seconds each layer's forward and backward calls took, added to when
     * not NULL: the model's own set, while the benchmark profiles it
     * (fmnn__model_profile); the counters are the model's. */
    double *profile_forward, *profile_backward;
} fmnn_buffers;

/* Decides every fusion and writes the steps (compile, after the shapes and
 * the loss are known).  Allocates m->steps; FMNN_ENOMEM. */
FMNN_INTERNAL int fmnn__plan_build(fmnn_model *m);

/* Sizes buf for batches of up to `batch` samples of m (compiled).  Does
 * nothing when it is already large enough; on failure buf holds nothing. */
FMNN_INTERNAL int fmnn__plan_buffers(const fmnn_model *m, fmnn_buffers *buf, int batch);

/* Frees what fmnn__plan_buffers allocated (capacity 0 again). */
FMNN_INTERNAL void fmnn__plan_free_buffers(fmnn_buffers *buf);

/*
 * One pass over a batch of pass->batch samples at input, in buf: forward
 * leaves the model's output in buf->probs (and buf->logits) and reads the
 * model only, so several threads may run it on one model at once, each
 * with its own buf; backward takes the loss's gradient in buf->delta[0]
 * and leaves every layer's kernel and bias gradients.  Backward needs the
 * forward pass of the same batch before it, in the same buf.  The plan
 * fills in the pass's workspace and saved.
 */
FMNN_INTERNAL void fmnn__plan_forward(const fmnn_model *m, fmnn_buffers *buf, const fmnn_pass *pass,
                                      const float *input);

/* The forward pass of the layers before layer `until` only (fmnn_model_adapt
 * runs them to see what reaches that layer); returns that layer's input.
 * For a layer no step shares with the layer before it: not the pool of a
 * Conv2D -> relu -> MaxPooling2D, nor an activation fused into a layer. */
FMNN_INTERNAL const float *fmnn__plan_forward_until(const fmnn_model *m, fmnn_buffers *buf, const fmnn_pass *pass,
                                                    const float *input, int until);
FMNN_INTERNAL void fmnn__plan_backward(fmnn_model *m, fmnn_buffers *buf, const fmnn_pass *pass,
                                       const float *input);

/* The pass settings of a layer run alone, as the plan gives them to a
 * layer nothing is fused with: for tests that drive a layer directly.
 * Not for a Conv2D or Dense whose own activation needs its input (GELU,
 * swish): the plan runs those as a step of their own. */
FMNN_INTERNAL void fmnn__plan_alone(const fmnn_layer *layer, fmnn_pass *pass);

#endif /* FMNN_PLAN_H */
