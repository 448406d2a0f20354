// shmkit/detail/header.hpp: the common header at offset 0 of every segment.
//
// The header is written once, by the creator, before the segment is linked
// under its name (see region.hpp), and never changes afterwards. Its
// checksum covers every field before it, so any corrupted field is caught;
// the fields before the checksum are checked one by one first so that the
// error names what is wrong (magic, platform, version, kind, type, layout).
//
// Layout of a segment (all offsets from the start, all 64-byte aligned):
//
//   0               segment_header (header_size bytes)
//   attach_offset   attach_table_header, then attach_capacity attach_entry
//   sync_offset     n_rwlocks rwlock_state, then n_mutexes mutex_state
//   data_offset     data_size bytes of structure payload
//   total_size      end (a multiple of the page size)
#ifndef SHMKIT_DETAIL_HEADER_HPP
#define SHMKIT_DETAIL_HEADER_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace shmkit {

/// Which structure a segment holds.
enum class structure_kind : std::uint32_t {
    raw = 1,    ///< a plain shmkit::segment (user payload, locks)
    buffer = 2, ///< shmkit::buffer / str_buffer
    pool = 3,   ///< shmkit::pool / raw_pool / str_pool
    kv = 4,     ///< shmkit::kv_store
    share = 5   ///< shmkit::share
};

/// Element type of a segment's payload.
enum class element_type : std::uint32_t {
    none = 0,
    i8 = 1, u8, i16, u16, i32, u32, i64, u64, f32, f64,
    bytes = 11,  ///< fixed-width byte strings or raw slots
    strings = 12 ///< length-prefixed strings of a maximum length (str_pool)
};

const char* to_string(structure_kind k) noexcept;
const char* to_string(element_type t) noexcept;

inline std::ostream& operator<<(std::ostream& os, structure_kind k) { return os << to_string(k); }
inline std::ostream& operator<<(std::ostream& os, element_type t) { return os << to_string(t); }

namespace detail {

inline constexpr char segment_magic[8] = {'S', 'H', 'M', 'K', 'I', 'T', '\x1a', '\0'};
inline constexpr std::uint32_t format_version = 2; // 2: 64-bit attach-entry generations
inline constexpr std::uint32_t byte_order_mark = 0x01020304u;
inline constexpr std::uint32_t init_ready = 0x59444552u; // "READY"-ish, little-endian "REDY"
inline constexpr std::uint64_t header_size = 256;
inline constexpr std::uint32_t max_attach_capacity = 4095; // tokens hold 12 bits of index
inline constexpr std::uint32_t max_rwlocks = 8;            // reader slots per attach entry
inline constexpr std::uint32_t max_mutexes = 64;

struct segment_header {
    char magic[8];
    std::uint32_t format_version;
    std::uint32_t byte_order;
    std::uint32_t pointer_size;
    std::uint32_t header_size;
    std::uint32_t kind;
    std::uint32_t elem_type;
    std::uint32_t elem_size;
    std::uint32_t attach_capacity;
    std::uint32_t n_rwlocks;
    std::uint32_t n_mutexes;
    std::uint64_t capacity;
    std::uint64_t total_size;
    std::uint64_t attach_offset;
    std::uint64_t sync_offset;
    std::uint64_t data_offset;
    std::uint64_t data_size;
    std::uint64_t params[4]; ///< structure-specific immutable parameters
    std::uint64_t created_ns; ///< CLOCK_REALTIME at creation, for tools
    std::uint64_t checksum;   ///< FNV-1a 64 of every byte before this field
    std::atomic<std::uint32_t> init_state;
};

static_assert(sizeof(segment_header) <= header_size, "header must fit its reserved space");

/// FNV-1a 64 of the header bytes before `checksum`.
std::uint64_t header_checksum(const segment_header& h) noexcept;

/// What an opener requires of a segment. Zero fields accept any value.
struct segment_expectation {
    structure_kind kind = structure_kind::raw;
    element_type elem_type = element_type::none;
    std::uint32_t elem_size = 0;
    std::uint64_t capacity = 0;
    /// How errors name elem_size ("element size", "string width", ...).
    const char* elem_size_name = "element size";
    /// The structure's own checks of what its payload holds (params, data
    /// size against capacity...), run on the validated private copy of the
    /// header before the segment is attached, so that a refusal leaves the
    /// file unchanged. Throws shmkit::error (errc::corrupt_header) naming
    /// `where`. Null: none.
    void (*check_payload)(const segment_header& h, const std::string& where) = nullptr;
};

/// Checks every header field of a mapping of `mapped_size` bytes against the
/// mapping itself and `expect`. Reads only; never writes. Throws
/// shmkit::error naming `where` and the first problem found.
const segment_header& validate_header(const void* base, std::size_t mapped_size,
                                      const segment_expectation& expect, const std::string& where);

/// Validates what a header says about layout only (no expectation), for tools.
const segment_header& validate_layout(const void* base, std::size_t mapped_size, const std::string& where);

} // namespace detail
} // namespace shmkit

#endif
