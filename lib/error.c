/* error.c - status strings and the per-thread last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[512];
/* The message is one the processes of a collective agreed on already
 * (distributed.c): agreeing on it again keeps it as it is. */
static _Thread_local int last_error_agreed;

void fmnn__error_mark_agreed(void)
{
    last_error_agreed = 1;
}

int fmnn__error_is_agreed(void)
{
    return last_error_agreed;
}

FMNN_API const char *fmnn_strerror(int status)
{
    switch (status) {
    case FMNN_OK: return "success";
    case FMNN_EINVAL: return "invalid argument";
    case FMNN_ENOMEM: return "out of memory";
    case FMNN_ESHAPE: return "shape mismatch";
    case FMNN_ESTATE: return "call made in the wrong order";
    case FMNN_EIO: return "input/output error";
    case FMNN_EFORMAT: return "corrupt or unsupported file";
    case FMNN_ENUMERIC: return "non-finite number (NaN or Inf)";
    case FMNN_ECANCELED: return "canceled";
    case FMNN_ENOTSUP: return "not supported";
    default: return "unknown status";
    }
}

FMNN_API const char *fmnn_last_error(void)
{
    return last_error;
}

FMNN_API void fmnn_clear_error(void)
{
    last_error_agreed = 0;
    last_error[0] = '\0';
}

FMNN_API int fmnn_set_error(int status, const char *format, ...)
{
    char message[sizeof last_error]; /* format's arguments may be last_error itself */
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s", message);
    last_error_agreed = 0;
    return status;
}

int fmnn__error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_error_agreed = 0;
    return status;
}
