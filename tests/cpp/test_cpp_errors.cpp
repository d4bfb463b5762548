// wsched.hpp errors: the category (messages, errno conditions, the
// WSCHED_E* enum), to_status, wsched::error from the throwing calls and the
// error_code twins, admission errors through submit, the pool as a
// move-only handle, version and clock agreement.
#include <cerrno>
#include <cstring>
#include <future>
#include <type_traits>

#include "check.hpp"

static void test_category()
{
    const std::error_category &cat = wsched::category();
    CHECK_STR(cat.name(), "wsched");
    CHECK(&cat == &wsched::category()); // one instance
    for (int code : {-EINVAL, -ETIMEDOUT, -ESHUTDOWN, -EBADF, -ENODATA, WSCHED_ENOTRUN, WSCHED_EJOBCODE,
                     WSCHED_ECANCELLED, WSCHED_EDEADLINE, WSCHED_EEXCEPTION}) {
        std::error_code ec = wsched::make_error_code(code);
        CHECK_EQ(ec.value(), code); // the C code, round-trippable
        CHECK(ec.category() == cat);
        CHECK_STR(ec.message(), wsched_strerror(code));
        CHECK(static_cast<bool>(ec));
    }
    CHECK(!wsched::make_error_code(0));

    // A negative errno is its generic condition.
    std::error_code t = wsched::make_error_code(-ETIMEDOUT);
    CHECK(t == std::errc::timed_out);
    CHECK(t != std::errc::invalid_argument);
    CHECK(t.default_error_condition() == std::errc::timed_out);
    CHECK(wsched::make_error_code(-ECONNREFUSED) == std::errc::connection_refused);
    CHECK(wsched::make_error_code(-ENODATA) == std::errc::no_message_available);
    // Equality of codes is exact (value and category); conditions bridge.
    CHECK(t == wsched::make_error_code(-ETIMEDOUT));
    CHECK(t != wsched::make_error_code(-EINVAL));
    std::error_code sys(ETIMEDOUT, std::system_category());
    CHECK(t != sys);
    CHECK(sys == std::errc::timed_out && t == std::errc::timed_out);

    // The wsched-specific codes: their own enum, no errno condition.
    std::error_code c = wsched::errc::cancelled; // implicit (is_error_code_enum)
    CHECK_EQ(c.value(), WSCHED_ECANCELLED);
    CHECK(c == wsched::make_error_code(WSCHED_ECANCELLED));
    CHECK(c == wsched::errc::cancelled);
    CHECK(c != wsched::errc::deadline);
    CHECK(c.default_error_condition().category() == cat);
    CHECK(wsched::make_error_code(WSCHED_EEXCEPTION) == wsched::errc::exception);
    CHECK(wsched::make_error_code(WSCHED_EDEADLINE) == wsched::errc::deadline);
    CHECK(wsched::make_error_code(WSCHED_ENOTRUN) == wsched::errc::not_run);
    CHECK(wsched::make_error_code(WSCHED_EJOBCODE) == wsched::errc::job_code);
    CHECK_STR(wsched::make_error_code(wsched::errc::exception).message(), wsched_strerror(WSCHED_EEXCEPTION));
    std::printf("category: ok\n");
}

static void test_to_status()
{
    CHECK_EQ(wsched::to_status(std::error_code()), 0);
    CHECK_EQ(wsched::to_status(wsched::make_error_code(-EIO)), -EIO);
    CHECK_EQ(wsched::to_status(wsched::errc::exception), WSCHED_EEXCEPTION);
    CHECK_EQ(wsched::to_status(std::make_error_code(std::errc::connection_refused)), -ECONNREFUSED);
    CHECK_EQ(wsched::to_status(std::error_code(ETIMEDOUT, std::system_category())), -ETIMEDOUT);
    // A category wsched cannot express.
    CHECK_EQ(wsched::to_status(std::make_error_code(std::future_errc::broken_promise)), WSCHED_EJOBCODE);
    std::printf("to_status: ok\n");
}

static void test_exception_type()
{
    static_assert(std::is_base_of_v<std::system_error, wsched::error>);
    wsched::error e(-EINVAL, "wsched_pool_create");
    CHECK(e.code() == wsched::make_error_code(-EINVAL));
    CHECK(e.code() == std::errc::invalid_argument);
    CHECK(std::strstr(e.what(), "wsched_pool_create") != nullptr);

    // The throwing constructor and its error_code twin.
    wsched::pool_config bad;
    bad.spin_us = WSCHED_SPIN_US_MAX + 1;
    bool thrown = false;
    try {
        wsched::pool p(bad);
    } catch (const wsched::error &x) {
        thrown = true;
        CHECK_EQ(x.code().value(), -EINVAL);
        CHECK(x.code().category() == wsched::category());
    }
    CHECK(thrown);
    std::error_code ec;
    wsched::pool p = wsched::pool::create(bad, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(!p);
    CHECK(p.native_handle() == nullptr);
    CHECK_EQ(p.workers(), 0u);
    CHECK_OK(p.destroy()); // an empty pool: nothing to do

    wsched::pool good = wsched::pool::create(wsched::pool_config{2, false, 0, 0, nullptr}, ec);
    CHECK(!ec);
    CHECK(good);
    CHECK_EQ(good.workers(), 2u);
    // A wsched_config works as well.
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 1;
    cfg.flags = WSCHED_POOL_NO_PIN;
    wsched::pool one(cfg);
    CHECK_EQ(one.workers(), 1u);

    // submit: n == 0 is -EINVAL, thrown or in ec (with an empty batch).
    CHECK_THROWS(wsched::error, (void)good.submit(0, [](std::size_t) { return 1; }));
    auto b = good.submit(0, [](std::size_t) { return 1; }, {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(!b);
    CHECK_EQ(b.size(), 0u);
    CHECK(b.wait() == std::errc::invalid_argument); // the call's own status
    // Bad options: quorum 0 under policy::quorum.
    auto q = good.submit(4, [](std::size_t) {}, wsched::options().with_quorum(0), ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(!q);

    // A destroyed pool: the tombstone answers -EBADF through the wrapper.
    wsched::pool doomed = check::make_pool(1);
    wsched_pool *raw = doomed.release();
    CHECK(!doomed);
    CHECK_EQ(wsched_pool_destroy(raw), 0);
    wsched::pool dead = wsched::pool::adopt(raw);
    auto d = dead.submit(1, [](std::size_t) {}, {}, ec);
    CHECK(ec == std::errc::bad_file_descriptor);
    CHECK(!d);
    CHECK(dead.destroy() == std::errc::bad_file_descriptor);
    wsched_pool_stats st;
    CHECK(dead.stats(st) == std::errc::bad_file_descriptor);
    CHECK_THROWS(wsched::error, (void)dead.stats());
    (void)dead.release(); // the tombstone stays; nothing to free
    std::printf("exceptions and error_code twins: ok\n");
}

static void test_admission()
{
    wsched::pool_config c;
    c.workers = 2;
    c.pin = false;
    c.max_jobs = 2;
    wsched::pool p(c);
    check::gate g;
    auto held = p.submit(2, [&g](wsched::context &ctx, std::size_t) {
        ctx.blocking();
        g.pass();
    });
    g.await(2);
    std::error_code ec;
    auto big = p.submit(3, [](std::size_t) {}, {}, ec);
    CHECK(ec == wsched::make_error_code(-E2BIG));
    auto shed = p.submit(1, [](std::size_t) {}, wsched::options().with_admission_timeout(std::chrono::seconds(0)), ec);
    CHECK(ec == std::errc::device_or_resource_busy);
    CHECK(!shed);
    auto late = p.submit(1, [](std::size_t) {}, wsched::options().with_admission_timeout(std::chrono::milliseconds(2)), ec);
    CHECK(ec == std::errc::timed_out);
    CHECK_THROWS(wsched::error, (void)p.submit(1, [](std::size_t) {}, wsched::options().with_admission_timeout(std::chrono::seconds(0))));
    g.open();
    CHECK_OK(held.wait());
    // Room again: a bounded admission wait succeeds.
    auto fits = p.submit(2, [](std::size_t i) { return i; }, wsched::options().with_admission_timeout(std::chrono::seconds(60)), ec);
    CHECK(!ec);
    CHECK_OK(fits.wait());
    CHECK_EQ(fits[1], 1u);
    std::printf("admission: ok\n");
}

static void test_pool_move_and_stats()
{
    wsched::pool a = check::make_pool(2);
    wsched_pool *h = a.native_handle();
    wsched::pool b = std::move(a);
    CHECK(!a);
    CHECK(a.native_handle() == nullptr);
    CHECK(b.native_handle() == h);
    CHECK_EQ(b.workers(), 2u);

    wsched::pool c = check::make_pool(1);
    c = std::move(b); // c's own pool is destroyed, b's moves in
    CHECK(!b);
    CHECK(c.native_handle() == h);
    CHECK_EQ(c.workers(), 2u);

    const std::size_t n = 1000;
    auto bt = c.submit(n, [](std::size_t i) { return i; });
    CHECK_OK(bt.wait_idle());
    wsched_pool_stats s = c.stats();
    CHECK_EQ(s.nworkers, 2u);
    CHECK_EQ(s.parked + s.searching + s.running, s.nworkers);
    CHECK(s.total.jobs >= n);
    std::vector<wsched_worker_stats> w = c.worker_stats();
    CHECK_EQ(w.size(), 2u);
    std::uint64_t sum = 0;
    for (const wsched_worker_stats &x : w)
        sum += x.jobs;
    CHECK(sum >= n);

    // A batch outlives its pool: destroy runs it to completion first.
    auto late = c.submit(100, [](std::size_t i) { return std::to_string(i); });
    CHECK_OK(c.destroy());
    CHECK(!c);
    CHECK_OK(late.wait());
    CHECK_EQ(late.outcome().ok, 100u);
    CHECK_STR(late[99], "99");
    std::printf("pool move and stats: ok\n");
}

static void test_version_and_clock()
{
    CHECK_EQ(wsched::version(), wsched::header_version);
    CHECK_EQ(wsched::header_version, static_cast<unsigned>(WSCHED_VERSION));
    // steady_clock and wsched_now_ns are the same clock (CLOCK_MONOTONIC).
    for (int k = 0; k < 1000; k++) {
        std::uint64_t before = wsched_now_ns();
        auto s = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     wsched::clock::now().time_since_epoch()).count();
        std::uint64_t after = wsched_now_ns();
        CHECK(static_cast<std::uint64_t>(s) >= before);
        CHECK(static_cast<std::uint64_t>(s) <= after);
    }
    std::printf("version and clock: ok\n");
}

int main()
{
    check::watchdog(60);
    test_category();
    test_to_status();
    test_exception_type();
    test_admission();
    test_pool_move_and_stats();
    test_version_and_clock();
    std::printf("test_cpp_errors: ok\n");
    return 0;
}
