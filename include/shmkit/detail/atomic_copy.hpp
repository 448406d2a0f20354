// shmkit/detail/atomic_copy.hpp: data-race-free bulk copies of shared data.
//
// A seqlock reader copies data that a writer may be changing at the same
// moment; the copy is thrown away when the sequence shows that a write
// overlapped it. With plain memcpy that overlap is a data race, which is
// undefined behaviour in C++ and is (rightly) reported by ThreadSanitizer.
// Following H.-J. Boehm, "Can seqlocks get along with programming language
// memory models?" (MSPC 2012), every access to the protected bytes is made a
// relaxed atomic access instead. Relaxed loads and stores of naturally
// aligned words compile to ordinary moves on x86-64 and AArch64, so the cost
// over memcpy is only the lost vectorisation.
//
// These helpers impose no ordering of their own: the fences that make a
// snapshot consistent belong to the seqlock (an acquire fence in
// seqlock::read_retry, a release fence in seqlock::write_begin). See
// shmkit/sync/seqlock.hpp for the full argument.
#ifndef SHMKIT_DETAIL_ATOMIC_COPY_HPP
#define SHMKIT_DETAIL_ATOMIC_COPY_HPP

#include <shmkit/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shmkit {
namespace detail {

// A word type that may alias any object: the shared bytes may hold doubles,
// structs or anything else, and reading them through uint64_t would break
// the strict aliasing rule without this attribute.
using shared_word = std::uint64_t __attribute__((__may_alias__));

inline constexpr std::size_t shared_word_size = sizeof(shared_word);

static_assert(__atomic_always_lock_free(sizeof(shared_word), 0),
              "relaxed 8-byte atomics must be plain loads and stores");

/// Bytes before `p` reaches a word boundary (at most `n`).
inline std::size_t head_bytes(const void* p, std::size_t n) noexcept
{
    const std::size_t misalign = reinterpret_cast<std::uintptr_t>(p) % shared_word_size;
    const std::size_t head = misalign == 0 ? 0 : shared_word_size - misalign;
    return head < n ? head : n;
}

// The GCC/Clang __atomic builtins are used rather than std::atomic_ref
// (C++20): they apply to plain memory, and ThreadSanitizer intercepts them
// as atomic accesses.

inline void load_bytes(unsigned char* dst, const unsigned char* src, std::size_t n) noexcept
{
    for (std::size_t i = 0; i != n; ++i) dst[i] = __atomic_load_n(src + i, __ATOMIC_RELAXED);
}

inline void store_bytes(unsigned char* dst, const unsigned char* src, std::size_t n) noexcept
{
    for (std::size_t i = 0; i != n; ++i) __atomic_store_n(dst + i, src[i], __ATOMIC_RELAXED);
}

/// `words` relaxed 8-byte loads from the aligned shared `src`; `dst` may be unaligned.
inline void load_words(unsigned char* dst, const unsigned char* src, std::size_t words) noexcept
{
    const auto* s = reinterpret_cast<const shared_word*>(src);
    for (std::size_t i = 0; i != words; ++i) {
        const std::uint64_t w = __atomic_load_n(s + i, __ATOMIC_RELAXED);
        std::memcpy(dst + i * shared_word_size, &w, shared_word_size);
    }
}

/// `words` relaxed 8-byte stores to the aligned shared `dst`; `src` may be unaligned.
inline void store_words(unsigned char* dst, const unsigned char* src, std::size_t words) noexcept
{
    auto* d = reinterpret_cast<shared_word*>(dst);
    for (std::size_t i = 0; i != words; ++i) {
        std::uint64_t w;
        std::memcpy(&w, src + i * shared_word_size, shared_word_size);
        __atomic_store_n(d + i, w, __ATOMIC_RELAXED);
    }
}

/// Copies `n` bytes from shared memory `src` (which a writer may be changing
/// concurrently) to private memory `dst`, with relaxed atomic loads: 8-byte
/// words where `src` is word-aligned, single bytes at the unaligned edges.
///
/// Thread/process safety: data-race-free against concurrent writers that use
/// atomic_copy_to_shared (or other atomic stores) on the same bytes. The
/// result may be torn (a mix of old and new bytes, never a torn 8-byte word
/// inside the aligned part); a seqlock reader detects that with
/// seqlock::read_retry and must not interpret the bytes before it has.
/// Complexity: O(n). Throws nothing. `dst` and `src` must not overlap.
/// Crash: reads only; a death half-way leaves nothing behind.
inline void atomic_copy_from_shared(void* dst, const void* src, std::size_t n) noexcept
{
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    const std::size_t head = head_bytes(s, n);
    load_bytes(d, s, head);
    const std::size_t words = (n - head) / shared_word_size;
    load_words(d + head, s + head, words);
    const std::size_t done = head + words * shared_word_size;
    load_bytes(d + done, s + done, n - done);
}

/// Copies `n` bytes from private memory `src` to shared memory `dst` (which
/// concurrent readers may be copying), with relaxed atomic stores: 8-byte
/// words where `dst` is word-aligned, single bytes at the unaligned edges.
///
/// Thread/process safety: data-race-free against concurrent readers that use
/// atomic_copy_from_shared; writers must be serialised by the caller (under a
/// seqlock, between write_begin and write_end). Complexity: O(n). Throws
/// nothing. `dst` and `src` must not overlap.
/// Crash: a death half-way leaves `dst` partly written; under a seqlock the
/// sequence then stays odd, and readers never accept the partial copy.
inline void atomic_copy_to_shared(void* dst, const void* src, std::size_t n) noexcept
{
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    const std::size_t head = head_bytes(d, n);
    store_bytes(d, s, head);
    const std::size_t words = (n - head) / shared_word_size;
    store_words(d + head, s + head, words);
    const std::size_t done = head + words * shared_word_size;
    store_bytes(d + done, s + done, n - done);
}

/// Zeroes `n` bytes of shared memory with relaxed atomic stores, as
/// atomic_copy_to_shared. O(n). Throws nothing.
inline void atomic_zero_shared(void* dst, std::size_t n) noexcept
{
    static const unsigned char zeros[256] = {};
    auto* d = static_cast<unsigned char*>(dst);
    while (n) {
        const std::size_t k = n < sizeof zeros ? n : sizeof zeros;
        atomic_copy_to_shared(d, zeros, k);
        d += k;
        n -= k;
    }
}

} // namespace detail
} // namespace shmkit

#endif
