// wsched.hpp range jobs: pool::for_range with f(lo, hi) and f(context &, lo,
// hi): every index once; a chunk's std::error_code is returned; the first
// exception is rethrown while the other chunks still run; bad input throws.
#include <atomic>
#include <stdexcept>
#include <vector>

#include "check.hpp"

int main()
{
    wsched::pool p = check::make_pool(2);
    const std::size_t n = 100003;
    std::vector<std::atomic<int>> seen(n);

    // Every index in exactly one chunk, chunks of at most the grain.
    std::atomic<std::size_t> biggest{0};
    std::error_code ec = p.for_range(n, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; i++)
            seen[i].fetch_add(1, std::memory_order_relaxed);
        std::size_t b = biggest.load();
        while (hi - lo > b && !biggest.compare_exchange_weak(b, hi - lo)) {
        }
    }, 100);
    CHECK(!ec);
    for (std::size_t i = 0; i < n; i++)
        CHECK_EQ(seen[i].load(), 1);
    CHECK(biggest.load() <= 100);

    // The context form: spawn inside a chunk.
    std::atomic<long> sum{0};
    ec = p.for_range(1000, [&](wsched::context &ctx, std::size_t lo, std::size_t hi) {
        wsched::task t([&sum, lo, hi] { sum += static_cast<long>(hi - lo); });
        ctx.spawn(t);
        ctx.sync();
    });
    CHECK(!ec);
    CHECK_EQ(sum.load(), 1000);

    // A failing chunk: its code comes back.
    ec = p.for_range(n, [&](std::size_t lo, std::size_t hi) -> std::error_code {
        if (lo <= 777 && 777 < hi)
            return wsched::make_error_code(-EIO);
        return {};
    });
    CHECK(ec == wsched::make_error_code(-EIO));

    // An exception: rethrown after every other chunk ran.
    std::atomic<std::size_t> ran{0};
    bool caught = false;
    try {
        (void)p.for_range(n, [&](std::size_t lo, std::size_t hi) {
            if (lo <= 5 && 5 < hi)
                throw std::runtime_error("chunk with 5");
            ran += hi - lo;
        }, 64);
    } catch (const std::runtime_error &e) {
        caught = true;
        CHECK_STR(e.what(), "chunk with 5");
    }
    CHECK(caught);
    CHECK(ran.load() >= n - 64 && ran.load() < n);

    // Bad input throws wsched::error.
    bool threw = false;
    try {
        (void)p.for_range(0, [](std::size_t, std::size_t) {});
    } catch (const wsched::error &e) {
        threw = true;
        CHECK(e.code() == wsched::make_error_code(-EINVAL));
    }
    CHECK(threw);
    return 0;
}
