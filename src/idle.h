/*
 * Idle and wake-up (idle.c: the protocol and its Dekker argument are at the
 * top of that file), as the worker loop (worker.c) and pool lifecycle
 * (pool.c) call it. wsched__notify / wsched__notify_after_sc are declared
 * in internal.h: every producer of work calls them.
 */
#ifndef WSCHED_IDLE_H
#define WSCHED_IDLE_H

#include "internal.h"

enum park_result { PARK_WOKEN, PARK_SAW_WORK, PARK_STOP, PARK_TIMER };

/* Park until claimed, unless the re-scan sees work or the pool stopping,
 * or until due_ns (a timer of ours; 0: none): then PARK_TIMER. */
WSCHED_INTERNAL enum park_result wsched__park(struct worker *w, uint64_t due_ns);

/* A searcher that found work stops searching (and, if it was the last one
 * and more work is visible, wakes one parked worker). */
WSCHED_INTERNAL void wsched__stop_searching(struct worker *w);

/* Wake worker i, whose parked bit the caller cleared (claimed). */
WSCHED_INTERNAL void wsched__wake_claimed(struct pool *p, unsigned i);

/* worker.c: the thread function of every worker. */
WSCHED_INTERNAL void *wsched__worker_main(void *arg);

#endif
