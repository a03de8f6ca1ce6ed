/*
 * adapt.c - fmnn_model_adapt, Keras's Normalization.adapt()
 * (keras/src/layers/preprocessing/normalization.py): the mean and biased
 * variance, per channel of the layer's last axis, of what reaches the
 * layer over every other axis (np.mean and np.var over _reduce_axis).
 *
 * The layers before it run in inference mode, as predict runs them, a
 * chunk of samples at a time; the sums are taken in double, value after
 * value in sample order, so chunks of any size add the same numbers in
 * the same order and give the same bits.  They are shifted by the first
 * sample's values, which keeps the one-pass variance,
 *     var = (sum d^2 - (sum d)^2 / N) / N,   d = x - shift,
 * from cancelling when the mean is far from 0.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "tensor_impl.h"
#include "train.h"

extern const struct fmnn_layer_ops fmnn__normalization_ops;

typedef struct moments {
    size_t c;
    double *shift, *sum, *sum2;
    double count;
} moments;

/* Adds rows of c values; 0, or the first row that is not finite. */
static size_t add_rows(moments *s, const float *v, size_t rows, size_t *bad)
{
    for (size_t r = 0; r < rows; r++, v += s->c) {
        for (size_t k = 0; k < s->c; k++)
            if (!isfinite(v[k])) {
                *bad = r;
                return 1;
            }
        if (s->count == 0.0)
            for (size_t k = 0; k < s->c; k++)
                s->shift[k] = v[k];
        for (size_t k = 0; k < s->c; k++) {
            const double d = (double)v[k] - s->shift[k];
            s->sum[k] += d;
            s->sum2[k] += d * d;
        }
        s->count += 1.0;
    }
    return 0;
}

/* fmnn_model_adapt with chunks of at most `chunk` samples (tests vary it;
 * 0: as many as predict would take). */
FMNN_INTERNAL int fmnn__model_adapt(fmnn_model *m, int layer_index, const fmnn_tensor *x, int chunk);

int fmnn__model_adapt(fmnn_model *m, int layer_index, const fmnn_tensor *x, int chunk)
{
    static const char fn[] = "fmnn_model_adapt";
    if (!m)
        return fmnn__error(FMNN_EINVAL, "%s: model is NULL", fn);
    if (!m->compiled)
        return fmnn__error(FMNN_ESTATE, "%s: call fmnn_model_compile first", fn);
    if (layer_index < 0 || layer_index >= m->n_layers)
        return fmnn__error(FMNN_EINVAL, "%s: layer_index %d is not in 0..%d", fn, layer_index, m->n_layers - 1);
    fmnn_layer *layer = m->layers[layer_index];
    if (layer->ops != &fmnn__normalization_ops)
        return fmnn__error(FMNN_EINVAL, "%s: layer %d, %s (%s), is not a Normalization layer", fn, layer_index,
                           layer->name, layer->ops->type);
    int err = fmnn__check_x(m, x, fn);
    if (err)
        return err;
    if (m->in_fit)
        return fmnn__error(FMNN_ESTATE, "%s: not from inside fit (a callback)", fn);
    if (chunk <= 0)
        chunk = fmnn__inference_chunk(m, &m->buf, INT_MAX);
    if (chunk > fmnn__model_batch_limit(m))
        chunk = fmnn__model_batch_limit(m);
    if ((err = fmnn__plan_buffers(m, &m->buf, chunk)))
        return err;

    moments s = { .c = (size_t)layer->in.dims[layer->in.rank - 1] };
    double *block = fmnn__alloc_array(3 * s.c, sizeof *block, "the adapt sums");
    if (!block)
        return FMNN_ENOMEM;
    s.shift = block;
    s.sum = block + s.c;
    s.sum2 = block + 2 * s.c;
    for (size_t k = 0; k < 2 * s.c; k++)
        s.sum[k] = 0.0; /* sum and sum2 */
    const size_t x_width = x->size / (size_t)x->dims[0];
    const size_t rows_per_sample = fmnn__shape_size(&layer->in) / s.c;
    fmnn_pass pass = { .training = 0 };
    const unsigned fp = fmnn__flush_denormals(); /* see internal.h */
    for (int start = 0; start < x->dims[0] && !err; start += chunk) {
        pass.batch = x->dims[0] - start < chunk ? x->dims[0] - start : chunk;
        const float *x_at = x->data + (size_t)start * x_width;
        const float *v = fmnn__plan_forward_until(m, &m->buf, &pass, x_at, layer_index);
        size_t bad = 0;
        if (add_rows(&s, v, (size_t)pass.batch * rows_per_sample, &bad))
            err = fmnn__error(FMNN_ENUMERIC, "%s: what reaches %s (%s) from sample %zu is NaN or Inf", fn,
                              layer->name, layer->ops->type, (size_t)start + bad / rows_per_sample);
    }
    fmnn__restore_fp_mode(fp);
    /* Only a complete, finite result replaces the statistics. */
    if (!err && !(err = fmnn__model_change_begin(m, fn))) {
        for (size_t k = 0; k < s.c; k++) {
            const double mean = s.sum[k] / s.count;
            const double var = (s.sum2[k] - s.sum[k] * mean) / s.count;
            layer->state[k] = (float)(s.shift[k] + mean);
            layer->state[s.c + k] = var > 0.0 ? (float)var : 0.0f;
        }
        fmnn__model_change_end(m);
    }
    fmnn__free(block);
    return err;
}

FMNN_API int fmnn_model_adapt(fmnn_model *model, int layer_index, const fmnn_tensor *x)
{
    return fmnn__model_adapt(model, layer_index, x, 0);
}
