/*
 * inference.c - inference contexts (fmnn/inference.h): many threads
 * predicting with one model, each context with buffers of its own.
 *
 * A context is a set of buffers (plan.h) and a handle on its model.  Its
 * predictions run the model's own predict (train.c) in those buffers:
 * the forward pass reads the model and writes only the buffers it is
 * given, so contexts share nothing that is written.
 *
 * What the model must not do meanwhile is change what they read.  Two
 * counters guard that without a lock: a prediction adds itself to
 * `predicting` and then looks at `changing`; a change (fit and the
 * others) adds itself to `changing` and then looks at `predicting`.
 * Sequentially consistent, the two cannot both miss each other: when
 * they meet, the one that sees the other backs out with FMNN_ESTATE (both
 * may), so a prediction never reads weights half-written.  Changes nest
 * (fit's callbacks may set weights), and two changes from two threads are
 * the caller's to avoid, as before.
 */
#include "tensor_impl.h"
#include "train.h"

struct fmnn_inference {
    fmnn_model *model; /* a handle: the model lives while the context does */
    fmnn_buffers buf;
    int threads;       /* its own count, or 0 */
};

/* ---- the guard --------------------------------------------------------- */

int fmnn__model_change_begin(fmnn_model *m, const char *fn)
{
    atomic_fetch_add(&m->changing, 1);
    const int predicting = atomic_load(&m->predicting);
    if (predicting == 0)
        return FMNN_OK;
    atomic_fetch_sub(&m->changing, 1);
    return fmnn__error(FMNN_ESTATE, "%s: %d inference context%s predicting with this model; change it between "
                       "predictions", fn, predicting, predicting == 1 ? " is" : "s are");
}

void fmnn__model_change_end(fmnn_model *m)
{
    atomic_fetch_sub(&m->changing, 1);
}

static int predict_begin(fmnn_model *m, const char *fn)
{
    atomic_fetch_add(&m->predicting, 1);
    if (atomic_load(&m->changing) == 0)
        return FMNN_OK;
    atomic_fetch_sub(&m->predicting, 1);
    return fmnn__error(FMNN_ESTATE, "%s: the model is being changed (fit, train_on_batch, set_layer_weights or "
                       "adapt is running)", fn);
}

static void predict_end(fmnn_model *m)
{
    atomic_fetch_sub(&m->predicting, 1);
}

/* ---- contexts ---------------------------------------------------------- */

FMNN_API int fmnn_inference_new(fmnn_inference **out, const fmnn_model *model)
{
    static const char fn[] = "fmnn_inference_new";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!model)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (!model->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: call fmnn_model_compile first", fn);
    fmnn_inference *ctx = fmnn__alloc_zeroed(sizeof *ctx, "an inference context");
    if (!ctx)
        return FMNN_ENOMEM;
    /* The handle count is the one thing a context writes in its model:
     * bookkeeping, not what the model computes, so the model stays const
     * to the caller.  (Models are never const objects: they are allocated.) */
    ctx->model = (fmnn_model *)model;
    atomic_fetch_add(&ctx->model->handles, 1);
    ctx->buf.training = 0; /* forward only: no gradients, no targets */
    *out = ctx;
    return FMNN_OK;
}

FMNN_API void fmnn_inference_free(fmnn_inference *ctx)
{
    if (!ctx)
        return;
    fmnn__plan_free_buffers(&ctx->buf);
    fmnn__model_release(ctx->model);
    fmnn__free(ctx);
}

FMNN_API int fmnn_inference_set_num_threads(fmnn_inference *ctx, int n)
{
    if (!ctx)
        return fmnn__error(FMNN_EINVAL, "fmnn_inference_set_num_threads: ctx is NULL");
    if (n < 0)
        return fmnn__error(FMNN_EINVAL, "fmnn_inference_set_num_threads: n must be >= 0, got %d", n);
    ctx->threads = n;
    return FMNN_OK;
}

/* What both predict calls check: the context, x and the batch size. */
static int check_call(const fmnn_inference *ctx, const fmnn_tensor *x, int batch_size, const char *fn)
{
    if (!ctx)
        return fmnn__error(FMNN_EINVAL, "%s: ctx is NULL", fn);
    int err = fmnn__check_x(ctx->model, x, fn);
    if (err)
        return err;
    if (batch_size < 0)
        return fmnn__error(FMNN_EINVAL, "%s: batch_size must be >= 0, got %d", fn, batch_size);
    return FMNN_OK;
}

/* The model's predict in the context's buffers, on its thread count,
 * inside the guard. */
static int predict(fmnn_inference *ctx, const fmnn_tensor *x, int batch_size, fmnn_tensor *into,
                   fmnn_tensor **out, const char *fn)
{
    fmnn_model *m = ctx->model;
    int err = predict_begin(m, fn);
    if (err)
        return err;
    const int chunk = fmnn__inference_chunk(m, &ctx->buf, batch_size ? batch_size : 32);
    const int threads = fmnn__threads_local(ctx->threads);
    err = fmnn__predict(m, &ctx->buf, x, chunk, into, out, fn);
    fmnn__threads_local(threads);
    predict_end(m);
    return err;
}

FMNN_API int fmnn_inference_predict(fmnn_inference *ctx, const fmnn_tensor *x, int batch_size, fmnn_tensor **out)
{
    static const char fn[] = "fmnn_inference_predict";
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    int err = check_call(ctx, x, batch_size, fn);
    return err ? err : predict(ctx, x, batch_size, NULL, out, fn);
}

FMNN_API int fmnn_inference_predict_into(fmnn_inference *ctx, const fmnn_tensor *x, int batch_size,
                                         fmnn_tensor *out)
{
    static const char fn[] = "fmnn_inference_predict_into";
    int err = check_call(ctx, x, batch_size, fn);
    if (err)
        return err;
    if (!out)
        return fmnn__error(FMNN_EINVAL, "%s: out is NULL", fn);
    int dims[FMNN_MAX_RANK], rank;
    if ((err = fmnn__output_dims(ctx->model, x->dims[0], dims, &rank, fn)))
        return err;
    int same = out->rank == rank;
    for (int d = 0; same && d < rank; d++)
        same = out->dims[d] == dims[d];
    if (!same) {
        char want[64], got[64];
        fmnn__dims_format(dims, rank, want, sizeof want);
        fmnn__dims_format(out->dims, out->rank, got, sizeof got);
        return fmnn__error(FMNN_ESHAPE, "%s: out has shape %s but the model's output for x is %s", fn, got, want);
    }
    return predict(ctx, x, batch_size, out, NULL, fn);
}
