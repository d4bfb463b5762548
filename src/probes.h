/*
 * USDT probes (systemtap's <sys/sdt.h>, provider "wsched"): a single nop each
 * when nobody traces, usable from perf (`perf probe -x libwsched.so
 * sdt_wsched:job_start`), bpftrace and systemtap. Compiled out when the
 * header is absent (WSCHED_HAVE_SDT undefined).
 *
 *   batch_submit(batch, njobs)     batch_complete(batch)
 *   job_start(batch, index)        job_end(batch, index, status)
 *   steal(thief, victim)           park(worker)          wake(worker)
 * Downstream policies (resilient.c, downstream.c, flight.c):
 *   retry(batch, index, attempt)   hedge(batch, index, attempt)
 *   hedge_won(batch, index)        budget_denied(downstream, key)
 *   breaker_state(downstream, state)  breaker_rejected(batch, index)
 *   limited(batch, index)          dead_letter(batch, index, reason)
 *   joined(batch, index)           flight_handover(batch, index)
 *   attempt_timeout(batch, index)
 */
#ifndef WSCHED_PROBES_H
#define WSCHED_PROBES_H

#ifdef WSCHED_HAVE_SDT
#include <sys/sdt.h>
#ifdef __clang__
/* sdt.h's probe macros pass an empty variadic argument (a GNU extension
 * that clang's -Wpedantic reports at every probe site). */
#pragma clang diagnostic ignored "-Wgnu-zero-variadic-macro-arguments"
#endif
#define PROBE1(name, a) STAP_PROBE1(wsched, name, a)
#define PROBE2(name, a, b) STAP_PROBE2(wsched, name, a, b)
#define PROBE3(name, a, b, c) STAP_PROBE3(wsched, name, a, b, c)
#else
#define PROBE1(name, a) ((void)0)
#define PROBE2(name, a, b) ((void)0)
#define PROBE3(name, a, b, c) ((void)0)
#endif

#endif
