/*
 * What the tests, the benchmarks and the tools share: one definition each of
 * the empty job, the fib task and its serial twin, a 64-bit mixer, the
 * clocks (now, sleeps, process CPU time), a bounded busy-wait, and strict
 * parsing of numbers and comma-separated lists (command line, environment).
 *
 * Users: the tests (through check.h, which adds the checks and the gates),
 * bench/ (C++: micro.cpp, the wsched design, the suite and the open-loop
 * generator) and tools/overhead.c and tools/wsched_top.c. It lives here,
 * beside check.h, because the tests are most of its users; bench/ and tools/
 * include it as "../tests/common.h", so no target needs another include
 * directory.
 *
 * Rules, so that every one of those can include it:
 *   - C11 and C++17 alike: static inline functions and macros only, no
 *     _Atomic, no designated initialisers, explicit casts from void *;
 *   - nothing here checks, prints or exits: a helper returns a value or -1,
 *     and the caller decides (check.h turns failures into test failures);
 *   - nothing beyond libc, POSIX and the public wsched.h.
 */
#ifndef WSCHED_TESTS_COMMON_H
#define WSCHED_TESTS_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "wsched.h"

/* ------------------------------------------------------------- jobs */

/* A job that does nothing: the empty job of the per-job overhead figures
 * (tools/callgrind.sh, bench_micro's BM_EmptyBatch) and the filler of tests
 * that only need a batch to exist. */
static inline int common_nop_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    return 0;
}

/* ------------------------------------------------------------- fib */

/* One call of fib(n) with every call a task: its argument and its result. */
struct common_fib {
    int n;
    uint64_t r;
};

/*
 * COMMON_DEFINE_FIB_TASK(name, on_status) defines the task
 *     void name(wsched_ctx *ctx, void *arg)     (arg: a struct common_fib)
 * that spawns fib(n-1), runs fib(n-2) inline on the same ctx and syncs (the
 * Cilk shape), with on_status(...) around the status of wsched_spawn and
 * wsched_sync: CHECK_OK in the tests (check.h's check_fib_task),
 * COMMON_IGNORE in the benchmarks and tools/overhead.c. Put the linkage in
 * front: `static COMMON_DEFINE_FIB_TASK(fib_task, COMMON_IGNORE)`.
 *
 * A macro rather than one function because its users need their own copy:
 * bench/micro.cpp's BM_Fib, the wsched design of bench/ and tools/overhead.c
 * (whose instruction counts tools/callgrind.sh reports) each compile it as a
 * plain static function of their own file, so the compiler treats it exactly
 * as it did when each file had its own text (it inlines the recursion a few
 * levels deep; an `inline` function would be inlined differently), and the
 * tests add checks the benchmarks must not pay for.
 */
#define COMMON_IGNORE(status) ((void)(status))
#define COMMON_DEFINE_FIB_TASK(name, on_status)                                \
    void name(wsched_ctx *ctx, void *arg)                                      \
    {                                                                          \
        struct common_fib *f = (struct common_fib *)arg;                       \
        if (f->n < 2) {                                                        \
            f->r = (uint64_t)f->n;                                             \
            return;                                                            \
        }                                                                      \
        struct common_fib a = {f->n - 1, 0}, b = {f->n - 2, 0};                \
        on_status(wsched_spawn(ctx, name, &a));                                \
        name(ctx, &b);                                                         \
        on_status(wsched_sync(ctx));                                           \
        f->r = a.r + b.r;                                                      \
    }

/*
 * COMMON_DEFINE_FIB_SERIAL(name) defines uint64_t name(int n): fib(n) by the
 * same recursion without tasks, the serial twin of the fib benchmarks. A
 * macro for the same reason: bench/workload.cpp keeps it out of line
 * (noinline: every design's serial baseline runs the same machine code),
 * bench/micro.cpp as a static function of its own.
 */
#define COMMON_DEFINE_FIB_SERIAL(name)                                         \
    uint64_t name(int n)                                                       \
    {                                                                          \
        if (n < 2)                                                             \
            return (uint64_t)n;                                                \
        return name(n - 1) + name(n - 2);                                      \
    }

/* fib(n), iterated: the value a fib run must produce (n <= 93 fits). */
static inline uint64_t common_fib_value(int n)
{
    uint64_t a = 0, b = 1;
    for (int k = 0; k < n; k++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

/* Calls (tasks) that fib(n) makes: 2 fib(n+1) - 1, the "tasks" of ns/task. */
static inline uint64_t common_fib_calls(int n) { return 2 * common_fib_value(n + 1) - 1; }

/* ------------------------------------------------------------ randomness */

/* splitmix64's finaliser: a good 64-bit mixer (and the benchmarks' checksum
 * hash). */
static inline uint64_t common_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* splitmix64: the next value of the generator whose state is *s. */
static inline uint64_t common_splitmix64(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return common_mix64(*s);
}

/* ------------------------------------------------------------- time */

/* CLOCK_MONOTONIC in ns: the clock of wsched_now_ns, inlined (a job body of
 * the benchmarks stamps its completion with it: no call into the library). */
static inline uint64_t common_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double common_now_s(void) { return (double)common_now_ns() * 1e-9; }

/* Sleep until common_now_ns() >= t (absolute: no drift in a paced loop). */
static inline void common_sleep_until(uint64_t t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(t / 1000000000u);
    ts.tv_nsec = (long)(t % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

/* Sleep for ns: an idle gap or a sampling tick, never a synchronisation. */
static inline void common_sleep_ns(uint64_t ns) { common_sleep_until(common_now_ns() + ns); }

/* Busy-wait for ns without sleeping (a job "of ns"), pausing between reads
 * of the clock. */
static inline void common_spin_ns(uint64_t ns)
{
    uint64_t until = common_now_ns() + ns;
    while (common_now_ns() < until) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* User + system CPU seconds of the whole process, every thread (getrusage
 * RUSAGE_SELF). */
static inline double common_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------- parsing */

/* s, as a whole, is a decimal integer in [lo, hi]: 0 with *out set, or -1
 * (NULL, empty, trailing text, out of range). */
static inline int common_parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* s, as a whole, is a number in [lo, hi] ("1e9" too): 0 with *out set, or
 * -1 (NULL, empty, trailing text, NaN, out of range). */
static inline int common_parse_double(const char *s, double lo, double hi, double *out)
{
    if (!s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* The next item of the comma-separated list at *p ("1,2,4", "wsched, tbb"),
 * without the spaces around it, copied NUL-terminated into buf (cap bytes);
 * *p moves past it. Empty items are skipped. 1: an item; 0: the end of the
 * list; -1: an item of cap bytes or more. */
static inline int common_list_next(const char **p, char *buf, size_t cap)
{
    const char *s = *p;
    while (*s == ' ' || *s == ',')
        s++;
    const char *e = s;
    while (*e && *e != ',')
        e++;
    *p = e;
    while (e > s && e[-1] == ' ')
        e--;
    size_t n = (size_t)(e - s);
    if (n == 0)
        return 0; /* only spaces and commas were left */
    if (n >= cap)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 1;
}

/* A list of counts such as WSCHED_BENCH_WORKERS or --workers= take ("1,2,4"):
 * each a decimal integer in [lo, hi], at most cap of them. The number of
 * counts stored in out (>= 1), or -1 (a bad item, an empty list, more than
 * cap). */
static inline int common_parse_counts(const char *s, long lo, long hi, long *out, int cap)
{
    char item[32];
    int n = 0, r;
    if (!s)
        return -1;
    while ((r = common_list_next(&s, item, sizeof item)) > 0) {
        if (n == cap || common_parse_long(item, lo, hi, &out[n]) != 0)
            return -1;
        n++;
    }
    return r < 0 || n == 0 ? -1 : n;
}

#endif
