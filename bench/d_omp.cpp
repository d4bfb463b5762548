/*
 * omp: OpenMP tasks (libgomp), what a C user would reach for. OpenMP takes
 * work only inside a parallel region, so it has no client-model fan-out (an
 * outside thread can only open a parallel region of its own). In the task
 * model a round is one parallel region of N threads in which a single thread
 * creates one task per request, and each request task creates one task per
 * job and waits for them (taskwait), the shape of the Go code's ProcessJobs.
 * A light-load request is a parallel region of its own.
 * Batches of empty jobs use taskloop; fork-join uses task + taskwait. Wait
 * policy and spin counts are libgomp's defaults (OMP_WAIT_POLICY unset).
 */
#include "design.h"

#include <omp.h>

namespace wb {
namespace {

void request_tasks(const Plan *p, uint32_t r, Results *res)
{
    Slot *base = &res->slots[p->req[r].first];
    for (uint32_t i = 0; i < p->req[r].njobs; i++) {
#pragma omp task firstprivate(p, r, res, base, i)
        {
            run_job(*p, r, i, &base[i]);
            res->finish(r);
        }
    }
#pragma omp taskwait
}

void batch_tasks(size_t n, std::atomic<uint64_t> *count)
{
    if (count) {
#pragma omp taskloop firstprivate(count)
        for (size_t i = 0; i < n; i++)
            count_job(count);
    } else {
#pragma omp taskloop
        for (size_t i = 0; i < n; i++)
            noop_ptr();
    }
}

uint64_t fib_omp(int n)
{
    if (n < 2)
        return (uint64_t)n;
    uint64_t x, y;
#pragma omp task shared(x) firstprivate(n)
    x = fib_omp(n - 1);
    y = fib_omp(n - 2);
#pragma omp taskwait
    return x + y;
}

void uts_omp(const UtsSpec *s, uint64_t id, bool root, UtsOut *out)
{
    out->nodes = 1;
    out->sum = uts_work(*s, id);
    uint32_t n = uts_children(*s, id, root);
    if (n == 0)
        return;
    UtsOut local[8];
    std::vector<UtsOut> heap;
    UtsOut *ch = local;
    if (n > 8) {
        heap.resize(n);
        ch = heap.data();
    }
    for (uint32_t k = 0; k + 1 < n; k++) {
        UtsOut *o = &ch[k];
        uint64_t cid = uts_child(id, k);
#pragma omp task firstprivate(s, cid, o)
        uts_omp(s, cid, false, o);
    }
    uts_omp(s, uts_child(id, n - 1), false, &ch[n - 1]);
#pragma omp taskwait
    for (uint32_t k = 0; k < n; k++) {
        out->nodes += ch[k].nodes;
        out->sum += ch[k].sum;
    }
}

class Omp final : public Design {
public:
    explicit Omp(unsigned n) : n_((int)n) {}

    bool fanout_tasks(const Plan &p, Results &res, Span *out) override
    {
        Span &s = *out;
        const Plan *pp = &p;
        Results *rp = &res;
        s.t0 = common_now_ns();
#pragma omp parallel num_threads(n_)
#pragma omp single
        for (uint32_t r = 0; r < pp->nreq(); r++) {
#pragma omp task firstprivate(pp, rp, r)
            request_tasks(pp, r, rp);
        }
        s.t1 = common_now_ns();
        return true;
    }

    void request(const Plan &p, uint32_t r, Results &res) override
    {
        const Plan *pp = &p;
        Results *rp = &res;
#pragma omp parallel num_threads(n_)
#pragma omp single
        request_tasks(pp, r, rp);
    }

    bool empty_batch(size_t n, std::atomic<uint64_t> *count) override
    {
        /* omp_get_level, not omp_in_parallel: a team of one is an inactive
         * region, but still one we are inside of. */
        if (omp_get_level() > 0) {
            batch_tasks(n, count);
        } else {
#pragma omp parallel num_threads(n_)
#pragma omp single
            batch_tasks(n, count);
        }
        return true;
    }

    bool run_inside(const std::function<void()> &f) override
    {
#pragma omp parallel num_threads(n_)
#pragma omp single
        f();
        return true;
    }

    bool fib(int n, uint64_t *out) override
    {
        uint64_t v = 0;
#pragma omp parallel num_threads(n_)
#pragma omp single
        v = fib_omp(n);
        *out = v;
        return true;
    }

    bool uts(const UtsSpec &s, UtsOut *out) override
    {
        const UtsSpec *sp = &s;
        UtsOut o;
#pragma omp parallel num_threads(n_)
#pragma omp single
        uts_omp(sp, uts_root(*sp), true, &o);
        *out = o;
        return true;
    }

    void warm() override
    {
#pragma omp parallel num_threads(n_)
        noop_ptr();
    }

private:
    int n_;
};

} /* namespace */

std::unique_ptr<Design> make_omp(unsigned workers, const DesignOpts &)
{
    return std::make_unique<Omp>(workers);
}

} /* namespace wb */
