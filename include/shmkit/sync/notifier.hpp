// shmkit/sync/notifier.hpp: an eventfd notifier for waking other processes.
//
// An eventfd is a 64-bit kernel counter behind a file descriptor: notify()
// adds to it, a consumer reads and resets it, and poll(2) reports it
// readable while it is non-zero. Unlike a futex it can be waited on together
// with sockets and timers (epoll, Asio), and it crosses fork() and
// SCM_RIGHTS. The counter lives in the kernel, so a notifier has no shared
// state that a dying process could leave half-updated: a process killed at
// any instruction has either added its count or not.
#ifndef SHMKIT_SYNC_NOTIFIER_HPP
#define SHMKIT_SYNC_NOTIFIER_HPP

#include <shmkit/config.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace shmkit {
namespace sync {

/// Whether a notifier made from an existing descriptor closes it.
enum class ownership {
    borrow, ///< never closed by the notifier; the caller keeps it open meanwhile
    adopt   ///< closed by the notifier's destructor or close()
};

/// A move-only handle to an eventfd counter.
///
/// Thread/process safety: notify, try_consume and wait may be called
/// concurrently from any number of threads and processes sharing the same
/// eventfd (each is one atomic syscall on the counter); each pending count is
/// consumed by exactly one of them. Moving, assigning, close() and
/// destruction need exclusive access to the notifier object.
///
/// After fork() the child holds a copy of the descriptor that refers to the
/// same counter; the child's notifier closes the child's copy only. The
/// descriptor is close-on-exec when made by create().
class notifier {
public:
    /// An empty notifier: fd() is -1; every operation but close() and the
    /// observers throws shmkit::error (EBADF). Throws nothing.
    notifier() noexcept = default;

    /// Makes a new eventfd (EFD_CLOEXEC | EFD_NONBLOCK) whose counter starts
    /// at `initial`; the notifier owns it.
    ///
    /// Complexity: one syscall. Throws shmkit::error (e.g. EMFILE).
    /// Crash: the kernel closes the descriptor with the process.
    static notifier create(unsigned initial = 0);

    /// Wraps an existing eventfd descriptor, e.g. one inherited across fork
    /// or received over a UNIX socket.
    ///
    /// Checks through /proc/self/fd that `fd` is an eventfd, and sets
    /// O_NONBLOCK on it if missing (try_consume must never block); that file
    /// status flag is shared by every duplicate of the descriptor.
    /// Complexity: a few syscalls. Throws shmkit::error: EBADF if `fd` is not
    /// open, EINVAL if it is not an eventfd, or the error of reading /proc.
    /// On a throw the descriptor is left open and untouched, whatever `own`
    /// says: ownership passes only on success.
    /// Crash: nothing shared is changed (but for O_NONBLOCK).
    static notifier attach(int fd, ownership own = ownership::borrow);

    /// Takes over `other`'s descriptor and ownership; `other` becomes empty.
    notifier(notifier&& other) noexcept;

    /// Closes this notifier's descriptor if it owns one, then takes over
    /// `other`'s; `other` becomes empty. Self-assignment does nothing.
    notifier& operator=(notifier&& other) noexcept;

    notifier(const notifier&) = delete;
    notifier& operator=(const notifier&) = delete;

    /// Closes the descriptor if owned; errors are ignored.
    ~notifier();

    /// Adds `n` to the counter, waking waiters. `n == 0` does nothing.
    ///
    /// Complexity: one syscall. Throws shmkit::error: EINVAL if `n` is
    /// 2^64-1, EAGAIN if the counter would exceed 2^64-2, EBADF if empty.
    /// Crash: the count is added entirely or not at all.
    void notify(std::uint64_t n = 1);

    /// Takes the whole pending count and resets the counter to 0; returns 0
    /// at once when nothing is pending.
    ///
    /// Complexity: one syscall. Throws shmkit::error (EBADF if empty).
    /// Crash: the count is consumed entirely or not at all; a process killed
    /// after the syscall but before using the count loses it.
    std::uint64_t try_consume();

    /// Waits up to `timeout` for a non-zero count, consumes it and returns
    /// it; returns an empty optional on timeout. A zero or negative timeout
    /// only polls.
    ///
    /// Interruptions by signals are retried against a steady_clock deadline,
    /// so the total wait never exceeds `timeout` by more than scheduling
    /// delay. When several consumers race, the one that loses keeps waiting.
    /// Complexity: a few syscalls per wakeup. Throws shmkit::error (EBADF if
    /// empty or if the descriptor is closed under it). Crash: as try_consume.
    std::optional<std::uint64_t> wait(std::chrono::nanoseconds timeout);

    /// Waits without a deadline for a non-zero count, consumes it and returns
    /// it. As wait(timeout) otherwise.
    std::uint64_t wait();

    /// The descriptor (for epoll, Asio, SCM_RIGHTS), or -1 when empty; the
    /// notifier keeps it. Throws nothing.
    int fd() const noexcept { return fd_; }

    /// Whether the notifier will close its descriptor. Throws nothing.
    bool owns_fd() const noexcept { return owns_; }

    /// Makes the notifier empty, closing the descriptor if owned. Calling it
    /// on an empty notifier does nothing.
    ///
    /// Complexity: at most one syscall. Throws shmkit::error if close(2)
    /// fails with anything but EINTR (after which Linux has closed the
    /// descriptor anyway); the notifier is empty even then.
    void close();

private:
    notifier(int fd, bool owns) noexcept : fd_(fd), owns_(owns) {}

    std::optional<std::uint64_t> wait_until(std::chrono::steady_clock::time_point deadline);
    void check_open(const char* what) const;

    int fd_ = -1;
    bool owns_ = false;
};

} // namespace sync
} // namespace shmkit

#endif
