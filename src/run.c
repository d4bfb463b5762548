/*
 * The per-job hot path: ranges split lazily, lanes (max_parallel),
 * wsched_blocking. Policies: policy.c; completion and results: batch.c;
 * submission, waits, fork-join: submit.c, wait.c, forkjoin.c (batch.h).
 *
 * A batch travels as one task {wsched__run_range, batch, lo, hi}. The worker
 * running a range executes jobs from the low end; before each job, if its
 * own deque is empty (nobody has anything to steal from it) and more than
 * one job is left, it pushes the upper half back as a new range task.
 * Without thieves this costs O(log N) pushes per batch; every steal creates
 * one more split. Each executed range subtracts its job count from
 * `remaining` once: no cache line shared by the batch is written per job,
 * and job i writes only slot i and status i.
 *
 * Slot visibility and the waiter's wake-up: completion.h (B1-B4).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"

/* Immutable batch fields, read once per range or lane: the job call is
 * opaque to the compiler, which would otherwise reload them every job. */
struct batch_view {
    wsched_job_fn fn;
    void *arg;
    char *slots;
    size_t stride;
    _Atomic int32_t *status;
    bool slow, streamed, fail_fast; /* slow: arbitrated, or jobs that wait */
};

static inline struct batch_view view_of(struct wsched_batch *b)
{
    return (struct batch_view){b->fn, b->arg, b->slots, b->stride, b->status,
                               b->arbitrate || b->waits, b->ring != NULL,
                               b->policy == WSCHED_POLICY_FAIL_FAST};
}

/* A job of a batch without arbitration reached its final status: store
 * it (published by the B2 of the range, or of the resumption, that counts
 * it), its stream entry and, when `account`, fail-fast's first error.
 * run_one's hot path does the same from its cached batch_view. */
static inline void finish_plain(struct wsched_batch *b, size_t i, int32_t code, bool account)
{
    DEBUG_ASSERT(ld(&b->status[i], RLX) == WSCHED_ENOTRUN);
    st(&b->status[i], code, RLX);
    if (b->ring)
        stream_push(b, i);
    if (account && code != 0 && b->policy == WSCHED_POLICY_FAIL_FAST) {
        wsched__note_first_error(b, i, code);
        wsched__cancel_set(b, CANCEL_FAILFAST);
    }
}

/* Job i of a batch that is arbitrated or has jobs that wait. True when
 * the job is now pending (it keeps its unit of `remaining`). */
static __attribute__((noinline)) bool run_one_slow(wsched_ctx *ctx, struct wsched_batch *b,
                                                   size_t i)
{
    if (b->arbitrate)
        return wsched__run_arbitrated(ctx, b, i);
    uint32_t reason = ld(&b->cancel, RLX);
    if (reason) {
        finish_plain(b, i, cancel_status(reason), false);
        return false;
    }
    int r;
    bool pending = call_job_waiting(ctx, b, i, false, WSCHED_RESUME_FIRST, 0, &r);
    if (!pending)
        finish_plain(b, i, job_status(r), true);
    /* T1 at a job's end inside a range: timers this job armed become
     * visible to idle workers before the next job, however long it runs. */
    struct worker *w = ctx->w;
    if (unlikely(w->late || (w->wheel_held && w->wheel.armed)))
        wsched__wheel_boundary(w);
    return pending;
}

/* Run (or skip, if cancelled) job i: its one final status, its stream
 * entry, its policy bookkeeping. True when it went pending. */
static inline __attribute__((always_inline)) bool
run_one(wsched_ctx *ctx, struct wsched_batch *b, const struct batch_view *v, size_t i)
{
    PROBE2(job_start, b, i);
    if (unlikely(v->slow))
        return run_one_slow(ctx, b, i);
    /* Cancelled (by the user or fail-fast): skip, marked. Relaxed: a job
     * racing the cancel may still start; that is inherent. */
    uint32_t reason = ld(&b->cancel, RLX);
    if (unlikely(reason)) {
        DEBUG_ASSERT(ld(&v->status[i], RLX) == WSCHED_ENOTRUN);
        st(&v->status[i], cancel_status(reason), RLX);
        if (v->streamed)
            stream_push(b, i);
        return false;
    }
    int r = v->fn(ctx, v->arg, i, v->slots ? v->slots + i * v->stride : NULL);
    ctx_implicit_sync(ctx);
    /* Relaxed: published by the range's release in range_done. One final
     * status per job, set once: nothing else decides a slot of a batch
     * without arbitration. */
    DEBUG_ASSERT(ld(&v->status[i], RLX) == WSCHED_ENOTRUN);
    st(&v->status[i], job_status(r), RLX);
    if (unlikely(v->streamed))
        stream_push(b, i);
    if (unlikely(r != 0) && v->fail_fast) {
        wsched__note_first_error(b, i, job_status(r));
        wsched__cancel_set(b, CANCEL_FAILFAST);
    }
    PROBE3(job_end, b, i, r);
    return false;
}


static void run_lane(struct worker *w, const struct task *t, bool stolen);

/* A batch with a parallelism limit M runs as min(M, N) lanes; each lane
 * claims the next index with one atomic add per job (the cost of the
 * feature, paid only when used) until none is left. At most M jobs of the
 * batch therefore run at once, and a job held back by the limit is simply
 * an index not yet claimed: no worker ever waits for a permit. */
static void start_lanes(struct worker *w, struct wsched_batch *b)
{
    size_t lanes = b->max_parallel < b->n ? b->max_parallel : b->n;
    /* Every lane holds the batch: one extra unit of `remaining` each, so a
     * lane that starts after the others took every index still finds the
     * batch alive. Relaxed: we hold a range of n, remaining cannot reach
     * zero before our own lane ends. */
    fadd(&b->remaining, lanes, RLX);
    size_t started = 1;
    for (; started < lanes; started++) {
        struct task lane = range_task(run_lane, b, 0, 0);
        bool was_empty;
        if (deque_push_owner(&w->dq, &lane, &was_empty) != 0)
            break; /* fewer lanes: still correct, less parallel */
        pushed(w, was_empty);
    }
    if (started < lanes)
        fsub(&b->remaining, lanes - started, RLX); /* cannot reach zero */
    struct task self = range_task(run_lane, b, 0, 0);
    run_lane(w, &self, false);
}

/* A lane's loop: claim the next index and run it, until none is left
 * (the lane's own unit of `remaining` goes with its last jobs, B2) or a
 * job goes pending (WSCHED_BATCH_WAITS): the lane then waits with it,
 * keeping its unit, and goes on when that job completes (run_resume). So
 * max_parallel bounds the jobs in flight, waiting ones included: an
 * I/O-bound batch has at most that many calls out at once (wsched.h). */
static void lane_loop(struct worker *w, struct wsched_batch *b)
{
    struct batch_view v = view_of(b);
    wsched_ctx ctx = {CTX_INIT(w, b)};
    size_t count = 0, i;
    bool pending = false;
    while (!pending && (i = fadd(&b->next, 1, RLX)) < b->n) {
        pending = run_one(&ctx, b, &v, i);
        count += !pending;
    }
    STAT_ADD(w, jobs, count);
    if (count && b->holds_admission)
        wsched__admit_release(b->pool, count);
    /* Its jobs, and the lane's own unit when it ends (B2); a suspended
     * lane and its pending job still hold theirs: not zero. */
    size_t units = count + !pending;
    if (units && completion_range_done(&b->remaining, units))
        wsched__batch_complete(b);
}

static void run_lane(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    lane_loop(w, range_batch(t));
}


int wsched_blocking(wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    /* Split everything after the running job r->i into stealable ranges
     * (a spawned task or a lane holds none privately), move the private
     * children to the deque, then make sure
     * someone is awake to take them and whatever this job spawned: a full
     * notify, with the fence that a push's own check leaves out (pushed(),
     * internal.h). */
    struct range_state *r = c->range;
    while (r && r->hi - r->i > 1)
        if (!split_upper(c->w, c->batch, r))
            break;
    fj_share(c->w); /* the private children too (forkjoin.c) */
    wsched__notify(c->w->pool, -1);
    return 0;
}

/*
 * A batch with waits and a deadline: its deadline on a wheel, so that it
 * takes effect even when no job of the batch runs and nobody waits with a
 * timeout (jobs pending on wakers; a parent in wsched_wait_batch).
 *  (D1) the first range to start (any worker: the inbox took it there, or a
 *       thief) claims the arming, dl_state NONE -> ARMED (CAS), takes a
 *       reference on the batch for the timer and files it on its wheel.
 *  (D2) the timer fires (owner, thief or in-job wait): dl_state ARMED ->
 *       DONE (CAS); the winner ends the batch as a waiter at the deadline
 *       would (wait.c) and drops the timer's reference.
 *  (D3) the batch completes first (batch.c): a message (the record itself,
 *       with a reference of its own) goes to the owner's ready queue, which
 *       unlinks the timer (owner only, T3) and then, winning the same CAS,
 *       drops the timer's reference; then the message's. One of D2 and D3
 *       wins; the record stays in the batch until both references are gone.
 */
static __attribute__((noinline)) void deadline_arm(struct worker *w, struct wsched_batch *b)
{
    uint32_t none = DL_NONE;
    if (ld(&b->dl_state, RLX) != DL_NONE || !cas(&b->dl_state, &none, DL_ARMED, RLX))
        return; /* D1: armed already */
    fadd(&b->refs, 1, RLX); /* the timer's; we run a range: the runtime's is held */
    b->dl->owner = (uint16_t)w->index;
    wsched__timer_arm(w, b->dl, b->deadline);
}

void wsched__run_range(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    struct wsched_batch *b = range_batch(t);
    if (unlikely(b->dl != NULL))
        deadline_arm(w, b);
    if (unlikely(b->max_parallel)) {
        start_lanes(w, b); /* the whole batch arrives as one range */
        return;
    }
    if (unlikely(b->range_fn)) {
        wsched__run_chunks(w, b, t); /* range.c */
        return;
    }
    struct range_state r = {range_lo(t), range_hi(t), range_hi(t) - range_lo(t)};
    struct batch_view v = view_of(b);
    wsched_ctx ctx = {CTX_INIT(w, b), .range = &r};

    /* When the range starts with a worker idle, split it all the way down
     * to the first job: every other job is then stealable, so a job that
     * blocks holds back none of its siblings. */
    bool idle = r.hi - r.i > 1 && pool_has_idle(w->pool);
    size_t pending = 0;
    for (; r.i < r.hi; r.i++) {
        /* Lazy split: while our deque is empty (nothing for thieves), hand
         * the upper half back as a stealable range. */
        if (unlikely(r.hi - r.i > 1 && (idle || deque_empty_hint(&w->dq))))
            while (split_upper(w, b, &r) && r.hi - r.i > 1 &&
                   (idle || deque_empty_hint(&w->dq)))
                ;
        idle = false;
        pending += run_one(&ctx, b, &v, r.i); /* may shrink r.hi: wsched_blocking */
    }
    /* A pending job keeps its unit of `remaining` (and of admission): its
     * resumption gives it back when the job completes. */
    range_done(w, b, r.count - pending);
}

/* A job whose wait fired (or, for its cleanup call, whose batch was
 * cancelled meanwhile), called again: then its final status, its stream
 * entry and policy bookkeeping, and its unit back as a range of one. The
 * status is published by that unit's B2, or (arbitrated) by the CAS. */
void wsched__run_resume(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    struct wsched_batch *b = range_batch(t);
    size_t i = range_lo(t);
    wsched_ctx ctx = {CTX_INIT(w, b)};
    uint32_t reason = ld(&b->cancel, RLX);
    bool cancelled = reason != CANCEL_NONE && reason != CANCEL_CLOSED;
    bool hedge = resume_hedge(t);
    struct job_wait *jw = hedge ? &b->hwaits[i] : &b->waits[i];
    unsigned kind = jw->kind; /* a batch wait; else what the cell says */
    uint64_t value = 0;
    if (kind != WSCHED_RESUME_BATCH) {
        static const uint8_t kinds[] = {
            [CELL_TIMER] = WSCHED_RESUME_TIMER,       [CELL_WOKEN] = WSCHED_RESUME_WOKEN,
            [CELL_FD] = WSCHED_RESUME_FD,             [CELL_TIMEDOUT] = WSCHED_RESUME_TIMEDOUT,
            [CELL_CANCELLED] = WSCHED_RESUME_CANCELLED, [CELL_ATIMEOUT] = RESUME_ATIMEOUT,
        };
        unsigned res = wsched__wait_take(w, jw, &value);
        DEBUG_ASSERT(res >= CELL_TIMER && res <= CELL_ATIMEOUT);
        kind = kinds[res];
        /* Cancelled with the batch not: the pool's destroy (waitq.c), or
         * the attempt lost a hedged round (resilient.c H3), which is no
         * cancellation of the job. */
        if (res == CELL_CANCELLED && !cancelled && !ld(&jw->lost, SC)) {
            cancelled = true;
            reason = CANCEL_USER;
        }
    }
    /* A breaker's trial runs to its outcome whatever its batch does (its
     * waits were not cancelled either: resilient.c); a frozen slot drops
     * the result, the breaker still learns it. The pool's destroy still
     * cancels it (the cell says CANCELLED). */
    bool shielded = kind != WSCHED_RESUME_CANCELLED && shielded_from(b, i, reason);
    int r = 0; /* (a cleanup call has no wait result, whatever won: value 0) */
    if (shielded) {
        if (call_job_waiting(&ctx, b, i, hedge, kind, value, &r))
            return;
        if (b->arbitrate)
            wsched__arbitrated_publish(b, i, job_status(r), true);
        else
            finish_plain(b, i, job_status(r), true);
    } else if (b->arbitrate) {
        if (!cancelled && b->deadline && wsched_now_ns() >= b->deadline) {
            wsched__cancel_set(b, CANCEL_DEADLINE);
            reason = ld(&b->cancel, RLX);
            cancelled = true;
        }
        /* A slot frozen meanwhile (quorum decided, deadline) is decided: the
         * job only cleans up. */
        if (ld(&b->status[i], RLX) != STATUS_RUNNING)
            cancelled = true;
        if (call_job_waiting(&ctx, b, i, hedge, cancelled ? WSCHED_RESUME_CANCELLED : kind,
                             cancelled ? 0 : value, &r))
            return; /* pending again */
        wsched__arbitrated_publish(b, i, cancelled ? cancel_status(reason) : job_status(r),
                                   !cancelled);
    } else {
        if (call_job_waiting(&ctx, b, i, hedge, cancelled ? WSCHED_RESUME_CANCELLED : kind,
                             cancelled ? 0 : value, &r))
            return;
        finish_plain(b, i, cancelled ? cancel_status(reason) : job_status(r), !cancelled);
    }
    if (b->max_parallel) {
        /* The job's unit, then its lane goes on (lane_loop): the lane's
         * unit keeps `remaining` above zero meanwhile. */
        STAT_ADD(w, jobs, 1);
        if (b->holds_admission)
            wsched__admit_release(b->pool, 1);
        bool zero = completion_range_done(&b->remaining, 1);
        DEBUG_ASSERT(!zero);
        (void)zero;
        lane_loop(w, b);
        return;
    }
    range_done(w, b, 1);
}

/* The checks every wait shares: a job with a wait record, none armed by
 * this call, a pool not being destroyed (its sweep would miss us). */
static int wait_check(wsched_ctx *c)
{
    if (!c || !c->wait)
        return -EINVAL;
    if (c->wait->armed)
        return -EBUSY;
    if (ld(&c->w->pool->handle->state, RLX) != POOL_ALIVE)
        return -ESHUTDOWN;
    return 0;
}

#define arm_timer wsched__timer_arm /* waitq.c: the wheel, or T3's late list */

/* Arm the wait's timer for its own time (a sleep's; a deadline, 0 =
 * none), or for its attempt's cut when that comes first (a downstream's
 * attempt_timeout_ns, downstream.h): the timer then fires as the cut
 * (waitq.c timer_result). The flag is set after the arm, which clears
 * the flags: nobody fires the timer before this call of the job returns
 * (a wheel held by its owner is not fired by others, and a free one is
 * not armed into: T3's late list is the owner's). */
static void arm_wait_timer(wsched_ctx *c, uint64_t when_ns, bool sleep)
{
    uint64_t cut = ds_attempt_cut(c);
    if (unlikely(cut != 0) && ((!sleep && !when_ns) || cut < when_ns)) {
        arm_timer(c->w, c->wait, cut);
        c->wait->tflags |= JW_ATTEMPT;
    } else if (sleep || when_ns) {
        arm_timer(c->w, c->wait, when_ns);
    }
}

int wsched_sleep_until(wsched_ctx *c, uint64_t when_ns)
{
    int r = wait_check(c);
    if (r == 0 && (r = wsched__wait_arm(c->w, c->wait, WSCHED_RESUME_TIMER, 0, NULL)) == 0)
        arm_wait_timer(c, when_ns, true);
    return r;
}

int wsched_waker_arm(wsched_ctx *c, uint64_t deadline_ns, wsched_waker *out)
{
    if (out)
        *out = (wsched_waker){NULL, 0};
    int r = out ? wait_check(c) : -EINVAL;
    uint64_t id;
    if (r == 0 && (r = wsched__wait_arm(c->w, c->wait, WSCHED_RESUME_WOKEN, 0, &id)) == 0) {
        arm_wait_timer(c, deadline_ns, false);
        *out = (wsched_waker){c->w->pool->handle, id};
    }
    return r;
}

int wsched_wake(wsched_waker k, uint64_t value)
{
    if (!k.pool)
        return -EINVAL;
    /* From a worker of this pool (a callback run by a job, say), the pool
     * is alive: destroy joins its workers only after the drain. */
    struct worker *self = wsched__self;
    if (self && self->pool->handle == k.pool)
        return wsched__wake_cell(self->pool, k.id, value);
    /* H1: the pool (its table of cells) stays alive while we use it. */
    int r = wsched__pool_enter(k.pool);
    if (r)
        return r;
    r = wsched__wake_cell(k.pool->p, k.id, value);
    wsched__pool_leave(k.pool, 2);
    return r;
}

int wsched_wait_fd(wsched_ctx *c, int fd, unsigned events, uint64_t deadline_ns)
{
    int r = wait_check(c);
    if (r)
        return r;
    if (fd < 0 || (events & ~(WSCHED_FD_READ | WSCHED_FD_WRITE)) ||
        !(events & (WSCHED_FD_READ | WSCHED_FD_WRITE)))
        return -EINVAL;
    if ((r = wsched__fd_register(c->w, c->wait, fd, events)) != 0)
        return r;
    if ((r = wsched__wait_arm(c->w, c->wait, WSCHED_RESUME_FD, (uint64_t)fd, NULL)) != 0) {
        wsched__fd_unregister_raw(c->w, fd);
        return r;
    }
    arm_wait_timer(c, deadline_ns, false);
    return 0;
}

uint64_t wsched_resume_value(const wsched_ctx *c)
{
    return c ? c->value : 0;
}

/*
 * A wait on a nested batch: two parties, the parent job's return and the
 * child's completion, and whichever comes second schedules the parent's
 * resumption (a join of 2). Both run on workers (the child's last range
 * ends on one), so the resumption is an owner push either way.
 *  (J1) arm: join = 2 (or 1, if the child is done already), then CAS the
 *       child's waiter NULL -> us (ACQ_REL); WAITER_DONE there means the
 *       child completed first: its J3 will not count, so join is 1.
 *  (J2) the parent returned WSCHED_PENDING: join -= 1 (ACQ_REL); 0 means
 *       the child's J3 came first: schedule now.
 *  (J3) the child's completion (batch.c): exchange waiter -> WAITER_DONE
 *       (ACQ_REL); a parent found: join -= 1; 0 means J2 came first.
 * The release sequence on join carries the child's slots (acquired by its
 * B2) and the parent's frame to whoever schedules, and the deque push
 * (P1) carries them on to the worker that resumes the parent.
 */
int wsched_wait_batch(wsched_ctx *c, wsched_batch *child)
{
    if (!c || !c->wait || !child || child->pool != c->w->pool || child == c->batch)
        return -EINVAL;
    struct job_wait *jw = c->wait;
    if (jw->armed)
        return -EBUSY;
    st(&jw->join, 2, RLX); /* published by the CAS below */
    jw->child = child;
    struct job_wait *none = NULL;
    if (!cas_f(&child->waiter, &none, jw, AR, ACQ)) { /* J1 */
        if (none != WAITER_DONE)
            return -EBUSY; /* another job waits for it */
        st(&jw->join, 1, RLX); /* done already: only our J2 is left */
    }
    jw->kind = WSCHED_RESUME_BATCH;
    jw->armed = 1;
    return 0;
}

int wsched_resume_kind(const wsched_ctx *c)
{
    return c ? (int)c->resume : -EINVAL;
}
