/*
 * wsched_bench: the benchmark suite (Google Benchmark). Every cell is
 *     <workload>/<variant>/<design>/workers:<N>
 * Fan-out comes in three models: `fanout` (client threads submit the requests
 * and wait for them: the scenario; wsched, mutex, tpj, tbb, serial),
 * `fanout-1c` (one client thread submits all of them, then waits for each in
 * order: wsched, mutex, tbb) and `fanout-tasks` (each request is a task
 * inside the scheduler that spawns its jobs and waits: wsched, omp, tbb).
 * Serial's `fanout` cell is the baseline of all three. A fan-out cell runs
 * --warmup rounds untimed in the same process first (steady state), or none
 * and one timed round with --first-burst (the pool's first burst).
 * (serial is registered at workers:1, tpj at workers:0 = unbounded) and
 * reports its wall time (manual timing of exactly the work), the process CPU
 * time, and counters: ns per job or task, jobs/s, latency percentiles where
 * requests are involved, peak RSS of the cell, threads the design created,
 * the checksum and whether it matched (ok).
 *
 * Options of our own (the rest go to Google Benchmark):
 *   --short               CI sizes (see Config)
 *   --workers=1,2         worker counts (default: 1, 2, 4, ... up to the CPUs)
 *   --clients=4           client threads submitting the fan-out requests
 *   --requests=1000       requests per fan-out round
 *   --warmup=3            untimed fan-out rounds before the timed ones
 *   --first-burst         fan-out cells: no warm-up, one timed round, once
 *   --singles-jobs=N      jobs of the singles cell (10^7; --short 2*10^5)
 *   --designs=a,b         designs to register (default: all compiled in)
 *   --no-pin              wsched pools with WSCHED_POOL_NO_PIN
 *   --reserve=N           wsched pools wsched_reserve N request-shaped batches
 *   --calibrate           print the calibration string for WSCHED_BENCH_CALIB
 *   --list-designs        print the designs compiled in
 * One process per design and workload keeps the figures of one cell from
 * polluting another's (allocator state, lazily started runtime threads): see
 * report.sh.
 */
#include <benchmark/benchmark.h>

#include "design.h"
#include "procstat.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace wb {
namespace {

struct Config {
    bool short_mode = false;
    std::vector<unsigned> workers;
    unsigned clients = 4;
    uint32_t requests = 1000;
    std::vector<std::string> designs;
    bool no_pin = false;
    size_t reserve = 0;
    unsigned warmup = 3;
    bool first_burst = false;

    /* Sizes; --short shrinks them. */
    std::vector<size_t> batches = {1, 16, 1000, 1000000};
    int fib_n = 30;
    UtsSpec uts;
    size_t slot_jobs = 256;
    unsigned slot_writes = 2000;
    double idle_s = 5;
    uint32_t light_requests = 2000;
    double light_period_ns = 1e6;
    uint64_t singles_jobs = 0; /* 0: 10^7, or 2*10^5 with --short */
    size_t singles_ring = 4096;
};
Config cfg;

uint64_t fold48(uint64_t x) { return (x ^ (x >> 48)) & ((1ull << 48) - 1); }

/* The per-cell figures that do not depend on the workload: peak RSS since
 * the cell started (and its rise over the RSS at the start), threads created
 * by the design, and the most counted threads alive at once. */
class Probe {
public:
    Probe()
    {
        wbp_rss_peak_reset();
        rss0_ = wbp_rss_now_kb();
        wbp_threads_peak_reset();
        created0_ = wbp_threads_created();
    }
    void report(benchmark::State &st) const
    {
        long peak = wbp_rss_peak_kb();
        st.counters["rss_peak_kb"] = (double)peak;
        st.counters["rss_delta_kb"] = (double)(peak - rss0_);
        /* Not "threads": Google Benchmark's JSON has a field of that name. */
        st.counters["threads_created"] = (double)(wbp_threads_created() - created0_);
        st.counters["threads_peak"] = (double)wbp_threads_peak();
    }

private:
    long rss0_;
    uint64_t created0_;
};

std::unique_ptr<Design> start(benchmark::State &st, const std::string &name, unsigned workers,
                              const DesignOpts &o = DesignOpts())
{
    DesignOpts opts = o;
    opts.no_pin = cfg.no_pin;
    opts.reserve = cfg.reserve;
    auto d = make_design(name, workers ? workers : 1, opts);
    if (!d) {
        st.SkipWithError("design not compiled in");
        return nullptr;
    }
    if (d->failed()) {
        st.SkipWithError(d->error().c_str());
        return nullptr;
    }
    return d;
}

/* Common tail of a cell: process figures, checksum, verdict. */
void finish(benchmark::State &st, const Design &d, const Probe &probe, bool ok,
            uint64_t checksum)
{
    probe.report(st);
    st.counters["checksum"] = (double)fold48(checksum);
    st.counters["ok"] = ok ? 1 : 0;
    std::vector<std::pair<std::string, double>> extra;
    d.counters(extra);
    for (auto &kv : extra)
        st.counters[kv.first] = kv.second;
    if (d.failed())
        st.SkipWithError(d.error().c_str());
    else if (!ok)
        st.SkipWithError("wrong results (checksum or job count mismatch)");
}

void put_latency(benchmark::State &st, std::vector<double> &lat)
{
    Pct pc = percentiles(lat);
    st.counters["p50_us"] = pc.p50;
    st.counters["p99_us"] = pc.p99;
    st.counters["p999_us"] = pc.p999;
    st.counters["mean_us"] = pc.mean;
}

/* ---------------------------------------------------------------- cells */

long minflt_now()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* The fan-out models: client threads (cfg.clients of them), one client
 * thread, or tasks inside the scheduler. */
enum class Model { clients, one_client, tasks };

void bm_fanout(benchmark::State &st, std::string design, unsigned workers, PlanSpec spec,
               Model model)
{
    const bool tasks = model == Model::tasks;
    const Plan &p = plan_get(spec);
    Probe probe;
    DesignOpts opts;
    opts.external_only = !tasks;
    auto d = start(st, design, workers, opts);
    if (!d)
        return;
    Results res;
    res.prepare(p, d->uses_records(), d->needs_tracking());
    d->prepare(p, res);
    std::unique_ptr<ClientGroup> clients;
    if (!tasks && d->uses_clients())
        clients = std::make_unique<ClientGroup>(model == Model::one_client ? 1 : cfg.clients);
    auto round = [&](Span *s) {
        res.reset();
        return tasks ? d->fanout_tasks(p, res, s) : d->fanout(p, res, clients.get(), s);
    };
    std::vector<double> lat;
    uint64_t total_ns = 0, rounds = 0, sum = 0;
    bool ok = true;
    /* Steady state: cfg.warmup whole rounds, untimed and checked, in this
     * process and on this pool before the timed ones (the pool's batch
     * cache, the allocator's arenas and a runtime's lazily started threads
     * reach their working size). With --first-burst none: the timed round
     * is the first the pool ever runs. */
    for (unsigned k = 0; k < (cfg.first_burst ? 0 : cfg.warmup); k++) {
        Span s;
        if (!round(&s)) {
            st.SkipWithError("this model is not supported by the design");
            return;
        }
        Tally t = tally(p, res, s.t0, nullptr);
        ok = ok && t.ok;
    }
    /* Memory cost of the timed rounds: minor page faults of the process
     * (first touches of fresh pages, whoever takes them) and the design's
     * allocator calls where it counts them. */
    long minflt = 0;
    uint64_t allocs = 0, a0 = 0, a1 = 0;
    bool counts_allocs = d->alloc_calls(&a0);
    for (auto _ : st) {
        Span s;
        long f0 = minflt_now();
        counts_allocs = counts_allocs && d->alloc_calls(&a0);
        bool ran = round(&s);
        minflt += minflt_now() - f0;
        counts_allocs = counts_allocs && d->alloc_calls(&a1);
        allocs += a1 - a0;
        if (!ran) {
            st.SkipWithError("this model is not supported by the design");
            break;
        }
        st.SetIterationTime((double)(s.t1 - s.t0) / 1e9);
        total_ns += s.t1 - s.t0;
        rounds++;
        Tally t = tally(p, res, s.t0, &lat);
        ok = ok && t.ok;
        sum = t.checksum;
        if (d->failed()) {
            st.SkipWithError(d->error().c_str());
            break;
        }
    }
    double ns_per_job = rounds ? (double)total_ns / ((double)rounds * (double)p.total_jobs) : 0;
    double nreq = (double)rounds * (double)p.nreq();
    st.counters["jobs"] = (double)p.total_jobs;
    st.counters["ns_per_job"] = ns_per_job;
    st.counters["jobs_per_s"] = ns_per_job > 0 ? 1e9 / ns_per_job : 0;
    st.counters["clients"] = clients ? clients->size() : 0;
    st.counters["warmup_rounds"] = cfg.first_burst ? 0 : cfg.warmup;
    st.counters["minflt_per_req"] = nreq > 0 ? (double)minflt / nreq : 0;
    if (counts_allocs)
        st.counters["allocs_per_req"] = nreq > 0 ? (double)allocs / nreq : 0;
    put_latency(st, lat);
    finish(st, *d, probe, ok, sum);
}

/* n empty jobs from this thread, one submit each, at most `ring`
 * outstanding: when the ring is full, wait for the oldest first. */
void singles_run(Design &d, uint64_t n, size_t ring, std::atomic<uint64_t> *count)
{
    for (uint64_t k = 0; k < n; k++) {
        if (k >= ring)
            d.single_wait(k % ring);
        d.single_submit(k % ring, count);
    }
    for (uint64_t k = n > ring ? n - ring : 0; k < n; k++)
        d.single_wait(k % ring);
}

void bm_singles(benchmark::State &st, std::string design, unsigned workers, uint64_t n,
                size_t ring)
{
    Probe probe;
    DesignOpts opts;
    opts.external_only = true; /* an outside thread submits */
    auto d = start(st, design, workers, opts);
    if (!d)
        return;
    if (!d->single_prepare(ring)) {
        st.SkipWithError("single submissions are not offered by this design");
        return;
    }
    /* Untimed verification round (and warm-up): counting jobs, every one
     * run exactly once; 16 rings' worth, or all n if fewer. */
    const uint64_t nv = n < 16 * ring ? n : 16 * ring;
    std::atomic<uint64_t> c{0};
    singles_run(*d, nv, ring, &c);
    bool ok = c.load() == nv;
    uint64_t total_ns = 0, iters = 0;
    for (auto _ : st) {
        uint64_t t0 = common_now_ns();
        singles_run(*d, n, ring, nullptr);
        uint64_t t1 = common_now_ns();
        st.SetIterationTime((double)(t1 - t0) / 1e9);
        total_ns += t1 - t0;
        iters++;
    }
    double ns_per_job = iters ? (double)total_ns / ((double)iters * (double)n) : 0;
    st.counters["jobs"] = (double)n;
    st.counters["ring"] = (double)ring;
    st.counters["ns_per_job"] = ns_per_job;
    st.counters["jobs_per_s"] = ns_per_job > 0 ? 1e9 / ns_per_job : 0;
    finish(st, *d, probe, ok, c.load());
}

void bm_empty(benchmark::State &st, std::string design, unsigned workers, size_t n,
              bool inside)
{
    Probe probe;
    auto d = start(st, design, workers);
    if (!d)
        return;
    bool ok = false, supported = false;
    uint64_t counted = 0, total_ns = 0, iters = 0;
    auto body = [&] {
        /* Untimed verification round: every job runs exactly once. */
        std::atomic<uint64_t> c{0};
        supported = d->empty_batch(n, &c);
        counted = c.load();
        ok = supported && counted == n;
        if (!supported) {
            st.SkipWithError("batch size not supported by this design");
            return;
        }
        /* Timed as a whole (real time), not per iteration: a batch of one
         * takes less than the two clock reads around it would. */
        uint64_t t0 = common_now_ns();
        for (auto _ : st)
            d->empty_batch(n, nullptr);
        total_ns = common_now_ns() - t0;
        iters = (uint64_t)st.iterations();
    };
    if (inside) {
        if (!d->run_inside(body)) {
            st.SkipWithError("cannot wait inside this design's workers");
            return;
        }
    } else {
        body();
    }
    if (!supported)
        return;
    double ns_per_job = iters ? (double)total_ns / ((double)iters * (double)n) : 0;
    st.counters["batch"] = (double)n;
    st.counters["ns_per_job"] = ns_per_job;
    st.counters["jobs_per_s"] = ns_per_job > 0 ? 1e9 / ns_per_job : 0;
    finish(st, *d, probe, ok, counted);
}

void bm_fib(benchmark::State &st, std::string design, unsigned workers, int n)
{
    const uint64_t expect = common_fib_value(n);
    Probe probe;
    auto d = start(st, design, workers);
    if (!d)
        return;
    uint64_t v = 0, total_ns = 0, iters = 0;
    bool ok = true;
    for (auto _ : st) {
        uint64_t t0 = common_now_ns();
        bool done = d->fib(n, &v);
        uint64_t t1 = common_now_ns();
        st.SetIterationTime((double)(t1 - t0) / 1e9);
        total_ns += t1 - t0;
        iters++;
        ok = ok && done && v == expect;
    }
    double tasks = (double)common_fib_calls(n);
    st.counters["tasks"] = tasks;
    st.counters["ns_per_task"] = iters ? (double)total_ns / ((double)iters * tasks) : 0;
    finish(st, *d, probe, ok, v);
}

void bm_uts(benchmark::State &st, std::string design, unsigned workers, UtsSpec spec)
{
    const UtsOut expect = uts_expected(spec);
    Probe probe;
    auto d = start(st, design, workers);
    if (!d)
        return;
    UtsOut o;
    uint64_t total_ns = 0, iters = 0;
    bool ok = true;
    for (auto _ : st) {
        uint64_t t0 = common_now_ns();
        bool done = d->uts(spec, &o);
        uint64_t t1 = common_now_ns();
        st.SetIterationTime((double)(t1 - t0) / 1e9);
        total_ns += t1 - t0;
        iters++;
        ok = ok && done && o.nodes == expect.nodes && o.sum == expect.sum;
    }
    st.counters["nodes"] = (double)expect.nodes;
    st.counters["ns_per_node"] =
        iters ? (double)total_ns / ((double)iters * (double)expect.nodes) : 0;
    finish(st, *d, probe, ok, o.sum + o.nodes);
}

void bm_slots(benchmark::State &st, std::string design, unsigned workers, bool padded)
{
    const uint64_t n = cfg.slot_jobs, w = cfg.slot_writes;
    const uint64_t expect = n * (w * (w - 1) / 2) + w * (n * (n - 1) / 2);
    Probe probe;
    auto d = start(st, design, workers);
    if (!d)
        return;
    uint64_t sum = 0, total_ns = 0, iters = 0;
    bool ok = true;
    for (auto _ : st) {
        uint64_t t0 = common_now_ns();
        bool done = d->slots(n, (unsigned)w, padded, &sum);
        uint64_t t1 = common_now_ns();
        st.SetIterationTime((double)(t1 - t0) / 1e9);
        total_ns += t1 - t0;
        iters++;
        ok = ok && done && sum == expect;
    }
    st.counters["jobs"] = (double)n;
    st.counters["writes_per_job"] = (double)w;
    st.counters["ns_per_job"] = iters ? (double)total_ns / ((double)iters * (double)n) : 0;
    finish(st, *d, probe, ok, sum);
}

void bm_idle(benchmark::State &st, std::string design, unsigned workers)
{
    Probe probe;
    auto d = start(st, design, workers);
    if (!d)
        return;
    d->warm();
    double cpu = 0, wall = 0;
    for (auto _ : st) {
        double c0 = common_cpu_seconds();
        uint64_t t0 = common_now_ns();
        common_sleep_until(t0 + (uint64_t)(cfg.idle_s * 1e9));
        uint64_t t1 = common_now_ns();
        cpu = common_cpu_seconds() - c0;
        wall = (double)(t1 - t0) / 1e9;
        st.SetIterationTime(wall);
    }
    st.counters["idle_s"] = wall;
    st.counters["cpu_ms"] = cpu * 1e3;
    st.counters["cpu_pct"] = wall > 0 ? 100 * cpu / wall : 0;
    finish(st, *d, probe, true, 0);
}

void bm_light(benchmark::State &st, std::string design, unsigned workers, PlanSpec spec)
{
    const Plan &p = plan_get(spec);
    Probe probe;
    DesignOpts opts;
    opts.external_only = true; /* a client submits and waits */
    auto d = start(st, design, workers, opts);
    if (!d)
        return;
    Results res;
    res.prepare(p, d->uses_records(), d->needs_tracking());
    d->prepare(p, res);
    d->warm();
    std::vector<uint64_t> arrivals(p.nreq());
    std::vector<double> lat;
    double cpu = 0, wall = 0;
    bool ok = true;
    uint64_t sum = 0;
    for (auto _ : st) {
        res.reset();
        double c0 = common_cpu_seconds();
        uint64_t t0 = common_now_ns() + 1000000;
        for (uint32_t r = 0; r < p.nreq(); r++) {
            /* Latency counts from the submission, not from the tick: the
             * client's own wake-up lateness is not the design's. */
            common_sleep_until(t0 + (uint64_t)(r * cfg.light_period_ns));
            arrivals[r] = common_now_ns();
            d->request(p, r, res);
        }
        uint64_t t1 = common_now_ns();
        cpu = common_cpu_seconds() - c0;
        wall = (double)(t1 - t0) / 1e9;
        st.SetIterationTime(wall);
        Tally t = tally(p, res, t0, &lat, arrivals.data());
        ok = ok && t.ok;
        sum = t.checksum;
    }
    st.counters["jobs"] = (double)p.total_jobs;
    st.counters["cpu_us_per_job"] = cpu * 1e6 / (double)p.total_jobs;
    st.counters["work_us_per_job"] = p.mean_job_ns / 1e3;
    st.counters["cpu_pct"] = wall > 0 ? 100 * cpu / wall : 0;
    put_latency(st, lat);
    finish(st, *d, probe, ok, sum);
}

/* --------------------------------------------------------- registration */

/* Cells time exactly their work (manual time) unless manual is false:
 * then Google Benchmark's real-time clock around the whole loop. */
benchmark::internal::Benchmark *add(const std::string &name,
                                    std::function<void(benchmark::State &)> fn,
                                    bool manual = true)
{
    auto *b = benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State &st) { fn(st); });
    b->MeasureProcessCPUTime();
    if (manual)
        b->UseManualTime();
    else
        b->UseRealTime();
    return b;
}

/* prefix + number (not "x" + std::to_string(n): gcc 12 warns falsely). */
std::string tag(const char *prefix, unsigned long long v)
{
    char buf[48];
    snprintf(buf, sizeof buf, "%s%llu", prefix, v);
    return buf;
}

std::string cell(const std::string &workload, const std::string &variant,
                 const std::string &design, unsigned workers)
{
    return workload + '/' + variant + '/' + design + tag("/workers:", workers);
}

void register_all()
{
    struct FanVariant {
        const char *name;
        double ns;
        double tail;
    };
    /* 1 µs first: run as the first cell of a fresh process (report.sh runs
     * one process per design and workload), its peak RSS is the design's
     * alone, not what earlier cells left in the allocator. */
    const FanVariant fan[] = {
        {"1us", 1000, 0}, {"100ns", 100, 0}, {"10us", 10000, 0}, {"1us-tail", 1000, 0.01}};
    const unsigned wmax = cfg.workers.back();
    const std::vector<std::string> forkjoin = {"wsched", "omp", "tbb", "serial"};
    const std::vector<std::string> pools = {"wsched", "mutex", "omp", "tbb"};
    const std::vector<std::string> client_model = {"wsched", "mutex", "tpj", "tbb", "serial"};
    const std::vector<std::string> task_model = {"wsched", "omp", "tbb"};
    const std::vector<std::string> one_client = {"wsched", "mutex", "tbb"};
    const std::vector<std::string> singles = {"wsched", "mutex", "tbb"};
    /* One timed round, once, on a pool that has run nothing (--first-burst);
     * report.sh takes its samples from separate processes. */
    auto burst = [](benchmark::internal::Benchmark *b) {
        if (cfg.first_burst)
            b->Iterations(1)->Repetitions(1);
        return b;
    };

    for (const std::string &d : cfg.designs) {
        /* Worker counts this design is registered at. */
        std::vector<unsigned> ws = cfg.workers;
        if (d == "serial")
            ws = {1};
        if (d == "tpj")
            ws = {0};
        auto in = [&](const std::vector<std::string> &set) {
            for (auto &x : set)
                if (x == d)
                    return true;
            return false;
        };
        for (unsigned w : ws) {
            for (const FanVariant &v : fan) {
                PlanSpec spec;
                spec.requests = cfg.requests;
                spec.job_ns = v.ns;
                spec.tail_frac = v.tail;
                /* Thread per job spends about a second a round creating
                 * 15,000 threads: in short mode it runs the 1 µs cell only
                 * (the one the targets compare), once. */
                bool tpj_short = d == "tpj" && cfg.short_mode;
                if (in(client_model) && !(tpj_short && strcmp(v.name, "1us") != 0)) {
                    auto *b = add(cell("fanout", v.name, d, w), [=](benchmark::State &st) {
                        bm_fanout(st, d, w, spec, Model::clients);
                    });
                    b->Unit(benchmark::kMillisecond);
                    if (tpj_short)
                        b->Repetitions(1);
                    burst(b);
                }
                /* Serial is the same in every model: its fanout cell serves. */
                bool main_variant = v.tail == 0 && (v.ns == 1000 || v.ns == 100);
                if (in(one_client) && main_variant)
                    burst(add(cell("fanout-1c", v.name, d, w), [=](benchmark::State &st) {
                        bm_fanout(st, d, w, spec, Model::one_client);
                    }))->Unit(benchmark::kMillisecond);
                if (in(task_model))
                    burst(add(cell("fanout-tasks", v.name, d, w), [=](benchmark::State &st) {
                        bm_fanout(st, d, w, spec, Model::tasks);
                    }))->Unit(benchmark::kMillisecond);
            }
            if (in(singles)) {
                uint64_t n = cfg.singles_jobs;
                size_t ring = cfg.singles_ring;
                add(cell("singles", tag("ring", ring), d, w),
                    [=](benchmark::State &st) { bm_singles(st, d, w, n, ring); })
                    ->Unit(benchmark::kMillisecond)
                    ->Iterations(1);
            }
            for (size_t n : cfg.batches) {
                if (d == "tpj" && n > 1000)
                    continue; /* a million threads per batch: see d_tpj.cpp */
                add(cell("empty", tag("ext-b", n), d, w),
                    [=](benchmark::State &st) { bm_empty(st, d, w, n, false); }, false)
                    ->Unit(benchmark::kMicrosecond);
                bool inside_ok = d == "wsched" || d == "omp" || d == "tbb" ||
                                 (d == "mutex" && w >= 2);
                if (inside_ok)
                    add(cell("empty", tag("in-b", n), d, w),
                        [=](benchmark::State &st) { bm_empty(st, d, w, n, true); }, false)
                        ->Unit(benchmark::kMicrosecond);
            }
            if (in(forkjoin)) {
                int n = cfg.fib_n;
                add(cell("fib", tag("n", (unsigned)n), d, w),
                    [=](benchmark::State &st) { bm_fib(st, d, w, n); })
                    ->Unit(benchmark::kMillisecond);
                UtsSpec u = cfg.uts;
                add(cell("uts", tag("b", u.b0), d, w),
                    [=](benchmark::State &st) { bm_uts(st, d, w, u); })
                    ->Unit(benchmark::kMillisecond);
            }
            if (d == "wsched") {
                for (bool padded : {false, true})
                    add(cell("slots", padded ? "padded" : "packed", d, w),
                        [=](benchmark::State &st) { bm_slots(st, d, w, padded); })
                        ->Unit(benchmark::kMicrosecond);
            }
            /* Idle and light load take fixed wall time: one run each, and in
             * short mode only at the largest worker count. */
            bool timed_cells = !cfg.short_mode || w == wmax || w == 0 || d == "serial";
            if (in(pools) && timed_cells) {
                char v[32];
                snprintf(v, sizeof v, "%gs", cfg.idle_s);
                add(cell("idle", v, d, w), [=](benchmark::State &st) { bm_idle(st, d, w); })
                    ->Unit(benchmark::kMillisecond)
                    ->Iterations(1)
                    ->Repetitions(1);
            }
            if (timed_cells) {
                PlanSpec spec;
                spec.requests = cfg.light_requests;
                spec.job_ns = 1000;
                spec.seed = 0x5eed0003;
                add(cell("light", "1ms", d, w),
                    [=](benchmark::State &st) { bm_light(st, d, w, spec); })
                    ->Unit(benchmark::kMillisecond)
                    ->Iterations(1)
                    ->Repetitions(1);
            }
        }
    }
}

/* ------------------------------------------------------------- options */

/* --name=N with N an integer in [lo, hi] (tests/common.h parses). */
bool count_option(const char *a, const char *name, long lo, long hi, long *v)
{
    if (common_parse_long(a, lo, hi, v) == 0)
        return true;
    fprintf(stderr, "wsched_bench: %s takes an integer in %ld..%ld\n", name, lo, hi);
    return false;
}

int parse(int *argc, char **argv)
{
    int out = 1;
    bool calibrate = false, list = false;
    long v;
    for (int k = 1; k < *argc; k++) {
        const char *a = argv[k];
        if (!strcmp(a, "--short"))
            cfg.short_mode = true;
        else if (!strncmp(a, "--workers=", 10)) {
            long w[64];
            int n = common_parse_counts(a + 10, 1, 65536, w, 64);
            if (n < 0) {
                fprintf(stderr, "wsched_bench: --workers takes counts >= 1 (1,2,4)\n");
                return 2;
            }
            cfg.workers.insert(cfg.workers.end(), w, w + n);
        } else if (!strncmp(a, "--clients=", 10)) {
            if (!count_option(a + 10, "--clients", 1, 4096, &v))
                return 2;
            cfg.clients = (unsigned)v;
        } else if (!strncmp(a, "--requests=", 11)) {
            if (!count_option(a + 11, "--requests", 1, 100000000, &v))
                return 2;
            cfg.requests = (uint32_t)v;
        } else if (!strncmp(a, "--warmup=", 9)) {
            if (!count_option(a + 9, "--warmup", 0, 1000, &v))
                return 2;
            cfg.warmup = (unsigned)v;
        } else if (!strncmp(a, "--singles-jobs=", 15)) {
            if (!count_option(a + 15, "--singles-jobs", 1, 1000000000000L, &v))
                return 2;
            cfg.singles_jobs = (uint64_t)v;
        } else if (!strcmp(a, "--first-burst")) {
            cfg.first_burst = true;
        } else if (!strncmp(a, "--designs=", 10)) {
            const char *p = a + 10;
            char name[64];
            int r;
            cfg.designs.clear();
            while ((r = common_list_next(&p, name, sizeof name)) > 0)
                cfg.designs.push_back(name);
            if (r < 0) {
                fprintf(stderr, "wsched_bench: a design in '%s' is not compiled in\n", a + 10);
                return 2;
            }
        } else if (!strcmp(a, "--no-pin"))
            cfg.no_pin = true;
        else if (!strncmp(a, "--reserve=", 10)) {
            char *end;
            unsigned long long nres = strtoull(a + 10, &end, 10);
            if (*end || nres > 1000000) {
                fprintf(stderr, "wsched_bench: --reserve=N wants 0..1000000 batches\n");
                return 2;
            }
            cfg.reserve = (size_t)nres;
        }
        else if (!strcmp(a, "--calibrate"))
            calibrate = true;
        else if (!strcmp(a, "--list-designs"))
            list = true;
        else
            argv[out++] = argv[k];
    }
    *argc = out;
    argv[out] = nullptr;
    if (calibrate) {
        printf("%s\n", calib_string(calib_measure()).c_str());
        return 0;
    }
    if (list) {
        for (auto &d : design_names())
            printf("%s\n", d.c_str());
        return 0;
    }
    if (cfg.workers.empty()) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        for (unsigned w = 1; w < (unsigned)ncpu; w *= 2)
            cfg.workers.push_back(w);
        cfg.workers.push_back((unsigned)(ncpu > 0 ? ncpu : 1));
    }
    if (cfg.designs.empty())
        cfg.designs = design_names();
    for (auto &d : cfg.designs) {
        bool known = false;
        for (auto &x : design_names())
            known = known || x == d;
        if (!known) {
            fprintf(stderr, "wsched_bench: design '%s' is not compiled in\n", d.c_str());
            return 2;
        }
    }
    if (cfg.short_mode) {
        cfg.fib_n = 25;
        cfg.uts.b0 = 400;
        cfg.idle_s = 1;
        cfg.light_requests = 200;
    }
    if (cfg.singles_jobs == 0)
        cfg.singles_jobs = cfg.short_mode ? 200000 : 10000000;
    return -1;
}

} /* namespace */
} /* namespace wb */

int main(int argc, char **argv)
{
    using namespace wb;
    /* Exact sleeps for the timed cells (the default slack is 50 µs). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int rc = parse(&argc, argv);
    if (rc >= 0)
        return rc;

    const Calib &c = calib();
    benchmark::AddCustomContext("wb_calib", calib_string(c));
    benchmark::AddCustomContext("wb_calib_from_env", c.from_env ? "1" : "0");
    benchmark::AddCustomContext("wb_short", cfg.short_mode ? "1" : "0");
    benchmark::AddCustomContext("wb_clients", std::to_string(cfg.clients));
    benchmark::AddCustomContext("wb_requests", std::to_string(cfg.requests));
    benchmark::AddCustomContext("wb_fib_n", std::to_string(cfg.fib_n));
    benchmark::AddCustomContext("wb_uts_b0", std::to_string(cfg.uts.b0));
    benchmark::AddCustomContext("wb_idle_s", std::to_string(cfg.idle_s));
    benchmark::AddCustomContext("wb_light_requests", std::to_string(cfg.light_requests));
    benchmark::AddCustomContext("wb_warmup", std::to_string(cfg.warmup));
    benchmark::AddCustomContext("wb_first_burst", cfg.first_burst ? "1" : "0");
    benchmark::AddCustomContext("wb_singles_jobs", std::to_string(cfg.singles_jobs));
    benchmark::AddCustomContext("wb_malloc", wbp_malloc_name());
    benchmark::AddCustomContext("wb_rss_reset", wbp_rss_peak_reset() ? "1" : "0");
    benchmark::AddCustomContext("wb_no_pin", cfg.no_pin ? "1" : "0");
    std::string ws;
    for (unsigned w : cfg.workers) {
        if (!ws.empty())
            ws += ',';
        ws += std::to_string(w);
    }
    benchmark::AddCustomContext("wb_workers", ws);

    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
