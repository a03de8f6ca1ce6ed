/*
 * optimizer.c - what every optimizer shares, as Keras 3's base optimizer
 * (keras/src/optimizers/base_optimizer.py) runs it: checking the
 * settings; one update of all trainable variables that clips the
 * gradients, applies decoupled weight decay, runs the kind's update and
 * counts the iteration, refused whole when any new value would not be
 * finite; the state arrays; and replacing the optimizer of a compiled
 * model.  The optimizers are in lib/optimizers/, the schedules in
 * schedule.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

int fmnn__optimizer_check(const fmnn_optimizer *o, const char *fn)
{
    const struct fmnn_optimizer_ops *ops = fmnn__optimizer_type(o->kind);
    if (!ops)
        return fmnn__error(FMNN_EINVAL, "%s: unknown optimizer kind %d", fn, (int)o->kind);
    char msg[200];
    int err = fmnn__fields_check(&ops->settings, o, msg, sizeof msg);
    if (err)
        return fmnn__error(err, "%s: %s's %s", fn, ops->name, msg);
    /* A warm-up may start from 0, as CosineDecay(0.0, ..., warmup_target=...)
     * does; any other rate of 0 would never train. */
    const int warmup = o->schedule.kind == FMNN_SCHEDULE_COSINE_DECAY && o->schedule.warmup_steps > 0;
    if (o->learning_rate == 0.0f && !warmup)
        return fmnn__error(FMNN_EINVAL, "%s: %s's learning_rate must be > 0 (0 only to start a cosine warm-up), got 0",
                           fn, ops->name);
    /* BaseOptimizer.__init__ raises when more than one clip is set. */
    if ((o->clipnorm > 0.0f) + (o->clipvalue > 0.0f) + (o->global_clipnorm > 0.0f) > 1)
        return fmnn__error(FMNN_EINVAL,
                           "%s: %s: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                           "clipnorm %g, clipvalue %g, global_clipnorm %g", fn, ops->name, (double)o->clipnorm,
                           (double)o->clipvalue, (double)o->global_clipnorm);
    if (fmnn__schedule_check(o, msg, sizeof msg))
        return fmnn__error(FMNN_EINVAL, "%s: %s's %s", fn, ops->name, msg);
    for (size_t i = 0; i < sizeof o->reserved / sizeof *o->reserved; i++)
        if (o->reserved[i] != 0.0f)
            return fmnn__error(FMNN_EINVAL, "%s: the optimizer's reserved[%zu] must be 0", fn, i);
    return FMNN_OK;
}

/* ---- the state arrays ------------------------------------------------- */

int fmnn__slots_new(const fmnn_optimizer *o, size_t n_params, fmnn__slots *out)
{
    const struct fmnn_optimizer_ops *ops = fmnn__optimizer_type(o->kind);
    const int n_slots = ops->n_slots(o);
    memset(out, 0, sizeof *out);
    if (n_slots > 0 && n_params > SIZE_MAX / (size_t)n_slots)
        return fmnn__error(FMNN_ENOMEM, "out of memory: %s's state for %zu parameters", ops->name, n_params);
    const size_t total = (size_t)n_slots * n_params;
    float *block = fmnn__alloc_array(total ? total : 1, sizeof(float), "the optimizer's state");
    if (!block)
        return FMNN_ENOMEM;
    memset(block, 0, (total ? total : 1) * sizeof(float));
    out->block = block;
    out->count = n_slots;
    for (int k = 0; k < n_slots; k++)
        out->arrays[k] = block + (size_t)k * n_params;
    if (ops->init_slots)
        ops->init_slots(o, out->arrays, n_params);
    return FMNN_OK;
}

/* ---- one update --------------------------------------------------------- */

/* Sum of the squares, in double, in order: the same for any thread count. */
static double sum_squares(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return s;
}

/* The update of parameters [first, first + n), one variable with clipnorm. */
static int update_run(fmnn_model *m, fmnn__update *u, size_t first, size_t n, int store)
{
    if (n == 0)
        return 0;
    float *slots[FMNN__MAX_SLOTS] = { NULL };
    for (int k = 0; k < m->slots.count; k++)
        slots[k] = m->slots.arrays[k] + first;
    const float clipnorm = m->optimizer.clipnorm;
    if (clipnorm > 0.0f) {
        /* BaseOptimizer._clip_by_norm: values * clipnorm / max(l2norm, clipnorm),
         * each variable on its own (a comparison keeps a NaN norm's NaN values). */
        const float norm = (float)sqrt(sum_squares(m->grads + first, n));
        u->num = clipnorm;
        u->den = norm > clipnorm ? norm : clipnorm;
    }
    return m->optimizer_ops->update(u, m->params + first, m->grads + first, slots, n, store);
}

/* One pass over Keras's trainable variables (the kernel and the bias of
 * each layer not frozen).  Without clipnorm each run of consecutive
 * trainable layers is one call (all of them at once when none is frozen);
 * with it each variable is, for its own norm. */
static int update_trainable(fmnn_model *m, const fmnn__update *step, int store)
{
    fmnn__update u = *step;
    const int per_variable = m->optimizer.clipnorm > 0.0f;
    int bad = 0;
    size_t at = 0;
    for (int i = 0; i < m->n_layers;) {
        for (; i < m->n_layers && m->layers[i]->frozen; i++) /* skip the frozen */
            at += m->layers[i]->n_kernel + m->layers[i]->n_bias;
        const size_t first = at;
        for (; i < m->n_layers && !m->layers[i]->frozen; i++) {
            const fmnn_layer *layer = m->layers[i];
            if (per_variable) {
                bad |= update_run(m, &u, at, layer->n_kernel, store);
                bad |= update_run(m, &u, at + layer->n_kernel, layer->n_bias, store);
            }
            at += layer->n_kernel + layer->n_bias;
        }
        if (!per_variable)
            bad |= update_run(m, &u, first, at - first, store);
    }
    return bad;
}

/* clip_by_global_norm (base_optimizer.py): every trainable gradient scaled
 * by clip_norm * min(1 / norm, 1 / clip_norm), NaN when the norm is not
 * finite; the norm over the variables in model order. */
static float global_clip_scale(const fmnn_model *m)
{
    double sum = 0.0;
    size_t at = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const size_t n = m->layers[i]->n_kernel + m->layers[i]->n_bias;
        if (!m->layers[i]->frozen)
            sum += sum_squares(m->grads + at, n);
        at += n;
    }
    const float norm = (float)sqrt(sum), clip = m->optimizer.global_clipnorm;
    const float inv_norm = 1.0f / norm, inv_clip = 1.0f / clip;
    return clip * (inv_norm < inv_clip ? inv_norm : inv_clip) + (norm - norm);
}

/*
 * Two passes over the parameters: the first only checks that every new
 * value would be finite, the second stores them.  So an update that would
 * overflow is refused whole, and the model keeps the weights of its last
 * good step (see fmnn_model_fit).  Both passes clip and decay alike, as
 * BaseOptimizer._backend_apply_gradients: _clip_gradients, then
 * _apply_weight_decay and update_step at the learning rate of the
 * iteration count before its increment.
 */
int fmnn__optimizer_step(fmnn_model *m)
{
    const fmnn_optimizer *o = &m->optimizer;
    fmnn__update u = { o, m->step, fmnn__learning_rate_at(o, m->step), FMNN__CLIP_NONE, 1.0f, 1.0f, 0.0f };
    if (o->clipvalue > 0.0f) {
        u.clip = FMNN__CLIP_VALUE;
        u.value = o->clipvalue;
    } else if (o->global_clipnorm > 0.0f) {
        u.clip = FMNN__CLIP_RATIO;
        u.num = global_clip_scale(m);
    } else if (o->clipnorm > 0.0f) {
        u.clip = FMNN__CLIP_RATIO; /* num and den per variable, in update_run */
    }
    if (update_trainable(m, &u, 0))
        return FMNN_ENUMERIC;
    update_trainable(m, &u, 1);
    m->step++;
    return FMNN_OK;
}

/* ---- the optimizer of a compiled model ---------------------------------- */

/* Whether two settings of one kind keep the same state arrays in the same
 * order: RMSprop's second array is the momentum or the mean gradient. */
static int same_state(const fmnn_optimizer *a, const fmnn_optimizer *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case FMNN_OPTIMIZER_ADAM:
    case FMNN_OPTIMIZER_ADAMW:
        return (a->adam.amsgrad != 0) == (b->adam.amsgrad != 0);
    case FMNN_OPTIMIZER_RMSPROP:
        return (a->rmsprop.momentum > 0.0f) == (b->rmsprop.momentum > 0.0f) &&
               (a->rmsprop.centered != 0) == (b->rmsprop.centered != 0);
    default:
        return 1;
    }
}

FMNN_API int fmnn_model_set_optimizer(fmnn_model *m, const fmnn_optimizer *o)
{
    static const char fn[] = "fmnn_model_set_optimizer";
    if (!m || !o)
        return fmnn__error(FMNN_EINVAL, "%s: model or optimizer is NULL", fn);
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: compile the model first (fmnn_model_compile takes its first optimizer)",
                           fn);
    if (m->in_fit) /* its state arrays may be replaced */
        return fmnn__error(FMNN_ESTATE, "%s: not from inside fit (a callback); fmnn_model_set_learning_rate is", fn);
    int err = fmnn__optimizer_check(o, fn);
    if (err)
        return err;
    const struct fmnn_optimizer_ops *ops = fmnn__optimizer_type(o->kind);
    /* Keras keeps an optimizer's variables when its hyperparameters change;
     * an optimizer that needs other variables is a new one. */
    if (same_state(o, &m->optimizer)) {
        m->optimizer = *o;
        return FMNN_OK;
    }
    fmnn__slots fresh;
    if ((err = fmnn__slots_new(o, m->n_params, &fresh)))
        return err;
    fmnn__free(m->slots.block);
    m->slots = fresh;
    m->optimizer = *o;
    m->optimizer_ops = ops;
    m->step = 0;
    return FMNN_OK;
}

FMNN_API int fmnn_model_get_optimizer(const fmnn_model *m, fmnn_optimizer *out)
{
    if (!m || !out)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_get_optimizer: model or out is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_get_optimizer: the model is not compiled, so it has no optimizer");
    *out = m->optimizer;
    return FMNN_OK;
}

FMNN_API int fmnn_model_set_learning_rate(fmnn_model *m, float lr)
{
    static const char fn[] = "fmnn_model_set_learning_rate";
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: compile the model first", fn);
    /* BaseOptimizer.learning_rate's setter raises TypeError for a schedule. */
    if (m->optimizer.schedule.kind != FMNN_SCHEDULE_CONSTANT)
        return fmnn__error(FMNN_ESTATE,
                           "%s: the optimizer follows a learning-rate schedule, so its learning rate is not "
                           "settable (as in Keras); set a new optimizer with fmnn_model_set_optimizer", fn);
    if (!(isfinite(lr) && lr > 0.0f))
        return fmnn__error(FMNN_EINVAL, "%s: learning_rate must be finite and > 0, got %g", fn, (double)lr);
    m->optimizer.learning_rate = lr;
    return FMNN_OK;
}

FMNN_API int fmnn_model_learning_rate(const fmnn_model *m, float *out)
{
    if (!m || !out)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_learning_rate: model or out is NULL");
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "fmnn_model_learning_rate: the model is not compiled");
    *out = fmnn__learning_rate_at(&m->optimizer, m->step);
    return FMNN_OK;
}
