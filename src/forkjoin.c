/* Fork-join: wsched_spawn, wsched_sync and the join of stolen children. */
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
    wsched_ctx c = {.w = w, .batch = parent->batch};
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

int wsched_spawn(wsched_ctx *c, wsched_task_fn fn, void *arg)
{
    if (!c || !fn)
        return -EINVAL;
    struct task t = spawn_task(run_spawned, fn, arg, c);
    bool was_empty;
    if (unlikely(deque_push_owner(&c->w->dq, &t, &was_empty) != 0)) {
        /* Deque cannot grow: run the child now; it is joined already. */
        wsched_ctx child = {.w = c->w, .batch = c->batch};
        fn(&child, arg);
        ctx_implicit_sync(&child);
        return 0;
    }
    c->spawned++;
#ifdef WSCHED_DEBUG
    /* The job's own frames lie between ours and its ctx (which lives in
     * the frame of the runner that called it): an arg there dies when the
     * job returns. */
    char *here = __builtin_frame_address(0);
    if ((char *)arg > here && (char *)arg < (char *)c)
        c->stack_args++;
#endif
    pushed(c->w, was_empty);
    return 0;
}

void wsched__ctx_sync_slow(wsched_ctx *c)
{
    struct worker *w = c->w;
    unsigned backoff = 0;
    /* ACQUIRE on joined_stolen: a stolen child's writes (its results) are
     * visible once it is counted. */
    while (c->joined_inline + ld(&c->joined_stolen, ACQ) != c->spawned) {
        wsched__help_once(w, &backoff, NULL, NULL, 0); /* pops our own children back first */
        if (backoff >= HELP_NAP_AFTER && c->joined_inline + ld(&c->joined_stolen, ACQ) != c->spawned)
            sync_nap(w, c); /* S1 */
    }
    c->spawned = c->joined_inline = 0;
    st(&c->joined_stolen, 0, RLX);
}

int wsched_sync(wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    /* Fast path: pop our own children back, newest first, and call them
     * directly. A popped record that is not our child (only possible once
     * ours were all stolen) is run like any other task. */
    struct worker *w = c->w;
    while (c->spawned != c->joined_inline + ld(&c->joined_stolen, RLX)) {
        struct task t;
        if (!deque_pop_owner(&w->dq, &t))
            break; /* the rest was stolen: wait for it below */
        if (likely(t.run == run_spawned && spawn_parent(&t) == c)) {
            wsched_ctx child = {.w = w, .batch = c->batch};
            spawn_fn(&t)(&child, spawn_arg(&t));
            ctx_implicit_sync(&child);
            STAT_ADD(w, tasks, 1);
            c->joined_inline++;
        } else {
            run_task(w, &t, false);
        }
    }
#ifdef WSCHED_DEBUG
    c->stack_args = 0; /* joined below: their args may die now */
#endif
    if (c->spawned == c->joined_inline) {
        c->spawned = c->joined_inline = 0; /* none stolen: nothing to reset */
        return 0;
    }
    wsched__ctx_sync_slow(c);
    return 0;
}

int wsched_ctx_worker(const wsched_ctx *c) { return c ? (int)c->w->index : -EINVAL; }

int wsched_current_worker(void)
{
    return wsched__self ? (int)wsched__self->index : -ESRCH;
}
