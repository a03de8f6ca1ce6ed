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

static void adam_step(fmnn_model *model)
{
    const fmnn_optimizer *o = &model->optimizer;
    const double t = (double)model->step;
    const float alpha = (float)(o->learning_rate * sqrt(1.0 - pow(o->beta_2, t)) /
                                (1.0 - pow(o->beta_1, t)));
    const float b1 = o->beta_1, b2 = o->beta_2, eps = o->epsilon;
    float *w = model->params, *m = model->adam_m, *v = model->adam_v;
    const float *g = model->grads;
    const size_t n = model->n_params;
#pragma omp parallel for num_threads(fmnn__threads()) schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        w[i] -= alpha * m[i] / (sqrtf(v[i]) + eps);
    }
}

/* keras.optimizers.SGD: velocity = momentum * velocity - lr * g; then
 * w += velocity (or, Nesterov, w += momentum * velocity - lr * g). */
static void sgd_step(fmnn_model *model)
{
    const fmnn_optimizer *o = &model->optimizer;
    const float lr = o->learning_rate, mu = o->momentum;
    float *w = model->params, *vel = model->adam_m;
    const float *g = model->grads;
    const size_t n = model->n_params;
#pragma omp parallel for num_threads(fmnn__threads()) schedule(static) if (n > 32768)
    for (size_t i = 0; i < n; i++) {
        if (mu == 0.0f) {
            w[i] -= lr * g[i];
            continue;
        }
        vel[i] = mu * vel[i] - lr * g[i];
        w[i] += o->nesterov ? mu * vel[i] - lr * g[i] : vel[i];
    }
}

void fmnn__optimizer_step(fmnn_model *model)
{
    model->step++;
    if (model->optimizer.kind == FMNN_OPTIMIZER_SGD)
        sgd_step(model);
    else
        adam_step(model);
}
