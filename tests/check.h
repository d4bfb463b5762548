/*
 * The test harness: typed checks that print both values and stop the test,
 * and a watchdog that fails a test instead of letting it hang CI; the gate
 * that holds jobs until the test opens it, the jobs several tests run (a
 * stamp of the order, the checked fib task), and the numeric settings of
 * test programs. Each test is its own process (ctest runs them with a
 * timeout too). What the tests share with bench/ and tools/ (the empty job,
 * the fib shape, clocks, spinning, parsing) is in common.h, included here.
 */
#ifndef WSCHED_CHECK_H
#define WSCHED_CHECK_H

#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "wsched.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long va_ = (long long)(a), vb_ = (long long)(b);                  \
        if (va_ != vb_) {                                                      \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n",  \
                    __FILE__, __LINE__, #a, #b, va_, vb_);                     \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* A wsched call that must return 0. */
#define CHECK_OK(expr)                                                         \
    do {                                                                       \
        int r_ = (expr);                                                       \
        if (r_ != 0) {                                                         \
            fprintf(stderr, "%s:%d: %s returned %d (%s)\n", __FILE__, __LINE__, \
                    #expr, r_, wsched_strerror(r_));                           \
            abort();                                                           \
        }                                                                      \
    } while (0)

static void check_watchdog_fire_(int sig)
{
    (void)sig;
    static const char msg[] = "watchdog: test did not finish in time (hang?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

/* How much slower this build runs the tests: WSCHED_TEST_SLOW (set by
 * tests/CMakeLists.txt, 3 for ASan, 8 for TSan), 1 when unset or not a
 * count. */
static inline long check_slow(void)
{
    long k;
    return common_parse_long(getenv("WSCHED_TEST_SLOW"), 1, 1000, &k) == 0 ? k : 1;
}

/* Fail the test if it runs longer than `seconds` (scaled by check_slow()
 * for sanitizer builds). */
static inline void check_watchdog(unsigned seconds)
{
    seconds *= (unsigned)check_slow();
    signal(SIGALRM, check_watchdog_fire_);
    alarm(seconds);
}

/* Job i's status (the call itself must succeed). */
static inline int check_status(const wsched_batch *b, size_t i)
{
    int st = 0x7fffffff;
    int r = wsched_batch_status(b, i, &st);
    if (r) {
        fprintf(stderr, "wsched_batch_status(%zu): %s\n", i, wsched_strerror(r));
        abort();
    }
    return st;
}

/* Jobs whose status is not 0 (failed, cancelled, timed out, unfinished). */
static inline size_t check_not_ok(const wsched_batch *b)
{
    wsched_outcome o;
    int r = wsched_batch_outcome(b, &o, sizeof o);
    if (r) {
        fprintf(stderr, "wsched_batch_outcome: %s\n", wsched_strerror(r));
        abort();
    }
    return wsched_batch_size(b) - o.ok;
}

/* The batch is complete and ended as `end` with first error `first`. */
#define CHECK_END(b, end_, first_)                                             \
    do {                                                                       \
        wsched_outcome o_;                                                     \
        CHECK_OK(wsched_batch_outcome((b), &o_, sizeof o_));                   \
        CHECK_EQ(o_.end, (end_));                                              \
        CHECK_EQ(o_.first_error, (first_));                                    \
    } while (0)

/* An allocator for failure injection (wsched_allocator, ctx = a struct
 * check_failing): call k (counted from 0 in `count`) and every later one
 * fails when fail_at is k >= 0, as does every request over `fail_over`
 * bytes when that is set; `live` counts the blocks not freed. */
struct check_failing {
    _Atomic long fail_at, count, live, fail_over;
};
static void *check_failing_alloc(void *ctx, size_t size, size_t align)
{
    struct check_failing *f = ctx;
    long k = atomic_fetch_add(&f->count, 1), at = atomic_load(&f->fail_at);
    long over = atomic_load(&f->fail_over);
    if ((at >= 0 && k >= at) || (over && size > (size_t)over))
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size))
        return NULL;
    atomic_fetch_add(&f->live, 1);
    return p;
}
static void check_failing_free(void *ctx, void *p, size_t size, size_t align)
{
    (void)size, (void)align;
    struct check_failing *f = ctx;
    atomic_fetch_sub(&f->live, 1);
    free(p);
}
#define CHECK_FAILING_INIT {-1, 0, 0, 0}
static inline wsched_allocator check_failing_allocator(struct check_failing *f)
{
    return (wsched_allocator){check_failing_alloc, check_failing_free, f};
}

/* A pool of `workers` workers (default configuration otherwise). */
static inline wsched_pool *check_pool(unsigned workers)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = workers;
    wsched_pool *pool = NULL;
    int r = wsched_pool_create(&pool, &cfg);
    if (r) {
        fprintf(stderr, "wsched_pool_create(%u workers): %s\n", workers, wsched_strerror(r));
        abort();
    }
    return pool;
}

/*
 * A gate that jobs wait at until the test opens it: a batch with
 * fn = check_gate_job and arg = the gate holds its workers (each job first
 * counts itself in `entered`; with `blocking` set it calls wsched_blocking
 * first, so the rest of its range is stealable at once). A job that does
 * more than wait (only some indices held, a slot written after) calls
 * check_gate_pass itself. A static gate starts shut.
 */
struct check_gate {
    _Atomic int open, entered;
    int blocking;
};

/* Count in at the gate, then hold until it opens. */
static inline void check_gate_pass(struct check_gate *g)
{
    atomic_fetch_add(&g->entered, 1);
    while (!atomic_load(&g->open))
        sched_yield();
}

static inline int check_gate_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    struct check_gate *g = arg;
    if (g->blocking)
        wsched_blocking(ctx);
    check_gate_pass(g);
    return 0;
}

/* Until n jobs are held at the gate. */
static inline void check_gate_await(struct check_gate *g, int n)
{
    while (atomic_load(&g->entered) < n)
        sched_yield();
}

static inline void check_gate_open(struct check_gate *g) { atomic_store(&g->open, 1); }

static inline void check_gate_reset(struct check_gate *g, int blocking)
{
    atomic_store(&g->open, 0);
    atomic_store(&g->entered, 0);
    g->blocking = blocking;
}

/* Stamps the order jobs run in: writes the next number of the counter at arg
 * (an _Atomic int) to its int slot. */
static inline int check_stamp_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i;
    *(int *)slot = atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* fib(n) with every call a task (spawn one half, run the other, sync):
 * common.h's fib task, with every wsched_spawn and wsched_sync checked. Its
 * arg is a struct common_fib {n, r}. */
static inline COMMON_DEFINE_FIB_TASK(check_fib_task, CHECK_OK)

/* Scale iteration counts down in sanitizer builds (WSCHED_TEST_SLOW=k). */
static inline long check_scale(long n)
{
    long k = check_slow();
    return k > 1 ? (n / k > 0 ? n / k : 1) : n;
}

/*
 * A numeric setting of a test program: argv[i] when given (i < 0: no
 * argument, the environment only), else the environment variable env, else
 * dflt. A value that is not an integer in [lo, hi] ends the program (exit
 * status 2) with a message that names the setting.
 */
static inline long check_setting(int argc, char **argv, int i, const char *env, long lo,
                                 long hi, long dflt)
{
    const char *v = i >= 0 && i < argc ? argv[i] : getenv(env);
    long x;
    if (!v || !*v)
        return dflt;
    if (common_parse_long(v, lo, hi, &x) != 0) {
        fprintf(stderr, "%s: bad value '%s' for %s (an integer in %ld..%ld)\n", argv[0], v,
                env, lo, hi);
        exit(2);
    }
    return x;
}

#endif
