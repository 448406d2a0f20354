// config_reload: one process publishes configurations of any size through
// a share; reader processes pick up each new one whole, and a process
// killed while holding the share's exclusive lock does not stop the others.
//
//   1. The master creates the share (a native share: a POSIX segment named
//      after the key) and stores configuration 1.
//   2. Three readers open it by key. Each polls version() - one load from
//      shared memory, no lock; a poll that finds it unchanged yields the
//      CPU (sched_yield, a syscall) - and fetches the text when it moves; it
//      checks that every text it fetches is whole: the checksum line at its
//      end matches its body. Configurations grow past 64 KiB, the size of
//      the share's first segment, so the last stores move them into a
//      segment of their own - a fetch still never sees half of one.
//   3. A fourth process takes the exclusive lock and is SIGKILLed while
//      holding it. The next store() waits for the lock, finds its holder
//      dead, recovers it (about 10 ms) and goes on.
//   4. The master publishes 100 configurations, then a final one; the
//      readers stop when they see it and report how many distinct ones they
//      saw and whether any was torn.
#include <shmkit/share.hpp>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int readers = 3;
constexpr int generations = 100;

std::uint32_t checksum(const std::string& s)
{
    std::uint32_t h = 2166136261u; // FNV-1a
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return h;
}

/// Configuration `g`: a body of g KiB-ish settings and a checksum line.
std::string make_config(int g, bool last)
{
    std::string body = "generation=" + std::to_string(g) + (last ? "\nfinal=yes\n" : "\n");
    for (int i = 0; i < g * 2560 / generations; ++i)
        body += "route." + std::to_string(i) + "=backend-" + std::to_string((i * 7 + g) % 13) + ":8080\n";
    return body + "checksum=" + std::to_string(checksum(body)) + "\n";
}

bool whole(const std::string& config)
{
    const auto at = config.rfind("checksum=");
    return at != std::string::npos &&
           std::to_string(checksum(config.substr(0, at))) + "\n" == config.substr(at + std::string("checksum=").size());
}

int reader(key_t key, int report)
{
    shmkit::share config(key);
    std::uint64_t seen_version = 0;
    int distinct = 0, torn = 0;
    for (;;) {
        if (config.version() == seen_version) {
            ::sched_yield();
            continue;
        }
        seen_version = config.version();
        const std::string text = config.fetch(); // whole, whichever store it sees
        ++distinct;
        torn += !whole(text);
        if (text.find("\nfinal=yes\n") != std::string::npos) break;
    }
    const int msg[2] = {distinct, torn};
    return ::write(report, msg, sizeof msg) == sizeof msg ? 0 : 1;
}

/// A process that takes the exclusive lock, says so, and waits to be killed.
int lock_holder(key_t key, int locked)
{
    shmkit::share mine(key);
    mine.lock(shmkit::share::lock_ex);
    (void)!::write(locked, "x", 1);
    for (;;) ::pause();
}

/// Forks a child that runs `body` and leaves by _Exit with its result (1,
/// said on stderr, if it throws), never back through main(); it dies with
/// the master. Returns the child's PID to the master; throws if fork fails.
template <class F>
pid_t spawn(const char* who, F body)
{
    const pid_t master = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid > 0) return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int rc = 1;
    try {
        if (::getppid() == master) rc = body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", who, e.what());
    }
    std::_Exit(rc);
}

} // namespace

int main()
{
    const key_t key = static_cast<key_t>(0x52000000 | (::getpid() & 0xffffff));
    // A bounded run: if anything ever hung, the test suite sees a failure.
    ::alarm(60);
    int rc = 1;
    try {
        shmkit::share_options o;
        o.exclusive = true; // a fresh share; ours to remove (destroy)
        o.destroy = true;
        shmkit::share config(key, o);
        config.store(make_config(1, false));

        // The readers (on every way out, those still running die with the
        // master, once it has removed the share).
        int report[2];
        if (::pipe(report) != 0) throw std::runtime_error("pipe failed");
        pid_t pids[readers];
        for (int r = 0; r < readers; ++r) pids[r] = spawn("reader", [&] { return reader(key, report[1]); });
        ::close(report[1]); // EOF once every reader has exited

        // A process that dies holding the exclusive lock: killed and reaped
        // whether it took the lock or not (removing the share waits for it).
        int locked[2];
        if (::pipe(locked) != 0) throw std::runtime_error("pipe failed");
        const pid_t holder = spawn("lock holder", [&] { return lock_holder(key, locked[1]); });
        ::close(locked[1]); // EOF if it dies before it holds the lock
        char c;
        const bool held = ::read(locked[0], &c, 1) == 1;
        ::kill(holder, SIGKILL);
        ::waitpid(holder, nullptr, 0);
        if (!held) throw std::runtime_error("the lock holder exited before it took the lock");

        for (int g = 2; g <= generations; ++g) config.store(make_config(g, false));
        config.store(make_config(generations + 1, true));

        int distinct_min = generations + 1, torn = 0, reported = 0, msg[2];
        for (; reported < readers; ++reported) {
            if (::read(report[0], msg, sizeof msg) != sizeof msg) break; // EOF: a reader failed
            distinct_min = std::min(distinct_min, msg[0]);
            torn += msg[1];
        }
        bool readers_ok = true;
        for (pid_t p : pids) {
            int status = 0;
            ::waitpid(p, &status, 0);
            readers_ok = readers_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        const shmkit::share_stats st = config.stats();
        std::printf("%d configurations published, the largest %zu bytes in %zu segment(s)\n", generations + 1,
                    st.value_size, st.segments);
        std::printf("a process was killed holding the exclusive lock; lock recoveries: %llu\n",
                    static_cast<unsigned long long>(st.lock_recoveries));
        std::printf("%d of %d readers each saw at least %d distinct configurations (they skip those published\n"
                    "while they were busy); torn configurations seen: %d\n",
                    reported, readers, distinct_min, torn);
        rc = readers_ok && torn == 0 && st.lock_recoveries >= 1 && distinct_min >= 1 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "config_reload: %s\n", e.what());
    }
    std::printf(rc == 0 ? "\nok\n" : "\nFAILED\n");
    return rc;
}
