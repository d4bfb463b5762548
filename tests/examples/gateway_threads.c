/*
 * The gateway's two baselines, what a C programmer writes without a
 * scheduler. Both serve HTTP with a thread per connection (blocking reads
 * and writes) and make blocking backend calls (poll with the request's
 * deadline) over one process-wide pool of idle backend connections (a
 * mutex-guarded stack: a connection per call would exhaust the ephemeral
 * ports with TIME_WAIT at these rates).
 *
 *   threads  a pthread per backend call; each appends its result to the
 *            request's array under the request's mutex (the naive Go code:
 *            go func() { mu.Lock(); responses = append(...) }), and the
 *            connection thread puts them back in input order
 *   pool     pool_threads threads and one FIFO under one mutex + condvar;
 *            the connection thread enqueues the request's N calls, which
 *            write their results into N preallocated slots
 *
 * Both answer at the first failure (fail-fast) or at the deadline without
 * waiting for the other calls: the request's state is reference-counted,
 * and calls that have not started when it failed are skipped. A call
 * already blocked in the backend runs to its reply or the deadline (a
 * blocking call cannot be interrupted cheaply): it holds its thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "gateway.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GW_STACK (1u << 20)
#else
#define GW_STACK (128u << 10)
#endif

/* ------------------------------------------------- backend connections */

struct conn_stack {
    pthread_mutex_t mu;
    int *fds;
    size_t n, cap;
};

static int stack_pop(struct conn_stack *s)
{
    int fd = -1;
    pthread_mutex_lock(&s->mu);
    if (s->n)
        fd = s->fds[--s->n];
    pthread_mutex_unlock(&s->mu);
    return fd;
}

static void stack_push(struct conn_stack *s, int fd)
{
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int *f = realloc(s->fds, cap * sizeof *f);
        if (!f) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            return;
        }
        s->fds = f;
        s->cap = cap;
    }
    s->fds[s->n++] = fd;
    pthread_mutex_unlock(&s->mu);
}

/* One blocking backend call: call i of plan p. 0 with *value, or an error
 * (-EREMOTEIO: the backend said ERR; -ETIMEDOUT: the deadline). */
static int backend_call(struct gateway *gw, struct conn_stack *cs, const struct fan_plan *p,
                        unsigned i, uint64_t *value)
{
    char buf[64];
    int len = gw_call_line(p, i, 1, buf, sizeof buf);
    if (len < 0)
        return -EINVAL;
    int fd = stack_pop(cs), r;
    if (fd < 0) {
        r = gw_connect_nb(&gw->backend, &fd);
        if (r < 0)
            return r;
        if (r == 1) {
            r = gw_poll_until(fd, POLLOUT, p->deadline_ns);
            if (r == 0)
                r = gw_connect_result(fd);
            if (r) {
                close(fd);
                return r;
            }
        }
    }
    r = gw_write_all(fd, buf, (size_t)len, p->deadline_ns);
    if (r) {
        close(fd);
        return r;
    }
    size_t off = 0;
    for (;;) {
        ssize_t n = read(fd, buf + off, sizeof buf - off);
        if (n > 0) {
            off += (size_t)n;
            if (buf[off - 1] == '\n' || off == sizeof buf)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            r = gw_poll_until(fd, POLLIN, p->deadline_ns);
            if (r) {
                close(fd); /* the late reply would arrive on it */
                return r;
            }
            continue;
        }
        close(fd);
        return n == 0 ? -ECONNRESET : -errno;
    }
    r = gw_parse_reply(buf, off, gw_call_id(p, i), value);
    if (r == 0 || r == -EREMOTEIO)
        stack_push(cs, fd); /* one whole reply: the connection is clean */
    else
        close(fd);
    return r;
}

/* ------------------------------------------------------------ requests */

struct treq;
struct tcall {
    struct treq *rq;
    unsigned index;
    struct tcall *next; /* the pool's FIFO */
};

/* A request's fan-out state: shared by its connection thread and its calls,
 * freed by whichever lets go last. */
struct treq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int refs;
    _Atomic bool over; /* failed or past its deadline: calls not started skip */
    struct gateway *gw;
    struct fan_plan p;
    unsigned done;       /* calls finished */
    int err;             /* the first failure */
    unsigned err_index;
    /* threads: results appended in completion order */
    unsigned nres;
    struct { unsigned index; uint64_t value; } res[GW_MAX_FANOUT];
    /* pool: preallocated slots in input order */
    uint64_t values[GW_MAX_FANOUT];
    struct tcall calls[GW_MAX_FANOUT];
};

static struct treq *treq_new(struct gateway *gw, const struct fan_plan *p)
{
    struct treq *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    pthread_mutex_init(&rq->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rq->cv, &ca);
    pthread_condattr_destroy(&ca);
    rq->gw = gw;
    rq->p = *p;
    atomic_init(&rq->refs, 1 + (int)p->n);
    for (unsigned i = 0; i < p->n; i++)
        rq->calls[i] = (struct tcall){rq, i, NULL};
    return rq;
}

static void treq_put(struct treq *rq, int n)
{
    if (atomic_fetch_sub(&rq->refs, n) == n) {
        pthread_cond_destroy(&rq->cv);
        pthread_mutex_destroy(&rq->mu);
        free(rq);
    }
}

/* Call c finished with r (value v): record it, wake the connection thread
 * when the request is complete or failed. */
static void treq_done(struct tcall *c, int r, uint64_t v, bool append)
{
    struct treq *rq = c->rq;
    pthread_mutex_lock(&rq->mu);
    if (r == 0) {
        if (append)
            rq->res[rq->nres].index = c->index, rq->res[rq->nres++].value = v;
        else
            rq->values[c->index] = v;
    } else if (!rq->err) {
        rq->err = r;
        rq->err_index = c->index;
        atomic_store(&rq->over, true);
    }
    if (++rq->done == rq->p.n || r != 0)
        pthread_cond_signal(&rq->cv);
    pthread_mutex_unlock(&rq->mu);
}

/* Wait for the request's calls (or its first failure, or its deadline) and
 * write the response into out: its length. Drops the waiter's reference. */
static size_t treq_finish(struct treq *rq, char *out, bool keep_alive, bool appended)
{
    struct timespec ts = {(time_t)(rq->p.deadline_ns / 1000000000u),
                          (long)(rq->p.deadline_ns % 1000000000u)};
    struct gateway *gw = rq->gw;
    pthread_mutex_lock(&rq->mu);
    while (rq->done < rq->p.n && !rq->err)
        if (pthread_cond_timedwait(&rq->cv, &rq->mu, &ts) == ETIMEDOUT) {
            if (rq->done < rq->p.n && !rq->err) {
                rq->err = -ETIMEDOUT;
                atomic_store(&rq->over, true);
            }
            break;
        }
    size_t len;
    char why[96];
    if (rq->err) {
        if (rq->err == -ETIMEDOUT)
            snprintf(why, sizeof why, "deadline passed, %u of %u calls in", rq->done, rq->p.n);
        else
            snprintf(why, sizeof why, "call %u: %s", rq->err_index, strerror(-rq->err));
        len = gw_respond_error(gw, out, gw_status_of_error(rq->err), why, keep_alive);
    } else {
        if (appended) /* put the appended results back in input order */
            for (unsigned k = 0; k < rq->nres; k++)
                rq->values[rq->res[k].index] = rq->res[k].value;
        len = gw_respond_ok(gw, out, &rq->p, rq->values, keep_alive);
    }
    pthread_mutex_unlock(&rq->mu);
    treq_put(rq, 1);
    return len;
}

/* ------------------------------------------------------ the variants' state */

struct tconn {
    struct tgw *t;
    int fd;
    pthread_t th;
    _Atomic bool finished;
    struct tconn *next;
    size_t inlen;
    char in[GW_IN_MAX];
    char out[GW_OUT_MAX];
};

struct tgw {
    struct gateway *gw;
    bool pool;              /* the variant: pool, else thread per call */
    int stopfd;             /* eventfd: wakes the acceptor */
    pthread_t acceptor;
    pthread_attr_t attr;    /* small stacks, joinable */
    pthread_attr_t dattr;   /* small stacks, detached (calls) */
    struct conn_stack cs;
    pthread_mutex_t mu;     /* conns; calls_live with cv */
    pthread_cond_t cv;
    struct tconn *conns;
    _Atomic unsigned calls_live; /* threads: call threads running */
    /* pool */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct tcall *head, *tail;
    bool qstop;
    pthread_t *workers;
    unsigned nworkers;
};

/* threads: one call thread. */
static void *call_thread(void *arg)
{
    struct tcall *c = arg;
    struct treq *rq = c->rq;
    struct tgw *t = rq->gw->impl;
    uint64_t v = 0;
    int r = atomic_load(&rq->over) ? -ECANCELED /* skipped: the request already failed */
                                   : backend_call(rq->gw, &t->cs, &rq->p, c->index, &v);
    treq_done(c, r, v, true);
    treq_put(rq, 1);
    if (atomic_fetch_sub(&t->calls_live, 1) == 1) { /* the stop may wait for it */
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    return NULL;
}

static size_t fan_out_threads(struct tgw *t, struct treq *rq, char *out, bool keep_alive)
{
    for (unsigned i = 0; i < rq->p.n; i++) {
        atomic_fetch_add(&t->calls_live, 1);
        pthread_t th;
        int r = pthread_create(&th, &t->dattr, call_thread, &rq->calls[i]);
        if (r) { /* no thread: this call fails (and so the request, fail-fast) */
            atomic_fetch_sub(&t->calls_live, 1); /* (the stop waits only after joining us) */
            treq_done(&rq->calls[i], -r, 0, true);
            treq_put(rq, (int)(rq->p.n - i));
            return treq_finish(rq, out, keep_alive, true);
        }
    }
    return treq_finish(rq, out, keep_alive, true);
}

/* pool: a worker. */
static void *pool_worker(void *arg)
{
    struct tgw *t = arg;
    for (;;) {
        pthread_mutex_lock(&t->qmu);
        while (!t->head && !t->qstop)
            pthread_cond_wait(&t->qcv, &t->qmu);
        struct tcall *c = t->head;
        if (!c) {
            pthread_mutex_unlock(&t->qmu);
            return NULL;
        }
        t->head = c->next;
        if (!t->head)
            t->tail = NULL;
        pthread_mutex_unlock(&t->qmu);
        struct treq *rq = c->rq;
        uint64_t v = 0;
        int r = atomic_load(&rq->over)                    ? -ECANCELED /* already failed */
                : common_now_ns() >= rq->p.deadline_ns ? -ETIMEDOUT /* queued too long */
                                                       : backend_call(t->gw, &t->cs, &rq->p, c->index, &v);
        treq_done(c, r, v, false);
        treq_put(rq, 1);
    }
}

static size_t fan_out_pool(struct tgw *t, struct treq *rq, char *out, bool keep_alive)
{
    for (unsigned i = 0; i + 1 < rq->p.n; i++)
        rq->calls[i].next = &rq->calls[i + 1];
    rq->calls[rq->p.n - 1].next = NULL;
    pthread_mutex_lock(&t->qmu);
    if (t->tail)
        t->tail->next = &rq->calls[0];
    else
        t->head = &rq->calls[0];
    t->tail = &rq->calls[rq->p.n - 1];
    pthread_cond_broadcast(&t->qcv);
    pthread_mutex_unlock(&t->qmu);
    return treq_finish(rq, out, keep_alive, false);
}

/* --------------------------------------------- HTTP: thread per connection */

static void *conn_thread(void *arg)
{
    struct tconn *c = arg;
    struct tgw *t = c->t;
    struct gateway *gw = t->gw;
    for (;;) {
        struct http_req rq;
        int st;
        while ((st = http_parse(c->in, c->inlen, &rq)) == 0) {
            ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                goto out; /* EOF, error, or the gateway's shutdown */
            c->inlen += (size_t)n;
        }
        size_t len;
        bool keep = st == 1 && rq.keep_alive;
        struct fan_plan p;
        if (st != 1) {
            len = gw_respond_error(gw, c->out, st, "malformed request", false);
        } else if ((st = gw_plan(gw, &rq, &p)) != 0) {
            len = gw_respond_error(gw, c->out, st, st == 404 ? "no such path" : "bad query", keep);
        } else {
            struct treq *r = treq_new(gw, &p);
            if (!r)
                len = gw_respond_error(gw, c->out, 503, "out of memory", keep);
            else if (t->pool)
                len = fan_out_pool(t, r, c->out, keep);
            else
                len = fan_out_threads(t, r, c->out, keep);
        }
        if (gw_write_all(c->fd, c->out, len, 0) != 0 || !keep)
            break;
        memmove(c->in, c->in + rq.consumed, c->inlen - rq.consumed);
        c->inlen -= rq.consumed;
    }
out:
    shutdown(c->fd, SHUT_WR);
    atomic_store(&c->finished, true);
    return NULL;
}

/* Join and free the finished connection threads (all of them: `all`). */
static void reap(struct tgw *t, bool all)
{
    pthread_mutex_lock(&t->mu);
    struct tconn **pp = &t->conns;
    while (*pp) {
        struct tconn *c = *pp;
        if (all || atomic_load(&c->finished)) {
            *pp = c->next;
            pthread_join(c->th, NULL);
            close(c->fd); /* only now: until then its number cannot be reused */
            free(c);
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

static void *acceptor(void *arg)
{
    struct tgw *t = arg;
    unsigned since_reap = 0;
    for (;;) {
        struct pollfd pf[2] = {{.fd = t->gw->lfd, .events = POLLIN}, {.fd = t->stopfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (pf[1].revents)
            return NULL;
        int fd = accept4(t->gw->lfd, NULL, NULL, SOCK_CLOEXEC); /* blocking fd */
        if (fd < 0)
            continue; /* EAGAIN (another took it), ECONNABORTED, EMFILE */
        gw_nodelay(fd);
        if (++since_reap == 64) {
            since_reap = 0;
            reap(t, false);
        }
        struct tconn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->t = t;
        c->fd = fd;
        c->inlen = 0;
        atomic_init(&c->finished, false);
        pthread_mutex_lock(&t->mu);
        if (pthread_create(&c->th, &t->attr, conn_thread, c) != 0) {
            pthread_mutex_unlock(&t->mu);
            close(fd);
            free(c);
            continue;
        }
        c->next = t->conns;
        t->conns = c;
        pthread_mutex_unlock(&t->mu);
    }
}

static void tgw_free(struct tgw *t)
{
    for (size_t i = 0; i < t->cs.n; i++)
        close(t->cs.fds[i]);
    free(t->cs.fds);
    pthread_mutex_destroy(&t->cs.mu);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->qmu);
    pthread_cond_destroy(&t->qcv);
    pthread_attr_destroy(&t->attr);
    pthread_attr_destroy(&t->dattr);
    if (t->stopfd >= 0)
        close(t->stopfd);
    free(t->workers);
    free(t);
}

static void pool_stop_workers(struct tgw *t)
{
    pthread_mutex_lock(&t->qmu);
    t->qstop = true;
    pthread_cond_broadcast(&t->qcv);
    pthread_mutex_unlock(&t->qmu);
    for (unsigned i = 0; i < t->nworkers; i++)
        pthread_join(t->workers[i], NULL);
}

static int start_common(struct gateway *gw, bool pool)
{
    struct tgw *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->gw = gw;
    t->pool = pool;
    pthread_mutex_init(&t->cs.mu, NULL);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    pthread_mutex_init(&t->qmu, NULL);
    pthread_cond_init(&t->qcv, NULL);
    pthread_attr_init(&t->attr);
    pthread_attr_setstacksize(&t->attr, GW_STACK);
    pthread_attr_init(&t->dattr);
    pthread_attr_setstacksize(&t->dattr, GW_STACK);
    pthread_attr_setdetachstate(&t->dattr, PTHREAD_CREATE_DETACHED);
    t->stopfd = eventfd(0, EFD_CLOEXEC);
    if (t->stopfd < 0) {
        int e = -errno;
        tgw_free(t);
        return e;
    }
    gw->impl = t;
    if (pool) {
        t->workers = calloc(gw->cfg.pool_threads, sizeof *t->workers);
        if (!t->workers) {
            tgw_free(t);
            return -ENOMEM;
        }
        for (; t->nworkers < gw->cfg.pool_threads; t->nworkers++) {
            int r = pthread_create(&t->workers[t->nworkers], &t->attr, pool_worker, t);
            if (r) {
                pool_stop_workers(t);
                tgw_free(t);
                return -r;
            }
        }
    }
    int r = pthread_create(&t->acceptor, NULL, acceptor, t);
    if (r) {
        if (pool)
            pool_stop_workers(t);
        tgw_free(t);
        return -r;
    }
    return 0;
}

static void stop_common(struct gateway *gw)
{
    struct tgw *t = gw->impl;
    uint64_t one = 1;
    while (write(t->stopfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(t->acceptor, NULL);
    /* Wake the connection threads blocked in read or write, then join
     * them; one inside a fan-out answers it first (bounded by its
     * deadline). */
    pthread_mutex_lock(&t->mu);
    for (struct tconn *c = t->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&t->mu);
    reap(t, true);
    if (t->pool) {
        pool_stop_workers(t); /* (the FIFO is empty: every request answered) */
    } else {
        pthread_mutex_lock(&t->mu); /* calls still blocked after their request ended */
        while (atomic_load(&t->calls_live))
            pthread_cond_wait(&t->cv, &t->mu);
        pthread_mutex_unlock(&t->mu);
    }
    tgw_free(t);
}

static int start_threads(struct gateway *gw) { return start_common(gw, false); }
static int start_pool(struct gateway *gw) { return start_common(gw, true); }

const struct gw_ops gw_threads_ops = {start_threads, stop_common};
const struct gw_ops gw_pool_ops = {start_pool, stop_common};
