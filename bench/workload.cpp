/* The out-of-line half of workload.h. */
#include "workload.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace wb {

__attribute__((noinline)) uint64_t spin(uint64_t x, uint32_t iters)
{
    for (uint32_t k = 0; k < iters; k++) {
        x = x * 0x5851f42d4c957f2dull + 0x14057b7ef767814full;
        x ^= x >> 29;
    }
    return x;
}

__attribute__((noinline)) void noop_job() { __asm__ volatile("" ::: "memory"); }
void (*volatile noop_ptr)() = noop_job;

/* ----------------------------------------------------------- calibration */

Calib calib_measure()
{
    /* Best of several short trials: the minimum is the figure least disturbed
     * by whatever else runs on the machine. */
    const uint32_t n = 1u << 20;
    double best_spin = 1e30, best_stamp = 1e30;
    uint64_t sink = 0;
    for (int t = 0; t < 7; t++) {
        uint64_t a = common_now_ns();
        sink += spin(a, n);
        uint64_t b = common_now_ns();
        best_spin = std::min(best_spin, (double)(b - a));

        const int m = 1 << 16;
        Slot s;
        a = common_now_ns();
        for (int k = 0; k < m; k++) {
            s.done_ns = common_now_ns();
            __asm__ volatile("" : : "r"(&s) : "memory");
        }
        b = common_now_ns();
        best_stamp = std::min(best_stamp, (double)(b - a) / m);
    }
    __asm__ volatile("" : : "r"(sink));
    Calib c;
    c.iters_per_ns = n / best_spin;
    c.stamp_ns = best_stamp;
    c.from_env = false;
    return c;
}

std::string calib_string(const Calib &c)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.6f:%.3f", c.iters_per_ns, c.stamp_ns);
    return buf;
}

const Calib &calib()
{
    static Calib c = [] {
        const char *env = getenv("WSCHED_BENCH_CALIB");
        Calib k;
        if (env && sscanf(env, "%lf:%lf", &k.iters_per_ns, &k.stamp_ns) == 2 &&
            k.iters_per_ns > 0 && k.stamp_ns >= 0) {
            k.from_env = true;
            return k;
        }
        return calib_measure();
    }();
    return c;
}

uint32_t iters_for_ns(double ns)
{
    const Calib &c = calib();
    double spin_ns = ns - c.stamp_ns;
    if (spin_ns < 0)
        spin_ns = 0;
    long it = lround(spin_ns * c.iters_per_ns);
    return it < 1 ? 1u : (uint32_t)it;
}

/* ----------------------------------------------------------------- plans */

Plan plan_make(const PlanSpec &spec)
{
    Plan p;
    p.spec = spec;
    Rng rng(spec.seed);
    const uint32_t base = iters_for_ns(spec.job_ns);
    const uint32_t heavy = iters_for_ns(spec.job_ns * spec.tail_mult);
    p.req.resize(spec.requests);
    for (uint32_t r = 0; r < spec.requests; r++) {
        uint32_t j = spec.jmin + rng.below(spec.jmax - spec.jmin + 1);
        p.req[r].first = (uint32_t)p.iters.size();
        p.req[r].njobs = j;
        for (uint32_t i = 0; i < j; i++)
            p.iters.push_back(spec.tail_frac > 0 && rng.unit() <= spec.tail_frac ? heavy : base);
    }
    p.total_jobs = p.iters.size();
    p.mean_job_ns = spec.job_ns * (1 - spec.tail_frac + spec.tail_frac * spec.tail_mult);
    if (spec.expect) {
        uint64_t sum = 0;
        for (uint32_t r = 0; r < p.nreq(); r++)
            for (uint32_t i = 0; i < p.req[r].njobs; i++) {
                Slot s;
                run_job(p, r, i, &s);
                sum += contrib(r, i, s.value);
            }
        p.expected = sum;
    }
    return p;
}

const Plan &plan_get(const PlanSpec &s)
{
    static std::map<std::string, std::unique_ptr<Plan>> cache;
    char key[160];
    snprintf(key, sizeof key, "%u/%u/%u/%.3f/%.6f/%.3f/%llx/%d", s.requests, s.jmin, s.jmax,
             s.job_ns, s.tail_frac, s.tail_mult, (unsigned long long)s.seed, (int)s.expect);
    auto &slot = cache[key];
    if (!slot)
        slot = std::make_unique<Plan>(plan_make(s));
    return *slot;
}

/* --------------------------------------------------------------- results */

void Results::prepare(const Plan &p, bool records_, bool tracking)
{
    plan = &p;
    use_records = records_;
    if (use_records) {
        records.assign(p.total_jobs, Record{});
        slots.clear();
    } else {
        slots.assign(p.total_jobs, Slot{});
        records.clear();
    }
    track = tracking;
    if (track) {
        remaining = std::make_unique<std::atomic<uint32_t>[]>(p.nreq());
        done_ns.assign(p.nreq(), 0);
    }
    reset();
}

void Results::reset()
{
    if (use_records)
        memset((void *)records.data(), 0, records.size() * sizeof(Record));
    else
        memset((void *)slots.data(), 0, slots.size() * sizeof(Slot));
    nrecords = 0;
    if (track) {
        for (uint32_t r = 0; r < plan->nreq(); r++)
            remaining[r].store(plan->req[r].njobs, std::memory_order_relaxed);
        std::fill(done_ns.begin(), done_ns.end(), 0);
        inflight.store(0, std::memory_order_relaxed);
    }
}

void Results::wait_done(uint32_t r)
{
    uint32_t v;
    while ((v = remaining[r].load(std::memory_order_acquire)) != 0)
        remaining[r].wait(v, std::memory_order_acquire);
}

Tally tally(const Plan &p, const Results &res, uint64_t t0, std::vector<double> *lat,
            const uint64_t *arrivals)
{
    Tally t;
    std::vector<uint64_t> last(p.nreq(), 0);
    bool bad = false;
    if (res.use_records) {
        for (const Record &rec : res.records) {
            if (rec.done_ns == 0)
                continue;
            if (rec.r >= p.nreq() || rec.i >= p.req[rec.r].njobs) {
                bad = true;
                continue;
            }
            t.checksum += contrib(rec.r, rec.i, rec.value);
            t.jobs++;
            last[rec.r] = std::max(last[rec.r], rec.done_ns);
        }
    } else {
        for (uint32_t r = 0; r < p.nreq(); r++)
            for (uint32_t i = 0; i < p.req[r].njobs; i++) {
                const Slot &s = res.slots[p.req[r].first + i];
                if (s.done_ns == 0)
                    continue;
                t.checksum += contrib(r, i, s.value);
                t.jobs++;
                last[r] = std::max(last[r], s.done_ns);
            }
    }
    t.ok = !bad && t.jobs == p.total_jobs && (!p.spec.expect || t.checksum == p.expected);
    if (lat)
        for (uint32_t r = 0; r < p.nreq(); r++) {
            uint64_t a = arrivals ? arrivals[r] : t0;
            lat->push_back(last[r] > a ? (double)(last[r] - a) / 1e3 : 0.0);
        }
    return t;
}

/* ----------------------------------------------------------- percentiles */

Pct percentiles(std::vector<double> &v)
{
    Pct p;
    p.n = v.size();
    if (v.empty())
        return p;
    std::sort(v.begin(), v.end());
    auto rank = [&](double q) {
        size_t k = (size_t)std::ceil(q * (double)v.size());
        return v[k == 0 ? 0 : k - 1];
    };
    p.p50 = rank(0.50);
    p.p90 = rank(0.90);
    p.p99 = rank(0.99);
    p.p999 = rank(0.999);
    p.max = v.back();
    double s = 0;
    for (double x : v)
        s += x;
    p.mean = s / (double)v.size();
    return p;
}

/* ------------------------------------------------------------ fork-join */

__attribute__((noinline)) COMMON_DEFINE_FIB_SERIAL(fib_serial)

static void uts_visit(const UtsSpec &s, uint64_t id, bool root, UtsOut *out)
{
    out->nodes++;
    out->sum += uts_work(s, id);
    uint32_t n = uts_children(s, id, root);
    for (uint32_t k = 0; k < n; k++)
        uts_visit(s, uts_child(id, k), false, out);
}

UtsOut uts_serial(const UtsSpec &s)
{
    UtsOut o;
    uts_visit(s, uts_root(s), true, &o);
    return o;
}

const UtsOut &uts_expected(const UtsSpec &s)
{
    static std::map<std::string, UtsOut> cache;
    char key[128];
    snprintf(key, sizeof key, "%u/%u/%.6f/%u/%llx", s.b0, s.m, s.q, s.node_iters,
             (unsigned long long)s.seed);
    auto it = cache.find(key);
    if (it == cache.end())
        it = cache.emplace(key, uts_serial(s)).first;
    return it->second;
}

} /* namespace wb */
