// wsched.hpp fork-join and nesting: fib with lambdas through wsched::task
// (exact values), several tasks per sync, task forms, a task's destructor
// joining an unsynced child, nested submits from jobs and from tasks.
#include <cstdint>
#include <numeric>

#include "check.hpp"


static std::uint64_t fib_serial(int n)
{
    std::uint64_t a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        std::uint64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static void test_fib(wsched::pool &p)
{
    const int big = check::slow_factor() > 1 ? 22 : 27;
    auto one = p.submit(1, [big](wsched::context &ctx, std::size_t) { return check::fib(ctx, big); });
    CHECK_OK(one.wait());
    CHECK_EQ(one[0], fib_serial(big));

    // A batch of fibs: every job forks.
    auto many = p.submit(24, [](wsched::context &ctx, std::size_t i) { return check::fib(ctx, static_cast<int>(i)); });
    CHECK_OK(many.wait());
    for (std::size_t i = 0; i < 24; i++)
        CHECK_EQ(many[i], fib_serial(static_cast<int>(i)));
    std::printf("fib(%d) = %llu with tasks: ok\n", big, static_cast<unsigned long long>(one[0]));
}

static void test_task_forms(wsched::pool &p)
{
    auto b = p.submit(64, [](wsched::context &ctx, std::size_t i) {
        // Four children pending at once, joined by one sync.
        std::uint64_t parts[4] = {0, 0, 0, 0};
        wsched::task t0([&parts, i] { parts[0] = i; });
        wsched::task t1([&parts, i](wsched::context &) { parts[1] = 2 * i; });
        wsched::task t2([i] { return std::string(30, 'a') + std::to_string(i); });
        wsched::task t3([i](wsched::context &c) { return static_cast<std::uint64_t>(c.worker()) + i; });
        ctx.spawn(t0);
        ctx.spawn(t1);
        ctx.spawn(t2);
        ctx.spawn(t3);
        CHECK(t0.pending() && t3.pending());
        ctx.sync();
        CHECK(!t0.pending() && !t3.pending());
        t0.get();
        t1.get();
        CHECK_STR(t2.get(), std::string(30, 'a') + std::to_string(i));
        CHECK(t3.get() >= i && t3.get() < i + 2);
        // A task may be spawned again after its sync.
        ctx.spawn(t1);
        ctx.sync();
        return parts[0] + parts[1];
    });
    CHECK_OK(b.wait());
    for (std::size_t i = 0; i < 64; i++)
        CHECK_EQ(b[i], 3 * i);

    // Unsynced children are joined by their tasks' destructors, before the
    // frame's locals die (the library's implicit sync comes after).
    std::atomic<int> done{0};
    auto u = p.submit(100, [&done](wsched::context &ctx, std::size_t) {
        int local[16] = {};
        wsched::task t([&local, &done] {
            for (int &x : local)
                x = 1;
            done.fetch_add(1, std::memory_order_relaxed);
        });
        ctx.spawn(t);
        // no sync: t's destructor joins it (local is not read here: the
        // child may still be writing it)
    });
    CHECK_OK(u.wait());
    CHECK_EQ(done.load(), 100);
    std::printf("task forms: ok\n");
}

static void test_nested_submit(wsched::pool &p)
{
    // Outer jobs fan out inner batches in the same pool and wait for them
    // (the worker runs other jobs meanwhile).
    const std::size_t outer_n = 16, inner_n = 200;
    auto outer = p.submit(outer_n, [](wsched::context &ctx, std::size_t i) {
        auto inner = ctx.submit(inner_n, [i](std::size_t j) { return std::to_string(i * 1000 + j); });
        CHECK_OK(inner.wait());
        std::uint64_t sum = 0;
        for (std::size_t j = 0; j < inner.size(); j++) {
            CHECK(inner.ok(j));
            sum += std::stoull(inner[j]);
        }
        return sum;
    });
    CHECK_OK(outer.wait());
    for (std::size_t i = 0; i < outer_n; i++)
        CHECK_EQ(outer[i], i * 1000 * inner_n + inner_n * (inner_n - 1) / 2);

    // Nested batches destroyed inside the job without an explicit wait,
    // the error_code twin, and a nested submit from a task.
    auto o2 = p.submit(8, [](wsched::context &ctx, std::size_t i) {
        std::error_code ec;
        std::size_t total = 0;
        {
            auto inner = ctx.submit(10, [](std::size_t j) { return j; }, {}, ec);
            CHECK(!ec);
            auto bad = ctx.submit(0, [](std::size_t j) { return j; }, {}, ec);
            CHECK(ec == std::errc::invalid_argument);
            CHECK(!bad);
            CHECK_OK(inner.wait());
            for (std::size_t v : inner)
                total += v;
        }
        wsched::task t([i](wsched::context &c) {
            auto b = c.submit(5, [i](std::size_t j) { return i + j; });
            CHECK_OK(b.wait());
            return b[4];
        });
        ctx.spawn(t);
        ctx.sync();
        return total + t.get();
    });
    CHECK_OK(o2.wait());
    for (std::size_t i = 0; i < 8; i++)
        CHECK_EQ(o2[i], 45 + i + 4);
    std::printf("nested submit: ok\n");
}

int main()
{
    check::watchdog(120);
    wsched::pool p = check::make_pool(2);
    test_fib(p);
    test_task_forms(p);
    test_nested_submit(p);
    std::printf("test_cpp_forkjoin: ok\n");
    return 0;
}
