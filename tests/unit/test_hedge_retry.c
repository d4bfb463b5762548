/*
 * A hedged round's primary that fails while its hedge still runs retries
 * at once beside it (resilient.c H5), instead of waiting for the hedge to
 * end. Every step is ordered by the test, not by time: each attempt waits
 * on a waker, and the main thread wakes them in turn once the counters
 * say that every job reached the step before. Checked:
 *  - the retry wins and the hedge is cancelled (its cleanup call);
 *  - the hedge wins during the retry's backoff (an hour): the backoff is
 *    cut and no retry begins;
 *  - the hedge wins while the retry runs: the retry's cleanup call;
 *  - the retry fails with no attempt left: the round ends with the hedge;
 *    exhausted and dead-lettered once per job, not twice;
 *  - the batch is cancelled during the backoff.
 * Each job's attempts, slot, status and the downstream's counters.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"

static const uint64_t HOUR = 3600ull * 1000000000ull;

enum { N = 8 };

enum mode {
    M_RETRY_WINS,   /* attempt 2 succeeds at once (value 3) */
    M_HEDGE_IN_BACKOFF, /* the hedge succeeds (value 2) while attempt 2 waits its backoff */
    M_HEDGE_IN_RETRY,   /* attempt 2 waits on a waker; the hedge succeeds meanwhile */
    M_EXHAUSTED,    /* attempt 2 fails at once; then the hedge fails -EIO */
    M_CANCEL,       /* the batch is cancelled during the backoff */
};

struct slot {
    int value;
    int attempt; /* the attempt this slot's pending wait belongs to (1, 2) */
};

struct ctx {
    enum mode mode;
    wsched_waker primary[N], retry[N], hedge[N];
    _Atomic int primaries, retries, hedges; /* wakers stored (RELEASE: the handle first) */
    _Atomic int cleanups, hedge_cleanups;
};

static int job(wsched_ctx *c, void *arg, size_t i, void *slotp)
{
    struct ctx *x = arg;
    struct slot *s = slotp;
    int kind = wsched_resume_kind(c);
    if (kind == WSCHED_RESUME_CANCELLED) {
        atomic_fetch_add(&x->cleanups, 1);
        if (s->attempt == 0) /* the hedge's: its scratch slot is never set */
            atomic_fetch_add(&x->hedge_cleanups, 1);
        return -EPERM; /* discarded */
    }
    if (kind == WSCHED_RESUME_HEDGE) {
        CHECK_EQ(wsched_attempt(c), 1); /* the round's, whatever the primary counts */
        CHECK_OK(wsched_waker_arm(c, 0, &x->hedge[i]));
        atomic_fetch_add_explicit(&x->hedges, 1, memory_order_release);
        return WSCHED_PENDING;
    }
    if (kind == WSCHED_RESUME_FIRST) {
        CHECK_EQ(wsched_attempt(c), 1);
        s->attempt = 1;
        CHECK_OK(wsched_waker_arm(c, 0, &x->primary[i]));
        atomic_fetch_add_explicit(&x->primaries, 1, memory_order_release);
        return WSCHED_PENDING;
    }
    if (kind == WSCHED_RESUME_RETRY) {
        CHECK_EQ(wsched_attempt(c), 2);
        s->attempt = 2;
        if (x->mode == M_RETRY_WINS) {
            s->value = 3;
            return 0;
        }
        if (x->mode == M_EXHAUSTED)
            return -EAGAIN; /* no attempt left: H5 lets the round end decide */
        CHECK_EQ(x->mode, M_HEDGE_IN_RETRY);
        CHECK_OK(wsched_waker_arm(c, 0, &x->retry[i]));
        atomic_fetch_add_explicit(&x->retries, 1, memory_order_release);
        return WSCHED_PENDING;
    }
    CHECK_EQ(kind, WSCHED_RESUME_WOKEN);
    if (s->attempt == 1)
        return -EAGAIN; /* the primary's first attempt: retried beside the hedge */
    CHECK_EQ(s->attempt, 0); /* only the hedge is woken again: its scratch slot */
    if (x->mode == M_EXHAUSTED)
        return -EIO;
    s->value = 2;
    return 0;
}

/* Wait (yielding) until *count reaches n: the jobs got there. */
static void until(_Atomic int *count, int n)
{
    while (atomic_load_explicit(count, memory_order_acquire) < n)
        sched_yield();
}

static wsched_downstream_stats stats(wsched_downstream *ds)
{
    wsched_downstream_stats s;
    CHECK_OK(wsched_downstream_get_stats(ds, &s, sizeof s));
    return s;
}

/* Until the downstream has scheduled n retries (each job's H5 decision). */
static void until_retries(wsched_downstream *ds, uint64_t n)
{
    while (stats(ds).retries < n)
        sched_yield();
}

static void wake_all(wsched_waker *w)
{
    for (size_t i = 0; i < N; i++)
        CHECK_OK(wsched_wake(w[i], 0));
}

static void scenario(wsched_pool *pool, enum mode mode)
{
    wsched_downstream_config c = {.name = "h5", .hedge = {.delay_ns = 1000}};
    c.retry.max_attempts = 2;
    c.retry.base_ns = mode == M_HEDGE_IN_BACKOFF || mode == M_CANCEL ? HOUR : 1000;
    c.retry.cap_ns = c.retry.base_ns;
    c.retry.jitter = WSCHED_JITTER_NONE;
    wsched_downstream *ds = NULL;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    struct ctx x = {.mode = mode};
    wsched_batch_desc d = {.fn = job, .arg = &x, .njobs = N, .slot_size = sizeof(struct slot),
                           .downstream = ds};
    wsched_batch *b = NULL;
    CHECK_OK(wsched_submit(pool, &d, &b));
    /* Every primary waits, and every hedge has started: the hedges wait
     * too. Then the primaries fail, and retry beside their hedges. */
    until(&x.primaries, N);
    until(&x.hedges, N);
    wake_all(x.primary);
    until_retries(ds, N);
    switch (mode) {
    case M_RETRY_WINS:
    case M_EXHAUSTED:
        break;
    case M_HEDGE_IN_BACKOFF:
        wake_all(x.hedge);
        break;
    case M_HEDGE_IN_RETRY:
        until(&x.retries, N);
        wake_all(x.hedge);
        break;
    case M_CANCEL:
        CHECK_OK(wsched_cancel(b));
        break;
    }
    if (mode == M_EXHAUSTED)
        wake_all(x.hedge); /* the rounds end with their hedges' failures */
    CHECK_OK(wsched_wait(b, -1));
    CHECK_OK(wsched_wait_idle(b, -1));

    wsched_downstream_stats s = stats(ds);
    CHECK_EQ(s.jobs, N);
    CHECK_EQ(s.hedges, N);
    CHECK_EQ(s.retries, N);
    for (size_t i = 0; i < N; i++) {
        const struct slot *sl = wsched_batch_slot(b, i);
        switch (mode) {
        case M_RETRY_WINS:
            CHECK_EQ(check_status(b, i), 0);
            CHECK_EQ(sl->value, 3);
            CHECK_EQ(wsched_batch_attempts(b, i), 2);
            break;
        case M_HEDGE_IN_BACKOFF:
            CHECK_EQ(check_status(b, i), 0);
            CHECK_EQ(sl->value, 2);
            CHECK_EQ(wsched_batch_attempts(b, i), 1); /* the retry never began */
            break;
        case M_HEDGE_IN_RETRY:
            CHECK_EQ(check_status(b, i), 0);
            CHECK_EQ(sl->value, 2);
            CHECK_EQ(wsched_batch_attempts(b, i), 2);
            break;
        case M_EXHAUSTED:
            /* The later failure: the hedge's, unless it was processed
             * before the retry's (which fails as soon as it begins). */
            CHECK(check_status(b, i) == -EIO || check_status(b, i) == -EAGAIN);
            CHECK_EQ(wsched_batch_attempts(b, i), 2);
            break;
        case M_CANCEL:
            CHECK_EQ(check_status(b, i), WSCHED_ECANCELLED);
            CHECK_EQ(wsched_batch_attempts(b, i), 1);
            break;
        }
    }
    switch (mode) {
    case M_RETRY_WINS: /* the hedges cancelled in their waits */
        CHECK_EQ(s.hedge_wins, 0);
        CHECK_EQ(atomic_load(&x.hedge_cleanups), N);
        CHECK_EQ(atomic_load(&x.cleanups), N);
        CHECK_EQ(s.attempts, 3 * N);
        break;
    case M_HEDGE_IN_BACKOFF: /* a cut backoff calls no job */
        CHECK_EQ(s.hedge_wins, N);
        CHECK_EQ(atomic_load(&x.cleanups), 0);
        CHECK_EQ(s.attempts, 2 * N);
        break;
    case M_HEDGE_IN_RETRY: /* the retries cancelled in their waits */
        CHECK_EQ(s.hedge_wins, N);
        CHECK_EQ(atomic_load(&x.hedge_cleanups), 0);
        CHECK_EQ(atomic_load(&x.cleanups), N);
        CHECK_EQ(s.attempts, 3 * N);
        break;
    case M_EXHAUSTED:
        CHECK_EQ(s.hedge_wins, 0);
        CHECK_EQ(s.exhausted, N); /* the round's end only: H5 counted nothing */
        CHECK_EQ(s.dead_letters, N);
        CHECK_EQ(atomic_load(&x.cleanups), 0);
        CHECK_EQ(s.attempts, 3 * N);
        break;
    case M_CANCEL: /* the hedges' cleanups; the backoffs call no job */
        CHECK_EQ(s.hedge_wins, 0);
        CHECK_EQ(atomic_load(&x.hedge_cleanups), N);
        CHECK_EQ(atomic_load(&x.cleanups), N);
        CHECK_EQ(s.attempts, 2 * N);
        break;
    }
    CHECK_EQ(s.in_flight, 0);
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
}

int main(void)
{
    check_watchdog(60);
    for (unsigned workers = 1; workers <= 2; workers++) {
        wsched_pool *pool = check_pool(workers);
        for (int rep = 0; rep < 20; rep++) {
            scenario(pool, M_RETRY_WINS);
            scenario(pool, M_HEDGE_IN_BACKOFF);
            scenario(pool, M_HEDGE_IN_RETRY);
            scenario(pool, M_EXHAUSTED);
            scenario(pool, M_CANCEL);
        }
        CHECK_OK(wsched_pool_destroy(pool));
    }
    puts("test_hedge_retry: ok");
    return 0;
}
