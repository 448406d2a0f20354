// shmkit/detail/buffer_base.hpp: what buffer<T> and str_buffer share:
// opening, the rwlock, the seqlock around bulk writes, raw byte access,
// stats and eventfd notification.
//
// Payload layout (the segment's data area):
//
//   +0    buffer_control: the seqlock (one cache line)
//   +64   buffer_counters: bulk-write recoveries (one cache line)
//   +128  capacity elements of `stride` bytes each
//
// Crash behaviour of a bulk write (set_slice, fill, set_raw, str_buffer::set):
//   1. take the rwlock exclusively (unless this handle holds it)
//   2. seqlock write_begin: sequence odd, readers of slices hold back
//   3. copy the data
//   4. seqlock write_end: sequence even, readers proceed
//   5. release the rwlock
// Killed between 2 and 4: the rwlock names a dead writer and the sequence
// stays odd. A reader stalled on the odd sequence for one poll interval
// tries the write lock, which recovers the dead writer; any holder of the
// write lock, or of the lock shared, that finds the sequence odd makes it
// even again (counted in stats().bulk_recoveries) and marks the buffer torn:
// recovered() says so to every holder of the lock until a writer releases
// it with unlock(). The interrupted write stays partially applied: bulk
// writes are atomic with respect to readers, not with respect to the death
// of their writer.
#ifndef SHMKIT_DETAIL_BUFFER_BASE_HPP
#define SHMKIT_DETAIL_BUFFER_BASE_HPP

#include <shmkit/detail/structure_base.hpp>
#include <shmkit/sync/seqlock.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shmkit {

/// Counters and facts about a buffer or str_buffer.
struct buffer_stats {
    std::size_t capacity = 0;      ///< elements
    std::size_t elem_size = 0;     ///< bytes per element (str_buffer: the width)
    std::size_t mmap_size = 0;     ///< bytes mapped
    element_type type = element_type::none;
    std::uint64_t lock_recoveries = 0; ///< dead writers/readers recovered by the rwlock
    std::uint64_t bulk_recoveries = 0; ///< bulk writes interrupted by a death and closed
    segment_stats segment;             ///< attach table and liveness
};

namespace detail {

struct buffer_control {
    sync::seqlock seq;
};

struct alignas(cache_line_size) buffer_counters {
    std::atomic<std::uint64_t> bulk_recoveries;
    /// Non-zero from the closing of a bulk write that a death interrupted
    /// (the data may be half-written) until a holder of the write lock
    /// releases it through unlock(): what recovered() reports besides the
    /// rwlock's own mark, which any release clears, an internal one too
    /// (a stalled reader's probe, a set_slice taking the lock itself), and
    /// which these repair nothing of. Zero (none) in older segments.
    std::atomic<std::uint32_t> torn;
};

inline constexpr std::size_t buffer_payload_offset = sizeof(buffer_control) + sizeof(buffer_counters);
static_assert(buffer_payload_offset == 2 * cache_line_size);

/// The fixed facts of one buffer type.
struct buffer_spec {
    element_type type;
    std::uint32_t elem_size;  ///< sizeof(T), or the string width
    std::uint32_t stride;     ///< bytes per slot
    const char* size_name;    ///< "element size" or "string width"
};

/// The members shared by buffer<T> and str_buffer (their public API).
///
/// Thread/process safety: every member may be called from any number of
/// processes at once, and from threads of one process sharing a handle,
/// except moving/destroying the handle and create_eventfd() /
/// attach_eventfd(), which replace this handle's notifier and need the
/// handle to themselves. The observers (capacity() ... get_segment()) are
/// O(1), noexcept, no syscall.
///
/// Exceptions common to every blocking member (lock*, bulk reads and
/// writes): std::system_error (resource_deadlock_would_occur) when the
/// calling thread already holds the lock in a way that would deadlock,
/// std::system_error (resource_unavailable_try_again) when it already holds
/// 16 shmkit locks, and shmkit::error in a forked child whose first use
/// cannot claim an attach entry (errc::attach_table_full). The lock is not
/// left held by a call that throws.
class buffer_base : public structure_base {
public:
    buffer_base(const buffer_base&) = delete;
    buffer_base& operator=(const buffer_base&) = delete;

    // ---- Locking: the crash-recoverable rwlock of the buffer. ----------------
    // Process- and thread-safe; holding is recorded per thread. A thread that
    // locks again what it holds gets std::system_error instead of a
    // deadlock; unlocking what it does not hold throws std::system_error
    // (operation_not_permitted). A holder that dies is recovered by the next
    // blocking or timed acquirer within ~10 ms (try_lock / try_lock_shared
    // never recover); recovered() tells the acquirers, while they hold the
    // lock, until a writer unlocks. Element operations of buffer<T> do not
    // take this lock. Costs and crash windows: sync/rwlock.hpp.
    // lock(), try_lock(), try_lock_for() and try_lock_until() also close a
    // bulk write that a dead writer left open (the seqlock,
    // stats().bulk_recoveries): O(1). With the _for/_until members the
    // buffer meets TimedLockable and SharedTimedLockable (std::unique_lock
    // and std::shared_lock with a timeout or a deadline work).

    void lock();
    bool try_lock();
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d)
    {
        if (!lock_.try_lock_for(d)) return false;
        close_interrupted_write();
        return true;
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        if (!lock_.try_lock_until(tp)) return false;
        close_interrupted_write();
        return true;
    }
    /// Releases the write lock; the holder is deemed to have repaired what
    /// an interrupted bulk write left (see recovered()).
    void unlock();
    // The shared acquisitions also close a bulk write that a dead writer
    // left open (recovered by this acquisition or an earlier one): no
    // writer runs while they hold the lock, and lock-free readers would
    // otherwise wait for the next writer.
    void lock_shared()
    {
        lock_.lock_shared();
        close_interrupted_write();
    }
    bool try_lock_shared()
    {
        if (!lock_.try_lock_shared()) return false;
        close_interrupted_write();
        return true;
    }
    template <class Rep, class Period>
    bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d)
    {
        if (!lock_.try_lock_shared_for(d)) return false;
        close_interrupted_write();
        return true;
    }
    template <class Clock, class Duration>
    bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        if (!lock_.try_lock_shared_until(tp)) return false;
        close_interrupted_write();
        return true;
    }
    void unlock_shared() { lock_.unlock_shared(); }
    /// The Perl module's names.
    void lock_wr() { lock(); }
    void unlock_wr() { unlock(); }
    void lock_rd() { lock_shared(); }
    void unlock_rd() { unlock_shared(); }
    /// True while the calling thread holds the lock, if its acquisition
    /// recovered a dead holder, or a dead writer was taken over earlier and
    /// no writer has unlocked since, or a bulk write interrupted by a death
    /// was closed and no writer has released the lock with unlock() since
    /// (whoever closed it: a stalled reader too). The data may then be
    /// half-updated. O(1).
    bool recovered() const noexcept
    {
        return lock_.recovered() ||
               ((lock_.holds_exclusive() || lock_.holds_shared()) && counters_->torn.load(std::memory_order_relaxed));
    }

    // ---- Information --------------------------------------------------------

    std::size_t capacity() const noexcept { return capacity_; }
    /// Bytes of one element (str_buffer: the width, the longest value).
    std::size_t elem_size() const noexcept { return spec_.elem_size; }
    /// Sizes, and the lock, bulk-write and segment counters (see
    /// segment::stats()): relaxed loads, not one atomic snapshot.
    /// O(attach-table high-water mark), one liveness probe (syscall) per
    /// entry in use. Throws std::bad_alloc. Reads only.
    buffer_stats stats() const;
    // path(), fd(), created(), mmap_size(), get_segment(), sync(), unlink()
    // and the eventfd members: see detail::structure_base.

    // ---- Raw bytes of the element area ---------------------------------------

    /// Copies `n` bytes from `byte_offset` of the element area: a snapshot
    /// consistent with bulk writes. Throws std::out_of_range (nothing read)
    /// if the range is outside the element area, std::bad_alloc.
    /// O(n) per attempt, retried when a bulk write overlaps; takes no lock,
    /// but waits (spins, then sleeps) while a bulk write is in progress, and
    /// after ~10 ms of a stalled write tries the write lock to recover a
    /// dead writer. Runs once, without the seqlock, when the calling thread
    /// holds the lock. A reader killed here holds nothing.
    std::string get_raw(std::size_t byte_offset, std::size_t n) const;
    /// Writes `bytes` at `byte_offset`: a bulk write (write lock + seqlock,
    /// see the header comment); O(bytes.size()). buffer<T>: every element
    /// written whole (one covered in part: a CAS of the whole element), so
    /// that element reads beside it never see one torn. Blocks for the write lock
    /// unless the calling thread holds it exclusively; throws
    /// std::system_error if it holds it shared. Throws std::out_of_range,
    /// nothing written. Killed half-way: partially written.
    void set_raw(std::size_t byte_offset, std::string_view bytes);

protected:
    buffer_base(segment seg, const buffer_spec& spec);
    buffer_base(buffer_base&&) noexcept;
    ~buffer_base() = default;

    static segment_layout layout(const buffer_spec& spec, std::size_t capacity, const structure_options& opt);
    static segment_expectation expectation(const buffer_spec& spec, std::size_t capacity);
    static segment open(open_only_t, const std::string& path, const buffer_spec& spec);
    static segment open(create_only_t, const std::string& path, std::size_t capacity, const buffer_spec& spec,
                        const structure_options& opt);
    static segment open(open_or_create_t, const std::string& path, std::size_t capacity,
                        const buffer_spec& spec, const structure_options& opt);
    static segment open_anonymous(std::size_t capacity, const buffer_spec& spec, const structure_options& opt);
    static segment open_memfd(const std::string& name, std::size_t capacity, const buffer_spec& spec,
                              const structure_options& opt);
    static segment open_fd(int fd, const buffer_spec& spec);

    char* slot(std::size_t i) const noexcept { return elems_ + i * spec_.stride; }
    std::size_t stride() const noexcept { return spec_.stride; }

    void check_index(std::size_t i) const
    {
        if (SHMKIT_UNLIKELY(i >= capacity_)) throw_index(i);
    }
    void check_range(std::size_t from, std::size_t count) const
    {
        if (SHMKIT_UNLIKELY(from > capacity_ || count > capacity_ - from)) throw_range(from, count);
    }
    [[noreturn]] void throw_index(std::size_t i) const;
    [[noreturn]] void throw_range(std::size_t from, std::size_t count) const;

    /// Runs `write` as a bulk write (see the header comment). Reentrant for a
    /// thread that already holds the write lock. Throws std::system_error if
    /// the calling thread holds the lock shared (upgrading would deadlock).
    template <class F>
    void bulk_write(F&& write)
    {
        const bool held = lock_.holds_exclusive();
        if (!held) lock();
        seq().write_begin();
        try {
            write();
        } catch (...) {
            seq().write_end();
            if (!held) lock_.unlock();
            throw;
        }
        seq().write_end();
        if (!held) lock_.unlock();
    }

    /// Runs `copy` until it observed a state no bulk write overlapped. Under
    /// a lock held by the calling thread (shared or exclusive) it runs once.
    template <class F>
    void bulk_read(F&& copy) const
    {
        if (lock_.holds_shared() || lock_.holds_exclusive()) {
            copy();
            return;
        }
        seq().read(copy, [this] { recover_stalled_writer(); });
    }

private:
    sync::seqlock& seq() const noexcept { return control_->seq; }
    void close_interrupted_write() const noexcept;
    void store_raw(std::size_t byte_offset, const char* src, std::size_t n) noexcept;
    void recover_stalled_writer() const;

    buffer_spec spec_;
    mutable sync::rwlock lock_;
    buffer_control* control_;
    buffer_counters* counters_;
    char* elems_;
    std::size_t capacity_;
};

} // namespace detail
} // namespace shmkit

#endif
