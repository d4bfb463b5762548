/*
 * The cost of handing one cache line back and forth between two CPUs: two
 * threads pinned to CPUs A and B take turns incrementing one counter (each
 * waits, spinning, for the other's value, then stores the next one). One
 * hand-over = one line transfer plus a load that observes it: the unit of
 * what a single job posted from outside costs beyond its instructions
 * (bench/results/issue10-ab.md, section 9).
 *
 *   cc -O2 -pthread tools/line_pingpong.c -o /tmp/line_pingpong
 *   /tmp/line_pingpong [CPU_A CPU_B [HANDOVERS]]     (default 0 1 2000000)
 *
 * Prints ns per hand-over (the median of 5 runs). A shared VM's steal
 * time shows as outliers; check /proc/loadavg first.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) _Atomic uint64_t line;
static uint64_t handovers;

struct side {
    int cpu;
    uint64_t parity; /* this side writes the values of this parity + 1 */
};

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (pthread_setaffinity_np(pthread_self(), sizeof s, &s) != 0) {
        fprintf(stderr, "line_pingpong: cannot pin to CPU %d\n", cpu);
        exit(1);
    }
}

static void *run(void *arg)
{
    const struct side *sd = arg;
    pin(sd->cpu);
    /* ACQUIRE load of the other side's value, RELEASE store of ours: the
     * orderings a real hand-over (a queue slot, a done flag) uses. */
    for (uint64_t v = sd->parity; v < handovers; v += 2) {
        while (atomic_load_explicit(&line, memory_order_acquire) != v)
            __builtin_ia32_pause();
        atomic_store_explicit(&line, v + 1, memory_order_release);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
    handovers = argc > 3 ? strtoull(argv[3], NULL, 10) : 2000000;
    double ns[5];
    for (int r = 0; r < 5; r++) {
        atomic_store(&line, 0);
        struct side sa = {a, 0}, sb = {b, 1};
        pthread_t ta, tb;
        double t0 = now_s();
        pthread_create(&ta, NULL, run, &sa);
        pthread_create(&tb, NULL, run, &sb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        ns[r] = (now_s() - t0) * 1e9 / (double)handovers;
    }
    qsort(ns, 5, sizeof ns[0], cmp);
    printf("CPU %d <-> CPU %d: %.1f ns per hand-over (median of 5; min %.1f, max %.1f)\n", a, b,
           ns[2], ns[0], ns[4]);
    return 0;
}
