// Slow paths of the reader/writer lock: waiting, draining readers, recovery.
#include <shmkit/sync/rwlock.hpp>

#include <algorithm>

namespace shmkit {
namespace sync {

void rwlock::throw_already_held()
{
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            "shmkit::sync::rwlock: the calling thread already holds this lock");
}

void rwlock::throw_not_held()
{
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "shmkit::sync::rwlock: the calling thread does not hold this lock in that mode");
}

std::uint64_t rwlock::recoveries() const noexcept
{
    return s_->recoveries.load(std::memory_order_relaxed) + s_->reader_recoveries.load(std::memory_order_relaxed);
}

bool rwlock::try_lock()
{
    prepare_acquire();
    std::uint32_t expected = 0;
    if (!s_->writer.compare_exchange_strong(expected, att_->token(), std::memory_order_seq_cst,
                                            std::memory_order_relaxed))
        return false;
    if (!no_readers()) {
        detail::release_token_word(s_->writer, s_->waiters);
        return false;
    }
    note_held(detail::hold_mode::exclusive, dirty());
    return true;
}

bool rwlock::try_lock_shared()
{
    prepare_acquire();
    att_->token();
    if (!enter_reader()) return false;
    note_held(detail::hold_mode::shared, dirty());
    return true;
}

bool rwlock::try_lock_recovering()
{
    prepare_acquire();
    const std::uint32_t me = att_->token();
    const detail::token_word_ref ref{s_->writer, s_->waiters, s_->recoveries, &s_->dirty, &s_->last_recovery_ns};
    bool recovered = false;
    std::uint32_t expected = 0;
    if (!s_->writer.compare_exchange_strong(expected, me, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        if (!detail::take_over_if_dead(ref, *att_, me)) return false;
        recovered = true;
    }
    // Readers that arrive now see the writer word and back off: a count
    // still held is a reader inside, live or dead.
    const std::uint32_t hw = att_->high_water();
    for (std::uint32_t i = 0; i < hw; ++i) {
        auto& slot = att_->entry(i).readers[index_];
        if (slot.load(std::memory_order_seq_cst) == 0) continue;
        if (att_->reclaim_if_dead(i)) {
            s_->reader_recoveries.fetch_add(1, std::memory_order_relaxed);
            detail::stamp_recovery(s_->last_recovery_ns);
            recovered = true;
        } else if (slot.load(std::memory_order_seq_cst) != 0) {
            detail::release_token_word(s_->writer, s_->waiters);
            return false;
        }
    }
    note_held(detail::hold_mode::exclusive, recovered || dirty());
    return true;
}

bool rwlock::try_lock_shared_recovering()
{
    prepare_acquire();
    att_->token();
    if (enter_reader()) {
        note_held(detail::hold_mode::shared, dirty());
        return true;
    }
    const detail::token_word_ref ref{s_->writer, s_->waiters, s_->recoveries, &s_->dirty, &s_->last_recovery_ns};
    if (!detail::take_over_if_dead(ref, *att_, 0) || !enter_reader()) return false;
    note_held(detail::hold_mode::shared, true);
    return true;
}

// Phase 1: own the writer word (recovering it from a dead writer). Phase 2:
// wait until every reader has left. A writer killed in phase 2 holds the
// word with a dead token: the next waiter recovers it as in phase 1.
bool rwlock::lock_slow(bool have_writer_word, const deadline_clock::time_point* deadline)
{
    bool recovered = false;
    if (!have_writer_word) {
        const detail::token_word_ref ref{s_->writer, s_->waiters, s_->recoveries, &s_->dirty, &s_->last_recovery_ns};
        const auto r = detail::acquire_token_word(ref, *att_, att_->token(), deadline);
        if (r == detail::word_outcome::timed_out) return false;
        recovered = r == detail::word_outcome::recovered;
        // The dead writer may have been asleep draining: its mark goes.
        if (recovered) s_->drain_waiters.store(0, std::memory_order_relaxed);
    }
    if (!drain_readers(deadline, recovered)) {
        detail::release_token_word(s_->writer, s_->waiters);
        return false;
    }
    note_held(detail::hold_mode::exclusive, recovered || dirty());
    return true;
}

// Waits for each process's reader count to reach zero. Readers that arrive
// now see the writer word and back off, so counts only fall, except the
// count of a dead reader: once a count has not changed for a whole poll
// interval (by the clock: arriving readers that back off wake us often, and
// must not postpone the check), its entry is checked and, if its process is
// gone, reclaimed, which zeroes it.
bool rwlock::drain_readers(const deadline_clock::time_point* deadline, bool& recovered)
{
    const std::uint32_t hw = att_->high_water();
    for (std::uint32_t i = 0; i < hw; ++i) {
        auto& slot = att_->entry(i).readers[index_];
        std::uint32_t watched = slot.load(std::memory_order_seq_cst);
        if (watched == 0) continue; // the common case: no clock read (a vDSO call) per entry
        auto since = deadline_clock::now();
        for (int spins = 0; watched != 0; ++spins) {
            if (spins < spin_iterations) {
                cpu_relax();
                watched = slot.load(std::memory_order_seq_cst);
                continue;
            }
            const auto now = deadline_clock::now();
            if (now - since >= liveness_poll_interval) {
                if (att_->reclaim_if_dead(i)) {
                    s_->reader_recoveries.fetch_add(1, std::memory_order_relaxed);
                    detail::stamp_recovery(s_->last_recovery_ns);
                    recovered = true;
                }
                since = now;
            }
            if (deadline && now >= *deadline) {
                // Before giving up, one look at the reader we waited on: a
                // short timed wait (under one interval) still reclaims a
                // dead one.
                if (att_->reclaim_if_dead(i)) {
                    s_->reader_recoveries.fetch_add(1, std::memory_order_relaxed);
                    detail::stamp_recovery(s_->last_recovery_ns);
                    recovered = true;
                    watched = slot.load(std::memory_order_seq_cst);
                    continue;
                }
                return false;
            }
            auto until = since + liveness_poll_interval;
            if (deadline) until = std::min(until, *deadline);
            // Register, then read the sequence, then re-check the slot: a
            // reader leaving after our registration bumps the sequence (and
            // our futex_wait returns), one leaving before it is seen by the
            // re-check. See wake_draining_writer().
            // Set, not counted: only the writer word's owner drains, and a
            // drainer killed asleep must not leave a count that makes every
            // reader's unlock pay a wake forever (the next drain resets it).
            s_->drain_waiters.store(1, std::memory_order_seq_cst);
            const std::uint32_t seq = s_->drain_seq.load(std::memory_order_seq_cst);
            if (slot.load(std::memory_order_seq_cst) != 0) futex_wait_until(s_->drain_seq, seq, until);
            s_->drain_waiters.store(0, std::memory_order_relaxed);
            const std::uint32_t now_value = slot.load(std::memory_order_seq_cst);
            if (now_value != watched) since = deadline_clock::now();
            watched = now_value;
        }
    }
    return true;
}

bool rwlock::lock_shared_slow(const deadline_clock::time_point* deadline)
{
    const detail::token_word_ref ref{s_->writer, s_->waiters, s_->recoveries, &s_->dirty, &s_->last_recovery_ns};
    bool recovered = false;
    for (;;) {
        const auto r = detail::acquire_token_word(ref, *att_, 0, deadline);
        if (r == detail::word_outcome::timed_out) return false;
        recovered |= r == detail::word_outcome::recovered;
        if (enter_reader()) {
            note_held(detail::hold_mode::shared, recovered || dirty());
            return true;
        }
    }
}

} // namespace sync
} // namespace shmkit
