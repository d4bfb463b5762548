// The public header compiles as C++ (bench/ is C++), and the API is usable
// from C++ with a lambda-free function job.
#include <cstdio>

#include "wsched.h"

static int job(wsched_ctx *, void *arg, size_t i, void *slot)
{
    *static_cast<size_t *>(slot) = i * *static_cast<size_t *>(arg);
    return 0;
}

int main()
{
    wsched_pool *pool = nullptr;
    if (wsched_pool_create(&pool, nullptr) != 0)
        return 1;
    size_t mul = 3;
    wsched_batch_desc d{};
    d.fn = job;
    d.arg = &mul;
    d.njobs = 100;
    d.slot_size = sizeof(size_t);
    wsched_batch *b = nullptr;
    if (wsched_submit(pool, &d, &b) != 0 || wsched_wait(b, -1) != 0)
        return 1;
    for (size_t i = 0; i < 100; i++)
        if (*static_cast<size_t *>(wsched_batch_slot(b, i)) != i * 3)
            return 1;
    wsched_batch_free(b);
    if (wsched_pool_destroy(pool) != 0)
        return 1;
    std::puts("test_cxx: ok");
    return 0;
}
