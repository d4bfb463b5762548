/*
 * Relacy model of the batch completion chain (src/completion.h, B1-B4).
 *
 * completion.h is compiled as C++ (completion_relacy_impl.cpp) through the
 * atomics override (tests/model/relacy_atomics.h), so completion_range_done,
 * completion_signal, completion_done and completion_announce run as
 * rl::atomic operations with the memory orders written in the source. The
 * callers are run.c's, batch.c's and wait.c's, transcribed here:
 *   range_done / run_lane   write the range's slots (B1), then
 *                           completion_range_done (B2); the one that gets
 *                           true runs batch_complete:
 *   batch_complete          word_signal(&idle); completion_signal(&done)
 *                           (B3); the runtime's reference dropped (acq_rel
 *                           fetch_sub of refs: the last one frees); then
 *                           futex_wake_all(&done) when B3 said so, which
 *                           may follow the free (it reads no memory);
 *   word_signal             completion_signal (B3), futex_wake_all when it
 *                           returns true;
 *   wsched_batch_free       (the one waiter of a single-waiter run, after
 *                           its reads) a bounded poll for refs == 1, then
 *                           the caller's fetch_sub: the last one frees.
 * The batch's lifetime is the plain rl::var `alive`: every access to the
 * batch's memory reads it first, and the free writes it, so an access
 * that the free does not happen before (or after) is a data race that
 * Relacy reports: no use after free, and the wake after the free is
 * allowed because it touches no memory. (Checked by hand: the runtime's
 * drop moved before its B3 on `done` fails "detached", a data race on
 * `alive`: a detached caller's free came first, and the runtime's drop
 * then freed the batch under its own exchange.)
 *   external_wait           polls completion_done, then loops
 *                           { completion_announce -> done;
 *                             futex_wait(word, WAITED);
 *                             completion_done -> done }   (B4).
 * Built and run by tests/model/run_relacy.sh, which also runs it against
 * mutants of completion.h (one memory order changed each).
 *
 * The futex. futex_wait(word, v) enters the kernel (a scheduling point:
 * anything may run between the caller's last operation and the check), then
 * compares the word with v and sleeps, as one step with respect to
 * futex_wake (the kernel's hash-bucket lock): the comparison reads the
 * latest value of the word (debug_value: the last store in modification
 * order, as the kernel sees it under that lock; reading the latest value is
 * one of the behaviours a real futex allows, so it reports nothing a real
 * futex could not do). Sleeping parks the thread in an rl::waitset;
 * futex_wake_all (after a scheduling point: it is a second system call
 * after the exchange) bumps the word's wake sequence and unparks every
 * sleeper. Neither side creates a happens-before edge -- the kernel's lock
 * does order them on Linux, but completion.h's argument must not rely on
 * it, and Relacy's own futex (relacy/stdlib/pthread.hpp) adds exactly such
 * an edge plus seq_cst fences, which would hide B3/B4 mutants; hence this
 * one. No spurious wake-ups (they only send the waiter round its loop
 * again, which the two-waiter configurations reach anyway: the second
 * announcer's CAS fails on WAITED).
 *
 * What is checked, in every execution:
 *  - exactly one range's B2 returns true (the batch completes once);
 *  - no lost wake-up: a waiter that sleeps is woken by a futex_wake_all
 *    made after it went to sleep (its wake sequence moved), and every
 *    waiter returns; a waiter asleep when every other thread has finished
 *    is Relacy's "deadlock detected" (the word is DONE by then: the batch
 *    completed) -- mutant B3-wake shows this check is live;
 *  - a waiter that returned reads every slot: the rl::var written by the
 *    job (Relacy reports a data race unless the slot's write happens
 *    before the read: B1 -> B2 release sequence -> B3 -> B4) and its
 *    relaxed status word (which must then hold the job's value);
 *  - a waiter released by `done` finds `idle` DONE too (completion_done):
 *    batch_complete's order, which wsched_wait_idle relies on.
 *
 * Usage: completion_relacy [--mutant] [--only NAME] [--sched full|bound:K|random:N]
 *   as every model (relacy_driver.h): default every configuration of
 *   runs[] (exit status 1 if any fails); --mutant the smaller bounds, stop
 *   at the first failure.
 */
#include "completion_relacy.h"
#include "relacy_driver.h"

#include <cstdio>
#include <cstring>

namespace {

constexpr int MAXN = 4;     /* slots (jobs) */
constexpr int MAXR = 3;     /* ranges */
constexpr int MAXW = 2;     /* waiters */
constexpr int IDLE = 0, DONE = 1; /* the two wait words */

struct config {
    const char *name;
    int workers;          /* threads 0 .. workers-1 run ranges or lanes */
    bool lanes;           /* run_lane: claim jobs by fadd(next), subtract count + 1 */
    int nranges;          /* ranges mode: */
    int slots[MAXR];      /*   jobs of range r (>= 1), consecutive indices */
    int thread_of[MAXR];  /*   the worker that runs range r, in order */
    int njobs;            /* lanes mode: jobs of the batch */
    const char *waiters;  /* per waiter thread: 'd' waits on done (then frees, when alone), 'i' on idle, 'f' frees at once (detached) */
    int spins;            /* completion_done polls before announcing */
};

const config *g_cfg;

/* Coverage (counted by the threads; they do not influence the model):
 * waiter returns by a poll, by a failed announce that read DONE, by the
 * load after futex_wait; futex_waits that slept (then woken), that returned
 * at once (word no longer WAITED); executions where a waker woke someone. */
struct stats {
    unsigned long polled, announced, after_futex, slept, eagain, woke;
} g_stats;

template <int NT>
struct completion_model : rl::test_suite<completion_model<NT>, NT> {
    int nslots, nwaiters;
    rl::var<int> slot[MAXN];       /* B1: plain */
    rl::atomic<int> status[MAXN];  /* B1: relaxed */
    rl::atomic<size_t> remaining;  /* B2 */
    rl::atomic<size_t> next;       /* lanes: the next job index (run.c: relaxed) */
    rl::atomic<uint32_t> word[2];  /* idle, done */
    /* the futex of each word (plain memory: not part of the memory model) */
    rl::waitset<NT> sleepers[2];
    unsigned wake_seq[2];
    int completed;                 /* B2 returned true this many times */
    bool returned[MAXW];
    rl::atomic<uint32_t> refs;     /* caller + runtime (batch.c) */
    rl::var<int> alive;            /* the batch's memory: 1 until freed */
    int frees;                     /* batch_unref reached zero this many times */

    void before()
    {
        const config &c = *g_cfg;
        nwaiters = (int)std::strlen(c.waiters);
        RL_ASSERT(NT == c.workers + nwaiters && nwaiters <= MAXW);
        size_t units;
        if (c.lanes) {
            nslots = c.njobs;
            units = (size_t)(c.njobs + c.workers); /* start_lanes: one unit per lane */
        } else {
            nslots = 0;
            for (int r = 0; r < c.nranges; r++) {
                RL_ASSERT(c.slots[r] >= 1 && c.thread_of[r] < c.workers);
                nslots += c.slots[r];
            }
            units = (size_t)nslots;
        }
        RL_ASSERT(nslots <= MAXN);
        for (int i = 0; i < nslots; i++) {
            slot[i]($) = 0;
            status[i].store(0, rl::mo_relaxed, $);
        }
        remaining.store(units, rl::mo_relaxed, $);
        next.store(0, rl::mo_relaxed, $);
        for (int w = 0; w < 2; w++) {
            word[w].store(BATCH_RUNNING, rl::mo_relaxed, $); /* submit.c: relaxed */
            sleepers[w] = rl::waitset<NT>();
            wake_seq[w] = 0;
        }
        completed = 0;
        for (int k = 0; k < MAXW; k++)
            returned[k] = false;
        refs.store(2, rl::mo_relaxed, $);
        alive($) = 1;
        frees = 0;
    }

    /* An access to the batch's memory: it must not race with the free. */
    void touch() { RL_ASSERT(alive($) == 1); }

    void unref()
    {
        touch();
        if (refs.fetch_sub(1, rl::mo_acq_rel, $) == 1) { /* batch.c: ACQ_REL */
            alive($) = 0; /* free */
            frees++;
        }
    }

    /* ------------------------------------------------------ the futex */
    void futex_wait(int w, uint32_t v)
    {
        rl::ctx().sched(); /* entering the kernel */
        if (word[w].debug_value() != v) {
            g_stats.eagain++;
            return; /* EAGAIN */
        }
        unsigned seq = wake_seq[w];
        g_stats.slept++;
        sleepers[w].park_current(rl::ctx(), false, false, false, $);
        /* woken: only a wake made after we went to sleep can do that */
        RL_ASSERT(wake_seq[w] != seq);
    }

    void futex_wake_all(int w)
    {
        rl::ctx().sched(); /* a second system call, after the exchange */
        wake_seq[w]++;
        if (sleepers[w].unpark_all(rl::ctx(), $))
            g_stats.woke++;
    }

    /* ------------------------------------ run.c, batch.c, wait.c */
    void word_signal(int w)
    {
        touch();
        if (model_signal(&word[w])) /* B3 */
            futex_wake_all(w);
    }

    void batch_complete()
    {
        completed++;
        word_signal(IDLE);
        touch();
        bool wake = model_signal(&word[DONE]); /* B3 */
        unref();                               /* the runtime's reference */
        if (wake)
            futex_wake_all(DONE); /* no memory touched: may follow the free */
    }

    /* wsched_batch_free of a batch seen complete: a bounded poll for the
     * runtime's drop (relaxed), then our own reference. */
    void batch_free()
    {
        for (int s = 0; s < 2; s++) {
            touch();
            if (refs.load(rl::mo_relaxed, $) == 1)
                break;
        }
        unref();
    }

    void run_job(int i)
    {
        slot[i]($) = 100 + i;                    /* B1 */
        status[i].store(1000 + i, rl::mo_relaxed, $); /* B1 */
    }

    void worker(unsigned th)
    {
        const config &c = *g_cfg;
        if (c.lanes) { /* run_lane */
            size_t count = 0, i;
            while ((i = next.fetch_add(1, rl::mo_relaxed, $)) < (size_t)c.njobs) {
                run_job((int)i);
                count++;
            }
            if (model_range_done(&remaining, count + 1)) /* B2 */
                batch_complete();
            return;
        }
        int first = 0;
        for (int r = 0; r < c.nranges; r++) { /* range_done */
            if (c.thread_of[r] == (int)th) {
                for (int i = first; i < first + c.slots[r]; i++)
                    run_job(i);
                if (model_range_done(&remaining, (size_t)c.slots[r])) /* B2 */
                    batch_complete();
            }
            first += c.slots[r];
        }
    }

    bool external_wait(int w) /* no deadline */
    {
        rl::atomic<uint32_t> *wd = &word[w];
        for (int s = 0; s < g_cfg->spins; s++) {
            touch();
            if (model_done(wd)) { /* B4 */
                g_stats.polled++;
                return true;
            }
        }
        for (int it = 0;; it++) {
            /* two rounds suffice without spurious wake-ups: the second
             * announce's RMW reads DONE if the first round did not */
            RL_ASSERT(it < 3);
            touch();
            if (model_announce(wd)) { /* B4 */
                g_stats.announced++;
                return true;
            }
            futex_wait(w, BATCH_WAITED);
            touch();
            if (model_done(wd)) { /* B4 */
                g_stats.after_futex++;
                return true;
            }
        }
    }

    void waiter(int k)
    {
        if (g_cfg->waiters[k] == 'f') { /* detached: freed without a wait */
            unref();
            returned[k] = true;
            return;
        }
        int w = g_cfg->waiters[k] == 'd' ? DONE : IDLE;
        bool ok = external_wait(w);
        RL_ASSERT(ok);
        returned[k] = true;
        /* every slot and status visible (a data race otherwise) */
        for (int i = 0; i < nslots; i++) {
            int v = slot[i]($);
            RL_ASSERT(v == 100 + i);
            RL_ASSERT(status[i].load(rl::mo_relaxed, $) == 1000 + i);
        }
        /* wsched_wait returned: wsched_wait_idle must answer done */
        if (w == DONE)
            RL_ASSERT(model_done(&word[IDLE]));
        /* The one waiter of a run frees the batch (with two, the other
         * could still be reading: that would be the caller's bug). */
        if (nwaiters == 1 && w == DONE)
            batch_free();
    }

    void thread(unsigned th)
    {
        if ((int)th < g_cfg->workers)
            worker(th);
        else
            waiter((int)th - g_cfg->workers);
    }

    void after()
    {
        RL_ASSERT(completed == 1);
        /* one free when the waiter frees; otherwise the caller's reference
         * is still held */
        RL_ASSERT(frees == (nwaiters == 1 && g_cfg->waiters[0] != 'i' ? 1 : 0));
        for (int k = 0; k < nwaiters; k++)
            RL_ASSERT(returned[k]);
        if (frees == 0) { /* (a freed batch's words are not to be read) */
            RL_ASSERT(word[IDLE].debug_value() == BATCH_DONE);
            RL_ASSERT(word[DONE].debug_value() == BATCH_DONE);
        }
    }
};

/* ---------------------------------------------------------- driver */
using run = relacy_driver::run<config>;

/* Every configuration polls once (spins 1): a poll that reads a value other
 * than DONE synchronizes with nothing, so this includes every execution of
 * spins 0. sched_full: every interleaving (n unused); sched_bound: every
 * execution with at most n preemptions; in both, each load may return the
 * latest store to its location or (when the memory model allows) the one
 * before. sched_random: n sampled executions with any number of
 * preemptions, loads reading any store the memory model allows. */
const run runs[] = {
    /* 1. two ranges on two workers (2 + 1 jobs), one waiter on done */
    {{"two-ranges", 2, false, 2, {2, 1}, {0, 1}, 0, "d", 1}, rl::sched_full, 0, 1},
    {{"two-ranges", 2, false, 2, {2, 1}, {0, 1}, 0, "d", 1}, rl::sched_random, 100000, 20000},
    /* 2. three ranges on three workers: the release sequence of B2 has
     *    two links before the last subtraction */
    {{"three-ranges", 3, false, 3, {1, 1, 1}, {0, 1, 2}, 0, "d", 1}, rl::sched_bound, 4, 2},
    {{"three-ranges", 3, false, 3, {1, 1, 1}, {0, 1, 2}, 0, "d", 1}, rl::sched_random, 100000, 20000},
    /* 3. three ranges on two workers (worker 0 runs ranges 0 and 2) */
    {{"three-on-two", 2, false, 3, {1, 1, 1}, {0, 1, 0}, 0, "d", 1}, rl::sched_full, 0, 1},
    {{"three-on-two", 2, false, 3, {1, 1, 1}, {0, 1, 0}, 0, "d", 1}, rl::sched_random, 100000, 20000},
    /* 4. run_lane: two lanes claim 3 jobs (relaxed fadd on next); a lane
     *    may run none and still hold its unit */
    {{"lanes", 2, true, 0, {0}, {0}, 3, "d", 1}, rl::sched_bound, 4, 2},
    {{"lanes", 2, true, 0, {0}, {0}, 3, "d", 1}, rl::sched_random, 100000, 20000},
    /* 5. two waiters: on done and on idle; on done twice (the second
     *    announce fails on WAITED and sleeps too) */
    {{"wait-both", 2, false, 2, {1, 1}, {0, 1}, 0, "di", 1}, rl::sched_bound, 3, 2},
    {{"wait-both", 2, false, 2, {1, 1}, {0, 1}, 0, "di", 1}, rl::sched_random, 100000, 20000},
    {{"two-waiters", 2, false, 2, {1, 1}, {0, 1}, 0, "dd", 1}, rl::sched_bound, 3, 2},
    {{"two-waiters", 2, false, 2, {1, 1}, {0, 1}, 0, "dd", 1}, rl::sched_random, 100000, 20000},
    /* 6. a detached batch: the caller frees it without waiting, while the
     *    ranges run; whoever drops the last reference frees it, and the
     *    runtime touches nothing after its own drop (the futex wake aside) */
    {{"detached", 2, false, 2, {1, 1}, {0, 1}, 0, "f", 1}, rl::sched_full, 0, 1},
    {{"detached", 2, false, 2, {1, 1}, {0, 1}, 0, "f", 1}, rl::sched_random, 100000, 20000},
};

} // namespace

int main(int argc, char **argv)
{
    return relacy_driver::drive(
        argc, argv, runs, 13,
        [](const run &r, bool mutant, unsigned long &iters) {
            g_cfg = &r.cfg;
            g_stats = stats{};
            int nt = r.cfg.workers + (int)std::strlen(r.cfg.waiters);
            return nt == 3   ? relacy_driver::simulate<completion_model<3>>(r, mutant, iters)
                   : nt == 4 ? relacy_driver::simulate<completion_model<4>>(r, mutant, iters)
                             : (std::fprintf(stderr, "bad thread count %d\n", nt), false);
        },
        [](const config &c) {
            std::printf("workers=%d %s waiters=%-2s", c.workers, c.lanes ? "lanes" : "ranges",
                        c.waiters);
        },
        [] {
            std::printf("[returned: polled %lu, announce %lu, after futex %lu; futex: slept %lu, "
                        "eagain %lu, woke %lu]",
                        g_stats.polled, g_stats.announced, g_stats.after_futex, g_stats.slept,
                        g_stats.eagain, g_stats.woke);
        });
}
