// shmkit/sync/mutex.hpp: a mutex in shared memory that reports, rather than
// hides or poisons, the death of its owner.
#ifndef SHMKIT_SYNC_MUTEX_HPP
#define SHMKIT_SYNC_MUTEX_HPP

#include <shmkit/detail/attach_table.hpp>
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
/// Thread safety: one thread per handle at a time; locking again through
/// the handle that holds it throws std::system_error
/// (resource_deadlock_would_occur).
class mutex {
public:
    mutex() noexcept = default;
    mutex(mutex_state& state, shmkit::detail::attachment& att) noexcept : s_(&state), att_(&att) {}
    mutex(mutex&& o) noexcept : s_(o.s_), att_(o.att_), held_(std::exchange(o.held_, false)), died_(o.died_) {}
    mutex& operator=(mutex&& o) noexcept;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;
    /// Releases the mutex if this handle still holds it.
    ~mutex();

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
        if (SHMKIT_UNLIKELY(!held_)) throw_not_held();
        held_ = false;
        detail::release_token_word(s_->owner, s_->waiters);
    }

    /// True if the current (or last) acquisition took over from a dead owner.
    bool owner_died() const noexcept { return died_; }
    bool owns_lock() const noexcept { return held_; }
    std::uint64_t recoveries() const noexcept { return s_->recoveries.load(std::memory_order_relaxed); }
    /// The shared state, for stats and tools.
    const mutex_state* state() const noexcept { return s_; }

private:
    acquire_status acquire_until(const deadline_clock::time_point* deadline);
    [[noreturn]] static void throw_already_held();
    [[noreturn]] static void throw_not_held();

    mutex_state* s_ = nullptr;
    shmkit::detail::attachment* att_ = nullptr;
    bool held_ = false;
    bool died_ = false;
};

} // namespace sync
} // namespace shmkit

#endif
