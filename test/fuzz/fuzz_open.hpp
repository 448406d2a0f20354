// The parts of fuzz_open shared by its sources (fuzz_open.cpp: the entry
// point and the single-segment kinds; open_named.cpp: the kinds opened by
// name).
#ifndef SHMKIT_TEST_FUZZ_FUZZ_OPEN_HPP
#define SHMKIT_TEST_FUZZ_FUZZ_OPEN_HPP

#include <shmkit/detail/header.hpp>
#include <shmkit/error.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace fuzz {

/// A change to a header made before its checksum is recomputed.
using header_patch = std::function<void(shmkit::detail::segment_header&)>;

/// Applies the fix-ups `flags` asks for (open_format.hpp) to `image`;
/// `patch` runs when the checksum is recomputed. An image shorter than a
/// header is left alone.
void fix_up(std::string& image, std::uint8_t flags, const header_patch& patch);

/// Whether `e` is a refusal by the header validation, which must leave the
/// segment unchanged (later refusals may follow an attach, which writes).
bool refused_before_attaching(const shmkit::error& e);

/// Runs shmkit::inspect() and shmkit::check_segment() on `path` (errors
/// are expected for bad bytes) and fails if `contents()` is not `written`
/// afterwards: both promise to change nothing.
void inspect_read_only(const std::string& path, const std::function<std::string()>& contents,
                       const std::string& written);

/// The kv_store kind: `root` and `table` become the store's root and the
/// table the root names (its store id, the table's generation).
void open_kv_store(std::string root, std::string table, std::uint8_t flags);
/// The share kind: `root` becomes the root of this process's native share
/// (its key patched in with the checksum fix-up), `value` the value segment
/// it may name.
void open_share(std::string root, std::string value, std::uint8_t flags);

} // namespace fuzz

#endif
