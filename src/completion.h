/*
 * The completion chain of a batch: how every slot a job wrote becomes
 * visible to whoever sees the batch complete, and how a sleeping waiter is
 * woken. Labels used at the sites (run.c, batch.c) and in tests/model:
 *
 *  (B1) job i writes slot i and status[i] with plain / relaxed stores.
 *  (B2) each executed range (or lane) subtracts its job count from
 *       `remaining` once, ACQ_REL: the release half publishes the range's
 *       B1 stores; all the subtractions form one release sequence, so the
 *       one that reaches zero acquires every range's stores.
 *  (B3) that thread signals the wait words (`returned`, then `done`) with an
 *       ACQ_REL exchange to DONE: release publishes everything it acquired
 *       in B2 to the waiter; the old value WAITED means a waiter may sleep:
 *       futex_wake. For `done` the wake comes after the runtime dropped its
 *       reference (batch.c), so it may reach freed memory: FUTEX_WAKE reads
 *       none, and a later waiter at a reused address only wakes spuriously.
 *  (B4) a waiter loads the word with ACQUIRE (DONE: slots visible), else
 *       announces itself with a CAS RUNNING -> WAITED whose failure order is
 *       ACQUIRE too (a failed CAS that reads DONE is what makes the slots
 *       visible; it was relaxed once), then futex_wait(word, WAITED). No
 *       lost wake-up: B3's exchange and B4's CAS are RMWs on the same word,
 *       so either the CAS reads DONE, or B3 reads WAITED and wakes.
 */
#ifndef WSCHED_COMPLETION_H
#define WSCHED_COMPLETION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "debug.h"

/* States of a wait word (batch `done` and `returned`). */
enum { BATCH_RUNNING = 0, BATCH_WAITED = 1, BATCH_DONE = 2 };

/* B2: true for the caller whose subtraction completed the batch. */
static inline bool completion_range_done(_Atomic(size_t) *remaining, size_t count)
{
    size_t old = fsub(remaining, count, AR); /* B2 */
    DEBUG_ASSERT(old >= count); /* never below zero: each job counted once */
    return old == count;
}

/* B3: set the word to DONE; true when a waiter may sleep on it (the
 * caller then calls futex_wake_all on the word). */
static inline bool completion_signal(_Atomic(uint32_t) *word)
{
    return xchg(word, BATCH_DONE, AR) == BATCH_WAITED; /* B3 */
}

/* B4, first half: is it DONE (slots visible)? */
static inline bool completion_done(_Atomic(uint32_t) *word)
{
    return ld(word, ACQ) == BATCH_DONE; /* B4 */
}

/* B4, second half: announce a sleeper. True when the word is already DONE
 * (do not sleep: slots visible); else futex_wait(word, BATCH_WAITED). */
static inline bool completion_announce(_Atomic(uint32_t) *word)
{
    uint32_t v = BATCH_RUNNING;
    return !cas_f(word, &v, BATCH_WAITED, ACQ, ACQ) && v == BATCH_DONE; /* B4 */
}

#endif
