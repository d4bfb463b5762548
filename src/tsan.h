/*
 * ThreadSanitizer annotations for hand-offs TSan cannot see: liburcu 0.13's
 * atomics are inline asm, so an object passed through a wfcqueue needs an
 * explicit happens-before edge (inbox.h I4).
 * Empty in every other build.
 */
#ifndef WSCHED_TSAN_H
#define WSCHED_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define WSCHED_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WSCHED_TSAN 1
#endif
#endif

#ifdef WSCHED_TSAN
#include <sanitizer/tsan_interface.h>
#define tsan_release(addr) __tsan_release((void *)(addr))
#define tsan_acquire(addr) __tsan_acquire((void *)(addr))
#else
#define tsan_release(addr) ((void)0)
#define tsan_acquire(addr) ((void)0)
#endif

#endif
