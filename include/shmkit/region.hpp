// shmkit/region.hpp: a mapped shared-memory segment and where it lives.
#ifndef SHMKIT_REGION_HPP
#define SHMKIT_REGION_HPP

#include <shmkit/config.hpp>
#include <shmkit/detail/unique_fd.hpp>
#include <shmkit/error.hpp>

#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/mapped_region.hpp>

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>

#include <sys/types.h>

namespace shmkit {

// The open modes are Boost.Interprocess's own tags.
using boost::interprocess::create_only_t;
using boost::interprocess::open_only_t;
using boost::interprocess::open_or_create_t;
using boost::interprocess::create_only;
using boost::interprocess::open_only;
using boost::interprocess::open_or_create;

/// Where a region's memory lives.
enum class backing {
    file,      ///< a file on any file system (file_mapping semantics)
    posix,     ///< a POSIX named shared-memory object (/dev/shm/NAME)
    anonymous, ///< MAP_SHARED|MAP_ANONYMOUS: shared with forked children only
    memfd,     ///< memfd_create(2), sealed against shrinking and growing
    adopted_fd ///< an fd received from elsewhere (e.g. SCM_RIGHTS)
};

/// Name of a backing ("file", "posix", "anonymous", "memfd", "fd"). O(1), throws nothing.
const char* to_string(backing b) noexcept;

inline std::ostream& operator<<(std::ostream& os, backing b) { return os << to_string(b); }

/// Options for creating a region.
struct region_options {
    /// Permission bits (0777 at most) of a created file or POSIX object,
    /// exactly (umask is not applied). 0600 by default: shared memory is
    /// private unless asked.
    mode_t mode = 0600;
};

/// Called to initialise the memory of a region being created, before any
/// other process can see it. Receives the mapped base and size; the memory is
/// zero-filled. If it throws, nothing is published and the exception propagates.
/// With open_or_create it may run and have its work discarded: when another
/// process links the name first, this call opens the winner's segment
/// instead (created() is false).
using region_initializer = std::function<void(void* base, std::size_t size)>;

/// A mapped segment of shared memory and where it lives. Move-only.
///
/// Creation is race-free and never exposes a half-initialised segment: a
/// named region (file or POSIX) is created as an unnamed temporary file
/// (O_TMPFILE) in the target directory, sized with posix_fallocate (so a full
/// disk or /dev/shm is an error now, not a SIGBUS later), initialised, and
/// then linked under its name. Of several processes racing to create the same
/// name exactly one link succeeds; the others open the winner's segment
/// (open_or_create) or fail with EEXIST (create_only). A creator that dies
/// half-way leaves nothing under the name; on a file system without
/// O_TMPFILE the staging file is a hidden `.shmkit-tmp.<pid>.<n>` in the
/// target directory, which a creator killed before the link leaves behind.
/// A symlink as the last path component is never followed (O_NOFOLLOW;
/// link(2) never follows its target); symlinked directories above it are
/// followed.
/// Every fd is FD_CLOEXEC.
///
/// Complexity and syscalls: creating is O(size) (posix_fallocate, the
/// initialiser) plus open, fchmod, mmap and link; opening is a few syscalls
/// (open, fstat, mmap), O(1). The accessors are O(1), noexcept, no syscall.
/// Failures throw shmkit::error naming the path (with an errno, or
/// errc::not_a_segment / errc::truncated for a non-regular or empty file);
/// bad arguments throw std::invalid_argument; nothing is left created or
/// mapped by a call that throws.
///
/// Each region owns its fd (an adopted fd is reopened through /proc/self/fd
/// or duplicated). Liveness locks are not taken on it: a segment's
/// attachment opens a description of its own for them (attach_table.hpp).
///
/// Thread/process safety: distinct regions are independent; one region is
/// safe for concurrent const use (data(), size(), ...), and sync() and
/// unlink() change no member, so they may run beside it. Moving or
/// destroying a region while another thread uses it is a data race. The region adds no
/// synchronisation to the memory it maps: that is up to the caller (see
/// segment and the structures). A process that dies with a region mapped
/// loses only its own mapping and fd; the segment is unaffected.
class region {
public:
    /// An empty region (no mapping).
    region() noexcept = default;
    region(region&&) noexcept;
    region& operator=(region&&) noexcept;
    region(const region&) = delete;
    region& operator=(const region&) = delete;
    /// Unmaps and closes; never unlinks. Throws nothing.
    ~region();

    /// Creates a file-backed region of `size` bytes; fails (EEXIST) if `path`
    /// exists (or is a symlink). Throws shmkit::error (EEXIST, EACCES,
    /// ENOSPC, ...), std::invalid_argument if size is 0 or above LLONG_MAX,
    /// or if `path` is empty or holds a NUL byte (the system would read a
    /// shorter path, another file), or whatever `init` throws.
    static region file(create_only_t, const std::string& path, std::size_t size,
                       const region_initializer& init, const region_options& opt = {});
    /// Opens an existing file-backed region read-write, mapping its whole size.
    /// Throws shmkit::error (ENOENT, ELOOP for a symlink, errc::not_a_segment
    /// if not a regular file, errc::truncated if empty), std::invalid_argument
    /// for an empty path or one holding a NUL byte. The file is only
    /// mapped, never written; its contents are not checked here (segment does).
    static region file(open_only_t, const std::string& path);
    /// Opens `path` if it exists, otherwise creates it as with create_only.
    /// created() tells which happened; an opened file keeps its own size
    /// (`size` and `init` are then unused). Throws as the two above, and
    /// shmkit::error (EAGAIN) if the name is created and removed by others
    /// 16 times in a row while this call retries.
    static region file(open_or_create_t, const std::string& path, std::size_t size,
                       const region_initializer& init, const region_options& opt = {});

    /// The same three for POSIX named shared memory. `name` is "NAME" or
    /// "/NAME" (one component, no further '/'); it lives in /dev/shm and is
    /// interchangeable with shm_open(3) and boost::interprocess::shared_memory_object.
    /// Throws as the file versions, and std::invalid_argument for a name
    /// that is not one component of at most NAME_MAX bytes without a NUL byte.
    static region posix(create_only_t, const std::string& name, std::size_t size,
                        const region_initializer& init, const region_options& opt = {});
    static region posix(open_only_t, const std::string& name);
    static region posix(open_or_create_t, const std::string& name, std::size_t size,
                        const region_initializer& init, const region_options& opt = {});

    /// Anonymous shared memory inherited by children forked after this call.
    /// One mmap, then `init`. Throws std::invalid_argument (size 0),
    /// shmkit::error if the mapping fails, or what `init` throws. Not
    /// reserved in advance (there is no file to fallocate).
    static region anonymous(std::size_t size, const region_initializer& init);

    /// A memfd region: `name` is a label shown in /proc/<pid>/fd, not a path.
    /// Sealed against shrinking and growing, so no process can truncate it
    /// under a mapping. Pass fd() to another process to share it. Reserved
    /// with posix_fallocate like a file. Throws std::invalid_argument (size
    /// 0, a NUL byte in `name`), shmkit::error (memfd_create, ENOSPC, sealing or mapping failed),
    /// or what `init` throws. A creator killed half-way leaves nothing.
    static region memfd(const std::string& name, std::size_t size, const region_initializer& init);

    /// Maps the file or memfd behind `fd`, received from elsewhere. The caller
    /// keeps its own fd (this region reopens it privately through
    /// /proc/self/fd, or duplicates it without /proc). Maps the whole file.
    /// Throws shmkit::error (EBADF, ..., errc::not_a_segment if not a regular
    /// file, errc::truncated if empty).
    static region from_fd(int fd);

    explicit operator bool() const noexcept { return base_ != nullptr; }
    void* data() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }
    /// The fd behind the mapping; -1 for an anonymous region.
    int fd() const noexcept { return fd_.get(); }
    backing kind() const noexcept { return kind_; }
    /// Path (file), "/NAME" (posix), "memfd:LABEL", "anonymous", or "fd:N".
    const std::string& name() const noexcept { return name_; }
    /// True if this call created and initialised the region.
    bool created() const noexcept { return created_; }

    /// Writes dirty pages back (msync; MS_ASYNC when `wait` is false);
    /// meaningful for file-backed regions; does nothing on an empty region.
    /// O(size) at worst (the dirty pages). Throws shmkit::error on failure.
    /// A process killed during it leaves some pages written back, others not.
    void sync(bool wait = true);

    /// Removes the name (file or POSIX object) if it still names this very
    /// segment; mappings stay valid. Returns false if there was nothing to
    /// remove (unnamed backing, or the name now refers to another file) or
    /// the unlink failed (e.g. EACCES); throws nothing. Syscalls: fstat,
    /// lstat, unlink; the check and the unlink are two steps, so a name
    /// replaced in between is removed anyway.
    bool unlink();

    /// Removes a POSIX named object, whatever segment it names now; false if
    /// it could not be removed (did not exist, permission denied). Throws
    /// std::invalid_argument for an invalid name. Mappings stay valid.
    static bool remove_posix(const std::string& name);

private:
    static region create_named(const std::string& path, const std::string& label, bool may_open,
                               std::size_t size, const region_initializer& init,
                               const region_options& opt, backing kind);
    static region open_named(const std::string& path, const std::string& label, backing kind);
    void map(std::size_t size);
    void adopt_private_fd(detail::unique_fd fd);

    detail::unique_fd fd_;
    boost::interprocess::mapped_region mapping_;
    void* base_ = nullptr;
    std::size_t size_ = 0;
    backing kind_ = backing::anonymous;
    std::string name_;
    bool created_ = false;
};

} // namespace shmkit

#endif
