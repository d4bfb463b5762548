/*
 * Relacy model of the real admission protocol (src/admission.h, A1-A3).
 *
 * admission.h is compiled as C++ (admission_relacy_impl.cpp) through the
 * atomics override (tests/model/relacy_atomics.h), so every ld/fadd/cas of
 * A1-A3 is an rl::atomic operation with the memory order written in the
 * source. Its callers in src/admission.c are not compiled (it needs the whole
 * pool); their few lines are copied below, line for line, without the
 * timeout:
 *   reserve()  = reserve_jobs(): A1; then A2 (wait_begin), A1, futex_wait
 *                on `word` with A2's value, wait_end, A1, and again;
 *   release()  = wsched__admit_release(): A3; if it says so, bump `word`
 *                (RELEASE fetch_add) and futex_wake_all.
 *
 * futex: model_futex_wait/model_futex_wake_all follow Relacy's own futex
 * (rl_int_futex_impl in <relacy/stdlib/pthread.hpp>, which takes only an
 * rl::atomic<int>) for the uint32_t word: a seq_cst fence on both sides
 * (the kernel's smp_mb), the waiter's value check and its sleep as one step
 * (the hash-bucket lock), a wake that unparks every sleeper. Unlike
 * Relacy's, a sleep here is never spurious (and has no timeout), so a lost
 * wake-up -- a waiter asleep on `word` while no one will bump it -- leaves
 * it parked for good, and Relacy reports DEADLOCK once the other threads
 * have finished. The fences are the kernel's, not the protocol's: without
 * either of them (tried: the real admission.h then fails), the waiter's
 * value check may read a `word` older than a bump whose wake has already
 * gone by, a lost wake-up that the real futex rules out.
 *
 * Threads: releasers 0..R-1 each hold `hold` units from the start (taken
 * by A1 in before(): admitted = R * hold <= max) and give them back in one
 * call; waiters R..R+W-1 each reserve `want` units (the waiting loop), then
 * give them back too (their batch's jobs finish). Checked, besides no
 * deadlock:
 *  - never more than max units held (a ghost count next to every A1 success
 *    and before every A3);
 *  - every waiter got its units (it returns from the loop only then) and at
 *    the end admitted == 0, waiters == 0;
 *  - the loop is bounded: each round ends either in a real wake-up or in a
 *    futex value that differs from A2's, i.e. a later bump (read-read
 *    coherence), so a waiter runs at most bumps + wakes + 1 rounds.
 * The run prints, per configuration, in how many executions some waiter
 * slept (parked in futex_wait and woken), in how many futex_wait returned
 * at once (the word moved between A2 and the sleep), and in how many a
 * waiter went round the loop more than once: every path is exercised.
 *
 * Usage: admission_relacy [--mutant] [--only NAME] [--sched full|bound:K|random:N]
 *   as every model (relacy_driver.h): default every configuration of
 *   runs[] below (exit status 1 if any fails); --mutant the smaller bounds,
 *   stop at the first failure.
 */
#include "admission_relacy.h"
#include "relacy_driver.h"

#include <cstdio>

namespace {

constexpr int MAXT = 4;

struct config {
    const char *name;
    uint64_t max;
    int releasers;
    size_t hold; /* units each releaser holds at the start */
    int waiters;
    size_t want; /* units each waiter reserves */
};

const config *g_cfg;

struct stats {
    unsigned long slept, wouldblock, rounds2;
} g_stats;

/* ---------------------------------------------------------- futex */
enum { FUTEX_WOKEN, FUTEX_WOULDBLOCK };

int model_futex_wait(rl::atomic<uint32_t> *word, uint32_t v)
{
    rl::context &c = rl::ctx();
    c.sched();
    c.atomic_thread_fence_seq_cst();
    uint32_t cur;
    {
        rl::preemption_disabler pd(c);
        cur = word->load(rl::mo_acquire, $);
    }
    if (cur != v)
        return FUTEX_WOULDBLOCK;
    /* not timed, no spurious wake-up: only model_futex_wake ends this */
    rl::unpark_reason r = word->wait(c, false, false, $);
    RL_ASSERT(r == rl::unpark_reason_normal);
    return FUTEX_WOKEN;
}

void model_futex_wake_all(rl::atomic<uint32_t> *word)
{
    rl::context &c = rl::ctx();
    c.sched();
    c.atomic_thread_fence_seq_cst();
    word->wake(c, MAXT, $);
}

/* ---------------------------------------------------------- the model */
template <int NT>
struct admission_model : rl::test_suite<admission_model<NT>, NT> {
    struct admission a;
    int held;          /* ghost: units held now (plain; Relacy runs one
                        * thread at a time) */
    int bumps, wakes;  /* ghost: word bumps, futex wakes */
    bool slept, wouldblock, rounds2;

    void before()
    {
        const config &c = *g_cfg;
        RL_ASSERT(NT == c.releasers + c.waiters && NT <= MAXT);
        RL_ASSERT((uint64_t)c.releasers * c.hold <= c.max && c.want <= c.max);
        /* pool init (zeroed), then the releasers' batches are admitted:
         * by A1 itself, so that `admitted` has the history it has in the
         * library (seq_cst CASes), not one relaxed initial store */
        st(&a.admitted, (int64_t)0, RLX);
        st(&a.waiters, 0u, RLX);
        st(&a.word, 0u, RLX);
        held = 0;
        for (int r = 0; r < c.releasers; r++) {
            RL_ASSERT(model_try_reserve(&a, c.max, c.hold));
            got(c.hold);
        }
        bumps = wakes = 0;
        slept = wouldblock = rounds2 = false;
    }

    void got(size_t n)
    {
        held += (int)n;
        RL_ASSERT((uint64_t)held <= g_cfg->max);
    }

    /* wsched__admit_release() */
    void release(size_t n)
    {
        held -= (int)n;
        RL_ASSERT(held >= 0);
        if (model_release(&a, n)) { /* A3 */
            bumps++; /* ghosts first: an upper bound at every point */
            fadd(&a.word, 1u, REL);
            wakes++;
            model_futex_wake_all(&a.word);
        }
    }

    /* reserve_jobs() without the timeout: returns once n units are held */
    void reserve(size_t n)
    {
        if (model_try_reserve(&a, g_cfg->max, n))
            return got(n);
        for (int round = 0;; round++) {
            RL_ASSERT(round <= bumps + wakes); /* see the top comment */
            if (round)
                rounds2 = true;
            uint32_t v = model_wait_begin(&a); /* A2 */
            if (model_try_reserve(&a, g_cfg->max, n)) {
                model_wait_end(&a);
                return got(n);
            }
            if (model_futex_wait(&a.word, v) == FUTEX_WOKEN)
                slept = true;
            else
                wouldblock = true;
            model_wait_end(&a);
            if (model_try_reserve(&a, g_cfg->max, n))
                return got(n);
        }
    }

    void thread(unsigned th)
    {
        const config &c = *g_cfg;
        if ((int)th < c.releasers) {
            release(c.hold);
        } else {
            reserve(c.want);
            release(c.want);
        }
    }

    void after()
    {
        RL_ASSERT(held == 0);
        RL_ASSERT(a.admitted.debug_value() == 0);
        RL_ASSERT(a.waiters.debug_value() == 0);
        g_stats.slept += slept;
        g_stats.wouldblock += wouldblock;
        g_stats.rounds2 += rounds2;
    }
};

/* ---------------------------------------------------------- driver */
using run = relacy_driver::run<config>;

/* sched_full: every interleaving, each load returning the latest store or
 * (where the memory model allows) the one before (Relacy's tree searches
 * look one store back); it finishes only for the 2-thread configuration.
 * sched_bound: the same with at most n preemptions. sched_random: any
 * number of preemptions, loads reading up to the whole stored history. */
const run runs[] = {
    /* 1. one unit, held by the releaser; one waiter wants it */
    {{"one-waiter", 1, 1, 1, 1, 1}, rl::sched_full, 1, 1},
    {{"one-waiter", 1, 1, 1, 1, 1}, rl::sched_random, 200000, 20000},
    /* 2. one unit; two waiters, each takes it and gives it back */
    {{"two-waiters", 1, 1, 1, 2, 1}, rl::sched_bound, 3, 2},
    {{"two-waiters", 1, 1, 1, 2, 1}, rl::sched_random, 200000, 20000},
    /* 3. two units, one per releaser; the waiter wants both (the first
     *    release may wake it to no avail: it sleeps again) */
    {{"two-units", 2, 2, 1, 1, 2}, rl::sched_bound, 4, 2},
    {{"two-units", 2, 2, 1, 1, 2}, rl::sched_random, 200000, 20000},
    /* 4. two units, one per releaser; two waiters want one each */
    {{"two-by-two", 2, 2, 1, 2, 1}, rl::sched_bound, 2, 1},
    {{"two-by-two", 2, 2, 1, 2, 1}, rl::sched_random, 100000, 20000},
};

} // namespace

int main(int argc, char **argv)
{
    return relacy_driver::drive(
        argc, argv, runs, 12,
        [](const run &r, bool mutant, unsigned long &iters) {
            g_cfg = &r.cfg;
            g_stats = stats{};
            int nt = r.cfg.releasers + r.cfg.waiters;
            return nt == 2   ? relacy_driver::simulate<admission_model<2>>(r, mutant, iters)
                   : nt == 3 ? relacy_driver::simulate<admission_model<3>>(r, mutant, iters)
                             : relacy_driver::simulate<admission_model<4>>(r, mutant, iters);
        },
        [](const config &c) {
            std::printf("max=%llu releasers=%dx%zu waiters=%dx%zu", (unsigned long long)c.max,
                        c.releasers, c.hold, c.waiters, c.want);
        },
        [] {
            std::printf("[slept %lu, wouldblock %lu, 2+ rounds %lu]", g_stats.slept,
                        g_stats.wouldblock, g_stats.rounds2);
        });
}
