// wsched.hpp batches: every slot written exactly once and read in input
// order; results constructed in place only on success and destroyed exactly
// once (std::string, a counting type, a type that cannot move); the job
// forms (value, void, std::error_code, wsched::result, with and without
// context); the slot view and accessors; options (stream, max_parallel,
// padding, priority); batch move semantics.
#include <cerrno>
#include <functional>
#include <memory>
#include <vector>

#include "check.hpp"

using check::counted;

static void test_order_exactly_once(wsched::pool &p)
{
    const std::size_t n = static_cast<std::size_t>(check::scale(20000));
    std::unique_ptr<std::atomic<int>[]> runs(new std::atomic<int>[n]);
    for (std::size_t i = 0; i < n; i++)
        runs[i].store(0, std::memory_order_relaxed);
    std::atomic<int> *r = runs.get();
    auto b = p.submit(n, [r](wsched::context &ctx, std::size_t i) {
        CHECK(ctx.worker() < 2u);
        CHECK(!ctx.cancelled());
        r[i].fetch_add(1, std::memory_order_relaxed);
        return 3 * i + 1;
    });
    static_assert(std::is_same_v<decltype(b), wsched::batch<std::size_t>>);
    CHECK_OK(b.wait());
    CHECK_EQ(b.size(), n);
    for (std::size_t i = 0; i < n; i++) {
        CHECK_EQ(runs[i].load(std::memory_order_relaxed), 1);
        CHECK_EQ(b.status(i), 0);
        CHECK(b.ok(i));
        CHECK(!b.error(i));
        CHECK_EQ(b[i], 3 * i + 1);
        CHECK_EQ(*b.get(i), 3 * i + 1);
        CHECK_EQ(b.at(i), 3 * i + 1);
    }
    // Iteration is input order.
    std::size_t k = 0;
    for (auto it = b.begin(); it != b.end(); ++it, ++k) {
        CHECK_EQ(it.index(), k);
        CHECK_EQ(*it, 3 * k + 1);
    }
    CHECK_EQ(k, n);
    CHECK_EQ(b.end() - b.begin(), static_cast<std::ptrdiff_t>(n));
    CHECK_EQ(b.begin()[5], 16u);
    const auto &cb = b;
    std::size_t sum = 0;
    for (const std::size_t &v : cb)
        sum += v;
    CHECK_EQ(sum, 3 * (n * (n - 1) / 2) + n);
    wsched_outcome o = b.outcome();
    CHECK_EQ(o.end, WSCHED_END_COMPLETED);
    CHECK_EQ(o.ok, n);
    CHECK_EQ(o.failed + o.cancelled + o.timed_out + o.unfinished, 0u);
    CHECK_EQ(o.first_error, 0);
    CHECK(b.exception() == nullptr);
    CHECK_EQ(b.exception_index(), SIZE_MAX);
    b.rethrow_if_failed(); // nothing to rethrow
    std::printf("order, exactly once: ok (%zu jobs)\n", n);
}

static void test_strings(wsched::pool &p)
{
    const std::size_t n = 3000;
    // Long strings: heap-allocated, so a leak or a double free shows (ASan).
    auto b = p.submit(n, [](std::size_t i) {
        return std::string(40, 'x') + "-" + std::to_string(i);
    });
    static_assert(std::is_same_v<decltype(b), wsched::batch<std::string>>);
    CHECK_OK(b.wait());
    for (std::size_t i = 0; i < n; i++)
        CHECK_STR(b[i], std::string(40, 'x') + "-" + std::to_string(i));
    // Results may be moved out and the slot left in its moved-from state;
    // the destructor still destroys each once.
    std::string taken = std::move(b[7]);
    CHECK_STR(taken, std::string(40, 'x') + "-7");
    b.reset();
    CHECK(!b);
    CHECK_EQ(b.size(), 0u);
    std::printf("std::string results: ok\n");
}

// Constructions == destructions == successful jobs: in place, no copy or
// move, nothing built for a failed job, each destroyed once.
static void test_counted(wsched::pool &p)
{
    const std::size_t n = 2000;
    counted::reset();
    std::size_t expect_ok = 0;
    for (std::size_t i = 0; i < n; i++)
        expect_ok += i % 7 != 0;
    {
        auto b = p.submit(n, [](std::size_t i) {
            if (i % 7 == 0)
                throw std::runtime_error("no");
            return counted(std::to_string(i));
        });
        CHECK_OK(b.wait());
        CHECK_EQ(counted::made.load(), static_cast<long>(expect_ok));
        CHECK_EQ(counted::destroyed.load(), 0);
        for (std::size_t i = 0; i < n; i++) {
            if (i % 7 == 0) {
                CHECK_EQ(b.status(i), WSCHED_EEXCEPTION);
                CHECK(b.get(i) == nullptr);
            } else {
                CHECK_EQ(b.status(i), 0);
                CHECK_STR(b[i].payload, std::to_string(i));
            }
        }
        CHECK_EQ(b.outcome().ok, expect_ok);
    }
    CHECK_EQ(counted::made.load(), static_cast<long>(expect_ok));
    CHECK_EQ(counted::destroyed.load(), static_cast<long>(expect_ok));

    // Status-returning form: result<counted> moves its value into the slot;
    // every object made is destroyed, and only successes reach a slot.
    counted::reset();
    {
        auto b = p.submit(n, [](std::size_t i) -> wsched::result<counted> {
            if (i % 7 == 0)
                return wsched::make_error_code(-ECONNREFUSED);
            return counted(std::to_string(i));
        });
        static_assert(std::is_same_v<decltype(b), wsched::batch<counted>>);
        CHECK_OK(b.wait());
        for (std::size_t i = 0; i < n; i++) {
            if (i % 7 == 0) {
                CHECK_EQ(b.status(i), -ECONNREFUSED);
                CHECK(b.error(i) == std::errc::connection_refused);
            } else {
                CHECK_STR(b[i].payload, std::to_string(i));
            }
        }
        CHECK_EQ(b.outcome().failed, n - expect_ok);
    }
    CHECK_EQ(counted::made.load(), counted::destroyed.load());
    CHECK(counted::made.load() >= static_cast<long>(expect_ok));
    std::printf("counted results: ok\n");
}

// A result that cannot be copied or moved: built in its slot from the
// returned prvalue.
struct pinned {
    explicit pinned(std::size_t v) : value(v), self(this) {}
    pinned(const pinned &) = delete;
    pinned &operator=(const pinned &) = delete;
    ~pinned() { CHECK(self == this); }
    std::size_t value;
    pinned *self;
};

static void test_pinned(wsched::pool &p)
{
    auto b = p.submit(100, [](std::size_t i) { return pinned(i * i); });
    CHECK_OK(b.wait());
    for (std::size_t i = 0; i < 100; i++) {
        CHECK_EQ(b[i].value, i * i);
        CHECK(b[i].self == &b[i]); // constructed at its final address
    }
    std::printf("non-movable results: ok\n");
}

static void test_forms(wsched::pool &p)
{
    // void: no slots, status 0.
    std::atomic<long> sum{0};
    auto v = p.submit(500, [&sum](wsched::context &, std::size_t i) {
        sum.fetch_add(static_cast<long>(i), std::memory_order_relaxed);
    });
    static_assert(std::is_same_v<decltype(v), wsched::batch<void>>);
    CHECK_OK(v.wait());
    CHECK_EQ(sum.load(), 500L * 499 / 2);
    CHECK(wsched_batch_slot(v.native_handle(), 0) == nullptr);
    for (std::size_t i = 0; i < 500; i++)
        CHECK(v.ok(i));

    // std::error_code: the status, no slots.
    auto e = p.submit(100, [](std::size_t i) {
        return i % 2 ? std::make_error_code(std::errc::connection_refused) : std::error_code();
    });
    static_assert(std::is_same_v<decltype(e), wsched::batch<void>>);
    CHECK_OK(e.wait());
    for (std::size_t i = 0; i < 100; i++) {
        CHECK_EQ(e.status(i), i % 2 ? -ECONNREFUSED : 0);
        CHECK(i % 2 ? e.error(i) == std::errc::connection_refused : !e.error(i));
    }
    wsched_outcome o = e.outcome();
    CHECK_EQ(o.ok, 50u);
    CHECK_EQ(o.failed, 50u);
    CHECK_EQ(o.first_error, -ECONNREFUSED);
    CHECK_EQ(o.first_error_index, 1u);

    // result<T> errors: accessors.
    auto r = p.submit(10, [](std::size_t i) -> wsched::result<std::string> {
        if (i == 3)
            return wsched::make_error_code(-EIO);
        return std::string("r") + std::to_string(i);
    });
    CHECK_OK(r.wait());
    CHECK(r.get(3) == nullptr);
    CHECK(r.get(10) == nullptr); // out of range: no value
    CHECK_STR(*r.get(4), "r4");
    CHECK_THROWS(std::out_of_range, (void)r.at(10));
    bool thrown = false;
    try {
        (void)r.at(3);
    } catch (const wsched::error &x) {
        thrown = true;
        CHECK(x.code() == std::errc::io_error);
    }
    CHECK(thrown);

    // A caller-owned callable through std::ref (not copied).
    struct job {
        std::size_t operator()(std::size_t i) const { return i + base; }
        std::size_t base;
    } j{1000};
    auto rf = p.submit(10, std::ref(j));
    CHECK_OK(rf.wait());
    CHECK_EQ(rf[9], 1009u);

    // A move-only callable is moved into the batch.
    auto owned = std::make_unique<int>(42);
    auto mo = p.submit(10, [u = std::move(owned)](std::size_t i) { return *u + static_cast<int>(i); });
    CHECK_OK(mo.wait());
    CHECK_EQ(mo[3], 45);
    std::printf("job forms: ok\n");
}

static void test_stream(wsched::pool &p)
{
    const std::size_t n = 300;
    auto b = p.submit(n, [](std::size_t i) { return std::to_string(i); }, wsched::options().with_stream());
    std::vector<int> seen(n, 0);
    std::size_t i = 0, got = 0;
    std::error_code ec;
    while (!(ec = b.next_done(i, std::chrono::seconds(60)))) {
        CHECK(i < n);
        seen[i]++;
        got++;
        CHECK_EQ(b.status(i), 0); // named: its slot is final
        CHECK_STR(b[i], std::to_string(i));
    }
    CHECK(ec == std::errc::no_message_available);
    CHECK_EQ(got, n);
    for (std::size_t k = 0; k < n; k++)
        CHECK_EQ(seen[k], 1);
    CHECK(b.next_done(i) == std::errc::no_message_available);
    std::printf("stream: ok\n");
}

static void test_max_parallel(wsched::pool &p)
{
    // in/peak: relaxed RMWs, only their values matter.
    std::atomic<int> in{0}, peak{0};
    auto b = p.submit(200, [&](wsched::context &ctx, std::size_t) {
        ctx.blocking();
        int now = in.fetch_add(1, std::memory_order_relaxed) + 1;
        int was = peak.load(std::memory_order_relaxed);
        while (now > was && !peak.compare_exchange_weak(was, now, std::memory_order_relaxed))
            ;
        for (int k = 0; k < 100; k++)
            std::this_thread::yield();
        in.fetch_sub(1, std::memory_order_relaxed);
    }, wsched::options().with_max_parallel(1).with_priority(wsched::priority::background));
    CHECK_OK(b.wait());
    CHECK_EQ(peak.load(), 1);
    CHECK_EQ(b.outcome().ok, 200u);
    std::printf("max_parallel, priority: ok\n");
}

static void test_padding(wsched::pool &p)
{
    auto plain = p.submit(4, [](std::size_t i) { return static_cast<int>(i); });
    auto padded = p.submit(4, [](std::size_t i) { return static_cast<int>(i); },
                           wsched::options().with_padded_slots());
    auto strs = p.submit(4, [](std::size_t i) { return std::to_string(i); },
                         wsched::options().with_padded_slots());
    CHECK_OK(plain.wait());
    CHECK_OK(padded.wait());
    CHECK_OK(strs.wait());
    auto gap = [](const void *a, const void *b) {
        return static_cast<const char *>(b) - static_cast<const char *>(a);
    };
    CHECK_EQ(gap(&plain[0], &plain[1]), static_cast<long>(sizeof(int)));
    CHECK_EQ(plain.slots().stride(), sizeof(int));
    CHECK_EQ(gap(&padded[0], &padded[1]), 64);
    CHECK_EQ(gap(&strs[0], &strs[3]), 3 * 64);
    CHECK_EQ(reinterpret_cast<std::uintptr_t>(&padded[0]) % 64, 0u);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(padded[static_cast<std::size_t>(i)], i);
        CHECK_STR(strs[static_cast<std::size_t>(i)], std::to_string(i));
    }
    // An over-aligned result.
    struct alignas(64) line {
        std::size_t v;
    };
    auto lines = p.submit(8, [](std::size_t i) { return line{i}; });
    CHECK_OK(lines.wait());
    for (std::size_t i = 0; i < 8; i++) {
        CHECK_EQ(lines[i].v, i);
        CHECK_EQ(reinterpret_cast<std::uintptr_t>(&lines[i]) % 64, 0u);
    }
    std::printf("slot padding and alignment: ok\n");
}

static void test_batch_move(wsched::pool &p)
{
    counted::reset();
    {
        auto a = p.submit(50, [](std::size_t i) { return counted(std::to_string(i)); });
        wsched_batch *h = a.native_handle();
        wsched::batch<counted> b = std::move(a);
        CHECK(!a);
        CHECK(a.native_handle() == nullptr);
        CHECK_EQ(a.size(), 0u);
        CHECK(a.wait() == std::errc::invalid_argument);
        CHECK(b.native_handle() == h);
        CHECK_OK(b.wait());
        CHECK_STR(b[49].payload, "49");

        auto c = p.submit(20, [](std::size_t i) { return counted("c" + std::to_string(i)); });
        CHECK_OK(c.wait());
        CHECK_EQ(counted::made.load(), 70);
        c = std::move(b); // c's own 20 results are destroyed now
        CHECK_EQ(counted::destroyed.load(), 20);
        CHECK(!b);
        CHECK(c.native_handle() == h);
        CHECK_STR(c[0].payload, "0");

        // Moving into a container, and out of a function.
        std::vector<wsched::batch<counted>> v;
        v.push_back(std::move(c));
        v.push_back(p.submit(5, [](std::size_t i) { return counted(std::to_string(i)); }));
        for (auto &x : v)
            CHECK_OK(x.wait());
        CHECK_STR(v[1][4].payload, "4");
        CHECK_EQ(counted::destroyed.load(), 20);
    }
    CHECK_EQ(counted::made.load(), 75);
    CHECK_EQ(counted::destroyed.load(), 75);
    std::printf("batch move: ok\n");
}

static void test_wait_timeouts(wsched::pool &p)
{
    check::gate g;
    auto b = p.submit(2, [&g](wsched::context &ctx, std::size_t i) {
        ctx.blocking();
        g.pass();
        return i;
    });
    g.await(2);
    CHECK(b.wait(std::chrono::seconds(0)) == std::errc::timed_out); // a poll
    CHECK(b.wait(std::chrono::milliseconds(1)) == std::errc::timed_out);
    CHECK(b.wait(std::chrono::nanoseconds(-5)) == std::errc::timed_out); // past: a poll
    CHECK(b.wait_until(wsched::clock::now() + std::chrono::milliseconds(1)) == std::errc::timed_out);
    CHECK(b.wait_idle(std::chrono::microseconds(10)) == std::errc::timed_out);
    CHECK_EQ(b.status(0), WSCHED_ENOTRUN);
    CHECK(b.error(1) == wsched::errc::not_run);
    g.open();
    CHECK_OK(b.wait(std::chrono::hours(24 * 365 * 1000))); // "for ever"
    CHECK_OK(b.wait(std::chrono::seconds(0)));            // complete: a poll says so
    CHECK_EQ(b[1], 1u);
    std::printf("wait timeouts: ok\n");
}

int main()
{
    check::watchdog(120);
    wsched::pool p = check::make_pool(2);
    test_order_exactly_once(p);
    test_strings(p);
    test_counted(p);
    test_pinned(p);
    test_forms(p);
    test_stream(p);
    test_max_parallel(p);
    test_padding(p);
    test_batch_move(p);
    test_wait_timeouts(p);
    std::printf("test_cpp_batch: ok\n");
    return 0;
}
