// Helpers for multi-process tests: scratch directories that are always
// removed, children that are always reaped, pipes for synchronisation.
#ifndef SHMKIT_TEST_SUPPORT_HPP
#define SHMKIT_TEST_SUPPORT_HPP

#include <boost/test/unit_test.hpp>

#include <shmkit/error.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

/// A key (System V IPC, shmkit::share) no other test uses: `top` as its top
/// byte (each suite has its own), the low 16 bits of the PID, then a counter
/// of this process times `step` (a test may use the `step` keys from it).
inline key_t unique_key(unsigned top, unsigned step = 1)
{
    static unsigned counter = 0;
    return static_cast<key_t>(top << 24 | (static_cast<unsigned>(::getpid()) & 0xffffu) << 8 |
                              (counter++ & 0xffu) * step);
}

/// A fresh directory under /tmp, removed with everything in it on scope exit.
class scratch_dir {
public:
    scratch_dir()
    {
        char tmpl[] = "/tmp/shmkit-test.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~scratch_dir()
    {
        ::nftw(path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
               FTW_DEPTH | FTW_PHYS);
    }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// A unique POSIX shm name, removed on scope exit.
class shm_name {
public:
    explicit shm_name(const std::string& tag)
        : name_("/shmkit-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++))
    {
    }
    ~shm_name() { ::shm_unlink(name_.c_str()); }
    const std::string& str() const { return name_; }
    std::string path() const { return "/dev/shm" + name_; }

private:
    static int& counter()
    {
        static int c = 0;
        return c;
    }
    std::string name_;
};

/// A pipe; both ends closed on scope exit.
struct pipe_pair {
    int rd = -1, wr = -1;
    pipe_pair()
    {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        rd = p[0];
        wr = p[1];
    }
    ~pipe_pair()
    {
        if (rd >= 0) ::close(rd);
        if (wr >= 0) ::close(wr);
    }
    void send(char c = 'x') const
    {
        if (::write(wr, &c, 1) != 1) std::_Exit(90);
    }
    /// Reads one byte; returns 0 on EOF (the writer died or closed).
    char receive() const
    {
        char c = 0;
        ssize_t r;
        do { r = ::read(rd, &c, 1); } while (r < 0 && errno == EINTR);
        return r == 1 ? c : 0;
    }
    /// Reads one byte, waiting at most `limit`; returns 0 on EOF or timeout.
    char receive(std::chrono::milliseconds limit) const
    {
        struct pollfd p = {rd, POLLIN, 0};
        int r;
        do { r = ::poll(&p, 1, static_cast<int>(limit.count())); } while (r < 0 && errno == EINTR);
        return r > 0 ? receive() : 0;
    }
};

/// Waits, at most `limit`, until process `pid` (a child of this process) has
/// exited, without reaping it: it stays a zombie, for tests about what a dead
/// but unreaped process still holds (waitid's WNOWAIT alone has no deadline).
/// True if it exited in time.
inline bool until_exited(pid_t pid, std::chrono::milliseconds limit)
{
    if (pid <= 0) return false;
    // pidfd + poll: wakes exactly when the child exits, bounded by `limit`.
    const int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pfd >= 0) {
        struct pollfd p = {pfd, POLLIN, 0};
        int r;
        do { r = ::poll(&p, 1, static_cast<int>(limit.count())); } while (r < 0 && errno == EINTR);
        ::close(pfd);
        return r > 0;
    }
    // No pidfd (a kernel before 5.3): looks for the exit every 5 ms.
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | WNOHANG) != 0) return false;
        if (info.si_pid == pid) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5)); // polling an exit, not ordering processes
    }
}

/// Reaps process `pid` (a child of this process), waiting at most `limit`;
/// kills it if it overruns. Returns the exit status, 128 + signal, or -1 on
/// overrun.
inline int wait_for_exit(pid_t pid, std::chrono::milliseconds limit)
{
    if (pid <= 0) return -2; // no child (waited for already): never kill(-1)
    int status = 0;
    if (!until_exited(pid, limit)) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        return -1;
    }
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -2;
}

/// A forked child running `body`; its exit status is the body's return
/// value (or 99 if it threw). Killed and reaped on scope exit if still running.
/// The child restores default signal dispositions, so a crash kills it
/// instead of re-entering Boost.Test's handlers; an alarm bounds it, and it
/// dies with its parent.
class child {
public:
    static constexpr unsigned alarm_seconds = 120;

    /// Starts the calling child's alarm again. A worker that lives through
    /// a whole kill loop calls it after each step it completes, so that the
    /// alarm bounds a worker that makes no progress, not the loop, which may
    /// outlast it on a loaded machine (sanitizers, CI).
    static void made_progress() { ::alarm(alarm_seconds); }

    explicit child(const std::function<int()>& body)
    {
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // Never outlive a test process that was itself killed.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) std::_Exit(98);
            for (int sig : {SIGALRM, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS})
                ::signal(sig, SIG_DFL);
            ::alarm(alarm_seconds);
            int rc = 99;
            try {
                rc = body();
            } catch (...) {
            }
            std::_Exit(rc);
        }
    }
    child(child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
    child(const child&) = delete;
    ~child()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    void kill(int sig = SIGKILL) const { ::kill(pid_, sig); }

    /// Waits for the child, at most `limit`; kills it if it overruns.
    /// Returns the exit status, 128 + signal, or -1 on overrun.
    int wait(std::chrono::milliseconds limit = std::chrono::seconds(60))
    {
        return wait_for_exit(std::exchange(pid_, -1), limit);
    }

private:
    pid_t pid_ = -1;
};

/// Shared anonymous memory for test bookkeeping across fork().
template <class T>
T* shared_scratch(std::size_t n = 1)
{
    void* p = ::mmap(nullptr, sizeof(T) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    return static_cast<T*>(p);
}

/// The error code and message of the shmkit::error `f` throws (0 and
/// nothing if it throws none).
struct thrown {
    int code = 0;
    std::string what;
};
inline thrown error_of(const std::function<void()>& f)
{
    try {
        f();
    } catch (const shmkit::error& e) {
        return {e.code().value(), e.what()};
    }
    return {};
}

/// The error code of the shmkit::error `f` throws, or 0 if it throws none.
inline int error_code_of(const std::function<void()>& f) { return error_of(f).code; }

inline std::string read_file(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& bytes)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Waits, at most `limit`, until `holds()` is true, yielding between looks.
/// Returns its last value: false if it never held within `limit`.
template <class Pred>
bool until(Pred&& holds, std::chrono::milliseconds limit)
{
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (holds()) return true;
        if (std::chrono::steady_clock::now() >= end) return holds();
        std::this_thread::yield();
    }
}

/// The thread ID (gettid) of the calling thread, for until_futex_waiting.
inline pid_t this_thread_id() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// Waits, at most `limit`, until thread `tid` of this process is blocked in
/// a futex wait on a word inside the `size` bytes at `object`. Read from
/// /proc/self/task/TID/syscall, which names the system call and arguments of
/// a blocked thread ("running" for one that runs): the number SYS_futex,
/// then the futex word's address. For a lock that has no observable waiter
/// count. True once seen; false if not within `limit`.
inline bool until_futex_waiting(pid_t tid, const void* object, std::size_t size, std::chrono::milliseconds limit)
{
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
    const auto from = reinterpret_cast<std::uintptr_t>(object);
    return until(
        [&] {
            const std::string line = read_file(path);
            char* rest = nullptr;
            const long nr = std::strtol(line.c_str(), &rest, 10);
            if (rest == line.c_str() || nr != SYS_futex) return false;
            const std::uintptr_t word = std::strtoull(rest, nullptr, 16); // "0x..."
            return word >= from && word - from < size;
        },
        limit);
}

/// Best effort: waits (at most `limit`) until process `pid` sleeps, so that a
/// child about to block in a lock is likely blocked in it. Nothing may depend
/// on it: the assertions after it must hold whether or not it has.
inline void until_sleeping(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(2))
{
    const auto end = std::chrono::steady_clock::now() + limit;
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    while (std::chrono::steady_clock::now() < end) {
        const std::string st = read_file(path);
        const auto paren = st.rfind(')');
        if (paren != std::string::npos && paren + 2 < st.size() && st[paren + 2] == 'S') return;
        std::this_thread::yield();
    }
}

} // namespace test

#endif
