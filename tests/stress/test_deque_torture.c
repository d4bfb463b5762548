/*
 * Deque torture: one owner pushing and popping, three thieves stealing, for
 * a given number of operations (push + pop + steal attempts, all counted):
 *
 *   test_deque_torture [ops]     default 4e6 (scaled by WSCHED_TEST_SLOW),
 *                                or env WSCHED_TORTURE_OPS; 1e9 for a long run
 *
 * The run is a sequence of rounds. Each round has fresh item ids; every item
 * must be taken exactly once (a per-id counter, checked and cleared at the
 * end of the round) and arrive whole (its stamp). The deque starts small and
 * is re-created now and then, so it grows while thieves read it (old arrays
 * are kept until deque_fini, deque.h R1). A round:
 *
 *  1. FREE: bursts of pushes and pops by the owner while the thieves steal.
 *  2. PAUSE: thieves stop outside deque_steal (an atomic phase word, acked
 *     by each thief). The contents are known exactly: pushes - owner pops -
 *     steals, which must equal bottom - top.
 *  3. MULTI (after Go's runqueue tests: a queue known to be non-empty is
 *     never reported empty): the owner tops the deque up to k >= 3q + 1
 *     items; each thief must steal exactly q, and no steal may answer
 *     STEAL_EMPTY nor deque_nonempty_sc() false, since at least one item
 *     remains throughout. Meanwhile the owner pushes and pops in pairs;
 *     each pop must succeed and return the item it just pushed (>= 2 items
 *     are in the deque when it pops, so no thief can reach that one).
 *  4. PAUSE again; then the rest is drained by one thief alone (exactly
 *     that many STEAL_OK, never STEAL_RETRY, in push order, then
 *     STEAL_EMPTY) or by the owner (exactly that many pops, newest first,
 *     then a failing pop).
 *
 * In every phase a thief's successive steals return items in push order,
 * and two bounds are asserted that hold whatever the interleaving:
 *  - owner: a pop may fail only if pushes - own successful pops - thief
 *    claims (read after the pop) <= 1: with >= 2 items left when it read
 *    top, no thief can reach the item at bottom;
 *  - thief: STEAL_EMPTY is wrong if pushes (read before) - owner pops
 *    started (read after) + owner pops failed (read before) - thief claims
 *    (read after) >= 2: the deque then held at least one item (the extra 1
 *    covers an owner pop taking the last item between its CAS and its
 *    restore of bottom, which is seen as two removals for one pop).
 *  A thief claim counts steals that succeeded or are in flight: a thief adds
 *  one (SEQ_CST) before deque_steal and takes it back after a failure. The
 *  argument holds on x86-TSO, the project's target, and under C11: each
 *  counter a bound relies on is published by a release (or SEQ_CST) store
 *  that the reader's acquire load of that counter, or of the deque index
 *  the counted operation wrote, synchronises with.
 *
 * Delays: WSCHED_DEBUG_DELAY=N (1..1000) makes about one operation in N of
 * this test wait a random while (spin or yield); in a WSCHED_DEBUG build the
 * deque's own points (P1, T1, C1-pop, S1, C1-steal) delay as well.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>

#include "check.h"
#include "deque.h"

enum { THIEVES = 3, ROUND_IDS = 1 << 20 };
/* Steal attempts the thieves must have published before a free phase
 * ends; owner push/pop pairs at most per multi phase. */
enum { PUBLISH_EVERY = 64, MIN_FREE_ATTEMPTS = 3 * PUBLISH_EVERY, MAX_PAIRS = 1024 };
enum { PH_FREE, PH_PAUSE, PH_MULTI, PH_SINGLE, PH_STOP };

struct thief_state { /* one cache line per thief, written by it */
    cacheline_aligned _Atomic uint64_t claims; /* steals that succeeded + the one in flight */
    _Atomic uint64_t got;    /* steals that succeeded */
    _Atomic uint64_t ops;    /* steal attempts (published now and then) */
    _Atomic uint64_t ack;    /* last epoch this thief has finished */
    _Atomic uint64_t empty_checked; /* STEAL_EMPTY answers checked against the bound */
};

static struct deque dq;
static struct mem mem;
static _Atomic unsigned char *taken;
static struct thief_state th_state[THIEVES];
/* Owner-written counters, read by thieves. */
static cacheline_aligned _Atomic uint64_t pushes;
static _Atomic uint64_t pops_started, pops_failed;
/* epoch << 8 | phase; the phase parameters below are written before it. */
static cacheline_aligned _Atomic uint64_t state;
static uint64_t round_no, param_q, param_thief, param_count;
static unsigned delay_every;

static inline uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void maybe_delay(uint64_t *rng)
{
    if (!delay_every)
        return;
    uint64_t x = xorshift(rng);
    if (x % delay_every)
        return;
    if (x & 0x100000)
        sched_yield();
    else
        for (uint64_t i = (x >> 24) & 1023; i; i--)
            __builtin_ia32_pause();
}

static inline uintptr_t stamp(uint64_t id, uint64_t rnd)
{
    return (uintptr_t)((id * 0x9E3779B97F4A7C15ull) ^ (rnd << 32) ^ 0x5bd1e995u);
}

/* An item arrived: whole, of this round, and for the first time. `last` is
 * the previous id this thief took in this round (push order), or NULL. */
static void take(const struct task *t, uint64_t rnd, uint64_t *last, const char *who)
{
    if (t->run != NULL || t->c != rnd || t->a >= ROUND_IDS || t->b != stamp(t->a, rnd)) {
        fprintf(stderr, "deque torture: %s got a torn or stale record {%p, %llu, %#llx, %llu} "
                "in round %llu\n", who, (void *)t->run, (unsigned long long)t->a,
                (unsigned long long)t->b, (unsigned long long)t->c, (unsigned long long)rnd);
        abort();
    }
    unsigned char prev = atomic_fetch_add_explicit(&taken[t->a], 1, memory_order_relaxed);
    if (prev) {
        fprintf(stderr, "deque torture: %s took item %llu of round %llu a second time\n", who,
                (unsigned long long)t->a, (unsigned long long)rnd);
        abort();
    }
    if (last) {
        if (*last != UINT64_MAX && t->a <= *last) {
            fprintf(stderr, "deque torture: %s stole item %llu after item %llu (not in push "
                    "order) in round %llu\n", who, (unsigned long long)t->a,
                    (unsigned long long)*last, (unsigned long long)rnd);
            abort();
        }
        *last = t->a;
    }
}

static uint64_t claims_sum(void)
{
    uint64_t s = 0;
    for (int i = 0; i < THIEVES; i++)
        s += ld(&th_state[i].claims, SC);
    return s;
}

/* ---------------------------------------------------------------- thieves */

struct thief_local {
    unsigned me;
    uint64_t rng, ops, last_round, last_id;
};

/* One steal attempt with the bookkeeping and the STEAL_EMPTY bound. */
static enum steal_result thief_steal(struct thief_local *l, uint64_t rnd)
{
    struct thief_state *ts = &th_state[l->me];
    uint64_t failed0 = ld(&pops_failed, ACQ);
    uint64_t pushed = ld(&pushes, ACQ);
    fadd(&ts->claims, 1, SC);
    struct task t;
    enum steal_result r = deque_steal(&dq, &t);
    l->ops++;
    if (r == STEAL_OK) {
        if (l->last_round != rnd)
            l->last_round = rnd, l->last_id = UINT64_MAX;
        take(&t, rnd, &l->last_id, "thief");
        st(&ts->got, ld(&ts->got, RLX) + 1, REL);
        maybe_delay(&l->rng);
        return r;
    }
    st(&ts->claims, ld(&ts->claims, RLX) - 1, REL); /* removed nothing */
    if (r == STEAL_EMPTY) {
        uint64_t started = ld(&pops_started, SC);
        uint64_t claims = claims_sum();
        /* Lower bound of the items in the deque while the thief looked. */
        int64_t lb = (int64_t)pushed - (int64_t)(started - failed0) - (int64_t)claims - 1;
        if (lb >= 1) {
            fprintf(stderr, "deque torture: STEAL_EMPTY while >= %lld items were in the deque "
                    "(pushes %llu, owner pops started %llu, failed %llu, thief claims %llu)\n",
                    (long long)lb, (unsigned long long)pushed, (unsigned long long)started,
                    (unsigned long long)failed0, (unsigned long long)claims);
            abort();
        }
        st(&ts->empty_checked, ld(&ts->empty_checked, RLX) + 1, RLX);
    }
    maybe_delay(&l->rng);
    return r;
}

static void publish_ops(struct thief_local *l)
{
    st(&th_state[l->me].ops, l->ops, RLX);
}

static void *thief(void *arg)
{
    struct thief_local l = {.me = (unsigned)(uintptr_t)arg,
                            .rng = 0x2545F4914F6CDD1Dull * ((uintptr_t)arg + 1),
                            .last_round = UINT64_MAX};
    struct thief_state *ts = &th_state[l.me];
    for (;;) {
        uint64_t s = ld(&state, ACQ); /* ACQUIRE: the phase parameters */
        unsigned ph = (unsigned)(s & 0xff);
        uint64_t ep = s >> 8;
        if (ph == PH_STOP) {
            publish_ops(&l);
            return NULL;
        }
        if (ph == PH_FREE) {
            if (thief_steal(&l, round_no) == STEAL_EMPTY) {
                /* A short random back-off, as a searching worker does: the
                 * attempts then interleave with the owner's operations
                 * instead of piling up while the deque is empty. */
                for (uint64_t i = xorshift(&l.rng) % 32; i; i--)
                    __builtin_ia32_pause();
            }
            if (l.ops % PUBLISH_EVERY == 0)
                publish_ops(&l);
            continue;
        }
        if (ld(&ts->ack, RLX) == ep) { /* done with this phase: wait */
            sched_yield();
            continue;
        }
        if (ph == PH_MULTI) {
            /* At least one item stays in the deque: never empty. */
            for (uint64_t got = 0; got < param_q;) {
                if (!deque_nonempty_sc(&dq)) {
                    fprintf(stderr, "deque torture: deque_nonempty_sc() false while >= 1 item "
                            "is in the deque (round %llu)\n", (unsigned long long)round_no);
                    abort();
                }
                enum steal_result r = thief_steal(&l, round_no);
                if (r == STEAL_EMPTY) {
                    fprintf(stderr, "deque torture: STEAL_EMPTY while >= 1 item is in the "
                            "deque (round %llu, q %llu, got %llu)\n",
                            (unsigned long long)round_no, (unsigned long long)param_q,
                            (unsigned long long)got);
                    abort();
                }
                got += r == STEAL_OK;
            }
        } else if (ph == PH_SINGLE && param_thief == l.me) {
            /* Alone with a paused owner: exactly param_count items, in
             * order, no lost race, then empty. */
            for (uint64_t k = 0; k <= param_count; k++) {
                enum steal_result r = thief_steal(&l, round_no);
                enum steal_result want = k < param_count ? STEAL_OK : STEAL_EMPTY;
                if (r != want) {
                    fprintf(stderr, "deque torture: single thief, steal %llu of %llu: got %d, "
                            "want %d (round %llu)\n", (unsigned long long)k,
                            (unsigned long long)param_count, r, want,
                            (unsigned long long)round_no);
                    abort();
                }
            }
        }
        publish_ops(&l);
        st(&ts->ack, ep, REL); /* RELEASE: its counters and takes */
    }
}

/* ------------------------------------------------------------------ owner */

struct owner {
    uint64_t rng, ops, next_id, pushed, popped, epoch;
};

static void owner_push(struct owner *o)
{
    CHECK(o->next_id < ROUND_IDS);
    struct task x = {NULL, (uintptr_t)o->next_id, stamp(o->next_id, round_no),
                     (uintptr_t)round_no};
    bool was_empty;
    CHECK_OK(deque_push_owner(&dq, &x, &was_empty));
    o->next_id++;
    o->ops++;
    st(&pushes, ++o->pushed, REL); /* RELEASE: after bottom (P1) */
    maybe_delay(&o->rng);
}

/* Pop with the bookkeeping and the owner-side bound; *t is checked by the
 * caller (take). */
static bool owner_pop(struct owner *o, struct task *t)
{
    st(&pops_started, ld(&pops_started, RLX) + 1, RLX); /* before T1's SC store */
    bool got = deque_pop_owner(&dq, t);
    o->ops++;
    if (got) {
        o->popped++;
    } else {
        st(&pops_failed, ld(&pops_failed, RLX) + 1, REL); /* after bottom's restore */
        uint64_t claims = claims_sum();
        int64_t lb = (int64_t)o->pushed - (int64_t)o->popped - (int64_t)claims;
        if (lb >= 2) {
            fprintf(stderr, "deque torture: owner pop failed with >= %lld items in the deque "
                    "(pushes %llu, pops %llu, thief claims %llu)\n", (long long)lb,
                    (unsigned long long)o->pushed, (unsigned long long)o->popped,
                    (unsigned long long)claims);
            abort();
        }
    }
    maybe_delay(&o->rng);
    return got;
}

static void set_phase(struct owner *o, unsigned ph)
{
    o->epoch++;
    st(&state, o->epoch << 8 | ph, REL); /* RELEASE: parameters, deque state */
}

static void wait_acks(struct owner *o)
{
    for (int i = 0; i < THIEVES; i++)
        while (ld(&th_state[i].ack, ACQ) != o->epoch)
            sched_yield();
}

static uint64_t got_sum(void)
{
    uint64_t s = 0;
    for (int i = 0; i < THIEVES; i++)
        s += ld(&th_state[i].got, ACQ);
    return s;
}

/* Thieves paused: the contents are exactly known. */
static int64_t check_contents(struct owner *o, const char *when)
{
    int64_t expect = (int64_t)o->pushed - (int64_t)o->popped - (int64_t)got_sum();
    int64_t size = ld(&dq.bottom, RLX) - ld(&dq.top, RLX);
    if (expect < 0 || size != expect) {
        fprintf(stderr, "deque torture: %s of round %llu: bottom - top = %lld, but pushes - "
                "pops - steals = %lld\n", when, (unsigned long long)round_no, (long long)size,
                (long long)expect);
        abort();
    }
    return expect;
}

static uint64_t total_ops(const struct owner *o)
{
    uint64_t s = o->ops;
    for (int i = 0; i < THIEVES; i++)
        s += ld(&th_state[i].ops, RLX);
    return s;
}

static uint64_t thief_attempts(void)
{
    uint64_t s = 0;
    for (int i = 0; i < THIEVES; i++)
        s += ld(&th_state[i].ops, RLX);
    return s;
}

int main(int argc, char **argv)
{
    check_watchdog(120);
    const char *arg = argc > 1 ? argv[1] : getenv("WSCHED_TORTURE_OPS");
    uint64_t target = (uint64_t)check_scale(4000000);
    if (arg && *arg) {
        double v;
        if (common_parse_double(arg, 1, 1e18, &v) != 0) { /* accepts 1e9 */
            fprintf(stderr, "usage: test_deque_torture [ops]\n");
            return 2;
        }
        target = (uint64_t)v;
    }
    /* One delay point in WSCHED_DEBUG_DELAY (1..1000) takes a delay; none
     * when unset or out of range. */
    long de;
    if (common_parse_long(getenv("WSCHED_DEBUG_DELAY"), 1, 1000, &de) != 0)
        de = 0;
    delay_every = (unsigned)de;
#ifdef WSCHED_DEBUG
    const char *build = "WSCHED_DEBUG";
#else
    const char *build = "non-debug";
#endif
    char delays[32] = "off";
    if (delay_every)
        snprintf(delays, sizeof delays, "1 op in %u", delay_every);
    printf("test_deque_torture: %llu ops target, %d thieves, %s build, test delays %s\n",
           (unsigned long long)target, THIEVES, build, delays);
    fflush(stdout);

    taken = calloc(ROUND_IDS, 1);
    CHECK(taken);
    mem_init(&mem, NULL);
    CHECK_OK(deque_init(&dq, &mem, 2));
    struct owner o = {.rng = 88172645463325252ull};
    set_phase(&o, PH_PAUSE);
    pthread_t th[THIEVES];
    for (int i = 0; i < THIEVES; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, thief, (void *)(uintptr_t)i), 0);
    wait_acks(&o);

    double t0 = common_now_s(), next_report = t0 + 10;
    uint64_t rounds = 0, items = 0, multi_steals = 0, single_drains = 0, owner_drains = 0,
             pairs = 0, regrows = 0;
    int64_t max_cap = 0;
    struct task t;
    while (total_ops(&o) < target) {
        round_no++;
        o.next_id = 0;
        uint64_t r = xorshift(&o.rng);

        /* 1. FREE */
        uint64_t n = 1 + r % 4096;
        if (r % 8 == 0)
            n = 1 + (r >> 16) % 65536;
        if (r % 64 == 1)
            n = 1 + (r >> 16) % (ROUND_IDS / 2);
        set_phase(&o, PH_FREE);
        /* n items, and on until the thieves made some attempts in this
         * phase (with more threads than CPUs they may not have run yet). */
        uint64_t a0 = thief_attempts(), bursts = 0;
        while (o.next_id < n ||
               (thief_attempts() - a0 < MIN_FREE_ATTEMPTS && o.next_id + 64 < ROUND_IDS / 2)) {
            r = xorshift(&o.rng);
            uint64_t burst = 1 + r % 64, npop = (r >> 8) % 64;
            if ((r >> 20) % 4 == 0)
                npop = (r >> 8) % 8; /* push-heavy: the deque fills */
            for (uint64_t k = 0; k < burst; k++)
                owner_push(&o);
            for (uint64_t k = 0; k < npop; k++)
                if (owner_pop(&o, &t))
                    take(&t, round_no, NULL, "owner");
            if (o.next_id >= n && ++bursts % 4 == 0)
                sched_yield(); /* let the thieves run */
        }
        /* 2. PAUSE */
        set_phase(&o, PH_PAUSE);
        wait_acks(&o);
        int64_t c = check_contents(&o, "after the free phase");

        /* 3. MULTI: never empty while the thieves take THIEVES * q. */
        r = xorshift(&o.rng);
        param_q = 1 + r % 8;
        int64_t k = (int64_t)(THIEVES * param_q + 1 + (r >> 8) % 16);
        while (c < k) {
            owner_push(&o);
            c++;
        }
        int64_t c_multi = c; /* >= k */
        uint64_t pairs_now = 0;
        set_phase(&o, PH_MULTI);
        for (;;) {
            bool all = true;
            for (int i = 0; i < THIEVES; i++)
                all &= ld(&th_state[i].ack, ACQ) == o.epoch;
            if (all)
                break;
            if (pairs_now >= MAX_PAIRS || o.next_id >= ROUND_IDS - 1) {
                sched_yield();
                continue;
            }
            if (++pairs_now % 8 == 0)
                sched_yield(); /* the thieves are the point of this phase */
            /* >= 2 items when it pops: the pop takes what it pushed. */
            uint64_t id = o.next_id;
            owner_push(&o);
            if (!owner_pop(&o, &t) || t.a != id) {
                fprintf(stderr, "deque torture: owner pop after push in the multi phase "
                        "(round %llu) did not return item %llu\n", (unsigned long long)round_no,
                        (unsigned long long)id);
                abort();
            }
            take(&t, round_no, NULL, "owner");
            pairs++;
        }
        multi_steals += THIEVES * param_q;
        /* 4. PAUSE, drain */
        set_phase(&o, PH_PAUSE);
        wait_acks(&o);
        c = check_contents(&o, "after the multi phase");
        CHECK_EQ(c, c_multi - (int64_t)(THIEVES * param_q));
        if (xorshift(&o.rng) % 2) {
            param_thief = xorshift(&o.rng) % THIEVES;
            param_count = (uint64_t)c;
            set_phase(&o, PH_SINGLE);
            wait_acks(&o);
            single_drains++;
        } else {
            uint64_t prev = UINT64_MAX;
            for (int64_t j = 0; j < c; j++) {
                if (!owner_pop(&o, &t)) {
                    fprintf(stderr, "deque torture: owner drain: pop %lld of %lld failed "
                            "(round %llu)\n", (long long)j, (long long)c,
                            (unsigned long long)round_no);
                    abort();
                }
                take(&t, round_no, NULL, "owner");
                if (t.a >= prev) { /* newest first */
                    fprintf(stderr, "deque torture: owner drain popped %llu after %llu\n",
                            (unsigned long long)t.a, (unsigned long long)prev);
                    abort();
                }
                prev = t.a;
            }
            CHECK(!owner_pop(&o, &t));
            owner_drains++;
        }
        CHECK_EQ(check_contents(&o, "after the drain"), 0);

        /* Every item of the round exactly once. */
        for (uint64_t i = 0; i < o.next_id; i++)
            if (ld(&taken[i], RLX) != 1) {
                fprintf(stderr, "deque torture: item %llu of round %llu taken %u times\n",
                        (unsigned long long)i, (unsigned long long)round_no,
                        (unsigned)ld(&taken[i], RLX));
                abort();
            }
        memset((void *)taken, 0, o.next_id);
        items += o.next_id;
        rounds++;
        int64_t cap = ld(&dq.array, RLX)->mask + 1;
        if (cap > max_cap)
            max_cap = cap;
        /* Now and then a fresh small deque: growth under thieves again. */
        if (xorshift(&o.rng) % 8 == 0) {
            deque_fini(&dq);
            CHECK_OK(deque_init(&dq, &mem, 2));
            regrows++;
        }
        check_watchdog(120); /* a round at most 120 s: progress, not total time */
        double now = common_now_s();
        if (now >= next_report) {
            uint64_t ops = total_ops(&o);
            printf("  [%7.1f s] %llu ops (%.2f M/s), %llu rounds, %llu items\n", now - t0,
                   (unsigned long long)ops, (double)ops / (now - t0) * 1e-6,
                   (unsigned long long)rounds, (unsigned long long)items);
            fflush(stdout);
            next_report = now + 10;
        }
    }
    set_phase(&o, PH_STOP);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(th[i], NULL);
    double el = common_now_s() - t0;
    uint64_t ops = total_ops(&o), steals = got_sum(), checked = 0, attempts = 0;
    for (int i = 0; i < THIEVES; i++) {
        checked += ld(&th_state[i].empty_checked, RLX);
        attempts += ld(&th_state[i].ops, RLX);
    }
    printf("test_deque_torture: %llu ops in %.1f s (%.2f M ops/s): %llu pushes, %llu pops "
           "(%llu failed), %llu steal attempts (%llu stole, %llu empty answers checked "
           "against the bound); %llu rounds, %llu items, %llu multi-phase steals, %llu "
           "push/pop pairs, %llu single-thief and %llu owner drains, %llu fresh deques, max "
           "capacity %lld; ok\n",
           (unsigned long long)ops, el, (double)ops / el * 1e-6,
           (unsigned long long)o.pushed, (unsigned long long)ld(&pops_started, RLX),
           (unsigned long long)ld(&pops_failed, RLX), (unsigned long long)attempts,
           (unsigned long long)steals, (unsigned long long)checked, (unsigned long long)rounds,
           (unsigned long long)items, (unsigned long long)multi_steals,
           (unsigned long long)pairs, (unsigned long long)single_drains,
           (unsigned long long)owner_drains, (unsigned long long)regrows, (long long)max_cap);
    deque_fini(&dq);
    free((void *)taken);
    return 0;
}
