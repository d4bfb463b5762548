// wsched.hpp under -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion
// -Wshadow -Werror (built as C++17 and as C++20): one use of each public
// template and member, so that every part of the header is instantiated
// under those warnings; run as a smoke test.
#include <cerrno>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

struct big {
    alignas(32) char bytes[40];
};


} // namespace

int main()
{
    check::watchdog(60);
    using namespace std::chrono_literals;
    static_assert(std::is_nothrow_move_constructible_v<wsched::pool>);
    static_assert(std::is_nothrow_move_assignable_v<wsched::pool>);
    static_assert(!std::is_copy_constructible_v<wsched::pool>);
    static_assert(std::is_nothrow_move_constructible_v<wsched::batch<std::string>>);
    static_assert(std::is_nothrow_move_assignable_v<wsched::batch<std::string>>);
    static_assert(!std::is_copy_constructible_v<wsched::batch<int>>);
    static_assert(!std::is_copy_assignable_v<wsched::batch<void>>);
    static_assert(!std::is_copy_constructible_v<wsched::context>);
    static_assert(std::is_same_v<wsched::job_value_t<int (*)(std::size_t)>, int>);

    std::error_code ec;
    wsched::pool p = wsched::pool::create(wsched::pool_config{2, false, 0, 0, nullptr}, ec);
    CHECK(!ec);
    std::vector<int> input(64);
    for (std::size_t i = 0; i < input.size(); i++)
        input[i] = static_cast<int>(i);

    auto s = p.submit(input.size(), [&input](wsched::context &ctx, std::size_t i) {
        (void)ctx.cancelled();
        ctx.blocking();
        (void)ctx.native_handle();
        (void)ctx.pool_handle();
        return std::to_string(input[i] + static_cast<int>(ctx.worker() * 0));
    }, wsched::options().with_padded_slots().with_priority(wsched::priority::interactive));
    auto n = p.submit(input.size(), [&input](std::size_t i) { return input[i]; },
                      wsched::options().with_stream().with_max_parallel(2));
    auto v = p.submit(4, [](std::size_t) {}, wsched::options().with_budget(1h));
    auto e = p.submit(4, [](std::size_t i) { return wsched::make_error_code(i ? 0 : -EIO); },
                      wsched::options().with_policy(wsched::policy::best_effort));
    auto r = p.submit(4, [](std::size_t i) -> wsched::result<big> {
        if (i == 1)
            return std::make_error_code(std::errc::timed_out);
        return wsched::result<big>(std::in_place, big{});
    }, wsched::options().with_quorum(1).with_deadline(wsched::clock::now() + 1h));
    auto f = p.submit(1, [](wsched::context &ctx, std::size_t) { return check::fib(ctx, 15); },
                      wsched::options().with_admission_timeout(1s));

    CHECK_OK(s.wait());
    CHECK_OK(s.wait(1s));
    CHECK_OK(s.wait_until(wsched::clock::now() + 1s));
    CHECK_OK(s.wait_idle());
    CHECK_OK(s.wait_idle(1s));
    std::size_t k = 0;
    for (const std::string &x : s)
        CHECK_STR(x, std::to_string(k++));
    const auto &cs = s;
    CHECK_STR(cs[3], "3");
    CHECK_STR(*cs.get(4), "4");
    CHECK_STR(cs.at(5), "5");
    CHECK_EQ(cs.slots().size(), 64u);
    CHECK(!cs.slots().empty());
    auto it = cs.begin();
    it += 2;
    it = it + 1;
    it = 1 + it;
    it -= 1;
    it = it - 1;
    CHECK_EQ(it.index(), 2u);
    CHECK((it < cs.end()) && (it <= cs.end()) && (cs.end() > it) && (cs.end() >= it));
    CHECK_STR(it[1], "3");
    CHECK_EQ(it->size(), 1u);
    CHECK_EQ((it++).index(), 2u);
    CHECK_EQ((it--).index(), 3u);
    CHECK_EQ((--it).index(), 1u);
    CHECK_EQ((++it).index(), 2u);

    std::size_t idx = 0, got = 0;
    while (!n.next_done(idx, 10s)) {
        CHECK_EQ(n[idx], static_cast<int>(idx));
        got++;
    }
    CHECK_EQ(got, input.size());
    CHECK(n.next_done(idx) == std::errc::no_message_available);

    CHECK_OK(v.wait());
    CHECK_OK(e.wait());
    CHECK(e.error(0) == std::errc::io_error);
    CHECK_OK(r.wait());
    CHECK_EQ(r.outcome().end, WSCHED_END_QUORUM_REACHED);
    CHECK_OK(f.wait());
    CHECK_EQ(f[0], 610u);
    CHECK_OK(f.cancel());
    f.rethrow_if_failed();
    CHECK(f.exception() == nullptr);

    wsched_pool_stats st{};
    CHECK_OK(p.stats(st));
    CHECK_EQ(p.stats().nworkers, 2u);
    CHECK_EQ(p.worker_stats().size(), 2u);
    CHECK_EQ(wsched::version(), wsched::header_version);
    CHECK_OK(p.destroy());
    std::printf("test_cpp_header (C++%ld): ok\n", static_cast<long>(__cplusplus / 100 % 100));
    return 0;
}
