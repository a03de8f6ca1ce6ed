/*
 * optimizer_impl.h - what an optimizer is to the library: one const table
 * per kind (lib/optimizers/), listed in lib/optimizers/registry.c by its
 * fmnn_optimizer_kind, and what every kind shares: the gradient clipping
 * and decoupled weight decay of Keras's base optimizer (optimizer.c) and
 * the learning-rate schedules (schedule.c).
 */
#ifndef FMNN_OPTIMIZER_IMPL_H
#define FMNN_OPTIMIZER_IMPL_H

#include <limits.h>

#include "config.h"
#include "internal.h"

/* The most state arrays an optimizer keeps, each one float per parameter
 * (Adam with amsgrad, RMSprop with momentum and centered: 3). */
#define FMNN__MAX_SLOTS 3

/* How a gradient is clipped before the update (Keras's
 * BaseOptimizer._clip_gradients). */
typedef enum fmnn__clip {
    FMNN__CLIP_NONE = 0,
    FMNN__CLIP_RATIO, /* g * num / den: clipnorm and global_clipnorm */
    FMNN__CLIP_VALUE  /* g in [-value, value]: clipvalue */
} fmnn__clip;

/* What one update call is given besides the arrays: the settings, and
 * what optimizer.c worked out for this step and this run of variables. */
typedef struct fmnn__update {
    const fmnn_optimizer *o;
    int64_t step;        /* iterations done before this one (0 for the first) */
    float lr;            /* the learning rate at `step` (the schedule's value) */
    fmnn__clip clip;
    float num, den;      /* FMNN__CLIP_RATIO */
    float value;         /* FMNN__CLIP_VALUE */
} fmnn__update;

/* The gradient after clipping.  Comparisons, not fminf/fmaxf, so that a
 * NaN gradient stays NaN and the update is refused. */
static inline float fmnn__clipped(const fmnn__update *u, float g)
{
    switch (u->clip) {
    case FMNN__CLIP_RATIO:
        return g * u->num / u->den; /* Keras: values * clip_norm / max(norm, clip_norm) */
    case FMNN__CLIP_VALUE:
        return g < -u->value ? -u->value : g > u->value ? u->value : g;
    default:
        return g;
    }
}

/* The weight after decoupled weight decay (BaseOptimizer._apply_weight_decay:
 * variable - variable * wd * lr), which the kind's update then starts from. */
static inline float fmnn__decayed(const fmnn__update *u, float w)
{
    return u->o->weight_decay != 0.0f ? w - w * u->o->weight_decay * u->lr : w;
}

/* An optimizer's state: `count` arrays of one float per parameter, in one block. */
typedef struct fmnn__slots {
    float *block;
    float *arrays[FMNN__MAX_SLOTS]; /* NULL past count */
    int count;
} fmnn__slots;

struct fmnn_optimizer_ops {
    const char *name;       /* as Keras names it: "Adam" */
    /* Its settings in fmnn_optimizer, learning_rate first, then its own,
     * then FMNN__COMMON_FIELDS, in the order model files keep them:
     * checked at compile. */
    fmnn_fields settings;

    /* The state arrays the settings call for, at most FMNN__MAX_SLOTS
     * (Adam's m and v, and v_hat with amsgrad; SGD's velocity). */
    int (*n_slots)(const fmnn_optimizer *o);

    /* Sets fresh state; NULL means all zeros (the slots already are). */
    void (*init_slots)(const fmnn_optimizer *o, float *const *slots, size_t n);

    /*
     * One pass over the n parameters w with gradients g.  Each value first
     * goes through fmnn__clipped and fmnn__decayed.  With store 0 it only
     * computes: it returns nonzero when any new weight or state value
     * would not be finite, so that fmnn__optimizer_step can refuse the
     * update whole.  With store 1 it writes them.  Same result for any
     * thread count.
     */
    int (*update)(const fmnn__update *u, float *w, const float *g, float *const *slots, size_t n, int store);

    /* Checks state read from a model file (Adam's v is never negative);
     * fills msg and returns nonzero when it is impossible.  May be NULL. */
    int (*check_state)(const fmnn_optimizer *o, float *const *slots, size_t n, char *msg, size_t size);
};

/* The optimizer of a kind, or NULL (lib/optimizers/registry.c). */
FMNN_INTERNAL const struct fmnn_optimizer_ops *fmnn__optimizer_type(fmnn_optimizer_kind kind);

/* Checks settings for compile and fmnn_model_set_optimizer: a known kind,
 * its fields in range, at most one clip, the schedule, zero reserved
 * fields.  Errors name fn and the optimizer. */
FMNN_INTERNAL int fmnn__optimizer_check(const fmnn_optimizer *o, const char *fn);

/* Allocates fresh state for o over n_params parameters: zeros, or what the
 * kind's init_slots sets. */
FMNN_INTERNAL int fmnn__slots_new(const fmnn_optimizer *o, size_t n_params, fmnn__slots *out);

/* The schedule's own rules beyond its fields' ranges (schedule.c): fills
 * msg and returns nonzero when they are broken. */
FMNN_INTERNAL int fmnn__schedule_check(const fmnn_optimizer *o, char *msg, size_t size);

/* The learning rate at iteration `step` (schedule.c). */
FMNN_INTERNAL float fmnn__learning_rate_at(const fmnn_optimizer *o, int64_t step);

/* The learning rate, first in every optimizer's settings: finite and
 * >= 0 here, > 0 unless a cosine warm-up starts from 0
 * (fmnn__optimizer_check). */
#define FMNN__LEARNING_RATE_FIELD \
    FMNN__FLOAT(fmnn_optimizer, learning_rate, "learning_rate", 0.0, HUGE_VAL, 0, 1, 0.0)

/* A setting in [0, 1): betas, momentum. */
#define FMNN__UNIT_FIELD(member, name) FMNN__FLOAT(fmnn_optimizer, member, name, 0.0, 1.0, 0, 1, 0.0)
/* A finite setting >= 0: epsilon, the clips, weight decay. */
#define FMNN__NONNEGATIVE_FIELD(member, name) FMNN__FLOAT(fmnn_optimizer, member, name, 0.0, HUGE_VAL, 0, 1, 0.0)
/* A switch: 0 or 1. */
#define FMNN__SWITCH_FIELD(member, name) FMNN__INT(fmnn_optimizer, member, name, 0, 1, 0)

#define FMNN__BOUNDARY_FIELD(i) \
    FMNN__INT(fmnn_optimizer, schedule.boundaries[i], "schedule.boundaries[" #i "]", 0, INT_MAX, 0)
#define FMNN__VALUE_FIELD(i) \
    FMNN__NONNEGATIVE_FIELD(schedule.values[i], "schedule.values[" #i "]")

/*
 * The settings every kind shares, at the end of each kind's table: Keras's
 * base optimizer's weight_decay and clips, then the schedule.  Each falls
 * back to 0 (no decay, no clip, a constant rate) for files written before
 * they existed.
 */
#define FMNN__COMMON_FIELDS                                                                          \
    FMNN__NONNEGATIVE_FIELD(weight_decay, "weight_decay"),                                           \
    FMNN__NONNEGATIVE_FIELD(clipnorm, "clipnorm"),                                                   \
    FMNN__NONNEGATIVE_FIELD(clipvalue, "clipvalue"),                                                 \
    FMNN__NONNEGATIVE_FIELD(global_clipnorm, "global_clipnorm"),                                     \
    FMNN__CHOICE(fmnn_optimizer, schedule.kind, "schedule.kind", FMNN_SCHEDULE_CONSTANT,             \
                 FMNN_SCHEDULE_INVERSE_TIME_DECAY),                                                  \
    FMNN__INT(fmnn_optimizer, schedule.decay_steps, "schedule.decay_steps", 0, INT_MAX, 0),          \
    FMNN__NONNEGATIVE_FIELD(schedule.decay_rate, "schedule.decay_rate"),                             \
    FMNN__SWITCH_FIELD(schedule.staircase, "schedule.staircase"),                                    \
    FMNN__FLOAT(fmnn_optimizer, schedule.alpha, "schedule.alpha", 0.0, 1.0, 0, 0, 0.0),              \
    FMNN__INT(fmnn_optimizer, schedule.warmup_steps, "schedule.warmup_steps", 0, INT_MAX, 0),        \
    FMNN__NONNEGATIVE_FIELD(schedule.warmup_target, "schedule.warmup_target"),                       \
    FMNN__INT(fmnn_optimizer, schedule.n_boundaries, "schedule.n_boundaries", 0, FMNN_MAX_BOUNDARIES, 0), \
    FMNN__BOUNDARY_FIELD(0), FMNN__BOUNDARY_FIELD(1), FMNN__BOUNDARY_FIELD(2), FMNN__BOUNDARY_FIELD(3), \
    FMNN__BOUNDARY_FIELD(4), FMNN__BOUNDARY_FIELD(5), FMNN__BOUNDARY_FIELD(6), FMNN__BOUNDARY_FIELD(7), \
    FMNN__BOUNDARY_FIELD(8), FMNN__BOUNDARY_FIELD(9), FMNN__BOUNDARY_FIELD(10), FMNN__BOUNDARY_FIELD(11), \
    FMNN__BOUNDARY_FIELD(12), FMNN__BOUNDARY_FIELD(13), FMNN__BOUNDARY_FIELD(14), FMNN__BOUNDARY_FIELD(15), \
    FMNN__VALUE_FIELD(0), FMNN__VALUE_FIELD(1), FMNN__VALUE_FIELD(2), FMNN__VALUE_FIELD(3),          \
    FMNN__VALUE_FIELD(4), FMNN__VALUE_FIELD(5), FMNN__VALUE_FIELD(6), FMNN__VALUE_FIELD(7),          \
    FMNN__VALUE_FIELD(8), FMNN__VALUE_FIELD(9), FMNN__VALUE_FIELD(10), FMNN__VALUE_FIELD(11),        \
    FMNN__VALUE_FIELD(12), FMNN__VALUE_FIELD(13), FMNN__VALUE_FIELD(14), FMNN__VALUE_FIELD(15),      \
    FMNN__VALUE_FIELD(16)
_Static_assert(FMNN_MAX_BOUNDARIES == 16, "FMNN__COMMON_FIELDS lists 16 boundaries and 17 values");

#endif /* FMNN_OPTIMIZER_IMPL_H */
