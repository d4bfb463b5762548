// wsched.hpp coroutine jobs (C++20): waiting_job and wait_context over the
// stackless waits of wsched.h. Every slot is written and every job runs
// its body exactly once across its calls; each call knows why it runs; a
// timer never resumes early; a batch wait sees the child's final slots;
// arming errors come back without suspending; a cancellation (user,
// fail-fast, deadline) destroys the pending coroutine, running its locals'
// destructors, and the code after its co_await never runs; exceptions end
// as WSCHED_EEXCEPTION; the frame goes in the slot when it fits, else on
// the heap; tasks spawned before a co_await are joined by it; wakers
// woken from another thread (or at once) and fds made ready from another
// thread resume with their values, their deadlines time out.
// Synchronisation is by the batches' own waits and counters, never by
// sleeping.
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

#include "check.hpp"

#if !WSCHED_HPP_COROUTINES
#error "test_cpp_coro needs C++20 coroutines (WSCHED_HPP_COROUTINES)"
#endif

using namespace std::chrono_literals;

namespace {

constexpr auto rlx = std::memory_order_relaxed;

// Per-index counters of a test's jobs: relaxed, read after wait_idle (the
// jobs' returns are ordered before it).
struct tally {
    explicit tally(std::size_t n) : started(n), finished(n) {}
    std::vector<std::atomic<int>> started, finished;
    void check_once(std::size_t n) const
    {
        for (std::size_t i = 0; i < n; i++) {
            CHECK_EQ(started[i].load(rlx), 1);
            CHECK_EQ(finished[i].load(rlx), 1);
        }
    }
};

// A local of a coroutine that counts its constructions and destructions.
struct witness {
    std::atomic<int> *made, *gone;
    witness(std::atomic<int> &m, std::atomic<int> &g) : made(&m), gone(&g) { made->fetch_add(1, rlx); }
    witness(const witness &) = delete;
    witness &operator=(const witness &) = delete;
    ~witness() { gone->fetch_add(1, rlx); }
};

struct job_error : std::runtime_error {
    explicit job_error(std::size_t i) : std::runtime_error("job " + std::to_string(i)), index(i) {}
    std::size_t index;
};

// --------------------------------------------------------------- sleeps

struct sleep_slot {
    std::string text; // not trivially destructible: the slot's live byte
    int naps = 0;
    int early = 0;      // resumed before the time asked
    int wrong_kind = 0; // a resumption whose kind was not TIMER
    bool first = false; // the first call said FIRST, and the right index
};

// 300 jobs x 3 sleeps of 1 ms on 2 workers, one of each form
// (sleep_until ns, sleep_until time_point, sleep_for), a lambda coroutine
// whose captures live in the batch.
void test_sleeps(wsched::pool &p)
{
    const std::size_t n = 300;
    tally t(n);
    auto job = [&t](wsched::wait_context &w, std::size_t i, sleep_slot &s) -> wsched::waiting_job {
        t.started[i].fetch_add(1, rlx);
        s.first = w.resume_kind() == WSCHED_RESUME_FIRST && w.index() == i;
        std::uint64_t due = wsched_now_ns() + 1000000;
        CHECK_OK(co_await w.sleep_until(due));
        s.early += wsched_now_ns() < due;
        s.wrong_kind += w.resume_kind() != WSCHED_RESUME_TIMER;
        s.naps++;

        wsched::clock::time_point tp = wsched::clock::now() + 1ms;
        CHECK_OK(co_await w.sleep_until(tp));
        s.early += wsched::clock::now() < tp;
        s.wrong_kind += w.resume_kind() != WSCHED_RESUME_TIMER;
        s.naps++;

        due = wsched_now_ns() + 1000000;
        CHECK_OK(co_await w.sleep_for(1ms));
        s.early += wsched_now_ns() < due;
        s.wrong_kind += w.resume_kind() != WSCHED_RESUME_TIMER;
        s.naps++;

        s.text = std::to_string(i * 7);
        t.finished[i].fetch_add(1, rlx);
        co_return 0;
    };
    std::uint64_t t0 = wsched_now_ns();
    auto b = p.submit_waiting<sleep_slot>(n, job);
    CHECK_OK(b.wait());
    std::uint64_t took = wsched_now_ns() - t0;
    CHECK(took >= 3000000); // three naps in a row
    for (std::size_t i = 0; i < n; i++) {
        CHECK_EQ(b.status(i), 0);
        CHECK_STR(b[i].text, std::to_string(i * 7));
        CHECK_EQ(b[i].naps, 3);
        CHECK_EQ(b[i].early, 0);
        CHECK_EQ(b[i].wrong_kind, 0);
        CHECK(b[i].first);
    }
    wsched_outcome o = b.outcome();
    CHECK_EQ(o.end, WSCHED_END_COMPLETED);
    CHECK_EQ(o.ok, n);
    CHECK_OK(b.wait_idle());
    t.check_once(n);
    std::printf("sleeps: %zu jobs x 3 x 1 ms in %.1f ms: ok\n", n, static_cast<double>(took) / 1e6);
}

// A job function (not a lambda), a Slot of void, a pad_slots batch.
struct plain_counts {
    std::atomic<int> done{0};
};
plain_counts g_plain;

wsched::waiting_job no_slot_job(wsched::wait_context &w, std::size_t)
{
    CHECK_OK(co_await w.sleep_for(200us));
    g_plain.done.fetch_add(1, rlx);
    co_return 0;
}

void test_function_void_slot(wsched::pool &p)
{
    auto b = p.submit_waiting<void>(64, no_slot_job, wsched::options().with_padded_slots());
    CHECK_OK(b.wait());
    CHECK_OK(b.wait_idle());
    CHECK_EQ(b.outcome().ok, 64u);
    CHECK_EQ(g_plain.done.load(rlx), 64);
    std::printf("function job, void slot: ok\n");
}

// ---------------------------------------------------------- batch waits

struct sum_slot {
    std::uint64_t plain_sum = 0, coro_sum = 0;
    std::size_t plain_ok = 0, coro_ok = 0;
    int kind1 = -1, kind2 = -1;
};

// Each of 16 jobs fans out twice and waits without holding its worker:
// a plain child batch of 32 jobs, then a child of coroutine jobs that
// sleep. After each wait the child's slots are final.
void test_batch_waits(wsched::pool &p)
{
    const std::size_t n = 16;
    tally t(n);
    auto job = [&t](wsched::wait_context &w, std::size_t i, sum_slot &s) -> wsched::waiting_job {
        t.started[i].fetch_add(1, rlx);
        auto child = w.submit(32, [i](std::size_t k) -> std::uint64_t { return i * 1000 + k; });
        CHECK_OK(co_await w.wait_batch(child));
        s.kind1 = w.resume_kind();
        for (std::size_t k = 0; k < child.size(); k++)
            if (child.ok(k)) {
                s.plain_ok++;
                s.plain_sum += child[k];
            }

        auto coro = w.submit_waiting<std::uint64_t>(
            4, [i](wsched::wait_context &cw, std::size_t k, std::uint64_t &out) -> wsched::waiting_job {
                CHECK_OK(co_await cw.sleep_for(300us));
                out = i + k;
                co_return 0;
            });
        CHECK_OK(co_await w.wait_batch(coro.native_handle()));
        s.kind2 = w.resume_kind();
        for (std::size_t k = 0; k < coro.size(); k++)
            if (coro.ok(k)) {
                s.coro_ok++;
                s.coro_sum += coro[k];
            }
        t.finished[i].fetch_add(1, rlx);
        co_return 0;
    };
    auto b = p.submit_waiting<sum_slot>(n, job);
    CHECK_OK(b.wait());
    for (std::size_t i = 0; i < n; i++) {
        CHECK_EQ(b.status(i), 0);
        CHECK_EQ(b[i].kind1, WSCHED_RESUME_BATCH);
        CHECK_EQ(b[i].kind2, WSCHED_RESUME_BATCH);
        CHECK_EQ(b[i].plain_ok, 32u);
        CHECK_EQ(b[i].plain_sum, 32 * i * 1000 + 496); // sum of i*1000 + k, k < 32
        CHECK_EQ(b[i].coro_ok, 4u);
        CHECK_EQ(b[i].coro_sum, 4 * i + 6);
    }
    CHECK_OK(b.wait_idle());
    t.check_once(n);
    std::printf("batch waits: ok\n");
}

// --------------------------------------------------- statuses and errors

struct err_slot {
    int e_empty = 0, e_null = 0;
    int kind_after = -1;
};

// Arming errors come back from co_await at once, in the same call (the
// resume kind is still FIRST), as error codes; co_return takes an int or
// an error_code.
void test_errors(wsched::pool &p)
{
    auto job = [](wsched::wait_context &w, std::size_t i, err_slot &s) -> wsched::waiting_job {
        wsched::batch<int> none;
        std::error_code a = co_await w.wait_batch(none);
        std::error_code b = co_await w.wait_batch(nullptr);
        s.e_empty = a.value();
        s.e_null = b.value();
        s.kind_after = w.resume_kind();
        if (i == 1)
            co_return wsched::make_error_code(-ECONNREFUSED);
        if (i == 2)
            co_return std::make_error_code(std::errc::timed_out);
        if (i == 3)
            co_return -EIO;
        if (i == 4)
            co_return WSCHED_PENDING; // over: must never be called again
        co_return 0;
    };
    auto b = p.submit_waiting<err_slot>(5, job);
    CHECK_OK(b.wait());
    for (std::size_t i = 0; i < 5; i++) {
        // Read past the status check of b[i]: every job ran, so every slot holds an err_slot.
        const err_slot &s = *std::launder(static_cast<const err_slot *>(wsched_batch_slot(b.native_handle(), i)));
        CHECK_EQ(s.e_empty, -EINVAL);
        CHECK_EQ(s.e_null, -EINVAL);
        CHECK_EQ(s.kind_after, WSCHED_RESUME_FIRST);
    }
    CHECK_EQ(b.status(0), 0);
    CHECK_EQ(b.status(1), -ECONNREFUSED);
    CHECK(b.error(2) == std::errc::timed_out);
    CHECK_EQ(b.status(3), -EIO);
    CHECK_EQ(b.status(4), WSCHED_EJOBCODE);

    // max_parallel with coroutine jobs: the limit counts jobs in flight.
    auto noop = [](wsched::wait_context &w, std::size_t, int &s) -> wsched::waiting_job {
        if (std::error_code e = co_await w.sleep_for(std::chrono::microseconds(200)))
            co_return e;
        s = 1;
        co_return 0;
    };
    std::error_code ec;
    auto lim = p.submit_waiting<int>(16, noop, wsched::options().with_max_parallel(2), ec);
    CHECK(!ec);
    CHECK_OK(lim.wait());
    for (std::size_t i = 0; i < 16; i++)
        CHECK_EQ(lim.status(i), 0);
    CHECK_THROWS(wsched::error, (void)p.submit_waiting<int>(0, noop));
    std::printf("errors and statuses: ok\n");
}

// --------------------------------------------------------- cancellation

struct cancel_counts {
    std::atomic<int> made{0}, gone{0}, pending{0}, after{0};
    void check_balanced() const
    {
        CHECK_EQ(made.load(rlx), gone.load(rlx));
        CHECK_EQ(after.load(rlx), 0);
    }
};

struct cancel_slot {
    std::string note = "untouched";
};

// The body every cancelled job runs: two locals (one on the heap) live
// across a long sleep; the code after it must never run.
wsched::waiting_job holder(wsched::wait_context &w, cancel_slot &s, cancel_counts &c,
                           std::chrono::milliseconds nap, int fail_after = -1)
{
    if (fail_after >= 0) { // fail once fail_after others are pending
        while (c.pending.load(rlx) < fail_after)
            CHECK_OK(co_await w.sleep_for(0ns)); // a yield to the other jobs
        co_return -EIO;
    }
    witness a(c.made, c.gone);
    auto b = std::make_unique<witness>(c.made, c.gone);
    s.note = "holding";
    c.pending.fetch_add(1, rlx);
    (void)co_await w.sleep_for(nap);
    c.after.fetch_add(1, rlx);
    co_return 0;
}

// A user cancel while every job is pending: each is destroyed, its two
// locals' destructors run, its slot is WSCHED_ECANCELLED.
void test_cancel(wsched::pool &p)
{
    const std::size_t n = 40;
    cancel_counts c;
    auto job = [&c](wsched::wait_context &w, std::size_t, cancel_slot &s) {
        return holder(w, s, c, 200ms);
    };
    auto b = p.submit_waiting<cancel_slot>(n, job);
    while (c.pending.load(rlx) < static_cast<int>(n)) // every job started (the watchdog bounds it)
        std::this_thread::yield();
    CHECK_OK(b.cancel());
    CHECK_OK(b.wait());
    CHECK_OK(b.wait_idle());
    CHECK_EQ(b.outcome().end, WSCHED_END_CANCELLED);
    for (std::size_t i = 0; i < n; i++)
        CHECK_EQ(b.status(i), WSCHED_ECANCELLED);
    CHECK_EQ(c.made.load(rlx), static_cast<int>(2 * n));
    c.check_balanced();
    std::printf("cancel: %d locals destroyed: ok\n", c.gone.load(rlx));
}

// Fail-fast: job 0 fails once all the others are pending; they end
// cancelled, and every local that was made is destroyed.
void test_fail_fast(wsched::pool &p)
{
    const std::size_t n = 30;
    cancel_counts c;
    auto job = [&c](wsched::wait_context &w, std::size_t i, cancel_slot &s) -> wsched::waiting_job {
        return holder(w, s, c, 500ms, i == 0 ? static_cast<int>(n) - 1 : -1);
    };
    auto b = p.submit_waiting<cancel_slot>(n, job, wsched::options().with_policy(wsched::policy::fail_fast));
    CHECK_OK(b.wait());
    CHECK_OK(b.wait_idle());
    wsched_outcome o = b.outcome();
    CHECK_EQ(o.end, WSCHED_END_FAILED);
    CHECK_EQ(o.first_error, -EIO);
    CHECK_EQ(b.status(0), -EIO);
    for (std::size_t i = 1; i < n; i++)
        CHECK_EQ(b.status(i), WSCHED_ECANCELLED);
    CHECK_EQ(c.made.load(rlx), static_cast<int>(2 * (n - 1)));
    c.check_balanced();
    std::printf("fail-fast: ok\n");
}

// The batch deadline passes while the jobs sleep: wait() returns with
// every slot WSCHED_EDEADLINE; the cleanup calls destroy the coroutines
// (wait_idle waits for them).
void test_deadline(wsched::pool &p)
{
    const std::size_t n = 20;
    cancel_counts c;
    auto job = [&c](wsched::wait_context &w, std::size_t, cancel_slot &s) {
        return holder(w, s, c, 150ms);
    };
    auto b = p.submit_waiting<cancel_slot>(n, job, wsched::options().with_budget(10ms));
    CHECK_OK(b.wait());
    CHECK_EQ(b.outcome().end, WSCHED_END_DEADLINE);
    for (std::size_t i = 0; i < n; i++)
        CHECK_EQ(b.status(i), WSCHED_EDEADLINE);
    CHECK_OK(b.wait_idle());
    c.check_balanced();
    std::printf("deadline: ok\n");
}

// ----------------------------------------------------------- exceptions

struct fragile_slot {
    static std::atomic<int> constructed;
    int v = 0;
    fragile_slot()
    {
        if (constructed.fetch_add(1, rlx) == 7) // the eighth Slot to be made
            throw std::runtime_error("slot constructor");
    }
};
std::atomic<int> fragile_slot::constructed{0};

// Throws before the first co_await (job 3), after a resumption (job 5),
// and from Slot's constructor (the eighth made): WSCHED_EEXCEPTION each,
// the locals of the two coroutines destroyed, no C frame unwound.
void test_exceptions(wsched::pool &p)
{
    const std::size_t n = 12;
    cancel_counts c;
    tally t(n);
    auto job = [&c, &t](wsched::wait_context &w, std::size_t i, fragile_slot &s) -> wsched::waiting_job {
        t.started[i].fetch_add(1, rlx);
        witness a(c.made, c.gone);
        if (i == 3)
            throw job_error(i);
        CHECK_OK(co_await w.sleep_for(100us));
        if (i == 5)
            throw job_error(i);
        s.v = static_cast<int>(i) + 1;
        co_return 0;
    };
    auto b = p.submit_waiting<fragile_slot>(n, job);
    CHECK_OK(b.wait());
    CHECK_OK(b.wait_idle());
    std::size_t threw = 0, unstarted = 0;
    for (std::size_t i = 0; i < n; i++) {
        if (t.started[i].load(rlx) == 0) { // its Slot's constructor threw
            CHECK_EQ(b.status(i), WSCHED_EEXCEPTION);
            unstarted++;
        } else if (i == 3 || i == 5) {
            CHECK_EQ(b.status(i), WSCHED_EEXCEPTION);
            threw++;
        } else {
            CHECK_EQ(b.status(i), 0);
            CHECK_EQ(b[i].v, static_cast<int>(i) + 1);
        }
    }
    CHECK_EQ(unstarted, 1u);
    CHECK(threw >= 1); // 3 and 5, unless one of them was the Slot that threw
    CHECK_EQ(b.outcome().failed, threw + unstarted);
    CHECK(b.exception() != nullptr);
    bool caught = false;
    try {
        b.rethrow_if_failed();
    } catch (const job_error &e) {
        caught = true;
        CHECK(e.index == 3 || e.index == 5);
        CHECK_EQ(b.exception_index(), e.index);
    } catch (const std::runtime_error &e) {
        caught = true;
        CHECK_STR(e.what(), "slot constructor");
    }
    CHECK(caught);
    c.check_balanced();
    std::printf("exceptions: ok\n");
}

// ------------------------------------------------ frames, tasks, yields

struct frame_slot {
    bool in_slot = false;
    std::uint64_t value = 0;
};

wsched::waiting_job small_job(wsched::wait_context &w, std::size_t i, frame_slot &s)
{
    CHECK_OK(co_await w.sleep_for(0ns)); // a yield: the next timer tick
    CHECK_EQ(w.resume_kind(), WSCHED_RESUME_TIMER);
    s.in_slot = w.frame_in_slot();
    s.value = i + 100;
    co_return 0;
}

wsched::waiting_job big_job(wsched::wait_context &w, std::size_t i, frame_slot &s)
{
    unsigned char buf[4096]; // lives across the co_await: in the frame
    std::memset(buf, static_cast<int>(i & 0xff), sizeof buf);
    CHECK_OK(co_await w.sleep_for(100us));
    std::uint64_t sum = 0;
    for (unsigned char x : buf)
        sum += x;
    s.in_slot = w.frame_in_slot();
    s.value = sum;
    co_return 0;
}

// A spawned task left unsynced before a co_await: the co_await joins it,
// so its result is ready after the resumption (and its destructor, at the
// frame's end, has nothing to join).
wsched::waiting_job spawner(wsched::wait_context &w, std::size_t i, frame_slot &s)
{
    wsched::task left([i](wsched::context &c) { return check::fib(c, 12) + i; });
    w.spawn(left);
    CHECK_OK(co_await w.sleep_for(100us));
    CHECK(!left.pending());
    s.value = left.get();
    co_return 0;
}

void test_frames_and_tasks(wsched::pool &p)
{
    const std::size_t n = 16;
    {
        auto b = p.submit_waiting<frame_slot, 1024>(n, small_job);
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < n; i++) {
            CHECK(b.ok(i));
            CHECK(b[i].in_slot);
            CHECK_EQ(b[i].value, i + 100);
        }
    }
    {
        auto b = p.submit_waiting<frame_slot, 0>(n, small_job);
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < n; i++) {
            CHECK(b.ok(i));
            CHECK(!b[i].in_slot);
            CHECK_EQ(b[i].value, i + 100);
        }
    }
    {
        auto b = p.submit_waiting<frame_slot>(n, big_job); // 4 KiB does not fit 256 bytes
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < n; i++) {
            CHECK(b.ok(i));
            CHECK(!b[i].in_slot);
            CHECK_EQ(b[i].value, 4096u * (i & 0xff));
        }
    }
    {
        auto b = p.submit_waiting<frame_slot, 2048>(n, spawner);
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < n; i++) {
            CHECK(b.ok(i));
            CHECK_EQ(b[i].value, 144 + i); // fib(12) + i
        }
    }
    std::printf("frames (slot, heap) and tasks: ok\n");
}

// Coroutine jobs that finish in their first call, without a wait.
wsched::waiting_job instant_job(wsched::wait_context &w, std::size_t i, frame_slot &s)
{
    CHECK_EQ(w.resume_kind(), WSCHED_RESUME_FIRST);
    s.value = i + 100;
    co_return 0;
}

// A nested batch of coroutine jobs submitted from a plain job (through
// context::submit_waiting), waited for with batch::wait inside the pool.
// Its jobs do not sleep: a worker waiting inside a job does not fire its
// timers until that job returns (wsched.h), so sleeping children could
// wait for their own parents.
void test_nested_from_plain(wsched::pool &p)
{
    auto b = p.submit(4, [](wsched::context &ctx, std::size_t i) -> std::uint64_t {
        auto child = ctx.submit_waiting<frame_slot>(8, instant_job);
        CHECK_OK(child.wait());
        std::uint64_t sum = 0;
        for (std::size_t k = 0; k < child.size(); k++)
            sum += child.ok(k) ? child[k].value : 0;
        return sum + i;
    });
    CHECK_OK(b.wait());
    for (std::size_t i = 0; i < 4; i++)
        CHECK_EQ(b[i], 8 * 100 + 28 + i);
    std::printf("coroutine batch nested in a plain job: ok\n");
}

// ------------------------------------------------------- wakers and fds

struct wake_slot {
    std::uint64_t value = 0;
    int error = 0;
    int kind = -1;
    bool not_early = false;
};

// Woken from a std::thread with a value, exactly once; woken at once from
// the hand-off itself (before the job returned); a deadline that times
// out; a hand-off that throws; a cancel while pending on a waker.
void test_waker(wsched::pool &p)
{
    const std::size_t n = 8;
    {
        std::vector<wsched::waker> handed(n);
        std::atomic<int> armed{0};
        auto job = [&handed, &armed](wsched::wait_context &w, std::size_t i, wake_slot &s)
            -> wsched::waiting_job {
            auto r = co_await w.wait_waker([&handed, &armed, i](wsched::waker h) {
                handed[i] = h; // published by the RELEASE add below
                armed.fetch_add(1, std::memory_order_release);
            });
            s.kind = w.resume_kind();
            if (r)
                s.value = r.value();
            else
                s.error = r.error().value();
            co_return 0;
        };
        auto b = p.submit_waiting<wake_slot>(n, job);
        std::thread waker_thread([&handed, &armed] {
            while (armed.load(std::memory_order_acquire) < static_cast<int>(n)) // pairs with the jobs' add
                std::this_thread::yield();
            for (std::size_t i = 0; i < n; i++) {
                CHECK_OK(handed[i].wake(1000 + i));
                CHECK_EQ(handed[i].wake(1).value(), -EALREADY); // exactly one wake counts
            }
        });
        CHECK_OK(b.wait());
        waker_thread.join();
        for (std::size_t i = 0; i < n; i++) {
            CHECK_EQ(b.status(i), 0);
            CHECK_EQ(b[i].kind, WSCHED_RESUME_WOKEN);
            CHECK_EQ(b[i].error, 0);
            CHECK_EQ(b[i].value, 1000 + i);
        }
    }
    {
        // Woken inside the hand-off, before the coroutine suspended.
        auto b = p.submit_waiting<wake_slot>(n, [](wsched::wait_context &w, std::size_t i, wake_slot &s)
                                                     -> wsched::waiting_job {
            auto r = co_await w.wait_waker([i](wsched_waker h) { CHECK_OK(wsched::waker(h).wake(7 * i)); });
            s.kind = w.resume_kind();
            s.value = r ? r.value() : 999;
            co_return 0;
        });
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < n; i++) {
            CHECK_EQ(b.status(i), 0);
            CHECK_EQ(b[i].kind, WSCHED_RESUME_WOKEN);
            CHECK_EQ(b[i].value, 7 * i);
        }
    }
    {
        // Nobody wakes: the 2 ms deadline comes first, and not early.
        auto b = p.submit_waiting<wake_slot>(4, [](wsched::wait_context &w, std::size_t i, wake_slot &s)
                                                     -> wsched::waiting_job {
            std::uint64_t due = wsched_now_ns() + 2000000;
            wsched::clock::time_point tp = wsched::clock::now() + 2ms;
            auto r = i % 2 ? co_await w.wait_waker([](wsched::waker) {}, 2ms)
                           : co_await w.wait_waker([](wsched::waker) {}, tp);
            s.kind = w.resume_kind();
            s.error = r ? 0 : r.error().value();
            s.not_early = wsched_now_ns() >= due && wsched::clock::now() >= tp;
            co_return 0;
        });
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < 4; i++) {
            CHECK_EQ(b.status(i), 0);
            CHECK_EQ(b[i].kind, WSCHED_RESUME_TIMEDOUT);
            CHECK_EQ(b[i].error, -ETIMEDOUT);
            CHECK(std::error_code(b[i].error, wsched::category()) == std::errc::timed_out);
            CHECK(b[i].not_early);
        }
    }
    {
        // The hand-off throws: the exception comes out of the co_await, in
        // the same call (nothing suspended); caught, the job goes on; and
        // its armed wait is dropped when the job returns.
        auto b = p.submit_waiting<wake_slot>(2, [](wsched::wait_context &w, std::size_t i, wake_slot &s)
                                                     -> wsched::waiting_job {
            bool caught = false;
            try {
                (void)co_await w.wait_waker([i](wsched::waker) { throw job_error(i); });
            } catch (const job_error &e) {
                caught = e.index == i;
            }
            s.kind = w.resume_kind();
            // This call's wait is armed still: a second one is refused.
            std::error_code again = co_await w.sleep_for(1ms);
            s.error = again.value();
            co_return caught ? 0 : -EPROTO;
        });
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < 2; i++) {
            CHECK_EQ(b.status(i), 0);
            CHECK_EQ(b[i].kind, WSCHED_RESUME_FIRST);
            CHECK_EQ(b[i].error, -EBUSY);
        }
    }
    {
        // Cancelled while pending on wakers nobody wakes (no deadline): the
        // coroutines are destroyed, their locals too; a late wake is a no-op.
        cancel_counts c;
        std::vector<wsched::waker> handed(n);
        auto b = p.submit_waiting<cancel_slot>(n, [&c, &handed](wsched::wait_context &w, std::size_t i,
                                                                cancel_slot &) -> wsched::waiting_job {
            witness a(c.made, c.gone);
            (void)co_await w.wait_waker([&c, &handed, i](wsched::waker h) {
                handed[i] = h; // published by the RELEASE add below
                c.pending.fetch_add(1, std::memory_order_release);
            });
            c.after.fetch_add(1, rlx);
            co_return 0;
        });
        while (c.pending.load(std::memory_order_acquire) < static_cast<int>(n)) // pairs with the add
            std::this_thread::yield();
        CHECK_OK(b.cancel());
        CHECK_OK(b.wait());
        CHECK_OK(b.wait_idle());
        for (std::size_t i = 0; i < n; i++) {
            CHECK_EQ(b.status(i), WSCHED_ECANCELLED);
            CHECK_EQ(handed[i].wake(1).value(), -EALREADY);
        }
        CHECK_EQ(c.made.load(rlx), static_cast<int>(n));
        c.check_balanced();
    }
    std::printf("waker: ok\n");
}

// One end of a socketpair per job, made readable from another thread; one
// that nobody writes, whose deadline comes first; a bad fd, refused
// without suspending.
void test_fd(wsched::pool &p)
{
    constexpr std::size_t n = 4;
    int sv[n][2];
    for (auto &s : sv)
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
    std::atomic<int> armed{0};
    auto job = [&sv, &armed](wsched::wait_context &w, std::size_t i, wake_slot &s) -> wsched::waiting_job {
        armed.fetch_add(1, rlx);
        auto r = co_await w.wait_fd(sv[i][0], WSCHED_FD_READ, 10s);
        s.kind = w.resume_kind();
        if (!r) {
            s.error = r.error().value();
            co_return 0;
        }
        char ch = 0;
        CHECK_EQ(read(sv[i][0], &ch, 1), 1);
        s.value = ((r.value() & WSCHED_FD_READ) ? 1000u : 0u) + static_cast<unsigned char>(ch);
        co_return 0;
    };
    auto b = p.submit_waiting<wake_slot>(n, job);
    std::thread writer([&sv, &armed] {
        while (armed.load(rlx) < static_cast<int>(n)) // level-triggered: ready before arming is fine too
            std::this_thread::yield();
        for (std::size_t i = 0; i < n; i++) {
            char ch = static_cast<char>('a' + i);
            CHECK_EQ(write(sv[i][1], &ch, 1), 1);
        }
    });
    CHECK_OK(b.wait());
    writer.join();
    for (std::size_t i = 0; i < n; i++) {
        CHECK_EQ(b.status(i), 0);
        CHECK_EQ(b[i].kind, WSCHED_RESUME_FD);
        CHECK_EQ(b[i].error, 0);
        CHECK_EQ(b[i].value, 1000u + 'a' + i);
    }

    auto t = p.submit_waiting<wake_slot>(2, [&sv](wsched::wait_context &w, std::size_t i, wake_slot &s)
                                                 -> wsched::waiting_job {
        if (i == 0) {
            std::uint64_t due = wsched_now_ns() + 2000000;
            auto r = co_await w.wait_fd(sv[0][0], WSCHED_FD_READ, 2ms); // nothing left to read
            s.not_early = wsched_now_ns() >= due;
            s.error = r ? 0 : r.error().value();
        } else {
            auto r = co_await w.wait_fd(-1, WSCHED_FD_READ);
            s.error = r ? 0 : r.error().value();
        }
        s.kind = w.resume_kind();
        co_return 0;
    });
    CHECK_OK(t.wait());
    CHECK_EQ(t[0].kind, WSCHED_RESUME_TIMEDOUT);
    CHECK_EQ(t[0].error, -ETIMEDOUT);
    CHECK(t[0].not_early);
    CHECK_EQ(t[1].kind, WSCHED_RESUME_FIRST); // refused at once
    CHECK_EQ(t[1].error, -EINVAL);
    for (auto &s : sv) {
        close(s[0]);
        close(s[1]);
    }
    std::printf("fd: ok\n");
}

} // namespace

int main()
{
    check::watchdog(120);
    wsched::pool p = check::make_pool(2);
    test_sleeps(p);
    test_function_void_slot(p);
    test_batch_waits(p);
    test_errors(p);
    test_cancel(p);
    test_fail_fast(p);
    test_deadline(p);
    test_exceptions(p);
    test_frames_and_tasks(p);
    test_nested_from_plain(p);
    test_waker(p);
    test_fd(p);
    CHECK_OK(p.destroy());
    std::printf("test_cpp_coro: ok\n");
    return 0;
}
