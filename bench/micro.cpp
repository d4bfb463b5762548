// Per-job overhead micro-benchmarks (issue 2): a batch of N empty jobs, and
// fib(n) with every call a task, at a given worker count.
//   WSCHED_BENCH_WORKERS=1,2 build/bench_micro --benchmark_repetitions=5
// Counters: ns_per_job / ns_per_task = wall time / jobs (or tasks).
// The empty job and the fib task are tests/common.h's, the very ones whose
// instructions tools/callgrind.sh counts (tools/overhead.c).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../tests/common.h"
#include "wsched.h"

namespace {

wsched_pool *make_pool(int workers)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = static_cast<unsigned>(workers);
    wsched_pool *pool = nullptr;
    if (int r = wsched_pool_create(&pool, &cfg)) {
        std::fprintf(stderr, "pool: %s\n", wsched_strerror(r));
        std::abort();
    }
    return pool;
}

// Batches of range(1) jobs like `like` (its fn or range_fn, its flags) on
// range(0) workers, submitted and waited for one after the other: ns per job.
void run_batches(benchmark::State &state, const wsched_batch_desc &like)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    const size_t n = static_cast<size_t>(state.range(1));
    for (auto _ : state) {
        wsched_batch_desc d = like;
        d.njobs = n;
        wsched_batch *b;
        if (wsched_submit(pool, &d, &b) != 0 || wsched_wait(b, -1) != 0)
            std::abort();
        wsched_batch_free(b);
    }
    state.counters["ns_per_job"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(n),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    wsched_pool_destroy(pool);
}

void run_batches(benchmark::State &state, wsched_job_fn fn, unsigned flags)
{
    wsched_batch_desc d{};
    d.fn = fn;
    d.flags = flags;
    run_batches(state, d);
}

void BM_EmptyBatch(benchmark::State &state) { run_batches(state, common_nop_job, 0); }

// The same batches as range jobs (wsched_range_fn, the library's grain):
// one call per chunk, one status store per job.
int nop_range(wsched_ctx *, void *, size_t, size_t, void *) { return 0; }

void BM_RangeBatch(benchmark::State &state)
{
    wsched_batch_desc d{};
    d.range_fn = nop_range;
    run_batches(state, d);
}

// Cost of each request-semantics feature on a batch of 100,000 empty jobs
// (2 workers by default): "none" is the plain batch; every other row turns
// one feature on. Unused features cost what "none" costs.
enum Feature { F_NONE, F_FAIL_FAST, F_QUORUM, F_DEADLINE, F_STREAM, F_MAX_PARALLEL,
               F_BACKGROUND, F_ADMISSION, F_COUNT };
const char *feature_name[F_COUNT] = {"none", "fail_fast", "quorum", "deadline", "stream",
                                     "max_parallel_2", "background", "admission"};

void BM_Feature(benchmark::State &state)
{
    const int workers = static_cast<int>(state.range(0));
    const Feature f = static_cast<Feature>(state.range(1));
    const size_t n = 100000;
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = static_cast<unsigned>(workers);
    if (f == F_ADMISSION)
        cfg.max_jobs = 10 * n;
    wsched_pool *pool = nullptr;
    if (wsched_pool_create(&pool, &cfg) != 0)
        std::abort();
    for (auto _ : state) {
        wsched_batch_desc d{};
        d.fn = common_nop_job;
        d.njobs = n;
        switch (f) {
        case F_FAIL_FAST: d.policy = WSCHED_POLICY_FAIL_FAST; break;
        case F_QUORUM: d.policy = WSCHED_POLICY_QUORUM; d.quorum = n; break;
        case F_DEADLINE: d.deadline_ns = wsched_now_ns() + 60000000000ull; break;
        case F_STREAM: d.flags = WSCHED_BATCH_STREAM; break;
        case F_MAX_PARALLEL: d.max_parallel = 2; break;
        case F_BACKGROUND: d.priority = WSCHED_PRIO_BACKGROUND; break;
        default: break;
        }
        wsched_batch *b;
        if (wsched_submit(pool, &d, &b) != 0)
            std::abort();
        if (f == F_STREAM) { // the consumer takes every completion
            size_t idx;
            for (size_t k = 0; k < n; k++)
                if (wsched_next_done(b, -1, &idx) != 0)
                    std::abort();
        }
        if (wsched_wait(b, -1) != 0)
            std::abort();
        wsched_batch_free(b);
    }
    state.SetLabel(feature_name[f]);
    state.counters["ns_per_job"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(n),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    wsched_pool_destroy(pool);
}

COMMON_DEFINE_FIB_TASK(fib_task, COMMON_IGNORE)

int fib_job(wsched_ctx *ctx, void *arg, size_t, void *slot)
{
    common_fib f{*static_cast<int *>(arg), 0};
    fib_task(ctx, &f);
    *static_cast<uint64_t *>(slot) = f.r;
    return 0;
}

void BM_Fib(benchmark::State &state)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    int n = static_cast<int>(state.range(1));
    uint64_t result = 0;
    for (auto _ : state) {
        wsched_batch_desc d{};
        d.fn = fib_job;
        d.arg = &n;
        d.njobs = 1;
        d.slot_size = sizeof(uint64_t);
        wsched_batch *b;
        if (wsched_submit(pool, &d, &b) != 0 || wsched_wait(b, -1) != 0)
            std::abort();
        result = *static_cast<uint64_t *>(wsched_batch_slot(b, 0));
        wsched_batch_free(b);
    }
    state.counters["fib"] = static_cast<double>(result);
    state.counters["ns_per_task"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(common_fib_calls(n)),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    wsched_pool_destroy(pool);
}

COMMON_DEFINE_FIB_SERIAL(fib_serial)

void BM_FibSerial(benchmark::State &state)
{
    int n = static_cast<int>(state.range(0));
    uint64_t r = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(n);
        r = fib_serial(n);
        benchmark::DoNotOptimize(r);
    }
    state.counters["ns_per_task"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(common_fib_calls(n)),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The cost of one wait (issue 9: arm + fire + resume + complete <= 60 ns
// amortised): a batch of N jobs of WSCHED_BATCH_WAITS, each of which arms
// a timer already due (it fires at the wheel's next tick) and returns
// WSCHED_PENDING, then completes when resumed. ns_per_job minus
// BM_WaitNone's (the same batch, no wait) is the wait's cost.
int wait_once_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    if (wsched_resume_kind(ctx) != WSCHED_RESUME_FIRST)
        return 0;
    if (wsched_sleep_until(ctx, 0) != 0)
        std::abort();
    return WSCHED_PENDING;
}

void BM_WaitOnce(benchmark::State &state) { run_batches(state, wait_once_job, WSCHED_BATCH_WAITS); }
void BM_WaitNone(benchmark::State &state) { run_batches(state, common_nop_job, WSCHED_BATCH_WAITS); }

// The counters of the windowed single-job benchmarks (BM_Singles,
// BM_Posts): per job, its time, the allocator calls and the wake-ups
// since the snapshot s0.
static void windowed_counters(benchmark::State &state, wsched_pool *pool,
                              const wsched_pool_stats &s0, size_t n)
{
    wsched_pool_stats s1;
    wsched_pool_get_stats(pool, &s1, sizeof s1);
    double jobs = static_cast<double>(state.iterations()) * static_cast<double>(n);
    state.counters["ns_per_job"] =
        benchmark::Counter(jobs, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["allocs_per_job"] = static_cast<double>(s1.allocs - s0.allocs) / jobs;
    state.counters["wakeups_per_job"] =
        static_cast<double>(s1.total.wakeups - s0.total.wakeups) / jobs;
}

// Single-job submits from one outside thread (issue 10): a batch of one
// empty job per wsched_submit, at most `window` outstanding (a ring of
// handles: the oldest is waited for and freed before the next submit).
// ns_per_job = wall time / jobs, submit, wait and free included.
void BM_Singles(benchmark::State &state)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    const size_t n = static_cast<size_t>(state.range(1)), window = 4096;
    std::vector<wsched_batch *> ring(window, nullptr);
    wsched_pool_stats s0;
    wsched_pool_get_stats(pool, &s0, sizeof s0);
    for (auto _ : state) {
        for (size_t k = 0; k < n; k++) {
            wsched_batch *&slot = ring[k % window];
            if (slot) {
                if (wsched_wait(slot, -1) != 0)
                    std::abort();
                wsched_batch_free(slot);
            }
            wsched_batch_desc d{};
            d.fn = common_nop_job;
            d.njobs = 1;
            if (wsched_submit(pool, &d, &slot) != 0)
                std::abort();
        }
        for (wsched_batch *&b : ring) {
            if (b && wsched_wait(b, -1) != 0)
                std::abort();
            wsched_batch_free(b);
            b = nullptr;
        }
    }
    windowed_counters(state, pool, s0, n);
    wsched_pool_destroy(pool);
}

// BM_Singles with wsched_post: the same window of 4,096 outstanding jobs,
// each in a caller-provided record (a ring of cache-line-aligned records,
// reused once waited for), no batch.
void BM_Posts(benchmark::State &state)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    const size_t n = static_cast<size_t>(state.range(1)), window = 4096;
    struct alignas(64) Rec {
        wsched_job job;
        bool posted;
    };
    std::vector<Rec> ring(window);
    for (Rec &r : ring) {
        r.job = WSCHED_JOB_INIT;
        r.posted = false;
    }
    wsched_pool_stats s0;
    wsched_pool_get_stats(pool, &s0, sizeof s0);
    for (auto _ : state) {
        for (size_t k = 0; k < n; k++) {
            Rec &r = ring[k % window];
            if (r.posted && wsched_job_wait(&r.job, -1) != 0)
                std::abort();
            if (wsched_post(pool, &r.job, common_nop_job, nullptr) != 0)
                std::abort();
            r.posted = true;
        }
        for (Rec &r : ring) {
            if (r.posted && wsched_job_wait(&r.job, -1) != 0)
                std::abort();
            r.posted = false;
        }
    }
    windowed_counters(state, pool, s0, n);
    wsched_pool_destroy(pool);
}

// Round trip of one posted empty job from outside: post, wait.
void BM_PostRoundTrip(benchmark::State &state)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    alignas(64) wsched_job job = WSCHED_JOB_INIT;
    for (auto _ : state) {
        if (wsched_post(pool, &job, common_nop_job, nullptr) != 0 ||
            wsched_job_wait(&job, -1) != 0)
            std::abort();
    }
    wsched_pool_destroy(pool);
}

// Round trip of one empty job from outside: submit, wait, free, one at a
// time (the workers are searching or parked between them).
void BM_RoundTrip(benchmark::State &state)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    wsched_pool_stats s0, s1;
    wsched_pool_get_stats(pool, &s0, sizeof s0);
    for (auto _ : state) {
        wsched_batch_desc d{};
        d.fn = common_nop_job;
        d.njobs = 1;
        wsched_batch *b;
        if (wsched_submit(pool, &d, &b) != 0 || wsched_wait(b, -1) != 0)
            std::abort();
        wsched_batch_free(b);
    }
    wsched_pool_get_stats(pool, &s1, sizeof s1);
    double it = static_cast<double>(state.iterations());
    state.counters["wakeups_per_op"] = static_cast<double>(s1.total.wakeups - s0.total.wakeups) / it;
    state.counters["allocs_per_op"] = static_cast<double>(s1.allocs - s0.allocs) / it;
    wsched_pool_destroy(pool);
}

} // namespace

// Worker counts come from WSCHED_BENCH_WORKERS (default "1,2"), so the same
// binary runs the 1..16 scaling series on a bigger machine.
int main(int argc, char **argv)
{
    const char *env = std::getenv("WSCHED_BENCH_WORKERS");
    long counts[64];
    int ncounts = common_parse_counts(env && *env ? env : "1,2", 1, 65536, counts, 64);
    if (ncounts < 0) {
        std::fprintf(stderr, "bench_micro: WSCHED_BENCH_WORKERS=%s: want worker counts, "
                     "such as 1,2,4 (at most 64)\n", env);
        return 2;
    }
    std::vector<int64_t> workers(counts, counts + ncounts);
    benchmark::RegisterBenchmark("BM_EmptyBatch", BM_EmptyBatch)
        ->ArgsProduct({workers, {1000000, 10000000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_RangeBatch", BM_RangeBatch)
        ->ArgsProduct({workers, {1000000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_Fib", BM_Fib)
        ->ArgsProduct({workers, {30}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_FibSerial", BM_FibSerial)->Arg(30)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_WaitOnce", BM_WaitOnce)
        ->ArgsProduct({workers, {100000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_WaitNone", BM_WaitNone)
        ->ArgsProduct({workers, {100000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_Singles", BM_Singles)
        ->ArgsProduct({workers, {1000000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_RoundTrip", BM_RoundTrip)
        ->ArgsProduct({workers})->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_Posts", BM_Posts)
        ->ArgsProduct({workers, {1000000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_PostRoundTrip", BM_PostRoundTrip)
        ->ArgsProduct({workers})->UseRealTime()->Unit(benchmark::kMicrosecond);
    std::vector<int64_t> features;
    for (int f = 0; f < F_COUNT; f++)
        features.push_back(f);
    benchmark::RegisterBenchmark("BM_Feature", BM_Feature)
        ->ArgsProduct({{workers.back()}, features})->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
