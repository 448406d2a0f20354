// shmkit/detail/atomic_elements.hpp: the lock-free element operations that
// buffer<T> and pool<T> share.
#ifndef SHMKIT_DETAIL_ATOMIC_ELEMENTS_HPP
#define SHMKIT_DETAIL_ATOMIC_ELEMENTS_HPP

#include <shmkit/detail/element_traits.hpp>

#include <atomic>
#include <cstddef>
#include <type_traits>

namespace shmkit {
namespace detail {

/// get, set, xchg, cas, cmpxchg and, for integers, add, incr, decr on the
/// elements of `Derived`, which provides (and befriends this class for)
///
///     std::atomic<storage>& element(std::size_t i) const;
///
/// checking `i` (and whatever else the structure requires) and throwing
/// before anything is touched. Each operation is then one hardware atomic
/// (floats through the unsigned integer of their width): get() acquire,
/// set() release, the read-modify-writes acq_rel. O(1), no syscall, never
/// blocks; a process killed in one leaves the element changed or not.
template <class Derived, class T>
class atomic_elements {
    static_assert(element_traits<T>::supported,
                  "shmkit: the element type must be one of int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, "
                  "int64_t, uint64_t, float, double");

protected:
    using storage = typename element_traits<T>::storage;
    using atomic_storage = std::atomic<storage>;
    static_assert(sizeof(atomic_storage) == sizeof(T) && atomic_storage::is_always_lock_free,
                  "element atomics must be lock-free and as large as the element");

public:
    /// Element i (acquire load).
    T get(std::size_t i) const { return from(at(i).load(std::memory_order_acquire)); }
    /// Stores `v` in element i (release store).
    void set(std::size_t i, T v) { at(i).store(to(v), std::memory_order_release); }
    /// Replaces element i by `v`; returns the old value.
    T xchg(std::size_t i, T v) { return from(at(i).exchange(to(v), std::memory_order_acq_rel)); }
    /// Sets element i to `desired` if it equals `expected` (bitwise, also for
    /// floats: -0.0 and 0.0 differ, a NaN equals the same NaN); true if it did.
    bool cas(std::size_t i, T expected, T desired)
    {
        storage e = to(expected);
        return at(i).compare_exchange_strong(e, to(desired), std::memory_order_acq_rel, std::memory_order_acquire);
    }
    /// As cas(), but returns the value found (== expected when it succeeded).
    T cmpxchg(std::size_t i, T expected, T desired)
    {
        storage e = to(expected);
        at(i).compare_exchange_strong(e, to(desired), std::memory_order_acq_rel, std::memory_order_acquire);
        return from(e);
    }

    // Integer elements only. Arithmetic wraps around (two's complement).

    /// Adds `d`; returns the new value. incr()/decr() add 1 / subtract 1.
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    T add(std::size_t i, T d)
    {
        return static_cast<T>(at(i).fetch_add(to(d), std::memory_order_acq_rel) + to(d));
    }
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    T incr(std::size_t i)
    {
        return add(i, T(1));
    }
    template <class U = T, class = std::enable_if_t<std::is_integral_v<U>>>
    T decr(std::size_t i)
    {
        return static_cast<T>(at(i).fetch_sub(storage(1), std::memory_order_acq_rel) - storage(1));
    }

protected:
    atomic_elements() = default;
    ~atomic_elements() = default;

    /// Element i, checked by the structure.
    atomic_storage& at(std::size_t i) const { return static_cast<const Derived&>(*this).element(i); }
    static storage to(T v) noexcept { return to_storage(v); }
    static T from(storage s) noexcept { return from_storage<T>(s); }
};

} // namespace detail
} // namespace shmkit

#endif
