// shmkit/str_buffer.hpp: a fixed-capacity array of byte strings of bounded
// length in shared memory.
#ifndef SHMKIT_STR_BUFFER_HPP
#define SHMKIT_STR_BUFFER_HPP

#include <shmkit/detail/buffer_base.hpp>

#include <boost/core/span.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace shmkit {

/// An array of `capacity` byte strings, each at most `width` bytes, in
/// shared memory: Data::Buffer::Shared::Str, with the length stored, so
/// values are binary-safe (embedded and trailing NULs round-trip), and a
/// value longer than the width refused (std::length_error) instead of
/// truncated.
///
/// Every write (set, set_slice, fill, clear, set_raw) is a bulk write under
/// the write lock and the seqlock; every read (get, slice, get_raw) copies
/// until no write overlapped it. So get() never returns a string a write in
/// progress is changing (a writer killed half-way: see below), and reads
/// never block on each other (they wait only while a
/// write is in progress). Process- and thread-safe like buffer<T>; writes
/// block for the write lock, reads take no lock. Crash safety as for
/// buffer<T> (detail/buffer_base.hpp): a writer killed half-way leaves the
/// value (or the values of set_slice/fill) it was writing partially
/// written, possibly a new length with old bytes, and everyone else going
/// on; a reader killed holds nothing.
///
/// Validation errors (std::out_of_range, std::length_error) are thrown
/// before anything is written. Besides them, writes throw
/// std::system_error for a thread that holds the lock shared, and the
/// other exceptions of detail::buffer_base; reads may throw std::bad_alloc,
/// and, when they recover a stalled writer, what lock() throws.
///
/// Each slot is the length (4 bytes) followed by `width` bytes, padded to 8.
class str_buffer : public detail::buffer_base {
public:
    /// Creates a buffer of `capacity` empty strings of at most `width` bytes.
    /// Throws std::invalid_argument for capacity 0, width 0 or sizes that do
    /// not fit, shmkit::error for the file system (EEXIST if `path` exists).
    /// O(capacity * width) (the segment is reserved and zero-filled).
    str_buffer(create_only_t, const std::string& path, std::size_t capacity, std::size_t width,
               const structure_options& opt = {});
    /// Opens `path` if it exists, refusing another width or capacity with an
    /// error naming both (shmkit::error, errc::type_mismatch or
    /// errc::capacity_mismatch), or creates it. Throws as above.
    str_buffer(open_or_create_t, const std::string& path, std::size_t capacity, std::size_t width,
               const structure_options& opt = {});
    /// Opens an existing str_buffer; capacity and width come from its header.
    /// Throws shmkit::error (ENOENT, a kind or type mismatch, errc::corrupt_header).
    str_buffer(open_only_t, const std::string& path);

    /// As for buffer<T>: anonymous shared memory (shared with children forked
    /// later), a sealed memfd, or the str_buffer behind a received fd.
    /// Throw as the constructors.
    static str_buffer anonymous(std::size_t capacity, std::size_t width, const structure_options& opt = {});
    static str_buffer memfd(const std::string& name, std::size_t capacity, std::size_t width,
                            const structure_options& opt = {});
    static str_buffer from_fd(int fd);

    str_buffer(str_buffer&&) noexcept = default;

    /// The longest value a slot holds, in bytes.
    std::size_t width() const noexcept { return elem_size(); }

    /// Value i. O(length of the value) per attempt. Throws std::out_of_range.
    std::string get(std::size_t i) const;
    /// Sets value i. Throws std::out_of_range or std::length_error (longer
    /// than width()), writing nothing. O(v.size()). Reentrant for a thread
    /// that holds the write lock.
    void set(std::size_t i, std::string_view v);
    /// Values [from, from + count), one consistent snapshot. O(total length)
    /// per attempt. Throws std::out_of_range.
    std::vector<std::string> slice(std::size_t from, std::size_t count) const;
    /// Sets values from `from` on, as one bulk write; validates every value
    /// first (nothing written if one is too long: std::length_error; a bad
    /// range: std::out_of_range). O(total length).
    void set_slice(std::size_t from, boost::span<const std::string_view> values);
    /// Sets every value to `v` as one bulk write. O(capacity * v.size()).
    /// Throws std::length_error (nothing written) if `v` is too long.
    void fill(std::string_view v);
    /// Sets every value to the empty string.
    void clear() { fill({}); }

private:
    explicit str_buffer(segment seg, std::size_t width);
    static detail::buffer_spec spec(std::size_t width);
    void check_length(std::string_view v) const;
    void store(std::size_t i, std::string_view v) noexcept;
    std::string load(std::size_t i) const;
};

} // namespace shmkit

#endif
