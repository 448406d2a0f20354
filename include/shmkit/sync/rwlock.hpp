// shmkit/sync/rwlock.hpp: a reader/writer lock in shared memory that
// survives the death of its writer and of its readers.
#ifndef SHMKIT_SYNC_RWLOCK_HPP
#define SHMKIT_SYNC_RWLOCK_HPP

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/sync/detail/held_locks.hpp>
#include <shmkit/sync/detail/token_word.hpp>
#include <shmkit/sync/futex.hpp>
#include <shmkit/sync/lock_state.hpp>

#include <chrono>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

namespace shmkit {
namespace sync {

/// A handle on a reader/writer lock that lives in a segment
/// (obtained from shmkit::segment::rwlock()). Models Lockable, TimedLockable,
/// SharedLockable and SharedTimedLockable, so std::unique_lock,
/// std::shared_lock and std::scoped_lock work with it.
///
/// Writer-preferring: once a writer has announced itself, new readers wait;
/// readers never starve a writer.
///
/// Crash safety: a process may die at any instruction while holding the
/// lock (as writer or reader) or while acquiring or releasing it. A waiter
/// that needs the lock notices within one liveness_poll_interval (10 ms) that
/// the holder is gone and takes over; recovered() then reports it, and
/// recoveries() counts it. A dead writer is recovered by any blocking or
/// timed acquirer (reader or writer); dead readers only hold up writers,
/// and the writer draining them reclaims their process's attach entry
/// (which releases all its read locks). try_lock() and try_lock_shared()
/// never wait and never recover. The protected data may be half-updated by
/// the dead writer: from the takeover until the next writer unlocks, every
/// acquirer is told recovered(), the cue to check or repair it.
///
/// Cost: uncontended lock()+unlock() is one CAS, one load per attached
/// process slot (usually one or two cache lines) and one store; no syscall.
/// lock_shared()+unlock_shared() is two RMWs on a cache line private to the
/// calling process and two loads of a line shared read-only. lock() is
/// O(high-water mark of the attach table) (the reader scan); the shared
/// side is O(1). Syscalls only when waiting: futex wait/wake, and a
/// liveness probe (fcntl(F_OFD_GETLK) or a /proc read) once per
/// liveness_poll_interval of waiting on the same holder. unlock() makes a
/// futex_wake syscall only when someone sleeps.
///
/// Exceptions: std::system_error (see below) for misuse by the calling
/// thread, or (resource_unavailable_try_again) when it already holds 16
/// shmkit locks; the lock is then not held. In a forked child the first
/// acquisition claims a fresh attach entry and may throw shmkit::error
/// (errc::attach_table_full). Timeouts are return values, not exceptions.
///
/// Thread safety: a handle may be shared by the threads of a process. What
/// a thread holds is recorded per thread (detail/held_locks.hpp): a thread
/// that locks again a lock it holds (through any handle of the same segment
/// object) gets std::system_error (resource_deadlock_would_occur) instead of
/// a deadlock, and unlocking a lock the thread does not hold throws
/// std::system_error (operation_not_permitted). Threads of one process that
/// share a segment object also share its attach entry: to the other
/// processes they are one process.
class rwlock {
public:
    rwlock() noexcept = default;
    rwlock(rwlock_state& state, shmkit::detail::attachment& att, std::uint32_t index) noexcept
        : s_(&state), att_(&att), index_(index)
    {
    }
    rwlock(rwlock&& o) noexcept = default;
    rwlock& operator=(rwlock&& o) noexcept = default;
    rwlock(const rwlock&) = delete;
    rwlock& operator=(const rwlock&) = delete;
    /// Does not release anything: holding belongs to threads, not handles
    /// (use std::unique_lock / std::shared_lock for scoped holding).
    ~rwlock() = default;

    /// Exclusive lock. Blocks, without a deadline; recovers a dead writer
    /// and dead readers. Throws std::system_error
    /// (resource_deadlock_would_occur) if the calling thread already holds
    /// the lock, in either mode, through any handle of the same segment
    /// object. Killed once it owns the writer word (draining readers, or
    /// holding the lock): the word names a dead token and the next acquirer
    /// recovers it. Killed while asleep waiting for the word: only the
    /// waiter count stays one too high (an unneeded futex_wake per unlock).
    void lock()
    {
        prepare_acquire();
        const std::uint32_t me = att_->token();
        std::uint32_t expected = 0;
        if (SHMKIT_LIKELY(s_->writer.compare_exchange_strong(expected, me, std::memory_order_seq_cst,
                                                              std::memory_order_relaxed)) &&
            SHMKIT_LIKELY(no_readers())) {
            note_held(detail::hold_mode::exclusive, dirty());
            return;
        }
        lock_slow(expected == 0, nullptr);
    }

    /// Exclusive lock if free now (no waiting, no recovery; false also while
    /// any reader holds it, live or dead). O(high-water mark), no syscall
    /// unless it must wake a sleeper when backing off. Throws as lock().
    bool try_lock();

    /// As try_lock(), but holders that are dead do not make it fail: a held
    /// writer word, and each reader count found held, is probed once (one
    /// liveness probe, a syscall, each) and taken over or reclaimed if its
    /// process is gone. Never waits for a live holder. For callers that
    /// only ever try (IPC::ShareLite's LOCK_NB), which try_lock() would
    /// fail for as long as nobody blocks on the dead holder. Throws as lock().
    bool try_lock_recovering();

    /// Exclusive lock, waiting at most until the deadline; false on timeout.
    /// Recovers dead holders as lock() does, once it has waited one
    /// liveness_poll_interval on them, or at the deadline if that comes
    /// first (one liveness probe before giving up). Throws as lock().

    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d)
    {
        return try_lock_until(deadline_after(d)); // saturates: never wraps
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        prepare_acquire();
        const auto dl = to_deadline(tp);
        return lock_slow(false, &dl);
    }

    /// Releases the exclusive lock, and clears the mark a recovered dead
    /// writer left (this writer is deemed to have repaired the data). O(1).
    /// Throws std::system_error (operation_not_permitted) if the calling
    /// thread does not hold it exclusively. Killed before the releasing
    /// store: the word names a dead token and is recovered (with recovered()
    /// reported, though the data is whole).
    void unlock()
    {
        detail::held_lock* h = detail::find_record(key());
        if (SHMKIT_UNLIKELY(!h || h->mode != detail::hold_mode::exclusive)) throw_not_held();
        const bool inherited = h->inherited;
        detail::forget_held(h);
        if (SHMKIT_UNLIKELY(inherited)) return; // the parent's, in a forked child
        // The holder of the write lock is the one to repair what a dead
        // writer left: once it unlocks, the data counts as repaired.
        if (SHMKIT_UNLIKELY(s_->dirty.load(std::memory_order_relaxed) != 0))
            s_->dirty.store(0, std::memory_order_relaxed);
        detail::release_token_word(s_->writer, s_->waiters);
    }

    /// Shared lock. Blocks, without a deadline, while a writer holds or
    /// waits; recovers a dead writer. Throws as lock(). Killed while holding
    /// or acquiring it: its count stays in this handle's attach entry until
    /// a waiting writer (or segment::reclaim_dead()) reclaims the entry.
    void lock_shared()
    {
        prepare_acquire();
        att_->token(); // may re-register (and throw) in a forked child
        if (SHMKIT_LIKELY(enter_reader())) {
            note_held(detail::hold_mode::shared, dirty());
            return;
        }
        lock_shared_slow(nullptr);
    }

    /// Shared lock if no writer holds or waits now (a dead one included).
    /// O(1), no waiting, no recovery. Throws as lock().
    bool try_lock_shared();

    /// As try_lock_shared(), but a writer word held by a dead process does
    /// not make it fail: it is probed once (a syscall) and freed. Never
    /// waits for a live writer. Throws as lock().
    bool try_lock_shared_recovering();

    /// Shared lock, waiting at most until the deadline; false on timeout.
    /// Recovers a dead writer as lock_shared() does. Throws as lock().
    template <class Rep, class Period>
    bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d)
    {
        return try_lock_shared_until(deadline_after(d));
    }
    template <class Clock, class Duration>
    bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        prepare_acquire();
        att_->token();
        const auto dl = to_deadline(tp);
        if (enter_reader()) {
            note_held(detail::hold_mode::shared, dirty());
            return true;
        }
        return lock_shared_slow(&dl);
    }

    /// Releases a shared lock. O(1). Throws std::system_error
    /// (operation_not_permitted) if the calling thread does not hold it shared.
    void unlock_shared()
    {
        detail::held_lock* h = detail::find_record(key());
        if (SHMKIT_UNLIKELY(!h || h->mode != detail::hold_mode::shared)) throw_not_held();
        const bool inherited = h->inherited;
        detail::forget_held(h);
        if (SHMKIT_UNLIKELY(inherited)) return; // the parent's count, in a forked child
        leave_reader();
    }

    /// True while the calling thread holds the lock, if its acquisition took
    /// the lock over from a dead writer or released dead readers, or if a
    /// dead writer was taken over earlier (by anyone) and no writer has
    /// unlocked since: the protected data may be half-updated. O(1), no
    /// shared access.
    bool recovered() const noexcept
    {
        const detail::held_lock* h = detail::find_held(key());
        return h && h->recovered;
    }
    /// Whether the calling thread holds the lock exclusively / shared. O(1),
    /// no shared access.
    bool holds_exclusive() const noexcept
    {
        const detail::held_lock* h = detail::find_held(key());
        return h && h->mode == detail::hold_mode::exclusive;
    }
    bool holds_shared() const noexcept
    {
        const detail::held_lock* h = detail::find_held(key());
        return h && h->mode == detail::hold_mode::shared;
    }
    /// Dead writers recovered and dead readers released, by any process
    /// (relaxed loads). O(1).
    std::uint64_t recoveries() const noexcept;
    /// The shared state, for stats and tools.
    const rwlock_state* state() const noexcept { return s_; }

private:

    template <class Clock, class Duration>
    static deadline_clock::time_point to_deadline(const std::chrono::time_point<Clock, Duration>& tp)
    {
        if constexpr (std::is_same_v<Clock, deadline_clock>)
            return std::chrono::time_point_cast<deadline_clock::duration>(tp);
        else
            return deadline_clock::now() +
                   std::chrono::duration_cast<deadline_clock::duration>(tp - Clock::now());
    }

    /// Identifies this lock for this segment object (see held_locks.hpp).
    std::uint64_t key() const noexcept { return att_->lock_key(index_); }

    void prepare_acquire() const
    {
        if (SHMKIT_UNLIKELY(!detail::may_acquire(key()))) throw_already_held();
    }

    /// A dead writer was taken over and no writer has unlocked since.
    bool dirty() const noexcept { return s_->dirty.load(std::memory_order_acquire) != 0; }

    /// Records the acquisition for this thread; if it cannot (16 locks held
    /// already), releases the lock again and throws.
    void note_held(detail::hold_mode mode, bool recovered)
    {
        if (SHMKIT_LIKELY(detail::try_note_held(key(), mode, recovered))) return;
        if (mode == detail::hold_mode::exclusive) detail::release_token_word(s_->writer, s_->waiters);
        else leave_reader();
        detail::throw_too_many_held();
    }

    std::atomic<std::uint32_t>& my_reader_slot() noexcept
    {
        return att_->entry(att_->index()).readers[index_];
    }

    // Dekker pairing with the writer: the reader increments its slot and then
    // loads `writer`; the writer CASes `writer` and then loads every slot.
    // Both seq_cst, so at least one of them sees the other.
    /// The caller has called att_->token() (which re-registers a forked
    /// child and may throw) before this.
    bool enter_reader() noexcept
    {
        auto& slot = my_reader_slot();
        slot.fetch_add(1, std::memory_order_seq_cst);
        if (SHMKIT_LIKELY(s_->writer.load(std::memory_order_seq_cst) == 0)) return true;
        slot.fetch_sub(1, std::memory_order_seq_cst);
        wake_draining_writer();
        return false;
    }

    void leave_reader() noexcept
    {
        my_reader_slot().fetch_sub(1, std::memory_order_seq_cst);
        wake_draining_writer();
    }

    // Seq_cst pairing with the writer's drain_waiters increment (see
    // rwlock.cpp): if we read 0 here, the writer's later re-check of our slot
    // sees our decrement.
    void wake_draining_writer() noexcept
    {
        if (SHMKIT_UNLIKELY(s_->drain_waiters.load(std::memory_order_seq_cst) != 0)) {
            s_->drain_seq.fetch_add(1, std::memory_order_seq_cst);
            futex_wake(s_->drain_seq);
        }
    }

    bool no_readers() const noexcept
    {
        // Locals: each seq_cst load is a compiler barrier, which would
        // otherwise make every iteration reload the table pointer and index.
        const std::uint32_t hw = att_->high_water();
        const shmkit::detail::attach_entry* const entries = &att_->entry(0);
        const std::uint32_t k = index_;
        for (std::uint32_t i = 0; i < hw; ++i)
            if (entries[i].readers[k].load(std::memory_order_seq_cst) != 0) return false;
        return true;
    }

    bool lock_slow(bool have_writer_word, const deadline_clock::time_point* deadline);
    bool lock_shared_slow(const deadline_clock::time_point* deadline);
    bool drain_readers(const deadline_clock::time_point* deadline, bool& recovered);
    [[noreturn]] static void throw_already_held();
    [[noreturn]] static void throw_not_held();

    rwlock_state* s_ = nullptr;
    shmkit::detail::attachment* att_ = nullptr;
    std::uint32_t index_ = 0;
};

} // namespace sync
} // namespace shmkit

#endif
