// shmkit/detail/identity.hpp: who this process is, cached, and whether
// another process is still alive.
//
// Identity is PID + start time (field 22 of /proc/<pid>/stat) + PID namespace,
// so a recycled PID is never mistaken for the process that held it before.
// Nothing here runs on a hot path: handles cache fork_generation() and compare
// it (one relaxed load) to notice that they now run in a forked child.
#ifndef SHMKIT_DETAIL_IDENTITY_HPP
#define SHMKIT_DETAIL_IDENTITY_HPP

#include <atomic>
#include <cstdint>

namespace shmkit {
namespace detail {

struct process_identity {
    std::uint32_t pid = 0;
    std::uint64_t start_time = 0; ///< clock ticks since boot
    std::uint64_t pidns = 0;      ///< inode of /proc/self/ns/pid, 0 if unknown
};

/// Incremented in the child after every fork() (pthread_atfork).
extern std::atomic<std::uint32_t> fork_generation_counter;

/// The current fork generation: equal in a process and its handles until a
/// fork() happens; the child sees a new value. One relaxed load: it is only
/// ever written by the single thread of a freshly forked child.
inline std::uint32_t fork_generation() noexcept
{
    return fork_generation_counter.load(std::memory_order_relaxed);
}

/// The calling process's identity, computed once per process (and again in
/// a forked child). Also installs the fork handlers on first use. Throws
/// shmkit::error if /proc/self/stat cannot be read (e.g. EMFILE); nothing is
/// cached then.
const process_identity& current_identity();

enum class process_state { running, gone, unknown };
struct process_state_info {
    process_state state;
    std::uint64_t start_time;
};

/// What /proc/<pid>/stat says. `gone`: no such process, or a zombie whose
/// threads have all exited. `unknown`: /proc could not be read (not mounted,
/// hidepid, EMFILE): never to be taken for a death.
process_state_info probe_start_time(std::uint32_t pid) noexcept;

/// As current_identity(), or nullptr where that would throw.
const process_identity* known_identity() noexcept;


enum class liveness { alive, dead, unknown };

/// Whether the process with this identity still runs, comparing the start
/// time under `start_mask`. `unknown` when it lives in another PID namespace
/// (its PID means nothing here) or /proc cannot tell.
liveness probe_process(std::uint32_t pid, std::uint64_t start_time, std::uint64_t start_mask,
                       std::uint64_t pidns) noexcept;

/// Opens a new open file description of the file behind `fd` for liveness
/// locks (falling back to a shared duplicate without /proc) and registers
/// it, so that a forked child replaces its copy with a fresh description of
/// its own (liveness locks live as long as their description, and a child
/// must not keep its parent's alive). Returns -1 with errno on failure.
int open_lock_description(int fd);
/// Unregisters and closes what open_lock_description returned (-1: nothing).
void close_lock_description(int fd) noexcept;

/// False if `fd` shares its open file description with another process
/// (a forked child where /proc was unavailable, an fd adopted without
/// /proc), or is not a region fd: OFD locks through it cannot tell this
/// process from the sharer.
bool has_private_description(int fd) noexcept;

/// Opens a new open file description for the same file as `fd`
/// (through /proc/self/fd). Returns -1 with errno set on failure.
int reopen_fd(int fd, bool cloexec) noexcept;

} // namespace detail
} // namespace shmkit

#endif
