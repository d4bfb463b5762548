/*
 * Fan-out soak (issue 7, "Long stress"): client threads submit random
 * batches into a pool with an admission limit for a given time, check every
 * batch as a demanding user would, sample the process RSS, and require it to
 * stay flat.
 *
 *   soak [seconds [interval]]     default 5 s (CI); env WSCHED_SOAK_SECONDS,
 *                                 WSCHED_SOAK_INTERVAL, WSCHED_SOAK_CLIENTS,
 *                                 WSCHED_SOAK_WORKERS
 *
 * Each batch: 1..64 jobs; policy BEST_EFFORT, FAIL_FAST or QUORUM (random
 * K); some with a deadline (0-500 us), some cancelled by the client while
 * they run, some with max_parallel, some STREAM (consumed with
 * wsched_next_done), some background priority, some with caller-provided
 * or no slots. Jobs spin a little (polling wsched_cancelled), fail with -EIO
 * as a hash of (batch seed, index) says, and some submit a nested batch
 * (fan-out from inside the pool, checked there) or spawn fork-join tasks.
 * Submissions use wsched_submit_timed with 0 (load shedding), small
 * timeouts (backpressure) or none: -EBUSY / -ETIMEDOUT are counted, any
 * other error is a violation.
 *
 * Checked per batch (after wsched_wait and wsched_wait_idle): every slot
 * final; every job ran at most once (per-job counters), exactly once when
 * its status says it ran; status 0 only for a job that succeeds and with its
 * slot's value, -EIO only for one that fails; the cancelled/deadline
 * statuses only where the batch had a source for them, and never for a job
 * that ran in a batch without arbitration; wait returns 0 (complete) and
 * the batch's ending is what the policy says; the stream returns every job
 * exactly once with its final status; max_parallel never exceeded;
 * repeated waits agree; wsched_batch_outcome agrees with all of it (slot
 * counts, first error and its index, how the batch ended). A
 * nested submission with timeout 0 must be admitted (nested batches are
 * exempt from max_jobs).
 *
 * Checked for the pool: every 250 ms the gauges add up (parked + searching
 * + running = workers) and the jobs counter of wsched_stats is
 * at least the jobs of every batch whose wsched_wait_idle returned (the
 * counter counts every index of a range, run or skipped: src/run.c
 * range_done); at the end it equals the jobs of all accepted batches, the
 * tasks counter equals the tasks spawned, the pool goes quiet (nothing
 * queued or in flight, every worker parked), every admission unit came
 * back (a batch of exactly max_jobs is admitted with timeout 0), and no
 * batch has gone missing (progress at least every 120 s).
 *
 * RSS: sampled from /proc/self/statm every interval (default 1 s, 60 s for
 * runs of 10 min or more); the largest sample of the second half may exceed
 * the largest of the first half by at most 10 % + 1 MiB (the sample taken
 * at start, before the clients run, is a baseline outside both halves;
 * with fewer than 4 samples after it there is nothing to compare). Skipped
 * in sanitizer builds, whose quarantine and shadow memory grow by design.
 * Each sample also shows the heap in use, to tell a leak from allocator
 * caching: glibc's (this program's own allocations, mallinfo2) and, when the
 * library uses jemalloc, jemalloc's stats.allocated (the library's).
 *
 * The checks lean on x86-TSO where the C11 model is weaker (a job that saw
 * a cancellation cannot win the first-error race against the job whose
 * failure caused it; see the comments at the checks); the project targets
 * x86 (src/debug.c uses the ia32 pause).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SOAK_SANITIZED 1
#else
#define SOAK_SANITIZED 0
#endif

enum { MAX_JOBS = 128, MAX_N = 64, NEST_MAX = 16 };

static wsched_pool *pool;
static _Atomic int stop;

/* Global tallies (relaxed unless said otherwise). */
static _Atomic uint64_t g_batches, g_jobs_run, g_jobs_skipped, g_busy, g_timedout,
    g_nested_batches, g_nested_jobs, g_spawned, g_submitted_jobs, g_cancel_client,
    g_deadline_hit, g_ff_err, g_quorum_fail, g_stream_batches, g_stream_timeouts,
    g_limited_batches, g_pol[3];
/* Jobs (with their nested batches) of every batch whose wsched_wait_idle
 * returned: RELEASE after it, the sampler's ACQUIRE makes the library's
 * counters for those jobs visible. */
static _Atomic uint64_t g_idle_jobs;

/* -------------------------------------------------------------- batches */

/* The batch's arg: what every job may compute and what it records. */
struct bctx {
    uint64_t seed;
    size_t n;
    unsigned depth;     /* 0 = submitted by a client, 1 = nested */
    unsigned spin_max;  /* spin iterations per job: hash % spin_max */
    unsigned fail_mod;  /* job fails iff fail_mod && hash % fail_mod == 0 */
    unsigned nest_mod;  /* job nests iff nest_mod && (hash >> 32) % nest_mod == 0 */
    unsigned spawn;     /* jobs may spawn fork-join tasks */
    size_t max_parallel;
    _Atomic int running, max_running;
    _Atomic uint64_t nested_jobs; /* jobs of the nested batches of its jobs */
    _Atomic unsigned hits[];      /* per job: times it started */
};

static inline uint64_t job_hash(uint64_t seed, size_t i)
{
    return common_mix64(seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull + 1));
}

static inline bool job_fails(const struct bctx *c, uint64_t h)
{
    return c->fail_mod && h % c->fail_mod == 0;
}

static inline uint64_t slot_value(uint64_t h)
{
    return h ^ 0x5a5aa5a5c3c33c3cull;
}

static struct bctx *bctx_new(size_t n, uint64_t seed, unsigned depth)
{
    struct bctx *c = calloc(1, sizeof *c + n * sizeof c->hits[0]);
    CHECK(c);
    c->n = n;
    c->seed = seed;
    c->depth = depth;
    return c;
}

/* What a client decided for one batch (printed on a violation). */
struct plan {
    size_t n, quorum, max_parallel;
    unsigned policy, flags, priority;
    bool deadline, cancel, stream, own_slots, no_slots, arbitrated;
    uint64_t deadline_ns;
};

static const char *const policy_name[] = {"best-effort", "fail-fast", "quorum"};

static void plan_print(const struct plan *p, const struct bctx *c, int w)
{
    fprintf(stderr,
            "  batch: n=%zu policy=%s quorum=%zu deadline=%d cancel=%d stream=%d "
            "max_parallel=%zu slots=%s prio=%u depth=%u fail_mod=%u spin_max=%u "
            "seed=%#llx wait=%d (%s)\n",
            p->n, policy_name[p->policy], p->quorum, p->deadline, p->cancel, p->stream,
            p->max_parallel, p->no_slots ? "none" : p->own_slots ? "caller" : "library",
            p->priority, c->depth, c->fail_mod, c->spin_max, (unsigned long long)c->seed, w,
            wsched_strerror(w));
}

#define VIOLATION(p, c, w, ...)                                                \
    do {                                                                       \
        fprintf(stderr, "soak: VIOLATION at %s:%d: ", __FILE__, __LINE__);     \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        plan_print((p), (c), (w));                                             \
        abort();                                                               \
    } while (0)

#define VCHECK(cond, p, c, w)                                                  \
    do {                                                                       \
        if (!(cond))                                                           \
            VIOLATION((p), (c), (w), "%s", #cond);                             \
    } while (0)

/* ----------------------------------------------------------------- jobs */

struct tjob {
    uint64_t in, out;
};

static void task_fn(wsched_ctx *ctx, void *arg)
{
    (void)ctx;
    struct tjob *t = arg;
    t->out = common_mix64(t->in);
}

static int soak_job(wsched_ctx *ctx, void *arg, size_t i, void *slot);
static void check_batch(const struct plan *p, struct bctx *c, wsched_batch *b, int w,
                        const int *streamed);

/* Fan-out from inside a job: a best-effort batch of 1..16 jobs, submitted
 * with timeout 0 (nested batches are exempt from max_jobs: never -EBUSY),
 * waited for (the worker helps meanwhile), checked like any batch. */
static void nested_fanout(struct bctx *parent, uint64_t h)
{
    uint64_t s = h;
    size_t n = 1 + (size_t)(common_splitmix64(&s) % NEST_MAX);
    struct bctx *c = bctx_new(n, common_splitmix64(&s), 1);
    c->spin_max = (unsigned)(common_splitmix64(&s) % 400);
    c->fail_mod = common_splitmix64(&s) % 2 ? 5 : 0;
    c->spawn = common_splitmix64(&s) % 2;
    struct plan p = {.n = n, .policy = WSCHED_POLICY_BEST_EFFORT};
    p.stream = common_splitmix64(&s) % 3 == 0;
    wsched_batch_desc d = {.fn = soak_job, .arg = c, .njobs = n,
                           .slot_size = sizeof(uint64_t),
                           .flags = p.stream ? WSCHED_BATCH_STREAM : 0};
    wsched_batch *b;
    int r = wsched_submit_timed(pool, &d, &b, 0);
    if (r)
        VIOLATION(&p, c, r, "nested submit with timeout 0 failed: %s", wsched_strerror(r));
    atomic_fetch_add_explicit(&g_submitted_jobs, n, memory_order_relaxed);
    int streamed[NEST_MAX];
    if (p.stream) {
        for (size_t k = 0; k < n; k++)
            streamed[k] = WSCHED_ENOTRUN;
        for (size_t k = 0; k < n; k++) {
            size_t idx = SIZE_MAX;
            r = wsched_next_done(b, -1, &idx); /* inside a worker: helps */
            VCHECK(r == 0 && idx < n && streamed[idx] == WSCHED_ENOTRUN, &p, c, r);
            streamed[idx] = check_status(b, idx);
            VCHECK(streamed[idx] != WSCHED_ENOTRUN, &p, c, r);
        }
        size_t idx;
        VCHECK(wsched_next_done(b, 0, &idx) == -ENODATA, &p, c, 0);
    }
    int w = wsched_wait(b, -1);
    VCHECK(wsched_wait_idle(b, 0) == 0, &p, c, w); /* no quorum/deadline: same moment */
    check_batch(&p, c, b, w, p.stream ? streamed : NULL);
    uint64_t jobs = n + atomic_load_explicit(&c->nested_jobs, memory_order_relaxed);
    atomic_fetch_add_explicit(&parent->nested_jobs, jobs, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_nested_batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_nested_jobs, n, memory_order_relaxed);
    wsched_batch_free(b);
    free(c);
}

/* Fork-join from inside a job: 1..4 children, synced, results checked. */
static void fork_join(wsched_ctx *ctx, const struct plan *p, struct bctx *c, uint64_t h)
{
    struct tjob t[4];
    unsigned k = 1 + (unsigned)((h >> 52) & 3);
    for (unsigned j = 0; j < k; j++) {
        t[j] = (struct tjob){h + j, 0};
        int r = wsched_spawn(ctx, task_fn, &t[j]);
        if (r)
            VIOLATION(p, c, r, "wsched_spawn: %s", wsched_strerror(r));
    }
    int r = wsched_sync(ctx);
    if (r)
        VIOLATION(p, c, r, "wsched_sync: %s", wsched_strerror(r));
    for (unsigned j = 0; j < k; j++)
        if (t[j].out != common_mix64(h + j))
            VIOLATION(p, c, 0, "spawned task %u: result missing after sync", j);
    atomic_fetch_add_explicit(&g_spawned, k, memory_order_relaxed);
}

static int soak_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct bctx *c = arg;
    atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
    if (c->max_parallel) {
        int now = atomic_fetch_add_explicit(&c->running, 1, memory_order_relaxed) + 1;
        int m = atomic_load_explicit(&c->max_running, memory_order_relaxed);
        while (now > m && !atomic_compare_exchange_weak_explicit(
                              &c->max_running, &m, now, memory_order_relaxed,
                              memory_order_relaxed))
            ;
    }
    uint64_t h = job_hash(c->seed, i);
    bool stopped = false;
    unsigned spins = c->spin_max ? (unsigned)((h >> 8) % c->spin_max) : 0;
    volatile uint64_t x = h;
    for (unsigned k = 0; k < spins; k++) {
        if ((k & 127) == 0 && wsched_cancelled(ctx)) {
            stopped = true;
            break;
        }
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    if (!stopped && c->depth == 0 && c->nest_mod && (h >> 32) % c->nest_mod == 0)
        nested_fanout(c, h);
    if (!stopped && c->spawn && ((h >> 44) & 7) == 0) {
        struct plan p = {.n = c->n};
        fork_join(ctx, &p, c, h);
    }
    if (slot)
        *(uint64_t *)slot = slot_value(h);
    if (c->max_parallel)
        atomic_fetch_sub_explicit(&c->running, 1, memory_order_relaxed);
    if (stopped)
        return -ECANCELED; /* saw wsched_cancelled: stopped early */
    return job_fails(c, h) ? -EIO : 0;
}

/* ---------------------------------------------------------------- checks */

/*
 * The whole batch, after wsched_wait returned w and every job returned
 * (wsched_wait_idle). `streamed`: statuses seen through the stream, or NULL.
 */
static void check_batch(const struct plan *p, struct bctx *c, wsched_batch *b, int w_call,
                        const int *streamed)
{
    size_t n = p->n;
    /* API 1.0: the wait answers 0 (complete) whatever the outcome. The
     * checks below reason about the batch's ending as one code `w`: the
     * first error when a policy failed it, -ETIMEDOUT at the deadline, 0
     * otherwise, derived from the outcome (which is itself checked against
     * the slots below). */
    VCHECK(w_call == 0, p, c, w_call);
    int w = 0;
    {
        wsched_outcome o0;
        VCHECK(wsched_batch_outcome(b, &o0, sizeof o0) == 0, p, c, w_call);
        if (o0.end == WSCHED_END_DEADLINE)
            w = -ETIMEDOUT;
        else if (o0.end == WSCHED_END_FAILED || o0.end == WSCHED_END_QUORUM_IMPOSSIBLE)
            w = o0.first_error;
    }
    size_t ok = 0, eio = 0, stopped = 0, cancelled = 0, late = 0, ran = 0;
    bool ff = p->policy == WSCHED_POLICY_FAIL_FAST, quorum = p->policy == WSCHED_POLICY_QUORUM;
    /* Could anything have cancelled jobs? (a deadline also makes
     * wsched_cancelled true once it passed, before anyone marks it) */
    bool cancel_src = p->cancel || p->deadline || ff || quorum;
    VCHECK(wsched_batch_size(b) == n, p, c, w);
    for (size_t i = 0; i < n; i++) {
        int s = check_status(b, i);
        unsigned hits = atomic_load_explicit(&c->hits[i], memory_order_relaxed);
        uint64_t h = job_hash(c->seed, i);
        if (hits > 1)
            VIOLATION(p, c, w, "job %zu ran %u times", i, hits);
        ran += hits;
        if (streamed && streamed[i] != s)
            VIOLATION(p, c, w, "job %zu: stream said status %d, final status %d", i,
                      streamed[i], s);
        void *slot = wsched_batch_slot(b, i);
        if (p->no_slots ? slot != NULL : slot == NULL)
            VIOLATION(p, c, w, "job %zu: slot pointer %p", i, slot);
        switch (s) {
        case 0:
            ok++;
            if (hits != 1 || job_fails(c, h))
                VIOLATION(p, c, w, "job %zu: status ok, hits %u, should fail %d", i, hits,
                          job_fails(c, h));
            if (slot && *(uint64_t *)slot != slot_value(h))
                VIOLATION(p, c, w, "job %zu: status ok but slot %#llx", i,
                          (unsigned long long)*(uint64_t *)slot);
            break;
        case -EIO:
            eio++;
            if (hits != 1 || !job_fails(c, h))
                VIOLATION(p, c, w, "job %zu: status -EIO, hits %u, should fail %d", i, hits,
                          job_fails(c, h));
            break;
        case -ECANCELED: /* the job saw wsched_cancelled and stopped */
            stopped++;
            if (hits != 1 || !cancel_src)
                VIOLATION(p, c, w, "job %zu: stopped early (hits %u) without a cause", i,
                          hits);
            break;
        case WSCHED_ECANCELLED:
            cancelled++;
            if (!(p->cancel || ff || quorum))
                VIOLATION(p, c, w, "job %zu: ECANCELLED without a cause", i);
            /* Without arbitration a cancelled slot is a skipped job. */
            if (!p->arbitrated && hits != 0)
                VIOLATION(p, c, w, "job %zu: ECANCELLED but it ran", i);
            break;
        case WSCHED_EDEADLINE:
            late++;
            if (!p->deadline)
                VIOLATION(p, c, w, "job %zu: EDEADLINE without a deadline", i);
            break;
        case WSCHED_ENOTRUN:
            VIOLATION(p, c, w, "job %zu: status not final after wait", i);
        default:
            VIOLATION(p, c, w, "job %zu: unexpected status %d (%s)", i, s,
                      wsched_strerror(s));
        }
    }
    VCHECK(check_not_ok(b) == n - ok, p, c, w);
    if (p->max_parallel)
        VCHECK(atomic_load(&c->max_running) <= (int)p->max_parallel, p, c, w);

    /* The batch's ending (w, from the outcome), policy by policy. */
    VCHECK(w == 0 || w == -EIO || w == -ECANCELED || w == -ETIMEDOUT, p, c, w);
    if (!p->deadline)
        VCHECK(w != -ETIMEDOUT && late == 0, p, c, w);
    bool plain = !p->cancel && !p->deadline; /* the policy alone decides */
    if (p->policy == WSCHED_POLICY_BEST_EFFORT) {
        VCHECK(w == 0 || w == -ETIMEDOUT, p, c, w);
        if (plain)
            VCHECK(ran == n && stopped == 0 && cancelled == 0 && ok + eio == n, p, c, w);
        if (!p->cancel)
            VCHECK(cancelled == 0, p, c, w);
        if (w == 0 && !p->cancel)
            VCHECK(late == 0, p, c, w); /* a late job sets the deadline reason */
    } else if (ff) {
        if (plain) {
            if (eio == 0)
                VCHECK(w == 0 && ran == n && ok == n, p, c, w);
            else
                /* x86-TSO: a job that saw the cancel cannot have won the
                 * first-error CAS the failing job made before cancelling. */
                VCHECK(w == -EIO && stopped + cancelled + ok + eio == n, p, c, w);
        }
        if (w == 0 && !p->cancel)
            /* Nothing failed, nothing was cancelled, nothing was late. */
            VCHECK(eio == 0 && stopped == 0 && cancelled == 0 && late == 0, p, c, w);
        if (w == -EIO || w == -ECANCELED)
            VCHECK(eio + stopped > 0, p, c, w);
    } else { /* quorum */
        size_t k = p->quorum;
        if (plain) {
            /* Late results are discarded once decided: no job that stopped
             * on the quorum's cancel keeps its status. */
            VCHECK(stopped == 0 && ok + eio + cancelled == n, p, c, w);
            if (ok >= k)
                VCHECK(w == 0, p, c, w);
            else
                VCHECK(w == -EIO && eio >= n - k + 1, p, c, w);
        }
        if (w == 0 && !p->cancel)
            VCHECK(ok >= k, p, c, w);
        if (w == -EIO || w == -ECANCELED)
            VCHECK(ok < k && eio + stopped >= n - k + 1, p, c, w);
    }
    /* wsched_batch_outcome agrees with the slots, the policy and wait. */
    wsched_outcome oc;
    VCHECK(wsched_batch_outcome(b, &oc, sizeof oc) == 0, p, c, w);
    if (oc.ok != ok || oc.failed != eio + stopped || oc.cancelled != cancelled ||
        oc.timed_out != late || oc.unfinished != 0)
        VIOLATION(p, c, w, "outcome counts ok %zu failed %zu cancelled %zu timed_out %zu "
                  "unfinished %zu; slots: ok %zu failed %zu cancelled %zu timed_out %zu",
                  oc.ok, oc.failed, oc.cancelled, oc.timed_out, oc.unfinished, ok,
                  eio + stopped, cancelled, late);
    if ((oc.first_error == 0) != (eio + stopped == 0) ||
        (oc.first_error == 0 ? oc.first_error_index != SIZE_MAX
                             : oc.first_error_index >= n ||
                                   check_status(b, oc.first_error_index) !=
                                       oc.first_error))
        VIOLATION(p, c, w, "outcome first error %d at %zu", oc.first_error,
                  oc.first_error_index);
    if (p->policy == WSCHED_POLICY_BEST_EFFORT && oc.first_error)
        for (size_t i = 0; i < oc.first_error_index; i++) {
            int s = check_status(b, i);
            if (s == -EIO || s == -ECANCELED)
                VIOLATION(p, c, w, "outcome first error at %zu, but job %zu failed before it",
                          oc.first_error_index, i);
        }
    switch (oc.end) {
    case WSCHED_END_COMPLETED:
        VCHECK(w == 0, p, c, w);
        VCHECK(!quorum && (!ff || eio + stopped == 0), p, c, w);
        break;
    case WSCHED_END_FAILED:
        VCHECK(ff && w == oc.first_error && w != 0, p, c, w);
        break;
    case WSCHED_END_QUORUM_REACHED:
        VCHECK(quorum && w == 0 && ok >= p->quorum, p, c, w);
        break;
    case WSCHED_END_QUORUM_IMPOSSIBLE:
        VCHECK(quorum && w == oc.first_error && w != 0 && ok < p->quorum, p, c, w);
        break;
    case WSCHED_END_DEADLINE:
        VCHECK(p->deadline && w == -ETIMEDOUT, p, c, w);
        break;
    case WSCHED_END_CANCELLED:
        VCHECK(p->cancel && w == 0, p, c, w);
        break;
    default:
        VIOLATION(p, c, w, "outcome end %u after wait_idle", oc.end);
    }
    if (plain)
        VCHECK(quorum ? oc.end == WSCHED_END_QUORUM_REACHED ||
                            oc.end == WSCHED_END_QUORUM_IMPOSSIBLE
               : ff   ? oc.end == (eio ? WSCHED_END_FAILED : WSCHED_END_COMPLETED)
                      : oc.end == WSCHED_END_COMPLETED,
               p, c, w);

    /* Waiting again answers the same: complete. */
    VCHECK(wsched_wait(b, 0) == 0, p, c, w);
    VCHECK(wsched_wait(b, -1) == 0, p, c, w);

    atomic_fetch_add_explicit(&g_jobs_run, ran, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_jobs_skipped, n - ran, memory_order_relaxed);
    if (w == -ETIMEDOUT)
        atomic_fetch_add_explicit(&g_deadline_hit, 1, memory_order_relaxed);
    if (ff && (w == -EIO || w == -ECANCELED))
        atomic_fetch_add_explicit(&g_ff_err, 1, memory_order_relaxed);
    if (quorum && (w == -EIO || w == -ECANCELED))
        atomic_fetch_add_explicit(&g_quorum_fail, 1, memory_order_relaxed);
}

/* --------------------------------------------------------------- clients */

static void *client(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x2545F4914F6CDD1Dull + 12345;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct plan p = {0};
        p.n = 1 + (size_t)(common_splitmix64(&s) % MAX_N);
        p.policy = (unsigned)(common_splitmix64(&s) % 3);
        if (p.policy == WSCHED_POLICY_QUORUM)
            p.quorum = 1 + (size_t)(common_splitmix64(&s) % p.n);
        p.deadline = common_splitmix64(&s) % 4 == 0;
        p.cancel = common_splitmix64(&s) % 6 == 0;
        p.stream = common_splitmix64(&s) % 4 == 0;
        if (common_splitmix64(&s) % 5 == 0)
            p.max_parallel = 1 + (size_t)(common_splitmix64(&s) % 8);
        p.priority = common_splitmix64(&s) % 8 == 0 ? WSCHED_PRIO_BACKGROUND
                                                    : WSCHED_PRIO_INTERACTIVE;
        unsigned sl = (unsigned)(common_splitmix64(&s) % 10);
        p.no_slots = sl == 0;
        p.own_slots = sl == 1;
        p.arbitrated = p.policy == WSCHED_POLICY_QUORUM || p.deadline;

        struct bctx *c = bctx_new(p.n, common_splitmix64(&s), 0);
        static const unsigned spin_choice[] = {0, 64, 1000, 5000, 20000};
        c->spin_max = spin_choice[common_splitmix64(&s) % 5];
        static const unsigned fail_choice[] = {0, 0, 3, 8, 20};
        c->fail_mod = fail_choice[common_splitmix64(&s) % 5];
        c->nest_mod =
            common_splitmix64(&s) % 4 == 0 ? 1 + (unsigned)(common_splitmix64(&s) % 16) : 0;
        c->spawn = common_splitmix64(&s) % 4 == 0;
        c->max_parallel = p.max_parallel;

        uint64_t *own = NULL;
        wsched_batch_desc d = {.fn = soak_job, .arg = c, .njobs = p.n, .policy = p.policy,
                               .quorum = p.quorum, .max_parallel = p.max_parallel,
                               .priority = p.priority};
        if (!p.no_slots) {
            d.slot_size = sizeof(uint64_t);
            if (p.own_slots) {
                own = calloc(p.n, sizeof *own);
                CHECK(own);
                d.slots = own;
            } else if (common_splitmix64(&s) % 4 == 0) {
                d.flags |= WSCHED_BATCH_PAD_SLOTS;
            }
        }
        if (p.stream)
            d.flags |= WSCHED_BATCH_STREAM;
        p.flags = d.flags;
        if (p.deadline) {
            p.deadline_ns = wsched_now_ns() + common_splitmix64(&s) % 500000;
            d.deadline_ns = p.deadline_ns;
        }

        /* Admission: shed (0), backpressure (50 us .. 2 ms) or wait. */
        int64_t tmo;
        switch (common_splitmix64(&s) % 4) {
        case 0: tmo = 0; break;
        case 1: tmo = 50000 + (int64_t)(common_splitmix64(&s) % 1950000); break;
        case 2: tmo = 10000000; break;
        default: tmo = -1; break;
        }
        wsched_batch *b;
        int r = tmo < 0 && common_splitmix64(&s) % 2 ? wsched_submit(pool, &d, &b)
                                       : wsched_submit_timed(pool, &d, &b, tmo);
        if (r == -EBUSY || r == -ETIMEDOUT) {
            if (r == -EBUSY && tmo != 0)
                VIOLATION(&p, c, r, "-EBUSY with timeout %lld", (long long)tmo);
            if (r == -ETIMEDOUT && tmo <= 0)
                VIOLATION(&p, c, r, "-ETIMEDOUT with timeout %lld", (long long)tmo);
            VCHECK(b == NULL, &p, c, r);
            atomic_fetch_add_explicit(r == -EBUSY ? &g_busy : &g_timedout, 1,
                                      memory_order_relaxed);
            for (unsigned k = 0; k < c->n; k++)
                VCHECK(atomic_load(&c->hits[k]) == 0, &p, c, r);
            free(c);
            free(own);
            sched_yield();
            continue;
        }
        if (r)
            VIOLATION(&p, c, r, "submit: %s", wsched_strerror(r));
        atomic_fetch_add_explicit(&g_submitted_jobs, p.n, memory_order_relaxed);

        if (p.cancel) {
            common_spin_ns(common_splitmix64(&s) % 50000);
            VCHECK(wsched_cancel(b) == 0, &p, c, 0);
            atomic_fetch_add_explicit(&g_cancel_client, 1, memory_order_relaxed);
        }
        int *streamed = NULL;
        if (p.stream) {
            streamed = malloc(p.n * sizeof *streamed);
            CHECK(streamed);
            for (size_t i = 0; i < p.n; i++)
                streamed[i] = WSCHED_ENOTRUN;
            bool polled = common_splitmix64(&s) % 2;
            for (size_t k = 0; k < p.n; k++) {
                size_t idx = SIZE_MAX;
                r = wsched_next_done(b, polled ? 100000 : -1, &idx);
                if (r == -ETIMEDOUT && polled) {
                    atomic_fetch_add_explicit(&g_stream_timeouts, 1, memory_order_relaxed);
                    k--;
                    continue;
                }
                if (r || idx >= p.n || streamed[idx] != WSCHED_ENOTRUN)
                    VIOLATION(&p, c, r, "stream entry %zu: r=%d index %zu (twice?)", k, r,
                              idx);
                streamed[idx] = check_status(b, idx);
                if (streamed[idx] == WSCHED_ENOTRUN)
                    VIOLATION(&p, c, r, "stream returned job %zu before its status is final",
                              idx);
                if (streamed[idx] == 0 && !p.no_slots &&
                    *(uint64_t *)wsched_batch_slot(b, idx) !=
                        slot_value(job_hash(c->seed, idx)))
                    VIOLATION(&p, c, r, "stream: job %zu ok but its slot is not visible", idx);
            }
            size_t idx;
            VCHECK(wsched_next_done(b, 0, &idx) == -ENODATA, &p, c, 0);
            VCHECK(wsched_next_done(b, -1, &idx) == -ENODATA, &p, c, 0);
            atomic_fetch_add_explicit(&g_stream_batches, 1, memory_order_relaxed);
        } else if (common_splitmix64(&s) % 3 == 0) {
            (void)wsched_wait(b, common_splitmix64(&s) % 2 ? 0 : 20000); /* a poll, either result */
        }
        int w = wsched_wait(b, -1);
        if (!p.arbitrated)
            /* Without quorum or deadline, wsched_wait returning is the
             * moment every job has returned (header). */
            VCHECK(wsched_wait_idle(b, 0) == 0, &p, c, w);
        VCHECK(wsched_wait_idle(b, -1) == 0, &p, c, w);
        check_batch(&p, c, b, w, streamed);
        if (p.max_parallel)
            atomic_fetch_add_explicit(&g_limited_batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_pol[p.policy], 1, memory_order_relaxed);
        uint64_t jobs = p.n + atomic_load_explicit(&c->nested_jobs, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_idle_jobs, jobs, memory_order_release);
        atomic_fetch_add_explicit(&g_batches, 1, memory_order_relaxed);
        wsched_batch_free(b);
        free(streamed);
        free(own);
        free(c);
    }
    return NULL;
}

/* ------------------------------------------------------------------ main */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Heap in use, KiB: glibc malloc's (this program) and jemalloc's (the
 * library's, when it uses jemalloc: -1 otherwise). Diagnostics only. */
typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static void heap_kib(long *libc_kib, long *je_kib)
{
    *libc_kib = -1;
    *je_kib = -1;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    *libc_kib = (long)((mi.uordblks + mi.hblkhd) / 1024);
#endif
    static mallctl_fn mallctl_p;
    static bool looked;
    if (!looked) {
        mallctl_p = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
        looked = true;
    }
    if (mallctl_p) {
        uint64_t epoch = 1;
        size_t sz = sizeof epoch, alloc = 0;
        mallctl_p("epoch", &epoch, &sz, &epoch, sz); /* refresh the stats */
        sz = sizeof alloc;
        if (mallctl_p("stats.allocated", &alloc, &sz, NULL, 0) == 0)
            *je_kib = (long)(alloc / 1024);
    }
}

static void print_sample(double t, long rss, const wsched_pool_stats *st)
{
    long libc_kib, je_kib;
    heap_kib(&libc_kib, &je_kib);
    printf("[%8.1f s] rss %6ld KiB (heap %ld + %ld)  batches %10llu  jobs %11llu  rejected %8llu "
           "(busy %llu, timeout %llu)  parked %u searching %u running %u queued %llu "
           "inflight %llu  stats.jobs %llu tasks %llu steals %llu parks %llu\n",
           t, rss, libc_kib, je_kib, (unsigned long long)atomic_load(&g_batches),
           (unsigned long long)(atomic_load(&g_jobs_run) + atomic_load(&g_nested_jobs)),
           (unsigned long long)(atomic_load(&g_busy) + atomic_load(&g_timedout)),
           (unsigned long long)atomic_load(&g_busy),
           (unsigned long long)atomic_load(&g_timedout), st->parked, st->searching,
           st->running, (unsigned long long)st->queued, (unsigned long long)st->inflight,
           (unsigned long long)st->total.jobs, (unsigned long long)st->total.tasks,
           (unsigned long long)st->total.steals, (unsigned long long)st->total.parks);
    fflush(stdout);
}

enum { MAX_SAMPLES = 100000 };
static double sample_t[MAX_SAMPLES];
static long sample_rss[MAX_SAMPLES];

int main(int argc, char **argv)
{
    /* A bad value ends the program with exit status 2, naming it. */
    long seconds = check_setting(argc, argv, 1, "WSCHED_SOAK_SECONDS", 1, 100000000, 5);
    long interval = check_setting(argc, argv, 2, "WSCHED_SOAK_INTERVAL", 1, 100000000,
                                  seconds >= 600 ? 60 : 1);
    long nclients = check_setting(argc, argv, -1, "WSCHED_SOAK_CLIENTS", 1, 256, 6);
    long nworkers = check_setting(argc, argv, -1, "WSCHED_SOAK_WORKERS", 1, 256, 4);
    check_watchdog((unsigned)seconds + 300);

    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = (unsigned)nworkers;
    cfg.max_jobs = MAX_JOBS;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    printf("soak: %ld s, sample every %ld s, %ld clients, %ld workers, max_jobs %d, "
           "batches of 1..%d jobs%s\n"
           "soak: rss = resident KiB; heap = KiB in use in glibc malloc (this program) + "
           "jemalloc (the library; -1: not used)\n",
           seconds, interval, nclients, nworkers, MAX_JOBS, MAX_N,
           SOAK_SANITIZED ? " (sanitizer build: RSS check off)" : "");

    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    for (long i = 0; i < nclients; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, client, (void *)(uintptr_t)(i + 1)), 0);

    double t0 = common_now_s(), next_print = t0 + (double)interval;
    long nsamples = 0;
    wsched_pool_stats st;
    CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
    sample_t[nsamples] = 0;
    sample_rss[nsamples++] = rss_kib();
    print_sample(0, sample_rss[0], &st);
    uint64_t last_batches = 0;
    double last_progress = t0;
    for (;;) {
        common_sleep_ns(250000000);
        double t = common_now_s();
        /* Exact lower bound: every job of a batch whose wait_idle returned
         * is in the counter (ACQUIRE pairs with the clients' RELEASE). */
        uint64_t idle_jobs = atomic_load_explicit(&g_idle_jobs, memory_order_acquire);
        CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
        if (st.total.jobs < idle_jobs) {
            fprintf(stderr, "soak: VIOLATION: stats.jobs %llu < jobs of finished batches %llu\n",
                    (unsigned long long)st.total.jobs, (unsigned long long)idle_jobs);
            abort();
        }
        /* Consistent in every snapshot (src/pool.c wsched_stats). */
        if (st.nworkers != nworkers || st.parked + st.searching + st.running != st.nworkers) {
            fprintf(stderr, "soak: VIOLATION: gauges parked %u + searching %u + running %u "
                    "!= %u workers\n", st.parked, st.searching, st.running, st.nworkers);
            abort();
        }
        uint64_t nb = atomic_load(&g_batches);
        if (nb != last_batches) {
            last_batches = nb;
            last_progress = t;
        } else if (t - last_progress > 120) {
            fprintf(stderr, "soak: VIOLATION: no batch finished for 120 s (hang?)\n");
            abort();
        }
        bool end = t - t0 >= (double)seconds;
        if (t >= next_print || end) {
            if (nsamples < MAX_SAMPLES) {
                sample_t[nsamples] = t - t0;
                sample_rss[nsamples] = rss_kib();
                print_sample(t - t0, sample_rss[nsamples], &st);
                nsamples++;
            }
            while (next_print <= t)
                next_print += (double)interval;
        }
        if (end)
            break;
    }
    atomic_store(&stop, 1);
    for (long i = 0; i < nclients; i++)
        pthread_join(th[i], NULL);
    free(th);
    double elapsed = common_now_s() - t0;

    /* Quiet pool: the counters are exact now. */
    CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
    uint64_t submitted = atomic_load(&g_submitted_jobs), spawned = atomic_load(&g_spawned);
    if (st.total.jobs != submitted || st.total.tasks != spawned) {
        fprintf(stderr, "soak: VIOLATION: stats.jobs %llu vs %llu jobs accepted, stats.tasks "
                "%llu vs %llu spawned\n", (unsigned long long)st.total.jobs,
                (unsigned long long)submitted, (unsigned long long)st.total.tasks,
                (unsigned long long)spawned);
        abort();
    }
    /* Every worker parks, nothing queued or in flight (within 10 s). */
    double q0 = common_now_s();
    for (;;) {
        CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
        if (st.inflight == 0 && st.queued == 0 && st.parked == st.nworkers)
            break;
        if (common_now_s() - q0 > 10) {
            fprintf(stderr, "soak: VIOLATION: pool not quiet 10 s after the clients stopped: "
                    "inflight %llu queued %llu parked %u/%u\n",
                    (unsigned long long)st.inflight, (unsigned long long)st.queued, st.parked,
                    st.nworkers);
            abort();
        }
        common_sleep_ns(1000000);
    }
    /* Every admission unit came back: exactly max_jobs fit, one more never. */
    {
        struct bctx *c = bctx_new(MAX_JOBS, 1, 0);
        wsched_batch_desc d = {.fn = soak_job, .arg = c, .njobs = MAX_JOBS};
        wsched_batch *b;
        int r = wsched_submit_timed(pool, &d, &b, 0);
        if (r) {
            fprintf(stderr, "soak: VIOLATION: a batch of max_jobs (%d) jobs on an idle pool: "
                    "%s (admission units lost)\n", MAX_JOBS, wsched_strerror(r));
            abort();
        }
        CHECK_OK(wsched_wait(b, -1));
        for (unsigned i = 0; i < MAX_JOBS; i++)
            CHECK_EQ(atomic_load(&c->hits[i]), 1);
        wsched_batch_free(b);
        d.njobs = MAX_JOBS + 1;
        CHECK_EQ(wsched_submit_timed(pool, &d, &b, 0), -E2BIG);
        free(c);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(wsched_pool_workers(pool), -EBADF);

    /* RSS: flat over the run. The sample at 0 s is taken before the
     * clients start: a baseline, not part of either half. */
    double half = sample_t[nsamples - 1] / 2;
    long max1 = 0, max2 = 0;
    for (long i = 1; i < nsamples; i++) {
        long *m = sample_t[i] <= half ? &max1 : &max2;
        if (sample_rss[i] > *m)
            *m = sample_rss[i];
    }
    long limit = max1 + max1 / 10 + 1024;
    bool rss_checked = !SOAK_SANITIZED && nsamples - 1 >= 4;
    uint64_t batches = atomic_load(&g_batches);
    printf("soak: %.0f s, %llu batches (best-effort %llu, fail-fast %llu, quorum %llu; "
           "%llu streamed, %llu limited, %llu cancelled by the client), %llu jobs run + %llu "
           "skipped, %llu nested batches (%llu jobs), %llu tasks spawned; rejected: %llu "
           "-EBUSY, %llu -ETIMEDOUT; wait outcomes: %llu deadline, %llu fail-fast error, %llu "
           "quorum failed; %.0f batches/s\n",
           elapsed, (unsigned long long)batches, (unsigned long long)g_pol[0],
           (unsigned long long)g_pol[1], (unsigned long long)g_pol[2],
           (unsigned long long)g_stream_batches, (unsigned long long)g_limited_batches,
           (unsigned long long)g_cancel_client, (unsigned long long)g_jobs_run,
           (unsigned long long)g_jobs_skipped, (unsigned long long)g_nested_batches,
           (unsigned long long)g_nested_jobs, (unsigned long long)spawned,
           (unsigned long long)g_busy, (unsigned long long)g_timedout,
           (unsigned long long)g_deadline_hit, (unsigned long long)g_ff_err,
           (unsigned long long)g_quorum_fail, (double)batches / elapsed);
    printf("soak: RSS KiB at start %ld, first sample %ld, last %ld, max first half %ld, max "
           "second half %ld (limit %ld), %ld samples%s\n",
           sample_rss[0], sample_rss[nsamples > 1 ? 1 : 0], sample_rss[nsamples - 1], max1,
           max2, limit, nsamples - 1,
           rss_checked ? "" : SOAK_SANITIZED ? " (not checked: sanitizer build)"
                                             : " (not checked: fewer than 4 samples)");
    if (batches == 0) {
        fprintf(stderr, "soak: VIOLATION: no batch completed\n");
        return 1;
    }
    if (rss_checked && max2 > limit) {
        fprintf(stderr, "soak: VIOLATION: RSS grew: max second half %ld KiB > %ld KiB\n", max2,
                limit);
        return 1;
    }
    printf("soak: ok\n");
    return 0;
}
