/*
 * adamw.c - AdamW (keras/src/optimizers/adamw.py): Adam whose decoupled
 * weight decay, the base optimizer's w -= w * weight_decay * lr before the
 * update, defaults to 0.004.  Keras refuses weight_decay=None for it; 0
 * is allowed, and makes it Adam.
 */
#include "optimizer_impl.h"
#include "optimizers/adam.h"

static const fmnn_field adamw_fields[] = {
    FMNN__ADAM_FIELDS,
};

const struct fmnn_optimizer_ops fmnn__adamw_optimizer = {
    .name = "AdamW",
    .settings = FMNN__FIELDS(adamw_fields),
    .n_slots = fmnn__adam_n_slots,
    .update = fmnn__adam_update,
    .check_state = fmnn__adam_check_state,
};

FMNN_API fmnn_optimizer fmnn_adamw(void)
{
    fmnn_optimizer o = fmnn_adam();
    o.kind = FMNN_OPTIMIZER_ADAMW;
    o.weight_decay = 0.004f; /* AdamW.__init__ */
    return o;
}
