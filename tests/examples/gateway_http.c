/*
 * The gateway example's common parts: HTTP/1.1 request parsing (GET only,
 * keep-alive, no request bodies), the request plan, the backend wire
 * format, responses, socket helpers, the gateway's start/stop and the
 * blocking HTTP client of the test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "gateway.h"

const char *const gw_variant_names[3] = {"wsched", "threads", "pool"};

extern const struct gw_ops gw_wsched_ops, gw_threads_ops, gw_pool_ops;

void gw_config_init(struct gw_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->variant = GW_WSCHED;
    cfg->workers = 2;
    cfg->pool_threads = 64;
    cfg->delay_us = 1000;
    cfg->deadline_ms = 1000;
    cfg->seed = 42;
    cfg->stall_ms = 2000;
    cfg->attempt_timeout_ms = 300;
}

/* ---------------------------------------------------------------- HTTP */

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

/* The header value v[0, n) lists token (case-insensitive, comma-separated). */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
    }
    return false;
}

int http_parse(const char *buf, size_t len, struct http_req *rq)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            end = buf + i + 4;
            break;
        }
    if (!end)
        return len >= GW_IN_MAX ? 431 : 0;
    rq->consumed = (size_t)(end - buf);
    const char *line_end = find_crlf(buf, end);
    /* Request line: METHOD SP TARGET SP VERSION. */
    const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
    if (!sp1)
        return 400;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1)
        return 400;
    size_t vlen = (size_t)(line_end - sp2 - 1);
    bool http11;
    if (vlen == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)
        http11 = true;
    else if (vlen == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
        http11 = false;
    else
        return vlen >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
    rq->target = sp1 + 1;
    rq->target_len = (size_t)(sp2 - sp1 - 1);
    rq->keep_alive = http11;
    bool get = sp1 - buf == 3 && memcmp(buf, "GET", 3) == 0;
    /* Headers: Connection, and no body (Content-Length, Transfer-Encoding). */
    const char *p = line_end + 2;
    while (p < end - 2) {
        const char *e = find_crlf(p, end);
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (!colon || colon == p)
            return 400;
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1;
        size_t vl = (size_t)(e - v);
        if (nl == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if (has_token(v, vl, "close"))
                rq->keep_alive = false;
            else if (has_token(v, vl, "keep-alive"))
                rq->keep_alive = true;
        } else if (nl == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            return 400;
        } else if (nl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            while (vl && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl != 1 || *v != '0')
                return 400;
        }
        p = e + 2;
    }
    return get ? 1 : 405;
}

unsigned gw_default_fanout(uint64_t seed, uint64_t req_id)
{
    return 10 + (unsigned)(common_mix64(seed ^ (req_id * 0x9e3779b97f4a7c15ull)) % 11);
}

/* A decimal number s[0, n) in [0, max]: 0 with *v set, or -1. */
static int parse_num(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    if (n == 0 || n > 19)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > max)
        return -1;
    *v = x;
    return 0;
}

int gw_plan(struct gateway *gw, const struct http_req *rq, struct fan_plan *p)
{
    const char *t = rq->target, *end = t + rq->target_len;
    const char *q = memchr(t, '?', rq->target_len);
    const char *path_end = q ? q : end;
    if (path_end - t != 1 || t[0] != '/')
        return 404;
    uint64_t id = UINT64_MAX, n = 0, d = gw->cfg.delay_us, f = UINT64_MAX, fdl = 0,
             s = UINT64_MAX, sd = 10000000, ms = gw->cfg.deadline_ms;
    for (const char *k = q ? q + 1 : end; k < end;) {
        const char *amp = memchr(k, '&', (size_t)(end - k));
        const char *e = amp ? amp : end;
        const char *eq = memchr(k, '=', (size_t)(e - k));
        if (!eq)
            return 400;
        size_t kl = (size_t)(eq - k);
        const char *v = eq + 1;
        size_t vl = (size_t)(e - v);
        int bad;
#define KEY(name) (kl == sizeof(name) - 1 && memcmp(k, name, kl) == 0)
        if (KEY("id"))
            bad = parse_num(v, vl, GW_REQ_ID_MAX - 1, &id);
        else if (KEY("n"))
            bad = parse_num(v, vl, GW_MAX_FANOUT, &n) || n == 0;
        else if (KEY("d"))
            bad = parse_num(v, vl, GW_DELAY_MAX_US, &d);
        else if (KEY("f"))
            bad = parse_num(v, vl, GW_MAX_FANOUT - 1, &f);
        else if (KEY("fd"))
            bad = parse_num(v, vl, GW_DELAY_MAX_US, &fdl);
        else if (KEY("s"))
            bad = parse_num(v, vl, GW_MAX_FANOUT - 1, &s);
        else if (KEY("sd"))
            bad = parse_num(v, vl, GW_DELAY_MAX_US, &sd);
        else if (KEY("t"))
            bad = parse_num(v, vl, 600000, &ms) || ms == 0;
        else
            bad = 1;
#undef KEY
        if (bad)
            return 400;
        k = e + (amp != NULL);
    }
    if (id == UINT64_MAX)
        id = atomic_fetch_add_explicit(&gw->seq, 1, memory_order_relaxed) % GW_REQ_ID_MAX;
    if (n == 0)
        n = gw_default_fanout(gw->cfg.seed, id);
    if ((f != UINT64_MAX && f >= n) || (s != UINT64_MAX && s >= n) || (f == s && f != UINT64_MAX))
        return 400;
    p->req_id = id;
    p->n = (unsigned)n;
    p->delay_us = (uint32_t)d;
    p->fail_index = f == UINT64_MAX ? -1 : (int)f;
    p->fail_delay_us = (uint32_t)fdl;
    p->slow_index = s == UINT64_MAX ? -1 : (int)s;
    p->slow_delay_us = (uint32_t)sd;
    p->deadline_ns = common_now_ns() + ms * 1000000u;
    p->fail_pct = gw->cfg.fail_pct;
    p->stall_pct = gw->cfg.stall_pct;
    p->stall_us = gw->cfg.stall_ms * 1000u;
    return 0;
}

int gw_call_line(const struct fan_plan *p, unsigned i, unsigned attempt, char *buf, size_t cap)
{
    uint32_t delay = p->delay_us;
    int fail = (int)i == p->fail_index;
    if (!fail && p->fail_pct &&
        common_mix64(gw_call_id(p, i) * 0x9E3779B97F4A7C15ull + attempt) % 100 < p->fail_pct)
        fail = 1; /* the degraded backend's failure, after the call's delay */
    else if (fail)
        delay = p->fail_delay_us;
    else if ((int)i == p->slow_index)
        delay = p->slow_delay_us;
    if (!fail && p->stall_pct &&
        common_mix64(gw_call_id(p, i) * 0xC2B2AE3D27D4EB4Full + attempt) % 100 < p->stall_pct)
        delay = p->stall_us; /* the stalling backend's */
    int n = snprintf(buf, cap, "%llu %u %d\n", (unsigned long long)gw_call_id(p, i), delay, fail);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int gw_parse_reply(const char *buf, size_t len, uint64_t id, uint64_t *value)
{
    if (len < 2 || buf[len - 1] != '\n')
        return -EPROTO;
    const char *sp = memchr(buf, ' ', len);
    uint64_t got;
    if (!sp || parse_num(buf, (size_t)(sp - buf), UINT64_MAX - 1, &got) || got != id)
        return -EPROTO;
    const char *v = sp + 1;
    size_t vl = (size_t)(buf + len - 1 - v);
    if (vl == 3 && memcmp(v, "ERR", 3) == 0)
        return -EREMOTEIO;
    if (parse_num(v, vl, UINT64_MAX - 1, value))
        return -EPROTO;
    return 0;
}

int gw_status_of_error(int err)
{
    switch (err) {
    case -ETIMEDOUT:
        return 504;
    case -EAGAIN:
    case -ENOMEM:
    case -ESHUTDOWN:
    case -ECANCELED:
        return 503;
    default:
        return 502;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static void count(struct gateway *gw, int status)
{
    atomic_fetch_add_explicit(&gw->n_req, 1, memory_order_relaxed);
    _Atomic uint64_t *c = status == 200 ? &gw->n_ok
                          : status == 502 ? &gw->n_502
                          : status == 504 ? &gw->n_504
                          : status == 503 ? &gw->n_503
                                          : &gw->n_400;
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static size_t respond(char *out, int status, const char *body, size_t blen, bool keep_alive)
{
    int h = snprintf(out, GW_OUT_MAX,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                     status, reason(status), blen, keep_alive ? "" : "Connection: close\r\n");
    if (h < 0 || (size_t)h + blen > GW_OUT_MAX)
        abort(); /* cannot happen: bodies are bounded */
    memcpy(out + h, body, blen);
    return (size_t)h + blen;
}

size_t gw_respond_ok(struct gateway *gw, char *out, const struct fan_plan *p,
                     const uint64_t *values, bool keep_alive)
{
    char body[GW_OUT_MAX - 256];
    uint64_t sum = 0;
    for (unsigned i = 0; i < p->n; i++)
        sum += values[i];
    size_t b = (size_t)snprintf(body, sizeof body, "req %llu n %u sum %llu\n",
                                (unsigned long long)p->req_id, p->n, (unsigned long long)sum);
    for (unsigned i = 0; i < p->n; i++) /* 26 bytes at most a line: it fits */
        b += (size_t)snprintf(body + b, sizeof body - b, "%llu %llu\n",
                              (unsigned long long)gw_call_id(p, i), (unsigned long long)values[i]);
    count(gw, 200);
    return respond(out, 200, body, b, keep_alive);
}

int gw_log_errors;
static _Atomic int logged;

size_t gw_respond_error(struct gateway *gw, char *out, int status, const char *why,
                        bool keep_alive)
{
    char body[256];
    int b = snprintf(body, sizeof body, "%d %s: %s\n", status, reason(status), why);
    if (status >= 500 && atomic_load_explicit(&logged, memory_order_relaxed) < gw_log_errors &&
        atomic_fetch_add(&logged, 1) < gw_log_errors)
        fprintf(stderr, "gateway %s: response %s", gw_variant_names[gw->cfg.variant], body);
    count(gw, status);
    return respond(out, status, body, b < 0 ? 0 : (size_t)b < sizeof body ? (size_t)b : sizeof body - 1,
                   keep_alive);
}

/* ------------------------------------------------------------- sockets */

void gw_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int gw_listen(uint16_t port, bool reuseport, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

int gw_connect_nb(const struct sockaddr_in *addr, int *fdp)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    gw_nodelay(fd);
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0) {
        *fdp = fd;
        return 0;
    }
    if (errno == EINPROGRESS || errno == EINTR) { /* it goes on asynchronously */
        *fdp = fd;
        return 1;
    }
    int e = -errno;
    close(fd);
    return e;
}

int gw_connect_result(int fd)
{
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
        return -errno;
    return -err;
}

int gw_poll_until(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (deadline_ns) {
            uint64_t now = common_now_ns();
            if (now >= deadline_ns)
                return -ETIMEDOUT;
            uint64_t left = deadline_ns - now;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            tsp = &ts;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = ppoll(&pfd, 1, tsp, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            continue; /* the clock decides above */
        if (pfd.revents & POLLNVAL)
            return -EBADF;
        return 0; /* ready, or an error the next read/write reports */
    }
}

int gw_write_all(int fd, const char *buf, size_t len, uint64_t deadline_ns)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = gw_poll_until(fd, POLLOUT, deadline_ns);
            if (r)
                return r;
        } else {
            return n < 0 ? -errno : -EPIPE;
        }
    }
    return 0;
}

void gw_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ------------------------------------------------------------- gateway */

int gateway_start(struct gateway **out, const struct gw_config *cfg, uint16_t *bound)
{
    *out = NULL;
    if ((unsigned)cfg->variant > GW_POOL || cfg->workers < 1 || cfg->pool_threads < 1)
        return -EINVAL;
    struct gateway *gw = calloc(1, sizeof *gw);
    if (!gw)
        return -ENOMEM;
    gw->cfg = *cfg;
    gw->backend = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(cfg->backend_port),
                                       .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const struct gw_ops *ops[] = {&gw_wsched_ops, &gw_threads_ops, &gw_pool_ops};
    gw->ops = ops[cfg->variant];
    gw->lfd = gw_listen(cfg->port, false, &gw->port);
    if (gw->lfd < 0) {
        int r = gw->lfd;
        free(gw);
        return r;
    }
    int r = gw->ops->start(gw);
    if (r) {
        close(gw->lfd);
        free(gw);
        return r;
    }
    *bound = gw->port;
    *out = gw;
    return 0;
}

void gateway_stop(struct gateway *gw, struct gw_counters *final)
{
    if (!gw)
        return;
    gw->ops->stop(gw);
    if (final)
        gateway_counters(gw, final);
    close(gw->lfd);
    free(gw);
}

void gateway_counters(struct gateway *gw, struct gw_counters *o)
{
    o->requests = atomic_load(&gw->n_req);
    o->ok = atomic_load(&gw->n_ok);
    o->bad_request = atomic_load(&gw->n_400);
    o->bad_gateway = atomic_load(&gw->n_502);
    o->timeout = atomic_load(&gw->n_504);
    o->unavailable = atomic_load(&gw->n_503);
}

/* -------------------------------------------------------------- client */

int client_connect(struct http_client *c, uint16_t port)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    gw_nodelay(c->fd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    while (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno == EINTR)
            continue; /* (a blocking connect goes on; EISCONN/EALREADY next) */
        if (errno == EISCONN)
            break;
        int e = -errno;
        close(c->fd);
        c->fd = -1;
        return e;
    }
    return 0;
}

void client_close(struct http_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int client_send(struct http_client *c, const char *buf, size_t len)
{
    return gw_write_all(c->fd, buf, len, 0);
}

/* Read more into the buffer: 0, -ECONNRESET at EOF, -ENOBUFS when full. */
static int client_fill(struct http_client *c)
{
    if (c->len == sizeof c->buf)
        return -ENOBUFS;
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            return 0;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n == 0 ? -ECONNRESET : -errno;
    }
}

int client_read_response(struct http_client *c, int *status, char *body, size_t cap,
                         bool *closed)
{
    size_t head = 0;
    for (;;) {
        for (size_t i = 0; i + 3 < c->len; i++)
            if (!memcmp(c->buf + i, "\r\n\r\n", 4)) {
                head = i + 4;
                break;
            }
        if (head)
            break;
        int r = client_fill(c);
        if (r)
            return r;
    }
    int st;
    if (sscanf(c->buf, "HTTP/1.1 %d ", &st) != 1)
        return -EPROTO;
    size_t clen = SIZE_MAX;
    *closed = false;
    for (const char *p = c->buf; p < c->buf + head;) {
        const char *e = memchr(p, '\n', (size_t)(c->buf + head - p));
        if (!e)
            break;
        if (!strncasecmp(p, "Content-Length:", 15))
            clen = strtoul(p + 15, NULL, 10);
        else if (!strncasecmp(p, "Connection: close", 17))
            *closed = true;
        p = e + 1;
    }
    if (clen == SIZE_MAX || clen >= cap || head + clen > sizeof c->buf)
        return -EPROTO;
    while (c->len < head + clen) {
        int r = client_fill(c);
        if (r)
            return r;
    }
    memcpy(body, c->buf + head, clen);
    body[clen] = '\0';
    memmove(c->buf, c->buf + head + clen, c->len - head - clen);
    c->len -= head + clen;
    *status = st;
    return 0;
}

int client_expect_eof(struct http_client *c)
{
    if (c->len)
        return -EPROTO;
    int r = client_fill(c);
    return r == -ECONNRESET ? 0 : -EPROTO;
}
