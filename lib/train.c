/*
 * train.c - one training step, and everything that runs the model over
 * data besides fit's loop (fit.c): evaluate, predict and the *_on_batch
 * calls of Keras.
 *
 * One training step, as Keras runs it:
 *   gather the batch -> forward (training) -> loss and its gradient ->
 *   backward through the layers -> regularization -> optimizer update.
 * Every buffer was sized by fmnn__plan_buffers before the loop starts, so
 * the step itself never allocates.
 */
#include <math.h>
#include <string.h>

#include "train.h"
#include "tensor_impl.h"

/* ---- checking what the caller passed --------------------------------- */

int fmnn__check_x(const fmnn_model *m, const fmnn_tensor *x, const char *fn)
{
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (!x)
        return fmnn__error(FMNN_EINVAL, "%s: x is NULL", fn);
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: call fmnn_model_compile first", fn);
    int same = x->rank == m->input.rank + 1;
    for (int d = 0; same && d < m->input.rank; d++)
        same = x->dims[d + 1] == m->input.dims[d];
    if (!same) {
        char want[64], got[64];
        fmnn__shape_format(&m->input, want, sizeof want);
        fmnn__dims_format(x->dims, x->rank, got, sizeof got);
        return fmnn__error(FMNN_ESHAPE, "%s: x has shape %s but the model takes %s", fn, got, want);
    }
    for (size_t i = 0; i < x->size; i++)
        if (!isfinite(x->data[i]))
            return fmnn__error(FMNN_ENUMERIC, "%s: x holds NaN or Inf (sample %zu)", fn,
                               i / (x->size / (size_t)x->dims[0]));
    return FMNN_OK;
}

int fmnn__check_y(const fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const char *fn)
{
    if (!y)
        return fmnn__error(FMNN_EINVAL, "%s: y is NULL", fn);
    if (y->dims[0] != x->dims[0])
        return fmnn__error(FMNN_ESHAPE, "%s: x has %d samples but y has %d", fn, x->dims[0], y->dims[0]);
    int want = m->output_rows * (m->loss_ops->sparse ? 1 : m->output_width);
    int width = (int)(y->size / (size_t)y->dims[0]);
    if (width != want) {
        const fmnn_layer *last = m->layers[m->n_layers - 1];
        if (m->loss_ops->sparse)
            return fmnn__error(FMNN_ESHAPE, "%s: %s takes one class index per %s, %d per sample, but y has %d",
                               fn, m->loss_ops->name, m->output_rows > 1 ? "output position" : "sample", want, width);
        const int one_hot = m->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY ||
                            m->loss == FMNN_LOSS_CATEGORICAL_CROSSENTROPY_FROM_LOGITS;
        return fmnn__error(FMNN_ESHAPE, "%s: y has %d value%s per sample, but the model's output, from %s (%s), has %d%s",
                           fn, width, width == 1 ? "" : "s", last->name, last->ops->type, want,
                           one_hot && width == m->output_rows ? "; for class indices rather than one-hot rows, use "
                                                                "the sparse form of the loss" : "");
    }
    return m->loss_ops->check_targets(y->data, y->size, m->output_width, fn);
}

int fmnn__check_weights(const fmnn_tensor *x, const fmnn_tensor *w, const char *what, const char *fn)
{
    if (!w)
        return FMNN_OK;
    if (w->dims[0] != x->dims[0] || w->size != (size_t)w->dims[0])
        return fmnn__error(FMNN_ESHAPE, "%s: %s must hold one weight per sample, (%d), but has %zu values", fn,
                           what, x->dims[0], w->size);
    for (size_t i = 0; i < w->size; i++)
        if (!(w->data[i] >= 0.0f) || !isfinite(w->data[i]))
            return fmnn__error(FMNN_EINVAL, "%s: %s[%zu] = %g is not a finite weight >= 0", fn, what, i,
                               (double)w->data[i]);
    return FMNN_OK;
}

/* ---- one batch ------------------------------------------------------- */

double fmnn__model_loss(fmnn_model *m, int batch, int total, const float *targets, const float *weights,
                        int with_grad)
{
    const struct fmnn_loss_ops *ops = m->loss_ops;
    const fmnn_loss_rows b = {
        .rows = batch * m->output_rows,
        .width = m->output_width,
        .fused = m->fusion != FUSE_NONE,
        .logits = m->buf.logits,
        .output = m->buf.probs,
        .target = targets,
    };
    const float scale = 1.0f / (float)(total * m->output_rows); /* the gradient of the mean */
    double sum = 0.0;
    /* Rows in order: the sum must not depend on the thread count. */
    for (int row = 0; row < b.rows; row++) {
        float *grad = with_grad ? m->buf.delta[0] + (size_t)row * b.width : NULL;
        if (!weights) {
            sum += ops->row(&b, row, grad, scale);
            continue;
        }
        /* Keras's sum_over_batch_size: sum(w * loss) / rows. */
        const float w = weights[row / m->output_rows];
        sum += (double)w * ops->row(&b, row, grad, scale * w);
    }
    return sum;
}

void fmnn__gather(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const float *weights, const int *order,
                  int first, int count)
{
    size_t x_width = x->size / (size_t)x->dims[0], y_width = y->size / (size_t)y->dims[0];
    for (int k = 0; k < count; k++) {
        const size_t i = order ? (size_t)order[first + k] : (size_t)(first + k);
        memcpy(m->buf.acts[0] + (size_t)k * x_width, x->data + i * x_width, x_width * sizeof(float));
        memcpy(m->buf.targets + (size_t)k * y_width, y->data + i * y_width, y_width * sizeof(float));
        m->buf.weights[k] = weights ? weights[i] : 1.0f;
    }
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* With a collective: the batch's loss and metrics, and its moving
 * statistics, summed over the processes.  The statistics are where all
 * began plus each process's move, weighted by its share of the batch
 * (their mean over the batch's samples), so that values no process moved
 * (frozen, or not moved by training) stay exactly as they were.  sums
 * (n_sums doubles) holds this process's on entry, the total on return. */
static int sum_forward(fmnn_model *m, fmnn__slice slice, double *sums, size_t n_sums)
{
    int err = fmnn__sum(m, sums, n_sums, FMNN_COLLECTIVE_FLOAT64, "the loss and metrics");
    if (!err && m->n_state > 0) {
        const float share = (float)slice.count / (float)slice.total;
        for (size_t i = 0; i < m->n_state; i++)
            m->state[i] = slice.count > 0 ? (m->state[i] - m->state_before[i]) * share : 0.0f;
        err = fmnn__sum(m, m->state, m->n_state, FMNN_COLLECTIVE_FLOAT32, "the moving statistics");
        for (size_t i = 0; i < m->n_state; i++)
            m->state[i] += m->state_before[i];
    }
    return err;
}

int fmnn__train_step(fmnn_model *m, fmnn__slice slice, uint64_t seed, int weighted, double *sums, double *loss,
                     fmnn_bad_step *bad)
{
    fmnn_buffers *buf = &m->buf;
    fmnn_pass pass = { .training = 1, .batch = slice.count, .shard = slice.first };
    pass.seed = fmnn__mix64(seed * 0x9e3779b97f4a7c15ULL + (uint64_t)m->steps_trained + 1);
    const float *weights = weighted ? buf->weights : NULL;
    fmnn__group *group = m->group;
    const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
    /* The forward pass moves the moving statistics: keep the last good
     * ones, to restore if this step goes wrong. */
    memcpy(m->state_before, m->state, m->n_state * sizeof *m->state);
    double loss_sum = 0.0;
    if (slice.count > 0) {
        fmnn__plan_forward(m, buf, &pass, buf->acts[0]);
        loss_sum = fmnn__model_loss(m, slice.count, slice.total, buf->targets, weights, 1);
    }
    int err = FMNN_OK;
    if (group) { /* [0] the loss, then the metrics' sums: this batch's only */
        double *step = group->sums;
        memset(step, 0, (1 + m->n_metric_sums) * sizeof *step);
        step[0] = loss_sum;
        if (sums && slice.count > 0)
            fmnn__metrics_update(m, step + 1, slice.count, buf->targets);
        err = sum_forward(m, slice, step, 1 + m->n_metric_sums);
        loss_sum = step[0];
    }
    const int rows = slice.total * m->output_rows;
    double batch_loss = loss_sum / rows + fmnn__regularization_penalty(m);
    /* Checked as the float it is reported as; and an update that would
     * overflow a weight or a moving statistic is refused, so the model
     * stays as the last good step left it.  (With a collective, every
     * process sees the same sums, so all refuse the same steps.) */
    const int bad_loss = !err && !isfinite((float)batch_loss);
    const int bad_state = !err && !bad_loss && !all_finite(m->state, m->n_state);
    if (!err && !bad_loss && !bad_state) {
        if (sums && group)
            for (size_t i = 0; i < m->n_metric_sums; i++)
                sums[i] += group->sums[1 + i];
        else if (sums)
            fmnn__metrics_update(m, sums, slice.count, buf->targets);
        if (slice.count > 0)
            fmnn__plan_backward(m, buf, &pass, buf->acts[0]);
        else
            memset(m->grads, 0, m->n_params * sizeof *m->grads);
        err = fmnn__sum(m, m->grads, m->n_params, FMNN_COLLECTIVE_FLOAT32, "the gradients");
        if (!err)
            fmnn__regularization_gradient(m);
    }
    const int bad_update = !err && !bad_loss && !bad_state && fmnn__optimizer_step(m) != FMNN_OK;
    fmnn__restore_fp_mode(fp);
    *loss = batch_loss;
    if (err || bad_loss || bad_state || bad_update) {
        memcpy(m->state, m->state_before, m->n_state * sizeof *m->state);
        if (err)
            return err;
        bad->what = bad_loss ? "loss" : bad_state ? "moving statistics" : "update";
        bad->value = bad_loss && isnan(batch_loss) ? "NaN" : bad_loss ? "Inf" : "NaN or Inf";
        return FMNN_ENUMERIC;
    }
    m->steps_trained++;
    return FMNN_OK;
}

/* Batches for inference: never more than buf holds (or 64 samples when
 * it holds fewer, outside fit), so memory stays bounded whatever
 * batch_size the caller asks for; fewer for huge samples. */
int fmnn__inference_chunk(const fmnn_model *m, const fmnn_buffers *buf, int batch_size)
{
    /* Inside fit (its validation, a callback's evaluate or predict) the
     * buffers fit sized are kept: no reallocation under the training
     * loop.  (in_fit is read for the model's own buffers only: a context's
     * thread must not read what another thread's fit writes.) */
    const int keep = buf == &m->buf && m->in_fit;
    int limit = keep || buf->capacity > 64 ? buf->capacity : 64;
    if (limit > fmnn__model_batch_limit(m))
        limit = fmnn__model_batch_limit(m);
    return batch_size < limit ? batch_size : limit;
}

int fmnn__measure(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const float *weights, int first,
                  int count, int batch_size, float *loss_out, float *metrics_out)
{
    int chunk = fmnn__inference_chunk(m, &m->buf, batch_size);
    int err = fmnn__plan_buffers(m, &m->buf, chunk);
    if (!err)
        err = fmnn__group_reserve(m, 1 + m->n_metric_sums);
    if ((err = fmnn__agree(m, err)))
        return err;
    size_t x_width = x->size / (size_t)x->dims[0], y_width = y->size / (size_t)y->dims[0];
    fmnn_pass pass = { .training = 0 };
    double total = 0.0, *sums = m->metric_sums[1];
    fmnn__metrics_reset(m, sums);
    /* This process's share of the samples (all of them when alone). */
    const fmnn__slice share = fmnn__slice_of(m, count);
    const int end = first + share.first + share.count;
    const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
    for (int start = first + share.first; start < end; start += chunk) {
        pass.batch = end - start < chunk ? end - start : chunk;
        fmnn__plan_forward(m, &m->buf, &pass, x->data + (size_t)start * x_width);
        const float *targets = y->data + (size_t)start * y_width, *w = weights ? weights + start : NULL;
        total += fmnn__model_loss(m, pass.batch, pass.batch, targets, w, 0);
        fmnn__metrics_update(m, sums, pass.batch, targets);
    }
    if (m->group) { /* the shares' sums added up */
        double *all = m->group->sums;
        all[0] = total;
        memcpy(all + 1, sums, m->n_metric_sums * sizeof *sums);
        if ((err = fmnn__sum(m, all, 1 + m->n_metric_sums, FMNN_COLLECTIVE_FLOAT64, "the loss and metrics"))) {
            fmnn__restore_fp_mode(fp);
            return err;
        }
        total = all[0];
        memcpy(sums, all + 1, m->n_metric_sums * sizeof *sums);
    }
    const double rows = (double)count * m->output_rows;
    const double penalty = fmnn__regularization_penalty(m);
    fmnn__restore_fp_mode(fp);
    if (loss_out)
        *loss_out = (float)(total / rows + penalty);
    if (metrics_out)
        fmnn__metrics_results(m, sums, metrics_out);
    return FMNN_OK;
}

/* ---- evaluate and predict ---------------------------------------------- */

/* The checks evaluate and test_on_batch share. */
static int check_labelled(const fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const fmnn_tensor *w,
                          const char *fn)
{
    int err = fmnn__check_x(m, x, fn);
    if (!err)
        err = fmnn__check_y(m, x, y, fn);
    if (!err)
        err = fmnn__check_weights(x, w, "sample_weight", fn);
    return err;
}

/* With a collective: that every process evaluates the same model on as
 * many samples (each measures its share of them). */
static int check_evaluation(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *w, const char *fn)
{
    const fmnn__same what[] = {
        { "the sample count", x->dims[0], 0 },
        { "sample_weight's presence", w != NULL, 0 },
    };
    return fmnn__group_check(m, what, (int)(sizeof what / sizeof *what), fn);
}

FMNN_API int fmnn_model_evaluate_metrics(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                                         const fmnn_tensor *sample_weight, int batch_size, float *values)
{
    static const char fn[] = "fmnn_model_evaluate_metrics";
    int err = check_labelled(m, x, y, sample_weight, fn);
    if (!err && !values)
        err = fmnn__error(FMNN_EINVAL, "%s: values is NULL", fn);
    if (!err && batch_size < 0)
        err = fmnn__error(FMNN_EINVAL, "%s: batch_size must be >= 0, got %d", fn, batch_size);
    if ((err = fmnn__agree(m, err)) || (err = check_evaluation(m, x, sample_weight, fn)))
        return err;
    return fmnn__measure(m, x, y, sample_weight ? sample_weight->data : NULL, 0, x->dims[0],
                         batch_size ? batch_size : 32, &values[0], values + 1);
}

FMNN_API int fmnn_model_evaluate(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                                 int batch_size, float *loss_out, float *accuracy_out)
{
    static const char fn[] = "fmnn_model_evaluate";
    int err = check_labelled(m, x, y, NULL, fn);
    if (!err && batch_size < 0)
        err = fmnn__error(FMNN_EINVAL, "%s: batch_size must be >= 0, got %d", fn, batch_size);
    if ((err = fmnn__agree(m, err)) || (err = check_evaluation(m, x, NULL, fn)))
        return err;
    float metrics[FMNN_MAX_METRICS];
    if ((err = fmnn__measure(m, x, y, NULL, 0, x->dims[0], batch_size ? batch_size : 32, loss_out, metrics)))
        return err;
    const int at = fmnn__metric_accuracy_index(m);
    if (accuracy_out)
        *accuracy_out = at >= 0 ? metrics[at] : NAN;
    return FMNN_OK;
}

int fmnn__output_dims(const fmnn_model *m, int n, int dims[FMNN_MAX_RANK], int *rank, const char *fn)
{
    const fmnn_shape *shape = &m->layers[m->n_layers - 1]->out;
    if (shape->rank + 1 > FMNN_MAX_RANK)
        return fmnn__error(FMNN_ESHAPE, "%s: the output has rank %d, too many for a tensor", fn, shape->rank);
    dims[0] = n;
    memcpy(dims + 1, shape->dims, (size_t)shape->rank * sizeof(int));
    *rank = shape->rank + 1;
    return FMNN_OK;
}

int fmnn__predict(const fmnn_model *m, fmnn_buffers *buf, const fmnn_tensor *x, int chunk, fmnn_tensor *into,
                  fmnn_tensor **out, const char *fn)
{
    int err = fmnn__plan_buffers(m, buf, chunk);
    if (err)
        return err;
    if (!into) {
        int dims[FMNN_MAX_RANK], rank = 0;
        if ((err = fmnn__output_dims(m, x->dims[0], dims, &rank, fn)) || (err = fmnn_tensor_new(&into, rank, dims)))
            return err;
    }
    const size_t x_width = x->size / (size_t)x->dims[0];
    const size_t out_width = fmnn__shape_size(&m->layers[m->n_layers - 1]->out);
    fmnn_pass pass = { .training = 0 };
    const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
    for (int start = 0; start < x->dims[0]; start += chunk) {
        pass.batch = x->dims[0] - start < chunk ? x->dims[0] - start : chunk;
        fmnn__plan_forward(m, buf, &pass, x->data + (size_t)start * x_width);
        memcpy(into->data + (size_t)start * out_width, buf->probs, (size_t)pass.batch * out_width * sizeof(float));
    }
    fmnn__restore_fp_mode(fp);
    if (out)
        *out = into;
    return FMNN_OK;
}

FMNN_API int fmnn_model_predict(fmnn_model *m, const fmnn_tensor *x, int batch_size, fmnn_tensor **out)
{
    static const char fn[] = "fmnn_model_predict";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    int err = fmnn__check_x(m, x, fn);
    if (err)
        return err;
    if (batch_size < 0)
        return fmnn__error(FMNN_EINVAL, "%s: batch_size must be >= 0, got %d", fn, batch_size);
    return fmnn__predict(m, &m->buf, x, fmnn__inference_chunk(m, &m->buf, batch_size ? batch_size : 32), NULL, out,
                         fn);
}

/* ---- Keras's *_on_batch ------------------------------------------------- */

/* A whole tensor as one batch: no more samples than a batch may hold. */
static int one_batch(const fmnn_model *m, const fmnn_tensor *x, const char *fn)
{
    const int limit = fmnn__model_batch_limit(m);
    if (x->dims[0] > limit)
        return fmnn__error(FMNN_EINVAL, "%s: x holds %d samples, more than one batch of this model may (%d)", fn,
                           x->dims[0], limit);
    return FMNN_OK;
}

/* With a collective: that every process trains the same model on the
 * same batch, and, the first time since the collective was set, rank 0's
 * model everywhere (as fit starts with). */
static int share_for_batches(fmnn_model *m, int n, uint64_t seed, int weighted, const char *fn)
{
    const fmnn__same what[] = {
        { "the batch's sample count", n, 0 },
        { "seed", (int64_t)seed, 0 },
        { "sample_weight's presence", weighted, 0 },
    };
    int err = fmnn__group_check(m, what, (int)(sizeof what / sizeof *what), fn);
    if (!err && m->group && !m->group->shared)
        err = fmnn__group_share_model(m);
    return err;
}

FMNN_API int fmnn_model_train_on_batch(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                                       const fmnn_tensor *sample_weight, uint64_t seed, float *values)
{
    static const char fn[] = "fmnn_model_train_on_batch";
    int err = check_labelled(m, x, y, sample_weight, fn);
    if (!err)
        err = one_batch(m, x, fn);
    if (!err && m->in_fit)
        err = fmnn__error(FMNN_ESTATE, "%s: not from inside fit (a callback)", fn);
    if (!err && (m->step >= FMNN__MAX_STEPS - 1 || m->steps_trained >= FMNN__MAX_STEPS - 1))
        err = fmnn__error(FMNN_EINVAL, "%s: the model is at step 2^62, as far as a model file can hold", fn);
    const int n = err ? 0 : x->dims[0];
    if (!err && !(err = fmnn__plan_buffers(m, &m->buf, n > m->buf.capacity ? n : m->buf.capacity)))
        err = fmnn__group_reserve(m, 1 + m->n_metric_sums);
    if (!err)
        err = fmnn__model_change_begin(m, fn);
    const int changing = !err;
    if (!(err = fmnn__agree(m, err)))
        err = share_for_batches(m, n, seed, sample_weight != NULL, fn);
    if (err) {
        if (changing)
            fmnn__model_change_end(m);
        return err;
    }
    /* With a collective, x is the global batch: this process runs its share. */
    const fmnn__slice slice = fmnn__slice_of(m, n);
    fmnn__gather(m, x, y, sample_weight ? sample_weight->data : NULL, NULL, slice.first, slice.count);
    double *sums = m->metric_sums[1], loss;
    fmnn__metrics_reset(m, sums);
    fmnn_bad_step bad;
    err = fmnn__train_step(m, slice, seed, sample_weight != NULL, sums, &loss, &bad);
    fmnn__model_change_end(m);
    if (err == FMNN_ENUMERIC)
        return fmnn__error(err, "%s: the %s became %s; the weights are those before this batch", fn, bad.what,
                           bad.value);
    if (err)
        return err;
    if (values) {
        values[0] = (float)loss;
        fmnn__metrics_results(m, sums, values + 1);
    }
    return FMNN_OK;
}

FMNN_API int fmnn_model_test_on_batch(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                                      const fmnn_tensor *sample_weight, float *values)
{
    static const char fn[] = "fmnn_model_test_on_batch";
    int err = check_labelled(m, x, y, sample_weight, fn);
    if (!err)
        err = one_batch(m, x, fn);
    if (!err && !values)
        err = fmnn__error(FMNN_EINVAL, "%s: values is NULL", fn);
    if ((err = fmnn__agree(m, err)) || (err = check_evaluation(m, x, sample_weight, fn)))
        return err;
    return fmnn__measure(m, x, y, sample_weight ? sample_weight->data : NULL, 0, x->dims[0], x->dims[0], &values[0],
                         values + 1);
}

FMNN_API int fmnn_model_predict_on_batch(fmnn_model *m, const fmnn_tensor *x, fmnn_tensor **out)
{
    static const char fn[] = "fmnn_model_predict_on_batch";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    int err = fmnn__check_x(m, x, fn);
    if (!err)
        err = one_batch(m, x, fn);
    return err ? err : fmnn__predict(m, &m->buf, x, x->dims[0], NULL, out, fn);
}

FMNN_API int fmnn_model_trained(const fmnn_model *m, int64_t *epochs, int64_t *steps)
{
    if (!m)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_trained: model is NULL");
    if (epochs)
        *epochs = m->epochs_trained;
    if (steps)
        *steps = m->steps_trained;
    return FMNN_OK;
}
