// shmkit/segment.hpp: a region with the common header, the attach table and
// the locks: what every shmkit structure is built on, usable on its own for
// a plain shared payload guarded by crash-recoverable locks.
#ifndef SHMKIT_SEGMENT_HPP
#define SHMKIT_SEGMENT_HPP

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/detail/header.hpp>
#include <shmkit/region.hpp>
#include <shmkit/sync/lock_state.hpp>
#include <shmkit/sync/mutex.hpp>
#include <shmkit/sync/rwlock.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace shmkit {

using detail::segment_expectation;

/// What a creator asks for. total_size() derives the whole layout.
struct segment_layout {
    structure_kind kind = structure_kind::raw;
    element_type elem_type = element_type::none;
    std::uint32_t elem_size = 0;
    std::uint64_t capacity = 0;
    std::uint64_t data_size = 0;           ///< payload bytes
    std::uint32_t n_rwlocks = 0;           ///< at most 8
    std::uint32_t n_mutexes = 0;           ///< at most 64
    std::uint32_t attach_capacity = 128;   ///< processes (handles) attached at once, at most 4095
    std::array<std::uint64_t, 4> params{}; ///< structure-specific, immutable
    /// Checks an opener runs on an existing segment before attaching (see
    /// segment_expectation::check_payload).
    void (*check_payload)(const detail::segment_header& h, const std::string& where) = nullptr;

    /// Size of the segment in bytes (a multiple of 4096). O(1), pure
    /// arithmetic (overflow-checked). Throws std::invalid_argument for
    /// out-of-range counts or sizes that overflow.
    std::size_t total_size() const;

    /// What an opener of a segment created with this layout must find.
    segment_expectation expectation() const noexcept
    {
        segment_expectation x{kind, elem_type, elem_size, capacity};
        x.check_payload = check_payload;
        return x;
    }
};

/// Options common to the structures (buffer, pool, ...) when they create a segment.
struct structure_options {
    /// Permission bits of a created file or POSIX object (exactly; no umask).
    mode_t mode = 0600;
    /// How many handles (processes, or threads with their own handle) can be
    /// attached at once. Each costs 64 bytes of the segment.
    std::uint32_t attach_capacity = 128;
};

/// Initialises the payload of a segment being created (zero-filled before).
using data_initializer = std::function<void(void* data, std::size_t size)>;

/// Liveness and recovery counters of a segment.
struct segment_stats {
    std::uint32_t attach_capacity = 0;
    std::uint32_t attached_alive = 0; ///< entries held by live processes (this one included)
    std::uint32_t attached_dead = 0;  ///< entries of dead processes not yet reclaimed
    std::uint64_t attaches = 0;       ///< entries ever claimed
    std::uint64_t reclaimed = 0;      ///< entries of dead processes reclaimed
    std::uint64_t lock_recoveries = 0; ///< dead lock holders recovered, all locks together
};

/// A validated, attached shmkit segment. Move-only.
///
/// Opening validates the whole header against the mapping (see
/// detail/header.hpp) and refuses, unchanged, anything that does not match;
/// then claims an attach-table entry for this handle. Destruction releases
/// the entry (a process that dies instead has it reclaimed by others).
///
/// Thread/process safety: const members may be used from several threads;
/// lock handles obtained from rwlock()/mutex() may be shared by the threads
/// of a process (holding is recorded per thread, see sync/rwlock.hpp).
/// Moving or destroying a segment while another thread uses it, or while
/// handles obtained from it exist, is a data race / dangling use. Locks a
/// thread still holds through a segment when it is destroyed are released
/// the hard way: its entry is freed, and the next waiter recovers them as
/// from a dead holder.
///
/// Creating and opening (the constructor and the static functions) throw
/// what region throws (shmkit::error, std::invalid_argument, what `init`
/// throws), std::invalid_argument for a bad segment_layout (total_size()),
/// and shmkit::error for a segment refused by validation (errc::*
/// naming the mismatch; nothing written to it), for a full attach table
/// (errc::attach_table_full), or when the lock descriptor cannot be opened
/// (e.g. EMFILE). Complexity: that of region, plus a scan of the attach
/// table for a free or dead entry, O(attach_capacity) at worst, with a
/// liveness probe (a fcntl(F_OFD_GETLK) or a /proc read) for each entry
/// held by another handle. A process killed while opening leaves at most an
/// entry that names it, which others reclaim. A creator killed after the
/// region was linked but before it attached leaves a complete, valid
/// segment (the header was written before the link); a create that throws
/// at that point (validation, attach) leaves it too.
class segment {
public:
    segment() noexcept = default;
    /// Validates `r` against `expect` and attaches to it. Throws as
    /// described above; `r` is unmapped if it throws.
    segment(region r, const segment_expectation& expect);
    segment(segment&&) noexcept = default;
    /// Releases this handle's attach entry before its mapping goes away.
    segment& operator=(segment&& o) noexcept;
    /// Releases the attach entry (O(1) plus lowering the high-water mark,
    /// O(attach_capacity) at worst), unmaps and closes. Throws nothing.
    ~segment() = default;

    /// A region_initializer that calls `init` on the payload and then writes
    /// the header, init state last. Throws std::invalid_argument for a bad
    /// layout now; the initialiser throws std::logic_error for a region
    /// smaller than the layout.
    static region_initializer initializer(const segment_layout& layout, data_initializer init = {});

    static segment file(create_only_t, const std::string& path, const segment_layout& layout,
                        data_initializer init = {}, const region_options& opt = {});
    /// Opens an existing segment; `expect` defaults to a raw segment of any size.
    /// With open_or_create, an existing segment must match layout.expectation()
    /// (kind, element type and size, capacity); its other fields are its own.
    static segment file(open_only_t, const std::string& path, const segment_expectation& expect = {});
    static segment file(open_or_create_t, const std::string& path, const segment_layout& layout,
                        data_initializer init = {}, const region_options& opt = {});
    static segment posix(create_only_t, const std::string& name, const segment_layout& layout,
                         data_initializer init = {}, const region_options& opt = {});
    static segment posix(open_only_t, const std::string& name, const segment_expectation& expect = {});
    static segment posix(open_or_create_t, const std::string& name, const segment_layout& layout,
                         data_initializer init = {}, const region_options& opt = {});
    static segment anonymous(const segment_layout& layout, data_initializer init = {});
    static segment memfd(const std::string& name, const segment_layout& layout, data_initializer init = {});
    static segment from_fd(int fd, const segment_expectation& expect = {});

    explicit operator bool() const noexcept { return static_cast<bool>(region_); }
    /// The header as it is in shared memory now (for tools: any process may
    /// have written it since it was validated). The segment itself, and the
    /// accessors below, work from a private copy of what it validated, so a
    /// later write to the shared header cannot move it: use those.
    const detail::segment_header& header() const noexcept { return *header_; }
    void* data() const noexcept { return at(geometry_.data_offset); }
    std::size_t data_size() const noexcept { return geometry_.data_size; }
    std::uint64_t capacity() const noexcept { return geometry_.capacity; }
    /// Validated header fields (the private copy). O(1), noexcept.
    std::uint32_t elem_size() const noexcept { return geometry_.elem_size; }
    std::uint32_t attach_capacity() const noexcept { return geometry_.attach_capacity; }
    std::uint32_t n_rwlocks() const noexcept { return geometry_.n_rwlocks; }
    std::uint32_t n_mutexes() const noexcept { return geometry_.n_mutexes; }
    /// Structure parameter `i`, 0 <= i < 4 (unchecked).
    std::uint64_t param(std::size_t i) const noexcept { return geometry_.params[i]; }
    const shmkit::region& get_region() const noexcept { return region_; }
    const std::string& name() const noexcept { return region_.name(); }
    int fd() const noexcept { return region_.fd(); }
    bool created() const noexcept { return region_.created(); }

    /// A new handle on rwlock `i` (0 <= i < n_rwlocks()); throws
    /// std::out_of_range. O(1), no syscall, nothing shared is touched. The
    /// handle must not outlive this segment.
    sync::rwlock rwlock(std::uint32_t i = 0) const;
    /// A new handle on mutex `i` (0 <= i < n_mutexes()); throws
    /// std::out_of_range. As rwlock() otherwise.
    sync::mutex mutex(std::uint32_t i = 0) const;

    /// Frees the attach entries of dead processes (and with them their read
    /// locks). Waiters do this by themselves when they need to; tools call it.
    /// Returns how many entries were freed. Process- and thread-safe (each
    /// entry is claimed with a CAS before it is wiped). O(high-water mark),
    /// a liveness probe (syscall) per entry in use. Throws nothing. Killed
    /// half-way: an entry being wiped still names a dead owner and is
    /// reclaimed again by the next reclaimer.
    std::uint32_t reclaim_dead() { return att_->reclaim_dead(); }
    /// Counters and liveness of the attach table and the locks. A snapshot
    /// of relaxed loads, not atomic as a whole. O(high-water mark + locks),
    /// a liveness probe (syscall) per entry in use. Throws std::bad_alloc.
    /// Reads only.
    segment_stats stats() const;
    /// The entries in use, with their PID and liveness; as stats() for cost.
    std::vector<detail::attach_info> attached() const { return att_->entries_in_use(); }
    detail::attachment& attachment() const noexcept { return *att_; }

    /// region::sync() and region::unlink().
    void sync(bool wait = true) { region_.sync(wait); }
    bool unlink() { return region_.unlink(); }

private:
    void* at(std::uint64_t offset) const noexcept { return static_cast<char*>(region_.data()) + offset; }
    sync::rwlock_state& rwlock_state(std::uint32_t i) const noexcept;
    sync::mutex_state& mutex_state(std::uint32_t i) const noexcept;

    /// What the segment uses of its header, copied once validated.
    struct geometry {
        std::uint32_t elem_size = 0, attach_capacity = 0, n_rwlocks = 0, n_mutexes = 0;
        std::uint64_t capacity = 0, attach_offset = 0, sync_offset = 0, data_offset = 0, data_size = 0;
        std::uint64_t params[4] = {};
    };

    shmkit::region region_;
    const detail::segment_header* header_ = nullptr;
    geometry geometry_;
    std::unique_ptr<detail::attachment> att_; // after region_: released before unmapping
};

} // namespace shmkit

#endif
