/*
 * The one futex protocol of wsched. Callers follow the same shape everywhere:
 *   waiter:  v = ld(word, ...); <re-check the condition>; futex_wait(word, v)
 *            and loop: a wake-up may be spurious, EINTR or EAGAIN (the word
 *            changed before we slept) simply return to the re-check.
 *   waker:   change the word (an atomic RMW or a store), then futex_wake.
 * The kernel compares *word with v atomically with queueing the waiter, so a
 * change made before futex_wait is never missed.
 */
#ifndef WSCHED_FUTEX_H
#define WSCHED_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleep while *word == val, until an absolute CLOCK_MONOTONIC deadline (NULL =
 * none). Returns 0 when woken or when the word had changed, -ETIMEDOUT at
 * the deadline, -EINTR on a signal. Aborts on errors that mean a bug. */
static inline int futex_wait(_Atomic uint32_t *word, uint32_t val,
                             const struct timespec *deadline)
{
    long r = syscall(SYS_futex, (uint32_t *)word,
                     FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, deadline, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    switch (errno) {
    case EAGAIN:
        return 0;
    case EINTR:
        return -EINTR;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    default:
        abort(); /* EFAULT/EINVAL: a wsched bug, never user input */
    }
}

static inline void futex_wake(_Atomic uint32_t *word, int n)
{
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n,
                NULL, NULL, 0) < 0)
        abort();
}

static inline void futex_wake_all(_Atomic uint32_t *word)
{
    futex_wake(word, INT_MAX);
}

/* An absolute CLOCK_MONOTONIC time in ns (0 = none) as futex_wait's
 * deadline: NULL for none, else *ts filled in. */
static inline const struct timespec *abs_deadline(uint64_t until, struct timespec *ts)
{
    if (!until)
        return NULL;
    ts->tv_sec = (time_t)(until / 1000000000u);
    ts->tv_nsec = (long)(until % 1000000000u);
    return ts;
}


#endif
