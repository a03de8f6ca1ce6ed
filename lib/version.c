/* version.c - the version of the library actually linked. */
#include "internal.h"

FMNN_API const char *fmnn_version_string(void)
{
    return FMNN_VERSION_STRING;
}
