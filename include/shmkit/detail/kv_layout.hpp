// shmkit/detail/kv_layout.hpp: what a kv_store keeps in shared memory, and
// its hash.
//
// Root segment /NAME (kind kv, element type none), header params:
//   [0] store id (random, names the tables), [1] hash seed (random)
//   payload: kv_root (current table number, removed flag, counters);
//   rwlock 0: the writers' lock (readers of get() never take it).
//
// Table segment /NAME~<id in 16 hex digits>~<generation> (kind kv, element
// type bytes), header params: [0] cells (a power of two), [1] arena bytes,
// [2] generation, [3] store id
//   payload: kv_table_header, then the cells (40 bytes each), then the
//   arena of records too large to sit in a cell.
//
// A cell is a meta word and 32 bytes. meta == 0: empty. Otherwise
//   bits 63..48  the top 16 bits of the key's hash (a tag)
//   bits 47..46  state: erased, inline (key and value in the cell's 32
//                bytes) or arena (a record in the arena)
//   bits 45..38  version, bumped each time the cell is filled again
//   bits 37..0   inline: a stamp (22 bits, see kv_meta::make_inline) << 16 |
//                key length << 8 | value length (together <= 32);
//                arena: the record's offset / 8
// An arena record is klen (4 bytes), vlen (4 bytes), the key, the value,
// padded to 8.
//
// A cell is filled (its bytes, then its meta word with a release store)
// only while it is empty or erased, and never changed in place afterwards;
// arena records are appended and never changed. So readers go without a
// lock: they load the meta word (acquire), copy what it describes, and for
// an inline cell load the meta word again: if it changed, the cell was
// erased and filled again under them, and they look again.
//
// Overwriting a key fills a new cell of its probe sequence and then erases
// the old one; the table header records the pair first, so the next writer
// can finish the job if the writer dies between the two (see kv_store.cpp).
#ifndef SHMKIT_DETAIL_KV_LAYOUT_HPP
#define SHMKIT_DETAIL_KV_LAYOUT_HPP

#include <shmkit/config.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace shmkit {
namespace detail {

struct alignas(cache_line_size) kv_root {
    std::atomic<std::uint64_t> generation; ///< the current table; 0 = none yet (empty store)
    std::atomic<std::uint64_t> removed;    ///< set by kv_store::remove(): no new tables
    alignas(cache_line_size) std::atomic<std::uint64_t> grows;
    std::atomic<std::uint64_t> repairs;
    /// Set by a writer that took the lock over from a dead one, cleared when
    /// its repair completed: a repair that failed (threw) is done again by
    /// the next writer, although the lock itself no longer says so.
    std::atomic<std::uint64_t> repair_needed;
};

/// Written by the lock holder only (relaxed: the lock orders them); read by
/// size() and stats() without the lock.
struct alignas(cache_line_size) kv_table_header {
    std::atomic<std::uint64_t> entries;    ///< live cells
    std::atomic<std::uint64_t> erased;     ///< erased cells
    std::atomic<std::uint64_t> tail;       ///< arena bytes committed (records below it are complete)
    std::atomic<std::uint64_t> live_bytes; ///< key and value bytes of the live entries
    std::atomic<std::uint64_t> arena_live; ///< arena bytes of the live records
    /// An overwrite in progress: cell+1 of the old entry, cell+1 of the new
    /// one (0: none). Written before the new cell is published, cleared
    /// after the old one is erased.
    std::atomic<std::uint64_t> pending_old;
    std::atomic<std::uint64_t> pending_new;
    std::atomic<std::uint64_t> fills; ///< inline cells filled, for their stamps (see kv_meta::make_inline)
};

struct kv_cell {
    std::atomic<std::uint64_t> meta;
    std::atomic<std::uint64_t> bytes[4];
};
static_assert(sizeof(kv_cell) == 40, "cells are 40 bytes");

inline constexpr std::size_t kv_inline_bytes = sizeof(kv_cell::bytes);
inline constexpr std::uint64_t kv_arena_start = 8; ///< offset 0 is never a record

enum class kv_state : std::uint64_t { empty_or_erased = 1, inline_entry = 2, arena_entry = 3 };

struct kv_meta {
    static constexpr std::uint64_t tag_mask = ~std::uint64_t(0) << 48;
    static constexpr std::uint64_t erased_state = std::uint64_t(1) << 46;
    static constexpr std::uint64_t inline_state = std::uint64_t(2) << 46;
    static constexpr std::uint64_t arena_state = std::uint64_t(3) << 46;
    static constexpr std::uint64_t state_mask = std::uint64_t(3) << 46;
    static constexpr std::uint64_t version_mask = std::uint64_t(0xff) << 38;
    static constexpr std::uint64_t payload_mask = (std::uint64_t(1) << 38) - 1;

    static bool empty(std::uint64_t m) noexcept { return m == 0; }
    static bool erased(std::uint64_t m) noexcept { return (m & state_mask) == erased_state; }
    static bool live(std::uint64_t m) noexcept { return (m & state_mask) >= inline_state; }
    static bool is_inline(std::uint64_t m) noexcept { return (m & state_mask) == inline_state; }
    static bool tag_matches(std::uint64_t m, std::uint64_t hash) noexcept { return ((m ^ hash) & tag_mask) == 0; }
    static std::uint64_t next_version(std::uint64_t m) noexcept { return (m + (std::uint64_t(1) << 38)) & version_mask; }
    static std::uint64_t erase(std::uint64_t m) noexcept { return (m & (tag_mask | version_mask)) | erased_state; }
    /// `stamp`: the table's count of fills, whose low 22 bits sit in the
    /// otherwise unused bits 37..16 of an inline cell. With the version it
    /// makes the meta word of a refilled cell differ from its earlier ones
    /// unless 2^22 fills happen while one reader copies one cell.
    static std::uint64_t make_inline(std::uint64_t hash, std::uint64_t old, std::size_t klen, std::size_t vlen,
                                     std::uint64_t stamp) noexcept
    {
        return (hash & tag_mask) | inline_state | next_version(old) | ((stamp & 0x3fffff) << 16) |
               (std::uint64_t(klen) << 8) | vlen;
    }
    static std::uint64_t make_arena(std::uint64_t hash, std::uint64_t old, std::uint64_t offset) noexcept
    {
        return (hash & tag_mask) | arena_state | next_version(old) | (offset / 8);
    }
    static std::size_t inline_klen(std::uint64_t m) noexcept { return (m >> 8) & 0xff; }
    static std::size_t inline_vlen(std::uint64_t m) noexcept { return m & 0xff; }
    static std::uint64_t arena_offset(std::uint64_t m) noexcept { return (m & payload_mask) * 8; }
};

struct kv_record_head {
    std::uint32_t klen, vlen;
};

inline std::uint64_t kv_record_size(std::size_t klen, std::size_t vlen) noexcept
{
    return (sizeof(kv_record_head) + klen + vlen + 7) & ~std::uint64_t(7);
}
inline bool kv_fits_inline(std::size_t klen, std::size_t vlen) noexcept { return klen + vlen <= kv_inline_bytes; }

namespace kv_hash_detail {
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept
{
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}
inline std::uint64_t load64(const unsigned char* p) noexcept
{
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
} // namespace kv_hash_detail

/// A seeded 64-bit hash of a byte string (multiply-fold mixing, 8 bytes a
/// step). The seed is random per store, so keys cannot be chosen to collide
/// without knowing it. O(n), pure.
inline std::uint64_t kv_hash(std::string_view key, std::uint64_t seed) noexcept
{
    using namespace kv_hash_detail;
    constexpr std::uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull, k2 = 0x8ebc6af09c88c6e3ull;
    const auto* p = reinterpret_cast<const unsigned char*>(key.data());
    std::size_t n = key.size();
    std::uint64_t h = seed ^ mix(n + k0, k1);
    for (; n >= 16; n -= 16, p += 16) h = mix(load64(p) ^ k1 ^ h, load64(p + 8) ^ k2);
    if (n >= 8) {
        h = mix(load64(p) ^ k1 ^ h, k2);
        p += 8;
        n -= 8;
    }
    std::uint64_t last = 0;
    std::memcpy(&last, p, n);
    h = mix(last ^ k0 ^ h, (key.size() << 3) ^ k2);
    return mix(h ^ k1, k0);
}

} // namespace detail
} // namespace shmkit

#endif
