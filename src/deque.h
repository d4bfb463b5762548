/*
 * Chase-Lev work-stealing deque, after the C11 version of Le, Pop, Cohen and
 * Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
 * Models" (PPoPP 2013), figure 1. Elements are 4-word task records held by
 * value in the ring (no allocation per task).
 *
 * Synchronisation table (who may run what at the same time):
 *   deque_push_owner, deque_pop_owner   the owning worker only; never concurrently
 *                                       with each other
 *   deque_steal                         any worker, concurrently with everything
 *   deque_init, deque_fini              one thread, nothing else running
 *
 * Memory orderings (the whole argument; each site refers back here):
 *
 *  (P1) push: element stores are relaxed, then bottom is stored with RELEASE.
 *       A thief that reads the new bottom with ACQUIRE (S2) sees the element
 *       and everything the owner wrote before pushing (the task's argument).
 *       The paper writes this as a release fence + relaxed store; a release
 *       store of bottom is the same edge for the one store that matters, and
 *       TSan (which ignores fences) can see it.
 *  (P2) push: top is read with ACQUIRE. It pairs with the thief's successful
 *       CAS on top (SEQ_CST, so also a release): the thief's relaxed read of
 *       the element it stole happens before the owner reuses that ring slot.
 *  (T1) pop: bottom is decremented with a SEQ_CST store and top then read with
 *       a SEQ_CST load. This is the store->load (Dekker) pair of the algorithm:
 *       the owner must not read top before its claim on element b is visible,
 *       or owner and thief could both take the last element. The paper uses a
 *       relaxed store + seq_cst fence + relaxed load; the two seq_cst accesses
 *       are ordered the same way in the single total order S (they compile to
 *       the same xchg + plain load on x86) and are visible to TSan.
 *  (S1) steal: top is read with SEQ_CST, then bottom with SEQ_CST (the thief
 *       half of the Dekker pair; paper: acquire load, seq_cst fence, acquire
 *       load). Argument: if the owner's pop reads top = t < b and takes
 *       element b without a CAS, then in S: owner store bottom=b < owner load
 *       top < (the CAS that later advanced top past t) < any thief load of
 *       top that returns a larger value < that thief's load of bottom, so the
 *       thief reads bottom <= b and sees at most elements below b. A thief that
 *       read top before the owner's store can only take element t < b.
 *  (S2) steal: bottom is loaded with ACQUIRE semantics (seq_cst implies it),
 *       pairing with P1; the array pointer with ACQUIRE, pairing with the
 *       RELEASE store of a grown array (G1) so its copied contents are seen.
 *  (C1) the CAS on top, in steal and in pop of the last element, is SEQ_CST as
 *       in the paper: it must stay in S for the argument above, and is a full
 *       barrier on x86 anyway (lock cmpxchg). Failure is relaxed: a failed
 *       steal reads nothing it relies on.
 *  (G1) grow: the new array is filled with relaxed stores, then published
 *       with a RELEASE store of the array pointer.
 *  (R1) reclamation: a thief may still read a grown-out array (it loaded
 *       the old pointer before G1), so the owner never frees one while the
 *       deque is in use. It keeps them on an owner-private list and
 *       deque_fini frees them all, once no thief can run (the pool's workers
 *       are joined). The cost is bounded: capacities double, so the retired
 *       arrays together are smaller than the current one. No grace period,
 *       so destroying a pool waits for nothing outside that pool.
 *
 * Departures from the paper: the fence/relaxed pairs are folded into release
 * stores and seq_cst accesses as argued above; indices are signed 64-bit so
 * they never wrap; grown-out arrays are kept until deque_fini (R1) where the
 * paper leaves reclamation open; a failed grow makes push report -ENOMEM
 * instead of aborting.
 *
 * DEBUG_POINT(label) marks the labelled points: empty in normal builds, a
 * random delay or yield in WSCHED_DEBUG builds (debug.h) to widen races.
 */
#ifndef WSCHED_DEQUE_H
#define WSCHED_DEQUE_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "atomics.h"
#include "debug.h"
#include "mem.h"

/* Internal symbols carry the library's prefix (see inbox.h). */
#define deque_init wsched__deque_init
#define deque_fini wsched__deque_fini
#define deque_grow wsched__deque_grow

/* A task record: what it runs and three words of payload. */
struct task;
struct worker;
typedef void (*task_run_fn)(struct worker *w, const struct task *t, bool stolen);
/* `run` and three words that only `run` interprets (internal.h has the
 * typed views of each kind). */
struct task {
    task_run_fn run;
    uintptr_t a, b, c;
};
#define TASK_WORDS 4
static_assert(sizeof(struct task) == TASK_WORDS * sizeof(uintptr_t), "task record size");

struct deque_array {
    struct deque_array *retired; /* older arrays, owner-private (R1) */
    int64_t mask; /* capacity - 1; capacity is a power of two */
    _Atomic(uintptr_t) slot[][TASK_WORDS];
};

struct deque {
    /* Written by thieves (CAS) and by the owner when it takes the last element. */
    cacheline_aligned _Atomic(int64_t) top;
    /* Written by the owner only; read by thieves. */
    cacheline_aligned _Atomic(int64_t) bottom;
    _Atomic(struct deque_array *) array;
    struct mem *mem;
    /* No thief can ever come (a pool of one worker: nobody calls
     * deque_steal on this deque): pop needs no store->load barrier (T1)
     * and no CAS. Set before the worker starts, never changed. */
    bool solo;
};

int deque_init(struct deque *d, struct mem *mem, int64_t capacity);
/* Frees the current array and every retired one (R1). Nothing else may use
 * the deque any more. */
void deque_fini(struct deque *d);
/* Grow: owner only; called by push when the ring is full. */
int deque_grow(struct deque *d, int64_t b, int64_t t);

static inline void task_store(_Atomic(uintptr_t) *s, const struct task *t)
{
    st(&s[0], (uintptr_t)t->run, RLX);
    st(&s[1], t->a, RLX);
    st(&s[2], t->b, RLX);
    st(&s[3], t->c, RLX);
}

static inline void task_load(_Atomic(uintptr_t) *s, struct task *t)
{
    t->run = (task_run_fn)ld(&s[0], RLX);
    t->a = ld(&s[1], RLX);
    t->b = ld(&s[2], RLX);
    t->c = ld(&s[3], RLX);
}

/*
 * Owner: push a task at the bottom. Returns 0, or -ENOMEM when the ring was
 * full and could not grow. *was_empty says whether no stealable task existed
 * before this push (the caller then looks for a sleeping worker to wake).
 */
static inline int deque_push_owner(struct deque *d, const struct task *t,
                                   bool *was_empty)
{
    int64_t b = ld(&d->bottom, RLX); /* only the owner writes bottom */
    int64_t top = ld(&d->top, ACQ);  /* P2 */
    DEBUG_ASSERT(top <= b);
    struct deque_array *a = ld(&d->array, RLX); /* only the owner writes it */
    if (unlikely(b - top > a->mask)) {
        int r = deque_grow(d, b, top);
        if (r)
            return r;
        a = ld(&d->array, RLX);
    }
    task_store(a->slot[b & a->mask], t);
    DEBUG_POINT("P1");
    st(&d->bottom, b + 1, REL); /* P1 */
    *was_empty = b <= top;
    return 0;
}

/* Owner: how many more pushes fit without growing the ring. A lower bound
 * (relaxed: thieves only ever advance top, which only adds room). */
static inline int64_t deque_room(struct deque *d)
{
    int64_t b = ld(&d->bottom, RLX), top = ld(&d->top, RLX);
    return ld(&d->array, RLX)->mask + 1 - (b - top);
}

/* Owner: take the most recently pushed task. */
static inline bool deque_pop_owner(struct deque *d, struct task *out)
{
    int64_t b = ld(&d->bottom, RLX) - 1;
    struct deque_array *a = ld(&d->array, RLX);
    if (d->solo) {
        /* Departure from the paper, for a deque no thief ever reads: top
         * never moves, the owner alone takes and puts back (relaxed: the
         * stores are for the stats' snapshot of the depth, nothing else). */
        if (b < ld(&d->top, RLX))
            return false;
        task_load(a->slot[b & a->mask], out);
        st(&d->bottom, b, RLX);
        return true;
    }
    st(&d->bottom, b, SC);          /* T1: claim b before reading top */
    DEBUG_POINT("T1");
    int64_t t = ld(&d->top, SC);    /* T1 */
    DEBUG_ASSERT(t <= b + 1); /* thieves never take past what we pushed */
    if (likely(t < b)) {
        /* More than one element: thieves can only reach indices < b. */
        task_load(a->slot[b & a->mask], out);
        return true;
    }
    bool got = false;
    if (t == b) {
        /* Last element: race the thieves for it through top (C1). */
        task_load(a->slot[b & a->mask], out);
        DEBUG_POINT("C1-pop");
        got = cas(&d->top, &t, t + 1, SC);
    }
    /* Empty (or lost the race): restore bottom = top. Relaxed is enough: a
     * thief that reads the stale b sees t >= b or fails its CAS. */
    st(&d->bottom, b + 1, RLX);
    return got;
}

enum steal_result { STEAL_EMPTY = 0, STEAL_OK = 1, STEAL_RETRY = 2 };

/* Any worker: take the oldest task. STEAL_RETRY = lost a race, not empty. */
static inline enum steal_result deque_steal(struct deque *d, struct task *out)
{
    int64_t t = ld(&d->top, SC);    /* S1 */
    DEBUG_POINT("S1");
    int64_t b = ld(&d->bottom, SC); /* S1, and acquire for P1 (S2) */
    if (t >= b)
        return STEAL_EMPTY;
    struct deque_array *a = ld(&d->array, ACQ); /* S2 / G1 */
    task_load(a->slot[t & a->mask], out);
    DEBUG_POINT("C1-steal");
    if (!cas(&d->top, &t, t + 1, SC)) /* C1 */
        return STEAL_RETRY;
    return STEAL_OK;
}

/* Owner: is there nothing a thief could take? (relaxed: a hint for splitting;
 * a stale answer costs one split more or less, never correctness) */
static inline bool deque_empty_hint(struct deque *d)
{
    return ld(&d->bottom, RLX) <= ld(&d->top, RLX);
}

/* Any thread: approximate size, for scanning before parking (idle.c). */
static inline bool deque_nonempty_sc(struct deque *d)
{
    int64_t t = ld(&d->top, SC);
    int64_t b = ld(&d->bottom, SC);
    return t < b;
}

#endif
