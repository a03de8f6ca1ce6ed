/*
 * alloc.c - every allocation of the library, through a replaceable
 * allocator so that tests can make the k-th allocation fail.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ALIGNMENT 64

static void *default_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void default_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static fmnn_allocator current = { default_malloc, default_free, NULL };

FMNN_API void fmnn_set_allocator(const fmnn_allocator *allocator)
{
    if (allocator && allocator->malloc_fn && allocator->free_fn)
        current = *allocator;
    else
        current = (fmnn_allocator){ default_malloc, default_free, NULL };
}

/*
 * The block the allocator returned is kept just before the aligned
 * pointer we hand out, so fmnn__free can give it back.
 */
void *fmnn__alloc(size_t size, const char *what)
{
    size_t total = size + ALIGNMENT + sizeof(void *);
    if (total < size) {
        fmnn__error(FMNN_ENOMEM, "out of memory: %s needs %zu bytes", what, size);
        return NULL;
    }
    unsigned char *raw = current.malloc_fn(total, current.user);
    if (!raw) {
        fmnn__error(FMNN_ENOMEM, "out of memory: %s needs %zu bytes", what, size);
        return NULL;
    }
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (start + ALIGNMENT - 1) & ~(uintptr_t)(ALIGNMENT - 1);
    ((void **)aligned)[-1] = raw;
    return (void *)aligned;
}

void *fmnn__alloc_zeroed(size_t size, const char *what)
{
    void *p = fmnn__alloc(size, what);
    if (p)
        memset(p, 0, size);
    return p;
}

void *fmnn__alloc_array(size_t n, size_t size, const char *what)
{
    size_t total;
    if (!fmnn__mul_ok(n, size, &total)) {
        fmnn__error(FMNN_ENOMEM, "out of memory: %s needs %zu x %zu bytes", what, n, size);
        return NULL;
    }
    return fmnn__alloc(total, what);
}

void fmnn__free(void *ptr)
{
    if (ptr)
        current.free_fn(((void **)ptr)[-1], current.user);
}

