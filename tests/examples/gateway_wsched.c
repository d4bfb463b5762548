/*
 * The gateway on wsched: everything is a job that waits, no thread blocks.
 *
 *   listener    a batch of one job: accept4 until EAGAIN, one connection
 *               batch per accepted socket, then wsched_wait_fd(listen fd,
 *               READ) and WSCHED_PENDING
 *   connection  a batch of one job per HTTP connection, its frame the
 *               batch's arg (struct wconn): read what is there and parse;
 *               wsched_wait_fd(READ) when a request is incomplete; for a
 *               whole request submit its fan-out batch and
 *               wsched_wait_batch on it (the worker runs other work
 *               meanwhile); when it is done, write the response
 *               (wsched_wait_fd(WRITE) if the socket is full), then the
 *               next request (keep-alive, pipelining)
 *   fan-out     per HTTP request one batch of N jobs, WSCHED_BATCH_WAITS,
 *               WSCHED_POLICY_FAIL_FAST and the request's deadline_ns, its
 *               N slots preallocated in the connection's frame (input
 *               order); each job is a state machine in its slot: take an
 *               idle backend connection from its worker's pool or connect
 *               (non-blocking; wait WRITE), write the request line (wait
 *               WRITE when the socket is full), wait READ, read the reply;
 *               every fd wait carries the request's deadline
 *
 * Fail-fast: the first call that fails (the backend said ERR, a socket
 * error, a wait that timed out) fails the batch; wsched cancels the calls
 * still pending at once: they are called with WSCHED_RESUME_CANCELLED,
 * close their socket (its reply, if any, would come later) and return; the
 * batch completes, the connection job is resumed and answers 502 (504 for a
 * timeout). The deadline: each fd wait times out with it
 * (WSCHED_RESUME_TIMEDOUT), and the batch's deadline_ns covers calls not
 * started: 504.
 *
 * Backend connections: one per call in flight, taken from and given back
 * to a pool per worker (plain arrays, touched only by their worker: a job
 * resumed on another worker gives its connection to that one), so there is
 * no lock and no TIME_WAIT churn. A connection goes back only after one
 * whole reply; any other end closes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common.h"
#include "gateway.h"

/* Surprises the test asserts never happen (an fd resumption without the
 * bits waited for, a 200 outcome with a slot not filled, a wait that could
 * not be armed). */
_Atomic uint64_t gw_wsched_anomalies;
static void anomaly(const char *what, long code)
{
    atomic_fetch_add(&gw_wsched_anomalies, 1);
    fprintf(stderr, "gateway/wsched: %s: %ld (%s)\n", what, code,
            code < 0 && code > WSCHED_ERRBASE ? strerror((int)-code) : wsched_strerror((int)code));
}

/* A worker's idle backend connections. */
struct wpool {
    int *fds;
    size_t n, cap;
    char pad[64 - sizeof(int *) - 2 * sizeof(size_t)];
};

struct wgw {
    struct gateway *gw;
    wsched_pool *pool;
    wsched_batch *listener;
    unsigned nw;
    struct wpool *pools; /* nw of them */
    _Atomic long conns;  /* connection jobs alive */
    wsched_downstream *ds; /* the backend's policies (gw_config.policies), else NULL */
};

/* A call's slot: its frame, then its result. */
enum { K_CONNECT = 1, K_WRITE, K_READ, K_DONE };
struct wcall {
    uint64_t value;
    int32_t fd;
    uint16_t off, len;
    uint8_t state;
    char buf[47]; /* the request line, then the reply line */
};
_Static_assert(sizeof(struct wcall) == 64, "one cache line a slot");

struct wfan { /* the fan-out batch's arg */
    struct wgw *w;
    struct fan_plan p;
};

enum { C_READ = 1, C_FANOUT, C_WRITE };
struct wconn { /* an HTTP connection job's frame (its batch's arg) */
    struct wcall calls[GW_MAX_FANOUT]; /* the fan-out's slots */
    struct wgw *w;
    int fd;
    int state;
    bool keep_alive;     /* of the response being written */
    size_t consumed;     /* bytes of the request being served */
    wsched_batch *child; /* the fan-out in flight */
    struct wfan fan;
    size_t inlen, outoff, outlen;
    char in[GW_IN_MAX];
    char out[GW_OUT_MAX];
};

/* ------------------------------------------------ backend connection pool */

static int pool_take(struct wgw *w, wsched_ctx *ctx)
{
    int k = wsched_ctx_worker(ctx);
    if (k < 0 || (unsigned)k >= w->nw)
        return -1;
    struct wpool *p = &w->pools[k];
    return p->n ? p->fds[--p->n] : -1;
}

static void pool_give(struct wgw *w, wsched_ctx *ctx, int fd)
{
    int k = wsched_ctx_worker(ctx);
    if (k >= 0 && (unsigned)k < w->nw) {
        struct wpool *p = &w->pools[k];
        if (p->n == p->cap && p->cap < 65536) {
            size_t cap = p->cap ? p->cap * 2 : 256;
            int *f = realloc(p->fds, cap * sizeof *f);
            if (f) {
                p->fds = f;
                p->cap = cap;
            }
        }
        if (p->n < p->cap) {
            p->fds[p->n++] = fd;
            return;
        }
    }
    close(fd);
}

/* ---------------------------------------------------------- a backend call */

static int call_fail(struct wcall *c, int err)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return err;
}

/* Wait for the call's socket, with the request's deadline. */
static int call_wait(wsched_ctx *ctx, struct wfan *f, struct wcall *c, int state, unsigned ev)
{
    c->state = (uint8_t)state;
    int r = wsched_wait_fd(ctx, c->fd, ev, f->p.deadline_ns);
    if (r) {
        if (r != -ESHUTDOWN)
            anomaly("wsched_wait_fd (call)", r);
        return call_fail(c, r);
    }
    return WSCHED_PENDING;
}

/* Write the request, then read the reply, as far as the socket allows. */
static int call_step(wsched_ctx *ctx, struct wfan *f, size_t i, struct wcall *c)
{
    if (c->state == K_WRITE) {
        while (c->off < c->len) {
            ssize_t n = send(c->fd, c->buf + c->off, (size_t)(c->len - c->off), MSG_NOSIGNAL);
            if (n > 0)
                c->off = (uint16_t)(c->off + n);
            else if (n < 0 && errno == EINTR)
                continue;
            else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return call_wait(ctx, f, c, K_WRITE, WSCHED_FD_WRITE);
            else
                return call_fail(c, n < 0 ? -errno : -EPIPE);
        }
        c->off = 0; /* the reply takes the buffer; it cannot be in yet */
        return call_wait(ctx, f, c, K_READ, WSCHED_FD_READ);
    }
    for (;;) { /* K_READ */
        ssize_t n = read(c->fd, c->buf + c->off, sizeof c->buf - c->off);
        if (n > 0) {
            c->off = (uint16_t)(c->off + n);
            if (c->buf[c->off - 1] == '\n' || c->off == sizeof c->buf)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return call_wait(ctx, f, c, K_READ, WSCHED_FD_READ);
        return call_fail(c, n == 0 ? -ECONNRESET : -errno);
    }
    int r = gw_parse_reply(c->buf, c->off, gw_call_id(&f->p, (unsigned)i), &c->value);
    if (r != 0 && r != -EREMOTEIO)
        return call_fail(c, r);
    pool_give(f->w, ctx, c->fd); /* one whole reply: the connection is clean */
    c->fd = -1;
    c->state = K_DONE;
    return r;
}

static int call_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct wfan *f = arg;
    struct wcall *c = slot;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_RETRY: /* (--policies) a new attempt: the last one left no socket */
    case WSCHED_RESUME_HEDGE: /* (--hedge-ms) beside a slow one, in a zeroed slot of its own */
    case WSCHED_RESUME_FIRST: {
        c->fd = -1;
        c->value = 0;
        c->off = 0;
        /* A hedge is another replica's answer: its own draw of the
         * degraded backend's failures and stalls (attempt | 0x100). */
        unsigned draw = (unsigned)wsched_attempt(ctx) |
                        (wsched_resume_kind(ctx) == WSCHED_RESUME_HEDGE ? 0x100u : 0);
        int len = gw_call_line(&f->p, (unsigned)i, draw, c->buf,
                               sizeof c->buf);
        if (len < 0)
            return -EINVAL;
        c->len = (uint16_t)len;
        c->state = K_WRITE;
        int fd = pool_take(f->w, ctx);
        if (fd >= 0) {
            c->fd = fd;
            break;
        }
        int r = gw_connect_nb(&f->w->gw->backend, &fd);
        if (r < 0)
            return r;
        c->fd = fd;
        if (r == 1)
            return call_wait(ctx, f, c, K_CONNECT, WSCHED_FD_WRITE);
        break;
    }
    case WSCHED_RESUME_FD: {
        uint64_t ready = wsched_resume_value(ctx);
        unsigned want = c->state == K_READ ? WSCHED_FD_READ : WSCHED_FD_WRITE;
        if (!(ready & (want | WSCHED_FD_ERROR)) || (ready & ~(uint64_t)7))
            anomaly("fd resumption without the bits waited for", (long)ready);
        if (c->state == K_CONNECT) {
            int r = gw_connect_result(c->fd);
            if (r)
                return call_fail(c, r);
            c->state = K_WRITE;
        }
        break;
    }
    case WSCHED_RESUME_TIMEDOUT:
        return call_fail(c, -ETIMEDOUT);
    case WSCHED_RESUME_CANCELLED: /* fail-fast, the deadline, or shutdown */
        call_fail(c, 0);
        return 0;
    default:
        anomaly("call resumed for an unexpected reason", wsched_resume_kind(ctx));
        return call_fail(c, -EPROTO);
    }
    return call_step(ctx, f, i, c);
}

/* ------------------------------------------------------- an HTTP connection */

static void conn_end(struct wconn *c)
{
    if (c->child)
        wsched_batch_free(c->child);
    close(c->fd);
    atomic_fetch_sub(&c->w->conns, 1);
    free(c);
}

/* Wait for the connection's socket (no deadline: idle keep-alive
 * connections stay until the client closes them). */
static int conn_wait(wsched_ctx *ctx, struct wconn *c, int state, unsigned ev)
{
    c->state = state;
    int r = wsched_wait_fd(ctx, c->fd, ev, 0);
    if (r) {
        if (r != -ESHUTDOWN)
            anomaly("wsched_wait_fd (connection)", r);
        conn_end(c);
        return 0;
    }
    return WSCHED_PENDING;
}

static int conn_read(wsched_ctx *ctx, struct wconn *c);

/* Write the response; then the next request. */
static int conn_flush(wsched_ctx *ctx, struct wconn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return conn_wait(ctx, c, C_WRITE, WSCHED_FD_WRITE);
        } else {
            conn_end(c);
            return 0;
        }
    }
    c->outoff = c->outlen = 0;
    if (!c->keep_alive) {
        shutdown(c->fd, SHUT_WR);
        conn_end(c);
        return 0;
    }
    memmove(c->in, c->in + c->consumed, c->inlen - c->consumed);
    c->inlen -= c->consumed;
    c->consumed = 0;
    return conn_read(ctx, c);
}

static int conn_error(wsched_ctx *ctx, struct wconn *c, int status, const char *why)
{
    c->outlen = gw_respond_error(c->w->gw, c->out, status, why, c->keep_alive);
    return conn_flush(ctx, c);
}

/* The fan-out is done (every job returned): the response. */
static int conn_fanout_done(wsched_ctx *ctx, struct wconn *c)
{
    struct fan_plan *p = &c->fan.p;
    wsched_outcome o;
    int r = wsched_batch_outcome(c->child, &o, sizeof o);
    char why[128];
    int status = 0;
    if (r) {
        anomaly("wsched_batch_outcome", r);
        status = 503;
        snprintf(why, sizeof why, "no outcome: %s", wsched_strerror(r));
    } else if (o.end == WSCHED_END_COMPLETED && o.cancelled) {
        /* The pool's destroy cancelled the calls still waiting (the batch
         * ends COMPLETED, its slots WSCHED_ECANCELLED): the gateway stops. */
        status = 503;
        snprintf(why, sizeof why, "the gateway is stopping, %zu of %u calls in", o.ok, p->n);
    } else if (o.end == WSCHED_END_COMPLETED) {
        uint64_t values[GW_MAX_FANOUT];
        for (unsigned i = 0; i < p->n && !status; i++) {
            int st;
            if (wsched_batch_status(c->child, i, &st) != 0 || st != 0 ||
                c->calls[i].state != K_DONE) {
                anomaly("completed fan-out with a slot not filled", st);
                status = 502;
                snprintf(why, sizeof why, "call %u not filled", i);
            }
            values[i] = c->calls[i].value;
        }
        if (!status)
            c->outlen = gw_respond_ok(c->w->gw, c->out, p, values, c->keep_alive);
    } else if (o.end == WSCHED_END_DEADLINE) {
        status = 504;
        snprintf(why, sizeof why, "deadline passed, %zu of %u calls in", o.ok, p->n);
    } else if (o.end == WSCHED_END_FAILED) {
        status = gw_status_of_error(o.first_error);
        if (o.first_error == -ETIMEDOUT)
            snprintf(why, sizeof why, "deadline passed (call %zu timed out), %zu of %u calls in",
                     o.first_error_index, o.ok, p->n);
        else
            snprintf(why, sizeof why, "call %zu: %s", o.first_error_index,
                     o.first_error > WSCHED_ERRBASE ? strerror(-o.first_error)
                                                    : wsched_strerror(o.first_error));
    } else {
        status = 503;
        snprintf(why, sizeof why, "fan-out ended %u", o.end);
    }
    wsched_batch_free(c->child);
    c->child = NULL;
    if (status)
        return conn_error(ctx, c, status, why);
    return conn_flush(ctx, c);
}

/* A whole request head (or a parse error st) is in c->in. */
static int conn_serve(wsched_ctx *ctx, struct wconn *c, int st, const struct http_req *rq)
{
    if (st != 1) {
        c->keep_alive = false;
        return conn_error(ctx, c, st, "malformed request");
    }
    c->keep_alive = rq->keep_alive;
    c->consumed = rq->consumed;
    st = gw_plan(c->w->gw, rq, &c->fan.p);
    if (st)
        return conn_error(ctx, c, st, st == 404 ? "no such path" : "bad query");
    wsched_batch_desc d = {.fn = call_job,
                           .arg = &c->fan,
                           .njobs = c->fan.p.n,
                           .slots = c->calls,
                           .slot_size = sizeof(struct wcall),
                           .flags = WSCHED_BATCH_WAITS,
                           .policy = WSCHED_POLICY_FAIL_FAST,
                           .deadline_ns = c->fan.p.deadline_ns,
                           .downstream = c->w->ds};
    int r = wsched_submit(c->w->pool, &d, &c->child);
    if (r)
        return conn_error(ctx, c, 503, wsched_strerror(r));
    r = wsched_wait_batch(ctx, c->child);
    if (r) { /* cannot happen (one waiter, our own child): wait in place */
        anomaly("wsched_wait_batch", r);
        wsched_wait_idle(c->child, -1);
        return conn_fanout_done(ctx, c);
    }
    c->state = C_FANOUT;
    return WSCHED_PENDING;
}

static int conn_read(wsched_ctx *ctx, struct wconn *c)
{
    for (;;) {
        struct http_req rq;
        int st = http_parse(c->in, c->inlen, &rq);
        if (st)
            return conn_serve(ctx, c, st, &rq);
        ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
        if (n > 0) {
            c->inlen += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return conn_wait(ctx, c, C_READ, WSCHED_FD_READ);
        conn_end(c); /* EOF or an error */
        return 0;
    }
}

static int conn_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct wconn *c = arg;
    switch (wsched_resume_kind(ctx)) {
    case WSCHED_RESUME_FIRST:
        return conn_read(ctx, c);
    case WSCHED_RESUME_FD:
        return c->state == C_WRITE ? conn_flush(ctx, c) : conn_read(ctx, c);
    case WSCHED_RESUME_BATCH:
        return conn_fanout_done(ctx, c);
    case WSCHED_RESUME_CANCELLED: /* the gateway stops */
        conn_end(c);
        return 0;
    default:
        anomaly("connection resumed for an unexpected reason", wsched_resume_kind(ctx));
        conn_end(c);
        return 0;
    }
}

/* ------------------------------------------------------------- the listener */

static int listen_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct wgw *w = arg;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_CANCELLED)
        return 0;
    for (;;) {
        int fd = accept4(w->gw->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                static _Atomic int said;
                if (!atomic_exchange(&said, 1))
                    fprintf(stderr, "gateway/wsched: accept: %s\n", strerror(errno));
            }
            break;
        }
        gw_nodelay(fd);
        struct wconn *c = aligned_alloc(64, (sizeof *c + 63) & ~(size_t)63);
        if (!c) {
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        c->state = 0;
        c->child = NULL;
        c->inlen = c->outoff = c->outlen = c->consumed = 0;
        c->keep_alive = true;
        c->fan.w = w;
        wsched_batch_desc d = {.fn = conn_job, .arg = c, .njobs = 1,
                               .flags = WSCHED_BATCH_WAITS};
        wsched_batch *b;
        atomic_fetch_add(&w->conns, 1);
        int r = wsched_submit(w->pool, &d, &b);
        if (r) {
            atomic_fetch_sub(&w->conns, 1);
            close(fd);
            free(c);
            if (r == -ESHUTDOWN)
                return 0;
            continue;
        }
        wsched_batch_free(b); /* the job runs on; the library frees the batch after it */
    }
    int r = wsched_wait_fd(ctx, w->gw->lfd, WSCHED_FD_READ, 0);
    if (r) {
        if (r != -ESHUTDOWN)
            anomaly("wsched_wait_fd (listener)", r);
        return r;
    }
    return WSCHED_PENDING;
}

/* ------------------------------------------------------------ start, stop */

static void wgw_free(struct wgw *w)
{
    for (unsigned k = 0; w->pools && k < w->nw; k++) {
        for (size_t i = 0; i < w->pools[k].n; i++)
            close(w->pools[k].fds[i]);
        free(w->pools[k].fds);
    }
    free(w->pools);
    if (w->ds)
        wsched_downstream_destroy(w->ds); /* every batch naming it is complete */
    free(w);
}

/* The backend's policies (gw_config.policies): what a gateway facing a
 * failing backend would set. */
static int policies_create(struct wgw *w)
{
    wsched_downstream_config c = {
        .name = "backend",
        .retry = {.max_attempts = 3, .jitter = WSCHED_JITTER_FULL, .base_ns = 1000000,
                  .cap_ns = 20000000, .codes = {-EREMOTEIO, -ETIMEDOUT}},
        .budget = {.max_tokens = 100, .ratio_milli = 100},
        .breaker = {.failure_rate_pct = 50, .min_calls = 20, .window_calls = 200,
                    .open_ns = 1000000000, .trials = 5, .ramp_ns = 500000000},
        .attempt_timeout_ns = (uint64_t)w->gw->cfg.attempt_timeout_ms * 1000000u,
        /* Hedging, when on: after hedge_ms, or the observed hedge_pct
         * percentile of the attempts (hedge_ms until 64 were seen). */
        .hedge = {.delay_ns = (uint64_t)w->gw->cfg.hedge_ms * 1000000u,
                  .percentile = w->gw->cfg.hedge_ms ? w->gw->cfg.hedge_pct : 0},
    };
    return wsched_downstream_create(&w->ds, &c);
}

static int wsched_start(struct gateway *gw)
{
    struct wgw *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->gw = gw;
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = gw->cfg.workers;
    cfg.flags = WSCHED_POOL_NO_PIN; /* the backend and the load share the CPUs */
    int r = wsched_pool_create(&w->pool, &cfg);
    if (r) {
        free(w);
        return r;
    }
    w->nw = (unsigned)wsched_pool_workers(w->pool);
    w->pools = aligned_alloc(64, w->nw * sizeof *w->pools);
    if (!w->pools) {
        wsched_pool_destroy(w->pool);
        free(w);
        return -ENOMEM;
    }
    memset(w->pools, 0, w->nw * sizeof *w->pools);
    if (gw->cfg.policies && (r = policies_create(w)) != 0) {
        wsched_pool_destroy(w->pool);
        wgw_free(w);
        return r;
    }
    gw->impl = w;
    wsched_batch_desc d = {.fn = listen_job, .arg = w, .njobs = 1, .flags = WSCHED_BATCH_WAITS};
    r = wsched_submit(w->pool, &d, &w->listener);
    if (r) {
        wsched_pool_destroy(w->pool);
        wgw_free(w);
        return r;
    }
    return 0;
}

static void wsched_stop(struct gateway *gw)
{
    struct wgw *w = gw->impl;
    /* Stop accepting (the listener is resumed cancelled at once), then
     * destroy the pool: it cancels every wait still pending, so each
     * connection job and each call closes its socket and frees its frame. */
    wsched_cancel(w->listener);
    wsched_wait(w->listener, -1);
    wsched_pool_destroy(w->pool);
    wsched_batch_free(w->listener);
    long left = atomic_load(&w->conns);
    if (left)
        anomaly("connection jobs left after the pool's destroy", left);
    wsched_downstream_stats s;
    if (w->ds && wsched_downstream_get_stats(w->ds, &s, sizeof s) == 0)
        printf("downstream backend: %llu jobs, %llu attempts, %llu retries, %llu budget denied, "
               "%llu exhausted, breaker opened %llu, rejected %llu, %llu dead letters, "
               "%llu attempts cut, %llu hedges (%llu won, %llu denied, delay %.1f ms)\n",
               (unsigned long long)s.jobs, (unsigned long long)s.attempts,
               (unsigned long long)s.retries, (unsigned long long)s.budget_denied,
               (unsigned long long)s.exhausted, (unsigned long long)s.breaker_opened,
               (unsigned long long)s.breaker_rejected, (unsigned long long)s.dead_letters,
               (unsigned long long)s.attempt_timeouts, (unsigned long long)s.hedges,
               (unsigned long long)s.hedge_wins, (unsigned long long)s.hedges_denied,
               (double)s.hedge_delay_ns / 1e6);
    wgw_free(w);
}

const struct gw_ops gw_wsched_ops = {wsched_start, wsched_stop};
