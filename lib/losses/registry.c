/*
 * registry.c - every loss, by its fmnn_loss value.  A new loss is its
 * file in lib/losses/, one line here and its value at the end of
 * enum fmnn_loss (include/fmnn/model.h), which model files store.
 */
#include "loss_impl.h"

#define LOSS_TYPES(X)                                                  \
    X(FMNN_LOSS_CATEGORICAL_CROSSENTROPY, categorical_crossentropy)    \
    X(FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, sparse_categorical_crossentropy) \
    X(FMNN_LOSS_MSE, mean_squared_error)                               \
    X(FMNN_LOSS_BINARY_CROSSENTROPY, binary_crossentropy)              \
    X(FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS, categorical_crossentropy_from_logits) \
    X(FMNN_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY_FROM_LOGITS, sparse_categorical_crossentropy_from_logits) \
    X(FMNN_LOSS_BINARY_CROSSENTROPY_FROM_LOGITS, binary_crossentropy_from_logits) \
    X(FMNN_LOSS_MAE, mean_absolute_error)                              \
    X(FMNN_LOSS_HUBER, huber)

#define DECLARE(kind, name) extern const struct fmnn_loss_ops fmnn__##name##_loss;
LOSS_TYPES(DECLARE)

#define ENTRY(kind, name) [kind] = &fmnn__##name##_loss,
static const struct fmnn_loss_ops *const by_kind[] = { LOSS_TYPES(ENTRY) };

/* The values run 0..N-1, each once: a repeated one is a redefined
 * constant, and N distinct values whose largest is N-1 leave no gap. */
#define UNIQUE(kind, name) listed_##kind,
enum { LOSS_TYPES(UNIQUE) };
#define ONE(kind, name) +1
enum { LOSS_COUNT = 0 LOSS_TYPES(ONE) };
_Static_assert(sizeof by_kind / sizeof *by_kind == LOSS_COUNT, "loss values must be 0..N-1 with no gap");

const struct fmnn_loss_ops *fmnn__loss_type(fmnn_loss kind)
{
    return (unsigned)kind < LOSS_COUNT ? by_kind[kind] : NULL;
}
