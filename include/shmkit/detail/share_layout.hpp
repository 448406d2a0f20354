// shmkit/detail/share_layout.hpp: what a native shmkit::share keeps in
// shared memory.
//
// Root segment /shmkit.share.0xKKKKKKKK (kind share, element type none,
// capacity 1), header params:
//   [0] share id (random, never 0: names the value segments)
//   [1] inline capacity: bytes of each of the two inline areas
//   [2] the key (as an unsigned 32-bit number)
//   payload: share_root, then inline area 0, then inline area 1;
//   rwlock 0: the share's lock (lock_sh / lock_ex, fetch and store).
//
// Value segment /shmkit.share.0xKKKKKKKK~<share id, 16 hex digits>~<gen>
// (kind share, element type bytes, element size 1, capacity = payload
// bytes), header params: [0] share id, [1] gen. Its payload is one value.
//
// The value lives in one of two slots; the other is where the next store
// writes. A slot is an inline area of the root (gen 0) or a value
// segment (gen > 0, never reused). The commit word `state` says which slot
// holds the value, and its version. All of it is read and written under
// the lock (shared to read, exclusive to write), so the protocol is about
// a writer killed while holding it, not about concurrent readers:
//
//   store(v), exclusive lock held, target = the slot that is not current:
//   1. if v does not fit the target's storage: next_gen = pending = G (a
//      fresh number), create segment G (fallocated: ENOSPC is thrown here),
//      retired = the target's old segment (if any), target.gen = G
//   2. copy v into the target's storage, target.length = |v|
//   3. state = (version + 1) << 1 | target           <- commit
//   4. unlink the retired segment's name; pending = retired = 0
//
// Killed before 3, the current slot and its storage were never touched:
// the old value is whole. Killed after 3, the new one is. Steps 1 and 4
// may leave a segment name that no slot names: the next writer, told by
// the lock that a writer died (recovered()), unlinks `pending` and
// `retired` unless a slot names them (repair). The non-current slot may
// be half-written; nothing reads it before the next store rewrites it, and
// its gen always names an existing segment (set after creation, unlinked
// only when no slot names it). Lengths are checked against the mapped size
// before use: shared memory is never trusted as an index.
#ifndef SHMKIT_DETAIL_SHARE_LAYOUT_HPP
#define SHMKIT_DETAIL_SHARE_LAYOUT_HPP

#include <shmkit/config.hpp>

#include <atomic>
#include <cstdint>

namespace shmkit {
namespace detail {

/// Where one of the two values lives.
struct share_slot {
    std::atomic<std::uint64_t> gen;    ///< 0: the slot's inline area; else value segment `gen`
    std::atomic<std::uint64_t> length; ///< bytes of the value written there
};

struct alignas(cache_line_size) share_root {
    /// version << 1 | current slot. The version starts at 1 and counts
    /// stores. Release-stored by a store (the commit point).
    std::atomic<std::uint64_t> state;
    share_slot slot[2];
    std::atomic<std::uint64_t> next_gen; ///< the last value segment number handed out
    std::atomic<std::uint64_t> pending;  ///< a segment being created (step 1)
    std::atomic<std::uint64_t> retired;  ///< a segment being replaced (steps 1-4)
    std::atomic<std::uint64_t> removed;  ///< set when the share is destroyed: stores refuse (EIDRM)
    std::atomic<std::uint64_t> repairs;  ///< repairs after a writer died holding the lock
};

constexpr std::uint64_t share_state(std::uint64_t version, unsigned slot) noexcept
{
    return version << 1 | slot;
}
constexpr std::uint64_t share_state_version(std::uint64_t state) noexcept { return state >> 1; }
constexpr unsigned share_state_slot(std::uint64_t state) noexcept { return unsigned(state & 1); }

/// Offset of inline area `i` in the root's payload.
constexpr std::uint64_t share_inline_offset(unsigned i, std::uint64_t inline_capacity) noexcept
{
    return sizeof(share_root) + i * inline_capacity;
}

} // namespace detail
} // namespace shmkit

#endif
