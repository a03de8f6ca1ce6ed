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

/*
 * Two passes over the parameters: the first only checks that every new
 * value would be finite, the second stores them.  So an update that would
 * overflow is refused whole, and the model keeps the weights of its last
 * good step (see fmnn_model_fit).
 */
int fmnn__optimizer_step(fmnn_model *m)
{
    const struct fmnn_optimizer_ops *ops = m->optimizer_ops;
    if (ops->update(&m->optimizer, m->step, m->params, m->grads, m->slots, m->n_params, 0))
        return FMNN_ENUMERIC;
    ops->update(&m->optimizer, m->step, m->params, m->grads, m->slots, m->n_params, 1);
    m->step++;
    return FMNN_OK;
}
