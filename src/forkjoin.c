/* Fork-join: wsched_spawn, wsched_sync, the private stack of wsched.h's
 * inline path and the join of stolen children. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"

/*
 * A sync whose children were stolen and still run naps instead of
 * spinning (after the in-job wait's backoff):
 *  (S1) the syncing worker stores its sync_nap = 1 (SEQ_CST), reads
 *       nap_word, then re-reads the joined count (SEQ_CST) and, short,
 *       futex-waits on nap_word (1 ms at most: wsched__nap_until).
 *  (S2) a thief that ran a child reads the parent's worker before counting
 *       it (the parent may return, and its ctx die, right after), counts it
 *       (SEQ_CST RMW), then reads that worker's sync_nap (SEQ_CST): set,
 *       it bumps nap_word and wakes it. Store then load on both sides: the
 *       sync sees the count or the thief sees the flag. The worker struct
 *       outlives every ctx; a stale flag costs a spurious wake.
 */
static void run_spawned(struct worker *w, const struct task *t, bool stolen)
{
    wsched_ctx *parent = spawn_parent(t);
    wsched_ctx c = {CTX_INIT(w, parent->batch)};
    spawn_fn(t)(&c, spawn_arg(t));
    ctx_implicit_sync(&c);
    STAT_ADD(w, tasks, 1);
    if (stolen) {
        struct worker *pw = parent->w; /* S2: before the count */
        fadd(&parent->joined_stolen, 1, SC); /* S2; RELEASE pairs with sync's ACQUIRE */
        if (unlikely(ld(&pw->sync_nap, SC))) { /* S2 */
            fadd(&pw->nap_word, 1, REL);
            futex_wake(&pw->nap_word, 1);
        }
    } else {
        parent->joined_inline++; /* popped => parent is on this stack */
    }
}

static void sync_nap(struct worker *w, wsched_ctx *c)
{
    st(&w->sync_nap, 1, SC); /* S1 */
    uint32_t v = ld(&w->nap_word, ACQ);
    if (c->joined_inline + ld(&c->joined_stolen, SC) != c->spawned) { /* S1 */
        struct timespec ts;
        futex_wait(&w->nap_word, v, abs_deadline(wsched__nap_until(w, 0), &ts));
    }
    st(&w->sync_nap, 0, RLX);
}

/*
 * The private stack (struct wsched__fjq, wsched.h). wsched.h's inline
 * spawn pushes a child there, with plain stores, when the worker's deque
 * already holds something to steal; its inline sync pops the newest back.
 * Only the owning worker ever touches the stack: no atomics, no fence, no
 * protocol with the thieves. It departs from Lace's split deque there:
 * Lace lets thieves ask for the private part (a flag the owner polls at
 * each spawn); here the owner gives it up by itself, whenever a thief
 * could otherwise find nothing on this worker:
 *  - a spawn that finds the deque empty goes to the deque (wsched_spawn)
 *    and first moves the private children there;
 *  - an inline sync that finds the deque empty with more private children
 *    left moves them before it runs the one it popped;
 *  - wsched_blocking, any in-job wait (wait.c) and a sync that waits for
 *    stolen children move them first.
 * Invariant: a ctx's private children are the newest priv entries of the
 * stack (a child run inline joins its own before it returns, the implicit
 * sync included; a move takes entries from the bottom). The move pushes
 * each entry, oldest first, as an ordinary spawned record (run_spawned,
 * the deque's own P1/P2), and counts it from its parent's priv into its
 * spawned; the deque's emptiness is read with relaxed loads, a hint: a
 * stale one leaves a child private until the next spawn or sync, which
 * is the bound the cheap wake of pushed() already has. A pool of one
 * worker has no thief: its stack's indices read "non-empty" for good.
 */
static const int64_t solo_top = 0, solo_bottom = 1;

void wsched__fjq_init(struct worker *w)
{
    w->fjq.slot = w->fje;
#ifdef WSCHED_DEBUG
    w->fjq.cap = 0; /* every spawn through wsched_spawn, for its checks */
#else
    w->fjq.cap = FJQ_CAP;
#endif
    /* The deque's indices as the inline path reads them (relaxed loads of
     * the same objects: an _Atomic int64_t is an int64_t in memory). */
    w->fjq.top = w->dq.solo ? &solo_top : (const int64_t *)(const void *)&w->dq.top;
    w->fjq.bottom = w->dq.solo ? &solo_bottom : (const int64_t *)(const void *)&w->dq.bottom;
}

void wsched__fj_share_worker(struct worker *w)
{
    struct wsched__fjq *q = &w->fjq;
    uint32_t n = q->head, i = 0;
    bool first_empty = deque_empty_hint(&w->dq);
    for (; i < n; i++) {
        struct wsched__fje *e = &q->slot[i];
        wsched_ctx *parent = e->ctx;
        struct task t = spawn_task(run_spawned, e->fn, e->arg, parent);
        bool was_empty;
        if (deque_push_owner(&w->dq, &t, &was_empty) != 0)
            break; /* cannot grow: the rest stays private */
        parent->priv--;
        parent->spawned++;
    }
    if (i && i < n)
        memmove(q->slot, q->slot + i, (n - i) * sizeof q->slot[0]);
    q->head = n - i;
    if (i)
        pushed(w, first_empty);
}

void wsched__fj_share(wsched_ctx *c)
{
    if (c)
        fj_share(c->w);
}

/* The deque is full and could not grow: run the child now; it is joined
 * already. Out of line, as the wake below, so that the hot path of
 * wsched_spawn needs no stack frame beyond the frame pointer's. */
static __attribute__((noinline, cold)) int spawn_inline(wsched_ctx *c, wsched_task_fn fn,
                                                        void *arg)
{
    wsched_ctx child = {CTX_INIT(c->w, c->batch)};
    fn(&child, arg);
    ctx_implicit_sync(&child);
    return 0;
}

static __attribute__((noinline)) void spawn_pushed(struct worker *w, bool was_empty)
{
    pushed(w, was_empty);
}

int wsched_spawn(wsched_ctx *c, wsched_task_fn fn, void *arg)
{
    if (unlikely(!c || !fn))
        return -EINVAL;
    struct worker *w = c->w;
    struct deque *d = &w->dq;
    /* The inline spawn sends a child here when the deque is empty: the
     * private children, older, go first, so thieves get the oldest. */
    fj_share(w);
    struct task t = spawn_task(run_spawned, fn, arg, c);
    bool was_empty;
    if (unlikely(deque_push_owner(d, &t, &was_empty) != 0))
        return spawn_inline(c, fn, arg);
    c->spawned++;
#ifdef WSCHED_DEBUG
    /* The job's own frames lie between ours and its ctx (which lives in
     * the frame of the runner that called it): an arg there dies when the
     * job returns. */
    char *here = __builtin_frame_address(0);
    if ((char *)arg > here && (char *)arg < (char *)c)
        c->stack_args++;
#endif
    /* A pool of one worker has nobody to wake (pushed's loads are for
     * thieves). Else the common case, a non-empty deque with no worker
     * parked, costs one load of the parked mask's first word inline. */
    if (!d->solo && (was_empty || ld(&w->pool->parked[0], RLX) != 0 || w->pool->nmask > 1))
        spawn_pushed(w, was_empty);
    return 0;
}

void wsched__ctx_sync_slow(wsched_ctx *c)
{
    struct worker *w = c->w;
    unsigned backoff = 0;
    /* ACQUIRE on joined_stolen: a stolen child's writes (its results) are
     * visible once it is counted. */
    while (c->joined_inline + ld(&c->joined_stolen, ACQ) != c->spawned) {
        fj_share(w); /* an ancestor's private children, for thieves and for us */
        wsched__help_once(w, &backoff, NULL, NULL, 0); /* pops our own children back first */
        if (backoff >= HELP_NAP_AFTER && c->joined_inline + ld(&c->joined_stolen, ACQ) != c->spawned)
            sync_nap(w, c); /* S1 */
    }
    c->spawned = c->joined_inline = 0;
    st(&c->joined_stolen, 0, RLX);
}

/* Out of line and by value, so that wsched_sync keeps the popped record in
 * registers instead of on its stack. */
static __attribute__((noinline)) void run_other(struct worker *w, task_run_fn run, uintptr_t a,
                                                uintptr_t b, uintptr_t tc)
{
    struct task t = {run, a, b, tc};
    run_task(w, &t, false);
}

void wsched__ctx_sync_all(wsched_ctx *c)
{
    struct worker *w = c->w;
    unsigned ran = 0; /* for the stats, once per sync */
    /* Our private children first: the newest c->priv entries (see the
     * invariant above), by wsched.h's own loop (a debug build has none:
     * its stack's capacity is 0). */
    wsched__sync_private(c);
    /* Then those on the deque: pop them back, newest first, and call them
     * directly. A popped record that is not our child (only possible once
     * ours were all stolen) is run like any other task. */
    /* c->joined_inline is re-read, never cached: a child we run may pop and
     * run our other children itself (its own sync or an in-job wait reaches
     * below its children), counting them there (run_spawned). */
    while (c->spawned != c->joined_inline + ld(&c->joined_stolen, RLX)) {
        struct task t;
        if (!deque_pop_owner(&w->dq, &t))
            break; /* the rest was stolen: wait for it below */
        if (likely(t.run == run_spawned && spawn_parent(&t) == c)) {
            wsched_ctx child = {CTX_INIT(w, c->batch)};
            spawn_fn(&t)(&child, spawn_arg(&t));
            ctx_implicit_sync(&child);
            ran++;
            c->joined_inline++;
        } else {
            run_other(w, t.run, t.a, t.b, t.c);
        }
    }
    STAT_ADD(w, tasks, ran);
#ifdef WSCHED_DEBUG
    c->stack_args = 0; /* joined below: their args may die now */
#endif
    if (likely(c->spawned == c->joined_inline)) {
        c->spawned = c->joined_inline = 0; /* none stolen: nothing to reset */
        return;
    }
    wsched__ctx_sync_slow(c);
}

int wsched_sync(wsched_ctx *c)
{
    if (unlikely(!c))
        return -EINVAL;
    wsched__ctx_sync_all(c);
    return 0;
}

int wsched_ctx_worker(const wsched_ctx *c) { return c ? (int)c->w->index : -EINVAL; }

int wsched_current_worker(void)
{
    return wsched__self ? (int)wsched__self->index : -ESRCH;
}
