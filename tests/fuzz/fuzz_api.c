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
 * batch, or call wsched_blocking and spin briefly. Batches with
 * WSCHED_BATCH_WAITS also have jobs that wait (sleeps, wakers, fd waits,
 * nested batches; misuse of those calls), served by a waker thread: see
 * "Jobs that wait".
 *
 * Every invariant that the header documents and that can be checked from
 * the outside is checked; a violation prints a message and abort()s, which
 * libFuzzer reports as a crash. See check_* and verify_final below.
 *
 * API 1.0 (the header's "Conventions"): a call returns its own status only.
 * wsched_wait answers 0 once the batch is complete whatever its outcome and
 * -ETIMEDOUT only when the caller's timeout ran out first; how the batch
 * ended (FAILED or QUORUM_IMPOSSIBLE with the first error, DEADLINE, ...,
 * what wsched_wait's return value used to say) is checked on
 * wsched_batch_outcome, which must not change once complete.
 * wsched_batch_status writes *status and leaves it alone on -EINVAL; the
 * structs the library fills (outcome, pool and worker stats) are passed
 * with their size: smaller is -EINVAL, larger gets zeros past the
 * library's struct and nothing past the size.
 *
 * Input format (bytes past the end read as 0):
 *   b0  bits 0-1 workers (1 + b%3), bits 2-4 spin_us index, bit 5 counting
 *       allocator, bit 6 keep batches until after pool destroy, bit 7 a
 *       thread that keeps submitting while the pool is destroyed
 *   b1  helpers (b%3), bits 2-4 max_jobs index, bits 5-7 d: 0 = the batches
 *       left at the end are waited for before the pool is destroyed; else
 *       it is destroyed with them running, (d - 1) * 50 us after the last
 *       operation, and they are checked after
 *   b2  allocation failure injection: fail the b2-th allocation (0 = none;
 *       only with the counting allocator)
 *   b3  ... and then every (3 + b3)-th one (b3 = 0: only once)
 *   then operations: one byte (bits 0-3 opcode, bits 4-7 thread % nthreads)
 *   followed by 9 parameter bytes for SUBMIT (opcodes 0-2), 2 for the others.
 *   SUBMIT p0 njobs - 1; p1 bits 0-1 flags (PAD_SLOTS, STREAM), (p1 >> 2) % 3
 *       policy, bit 4 priority, bits 5-6 slots, bit 7 + p2 bit 0 timed
 *       submit; p2 bits 1-7 seed; p3 quorum; p4 deadline; p5 bits 0-2
 *       max_parallel, bit 3 WSCHED_BATCH_WAITS, bits 4-7 the wait kinds its
 *       K_WAIT jobs use (sleep, waker, fd, nested batch); p6 bits 0-4 slot
 *       size and stride, bits 5-7 misuse of the waits (that many steps in
 *       8); p7 the job kinds allowed (bit k: kind k); p8 seed.
 *   POST (opcode 15) p0 bits 0-2 record, bits 3-4 job kind, bits 5-7 its
 *       code; p1 bits 0-1 wait after the post (none, poll, for ever,
 *       50 us), bit 2 bad inputs first. See "Single jobs".
 * tests/fuzz/make_corpus.py writes seeds in this format.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
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

/* K_WAIT (jobs of WSCHED_BATCH_WAITS batches only) is not in the submit's
 * `allowed` byte: see "Jobs that wait" below. */
enum { K_OK, K_ERR, K_RESV, K_POLL, K_SPAWN, K_SPAWN_IMPL, K_NESTED, K_BLOCK, K_WAIT, NKINDS };
static const char *const kind_name[NKINDS] = {"ok",    "err",        "reserved", "poll",
                                              "spawn", "spawn-impl", "nested",   "blocking",
                                              "wait"};
enum { SLOTS_NONE, SLOTS_LIB, SLOTS_CALLER };

/* Job errors that stay the slot's status: WSCHED_EEXCEPTION is the one
 * code of the reserved range a job may return itself (wsched.hpp's catch). */
static const int err_codes[] = {-EIO, -ENOENT, -ECONNREFUSED, WSCHED_ERRBASE + 1,
                                WSCHED_ERRBASE - 65, -1, INT_MIN, WSCHED_EEXCEPTION};
/* Reserved codes that become WSCHED_EJOBCODE (EJOBCODE itself included, and
 * the neighbours of WSCHED_EEXCEPTION). */
static const int resv_codes[] = {WSCHED_ERRBASE,      WSCHED_ERRBASE - 1,  WSCHED_ERRBASE - 2,
                                 WSCHED_ERRBASE - 3,  WSCHED_ERRBASE - 4,  WSCHED_ERRBASE - 6,
                                 WSCHED_ERRBASE - 60, WSCHED_ERRBASE - 64};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The status a job's return value becomes (header: reserved range, except
 * WSCHED_EEXCEPTION and the policy codes WSCHED_EBREAKER, WSCHED_ELIMITED). */
static int status_of(int r)
{
    if (r == WSCHED_EEXCEPTION || r == WSCHED_EBREAKER || r == WSCHED_ELIMITED)
        return r;
    return r <= WSCHED_ERRBASE && r >= WSCHED_ERRBASE - 64 ? WSCHED_EJOBCODE : r;
}

/* A status that is a job's own result (not "never finished"). A job can
 * never produce ENOTRUN, ECANCELLED or EDEADLINE: those are reserved. */
static bool is_result(int s)
{
    return s != WSCHED_ENOTRUN && s != WSCHED_ECANCELLED && s != WSCHED_EDEADLINE;
}

struct hb;

/* Jobs that wait (WSCHED_BATCH_WAITS): a K_WAIT job runs up to MAXSTEPS
 * waits; each waker or fd arming has a record, which the harness's waker
 * thread may hold after the job is gone (see "Jobs that wait"). */
#define MAXSTEPS 3
enum { W_NONE, W_SLEEP, W_WAKER, W_FD, W_BATCH, W_DROPPED_WOKEN };
struct wrec {
    struct hb *h;
    /* The job's, before it posts the record (the mailbox's RELEASE). */
    uint8_t used, type, attempts, late, cancel, dropped;
    uint32_t delay;
    wsched_waker k;
    int pair;
    uint8_t byte;
    uint64_t vbase; /* wake k's value: vbase + k; the job's own: vbase + 7 */
    /* Wakes that returned 0 (the waker thread's and the job's). */
    _Atomic int zeros;
    _Atomic uint64_t won;
    /* The job's resumption (read once every job returned). */
    int res_kind;
    uint64_t res_value;
    /* The waker thread's. */
    uint64_t due;
    uint8_t done, cancel_done;
};

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
    bool have_outcome;       /* the outcome of the complete batch was read */
    wsched_outcome outcome;  /* ... and was this (final: never changes) */
    bool idle;
    bool have_final;
    int final_st[MAXJ];
    uint8_t obs_has[MAXJ];
    int obs_st[MAXJ];
    uint8_t streamed[MAXJ];
    size_t nstreamed;
    /* Jobs that wait: the script (allowed step kinds, misuse level, seed),
     * each job's progress, and its records. */
    uint8_t wmask, abuse;
    uint64_t wseed;
    _Atomic uint32_t inside[MAXJ];
    uint32_t calls[MAXJ];
    uint8_t nsteps[MAXJ], step[MAXJ], cur[MAXJ], never[MAXJ], finished[MAXJ], cleanup[MAXJ];
    uint8_t dropped[MAXJ], cleanup_armed[MAXJ], extra[MAXJ], timedout[MAXJ];
    uint64_t when[MAXJ];
    unsigned events[MAXJ];
    int cur_rec[MAXJ];
    wsched_batch *child[MAXJ];
    uint64_t child_deadline[MAXJ];
    struct wrec rec[MAXJ * MAXSTEPS];
    _Atomic int posted, retired, freeing, destroy_cleanups;
    /* The handle for the waker thread's cancels: 0 not yet, 1 set, 2 gone. */
    _Atomic int bh_state, bh_using;
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

/* Job i's status (wsched_batch_status: 0 and the status in *status). */
static int st_of(const struct hb *h, size_t i)
{
    int s = 0x5eed;
    int r = wsched_batch_status(h->b, i, &s);
    HCHECK(h, r == 0, "wsched_batch_status(b, %zu of %zu) returned %d", i, h->n, r);
    HCHECK(h, s != 0x5eed, "wsched_batch_status(b, %zu) returned 0 without a status", i);
    return s;
}

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
    _Atomic int dead;       /* ... and returned */
    int dmode;              /* destroy with batches not waited for (header b1 bits 5-7) */
    bool waits;             /* some batch may have WSCHED_BATCH_WAITS: the waker thread runs */
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
    return h->policy == WSCHED_POLICY_QUORUM || h->deadline != 0;
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

static void hb_waits_release(struct hb *h);

static void hb_free(struct hb *h)
{
    hb_waits_release(h);
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
    /* The call's status is the return value, the job's goes to *status,
     * which an error leaves untouched. */
    static const size_t bad_index[3] = {0, SIZE_MAX, SIZE_MAX / 2 + 1};
    for (int k = 0; k < 3; k++) {
        size_t i = k ? bad_index[k] : h->n;
        int st = 0x5a5a5a5a;
        int r = wsched_batch_status(h->b, i, &st);
        HCHECK(h, r == -EINVAL, "status(b, %zu) of %zu jobs returned %d", i, h->n, r);
        HCHECK(h, st == 0x5a5a5a5a, "status(b, %zu) failed but wrote *status = %d", i, st);
    }
    HCHECK(h, wsched_batch_status(h->b, 0, NULL) == -EINVAL, "status(b, 0, NULL) accepted");
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

static void stream_got(struct hb *h, size_t idx)
{
    HCHECK(h, idx < h->n, "next_done returned index %zu of %zu", idx, h->n);
    HCHECK(h, !h->streamed[idx], "next_done returned job %zu twice", idx);
    h->streamed[idx] = 1;
    h->nstreamed++;
    int s = st_of(h, idx);
    HCHECK(h, s != WSCHED_ENOTRUN, "next_done returned job %zu whose status is not final", idx);
    observe(h, idx, s);
    if (is_result(s))
        check_result(h, idx, s);
}

/*
 * wsched_batch_outcome with `size` bytes into a buffer of the caller's:
 * the size rules of the header's conventions. A size below this version's
 * struct (or NULL) is -EINVAL and writes nothing; a larger size gets the
 * library's struct followed by zeros, and nothing past `size` is written.
 * Returns the call's result; *o receives the library's struct on 0.
 */
static int outcome_sized(struct hb *h, wsched_outcome *o, size_t extra)
{
    union {
        wsched_outcome o;
        unsigned char raw[sizeof(wsched_outcome) + 64];
    } buf;
    if (extra > 48)
        extra = 48;
    size_t size = sizeof(wsched_outcome) + extra;
    memset(&buf, 0x5a, sizeof buf);
    int r = wsched_batch_outcome(h->b, &buf.o, size);
    if (r != 0)
        return r;
    for (size_t k = sizeof(wsched_outcome); k < size; k++)
        HCHECK(h, buf.raw[k] == 0, "outcome of size %zu: byte %zu past the library's struct "
               "is %#x, not 0", size, k, buf.raw[k]);
    for (size_t k = size; k < sizeof buf.raw; k++)
        HCHECK(h, buf.raw[k] == 0x5a, "outcome of size %zu wrote byte %zu", size, k);
    *o = buf.o;
    return 0;
}

static void check_outcome_bad_sizes(struct hb *h)
{
    static const size_t small[5] = {0, 1, sizeof(int), offsetof(wsched_outcome, unfinished),
                                    sizeof(wsched_outcome) - 1};
    wsched_outcome o;
    for (int k = 0; k < 5; k++) {
        memset(&o, 0x5a, sizeof o);
        int r = wsched_batch_outcome(h->b, &o, small[k]);
        HCHECK(h, r == -EINVAL, "outcome with size %zu (< %zu) returned %d", small[k],
               sizeof o, r);
        const unsigned char *raw = (const unsigned char *)&o;
        for (size_t i = 0; i < sizeof o; i++)
            HCHECK(h, raw[i] == 0x5a, "outcome with size %zu failed but wrote byte %zu",
                   small[k], i);
    }
    HCHECK(h, wsched_batch_outcome(h->b, NULL, sizeof o) == -EINVAL, "outcome(b, NULL)");
    HCHECK(h, wsched_batch_outcome(NULL, &o, sizeof o) == -EINVAL, "outcome(NULL, o)");
}

static bool outcome_equal(const wsched_outcome *a, const wsched_outcome *b)
{
    return a->end == b->end && a->first_error == b->first_error &&
           a->first_error_index == b->first_error_index && a->ok == b->ok &&
           a->failed == b->failed && a->cancelled == b->cancelled &&
           a->timed_out == b->timed_out && a->unfinished == b->unfinished;
}

/* The outcome of a complete batch never changes (header: "Final once
 * wsched_wait returned 0"); in particular a wsched_cancel that comes after
 * completion does not make a batch that ended COMPLETED end CANCELLED (the
 * first reason wins). */
static void check_outcome_stable(struct hb *h, const wsched_outcome *o)
{
    if (!h->have_outcome)
        return;
#ifdef FUZZ_RELAX_CANCEL_AFTER_COMPLETE
    /* Tolerate the finding of tests/fuzz/crashes/README.md
     * (cancel_after_complete) to fuzz for others. */
    if (h->outcome.end == WSCHED_END_COMPLETED && o->end == WSCHED_END_CANCELLED &&
        atomic_load(&h->cancel_requested)) {
        wsched_outcome a = *o;
        a.end = WSCHED_END_COMPLETED;
        if (outcome_equal(&a, &h->outcome))
            return;
    }
#endif
    HCHECK(h, outcome_equal(o, &h->outcome),
           "the outcome of a complete batch changed: end %u -> %u, first error %d -> %d at "
           "%zu -> %zu, ok %zu -> %zu, failed %zu -> %zu, cancelled %zu -> %zu, timed out "
           "%zu -> %zu",
           h->outcome.end, o->end, h->outcome.first_error, o->first_error,
           h->outcome.first_error_index, o->first_error_index, h->outcome.ok, o->ok,
           h->outcome.failed, o->failed, h->outcome.cancelled, o->cancelled,
           h->outcome.timed_out, o->timed_out);
}

/*
 * wsched_batch_outcome once the batch is complete (wsched_wait returned 0):
 * the end and its reason, the counts, the first error. wsched_wait's
 * return value no longer says how the batch ended (API 1.0: it was the
 * first error for FAILED and QUORUM_IMPOSSIBLE, -ETIMEDOUT for DEADLINE);
 * what it encoded is checked here on the outcome instead, with the
 * expectations that followed from the policy.
 */
static void check_outcome(struct hb *h)
{
    wsched_outcome o, o2;
    memset(&o, 0x5a, sizeof o);
    int e = wsched_batch_outcome(h->b, &o, sizeof o);
    HCHECK(h, e == 0, "wsched_batch_outcome returned %d", e);
    e = outcome_sized(h, &o2, 1 + h->n % 48);
    HCHECK(h, e == 0, "wsched_batch_outcome with a larger struct returned %d", e);
    HCHECK(h, outcome_equal(&o, &o2),
           "the outcome of a complete batch differs between two calls (sizes %zu, %zu+%zu): "
           "end %u/%u first error %d/%d",
           sizeof o, sizeof o, 1 + h->n % 48, o.end, o2.end, o.first_error, o2.first_error);
    check_outcome_bad_sizes(h);
    size_t ok = 0, failed = 0, cancelled = 0, timed_out = 0, lowest = SIZE_MAX;
    for (size_t i = 0; i < h->n; i++) {
        int st = st_of(h, i);
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
    /* Jobs whose pending waits the pool's destroy cancelled: ECANCELLED,
     * and no policy decides the batch (a quorum may become impossible by
     * them unnoticed): it ends COMPLETED. */
    bool swept = atomic_load(&h->destroy_cleanups) > 0;
    switch (o.end) {
    case WSCHED_END_COMPLETED:
        HCHECK(h, h->policy != WSCHED_POLICY_QUORUM || swept, "a quorum batch ended COMPLETED");
        HCHECK(h, (cancelled == 0 || swept) && timed_out == 0,
               "ended COMPLETED (no policy fired) with %zu cancelled, %zu timed out", cancelled,
               timed_out);
        HCHECK(h, h->policy != WSCHED_POLICY_FAIL_FAST || failed == 0,
               "fail-fast batch with %zu failures ended COMPLETED", failed);
        break;
    case WSCHED_END_FAILED:
        /* (was: wsched_wait returned the first error) */
        HCHECK(h, h->policy == WSCHED_POLICY_FAIL_FAST && failed > 0,
               "ended FAILED (policy %u, %zu failures)", h->policy, failed);
        HCHECK(h, o.first_error < 0 && is_result(o.first_error),
               "ended FAILED with first error %d", o.first_error);
        break;
    case WSCHED_END_QUORUM_REACHED:
    case WSCHED_END_QUORUM_IMPOSSIBLE: {
        bool reached = o.end == WSCHED_END_QUORUM_REACHED;
        HCHECK(h, h->policy == WSCHED_POLICY_QUORUM, "ended QUORUM_* without quorum policy");
        HCHECK(h, reached == (ok >= h->quorum), "ended QUORUM_%s with %zu of %zu successes",
               reached ? "REACHED" : "IMPOSSIBLE", ok, h->quorum);
        /* (was: wsched_wait returned 0 for REACHED, the first error for
         * IMPOSSIBLE) */
        if (!reached)
            HCHECK(h, failed > 0 && o.first_error < 0 && is_result(o.first_error),
                   "ended QUORUM_IMPOSSIBLE with %zu failures, first error %d", failed,
                   o.first_error);
        break;
    }
    case WSCHED_END_DEADLINE: {
        /* (was: wsched_wait returned -ETIMEDOUT) */
        uint64_t now = now_ns();
        HCHECK(h, h->deadline != 0, "ended DEADLINE without deadline");
        HCHECK(h, now >= h->deadline, "ended DEADLINE %llu ns before the deadline",
               (unsigned long long)(h->deadline - now));
        break;
    }
    case WSCHED_END_CANCELLED:
        HCHECK(h, user, "ended CANCELLED, nobody called wsched_cancel");
        break;
    default:
        HCHECK(h, 0, "outcome end %u for a complete batch", o.end);
    }
    /* Without a user cancel, and unless the deadline ended it, the policy
     * alone says how the batch ended (the first reason wins: a policy that
     * fired before the deadline). */
    if (!user && o.end != WSCHED_END_DEADLINE && !swept) {
        unsigned want = h->policy == WSCHED_POLICY_BEST_EFFORT ? WSCHED_END_COMPLETED
                        : h->policy == WSCHED_POLICY_FAIL_FAST
                            ? (failed ? WSCHED_END_FAILED : WSCHED_END_COMPLETED)
                            : (ok >= h->quorum ? WSCHED_END_QUORUM_REACHED
                                               : WSCHED_END_QUORUM_IMPOSSIBLE);
        HCHECK(h, o.end == want, "outcome end %u, expected %u (%zu ok, %zu failed)", o.end,
               want, ok, failed);
    }
    if (failed == 0) {
        HCHECK(h, o.first_error == 0 && o.first_error_index == SIZE_MAX,
               "no job failed, outcome names %d at %zu", o.first_error, o.first_error_index);
    } else {
        HCHECK(h, o.first_error_index < h->n &&
                      st_of(h, o.first_error_index) == o.first_error &&
                      o.first_error < 0 && is_result(o.first_error),
               "outcome first error %d at %zu", o.first_error, o.first_error_index);
        if (h->policy == WSCHED_POLICY_BEST_EFFORT)
            HCHECK(h, o.first_error_index == lowest,
                   "best effort: first error at %zu, lowest failed index %zu",
                   o.first_error_index, lowest);
    }
    /* Final once wsched_wait returned 0. */
    check_outcome_stable(h, &o);
    h->have_outcome = true;
    h->outcome = o;
}

/* A snapshot of a batch that may still run: consistent counts. */
static void check_outcome_snapshot(struct hb *h)
{
    wsched_outcome o;
    check_outcome_bad_sizes(h);
    int r = outcome_sized(h, &o, h->n & 1 ? 0 : 1 + h->n % 48);
    HCHECK(h, r == 0, "outcome returned %d", r);
    HCHECK(h, o.ok + o.failed + o.cancelled + o.timed_out + o.unfinished == h->n,
           "outcome counts do not sum to njobs");
    HCHECK(h, o.end <= WSCHED_END_CANCELLED, "outcome end %u", o.end);
    if (o.end != WSCHED_END_RUNNING)
        HCHECK(h, o.unfinished == 0, "outcome end %u with %zu jobs unfinished", o.end,
               o.unfinished);
    check_outcome_stable(h, &o);
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
        int s = st_of(h, i);
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
            else /* (a cleanup call checked its reason, the pool's destroy included) */
                HCHECK(h,
                       cancelled || h->policy == WSCHED_POLICY_QUORUM ||
                           (h->policy == WSCHED_POLICY_FAIL_FAST && atomic_load(&h->failed_seen)) ||
                           h->cleanup[i],
                       "job %zu: ECANCELLED but nothing cancelled the batch", i);
            if (ran) {
                /* A job that ran keeps its result unless an early
                 * completion (quorum decided, deadline) discarded it, or
                 * (jobs that wait) a cancellation reached it pending. */
                HCHECK(h, arbitrated(h) || h->cleanup[i],
                       "job %zu ran (returned %d) but its status is %d in a batch without "
                       "quorum or deadline",
                       i, h->ret[i], s);
                if (s == WSCHED_ECANCELLED)
                    HCHECK(h, h->policy == WSCHED_POLICY_QUORUM || h->cleanup[i],
                           "job %zu ran but its result was discarded as ECANCELLED outside "
                           "a quorum batch",
                           i);
            } else {
                notrun++;
                check_slot_untouched(h, i);
            }
        } else {
            check_result(h, i, s);
            HCHECK(h, h->kind[i] != K_WAIT || (h->finished[i] && !h->cleanup[i]),
                   "job %zu has its result %d, finished %d, cleanup call %d", i, s,
                   h->finished[i], h->cleanup[i]);
            if (s == 0)
                ok++;
            else {
                notok++;
                any_error = true;
            }
        }
        if (h->kind[i] == K_WAIT && ran) /* one end: its final return or its cleanup call */
            HCHECK(h, h->finished[i] + h->cleanup[i] == 1 && atomic_load(&h->inside[i]) == 0 &&
                          h->child[i] == NULL,
                   "job %zu (%u calls): finished %d, cleanup call %d, inside %u, child %p", i,
                   h->calls[i], h->finished[i], h->cleanup[i], atomic_load(&h->inside[i]),
                   (void *)h->child[i]);
        uint32_t ch = atomic_load(&h->children[i]);
        if (ran && h->kind[i] == K_SPAWN_IMPL)
            HCHECK(h, ch == h->exp_children[i],
                   "job %zu returned without sync: %u of %u children ran before completion", i,
                   ch, h->exp_children[i]);
        else
            HCHECK(h, ch == 0, "job %zu: %u stray children", i, ch);
    }
    if (!cancelled && !h->deadline &&
        (h->policy == WSCHED_POLICY_BEST_EFFORT ||
         (h->policy == WSCHED_POLICY_FAIL_FAST && !atomic_load(&h->failed_seen))))
        HCHECK(h, notrun == 0, "%zu jobs never ran in a batch nothing cancelled", notrun);

    /* Once every job returned the batch is complete, whatever its outcome
     * and deadline: wsched_wait answers 0 (its own status; API 1.0). */
#ifdef FUZZ_RELAX_IDLE_DONE
    /* Tolerate the window in which wait_idle already answers 0 and wait
     * does not yet (tests/fuzz/crashes/README.md). */
    int r = wsched_wait(b, -1);
#else
    int r = wsched_wait(b, 0);
    HCHECK(h, r != -ETIMEDOUT,
           "wsched_wait_idle returned 0 (every job returned), then wsched_wait(b, 0) returned "
           "-ETIMEDOUT (header: wait_idle is \"equal to wsched_wait for a batch that "
           "completes normally\"; a complete batch answers 0 whatever its outcome)");
#endif
    HCHECK(h, r == 0, "wsched_wait on a complete batch returned %d (%s)", r, wsched_strerror(r));
    HCHECK(h, wsched_wait(b, -1) == 0, "wait(-1) on a complete batch did not return 0");
    HCHECK(h, wsched_wait(b, 1000) == 0, "wait(1 us) on a complete batch did not return 0");
    check_outcome(h);
    /* What wsched_wait's return used to encode (the first error of a
     * fail-fast or impossible-quorum batch), now on the outcome. */
    wsched_outcome o = h->outcome;
    HCHECK(h, h->n - o.ok == notok, "njobs - outcome.ok = %zu, counted %zu not ok",
           h->n - o.ok, notok);
    /* (The pool's destroy cancels pending waits without ending the batch
     * CANCELLED: the policy alone does not say how such a batch ends.) */
    if (!cancelled && o.end != WSCHED_END_DEADLINE && !atomic_load(&h->destroy_cleanups)) {
        if (h->policy == WSCHED_POLICY_BEST_EFFORT)
            HCHECK(h, o.end == WSCHED_END_COMPLETED, "best-effort batch ended %u", o.end);
        else if (h->policy == WSCHED_POLICY_FAIL_FAST)
            HCHECK(h,
                   any_error ? o.end == WSCHED_END_FAILED && o.first_error < 0
                             : o.end == WSCHED_END_COMPLETED && o.first_error == 0,
                   "fail-fast batch (failures: %d) ended %u, first error %d", any_error, o.end,
                   o.first_error);
        else
            HCHECK(h,
                   ok >= h->quorum ? o.end == WSCHED_END_QUORUM_REACHED
                                   : o.end == WSCHED_END_QUORUM_IMPOSSIBLE && o.first_error < 0,
                   "quorum %zu with %zu successes ended %u, first error %d", h->quorum, ok,
                   o.end, o.first_error);
    }
    if (!cancelled && h->policy == WSCHED_POLICY_BEST_EFFORT && o.end == WSCHED_END_COMPLETED)
        HCHECK(h, notrun == 0,
               "best-effort batch completed normally with %zu jobs not run", notrun);
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

/* What must hold after wsched_wait(b, tmo) returned r (t0: before the call,
 * t1: after it). API 1.0: the call's own status only, 0 once the batch is
 * complete whatever its outcome (a failure, the quorum decided, the batch
 * deadline passed, cancelled), -ETIMEDOUT only when the caller's timeout
 * ran out first. */
static void check_after_wait(struct hb *h, int r, uint64_t t0, uint64_t t1, int64_t tmo)
{
    HCHECK(h, r == 0 || r == -ETIMEDOUT, "wsched_wait(%lld) returned %d (%s)", (long long)tmo,
           r, wsched_strerror(r));
    if (r == -ETIMEDOUT) {
        HCHECK(h, tmo >= 0, "wait(-1) returned -ETIMEDOUT (a batch deadline completes the "
               "batch: 0)");
        HCHECK(h, t1 - t0 >= (uint64_t)tmo,
               "wait(%lld) returned -ETIMEDOUT after %llu ns", (long long)tmo,
               (unsigned long long)(t1 - t0));
        /* The batch deadline had passed when the call began: the call
         * completes the batch (WSCHED_EDEADLINE) and answers 0. */
        HCHECK(h, !h->deadline || t0 < h->deadline,
               "wait(%lld) returned -ETIMEDOUT %llu ns after the batch deadline (the deadline "
               "completes the batch: 0)",
               (long long)tmo, (unsigned long long)(t0 - h->deadline));
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        int s = st_of(h, i);
        HCHECK(h, s != WSCHED_ENOTRUN, "wait returned 0 but job %zu is not final", i);
        observe(h, i, s);
        if (is_result(s))
            check_result(h, i, s);
    }
    check_outcome(h);
    HCHECK(h, h->outcome.end != WSCHED_END_RUNNING, "wait returned 0, outcome RUNNING");
    HCHECK(h, wsched_wait(h->b, 0) == 0, "wait(0) after wait returned 0");
    if (!arbitrated(h)) {
        /* Header: without quorum or deadline, wait returning 0 is the
         * moment every job has returned. */
        HCHECK(h, wsched_wait_idle(h->b, 0) == 0,
               "wait returned 0 but jobs of a batch without quorum/deadline still run");
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
           atomic_load(&h->cancel_requested) || h->policy == WSCHED_POLICY_QUORUM ||
               (h->policy == WSCHED_POLICY_FAIL_FAST && atomic_load(&h->failed_seen)) ||
               (h->deadline && now_ns() >= h->deadline),
           "wsched_cancelled() is true but nothing cancelled the batch");
}

static void check_worker(wsched_ctx *ctx)
{
    int w = wsched_current_worker();
    CHECK(w >= 0 && w < R.nworkers, "wsched_current_worker() %d in a job (workers %d)", w,
          R.nworkers);
    int cw = wsched_ctx_worker(ctx);
    CHECK(cw == w, "ctx worker %d, current worker %d", cw, w);
}

/* wsched_cancelled on a running job's ctx: 0 or 1 (-EINVAL is for NULL). */
static bool cancelled_of(wsched_ctx *ctx)
{
    int c = wsched_cancelled(ctx);
    CHECK(c == 0 || c == 1, "wsched_cancelled(ctx) returned %d in a job", c);
    return c == 1;
}

/* The waits are for jobs of WSCHED_BATCH_WAITS batches: anything else
 * (a spawned task, a job of another batch) gets -EINVAL and arms nothing. */
static void check_no_waits(wsched_ctx *ctx, const char *who)
{
    wsched_waker k = {(wsched_pool *)(uintptr_t)0x1, 77};
    int r = wsched_sleep_until(ctx, now_ns());
    CHECK(r == -EINVAL, "wsched_sleep_until in %s returned %d", who, r);
    r = wsched_waker_arm(ctx, 0, &k);
    CHECK(r == -EINVAL && k.pool == NULL && k.id == 0,
          "wsched_waker_arm in %s returned %d (handle %p/%llu)", who, r, (void *)k.pool,
          (unsigned long long)k.id);
    r = wsched_wait_fd(ctx, 0, WSCHED_FD_READ, 0);
    CHECK(r == -EINVAL, "wsched_wait_fd in %s returned %d", who, r);
    r = wsched_wait_batch(ctx, NULL);
    CHECK(r == -EINVAL, "wsched_wait_batch(NULL) in %s returned %d", who, r);
    CHECK(wsched_resume_kind(ctx) == 0 && wsched_resume_value(ctx) == 0,
          "resume kind %d value %llu in %s", wsched_resume_kind(ctx),
          (unsigned long long)wsched_resume_value(ctx), who);
}

static void child_fn(wsched_ctx *ctx, void *arg)
{
    struct spn *s = arg;
    CHECK(s && s->h->magic == HB_MAGIC, "spawned task got a bad arg");
    atomic_fetch_add(s->counter, 1);
    check_worker(ctx);
    if (s->level == 2)
        check_no_waits(ctx, "a spawned task");
    if (cancelled_of(ctx))
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
static int wait_first(wsched_ctx *ctx, struct hb *h, size_t i, void *slot);
static int wait_again(wsched_ctx *ctx, struct hb *h, size_t i, void *slot, int kind);

/* A job's final return as the model expects it: its slot's pattern, its
 * return value, the batch's failure flag. */
static void record_result(struct hb *h, size_t i, void *slot, int r)
{
    if (slot)
        for (size_t k = 0; k < h->slot_size; k++)
            ((unsigned char *)slot)[k] = pattern(i, k);
    h->ret[i] = r;
    if (r != 0)
        atomic_store(&h->failed_seen, 1);
}

/* A job call ends: the running counts it entered. */
static void leave_running(struct hb *h)
{
    if (h->depth == 0 && R.max_jobs)
        atomic_fetch_sub(&R.running_top, 1);
    atomic_fetch_sub(&h->running, 1);
}

static int job_fn(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct hb *h = arg;
    CHECK(h && h->magic == HB_MAGIC, "job got arg %p, not its batch's", arg);
    HCHECK(h, i < h->n, "job index %zu out of range", i);
    int rk = wsched_resume_kind(ctx);
    if (h->flags & WSCHED_BATCH_WAITS) {
        /* A resumption: its wait completed (only K_WAIT jobs arm any). */
        if (rk != WSCHED_RESUME_FIRST)
            return wait_again(ctx, h, i, slot, rk);
        HCHECK(h, wsched_resume_value(ctx) == 0, "job %zu: first call with value %llu", i,
               (unsigned long long)wsched_resume_value(ctx));
    } else {
        HCHECK(h, rk == 0 && wsched_resume_value(ctx) == 0,
               "job %zu of a batch without waits: resume kind %d value %llu", i, rk,
               (unsigned long long)wsched_resume_value(ctx));
    }
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
    if (cancelled_of(ctx))
        check_cancel_legit(h);
    if (h->kind[i] == K_WAIT)
        return wait_first(ctx, h, i, slot); /* (ends its counts at its final return) */

    uint8_t kp = h->kparam[i];
    int r = 0;
    switch (h->kind[i]) {
    case K_OK:
        if (!(h->flags & WSCHED_BATCH_WAITS) && (kp & 0x40))
            check_no_waits(ctx, "a job of a batch without WSCHED_BATCH_WAITS");
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
            if (cancelled_of(ctx)) {
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
    record_result(h, i, slot, r);
    leave_running(h);
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
    int wr = wsched_wait(h->b, tmo);
    check_after_wait(h, wr, t0, now_ns(), tmo);
    HCHECK(h, wsched_wait_idle(h->b, -1) == 0, "wait_idle(-1) in a job");
    verify_final(h);
    (void)ctx;
    wsched_batch_free(h->b);
    hb_free(h);
}

/* ------------------------------------------------------ jobs that wait */

/*
 * WSCHED_BATCH_WAITS batches (submit p[5] bit 3). A job of kind K_WAIT
 * runs a script of 1-3 waits, each of a kind p[5] bits 4-7 allow:
 *   sleep   wsched_sleep_until: up to 200 us on, or a time already past;
 *   waker   wsched_waker_arm, deadline none / past / up to 1 ms on; woken
 *           by the waker thread after 0-100 us (once or twice), by the job
 *           itself before it returns, late (once its batch is being freed)
 *           or never;
 *   fd      wsched_wait_fd on one end of a socketpair (taken exclusively
 *           from the input's set), for READ, WRITE (ready at once) or both;
 *           the waker thread writes a byte to the other end, late, or never;
 *   batch   a nested batch of 1-4 jobs that wait once (wsched_wait_batch).
 * A waker or fd wait that nothing else would end (no deadline of its own
 * or of its batch, nothing delivered) gets a deadline <= 1 ms, or (1 in 4)
 * the waker thread cancels its batch after 0-100 us. p[6] bits 5-7 make that many steps in 8 misuse the
 * API instead: a second arm in the same call (-EBUSY), an arm followed by
 * a plain return (the wait is dropped; a waker woken first makes the job
 * pending after all: it is called again), WSCHED_PENDING without an arm
 * (WSCHED_EJOBCODE), bad arguments and forged waker handles, an arm in the
 * cleanup call (dropped). Checked per call: one call of a job at a time;
 * the kind fits the wait armed (TIMER for a sleep, not before its time;
 * WOKEN / TIMEDOUT / CANCELLED for a waker, FD / TIMEDOUT / CANCELLED for
 * an fd, BATCH / CANCELLED for a batch, the child then idle; TIMEDOUT only
 * with a deadline, not before it; CANCELLED only for a cancelled batch, a
 * passed deadline or the pool's destroy); the value (the waker's wakes, the
 * fd's bits asked for, 0 otherwise); nothing after the final call. Checked
 * once every job returned: at most one wake per arming returned 0, a WOKEN
 * resumption has its value, a TIMEDOUT one had none; wakes after the batch
 * is complete and being freed return -EALREADY, after the destroy -EBADF.
 */
enum { S_SLEEP, S_WAKER, S_FD, S_BATCH };
enum { STEP_NONE, STEP_ARMED, STEP_RETURN };
#define NPAIRS 8
#define WQ_SLOTS 512
#define WK_CAP 4096 /* > every record that can be out at once */

static int PAIR[NPAIRS][2];
static _Atomic int PAIR_REFS[NPAIRS]; /* 0 free, else its holders (job, waker thread) */
static _Atomic(struct wrec *) WQ[WQ_SLOTS];
static _Atomic int WK_STOP;
static _Atomic uint64_t WSERIAL = 1;
static wsched_pool *DEAD_POOL; /* destroyed in LLVMFuzzerInitialize: its handle answers -EBADF */
static int DEVNULL = -1;       /* epoll refuses it: -EPERM */

static int pair_get(uint64_t x)
{
    for (int k = 0; k < NPAIRS; k++) {
        int j = (int)((x + (uint64_t)k) % NPAIRS), z = 0;
        if (atomic_compare_exchange_strong(&PAIR_REFS[j], &z, 1))
            return j;
    }
    return -1;
}

/* A holder lets go; the last drains what was written and frees the pair. */
static void pair_put(int j)
{
    int v = atomic_load(&PAIR_REFS[j]);
    for (;;) {
        CHECK(v >= 1, "socketpair %d released with %d holders", j, v);
        if (v == 1) {
            char buf[16];
            while (read(PAIR[j][0], buf, sizeof buf) > 0)
                ;
            atomic_store_explicit(&PAIR_REFS[j], 0, memory_order_release);
            return;
        }
        if (atomic_compare_exchange_weak(&PAIR_REFS[j], &v, v - 1))
            return;
    }
}

static void wq_put(struct wrec *w, uint64_t x)
{
    for (;;) {
        for (unsigned k = 0; k < WQ_SLOTS; k++) {
            unsigned j = (unsigned)((x + k) % WQ_SLOTS);
            struct wrec *none = NULL;
            if (!atomic_load_explicit(&WQ[j], memory_order_relaxed) &&
                atomic_compare_exchange_strong_explicit(&WQ[j], &none, w, memory_order_release,
                                                        memory_order_relaxed))
                return;
        }
        sched_yield(); /* full: the waker thread empties it whatever happens */
    }
}

/* Hand a record to the waker thread (counted: the batch's records stay
 * until the thread retired each). */
static void wq_post(struct hb *h, struct wrec *w, uint64_t x)
{
    atomic_fetch_add(&h->posted, 1);
    wq_put(w, x);
}

/* The pool's destroy has begun: read after a call that answered
 * -ESHUTDOWN (which implies it), not before. */
static bool destroying(void) { return atomic_load(&R.destroying); }

/* Why a wait's cleanup call (or wsched_cancelled()) may come. */
static bool cancel_explained(struct hb *h)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load(&h->cancel_requested) || h->policy == WSCHED_POLICY_QUORUM ||
           (h->policy == WSCHED_POLICY_FAIL_FAST && atomic_load(&h->failed_seen)) ||
           (h->deadline && now_ns() >= h->deadline) || atomic_load(&R.destroying);
}

/* An arm failed: only the pool's destroy or an injected allocation
 * failure explain it. */
static void arm_failed(struct hb *h, size_t i, const char *what, int r)
{
    HCHECK(h, (r == -ESHUTDOWN && atomic_load(&R.destroying)) || (r == -ENOMEM && R.inject),
           "job %zu: %s returned %d (%s)", i, what, r, wsched_strerror(r));
}

/* The job's final return: its result and slot, its counts. */
static int wait_end(struct hb *h, size_t i, void *slot, int r, bool cleanup)
{
    if (!cleanup) {
        record_result(h, i, slot, r);
        h->finished[i] = 1;
    }
    leave_running(h);
    return r;
}

/* A waker's or fd's deadline: none, one past, or up to 1 ms on. */
static uint64_t wait_deadline(uint64_t x, uint64_t now)
{
    switch (x % 4) {
    case 1:
        return (x >> 2) & 1 ? 1 : now - 1000;
    case 2:
        return now + 1000 + (x >> 3) % 1000000;
    default:
        return 0;
    }
}

static int arm_sleep(wsched_ctx *ctx, struct hb *h, size_t i, uint64_t x, uint64_t now)
{
    uint64_t when = x % 4 == 0 ? ((x >> 2) & 1 ? 1 : now - 1000) : now + (x >> 3) % 200001;
    int r = wsched_sleep_until(ctx, when);
    if (r) {
        arm_failed(h, i, "wsched_sleep_until", r);
        return r;
    }
    h->cur[i] = W_SLEEP;
    h->when[i] = when;
    h->never[i] = 0;
    return 0;
}

/* Wake a waker the job armed, itself: returns the wake's result. A
 * cancellation (the batch's, or the destroy's sweep) may have claimed the
 * armed wait first, even before the job returns. */
static int self_wake(struct hb *h, size_t i, struct wrec *w)
{
    int r = wsched_wake(w->k, w->vbase + 7);
    HCHECK(h, r == 0 || ((r == -EALREADY || (r == -ESHUTDOWN && destroying())) &&
                         cancel_explained(h)),
           "job %zu: waking its own waker returned %d (%s)", i, r, wsched_strerror(r));
    if (r == 0) {
        atomic_fetch_add(&w->zeros, 1);
        atomic_store(&w->won, w->vbase + 7);
    }
    int r2 = wsched_wake(w->k, w->vbase + 8);
    HCHECK(h, r2 == -EALREADY || (r2 == -ESHUTDOWN && destroying()),
           "job %zu: a second wake of its own waker returned %d", i, r2);
    return r;
}

/* deliver: 0 as the step says (the waker thread, the job itself, late or
 * nobody), 1 nobody (the caller drops it, or wakes it itself). */
static int arm_waker(wsched_ctx *ctx, struct hb *h, size_t i, struct wrec *w, uint64_t x,
                     uint64_t now, int deliver)
{
    uint64_t dl = deliver == 1 ? 0 : wait_deadline(x >> 4, now);
    unsigned d = (unsigned)((x >> 12) % 8); /* 0-3 the thread, 4-5 the job, 6 never, 7 late */
    if (deliver == 1)
        d = 6;
    bool self = d == 4 || d == 5;
    memset(w, 0, sizeof *w);
    w->h = h;
    w->type = W_WAKER;
    w->attempts = d <= 3 ? 1 + (d & 1) : d == 5 ? 1 : d == 7 ? 1 + ((x >> 15) & 1) : 0;
    w->late = d == 7;
    w->delay = (x >> 16) % 4 == 0 ? 0 : (uint32_t)((x >> 18) % 100001);
    w->vbase = atomic_fetch_add(&WSERIAL, 1) << 4;
    w->pair = -1;
    bool ends = dl || h->deadline || self || (w->attempts && !w->late);
    if (deliver == 0 && !ends) { /* nothing else would end it */
        if ((x >> 50) % 4)
            dl = now + 1000 + (x >> 52) % 1000000; /* unwoken, with a deadline <= 1 ms */
        else
            w->cancel = 1; /* or the waker thread cancels the batch */
    }
    int r = wsched_waker_arm(ctx, dl, &w->k);
    if (r) {
        HCHECK(h, w->k.pool == NULL, "job %zu: failed waker_arm left a handle", i);
        arm_failed(h, i, "wsched_waker_arm", r);
        return r;
    }
    HCHECK(h, w->k.pool != NULL, "job %zu: wsched_waker_arm returned 0 without a handle", i);
    w->used = 1;
    h->cur[i] = W_WAKER;
    h->when[i] = dl;
    h->cur_rec[i] = (int)(w - h->rec);
    h->never[i] = !dl && !self && (!w->attempts || w->late);
    if (deliver == 1) {
        w->dropped = 1; /* (the caller drops it) */
        return 0;
    }
    if (self)
        self_wake(h, i, w);
    if (w->attempts || w->cancel)
        wq_post(h, w, x >> 20);
    return 0;
}

/* deliver: 0 as the step says, 1 nothing (the caller drops it). */
static int arm_fd(wsched_ctx *ctx, struct hb *h, size_t i, struct wrec *w, uint64_t x,
                  uint64_t now, int deliver)
{
    int p = pair_get(x >> 40);
    if (p < 0) /* every pair in use: a sleep instead */
        return arm_sleep(ctx, h, i, x, now);
    unsigned ev = (x >> 2) % 8 == 0   ? WSCHED_FD_WRITE
                  : (x >> 2) % 8 == 1 ? WSCHED_FD_READ | WSCHED_FD_WRITE
                                      : WSCHED_FD_READ;
    uint64_t dl = deliver ? 0 : wait_deadline(x >> 5, now);
    unsigned d = deliver ? 5 : (unsigned)((x >> 12) % 8); /* 0-4 written, 5 never, 6-7 late */
    memset(w, 0, sizeof *w);
    w->h = h;
    w->type = W_FD;
    w->attempts = d != 5;
    w->late = d >= 6;
    w->delay = (x >> 16) % 4 == 0 ? 0 : (uint32_t)((x >> 18) % 100001);
    w->pair = p;
    w->byte = (uint8_t)(x >> 56);
    bool ends = dl || h->deadline || (ev & WSCHED_FD_WRITE) || (w->attempts && !w->late);
    if (!deliver && !ends) { /* as for a waker: a deadline <= 1 ms, or a cancel */
        if ((x >> 50) % 4)
            dl = now + 1000 + (x >> 52) % 1000000;
        else
            w->cancel = 1;
    }
    int r = wsched_wait_fd(ctx, PAIR[p][0], ev, dl);
    if (r) {
        pair_put(p);
        arm_failed(h, i, "wsched_wait_fd", r);
        return r;
    }
    w->used = 1;
    h->cur[i] = W_FD;
    h->events[i] = ev;
    h->when[i] = dl;
    h->cur_rec[i] = (int)(w - h->rec);
    h->never[i] = !dl && !(ev & WSCHED_FD_WRITE) && (!w->attempts || w->late);
    if (deliver) {
        w->dropped = 1;
        return 0;
    }
    if (w->attempts)
        atomic_fetch_add(&PAIR_REFS[p], 1); /* the writer's, while ours is held */
    if (w->attempts || w->cancel)
        wq_post(h, w, x >> 20);
    return 0;
}

/* A nested batch's job: waits once (a sleep of up to 50 us, or a waker it
 * wakes itself), then returns 0. Its slot is its state. */
static int leaf_fn(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    uint64_t *state = slot;
    int k = wsched_resume_kind(ctx);
    if (k == WSCHED_RESUME_FIRST) {
        CHECK(*state == 0, "nested waiting job called first twice");
        uint64_t x = mix64((uintptr_t)slot ^ now_ns());
        int r;
        if (x & 1) {
            r = wsched_sleep_until(ctx, now_ns() + (x >> 8) % 50000);
        } else {
            wsched_waker w;
            r = wsched_waker_arm(ctx, 0, &w);
            if (r == 0) {
                int e = wsched_wake(w, 5); /* (-EALREADY: its deadline's cancel came first) */
                CHECK(e == 0 || e == -EALREADY || (e == -ESHUTDOWN && atomic_load(&R.destroying)),
                      "nested job: wake of its own waker returned %d", e);
            }
        }
        if (r) {
            CHECK((r == -ESHUTDOWN && atomic_load(&R.destroying)) || (r == -ENOMEM && R.inject),
                  "nested waiting job: arm returned %d (%s)", r, wsched_strerror(r));
            *state = 3;
            return 0;
        }
        *state = 1;
        return WSCHED_PENDING;
    }
    CHECK(*state == 1, "nested waiting job called again in state %llu (kind %d)",
          (unsigned long long)*state, k);
    CHECK(k == WSCHED_RESUME_TIMER || k == WSCHED_RESUME_WOKEN || k == WSCHED_RESUME_CANCELLED,
          "nested waiting job resumed with kind %d", k);
    *state = 2;
    return 0;
}

static int arm_batch(wsched_ctx *ctx, struct hb *h, size_t i, uint64_t x, uint64_t now,
                     bool twice)
{
    wsched_batch_desc d;
    memset(&d, 0, sizeof d);
    d.fn = leaf_fn;
    d.njobs = 1 + x % 4;
    d.flags = WSCHED_BATCH_WAITS;
    d.slot_size = sizeof(uint64_t);
    d.max_parallel = (x >> 2) % 3;
    d.deadline_ns = (x >> 4) % 4 == 0 ? now + 30000 : 0;
    wsched_batch *c = NULL;
    atomic_fetch_add(&R.accepted_jobs, d.njobs);
    int r = wsched_submit(R.pool, &d, &c);
    if (r) {
        atomic_fetch_sub(&R.accepted_jobs, d.njobs);
        HCHECK(h, r == -ENOMEM && R.inject, "job %zu: nested waiting batch: submit returned %d",
               i, r);
        return r;
    }
    r = wsched_wait_batch(ctx, c);
    HCHECK(h, r == 0, "job %zu: wsched_wait_batch returned %d (%s)", i, r, wsched_strerror(r));
    if (twice) { /* armed already: -EBUSY, nothing changed */
        r = wsched_wait_batch(ctx, c);
        HCHECK(h, r == -EBUSY, "job %zu: a second wsched_wait_batch returned %d", i, r);
    }
    h->child[i] = c;
    h->child_deadline[i] = d.deadline_ns;
    h->cur[i] = W_BATCH;
    h->when[i] = 0;
    h->never[i] = 0;
    return 0;
}

static int arm_step(wsched_ctx *ctx, struct hb *h, size_t i, struct wrec *w, unsigned type,
                    uint64_t x, uint64_t now, bool twice)
{
    switch (type) {
    case S_SLEEP:
        return arm_sleep(ctx, h, i, x, now);
    case S_WAKER:
        return arm_waker(ctx, h, i, w, x, now, 0);
    case S_FD:
        return arm_fd(ctx, h, i, w, x, now, 0);
    default:
        return arm_batch(ctx, h, i, x, now, twice);
    }
}

/* A second wait in the same call: -EBUSY whatever its kind. */
static void check_busy(wsched_ctx *ctx, struct hb *h, size_t i)
{
    int r = wsched_sleep_until(ctx, now_ns());
    HCHECK(h, r == -EBUSY, "job %zu: a second arm (sleep) returned %d", i, r);
    wsched_waker k;
    r = wsched_waker_arm(ctx, 0, &k);
    HCHECK(h, r == -EBUSY && k.pool == NULL, "job %zu: a second arm (waker) returned %d", i, r);
    r = wsched_wait_fd(ctx, PAIR[0][0], WSCHED_FD_READ, 0);
    HCHECK(h, r == -EBUSY, "job %zu: a second arm (fd) returned %d", i, r);
    r = wsched_wait_batch(ctx, NULL);
    HCHECK(h, r == -EINVAL, "job %zu: wsched_wait_batch(NULL) returned %d", i, r);
}

/* Bad arguments and forged handles: errors, nothing armed. */
static void bad_waits(wsched_ctx *ctx, struct hb *h, size_t i, uint64_t x)
{
    int r = wsched_waker_arm(ctx, 0, NULL);
    HCHECK(h, r == -EINVAL, "job %zu: waker_arm(NULL out) returned %d", i, r);
    /* (While the pool is destroyed, -ESHUTDOWN comes before the fd's checks.) */
    static const unsigned bad_ev[4] = {0, WSCHED_FD_ERROR, 0x8 | WSCHED_FD_READ, 0x80000000u};
    r = wsched_wait_fd(ctx, -1 - (int)(x % 1000), WSCHED_FD_READ, 0);
    HCHECK(h, r == -EINVAL || (destroying() && r == -ESHUTDOWN), "job %zu: wait_fd(-1) returned %d", i,
           r);
    r = wsched_wait_fd(ctx, PAIR[0][0], bad_ev[(x >> 10) % 4], 0);
    HCHECK(h, r == -EINVAL || (destroying() && r == -ESHUTDOWN),
           "job %zu: wait_fd(events %#x) returned %d", i, bad_ev[(x >> 10) % 4], r);
    r = wsched_wait_fd(ctx, 1000000 + (int)(x % 1000), WSCHED_FD_READ, 0);
    HCHECK(h, r == -EBADF || (destroying() && r == -ESHUTDOWN) || (R.inject && r == -ENOMEM),
           "job %zu: wait_fd(a closed fd) returned %d", i, r);
    if (DEVNULL >= 0) {
        r = wsched_wait_fd(ctx, DEVNULL, WSCHED_FD_READ, 0);
        HCHECK(h, r == -EPERM || (destroying() && r == -ESHUTDOWN) || (R.inject && r == -ENOMEM),
               "job %zu: wait_fd(/dev/null) returned %d", i, r);
    }
    r = wsched_wait_batch(ctx, NULL);
    HCHECK(h, r == -EINVAL, "job %zu: wait_batch(NULL) returned %d", i, r);
    HCHECK(h, wsched_sleep_until(NULL, 0) == -EINVAL && wsched_wait_fd(NULL, 0, 1, 0) == -EINVAL &&
                  wsched_wait_batch(NULL, NULL) == -EINVAL && wsched_resume_kind(NULL) == -EINVAL &&
                  wsched_resume_value(NULL) == 0,
           "job %zu: a wait call with a NULL ctx", i);
    /* Forged handles: a NULL pool; generation 0; a generation no cell
     * reached (a cell there: -EALREADY, none: -EINVAL); a dead pool. */
    wsched_waker f = {NULL, x};
    r = wsched_wake(f, 1);
    HCHECK(h, r == -EINVAL, "job %zu: wake({NULL, %llu}) returned %d", i, (unsigned long long)x,
           r);
    f = (wsched_waker){R.pool, x & 0xffffff};
    r = wsched_wake(f, 1);
    HCHECK(h, r == -EINVAL || (destroying() && r == -ESHUTDOWN), "job %zu: wake(generation 0) returned %d",
           i, r);
    f = (wsched_waker){R.pool, ((1ull << 38) + (x >> 40)) << 24 | (x & 0xffffff)};
    r = wsched_wake(f, 1);
    HCHECK(h, r == -EINVAL || r == -EALREADY || (destroying() && r == -ESHUTDOWN),
           "job %zu: wake(a forged handle) returned %d", i, r);
    if (DEAD_POOL) {
        f = (wsched_waker){DEAD_POOL, x};
        r = wsched_wake(f, 1);
        HCHECK(h, r == -EBADF, "job %zu: wake on a destroyed pool's handle returned %d", i, r);
    }
}

/* Run the next step of job i's script: STEP_ARMED (return
 * WSCHED_PENDING), STEP_RETURN (return *ret) or STEP_NONE (go on). */
static int run_step(wsched_ctx *ctx, struct hb *h, size_t i, void *slot, unsigned s, int *ret)
{
    uint64_t x = mix64(h->wseed ^ ((uint64_t)i << 8) ^ s);
    unsigned opts[4], nopt = 0;
    for (unsigned k = 0; k < 4; k++)
        if (h->wmask & (1u << k))
            opts[nopt++] = k;
    unsigned type = nopt ? opts[(x >> 58) % nopt] : S_SLEEP;
    struct wrec *w = &h->rec[i * MAXSTEPS + s];
    uint64_t now = now_ns();
    uint64_t y = mix64(x + 1); /* the arm's own parameters */
    if (!h->abuse || (x >> 5) % 8 >= h->abuse)
        return arm_step(ctx, h, i, w, type, y, now, false) ? STEP_NONE : STEP_ARMED;
    switch ((x >> 9) % 5) {
    case 0: /* a second arm in the same call */
        if (arm_step(ctx, h, i, w, type, y, now, true))
            return STEP_NONE;
        check_busy(ctx, h, i);
        return STEP_ARMED;
    case 1: { /* armed, then a plain return: the wait is dropped */
        int r = (x >> 14) % 3 == 0 ? -EIO : 0;
        int a = (x >> 16) % 3 == 0 ? arm_sleep(ctx, h, i, y, now)
                : (x >> 16) % 3 == 1 ? arm_waker(ctx, h, i, w, y, now, 1)
                                    : arm_fd(ctx, h, i, w, y, now, 1);
        if (a)
            return STEP_NONE;
        if (h->cur[i] == W_FD) /* (the fd is unregistered when the wait is dropped) */
            pair_put(h->rec[h->cur_rec[i]].pair);
        h->cur[i] = W_NONE;
        h->dropped[i] = 1;
        *ret = wait_end(h, i, slot, r, false);
        return STEP_RETURN;
    }
    case 2: { /* a waker woken by the job, then a plain return: pending after all */
        if (arm_waker(ctx, h, i, w, y, now, 1))
            return STEP_NONE;
        w->dropped = 0;
        h->never[i] = 0;
        if (self_wake(h, i, w) != 0) { /* (a cancellation came first) */
            w->dropped = 1;
            h->cur[i] = W_NONE;
            h->dropped[i] = 1;
            *ret = wait_end(h, i, slot, 0, false);
            return STEP_RETURN;
        }
        h->cur[i] = W_DROPPED_WOKEN;
        *ret = (x >> 14) & 1 ? -EIO : 0; /* (not its result: it is called again) */
        return STEP_RETURN;
    }
    case 3: /* WSCHED_PENDING with nothing armed: WSCHED_EJOBCODE */
        *ret = wait_end(h, i, slot, WSCHED_PENDING, false);
        return STEP_RETURN;
    default:
        bad_waits(ctx, h, i, x >> 12);
        return STEP_NONE;
    }
}

static int wait_next(wsched_ctx *ctx, struct hb *h, size_t i, void *slot)
{
    while (h->step[i] < h->nsteps[i]) {
        int ret = 0;
        int a = run_step(ctx, h, i, slot, h->step[i]++, &ret);
        if (a == STEP_ARMED)
            return WSCHED_PENDING;
        if (a == STEP_RETURN)
            return ret;
    }
    /* The script is done: the job's own result. */
    uint64_t x = mix64(h->wseed ^ i ^ 0xf1f1);
    int r = x % 4 == 0               ? err_codes[(x >> 8) % NELEM(err_codes)]
            : h->timedout[i] && (x >> 16) & 1 ? -ETIMEDOUT
                                              : 0;
    return wait_end(h, i, slot, r, false);
}

static int wait_first(wsched_ctx *ctx, struct hb *h, size_t i, void *slot)
{
    HCHECK(h, atomic_fetch_add(&h->inside[i], 1) == 0, "job %zu: two calls at once", i);
    h->calls[i] = 1;
    int r = wait_next(ctx, h, i, slot);
    atomic_fetch_sub(&h->inside[i], 1);
    return r;
}

/* Job i is called again: its wait completed (kind), or it is cleaned up. */
static int wait_again(wsched_ctx *ctx, struct hb *h, size_t i, void *slot, int kind)
{
    uint64_t value = wsched_resume_value(ctx), now = now_ns();
    HCHECK(h, atomic_fetch_add(&h->inside[i], 1) == 0, "job %zu: two calls at once (kind %d)", i,
           kind);
    HCHECK(h, kind >= WSCHED_RESUME_TIMER && kind <= WSCHED_RESUME_TIMEDOUT,
           "job %zu called again with resume kind %d", i, kind);
    HCHECK(h, h->kind[i] == K_WAIT && atomic_load(&h->ran[i]) == 1,
           "job %zu (kind %s, first calls %u) called again (resume kind %d)", i,
           kind_name[h->kind[i]], atomic_load(&h->ran[i]), kind);
    HCHECK(h, slot == h->seen_slot[i], "job %zu called again with slot %p, first with %p", i,
           slot, h->seen_slot[i]);
    check_worker(ctx);
    h->calls[i]++;
    bool dying = atomic_load(&R.destroying);
    if (h->finished[i] || h->cleanup[i]) {
        /* After its end: only a cancellation that claimed a wait the job
         * armed and did not wait for, before the drop could (the destroy's
         * sweep; the batch's cancel, which may claim a wait armed by a job
         * still running), makes it pending after all: one cleanup call. */
        HCHECK(h, kind == WSCHED_RESUME_CANCELLED && cancel_explained(h) && !h->extra[i] &&
                      (h->dropped[i] || h->cleanup_armed[i]),
               "job %zu called again (kind %d) after its %s call", i, kind,
               h->finished[i] ? "final" : "cleanup");
        h->extra[i] = 1;
        h->finished[i] = 0;
        h->cleanup[i] = 1;
        if (dying)
            atomic_fetch_add(&h->destroy_cleanups, 1);
        atomic_fetch_sub(&h->inside[i], 1);
        return 777;
    }
    unsigned cur = h->cur[i];
    switch (cur) {
    case W_SLEEP:
        HCHECK(h, kind == WSCHED_RESUME_TIMER || kind == WSCHED_RESUME_CANCELLED,
               "job %zu: a sleep resumed with kind %d", i, kind);
        if (kind == WSCHED_RESUME_TIMER)
            HCHECK(h, now >= h->when[i], "job %zu: a sleep resumed %llu ns early", i,
                   (unsigned long long)(h->when[i] - now));
        break;
    case W_WAKER:
        HCHECK(h, kind == WSCHED_RESUME_WOKEN || kind == WSCHED_RESUME_TIMEDOUT ||
                      kind == WSCHED_RESUME_CANCELLED,
               "job %zu: a waker resumed with kind %d", i, kind);
        break;
    case W_DROPPED_WOKEN: /* woken before its plain return */
        HCHECK(h, kind == WSCHED_RESUME_WOKEN || kind == WSCHED_RESUME_CANCELLED,
               "job %zu: a waker woken before a plain return resumed with kind %d", i, kind);
        break;
    case W_FD:
        HCHECK(h, kind == WSCHED_RESUME_FD || kind == WSCHED_RESUME_TIMEDOUT ||
                      kind == WSCHED_RESUME_CANCELLED,
               "job %zu: an fd wait resumed with kind %d", i, kind);
        break;
    case W_BATCH:
        HCHECK(h, kind == WSCHED_RESUME_BATCH || kind == WSCHED_RESUME_CANCELLED,
               "job %zu: a batch wait resumed with kind %d", i, kind);
        break;
    default:
        HCHECK(h, 0, "job %zu called again (kind %d) with no wait armed", i, kind);
    }
    /* wsched.h: the value is the waker's (WOKEN), the fd's bits (FD), 0
     * otherwise. -DFUZZ_RELAX_CANCELLED_VALUE tolerates the finding that a
     * cleanup call after a won wake or fd event gets the won value. */
#ifdef FUZZ_RELAX_CANCELLED_VALUE
    if (kind != WSCHED_RESUME_WOKEN && kind != WSCHED_RESUME_FD &&
        kind != WSCHED_RESUME_CANCELLED)
#else
    if (kind != WSCHED_RESUME_WOKEN && kind != WSCHED_RESUME_FD)
#endif
        HCHECK(h, value == 0, "job %zu: resume kind %d with value %llu", i, kind,
               (unsigned long long)value);
    if (kind == WSCHED_RESUME_TIMEDOUT) {
        HCHECK(h, h->when[i] != 0, "job %zu: a wait without deadline timed out", i);
        HCHECK(h, now >= h->when[i], "job %zu: timed out %llu ns before its deadline", i,
               (unsigned long long)(h->when[i] - now));
        h->timedout[i] = 1;
    }
    if (h->never[i]) /* nothing delivers it, no deadline of its own */
        HCHECK(h, kind == WSCHED_RESUME_CANCELLED,
               "job %zu: a wait only a cancellation could end resumed with kind %d", i, kind);
    if (kind == WSCHED_RESUME_CANCELLED) {
        HCHECK(h, cancel_explained(h), "job %zu: a cleanup call, but nothing cancelled the batch",
               i);
        if (dying)
            atomic_fetch_add(&h->destroy_cleanups, 1);
    }
    if (cur == W_WAKER || cur == W_DROPPED_WOKEN || cur == W_FD) {
        struct wrec *w = &h->rec[h->cur_rec[i]];
        w->res_kind = kind;
        w->res_value = value;
        if (kind == WSCHED_RESUME_WOKEN)
            HCHECK(h, value == w->vbase + 7 || (value >= w->vbase && value < w->vbase + 2),
                   "job %zu: woken with %llu, not one of its waker's wakes (%llu + 0, 1, 7)", i,
                   (unsigned long long)value, (unsigned long long)w->vbase);
        if (cur == W_FD) {
            if (kind == WSCHED_RESUME_FD) {
                HCHECK(h, value != 0 && (value & ~(uint64_t)h->events[i]) == 0,
                       "job %zu: fd ready with bits %#llx, asked for %#x", i,
                       (unsigned long long)value, h->events[i]);
                if (value & WSCHED_FD_READ) { /* the written byte is there */
                    unsigned char c = 0;
                    ssize_t n = read(PAIR[w->pair][0], &c, 1);
                    HCHECK(h, n == 1 && c == w->byte, "job %zu: readable, read %zd (%#x, wrote %#x)",
                           i, n, c, w->byte);
                }
            }
            pair_put(w->pair);
        }
    } else if (cur == W_BATCH) {
        /* The child's every job has returned (also for a cleanup call). */
        wsched_batch *c = h->child[i];
        HCHECK(h, wsched_wait_idle(c, 0) == 0 && wsched_wait(c, 0) == 0,
               "job %zu resumed (kind %d) before its nested batch was done", i, kind);
        wsched_outcome o;
        HCHECK(h, wsched_batch_outcome(c, &o, sizeof o) == 0 && o.unfinished == 0 &&
                      o.ok + o.cancelled + o.timed_out == wsched_batch_size(c) &&
                      (h->child_deadline[i] || !o.timed_out) && (dying || !o.cancelled),
               "job %zu: nested waiting batch ended %u with ok %zu cancelled %zu timed out %zu", i,
               o.end, o.ok, o.cancelled, o.timed_out);
        wsched_batch_free(c);
        h->child[i] = NULL;
    }
    h->cur[i] = W_NONE;
    h->never[i] = 0;
    int r;
    if (kind == WSCHED_RESUME_CANCELLED) {
        h->cleanup[i] = 1;
        uint64_t x = mix64(h->wseed ^ i ^ 0xc1ea);
        if (h->abuse && x % 8 < h->abuse) { /* an arm in the cleanup call: dropped */
            struct wrec tmp; /* (not posted: nobody else sees it) */
            int a = x & 8 ? arm_sleep(ctx, h, i, x >> 4, now)
                          : arm_waker(ctx, h, i, &tmp, x >> 4, now, 1);
            h->cur[i] = W_NONE;
            h->cleanup_armed[i] = a == 0;
        }
        wait_end(h, i, slot, 0, true);
        r = 777; /* ignored */
    } else {
        r = wait_next(ctx, h, i, slot);
    }
    atomic_fetch_sub(&h->inside[i], 1);
    return r;
}

/* The batch handle for the waker thread's cancels, gone before the free. */
static void hb_free_handle(struct hb *h)
{
    atomic_store(&h->bh_state, 2);
    while (atomic_load(&h->bh_using))
        sched_yield();
    wsched_batch_free(h->b);
}

/* Before a batch's records go: the waker thread is done with each; then
 * what the wakes did against the resumptions (every job has returned). */
static void hb_waits_release(struct hb *h)
{
    if (!(h->flags & WSCHED_BATCH_WAITS) || h->depth)
        return;
    atomic_store(&h->freeing, 1);
    while (atomic_load_explicit(&h->retired, memory_order_acquire) != atomic_load(&h->posted))
        sched_yield();
    for (size_t k = 0; k < h->n * MAXSTEPS; k++) {
        struct wrec *w = &h->rec[k];
        if (!w->used || w->dropped)
            continue;
        int z = atomic_load(&w->zeros);
        HCHECK(h, z <= 1, "record %zu: %d wakes of one arming returned 0", k, z);
        switch (w->res_kind) {
        case WSCHED_RESUME_WOKEN:
            HCHECK(h, w->type == W_WAKER && z == 1 && w->res_value == atomic_load(&w->won),
                   "record %zu: woken with %llu; the wake that returned 0 (of %d) had %llu", k,
                   (unsigned long long)w->res_value, z, (unsigned long long)atomic_load(&w->won));
            break;
        case WSCHED_RESUME_FD:
            HCHECK(h, w->type == W_FD, "record %zu: an FD resumption of a waker", k);
            break;
        case WSCHED_RESUME_TIMEDOUT:
            HCHECK(h, z == 0, "record %zu: timed out, but a wake returned 0", k);
            break;
        case WSCHED_RESUME_CANCELLED:
            break;
        default:
            HCHECK(h, 0, "record %zu (job %zu): an armed wait was never resumed (kind %d)", k,
                   k / MAXSTEPS, w->res_kind);
        }
        if (w->type == W_WAKER) { /* the wait is over: a no-op, whatever is gone */
            bool dead = atomic_load(&R.dead);
            int r = wsched_wake(w->k, 3);
            bool dying = atomic_load(&R.destroying);
            HCHECK(h, dead ? r == -EBADF
                           : r == -EALREADY || (dying && (r == -ESHUTDOWN || r == -EBADF)),
                   "record %zu: a wake after the batch returned %d", k, r);
        }
    }
}

/* The waker thread: what jobs post, once due. */
static void wk_cancel(struct hb *h)
{
    atomic_store(&h->bh_using, 1);
    if (atomic_load(&h->bh_state) == 1) {
        atomic_store(&h->cancel_requested, 1); /* before: jobs that see it check it */
        HCHECK(h, wsched_cancel(h->b) == 0, "wsched_cancel from the waker thread");
    }
    atomic_store(&h->bh_using, 0);
}

/* One action of record w: true once it is retired. */
static bool wk_act(struct wrec *w, uint64_t now, bool stop)
{
    struct hb *h = w->h;
    if (w->cancel && !w->cancel_done) {
        if (atomic_load(&h->bh_state) == 0 && !stop) { /* its submit has not returned yet */
            w->due = now + 10000;
            return false;
        }
        wk_cancel(h);
        w->cancel_done = 1;
        if (w->done < w->attempts)
            return false;
    } else if (w->type == W_FD) {
        unsigned char c = w->byte;
        CHECK(write(PAIR[w->pair][1], &c, 1) == 1, "write to a socketpair");
        pair_put(w->pair);
        w->done = 1;
    } else {
        bool freeing = atomic_load(&h->freeing), dead = atomic_load(&R.dead);
        uint64_t v = w->vbase + w->done;
        int r = wsched_wake(w->k, v);
        bool dying = atomic_load(&R.destroying); /* (after: -ESHUTDOWN implies it) */
        if (dead)
            HCHECK(h, r == -EBADF, "a wake after the pool's destroy returned %d", r);
        else
            HCHECK(h, r == 0 || r == -EALREADY || (dying && (r == -ESHUTDOWN || r == -EBADF)),
                   "wsched_wake from the waker thread returned %d (%s)", r, wsched_strerror(r));
        if (freeing) /* every job returned: the wait is over */
            HCHECK(h, r != 0, "a wake after the batch was idle returned 0");
        if (r == 0) {
            atomic_fetch_add(&w->zeros, 1);
            atomic_store(&w->won, v);
        }
        if (++w->done < w->attempts) {
            w->due = now + 20000;
            return false;
        }
    }
    if (w->done < w->attempts)
        return false;
    atomic_fetch_add_explicit(&h->retired, 1, memory_order_release); /* the last touch */
    return true;
}

static bool wk_ready(const struct wrec *w, uint64_t now, bool stop)
{
    if (stop)
        return true;
    if (now < w->due)
        return false;
    if (w->cancel && !w->cancel_done)
        return true;
    return !w->late || atomic_load(&w->h->freeing);
}

static void *wk_main(void *arg)
{
    (void)arg;
    static struct wrec *list[WK_CAP];
    int n = 0;
    for (;;) {
        bool any = false, stop = atomic_load(&WK_STOP);
        for (unsigned k = 0; k < WQ_SLOTS; k++) {
            if (!atomic_load_explicit(&WQ[k], memory_order_relaxed))
                continue;
            struct wrec *w = atomic_exchange_explicit(&WQ[k], NULL, memory_order_acquire);
            if (!w)
                continue;
            CHECK(n < WK_CAP, "waker thread: more than %d records at once", WK_CAP);
            w->due = now_ns() + w->delay;
            list[n++] = w;
            any = true;
        }
        uint64_t now = now_ns(), next = now + 20000;
        for (int k = 0; k < n;) {
            struct wrec *w = list[k];
            if (!wk_ready(w, now, stop)) {
                if (w->due > now && w->due < next)
                    next = w->due;
                k++;
                continue;
            }
            any = true;
            if (wk_act(w, now, stop))
                list[k] = list[--n];
            else
                k++;
        }
        if (stop && !n) {
            bool left = false;
            for (unsigned k = 0; k < WQ_SLOTS; k++)
                left |= atomic_load(&WQ[k]) != NULL;
            if (!left)
                return NULL;
        }
        now = now_ns();
        if (!any && next > now) {
            struct timespec ts = {0, (long)(next - now)};
            nanosleep(&ts, NULL); /* until the next record is due (the delays are workload) */
        }
    }
}

/* ------------------------------------------------------- single jobs */

/* wsched_post: each thread owns NPOST records, and only it posts, waits
 * for and reads them. A record's job checks its ctx, counts its calls and
 * returns its code (status_of applies); the kinds spawn and sync tasks,
 * post a child record from inside and wait for it there (helping), or try
 * the waits a posted job must not have. Checked whenever a wait returns 0
 * and at the end (after destroy when the pool is destroyed with them
 * pending): one call per accepted post, the status its code's, the
 * child's likewise. */
#define NPOST 6
enum { PJ_CODE, PJ_SPAWN, PJ_NESTED, PJ_NOWAITS };
static const int post_codes[8] = {0, 0, -EIO, 1, WSCHED_ERRBASE, WSCHED_ERRBASE - 65,
                                  WSCHED_EEXCEPTION, INT_MIN};
struct prec {
    alignas(64) wsched_job job;
    alignas(64) wsched_job child;  /* PJ_NESTED: posted and waited for inside */
    _Atomic uint32_t runs;         /* calls of the job function */
    _Atomic uint32_t child_runs;
    uint32_t child_posts;          /* written by the job only */
    uint32_t posts;                /* accepted posts, by the owner */
    int kind, code;                /* set by the owner while no job is posted */
    bool pending;                  /* posted, not yet waited for */
};

static void post_task(wsched_ctx *ctx, void *arg)
{
    CHECK(ctx != NULL, "a posted job's task got no ctx");
    atomic_fetch_add((_Atomic uint32_t *)arg, 1);
}

static int post_child(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct prec *pr = arg;
    CHECK(ctx != NULL && i == 0 && slot == NULL, "posted child: ctx %p index %zu slot %p",
          (void *)ctx, i, slot);
    check_worker(ctx);
    atomic_fetch_add(&pr->child_runs, 1);
    return -ECONNREFUSED;
}

static int post_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct prec *pr = arg;
    CHECK(ctx != NULL && i == 0 && slot == NULL, "posted job: ctx %p index %zu slot %p",
          (void *)ctx, i, slot);
    check_worker(ctx);
    CHECK(wsched_cancelled(ctx) == 0, "wsched_cancelled in a posted job: %d",
          wsched_cancelled(ctx));
    atomic_fetch_add(&pr->runs, 1);
    switch (pr->kind) {
    case PJ_SPAWN: {
        _Atomic uint32_t count = 0;
        unsigned k = 1 + (unsigned)pr->code % 3u;
        for (unsigned j = 0; j < k; j++)
            CHECK(wsched_spawn(ctx, post_task, &count) == 0, "spawn in a posted job");
        CHECK(wsched_sync(ctx) == 0, "sync in a posted job");
        CHECK(atomic_load(&count) == k, "posted job: %u of %u tasks after sync",
              atomic_load(&count), k);
        break;
    }
    case PJ_NESTED: {
        atomic_fetch_add(&R.accepted_jobs, 1);
        int r = wsched_post(R.pool, &pr->child, post_child, pr);
        if (r != 0) { /* inside: onto the deque, whose growth may fail */
            CHECK(r == -ENOMEM && R.inject, "post from inside returned %d (%s)", r,
                  wsched_strerror(r));
            atomic_fetch_sub(&R.accepted_jobs, 1);
            break;
        }
        pr->child_posts++;
        r = wsched_job_wait(&pr->child, -1);
        CHECK(r == 0, "job_wait(-1) inside a posted job returned %d", r);
        int st = 1;
        CHECK(wsched_job_status(&pr->child, &st) == 0 && st == -ECONNREFUSED,
              "posted child's status %d", st);
        CHECK(atomic_load(&pr->child_runs) == pr->child_posts, "posted child ran %u times of %u",
              atomic_load(&pr->child_runs), pr->child_posts);
        break;
    }
    case PJ_NOWAITS:
        check_no_waits(ctx, "a posted job");
        break;
    }
    return pr->code;
}

/* After a wait returned 0: the record's job ran once per post. */
static void post_verify(struct prec *pr, const char *when)
{
    int st = 12345;
    int r = wsched_job_status(&pr->job, &st);
    CHECK(r == 0, "job_status %s returned %d", when, r);
    CHECK(st == status_of(pr->code), "posted job %s: status %d, expected %d (code %d)", when, st,
          status_of(pr->code), pr->code);
    CHECK(atomic_load(&pr->runs) == pr->posts, "posted job %s: %u calls for %u posts", when,
          atomic_load(&pr->runs), pr->posts);
    CHECK(atomic_load(&pr->child_runs) == pr->child_posts, "posted child %s: %u calls of %u",
          when, atomic_load(&pr->child_runs), pr->child_posts);
    pr->pending = false;
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
    OP_POST,
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
    struct hb *early;  /* freed early: records kept until the pool is gone */
    struct hb *kept;   /* verified, kept until after destroy */
    struct hb *undone; /* not waited for: destroyed running (R.dmode) */
    size_t budget;
    bool have_last;
    wsched_worker_stats last[4];
    struct prec post[NPOST];
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
    h->quorum = h->policy == WSCHED_POLICY_QUORUM ? 1 + p[3] % n : p[3] % 4;
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
    if (p[5] & 8) { /* jobs that wait */
        h->flags |= WSCHED_BATCH_WAITS;
        h->wmask = p[5] >> 4;
        h->abuse = p[6] >> 5;
        h->wseed = mix64(p[8] | (uint64_t)p[2] << 8 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 24 |
                         (uint64_t)p[0] << 32);
        for (size_t i = 0; i < n && (h->wmask || h->abuse); i++) {
            uint64_t x = mix64(h->wseed + i);
            if ((x >> 40) % 4 == 0)
                continue; /* keeps its kind of the `allowed` byte */
            h->kind[i] = K_WAIT;
            h->nsteps[i] = (uint8_t)(1 + (x >> 44) % MAXSTEPS);
        }
    }
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
    atomic_store(&h->bh_state, 1); /* the waker thread may cancel it now */
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
    check_after_wait(h, r, t0, now_ns(), tmo);
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
        hb_free_handle(h);
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
    hb_free_handle(h);
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

/*
 * The stats calls of API 1.0: wsched_pool_get_stats(pool, out, size) and
 * wsched_worker_get_stats(pool, out, n, size). A caller's struct larger
 * than this version's gets the library's struct followed by zeros, and
 * nothing past `size` (per entry) is written.
 */
#define WS_EXTRA_MAX 40
static const size_t ws_extra[4] = {0, 1, 8, WS_EXTRA_MAX};

/* Fill *st from a pool stats call with a struct `extra` bytes larger. */
static void pool_stats_sized(wsched_pool_stats *st, size_t extra)
{
    union {
        wsched_pool_stats st;
        unsigned char raw[sizeof(wsched_pool_stats) + 64];
    } buf;
    size_t size = sizeof(wsched_pool_stats) + extra;
    memset(&buf, 0xCD, sizeof buf);
    int r = wsched_pool_get_stats(R.pool, &buf.st, size);
    CHECK(r == 0, "wsched_pool_get_stats(size %zu) returned %d", size, r);
    for (size_t k = sizeof(wsched_pool_stats); k < size; k++)
        CHECK(buf.raw[k] == 0, "pool stats of size %zu: byte %zu past the library's struct is "
              "%#x, not 0", size, k, buf.raw[k]);
    for (size_t k = size; k < sizeof buf.raw; k++)
        CHECK(buf.raw[k] == 0xCD, "pool stats of size %zu wrote byte %zu", size, k);
    *st = buf.st;
}

/* Per-worker counters for workers 0..min(n, nworkers)-1 into ws[], each
 * entry `extra` bytes larger than the library's; returns how many. */
static unsigned worker_stats_sized(wsched_worker_stats *ws, unsigned n, size_t extra)
{
    enum { ESZ = sizeof(wsched_worker_stats) + WS_EXTRA_MAX };
    union {
        uint64_t align;
        unsigned char raw[5 * ESZ + 64];
    } buf;
    size_t size = sizeof(wsched_worker_stats) + extra;
    CHECK(n <= 5 && extra <= WS_EXTRA_MAX, "harness: worker_stats_sized(%u, %zu)", n, extra);
    memset(&buf, 0xCD, sizeof buf);
    int r = wsched_worker_get_stats(R.pool, (wsched_worker_stats *)(void *)buf.raw, n, size);
    unsigned nw = (unsigned)R.nworkers, m = n < nw ? n : nw;
    CHECK(r >= 0 && (unsigned)r == m,
          "wsched_worker_get_stats(n %u, size %zu) returned %d, want min(n, nworkers %u) = %u",
          n, size, r, nw, m);
    for (unsigned i = 0; i < m; i++) {
        const unsigned char *e = buf.raw + (size_t)i * size;
        for (size_t k = sizeof(wsched_worker_stats); k < size; k++)
            CHECK(e[k] == 0, "worker stats entry %u of size %zu: byte %zu past the library's "
                  "struct is %#x, not 0", i, size, k, e[k]);
        memcpy(&ws[i], e, sizeof ws[i]);
    }
    for (size_t k = (size_t)m * size; k < sizeof buf.raw; k++)
        CHECK(buf.raw[k] == 0xCD, "worker stats (n %u, size %zu) wrote byte %zu, past its %u "
              "entries", n, size, k, m);
    return m;
}

static bool ws_le(const wsched_worker_stats *a, const wsched_worker_stats *b)
{
    return a->jobs <= b->jobs && a->tasks <= b->tasks && a->steals <= b->steals &&
           a->steal_fails <= b->steal_fails && a->parks <= b->parks &&
           a->wakeups <= b->wakeups && a->busy_ns <= b->busy_ns;
}

static void ws_add(wsched_worker_stats *s, const wsched_worker_stats *a)
{
    s->jobs += a->jobs;
    s->tasks += a->tasks;
    s->steals += a->steals;
    s->steal_fails += a->steal_fails;
    s->parks += a->parks;
    s->wakeups += a->wakeups;
    s->busy_ns += a->busy_ns;
}

static void op_stats(struct thr *t, const uint8_t *p)
{
    wsched_pool_stats st;
    wsched_worker_stats before[5], after[5];
    unsigned n = p[0] % 5;
    bool with = (p[0] >> 3) & 1;
    size_t pextra = ws_extra[(p[0] >> 4) & 3], wextra = ws_extra[(p[0] >> 6) & 3];
    unsigned nw = (unsigned)R.nworkers;
    unsigned m = 0;
    if (with)
        m = worker_stats_sized(before, n, wextra);
    pool_stats_sized(&st, pextra);
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
    CHECK(worker_stats_sized(after, n, wextra ? 0 : 8) == m, "worker stats count changed");
    for (unsigned k = 0; k < m; k++)
        CHECK(ws_le(&before[k], &after[k]), "stats: a counter of worker %u went backwards "
              "between two calls", k);
    if (m == nw) {
        /* Two calls cannot be one instant (the totals were one snapshot
         * with the old wsched_stats): the totals, read between the two
         * per-worker snapshots, lie between their sums (every counter only
         * grows). */
        wsched_worker_stats lo = {0}, hi = {0};
        for (unsigned k = 0; k < m; k++) {
            ws_add(&lo, &before[k]);
            ws_add(&hi, &after[k]);
        }
        CHECK(ws_le(&lo, &st.total) && ws_le(&st.total, &hi),
              "stats: totals (jobs %llu tasks %llu steals %llu parks %llu) are not between "
              "the sums of the per-worker counters before (%llu %llu %llu %llu) and after "
              "(%llu %llu %llu %llu)",
              (unsigned long long)st.total.jobs, (unsigned long long)st.total.tasks,
              (unsigned long long)st.total.steals, (unsigned long long)st.total.parks,
              (unsigned long long)lo.jobs, (unsigned long long)lo.tasks,
              (unsigned long long)lo.steals, (unsigned long long)lo.parks,
              (unsigned long long)hi.jobs, (unsigned long long)hi.tasks,
              (unsigned long long)hi.steals, (unsigned long long)hi.parks);
    }
    if (t->have_last)
        for (unsigned k = 0; k < m; k++)
            CHECK(ws_le(&t->last[k], &before[k]), "stats: a counter of worker %u went backwards",
                  k);
    if (m == nw) {
        memcpy(t->last, after, sizeof t->last[0] * m);
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
    switch (p[0] % 22) {
    case 0:
        dp = NULL;
        break;
    case 1:
        d.njobs = 0;
        break;
    case 2:
        d.flags = 1u << (3 + p[1] % 29); /* past WSCHED_BATCH_WAITS (bit 2) */
        break;
    case 3:
        d.policy = WSCHED_POLICY_QUORUM;
        d.quorum = 0;
        break;
    case 4:
        d.policy = WSCHED_POLICY_QUORUM;
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
        d.reserved[p[1] % NELEM(d.reserved)] = dummy;
        break;
    case 19: /* a stride without slots */
        d.slot_stride = 1 + p[1];
        break;
    case 20: /* a wait record names its job in 32 bits */
        d.flags = WSCHED_BATCH_WAITS | (p[1] & 3);
        d.njobs = (size_t)UINT32_MAX + 1 + p[1];
        want = -EOVERFLOW;
        break;
    case 21: { /* the waits outside a job; wakes of handles never armed */
        wsched_waker k = {(wsched_pool *)(uintptr_t)0x1, 5};
        CHECK(wsched_sleep_until(NULL, 1) == -EINVAL, "sleep_until(NULL)");
        CHECK(wsched_waker_arm(NULL, 0, &k) == -EINVAL && k.pool == NULL && k.id == 0,
              "waker_arm(NULL) returned a handle");
        CHECK(wsched_waker_arm(NULL, 0, NULL) == -EINVAL, "waker_arm(NULL, NULL)");
        CHECK(wsched_wait_fd(NULL, 0, WSCHED_FD_READ, 0) == -EINVAL, "wait_fd(NULL)");
        CHECK(wsched_wait_batch(NULL, NULL) == -EINVAL, "wait_batch(NULL)");
        CHECK(wsched_resume_kind(NULL) == -EINVAL && wsched_resume_value(NULL) == 0,
              "resume kind/value of NULL");
        uint64_t x = mix64(p[1]);
        int r = wsched_wake((wsched_waker){NULL, x}, 1);
        CHECK(r == -EINVAL, "wake({NULL, ...}) returned %d", r);
        r = wsched_wake((wsched_waker){R.pool, x & 0xffffff}, 1); /* generation 0 */
        CHECK(r == -EINVAL, "wake(generation 0) returned %d", r);
        r = wsched_wake((wsched_waker){R.pool, ((1ull << 38) + p[1]) << 24 | (x & 0xffffff)}, 1);
        CHECK(r == -EINVAL || r == -EALREADY, "wake(a generation never armed) returned %d", r);
        if (DEAD_POOL) {
            r = wsched_wake((wsched_waker){DEAD_POOL, x}, 1);
            CHECK(r == -EBADF, "wake on a destroyed pool's handle returned %d", r);
        }
        return;
    }
    case 15: {
        size_t idx;
        CHECK(wsched_wait(NULL, 0) == -EINVAL, "wait(NULL)");
        CHECK(wsched_wait_idle(NULL, 0) == -EINVAL, "wait_idle(NULL)");
        CHECK(wsched_cancel(NULL) == -EINVAL, "cancel(NULL)");
        CHECK(wsched_next_done(NULL, 0, &idx) == -EINVAL, "next_done(NULL)");
        wsched_batch_free(NULL);
        CHECK(wsched_batch_size(NULL) == 0, "batch_size(NULL)");
        CHECK(wsched_batch_slot(NULL, 0) == NULL, "batch_slot(NULL)");
        int st = 0x5a5a5a5a;
        CHECK(wsched_batch_status(NULL, p[1], &st) == -EINVAL, "batch_status(NULL)");
        CHECK(st == 0x5a5a5a5a, "batch_status(NULL) failed but wrote *status = %d", st);
        CHECK(wsched_batch_status(NULL, 0, NULL) == -EINVAL, "batch_status(NULL, 0, NULL)");
        wsched_outcome o;
        memset(&o, 0x5a, sizeof o);
        CHECK(wsched_batch_outcome(NULL, &o, sizeof o) == -EINVAL, "batch_outcome(NULL)");
        CHECK(wsched_batch_outcome(NULL, NULL, sizeof o) == -EINVAL, "batch_outcome(NULL, NULL)");
        CHECK(wsched_batch_outcome(NULL, &o, 0) == -EINVAL, "batch_outcome(NULL, o, 0)");
        for (size_t k = 0; k < sizeof o; k++)
            CHECK(((unsigned char *)&o)[k] == 0x5a, "a failed batch_outcome wrote byte %zu", k);
        CHECK(wsched_cancelled(NULL) == -EINVAL, "cancelled(NULL) returned %d",
              wsched_cancelled(NULL));
        CHECK(wsched_spawn(NULL, child_fn, NULL) == -EINVAL, "spawn(NULL)");
        CHECK(wsched_sync(NULL) == -EINVAL, "sync(NULL)");
        CHECK(wsched_blocking(NULL) == -EINVAL, "blocking(NULL)");
        CHECK(wsched_ctx_worker(NULL) == -EINVAL, "ctx_worker(NULL) returned %d",
              wsched_ctx_worker(NULL));
        return;
    }
    case 16: {
        /* Stats: NULL handles and outputs, sizes below this version's
         * structs: -EINVAL, and nothing written. */
        union {
            wsched_pool_stats st;
            wsched_worker_stats ws[4];
            unsigned char raw[4 * sizeof(wsched_worker_stats)];
        } u;
        /* The pool's struct grew (resilience, issue 11): the smallest size
         * it takes is its first version's. */
        const size_t psz = offsetof(wsched_pool_stats, resilience),
                     wsz = sizeof(wsched_worker_stats);
        size_t small_p = (p[1] >> 2) % psz, small_w = (p[1] >> 2) % wsz;
        unsigned n = 1 + p[1] % 4;
        memset(&u, 0xCD, sizeof u);
        CHECK(wsched_pool_get_stats(R.pool, NULL, psz) == -EINVAL, "pool_get_stats(NULL out)");
        CHECK(wsched_pool_get_stats(NULL, &u.st, psz) == -EINVAL, "pool_get_stats(NULL pool)");
        CHECK(wsched_pool_get_stats(NULL, NULL, 0) == -EINVAL, "pool_get_stats(NULL, NULL)");
        CHECK(wsched_pool_get_stats(R.pool, &u.st, small_p) == -EINVAL,
              "pool_get_stats(size %zu < %zu)", small_p, psz);
        CHECK(wsched_pool_get_stats(R.pool, &u.st, psz - 1) == -EINVAL,
              "pool_get_stats(size %zu)", psz - 1);
        CHECK(wsched_worker_get_stats(R.pool, NULL, n, wsz) == -EINVAL,
              "worker_get_stats(NULL out)");
        CHECK(wsched_worker_get_stats(R.pool, NULL, 0, wsz) == -EINVAL,
              "worker_get_stats(NULL out, n 0)");
        CHECK(wsched_worker_get_stats(NULL, u.ws, n, wsz) == -EINVAL,
              "worker_get_stats(NULL pool)");
        int r = wsched_worker_get_stats(R.pool, u.ws, n, small_w);
        CHECK(r == -EINVAL, "worker_get_stats(size %zu < %zu) returned %d", small_w, wsz, r);
        r = wsched_worker_get_stats(R.pool, u.ws, n, wsz - 1);
        CHECK(r == -EINVAL, "worker_get_stats(size %zu) returned %d", wsz - 1, r);
        for (size_t k = 0; k < sizeof u.raw; k++)
            CHECK(u.raw[k] == 0xCD, "a failed stats call wrote byte %zu", k);
        r = wsched_worker_get_stats(R.pool, u.ws, 0, wsz);
        CHECK(r == 0, "worker_get_stats(n 0) returned %d", r);
        for (size_t k = 0; k < sizeof u.raw; k++)
            CHECK(u.raw[k] == 0xCD, "worker_get_stats(n 0) wrote byte %zu", k);
        /* A caller of the first version: its fields, nothing past them. */
        memset(&u, 0xCD, sizeof u);
        CHECK(wsched_pool_get_stats(R.pool, &u.st, psz) == 0, "pool_get_stats(first size %zu)",
              psz);
        for (size_t k = psz; k < sizeof(wsched_pool_stats); k++)
            CHECK(((unsigned char *)&u.st)[k] == 0xCD, "pool_get_stats(first size) wrote byte %zu",
                  k);
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
            cfg.reserved[p[1] % NELEM(cfg.reserved)] = &cfg;
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
    CHECK(r == want, "bad submit (case %u) returned %d (%s), want %d", p[0] % 22, r,
          wsched_strerror(r), want);
    if (out)
        CHECK(b == NULL, "failed submit did not clear *out");
}

static void op_query(struct thr *t, const uint8_t *p)
{
    CHECK(wsched_pool_workers(R.pool) == R.nworkers, "pool_workers");
    int cw = wsched_current_worker();
    CHECK(cw == -ESRCH, "wsched_current_worker() returned %d outside the pool", cw);
    CHECK(wsched_version() == WSCHED_VERSION, "wsched_version() %u, header %u",
          wsched_version(), (unsigned)WSCHED_VERSION);
    static const int codes[] = {0,
                                -EINVAL,
                                -ETIMEDOUT,
                                -ENODATA,
                                -ESRCH,
                                WSCHED_ENOTRUN,
                                WSCHED_EJOBCODE,
                                WSCHED_ECANCELLED,
                                WSCHED_EDEADLINE,
                                WSCHED_EEXCEPTION,
                                WSCHED_ERRBASE - 6,
                                WSCHED_EBREAKER,
                                WSCHED_ELIMITED,
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
    check_outcome_snapshot(h);
    for (size_t i = 0; i < h->n; i++) {
        int st = st_of(h, i);
        observe(h, i, st);
        if (h->idle)
            HCHECK(h, st == h->final_st[i], "status changed after idle");
    }
}

static void post_bad_inputs(void)
{
    wsched_job fresh = WSCHED_JOB_INIT;
    int st = 5;
    CHECK(wsched_post(NULL, &fresh, post_job, NULL) == -EINVAL, "post(NULL pool)");
    CHECK(wsched_post(R.pool, NULL, post_job, NULL) == -EINVAL, "post(NULL job)");
    CHECK(wsched_post(R.pool, &fresh, NULL, NULL) == -EINVAL, "post(NULL fn)");
    CHECK(wsched_job_wait(NULL, 0) == -EINVAL, "job_wait(NULL)");
    CHECK(wsched_job_wait(&fresh, -1) == -EINVAL, "job_wait of a record never posted");
    CHECK(wsched_job_status(&fresh, &st) == -EINVAL && st == 5,
          "job_status of a record never posted");
}

static void op_post(struct thr *t, const uint8_t *p)
{
    if (p[1] & 4)
        post_bad_inputs();
    struct prec *pr = &t->post[p[0] % NPOST];
    if (t->budget < 1)
        return;
    t->budget--;
    bool again = pr->pending; /* refused unless its job is done */
    if (!again) {
        pr->kind = (p[0] >> 3) & 3;
        pr->code = post_codes[p[0] >> 5];
    }
    /* Counted before the post, as a submit's jobs (the stats' bound). */
    atomic_fetch_add(&R.accepted_jobs, 1);
    int r = wsched_post(R.pool, &pr->job, post_job, pr);
    if (r != 0) {
        atomic_fetch_sub(&R.accepted_jobs, 1);
        CHECK(r == -EBUSY && again, "post (pending %d) returned %d (%s)", again, r,
              wsched_strerror(r));
        int st = 12345;
        r = wsched_job_status(&pr->job, &st);
        if (r == 0) /* done since the post looked */
            CHECK(st == status_of(pr->code), "posted job's status %d, code %d", st, pr->code);
        else
            CHECK(r == -EBUSY && st == 12345, "job_status of a pending job returned %d", r);
        return;
    }
    pr->posts++;
    pr->pending = true;
    static const int64_t post_tmo[4] = {0, 0, -1, 50000};
    unsigned wmode = p[1] & 3;
    if (wmode == 0)
        return;
    r = wsched_job_wait(&pr->job, post_tmo[wmode]);
    if (r == 0)
        post_verify(pr, "after its wait");
    else
        CHECK(r == -ETIMEDOUT && wmode != 2, "job_wait(%lld) returned %d",
              (long long)post_tmo[wmode], r);
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
            op_post(t, o->p);
        }
    }
    /* Posted jobs not waited for: now, or after destroy (R.dmode), which
     * runs every one of them first. */
    for (int k = 0; k < NPOST && !R.dmode; k++)
        if (t->post[k].pending) {
            CHECK(wsched_job_wait(&t->post[k].job, -1) == 0, "job_wait(-1) at the end");
            post_verify(&t->post[k], "at the end");
        }
    /* The end of every program: every batch not freed is waited for and
     * checked in full. */
    while (t->nlive) {
        struct hb *h = t->live[t->nlive - 1];
        t->nlive--;
        if (R.dmode) { /* the pool is destroyed with it running: checked after */
            h->next = t->undone;
            t->undone = h;
            continue;
        }
        HCHECK(h, wsched_wait_idle(h->b, -1) == 0, "wait_idle(-1)");
        verify_final(h);
        if (R.keep) {
            h->next = t->kept;
            t->kept = h;
        } else {
            hb_free_handle(h);
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
    /* A destroyed pool's handle, for wakes that must answer -EBADF, and an
     * fd that epoll refuses. */
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 1;
    cfg.flags = WSCHED_POOL_NO_PIN;
    if (wsched_pool_create(&DEAD_POOL, &cfg) == 0 && wsched_pool_destroy(DEAD_POOL) != 0)
        DEAD_POOL = NULL;
    DEVNULL = open("/dev/null", O_RDONLY | O_CLOEXEC);
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
    R.dmode = (h1 >> 5) & 7;
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
        if (o.code <= OP_SUBMIT2 && (o.p[5] & 8))
            R.waits = true;
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

    /* Jobs that wait: the socketpairs and the waker thread. */
    pthread_t wk;
    if (R.waits) {
        for (int k = 0; k < NPAIRS; k++) {
            CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, PAIR[k]) == 0,
                  "socketpair");
            atomic_store(&PAIR_REFS[k], 0);
        }
        atomic_store(&WK_STOP, 0);
        CHECK(pthread_create(&wk, NULL, wk_main, NULL) == 0, "pthread_create");
    }

    for (int k = 1; k < nthreads; k++)
        CHECK(pthread_create(&T[k].th, NULL, thr_main, &T[k]) == 0, "pthread_create");
    run_ops(&T[0]);
    for (int k = 1; k < nthreads; k++)
        pthread_join(T[k].th, NULL);

    /* Every batch still referenced is idle: the counters are complete. */
    wsched_pool_stats st;
    uint64_t ran = atomic_load(&R.ran_jobs);
    CHECK(wsched_pool_get_stats(pool, &st, sizeof st) == 0, "pool_get_stats");
    wsched_worker_stats sum = {0};
    {
        /* One entry per worker, however many are asked for. */
        wsched_worker_stats ws[5];
        unsigned m = worker_stats_sized(ws, 5, 0);
        CHECK(m == (unsigned)R.nworkers, "worker_get_stats(n 5) wrote %u of %d workers", m,
              R.nworkers);
        for (unsigned k = 0; k < m; k++)
            ws_add(&sum, &ws[k]);
    }
    /* Accepted jobs read after both snapshots: jobs of batches freed early
     * may still run and submit nested batches, so a count read before the
     * snapshots can be passed by them (x86-TSO: a job is counted in
     * accepted_jobs before it can run and be counted by its worker). */
    uint64_t acc = atomic_load(&R.accepted_jobs);
    CHECK(sum.jobs <= acc, "worker stats: %llu jobs counted, %llu submitted",
          (unsigned long long)sum.jobs, (unsigned long long)acc);
    CHECK(st.total.jobs <= acc, "stats: %llu jobs counted, %llu submitted",
          (unsigned long long)st.total.jobs, (unsigned long long)acc);
    if (atomic_load(&R.early_frees) == 0 && !R.dmode)
        CHECK(st.total.jobs >= ran, "stats: %llu jobs counted, %llu ran",
              (unsigned long long)st.total.jobs, (unsigned long long)ran);

    struct late L = {.naccepted = 0};
    pthread_t lt;
    if (late)
        CHECK(pthread_create(&lt, NULL, late_main, &L) == 0, "pthread_create");
    if (R.dmode > 1) /* the batches not waited for: at some point of their progress */
        spin_for(50000u * (unsigned)(R.dmode - 1));
    atomic_store(&R.destroying, 1);
    r = wsched_pool_destroy(pool);
    CHECK(r == 0, "pool_destroy returned %d", r);
    atomic_store(&R.dead, 1);
    if (late)
        pthread_join(lt, NULL);
    CHECK(wsched_pool_destroy(pool) == -EBADF, "second destroy");
    CHECK(wsched_pool_workers(pool) == -EBADF, "pool_workers after destroy");
    CHECK(wsched_pool_get_stats(pool, &st, sizeof st) == -EBADF, "pool_get_stats after destroy");
    {
        wsched_worker_stats ws[3];
        int wr = wsched_worker_get_stats(pool, ws, 3, sizeof ws[0]);
        CHECK(wr == -EBADF, "worker_get_stats after destroy returned %d", wr);
    }
    {
        wsched_batch_desc d;
        memset(&d, 0, sizeof d);
        d.fn = nop_job;
        d.njobs = 1;
        wsched_batch *b = (wsched_batch *)(uintptr_t)0x1;
        CHECK(wsched_submit(pool, &d, &b) == -EBADF, "submit after destroy");
        CHECK(b == NULL, "failed submit did not clear *out");
    }

    {
        wsched_job fresh = WSCHED_JOB_INIT;
        CHECK(wsched_post(pool, &fresh, post_job, NULL) == -EBADF, "post after destroy");
    }
    /* Jobs posted and not waited for: destroy ran them. */
    for (int k = 0; k < nthreads; k++)
        for (int j = 0; j < NPOST; j++)
            if (T[k].post[j].pending) {
                CHECK(wsched_job_wait(&T[k].post[j].job, 0) == 0,
                      "a job posted before destroy: not done after it");
                post_verify(&T[k].post[j], "after destroy");
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
    /* What the waker thread still holds: delivered now (wakes: -EBADF). */
    if (R.waits) {
        atomic_store(&WK_STOP, 1);
        pthread_join(wk, NULL);
    }
    /* Batches the pool was destroyed with: accepted, so run to completion;
     * their pending waits cancelled. */
    for (int k = 0; k < nthreads; k++) {
        while (T[k].undone) {
            struct hb *h = T[k].undone;
            T[k].undone = h->next;
            HCHECK(h, wsched_wait(h->b, 0) == 0, "a batch the pool was destroyed with: not complete");
            HCHECK(h, wsched_wait_idle(h->b, 0) == 0,
                   "a batch the pool was destroyed with: jobs still running");
            verify_final(h);
            hb_free_handle(h);
            hb_free(h);
        }
    }
    /* Handles stay valid after destroy. */
    for (int k = 0; k < nthreads; k++) {
        while (T[k].kept) {
            struct hb *h = T[k].kept;
            T[k].kept = h->next;
            verify_final(h);
            hb_free_handle(h);
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
    if (R.waits)
        for (int k = 0; k < NPAIRS; k++) {
            CHECK(atomic_load(&PAIR_REFS[k]) == 0, "socketpair %d still held (%d) at the end", k,
                  atomic_load(&PAIR_REFS[k]));
            close(PAIR[k][0]);
            close(PAIR[k][1]);
        }
    FA.fail_at = 0;
    return 0;
}
