/*
 * registry.c - every optimizer, by its fmnn_optimizer_kind.  A new
 * optimizer is its file in lib/optimizers/ (its field table ending in
 * FMNN__COMMON_FIELDS), one line here, its kind at the end of enum
 * fmnn_optimizer_kind, its settings struct in the union of fmnn_optimizer
 * and its constructor (include/fmnn/model.h).
 */
#include "optimizer_impl.h"

#define OPTIMIZER_TYPES(X)            \
    X(FMNN_OPTIMIZER_ADAM, adam)       \
    X(FMNN_OPTIMIZER_SGD, sgd)         \
    X(FMNN_OPTIMIZER_RMSPROP, rmsprop) \
    X(FMNN_OPTIMIZER_ADAGRAD, adagrad) \
    X(FMNN_OPTIMIZER_ADAMW, adamw)

#define DECLARE(kind, name) extern const struct fmnn_optimizer_ops fmnn__##name##_optimizer;
OPTIMIZER_TYPES(DECLARE)

#define ENTRY(kind, name) [kind] = &fmnn__##name##_optimizer,
static const struct fmnn_optimizer_ops *const by_kind[] = { OPTIMIZER_TYPES(ENTRY) };

/* The kinds run 0..N-1, each once: a repeated one is a redefined
 * constant, and N distinct kinds whose largest is N-1 leave no gap. */
#define UNIQUE(kind, name) listed_##kind,
enum { OPTIMIZER_TYPES(UNIQUE) };
#define ONE(kind, name) +1
enum { OPTIMIZER_COUNT = 0 OPTIMIZER_TYPES(ONE) };
_Static_assert(sizeof by_kind / sizeof *by_kind == OPTIMIZER_COUNT, "optimizer kinds must be 0..N-1 with no gap");

const struct fmnn_optimizer_ops *fmnn__optimizer_type(fmnn_optimizer_kind kind)
{
    return (unsigned)kind < OPTIMIZER_COUNT ? by_kind[kind] : NULL;
}
