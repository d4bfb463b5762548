/*
 * Range jobs (wsched_batch_desc.range_fn): every index is called exactly
 * once, in chunks of at most `grain`, with the slots of its chunk; a
 * chunk's return value is the status of each of its jobs; fail-fast and
 * cancellation skip whole chunks and say which; wsched_blocking and
 * spawns inside a chunk; and the combinations that are refused.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../common.h"

#define N 100003 /* prime: chunks do not divide it */

struct seen {
    _Atomic uint32_t *calls; /* per index */
    _Atomic size_t chunks, biggest;
    size_t fail_lo; /* fail the chunk holding this index (SIZE_MAX: none) */
    _Atomic int spawned;
};

static void note_chunk(struct seen *s, size_t lo, size_t hi)
{
    atomic_fetch_add(&s->chunks, 1);
    size_t big = atomic_load(&s->biggest);
    while (hi - lo > big && !atomic_compare_exchange_weak(&s->biggest, &big, hi - lo))
        ;
    for (size_t i = lo; i < hi; i++)
        atomic_fetch_add_explicit(&s->calls[i], 1, memory_order_relaxed);
}

/* Writes slot i = i * 3 for its chunk. */
static int chunk_job(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots)
{
    (void)ctx;
    struct seen *s = arg;
    CHECK(lo < hi);
    note_chunk(s, lo, hi);
    uint64_t *out = slots;
    for (size_t i = lo; i < hi; i++)
        out[i - lo] = i * 3;
    return s->fail_lo >= lo && s->fail_lo < hi ? -EIO : 0;
}

static void reset(struct seen *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_store(&s->calls[i], 0);
    atomic_store(&s->chunks, 0);
    atomic_store(&s->biggest, 0);
    atomic_store(&s->spawned, 0);
    s->fail_lo = SIZE_MAX;
}

static void exactly_once(wsched_pool *pool, struct seen *s, size_t grain)
{
    reset(s, N);
    uint64_t *slots = calloc(N, sizeof *slots);
    CHECK(slots);
    wsched_batch_desc d = {.range_fn = chunk_job, .arg = s, .njobs = N, .slots = slots,
                           .slot_size = sizeof *slots, .grain = grain};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&s->calls[i]), 1);
        CHECK_EQ(slots[i], i * 3);
        int st;
        CHECK_OK(wsched_batch_status(b, i, &st));
        CHECK_EQ(st, 0);
    }
    size_t want_max = grain ? grain : 4096;
    CHECK(atomic_load(&s->biggest) <= want_max);
    CHECK(atomic_load(&s->chunks) >= (N + want_max - 1) / want_max);
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK_EQ(o.ok, N);
    CHECK_EQ(o.end, WSCHED_END_COMPLETED);
    wsched_batch_free(b);
    free(slots);
}

/* A failing chunk: its jobs all get its code; with fail-fast the rest are
 * either run or cancelled, and the outcome names the chunk's first index. */
static void failing_chunk(wsched_pool *pool, struct seen *s, unsigned policy)
{
    reset(s, N);
    s->fail_lo = N / 2;
    uint64_t *slots = calloc(N, sizeof *slots);
    CHECK(slots);
    wsched_batch_desc d = {.range_fn = chunk_job, .arg = s, .njobs = N, .slots = slots,
                           .slot_size = sizeof *slots, .grain = 100, .policy = policy};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    size_t failed = 0, cancelled = 0, ok = 0, fail_first = SIZE_MAX;
    for (size_t i = 0; i < N; i++) {
        int st;
        CHECK_OK(wsched_batch_status(b, i, &st));
        uint32_t calls = atomic_load(&s->calls[i]);
        if (st == -EIO) {
            CHECK_EQ(calls, 1);
            failed++;
            if (fail_first == SIZE_MAX)
                fail_first = i;
        } else if (st == WSCHED_ECANCELLED) {
            CHECK_EQ(calls, 0); /* a skipped chunk was never called */
            CHECK(policy == WSCHED_POLICY_FAIL_FAST);
            cancelled++;
        } else {
            CHECK_EQ(st, 0);
            CHECK_EQ(calls, 1);
            ok++;
        }
    }
    CHECK(failed >= 1 && failed <= 100);
    CHECK(fail_first <= N / 2 && N / 2 < fail_first + failed);
    CHECK_EQ(ok + failed + cancelled, N);
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK_EQ(o.failed, failed);
    CHECK_EQ(o.first_error, -EIO);
    CHECK_EQ(o.first_error_index, fail_first);
    CHECK_EQ(o.end, policy == WSCHED_POLICY_FAIL_FAST ? WSCHED_END_FAILED : WSCHED_END_COMPLETED);
    wsched_batch_free(b);
    free(slots);
}

/* A cancelled batch: chunks not started are skipped whole. */
static int slow_chunk(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots)
{
    (void)slots;
    struct seen *s = arg;
    note_chunk(s, lo, hi);
    while (!wsched_cancelled(ctx))
        sched_yield();
    return 0;
}

static void cancelled(wsched_pool *pool, struct seen *s)
{
    reset(s, N);
    wsched_batch_desc d = {.range_fn = slow_chunk, .arg = s, .njobs = N, .grain = 1000};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    while (atomic_load(&s->chunks) == 0)
        sched_yield();
    CHECK_OK(wsched_cancel(b));
    CHECK_OK(wsched_wait(b, -1));
    size_t skipped = 0;
    for (size_t i = 0; i < N; i++) {
        int st;
        CHECK_OK(wsched_batch_status(b, i, &st));
        if (atomic_load(&s->calls[i])) {
            CHECK_EQ(st, 0);
        } else {
            CHECK_EQ(st, WSCHED_ECANCELLED);
            skipped++;
        }
    }
    CHECK(skipped > 0); /* at most two chunks were running */
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK_EQ(o.cancelled, skipped);
    CHECK_EQ(o.end, WSCHED_END_CANCELLED);
    wsched_batch_free(b);
}

/* Inside a chunk: spawned children are joined, and wsched_blocking makes
 * the jobs after the chunk stealable (the other chunks still all run). */
static void leaf(wsched_ctx *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static int spawning_chunk(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots)
{
    (void)slots;
    struct seen *s = arg;
    note_chunk(s, lo, hi);
    if (lo == 0)
        CHECK_OK(wsched_blocking(ctx));
    for (size_t i = lo; i < hi; i++)
        CHECK_OK(wsched_spawn(ctx, leaf, &s->spawned));
    return wsched_sync(ctx);
}

static void inside(wsched_pool *pool, struct seen *s)
{
    reset(s, 5000);
    wsched_batch_desc d = {.range_fn = spawning_chunk, .arg = s, .njobs = 5000, .grain = 64};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 5000; i++)
        CHECK_EQ(atomic_load(&s->calls[i]), 1);
    CHECK_EQ(atomic_load(&s->spawned), 5000);
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK_EQ(o.ok, 5000);
    wsched_batch_free(b);
}

static void refused(wsched_pool *pool, struct seen *s)
{
    wsched_batch *b = (wsched_batch *)0x1;
    wsched_batch_desc d = {.range_fn = chunk_job, .arg = s, .njobs = 10};
    wsched_batch_desc bad[] = {d, d, d, d, d, d, d, d};
    bad[0].fn = common_nop_job; /* both */
    bad[1].range_fn = NULL;     /* neither */
    bad[2].policy = WSCHED_POLICY_QUORUM, bad[2].quorum = 1;
    bad[3].deadline_ns = wsched_now_ns() + 1000000000ull;
    bad[4].max_parallel = 2;
    bad[5].flags = WSCHED_BATCH_STREAM;
    bad[6].flags = WSCHED_BATCH_WAITS;
    bad[7].range_fn = NULL, bad[7].fn = common_nop_job, bad[7].grain = 4; /* grain without range */
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK_EQ(wsched_submit(pool, &bad[k], &b), -EINVAL);
        CHECK(b == NULL);
    }
    /* One job, a grain larger than the batch: one call of [0, 1). */
    reset(s, 1);
    uint64_t slot = 0;
    d = (wsched_batch_desc){.range_fn = chunk_job, .arg = s, .njobs = 1, .grain = 1000,
                            .slots = &slot, .slot_size = sizeof slot};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(atomic_load(&s->chunks), 1);
    CHECK_EQ(atomic_load(&s->calls[0]), 1);
    wsched_batch_free(b);
}

int main(void)
{
    check_watchdog(120);
    struct seen s = {.calls = calloc(N, sizeof(_Atomic uint32_t))};
    CHECK(s.calls);
    for (unsigned workers = 1; workers <= 3; workers++) {
        wsched_pool *pool = check_pool(workers);
        for (int round = 0; round < 3; round++) {
            exactly_once(pool, &s, 0);
            exactly_once(pool, &s, 1);
            exactly_once(pool, &s, 37);
            exactly_once(pool, &s, N * 2);
        }
        failing_chunk(pool, &s, WSCHED_POLICY_BEST_EFFORT);
        failing_chunk(pool, &s, WSCHED_POLICY_FAIL_FAST);
        cancelled(pool, &s);
        inside(pool, &s);
        refused(pool, &s);
        CHECK_OK(wsched_pool_destroy(pool));
    }
    free(s.calls);
    return 0;
}
