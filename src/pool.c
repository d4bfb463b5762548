/*
 * Pool lifecycle, the worker loop, and idle/wake-up.
 *
 * Idle protocol (the rule Go's and Tokio's schedulers converged on):
 *  - A worker with no local work becomes a *searcher* if fewer than half the
 *    workers are searching, and scans the other deques and inboxes for about
 *    spin_ns. A searcher that finds work stops searching; if it was the last
 *    searcher and more work is visible, it wakes one parked worker, so work
 *    spreads one wake at a time and never in a herd.
 *  - Otherwise it parks: sets its bit in `parked` (seq_cst RMW), leaves the
 *    searcher count (seq_cst RMW), re-scans every queue with seq_cst loads,
 *    and only then sleeps on its own futex word.
 *  - A producer (submit, a deque push onto an empty deque) publishes the
 *    work, then a seq_cst fence (or a seq_cst RMW), then reads `searching`:
 *    if a searcher exists it does nothing, else it claims one parked worker
 *    by clearing its bit (fetch_and: exactly one claimer wins), counts it as
 *    a searcher and bumps its futex word. So at most one wake per producer.
 *
 * No lost wake-up (Dekker pairs, all in the seq_cst order S): the producer's
 * publish is sequenced before its fence X; the parker's RMWs on `parked` and
 * `searching` are sequenced before its re-scan loads. If the re-scan misses
 * the work, those loads precede X in S, so the RMWs do too, so the
 * producer's loads after X see the parker's bit set (and `searching` already
 * decremented): it claims and wakes the parker. If a producer sees
 * searching > 0, the searcher's later decrement follows X in S and its
 * re-scan sees the work.
 *
 * The bare seq_cst fence in wsched__notify is necessary: the publish is a
 * release store (deque bottom), and store->load ordering needs a full
 * barrier on x86 too. TSan ignores it, but it orders no data: the data edge
 * is the release/acquire on bottom (deque.h, P1/S2).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "futex.h"
#include "internal.h"
#include "probes.h"
#include "tsan.h"

_Thread_local struct worker *wsched__self;

#define DEQUE_INITIAL 1024 /* 32 KiB of task records per worker */
#define MAX_WORKERS 4096

/* ---------------------------------------------------------------- util */

static uint32_t rng_next(uint64_t *s)
{
    /* xorshift64*: victim selection only. */
    uint64_t x = *s;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* ---------------------------------------------------------- notify/wake */

static void wake_claimed(struct pool *p, unsigned i)
{
    struct worker *v = &p->workers[i];
    /* Count the sleeper as a searcher before it can run, so its eventual
     * decrement never precedes this increment. */
    fadd(&p->searching, 1, SC);
    /* RELEASE pairs with the sleeper's ACQUIRE load of park_word: what the
     * claimer did before (publishing work) is visible to the woken worker. */
    fadd(&v->park_word, 1, REL);
    futex_wake(&v->park_word, 1);
}

/* Clear a set bit of `parked`, preferring `hint`: returns the worker index
 * claimed, or -1 when none is parked. */
static int claim_parked(struct pool *p, int hint)
{
    if (hint >= 0) {
        uint64_t bit = 1ull << (hint % 64);
        if (ld(&p->parked[hint / 64], SC) & bit &&
            fand(&p->parked[hint / 64], ~bit, SC) & bit)
            return hint;
    }
    unsigned start = hint >= 0 ? (unsigned)hint / 64 : 0;
    for (unsigned k = 0; k < p->nmask; k++) {
        unsigned wi = (start + k) % p->nmask;
        uint64_t m = ld(&p->parked[wi], SC);
        while (m) {
            uint64_t bit = m & -m;
            if (fand(&p->parked[wi], ~bit, SC) & bit)
                return (int)(wi * 64 + (unsigned)__builtin_ctzll(bit));
            m &= ~bit;
        }
    }
    return -1;
}

/* Call after publishing work with a seq_cst RMW (the RMW orders the publish
 * before the loads below). */
void wsched__notify_after_sc(struct pool *p, int hint)
{
    if (ld(&p->searching, SC) != 0)
        return; /* a searcher will see the work before it parks */
    int i = claim_parked(p, hint);
    if (i >= 0)
        wake_claimed(p, (unsigned)i);
}

/* Call after publishing work with a plain release store. */
void wsched__notify(struct pool *p, int hint)
{
    fence(SC); /* the store->load barrier of the Dekker pair, see top */
    wsched__notify_after_sc(p, hint);
}

/* ------------------------------------------------------------- finding */

/* Is there work anywhere? seq_cst loads: the re-scan half of the Dekker
 * pairs above. */
static bool work_visible(struct pool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *v = &p->workers[i];
        if (deque_nonempty_sc(&v->dq) || inbox_visible_sc(v))
            return true;
    }
    return false;
}

static bool find_local(struct worker *w, struct task *t, bool *stolen)
{
    if (deque_pop_owner(&w->dq, t)) {
        *stolen = false;
        return true;
    }
    if (inbox_take_local(w, t)) {
        *stolen = true; /* a fresh range: treat as foreign work */
        return true;
    }
    return false;
}

/* One pass over the other workers, from a random start: deques first
 * (finish started requests), then, unless `helping`, inboxes (start new
 * ones). */
static bool steal_pass(struct worker *w, struct task *t, bool helping)
{
    struct pool *p = w->pool;
    unsigned n = p->n, start = rng_next(&w->rng) % n;
    struct worker *v = NULL;
    for (unsigned k = 0; k < n && !v; k++) {
        struct worker *c = &p->workers[(start + k) % n];
        if (c == w)
            continue;
        enum steal_result r;
        while ((r = deque_steal(&c->dq, t)) == STEAL_RETRY)
            cpu_relax();
        if (r == STEAL_OK)
            v = c;
    }
    /* Then new batches, class by class over every inbox (ours included:
     * it is looked at again while searching; not counted as a steal). */
    int from;
    if (!v && !helping && (from = inbox_take_any(w, start, t)) >= 0)
        v = &p->workers[from];
    if (!v) {
        STAT_ADD(w, steal_fails, 1);
        return false;
    }
    if (v != w) {
        STAT_ADD(w, steals, 1);
        PROBE2(steal, w->index, v->index);
    }
    return true;
}

static bool steal_once(struct worker *w, struct task *t)
{
    return steal_pass(w, t, false);
}

/* Used by sync and in-worker waits: work of requests already started (our
 * own deque, then other deques), without parking, and a new batch from an
 * inbox only when `new_ok` (what the worker waits for is itself still in an
 * inbox): otherwise a waiting worker does not start unrelated requests,
 * whose jobs could hold it long after what it waits for is done (wsched.h,
 * "Waiting inside the pool"). */
bool wsched__find_work(struct worker *w, struct task *t, bool *stolen, bool new_ok)
{
    if (deque_pop_owner(&w->dq, t)) {
        *stolen = false;
        return true;
    }
    *stolen = true;
    if (new_ok && inbox_take_local(w, t))
        return true;
    return w->pool->n > 1 && steal_pass(w, t, !new_ok);
}

static void stop_searching(struct worker *w)
{
    struct pool *p = w->pool;
    w->searching = false;
    /* SC RMW: if we were the last searcher, producers may have skipped a wake
     * because we were searching; the re-scan in work_visible follows this RMW
     * in S and sees their work (same argument as parking). */
    if (fsub(&p->searching, 1, SC) == 1 && work_visible(p))
        wsched__notify_after_sc(p, -1);
}

/* Search for about spin_ns. Returns true with a task. */
static bool search(struct worker *w, struct task *t)
{
    struct pool *p = w->pool;
    if (p->n == 1)
        return false;
    if (!w->searching) {
        /* Cap searchers at half the workers (at least one). */
        uint32_t s = ld(&p->searching, RLX);
        if (2 * s >= p->n && s > 0)
            return false;
        fadd(&p->searching, 1, SC);
        w->searching = true;
    }
    uint64_t deadline = wsched_now_ns() + p->spin_ns;
    unsigned backoff = 1;
    for (;;) {
        if (steal_once(w, t))
            return true;
        if (wsched_now_ns() >= deadline)
            return false;
        /* Back off 1, 2, 4 .. 64 pauses, then yield between passes: a
         * thread that shares this CPU (a request thread about to submit,
         * when threads outnumber CPUs) runs instead of our spinning. */
        if (backoff <= 64) {
            for (unsigned i = 0; i < backoff; i++)
                cpu_relax();
            backoff *= 2;
        } else {
            sched_yield();
        }
    }
}

/* ---------------------------------------------------------------- park */

enum park_result { PARK_WOKEN, PARK_SAW_WORK, PARK_STOP };

/* Park until claimed, unless the re-scan sees work or the pool stopping. */
static enum park_result park(struct worker *w)
{
    struct pool *p = w->pool;
    _Atomic uint64_t *word = &p->parked[w->index / 64];
    uint64_t bit = 1ull << (w->index % 64);

    for_(word, bit, SC); /* become claimable */
    if (w->searching) {
        w->searching = false;
        fsub(&p->searching, 1, SC);
    }
    /* Re-scan after both RMWs (see top). */
    bool sleep = true;
    if (work_visible(p) || ld(&p->stop, SC)) {
        if (fand(word, ~bit, SC) & bit) /* cancelled: nobody claimed us */
            return ld(&p->stop, ACQ) ? PARK_STOP : PARK_SAW_WORK;
        /* A producer claimed us first. Its wake-up is in flight: take it
         * below (it returns at once when the bump has landed), so that the
         * claimer's increment of `searching` precedes our own accounting. */
        sleep = false;
    }

    /* Wait until our claim's bump arrives. */
    w->claims++;
    if (sleep) {
        STAT_ADD(w, parks, 1);
        PROBE1(park, w->index);
    }
    for (;;) {
        /* ACQUIRE pairs with the claimer's RELEASE bump (wake_claimed). */
        uint32_t v = ld(&w->park_word, ACQ);
        if (v == w->claims)
            break;
        futex_wait(&w->park_word, v, NULL);
    }
    w->searching = true; /* counted by the claimer */
    if (sleep) {
        STAT_ADD(w, wakeups, 1);
        PROBE1(wake, w->index);
    }
    return ld(&p->stop, ACQ) ? PARK_STOP : PARK_WOKEN;
}

/* -------------------------------------------------------------- worker */

/* Busy time: from finding work to the next search or park. The clock is
 * read only on those transitions, never per task. */
static inline void busy_begin(struct worker *w)
{
#ifndef WSCHED_NO_STATS
    if (!w->busy_since)
        w->busy_since = wsched_now_ns();
#else
    (void)w;
#endif
}

static inline void busy_end(struct worker *w)
{
#ifndef WSCHED_NO_STATS
    if (w->busy_since) {
        STAT_ADD(w, busy_ns, wsched_now_ns() - w->busy_since);
        w->busy_since = 0;
    }
#else
    (void)w;
#endif
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->pool;
    char name[16];
    snprintf(name, sizeof name, "wsched/%u", w->index);
    pthread_setname_np(pthread_self(), name);
    wsched__self = w;

    struct task t;
    bool stolen;
    enum park_result pr = PARK_WOKEN;
    for (;;) {
        stolen = true; /* unless find_local popped it from our own deque */
        bool found = find_local(w, &t, &stolen);
        if (!found) {
            busy_end(w);
            /* After a park cancelled because work was visible, take it even
             * if the searcher cap would keep us from searching. */
            found = search(w, &t) || (pr == PARK_SAW_WORK && p->n > 1 && steal_once(w, &t));
        }
        if (found) {
            if (w->searching)
                stop_searching(w);
            busy_begin(w);
            run_task(w, &t, stolen);
            pr = PARK_WOKEN;
            continue;
        }
        if ((pr = park(w)) == PARK_STOP)
            break;
    }
    if (w->searching) {
        w->searching = false;
        fsub(&p->searching, 1, SC);
    }
    busy_end(w);
    wsched__self = NULL;
    return NULL;
}

/* ----------------------------------------------------------- lifecycle */

static _Atomic(struct wsched_pool *) dead_pools; /* tombstones, see header */

void wsched_config_init(wsched_config *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof *cfg);
}

/* CPUs of the cgroup v2 quota ("max 100000" or "200000 100000"), 0 = none. */
static unsigned cgroup_cpus(void)
{
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "re");
    if (!f)
        return 0;
    char q[32] = {0};
    unsigned long long period = 0;
    unsigned n = 0;
    if (fscanf(f, "%31s %llu", q, &period) == 2 && strcmp(q, "max") != 0 && period) {
        unsigned long long quota = strtoull(q, NULL, 10);
        n = (unsigned)((quota + period - 1) / period);
    }
    fclose(f);
    return n;
}

static int pick_cpus(const wsched_config *cfg, unsigned *n, int **cpus, unsigned *ncpus,
                     const struct mem *mem)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -errno;
    unsigned avail = (unsigned)CPU_COUNT(&set);
    if (cfg->cpus) {
        if (cfg->ncpus == 0 || cfg->ncpus > CPU_SETSIZE)
            return -EINVAL;
        for (unsigned i = 0; i < cfg->ncpus; i++)
            if (cfg->cpus[i] < 0 || cfg->cpus[i] >= CPU_SETSIZE)
                return -EINVAL;
    }
    unsigned count = cfg->nworkers;
    if (count == 0) {
        count = cfg->cpus ? cfg->ncpus : avail;
        unsigned q = cgroup_cpus();
        if (q && q < count)
            count = q;
        if (count == 0)
            count = 1;
    }
    if (count > MAX_WORKERS)
        return -EINVAL;
    unsigned m = cfg->cpus ? cfg->ncpus : avail;
    int *list = mem_alloc(mem, sizeof(int) * (m ? m : 1), _Alignof(int));
    if (!list)
        return -ENOMEM;
    if (cfg->cpus) {
        memcpy(list, cfg->cpus, sizeof(int) * m);
    } else {
        unsigned k = 0;
        for (int c = 0; c < CPU_SETSIZE && k < m; c++)
            if (CPU_ISSET(c, &set))
                list[k++] = c;
    }
    *n = count;
    *cpus = list;
    *ncpus = m;
    return 0;
}

static void free_pool(struct pool *p)
{
    const struct mem *mem = &p->mem;
    if (p->workers) {
        for (unsigned i = 0; i < p->n; i++)
            if (ld(&p->workers[i].dq.array, RLX))
                deque_fini(&p->workers[i].dq);
        mem_free(mem, p->workers, sizeof(struct worker) * p->n, CACHELINE);
    }
    mem_free(mem, (void *)p->parked, sizeof(uint64_t) * p->nmask, CACHELINE);
    struct mem copy = p->mem;
    mem_free(&copy, p, sizeof *p, CACHELINE);
}

static void stop_workers(struct pool *p)
{
    st(&p->stop, 1, SC);
    /* Pairs with park(): a worker that set its bit before our loads is
     * claimed and woken; one that sets it after sees stop in its re-scan. */
    for (unsigned i = 0; i < p->n; i++)
        if (fand(&p->parked[i / 64], ~(1ull << (i % 64)), SC) & (1ull << (i % 64)))
            wake_claimed(p, i);
    for (unsigned i = 0; i < p->n; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
}

int wsched_pool_create(wsched_pool **out, const wsched_config *cfg_in)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    wsched_config defaults;
    wsched_config_init(&defaults);
    const wsched_config *cfg = cfg_in ? cfg_in : &defaults;
    if (cfg->flags & ~WSCHED_POOL_NO_PIN)
        return -EINVAL;
    /* Every field in range: nothing is silently wrapped or replaced. */
    if (cfg->spin_us > WSCHED_SPIN_US_MAX || cfg->max_jobs > (uint64_t)INT64_MAX ||
        (!cfg->cpus && cfg->ncpus))
        return -EINVAL;
    if (cfg->allocator && (!cfg->allocator->alloc || !cfg->allocator->free))
        return -EINVAL;
    for (unsigned i = 0; i < sizeof cfg->reserved / sizeof cfg->reserved[0]; i++)
        if (cfg->reserved[i])
            return -EINVAL;

    struct mem mem;
    mem_init(&mem, cfg->allocator);
    struct pool *p = mem_zalloc(&mem, sizeof *p, CACHELINE);
    if (!p)
        return -ENOMEM;
    p->mem = mem;

    int *cpus = NULL;
    unsigned ncpus = 0, n = 0;
    int r = pick_cpus(cfg, &n, &cpus, &ncpus, &p->mem);
    if (r) {
        mem_free(&mem, p, sizeof *p, CACHELINE);
        return r;
    }
    p->spin_ns = (uint64_t)(cfg->spin_us ? cfg->spin_us : 10) * 1000u;
    p->max_jobs = cfg->max_jobs;
    p->nmask = (n + 63) / 64;
    p->parked = mem_zalloc(&p->mem, sizeof(uint64_t) * p->nmask, CACHELINE);
    p->workers = mem_zalloc(&p->mem, sizeof(struct worker) * n, CACHELINE);
    /* The handle is plain malloc: it is never freed (tombstone). */
    struct wsched_pool *h = calloc(1, sizeof *h);
    if (!p->parked || !p->workers || !h) {
        free(h);
        p->n = p->workers ? n : 0;
        mem_free(&p->mem, cpus, sizeof(int) * (ncpus ? ncpus : 1), _Alignof(int));
        free_pool(p);
        return -ENOMEM;
    }
    p->n = n;
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        w->cpu = (cfg->flags & WSCHED_POOL_NO_PIN) ? -1 : cpus[i % ncpus];
        for (int q = 0; q < WSCHED_NPRIO; q++)
            inbox_init(&w->inbox[q]);
        if (deque_init(&w->dq, &p->mem, DEQUE_INITIAL) != 0) {
            mem_free(&p->mem, cpus, sizeof(int) * (ncpus ? ncpus : 1), _Alignof(int));
            free(h);
            free_pool(p);
            return -ENOMEM;
        }
    }
    mem_free(&p->mem, cpus, sizeof(int) * (ncpus ? ncpus : 1), _Alignof(int));

    h->magic = POOL_MAGIC;
    h->p = p;
    h->nworkers = (int)n;
    st(&h->state, POOL_ALIVE, RLX);
    p->handle = h;

    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &p->workers[i];
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (w->cpu >= 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(w->cpu, &one);
            pthread_attr_setaffinity_np(&attr, sizeof one, &one);
        }
        /* pthread_create publishes everything written above to the thread. */
        r = pthread_create(&w->thread, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (r != 0) {
            stop_workers(p);
            free_pool(p);
            free(h);
            return r == EINVAL ? -EINVAL : -EAGAIN;
        }
        w->started = true;
    }
    *out = h;
    return 0;
}

/* Check a handle without trusting it further than the tombstone. */
static int handle_check(const struct wsched_pool *h)
{
    if (!h)
        return -EINVAL;
    if (h->magic != POOL_MAGIC)
        return -EINVAL;
    uint32_t s = ld(&((struct wsched_pool *)h)->state, ACQ);
    if (s == POOL_DEAD)
        return -EBADF;
    if (s != POOL_ALIVE)
        return -ESHUTDOWN;
    return 0;
}

int wsched_pool_workers(const wsched_pool *h)
{
    int r = handle_check(h);
    return r ? r : h->nworkers;
}

int wsched_stats(wsched_pool *h, wsched_pool_stats *out,
                 wsched_worker_stats *per_worker, unsigned n)
{
    int r = handle_check(h);
    if (r)
        return r;
    if (!out)
        return -EINVAL;
    struct pool *p = h->p;
    memset(out, 0, sizeof *out);
    out->nworkers = p->n;
    for (unsigned i = 0; i < p->nmask; i++)
        out->parked += (unsigned)__builtin_popcountll(ld(&p->parked[i], RLX));
    /* The counters are read one after the other while workers move
     * between states; the gauges are made consistent (header): a worker
     * between its parked bit and leaving the searcher count is parked, and
     * the transient over-count of a claim (wake_claimed counts the sleeper
     * as a searcher first) is clipped. */
    if (out->parked > p->n)
        out->parked = p->n;
    uint32_t s = ld(&p->searching, RLX);
    out->searching = s < p->n - out->parked ? s : p->n - out->parked;
    out->running = p->n - out->parked - out->searching;
    int64_t infl = ld(&h->inflight, RLX);
    out->inflight = infl > 0 ? (uint64_t)infl : 0;
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *w = &p->workers[i];
        int64_t q = inbox_queued(w);
        int64_t d = ld(&w->dq.bottom, RLX) - ld(&w->dq.top, RLX);
        out->queued += (uint64_t)(q > 0 ? q : 0) + (uint64_t)(d > 0 ? d : 0);
        wsched_worker_stats ws = {
            .jobs = ld(&w->stats.jobs, RLX),
            .tasks = ld(&w->stats.tasks, RLX),
            .steals = ld(&w->stats.steals, RLX),
            .steal_fails = ld(&w->stats.steal_fails, RLX),
            .parks = ld(&w->stats.parks, RLX),
            .wakeups = ld(&w->stats.wakeups, RLX),
            .busy_ns = ld(&w->stats.busy_ns, RLX),
        };
        out->total.jobs += ws.jobs;
        out->total.tasks += ws.tasks;
        out->total.steals += ws.steals;
        out->total.steal_fails += ws.steal_fails;
        out->total.parks += ws.parks;
        out->total.wakeups += ws.wakeups;
        out->total.busy_ns += ws.busy_ns;
        if (per_worker && i < n)
            per_worker[i] = ws;
    }
    return 0;
}

/*
 * Submit vs destroy: a submitter adds 2 to inflight (SC) and then reads
 * state (SC); destroy stores DRAINING (SC) and then reads inflight (SC).
 * Either the submitter sees DRAINING and backs out, or destroy sees its
 * increment and waits. One unit is the batch's (dropped when it completes),
 * the other the submit call's own (dropped when wsched_submit stops touching
 * the pool: the batch may complete before the submitter's wake-up is done).
 */
int wsched__admit(struct wsched_pool *h)
{
    int r = handle_check(h);
    if (r)
        return r;
    fadd(&h->inflight, 2, SC);
    uint32_t s = ld(&h->state, SC);
    if (s != POOL_ALIVE) {
        wsched__unadmit(h, 2);
        return s == POOL_DEAD ? -EBADF : -ESHUTDOWN;
    }
    return 0;
}

void wsched__unadmit(struct wsched_pool *h, int64_t k)
{
    /* SC: pairs with destroy's SC store of DRAINING and load of inflight. */
    if (fsub(&h->inflight, k, SC) == k && ld(&h->state, SC) != POOL_ALIVE) {
        fadd(&h->drain_word, 1, REL);
        futex_wake_all(&h->drain_word);
    }
}

int wsched_pool_destroy(wsched_pool *h)
{
    int r = handle_check(h);
    if (r)
        return r == -ESHUTDOWN ? -EBADF : r;
    struct pool *p = h->p;
    if (wsched__self && wsched__self->pool == p)
        return -EDEADLK;
    uint32_t alive = POOL_ALIVE;
    if (!cas(&h->state, &alive, POOL_DRAINING, SC))
        return -EBADF; /* another thread is destroying it */

    /* Drain: every accepted batch runs to completion. */
    for (;;) {
        uint32_t v = ld(&h->drain_word, ACQ);
        if (ld(&h->inflight, SC) == 0)
            break;
        futex_wait(&h->drain_word, v, NULL);
    }
    stop_workers(p);
    /* The workers are joined: nothing reads the pool's deques any more
     * (deque.h R1), so free_pool frees every array now. No grace period:
     * destroying this pool waits for no other pool's work. */
    free_pool(p);
    h->p = NULL;
    st(&h->state, POOL_DEAD, REL);
    /* Keep the tombstone reachable (no leak report, safe stale checks). */
    struct wsched_pool *head = ld(&dead_pools, RLX);
    do
        h->next_dead = head;
    while (!atomic_compare_exchange_weak_explicit(&dead_pools, &head, h, REL, RLX));
    return 0;
}
