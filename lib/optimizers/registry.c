/*
 * registry.c - every optimizer, by its fmnn_optimizer_kind.  A new
 * optimizer is its file in lib/optimizers/, one line here, its kind at the
 * end of enum fmnn_optimizer_kind, its settings struct in the union of
 * fmnn_optimizer and its constructor (include/fmnn/model.h).
 */
#include "optimizer_impl.h"

#define OPTIMIZER_TYPES(X)      \
    X(FMNN_OPTIMIZER_ADAM, adam) \
    X(FMNN_OPTIMIZER_SGD, sgd)

#define DECLARE(kind, name) extern const struct fmnn_optimizer_ops fmnn__##name##_optimizer;
OPTIMIZER_TYPES(DECLARE)

#define ENTRY(kind, name) [kind] = &fmnn__##name##_optimizer,
static const struct fmnn_optimizer_ops *const by_kind[] = { OPTIMIZER_TYPES(ENTRY) };

/* The kinds run 0..N-1, each once (as for the layer codes). */
#define ONE(kind, name) +1
#define VALUE(kind, name) +(kind)
enum { OPTIMIZER_COUNT = 0 OPTIMIZER_TYPES(ONE) };
_Static_assert(sizeof by_kind / sizeof *by_kind == OPTIMIZER_COUNT, "optimizer kinds must be 0..N-1 with no gap");
_Static_assert(0 OPTIMIZER_TYPES(VALUE) == OPTIMIZER_COUNT * (OPTIMIZER_COUNT - 1) / 2, "each kind once");

const struct fmnn_optimizer_ops *fmnn__optimizer_type(fmnn_optimizer_kind kind)
{
    return (unsigned)kind < OPTIMIZER_COUNT ? by_kind[kind] : NULL;
}
