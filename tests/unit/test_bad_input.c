/* Bad input: a clear error code, never a crash, hang or leak (ASan/LSan
 * builds check the "no leak" half). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

static int destroy_from_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    return wsched_pool_destroy(arg); /* must refuse: -EDEADLK */
}

int main(void)
{
    check_watchdog(60);
    wsched_pool *pool = (wsched_pool *)0x1;
    wsched_batch *b = (wsched_batch *)0x1;

    /* Pool creation. */
    CHECK_EQ(wsched_pool_create(NULL, NULL), -EINVAL);
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.flags = 0x80;
    CHECK_EQ(wsched_pool_create(&pool, &cfg), -EINVAL);
    CHECK(pool == NULL); /* *out cleared on error */
    wsched_config_init(&cfg);
    cfg.nworkers = 1u << 30;
    CHECK_EQ(wsched_pool_create(&pool, &cfg), -EINVAL);
    int bad_cpu[] = {-1};
    wsched_config_init(&cfg);
    cfg.cpus = bad_cpu;
    cfg.ncpus = 1;
    CHECK_EQ(wsched_pool_create(&pool, &cfg), -EINVAL);
    int huge_cpu[] = {1 << 20};
    cfg.cpus = huge_cpu;
    CHECK_EQ(wsched_pool_create(&pool, &cfg), -EINVAL);
    cfg.ncpus = 0;
    CHECK_EQ(wsched_pool_create(&pool, &cfg), -EINVAL);

    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    CHECK_OK(wsched_pool_create(&pool, &cfg));

    /* Submission. */
    wsched_batch_desc d = {.fn = common_nop_job, .njobs = 4};
    CHECK_EQ(wsched_submit(NULL, &d, &b), -EINVAL);
    CHECK(b == NULL);
    CHECK_EQ(wsched_submit(pool, NULL, &b), -EINVAL);
    CHECK_EQ(wsched_submit(pool, &d, NULL), -EINVAL);
    d.fn = NULL;
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL);
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 0};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL);
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 4, .flags = 0x100};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL);
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = SIZE_MAX / 2, .slot_size = 16};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EOVERFLOW);
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = SIZE_MAX / 2};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EOVERFLOW); /* statuses alone */
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 3, .slot_size = SIZE_MAX - 5,
                            .flags = WSCHED_BATCH_PAD_SLOTS};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EOVERFLOW);
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 4, .slot_size = 16, .slot_stride = 8};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL); /* stride < size */
    char mem[64];
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 4, .slots = mem};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL); /* slots without a size */
    /* The allocator cannot satisfy this (but nothing overflows). */
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = (SIZE_MAX >> 3), .slot_size = 1};
    CHECK_EQ(wsched_submit(pool, &d, &b), -ENOMEM);

    /* Wait / accessors. */
    CHECK_EQ(wsched_wait(NULL, -1), -EINVAL);
    int st = 12345;
    CHECK_EQ(wsched_batch_status(NULL, 0, &st), -EINVAL);
    CHECK_EQ(st, 12345); /* untouched on error */
    CHECK(wsched_batch_slot(NULL, 0) == NULL);
    CHECK_EQ(wsched_batch_size(NULL), 0);
    wsched_batch_free(NULL);
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 4};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_OK(wsched_wait(b, 0)); /* already complete: polling says so */
    CHECK_EQ(wsched_batch_status(b, 4, &st), -EINVAL); /* index out of range */
    CHECK_EQ(wsched_batch_status(b, 0, NULL), -EINVAL);
    CHECK_EQ(st, 12345);
    CHECK_OK(wsched_batch_status(b, 3, &st));
    CHECK_EQ(st, 0);
    wsched_outcome oc;
    CHECK_EQ(wsched_batch_outcome(NULL, &oc, sizeof oc), -EINVAL);
    CHECK_EQ(wsched_ctx_worker(NULL), -EINVAL);
    CHECK_EQ(wsched_blocking(NULL), -EINVAL);
    wsched_config_init(NULL); /* ignored, no crash */
    CHECK(wsched_batch_slot(b, 0) == NULL); /* no slots asked for */
    wsched_batch_free(b);

    /* Fork-join outside a job. */
    CHECK_EQ(wsched_spawn(NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(wsched_sync(NULL), -EINVAL);

    /* Destroy from inside the pool is refused, not a deadlock. */
    d = (wsched_batch_desc){.fn = destroy_from_job, .arg = pool, .njobs = 1};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(check_status(b, 0), -EDEADLK);
    wsched_batch_free(b);

    /* Use after destroy: submit, destroy again, query. */
    CHECK_OK(wsched_pool_destroy(pool));
    d = (wsched_batch_desc){.fn = common_nop_job, .njobs = 4};
    CHECK_EQ(wsched_submit(pool, &d, &b), -EBADF);
    CHECK(b == NULL);
    CHECK_EQ(wsched_pool_destroy(pool), -EBADF);
    CHECK_EQ(wsched_pool_workers(pool), -EBADF);
    CHECK_EQ(wsched_pool_destroy(NULL), -EINVAL);

    /* Every code has a message. */
    int codes[] = {0, -EINVAL, -EOVERFLOW, -ENOMEM, -EAGAIN, -ESHUTDOWN, -EBADF,
                   -ETIMEDOUT, -EDEADLK, WSCHED_ENOTRUN, WSCHED_EJOBCODE, -12345, 7};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *m = wsched_strerror(codes[i]);
        CHECK(m != NULL && strlen(m) > 3);
    }
    CHECK(strcmp(wsched_strerror(-EBADF), wsched_strerror(-ESHUTDOWN)) != 0);
    printf("test_bad_input: ok\n");
    return 0;
}
