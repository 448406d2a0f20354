// shmkit demo: forking the workers, the kill, reaping.
#include "demo_crew.hpp"
#include "demo_worker.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shmkit_tool::demo {

namespace {

volatile std::sig_atomic_t stop_signal = 0;

extern "C" void note_stop_signal(int sig) { stop_signal = sig; }

constexpr int handled[3] = {SIGINT, SIGTERM, SIGHUP};

void check_stop_signal()
{
    if (stop_signal)
        throw std::runtime_error(std::string("interrupted by ") + (stop_signal == SIGINT ? "SIGINT" : stop_signal == SIGTERM ? "SIGTERM" : "SIGHUP"));
}

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

constexpr std::int64_t silence_limit_ns = 60'000'000'000; // a minute without a report: something is stuck

} // namespace

signal_scope::signal_scope()
{
    stop_signal = 0;
    struct sigaction sa = {};
    sa.sa_handler = note_stop_signal; // no SA_RESTART: a blocked poll/waitpid returns EINTR
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < 3; ++k) ::sigaction(handled[k], &sa, &old_[k]);
    struct sigaction ign = {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, &old_[3]);
}

signal_scope::~signal_scope()
{
    for (int k = 0; k < 3; ++k) ::sigaction(handled[k], &old_[k], nullptr);
    ::sigaction(SIGPIPE, &old_[3], nullptr);
}

crew::crew(const plan& p, segments& s) : p_(p), s_(s), workers_(static_cast<std::size_t>(p.workers)) {}

crew::~crew()
{
    for (worker_record& r : workers_)
        if (r.pid > 0 && !r.reaped) ::kill(r.pid, SIGKILL);
    for (int w = 0; w < p_.workers; ++w)
        if (workers_[static_cast<std::size_t>(w)].pid > 0) reap(w, 0);
    for (int fd : report_)
        if (fd >= 0) ::close(fd);
    for (const auto& g : go_)
        for (int fd : g)
            if (fd >= 0) ::close(fd);
}

void crew::start()
{
    // A packet pipe: each report is one write and one read. Each packet
    // takes a page of the pipe: make room for plenty.
    if (::pipe2(report_, O_CLOEXEC | O_DIRECT) != 0) throw_errno("pipe2");
    ::fcntl(report_[0], F_SETPIPE_SZ, 1 << 20);
    go_.assign(workers_.size(), {-1, -1});
    for (auto& g : go_)
        if (::pipe2(g.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
    const pid_t parent = ::getpid();
    for (int w = 0; w < p_.workers; ++w) {
        const pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) std::_Exit(3);
            for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
            ::close(report_[0]);
            for (const auto& g : go_) ::close(g[1]);
            std::_Exit(run_worker(p_, w, report_[1], go_[static_cast<std::size_t>(w)][0]));
        }
        workers_[static_cast<std::size_t>(w)].pid = pid;
    }
    ::close(report_[1]);
    report_[1] = -1;
    for (auto& g : go_) {
        ::close(g[0]);
        g[0] = -1;
    }
    last_heard_ns_ = now_ns();
}

void crew::handle(const report& m)
{
    if (m.worker < 0 || m.worker >= p_.workers) return;
    worker_record& r = workers_[static_cast<std::size_t>(m.worker)];
    switch (m.kind) {
    case report::progress: r.last_progress = m.round; break;
    case report::halfway: r.at_half = true; break;
    case report::done:
        r.done = true;
        r.done_report = m;
        break;
    case report::failed: r.failures.push_back(std::string(m.text, ::strnlen(m.text, sizeof m.text))); break;
    default: break;
    }
}

bool crew::pump(int timeout_ms)
{
    check_stop_signal();
    pollfd pf = {report_[0], POLLIN, 0};
    const int n = ::poll(&pf, 1, timeout_ms);
    if (n < 0) {
        if (errno != EINTR) throw_errno("poll");
        check_stop_signal();
        return true;
    }
    if (n == 0) {
        if (now_ns() - last_heard_ns_ > silence_limit_ns)
            throw std::runtime_error("the workers stopped reporting for a minute");
        return true;
    }
    report m;
    const ssize_t got = ::read(report_[0], &m, sizeof m);
    if (got == 0) return false; // every worker has closed its end
    if (got < 0) {
        if (errno != EINTR) throw_errno("read");
        return true;
    }
    last_heard_ns_ = now_ns();
    if (got == static_cast<ssize_t>(sizeof m)) handle(m);
    return true;
}

void crew::reap(int w, int options)
{
    worker_record& r = workers_[static_cast<std::size_t>(w)];
    if (r.reaped) return;
    int status = 0;
    pid_t got;
    do got = ::waitpid(r.pid, &status, options);
    while (got < 0 && errno == EINTR);
    if (got == r.pid && (WIFEXITED(status) || WIFSIGNALED(status))) {
        r.reaped = true;
        r.status = status;
    }
}

kill_record crew::kill(std::mt19937_64& rng)
{
    const int victim = victim_ = p_.victim, kill_round = p_.kill_round;
    worker_record& v = workers_[static_cast<std::size_t>(victim)];
    kill_record k;
    k.victim = victim;
    k.pid = v.pid;

    // 1. It is working: it said so on the pipe.
    while (v.last_progress < kill_round) {
        if (!v.failures.empty()) throw std::runtime_error("worker " + std::to_string(victim) + " failed: " + v.failures[0]);
        if (!pump(1000)) throw std::runtime_error("every worker exited before the kill");
    }

    // 2. Watch its phase word; once it is inside its critical section,
    //    freeze it (SIGSTOP) after a random delay of up to 2 us, wherever
    //    that lands. The phase word, read while it is frozen, says where it
    //    is: still inside, it is killed there; out again, it goes on
    //    (SIGCONT) and the parent waits for its next entry. Timing only
    //    places the freeze: what was caught is read, never assumed.
    std::uniform_int_distribution<int> delay_ns(0, 2'000);
    const std::size_t phase_at = p_.phase_index(victim);
    const auto inside = [](std::int64_t ph) { return ph == in_ledger || ph == in_kv_put; };
    for (;;) {
        const std::int64_t give_up = now_ns() + silence_limit_ns;
        std::int64_t ph = working;
        for (unsigned spins = 0;; ++spins) {
            ph = s_.counters().get(phase_at);
            if (inside(ph) || ph == finished) break;
            if (spins % 1024 == 0) {
                drain();
                check_stop_signal();
                if (now_ns() > give_up) throw std::runtime_error("worker " + std::to_string(victim) + " stopped moving");
            }
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(delay_ns(rng));
        while (std::chrono::steady_clock::now() < until) {
        }
        if (::kill(v.pid, SIGSTOP) != 0) throw_errno("kill");
        int status = 0;
        pid_t got;
        do {
            got = ::waitpid(v.pid, &status, WUNTRACED);
            if (got < 0 && errno == EINTR) check_stop_signal();
        } while (got < 0 && errno == EINTR);
        if (got != v.pid) throw_errno("waitpid");
        if (!WIFSTOPPED(status)) {
            v.reaped = true;
            v.status = status;
            drain();
            throw std::runtime_error("worker " + std::to_string(victim) + " exited before it could be killed" +
                                     (v.failures.empty() ? std::string() : ": " + v.failures[0]));
        }
        ++k.freezes;
        k.phase = s_.counters().get(phase_at);
        if (inside(k.phase) || k.phase == finished || k.freezes == max_freezes) break;
        ::kill(v.pid, SIGCONT);
    }

    // 3. What it holds, while it cannot change it; then the kill.
    k.rounds_done = s_.counters().get(p_.done_index(victim));
    s_.slots().each_allocated([&](std::size_t i) {
        if (s_.slots().owner(i) == v.pid) k.slots_held.push_back(i);
    });
    if (::kill(v.pid, SIGKILL) != 0) throw_errno("kill");
    k.killed_at_ns = now_ns();
    reap(victim, 0);
    return k;
}

void crew::drain()
{
    for (;;) {
        pollfd pf = {report_[0], POLLIN, 0};
        if (::poll(&pf, 1, 0) <= 0 || !pump(0)) return;
    }
}

void crew::let_go(int w)
{
    const int fd = go_[static_cast<std::size_t>(w)][1];
    if (fd < 0) return;
    const char c = 'g'; // (the pipe stays open: EOF is the end, see finish())
    ssize_t n;
    do n = ::write(fd, &c, 1);
    while (n < 0 && errno == EINTR);
}

void crew::finish()
{
    for (int w = 0; w < p_.workers; ++w)
        if (w != victim_) let_go(w);
    // EOF on its pipe lets a worker that has done its rounds exit.
    for (auto& g : go_) {
        if (g[1] >= 0) ::close(g[1]);
        g[1] = -1;
    }
    while (pump(1000)) {
    }
    for (int w = 0; w < p_.workers; ++w) reap(w, 0);
}

} // namespace shmkit_tool::demo
