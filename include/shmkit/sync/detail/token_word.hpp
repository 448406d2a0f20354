// shmkit/sync/detail/token_word.hpp: the slow path shared by the mutex and
// the writer side of the rwlock: wait for a word holding an owner token to
// become free, and recover it if its owner died.
#ifndef SHMKIT_SYNC_DETAIL_TOKEN_WORD_HPP
#define SHMKIT_SYNC_DETAIL_TOKEN_WORD_HPP

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/sync/futex.hpp>

#include <atomic>
#include <cstdint>

namespace shmkit {
namespace sync {
namespace detail {

enum class word_outcome {
    acquired,  ///< the word was free and is now ours (or free, when only waiting)
    recovered, ///< its holder was dead; we took it over (or freed it)
    timed_out  ///< the deadline passed first
};

/// The words one token-owned lock needs.
struct token_word_ref {
    std::atomic<std::uint32_t>& word;
    std::atomic<std::uint32_t>& waiters;
    std::atomic<std::uint64_t>& recoveries;
    std::atomic<std::uint32_t>* dirty = nullptr; ///< set before a takeover, if given
    std::atomic<std::uint64_t>* last_recovery = nullptr; ///< stamped (CLOCK_REALTIME ns) by a takeover, if given
};

/// Stamps `w` with the current CLOCK_REALTIME in ns (for tools: when the
/// last recovery happened). One vDSO clock read; recoveries are rare.
void stamp_recovery(std::atomic<std::uint64_t>& w) noexcept;

/// Waits until `w.word` is 0 and then, if `me != 0`, makes it `me`; if
/// `me == 0` only waits until it is free. Spins briefly, then sleeps on the
/// futex; once the word has shown the same holder for a whole
/// liveness_poll_interval (by the clock, whatever woke us meanwhile: wakes
/// and signals must not postpone the check) it asks `att` whether the holder
/// is alive and, if not, takes the word over with one CAS from the dead
/// token (so two recoverers cannot both win, and a holder that just
/// unlocked is never overwritten). `deadline` may be null (wait forever).
word_outcome acquire_token_word(const token_word_ref& w, shmkit::detail::attachment& att, std::uint32_t me,
                                const deadline_clock::time_point* deadline);

/// Without waiting: if `w.word` is held by a token whose process is dead
/// (probed now: one liveness probe, a syscall at most), takes it over for
/// `me` (or frees it if `me == 0`) with one CAS and returns true. False if
/// the word is free, held by a live holder, or taken over by another
/// recoverer first.
bool take_over_if_dead(const token_word_ref& w, shmkit::detail::attachment& att, std::uint32_t me);

/// Frees a token word and wakes its sleepers, if any.
///
/// A release store and a relaxed load, not an exchange: an RMW here costs as
/// much as the lock itself. The price is that a waiter which registers in
/// `waiters` while our store still sits in the store buffer could sleep
/// without being woken; it then wakes by itself after at most one
/// liveness_poll_interval (every sleep is bounded), finds the word free and
/// takes it. Correctness never depends on the wake.
inline void release_token_word(std::atomic<std::uint32_t>& word, const std::atomic<std::uint32_t>& waiters) noexcept
{
    word.store(0, std::memory_order_release);
    if (SHMKIT_UNLIKELY(waiters.load(std::memory_order_relaxed) != 0)) futex_wake(word);
}

} // namespace detail
} // namespace sync
} // namespace shmkit

#endif
