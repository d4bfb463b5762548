/*
 * Issue 7, gap: implicit sync runs after the job's frame is gone, so a
 * child whose arg points at the job's locals reads dead stack. WSCHED_DEBUG
 * builds (wsched_debug) catch it: a job that spawns such a child and
 * returns without wsched_sync aborts with a message. The bad job runs in a
 * forked child process (one worker, so the child task is still queued when
 * the job returns); the same job with wsched_sync passes.
 */
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static void child_task(wsched_ctx *ctx, void *arg)
{
    (void)ctx;
    volatile int *p = arg;
    (void)*p;
}

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    int local = 42; /* on this job's stack */
    CHECK_OK(wsched_spawn(ctx, child_task, &local));
    if (arg) /* the correct program */
        CHECK_OK(wsched_sync(ctx));
    return 0;
}

static int run(int sync)
{
    wsched_pool *pool = check_pool(1);
    wsched_batch_desc d = {.fn = job, .arg = sync ? (void *)1 : NULL, .njobs = 1};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
    return 0;
}

static int in_child(int sync)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(30);
        _exit(run(sync));
    }
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    return st;
}

int main(void)
{
    check_watchdog(120);
    int st = in_child(1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = in_child(0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    printf("test_debug_stack_arg: the unsynced stack arg was caught, ok\n");
    return 0;
}
