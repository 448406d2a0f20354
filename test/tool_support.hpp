// Running the shmkit tool from a test: its path comes as the test
// program's first argument (test/Jamfile passes the built tool), its
// output is captured, and every run is bounded. And what the tool suites
// make for it to look at: shares and stores removed on every path, a raw
// segment with locks.
#ifndef SHMKIT_TEST_TOOL_SUPPORT_HPP
#define SHMKIT_TEST_TOOL_SUPPORT_HPP

#include "support.hpp"

#include <shmkit/kv_store.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace test {

/// What one run of the tool did.
struct tool_result {
    int status = -1; ///< exit status; 128 + signal; -1 if it overran and was killed
    std::string out, err;
};

/// The tool's path (the first argument of the test program).
inline std::string tool_path()
{
    const auto& m = boost::unit_test::framework::master_test_suite();
    if (m.argc < 2) throw std::runtime_error("the test needs the shmkit tool's path as its first argument");
    return m.argv[1];
}

/// Runs `shmkit args...` with `input` on its stdin; waits at most `limit`.
inline tool_result run_tool(const std::vector<std::string>& args, const std::string& input = "",
                            std::chrono::milliseconds limit = std::chrono::seconds(120))
{
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
        throw std::runtime_error("pipe failed");
    const std::string path = tool_path();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(path.c_str()));
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(path.c_str(), argv.data());
        std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    tool_result r;
    std::size_t written = 0;
    int to = in[1];
    if (input.empty()) {
        ::close(to);
        to = -1;
    } else {
        ::fcntl(to, F_SETFL, O_NONBLOCK);
    }
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool out_open = true, err_open = true, overran = false;
    while (out_open || err_open) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            overran = true;
            break;
        }
        struct pollfd p[3] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0},
                              {to, POLLOUT, 0}};
        if (::poll(p, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        char buf[65536];
        for (int k = 0; k < 2; ++k) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = ::read(k == 0 ? out[0] : err[0], buf, sizeof buf);
            if (n > 0) (k == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
            else (k == 0 ? out_open : err_open) = false;
        }
        if (to >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const ssize_t n = ::write(to, input.data() + written, input.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            if (n < 0 && errno != EAGAIN) written = input.size();
            if (written == input.size()) {
                ::close(to);
                to = -1;
            }
        }
    }
    if (to >= 0) ::close(to);
    ::close(out[0]);
    ::close(err[0]);
    if (overran) ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (overran) r.status = -1;
    else if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) r.status = 128 + WTERMSIG(status);
    return r;
}

/// Runs `shmkit args...` until it has written `marker`, then sends it `sig`;
/// `out` gets what it wrote on stdout and stderr (one pipe: in the order it
/// wrote them). Every wait is bounded by `limit`: a tool still running then
/// (or still holding the pipe) is killed. Returns its exit status, 128 +
/// signal if it died of one, -1 if it overran and was killed. (Shared by the
/// suites that interrupt a long-running command: watch, demo.)
inline int run_then_signal(const std::vector<std::string>& args, const std::string& marker, int sig,
                           std::string& out, std::chrono::milliseconds limit = std::chrono::seconds(60))
{
    pipe_pair o;
    const std::string path = tool_path();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(o.wr, 1);
        ::dup2(o.wr, 2);
        std::vector<char*> argv{const_cast<char*>(path.c_str())};
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(path.c_str(), argv.data());
        std::_Exit(127);
    }
    ::close(o.wr);
    o.wr = -1;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const auto left = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    };
    bool signalled = false, overran = false;
    for (;;) {
        if (!signalled && out.find(marker) != std::string::npos) {
            ::kill(pid, sig);
            signalled = true;
        }
        struct pollfd p = {o.rd, POLLIN, 0};
        const int r = left().count() > 0 ? ::poll(&p, 1, static_cast<int>(left().count())) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            overran = true;
            break;
        }
        char buf[4096];
        const ssize_t n = ::read(o.rd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    if (overran) {
        ::kill(pid, SIGKILL);
        wait_for_exit(pid, std::chrono::seconds(10));
        return -1;
    }
    // EOF: it closed its output, so it is exiting (or overruns what is left).
    return wait_for_exit(pid, std::max(left(), std::chrono::milliseconds(1000)));
}

/// A native share key of its own (unique_key(Top): each suite names its
/// byte), the share's segments removed before use and on every path.
template <unsigned Top>
struct share_guard {
    key_t key = unique_key(Top);
    share_guard() { shmkit::share::remove(key); }
    ~share_guard() { shmkit::share::remove(key); }
    /// The tool's name for the share ("share:KEY").
    std::string target() const { return "share:" + std::to_string(key); }
};

/// A kv_store name unique to this process ("shmkit-test-kv-TAG-PID"), the
/// store (root and tables) removed before use and on every path.
struct kv_guard {
    std::string name;
    explicit kv_guard(const std::string& tag) : name("shmkit-test-kv-" + tag + "-" + std::to_string(::getpid()))
    {
        shmkit::kv_store::remove(name);
    }
    ~kv_guard()
    {
        try {
            shmkit::kv_store::remove(name);
        } catch (...) {
        }
    }
};

/// The layout of a raw segment with two rwlocks and a mutex.
inline shmkit::segment_layout lock_layout()
{
    shmkit::segment_layout l;
    l.data_size = 64;
    l.n_rwlocks = 2;
    l.n_mutexes = 1;
    l.attach_capacity = 8;
    return l;
}

} // namespace test

#endif
