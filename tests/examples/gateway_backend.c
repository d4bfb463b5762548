/*
 * The backend of the gateway example: test infrastructure, not wsched.
 *
 * nloops event loops, each one thread with its own epoll instance, its own
 * SO_REUSEPORT listener on the shared port (the kernel spreads connections
 * over them), a timerfd and a binary min-heap of replies due. A request
 * line "<id> <delay_us> <fail>\n" files a reply at now + delay; the timerfd
 * is kept armed (absolute CLOCK_MONOTONIC, ns resolution) at the heap's
 * earliest entry, so thousands of delayed calls cost one heap entry each
 * and one timerfd read per batch that falls due. Replies are appended to
 * the connection's output buffer and written at once; what the socket does
 * not take waits for EPOLLOUT.
 *
 * A connection closed by its peer while replies are pending stays
 * allocated (closed, fd gone) until its last pending reply falls due, which
 * is then dropped: the heap never points at freed memory. A closed
 * connection is freed only after the epoll batch being handled (an event
 * for it may still follow in the batch; it is skipped).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "gateway.h"

struct be_conn {
    int fd;
    bool closed;
    bool out_armed;            /* EPOLLOUT registered */
    unsigned pending;          /* heap entries that point here */
    struct be_conn *prev, *next; /* the loop's open connections */
    size_t inlen;
    char in[256];
    char *out;
    size_t outoff, outlen, outcap;
};

struct be_timer {
    uint64_t due;
    struct be_conn *c;
    uint64_t id;
    bool fail;
};

struct be_loop {
    struct backend *be;
    int epfd, lfd, tfd, evfd;
    pthread_t th;
    bool inited, started;
    struct be_timer *heap;
    size_t nheap, capheap;
    uint64_t armed; /* due the timerfd is set to, 0: disarmed */
    struct be_conn open; /* sentinel of the open list */
    struct be_conn *dead; /* closed, nothing pending: freed after the batch */
};

struct backend {
    unsigned nloops;
    uint16_t port;
    struct be_loop *loops;
    _Atomic long conns;
    _Atomic uint64_t calls;
    pthread_mutex_t mu; /* with cv: backend_wait_no_conns */
    pthread_cond_t cv;
};

uint64_t gw_backend_value(uint64_t id) { return common_mix64(id ^ 0x5bd1e995u) % 1000000007u; }

long backend_conns(struct backend *be) { return atomic_load(&be->conns); }
uint64_t backend_calls(struct backend *be) { return atomic_load(&be->calls); }

int backend_wait_no_conns(struct backend *be, uint64_t timeout_ns)
{
    uint64_t until = common_now_ns() + timeout_ns;
    struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
    int r = 0;
    pthread_mutex_lock(&be->mu);
    while (atomic_load(&be->conns) != 0 && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&be->cv, &be->mu, &ts);
    int left = atomic_load(&be->conns) != 0;
    pthread_mutex_unlock(&be->mu);
    return left ? -ETIMEDOUT : 0;
}

/* ------------------------------------------------------------ the heap */

static int heap_push(struct be_loop *l, struct be_timer t)
{
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 1024;
        struct be_timer *h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        l->heap = h;
        l->capheap = cap;
    }
    size_t i = l->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent].due <= t.due)
            break;
        l->heap[i] = l->heap[parent];
        i = parent;
    }
    l->heap[i] = t;
    return 0;
}

static struct be_timer heap_pop(struct be_loop *l)
{
    struct be_timer top = l->heap[0];
    struct be_timer last = l->heap[--l->nheap];
    size_t i = 0, n = l->nheap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && l->heap[child + 1].due < l->heap[child].due)
            child++;
        if (last.due <= l->heap[child].due)
            break;
        l->heap[i] = l->heap[child];
        i = child;
    }
    if (n)
        l->heap[i] = last;
    return top;
}

static void rearm(struct be_loop *l)
{
    uint64_t due = l->nheap ? l->heap[0].due : 0;
    if (due == l->armed)
        return;
    struct itimerspec its = {{0, 0}, {(time_t)(due / 1000000000u), (long)(due % 1000000000u)}};
    /* due 0 disarms; a due in the past fires at once. */
    if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        l->armed = due;
}

/* ------------------------------------------------------- connections */

static void conn_free(struct be_conn *c)
{
    free(c->out);
    free(c);
}

/* c is closed and nothing points at it any more. */
static void conn_retire(struct be_loop *l, struct be_conn *c)
{
    c->next = l->dead;
    l->dead = c;
}

static void free_dead(struct be_loop *l)
{
    while (l->dead) {
        struct be_conn *c = l->dead;
        l->dead = c->next;
        conn_free(c);
    }
}

static void conn_close(struct be_loop *l, struct be_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    if (atomic_fetch_sub(&l->be->conns, 1) == 1) {
        pthread_mutex_lock(&l->be->mu);
        pthread_cond_broadcast(&l->be->cv);
        pthread_mutex_unlock(&l->be->mu);
    }
    if (c->pending == 0)
        conn_retire(l, c);
}

/* Write what is buffered; register EPOLLOUT while some is left. */
static void conn_flush(struct be_loop *l, struct be_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->out_armed) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
                if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
                    conn_close(l, c);
                    return;
                }
                c->out_armed = true;
            }
            return;
        }
        conn_close(l, c); /* EPIPE, ECONNRESET */
        return;
    }
    c->outoff = c->outlen = 0;
    if (c->out_armed) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            conn_close(l, c);
            return;
        }
        c->out_armed = false;
    }
}

static void conn_reply(struct be_loop *l, struct be_conn *c, uint64_t id, bool fail)
{
    char line[48];
    int len = fail ? snprintf(line, sizeof line, "%llu ERR\n", (unsigned long long)id)
                   : snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)id,
                              (unsigned long long)gw_backend_value(id));
    if (c->outlen + (size_t)len > c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 256;
        while (cap < c->outlen + (size_t)len)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) {
            conn_close(l, c);
            return;
        }
        c->out = o;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, line, (size_t)len);
    c->outlen += (size_t)len;
    atomic_fetch_add_explicit(&l->be->calls, 1, memory_order_relaxed);
    if (!c->out_armed)
        conn_flush(l, c);
}

/* "<id> <delay_us> <fail>": 0, or -1 when malformed. */
static int parse_request(char *line, uint64_t *id, uint64_t *delay_us, bool *fail)
{
    char *end;
    errno = 0;
    *id = strtoull(line, &end, 10);
    if (end == line || *end != ' ' || errno)
        return -1;
    line = end + 1;
    *delay_us = strtoull(line, &end, 10);
    if (end == line || *end != ' ' || errno || *delay_us > GW_DELAY_MAX_US)
        return -1;
    line = end + 1;
    if ((line[0] != '0' && line[0] != '1') || line[1] != '\0')
        return -1;
    *fail = line[0] == '1';
    return 0;
}

static void conn_readable(struct be_loop *l, struct be_conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(l, c);
            return;
        }
        c->inlen += (size_t)n;
        size_t start = 0;
        uint64_t now = 0;
        for (size_t i = 0; i < c->inlen; i++) {
            if (c->in[i] != '\n')
                continue;
            c->in[i] = '\0';
            uint64_t id, delay;
            bool fail;
            if (parse_request(c->in + start, &id, &delay, &fail) != 0) {
                conn_close(l, c);
                return;
            }
            start = i + 1;
            if (delay == 0) {
                conn_reply(l, c, id, fail);
                if (c->closed)
                    return;
                continue;
            }
            if (!now)
                now = common_now_ns();
            struct be_timer t = {now + delay * 1000u, c, id, fail};
            if (heap_push(l, t) != 0) {
                conn_close(l, c);
                return;
            }
            c->pending++;
        }
        if (start == 0 && c->inlen == sizeof c->in) { /* a line too long */
            conn_close(l, c);
            return;
        }
        memmove(c->in, c->in + start, c->inlen - start);
        c->inlen -= start;
    }
}

static void loop_accept(struct be_loop *l)
{
    for (;;) {
        int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "backend: accept: %s\n", strerror(errno));
            return;
        }
        struct be_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        gw_nodelay(fd);
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = l->open.next;
        c->prev = &l->open;
        l->open.next->prev = c;
        l->open.next = c;
        atomic_fetch_add(&l->be->conns, 1);
    }
}

static void loop_timers(struct be_loop *l)
{
    uint64_t expirations;
    while (read(l->tfd, &expirations, sizeof expirations) < 0 && errno == EINTR)
        ;
    l->armed = 0; /* it fired (or was read early): set it again below */
    uint64_t now = common_now_ns();
    while (l->nheap && l->heap[0].due <= now) {
        struct be_timer t = heap_pop(l);
        t.c->pending--;
        if (t.c->closed) {
            if (t.c->pending == 0)
                conn_retire(l, t.c);
            continue;
        }
        conn_reply(l, t.c, t.id, t.fail);
    }
}

static void *loop_main(void *arg)
{
    struct be_loop *l = arg;
    struct epoll_event evs[256];
    for (;;) {
        rearm(l);
        int n = epoll_wait(l->epfd, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "backend: epoll_wait: %s\n", strerror(errno));
            return NULL;
        }
        for (int k = 0; k < n; k++) {
            void *p = evs[k].data.ptr;
            if (p == &l->evfd)
                return NULL; /* stop */
            if (p == &l->lfd) {
                loop_accept(l);
                continue;
            }
            if (p == &l->tfd) {
                loop_timers(l);
                continue;
            }
            struct be_conn *c = p;
            if (c->closed)
                continue; /* closed earlier in this batch */
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
                conn_readable(l, c); /* reads to EOF or the error, then closes */
            if (!c->closed && (evs[k].events & EPOLLOUT))
                conn_flush(l, c);
        }
        free_dead(l);
    }
}

static int loop_init(struct backend *be, struct be_loop *l, uint16_t port)
{
    l->be = be;
    l->inited = true;
    l->open.next = l->open.prev = &l->open;
    l->lfd = l->tfd = l->evfd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -errno;
    uint16_t bound;
    l->lfd = gw_listen(port, true, &bound);
    if (l->lfd < 0)
        return l->lfd;
    be->port = bound;
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->tfd < 0 || l->evfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.ptr = &l->lfd;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->lfd, &ev) != 0)
        return -errno;
    ev.data.ptr = &l->tfd;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) != 0)
        return -errno;
    ev.data.ptr = &l->evfd;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) != 0)
        return -errno;
    return 0;
}

static void loop_fini(struct be_loop *l)
{
    /* Close every open connection (those with replies pending stay
     * allocated), then drop the heap, freeing them with their last entry. */
    while (l->open.next != &l->open)
        conn_close(l, l->open.next);
    while (l->nheap) {
        struct be_timer t = heap_pop(l);
        if (--t.c->pending == 0)
            conn_free(t.c);
    }
    free_dead(l);
    free(l->heap);
    int fds[4] = {l->lfd, l->tfd, l->evfd, l->epfd};
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int backend_start(struct backend **out, unsigned nloops, uint16_t port, uint16_t *bound)
{
    *out = NULL;
    if (nloops < 1 || nloops > 64)
        return -EINVAL;
    struct backend *be = calloc(1, sizeof *be);
    if (!be)
        return -ENOMEM;
    be->loops = calloc(nloops, sizeof *be->loops);
    if (!be->loops) {
        free(be);
        return -ENOMEM;
    }
    pthread_mutex_init(&be->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&be->cv, &ca);
    pthread_condattr_destroy(&ca);
    be->nloops = nloops;
    int r = 0;
    for (unsigned i = 0; i < nloops && r == 0; i++) /* the first picks the port */
        r = loop_init(be, &be->loops[i], i == 0 ? port : be->port);
    for (unsigned i = 0; i < nloops && r == 0; i++) {
        r = -pthread_create(&be->loops[i].th, NULL, loop_main, &be->loops[i]);
        be->loops[i].started = r == 0;
    }
    if (r != 0) {
        backend_stop(be);
        return r;
    }
    *bound = be->port;
    *out = be;
    return 0;
}

void backend_stop(struct backend *be)
{
    if (!be)
        return;
    for (unsigned i = 0; i < be->nloops; i++) {
        struct be_loop *l = &be->loops[i];
        if (l->started) {
            uint64_t one = 1;
            while (write(l->evfd, &one, sizeof one) < 0 && errno == EINTR)
                ;
            pthread_join(l->th, NULL);
        }
    }
    for (unsigned i = 0; i < be->nloops; i++)
        if (be->loops[i].inited)
            loop_fini(&be->loops[i]);
    pthread_cond_destroy(&be->cv);
    pthread_mutex_destroy(&be->mu);
    free(be->loops);
    free(be);
}
