// shmkit/str_pool.hpp: a pool of byte strings of a maximum length.
#ifndef SHMKIT_STR_POOL_HPP
#define SHMKIT_STR_POOL_HPP

#include <shmkit/detail/pool_base.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace shmkit {

/// A fixed number of slots each holding a byte string of at most
/// `max_length` bytes (binary-safe: any bytes, zeros included; the length is
/// stored): the C++ counterpart of Data::Pool::Shared::Str. The allocator,
/// its crash behaviour and the members shared with raw_pool and pool<T>:
/// detail/pool_base.hpp.
///
/// Each slot is a 4-byte length followed by max_length() bytes, padded to a
/// multiple of 4 (elem_size()). set() writes the bytes and then the length
/// (release); get() reads the length (acquire, clamped to max_length()) and
/// then the bytes, with relaxed byte atomics. A get concurrent with a set of
/// the same slot may see the new length with bytes of both values: a slot
/// is normally written by its owner and read after a hand-off that orders
/// the two (use str_buffer for strings read and written concurrently).
class str_pool : public detail::pool_base {
public:
    /// Creates a file-backed pool of `capacity` free slots of strings of at
    /// most `max_length` bytes; fails (EEXIST) if `path` exists. Throws
    /// std::invalid_argument for capacity or max_length 0 or too large.
    str_pool(create_only_t, const std::string& path, std::size_t capacity, std::size_t max_length,
             const pool_options& opt = {});
    /// Opens `path` if it exists (refusing another capacity or maximum
    /// length, naming both), or creates it.
    str_pool(open_or_create_t, const std::string& path, std::size_t capacity, std::size_t max_length,
             const pool_options& opt = {});
    /// Opens an existing str_pool; capacity and maximum length from its header.
    explicit str_pool(open_only_t, const std::string& path, const pool_options& opt = {});

    /// A pool in anonymous shared memory, shared with children forked later.
    /// Throws as the constructors.
    static str_pool anonymous(std::size_t capacity, std::size_t max_length, const pool_options& opt = {});
    /// memfd() without arguments: the fd of a memfd pool (pool_base::memfd()).
    using pool_base::memfd;
    /// A pool in a sealed memfd labelled `name`; share it by passing memfd().
    static str_pool memfd(const std::string& name, std::size_t capacity, std::size_t max_length,
                          const pool_options& opt = {});
    /// Opens the pool behind an fd received from another process (the
    /// caller keeps its fd); maximum length and capacity from its header.
    static str_pool from_fd(int fd, const pool_options& opt = {});

    str_pool(str_pool&&) noexcept = default;

    /// The longest string a slot holds.
    std::size_t max_length() const noexcept { return max_length_; }

    /// The string in slot i. O(length). Throws std::out_of_range,
    /// shmkit::error (not allocated), std::bad_alloc.
    std::string get(std::size_t i) const;
    /// As get(), into `out` (its capacity is reused: no allocation once it
    /// is large enough). Throws as get(); `out` is unchanged if it throws.
    void get(std::size_t i, std::string& out) const;
    /// The length of the string in slot i. O(1). Throws as get().
    std::size_t length(std::size_t i) const;
    /// Stores `v` in slot i. Throws std::out_of_range, shmkit::error (not
    /// allocated) or std::length_error (longer than max_length()), writing
    /// nothing. O(v.size()). Killed half-way: the slot holds the old length
    /// with some new bytes.
    void set(std::size_t i, std::string_view v);

    /// alloc() then set(i, v); the slot is freed again if set throws.
    std::optional<std::size_t> alloc_set(std::string_view v);
    /// alloc(timeout) then set: nothing on timeout.
    template <class Rep, class Period>
    std::optional<std::size_t> alloc_set(std::string_view v, const std::chrono::duration<Rep, Period>& timeout)
    {
        check_length(v);
        return alloc_then(alloc(timeout), [&](std::size_t i) { store(i, v); });
    }
    /// try_alloc() then set: nothing if no slot is free.
    std::optional<std::size_t> try_alloc_set(std::string_view v);

private:
    str_pool(segment seg, const pool_options& opt);
    void check_length(std::string_view v) const;
    void store(std::size_t i, std::string_view v) noexcept;

    std::size_t max_length_;
};

} // namespace shmkit

#endif
