// The chaos harness: worker processes (fork) run random operations on one
// structure while a killer SIGKILLs random workers at random moments and
// respawns them, until a number of kills is reached. Workers report what
// they did through a pipe each, as fixed-size records; the parent feeds the
// records to the test, which keeps what it needs to check the structure's
// invariants at the end. The run is bounded by the kill count and by a
// wall-clock safety limit (a run that hangs fails instead of hanging), and
// every worker is killed and reaped on the way out, also when a check fails.
//
// Settings come from the command line (after Boost.Test's `--`) or the
// environment, so the same binary serves the short CI run and the long one:
//
//     --kills=N     SHMKIT_CHAOS_KILLS   kills in the run
//     --seed=N      SHMKIT_CHAOS_SEED    seed of the killer and the workers
//     --limit=S     SHMKIT_CHAOS_LIMIT   wall-clock safety limit in seconds
#ifndef SHMKIT_TEST_CHAOS_CHAOS_HPP
#define SHMKIT_TEST_CHAOS_CHAOS_HPP

#include "../support.hpp"

#include <shmkit/detail/unique_fd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace chaos {

using clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

// ---- Settings ---------------------------------------------------------------------

struct settings {
    long kills = 200;
    std::uint64_t seed = 20240601;
    std::chrono::seconds limit{0}; ///< 0: derived from kills (see safety_limit())
    int workers = 4;
    /// A kill lands this long (uniformly random, at most) after its victim
    /// sent its first record.
    std::chrono::microseconds max_delay{3000};
    /// One kill in this many does not wait for the first record: it may
    /// land while the victim opens the structure and claims its entry.
    int early_one_in = 8;

    /// A generous bound: a respawn (fork, open, first operations) takes
    /// milliseconds, several times more under the sanitizers.
    std::chrono::seconds safety_limit() const
    {
        if (limit.count() > 0) return limit;
        const long per_kill_ms = sanitized ? 150 : 60;
        return std::chrono::seconds(60 + kills * per_kill_ms / 1000);
    }
};

/// The value of `--NAME=V` among the test's arguments, else of the
/// environment variable `env`, else `fallback`.
inline long long setting(const std::string& name, const char* env, long long fallback)
{
    const auto& suite = boost::unit_test::framework::master_test_suite();
    const std::string prefix = "--" + name + "=";
    for (int k = 1; k < suite.argc; ++k)
        if (std::string(suite.argv[k]).rfind(prefix, 0) == 0) return std::stoll(suite.argv[k] + prefix.size());
    if (const char* v = std::getenv(env)) return std::stoll(v);
    return fallback;
}

inline settings settings_from_command_line(long default_kills)
{
    settings s;
    s.kills = static_cast<long>(setting("kills", "SHMKIT_CHAOS_KILLS", default_kills));
    s.seed = static_cast<std::uint64_t>(setting("seed", "SHMKIT_CHAOS_SEED", static_cast<long long>(s.seed)));
    s.limit = std::chrono::seconds(setting("limit", "SHMKIT_CHAOS_LIMIT", 0));
    return s;
}

// ---- What workers send ----------------------------------------------------------

/// One report of a worker. Written with one write(2) of 16 bytes, below
/// PIPE_BUF, hence atomic: a worker killed at any instruction leaves only
/// whole records in its pipe. `kind` and the fields mean what the test says.
struct record {
    std::uint32_t kind = 0;
    std::uint32_t a = 0;
    std::uint64_t b = 0;
};
static_assert(sizeof(record) == 16);

/// The harness's own kind: the worker left its loop and waits to be reaped.
constexpr std::uint32_t stopped = 0xffffffffu;

/// Shared by the parent and the workers (anonymous shared memory).
struct board {
    std::atomic<std::uint32_t> stop; ///< the workers finish their operation and stop
    std::atomic<std::uint64_t> violations;
    char first_violation[512];
};

/// A worker's view of the run (in the child).
class worker {
public:
    worker(board* b, int fd, int slot, std::uint32_t id, std::uint64_t seed)
        : board_(b), fd_(fd), slot_(slot), id_(id), rng_(seed ^ (0x9e3779b97f4a7c15ull * id))
    {
    }
    /// The worker's position (0 .. workers-1): its respawns take the same.
    int slot() const { return slot_; }
    /// This incarnation: unique in the run, from 1, in spawn order.
    std::uint32_t id() const { return id_; }
    std::mt19937_64& rng() { return rng_; }
    /// A random number in [lo, hi].
    std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) { return lo + rng_() % (hi - lo + 1); }
    /// False once the parent asked the workers to stop.
    bool running() const { return board_->stop.load(std::memory_order_relaxed) == 0; }

    void send(std::uint32_t kind, std::uint32_t a = 0, std::uint64_t b = 0) const
    {
        const record r{kind, a, b};
        ssize_t n;
        do { n = ::write(fd_, &r, sizeof r); } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(sizeof r)) std::_Exit(91); // the parent is gone
    }
    /// Tells the parent this worker stopped, and waits to be reaped. A body
    /// whose final state must stay attached (what it holds) parks itself;
    /// otherwise the harness parks it when the body returns.
    [[noreturn]] void park() const
    {
        send(stopped);
        for (;;) ::pause();
    }
    /// Records a broken promise; the parent ends the run and fails the test.
    void violation(const std::string& what) const
    {
        if (board_->violations.fetch_add(1) == 0)
            std::snprintf(board_->first_violation, sizeof board_->first_violation, "worker %d (#%u): %s", slot_,
                          id_, what.c_str());
    }
    /// violation(what) unless `ok`.
    void expect(bool ok, const std::string& what) const
    {
        if (!ok) violation(what);
    }

private:
    board* board_;
    int fd_;
    int slot_;
    std::uint32_t id_;
    std::mt19937_64 rng_;
};

// ---- The parent's side -------------------------------------------------------------

/// One spawned worker process, for the test's bookkeeping.
struct incarnation {
    int slot = 0;
    std::uint32_t id = 0;
    pid_t pid = 0;
    bool killed = false;      ///< by the killer, in the middle of its work
    std::uint64_t records = 0;
};

struct summary {
    long kills = 0;
    long early_kills = 0;     ///< kills that did not wait for a first record
    std::uint64_t records = 0;
    std::uint32_t spawned = 0;
    double seconds = 0;
};

/// A chaos run. The constructor only prepares; go() runs it.
class run {
public:
    using body_fn = std::function<void(worker&)>;
    using sink_fn = std::function<void(const incarnation&, const record&)>;

    run(const settings& s, body_fn body, sink_fn sink)
        : s_(s), body_(std::move(body)), sink_(std::move(sink)), board_(test::shared_scratch<board>()),
          rng_(s.seed), live_(static_cast<std::size_t>(s.workers))
    {
    }
    ~run()
    {
        finish();
        ::munmap(board_, sizeof(board));
    }
    run(const run&) = delete;
    run& operator=(const run&) = delete;

    /// Spawns the workers, kills and respawns until settings::kills kills
    /// (or a violation, an unexpected exit, the safety limit), then asks
    /// the workers to stop and waits until each has (unless one exited or
    /// the safety limit passed): afterwards every record is in, and the
    /// live workers sit idle, still attached, until finish().
    summary go()
    {
        const auto start = clock::now();
        deadline_ = start + s_.safety_limit();
        for (int w = 0; w < s_.workers; ++w) spawn(w);
        while (sum_.kills < s_.kills && ok()) kill_one();
        // Also after a violation: the final checks then see every record.
        if (failure_.empty()) quiesce();
        sum_.seconds = std::chrono::duration<double>(clock::now() - start).count();
        return sum_;
    }
    /// Kills and reaps the workers still there (not counted as kills).
    void finish()
    {
        for (auto& l : live_) l = {};
    }

    /// Every worker spawned, by id - 1.
    const std::vector<incarnation>& incarnations() const { return all_; }
    /// Kills that hit worker slot `slot`.
    long kills_of(int slot) const
    {
        long n = 0;
        for (const auto& i : all_) n += i.slot == slot && i.killed;
        return n;
    }
    std::uint64_t violations() const { return board_->violations.load(); }
    std::string first_violation() const { return board_->first_violation; }
    /// Why the run ended early ("" if it did not).
    const std::string& failure() const { return failure_; }
    /// Every record of every worker is in (the workers stopped, or were
    /// killed and drained): only then can the records be held against the
    /// structure. False after a failure (a hang, a worker that died).
    bool complete() const { return failure_.empty(); }

private:
    struct slot_state {
        std::unique_ptr<test::child> proc;
        shmkit::detail::unique_fd rd;
        std::uint32_t id = 0;
        std::string partial; ///< bytes of a record not complete yet
        bool stopped = false;
    };

    /// The kills go on: no violation and no failure so far.
    bool ok() const { return failure_.empty() && board_->violations.load() == 0; }
    void fail(const std::string& why)
    {
        if (failure_.empty()) failure_ = why;
    }

    void spawn(int w)
    {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        shmkit::detail::unique_fd rd(p[0]), wr(p[1]);
        const auto id = static_cast<std::uint32_t>(all_.size() + 1);
        slot_state& l = live_[w];
        l = {};
        l.proc = std::make_unique<test::child>([&, w, id] { return worker_main(w, id, wr.get()); });
        l.rd = std::move(rd);
        l.id = id;
        ::fcntl(l.rd.get(), F_SETFL, O_NONBLOCK);
        all_.push_back({w, id, l.proc->pid(), false, 0});
        ++sum_.spawned;
    }

    int worker_main(int w, std::uint32_t id, int fd)
    {
        for (auto& other : live_) other.rd.reset(); // only the parent reads
        worker me(board_, fd, w, id, s_.seed);
        try {
            body_(me);
        } catch (const std::exception& e) {
            me.violation(std::string("threw: ") + e.what());
            return 97;
        }
        me.park();
    }

    void kill_one()
    {
        const int w = static_cast<int>(rng_() % s_.workers);
        const bool early = rng_() % s_.early_one_in == 0;
        sum_.early_kills += early;
        const auto started = [&] { return all_[live_[w].id - 1].records > 0 || !ok(); };
        if (!early && !pump_until(started)) return;
        const auto delay = std::chrono::microseconds(rng_() % (s_.max_delay.count() + 1));
        pump_until([&] { return !ok(); }, clock::now() + delay);
        if (!ok()) return;
        slot_state& l = live_[w];
        l.proc->kill();
        const int status = l.proc->wait(std::chrono::seconds(30));
        all_[l.id - 1].killed = true;
        drain(w); // what it wrote before it died
        if (status != 128 + SIGKILL) return fail("worker " + std::to_string(w) + " ended with status " +
                                                 std::to_string(status) + " before it was killed");
        ++sum_.kills;
        spawn(w);
    }

    void quiesce()
    {
        board_->stop.store(1);
        pump_until([&] {
            for (const auto& l : live_)
                if (!l.stopped) return false;
            return true;
        });
    }

    /// Reads the workers' records until `done()` or `until` (at most the
    /// safety deadline). False (and the run failed) at the safety deadline.
    template <class Done>
    bool pump_until(Done done, clock::time_point until = clock::time_point::max())
    {
        while (failure_.empty() && !done()) {
            const auto now = clock::now();
            if (now >= deadline_) {
                fail("safety limit of " + std::to_string(s_.safety_limit().count()) + " s reached after " +
                     std::to_string(sum_.kills) + " kills");
                return false;
            }
            if (now >= until) return true;
            wait_readable(std::min(until, deadline_) - now);
        }
        return failure_.empty();
    }

    void wait_readable(clock::duration left)
    {
        std::vector<pollfd> fds;
        for (const auto& l : live_) fds.push_back({l.rd.get(), POLLIN, 0});
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::min<clock::duration>(left, std::chrono::milliseconds(100)))
                            .count();
        const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        if (::ppoll(fds.data(), fds.size(), &ts, nullptr) <= 0) return;
        for (std::size_t w = 0; w < fds.size(); ++w)
            if (fds[w].revents) drain(static_cast<int>(w));
    }

    /// Reads what slot w's pipe holds now. EOF means the worker is gone:
    /// unless the killer did it, it died by itself and the run fails.
    void drain(int w)
    {
        slot_state& l = live_[w];
        char buf[64 * sizeof(record)];
        for (;;) {
            const ssize_t n = ::read(l.rd.get(), buf, sizeof buf);
            if (n > 0) {
                l.partial.append(buf, static_cast<std::size_t>(n));
                deliver(l);
            } else if (n == 0 && !all_[l.id - 1].killed) {
                return fail("worker " + std::to_string(w) + " ended by itself");
            } else if (n == 0 || errno != EINTR) {
                return;
            }
        }
    }

    void deliver(slot_state& l)
    {
        std::size_t k = 0;
        for (; k + sizeof(record) <= l.partial.size(); k += sizeof(record)) {
            record r;
            std::memcpy(&r, l.partial.data() + k, sizeof r);
            incarnation& inc = all_[l.id - 1];
            if (r.kind == stopped) {
                l.stopped = true;
                continue;
            }
            ++inc.records;
            ++sum_.records;
            sink_(inc, r);
        }
        l.partial.erase(0, k);
    }

    settings s_;
    body_fn body_;
    sink_fn sink_;
    board* board_;
    std::mt19937_64 rng_;
    std::vector<slot_state> live_;
    std::vector<incarnation> all_;
    summary sum_;
    clock::time_point deadline_;
    std::string failure_;
};

/// Checks the run ended as planned and prints its figures: `operations`
/// completed (as the records tell), and what the structure says it recovered.
inline void report(const char* structure, const run& r, const summary& s, const settings& cfg,
                   std::uint64_t operations, const std::string& recoveries)
{
    BOOST_TEST(r.violations() == 0u, "first violation: " << r.first_violation());
    BOOST_TEST(r.failure().empty(), r.failure());
    BOOST_TEST(s.kills == cfg.kills);
    const double rate = s.seconds > 0 ? operations / s.seconds : 0;
    std::ostringstream line;
    line << std::fixed << std::setprecision(1) << "chaos " << structure << ": kills " << s.kills << " ("
         << s.early_kills << " early), workers spawned " << s.spawned << ", operations " << operations << " ("
         << std::setprecision(0) << rate << "/s, " << s.records << " records), recoveries: " << recoveries << "; "
         << std::setprecision(1) << s.seconds << " s, seed " << cfg.seed;
    std::cout << line.str() << std::endl;
}

} // namespace chaos

#endif
