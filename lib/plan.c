/*
 * plan.c - the execution plan (plan.h): compile decides here, once, which
 * layers run fused, skipped or pipelined; the buffers are sized for it;
 * and forward and backward are single loops over its steps.
 *
 * The fusions, so that the batch loop makes no extra passes:
 *   - a final activation the loss works through (softmax for the
 *     categorical losses, sigmoid for binary cross-entropy) moves into
 *     the loss, which works from the logits (exact, gradient p - y); as a
 *     layer of its own it keeps its layer, so that the logits stay;
 *   - an element-wise Activation right after a layer that fuses_activation
 *     (Conv2D, Dense) is applied by that layer in the same pass over its
 *     output; the Activation layer, like every Flatten and Reshape, is
 *     then skipped (its output is its input's buffer, under another
 *     shape).  GELU and swish, whose derivative needs their input, are
 *     never fused: as a layer's own activation they run as a step after
 *     it, from its output kept in a buffer;
 *   - Conv2D -> relu -> MaxPooling2D pools the raw convolution first and
 *     adds the bias and relu to the pooled values only;
 *   - when that Conv2D does at most PIPELINE_MAX_FAN_IN multiply-adds per
 *     output value (a first layer), its output costs more to write to
 *     memory and read back than to compute, so the conv and the pool run
 *     as one step a few images at a time, through a buffer that stays in
 *     the cache: PIPELINE_FLOATS of conv output, 2 MB, a share of L2 for
 *     each of two threads.
 * Skipped layers still show in the summary, as in Keras.
 */
#include <limits.h>
#include <string.h>

#include "model_impl.h"
#include "progress.h" /* fmnn__now, for profiling */

#define PIPELINE_MAX_FAN_IN 64
#define PIPELINE_FLOATS ((size_t)1 << 19)

/* ---- deciding ---------------------------------------------------------- */

void fmnn__plan_alone(const fmnn_layer *layer, fmnn_pass *pass)
{
    pass->activation = fmnn__own_activation(layer);
    pass->defer_bias = 0;
    pass->deferred_bias = NULL;
    pass->deferred_bias_grad = NULL;
}

/* Whether the loss takes the model's final activation over. */
static fmnn_output_fusion output_fusion(const fmnn_model *m)
{
    const fmnn_layer *last = m->layers[m->n_layers - 1];
    const fmnn_activation_kind fused = m->loss_ops->fuses;
    if (fused == FMNN_LINEAR || fmnn__own_activation(last) != fused)
        return FUSE_NONE;
    if (!last->ops->is_activation)
        return FUSE_ACTIVATION;
    /* The logits are the previous layer's output; a lone activation layer
     * has none of its own, so it stays unfused. */
    return m->n_layers >= 2 ? FUSE_LAYER : FUSE_NONE;
}

/* Element-wise kinds a layer can apply to its own output in place:
 * their derivative follows from the output. */
static int fusible(fmnn_activation_kind kind)
{
    return kind != FMNN_LINEAR && kind != FMNN_SOFTMAX && !fmnn__activation_needs_input(kind);
}

/* Images of a pipelined conv's output per slice. */
static int pipeline_slice(const fmnn_layer *conv)
{
    size_t images = PIPELINE_FLOATS / fmnn__shape_size(&conv->out);
    return images < 1 ? 1 : images > INT_MAX ? INT_MAX : (int)images;
}

int fmnn__plan_build(fmnn_model *m)
{
    const int n = m->n_layers;
    fmnn__free(m->steps);
    m->steps = fmnn__alloc_array((size_t)n, sizeof *m->steps, "the execution plan");
    m->n_steps = 0;
    /* Per layer, while deciding: the activation it applies, and whether it is skipped. */
    fmnn_activation_kind *act = fmnn__alloc_array((size_t)n, sizeof *act, "the execution plan");
    unsigned char *skipped = fmnn__alloc_zeroed((size_t)n, "the execution plan");
    if (!m->steps || !act || !skipped) {
        fmnn__free(act);
        fmnn__free(skipped);
        return FMNN_ENOMEM;
    }
    m->fusion = output_fusion(m);
    m->output_activation = m->fusion == FUSE_ACTIVATION ? m->layers[n - 1]->activation : FMNN_LINEAR;
    for (int i = 0; i < n; i++)
        act[i] = fmnn__own_activation(m->layers[i]);
    if (m->fusion == FUSE_ACTIVATION) /* the loss applies it, from the logits */
        act[n - 1] = FMNN_LINEAR;
    for (int i = 1; i < n; i++) { /* layer 0 reads the caller's x */
        const fmnn_layer *layer = m->layers[i], *prev = m->layers[i - 1];
        if (layer->ops->reshape_only) {
            skipped[i] = 1;
        } else if (layer->ops->is_activation && fusible(act[i]) && prev->ops->fuses_activation &&
                   act[i - 1] == FMNN_LINEAR && !(m->fusion == FUSE_LAYER && i == n - 1)) {
            /* (a final activation the loss takes over keeps its layer:
             * the loss reads the logits before it) */
            act[i - 1] = act[i];
            skipped[i] = 1;
        }
    }

    for (int i = 0; i < n; i++) {
        if (skipped[i])
            continue;
        fmnn_layer *layer = m->layers[i];
        fmnn_step *step = &m->steps[m->n_steps++];
        *step = (fmnn_step){ .n_links = 1, .backward = 1, .post = FMNN_LINEAR };
        step->links[0] = (fmnn_link){ layer, act[i], 0, NULL };
        if (layer->ops->fuses_activation && fmnn__activation_needs_input(act[i])) {
            step->links[0].activation = FMNN_LINEAR; /* the step applies it, keeping x */
            step->post = act[i];
        }
        /* Conv2D -> Activation(relu), fused into it -> MaxPooling2D
         * (layer_impl.h); a Conv2D with activation="relu" of its own is
         * left as it is. */
        if (i + 2 < n && layer->ops->can_defer_bias_relu && layer->n_bias && layer->activation == FMNN_LINEAR &&
            act[i] == FMNN_RELU && m->layers[i + 1]->ops->is_activation && skipped[i + 1] &&
            m->layers[i + 2]->ops->applies_deferred_bias_relu) {
            fmnn_layer *pool = m->layers[i + 2];
            step->links[0].defer_bias = 1;
            fmnn_link deferred = { pool, act[i + 2], 0, layer };
            if (layer->fan_in <= PIPELINE_MAX_FAN_IN) { /* one step, slice by slice */
                step->links[1] = deferred;
                step->n_links = 2;
                step->slice = pipeline_slice(layer);
            } else { /* two steps */
                fmnn_step *next = &m->steps[m->n_steps++];
                *next = (fmnn_step){ .n_links = 1, .backward = 1, .post = FMNN_LINEAR };
                next->links[0] = deferred;
            }
            i += 2; /* the relu (skipped) and the pool are planned */
        }
    }
    if (m->fusion == FUSE_LAYER) /* the loss's gradient is already past it */
        m->steps[m->n_steps - 1].backward = 0;
    fmnn__free(act);
    fmnn__free(skipped);
    return FMNN_OK;
}

/* ---- buffers ----------------------------------------------------------- */

/* Rounds a float count up to whole cache lines, so every buffer in the
 * arena starts aligned. */
static size_t aligned_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static size_t aligned_bytes(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

void fmnn__plan_free_buffers(fmnn_buffers *buf)
{
    fmnn__free(buf->arena);
    fmnn__free(buf->acts);
    fmnn__free(buf->saved);
    fmnn__free(buf->saved_block);
    buf->arena = NULL;
    buf->acts = buf->pre = NULL;
    buf->saved = NULL;
    buf->saved_block = NULL;
    buf->capacity = 0;
}

/* How each layer's output buffer is sized at a batch of b. */
typedef struct layer_buffer {
    int skipped;    /* in no step: its output is its input's buffer */
    int inner;      /* feeds the next link of its step (or is skipped after
                     * such a link): its gradient never goes through delta */
    size_t held;    /* images the buffer holds: b, or a slice when inner */
    size_t called;  /* the most images one call of the layer covers */
} layer_buffer;

static void size_buffers(const fmnn_model *m, size_t b, layer_buffer *buf)
{
    for (int i = 0; i < m->n_layers; i++)
        buf[i] = (layer_buffer){ 1, 0, 0, 0 };
    for (int s = 0; s < m->n_steps; s++) {
        const fmnn_step *step = &m->steps[s];
        size_t images = step->slice && (size_t)step->slice < b ? (size_t)step->slice : b;
        for (int k = 0; k < step->n_links; k++) {
            layer_buffer *lb = &buf[step->links[k].layer->index];
            lb->skipped = 0;
            lb->inner = k + 1 < step->n_links;
            lb->held = lb->inner ? images : b;
            lb->called = images;
        }
    }
    for (int i = 1; i < m->n_layers; i++)
        if (buf[i].skipped)
            buf[i].inner = buf[i - 1].inner;
}

int fmnn__plan_buffers(const fmnn_model *m, fmnn_buffers *buf, int batch)
{
    if (batch <= buf->capacity)
        return FMNN_OK;
    if (batch > fmnn__model_batch_limit(m))
        return fmnn__error(FMNN_ESHAPE, "a batch of %d samples is too large for this model: "
                           "at most %d fit in one pass", batch, fmnn__model_batch_limit(m));
    fmnn__plan_free_buffers(buf);
    const size_t b = (size_t)batch;
    layer_buffer *lb = fmnn__alloc_array((size_t)m->n_layers, sizeof *lb, "the buffer plan");
    if (!lb)
        return FMNN_ENOMEM;
    size_buffers(m, b, lb);

    size_t total = aligned_floats(b * fmnn__shape_size(&m->input));
    size_t max_act = fmnn__shape_size(&m->input), work = 0, saved = 0;
    size_t out_size = fmnn__shape_size(&m->layers[m->n_layers - 1]->out);
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        size_t size = fmnn__shape_size(&layer->out);
        total += aligned_floats(lb[i].held * size);
        if (size > max_act && !lb[i].inner)
            max_act = size;
        size_t w = layer->ops->workspace && !lb[i].skipped ? layer->ops->workspace(layer, (int)lb[i].called) : 0;
        if (w > work)
            work = w;
        if (layer->ops->saved)
            saved += aligned_bytes(layer->ops->saved(layer, batch));
    }
    for (int s = 0; s < m->n_steps; s++) /* the values before a step's own activation */
        if (m->steps[s].post != FMNN_LINEAR)
            total += aligned_floats(b * fmnn__shape_size(&m->steps[s].links[0].layer->out));
    if (buf->training) {
        total += 2 * aligned_floats(b * max_act);      /* delta[0], delta[1] */
        total += aligned_floats(b * out_size);         /* targets */
        total += aligned_floats(b);                    /* weights */
    }
    total += aligned_floats(work);
    if (m->fusion == FUSE_ACTIVATION)
        total += aligned_floats(b * out_size);         /* probs */

    /* acts, then pre: one list of n_layers + 1 + n_steps pointers.  Each
     * only after the one before it, so that the message names the
     * allocation that failed first. */
    const size_t lists = (size_t)m->n_layers + 1 + (size_t)m->n_steps;
    const char *what = buf->training ? "the training buffers" : "the inference buffers";
    buf->arena = fmnn__alloc_array(total, sizeof(float), what);
    buf->acts = buf->arena ? fmnn__alloc_array(lists, sizeof *buf->acts, "the activation list") : NULL;
    buf->saved = buf->acts ? fmnn__alloc_array((size_t)m->n_layers, sizeof *buf->saved, "the saved-state list") : NULL;
    buf->saved_block = saved && buf->saved ? fmnn__alloc(saved, "the layers' saved state") : NULL;
    if (!buf->arena || !buf->acts || !buf->saved || (saved && !buf->saved_block)) {
        fmnn__free(lb);
        fmnn__plan_free_buffers(buf);
        return FMNN_ENOMEM;
    }
    buf->pre = buf->acts + m->n_layers + 1;
    float *p = buf->arena;
    buf->acts[0] = p;
    p += aligned_floats(b * fmnn__shape_size(&m->input));
    unsigned char *at = buf->saved_block;
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        if (lb[i].skipped) { /* same buffer, new shape */
            buf->acts[i + 1] = buf->acts[i];
        } else {
            buf->acts[i + 1] = p;
            p += aligned_floats(lb[i].held * fmnn__shape_size(&layer->out));
        }
        buf->saved[i] = NULL;
        if (layer->ops->saved) {
            buf->saved[i] = at;
            at += aligned_bytes(layer->ops->saved(layer, batch));
        }
    }
    for (int s = 0; s < m->n_steps; s++) {
        const fmnn_step *step = &m->steps[s];
        buf->pre[s] = NULL;
        if (step->post != FMNN_LINEAR) {
            buf->pre[s] = p;
            p += aligned_floats(b * fmnn__shape_size(&step->links[0].layer->out));
        }
    }
    buf->delta[0] = buf->delta[1] = buf->targets = buf->weights = NULL;
    if (buf->training) {
        buf->delta[0] = p;
        p += aligned_floats(b * max_act);
        buf->delta[1] = p;
        p += aligned_floats(b * max_act);
        buf->targets = p;
        p += aligned_floats(b * out_size);
        buf->weights = p;
        p += aligned_floats(b);
    }
    buf->workspace = p;
    p += aligned_floats(work);
    /* Where the model's answer is: FUSE_ACTIVATION leaves logits in the
     * last layer's output and needs a separate buffer for the activation. */
    buf->logits = m->fusion == FUSE_LAYER ? buf->acts[m->n_layers - 1] : buf->acts[m->n_layers];
    buf->probs = buf->acts[m->n_layers];
    if (m->fusion == FUSE_ACTIVATION)
        buf->probs = p;
    buf->capacity = batch;
    fmnn__free(lb);
    return FMNN_OK;
}

/* ---- running ----------------------------------------------------------- */

/* What one link's layer is told, on top of the batch's pass: the plan's
 * part, and where in buf its scratch and saved state are. */
static fmnn_pass link_pass(const fmnn_buffers *buf, const fmnn_pass *pass, const fmnn_link *link)
{
    fmnn_pass call = *pass;
    /* Read in training only: fmnn_layer_set_trainable may change it while
     * inference contexts predict. */
    if (call.training && link->layer->frozen && link->layer->ops->frozen_runs_as_inference)
        call.training = 0;
    call.workspace = buf->workspace;
    call.saved = buf->saved[link->layer->index];
    call.activation = link->activation;
    call.defer_bias = link->defer_bias;
    call.deferred_bias = link->bias_of ? link->bias_of->bias : NULL;
    call.deferred_bias_grad = link->bias_of ? link->bias_of->bias_grad : NULL;
    return call;
}

/* One layer's forward or backward call, timed when profiling is on. */
static void run_forward(fmnn_buffers *buf, const fmnn_link *link, const fmnn_pass *pass, const float *in,
                        float *out)
{
    const fmnn_layer *layer = link->layer;
    const fmnn_pass call = link_pass(buf, pass, link);
    double start = buf->profile_forward ? fmnn__now() : 0.0;
    layer->ops->forward(layer, &call, in, out);
    if (buf->profile_forward)
        buf->profile_forward[layer->index] += fmnn__now() - start;
}

static void run_backward(fmnn_buffers *buf, const fmnn_link *link, const fmnn_pass *pass, const float *in,
                         const float *out, float *dout, float *din)
{
    fmnn_layer *layer = link->layer;
    const fmnn_pass call = link_pass(buf, pass, link);
    double start = buf->profile_backward ? fmnn__now() : 0.0;
    layer->ops->backward(layer, &call, in, out, dout, din);
    if (buf->profile_backward)
        buf->profile_backward[layer->index] += fmnn__now() - start;
}

/* The buffers around link k of a step: its input (the caller's x for the
 * model's first layer), the slice buffer a later link reads, and its output. */
static const float *link_input(const fmnn_buffers *buf, const fmnn_step *step, int k, const float *input)
{
    int i = step->links[k].layer->index;
    return i == 0 ? input : buf->acts[i];
}

static float *slice_buffer(const fmnn_buffers *buf, const fmnn_step *step, int k)
{
    return buf->acts[step->links[k].layer->index]; /* k > 0: the previous link's output */
}

static float *link_output(const fmnn_buffers *buf, const fmnn_step *step, int k)
{
    return buf->acts[step->links[k].layer->index + 1];
}

/* Images per call of a step at this batch. */
static int slice_of(const fmnn_step *step, int batch)
{
    return step->slice && step->slice < batch ? step->slice : batch;
}

/*
 * A step runs its links slice by slice: whole images in order, so forward
 * gives the same bits as one call over the batch would.  The buffers
 * between links hold one slice; the first and last hold the batch, and
 * each call sees its slice of them.
 */
static void forward_step(fmnn_buffers *buf, const fmnn_step *step, const fmnn_pass *pass, const float *input)
{
    const int slice = slice_of(step, pass->batch);
    fmnn_pass part = *pass;
    for (part.first = 0; part.first < pass->batch; part.first += slice) {
        part.batch = pass->batch - part.first < slice ? pass->batch - part.first : slice;
        for (int k = 0; k < step->n_links; k++) {
            const fmnn_layer *layer = step->links[k].layer;
            const float *in = link_input(buf, step, k, input);
            float *out = link_output(buf, step, k);
            if (k == 0)
                in += (size_t)part.first * fmnn__shape_size(&layer->in);
            if (k == step->n_links - 1)
                out += (size_t)part.first * fmnn__shape_size(&layer->out);
            run_forward(buf, &step->links[k], &part, in, out);
        }
    }
}

/* Backward through a step, slice by slice, last link first.  A later
 * link writes its din into the slice buffer it read its input from (so
 * din == in: it must not read in after writing din, which MaxPooling2D
 * never does), and the link before then gets no `out` (plan.h). */
static void backward_step(fmnn_buffers *buf, const fmnn_step *step, const fmnn_pass *pass, const float *input,
                          float *dout, float *din)
{
    const int slice = slice_of(step, pass->batch);
    fmnn_pass part = *pass;
    for (part.first = 0; part.first < pass->batch; part.first += slice) {
        part.batch = pass->batch - part.first < slice ? pass->batch - part.first : slice;
        for (int k = step->n_links - 1; k >= 0; k--) {
            const fmnn_layer *layer = step->links[k].layer;
            const size_t at_in = (size_t)part.first * fmnn__shape_size(&layer->in);
            const size_t at_out = (size_t)part.first * fmnn__shape_size(&layer->out);
            const int first = k == 0, last = k == step->n_links - 1;
            const float *in = link_input(buf, step, k, input) + (first ? at_in : 0);
            const float *out = last ? link_output(buf, step, k) + at_out : NULL;
            float *dy = last ? dout + at_out : link_output(buf, step, k);
            float *dx = !first ? slice_buffer(buf, step, k) : din ? din + at_in : NULL;
            run_backward(buf, &step->links[k], &part, in, out, dy, dx);
        }
    }
}

/* A step with its own activation (plan.h): the link writes pre, and the
 * activation goes from there to the link's output buffer. */
static void forward_post(fmnn_buffers *buf, int s, const fmnn_step *step, const fmnn_pass *pass,
                         const float *input)
{
    const fmnn_layer *layer = step->links[0].layer;
    const size_t n = fmnn__shape_size(&layer->out) * (size_t)pass->batch;
    float *out = link_output(buf, step, 0);
    run_forward(buf, &step->links[0], pass, link_input(buf, step, 0, input), buf->pre[s]);
    memcpy(out, buf->pre[s], n * sizeof *out);
    fmnn__activate(step->post, out, n, 1);
}

static void backward_post(fmnn_buffers *buf, int s, const fmnn_step *step, const fmnn_pass *pass,
                          const float *input, float *dout, float *din)
{
    const fmnn_layer *layer = step->links[0].layer;
    fmnn__activate_backward_from_input(step->post, buf->pre[s], dout,
                                       fmnn__shape_size(&layer->out) * (size_t)pass->batch);
    run_backward(buf, &step->links[0], pass, link_input(buf, step, 0, input), buf->pre[s], dout, din);
}

/* Steps [0, end) forward. */
static void forward_steps(const fmnn_model *m, fmnn_buffers *buf, int end, const fmnn_pass *pass,
                          const float *input)
{
    for (int s = 0; s < end; s++) {
        if (m->steps[s].post != FMNN_LINEAR)
            forward_post(buf, s, &m->steps[s], pass, input);
        else
            forward_step(buf, &m->steps[s], pass, input);
    }
}

void fmnn__plan_forward(const fmnn_model *m, fmnn_buffers *buf, const fmnn_pass *pass, const float *input)
{
    forward_steps(m, buf, m->n_steps, pass, input);
    if (m->fusion == FUSE_ACTIVATION) { /* the last layer left logits */
        size_t rows = (size_t)pass->batch * (size_t)m->output_rows;
        memcpy(buf->probs, buf->logits, rows * (size_t)m->output_width * sizeof *buf->probs);
        fmnn__activate(m->output_activation, buf->probs, rows, (size_t)m->output_width);
    }
}

const float *fmnn__plan_forward_until(const fmnn_model *m, fmnn_buffers *buf, const fmnn_pass *pass,
                                      const float *input, int until)
{
    int end = 0;
    while (end < m->n_steps && m->steps[end].links[m->steps[end].n_links - 1].layer->index < until)
        end++;
    forward_steps(m, buf, end, pass, input);
    return until == 0 ? input : buf->acts[until];
}

void fmnn__plan_backward(fmnn_model *m, fmnn_buffers *buf, const fmnn_pass *pass, const float *input)
{
    int d = 0;
    for (int s = m->n_steps - 1; s >= 0; s--) {
        const fmnn_step *step = &m->steps[s];
        if (!step->backward)
            continue;
        float *din = step->links[0].layer->index > 0 ? buf->delta[1 - d] : NULL;
        if (step->post != FMNN_LINEAR)
            backward_post(buf, s, step, pass, input, buf->delta[d], din);
        else
            backward_step(buf, step, pass, input, buf->delta[d], din);
        d = 1 - d;
    }
}
