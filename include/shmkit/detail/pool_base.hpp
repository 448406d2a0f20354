// shmkit/detail/pool_base.hpp: the allocator shared by raw_pool, pool<T> and
// str_pool: slots, owners, blocking, recovery, guards, stats.
//
// Payload layout (the segment's data area; every part 64-byte aligned):
//
//   +0      pool_control: the wake word (one cache line, read by every free)
//   +64     pool_counters: waits, timeouts, recoveries (slow paths only)
//   +128    attach_capacity pool_handle_line: per-handle counters (a line each)
//   owners  capacity 64-bit owner ids, one per slot
//   slots   capacity slots of elem_size bytes, contiguous
//
// The owner word is the allocation state: a slot is allocated exactly when
// its owner word is non-zero, and then it holds the owner id (see
// detail::make_owner_id) of the handle that allocated or adopted it. Owner
// ids never repeat, so a dead owner's id can never come to name a live
// process, and every transition is one atomic operation on one word:
//
//   alloc    CAS 0 -> me                   (a scan picks the candidate)
//   free     exchange -> 0                 (free_n: store 0, then one fence)
//   adopt    CAS holder seen (or the token handed over) -> me
//   recover  CAS dead owner -> 0           (after a liveness check)
//
// So a process killed at any instruction leaves every slot either allocated
// to it (its id in the word: recovered once it is seen dead) or not touched:
// there is no half-allocated slot to leak, no slot with two owners, and no
// counter to drift, because used() counts owner words instead of keeping a
// count. Recovery needs no lock: two recoverers CAS the same word and one
// wins; an adopt(i, token) racing a recovery either transfers the slot
// first (the recovery's CAS fails) or finds the token gone (false).
// What an index alone cannot protect: a process that frees or adopts a slot
// by index after its holder died and the slot was recovered and allocated
// again acts on the new holder's slot. Hand-offs pass holder_token(i) too.
//
// Blocking: the wake word is (sequence << 1 | sleepers). A waiter sets the
// sleepers bit (RMW, seq_cst), scans again, and sleeps on the futex while
// the word is unchanged. A free does its owner RMW (or a seq_cst fence
// after free_n's stores) and then loads the wake word: only if the bit is
// set does it clear it, bump the sequence and wake everyone. The two seq_cst
// pairs (waiter: RMW wake, load owners; freer: RMW owner, load wake) make a
// lost wakeup impossible: either the waiter's scan sees the freed slot or
// the freer sees the bit. A waiter killed while the bit is set costs the
// next free one futex_wake syscall, and the bit is clear again.
#ifndef SHMKIT_DETAIL_POOL_BASE_HPP
#define SHMKIT_DETAIL_POOL_BASE_HPP

#include <shmkit/detail/structure_base.hpp>
#include <shmkit/sync/futex.hpp>

#include <boost/core/span.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace shmkit {

/// Options of a pool handle (creation options, and how this handle behaves).
struct pool_options : structure_options {
    /// When an alloc would wait (the pool looks full), first free the slots
    /// of dead owners (recover_stale()), and while waiting look again every
    /// ~10 ms: a pool filled by processes that died drains by itself. Costs
    /// O(capacity) per look, only on that slow path. Per handle, not stored
    /// in the segment. Without it a waiting alloc still looks again every
    /// ~100 ms, which bounds what any missed wake-up could cost.
    bool auto_recover = false;
};

/// Counters and facts about a pool. The counters are totals over every
/// handle that ever used the pool (dead ones included).
struct pool_stats {
    std::size_t capacity = 0;   ///< slots
    std::size_t elem_size = 0;  ///< bytes per slot
    std::size_t used = 0;       ///< slots allocated now
    std::size_t available = 0;  ///< capacity - used
    std::size_t waiters = 0;    ///< threads of live handles blocked in alloc now
    std::size_t mmap_size = 0;  ///< bytes mapped
    std::uint64_t allocs = 0;   ///< slots allocated (alloc_n counts each slot)
    std::uint64_t frees = 0;    ///< slots freed (free, free_n, guards, reset)
    std::uint64_t waits = 0;    ///< allocs that had to block
    std::uint64_t timeouts = 0; ///< blocking allocs that gave up
    std::uint64_t recoveries = 0; ///< slots of dead owners freed
    segment_stats segment;      ///< attach table and liveness
};

namespace detail {
class pool_base;
}

/// Frees a slot when it goes out of scope: what alloc_guard() returns.
/// Move-only; empty (false) when the allocation timed out or after
/// release(). A guard copied into a forked child by fork() never frees
/// there: the slot stays the parent's (it frees it when its own guard ends).
/// The guard must not outlive its pool handle, and the handle must not be
/// moved while guards on it exist (they point to it). Not thread-safe (a
/// value).
class slot_guard {
public:
    slot_guard() noexcept = default;
    slot_guard(slot_guard&& o) noexcept;
    slot_guard& operator=(slot_guard&& o) noexcept;
    slot_guard(const slot_guard&) = delete;
    slot_guard& operator=(const slot_guard&) = delete;
    /// Frees the slot (see the class comment). Throws nothing.
    ~slot_guard() { reset(); }

    explicit operator bool() const noexcept { return pool_ != nullptr; }
    /// The slot. Precondition: the guard is not empty.
    std::size_t index() const noexcept { return index_; }
    std::size_t operator*() const noexcept { return index_; }
    /// Stops guarding and returns the slot, which stays allocated.
    std::size_t release() noexcept
    {
        pool_ = nullptr;
        return index_;
    }
    /// Frees the slot now (if this guard has one, this is the process that
    /// allocated it, and the slot is still held as it was when the guard
    /// was made: not adopted, freed or recovered meanwhile) and empties the
    /// guard. Throws nothing.
    void reset() noexcept;

private:
    friend class detail::pool_base;
    slot_guard(detail::pool_base* p, std::size_t i) noexcept;

    detail::pool_base* pool_ = nullptr;
    std::size_t index_ = 0;
    std::uint64_t token_ = 0; ///< holder_token(index_) when the guard was made
    std::uint32_t fork_generation_ = 0;
};

namespace detail {

struct alignas(cache_line_size) pool_control {
    std::atomic<std::uint32_t> wake; ///< sequence << 1 | sleepers
};

struct alignas(cache_line_size) pool_counters {
    std::atomic<std::uint64_t> waits;
    std::atomic<std::uint64_t> timeouts;
    std::atomic<std::uint64_t> recoveries;
};

/// One per attach-table entry: written by the handle holding that entry.
struct alignas(cache_line_size) pool_handle_line {
    /// Slot operations of this entry's handles. Incremented with a relaxed
    /// load and store, not an RMW (that would double the cost of a free):
    /// exact for a handle used by one thread at a time; threads sharing one
    /// handle concurrently may lose counts.
    std::atomic<std::uint64_t> allocs;
    std::atomic<std::uint64_t> frees;
    /// owner id (low 40 bits) << 24 | threads of that handle waiting now.
    /// Tagged so that a count left by a dead handle is never read as ours.
    std::atomic<std::uint64_t> waiting;
};

static_assert(sizeof(pool_control) == cache_line_size && sizeof(pool_counters) == cache_line_size &&
              sizeof(pool_handle_line) == cache_line_size);

/// The fixed facts of one pool type.
struct pool_spec {
    element_type type;
    /// The header's element size: sizeof(T), the raw slot size, or
    /// str_pool's maximum length (0: any, for open_only).
    std::uint32_t elem_size;
    /// Bytes per slot (0: from the header): elem_size, but for str_pool.
    std::uint32_t stride;
    const char* size_name; ///< "element size", "slot size", "maximum length"
};

/// The members shared by raw_pool, pool<T> and str_pool (their public API).
///
/// Thread/process safety: every member may be called from any number of
/// processes at once, and from threads of one process sharing a handle,
/// except moving/destroying the handle, set_auto_recover() and the eventfd
/// setters (create_eventfd, attach_eventfd), which need the handle to
/// themselves.
///
/// Slot ownership: a slot belongs to the handle that allocated it (or
/// adopted it), which in practice means to its process. Any process may free
/// any slot (a consumer frees what a producer allocated); but a process that
/// uses a slot it did not allocate should adopt() it first, or the slot is
/// freed by recover_stale() if its allocator dies, possibly while still in
/// use. Freeing the same slot twice (double free) is the caller's error,
/// as with any allocator: the second free may free a later owner's slot.
/// Destroying a handle (or a process exiting) does not free its slots:
/// they count as held by a dead owner and recover_stale() frees them.
///
/// Exceptions: std::out_of_range for a slot index >= capacity(),
/// shmkit::error (errc::slot_not_allocated) to read or write a slot that is
/// not allocated; both thrown before anything changes. In a forked child,
/// the first use of the handle claims an attach entry and may throw
/// shmkit::error (errc::attach_table_full).
class pool_base : public structure_base {
public:
    using clock = deadline_clock;

    // ---- Allocation ----------------------------------------------------------
    // A slot is found by scanning owner words from a per-handle cursor (where
    // this handle last allocated or freed) and claimed with one CAS: O(1)
    // when the pool has free slots near the cursor, O(capacity) loads when
    // it is (nearly) full. No syscall unless the call blocks.

    /// A free slot, or nothing if none is free now. Never blocks.
    std::optional<std::size_t> try_alloc()
    {
        const std::uint64_t me = att_->owner_id();
        const std::size_t cap = capacity_;
        std::size_t i = cursor_.load(std::memory_order_relaxed);
        if (SHMKIT_UNLIKELY(i >= cap)) i = 0;
        for (std::size_t k = 0; k < cap; ++k) {
            if (owners_[i].load(std::memory_order_relaxed) == 0 && claim(i, me)) {
                cursor_.store(i + 1, std::memory_order_relaxed);
                bump(line(me).allocs, 1);
                return i;
            }
            if (++i == cap) i = 0;
        }
        return std::nullopt;
    }
    /// Blocks until a slot is free (waiting on a futex, not spinning), then
    /// allocates it. Always returns a slot.
    std::optional<std::size_t> alloc()
    {
        if (auto i = try_alloc()) return i;
        return alloc_slow(std::nullopt);
    }
    /// As alloc(), giving up after `timeout` (nothing returned then).
    template <class Rep, class Period>
    std::optional<std::size_t> alloc(const std::chrono::duration<Rep, Period>& timeout)
    {
        if (auto i = try_alloc()) return i;
        return alloc_slow(deadline(timeout));
    }

    /// Frees slot i. False if it was not allocated. O(1): one atomic
    /// exchange, and a futex wake only if an alloc is blocked.
    /// Throws std::out_of_range (nothing freed).
    bool free(std::size_t i)
    {
        check_index(i);
        // First: in a forked child this may claim an attach entry, and throw,
        // which must happen before anything changes.
        const std::uint64_t me = att_->owner_id();
        // seq_cst: pairs with a waiter's announcement (see the header comment).
        if (owners_[i].exchange(0, std::memory_order_seq_cst) == 0) return false;
        freed(i, me);
        return true;
    }

    /// Frees slot i only if the holder that `token` names (holder_token(i)
    /// as it was) holds it now: false if the slot is free or another holder
    /// has it (it was freed, recovered, adopted or passed on). What free(i)
    /// cannot promise when the index may be stale: a slot handed over and
    /// not adopted can be taken back this way without ever freeing another
    /// holder's slot. O(1): one CAS, and a futex wake only if an alloc is
    /// blocked. Throws std::out_of_range (nothing freed).
    bool free(std::size_t i, std::uint64_t token)
    {
        check_index(i);
        const std::uint64_t me = att_->owner_id(); // may throw: before any change, as in free(i)
        if (token == 0) return false;
        // One CAS, never retried: an id never comes back, so success means
        // the slot still has the holder the token named. seq_cst as free(i).
        std::uint64_t expected = token;
        if (!owners_[i].compare_exchange_strong(expected, 0, std::memory_order_seq_cst, std::memory_order_relaxed))
            return false;
        freed(i, me);
        return true;
    }

    /// `n` slots at once, all or none (nothing on timeout or, for
    /// try_alloc_n, if fewer than n are free now). Slots are claimed one
    /// CAS each; if not all n can be had they are given back before the call
    /// waits, so waiting alloc_n callers never hold slots and can never
    /// deadlock each other. Blocked alloc_n callers queue on a
    /// crash-recoverable mutex of the pool, so they are served one at a time
    /// (no livelock between them). O(n) when slots are free near the cursor,
    /// O(capacity) per attempt otherwise. Throws std::invalid_argument at
    /// once if n > capacity() (it could never succeed), std::bad_alloc;
    /// alloc_n, when it must queue: what sync::mutex::lock() throws
    /// (std::system_error for a thread that holds 16 shmkit locks already,
    /// shmkit::error in a forked child that cannot attach).
    std::optional<std::vector<std::size_t>> try_alloc_n(std::size_t n);
    std::optional<std::vector<std::size_t>> alloc_n(std::size_t n);
    template <class Rep, class Period>
    std::optional<std::vector<std::size_t>> alloc_n(std::size_t n, const std::chrono::duration<Rep, Period>& timeout)
    {
        return alloc_n_until(n, deadline(timeout));
    }
    /// As try_alloc_n(), into `out` (n = out.size()) without allocating
    /// memory; true if all were allocated (`out` holds them), false if
    /// none were (the contents of `out` are unspecified then).
    bool try_alloc_n(boost::span<std::size_t> out);

    /// Frees `slots` (duplicates and slots not allocated are skipped) and
    /// returns how many were freed: one store per slot, one fence, one
    /// counter update and at most one wake for the whole batch. Checks every
    /// index first: std::out_of_range, nothing freed. O(slots.size()).
    /// Freeing slots that another thread frees or recovers at the same
    /// moment may count them twice (as a double free, see the class comment).
    std::size_t free_n(boost::span<const std::size_t> slots);

    // ---- Guards ----------------------------------------------------------------

    /// alloc() wrapped in a guard that frees the slot at scope exit.
    slot_guard alloc_guard();
    /// alloc(timeout) wrapped in a guard: empty on timeout.
    template <class Rep, class Period>
    slot_guard alloc_guard(const std::chrono::duration<Rep, Period>& timeout)
    {
        return make_guard(alloc(timeout));
    }
    /// try_alloc() wrapped in a guard: empty if no slot is free.
    slot_guard try_alloc_guard() { return make_guard(try_alloc()); }

    // ---- Ownership and state -------------------------------------------------

    /// Whether slot i is allocated. O(1). Throws std::out_of_range.
    bool is_allocated(std::size_t i) const
    {
        check_index(i);
        return owners_[i].load(std::memory_order_acquire) != 0;
    }
    /// The PID of slot i's owner; 0 if the slot is free, or if its owner's
    /// attach entry was reclaimed since (the owner is long gone). A dead
    /// owner whose entry is not reclaimed yet still shows its PID. O(1), no
    /// syscall. Throws std::out_of_range.
    pid_t owner(std::size_t i) const;
    /// Makes this handle the owner of allocated slot i (one handed over by
    /// another process), so it is not recovered when its allocator dies:
    /// one CAS from the holder seen. False if the slot is free, or its
    /// holder changed meanwhile. Whoever holds the slot now loses it: if the
    /// sender may die before the hand-off completes, the slot may have been
    /// recovered and allocated again by someone else, and adopt(i) would
    /// take it from them; pass holder_token(i) along with the index and use
    /// adopt(i, token) instead. O(1). Throws std::out_of_range.
    bool adopt(std::size_t i);
    /// Makes this handle the owner of slot i only if `token` (what
    /// holder_token(i) returned to the sender) still holds it: false if the
    /// slot was freed, recovered or passed on since. With this handle's own
    /// token: whether it still holds slot i (nothing changes). O(1), one
    /// CAS. Throws std::out_of_range.
    bool adopt(std::size_t i, std::uint64_t token);
    /// An opaque value naming the current holder of slot i (0 if free),
    /// valid across processes and never reused for another holder: send it
    /// with the index to the process that will adopt(i, token). O(1).
    /// Throws std::out_of_range.
    std::uint64_t holder_token(std::size_t i) const
    {
        check_index(i);
        return owners_[i].load(std::memory_order_acquire);
    }

    std::size_t capacity() const noexcept { return capacity_; }
    /// Bytes per slot; slot i is at data_ptr() + i * elem_size(). (For a
    /// str_pool: the 4-byte length and the maximum length, rounded up to 4.)
    std::size_t elem_size() const noexcept { return elem_size_; }
    /// Slots allocated now: counts the owner words, so it can never drift
    /// from the allocation state. O(capacity) loads (about 1 ms per million
    /// slots), no lock; a snapshot only while others allocate.
    std::size_t used() const noexcept;
    /// capacity() - used(). O(capacity).
    std::size_t available() const noexcept { return capacity_ - used(); }
    /// The allocated slots, ascending. O(capacity). Throws std::bad_alloc.
    std::vector<std::size_t> allocated_slots() const;
    /// Calls f(i) for each allocated slot, ascending (a slot freed or
    /// allocated meanwhile may or may not be seen). O(capacity). What f
    /// throws propagates.
    template <class F>
    void each_allocated(F&& f) const
    {
        for (std::size_t i = 0; i < capacity_; ++i)
            if (owners_[i].load(std::memory_order_acquire) != 0) f(i);
    }

    /// Frees every slot whose owner is dead (its process died, or its handle
    /// was destroyed without freeing); returns how many. Liveness comes
    /// from the attach table (OFD locks or PID + start time: PID reuse and
    /// zombies are not mistaken for the owner). Lock-free: safe beside
    /// allocs, frees, adopts and other recoveries. O(capacity) plus one
    /// liveness probe (syscall) per distinct owner. Killed half-way: the
    /// slots not yet freed are freed by the next call. The calling handle's
    /// own slots are never freed (it is alive). Throws std::bad_alloc.
    std::size_t recover_stale();
    /// Frees every slot; returns how many were allocated. For a pool that no
    /// process uses at the moment (slots in use are freed under their
    /// owners). O(capacity). Throws shmkit::error (attach_table_full) if
    /// the handle must claim an attach entry first (in a forked child) and
    /// none is free.
    std::size_t reset();

    /// Whether this handle recovers dead owners' slots by itself when an
    /// alloc would wait (see pool_options::auto_recover).
    bool auto_recover() const noexcept { return auto_recover_; }
    void set_auto_recover(bool on) noexcept { auto_recover_ = on; }

    // ---- Raw slot access -------------------------------------------------------

    /// Slot area: slot i is at data_ptr() + i * elem_size(). Reading or
    /// writing slots through it is up to the caller (no allocation check).
    void* data_ptr() const noexcept { return slots_; }
    /// Slot i. Throws std::out_of_range, shmkit::error if not allocated.
    void* ptr(std::size_t i) const
    {
        check_allocated(i);
        return slot(i);
    }
    /// A zero-copy read view of slot i (elem_size() bytes). Concurrent
    /// writes to the slot show through it. Throws as ptr().
    boost::span<const std::byte> view(std::size_t i) const
    {
        return {static_cast<const std::byte*>(ptr(i)), elem_size_};
    }

    // ---- Information -----------------------------------------------------------

    /// Sizes, allocation state and counters (relaxed loads, not one atomic
    /// snapshot). O(capacity + attach-table entries), a liveness probe per
    /// live entry. Throws std::bad_alloc.
    pool_stats stats() const;
    /// The memfd behind a memfd pool (share it with other processes), -1
    /// for any other kind of pool. See also fd().
    int memfd() const noexcept { return path().rfind("memfd:", 0) == 0 ? fd() : -1; }
    /// The Perl module's names for the eventfd members of structure_base.
    int fileno() const noexcept { return eventfd(); }
    std::uint64_t eventfd_consume() { return consume_notifications(); }

protected:
    pool_base(segment seg, const pool_spec& spec, const pool_options& opt);
    pool_base(pool_base&&) noexcept;
    ~pool_base() = default;

    static segment_layout layout(const pool_spec& spec, std::size_t capacity, const pool_options& opt);
    static segment_expectation expectation(const pool_spec& spec, std::size_t capacity);
    static segment open(open_only_t, const std::string& path, const pool_spec& spec);
    static segment open(create_only_t, const std::string& path, std::size_t capacity, const pool_spec& spec,
                        const pool_options& opt);
    static segment open(open_or_create_t, const std::string& path, std::size_t capacity, const pool_spec& spec,
                        const pool_options& opt);
    static segment open_anonymous(std::size_t capacity, const pool_spec& spec, const pool_options& opt);
    static segment open_memfd(const std::string& name, std::size_t capacity, const pool_spec& spec,
                              const pool_options& opt);
    static segment open_fd(int fd, const pool_spec& spec);

    char* slot(std::size_t i) const noexcept { return slots_ + i * elem_size_; }

    void check_index(std::size_t i) const
    {
        if (SHMKIT_UNLIKELY(i >= capacity_)) throw_index(i);
    }
    /// Range and allocation check of element operations: one load of the
    /// owner word. Relaxed: the check is not atomic with the operation that
    /// follows anyway (see pool<T>), and the element access orders itself.
    void check_allocated(std::size_t i) const
    {
        check_index(i);
        if (SHMKIT_UNLIKELY(owners_[i].load(std::memory_order_relaxed) == 0)) throw_not_allocated(i);
    }

    /// Allocates a slot (alloc, or alloc(timeout)), runs `set(i)` on it and
    /// returns it; frees it again if `set` throws.
    template <class Set>
    std::optional<std::size_t> alloc_then(std::optional<std::size_t> i, Set&& set)
    {
        if (!i) return i;
        try {
            set(*i);
        } catch (...) {
            free(*i);
            throw;
        }
        return i;
    }

    template <class Rep, class Period>
    static clock::time_point deadline(const std::chrono::duration<Rep, Period>& timeout)
    {
        return sync::deadline_after(timeout);
    }

private:
    friend class shmkit::slot_guard;

    pool_handle_line& line(std::uint64_t owner_id) const noexcept { return lines_[owner_id_index(owner_id)]; }
    /// A counter of our own line (see pool_handle_line: load + store).
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept
    {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    /// Acquire: the previous owner's writes to the slot (before its release
    /// exchange in free) happen before ours.
    bool claim(std::size_t i, std::uint64_t me) noexcept
    {
        std::uint64_t expected = 0;
        return owners_[i].compare_exchange_strong(expected, me, std::memory_order_acq_rel,
                                                  std::memory_order_relaxed);
    }
    /// After a free (which ordered itself with a seq_cst RMW or fence): wake
    /// the blocked allocs if any announced themselves.
    void wake_sleepers() noexcept
    {
        std::uint32_t w = control_->wake.load(std::memory_order_seq_cst);
        if (SHMKIT_UNLIKELY(w & 1)) wake_all(w);
    }
    void wake_all(std::uint32_t seen) noexcept;
    /// What follows a single free's RMW: the cursor moves to the slot, the
    /// statistics count it, blocked allocs are woken.
    void freed(std::size_t i, std::uint64_t me) noexcept
    {
        cursor_.store(i, std::memory_order_relaxed);
        bump(line(me).frees, 1);
        wake_sleepers();
    }

    std::optional<std::size_t> alloc_slow(std::optional<clock::time_point> deadline);
    std::optional<std::vector<std::size_t>> alloc_n_until(std::size_t n, std::optional<clock::time_point> deadline);
    bool claim_n(boost::span<std::size_t> out, std::uint64_t me) noexcept;
    /// Waits until a free may have happened, `deadline` passes or (with
    /// auto_recover) a poll interval ends. Returns false once the deadline
    /// has passed.
    bool wait_for_free(std::uint32_t seen, std::optional<clock::time_point> deadline);
    std::uint32_t announce_sleeper() noexcept;
    void note_waiting(std::uint64_t me, int delta) noexcept;
    /// Counts the calling thread as waiting for the scope (also when what
    /// runs inside throws).
    struct waiting_scope;
    /// Whether at least `n` slots look free now (a read-only scan).
    bool enough_free(std::size_t n) const noexcept;
    slot_guard make_guard(std::optional<std::size_t> i) noexcept;

    void check_batch(std::size_t n) const;
    [[noreturn]] void throw_index(std::size_t i) const;
    [[noreturn]] void throw_not_allocated(std::size_t i) const;

    attachment* att_;
    pool_control* control_;
    pool_counters* counters_;
    pool_handle_line* lines_;
    std::atomic<std::uint64_t>* owners_;
    char* slots_;
    std::size_t capacity_;
    std::size_t elem_size_;
    std::uint32_t n_lines_;
    element_type type_;
    bool auto_recover_;
    std::atomic<std::size_t> cursor_{0};
};

} // namespace detail
} // namespace shmkit

#endif
