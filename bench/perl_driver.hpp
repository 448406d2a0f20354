// bench/perl_driver.hpp: driving a Perl baseline from a benchmark.
//
// A perl process (perl -e SCRIPT) is started with its stdin and stdout on
// pipes; it prints "ready", then makes one timed run per command line it is
// sent (typically "go N STAMP") and answers with its own CLOCK_MONOTONIC
// start and end times (Time::HiRes, the clock of the harness) and how long
// it waited for a CPU (/proc/$$/schedstat). measure_external() turns those
// runs into a result with the calibration, warm-up, disturbed-run rule and
// median of the harness's measure(). Used by bench_share (IPC::ShareLite)
// and bench_kv (Cache::FastMmap).
#ifndef SHMKIT_BENCH_PERL_DRIVER_HPP
#define SHMKIT_BENCH_PERL_DRIVER_HPP

#include "harness.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace shmkit_bench {

/// Lines from a pipe, with a deadline.
class line_reader {
public:
    explicit line_reader(int fd) : fd_(fd) {}
    std::string read_line(std::int64_t deadline_ns, const std::string& who)
    {
        for (;;) {
            const auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            wait_readable(deadline_ns, who);
            char chunk[512];
            const ssize_t r = ::read(fd_, chunk, sizeof chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw_errno("read from " + who);
            if (r == 0) throw std::runtime_error(who + " exited before answering (see its message above)");
            buf_.append(chunk, std::size_t(r));
        }
    }

private:
    void wait_readable(std::int64_t deadline_ns, const std::string& who) const
    {
        for (;;) {
            const std::int64_t left_ms = (deadline_ns - now_ns()) / 1000000;
            if (left_ms <= 0) throw std::runtime_error(who + " did not answer in time");
            struct pollfd p = {fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, int(std::min<std::int64_t>(left_ms, 1 << 30)));
            if (r > 0) return;
            if (r < 0 && errno != EINTR) throw_errno("poll");
        }
    }
    int fd_;
    std::string buf_;
};

/// One perl process: its pipes and its pid.
struct perl_process {
    pid_t pid = -1;
    std::unique_ptr<pipe_pair> to = std::make_unique<pipe_pair>(), from = std::make_unique<pipe_pair>();
    line_reader reader{from->rd};
    std::string name;

    void send(const std::string& line) { detail::write_all(to->wr, line.data(), line.size()); }
};

/// Starts `p` in `group`: perl with `args` (args[0] is "perl"), stdin and
/// stdout on p's pipes, stderr inherited; pinned to the pin_cpu-th allowed
/// CPU when pin_cpu >= 0. `who` prefixes the message of a failed exec.
inline void spawn_perl(worker_group& group, perl_process& p, const std::vector<std::string>& args, int pin_cpu,
                       const std::string& who)
{
    p.pid = group.spawn([&]() -> int {
        if (::dup2(p.to->rd, 0) < 0 || ::dup2(p.from->wr, 1) < 0) throw_errno("dup2");
        if (pin_cpu >= 0) detail::pin_to_nth_cpu(unsigned(pin_cpu));
        std::signal(SIGPIPE, SIG_DFL);
        std::vector<char*> argv;
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execvp("perl", argv.data());
        std::perror((who + ": exec perl").c_str());
        return 127;
    });
    p.to->close_rd();
    p.from->close_wr();
}

/// Whether `perl -MMODULE -e 1` succeeds (perl installed, the module
/// loads); its output is discarded.
inline bool perl_has_module(const std::string& module)
{
    worker_group group;
    group.spawn([&]() -> int {
        const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::dup2(null, 2);
        }
        const std::string m = "-M" + module;
        char* argv[] = {const_cast<char*>("perl"), const_cast<char*>(m.c_str()), const_cast<char*>("-e"),
                        const_cast<char*>("1"), nullptr};
        ::execvp("perl", argv);
        return 127;
    });
    try {
        group.wait_all(60);
        return true;
    }
    catch (const std::runtime_error&) {
        return false;
    }
}

/// measure() for runs timed elsewhere (harness.hpp's measure_runs()).
template <class Run>
result measure_external(const options& opt, Run run_once)
{
    return measure_runs(opt, run_once);
}

} // namespace shmkit_bench

#endif
