// shmkit/pool.hpp: a pool of numeric slots in shared memory with atomic
// element operations; also brings in raw_pool and str_pool.
#ifndef SHMKIT_POOL_HPP
#define SHMKIT_POOL_HPP

#include <shmkit/detail/atomic_elements.hpp>
#include <shmkit/detail/element_traits.hpp>
#include <shmkit/detail/pool_base.hpp>
#include <shmkit/raw_pool.hpp>
#include <shmkit/str_pool.hpp>

#include <atomic>
#include <chrono>
#include <type_traits>

namespace shmkit {

/// A fixed number of slots holding one `T` each, which processes allocate,
/// use and free: the C++ counterpart of Data::Pool::Shared::I64/I32/F64.
/// `T` is int64_t, int32_t, double, or any other element type of
/// buffer<T> (int8_t ... uint64_t, float). The allocator, its crash
/// behaviour and the members shared with raw_pool and str_pool:
/// detail/pool_base.hpp.
///
/// Element operations (get, set, xchg, cas, cmpxchg, add, incr, decr) are
/// lock-free atomics on the slot (floats through integers of the same
/// width), safe from any thread and process, O(1), no syscall, never
/// blocking: get() has acquire, set() release and the read-modify-writes
/// acq_rel ordering; a process killed in one leaves the value changed or
/// not. Each first checks that the slot is allocated (one load of its owner
/// word) and throws std::out_of_range for an index >= capacity() or
/// shmkit::error (errc::slot_not_allocated) for a free slot, changing
/// nothing. That check is not atomic with the operation: a slot freed by
/// another process at the same moment may still be read or written once.
///
/// Opening and creating throw as raw_pool's (shmkit::error naming the path
/// and the mismatch, std::invalid_argument).
template <class T>
class pool : public detail::pool_base, public detail::atomic_elements<pool<T>, T> {
    static_assert(detail::element_traits<T>::supported,
                  "shmkit::pool<T>: T must be one of int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, "
                  "int64_t, uint64_t, float, double (raw_pool for bytes, str_pool for strings)");
    using ops = detail::atomic_elements<pool<T>, T>;
    friend ops;
    using typename ops::storage;
    using typename ops::atomic_storage;
    using ops::to;

public:
    using value_type = T;
    static constexpr element_type type = detail::element_traits<T>::id;

    /// Creates a file-backed pool of `capacity` free slots (all zero); fails
    /// (EEXIST) if `path` exists. Throws std::invalid_argument for capacity
    /// 0 or too large, shmkit::error for the file system.
    pool(create_only_t, const std::string& path, std::size_t capacity, const pool_options& opt = {})
        : pool_base(open(create_only, path, capacity, spec(), opt), spec(), opt)
    {
    }
    /// Opens `path` if it exists (refusing another kind, element type or
    /// capacity with shmkit::error naming both), or creates it.
    pool(open_or_create_t, const std::string& path, std::size_t capacity, const pool_options& opt = {})
        : pool_base(open(open_or_create, path, capacity, spec(), opt), spec(), opt)
    {
    }
    /// Opens an existing pool; the capacity comes from its header.
    explicit pool(open_only_t, const std::string& path, const pool_options& opt = {})
        : pool_base(open(open_only, path, spec()), spec(), opt)
    {
    }
    /// A pool in anonymous shared memory, shared with children forked later.
    static pool anonymous(std::size_t capacity, const pool_options& opt = {})
    {
        return pool(open_anonymous(capacity, spec(), opt), opt);
    }
    /// memfd() without arguments: the fd of a memfd pool (pool_base::memfd()).
    using pool_base::memfd;
    /// A pool in a sealed memfd labelled `name`; share it by passing memfd().
    static pool memfd(const std::string& name, std::size_t capacity, const pool_options& opt = {})
    {
        return pool(open_memfd(name, capacity, spec(), opt), opt);
    }
    /// Opens the pool behind an fd received from another process (the
    /// caller keeps its fd).
    static pool from_fd(int fd, const pool_options& opt = {}) { return pool(open_fd(fd, spec()), opt); }

    pool(pool&&) noexcept = default;

    // get, set, xchg, cas, cmpxchg, add, incr, decr: detail::atomic_elements
    // (checks, cost and ordering: see the class comment).

    // ---- Allocate and set in one call ------------------------------------------

    /// alloc() then set(i, v).
    std::optional<std::size_t> alloc_set(T v)
    {
        return alloc_then(alloc(), [&](std::size_t i) { raw(i).store(to(v), std::memory_order_release); });
    }
    /// alloc(timeout) then set: nothing on timeout.
    template <class Rep, class Period>
    std::optional<std::size_t> alloc_set(T v, const std::chrono::duration<Rep, Period>& timeout)
    {
        return alloc_then(alloc(timeout), [&](std::size_t i) { raw(i).store(to(v), std::memory_order_release); });
    }
    /// try_alloc() then set: nothing if no slot is free.
    std::optional<std::size_t> try_alloc_set(T v)
    {
        return alloc_then(try_alloc(), [&](std::size_t i) { raw(i).store(to(v), std::memory_order_release); });
    }

    /// Slot i as a T (checked as get()); slots are contiguous from data().
    T* ptr(std::size_t i) const { return static_cast<T*>(pool_base::ptr(i)); }
    T* data() const noexcept { return static_cast<T*>(data_ptr()); }

private:
    pool(segment seg, const pool_options& opt) : pool_base(std::move(seg), spec(), opt) {}

    static constexpr detail::pool_spec spec() noexcept { return {type, sizeof(T), sizeof(T), "element size"}; }

    /// Indexed with the element size known at compile time: no multiply
    /// by a runtime slot size on the element hot paths.
    atomic_storage& raw(std::size_t i) const noexcept { return static_cast<atomic_storage*>(data_ptr())[i]; }
    /// Slot i for the element operations: checked in range and allocated.
    atomic_storage& element(std::size_t i) const
    {
        check_allocated(i);
        return raw(i);
    }
};

} // namespace shmkit

#endif
