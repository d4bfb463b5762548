// Per-job overhead micro-benchmarks (issue 2): a batch of N empty jobs, and
// fib(n) with every call a task, at a given worker count.
//   WSCHED_BENCH_WORKERS=1,2 build/bench_micro --benchmark_repetitions=5
// Counters: ns_per_job / ns_per_task = wall time / jobs (or tasks).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

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

int empty_job(wsched_ctx *, void *, size_t, void *) { return 0; }

void BM_EmptyBatch(benchmark::State &state)
{
    wsched_pool *pool = make_pool(static_cast<int>(state.range(0)));
    const size_t n = static_cast<size_t>(state.range(1));
    for (auto _ : state) {
        wsched_batch_desc d{};
        d.fn = empty_job;
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

struct Fib {
    int n;
    uint64_t r;
};

void fib_task(wsched_ctx *ctx, void *arg)
{
    Fib *f = static_cast<Fib *>(arg);
    if (f->n < 2) {
        f->r = static_cast<uint64_t>(f->n);
        return;
    }
    Fib a{f->n - 1, 0}, b{f->n - 2, 0};
    wsched_spawn(ctx, fib_task, &a);
    fib_task(ctx, &b);
    wsched_sync(ctx);
    f->r = a.r + b.r;
}

int fib_job(wsched_ctx *ctx, void *arg, size_t, void *slot)
{
    Fib f{*static_cast<int *>(arg), 0};
    fib_task(ctx, &f);
    *static_cast<uint64_t *>(slot) = f.r;
    return 0;
}

uint64_t fib_calls(int n)
{
    // calls(n) = 2 fib(n+1) - 1
    uint64_t a = 0, b = 1;
    for (int i = 0; i < n + 1; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return 2 * a - 1;
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
        static_cast<double>(state.iterations()) * static_cast<double>(fib_calls(n)),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    wsched_pool_destroy(pool);
}

uint64_t fib_serial(int n) { return n < 2 ? static_cast<uint64_t>(n) : fib_serial(n - 1) + fib_serial(n - 2); }

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
        static_cast<double>(state.iterations()) * static_cast<double>(fib_calls(n)),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

} // namespace

// Worker counts come from WSCHED_BENCH_WORKERS (default "1,2"), so the same
// binary runs the 1..16 scaling series on a bigger machine.
int main(int argc, char **argv)
{
    std::vector<int64_t> workers;
    const char *env = std::getenv("WSCHED_BENCH_WORKERS");
    for (const char *p = env && *env ? env : "1,2"; *p;) {
        workers.push_back(std::strtol(p, const_cast<char **>(&p), 10));
        while (*p == ',' || *p == ' ')
            p++;
    }
    benchmark::RegisterBenchmark("BM_EmptyBatch", BM_EmptyBatch)
        ->ArgsProduct({workers, {1000000}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_Fib", BM_Fib)
        ->ArgsProduct({workers, {30}})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_FibSerial", BM_FibSerial)->Arg(30)->Unit(benchmark::kMillisecond);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
