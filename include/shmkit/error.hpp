// shmkit/error.hpp: the exception type for environment failures and bad segments.
#ifndef SHMKIT_ERROR_HPP
#define SHMKIT_ERROR_HPP

#include <string>
#include <system_error>

namespace shmkit {

/// Conditions specific to shmkit segments. System failures (ENOENT, EACCES,
/// ENOSPC, EMFILE, ...) use std::generic_category() instead.
enum class errc {
    not_a_segment = 1,   ///< no shmkit magic: the file is something else
    truncated,           ///< smaller than its header says, or empty
    foreign_platform,    ///< created with another byte order or pointer size
    version_mismatch,    ///< another on-disk format version
    corrupt_header,      ///< a header field is invalid or its checksum fails
    kind_mismatch,       ///< a segment of another structure kind
    type_mismatch,       ///< another element type, element size or width
    capacity_mismatch,   ///< another capacity than explicitly requested
    not_initialised,     ///< the segment was never completely initialised
    attach_table_full,   ///< every attach-table entry is held by a live process
    not_supported,       ///< the operation does not apply to this backing (reserved: nothing throws it yet)
    slot_not_allocated   ///< a pool slot that is not allocated was read or written
};

/// The error category of shmkit::errc ("shmkit"). One object per process,
/// created on first use (thread-safe). O(1). Throws nothing.
const std::error_category& error_category() noexcept;

/// Makes `e` an error_code of error_category(); lets errc compare with
/// error codes (`e.code() == shmkit::errc::kind_mismatch`). Throws nothing.
inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

/// Thrown for environment failures and for segments that cannot be used.
///
/// The message always names the path or name involved and what is wrong,
/// e.g. `shmkit: /dev/shm/jobs: kind mismatch: segment is a pool, expected a buffer`.
/// code() is a shmkit::errc for a bad segment, or an errno value in
/// std::generic_category() for a system failure. A plain value: copying and
/// reading it is thread-safe as for any const object, and it holds no
/// process-shared state (nothing to recover if its process dies).
class error : public std::system_error {
public:
    /// The message becomes "shmkit: <where>: <what>". Throws std::bad_alloc
    /// only (building the message).
    error(std::error_code ec, const std::string& where, const std::string& what);

    /// The path, name or description of the object the failure is about.
    const std::string& where() const noexcept { return where_; }

private:
    std::string where_;
};

namespace detail {
/// Throws shmkit::error for the errno value `err` (generic_category); the
/// message is "<what>: <strerror text>".
[[noreturn]] void throw_errno(int err, const std::string& where, const std::string& what);
/// Throws shmkit::error for the shmkit condition `e`.
[[noreturn]] void throw_error(errc e, const std::string& where, const std::string& what);
} // namespace detail

} // namespace shmkit

namespace std {
template <>
struct is_error_code_enum<shmkit::errc> : true_type {};
} // namespace std

#endif
