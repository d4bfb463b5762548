// wsched.hpp exceptions: a job that throws never unwinds the scheduler;
// its status becomes WSCHED_EEXCEPTION, no result is constructed for it,
// and the first exception caught is rethrown by rethrow_if_failed(), in
// every job form and policy, from tasks and nested batches too.
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "check.hpp"

using check::counted;

struct job_error : std::runtime_error {
    explicit job_error(std::size_t i) : std::runtime_error("job " + std::to_string(i)), index(i) {}
    std::size_t index;
};

static void test_one_thrower(wsched::pool &p)
{
    auto b = p.submit(100, [](wsched::context &, std::size_t i) {
        if (i == 37)
            throw job_error(i);
        return std::to_string(i);
    });
    CHECK_OK(b.wait()); // the call's status: complete
    for (std::size_t i = 0; i < 100; i++) {
        if (i == 37) {
            CHECK_EQ(b.status(i), WSCHED_EEXCEPTION);
            CHECK(b.error(i) == wsched::errc::exception);
            CHECK(b.get(i) == nullptr);
        } else {
            CHECK_STR(b[i], std::to_string(i));
        }
    }
    wsched_outcome o = b.outcome();
    CHECK_EQ(o.end, WSCHED_END_COMPLETED);
    CHECK_EQ(o.failed, 1u);
    CHECK_EQ(o.first_error, WSCHED_EEXCEPTION);
    CHECK_EQ(o.first_error_index, 37u);
    CHECK(b.exception() != nullptr);
    CHECK_EQ(b.exception_index(), 37u);
    bool caught = false;
    try {
        b.rethrow_if_failed();
    } catch (const job_error &e) {
        caught = true;
        CHECK_EQ(e.index, 37u);
        CHECK_STR(e.what(), "job 37");
    }
    CHECK(caught);
    // Rethrowing again gives the same exception object.
    std::exception_ptr a = b.exception(), c = b.exception();
    CHECK(a == c);
    std::printf("one thrower: ok\n");
}

// Many jobs throw at once: exactly one exception is kept, it is one of
// theirs, and its index says which.
static void test_many_throwers(wsched::pool &p)
{
    const std::size_t n = static_cast<std::size_t>(check::scale(20000));
    counted::reset();
    std::size_t throwers = 0;
    for (std::size_t i = 0; i < n; i++)
        throwers += i % 10 == 3;
    {
        auto b = p.submit(n, [](std::size_t i) {
            if (i % 10 == 3)
                throw job_error(i);
            return counted(std::to_string(i));
        });
        CHECK_OK(b.wait());
        std::size_t exc = 0;
        for (std::size_t i = 0; i < n; i++) {
            if (i % 10 == 3) {
                CHECK_EQ(b.status(i), WSCHED_EEXCEPTION);
                exc++;
            } else {
                CHECK_STR(b[i].payload, std::to_string(i));
            }
        }
        CHECK_EQ(exc, throwers);
        CHECK_EQ(b.outcome().failed, throwers);
        CHECK_EQ(counted::made.load(), static_cast<long>(n - throwers));
        std::size_t idx = b.exception_index();
        CHECK(idx < n && idx % 10 == 3);
        try {
            b.rethrow_if_failed();
            FAIL("rethrow_if_failed did not throw");
        } catch (const job_error &e) {
            CHECK_EQ(e.index, idx);
        }
    }
    CHECK_EQ(counted::destroyed.load(), counted::made.load());
    std::printf("many throwers: ok (%zu of %zu)\n", throwers, n);
}

static void test_forms_throw(wsched::pool &p)
{
    // void form
    auto v = p.submit(10, [](std::size_t i) {
        if (i == 2)
            throw std::logic_error("void");
    });
    CHECK_OK(v.wait());
    CHECK_EQ(v.status(2), WSCHED_EEXCEPTION);
    CHECK_EQ(v.outcome().ok, 9u);
    CHECK_THROWS(std::logic_error, v.rethrow_if_failed());

    // error_code form
    auto e = p.submit(10, [](std::size_t i) -> std::error_code {
        if (i == 4)
            throw std::out_of_range("ec");
        return wsched::make_error_code(i == 5 ? -EIO : 0);
    });
    CHECK_OK(e.wait());
    CHECK_EQ(e.status(4), WSCHED_EEXCEPTION);
    CHECK_EQ(e.status(5), -EIO);
    CHECK_THROWS(std::out_of_range, e.rethrow_if_failed());

    // result<T> form, and an exception of a type outside std::exception
    auto r = p.submit(10, [](std::size_t i) -> wsched::result<int> {
        if (i == 9)
            throw 42;
        return static_cast<int>(i);
    });
    CHECK_OK(r.wait());
    CHECK_EQ(r.status(9), WSCHED_EEXCEPTION);
    CHECK_EQ(r.exception_index(), 9u);
    try {
        r.rethrow_if_failed();
        FAIL("no throw");
    } catch (int x) {
        CHECK_EQ(x, 42);
    }

    // A result whose constructor throws: the job's exception, no object.
    struct fragile {
        explicit fragile(std::size_t i) : v(i)
        {
            if (i == 1)
                throw std::length_error("ctor");
        }
        std::size_t v;
        std::string s = "heap-allocated string, longer than SSO";
    };
    auto f = p.submit(3, [](std::size_t i) { return fragile(i); });
    CHECK_OK(f.wait());
    CHECK_EQ(f.status(1), WSCHED_EEXCEPTION);
    CHECK_EQ(f[2].v, 2u);
    CHECK_THROWS(std::length_error, f.rethrow_if_failed());
    std::printf("every form catches: ok\n");
}

static void test_fail_fast_exception(wsched::pool &p)
{
    auto b = p.submit(1000, [](wsched::context &ctx, std::size_t i) {
        if (i == 0)
            throw job_error(i);
        std::uint64_t end = wsched_now_ns() + 20000;
        while (wsched_now_ns() < end && !ctx.cancelled())
            ;
        return i;
    }, wsched::options().with_policy(wsched::policy::fail_fast));
    CHECK_OK(b.wait());
    wsched_outcome o = b.outcome();
    CHECK_EQ(o.end, WSCHED_END_FAILED);
    CHECK_EQ(o.first_error, WSCHED_EEXCEPTION);
    CHECK_EQ(o.first_error_index, 0u);
    CHECK(o.cancelled > 500); // the rest never ran
    CHECK_EQ(o.ok + o.failed + o.cancelled, 1000u);
    CHECK_EQ(b.exception_index(), 0u);
    CHECK_THROWS(job_error, b.rethrow_if_failed());
    std::printf("fail-fast on an exception: ok\n");
}

// Exceptions inside tasks and nested batches reach the job, and from the
// job the batch's caller. A job unwound after a spawn joins its child
// first (the task's destructor syncs): the child's writes to the frame
// happen before the frame is gone.
static void test_nested(wsched::pool &p)
{
    std::atomic<int> children{0};
    auto b = p.submit(50, [&children](wsched::context &ctx, std::size_t i) {
        int local = 0;
        wsched::task child([&local, &children] {
            for (int k = 0; k < 1000; k++)
                local++;
            children.fetch_add(1, std::memory_order_relaxed);
        });
        ctx.spawn(child);
        if (i % 2)
            throw job_error(i); // unwinds through child's destructor: sync
        ctx.sync();
        CHECK_EQ(local, 1000);
        wsched::task thrower([](wsched::context &) -> int { throw std::runtime_error("task"); });
        ctx.spawn(thrower);
        ctx.sync();
        CHECK(thrower.failed());
        return thrower.get(); // rethrows in the job
    });
    CHECK_OK(b.wait());
    CHECK_EQ(children.load(), 50);
    for (std::size_t i = 0; i < 50; i++)
        CHECK_EQ(b.status(i), WSCHED_EEXCEPTION);
    try {
        b.rethrow_if_failed();
        FAIL("no throw");
    } catch (const job_error &e) {
        CHECK(e.index % 2 == 1);
    } catch (const std::runtime_error &e) {
        CHECK_STR(e.what(), "task");
    }

    // A nested batch's exception, rethrown in the outer job.
    auto outer = p.submit(4, [](wsched::context &ctx, std::size_t i) {
        auto inner = ctx.submit(8, [i](std::size_t j) {
            if (i == 2 && j == 5)
                throw job_error(100 * i + j);
            return j;
        });
        CHECK_OK(inner.wait());
        inner.rethrow_if_failed();
        std::size_t s = 0;
        for (std::size_t v : inner)
            s += v;
        return s;
    });
    CHECK_OK(outer.wait());
    for (std::size_t i = 0; i < 4; i++) {
        if (i == 2)
            CHECK_EQ(outer.status(i), WSCHED_EEXCEPTION);
        else
            CHECK_EQ(outer[i], 28u);
    }
    try {
        outer.rethrow_if_failed();
        FAIL("no throw");
    } catch (const job_error &e) {
        CHECK_EQ(e.index, 205u);
    }
    std::printf("nested exceptions: ok\n");
}

int main()
{
    check::watchdog(120);
    wsched::pool p = check::make_pool(2);
    test_one_thrower(p);
    test_many_throwers(p);
    test_forms_throw(p);
    test_fail_fast_exception(p);
    test_nested(p);
    std::printf("test_cpp_exceptions: ok\n");
    return 0;
}
