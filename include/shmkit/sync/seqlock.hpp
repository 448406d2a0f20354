// shmkit/sync/seqlock.hpp: a sequence lock for consistent bulk reads of shared data.
//
// Protocol. The sequence is even while the data is stable and odd while a
// write is in progress. A writer (already serialised by an external write
// lock) makes it odd, changes the data, and makes it even again. A reader
// takes an even sequence, copies the data, and keeps the copy only if the
// sequence has not changed meanwhile; otherwise it copies again. Readers
// never write to the lock's cache line on the fast path, so any number of
// them scale.
//
// Memory orders (H.-J. Boehm, "Can seqlocks get along with programming
// language memory models?", MSPC 2012). Every access to the protected data
// is a relaxed atomic access (shmkit/detail/atomic_copy.hpp), so a racing
// copy is not undefined behaviour, merely a torn copy that is thrown away.
//
//   writer                                reader
//   s = seq.load(relaxed)                 s0 = seq.load(acquire)       (R1)
//   seq.store(s+1, relaxed)      (W1)     data loads, relaxed          (R2)
//   fence(release)               (F1)     fence(acquire)               (F2)
//   data stores, relaxed         (W2)     s1 = seq.load(relaxed)       (R3)
//   seq.store(s+2, seq_cst)      (W3)     accept iff s0 == s1 and s0 even
//
// * A reader whose R1 reads W3 (an even value) synchronises with W3, so the
//   data stores W2 of that write happen before its loads R2: it sees them or
//   newer ones.
// * If one load in R2 sees a store W2 of a later write, then F1 (sequenced
//   before that W2) synchronises with F2 (sequenced after the load), so W1
//   happens before R3: R3 sees the odd W1 or later, s1 != s0, and the torn
//   copy is rejected. This is why the release fence sits *after* the odd
//   store and the acquire fence *before* the re-check: ordinary
//   release/acquire on the sequence alone would order the wrong pair.
//
// Sleeping readers. A reader that finds the sequence odd spins briefly, then
// sleeps on the sequence word with futex_wait_until, never longer than
// liveness_poll_interval at a time. The writer wakes only when a reader has
// registered in `waiters_`, so an uncontended write_end makes no syscall.
// No wakeup is lost: the reader increments `waiters_` (seq_cst) and then
// re-reads the sequence (seq_cst); the writer stores the sequence (seq_cst)
// and then reads `waiters_` (seq_cst). In the single total order of seq_cst
// operations, either the writer's read of `waiters_` comes after the
// increment (it wakes) or the reader's re-read comes after the store (it
// sees the new value and does not sleep). Between the re-read and the sleep
// the kernel's compare-and-sleep of FUTEX_WAIT closes the window.
//
// Crash windows (a process may be SIGKILLed at any instruction):
// * writer dies between W1 and W3: the sequence stays odd and the data may
//   be torn. Readers block (read_begin) or report a stall (read) until the
//   next writer recovers the write lock and calls recover() or completes a
//   write (write_begin accepts an odd sequence, see there).
// * writer dies after W3, before the wake: sleeping readers wake at their
//   deadline, at most liveness_poll_interval later.
// * reader dies while registered in `waiters_`: the count stays one too
//   high, and from then on every write_end makes one futex_wake syscall that
//   wakes nobody. Correctness is unaffected; only that cost remains.
// * reader dies anywhere else: a reader holds nothing.
//
// The sequence is 32 bits: a reader is fooled only if exactly a multiple of
// 2^31 writes complete while it copies once.
#ifndef SHMKIT_SYNC_SEQLOCK_HPP
#define SHMKIT_SYNC_SEQLOCK_HPP

#include <shmkit/config.hpp>
#include <shmkit/detail/atomic_copy.hpp>
#include <shmkit/sync/futex.hpp>

#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace shmkit {
namespace sync {

using shmkit::detail::atomic_copy_from_shared;
using shmkit::detail::atomic_copy_to_shared;

namespace detail {

// ThreadSanitizer does not model standalone fences in its happens-before
// analysis, and GCC 12+ warns about every one under -fsanitize=thread. That
// is harmless here: all accesses to seqlock-protected data are atomic, so
// TSan has no race to report with or without the fence, and the fence is
// still in the generated code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
inline void seqlock_fence(std::memory_order order) noexcept { std::atomic_thread_fence(order); }
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

} // namespace detail

/// A sequence lock that lives in shared memory.
///
/// Standard-layout, trivially destructible, and valid when zero-filled: place
/// it in a zeroed mapping (or value-initialise it, `seqlock s{};`) and use it;
/// no constructor has to run. It occupies a cache line of its own so that the
/// data it protects never shares a line with it.
///
/// Writers must be serialised by the caller (the owning structure's write
/// lock); the seqlock only lets bulk readers take consistent snapshots
/// without writing to shared memory. Protected data must be accessed with
/// atomic_copy_from_shared / atomic_copy_to_shared (or other relaxed atomic
/// accesses); see the memory-order argument at the top of this header.
class alignas(cache_line_size) seqlock {
public:
    /// Starts a write: the sequence becomes odd, and readers that start now
    /// wait, while readers already copying will retry.
    ///
    /// Thread/process safety: the caller must hold the external write lock.
    /// Complexity: O(1), no syscall. Throws nothing.
    /// Accepts an odd sequence left by a writer that died mid-write (it moves
    /// to the next odd value): a recovering writer that rewrites or rolls
    /// back the torn data inside a new write needs no recover() call.
    /// Crash: dying after this call leaves the sequence odd until recover()
    /// or the next writer's write_end.
    void write_begin() noexcept
    {
        // Relaxed: the external write lock orders this load after the
        // previous writer's stores to the sequence.
        const std::uint32_t s = sequence_.load(std::memory_order_relaxed);
        sequence_.store((s + 1) | 1u, std::memory_order_relaxed);
        // F1: data stores after this fence cannot become visible to a reader
        // whose acquire fence does not also make the odd value visible.
        detail::seqlock_fence(std::memory_order_release);
    }

    /// Ends a write: the sequence becomes even, and sleeping readers (if any
    /// registered) are woken.
    ///
    /// Thread/process safety: the caller must hold the external write lock.
    /// Complexity: O(1); one futex_wake syscall only when a reader sleeps.
    /// Throws nothing.
    /// Crash: dying before the store is a death mid-write (see write_begin);
    /// dying after it but before the wake delays sleeping readers by at most
    /// liveness_poll_interval.
    void write_end() noexcept
    {
        const std::uint32_t s = sequence_.load(std::memory_order_relaxed);
        publish((s | 1u) + 1);
    }

    /// Repairs the sequence after a writer died between write_begin and
    /// write_end: if it is odd, makes it even and wakes sleeping readers.
    /// Returns whether there was an interrupted write to repair.
    ///
    /// Call it only while holding the recovered write lock, and only once the
    /// protected data is consistent again (rewritten, rolled back, or known
    /// to be valid in any partial state): from here on readers accept it.
    /// Thread/process safety: as write_end. Complexity: O(1). Throws nothing.
    /// Crash: idempotent; a recoverer that dies here leaves the sequence
    /// either odd (the next recoverer repairs it) or even (nothing to do).
    bool recover() noexcept
    {
        const std::uint32_t s = sequence_.load(std::memory_order_relaxed);
        if ((s & 1u) == 0) return false;
        publish(s + 1);
        return true;
    }

    /// recover() for holders of a shared lock: no writer runs, but several
    /// holders may repair the same interrupted write at once. One CAS, so
    /// exactly one of them does it and is told true. Complexity: O(1).
    /// Throws nothing. Crash: as recover().
    bool recover_once() noexcept
    {
        std::uint32_t s = sequence_.load(std::memory_order_relaxed);
        if ((s & 1u) == 0) return false;
        // seq_cst: the release for readers and the writer half of the
        // no-lost-wakeup argument, as publish()'s store.
        if (!sequence_.compare_exchange_strong(s, s + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
            return false;
        if (SHMKIT_UNLIKELY(waiters_.load(std::memory_order_seq_cst) != 0)) futex_wake(sequence_);
        return true;
    }

    /// Starts a read: returns an even sequence to pass to read_retry.
    ///
    /// While a write is in progress, spins spin_iterations times, then sleeps
    /// on the sequence word in naps of at most liveness_poll_interval.
    /// Thread/process safety: any number of concurrent readers and one writer.
    /// Complexity: O(1) without a writer; otherwise until the write ends.
    /// Throws nothing. Blocks for as long as a dead writer is not recovered:
    /// use read() to be told about such stalls.
    /// Crash: a reader holds nothing (see the header for a death while asleep).
    std::uint32_t read_begin() noexcept
    {
        std::uint32_t s = sequence_.load(std::memory_order_acquire); // R1
        while (SHMKIT_UNLIKELY(s & 1u))
            s = wait_while(s, deadline_clock::now() + liveness_poll_interval);
        return s;
    }

    /// Ends a read: returns true when a write overlapped the copy made since
    /// read_begin returned `seq`, so the copy must be discarded and redone.
    ///
    /// Thread/process safety: as read_begin. Complexity: O(1), no syscall.
    /// Throws nothing. Crash: reads only.
    bool read_retry(std::uint32_t seq) const noexcept
    {
        // F2: pairs with F1, so a copy that saw any newer data store also
        // sees the odd sequence of that write below.
        detail::seqlock_fence(std::memory_order_acquire);
        return sequence_.load(std::memory_order_relaxed) != seq; // R3
    }

    /// Takes a consistent snapshot: calls `copy()` between read_begin and
    /// read_retry until no write overlapped it.
    ///
    /// `copy` must only copy the protected bytes (with atomic_copy_from_shared)
    /// into private memory: it may see a torn state, and nothing may be
    /// interpreted (followed, divided by, used as a size) before read()
    /// returns. `on_stall()` is called each time the sequence has stayed at
    /// the same odd value for a whole liveness_poll_interval; the owning
    /// structure uses it to check whether the writer died and, if so, to
    /// recover the write lock and call recover(). Reading resumes after it.
    ///
    /// Thread/process safety: as read_begin. Complexity: one copy per
    /// overlapping write, plus waiting while a write is in progress.
    /// Throws whatever `copy` or `on_stall` throw; the lock is unaffected.
    /// Crash: a reader holds nothing.
    template <class F, class OnStall>
    void read(F&& copy, OnStall&& on_stall) noexcept(
        noexcept(std::declval<F&>()()) && noexcept(std::declval<OnStall&>()()))
    {
        for (;;) {
            const std::uint32_t seq = read_begin_or_stall(on_stall);
            copy();
            if (!read_retry(seq)) return;
        }
    }

    /// The current sequence, for diagnostics and tools: odd means a write is
    /// in progress or its writer died. Thread/process safety: any time.
    /// Complexity: O(1). Throws nothing.
    std::uint32_t sequence() const noexcept { return sequence_.load(std::memory_order_acquire); }

private:
    template <class OnStall>
    std::uint32_t read_begin_or_stall(OnStall& on_stall)
    {
        std::uint32_t s = sequence_.load(std::memory_order_acquire); // R1
        while (SHMKIT_UNLIKELY(s & 1u)) {
            const std::uint32_t seen = s;
            s = wait_while(seen, deadline_clock::now() + liveness_poll_interval);
            if (s == seen) on_stall();
        }
        return s;
    }

    /// Waits while the sequence is `odd`, until `deadline`; returns the
    /// sequence then (acquire), which is still `odd` on timeout.
    std::uint32_t wait_while(std::uint32_t odd, deadline_clock::time_point deadline) noexcept
    {
        for (int i = 0; i != spin_iterations; ++i) {
            const std::uint32_t s = sequence_.load(std::memory_order_acquire);
            if (s != odd) return s;
            cpu_relax();
        }
        return sleep_while(odd, deadline);
    }

    std::uint32_t sleep_while(std::uint32_t odd, deadline_clock::time_point deadline) noexcept
    {
        // seq_cst increment then seq_cst re-read: the reader half of the
        // no-lost-wakeup argument at the top of this header.
        waiters_.fetch_add(1, std::memory_order_seq_cst);
        std::uint32_t s = sequence_.load(std::memory_order_seq_cst);
        while (s == odd) {
            const wait_result r = futex_wait_until(sequence_, odd, deadline);
            s = sequence_.load(std::memory_order_seq_cst);
            if (r == wait_result::timed_out) break;
        }
        // Relaxed: the count is only a hint to the writer; a late decrement
        // costs at most one needless wake.
        waiters_.fetch_sub(1, std::memory_order_relaxed);
        return s;
    }

    /// Makes `even` the sequence (W3) and wakes registered sleepers.
    void publish(std::uint32_t even) noexcept
    {
        // seq_cst store then seq_cst load: the writer half of the
        // no-lost-wakeup argument (the store is also the release for readers).
        sequence_.store(even, std::memory_order_seq_cst);
        if (SHMKIT_UNLIKELY(waiters_.load(std::memory_order_seq_cst) != 0)) futex_wake(sequence_);
    }

    std::atomic<std::uint32_t> sequence_; ///< the futex word; even = stable
    std::atomic<std::uint32_t> waiters_;  ///< readers registered to sleep
};

static_assert(std::is_standard_layout_v<seqlock>, "seqlock lives in shared memory");
static_assert(std::is_trivially_destructible_v<seqlock>, "seqlock needs no destructor");
static_assert(sizeof(seqlock) == cache_line_size && alignof(seqlock) == cache_line_size,
              "seqlock occupies exactly one cache line");

} // namespace sync
} // namespace shmkit

#endif
