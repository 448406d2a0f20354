// The mutex: a token word with owner-death reporting.
#include <shmkit/sync/mutex.hpp>

#include <system_error>

namespace shmkit {
namespace sync {

void mutex::throw_already_held()
{
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            "shmkit::sync::mutex: the calling thread already holds this mutex");
}

void mutex::throw_not_held()
{
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "shmkit::sync::mutex: the calling thread does not hold this mutex");
}

acquire_status mutex::note_held(acquire_status st)
{
    if (SHMKIT_LIKELY(detail::try_note_held(key(), detail::hold_mode::exclusive, st == acquire_status::owner_died)))
        return st;
    detail::release_token_word(s_->owner, s_->waiters);
    detail::throw_too_many_held();
}

acquire_status mutex::acquire_until(const deadline_clock::time_point* deadline)
{
    if (!detail::may_acquire(key())) throw_already_held();
    const std::uint32_t me = att_->token();
    std::uint32_t expected = 0;
    if (SHMKIT_LIKELY(s_->owner.compare_exchange_strong(expected, me, std::memory_order_acquire,
                                                        std::memory_order_relaxed)))
        return note_held(acquire_status::acquired);
    const detail::token_word_ref ref{s_->owner, s_->waiters, s_->recoveries, nullptr, &s_->last_recovery_ns};
    switch (detail::acquire_token_word(ref, *att_, me, deadline)) {
    case detail::word_outcome::timed_out: return acquire_status::timed_out;
    case detail::word_outcome::recovered: return note_held(acquire_status::owner_died);
    case detail::word_outcome::acquired: break;
    }
    return note_held(acquire_status::acquired);
}

bool mutex::try_lock()
{
    if (!detail::may_acquire(key())) throw_already_held();
    std::uint32_t expected = 0;
    if (!s_->owner.compare_exchange_strong(expected, att_->token(), std::memory_order_acquire,
                                           std::memory_order_relaxed))
        return false;
    note_held(acquire_status::acquired);
    return true;
}

} // namespace sync
} // namespace shmkit
