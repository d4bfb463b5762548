/*
 * wsched_openloop: open-loop load. Requests (10..20 jobs of --job-ns each)
 * arrive as a Poisson process at a fixed rate for a fixed time, whether or
 * not earlier ones have finished; latency is measured from each request's
 * intended arrival time (so a generator that falls behind cannot hide
 * queueing: no coordinated omission) to the moment its last job finished.
 *
 * Offered load rho is a fraction of the workers' capacity for the job work
 * alone: rate = rho * workers / (mean jobs per request * job_ns).
 *
 * Little's law check: a sampler thread reads the number of requests in
 * flight (submitted, last job not yet finished) every --sample-us and
 * averages it over the arrival window; that should equal the measured arrival
 * rate times the mean latency. The sampler asks for SCHED_FIFO so that its
 * reads are not delayed to the moments the workers leave a CPU free (which
 * biases the mean low on a small machine); whether it got it is reported
 * (sampler_rt). The exact time average of the in-flight count, integrated
 * from the timestamps, is reported beside it (l_integral).
 *
 * Designs: those that take work from an outside thread without blocking it
 * (wsched, mutex, tpj, tbb via task_arena::enqueue). OpenMP takes work only
 * inside a parallel region and serial has no workers: both are left out.
 *
 * Output: one JSON document (--out=FILE, default stdout) and a table on
 * stderr.
 */
#include "design.h"
#include "procstat.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>

namespace wb {
namespace {

struct Options {
    std::vector<std::string> designs;
    std::vector<unsigned> workers;
    std::vector<double> loads = {0.1, 0.3, 0.5, 0.7, 0.8, 0.9};
    double duration_s = 2.0;
    double job_ns = 10000;
    unsigned sample_us = 1000;
    double max_lag_s = 0.5; /* give up on a point when the generator lags this much */
    bool no_pin = false;
    std::string out;
};

struct Point {
    std::string design;
    unsigned workers;
    double rho, rate_offered, rate_measured;
    uint64_t submitted, planned;
    bool overloaded;
    Pct lat;
    double p99_intended, lag_mean, lag_max;
    double l_sampled, l_little, little_err, l_integral;
    bool sampler_rt;
    double cpu_pct;
    uint64_t threads;
    bool ok;
    std::string error;
};

/* FIFO of handles from the generator to the reaper. */
class HandleQueue {
public:
    HandleQueue()
    {
        pthread_mutex_init(&mu_, nullptr);
        pthread_cond_init(&cv_, nullptr);
    }
    ~HandleQueue()
    {
        pthread_cond_destroy(&cv_);
        pthread_mutex_destroy(&mu_);
    }
    void push(void *h, bool last = false)
    {
        pthread_mutex_lock(&mu_);
        q_.push_back(h);
        closed_ = closed_ || last;
        pthread_cond_signal(&cv_);
        pthread_mutex_unlock(&mu_);
    }
    void close() { push(nullptr, true); }
    /* False once closed and drained. */
    bool pop(void **h)
    {
        pthread_mutex_lock(&mu_);
        while (q_.empty())
            pthread_cond_wait(&cv_, &mu_);
        *h = q_.front();
        q_.pop_front();
        bool more = !(closed_ && q_.empty() && *h == nullptr);
        pthread_mutex_unlock(&mu_);
        return more;
    }

private:
    pthread_mutex_t mu_;
    pthread_cond_t cv_;
    std::deque<void *> q_;
    bool closed_ = false;
};

struct Sampler {
    Results *res;
    unsigned period_us;
    std::atomic<bool> stop{false};
    std::atomic<bool> counting{false};
    std::atomic<uint64_t> from{0}; /* the first arrival: earlier samples are not counted */
    double sum = 0;
    uint64_t n = 0;
    static void *main(void *p)
    {
        Sampler *s = (Sampler *)p;
        uint64_t t = common_now_ns();
        while (!s->stop.load(std::memory_order_acquire)) {
            t += (uint64_t)s->period_us * 1000;
            common_sleep_until(t);
            uint64_t now = common_now_ns();
            if (s->counting.load(std::memory_order_acquire) && now >= s->from.load(std::memory_order_relaxed)) {
                s->sum += (double)s->res->inflight.load(std::memory_order_relaxed);
                s->n++;
            }
        }
        return nullptr;
    }
};

struct Reaper {
    Design *d;
    HandleQueue *q;
    static void *main(void *p)
    {
        Reaper *r = (Reaper *)p;
        void *h;
        while (r->q->pop(&h))
            if (h)
                r->d->wait(h);
        return nullptr;
    }
};

Point run_point(const Options &o, const std::string &name, unsigned workers, double rho,
                uint64_t seed)
{
    Point pt{};
    pt.design = name;
    pt.workers = workers;
    pt.rho = rho;
    const double mean_jobs = (10 + 20) / 2.0;
    pt.rate_offered = rho * workers * 1e9 / (mean_jobs * o.job_ns);

    /* Arrival times: exponential gaps at the offered rate. */
    Rng rng(seed);
    std::vector<uint64_t> offs;
    double t = 0;
    for (;;) {
        t += -std::log(rng.unit()) / pt.rate_offered;
        if (t > o.duration_s)
            break;
        offs.push_back((uint64_t)(t * 1e9));
    }
    pt.planned = offs.size();
    if (offs.empty()) {
        pt.error = "no arrivals";
        return pt;
    }

    PlanSpec spec;
    spec.requests = (uint32_t)offs.size();
    spec.job_ns = o.job_ns;
    spec.seed = seed;
    spec.expect = false; /* counts are checked; the checksum would cost a serial run */
    Plan p = plan_make(spec);

    DesignOpts dopts;
    dopts.external_only = true;
    dopts.no_pin = o.no_pin;
    uint64_t created0 = wbp_threads_created();
    auto d = make_design(name, workers, dopts);
    if (!d || d->failed() || !d->can_submit()) {
        pt.error = d ? (d->failed() ? d->error() : "cannot take outside submissions")
                     : "not compiled in";
        return pt;
    }
    Results res;
    res.prepare(p, d->uses_records(), true);
    d->prepare(p, res);
    d->warm();

    Sampler sampler;
    sampler.res = &res;
    sampler.period_us = o.sample_us;
    HandleQueue q;
    Reaper reaper{d.get(), &q};
    pthread_t st, rt;
    pthread_attr_t rt_attr;
    pthread_attr_init(&rt_attr);
    struct sched_param sp = {};
    sp.sched_priority = 1;
    pthread_attr_setinheritsched(&rt_attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&rt_attr, SCHED_FIFO);
    pthread_attr_setschedparam(&rt_attr, &sp);
    pt.sampler_rt = wbp_raw_thread_create(&st, &rt_attr, Sampler::main, &sampler) == 0;
    pthread_attr_destroy(&rt_attr);
    if ((!pt.sampler_rt && wbp_raw_thread_create(&st, nullptr, Sampler::main, &sampler) != 0) ||
        wbp_raw_thread_create(&rt, nullptr, Reaper::main, &reaper) != 0) {
        fprintf(stderr, "wsched_openloop: cannot start helper threads\n");
        exit(1);
    }

    std::vector<uint64_t> arrival(offs.size()), sub(offs.size());
    const uint64_t t0 = common_now_ns() + 2000000;
    const uint64_t max_lag = (uint64_t)(o.max_lag_s * 1e9);
    double c0 = common_cpu_seconds();
    sampler.from.store(t0, std::memory_order_relaxed);
    sampler.counting.store(true, std::memory_order_release);
    uint32_t n = 0;
    for (; n < offs.size(); n++) {
        arrival[n] = t0 + offs[n];
        uint64_t now = common_now_ns();
        if (now < arrival[n]) {
            common_sleep_until(arrival[n]);
        } else if (now - arrival[n] > max_lag) {
            pt.overloaded = true;
            break;
        }
        sub[n] = common_now_ns();
        res.inflight.fetch_add(1, std::memory_order_relaxed);
        q.push(d->submit(p, n, res));
    }
    const uint64_t t_end = n ? arrival[n - 1] : t0;
    sampler.counting.store(false, std::memory_order_release);
    q.close();
    pthread_join(rt, nullptr);
    double cpu = common_cpu_seconds() - c0;
    sampler.stop.store(true, std::memory_order_release);
    pthread_join(st, nullptr);
    /* Requests never submitted (overload) must not hold anything up. */
    pt.submitted = n;
    pt.threads = wbp_threads_created() - created0;

    std::vector<double> lat, late;
    lat.reserve(n);
    late.reserve(n);
    double lag_sum = 0;
    pt.lag_max = 0;
    uint64_t jobs = 0, want = 0, last_done = t_end;
    for (uint32_t r = 0; r < n; r++) {
        lat.push_back((double)(res.done_ns[r] - sub[r]) / 1e3);
        late.push_back((double)(res.done_ns[r] - arrival[r]) / 1e3);
        double lag = (double)(sub[r] - arrival[r]) / 1e3;
        lag_sum += lag;
        pt.lag_max = std::max(pt.lag_max, lag);
        last_done = std::max(last_done, res.done_ns[r]);
        want += p.req[r].njobs;
    }
    if (res.use_records) {
        for (const Record &rec : res.records)
            jobs += rec.done_ns != 0 && rec.r < n;
    } else {
        for (uint32_t r = 0; r < n; r++)
            for (uint32_t i = 0; i < p.req[r].njobs; i++)
                jobs += res.slots[p.req[r].first + i].done_ns != 0;
    }
    pt.ok = jobs == want && !d->failed();
    if (d->failed())
        pt.error = d->error();
    pt.lat = percentiles(lat);
    pt.p99_intended = percentiles(late).p99;
    pt.lag_mean = n ? lag_sum / n : 0;
    /* Rate, latency and in-flight count all run from the submissions: over
     * the window from the first to the last one. */
    const uint64_t w0 = n ? sub[0] : t0, w1 = n ? sub[n - 1] : t0;
    double window = (double)(w1 - w0) / 1e9;
    pt.rate_measured = window > 0 ? (double)(n - 1) / window : 0;
    pt.l_sampled = sampler.n ? sampler.sum / (double)sampler.n : 0;
    double area = 0;
    for (uint32_t r = 0; r < n; r++) {
        uint64_t a = std::max(sub[r], w0), b = std::min(res.done_ns[r], w1);
        if (b > a)
            area += (double)(b - a);
    }
    pt.l_integral = w1 > w0 ? area / (double)(w1 - w0) : 0;
    pt.l_little = pt.rate_measured * pt.lat.mean / 1e6;
    pt.little_err = pt.l_little > 0 ? (pt.l_sampled - pt.l_little) / pt.l_little : 0;
    double busy = (double)(last_done - t0) / 1e9;
    pt.cpu_pct = busy > 0 ? 100 * cpu / busy : 0;
    d.reset();
    return pt;
}

std::string json_escape(const std::string &s)
{
    std::string o;
    for (char ch : s) {
        if (ch == '"' || ch == '\\')
            o += '\\';
        if ((unsigned char)ch >= 0x20)
            o += ch;
    }
    return o;
}

void usage()
{
    fprintf(stderr,
            "usage: wsched_openloop [--short] [--designs=a,b] [--workers=N,...]\n"
            "       [--loads=0.1,0.5,...] [--duration=S] [--job-ns=NS] [--sample-us=US]\n"
            "       [--no-pin] [--out=FILE]\n");
}

} /* namespace */
} /* namespace wb */

int main(int argc, char **argv)
{
    using namespace wb;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    Options o;
    bool short_mode = false;
    bool duration_set = false;
    /* Every value is parsed whole (tests/common.h): a bad one is a usage
     * error, not a zero. */
    bool bad = false;
    char item[64];
    long counts[64], v = 0;
    int n, r;
    for (int k = 1; k < argc && !bad; k++) {
        const char *a = argv[k];
        if (!strcmp(a, "--short"))
            short_mode = true;
        else if (!strncmp(a, "--designs=", 10)) {
            const char *p = a + 10;
            o.designs.clear();
            while ((r = common_list_next(&p, item, sizeof item)) > 0)
                o.designs.push_back(item);
            bad = r < 0;
        } else if (!strncmp(a, "--workers=", 10)) {
            n = common_parse_counts(a + 10, 1, 65536, counts, 64);
            bad = n < 0;
            for (int j = 0; j < n; j++)
                o.workers.push_back((unsigned)counts[j]);
        } else if (!strncmp(a, "--loads=", 8)) {
            const char *p = a + 8;
            double rho;
            o.loads.clear();
            while (!bad && (r = common_list_next(&p, item, sizeof item)) > 0) {
                bad = common_parse_double(item, 1e-6, 100, &rho) != 0;
                if (!bad)
                    o.loads.push_back(rho);
            }
            bad = bad || r < 0;
        } else if (!strncmp(a, "--duration=", 11)) {
            bad = common_parse_double(a + 11, 1e-6, 1e6, &o.duration_s) != 0;
            duration_set = true;
        } else if (!strncmp(a, "--job-ns=", 9))
            bad = common_parse_double(a + 9, 1, 1e12, &o.job_ns) != 0;
        else if (!strncmp(a, "--sample-us=", 12)) {
            bad = common_parse_long(a + 12, 1, 100000000, &v) != 0;
            o.sample_us = (unsigned)v;
        } else if (!strcmp(a, "--no-pin"))
            o.no_pin = true;
        else if (!strncmp(a, "--out=", 6))
            o.out = a + 6;
        else
            bad = true;
    }
    if (bad || o.loads.empty()) {
        usage();
        return 2;
    }
    if (short_mode && !duration_set)
        o.duration_s = 0.25;
    if (o.workers.empty())
        o.workers.push_back((unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    if (o.designs.empty())
        for (auto &d : design_names())
            if (d != "omp" && d != "serial")
                o.designs.push_back(d);

    std::vector<Point> pts;
    fprintf(stderr, "%-8s %2s %5s %10s %10s %9s %9s %9s %8s %8s %8s %7s %s\n", "design", "N",
            "rho", "rate/s", "measured", "p50_us", "p99_us", "p999_us", "L_samp", "L_exact",
            "lambdaW", "err%", "note");
    for (unsigned w : o.workers)
        for (const auto &name : o.designs)
            for (size_t k = 0; k < o.loads.size(); k++) {
                Point pt = run_point(o, name, w, o.loads[k], 0x5eed1000 + k);
                pts.push_back(pt);
                fprintf(stderr,
                        "%-8s %2u %5.2f %10.0f %10.0f %9.1f %9.1f %9.1f %8.2f %8.2f %8.2f %7.1f "
                        "%s%s%s\n",
                        name.c_str(), w, pt.rho, pt.rate_offered, pt.rate_measured, pt.lat.p50,
                        pt.lat.p99, pt.lat.p999, pt.l_sampled, pt.l_integral, pt.l_little,
                        100 * pt.little_err,
                        pt.overloaded ? "overloaded " : "", pt.ok ? "" : "WRONG ",
                        pt.error.c_str());
            }

    FILE *f = o.out.empty() ? stdout : fopen(o.out.c_str(), "w");
    if (!f) {
        perror(o.out.c_str());
        return 1;
    }
    const Calib &c = calib();
    fprintf(f, "{\n  \"context\": {\"program\": \"wsched_openloop\", \"calib\": \"%s\", "
               "\"malloc\": \"%s\", \"job_ns\": %g, \"duration_s\": %g, \"sample_us\": %u, "
               "\"short\": %s, \"cpus\": %ld},\n  \"points\": [\n",
            calib_string(c).c_str(), wbp_malloc_name(), o.job_ns, o.duration_s, o.sample_us,
            short_mode ? "true" : "false", sysconf(_SC_NPROCESSORS_ONLN));
    for (size_t k = 0; k < pts.size(); k++) {
        const Point &p = pts[k];
        fprintf(f,
                "    {\"design\": \"%s\", \"workers\": %u, \"rho\": %g, \"rate_offered\": %.1f, "
                "\"rate_measured\": %.1f, \"planned\": %llu, \"submitted\": %llu, "
                "\"overloaded\": %s, \"ok\": %s, \"error\": \"%s\", "
                "\"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f, "
                "\"mean_us\": %.3f, \"max_us\": %.3f, \"l_sampled\": %.4f, \"l_little\": %.4f, "
                "\"little_err\": %.4f, \"cpu_pct\": %.1f, \"threads\": %llu, "
                "\"p99_intended_us\": %.3f, \"lag_mean_us\": %.3f, \"lag_max_us\": %.3f, "
                "\"l_integral\": %.4f, \"sampler_rt\": %s}%s\n",
                p.design.c_str(), p.workers, p.rho, p.rate_offered, p.rate_measured,
                (unsigned long long)p.planned, (unsigned long long)p.submitted,
                p.overloaded ? "true" : "false", p.ok ? "true" : "false", json_escape(p.error).c_str(),
                p.lat.p50, p.lat.p90, p.lat.p99, p.lat.p999, p.lat.mean, p.lat.max, p.l_sampled,
                p.l_little, p.little_err, p.cpu_pct, (unsigned long long)p.threads,
                p.p99_intended, p.lag_mean, p.lag_max, p.l_integral,
                p.sampler_rt ? "true" : "false", k + 1 < pts.size() ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (f != stdout)
        fclose(f);
    return 0;
}
