/*
 * metric.c - the metrics a model reports (lib/metrics/ has each one):
 * choosing them, checking them against the loss, and accumulating them
 * over the batches of an epoch or an evaluation.
 */
#include <stdio.h>
#include <string.h>

#include "metric_impl.h"
#include "fit_state.h"

/* A model that never chose: accuracy with a cross-entropy loss (what the
 * library always reported), nothing for regression. */
static int default_metrics(const fmnn_model *m, fmnn_metric *out)
{
    if (m->loss == FMNN_LOSS_MSE || m->loss == FMNN_LOSS_MAE || m->loss == FMNN_LOSS_HUBER)
        return 0;
    out[0] = (fmnn_metric){ .kind = FMNN_METRIC_ACCURACY };
    return 1;
}

/* The history keys: Keras's name of each kind (its sparse form with a
 * sparse loss), with _1, _2... after a kind that came before, as Keras
 * names a second object of a class. */
static void name_metrics(fmnn_model *m)
{
    for (int i = 0; i < m->n_metrics; i++) {
        const struct fmnn_metric_ops *ops = fmnn__metric_type(m->metrics[i].kind);
        const char *name = m->loss_ops && m->loss_ops->sparse && ops->sparse_name ? ops->sparse_name : ops->name;
        int earlier = 0;
        for (int j = 0; j < i; j++)
            earlier += m->metrics[j].kind == m->metrics[i].kind;
        if (earlier)
            snprintf(m->metric_names[i], sizeof m->metric_names[i], "%s_%d", name, earlier);
        else
            snprintf(m->metric_names[i], sizeof m->metric_names[i], "%s", name);
    }
}

/* Checks the chosen metrics against the loss and output, and sizes their sums. */
static int resolve(fmnn_model *m, int count, const fmnn_metric *chosen, const char *fn)
{
    size_t sums = 0;
    char msg[200];
    for (int i = 0; i < count; i++) {
        const struct fmnn_metric_ops *ops = fmnn__metric_type(chosen[i].kind); /* a known kind */
        if (ops->check && ops->check(&chosen[i], m->loss_ops, m->output_width, msg, sizeof msg))
            return fmnn__error(FMNN_EINVAL, "%s: metric %d (%s) %s", fn, i, ops->name, msg);
        sums += ops->n_sums(&chosen[i]);
    }
    double *block = fmnn__alloc_array(2 * (sums ? sums : 1), sizeof *block, "the metrics");
    if (!block)
        return FMNN_ENOMEM;
    fmnn__free(m->metric_sums[0]);
    m->metric_sums[0] = block;
    m->metric_sums[1] = block + (sums ? sums : 1);
    m->n_metric_sums = sums;
    m->n_metrics = count;
    memmove(m->metrics, chosen, (size_t)count * sizeof *chosen);
    for (int i = 0; i < count; i++)
        m->metric_ops[i] = fmnn__metric_type(chosen[i].kind);
    name_metrics(m);
    return FMNN_OK;
}

int fmnn__metrics_prepare(fmnn_model *m, const char *fn)
{
    fmnn_metric defaults[1];
    if (!m->metrics_chosen)
        return resolve(m, default_metrics(m, defaults), defaults, fn);
    return resolve(m, m->n_metrics, m->metrics, fn);
}

FMNN_API int fmnn_model_set_metrics(fmnn_model *m, int count, const fmnn_metric *metrics)
{
    static const char fn[] = "fmnn_model_set_metrics";
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (m->in_fit)
        return fmnn__error(FMNN_ESTATE, "%s: not from inside fit (a callback)", fn);
    if (count < 0 || count > FMNN_MAX_METRICS)
        return fmnn__error(FMNN_EINVAL, "%s: count must be in 0..%d, got %d", fn, FMNN_MAX_METRICS, count);
    if (count > 0 && !metrics)
        return fmnn__error(FMNN_EINVAL, "%s: metrics is NULL", fn);
    fmnn_metric chosen[FMNN_MAX_METRICS];
    char msg[200];
    for (int i = 0; i < count; i++) {
        chosen[i] = fmnn__metric_defaults(metrics[i]);
        if (fmnn__metric_check_settings(&chosen[i], msg, sizeof msg))
            return fmnn__error(FMNN_EINVAL, "%s: metric %d: %s", fn, i, msg);
        for (int j = 0; j < i; j++)
            if (!memcmp(&chosen[i], &chosen[j], sizeof chosen[i]))
                return fmnn__error(FMNN_EINVAL, "%s: metric %d repeats metric %d (%s)", fn, i, j,
                                   fmnn__metric_type(chosen[i].kind)->name);
    }
    if (m->compiled) {
        int err = resolve(m, count, chosen, fn);
        if (err)
            return err;
        /* A saved fit's running sums were of the metrics before. */
        fmnn__fit_state_free(m->resume);
        m->resume = NULL;
    } else {
        memcpy(m->metrics, chosen, (size_t)count * sizeof *chosen);
        m->n_metrics = count;
        name_metrics(m);
    }
    m->metrics_chosen = 1;
    return FMNN_OK;
}

FMNN_API int fmnn_model_metric_count(const fmnn_model *m)
{
    return m ? m->n_metrics : 0;
}

FMNN_API const char *fmnn_model_metric_name(const fmnn_model *m, int i)
{
    if (!m || i < 0 || i >= m->n_metrics)
        return NULL;
    return m->metric_names[i];
}

int fmnn__metric_accuracy_index(const fmnn_model *m)
{
    for (int i = 0; i < m->n_metrics; i++)
        if (m->metrics[i].kind == FMNN_METRIC_ACCURACY)
            return i;
    return -1;
}

void fmnn__metrics_reset(fmnn_model *m, double *sums)
{
    memset(sums, 0, (m->n_metric_sums ? m->n_metric_sums : 1) * sizeof *sums);
}

void fmnn__metrics_update(fmnn_model *m, double *sums, int batch, const float *targets)
{
    const fmnn_shape *out = &m->layers[m->n_layers - 1]->out;
    const fmnn_metric_batch b = {
        .rows = { .rows = batch * m->output_rows, .width = m->output_width, .fused = m->fusion != FUSE_NONE,
                  .logits = m->buf.logits, .output = m->buf.probs, .target = targets },
        .loss = m->loss_ops,
        .last_dim = out->dims[out->rank - 1],
    };
    for (int i = 0; i < m->n_metrics; i++) {
        m->metric_ops[i]->update(&m->metrics[i], &b, sums);
        sums += m->metric_ops[i]->n_sums(&m->metrics[i]);
    }
}

void fmnn__metrics_results(const fmnn_model *m, const double *sums, float *out)
{
    for (int i = 0; i < m->n_metrics; i++) {
        out[i] = (float)m->metric_ops[i]->result(&m->metrics[i], sums);
        sums += m->metric_ops[i]->n_sums(&m->metrics[i]);
    }
}
