/*
 * The workloads every design runs, in one place, so that the designs differ
 * only in how they schedule: the job body and its calibration, the request
 * plans (how many jobs per request, how long each), the result records and
 * their checksum, percentiles, and the serial kernels of the fork-join
 * workloads (fib, UTS).
 *
 * Everything here runs identically in every design. A job is
 *     value = spin(seed(r, i), iters[r, i]);  done_ns = common_now_ns();
 * and writes {value, done_ns} to its slot (or appends it as a record). The
 * request's completion time is the latest done_ns among its jobs ("a request
 * completes when all its slots are filled"), so latencies are measured the same
 * way whatever the design's way of waiting.
 */
#ifndef WSCHED_BENCH_WORKLOAD_H
#define WSCHED_BENCH_WORKLOAD_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

/* The clock (common_now_ns), the mixer (common_mix64, also the checksum
 * hash), the fib helpers: shared with the tests and tools/. */
#include "../tests/common.h"

namespace wb {

/* ------------------------------------------------------------ randomness */

/* Deterministic generator (splitmix64); every plan is drawn from a fixed seed. */
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() { return common_splitmix64(&s); }
    /* Uniform in [0, n); the modulo bias is irrelevant for n << 2^64. */
    uint32_t below(uint32_t n) { return (uint32_t)(next() % n); }
    /* Uniform in (0, 1]. */
    double unit() { return ((next() >> 11) + 1) * (1.0 / 9007199254740992.0); }
};

/* ------------------------------------------------------------- the job */

/*
 * The CPU task: `iters` rounds of a multiply-xorshift chain. Each round
 * depends on the last, so it cannot be vectorised or folded, and it touches
 * no memory. Out of line (workload.cpp) so every design runs the same machine
 * code.
 */
uint64_t spin(uint64_t x, uint32_t iters);

/*
 * Calibration: spin iterations per nanosecond, and the cost of the timestamp a
 * job takes after spinning. A job "of X ns" spins (X - stamp_ns) worth of
 * iterations, so that the whole body takes about X ns. Read from the
 * environment variable WSCHED_BENCH_CALIB ("iters_per_ns:stamp_ns", printed by
 * `wsched_bench --calibrate`) so that every process of one report runs the
 * very same iteration counts (and so the same checksums); measured on first
 * use otherwise.
 */
struct Calib {
    double iters_per_ns;
    double stamp_ns;
    bool from_env;
};
const Calib &calib();
Calib calib_measure();
std::string calib_string(const Calib &c);
uint32_t iters_for_ns(double ns);

/* What a job leaves in its slot. */
struct Slot {
    uint64_t value;
    uint64_t done_ns;
};

/* What a job appends to a shared array in the append designs. */
struct Record {
    uint32_t r, i;
    uint64_t value;
    uint64_t done_ns;
};

/* ----------------------------------------------------------------- plans */

struct PlanSpec {
    uint32_t requests = 1000;
    uint32_t jmin = 10, jmax = 20; /* jobs per request, uniform, inclusive */
    double job_ns = 1000;
    double tail_frac = 0;    /* fraction of jobs that are heavy ... */
    double tail_mult = 100;  /* ... and this many times longer */
    uint64_t seed = 0x5eed0001;
    bool expect = true;      /* compute the expected checksum (runs every job once) */
};

struct Request {
    uint32_t first; /* index of its first job in Plan::iters */
    uint32_t njobs;
};

struct Plan {
    PlanSpec spec;
    std::vector<Request> req;
    std::vector<uint32_t> iters; /* per job, requests back to back */
    uint64_t total_jobs = 0;
    uint64_t expected = 0;       /* checksum of a correct run */
    double mean_job_ns = 0;      /* intended, from the spec */
    uint32_t nreq() const { return (uint32_t)req.size(); }
};

Plan plan_make(const PlanSpec &spec);
/* A process-wide cache of plans, keyed by spec: a plan (and its expected
 * checksum) is built once per process. Not thread-safe: call from the
 * benchmark thread. */
const Plan &plan_get(const PlanSpec &spec);

inline uint64_t job_seed(const Plan &p, uint32_t r, uint32_t i)
{
    return common_mix64(p.spec.seed ^ ((uint64_t)r << 32 | i));
}

/* The job body, identical in every design. */
inline void run_job(const Plan &p, uint32_t r, uint32_t i, Slot *out)
{
    out->value = spin(job_seed(p, r, i), p.iters[p.req[r].first + i]);
    out->done_ns = common_now_ns();
}

/* One job's share of the checksum: order-independent (a wrapping sum), and it
 * binds the value to its (request, index), so a result in the wrong slot, a
 * lost one or a duplicate all change the sum. */
inline uint64_t contrib(uint32_t r, uint32_t i, uint64_t value)
{
    return common_mix64(value ^ ((uint64_t)r << 32 | i) ^ 0xc0ffee);
}

/* ------------------------------------------------------------- results */

/*
 * Where a round's results go. Slot designs write slots[first + i] (input
 * order); append designs append records under their mutex. In tracking mode
 * (open loop) every job also counts its request down, and the last one stamps
 * the completion and wakes whoever waits on remaining[r].
 */
struct Results {
    const Plan *plan = nullptr;
    bool use_records = false;
    std::vector<Slot> slots;
    std::vector<Record> records;
    size_t nrecords = 0; /* guarded by the design's append mutex */

    bool track = false;
    std::unique_ptr<std::atomic<uint32_t>[]> remaining;
    std::vector<uint64_t> done_ns;
    std::atomic<int64_t> inflight{0};

    void prepare(const Plan &p, bool records, bool tracking);
    void reset(); /* zero everything before a round (not timed) */

    inline void finish(uint32_t r)
    {
        if (!track)
            return;
        if (remaining[r].fetch_sub(1, std::memory_order_acq_rel) == 1) {
            done_ns[r] = common_now_ns();
            inflight.fetch_sub(1, std::memory_order_relaxed);
            remaining[r].notify_all();
        }
    }
    /* Wait (futex) until request r has completed: tracking mode only. */
    void wait_done(uint32_t r);
};

struct Tally {
    uint64_t checksum = 0;
    uint64_t jobs = 0;
    bool ok = false;
};

/* Checksum a round, and append each request's completion latency in µs to
 * *lat when lat is not NULL: measured from arrivals[r] when arrivals is given,
 * from t0 (all requests arriving at once) otherwise. */
Tally tally(const Plan &p, const Results &res, uint64_t t0, std::vector<double> *lat,
            const uint64_t *arrivals = nullptr);

/* ---------------------------------------------------------- percentiles */

struct Pct {
    double p50 = 0, p90 = 0, p99 = 0, p999 = 0, mean = 0, max = 0;
    size_t n = 0;
};
/* Nearest-rank percentiles; sorts v. */
Pct percentiles(std::vector<double> &v);

/* ---------------------------------------------------- fork-join kernels */

/* fib(n) with every call a task: the serial twin (out of line, so that
 * every design's baseline runs the same machine code). The number of calls a
 * run makes (the "tasks" of ns/task) is common_fib_calls(n). */
uint64_t fib_serial(int n);

/*
 * UTS-style binomial tree: the root has b0 children; every other node has m
 * children with probability q, else none (q*m < 1 keeps the tree finite). A
 * node's id is a hash of its parent's id and its rank, and its child count a
 * hash of its id, so the tree is fixed by the seed. Each node does node_iters
 * rounds of spin() as its work.
 */
struct UtsSpec {
    uint32_t b0 = 2000;
    uint32_t m = 8;
    double q = 0.12375; /* q*m = 0.99: subtrees of ~100 nodes, heavy-tailed */
    uint32_t node_iters = 16;
    uint64_t seed = 0x5eed0002;
};
struct UtsOut {
    uint64_t nodes = 0;
    uint64_t sum = 0;
};
inline uint32_t uts_children(const UtsSpec &s, uint64_t id, bool root)
{
    if (root)
        return s.b0;
    uint64_t threshold = (uint64_t)(s.q * 18446744073709551616.0);
    return common_mix64(id ^ s.seed) < threshold ? s.m : 0;
}
inline uint64_t uts_child(uint64_t id, uint32_t k) { return common_mix64(id * 31 + k + 1); }
inline uint64_t uts_root(const UtsSpec &s) { return common_mix64(s.seed); }
/* A node's own work and share of the checksum. */
inline uint64_t uts_work(const UtsSpec &s, uint64_t id) { return spin(id, s.node_iters); }
UtsOut uts_serial(const UtsSpec &s);
/* Cached per process like plans. */
const UtsOut &uts_expected(const UtsSpec &s);

/* Empty jobs. Where a scheduler calls its job through a function pointer
 * anyway (wsched, the textbook pool, a thread), the job is an empty function.
 * Where a peer's job is a lambda the compiler could inline into a loop and
 * then delete (TBB, OpenMP, serial), the body calls noop_ptr, an opaque
 * pointer to an empty function: one indirect call per job in every design.
 * count_job is the twin used by the untimed verification round. */
void noop_job();
extern void (*volatile noop_ptr)();
inline void count_job(std::atomic<uint64_t> *c) { c->fetch_add(1, std::memory_order_relaxed); }

} /* namespace wb */

#endif
