/*
 * distributed.c - a model trained by several processes at once through a
 * collective of the program's (fmnn/collective.h; libfmnn_mpi gives one
 * over MPI): setting it, agreeing on outcomes, sums, and the copy of rank
 * 0's model that every fit begins with.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "distributed.h"

/* ---- agreeing ----------------------------------------------------------- */

/* Statuses voted on at once: larger groups vote in blocks of ranks, so
 * that agreeing never allocates. */
#define VOTE_BLOCK 64

/* The status combined over c's processes: each process writes its status,
 * and whether its failure was agreed already, in its own slots of a block
 * of votes, and the blocks are summed, so that every process sees every
 * vote.  A failure is the lowest failing rank's, with its message, which
 * that rank broadcasts; unless every process holds an agreed failure
 * (one returned by an earlier agreement): each keeps its own message. */
static int agree_with(const fmnn_collective *c, int status)
{
    char message[512];
    snprintf(message, sizeof message, "%s", status < 0 ? fmnn_last_error() : "");
    const int agreed = status < 0 && fmnn__error_is_agreed();
    int best = FMNN_OK, failed = -1, failure = FMNN_OK, all_agreed = 1;
    for (int base = 0; base < c->size; base += VOTE_BLOCK) {
        double votes[2 * VOTE_BLOCK] = { 0 }; /* the statuses, then the agreed flags */
        const int n = c->size - base < VOTE_BLOCK ? c->size - base : VOTE_BLOCK;
        if (c->rank >= base && c->rank < base + n) {
            votes[c->rank - base] = (double)status;
            votes[n + c->rank - base] = agreed;
        }
        int err = c->allreduce_sum(c->context, votes, (size_t)(2 * n), FMNN_COLLECTIVE_FLOAT64);
        if (err)
            return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's allreduce_sum failed (%s) while the "
                               "processes agreed on a status", fmnn_strerror(err));
        for (int i = 0; i < n; i++) {
            const int vote = (int)votes[i];
            all_agreed &= vote < 0 && votes[n + i] != 0.0;
            if (vote >= 0)
                best = vote > best ? vote : best;
            else if (failed < 0) {
                failed = base + i;
                failure = vote;
            }
        }
    }
    if (failed < 0)
        return best;
    if (all_agreed)
        return status;
    int err = c->broadcast(c->context, message, sizeof message, failed);
    if (err)
        return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's broadcast failed (%s) while rank %d's "
                           "failure was told", fmnn_strerror(err), failed);
    if (failed != c->rank) { /* else its own message stands */
        message[sizeof message - 1] = '\0';
        fmnn__error(failure, "rank %d: %s", failed, *message ? message : fmnn_strerror(failure));
    }
    fmnn__error_mark_agreed();
    return failure;
}

FMNN_API int fmnn_collective_agree(const fmnn_collective *c, int status)
{
    return c ? agree_with(c, status) : status;
}

int fmnn__agree(const fmnn_model *m, int status)
{
    if (!m || !m->group)
        return status;
    return agree_with(&m->group->c, status);
}

/* ---- the model's share of the work ------------------------------------------ */

fmnn__slice fmnn__slice_of(const fmnn_model *m, int total)
{
    if (!m->group)
        return (fmnn__slice){ 0, total, total };
    /* Contiguous shares that differ by one sample at most. */
    const int64_t size = m->group->c.size, rank = m->group->c.rank;
    const int first = (int)(total * rank / size), next = (int)(total * (rank + 1) / size);
    return (fmnn__slice){ first, next - first, total };
}

int fmnn__largest_share(const fmnn_model *m, int total)
{
    const int size = m->group ? m->group->c.size : 1;
    return (int)(((int64_t)total + size - 1) / size);
}

int fmnn__writes_files(const fmnn_model *m)
{
    return !m || !m->group || m->group->c.rank == 0;
}

int fmnn__sum(const fmnn_model *m, void *data, size_t count, fmnn_collective_type type, const char *what)
{
    if (!m->group || count == 0)
        return FMNN_OK;
    const fmnn_collective *c = &m->group->c;
    fmnn_clear_error();
    const int err = c->allreduce_sum(c->context, data, count, type);
    if (err) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s", *fmnn_last_error() ? fmnn_last_error() : fmnn_strerror(err));
        return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's allreduce_sum of %s failed: %s", what, detail);
    }
    return FMNN_OK;
}

int fmnn__group_reserve(fmnn_model *m, size_t n)
{
    fmnn__group *g = m->group;
    if (!g || g->n_sums >= n)
        return FMNN_OK;
    double *sums = fmnn__alloc_array(n, sizeof *sums, "the sums over the processes");
    if (!sums)
        return FMNN_ENOMEM;
    fmnn__free(g->sums);
    g->sums = sums;
    g->n_sums = n;
    return FMNN_OK;
}

/* ---- a fit's start: one model everywhere ------------------------------------------ */

int fmnn__broadcast(const fmnn_model *m, void *data, size_t bytes, const char *what)
{
    if (!m->group)
        return FMNN_OK;
    const fmnn_collective *c = &m->group->c;
    const int err = bytes ? c->broadcast(c->context, data, bytes, 0) : FMNN_OK;
    if (err)
        return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's broadcast of %s failed (%s)", what,
                           fmnn_strerror(err));
    return FMNN_OK;
}

uint64_t fmnn__digest(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t digest_int(uint64_t h, int64_t v)
{
    return fmnn__digest(h, &v, sizeof v);
}

static uint64_t digest_string(uint64_t h, const char *s)
{
    return fmnn__digest(h, s, strlen(s) + 1);
}

/* The network as built: each layer's type, shapes, options, activation,
 * regularizer and whether it is frozen.  (Not the initializers: rank 0's
 * weights replace everyone's.) */
static int64_t layers_digest(const fmnn_model *m)
{
    uint64_t h = FMNN__DIGEST_START;
    for (int i = 0; i < m->n_layers; i++) {
        const fmnn_layer *layer = m->layers[i];
        h = digest_int(h, fmnn__layer_code(layer->ops));
        h = digest_int(h, layer->frozen);
        h = digest_int(h, layer->activation);
        h = fmnn__digest(h, &layer->regularizer.l1, sizeof(float));
        h = fmnn__digest(h, &layer->regularizer.l2, sizeof(float));
        const fmnn_shape *shapes[2] = { &layer->in, &layer->out };
        for (int k = 0; k < 2; k++)
            h = fmnn__digest(digest_int(h, shapes[k]->rank), shapes[k]->dims, (size_t)shapes[k]->rank * sizeof(int));
        const fmnn_fields *options = &layer->ops->config;
        for (int f = 0; f < options->count; f++)
            h = fmnn__digest(h, (const char *)layer + options->fields[f].offset, 4);
    }
    return (int64_t)h;
}

static int64_t metrics_digest(const fmnn_model *m)
{
    uint64_t h = digest_int(FMNN__DIGEST_START, (int64_t)m->n_metric_sums);
    for (int k = 0; k < m->n_metrics; k++) {
        const fmnn_metric *metric = &m->metrics[k];
        h = digest_string(h, m->metric_names[k]);
        h = digest_int(digest_int(h, metric->kind), metric->k);
        h = fmnn__digest(digest_int(h, metric->num_thresholds), &metric->threshold, sizeof metric->threshold);
    }
    return (int64_t)h;
}

#define MAX_SAME 40

int fmnn__group_check(fmnn_model *m, const fmnn__same *values, int n, const char *fn)
{
    if (!m->group)
        return FMNN_OK;
    const fmnn__same model[] = {
        { "the layer count", m->n_layers, 0 },
        { "the layers and their options", layers_digest(m), 1 },
        { "the parameter count", (int64_t)m->n_params, 0 },
        { "the non-trainable value count", (int64_t)m->n_state, 0 },
        { "the loss", m->loss, 0 },
        { "the metrics", metrics_digest(m), 1 },
        { "the optimizer's kind", m->optimizer.kind, 0 },
        { "the optimizer's state arrays", m->slots.count, 0 },
    };
    enum { N_MODEL = sizeof model / sizeof *model };
    if (n > MAX_SAME - (int)N_MODEL)
        return fmnn__agree(m, fmnn__error(FMNN_EINVAL, "%s: too many values to compare", fn));
    /* What this process runs, then what rank 0 runs: they must match. */
    const fmnn__same *which[MAX_SAME];
    int64_t mine[MAX_SAME], theirs[MAX_SAME];
    const int count = (int)N_MODEL + n;
    for (int i = 0; i < count; i++) {
        which[i] = i < (int)N_MODEL ? &model[i] : &values[i - N_MODEL];
        mine[i] = which[i]->value;
    }
    memcpy(theirs, mine, (size_t)count * sizeof *mine);
    int err = fmnn__broadcast(m, theirs, (size_t)count * sizeof *theirs, "the values to compare");
    for (int i = 0; !err && i < count; i++) {
        if (mine[i] == theirs[i])
            continue;
        char detail[96] = "differ from rank 0's";
        if (!which[i]->is_digest)
            snprintf(detail, sizeof detail, "is %lld here, %lld on rank 0", (long long)mine[i], (long long)theirs[i]);
        err = fmnn__error(FMNN_EINVAL, "%s: rank %d does not run what rank 0 runs: %s %s (every process must run "
                          "the same model the same way)", fn, m->group->c.rank, which[i]->name, detail);
    }
    return fmnn__agree(m, err);
}

int fmnn__group_share_model(fmnn_model *m)
{
    if (!m->group)
        return FMNN_OK;
    int64_t counts[3] = { m->step, m->epochs_trained, m->steps_trained };
    int err = fmnn__broadcast(m, m->params, m->n_params * sizeof *m->params, "the weights");
    if (!err)
        err = fmnn__broadcast(m, m->state, m->n_state * sizeof *m->state, "the moving statistics");
    for (int s = 0; !err && s < m->slots.count; s++)
        err = fmnn__broadcast(m, m->slots.arrays[s], m->n_params * sizeof(float), "the optimizer's state");
    /* Its settings too: a rate that a callback or the program changed on
     * rank 0 alone.  (The kinds were compared: the ops stay right.) */
    if (!err)
        err = fmnn__broadcast(m, &m->optimizer, sizeof m->optimizer, "the optimizer's settings");
    if (!err && !(err = fmnn__broadcast(m, counts, sizeof counts, "the step counts"))) {
        m->step = counts[0];
        m->epochs_trained = counts[1];
        m->steps_trained = counts[2];
    }
    if ((err = fmnn__agree(m, err)) == FMNN_OK)
        m->group->shared = 1;
    return err;
}

/* ---- setting it ----------------------------------------------------------------- */

void fmnn__group_free(fmnn__group *g)
{
    if (!g)
        return;
    fmnn__free(g->sums);
    fmnn__free(g);
}

FMNN_API int fmnn_model_set_collective(fmnn_model *m, const fmnn_collective *c)
{
    static const char fn[] = "fmnn_model_set_collective";
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (m->in_fit)
        return fmnn__error(FMNN_ESTATE, "%s: not from inside fit (a callback)", fn);
    if (!c) {
        fmnn__group_free(m->group);
        m->group = NULL;
        return FMNN_OK;
    }
    if (c->version != FMNN_COLLECTIVE_VERSION)
        return fmnn__error(FMNN_EINVAL, "%s: version is %d; this library knows version %d "
                           "(FMNN_COLLECTIVE_VERSION)", fn, c->version, FMNN_COLLECTIVE_VERSION);
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return fmnn__error(FMNN_EINVAL, "%s: rank %d is not in 0..size - 1 (size %d)", fn, c->rank, c->size);
    if (!c->allreduce_sum || !c->broadcast || !c->barrier)
        return fmnn__error(FMNN_EINVAL, "%s: allreduce_sum, broadcast and barrier must all be given", fn);
    fmnn__group *g = fmnn__alloc_zeroed(sizeof *g, "the collective");
    if (!g)
        return FMNN_ENOMEM;
    g->c = *c;
    fmnn__group_free(m->group);
    m->group = g;
    return FMNN_OK;
}
