// Process identity, liveness probes, and what a forked child must redo.
#include <shmkit/detail/identity.hpp>
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

// fds of shmkit regions in this process. Guarded by registry_mutex, which the
// atfork prepare handler takes so that the child sees a consistent vector.
std::mutex registry_mutex;
std::vector<int>& private_fds()
{
    static std::vector<int> fds;
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
    for (int fd : private_fds()) {
        const int fresh = reopen_fd(fd, true);
        if (fresh < 0) continue; // no /proc: the handle falls back to PID probing
        ::dup3(fresh, fd, O_CLOEXEC);
        ::close(fresh);
    }
    fork_generation_counter.fetch_add(1, std::memory_order_relaxed);
    // Locks the forking thread held belong to the parent (their words name
    // the parent's token); the child holds none of them.
    sync::detail::held_by_this_thread.count = 0;
    registry_mutex.unlock();
}

std::uint64_t read_pidns(const char* path) noexcept
{
    struct stat st;
    return ::stat(path, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

process_identity compute_identity()
{
    process_identity id;
    id.pid = static_cast<std::uint32_t>(::getpid());
    id.start_time = process_start_time(id.pid);
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
        cached = compute_identity();
        cached_generation = fork_generation();
    }
    return cached;
}

std::uint64_t process_start_time(std::uint32_t pid) noexcept
{
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
    std::FILE* f = std::fopen(path, "re");
    if (!f) return 0;
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // The command name (field 2) may contain spaces and parentheses: fields
    // are counted from the last ')'.
    const char* p = std::strrchr(buf, ')');
    if (!p) return 0;
    ++p;
    char state = 0;
    unsigned long long start = 0;
    // Field 3 is the state, field 22 the start time.
    if (std::sscanf(p, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                    &state, &start) != 2)
        return 0;
    if (state == 'Z' || state == 'X' || state == 'x') return 0; // zombies hold nothing
    return start;
}

liveness probe_process(std::uint32_t pid, std::uint64_t start_time, std::uint64_t pidns) noexcept
{
    if (pid == 0) return liveness::dead;
    const std::uint64_t ours = current_identity().pidns;
    if (pidns != 0 && ours != 0 && pidns != ours) return liveness::unknown;
    const std::uint64_t now = process_start_time(pid);
    return (now != 0 && now == start_time) ? liveness::alive : liveness::dead;
}

void register_private_fd(int fd)
{
    current_identity(); // installs the fork handlers
    std::lock_guard<std::mutex> lock(registry_mutex);
    private_fds().push_back(fd);
}

void unregister_private_fd(int fd) noexcept
{
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto& v = private_fds();
    auto it = std::find(v.begin(), v.end(), fd);
    if (it != v.end()) v.erase(it);
}

} // namespace detail
} // namespace shmkit
