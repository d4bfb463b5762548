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

static void run_spawned(struct worker *w, const struct task *t, bool stolen)
{
    wsched_ctx *parent = spawn_parent(t);
    wsched_ctx c = {.w = w, .batch = parent->batch};
    spawn_fn(t)(&c, spawn_arg(t));
    ctx_implicit_sync(&c);
    STAT_ADD(w, tasks, 1);
    if (stolen)
        fadd(&parent->joined_stolen, 1, REL); /* pairs with sync's ACQUIRE */
    else
        parent->joined_inline++; /* popped => parent is on this stack */
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
    while (c->joined_inline + ld(&c->joined_stolen, ACQ) != c->spawned)
        wsched__help_once(w, &backoff, NULL, NULL, 0); /* pops our own children back first */
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
