// shmkit/detail/element_traits.hpp: the numeric element types of buffer<T>
// and pool<T>, and how they are accessed atomically.
#ifndef SHMKIT_DETAIL_ELEMENT_TRAITS_HPP
#define SHMKIT_DETAIL_ELEMENT_TRAITS_HPP

#include <shmkit/detail/header.hpp>

#include <cstdint>
#include <cstring>

namespace shmkit {
namespace detail {

/// Element types a buffer or pool can hold, their type id and the unsigned integer
/// through which they are accessed atomically.
template <class T> struct element_traits { static constexpr bool supported = false; };
#define SHMKIT_ELEMENT_TRAITS(T, ID, U)                                                                            \
    template <> struct element_traits<T> {                                                                         \
        static constexpr bool supported = true;                                                                    \
        static constexpr element_type id = element_type::ID;                                                       \
        using storage = U;                                                                                         \
    };
SHMKIT_ELEMENT_TRAITS(std::int8_t, i8, std::uint8_t)
SHMKIT_ELEMENT_TRAITS(std::uint8_t, u8, std::uint8_t)
SHMKIT_ELEMENT_TRAITS(std::int16_t, i16, std::uint16_t)
SHMKIT_ELEMENT_TRAITS(std::uint16_t, u16, std::uint16_t)
SHMKIT_ELEMENT_TRAITS(std::int32_t, i32, std::uint32_t)
SHMKIT_ELEMENT_TRAITS(std::uint32_t, u32, std::uint32_t)
SHMKIT_ELEMENT_TRAITS(std::int64_t, i64, std::uint64_t)
SHMKIT_ELEMENT_TRAITS(std::uint64_t, u64, std::uint64_t)
SHMKIT_ELEMENT_TRAITS(float, f32, std::uint32_t)
SHMKIT_ELEMENT_TRAITS(double, f64, std::uint64_t)
#undef SHMKIT_ELEMENT_TRAITS

/// The bits of `v` as its storage integer (floats keep their bit pattern).
template <class T> typename element_traits<T>::storage to_storage(T v) noexcept
{
    typename element_traits<T>::storage s;
    std::memcpy(&s, &v, sizeof s);
    return s;
}
/// The value whose bits are `s`.
template <class T> T from_storage(typename element_traits<T>::storage s) noexcept
{
    T v;
    std::memcpy(&v, &s, sizeof v);
    return v;
}

} // namespace detail
} // namespace shmkit

#endif
