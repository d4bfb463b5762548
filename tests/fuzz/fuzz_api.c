/*
 * libFuzzer harness for the public API of wsched (include/wsched.h).
 *
 * Each input is decoded into a small program: a pool configuration and, for
 * the main thread and 0-2 helper threads, a list of API operations (submit,
 * wait, cancel, next_done, free, stats, bad inputs, ...). The threads run
 * their lists concurrently (the interleaving is up to the OS); every
 * thread only operates on the batches it submitted itself. Jobs do what
 * their batch's program says: return 0, return an error code (also codes of
 * wsched's reserved range), poll wsched_cancelled, spawn+sync children,
 * spawn children and return without syncing, submit and wait a nested
 * batch, or call wsched_blocking and spin briefly.
 *
 * Every invariant that the header documents and that can be checked from
 * the outside is checked; a violation prints a message and abort()s, which
 * libFuzzer reports as a crash. See check_* and verify_final below.
 *
 * Input format (bytes past the end read as 0):
 *   b0  bits 0-1 workers (1 + b%3), bits 2-4 spin_us index, bit 5 counting
 *       allocator, bit 6 keep batches until after pool destroy, bit 7 a
 *       thread that keeps submitting while the pool is destroyed
 *   b1  helpers (b%3), bits 2-4 max_jobs index
 *   b2  allocation failure injection: fail the b2-th allocation (0 = none;
 *       only with the counting allocator)
 *   b3  ... and then every (3 + b3)-th one (b3 = 0: only once)
 *   then operations: one byte (bits 0-3 opcode, bits 4-7 thread % nthreads)
 *   followed by 9 parameter bytes for SUBMIT (opcodes 0-2), 2 for the others.
 * tests/fuzz/make_corpus.py writes seeds in this format.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsched.h"

/* ------------------------------------------------------------ limits */

#define MAXJ 64          /* jobs per top-level batch */
#define MAXJ_NESTED 8    /* jobs per nested batch */
#define MAX_THREADS 3    /* main + 2 helpers */
#define MAX_OPS 40       /* per thread */
#define MAX_TOTAL_OPS 96 /* per input */
#define MAX_LIVE 12      /* live batches per thread */
#define JOB_BUDGET 256   /* top-level jobs per thread */
#define LATE_SUBMITS 12

/* ------------------------------------------------------------ failure */

static void fail(int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
static void fail(int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nfuzz_api.c:%d: INVARIANT VIOLATED: %s\n  ", line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            fail(__LINE__, #cond, __VA_ARGS__);                                \
    } while (0)

/* ------------------------------------------------------ the allocator */

/*
 * Optional counting allocator (wsched_config.allocator): checks that every
 * free gets the size and alignment of its allocation and the right ctx,
 * that nothing is outstanding once the pool is destroyed and every batch
 * freed, and injects allocation failures on chosen calls.
 */
#define FA_MAGIC 0x66615f6c697665ull
#define FA_DEAD 0x66615f64656164ull
struct fa_hdr {
    uint64_t magic;
    size_t size, align;
    void *base;
};

static struct {
    _Atomic int64_t outstanding;
    _Atomic uint64_t calls, failures;
    uint64_t fail_at, period; /* written only while no pool exists */
} FA;

static void *fa_alloc(void *ctx, size_t size, size_t align)
{
    CHECK(ctx == (void *)&FA, "allocator called with ctx %p", ctx);
    CHECK(align && !(align & (align - 1)) && align <= 4096,
          "allocator asked for alignment %zu", align);
    uint64_t k = atomic_fetch_add(&FA.calls, 1) + 1;
    if (FA.fail_at && (k == FA.fail_at ||
                       (FA.period && k > FA.fail_at && (k - FA.fail_at) % FA.period == 0))) {
        atomic_fetch_add(&FA.failures, 1);
        return NULL;
    }
    size_t hdr = align > 64 ? align : 64;
    void *base = NULL;
    if (posix_memalign(&base, hdr, hdr + size) != 0)
        return NULL;
    char *p = (char *)base + hdr;
    struct fa_hdr *h = (struct fa_hdr *)(p - sizeof *h);
    *h = (struct fa_hdr){FA_MAGIC, size, align, base};
    atomic_fetch_add(&FA.outstanding, 1);
    return p;
}

static void fa_free(void *ctx, void *ptr, size_t size, size_t align)
{
    CHECK(ctx == (void *)&FA, "allocator free called with ctx %p", ctx);
    CHECK(ptr != NULL, "allocator free of NULL");
    struct fa_hdr *h = (struct fa_hdr *)((char *)ptr - sizeof *h);
    CHECK(h->magic == FA_MAGIC, "free of %p: not allocated here, or freed twice (magic %llx)",
          ptr, (unsigned long long)h->magic);
    CHECK(h->size == size && h->align == align,
          "free of %p with size %zu align %zu; allocated with size %zu align %zu", ptr, size,
          align, h->size, h->align);
    h->magic = FA_DEAD;
    atomic_fetch_sub(&FA.outstanding, 1);
    free(h->base);
}

static const wsched_allocator fa_allocator = {fa_alloc, fa_free, &FA};

/* ------------------------------------------------------------ batches */

enum { K_OK, K_ERR, K_RESV, K_POLL, K_SPAWN, K_SPAWN_IMPL, K_NESTED, K_BLOCK, NKINDS };
static const char *const kind_name[NKINDS] = {"ok",    "err",        "reserved", "poll",
                                              "spawn", "spawn-impl", "nested",   "blocking"};
enum { SLOTS_NONE, SLOTS_LIB, SLOTS_CALLER };

static const int err_codes[] = {-EIO, -ENOENT, -ECONNREFUSED, WSCHED_ERRBASE + 1,
                                WSCHED_ERRBASE - 65, -1, INT_MIN};
static const int resv_codes[] = {WSCHED_ERRBASE,      WSCHED_ERRBASE - 1,  WSCHED_ERRBASE - 3,
                                 WSCHED_ERRBASE - 4,  WSCHED_ERRBASE - 60, WSCHED_ERRBASE - 64};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The status a job's return value becomes (header: reserved range). */
static int status_of(int r)
{
    return r <= WSCHED_ERRBASE && r >= WSCHED_ERRBASE - 64 ? WSCHED_EJOBCODE : r;
}

/* A status that is a job's own result (not "never finished"). A job can
 * never produce ENOTRUN, ECANCELLED or EDEADLINE: those are reserved. */
static bool is_result(int s)
{
    return s != WSCHED_ENOTRUN && s != WSCHED_ECANCELLED && s != WSCHED_EDEADLINE;
}

struct hb;
struct spn {
    struct hb *h;
    _Atomic uint32_t *counter;
    int level;
};

#define HB_MAGIC 0x68625f66757a7aull
#define CANARY 0xA5

/* The harness's record of one batch: the description, each job's program,
 * and what the jobs did (caller memory: valid until the batch is idle). */
struct hb {
    uint64_t magic;
    wsched_batch *b;
    struct hb *next;
    int depth; /* 0 top level, 1 nested (submitted by a job) */
    int owner; /* harness thread id, -1 for nested */
    size_t n;
    unsigned flags, policy, prio;
    size_t quorum, max_parallel;
    uint64_t deadline;
    int slot_mode;
    size_t slot_size, slot_stride, stride; /* desc fields; the effective stride */
    unsigned char *cslots;
    size_t cbytes;
    uint8_t kind[MAXJ], kparam[MAXJ];
    _Atomic uint32_t ran[MAXJ];
    int ret[MAXJ];
    void *seen_slot[MAXJ];
    _Atomic uint32_t children[MAXJ];
    uint32_t exp_children[MAXJ];
    struct spn impl_spn[MAXJ];
    _Atomic int cancel_requested, failed_seen, running;
    bool have_wait;
    int wait_r;
    bool idle;
    bool have_final;
    int final_st[MAXJ];
    uint8_t obs_has[MAXJ];
    int obs_st[MAXJ];
    uint8_t streamed[MAXJ];
    size_t nstreamed;
};

static void describe(const struct hb *h, char *buf, size_t len)
{
    int k = snprintf(buf, len,
                     "batch{depth %d owner %d njobs %zu flags %#x policy %u quorum %zu prio %u "
                     "deadline %s max_parallel %zu slots %s size %zu stride %zu/%zu cancel %d} "
                     "kinds:",
                     h->depth, h->owner, h->n, h->flags, h->policy, h->quorum, h->prio,
                     h->deadline == 0 ? "none" : h->deadline < 1000000 ? "past" : "set",
                     h->max_parallel,
                     h->slot_mode == SLOTS_NONE  ? "none"
                     : h->slot_mode == SLOTS_LIB ? "library"
                                                 : "caller",
                     h->slot_size, h->slot_stride, h->stride, atomic_load(&h->cancel_requested));
    for (size_t i = 0; i < h->n && k > 0 && (size_t)k < len - 16; i++)
        k += snprintf(buf + k, len - (size_t)k, " %s", kind_name[h->kind[i]]);
}

#define HCHECK(h, cond, fmt, ...)                                              \
    do {                                                                       \
        if (!(cond)) {                                                         \
            char desc_[1024];                                                  \
            describe((h), desc_, sizeof desc_);                                \
            fail(__LINE__, #cond, fmt "\n  %s", ##__VA_ARGS__, desc_);         \
        }                                                                      \
    } while (0)

/* ------------------------------------------------------------ run state */

struct thr;
static struct {
    wsched_pool *pool;
    int nworkers;
    uint64_t max_jobs;
    bool inject; /* allocation failures may happen: -ENOMEM is allowed */
    bool keep;   /* keep batches until after destroy */
    _Atomic int64_t running_top;    /* top-level jobs running now */
    _Atomic uint64_t accepted_jobs; /* jobs of batches submitted (incl. nested) */
    _Atomic uint64_t ran_jobs;      /* job function calls */
    _Atomic int early_frees;
    _Atomic int destroying; /* wsched_pool_destroy was called */
} R;

static uint64_t now_ns(void) { return wsched_now_ns(); }

static void spin_for(uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    while (now_ns() < end)
        __builtin_ia32_pause();
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static bool arbitrated(const struct hb *h)
{
    return h->policy == WSCHED_QUORUM || h->deadline != 0;
}

static uint8_t pattern(size_t i, size_t k)
{
    return k == 0 ? (uint8_t)(i + 1) : (uint8_t)((i + 1) * 131 + k * 29);
}

/* Where slot i must be (the header's layout rules). */
static char *expected_slot(const struct hb *h, size_t i)
{
    if (h->slot_mode == SLOTS_NONE)
        return NULL;
    if (h->slot_mode == SLOTS_CALLER)
        return (char *)h->cslots + i * h->stride;
    return (char *)wsched_batch_slot(h->b, 0) + i * h->stride;
}

static struct hb *hb_new(void)
{
    struct hb *h = calloc(1, sizeof *h);
    CHECK(h, "out of memory");
    h->magic = HB_MAGIC;
    return h;
}

/* Fix the effective stride and the caller slot memory once the slot fields
 * are chosen. */
static void hb_layout(struct hb *h)
{
    if (h->slot_mode == SLOTS_NONE) {
        h->slot_size = h->slot_stride = h->stride = 0;
        return;
    }
    h->stride = h->slot_stride ? h->slot_stride : h->slot_size;
    if (h->slot_mode == SLOTS_LIB && (h->flags & WSCHED_BATCH_PAD_SLOTS))
        h->stride = (h->stride + 63) & ~(size_t)63;
    if (h->slot_mode == SLOTS_CALLER) {
        h->cbytes = h->n * h->stride + 64; /* + a tail canary */
        h->cslots = malloc(h->cbytes);
        CHECK(h->cslots, "out of memory");
        memset(h->cslots, CANARY, h->cbytes);
    }
}

static void hb_free(struct hb *h)
{
    h->magic = 0;
    free(h->cslots);
    free(h);
}

static int job_fn(wsched_ctx *ctx, void *arg, size_t i, void *slot);

static wsched_batch_desc hb_desc(struct hb *h)
{
    wsched_batch_desc d;
    memset(&d, 0, sizeof d);
    d.fn = job_fn;
    d.arg = h;
    d.njobs = h->n;
    d.slots = h->slot_mode == SLOTS_CALLER ? h->cslots : NULL;
    d.slot_size = h->slot_size;
    d.slot_stride = h->slot_stride;
    d.flags = h->flags;
    d.policy = h->policy;
    d.quorum = h->quorum;
    d.deadline_ns = h->deadline;
    d.max_parallel = h->max_parallel;
    d.priority = h->prio;
    return d;
}

/* A final status, once seen, never changes. */
static void observe(struct hb *h, size_t i, int s)
{
    if (s == WSCHED_ENOTRUN)
        return;
    if (h->obs_has[i])
        HCHECK(h, h->obs_st[i] == s, "status of job %zu changed from %d to %d", i, h->obs_st[i],
               s);
    h->obs_has[i] = 1;
    h->obs_st[i] = s;
}

/* Slot i of a job that never ran: untouched (zeroed library memory, or the
 * caller's canary). */
static void check_slot_untouched(struct hb *h, size_t i)
{
    if (h->slot_mode == SLOTS_NONE)
        return;
    const unsigned char *s = (const unsigned char *)expected_slot(h, i);
    unsigned char want = h->slot_mode == SLOTS_CALLER ? CANARY : 0;
    for (size_t k = 0; k < h->slot_size; k++)
        HCHECK(h, s[k] == want, "slot %zu of a job that never ran was written (byte %zu = %#x)",
               i, k, s[k]);
}

/* Gap bytes between slots (stride > size) and the tail: never written. */
static void check_slot_gaps(struct hb *h)
{
    if (h->slot_mode == SLOTS_NONE)
        return;
    unsigned char want = h->slot_mode == SLOTS_CALLER ? CANARY : 0;
    for (size_t i = 0; i < h->n; i++) {
        const unsigned char *s = (const unsigned char *)expected_slot(h, i);
        for (size_t k = h->slot_size; k < h->stride; k++)
            HCHECK(h, s[k] == want, "padding byte %zu after slot %zu was written (%#x)", k, i,
                   s[k]);
    }
    if (h->slot_mode == SLOTS_CALLER)
        for (size_t k = h->n * h->stride; k < h->cbytes; k++)
            HCHECK(h, h->cslots[k] == CANARY, "caller slot memory written past its end (+%zu)",
                   k - h->n * h->stride);
}

/* Job i's status s is its own result: it ran exactly once, returned the
 * code that became s, and wrote its slot. Only called when s is final and
 * a job result (its writes are visible then). */
static void check_result(struct hb *h, size_t i, int s)
{
    uint32_t ran = atomic_load(&h->ran[i]);
    HCHECK(h, ran == 1, "job %zu has result status %d but ran %u times", i, s, ran);
    HCHECK(h, status_of(h->ret[i]) == s, "job %zu returned %d (status %d) but its status is %d",
           i, h->ret[i], status_of(h->ret[i]), s);
    HCHECK(h, h->seen_slot[i] == expected_slot(h, i), "job %zu got slot %p, expected %p", i,
           h->seen_slot[i], (void *)expected_slot(h, i));
    if (h->slot_mode != SLOTS_NONE) {
        const unsigned char *p = (const unsigned char *)expected_slot(h, i);
        for (size_t k = 0; k < h->slot_size; k++)
            HCHECK(h, p[k] == pattern(i, k), "slot %zu byte %zu is %#x, the job wrote %#x", i, k,
                   p[k], pattern(i, k));
    }
}

/* The slot pointers the library reports follow the layout rules. */
static void check_layout(struct hb *h)
{
    HCHECK(h, wsched_batch_size(h->b) == h->n, "wsched_batch_size %zu", wsched_batch_size(h->b));
    HCHECK(h, wsched_batch_slot(h->b, h->n) == NULL, "slot past the end is not NULL");
    HCHECK(h, wsched_batch_status(h->b, h->n) == -EINVAL, "status past the end: %d",
           wsched_batch_status(h->b, h->n));
    HCHECK(h, wsched_batch_status(h->b, SIZE_MAX) == -EINVAL, "status(SIZE_MAX) accepted");
    if (h->slot_mode == SLOTS_NONE) {
        HCHECK(h, wsched_batch_slot(h->b, 0) == NULL, "a batch without slots has a slot");
        return;
    }
    char *base = wsched_batch_slot(h->b, 0);
    HCHECK(h, base != NULL, "slot 0 is NULL");
    if (h->slot_mode == SLOTS_CALLER)
        HCHECK(h, base == (char *)h->cslots, "caller slots at %p, library says %p",
               (void *)h->cslots, (void *)base);
    else
        HCHECK(h, ((uintptr_t)base & 63) == 0, "library slots not 64-byte aligned: %p",
               (void *)base);
    for (size_t i = 0; i < h->n; i++)
        HCHECK(h, wsched_batch_slot(h->b, i) == base + i * h->stride,
               "slot %zu at %p, expected %p (stride %zu)", i, wsched_batch_slot(h->b, i),
               (void *)(base + i * h->stride), h->stride);
}

/* Is r the status of one of the batch's jobs that failed? */
static bool is_error_status_of(struct hb *h, int r)
{
    if (r >= 0 || !is_result(r))
        return false;
    for (size_t i = 0; i < h->n; i++)
        if (wsched_batch_status(h->b, i) == r)
            return true;
    return false;
}

static void stream_got(struct hb *h, size_t idx)
{
    HCHECK(h, idx < h->n, "next_done returned index %zu of %zu", idx, h->n);
    HCHECK(h, !h->streamed[idx], "next_done returned job %zu twice", idx);
    h->streamed[idx] = 1;
    h->nstreamed++;
    int s = wsched_batch_status(h->b, idx);
    HCHECK(h, s != WSCHED_ENOTRUN, "next_done returned job %zu whose status is not final", idx);
    observe(h, idx, s);
    if (is_result(s))
        check_result(h, idx, s);
}

/*
 * wsched_batch_outcome once the batch is complete (wsched_wait returned r,
 * anything but a timeout of the caller's own): the end and its reason, the
 * counts, the first error, and what wsched_wait returned (header table).
 */
static void check_outcome(struct hb *h, int r)
{
    wsched_outcome o;
    memset(&o, 0x5a, sizeof o);
    int e = wsched_batch_outcome(h->b, &o);
    HCHECK(h, e == 0, "wsched_batch_outcome returned %d", e);
    size_t ok = 0, failed = 0, cancelled = 0, timed_out = 0, lowest = SIZE_MAX;
    for (size_t i = 0; i < h->n; i++) {
        int st = wsched_batch_status(h->b, i);
        if (st == 0)
            ok++;
        else if (st == WSCHED_ECANCELLED)
            cancelled++;
        else if (st == WSCHED_EDEADLINE)
            timed_out++;
        else if (st != WSCHED_ENOTRUN && failed++ == 0)
            lowest = i;
    }
    HCHECK(h,
           o.ok == ok && o.failed == failed && o.cancelled == cancelled &&
               o.timed_out == timed_out && o.unfinished == 0,
           "outcome counts ok %zu failed %zu cancelled %zu timed_out %zu unfinished %zu; "
           "statuses say %zu %zu %zu %zu 0",
           o.ok, o.failed, o.cancelled, o.timed_out, o.unfinished, ok, failed, cancelled,
           timed_out);
    bool user = atomic_load(&h->cancel_requested);
    switch (o.end) {
    case WSCHED_END_COMPLETED:
        HCHECK(h, h->policy != WSCHED_QUORUM, "a quorum batch ended COMPLETED");
        HCHECK(h, cancelled == 0 && timed_out == 0,
               "ended COMPLETED (no policy fired) with %zu cancelled, %zu timed out", cancelled,
               timed_out);
        HCHECK(h, h->policy != WSCHED_FAIL_FAST || failed == 0,
               "fail-fast batch with %zu failures ended COMPLETED", failed);
        HCHECK(h, r == 0, "ended COMPLETED, wait returned %d", r);
        break;
    case WSCHED_END_FAILED:
        HCHECK(h, h->policy == WSCHED_FAIL_FAST && failed > 0, "ended FAILED");
        HCHECK(h, r == o.first_error && r < 0, "ended FAILED (%d), wait returned %d",
               o.first_error, r);
        break;
    case WSCHED_END_QUORUM_REACHED:
    case WSCHED_END_QUORUM_IMPOSSIBLE: {
        bool reached = o.end == WSCHED_END_QUORUM_REACHED;
        HCHECK(h, h->policy == WSCHED_QUORUM, "ended QUORUM_* without quorum policy");
        HCHECK(h, reached == (ok >= h->quorum), "ended QUORUM_%s with %zu of %zu successes",
               reached ? "REACHED" : "IMPOSSIBLE", ok, h->quorum);
        HCHECK(h, reached ? r == 0 : (r == o.first_error && r < 0),
               "ended QUORUM_%s (first error %d), wait returned %d",
               reached ? "REACHED" : "IMPOSSIBLE", o.first_error, r);
        break;
    }
    case WSCHED_END_DEADLINE:
        HCHECK(h, h->deadline != 0, "ended DEADLINE without deadline");
        HCHECK(h, r == -ETIMEDOUT, "ended DEADLINE, wait returned %d", r);
        break;
    case WSCHED_END_CANCELLED:
        HCHECK(h, user, "ended CANCELLED, nobody called wsched_cancel");
        HCHECK(h, r == 0, "ended CANCELLED, wait returned %d", r);
        break;
    default:
        HCHECK(h, 0, "outcome end %u for a complete batch (wait returned %d)", o.end, r);
    }
    if (!user && !h->deadline) {
        unsigned want = h->policy == WSCHED_BEST_EFFORT ? WSCHED_END_COMPLETED
                        : h->policy == WSCHED_FAIL_FAST
                            ? (failed ? WSCHED_END_FAILED : WSCHED_END_COMPLETED)
                            : (ok >= h->quorum ? WSCHED_END_QUORUM_REACHED
                                               : WSCHED_END_QUORUM_IMPOSSIBLE);
        HCHECK(h, o.end == want, "outcome end %u, expected %u", o.end, want);
    }
    if (failed == 0) {
        HCHECK(h, o.first_error == 0 && o.first_error_index == SIZE_MAX,
               "no job failed, outcome names %d at %zu", o.first_error, o.first_error_index);
    } else {
        HCHECK(h, o.first_error_index < h->n &&
                      wsched_batch_status(h->b, o.first_error_index) == o.first_error &&
                      o.first_error < 0 && is_result(o.first_error),
               "outcome first error %d at %zu", o.first_error, o.first_error_index);
        if (h->policy == WSCHED_BEST_EFFORT)
            HCHECK(h, o.first_error_index == lowest,
                   "best effort: first error at %zu, lowest failed index %zu",
                   o.first_error_index, lowest);
    }
}

/* A snapshot of a batch that may still run: consistent counts. */
static void check_outcome_snapshot(struct hb *h)
{
    wsched_outcome o;
    HCHECK(h, wsched_batch_outcome(h->b, NULL) == -EINVAL, "outcome(b, NULL)");
    HCHECK(h, wsched_batch_outcome(h->b, &o) == 0, "outcome");
    HCHECK(h, o.ok + o.failed + o.cancelled + o.timed_out + o.unfinished == h->n,
           "outcome counts do not sum to njobs");
    HCHECK(h, o.end <= WSCHED_END_CANCELLED, "outcome end %u", o.end);
    if (o.end != WSCHED_END_RUNNING)
        HCHECK(h, o.unfinished == 0, "outcome end %u with %zu jobs unfinished", o.end,
               o.unfinished);
}

/*
 * Everything that must hold once wsched_wait_idle(b) returned 0: every job
 * has returned, every status is final and explained by what the jobs did.
 */
static void verify_final(struct hb *h)
{
    wsched_batch *b = h->b;
    check_layout(h);
    check_slot_gaps(h);
    bool cancelled = atomic_load(&h->cancel_requested);
    size_t ok = 0, notok = 0, notrun = 0;
    bool any_error = false;
    for (size_t i = 0; i < h->n; i++) {
        int s = wsched_batch_status(b, i);
        uint32_t ran = atomic_load(&h->ran[i]);
        HCHECK(h, ran <= 1, "job %zu ran %u times", i, ran);
        HCHECK(h, s != WSCHED_ENOTRUN, "job %zu: status ENOTRUN after wait_idle returned 0", i);
        if (h->have_final)
            HCHECK(h, h->final_st[i] == s, "status of job %zu changed after idle: %d -> %d", i,
                   h->final_st[i], s);
        h->final_st[i] = s;
        observe(h, i, s);
        if (s == WSCHED_ECANCELLED || s == WSCHED_EDEADLINE) {
            notok++;
            if (s == WSCHED_EDEADLINE)
                HCHECK(h, h->deadline != 0, "job %zu: EDEADLINE in a batch without deadline", i);
            else
                HCHECK(h,
                       cancelled || h->policy == WSCHED_QUORUM ||
                           (h->policy == WSCHED_FAIL_FAST && atomic_load(&h->failed_seen)),
                       "job %zu: ECANCELLED but nothing cancelled the batch", i);
            if (ran) {
                /* A job that ran keeps its result unless an early
                 * completion (quorum decided, deadline) discarded it. */
                HCHECK(h, arbitrated(h),
                       "job %zu ran (returned %d) but its status is %d in a batch without "
                       "quorum or deadline",
                       i, h->ret[i], s);
                if (s == WSCHED_ECANCELLED)
                    HCHECK(h, h->policy == WSCHED_QUORUM,
                           "job %zu ran but its result was discarded as ECANCELLED outside "
                           "a quorum batch",
                           i);
            } else {
                notrun++;
                check_slot_untouched(h, i);
            }
        } else {
            check_result(h, i, s);
            if (s == 0)
                ok++;
            else {
                notok++;
                any_error = true;
            }
        }
        uint32_t ch = atomic_load(&h->children[i]);
        if (ran && h->kind[i] == K_SPAWN_IMPL)
            HCHECK(h, ch == h->exp_children[i],
                   "job %zu returned without sync: %u of %u children ran before completion", i,
                   ch, h->exp_children[i]);
        else
            HCHECK(h, ch == 0, "job %zu: %u stray children", i, ch);
    }
    HCHECK(h, wsched_batch_failed(b) == notok, "wsched_batch_failed %zu, counted %zu",
           wsched_batch_failed(b), notok);
    if (!cancelled && !h->deadline &&
        (h->policy == WSCHED_BEST_EFFORT ||
         (h->policy == WSCHED_FAIL_FAST && !atomic_load(&h->failed_seen))))
        HCHECK(h, notrun == 0, "%zu jobs never ran in a batch nothing cancelled", notrun);

#ifdef FUZZ_RELAX_IDLE_DONE
    /* Tolerate the window in which wait_idle already answers 0 and wait
     * does not yet (tests/fuzz/crashes/README.md). */
    int r = wsched_wait(b, -1);
#else
    int r = wsched_wait(b, 0);
    HCHECK(h, r != -ETIMEDOUT || h->deadline,
           "wsched_wait_idle returned 0 (every job returned), then wsched_wait(b, 0) returned "
           "-ETIMEDOUT for a batch without deadline (header: wait_idle is \"equal to "
           "wsched_wait for a batch that completes normally\")");
#endif
    HCHECK(h,
           r == 0 || (r == -ETIMEDOUT && h->deadline) ||
               ((h->policy == WSCHED_FAIL_FAST || h->policy == WSCHED_QUORUM) &&
                is_error_status_of(h, r)),
           "wsched_wait on a complete batch returned %d (%s)", r, wsched_strerror(r));
    if (!cancelled && r != -ETIMEDOUT) {
        if (h->policy == WSCHED_BEST_EFFORT)
            HCHECK(h, r == 0, "best-effort batch: wait returned %d", r);
        else if (h->policy == WSCHED_FAIL_FAST)
            HCHECK(h, any_error ? is_error_status_of(h, r) : r == 0,
                   "fail-fast batch (failures: %d): wait returned %d", any_error, r);
        else
            HCHECK(h, (r == 0) == (ok >= h->quorum),
                   "quorum %zu with %zu successes: wait returned %d", h->quorum, ok, r);
    }
    if (!cancelled && h->policy == WSCHED_BEST_EFFORT && r == 0)
        HCHECK(h, notrun == 0,
               "best-effort batch completed normally with %zu jobs not run", notrun);
    if (h->have_wait)
        HCHECK(h, r == h->wait_r, "wsched_wait returned %d, earlier %d", r, h->wait_r);
    h->have_wait = true;
    h->wait_r = r;
    HCHECK(h, wsched_wait(b, -1) == r, "wait(-1) on a complete batch differs");
    check_outcome(h, r);
    HCHECK(h, wsched_wait_idle(b, 0) == 0, "wait_idle(0) on an idle batch");
    size_t idx;
    if (h->flags & WSCHED_BATCH_STREAM) {
        while (h->nstreamed < h->n) {
            int e = wsched_next_done(b, 0, &idx);
            HCHECK(h, e == 0, "next_done on an idle batch returned %d with %zu of %zu delivered",
                   e, h->nstreamed, h->n);
            stream_got(h, idx);
        }
        HCHECK(h, wsched_next_done(b, 0, &idx) == -ENODATA, "stream did not end");
        HCHECK(h, wsched_next_done(b, -1, &idx) == -ENODATA, "stream did not end (-1)");
    } else {
        HCHECK(h, wsched_next_done(b, 0, &idx) == -EINVAL, "next_done on a batch without stream");
    }
    h->have_final = true;
    h->idle = true;
}

/* What must hold after wsched_wait(b, tmo) returned r (t0: before the call). */
static void check_after_wait(struct hb *h, int r, uint64_t t0, int64_t tmo)
{
    HCHECK(h,
           r == 0 || r == -ETIMEDOUT ||
               ((h->policy == WSCHED_FAIL_FAST || h->policy == WSCHED_QUORUM) && r < 0 &&
                is_result(r) && r != -EINVAL),
           "wsched_wait(%lld) returned %d (%s)", (long long)tmo, r, wsched_strerror(r));
    if (r == -ETIMEDOUT && tmo < 0)
        HCHECK(h, h->deadline, "wait(-1) returned -ETIMEDOUT in a batch without deadline");
    bool final = r != -ETIMEDOUT || (h->deadline && t0 >= h->deadline);
    if (!final)
        return;
    for (size_t i = 0; i < h->n; i++) {
        int s = wsched_batch_status(h->b, i);
        HCHECK(h, s != WSCHED_ENOTRUN, "wait returned %d but job %zu is not final", r, i);
        observe(h, i, s);
        if (is_result(s))
            check_result(h, i, s);
    }
    if (r != 0 && r != -ETIMEDOUT)
        HCHECK(h, is_error_status_of(h, r), "wait returned %d, no job failed with it", r);
    check_outcome(h, r);
    if (h->have_wait)
        HCHECK(h, r == h->wait_r, "wsched_wait returned %d, earlier %d", r, h->wait_r);
    h->have_wait = true;
    h->wait_r = r;
    if (!arbitrated(h)) {
        /* Header: without quorum or deadline, wait returning anything but
         * -ETIMEDOUT is the moment every job has returned. */
        HCHECK(h, wsched_wait_idle(h->b, 0) == 0,
               "wait returned %d but jobs of a batch without quorum/deadline still run", r);
        verify_final(h);
    }
}

/* ------------------------------------------------------------ jobs */

static void check_cancel_legit(struct hb *h)
{
    /* Pairs with the release of the library's cancel word: the flags the
     * harness set before wsched_cancel or before a failing return. */
    atomic_thread_fence(memory_order_acquire);
    HCHECK(h,
           atomic_load(&h->cancel_requested) || h->policy == WSCHED_QUORUM ||
               (h->policy == WSCHED_FAIL_FAST && atomic_load(&h->failed_seen)) ||
               (h->deadline && now_ns() >= h->deadline),
           "wsched_cancelled() is true but nothing cancelled the batch");
}

static void check_worker(wsched_ctx *ctx)
{
    int w = wsched_current_worker();
    CHECK(w >= 0 && w < R.nworkers, "wsched_current_worker() %d in a job (workers %d)", w,
          R.nworkers);
    CHECK((unsigned)w == wsched_ctx_worker(ctx), "ctx worker %u, current worker %d",
          wsched_ctx_worker(ctx), w);
}

static void child_fn(wsched_ctx *ctx, void *arg)
{
    struct spn *s = arg;
    CHECK(s && s->h->magic == HB_MAGIC, "spawned task got a bad arg");
    atomic_fetch_add(s->counter, 1);
    check_worker(ctx);
    if (wsched_cancelled(ctx))
        check_cancel_legit(s->h);
    CHECK(wsched_blocking(ctx) == 0, "wsched_blocking in a task");
    if (s->level < 2) {
        struct spn g = {s->h, s->counter, s->level + 1};
        CHECK(wsched_spawn(ctx, child_fn, &g) == 0, "spawn");
        CHECK(wsched_spawn(ctx, child_fn, &g) == 0, "spawn");
        CHECK(wsched_sync(ctx) == 0, "sync");
    }
}

static void run_nested(wsched_ctx *ctx, struct hb *parent, size_t i);

static int job_fn(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct hb *h = arg;
    CHECK(h && h->magic == HB_MAGIC, "job got arg %p, not its batch's", arg);
    HCHECK(h, i < h->n, "job index %zu out of range", i);
    uint32_t prev = atomic_fetch_add(&h->ran[i], 1);
    HCHECK(h, prev == 0, "job %zu runs for the %u-th time", i, prev + 1);
    atomic_fetch_add(&R.ran_jobs, 1);
    int cur = atomic_fetch_add(&h->running, 1) + 1;
    if (h->max_parallel)
        HCHECK(h, (size_t)cur <= h->max_parallel, "%d jobs of the batch run at once", cur);
    if (h->depth == 0 && R.max_jobs) {
        int64_t top = atomic_fetch_add(&R.running_top, 1) + 1;
        CHECK((uint64_t)top <= R.max_jobs, "%lld admitted jobs run at once, max_jobs %llu",
              (long long)top, (unsigned long long)R.max_jobs);
    }
    check_worker(ctx);
    h->seen_slot[i] = slot;
    HCHECK(h, (slot != NULL) == (h->slot_mode != SLOTS_NONE), "job %zu got slot %p", i, slot);
    if (h->slot_mode == SLOTS_CALLER)
        HCHECK(h, slot == (char *)h->cslots + i * h->stride, "job %zu got slot %p, expected %p",
               i, slot, (void *)((char *)h->cslots + i * h->stride));
    if (wsched_cancelled(ctx))
        check_cancel_legit(h);

    uint8_t kp = h->kparam[i];
    int r = 0;
    switch (h->kind[i]) {
    case K_OK:
        break;
    case K_ERR:
        r = err_codes[kp % NELEM(err_codes)];
        break;
    case K_RESV:
        r = resv_codes[kp % NELEM(resv_codes)];
        break;
    case K_POLL: {
        uint64_t end = now_ns() + 2000u * (1 + kp % 8);
        while (now_ns() < end) {
            if (wsched_cancelled(ctx)) {
                check_cancel_legit(h);
                r = -ECANCELED;
                break;
            }
            __builtin_ia32_pause();
        }
        break;
    }
    case K_SPAWN: {
        _Atomic uint32_t count = 0;
        /* 1 in 16: more children than the deque's initial capacity (1024
         * records): the deque grows, or the child runs inline when it
         * cannot (allocation failures). */
        unsigned k = (kp & 0xf0) == 0xf0 ? 1100 : 1 + kp % 3;
        int level = (kp & 8) && k < 4 ? 1 : 2; /* level 1 children spawn two each */
        struct spn s = {h, &count, level};
        CHECK(wsched_spawn(ctx, NULL, &s) == -EINVAL, "spawn of a NULL fn");
        for (unsigned j = 0; j < k; j++)
            CHECK(wsched_spawn(ctx, child_fn, &s) == 0, "spawn");
        CHECK(wsched_sync(ctx) == 0, "sync");
        uint32_t want = level == 1 ? 3 * k : k;
        HCHECK(h, atomic_load(&count) == want, "after wsched_sync %u of %u children ran",
               atomic_load(&count), want);
        CHECK(wsched_sync(ctx) == 0, "second sync");
        break;
    }
    case K_SPAWN_IMPL: {
        /* Return with children outstanding (implicitly synced): their arg
         * is batch memory, which outlives the job function. */
        unsigned k = 1 + kp % 3;
        h->exp_children[i] = k;
        h->impl_spn[i] = (struct spn){h, &h->children[i], 2};
        for (unsigned j = 0; j < k; j++)
            CHECK(wsched_spawn(ctx, child_fn, &h->impl_spn[i]) == 0, "spawn");
        break;
    }
    case K_NESTED:
        if (h->depth == 0)
            run_nested(ctx, h, i);
        break;
    case K_BLOCK:
        HCHECK(h, wsched_blocking(ctx) == 0, "wsched_blocking");
        spin_for(5000u * (1 + kp % 4));
        break;
    }
    if (slot)
        for (size_t k = 0; k < h->slot_size; k++)
            ((unsigned char *)slot)[k] = pattern(i, k);
    h->ret[i] = r;
    if (r != 0)
        atomic_store(&h->failed_seen, 1);
    if (h->depth == 0 && R.max_jobs)
        atomic_fetch_sub(&R.running_top, 1);
    atomic_fetch_sub(&h->running, 1);
    return r;
}

/* Kinds a batch's jobs may have: bit k of `allowed` allows kind k. */
static void assign_kinds(struct hb *h, unsigned allowed, uint64_t seed)
{
    int opts[NKINDS], nopt = 0;
    for (int k = 0; k < NKINDS; k++)
        if (allowed & (1u << k))
            opts[nopt++] = k;
    for (size_t i = 0; i < h->n; i++) {
        uint64_t x = mix64(seed * 64 + i);
        h->kind[i] = nopt ? (uint8_t)opts[x % (unsigned)nopt] : K_OK;
        h->kparam[i] = (uint8_t)(x >> 32);
    }
}

/* A job submits a batch of its own and waits for it (inside the pool: the
 * worker helps; admission limits do not apply). */
static void run_nested(wsched_ctx *ctx, struct hb *parent, size_t i)
{
    /* -EDEADLK; -EBADF once another thread is destroying the pool (jobs
     * of batches freed early may still run then). */
    int dr = wsched_pool_destroy(R.pool);
    CHECK(dr == -EDEADLK || (dr == -EBADF && atomic_load(&R.destroying)),
          "pool_destroy from a job returned %d (%s)", dr, wsched_strerror(dr));
    uint64_t x = mix64(((uint64_t)parent->kparam[i] << 8) ^ i ^ ((uint64_t)parent->n << 20));
    struct hb *h = hb_new();
    h->depth = 1;
    h->owner = -1;
    h->n = 1 + x % MAXJ_NESTED;
    h->flags = (x >> 3) & 3;
    h->policy = (x >> 5) % 3;
    h->quorum = 1 + (x >> 7) % h->n;
    unsigned dl = (x >> 10) & 7;
    h->deadline = dl == 0 ? 1 : dl == 1 ? now_ns() + 30000 : 0;
    h->slot_mode = (x >> 13) % 3;
    h->slot_size = 8;
    h->slot_stride = ((x >> 15) & 1) ? 12 : 0;
    h->max_parallel = (x >> 16) & 3;
    h->prio = (x >> 18) & 1;
    hb_layout(h);
    assign_kinds(h, (unsigned)(x >> 19) & ~(1u << K_NESTED) & 0xff, x >> 27);
    wsched_batch_desc d = hb_desc(h);
    atomic_fetch_add(&R.accepted_jobs, h->n);
    bool timed = (x >> 30) & 1;
    /* Inside the pool a worker never waits for admission: a 0 timeout
     * must be accepted whatever max_jobs is. */
    int r = timed ? wsched_submit_timed(R.pool, &d, &h->b, 0) : wsched_submit(R.pool, &d, &h->b);
    if (r != 0) {
        HCHECK(h, r == -ENOMEM && R.inject, "nested submit returned %d (%s)", r,
               wsched_strerror(r));
        HCHECK(h, h->b == NULL, "failed submit left *out set");
        atomic_fetch_sub(&R.accepted_jobs, h->n);
        hb_free(h);
        return;
    }
    size_t idx;
    if ((h->flags & WSCHED_BATCH_STREAM) && ((x >> 31) & 1)) {
        while (h->nstreamed < h->n) {
            int e = wsched_next_done(h->b, -1, &idx);
            HCHECK(h, e == 0, "next_done(-1) in a job returned %d", e);
            stream_got(h, idx);
        }
        HCHECK(h, wsched_next_done(h->b, -1, &idx) == -ENODATA, "stream did not end");
    }
    uint64_t t0 = now_ns();
    int64_t tmo = ((x >> 32) & 1) ? -1 : 20000;
    check_after_wait(h, wsched_wait(h->b, tmo), t0, tmo);
    HCHECK(h, wsched_wait_idle(h->b, -1) == 0, "wait_idle(-1) in a job");
    verify_final(h);
    (void)ctx;
    wsched_batch_free(h->b);
    hb_free(h);
}

/* ------------------------------------------------------------ threads */

enum {
    OP_SUBMIT0,
    OP_SUBMIT1,
    OP_SUBMIT2,
    OP_CANCEL,
    OP_WAIT,
    OP_WAIT2,
    OP_WAIT_IDLE,
    OP_NEXT_DONE,
    OP_DRAIN,
    OP_FREE,
    OP_CHECK,
    OP_STATS,
    OP_BAD,
    OP_QUERY,
    OP_SLEEP,
    OP_YIELD,
};
#define SUBMIT_PARAMS 9
#define OTHER_PARAMS 2

struct op {
    uint8_t code;
    uint8_t p[SUBMIT_PARAMS];
};

struct thr {
    int id;
    int nops;
    struct op ops[MAX_OPS];
    struct hb *live[MAX_LIVE];
    int nlive;
    struct hb *early; /* freed early: records kept until the pool is gone */
    struct hb *kept;  /* verified, kept until after destroy */
    size_t budget;
    bool have_last;
    wsched_worker_stats last[4];
    pthread_t th;
};

static const int64_t tmo_tab[8] = {0, 1000, 50000, 500000, 2000000, -1, -1, 0};

static void live_remove(struct thr *t, int k)
{
    t->live[k] = t->live[--t->nlive];
}

static void op_submit(struct thr *t, const uint8_t *p)
{
    size_t n = 1 + p[0] % MAXJ;
    if (t->nlive >= MAX_LIVE || t->budget < n)
        return;
    t->budget -= n;
    struct hb *h = hb_new();
    h->owner = t->id;
    h->n = n;
    h->flags = p[1] & 3;
    h->policy = (p[1] >> 2) % 3;
    h->prio = (p[1] >> 4) & 1;
    static const int smode[4] = {SLOTS_NONE, SLOTS_LIB, SLOTS_CALLER, SLOTS_LIB};
    h->slot_mode = smode[(p[1] >> 5) & 3];
    unsigned timed = (p[1] >> 7) | ((p[2] & 1) << 1); /* 0 submit, 1-3 timed */
    /* quorum: any value for other policies (ignored there) */
    h->quorum = h->policy == WSCHED_QUORUM ? 1 + p[3] % n : p[3] % 4;
    uint64_t now = now_ns();
    switch (p[4] & 7) {
    case 4:
        h->deadline = 1; /* long past */
        break;
    case 5:
        h->deadline = now - 1000;
        break;
    case 6:
        h->deadline = now + (50000ull << ((p[4] >> 3) & 7)); /* 50 us .. 6.4 ms */
        break;
    case 7:
        h->deadline = now + 1000000;
        break;
    default:
        h->deadline = 0;
    }
    static const size_t mp[8] = {0, 0, 0, 0, 1, 2, 3, 100};
    h->max_parallel = mp[p[5] & 7];
    static const size_t sizes[8] = {1, 3, 4, 8, 16, 24, 64, 100};
    h->slot_size = sizes[p[6] & 7];
    switch ((p[6] >> 3) & 3) {
    case 0:
        h->slot_stride = 0;
        break;
    case 1:
        h->slot_stride = h->slot_size;
        break;
    case 2:
        h->slot_stride = h->slot_size + 5;
        break;
    default:
        h->slot_stride = h->slot_size + 64;
    }
    hb_layout(h);
    assign_kinds(h, p[7], p[8] | (uint64_t)p[2] << 8);
    wsched_batch_desc d = hb_desc(h);
    atomic_fetch_add(&R.accepted_jobs, n);
    static const int64_t admit_tmo[4] = {-1, 0, 200000, -1};
    int r;
    wsched_batch *b = (wsched_batch *)(uintptr_t)0x1;
    if (timed == 0)
        r = wsched_submit(R.pool, &d, &b);
    else
        r = wsched_submit_timed(R.pool, &d, &b, admit_tmo[timed]);
    if (r != 0) {
        bool ok = (r == -ENOMEM && R.inject) || (R.max_jobs && n > R.max_jobs && r == -E2BIG) ||
                  (R.max_jobs && n <= R.max_jobs && timed == 1 && r == -EBUSY) ||
                  (R.max_jobs && n <= R.max_jobs && timed == 2 && r == -ETIMEDOUT);
        HCHECK(h, ok, "submit (mode %u, max_jobs %llu) returned %d (%s)", timed,
               (unsigned long long)R.max_jobs, r, wsched_strerror(r));
        HCHECK(h, b == NULL, "failed submit did not clear *out");
        atomic_fetch_sub(&R.accepted_jobs, n);
        hb_free(h);
        return;
    }
    if (R.max_jobs)
        HCHECK(h, n <= R.max_jobs, "a batch larger than max_jobs %llu was accepted",
               (unsigned long long)R.max_jobs);
    HCHECK(h, b != NULL, "submit returned 0 without a batch");
    h->b = b;
    t->live[t->nlive++] = h;
}

static void op_wait(struct thr *t, const uint8_t *p)
{
    if (!t->nlive)
        return;
    struct hb *h = t->live[p[0] % t->nlive];
    int64_t tmo = tmo_tab[p[1] & 7];
    uint64_t t0 = now_ns();
    int r = wsched_wait(h->b, tmo);
    check_after_wait(h, r, t0, tmo);
}

static void op_wait_idle(struct thr *t, const uint8_t *p)
{
    if (!t->nlive)
        return;
    struct hb *h = t->live[p[0] % t->nlive];
    int64_t tmo = tmo_tab[p[1] & 7];
    int r = wsched_wait_idle(h->b, tmo);
    HCHECK(h, r == 0 || (r == -ETIMEDOUT && tmo >= 0), "wait_idle(%lld) returned %d",
           (long long)tmo, r);
    if (r == 0)
        verify_final(h);
}

static void op_next_done(struct thr *t, const uint8_t *p, bool drain)
{
    if (!t->nlive)
        return;
    struct hb *h = t->live[p[0] % t->nlive];
    int64_t tmo = tmo_tab[p[1] & 7];
    size_t idx = (size_t)-7;
    if (!(h->flags & WSCHED_BATCH_STREAM)) {
        HCHECK(h, wsched_next_done(h->b, tmo, &idx) == -EINVAL,
               "next_done on a batch without stream");
        return;
    }
    HCHECK(h, wsched_next_done(h->b, 0, NULL) == -EINVAL, "next_done with a NULL index");
    for (size_t k = 0; k <= h->n; k++) {
        int r = wsched_next_done(h->b, tmo, &idx);
        if (r == -ENODATA) {
            HCHECK(h, h->nstreamed == h->n, "-ENODATA after %zu of %zu", h->nstreamed, h->n);
            return;
        }
        HCHECK(h, h->nstreamed < h->n, "next_done returned %d after every job was delivered",
               r);
        if (r == -ETIMEDOUT) {
            HCHECK(h, tmo >= 0, "next_done(-1) timed out");
            return;
        }
        HCHECK(h, r == 0, "next_done returned %d (%s)", r, wsched_strerror(r));
        stream_got(h, idx);
        if (!drain)
            return;
    }
}

static void op_free(struct thr *t, const uint8_t *p)
{
    if (!t->nlive)
        return;
    int k = p[0] % t->nlive;
    struct hb *h = t->live[k];
    if (!h->idle && (p[1] & 1)) {
        /* Free while jobs may still run: the library keeps its reference;
         * our records (arg, caller slots) stay until the pool is gone. */
        wsched_batch_free(h->b);
        h->b = NULL;
        atomic_fetch_add(&R.early_frees, 1);
        live_remove(t, k);
        h->next = t->early;
        t->early = h;
        return;
    }
    if (!h->idle) {
        HCHECK(h, wsched_wait_idle(h->b, -1) == 0, "wait_idle(-1)");
        verify_final(h);
    }
    wsched_batch_free(h->b);
    live_remove(t, k);
    hb_free(h);
}

static void op_check(struct thr *t, const uint8_t *p)
{
    if (!t->nlive)
        return;
    struct hb *h = t->live[p[0] % t->nlive];
    HCHECK(h, wsched_wait_idle(h->b, -1) == 0, "wait_idle(-1)");
    verify_final(h);
}

static void op_cancel(struct thr *t, const uint8_t *p)
{
    if (!t->nlive)
        return;
    struct hb *h = t->live[p[0] % t->nlive];
    atomic_store(&h->cancel_requested, 1); /* before: jobs that see it check it */
    HCHECK(h, wsched_cancel(h->b) == 0, "wsched_cancel");
    if (p[1] & 1)
        HCHECK(h, wsched_cancel(h->b) == 0, "second wsched_cancel");
}

static void op_stats(struct thr *t, const uint8_t *p)
{
    wsched_pool_stats st;
    wsched_worker_stats pw[5];
    memset(pw, 0xCD, sizeof pw);
    unsigned n = p[0] % 5;
    bool with = (p[0] >> 3) & 1;
    int r = wsched_stats(R.pool, &st, with ? pw : NULL, n);
    CHECK(r == 0, "wsched_stats returned %d", r);
    unsigned nw = (unsigned)R.nworkers;
    CHECK(st.nworkers == nw, "stats: %u workers, pool has %u", st.nworkers, nw);
    CHECK(st.parked + st.searching + st.running == nw,
          "stats: parked %u searching %u running %u of %u", st.parked, st.searching, st.running,
          nw);
    /* (x86-TSO: a job counted in total.jobs was submitted, and counted in
     * accepted_jobs, before the worker ran it.) */
    uint64_t acc = atomic_load(&R.accepted_jobs);
    CHECK(st.total.jobs <= acc, "stats: %llu jobs run, only %llu submitted",
          (unsigned long long)st.total.jobs, (unsigned long long)acc);
    if (!with)
        return;
    unsigned m = n < nw ? n : nw;
    const unsigned char *raw = (const unsigned char *)&pw[m];
    for (size_t k = 0; k < (5 - m) * sizeof pw[0]; k++)
        CHECK(raw[k] == 0xCD, "stats wrote past min(n, nworkers) = %u entries", m);
    if (m == nw) {
        wsched_worker_stats s = {0};
        for (unsigned k = 0; k < m; k++) {
            s.jobs += pw[k].jobs;
            s.tasks += pw[k].tasks;
            s.steals += pw[k].steals;
            s.parks += pw[k].parks;
        }
        CHECK(s.jobs == st.total.jobs && s.tasks == st.total.tasks &&
                  s.steals == st.total.steals && s.parks == st.total.parks,
              "stats: totals are not the sum of the per-worker counters");
    }
    if (t->have_last)
        for (unsigned k = 0; k < m; k++) {
            const wsched_worker_stats *a = &t->last[k], *b = &pw[k];
            CHECK(b->jobs >= a->jobs && b->tasks >= a->tasks && b->steals >= a->steals &&
                      b->steal_fails >= a->steal_fails && b->parks >= a->parks &&
                      b->wakeups >= a->wakeups && b->busy_ns >= a->busy_ns,
                  "stats: a counter of worker %u went backwards", k);
        }
    if (m == nw) {
        memcpy(t->last, pw, sizeof t->last[0] * m);
        t->have_last = true;
    }
}

static int nop_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    CHECK(0, "a rejected batch ran a job");
    return 0;
}

/* Bad input: a negative code, never a crash (nor a job run). */
static void op_bad(struct thr *t, const uint8_t *p)
{
    wsched_batch_desc d;
    memset(&d, 0, sizeof d);
    d.fn = nop_job;
    d.njobs = 1 + p[1] % 8;
    wsched_batch *b = (wsched_batch *)(uintptr_t)0x1;
    wsched_batch **out = &b;
    wsched_pool *pool = R.pool;
    const wsched_batch_desc *dp = &d;
    int want = -EINVAL;
    char dummy[64];
    switch (p[0] % 20) {
    case 0:
        dp = NULL;
        break;
    case 1:
        d.njobs = 0;
        break;
    case 2:
        d.flags = 1u << (2 + p[1] % 30);
        break;
    case 3:
        d.policy = WSCHED_QUORUM;
        d.quorum = 0;
        break;
    case 4:
        d.policy = WSCHED_QUORUM;
        d.quorum = d.njobs + 1 + p[1];
        break;
    case 5:
        d.fn = NULL;
        break;
    case 6:
        d.policy = 3 + p[1];
        break;
    case 7:
        d.priority = 2 + p[1];
        break;
    case 8:
        d.slot_size = 8 + p[1] % 8;
        d.slot_stride = 1 + p[1] % 7;
        break;
    case 9:
        d.slots = dummy;
        d.slot_size = 0;
        break;
    case 10:
        out = NULL;
        break;
    case 11:
        pool = NULL;
        break;
    case 12: /* njobs * stride overflows */
        d.njobs = SIZE_MAX / 8 + p[1];
        d.slot_size = 64;
        if (p[1] & 1)
            d.slots = dummy;
        want = -EOVERFLOW;
        break;
    case 13: /* statuses alone overflow */
        d.njobs = SIZE_MAX / 2 + p[1];
        want = -EOVERFLOW;
        break;
    case 14: /* the stream's 31-bit counter */
        d.njobs = (size_t)1 << 31;
        d.flags = WSCHED_BATCH_STREAM;
        want = -EOVERFLOW;
        break;
    case 18:
        d.reserved[p[1] % 4] = dummy;
        break;
    case 19: /* a stride without slots */
        d.slot_stride = 1 + p[1];
        break;
    case 15: {
        size_t idx;
        CHECK(wsched_wait(NULL, 0) == -EINVAL, "wait(NULL)");
        CHECK(wsched_wait_idle(NULL, 0) == -EINVAL, "wait_idle(NULL)");
        CHECK(wsched_cancel(NULL) == -EINVAL, "cancel(NULL)");
        CHECK(wsched_next_done(NULL, 0, &idx) == -EINVAL, "next_done(NULL)");
        wsched_batch_free(NULL);
        CHECK(wsched_batch_size(NULL) == 0, "batch_size(NULL)");
        CHECK(wsched_batch_slot(NULL, 0) == NULL, "batch_slot(NULL)");
        CHECK(wsched_batch_status(NULL, 0) == -EINVAL, "batch_status(NULL)");
        CHECK(wsched_batch_failed(NULL) == 0, "batch_failed(NULL)");
        wsched_outcome o;
        CHECK(wsched_batch_outcome(NULL, &o) == -EINVAL, "batch_outcome(NULL)");
        CHECK(wsched_cancelled(NULL) == 0, "cancelled(NULL)");
        CHECK(wsched_spawn(NULL, child_fn, NULL) == -EINVAL, "spawn(NULL)");
        CHECK(wsched_sync(NULL) == -EINVAL, "sync(NULL)");
        CHECK(wsched_blocking(NULL) == -EINVAL, "blocking(NULL)");
        CHECK(wsched_ctx_worker(NULL) == 0, "ctx_worker(NULL)");
        return;
    }
    case 16: {
        wsched_pool_stats st;
        CHECK(wsched_stats(R.pool, NULL, NULL, 0) == -EINVAL, "stats(NULL out)");
        CHECK(wsched_stats(NULL, &st, NULL, 0) == -EINVAL, "stats(NULL pool)");
        CHECK(wsched_pool_workers(NULL) == -EINVAL, "pool_workers(NULL)");
        CHECK(wsched_pool_destroy(NULL) == -EINVAL, "pool_destroy(NULL)");
        return;
    }
    default: {
        wsched_config cfg;
        wsched_config_init(&cfg);
        wsched_pool *np = (wsched_pool *)(uintptr_t)0x1;
        int r;
        static const wsched_allocator half = {fa_alloc, NULL, &FA};
        switch (p[1] % 9) {
        case 0:
            cfg.flags = 2u << (p[1] % 31);
            break;
        case 4:
            cfg.reserved[p[1] % 4] = &cfg;
            break;
        case 5:
            cfg.allocator = &half;
            break;
        case 6:
            cfg.ncpus = 1 + p[1] % 4; /* without cpus */
            break;
        case 7:
            cfg.spin_us = WSCHED_SPIN_US_MAX + 1 + p[1];
            break;
        case 8:
            cfg.max_jobs = (uint64_t)INT64_MAX + 1 + p[1];
            break;
        case 1:
            cfg.nworkers = 4097 + p[1];
            break;
        case 2: {
            static const int bad_cpu[1] = {-1};
            cfg.cpus = bad_cpu;
            cfg.ncpus = 1;
            break;
        }
        case 3:
            CHECK(wsched_pool_create(NULL, &cfg) == -EINVAL, "pool_create(NULL)");
            return;
        }
        r = wsched_pool_create(&np, &cfg);
        CHECK(r == -EINVAL, "pool_create with a bad config returned %d", r);
        CHECK(np == NULL, "failed pool_create left *out set");
        return;
    }
    }
    (void)t;
    int r = (p[1] & 0x80) ? wsched_submit_timed(pool, dp, out, 0) : wsched_submit(pool, dp, out);
    CHECK(r == want, "bad submit (case %u) returned %d (%s), want %d", p[0] % 20, r, wsched_strerror(r),
          want);
    if (out)
        CHECK(b == NULL, "failed submit did not clear *out");
}

static void op_query(struct thr *t, const uint8_t *p)
{
    CHECK(wsched_pool_workers(R.pool) == R.nworkers, "pool_workers");
    CHECK(wsched_current_worker() == -1, "current_worker outside the pool");
    static const int codes[] = {0,
                                -EINVAL,
                                -ETIMEDOUT,
                                -ENODATA,
                                WSCHED_ENOTRUN,
                                WSCHED_EJOBCODE,
                                WSCHED_ECANCELLED,
                                WSCHED_EDEADLINE,
                                WSCHED_ERRBASE - 5,
                                INT_MIN,
                                INT_MAX,
                                12345};
    const char *s = wsched_strerror(codes[p[1] % NELEM(codes)]);
    CHECK(s != NULL && strlen(s) < 4096, "strerror");
    s = wsched_strerror(-(int)p[1] * 37);
    CHECK(s != NULL, "strerror");
    if (!t->nlive)
        return;
    struct hb *h = t->live[p[0] % t->nlive];
    check_layout(h);
    size_t failed = wsched_batch_failed(h->b);
    HCHECK(h, failed <= h->n, "batch_failed %zu", failed);
    check_outcome_snapshot(h);
    for (size_t i = 0; i < h->n; i++) {
        int st = wsched_batch_status(h->b, i);
        observe(h, i, st);
        if (h->idle)
            HCHECK(h, st == h->final_st[i], "status changed after idle");
    }
}

static void run_ops(struct thr *t)
{
    for (int k = 0; k < t->nops; k++) {
        const struct op *o = &t->ops[k];
        switch (o->code) {
        case OP_SUBMIT0:
        case OP_SUBMIT1:
        case OP_SUBMIT2:
            op_submit(t, o->p);
            break;
        case OP_CANCEL:
            op_cancel(t, o->p);
            break;
        case OP_WAIT:
        case OP_WAIT2:
            op_wait(t, o->p);
            break;
        case OP_WAIT_IDLE:
            op_wait_idle(t, o->p);
            break;
        case OP_NEXT_DONE:
            op_next_done(t, o->p, false);
            break;
        case OP_DRAIN:
            op_next_done(t, o->p, true);
            break;
        case OP_FREE:
            op_free(t, o->p);
            break;
        case OP_CHECK:
            op_check(t, o->p);
            break;
        case OP_STATS:
            op_stats(t, o->p);
            break;
        case OP_BAD:
            op_bad(t, o->p);
            break;
        case OP_QUERY:
            op_query(t, o->p);
            break;
        case OP_SLEEP:
            usleep(25u * (o->p[0] % 8));
            break;
        default:
            sched_yield();
        }
    }
    /* The end of every program: every batch not freed is waited for and
     * checked in full. */
    while (t->nlive) {
        struct hb *h = t->live[t->nlive - 1];
        HCHECK(h, wsched_wait_idle(h->b, -1) == 0, "wait_idle(-1)");
        verify_final(h);
        t->nlive--;
        if (R.keep) {
            h->next = t->kept;
            t->kept = h;
        } else {
            wsched_batch_free(h->b);
            hb_free(h);
        }
    }
}

static void *thr_main(void *arg)
{
    run_ops(arg);
    return NULL;
}

/* ------------------------------------------------ destroy under submits */

struct late {
    struct hb *accepted[LATE_SUBMITS];
    int naccepted;
};

static void *late_main(void *arg)
{
    struct late *L = arg;
    int phase = 0; /* 0 accepting, 1 -ESHUTDOWN seen, 2 -EBADF seen */
    for (int k = 0; k < LATE_SUBMITS; k++) {
        struct hb *h = hb_new();
        h->owner = 9;
        h->n = 1 + k % 2;
        if (R.max_jobs && h->n > R.max_jobs)
            h->n = (size_t)R.max_jobs;
        h->slot_mode = SLOTS_LIB;
        h->slot_size = 8;
        hb_layout(h);
        wsched_batch_desc d = hb_desc(h);
        int r = wsched_submit(R.pool, &d, &h->b);
        if (r == 0) {
            HCHECK(h, phase == 0, "submit accepted after the pool answered %s",
                   phase == 1 ? "-ESHUTDOWN" : "-EBADF");
            L->accepted[L->naccepted++] = h;
            continue;
        }
        HCHECK(h, h->b == NULL, "failed submit did not clear *out");
        hb_free(h);
        if (r == -ESHUTDOWN) {
            CHECK(phase <= 1, "-ESHUTDOWN after -EBADF");
            phase = 1;
        } else if (r == -EBADF) {
            phase = 2;
            break;
        } else {
            CHECK(r == -ENOMEM && R.inject, "submit during destroy returned %d (%s)", r,
                  wsched_strerror(r));
        }
        sched_yield();
    }
    return NULL;
}

/* ------------------------------------------------------------ driver */

static void check_early(struct hb *h)
{
    /* The pool is destroyed: every job has returned and was joined. */
    for (size_t i = 0; i < h->n; i++) {
        uint32_t ran = atomic_load(&h->ran[i]);
        HCHECK(h, ran <= 1, "job %zu of a batch freed early ran %u times", i, ran);
        uint32_t ch = atomic_load(&h->children[i]);
        HCHECK(h, ch == (ran && h->kind[i] == K_SPAWN_IMPL ? h->exp_children[i] : 0),
               "job %zu of a batch freed early: %u children", i, ch);
    }
    if (h->slot_mode == SLOTS_CALLER)
        for (size_t k = h->n * h->stride; k < h->cbytes; k++)
            HCHECK(h, h->cslots[k] == CANARY, "caller slot memory written past its end");
}

/*
 * Leak detection per input. libFuzzer runs LeakSanitizer after an input
 * only when it saw more mallocs than frees, and stops doing so after 1000
 * such inputs. Every destroyed pool keeps a 64-byte tombstone on purpose
 * (header: wsched_pool_destroy), so every input would qualify: slow, and
 * after 1000 inputs leaks would only be caught at exit. The harness frees
 * one block allocated before fuzzing started for each pool it created, so
 * that an input's mallocs and frees balance unless something really leaks.
 */
#define BALLAST (1u << 18)
static void **ballast;
static size_t nballast;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    ballast = malloc(sizeof(void *) * BALLAST);
    for (nballast = 0; ballast && nballast < BALLAST; nballast++)
        if (!(ballast[nballast] = malloc(1)))
            break;
    return 0;
}

static void balance_tombstone(void)
{
    if (nballast)
        free(ballast[--nballast]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader {
        const uint8_t *d;
        size_t n, i;
    } in = {data, size, 0};
#define RD() (in.i < in.n ? in.d[in.i++] : 0)
    uint8_t h0 = RD(), h1 = RD(), h2 = RD(), h3 = RD();

    memset(&R, 0, sizeof R);
    static const unsigned spin_tab[8] = {0, 1, 2, 5, 10, 20, 50, 3};
    static const uint64_t maxjobs_tab[8] = {0, 0, 0, 0, 1, 8, 64, 200};
    bool custom = (h0 >> 5) & 1;
    R.keep = (h0 >> 6) & 1;
    bool late = (h0 >> 7) & 1;
    int nthreads = 1 + h1 % 3;
    R.max_jobs = maxjobs_tab[(h1 >> 2) & 7];
    FA.fail_at = custom ? h2 : 0;
    FA.period = h3 ? 3 + (uint64_t)h3 : 0;
    atomic_store(&FA.calls, 0);
    atomic_store(&FA.failures, 0);
    R.inject = FA.fail_at != 0;

    static struct thr T[MAX_THREADS];
    memset(T, 0, sizeof T);
    for (int k = 0; k < nthreads; k++) {
        T[k].id = k;
        T[k].budget = JOB_BUDGET;
    }
    for (int total = 0; in.i < in.n && total < MAX_TOTAL_OPS; total++) {
        uint8_t c = RD();
        struct thr *t = &T[(c >> 4) % nthreads];
        struct op o = {.code = c & 15};
        int np = o.code <= OP_SUBMIT2 ? SUBMIT_PARAMS : OTHER_PARAMS;
        for (int k = 0; k < np; k++)
            o.p[k] = RD();
        if (t->nops < MAX_OPS)
            t->ops[t->nops++] = o;
    }
#undef RD

    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 1 + h0 % 3;
    cfg.flags = WSCHED_POOL_NO_PIN;
    cfg.spin_us = spin_tab[(h0 >> 2) & 7];
    cfg.max_jobs = R.max_jobs;
    if (custom)
        cfg.allocator = &fa_allocator;
    wsched_pool *pool = (wsched_pool *)(uintptr_t)0x1;
    int r = wsched_pool_create(&pool, &cfg);
    if (r != 0) {
        CHECK(r == -ENOMEM && R.inject, "pool_create returned %d (%s)", r, wsched_strerror(r));
        CHECK(pool == NULL, "failed pool_create left *out set");
        CHECK(atomic_load(&FA.outstanding) == 0,
              "pool_create failed with -ENOMEM and leaked %lld allocations",
              (long long)atomic_load(&FA.outstanding));
        FA.fail_at = 0; /* again, without failures */
        R.inject = false;
        r = wsched_pool_create(&pool, &cfg);
        CHECK(r == 0, "pool_create returned %d (%s)", r, wsched_strerror(r));
    }
    balance_tombstone();
    R.pool = pool;
    R.nworkers = (int)cfg.nworkers;
    CHECK(wsched_pool_workers(pool) == R.nworkers, "pool_workers %d",
          wsched_pool_workers(pool));

    for (int k = 1; k < nthreads; k++)
        CHECK(pthread_create(&T[k].th, NULL, thr_main, &T[k]) == 0, "pthread_create");
    run_ops(&T[0]);
    for (int k = 1; k < nthreads; k++)
        pthread_join(T[k].th, NULL);

    /* Every batch still referenced is idle: the counters are complete. */
    wsched_pool_stats st;
    CHECK(wsched_stats(pool, &st, NULL, 0) == 0, "stats");
    uint64_t acc = atomic_load(&R.accepted_jobs), ran = atomic_load(&R.ran_jobs);
    CHECK(st.total.jobs <= acc, "stats: %llu jobs counted, %llu submitted",
          (unsigned long long)st.total.jobs, (unsigned long long)acc);
    if (atomic_load(&R.early_frees) == 0)
        CHECK(st.total.jobs >= ran, "stats: %llu jobs counted, %llu ran",
              (unsigned long long)st.total.jobs, (unsigned long long)ran);

    struct late L = {.naccepted = 0};
    pthread_t lt;
    if (late)
        CHECK(pthread_create(&lt, NULL, late_main, &L) == 0, "pthread_create");
    atomic_store(&R.destroying, 1);
    r = wsched_pool_destroy(pool);
    CHECK(r == 0, "pool_destroy returned %d", r);
    if (late)
        pthread_join(lt, NULL);
    CHECK(wsched_pool_destroy(pool) == -EBADF, "second destroy");
    CHECK(wsched_pool_workers(pool) == -EBADF, "pool_workers after destroy");
    CHECK(wsched_stats(pool, &st, NULL, 0) == -EBADF, "stats after destroy");
    {
        wsched_batch_desc d;
        memset(&d, 0, sizeof d);
        d.fn = nop_job;
        d.njobs = 1;
        wsched_batch *b = (wsched_batch *)(uintptr_t)0x1;
        CHECK(wsched_submit(pool, &d, &b) == -EBADF, "submit after destroy");
        CHECK(b == NULL, "failed submit did not clear *out");
    }

    /* Batches accepted while the pool was being destroyed ran in full. */
    for (int k = 0; k < L.naccepted; k++) {
        struct hb *h = L.accepted[k];
        HCHECK(h, wsched_wait(h->b, -1) == 0, "batch accepted before destroy");
        HCHECK(h, wsched_wait_idle(h->b, 0) == 0, "batch accepted before destroy: not idle");
        verify_final(h);
        wsched_batch_free(h->b);
        hb_free(h);
    }
    /* Handles stay valid after destroy. */
    for (int k = 0; k < nthreads; k++) {
        while (T[k].kept) {
            struct hb *h = T[k].kept;
            T[k].kept = h->next;
            verify_final(h);
            wsched_batch_free(h->b);
            hb_free(h);
        }
        while (T[k].early) {
            struct hb *h = T[k].early;
            T[k].early = h->next;
            check_early(h);
            hb_free(h);
        }
    }
    if (custom)
        CHECK(atomic_load(&FA.outstanding) == 0,
              "%lld allocations outstanding after destroy and every batch freed",
              (long long)atomic_load(&FA.outstanding));
    FA.fail_at = 0;
    return 0;
}
