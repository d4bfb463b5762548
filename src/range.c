/*
 * Range jobs (wsched_batch_desc.range_fn): a batch's range runs as calls
 * of range_fn on chunks of at most `grain` jobs, split lazily as run.c
 * splits single jobs. The statuses' rule (written by the chunks only, read
 * once the batch completed): docs/design.md, "range jobs' statuses".
 */
#include "batch.h"
#include "probes.h"

/* A chunk's statuses. Plain stores (the compiler makes them vector
 * stores): nobody reads a range batch's statuses before it completes
 * (batch.c), and the range's B2 release in range_done publishes them to
 * whoever sees it complete. The status array is _Atomic for the other
 * batches; for these, every access before completion is this store. */
static inline void fill_status(_Atomic int32_t *status, size_t lo, size_t end, int32_t code)
{
    int32_t *plain = (int32_t *)(void *)status;
    for (size_t i = lo; i < end; i++)
        plain[i] = code;
}

/* Range jobs (wsched_range_fn): the same lazy splitting, at chunk
 * granularity: while our deque is empty (or a worker idle at the start),
 * the upper half of what is left beyond one grain is handed back; then one
 * call runs the next chunk of at most `grain` jobs, and its return value
 * is the status of each of them. During the call r.i is the chunk's last
 * job, so that wsched_blocking splits only what follows the chunk. */
void wsched__run_chunks(struct worker *w, struct wsched_batch *b, const struct task *t)
{
    struct range_state r = {range_lo(t), range_hi(t), range_hi(t) - range_lo(t)};
    wsched_ctx ctx = {CTX_INIT(w, b), .range = &r};
    const size_t grain = b->grain;
    _Atomic int32_t *status = b->status;
    bool idle = r.hi - r.i > grain && pool_has_idle(w->pool);
    for (size_t lo = r.i; lo < r.hi;) {
        if (r.hi - lo > grain && (idle || deque_empty_hint(&w->dq))) {
            r.i = lo;
            while (split_upper(w, b, &r) && r.hi - r.i > grain &&
                   (idle || deque_empty_hint(&w->dq)))
                ;
        }
        idle = false;
        size_t end = r.hi - lo > grain ? lo + grain : r.hi;
        r.i = end - 1;
        PROBE2(job_start, b, lo);
        /* Cancelled (by the user or fail-fast): the chunk is skipped, its
         * jobs marked. Relaxed, as for single jobs (run_one). */
        uint32_t reason = ld(&b->cancel, RLX);
        int32_t code;
        if (unlikely(reason)) {
            code = cancel_status(reason);
        } else {
            int rc = b->range_fn(&ctx, b->arg, lo, end, b->slots ? b->slots + lo * b->stride : NULL);
            ctx_implicit_sync(&ctx);
            code = job_status(rc);
            PROBE3(job_end, b, lo, rc);
        }
        fill_status(status, lo, end, code);
        if (unlikely(code != 0) && !reason && b->policy == WSCHED_POLICY_FAIL_FAST) {
            wsched__note_first_error(b, lo, code);
            wsched__cancel_set(b, CANCEL_FAILFAST);
        }
        /* The call may have shrunk r.hi (wsched_blocking): the loop reads it. */
        lo = end;
    }
    range_done(w, b, r.count);
}

