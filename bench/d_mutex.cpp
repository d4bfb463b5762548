/*
 * mutex: the textbook pool. N threads take tasks from one shared FIFO under a
 * pthread mutex and condition variable; submitting a request pushes its jobs
 * one task at a time (the pool's only entry point is submit(fn, arg)); each
 * job appends its result to one shared array under a second mutex and then
 * counts its request's wait group down (mutex + condvar, like Go's
 * sync.WaitGroup). Results land in completion order, as in the Go code.
 *
 * A worker that waits for a batch blocks, so waiting from inside the pool
 * deadlocks with one worker: run_inside needs two or more, and fork-join is
 * not offered.
 */
#include "design.h"

#include <cstdlib>
#include <cstring>

namespace wb {
namespace {

struct Task {
    void (*fn)(void *);
    void *arg;
};

class WaitGroup {
public:
    WaitGroup()
    {
        pthread_mutex_init(&mu_, nullptr);
        pthread_cond_init(&cv_, nullptr);
    }
    ~WaitGroup()
    {
        pthread_cond_destroy(&cv_);
        pthread_mutex_destroy(&mu_);
    }
    void add(long k)
    {
        pthread_mutex_lock(&mu_);
        n_ += k;
        pthread_mutex_unlock(&mu_);
    }
    void done()
    {
        pthread_mutex_lock(&mu_);
        if (--n_ == 0)
            pthread_cond_broadcast(&cv_);
        pthread_mutex_unlock(&mu_);
    }
    void wait()
    {
        pthread_mutex_lock(&mu_);
        while (n_ > 0)
            pthread_cond_wait(&cv_, &mu_);
        pthread_mutex_unlock(&mu_);
    }

private:
    pthread_mutex_t mu_;
    pthread_cond_t cv_;
    long n_ = 0;
};

class TextbookPool {
public:
    explicit TextbookPool(unsigned n)
    {
        pthread_mutex_init(&mu_, nullptr);
        pthread_cond_init(&cv_, nullptr);
        cap_ = 1024;
        ring_ = (Task *)malloc(cap_ * sizeof(Task));
        if (!ring_)
            abort();
        for (unsigned k = 0; k < n; k++) {
            pthread_t t;
            if (pthread_create(&t, nullptr, main_, this) != 0)
                break;
            threads_.push_back(t);
        }
    }
    ~TextbookPool()
    {
        pthread_mutex_lock(&mu_);
        stop_ = true;
        pthread_cond_broadcast(&cv_);
        pthread_mutex_unlock(&mu_);
        for (pthread_t t : threads_)
            pthread_join(t, nullptr);
        free(ring_);
        pthread_cond_destroy(&cv_);
        pthread_mutex_destroy(&mu_);
    }
    size_t started() const { return threads_.size(); }

    void submit(Task t)
    {
        pthread_mutex_lock(&mu_);
        if (count_ == cap_)
            grow();
        ring_[(head_ + count_) & (cap_ - 1)] = t;
        count_++;
        pthread_cond_signal(&cv_);
        pthread_mutex_unlock(&mu_);
    }

private:
    /* Double the ring, unwrapping it. Called with mu_ held. */
    void grow()
    {
        Task *bigger = (Task *)malloc(2 * cap_ * sizeof(Task));
        if (!bigger)
            abort();
        for (size_t k = 0; k < count_; k++)
            bigger[k] = ring_[(head_ + k) & (cap_ - 1)];
        free(ring_);
        ring_ = bigger;
        head_ = 0;
        cap_ *= 2;
    }

    static void *main_(void *p)
    {
        TextbookPool *pool = (TextbookPool *)p;
        for (;;) {
            pthread_mutex_lock(&pool->mu_);
            while (pool->count_ == 0 && !pool->stop_)
                pthread_cond_wait(&pool->cv_, &pool->mu_);
            if (pool->count_ == 0) { /* stopping, queue drained */
                pthread_mutex_unlock(&pool->mu_);
                return nullptr;
            }
            Task t = pool->ring_[pool->head_];
            pool->head_ = (pool->head_ + 1) & (pool->cap_ - 1);
            pool->count_--;
            pthread_mutex_unlock(&pool->mu_);
            t.fn(t.arg);
        }
    }

    pthread_mutex_t mu_;
    pthread_cond_t cv_;
    Task *ring_;
    size_t cap_, head_ = 0, count_ = 0;
    bool stop_ = false;
    std::vector<pthread_t> threads_;
};

class MutexDesign;

struct JobArg {
    MutexDesign *d;
    const Plan *p;
    Results *res;
    uint32_t r, i;
};

struct EmptyBatch {
    WaitGroup wg;
    std::atomic<uint64_t> *count;
};

/* singles: one task per submit, waited for through its own wait group. */
struct Single {
    WaitGroup wg;
    std::atomic<uint64_t> *count;
};

class MutexDesign final : public Design {
public:
    MutexDesign(unsigned n) : workers_(n), pool_(n)
    {
        pthread_mutex_init(&append_mu_, nullptr);
        if (pool_.started() != n)
            fail("pthread_create failed");
    }
    ~MutexDesign() override { pthread_mutex_destroy(&append_mu_); }

    bool uses_records() const override { return true; }
    bool can_submit() const override { return true; }

    void prepare(const Plan &p, Results &) override
    {
        args_.resize(p.total_jobs);
        wg_ = std::make_unique<WaitGroup[]>(p.nreq());
    }

    void *submit(const Plan &p, uint32_t r, Results &res) override
    {
        const Request &q = p.req[r];
        wg_[r].add(q.njobs);
        for (uint32_t i = 0; i < q.njobs; i++) {
            JobArg *a = &args_[q.first + i];
            *a = JobArg{this, &p, &res, r, i};
            pool_.submit(Task{job, a});
        }
        return &wg_[r];
    }

    void wait(void *h) override { ((WaitGroup *)h)->wait(); }

    bool empty_batch(size_t n, std::atomic<uint64_t> *count) override
    {
        EmptyBatch b;
        b.count = count;
        b.wg.add((long)n);
        for (size_t i = 0; i < n; i++)
            pool_.submit(Task{count ? counting : empty, &b});
        b.wg.wait();
        return true;
    }

    bool single_prepare(size_t ring) override
    {
        singles_ = std::make_unique<Single[]>(ring);
        return true;
    }
    void single_submit(size_t k, std::atomic<uint64_t> *count) override
    {
        Single *s = &singles_[k];
        s->count = count;
        s->wg.add(1);
        pool_.submit(Task{count ? single_counting : single_empty, s});
    }
    void single_wait(size_t k) override { singles_[k].wg.wait(); }

    bool run_inside(const std::function<void()> &f) override
    {
        if (workers_ < 2)
            return false; /* the only worker would block waiting on itself */
        struct Inside {
            const std::function<void()> *f;
            WaitGroup wg;
        } in;
        in.f = &f;
        in.wg.add(1);
        pool_.submit(Task{[](void *p) {
                              Inside *self = (Inside *)p;
                              (*self->f)();
                              self->wg.done();
                          },
                          &in});
        in.wg.wait();
        return true;
    }

private:
    static void job(void *p)
    {
        JobArg *a = (JobArg *)p;
        Slot s;
        run_job(*a->p, a->r, a->i, &s);
        Results &res = *a->res;
        pthread_mutex_lock(&a->d->append_mu_);
        res.records[res.nrecords++] = Record{a->r, a->i, s.value, s.done_ns};
        pthread_mutex_unlock(&a->d->append_mu_);
        res.finish(a->r);
        a->d->wg_[a->r].done();
    }
    static void empty(void *p) { ((EmptyBatch *)p)->wg.done(); }
    static void counting(void *p)
    {
        EmptyBatch *b = (EmptyBatch *)p;
        count_job(b->count);
        b->wg.done();
    }

    static void single_empty(void *p) { ((Single *)p)->wg.done(); }
    static void single_counting(void *p)
    {
        Single *s = (Single *)p;
        count_job(s->count);
        s->wg.done();
    }

    unsigned workers_;
    TextbookPool pool_;
    pthread_mutex_t append_mu_;
    std::vector<JobArg> args_;
    std::unique_ptr<WaitGroup[]> wg_;
    std::unique_ptr<Single[]> singles_;
};

} /* namespace */

std::unique_ptr<Design> make_mutex(unsigned workers, const DesignOpts &)
{
    return std::make_unique<MutexDesign>(workers);
}

} /* namespace wb */
