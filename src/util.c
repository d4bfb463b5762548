/*
 * The bottom layer's small helpers: the clock, the copy-out rule of
 * output structs, a thread's counter stripe. They call nothing else of
 * the library.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "downstream.h"
#include "internal.h"

uint64_t wsched_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The downstream counters' stripe (downstream.h) of a thread that is no
 * worker: from a hash of its TLS block, chosen once. */
unsigned wsched__ds_thread_stripe(void)
{
    static WSCHED_TLS unsigned mine; /* stripe + 1; 0 = not chosen yet */
    if (!mine)
        mine = (unsigned)((((uintptr_t)&mine >> 6) * 0x9E3779B97F4A7C15ull) >> 60) % DS_STRIPES + 1;
    return mine - 1;
}

/* Fill a caller's struct of `size` bytes from ours (`have` bytes): the
 * common prefix, zeros past ours (a caller built against a later header).
 * A size below `first` (the struct of the first API 1.0 header) is an
 * error: it cannot be a real wsched struct. */
int wsched__copy_out(void *dst, size_t size, const void *src, size_t have, size_t first)
{
    if (size < first)
        return -EINVAL;
    memcpy(dst, src, size < have ? size : have);
    if (size > have)
        memset((char *)dst + have, 0, size - have);
    return 0;
}
