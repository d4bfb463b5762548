/* Batches: slot order, statuses, failures isolated, large N, N = 1, caller
 * memory, padded slots, many batches from many submitting threads. */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

struct out {
    size_t index;
    uint64_t value;
};

static int square_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx;
    const uint64_t *in = arg;
    struct out *o = slot;
    o->index = i;
    o->value = in[i] * in[i];
    return 0;
}

/* Every 7th job fails with its own code; others succeed. */
static int failing_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    *(uint64_t *)slot = i + 1;
    return i % 7 == 3 ? -(int)(1 + i % 100) : 0;
}

static _Atomic unsigned long counted;
static int count_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)slot;
    _Atomic unsigned char *seen = arg;
    atomic_fetch_add_explicit(&seen[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed);
    return 0;
}

static int reserved_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)slot;
    return i == 0 ? WSCHED_ERRBASE : WSCHED_ERRBASE + 1;
}

static void test_order(wsched_pool *pool, size_t n)
{
    uint64_t *in = malloc(n * sizeof *in);
    for (size_t i = 0; i < n; i++)
        in[i] = i * 3 + 1;
    wsched_batch_desc d = {.fn = square_job, .arg = in, .njobs = n,
                           .slot_size = sizeof(struct out)};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(wsched_batch_size(b), n);
    CHECK_EQ(check_not_ok(b), 0);
    for (size_t i = 0; i < n; i++) {
        struct out *o = wsched_batch_slot(b, i);
        CHECK_EQ(o->index, i);
        CHECK_EQ(o->value, in[i] * in[i]);
        CHECK_EQ(check_status(b, i), 0);
    }
    wsched_batch_free(b);
    free(in);
}

static void test_failures(wsched_pool *pool)
{
    size_t n = 1000;
    uint64_t *slots = calloc(n, sizeof *slots); /* caller-provided memory */
    wsched_batch_desc d = {.fn = failing_job, .njobs = n, .slots = slots,
                           .slot_size = sizeof(uint64_t)};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(slots[i], i + 1); /* failing jobs did not stop the others */
        CHECK(wsched_batch_slot(b, i) == &slots[i]);
        int want = i % 7 == 3 ? -(int)(1 + i % 100) : 0;
        CHECK_EQ(check_status(b, i), want);
        failed += want != 0;
    }
    CHECK_EQ(check_not_ok(b), failed);
    wsched_batch_free(b);
    free(slots);
}

static void test_exactly_once(wsched_pool *pool, size_t n)
{
    _Atomic unsigned char *seen = calloc(n, 1);
    atomic_store(&counted, 0);
    wsched_batch_desc d = {.fn = count_job, .arg = (void *)seen, .njobs = n};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK(wsched_batch_slot(b, 0) == NULL);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(seen[i], 1);
    CHECK_EQ(atomic_load(&counted), n);
    wsched_batch_free(b);
    free((void *)seen);
}

static void test_padded(wsched_pool *pool)
{
    wsched_batch_desc d = {.fn = failing_job, .njobs = 100, .slot_size = 8,
                           .flags = WSCHED_BATCH_PAD_SLOTS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 100; i++) {
        uint64_t *s = wsched_batch_slot(b, i);
        CHECK_EQ((uintptr_t)s % 64, 0);
        CHECK_EQ(*s, i + 1);
    }
    wsched_batch_free(b);
}

static void test_reserved_codes(wsched_pool *pool)
{
    wsched_batch_desc d = {.fn = reserved_job, .njobs = 2};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(check_status(b, 0), WSCHED_EJOBCODE);
    CHECK_EQ(check_status(b, 1), WSCHED_ERRBASE + 1);
    wsched_batch_free(b);
}

/* Many submitting threads, each with many concurrent batches. */
struct client {
    wsched_pool *pool;
    unsigned id;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    enum { INFLIGHT = 8, ROUNDS = 40 };
    uint64_t in[20];
    for (unsigned i = 0; i < 20; i++)
        in[i] = c->id * 100 + i;
    long rounds = check_scale(ROUNDS);
    for (long r = 0; r < rounds; r++) {
        wsched_batch *bs[INFLIGHT];
        for (unsigned k = 0; k < INFLIGHT; k++) {
            wsched_batch_desc d = {.fn = square_job, .arg = in,
                                   .njobs = 10 + (c->id + k + (unsigned)r) % 11,
                                   .slot_size = sizeof(struct out)};
            CHECK_OK(wsched_submit(c->pool, &d, &bs[k]));
        }
        for (unsigned k = 0; k < INFLIGHT; k++) {
            CHECK_OK(wsched_wait(bs[k], -1));
            for (size_t i = 0; i < wsched_batch_size(bs[k]); i++) {
                struct out *o = wsched_batch_slot(bs[k], i);
                CHECK_EQ(o->index, i);
                CHECK_EQ(o->value, in[i] * in[i]);
            }
            wsched_batch_free(bs[k]);
        }
    }
    return NULL;
}

static void test_many_clients(wsched_pool *pool, unsigned nclients)
{
    pthread_t th[64];
    struct client cl[64];
    for (unsigned i = 0; i < nclients; i++) {
        cl[i] = (struct client){pool, i};
        CHECK_EQ(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (unsigned i = 0; i < nclients; i++)
        pthread_join(th[i], NULL);
}

int main(void)
{
    check_watchdog(120);
    for (unsigned workers = 1; workers <= 4; workers *= 2) {
        wsched_pool *pool = check_pool(workers);
        CHECK_EQ(wsched_pool_workers(pool), workers);
        test_order(pool, 1);
        test_order(pool, 2);
        test_order(pool, 17);
        test_order(pool, (size_t)check_scale(1000000));
        test_failures(pool);
        test_exactly_once(pool, (size_t)check_scale(2000000));
        test_padded(pool);
        test_reserved_codes(pool);
        test_many_clients(pool, 16);
        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("test_batch: ok\n");
    return 0;
}
