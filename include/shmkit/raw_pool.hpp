// shmkit/raw_pool.hpp: a pool of fixed-size byte slots in shared memory.
#ifndef SHMKIT_RAW_POOL_HPP
#define SHMKIT_RAW_POOL_HPP

#include <shmkit/detail/pool_base.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace shmkit {

/// A fixed number of slots of `elem_size` bytes each in shared memory, which
/// processes allocate, use and free: the C++ counterpart of
/// Data::Pool::Shared (raw). Allocation is lock-free (one CAS), blocking
/// allocs sleep on a futex, and the slots of dead processes are recovered
/// (see detail/pool_base.hpp for the allocator, its crash behaviour and
/// every member shared with pool<T> and str_pool).
///
/// get/set copy whole slots with relaxed byte atomics: a get concurrent with
/// a set of the same slot may return a mix of old and new bytes (use
/// pool<T> for values read and written concurrently). A slot is normally
/// written by its owner and read after a hand-off that orders the two
/// (a pipe, an eventfd, a lock).
///
/// Opening and creating throw what segment does (shmkit::error naming the
/// path and the mismatch: another kind, element type, slot size or
/// capacity; std::invalid_argument for capacity or size 0 or too large) and
/// shmkit::error (errc::corrupt_header) when the header's sizes do not fit
/// the segment; a refused file is left unchanged.
class raw_pool : public detail::pool_base {
public:
    /// Creates a file-backed pool of `capacity` free slots of `elem_size`
    /// bytes (zeroed); fails (EEXIST) if `path` exists.
    raw_pool(create_only_t, const std::string& path, std::size_t capacity, std::size_t elem_size,
             const pool_options& opt = {});
    /// Opens `path` if it exists (refusing another slot size or capacity,
    /// naming both), or creates it.
    raw_pool(open_or_create_t, const std::string& path, std::size_t capacity, std::size_t elem_size,
             const pool_options& opt = {});
    /// Opens an existing raw_pool; capacity and slot size come from its header.
    explicit raw_pool(open_only_t, const std::string& path, const pool_options& opt = {});

    /// A pool in anonymous shared memory, shared with children forked later.
    static raw_pool anonymous(std::size_t capacity, std::size_t elem_size, const pool_options& opt = {});
    /// memfd() without arguments: the fd of a memfd pool (pool_base::memfd()).
    using pool_base::memfd;
    /// A pool in a sealed memfd labelled `name`; share it by passing memfd().
    static raw_pool memfd(const std::string& name, std::size_t capacity, std::size_t elem_size,
                          const pool_options& opt = {});
    /// Opens the pool behind an fd received from another process (the
    /// caller keeps its fd).
    static raw_pool from_fd(int fd, const pool_options& opt = {});

    raw_pool(raw_pool&&) noexcept = default;

    /// The elem_size() bytes of slot i. O(elem_size). Throws
    /// std::out_of_range, shmkit::error (not allocated), std::bad_alloc.
    std::string get(std::size_t i) const;
    /// Copies slot i into `out`, which must hold elem_size() bytes. No
    /// allocation. Throws std::out_of_range, shmkit::error (not allocated),
    /// std::length_error (out too small), nothing copied then.
    void get(std::size_t i, boost::span<std::byte> out) const;
    /// Writes `bytes` at the start of slot i and zeroes the rest of it.
    /// Throws std::out_of_range, shmkit::error (not allocated) or
    /// std::length_error (longer than elem_size()), writing nothing. A
    /// process killed half-way leaves the slot partially written.
    void set(std::size_t i, std::string_view bytes);

    /// alloc() then set(i, bytes); the slot is freed again if set throws.
    std::optional<std::size_t> alloc_set(std::string_view bytes);
    /// alloc(timeout) then set: nothing on timeout.
    template <class Rep, class Period>
    std::optional<std::size_t> alloc_set(std::string_view bytes, const std::chrono::duration<Rep, Period>& timeout)
    {
        check_length(bytes);
        return alloc_then(alloc(timeout), [&](std::size_t i) { store(i, bytes); });
    }
    /// try_alloc() then set: nothing if no slot is free.
    std::optional<std::size_t> try_alloc_set(std::string_view bytes);

private:
    explicit raw_pool(segment seg, const pool_options& opt);
    static detail::pool_spec spec(std::size_t elem_size) noexcept;
    void check_length(std::string_view bytes) const;
    void store(std::size_t i, std::string_view bytes) noexcept;
};

} // namespace shmkit

#endif
