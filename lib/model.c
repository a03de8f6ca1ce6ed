/*
 * model.c - building a Sequential model: add layers, compile (infer and
 * check every shape, collate the parameters, initialise them), plan the
 * buffers for a batch size, and print Keras's summary.
 *
 * Training and inference live in train.c.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

/*
 * The conv-pool pipeline (see layer_impl.h) is for convolutions of at
 * most PIPELINE_MAX_FAN_IN multiply-adds per output value: their output
 * costs more to write to memory and read back than to compute.  They run
 * PIPELINE_FLOATS worth of output at a time, 2 MB: a share of L2 for each
 * of two threads.
 */
#define PIPELINE_MAX_FAN_IN 64
#define PIPELINE_FLOATS ((size_t)1 << 19)

FMNN_API int fmnn_model_new(fmnn_model **out, int rank, const int *input_shape)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_new: out is NULL");
    *out = NULL;
    if (rank < 1 || rank > FMNN_MAX_RANK - 1)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_new: input rank must be 1..%d (without the batch axis), got %d",
                           FMNN_MAX_RANK - 1, rank);
    if (!input_shape)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_new: input_shape is NULL");
    long long values = 1;
    for (int i = 0; i < rank; i++) {
        if (!fmnn__valid_size(input_shape[i]))
            return fmnn__error(FMNN_EINVAL, "fmnn_model_new: input_shape[%d] is %d; sizes must be in 1..%d",
                               i, input_shape[i], FMNN__MAX_SIZE);
        values *= input_shape[i]; /* at most INT_MAX^3 before we stop: no overflow */
        if (values > INT_MAX)
            return fmnn__error(FMNN_EINVAL, "fmnn_model_new: an input of more than %d values per sample",
                               INT_MAX);
    }
    fmnn_model *m = fmnn__alloc_zeroed(sizeof *m, "a model");
    if (!m)
        return FMNN_ENOMEM;
    m->input.rank = rank;
    memcpy(m->input.dims, input_shape, (size_t)rank * sizeof *input_shape);
    *out = m;
    return FMNN_OK;
}

static void free_buffers(fmnn_model *m)
{
    fmnn__free(m->arena);
    fmnn__free(m->acts);
    fmnn__free(m->saved);
    m->arena = NULL;
    m->acts = NULL;
    m->saved = NULL;
    m->capacity = 0;
}

FMNN_API void fmnn_model_free(fmnn_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        fmnn_layer_free(m->layers[i]);
    fmnn__free(m->layers);
    fmnn__free(m->params);
    fmnn__free(m->profile_forward);
    free_buffers(m);
    fmnn__free(m);
}

/* Keras names layers conv2d, conv2d_1, conv2d_2, ... per type. */
static void name_layer(fmnn_model *m, fmnn_layer *layer)
{
    int same = 0;
    for (int i = 0; i < m->n_layers; i++)
        same += m->layers[i]->ops == layer->ops;
    if (same > 0)
        snprintf(layer->name, sizeof layer->name, "%s_%d", layer->ops->base_name, same);
}

FMNN_API int fmnn_model_add(fmnn_model *m, fmnn_layer *layer)
{
    if (!layer)
        return m ? fmnn__error(FMNN_ENOMEM, "fmnn_model_add: the layer is NULL (its constructor ran out of memory)")
                 : fmnn__error(FMNN_EINVAL, "fmnn_model_add: model and layer are NULL");
    if (!m) {
        fmnn_layer_free(layer);
        return fmnn__error(FMNN_EINVAL, "fmnn_model_add: model is NULL");
    }
    if (m->compiled) {
        int err = fmnn__error(FMNN_ESTATE, "fmnn_model_add: cannot add %s after fmnn_model_compile",
                              layer->ops->type);
        fmnn_layer_free(layer);
        return err;
    }
    if (layer->in_model) /* another model frees it: we must not */
        return fmnn__error(FMNN_EINVAL, "fmnn_model_add: %s already belongs to a model", layer->name);
    if (m->n_layers == FMNN__MAX_LAYERS) {
        fmnn_layer_free(layer);
        return fmnn__error(FMNN_EINVAL, "fmnn_model_add: a model holds at most %d layers, the model file's limit",
                           FMNN__MAX_LAYERS);
    }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 16;
        fmnn_layer **grown = fmnn__alloc_array((size_t)cap, sizeof *grown, "the layer list");
        if (!grown) {
            fmnn_layer_free(layer);
            return FMNN_ENOMEM;
        }
        if (m->n_layers)
            memcpy(grown, m->layers, (size_t)m->n_layers * sizeof *grown);
        fmnn__free(m->layers);
        m->layers = grown;
        m->cap_layers = cap;
    }
    name_layer(m, layer);
    layer->in_model = 1;
    layer->index = m->n_layers;
    m->layers[m->n_layers++] = layer;
    return FMNN_OK;
}

/* glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)). */
static void init_params(fmnn_model *m, uint64_t seed)
{
    fmnn_rng rng;
    fmnn__rng_seed(&rng, seed);
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        if (layer->n_kernel) {
            float limit = (float)sqrt(6.0 / ((double)layer->fan_in + layer->fan_out));
            for (size_t k = 0; k < layer->n_kernel; k++)
                layer->kernel[k] = (2.0f * fmnn__rng_uniform(&rng) - 1.0f) * limit;
        }
        for (size_t k = 0; k < layer->n_bias; k++)
            layer->bias[k] = 0.0f;
    }
}

/* Folds a final softmax into cross-entropy (see loss.c). */
static softmax_fusion find_fusion(const fmnn_model *m)
{
    if (m->loss == FMNN_LOSS_MSE)
        return FUSE_NONE;
    const fmnn_layer *last = m->layers[m->n_layers - 1];
    if (last->activation != FMNN_SOFTMAX)
        return FUSE_NONE;
    if (!last->ops->is_activation)
        return FUSE_ACTIVATION;
    /* The logits are the previous layer's output; a lone softmax layer
     * has none of its own, so it stays unfused. */
    return m->n_layers >= 2 ? FUSE_LAYER : FUSE_NONE;
}

/*
 * Work that can be skipped at run time: a Flatten is only a new shape for
 * the same buffer, and an element-wise Activation right after a Conv2D or
 * Dense is applied by that layer in the same pass over its output.  The
 * skipped layers still show in the summary, as Keras has them.
 */
static void plan_fusions(fmnn_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i]->fused_activation = FMNN_LINEAR;
        m->layers[i]->passthrough = 0;
        m->layers[i]->defer_bias_activation = 0;
        m->layers[i]->bias_from = NULL;
        m->layers[i]->pipeline_into = NULL;
        m->layers[i]->pipeline_images = 0;
    }
    for (int i = 1; i < m->n_layers; i++) { /* layer 0 reads the caller's x */
        fmnn_layer *layer = m->layers[i], *prev = m->layers[i - 1];
        int pointwise = layer->activation == FMNN_RELU || layer->activation == FMNN_SIGMOID ||
                        layer->activation == FMNN_TANH;
        if (layer->ops->reshape_only) {
            layer->passthrough = 1;
        } else if (layer->ops->is_activation && pointwise && prev->ops->fuses_activation &&
                   fmnn__output_activation(prev) == FMNN_LINEAR) {
            prev->fused_activation = layer->activation;
            layer->passthrough = 1;
        }
    }
    /* Conv2D -> relu -> MaxPool2D: pool first, then add the bias and
     * apply relu to the pooled values only (see layer_impl.h). */
    for (int i = 2; i < m->n_layers; i++) {
        fmnn_layer *conv = m->layers[i - 2], *relu = m->layers[i - 1], *pool = m->layers[i];
        if (conv->ops->can_defer_bias_relu && conv->fused_activation == FMNN_RELU &&
            conv->activation == FMNN_LINEAR && relu->passthrough && pool->ops->applies_deferred_bias_relu) {
            conv->defer_bias_activation = 1;
            pool->bias_from = conv;
            if (conv->fan_in <= PIPELINE_MAX_FAN_IN) {
                size_t images = PIPELINE_FLOATS / fmnn__shape_size(&conv->out);
                conv->pipeline_into = pool;
                conv->pipeline_images = images < 1 ? 1 : images > INT_MAX ? INT_MAX : (int)images;
            }
        }
    }
}

/* Infers each layer's shapes in turn; stops at the first impossible one. */
static int infer_shapes(fmnn_model *m, size_t *n_params)
{
    fmnn_shape shape = m->input;
    *n_params = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        fmnn_regularizer r = layer->regularizer;
        if ((unsigned)layer->activation > FMNN_TANH)
            return fmnn__layer_error(layer, FMNN_EINVAL, "unknown activation %d", (int)layer->activation);
        if (!(r.l1 >= 0.0f && r.l2 >= 0.0f && isfinite(r.l1) && isfinite(r.l2)))
            return fmnn__layer_error(layer, FMNN_EINVAL, "regularizer factors must be finite and >= 0, got l1 %g, l2 %g",
                                     (double)r.l1, (double)r.l2);
        if ((r.l1 != 0.0f || r.l2 != 0.0f) && !layer->ops->fuses_activation)
            return fmnn__layer_error(layer, FMNN_EINVAL, "has no kernel to regularize");
        layer->in = shape;
        int err = layer->ops->infer(layer);
        if (err)
            return err;
        if (layer->n_kernel > SIZE_MAX / 4 - *n_params - layer->n_bias)
            return fmnn__layer_error(layer, FMNN_ESHAPE, "too many parameters");
        for (int d = 0; d < layer->out.rank; d++)
            if (layer->out.dims[d] < 1)
                return fmnn__layer_error(layer, FMNN_ESHAPE, "output dimension %d is empty", d);
        if (fmnn__shape_size(&layer->out) > INT_MAX) /* layers count values in int */
            return fmnn__layer_error(layer, FMNN_ESHAPE, "output of %zu values per sample is too large",
                                     fmnn__shape_size(&layer->out));
        *n_params += layer->n_kernel + layer->n_bias;
        shape = layer->out;
    }
    return FMNN_OK;
}

FMNN_API int fmnn_model_compile(fmnn_model *m, fmnn_loss loss, const fmnn_optimizer *optimizer,
                                uint64_t seed)
{
    if (!m)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: model is NULL");
    if (m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_compile: the model is already compiled");
    if (m->n_layers == 0)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_compile: the model has no layers");
    if ((unsigned)loss > FMNN_LOSS_MSE)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: unknown loss %d", (int)loss);
    fmnn_optimizer opt = optimizer ? *optimizer : fmnn_adam();
    int err = fmnn__optimizer_check(&opt);
    if (err)
        return err;
    size_t n_params;
    if ((err = infer_shapes(m, &n_params)))
        return err;
    const fmnn_layer *last = m->layers[m->n_layers - 1];

    /* params, grads, Adam's m and v: four arrays in one block. */
    float *block = fmnn__alloc_array(n_params ? 4 * n_params : 4, sizeof(float), "the parameters");
    if (!block)
        return FMNN_ENOMEM;
    memset(block, 0, (n_params ? 4 * n_params : 4) * sizeof(float));
    m->params = block;
    m->grads = block + n_params;
    m->adam_m = block + 2 * n_params;
    m->adam_v = block + 3 * n_params;
    m->n_params = n_params;
    size_t at = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        layer->kernel = m->params + at;
        layer->kernel_grad = m->grads + at;
        at += layer->n_kernel;
        layer->bias = m->params + at;
        layer->bias_grad = m->grads + at;
        at += layer->n_bias;
    }
    m->loss = loss;
    m->optimizer = opt;
    m->step = 0;
    size_t out_size = fmnn__shape_size(&last->out);
    m->output_width = loss == FMNN_LOSS_MSE ? (int)out_size : last->out.dims[last->out.rank - 1];
    m->output_rows = (int)(out_size / (size_t)m->output_width);
    m->fusion = find_fusion(m);
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i]->activation_in_loss = 0;
    if (m->fusion == FUSE_ACTIVATION) /* the softmax moves into the loss */
        m->layers[m->n_layers - 1]->activation_in_loss = 1;
    plan_fusions(m);
    init_params(m, seed);
    m->compiled = 1;
    return FMNN_OK;
}

/* Rounds a float count up to whole cache lines, so every buffer in the
 * arena starts aligned. */
static size_t aligned_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

int fmnn__model_batch_limit(const fmnn_model *m)
{
    size_t largest = fmnn__shape_size(&m->input);
    for (int i = 0; i < m->n_layers; i++)
        if (fmnn__shape_size(&m->layers[i]->out) > largest)
            largest = fmnn__shape_size(&m->layers[i]->out);
    return (int)(INT_MAX / largest); /* compile keeps every size <= INT_MAX */
}

/* Images in one slice of a pipelined conv, at batch b. */
static size_t slice_of(const fmnn_layer *conv, size_t b)
{
    return (size_t)conv->pipeline_images < b ? (size_t)conv->pipeline_images : b;
}

int fmnn__model_plan(fmnn_model *m, int batch)
{
    if (batch <= m->capacity)
        return FMNN_OK;
    if (batch > fmnn__model_batch_limit(m))
        return fmnn__error(FMNN_ESHAPE, "a batch of %d samples is too large for this model: "
                           "at most %d fit in one pass", batch, fmnn__model_batch_limit(m));
    free_buffers(m);
    const size_t b = (size_t)batch;
    size_t total = 0, max_act = fmnn__shape_size(&m->input), work = 0, saved = 0;
    size_t out_size = fmnn__shape_size(&m->layers[m->n_layers - 1]->out);
    total += aligned_floats(b * fmnn__shape_size(&m->input));
    const fmnn_layer *pipeline_end = NULL;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        size_t size = fmnn__shape_size(&layer->out);
        if (layer->pipeline_into)
            pipeline_end = layer->pipeline_into;
        if (layer == pipeline_end)
            pipeline_end = NULL;
        /* A pipelined conv's output, and its gradient, live in one buffer
         * of a slice of images (train.c). */
        size_t held = pipeline_end ? slice_of(pipeline_end->bias_from, b) : b;
        if (!layer->passthrough)
            total += aligned_floats(held * size);
        if (size > max_act && !pipeline_end)
            max_act = size;
        size_t w = layer->ops->workspace ? layer->ops->workspace(layer, (int)held) : 0;
        if (w > work)
            work = w;
        if (layer->ops->saved)
            saved += (layer->ops->saved(layer, batch) + 63) & ~(size_t)63;
    }
    total += 2 * aligned_floats(b * max_act);          /* delta[0], delta[1] */
    total += aligned_floats(b * out_size);             /* targets */
    total += aligned_floats(work);
    if (m->fusion == FUSE_ACTIVATION)
        total += aligned_floats(b * out_size);         /* probs */

    m->arena = fmnn__alloc_array(total, sizeof(float), "the training buffers");
    m->acts = fmnn__alloc_array((size_t)m->n_layers + 1, sizeof *m->acts, "the activation list");
    m->saved = saved ? fmnn__alloc(saved, "the layers' saved state") : NULL;
    if (!m->arena || !m->acts || (saved && !m->saved)) {
        free_buffers(m);
        return FMNN_ENOMEM;
    }
    float *p = m->arena;
    m->acts[0] = p;
    p += aligned_floats(b * fmnn__shape_size(&m->input));
    unsigned char *s = m->saved;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        if (layer->passthrough) { /* same buffer, new shape */
            m->acts[i + 1] = m->acts[i];
        } else {
            m->acts[i + 1] = p;
            size_t held = layer->pipeline_into ? slice_of(layer, b) : b;
            p += aligned_floats(held * fmnn__shape_size(&layer->out));
        }
        layer->saved = NULL;
        if (layer->ops->saved) {
            layer->saved = s;
            s += (layer->ops->saved(layer, batch) + 63) & ~(size_t)63;
        }
    }
    m->delta[0] = p;
    p += aligned_floats(b * max_act);
    m->delta[1] = p;
    p += aligned_floats(b * max_act);
    m->targets = p;
    p += aligned_floats(b * out_size);
    m->workspace = p;
    p += aligned_floats(work);
    /* Where the model's answer is: FUSE_ACTIVATION leaves logits in the
     * last layer's output and needs a separate buffer for the softmax. */
    m->logits = m->fusion == FUSE_LAYER ? m->acts[m->n_layers - 1] : m->acts[m->n_layers];
    m->probs = m->acts[m->n_layers];
    if (m->fusion == FUSE_ACTIVATION)
        m->probs = p;
    m->capacity = batch;
    return FMNN_OK;
}

int fmnn__model_profile(fmnn_model *m, int enable)
{
    fmnn__free(m->profile_forward);
    m->profile_forward = m->profile_backward = NULL;
    if (!enable)
        return FMNN_OK;
    size_t n = m->n_layers > 0 ? (size_t)m->n_layers : 1;
    double *counters = fmnn__alloc_array(2 * n, sizeof *counters, "the profile counters");
    if (!counters)
        return FMNN_ENOMEM;
    for (size_t i = 0; i < 2 * n; i++)
        counters[i] = 0.0;
    m->profile_forward = counters;
    m->profile_backward = counters + n;
    return FMNN_OK;
}

/* ---- introspection --------------------------------------------------- */

FMNN_API int fmnn_model_layer_count(const fmnn_model *m)
{
    return m ? m->n_layers : 0;
}

FMNN_API const fmnn_layer *fmnn_model_layer(const fmnn_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

FMNN_API int fmnn_model_input_shape(const fmnn_model *m, int dims[FMNN_MAX_RANK])
{
    if (!m || !dims)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_input_shape: model or dims is NULL");
    for (int d = 0; d < FMNN_MAX_RANK; d++)
        dims[d] = d < m->input.rank ? m->input.dims[d] : 0;
    return m->input.rank;
}

FMNN_API int fmnn_model_output_shape(const fmnn_model *m, int i, int dims[FMNN_MAX_RANK])
{
    if (!m || !dims)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_output_shape: model or dims is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_output_shape: compile the model first");
    if (i == -1)
        i = m->n_layers - 1;
    if (i < 0 || i >= m->n_layers)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_output_shape: layer %d is not in 0..%d", i,
                           m->n_layers - 1);
    const fmnn_shape *s = &m->layers[i]->out;
    for (int d = 0; d < FMNN_MAX_RANK; d++)
        dims[d] = d < s->rank ? s->dims[d] : 0;
    return s->rank;
}

FMNN_API size_t fmnn_model_param_count(const fmnn_model *m)
{
    return m && m->compiled ? m->n_params : 0;
}

FMNN_API float *fmnn_model_weights(fmnn_model *m, size_t *count)
{
    if (count)
        *count = m && m->compiled ? m->n_params : 0;
    return m && m->compiled ? m->params : NULL;
}

/* 390054 -> "390,054" */
static void with_commas(size_t n, char *buf, size_t size)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < size)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

/* "1.49 MB", counting 4 bytes per float32 parameter, as Keras does. */
static void human_bytes(size_t params, char *buf, size_t size)
{
    double bytes = (double)params * 4.0;
    const char *unit[] = { "B", "KB", "MB", "GB" };
    int u = 0;
    while (bytes >= 1024.0 && u < 3) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.2f %s", bytes, unit[u]);
}

FMNN_API int fmnn_model_summary(const fmnn_model *m, FILE *out)
{
    if (!m || !out)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_summary: model or out is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_summary: compile the model first (shapes are inferred then)");
    const char *rule = "_______________________________________________________________________";
    const char *thick = "=======================================================================";
    char shape[64], params[32], size[32], name[80];
    fprintf(out, "Model: \"sequential\"\n%s\n", rule);
    fprintf(out, " %-33s %-24s %11s\n%s\n", "Layer (type)", "Output Shape", "Param #", thick);
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        snprintf(name, sizeof name, "%s (%s)", layer->name, layer->ops->type);
        fmnn__shape_format(&layer->out, shape, sizeof shape);
        with_commas(layer->n_kernel + layer->n_bias, params, sizeof params);
        fprintf(out, " %-33s %-24s %11s\n", name, shape, params);
        if (i + 1 < m->n_layers)
            fprintf(out, "\n");
    }
    with_commas(m->n_params, params, sizeof params);
    human_bytes(m->n_params, size, sizeof size);
    fprintf(out, "%s\nTotal params: %s (%s)\nTrainable params: %s (%s)\n"
                 "Non-trainable params: 0 (0.00 B)\n%s\n",
            thick, params, size, params, size, rule);
    return ferror(out) ? fmnn__error(FMNN_EIO, "fmnn_model_summary: writing failed") : FMNN_OK;
}
