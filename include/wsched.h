/**
 * @file wsched.h
 * wsched - a lock-free work-stealing job scheduler for request fan-out.
 *
 * One header, C11 and C++ compatible (include/wsched.hpp wraps it for C++).
 *
 * Conventions
 *  - Every call that can fail returns 0 (or a count) on success and a
 *    negative errno-style code on failure; wsched_strerror() names it.
 *  - A call's return value is the call's own status, never the batch's: a
 *    batch's outcome (which jobs failed, whether a policy ended it early)
 *    is read with wsched_batch_status() and wsched_batch_outcome().
 *  - Structs the caller passes in (wsched_config, wsched_batch_desc) have
 *    `reserved` fields that must be zero (-EINVAL otherwise); structs the
 *    library fills in (stats, outcome) are passed with their sizeof, so a
 *    later version can add fields without breaking programs built against
 *    this one.
 *  - Jobs and tasks are C function pointers. Written in C++, they must not
 *    throw: an exception that leaves a job unwinds through the scheduler's
 *    frames, which is undefined behaviour (wsched.hpp catches for you).
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
 *   batch without quorum or deadline, wsched_wait() returning 0 is that same
 *   moment.
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

/* --------------------------------------------------------------- version */

/* The single source of the version: CMakeLists.txt reads these lines. */
#define WSCHED_VERSION_MAJOR 0
#define WSCHED_VERSION_MINOR 2
#define WSCHED_VERSION_PATCH 0
/** The header's version as one number: major * 10000 + minor * 100 + patch. */
#define WSCHED_VERSION                                                         \
    (WSCHED_VERSION_MAJOR * 10000 + WSCHED_VERSION_MINOR * 100 + WSCHED_VERSION_PATCH)

/** The library's version, as WSCHED_VERSION: compare the two to detect a
 * program running against another build of the library than it was
 * compiled with. */
WSCHED_API unsigned wsched_version(void);

/* ---------------------------------------------------------------- errors */

/**
 * @defgroup errors Errors
 * Errors are negative errno values or one of the wsched-specific codes
 * below, which lie outside the errno range.
 *
 *   -EINVAL      a NULL handle or function, a zero count, a bad flag, an
 *                index out of range, a non-zero reserved field
 *   -EOVERFLOW   njobs * slot stride (or another size) does not fit size_t
 *   -ENOMEM      the allocator failed; nothing was leaked or half-built
 *   -EAGAIN      the kernel refused a thread
 *   -ESHUTDOWN   the pool is being destroyed: no new batches
 *   -EBADF       the pool handle was already destroyed (use after destroy)
 *   -ETIMEDOUT   the call's own timeout passed (the batch is still running)
 *   -EBUSY       admission (max_jobs) refused the batch at once
 *   -E2BIG       a batch larger than max_jobs, which can never be admitted
 *   -EDEADLK     wsched_pool_destroy called from one of the pool's workers
 *   -ENODATA     wsched_next_done: every job was already returned
 *   -ESRCH       wsched_current_worker: the caller is not a worker
 *
 * The WSCHED_E* codes are slot statuses (wsched_batch_status), never
 * returned by a call.
 * @{
 */
#define WSCHED_ERRBASE (-4096)
/** Slot status: the job has not finished (or never ran: the pool failed). */
#define WSCHED_ENOTRUN (WSCHED_ERRBASE - 1)
/** Slot status: the job returned a value inside wsched's reserved range
 * [WSCHED_ERRBASE - 64, WSCHED_ERRBASE]. */
#define WSCHED_EJOBCODE (WSCHED_ERRBASE - 2)
/** Slot status: not started because the batch was cancelled (wsched_cancel,
 * fail-fast after another job failed, or quorum decided). */
#define WSCHED_ECANCELLED (WSCHED_ERRBASE - 3)
/** Slot status: not started (or, after an early return at the deadline,
 * not finished) by the batch's deadline. */
#define WSCHED_EDEADLINE (WSCHED_ERRBASE - 4)
/** Slot status: the job threw a C++ exception, which wsched.hpp caught at
 * the job's boundary (a reserved code a job may return itself). */
#define WSCHED_EEXCEPTION (WSCHED_ERRBASE - 5)
/** A job's return value, never a status: it armed a wait (wsched_sleep_until)
 * and is to be called again when the wait completes (see "Jobs that
 * wait"). Returned without an armed wait it is recorded as WSCHED_EJOBCODE. */
#define WSCHED_PENDING (WSCHED_ERRBASE - 6)
/** Slot status: not run, its downstream's circuit breaker was open (or
 * half-open with every trial permit taken, or ramping up after closing). */
#define WSCHED_EBREAKER (WSCHED_ERRBASE - 7)
/** Slot status: not run, its downstream's rate limit had no room (in
 * delay mode: no room before the batch deadline). */
#define WSCHED_ELIMITED (WSCHED_ERRBASE - 8)

/** A static string for any code this library returns (and any errno). */
WSCHED_API const char *wsched_strerror(int code);
/** @} */

/* ------------------------------------------------------------------ time */

/** CLOCK_MONOTONIC in ns: the clock of deadline_ns. */
WSCHED_API uint64_t wsched_now_ns(void);

/* ---------------------------------------------------------------- memory */

/**
 * Optional allocator. alloc must return memory aligned to 64 bytes when
 * asked for align 64 (or NULL); free receives the same size and align. Both
 * must be set (-EINVAL otherwise). Every allocation of the library goes
 * through it with one exception: the pool handle's tombstone (64 bytes per
 * pool ever created, see wsched_pool_destroy) outlives the pool and its
 * allocator, so it comes from malloc.
 */
typedef struct wsched_allocator {
    void *(*alloc)(void *ctx, size_t size, size_t align);
    void (*free)(void *ctx, void *ptr, size_t size, size_t align);
    void *ctx;
} wsched_allocator;

/* ------------------------------------------------------------------ pool */

typedef struct wsched_pool wsched_pool;

/** Pool flag: do not pin workers to CPUs. */
#define WSCHED_POOL_NO_PIN 0x1u

/** Largest wsched_config.spin_us: one second. */
#define WSCHED_SPIN_US_MAX 1000000u

/** Largest wsched_config.timer_slack_ns: one second. */
#define WSCHED_TIMER_SLACK_NS_MAX 1000000000u

/** Pool configuration: wsched_config_init(), then set fields. */
typedef struct wsched_config {
    /** Workers to start; 0 = one per CPU of the process affinity mask,
     * capped by the cgroup CPU quota when one is set. */
    unsigned nworkers;
    /** Optional CPU list: worker i is pinned to cpus[i % ncpus]. NULL = the
     * CPUs of the affinity mask, in order (ncpus must then be 0). */
    const int *cpus;
    unsigned ncpus;
    unsigned flags; /**< WSCHED_POOL_* */
    /** NULL = malloc/free (jemalloc's when the library is built with it). */
    const wsched_allocator *allocator;
    /** Idle search before parking, in microseconds: 0 = the default (10),
     * else 1..WSCHED_SPIN_US_MAX; larger values get -EINVAL. */
    unsigned spin_us;
    /** Pool-wide admission limit: at most this many jobs queued or running
     * across all batches; 0 = none, at most INT64_MAX (else -EINVAL). A
     * batch is admitted whole or not at all; see wsched_submit_timed for
     * what happens when it does not fit. */
    uint64_t max_jobs;
    /** The workers' timer slack (Linux PR_SET_TIMERSLACK), in ns: how much
     * later than asked the kernel may end a worker's timed sleep, which is
     * how a parked worker waits for its next timer (job waits, backoffs,
     * hedges). 0 = the default, 1,000 (about one tick of the timer wheel);
     * else 1..WSCHED_TIMER_SLACK_NS_MAX. A thread's own default is the
     * kernel's 50 us, which then adds up to 50 us to every such timer;
     * a larger slack lets the kernel batch the wake-ups (less power). */
    uint64_t timer_slack_ns;
    void *reserved[3]; /**< must be NULL (-EINVAL otherwise): room to grow */
} wsched_config;

/** Fill *cfg with the defaults (a NULL cfg is ignored). Always call this
 * before setting fields. */
WSCHED_API void wsched_config_init(wsched_config *cfg);

/** Start a pool. cfg may be NULL for the defaults. On error *out is NULL. */
WSCHED_API int wsched_pool_create(wsched_pool **out, const wsched_config *cfg);

/**
 * Graceful shutdown. New submissions fail with -ESHUTDOWN from the moment
 * this is called; every batch already accepted runs to completion (so
 * threads blocked in wsched_wait return normally); then the workers are
 * joined and all memory is freed. Batch handles stay valid for
 * wsched_batch_* and wsched_batch_free. Afterwards the handle answers
 * -EBADF: a tombstone of 64 bytes, from malloc, is kept for each destroyed
 * pool so that this check is safe.
 */
WSCHED_API int wsched_pool_destroy(wsched_pool *pool);

/** Number of workers, or a negative code. */
WSCHED_API int wsched_pool_workers(const wsched_pool *pool);

/* --------------------------------------------- batch: describe and submit */

typedef struct wsched_ctx wsched_ctx; /**< a running job's context */
typedef struct wsched_batch wsched_batch;

/**
 * A batch job. index is the job's position in the batch, arg the batch's
 * arg, slot points at slot `index` (NULL when the batch has no slots). The
 * job writes its result to its slot and nothing else of the batch, and
 * returns 0 for success or an error code, which becomes the slot's status.
 * Codes in [WSCHED_ERRBASE - 64, WSCHED_ERRBASE] are reserved and recorded
 * as WSCHED_EJOBCODE, except WSCHED_EEXCEPTION, WSCHED_EBREAKER and
 * WSCHED_ELIMITED (a job may pass on what wsched_breaker_acquire or
 * wsched_limit_acquire said) and WSCHED_PENDING (see "Jobs that wait").
 * A job must not throw (C++) or longjmp out.
 */
typedef int (*wsched_job_fn)(wsched_ctx *ctx, void *arg, size_t index, void *slot);

/**
 * A range job (wsched_batch_desc.range_fn): one call runs the jobs of
 * indices lo..hi-1 of the batch, so that small compute jobs pay one call
 * per chunk instead of one per job. slots points at slot lo (slot i is at
 * slots + (i - lo) * stride; NULL when the batch has no slots). The
 * return value becomes the status of every job of the chunk: 0, or an
 * error code as for wsched_job_fn (fail-fast then stops the batch's other
 * chunks; wsched_batch_outcome names index lo). The library chooses the
 * chunks: at most `grain` jobs each, split further only while other
 * workers are idle, so every index is called exactly once, in exactly one
 * chunk, on some worker. The statuses are written as chunks end and read
 * as final once the batch completes (none is written at submit: a batch of
 * N range jobs costs O(1) at submit whatever N is). Inside, ctx works as in a job (wsched_spawn,
 * wsched_blocking: the jobs after the chunk become stealable, ...).
 */
typedef int (*wsched_range_fn)(wsched_ctx *ctx, void *arg, size_t lo, size_t hi, void *slots);

/** Batch flag: round library-allocated slots up to 64 bytes (no false
 * sharing between neighbouring jobs' results). */
#define WSCHED_BATCH_PAD_SLOTS 0x1u
/** Batch flag: completion stream, read with wsched_next_done. */
#define WSCHED_BATCH_STREAM 0x2u
/** Batch flag: its jobs may wait without holding a worker (see "Jobs that
 * wait"): a wait record per job (64 bytes) is allocated with the batch.
 * With max_parallel, the limit counts jobs in flight, waiting ones
 * included (see max_parallel). */
#define WSCHED_BATCH_WAITS 0x4u

/**
 * Failure policies (wsched_batch_desc.policy). Every slot ends in exactly
 * one state: ok (0), the job's error, WSCHED_ECANCELLED, WSCHED_EDEADLINE.
 * Whatever the policy, wsched_wait returns 0 once the batch is complete;
 * wsched_batch_outcome says how it ended.
 */
enum wsched_policy {
    /** Every job runs; failures stay in their slots. */
    WSCHED_POLICY_BEST_EFFORT = 0,
    /** The first failure cancels the jobs not yet started and signals the
     * running ones (wsched_cancelled); the batch completes when those
     * return. */
    WSCHED_POLICY_FAIL_FAST = 1,
    /** The batch completes as soon as `quorum` jobs succeeded, or when that
     * has become impossible; the other slots are marked cancelled at that
     * instant, jobs still running are signalled and their late results
     * discarded. */
    WSCHED_POLICY_QUORUM = 2,
};

/**
 * Priority classes (wsched_batch_desc.priority), pool-wide: a worker about
 * to start a new batch takes an interactive one if any waits in any
 * worker's queue, except that every 8th batch each worker starts is a
 * background one if any waits. So while both classes wait, background gets
 * at least 1 in 8 of the starts (never starved) and interactive the rest.
 * Started batches (their split ranges) are not reordered: started work
 * finishes first.
 */
enum wsched_priority {
    WSCHED_PRIO_INTERACTIVE = 0, /**< the default */
    WSCHED_PRIO_BACKGROUND = 1,
};

/** What to run: the batch's jobs, their slots and policies. Zero-initialise
 * it (`= {0}` or designated initialisers) and set what you need. */
typedef struct wsched_batch_desc {
    wsched_job_fn fn;
    void *arg;
    size_t njobs; /**< >= 1 */
    /** Slots: caller memory of njobs * stride bytes, or NULL for the library
     * to allocate (zeroed, 64-byte aligned). slot_size 0 = no slots. */
    void *slots;
    size_t slot_size;
    size_t slot_stride; /**< 0 = slot_size (or padded, see flags) */
    unsigned flags;     /**< WSCHED_BATCH_* */
    unsigned policy;    /**< enum wsched_policy */
    size_t quorum;      /**< WSCHED_POLICY_QUORUM: successes needed, 1..njobs */
    /** Absolute CLOCK_MONOTONIC deadline in ns (wsched_now_ns() + budget),
     * 0 = none. Jobs not started by then are not run (WSCHED_EDEADLINE);
     * running ones see wsched_cancelled(). At the deadline the batch
     * completes (wsched_wait returns 0) with every slot's state final:
     * finished slots hold their results, the others WSCHED_EDEADLINE. */
    uint64_t deadline_ns;
    /** At most this many of the batch's jobs run at once (e.g. an I/O-bound
     * batch that must not flood one downstream); 0 = no limit. Jobs held
     * back wait as unclaimed indices: no worker ever waits for a permit.
     * With WSCHED_BATCH_WAITS a job counts from its first call to its
     * final return, waiting included: the limit bounds the calls out to a
     * downstream at once, not the jobs on a CPU (a waiting job's place is
     * taken by no other job of the batch until it completes). */
    size_t max_parallel;
    unsigned priority; /**< enum wsched_priority */
    /** Range jobs: when set (fn then NULL), the batch runs as calls of
     * range_fn on chunks of indices instead of one fn call per job (see
     * wsched_range_fn). Policies BEST_EFFORT and FAIL_FAST; not with a quorum,
     * a deadline, max_parallel, WSCHED_BATCH_STREAM or WSCHED_BATCH_WAITS
     * (-EINVAL). */
    wsched_range_fn range_fn;
    /** With range_fn: the most jobs per call; 0 = the library's choice
     * (njobs / (8 * workers), between 1 and 4,096). */
    size_t grain;
    /** The downstream its jobs call (see "Resilience"): its retries,
     * budget, breaker, rate limit and dead letters apply to every job of
     * the batch. NULL = none. Implies WSCHED_BATCH_WAITS (a retry's
     * backoff and a limiter's delay are timer waits); not with range_fn. */
    struct wsched_downstream *downstream;
    void *reserved[1]; /**< must be NULL (-EINVAL otherwise) */
} wsched_batch_desc;

/**
 * Pre-fault memory for `count` batches shaped like `like` (its njobs,
 * slots and flags; its fn may be NULL), so that a first burst of requests
 * right after start-up touches no fresh page and calls no allocator: the
 * blocks go to a depot that every thread's batch cache draws from when it
 * is empty (README, "Batch cache"), and serve any batch of the same size
 * class. At most 4,096 blocks per size class are kept; the reserve is
 * given back when the pool is destroyed. A thread whose cache is empty
 * takes up to 32 blocks from the depot at once: reserve the burst plus 32
 * per submitting thread (tests/examples/range_reserve.c). Returns the number of blocks
 * reserved (fewer when the allocator failed or the depot is full),
 * -EINVAL (NULL pool or like, count 0, a description submit would refuse),
 * -EBADF, or -ENOTSUP (a pool with its own allocator, whose every call
 * it sees, or a batch above 64 KiB).
 */
WSCHED_API int wsched_reserve(wsched_pool *pool, const wsched_batch_desc *like, size_t count);

/**
 * Submit a batch of njobs jobs. Costs one block of memory (header,
 * statuses and, if asked, slots): with the default allocator from the
 * calling thread's batch cache, which the thread that frees a batch last
 * refills (README, "Batch cache"), so a request thread that waits for and
 * frees its batches makes no allocator call in steady state; and O(1)
 * queue operations whatever njobs is: the batch
 * travels as one index range that workers split lazily when others are
 * idle. At most one idle worker is woken. Safe from any thread, workers
 * included. On error *out is NULL.
 */
WSCHED_API int wsched_submit(wsched_pool *pool, const wsched_batch_desc *desc,
                             wsched_batch **out);

/**
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

/* ------------------------------------------ batch: wait, cancel, stream */

/**
 * Wait until the batch is complete: every job returned, or a policy or the
 * deadline ended it early (then every slot's state is final; see
 * wsched_wait_idle for jobs still running late). timeout_ns < 0 waits for
 * ever, 0 polls.
 *
 * Returns 0 when the batch is complete, whatever its outcome (read it with
 * wsched_batch_outcome or per slot with wsched_batch_status); -ETIMEDOUT
 * when timeout_ns passed first (the batch is still running: its slots must
 * not be read); -EINVAL for a NULL batch. Outside the pool the caller
 * sleeps on a futex.
 *
 * Waiting inside the pool (wsched_wait, wsched_wait_idle, wsched_next_done
 * and wsched_sync called from a job): the worker does not park; it runs
 * tasks from its own deque (its own children and split ranges first) and
 * steals work of requests already started from other workers, but it
 * starts no new batch from a submission queue (so an unrelated request
 * cannot capture it) unless the batch it waits for is itself still queued
 * there (submitted from outside the pool): then it takes queued batches in
 * order until that one has started. It can still pick up a stolen job of
 * another started batch that blocks, and then returns only when that job
 * returns; jobs that block should call wsched_blocking. A poll (timeout 0)
 * runs at most one task before it answers, so a job polling in a loop
 * makes progress. With nothing to run for a while (64 pauses, 16 yields)
 * it naps on the batch's word (wsched_sync: until a thief's end), woken at
 * once by the completion and after 1 ms at most (earlier for its worker's
 * timers), so a long wait costs no CPU; a job that fans out does better
 * with wsched_wait_batch, which frees the worker.
 */
WSCHED_API int wsched_wait(wsched_batch *batch, int64_t timeout_ns);

/**
 * Wait until every job of the batch has returned. Equal to wsched_wait for
 * a batch that completes normally; after an early completion (quorum,
 * deadline) jobs may still be running, and until this returns 0 they may
 * still read `arg` and write caller-provided slot memory. Returns 0,
 * -ETIMEDOUT or -EINVAL, as wsched_wait.
 */
WSCHED_API int wsched_wait_idle(wsched_batch *batch, int64_t timeout_ns);

/**
 * Cancel: jobs not yet started are not run (WSCHED_ECANCELLED); running
 * jobs see wsched_cancelled() and may stop early. The batch completes when
 * the running ones return. Safe from any thread, any number of times.
 */
WSCHED_API int wsched_cancel(wsched_batch *batch);

/**
 * Fan-in in completion order, for a batch submitted with
 * WSCHED_BATCH_STREAM: *index receives the next job to reach its final
 * state (run, failed, cancelled or timed out); its slot and status are then
 * visible. Every job is returned exactly once; then -ENODATA. timeout_ns as
 * for wsched_wait (-ETIMEDOUT). One consumer at a time; no mutex: producers
 * append with one atomic add each. Inside the pool it runs other jobs while
 * it waits.
 */
WSCHED_API int wsched_next_done(wsched_batch *batch, int64_t timeout_ns, size_t *index);

/** Release the caller's reference (see the lifetime rules at the top).
 * NULL is a no-op. */
WSCHED_API void wsched_batch_free(wsched_batch *batch);

/* -------------------------------------------------------- batch: results */

/** Number of jobs (0 for NULL). */
WSCHED_API size_t wsched_batch_size(const wsched_batch *batch);

/** Slot i, or NULL when the batch has no slots or i is out of range. */
WSCHED_API void *wsched_batch_slot(const wsched_batch *batch, size_t i);

/**
 * Job i's status into *status: 0 ok, the job's error code,
 * WSCHED_ECANCELLED, WSCHED_EDEADLINE, or WSCHED_ENOTRUN while the job has
 * not finished. Returns 0, or -EINVAL for a NULL batch or status or an i
 * out of range (so a job's own -EINVAL is never confused with the call's).
 * Final once wsched_wait returned 0. After an early completion (quorum,
 * deadline) a slot whose status is not 0 or a job error may still be
 * written by a job that is running late: read only slots whose status is
 * a final result. A batch of range jobs (range_fn) publishes its statuses
 * when it completes: until then every job reads WSCHED_ENOTRUN.
 */
WSCHED_API int wsched_batch_status(const wsched_batch *batch, size_t i, int *status);

/**
 * How a batch ended (wsched_batch_outcome). The first reason wins: a batch
 * cancelled by the user whose job then failed ended CANCELLED (first_error
 * still names the failure); a fail-fast batch cancelled after its first
 * failure ended FAILED.
 */
enum wsched_end {
    WSCHED_END_RUNNING = 0,            /**< not complete yet */
    WSCHED_END_COMPLETED = 1,          /**< every job returned, no policy fired */
    WSCHED_END_FAILED = 2,             /**< FAIL_FAST: a job failed */
    WSCHED_END_QUORUM_REACHED = 3,     /**< QUORUM: quorum jobs succeeded */
    WSCHED_END_QUORUM_IMPOSSIBLE = 4,  /**< QUORUM: too many failed */
    WSCHED_END_DEADLINE = 5,           /**< the batch deadline passed */
    WSCHED_END_CANCELLED = 6,          /**< wsched_cancel came first */
};

/** A batch's outcome: how it ended, its first error, its slots by state. */
typedef struct wsched_outcome {
    unsigned end; /**< enum wsched_end */
    /** The first job error: for FAIL_FAST and QUORUM the first in time,
     * otherwise the failed job of lowest index; 0 (and index SIZE_MAX)
     * when no job failed. */
    int first_error;
    size_t first_error_index;
    /** Slot counts by status: ok (0), a job's own error, WSCHED_ECANCELLED,
     * WSCHED_EDEADLINE, not final yet (RUNNING only). They sum to njobs. */
    size_t ok, failed, cancelled, timed_out, unfinished;
} wsched_outcome;

/**
 * Fill *out, of `size` bytes (pass sizeof *out), with the batch's outcome:
 * O(njobs) reads. Final once wsched_wait returned 0; a snapshot before
 * (for range jobs: every job unfinished, see wsched_batch_status).
 * -EINVAL for NULL arguments or a size smaller than this version's first
 * wsched_outcome.
 */
WSCHED_API int wsched_batch_outcome(const wsched_batch *batch, wsched_outcome *out,
                                    size_t size);

/* ---------------------------------------------------------- single jobs */

/**
 * One job without a batch, in a record the caller provides (on its stack,
 * in its request structure, in a ring it reuses): a post allocates
 * nothing and writes one record, so it costs a fraction of a batch of one.
 * The record is the library's (opaque) from wsched_post until a
 * wsched_job_wait on it returned 0; then it may be read
 * (wsched_job_status), posted again, or freed. Its memory must not move
 * or be reused meanwhile. Start a record zeroed (WSCHED_JOB_INIT, static
 * or calloc'd memory). Keep records that are posted at the same time
 * on separate cache lines (alignas(64) in an array) for speed.
 */
typedef struct wsched_job {
    uint64_t wsched__opaque[8]; /* 64 bytes */
} wsched_job;
/* A record's first state (zeroed memory is the same): then a second post
 * of a record still pending is refused (-EBUSY) instead of corrupting a
 * queue. */
#define WSCHED_JOB_INIT {{0}}

/**
 * Post fn(ctx, arg, 0, NULL) to run once on the pool. From outside it goes
 * to a worker's submission queue (interactive class) and wakes an idle
 * worker if none is searching; from a worker of the pool, onto that
 * worker's deque (others may steal it; it is part of admitted work, as a
 * nested batch). Counts one unit of the pool's max_jobs from outside,
 * waiting for room as wsched_submit does. The job may spawn and sync
 * tasks and poll wsched_cancelled (always 0: a job has no batch to
 * cancel); it cannot wait (wsched_sleep_until, wsched_wait_batch and the
 * wakers answer -EINVAL): use a batch with WSCHED_BATCH_WAITS for that.
 * Returns 0, -EINVAL (NULL pool, job or fn), -EBUSY (the record is posted
 * and not yet waited for), -ESHUTDOWN (the pool is being destroyed),
 * -EBADF (destroyed). The pool's destroy runs every posted job first.
 */
WSCHED_API int wsched_post(wsched_pool *pool, wsched_job *job, wsched_job_fn fn, void *arg);

/**
 * Wait until the posted job has returned: 0 (its status: wsched_job_status),
 * -ETIMEDOUT (timeout_ns < 0 waits for ever, 0 polls), -EINVAL (NULL, or a
 * record never posted). Outside the pool: a short poll, then a futex;
 * inside it, the worker runs other work meanwhile, as wsched_wait does
 * (and may start queued submissions while the job itself is queued).
 * Once it returned 0, the library no longer touches the record.
 */
WSCHED_API int wsched_job_wait(wsched_job *job, int64_t timeout_ns);

/** *status = the job's return value (or WSCHED_EJOBCODE, WSCHED_EEXCEPTION,
 * as for batch jobs) once wsched_job_wait returned 0: returns 0; -EBUSY
 * while it has not returned; -EINVAL for NULL or a record never posted. */
WSCHED_API int wsched_job_status(const wsched_job *job, int *status);

/* ---------------------------------------------------------- inside a job */

/** 1 when the running job's batch was cancelled (any reason) or its
 * deadline has passed, else 0: a cheap poll for long jobs. -EINVAL for a
 * NULL ctx. */
WSCHED_API int wsched_cancelled(const wsched_ctx *ctx);

/**
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

/**
 * @name Jobs that wait
 * A job of a WSCHED_BATCH_WAITS batch can wait without holding its worker:
 * it arms one wait and returns WSCHED_PENDING; when the wait completes,
 * wsched calls the same job function again, for the same index, on the
 * worker that armed it or one that stole the resumption. The job keeps its
 * progress in its slot (a state machine: the slot is its frame), and
 * wsched_resume_kind() tells each call why it runs. The wait record lives
 * in the batch: no allocation per wait.
 *
 * The waits: a time (wsched_sleep_until), a waker that foreign code
 * completes from any thread (wsched_waker_arm, wsched_wake), a file
 * descriptor becoming ready (wsched_wait_fd), a nested batch
 * (wsched_wait_batch). Every wait's completion is decided once, by
 * whichever comes first of its event, its own deadline and a cancellation:
 * the others are no-ops.
 *
 * Cancellation, fail-fast, quorum and the batch deadline reach a pending
 * job at once (a batch wait: when the child is done): the job's timer,
 * waker or fd registration is dropped, it is called once more with
 * WSCHED_RESUME_CANCELLED to release what it holds, its return value is
 * ignored, and its slot is WSCHED_ECANCELLED or WSCHED_EDEADLINE (decided
 * by the same arbitration as for running jobs). The deadline of a batch
 * with WSCHED_BATCH_WAITS is a timer on the wheel of the worker that
 * started the batch: it takes effect at its time even when no job of the
 * batch runs and nobody waits with a timeout (a parent job in
 * wsched_wait_batch, say).
 *
 * Admission (max_jobs) keeps counting a pending job: it holds its slot.
 * The resumption is queued on the worker that armed the wait, from where
 * another worker can steal it. Timers and fd events are taken by that
 * worker when it looks for work (a worker busy in a long job takes them
 * when the job returns); a parked worker sleeps until its earliest timer,
 * in its epoll instance when it has fds armed. wsched_pool_destroy
 * cancels every pending wait (the jobs see WSCHED_RESUME_CANCELLED and
 * their slots WSCHED_ECANCELLED; the batch's own cancel word is not set, so
 * its outcome says COMPLETED, with those slots counted as cancelled) and
 * waits armed while it drains fail with -ESHUTDOWN.
 * @{
 */
enum wsched_resume {
    WSCHED_RESUME_FIRST = 0,     /**< the first call */
    WSCHED_RESUME_TIMER = 1,     /**< wsched_sleep_until's time came */
    WSCHED_RESUME_CANCELLED = 2, /**< the batch was cancelled or its deadline passed:
                                      release what the job holds; the return is ignored */
    WSCHED_RESUME_BATCH = 3,     /**< every job of the batch of wsched_wait_batch returned */
    WSCHED_RESUME_WOKEN = 4,     /**< the waker was completed: wsched_resume_value has its value */
    WSCHED_RESUME_FD = 5,        /**< the fd is ready: wsched_resume_value has WSCHED_FD_* bits */
    WSCHED_RESUME_TIMEDOUT = 6,  /**< the deadline of a waker or fd wait came first */
    WSCHED_RESUME_RETRY = 7,     /**< a new attempt after a failed one (see "Resilience"):
                                      start over; the slot holds what the last attempt left */
    WSCHED_RESUME_HEDGE = 8,     /**< a hedge: a second attempt beside a slow one, in a
                                      zeroed scratch slot of its own (see "Resilience") */
};

/** The value of the wait that completed, for the running call: the waker's
 * value (WSCHED_RESUME_WOKEN), the fd's ready events (WSCHED_RESUME_FD), 0
 * otherwise and for a NULL ctx. */
WSCHED_API uint64_t wsched_resume_value(const wsched_ctx *ctx);

/** Why the running job was called (enum wsched_resume), or -EINVAL for a
 * NULL ctx. 0 for jobs of batches without WSCHED_BATCH_WAITS. */
WSCHED_API int wsched_resume_kind(const wsched_ctx *ctx);

/**
 * Arm a timer for the running job: it is called again at or after
 * when_ns (absolute, the wsched_now_ns clock): its worker's timer fires at
 * the first 1.024 us tick at or after it (the worker's wake-up and a busy
 * worker's current task add their own delay). Return WSCHED_PENDING right
 * after.
 * Returns 0; -EINVAL for a NULL ctx, a spawned task, or a job of a batch
 * without WSCHED_BATCH_WAITS; -EBUSY when a wait is already armed by this
 * call of the job. A job that arms a wait and then returns anything but
 * WSCHED_PENDING completes with that value and the wait is dropped, unless
 * a completion of that wait already won (a waker woken before the return,
 * a cancellation, the pool's destroy): then the job is pending after all
 * and is called once more, as that completion says (its earlier return
 * value is not kept).
 */
WSCHED_API int wsched_sleep_until(wsched_ctx *ctx, uint64_t when_ns);

/**
 * Arm a wait for a nested batch (one the job submitted): the running job
 * is called again (WSCHED_RESUME_BATCH) once every job of `child` has
 * returned; the child's slots are then final and wsched_wait(child, 0)
 * answers 0. Return WSCHED_PENDING right after: the worker runs other work
 * meanwhile instead of helping or spinning. One such waiter per batch.
 * Returns 0; -EINVAL for a NULL ctx or child, a child of another pool, or
 * a job without a wait record (as wsched_sleep_until); -EBUSY when a wait
 * is already armed by this call, or the child already has a waiter. A
 * cancelled job is resumed (WSCHED_RESUME_CANCELLED) when the child is
 * done, not before: cancel the child too if it should stop early.
 */
WSCHED_API int wsched_wait_batch(wsched_ctx *ctx, wsched_batch *child);

/** A handle to one wait of one job, for foreign code (another library's
 * callback, another thread) to complete with wsched_wake. A plain value:
 * copy it freely; it stays safe to use after the wait, the batch or the
 * pool is gone (the wake is then a no-op). */
typedef struct wsched_waker {
    wsched_pool *pool;
    uint64_t id;
} wsched_waker;

/**
 * Arm a waker wait for the running job and store its handle in *out: the
 * job is called again with WSCHED_RESUME_WOKEN once some thread calls
 * wsched_wake(*out, value), or with WSCHED_RESUME_TIMEDOUT at deadline_ns
 * (absolute, the wsched_now_ns clock; 0 = none) if that comes first.
 * Return WSCHED_PENDING right after. The handle may be woken at once, even
 * before the job returns (the resumption then follows its return).
 * Returns 0; -EINVAL (NULL ctx or out, no wait record: see
 * wsched_sleep_until); -EBUSY when a wait is already armed by this call;
 * -ENOMEM when the pool cannot grow its table of wakers (64 KiB at a
 * time; never shrunk before the pool is destroyed); -ESHUTDOWN while the
 * pool is being destroyed. On error *out is a handle that wakes nothing.
 */
WSCHED_API int wsched_waker_arm(wsched_ctx *ctx, uint64_t deadline_ns, wsched_waker *out);

/**
 * Complete a waker: its job is resumed with `value`. From any thread,
 * workers and the job itself included; lock-free (a few atomics and, when
 * the job's worker sleeps, one futex or eventfd wake). Exactly one wake
 * counts: returns 0 when this call completed the wait, -EALREADY when the
 * wait was already over (a second or late wake, its deadline passed, its
 * batch cancelled, the batch freed): a harmless no-op. -EINVAL for a
 * handle that was never armed; -ESHUTDOWN or -EBADF when the pool is
 * being destroyed or gone (destroy cancels the wait itself).
 */
WSCHED_API int wsched_wake(wsched_waker waker, uint64_t value);

/** wsched_wait_fd events (and the WSCHED_RESUME_FD value bits). */
#define WSCHED_FD_READ 0x1u  /**< readable (or a peer hung up: read returns 0) */
#define WSCHED_FD_WRITE 0x2u /**< writable */
#define WSCHED_FD_ERROR 0x4u /**< error or hang-up: value only, always reported */

/**
 * Arm a wait for file descriptor fd to become ready for `events`
 * (WSCHED_FD_READ and/or WSCHED_FD_WRITE): the job is called again with
 * WSCHED_RESUME_FD (wsched_resume_value: the ready WSCHED_FD_* bits), or
 * with WSCHED_RESUME_TIMEDOUT at deadline_ns (0 = none) if that comes
 * first. Readiness is level-triggered: ready at arm resumes at once. The
 * fd is registered in its worker's epoll instance (one per worker) until
 * the wait completes; use a non-blocking fd. Closing the fd while it is
 * waited on removes it from epoll silently: only the deadline or a
 * cancellation then ends the wait. One waiting job per fd and worker.
 * Returns 0; -EINVAL (as wsched_sleep_until, or fd < 0, or no known bit
 * in events); -EBUSY as wsched_sleep_until; -EEXIST when another job on
 * this worker waits for the same fd; -ESHUTDOWN as wsched_waker_arm;
 * else what epoll_ctl said (-EBADF, -EPERM for a regular file, -ENOMEM).
 */
WSCHED_API int wsched_wait_fd(wsched_ctx *ctx, int fd, unsigned events, uint64_t deadline_ns);
/** @} */

/** A fork-join child task. */
typedef void (*wsched_task_fn)(wsched_ctx *ctx, void *arg);

/**
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

/**
 * Wait for every child spawned by this ctx since its last sync. The worker
 * runs the children itself, or other work while a stolen child finishes;
 * with nothing to run for a while it naps until the thief's end wakes it
 * (1 ms at most: it looks for work again that often). A job or task that returns with children outstanding is
 * synced implicitly. Returns 0, or -EINVAL for a NULL ctx.
 */
WSCHED_API int wsched_sync(wsched_ctx *ctx);

/*
 * The inline fast path of wsched_spawn and wsched_sync (the way Lace and
 * liburcu's inline read side work). Unless WSCHED_NO_INLINE is defined
 * before this header is included, wsched_spawn and wsched_sync are macros
 * for the two static inline functions below: a spawn onto a worker whose
 * deque already holds stealable work puts the child on that worker's
 * private stack with a few plain stores, and a sync pops it back and calls
 * it, without an atomic instruction or a call into the library. A child
 * goes to the (stealable) deque instead, through the library, when the
 * deque is empty, and the library moves the private children there when
 * the deque runs dry at a sync, at wsched_blocking and before any in-job
 * wait; so an idle worker always has the oldest work to steal, as before.
 * Both paths may be mixed freely (a program built with WSCHED_NO_INLINE
 * calls the library's functions, which handle the private stack too).
 *
 * The structures below are part of the ABI (their layout changes only
 * with the soname) but not of the API: only these two functions touch
 * them. Nothing here is read by another thread except `ran` (relaxed
 * atomics) and the deque's indices (relaxed loads: a hint, see
 * wsched__spawn_inline).
 */
/** @cond internal */
struct wsched__fje {         /* a private child */
    wsched_task_fn fn;
    void *arg;
    wsched_ctx *ctx;          /* its parent */
};
struct wsched__fjq {         /* a worker's private stack of children (owner only) */
    struct wsched__fje *slot;
    uint32_t head;            /* entries in use; the newest is slot[head - 1] */
    uint32_t cap;             /* 0: the fast path is off for this worker */
    const int64_t *top;       /* the worker's deque indices: top >= bottom */
    const int64_t *bottom;    /* means nothing is left to steal there */
    uint64_t ran;             /* children run by the inline sync (stats) */
};
struct wsched__ctx_head {    /* the first members of every wsched_ctx */
    struct wsched__fjq *fjq;
    void *lib_[2];            /* the library's; a child copies them */
    unsigned priv;            /* this ctx's children on fjq: its newest entries */
    unsigned spawned_;        /* the library's: children on the deque */
};
#define WSCHED__CTX_SIZE 72   /* sizeof (wsched_ctx); past the head, all zero in a child */
union wsched__ctx_store {
    struct wsched__ctx_head h;
    uint64_t words[WSCHED__CTX_SIZE / 8];
};
/* Out of line: move this worker's private children to its deque (oldest
 * first) and wake a worker. */
WSCHED_API void wsched__fj_share(wsched_ctx *ctx);

static inline int wsched__spawn_inline(wsched_ctx *ctx, wsched_task_fn fn, void *arg)
{
    struct wsched__ctx_head *c = (struct wsched__ctx_head *)(void *)ctx;
    if (ctx && fn) {
        struct wsched__fjq *q = c->fjq;
        /* Private only while the deque holds something to steal: relaxed
         * loads, a hint. A thief that empties the deque right after we
         * looked leaves this child private until the next spawn or sync
         * of this worker finds the deque empty and shares it (the same
         * bound as wsched_spawn's cheap wake, see wsched_blocking). */
        if (q->head < q->cap &&
            __atomic_load_n(q->top, __ATOMIC_RELAXED) < __atomic_load_n(q->bottom, __ATOMIC_RELAXED)) {
            struct wsched__fje *e = &q->slot[q->head++];
            e->fn = fn;
            e->arg = arg;
            e->ctx = ctx;
            c->priv++;
            return 0;
        }
    }
    return (wsched_spawn)(ctx, fn, arg);
}

/* Run ctx's private children, newest first (the library's wsched_sync
 * runs this same loop). */
static inline void wsched__sync_private(wsched_ctx *ctx)
{
    struct wsched__ctx_head *c = (struct wsched__ctx_head *)(void *)ctx;
    /* c->priv and q->head are re-read after every call: the child may
     * share our other private children with the deque (then they are
     * counted in spawned_ and joined by the library). */
    while (c->priv) {
        struct wsched__fjq *q = c->fjq;
        struct wsched__fje *e = &q->slot[--q->head];
        wsched_task_fn fn = e->fn;
        void *arg = e->arg;
        c->priv--;
        if (c->priv && __atomic_load_n(q->top, __ATOMIC_RELAXED) >=
                           __atomic_load_n(q->bottom, __ATOMIC_RELAXED))
            wsched__fj_share(ctx); /* the rest could run elsewhere meanwhile */
        union wsched__ctx_store child;
        __builtin_memset(&child, 0, sizeof child);
        child.h.fjq = q;
        child.h.lib_[0] = c->lib_[0];
        child.h.lib_[1] = c->lib_[1];
        fn((wsched_ctx *)(void *)&child, arg);
        if (child.h.priv | child.h.spawned_) /* returned with children unjoined */
            (void)(wsched_sync)((wsched_ctx *)(void *)&child);
        __atomic_store_n(&q->ran, q->ran + 1, __ATOMIC_RELAXED);
    }
}

static inline int wsched__sync_inline(wsched_ctx *ctx)
{
    if (!ctx)
        return (wsched_sync)(ctx);
    wsched__sync_private(ctx);
    if (((struct wsched__ctx_head *)(void *)ctx)->spawned_)
        return (wsched_sync)(ctx); /* children on the deque */
    return 0;
}
/** @endcond */

#if !defined(WSCHED_NO_INLINE) && !defined(WSCHED_BUILDING)
#define wsched_spawn(ctx, fn, arg) wsched__spawn_inline((ctx), (fn), (arg))
#define wsched_sync(ctx) wsched__sync_inline(ctx)
#endif

/** Index of the worker running ctx (0..nworkers-1), or -EINVAL for NULL. */
WSCHED_API int wsched_ctx_worker(const wsched_ctx *ctx);

/** Index of the calling thread's worker in its pool, or -ESRCH when the
 * caller is not a worker of any pool. */
WSCHED_API int wsched_current_worker(void);

/* ------------------------------------------------------------ resilience */

/**
 * @defgroup resilience Resilience: downstreams and their policies
 * A downstream (a service the side jobs call: "the user service") is a
 * handle that many batches share, because retry budgets, circuit breakers
 * and rate limits only make sense across requests. A batch names it in
 * wsched_batch_desc.downstream; then every job of the batch goes through
 * the downstream's policies, in one fixed order, outer to inner:
 *
 *   batch deadline > single-flight > concurrency limit > rate limit
 *   > breaker > retries (with their budget) > hedge > the job's attempt
 *
 * so a job is limited and let through the breaker once, however many
 * attempts it makes, and every attempt starts before the batch deadline.
 * Failure policies see only a job's final outcome: fail-fast fires on a
 * non-retryable error or exhausted attempts, never on an attempt that is
 * retried; quorum counts final successes.
 *
 * Per downstream the state is a few words, changed by single CAS or RMW
 * operations (no lock); per job, 16 bytes next to its wait record. A
 * retry's backoff and a limiter's delay are timer waits: no thread sleeps.
 * Every decision is counted (wsched_downstream_get_stats) and is a USDT
 * probe. README, "Resilience", has each policy's semantics and an example.
 * @{
 */
typedef struct wsched_downstream wsched_downstream;

/** Backoff jitter (the AWS Architecture Blog's "Exponential Backoff And
 * Jitter"): with t = min(cap, base * 2^(k-1)) after the k-th failed
 * attempt, the delay is
 *   FULL          uniform in [0, t]          (the default)
 *   EQUAL         t/2 + uniform in [0, t/2]
 *   DECORRELATED  min(cap, uniform in [base, 3 * previous delay]),
 *                 the previous delay being base before the first retry
 *   NONE          t
 * Uniform draws come from splitmix64 (see wsched_backoff_ns). */
enum wsched_jitter {
    WSCHED_JITTER_FULL = 0,
    WSCHED_JITTER_EQUAL = 1,
    WSCHED_JITTER_DECORRELATED = 2,
    WSCHED_JITTER_NONE = 3,
};

/** Retries of a failed job (wsched_downstream_config.retry). */
typedef struct wsched_retry {
    /** Attempts in all, the first included: 0 or 1 = no retries; at most
     * 255. */
    unsigned max_attempts;
    unsigned jitter; /**< enum wsched_jitter */
    /** The backoff before jitter after the first failure: with retries,
     * 1 ns .. 1 hour. */
    uint64_t base_ns;
    /** The largest backoff; 0 = 1000 * base_ns; else base_ns .. 24 hours. */
    uint64_t cap_ns;
    /** The codes that are retried, 0-terminated; all zero = any failure
     * (every non-zero status but WSCHED_EEXCEPTION, WSCHED_EBREAKER and
     * WSCHED_ELIMITED). */
    int codes[8];
} wsched_retry;

/** A retry budget per downstream, gRPC's retry throttling: a bucket of
 * max_tokens tokens, full at start; every attempt that fails with a
 * retried code (wsched_retry.codes) takes 1, and every hedge; every
 * successful attempt gives back ratio_milli / 1000 (at most up to full). A
 * retry is allowed only while more than half of max_tokens is left;
 * otherwise the job ends at once with its last error (never waits). */
typedef struct wsched_retry_budget {
    unsigned max_tokens;  /**< 0 = no budget (retries limited by max_attempts only); <= 10^6 */
    unsigned ratio_milli; /**< tokens per success, in thousandths (100 = 0.1); <= 10^6 */
} wsched_retry_budget;

/** A circuit breaker per downstream. Closed: outcomes are counted in a
 * tumbling window (window_ns of time, or window_calls calls when
 * window_ns is 0: a full count window is closed by the next failure, which
 * starts the next one; counted per worker and summed on each failure, so
 * a success writes no shared line); it opens when, in one window, failures reach
 * failure_count, or when failures reach failure_rate_pct percent of at
 * least min_calls calls of a sliding window of the same length (the
 * current window plus the share of the one before that the sliding window
 * still holds: a window that has just begun does not decide on its first
 * few calls alone). Open: jobs end with WSCHED_EBREAKER, unstarted; after
 * open_ns the next job moves it to half-open. Half-open: at most
 * trials jobs in flight at once; `trials` successes close it, one failure
 * opens it again. After closing, for ramp_ns (0 = no ramp) the share of
 * jobs let through grows linearly from 0 to all, so that a recovered
 * downstream is not stampeded. A failure is any non-zero final status but
 * the ignored codes; a job cancelled, timed out or ignored returns its
 * permit without counting. Times have a resolution of 2^20 ns (~1 ms). */
typedef struct wsched_breaker {
    unsigned failure_rate_pct; /**< 1..100; 0 = no rate rule */
    unsigned failure_count;    /**< 0 = no count rule (both 0: no breaker); <= 2^23 */
    unsigned min_calls;        /**< calls a window needs for the rate rule; 0 = 1 */
    unsigned window_calls;     /**< a count window (window_ns 0), 1..2^23; 0 = 100 */
    uint64_t window_ns;        /**< a time window, <= 1 hour; 0 = count window */
    uint64_t open_ns;          /**< open -> half-open; >= 1 ms, <= 1 hour */
    unsigned trials;           /**< half-open permits, 1..255; 0 = 1 */
    unsigned reserved0;        /**< must be 0 */
    uint64_t ramp_ns;          /**< after closing; <= 1 hour */
    int ignore_codes[8];       /**< final statuses that count neither way, 0-terminated */
} wsched_breaker;

/** Rate-limit modes. */
enum wsched_limit_mode {
    WSCHED_LIMIT_REJECT = 0, /**< no room: the job ends with WSCHED_ELIMITED */
    WSCHED_LIMIT_DELAY = 1,  /**< no room: the job waits (a timer) for its turn */
};

/** A rate limit per downstream: GCRA (the generic cell rate algorithm),
 * one 64-bit theoretical-arrival-time word changed by one CAS. Jobs start
 * at rate_per_s on average, with bursts of up to `burst` at once. */
typedef struct wsched_rate_limit {
    uint64_t rate_per_s; /**< 0 = no limit; at most 10^9 */
    uint64_t burst;      /**< 0 = 1; <= 2^32 */
    unsigned mode;       /**< enum wsched_limit_mode */
    unsigned reserved0;  /**< must be 0 */
} wsched_rate_limit;

/** Hedged requests (wsched_downstream_config.hedge): "The Tail at
 * Scale". When an attempt has not finished delay_ns after it began, a
 * second attempt of the same job starts beside it (the job is called with
 * WSCHED_RESUME_HEDGE, its slot a zeroed scratch slot of its own; the
 * hedge's later resumptions, from the waits it arms, come with the waits'
 * kinds, as the primary's do: a job that needs to tell them apart keeps
 * that in its slot); the
 * first to succeed wins: its slot becomes the job's (the hedge's scratch
 * is copied into the job's slot once both have returned) and the other is
 * cancelled (wsched_cancelled answers 1; a wait it is pending on ends at
 * once with WSCHED_RESUME_CANCELLED, its return is discarded). A primary
 * that fails while its hedge runs is retried at once beside it, after its
 * backoff, when retries allow (a retryable code, an attempt left, the
 * budget, the deadline): the hedge may still win, and cancels the retry
 * then; the retry's success cancels the hedge (gRPC's hedging sends its
 * next attempt when one fails). wsched_attempt answers the round's attempt
 * in the hedge. If both fail, the later failure is the attempt's outcome
 * (then retries apply, to a new round).
 * The job is complete when both have returned. A hedge is started only
 * while the retry budget allows a retry, and takes one token.
 * With `percentile` (1..99) the delay adapts: it is that percentile of
 * the downstream's observed attempt latencies (the primary attempts of
 * hedged rounds; one cut short by a winning hedge counts with the time it
 * ran), from a histogram each worker fills (log2 buckets with 2 sub-steps:
 * the delay is a bucket's upper bound, within +50 % of the percentile),
 * recomputed every 256 attempts a worker observes, older ones halved at
 * each 8,192; until 64 attempts were observed the delay is delay_ns. */
typedef struct wsched_hedge {
    uint64_t delay_ns;   /**< 0 = no hedging; else the delay (or the first one), <= 1 hour */
    unsigned percentile; /**< 0 = a fixed delay; 1..99 = adaptive (needs delay_ns) */
    unsigned reserved0;  /**< must be 0 */
} wsched_hedge;

/** An adaptive concurrency limit per downstream (the shared form of
 * max_parallel, across batches): at most `limit` of its jobs are in
 * flight at once, from their first attempt to their end (waits, retries
 * and hedges included); a job that finds it full ends at once with
 * WSCHED_ELIMITED (dead letter WSCHED_DEAD_SHED). The limit adapts by
 * AIMD, as TCP's window: each job that succeeds within latency_ns adds
 * 1/limit to it (so one per limit jobs: additive), each that fails or is
 * slower multiplies it by 0.9 (multiplicative), within [min_limit,
 * max_limit]. A cancelled job changes nothing. */
typedef struct wsched_concurrency {
    unsigned initial;    /**< 0 = no limit; else the first limit */
    unsigned min_limit;  /**< 0 = 1; <= initial */
    unsigned max_limit;  /**< 0 = 1,000,000; >= initial, <= 1,000,000 */
    unsigned reserved0;  /**< must be 0 */
    uint64_t latency_ns; /**< slower than this counts as congestion; 0 = failures only; <= 1 hour */
} wsched_concurrency;

/** Why a job was dead-lettered. */
enum wsched_dead_reason {
    WSCHED_DEAD_EXHAUSTED = 1, /**< its last allowed attempt failed with a retryable code */
    WSCHED_DEAD_BUDGET = 2,    /**< a retry was denied by the retry budget */
    WSCHED_DEAD_DEADLINE = 3,  /**< its next attempt could not begin before the batch deadline */
    WSCHED_DEAD_BREAKER = 4,   /**< rejected by the breaker (WSCHED_EBREAKER) */
    WSCHED_DEAD_LIMITED = 5,   /**< rejected by the rate limit (WSCHED_ELIMITED) */
    WSCHED_DEAD_SHED = 6,      /**< the concurrency limit was full (WSCHED_ELIMITED) */
};

/** A dead letter: a job the downstream's policies gave up on. */
typedef struct wsched_dead_letter {
    const wsched_batch *batch; /**< valid while the caller holds the batch */
    void *arg;                 /**< the batch's arg */
    size_t index;
    int status;        /**< the job's final status */
    unsigned attempts; /**< attempts made (0: rejected before the first) */
    unsigned reason;   /**< enum wsched_dead_reason */
    unsigned reserved0;
    wsched_downstream *downstream;
} wsched_dead_letter;

/** Downstream configuration: zero-initialise, then set what you need. */
typedef struct wsched_downstream_config {
    const char *name; /**< copied; NULL = "" */
    wsched_retry retry;
    wsched_retry_budget budget;
    wsched_breaker breaker;
    wsched_rate_limit limit;
    wsched_concurrency concurrency;
    wsched_hedge hedge;
    /** Called once per dead-lettered job, on the worker that decided it,
     * before the job's slot is final: it must not block or call
     * wsched_wait on that batch. NULL = the dead-letter ring. */
    void (*dead_letter)(void *ctx, const wsched_dead_letter *dl);
    void *dead_letter_ctx;
    /** Entries of the ring kept without a hook (a power of two, 2..2^20;
     * 0 = 1024; checked with a hook too): full, the newest letters are
     * dropped and counted. */
    unsigned ring_size;
    unsigned reserved0;
    /** Seed of the jitter draws; 0 = one from the clock. The draw for job
     * i's k-th retry is the first splitmix64 output after state
     * seed ^ (i * 0x9E3779B97F4A7C15) ^ (k << 56). */
    uint64_t seed;
    /** The clock of the breaker and the rate limit (a fake one in tests);
     * NULL = wsched_now_ns. Timers (backoff, delay) and the deadline
     * cut-off always use CLOCK_MONOTONIC, the batch deadline's clock. */
    uint64_t (*clock)(void *ctx);
    void *clock_ctx;
    /** Keyed de-duplication (single-flight): job index of a batch (arg its
     * batch's arg) carries key flight_key(flight_ctx, arg, index), 0 =
     * none. A job whose key is in flight (another job of any batch naming
     * this downstream runs it) joins that flight instead of running: it
     * waits (no thread), and when the flight ends it gets a copy of the
     * leader's slot (slot_size bytes: a job of another slot size runs on
     * its own) and the leader's final status, attempts 0. A joiner's own
     * cancellation or deadline detaches it alone. A leader whose own batch
     * is cancelled (or reaches its deadline, or its pool is destroyed)
     * hands the flight to a joiner still waiting, which then runs the job
     * itself; the flight ends without a result only when no joiner is
     * left. One execution per key at a time, except that a job runs
     * unshared when it cannot wait (the pool is being destroyed, or no
     * memory for its wait). NULL = no de-duplication. */
    uint64_t (*flight_key)(void *ctx, void *arg, size_t index);
    void *flight_ctx;
    /** The downstream's memory (the handle, the ring, the latency
     * histogram, flight nodes; liburcu allocates the flight table itself);
     * NULL = malloc. */
    const wsched_allocator *allocator;
    /** Per-attempt timeout (0 = none; at most 1 hour): an attempt, the
     * primary or a hedge, that has not ended attempt_timeout_ns after it
     * began is cut: a wait it is pending on, or the next one it arms, ends
     * then with WSCHED_RESUME_CANCELLED (its cleanup call, whose return is
     * discarded), wsched_cancelled answers 1 from then on, and the attempt
     * fails with -ETIMEDOUT, which retries then treat as any code (retried
     * if `retry.codes` lists it or is all zero). The cut acts through the
     * attempt's sleeps, waker and fd waits: an attempt that computes
     * without waiting ends with its own result. Its own waits' deadlines
     * earlier than the cut work as before (WSCHED_RESUME_TIMEDOUT). */
    uint64_t attempt_timeout_ns;
    void *reserved[2]; /**< must be NULL */
} wsched_downstream_config;

/** Create a downstream. -EINVAL for a NULL out or cfg, a reserved field
 * set or a value out of the documented ranges, -ENOMEM. */
WSCHED_API int wsched_downstream_create(wsched_downstream **out,
                                        const wsched_downstream_config *cfg);
/** Free it: -EBUSY while a submitted batch that names it is not complete
 * (every job returned), -EINVAL for NULL. Letters left in the ring are
 * dropped. The handle itself stays behind as a tombstone (a few words, as
 * a pool's): every call that takes it from then on, wsched_submit and
 * wsched_reserve of a batch naming it included, answers -EBADF; a pointer
 * that was never a downstream's handle answers -EINVAL. */
WSCHED_API int wsched_downstream_destroy(wsched_downstream *ds);

/** Breaker states (wsched_breaker_state). */
enum wsched_breaker_state {
    WSCHED_BREAKER_CLOSED = 0,
    WSCHED_BREAKER_OPEN = 1,
    WSCHED_BREAKER_HALF_OPEN = 2,
};
/** The breaker's state now (an open one whose open_ns passed stays OPEN
 * until a job asks), or -EINVAL. */
WSCHED_API int wsched_breaker_state(const wsched_downstream *ds);

/** Counters of a downstream's decisions, since it was created. */
typedef struct wsched_downstream_stats {
    uint64_t jobs;            /**< jobs that reached the policies */
    uint64_t attempts;        /**< attempts started */
    uint64_t retries;         /**< retries scheduled (a backoff begun) */
    uint64_t budget_denied;   /**< retries refused by the budget */
    uint64_t deadline_cut;    /**< retries refused: could not begin before the deadline */
    uint64_t exhausted;       /**< jobs whose last allowed attempt failed, retryably */
    uint64_t breaker_rejected;
    uint64_t breaker_opened;    /**< transitions to open */
    uint64_t breaker_half_opened;
    uint64_t breaker_closed;
    uint64_t limited;         /**< rejected by the rate limit */
    uint64_t delayed;         /**< delayed by the rate limit */
    uint64_t dead_letters;    /**< letters given to the hook or the ring */
    uint64_t dead_dropped;    /**< letters dropped: the ring was full */
    uint64_t hedges;          /**< hedges started */
    uint64_t hedge_wins;      /**< jobs whose hedge succeeded first */
    uint64_t hedges_denied;   /**< hedges not started: the budget said no */
    uint64_t hedge_delay_ns;  /**< the hedge delay now (adaptive: the percentile observed) */
    uint64_t shed;            /**< jobs the concurrency limit turned away */
    uint64_t concurrency_limit; /**< the adaptive limit now (0: none) */
    uint64_t in_flight;       /**< its jobs in flight now */
    uint64_t flights;         /**< flights led (single-flight) */
    uint64_t joined;          /**< jobs that joined a flight instead of running */
    uint64_t flight_handovers; /**< flights handed to a joiner: their leader was cancelled */
    int64_t budget_milli;     /**< the budget's tokens now, in thousandths */
    uint64_t attempt_timeouts; /**< attempts cut by attempt_timeout_ns */
} wsched_downstream_stats;

/** Snapshot the counters (relaxed loads; pass sizeof *out). 0, -EINVAL. */
WSCHED_API int wsched_downstream_get_stats(const wsched_downstream *ds,
                                           wsched_downstream_stats *out, size_t size);

/** Take up to n dead letters from the ring (none are kept with a hook),
 * oldest first: returns how many were written, or -EINVAL. From any
 * thread, lock-free. */
WSCHED_API int wsched_dead_letters_drain(wsched_downstream *ds, wsched_dead_letter *out,
                                         size_t n);

/** Attempts job i made (0: rejected before its first, or not started),
 * or -EINVAL (NULL, index out of range, a batch without downstream).
 * Final once the batch is complete. */
WSCHED_API int wsched_batch_attempts(const wsched_batch *batch, size_t i);

/** The running call's attempt, 1 for the first; 1 in a job without a
 * downstream; -EINVAL for a NULL ctx. */
WSCHED_API int wsched_attempt(const wsched_ctx *ctx);

/**
 * The backoff after the k-th failed attempt (k >= 1), as the downstream
 * computes it: jitter per r->jitter from one splitmix64 draw of *rng
 * (advanced), prev_ns the previous delay (DECORRELATED; 0 before the first
 * retry). A uniform draw in [lo, hi] is lo + ((x * (hi - lo + 1)) >> 64)
 * for the 64-bit output x. 0 for a NULL r or rng.
 */
WSCHED_API uint64_t wsched_backoff_ns(const wsched_retry *r, unsigned k, uint64_t prev_ns,
                                      uint64_t *rng);

/**
 * The policies by hand, for calls made outside batches (or to test them):
 * wsched_breaker_acquire asks the breaker for a permit (0, or
 * WSCHED_EBREAKER: then no permit is held); wsched_breaker_release returns
 * it with the call's final status, exactly once per permit (a status in
 * the ignored codes, WSCHED_ECANCELLED or WSCHED_EDEADLINE counts neither
 * way). The permit word ties the outcome to the breaker's state when it
 * was taken: an outcome of an older state changes nothing.
 * wsched_limit_acquire takes a turn of the rate limit at `now_ns` (the
 * downstream's clock when 0): 0 = go now; in DELAY mode, a positive number
 * of ns to wait before going (the turn is taken); WSCHED_ELIMITED = no room
 * (REJECT mode, or a delay past `max_delay_ns`, when not 0).
 */
typedef uint64_t wsched_permit;
/**
 * The retry decision by hand (the one the job path makes): attempt
 * `attempt` (1 = the first) of a call with key `key` (a job's index in
 * the job path: it seeds the jitter draw) ended with `status`. The budget
 * learns the outcome; then 0 = retry after *delay_ns (counted in
 * `retries`), or the reason not to: WSCHED_DEAD_EXHAUSTED, _BUDGET or
 * _DEADLINE (now + delay would not be before deadline_ns; 0 = none), or
 * -ENOENT when there is nothing to retry (a success, a code not retried).
 * *prev_delay_ns is the caller's state between attempts (0 before the
 * first retry). -EINVAL for NULL pointers or attempt 0. No dead letter
 * is given: that is the caller's to do.
 */
WSCHED_API int wsched_retry_decide(wsched_downstream *ds, uint64_t key, unsigned attempt,
                                   int status, uint64_t deadline_ns, uint64_t *prev_delay_ns,
                                   uint64_t *delay_ns);
/** Would the retry budget let a retry (or a hedge) go now: 1 or 0, -EINVAL. */
WSCHED_API int wsched_budget_allows(const wsched_downstream *ds);
WSCHED_API int wsched_breaker_acquire(wsched_downstream *ds, wsched_permit *permit);
WSCHED_API int wsched_breaker_release(wsched_downstream *ds, wsched_permit permit, int status);
WSCHED_API int64_t wsched_limit_acquire(wsched_downstream *ds, uint64_t now_ns,
                                        uint64_t max_delay_ns);
/** @} */

/* --------------------------------------------------------- observability */

/** Counters of one worker since the pool started. */
typedef struct wsched_worker_stats {
    uint64_t jobs;        /**< batch jobs run */
    uint64_t tasks;       /**< spawned tasks run */
    uint64_t steals;      /**< work taken from another worker (deque or inbox) */
    uint64_t steal_fails; /**< passes over all other workers that found nothing */
    uint64_t parks;       /**< times the worker went to sleep */
    uint64_t wakeups;     /**< times it was woken */
    uint64_t busy_ns;     /**< time between finding work and searching/parking again */
} wsched_worker_stats;

/** The downstream decisions (see wsched_downstream_stats, whose counters
 * these are) made on a pool's workers, summed over every downstream: the
 * job path of its batches, and by-hand calls (wsched_breaker_acquire, ...)
 * made from its jobs. */
typedef struct wsched_resilience_stats {
    uint64_t jobs;             /**< jobs that reached a downstream's policies */
    uint64_t retries;          /**< retries scheduled */
    uint64_t budget_denied;    /**< retries refused by a budget */
    uint64_t deadline_cut;     /**< retries refused by the deadline */
    uint64_t exhausted;        /**< jobs whose last allowed attempt failed */
    uint64_t breaker_rejected; /**< jobs rejected by an open breaker */
    uint64_t breaker_opened;   /**< breaker transitions, by the new state */
    uint64_t breaker_half_opened;
    uint64_t breaker_closed;
    uint64_t limited;          /**< rejected by a rate limit */
    uint64_t delayed;          /**< delayed by a rate limit */
    uint64_t dead_letters;     /**< letters given to a hook or a ring */
    uint64_t dead_dropped;     /**< letters dropped: a ring was full */
    uint64_t hedges;           /**< hedges started */
    uint64_t hedge_wins;       /**< jobs whose hedge succeeded first */
    uint64_t hedges_denied;    /**< hedges the budget refused */
    uint64_t flights;          /**< flights led */
    uint64_t joined;           /**< jobs that joined a flight */
    uint64_t flight_handovers; /**< flights handed to a joiner */
    uint64_t shed;             /**< jobs a concurrency limit turned away */
    uint64_t attempt_timeouts; /**< attempts cut by their downstream's attempt_timeout_ns */
    uint64_t attempts;         /**< attempts started */
} wsched_resilience_stats;

/** A pool's gauges now, and its workers' counters summed. */
typedef struct wsched_pool_stats {
    unsigned nworkers;
    /** Gauges: parked + searching + running == nworkers in every snapshot.
     * A worker on its way to sleep counts as parked from the moment it
     * announces it; one being woken counts as searching. */
    unsigned parked;    /**< workers asleep (or about to be) now */
    unsigned searching; /**< workers looking for work now */
    unsigned running;   /**< nworkers - parked - searching */
    uint64_t queued;    /**< batches in inboxes + task records in deques, now */
    /** Batches accepted and not complete (a batch whose wsched_submit has
     * not returned counts twice). */
    uint64_t inflight;
    wsched_worker_stats total; /**< sum over workers */
    /** Calls the pool made to its allocator since it was created (batch
     * memory, deque growth, wait cells, start-up): in steady state a
     * request should add none (the batch cache serves it). */
    uint64_t allocs;
    /** The downstream decisions made on the pool's workers. Added after
     * the first version of this struct: a caller built against that one
     * passes its smaller size and gets the fields before this one. */
    wsched_resilience_stats resilience;
} wsched_pool_stats;

/**
 * Snapshot the pool's gauges and summed counters into *out, of `size`
 * bytes (pass sizeof *out), without stopping it: relaxed loads of counters
 * that only their worker writes, so each figure is exact when read but the
 * whole is not one instant. Cost: O(nworkers) loads. Not to be called
 * concurrently with wsched_pool_destroy. Returns 0, -EINVAL (NULL, or a
 * size smaller than this version's first wsched_pool_stats) or -EBADF.
 */
WSCHED_API int wsched_pool_get_stats(wsched_pool *pool, wsched_pool_stats *out, size_t size);

/**
 * Per-worker counters: out[i] for workers 0..min(n, nworkers)-1, each of
 * `size` bytes (pass sizeof *out). Returns the number of entries written,
 * or a negative code as wsched_pool_get_stats.
 */
WSCHED_API int wsched_worker_get_stats(wsched_pool *pool, wsched_worker_stats *out,
                                       unsigned n, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* WSCHED_H */
