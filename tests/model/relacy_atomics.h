/*
 * src/atomics.h override for the Relacy model (tests/model/deque_relacy.cpp):
 * the atomics vocabulary of src/atomics.h mapped onto rl::atomic, so that the
 * real src/deque.h and src/deque.c run under Relacy's scheduler and memory
 * model. Every operation carries `$` (Relacy's debug info: the call site in
 * deque.h/deque.c). Included by atomics.h when WSCHED_ATOMICS_OVERRIDE names
 * this file; <relacy/relacy.hpp> must already be included.
 */
#ifndef WSCHED_MODEL_RELACY_ATOMICS_H
#define WSCHED_MODEL_RELACY_ATOMICS_H

#ifndef RL_RELACY_HPP
#error "include <relacy/relacy.hpp> before the deque sources"
#endif

#define _Atomic(T) rl::atomic<T>

#define RLX rl::mo_relaxed
#define ACQ rl::mo_acquire
#define REL rl::mo_release
#define AR rl::mo_acq_rel
#define SC rl::mo_seq_cst

#define ld(p, mo) ((p)->load((mo), $))
#define st(p, v, mo) ((p)->store((v), (mo), $))
#define xchg(p, v, mo) ((p)->exchange((v), (mo), $))
#define fadd(p, v, mo) ((p)->fetch_add((v), (mo), $))
#define fsub(p, v, mo) ((p)->fetch_sub((v), (mo), $))
#define for_(p, v, mo) ((p)->fetch_or((v), (mo), $))
#define fand(p, v, mo) ((p)->fetch_and((v), (mo), $))
/* Same contract as src/atomics.h: *expected updated on failure; failure
 * order relaxed unless given. */
#define cas(p, expected, desired, mo)                                          \
    ((p)->compare_exchange_strong(*(expected), (desired), (mo), $,             \
                                  rl::mo_relaxed, $))
#define cas_f(p, expected, desired, mo, fail_mo)                               \
    ((p)->compare_exchange_strong(*(expected), (desired), (mo), $, (fail_mo), $))
#define cas_weak(p, expected, desired, mo)                                     \
    ((p)->compare_exchange_weak(*(expected), (desired), (mo), $,               \
                                rl::mo_relaxed, $))
#define fence(mo) rl::atomic_thread_fence((mo), $)

/* Layout is irrelevant to the model (and Relacy's allocations are not
 * 64-byte aligned). */
#define cacheline_aligned

static inline void cpu_relax(void) { rl::yield(1, $); }

#endif
