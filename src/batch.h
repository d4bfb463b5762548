/*
 * Batch internals shared by the modules that implement batches:
 *   job.c       the per-job path (ranges, lanes, splitting), policies and
 *               cancellation, completion, results and accessors
 *   submit.c    wsched_submit: validation, layout, admission, placement
 *   wait.c      waits outside and inside the pool, the completion stream's
 *               consumer
 *   forkjoin.c  wsched_spawn / wsched_sync
 * The struct definitions are in internal.h; this header holds what these
 * files call in one another, and the inline helpers of the hot paths.
 */
#ifndef WSCHED_BATCH_H
#define WSCHED_BATCH_H

#include <stdint.h>

#include "debug.h"
#include "internal.h"

/* Bit 31 of a batch's ring_word: the stream's consumer sleeps (job.c
 * stream_push, wait.c wsched_next_done); bits 0-30 count pushes, so a
 * streamed batch has fewer than this many jobs (submit.c). */
#define RING_WAITER 0x80000000u

/* job.c: policies and cancellation. */
WSCHED_INTERNAL void wsched__cancel_set(struct wsched_batch *b, uint32_t reason);
WSCHED_INTERNAL void wsched__signal_done(struct wsched_batch *b);
WSCHED_INTERNAL void wsched__freeze(struct wsched_batch *b, int32_t code);

/* wait.c: one step of an in-job wait (run a task or back off). */
WSCHED_INTERNAL void wsched__help_once(struct worker *w, unsigned *idle,
                                       struct wsched_batch *awaited);

/* forkjoin.c: join the children still outstanding. */
WSCHED_INTERNAL void wsched__ctx_sync_slow(wsched_ctx *c);

/* After the job or task returned. Its frame is gone: children whose arg
 * pointed into it would read dead stack (wsched.h, wsched_spawn), which
 * WSCHED_DEBUG builds catch here. */
static inline void ctx_implicit_sync(wsched_ctx *c)
{
#ifdef WSCHED_DEBUG
    if (c->stack_args && c->spawned != c->joined_inline + ld(&c->joined_stolen, ACQ))
        wsched__debug_fail("a job or task returned without wsched_sync while children it "
                           "spawned with an arg on its own stack had not been joined",
                           __FILE__, __LINE__);
    c->stack_args = 0;
#endif
    if (unlikely(c->spawned != c->joined_inline))
        wsched__ctx_sync_slow(c);
}


#endif
