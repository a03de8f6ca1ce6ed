/* version.c - the version of the library actually linked, and the
 * kernels it runs on this CPU. */
#include <pthread.h>
#include <stdio.h>

#include "internal.h"
#include "kernels/gemm_bf16_impl.h"
#include "kernels/gemm_impl.h"

FMNN_API const char *fmnn_version_string(void)
{
    return FMNN_VERSION_STRING;
}

static char kernel_paths[160];
static pthread_once_t kernel_paths_once = PTHREAD_ONCE_INIT;

/* "NAME (A B C)": the path in use, then every path this CPU can run. */
static size_t describe(char *out, size_t size, const char *what, const char *in_use, const char *const *paths,
                       int (*available)(const char *))
{
    int used = snprintf(out, size, "%s %s (", what, in_use);
    for (int i = 0; paths[i] && used > 0 && (size_t)used < size; i++)
        if (available(paths[i]))
            used += snprintf(out + used, size - (size_t)used, "%s%s", out[used - 1] == '(' ? "" : " ", paths[i]);
    if (used > 0 && (size_t)used < size)
        used += snprintf(out + used, size - (size_t)used, ")");
    return used > 0 && (size_t)used < size ? (size_t)used : size - 1;
}

static void describe_kernels(void)
{
    static const char *const fp32[] = { "avx512", "avx2", "openblas", NULL };
    static const char *const bf16[] = { "amx", "avx512bf16", "portable", NULL };
    size_t used = describe(kernel_paths, sizeof kernel_paths, "fp32", fmnn__gemm_path(), fp32, fmnn__gemm_available);
    used += (size_t)snprintf(kernel_paths + used, sizeof kernel_paths - used, ", ");
    /* Without asking for AMX's permission: only bf16 products should. */
    const char *bf16_choice = "portable";
    for (int i = 0; bf16[i]; i++)
        if (fmnn__gemm_bf16_supported(bf16[i])) {
            bf16_choice = bf16[i];
            break;
        }
    if (used < sizeof kernel_paths)
        describe(kernel_paths + used, sizeof kernel_paths - used, "bf16", bf16_choice, bf16,
                 fmnn__gemm_bf16_supported);
}

FMNN_API const char *fmnn_kernel_paths(void)
{
    pthread_once(&kernel_paths_once, describe_kernels);
    return kernel_paths;
}
