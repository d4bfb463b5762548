/*
 * Wakers and fd waits raced against everything (issue 9). Client threads
 * submit WSCHED_BATCH_WAITS batches with random policies (best effort,
 * fail-fast, quorum), deadlines (some short enough to fire while jobs
 * wait), max_parallel (0 or 1..4) and user cancels at random moments. Each
 * job waits 0-3 times; each wait is a sleep (0-300 us), a waker or an fd
 * wait:
 *  - a waker's handle goes to foreign "waker" threads through a lock-free
 *    mailbox (an array of atomic slots); they wake it after a random short
 *    delay, sometimes twice, sometimes never, sometimes late (after
 *    wsched_wait returned, after wsched_wait_idle, after the batch was
 *    freed); sometimes the job wakes it itself before it returns; with or
 *    without a waker deadline;
 *  - an fd wait is on one end of a socketpair (taken exclusively from a
 *    shared set) whose other end a waker thread writes one byte to after a
 *    delay, or late, or never (a wait for writability is ready at once).
 * A quarter of the jobs' calls also deliver a ticket of another job from
 * inside the pool (a wake from a worker), and an eighth of the arming
 * calls keep running for up to 40 us before they return WSCHED_PENDING
 * (completions, cancels and early completions racing the return). A wait
 * that nothing but a cancellation can end is only armed in a batch whose
 * deadline or user cancel is sure to come. Pools of 2, 3 and 1 workers in
 * turn, each ending with the destroy below.
 *
 * Checked in the jobs: no two calls of one job run at once; each call's
 * resume kind fits the wait the previous call armed (TIMER for a sleep,
 * WOKEN / TIMEDOUT / CANCELLED for a waker, FD / TIMEDOUT / CANCELLED for
 * an fd; TIMEDOUT only for a wait with a deadline and not before it;
 * nothing after the final call); a waker's value is one of that waker's
 * wakes; an fd's ready bits are the ones asked for, and READ means the
 * written byte is there; with max_parallel, jobs in flight (first call to
 * final return, waiting included) never exceed the limit.
 * Checked per batch after wsched_wait_idle: every started job made one
 * call per wait armed plus one, ending once (finished or one cleanup
 * call); a slot holds the job's own result exactly when it finished
 * uncancelled (arbitrated batches may discard a result at a freeze); the
 * outcome's counts agree with the slots and its end with what happened.
 * After the batch is freed and every waker thread is done with its
 * tickets: per waker arming, at most one wake returned 0 (the others
 * -EALREADY); a WOKEN resumption's value is that wake's; a TIMEDOUT one
 * had none; a wake that won after wsched_wait returned was followed by a
 * cleanup call; every wake after wsched_wait_idle (or the free) returned
 * -EALREADY. Then a pool destroy with waits pending that nothing else
 * would end: they end cancelled, waits armed while it drains fail with
 * -ESHUTDOWN, nothing hangs, and wakes after it return -EBADF.
 *
 * WSCHED_SEED=N picks the run's seed (printed at the start).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MAXJOBS 24
#define MAXWAITS 3
#define NPAIRS 64
#define MBOX 512
#define NWAKERS 2
#define CLIENTS 4
#define LOCAL_CAP 1024 /* > every ticket that can be out at once */

enum { W_NONE, W_SLEEP, W_WAKER, W_FD };
enum { TK_WAKE = 1, TK_FD = 2 };
/* When a waker thread acts on a ticket: after its delay, or late. */
enum { L_NO, L_DONE, L_IDLE, L_FREED, L_DESTROYED };

struct req;

/* One waker or fd arming, in its request (not in the batch: it outlives
 * the batch until every waker thread is done with it). */
struct ticket {
    /* The job's, written before it posts the ticket (the mailbox's RELEASE). */
    struct req *q;
    int type, late, attempts; /* wakes (1 or 2) or the fd write (1) */
    uint32_t delay, delay2;
    wsched_waker handle;
    int pair;
    unsigned char byte;
    uint64_t vbase; /* wake k's value: vbase + k (the job's own: + 7) */
    /* Wakes that returned 0, and with what value (waker threads, the job). */
    _Atomic int zeros, won_after_done;
    _Atomic uint64_t won;
    /* The job's, at the resumption; read after wsched_wait_idle. */
    int used, res_kind;
    uint64_t res_value;
    /* The waker thread's. */
    uint64_t due;
    int done;
};

struct req {
    wsched_pool *pool;
    uint64_t seed;
    size_t n;
    int fail_index;
    unsigned policy;
    size_t max_parallel;
    uint64_t deadline;
    int ends;        /* a batch deadline or a user cancel is sure to come */
    int cancellable; /* anything may cancel it (ends, or a policy) */
    int destroy;     /* the destroy phase: destroy ends what nothing else does */
    _Atomic int inflight, inflight_max;
    _Atomic int posted, retired;
    _Atomic int done, idle, freed;
    _Atomic int pending_never; /* jobs that armed a wait only a cancellation ends */
    struct ticket *tk;         /* n * MAXWAITS: job i's wait w is tk[i * MAXWAITS + w] */
};

/* One job's frame (its slot). */
struct frame {
    _Atomic int inside; /* calls of this job running now (must stay <= 1) */
    int calls, planned, nwaits, finished, cleanups, result, shut, timedout;
    int cur;       /* what the last call armed (W_*) */
    int never;     /* ... and only a cancellation can end it */
    uint64_t when; /* a sleep's time, a waker's or fd's deadline (0: none) */
    int tki;       /* its ticket (waker, fd), -1: none */
    unsigned events;
    int kinds[MAXWAITS + 1];
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull, x ^= x >> 33;
    return x;
}

static _Atomic int g_destroyed, g_stop;
static _Atomic uint64_t g_serial = 1;
/* What happened, for the summary (and the check that every kind came up). */
static _Atomic long c_kind[8], c_end[8], c_won, c_self, c_late, c_writes, c_batches,
    c_mp_full, c_ebadf, c_won_done, c_in_job;

/* ------------------------------------------------------ socketpairs */

static int pair_fd[NPAIRS][2];
static _Atomic int pair_refs[NPAIRS]; /* 0: free; else its holders (job, writer) */

static int pair_get(uint64_t h)
{
    for (int k = 0; k < NPAIRS; k++) {
        int j = (int)((h + (uint64_t)k) % NPAIRS), z = 0;
        if (atomic_compare_exchange_strong(&pair_refs[j], &z, 1))
            return j;
    }
    return -1;
}

/* A holder lets go; the last one drains what was written and frees it. */
static void pair_put(int j)
{
    int v = atomic_load(&pair_refs[j]);
    for (;;) {
        CHECK(v >= 1);
        if (v == 1) { /* ours alone: nobody writes or reads it now */
            char buf[16];
            while (read(pair_fd[j][0], buf, sizeof buf) > 0)
                ;
            atomic_store_explicit(&pair_refs[j], 0, memory_order_release);
            return;
        }
        if (atomic_compare_exchange_weak(&pair_refs[j], &v, v - 1))
            return;
    }
}

/* ---------------------------------------------------------- mailbox */

static _Atomic(struct ticket *) mbox[MBOX];

static void mbox_put(struct ticket *t, uint64_t h)
{
    for (;;) {
        for (unsigned k = 0; k < MBOX; k++) {
            unsigned j = (unsigned)((h + k) % MBOX);
            struct ticket *none = NULL;
            if (!atomic_load_explicit(&mbox[j], memory_order_relaxed) &&
                atomic_compare_exchange_strong_explicit(&mbox[j], &none, t, memory_order_release,
                                                        memory_order_relaxed))
                return;
        }
        sched_yield(); /* full: the waker threads take tickets whatever happens */
    }
}

/* A new ticket for the waker threads, counted in its request. */
static void mbox_post(struct ticket *t, uint64_t h)
{
    atomic_fetch_add(&t->q->posted, 1);
    mbox_put(t, h);
}

/* ------------------------------------------------------ waker threads */

static void retire(struct ticket *t)
{
    /* The last touch of t and its request: the client frees them once
     * every posted ticket is retired. */
    atomic_fetch_add_explicit(&t->q->retired, 1, memory_order_release);
}

static bool ticket_ready(const struct ticket *t, uint64_t now)
{
    if (t->late != L_NO && t->done == 0) {
        const struct req *q = t->q;
        switch (t->late) {
        case L_DONE: return atomic_load_explicit(&q->done, memory_order_acquire);
        case L_IDLE: return atomic_load_explicit(&q->idle, memory_order_acquire);
        case L_FREED: return atomic_load_explicit(&q->freed, memory_order_acquire);
        default: return atomic_load_explicit(&g_destroyed, memory_order_acquire);
        }
    }
    return now >= t->due;
}

/* One wake (or the fd's write) of t: true when t is retired. */
static bool ticket_act(struct ticket *t, uint64_t now)
{
    struct req *q = t->q;
    if (t->type == TK_FD) {
        unsigned char c = t->byte;
        CHECK_EQ(write(pair_fd[t->pair][1], &c, 1), 1);
        atomic_fetch_add(&c_writes, 1);
        if (t->late)
            atomic_fetch_add(&c_late, 1);
        pair_put(t->pair);
        retire(t);
        return true;
    }
    /* What had happened before the wake. */
    int done = atomic_load_explicit(&q->done, memory_order_acquire);
    int idle = atomic_load_explicit(&q->idle, memory_order_acquire) ||
               atomic_load_explicit(&q->freed, memory_order_acquire);
    int destroying = q->destroy; /* its pool is to be destroyed */
    int destroyed = atomic_load_explicit(&g_destroyed, memory_order_acquire);
    uint64_t v = t->vbase + (uint64_t)t->done;
    int r = wsched_wake(t->handle, v);
    if (destroyed) {
        CHECK_EQ(r, -EBADF);
        atomic_fetch_add(&c_ebadf, 1);
    } else if (r != 0 && r != -EALREADY) {
        CHECK(destroying && (r == -ESHUTDOWN || r == -EBADF));
    }
    if (idle) /* every job has returned: its waits are over */
        CHECK(r != 0);
    if (r == 0) {
        atomic_fetch_add(&t->zeros, 1);
        atomic_store(&t->won, v);
        if (done) {
            atomic_store(&t->won_after_done, 1);
            atomic_fetch_add(&c_won_done, 1);
        }
        atomic_fetch_add(&c_won, 1);
    }
    if (t->late)
        atomic_fetch_add(&c_late, 1);
    if (++t->done < t->attempts) {
        t->due = now + t->delay2;
        return false;
    }
    retire(t);
    return true;
}

static void *waker_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    static struct ticket *lists[NWAKERS][LOCAL_CAP];
    struct ticket **list = lists[id];
    int n = 0;
    for (;;) {
        bool any = false, left = false;
        for (unsigned k = 0; k < MBOX; k++) {
            unsigned j = (k + id * (MBOX / NWAKERS)) % MBOX;
            if (!atomic_load_explicit(&mbox[j], memory_order_relaxed))
                continue;
            struct ticket *t = atomic_exchange_explicit(&mbox[j], NULL, memory_order_acquire);
            if (!t)
                continue;
            CHECK(n < LOCAL_CAP);
            t->due = wsched_now_ns() + t->delay;
            t->done = 0;
            list[n++] = t;
            any = true;
        }
        uint64_t now = wsched_now_ns(), next = now + 50000;
        for (int k = 0; k < n;) {
            struct ticket *t = list[k];
            if (!ticket_ready(t, now)) {
                if ((t->late == L_NO || t->done) && t->due < next)
                    next = t->due;
                k++;
                continue;
            }
            any = true;
            if (ticket_act(t, now))
                list[k] = list[--n];
            else
                k++;
        }
        if (!n && atomic_load(&g_stop)) {
            for (unsigned k = 0; k < MBOX; k++)
                left |= atomic_load(&mbox[k]) != NULL;
            if (!left)
                return NULL;
        }
        /* Nothing to do now: wait for the next due wake (the delays are
         * the workload; nothing waits for this thread to sleep). */
        now = wsched_now_ns();
        if (!any && next > now)
            common_sleep_ns(next - now);
    }
}

/* --------------------------------------------------------------- jobs */

static void enter(struct req *q)
{
    if (!q->max_parallel)
        return;
    int k = atomic_fetch_add(&q->inflight, 1) + 1;
    CHECK(k <= (int)q->max_parallel); /* jobs in flight, waiting ones included */
    int m = atomic_load(&q->inflight_max);
    while (k > m && !atomic_compare_exchange_weak(&q->inflight_max, &m, k))
        ;
}

static void leave(struct req *q)
{
    if (q->max_parallel)
        CHECK(atomic_fetch_sub(&q->inflight, 1) >= 1);
}

/* The call resumes the wait the previous call armed: does its kind fit? */
static void resumed(wsched_ctx *ctx, struct req *q, struct frame *f, int kind, uint64_t value,
                    uint64_t now)
{
    CHECK(kind == WSCHED_RESUME_TIMER || kind == WSCHED_RESUME_WOKEN || kind == WSCHED_RESUME_FD ||
          kind == WSCHED_RESUME_TIMEDOUT || kind == WSCHED_RESUME_CANCELLED);
    /* wsched.h: the value is the waker's (WOKEN) or the fd's bits (FD), 0
     * otherwise. (Known to fail for a cleanup call after a wake or an fd
     * event won the wait: -DWAKERS_RELAX_CANCELLED_VALUE tolerates that
     * one finding to look for others.) */
#ifdef WAKERS_RELAX_CANCELLED_VALUE
    if (kind != WSCHED_RESUME_WOKEN && kind != WSCHED_RESUME_FD && kind != WSCHED_RESUME_CANCELLED)
#else
    if (kind != WSCHED_RESUME_WOKEN && kind != WSCHED_RESUME_FD)
#endif
        CHECK_EQ(value, 0);
    switch (f->cur) {
    case W_SLEEP:
        CHECK(kind == WSCHED_RESUME_TIMER || kind == WSCHED_RESUME_CANCELLED);
        if (kind == WSCHED_RESUME_TIMER)
            CHECK(now >= f->when); /* never early */
        break;
    case W_WAKER:
        CHECK(kind == WSCHED_RESUME_WOKEN || kind == WSCHED_RESUME_TIMEDOUT ||
              kind == WSCHED_RESUME_CANCELLED);
        break;
    case W_FD:
        CHECK(kind == WSCHED_RESUME_FD || kind == WSCHED_RESUME_TIMEDOUT ||
              kind == WSCHED_RESUME_CANCELLED);
        break;
    default:
        CHECK(!"called again without a wait armed");
    }
    if (kind == WSCHED_RESUME_TIMEDOUT) {
        CHECK(f->when != 0); /* only a wait with a deadline times out */
        CHECK(now >= f->when);
        f->timedout++;
    }
    if (f->never) /* nothing but a cancellation could end it */
        CHECK_EQ(kind, WSCHED_RESUME_CANCELLED);
    if (kind == WSCHED_RESUME_CANCELLED && !q->destroy) {
        CHECK(q->cancellable);
        /* (Quorum freezes the slots before it sets the batch's cancel word.) */
        if (q->policy != WSCHED_POLICY_QUORUM)
            CHECK_EQ(wsched_cancelled(ctx), 1);
    }
    if (f->tki >= 0) {
        struct ticket *t = &q->tk[f->tki];
        t->res_kind = kind;
        t->res_value = value;
        if (kind == WSCHED_RESUME_WOKEN) /* one of this waker's wakes */
            CHECK(value >= t->vbase && value < t->vbase + 16);
        if (f->cur == W_FD) {
            if (kind == WSCHED_RESUME_FD) {
                CHECK(value != 0);
                CHECK_EQ(value & ~(uint64_t)f->events, 0); /* what was asked; no error here */
                if (value & WSCHED_FD_READ) {              /* the byte is there */
                    unsigned char c = 0;
                    CHECK_EQ(read(pair_fd[t->pair][0], &c, 1), 1);
                    CHECK_EQ(c, t->byte);
                }
            }
            pair_put(t->pair);
        }
    }
    f->cur = W_NONE;
    f->never = 0;
    f->when = 0;
    f->tki = -1;
}

/* A waker's or fd's deadline: none, one that may have passed already, or
 * one up to 0.5 ms on. */
static uint64_t wait_deadline(uint64_t h, uint64_t now)
{
    if (h % 2)
        return 0;
    return now + ((h >> 1) % 4 == 0 ? (h >> 4) % 20000 : (h >> 4) % 500001);
}

static int arm_sleep(wsched_ctx *ctx, const struct req *q, struct frame *f, uint64_t h,
                     uint64_t now, bool never)
{
    uint64_t when = never ? now + 30000000000ull : now + h % 300001;
    int r = wsched_sleep_until(ctx, when);
    if (r) {
        CHECK(r == -ESHUTDOWN && q->destroy);
        return r;
    }
    f->cur = W_SLEEP;
    f->when = when;
    f->never = never;
    return 0;
}

/* How a ticket is delivered: attempts (0: never) and when. */
static void delivery(const struct req *q, uint64_t h, int *attempts, int *late)
{
    unsigned d = (unsigned)(h % 24);
    *late = L_NO;
    *attempts = d < 10 ? 1 : d < 14 ? 2 : d < 16 ? 0 : 1 + (int)(d & 1);
    if (d >= 16 && d < 22)
        *late = d < 18 ? L_DONE : d < 20 ? L_IDLE : L_FREED;
    else if (d >= 22 && q->destroy)
        *late = L_DESTROYED;
}

static int arm_waker(wsched_ctx *ctx, struct req *q, struct frame *f, int tki, uint64_t h,
                     uint64_t now, bool never)
{
    struct ticket *t = &q->tk[tki];
    uint64_t dl = never ? 0 : wait_deadline(h >> 1, now);
    int attempts, late;
    delivery(q, h >> 20, &attempts, &late);
    bool self = !never && (h >> 32) % 10 == 0;
    if (never) {
        attempts = 1;
        late = L_DESTROYED; /* (the destroy phase): a wake after the destroy */
    }
    /* A wait that nothing but a cancellation ends needs one sure to come. */
    bool delivers = self || (attempts && late == L_NO);
    if (!delivers && !dl && !q->ends && !q->destroy)
        attempts = 1, late = L_NO;
    t->q = q;
    t->type = TK_WAKE;
    t->late = late;
    t->attempts = attempts;
    t->delay = (h >> 36) % 4 == 0 ? 0 : (uint32_t)((h >> 38) % 200001);
    t->delay2 = (uint32_t)((h >> 12) % 50001);
    t->vbase = atomic_fetch_add(&g_serial, 1) << 4;
    int r = wsched_waker_arm(ctx, dl, &t->handle);
    if (r) {
        CHECK(r == -ESHUTDOWN && q->destroy);
        CHECK(t->handle.pool == NULL); /* a handle that wakes nothing */
        return r;
    }
    CHECK(t->handle.pool != NULL);
    t->used = 1;
    f->cur = W_WAKER;
    f->when = dl;
    f->tki = tki;
    f->never = !dl && !self && (attempts == 0 || late != L_NO);
    if (self) { /* before we return: the resumption follows the return */
        int destroying = q->destroy; /* (-ESHUTDOWN: it has begun) */
        r = wsched_wake(t->handle, t->vbase + 7);
        if (!destroying && r == -EALREADY)
            /* a cancellation, fail-fast or the deadline reached the armed
             * wait first (C3 claims it even before the job returns) */
            CHECK(wsched_cancelled(ctx) == 1);
        else if (!destroying)
            CHECK_EQ(r, 0);
        else
            CHECK(r == 0 || r == -EALREADY || r == -ESHUTDOWN);
        if (r == 0) {
            atomic_fetch_add(&t->zeros, 1);
            atomic_store(&t->won, t->vbase + 7);
            atomic_fetch_add(&c_self, 1);
        }
        r = wsched_wake(t->handle, t->vbase + 8);
        CHECK(r == -EALREADY || (destroying && r == -ESHUTDOWN));
    }
    if (attempts)
        mbox_post(t, h);
    return 0;
}

static int arm_fd(wsched_ctx *ctx, struct req *q, struct frame *f, int tki, uint64_t h,
                  uint64_t now, bool never)
{
    int p = pair_get(h >> 50);
    if (p < 0) /* every pair in use: sleep instead */
        return arm_sleep(ctx, q, f, h, now, never);
    struct ticket *t = &q->tk[tki];
    unsigned ev = WSCHED_FD_READ;
    if (!never && (h >> 1) % 8 == 0)
        ev = WSCHED_FD_WRITE; /* ready at once */
    else if (!never && (h >> 1) % 8 == 1)
        ev = WSCHED_FD_READ | WSCHED_FD_WRITE;
    uint64_t dl = never ? 0 : wait_deadline(h >> 4, now);
    int attempts, late;
    delivery(q, h >> 24, &attempts, &late);
    attempts = attempts ? 1 : 0;
    if (never)
        attempts = 1, late = L_DESTROYED;
    bool delivers = (ev & WSCHED_FD_WRITE) || (attempts && late == L_NO);
    if (!delivers && !dl && !q->ends && !q->destroy)
        attempts = 1, late = L_NO;
    t->q = q;
    t->type = TK_FD;
    t->late = late;
    t->attempts = attempts;
    t->delay = (h >> 40) % 4 == 0 ? 0 : (uint32_t)((h >> 30) % 200001);
    t->pair = p;
    t->byte = (unsigned char)(h >> 56);
    int r = wsched_wait_fd(ctx, pair_fd[p][0], ev, dl);
    if (r) {
        CHECK(r == -ESHUTDOWN && q->destroy);
        pair_put(p);
        return r;
    }
    t->used = 1;
    f->cur = W_FD;
    f->events = ev;
    f->when = dl;
    f->tki = tki;
    f->never = !dl && !(ev & WSCHED_FD_WRITE) && (attempts == 0 || late != L_NO);
    if (attempts) {
        atomic_fetch_add(&pair_refs[p], 1); /* the writer's, while ours is held */
        mbox_post(t, h);
    }
    return 0;
}

/* A second wait in the same call: -EBUSY whatever its kind. */
static void check_busy(wsched_ctx *ctx)
{
    CHECK_EQ(wsched_sleep_until(ctx, wsched_now_ns()), -EBUSY);
    wsched_waker k;
    CHECK_EQ(wsched_waker_arm(ctx, 0, &k), -EBUSY);
    CHECK(k.pool == NULL);
    CHECK_EQ(wsched_wait_fd(ctx, pair_fd[0][0], WSCHED_FD_READ, 0), -EBUSY);
}

/* Arm the job's next wait: 0 when armed (return WSCHED_PENDING), else
 * the job finishes. */
static int next_wait(wsched_ctx *ctx, struct req *q, struct frame *f, size_t i, uint64_t now)
{
    if (f->nwaits >= f->planned)
        return 1;
    int w = f->nwaits;
    uint64_t h = mix(q->seed ^ ((uint64_t)(i * 8 + (size_t)w + 1) * 0x9E3779B97F4A7C15ull));
    bool never = q->destroy && w == 0 && (i == 0 || h % 2);
    unsigned type = (unsigned)((h >> 8) % 10);
    int tki = (int)i * MAXWAITS + w;
    int r = type < 3   ? arm_sleep(ctx, q, f, h >> 12, now, never)
            : type < 7 ? arm_waker(ctx, q, f, tki, h >> 4, now, never)
                       : arm_fd(ctx, q, f, tki, h >> 4, now, never);
    if (r) {
        f->shut = 1; /* the pool is being destroyed */
        return 1;
    }
    f->nwaits++;
    if (f->never)
        atomic_fetch_add(&q->pending_never, 1);
    if ((h >> 60) == 0)
        check_busy(ctx);
    if ((h >> 56) % 8 == 0) /* armed, still running: wakes, fds, cancels and
                               early completions come before our return */
        common_spin_ns((h >> 40) % 40000);
    return 0;
}

static int finish(struct req *q, struct frame *f, size_t i)
{
    f->finished = 1;
    f->result = f->shut                                       ? -ESHUTDOWN
                : (int)i == q->fail_index                     ? -EIO
                : !q->destroy && f->timedout && ((q->seed ^ i) >> 61) % 2 == 0 ? -ETIMEDOUT
                                                              : 0;
    leave(q);
    return f->result;
}

/* A job delivers another's ticket from inside the pool (a wake from a
 * worker, maybe of a job on this worker): the first one in the mailbox
 * from slot h on, at once (its delays skipped); a late one goes back. */
static void wake_from_job(uint64_t h)
{
    unsigned j = (unsigned)(h % MBOX);
    for (unsigned k = 0; k < 8; k++, j = (j + 1) % MBOX) {
        if (!atomic_load_explicit(&mbox[j], memory_order_relaxed))
            continue;
        struct ticket *t = atomic_exchange_explicit(&mbox[j], NULL, memory_order_acquire);
        if (!t)
            continue;
        t->done = 0;
        if (t->late != L_NO) {
            mbox_put(t, h);
            return;
        }
        atomic_fetch_add(&c_in_job, 1);
        while (!ticket_act(t, wsched_now_ns()))
            ;
        return;
    }
}

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct req *q = arg;
    struct frame *f = slot;
    CHECK_EQ(atomic_fetch_add(&f->inside, 1), 0); /* one call at a time */
    int kind = wsched_resume_kind(ctx);
    uint64_t value = wsched_resume_value(ctx);
    uint64_t now = wsched_now_ns();
    CHECK(kind >= WSCHED_RESUME_FIRST && kind <= WSCHED_RESUME_TIMEDOUT);
    atomic_fetch_add_explicit(&c_kind[kind], 1, memory_order_relaxed);
    CHECK(f->calls <= MAXWAITS);
    uint64_t hj = mix(q->seed ^ now ^ i);
    if (hj % 4 == 0)
        wake_from_job(hj >> 2);
    if (f->calls == 0) {
        CHECK_EQ(kind, WSCHED_RESUME_FIRST);
        CHECK_EQ(value, 0);
        f->planned = (int)(mix(q->seed + i * 0x51ull + 7) % (MAXWAITS + 1));
        if (q->destroy && i == 0 && !f->planned)
            f->planned = 1;
        f->tki = -1;
        enter(q);
    } else {
        CHECK(kind != WSCHED_RESUME_FIRST);
        CHECK(!f->finished && !f->cleanups); /* nothing after the end */
        resumed(ctx, q, f, kind, value, now);
    }
    f->kinds[f->calls++] = kind;
    int ret;
    if (kind == WSCHED_RESUME_CANCELLED) {
        f->cleanups++;
        leave(q);
        ret = 777; /* ignored */
    } else if (next_wait(ctx, q, f, i, now) == 0) {
        ret = WSCHED_PENDING;
    } else {
        ret = finish(q, f, i);
    }
    atomic_fetch_sub(&f->inside, 1);
    return ret;
}

/* ------------------------------------------------------------ batches */

static struct req *make_req(wsched_pool *pool, uint64_t s, int destroy)
{
    struct req *q = calloc(1, sizeof *q);
    CHECK(q);
    q->pool = pool;
    q->seed = s;
    q->destroy = destroy;
    q->n = destroy ? 4 + s % 21 : 1 + s % MAXJOBS;
    q->fail_index = !destroy && (s >> 8) % 3 == 0 ? (int)((s >> 12) % q->n) : -1;
    q->tk = calloc(q->n * MAXWAITS, sizeof *q->tk);
    CHECK(q->tk);
    return q;
}

static wsched_batch *submit(struct req *q, size_t quorum)
{
    wsched_batch_desc d = {.fn = job, .arg = q, .njobs = q->n,
                           .slot_size = sizeof(struct frame), .flags = WSCHED_BATCH_WAITS,
                           .policy = q->policy, .quorum = quorum, .deadline_ns = q->deadline,
                           .max_parallel = q->max_parallel};
    wsched_batch *b = NULL;
    CHECK_OK(wsched_submit(q->pool, &d, &b));
    return b;
}

static void check_batch(wsched_batch *b, struct req *q, size_t quorum, int user_cancel)
{
    size_t n = q->n;
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK(o.end != WSCHED_END_RUNNING);
    CHECK_EQ(o.unfinished, 0);
    CHECK_EQ(o.ok + o.failed + o.cancelled + o.timed_out, n);
    bool arbitrated = q->policy == WSCHED_POLICY_QUORUM || q->deadline;
    size_t ok = 0, failed = 0, cancelled = 0, timed_out = 0, lowest_failed = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        struct frame *f = wsched_batch_slot(b, i);
        int st = check_status(b, i);
        CHECK_EQ(atomic_load(&f->inside), 0);
        CHECK(f->cleanups <= 1);
        CHECK(!(f->finished && f->cleanups)); /* one end per job */
        if (f->calls) { /* started: one call per wait armed, then the end */
            CHECK(f->finished || f->cleanups);
            CHECK_EQ(f->calls, 1 + f->nwaits);
            CHECK(f->nwaits <= f->planned);
            CHECK_EQ(f->cur, W_NONE);
        }
        if (st == WSCHED_ECANCELLED || st == WSCHED_EDEADLINE) {
            /* Not its own result: it did not finish uncancelled, or (an
             * arbitrated batch) a freeze decided the slot first. */
            CHECK(!f->finished || arbitrated);
            if (st == WSCHED_EDEADLINE)
                CHECK(q->deadline);
            else
                CHECK(q->cancellable);
            /* Destroy cancels pending waits, never unstarted jobs (fail-fast
             * does, after a job's -ESHUTDOWN). */
            if (q->destroy && q->policy == WSCHED_POLICY_BEST_EFFORT)
                CHECK(f->cleanups);
            cancelled += st == WSCHED_ECANCELLED;
            timed_out += st == WSCHED_EDEADLINE;
        } else {
            CHECK(f->finished); /* its own result, exactly */
            CHECK_EQ(st, f->result);
            if (st == 0) {
                ok++;
            } else {
                failed++;
                if (lowest_failed == SIZE_MAX)
                    lowest_failed = i;
            }
        }
    }
    CHECK_EQ(o.ok, ok);
    CHECK_EQ(o.failed, failed);
    CHECK_EQ(o.cancelled, cancelled);
    CHECK_EQ(o.timed_out, timed_out);
    if (failed)
        CHECK(o.first_error != 0);
    if (o.first_error) {
        CHECK(o.first_error_index < n);
        CHECK_EQ(check_status(b, o.first_error_index), o.first_error);
        if (q->policy == WSCHED_POLICY_BEST_EFFORT)
            CHECK_EQ(o.first_error_index, lowest_failed);
    } else {
        CHECK_EQ(o.first_error_index, SIZE_MAX);
    }
    if (q->max_parallel) {
        CHECK_EQ(atomic_load(&q->inflight), 0);
        CHECK(atomic_load(&q->inflight_max) <= (int)q->max_parallel);
        if (atomic_load(&q->inflight_max) == (int)q->max_parallel)
            atomic_fetch_add(&c_mp_full, 1);
    }
    atomic_fetch_add(&c_end[o.end & 7], 1);
    atomic_fetch_add(&c_batches, 1);
    if (q->destroy)
        return; /* (its end is not the destroy's business) */
    switch (o.end) {
    case WSCHED_END_COMPLETED:
        CHECK_EQ(o.cancelled + o.timed_out, 0);
        break;
    case WSCHED_END_FAILED:
        CHECK_EQ(q->policy, WSCHED_POLICY_FAIL_FAST);
        CHECK(o.first_error != 0);
        break;
    case WSCHED_END_QUORUM_REACHED:
        CHECK_EQ(q->policy, WSCHED_POLICY_QUORUM);
        CHECK(o.ok >= quorum);
        break;
    case WSCHED_END_QUORUM_IMPOSSIBLE:
        CHECK_EQ(q->policy, WSCHED_POLICY_QUORUM);
        CHECK(o.failed >= n - quorum + 1);
        break;
    case WSCHED_END_DEADLINE:
        CHECK(q->deadline);
        break;
    case WSCHED_END_CANCELLED:
        CHECK(user_cancel);
        break;
    default:
        CHECK(!"unknown end");
    }
    if (q->policy == WSCHED_POLICY_BEST_EFFORT && !q->deadline && !user_cancel)
        CHECK_EQ(o.end, WSCHED_END_COMPLETED);
}

/* The batch is freed: once the waker threads are done with its tickets,
 * the wakes are checked against the resumptions. */
static void release(wsched_batch *b, struct req *q)
{
    wsched_batch_free(b);
    atomic_store_explicit(&q->freed, 1, memory_order_release);
    int destroyed = atomic_load(&g_destroyed);
    while (atomic_load_explicit(&q->retired, memory_order_acquire) != atomic_load(&q->posted))
        sched_yield();
    for (size_t k = 0; k < q->n * MAXWAITS; k++) {
        struct ticket *t = &q->tk[k];
        if (!t->used)
            continue;
        int z = atomic_load(&t->zeros);
        CHECK(z <= 1); /* one wake per arming returned 0 */
        switch (t->res_kind) {
        case WSCHED_RESUME_WOKEN:
            CHECK_EQ(t->type, TK_WAKE);
            CHECK_EQ(z, 1);
            CHECK_EQ(t->res_value, atomic_load(&t->won)); /* the wake that won */
            break;
        case WSCHED_RESUME_FD:
            CHECK_EQ(t->type, TK_FD);
            break;
        case WSCHED_RESUME_TIMEDOUT:
            CHECK_EQ(z, 0);
            break;
        case WSCHED_RESUME_CANCELLED:
            break;
        default:
            CHECK(!"an armed wait without its resumption");
        }
        /* A wake that won once the batch was complete (quorum, deadline):
         * the slot was decided; the job only cleaned up. */
        if (atomic_load(&t->won_after_done))
            CHECK_EQ(t->res_kind, WSCHED_RESUME_CANCELLED);
        if (t->type == TK_WAKE) /* the batch is gone, the handle still safe */
            CHECK_EQ(wsched_wake(t->handle, 1), destroyed ? -EBADF : -EALREADY);
    }
    free(q->tk);
    free(q);
}

struct client {
    pthread_t t;
    wsched_pool *pool;
    uint64_t seed;
    long rounds;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (long r = 0; r < c->rounds; r++) {
        uint64_t s = mix(c->seed + (uint64_t)r * 0x9E3779B97F4A7C15ull);
        struct req *q = make_req(c->pool, s, 0);
        q->policy = (unsigned)((s >> 16) % 3);
        size_t quorum = q->policy == WSCHED_POLICY_QUORUM ? 1 + (s >> 20) % q->n : 0;
        if ((s >> 26) % 4 == 0) /* 0-0.1 ms (fires while jobs wait) or 0-1 ms */
            q->deadline = wsched_now_ns() + ((s >> 28) % 2 ? (s >> 29) % 100000
                                                          : (s >> 29) % 1000000);
        if ((s >> 40) % 3 == 0)
            q->max_parallel = 1 + (s >> 42) % 4;
        unsigned cmode = (unsigned)((s >> 44) % 8);
        uint64_t when = (s >> 48) % 300000;
        int user_cancel = cmode <= 3;
        q->ends = q->deadline || cmode <= 2;
        q->cancellable = q->ends || user_cancel || q->policy != WSCHED_POLICY_BEST_EFFORT;
        wsched_batch *b = submit(q, quorum);
        if (cmode == 0) { /* at a random moment */
            common_sleep_ns(when);
            CHECK_OK(wsched_cancel(b));
        } else if (cmode == 1) {
            CHECK_OK(wsched_cancel(b));
        } else if (cmode == 2) { /* while we wait, if it is still running */
            int w = wsched_wait(b, (int64_t)when);
            CHECK(w == 0 || w == -ETIMEDOUT);
            CHECK_OK(wsched_cancel(b));
        }
        CHECK_OK(wsched_wait(b, -1));
        atomic_store_explicit(&q->done, 1, memory_order_release);
        if (cmode == 3) /* too late: first reason wins, or it completed */
            CHECK_OK(wsched_cancel(b));
        CHECK_OK(wsched_wait_idle(b, -1)); /* every call has returned */
        atomic_store_explicit(&q->idle, 1, memory_order_release);
        check_batch(b, q, quorum, user_cancel);
        release(b, q);
    }
    return NULL;
}

/* The pool is destroyed with waits pending that only a cancellation ends
 * (a waker nobody wakes before the destroy, an fd nobody writes to, a
 * 30 s sleep): they end cancelled, nothing hangs; what jobs arm while it
 * drains fails with -ESHUTDOWN; wakes after it return -EBADF. */
static void destroy_phase(wsched_pool *pool, uint64_t seed)
{
    enum { NB = 4 };
    struct req *qs[NB];
    wsched_batch *bs[NB];
    for (int k = 0; k < NB; k++) {
        qs[k] = make_req(pool, mix(seed + (uint64_t)k), 1);
        qs[k]->policy = k == 2 ? WSCHED_POLICY_FAIL_FAST : WSCHED_POLICY_BEST_EFFORT;
        qs[k]->max_parallel = k == 1 ? 2 : 0;
        qs[k]->cancellable = 1;
        bs[k] = submit(qs[k], 0);
        if (k < NB - 1) /* the last one races the destroy */
            while (atomic_load(&qs[k]->pending_never) < 1)
                sched_yield();
    }
    CHECK_OK(wsched_pool_destroy(pool));
    atomic_store_explicit(&g_destroyed, 1, memory_order_release);
    wsched_batch_desc d = {.fn = job, .njobs = 1, .flags = WSCHED_BATCH_WAITS};
    wsched_batch *late = NULL;
    CHECK_EQ(wsched_submit(pool, &d, &late), -EBADF);
    for (int k = 0; k < NB; k++) {
        CHECK_OK(wsched_wait(bs[k], 0)); /* accepted work ran to completion */
        CHECK_OK(wsched_wait_idle(bs[k], 0));
        atomic_store_explicit(&qs[k]->done, 1, memory_order_release);
        atomic_store_explicit(&qs[k]->idle, 1, memory_order_release);
        check_batch(bs[k], qs[k], 0, 0);
        /* Each wait only a cancellation ends ended so (checked in the job),
         * with a cleanup call; there was one at least before the destroy. */
        int cleanups = 0, never = atomic_load(&qs[k]->pending_never);
        for (size_t i = 0; i < qs[k]->n; i++)
            cleanups += ((struct frame *)wsched_batch_slot(bs[k], i))->cleanups;
        CHECK(cleanups >= never);
        CHECK(k == NB - 1 || never >= 1);
        release(bs[k], qs[k]);
    }
}

/* Rounds for this build: the test mostly waits (sleeps, the waker
 * threads' delays, futexes and epoll), so sanitizers slow it down far less
 * than check_slow() says (TSan about 2x, ASan 1.5x): a quarter of it. */
static long rounds_scaled(long n)
{
    long k = check_slow() / 4;
    return k > 1 ? n / k : n;
}

int main(void)
{
    check_watchdog(120);
    long seedv = 0;
    const char *se = getenv("WSCHED_SEED");
    uint64_t seed = se && common_parse_long(se, 0, 0x7fffffffffffffffl, &seedv) == 0
                        ? (uint64_t)seedv
                        : wsched_now_ns() % 1000000007u;
    printf("test_wakers_stress: seed %llu (WSCHED_SEED)\n", (unsigned long long)seed);
    fflush(stdout);
    for (int k = 0; k < NPAIRS; k++)
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair_fd[k]), 0);
    pthread_t wakers[NWAKERS];
    for (int k = 0; k < NWAKERS; k++)
        CHECK_EQ(pthread_create(&wakers[k], NULL, waker_main, (void *)(uintptr_t)k), 0);
    /* 2 workers, then 3 (more than the CPUs of a small machine: preempted
     * workers), then 1 (every resumption on the arming worker). */
    static const unsigned workers[] = {2, 3, 1};
    static const long rounds[] = {4000, 3000, 1500};
    long total = 0;
    for (int phase = 0; phase < 3; phase++) {
        atomic_store(&g_destroyed, 0);
        wsched_pool *pool = check_pool(workers[phase]);
        struct client cl[CLIENTS];
        for (int k = 0; k < CLIENTS; k++) {
            cl[k] = (struct client){.pool = pool, .seed = mix(seed * 31 + (uint64_t)phase * 7 + (uint64_t)k),
                                    .rounds = rounds_scaled(rounds[phase])};
            total += cl[k].rounds;
            CHECK_EQ(pthread_create(&cl[k].t, NULL, client_main, &cl[k]), 0);
        }
        for (int k = 0; k < CLIENTS; k++)
            pthread_join(cl[k].t, NULL);
        destroy_phase(pool, mix(seed + 1000 + (uint64_t)phase));
        printf("  %u worker(s): %d clients x %ld batches, then destroy with waits pending: ok\n",
               workers[phase], CLIENTS, rounds_scaled(rounds[phase]));
        fflush(stdout);
    }
    atomic_store(&g_stop, 1);
    for (int k = 0; k < NWAKERS; k++)
        pthread_join(wakers[k], NULL);
    for (int k = 0; k < NPAIRS; k++) {
        CHECK_EQ(atomic_load(&pair_refs[k]), 0); /* every holder let go */
        close(pair_fd[k][0]);
        close(pair_fd[k][1]);
    }
    printf("  calls: first %ld, timer %ld, woken %ld, fd %ld, timedout %ld, cancelled %ld\n",
           c_kind[WSCHED_RESUME_FIRST], c_kind[WSCHED_RESUME_TIMER], c_kind[WSCHED_RESUME_WOKEN],
           c_kind[WSCHED_RESUME_FD], c_kind[WSCHED_RESUME_TIMEDOUT],
           c_kind[WSCHED_RESUME_CANCELLED]);
    printf("  wakes won %ld (+%ld by the job itself; %ld after wsched_wait returned), from "
           "jobs %ld, late wakes/writes %ld, fd writes %ld, -EBADF after destroy %ld\n",
           c_won, c_self, c_won_done, c_in_job, c_late, c_writes, c_ebadf);
    printf("  ends: completed %ld, failed %ld, quorum %ld/%ld, deadline %ld, cancelled %ld; "
           "max_parallel reached %ld\n",
           c_end[WSCHED_END_COMPLETED], c_end[WSCHED_END_FAILED], c_end[WSCHED_END_QUORUM_REACHED],
           c_end[WSCHED_END_QUORUM_IMPOSSIBLE], c_end[WSCHED_END_DEADLINE],
           c_end[WSCHED_END_CANCELLED], c_mp_full);
    /* Every kind of completion came up (hundreds of batches). */
    CHECK(c_kind[WSCHED_RESUME_TIMER] && c_kind[WSCHED_RESUME_WOKEN] && c_kind[WSCHED_RESUME_FD] &&
          c_kind[WSCHED_RESUME_TIMEDOUT] && c_kind[WSCHED_RESUME_CANCELLED] && c_won && c_ebadf);
    printf("test_wakers_stress: %ld batches: ok\n", total + 3 * 4);
    return 0;
}
