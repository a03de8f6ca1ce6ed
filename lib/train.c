/*
 * train.c - fit, evaluate and predict.
 *
 * One training step, as Keras runs it:
 *   gather the batch -> forward (training) -> loss and its gradient ->
 *   backward through the layers -> regularization -> optimizer update.
 * Every buffer was sized by fmnn__plan_buffers before the loop starts, so
 * the loop itself never allocates.
 */
#include <math.h>
#include <string.h>

#include "model_impl.h"
#include "progress.h"
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
        char want[64], got[64] = "(";
        fmnn__shape_format(&m->input, want, sizeof want);
        for (int d = 0; d < x->rank; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), d ? ", %d" : "%d", x->dims[d]);
        strncat(got, ")", sizeof got - strlen(got) - 1);
        return fmnn__error(FMNN_ESHAPE, "%s: x has shape %s but the model takes %s", fn, got, want);
    }
    for (size_t i = 0; i < x->size; i++)
        if (!isfinite(x->data[i]))
            return fmnn__error(FMNN_ENUMERIC, "%s: x holds NaN or Inf (sample %zu)", fn,
                               i / (x->size / (size_t)x->dims[0]));
    return FMNN_OK;
}

static int check_y(const fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const char *fn)
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

/* ---- one batch ------------------------------------------------------- */

double fmnn__model_loss(fmnn_model *m, int batch, const float *targets, int with_grad, double *correct)
{
    const struct fmnn_loss_ops *ops = m->loss_ops;
    const fmnn_loss_rows b = {
        .rows = batch * m->output_rows,
        .width = m->output_width,
        .fused = m->fusion != FUSE_NONE,
        .logits = m->logits,
        .output = m->probs,
        .target = targets,
    };
    const float scale = 1.0f / (float)b.rows; /* the gradient of the mean */
    double total = 0.0, right = 0.0;
    /* Rows in order: the sum must not depend on the thread count. */
    for (int row = 0; row < b.rows; row++) {
        float *grad = with_grad ? m->delta[0] + (size_t)row * b.width : NULL;
        total += ops->row(&b, row, grad, scale);
        right += ops->correct(&b, row);
    }
    if (correct)
        *correct = right;
    return total;
}

/* Copies samples order[0..count) of x and y into the batch buffers. */
static void gather(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const int *order, int count)
{
    size_t x_width = x->size / (size_t)x->dims[0], y_width = y->size / (size_t)y->dims[0];
    for (int k = 0; k < count; k++) {
        memcpy(m->acts[0] + (size_t)k * x_width, x->data + (size_t)order[k] * x_width,
               x_width * sizeof(float));
        memcpy(m->targets + (size_t)k * y_width, y->data + (size_t)order[k] * y_width,
               y_width * sizeof(float));
    }
}

/* Batches for inference: never more than the training buffers hold, and
 * at most 64 samples when there are none yet, so memory stays bounded
 * whatever batch_size the caller asks for; fewer for huge samples. */
int fmnn__inference_chunk(const fmnn_model *m, int batch_size)
{
    int limit = m->capacity > 64 ? m->capacity : 64;
    if (limit > fmnn__model_batch_limit(m))
        limit = fmnn__model_batch_limit(m);
    return batch_size < limit ? batch_size : limit;
}

/* Mean loss (plus regularization) and accuracy over samples [first, first + count). */
static int measure(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, int first, int count,
                   int batch_size, float *loss_out, float *accuracy_out)
{
    int chunk = fmnn__inference_chunk(m, batch_size);
    int err = fmnn__plan_buffers(m, chunk);
    if (err)
        return err;
    size_t x_width = x->size / (size_t)x->dims[0], y_width = y->size / (size_t)y->dims[0];
    fmnn_pass pass = { .training = 0, .workspace = m->workspace };
    double total = 0.0, right = 0.0;
    const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
    for (int start = first; start < first + count; start += chunk) {
        pass.batch = first + count - start < chunk ? first + count - start : chunk;
        fmnn__plan_forward(m, &pass, x->data + (size_t)start * x_width);
        double correct;
        total += fmnn__model_loss(m, pass.batch, y->data + (size_t)start * y_width, 0, &correct);
        right += correct;
    }
    const double rows = (double)count * m->output_rows;
    const double penalty = fmnn__regularization_penalty(m);
    fmnn__restore_fp_mode(fp);
    if (loss_out)
        *loss_out = (float)(total / rows + penalty);
    if (accuracy_out)
        *accuracy_out = (float)(right / rows);
    return FMNN_OK;
}

/* ---- fit ------------------------------------------------------------- */

static int check_fit_options(const fmnn_fit_options *o)
{
    if (o->batch_size < 0)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_fit: batch_size must be >= 0 (0 means 32), got %d",
                           o->batch_size);
    if (o->epochs < 0)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_fit: epochs must be >= 0, got %d", o->epochs);
    if (!(o->validation_split >= 0.0f && o->validation_split < 1.0f))
        return fmnn__error(FMNN_EINVAL, "fmnn_model_fit: validation_split must be in [0, 1), got %g",
                           (double)o->validation_split);
    if (o->verbose < 0 || o->verbose > 2)
        return fmnn__error(FMNN_EINVAL, "fmnn_model_fit: verbose must be 0, 1 or 2, got %d", o->verbose);
    return FMNN_OK;
}

static int history_new(fmnn_history **out, int epochs, int has_validation)
{
    fmnn_history *h = fmnn__alloc_zeroed(sizeof *h, "the history");
    size_t n = epochs > 0 ? (size_t)epochs : 1;
    float *values = fmnn__alloc_array(4 * n, sizeof(float), "the history");
    if (!h || !values) {
        fmnn__free(h);
        fmnn__free(values);
        return FMNN_ENOMEM;
    }
    h->has_validation = has_validation;
    h->loss = values;
    h->accuracy = values + n;
    h->val_loss = has_validation ? values + 2 * n : NULL;
    h->val_accuracy = has_validation ? values + 3 * n : NULL;
    *out = h;
    return FMNN_OK;
}

FMNN_API void fmnn_history_free(fmnn_history *h)
{
    if (!h)
        return;
    fmnn__free(h->loss); /* one block holds all four arrays */
    fmnn__free(h);
}

/* Keras holds out the LAST fraction, before any shuffling:
 * split_at = ceil(n * (1 - validation_split)). */
static int training_count(int n, float split)
{
    return split > 0.0f ? (int)ceil((double)n * (1.0 - (double)split)) : n;
}

static void shuffle(int *order, int n, fmnn_rng *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)fmnn__rng_below(rng, (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static int notify(const fmnn_fit_options *o, fmnn_progress_bar *bar, const fmnn_progress *p)
{
    fmnn__progress_update(bar, p);
    if (o->callback && o->callback(p, o->user_data))
        return fmnn__error(FMNN_ECANCELED, "fmnn_model_fit: the callback stopped training at epoch %d, batch %d",
                           p->epoch + 1, p->batch);
    return FMNN_OK;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Trains one epoch over order[0..n_train); fills p with its metrics. */
static int train_epoch(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y, const int *order,
                       int n_train, const fmnn_fit_options *o, fmnn_progress_bar *bar, fmnn_progress *p)
{
    double start = fmnn__now(), loss_sum = 0.0, right = 0.0;
    long seen = 0;
    fmnn_pass pass = { .training = 1, .workspace = m->workspace };
    for (int first = 0; first < n_train; first += o->batch_size) {
        pass.batch = n_train - first < o->batch_size ? n_train - first : o->batch_size;
        pass.seed = fmnn__mix64(o->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)m->step + 1);
        const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
        gather(m, x, y, order + first, pass.batch);
        /* The forward pass moves the moving statistics: keep the last
         * good ones, to restore if this step goes wrong. */
        memcpy(m->state_before, m->state, m->n_state * sizeof *m->state);
        fmnn__plan_forward(m, &pass, m->acts[0]);
        double correct;
        const int rows = pass.batch * m->output_rows;
        double batch_loss = fmnn__model_loss(m, pass.batch, m->targets, 1, &correct) / rows +
                            fmnn__regularization_penalty(m);
        /* Checked as the float it is reported as; and an update that would
         * overflow a weight or a moving statistic is refused, so the model
         * stays as the last good step left it. */
        const int bad_loss = !isfinite((float)batch_loss);
        const int bad_state = !bad_loss && !all_finite(m->state, m->n_state);
        if (!bad_loss && !bad_state) {
            fmnn__plan_backward(m, &pass, m->acts[0]);
            fmnn__regularization_gradient(m);
        }
        const int bad_update = !bad_loss && !bad_state && fmnn__optimizer_step(m) != FMNN_OK;
        fmnn__restore_fp_mode(fp);
        if (bad_loss || bad_state || bad_update) {
            memcpy(m->state, m->state_before, m->n_state * sizeof *m->state);
            return fmnn__error(FMNN_ENUMERIC,
                               "fmnn_model_fit: the %s became %s at epoch %d, batch %d; the weights "
                               "are those of the last good step",
                               bad_loss ? "loss" : bad_state ? "moving statistics" : "update",
                               bad_loss && isnan(batch_loss) ? "NaN" : bad_loss ? "Inf" : "NaN or Inf",
                               p->epoch + 1, p->batch + 1);
        }

        /* Keras reports running means over the epoch, weighted by batch size. */
        loss_sum += batch_loss * pass.batch;
        right += correct;
        seen += pass.batch;
        p->event = FMNN_EVENT_BATCH_END;
        p->batch++;
        p->loss = (float)(loss_sum / seen);
        p->accuracy = (float)(right / ((double)seen * m->output_rows));
        p->seconds = fmnn__now() - start;
        int err = notify(o, bar, p);
        if (err)
            return err;
    }
    return FMNN_OK;
}

FMNN_API int fmnn_model_fit(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                            const fmnn_fit_options *options, fmnn_history **history)
{
    static const char fn[] = "fmnn_model_fit";
    if (history)
        *history = NULL;
    int err = fmnn__check_x(m, x, fn);
    if (!err)
        err = check_y(m, x, y, fn);
    if (err)
        return err;
    if (!options)
        return fmnn__error(FMNN_EINVAL, "%s: options is NULL (start from FMNN_FIT_OPTIONS_INIT)", fn);
    fmnn_fit_options o = *options;
    if (o.batch_size == 0) /* Keras's default, as in evaluate and predict */
        o.batch_size = 32;
    if ((err = check_fit_options(&o)))
        return err;

    const int n = x->dims[0];
    const int n_train = training_count(n, o.validation_split);
    const int n_val = n - n_train;
    if (n_train < 1)
        return fmnn__error(FMNN_EINVAL, "%s: validation_split %g leaves no training samples out of %d", fn,
                           (double)o.validation_split, n);
    const int batches = (n_train + o.batch_size - 1) / o.batch_size;
    if ((uint64_t)o.epochs * (uint64_t)batches >= (uint64_t)(FMNN__MAX_STEPS - m->step))
        return fmnn__error(FMNN_EINVAL,
                           "%s: %d epochs of %d batches would take the optimizer, at step %lld, to 2^62 "
                           "steps, more than a model file can hold",
                           fn, o.epochs, batches, (long long)m->step);
    if ((err = fmnn__plan_buffers(m, o.batch_size < n_train ? o.batch_size : n_train)))
        return err;
    fmnn_history *h = NULL;
    int *order = fmnn__alloc_array((size_t)n_train, sizeof *order, "the shuffle order");
    if (!order || (history && history_new(&h, o.epochs, n_val > 0))) {
        fmnn__free(order);
        return FMNN_ENOMEM;
    }
    for (int i = 0; i < n_train; i++)
        order[i] = i;

    fmnn_rng rng;
    fmnn__rng_seed(&rng, o.seed);
    fmnn_progress_bar bar;
    fmnn__progress_init(&bar, o.verbose);
    for (int epoch = 0; epoch < o.epochs && !err; epoch++) {
        fmnn_progress p = { .event = FMNN_EVENT_EPOCH_BEGIN, .epoch = epoch, .epochs = o.epochs,
                            .batches = batches, .has_validation = n_val > 0 };
        if (o.shuffle)
            shuffle(order, n_train, &rng);
        if ((err = notify(&o, &bar, &p)))
            break;
        double start = fmnn__now();
        if ((err = train_epoch(m, x, y, order, n_train, &o, &bar, &p)))
            break;
        if (n_val > 0 &&
            (err = measure(m, x, y, n_train, n_val, o.batch_size, &p.val_loss, &p.val_accuracy)))
            break;
        p.event = FMNN_EVENT_EPOCH_END;
        p.seconds = fmnn__now() - start;
        if (h) {
            h->loss[epoch] = p.loss;
            h->accuracy[epoch] = p.accuracy;
            if (n_val > 0) {
                h->val_loss[epoch] = p.val_loss;
                h->val_accuracy[epoch] = p.val_accuracy;
            }
            h->epochs = epoch + 1;
        }
        err = notify(&o, &bar, &p);
    }
    fmnn__free(order);
    /* The history of the epochs that finished is kept even after
     * FMNN_ENUMERIC or FMNN_ECANCELED: that is work the caller paid for. */
    if (history && (!err || err == FMNN_ENUMERIC || err == FMNN_ECANCELED))
        *history = h;
    else
        fmnn_history_free(h);
    return err;
}

/* ---- evaluate and predict ---------------------------------------------- */

FMNN_API int fmnn_model_evaluate(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                                 int batch_size, float *loss_out, float *accuracy_out)
{
    static const char fn[] = "fmnn_model_evaluate";
    int err = fmnn__check_x(m, x, fn);
    if (!err)
        err = check_y(m, x, y, fn);
    if (err)
        return err;
    if (batch_size < 0)
        return fmnn__error(FMNN_EINVAL, "%s: batch_size must be >= 0, got %d", fn, batch_size);
    return measure(m, x, y, 0, x->dims[0], batch_size ? batch_size : 32, loss_out, accuracy_out);
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
    int chunk = fmnn__inference_chunk(m, batch_size ? batch_size : 32);
    if ((err = fmnn__plan_buffers(m, chunk)))
        return err;
    const fmnn_shape *shape = &m->layers[m->n_layers - 1]->out;
    if (shape->rank + 1 > FMNN_MAX_RANK)
        return fmnn__error(FMNN_ESHAPE, "%s: the output has rank %d, too many for a tensor", fn, shape->rank);
    int dims[FMNN_MAX_RANK] = { x->dims[0] };
    memcpy(dims + 1, shape->dims, (size_t)shape->rank * sizeof(int));
    fmnn_tensor *result;
    if ((err = fmnn_tensor_new(&result, shape->rank + 1, dims)))
        return err;
    const size_t x_width = x->size / (size_t)x->dims[0], out_width = fmnn__shape_size(shape);
    fmnn_pass pass = { .training = 0, .workspace = m->workspace };
    const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
    for (int start = 0; start < x->dims[0]; start += chunk) {
        pass.batch = x->dims[0] - start < chunk ? x->dims[0] - start : chunk;
        fmnn__plan_forward(m, &pass, x->data + (size_t)start * x_width);
        memcpy(result->data + (size_t)start * out_width, m->probs, (size_t)pass.batch * out_width * sizeof(float));
    }
    fmnn__restore_fp_mode(fp);
    *out = result;
    return FMNN_OK;
}
