/*
 * Relacy model of the real Chase-Lev deque (src/deque.h, src/deque.c).
 *
 * The deque sources are compiled as C++ (deque_relacy_impl.cpp) through the
 * atomics override (tests/model/relacy_atomics.h), so every ld/st/cas of
 * deque.h is an rl::atomic operation with the memory order written in the
 * source, and Relacy explores thread interleavings and the values each load
 * may return under its C++11 memory model. Built and run by
 * tests/model/run_relacy.sh, which also runs it against mutants of
 * deque.h/deque.c (one line changed each) and requires those to fail.
 *
 * What is checked, per configuration (owner thread 0, thieves 1..):
 *  - every pushed element is taken exactly once (owner pops + steals);
 *  - a taken element's four words are the ones pushed (no torn, stale or
 *    never-written slot), and its payload, an rl::var the owner wrote before
 *    the push, is visible to the taker without a data race (P1 -> S2);
 *  - grown arrays: copied contents seen by thieves (G1 -> S2);
 *  - reclamation (R1): deque_fini frees every array, retired ones included
 *    (the model allocator counts them; Relacy itself also reports leaked
 *    memory and rl::atomic objects), and no thief reads an array after it
 *    was freed (model_free destroys its rl::atomic words, and Relacy fails
 *    on any later access to one: build with -fno-lifetime-dse, or GCC drops
 *    the destructor's marking store);
 *  - slot reuse (P2), with one thief: a ghost rl::var per ring slot, read by
 *    the thief at DEBUG_POINT("C1-steal") (after it read the slot, before
 *    its CAS) and written by the owner at DEBUG_POINT("P1") when it stores
 *    into a slot whose previous occupant the thief stole. Relacy never lets
 *    a load read a store that comes later in its interleaving (no load
 *    buffering), so the failure P2 prevents -- the thief's slot read
 *    returning the owner's later overwrite -- cannot happen in the model;
 *    the ghost turns the missing happens-before edge (thief's CAS -> owner's
 *    acquire load of top) into a data race Relacy reports. The ghost is only
 *    sound with one thief: with two, a thief whose CAS fails may still be
 *    reading a slot that the owner legitimately reuses.
 *
 * Usage: deque_relacy [--mutant] [--only NAME] [--sched full|bound:K|random:N]
 *   as every model (relacy_driver.h): default every configuration of runs[]
 *   below (context-bound search and random sampling), exit status 1 if any
 *   fails; --mutant the smaller bounds, stop at the first failure.
 * Two translation units (deque_relacy.h): this one, and
 * deque_relacy_impl.cpp with the deque itself, so that a mutant rebuilds
 * only the latter.
 */
#include "deque_relacy.h"
#include "relacy_driver.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

/* mem.c is not under test: mem_alloc/mem_free forward to the allocator
 * exactly as mem.c does. */
void *mem_alloc(struct mem *m, size_t size, size_t align)
{
    return m->a.alloc(m->a.ctx, size, align);
}

void mem_free(const struct mem *m, void *p, size_t size, size_t align)
{
    if (p)
        m->a.free(m->a.ctx, p, size, align);
}

namespace {

constexpr int MAXN = 4;              /* at most this many pushes */
constexpr int MAXT = 3;              /* owner + at most 2 thieves */
constexpr uintptr_t ID0 = 1;         /* word a of element i is ID0 + i */
constexpr uintptr_t INIT_MARK = 0x1000; /* word a of a never-written slot k */
constexpr uintptr_t MAGIC = 0x5eed0000;

struct config {
    const char *name;
    int cap;           /* initial capacity (power of two) */
    const char *owner; /* u: push next, o: pop once, O: pop until empty */
    int thieves;
    int steals;        /* deque_steal calls per thief */
    bool ghost;        /* P2 slot-reuse ghost (one thief only) */
};

struct hooks {
    virtual void point(const char *label) = 0;
};

const config *g_cfg;
hooks *g_hooks;

/* Coverage of a run (counted in after(); they do not influence the model):
 * iterations in which the array grew, in which the owner reused the slot
 * of a stolen element (P2 ghost written), elements stolen, elements popped. */
struct stats {
    unsigned long grew, reused, stolen, popped;
} g_stats;

void model_run(struct worker *, const struct task *, bool) {}

/* ---------------------------------------------------------- allocator */
/* The deque's allocator (struct mem / wsched_allocator): Relacy's tracked
 * heap, with every rl::atomic word of a deque_array constructed and given
 * an initial value by an atomic store. The thief reads a slot before its
 * CAS, also when the CAS is bound to fail (stale top, a grown array whose
 * low slots were never copied); the value is then discarded, but Relacy
 * would report the read of a never-written atomic. Word a of slot k holds
 * INIT_MARK + k, which no element has. */
struct model_heap {
    int live, allocs, frees;
};

size_t array_words(size_t size)
{
    RL_ASSERT(size >= sizeof(struct deque_array));
    size_t n = (size - sizeof(struct deque_array)) / sizeof(rl::atomic<uintptr_t>);
    RL_ASSERT(sizeof(struct deque_array) + n * sizeof(rl::atomic<uintptr_t>) == size);
    RL_ASSERT(n % TASK_WORDS == 0);
    return n;
}

void *model_alloc(void *ctx, size_t size, size_t align)
{
    (void)align; /* rl's heap aligns to 16; nothing here needs more */
    model_heap *h = static_cast<model_heap *>(ctx);
    size_t n = array_words(size);
    void *p = rl::rl_malloc(size, $);
    struct deque_array *a = static_cast<struct deque_array *>(p);
    rl::atomic<uintptr_t> *w = &a->slot[0][0];
    for (size_t k = 0; k < n; k++) {
        ::new (static_cast<void *>(&w[k])) rl::atomic<uintptr_t>();
        w[k].store(k % TASK_WORDS == 1 ? INIT_MARK + k / TASK_WORDS : 0,
                   rl::mo_relaxed, $);
    }
    h->live++;
    h->allocs++;
    return p;
}

void model_free(void *ctx, void *p, size_t size, size_t align)
{
    (void)align;
    model_heap *h = static_cast<model_heap *>(ctx);
    size_t n = array_words(size);
    rl::atomic<uintptr_t> *w = &static_cast<struct deque_array *>(p)->slot[0][0];
    for (size_t k = 0; k < n; k++)
        w[k].~atomic();
    rl::rl_free(p, $);
    h->live--;
    h->frees++;
}

/* ---------------------------------------------------------- the model */
template <int NT>
struct deque_model : rl::test_suite<deque_model<NT>, NT>, hooks {
    struct deque d;
    struct mem m;
    model_heap heap;
    struct deque_array *arr0;
    int cap0, npush;
    rl::var<int> payload[MAXN];
    rl::var<int> ghost[MAXN];
    int taken[NT][MAXN]; /* row th written by thread th only */
    bool popped[MAXN];   /* owner only */
    int pushing;         /* owner only: element being pushed */
    bool reused;         /* owner only: a ghost write happened */
    /* P2 ghost bookkeeping (plain memory, not part of the model): the slot
     * of the initial array element i went to, and the last element pushed
     * into each slot of that array (owner only). */
    int slot_of[MAXN];
    int slot_last[MAXN];
    struct task *cur_out[NT];

    void before()
    {
        const config &c = *g_cfg;
        heap = model_heap{0, 0, 0};
        m.a = wsched_allocator{model_alloc, model_free, &heap};
        cap0 = c.cap;
        npush = 0;
        for (const char *p = c.owner; *p; p++)
            npush += *p == 'u';
        RL_ASSERT(npush <= MAXN && NT <= MAXT && NT == 1 + c.thieves);
        RL_ASSERT(!c.ghost || c.thieves == 1);
        std::memset(taken, 0, sizeof taken);
        std::memset(popped, 0, sizeof popped);
        pushing = -1;
        reused = false;
        for (int i = 0; i < MAXN; i++)
            slot_of[i] = slot_last[i] = -1;
        for (int i = 0; i < NT; i++)
            cur_out[i] = nullptr;
        for (int i = 0; i < MAXN; i++)
            ghost[i]($) = 0;
        RL_ASSERT(deque_init(&d, &m, c.cap) == 0);
        arr0 = d.array.debug_value();
        g_hooks = this;
    }

    void take(unsigned th, const struct task &t)
    {
        RL_ASSERT(t.a >= ID0 && t.a < ID0 + (uintptr_t)npush);
        int i = (int)(t.a - ID0);
        RL_ASSERT(t.run == model_run);
        RL_ASSERT(t.b == (uintptr_t)&payload[i]);
        RL_ASSERT(t.c == (MAGIC ^ (uintptr_t)i));
        /* non-atomic payload written before the push: a race (or a stale
         * value) unless the push happens before this take */
        int v = payload[i]($);
        RL_ASSERT(v == 100 + i);
        taken[th][i]++;
        if (th == 0)
            popped[i] = true;
    }

    void owner()
    {
        int next = 0;
        for (const char *p = g_cfg->owner; *p; p++) {
            struct task t;
            switch (*p) {
            case 'u': {
                int i = next++;
                payload[i]($) = 100 + i;
                t.run = model_run;
                t.a = ID0 + (uintptr_t)i;
                t.b = (uintptr_t)&payload[i];
                t.c = MAGIC ^ (uintptr_t)i;
                pushing = i;
                /* the push's index is the current bottom (owner-written) */
                slot_of[i] = (int)(d.bottom.debug_value() & (cap0 - 1));
                bool was_empty;
                RL_ASSERT(model_push_owner(&d, &t, &was_empty) == 0);
                break;
            }
            case 'o':
                if (model_pop_owner(&d, &t))
                    take(0, t);
                break;
            case 'O':
                while (model_pop_owner(&d, &t))
                    take(0, t);
                break;
            default:
                RL_ASSERT(!"bad owner script");
            }
        }
    }

    void thief(unsigned th)
    {
        for (int s = 0; s < g_cfg->steals; s++) {
            struct task t;
            std::memset(&t, 0, sizeof t);
            cur_out[th] = &t;
            if (model_steal(&d, &t) == STEAL_OK)
                take(th, t);
            cur_out[th] = nullptr;
        }
    }

    void thread(unsigned th)
    {
        if (th == 0)
            owner();
        else
            thief(th);
    }

    /* DEBUG_POINT hooks: the P2 ghost (see the top comment). */
    void point(const char *label) override
    {
        if (!g_cfg->ghost)
            return;
        if (std::strcmp(label, "P1") == 0) {
            /* Owner, between the slot stores and the release of bottom. The
             * slot's previous occupant in the initial array is taken (this
             * push did not grow, so top is past it, or the owner popped it
             * and pushes at the same index again). If the owner did not pop
             * it, the thief stole it, and all its reads of this slot must
             * happen before this point: through its CAS on top and the
             * acquire load of top at the start of this push (P2). */
            int i = pushing, sl = slot_of[i];
            struct deque_array *a = d.array.debug_value(); /* owner-written */
            if (a != arr0)
                return; /* grown: no ghost writes any more */
            int prev = slot_last[sl];
            slot_last[sl] = i;
            if (prev >= 0 && !popped[prev]) {
                ghost[sl]($) = i;
                reused = true;
            }
        } else if (std::strcmp(label, "C1-steal") == 0) {
            /* Thief, after reading the slot, before its CAS: read the ghost
             * of the initial-array slot of the element it read (of any
             * array: the owner writes ghosts only before growing, and a
             * thief that loaded the grown array acquired those writes). A
             * never-written slot (INIT_MARK) or a torn one is left to
             * take()'s checks. */
            const struct task *o = cur_out[rl::thread_index()];
            if (o && o->a >= ID0 && o->a < ID0 + (uintptr_t)npush) {
                int sl = slot_of[o->a - ID0];
                if (sl >= 0) {
                    int v = ghost[sl]($);
                    (void)v;
                }
            }
        }
    }

    void after()
    {
        for (int i = 0; i < npush; i++) {
            int n = 0;
            for (int th = 0; th < NT; th++)
                n += taken[th][i];
            RL_ASSERT(n == 1); /* neither lost nor taken twice */
            g_stats.popped += taken[0][i];
            g_stats.stolen += n - taken[0][i];
        }
        g_stats.grew += heap.allocs > 1;
        g_stats.reused += reused;
        g_hooks = nullptr;
        deque_fini(&d);
        RL_ASSERT(heap.live == 0 && heap.allocs == heap.frees);
    }
};

} // namespace

void wsched__debug_point(const char *label)
{
    if (g_hooks)
        g_hooks->point(label);
}

void wsched__debug_fail(const char *what, const char *file, int line)
{
    std::fprintf(stderr, "DEBUG_ASSERT %s at %s:%d\n", what, file, line);
    std::abort();
}

/* ---------------------------------------------------------- driver */
namespace {

using run = relacy_driver::run<config>;

/* The configurations (numbers as in run_relacy.sh's report). Thieves steal
 * a bounded number of times and the owner ends by popping until empty, so
 * every element is taken once in every correct execution.
 * sched_bound is Relacy's context-bound search: every execution with at
 * most n preemptions, where each load may return the latest store to its
 * location or (when the memory model allows) the one before -- Relacy's
 * tree searches look one store back. Its unbounded full search is the same
 * without the preemption bound; with no partial-order reduction it takes a
 * minute (15.6 million executions) for even "last". sched_random samples
 * executions with any number of preemptions, loads reading up to the
 * whole stored history of a location. */
const run runs[] = {
    /* 1. owner pushes 3, pops; one thief steals twice */
    {{"basic", 4, "uuuO", 1, 2, true}, rl::sched_bound, 3, 2},
    {{"basic", 4, "uuuO", 1, 2, true}, rl::sched_random, 200000, 50000},
    /* 1b. a pop between pushes (the owner reuses a popped index) */
    {{"push-pop", 4, "uuouO", 1, 2, true}, rl::sched_bound, 3, 2},
    {{"push-pop", 4, "uuouO", 1, 2, true}, rl::sched_random, 200000, 50000},
    /* 2. the last element: owner pop vs one steal, exactly one wins */
    {{"last", 2, "uO", 1, 1, true}, rl::sched_bound, 4, 3},
    {{"last", 2, "uO", 1, 1, true}, rl::sched_random, 100000, 20000},
    /* 3. grow: capacity 2, the third push grows (G1) unless the thief
     *    has stolen; then it reuses the stolen element's slot (P2 ghost) */
    {{"grow", 2, "uuuO", 1, 2, true}, rl::sched_bound, 3, 2},
    {{"grow", 2, "uuuO", 1, 2, true}, rl::sched_random, 200000, 50000},
    /* 4. two thieves, one steal each; with and without a grow */
    {{"two-thieves", 2, "uuO", 2, 1, false}, rl::sched_bound, 3, 2},
    {{"two-thieves", 2, "uuO", 2, 1, false}, rl::sched_random, 200000, 50000},
    {{"two-thieves-grow", 2, "uuuO", 2, 1, false}, rl::sched_bound, 2, 2},
    {{"two-thieves-grow", 2, "uuuO", 2, 1, false}, rl::sched_random, 200000, 50000},
};

} // namespace

int main(int argc, char **argv)
{
    return relacy_driver::drive(
        argc, argv, runs, 16,
        [](const run &r, bool mutant, unsigned long &iters) {
            g_cfg = &r.cfg;
            g_stats = stats{};
            return r.cfg.thieves == 1
                       ? relacy_driver::simulate<deque_model<2>>(r, mutant, iters)
                       : relacy_driver::simulate<deque_model<3>>(r, mutant, iters);
        },
        [](const config &c) {
            std::printf("owner=%-6s cap=%d thieves=%d steals=%d", c.owner, c.cap, c.thieves,
                        c.steals);
        },
        [] {
            std::printf("[grew %lu, reused %lu, stolen %lu, popped %lu]", g_stats.grew,
                        g_stats.reused, g_stats.stolen, g_stats.popped);
        });
}
