/*
 * terminate_on_nan.c - keras.callbacks.TerminateOnNaN.  fit refuses a
 * step whose loss or update is NaN or Inf and tells the callbacks with
 * FMNN_EVENT_NONFINITE; this one answers by stopping, which makes fit
 * succeed with the last good weights instead of failing with
 * FMNN_ENUMERIC.
 */
#include "../callback_impl.h"

static int terminate_on_nan_event(const fmnn_progress *p, void *data)
{
    (void)data;
    return p->event == FMNN_EVENT_NONFINITE ? FMNN_STOP_TRAINING : 0;
}

FMNN_API int fmnn_terminate_on_nan(fmnn_callback **out)
{
    if (!out)
        return fmnn__error(FMNN_EINVAL, "fmnn_terminate_on_nan: out is NULL");
    *out = fmnn__callback_alloc(sizeof **out, "TerminateOnNaN", terminate_on_nan_event);
    return *out ? FMNN_OK : FMNN_ENOMEM;
}
