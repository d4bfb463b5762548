/*
 * tpj: thread per job, the C translation of the naive Go code. Submitting a
 * request creates one pthread per job (default attributes, like `go func`);
 * each thread appends its result to the request's responses array under the
 * request's mutex; waiting joins the request's threads (wg.Wait()). Nothing
 * bounds how many threads are alive at once: that, and the cost of creating
 * them, is the design under test.
 *
 * When pthread_create fails (thread or memory limits) the job runs on the
 * submitting thread instead, and the failure is counted (create_failed).
 * Batches of more than 1000 empty jobs are not run: a million threads per
 * batch takes minutes and proves nothing new.
 */
#include "design.h"

namespace wb {
namespace {

constexpr size_t kMaxEmptyBatch = 1000;

struct ReqState {
    pthread_mutex_t mu;
    uint32_t appended;
    std::vector<pthread_t> tids;
    std::vector<bool> inline_ran;
    ReqState() { pthread_mutex_init(&mu, nullptr); }
    ~ReqState() { pthread_mutex_destroy(&mu); }
};

struct JobArg {
    const Plan *p;
    Results *res;
    ReqState *st;
    uint32_t r, i;
};

class Tpj final : public Design {
public:
    bool uses_records() const override { return true; }
    bool can_submit() const override { return true; }

    void prepare(const Plan &p, Results &) override
    {
        args_.resize(p.total_jobs);
        st_ = std::make_unique<ReqState[]>(p.nreq());
        for (uint32_t r = 0; r < p.nreq(); r++) {
            st_[r].tids.resize(p.req[r].njobs);
            st_[r].inline_ran.resize(p.req[r].njobs);
        }
    }

    void *submit(const Plan &p, uint32_t r, Results &res) override
    {
        const Request &q = p.req[r];
        ReqState *st = &st_[r];
        st->appended = 0;
        for (uint32_t i = 0; i < q.njobs; i++) {
            JobArg *a = &args_[q.first + i];
            *a = JobArg{&p, &res, st, r, i};
            st->inline_ran[i] = pthread_create(&st->tids[i], nullptr, job, a) != 0;
            if (st->inline_ran[i]) {
                failed_creates_.fetch_add(1, std::memory_order_relaxed);
                job(a);
            }
        }
        return st;
    }

    void wait(void *h) override
    {
        ReqState *st = (ReqState *)h;
        for (size_t i = 0; i < st->tids.size(); i++)
            if (!st->inline_ran[i])
                pthread_join(st->tids[i], nullptr);
    }

    bool empty_batch(size_t n, std::atomic<uint64_t> *count) override
    {
        if (n > kMaxEmptyBatch)
            return false;
        pthread_t tids[kMaxEmptyBatch];
        bool ran[kMaxEmptyBatch];
        for (size_t i = 0; i < n; i++) {
            ran[i] = pthread_create(&tids[i], nullptr, empty, count) != 0;
            if (ran[i]) {
                failed_creates_.fetch_add(1, std::memory_order_relaxed);
                empty(count);
            }
        }
        for (size_t i = 0; i < n; i++)
            if (!ran[i])
                pthread_join(tids[i], nullptr);
        return true;
    }

    void warm() override {}

    void counters(std::vector<std::pair<std::string, double>> &out) const override
    {
        out.emplace_back("create_failed", (double)failed_creates_.load());
    }

private:
    static void *job(void *p)
    {
        JobArg *a = (JobArg *)p;
        Slot s;
        run_job(*a->p, a->r, a->i, &s);
        Results &res = *a->res;
        pthread_mutex_lock(&a->st->mu);
        res.records[a->p->req[a->r].first + a->st->appended++] =
            Record{a->r, a->i, s.value, s.done_ns};
        pthread_mutex_unlock(&a->st->mu);
        res.finish(a->r);
        return nullptr;
    }
    static void *empty(void *count)
    {
        if (count)
            count_job((std::atomic<uint64_t> *)count);
        return nullptr;
    }

    std::vector<JobArg> args_;
    std::unique_ptr<ReqState[]> st_;
    std::atomic<uint64_t> failed_creates_{0};
};

} /* namespace */

std::unique_ptr<Design> make_tpj(unsigned, const DesignOpts &)
{
    return std::make_unique<Tpj>();
}

} /* namespace wb */
