/*
 * Process figures for the benchmark cells: peak RSS per cell, a count of the
 * threads each design creates, and the allocator the process runs on. (CPU
 * time: common_cpu_seconds in tests/common.h.)
 *
 * Threads are counted by interposing pthread_create (procstat.c): the bench
 * executables define it, so every thread any library in the process starts
 * (libwsched, libgomp, libtbb, ...) passes through the counter. The harness's
 * own client threads use wbp_raw_thread_create and are not counted.
 */
#ifndef WSCHED_BENCH_PROCSTAT_H
#define WSCHED_BENCH_PROCSTAT_H

#include <pthread.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start a thread without counting it (harness threads). */
int wbp_raw_thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);

/* Threads created through pthread_create since the process started. */
uint64_t wbp_threads_created(void);
/* Counted threads alive now, and the most alive at once since the last reset
 * (the reset sets the peak to the number alive now). */
int64_t wbp_threads_live(void);
int64_t wbp_threads_peak(void);
void wbp_threads_peak_reset(void);

/* Reset the peak RSS ("high water mark") to the current RSS: 1 if the kernel
 * allowed it (/proc/self/clear_refs, Linux >= 4.0), 0 if not. */
int wbp_rss_peak_reset(void);
/* VmHWM and VmRSS from /proc/self/status, in KiB (getrusage's ru_maxrss if
 * /proc is unreadable). */
long wbp_rss_peak_kb(void);
long wbp_rss_now_kb(void);

/* The file name of the shared object that malloc resolves to
 * ("libc.so.6", "libjemalloc.so.2"), or "unknown". */
const char *wbp_malloc_name(void);

#ifdef __cplusplus
}
#endif

#endif
