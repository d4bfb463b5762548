/*
 * Single jobs in caller-provided records (wsched_post): no batch, no
 * allocation. A record is the task's whole state: the inbox link, the wait
 * word, the status. What it shares with batches: the destroy handshake
 * (pool.c H1-H4), admission (one unit), the inboxes (inbox.h I1-I4, kind
 * INBOX_JOB), the wake-up (idle.c N1), the in-job and outside waits.
 *
 * Protocol (labels used at the sites):
 *  (P1) post: every field of the record with plain / relaxed stores, then
 *       the push: from outside I1-I2 (release: cds_wfcq_enqueue after
 *       I1's seq_cst RMW), from a worker the deque's P1 release store. The
 *       worker that takes the task reads the fields after the queue's or
 *       deque's acquire.
 *  (P2) run: the job, its implicit sync, the status (plain), the admission
 *       unit; nothing of the record is written after P3.
 *  (P3) completion: an ACQ_REL exchange of `done` to DONE, as a batch's B3
 *       (completion.h): its release publishes the status and everything
 *       the job wrote; the old value WAITED means a waiter may sleep, and
 *       it is woken after the exchange. The record may be reused or freed
 *       by then: FUTEX_WAKE reads no memory, and a later waiter at the same
 *       address only wakes spuriously (every futex wait re-checks). The
 *       pool handle was read before P3; the pool is left last (H3).
 *  (P4) wait: ACQUIRE load of `done` (DONE: the status is visible), else a
 *       poll, then the announce CAS RUNNING -> WAITED and futex_wait
 *       (completion.h B4: no lost wake-up, the RMWs are on one word); inside
 *       the pool, other work meanwhile (wait.c).
 *  (P0) a record posted again before a wait returned 0: refused (-EBUSY)
 *       when the record reads posted and not DONE (a record must start
 *       zeroed: a stale magic in garbage memory is a 2^-32 false -EBUSY).
 *       A caller racing its own post and wait on one record is its race.
 */
#include <errno.h>
#include <stddef.h>

#include "batch.h"
#include "futex.h"
#include "tsan.h"

static inline struct job_rec *rec_of(wsched_job *job) { return (struct job_rec *)(void *)job; }

int wsched_post(wsched_pool *h, wsched_job *job, wsched_job_fn fn, void *arg)
{
    if (!h || !job || !fn)
        return -EINVAL;
    struct job_rec *j = rec_of(job);
    /* P0. ACQUIRE: a DONE read here orders our stores after P3's. */
    if (j->magic == JOB_MAGIC && ld(&j->done, ACQ) != BATCH_DONE)
        return -EBUSY;
    /* Inside a worker of h: the running job keeps the pool alive (H4,
     * relaxed, as a nested batch: submit.c). */
    struct worker *self = wsched__self;
    bool inside = pool_inside(h, self);
    int r;
    if (inside)
        fadd(&h->inflight, 1, RLX); /* H4 */
    else if ((r = wsched__pool_enter(h)) != 0) /* H1 */
        return r;
    struct pool *p = h->p;
    /* One unit of admission from outside; a worker of another pool never
     * waits for it (submit.c). */
    bool limited = p->max_jobs && !inside;
    if (limited && (r = wsched__admit_reserve(p, 1, self ? 0 : -1)) != 0) {
        wsched__pool_leave(h, 2);
        return r;
    }
    /* P1: relaxed / plain, published by the push's release. */
    j->link.kind = INBOX_JOB;
    st(&j->done, BATCH_RUNNING, RLX);
    st(&j->queued, !inside, RLX);
    j->status = WSCHED_ENOTRUN;
    j->fn = fn;
    j->arg = arg;
    j->handle = h;
    j->run = limited ? wsched__run_job_admitted : wsched__run_job;
    j->magic = JOB_MAGIC;
    if (inside) {
        struct task t = job_task(j);
        bool was_empty;
        if (deque_push_owner(&self->dq, &t, &was_empty) != 0) { /* P1 */
            j->magic = 0; /* not posted */
            wsched__pool_leave(h, 1);
            return -ENOMEM;
        }
        pushed(self, was_empty);
        return 0;
    }
    wsched__outside_push(p, WSCHED_PRIO_INTERACTIVE, &j->link); /* P1: I1-I2 */
    /* The job may be done and the record reused by now: only the handle. */
    wsched__pool_leave(h, 1);
    return 0;
}

static inline void run_job(struct worker *w, const struct task *t, bool admitted)
{
    struct job_rec *j = (struct job_rec *)t->a;
    struct wsched_pool *h = j->handle; /* read before P3 (debug check) */
    wsched_ctx ctx = {CTX_INIT(w, NULL)};
    int r = j->fn(&ctx, j->arg, 0, NULL); /* P2 */
    ctx_implicit_sync(&ctx);
    STAT_ADD(w, jobs, 1);
    /* Before P3: a waiter that saw DONE and posts again finds the room. */
    if (admitted)
        wsched__admit_release(h->p, 1);
    j->status = job_status(r);
    _Atomic uint32_t *done = &j->done;
    bool wake = completion_signal(done); /* P3 */
    if (wake)
        futex_wake_all(done); /* may reach a reused record: P3 */
    /* H3, deferred (H5): a worker of h owes the unit (h is its pool's: the
     * task came from h's inboxes or deques). */
    DEBUG_ASSERT(w->pool->handle == h);
    (void)h;
    pool_owe(w);
}

void wsched__run_job(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    run_job(w, t, false);
}

void wsched__run_job_admitted(struct worker *w, const struct task *t, bool stolen)
{
    (void)stolen;
    run_job(w, t, true);
}

int wsched_job_wait(wsched_job *job, int64_t timeout_ns)
{
    if (!job)
        return -EINVAL;
    struct job_rec *j = rec_of(job);
    if (j->magic != JOB_MAGIC)
        return -EINVAL;
    if (completion_done(&j->done)) /* P4 */
        return 0;
    /* Inside a worker of the job's pool: help. Compared through our own
     * pool (alive while we run), never j->handle->p: once the job is done
     * another thread may destroy its pool and clear that field. */
    struct worker *self = wsched__self;
    bool helping = self && self->pool->handle == j->handle;
    if (timeout_ns == 0) {
        if (helping) {
            unsigned backoff = 0;
            fj_share(self);
            wsched__help_once(self, &backoff, &j->queued, NULL, 0);
        }
        return completion_done(&j->done) ? 0 : -ETIMEDOUT; /* P4 */
    }
    uint64_t until = timeout_ns > 0 ? wsched_now_ns() + (uint64_t)timeout_ns : 0;
    bool ok = helping ? wsched__help_until(self, &j->queued, &j->done, BATCH_DONE, until)
                      : wsched__external_wait(&j->done, until); /* P4 */
    return ok ? 0 : -ETIMEDOUT;
}

int wsched_job_status(const wsched_job *job, int *status)
{
    if (!job || !status)
        return -EINVAL;
    struct job_rec *j = (struct job_rec *)(void *)(uintptr_t)job;
    if (j->magic != JOB_MAGIC)
        return -EINVAL;
    if (!completion_done(&j->done)) /* P4: ACQUIRE, the status is visible */
        return -EBUSY;
    *status = j->status;
    return 0;
}
