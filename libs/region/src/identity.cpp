// Process identity, liveness probes, and what a forked child must redo.
#include <shmkit/detail/identity.hpp>
#include <shmkit/error.hpp>
#include <shmkit/sync/detail/held_locks.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shmkit {
namespace detail {

std::atomic<std::uint32_t> fork_generation_counter{0};

namespace {

// fds of shmkit regions in this process, and whether each has an open file
// description of its own. Guarded by registry_mutex, which the atfork
// prepare handler takes so that the child sees a consistent registry.
struct registered_fd {
    int fd;
    bool shared_description; ///< could not be made private (no /proc, EMFILE)
};
std::mutex registry_mutex;
std::vector<registered_fd>& private_fds()
{
    static std::vector<registered_fd> fds;
    return fds;
}

// Writes "/proc/self/fd/<fd>" without snprintf: this runs in a forked child
// of a possibly multi-threaded parent, where only async-signal-safe calls are
// allowed.
void proc_fd_path(int fd, char (&buf)[32]) noexcept
{
    static const char prefix[] = "/proc/self/fd/";
    std::memcpy(buf, prefix, sizeof prefix - 1);
    char digits[12];
    int n = 0;
    unsigned v = static_cast<unsigned>(fd);
    do { digits[n++] = static_cast<char>('0' + v % 10); v /= 10; } while (v != 0);
    std::size_t pos = sizeof prefix - 1;
    while (n > 0) buf[pos++] = digits[--n];
    buf[pos] = '\0';
}

void atfork_prepare() { registry_mutex.lock(); }
void atfork_parent() { registry_mutex.unlock(); }

// In the child: every region fd still shares its open file description (and
// with it the OFD liveness locks) with the parent. Swap each for a private
// description of the same file, keeping the fd number, so the parent's death
// is seen even while this child lives. The child's own liveness lock is taken
// when it re-registers on first use of the handle.
void atfork_child()
{
    for (registered_fd& r : private_fds()) {
        const int fresh = reopen_fd(r.fd, true);
        if (fresh < 0 || ::dup3(fresh, r.fd, O_CLOEXEC) < 0) {
            // Still the parent's description: this child's handles must not
            // rely on OFD locks (see attach_table.cpp). No allocation here.
            r.shared_description = true;
        }
        if (fresh >= 0) ::close(fresh);
    }
    fork_generation_counter.fetch_add(1, std::memory_order_relaxed);
    // Locks the forking thread held belong to the parent (their words name
    // the parent's token); the child holds none of them.
    sync::detail::mark_all_inherited();
    registry_mutex.unlock();
}

std::uint64_t read_pidns(const char* path) noexcept
{
    struct stat st;
    return ::stat(path, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

// Throws rather than return a half-known identity: a start time of 0 in
// an owner word would make every prober with a working /proc declare us dead.
process_identity compute_identity()
{
    process_identity id;
    id.pid = static_cast<std::uint32_t>(::getpid());
    const process_state_info self = probe_start_time(id.pid);
    if (self.state != process_state::running || self.start_time == 0)
        throw_errno(errno ? errno : ENOENT, "/proc/self/stat",
                    "cannot read this process's start time (needed to identify it to other processes)");
    id.start_time = self.start_time;
    id.pidns = read_pidns("/proc/self/ns/pid");
    return id;
}

} // namespace

int reopen_fd(int fd, bool cloexec) noexcept
{
    char path[32];
    proc_fd_path(fd, path);
    return ::open(path, O_RDWR | (cloexec ? O_CLOEXEC : 0));
}

const process_identity& current_identity()
{
    static std::once_flag once;
    std::call_once(once, [] { ::pthread_atfork(atfork_prepare, atfork_parent, atfork_child); });
    // Recomputed when the fork generation moved: the cache belongs to the parent.
    static process_identity cached;
    static std::uint32_t cached_generation = ~0u;
    // registry_mutex is held across fork() by the prepare handler, so a child
    // never inherits it locked by a thread that does not exist there.
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (cached_generation != fork_generation()) {
        cached = compute_identity(); // on failure nothing is cached: the next call tries again
        cached_generation = fork_generation();
    }
    return cached;
}

process_state_info probe_start_time(std::uint32_t pid) noexcept
{
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
    std::FILE* f = std::fopen(path, "re");
    if (!f) return {errno == ENOENT || errno == ESRCH ? process_state::gone : process_state::unknown, 0};
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    if (n == 0) return {process_state::gone, 0}; // it exited while we read
    buf[n] = '\0';
    // The command name (field 2) may contain spaces and parentheses: fields
    // are counted from the last ')'.
    const char* p = std::strrchr(buf, ')');
    if (!p) return {process_state::unknown, 0};
    ++p;
    char state = 0;
    long threads = 0;
    unsigned long long start = 0;
    // Field 3 is the state, field 20 the number of threads, field 22 the start time.
    if (std::sscanf(p, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld %*d %llu", &state,
                    &threads, &start) != 3)
        return {process_state::unknown, 0};
    // A zombie holds nothing, unless only its main thread has exited
    // (pthread_exit) while other threads run: then it is alive.
    if ((state == 'Z' || state == 'X' || state == 'x') && threads <= 1) return {process_state::gone, start};
    return {process_state::running, start};
}

const process_identity* known_identity() noexcept
{
    try {
        return &current_identity();
    } catch (...) {
        return nullptr;
    }
}

liveness probe_process(std::uint32_t pid, std::uint64_t start_time, std::uint64_t start_mask,
                       std::uint64_t pidns) noexcept
{
    if (pid == 0) return liveness::dead;
    const process_identity* me = known_identity();
    if (!me) return liveness::unknown;
    const std::uint64_t ours = me->pidns;
    if (pidns != 0 && ours != 0 && pidns != ours) return liveness::unknown;
    const process_state_info s = probe_start_time(pid);
    switch (s.state) {
    case process_state::unknown: return liveness::unknown; // never "dead" on a failed look
    case process_state::gone: return liveness::dead;
    case process_state::running: break;
    }
    // Same PID, other start time: the PID was reused; ours is dead.
    return (s.start_time & start_mask) == (start_time & start_mask) ? liveness::alive : liveness::dead;
}

int open_lock_description(int fd)
{
    current_identity(); // installs the fork handlers
    // Opened and registered under the lock that fork()'s prepare handler
    // takes: no fork can copy the new fd before it is registered.
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto& v = private_fds();
    v.reserve(v.size() + 1); // the push_back below cannot throw after the open
    int own = reopen_fd(fd, true);
    const bool shared = own < 0;
    if (shared) own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return -1;
    v.push_back({own, shared});
    return own;
}

void close_lock_description(int fd) noexcept
{
    if (fd < 0) return;
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto& v = private_fds();
    auto it = std::find_if(v.begin(), v.end(), [fd](const registered_fd& r) { return r.fd == fd; });
    if (it != v.end()) v.erase(it);
    ::close(fd);
}

bool has_private_description(int fd) noexcept
{
    std::lock_guard<std::mutex> lock(registry_mutex);
    for (const registered_fd& r : private_fds())
        if (r.fd == fd) return !r.shared_description;
    return false;
}

} // namespace detail
} // namespace shmkit
