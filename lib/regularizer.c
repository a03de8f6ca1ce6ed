/*
 * regularizer.c - Keras's kernel regularizers: l1(a) adds a * sum|w| and
 * l2(b) adds b * sum w^2 (no factor 1/2) to the loss.  Biases are never
 * regularized, and neither are frozen layers' kernels: Keras 3 sums the
 * regularization of trainable weights only.
 */
#include <math.h>

#include "model_impl.h"

double fmnn__regularization_penalty(const fmnn_model *model)
{
    double penalty = 0.0;
    for (int i = 0; i < model->n_layers; i++) {
        const fmnn_layer *layer = model->layers[i];
        fmnn_regularizer r = layer->regularizer;
        if ((r.l1 == 0.0f && r.l2 == 0.0f) || layer->frozen)
            continue;
        double abs_sum = 0.0, square_sum = 0.0;
        for (size_t k = 0; k < layer->n_kernel; k++) {
            abs_sum += fabsf(layer->kernel[k]);
            square_sum += (double)layer->kernel[k] * layer->kernel[k];
        }
        penalty += r.l1 * abs_sum + r.l2 * square_sum;
    }
    return penalty;
}

void fmnn__regularization_gradient(fmnn_model *model)
{
    for (int i = 0; i < model->n_layers; i++) {
        fmnn_layer *layer = model->layers[i];
        const float l1 = layer->regularizer.l1, two_l2 = 2.0f * layer->regularizer.l2;
        if ((l1 == 0.0f && two_l2 == 0.0f) || layer->frozen)
            continue;
        const float *w = layer->kernel;
        float *g = layer->kernel_grad;
        size_t n = layer->n_kernel;
#pragma omp parallel num_threads(fmnn__threads()) if (n > 32768)
        {
            const unsigned fp = fmnn__flush_denormals();
#pragma omp for schedule(static)
            for (size_t k = 0; k < n; k++) {
                float sign = (w[k] > 0.0f) - (w[k] < 0.0f); /* sign(0) = 0, as in TensorFlow */
                g[k] += l1 * sign + two_l2 * w[k];
            }
            fmnn__restore_fp_mode(fp);
        }
    }
}
