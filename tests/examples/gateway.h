/*
 * The network fan-out example (tests/examples/gateway.c): what its parts
 * share. The parts:
 *   gateway_backend.c  the backend service (test infrastructure, not wsched):
 *                      epoll loops with a timer heap, answers each call after
 *                      the delay it asks for
 *   gateway_http.c     HTTP/1.1 parsing and responses, the request plan
 *                      (query -> fan-out), the backend wire format, sockets,
 *                      the gateway's common state, the test client
 *   gateway_threads.c  the two baselines: thread per call, mutex pool
 *   gateway_wsched.c   the wsched variant: listener, HTTP connections and
 *                      backend calls are all jobs that wait (wsched_wait_fd)
 *   gateway.c          main: the modes (test, backend, serve) and the test
 *
 * Backend wire format (one line each way, ASCII):
 *   request  "<id> <delay_us> <fail>\n"   fail: 0 or 1
 *   reply    "<id> <value>\n"             value = gw_backend_value(id)
 *            "<id> ERR\n"                 when fail was 1
 * A connection carries one call at a time; replies come in request order.
 *
 * HTTP: GET /?k=v&... with these keys (all optional):
 *   id=R     request id (else the gateway's counter); call i has id R*64+i
 *   n=N      fan-out, 1..GW_MAX_FANOUT (else 10..20 from a hash of R and the
 *            gateway's seed: gw_default_fanout)
 *   d=US     delay of every call in us (else the gateway's --delay-us)
 *   f=I      call I fails (the backend answers ERR), after fd=US (default 0)
 *   s=I      call I is slow: sd=US (default 10 s)
 *   t=MS     this request's deadline in ms (else the gateway's --deadline-ms)
 * 200 body: "req R n N sum S\n" then one line "<id> <value>\n" per call in
 * input order. 502: a backend call failed (fail-fast: the response does not
 * wait for the other calls); 504: the deadline passed first; 503: the
 * gateway could not run the calls (threads, memory, shutting down).
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_MAX_FANOUT 64
#define GW_IN_MAX 4096              /* an HTTP request's head, at most */
#define GW_OUT_MAX 4096             /* an HTTP response, at most */
#define GW_REQ_ID_MAX 1000000000000ull /* request ids are below 10^12 */
#define GW_DELAY_MAX_US 60000000u   /* a call's delay, at most 60 s */

/* ------------------------------------------------------------- backend */

struct backend;
/* Start the backend on 127.0.0.1 (port 0: ephemeral) with nloops epoll
 * threads (SO_REUSEPORT listeners on one port). 0 or a negative errno. */
int backend_start(struct backend **out, unsigned nloops, uint16_t port, uint16_t *bound);
void backend_stop(struct backend *be);
/* Connections open now, calls answered so far. */
long backend_conns(struct backend *be);
uint64_t backend_calls(struct backend *be);
/* Wait until no connection is open (the peers' closes are seen
 * asynchronously): 0, or -ETIMEDOUT after timeout_ns. */
int backend_wait_no_conns(struct backend *be, uint64_t timeout_ns);
/* The value the backend answers for call id. */
uint64_t gw_backend_value(uint64_t id);

/* ------------------------------------------------------------- gateway */

enum gw_variant { GW_WSCHED = 0, GW_THREADS = 1, GW_POOL = 2 };
extern const char *const gw_variant_names[3];

struct gw_config {
    enum gw_variant variant;
    uint16_t port;          /* 0: ephemeral */
    uint16_t backend_port;  /* on 127.0.0.1 */
    unsigned workers;       /* wsched workers */
    unsigned pool_threads;  /* GW_POOL threads */
    uint32_t delay_us;      /* a call's delay when the request says none */
    uint32_t deadline_ms;   /* a request's deadline when it says none */
    uint64_t seed;          /* of the default fan-out */
    /* A degraded backend: each call attempt fails (the backend answers
     * ERR) with this probability in percent, decided by a hash of the
     * call's id and attempt (issue 11's scenario). */
    unsigned fail_pct;
    /* A stalling backend: each call attempt that does not fail takes
     * stall_ms instead of its delay with this probability in percent (a
     * hash of the call's id and attempt, another than fail_pct's). */
    unsigned stall_pct;
    uint32_t stall_ms;
    /* wsched variant: the calls go through a downstream with retries (3
     * attempts, full jitter from 1 ms, of -EREMOTEIO and -ETIMEDOUT), a
     * retry budget (gRPC's: 100 tokens, 0.1 per success), a breaker (50 %
     * over 20 calls, open 1 s), a per-attempt timeout of
     * attempt_timeout_ms (0 = none) and hedging after hedge_ms (0 = none). */
    bool policies;
    uint32_t attempt_timeout_ms;
    uint32_t hedge_ms;
    unsigned hedge_pct; /* 0: a fixed hedge delay; 1..99 adaptive */
};
void gw_config_init(struct gw_config *cfg);

/* Status counts of the responses sent. */
struct gw_counters {
    uint64_t requests, ok, bad_request, bad_gateway, timeout, unavailable;
};

struct gateway;
int gateway_start(struct gateway **out, const struct gw_config *cfg, uint16_t *bound);
/* Stop and free; *final (if not NULL) gets the counts of every response
 * sent. */
void gateway_stop(struct gateway *gw, struct gw_counters *final);
void gateway_counters(struct gateway *gw, struct gw_counters *out);

/* --------------------------------------- what the variants share (impl) */

/* One request's fan-out, decided from its query. */
struct fan_plan {
    uint64_t req_id;
    unsigned n;
    uint32_t delay_us;
    int fail_index;          /* -1: none */
    uint32_t fail_delay_us;
    int slow_index;          /* -1: none */
    uint32_t slow_delay_us;
    uint64_t deadline_ns;    /* absolute, wsched_now_ns clock */
    unsigned fail_pct;       /* gw_config.fail_pct */
    unsigned stall_pct;      /* gw_config.stall_pct, stall_ms */
    uint32_t stall_us;
};

/* One parsed HTTP request head. */
struct http_req {
    size_t consumed;   /* bytes of the buffer it took */
    bool keep_alive;   /* false: close after the response */
    const char *target; /* into the buffer, target_len bytes */
    size_t target_len;
};

struct gw_ops {
    int (*start)(struct gateway *gw);
    void (*stop)(struct gateway *gw);
};

struct gateway {
    struct gw_config cfg;
    int lfd;                    /* listening socket */
    uint16_t port;
    struct sockaddr_in backend; /* where the calls go */
    const struct gw_ops *ops;
    void *impl;                 /* the variant's state */
    _Atomic uint64_t seq;       /* request ids when the request has none */
    _Atomic uint64_t n_req, n_ok, n_400, n_502, n_504, n_503;
};

/* Parse one request head from buf[0, len): 1 complete (*rq filled), 0 need
 * more bytes, or an HTTP status (400, 405, 431, 505) to answer before
 * closing the connection. */
int http_parse(const char *buf, size_t len, struct http_req *rq);
/* The fan-out of a parsed request, its deadline from now: 0, or an HTTP
 * status (400, 404) to answer. */
int gw_plan(struct gateway *gw, const struct http_req *rq, struct fan_plan *p);
unsigned gw_default_fanout(uint64_t seed, uint64_t req_id);
/* Call i of plan p: its id, its request line into buf (cap bytes; the
 * length, or -1 if it does not fit) for attempt `attempt` (1, 2, ...; a
 * hedge of attempt k: k | 0x100, another draw of fail_pct and stall_pct). */
static inline uint64_t gw_call_id(const struct fan_plan *p, unsigned i)
{
    return p->req_id * GW_MAX_FANOUT + i;
}
int gw_call_line(const struct fan_plan *p, unsigned i, unsigned attempt, char *buf, size_t cap);
/* A backend reply line buf[0, len) (its '\n' included) for call id: 0 with
 * *value set, -EREMOTEIO when the backend answered ERR, -EPROTO when it is
 * malformed or for another id. */
int gw_parse_reply(const char *buf, size_t len, uint64_t id, uint64_t *value);
/* An error of the fan-out (a call's code, or -ETIMEDOUT for the deadline)
 * as an HTTP status: 504, 503 or 502. */
int gw_status_of_error(int err);
/* Responses, written into out (cap >= GW_OUT_MAX), counted: the length.
 * values[i]: call i's value, in input order. */
size_t gw_respond_ok(struct gateway *gw, char *out, const struct fan_plan *p,
                     const uint64_t *values, bool keep_alive);
size_t gw_respond_error(struct gateway *gw, char *out, int status, const char *why,
                        bool keep_alive);
/* The first gw_log_errors 5xx responses are printed on stderr (serve: 10). */
extern int gw_log_errors;

/* Sockets. A non-blocking, close-on-exec listener on 127.0.0.1:port (0:
 * ephemeral), SO_REUSEADDR (and SO_REUSEPORT when asked): the fd or a
 * negative errno; *bound gets the port. */
int gw_listen(uint16_t port, bool reuseport, uint16_t *bound);
/* A non-blocking TCP connection to addr, TCP_NODELAY: 0 connected at once,
 * 1 in progress (wait for writable, then gw_connect_result), or a negative
 * errno; *fd is set when 0 or 1. */
int gw_connect_nb(const struct sockaddr_in *addr, int *fd);
/* The outcome of a non-blocking connect: 0 or a negative errno. */
int gw_connect_result(int fd);
void gw_nodelay(int fd);
/* Blocking helpers over a non-blocking fd, up to deadline_ns (0: none):
 * 0, -ETIMEDOUT, or a negative errno. */
int gw_poll_until(int fd, short events, uint64_t deadline_ns);
int gw_write_all(int fd, const char *buf, size_t len, uint64_t deadline_ns);
/* Raise RLIMIT_NOFILE's soft limit to the hard one. */
void gw_raise_nofile(void);

/* ---------------------------------------------------------- the client */

struct http_client {
    int fd;
    size_t len;
    char buf[GW_OUT_MAX * 2];
};
/* Connect a blocking client to 127.0.0.1:port: 0 or a negative errno. */
int client_connect(struct http_client *c, uint16_t port);
void client_close(struct http_client *c);
/* Send raw bytes. 0 or a negative errno. */
int client_send(struct http_client *c, const char *buf, size_t len);
/* Read one response: its status, its body copied (NUL-terminated) into
 * body (cap bytes); *closed when the server said Connection: close. 0, or a
 * negative errno (-ECONNRESET for EOF before a whole response). */
int client_read_response(struct http_client *c, int *status, char *body, size_t cap,
                         bool *closed);
/* 0 when the peer closed the connection (EOF next), else -EPROTO. */
int client_expect_eof(struct http_client *c);

#endif
