/*
 * Jobs that wait (WSCHED_BATCH_WAITS, wsched_sleep_until, WSCHED_PENDING):
 * a job sleeps several times without holding its worker, keeping its
 * progress in its slot; each call knows why it runs; a resumption never
 * comes before its time; policies reach a pending job (fail-fast, user
 * cancel, deadline, quorum) with one cleanup call; bad uses get their
 * codes; a pool destroyed with jobs pending cancels their waits.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

struct frame {               /* the slot: the job's state machine */
    int calls;               /* how many times the job was called */
    int sleeps;              /* sleeps taken */
    int cleanups;            /* WSCHED_RESUME_CANCELLED calls */
    int early;               /* resumed before its time */
    uint64_t due;            /* the time it asked for */
};

struct plan {
    int sleeps;              /* per job */
    uint64_t nap_ns;         /* each sleep */
    int fail_index;          /* this job fails at once (-1: none) */
    _Atomic int went_pending; /* calls that returned WSCHED_PENDING */
};

static int sleeper(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct plan *p = arg;
    struct frame *f = slot;
    f->calls++;
    int kind = wsched_resume_kind(ctx);
    int ret;
    if (kind == WSCHED_RESUME_CANCELLED) {
        f->cleanups++;
        ret = 12345; /* ignored */
    } else if ((int)i == p->fail_index) {
        ret = -EIO;
    } else {
        if (kind == WSCHED_RESUME_TIMER && wsched_now_ns() < f->due)
            f->early++;
        CHECK_EQ(kind, f->sleeps == 0 ? WSCHED_RESUME_FIRST : WSCHED_RESUME_TIMER);
        if (f->sleeps < p->sleeps) {
            f->sleeps++;
            f->due = wsched_now_ns() + p->nap_ns;
            CHECK_OK(wsched_sleep_until(ctx, f->due));
            CHECK_EQ(wsched_sleep_until(ctx, f->due), -EBUSY); /* one wait per call */
            ret = WSCHED_PENDING;
            atomic_fetch_add(&p->went_pending, 1);
        } else {
            ret = 0;
        }
    }
    return ret;
}

static wsched_batch *submit(wsched_pool *pool, struct plan *p, size_t n, unsigned policy,
                            size_t quorum, uint64_t deadline)
{
    wsched_batch_desc d = {.fn = sleeper, .arg = p, .njobs = n, .slot_size = sizeof(struct frame),
                           .flags = WSCHED_BATCH_WAITS, .policy = policy, .quorum = quorum,
                           .deadline_ns = deadline};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    return b;
}

static struct frame *frame(wsched_batch *b, size_t i) { return wsched_batch_slot(b, i); }

/* 400 jobs x 3 sleeps of 2 ms on 2 workers: the waits overlap (a held
 * worker would need 400 * 6 ms / 2 = 1.2 s), every job ran 4 calls. */
static void test_sleeps(wsched_pool *pool)
{
    struct plan p = {.sleeps = 3, .nap_ns = 2000000, .fail_index = -1};
    uint64_t t0 = wsched_now_ns();
    wsched_batch *b = submit(pool, &p, 400, WSCHED_POLICY_BEST_EFFORT, 0, 0);
    CHECK_OK(wsched_wait(b, -1));
    uint64_t took = wsched_now_ns() - t0;
    for (size_t i = 0; i < 400; i++) {
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(frame(b, i)->calls, 4);
        CHECK_EQ(frame(b, i)->sleeps, 3);
        CHECK_EQ(frame(b, i)->early, 0);
        CHECK_EQ(frame(b, i)->cleanups, 0);
    }
    CHECK(took >= 6000000);       /* three naps in a row */
    CHECK(took < 600000000);      /* not one worker per wait (1.2 s) */
    CHECK_END(b, WSCHED_END_COMPLETED, 0);
    wsched_batch_free(b);
    printf("sleeps: 400 jobs x 3 x 2 ms in %.1f ms: ok\n", (double)took / 1e6);
}

/* Fail-fast: job 0 fails at once, the others sleep for 60 s, which only
 * the fail-fast cancel cuts short (a short sleep raced job 0 on a loaded
 * machine): they are called once more to clean up and end cancelled. */
static void test_fail_fast(wsched_pool *pool)
{
    struct plan p = {.sleeps = 1, .nap_ns = 60000000000ull, .fail_index = 0};
    wsched_batch *b = submit(pool, &p, 50, WSCHED_POLICY_FAIL_FAST, 0, 0);
    CHECK_OK(wsched_wait(b, -1));
    CHECK_END(b, WSCHED_END_FAILED, -EIO);
    CHECK_EQ(check_status(b, 0), -EIO);
    for (size_t i = 1; i < 50; i++) {
        int s = check_status(b, i);
        struct frame *f = frame(b, i);
        if (f->calls == 0) { /* never started: cancelled before its turn */
            CHECK_EQ(s, WSCHED_ECANCELLED);
        } else {
            CHECK_EQ(s, WSCHED_ECANCELLED); /* pending when job 0 failed */
            CHECK_EQ(f->cleanups, 1);
            CHECK_EQ(f->calls, 2);
        }
    }
    wsched_batch_free(b);
}

/* A user cancel while every job is pending (sleeping 60 s, which only the
 * cancel cuts short: a 10 ms sleep could end first on a loaded machine). */
static void test_cancel(wsched_pool *pool)
{
    struct plan p = {.sleeps = 1, .nap_ns = 60000000000ull, .fail_index = -1};
    wsched_batch *b = submit(pool, &p, 20, WSCHED_POLICY_BEST_EFFORT, 0, 0);
    /* Until every job has gone pending (the watchdog bounds it). */
    while (atomic_load(&p.went_pending) < 20)
        sched_yield();
    CHECK_OK(wsched_cancel(b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_END(b, WSCHED_END_CANCELLED, 0);
    for (size_t i = 0; i < 20; i++) {
        CHECK_EQ(check_status(b, i), WSCHED_ECANCELLED);
        CHECK_EQ(frame(b, i)->cleanups, 1);
    }
    wsched_batch_free(b);
}

/* Deadline 5 ms, jobs sleeping 60 ms: the batch completes at the
 * deadline with every slot WSCHED_EDEADLINE; the jobs' cleanup calls come
 * when their timers fire, and wsched_wait_idle waits for them. */
static void test_deadline(wsched_pool *pool)
{
    struct plan p = {.sleeps = 1, .nap_ns = 60000000, .fail_index = -1};
    uint64_t t0 = wsched_now_ns();
    wsched_batch *b = submit(pool, &p, 30, WSCHED_POLICY_BEST_EFFORT, 0, t0 + 5000000);
    CHECK_OK(wsched_wait(b, -1));
    uint64_t at = wsched_now_ns() - t0;
    CHECK_END(b, WSCHED_END_DEADLINE, 0);
    for (size_t i = 0; i < 30; i++)
        CHECK_EQ(check_status(b, i), WSCHED_EDEADLINE);
    CHECK(at < 55000000); /* at the deadline, not when the timers fire */
    CHECK_OK(wsched_wait_idle(b, -1));
    for (size_t i = 0; i < 30; i++)
        if (frame(b, i)->calls)
            CHECK_EQ(frame(b, i)->cleanups, 1);
    wsched_batch_free(b);
}

/* Quorum 5 of 10: jobs sleep 1..10 ms (job i sleeps i+1 naps of 1 ms). */
static int staggered(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg;
    struct frame *f = slot;
    f->calls++;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_CANCELLED) {
        f->cleanups++;
        return 0;
    }
    if (f->sleeps < (int)i + 1) {
        f->sleeps++;
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 1000000));
        return WSCHED_PENDING;
    }
    return 0;
}

static void test_quorum(wsched_pool *pool)
{
    wsched_batch_desc d = {.fn = staggered, .njobs = 10, .slot_size = sizeof(struct frame),
                           .flags = WSCHED_BATCH_WAITS, .policy = WSCHED_POLICY_QUORUM,
                           .quorum = 5};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_END(b, WSCHED_END_QUORUM_REACHED, 0);
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK(o.ok >= 5);
    CHECK_EQ(o.ok + o.cancelled, 10);
    CHECK_OK(wsched_wait_idle(b, -1)); /* the late ones cleaned up */
    wsched_batch_free(b);
}

/* Bad uses. */
static int misuse(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)slot;
    if (i == 0)
        return WSCHED_PENDING; /* nothing armed: a reserved code */
    if (i == 1) {
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 100000000));
        return 7; /* armed, then completes anyway: the wait is dropped */
    }
    CHECK_OK(wsched_sleep_until(ctx, 0)); /* due already: resumed at once */
    return wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST ? WSCHED_PENDING : 0;
}

static int no_waits(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    CHECK_EQ(wsched_sleep_until(ctx, 0), -EINVAL); /* no WSCHED_BATCH_WAITS */
    CHECK_EQ(wsched_resume_kind(ctx), WSCHED_RESUME_FIRST);
    return 0;
}

static void test_misuse(wsched_pool *pool)
{
    CHECK_EQ(wsched_sleep_until(NULL, 0), -EINVAL);
    CHECK_EQ(wsched_resume_kind(NULL), -EINVAL);
    wsched_batch *b;
    wsched_batch_desc d = {.fn = misuse, .njobs = 3, .flags = WSCHED_BATCH_WAITS};
    uint64_t t0 = wsched_now_ns();
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(check_status(b, 0), WSCHED_EJOBCODE);
    CHECK_EQ(check_status(b, 1), 7);
    CHECK_EQ(check_status(b, 2), 0);
    CHECK(wsched_now_ns() - t0 < 90000000); /* job 1's dropped wait held nothing */
    wsched_batch_free(b);
    d = (wsched_batch_desc){.fn = no_waits, .njobs = 4};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
}

/* max_parallel with waits bounds the jobs in flight, waiting ones
 * included (wsched.h): never more than M between a first call and the
 * final return, and M reached. */
struct inflight {
    atomic_int now, max;
    uint64_t nap;
};

static int limited_sleeper(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i;
    struct inflight *f = arg;
    int *sleeps = slot;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        int n = atomic_fetch_add(&f->now, 1) + 1;
        int m = atomic_load(&f->max);
        while (n > m && !atomic_compare_exchange_weak(&f->max, &m, n))
            ;
    }
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_CANCELLED) {
        atomic_fetch_sub(&f->now, 1);
        return 0;
    }
    if (*sleeps < 2) {
        (*sleeps)++;
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + f->nap));
        return WSCHED_PENDING;
    }
    atomic_fetch_sub(&f->now, 1);
    return 0;
}

static void test_max_parallel(wsched_pool *pool)
{
    for (size_t m = 1; m <= 8; m *= 2) {
        static struct inflight f;
        atomic_store(&f.now, 0);
        atomic_store(&f.max, 0);
        f.nap = 500000;
        wsched_batch_desc d = {.fn = limited_sleeper, .arg = &f, .njobs = 64,
                               .slot_size = sizeof(int), .flags = WSCHED_BATCH_WAITS,
                               .max_parallel = m};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        for (size_t i = 0; i < 64; i++) {
            CHECK_EQ(check_status(b, i), 0);
            CHECK_EQ(*(int *)wsched_batch_slot(b, i), 2);
        }
        CHECK_EQ(atomic_load(&f.now), 0);
        CHECK_EQ(atomic_load(&f.max), (int)m); /* 64 jobs sleeping 1 ms: the limit is reached */
        wsched_batch_free(b);
        /* Cancelled while its lanes wait: the lanes go on, skipping the rest. */
        f.nap = 1000000000;
        CHECK_OK(wsched_submit(pool, &d, &b));
        while (atomic_load(&f.now) < (int)m)
            sched_yield();
        CHECK_OK(wsched_cancel(b));
        CHECK_OK(wsched_wait_idle(b, -1));
        CHECK_EQ(atomic_load(&f.now), 0);
        size_t cancelled = 0;
        for (size_t i = 0; i < 64; i++)
            cancelled += check_status(b, i) == WSCHED_ECANCELLED;
        CHECK_EQ(cancelled, 64);
        wsched_batch_free(b);
    }
    printf("max_parallel with waits counts jobs in flight: ok\n");
}

/* Waits on nested batches: each parent job submits a child batch and
 * waits for it without helping or spinning; children that sleep (the
 * parent's wait outlasts its return) and children of instant jobs (they
 * may be done before the parent arms: join of 1). */
struct parent_frame {
    wsched_batch *child;
    int calls, kind_seen;
    long sum;
};

static int child_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg;
    long *out = slot;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST && (uintptr_t)arg) {
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 1000000)); /* sleepy child */
        return WSCHED_PENDING;
    }
    *out = (long)i * 10;
    return 0;
}

static int parent_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    wsched_pool *pool = arg;
    struct parent_frame *f = slot;
    f->calls++;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST: {
        uintptr_t sleepy = i % 2;
        wsched_batch_desc d = {.fn = child_job, .arg = (void *)sleepy, .njobs = 8,
                               .slot_size = sizeof(long), .flags = WSCHED_BATCH_WAITS};
        CHECK_OK(wsched_submit(pool, &d, &f->child)); /* nested: onto our deque */
        CHECK_EQ(wsched_wait_batch(ctx, NULL), -EINVAL);
        CHECK_OK(wsched_wait_batch(ctx, f->child));
        CHECK_EQ(wsched_wait_batch(ctx, f->child), -EBUSY); /* one wait per call */
        return WSCHED_PENDING;
    }
    case WSCHED_RESUME_BATCH:
        f->kind_seen = WSCHED_RESUME_BATCH;
        CHECK_OK(wsched_wait(f->child, 0)); /* its jobs all returned */
        for (size_t k = 0; k < 8; k++) {
            CHECK_EQ(check_status(f->child, k), 0);
            f->sum += *(long *)wsched_batch_slot(f->child, k);
        }
        wsched_batch_free(f->child);
        f->child = NULL;
        return 0;
    default:
        return -EPROTO;
    }
}

static int self_waiter(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    wsched_batch *_Atomic *self = arg;
    wsched_batch *mine;
    while (!(mine = atomic_load(self)))
        sched_yield();
    CHECK_EQ(wsched_wait_batch(ctx, mine), -EINVAL); /* its own batch: never done */
    return 0;
}

static void test_wait_batch(wsched_pool *pool)
{
    wsched_batch_desc d = {.fn = parent_job, .arg = pool, .njobs = 40,
                           .slot_size = sizeof(struct parent_frame), .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 40; i++) {
        const struct parent_frame *f = wsched_batch_slot(b, i);
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(f->calls, 2);
        CHECK_EQ(f->kind_seen, WSCHED_RESUME_BATCH);
        CHECK_EQ(f->sum, 10 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7));
    }
    wsched_batch_free(b);
    static wsched_batch *_Atomic selfb;
    atomic_store(&selfb, NULL);
    d = (wsched_batch_desc){.fn = self_waiter, .arg = (void *)&selfb, .njobs = 1,
                            .flags = WSCHED_BATCH_WAITS};
    CHECK_OK(wsched_submit(pool, &d, &b));
    atomic_store(&selfb, b);
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(check_status(b, 0), 0);
    wsched_batch_free(b);
    printf("batch waits: 40 parents x 8 children: ok\n");
}

/* A worker busy in a long job while its timers expire: they still fire,
 * through an idle worker (waitq.c T1-T2). The sleeper arms 1 ms on its
 * worker X and submits a nested spinner, which X usually runs next; the
 * spinner spins until the sleeper's resumption has run. Without thieves
 * firing X's timer that never happens while the spinner holds X (it gives
 * up after 5 s and the check fails). Rounds where another worker took the
 * spinner prove nothing and are not counted. */
struct busy {
    atomic_int arm_worker, resumed_on, spinner_on;
    atomic_int spun_first; /* the spinner started before the resumption ran */
    atomic_int resumed;
    wsched_pool *pool;
    wsched_batch *spinner;
};

static int busy_spinner(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    struct busy *bz = arg;
    atomic_store(&bz->spinner_on, wsched_ctx_worker(ctx));
    atomic_store(&bz->spun_first, !atomic_load(&bz->resumed));
    uint64_t give_up = wsched_now_ns() + 5000000000ull;
    while (!atomic_load(&bz->resumed) && wsched_now_ns() < give_up)
        ;
    return atomic_load(&bz->resumed) ? 0 : -ETIMEDOUT;
}

static int busy_sleeper(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    struct busy *bz = arg;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        atomic_store(&bz->arm_worker, wsched_ctx_worker(ctx));
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 1000000));
        wsched_batch_desc d = {.fn = busy_spinner, .arg = bz, .njobs = 1};
        CHECK_OK(wsched_submit(bz->pool, &d, &bz->spinner));
        return WSCHED_PENDING;
    }
    CHECK_EQ(wsched_resume_kind(ctx), WSCHED_RESUME_TIMER);
    atomic_store(&bz->resumed_on, wsched_ctx_worker(ctx));
    atomic_store(&bz->resumed, 1);
    return 0;
}

static void test_busy_owner(wsched_pool *pool)
{
    int proved = 0;
    for (int round = 0; round < 200 && proved < 5; round++) {
        static struct busy bz;
        bz.pool = pool;
        atomic_store(&bz.resumed, 0);
        atomic_store(&bz.spinner_on, -1);
        wsched_batch_desc d = {.fn = busy_sleeper, .arg = &bz, .njobs = 1,
                               .flags = WSCHED_BATCH_WAITS};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_EQ(check_status(b, 0), 0);
        wsched_batch_free(b);
        CHECK_OK(wsched_wait(bz.spinner, -1));
        CHECK_EQ(check_status(bz.spinner, 0), 0); /* the timer fired while it spun */
        wsched_batch_free(bz.spinner);
        /* (A worker preempted past the 1 ms fires the timer itself before
         * it pops the spinner: that round proves nothing either.) */
        if (atomic_load(&bz.spinner_on) == atomic_load(&bz.arm_worker) &&
            atomic_load(&bz.spun_first)) {
            CHECK(atomic_load(&bz.resumed_on) != atomic_load(&bz.arm_worker));
            proved++;
        }
    }
    CHECK(proved > 0);
    printf("timers of a worker busy in a long job fired by another: %d rounds: ok\n", proved);
}

/* A plain job that waits inside the pool (wsched_wait) for children that
 * sleep: its worker fires their timers from the in-job wait (T5), so this
 * completes on one worker too. */
static int nap_child(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    if (wsched_resume_kind(ctx) != WSCHED_RESUME_FIRST)
        return 0;
    CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 2000000));
    return WSCHED_PENDING;
}

static int parent_waits_inside(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    wsched_batch_desc d = {.fn = nap_child, .njobs = 8, .flags = WSCHED_BATCH_WAITS};
    wsched_batch *c;
    CHECK_OK(wsched_submit(arg, &d, &c));
    CHECK_OK(wsched_wait(c, -1));
    for (size_t k = 0; k < 8; k++)
        CHECK_EQ(check_status(c, k), 0);
    wsched_batch_free(c);
    return 0;
}

static void test_wait_inside(wsched_pool *pool)
{
    wsched_batch_desc d = {.fn = parent_waits_inside, .arg = pool, .njobs = 4};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t k = 0; k < 4; k++)
        CHECK_EQ(check_status(b, k), 0);
    wsched_batch_free(b);
    printf("in-job wait for sleeping children: ok\n");
}

/* Destroy with jobs pending: destroy cancels their waits (wsched.h). A
 * job sleeps twice for 1 s; each ends cancelled (its cleanup call made, slot
 * WSCHED_ECANCELLED) or, if its first call came after destroy began, with
 * the -ESHUTDOWN its arm returned. None sleeps out its second. */
struct drain_frame {
    int calls, cleanups, sleeps, kinds;
};

static int drain_sleeper(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i;
    struct drain_frame *f = slot;
    f->calls++;
    f->kinds |= 1 << wsched_resume_kind(ctx); /* (shown when a check fails) */
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_CANCELLED) {
        f->cleanups++;
        return 0;
    }
    if (f->sleeps == 2)
        return 0;
    int r = wsched_sleep_until(ctx, wsched_now_ns() + 1000000000ull);
    if (r)
        return r;
    f->sleeps++;
    atomic_fetch_add((atomic_int *)arg, 1);
    return WSCHED_PENDING;
}

/* wait_all: destroy once every job is pending (all are then cancelled),
 * else at once (some or all refused). */
static void destroy_pending(bool wait_all)
{
    wsched_pool *pool = check_pool(2);
    atomic_int pending = 0;
    wsched_batch_desc d = {.fn = drain_sleeper, .arg = &pending, .njobs = 100,
                           .slot_size = sizeof(struct drain_frame), .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    while (wait_all && atomic_load(&pending) < 100)
        sched_yield();
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_OK(wsched_wait(b, 0)); /* drained: complete */
    size_t cancelled = 0;
    for (size_t i = 0; i < 100; i++) {
        struct drain_frame *f = wsched_batch_slot(b, i);
        int st;
        CHECK_OK(wsched_batch_status(b, i, &st));
        if (st == WSCHED_ECANCELLED) {
            CHECK_EQ(f->sleeps, 1);
            CHECK_EQ(f->cleanups, 1);
            CHECK_EQ(f->calls, 2);
            cancelled++;
        } else {
            if (f->sleeps != 0)
                fprintf(stderr, "job %zu: status %d, calls %d, kinds %#x\n", i, st, f->calls,
                        f->kinds);
            CHECK_EQ(st, -ESHUTDOWN);
            CHECK_EQ(f->sleeps, 0);
            CHECK_EQ(f->calls, 1);
        }
    }
    if (wait_all)
        CHECK_EQ(cancelled, 100);
    wsched_batch_free(b);
    printf("destroy with 100 jobs pending: %zu cancelled, %zu refused: ok\n", cancelled,
           100 - cancelled);
}

static void test_destroy_pending(void)
{
    destroy_pending(true);
    destroy_pending(false);
}

int main(void)
{
    check_watchdog(120);
    wsched_pool *pool = check_pool(2);
    test_sleeps(pool);
    test_fail_fast(pool);
    test_cancel(pool);
    test_deadline(pool);
    test_quorum(pool);
    test_misuse(pool);
    test_wait_batch(pool);
    test_busy_owner(pool);
    test_max_parallel(pool);
    test_wait_inside(pool);
    CHECK_OK(wsched_pool_destroy(pool));
    test_destroy_pending();
    wsched_pool *one = check_pool(1);
    test_sleeps(one); /* one worker: every resumption on the arming worker */
    test_wait_inside(one);
    CHECK_OK(wsched_pool_destroy(one));
    printf("test_waits: ok\n");
    return 0;
}
