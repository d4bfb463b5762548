// Micro-benchmarks of the timing wheel (src/timer.h), issue 9's targets:
// insert <= 20 ns, owner cancel <= 10 ns, expiry <= 15 ns per timer, flat
// from 10^3 to 10^6 armed timers, and the timeout pattern where most timers
// are cancelled before they fire. One thread: the wheel is owner-only.
//
//   build/bench_timer [--benchmark_filter=...]
//
// Each figure is ns per operation (counter ns_per_op), the phase measured
// alone with manual timing; setup and teardown are outside it.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

extern "C" {
#include "timer.h"
}

namespace {

struct Timers {
    std::vector<timer> t;
    std::vector<uint64_t> due;
    timer_wheel w;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    uint64_t now = 1000000000ull;

    explicit Timers(size_t n) : t(n), due(n)
    {
        timer_wheel_init(&w, now);
        for (auto &x : t)
            timer_init(&x);
    }
    uint64_t rnd()
    {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        return rng;
    }
    // A timeout: 1 ms .. 10 s ahead (levels 2 to 7).
    uint64_t timeout() { return now + 1000000 + rnd() % 10000000000ull; }
};

// Run the measured phase f, report it as the iteration's manual time and
// add it to *timed.
template <class F> void measured(benchmark::State &state, double *timed, F f)
{
    auto a = std::chrono::steady_clock::now();
    f();
    auto b = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(b - a).count();
    state.SetIterationTime(secs);
    *timed += secs;
}

// Google Benchmark divides rate counters by CPU time, setup included: the
// measured phases' own time is summed here instead.
void count_ops(benchmark::State &state, int64_t ops, double secs)
{
    state.counters["ns_per_op"] = ops ? secs * 1e9 / static_cast<double>(ops) : 0.0;
}

void fire_noop(void *ctx, timer *t)
{
    (void)t;
    ++*static_cast<size_t *>(ctx);
}

// Arm N timeouts into a wheel that holds none, N at a time.
void BM_TimerArm(benchmark::State &state)
{
    size_t n = static_cast<size_t>(state.range(0));
    Timers T(n);
    for (size_t i = 0; i < n; i++)
        T.due[i] = T.timeout();
    int64_t ops = 0;
    double timed = 0;
    for (auto _ : state) {
        measured(state, &timed, [&] {
            for (size_t i = 0; i < n; i++)
                timer_arm(&T.w, &T.t[i], T.due[i]);
        });
        for (size_t i = 0; i < n; i++)
            timer_cancel(&T.w, &T.t[i]);
        ops += static_cast<int64_t>(n);
    }
    count_ops(state, ops, timed);
}

// Cancel N armed timeouts, in an order unrelated to arming.
void BM_TimerCancel(benchmark::State &state)
{
    size_t n = static_cast<size_t>(state.range(0));
    Timers T(n);
    std::vector<uint32_t> order(n);
    for (size_t i = 0; i < n; i++)
        order[i] = static_cast<uint32_t>(i);
    for (size_t i = n; i > 1; i--)
        std::swap(order[i - 1], order[T.rnd() % i]);
    int64_t ops = 0;
    double timed = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < n; i++)
            timer_arm(&T.w, &T.t[i], T.timeout());
        measured(state, &timed, [&] {
            for (size_t i = 0; i < n; i++)
                timer_cancel(&T.w, &T.t[order[i]]);
        });
        ops += static_cast<int64_t>(n);
    }
    count_ops(state, ops, timed);
}

// N timers due over the next 100 ms, the clock moved in 100 us steps (a
// worker that looks every 100 us) until all fired: the cost per expired
// timer, empty steps included.
void BM_TimerExpire(benchmark::State &state)
{
    size_t n = static_cast<size_t>(state.range(0));
    Timers T(n);
    int64_t ops = 0;
    double timed = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < n; i++)
            timer_arm(&T.w, &T.t[i], T.now + 1 + T.rnd() % 100000000ull);
        size_t fired = 0;
        measured(state, &timed, [&] {
            while (fired < n) {
                T.now += 100000;
                timer_wheel_advance(&T.w, T.now, fire_noop, &fired);
            }
        });
        ops += static_cast<int64_t>(n);
    }
    count_ops(state, ops, timed);
}

// Timeouts that are cancelled before they fire (the common case): N armed,
// each operation cancels one and arms a fresh one, the clock moving 1 us per
// operation; a few expire along the way. ns per cancel + arm pair.
void BM_TimerTimeoutChurn(benchmark::State &state)
{
    size_t n = static_cast<size_t>(state.range(0));
    Timers T(n);
    for (size_t i = 0; i < n; i++)
        timer_arm(&T.w, &T.t[i], T.timeout());
    size_t fired = 0;
    int64_t ops = 0;
    double timed = 0;
    for (auto _ : state) {
        measured(state, &timed, [&] {
            for (int k = 0; k < 4096; k++) {
                timer *x = &T.t[T.rnd() % n];
                timer_cancel(&T.w, x);
                timer_arm(&T.w, x, T.timeout());
                T.now += 1000;
                if ((k & 63) == 0)
                    timer_wheel_advance(&T.w, T.now, fire_noop, &fired);
            }
        });
        ops += 4096;
    }
    count_ops(state, ops, timed);
    state.counters["fired"] = static_cast<double>(fired);
}

} // namespace

BENCHMARK(BM_TimerArm)->RangeMultiplier(10)->Range(1000, 1000000)->UseManualTime();
BENCHMARK(BM_TimerCancel)->RangeMultiplier(10)->Range(1000, 1000000)->UseManualTime();
BENCHMARK(BM_TimerExpire)->RangeMultiplier(10)->Range(1000, 1000000)->UseManualTime();
BENCHMARK(BM_TimerTimeoutChurn)->RangeMultiplier(10)->Range(1000, 1000000)->UseManualTime();
BENCHMARK_MAIN();
