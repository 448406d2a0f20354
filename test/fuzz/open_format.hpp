// The input of fuzz_open, shared with make_corpus, which writes real
// segments in it:
//
//   byte 0   the kind of segment (open_kind, modulo open_kind::count)
//   byte 1   fix-ups applied to each image (fixup_* bits)
//   byte 2   two-segment kinds only: pages (4096 bytes) of the first image
//   rest     the image: the segment's bytes (header and every section);
//            two-segment kinds: the first image, then the second
//
// The fix-ups let mutations of a header field reach the checks behind the
// checksum and the size check instead of being refused by them each time.
#ifndef SHMKIT_TEST_FUZZ_OPEN_FORMAT_HPP
#define SHMKIT_TEST_FUZZ_OPEN_FORMAT_HPP

#include <cstddef>
#include <cstdint>

namespace fuzz {

enum class open_kind : std::uint8_t {
    buffer_i8,
    buffer_u16,
    buffer_i32,
    buffer_u64,
    buffer_f32,
    buffer_f64,
    str_buffer,
    pool_i64,
    pool_i32,
    pool_f64,
    pool_u8,
    raw_pool,
    str_pool,
    kv_store, ///< the root, then the table it names (named POSIX objects)
    share,    ///< a native share's root, then a value segment (named POSIX objects)
    segment,  ///< a plain segment (locks and payload)
    count
};

/// The header's total size := the image's size rounded up to whole pages;
/// the image is padded with zeros to it.
constexpr std::uint8_t fixup_size = 1;
/// The header's checksum recomputed, after the other fix-ups (and, for a
/// share root, after its key is set to the fuzzing process's key).
constexpr std::uint8_t fixup_checksum = 2;

constexpr std::size_t page_size = 4096;

constexpr bool two_images(open_kind k) noexcept { return k == open_kind::kv_store || k == open_kind::share; }

} // namespace fuzz

#endif
