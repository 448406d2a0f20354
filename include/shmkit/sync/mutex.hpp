// shmkit/sync/mutex.hpp: a mutex in shared memory that reports, rather than
// hides or poisons, the death of its owner.
#ifndef SHMKIT_SYNC_MUTEX_HPP
#define SHMKIT_SYNC_MUTEX_HPP

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/sync/detail/held_locks.hpp>
#include <shmkit/sync/detail/token_word.hpp>
#include <shmkit/sync/futex.hpp>
#include <shmkit/sync/lock_state.hpp>

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace shmkit {
namespace sync {

/// How an acquisition went.
enum class acquire_status {
    acquired,   ///< the lock was free (or released normally)
    owner_died, ///< the previous owner died holding it; we own it now
    timed_out   ///< not acquired before the deadline
};

/// A handle on a mutex that lives in a segment (shmkit::segment::mutex()).
/// Models Lockable and TimedLockable.
///
/// When the owner dies holding it, the next process that needs it takes it
/// over within one liveness_poll_interval and is told: acquire() returns
/// acquire_status::owner_died and owner_died() is true while that thread
/// holds the mutex. Only that acquirer is told (later acquirers are not).
/// Unlike a POSIX robust mutex there is no "consistent" step to
/// forget: the mutex is usable again at once, and the caller decides what
/// to do with the data the dead owner may have left half-updated.
/// (Boost.Interprocess's interprocess_mutex stays locked forever instead.)
///
/// Thread/process safety: a handle may be shared by threads; holding is
/// recorded per thread (detail/held_locks.hpp). Locking again a mutex the
/// calling thread holds throws std::system_error
/// (resource_deadlock_would_occur); so does any acquisition when the thread
/// already holds 16 shmkit locks (resource_unavailable_try_again), and in a
/// forked child the first acquisition may throw shmkit::error
/// (errc::attach_table_full) while claiming a fresh attach entry. The mutex
/// is not held after a throw. Timeouts are return values.
///
/// Cost: uncontended lock()+unlock() is one CAS and one store, O(1), no
/// syscall. Waiting spins briefly, then sleeps on a futex; once per
/// liveness_poll_interval of waiting on the same owner it probes the
/// owner's liveness (fcntl(F_OFD_GETLK) or a /proc read). unlock() makes a
/// futex_wake syscall only when someone sleeps.
///
/// Crash: killed while holding it, or after the acquiring CAS, the owner
/// word names a dead token and the next waiter takes it over (owner_died);
/// killed while asleep waiting, only the waiter count stays one too high
/// (an unneeded futex_wake per unlock).
class mutex {
public:
    mutex() noexcept = default;
    /// `index` distinguishes the mutexes of one segment (segment::mutex(i)).
    mutex(mutex_state& state, shmkit::detail::attachment& att, std::uint32_t index) noexcept
        : s_(&state), att_(&att), index_(index)
    {
    }
    mutex(mutex&&) noexcept = default;
    mutex& operator=(mutex&&) noexcept = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;
    /// Releases nothing: holding belongs to threads (use std::unique_lock).
    ~mutex() = default;

    /// Blocks until acquired (no deadline); returns acquired or owner_died.
    acquire_status acquire() { return acquire_until(nullptr); }
    /// As acquire(), but gives up after `d`: timed_out. A dead owner is
    /// noticed after one liveness_poll_interval of waiting, or at the
    /// deadline if that comes first (one liveness probe before giving up).
    template <class Rep, class Period>
    acquire_status acquire_for(const std::chrono::duration<Rep, Period>& d)
    {
        const auto dl = deadline_after(d); // saturates: hours::max() waits for ever, never wraps
        return acquire_until(&dl);
    }

    /// acquire(), discarding the status (use owner_died() to ask).
    void lock() { acquire(); }
    /// Acquires if free now; no waiting and no recovery (false while a dead
    /// owner holds it). O(1), no syscall.
    bool try_lock();
    /// acquire_for() / its deadline form: true if acquired (owner_died
    /// included, see owner_died()).
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d)
    {
        return acquire_for(d) != acquire_status::timed_out;
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        if constexpr (std::is_same_v<Clock, deadline_clock>) {
            const deadline_clock::time_point dl = std::chrono::time_point_cast<deadline_clock::duration>(tp);
            return acquire_until(&dl) != acquire_status::timed_out;
        } else {
            return try_lock_for(tp - Clock::now());
        }
    }
    /// Releases the mutex. O(1). Throws std::system_error
    /// (operation_not_permitted) if the calling thread does not hold it.
    void unlock()
    {
        detail::held_lock* h = detail::find_record(key());
        if (SHMKIT_UNLIKELY(!h)) throw_not_held();
        const bool inherited = h->inherited;
        detail::forget_held(h);
        if (SHMKIT_UNLIKELY(inherited)) return; // the parent's, in a forked child
        detail::release_token_word(s_->owner, s_->waiters);
    }

    /// True while the calling thread holds the mutex, if it took it over
    /// from a dead owner.
    bool owner_died() const noexcept
    {
        const detail::held_lock* h = detail::find_held(key());
        return h && h->recovered;
    }
    /// Whether the calling thread holds the mutex.
    bool owns_lock() const noexcept { return detail::find_held(key()) != nullptr; }
    /// Dead owners taken over, by any process (a relaxed load). O(1).
    std::uint64_t recoveries() const noexcept { return s_->recoveries.load(std::memory_order_relaxed); }
    /// The shared state, for stats and tools.
    const mutex_state* state() const noexcept { return s_; }

private:
    /// Identifies this mutex for this segment object (rwlocks use lock ids
    /// 0-7, mutexes 8 and up; see held_locks.hpp).
    std::uint64_t key() const noexcept { return att_->lock_key(8 + index_); }
    acquire_status acquire_until(const deadline_clock::time_point* deadline);
    acquire_status note_held(acquire_status st);
    [[noreturn]] static void throw_already_held();
    [[noreturn]] static void throw_not_held();

    mutex_state* s_ = nullptr;
    shmkit::detail::attachment* att_ = nullptr;
    std::uint32_t index_ = 0;
};

} // namespace sync
} // namespace shmkit

#endif
