// bench/harness.hpp: a small harness for shmkit benchmarks.
//
// What it does:
//   - runs a loop body N times in this process (run_single), or in K forked
//     worker processes started together (run_forked): every worker runs the
//     same N operations, the start is released through a pipe (no sleeps),
//     and the rate is K*N divided by the time from the first worker's start
//     to the last worker's end (so start skew counts against the result);
//   - picks N by calibration so that one measurement takes about --time
//     seconds (or uses --iterations N), repeats each measurement --runs times
//     and reports the median;
//   - watches for disturbance: each worker reads how long it was runnable
//     but waiting for a CPU (/proc/thread-self/schedstat); runs in which that
//     exceeds --max-preempted are redone (up to 3x --runs) and a figure that
//     only had disturbed runs is flagged "noisy" in the table;
//   - pins worker w of a multi-process measurement to CPU w (--no-pin to
//     leave placement to the scheduler), so that two workers contend in
//     parallel rather than take turns on one CPU;
//   - prints an aligned plain-text table: row, shmkit ops/s, baseline,
//     baseline ops/s, ratio, and an optional target check; with --tsv FILE
//     also writes every row, machine-readable, to FILE (see tsv_sink(); what
//     `shmkit bench` reads).
//
// Children are always reaped: a worker_group kills (SIGKILL) and waits for
// every child it still has when it is destroyed, also on exceptions, and
// each child dies with its parent (PR_SET_PDEATHSIG).
//
// Bodies: a "maker" is a callable, run once per worker (in the child, after
// fork, so it can take per-process handles such as segment::rwlock()), that
// returns the loop body: a callable run once per operation. Both are
// templates here, so the body is inlined into the timed loop.
#ifndef SHMKIT_BENCH_HARNESS_HPP
#define SHMKIT_BENCH_HARNESS_HPP

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <iomanip>
#include <iostream>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shmkit_bench {

// ---------------------------------------------------------------- utilities

/// CLOCK_MONOTONIC in nanoseconds (vDSO, no syscall).
inline std::int64_t now_ns() noexcept
{
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// Keeps `v` alive as far as the optimiser knows (no code emitted).
template <class T>
inline void do_not_optimize(const T& v) noexcept
{
    asm volatile("" : : "r,m"(v) : "memory");
}

[[noreturn]] inline void throw_errno(const std::string& what)
{
    throw std::system_error(errno, std::generic_category(), what);
}

/// An anonymous MAP_SHARED mapping, inherited by forked children: where
/// baselines and the harness's own control words live. Zero-filled.
class shared_mapping {
public:
    explicit shared_mapping(std::size_t bytes) : size_(round_up(bytes))
    {
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap(MAP_SHARED|MAP_ANONYMOUS)");
        data_ = p;
    }
    ~shared_mapping()
    {
        if (data_) ::munmap(data_, size_);
    }
    shared_mapping(const shared_mapping&) = delete;
    shared_mapping& operator=(const shared_mapping&) = delete;

    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    template <class T>
    T* at(std::size_t offset = 0) const noexcept
    {
        return reinterpret_cast<T*>(static_cast<char*>(data_) + offset);
    }

private:
    static std::size_t round_up(std::size_t n)
    {
        const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        return (std::max<std::size_t>(n, 1) + page - 1) / page * page;
    }
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

/// One object of type T, constructed in its own shared mapping.
template <class T>
class shared_object {
public:
    template <class... Args>
    explicit shared_object(Args&&... args) : map_(sizeof(T))
    {
        obj_ = new (map_.data()) T(std::forward<Args>(args)...);
    }
    ~shared_object() { obj_->~T(); }
    T& operator*() const noexcept { return *obj_; }
    T* operator->() const noexcept { return obj_; }
    T* get() const noexcept { return obj_; }

private:
    shared_mapping map_;
    T* obj_;
};

// ------------------------------------------------------------------ options

struct options {
    std::uint64_t iterations = 0; ///< per worker and measurement; 0: calibrate to `seconds`
    double seconds = 0.2;         ///< target duration of one measurement when calibrating
    unsigned runs = 5;            ///< measurements per figure; the median is reported
    unsigned procs = 2;           ///< worker processes of the multi-process rows
    bool quick = false;           ///< smoke run: few, short measurements
    bool strict = false;          ///< exit status 2 if a target is not met
    std::string filter;           ///< only rows whose name contains this
    std::uint64_t timeout_s = 600; ///< a forked measurement that takes longer is killed
    double max_preempted = 0.02;  ///< a run whose worker waited for a CPU longer than this fraction is redone
    bool pin = true;              ///< pin worker w of a multi-process row to CPU w (modulo)
    std::string tsv;              ///< --tsv FILE: machine-readable rows also go there
};

/// The machine-readable sink of --tsv FILE (nullptr: none). One line per
/// table row, tab-separated, '\n'-terminated, flushed as it is written:
///     row  shmkit_ops  baseline  baseline_ops  ratio  target  met  flag
/// row: the row's name (a continuation line of the console table, printed
/// with an empty name, repeats the name of the row it continues); ops/s as
/// decimal numbers; ratio shmkit/baseline, empty when the baseline is 0;
/// target: its text ("target >= 0.9x"), empty without one; met: "met",
/// "not met" or empty; flag: the console's flag ("[noisy: ...]") or empty.
/// Tabs and newlines inside fields become spaces. The first line is a
/// comment: "# shmkit-bench-tsv 1" and the field names.
inline std::FILE*& tsv_sink() noexcept
{
    static std::FILE* f = nullptr;
    return f;
}

inline void print_usage(const char* prog, const std::string& what, std::ostream& os)
{
    os << what << "\n\n"
       << "usage: " << prog << " [options]\n"
       << "  --iterations N   operations per worker per measurement (default: calibrated\n"
       << "                   so one measurement takes --time seconds)\n"
       << "  --time S         seconds per measurement when calibrating (default 0.2)\n"
       << "  --runs R         measurements per figure, the median is shown (default 5)\n"
       << "  --procs K        worker processes of the multi-process rows (default 2)\n"
       << "  --quick          smoke run: --runs 3 --time 0.02\n"
       << "  --filter STR     only rows whose name contains STR\n"
       << "  --no-pin         let the scheduler place the workers of the multi-process rows\n"
       << "                   (default: worker w is pinned to CPU w, modulo the CPUs allowed,\n"
       << "                   so that no two workers share a CPU while there are enough)\n"
       << "  --strict         exit with status 2 if a performance target is not met\n"
       << "  --timeout S      kill a multi-process measurement after S seconds (default 600)\n"
       << "  --max-preempted F  redo a run in which a worker waited for a CPU (preempted by\n"
       << "                   other processes) more than this fraction of it (default 0.02;\n"
       << "                   at most 3x --runs runs, then the least disturbed are kept)\n"
       << "  --tsv FILE       also write every table row to FILE, tab-separated (for tools:\n"
       << "                   `shmkit bench` reads it; format in bench/harness.hpp)\n"
       << "  --help           this text\n";
}

/// Parses argv. Prints usage and exits on --help (status 0) or on a bad
/// argument (status 64). Flags may be given as "--flag value" or "--flag=value".
inline options parse_options(int argc, char** argv, const std::string& what)
{
    options o;
    bool runs_set = false, seconds_set = false;
    auto fail = [&](const std::string& msg) {
        std::cerr << argv[0] << ": " << msg << "\n";
        print_usage(argv[0], what, std::cerr);
        std::exit(64);
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i], val;
        bool has_val = false;
        const auto eq = a.find('=');
        if (a.compare(0, 2, "--") == 0 && eq != std::string::npos) {
            val = a.substr(eq + 1);
            a = a.substr(0, eq);
            has_val = true;
        }
        auto value = [&]() -> std::string {
            if (has_val) return val;
            if (i + 1 >= argc) fail("missing value for " + a);
            return argv[++i];
        };
        // Bounded above too: a cast of a double beyond the integer's range
        // is undefined, and 10^20 worker processes are not a request.
        auto number = [&](double min, double max) -> double {
            const std::string v = value();
            char* end = nullptr;
            errno = 0;
            const double d = std::strtod(v.c_str(), &end);
            if (errno || end == v.c_str() || *end || !(d >= min && d <= max)) {
                std::ostringstream why;
                why << "bad value for " << a << ": " << v << " (" << min << " to " << max << ")";
                fail(why.str());
            }
            return d;
        };
        if (a == "--help" || a == "-h") {
            print_usage(argv[0], what, std::cout);
            std::exit(0);
        }
        else if (a == "--iterations") o.iterations = static_cast<std::uint64_t>(number(1, 1e15));
        else if (a == "--time") o.seconds = number(1e-4, 3600), seconds_set = true;
        else if (a == "--runs") o.runs = static_cast<unsigned>(number(1, 1000)), runs_set = true;
        else if (a == "--procs") o.procs = static_cast<unsigned>(number(1, 1024));
        else if (a == "--quick") o.quick = true;
        else if (a == "--strict") o.strict = true;
        else if (a == "--pin") o.pin = true;
        else if (a == "--no-pin") o.pin = false;
        else if (a == "--filter") o.filter = value();
        else if (a == "--timeout") o.timeout_s = static_cast<std::uint64_t>(number(1, 86400));
        else if (a == "--max-preempted") o.max_preempted = number(0, 1);
        else if (a == "--tsv") o.tsv = value();
        else fail("unknown argument " + a);
    }
    if (!o.tsv.empty()) {
        std::FILE* f = std::fopen(o.tsv.c_str(), "we");
        if (!f) {
            std::cerr << argv[0] << ": cannot open " << o.tsv << ": " << std::strerror(errno) << "\n";
            std::exit(64);
        }
        std::fputs("# shmkit-bench-tsv 1\trow\tshmkit_ops\tbaseline\tbaseline_ops\tratio\ttarget\tmet\tflag\n", f);
        std::fflush(f);
        tsv_sink() = f;
    }
    if (o.quick) {
        if (!runs_set) o.runs = 3;
        if (!seconds_set) o.seconds = 0.02;
    }
    return o;
}

// ------------------------------------------------------------ worker group

/// Forked worker processes, always reaped. Use from a single thread.
class worker_group {
public:
    worker_group() = default;
    worker_group(const worker_group&) = delete;
    worker_group& operator=(const worker_group&) = delete;
    ~worker_group() { kill_all(); }

    /// Forks a child that runs `f()` and exits with its return value (an
    /// exception: message on stderr, status 70). The child never returns
    /// into the caller's frames and runs no atexit handlers.
    template <class F>
    pid_t spawn(F&& f)
    {
        const pid_t parent = ::getpid();
        std::cout.flush();
        std::cerr.flush();
        const pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            int status = 70;
            try {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (::getppid() != parent) ::_exit(71); // parent already gone
                status = f();
            }
            catch (const std::exception& e) {
                std::fprintf(stderr, "bench worker %d: %s\n", int(::getpid()), e.what());
            }
            catch (...) {
                std::fprintf(stderr, "bench worker %d: unknown exception\n", int(::getpid()));
            }
            std::fflush(stderr);
            ::_exit(status);
        }
        children_.push_back({pid, open_pidfd(pid)});
        return pid;
    }

    std::size_t size() const noexcept { return children_.size(); }

    /// pidfd of child i (readable once it has exited), or -1 where the
    /// kernel has no pidfd_open.
    int pidfd(std::size_t i) const noexcept { return children_[i].pidfd; }

    /// Waits for every child (at most `timeout_s` seconds in all; then kills
    /// them). Throws std::runtime_error if one did not exit with status 0.
    void wait_all(std::uint64_t timeout_s)
    {
        const std::int64_t deadline = now_ns() + std::int64_t(timeout_s) * 1000000000;
        std::string failures;
        while (!children_.empty()) {
            const child c = children_.back();
            if (c.pidfd >= 0) {
                const std::int64_t left_ms = std::max<std::int64_t>(0, (deadline - now_ns()) / 1000000);
                struct pollfd p = {c.pidfd, POLLIN, 0};
                const int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1 << 30)));
                if (r < 0 && errno == EINTR) continue;
                if (r == 0) {
                    kill_all();
                    throw std::runtime_error("bench workers did not finish within " + std::to_string(timeout_s) +
                                             " s; killed");
                }
            }
            int st = 0;
            pid_t r;
            do r = ::waitpid(c.pid, &st, 0);
            while (r < 0 && errno == EINTR);
            children_.pop_back();
            if (c.pidfd >= 0) ::close(c.pidfd);
            if (r == c.pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                failures += " " + std::to_string(c.pid) + "(" + describe(st) + ")";
        }
        if (!failures.empty()) throw std::runtime_error("bench workers failed:" + failures);
    }

    /// SIGKILLs and reaps every child still here.
    void kill_all() noexcept
    {
        for (const child& c : children_) ::kill(c.pid, SIGKILL);
        for (const child& c : children_) {
            int st;
            while (::waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
            }
            if (c.pidfd >= 0) ::close(c.pidfd);
        }
        children_.clear();
    }

private:
    struct child {
        pid_t pid;
        int pidfd;
    };

    static int open_pidfd(pid_t pid) noexcept
    {
#ifdef SYS_pidfd_open
        const long fd = ::syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0) {
            ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
            return static_cast<int>(fd);
        }
#else
        (void)pid;
#endif
        return -1;
    }

    static std::string describe(int st)
    {
        if (WIFEXITED(st)) return "exit " + std::to_string(WEXITSTATUS(st));
        if (WIFSIGNALED(st)) return std::string("signal ") + ::strsignal(WTERMSIG(st));
        return "status " + std::to_string(st);
    }

    std::vector<child> children_;
};

/// A pipe; both ends closed on destruction.
struct pipe_pair {
    int rd = -1, wr = -1;
    pipe_pair()
    {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
        rd = p[0];
        wr = p[1];
    }
    ~pipe_pair()
    {
        close_rd();
        close_wr();
    }
    void close_rd() noexcept
    {
        if (rd >= 0) ::close(rd);
        rd = -1;
    }
    void close_wr() noexcept
    {
        if (wr >= 0) ::close(wr);
        wr = -1;
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
};

// ------------------------------------------------------------- measurement

/// Nanoseconds this thread has spent runnable but not running (waiting on
/// a run queue: preempted by other work), from /proc/thread-self/schedstat;
/// -1 where the kernel does not say.
inline std::int64_t run_delay_ns() noexcept
{
    const int fd = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[128];
    const ssize_t r = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (r <= 0) return -1;
    buf[r] = 0;
    unsigned long long run = 0, delay = 0;
    if (std::sscanf(buf, "%llu %llu", &run, &delay) != 2) return -1;
    return static_cast<std::int64_t>(delay);
}

/// One timed run: `ops` operations in `seconds` of wall time. `preempted`:
/// the largest fraction of the run that a worker spent runnable but not
/// running (another process, or another worker, had its CPU); about 0 on an
/// idle machine with a CPU per worker; -1 if unknown.
struct timing {
    std::uint64_t ops = 0;
    double seconds = 0;
    double preempted = -1;
    double rate() const noexcept { return seconds > 0 ? double(ops) / seconds : 0.0; }
};

/// Runs body N times in this process; `make()` is called first, untimed.
template <class Make>
timing run_single(std::uint64_t n, Make& make)
{
    auto body = make();
    const std::int64_t d0 = run_delay_ns();
    const std::int64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < n; ++i) body();
    const std::int64_t t1 = now_ns();
    const std::int64_t d1 = run_delay_ns();
    timing t{n, double(t1 - t0) * 1e-9, -1};
    if (d0 >= 0 && d1 >= 0 && t1 > t0) t.preempted = double(d1 - d0) / double(t1 - t0);
    return t;
}

namespace detail {

struct alignas(64) worker_times {
    std::atomic<std::int64_t> start;
    std::atomic<std::int64_t> end;
    std::atomic<std::int64_t> run_delay; ///< -1: unknown
};

/// Restricts the calling process to the n-th CPU (modulo) of its allowed set.
inline void pin_to_nth_cpu(unsigned n)
{
    cpu_set_t allowed;
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) throw_errno("sched_getaffinity");
    const int count = CPU_COUNT(&allowed);
    if (count <= 0) return;
    int want = static_cast<int>(n % static_cast<unsigned>(count));
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (want-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (::sched_setaffinity(0, sizeof one, &one) != 0) throw_errno("sched_setaffinity");
            return;
        }
    }
}

inline void write_all(int fd, const void* p, std::size_t n)
{
    const char* c = static_cast<const char*>(p);
    while (n) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw_errno("write to bench pipe");
        c += w;
        n -= static_cast<std::size_t>(w);
    }
}

} // namespace detail

/// Runs body N times in each of `procs` forked workers, started together.
///
/// Each worker: make() (untimed; e.g. takes its per-process lock handle),
/// reports "ready" on a pipe, blocks reading the "go" pipe, which the parent
/// closes once all are ready (so all wake at once, without sleeps or
/// polling), then runs its N operations between two timestamps. The result
/// is procs*N operations over max(end) - min(start).
///
/// `pin`: worker w runs on the w-th CPU of the allowed set only (modulo
/// their number), so the scheduler cannot stack two workers on one CPU.
template <class Make>
timing run_forked(unsigned procs, std::uint64_t n, Make& make, std::uint64_t timeout_s = 600, bool pin = false)
{
    if (procs == 0) throw std::invalid_argument("run_forked: procs must be >= 1");
    shared_mapping times_map(sizeof(detail::worker_times) * procs);
    auto* times = times_map.at<detail::worker_times>();
    pipe_pair ready, go;
    worker_group group;
    for (unsigned w = 0; w < procs; ++w) {
        group.spawn([&, w]() -> int {
            ready.close_rd();
            go.close_wr();
            if (pin) detail::pin_to_nth_cpu(w);
            auto body = make();
            const char ok = 'r';
            detail::write_all(ready.wr, &ok, 1);
            char c;
            ssize_t r;
            do r = ::read(go.rd, &c, 1);
            while (r < 0 && errno == EINTR);
            if (r != 0) return 72; // the parent never writes: 0 (EOF) is "go"
            const std::int64_t d0 = run_delay_ns();
            const std::int64_t t0 = now_ns();
            for (std::uint64_t i = 0; i < n; ++i) body();
            const std::int64_t t1 = now_ns();
            const std::int64_t d1 = run_delay_ns();
            times[w].start.store(t0, std::memory_order_relaxed);
            times[w].end.store(t1, std::memory_order_relaxed);
            times[w].run_delay.store(d0 >= 0 && d1 >= 0 ? d1 - d0 : -1, std::memory_order_relaxed);
            return 0;
        });
    }
    ready.close_wr();
    go.close_rd();
    // Wait until every worker is ready; a worker that dies first ends it.
    unsigned n_ready = 0;
    const std::int64_t deadline = now_ns() + std::int64_t(timeout_s) * 1000000000;
    while (n_ready < procs) {
        std::vector<struct pollfd> fds;
        fds.push_back({ready.rd, POLLIN, 0});
        for (std::size_t i = 0; i < group.size(); ++i)
            if (group.pidfd(i) >= 0) fds.push_back({group.pidfd(i), POLLIN, 0});
        const std::int64_t left_ms = (deadline - now_ns()) / 1000000;
        if (left_ms <= 0) throw std::runtime_error("bench workers not ready in time");
        const int pr = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<std::int64_t>(left_ms, 1 << 30)));
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) throw_errno("poll");
        if (fds[0].revents) { // read what is there before looking at exits
            char buf[64];
            const ssize_t r = ::read(ready.rd, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                group.kill_all();
                throw std::runtime_error("bench workers closed the ready pipe before the start");
            }
            n_ready += static_cast<unsigned>(r);
            continue;
        }
        for (std::size_t i = 1; i < fds.size(); ++i)
            if (fds[i].revents) {
                group.kill_all(); // the others wait for "go": never released
                throw std::runtime_error("a bench worker exited before the start (see its message above)");
            }
    }
    go.close_wr(); // everybody's read() returns 0 now
    group.wait_all(timeout_s);
    std::int64_t t0 = times[0].start.load(), t1 = times[0].end.load(), delay = times[0].run_delay.load();
    for (unsigned w = 1; w < procs; ++w) {
        t0 = std::min(t0, times[w].start.load());
        t1 = std::max(t1, times[w].end.load());
        delay = times[w].run_delay.load() < 0 || delay < 0 ? -1 : std::max(delay, times[w].run_delay.load());
    }
    timing t{std::uint64_t(procs) * n, double(t1 - t0) * 1e-9, -1};
    if (delay >= 0 && t1 > t0) t.preempted = double(delay) / double(t1 - t0);
    return t;
}

/// The median of R measurements of one figure.
struct result {
    double median = 0;            ///< ops/s
    double min = 0, max = 0;      ///< ops/s, over the R runs kept
    double preempted = -1;        ///< the largest timing::preempted of the runs kept
    unsigned attempts = 0;        ///< timed runs made (more than R when some were disturbed)
    std::uint64_t per_worker = 0; ///< operations per worker per measurement
    std::uint64_t total_ops = 0;  ///< every operation run, calibration and warm-up included
    bool noisy(const options& o) const noexcept { return preempted > o.max_preempted; }
};

/// The calibration (unless opt.iterations is set), warm-up, disturbed-run
/// rule and median of measure(), for any way of making one timed run: `run_once(n)` runs n operations per
/// worker and returns its timing (measure() runs in this process or in
/// forked workers; bench/perl_driver.hpp in a perl process).
template <class Run>
result measure_runs(const options& opt, Run run_once)
{
    result res;
    auto once = [&](std::uint64_t n) {
        const timing t = run_once(n);
        res.total_ops += t.ops;
        return t;
    };
    std::uint64_t n = opt.iterations;
    if (n == 0) {
        n = 1000;
        for (;;) {
            const timing t = once(n);
            if (t.seconds >= opt.seconds * 0.2 || n >= (std::uint64_t(1) << 40)) {
                const double scaled = double(n) * opt.seconds / std::max(t.seconds, 1e-9);
                n = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(scaled));
                break;
            }
            n *= t.seconds < opt.seconds * 0.01 ? 16 : 4;
        }
    }
    else {
        once(std::max<std::uint64_t>(1, n / 10)); // warm-up
    }
    std::vector<timing> runs;
    unsigned clean = 0;
    while (clean < opt.runs && res.attempts < 3 * opt.runs) {
        runs.push_back(once(n));
        ++res.attempts;
        if (runs.back().preempted <= opt.max_preempted) ++clean;
    }
    // Keep the opt.runs least disturbed runs (all clean ones if enough),
    // in the order they were made; then the median of their rates.
    std::stable_sort(runs.begin(), runs.end(),
                     [](const timing& a, const timing& b) { return a.preempted < b.preempted; });
    runs.resize(std::min<std::size_t>(runs.size(), opt.runs));
    std::vector<double> rates;
    for (const timing& t : runs) {
        rates.push_back(t.rate());
        res.preempted = std::max(res.preempted, t.preempted);
    }
    std::sort(rates.begin(), rates.end());
    const std::size_t m = rates.size();
    res.median = m % 2 ? rates[m / 2] : 0.5 * (rates[m / 2 - 1] + rates[m / 2]);
    res.min = rates.front();
    res.max = rates.back();
    res.per_worker = n;
    return res;
}

/// Measures one figure: `procs` == 1 runs in this process, otherwise in
/// `procs` forked workers. Calibrates N unless opt.iterations is set, runs
/// one untimed warm-up, then timed runs until opt.runs of them were not
/// disturbed (no worker preempted for more than opt.max_preempted of the
/// run), at most 3 * opt.runs; if fewer were clean, the least disturbed
/// are kept and the result says so (result::preempted).
template <class Make>
result measure(const options& opt, unsigned procs, Make make)
{
    return measure_runs(opt, [&](std::uint64_t n) {
        return procs == 1 ? run_single(n, make) : run_forked(procs, n, make, opt.timeout_s, opt.pin);
    });
}

// ------------------------------------------------------------------- table

/// "123.4M/s"-style figure.
inline std::string format_rate(double ops)
{
    const char* unit = "";
    double v = ops;
    if (ops >= 1e9) v = ops / 1e9, unit = "G";
    else if (ops >= 1e6) v = ops / 1e6, unit = "M";
    else if (ops >= 1e3) v = ops / 1e3, unit = "k";
    std::ostringstream s;
    s << std::fixed << std::setprecision(v >= 100 ? 0 : 1) << v << unit << "/s";
    return s.str();
}

/// A performance target: shmkit at least `min_rate` ops/s and at least
/// `min_ratio` times the baseline of the row it is checked on (0: no bound).
struct target {
    double min_rate = 0;
    double min_ratio = 0;

    std::string describe() const
    {
        std::ostringstream s;
        s << "target";
        if (min_rate > 0) s << " >= " << format_rate(min_rate);
        if (min_rate > 0 && min_ratio > 0) s << " and";
        if (min_ratio > 0) s << " >= " << min_ratio << "x";
        return s.str();
    }
    bool met(double shmkit, double baseline) const noexcept
    {
        return (min_rate <= 0 || shmkit >= min_rate) && (min_ratio <= 0 || (baseline > 0 && shmkit / baseline >= min_ratio));
    }
};

/// Prints rows as they are measured, in fixed-width columns.
class table {
public:
    explicit table(std::ostream& os = std::cout, int name_width = 44, int baseline_width = 34)
        : os_(os), nw_(name_width), bw_(baseline_width)
    {
    }

    void print_header()
    {
        os_ << std::left << std::setw(nw_) << "row" << "  " << std::right << std::setw(10) << "shmkit" << "  "
            << std::left << std::setw(bw_) << "baseline" << "  " << std::right << std::setw(10) << "baseline"
            << "  " << std::setw(7) << "ratio" << "  " << "target\n";
        os_ << std::string(nw_, '-') << "  " << std::string(10, '-') << "  " << std::string(bw_, '-') << "  "
            << std::string(10, '-') << "  " << std::string(7, '-') << "  " << std::string(6, '-') << "\n";
        os_.flush();
    }

    /// One line: shmkit's figure beside one baseline's, and the ratio. With
    /// `t`, also whether the target is met (recorded for all_met()).
    void row(const std::string& name, double shmkit, const std::string& baseline, double base,
             const target* t = nullptr, const std::string& flag = {})
    {
        std::ostringstream ratio;
        if (base > 0) ratio << std::fixed << std::setprecision(2) << shmkit / base << "x";
        else ratio << "-";
        os_ << std::left << std::setw(nw_) << name << "  " << std::right << std::setw(10) << format_rate(shmkit)
            << "  " << std::left << std::setw(bw_) << baseline << "  " << std::right << std::setw(10)
            << format_rate(base) << "  " << std::setw(7) << ratio.str();
        if (t) {
            const bool ok = t->met(shmkit, base);
            os_ << "  " << t->describe() << ": " << (ok ? "met" : "NOT MET");
            ++checked_;
            if (!ok) ++missed_;
        }
        if (!flag.empty()) os_ << "  " << flag;
        os_ << "\n";
        os_.flush();
        if (!name.empty()) last_name_ = name;
        if (std::FILE* f = tsv_sink()) {
            std::ostringstream line;
            line << std::fixed << std::setprecision(3) << tsv_field(last_name_) << '\t' << shmkit << '\t'
                 << tsv_field(baseline) << '\t' << base << '\t';
            if (base > 0) line << std::setprecision(6) << shmkit / base;
            line << '\t' << (t ? tsv_field(t->describe()) : "") << '\t'
                 << (t ? (t->met(shmkit, base) ? "met" : "not met") : "") << '\t' << tsv_field(flag) << '\n';
            std::fputs(line.str().c_str(), f);
            std::fflush(f);
        }
    }

    /// As above, from two measured results; flags the line when the runs it
    /// kept were disturbed by other processes (see measure()).
    void row(const std::string& name, const result& shmkit, const std::string& baseline, const result& base,
             const options& o, const target* t = nullptr)
    {
        std::string flag;
        const double worst = std::max(shmkit.preempted, base.preempted);
        if (shmkit.noisy(o) || base.noisy(o)) {
            std::ostringstream f;
            f << "[noisy: a worker waited for a CPU " << std::fixed << std::setprecision(0) << worst * 100
              << "% of a run]";
            flag = f.str();
            ++noisy_;
        }
        row(name, shmkit.median, baseline, base.median, t, flag);
    }

    /// A line for a baseline that was not measured: shmkit's figure, the
    /// baseline's name and, in place of its figure, why (`why`). On the
    /// console only, not in --tsv.
    void skipped(const std::string& name, double shmkit, const std::string& baseline, const std::string& why)
    {
        os_ << std::left << std::setw(nw_) << name << "  " << std::right << std::setw(10) << format_rate(shmkit)
            << "  " << std::left << std::setw(bw_) << baseline << "  " << why << "\n";
        os_.flush();
        if (!name.empty()) last_name_ = name;
    }

    /// A free-form line (a note, a separator).
    void note(const std::string& text)
    {
        os_ << text << "\n";
        os_.flush();
    }

    /// The closing lines every benchmark prints (the noisy-runs warning, the
    /// count of targets met) and its exit status: 2 if `--strict` and a
    /// target was missed, else 0. `noisy_detail` replaces the default
    /// explanation of a noisy run.
    int finish(const options& opt, const std::string& noisy_detail = "")
    {
        if (noisy_)
            note(noisy_detail.empty() ? "noisy: in some of the runs kept, a worker waited for a CPU for more than " +
                                            std::to_string(int(opt.max_preempted * 100 + 0.5)) +
                                            "% of the run (see bench/harness.hpp)"
                                      : noisy_detail);
        if (checked_)
            note("targets: " + std::to_string(checked_ - missed_) + " of " + std::to_string(checked_) + " met");
        return opt.strict && !all_met() ? 2 : 0;
    }

    unsigned targets_checked() const noexcept { return checked_; }
    unsigned targets_missed() const noexcept { return missed_; }
    bool all_met() const noexcept { return missed_ == 0; }
    unsigned noisy_rows() const noexcept { return noisy_; }

private:
    static std::string tsv_field(std::string s)
    {
        for (char& c : s)
            if (c == '\t' || c == '\n' || c == '\r') c = ' ';
        return s;
    }

    std::ostream& os_;
    int nw_, bw_;
    unsigned checked_ = 0, missed_ = 0, noisy_ = 0;
    std::string last_name_; ///< of the last row with a name: what continuation rows repeat in --tsv
};

/// Load average over the last minute, -1 if unknown.
inline double load_average_1m()
{
    double l[1];
    return ::getloadavg(l, 1) == 1 ? l[0] : -1;
}

/// "bench_x: 2 CPUs, Linux 6.1.0, runs 5 (median), 0.2 s per measurement",
/// and the load average.
inline void print_preamble(const std::string& title, const options& o, std::ostream& os = std::cout)
{
    struct utsname u;
    ::uname(&u);
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    os << title << "\n"
       << "  " << cpus << " CPUs online, " << u.sysname << " " << u.release << ", compiler " << __VERSION__ << "\n"
       << "  median of " << o.runs << " runs; ";
    if (o.iterations) os << o.iterations << " operations per worker per run";
    else os << "operations per worker calibrated to ~" << o.seconds << " s per run";
    os << "; multi-process rows: " << o.procs << " processes, total ops/s of all of them\n";
    os << std::fixed << std::setprecision(2) << "  load average (1 min) at start: " << load_average_1m()
       << std::defaultfloat << "; runs in which a worker waited for a CPU > " << o.max_preempted * 100
       << "% of the time are redone";
    if (o.procs > 1) os << (o.pin ? "; workers pinned one per CPU" : "; workers not pinned");
    os << "\n";
    if (o.procs > static_cast<unsigned>(cpus))
        os << "  note: more worker processes than CPUs: workers time-share CPUs\n";
    os << "\n";
    os.flush();
}

/// Whether a row name passes --filter.
inline bool selected(const options& o, const std::string& name)
{
    return o.filter.empty() || name.find(o.filter) != std::string::npos;
}

} // namespace shmkit_bench

#endif
