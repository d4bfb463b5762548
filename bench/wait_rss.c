/*
 * Issue 9: memory per waiting job. N jobs (no slots) each arm one wait and
 * stay pending; the resident set and the number of memory mappings are
 * read before the batch is submitted and once every job is pending. The
 * figure per job covers everything the batch and its waits hold: the
 * job's status (4 bytes), its wait record (64) and its wait cell (32, in
 * the pool's table: kept for reuse after the batch), plus the batch
 * header amortised.
 *
 *   build/bench_wait_rss [N ...]     (default 100000 1000000)
 *
 * Each size runs twice, sleeps (wsched_sleep_until, 10 s) and wakers
 * (wsched_waker_arm, no deadline), each in a process of its own (forked:
 * the allocator keeps freed pages, so a second measurement in one process
 * would reuse the first's); the batch is then cancelled.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wsched.h"

static atomic_size_t pending;

static int waiting_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    if (wsched_resume_kind(ctx) != WSCHED_RESUME_FIRST)
        return 0; /* cancelled */
    int r;
    if (arg) {
        wsched_waker k;
        r = wsched_waker_arm(ctx, 0, &k);
    } else {
        r = wsched_sleep_until(ctx, wsched_now_ns() + 10000000000ull);
    }
    if (r)
        return r;
    atomic_fetch_add(&pending, 1);
    return WSCHED_PENDING;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n))
            v = strtol(line + n, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static long mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF)
        n += c == '\n';
    if (f)
        fclose(f);
    return n;
}

static int run(size_t n, int wakers)
{
    wsched_pool *pool;
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    if (wsched_pool_create(&pool, &cfg))
        return 1;
    long rss0 = status_kib("VmRSS:"), maps0 = mappings();
    atomic_store(&pending, 0);
    wsched_batch_desc d = {.fn = waiting_job, .arg = wakers ? (void *)1 : NULL, .njobs = n,
                           .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    if (wsched_submit(pool, &d, &b))
        return 1;
    while (atomic_load(&pending) < n)
        sched_yield();
    long rss1 = status_kib("VmRSS:"), maps1 = mappings();
    printf("%-7s %8zu jobs pending: RSS +%ld KiB = %.1f bytes per waiting job; "
           "mappings %+ld\n",
           wakers ? "wakers" : "sleeps", n, rss1 - rss0, (double)(rss1 - rss0) * 1024.0 / (double)n,
           maps1 - maps0);
    wsched_cancel(b);
    wsched_wait_idle(b, -1);
    wsched_batch_free(b);
    wsched_pool_destroy(pool);
    return 0;
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {100000, 1000000};
    int ns = 2;
    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 8; i++)
            sizes[ns++] = (size_t)strtoull(argv[i], NULL, 10);
    }
    for (int k = 0; k < ns; k++)
        for (int wakers = 0; wakers < 2; wakers++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                _exit(run(sizes[k], wakers) | fflush(stdout));
            int st;
            if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
                return 1;
        }
    return 0;
}
