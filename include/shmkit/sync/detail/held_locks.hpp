// shmkit/sync/detail/held_locks.hpp: which shmkit locks the calling thread
// holds.
//
// Lock handles may be shared by the threads of a process, so what a thread
// holds is recorded per thread, not per handle: that lets a thread's second
// lock() through the same lock throw instead of deadlocking, lets bulk
// operations run inside a lock their own thread holds, and keeps one
// thread's lock from being taken for another's. A lock is identified by its
// key: the serial number of the attachment (one per segment object, never
// reused in a process) and the lock's index.
#ifndef SHMKIT_SYNC_DETAIL_HELD_LOCKS_HPP
#define SHMKIT_SYNC_DETAIL_HELD_LOCKS_HPP

#include <shmkit/config.hpp>

#include <cstdint>
#include <type_traits>
#include <system_error>

namespace shmkit {
namespace sync {
namespace detail {

enum class hold_mode : std::uint8_t { shared, exclusive };

struct held_lock {
    std::uint64_t key = 0;
    hold_mode mode = hold_mode::shared;
    bool recovered = false; ///< the acquisition took over from a dead holder
    /// Held by the parent when this process was forked from it: the lock
    /// words name the parent, so this thread does not hold it. Releasing it
    /// only forgets it (a scope guard created before fork() can end in the
    /// child without touching the parent's lock).
    bool inherited = false;
};

/// The locks this thread holds: a short array (most threads hold 0 or 1).
struct held_set {
    static constexpr int capacity = 16;
    held_lock locks[capacity] = {};
    int count = 0;
};

// Constant-initialised (checked below), so every access is a plain
// thread-pointer-relative load: no TLS wrapper call, no guard.
inline thread_local held_set held_by_this_thread;
static_assert(std::is_trivially_destructible_v<held_set>);
inline constexpr held_set constant_initialisable_check{};

inline void forget_held(held_lock* l) noexcept
{
    held_set& s = held_by_this_thread;
    held_lock* last = &s.locks[--s.count];
    // Usually l is the last record: no copy. (Copying it onto itself costs a
    // store-forwarding stall on the next lock: the compiler copies the
    // 11 bytes with two overlapping stores.)
    if (l != last) *l = *last;
}

/// The record of `key`, inherited or not.
inline held_lock* find_record(std::uint64_t key) noexcept
{
    // A record this thread really holds first; an inherited one (fork)
    // only if there is none.
    held_set& s = held_by_this_thread;
    held_lock* inherited = nullptr;
    for (int i = 0; i < s.count; ++i)
        if (s.locks[i].key == key) {
            if (!s.locks[i].inherited) return &s.locks[i];
            inherited = &s.locks[i];
        }
    return inherited;
}

/// The record of `key` if this thread really holds it.
inline held_lock* find_held(std::uint64_t key) noexcept
{
    held_lock* l = find_record(key);
    return l && !l->inherited ? l : nullptr;
}

/// Called in a forked child: everything the forking thread held is the parent's.
inline void mark_all_inherited() noexcept
{
    held_set& s = held_by_this_thread;
    for (int i = 0; i < s.count; ++i) s.locks[i].inherited = true;
}

/// Records a lock just acquired. Throws std::system_error if this thread
/// already holds `capacity` shmkit locks (the caller then releases it).
inline bool try_note_held(std::uint64_t key, hold_mode mode, bool recovered) noexcept
{
    held_set& s = held_by_this_thread;
    if (SHMKIT_UNLIKELY(s.count == held_set::capacity)) return false;
    s.locks[s.count++] = {key, mode, recovered, false};
    return true;
}

/// Before an acquisition: false if this thread holds `key`. An inherited
/// record (a guard made in the parent before fork()) stays: the guard will
/// release it later, after our own record is gone.
inline bool may_acquire(std::uint64_t key) noexcept { return find_held(key) == nullptr; }

[[noreturn]] inline void throw_too_many_held()
{
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                            "shmkit: a thread may hold at most 16 shmkit locks at once");
}

} // namespace detail
} // namespace sync
} // namespace shmkit

#endif
