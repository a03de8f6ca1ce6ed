/*
 * history.c - fmnn_history, Keras's history.history: one block of
 * per-epoch arrays (the loss, the learning rate, the validation loss,
 * then each metric and its validation form), filled by fit an epoch at a
 * time, and restored from a backup when a fit resumes (fit_state.c).
 */
#include "fit_state.h"

int fmnn__history_new(fmnn_history **out, const fmnn_model *m, int initial_epoch, int capacity, int has_validation)
{
    *out = NULL;
    fmnn_history *h = fmnn__alloc_zeroed(sizeof *h, "the history");
    const size_t n = capacity > 0 ? (size_t)capacity : 1, arrays = 3 + 2 * (size_t)m->n_metrics;
    float *values = fmnn__alloc_array(arrays * n, sizeof(float), "the history");
    if (!h || !values) {
        fmnn__free(h);
        fmnn__free(values);
        return FMNN_ENOMEM;
    }
    h->initial_epoch = initial_epoch;
    h->has_validation = has_validation;
    h->loss = values;
    h->learning_rate = values + n;
    h->val_loss = has_validation ? values + 2 * n : NULL;
    h->n_metrics = m->n_metrics;
    for (int k = 0; k < m->n_metrics; k++) {
        h->metric_names[k] = fmnn_model_metric_name(m, k);
        h->metrics[k] = values + (3 + 2 * (size_t)k) * n;
        h->val_metrics[k] = has_validation ? values + (4 + 2 * (size_t)k) * n : NULL;
    }
    const int at = fmnn__metric_accuracy_index(m);
    h->accuracy = at >= 0 ? h->metrics[at] : NULL;
    h->val_accuracy = at >= 0 ? h->val_metrics[at] : NULL;
    h->stopped_epoch = -1;
    *out = h;
    return FMNN_OK;
}

FMNN_API void fmnn_history_free(fmnn_history *h)
{
    if (!h)
        return;
    fmnn__free(h->loss); /* one block holds every array */
    fmnn__free(h);
}
