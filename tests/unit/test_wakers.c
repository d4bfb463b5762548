/*
 * Waker and fd waits (issue 9): wakes from foreign threads, exactly once
 * (a second or late wake is -EALREADY), a wake before the job returned,
 * deadlines, wakes after the batch was freed and the pool destroyed (ASan
 * sees no use after free), cancellation, fail-fast and quorum reaching
 * jobs pending on wakers at once, fds made ready from another thread, an
 * fd closed while waited on, destroy with waker jobs pending, bad input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define N 256

/* One job's frame (its slot). */
struct frame {
    int calls, woken, cancelled, timedout, fd_ready;
    uint64_t value;
    wsched_waker waker;
};

/* What the jobs share with the test: the wakers they armed, published
 * with a flag (the job's store of the handle, then `armed[i]` RELEASE). */
struct plan {
    uint64_t deadline_rel; /* waker deadline, 0 = none */
    int fail_index;        /* this job fails instead of waiting (fail-fast) */
    int self_wake;         /* jobs wake their own waker before returning */
    wsched_waker wakers[N];
    atomic_int armed[N];
    atomic_int pending;
};

static int wjob(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct plan *p = arg;
    struct frame *f = slot;
    f->calls++;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST: {
        if ((int)i == p->fail_index)
            return -EIO;
        wsched_waker k;
        CHECK_OK(wsched_waker_arm(ctx, p->deadline_rel ? wsched_now_ns() + p->deadline_rel : 0,
                                  &k));
        wsched_waker again;
        CHECK_EQ(wsched_waker_arm(ctx, 0, &again), -EBUSY); /* one wait per call */
        CHECK(again.pool == NULL);
        f->waker = k;
        if (p->self_wake) {
            CHECK_OK(wsched_wake(k, 1000 + i)); /* before we return: resumed after */
            CHECK_EQ(wsched_wake(k, 1), -EALREADY);
        }
        p->wakers[i] = k;
        atomic_store_explicit(&p->armed[i], 1, memory_order_release);
        atomic_fetch_add(&p->pending, 1);
        return WSCHED_PENDING;
    }
    case WSCHED_RESUME_WOKEN:
        f->woken++;
        f->value = wsched_resume_value(ctx);
        return 0;
    case WSCHED_RESUME_TIMEDOUT:
        f->timedout++;
        return -ETIMEDOUT;
    case WSCHED_RESUME_CANCELLED:
        f->cancelled++;
        return 77; /* ignored */
    default:
        CHECK(!"unexpected resume kind");
        return -1;
    }
}

static wsched_batch *submit(wsched_pool *pool, struct plan *p, size_t n, unsigned policy,
                            size_t quorum)
{
    memset(p->armed, 0, sizeof p->armed);
    atomic_store(&p->pending, 0);
    wsched_batch_desc d = {.fn = wjob, .arg = p, .njobs = n, .slot_size = sizeof(struct frame),
                           .flags = WSCHED_BATCH_WAITS, .policy = policy, .quorum = quorum};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    return b;
}

static struct frame *fr(wsched_batch *b, size_t i) { return wsched_batch_slot(b, i); }

static int status(wsched_batch *b, size_t i)
{
    int st;
    CHECK_OK(wsched_batch_status(b, i, &st));
    return st;
}

static void wait_pending(struct plan *p, int n)
{
    while (atomic_load(&p->pending) < n)
        sched_yield();
}

/* Foreign threads wake every armed job, twice; the first wake of each wins. */
struct waker_thread {
    pthread_t t;
    struct plan *p;
    wsched_batch *b;
    size_t n;
    unsigned seed;
    atomic_int *won;
};

static void *wake_all(void *arg)
{
    struct waker_thread *wt = arg;
    bool left = true;
    /* Until the batch is complete (a cancelled job may never arm). */
    while (left && wsched_wait(wt->b, 0) == -ETIMEDOUT) {
        left = false;
        for (size_t k = 0; k < wt->n; k++) {
            size_t i = (k * 7 + wt->seed) % wt->n;
            if (!atomic_load_explicit(&wt->p->armed[i], memory_order_acquire)) {
                left = true;
                continue;
            }
            int r = wsched_wake(wt->p->wakers[i], 1000 + i);
            CHECK(r == 0 || r == -EALREADY);
            if (r == 0)
                atomic_fetch_add(wt->won, 1);
        }
        if (left)
            sched_yield();
    }
    return NULL;
}

static int run_wakers(wsched_batch *b, struct plan *p, size_t n, int threads)
{
    atomic_int won = 0;
    struct waker_thread wt[4];
    for (int k = 0; k < threads; k++) {
        wt[k] = (struct waker_thread){.p = p, .b = b, .n = n, .seed = (unsigned)k * 31, .won = &won};
        CHECK_EQ(pthread_create(&wt[k].t, NULL, wake_all, &wt[k]), 0);
    }
    CHECK_OK(wsched_wait(b, -1));
    for (int k = 0; k < threads; k++)
        pthread_join(wt[k].t, NULL);
    return atomic_load(&won);
}

static void test_foreign_wakes(wsched_pool *pool)
{
    static struct plan p = {.fail_index = -1};
    for (int round = 0; round < 20; round++) {
        wsched_batch *b = submit(pool, &p, N, WSCHED_POLICY_BEST_EFFORT, 0);
        int won = run_wakers(b, &p, N, 3);
        CHECK_EQ(won, N); /* exactly one wake counted per job */
        for (size_t i = 0; i < N; i++) {
            CHECK_EQ(status(b, i), 0);
            CHECK_EQ(fr(b, i)->calls, 2);
            CHECK_EQ(fr(b, i)->woken, 1);
            CHECK_EQ(fr(b, i)->value, 1000 + i);
            /* Late wakes: the wait is over, the batch alive. */
            CHECK_EQ(wsched_wake(p.wakers[i], 5), -EALREADY);
        }
        wsched_batch_free(b);
        /* After the free: the cells outlive batches (ASan: no use after free). */
        for (size_t i = 0; i < N; i++)
            CHECK_EQ(wsched_wake(p.wakers[i], 5), -EALREADY);
    }
    printf("foreign wakes: 20 rounds x %d jobs, 3 threads: ok\n", N);
}

static void test_self_wake(wsched_pool *pool)
{
    static struct plan p = {.fail_index = -1, .self_wake = 1};
    wsched_batch *b = submit(pool, &p, N, WSCHED_POLICY_BEST_EFFORT, 0);
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(status(b, i), 0);
        CHECK_EQ(fr(b, i)->woken, 1);
        CHECK_EQ(fr(b, i)->value, 1000 + i);
    }
    wsched_batch_free(b);
    printf("woken before the job returned: ok\n");
}

static void test_deadline(wsched_pool *pool)
{
    static struct plan p = {.fail_index = -1, .deadline_rel = 2000000};
    uint64_t t0 = wsched_now_ns();
    wsched_batch *b = submit(pool, &p, 64, WSCHED_POLICY_BEST_EFFORT, 0);
    CHECK_OK(wsched_wait(b, -1));
    CHECK(wsched_now_ns() - t0 >= 2000000);
    for (size_t i = 0; i < 64; i++) {
        CHECK_EQ(status(b, i), -ETIMEDOUT);
        CHECK_EQ(fr(b, i)->timedout, 1);
        CHECK_EQ(fr(b, i)->calls, 2);
        CHECK_EQ(wsched_wake(p.wakers[i], 1), -EALREADY); /* too late */
    }
    wsched_batch_free(b);
    printf("waker deadlines: ok\n");
}

/* Cancel, fail-fast and quorum reach jobs pending on wakers that nobody
 * wakes: the batch completes at once, every pending job gets its cleanup
 * call. */
static void test_cancel(wsched_pool *pool)
{
    static struct plan p = {.fail_index = -1};
    wsched_batch *b = submit(pool, &p, N, WSCHED_POLICY_BEST_EFFORT, 0);
    wait_pending(&p, N);
    CHECK_OK(wsched_cancel(b));
    CHECK_OK(wsched_wait_idle(b, -1));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(status(b, i), WSCHED_ECANCELLED);
        CHECK_EQ(fr(b, i)->cancelled, 1);
        CHECK_EQ(fr(b, i)->calls, 2);
        CHECK_EQ(wsched_wake(p.wakers[i], 1), -EALREADY);
    }
    wsched_batch_free(b);

    /* Fail-fast: job 0 fails; whoever armed is cancelled, the rest never run. */
    p.fail_index = 0;
    b = submit(pool, &p, N, WSCHED_POLICY_FAIL_FAST, 0);
    CHECK_OK(wsched_wait_idle(b, -1));
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(b, &o, sizeof o));
    CHECK_EQ(o.end, WSCHED_END_FAILED);
    CHECK_EQ(status(b, 0), -EIO);
    for (size_t i = 1; i < N; i++) {
        CHECK_EQ(status(b, i), WSCHED_ECANCELLED);
        CHECK_EQ(fr(b, i)->calls, fr(b, i)->cancelled ? 2 : 0);
    }
    wsched_batch_free(b);

    /* Quorum 10 of N: ten wakes decide it, the others are cancelled. */
    p.fail_index = -1;
    b = submit(pool, &p, N, WSCHED_POLICY_QUORUM, 10);
    wait_pending(&p, N);
    for (size_t i = 0; i < 10; i++)
        CHECK_OK(wsched_wake(p.wakers[i * 3], 1000 + i * 3));
    CHECK_OK(wsched_wait_idle(b, -1));
    size_t ok = 0;
    for (size_t i = 0; i < N; i++) {
        int st = status(b, i);
        ok += st == 0;
        CHECK(st == 0 || st == WSCHED_ECANCELLED);
        CHECK_EQ(fr(b, i)->calls, 2);
        CHECK_EQ(fr(b, i)->woken + fr(b, i)->cancelled, 1);
    }
    CHECK_EQ(ok, 10);
    wsched_batch_free(b);
    printf("cancel, fail-fast, quorum reach waker waits: ok\n");
}

/* Wakes racing a cancel: every job ends exactly once, woken (status 0) or
 * cancelled; a won wake never goes missing (each job is resumed once). */
static void test_wake_cancel_race(wsched_pool *pool)
{
    static struct plan p = {.fail_index = -1};
    int rounds = 200 / (int)check_slow();
    for (int round = 0; round < rounds; round++) {
        wsched_batch *b = submit(pool, &p, 64, WSCHED_POLICY_BEST_EFFORT, 0);
        atomic_int won = 0;
        struct waker_thread wt = {.p = &p, .b = b, .n = 64, .seed = (unsigned)round, .won = &won};
        CHECK_EQ(pthread_create(&wt.t, NULL, wake_all, &wt), 0);
        while (atomic_load(&p.pending) < round % 64)
            sched_yield();
        CHECK_OK(wsched_cancel(b));
        CHECK_OK(wsched_wait_idle(b, -1));
        pthread_join(wt.t, NULL);
        int woken = 0;
        for (size_t i = 0; i < 64; i++) {
            struct frame *f = fr(b, i);
            int st = status(b, i);
            CHECK(f->calls <= 2);
            CHECK_EQ(f->woken + f->cancelled, f->calls == 2);
            CHECK_EQ(st == 0, f->woken);
            CHECK(st == 0 || st == WSCHED_ECANCELLED);
            woken += f->woken;
        }
        CHECK(woken <= atomic_load(&won));
        wsched_batch_free(b);
    }
    printf("wakes racing cancel: %d rounds: ok\n", rounds);
}

/* A batch deadline on the wheel (run.c D1-D3): a parent job waits with
 * wsched_wait_batch (no timed waiter anywhere) for a child whose jobs wait
 * on wakers nobody completes; the child's deadline ends it: its slots
 * WSCHED_EDEADLINE, its jobs' cleanup calls made, the parent resumed. */
struct dl_parent {
    wsched_pool *pool;
    struct plan *child_plan;
    uint64_t budget;
    wsched_batch *child;
    int ok;
};

static int dl_parent_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    struct dl_parent *dp = arg;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        wsched_batch_desc d = {.fn = wjob, .arg = dp->child_plan, .njobs = 32,
                               .slot_size = sizeof(struct frame), .flags = WSCHED_BATCH_WAITS,
                               .deadline_ns = wsched_now_ns() + dp->budget};
        CHECK_OK(wsched_submit(dp->pool, &d, &dp->child));
        CHECK_OK(wsched_wait_batch(ctx, dp->child));
        return WSCHED_PENDING;
    }
    CHECK_EQ(wsched_resume_kind(ctx), WSCHED_RESUME_BATCH);
    wsched_outcome o;
    CHECK_OK(wsched_batch_outcome(dp->child, &o, sizeof o));
    CHECK_EQ(o.end, WSCHED_END_DEADLINE);
    CHECK_EQ(o.timed_out, 32);
    for (size_t k = 0; k < 32; k++) /* (a job not started by then never runs) */
        CHECK_EQ(fr(dp->child, k)->cancelled, fr(dp->child, k)->calls ? 1 : 0);
    dp->ok = 1;
    return 0;
}

static void test_batch_deadline(wsched_pool *pool)
{
    static struct plan cp = {.fail_index = -1};
    for (int round = 0; round < 20; round++) {
        struct dl_parent dp = {.pool = pool, .child_plan = &cp, .budget = 2000000};
        wsched_batch_desc d = {.fn = dl_parent_job, .arg = &dp, .njobs = 1,
                               .flags = WSCHED_BATCH_WAITS};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_EQ(status(b, 0), 0);
        CHECK_EQ(dp.ok, 1);
        wsched_batch_free(b);
        wsched_batch_free(dp.child);
    }
    /* A deadline batch that completes first: the timer is withdrawn (no
     * leak under ASan, nothing fires later). */
    static struct plan fast = {.fail_index = -1, .self_wake = 1};
    for (int round = 0; round < 20; round++) {
        wsched_batch_desc d = {.fn = wjob, .arg = &fast, .njobs = 16,
                               .slot_size = sizeof(struct frame), .flags = WSCHED_BATCH_WAITS,
                               .deadline_ns = wsched_now_ns() + 10000000000ull};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        for (size_t k = 0; k < 16; k++)
            CHECK_EQ(status(b, k), 0);
        wsched_batch_free(b);
    }
    printf("batch deadlines on the wheel: ok\n");
}

/* ------------------------------------------------------------------ fds */

struct fdplan {
    int fds[N]; /* job i waits on fds[i] */
    unsigned events;
    uint64_t deadline_rel;
    int eof; /* the peers hung up */
    atomic_int pending;
};

static int fdjob(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct fdplan *p = arg;
    struct frame *f = slot;
    f->calls++;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST:
        CHECK_OK(wsched_wait_fd(ctx, p->fds[i], p->events,
                                p->deadline_rel ? wsched_now_ns() + p->deadline_rel : 0));
        atomic_fetch_add(&p->pending, 1);
        return WSCHED_PENDING;
    case WSCHED_RESUME_FD: {
        f->fd_ready++;
        f->value = wsched_resume_value(ctx);
        if (f->value & WSCHED_FD_READ) {
            char c;
            ssize_t n = read(p->fds[i], &c, 1);
            CHECK_EQ(n, p->eof ? 0 : 1); /* a hang-up reads as end of file */
            CHECK_EQ(n == 0 || c == (char)i, 1);
        }
        return 0;
    }
    case WSCHED_RESUME_TIMEDOUT:
        f->timedout++;
        return -ETIMEDOUT;
    case WSCHED_RESUME_CANCELLED:
        f->cancelled++;
        return 0;
    default:
        CHECK(!"unexpected resume kind");
        return -1;
    }
}

static void test_fds(wsched_pool *pool)
{
    static struct fdplan p;
    int peer[N];
    for (size_t i = 0; i < N; i++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        p.fds[i] = sv[0];
        peer[i] = sv[1];
    }
    p.events = WSCHED_FD_READ;
    p.deadline_rel = 0;
    atomic_store(&p.pending, 0);
    wsched_batch_desc d = {.fn = fdjob, .arg = &p, .njobs = N, .slot_size = sizeof(struct frame),
                           .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    while (atomic_load(&p.pending) < N)
        sched_yield();
    CHECK_EQ(wsched_wait(b, 0), -ETIMEDOUT); /* nothing readable yet */
    for (size_t i = 0; i < N; i++) {
        char c = (char)i;
        CHECK_EQ(write(peer[i], &c, 1), 1);
    }
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(status(b, i), 0);
        CHECK_EQ(fr(b, i)->fd_ready, 1);
        CHECK(fr(b, i)->value & WSCHED_FD_READ);
    }
    wsched_batch_free(b);

    /* Writable at once (level-triggered): resumed without any event from us. */
    p.events = WSCHED_FD_WRITE;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(fr(b, i)->value, WSCHED_FD_WRITE);
    wsched_batch_free(b);

    /* Deadline, nothing written; then cancel of fd waits. */
    p.events = WSCHED_FD_READ;
    p.deadline_rel = 1000000;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(fr(b, i)->timedout, 1);
    wsched_batch_free(b);
    p.deadline_rel = 0;
    atomic_store(&p.pending, 0);
    CHECK_OK(wsched_submit(pool, &d, &b));
    while (atomic_load(&p.pending) < N)
        sched_yield();
    CHECK_OK(wsched_cancel(b));
    CHECK_OK(wsched_wait_idle(b, -1));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(status(b, i), WSCHED_ECANCELLED);
        CHECK_EQ(fr(b, i)->cancelled, 1);
    }
    wsched_batch_free(b);

    /* The peer hangs up: readable (end of file) and an error bit. */
    for (size_t i = 0; i < N; i++)
        close(peer[i]);
    p.events = WSCHED_FD_READ;
    p.eof = 1;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < N; i++)
        CHECK(fr(b, i)->value & WSCHED_FD_READ);
    wsched_batch_free(b);
    p.eof = 0;
    for (size_t i = 0; i < N; i++)
        close(p.fds[i]);
    printf("fd waits: readable, writable, deadline, cancel, hang-up: ok\n");
}

/* An fd closed while waited on leaves epoll: the deadline ends the wait. */
static void test_fd_closed(wsched_pool *pool)
{
    static struct fdplan p;
    int peer[8];
    for (size_t i = 0; i < 8; i++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        p.fds[i] = sv[0];
        peer[i] = sv[1];
    }
    p.events = WSCHED_FD_READ;
    p.deadline_rel = 20000000;
    atomic_store(&p.pending, 0);
    wsched_batch_desc d = {.fn = fdjob, .arg = &p, .njobs = 8, .slot_size = sizeof(struct frame),
                           .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    while (atomic_load(&p.pending) < 8)
        sched_yield();
    for (size_t i = 0; i < 8; i++)
        close(p.fds[i]);
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 8; i++) {
        CHECK_EQ(status(b, i), -ETIMEDOUT);
        close(peer[i]);
    }
    wsched_batch_free(b);
    printf("fd closed while waited on: the deadline ends it: ok\n");
}

static int bad_input_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    int *file = arg;
    wsched_waker k;
    CHECK_EQ(wsched_waker_arm(ctx, 0, NULL), -EINVAL);
    CHECK_EQ(wsched_wait_fd(ctx, -1, WSCHED_FD_READ, 0), -EINVAL);
    CHECK_EQ(wsched_wait_fd(ctx, 0, 0, 0), -EINVAL);
    CHECK_EQ(wsched_wait_fd(ctx, 0, WSCHED_FD_ERROR, 0), -EINVAL);
    CHECK_EQ(wsched_wait_fd(ctx, *file, WSCHED_FD_READ, 0), -EPERM); /* a regular file */
    CHECK_EQ(wsched_wait_fd(ctx, 1000000, WSCHED_FD_READ, 0), -EBADF);
    CHECK_OK(wsched_waker_arm(ctx, 0, &k));
    CHECK_EQ(wsched_wait_fd(ctx, 0, WSCHED_FD_READ, 0), -EBUSY);
    /* Armed, then not waited for: dropped; the handle is dead. */
    *(wsched_waker *)slot = k;
    return 0;
}

static void test_bad_input(void)
{
    wsched_pool *pool = check_pool(1);
    CHECK_EQ(wsched_wake((wsched_waker){0}, 1), -EINVAL);
    CHECK_EQ(wsched_waker_arm(NULL, 0, NULL), -EINVAL);
    CHECK_EQ(wsched_wait_fd(NULL, 0, WSCHED_FD_READ, 0), -EINVAL);
    CHECK_EQ(wsched_resume_value(NULL), 0);
    /* A forged handle: never handed out. */
    CHECK_EQ(wsched_wake((wsched_waker){pool, 12345}, 1), -EINVAL);
    char path[] = "/tmp/wsched-wakers-XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0);
    unlink(path);
    wsched_waker k;
    wsched_batch_desc d = {.fn = bad_input_job, .arg = &file, .njobs = 1,
                           .slot_size = sizeof k, .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(status(b, 0), 0);
    memcpy(&k, wsched_batch_slot(b, 0), sizeof k);
    CHECK_EQ(wsched_wake(k, 1), -EALREADY);
    wsched_batch_free(b);
    close(file);
    /* Destroy with waker jobs pending and nobody to wake them: cancelled,
     * nothing hangs; their handles then answer -EBADF. */
    static struct plan p = {.fail_index = -1};
    b = submit(pool, &p, 32, WSCHED_POLICY_BEST_EFFORT, 0);
    wait_pending(&p, 32);
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_OK(wsched_wait(b, 0));
    for (size_t i = 0; i < 32; i++) {
        CHECK_EQ(status(b, i), WSCHED_ECANCELLED);
        CHECK_EQ(fr(b, i)->cancelled, 1);
        CHECK_EQ(wsched_wake(p.wakers[i], 1), -EBADF);
    }
    wsched_batch_free(b);
    printf("bad input, destroy with waker jobs pending: ok\n");
}

int main(void)
{
    check_watchdog(120);
    wsched_pool *pool = check_pool(2);
    test_foreign_wakes(pool);
    test_self_wake(pool);
    test_deadline(pool);
    test_cancel(pool);
    test_wake_cancel_race(pool);
    test_batch_deadline(pool);
    test_fds(pool);
    test_fd_closed(pool);
    CHECK_OK(wsched_pool_destroy(pool));
    wsched_pool *one = check_pool(1);
    test_foreign_wakes(one); /* one worker: every resumption on the arming worker */
    test_batch_deadline(one);
    test_fds(one);
    CHECK_OK(wsched_pool_destroy(one));
    test_bad_input();
    printf("test_wakers: ok\n");
    return 0;
}
