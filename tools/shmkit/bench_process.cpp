// shmkit bench: starting the benchmark programs and waiting for them (see
// bench_report.hpp).
#include "bench_report.hpp"

#include <cerrno>
#include <chrono>
#include <iostream>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shmkit_tool {

/// Runs argv[0] with stdout to `out_path` (if not empty) or /dev/null,
/// stdin from /dev/null, stderr inherited. Returns the pid; -1 on failure.
pid_t start_program(const std::vector<std::string>& argv, const std::string& out_path)
{
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out = ::open(out_path.empty() ? "/dev/null" : out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0) ::_exit(126);
    if (out_path.empty()) ::dup2(out, 2);
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
}

/// Waits for `pid`; the exit status, 128 + signal for a signal.
int wait_program(pid_t pid, const std::function<void()>& tick)
{
    for (;;) {
        int st = 0;
        const pid_t r = ::waitpid(pid, &st, tick ? WNOHANG : 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return 127;
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        tick();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

bool perl_has(const std::string& module)
{
    const pid_t pid = start_program({"perl", "-M" + module, "-e", "1"}, "");
    return pid > 0 && wait_program(pid) == 0;
}

} // namespace shmkit_tool
