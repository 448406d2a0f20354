// shmkit demo: the worker processes. Forks them, kills one at a random
// moment of its work, lets the others finish, reaps everyone, and on any
// other path (an exception, Ctrl-C) SIGKILLs and reaps whatever is left.
#ifndef SHMKIT_TOOLS_DEMO_CREW_HPP
#define SHMKIT_TOOLS_DEMO_CREW_HPP

#include "demo_plan.hpp"
#include "demo_segments.hpp"

#include <array>
#include <csignal>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <sys/types.h>

namespace shmkit_tool::demo {

/// While it exists, SIGINT, SIGTERM and SIGHUP interrupt the demo (the
/// crew's waits throw, so the guards clean up) instead of killing it, and
/// SIGPIPE is ignored. Restores the previous dispositions. Not reentrant.
class signal_scope {
public:
    signal_scope();
    ~signal_scope();
    signal_scope(const signal_scope&) = delete;
    signal_scope& operator=(const signal_scope&) = delete;

private:
    struct sigaction old_[4];
};

/// What the parent learned of one worker.
struct worker_record {
    pid_t pid = -1;
    bool reaped = false;
    int status = 0;              ///< waitpid status, once reaped
    std::int64_t last_progress = -1; ///< the last round it reported starting
    bool at_half = false;
    bool done = false;
    report done_report;          ///< its last message of kind done
    std::vector<std::string> failures;
};

/// Where the victim died.
struct kill_record {
    int victim = -1;
    pid_t pid = -1;
    int freezes = 0;                      ///< freezes until the one it was killed in
    std::int64_t phase = working;         ///< its phase word, read while frozen
    std::int64_t rounds_done = 0;         ///< its buffer counter, read while frozen
    std::vector<std::size_t> slots_held;  ///< pool slots it owned, read while frozen
    std::int64_t killed_at_ns = 0;        ///< steady clock
};

class crew {
public:
    /// Freezes tried before the victim is killed wherever it is.
    static constexpr int max_freezes = 5000;

    crew(const plan& p, segments& s);
    /// SIGKILLs and reaps every worker not reaped yet; closes the pipes.
    ~crew();
    crew(const crew&) = delete;
    crew& operator=(const crew&) = delete;

    /// Forks p.workers workers. Throws std::system_error.
    void start();
    /// Waits until the victim (p.victim) reports starting round
    /// p.kill_round (it is working), then watches its phase word and, each
    /// time it enters its critical section, freezes it (SIGSTOP) after a
    /// random delay of up to 2 us. A freeze that finds it still inside
    /// (phase in_ledger or in_kv_put: it holds the share's lock and a pool
    /// slot) is where it is killed; one that finds it out again lets it go
    /// on (SIGCONT). After max_freezes, or at its cap, it is killed where
    /// it is. Before the SIGKILL, while it is frozen, notes its phase, its
    /// rounds and its pool slots. Throws std::runtime_error if a worker
    /// fails or stops reporting for a minute, or on a signal.
    kill_record kill(std::mt19937_64& rng);
    /// Lets the survivors past halfway, reads every report until the last
    /// worker has closed the pipe, and reaps them. Throws as kill().
    void finish();

    const std::vector<worker_record>& workers() const { return workers_; }

private:
    bool pump(int timeout_ms);
    void drain();
    void let_go(int w);
    void handle(const report& m);
    void reap(int w, int options);

    const plan& p_;
    segments& s_;
    std::vector<worker_record> workers_;
    int report_[2] = {-1, -1};
    std::vector<std::array<int, 2>> go_; ///< per worker: a byte lets it past halfway, EOF lets it exit
    std::int64_t last_heard_ns_ = 0;
    int victim_ = -1;
};

} // namespace shmkit_tool::demo

#endif
