/* testutil.c - see testutil.h. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

int testutil_sentinel;

void testutil_expect_error(int got, int want, const char *needle, const char *call, int line)
{
    const char *msg = fmnn_last_error();
    ck_assert_msg(got == want, "line %d: %s returned %d (%s: \"%s\"), expected %d (%s)", line, call,
                  got, fmnn_strerror(got), msg, want, fmnn_strerror(want));
    ck_assert_msg(msg && msg[0] != '\0', "line %d: %s left no error message", line, call);
    if (needle)
        ck_assert_msg(strstr(msg, needle) != NULL, "line %d: %s: message \"%s\" does not name \"%s\"",
                      line, call, msg, needle);
}

/* Atomics: the library may allocate from several threads. */
static atomic_long live;     /* blocks allocated and not yet freed */
static atomic_long counted;  /* allocations while armed */
static atomic_int armed;     /* count (and fail) only during the operation */
static atomic_int injected;  /* the failure happened */
static long fail_at;

static void *counting_malloc(size_t size, void *user)
{
    (void)user;
    if (atomic_load(&armed)) {
        long k = atomic_fetch_add(&counted, 1);
        if (k == fail_at) {
            atomic_store(&injected, 1);
            return NULL;
        }
    }
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

static void counting_free(void *ptr, void *user)
{
    (void)user;
    if (ptr) {
        atomic_fetch_sub(&live, 1);
        free(ptr);
    }
}

static const fmnn_allocator counting = { counting_malloc, counting_free, NULL };

void testutil_alloc_install(long k)
{
    atomic_store(&live, 0);
    atomic_store(&counted, 0);
    atomic_store(&injected, 0);
    atomic_store(&armed, 0);
    fail_at = k;
    fmnn_set_allocator(&counting);
}

void testutil_alloc_arm(int on)
{
    atomic_store(&armed, on);
}

int testutil_alloc_injected(void)
{
    return atomic_load(&injected);
}

long testutil_alloc_counted(void)
{
    return atomic_load(&counted);
}

long testutil_alloc_live(void)
{
    return atomic_load(&live);
}

void testutil_alloc_remove(void)
{
    atomic_store(&armed, 0);
    fmnn_set_allocator(NULL);
}
