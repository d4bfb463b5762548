/*
 * Pools: configuration and CPUs, create/destroy, the handle's tombstones,
 * the submit-vs-destroy handshake (wsched__pool_enter/unadmit), stats. Idle and
 * wake-up: idle.c; the worker loop: worker.c.
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
#include "waitq.h"
#include "probes.h"
#include "tsan.h"

#include "idle.h"

#define DEQUE_INITIAL 1024 /* 32 KiB of task records per worker */

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
                     struct mem *mem)
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
        for (size_t c = 0; c < CPU_SETSIZE && k < m; c++)
            if (CPU_ISSET(c, &set))
                list[k++] = (int)c;
    }
    *n = count;
    *cpus = list;
    *ncpus = m;
    return 0;
}

static void free_pool(struct pool *p)
{
    struct mem *mem = &p->mem;
    for (int c = 0; c < MEM_NCLASS; c++)
        mem_reserve_release(c, ld(&p->reserved_blocks[c], RLX));
    wsched__wait_fini(p);
    if (p->workers) {
        for (unsigned i = 0; i < p->n; i++)
            if (ld(&p->workers[i].dq.array, RLX))
                deque_fini(&p->workers[i].dq);
        mem_free(mem, p->workers, sizeof(struct worker) * p->n, CACHELINE);
    }
    struct mem copy = p->mem;
    mem_free(&copy, p, sizeof *p, CACHELINE);
}

static void stop_workers(struct pool *p)
{
    st(&p->stop, 1, SC);
    /* Pairs with wsched__park (idle.c): a worker that set its bit before our loads is
     * claimed and woken; one that sets it after sees stop in its re-scan. */
    for (unsigned i = 0; i < p->n; i++)
        if (fand(&p->parked[i / 64], ~(1ull << (i % 64)), SC) & (1ull << (i % 64)))
            wsched__wake_claimed(p, i);
    for (unsigned i = 0; i < p->n; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
}

/* Every field in range: nothing is silently wrapped or replaced. */
static int config_check(const wsched_config *cfg)
{
    if (cfg->flags & ~WSCHED_POOL_NO_PIN)
        return -EINVAL;
    if (cfg->spin_us > WSCHED_SPIN_US_MAX || cfg->max_jobs > (uint64_t)INT64_MAX ||
        cfg->timer_slack_ns > WSCHED_TIMER_SLACK_NS_MAX ||
        (!cfg->cpus && cfg->ncpus))
        return -EINVAL;
    if (cfg->allocator && (!cfg->allocator->alloc || !cfg->allocator->free))
        return -EINVAL;
    for (unsigned i = 0; i < sizeof cfg->reserved / sizeof cfg->reserved[0]; i++)
        if (cfg->reserved[i])
            return -EINVAL;
    return 0;
}

/* Each worker's fields, inboxes and deque, before any thread runs. */
static int workers_init(struct pool *p, const wsched_config *cfg, const int *cpus,
                        unsigned ncpus)
{
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        w->cpu = (cfg->flags & WSCHED_POOL_NO_PIN) ? -1 : cpus[i % ncpus];
        for (int q = 0; q < WSCHED_NPRIO; q++)
            inbox_init(&w->inbox[q]);
        timer_wheel_init(&w->wheel, wsched_now_ns());
        w->cell_free = WAIT_NO_CELL;
        w->epfd = w->evfd = -1;
        __cds_wfcq_init(&w->ready_head, &w->ready_tail);
        if (deque_init(&w->dq, &p->mem, DEQUE_INITIAL) != 0)
            return -ENOMEM;
        /* One worker: nobody steals from it (steal_pass skips the caller's
         * own deque; timer stealing needs two workers). */
        w->dq.solo = p->n == 1;
        fjq_init(w);
    }
    return 0;
}

/* Start the threads, pinned. On failure the ones started keep their
 * `started` flag, for stop_workers to join. */
static int workers_start(struct pool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *w = &p->workers[i];
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (w->cpu >= 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET((size_t)w->cpu, &one);
            pthread_attr_setaffinity_np(&attr, sizeof one, &one);
        }
        /* pthread_create publishes everything written before to the thread. */
        int r = pthread_create(&w->thread, &attr, wsched__worker_main, w);
        pthread_attr_destroy(&attr);
        if (r != 0)
            return r == EINVAL ? -EINVAL : -EAGAIN;
        w->started = true;
    }
    return 0;
}

/* Phases: check the configuration, allocate (pool, CPU list, workers, the
 * handle), initialise the workers, start their threads. One
 * unwind undoes whatever the failed phase found done. */
int wsched_pool_create(wsched_pool **out, const wsched_config *cfg_in)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    wsched_config defaults;
    wsched_config_init(&defaults);
    const wsched_config *cfg = cfg_in ? cfg_in : &defaults;
    int r = config_check(cfg);
    if (r)
        return r;

    struct mem mem;
    mem_init(&mem, cfg->allocator);
    struct pool *p = mem_zalloc(&mem, sizeof *p, CACHELINE);
    if (!p)
        return -ENOMEM;
    p->mem = mem;
    struct wsched_pool *h = NULL;
    int *cpus = NULL;
    unsigned ncpus = 0, n = 0;
    bool threads = false;
    if ((r = pick_cpus(cfg, &n, &cpus, &ncpus, &p->mem)) != 0)
        goto fail;
    p->spin_ns = (uint64_t)(cfg->spin_us ? cfg->spin_us : 10) * 1000u;
    p->timer_slack_ns = cfg->timer_slack_ns ? cfg->timer_slack_ns : 1000u;
    p->max_jobs = cfg->max_jobs;
    p->nmask = (n + 63) / 64;
    r = -ENOMEM;
    if (!(p->workers = mem_zalloc(&p->mem, sizeof(struct worker) * n, CACHELINE)))
        goto fail;
    p->n = n; /* free_pool frees n workers from here on */
    /* The handle is plain malloc: it is never freed (the tombstone). */
    if (!(h = calloc(1, sizeof *h)))
        goto fail;
    if ((r = workers_init(p, cfg, cpus, ncpus)) != 0)
        goto fail;
    mem_free(&p->mem, cpus, sizeof(int) * (ncpus ? ncpus : 1), _Alignof(int));
    cpus = NULL;

    h->magic = POOL_MAGIC;
    h->p = p;
    h->nworkers = (int)n;
    st(&h->state, POOL_ALIVE, RLX);
    p->handle = h;
    threads = true;
    if ((r = workers_start(p)) != 0)
        goto fail;
    *out = h;
    return 0;

fail:
    if (threads)
        stop_workers(p); /* joins the ones that started */
    if (cpus)
        mem_free(&p->mem, cpus, sizeof(int) * (ncpus ? ncpus : 1), _Alignof(int));
    free(h);
    free_pool(p);
    return r;
}

/* Check a handle without trusting it further than the tombstone. */
int wsched__handle_check(const struct wsched_pool *h)
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
    int r = wsched__handle_check(h);
    return r ? r : h->nworkers;
}

/*
 * The destroy handshake: submit (outside the pool) against destroy, on the
 * handle's `inflight` and `state` (all seq_cst; S the total order).
 *
 *  (H1) enter: inflight += 2, then load state; not ALIVE: leave (H3) and
 *       fail. One unit is the batch's (left when it completes), the other
 *       the submit call's own (left when wsched_submit stops touching the
 *       pool: the batch may complete before the submitter is done).
 *  (H2) destroy: CAS state ALIVE -> DRAINING, then until inflight == 0:
 *       read drain_word (ACQUIRE), load inflight, futex-wait on the word.
 *  (H3) leave: inflight -= k; if that reached 0 and state is not ALIVE,
 *       bump drain_word (RELEASE) and wake all.
 *  (H4) inside a worker: inflight += 1 relaxed, no state check (submit.c:
 *       the running job's batch holds a unit until after ours is added).
 *  (H5) a posted job's unit is left by the worker that ran it, later and
 *       summed (internal.h pool_owe/pool_settle): when that worker next
 *       finds nothing of its own to run, which precedes every search and
 *       park, or every POOL_OWED_MAX units. Deferring an H3 only moves it
 *       later, after the job's completion (P3) and everything it did, so
 *       destroy's inflight == 0 still means every unit's work is over; the
 *       delay is bounded by the task the worker runs meanwhile, which holds
 *       a unit of its own (destroy waits for it anyway). The stat's
 *       inflight subtracts the owed units (stats.c).
 *
 * Dekker pair H1 against H2: if enter's load of state precedes destroy's
 * CAS in S, so does its increment, and destroy's later load of inflight
 * sees it: destroy waits for the batch. Otherwise enter sees DRAINING and
 * backs out. No lost drain wake-up: destroy's load of inflight read
 * non-zero, so it precedes the final H3 decrement in S, and the CAS before
 * it does too: that leaver's load of state sees DRAINING and bumps the
 * word; destroy read the word before the load (ACQUIRE), so its futex wait
 * returns at once if the bump came first. Model: tests/model/destroy.pml;
 * tests: tests/stress/test_destroy, tests/unit/test_bad_input (use after
 * destroy).
 */
int wsched__pool_enter(struct wsched_pool *h)
{
    int r = wsched__handle_check(h);
    if (r)
        return r;
    fadd(&h->inflight, 2, SC);        /* H1 */
    uint32_t s = ld(&h->state, SC);   /* H1 */
    if (s != POOL_ALIVE) {
        wsched__pool_leave(h, 2);
        return s == POOL_DEAD ? -EBADF : -ESHUTDOWN;
    }
    return 0;
}

void wsched__pool_leave(struct wsched_pool *h, int64_t k)
{
    pool_leave_inline(h, k); /* H3 (internal.h) */
}

int wsched_pool_destroy(wsched_pool *h)
{
    int r = wsched__handle_check(h);
    if (r)
        return r == -ESHUTDOWN ? -EBADF : r;
    struct pool *p = h->p;
    if (wsched__self && wsched__self->pool == p)
        return -EDEADLK;
    uint32_t alive = POOL_ALIVE;
    if (!cas(&h->state, &alive, POOL_DRAINING, SC)) /* H2 */
        return -EBADF; /* another thread is destroying it */

    /* Drain: every accepted batch runs to completion. Pending waits are
     * cancelled (waitq.c); a wait armed by a job that read the state just
     * before our CAS (or a pool's first wait, its table of cells made after
     * a sweep) is caught by the next sweep, 1 ms on: the drain polls. */
    for (;;) {
        uint32_t v = ld(&h->drain_word, ACQ); /* H2: before the load */
        if (ld(&h->inflight, SC) == 0)       /* H2 */
            break;
        struct timespec ts;
        wsched__wait_sweep(p);
        futex_wait(&h->drain_word, v, abs_deadline(wsched_now_ns() + 1000000, &ts));
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
    while (!cas_weak(&dead_pools, &head, h, REL));
    return 0;
}
