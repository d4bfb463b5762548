// The C++ tests' harness: the checks of tests/check.h (typed, printing both
// values, stopping the test) and its watchdog, for C++ (check.h uses C11
// <stdatomic.h>, which C++17 cannot include).
#ifndef WSCHED_CPP_CHECK_HPP
#define WSCHED_CPP_CHECK_HPP

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <unistd.h>

#include "wsched.hpp"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long va_ = static_cast<long long>(a), vb_ = static_cast<long long>(b); \
        if (va_ != vb_) {                                                      \
            std::fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
                         __FILE__, __LINE__, #a, #b, va_, vb_);                \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        std::string sa_(a), sb_(b);                                            \
        if (sa_ != sb_) {                                                      \
            std::fprintf(stderr, "%s:%d: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", \
                         __FILE__, __LINE__, #a, #b, sa_.c_str(), sb_.c_str()); \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

// Stop the test: a path it must not take.
#define FAIL(msg)                                                              \
    do {                                                                       \
        std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, msg);         \
        std::abort();                                                          \
    } while (0)

// An error_code that must be success.
#define CHECK_OK(expr)                                                         \
    do {                                                                       \
        std::error_code ec_ = (expr);                                          \
        if (ec_) {                                                             \
            std::fprintf(stderr, "%s:%d: %s: %d (%s)\n", __FILE__, __LINE__, #expr, \
                         ec_.value(), ec_.message().c_str());                  \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

// `stmt` must throw an exception of type E.
#define CHECK_THROWS(E, stmt)                                                  \
    do {                                                                       \
        bool thrown_ = false;                                                  \
        try {                                                                  \
            stmt;                                                              \
        } catch (const E &) {                                                  \
            thrown_ = true;                                                    \
        }                                                                      \
        if (!thrown_) {                                                        \
            std::fprintf(stderr, "%s:%d: %s did not throw %s\n", __FILE__, __LINE__, #stmt, #E); \
            std::abort();                                                      \
        }                                                                      \
    } while (0)

namespace check {

inline long slow_factor()
{
    const char *s = std::getenv("WSCHED_TEST_SLOW");
    long k = s ? std::atol(s) : 1;
    return k > 1 ? k : 1;
}

inline void watchdog_fire(int)
{
    static const char msg[] = "watchdog: test did not finish in time (hang?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

// Fail the test if it runs longer than `seconds` (scaled by WSCHED_TEST_SLOW).
inline void watchdog(unsigned seconds)
{
    std::signal(SIGALRM, watchdog_fire);
    alarm(seconds * static_cast<unsigned>(slow_factor()));
}

// Iteration counts scaled down in sanitizer builds.
inline long scale(long n)
{
    long k = slow_factor();
    return n / k > 0 ? n / k : 1;
}

// A pool of `workers` workers (not pinned: the test machines are small).
inline wsched::pool make_pool(unsigned workers)
{
    wsched::pool_config c;
    c.workers = workers;
    c.pin = false;
    return wsched::pool(c);
}

// A gate that jobs wait at until the test opens it. open: RELEASE, pairs
// with the jobs' ACQUIRE load, so what the test wrote before opening is
// visible to them; entered: relaxed counting (only its value matters).
struct gate {
    std::atomic<bool> opened{false};
    std::atomic<int> entered{0};
    void pass()
    {
        entered.fetch_add(1, std::memory_order_relaxed);
        while (!opened.load(std::memory_order_acquire))
            std::this_thread::yield();
    }
    void await(int n) const
    {
        while (entered.load(std::memory_order_relaxed) < n)
            std::this_thread::yield();
    }
    void open() { opened.store(true, std::memory_order_release); }
};

// A value type that counts its constructions and destructions (all
// relaxed: read only after the threads that count have been joined with).
struct counted {
    static std::atomic<long> made, destroyed;
    std::string payload;
    explicit counted(std::string s) : payload(std::move(s)) { made.fetch_add(1, std::memory_order_relaxed); }
    counted(const counted &o) : payload(o.payload) { made.fetch_add(1, std::memory_order_relaxed); }
    counted(counted &&o) noexcept : payload(std::move(o.payload)) { made.fetch_add(1, std::memory_order_relaxed); }
    counted &operator=(const counted &) = default;
    counted &operator=(counted &&) = default;
    ~counted() { destroyed.fetch_add(1, std::memory_order_relaxed); }
    static void reset()
    {
        made.store(0, std::memory_order_relaxed);
        destroyed.store(0, std::memory_order_relaxed);
    }
};
inline std::atomic<long> counted::made{0};
inline std::atomic<long> counted::destroyed{0};

// fib(n) with one child task per call (wsched::task on the frame, synced
// before it returns): the fork-join shape the tests share.
inline std::uint64_t fib(wsched::context &ctx, int n)
{
    if (n < 2)
        return static_cast<std::uint64_t>(n);
    wsched::task left([n](wsched::context &c) { return fib(c, n - 1); });
    ctx.spawn(left);
    std::uint64_t right = fib(ctx, n - 2);
    ctx.sync();
    return left.get() + right;
}

} // namespace check

#endif
