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

/* The status combined over c's processes: each process writes its status
 * in its own slot of a block of votes and the blocks are summed, so that
 * every process sees every status.  A failure is the lowest failing
 * rank's, with its message, which that rank broadcasts. */
static int agree_with(const fmnn_collective *c, int status)
{
    char message[512];
    snprintf(message, sizeof message, "%s", status < 0 ? fmnn_last_error() : "");
    int best = FMNN_OK;
    for (int base = 0; base < c->size; base += VOTE_BLOCK) {
        double votes[VOTE_BLOCK] = { 0 };
        const int n = c->size - base < VOTE_BLOCK ? c->size - base : VOTE_BLOCK;
        if (c->rank >= base && c->rank < base + n)
            votes[c->rank - base] = (double)status;
        int err = c->allreduce_sum(c->context, votes, (size_t)n, FMNN_COLLECTIVE_FLOAT64);
        if (err)
            return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's allreduce_sum failed (%s) while the "
                               "processes agreed on a status", fmnn_strerror(err));
        for (int i = 0; i < n; i++) {
            const int vote = (int)votes[i], r = base + i;
            if (vote >= 0) {
                best = vote > best ? vote : best;
                continue;
            }
            if ((err = c->broadcast(c->context, message, sizeof message, r)))
                return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's broadcast failed (%s) while "
                                   "rank %d's failure was told", fmnn_strerror(err), r);
            if (r == c->rank)
                return status; /* its own message stands */
            message[sizeof message - 1] = '\0';
            return fmnn__error(vote, "rank %d: %s", r, *message ? message : fmnn_strerror(vote));
        }
    }
    return best;
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

int fmnn__writes_files(const fmnn_model *m)
{
    return !m || !m->group || m->group->c.rank == 0;
}

int fmnn__sum(const fmnn_model *m, void *data, size_t count, fmnn_collective_type type, const char *what)
{
    if (!m->group || count == 0)
        return FMNN_OK;
    const fmnn_collective *c = &m->group->c;
    const int err = c->allreduce_sum(c->context, data, count, type);
    if (err)
        return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's allreduce_sum of %s failed (%s)", what,
                           fmnn_strerror(err));
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

static int broadcast(const fmnn_model *m, void *data, size_t bytes, const char *what)
{
    const fmnn_collective *c = &m->group->c;
    const int err = bytes ? c->broadcast(c->context, data, bytes, 0) : FMNN_OK;
    if (err)
        return fmnn__error(err < 0 ? err : FMNN_EIO, "the collective's broadcast of %s failed (%s)", what,
                           fmnn_strerror(err));
    return FMNN_OK;
}

#define MAX_FIT_VALUES 32

int fmnn__group_begin_fit(fmnn_model *m, const int64_t *fit, const char *const *names, int n, const char *fn)
{
    if (!m->group)
        return FMNN_OK;
    /* What rank 0 runs, then what this process runs: they must match. */
    const char *const model_names[] = { "the parameter count", "the non-trainable value count",
                                        "the optimizer's state arrays", "the layer count" };
    enum { N_MODEL = 4 };
    int64_t mine[N_MODEL + MAX_FIT_VALUES], theirs[N_MODEL + MAX_FIT_VALUES];
    mine[0] = (int64_t)m->n_params;
    mine[1] = (int64_t)m->n_state;
    mine[2] = m->slots.count;
    mine[3] = m->n_layers;
    memcpy(mine + N_MODEL, fit, (size_t)n * sizeof *fit);
    memcpy(theirs, mine, sizeof mine);
    const size_t count = (size_t)(N_MODEL + n);
    int err = broadcast(m, theirs, count * sizeof *theirs, "the fit's settings");
    for (size_t i = 0; !err && i < count; i++)
        if (mine[i] != theirs[i])
            err = fmnn__error(FMNN_EINVAL, "%s: rank %d runs another fit than rank 0: %s is %lld here, %lld on "
                              "rank 0 (every process must fit the same model the same way)", fn, m->group->c.rank,
                              i < N_MODEL ? model_names[i] : names[i - N_MODEL], (long long)mine[i],
                              (long long)theirs[i]);
    if ((err = fmnn__agree(m, err)))
        return err;
    /* Then rank 0's model, as Horovod's broadcast_parameters: the same
     * start everywhere, whatever each process was initialized with. */
    int64_t counts[3] = { m->step, m->epochs_trained, m->steps_trained };
    err = broadcast(m, m->params, m->n_params * sizeof *m->params, "the weights");
    if (!err)
        err = broadcast(m, m->state, m->n_state * sizeof *m->state, "the moving statistics");
    for (int s = 0; !err && s < m->slots.count; s++)
        err = broadcast(m, m->slots.arrays[s], m->n_params * sizeof(float), "the optimizer's state");
    if (!err && !(err = broadcast(m, counts, sizeof counts, "the step counts"))) {
        m->step = counts[0];
        m->epochs_trained = counts[1];
        m->steps_trained = counts[2];
    }
    return fmnn__agree(m, err);
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
