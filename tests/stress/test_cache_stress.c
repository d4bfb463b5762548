/*
 * Adversarial use of the batch cache and range jobs: several submitter
 * threads with random batch shapes (sizes across every cache class and the
 * large block; library or caller slots; range or single jobs; fail-fast or
 * not), batches freed by another thread than the one that submitted them
 * (a hand-off ring), detached batches (freed before they complete, from
 * the main thread),
 * cancellations racing the run, and a pool reserve. Checks: every job or
 * range index called exactly once (or skipped and marked cancelled), every
 * library slot zeroed when its job starts (reused blocks included), every
 * status what the job returned, the outcome's counts; ASan, TSan and the
 * leak check do the rest. Seeded: WSCHED_STRESS_SEED reproduces a run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../common.h"

#define THREADS 3
#define MAXN 40000

struct req {
    _Atomic uint32_t *calls; /* per index */
    size_t n, slot_size;
    uint64_t seed;
    bool lib_slots, range;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* The code job i (or the chunk starting at lo) returns: mostly 0. */
static int code_of(const struct req *q, size_t i) { return mix(q->seed + i) % 97 == 0 ? -EIO : 0; }

static void check_zeroed(const struct req *q, const char *slot)
{
    if (!q->lib_slots)
        return;
    for (size_t k = 0; k < q->slot_size; k++)
        CHECK_EQ(slot[k], 0);
}

static int single_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx;
    struct req *q = arg;
    CHECK_EQ(atomic_fetch_add_explicit(&q->calls[i], 1, memory_order_relaxed), 0);
    if (slot) {
        check_zeroed(q, slot);
        memset(slot, 0x5a, q->slot_size);
    }
    return code_of(q, i);
}

static int range_job(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots)
{
    (void)ctx;
    struct req *q = arg;
    for (size_t i = lo; i < hi; i++) {
        CHECK_EQ(atomic_fetch_add_explicit(&q->calls[i], 1, memory_order_relaxed), 0);
        if (slots) {
            char *s = (char *)slots + (i - lo) * q->slot_size;
            check_zeroed(q, s);
            memset(s, 0x5a, q->slot_size);
        }
    }
    return code_of(q, lo);
}

/* A waited batch, checked whole: its slots, statuses and outcome. */
static void verify(wsched_batch *b, struct req *q, bool failfast)
{
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    size_t ok = 0, failed = 0, cancelled = 0;
    int chunk_code = 0;
    for (size_t i = 0; i < q->n; i++) {
        int st;
        CHECK_OK(wsched_batch_status(b, i, &st));
        uint32_t calls = atomic_load_explicit(&q->calls[i], memory_order_relaxed);
        if (st == WSCHED_ECANCELLED) {
            CHECK_EQ(calls, 0);
            cancelled++;
            continue;
        }
        CHECK_EQ(calls, 1);
        if (q->range) {
            /* Within a chunk every status is the chunk's; a chunk's code is
             * code_of(its lo), so a status -EIO names some index <= i. */
            CHECK(st == 0 || st == -EIO);
            chunk_code = st;
        } else {
            CHECK_EQ(st, code_of(q, i));
        }
        st == 0 ? ok++ : failed++;
        if (q->slot_size) {
            const char *s = wsched_batch_slot(b, i);
            CHECK(s != NULL);
            for (size_t k = 0; k < q->slot_size; k++)
                CHECK_EQ((unsigned char)s[k], 0x5a);
        }
    }
    (void)chunk_code;
    CHECK_EQ(o.ok, ok);
    CHECK_EQ(o.failed, failed);
    CHECK_EQ(o.cancelled, cancelled);
    CHECK_EQ(o.unfinished, 0);
    if (!failfast && cancelled == 0)
        CHECK_EQ(o.end, WSCHED_END_COMPLETED);
}

/* Finished batches handed to another thread to free. */
#define RING 64
static _Atomic(wsched_batch *) handoff[RING];

static void hand_off(wsched_batch *b, uint64_t x)
{
    for (unsigned k = 0; k < RING; k++) {
        wsched_batch *none = NULL;
        if (atomic_compare_exchange_strong(&handoff[(x + k) % RING], &none, b))
            return;
    }
    wsched_batch_free(b); /* ring full: ours */
}

static void take_some(uint64_t x)
{
    for (unsigned k = 0; k < 4; k++) {
        wsched_batch *b = atomic_exchange(&handoff[(x + k) % RING], NULL);
        if (b)
            wsched_batch_free(b);
    }
}

struct thread_arg {
    wsched_pool *pool;
    uint64_t seed;
    int rounds;
};

static void *submitter(void *arg)
{
    struct thread_arg *ta = arg;
    uint64_t x = ta->seed;
    struct req q = {.calls = calloc(MAXN, sizeof(_Atomic uint32_t))};
    CHECK(q.calls);
    char *caller = malloc((size_t)MAXN * 24);
    CHECK(caller);
    for (int round = 0; round < ta->rounds; round++) {
        x = mix(x + 1);
        /* Shapes across the classes: 1..16 jobs mostly, some of hundreds,
         * thousands (64 KiB and up: the large block) and tens of
         * thousands. */
        unsigned shape = x % 16;
        q.n = shape < 10 ? 1 + (x >> 8) % 16 : shape < 13 ? 100 + (x >> 8) % 900
              : shape < 15 ? 2000 + (x >> 8) % 8000 : 20000 + (x >> 8) % (MAXN - 20000);
        q.slot_size = (x >> 24) % 3 == 0 ? 0 : 1 + (x >> 26) % 24;
        q.lib_slots = q.slot_size && (x >> 31) % 3 != 0;
        q.range = (x >> 33) % 3 == 0;
        q.seed = x;
        bool failfast = (x >> 37) % 4 == 0;
        bool cancel = (x >> 39) % 7 == 0;
        for (size_t i = 0; i < q.n; i++)
            atomic_store_explicit(&q.calls[i], 0, memory_order_relaxed);
        if (q.slot_size && !q.lib_slots)
            memset(caller, 0, q.n * q.slot_size);
        wsched_batch_desc d = {.arg = &q, .njobs = q.n, .slot_size = q.slot_size,
                               .slots = q.slot_size && !q.lib_slots ? caller : NULL,
                               .policy = failfast ? WSCHED_POLICY_FAIL_FAST : 0};
        if (q.range) {
            d.range_fn = range_job;
            d.grain = (x >> 41) % 2 ? 0 : 1 + (x >> 42) % 64;
        } else {
            d.fn = single_job;
        }
        wsched_batch *b;
        CHECK_OK(wsched_submit(ta->pool, &d, &b));
        if (cancel)
            CHECK_OK(wsched_cancel(b));
        CHECK_OK(wsched_wait(b, -1));
        verify(b, &q, failfast || cancel);
        if (x % 3 == 0)
            hand_off(b, x);
        else
            wsched_batch_free(b);
        take_some(x >> 7);
    }
    free(caller);
    free(q.calls);
    return NULL;
}

/* Detached batches: freed at once after submit; their jobs write only
 * their own counters, which outlive the pool's drain. */
static _Atomic uint32_t detached_calls[64];
static int detached_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)slot;
    atomic_fetch_add(&detached_calls[i % 64], 1);
    return 0;
}

int main(int argc, char **argv)
{
    check_watchdog(300);
    uint64_t seed = (uint64_t)check_setting(argc, argv, 1, "WSCHED_STRESS_SEED", 0, 1L << 62, 12345);
    int rounds = (int)check_scale(400);
    printf("seed %llu, %d rounds x %d threads\n", (unsigned long long)seed, rounds, THREADS);
    for (int pass = 0; pass < 2; pass++) {
        wsched_pool *pool = check_pool(pass ? 3 : 2);
        if (pass) {
            wsched_batch_desc like = {.njobs = 16, .slot_size = 8};
            CHECK(wsched_reserve(pool, &like, 200) > 0);
        }
        pthread_t th[THREADS];
        struct thread_arg ta[THREADS];
        for (int t = 0; t < THREADS; t++) {
            ta[t] = (struct thread_arg){pool, mix(seed + (uint64_t)t + 100u * (uint64_t)pass), rounds};
            CHECK_EQ(pthread_create(&th[t], NULL, submitter, &ta[t]), 0);
        }
        size_t detached = 0;
        for (int k = 0; k < 200; k++) {
            wsched_batch_desc d = {.fn = detached_job, .njobs = 1 + (size_t)k % 64};
            wsched_batch *b;
            CHECK_OK(wsched_submit(pool, &d, &b));
            wsched_batch_free(b); /* before it completes, most likely */
            detached += d.njobs;
        }
        for (int t = 0; t < THREADS; t++)
            CHECK_EQ(pthread_join(th[t], NULL), 0);
        take_some(0), take_some(4), take_some(8);
        for (unsigned k = 0; k < RING; k++) {
            wsched_batch *b = atomic_exchange(&handoff[k], NULL);
            wsched_batch_free(b);
        }
        CHECK_OK(wsched_pool_destroy(pool)); /* drains the detached ones */
        size_t sum = 0;
        for (int k = 0; k < 64; k++)
            sum += atomic_exchange(&detached_calls[k], 0);
        CHECK_EQ(sum, detached);
    }
    return 0;
}
