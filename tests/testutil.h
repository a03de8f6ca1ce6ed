/*
 * testutil.h - what the Check suites share: assertions on a call's status
 * and message, and an allocator that counts blocks and can fail the k-th
 * allocation on purpose.
 */
#ifndef FMNN_TESTUTIL_H
#define FMNN_TESTUTIL_H

#include <check.h>

#include "fmnn.h"

/* Something an out-parameter is set to before a call that must clear it. */
extern int testutil_sentinel;
#define NOT_NULL ((void *)&testutil_sentinel)

/* Fails the test unless got == want and a message is set that contains
 * needle (when not NULL).  call and line say where, in the failure. */
void testutil_expect_error(int got, int want, const char *needle, const char *call, int line);

#define EXPECT_ERROR(call, want, needle)                                   \
    do {                                                                   \
        fmnn_clear_error();                                                \
        int rc_ = (call);                                                  \
        testutil_expect_error(rc_, (want), (needle), #call, __LINE__);     \
    } while (0)

#define EXPECT_OK(call)                                                    \
    do {                                                                   \
        int rc_ = (call);                                                  \
        ck_assert_msg(rc_ == FMNN_OK, "line %d: %s returned %d: %s", __LINE__, #call, rc_, \
                      fmnn_last_error());                                  \
    } while (0)

/*
 * The counting allocator.  install() makes it the library's allocator with
 * its counters at zero; while armed, the allocation numbered fail_at
 * (from 0) returns NULL (fail_at < 0: none does).  live() is the number of
 * blocks allocated and not freed since install(); remove() restores malloc.
 */
void testutil_alloc_install(long fail_at);
void testutil_alloc_arm(int armed);
int testutil_alloc_injected(void); /* the failure happened */
long testutil_alloc_counted(void); /* allocations while armed */
long testutil_alloc_live(void);
void testutil_alloc_remove(void);

#endif
