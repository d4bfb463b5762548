/*
 * WSCHED_DEBUG builds (cmake -DWSCHED_DEBUG=ON): invariant assertions and
 * delay points. Both compile to nothing otherwise.
 *
 *  DEBUG_ASSERT(cond)   abort with file:line when an invariant fails
 *  DEBUG_POINT(label)   a labelled point of a protocol (deque.h P1, T1, ...;
 *                       idle, inbox, completion: see their modules). When the
 *                       environment sets WSCHED_DEBUG_DELAY=N (1..1000), about
 *                       one call in N spins a random number of pauses or
 *                       yields the CPU, to widen race windows in stress tests
 *                       (liburcu's debug yield does the same).
 */
#ifndef WSCHED_DEBUG_H
#define WSCHED_DEBUG_H

#ifdef WSCHED_DEBUG
void wsched__debug_point(const char *label) __attribute__((visibility("hidden")));
void wsched__debug_fail(const char *what, const char *file, int line)
    __attribute__((visibility("hidden"), noreturn));
/* Tests built against the library's sources (tests/CMakeLists.txt,
 * wsched_debug) may set this before starting a pool: called at every
 * point, on the thread that reaches it. */
extern void (*wsched__debug_hook)(const char *label) __attribute__((visibility("hidden")));
#define DEBUG_POINT(label) wsched__debug_point(label)
#define DEBUG_ASSERT(cond)                                                     \
    ((cond) ? (void)0 : wsched__debug_fail(#cond, __FILE__, __LINE__))
#else
#define DEBUG_POINT(label) ((void)0)
#define DEBUG_ASSERT(cond) ((void)0)
#endif

#endif
