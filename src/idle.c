/*
 * Idle and wake-up: the searcher count, the parked mask, claims, notify
 * and park. The worker loop that uses them is worker.c.
 *
 * Idle protocol (the rule Go's and Tokio's schedulers converged on):
 *  - A worker with no local work becomes a *searcher* if fewer than half the
 *    workers are searching, and scans the other deques and inboxes for about
 *    spin_ns. A searcher that finds work stops searching; if it was the last
 *    searcher and more work is visible, it wakes one parked worker, so work
 *    spreads one wake at a time and never in a herd.
 *  - Otherwise it parks: sets its bit in `parked` (seq_cst RMW), leaves the
 *    searcher count (seq_cst RMW), re-scans every queue with seq_cst loads,
 *    and only then sleeps on its own futex word.
 *  - A producer (submit, a deque push onto an empty deque) publishes the
 *    work, then a seq_cst fence (or a seq_cst RMW), then reads `searching`:
 *    if a searcher exists it does nothing, else it claims one parked worker
 *    by clearing its bit (fetch_and: exactly one claimer wins), counts it as
 *    a searcher and bumps its futex word. So at most one wake per producer.
 *
 * No lost wake-up (Dekker pairs, all in the seq_cst order S): the producer's
 * publish is sequenced before its fence X; the parker's RMWs on `parked` and
 * `searching` are sequenced before its re-scan loads. If the re-scan misses
 * the work, those loads precede X in S, so the RMWs do too, so the
 * producer's loads after X see the parker's bit set (and `searching` already
 * decremented): it claims and wakes the parker. If a producer sees
 * searching > 0, the searcher's later decrement follows X in S and its
 * re-scan sees the work.
 *
 * The bare seq_cst fence in wsched__notify is necessary: the publish is a
 * release store (deque bottom), and store->load ordering needs a full
 * barrier on x86 too. TSan ignores it, but it orders no data: the data edge
 * is the release/acquire on bottom (deque.h, P1/S2).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "futex.h"
#include "internal.h"
#include "probes.h"
#include "tsan.h"

#include "idle.h"

/* ---------------------------------------------------------- notify/wake */

void wsched__wake_claimed(struct pool *p, unsigned i)
{
    struct worker *v = &p->workers[i];
    /* Count the sleeper as a searcher before it can run, so its eventual
     * decrement never precedes this increment. */
    uint32_t s = fadd(&p->searching, 1, SC);
    /* A claimed parker may be counted before the claimer's own count
     * drops (tests/model/park.pml bounds it): never past 2n. */
    DEBUG_ASSERT(s < 2 * p->n);
    (void)s;
    /* RELEASE pairs with the sleeper's ACQUIRE load of park_word: what the
     * claimer did before (publishing work) is visible to the woken worker. */
    fadd(&v->park_word, 1, REL);
    futex_wake(&v->park_word, 1);
}

/* Clear a set bit of `parked`, preferring `hint`: returns the worker index
 * claimed, or -1 when none is parked. */
static int claim_parked(struct pool *p, int hint)
{
    if (hint >= 0) {
        uint64_t bit = 1ull << (hint % 64);
        if (ld(&p->parked[hint / 64], SC) & bit &&
            fand(&p->parked[hint / 64], ~bit, SC) & bit)
            return hint;
    }
    unsigned start = hint >= 0 ? (unsigned)hint / 64 : 0;
    for (unsigned k = 0; k < p->nmask; k++) {
        unsigned wi = (start + k) % p->nmask;
        uint64_t m = ld(&p->parked[wi], SC);
        while (m) {
            uint64_t bit = m & -m;
            if (fand(&p->parked[wi], ~bit, SC) & bit)
                return (int)(wi * 64 + (unsigned)__builtin_ctzll(bit));
            m &= ~bit;
        }
    }
    return -1;
}

/* Call after publishing work with a seq_cst RMW (the RMW orders the publish
 * before the loads below). */
void wsched__notify_after_sc(struct pool *p, int hint)
{
    if (ld(&p->searching, SC) != 0)
        return; /* a searcher will see the work before it parks */
    int i = claim_parked(p, hint);
    if (i >= 0)
        wsched__wake_claimed(p, (unsigned)i);
}

/* Call after publishing work with a plain release store. */
void wsched__notify(struct pool *p, int hint)
{
    fence(SC); /* the store->load barrier of the Dekker pair, see top */
    wsched__notify_after_sc(p, hint);
}

/* ------------------------------------------------------------- finding */

/* Is there work anywhere? seq_cst loads: the re-scan half of the Dekker
 * pairs above. */
static bool work_visible(struct pool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *v = &p->workers[i];
        if (deque_nonempty_sc(&v->dq) || inbox_visible_sc(v))
            return true;
    }
    return false;
}


void wsched__stop_searching(struct worker *w)
{
    struct pool *p = w->pool;
    w->searching = false;
    /* SC RMW: if we were the last searcher, producers may have skipped a wake
     * because we were searching; the re-scan in work_visible follows this RMW
     * in S and sees their work (same argument as parking). */
    uint32_t s = fsub(&p->searching, 1, SC);
    DEBUG_ASSERT(s >= 1); /* we were counted */
    if (s == 1 && work_visible(p))
        wsched__notify_after_sc(p, -1);
}

/* Search for about spin_ns. Returns true with a task. */

/* ---------------------------------------------------------------- park */

/* Park until claimed, unless the re-scan sees work or the pool stopping. */
enum park_result wsched__park(struct worker *w)
{
    struct pool *p = w->pool;
    _Atomic uint64_t *word = &p->parked[w->index / 64];
    uint64_t bit = 1ull << (w->index % 64);

    for_(word, bit, SC); /* become claimable */
    if (w->searching) {
        w->searching = false;
        uint32_t s = fsub(&p->searching, 1, SC);
        DEBUG_ASSERT(s >= 1);
        (void)s;
    }
    /* Re-scan after both RMWs (see top). */
    bool sleep = true;
    if (work_visible(p) || ld(&p->stop, SC)) {
        if (fand(word, ~bit, SC) & bit) /* cancelled: nobody claimed us */
            return ld(&p->stop, ACQ) ? PARK_STOP : PARK_SAW_WORK;
        /* A producer claimed us first. Its wake-up is in flight: take it
         * below (it returns at once when the bump has landed), so that the
         * claimer's increment of `searching` precedes our own accounting. */
        sleep = false;
    }

    /* Wait until our claim's bump arrives. */
    w->claims++;
    if (sleep) {
        STAT_ADD(w, parks, 1);
        PROBE1(park, w->index);
    }
    for (;;) {
        /* ACQUIRE pairs with the claimer's RELEASE bump (wake_claimed). */
        uint32_t v = ld(&w->park_word, ACQ);
        if (v == w->claims)
            break;
        futex_wait(&w->park_word, v, NULL);
    }
    w->searching = true; /* counted by the claimer */
    if (sleep) {
        STAT_ADD(w, wakeups, 1);
        PROBE1(wake, w->index);
    }
    return ld(&p->stop, ACQ) ? PARK_STOP : PARK_WOKEN;
}
