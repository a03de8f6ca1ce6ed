/* adam.h - Adam's update and settings, which AdamW shares (adam.c, adamw.c). */
#ifndef FMNN_OPTIMIZERS_ADAM_H
#define FMNN_OPTIMIZERS_ADAM_H

#include "optimizer_impl.h"

FMNN_INTERNAL int fmnn__adam_update(const fmnn__update *u, float *w, const float *g, float *const *slots, size_t n,
                                    int store);
FMNN_INTERNAL int fmnn__adam_n_slots(const fmnn_optimizer *o);
FMNN_INTERNAL int fmnn__adam_check_state(const fmnn_optimizer *o, float *const *slots, size_t n, char *msg,
                                         size_t size);

/* Adam's and AdamW's settings, in the order model files keep them:
 * amsgrad came after the others, then the common ones. */
#define FMNN__ADAM_FIELDS                                                                          \
    FMNN__LEARNING_RATE_FIELD,                                                                     \
    FMNN__UNIT_FIELD(adam.beta_1, "beta_1"),                                                       \
    FMNN__UNIT_FIELD(adam.beta_2, "beta_2"),                                                       \
    FMNN__FLOAT(fmnn_optimizer, adam.epsilon, "epsilon", 0.0, HUGE_VAL, 0, 0, 0.0), /* >= 0 */      \
    FMNN__SWITCH_FIELD(adam.amsgrad, "amsgrad"),                                                   \
    FMNN__COMMON_FIELDS

#endif
