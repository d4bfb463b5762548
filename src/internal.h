/*
 * wsched internals shared by the modules: pool.c (lifecycle), worker.c and
 * idle.c (the worker loop, idle/parking), inbox.c, and the batch modules
 * (batch.h: run.c, policy.c, batch.c, submit.c, wait.c, forkjoin.c).
 */
#ifndef WSCHED_INTERNAL_H
#define WSCHED_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "admission.h"
#include "atomics.h"
#include "completion.h"
#include "deque.h"
#include "futex.h"
#include "inbox.h"
#include "mem.h"
#include "rcu.h"
#include "timer.h"
#include "wsched.h"

#define WSCHED_INTERNAL __attribute__((visibility("hidden")))
/* The library's thread-locals (the running worker, a submitter's
 * round-robin position, the batch cache): initial-exec, so that each
 * access is one %fs-relative load instead of a __tls_get_addr call (77
 * instructions per single-job submit, callgrind). They take about 200
 * bytes of the static TLS block, well within the surplus glibc keeps for
 * libraries loaded by dlopen. */
#define WSCHED_TLS _Thread_local __attribute__((tls_model("initial-exec")))

struct wait_cell; /* waitq.h */

/* ------------------------------------------------------------- workers */

/*
 * Per-worker counters. Written by the owning worker only, with a relaxed
 * load + store (no RMW: nobody else writes them); read by wsched_stats
 * at any time with relaxed loads. Each counter is exact at the moment it is
 * read; a snapshot is not a consistent cut across counters or workers.
 * Compiled out with -DWSCHED_STATS=OFF (to measure what they cost).
 */
/* The per-worker counters, declared once: the worker's own copy, the
 * public wsched_worker_stats (whose field order pool.c asserts against
 * this list), the snapshot and the sum all expand it. */
#define WSCHED_COUNTERS(X)                                                     \
    X(jobs)                                                                    \
    X(tasks)                                                                   \
    X(steals)                                                                  \
    X(steal_fails)                                                             \
    X(parks)                                                                   \
    X(wakeups)                                                                 \
    X(busy_ns)

/* A downstream's decisions (downstream.h), counted per downstream and,
 * on a worker, in its pool's copy (wsched_pool_stats.resilience). The
 * last two are for the derived `attempts`: jobs the job path rejected
 * (limit, breaker) and retry attempts begun (resilient.c). */
#define DS_COUNTERS(X)                                                         \
    X(jobs)                                                                    \
    X(retries)                                                                 \
    X(budget_denied)                                                           \
    X(deadline_cut)                                                            \
    X(exhausted)                                                               \
    X(breaker_rejected)                                                        \
    X(breaker_opened)                                                          \
    X(breaker_half_opened)                                                     \
    X(breaker_closed)                                                          \
    X(limited)                                                                 \
    X(delayed)                                                                 \
    X(dead_letters)                                                            \
    X(dead_dropped)                                                            \
    X(hedges)                                                                  \
    X(hedge_wins)                                                              \
    X(hedges_denied)                                                           \
    X(flights)                                                                 \
    X(joined)                                                                  \
    X(flight_handovers)                                                        \
    X(shed)                                                                    \
    X(attempt_timeouts)
struct ds_counts {
#define X(name) _Atomic uint64_t name;
    DS_COUNTERS(X)
#undef X
    _Atomic uint64_t job_rejected, retry_attempts;
};
#ifndef WSCHED_NO_STATS
#define STAT_ADD_DS(w, field) st(&(w)->ds_stats.field, ld(&(w)->ds_stats.field, RLX) + 1, RLX)
#else
#define STAT_ADD_DS(w, field) ((void)(w))
#endif

struct worker_stats {
#define X(name) _Atomic uint64_t name;
    WSCHED_COUNTERS(X)
#undef X
};

#ifndef WSCHED_NO_STATS
#define STAT_ADD(w, field, v)                                                  \
    st(&(w)->stats.field, ld(&(w)->stats.field, RLX) + (v), RLX)
#else
#define STAT_ADD(w, field, v) ((void)(w), (void)(v))
#endif

/* Private children a worker holds at most (wsched.h's inline spawn): a
 * spawn past them goes to the deque. A recursion holds one or two per
 * level of depth. */
#define FJQ_CAP 128

/*
 * A worker: thief-visible state first, each group on its own cache line,
 * then the owner-private part. Nothing here is written per job.
 */
struct worker {
    /* Chase-Lev deque: top (thieves) and bottom/array (owner) on own lines. */
    struct deque dq;

    /* Inboxes, one per priority class (see struct inbox). */
    struct inbox inbox[WSCHED_NPRIO];

    /* Parking (idle.c): bumped once per claim; the futex word. park_until:
     * the deadline of our current or last park (UINT64_MAX: none), written
     * before K1, for a publisher of timers to read (T6). */
    cacheline_aligned _Atomic uint32_t park_word;
    _Atomic uint64_t park_until;

    /* Our timing wheel's token and, while it is free, the wheel's next due
     * time, for idle workers to fire our timers while we run a long task
     * (waitq.c T1-T4). */
    cacheline_aligned _Atomic uint32_t wheel_tok;
    _Atomic uint64_t wheel_due;
    /* wsched_sync napping for stolen children (forkjoin.c S1-S2): the flag
     * a thief reads after counting a child, and the futex it bumps. */
    _Atomic uint32_t sync_nap, nap_word;

    /* Counters: owner-written, read by snapshots (own line). */
    cacheline_aligned struct worker_stats stats;
    /* H5 (pool.c): units of our pool's `inflight` that posted jobs run here
     * have left but not yet given back (owner-written, relaxed; read by
     * snapshots to keep the stat's inflight exact). */
    _Atomic int64_t owed;
    /* Downstream decisions made on this worker (own lines, written only by
     * jobs with a downstream). */
    cacheline_aligned struct ds_counts ds_stats;

    /* Owner-private. */
    cacheline_aligned struct pool *pool;
    /* The private stack of spawned children (wsched.h's inline path;
     * forkjoin.c), its entries below. */
    struct wsched__fjq fjq;
    uint64_t busy_since; /* 0 = not busy (searching or parked) */
    unsigned index;
    bool searching;  /* counted in pool->searching */
    uint32_t claims; /* claims seen: park_word reaches this value */
    uint64_t rng;
    unsigned starts; /* batches started from inboxes (inbox.c priorities) */
    int cpu;
    pthread_t thread;
    bool started;
    /* Timers of the jobs that wait (WSCHED_BATCH_WAITS), owner-only: armed
     * by the jobs this worker runs, advanced by its loop (worker.c). */
    struct timer_wheel wheel;
    /* Waits, owner-private (waitq.c): the free list of wait cells this
     * worker holds, its epoll instance and eventfd (-1 until its first fd
     * wait), the fds registered there, events of the last epoll wait. */
    uint32_t cell_free;
    bool wheel_held;              /* we hold wheel_tok (T1) */
    struct timer *late;           /* timers armed without the token (T3) */
    struct job_wait *deferred;    /* waits to finalize once we hold it (T3) */
    int epfd, evfd;
    unsigned nfds;
    unsigned poll_tick;
    int nev;
    struct epoll_event *ev; /* WAITQ_EVENTS entries, with the epoll instance */

    /* Waits of ours completed elsewhere (a waker, a cancellation), for us
     * to finalize (waitq.c R1-R3): the producers' line (an enqueue onto an
     * empty queue writes the head's link too). in_epoll: we sleep in
     * epoll_wait, so a claimer writes the eventfd (idle.c K5). */
    cacheline_aligned _Atomic uint32_t ready_pending;
    _Atomic uint32_t in_epoll;
    struct cds_wfcq_tail ready_tail;
    struct __cds_wfcq_head ready_head;

    /* fjq's entries (owner-private, its own lines). */
    cacheline_aligned struct wsched__fje fje[FJQ_CAP];
};

static_assert(offsetof(struct worker, inbox) % CACHELINE == 0, "layout");
static_assert(sizeof(struct inbox) % CACHELINE == 0, "layout");
static_assert(offsetof(struct worker, park_word) % CACHELINE == 0, "layout");
static_assert(offsetof(struct worker, stats) % CACHELINE == 0, "layout");
static_assert(offsetof(struct worker, pool) % CACHELINE == 0, "layout");

#define MAX_WORKERS 4096

struct pool {
    struct mem mem;
    unsigned n;
    unsigned nmask; /* words of parked[] in use */
    uint64_t spin_ns; /* wide: spin_us up to WSCHED_SPIN_US_MAX */
    uint64_t timer_slack_ns; /* each worker's, set by itself (worker.c) */
    struct worker *workers;
    struct wsched_pool *handle;

    /* Pool-wide admission limit (0 = none): jobs queued or running. */
    uint64_t max_jobs;
    struct admission admission; /* admission.h */

    /* Idle accounting, written only on search/park/wake transitions. */
    cacheline_aligned _Atomic uint32_t searching;
    _Atomic uint32_t stop; /* workers exit when idle */
    /* Bit i set: worker i is parked or parking. Inline, on lines of their
     * own: every push onto a non-empty deque reads word 0 (pushed()). */
    cacheline_aligned _Atomic uint64_t parked[MAX_WORKERS / 64];

    /* The wait cells (waitq.c): a table of chunk pointers, installed on the
     * first wait, and how many chunks were handed out. Written on growth
     * only. */
    cacheline_aligned _Atomic(_Atomic(struct wait_cell *) *) cells;
    _Atomic uint32_t cell_chunks;
    /* wsched_reserve: the blocks it put into the batch depot (mem.c), per
     * class, given back at destroy. */
    _Atomic uint64_t reserved_blocks[MEM_NCLASS];
};

/* The public handle; never freed (see wsched_pool_destroy) so that a stale
 * handle can be checked safely. inflight/state implement the submit vs
 * destroy handshake (pool.c). */
enum { POOL_ALIVE = 1, POOL_DRAINING = 2, POOL_DEAD = 3 };
#define POOL_MAGIC 0x7773636865646c31ull /* "wschedl1" */
struct wsched_pool {
    uint64_t magic;
    _Atomic uint32_t state;
    _Atomic uint32_t drain_word; /* futex: bumped when inflight drops to 0 */
    _Atomic int64_t inflight;    /* 2 per submit in progress, 1 per incomplete batch */
    struct pool *p;
    struct wsched_pool *next_dead;
    int nworkers;
};
static_assert(sizeof(struct wsched_pool) <= 64, "tombstone stays small");

/* -------------------------------------------------------------- batches */

/* b->cancel: why the batch stopped early, first reason wins. CANCEL_CLOSED
 * is no reason: the batch completed normally and closed the word, so that
 * a later wsched_cancel (or a deadline noticed late) finds it taken and
 * the outcome of a complete batch never changes. */
enum { CANCEL_NONE = 0, CANCEL_USER, CANCEL_FAILFAST, CANCEL_QUORUM, CANCEL_DEADLINE,
       CANCEL_CLOSED };
/* Internal status of a job that is running in an arbitrated batch. */
#define STATUS_RUNNING (WSCHED_ERRBASE - 60)

/*
 * A batch's header, laid out by who touches what (issue 10: a single-job
 * batch used to touch 9 cache lines at submit and 7 on the worker; now 5
 * and 4, statuses included):
 *   line 0  read-only, read by every range and inbox take;
 *   line 1  read-only, the rest of what a worker reads, and the cancel
 *           word (read per job, written by a cancel and at completion);
 *   line 2  read-only, for submit, free and the features' slow paths;
 *   line 3  written: the first error, the completion words, the
 *           reference count, the inbox link (once per range, per
 *           completion, per failure; no job reads it);
 *   line 4  per-job counters of the features that have them (quorum, the
 *           completion stream), line 5 the lanes' index (max_parallel):
 *           written at submit only when the feature is on.
 */
struct wsched_batch {
    /* Line 0: read-only once submitted. (Layout checked: submit.c.) */
    wsched_job_fn fn;
    void *arg;
    wsched_range_fn range_fn; /* range jobs (fn NULL): calls on chunks */
    task_run_fn start_fn;     /* wsched__run_range: the task an inbox take makes */
    size_t n;
    char *slots;
    size_t stride;
    _Atomic int32_t *status; /* relaxed stores; CAS in arbitrated batches */

    /* Line 1: read-only. */
    struct pool *pool;
    struct wsched_pool *handle;
    struct job_wait *waits; /* WSCHED_BATCH_WAITS: one record per job, else NULL */
    /* A batch with waits and a deadline: the deadline's timer record (after
     * the jobs' records); what happens when it fires or is withdrawn is
     * dl_fn, its state dl_state (D1-D4, run.c). */
    struct job_wait *dl;
    /* Completion stream (WSCHED_BATCH_STREAM): ring[k] = index + 1 of the
     * k-th job to finish, 0 until written. */
    _Atomic size_t *ring;
    size_t max_parallel; /* 0 = unlimited; else run as lanes (run.c) */
    size_t grain;        /* range jobs: the most jobs per call */
    uint8_t policy;      /* enum wsched_policy */
    uint8_t prio;        /* enum wsched_priority */
    bool arbitrate;       /* statuses decided by CAS (quorum or deadline) */
    bool holds_admission; /* holds pool admission units (max_jobs) */
    /* CANCEL_*, first reason wins. Read before every job; written by a
     * cancel, and once by the completion (CANCEL_CLOSED), when no job of
     * the batch reads it any more: so on this read-mostly line, not on
     * line 3, whose RMW at each range's end would make other workers'
     * next reads miss. */
    _Atomic uint32_t cancel;

    /* Line 2: read-only, cold. */
    cacheline_aligned wsched_allocator alloc; /* copied: the batch may outlive the pool */
    size_t bytes;          /* the block's size (its batch-cache class, mem.h) */
    task_run_fn resume_fn; /* wsched__run_resume: the task a fired wait makes */
    void (*dl_fn)(struct wsched_batch *b, bool fired);
    size_t quorum;
    uint64_t deadline; /* 0 = none */

    /* Line 3: written once per range, per completion, per failure. */
    cacheline_aligned _Atomic int32_t first_error;
    _Atomic uint32_t dl_state;  /* DL_* */
    _Atomic size_t first_index; /* of first_error */
    _Atomic size_t remaining;   /* jobs not yet counted (B2) */
    _Atomic uint32_t done;      /* BATCH_*: the futex word of wsched_wait */
    _Atomic uint32_t returned;  /* BATCH_*: every job returned (wsched_wait_idle) */
    _Atomic uint32_t refs;      /* caller + runtime (+ a deadline's timer and its withdrawal) */
    /* 1 while the batch waits in an inbox (set by the outside submit, cleared
     * when a worker takes it): a worker waiting on it from inside the pool
     * may then start batches from inboxes (wait.c). Relaxed: a stale value
     * only widens or narrows what a helper looks at, never correctness. */
    _Atomic uint32_t queued;
    /* The parent job waiting for this batch (wsched_wait_batch), NULL, or
     * WAITER_DONE once every job returned (J3). */
    _Atomic(struct job_wait *) waiter;
    struct inbox_link link; /* inbox link (kind INBOX_BATCH) */

    /* Line 4: per-job counters of QUORUM and of the stream's producers
     * (next ring position; the consumer's futex word: pushes counted in
     * bits 0-30, bit 31 = the consumer sleeps), and the consumer's own. */
    cacheline_aligned _Atomic size_t succeeded; /* QUORUM only */
    _Atomic size_t failed;
    _Atomic size_t ring_tail;
    _Atomic uint32_t ring_word;
    size_t ring_head; /* the single consumer's */
    /* Line 5: lanes' next index (max_parallel batches only); the
     * downstream (read-only) and its per-job state (resilient.c), NULL
     * without one. */
    cacheline_aligned _Atomic size_t next;
    struct downstream *ds;
    struct job_pol *pol;
    /* A downstream with hedging: the hedges' wait records and scratch
     * slots (resilient.c), and the slot size to copy a winner's. */
    struct job_wait *hwaits;
    char *hscratch;
    size_t slot_size;
};

/* ---------------------------------------------------------------- jobs */

/* A running job's or task's frame; lives on the worker's stack. */
/* The part of a range its runner still holds privately: jobs (i, hi). */
struct range_state {
    size_t i, hi, count;
};

/* A job's wait (WSCHED_BATCH_WAITS), in the batch's allocation: one cache
 * line per job, so that workers finishing neighbouring jobs' waits never
 * share one. The job arms it before returning WSCHED_PENDING; what decides
 * its completion is the wait cell (waitq.c), or for a batch wait the join
 * (J1-J3, run.c); the timer and fd registration are the arming worker's
 * (`owner`), dropped by it only. */
struct job_wait {
    struct timer timer; /* a sleep, or the deadline of a waker or fd wait */
    struct wsched_batch *b;
    union {
        struct wsched_batch *child; /* a batch wait: the batch waited for */
        struct cds_wfcq_node node;  /* a cell wait: on the owner's ready queue */
    };
    uint32_t index;
    /* The wait cell of a sleep, waker or fd wait (WAIT_NO_CELL otherwise):
     * stored by the arming job, read by cancellers (waitq.c C1). */
    _Atomic uint32_t cell;
    uint16_t owner; /* index of the arming worker */
    /* The parties still to come before the resumption is scheduled: the
     * job's own return (J2) and the wait's completion, 1 each; whoever
     * brings it to 0 schedules. */
    _Atomic uint8_t join;
    uint8_t armed;  /* armed by the current call of the job */
    uint8_t kind;   /* WSCHED_RESUME_TIMER, _BATCH, _WOKEN or _FD, while armed */
    uint8_t events; /* an fd wait: WSCHED_FD_* ready, set by the owner */
    uint8_t tflags; /* JW_TIMED, JW_LATE: where the timer is (owner-private) */
    /* A hedged round's attempt that lost (resilient.c H3): its waits end
     * as cancelled, wsched_cancelled answers 1. SEQ_CST: the Dekker pair
     * of H3 with J2' (as the batch's cancel word is, C3). */
    _Atomic uint8_t lost;
};
#define JW_TIMED 1u /* a timer was armed for this wait */
#define JW_LATE 2u  /* ... and waits on the owner's `late` list (T3) */
#define JW_ATTEMPT 4u /* ... at its attempt's timeout, not its own time (resilient.c) */
static_assert(sizeof(struct job_wait) <= 64, "a waiting job's record is one cache line");
static_assert(MAX_WORKERS <= 65536, "job_wait.owner");
#define WAIT_NO_CELL UINT32_MAX

struct wsched_ctx {
    /* The head that wsched.h's inline spawn and sync read and write
     * (struct wsched__ctx_head, same layout: checked below). */
    union {
        struct wsched__ctx_head head;
        struct {
            struct wsched__fjq *fjq;    /* &w->fjq (always: the inline path reads it) */
            struct worker *w;
            struct wsched_batch *batch; /* the job's batch (children inherit it) */
            unsigned priv;              /* children on fjq, owner-private */
            unsigned spawned;           /* children on the deque, owner-private */
        };
    };
    /* Zero in a child (the inline sync builds it so). */
    struct range_state *range;  /* the batch job's range runner, else NULL */
    struct job_wait *wait;      /* the running job's wait record, else NULL */
    unsigned resume;            /* enum wsched_resume of this call */
    unsigned joined_inline;          /* owner-private */
    uint64_t value;             /* wsched_resume_value of this call */
    _Atomic unsigned joined_stolen;  /* bumped by thieves that ran a child */
#ifdef WSCHED_DEBUG
    unsigned stack_args; /* children spawned with an arg on the job's stack */
#endif
};
static_assert(offsetof(struct wsched_ctx, fjq) == offsetof(struct wsched__ctx_head, fjq) &&
                  offsetof(struct wsched_ctx, w) == offsetof(struct wsched__ctx_head, lib_) &&
                  offsetof(struct wsched_ctx, batch) ==
                      offsetof(struct wsched__ctx_head, lib_) + sizeof(void *) &&
                  offsetof(struct wsched_ctx, priv) == offsetof(struct wsched__ctx_head, priv) &&
                  offsetof(struct wsched_ctx, spawned) ==
                      offsetof(struct wsched__ctx_head, spawned_) &&
                  offsetof(struct wsched_ctx, range) == sizeof(struct wsched__ctx_head),
              "wsched_ctx's head is wsched.h's struct wsched__ctx_head");
/* The inline sync zeroes WSCHED__CTX_SIZE bytes for a child. */
static_assert(sizeof(struct wsched_ctx) == WSCHED__CTX_SIZE, "wsched.h's WSCHED__CTX_SIZE");

/* forkjoin.c: set up w's private stack (pool creation); move its private
 * children to its deque (before w helps or blocks: nobody else can take
 * them there). */
WSCHED_INTERNAL void wsched__fjq_init(struct worker *w);
WSCHED_INTERNAL void wsched__fj_share_worker(struct worker *w);
#define fjq_init wsched__fjq_init
static inline void fj_share(struct worker *w)
{
    if (unlikely(w->fjq.head))
        wsched__fj_share_worker(w);
}

/* A ctx for worker w running a job of b (or a task, a lane: b its batch). */
#define CTX_INIT(w_, b_) .fjq = &(w_)->fjq, .w = (w_), .batch = (b_)

extern WSCHED_TLS struct worker *wsched__self;

/* Calls between modules, by the module that defines them (docs/design.md
 * has the layers; calls only go down). */

/* util.c: fill a caller's output struct of `size` bytes (API 1.0 rule:
 * output structs are passed with their sizeof; header "Conventions"). */
WSCHED_INTERNAL int wsched__copy_out(void *dst, size_t size, const void *src, size_t have,
                                     size_t first);
/* idle.c: producers of work call these (see its top). */
WSCHED_INTERNAL void wsched__notify(struct pool *p, int hint);
WSCHED_INTERNAL void wsched__notify_after_sc(struct pool *p, int hint);
/* worker.c: find work for an in-job wait; one step of such a wait (run a
 * task or back off; with `word`, a batch's wait word, sleep on it once
 * nothing turns up for a while, until at most `deadline` (0 = none)). */
WSCHED_INTERNAL bool wsched__find_work(struct worker *w, struct task *t, bool *stolen,
                                       bool new_ok);
WSCHED_INTERNAL void wsched__help_once(struct worker *w, unsigned *backoff,
                                       _Atomic uint32_t *queued, _Atomic uint32_t *word,
                                       uint64_t deadline);
/* worker.c: how long an in-job wait may nap (absolute ns): 1 ms at most,
 * less for our next timer, another's overdue ones or `deadline`; and the
 * backoff after which it naps. */
WSCHED_INTERNAL uint64_t wsched__nap_until(struct worker *w, uint64_t deadline);
#define HELP_NAP_AFTER (64 + 16)
/* admission.c: reserve max_jobs units for a batch; return them as ranges
 * finish. */
WSCHED_INTERNAL int wsched__admit_reserve(struct pool *p, size_t n, int64_t timeout_ns);
WSCHED_INTERNAL void wsched__admit_release(struct pool *p, size_t n);
/* pool.c: is the handle a live pool? 0, -EINVAL, -ESHUTDOWN or -EBADF,
 * trusting it no further than its tombstone. */
WSCHED_INTERNAL int wsched__handle_check(const struct wsched_pool *h);
/* pool.c: the submit-vs-destroy handshake (H1-H4). */
WSCHED_INTERNAL int wsched__pool_enter(struct wsched_pool *h);
WSCHED_INTERNAL void wsched__pool_leave(struct wsched_pool *h, int64_t k);
/* run.c: the task of a batch range (submit.c puts it in b->start_fn), and
 * of a job whose wait fired (b->resume_fn). */
WSCHED_INTERNAL void wsched__run_range(struct worker *w, const struct task *t, bool stolen);
WSCHED_INTERNAL void wsched__run_resume(struct worker *w, const struct task *t, bool stolen);
/* wait.c */
WSCHED_INTERNAL bool wsched__help_until(struct worker *w, _Atomic uint32_t *queued,
                                        _Atomic uint32_t *word, uint32_t until,
                                        uint64_t deadline);
/* wait.c: outside the pool, poll briefly, then sleep on a completion word
 * (completion.h B4) until DONE or `until` (absolute ns, 0 = none). */
WSCHED_INTERNAL bool wsched__external_wait(_Atomic uint32_t *word, uint64_t until);

/* Is the caller one of h's workers (h alive)? Then its submission is part
 * of admitted work: no destroy handshake, no admission (submit.c). */
static inline bool pool_inside(struct wsched_pool *h, struct worker *self)
{
    return self && h->magic == POOL_MAGIC && self->pool == h->p &&
           ld(&h->state, RLX) != POOL_DEAD;
}
/* submit.c: push onto an inbox from outside the pool (round-robin per
 * thread), then notify. The caller holds the destroy handshake's units. */
WSCHED_INTERNAL void wsched__outside_push(struct pool *p, unsigned prio, struct inbox_link *l);

/* Is a worker searching or parked? Relaxed reads of lines written only on
 * search/park transitions: a hint for splitting, never for correctness. */
static inline bool pool_has_idle(struct pool *p)
{
    if (ld(&p->searching, RLX) != 0)
        return true;
    for (unsigned i = 0; i < p->nmask; i++)
        if (ld(&p->parked[i], RLX))
            return true;
    return false;
}

/* ------------------------------------------------------------ task kinds */

/* deque.h stores a task as `run` and three words and never looks inside;
 * what the words mean is `run`'s business. The two kinds, built and read
 * only through these views:
 *   a range of a batch   run = wsched__run_range: jobs [lo, hi)
 *                        run = run_lane (run.c): lo = hi = 0, unused
 *   a spawned child      run = run_spawned (forkjoin.c): fn(arg), joined
 *                        into the parent ctx
 * (and a posted job, below). */
static_assert(sizeof(size_t) == sizeof(uintptr_t) && sizeof(void *) == sizeof(uintptr_t),
              "a task word holds a size or a pointer");
static_assert(sizeof(wsched_task_fn) == sizeof(uintptr_t), "a task word holds a function");

static inline struct task range_task(task_run_fn run, struct wsched_batch *b, size_t lo,
                                     size_t hi)
{
    return (struct task){run, (uintptr_t)b, lo, hi};
}
static inline struct wsched_batch *range_batch(const struct task *t)
{
    return (struct wsched_batch *)t->a;
}
static inline size_t range_lo(const struct task *t) { return t->b; }
static inline size_t range_hi(const struct task *t) { return t->c; }

/*   a resumption         run = wsched__run_resume: job `index` of a batch
 *                        whose wait fired, called again; hedge: the wait
 *                        was its hedge record's (b->hwaits) */
static inline struct task resume_task(task_run_fn run, struct wsched_batch *b, size_t index,
                                      bool hedge)
{
    return (struct task){run, (uintptr_t)b, index, hedge};
}
static inline bool resume_hedge(const struct task *t) { return t->c != 0; }

static inline struct task spawn_task(task_run_fn run, wsched_task_fn fn, void *arg,
                                     wsched_ctx *parent)
{
    return (struct task){run, (uintptr_t)fn, (uintptr_t)arg, (uintptr_t)parent};
}
static inline wsched_task_fn spawn_fn(const struct task *t) { return (wsched_task_fn)t->a; }
static inline void *spawn_arg(const struct task *t) { return (void *)t->b; }
static inline wsched_ctx *spawn_parent(const struct task *t) { return (wsched_ctx *)t->c; }

/*   a posted job         run = wsched__run_job (post.c): the record; b, c
 *                        unused */
struct job_rec;
static inline struct task job_task(struct job_rec *j);

/* A posted job (post.c): the caller's wsched_job, exactly 64 bytes. The
 * run function is in the record (as a batch's start_fn) so that an inbox
 * take makes the task without calling into post.c. */
#define JOB_MAGIC 0x6a6f6231u /* "job1" */
struct job_rec {
    struct inbox_link link;   /* kind INBOX_JOB; written by the post (I4) */
    _Atomic uint32_t done;    /* BATCH_RUNNING/WAITED/DONE: the wait word (P3, P4) */
    _Atomic uint32_t queued;  /* 1 while in an inbox: helpers may start submissions */
    int32_t status;           /* the job's, stored before P3 */
    uint32_t magic;           /* JOB_MAGIC once posted */
    wsched_job_fn fn;
    void *arg;
    struct wsched_pool *handle;
    /* wsched__run_job, or wsched__run_job_admitted for a job that holds
     * a unit of max_jobs (an outside post to a pool with a limit). */
    task_run_fn run;
};
static_assert(sizeof(struct job_rec) == sizeof(wsched_job) &&
                  _Alignof(struct job_rec) <= _Alignof(wsched_job),
              "wsched.h's wsched_job holds a struct job_rec");
static inline struct task job_task(struct job_rec *j)
{
    return (struct task){j->run, (uintptr_t)j, 0, 0};
}
WSCHED_INTERNAL void wsched__run_job(struct worker *w, const struct task *t, bool stolen);
WSCHED_INTERNAL void wsched__run_job_admitted(struct worker *w, const struct task *t,
                                              bool stolen);

/* After pushing onto our own deque (deque.h P1), with `was_empty` as
 * deque_push_owner computed it from a read of top *before* the publish.
 *  - An empty deque: notify (fence + Dekker pair, idle.c).
 *  - A non-empty one: whoever takes the older tasks scans again before it
 *    parks and sees ours, so no wake is needed, except when every older
 *    task was stolen between our read of top and our publish: the thieves
 *    may then have re-scanned and parked before our store was visible. A
 *    lost wake is not a hang (the owner pops the task at its sync, or when
 *    its job returns), but without repair no later push would wake anyone
 *    either (each sees a non-empty deque), and the pool would stay serial.
 *    So: if no one searches and someone is parked while our deque holds
 *    work, wake one. Relaxed loads, no fence: by now a thief that parked
 *    during our window has its bit visible, which is the case above. What
 *    is left is the bare store->load race (a re-scan and our loads within
 *    one store buffer's drain); the next push from this worker repairs it,
 *    and wsched_blocking, for a job that will not reach its sync soon,
 *    notifies with the fence. The hot case, every worker busy, costs a
 *    load of the parked mask's first word (a line written only on park
 *    and wake edges) and, past 64 workers, one per word. */
static inline void pushed(struct worker *w, bool was_empty)
{
    struct pool *p = w->pool;
    if (was_empty) {
        wsched__notify(p, -1);
        return;
    }
    /* The parked mask first: in the hot case it is 0 and decides alone. */
    bool parked = ld(&p->parked[0], RLX) != 0;
    for (unsigned i = 1; !parked && i < p->nmask; i++)
        parked = ld(&p->parked[i], RLX) != 0;
    if (unlikely(parked) && ld(&p->searching, RLX) == 0)
        wsched__notify(p, -1);
}

/* H3 (pool.c), inline: for the worker loop, which sits below pool.c in
 * the layers (tools/check_layers.py); wsched__pool_leave is this. */
static inline void pool_leave_inline(struct wsched_pool *h, int64_t k)
{
    /* SC: pairs with destroy's CAS to DRAINING and load of inflight. */
    int64_t old = fsub(&h->inflight, k, SC);
    DEBUG_ASSERT(old >= k); /* every unit left was entered */
    if (old == k && ld(&h->state, SC) != POOL_ALIVE) {
        fadd(&h->drain_word, 1, REL); /* H3 */
        futex_wake_all(&h->drain_word);
    }
}

/* H5 (pool.c): a posted job run by one of its pool's workers leaves its
 * unit of `inflight` later, summed: when the worker next finds nothing of
 * its own to run (before it searches, and so before any park), or every
 * POOL_OWED_MAX units. */
#define POOL_OWED_MAX 64
static inline void pool_settle(struct worker *w)
{
    int64_t k = ld(&w->owed, RLX);
    if (k) {
        st(&w->owed, 0, RLX);
        pool_leave_inline(w->pool->handle, k); /* H3, for k units */
    }
}

static inline void pool_owe(struct worker *w)
{
    int64_t k = ld(&w->owed, RLX) + 1;
    st(&w->owed, k, RLX);
    if (unlikely(k >= POOL_OWED_MAX))
        pool_settle(w);
}

static inline void run_task(struct worker *w, const struct task *t, bool stolen)
{
    t->run(w, t, stolen);
}

/* b->dl_state; and the kind of a deadline's record. */
enum { DL_NONE = 0, DL_ARMED = 1, DL_DONE = 2 };
#define WAIT_DEADLINE 7 /* job_wait.kind of a batch's deadline (not a resume kind) */
/* wait.c: the deadline's timer fired (true) or its withdrawal reached the
 * owner (false). */
WSCHED_INTERNAL void wsched__deadline_event(struct wsched_batch *b, bool fired);

/* b->waiter once the batch's jobs have all returned. */
#define WAITER_DONE ((struct job_wait *)(uintptr_t)1)

/* The resumption of the job whose wait `jw` is (its own record or its
 * hedge's). */
static inline struct task resume_task_of(const struct job_wait *jw)
{
    struct wsched_batch *b = jw->b;
    return resume_task(b->resume_fn, b, jw->index,
                       b->hwaits && jw >= b->hwaits && jw < b->hwaits + b->n);
}

/* A job's wait completed: its resumption onto our own deque (stealable;
 * the push's P1 release carries the job's frame to a thief), or run here
 * when the deque cannot grow. */
static inline void schedule_resume(struct worker *w, struct job_wait *jw)
{
    struct task r = resume_task_of(jw);
    bool was_empty;
    if (deque_push_owner(&w->dq, &r, &was_empty) == 0)
        pushed(w, was_empty);
    else
        run_task(w, &r, false);
}

#endif
