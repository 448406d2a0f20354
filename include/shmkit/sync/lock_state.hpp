// shmkit/sync/lock_state.hpp: the shared-memory words of the locks.
//
// Both structures are valid when zero-filled (unlocked, no waiters), so a
// freshly reserved segment needs no constructor calls.
#ifndef SHMKIT_SYNC_LOCK_STATE_HPP
#define SHMKIT_SYNC_LOCK_STATE_HPP

#include <shmkit/config.hpp>

#include <atomic>
#include <cstdint>

namespace shmkit {
namespace sync {

/// Shared part of a reader/writer lock. Readers are not counted here: each
/// reader counts itself in its own attach entry (attach_entry::readers), so a
/// dead reader's count is released exactly when its entry is reclaimed, and
/// readers of different processes never write a common cache line.
struct rwlock_state {
    /// Token of the writer (attach_table.hpp), 0 when no writer. A writer
    /// owns this word first and then waits for readers to drain, so new
    /// readers back off as soon as a writer arrives (writer preference).
    alignas(cache_line_size) std::atomic<std::uint32_t> writer;
    /// Processes sleeping on `writer`. Same line as `writer`: the unlocking
    /// writer owns that line already, so reading it costs nothing.
    std::atomic<std::uint32_t> waiters;
    /// Bumped by a reader that leaves while a writer waits for readers.
    std::atomic<std::uint32_t> drain_seq;
    std::atomic<std::uint32_t> drain_waiters;
    /// Set when a dead writer is taken over (by a writer or a reader);
    /// cleared when the next writer unlocks. While set, every acquirer is
    /// told recovered(): the data may be half-updated until a writer repairs it.
    std::atomic<std::uint32_t> dirty;
    /// Locks recovered from dead writers, and dead readers released.
    std::atomic<std::uint64_t> recoveries;
    std::atomic<std::uint64_t> reader_recoveries;
    /// CLOCK_REALTIME (ns) of the last recovery of either kind; 0: never.
    /// For tools (`shmkit ls`/`info`); a word of the line's former padding,
    /// so segments made before it read 0.
    std::atomic<std::uint64_t> last_recovery_ns;
};

/// Shared part of a mutex.
struct mutex_state {
    alignas(cache_line_size) std::atomic<std::uint32_t> owner; ///< token of the holder, 0 when free
    std::atomic<std::uint32_t> waiters;
    std::atomic<std::uint64_t> recoveries;
    std::atomic<std::uint64_t> last_recovery_ns; ///< CLOCK_REALTIME (ns) of the last recovery; 0: never
};

static_assert(sizeof(rwlock_state) == cache_line_size);
static_assert(sizeof(mutex_state) == cache_line_size);

} // namespace sync
} // namespace shmkit

#endif
