/*
 * Pool-wide admission limit (wsched_config.max_jobs): at most `max` jobs
 * queued or running across all batches. A batch takes its njobs units
 * whole or not at all; units come back as each range of jobs finishes.
 * Only threads outside the pool wait for room (nested batches are exempt).
 *
 * Protocol (labels used at the sites below and in tests/model):
 *  (A1) reserve: CAS on `admitted`, SEQ_CST. Its first load is SEQ_CST too:
 *       when it decides "does not fit" from that load alone, the load is the
 *       waiter's re-check half of the Dekker pair A2/A3 and must stay in S.
 *       (It was relaxed once, which x86 hides and ARM would not: issue 7.)
 *  (A2) waiter: fetch_add on `waiters` (SEQ_CST), then A1 again; only then
 *       futex_wait on `word`, with the value read BEFORE registering.
 *  (A3) release: fetch_sub on `admitted` (SEQ_CST), then a SEQ_CST load of
 *       `waiters`; non-zero: bump `word` (RELEASE) and wake all.
 *  No lost wake-up: A2's RMW and A1's load, and A3's RMW and load, are two
 *  store->load pairs on different variables, all in S. If the waiter's A1
 *  load misses A3's release, that load precedes A3's RMW in S, so A2's RMW
 *  does too and A3's load of `waiters` sees the waiter: it bumps `word`
 *  after the waiter read it, so the waiter's futex_wait returns at once.
 */
#ifndef WSCHED_ADMISSION_H
#define WSCHED_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "debug.h"

struct admission {
    cacheline_aligned _Atomic(int64_t) admitted; /* units held now */
    _Atomic(uint32_t) waiters;                   /* threads in A2 */
    _Atomic(uint32_t) word;                      /* futex: bumped by A3 */
};

/* A1: take n units if they fit under max. */
static inline bool admission_try_reserve(struct admission *a, uint64_t max, size_t n)
{
    int64_t cur = ld(&a->admitted, SC); /* A1: see above: not relaxed */
    do {
        if ((uint64_t)cur + n > max)
            return false;
    } while (!cas_weak(&a->admitted, &cur, cur + (int64_t)n, SC)); /* A1 */
    return true;
}

/* A2, first half: register as a waiter; returns the futex value to wait
 * on (read before registering). Then call admission_try_reserve (A1). */
static inline uint32_t admission_wait_begin(struct admission *a)
{
    /* ACQUIRE: pairs with A3's RELEASE bump (nothing rides on it but the
     * value; kept for symmetry with the other futex words). */
    uint32_t v = ld(&a->word, ACQ);
    fadd(&a->waiters, 1, SC); /* A2 */
    return v;
}

static inline void admission_wait_end(struct admission *a)
{
    fsub(&a->waiters, 1, RLX); /* only a count: A3 over-waking is harmless */
}

/* A3: give n units back; true when waiters must be woken on `word`
 * (the caller bumps it and calls futex_wake: admission_wake). */
static inline bool admission_release(struct admission *a, size_t n)
{
    int64_t old = fsub(&a->admitted, (int64_t)n, SC); /* A3 */
    DEBUG_ASSERT(old >= (int64_t)n); /* units returned were reserved */
    (void)old;
    return ld(&a->waiters, SC) != 0;    /* A3 */
}

#endif
