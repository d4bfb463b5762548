/*
 * A downstream's admission limits and adaptive delays (wsched.h): the
 * GCRA rate limit, the adaptive (AIMD) concurrency limit, and the
 * adaptive hedge delay's latency histogram. Each shared word publishes
 * nothing but itself: relaxed atomics, argued at each site.
 *  (G1) GCRA: tat = max(tat, now) + T by one CAS when the cell conforms
 *       (tat - now <= tau); in delay mode also when it does not, the caller
 *       then waits tat - tau - T - now.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "downstream.h"
#include "probes.h"

/* ---------------------------------------------------------- rate limit */

int64_t wsched__limit_acquire(struct downstream *ds, uint64_t now, uint64_t max_delay)
{
    if (!ds->gcra_t)
        return 0;
    uint64_t tat = ld(&ds->tat, RLX);
    for (;;) {
        uint64_t t = tat > now ? tat : now;
        /* The cell conforms when it is due no later than now + tau. */
        uint64_t wait = t > now + ds->gcra_tau ? t - now - ds->gcra_tau : 0;
        if (wait && (ds->limit_mode == WSCHED_LIMIT_REJECT || (max_delay && wait > max_delay) ||
                     wait > (uint64_t)INT64_MAX)) {
            DS_COUNT(ds, limited);
            return WSCHED_ELIMITED;
        }
        if (cas_weak(&ds->tat, &tat, t + ds->gcra_t, RLX)) { /* G1 */
            if (wait)
                DS_COUNT(ds, delayed);
            return (int64_t)wait;
        }
    }
}

int64_t wsched_limit_acquire(wsched_downstream *h, uint64_t now_ns, uint64_t max_delay_ns)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    return wsched__limit_acquire(ds, now_ns ? now_ns : ds_now(ds), max_delay_ns);
}

/* ------------------------------------------------- concurrency limit */

/*
 * (L1) enter: CAS inflight + 1 while below the limit's whole part; a full
 *      limit turns the job away (never waits).
 * (L2) leave: inflight - 1 (RMW), then the AIMD step on the limit by CAS:
 *      + 1/limit for a success within latency, x 0.9 for a failure or a
 *      slow one, clamped. Relaxed: the two words publish nothing but
 *      themselves; a job may see a limit a step old.
 */
bool wsched__cc_enter(struct downstream *ds)
{
    uint64_t n = ld(&ds->cc_inflight, RLX);
    for (;;) {
        if (n >= ld(&ds->cc_limit, RLX) >> 10)
            return false;
        if (cas_weak(&ds->cc_inflight, &n, n + 1, RLX)) /* L1 */
            return true;
    }
}

void wsched__cc_leave(struct downstream *ds, int status, uint64_t ns)
{
    fsub(&ds->cc_inflight, 1, RLX); /* L2 */
    if (status == WSCHED_ECANCELLED || status == WSCHED_EDEADLINE ||
        status == WSCHED_EBREAKER || status == WSCHED_ELIMITED)
        return; /* neither way: cancelled, or never called */
    bool ok = status == 0 && (!ds->cc_latency || ns <= ds->cc_latency);
    uint64_t l = ld(&ds->cc_limit, RLX), n;
    do {
        if (ok)
            n = l + ((uint64_t)1 << 20) / l; /* + 1/limit, in 1/1024ths */
        else
            n = l * 9 / 10;
        n = n < ds->cc_min ? ds->cc_min : n > ds->cc_max ? ds->cc_max : n;
        if (n == l)
            return;
    } while (!cas_weak(&ds->cc_limit, &l, n, RLX));
}

/* ---------------------------------------------------- adaptive hedging */

/*
 * (A1) a sample goes to its worker's stripe of the histogram: bucket 0 for
 *      under 1024 ns, then 2 per power of two (relaxed RMWs: statistics).
 * (A2) every 256 samples on a stripe, whoever took the 256th sums every
 *      stripe and stores the bucket holding the percentile's upper bound
 *      in hedge_cur (relaxed: a delay, read per round; a stale one only
 *      hedges a little early or late); past 8,192 samples in all it
 *      halves every bucket (RMWs, so concurrent samples are not lost).
 */
static unsigned hist_bucket(uint64_t ns)
{
    if (ns < 1024)
        return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= 10 */
    unsigned k = (e - 10) * 2 + (unsigned)((ns >> (e - 1)) & 1) + 1;
    return k < DS_HIST ? k : DS_HIST - 1;
}

static uint64_t hist_upper(unsigned k)
{
    if (k == 0)
        return 1024;
    unsigned e = (k - 1) / 2 + 10, sub = (k - 1) % 2;
    return (1ull << e) + ((uint64_t)(sub + 1) << (e - 1));
}

void wsched__hedge_sample(struct downstream *ds, uint64_t ns)
{
    unsigned s = (unsigned)(ds_stripe_of(ds) - ds->stripe);
    fadd(&ds->hist[s][hist_bucket(ns)], 1, RLX); /* A1 */
    if ((fadd(&ds->stripe[s].samples, 1, RLX) & 255) != 255)
        return;
    uint64_t sum[DS_HIST] = {0}, total = 0;
    for (unsigned k = 0; k < DS_STRIPES; k++)
        for (unsigned j = 0; j < DS_HIST; j++)
            sum[j] += ld(&ds->hist[k][j], RLX);
    for (unsigned j = 0; j < DS_HIST; j++)
        total += sum[j];
    if (total < 64)
        return;
    uint64_t want = (total * ds->hedge_pct + 99) / 100, acc = 0;
    unsigned j = 0;
    for (; j < DS_HIST - 1; j++)
        if ((acc += sum[j]) >= want)
            break;
    st(&ds->hedge_cur, hist_upper(j), RLX); /* A2 */
    if (total > 8192)
        for (unsigned k = 0; k < DS_STRIPES; k++)
            for (unsigned b = 0; b < DS_HIST; b++) {
                uint32_t v = ld(&ds->hist[k][b], RLX);
                if (v > 1)
                    fsub(&ds->hist[k][b], v / 2, RLX);
            }
}
