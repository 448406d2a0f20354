// The eventfd notifier: creation, validation of adopted descriptors, and the
// EINTR-safe waiting loop.
#include <shmkit/sync/notifier.hpp>

#include <shmkit/error.hpp>

#include <cerrno>
#include <ctime>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace shmkit {
namespace sync {
namespace {

using clock = std::chrono::steady_clock;

/// What the kernel names an eventfd in /proc/<pid>/fd.
constexpr const char eventfd_link[] = "anon_inode:[eventfd]";

std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

[[noreturn]] void fail(int err, int fd, const std::string& what)
{
    shmkit::detail::throw_errno(err, fd_name(fd), what);
}

void require_open(int fd)
{
    if (fd < 0 || ::fcntl(fd, F_GETFD) == -1) fail(EBADF, fd, "attach");
}

/// The target of /proc/self/fd/<fd>, e.g. "anon_inode:[eventfd]" or "pipe:[123]".
std::string fd_target(int fd)
{
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    char buf[256];
    const ssize_t len = ::readlink(link.c_str(), buf, sizeof buf);
    if (len < 0) fail(errno, fd, "attach: cannot read " + link + " (is /proc mounted?)");
    return std::string(buf, static_cast<std::size_t>(len));
}

// /proc is the only way to tell an eventfd from other anonymous inodes
// (timerfd, signalfd, epoll): fstat shows them all alike.
void require_eventfd(int fd)
{
    const std::string target = fd_target(fd);
    if (target != eventfd_link)
        throw error(std::make_error_code(std::errc::invalid_argument), fd_name(fd),
                    "attach: not an eventfd (" + target + ")");
}

// try_consume must never block, and a blocking descriptor cannot be made to
// behave otherwise per call: eventfd read(2) has no MSG_DONTWAIT, and
// poll-then-read races with other consumers.
void require_nonblocking(int fd)
{
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags == -1) fail(errno, fd, "attach: F_GETFL");
    if ((flags & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
        fail(errno, fd, "attach: F_SETFL O_NONBLOCK");
}

void close_quietly(int fd, bool owns) noexcept
{
    // Linux releases the descriptor even when close fails with EINTR, so a
    // retry could close a descriptor another thread just opened.
    if (owns && fd >= 0) ::close(fd);
}

/// Reads and resets the counter; 0 when it is 0 (EAGAIN).
std::uint64_t read_counter(int fd)
{
    for (;;) {
        std::uint64_t value = 0;
        const ssize_t r = ::read(fd, &value, sizeof value);
        if (r == static_cast<ssize_t>(sizeof value)) return value;
        if (r >= 0) fail(EIO, fd, "read: short read from eventfd");
        if (errno == EAGAIN) return 0;
        if (errno != EINTR) fail(errno, fd, "read");
    }
}

void write_counter(int fd, std::uint64_t n)
{
    for (;;) {
        const ssize_t r = ::write(fd, &n, sizeof n);
        if (r == static_cast<ssize_t>(sizeof n)) return;
        if (r >= 0) fail(EIO, fd, "notify: short write to eventfd");
        if (errno == EAGAIN) fail(EAGAIN, fd, "notify: the counter would overflow");
        if (errno != EINTR) fail(errno, fd, "notify");
    }
}

struct timespec to_timespec(clock::duration d) noexcept
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    return ts;
}

/// Sleeps until `fd` is readable, `timeout` (null: none) passes, or a signal
/// arrives; the caller re-checks the counter in every case.
void poll_readable(int fd, const struct timespec* timeout)
{
    struct pollfd p = {fd, POLLIN, 0};
    const int r = ::ppoll(&p, 1, timeout, nullptr);
    if (r < 0 && errno != EINTR) fail(errno, fd, "wait: ppoll");
    if (r > 0 && (p.revents & POLLNVAL) != 0) fail(EBADF, fd, "wait: descriptor closed");
}

} // namespace

notifier notifier::create(unsigned initial)
{
    const int fd = ::eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) shmkit::detail::throw_errno(errno, "eventfd", "create");
    return notifier(fd, true);
}

notifier notifier::attach(int fd, ownership own)
{
    require_open(fd);
    require_eventfd(fd);
    require_nonblocking(fd);
    return notifier(fd, own == ownership::adopt);
}

notifier::notifier(notifier&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), owns_(std::exchange(other.owns_, false))
{
}

notifier& notifier::operator=(notifier&& other) noexcept
{
    if (this != &other) {
        close_quietly(fd_, owns_);
        fd_ = std::exchange(other.fd_, -1);
        owns_ = std::exchange(other.owns_, false);
    }
    return *this;
}

notifier::~notifier() { close_quietly(fd_, owns_); }

void notifier::notify(std::uint64_t n)
{
    check_open("notify");
    if (n != 0) write_counter(fd_, n);
}

std::uint64_t notifier::try_consume()
{
    check_open("try_consume");
    return read_counter(fd_);
}

std::optional<std::uint64_t> notifier::wait(std::chrono::nanoseconds timeout)
{
    check_open("wait");
    if (timeout < std::chrono::nanoseconds::zero()) timeout = std::chrono::nanoseconds::zero();
    const clock::time_point now = clock::now();
    // A timeout beyond the clock's range means "no deadline", not overflow.
    if (timeout >= clock::time_point::max() - now) return wait();
    return wait_until(now + std::chrono::duration_cast<clock::duration>(timeout));
}

std::uint64_t notifier::wait()
{
    check_open("wait");
    for (;;) {
        if (const std::uint64_t n = read_counter(fd_)) return n;
        poll_readable(fd_, nullptr);
    }
}

std::optional<std::uint64_t> notifier::wait_until(clock::time_point deadline)
{
    // Consume first: a count already pending needs no poll, and after a
    // timed-out poll one last read catches a count that arrived at the end.
    for (;;) {
        if (const std::uint64_t n = read_counter(fd_)) return n;
        const clock::duration left = deadline - clock::now();
        if (left <= clock::duration::zero()) return std::nullopt;
        const struct timespec ts = to_timespec(left);
        poll_readable(fd_, &ts);
    }
}

void notifier::close()
{
    const int fd = std::exchange(fd_, -1);
    const bool owns = std::exchange(owns_, false);
    if (fd < 0 || !owns) return;
    if (::close(fd) != 0 && errno != EINTR) fail(errno, fd, "close");
}

void notifier::check_open(const char* what) const
{
    if (fd_ < 0) fail(EBADF, fd_, std::string(what) + ": empty notifier");
}

} // namespace sync
} // namespace shmkit
