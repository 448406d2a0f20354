// shmkit/detail/checked.hpp: overflow-checked layout arithmetic.
//
// Every offset and size read from a mapped header is untrusted: it is
// combined only through these functions, which report overflow instead of
// wrapping, so a corrupted header can never make us touch memory outside
// the mapping.
#ifndef SHMKIT_DETAIL_CHECKED_HPP
#define SHMKIT_DETAIL_CHECKED_HPP

#include <cstdint>
#include <optional>

namespace shmkit {
namespace detail {

inline std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept
{
    std::uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
    return r;
}

inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept
{
    std::uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}

/// Rounds `v` up to a multiple of `align` (a power of two).
inline std::optional<std::uint64_t> checked_align_up(std::uint64_t v, std::uint64_t align) noexcept
{
    const auto s = checked_add(v, align - 1);
    if (!s) return std::nullopt;
    return *s & ~(align - 1);
}

/// True if [offset, offset + length) lies within [0, limit).
inline bool range_within(std::uint64_t offset, std::uint64_t length, std::uint64_t limit) noexcept
{
    const auto end = checked_add(offset, length);
    return end && *end <= limit;
}

} // namespace detail
} // namespace shmkit

#endif
