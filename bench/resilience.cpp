// The costs of the downstream policies (issue 11's targets), through the
// public API: the breaker's acquire when closed, the retry budget's check,
// the retry decision, GCRA; uncontended (1 thread) and contended (2+
// threads on one downstream); and the per-job cost of a downstream in a
// batch of empty jobs.
//   build/bench_resilience --benchmark_repetitions=5
// ns_per_op counters are wall time / operations of that thread.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "../tests/common.h"
#include "wsched.h"

namespace {

wsched_downstream *make_ds(const wsched_downstream_config &c)
{
    wsched_downstream *ds = nullptr;
    if (int r = wsched_downstream_create(&ds, &c)) {
        std::fprintf(stderr, "downstream: %s\n", wsched_strerror(r));
        std::abort();
    }
    return ds;
}

wsched_downstream_config breaker_cfg()
{
    wsched_downstream_config c{};
    c.breaker.failure_rate_pct = 50;
    c.breaker.min_calls = 20;
    c.breaker.window_calls = 100;
    c.breaker.open_ns = 1000000000ull;
    return c;
}

// The batch benchmarks' pool: 2 workers.
wsched_pool *make_pool2()
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    wsched_pool *pool = nullptr;
    if (wsched_pool_create(&pool, &cfg))
        std::abort();
    return pool;
}

// One downstream per benchmark, shared by its threads.
wsched_downstream *shared_ds;

void setup_breaker(const benchmark::State &) { shared_ds = make_ds(breaker_cfg()); }
void teardown(const benchmark::State &) { wsched_downstream_destroy(shared_ds); }

void BM_BreakerAcquireClosed(benchmark::State &state)
{
    wsched_permit p;
    for (auto _ : state) {
        int r = wsched_breaker_acquire(shared_ds, &p);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(p);
    }
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

// Acquire and release with a success: the window's CAS per outcome.
void BM_BreakerRoundClosed(benchmark::State &state)
{
    wsched_permit p;
    for (auto _ : state) {
        wsched_breaker_acquire(shared_ds, &p);
        wsched_breaker_release(shared_ds, p, 0);
    }
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

void setup_budget(const benchmark::State &)
{
    wsched_downstream_config c{};
    c.retry.max_attempts = 3;
    c.retry.base_ns = 1000;
    c.budget.max_tokens = 100;
    c.budget.ratio_milli = 100;
    shared_ds = make_ds(c);
}

void BM_BudgetAllows(benchmark::State &state)
{
    for (auto _ : state) {
        int r = wsched_budget_allows(shared_ds);
        benchmark::DoNotOptimize(r);
    }
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

// The whole decision after a retryable failure: the budget's update
// (and, alternately, a success's refill, so it stays above half), the
// retryable check, the jitter draw, the clock for the deadline check.
void BM_RetryDecide(benchmark::State &state)
{
    uint64_t prev = 0, delay = 0, key = 0;
    for (auto _ : state) {
        int r = wsched_retry_decide(shared_ds, key++, 1, (key & 1) ? -EIO : 0,
                                    UINT64_MAX - 1, &prev, &delay);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(delay);
        prev = 0;
    }
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

void setup_gcra(const benchmark::State &)
{
    wsched_downstream_config c{};
    c.limit.rate_per_s = 1000000000ull; // one per ns: every call conforms
    c.limit.burst = 1ull << 32;
    shared_ds = make_ds(c);
}

// GCRA with the caller's clock reading (one CAS), and with its own.
void BM_GcraNow(benchmark::State &state)
{
    uint64_t now = 1ull << 40;
    for (auto _ : state) {
        int64_t r = wsched_limit_acquire(shared_ds, now, 0);
        benchmark::DoNotOptimize(r);
        now += 2;
    }
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

void BM_GcraClock(benchmark::State &state)
{
    for (auto _ : state) {
        int64_t r = wsched_limit_acquire(shared_ds, 0, 0);
        benchmark::DoNotOptimize(r);
    }
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

void BM_Clock(benchmark::State &state)
{
    for (auto _ : state)
        benchmark::DoNotOptimize(wsched_now_ns());
    state.counters["ns_per_op"] = benchmark::Counter(
        static_cast<double>(state.iterations()), benchmark::Counter::kIsRate |
                                                     benchmark::Counter::kInvert);
}

// A batch of range(1) empty jobs on 2 workers: plain (mode 0), with
// WSCHED_BATCH_WAITS (1), naming a downstream without policies (2), with
// a closed breaker and a budget (3): ns per job.
void BM_DownstreamBatch(benchmark::State &state)
{
    wsched_pool *pool = make_pool2();
    wsched_downstream *ds = nullptr;
    const int mode = static_cast<int>(state.range(0));
    if (mode == 2)
        ds = make_ds(wsched_downstream_config{});
    if (mode == 3) {
        wsched_downstream_config c = breaker_cfg();
        c.retry.max_attempts = 3;
        c.retry.base_ns = 1000;
        c.budget.max_tokens = 100;
        c.budget.ratio_milli = 100;
        ds = make_ds(c);
    }
    const size_t n = static_cast<size_t>(state.range(1));
    for (auto _ : state) {
        wsched_batch_desc d{};
        d.fn = common_nop_job;
        d.njobs = n;
        d.flags = mode == 1 ? WSCHED_BATCH_WAITS : 0;
        d.downstream = ds;
        wsched_batch *b = nullptr;
        if (wsched_submit(pool, &d, &b) || wsched_wait(b, -1))
            std::abort();
        wsched_batch_free(b);
    }
    state.counters["ns_per_job"] = benchmark::Counter(
        static_cast<double>(state.iterations() * static_cast<int64_t>(n)),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert); // (real time: UseRealTime)
    wsched_pool_destroy(pool);
    if (ds)
        wsched_downstream_destroy(ds);
}

// Single-flight: a batch of range(0) jobs of one key on 2 workers. The
// leader's call is a 2 ms timer wait; every other job joins it and gets
// its slot. ns_per_job = (wall time - 2 ms) / jobs: a join, the leader's
// delivery (claim, copy, wake) and the joiner's resumption, all in.
struct flight_slot {
    uint64_t value;
    int state;
};

uint64_t one_key(void *, void *, size_t) { return 1; }

int flight_job(wsched_ctx *ctx, void *, size_t, void *slot)
{
    auto *s = static_cast<flight_slot *>(slot);
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        s->state = 1;
        if (wsched_sleep_until(ctx, wsched_now_ns() + 2000000) != 0)
            std::abort();
        return WSCHED_PENDING;
    }
    s->value = 42;
    return 0;
}

void BM_FlightJoin(benchmark::State &state)
{
    wsched_pool *pool = make_pool2();
    wsched_downstream_config c{};
    c.flight_key = one_key;
    wsched_downstream *ds = make_ds(c);
    const size_t n = static_cast<size_t>(state.range(0));
    double extra_ns = 0;
    for (auto _ : state) {
        wsched_batch_desc d{};
        d.fn = flight_job;
        d.njobs = n;
        d.slot_size = sizeof(flight_slot);
        d.downstream = ds;
        wsched_batch *b = nullptr;
        uint64_t t0 = wsched_now_ns();
        if (wsched_submit(pool, &d, &b) || wsched_wait(b, -1))
            std::abort();
        extra_ns += static_cast<double>(wsched_now_ns() - t0) - 2e6;
        wsched_batch_free(b);
    }
    wsched_downstream_stats s;
    wsched_downstream_get_stats(ds, &s, sizeof s);
    state.counters["ns_per_job"] =
        extra_ns / static_cast<double>(state.iterations()) / static_cast<double>(n);
    state.counters["executions_per_batch"] =
        static_cast<double>(s.flights) / static_cast<double>(state.iterations());
    wsched_pool_destroy(pool);
    wsched_downstream_destroy(ds);
}

// The join alone: a leader of key 1 is pending on a waker, then a batch
// of range(1) jobs of key 1 is submitted to a pool of range(0) workers and
// timed until the downstream counts all of them joined (the bench thread
// polls the counters every 20 us, an error of < 0.1 us per job at 65,536
// jobs; a busy poll would steal the counters' lines from the joins):
// join_ns is that time per job, which includes the
// batch's submit and each job's start as a job of a downstream batch (the
// same batch without flights: BM_DownstreamBatch/2). Then the leader is
// woken and deliver_ns is the time until the joiners' batch is complete,
// per job: the leader's claim, copy and wake of each, and its resumption.
// plain_ns: the same batch of empty jobs on a downstream without policies,
// submitted to the same pool right after, until complete, per job: its
// submit, start, run and completion; join_extra_ns = join_ns - plain_ns,
// the join's own cost (it makes no run and no completion of its own).
wsched_waker leader_waker; // published by leader_armed
std::atomic<bool> leader_armed;

int waker_leader(wsched_ctx *ctx, void *, size_t, void *slot)
{
    auto *s = static_cast<flight_slot *>(slot);
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        wsched_waker wk;
        if (wsched_waker_arm(ctx, 0, &wk) != 0)
            std::abort();
        leader_waker = wk;
        leader_armed.store(true, std::memory_order_release); // the handle before the flag
        return WSCHED_PENDING;
    }
    s->value = 42;
    return 0;
}

uint64_t joined_of(wsched_downstream *ds)
{
    wsched_downstream_stats s;
    wsched_downstream_get_stats(ds, &s, sizeof s);
    return s.joined;
}

void BM_FlightJoinAlone(benchmark::State &state)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = static_cast<unsigned>(state.range(0));
    wsched_pool *pool = nullptr;
    if (wsched_pool_create(&pool, &cfg))
        std::abort();
    wsched_downstream_config c{};
    c.flight_key = one_key;
    wsched_downstream *ds = make_ds(c);
    wsched_downstream *plain = make_ds(wsched_downstream_config{});
    const size_t n = static_cast<size_t>(state.range(1));
    double join_ns = 0, deliver_ns = 0, plain_ns = 0;
    for (auto _ : state) {
        leader_armed.store(false, std::memory_order_relaxed);
        wsched_batch_desc d{};
        d.fn = waker_leader;
        d.njobs = 1;
        d.slot_size = sizeof(flight_slot);
        d.downstream = ds;
        wsched_batch *lb = nullptr;
        if (wsched_submit(pool, &d, &lb))
            std::abort();
        while (!leader_armed.load(std::memory_order_acquire))
            ;
        uint64_t before = joined_of(ds);
        d.njobs = n;
        wsched_batch *jb = nullptr;
        uint64_t t0 = wsched_now_ns();
        if (wsched_submit(pool, &d, &jb))
            std::abort();
        while (joined_of(ds) - before < n) // (rarely: a poll's loads would
            std::this_thread::sleep_for(std::chrono::microseconds(20)); // slow the RMWs it reads)
        uint64_t t1 = wsched_now_ns();
        if (wsched_wake(leader_waker, 1) || wsched_wait(jb, -1))
            std::abort();
        uint64_t t2 = wsched_now_ns();
        join_ns += static_cast<double>(t1 - t0);
        deliver_ns += static_cast<double>(t2 - t1);
        if (wsched_wait(lb, -1))
            std::abort();
        wsched_batch_free(jb);
        wsched_batch_free(lb);
        wsched_batch_desc pd{};
        pd.fn = common_nop_job;
        pd.njobs = n;
        pd.slot_size = sizeof(flight_slot);
        pd.downstream = plain;
        wsched_batch *pb = nullptr;
        uint64_t t3 = wsched_now_ns();
        if (wsched_submit(pool, &pd, &pb) || wsched_wait(pb, -1))
            std::abort();
        plain_ns += static_cast<double>(wsched_now_ns() - t3);
        wsched_batch_free(pb);
    }
    double per = static_cast<double>(state.iterations()) * static_cast<double>(n);
    state.counters["join_ns"] = join_ns / per;
    state.counters["deliver_ns"] = deliver_ns / per;
    state.counters["plain_ns"] = plain_ns / per;
    state.counters["join_extra_ns"] = (join_ns - plain_ns) / per;
    wsched_pool_destroy(pool);
    wsched_downstream_destroy(ds);
    wsched_downstream_destroy(plain);
}

} // namespace

BENCHMARK(BM_Clock);
BENCHMARK(BM_BreakerAcquireClosed)->Setup(setup_breaker)->Teardown(teardown)->Threads(1)->Threads(2);
BENCHMARK(BM_BreakerRoundClosed)->Setup(setup_breaker)->Teardown(teardown)->Threads(1)->Threads(2);
BENCHMARK(BM_BudgetAllows)->Setup(setup_budget)->Teardown(teardown)->Threads(1)->Threads(2);
BENCHMARK(BM_RetryDecide)->Setup(setup_budget)->Teardown(teardown)->Threads(1)->Threads(2);
BENCHMARK(BM_GcraNow)->Setup(setup_gcra)->Teardown(teardown)->Threads(1)->Threads(2);
BENCHMARK(BM_GcraClock)->Setup(setup_gcra)->Teardown(teardown)->Threads(1);
BENCHMARK(BM_DownstreamBatch)->ArgsProduct({{0, 1, 2, 3}, {64, 4096}})->UseRealTime();

BENCHMARK(BM_FlightJoin)->Arg(1000)->Arg(4096)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FlightJoinAlone)->ArgsProduct({{1, 2}, {4096, 65536}})->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
