/*
 * The designs under comparison, behind one interface. A Design object is one
 * scheduler started with a given number of workers (a pool, a team, an arena,
 * or nothing); the benchmark cells construct one, run a workload through it,
 * and destroy it. Every operation runs the shared workload of workload.h, so
 * the designs differ only in how they schedule it.
 *
 * Operations a design cannot do return false (or, for the external-submission
 * pair, report can_submit() == false); the cell is then skipped with a reason.
 */
#ifndef WSCHED_BENCH_DESIGN_H
#define WSCHED_BENCH_DESIGN_H

#include "workload.h"

#include <pthread.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wb {

struct Span {
    uint64_t t0 = 0, t1 = 0; /* common_now_ns() at the start and the end of a round */
};

/*
 * A fixed set of client threads that submit requests, created once per cell
 * (with wbp_raw_thread_create, so they are not counted as the design's
 * threads) and released all at once for each round.
 */
class ClientGroup {
public:
    explicit ClientGroup(unsigned n);
    ~ClientGroup();
    ClientGroup(const ClientGroup &) = delete;
    ClientGroup &operator=(const ClientGroup &) = delete;
    unsigned size() const { return (unsigned)threads_.size(); }
    /* Run fn(c) on every client c at once. t0 is taken just before the
     * release, t1 is the latest time a client finished. */
    Span run(const std::function<void(unsigned)> &fn);

private:
    static void *main_(void *self);
    std::vector<pthread_t> threads_;
    pthread_mutex_t mu_;
    pthread_cond_t go_, done_;
    uint64_t gen_ = 0;
    unsigned finished_ = 0;
    bool stop_ = false;
    const std::function<void(unsigned)> *fn_ = nullptr;
    std::atomic<uint64_t> t1_{0};
};

struct DesignOpts {
    /* wsched: leave workers unpinned (WSCHED_POOL_NO_PIN). */
    bool no_pin = false;
    /* wsched: wsched_reserve this many request-shaped batches (20 jobs,
     * caller's slots) at pool creation: a first burst without fresh pages. */
    size_t reserve = 0;
    /* Client model (fan-out, light load, open loop): outside threads only
     * submit and wait, all N workers are the runtime's. Matters for TBB,
     * whose arena otherwise keeps a slot for a thread that enters it. */
    bool external_only = false;
};

class Design {
public:
    virtual ~Design() = default;

    /* Empty when the design started; otherwise why it did not. Set also when
     * a later operation fails (the cell is then reported as an error). */
    const std::string &error() const { return err_; }
    bool failed() const { return !err_.empty(); }

    /* Results as slots in input order (false) or appended records (true). */
    virtual bool uses_records() const { return false; }

    /* Size per-request state for plan p before any round (not timed). */
    virtual void prepare(const Plan &, Results &) {}

    /* Calls the design's runtime made to its allocator so far, into *n
     * (wsched: wsched_pool_stats.allocs); false when it does not count them. */
    virtual bool alloc_calls(uint64_t *) const { return false; }

    /* Extra per-cell figures a design wants reported (name, value). */
    virtual void counters(std::vector<std::pair<std::string, double>> &) const {}

    /* --- requests ---------------------------------------------------- */

    /* External submission: start request r (not blocking) and wait for it.
     * Designs that cannot take work from outside their own threads return
     * can_submit() == false and override fanout() and request(). */
    virtual bool can_submit() const { return false; }
    virtual void *submit(const Plan &, uint32_t, Results &) { return nullptr; }
    virtual void wait(void *) {}

    /* Whether jobs must count their request down (Results tracking mode):
     * for designs whose wait() has nothing else to wait on. */
    virtual bool needs_tracking() const { return false; }

    /* Fan-out, client model: every request of p arrives at t0 on the client
     * threads, which submit and wait. The default (submitting designs) gives
     * client c requests c, c + C, ...; each submits all of its requests, then
     * waits for them in order. False when the design takes no work from
     * outside its own threads. */
    virtual bool fanout(const Plan &p, Results &res, ClientGroup *clients, Span *out);
    /* Whether fanout() uses the client group. */
    virtual bool uses_clients() const { return can_submit(); }

    /* Fan-out, task model: the requests start inside the scheduler, each as
     * a task that spawns its jobs and waits for them (what OpenMP and TBB
     * users write when the requests come from inside the runtime). False
     * when the design cannot wait inside its workers. */
    virtual bool fanout_tasks(const Plan &, Results &, Span *) { return false; }

    /* One request, from the calling external thread, synchronously. */
    virtual void request(const Plan &p, uint32_t r, Results &res) { wait(submit(p, r, res)); }

    /* --- empty jobs -------------------------------------------------- */

    /* Run a batch of n no-op jobs (counting ones when count != NULL) and
     * wait, from whichever thread calls: an external one, or a worker inside
     * run_inside(). False when the design does not do this n. */
    virtual bool empty_batch(size_t n, std::atomic<uint64_t> *count) = 0;
    /* Run f on one of the design's workers and wait. False if unsupported. */
    virtual bool run_inside(const std::function<void()> &) { return false; }

    /* --- single jobs (singles) --------------------------------------- */

    /* Empty jobs submitted one at a time from an outside thread, at most
     * `ring` outstanding: single_prepare sizes the ring of handles (false:
     * not offered); single_submit(k) starts one job (counting when count !=
     * NULL) in ring slot k, which is free; single_wait(k) waits for slot k's
     * job and releases what it holds (wsched: the batch). */
    virtual bool single_prepare(size_t) { return false; }
    virtual void single_submit(size_t, std::atomic<uint64_t> *) {}
    virtual void single_wait(size_t) {}

    /* --- fork-join --------------------------------------------------- */
    virtual bool fib(int, uint64_t *) { return false; }
    virtual bool uts(const UtsSpec &, UtsOut *) { return false; }

    /* --- slots (wsched only) ----------------------------------------- */
    virtual bool slots(size_t, unsigned, bool, uint64_t *) { return false; }

    /* Make sure every worker thread has started (before idle measurements). */
    virtual void warm() { empty_batch(64, nullptr); }

protected:
    /* Record a failure. Safe from any thread: the first one wins; it is read
     * once the threads involved have finished (after a round). */
    void fail(const std::string &why)
    {
        bool expected = false;
        if (failing_.compare_exchange_strong(expected, true))
            err_ = why;
    }

private:
    std::atomic<bool> failing_{false};
    std::string err_;
    std::vector<std::vector<void *>> handles_; /* per client, for fanout() */
};

/* The designs compiled into this binary, in report order. */
const std::vector<std::string> &design_names();
/* NULL when name is not compiled in. Check ->failed() on the result. */
std::unique_ptr<Design> make_design(const std::string &name, unsigned workers,
                                    const DesignOpts &opts);

/* One factory per design file. */
std::unique_ptr<Design> make_serial(unsigned workers, const DesignOpts &);
std::unique_ptr<Design> make_wsched(unsigned workers, const DesignOpts &);
std::unique_ptr<Design> make_mutex(unsigned workers, const DesignOpts &);
std::unique_ptr<Design> make_tpj(unsigned workers, const DesignOpts &);
std::unique_ptr<Design> make_omp(unsigned workers, const DesignOpts &);
std::unique_ptr<Design> make_tbb(unsigned workers, const DesignOpts &);

} /* namespace wb */

#endif
