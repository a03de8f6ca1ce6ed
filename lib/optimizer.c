/*
 * optimizer.c - what every optimizer shares: checking the settings, and
 * one update of all parameters that is refused whole when any new value
 * would not be finite.  The optimizers are in lib/optimizers/.
 */
#include <stdio.h>

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
    for (size_t i = 0; i < sizeof o->reserved / sizeof *o->reserved; i++)
        if (o->reserved[i] != 0.0f)
            return fmnn__error(FMNN_EINVAL, "%s: the optimizer's reserved[%zu] must be 0", fn, i);
    return FMNN_OK;
}

/* One pass over the parameters of the trainable layers: each run of
 * consecutive ones is one call (all of them at once when none is frozen). */
static int update_trainable(fmnn_model *m, int store)
{
    const struct fmnn_optimizer_ops *ops = m->optimizer_ops;
    float *slots[FMNN__MAX_SLOTS];
    int bad = 0;
    size_t at = 0;
    for (int i = 0; i < m->n_layers;) {
        for (; i < m->n_layers && m->layers[i]->frozen; i++) /* skip the frozen */
            at += m->layers[i]->n_kernel + m->layers[i]->n_bias;
        const size_t first = at;
        for (; i < m->n_layers && !m->layers[i]->frozen; i++)
            at += m->layers[i]->n_kernel + m->layers[i]->n_bias;
        if (at == first)
            continue;
        for (int k = 0; k < ops->n_slots; k++)
            slots[k] = m->slots[k] + first;
        bad |= ops->update(&m->optimizer, m->step, m->params + first, m->grads + first, slots, at - first, store);
    }
    return bad;
}

/*
 * Two passes over the parameters: the first only checks that every new
 * value would be finite, the second stores them.  So an update that would
 * overflow is refused whole, and the model keeps the weights of its last
 * good step (see fmnn_model_fit).
 */
int fmnn__optimizer_step(fmnn_model *m)
{
    if (update_trainable(m, 0))
        return FMNN_ENUMERIC;
    update_trainable(m, 1);
    m->step++;
    return FMNN_OK;
}
