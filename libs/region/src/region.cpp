// Regions: where shared memory lives, and race-free creation of named ones.
#include <shmkit/region.hpp>

#include <shmkit/detail/identity.hpp>

#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bip = boost::interprocess;

namespace shmkit {
namespace {

constexpr const char* shm_dir = "/dev/shm";

/// Boost.Interprocess maps anything that models MemoryMappable; this models
/// it for an fd we opened ourselves (with O_NOFOLLOW/O_TMPFILE, or memfd),
/// which file_mapping and shared_memory_object cannot open.
struct fd_mappable {
    int fd;
    bip::mapping_handle_t get_mapping_handle() const noexcept
    {
        return bip::ipcdetail::mapping_handle_from_file_handle(fd);
    }
};

std::string dir_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string proc_fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

/// "NAME" or "/NAME" -> "NAME"; refuses what shm_open would refuse, and a
/// NUL byte, which would cut the name short and name another object.
std::string posix_component(const std::string& name)
{
    std::string n = (!name.empty() && name[0] == '/') ? name.substr(1) : name;
    if (n.empty() || n.find('/') != std::string::npos || n.size() > NAME_MAX || n == "." || n == ".." ||
        n.find('\0') != std::string::npos)
        throw std::invalid_argument("shmkit: invalid POSIX shared memory name '" + name +
                                    "': expected NAME or /NAME, one component of at most 255 bytes, no NUL byte");
    return n;
}

/// The system reads a path up to its first NUL: a path holding one would
/// name another file than the caller's (and an empty one names none).
void check_path(const std::string& path, const char* what)
{
    if (path.empty()) throw std::invalid_argument(std::string("shmkit: empty ") + what);
    if (path.find('\0') != std::string::npos)
        throw std::invalid_argument("shmkit: " + std::string(what) + " '" + path + "' contains a NUL byte");
}

void check_size(std::size_t size, const std::string& where)
{
    if (size == 0) throw std::invalid_argument("shmkit: " + where + ": region size must not be 0");
    if (size > static_cast<std::size_t>(LLONG_MAX))
        throw std::invalid_argument("shmkit: " + where + ": region size too large");
}

/// Reserves the blocks now so that a full file system is ENOSPC here rather
/// than SIGBUS on first touch. File systems without fallocate get ftruncate.
void reserve(int fd, std::size_t size, const std::string& where)
{
    int r = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (r == EOPNOTSUPP || r == EINVAL) {
        if (::ftruncate(fd, static_cast<off_t>(size)) == 0) return;
        r = errno;
    }
    if (r != 0) detail::throw_errno(r, where, "cannot reserve " + std::to_string(size) + " bytes");
}

/// An unnamed file in `dir` to initialise before it is linked under its name.
/// Falls back to a uniquely named hidden file where O_TMPFILE is unsupported.
struct staged_file {
    detail::unique_fd fd;
    std::string temp_name; // empty with O_TMPFILE
    staged_file() = default;
    staged_file(staged_file&& o) noexcept : fd(std::move(o.fd)), temp_name(std::exchange(o.temp_name, {})) {}
    staged_file& operator=(staged_file&&) = delete;
    // A named temporary left behind by a failure is removed (an O_TMPFILE
    // one has no name to remove).
    ~staged_file()
    {
        if (!temp_name.empty()) ::unlink(temp_name.c_str());
    }
};

staged_file stage_file(const std::string& dir, const std::string& target, mode_t mode)
{
    staged_file s;
    s.fd.reset(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, mode & 0777));
    if (!s.fd) {
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            detail::throw_errno(errno, target, "cannot create");
        static std::atomic<unsigned> counter{0};
        s.temp_name = dir + "/.shmkit-tmp." + std::to_string(::getpid()) + "." +
                      std::to_string(counter.fetch_add(1));
        s.fd.reset(::open(s.temp_name.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_RDWR | O_CLOEXEC,
                          mode & 0777));
        if (!s.fd) detail::throw_errno(errno, target, "cannot create");
    }
    // The umask must not weaken or widen what the caller asked for.
    if (::fchmod(s.fd.get(), mode & 0777) != 0) detail::throw_errno(errno, target, "cannot set mode");
    return s;
}

/// Links the staged file under `target`. Returns false if `target` exists
/// (someone else won the race, or a symlink sits there: link(2) never follows
/// it). Throws for other failures.
bool publish(staged_file& s, const std::string& target)
{
    int r;
    if (s.temp_name.empty())
        r = ::linkat(AT_FDCWD, proc_fd_path(s.fd.get()).c_str(), AT_FDCWD, target.c_str(),
                     AT_SYMLINK_FOLLOW);
    else
        r = ::link(s.temp_name.c_str(), target.c_str());
    const int err = errno;
    if (!s.temp_name.empty()) ::unlink(std::exchange(s.temp_name, {}).c_str());
    if (r == 0) return true;
    if (err == EEXIST) return false;
    detail::throw_errno(err, target, "cannot publish");
}

detail::unique_fd open_existing(const std::string& path, bool& missing)
{
    // O_NONBLOCK | O_NOCTTY: if `path` is a FIFO or a device, opening it has
    // no side effect before the S_ISREG check refuses it.
    detail::unique_fd fd(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    missing = !fd && errno == ENOENT;
    if (!fd && !missing) {
        if (errno == ELOOP) detail::throw_errno(ELOOP, path, "is a symbolic link; refusing to follow it");
        detail::throw_errno(errno, path, "cannot open");
    }
    return fd;
}

std::size_t regular_file_size(int fd, const std::string& where)
{
    struct stat st;
    if (::fstat(fd, &st) != 0) detail::throw_errno(errno, where, "cannot stat");
    if (!S_ISREG(st.st_mode)) detail::throw_error(errc::not_a_segment, where, "not a regular file");
    if (st.st_size == 0) detail::throw_error(errc::truncated, where, "file is empty");
    return static_cast<std::size_t>(st.st_size);
}

} // namespace

const char* to_string(backing b) noexcept
{
    switch (b) {
    case backing::file: return "file";
    case backing::posix: return "posix";
    case backing::anonymous: return "anonymous";
    case backing::memfd: return "memfd";
    case backing::adopted_fd: return "fd";
    }
    return "?";
}

region::region(region&& o) noexcept
    : fd_(std::move(o.fd_)), mapping_(std::move(o.mapping_)), base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)), kind_(o.kind_), name_(std::move(o.name_)),
      created_(o.created_)
{
}

region& region::operator=(region&& o) noexcept
{
    if (this != &o) {
        fd_ = std::move(o.fd_);
        mapping_ = std::move(o.mapping_);
        base_ = std::exchange(o.base_, nullptr);
        size_ = std::exchange(o.size_, 0);
        kind_ = o.kind_;
        name_ = std::move(o.name_);
        created_ = o.created_;
    }
    return *this;
}

region::~region() = default;

void region::map(std::size_t size)
{
    try {
        if (fd_) {
            mapping_ = bip::mapped_region(fd_mappable{fd_.get()}, bip::read_write, 0, size);
        } else {
            mapping_ = bip::anonymous_shared_memory(size);
        }
    } catch (const bip::interprocess_exception& e) {
        detail::throw_errno(e.get_native_error() ? e.get_native_error() : ENOMEM, name_,
                            "cannot map " + std::to_string(size) + " bytes");
    }
    base_ = mapping_.get_address();
    size_ = mapping_.get_size();
}

void region::adopt_private_fd(detail::unique_fd fd)
{
    fd_ = std::move(fd);
}

// Stage, reserve, initialise, then link: nobody can open a named segment
// before it is complete, and a creator that dies leaves only an unlinked
// inode, which the kernel frees.
region region::create_named(const std::string& path, const std::string& label, bool may_open,
                            std::size_t size, const region_initializer& init,
                            const region_options& opt, backing kind)
{
    check_size(size, label);
    // A few rounds: the segment may be removed between our failed link and
    // our open. Each round makes progress unless someone keeps deleting it.
    for (int round = 0; round < 16; ++round) {
        // lstat, not access: a symlink (even a dangling one) is "there" and
        // open_named refuses it with ELOOP instead of us creating through it.
        struct stat there;
        if (may_open && ::lstat(path.c_str(), &there) == 0) {
            try {
                return open_named(path, label, kind);
            } catch (const error& e) {
                if (e.code() != std::errc::no_such_file_or_directory) throw;
                continue;
            }
        }
        region r;
        r.kind_ = kind;
        r.name_ = label;
        staged_file staged = stage_file(dir_of(path), label, opt.mode);
        reserve(staged.fd.get(), size, label);
        r.fd_ = std::move(staged.fd); // not registered yet: map() needs only the fd
        r.map(size);
        if (init) init(r.base_, r.size_);
        staged.fd = std::move(r.fd_);
        if (publish(staged, path)) {
            r.adopt_private_fd(std::move(staged.fd));
            r.created_ = true;
            return r;
        }
        if (!may_open) {
            if (::faccessat(AT_FDCWD, path.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                struct stat st;
                if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
                    detail::throw_errno(EEXIST, label, "a symbolic link is in the way; refusing to follow it");
            }
            detail::throw_errno(EEXIST, label, "cannot create");
        }
    }
    detail::throw_errno(EAGAIN, label, "created and removed concurrently too often");
}

region region::open_named(const std::string& path, const std::string& label, backing kind)
{
    region r;
    r.kind_ = kind;
    r.name_ = label;
    detail::unique_fd fd;
    if (kind == backing::posix) {
        try {
            bip::shared_memory_object shm(bip::open_only, label.c_str() + 1, bip::read_write);
            fd.reset(::fcntl(shm.get_mapping_handle().handle, F_DUPFD_CLOEXEC, 0));
            if (!fd) detail::throw_errno(errno, label, "cannot duplicate fd");
        } catch (const bip::interprocess_exception& e) {
            const int err = e.get_native_error();
            if (err == ELOOP) detail::throw_errno(ELOOP, label, "is a symbolic link; refusing to follow it");
            detail::throw_errno(err ? err : EIO, label, "cannot open");
        }
    } else {
        bool missing = false;
        fd = open_existing(path, missing);
        if (missing) detail::throw_errno(ENOENT, label, "cannot open");
    }
    const std::size_t size = regular_file_size(fd.get(), label);
    r.fd_ = std::move(fd);
    r.map(size);
    r.adopt_private_fd(std::move(r.fd_));
    return r;
}

region region::file(create_only_t, const std::string& path, std::size_t size,
                    const region_initializer& init, const region_options& opt)
{
    check_path(path, "path");
    return create_named(path, path, false, size, init, opt, backing::file);
}

region region::file(open_only_t, const std::string& path)
{
    check_path(path, "path");
    return open_named(path, path, backing::file);
}

region region::file(open_or_create_t, const std::string& path, std::size_t size,
                    const region_initializer& init, const region_options& opt)
{
    check_path(path, "path");
    return create_named(path, path, true, size, init, opt, backing::file);
}

region region::posix(create_only_t, const std::string& name, std::size_t size,
                     const region_initializer& init, const region_options& opt)
{
    const std::string n = posix_component(name);
    return create_named(std::string(shm_dir) + "/" + n, "/" + n, false, size, init, opt, backing::posix);
}

region region::posix(open_only_t, const std::string& name)
{
    const std::string n = posix_component(name);
    return open_named(std::string(shm_dir) + "/" + n, "/" + n, backing::posix);
}

region region::posix(open_or_create_t, const std::string& name, std::size_t size,
                     const region_initializer& init, const region_options& opt)
{
    const std::string n = posix_component(name);
    return create_named(std::string(shm_dir) + "/" + n, "/" + n, true, size, init, opt, backing::posix);
}

bool region::remove_posix(const std::string& name)
{
    return bip::shared_memory_object::remove(posix_component(name).c_str());
}

region region::anonymous(std::size_t size, const region_initializer& init)
{
    check_size(size, "anonymous");
    region r;
    r.kind_ = backing::anonymous;
    r.name_ = "anonymous";
    r.map(size);
    if (init) init(r.base_, r.size_);
    r.created_ = true;
    return r;
}

region region::memfd(const std::string& name, std::size_t size, const region_initializer& init)
{
    const std::string label = "memfd:" + name;
    if (name.find('\0') != std::string::npos) check_path(name, "memfd name"); // an empty label is fine
    check_size(size, label);
    detail::unique_fd fd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) detail::throw_errno(errno, label, "memfd_create failed");
    reserve(fd.get(), size, label);
    // Sealed before anyone else can get the fd: nobody can shrink it under a
    // mapping (SIGBUS) or grow it unexpectedly.
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        detail::throw_errno(errno, label, "cannot seal");
    region r;
    r.kind_ = backing::memfd;
    r.name_ = label;
    r.fd_ = std::move(fd);
    r.map(size);
    if (init) init(r.base_, r.size_);
    r.adopt_private_fd(std::move(r.fd_));
    r.created_ = true;
    return r;
}

region region::from_fd(int fd)
{
    const std::string label = "fd:" + std::to_string(fd);
    // Refused before anything is opened: reopening a FIFO, a device or a
    // terminal through /proc could block, or have effects of its own.
    (void)regular_file_size(fd, label);
    // A private open file description: the sender's OFD locks must not be
    // mistaken for ours. Without /proc we share the sender's description and
    // liveness falls back to PID probing.
    detail::unique_fd own(detail::reopen_fd(fd, true));
    if (!own) own.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own) detail::throw_errno(errno, label, "cannot adopt");
    const std::size_t size = regular_file_size(own.get(), label);
    region r;
    r.kind_ = backing::adopted_fd;
    r.name_ = label;
    r.fd_ = std::move(own);
    r.map(size);
    r.adopt_private_fd(std::move(r.fd_));
    return r;
}

void region::sync(bool wait)
{
    if (!base_) return;
    if (!mapping_.flush(0, 0, !wait)) detail::throw_errno(errno, name_, "msync failed");
}

bool region::unlink()
{
    if (kind_ != backing::file && kind_ != backing::posix) return false;
    const std::string path = kind_ == backing::file ? name_ : std::string(shm_dir) + name_;
    struct stat mine, there;
    if (!fd_ || ::fstat(fd_.get(), &mine) != 0 || ::lstat(path.c_str(), &there) != 0) return false;
    // Only remove the name if it still refers to the segment we mapped.
    if (mine.st_dev != there.st_dev || mine.st_ino != there.st_ino) return false;
    return ::unlink(path.c_str()) == 0;
}

} // namespace shmkit
