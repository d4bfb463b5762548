/* Built against the *installed* wsched (find_package and pkg-config). */
#include <stdio.h>

#include <wsched.h>

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    *(size_t *)slot = i + 1;
    return 0;
}

int main(void)
{
    wsched_pool *pool;
    if (wsched_pool_create(&pool, NULL))
        return 1;
    wsched_batch_desc d = {.fn = job, .njobs = 64, .slot_size = sizeof(size_t)};
    wsched_batch *b;
    if (wsched_submit(pool, &d, &b) || wsched_wait(b, -1))
        return 1;
    size_t sum = 0;
    for (size_t i = 0; i < 64; i++)
        sum += *(size_t *)wsched_batch_slot(b, i);
    wsched_batch_free(b);
    wsched_pool_destroy(pool);
    printf("consumer: sum %zu\n", sum);
    return sum == 64 * 65 / 2 ? 0 : 1;
}
