// Waiting for, and recovering, token-owned lock words.
#include <shmkit/sync/detail/token_word.hpp>

#include <algorithm>

#include <time.h>

namespace shmkit {
namespace sync {
namespace detail {
namespace {

/// Takes a free word (me != 0) or just observes it free (me == 0).
bool try_take_free(std::atomic<std::uint32_t>& word, std::uint32_t me) noexcept
{
    std::uint32_t expected = 0;
    if (me == 0) return word.load(std::memory_order_acquire) == 0;
    return word.compare_exchange_strong(expected, me, std::memory_order_seq_cst, std::memory_order_relaxed);
}

/// The holder `dead` is gone: replace it with `me` (or 0) in one CAS, so
/// that exactly one of several recoverers wins, and wake everyone when the
/// word became free.
bool take_over(const token_word_ref& w, std::uint32_t dead, std::uint32_t me) noexcept
{
    // Before the CAS: whoever acquires after it must see the flag. If the
    // CAS fails, another recoverer took this same dead holder over.
    if (w.dirty) w.dirty->store(1, std::memory_order_relaxed);
    if (!w.word.compare_exchange_strong(dead, me, std::memory_order_seq_cst, std::memory_order_relaxed))
        return false;
    w.recoveries.fetch_add(1, std::memory_order_relaxed);
    if (w.last_recovery) stamp_recovery(*w.last_recovery);
    if (me == 0) futex_wake(w.word);
    return true;
}

} // namespace

void stamp_recovery(std::atomic<std::uint64_t>& w) noexcept
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    w.store(std::uint64_t(ts.tv_sec) * 1000000000u + std::uint64_t(ts.tv_nsec), std::memory_order_relaxed);
}

bool take_over_if_dead(const token_word_ref& w, shmkit::detail::attachment& att, std::uint32_t me)
{
    const std::uint32_t seen = w.word.load(std::memory_order_acquire);
    return seen != 0 && !att.token_alive(seen & shmkit::detail::token_mask) && take_over(w, seen, me);
}

word_outcome acquire_token_word(const token_word_ref& w, shmkit::detail::attachment& att, std::uint32_t me,
                                const deadline_clock::time_point* deadline)
{
    // The holder is timed from the end of the spin (a few microseconds
    // after our arrival): a lock won while spinning costs no clock read.
    std::uint32_t watched = w.word.load(std::memory_order_relaxed);
    for (int i = 0; i < spin_iterations; ++i) {
        if (try_take_free(w.word, me)) return word_outcome::acquired;
        cpu_relax();
    }
    deadline_clock::time_point since = deadline_clock::now();
    for (;;) {
        const std::uint32_t seen = w.word.load(std::memory_order_relaxed);
        if (seen == 0) {
            if (try_take_free(w.word, me)) return word_outcome::acquired;
            continue;
        }
        const auto now = deadline_clock::now();
        if (seen != watched) {
            watched = seen;
            since = now;
        } else if (now - since >= liveness_poll_interval || (deadline && now >= *deadline)) {
            // The same holder for a whole interval, or until our deadline:
            // is it still there? (Checked before giving up: a timed wait
            // of about one interval still recovers a dead holder.)
            if (!att.token_alive(seen & shmkit::detail::token_mask) && take_over(w, seen, me))
                return word_outcome::recovered;
            since = now;
        }
        if (deadline && now >= *deadline) return word_outcome::timed_out;
        auto until = since + liveness_poll_interval;
        if (deadline) until = std::min(until, *deadline);
        // seq_cst increment, then the kernel compares the word again: a
        // release after this point either changes the word (EAGAIN) or sees
        // waiters != 0 and wakes us.
        w.waiters.fetch_add(1, std::memory_order_seq_cst);
        futex_wait_until(w.word, seen, until);
        w.waiters.fetch_sub(1, std::memory_order_relaxed);
    }
}

} // namespace detail
} // namespace sync
} // namespace shmkit
