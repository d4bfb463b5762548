/*
 * Keyed de-duplication (single-flight, wsched.h flight_key; flight.c
 * F1-F4): 1,000 concurrent jobs of one key make exactly one execution and
 * all get its slot and status; a failing leader's joiners get its error,
 * not ok; cancelled joiners detach alone (the flight goes on, the key is
 * not released early, a later job joins it); a cancelled leader hands the
 * flight to a joiner, on whichever of the flight's stacks one is still
 * waiting, or closes it when none is; a joiner's own deadline detaches it; key 0 and
 * another slot size run unshared; a key is free again once its flight
 * ended.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"

struct slot {
    uint64_t value;
    int state;
    int pad;
};

struct ctx {
    _Atomic int executions, cleanups;
    uint64_t nap_ns;
    int fail;      /* the leader's result: 0 or an error */
    uint64_t key;  /* every job's (0: none) */
    uint64_t wrote;
};

static uint64_t key_of(void *fctx, void *arg, size_t i)
{
    (void)fctx, (void)i;
    return ((struct ctx *)arg)->key;
}

static int job(wsched_ctx *c, void *arg, size_t i, void *slotp)
{
    (void)i;
    struct ctx *x = arg;
    struct slot *s = slotp;
    switch (wsched_resume_kind(c)) {
    case WSCHED_RESUME_CANCELLED:
        atomic_fetch_add(&x->cleanups, 1);
        return 0;
    case WSCHED_RESUME_FIRST:
        atomic_fetch_add(&x->executions, 1);
        s->state = 1;
        CHECK_OK(wsched_sleep_until(c, wsched_now_ns() + x->nap_ns));
        return WSCHED_PENDING;
    default:
        s->value = x->wrote;
        return x->fail;
    }
}

static wsched_downstream *make(void)
{
    wsched_downstream_config c = {.flight_key = key_of};
    wsched_downstream *ds = NULL;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    return ds;
}

static wsched_batch *submit(wsched_pool *pool, wsched_downstream *ds, struct ctx *x, size_t n,
                            uint64_t deadline, size_t slot_size)
{
    wsched_batch_desc d = {.fn = job, .arg = x, .njobs = n, .slot_size = slot_size,
                           .deadline_ns = deadline, .downstream = ds};
    wsched_batch *b = NULL;
    CHECK_OK(wsched_submit(pool, &d, &b));
    return b;
}

static void done(wsched_batch *b)
{
    CHECK_OK(wsched_wait(b, -1));
    CHECK_OK(wsched_wait_idle(b, -1));
}

static wsched_downstream_stats stats(wsched_downstream *ds)
{
    wsched_downstream_stats s;
    CHECK_OK(wsched_downstream_get_stats(ds, &s, sizeof s));
    return s;
}

/* Wait until `joined` jobs have joined (stats), without sleeping. */
static void await_joined(wsched_downstream *ds, uint64_t joined)
{
    while (stats(ds).joined < joined)
        sched_yield();
}

static void one_execution(wsched_pool *pool, uint64_t ms)
{
    wsched_downstream *ds = make();
    /* 1,000 jobs of one key in one batch, and 4 batches of 250 more. */
    struct ctx x = {.nap_ns = 50 * ms, .key = 42, .wrote = 4242};
    wsched_batch *b = submit(pool, ds, &x, 1000, 0, sizeof(struct slot));
    wsched_batch *more[4];
    for (int k = 0; k < 4; k++)
        more[k] = submit(pool, ds, &x, 250, 0, sizeof(struct slot));
    done(b);
    for (int k = 0; k < 4; k++)
        done(more[k]);
    wsched_downstream_stats s = stats(ds);
    int ex = atomic_load(&x.executions);
    /* One execution unless the flight ended before some batch's jobs
     * started (then that batch leads a second one): never two at once. */
    CHECK(ex >= 1);
    CHECK_EQ(s.flights, (uint64_t)ex);
    CHECK_EQ(s.joined + (uint64_t)ex, 2000);
    size_t lead = 0;
    for (size_t i = 0; i < 1000; i++) {
        CHECK_EQ(check_status(b, i), 0);
        CHECK_EQ(((struct slot *)wsched_batch_slot(b, i))->value, 4242);
        lead += wsched_batch_attempts(b, i) == 1;
    }
    CHECK(lead <= 1);
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < 250; i++) {
            CHECK_EQ(check_status(more[k], i), 0);
            CHECK_EQ(((struct slot *)wsched_batch_slot(more[k], i))->value, 4242);
        }
        wsched_batch_free(more[k]);
    }
    printf("  1000 + 4 x 250 jobs of one key: %d execution(s), %llu joined\n", ex,
           (unsigned long long)s.joined);
    CHECK_EQ(ex, 1); /* the 50 ms flight outlasts every submit on this machine */
    wsched_batch_free(b);

    /* The key is free again: a new flight. */
    x.executions = 0;
    b = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
    done(b);
    CHECK_EQ(atomic_load(&x.executions), 1);
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
}

static void failing_leader(wsched_pool *pool, uint64_t ms)
{
    wsched_downstream *ds = make();
    struct ctx x = {.nap_ns = 20 * ms, .key = 7, .fail = -EIO, .wrote = 99};
    wsched_batch *b = submit(pool, ds, &x, 50, 0, sizeof(struct slot));
    done(b);
    CHECK_EQ(atomic_load(&x.executions), 1);
    for (size_t i = 0; i < 50; i++) {
        CHECK_EQ(check_status(b, i), -EIO); /* its real status, never ok */
        CHECK_EQ(((struct slot *)wsched_batch_slot(b, i))->value, 99);
    }
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
}

static void cancelled_joiners(wsched_pool *pool, uint64_t ms)
{
    wsched_downstream *ds = make();
    struct ctx x = {.nap_ns = 100 * ms, .key = 9, .wrote = 5};
    wsched_batch *a = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
    while (atomic_load(&x.executions) == 0)
        sched_yield();
    wsched_batch *j = submit(pool, ds, &x, 10, 0, sizeof(struct slot));
    await_joined(ds, 10);
    CHECK_OK(wsched_cancel(j));
    done(j); /* at once, not after the flight */
    for (size_t i = 0; i < 10; i++)
        CHECK_EQ(check_status(j, i), WSCHED_ECANCELLED);
    wsched_batch_free(j);
    /* The flight goes on, and the key is still taken: these join it. */
    wsched_batch *k = submit(pool, ds, &x, 5, 0, sizeof(struct slot));
    done(a);
    done(k);
    CHECK_EQ(atomic_load(&x.executions), 1);
    CHECK_EQ(check_status(a, 0), 0);
    for (size_t i = 0; i < 5; i++) {
        CHECK_EQ(check_status(k, i), 0);
        CHECK_EQ(((struct slot *)wsched_batch_slot(k, i))->value, 5);
    }
    CHECK_EQ(atomic_load(&x.cleanups), 0); /* joiners are never called */
    wsched_batch_free(a);
    wsched_batch_free(k);

    /* A joiner's own deadline detaches it alone. */
    x.executions = 0;
    a = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
    while (atomic_load(&x.executions) == 0)
        sched_yield();
    uint64_t t0 = wsched_now_ns();
    j = submit(pool, ds, &x, 3, t0 + 10 * ms, sizeof(struct slot));
    done(j);
    CHECK(wsched_now_ns() - t0 < 90 * ms);
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ(check_status(j, i), WSCHED_EDEADLINE);
    done(a);
    CHECK_EQ(check_status(a, 0), 0);
    CHECK_EQ(atomic_load(&x.executions), 1);
    wsched_batch_free(j);
    wsched_batch_free(a);
    CHECK_OK(wsched_downstream_destroy(ds));
}

static void cancelled_leader(wsched_pool *pool, uint64_t ms)
{
    wsched_downstream *ds = make();
    struct ctx x = {.nap_ns = 50 * ms, .key = 11, .wrote = 77};
    wsched_batch *a = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
    while (atomic_load(&x.executions) == 0)
        sched_yield();
    wsched_batch *j = submit(pool, ds, &x, 5, 0, sizeof(struct slot));
    await_joined(ds, 5);
    CHECK_OK(wsched_cancel(a));
    done(a);
    CHECK_EQ(check_status(a, 0), WSCHED_ECANCELLED);
    done(j);
    /* One joiner took the flight over and ran it; the others got its result. */
    CHECK_EQ(atomic_load(&x.executions), 2);
    size_t ran = 0;
    for (size_t i = 0; i < 5; i++) {
        CHECK_EQ(check_status(j, i), 0);
        CHECK_EQ(((struct slot *)wsched_batch_slot(j, i))->value, 77);
        ran += wsched_batch_attempts(j, i) == 1;
    }
    CHECK_EQ(ran, 1);
    CHECK_EQ(stats(ds).flight_handovers, 1);
    wsched_batch_free(a);
    wsched_batch_free(j);
    CHECK_OK(wsched_downstream_destroy(ds));
}

/* On 4 workers the joiners spread over the flight's stacks (one per
 * worker, flight.c): a cancelled leader whose first joiners have all
 * detached hands over to a live one on whichever stack it is; with every
 * joiner detached, the flight closes and the key is free again. */
static void cancelled_leader_stacks(wsched_pool *pool, uint64_t ms)
{
    enum { GONE = 3, PER = 16, LIVE = 4 };
    wsched_downstream *ds = make();
    for (int round = 0; round < 2; round++) {
        struct ctx x = {.nap_ns = 50 * ms, .key = 12 + (uint64_t)round, .wrote = 99};
        uint64_t joined0 = stats(ds).joined;
        wsched_batch *a = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
        while (atomic_load(&x.executions) == 0)
            sched_yield();
        wsched_batch *gone[GONE], *j = NULL;
        for (int k = 0; k < GONE; k++)
            gone[k] = submit(pool, ds, &x, PER, 0, sizeof(struct slot));
        if (round == 0)
            j = submit(pool, ds, &x, LIVE, 0, sizeof(struct slot));
        await_joined(ds, joined0 + GONE * PER + (round == 0 ? LIVE : 0));
        for (int k = 0; k < GONE; k++) {
            CHECK_OK(wsched_cancel(gone[k]));
            done(gone[k]);
            for (size_t i = 0; i < PER; i++)
                CHECK_EQ(check_status(gone[k], i), WSCHED_ECANCELLED);
            wsched_batch_free(gone[k]);
        }
        uint64_t handovers0 = stats(ds).flight_handovers;
        CHECK_OK(wsched_cancel(a));
        done(a);
        CHECK_EQ(check_status(a, 0), WSCHED_ECANCELLED);
        wsched_batch_free(a);
        if (round == 0) {
            done(j);
            size_t ran = 0;
            for (size_t i = 0; i < LIVE; i++) {
                CHECK_EQ(check_status(j, i), 0);
                CHECK_EQ(((struct slot *)wsched_batch_slot(j, i))->value, 99);
                ran += wsched_batch_attempts(j, i) == 1;
            }
            CHECK_EQ(ran, 1);
            CHECK_EQ(atomic_load(&x.executions), 2);
            CHECK_EQ(stats(ds).flight_handovers - handovers0, 1);
            wsched_batch_free(j);
        } else {
            /* Nobody to hand over to: closed, and the key leads anew. */
            CHECK_EQ(stats(ds).flight_handovers - handovers0, 0);
            x.nap_ns = ms;
            wsched_batch *b = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
            done(b);
            CHECK_EQ(check_status(b, 0), 0);
            CHECK_EQ(atomic_load(&x.executions), 2);
            wsched_batch_free(b);
        }
    }
    CHECK_OK(wsched_downstream_destroy(ds));
}

static void unshared(wsched_pool *pool, uint64_t ms)
{
    wsched_downstream *ds = make();
    struct ctx x = {.nap_ns = 5 * ms, .key = 0};
    wsched_batch *b = submit(pool, ds, &x, 20, 0, sizeof(struct slot));
    done(b);
    CHECK_EQ(atomic_load(&x.executions), 20); /* key 0: no flight */
    wsched_batch_free(b);
    /* Another slot size never joins. */
    x = (struct ctx){.nap_ns = 30 * ms, .key = 3};
    wsched_batch *a = submit(pool, ds, &x, 1, 0, sizeof(struct slot));
    while (atomic_load(&x.executions) == 0)
        sched_yield();
    b = submit(pool, ds, &x, 1, 0, 2 * sizeof(struct slot));
    done(b);
    done(a);
    CHECK_EQ(atomic_load(&x.executions), 2);
    wsched_batch_free(a);
    wsched_batch_free(b);
    CHECK_OK(wsched_downstream_destroy(ds));
}

int main(void)
{
    check_watchdog(120);
    uint64_t ms = 1000000ull * (uint64_t)check_slow();
    wsched_pool *pool = check_pool(2);
    one_execution(pool, ms);
    failing_leader(pool, ms);
    cancelled_joiners(pool, ms);
    cancelled_leader(pool, ms);
    unshared(pool, ms);
    CHECK_OK(wsched_pool_destroy(pool));
    pool = check_pool(4);
    cancelled_leader_stacks(pool, ms);
    CHECK_OK(wsched_pool_destroy(pool));
    puts("test_flight: ok");
    return 0;
}
