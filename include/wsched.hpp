/**
 * @file wsched.hpp
 * C++17 interface to wsched: header-only, over the C API of wsched.h.
 *
 *   wsched::pool pool;                                  // one worker per CPU
 *   std::vector<query> qs = ...;
 *   auto b = pool.submit(qs.size(), [&qs](wsched::context &, std::size_t i) {
 *       return lookup(qs[i]);                           // the job's result
 *   });
 *   b.wait();                                           // complete
 *   for (std::size_t i = 0; i < b.size(); i++)
 *       if (b.ok(i)) use(b[i]); else report(b.error(i));
 *
 * What it adds to the C API
 *  - Errors as std::error_code in wsched::category(): the value is the C
 *    code itself (negative errno or WSCHED_E*), and an errno code compares
 *    equal to its std::errc (ec == std::errc::timed_out). Calls that cannot
 *    return a code (constructors, the throwing submit) throw wsched::error,
 *    a std::system_error; each has a non-throwing twin taking an
 *    std::error_code&.
 *  - RAII: pool and batch<T> are move-only and release what they hold in
 *    their destructors; native_handle() reaches the C object.
 *  - Jobs are any callable, invoked concurrently as a const lvalue (no
 *    `mutable` lambdas: several workers call it at once):
 *      f(wsched::context &, std::size_t i) -> T   or   f(std::size_t i) -> T
 *    where T is
 *      void                  no result (a batch without slots): status 0
 *      std::error_code       no result; the code is the job's status
 *                            (success = 0; see to_status)
 *      wsched::result<U>     a U on success, else an error code (the
 *                            status-returning form: errors without throwing)
 *      anything else         the result itself, constructed in slot i
 *                            (status 0)
 *    A result is constructed in its slot by the wrapper (placement new:
 *    in place from the returned prvalue, no copy or move, for a plain T;
 *    moved out of a wsched::result) only when the job succeeds, and
 *    destroyed by the batch's destructor, exactly once.
 *    An exception that leaves a job is caught at the job's boundary (C
 *    frames are never unwound): the slot's status becomes
 *    WSCHED_EEXCEPTION and the first exception caught is kept for
 *    batch::rethrow_if_failed().
 *  - The callable is moved (or copied) into the batch, on the heap, and
 *    freed only once every job has returned (wsched_wait_idle returned 0).
 *    Pass std::ref(f) to share a caller-owned callable instead: it must
 *    then outlive the batch object.
 *  - Fork-join with lambdas: wsched::task (owned by the spawning frame,
 *    no allocation per spawn) with context::spawn / context::sync.
 *  - In C++20, jobs that wait as coroutines: pool::submit_waiting of
 *    wsched::waiting_job coroutines that co_await the waits of their
 *    wsched::wait_context (see "Coroutine jobs" near the end).
 *
 * Reading results: after wait() returned success (or after next_done()
 * named the slot), slot i holds a T only where status(i) == 0. After an
 * early completion (quorum, deadline) a job still running may construct a
 * result that its status discards: the batch destroys that one too, in its
 * destructor, never earlier (it waits for every job first).
 *
 * Threads: as in wsched.h. A pool, a batch and a task are each used by one
 * thread at a time (they may move between threads); a context only by the
 * job or task it was given to. Needs C++17 and exceptions enabled.
 *
 * No mutex anywhere; the only atomics are the first-exception hand-off of
 * a batch (detail::job_state_base, orderings commented there).
 */
#ifndef WSCHED_HPP
#define WSCHED_HPP

#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "wsched.h"

/* C++20 coroutine jobs (waiting_job, wait_context: see "Coroutine jobs"
 * below) when the compiler and library have them; 0 in C++17. */
#if defined(__cpp_impl_coroutine) && __has_include(<coroutine>)
#define WSCHED_HPP_COROUTINES 1
#include <coroutine>
#else
#define WSCHED_HPP_COROUTINES 0
#endif

namespace wsched {

/* ================================================================ errors */

/** The slot statuses of wsched.h as an error-code enum:
 * `b.error(i) == wsched::errc::cancelled`. */
enum class errc : int {
    not_run = WSCHED_ENOTRUN,
    job_code = WSCHED_EJOBCODE,
    cancelled = WSCHED_ECANCELLED,
    deadline = WSCHED_EDEADLINE,
    exception = WSCHED_EEXCEPTION,
};

} // namespace wsched

namespace std {
template <> struct is_error_code_enum<wsched::errc> : true_type {};
} // namespace std

namespace wsched {

namespace detail {

class category_impl final : public std::error_category {
public:
    constexpr category_impl() noexcept = default;
    const char *name() const noexcept override { return "wsched"; }
    std::string message(int code) const override
    {
        const char *s = wsched_strerror(code);
        return s ? s : "unknown wsched error";
    }
    /* A negative errno is the generic condition of that errno, so that
     * `ec == std::errc::connection_refused` holds; WSCHED_E* codes (below
     * WSCHED_ERRBASE) and anything else stay in this category. */
    std::error_condition default_error_condition(int code) const noexcept override
    {
        if (code < 0 && code > WSCHED_ERRBASE)
            return std::error_condition(-code, std::generic_category());
        return std::error_condition(code, *this);
    }
};

/* Constant-initialised (constexpr constructor): no guard on use. */
inline const category_impl category_instance{};

} // namespace detail

/** The error category of wsched's codes; message() is wsched_strerror(). */
inline const std::error_category &category() noexcept { return detail::category_instance; }

/** A wsched code (0, a negative errno, a WSCHED_E*) as an error_code whose
 * value() is that code. */
inline std::error_code make_error_code(int code) noexcept
{
    return std::error_code(code, category());
}
inline std::error_code make_error_code(errc e) noexcept
{
    return std::error_code(static_cast<int>(e), category());
}

/**
 * An error_code as a wsched status (what a job returns): 0 for success;
 * the value of a wsched code; -errno for a code whose default condition is
 * generic (std::errc, std::generic_category, errno values of
 * std::system_category); WSCHED_EJOBCODE for a code wsched cannot express.
 */
inline int to_status(const std::error_code &ec) noexcept
{
    if (!ec)
        return 0;
    if (ec.category() == category())
        return ec.value();
    std::error_condition c = ec.default_error_condition();
    if (c.category() == std::generic_category() && c.value() > 0)
        return -c.value();
    return WSCHED_EJOBCODE;
}

/** What the throwing calls throw: code() is in wsched::category(). */
class error : public std::system_error {
public:
    explicit error(std::error_code ec, const char *what = "wsched")
        : std::system_error(ec, what)
    {
    }
    explicit error(int code, const char *what = "wsched")
        : std::system_error(make_error_code(code), what)
    {
    }
};

/** The version of the library linked (WSCHED_VERSION of its build); compare
 * with header_version to detect a mismatch. */
inline unsigned version() noexcept { return wsched_version(); }
/** The version of this header. */
inline constexpr unsigned header_version = WSCHED_VERSION;

/* ================================================================= time */

/** The clock of deadlines: steady_clock, which on Linux is CLOCK_MONOTONIC
 * (libstdc++ and libc++), the clock of wsched_now_ns. */
using clock = std::chrono::steady_clock;

namespace detail {

/* A timeout as the C API takes it: <= 0 polls (0), an (in practice)
 * unbounded one waits for ever (-1), else rounded up to whole ns. */
template <class Rep, class Period>
std::int64_t timeout_ns(std::chrono::duration<Rep, Period> d) noexcept
{
    if (d <= d.zero())
        return 0;
    if (std::chrono::duration<long double, std::nano>(d).count() >= 9.0e18L)
        return -1; /* ~285 years: for ever */
    return std::chrono::ceil<std::chrono::nanoseconds>(d).count();
}

template <class Clock, class Dur>
std::int64_t timeout_ns(std::chrono::time_point<Clock, Dur> tp) noexcept
{
    return timeout_ns(tp - Clock::now());
}

/* A steady_clock time point as deadline_ns (0 means "none", so a deadline
 * at or before the clock's epoch becomes 1: already past). */
inline std::uint64_t deadline_ns(clock::time_point tp) noexcept
{
#if defined(__linux__)
    /* steady_clock reads CLOCK_MONOTONIC: same epoch as wsched_now_ns. */
    std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
#else
    std::int64_t ns = static_cast<std::int64_t>(wsched_now_ns()) +
                      std::chrono::duration_cast<std::chrono::nanoseconds>(tp - clock::now()).count();
#endif
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 1u;
}

} // namespace detail

/* ============================================================== options */

/** Failure policies (enum wsched_policy). */
enum class policy : unsigned {
    best_effort = WSCHED_POLICY_BEST_EFFORT, /**< every job runs */
    fail_fast = WSCHED_POLICY_FAIL_FAST,     /**< the first failure cancels the rest */
    quorum = WSCHED_POLICY_QUORUM,           /**< complete once `quorum` jobs succeeded */
};

/** Priority classes (enum wsched_priority). */
enum class priority : unsigned {
    interactive = WSCHED_PRIO_INTERACTIVE,
    background = WSCHED_PRIO_BACKGROUND,
};

/**
 * How a batch runs (wsched_batch_desc without fn, arg and slots). Set the
 * fields, or chain the with_* setters on a temporary:
 *   pool.submit(n, f, wsched::options().with_quorum(3).with_budget(5ms));
 */
struct options {
    wsched::policy policy = wsched::policy::best_effort;
    /** policy::quorum: successes needed, 1..njobs. */
    std::size_t quorum = 0;
    /** The batch's deadline (see wsched_batch_desc.deadline_ns); none when
     * empty. */
    std::optional<clock::time_point> deadline;
    /** At most this many of the batch's jobs at once; 0 = no limit. */
    std::size_t max_parallel = 0;
    wsched::priority priority = wsched::priority::interactive;
    /** Completion stream: read with batch::next_done. */
    bool stream = false;
    /** Each slot on its own 64-byte lines (no false sharing between
     * neighbouring results; costs memory for small results). */
    bool pad_slots = false;
    /** With max_jobs admission: how long submit may wait for room (0 = shed
     * load at once: -EBUSY); empty = as long as it takes. */
    std::optional<std::chrono::nanoseconds> admission_timeout;

    options &with_policy(wsched::policy p) noexcept
    {
        policy = p;
        return *this;
    }
    /** policy::quorum with `k` successes needed. */
    options &with_quorum(std::size_t k) noexcept
    {
        policy = wsched::policy::quorum;
        quorum = k;
        return *this;
    }
    options &with_deadline(clock::time_point tp) noexcept
    {
        deadline = tp;
        return *this;
    }
    /** Deadline = now (when this is called) + budget. */
    template <class Rep, class Period>
    options &with_budget(std::chrono::duration<Rep, Period> budget) noexcept
    {
        std::int64_t ns = detail::timeout_ns(budget);
        if (ns >= 0) /* else no deadline at all */
            deadline = clock::now() + std::chrono::nanoseconds(ns);
        return *this;
    }
    options &with_max_parallel(std::size_t n) noexcept
    {
        max_parallel = n;
        return *this;
    }
    options &with_priority(wsched::priority p) noexcept
    {
        priority = p;
        return *this;
    }
    options &with_stream(bool on = true) noexcept
    {
        stream = on;
        return *this;
    }
    options &with_padded_slots(bool on = true) noexcept
    {
        pad_slots = on;
        return *this;
    }
    template <class Rep, class Period>
    options &with_admission_timeout(std::chrono::duration<Rep, Period> t) noexcept
    {
        std::int64_t ns = detail::timeout_ns(t);
        if (ns >= 0)
            admission_timeout = std::chrono::nanoseconds(ns);
        else
            admission_timeout.reset();
        return *this;
    }
};

/* =============================================================== result */

/**
 * A job's value or its error: the status-returning job form,
 *   [](wsched::context &, std::size_t i) -> wsched::result<reply> {
 *       if (down) return wsched::make_error_code(-ECONNREFUSED);
 *       return reply{...};
 *   }
 * An error must not be success (an empty error_code): such a result is
 * recorded as WSCHED_EJOBCODE. The error becomes the slot's status through
 * to_status().
 */
template <class T> class result {
public:
    static_assert(!std::is_reference_v<T> && !std::is_void_v<T>,
                  "wsched::result holds a value: use std::error_code for no value");
    result(const T &v) : v_(v) {}
    result(T &&v) : v_(std::move(v)) {}
    template <class... A>
    explicit result(std::in_place_t, A &&...a) : v_(std::in_place, std::forward<A>(a)...)
    {
    }
    result(std::error_code ec) noexcept : ec_(ec) {}

    bool has_value() const noexcept { return v_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    T &value() & { return v_.value(); }
    const T &value() const & { return v_.value(); }
    T &&value() && { return std::move(v_).value(); }
    std::error_code error() const noexcept { return ec_; }

private:
    std::optional<T> v_;
    std::error_code ec_;
};

/* ============================================================== forward */

class context;
class pool;
#if WSCHED_HPP_COROUTINES
class wait_context;
class waiting_job;
/** Bytes each job of submit_waiting reserves in its slot for its
 * coroutine frame, by default (a frame that does not fit is allocated on
 * the heap). */
inline constexpr std::size_t default_frame_bytes = 256;
#endif
template <class F> class task;
template <class T> class batch;

namespace detail {

template <class T> struct is_result : std::false_type {};
template <class T> struct is_result<result<T>> : std::true_type {};

template <class F> struct is_task : std::false_type {};
template <class F> struct is_task<task<F>> : std::true_type {};

/* The job forms: f(context &, size_t) is preferred when both are
 * invocable. */
template <class F, class = void> struct job_traits {
    static constexpr bool valid = false;
};
template <class F>
struct job_traits<F, std::enable_if_t<std::is_invocable_v<const F &, context &, std::size_t>>> {
    static constexpr bool valid = true;
    static constexpr bool with_ctx = true;
    using ret = std::invoke_result_t<const F &, context &, std::size_t>;
};
template <class F>
struct job_traits<F, std::enable_if_t<!std::is_invocable_v<const F &, context &, std::size_t> &&
                                      std::is_invocable_v<const F &, std::size_t>>> {
    static constexpr bool valid = true;
    static constexpr bool with_ctx = false;
    using ret = std::invoke_result_t<const F &, std::size_t>;
};

/* The value a job's return type puts in its slot (void: no slot). */
template <class R> struct job_value {
    using type = R;
};
template <> struct job_value<std::error_code> {
    using type = void;
};
template <class U> struct job_value<result<U>> {
    using type = U;
};

template <class F> struct job_value_of {
    static_assert(job_traits<F>::valid,
                  "a wsched job is callable as f(wsched::context &, std::size_t) or "
                  "f(std::size_t), through a const reference (no mutable lambda)");
    using ret = typename job_traits<F>::ret;
    static_assert(!std::is_reference_v<ret>, "a job returns its result by value");
    using type = typename job_value<std::remove_cv_t<ret>>::type;
};

} // namespace detail

/** The slot type of a batch of f's: batch<job_value_t<F>>. */
template <class F> using job_value_t = typename detail::job_value_of<std::decay_t<F>>::type;

/* ================================================================ slots */

namespace detail {

constexpr std::size_t round_up(std::size_t n, std::size_t a) noexcept
{
    return (n + a - 1) / a * a;
}

/*
 * Slot memory is allocated (zeroed, 64-byte aligned) by the library: raw
 * bytes, not T objects. A T is constructed there by its job on success. A
 * trivially destructible T needs no more; any other T is followed by a
 * `live` byte that its job sets after constructing it, so that the batch's
 * destructor destroys exactly the T objects that exist, whatever the
 * status says (a late job after a quorum or deadline completion constructs
 * a result whose status is not 0). `live` is plain memory: written by the
 * slot's own job only, read only after wsched_wait_idle returned 0, which
 * orders every job's writes before its return.
 */
template <class T, bool Tracked = !std::is_trivially_destructible_v<T>> struct slot_layout {
    static_assert(alignof(T) <= 64, "wsched slots are 64-byte aligned at most");
    static constexpr std::size_t size = sizeof(T);
    static void set_live(void *) noexcept {}
    static void destroy_all(unsigned char *, std::size_t, std::size_t) noexcept {}
    static constexpr void (*destroyer)(unsigned char *, std::size_t, std::size_t) noexcept = nullptr;
};

template <class T> struct slot_layout<T, true> {
    static_assert(alignof(T) <= 64, "wsched slots are 64-byte aligned at most");
    static constexpr std::size_t size = round_up(sizeof(T) + 1, alignof(T));
    static void set_live(void *slot) noexcept { static_cast<unsigned char *>(slot)[sizeof(T)] = 1; }
    static void destroy_all(unsigned char *base, std::size_t n, std::size_t stride) noexcept
    {
        for (std::size_t i = 0; i < n; i++) {
            unsigned char *s = base + i * stride;
            if (s[sizeof(T)]) {
                std::launder(reinterpret_cast<T *>(s))->~T();
                s[sizeof(T)] = 0;
            }
        }
    }
    static constexpr void (*destroyer)(unsigned char *, std::size_t,
                                       std::size_t) noexcept = &destroy_all;
};

} // namespace detail

/**
 * A view of a batch's results in input order: element i is valid only
 * where the batch's status(i) == 0 (other slots hold no object; reading
 * one is undefined behaviour). operator[] checks bounds and status in
 * debug builds (assert); iterators do not. Elements are `stride` bytes
 * apart (not a contiguous T array).
 */
template <class T> class slot_span {
    using byte = std::conditional_t<std::is_const_v<T>, const unsigned char, unsigned char>;

public:
    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = std::remove_cv_t<T>;
        using difference_type = std::ptrdiff_t;
        using pointer = T *;
        using reference = T &;

        iterator() noexcept = default;
        iterator(byte *base, std::size_t i, std::size_t stride) noexcept
            : base_(base), i_(i), stride_(stride)
        {
        }
        reference operator*() const noexcept { return *std::launder(reinterpret_cast<T *>(base_ + i_ * stride_)); }
        pointer operator->() const noexcept { return &**this; }
        reference operator[](difference_type d) const noexcept { return *(*this + d); }
        std::size_t index() const noexcept { return i_; }
        iterator &operator++() noexcept { ++i_; return *this; }
        iterator operator++(int) noexcept { iterator t = *this; ++i_; return t; }
        iterator &operator--() noexcept { --i_; return *this; }
        iterator operator--(int) noexcept { iterator t = *this; --i_; return t; }
        iterator &operator+=(difference_type d) noexcept
        {
            i_ = static_cast<std::size_t>(static_cast<difference_type>(i_) + d);
            return *this;
        }
        iterator &operator-=(difference_type d) noexcept { return *this += -d; }
        friend iterator operator+(iterator a, difference_type d) noexcept { return a += d; }
        friend iterator operator+(difference_type d, iterator a) noexcept { return a += d; }
        friend iterator operator-(iterator a, difference_type d) noexcept { return a -= d; }
        friend difference_type operator-(const iterator &a, const iterator &b) noexcept
        {
            return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
        }
        friend bool operator==(const iterator &a, const iterator &b) noexcept { return a.i_ == b.i_ && a.base_ == b.base_; }
        friend bool operator!=(const iterator &a, const iterator &b) noexcept { return !(a == b); }
        friend bool operator<(const iterator &a, const iterator &b) noexcept { return a.i_ < b.i_; }
        friend bool operator>(const iterator &a, const iterator &b) noexcept { return b < a; }
        friend bool operator<=(const iterator &a, const iterator &b) noexcept { return !(b < a); }
        friend bool operator>=(const iterator &a, const iterator &b) noexcept { return !(a < b); }

    private:
        byte *base_ = nullptr;
        std::size_t i_ = 0, stride_ = 0;
    };

    slot_span() noexcept = default;
    slot_span(const wsched_batch *b, byte *base, std::size_t n, std::size_t stride) noexcept
        : b_(b), base_(base), n_(n), stride_(stride)
    {
    }
    std::size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    std::size_t stride() const noexcept { return stride_; }
    iterator begin() const noexcept { return iterator(base_, 0, stride_); }
    iterator end() const noexcept { return iterator(base_, n_, stride_); }
    T &operator[](std::size_t i) const noexcept
    {
        assert(i < n_ && "wsched: slot index out of range");
        assert(slot_ok(i) && "wsched: reading a slot whose status is not 0");
        return begin()[static_cast<std::ptrdiff_t>(i)];
    }

private:
    bool slot_ok(std::size_t i) const noexcept
    {
        int s = -1;
        return wsched_batch_status(b_, i, &s) == 0 && s == 0;
    }
    const wsched_batch *b_ = nullptr;
    byte *base_ = nullptr;
    std::size_t n_ = 0, stride_ = 0;
};

/* ============================================================ job state */

namespace detail {

/*
 * What a batch owns besides the C handle: the callable (in job_state<F>),
 * the pool (for nested submits through context) and the first exception.
 *
 * First exception, no mutex: a job that caught one claims the single
 * place with an exchange on `exc_claimed` (relaxed: its atomicity alone
 * picks one winner, and only the winner touches `exc`), stores it, then
 * sets `exc_ready` with RELEASE. A reader loads `exc_ready` with ACQUIRE
 * (pairs with that release) before reading `exc`, so it sees the whole
 * exception_ptr whenever it sees the flag: safe at any time, also while
 * late jobs still run after an early completion. After wait() returned 0
 * for a batch that ran to its end the flag is certainly set if any job
 * threw (the job's release store precedes its return, which completion
 * orders before wait's return).
 */
struct job_state_base {
    explicit job_state_base(wsched_pool *p, void (*free_fn)(job_state_base *) noexcept) noexcept
        : pool(p), destroy(free_fn)
    {
    }
    job_state_base(const job_state_base &) = delete;
    job_state_base &operator=(const job_state_base &) = delete;

    void record(std::exception_ptr e, std::size_t i) noexcept
    {
        if (exc_claimed.exchange(true, std::memory_order_relaxed))
            return; /* not the first */
        exc = std::move(e);
        exc_index = i;
        exc_ready.store(true, std::memory_order_release);
    }
    bool has_exception() const noexcept { return exc_ready.load(std::memory_order_acquire); }

    wsched_pool *const pool;
    void (*const destroy)(job_state_base *) noexcept;
    std::atomic<bool> exc_claimed{false};
    std::atomic<bool> exc_ready{false};
    std::exception_ptr exc;
    std::size_t exc_index = SIZE_MAX;
};

template <class F> struct job_state final : job_state_base {
    template <class G>
    job_state(wsched_pool *p, G &&g) : job_state_base(p, &free_me), fn(std::forward<G>(g))
    {
    }
    static void free_me(job_state_base *s) noexcept { delete static_cast<job_state *>(s); }
    F fn;
};

template <class F> int run_job(wsched_ctx *c, void *arg, std::size_t i, void *slot) noexcept;

template <class F>
batch<job_value_t<F>> submit(wsched_pool *pool, std::size_t n, F &&f, const options &opt,
                             std::error_code &ec);

/* The coroutine jobs' runner and submit (C++20 only; declared for the
 * friend declarations of context and batch_base). */
struct waiting_submit;

} // namespace detail

/* ============================================================== context */

/**
 * A running job's (or task's) context: what the job may ask of the
 * scheduler. Given by reference to the job; valid until it returns; used
 * only by that job's thread.
 */
class context {
public:
    /** Wrap the ctx of a C job (pool: for submit; may be NULL). */
    context(wsched_ctx *c, wsched_pool *p) noexcept : c_(c), pool_(p) {}
    context(const context &) = delete;
    context &operator=(const context &) = delete;

    wsched_ctx *native_handle() const noexcept { return c_; }
    /** The pool the job runs in. */
    wsched_pool *pool_handle() const noexcept { return pool_; }
    /** The batch was cancelled (any reason) or its deadline passed. */
    bool cancelled() const noexcept { return wsched_cancelled(c_) == 1; }
    /** The job is about to block: see wsched_blocking. */
    void blocking() noexcept { (void)wsched_blocking(c_); }
    /** Index of the worker running the job, 0..workers-1. */
    unsigned worker() const noexcept { return static_cast<unsigned>(wsched_ctx_worker(c_)); }

    /**
     * Fork: t may run on any worker from now until the next sync() of this
     * context (t's destructor syncs if it has not been). t must belong to
     * the frame that owns this context's job or task, and must not be
     * spawned again before that sync. Never allocates, never fails.
     */
    template <class F> void spawn(task<F> &t) noexcept;
    template <class G> void spawn(G &&) = delete; /* spawn a wsched::task */

    /** Join every task spawned through this context since its last sync. */
    void sync() noexcept
    {
        (void)wsched_sync(c_);
        ++epoch_;
    }

    /** A nested batch in the same pool (admission does not count it); wait
     * for it from the job: the worker runs other jobs meanwhile. Throws
     * wsched::error. */
    template <class F>
    [[nodiscard]] batch<job_value_t<F>> submit(std::size_t n, F &&f, const options &opt = {});
    /** The same, reporting wsched errors (and std::bad_alloc, as -ENOMEM)
     * in ec with an empty batch instead of throwing. */
    template <class F>
    [[nodiscard]] batch<job_value_t<F>> submit(std::size_t n, F &&f, const options &opt,
                                               std::error_code &ec);
#if WSCHED_HPP_COROUTINES
    /** A nested batch of coroutine jobs (see pool::submit_waiting). */
    template <class Slot, std::size_t FrameBytes = default_frame_bytes, class F>
    [[nodiscard]] batch<Slot> submit_waiting(std::size_t n, F &&f, const options &opt = {});
    template <class Slot, std::size_t FrameBytes = default_frame_bytes, class F>
    [[nodiscard]] batch<Slot> submit_waiting(std::size_t n, F &&f, const options &opt,
                                             std::error_code &ec);
#endif

private:
    template <class F> friend class task;
    friend struct detail::waiting_submit; /* rebinds c_ at each call of a coroutine job */
    wsched_ctx *c_;
    wsched_pool *pool_;
    /* Counts syncs, so a task knows whether it was joined: plain, since a
     * context is used by its job's thread only. */
    std::uint64_t epoch_ = 0;
};

/* ================================================================= task */

/**
 * A fork-join child: a callable f(context &) or f() with room for its
 * result and its exception, owned by the spawning frame (no allocation):
 *
 *   std::uint64_t fib(wsched::context &ctx, int n) {
 *       if (n < 2) return n;
 *       wsched::task left([n](wsched::context &c) { return fib(c, n - 1); });
 *       ctx.spawn(left);
 *       std::uint64_t right = fib(ctx, n - 2);
 *       ctx.sync();
 *       return left.get() + right;
 *   }
 *
 * The destructor syncs the spawning context if the task has not been
 * joined yet, so a frame unwound by an exception never leaves a child
 * running on its locals. An exception in f is kept in the task and
 * rethrown by get() / rethrow_if_failed().
 */
template <class F> class task {
public:
    using result_type = std::conditional_t<std::is_invocable_v<F &, context &>,
                                           std::invoke_result<F &, context &>, std::invoke_result<F &>>;
    using value_type = typename result_type::type;
    static_assert(!std::is_reference_v<value_type>, "a task returns its result by value");

    explicit task(F f) noexcept(std::is_nothrow_move_constructible_v<F>) : f_(std::move(f)) {}
    task(const task &) = delete;
    task &operator=(const task &) = delete;
    ~task()
    {
        if (pending())
            parent_->sync();
    }

    /** Spawned and not joined yet. */
    bool pending() const noexcept { return parent_ && parent_->epoch_ == epoch_; }
    /** After the join: f threw. */
    bool failed() const noexcept { return exc_ != nullptr; }
    std::exception_ptr exception() const noexcept { return exc_; }
    void rethrow_if_failed() const
    {
        if (exc_)
            std::rethrow_exception(exc_);
    }
    /** After the join: f's result (rethrows f's exception). */
    template <class V = value_type, std::enable_if_t<!std::is_void_v<V>, int> = 0> V &get()
    {
        assert(!pending() && "wsched::task::get before sync");
        rethrow_if_failed();
        return *value_;
    }
    template <class V = value_type, std::enable_if_t<std::is_void_v<V>, int> = 0> void get() const
    {
        assert(!pending() && "wsched::task::get before sync");
        rethrow_if_failed();
    }

private:
    friend class context;
    struct no_value {};
    using storage = std::conditional_t<std::is_void_v<value_type>, no_value, std::optional<value_type>>;

    static void run(wsched_ctx *c, void *arg) noexcept
    {
        task *t = static_cast<task *>(arg);
        context ctx(c, t->pool_);
        try {
            if constexpr (std::is_void_v<value_type>)
                t->call(ctx);
            else
                t->value_.emplace(t->call(ctx));
        } catch (...) {
            t->exc_ = std::current_exception(); /* one writer; read after the join */
        }
    }
    decltype(auto) call(context &ctx)
    {
        if constexpr (std::is_invocable_v<F &, context &>)
            return std::invoke(f_, ctx);
        else
            return std::invoke(f_);
    }

    F f_;
    storage value_{};
    std::exception_ptr exc_;
    /* Set by spawn, before wsched_spawn publishes the task: parent_ and
     * epoch_ are read by the spawning thread only, pool_ by the child. */
    context *parent_ = nullptr;
    std::uint64_t epoch_ = 0;
    wsched_pool *pool_ = nullptr;
};

template <class F> void context::spawn(task<F> &t) noexcept
{
    assert(!t.pending() && "wsched: task spawned twice without a sync");
    t.parent_ = this;
    t.epoch_ = epoch_;
    t.pool_ = pool_;
    t.exc_ = nullptr;
    if constexpr (!std::is_void_v<typename task<F>::value_type>)
        t.value_.reset();
    int r = wsched_spawn(c_, &task<F>::run, &t);
    assert(r == 0);
    (void)r;
}

/* ================================================================ batch */

namespace detail {

/* Everything of a batch that does not depend on its result type. */
class batch_base {
public:
    batch_base() noexcept = default;
    batch_base(const batch_base &) = delete;
    batch_base &operator=(const batch_base &) = delete;
    batch_base(batch_base &&o) noexcept { take(o); }
    batch_base &operator=(batch_base &&o) noexcept
    {
        if (this != &o) {
            reset();
            take(o);
        }
        return *this;
    }
    /** = reset(). */
    ~batch_base() { reset(); }

    /**
     * Release the batch now: wait until every job has returned (jobs may
     * still run after an early completion), destroy the results that were
     * constructed, free the callable and the C batch. Afterwards the
     * object is empty. Also what the destructor and move assignment do.
     */
    void reset() noexcept
    {
        if (!h_)
            return;
        int r = wsched_wait_idle(h_, -1);
        assert(r == 0);
        if (r == 0) {
            if (destroy_values_)
                destroy_values_(base_, n_, stride_);
            st_->destroy(st_);
            wsched_batch_free(h_);
        } /* else cannot happen for a valid handle; leak rather than free
           * what a job may still use */
        h_ = nullptr;
        st_ = nullptr;
        base_ = nullptr;
        n_ = stride_ = 0;
        destroy_values_ = nullptr;
    }

    explicit operator bool() const noexcept { return h_ != nullptr; }
    wsched_batch *native_handle() const noexcept { return h_; }
    /** Number of jobs (0 for an empty batch object). */
    std::size_t size() const noexcept { return n_; }

    /** Wait until the batch is complete: success, or -EINVAL for an empty
     * object. How it ended: outcome(), status(i). */
    std::error_code wait() noexcept { return make_error_code(wsched_wait(h_, -1)); }
    /** The same, -ETIMEDOUT (== std::errc::timed_out) after `timeout`; 0
     * polls. */
    template <class Rep, class Period>
    std::error_code wait(std::chrono::duration<Rep, Period> timeout) noexcept
    {
        return make_error_code(wsched_wait(h_, timeout_ns(timeout)));
    }
    template <class Clock, class Dur>
    std::error_code wait_until(std::chrono::time_point<Clock, Dur> tp) noexcept
    {
        return make_error_code(wsched_wait(h_, timeout_ns(tp)));
    }
    /** Wait until every job has returned (see wsched_wait_idle). */
    std::error_code wait_idle() noexcept { return make_error_code(wsched_wait_idle(h_, -1)); }
    template <class Rep, class Period>
    std::error_code wait_idle(std::chrono::duration<Rep, Period> timeout) noexcept
    {
        return make_error_code(wsched_wait_idle(h_, timeout_ns(timeout)));
    }
    /** wsched_cancel: jobs not started are not run. */
    std::error_code cancel() noexcept { return make_error_code(wsched_cancel(h_)); }

    /**
     * Next job to reach its final state, for options::stream: index gets
     * it and success is returned; every job once, then -ENODATA
     * (std::errc::no_message_available).
     */
    std::error_code next_done(std::size_t &index) noexcept
    {
        return make_error_code(wsched_next_done(h_, -1, &index));
    }
    template <class Rep, class Period>
    std::error_code next_done(std::size_t &index, std::chrono::duration<Rep, Period> timeout) noexcept
    {
        return make_error_code(wsched_next_done(h_, timeout_ns(timeout), &index));
    }

    /** Job i's status (wsched_batch_status): 0, the job's code,
     * WSCHED_ECANCELLED, WSCHED_EDEADLINE, WSCHED_EEXCEPTION,
     * WSCHED_ENOTRUN while unfinished. Precondition i < size() (checked by
     * assert; out of range gives -EINVAL). */
    int status(std::size_t i) const noexcept
    {
        assert(i < n_ && "wsched: job index out of range");
        int s = -EINVAL;
        return wsched_batch_status(h_, i, &s) == 0 ? s : -EINVAL;
    }
    /** status(i) as an error_code. */
    std::error_code error(std::size_t i) const noexcept { return make_error_code(status(i)); }
    bool ok(std::size_t i) const noexcept { return status(i) == 0; }

    /** How the batch ended (wsched_batch_outcome); all zero for an empty
     * object. */
    wsched_outcome outcome() const noexcept
    {
        wsched_outcome o{};
        if (wsched_batch_outcome(h_, &o, sizeof o) != 0)
            o = wsched_outcome{};
        return o;
    }

    /** The first exception a job threw (in time), or null. A job that runs
     * late after an early completion may still add one. */
    std::exception_ptr exception() const noexcept { return st_ && st_->has_exception() ? st_->exc : nullptr; }
    /** The index of that job (SIZE_MAX when none). */
    std::size_t exception_index() const noexcept { return st_ && st_->has_exception() ? st_->exc_index : SIZE_MAX; }
    /** Rethrow exception() if there is one. */
    void rethrow_if_failed() const
    {
        if (std::exception_ptr e = exception())
            std::rethrow_exception(e);
    }

protected:
    template <class F>
    friend batch<job_value_t<F>> detail::submit(wsched_pool *, std::size_t, F &&, const options &,
                                                std::error_code &);
    friend struct detail::waiting_submit;

    void adopt(wsched_batch *h, job_state_base *st, std::size_t n, std::size_t stride,
               void (*destroy_values)(unsigned char *, std::size_t, std::size_t) noexcept) noexcept
    {
        h_ = h;
        st_ = st;
        n_ = n;
        stride_ = stride;
        base_ = static_cast<unsigned char *>(wsched_batch_slot(h, 0));
        destroy_values_ = destroy_values;
    }

    wsched_batch *h_ = nullptr;
    job_state_base *st_ = nullptr;
    unsigned char *base_ = nullptr; /* slot 0; NULL without slots */
    std::size_t n_ = 0, stride_ = 0;
    void (*destroy_values_)(unsigned char *, std::size_t, std::size_t) noexcept = nullptr;

private:
    void take(batch_base &o) noexcept
    {
        h_ = std::exchange(o.h_, nullptr);
        st_ = std::exchange(o.st_, nullptr);
        base_ = std::exchange(o.base_, nullptr);
        n_ = std::exchange(o.n_, 0);
        stride_ = std::exchange(o.stride_, 0);
        destroy_values_ = std::exchange(o.destroy_values_, nullptr);
    }
};

} // namespace detail

/**
 * A submitted batch whose jobs return T: move-only; its destructor waits
 * for every job to return, destroys the results that were constructed and
 * frees the batch (see reset()). Results are read after wait() (or, in a
 * stream, after next_done() named them), only where status(i) == 0.
 */
template <class T> class batch : public detail::batch_base {
public:
    using value_type = T;
    using iterator = typename slot_span<T>::iterator;
    using const_iterator = typename slot_span<const T>::iterator;

    batch() noexcept = default;
    batch(batch &&) noexcept = default;
    batch &operator=(batch &&) noexcept = default;

    /** Result i; status(i) must be 0 (assert in debug builds). */
    T &operator[](std::size_t i) noexcept { return slots()[i]; }
    const T &operator[](std::size_t i) const noexcept { return slots()[i]; }
    /** Result i if its job succeeded, else nullptr. */
    T *get(std::size_t i) noexcept { return i < n_ && ok(i) ? &slots().begin()[static_cast<std::ptrdiff_t>(i)] : nullptr; }
    const T *get(std::size_t i) const noexcept
    {
        return i < n_ && ok(i) ? &slots().begin()[static_cast<std::ptrdiff_t>(i)] : nullptr;
    }
    /** Result i, checked: std::out_of_range past the end, wsched::error
     * with the job's status when it did not succeed. */
    T &at(std::size_t i)
    {
        check(i);
        return slots().begin()[static_cast<std::ptrdiff_t>(i)];
    }
    const T &at(std::size_t i) const
    {
        check(i);
        return slots().begin()[static_cast<std::ptrdiff_t>(i)];
    }

    /** All slots in input order (see slot_span: only ok ones are valid). */
    slot_span<T> slots() noexcept { return slot_span<T>(h_, base_, n_, stride_); }
    slot_span<const T> slots() const noexcept { return slot_span<const T>(h_, base_, n_, stride_); }
    iterator begin() noexcept { return slots().begin(); }
    iterator end() noexcept { return slots().end(); }
    const_iterator begin() const noexcept { return slots().begin(); }
    const_iterator end() const noexcept { return slots().end(); }

private:
    void check(std::size_t i) const
    {
        if (i >= n_)
            throw std::out_of_range("wsched::batch::at: index out of range");
        if (int s = status(i))
            throw wsched::error(s, "wsched::batch::at: the job did not succeed");
    }
};

/** A batch whose jobs return no value: no slots. */
template <> class batch<void> : public detail::batch_base {
public:
    using value_type = void;
    batch() noexcept = default;
    batch(batch &&) noexcept = default;
    batch &operator=(batch &&) noexcept = default;
};

/* ============================================================ submitting */

namespace detail {

/* Submit d (fn, arg, njobs, slots and flags set) with the rest of opt. */
inline int submit_desc(wsched_pool *pool, wsched_batch_desc &d, const options &opt,
                       wsched_batch **out) noexcept
{
    d.flags |= opt.stream ? WSCHED_BATCH_STREAM : 0u;
    d.policy = static_cast<unsigned>(opt.policy);
    d.quorum = opt.quorum;
    d.deadline_ns = opt.deadline ? deadline_ns(*opt.deadline) : 0u;
    d.max_parallel = opt.max_parallel;
    d.priority = static_cast<unsigned>(opt.priority);
    return opt.admission_timeout
               ? wsched_submit_timed(pool, &d, out, timeout_ns(*opt.admission_timeout))
               : wsched_submit(pool, &d, out);
}

template <class F> int run_job(wsched_ctx *c, void *arg, std::size_t i, void *slot) noexcept
{
    auto *st = static_cast<job_state<F> *>(arg);
    using traits = job_traits<F>;
    using R = std::remove_cv_t<typename traits::ret>;
    using V = typename job_value<R>::type;
    context ctx(c, st->pool);
    const F &f = st->fn;
    auto call = [&]() -> decltype(auto) {
        if constexpr (traits::with_ctx)
            return std::invoke(f, ctx, i);
        else
            return std::invoke(f, i);
    };
    try {
        if constexpr (std::is_void_v<R>) {
            call();
            return 0;
        } else if constexpr (std::is_same_v<R, std::error_code>) {
            return to_status(call());
        } else if constexpr (is_result<R>::value) {
            R r = call();
            if (!r.has_value()) {
                int s = to_status(r.error());
                return s ? s : WSCHED_EJOBCODE;
            }
            ::new (slot) V(std::move(r).value());
            slot_layout<V>::set_live(slot);
            return 0;
        } else {
            ::new (slot) V(call()); /* in place from the prvalue */
            slot_layout<V>::set_live(slot);
            return 0;
        }
    } catch (...) {
        st->record(std::current_exception(), i);
        return WSCHED_EEXCEPTION;
    }
}

template <class F>
batch<job_value_t<F>> submit(wsched_pool *pool, std::size_t n, F &&f, const options &opt,
                             std::error_code &ec)
{
    using Fn = std::decay_t<F>;
    using V = job_value_t<F>;
    batch<V> b;
    std::unique_ptr<job_state<Fn>> st;
    try {
        st.reset(new job_state<Fn>(pool, std::forward<F>(f)));
    } catch (const std::bad_alloc &) {
        ec = make_error_code(-ENOMEM);
        return b;
    }
    wsched_batch_desc d{};
    d.fn = &run_job<Fn>;
    d.arg = st.get();
    d.njobs = n;
    std::size_t stride = 0;
    if constexpr (!std::is_void_v<V>) {
        d.slot_size = slot_layout<V>::size;
        stride = opt.pad_slots ? round_up(d.slot_size, 64) : d.slot_size;
        d.slot_stride = stride;
    }
    wsched_batch *h = nullptr;
    int r = submit_desc(pool, d, opt, &h);
    ec = make_error_code(r);
    if (r != 0)
        return b; /* nothing was queued: st goes with this frame */
    void (*destroy_values)(unsigned char *, std::size_t, std::size_t) noexcept = nullptr;
    if constexpr (!std::is_void_v<V>)
        destroy_values = slot_layout<V>::destroyer;
    b.adopt(h, st.release(), n, stride, destroy_values);
    return b;
}

} // namespace detail

template <class F>
batch<job_value_t<F>> context::submit(std::size_t n, F &&f, const options &opt, std::error_code &ec)
{
    return detail::submit(pool_, n, std::forward<F>(f), opt, ec);
}

template <class F> batch<job_value_t<F>> context::submit(std::size_t n, F &&f, const options &opt)
{
    std::error_code ec;
    batch<job_value_t<F>> b = detail::submit(pool_, n, std::forward<F>(f), opt, ec);
    if (ec)
        throw error(ec, "wsched_submit");
    return b;
}

/* ================================================================= pool */

/** Pool configuration (wsched_config's common fields); for a CPU list use
 * a wsched_config. */
struct pool_config {
    /** Workers; 0 = one per CPU (affinity mask, cgroup quota). */
    unsigned workers = 0;
    /** Pin workers to CPUs. */
    bool pin = true;
    /** Idle search before parking, us: 0 = the default. */
    unsigned spin_us = 0;
    /** Pool-wide admission limit in jobs; 0 = none. */
    std::uint64_t max_jobs = 0;
    /** NULL = the default allocator; must outlive the pool. */
    const wsched_allocator *allocator = nullptr;
    /** The workers' timer slack in ns; 0 = the default (1 us). */
    std::uint64_t timer_slack_ns = 0;

    wsched_config to_c() const noexcept
    {
        wsched_config c;
        wsched_config_init(&c);
        c.nworkers = workers;
        c.flags = pin ? 0u : WSCHED_POOL_NO_PIN;
        c.spin_us = spin_us;
        c.max_jobs = max_jobs;
        c.timer_slack_ns = timer_slack_ns;
        c.allocator = allocator;
        return c;
    }
};

/**
 * A pool of workers: move-only; the destructor is wsched_pool_destroy
 * (every accepted batch runs to completion first; batch objects may
 * outlive the pool). Not to be destroyed from one of its own workers.
 */
namespace detail {

/* pool::for_range's chunk runner: f(context &, lo, hi) or f(lo, hi),
 * returning void or std::error_code; an exception is caught here (C
 * frames must not unwind) and the first one kept for the caller. */
template <class F> struct range_call {
    F *f;
    wsched_pool *pool;
    std::atomic<bool> claimed{false};
    std::exception_ptr exc;
};

template <class F>
int run_range_chunk(wsched_ctx *c, void *arg, std::size_t lo, std::size_t hi, void *) noexcept
{
    auto *rc = static_cast<range_call<F> *>(arg);
    try {
        if constexpr (std::is_invocable_v<F &, context &, std::size_t, std::size_t>) {
            context ctx(c, rc->pool);
            using R = std::invoke_result_t<F &, context &, std::size_t, std::size_t>;
            if constexpr (std::is_same_v<R, std::error_code>)
                return to_status((*rc->f)(ctx, lo, hi));
            else
                (*rc->f)(ctx, lo, hi);
        } else {
            using R = std::invoke_result_t<F &, std::size_t, std::size_t>;
            if constexpr (std::is_same_v<R, std::error_code>)
                return to_status((*rc->f)(lo, hi));
            else
                (*rc->f)(lo, hi);
        }
        return 0;
    } catch (...) {
        if (!rc->claimed.exchange(true, std::memory_order_relaxed))
            rc->exc = std::current_exception(); /* read after the wait: published by it */
        return WSCHED_EEXCEPTION;
    }
}

} // namespace detail

class pool {
public:
    using config = pool_config;

    /** A pool with the defaults. Throws wsched::error. */
    pool() : pool(pool_config{}) {}
    explicit pool(const pool_config &cfg) : pool(cfg.to_c()) {}
    explicit pool(const wsched_config &cfg)
    {
        if (int r = wsched_pool_create(&p_, &cfg))
            throw error(r, "wsched_pool_create");
    }
    /** Non-throwing: an empty pool object and the error in ec. */
    [[nodiscard]] static pool create(const pool_config &cfg, std::error_code &ec) noexcept
    {
        return create(cfg.to_c(), ec);
    }
    [[nodiscard]] static pool create(const wsched_config &cfg, std::error_code &ec) noexcept
    {
        wsched_pool *p = nullptr;
        ec = make_error_code(wsched_pool_create(&p, &cfg));
        return adopt(p);
    }
    /** Take ownership of a C pool. */
    [[nodiscard]] static pool adopt(wsched_pool *p) noexcept
    {
        pool o(nullptr);
        o.p_ = p;
        return o;
    }

    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;
    pool(pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    /** Destroys the pool held first (see the destructor). */
    pool &operator=(pool &&o) noexcept
    {
        if (this != &o) {
            (void)destroy();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    /** wsched_pool_destroy. Its error is dropped: called from one of the
     * pool's own workers (-EDEADLK) the pool is leaked, not destroyed; use
     * destroy() to see the status. */
    ~pool() { (void)destroy(); }

    /** wsched_pool_destroy now; the object is empty on success (on failure,
     * -EDEADLK from a worker of this pool, it still holds the pool). */
    std::error_code destroy() noexcept
    {
        if (!p_)
            return {};
        int r = wsched_pool_destroy(p_);
        if (r == 0)
            p_ = nullptr;
        return make_error_code(r);
    }
    /** Give up ownership: the C pool, now the caller's. */
    [[nodiscard]] wsched_pool *release() noexcept { return std::exchange(p_, nullptr); }

    wsched_pool *native_handle() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    /** Number of workers (0 for an empty object). */
    unsigned workers() const noexcept
    {
        int n = wsched_pool_workers(p_);
        return n > 0 ? static_cast<unsigned>(n) : 0u;
    }

    /** wsched_pool_get_stats. Not concurrently with destroy(). */
    std::error_code stats(wsched_pool_stats &out) const noexcept
    {
        return make_error_code(wsched_pool_get_stats(p_, &out, sizeof out));
    }
    /** The same, throwing wsched::error. */
    wsched_pool_stats stats() const
    {
        wsched_pool_stats s{};
        if (std::error_code ec = stats(s))
            throw error(ec, "wsched_pool_get_stats");
        return s;
    }
    /** wsched_worker_get_stats: one entry per worker. Throws wsched::error. */
    std::vector<wsched_worker_stats> worker_stats() const
    {
        std::vector<wsched_worker_stats> v(workers());
        int r = wsched_worker_get_stats(p_, v.data(), static_cast<unsigned>(v.size()),
                                        sizeof(wsched_worker_stats));
        if (r < 0)
            throw error(r, "wsched_worker_get_stats");
        v.resize(static_cast<std::size_t>(r));
        return v;
    }

    /**
     * Range jobs (wsched_range_fn), blocking: f(lo, hi) or f(context &, lo,
     * hi) on chunks of [0, n) of at most `grain` indices (0: the library's
     * choice), every index in exactly one chunk, on the pool's workers;
     * returns when all have run. f returns void or a std::error_code, and
     * the call returns the first failure (the failed chunk of lowest start;
     * none: an empty code). An exception thrown by f is rethrown here (the
     * first one; the other chunks still run). Throws wsched::error when the
     * batch cannot be submitted (-EINVAL for n == 0, -ESHUTDOWN, ...). Not
     * from inside a job of this pool for large n: it waits, helping.
     */
    template <class F> std::error_code for_range(std::size_t n, F &&f, std::size_t grain = 0)
    {
        using Fn = std::remove_reference_t<F>;
        static_assert(std::is_invocable_v<Fn &, context &, std::size_t, std::size_t> ||
                          std::is_invocable_v<Fn &, std::size_t, std::size_t>,
                      "for_range: f(lo, hi) or f(wsched::context &, lo, hi)");
        detail::range_call<Fn> rc{&f, p_, {false}, {}};
        wsched_batch_desc d{};
        d.range_fn = &detail::run_range_chunk<Fn>;
        d.arg = &rc;
        d.njobs = n;
        d.grain = grain;
        wsched_batch *b = nullptr;
        if (int r = wsched_submit(p_, &d, &b))
            throw error(r, "wsched_submit");
        int r = wsched_wait(b, -1);
        wsched_outcome o{};
        int ro = wsched_batch_outcome(b, &o, sizeof o);
        wsched_batch_free(b);
        if (r || ro)
            throw error(r ? r : ro, "wsched_wait");
        if (rc.exc)
            std::rethrow_exception(rc.exc);
        return o.first_error ? make_error_code(o.first_error) : std::error_code{};
    }

    /**
     * Submit n jobs of f (see the job forms at the top of this file); the
     * batch owns a copy (or the moved) f until its jobs have all returned.
     * Throws wsched::error (-EINVAL for n == 0 or bad options, -ESHUTDOWN,
     * -EBUSY/-ETIMEDOUT/-E2BIG under admission, ...), and what copying f
     * throws.
     */
    template <class F>
    [[nodiscard]] batch<job_value_t<F>> submit(std::size_t n, F &&f, const options &opt = {})
    {
        std::error_code ec;
        batch<job_value_t<F>> b = detail::submit(p_, n, std::forward<F>(f), opt, ec);
        if (ec)
            throw error(ec, "wsched_submit");
        return b;
    }
    /** The same, wsched errors (and std::bad_alloc, as -ENOMEM) in ec and an
     * empty batch instead of a throw; what copying or moving f throws still
     * propagates. */
    template <class F>
    [[nodiscard]] batch<job_value_t<F>> submit(std::size_t n, F &&f, const options &opt,
                                               std::error_code &ec)
    {
        return detail::submit(p_, n, std::forward<F>(f), opt, ec);
    }

#if WSCHED_HPP_COROUTINES
    /**
     * Submit n coroutine jobs (C++20; see "Coroutine jobs" below): f is
     * callable as f(wait_context &, std::size_t i, Slot &) -> waiting_job,
     * or f(wait_context &, std::size_t i) -> waiting_job for Slot = void.
     * Slot i is value-initialised by job i's first call; FrameBytes of it
     * hold the job's coroutine frame when the frame fits. A WSCHED_BATCH_WAITS
     * batch: options::max_parallel counts jobs in flight, waiting included.
     * Throws as submit.
     */
    template <class Slot, std::size_t FrameBytes = default_frame_bytes, class F>
    [[nodiscard]] batch<Slot> submit_waiting(std::size_t n, F &&f, const options &opt = {});
    /** The same, errors in ec (an empty batch) instead of a throw. */
    template <class Slot, std::size_t FrameBytes = default_frame_bytes, class F>
    [[nodiscard]] batch<Slot> submit_waiting(std::size_t n, F &&f, const options &opt,
                                             std::error_code &ec);
#endif

private:
    explicit pool(std::nullptr_t) noexcept {}
    wsched_pool *p_ = nullptr;
};

/* ======================================================== coroutine jobs */

#if WSCHED_HPP_COROUTINES

/*
 * Coroutine jobs (C++20): the waits of wsched.h ("Jobs that wait") written
 * as co_await instead of a state machine in the slot.
 *
 *   struct call { std::string answer; };
 *   wsched::waiting_job call_backend(wsched::wait_context &w, std::size_t i, call &c)
 *   {
 *       send_request(i);
 *       if (std::error_code ec = co_await w.sleep_for(1ms)) // the worker runs
 *           co_return ec;                                    // other jobs meanwhile
 *       c.answer = read_reply(i);
 *       co_return 0;                                         // the job's status
 *   }
 *   auto b = pool.submit_waiting<call>(n, call_backend);
 *   b.wait();                                    // then b[i].answer where b.ok(i)
 *
 * How it maps onto the C API. The batch is submitted with
 * WSCHED_BATCH_WAITS; its C job function (detail::waiting_submit::run)
 * does, in each call of job i:
 *   first call      value-initialise Slot i, create the coroutine, run it to
 *                   its first co_await;
 *   a wait ended    record the resume kind (for the awaitable's
 *                   await_resume), resume the coroutine;
 *   then            suspended in a co_await that armed its wait: return
 *                   WSCHED_PENDING; finished (co_return): destroy the frame
 *                   and return the status;
 *   CANCELLED       destroy the frame without resuming it: the destructors
 *                   of its live locals run (RAII is the cleanup); the return
 *                   is ignored, the slot's status is WSCHED_ECANCELLED or
 *                   WSCHED_EDEADLINE.
 * A job cancelled before it started is never called: its Slot is not
 * constructed and no coroutine is made (read only slots of status 0, as
 * for every batch).
 *
 * The awaitables (members of wait_context) arm their wait in await_suspend.
 * An arming error (a negative code: -EINVAL, -EBUSY, -ESHUTDOWN, ...) does
 * not suspend: the co_await gives it back at once, in the same call. Only
 * these awaitables can be co_awaited (waiting_job's await_transform rejects
 * the others at compile time), so a suspension is always an armed wait,
 * which the library ends. Each co_await first joins the tasks spawned
 * through the wait_context since its last sync, as a C job's return would:
 * no task runs across a suspension.
 *
 * The frame. A job's slot holds, after its Slot (and the live byte of a
 * Slot that is not trivially destructible), the job's record: its
 * wait_context and a buffer of FrameBytes bytes. The promise's operator
 * new puts the coroutine frame in that buffer when it fits (behind a
 * 16-byte tag that says where the frame is), else on the heap (::operator
 * new); wait_context::frame_in_slot() says which. The buffer takes the
 * first frame made by the job's first call of f (the coroutine f is, or
 * the first one it calls); other waiting_job frames go on the heap. A job
 * whose frame fits allocates nothing, whatever its number of waits. Frame
 * sizes depend on the compiler and the optimisation level: size
 * FrameBytes with frame_in_slot() in the build that matters.
 *
 * Exceptions: one that leaves the coroutine is caught by its promise (no C
 * frame is unwound); the job's status becomes WSCHED_EEXCEPTION and the
 * first one is kept for batch::rethrow_if_failed(), as for the other job
 * forms. The same for what Slot's constructor or the frame's allocation
 * throws.
 *
 * Threads and memory ordering: nothing here is atomic, and nothing is
 * assumed beyond what the C API gives. The slot, the record and the frame
 * are plain memory used by one call of the job at a time; the next call may
 * run on another worker, and wsched orders the call that returned
 * WSCHED_PENDING before the call that resumes it (the hand-off of the
 * resumption carries the slot, "the job's frame"). await_suspend arms the
 * wait before the job's C function returns, and no resumption starts
 * before that return (a waker woken at once is resumed after it), so
 * arming there races with nothing. A coroutine may resume on another
 * thread: hold nothing thread-affine (a lock, thread_local state) across a
 * co_await.
 *
 * Lifetimes: the callable (a coroutine lambda's captures included) is owned
 * by the batch until every job has returned, and the coroutine's reference
 * parameters (wait_context &, the index, Slot &) stay valid for the whole
 * job, so a coroutine may keep references to them across co_awaits.
 */

/** A waker (wsched_waker) for foreign code: wake(value) completes the wait
 * it was armed for. A plain value: copy it freely; a wake after the wait,
 * its batch or its pool is over is a harmless no-op. */
class waker {
public:
    constexpr waker() noexcept = default;
    constexpr explicit waker(wsched_waker h) noexcept : h_(h) {}
    /** wsched_wake: success when this call completed the wait (the job is
     * resumed with value); -EALREADY when the wait was over already (a
     * second wake, its deadline, a cancellation); -EINVAL for a handle never
     * armed; -ESHUTDOWN or -EBADF when the pool is going or gone. */
    std::error_code wake(std::uint64_t value = 0) const noexcept
    {
        return make_error_code(wsched_wake(h_, value));
    }
    wsched_waker native_handle() const noexcept { return h_; }
    operator wsched_waker() const noexcept { return h_; }

private:
    wsched_waker h_{};
};

namespace detail {

/* A timeout from now as an absolute wsched_now_ns time (saturating); a
 * timeout that timeout_ns calls "for ever" as `forever`. */
template <class Rep, class Period>
std::uint64_t ns_from_now(std::chrono::duration<Rep, Period> d, std::uint64_t forever) noexcept
{
    std::int64_t ns = timeout_ns(d);
    if (ns < 0)
        return forever;
    std::uint64_t now = wsched_now_ns(), u = static_cast<std::uint64_t>(ns);
    std::uint64_t t = u > UINT64_MAX - now ? UINT64_MAX : now + u;
    return t ? t : 1u; /* never 0, which means "no deadline" */
}

} // namespace detail

/** The deadline of a waker or fd wait: none (the default), a time point,
 * or a timeout from now (taken when the wait_deadline is made, i.e. at the
 * call that builds the awaitable). */
class wait_deadline {
public:
    constexpr wait_deadline() noexcept = default;
    wait_deadline(clock::time_point tp) noexcept : ns_(detail::deadline_ns(tp)) {}
    template <class Rep, class Period>
    wait_deadline(std::chrono::duration<Rep, Period> timeout) noexcept
        : ns_(detail::ns_from_now(timeout, 0u))
    {
    }
    /** As wsched.h's deadline_ns: absolute, the wsched_now_ns clock; 0 = none. */
    std::uint64_t ns() const noexcept { return ns_; }

private:
    std::uint64_t ns_ = 0;
};

namespace detail {

/* A coroutine job's state between its calls, in its record: plain memory
 * (see "Threads and memory ordering" above). */
struct wait_state {
    context *ctx = nullptr;         /* the job's wait_context; its ctx is rebound each call */
    std::coroutine_handle<> frame;  /* the coroutine, from its creation to its end */
    std::size_t index = 0;          /* the job's index: what the coroutine's parameter refers to */
    unsigned char *buf = nullptr;   /* the frame buffer in the slot */
    std::size_t cap = 0;            /* its size, FrameBytes */
    int kind = WSCHED_RESUME_FIRST; /* why this call runs (wsched_resume_kind) */
    bool armed = false;             /* a co_await of this call armed its wait */
    bool frame_in_slot = false;     /* the frame is in buf */
    wsched_ctx *c() const noexcept { return ctx->native_handle(); }
};

/* What the awaitables of wait_context share; waiting_job's await_transform
 * accepts only types derived from it. */
class wait_op {
public:
    explicit wait_op(wait_state &s) noexcept : s_(&s) {}
    bool await_ready() const noexcept { return false; }

protected:
    /* Before arming: join what was spawned since the last sync. */
    wsched_ctx *prepare() noexcept
    {
        s_->ctx->sync();
        return s_->c();
    }
    /* The arming's result r: true (suspend) when it is 0; otherwise r is
     * kept for await_resume and the coroutine goes on at once. */
    bool armed(int r) noexcept
    {
        err_ = r;
        if (r == 0)
            s_->armed = true;
        return r == 0;
    }
    int kind() const noexcept { return s_->kind; }

    wait_state *s_;
    int err_ = 0;
};

} // namespace detail

/** co_await w.sleep_until(...) / w.sleep_for(...): wsched_sleep_until. */
class sleep_awaitable : public detail::wait_op {
public:
    sleep_awaitable(detail::wait_state &s, std::uint64_t when_ns) noexcept
        : wait_op(s), when_(when_ns)
    {
    }
    bool await_suspend(std::coroutine_handle<>) noexcept
    {
        return armed(wsched_sleep_until(prepare(), when_));
    }
    /** Success once the time came (never before it); else the arming's
     * error, without waiting. */
    std::error_code await_resume() const noexcept
    {
        assert(err_ != 0 || kind() == WSCHED_RESUME_TIMER);
        return make_error_code(err_);
    }

private:
    std::uint64_t when_;
};

/** co_await w.wait_waker(f, deadline): wsched_waker_arm, then f(waker). */
template <class F> class waker_awaitable : public detail::wait_op {
public:
    waker_awaitable(detail::wait_state &s, F f, std::uint64_t deadline_ns)
        : wait_op(s), f_(std::move(f)), deadline_(deadline_ns)
    {
    }
    bool await_suspend(std::coroutine_handle<>) noexcept
    {
        wsched_waker h{};
        if (!armed(wsched_waker_arm(prepare(), deadline_, &h)))
            return false;
        try {
            std::invoke(f_, waker(h));
        } catch (...) {
            /* Rethrown by await_resume. The wait stays armed for this call:
             * it is dropped when the job returns anything but
             * WSCHED_PENDING, and a co_await before that gets -EBUSY. */
            exc_ = std::current_exception();
            return false;
        }
        return true;
    }
    /** The value given to wake(); -ETIMEDOUT (== std::errc::timed_out) when
     * the deadline came first; else the arming's error, without waiting.
     * Rethrows what f threw. */
    result<std::uint64_t> await_resume()
    {
        if (exc_)
            std::rethrow_exception(exc_);
        if (err_)
            return make_error_code(err_);
        if (kind() == WSCHED_RESUME_TIMEDOUT)
            return make_error_code(-ETIMEDOUT);
        assert(kind() == WSCHED_RESUME_WOKEN);
        return wsched_resume_value(s_->c());
    }

private:
    F f_;
    std::uint64_t deadline_;
    std::exception_ptr exc_;
};

/** co_await w.wait_fd(fd, events, deadline): wsched_wait_fd. */
class fd_awaitable : public detail::wait_op {
public:
    fd_awaitable(detail::wait_state &s, int fd, unsigned events, std::uint64_t deadline_ns) noexcept
        : wait_op(s), fd_(fd), events_(events), deadline_(deadline_ns)
    {
    }
    bool await_suspend(std::coroutine_handle<>) noexcept
    {
        return armed(wsched_wait_fd(prepare(), fd_, events_, deadline_));
    }
    /** The ready WSCHED_FD_* bits (WSCHED_FD_ERROR included when it
     * happened); -ETIMEDOUT when the deadline came first; else the
     * arming's error (-EEXIST, -EBADF, ...), without waiting. */
    result<unsigned> await_resume() const
    {
        if (err_)
            return make_error_code(err_);
        if (kind() == WSCHED_RESUME_TIMEDOUT)
            return make_error_code(-ETIMEDOUT);
        assert(kind() == WSCHED_RESUME_FD);
        return static_cast<unsigned>(wsched_resume_value(s_->c()));
    }

private:
    int fd_;
    unsigned events_;
    std::uint64_t deadline_;
};

/** co_await w.wait_batch(child): wsched_wait_batch. */
class batch_awaitable : public detail::wait_op {
public:
    batch_awaitable(detail::wait_state &s, wsched_batch *child) noexcept : wait_op(s), child_(child) {}
    bool await_suspend(std::coroutine_handle<>) noexcept
    {
        return armed(wsched_wait_batch(prepare(), child_));
    }
    /** Success once every job of the child has returned (its slots are
     * final); else the arming's error (-EINVAL for an empty batch, -EBUSY
     * when the child has a waiter already), without waiting. */
    std::error_code await_resume() const noexcept
    {
        assert(err_ != 0 || kind() == WSCHED_RESUME_BATCH);
        return make_error_code(err_);
    }

private:
    wsched_batch *child_;
};

/**
 * A coroutine job's context: a context (cancelled, blocking, worker,
 * spawn/sync, nested submit) for the whole job, across its calls (its
 * native_handle() is the running call's wsched_ctx), and the waits as
 * awaitables. Made by the batch in the job's slot; given by reference to
 * the coroutine, valid until the job ends.
 */
class wait_context : public context {
public:
    wait_context(const wait_context &) = delete;
    wait_context &operator=(const wait_context &) = delete;

    /** Why this call of the job runs (enum wsched_resume): FIRST until its
     * first suspension, then the kind of the wait that ended. */
    int resume_kind() const noexcept { return s_.kind; }
    /** The job's index. */
    std::size_t index() const noexcept { return s_.index; }
    /** The coroutine frame is in the job's slot (it fit in FrameBytes), not
     * on the heap. */
    bool frame_in_slot() const noexcept { return s_.frame_in_slot; }

    /** Resume at or after when_ns (the wsched_now_ns clock). */
    sleep_awaitable sleep_until(std::uint64_t when_ns) noexcept { return sleep_awaitable(s_, when_ns); }
    /** Resume at or after tp. */
    sleep_awaitable sleep_until(clock::time_point tp) noexcept
    {
        return sleep_awaitable(s_, detail::deadline_ns(tp));
    }
    /** Resume after d from now (rounded up to whole ns); d <= 0 waits for
     * the next timer tick: a yield. */
    template <class Rep, class Period>
    sleep_awaitable sleep_for(std::chrono::duration<Rep, Period> d) noexcept
    {
        return sleep_awaitable(s_, detail::ns_from_now(d, UINT64_MAX));
    }
    /**
     * Arm a waker and hand it to on_armed(wsched::waker) (callable with a
     * wsched::waker or a wsched_waker), which gives it to foreign code; the
     * job resumes when that code calls wake(value) (from any thread, at
     * once included), or at the deadline. on_armed runs after the wait is
     * armed, before the coroutine suspends, in this call's thread.
     */
    template <class F>
    waker_awaitable<std::decay_t<F>> wait_waker(F &&on_armed, wait_deadline deadline = {})
    {
        return waker_awaitable<std::decay_t<F>>(s_, std::forward<F>(on_armed), deadline.ns());
    }
    /** Resume when fd (non-blocking) is ready for events (WSCHED_FD_READ
     * and/or WSCHED_FD_WRITE), or at the deadline. */
    fd_awaitable wait_fd(int fd, unsigned events, wait_deadline deadline = {}) noexcept
    {
        return fd_awaitable(s_, fd, events, deadline.ns());
    }
    /** Resume when every job of child (a batch this job submitted, in the
     * same pool) has returned. A cancelled job is resumed (destroyed) only
     * once the child is done: cancel the child too to stop it early. */
    template <class U> batch_awaitable wait_batch(const batch<U> &child) noexcept
    {
        return batch_awaitable(s_, child.native_handle());
    }
    batch_awaitable wait_batch(wsched_batch *child) noexcept { return batch_awaitable(s_, child); }

private:
    friend struct detail::waiting_submit;
    explicit wait_context(wsched_pool *p) noexcept : context(nullptr, p) { s_.ctx = this; }
    detail::wait_state s_;
};

namespace detail {

/* The tag in front of each coroutine frame (1: in the slot, 0: on the
 * heap), as large as the default new alignment so that the frame keeps
 * that alignment. */
inline constexpr std::size_t frame_tag = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

/* The job whose coroutine this thread is creating: set by
 * waiting_submit::run around the job's first call of f only, taken by
 * the first frame allocated meanwhile. A thread_local rather than a
 * placement operator new(size, Args &...) that finds the wait_context
 * among the coroutine's parameters: GCC pairs such a template with the
 * usual operator delete under -Wmismatched-new-delete (at -O0), in the
 * user's code. */
inline thread_local wait_state *frame_target = nullptr;

/* A frame of n bytes: in the slot buffer of the job being created when it
 * fits, else on the heap. */
inline void *frame_alloc(std::size_t n)
{
    wait_state *s = std::exchange(frame_target, nullptr);
    bool in_slot = s && !s->frame_in_slot && s->cap >= frame_tag && n <= s->cap - frame_tag;
    unsigned char *p;
    if (in_slot) {
        p = s->buf;
        s->frame_in_slot = true;
    } else {
        if (n > SIZE_MAX - frame_tag)
            throw std::bad_alloc();
        p = static_cast<unsigned char *>(::operator new(n + frame_tag));
    }
    p[0] = in_slot ? 1 : 0;
    return p + frame_tag;
}

inline void frame_free(void *frame) noexcept
{
    unsigned char *p = static_cast<unsigned char *>(frame) - frame_tag;
    if (!p[0])
        ::operator delete(p);
    /* else in the slot: the job's record goes when the job ends */
}

} // namespace detail

/**
 * The return type of a coroutine job (see "Coroutine jobs" above and
 * pool::submit_waiting): co_await the awaitables of its wait_context, and
 * co_return its status, an int (0 = success, else an error code, as a C
 * job returns) or a std::error_code (through to_status).
 */
class waiting_job {
public:
    struct promise_type;
    waiting_job(waiting_job &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    waiting_job &operator=(waiting_job &&) = delete;
    /** Destroys a coroutine that was never handed to a batch. */
    ~waiting_job()
    {
        if (h_)
            h_.destroy();
    }

private:
    friend struct detail::waiting_submit;
    explicit waiting_job(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

struct waiting_job::promise_type {
    waiting_job get_return_object() noexcept
    {
        return waiting_job(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    /* Created suspended: the batch stores the handle, then resumes it. */
    std::suspend_always initial_suspend() const noexcept { return {}; }
    /* Kept at its end: the batch reads the status, then destroys it. */
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_value(int status) noexcept { status_ = status; }
    void return_value(std::error_code ec) noexcept { status_ = to_status(ec); }
    void unhandled_exception() noexcept { exc_ = std::current_exception(); }

    template <class A> A &&await_transform(A &&a) noexcept
    {
        static_assert(std::is_base_of_v<detail::wait_op, std::remove_cv_t<std::remove_reference_t<A>>>,
                      "a wsched::waiting_job co_awaits only the waits of its wsched::wait_context "
                      "(sleep_until, sleep_for, wait_waker, wait_fd, wait_batch)");
        return std::forward<A>(a);
    }

    /* The frame goes in the job's slot buffer when it fits, else on the
     * heap (detail::frame_alloc). */
    static void *operator new(std::size_t n) { return detail::frame_alloc(n); }
    static void operator delete(void *p) noexcept { detail::frame_free(p); }

    int status_ = 0;
    std::exception_ptr exc_;
};

namespace detail {

struct waiting_submit {
    /* A job's record, in its slot after its value. */
    template <std::size_t B> struct record {
        explicit record(wsched_pool *p, std::size_t i) noexcept : w(p)
        {
            w.s_.buf = frame;
            w.s_.cap = B;
            w.s_.index = i;
        }
        wait_context w;
        alignas(frame_tag) unsigned char frame[B > 0 ? B : 1];
    };

    /* A slot: [T][live byte when T is tracked][padding][record<B>]. */
    template <class T, std::size_t B> struct layout {
        static constexpr std::size_t value_size() noexcept
        {
            if constexpr (std::is_void_v<T>)
                return 0;
            else
                return slot_layout<T>::size;
        }
        static constexpr std::size_t value_align() noexcept
        {
            if constexpr (std::is_void_v<T>)
                return 1;
            else
                return alignof(T);
        }
        static constexpr std::size_t record_at = round_up(value_size(), alignof(record<B>));
        static constexpr std::size_t align =
            value_align() > alignof(record<B>) ? value_align() : alignof(record<B>);
        static constexpr std::size_t size = round_up(record_at + sizeof(record<B>), align);
    };

    template <class T, class F> static constexpr bool callable() noexcept
    {
        if constexpr (std::is_void_v<T>)
            return std::is_invocable_r_v<waiting_job, const F &, wait_context &, std::size_t &>;
        else
            return std::is_invocable_r_v<waiting_job, const F &, wait_context &, std::size_t &, T &>;
    }

    template <class T, class F> static waiting_job start(const F &f, wait_context &w, void *slot)
    {
        if constexpr (std::is_void_v<T>)
            return std::invoke(f, w, w.s_.index);
        else
            return std::invoke(f, w, w.s_.index, *std::launder(static_cast<T *>(slot)));
    }

    /* The batch's C job function: one call of job i (see "How it maps onto
     * the C API" above). */
    template <class T, std::size_t B, class F>
    static int run(wsched_ctx *c, void *arg, std::size_t i, void *slot) noexcept
    {
        using L = layout<T, B>;
        auto *st = static_cast<job_state<F> *>(arg);
        unsigned char *at = static_cast<unsigned char *>(slot) + L::record_at;
        int kind = wsched_resume_kind(c);
        record<B> *r = nullptr;
        if (kind == WSCHED_RESUME_FIRST) {
            try {
                if constexpr (!std::is_void_v<T>) {
                    ::new (slot) T();
                    slot_layout<T>::set_live(slot);
                }
                r = ::new (at) record<B>(st->pool, i);
                r->w.c_ = c;
                struct untarget {
                    ~untarget() { frame_target = nullptr; }
                } guard; /* also when f throws */
                frame_target = &r->w.s_;
                waiting_job job = start<T>(st->fn, r->w, slot);
                r->w.s_.frame = std::exchange(job.h_, nullptr);
            } catch (...) {
                if (r)
                    r->~record();
                st->record(std::current_exception(), i);
                return WSCHED_EEXCEPTION;
            }
        } else {
            r = std::launder(reinterpret_cast<record<B> *>(at));
        }
        wait_state &s = r->w.s_;
        r->w.c_ = c;
        s.kind = kind;
        auto h = std::coroutine_handle<waiting_job::promise_type>::from_address(s.frame.address());
        int status = 0;
        if (kind != WSCHED_RESUME_CANCELLED) {
            s.armed = false;
            h.resume(); /* never throws: the promise catches */
            if (!h.done()) {
                assert(s.armed && "wsched: a waiting_job suspended without an armed wait");
                return WSCHED_PENDING;
            }
            status = h.promise().status_;
            if (status == WSCHED_PENDING)
                status = WSCHED_EJOBCODE; /* the job is over: never to be called again */
            if (h.promise().exc_) {
                st->record(std::move(h.promise().exc_), i);
                status = WSCHED_EEXCEPTION;
            }
        }
        h.destroy(); /* the locals' destructors, on a cancel: the cleanup */
        r->~record();
        return status;
    }

    template <class T, std::size_t B, class F>
    static batch<T> submit(wsched_pool *pool, std::size_t n, F &&f, const options &opt,
                           std::error_code &ec)
    {
        using Fn = std::decay_t<F>;
        static_assert(std::is_void_v<T> || (std::is_object_v<T> && !std::is_const_v<T> &&
                                            std::is_default_constructible_v<T>),
                      "a coroutine job's Slot is void or a default-constructible object type");
        static_assert(callable<T, Fn>(),
                      "a coroutine job is callable as f(wsched::wait_context &, std::size_t, Slot &) "
                      "(f(wsched::wait_context &, std::size_t) for Slot = void) through a const "
                      "reference, and returns wsched::waiting_job");
        using L = layout<T, B>;
        batch<T> b;
        std::unique_ptr<job_state<Fn>> st;
        try {
            st.reset(new job_state<Fn>(pool, std::forward<F>(f)));
        } catch (const std::bad_alloc &) {
            ec = make_error_code(-ENOMEM);
            return b;
        }
        wsched_batch_desc d{};
        d.fn = &run<T, B, Fn>;
        d.arg = st.get();
        d.njobs = n;
        d.slot_size = L::size;
        std::size_t stride = opt.pad_slots ? round_up(L::size, 64) : L::size;
        d.slot_stride = stride;
        d.flags = WSCHED_BATCH_WAITS;
        wsched_batch *h = nullptr;
        int r = submit_desc(pool, d, opt, &h);
        ec = make_error_code(r);
        if (r != 0)
            return b;
        void (*destroy_values)(unsigned char *, std::size_t, std::size_t) noexcept = nullptr;
        if constexpr (!std::is_void_v<T>)
            destroy_values = slot_layout<T>::destroyer;
        b.adopt(h, st.release(), n, stride, destroy_values);
        return b;
    }
};

} // namespace detail

template <class Slot, std::size_t FrameBytes, class F>
batch<Slot> pool::submit_waiting(std::size_t n, F &&f, const options &opt, std::error_code &ec)
{
    return detail::waiting_submit::submit<Slot, FrameBytes>(p_, n, std::forward<F>(f), opt, ec);
}

template <class Slot, std::size_t FrameBytes, class F>
batch<Slot> pool::submit_waiting(std::size_t n, F &&f, const options &opt)
{
    std::error_code ec;
    batch<Slot> b = detail::waiting_submit::submit<Slot, FrameBytes>(p_, n, std::forward<F>(f), opt, ec);
    if (ec)
        throw error(ec, "wsched_submit");
    return b;
}

template <class Slot, std::size_t FrameBytes, class F>
batch<Slot> context::submit_waiting(std::size_t n, F &&f, const options &opt, std::error_code &ec)
{
    return detail::waiting_submit::submit<Slot, FrameBytes>(pool_, n, std::forward<F>(f), opt, ec);
}

template <class Slot, std::size_t FrameBytes, class F>
batch<Slot> context::submit_waiting(std::size_t n, F &&f, const options &opt)
{
    std::error_code ec;
    batch<Slot> b = detail::waiting_submit::submit<Slot, FrameBytes>(pool_, n, std::forward<F>(f), opt, ec);
    if (ec)
        throw error(ec, "wsched_submit");
    return b;
}

#endif /* WSCHED_HPP_COROUTINES */

} // namespace wsched

#endif /* WSCHED_HPP */
