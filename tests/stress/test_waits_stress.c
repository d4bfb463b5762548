/*
 * Jobs that wait, raced (issue 9): client threads submit WSCHED_BATCH_WAITS
 * batches with random policies (best effort, fail-fast, quorum), deadlines,
 * user cancels at random moments and nested batch waits, while the jobs
 * sleep 0-3 times for 0-500 us. Checked per batch after wsched_wait_idle:
 * every job's calls form one legal sequence (a first call, then one
 * resumption per wait it armed, with at most one cleanup call, which is
 * the last), a slot's status is the job's own result exactly when the job
 * finished without being cancelled, the outcome's counts agree with the
 * slots, and no call ever ran for a job twice at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"

struct frame {
    _Atomic int inside;  /* calls of this job running now (must stay <= 1) */
    int calls, sleeps, cleanups, finished;
    int planned;         /* sleeps it will take */
    wsched_batch *child; /* a nested batch it waits for, or NULL */
};

struct req {
    wsched_pool *pool;
    uint64_t seed;
    int fail_index; /* a job that returns -EIO at its end (-1: none) */
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    return x;
}

static int leaf(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST && i % 2) {
        CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + 50000));
        return WSCHED_PENDING;
    }
    return 0;
}

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    const struct req *q = arg;
    struct frame *f = slot;
    CHECK_EQ(atomic_fetch_add(&f->inside, 1), 0); /* one call at a time */
    int kind = wsched_resume_kind(ctx);
    int ret = 0;
    if (f->calls == 0) {
        CHECK_EQ(kind, WSCHED_RESUME_FIRST);
        f->planned = (int)(mix(q->seed + i) % 4);
    } else {
        CHECK(kind == WSCHED_RESUME_TIMER || kind == WSCHED_RESUME_BATCH ||
              kind == WSCHED_RESUME_CANCELLED);
        CHECK(!f->finished && f->cleanups == 0); /* nothing after the end */
    }
    f->calls++;
    if (kind == WSCHED_RESUME_BATCH) {
        CHECK(f->child != NULL);
        CHECK_OK(wsched_wait(f->child, 0));
        wsched_batch_free(f->child);
        f->child = NULL;
    }
    if (kind == WSCHED_RESUME_CANCELLED) {
        f->cleanups++;
        if (f->child) { /* resumed when the child was done */
            wsched_batch_free(f->child);
            f->child = NULL;
        }
        ret = 777; /* ignored */
    } else if (f->sleeps < f->planned) {
        f->sleeps++;
        uint64_t h = mix(q->seed ^ (i * 31 + (size_t)f->sleeps));
        if (h % 5 == 0) { /* wait for a nested batch */
            wsched_batch_desc d = {.fn = leaf, .njobs = 1 + h % 4, .flags = WSCHED_BATCH_WAITS};
            CHECK_OK(wsched_submit(q->pool, &d, &f->child));
            CHECK_OK(wsched_wait_batch(ctx, f->child));
        } else {
            CHECK_OK(wsched_sleep_until(ctx, wsched_now_ns() + (h >> 8) % 500000));
        }
        ret = WSCHED_PENDING;
    } else {
        f->finished = 1;
        ret = (int)i == q->fail_index ? -EIO : 0;
    }
    atomic_fetch_sub(&f->inside, 1);
    return ret;
}

static void *client(void *arg)
{
    wsched_pool *pool = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    long rounds = check_scale(2000);
    for (long r = 0; r < rounds; r++) {
        s = mix(s + 0x9E3779B97F4A7C15ull);
        size_t n = 1 + s % 40;
        struct req *q = malloc(sizeof *q);
        CHECK(q);
        *q = (struct req){pool, s, (s >> 8) % 3 == 0 ? (int)((s >> 16) % n) : -1};
        unsigned policy = (unsigned)((s >> 24) % 3);
        wsched_batch_desc d = {.fn = job, .arg = q, .njobs = n,
                               .slot_size = sizeof(struct frame), .flags = WSCHED_BATCH_WAITS,
                               .policy = policy};
        if (policy == WSCHED_POLICY_QUORUM)
            d.quorum = 1 + (s >> 32) % n;
        if ((s >> 40) % 4 == 0)
            d.deadline_ns = wsched_now_ns() + (s >> 44) % 1000000; /* 0-1 ms */
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        if ((s >> 50) % 4 == 0) {
            common_spin_ns((s >> 52) % 300000);
            CHECK_OK(wsched_cancel(b));
        }
        CHECK_OK(wsched_wait(b, -1));
        CHECK_OK(wsched_wait_idle(b, -1)); /* every call has returned */
        wsched_outcome o;
        CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
        CHECK(o.end != WSCHED_END_RUNNING);
        CHECK_EQ(o.ok + o.failed + o.cancelled + o.timed_out, n);
        size_t ok = 0, failed = 0;
        for (size_t i = 0; i < n; i++) {
            const struct frame *f = wsched_batch_slot(b, i);
            int st = check_status(b, i);
            CHECK_EQ(atomic_load(&((struct frame *)wsched_batch_slot(b, i))->inside), 0);
            CHECK(f->child == NULL);         /* every child freed */
            CHECK(f->cleanups <= 1);
            CHECK(!(f->finished && f->cleanups)); /* one end per job */
            if (f->calls)                    /* a started job ended, one way or the other */
                CHECK(f->finished || f->cleanups);
            if (st == 0 || st == -EIO) {     /* its own result */
                CHECK(f->finished);
                CHECK_EQ(st, (int)i == q->fail_index ? -EIO : 0);
                ok += st == 0, failed += st == -EIO;
            } else {
                CHECK(st == WSCHED_ECANCELLED || st == WSCHED_EDEADLINE);
            }
        }
        CHECK_EQ(o.ok, ok);
        CHECK_EQ(o.failed, failed);
        wsched_batch_free(b);
        free(q);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(300);
    wsched_pool *pool = check_pool(2);
    enum { CLIENTS = 4 };
    pthread_t th[CLIENTS];
    for (int k = 0; k < CLIENTS; k++)
        CHECK_EQ(pthread_create(&th[k], NULL, client, pool), 0);
    for (int k = 0; k < CLIENTS; k++)
        pthread_join(th[k], NULL);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_waits_stress: %d clients x %ld batches: ok\n", CLIENTS, check_scale(2000));
    return 0;
}
