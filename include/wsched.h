/*
 * wsched - a lock-free work-stealing job scheduler for request fan-out.
 *
 * One header, C99/C11 and C++ compatible. Every call that can fail returns 0
 * or a negative errno-style code; wsched_strerror() names it.
 *
 * Threads and costs at a glance
 *   wsched_pool_create / destroy   any thread that is not a worker of that pool
 *   wsched_submit                  any thread; from a worker it pushes one range
 *                                  onto the worker's own deque, from outside it
 *                                  enqueues one node on a worker's wait-free inbox
 *   wsched_wait                    any thread; outside the pool it parks on a
 *                                  futex, inside it runs other jobs until done
 *   wsched_spawn / wsched_sync     only inside a running job (through its ctx)
 *
 * Lifetime rules
 *   A batch handle stays valid until wsched_batch_free(). Freeing a batch whose
 *   jobs are still running is allowed: the library keeps its own reference and
 *   frees the batch (and library-allocated slots) when the last job has
 *   returned, so a late job never writes freed memory. What the caller
 *   provides - `arg` and caller-provided slot memory - is used by jobs until
 *   every job has returned: free it once wsched_wait_idle() returned 0. For a
 *   batch without quorum or deadline, wsched_wait() returning anything but
 *   -ETIMEDOUT is that same moment.
 */
#ifndef WSCHED_H
#define WSCHED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WSCHED_STATIC_DEFINE)
#define WSCHED_API
#elif defined(WSCHED_BUILDING)
#define WSCHED_API __attribute__((visibility("default")))
#else
#define WSCHED_API
#endif

#define WSCHED_VERSION_MAJOR 0
#define WSCHED_VERSION_MINOR 1
#define WSCHED_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

/*
 * Errors are negative errno values (-EINVAL, -ENOMEM, ...) or one of the
 * wsched-specific codes below, which lie outside the errno range.
 *
 *   -EINVAL      a NULL handle or function, a zero count, a bad flag
 *   -EOVERFLOW   njobs * slot stride (or another size) does not fit size_t
 *   -ENOMEM      the allocator failed; nothing was leaked or half-built
 *   -EAGAIN      the kernel refused a thread
 *   -ESHUTDOWN   the pool is being destroyed: no new batches
 *   -EBADF       the pool handle was already destroyed (use after destroy)
 *   -ETIMEDOUT   wsched_wait's timeout passed before the batch completed
 *   -EDEADLK     wsched_pool_destroy called from one of the pool's workers
 */
#define WSCHED_ERRBASE (-4096)
/* Slot status: the job never ran (pool failure or destroyed mid-way). */
#define WSCHED_ENOTRUN (WSCHED_ERRBASE - 1)
/* Slot status: a job returned a value inside wsched's reserved range. */
#define WSCHED_EJOBCODE (WSCHED_ERRBASE - 2)
/* Slot status: not started because the batch was cancelled (wsched_cancel,
 * fail-fast after another job failed, or quorum decided). */
#define WSCHED_ECANCELLED (WSCHED_ERRBASE - 3)
/* Slot status: not started (or, after an early return at the deadline, not
 * finished) by the batch's deadline. */
#define WSCHED_EDEADLINE (WSCHED_ERRBASE - 4)

/* A static string for any code this library returns (and any errno). */
WSCHED_API const char *wsched_strerror(int code);

/* ---------------------------------------------------------------- memory */

/*
 * Optional allocator. alloc must return memory aligned to 64 bytes when asked
 * for align 64 (or NULL); free receives the same size and align. Both must
 * be set (-EINVAL otherwise). Every allocation of the library goes through
 * it, except the pool handle's 64-byte tombstone (see wsched_pool_destroy),
 * which outlives the pool and uses malloc.
 */
typedef struct wsched_allocator {
    void *(*alloc)(void *ctx, size_t size, size_t align);
    void (*free)(void *ctx, void *ptr, size_t size, size_t align);
    void *ctx;
} wsched_allocator;

/* ------------------------------------------------------------------ pool */

typedef struct wsched_pool wsched_pool;

/* Pool flags. */
#define WSCHED_POOL_NO_PIN 0x1u /* do not pin workers to CPUs */

typedef struct wsched_config {
    /* Workers to start; 0 = one per CPU of the process affinity mask, capped
     * by the cgroup CPU quota when one is set. */
    unsigned nworkers;
    /* Optional CPU list: worker i is pinned to cpus[i % ncpus]. NULL = the CPUs
     * of the affinity mask, in order (ncpus must then be 0). */
    const int *cpus;
    unsigned ncpus;
    unsigned flags; /* WSCHED_POOL_* */
    /* NULL = malloc/free (jemalloc's when the library is built with it). */
    const wsched_allocator *allocator;
    /* Idle search before parking, in microseconds: 0 = the default (10),
     * else 1..WSCHED_SPIN_US_MAX; larger values get -EINVAL. */
    unsigned spin_us;
    /* Pool-wide admission limit: at most this many jobs queued or running
     * across all batches; 0 = none, at most INT64_MAX (else -EINVAL). A
     * batch is admitted whole or not at all; see wsched_submit_timed for
     * what happens when it does not fit. */
    uint64_t max_jobs;
    void *reserved[4]; /* must be NULL (-EINVAL otherwise): room to grow */
} wsched_config;

#define WSCHED_SPIN_US_MAX 1000000u /* one second */

/* Fill *cfg with the defaults. Always call this before setting fields. */
WSCHED_API void wsched_config_init(wsched_config *cfg);

/* Start a pool. cfg may be NULL for the defaults. On error *out is NULL. */
WSCHED_API int wsched_pool_create(wsched_pool **out, const wsched_config *cfg);

/*
 * Graceful shutdown. New submissions fail with -ESHUTDOWN from the moment this
 * is called; every batch already accepted runs to completion (so threads
 * blocked in wsched_wait return normally); then the workers are joined and all
 * memory is freed. Batch handles stay valid for wsched_batch_* and
 * wsched_batch_free. Afterwards the handle answers -EBADF: a small tombstone
 * (64 bytes) is kept for each destroyed pool so that this check is safe.
 */
WSCHED_API int wsched_pool_destroy(wsched_pool *pool);

/* Number of workers, or a negative code. */
WSCHED_API int wsched_pool_workers(const wsched_pool *pool);

/* ------------------------------------------------------------------ jobs */

typedef struct wsched_ctx wsched_ctx; /* a running job's context */
typedef struct wsched_batch wsched_batch;

/*
 * A batch job. index is the job's position in the batch, arg the batch's arg,
 * slot points at slot `index` (NULL when the batch has no slots). The job
 * writes its result to its slot and nothing else of the batch, and returns 0
 * for success or an error code, which becomes the slot's status. Codes in
 * [WSCHED_ERRBASE - 64, WSCHED_ERRBASE] are reserved and recorded as
 * WSCHED_EJOBCODE.
 */
typedef int (*wsched_job_fn)(wsched_ctx *ctx, void *arg, size_t index, void *slot);

/* Batch flags. */
#define WSCHED_BATCH_PAD_SLOTS 0x1u /* round library-allocated slots up to 64 B */
#define WSCHED_BATCH_STREAM 0x2u    /* completion stream: wsched_next_done */

/*
 * Failure policies (wsched_batch_desc.policy). Every slot ends in exactly
 * one state: ok (0), the job's error, WSCHED_ECANCELLED, WSCHED_EDEADLINE.
 *  BEST_EFFORT  every job runs; failures stay in their slots.
 *  FAIL_FAST    the first failure cancels the jobs not yet started and
 *               signals the running ones (wsched_cancelled); wsched_wait
 *               returns that first error once the running ones are done.
 *  QUORUM       the batch completes as soon as `quorum` jobs succeeded, or
 *               when that has become impossible (wsched_wait then returns
 *               the first error); the other slots are marked cancelled at
 *               that instant, jobs still running are signalled and their
 *               late results discarded.
 */
/*
 * Priority classes (wsched_batch_desc.priority), pool-wide: a worker about
 * to start a new batch takes an interactive one if any waits in any
 * worker's queue, except that every 8th batch each worker starts is a
 * background one if any waits. So while both classes wait, background gets
 * at least 1 in 8 of the starts (never starved) and interactive the rest.
 * Started batches (their split ranges) are not reordered: started work
 * finishes first.
 */
enum wsched_priority {
    WSCHED_PRIO_NORMAL = 0,     /* interactive, the default */
    WSCHED_PRIO_BACKGROUND = 1,
};

enum wsched_policy {
    WSCHED_BEST_EFFORT = 0,
    WSCHED_FAIL_FAST = 1,
    WSCHED_QUORUM = 2,
};

typedef struct wsched_batch_desc {
    wsched_job_fn fn;
    void *arg;
    size_t njobs; /* >= 1 */
    /* Slots: caller memory of njobs * stride bytes, or NULL for the library to
     * allocate (zeroed, 64-byte aligned). slot_size 0 = no slots at all. */
    void *slots;
    size_t slot_size;
    size_t slot_stride; /* 0 = slot_size (or padded, see flags) */
    unsigned flags;     /* WSCHED_BATCH_* */
    unsigned policy;    /* enum wsched_policy */
    size_t quorum;      /* WSCHED_QUORUM: successes needed, 1..njobs */
    /* Absolute CLOCK_MONOTONIC deadline in ns (wsched_now_ns() + budget),
     * 0 = none. Jobs not started by then are not run (WSCHED_EDEADLINE);
     * running ones see wsched_cancelled(). wsched_wait returns -ETIMEDOUT
     * at the deadline with every slot's state final: finished slots hold
     * their results, the others WSCHED_EDEADLINE. */
    uint64_t deadline_ns;
    /* At most this many of the batch's jobs run at once (e.g. an I/O-bound
     * batch that must not flood one downstream); 0 = no limit. Jobs held
     * back wait as unclaimed indices: no worker ever waits for a permit. */
    size_t max_parallel;
    unsigned priority; /* enum wsched_priority */
    void *reserved[4]; /* must be NULL (-EINVAL otherwise) */
} wsched_batch_desc;

/*
 * Submit a batch of njobs jobs. Costs one allocation (header, statuses and,
 * if asked, slots) and O(1) queue operations whatever njobs is: the batch
 * travels as one index range that workers split lazily when others are idle.
 * At most one idle worker is woken. Safe from any thread, workers included.
 */
WSCHED_API int wsched_submit(wsched_pool *pool, const wsched_batch_desc *desc,
                             wsched_batch **out);

/*
 * wsched_submit with a bound on waiting for admission (pool max_jobs):
 *   timeout_ns == 0  load shedding: -EBUSY at once when the jobs do not fit
 *   timeout_ns  > 0  backpressure: wait for room, -ETIMEDOUT after that long
 *   timeout_ns  < 0  wait for room as long as it takes (= wsched_submit)
 * A batch larger than max_jobs can never fit: -E2BIG. Batches submitted
 * from inside the pool are part of admitted work and not counted, whatever
 * their size (waiting for room there could deadlock: the room is held by
 * the jobs that wait; a nested batch larger than max_jobs is accepted).
 * A worker never waits for admission: from a worker of another wsched
 * pool, a batch that does not fit gets -EBUSY at once whatever timeout_ns
 * says (this applies to wsched_submit too). Without max_jobs this is
 * wsched_submit. Units are returned as each range of jobs finishes.
 */
WSCHED_API int wsched_submit_timed(wsched_pool *pool, const wsched_batch_desc *desc,
                                   wsched_batch **out, int64_t timeout_ns);

/*
 * Wait until every job of the batch has finished. timeout_ns < 0 waits for
 * ever, 0 polls. Returns 0 when complete (every slot and status is then
 * visible to the caller), -ETIMEDOUT otherwise. Outside the pool the caller
 * sleeps on a futex; a worker of the pool runs other jobs meanwhile.
 *
 * Waiting inside the pool (wsched_wait, wsched_wait_idle, wsched_next_done
 * and wsched_sync called from a job): the worker never sleeps; it runs
 * tasks from its own deque (its own children and split ranges first) and
 * steals work of requests already started from other workers, but it
 * starts no new batch from a submission queue (so an unrelated request
 * cannot capture it) unless the batch it waits for is itself still
 * queued there (submitted from outside the pool): then it takes queued
 * batches in order until that one has started. It can still pick up a stolen job of another started
 * batch that blocks, and then returns only when that job returns; jobs
 * that block should call wsched_blocking (and, once available, wait
 * without holding a worker). A poll (timeout 0) runs at most one task
 * before it answers, so a job polling in a loop makes progress.
 */
WSCHED_API int wsched_wait(wsched_batch *batch, int64_t timeout_ns);

/*
 * Cancel: jobs not yet started are not run (WSCHED_ECANCELLED); running jobs
 * see wsched_cancelled() and may stop early. The batch completes when the
 * running ones return. Safe from any thread, any number of times.
 */
WSCHED_API int wsched_cancel(wsched_batch *batch);

/* Nonzero when the running job's batch was cancelled (any reason) or its
 * deadline has passed: a cheap poll for long jobs. 0 for a NULL ctx. */
WSCHED_API int wsched_cancelled(const wsched_ctx *ctx);

/*
 * Call from a job or spawned task about to block (I/O, a lock, a long
 * sleep, a spin on other jobs' progress): the jobs of its batch that its
 * worker still holds privately (the rest of the range it is running)
 * become stealable at once, and an idle worker is woken to take them and
 * the children it spawned. Without it, a job that blocks may hold back up
 * to half of its range's remaining jobs until it returns, and its spawned
 * children are only sure to run in parallel with it up to its sync (a
 * spawn wakes idle workers cheaply, without the fence that would make the
 * wake certain on every push). Cheap: one fence and a few loads.
 */
WSCHED_API int wsched_blocking(wsched_ctx *ctx);

/* CLOCK_MONOTONIC in ns, the clock of deadline_ns. */
WSCHED_API uint64_t wsched_now_ns(void);

/*
 * Wait until every job of the batch has returned. Equal to wsched_wait for
 * a batch that completes normally; after an early completion (quorum,
 * deadline) jobs may still be running, and until this returns 0 they may
 * still read `arg` and write caller-provided slot memory.
 */
WSCHED_API int wsched_wait_idle(wsched_batch *batch, int64_t timeout_ns);

/*
 * Fan-in in completion order, for a batch submitted with WSCHED_BATCH_STREAM:
 * *index receives the next job to reach its final state (run, failed,
 * cancelled or timed out); its slot and status are then visible. Every job
 * is returned exactly once; then -ENODATA. timeout_ns as for wsched_wait
 * (-ETIMEDOUT). One consumer at a time; no mutex: producers append with one
 * atomic add each. Inside the pool it runs other jobs while it waits.
 */
WSCHED_API int wsched_next_done(wsched_batch *batch, int64_t timeout_ns, size_t *index);

/* Release the caller's reference (see lifetime rules above). NULL is a no-op. */
WSCHED_API void wsched_batch_free(wsched_batch *batch);

/* Job count, slot pointer and status of job i. Status: 0 ok, the job's error
 * code, WSCHED_ECANCELLED, WSCHED_EDEADLINE, or WSCHED_ENOTRUN while the job
 * has not finished. Final once wsched_wait returned (except after a wait
 * timeout shorter than the batch: then the batch is still running). After
 * an early completion (quorum, deadline) a slot whose status is not 0 or a
 * job error may still be written by a job that is running late: read only
 * slots whose status is final results. */
WSCHED_API size_t wsched_batch_size(const wsched_batch *batch);
WSCHED_API void *wsched_batch_slot(const wsched_batch *batch, size_t i);
WSCHED_API int wsched_batch_status(const wsched_batch *batch, size_t i);
/* Number of jobs whose status is not 0 (failed, cancelled, timed out). */
WSCHED_API size_t wsched_batch_failed(const wsched_batch *batch);

/*
 * How a batch ended, and why: what wsched_wait's return cannot say (it is
 * 0 after wsched_cancel, for instance). The first reason wins: a batch
 * cancelled by the user whose job then failed ended CANCELLED (first_error
 * still names the failure); a fail-fast batch cancelled after its first
 * failure ended FAILED.
 *
 *   end                       when                         wsched_wait returned
 *   WSCHED_END_RUNNING        not complete yet             -ETIMEDOUT (if it returned)
 *   WSCHED_END_COMPLETED      every job returned, no policy fired      0
 *   WSCHED_END_FAILED         FAIL_FAST: a job failed      the first error
 *   WSCHED_END_QUORUM_REACHED QUORUM: quorum jobs succeeded            0
 *   WSCHED_END_QUORUM_IMPOSSIBLE  QUORUM: too many failed  the first error
 *   WSCHED_END_DEADLINE       the batch deadline passed    -ETIMEDOUT
 *   WSCHED_END_CANCELLED      wsched_cancel came first     0
 */
enum wsched_end {
    WSCHED_END_RUNNING = 0,
    WSCHED_END_COMPLETED = 1,
    WSCHED_END_FAILED = 2,
    WSCHED_END_QUORUM_REACHED = 3,
    WSCHED_END_QUORUM_IMPOSSIBLE = 4,
    WSCHED_END_DEADLINE = 5,
    WSCHED_END_CANCELLED = 6,
};

typedef struct wsched_outcome {
    unsigned end;             /* enum wsched_end */
    /* The first job error: for FAIL_FAST and QUORUM the first in time,
     * otherwise the failed job of lowest index; 0 (and index SIZE_MAX)
     * when no job failed. */
    int first_error;
    size_t first_error_index;
    /* Slot counts by status: ok (0), a job's own error, WSCHED_ECANCELLED,
     * WSCHED_EDEADLINE, not final yet (RUNNING only). They sum to njobs. */
    size_t ok, failed, cancelled, timed_out, unfinished;
} wsched_outcome;

/* Fill *out (O(njobs) reads). Final once wsched_wait returned anything but
 * -ETIMEDOUT from the caller's own timeout; a snapshot before. */
WSCHED_API int wsched_batch_outcome(const wsched_batch *batch, wsched_outcome *out);

/* ------------------------------------------------------------- fork-join */

typedef void (*wsched_task_fn)(wsched_ctx *ctx, void *arg);

/*
 * Spawn a child task from a running job or task. The child may run on any
 * worker; arg must stay valid until the matching wsched_sync. Never fails
 * for want of memory: when the deque cannot grow the child runs inline.
 * Returns 0, or -EINVAL for a NULL ctx or fn.
 *
 * Children left unsynced when the job or task returns are joined
 * implicitly, but only after its stack frame is gone: an arg that points
 * at the spawner's locals is then read dead. Call wsched_sync before
 * returning whenever an arg lives on the stack. Builds of the library with
 * -DWSCHED_DEBUG=ON abort with a message when a job returns with such a
 * child unjoined.
 */
WSCHED_API int wsched_spawn(wsched_ctx *ctx, wsched_task_fn fn, void *arg);

/*
 * Wait for every child spawned by this ctx since its last sync. The worker
 * runs the children itself, or other work while a stolen child finishes;
 * it never blocks. A job or task that returns with children outstanding is
 * synced implicitly.
 */
WSCHED_API int wsched_sync(wsched_ctx *ctx);

/* ----------------------------------------------------------- observability */

/* Counters of one worker since the pool started. */
typedef struct wsched_worker_stats {
    uint64_t jobs;        /* batch jobs run */
    uint64_t tasks;       /* spawned tasks run */
    uint64_t steals;      /* work taken from another worker (deque or inbox) */
    uint64_t steal_fails; /* passes over all other workers that found nothing */
    uint64_t parks;       /* times the worker went to sleep */
    uint64_t wakeups;     /* times it was woken */
    uint64_t busy_ns;     /* time between finding work and searching/parking again */
} wsched_worker_stats;

typedef struct wsched_pool_stats {
    unsigned nworkers;
    /* Gauges: parked + searching + running == nworkers in every snapshot.
     * A worker on its way to sleep counts as parked from the moment it
     * announces it; one being woken counts as searching. */
    unsigned parked;    /* workers asleep (or about to be) now */
    unsigned searching; /* workers looking for work now */
    unsigned running;   /* nworkers - parked - searching */
    uint64_t queued;    /* batches in inboxes + task records in deques, now */
    uint64_t inflight;  /* batches accepted and not complete (a batch whose
                           wsched_submit has not returned counts twice) */
    wsched_worker_stats total; /* sum over workers */
    void *reserved[4];
} wsched_pool_stats;

/*
 * Snapshot the pool's gauges and counters without stopping it: relaxed
 * loads of counters that only their worker writes, so each figure is exact
 * when read but the whole is not one instant. per_worker may be NULL; else it
 * receives min(n, nworkers) entries. Cost: O(nworkers) loads. Not to be
 * called concurrently with wsched_pool_destroy.
 */
WSCHED_API int wsched_stats(wsched_pool *pool, wsched_pool_stats *out,
                            wsched_worker_stats *per_worker, unsigned n);

/* Index of the worker running ctx (0..nworkers-1). */
WSCHED_API unsigned wsched_ctx_worker(const wsched_ctx *ctx);

/* Index of the calling thread's worker in its pool, or -1 outside any pool. */
WSCHED_API int wsched_current_worker(void);

#ifdef __cplusplus
}
#endif

#endif /* WSCHED_H */
