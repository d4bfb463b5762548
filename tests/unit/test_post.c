/* Single jobs in caller records (wsched_post): exactly once from many
 * threads, statuses, bad input and the record's states, posts from inside
 * (deque) waited for by helping, an outside post waited for from inside a
 * one-worker pool, fork-join inside a posted job, admission units,
 * shutdown, no allocation, runs of posts stay stealable, destroy drains
 * posts nobody waited for. */
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"

#define THREADS 4
#define PER_THREAD 20000
#define WINDOW 256

struct item {
    _Atomic unsigned *seen; /* seen[id]: times job id ran */
    size_t id;
};

/* Runs once per post: counts itself, returns a code from its id. */
static int count_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    CHECK(ctx != NULL);
    CHECK_EQ(i, 0);
    CHECK(slot == NULL);
    CHECK_EQ(wsched_cancelled(ctx), 0);
    struct item *it = arg;
    atomic_fetch_add_explicit(&it->seen[it->id], 1, memory_order_relaxed);
    return -(int)(it->id % 5);
}

struct poster {
    wsched_pool *pool;
    _Atomic unsigned *seen;
    size_t base;
};

static void *poster_main(void *arg)
{
    struct poster *ps = arg;
    static _Thread_local struct {
        alignas(64) wsched_job job;
        struct item it;
        int posted;
    } ring[WINDOW];
    for (size_t k = 0; k < PER_THREAD + WINDOW; k++) {
        size_t r = k % WINDOW;
        if (ring[r].posted) {
            CHECK_OK(wsched_job_wait(&ring[r].job, -1));
            int st = 1;
            CHECK_OK(wsched_job_status(&ring[r].job, &st));
            CHECK_EQ(st, -(int)(ring[r].it.id % 5));
            CHECK_EQ(atomic_load(&ps->seen[ring[r].it.id]), 1);
            ring[r].posted = 0;
        }
        if (k < PER_THREAD) {
            ring[r].it = (struct item){ps->seen, ps->base + k};
            CHECK_OK(wsched_post(ps->pool, &ring[r].job, count_job, &ring[r].it));
            ring[r].posted = 1;
        }
    }
    return NULL;
}

/* Many threads post windowed, every job runs exactly once with its status;
 * no allocation on the way (the pool's allocator count). */
static void test_exactly_once(unsigned workers)
{
    wsched_pool *pool = check_pool(workers);
    _Atomic unsigned *seen = calloc(THREADS * PER_THREAD, sizeof *seen);
    CHECK(seen);
    wsched_pool_stats s0, s1;
    CHECK_OK(wsched_pool_get_stats(pool, &s0, sizeof s0));
    pthread_t t[THREADS];
    struct poster ps[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ps[i] = (struct poster){pool, seen, (size_t)i * PER_THREAD};
        CHECK_EQ(pthread_create(&t[i], NULL, poster_main, &ps[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_OK(wsched_pool_get_stats(pool, &s1, sizeof s1));
    for (size_t i = 0; i < THREADS * PER_THREAD; i++)
        CHECK_EQ(atomic_load(&seen[i]), 1);
    CHECK_EQ(s1.allocs - s0.allocs, 0);
    CHECK(s1.total.jobs - s0.total.jobs >= THREADS * PER_THREAD);
    CHECK_OK(wsched_pool_destroy(pool));
    free(seen);
}

static int nop_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    return 0;
}

static int code_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    return *(int *)arg;
}

/* Bad input and the record's states: never posted, pending, done. */
static void test_bad_input(void)
{
    wsched_pool *pool = check_pool(2);
    wsched_job job = WSCHED_JOB_INIT, fresh = WSCHED_JOB_INIT;
    int st = 7;
    CHECK_EQ(wsched_post(NULL, &job, nop_job, NULL), -EINVAL);
    CHECK_EQ(wsched_post(pool, NULL, nop_job, NULL), -EINVAL);
    CHECK_EQ(wsched_post(pool, &job, NULL, NULL), -EINVAL);
    CHECK_EQ(wsched_job_wait(NULL, -1), -EINVAL);
    CHECK_EQ(wsched_job_wait(&fresh, -1), -EINVAL); /* never posted */
    CHECK_EQ(wsched_job_status(&fresh, &st), -EINVAL);
    CHECK_EQ(wsched_job_status(NULL, &st), -EINVAL);
    CHECK_EQ(st, 7);

    /* Pending: a second post is refused, status busy, polls time out. */
    struct check_gate g = {0};
    CHECK_OK(wsched_post(pool, &job, check_gate_job, &g));
    check_gate_await(&g, 1);
    CHECK_EQ(wsched_post(pool, &job, nop_job, NULL), -EBUSY);
    CHECK_EQ(wsched_job_status(&job, &st), -EBUSY);
    CHECK_EQ(wsched_job_wait(&job, 0), -ETIMEDOUT);
    CHECK_EQ(wsched_job_wait(&job, 1000000), -ETIMEDOUT); /* 1 ms */
    check_gate_open(&g);
    CHECK_OK(wsched_job_wait(&job, -1));
    CHECK_OK(wsched_job_status(&job, &st));
    CHECK_EQ(st, 0);
    CHECK_OK(wsched_job_wait(&job, 0)); /* done stays done */
    CHECK_EQ(wsched_job_status(&job, NULL), -EINVAL);

    /* The record is reusable once waited for; codes as for batch jobs. */
    int code = -42;
    CHECK_OK(wsched_post(pool, &job, code_job, &code));
    CHECK_OK(wsched_job_wait(&job, -1));
    CHECK_OK(wsched_job_status(&job, &st));
    CHECK_EQ(st, -42);
    code = WSCHED_ERRBASE; /* a library code: mapped */
    CHECK_OK(wsched_post(pool, &job, code_job, &code));
    CHECK_OK(wsched_job_wait(&job, -1));
    CHECK_OK(wsched_job_status(&job, &st));
    CHECK_EQ(st, WSCHED_EJOBCODE);

    /* Use after destroy: the handle is a tombstone. */
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(wsched_post(pool, &fresh, nop_job, NULL), -EBADF);
    CHECK_EQ(wsched_job_wait(&fresh, 0), -EINVAL);
    CHECK_OK(wsched_job_status(&job, &st)); /* a done record outlives its pool */
    CHECK_EQ(st, WSCHED_EJOBCODE);
}

/* A posted job posts children from inside (its worker's deque) and waits
 * for each: on one worker only helping can run them. */
#define CHILDREN 64
struct parent {
    wsched_pool *pool;
    _Atomic unsigned *seen;
};
static int parent_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    struct parent *pa = arg;
    wsched_job kids[CHILDREN];
    struct item its[CHILDREN];
    for (size_t k = 0; k < CHILDREN; k++) {
        kids[k] = (wsched_job)WSCHED_JOB_INIT;
        its[k] = (struct item){pa->seen, k};
        CHECK_OK(wsched_post(pa->pool, &kids[k], count_job, &its[k]));
    }
    for (size_t k = CHILDREN; k-- > 0;) {
        CHECK_OK(wsched_job_wait(&kids[k], -1));
        int st;
        CHECK_OK(wsched_job_status(&kids[k], &st));
        CHECK_EQ(st, -(int)(k % 5));
    }
    return 0;
}

static void test_nested(unsigned workers)
{
    wsched_pool *pool = check_pool(workers);
    _Atomic unsigned seen[CHILDREN] = {0};
    struct parent pa = {pool, seen};
    wsched_job job = WSCHED_JOB_INIT;
    CHECK_OK(wsched_post(pool, &job, parent_job, &pa));
    CHECK_OK(wsched_job_wait(&job, -1));
    for (size_t k = 0; k < CHILDREN; k++)
        CHECK_EQ(atomic_load(&seen[k]), 1);
    CHECK_OK(wsched_pool_destroy(pool));
}

/* On a one-worker pool, a running job waits for a job posted from outside
 * after it started: it sits in an inbox, and only the waiting worker can
 * start it (the record's `queued` lets it). */
struct cross {
    wsched_job other;
    _Atomic int started, posted;
    _Atomic unsigned ran;
};
static int other_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    atomic_fetch_add(&((struct cross *)arg)->ran, 1);
    return 3;
}
static int waiter_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    struct cross *c = arg;
    atomic_store(&c->started, 1);
    while (!atomic_load(&c->posted))
        sched_yield();
    CHECK_OK(wsched_job_wait(&c->other, -1));
    CHECK_EQ(atomic_load(&c->ran), 1);
    return 0;
}
static void test_wait_inside(void)
{
    wsched_pool *pool = check_pool(1);
    static struct cross c;
    c.other = (wsched_job)WSCHED_JOB_INIT;
    wsched_job w = WSCHED_JOB_INIT;
    CHECK_OK(wsched_post(pool, &w, waiter_job, &c));
    while (!atomic_load(&c.started))
        sched_yield();
    CHECK_OK(wsched_post(pool, &c.other, other_job, &c));
    atomic_store(&c.posted, 1);
    CHECK_OK(wsched_job_wait(&w, -1));
    int st;
    CHECK_OK(wsched_job_status(&w, &st));
    CHECK_EQ(st, 0);
    CHECK_OK(wsched_job_status(&c.other, &st));
    CHECK_EQ(st, 3);
    CHECK_OK(wsched_pool_destroy(pool));
}

/* Fork-join inside a posted job. */
static COMMON_DEFINE_FIB_TASK(fib_task, COMMON_IGNORE)
static int fib_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    fib_task(ctx, arg);
    return 0;
}
static void test_forkjoin(unsigned workers)
{
    wsched_pool *pool = check_pool(workers);
    struct common_fib f = {20, 0};
    wsched_job job = WSCHED_JOB_INIT;
    CHECK_OK(wsched_post(pool, &job, fib_job, &f));
    CHECK_OK(wsched_job_wait(&job, -1));
    CHECK_EQ(f.r, 6765);
    CHECK_OK(wsched_pool_destroy(pool));
}

/* An outside post holds one unit of max_jobs until it returns. */
static void test_admission(void)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.max_jobs = 1;
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    struct check_gate g = {0};
    wsched_job job = WSCHED_JOB_INIT;
    CHECK_OK(wsched_post(pool, &job, check_gate_job, &g));
    check_gate_await(&g, 1);
    wsched_batch_desc d = {.fn = nop_job, .njobs = 1};
    wsched_batch *b;
    CHECK_EQ(wsched_submit_timed(pool, &d, &b, 0), -EBUSY); /* the post holds it */
    check_gate_open(&g);
    CHECK_OK(wsched_job_wait(&job, -1));
    CHECK_OK(wsched_submit_timed(pool, &d, &b, 0)); /* given back before done */
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
}

/* Destroy runs every posted job first; a post while it drains is refused. */
struct destroyer {
    wsched_pool *pool;
    int r;
};
static void *destroy_main(void *arg)
{
    struct destroyer *d = arg;
    d->r = wsched_pool_destroy(d->pool);
    return NULL;
}
static void test_shutdown(void)
{
    wsched_pool *pool = check_pool(1);
    struct check_gate g = {0};
    enum { QUEUED = 100 };
    static wsched_job held, queued[QUEUED];
    static struct item its[QUEUED];
    static _Atomic unsigned seen[QUEUED];
    held = (wsched_job)WSCHED_JOB_INIT;
    CHECK_OK(wsched_post(pool, &held, check_gate_job, &g));
    check_gate_await(&g, 1);
    for (size_t k = 0; k < QUEUED; k++) { /* behind the held job: queued */
        its[k] = (struct item){seen, k};
        CHECK_OK(wsched_post(pool, &queued[k], count_job, &its[k]));
    }
    struct destroyer d = {pool, 1};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, destroy_main, &d), 0);
    /* Until destroy has begun: each probe that got in queues behind the
     * held job (the only worker), and the drain runs it. */
    enum { PROBES = 1 << 16 };
    static wsched_job probes[PROBES];
    size_t np = 0;
    int r;
    while ((r = wsched_post(pool, &probes[np], nop_job, NULL)) == 0) {
        CHECK(++np < PROBES);
        sched_yield();
    }
    CHECK_EQ(r, -ESHUTDOWN);
    check_gate_open(&g);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_OK(d.r);
    for (size_t k = 0; k < QUEUED; k++) {
        CHECK_OK(wsched_job_wait(&queued[k], 0));
        CHECK_EQ(atomic_load(&seen[k]), 1);
    }
    for (size_t k = 0; k < np; k++)
        CHECK_OK(wsched_job_wait(&probes[k], 0));
    CHECK_OK(wsched_job_wait(&held, 0));
    CHECK_EQ(wsched_post(pool, &probes[np], nop_job, NULL), -EBADF);
}

/* A post allocates nothing: it works with an allocator that fails every
 * call after the pool's creation. */
static void test_no_alloc(void)
{
    struct check_failing f = CHECK_FAILING_INIT;
    wsched_allocator a = check_failing_allocator(&f);
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.allocator = &a;
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    atomic_store(&f.fail_at, atomic_load(&f.count)); /* from now on */
    wsched_batch_desc d = {.fn = nop_job, .njobs = 1};
    wsched_batch *b;
    CHECK_EQ(wsched_submit(pool, &d, &b), -ENOMEM); /* a batch needs memory */
    alignas(64) wsched_job jobs[8] = {WSCHED_JOB_INIT};
    for (int round = 0; round < 100; round++) {
        for (int k = 0; k < 8; k++)
            CHECK_OK(wsched_post(pool, &jobs[k], nop_job, NULL));
        for (int k = 0; k < 8; k++)
            CHECK_OK(wsched_job_wait(&jobs[k], -1));
    }
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(atomic_load(&f.live), 0);
}

/* Runs of posts (inbox.h I5) stay stealable: two blockers hold both
 * workers while 7 posts queue; once released, whichever worker starts the
 * first post (which waits for the other six) may hold some of the others
 * on its deque, taken with it in one run: the other worker must steal
 * them, or this hangs (the watchdog fails it). */
struct run_gate {
    _Atomic unsigned started, release, ran;
};

static int blocker_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    struct run_gate *g = arg;
    atomic_fetch_add(&g->started, 1);
    while (!atomic_load(&g->release))
        sched_yield();
    return 0;
}

static int run_first_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    struct run_gate *g = arg;
    while (atomic_load(&g->ran) < 6) /* the others, run by the other worker */
        sched_yield();
    return 0;
}

static int run_rest_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    struct run_gate *g = arg;
    atomic_fetch_add(&g->ran, 1);
    return 0;
}

static void test_run_stealable(void)
{
    wsched_pool *pool = check_pool(2);
    for (int round = 0; round < 50; round++) {
        struct run_gate g = {0};
        alignas(64) wsched_job blockers[2] = {WSCHED_JOB_INIT, WSCHED_JOB_INIT};
        alignas(64) wsched_job jobs[7];
        for (int k = 0; k < 7; k++)
            jobs[k] = (wsched_job)WSCHED_JOB_INIT;
        for (int k = 0; k < 2; k++)
            CHECK_OK(wsched_post(pool, &blockers[k], blocker_job, &g));
        while (atomic_load(&g.started) < 2) /* both workers held */
            sched_yield();
        CHECK_OK(wsched_post(pool, &jobs[0], run_first_job, &g));
        for (int k = 1; k < 7; k++)
            CHECK_OK(wsched_post(pool, &jobs[k], run_rest_job, &g));
        atomic_store(&g.release, 1);
        for (int k = 0; k < 7; k++)
            CHECK_OK(wsched_job_wait(&jobs[k], -1));
        for (int k = 0; k < 2; k++)
            CHECK_OK(wsched_job_wait(&blockers[k], -1));
        CHECK_EQ(atomic_load(&g.ran), 6);
    }
    CHECK_OK(wsched_pool_destroy(pool));
}

/* Destroy right after posting, nothing waited for: it drains every post
 * (each exactly once), although the workers give their units back late
 * (pool.c H5: a worker that ran posts settles before it searches). */
static void test_destroy_drains(unsigned workers)
{
    enum { N = 20000 };
    _Atomic unsigned *seen = calloc(N, sizeof *seen);
    struct item *its = calloc(N, sizeof *its);
    wsched_job *jobs = aligned_alloc(64, N * sizeof *jobs);
    CHECK(seen && its && jobs);
    for (size_t k = 0; k < N; k++) {
        jobs[k] = (wsched_job)WSCHED_JOB_INIT;
        its[k] = (struct item){.seen = seen, .id = k};
    }
    for (int round = 0; round < 5; round++) {
        wsched_pool *pool = check_pool(workers);
        for (size_t k = 0; k < N; k++) {
            atomic_store(&seen[k], 0);
            jobs[k] = (wsched_job)WSCHED_JOB_INIT;
            CHECK_OK(wsched_post(pool, &jobs[k], count_job, &its[k]));
        }
        CHECK_OK(wsched_pool_destroy(pool));
        for (size_t k = 0; k < N; k++) {
            CHECK_EQ(atomic_load(&seen[k]), 1);
            int st = 1;
            CHECK_OK(wsched_job_status(&jobs[k], &st));
            CHECK_EQ(st, -(int)(k % 5));
        }
    }
    free(jobs);
    free(its);
    free((void *)seen);
}

int main(void)
{
    check_watchdog(120);
    test_bad_input();
    for (unsigned w = 1; w <= 4; w *= 2) {
        test_exactly_once(w);
        test_nested(w);
        test_forkjoin(w);
    }
    test_wait_inside();
    test_admission();
    test_shutdown();
    test_no_alloc();
    test_run_stealable();
    for (unsigned w = 1; w <= 4; w *= 2)
        test_destroy_drains(w);
    printf("test_post: ok\n");
    return 0;
}
