/*
 * Idle and wake-up: the searcher count, the parked mask, claims, notify
 * and park. The worker loop that uses them is worker.c.
 *
 * The rule Go's and Tokio's schedulers converged on: a worker with no local
 * work becomes a *searcher* if fewer than half the workers search, and
 * scans the other deques and inboxes for about spin_ns; a searcher that
 * finds work stops searching and, if it was the last searcher and more
 * work is visible, wakes one parked worker, so work spreads one wake at a
 * time and never in a herd. Otherwise it parks. A producer wakes at most
 * one worker, and none while someone searches.
 *
 * Labels (sites carry them; all accesses named here are seq_cst unless
 * said, and S is the single total order of seq_cst operations):
 *
 *  (N1) producer: publish the work (deque.h P1 release store, or inbox.h
 *       I1's seq_cst RMW), then a seq_cst fence X (none needed after an
 *       RMW: wsched__notify_after_sc).
 *  (N2) producer: load `searching`; if 0, claim a parked worker by clearing
 *       its bit in `parked` (fetch_and: exactly one claimer wins a bit).
 *  (N3) claimer: `searching` += 1 for the sleeper (before it can run, so its
 *       own later decrement never precedes this increment), then its
 *       park_word += 1 (RELEASE) and futex wake.
 *  (K1) parker: set its bit in `parked` (RMW), then leave `searching` (RMW).
 *  (K2) parker: re-scan every deque and inbox (seq_cst loads); work seen,
 *       or stop: take its bit back (fetch_and) unless a claimer already
 *       did, in which case it accepts that claim's wake below.
 *  (K3) parker: sleep until park_word reaches its claim count (ACQUIRE,
 *       pairs with N3's RELEASE); it wakes counted as a searcher.
 *  (K4) a parker with a timer due (issue 9) sleeps at most until then, and
 *       then takes its bit back (fetch_and, as K2 does): won, nobody
 *       claimed it and it leaves to fire its timers, counted as neither
 *       parked nor searching; lost, a claimer's wake is in flight and it
 *       takes it (K3). Either way one claim gets one wake.
 *  (K5) a parker with fds armed (waitq.c) sleeps in epoll_wait on its
 *       own epoll instance instead of the futex: it stores in_epoll = 1,
 *       then re-reads park_word (both seq_cst) before it blocks; a claimer
 *       bumps park_word (seq_cst RMW, N3), then reads in_epoll (seq_cst)
 *       and, if set, writes the parker's eventfd (in its epoll set). Store
 *       then load on both sides: one sees the other, so the bump is never
 *       missed. An fd event or its timer ends the sleep as K4 does.
 *       Its K2 re-scan also reads its own ready queue (waitq.c R1).
 *  (T6) a parker stores its deadline (park_until) before K1 and re-reads
 *       the other workers' published timer due times after it (waitq.c
 *       T6: the publisher's store, then its loads of `parked`).
 *  (L1) the last searcher leaving (fetch_sub returned 1) re-scans and, with
 *       work visible, notifies (N2): producers skipped their wake while it
 *       searched.
 *  (K6) a parker that was a searcher and cancels at K2 (its bit won back)
 *       counts itself in `searching` again (RMW) before it returns, and so
 *       ends as a searcher does: L1 after it found work, or K1/K2 again.
 *       Producers may have skipped their wake-ups because it searched, and
 *       it takes one task; its L1 re-scan, after that take, wakes a worker
 *       for the rest. (Without K6 a second task published while it searched
 *       waited, with another worker asleep, for a busy worker to finish:
 *       test_post's test_run_stealable hung in about 1 run of 20 under
 *       load; tests/regress/test_park_cancel_wake; park.pml with HOLD, and
 *       its mutant MUT_NO_K6.)
 *  (N4) a push onto a non-empty deque: relaxed check of `searching` and
 *       `parked`, notify if someone sleeps while nobody searches (pushed(),
 *       internal.h, with its argument; not a Dekker pair, a repair).
 *
 * No lost wake-up (N1/N2 against K1/K2): the parker's RMWs (K1) are
 * sequenced before its re-scan loads (K2); the producer's publish before X.
 * If the re-scan misses the work, those loads precede X in S, so K1's RMWs
 * do too, and N2's loads after X see the bit set (and `searching` already
 * decremented): the producer claims and wakes the parker. If N2 sees
 * searching > 0, that searcher's later decrement follows X in S: it either
 * parks (its K2 re-scan follows X: sees the work, so it does not sleep, and
 * by K6 it is a searcher again, whose next decrement also follows X) or is
 * the last searcher (L1: its re-scan follows X: sees the work and
 * notifies). The chain ends: each pass takes a task or sleeps.
 *
 * The bare seq_cst fence of N1 is necessary: the publish is a release
 * store (deque bottom), and store->load ordering needs a full barrier on
 * x86 too (mfence or a locked instruction). TSan ignores fences, but this
 * one orders no data: the data edge is the release/acquire on bottom
 * (deque.h P1/S2) or the inbox link. Models: tests/model/park.pml (spin:
 * every interleaving of producers, searchers and parkers, no lost wake-up,
 * bounded counts), tests/stress/test_park_wake, test_work_conserving,
 * tests/regress/test_spawn_lost_wake (N4).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "internal.h"
#include "probes.h"
#include "tsan.h"

#include "idle.h"
#include "waitq.h"

/* ---------------------------------------------------------- notify/wake */

void wsched__wake_claimed(struct pool *p, unsigned i)
{
    struct worker *v = &p->workers[i];
    /* Count the sleeper as a searcher before it can run, so its eventual
     * decrement never precedes this increment. */
    uint32_t s = fadd(&p->searching, 1, SC); /* N3 */
    /* A claimed parker may be counted before the claimer's own count
     * drops (tests/model/park.pml bounds it): never past 2n. */
    DEBUG_ASSERT(s < 2 * p->n);
    (void)s;
    /* RELEASE pairs with the sleeper's ACQUIRE load of park_word: what the
     * claimer did before (publishing work) is visible to the woken worker.
     * SEQ_CST for K5: the bump, then the load of in_epoll. */
    fadd(&v->park_word, 1, SC); /* N3 */
    if (ld(&v->in_epoll, SC)) { /* K5 */
        uint64_t one = 1;
        ssize_t wr = write(v->evfd, &one, sizeof one);
        (void)wr; /* a full counter still wakes it */
    }
    futex_wake(&v->park_word, 1);
}

/* Clear a set bit of `parked`, preferring `hint`: returns the worker index
 * claimed, or -1 when none is parked. */
static int claim_parked(struct pool *p, int hint)
{
    if (hint >= 0) {
        uint64_t bit = 1ull << (hint % 64);
        if (ld(&p->parked[hint / 64], SC) & bit &&
            fand(&p->parked[hint / 64], ~bit, SC) & bit) /* N2 */
            return hint;
    }
    unsigned start = hint >= 0 ? (unsigned)hint / 64 : 0;
    for (unsigned k = 0; k < p->nmask; k++) {
        unsigned wi = (start + k) % p->nmask;
        uint64_t m = ld(&p->parked[wi], SC);
        while (m) {
            uint64_t bit = m & -m;
            if (fand(&p->parked[wi], ~bit, SC) & bit) /* N2 */
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
    if (ld(&p->searching, SC) != 0) /* N2 */
        return; /* a searcher will see the work before it parks */
    int i = claim_parked(p, hint);
    if (i >= 0)
        wsched__wake_claimed(p, (unsigned)i);
}

/* Call after publishing work with a plain release store. */
void wsched__notify(struct pool *p, int hint)
{
    fence(SC); /* N1: the store->load barrier of the Dekker pair, see top */
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
    uint32_t s = fsub(&p->searching, 1, SC); /* L1 */
    DEBUG_ASSERT(s >= 1); /* we were counted */
    if (s == 1 && work_visible(p))
        wsched__notify_after_sc(p, -1);
}

/* Search for about spin_ns. Returns true with a task. */

/* ---------------------------------------------------------------- park */

/* K5: sleep in our epoll instance until an fd event, our timer (*due_ns,
 * 0 = none) or a claimer's eventfd write. True when an fd event came (left
 * in w->ev for the loop) or the timer is due. */
static bool park_epoll(struct worker *w, uint64_t *due_ns)
{
    st(&w->in_epoll, 1, SC); /* K5 */
    if (ld(&w->park_word, SC) == w->claims) { /* K5: the bump came first */
        st(&w->in_epoll, 0, RLX);
        return false;
    }
    struct timespec rel, *tp = NULL;
    if (*due_ns) {
        uint64_t now = wsched_now_ns();
        uint64_t left = *due_ns > now ? *due_ns - now : 0;
        rel.tv_sec = (time_t)(left / 1000000000u);
        rel.tv_nsec = (long)(left % 1000000000u);
        tp = &rel;
    }
    int n = epoll_pwait2(w->epfd, w->ev, WAITQ_EVENTS, tp, NULL);
    if (n < 0 && errno == ENOSYS) /* before Linux 5.11: milliseconds, rounded up */
        n = epoll_wait(w->epfd, w->ev, WAITQ_EVENTS,
                       tp ? (int)((tp->tv_sec * 1000000000ll + tp->tv_nsec + 999999) / 1000000)
                          : -1);
    st(&w->in_epoll, 0, RLX);
    /* Keep the fd events for the loop (waitq.c); drain the eventfd here, or
     * a wake written after we woke would end every later sleep at once and
     * leave the next park on the futex, deaf to fds. */
    int io = 0;
    for (int k = 0; k < n; k++) {
        if (w->ev[k].data.ptr) {
            w->ev[io++] = w->ev[k];
        } else {
            uint64_t count;
            ssize_t rd = read(w->evfd, &count, sizeof count);
            (void)rd;
        }
    }
    w->nev = io;
    if (io)
        return true;
    if (*due_ns && wsched_now_ns() >= *due_ns)
        return true;
    return false;
}

/* Park until claimed, unless the re-scan sees work or the pool stopping;
 * with due_ns, only until then (K4). */
enum park_result wsched__park(struct worker *w, uint64_t due_ns)
{
    struct pool *p = w->pool;
    _Atomic uint64_t *word = &p->parked[w->index / 64];
    uint64_t bit = 1ull << (w->index % 64);

    /* T6: our deadline for a publisher of timers that sees our bit: K1's
     * RMW (a release) publishes it with the bit. */
    st(&w->park_until, due_ns ? due_ns : UINT64_MAX, RLX);
    if (w->searching)
        DEBUG_POINT("K0-searching"); /* tests/regress/test_park_cancel_wake */
    for_(word, bit, SC); /* K1: become claimable */
    bool searched = w->searching;
    if (searched) {
        w->searching = false;
        uint32_t s = fsub(&p->searching, 1, SC); /* K1 */
        DEBUG_ASSERT(s >= 1);
        (void)s;
    }
    /* Re-scan after both RMWs (see top). */
    bool sleep = true;
    if (work_visible(p) || ld(&w->ready_pending, SC) || ld(&p->stop, SC)) { /* K2 */
        if (fand(word, ~bit, SC) & bit) { /* K2: cancelled, nobody claimed us */
            if (searched) { /* K6 (see top) */
                fadd(&p->searching, 1, SC);
                w->searching = true;
            }
            return ld(&p->stop, ACQ) ? PARK_STOP : PARK_SAW_WORK;
        }
        /* A producer claimed us first. Its wake-up is in flight: take it
         * below (it returns at once when the bump has landed), so that the
         * claimer's increment of `searching` precedes our own accounting. */
        sleep = false;
    }

    /* T6: the others' due timers again, after K1 (seq_cst loads): a
     * wheel_due stored (seq_cst) after these loads in S finds our bit set
     * and our park_until, and its publisher wakes us if that is too late
     * (waitq.c, timers_watch). One published before them, we sleep until. */
    if (sleep && p->n > 1) {
        uint64_t other = wsched__timers_due_elsewhere(w);
        if (other && (!due_ns || other < due_ns))
            due_ns = other;
    }

    /* Wait until our claim's bump arrives. */
    w->claims++;
    if (sleep) {
        STAT_ADD(w, parks, 1);
        PROBE1(park, w->index);
    }
    for (;;) {
        /* K3: ACQUIRE pairs with the claimer's RELEASE bump (N3). */
        uint32_t v = ld(&w->park_word, ACQ);
        if (v == w->claims)
            break;
        if (w->nfds && sleep && !w->nev) { /* (events not yet handled: futex) */
            if (park_epoll(w, &due_ns)) {
                /* K4/K5: an fd event or our timer. Take our bit back as K4
                 * does; lost, a claim is in flight: wait for its bump. */
                if (fand(word, ~bit, SC) & bit) {
                    w->claims--;
                    return ld(&p->stop, ACQ) ? PARK_STOP : PARK_TIMER;
                }
                due_ns = 0;
            }
            continue;
        }
        if (due_ns && sleep) {
            if (wsched_now_ns() >= due_ns) {
                /* K4: our timer is due. Take our bit back, as K2 does: won,
                 * nobody claimed us (no wake is coming); lost, a claim is in
                 * flight: wait for its bump as usual. */
                if (fand(word, ~bit, SC) & bit) {
                    w->claims--;
                    return ld(&p->stop, ACQ) ? PARK_STOP : PARK_TIMER;
                }
                due_ns = 0;
                continue;
            }
            struct timespec ts;
            futex_wait(&w->park_word, v, abs_deadline(due_ns, &ts));
            continue;
        }
        futex_wait(&w->park_word, v, NULL);
    }
    w->searching = true; /* counted by the claimer */
    if (sleep) {
        STAT_ADD(w, wakeups, 1);
        PROBE1(wake, w->index);
    }
    return ld(&p->stop, ACQ) ? PARK_STOP : PARK_WOKEN;
}
