// root_takeover: see root_takeover.hpp for the protocol and its crash
// windows.
#include "root_takeover.hpp"

#include <shmkit/detail/header.hpp>
#include <shmkit/detail/unique_fd.hpp>
#include <shmkit/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shmkit {
namespace detail {
namespace {

constexpr const char* shm_dir = "/dev/shm";

/// True if "/dev/shm/BASE" is the very file open as `fd` (a link to it is
/// not).
bool names_same_file(const std::string& base, int fd)
{
    struct stat mine, named;
    return ::fstat(fd, &mine) == 0 && ::fstatat(AT_FDCWD, (std::string(shm_dir) + "/" + base).c_str(), &named,
                                                AT_SYMLINK_NOFOLLOW) == 0 &&
           mine.st_dev == named.st_dev && mine.st_ino == named.st_ino;
}

/// A header field of the file open as `fd`, read at `offset`; false if the
/// file is too short for it.
template <class T>
bool read_field(int fd, std::size_t offset, T& out)
{
    return ::pread(fd, &out, sizeof out, static_cast<off_t>(offset)) == ssize_t(sizeof out);
}

enum class root_state {
    incomplete_kv_root, ///< what segment::posix refused: ours to take over
    incomplete_other,   ///< an incomplete segment of another kind: not ours
    something_else,     ///< complete (created since), or no longer a segment: open it again
};

/// Passes the same checks, in the same order, as the header validation
/// before it refuses a segment as never completely initialised, then asks
/// for the kind that is ours.
root_state classify_root(int fd)
{
    char magic[sizeof segment_magic];
    std::uint32_t version = 0, order = 0, pointer = 0, kind = 0, init = 0;
    if (!read_field(fd, offsetof(segment_header, magic), magic) ||
        !read_field(fd, offsetof(segment_header, format_version), version) ||
        !read_field(fd, offsetof(segment_header, byte_order), order) ||
        !read_field(fd, offsetof(segment_header, pointer_size), pointer) ||
        !read_field(fd, offsetof(segment_header, kind), kind) ||
        !read_field(fd, offsetof(segment_header, init_state), init))
        return root_state::something_else;
    if (std::memcmp(magic, segment_magic, sizeof magic) != 0 || order != byte_order_mark ||
        pointer != sizeof(void*) || version != format_version || init == init_ready)
        return root_state::something_else;
    return kind == static_cast<std::uint32_t>(structure_kind::kv) ? root_state::incomplete_kv_root
                                                                   : root_state::incomplete_other;
}

/// True if `name` is "BASE~ID~GEN" as kv_store names its tables: ID 16
/// lowercase hex digits, GEN decimal. Nothing else is removed with them
/// (another structure may well be called "BASE~something").
bool is_table_name(std::string_view name, const std::string& base)
{
    if (name.size() < base.size() + 19 || name.compare(0, base.size(), base) != 0) return false;
    name.remove_prefix(base.size());
    if (name[0] != '~' || name[17] != '~') return false;
    for (std::size_t i = 1; i < 17; ++i)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
    for (std::size_t i = 18; i < name.size(); ++i)
        if (name[i] < '0' || name[i] > '9') return false;
    return true;
}

void unlink_name(const std::string& name, const std::string& label)
{
    if (::shm_unlink(("/" + name).c_str()) != 0 && errno != ENOENT)
        throw_errno(errno, label, "cannot unlink " + name + " to take the store's name over");
}

/// Unlinks the table names of stores called `base`. A directory that
/// cannot be read fails the takeover: the root then stays, so that a later
/// opener still knows there are tables to remove.
void remove_tables_of(const std::string& base, const std::string& label)
{
    DIR* d = ::opendir(shm_dir);
    if (!d) throw_errno(errno, label, std::string("cannot list ") + shm_dir + " to take the store's name over");
    std::vector<std::string> found;
    for (;;) {
        errno = 0;
        const struct dirent* e = ::readdir(d);
        if (!e) break;
        if (is_table_name(e->d_name, base)) found.emplace_back(e->d_name);
    }
    const int err = errno;
    ::closedir(d);
    if (err) throw_errno(err, label, std::string("cannot list ") + shm_dir + " to take the store's name over");
    for (const std::string& n : found) unlink_name(n, label);
}

/// Takes the flock of the root open as `fd`, waiting for another taker at
/// most `wait`. False if the name stopped naming that file meanwhile (the
/// other taker is done). Polls rather than blocks: a blocked taker would
/// keep waiting on a file that no longer has the name.
bool lock_for_takeover(int fd, const std::string& base, std::chrono::milliseconds wait, const std::string& label)
{
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return names_same_file(base, fd);
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) throw_errno(errno, label, "cannot lock the incomplete root to take its name over");
        if (!names_same_file(base, fd)) return false;
        if (std::chrono::steady_clock::now() >= deadline)
            throw_error(errc::not_initialised, label,
                        "another process has been taking the name over from an incomplete root for too long");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

} // namespace

void take_over_incomplete_root(const std::string& base, std::chrono::milliseconds lock_wait)
{
    const std::string label = "/" + base;
    // As region opens: no symbolic link followed, no blocking on a FIFO.
    unique_fd fd(::open((std::string(shm_dir) + label).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return; // taken over already
        throw_errno(errno, label, "cannot open the incomplete root to take its name over");
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return; // not a segment now: opening says what
    if (!lock_for_takeover(fd.get(), base, lock_wait, label)) return;
    switch (classify_root(fd.get())) {
    case root_state::something_else: return;
    case root_state::incomplete_other:
        throw_error(errc::not_initialised, label,
                    "an incomplete segment of another kind holds the name: it is not taken over");
    case root_state::incomplete_kv_root: break;
    }
    remove_tables_of(base, label);
    if (names_same_file(base, fd.get())) unlink_name(base, label);
}

} // namespace detail
} // namespace shmkit
