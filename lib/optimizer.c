/*
 * optimizer.c - Adam and SGD, updating every parameter of the model in
 * one loop over the collated arrays.
 *
 * Adam follows Keras exactly: epsilon is added to sqrt(v) of the
 * uncorrected v, and the bias corrections are folded into the step size
 *     alpha_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t).
 */
#include <math.h>

#include "model_impl.h"

FMNN_API fmnn_optimizer fmnn_adam(void)
{
    fmnn_optimizer o = { FMNN_OPTIMIZER_ADAM, 1e-3f, 0.9f, 0.999f, 1e-7f, 0.0f, 0 };
    return o;
}

FMNN_API fmnn_optimizer fmnn_sgd(float learning_rate, float momentum)
{
    fmnn_optimizer o = { FMNN_OPTIMIZER_SGD, learning_rate, 0.0f, 0.0f, 0.0f, momentum, 0 };
    return o;
}

int fmnn__optimizer_check(const fmnn_optimizer *o)
{
    if (!(o->learning_rate > 0.0f) || !isfinite(o->learning_rate))
        return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: learning_rate must be > 0, got %g",
                           (double)o->learning_rate);
    switch (o->kind) {
    case FMNN_OPTIMIZER_ADAM:
        if (!(o->beta_1 >= 0.0f && o->beta_1 < 1.0f) || !(o->beta_2 >= 0.0f && o->beta_2 < 1.0f))
            return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: Adam's betas must be in [0, 1), got %g and %g",
                               (double)o->beta_1, (double)o->beta_2);
        if (!(o->epsilon >= 0.0f))
            return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: Adam's epsilon must be >= 0");
        return FMNN_OK;
    case FMNN_OPTIMIZER_SGD:
        if (!(o->momentum >= 0.0f && o->momentum < 1.0f))
            return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: SGD momentum must be in [0, 1), got %g",
                               (double)o->momentum);
        return FMNN_OK;
    }
    return fmnn__error(FMNN_EINVAL, "fmnn_model_compile: unknown optimizer kind %d", (int)o->kind);
}

/*
 * Each optimizer runs its loop twice over the parameters: first only to
 * check that every new value would be finite, then to store them.  An
 * update that would overflow is refused whole, so the model keeps the
 * weights of its last good step (see fmnn_model_fit).
 */
typedef struct adam_step_size {
    float alpha, b1, b2, eps;
} adam_step_size;

static inline int adam_update(const adam_step_size *k, float *w, float g, float *m, float *v, int store)
{
    float m2 = k->b1 * *m + (1.0f - k->b1) * g;
    float v2 = k->b2 * *v + (1.0f - k->b2) * g * g;
    float w2 = *w - k->alpha * m2 / (sqrtf(v2) + k->eps);
    if (store) {
        *m = m2;
        *v = v2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(v2) || !isfinite(m2);
}

static int adam_pass(fmnn_model *model, int store)
{
    const fmnn_optimizer *o = &model->optimizer;
    const double t = (double)model->step + 1.0;
    const adam_step_size k = {
        (float)(o->learning_rate * sqrt(1.0 - pow(o->beta_2, t)) / (1.0 - pow(o->beta_1, t))),
        o->beta_1, o->beta_2, o->epsilon
    };
    float *w = model->params, *m = model->adam_m, *v = model->adam_v;
    const float *g = model->grads;
    const size_t n = model->n_params;
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= adam_update(&k, &w[i], g[i], &m[i], &v[i], store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

/* keras.optimizers.SGD: velocity = momentum * velocity - lr * g; then
 * w += velocity (or, Nesterov, w += momentum * velocity - lr * g). */
static inline int sgd_update(const fmnn_optimizer *o, float *w, float g, float *vel, int store)
{
    float vel2 = o->momentum * *vel - o->learning_rate * g;
    float w2 = o->momentum == 0.0f ? *w - o->learning_rate * g
             : o->nesterov ? *w + o->momentum * vel2 - o->learning_rate * g
                           : *w + vel2;
    if (store) {
        *vel = o->momentum == 0.0f ? *vel : vel2;
        *w = w2;
    }
    return !isfinite(w2) || !isfinite(vel2);
}

static int sgd_pass(fmnn_model *model, int store)
{
    const fmnn_optimizer o = model->optimizer;
    float *w = model->params, *vel = model->adam_m;
    const float *g = model->grads;
    const size_t n = model->n_params;
    int bad = 0;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
    {
        const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static) reduction(| : bad)
        for (size_t i = 0; i < n; i++)
            bad |= sgd_update(&o, &w[i], g[i], &vel[i], store);
        fmnn__restore_fp_mode(fp);
    }
    return bad;
}

int fmnn__optimizer_step(fmnn_model *model)
{
    int (*pass)(fmnn_model *, int) = model->optimizer.kind == FMNN_OPTIMIZER_SGD ? sgd_pass : adam_pass;
    if (pass(model, 0))
        return FMNN_ENUMERIC;
    pass(model, 1);
    model->step++;
    return FMNN_OK;
}
