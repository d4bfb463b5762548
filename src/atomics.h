/*
 * Thin wrappers over C11 atomics that always take the memory order as an
 * argument, so no implicit seq_cst access (or plain access to shared state)
 * slips in. The short names keep call sites readable:
 *   ld(p, ACQ), st(p, v, REL), xchg, cas, fadd, fsub, fence(SC).
 */
#ifndef WSCHED_ATOMICS_H
#define WSCHED_ATOMICS_H

/* A model checker (tests/model) supplies its own definitions of the
 * vocabulary below (and of _Atomic(T)) to run the real deque code. */
#ifdef WSCHED_ATOMICS_OVERRIDE
#include WSCHED_ATOMICS_OVERRIDE
#else
#include <stdatomic.h>
#include <stdbool.h>

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release
#define AR memory_order_acq_rel
#define SC memory_order_seq_cst

#define ld(p, mo) atomic_load_explicit((p), (mo))
#define st(p, v, mo) atomic_store_explicit((p), (v), (mo))
#define xchg(p, v, mo) atomic_exchange_explicit((p), (v), (mo))
#define fadd(p, v, mo) atomic_fetch_add_explicit((p), (v), (mo))
#define fsub(p, v, mo) atomic_fetch_sub_explicit((p), (v), (mo))
#define for_(p, v, mo) atomic_fetch_or_explicit((p), (v), (mo))
#define fand(p, v, mo) atomic_fetch_and_explicit((p), (v), (mo))
/* Strong CAS; *expected is updated on failure. Failure order is relaxed
 * unless stated otherwise at the call site. */
#define cas(p, expected, desired, mo)                                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), (mo),  \
                                            memory_order_relaxed)
/* Strong CAS with an explicit failure order. */
#define cas_f(p, expected, desired, mo, fail_mo)                               \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), (mo),  \
                                            (fail_mo))
/* Weak CAS (may fail spuriously: for retry loops); failure relaxed. */
#define cas_weak(p, expected, desired, mo)                                     \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired), (mo),    \
                                          memory_order_relaxed)
#define fence(mo) atomic_thread_fence(mo)
#endif /* WSCHED_ATOMICS_OVERRIDE */

#define CACHELINE 64
#ifndef cacheline_aligned /* an override may define it (C++: alignas) */
#define cacheline_aligned _Alignas(CACHELINE)
#endif

#ifndef WSCHED_ATOMICS_OVERRIDE
static inline void cpu_relax(void) { __builtin_ia32_pause(); }
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
