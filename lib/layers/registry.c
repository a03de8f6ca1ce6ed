/*
 * registry.c - every layer type the library has, by its code in model
 * files.  A new layer is its file in lib/layers/, one line here and its
 * public constructor.  Never change or reuse a code: a file written with
 * it would load as another layer.
 */
#include "layer_impl.h"

#define LAYER_TYPES(X)    \
    X(1, dense)           \
    X(2, conv2d)          \
    X(3, maxpool2d)       \
    X(4, dropout)         \
    X(5, activation)      \
    X(6, flatten)         \
    X(7, batch_normalization) \
    X(8, average_pooling2d) \
    X(9, global_average_pooling2d) \
    X(10, global_max_pooling2d) \
    X(11, zero_padding2d) \
    X(12, reshape)        \
    X(13, leaky_relu)     \
    X(14, rescaling)      \
    X(15, normalization)  \
    X(16, random_flip)    \
    X(17, random_translation) \
    X(18, random_rotation) \
    X(19, random_zoom)    \
    X(20, random_contrast) \
    /* the next code goes above */

#define DECLARE(code, name) extern const struct fmnn_layer_ops fmnn__##name##_ops;
LAYER_TYPES(DECLARE)

#define ENTRY(code, name) [code] = &fmnn__##name##_ops,
static const struct fmnn_layer_ops *const by_code[] = { LAYER_TYPES(ENTRY) };

/* The codes run 1..N, each once: a repeated code is a redefined
 * constant, and N distinct codes whose largest is N leave no gap. */
#define UNIQUE(code, name) layer_code_##code,
enum { LAYER_TYPES(UNIQUE) };
#define ONE(code, name) +1
enum { LAYER_COUNT = 0 LAYER_TYPES(ONE) };
_Static_assert(sizeof by_code / sizeof *by_code == LAYER_COUNT + 1, "layer codes must be 1..N with no gap");

const struct fmnn_layer_ops *fmnn__layer_type(uint32_t code)
{
    return code >= 1 && code <= LAYER_COUNT ? by_code[code] : NULL;
}

uint32_t fmnn__layer_code(const struct fmnn_layer_ops *ops)
{
    for (uint32_t code = 1; code <= LAYER_COUNT; code++)
        if (by_code[code] == ops)
            return code;
    return 0; /* not registered: a test's own layer */
}
