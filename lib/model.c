/*
 * model.c - building a Sequential model: add layers, compile (check every
 * option and shape, collate the parameters, initialise them, build the
 * execution plan), and print Keras's summary.
 *
 * The plan and its passes live in plan.c, training and inference in
 * train.c.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "distributed.h"
#include "fit_state.h"

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
    m->buf.training = 1;
    atomic_init(&m->handles, 1);
    atomic_init(&m->predicting, 0);
    atomic_init(&m->changing, 0);
    *out = m;
    return FMNN_OK;
}

FMNN_API void fmnn_model_free(fmnn_model *m)
{
    if (m)
        fmnn__model_release(m);
}

void fmnn__model_release(fmnn_model *m)
{
    /* acq_rel: the thread that frees sees everything the others wrote. */
    if (atomic_fetch_sub_explicit(&m->handles, 1, memory_order_acq_rel) > 1)
        return; /* an inference context still reads it */
    for (int i = 0; i < m->n_layers; i++)
        fmnn_layer_free(m->layers[i]);
    fmnn__free(m->layers);
    fmnn__free(m->params);
    fmnn__free(m->slots.block);
    fmnn__free(m->steps);
    fmnn__free(m->buf.profile_forward);
    fmnn__free(m->metric_sums[0]); /* one block holds both */
    fmnn__plan_free_buffers(&m->buf);
    fmnn__fit_state_free(m->resume);
    fmnn__group_free(m->group);
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

/* Each layer's initializer, in order, from one generator. */
static void init_params(fmnn_model *m, uint64_t seed)
{
    fmnn_rng rng;
    fmnn__rng_seed(&rng, seed);
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        if (layer->ops->init)
            layer->ops->init(layer, &rng);
        else
            fmnn__layer_init_default(layer, &rng);
    }
}

/* A layer's options, against its field table: one check for all types. */
static int check_options(const fmnn_layer *layer)
{
    char msg[200];
    int err = fmnn__fields_check(&layer->ops->config, layer, msg, sizeof msg);
    return err ? fmnn__layer_error(layer, err, "%s", msg) : FMNN_OK;
}

int fmnn__model_infer(fmnn_model *m, size_t *n_params, size_t *n_state)
{
    fmnn_shape shape = m->input;
    uint64_t params = 0, state = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        int err = check_options(layer);
        if (err)
            return err;
        layer->in = shape;
        layer->n_kernel = layer->n_bias = layer->n_state = 0;
        layer->fan_in = layer->fan_out = 0;
        if ((err = layer->ops->infer(layer)))
            return err;
        for (int d = 0; d < layer->out.rank; d++)
            if (layer->out.dims[d] < 1)
                return fmnn__layer_error(layer, FMNN_ESHAPE, "output dimension %d is empty", d);
        if (fmnn__shape_size(&layer->out) > INT_MAX) /* layers count values in int */
            return fmnn__layer_error(layer, FMNN_ESHAPE, "output of %zu values per sample is too large",
                                     fmnn__shape_size(&layer->out));
        /* Each count is below 2^62 (an int times an int times ...), so the sums cannot wrap. */
        params += (uint64_t)layer->n_kernel + layer->n_bias;
        state += layer->n_state;
        if (params > FMNN__MAX_PARAMS || state > FMNN__MAX_PARAMS)
            return fmnn__layer_error(layer, FMNN_ESHAPE, "too many parameters: more than 2^60 in the model");
        shape = layer->out;
    }
    *n_params = (size_t)params;
    *n_state = (size_t)state;
    return FMNN_OK;
}

/* One block for the parameters, their gradients and the non-trainable
 * state (with room for fit's copy of it), another for the optimizer's
 * state; each layer's views into them. */
static int collate(fmnn_model *m, size_t n_params, size_t n_state)
{
    const size_t arrays = 2;
    if (n_params > (SIZE_MAX / sizeof(float) - 2 * n_state - 1) / arrays)
        return fmnn__error(FMNN_ENOMEM, "fmnn_model_compile: %zu parameters do not fit in memory", n_params);
    const size_t total = arrays * n_params + 2 * n_state; /* the state and its copy */
    float *block = fmnn__alloc_array(total ? total : 1, sizeof(float), "the parameters");
    if (!block)
        return FMNN_ENOMEM;
    int err = fmnn__slots_new(&m->optimizer, n_params, &m->slots);
    if (err) {
        fmnn__free(block);
        return err;
    }
    memset(block, 0, (total ? total : 1) * sizeof(float));
    m->n_params = n_params;
    m->params = block;
    m->grads = block + n_params;
    m->n_state = n_state;
    m->state = block + arrays * n_params;
    m->state_before = m->state + n_state;
    size_t at = 0, at_state = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fmnn_layer *layer = m->layers[i];
        layer->kernel = m->params + at;
        layer->kernel_grad = m->grads + at;
        at += layer->n_kernel;
        layer->bias = m->params + at;
        layer->bias_grad = m->grads + at;
        at += layer->n_bias;
        layer->state = m->state + at_state;
        at_state += layer->n_state;
    }
    return FMNN_OK;
}

FMNN_API int fmnn_model_compile(fmnn_model *m, fmnn_loss loss, const fmnn_optimizer *optimizer,
                                uint64_t seed)
{
    return fmnn__model_compile(m, loss, optimizer, seed, 0);
}

int fmnn__model_compile(fmnn_model *m, fmnn_loss loss, const fmnn_optimizer *optimizer, uint64_t seed,
                        int from_file)
{
    static const char fn[] = "fmnn_model_compile";
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (m->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: the model is already compiled", fn);
    if (m->n_layers == 0)
        return fmnn__error(FMNN_ESTATE, "%s: the model has no layers", fn);
    const struct fmnn_loss_ops *loss_ops = fmnn__loss_type(loss);
    if (!loss_ops)
        return fmnn__error(FMNN_EINVAL, "%s: unknown loss %d", fn, (int)loss);
    fmnn_optimizer opt = optimizer ? *optimizer : fmnn_adam();
    int err = fmnn__optimizer_check(&opt, fn);
    if (err)
        return err;
    size_t n_params, n_state;
    if ((err = fmnn__model_infer(m, &n_params, &n_state)))
        return err;
    const fmnn_layer *last = m->layers[m->n_layers - 1];
    if (!from_file && loss_ops->requires != FMNN_LINEAR && fmnn__own_activation(last) != loss_ops->requires)
        return fmnn__error(FMNN_EINVAL,
                           "%s: %s needs a model that ends in a softmax, but the last layer, %s (%s), does not; "
                           "for a model that outputs logits use the loss's _FROM_LOGITS form", fn, loss_ops->name,
                           last->name, last->ops->type);
    m->loss = loss;
    m->loss_ops = loss_ops;
    m->optimizer = opt;
    m->optimizer_ops = fmnn__optimizer_type(opt.kind);
    m->step = 0;
    size_t out_size = fmnn__shape_size(&last->out);
    m->output_width = loss_ops->whole_output ? (int)out_size : last->out.dims[last->out.rank - 1];
    m->output_rows = (int)(out_size / (size_t)m->output_width);
    m->epochs_trained = m->steps_trained = 0;
    if ((err = fmnn__metrics_prepare(m, fn)))
        return err;
    /* The plan needs only the shapes and the loss; the parameters come
     * last, so that a failure leaves no views into freed memory. */
    if ((err = fmnn__plan_build(m)) || (err = collate(m, n_params, n_state)))
        return err;
    init_params(m, seed);
    m->compiled = 1;
    return FMNN_OK;
}

int fmnn__model_batch_limit(const fmnn_model *m)
{
    size_t largest = fmnn__shape_size(&m->input);
    for (int i = 0; i < m->n_layers; i++)
        if (fmnn__shape_size(&m->layers[i]->out) > largest)
            largest = fmnn__shape_size(&m->layers[i]->out);
    return (int)(INT_MAX / largest); /* compile keeps every size <= INT_MAX */
}

int fmnn__model_profile(fmnn_model *m, int enable)
{
    fmnn__free(m->buf.profile_forward);
    m->buf.profile_forward = m->buf.profile_backward = NULL;
    if (!enable)
        return FMNN_OK;
    size_t n = m->n_layers > 0 ? (size_t)m->n_layers : 1;
    double *counters = fmnn__alloc_array(2 * n, sizeof *counters, "the profile counters");
    if (!counters)
        return FMNN_ENOMEM;
    for (size_t i = 0; i < 2 * n; i++)
        counters[i] = 0.0;
    m->buf.profile_forward = counters;
    m->buf.profile_backward = counters + n;
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

/* Layer i of a compiled model, or an error naming fn. */
static int compiled_layer(const fmnn_model *m, int i, const char *fn, fmnn_layer **out)
{
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: compile the model first", fn);
    if (i < 0 || i >= m->n_layers)
        return fmnn__error(FMNN_EINVAL, "%s: layer %d is not in 0..%d", fn, i, m->n_layers - 1);
    *out = m->layers[i];
    return FMNN_OK;
}

FMNN_API int fmnn_model_get_layer_weights(fmnn_model *m, int i, fmnn_layer_weights *out)
{
    static const char fn[] = "fmnn_model_get_layer_weights";
    fmnn_layer *layer = NULL;
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = (fmnn_layer_weights){ NULL, 0, NULL, 0, NULL, 0 };
    int err = compiled_layer(m, i, fn, &layer);
    if (err)
        return err;
    *out = (fmnn_layer_weights){ layer->n_kernel ? layer->kernel : NULL, layer->n_kernel,
                                 layer->n_bias ? layer->bias : NULL, layer->n_bias,
                                 layer->n_state ? layer->state : NULL, layer->n_state };
    return FMNN_OK;
}

FMNN_API int fmnn_model_set_layer_trainable(fmnn_model *m, int i, int trainable)
{
    if (!m)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_set_layer_trainable: model is NULL");
    if (m->in_fit)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_set_layer_trainable: not from inside fit (a callback)");
    if (i < 0 || i >= m->n_layers)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_set_layer_trainable: layer %d is not in 0..%d", i,
                           m->n_layers - 1);
    return fmnn_layer_set_trainable(m->layers[i], trainable);
}

/* Checks one array of set_layer_weights: its count, and finite values. */
static int check_array(const fmnn_layer *layer, const char *what, const float *v, size_t count, size_t want,
                       const char *fn)
{
    if (!v)
        return FMNN_OK;
    if (count != want)
        return fmnn__error(FMNN_ESHAPE, "%s: %s (%s) has %zu %s values, not %zu", fn, layer->name, layer->ops->type,
                           want, what, count);
    for (size_t k = 0; k < count; k++)
        if (!isfinite(v[k]))
            return fmnn__error(FMNN_ENUMERIC, "%s: %s value %zu for %s is NaN or Inf", fn, what, k, layer->name);
    return FMNN_OK;
}

FMNN_API int fmnn_model_set_layer_weights(fmnn_model *m, int i, const fmnn_layer_weights *w)
{
    static const char fn[] = "fmnn_model_set_layer_weights";
    fmnn_layer *layer = NULL;
    int err = compiled_layer(m, i, fn, &layer);
    if (err)
        return err;
    if (!w)
        return fmnn__error(FMNN_EINVAL, "%s: the weights are NULL", fn);
    if ((err = check_array(layer, "kernel", w->kernel, w->kernel_count, layer->n_kernel, fn)) ||
        (err = check_array(layer, "bias", w->bias, w->bias_count, layer->n_bias, fn)) ||
        (err = check_array(layer, "state", w->state, w->state_count, layer->n_state, fn)))
        return err;
    char msg[200];
    if (w->state && layer->ops->check_state && layer->ops->check_state(layer, w->state, msg, sizeof msg))
        return fmnn__error(FMNN_EINVAL, "%s: %s (%s): %s", fn, layer->name, layer->ops->type, msg);
    if ((err = fmnn__model_change_begin(m, fn)))
        return err;
    if (w->kernel)
        memcpy(layer->kernel, w->kernel, layer->n_kernel * sizeof *layer->kernel);
    if (w->bias)
        memcpy(layer->bias, w->bias, layer->n_bias * sizeof *layer->bias);
    if (w->state)
        memcpy(layer->state, w->state, layer->n_state * sizeof *layer->state);
    fmnn__model_change_end(m);
    return FMNN_OK;
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
        with_commas(layer->n_kernel + layer->n_bias + layer->n_state, params, sizeof params);
        fprintf(out, " %-33s %-24s %11s\n", name, shape, params);
        if (i + 1 < m->n_layers)
            fprintf(out, "\n");
    }
    /* Non-trainable: every layer's state, and a frozen layer's parameters. */
    size_t n_trainable = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (!m->layers[i]->frozen)
            n_trainable += m->layers[i]->n_kernel + m->layers[i]->n_bias;
    const size_t n_frozen = m->n_params + m->n_state - n_trainable;
    char trainable[32], trainable_size[32], frozen[32], frozen_size[32];
    with_commas(m->n_params + m->n_state, params, sizeof params);
    human_bytes(m->n_params + m->n_state, size, sizeof size);
    with_commas(n_trainable, trainable, sizeof trainable);
    human_bytes(n_trainable, trainable_size, sizeof trainable_size);
    with_commas(n_frozen, frozen, sizeof frozen);
    human_bytes(n_frozen, frozen_size, sizeof frozen_size);
    fprintf(out, "%s\nTotal params: %s (%s)\nTrainable params: %s (%s)\nNon-trainable params: %s (%s)\n%s\n",
            thick, params, size, trainable, trainable_size, frozen, frozen_size, rule);
    return ferror(out) ? fmnn__error(FMNN_EIO, "fmnn_model_summary: writing failed") : FMNN_OK;
}
