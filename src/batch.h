/*
 * Batch internals shared by the modules that implement batches:
 *   run.c       the per-job hot path: ranges split lazily, lanes,
 *               wsched_blocking
 *   policy.c    cancellation, fail-fast, quorum and deadline arbitration
 *   batch.c     completion, the reference count, results and accessors
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
#include "futex.h"
#include "downstream.h"
#include "internal.h"
#include "waitq.h"

/* Bit 31 of a batch's ring_word: the stream's consumer sleeps (batch.h
 * stream_push, wait.c wsched_next_done); bits 0-30 count pushes, so a
 * streamed batch has fewer than this many jobs (submit.c). */
#define RING_WAITER 0x80000000u

/* policy.c: publish an arbitrated job's final status (CAS from RUNNING; a
 * frozen slot keeps its decision), with the policy's bookkeeping when
 * `account`. */
WSCHED_INTERNAL void wsched__arbitrated_publish(struct wsched_batch *b, size_t i, int32_t code,
                                                bool account);

/* policy.c: policies and cancellation. */
WSCHED_INTERNAL void wsched__cancel_set(struct wsched_batch *b, uint32_t reason);
WSCHED_INTERNAL void wsched__signal_done(struct wsched_batch *b);
WSCHED_INTERNAL void wsched__freeze(struct wsched_batch *b, int32_t code);
WSCHED_INTERNAL void wsched__note_first_error(struct wsched_batch *b, size_t i, int32_t code);
WSCHED_INTERNAL bool wsched__run_arbitrated(wsched_ctx *ctx, struct wsched_batch *b, size_t i);

/* batch.c: drop a reference (the last frees the batch). */
WSCHED_INTERNAL void wsched__batch_unref(struct wsched_batch *b);
/* batch.c: every job has returned (the last range ends). */
WSCHED_INTERNAL void wsched__batch_complete(struct wsched_batch *b);
/* batch.c: set a wait word (done, returned) and wake its sleepers. */
WSCHED_INTERNAL void wsched__word_signal(_Atomic uint32_t *word);

/* A job's return value as its slot status (reserved codes folded). */
static inline int32_t job_status(int r)
{
    if (unlikely(r <= WSCHED_ERRBASE && r >= WSCHED_ERRBASE - 64) && r != WSCHED_EEXCEPTION &&
        r != WSCHED_EBREAKER && r != WSCHED_ELIMITED)
        return WSCHED_EJOBCODE;
    return r;
}

static inline int32_t cancel_status(uint32_t reason)
{
    return reason == CANCEL_DEADLINE ? WSCHED_EDEADLINE : WSCHED_ECANCELLED;
}

/*
 * The completion stream (WSCHED_BATCH_STREAM): producers are whoever
 * decides a job's final status, the one consumer is wsched_next_done
 * (wait.c). Labels:
 *  (W1) producer: a unique position by fetch_add on ring_tail (relaxed: a
 *       counter), then ring[pos] = i + 1 with RELEASE, after the slot and
 *       status (the consumer's ACQUIRE load of the entry sees them).
 *  (W2) producer: ring_word += 1 (an RMW, seq_cst); if it read RING_WAITER,
 *       clear the bit and wake all sleepers on the word.
 *  (W3) consumer: set RING_WAITER (an RMW, seq_cst), re-read its next entry
 *       (ACQUIRE), and only then futex-wait for the word to change from
 *       what its RMW left.
 * No lost wake-up: W2 and W3 are RMWs of one word, so one precedes the
 * other in its modification order. W3 first: W2 reads the bit and wakes
 * (or changes the word before the consumer sleeps, and the futex wait
 * returns at once). W2 first: W3 reads W2's value or a later one, so it
 * synchronizes with W2 (both release and acquire) and W1's entry happens
 * before the re-read. A stale clear (W2 of an earlier sleep clearing the
 * bit of a later one) also changes the word, which only makes the futex
 * wait return and the consumer announce itself again. Tests: tests/unit/
 * test_stream, tests/regress/test_stream_deadline, the soak's streamed
 * batches.
 */

/* Append job i to the completion stream, if the batch has one. Called once
 * per job, by whoever decided its final status, after storing it. */
static inline void stream_push(struct wsched_batch *b, size_t i)
{
    if (likely(!b->ring))
        return;
    size_t pos = fadd(&b->ring_tail, 1, RLX); /* W1: a unique position */
    /* W1 RELEASE: slot and status before the entry (consumer's ACQUIRE). */
    st(&b->ring[pos], i + 1, REL);
    /* W2: the RMW after the store pairs with the consumer's W3 RMW. */
    uint32_t old = fadd(&b->ring_word, 1, SC);
    if (old & RING_WAITER) {
        fand(&b->ring_word, ~RING_WAITER, RLX);
        futex_wake_all(&b->ring_word);
    }
}

/* forkjoin.c: join the children still outstanding: those on the deque
 * that were stolen (_slow), or all of them, private ones first (_all, the
 * whole of wsched_sync). */
WSCHED_INTERNAL void wsched__ctx_sync_slow(wsched_ctx *c);
WSCHED_INTERNAL void wsched__ctx_sync_all(wsched_ctx *c);

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
    /* Children outstanding, private or on the deque: one test of the two
     * counts (the rare ctx whose deque children were all joined by others
     * without a sync of its own takes the call, which resets it). */
    if (unlikely((c->priv | c->spawned) != 0))
        wsched__ctx_sync_all(c);
}


/* Call job i of a WSCHED_BATCH_WAITS batch: its first call or a resumption
 * of kind `kind` (enum wsched_resume) with `value`. True when it is now
 * pending: it armed a wait and returned WSCHED_PENDING (or a completion of
 * a wait it then did not wait for came first: waitq.c). Else *ret is its
 * return value, and a wait it armed is dropped (its timer and fd are on
 * this worker: the job armed them in this call). */
static inline bool call_job_frame(wsched_ctx *ctx, struct wsched_batch *b, size_t i,
                                  struct job_wait *jw, void *slot, unsigned kind,
                                  uint64_t value, int *ret)
{
    ctx->wait = jw;
    ctx->resume = kind;
    ctx->value = value;
    jw->armed = 0;
    int r = b->fn(ctx, b->arg, i, slot);
    ctx_implicit_sync(ctx);
    ctx->wait = NULL;
    ctx->resume = WSCHED_RESUME_FIRST;
    ctx->value = 0;
    if (jw->armed) {
        if (r == WSCHED_PENDING && kind != WSCHED_RESUME_CANCELLED) {
            /* J2: our side of a batch wait; the child's completion (J3) is
             * the other. ACQ_REL: the last one sees both sides' writes. */
            if (jw->kind != WSCHED_RESUME_BATCH)
                wsched__wait_pending(ctx->w, jw); /* J2' (waitq.c) */
            else if (fsub(&jw->join, 1, AR) == 1)
                schedule_resume(ctx->w, jw);
            return true;
        }
        if (jw->kind != WSCHED_RESUME_BATCH) {
            if (!wsched__wait_drop(ctx->w, jw))
                return true;
        } else {
            /* A batch wait armed and then not waited for: detach it. The
             * CAS fails only when the child already completed (J3 saw us
             * and took its 1 of the join), and then nobody schedules. */
            struct job_wait *us = jw;
            cas(&jw->child->waiter, &us, NULL, AR);
        }
        jw->armed = 0;
    }
    *ret = r;
    return false;
}

/* Job i in its own record and slot. */
static inline bool call_job_attempt(wsched_ctx *ctx, struct wsched_batch *b, size_t i,
                                    unsigned kind, uint64_t value, int *ret)
{
    return call_job_frame(ctx, b, i, &b->waits[i], b->slots ? b->slots + i * b->stride : NULL,
                          kind, value, ret);
}

/* The same, through the batch's downstream policies when it has one
 * (resilient.c): *ret is then the job's final status, or a policy's
 * (WSCHED_EBREAKER, WSCHED_ELIMITED), and a retry is a pending job.
 * `hedge`: the call is for job i's hedge record (b->hwaits[i]). */
static inline bool call_job_waiting(wsched_ctx *ctx, struct wsched_batch *b, size_t i,
                                    bool hedge, unsigned kind, uint64_t value, int *ret)
{
    if (unlikely(b->ds != NULL))
        return wsched__ds_call(ctx, b, i, hedge, kind, value, ret);
    return call_job_attempt(ctx, b, i, kind, value, ret);
}

/* run.c and range.c: a range's end, and its lazy split. */
/* A range or lane finished `count` jobs: counters, admission units, and
 * the batch's completion. */
static inline void range_done(struct worker *w, struct wsched_batch *b, size_t count)
{
    /* Every job of the range went pending: their resumptions give their
     * units back, and may already have completed the batch (and freed it)
     * on other workers. Touch nothing: a subtraction of 0 from a batch at
     * 0 would complete it a second time. */
    if (!count)
        return;
    STAT_ADD(w, jobs, count);
    if (b->holds_admission)
        wsched__admit_release(b->pool, count);
    if (completion_range_done(&b->remaining, count)) /* B2 */
        wsched__batch_complete(b);
}

/* Hand the upper half of the private part (r->i, r->hi) back as a
 * stealable range. False if the deque could not take it. */
static __attribute__((noinline, unused)) bool split_upper(struct worker *w, struct wsched_batch *b,
                                                  struct range_state *r)
{
    size_t mid = r->i + (r->hi - r->i + 1) / 2;
    struct task half = range_task(b->start_fn, b, mid, r->hi); /* wsched__run_range */
    bool was_empty;
    if (deque_push_owner(&w->dq, &half, &was_empty) != 0)
        return false;
    r->count -= r->hi - mid;
    r->hi = mid;
    pushed(w, was_empty);
    return true;
}

/* range.c: a range of a batch of range jobs (wsched_range_fn). */
WSCHED_INTERNAL void wsched__run_chunks(struct worker *w, struct wsched_batch *b,
                                        const struct task *t);

#endif
