/*
 * serial: the same jobs, one after another, on the calling thread. The
 * baseline every ratio is taken against; it starts no thread.
 */
#include "design.h"

namespace wb {
namespace {

class Serial final : public Design {
public:
    bool fanout(const Plan &p, Results &res, ClientGroup *, Span *out) override
    {
        out->t0 = common_now_ns();
        for (uint32_t r = 0; r < p.nreq(); r++)
            request(p, r, res);
        out->t1 = common_now_ns();
        return true;
    }
    bool fanout_tasks(const Plan &p, Results &res, Span *out) override
    {
        return fanout(p, res, nullptr, out);
    }

    void request(const Plan &p, uint32_t r, Results &res) override
    {
        Slot *base = &res.slots[p.req[r].first];
        for (uint32_t i = 0; i < p.req[r].njobs; i++) {
            run_job(p, r, i, &base[i]);
            res.finish(r);
        }
    }

    bool empty_batch(size_t n, std::atomic<uint64_t> *count) override
    {
        if (count)
            for (size_t i = 0; i < n; i++)
                count_job(count);
        else
            for (size_t i = 0; i < n; i++)
                noop_ptr();
        return true;
    }

    bool fib(int n, uint64_t *out) override
    {
        *out = fib_serial(n);
        return true;
    }

    bool uts(const UtsSpec &s, UtsOut *out) override
    {
        *out = uts_serial(s);
        return true;
    }

    void warm() override {}
};

} /* namespace */

std::unique_ptr<Design> make_serial(unsigned, const DesignOpts &)
{
    return std::make_unique<Serial>();
}

} /* namespace wb */
