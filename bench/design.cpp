/* Client threads, the default fan-out, and the design registry. */
#include "design.h"

#include "procstat.h"

#include <cstdio>
#include <cstdlib>

namespace wb {

/* ----------------------------------------------------------- ClientGroup */

struct ClientArg {
    ClientGroup *g;
    unsigned c;
};

ClientGroup::ClientGroup(unsigned n)
{
    pthread_mutex_init(&mu_, nullptr);
    pthread_cond_init(&go_, nullptr);
    pthread_cond_init(&done_, nullptr);
    threads_.resize(n);
    for (unsigned c = 0; c < n; c++) {
        auto *a = new ClientArg{this, c};
        if (wbp_raw_thread_create(&threads_[c], nullptr, main_, a) != 0) {
            fprintf(stderr, "wsched_bench: cannot start client thread\n");
            abort();
        }
    }
}

ClientGroup::~ClientGroup()
{
    pthread_mutex_lock(&mu_);
    stop_ = true;
    pthread_cond_broadcast(&go_);
    pthread_mutex_unlock(&mu_);
    for (pthread_t t : threads_)
        pthread_join(t, nullptr);
    pthread_cond_destroy(&go_);
    pthread_cond_destroy(&done_);
    pthread_mutex_destroy(&mu_);
}

void *ClientGroup::main_(void *p)
{
    ClientArg a = *(ClientArg *)p;
    delete (ClientArg *)p;
    ClientGroup *g = a.g;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&g->mu_);
        while (g->gen_ == seen && !g->stop_)
            pthread_cond_wait(&g->go_, &g->mu_);
        if (g->stop_) {
            pthread_mutex_unlock(&g->mu_);
            return nullptr;
        }
        seen = g->gen_;
        const std::function<void(unsigned)> *fn = g->fn_;
        pthread_mutex_unlock(&g->mu_);

        (*fn)(a.c);
        uint64_t t = common_now_ns();
        uint64_t old = g->t1_.load(std::memory_order_relaxed);
        while (t > old && !g->t1_.compare_exchange_weak(old, t, std::memory_order_relaxed))
            ;

        pthread_mutex_lock(&g->mu_);
        if (++g->finished_ == g->threads_.size())
            pthread_cond_signal(&g->done_);
        pthread_mutex_unlock(&g->mu_);
    }
}

Span ClientGroup::run(const std::function<void(unsigned)> &fn)
{
    Span s;
    pthread_mutex_lock(&mu_);
    fn_ = &fn;
    finished_ = 0;
    t1_.store(0, std::memory_order_relaxed);
    s.t0 = common_now_ns();
    gen_++;
    pthread_cond_broadcast(&go_);
    while (finished_ < threads_.size())
        pthread_cond_wait(&done_, &mu_);
    pthread_mutex_unlock(&mu_);
    s.t1 = t1_.load(std::memory_order_relaxed);
    return s;
}

/* ------------------------------------------------------ default fan-out */

bool Design::fanout(const Plan &p, Results &res, ClientGroup *clients, Span *out)
{
    if (!can_submit() || !clients)
        return false;
    const unsigned nc = clients->size();
    if (handles_.size() != nc)
        handles_.assign(nc, {});
    for (auto &h : handles_)
        h.resize(p.nreq() / nc + 1);
    /* Client c owns requests c, c + nc, c + 2nc, ...: all submitted at once,
     * then waited for in submission order. */
    *out = clients->run([&](unsigned c) {
        void **h = handles_[c].data();
        size_t k = 0;
        for (uint32_t r = c; r < p.nreq(); r += nc)
            h[k++] = submit(p, r, res);
        for (size_t j = 0; j < k; j++)
            wait(h[j]);
    });
    return true;
}

/* ------------------------------------------------------------- registry */

const std::vector<std::string> &design_names()
{
    static const std::vector<std::string> names = {
#ifdef WSCHED_BENCH_HAVE_WSCHED
        "wsched",
#endif
        "mutex",
        "tpj",
#ifdef WSCHED_BENCH_HAVE_OMP
        "omp",
#endif
#ifdef WSCHED_BENCH_HAVE_TBB
        "tbb",
#endif
        "serial",
    };
    return names;
}

std::unique_ptr<Design> make_design(const std::string &name, unsigned workers,
                                    const DesignOpts &opts)
{
#ifdef WSCHED_BENCH_HAVE_WSCHED
    if (name == "wsched")
        return make_wsched(workers, opts);
#endif
#ifdef WSCHED_BENCH_HAVE_OMP
    if (name == "omp")
        return make_omp(workers, opts);
#endif
#ifdef WSCHED_BENCH_HAVE_TBB
    if (name == "tbb")
        return make_tbb(workers, opts);
#endif
    if (name == "mutex")
        return make_mutex(workers, opts);
    if (name == "tpj")
        return make_tpj(workers, opts);
    if (name == "serial")
        return make_serial(workers, opts);
    return nullptr;
}

} /* namespace wb */
