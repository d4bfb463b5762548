/* WSCHED_DEBUG support: see debug.h. Empty in normal builds. */
#include "debug.h"

#include "atomics.h"

#ifdef WSCHED_DEBUG
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* 0 = not read yet, UINT32_MAX = off, else one point in N delays. */
static _Atomic uint32_t every;

static uint32_t delay_every(void)
{
    uint32_t e = ld(&every, RLX);
    if (e == 0) {
        const char *s = getenv("WSCHED_DEBUG_DELAY");
        long v = s ? strtol(s, NULL, 10) : 0;
        e = v >= 1 && v <= 1000 ? (uint32_t)v : UINT32_MAX;
        /* Relaxed: every thread computes the same value. */
        st(&every, e, RLX);
    }
    return e;
}

void (*wsched__debug_hook)(const char *label);

void wsched__debug_point(const char *label)
{
    /* A test's hook first (it may hold this thread at the point). */
    void (*hook)(const char *) = wsched__debug_hook;
    if (hook)
        hook(label);
    static _Thread_local uint64_t rng;
    uint32_t e = delay_every();
    if (e == UINT32_MAX)
        return;
    if (!rng)
        rng = ((uint64_t)(uintptr_t)&rng * 0x9E3779B97F4A7C15ull) | 1;
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    uint32_t x = (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
    if (x % e)
        return;
    if (x & 0x100) {
        sched_yield();
    } else {
        for (uint32_t i = (x >> 10) & 1023; i; i--)
            __builtin_ia32_pause();
    }
}

void wsched__debug_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "wsched: invariant failed: %s (%s:%d)\n", what, file, line);
    abort();
}
#else
typedef int wsched__debug_off; /* ISO C: a translation unit declares something */
#endif
