/*
 * Per-worker inboxes: batches submitted from outside the pool wait here
 * until a worker starts them. One inbox per priority class per worker; a
 * liburcu wfcqueue used as multi-producer / single-consumer, the consumer
 * role held through `token` (taken with a CAS that never waits: on failure
 * a worker simply looks elsewhere).
 *
 * Protocol (labels used at the sites, in idle.c's parking re-scan and in
 * tests/model/park.pml):
 *  (I1) push: `pending` is incremented (SEQ_CST RMW) BEFORE the node is
 *       linked. So pending >= nodes linked and not yet taken, always:
 *       pending never dips below zero, and a batch linked is always counted.
 *       (It was incremented after linking once: a consumer that took that
 *       node first drove pending to 0 while another producer's node sat in
 *       the queue, hiding it from idle workers until the first producer ran
 *       again: issue 7, defect 6.) While a producer is between I1 and I2,
 *       idle workers see work they cannot take yet and keep looking instead
 *       of parking: they spin for that window, they never sleep past work.
 *  (I2) push: link the node (cds_wfcq_enqueue: wait-free), then notify
 *       (idle.c): its loads of `searching`/`parked` follow I1's SEQ_CST RMW,
 *       the publish half of the parking Dekker pair (idle.c, top).
 *  (I3) take: token CAS ACQUIRE ... token store RELEASE: consecutive
 *       consumers' uses of the queue head are ordered. A dequeue that finds
 *       nothing (or WOULDBLOCK: a producer between the two stores of its
 *       enqueue) takes nothing; then `pending` is decremented, relaxed: it
 *       only ever overstates what is linked (a stale positive keeps a worker
 *       looking; it never hides a batch).
 *  (I5) run of posts: a take from the worker loop that starts a posted
 *       job (kind INBOX_JOB) also dequeues, under the same token, the posted
 *       jobs that follow it, up to INBOX_RUN_MAX (a batch or an unfinished
 *       link ends the run), and pushes them onto the taker's deque (P1's
 *       release store publishes each task; they stay stealable there), then
 *       decrements `pending` once for all, after the pushes: it still only
 *       overstates. A take whose first node is a batch takes that batch
 *       alone. The run never passes the start that looks for background
 *       first (every job counts as a start), and never grows the deque.
 *       One token CAS, one `pending` RMW and one read of the producers'
 *       line for the run instead of one each per job. The caller then
 *       notifies as a producer does (N1 fence, N2: worker.c took_run):
 *       the moved jobs were published in an inbox, where every parker's
 *       re-scan saw them, and the first job of the run may wait for the
 *       others or run long, so a worker that parks while they move must
 *       be woken for them (stop 22 had a relaxed check here, which can
 *       miss a parker whose re-scan missed the pushes).
 *  (I4) the batch record is handed over through the queue, whose atomics
 *       are inline asm TSan cannot see: tsan_release before I2, tsan_acquire
 *       after I3.
 * Residual windows, by design of the queue: a producer preempted between
 * the two stores inside cds_wfcq_enqueue (an exchange of the tail, then the
 * link) holds back the nodes queued behind its own in that inbox until it
 * runs again, and a consumer preempted while holding the token holds back
 * that inbox; both windows are a few instructions with no call inside, and
 * other inboxes and deques are unaffected.
 *
 * Priority, pool-wide: a worker's every 8th batch start looks for
 * background first, the others for interactive first, in its own inbox
 * and then in every other worker's, before it starts a batch of the other
 * class (wsched.h: interactive first; background at least 1 in 8 of the
 * starts while both wait).
 */
#ifndef WSCHED_INBOX_H
#define WSCHED_INBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "atomics.h"
#include "rcu.h"

#define WSCHED_NPRIO 2
/* I5: posted jobs a take moves onto the taker's deque beside the one it
 * starts, at most. */
#define INBOX_RUN_MAX 6

/* Internal symbols carry the library's prefix (a static archive exports
 * every global to the program it is linked into). */
#define inbox_init wsched__inbox_init
#define inbox_push wsched__inbox_push
#define inbox_take_local wsched__inbox_take_local
#define inbox_take_any wsched__inbox_take_any
#define inbox_visible_sc wsched__inbox_visible_sc
#define inbox_queued wsched__inbox_queued

struct inbox {
    cacheline_aligned struct __cds_wfcq_head head;
    _Atomic(uint32_t) token;
    /* Producers' line: the queue tail, and the count of I1. */
    cacheline_aligned struct cds_wfcq_tail tail;
    _Atomic(int64_t) pending;
};

struct worker;
struct task;
struct wsched_batch;

/* What an inbox holds: a batch (struct wsched_batch) or a posted job
 * (struct job_rec, post.c), each with this link; `kind` says which, so a
 * take knows what to make of the node. Written by the producer before I2
 * (published with the node, I4). */
enum { INBOX_BATCH = 1, INBOX_JOB = 2 };
struct inbox_link {
    struct cds_wfcq_node node;
    uint32_t kind;
};

void inbox_init(struct inbox *q);

/* Push `l` (a batch's or a job's link, kind set) onto worker w's inbox of
 * class `prio`. The caller then notifies an idle worker
 * (wsched__notify_after_sc: I1's RMW orders the push). */
void inbox_push(struct worker *w, unsigned prio, struct inbox_link *l);

/* Start a batch from `me`'s own inbox, unless a batch of a class that
 * comes first for this start waits in another worker's inbox (then that
 * one). For the worker loop's local step (`run`: with a run of posts, I5)
 * and for waits that may start new work (no run). */
bool inbox_take_local(struct worker *me, struct task *t, bool run);

/* Start a batch from any worker's inbox, class by class, from a random
 * start: for searching (after the deques). Returns the index of the worker
 * whose inbox it came from, or -1. */
int inbox_take_any(struct worker *me, unsigned start, struct task *t, bool run);

/* Parking re-scan: does w hold a counted batch? SEQ_CST loads of I1's
 * counter (the re-scan half of the parking Dekker pair). */
bool inbox_visible_sc(struct worker *w);

/* Batches counted in w's inboxes now (relaxed; for stats). */
int64_t inbox_queued(struct worker *w);

#endif
