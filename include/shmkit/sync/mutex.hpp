// shmkit/sync/mutex.hpp: a mutex in shared memory that reports, rather than
// hides or poisons, the death of its owner.
#ifndef SHMKIT_SYNC_MUTEX_HPP
#define SHMKIT_SYNC_MUTEX_HPP

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/sync/detail/held_locks.hpp>
#include <shmkit/sync/detail/token_word.hpp>
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
/// acquire_status::owner_died and owner_died() is true until the next
/// acquisition. Unlike a POSIX robust mutex there is no "consistent" step to
/// forget: the mutex is usable again at once, and the caller decides what
/// to do with the data the dead owner may have left half-updated.
/// (Boost.Interprocess's interprocess_mutex stays locked forever instead.)
///
/// Thread safety: a handle may be shared by threads; holding is recorded
/// per thread (detail/held_locks.hpp). Locking again a mutex the calling
/// thread holds throws std::system_error (resource_deadlock_would_occur).
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

    /// Blocks until acquired; reports whether the previous owner had died.
    acquire_status acquire() { return acquire_until(nullptr); }
    template <class Rep, class Period>
    acquire_status acquire_for(const std::chrono::duration<Rep, Period>& d)
    {
        const auto dl = deadline_clock::now() + std::chrono::duration_cast<deadline_clock::duration>(d);
        return acquire_until(&dl);
    }

    void lock() { acquire(); }
    /// Acquires if free now; no waiting and no recovery.
    bool try_lock();
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d)
    {
        return acquire_for(d) != acquire_status::timed_out;
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        return try_lock_for(tp - Clock::now());
    }
    /// Throws std::system_error (operation_not_permitted) if not held here.
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
