/* fmnn/version.h - compile-time and run-time version of libfmnn. */
#ifndef FMNN_VERSION_H
#define FMNN_VERSION_H

#include "common.h"

#define FMNN_VERSION_MAJOR 0
#define FMNN_VERSION_MINOR 5
#define FMNN_VERSION_PATCH 3
#define FMNN_VERSION_STRING "0.5.3"

/**
 * The shared library's soname is libfmnn.so.FMNN_SOVERSION.  It grows by
 * one with every incompatible ABI change, and only then.
 */
#define FMNN_SOVERSION 4

/** Encodes a version as one comparable number: 0.1.0 -> 100. */
#define FMNN_VERSION_NUMBER(major, minor, patch) \
    ((major) * 10000 + (minor) * 100 + (patch))
#define FMNN_VERSION \
    FMNN_VERSION_NUMBER(FMNN_VERSION_MAJOR, FMNN_VERSION_MINOR, FMNN_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the library actually linked, such as "0.1.0". */
FMNN_API const char *fmnn_version_string(void);

/**
 * The matrix-product kernels this CPU runs, chosen at run time: for each
 * precision the one in use, then every one the CPU can run, such as
 * "fp32 avx512 (avx512 avx2 openblas), bf16 amx (amx avx512bf16 portable)".
 * Static; thread-safe.
 */
FMNN_API const char *fmnn_kernel_paths(void);

#ifdef __cplusplus
}
#endif

#endif /* FMNN_VERSION_H */
