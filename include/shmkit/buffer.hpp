// shmkit/buffer.hpp: a typed, fixed-capacity array in shared memory.
#ifndef SHMKIT_BUFFER_HPP
#define SHMKIT_BUFFER_HPP

#include <shmkit/detail/buffer_base.hpp>
#include <shmkit/detail/atomic_elements.hpp>
#include <shmkit/detail/element_traits.hpp>

#include <boost/core/span.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace shmkit {

namespace detail {

/// The element types of buffer<T> (see detail/element_traits.hpp).
template <class T> using buffer_element = element_traits<T>;

} // namespace detail

/// A fixed-capacity array of `T` in shared memory that many processes read
/// and write at once: the C++ counterpart of Data::Buffer::Shared.
///
/// `T` is one of int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t,
/// int64_t, uint64_t, float, double.
///
/// Element operations (get, set, xchg, cas, cmpxchg, add, incr, decr,
/// fetch_and/or/xor) are lock-free atomics (floats through integers of the
/// same width): safe from any number of threads and processes, O(1), no
/// syscall, they never block, they throw std::out_of_range for a bad index
/// (nothing touched) and nothing else, and a process killed in one leaves
/// the element either changed or not. get() has acquire, set()
/// release and the read-modify-writes acq_rel ordering. They do not take the
/// buffer's lock: holding lock() excludes other *bulk* operations and other
/// lockers, not element operations.
///
/// Bulk operations (slice, set_slice, fill, clear, get_raw, set_raw) are
/// consistent with each other: a bulk write runs under the write lock inside
/// a seqlock, and slice() copies until it saw no bulk write overlap it, so
/// it never returns a half-applied set_slice or fill. Against concurrent
/// *element* writes, slice() guarantees only that each element it returns
/// is a value that element held (no torn element); the snapshot as a whole
/// may mix element values from before and after such writes.
/// Bulk operations are O(elements touched); readers take no lock but wait
/// while a bulk write is in progress; writers block for the write lock. See
/// detail::buffer_base for what they throw besides std::out_of_range (a
/// thread holding the lock shared gets std::system_error from a bulk write).
///
/// Crash safety: see detail/buffer_base.hpp. A holder of the lock (shared or
/// exclusive) killed at any point is recovered by the next process that
/// needs the lock, within about 10 ms; a bulk write interrupted by a death
/// stays partially applied, and readers go on (stats().bulk_recoveries).
///
/// Handles: move-only, and may be shared by the threads of a process.
/// Holding the lock is recorded per thread: a thread's bulk operations run
/// inside the lock that thread holds, never inside another thread's.
///
/// Opening and creating throw what segment does (shmkit::error naming the
/// path and the mismatch, std::invalid_argument) and shmkit::error
/// (errc::corrupt_header) when the header's element stride, capacity and
/// data size do not fit together; a refused file is left unchanged.
template <class T>
class buffer : public detail::buffer_base, public detail::atomic_elements<buffer<T>, T> {
    static_assert(detail::buffer_element<T>::supported,
                  "shmkit::buffer<T>: T must be one of int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, "
                  "int64_t, uint64_t, float, double (use str_buffer for strings)");
    using ops = detail::atomic_elements<buffer<T>, T>;
    friend ops;
    using typename ops::storage;
    using typename ops::atomic_storage;
    using ops::to;
    using ops::from;

public:
    using value_type = T;
    static constexpr element_type type = detail::buffer_element<T>::id;

    /// Creates a file-backed buffer of `capacity` elements, all zero; fails
    /// (EEXIST) if `path` exists. Throws std::invalid_argument if capacity is
    /// 0 or too large, shmkit::error for the file system.
    buffer(create_only_t, const std::string& path, std::size_t capacity, const structure_options& opt = {})
        : buffer_base(open(create_only, path, capacity, spec(), opt), spec())
    {
    }
    /// Opens `path` if it exists (refusing another element type or another
    /// capacity with shmkit::error, errc::type_mismatch or
    /// errc::capacity_mismatch, naming both), or creates it.
    buffer(open_or_create_t, const std::string& path, std::size_t capacity, const structure_options& opt = {})
        : buffer_base(open(open_or_create, path, capacity, spec(), opt), spec())
    {
    }
    /// Opens an existing buffer; the capacity comes from its header.
    buffer(open_only_t, const std::string& path) : buffer_base(open(open_only, path, spec()), spec()) {}

    /// A buffer in anonymous shared memory, shared with children forked later.
    /// Throws std::invalid_argument (capacity 0 or too large), shmkit::error.
    static buffer anonymous(std::size_t capacity, const structure_options& opt = {})
    {
        return buffer(open_anonymous(capacity, spec(), opt));
    }
    /// A buffer in a sealed memfd labelled `name`; share it by passing fd().
    static buffer memfd(const std::string& name, std::size_t capacity, const structure_options& opt = {})
    {
        return buffer(open_memfd(name, capacity, spec(), opt));
    }
    /// Opens the buffer behind an fd received from another process (the
    /// caller keeps its fd).
    static buffer from_fd(int fd) { return buffer(open_fd(fd, spec())); }

    buffer(buffer&&) noexcept = default;

    // ---- Elements: lock-free, O(1), throw std::out_of_range for a bad index,
    // a kill leaves the element changed or not (see the class comment).

    // get, set, xchg, cas, cmpxchg, add, incr, decr: detail::atomic_elements.

    /// Bitwise and/or/xor; return the old value (the Perl module's atomic_and/or/xor).
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    T fetch_and(std::size_t i, T mask)
    {
        check_index(i);
        return from(raw(i).fetch_and(to(mask), std::memory_order_acq_rel));
    }
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    T fetch_or(std::size_t i, T mask)
    {
        check_index(i);
        return from(raw(i).fetch_or(to(mask), std::memory_order_acq_rel));
    }
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    T fetch_xor(std::size_t i, T mask)
    {
        check_index(i);
        return from(raw(i).fetch_xor(to(mask), std::memory_order_acq_rel));
    }
    /// Adds deltas[k] to element from+k, each atomically (not as one bulk
    /// write, and without the lock or the seqlock: a concurrent slice() may
    /// see some deltas applied and not others). Lock-free, O(n). Throws
    /// std::out_of_range before touching anything. Killed half-way: some
    /// deltas are applied and the others not, each element whole.
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    void add_slice(std::size_t from_index, boost::span<const T> deltas)
    {
        check_range(from_index, deltas.size());
        atomic_storage* const dst = &raw(from_index);
        const T* const d = deltas.data();
        for (std::size_t k = 0; k < deltas.size(); ++k) dst[k].fetch_add(to(d[k]), std::memory_order_acq_rel);
    }

    // ---- Bulk: consistent with each other (see the class comment). ---------

    /// Copies elements [from, from + count). O(count) per attempt, retried
    /// when a bulk write overlaps; waits while a bulk write is in progress,
    /// and recovers a writer that died in one (detail/buffer_base.hpp,
    /// get_raw()). Throws std::out_of_range (nothing copied), std::bad_alloc.
    /// A reader killed here holds nothing.
    std::vector<T> slice(std::size_t from_index, std::size_t count) const
    {
        check_range(from_index, count);
        std::vector<T> out(count);
        copy_out(from_index, out.data(), count);
        return out;
    }
    /// Copies out.size() elements starting at `from` into `out`. As above
    /// (throws std::out_of_range, nothing copied).
    void slice(std::size_t from_index, boost::span<T> out) const
    {
        check_range(from_index, out.size());
        copy_out(from_index, out.data(), out.size());
    }
    /// Writes `values` at `from` as one bulk write. Throws std::out_of_range
    /// (nothing written). O(values.size()). Reentrant for a thread that
    /// holds the write lock; throws std::system_error for a thread that
    /// holds it shared. Killed half-way: some elements hold the new values,
    /// the others the old ones, each element whole (detail/buffer_base.hpp).
    void set_slice(std::size_t from_index, boost::span<const T> values)
    {
        check_range(from_index, values.size());
        bulk_write([&] { store_each(&raw(from_index), values.data(), values.size()); });
    }
    /// Sets every element to `v` as one bulk write. O(capacity); blocks and
    /// throws as set_slice() (no std::out_of_range). Killed half-way: some
    /// elements are set, the others not, each element whole.
    void fill(T v)
    {
        bulk_write([&] {
            // Locals: every atomic store is a compiler barrier, so members
            // would be reloaded each iteration and the loop not unrolled.
            atomic_storage* const dst = &raw(0);
            const std::size_t n = capacity();
            const storage s = to(v);
#pragma GCC unroll 8
            for (std::size_t k = 0; k < n; ++k) dst[k].store(s, std::memory_order_relaxed);
        });
    }
    /// Sets every element to zero (+0.0 for floats).
    void clear() { fill(T(0)); }

    // ---- Views ---------------------------------------------------------------

    /// The whole element area, zero-copy (the Perl module's as_scalar). Plain
    /// accesses through it are not atomic: use them under lock() /
    /// lock_shared(), or for data no other process writes meanwhile (the
    /// lock does not exclude element operations). O(1), no syscall.
    boost::span<T> view() const noexcept { return {data(), capacity()}; }
    /// Element 0 of the element area (as view()).
    T* data() const noexcept { return reinterpret_cast<T*>(slot(0)); }
    /// Pointer to element i (the Perl module's ptr_at). Throws std::out_of_range.
    T* ptr(std::size_t i) const
    {
        check_index(i);
        return data() + i;
    }

private:
    explicit buffer(segment seg) : buffer_base(std::move(seg), spec()) {}

    static constexpr detail::buffer_spec spec() noexcept
    {
        return {type, sizeof(T), sizeof(T), "element size"};
    }

    /// Element i, unchecked (bulk loops check their range once).
    atomic_storage& raw(std::size_t i) const noexcept
    {
        return reinterpret_cast<atomic_storage*>(slot(0))[i];
    }
    /// Element i for the element operations (detail::atomic_elements).
    atomic_storage& element(std::size_t i) const
    {
        check_index(i);
        return raw(i);
    }

    // The element loops of the bulk operations keep everything in locals:
    // each atomic access is a compiler barrier, so members would otherwise be
    // reloaded every iteration and the loop neither unrolled nor scheduled.
    void copy_out(std::size_t from_index, T* out, std::size_t count) const
    {
        const atomic_storage* const src = &raw(from_index);
        bulk_read([src, out, count] {
#pragma GCC unroll 8
            for (std::size_t k = 0; k < count; ++k) out[k] = from(src[k].load(std::memory_order_relaxed));
        });
    }
    static void store_each(atomic_storage* dst, const T* values, std::size_t count) noexcept
    {
#pragma GCC unroll 8
        for (std::size_t k = 0; k < count; ++k) dst[k].store(to(values[k]), std::memory_order_relaxed);
    }
};

using buffer_i8 = buffer<std::int8_t>;
using buffer_u8 = buffer<std::uint8_t>;
using buffer_i16 = buffer<std::int16_t>;
using buffer_u16 = buffer<std::uint16_t>;
using buffer_i32 = buffer<std::int32_t>;
using buffer_u32 = buffer<std::uint32_t>;
using buffer_i64 = buffer<std::int64_t>;
using buffer_u64 = buffer<std::uint64_t>;
using buffer_f32 = buffer<float>;
using buffer_f64 = buffer<double>;

} // namespace shmkit

#endif
