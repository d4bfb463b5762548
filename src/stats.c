/*
 * Observability: wsched_pool_get_stats and wsched_worker_get_stats, relaxed
 * snapshots of the gauges and of counters each worker writes alone
 * (declared once: WSCHED_COUNTERS, internal.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The public struct is the X-macro list, in order, nothing else. */
#define X(name)                                                                \
    static_assert(offsetof(wsched_worker_stats, name) ==                     \
                      offsetof(struct worker_stats, name),                     \
                  "wsched_worker_stats out of step with WSCHED_COUNTERS");
WSCHED_COUNTERS(X)
#undef X
static_assert(sizeof(wsched_worker_stats) == sizeof(struct worker_stats), "layout");
#define X(name)                                                                \
    static_assert(offsetof(wsched_resilience_stats, name) ==                 \
                      offsetof(struct ds_counts, name),                        \
                  "wsched_resilience_stats out of step with DS_COUNTERS");
DS_COUNTERS(X)
#undef X

static void counters_of(struct worker *w, wsched_worker_stats *out)
{
#define X(name) out->name = ld(&w->stats.name, RLX);
    WSCHED_COUNTERS(X)
#undef X
    /* Children the inline sync ran (wsched.h; relaxed, the owner's count). */
    out->tasks += __atomic_load_n(&w->fjq.ran, __ATOMIC_RELAXED);
}

int wsched_pool_get_stats(wsched_pool *h, wsched_pool_stats *dst, size_t size)
{
    int r = wsched__handle_check(h);
    if (r)
        return r;
    if (!dst)
        return -EINVAL;
    struct pool *p = h->p;
    wsched_pool_stats o = {0}, *out = &o;
    out->nworkers = p->n;
    for (unsigned i = 0; i < p->nmask; i++)
        out->parked += (unsigned)__builtin_popcountll(ld(&p->parked[i], RLX));
    /* The counters are read one after the other while workers move
     * between states; the gauges are made consistent (header): a worker
     * between its parked bit and leaving the searcher count is parked, and
     * the transient over-count of a claim (wake_claimed counts the sleeper
     * as a searcher first) is clipped. */
    if (out->parked > p->n)
        out->parked = p->n;
    uint32_t s = ld(&p->searching, RLX);
    out->searching = s < p->n - out->parked ? s : p->n - out->parked;
    out->running = p->n - out->parked - out->searching;
    int64_t infl = ld(&h->inflight, RLX);
    for (unsigned i = 0; i < p->n; i++)
        infl -= ld(&p->workers[i].owed, RLX); /* left, not given back (H5) */
    out->inflight = infl > 0 ? (uint64_t)infl : 0;
    out->allocs = __atomic_load_n(&p->mem.calls, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *w = &p->workers[i];
        int64_t q = inbox_queued(w);
        int64_t d = ld(&w->dq.bottom, RLX) - ld(&w->dq.top, RLX);
        out->queued += (uint64_t)(q > 0 ? q : 0) + (uint64_t)(d > 0 ? d : 0);
        wsched_worker_stats ws;
        counters_of(w, &ws);
#define X(name) out->total.name += ws.name;
        WSCHED_COUNTERS(X)
#undef X
        wsched_resilience_stats *rs = &out->resilience;
#define X(name) rs->name += ld(&w->ds_stats.name, RLX);
        DS_COUNTERS(X)
#undef X
        /* As wsched_downstream_get_stats derives it (downstream.c). */
        rs->attempts += ld(&w->ds_stats.retry_attempts, RLX) -
                        ld(&w->ds_stats.job_rejected, RLX);
    }
    wsched_resilience_stats *rs = &out->resilience;
    rs->attempts += rs->jobs - rs->joined + rs->flight_handovers + rs->hedges;
    return wsched__copy_out(dst, size, &o, sizeof o, offsetof(wsched_pool_stats, resilience));
}

int wsched_worker_get_stats(wsched_pool *h, wsched_worker_stats *out, unsigned n, size_t size)
{
    int r = wsched__handle_check(h);
    if (r)
        return r;
    if (!out || size < sizeof(wsched_worker_stats) || size > SIZE_MAX / (n ? n : 1))
        return -EINVAL;
    struct pool *p = h->p;
    unsigned k = n < p->n ? n : p->n;
    for (unsigned i = 0; i < k; i++) {
        wsched_worker_stats ws;
        counters_of(&p->workers[i], &ws);
        wsched__copy_out((char *)out + (size_t)i * size, size, &ws, sizeof ws, sizeof ws);
    }
    return (int)k;
}
