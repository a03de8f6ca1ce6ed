/*
 * fit.c - fmnn_model_fit: Keras's training loop.
 *
 *   TRAIN_BEGIN
 *   for each epoch from initial_epoch:
 *       the epoch's batch order (from the seed and the model's epoch count)
 *       EPOCH_BEGIN, then for each batch: one step (train.c), BATCH_END
 *       validation; the history; EPOCH_END
 *   TRAIN_END
 *
 * At every event the progress bar is drawn, then each callback runs, in
 * order, then the function of the options.  A callback stops training by
 * returning FMNN_STOP_TRAINING: as Keras checks model.stop_training, the
 * others still see the event, a stop at a batch still ends its epoch
 * (validation, history, EPOCH_END), and fit succeeds.
 *
 * With a collective (distributed.h), each process trains on its share
 * of every batch, and agrees with the others on everything that could
 * differ: the setup's outcome, each callback's answer, the interrupt
 * flag.  So every process runs the same events and stops at the same
 * place, and a failure on one fails them all.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_impl.h"
#include "distributed.h"
#include "fit_state.h"
#include "progress.h"
#include "tensor_impl.h"
#include "train.h"

/* ---- the options ----------------------------------------------------------- */

static int check_fit_options(const fmnn_model *m, const fmnn_tensor *x, const fmnn_fit_options *o,
                             const char *fn)
{
    if (o->batch_size < 0)
        return fmnn__error(FMNN_EINVAL, "%s: batch_size must be >= 0 (0 means 32), got %d", fn, o->batch_size);
    if (o->epochs < 0)
        return fmnn__error(FMNN_EINVAL, "%s: epochs must be >= 0, got %d", fn, o->epochs);
    if (o->initial_epoch < 0 || o->initial_epoch > o->epochs)
        return fmnn__error(FMNN_EINVAL, "%s: initial_epoch must be in 0..epochs (%d), got %d", fn, o->epochs,
                           o->initial_epoch);
    if (!(o->validation_split >= 0.0f && o->validation_split < 1.0f))
        return fmnn__error(FMNN_EINVAL, "%s: validation_split must be in [0, 1), got %g", fn,
                           (double)o->validation_split);
    if (o->verbose < 0 || o->verbose > 2)
        return fmnn__error(FMNN_EINVAL, "%s: verbose must be 0, 1 or 2, got %d", fn, o->verbose);
    if (!o->x_val != !o->y_val)
        return fmnn__error(FMNN_EINVAL, "%s: validation data needs both x_val and y_val", fn);
    int err;
    if (o->x_val && ((err = fmnn__check_x(m, o->x_val, "fmnn_model_fit (x_val)")) ||
                     (err = fmnn__check_y(m, o->x_val, o->y_val, "fmnn_model_fit (y_val)"))))
        return err;
    if ((err = fmnn__check_weights(x, o->sample_weight, "sample_weight", fn)))
        return err;
    if (o->n_class_weight < 0 || (o->n_class_weight > 0 && !o->class_weight))
        return fmnn__error(FMNN_EINVAL, "%s: class_weight is NULL or n_class_weight (%d) is negative", fn,
                           o->n_class_weight);
    if (o->n_class_weight > 0 && o->sample_weight)
        return fmnn__error(FMNN_EINVAL, "%s: class_weight and sample_weight cannot be given together (as in Keras)",
                           fn);
    if (o->n_class_weight > 0 && m->output_rows != 1)
        return fmnn__error(FMNN_EINVAL, "%s: class_weight needs one output row per sample; this model has %d", fn,
                           m->output_rows);
    for (int c = 0; c < o->n_class_weight; c++)
        if (!(o->class_weight[c] >= 0.0f) || !isfinite(o->class_weight[c]))
            return fmnn__error(FMNN_EINVAL, "%s: class_weight[%d] = %g is not a finite weight >= 0", fn, c,
                               (double)o->class_weight[c]);
    if (o->n_callbacks < 0 || (o->n_callbacks > 0 && !o->callbacks))
        return fmnn__error(FMNN_EINVAL, "%s: callbacks is NULL or n_callbacks (%d) is negative", fn, o->n_callbacks);
    for (int i = 0; i < o->n_callbacks; i++)
        if (!o->callbacks[i])
            return fmnn__error(FMNN_EINVAL, "%s: callbacks[%d] is NULL", fn, i);
    return FMNN_OK;
}

/* Keras's class_weight_to_sample_weights: each sample weighs its class's
 * weight (1 for a class past the list): the argmax of a one-hot row, or
 * the rounded value of a single one (an index, or a binary target). */
static void class_weights(const fmnn_tensor *y, const fmnn_fit_options *o, float *w)
{
    const int width = (int)(y->size / (size_t)y->dims[0]);
    for (int i = 0; i < y->dims[0]; i++) {
        const float *row = y->data + (size_t)i * width;
        const int c = width > 1 ? fmnn__argmax(row, width) : (int)lrintf(row[0]);
        w[i] = c >= 0 && c < o->n_class_weight ? o->class_weight[c] : 1.0f;
    }
}

/* The decimal a float was written as: the shortest that reads back as
 * it (0.2f gives 0.2, not 0.200000003), as Python would hold it. */
static double as_written(float f)
{
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if (strtof(text, NULL) == f)
            break;
    }
    return strtod(text, NULL);
}

/* Keras holds out the LAST fraction, before any shuffling:
 * split_at = floor(n * (1 - validation_split)), with the split as the
 * decimal the caller wrote. */
static int training_count(int n, float split)
{
    return split > 0.0f ? (int)floor((double)n * (1.0 - as_written(split))) : n;
}

/* The batch order of the model's epoch number `epoch`: from the seed and
 * that number alone, so that fitting again, or after loading, continues
 * with new orders exactly as one long fit would.  (mix64(0) is 0: a
 * model's first epoch shuffles with the seed itself, as fit always did.) */
static void epoch_order(int *order, int n, int shuffle, uint64_t seed, int64_t epoch)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (!shuffle)
        return;
    fmnn_rng rng;
    fmnn__rng_seed(&rng, seed ^ fmnn__mix64((uint64_t)epoch));
    for (int i = n - 1; i > 0; i--) {
        int j = (int)fmnn__rng_below(&rng, (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ---- the history ------------------------------------------------------------- */

static void history_add(fmnn_history *h, const fmnn_progress *p)
{
    const int e = h->epochs++;
    h->loss[e] = p->loss;
    h->learning_rate[e] = p->learning_rate;
    if (h->has_validation)
        h->val_loss[e] = p->val_loss;
    for (int k = 0; k < h->n_metrics; k++) {
        h->metrics[k][e] = p->metrics[k];
        if (h->has_validation)
            h->val_metrics[k][e] = p->val_metrics[k];
    }
}

/* ---- the events ----------------------------------------------------------------- */

/* One fit's state besides the model's. */
typedef struct fit_run {
    fmnn_model *m;
    const fmnn_fit_options *o;
    fmnn_progress_bar bar;
    const char *stopped_by;   /* the first callback that stopped training */
    int begun;                /* callbacks that were told TRAIN_BEGIN: only they are told TRAIN_END */
    float metrics[FMNN_MAX_METRICS], val_metrics[FMNN_MAX_METRICS];
    fmnn__fit_state state;    /* where the fit is, as a backup keeps it (m->live) */
    fmnn__fit_state *resume;  /* the saved state it continues, or NULL */
    int begun_training;       /* everything was allocated: the loop ran */
} fit_run;

/* The message of a callback that failed: its own call's, or a plain one. */
static int callback_failed(const char *name, int status, const fmnn_progress *p)
{
    char detail[400], when[64];
    snprintf(detail, sizeof detail, "%s", fmnn_last_error());
    if (!*detail)
        snprintf(detail, sizeof detail, "%s", fmnn_strerror(status));
    if (p->event == FMNN_EVENT_TRAIN_BEGIN || p->event == FMNN_EVENT_TRAIN_END)
        snprintf(when, sizeof when, "as training %s", p->event == FMNN_EVENT_TRAIN_BEGIN ? "began" : "ended");
    else
        snprintf(when, sizeof when, "in epoch %d of %d (index %d)", p->epoch + 1, p->epochs, p->epoch);
    return fmnn__error(status, "fmnn_model_fit: %s failed %s: %s", name, when, detail);
}

/* Runs one callback; 1 when it asked to stop.  Every process acts on
 * every answer: agreed, unless the callback agrees itself. */
static int run_callback(fit_run *run, const char *name, fmnn_callback_fn fn, void *data, int agrees_itself,
                        const fmnn_progress *p, int *status)
{
    fmnn_clear_error();
    const int answer = agrees_itself ? fn(p, data) : fmnn__agree(run->m, fn(p, data));
    if (answer < 0 && !*status)
        *status = callback_failed(name, answer, p);
    if (answer > 0 && !run->stopped_by)
        run->stopped_by = name;
    return answer > 0;
}

/* Tells the backups that every callback has seen p, with fit's status
 * so far: they save after the others have updated their states. */
static int after_callbacks(fit_run *run, const fmnn_progress *p, int status)
{
    const int count = p->event == FMNN_EVENT_TRAIN_END ? run->begun : run->o->n_callbacks;
    for (int i = 0; i < count && i < run->o->n_callbacks; i++) {
        fmnn_callback *cb = run->o->callbacks[i];
        if (!cb->after)
            continue;
        fmnn_clear_error();
        const int err = cb->agrees_itself ? cb->after(cb, p, status) : fmnn__agree(run->m, cb->after(cb, p, status));
        if (err < 0)
            return callback_failed(cb->name, err, p);
    }
    return FMNN_OK;
}

/* Draws the progress and runs every callback: FMNN_OK, FMNN_STOP_TRAINING
 * when one asked to stop, or the status of the first that failed. */
static int notify(fit_run *run, const fmnn_progress *p)
{
    fmnn__progress_update(&run->bar, p);
    /* Callbacks run with no error pending, so that a failing one can be
     * told by its message; the pending one (that fit is about to return,
     * at TRAIN_END) comes back after them. */
    char pending[512];
    snprintf(pending, sizeof pending, "%s", fmnn_last_error());
    int status = FMNN_OK, stop = 0;
    const int total = run->o->n_callbacks + (run->o->callback != NULL);
    const int count = p->event == FMNN_EVENT_TRAIN_END ? run->begun : total;
    for (int i = 0; i < count && !status; i++) {
        if (p->event == FMNN_EVENT_TRAIN_BEGIN)
            run->begun = i + 1;
        if (i < run->o->n_callbacks) {
            fmnn_callback *cb = run->o->callbacks[i];
            stop |= run_callback(run, cb->name, cb->fn, cb->user_data, cb->agrees_itself, p, &status);
        } else {
            stop |= run_callback(run, "the callback", run->o->callback, run->o->user_data, 0, p, &status);
        }
    }
    if (status)
        return status;
    if (*pending)
        fmnn__error(FMNN_OK, "%s", pending);
    else
        fmnn_clear_error();
    return stop ? FMNN_STOP_TRAINING : FMNN_OK;
}

/* notify, then the backups at a batch's or an epoch's end.  A stop at a
 * batch is not saved there: the epoch ends first, and is saved then. */
static int notify_and_back_up(fit_run *run, fmnn_progress *p)
{
    int err = notify(run, p);
    if (err == FMNN_STOP_TRAINING && p->event == FMNN_EVENT_EPOCH_END) {
        run->state.stopped = 1;
        snprintf(run->state.stopped_by, sizeof run->state.stopped_by, "%s", run->stopped_by ? run->stopped_by : "");
    }
    if (err == FMNN_OK || (err == FMNN_STOP_TRAINING && p->event != FMNN_EVENT_BATCH_END)) {
        const int backed_up = after_callbacks(run, p, err);
        if (backed_up)
            return backed_up;
    }
    return err;
}

/* When the interrupt flag is up: FMNN_EVENT_INTERRUPTED, for the backups
 * to save where the fit is, then FMNN_FIT_INTERRUPTED. */
static int check_interrupt(fit_run *run, fmnn_progress *p)
{
    /* A signal reaches the processes at different moments: the first
     * that sees it stops them all.  (All have a flag, or none has.) */
    if (!run->o->interrupt)
        return FMNN_OK;
    const int up = fmnn__agree(run->m, *run->o->interrupt != 0);
    if (up <= 0)
        return up;
    p->event = FMNN_EVENT_INTERRUPTED;
    const int err = notify(run, p);
    if (err < 0)
        return err;
    const int backed_up = after_callbacks(run, p, FMNN_FIT_INTERRUPTED);
    return backed_up ? backed_up : FMNN_FIT_INTERRUPTED;
}

/* The rate the next step will take (the schedule's, at the step count). */
static float learning_rate(const fmnn_model *m)
{
    return fmnn__learning_rate_at(&m->optimizer, m->step);
}

/* ---- the loop --------------------------------------------------------------------- */

/* Where the training samples, their weights and the validation samples are. */
typedef struct fit_data {
    const fmnn_tensor *x, *y;
    const float *weights;         /* per training sample, or NULL */
    int n_train;
    const fmnn_tensor *x_val, *y_val;
    const float *val_weights;     /* indexed like x_val, or NULL */
    int val_first, n_val;
} fit_data;

/* One epoch over order[] from the batch the fit state has reached (0,
 * unless resuming): the steps, their BATCH_END events and the running
 * loss and metrics in p.  FMNN_STOP_TRAINING when a callback asked to
 * stop (the epoch ends there), FMNN_FIT_INTERRUPTED when the interrupt
 * flag did (it does not). */
static int train_epoch(fit_run *run, const fit_data *d, const int *order, int batch_size, fmnn_progress *p)
{
    fmnn_model *m = run->m;
    fmnn__fit_state *s = &run->state;
    const double start = fmnn__now();
    if (s->batch == 0) {
        fmnn__metrics_reset(m, m->metric_sums[0]);
    } else { /* resumed: where the epoch's running values stood */
        p->loss = (float)(s->loss_sum / (double)s->seen);
        fmnn__metrics_results(m, m->metric_sums[0], run->metrics);
        const int at = fmnn__metric_accuracy_index(m);
        p->accuracy = at >= 0 ? run->metrics[at] : NAN;
    }
    for (int first = s->batch * batch_size; first < d->n_train; first += batch_size) {
        const int batch = d->n_train - first < batch_size ? d->n_train - first : batch_size;
        const fmnn__slice slice = fmnn__slice_of(m, batch); /* this process's share */
        fmnn__gather(m, d->x, d->y, d->weights, order, first + slice.first, slice.count);
        double batch_loss;
        fmnn_bad_step bad;
        int err = fmnn__train_step(m, slice, run->o->seed, d->weights != NULL, m->metric_sums[0], &batch_loss, &bad);
        if (err && err != FMNN_ENUMERIC)
            return err; /* the collective's */
        if (err) {
            p->event = FMNN_EVENT_NONFINITE;
            p->loss = (float)batch_loss;
            const int answer = notify(run, p);
            if (answer)
                return answer;
            return fmnn__error(err, "fmnn_model_fit: the %s became %s in epoch %d of %d (index %d), batch %d; the "
                               "weights are those of the last good step",
                               bad.what, bad.value, p->epoch + 1, p->epochs, p->epoch, p->batch + 1);
        }
        /* Keras reports running means over the epoch, weighted by batch size. */
        s->loss_sum += batch_loss * batch;
        s->seen += batch;
        s->batch++;
        p->event = FMNN_EVENT_BATCH_END;
        p->batch = s->batch;
        p->loss = (float)(s->loss_sum / (double)s->seen);
        fmnn__metrics_results(m, m->metric_sums[0], run->metrics);
        const int at = fmnn__metric_accuracy_index(m);
        p->accuracy = at >= 0 ? run->metrics[at] : NAN;
        p->learning_rate = learning_rate(m);
        p->seconds = fmnn__now() - start;
        if ((err = notify_and_back_up(run, p)))
            return err;
        /* After an epoch's last batch the epoch ends first; the next
         * epoch's start looks at the flag again. */
        if (first + batch < d->n_train && (err = check_interrupt(run, p)))
            return err;
    }
    return FMNN_OK;
}

/* Validation at the end of an epoch, into p. */
static int validate(fit_run *run, const fit_data *d, int batch_size, fmnn_progress *p)
{
    if (d->n_val == 0)
        return FMNN_OK;
    int err = fmnn__measure(run->m, d->x_val, d->y_val, d->val_weights, d->val_first, d->n_val, batch_size,
                            &p->val_loss, run->val_metrics);
    const int at = fmnn__metric_accuracy_index(run->m);
    p->val_accuracy = at >= 0 ? run->val_metrics[at] : NAN;
    return err;
}

/* The fit state once an epoch has ended: at the next one's start. */
static void end_epoch(fit_run *run)
{
    run->state.epoch++;
    run->state.batch = 0;
    run->state.loss_sum = 0.0;
    run->state.seen = 0;
    fmnn__metrics_reset(run->m, run->m->metric_sums[0]);
}

/* What the progress said at the end of the history's last epoch, for a
 * fit resumed from a backup made there: its TRAIN_END, should no epoch
 * be left, sees what it would have seen. */
static void last_epoch_progress(fit_run *run, const fmnn_history *h, fmnn_progress *p)
{
    const int e = h->epochs - 1;
    p->epoch = h->initial_epoch + e;
    p->batch = p->batches;
    p->loss = h->loss[e];
    p->learning_rate = h->learning_rate[e];
    if (h->has_validation)
        p->val_loss = h->val_loss[e];
    for (int k = 0; k < h->n_metrics; k++) {
        run->metrics[k] = h->metrics[k][e];
        if (h->has_validation)
            run->val_metrics[k] = h->val_metrics[k][e];
    }
    const int at = fmnn__metric_accuracy_index(run->m);
    p->accuracy = at >= 0 ? run->metrics[at] : NAN;
    p->val_accuracy = at >= 0 && h->has_validation ? run->val_metrics[at] : NAN;
}

static int run_epochs(fit_run *run, const fit_data *d, int *order, int batch_size, fmnn_history *h)
{
    fmnn_model *m = run->m;
    const fmnn_fit_options *o = run->o;
    fmnn__fit_state *s = &run->state;
    const int batches = d->n_train / batch_size + (d->n_train % batch_size != 0);
    fmnn_progress p = { .event = FMNN_EVENT_TRAIN_BEGIN, .model = m, .epoch = s->epoch, .epochs = o->epochs,
                        .batches = batches, .n_metrics = m->n_metrics, .metrics = run->metrics,
                        .has_validation = d->n_val > 0, .val_metrics = d->n_val > 0 ? run->val_metrics : NULL,
                        .learning_rate = learning_rate(m), .accuracy = NAN, .val_accuracy = NAN };
    int err = notify(run, &p);
    if (!err && run->resume)
        err = fmnn__agree(m, fmnn__fit_state_give_callbacks(run->resume, m, o->callbacks, o->n_callbacks));
    if (!err && run->resume && s->batch == 0 && h->epochs > 0)
        last_epoch_progress(run, h, &p);
    if (!err && s->stopped) { /* the backup was made after a callback stopped training */
        run->stopped_by = s->stopped_by;
        err = FMNN_STOP_TRAINING;
    }
    while (s->epoch < o->epochs && !err) {
        const int epoch = s->epoch;
        p.epoch = epoch;
        p.batch = s->batch;
        p.seconds = 0.0;
        epoch_order(order, d->n_train, o->shuffle, o->seed, m->epochs_trained);
        if (s->batch == 0) { /* a resumed epoch has begun already */
            if ((err = check_interrupt(run, &p)))
                break;
            p.event = FMNN_EVENT_EPOCH_BEGIN;
            if ((err = notify(run, &p)))
                break;
        }
        const double start = fmnn__now();
        err = train_epoch(run, d, order, batch_size, &p);
        if (err && (err != FMNN_STOP_TRAINING || p.event == FMNN_EVENT_NONFINITE))
            break; /* a failure, an interruption, or a stop at a refused step: no epoch end */
        m->epochs_trained++;
        const int stop = err == FMNN_STOP_TRAINING;
        if ((err = validate(run, d, batch_size, &p)))
            break;
        p.event = FMNN_EVENT_EPOCH_END;
        p.learning_rate = learning_rate(m);
        p.seconds = fmnn__now() - start;
        history_add(h, &p);
        end_epoch(run);
        if (stop) {
            s->stopped = 1;
            snprintf(s->stopped_by, sizeof s->stopped_by, "%s", run->stopped_by ? run->stopped_by : "");
        }
        err = notify_and_back_up(run, &p);
        if (stop && !err)
            err = FMNN_STOP_TRAINING;
    }
    if (err == FMNN_STOP_TRAINING)
        h->stopped_epoch = p.epoch;
    /* TRAIN_END always, so that every callback can let go of what it holds. */
    fmnn_progress end = p;
    end.event = FMNN_EVENT_TRAIN_END;
    char pending[512];
    snprintf(pending, sizeof pending, "%s", fmnn_last_error());
    int end_err = notify(run, &end);
    if (end_err >= 0 && (end_err = after_callbacks(run, &end, err)) >= 0 && *pending)
        fmnn__error(FMNN_OK, "%s", pending); /* the backups ran with no error pending, as the callbacks did */
    const int finished = err == FMNN_OK || err == FMNN_STOP_TRAINING || err == FMNN_FIT_INTERRUPTED;
    if (end_err < 0 && finished)
        err = end_err; /* a callback that could not finish (a file it could not close) */
    else if (end_err < 0)
        fmnn__error(err, "%s", pending); /* the first failure is the one fit returns */
    return err;
}

/* ---- fmnn_model_fit ------------------------------------------------------------- */

/* Splits x and y (or takes the validation data) as Keras does. */
static int split_data(fit_data *d, const fmnn_tensor *x, const fmnn_tensor *y, const fmnn_fit_options *o,
                      const char *fn)
{
    /* validation_data replaces validation_split, as in Keras; a split
     * takes the sample weights' tail with the samples'. */
    const int n = x->dims[0];
    *d = (fit_data){ .x = x, .y = y, .weights = o->sample_weight ? o->sample_weight->data : NULL };
    if (o->x_val) {
        d->n_train = n;
        d->x_val = o->x_val;
        d->y_val = o->y_val;
        d->n_val = o->x_val->dims[0];
    } else {
        d->n_train = training_count(n, o->validation_split);
        d->x_val = x;
        d->y_val = y;
        d->val_weights = d->weights;
        d->val_first = d->n_train;
        d->n_val = n - d->n_train;
    }
    if (d->n_train < 1 || (!o->x_val && o->validation_split > 0.0f && d->n_val < 1))
        return fmnn__error(FMNN_EINVAL, "%s: %d samples are too few to split into training and validation "
                           "sets by validation_split %g (as Keras refuses it)", fn, n, (double)o->validation_split);
    return FMNN_OK;
}

/* The saved fit to continue: one a backup callback puts into the model,
 * or, with resume, one the model was loaded with.  Any other is dropped,
 * since this fit moves the weights on from it. */
static int take_resume(fit_run *run, const fit_data *d)
{
    fmnn_model *m = run->m;
    const fmnn_fit_options *o = run->o;
    int restored = 0;
    for (int i = 0; i < o->n_callbacks; i++) {
        fmnn_callback *cb = o->callbacks[i];
        if (!cb->restore)
            continue;
        fmnn_clear_error();
        const int answer = cb->restore(cb, m);
        if (answer < 0) {
            fmnn_progress begin = { .event = FMNN_EVENT_TRAIN_BEGIN };
            return callback_failed(cb->name, answer, &begin);
        }
        restored |= answer;
    }
    fmnn__fit_state *saved = m->resume;
    m->resume = NULL;
    if (!saved || !(o->resume || restored)) {
        fmnn__fit_state_free(saved);
        return FMNN_OK;
    }
    const fmnn__fit_state now = { .seed = o->seed, .shuffle = o->shuffle != 0, .batch_size = o->batch_size,
                                  .n_train = d->n_train, .n_val = d->n_val };
    int err = fmnn__fit_state_matches(saved, m)
                  ? fmnn__fit_state_check_resume(saved, &now, o->epochs, "fmnn_model_fit")
                  : fmnn__error(FMNN_EINVAL, "fmnn_model_fit: cannot resume the fit saved in %s: the model's "
                                "metrics are no longer that fit's", saved->source);
    if (err) {
        m->resume = saved; /* still there for a fit that matches */
        return err;
    }
    run->resume = saved;
    return FMNN_OK;
}

/* The callbacks, in order: their kinds and options, and whether the
 * backups are there. */
static int64_t callbacks_digest(const fmnn_fit_options *o)
{
    uint64_t h = FMNN__DIGEST_START;
    for (int i = 0; i < o->n_callbacks; i++) {
        const fmnn_callback *cb = o->callbacks[i];
        const unsigned char hooks[2] = { cb->after != NULL, cb->restore != NULL };
        h = fmnn__digest(fmnn__digest(h, cb->name, strlen(cb->name) + 1), hooks, sizeof hooks);
        h = fmnn__digest(h, &cb->options_digest, sizeof cb->options_digest);
    }
    const unsigned char plain = o->callback != NULL;
    return (int64_t)fmnn__digest(h, &plain, 1);
}

/* With a collective: checks that every process runs this fit, before any
 * callback restores a backup (which every process does together). */
static int check_together(const fit_run *run, const fit_data *d, const char *fn)
{
    const fmnn_fit_options *o = run->o;
    const fmnn__same fit[] = {
        { "seed", (int64_t)o->seed, 0 },
        { "shuffle", o->shuffle != 0, 0 },
        { "batch_size", o->batch_size, 0 },
        { "epochs", o->epochs, 0 },
        { "initial_epoch", o->initial_epoch, 0 },
        { "resume", o->resume != 0, 0 },
        { "interrupt's presence", o->interrupt != NULL, 0 },
        { "the training sample count", d->n_train, 0 },
        { "the validation sample count", d->n_val, 0 },
        { "the callback count", o->n_callbacks + (o->callback != NULL), 0 },
        { "the callbacks", callbacks_digest(o), 1 },
        { "class_weight's count", o->n_class_weight, 0 },
        { "sample_weight's presence", o->sample_weight != NULL, 0 },
    };
    return fmnn__group_check(run->m, fit, (int)(sizeof fit / sizeof *fit), fn);
}

/* Then, with everything allocated: that every process is at the same
 * place (a resumed fit included), and rank 0's model everywhere. */
static int begin_together(const fit_run *run, const char *fn)
{
    const fmnn__same where[] = {
        { "the resumed fit", run->resume != NULL, 0 },
        { "the epoch to start in", run->state.epoch, 0 },
        { "the batch to start at", run->state.batch, 0 },
    };
    int err = fmnn__group_check(run->m, where, (int)(sizeof where / sizeof *where), fn);
    return err ? err : fmnn__group_share_model(run->m);
}

FMNN_API int fmnn_model_fit(fmnn_model *m, const fmnn_tensor *x, const fmnn_tensor *y,
                            const fmnn_fit_options *options, fmnn_history **history)
{
    static const char fn[] = "fmnn_model_fit";
    if (history)
        *history = NULL;
    /* With a collective, every way out before training is agreed on, so
     * that a process that cannot start stops the others too. */
    int err = fmnn__check_x(m, x, fn);
    if (!err)
        err = fmnn__check_y(m, x, y, fn);
    if (err)
        return fmnn__agree(m, err);
    if (!options)
        return fmnn__agree(m, fmnn__error(FMNN_EINVAL, "%s: options is NULL (start from FMNN_FIT_OPTIONS_INIT)", fn));
    if (m->in_fit)
        return fmnn__agree(m, fmnn__error(FMNN_ESTATE, "%s: fit is already running on this model (called from a "
                                          "callback?)", fn));
    fmnn_fit_options o = *options;
    if (o.batch_size == 0) /* Keras's default, as in evaluate and predict */
        o.batch_size = 32;
    fit_data d;
    if ((err = check_fit_options(m, x, &o, fn)) || (err = split_data(&d, x, y, &o, fn)))
        return fmnn__agree(m, err);
    const int batches = d.n_train / o.batch_size + (d.n_train % o.batch_size != 0);
    const int64_t epochs = o.epochs - o.initial_epoch;
    if ((uint64_t)epochs * (uint64_t)batches >= (uint64_t)(FMNN__MAX_STEPS - m->step) ||
        (uint64_t)epochs * (uint64_t)batches >= (uint64_t)(FMNN__MAX_STEPS - m->steps_trained) ||
        (uint64_t)epochs >= (uint64_t)(FMNN__MAX_STEPS - m->epochs_trained))
        return fmnn__agree(m, fmnn__error(FMNN_EINVAL,
                           "%s: %lld epochs of %d batches would take the model (at epoch %lld and step %lld, "
                           "its optimizer at %lld) to 2^62 epochs or steps, more than a model file can hold",
                           fn, (long long)epochs, batches, (long long)m->epochs_trained, (long long)m->steps_trained,
                           (long long)m->step));
    if ((err = fmnn__model_change_begin(m, fn)))
        return fmnn__agree(m, err);
    /* Every process is here, or has returned through one fmnn__agree that
     * this one meets; from here on, all take the same way. */
    fit_run run = { .m = m, .o = &o };
    if (!(err = fmnn__agree(m, FMNN_OK)) && !(err = check_together(&run, &d, fn)))
        err = fmnn__agree(m, take_resume(&run, &d));
    if (err) {
        fmnn__model_change_end(m);
        return err;
    }
    fmnn__fit_state *s = &run.state;
    *s = (fmnn__fit_state){ .seed = o.seed, .shuffle = o.shuffle != 0, .batch_size = o.batch_size,
                            .n_train = d.n_train, .n_val = d.n_val, .initial_epoch = o.initial_epoch,
                            .epoch = o.initial_epoch, .n_sums = m->n_metric_sums, .sums = m->metric_sums[0],
                            .callbacks = o.callbacks, .n_callbacks = o.n_callbacks };
    fmnn_history *h = NULL;
    float *class_w = NULL;
    int *order = NULL;
    const int first_epoch = run.resume ? run.resume->initial_epoch : o.initial_epoch;
    if ((err = fmnn__plan_buffers(m, &m->buf, fmnn__largest_share(m, o.batch_size < d.n_train ? o.batch_size
                                                                                             : d.n_train))) ||
        (err = fmnn__group_reserve(m, 1 + m->n_metric_sums)) ||
        (err = fmnn__history_new(&h, m, first_epoch, o.epochs - first_epoch, d.n_val > 0)))
        goto prepared;
    err = FMNN_ENOMEM;
    if (!(order = fmnn__alloc_array((size_t)d.n_train, sizeof *order, "the shuffle order")))
        goto prepared;
    if (o.n_class_weight > 0) {
        if (!(class_w = fmnn__alloc_array((size_t)x->dims[0], sizeof *class_w, "the class weights")))
            goto prepared;
        class_weights(y, &o, class_w);
        d.weights = class_w; /* in training only */
        d.val_weights = NULL;
    }
    if (run.resume)
        fmnn__fit_state_continue(s, run.resume, h);
    s->history = h;
    err = FMNN_OK;
prepared:
    if ((err = fmnn__agree(m, err)) || (err = begin_together(&run, fn)))
        goto done;

    /* Progress is shown by one process. */
    fmnn__progress_init(&run.bar, fmnn__writes_files(m) ? o.verbose : 0,
                        o.progress_stream ? o.progress_stream : stdout);
    run.begun_training = 1;
    m->in_fit = 1;
    m->live = s;
    err = run_epochs(&run, &d, order, o.batch_size, h);
    m->live = NULL;
    m->in_fit = 0;
    h->stop_reason = err == FMNN_STOP_TRAINING ? FMNN_STOP_CALLBACK
                     : err == FMNN_FIT_INTERRUPTED ? FMNN_STOP_INTERRUPTED
                     : err ? FMNN_STOP_ERROR : FMNN_STOP_COMPLETED;
    if (err == FMNN_STOP_TRAINING)
        snprintf(h->stopped_by, sizeof h->stopped_by, "%s", run.stopped_by ? run.stopped_by : "");
    if (err == FMNN_FIT_INTERRUPTED)
        err = fmnn__error(FMNN_ECANCELED, "%s: interrupted in epoch %d of %d (index %d) after batch %d of %d; the "
                          "model holds that step", fn, s->epoch + 1, o.epochs, s->epoch, s->batch, batches);
done:
    fmnn__model_change_end(m);
    if (run.begun_training) {
        fmnn__fit_state_free(run.resume);
    } else { /* a fit that could not start leaves the saved one for the next */
        fmnn__fit_state_free(m->resume);
        m->resume = run.resume;
    }
    fmnn__free(order);
    fmnn__free(class_w);
    /* The epochs that finished are kept after an error too: that is work
     * the caller paid for; a fit that could not start has none. */
    if (history && run.begun_training)
        *history = h;
    else
        fmnn_history_free(h);
    return err == FMNN_STOP_TRAINING ? FMNN_OK : err;
}
