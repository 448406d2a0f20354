// shmkit/sync/futex.hpp: futex wait/wake on 32-bit words in shared memory.
//
// The words live in MAP_SHARED memory seen by several processes, so the
// process-shared (non-private) futex operations are used. Deadlines are
// absolute CLOCK_MONOTONIC time points: a wait loop that is interrupted or
// woken spuriously recomputes nothing and never waits longer than asked.
#ifndef SHMKIT_SYNC_FUTEX_HPP
#define SHMKIT_SYNC_FUTEX_HPP

#include <shmkit/config.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace shmkit {

/// The clock of every shmkit deadline: immune to wall-clock changes.
using deadline_clock = std::chrono::steady_clock;

namespace sync {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "futex words must be plain 32-bit words");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "futex words must be lock-free");

/// Outcome of a futex wait.
enum class wait_result { woken, value_changed, timed_out, interrupted };

namespace detail {

inline long futex_call(const std::atomic<std::uint32_t>& word, int op, std::uint32_t val,
                       const struct timespec* ts, std::uint32_t val3) noexcept
{
    return ::syscall(SYS_futex, const_cast<std::atomic<std::uint32_t>*>(&word), op, val, ts,
                     nullptr, val3);
}

/// steady_clock and CLOCK_MONOTONIC are the same clock on Linux/libstdc++.
inline struct timespec to_timespec(deadline_clock::time_point tp) noexcept
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch());
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(ns.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(ns.count() % 1000000000);
    if (ts.tv_sec < 0) ts = {0, 0};
    return ts;
}

} // namespace detail

/// Sleeps while `word == expected`, until woken or until `deadline`
/// (CLOCK_MONOTONIC, absolute). Process-safe; no lock held. Returns at once
/// with value_changed when the word differs. A spurious wakeup is reported
/// as woken: callers always re-check their condition.
inline wait_result futex_wait_until(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                                    deadline_clock::time_point deadline) noexcept
{
    const struct timespec ts = detail::to_timespec(deadline);
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so an
    // EINTR retry by the caller never extends the total wait.
    const long r = detail::futex_call(word, FUTEX_WAIT_BITSET, expected, &ts, FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return wait_result::woken;
    switch (errno) {
    case EAGAIN: return wait_result::value_changed;
    case ETIMEDOUT: return wait_result::timed_out;
    case EINTR: return wait_result::interrupted;
    default: return wait_result::woken; // EFAULT/EINVAL cannot happen for a mapped word
    }
}

/// Sleeps while `word == expected`, without deadline.
inline wait_result futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept
{
    const long r = detail::futex_call(word, FUTEX_WAIT, expected, nullptr, 0);
    if (r == 0) return wait_result::woken;
    return errno == EAGAIN ? wait_result::value_changed
         : errno == EINTR  ? wait_result::interrupted
                           : wait_result::woken;
}

/// Wakes up to `count` waiters sleeping on `word`; returns how many woke.
inline int futex_wake(const std::atomic<std::uint32_t>& word, int count = INT_MAX) noexcept
{
    const long r = detail::futex_call(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
    return r < 0 ? 0 : static_cast<int>(r);
}

/// now + `timeout` on the deadline clock; a negative timeout is now, and
/// one too long to represent (e.g. hours::max()) is time_point::max().
template <class Rep, class Period>
deadline_clock::time_point deadline_after(const std::chrono::duration<Rep, Period>& timeout) noexcept
{
    const auto now = deadline_clock::now();
    if (timeout <= timeout.zero()) return now;
    const std::chrono::duration<double> left = deadline_clock::time_point::max() - now;
    if (std::chrono::duration<double>(timeout) >= left) return deadline_clock::time_point::max();
    return now + std::chrono::ceil<deadline_clock::duration>(timeout);
}

/// A CPU hint for spin loops (PAUSE on x86, YIELD on ARM).
inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// How long a lock waiter sleeps at most before it re-checks whether the
/// holder is still alive. Bounds recovery latency after a holder's death
/// (well under the 50 ms promised) and bounds the cost of a lost wakeup.
inline constexpr std::chrono::milliseconds liveness_poll_interval{10};

/// How many times a waiter spins (with cpu_relax) before it sleeps.
inline constexpr int spin_iterations = 128;

} // namespace sync
} // namespace shmkit

#endif
