/*
 * tbb: oneTBB, what a C++ user would reach for. The design owns a
 * task_arena and caps the process's threads with global_control.
 *
 * Client model (DesignOpts::external_only: fan-out, light load, open loop):
 * the arena has N slots, none reserved for outside threads, and the cap is
 * N + 1, so N worker threads run the jobs. A client submits a request with
 * task_arena::enqueue (a task running a task_group of the request's jobs)
 * and waits for the request's countdown (Results tracking: the last job
 * wakes it through a futex), like a wsched client waiting for its batch.
 *
 * Task model (everything else): the arena has N slots, one of them reserved
 * for the thread that enters it, and the cap is N; the benchmark thread
 * enters with execute(), so N threads run jobs, as with OpenMP. A fan-out
 * round runs one task_group task per request, each running a task_group of
 * its jobs and waiting. Batches of empty jobs use parallel_for (TBB's lazily
 * split range, the counterpart of a wsched batch); fork-join uses task_group.
 */
#include "design.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace wb {
namespace {

void request_tasks(const Plan *p, uint32_t r, Results *res)
{
    Slot *base = &res->slots[p->req[r].first];
    tbb::task_group g;
    for (uint32_t i = 0; i < p->req[r].njobs; i++)
        g.run([=] {
            run_job(*p, r, i, &base[i]);
            res->finish(r);
        });
    g.wait();
}

uint64_t fib_tbb(int n)
{
    if (n < 2)
        return (uint64_t)n;
    uint64_t x, y;
    tbb::task_group g;
    g.run([&] { x = fib_tbb(n - 1); });
    y = fib_tbb(n - 2);
    g.wait();
    return x + y;
}

void uts_tbb(const UtsSpec *s, uint64_t id, bool root, UtsOut *out)
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
    tbb::task_group g;
    for (uint32_t k = 0; k + 1 < n; k++) {
        UtsOut *o = &ch[k];
        uint64_t cid = uts_child(id, k);
        g.run([=] { uts_tbb(s, cid, false, o); });
    }
    uts_tbb(s, uts_child(id, n - 1), false, &ch[n - 1]);
    g.wait();
    for (uint32_t k = 0; k < n; k++) {
        out->nodes += ch[k].nodes;
        out->sum += ch[k].sum;
    }
}

class Tbb final : public Design {
public:
    Tbb(unsigned n, const DesignOpts &o) : ext_(o.external_only)
    {
        gc_ = std::make_unique<tbb::global_control>(
            tbb::global_control::max_allowed_parallelism, ext_ ? n + 1 : n);
        arena_ = std::make_unique<tbb::task_arena>((int)n, ext_ ? 0 : 1);
        arena_->initialize();
    }
    ~Tbb() override
    {
        arena_.reset();
        gc_.reset();
    }

    /* Client model only: enqueue from outside, completion by countdown. */
    bool can_submit() const override { return ext_; }
    bool needs_tracking() const override { return ext_; }

    void prepare(const Plan &, Results &res) override { res_ = &res; }
    void *submit(const Plan &p, uint32_t r, Results &res) override
    {
        const Plan *pp = &p;
        Results *rp = &res;
        arena_->enqueue([=] { request_tasks(pp, r, rp); });
        return (void *)(uintptr_t)(r + 1);
    }
    void wait(void *h) override { res_->wait_done((uint32_t)((uintptr_t)h - 1)); }

    bool fanout_tasks(const Plan &p, Results &res, Span *out) override
    {
        if (ext_)
            return false;
        Span &s = *out;
        const Plan *pp = &p;
        Results *rp = &res;
        s.t0 = common_now_ns();
        arena_->execute([=] {
            tbb::task_group top;
            for (uint32_t r = 0; r < pp->nreq(); r++)
                top.run([=] { request_tasks(pp, r, rp); });
            top.wait();
        });
        s.t1 = common_now_ns();
        return true;
    }

    void request(const Plan &p, uint32_t r, Results &res) override
    {
        if (ext_) {
            wait(submit(p, r, res));
            return;
        }
        const Plan *pp = &p;
        Results *rp = &res;
        arena_->execute([=] { request_tasks(pp, r, rp); });
    }

    bool empty_batch(size_t n, std::atomic<uint64_t> *count) override
    {
        arena_->execute([=] {
            tbb::parallel_for(tbb::blocked_range<size_t>(0, n),
                              [=](const tbb::blocked_range<size_t> &rg) {
                                  if (count)
                                      for (size_t i = rg.begin(); i != rg.end(); i++)
                                          count_job(count);
                                  else
                                      for (size_t i = rg.begin(); i != rg.end(); i++)
                                          noop_ptr();
                              });
        });
        return true;
    }

    /* singles (client model): task_arena::enqueue of one task, which sets
     * its ring slot's flag and wakes the waiter (a futex, as Results'
     * countdown wakes a fan-out client). */
    bool single_prepare(size_t ring) override
    {
        if (!ext_)
            return false;
        singles_ = std::make_unique<std::atomic<uint32_t>[]>(ring);
        return true;
    }
    void single_submit(size_t k, std::atomic<uint64_t> *count) override
    {
        std::atomic<uint32_t> *f = &singles_[k];
        f->store(0, std::memory_order_relaxed);
        arena_->enqueue([=] {
            if (count)
                count_job(count);
            else
                noop_ptr();
            f->store(1, std::memory_order_release);
            f->notify_one();
        });
    }
    void single_wait(size_t k) override
    {
        std::atomic<uint32_t> *f = &singles_[k];
        while (f->load(std::memory_order_acquire) == 0)
            f->wait(0, std::memory_order_acquire);
    }

    bool run_inside(const std::function<void()> &f) override
    {
        arena_->execute([&] {
            tbb::task_group g;
            g.run([&] { f(); });
            g.wait();
        });
        return true;
    }

    bool fib(int n, uint64_t *out) override
    {
        arena_->execute([&] { *out = fib_tbb(n); });
        return true;
    }

    bool uts(const UtsSpec &s, UtsOut *out) override
    {
        arena_->execute([&] { uts_tbb(&s, uts_root(s), true, out); });
        return true;
    }

private:
    bool ext_;
    Results *res_ = nullptr;
    std::unique_ptr<std::atomic<uint32_t>[]> singles_;
    std::unique_ptr<tbb::global_control> gc_;
    std::unique_ptr<tbb::task_arena> arena_;
};

} /* namespace */

std::unique_ptr<Design> make_tbb(unsigned workers, const DesignOpts &opts)
{
    return std::make_unique<Tbb>(workers, opts);
}

} /* namespace wb */
