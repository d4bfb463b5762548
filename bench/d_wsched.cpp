/*
 * wsched: the library under test, through its public API only. A request is
 * one batch (wsched_submit + wsched_wait) whose slots are the caller's, in
 * input order, submitted by a client thread (client model) or by a job of an
 * outer batch (task model); recursive workloads use wsched_spawn /
 * wsched_sync inside one top-level job. Pools use the library's default configuration apart from
 * the worker count (and WSCHED_POOL_NO_PIN with --no-pin).
 */
#include "design.h"

#include <wsched.h>

#include <cerrno>

namespace wb {
namespace {

struct ReqArg {
    const Plan *p;
    Results *res;
    uint32_t r;
};

int fanout_job(wsched_ctx *, void *arg, size_t index, void *slot)
{
    ReqArg *a = (ReqArg *)arg;
    run_job(*a->p, a->r, (uint32_t)index, (Slot *)slot);
    a->res->finish(a->r);
    return 0;
}

int counting_job(wsched_ctx *, void *arg, size_t, void *)
{
    count_job((std::atomic<uint64_t> *)arg);
    return 0;
}

int inside_job(wsched_ctx *, void *arg, size_t, void *)
{
    (*(const std::function<void()> *)arg)();
    return 0;
}

/* fib: every call a task. The first child is spawned, the second called
 * inline on the same ctx, then sync (the Cilk shape): bench_micro's BM_Fib
 * and tools/overhead.c's task (tests/common.h). */
COMMON_DEFINE_FIB_TASK(fib_task, COMMON_IGNORE)

int fib_job(wsched_ctx *ctx, void *arg, size_t, void *)
{
    fib_task(ctx, arg);
    return 0;
}

/* UTS: spawn all children but the last, run the last inline, sync. */
struct UtsArg {
    const UtsSpec *s;
    uint64_t id;
    bool root;
    UtsOut out;
};

void uts_task(wsched_ctx *ctx, void *p)
{
    UtsArg *a = (UtsArg *)p;
    a->out.nodes = 1;
    a->out.sum = uts_work(*a->s, a->id);
    uint32_t n = uts_children(*a->s, a->id, a->root);
    if (n == 0)
        return;
    UtsArg local[8];
    std::vector<UtsArg> heap;
    UtsArg *ch = local;
    if (n > 8) {
        heap.resize(n);
        ch = heap.data();
    }
    for (uint32_t k = 0; k < n; k++)
        ch[k] = UtsArg{a->s, uts_child(a->id, k), false, UtsOut{}};
    for (uint32_t k = 0; k + 1 < n; k++)
        wsched_spawn(ctx, uts_task, &ch[k]);
    uts_task(ctx, &ch[n - 1]);
    wsched_sync(ctx);
    for (uint32_t k = 0; k < n; k++) {
        a->out.nodes += ch[k].out.nodes;
        a->out.sum += ch[k].out.sum;
    }
}

int uts_job(wsched_ctx *ctx, void *arg, size_t, void *)
{
    uts_task(ctx, arg);
    return 0;
}

/* Slots: each job rewrites its own 8-byte slot `writes` times; packed slots
 * put eight neighbours on one cache line. */
int slot_job(wsched_ctx *, void *arg, size_t index, void *slot)
{
    unsigned writes = *(const unsigned *)arg;
    volatile uint64_t *s = (volatile uint64_t *)slot;
    for (unsigned k = 0; k < writes; k++)
        *s = *s + k + index;
    return 0;
}

class Wsched final : public Design {
public:
    Wsched(unsigned n, const DesignOpts &o)
    {
        wsched_config cfg;
        wsched_config_init(&cfg);
        cfg.nworkers = n;
        if (o.no_pin)
            cfg.flags |= WSCHED_POOL_NO_PIN;
        int rc = wsched_pool_create(&pool_, &cfg);
        if (rc != 0) {
            fail(std::string("wsched_pool_create: ") + wsched_strerror(rc));
            return;
        }
        if (o.reserve) {
            static Slot shape[20];
            wsched_batch_desc like = {};
            like.njobs = 20; /* the plans' largest request */
            like.slots = shape;
            like.slot_size = sizeof(Slot);
            rc = wsched_reserve(pool_, &like, o.reserve);
            if (rc < 0)
                fail(std::string("wsched_reserve: ") + wsched_strerror(rc));
        }
    }
    ~Wsched() override
    {
        if (pool_)
            wsched_pool_destroy(pool_);
    }

    bool can_submit() const override { return pool_ != nullptr; }

    bool alloc_calls(uint64_t *n) const override
    {
        wsched_pool_stats st;
        if (!pool_ || wsched_pool_get_stats(pool_, &st, sizeof st) != 0)
            return false;
        *n = st.allocs;
        return true;
    }

    void prepare(const Plan &p, Results &res) override
    {
        args_.resize(p.nreq());
        for (uint32_t r = 0; r < p.nreq(); r++)
            args_[r] = ReqArg{&p, &res, r};
    }

    void *submit(const Plan &p, uint32_t r, Results &res) override
    {
        wsched_batch_desc d = {};
        d.fn = fanout_job;
        d.arg = &args_[r];
        d.njobs = p.req[r].njobs;
        d.slots = &res.slots[p.req[r].first];
        d.slot_size = sizeof(Slot);
        wsched_batch *b = nullptr;
        int rc = wsched_submit(pool_, &d, &b);
        if (rc != 0)
            fail(std::string("wsched_submit: ") + wsched_strerror(rc));
        return b;
    }

    void wait(void *h) override
    {
        if (!h)
            return;
        wsched_batch *b = (wsched_batch *)h;
        int rc = wsched_wait(b, -1);
        if (rc != 0)
            fail(std::string("wsched_wait: ") + wsched_strerror(rc));
        wsched_batch_free(b);
    }

    /* Task model: one outer batch of one job per request; each submits its
     * request's batch from inside the worker and waits (running other jobs
     * meanwhile). */
    bool fanout_tasks(const Plan &p, Results &res, Span *out) override
    {
        round_p_ = &p;
        round_res_ = &res;
        wsched_batch_desc d = {};
        d.fn = request_job;
        d.arg = this;
        d.njobs = p.nreq();
        out->t0 = common_now_ns();
        bool ok = run(d, nullptr);
        out->t1 = common_now_ns();
        return ok;
    }

    bool empty_batch(size_t n, std::atomic<uint64_t> *count) override
    {
        wsched_batch_desc d = {};
        d.fn = count ? counting_job : common_nop_job;
        d.arg = count;
        d.njobs = n;
        return run(d, nullptr);
    }

    /* singles: one wsched_post per job, into a ring of caller records
     * (one cache line each), as the mutex pool's ring of wait groups; a
     * record is waited for before it is posted again. */
    bool single_prepare(size_t ring) override
    {
        singles_.reset(new SingleRec[ring]);
        for (size_t k = 0; k < ring; k++) {
            singles_[k].job = WSCHED_JOB_INIT;
            singles_[k].posted = false;
        }
        return pool_ != nullptr;
    }
    void single_submit(size_t k, std::atomic<uint64_t> *count) override
    {
        SingleRec &r = singles_[k];
        int rc = wsched_post(pool_, &r.job, count ? counting_job : common_nop_job, count);
        if (rc != 0)
            fail(std::string("wsched_post: ") + wsched_strerror(rc));
        r.posted = rc == 0;
    }
    void single_wait(size_t k) override
    {
        SingleRec &r = singles_[k];
        if (!r.posted)
            return;
        int rc = wsched_job_wait(&r.job, -1);
        if (rc != 0)
            fail(std::string("wsched_job_wait: ") + wsched_strerror(rc));
        r.posted = false;
    }

    bool run_inside(const std::function<void()> &f) override
    {
        wsched_batch_desc d = {};
        d.fn = inside_job;
        d.arg = (void *)&f;
        d.njobs = 1;
        return run(d, nullptr);
    }

    bool fib(int n, uint64_t *out) override
    {
        common_fib a = {n, 0};
        wsched_batch_desc d = {};
        d.fn = fib_job;
        d.arg = &a;
        d.njobs = 1;
        bool ok = run(d, nullptr);
        *out = a.r;
        return ok;
    }

    bool uts(const UtsSpec &s, UtsOut *out) override
    {
        UtsArg a = {&s, uts_root(s), true, UtsOut{}};
        wsched_batch_desc d = {};
        d.fn = uts_job;
        d.arg = &a;
        d.njobs = 1;
        bool ok = run(d, nullptr);
        *out = a.out;
        return ok;
    }

    bool slots(size_t njobs, unsigned writes, bool padded, uint64_t *sum) override
    {
        wsched_batch_desc d = {};
        d.fn = slot_job;
        d.arg = &writes;
        d.njobs = njobs;
        d.slot_size = sizeof(uint64_t);
        d.flags = padded ? WSCHED_BATCH_PAD_SLOTS : 0;
        return run(d, sum);
    }

private:
    static int request_job(wsched_ctx *, void *arg, size_t r, void *)
    {
        Wsched *self = (Wsched *)arg;
        self->wait(self->submit(*self->round_p_, (uint32_t)r, *self->round_res_));
        return 0;
    }

    /* Submit, wait, and (when sum is given) add up 8-byte slots. */
    bool run(const wsched_batch_desc &d, uint64_t *sum)
    {
        wsched_batch *b = nullptr;
        int rc = wsched_submit(pool_, &d, &b);
        if (rc != 0) {
            fail(std::string("wsched_submit: ") + wsched_strerror(rc));
            return false;
        }
        rc = wsched_wait(b, -1);
        if (rc != 0) {
            fail(std::string("wsched_wait: ") + wsched_strerror(rc));
            wsched_batch_free(b);
            return false;
        }
        if (sum) {
            uint64_t s = 0;
            for (size_t i = 0; i < d.njobs; i++)
                s += *(const uint64_t *)wsched_batch_slot(b, i);
            *sum = s;
        }
        wsched_batch_free(b);
        return true;
    }

    wsched_pool *pool_ = nullptr;
    std::vector<ReqArg> args_;
    struct alignas(64) SingleRec {
        wsched_job job;
        bool posted;
    };
    std::unique_ptr<SingleRec[]> singles_; /* the singles ring */
    const Plan *round_p_ = nullptr; /* the task-model round in progress */
    Results *round_res_ = nullptr;
};

} /* namespace */

std::unique_ptr<Design> make_wsched(unsigned workers, const DesignOpts &opts)
{
    return std::make_unique<Wsched>(workers, opts);
}

} /* namespace wb */
