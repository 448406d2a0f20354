// config_reload: one process publishes configurations of any size through
// a share; reader processes pick up each new one whole, and a process
// killed while holding the share's exclusive lock does not stop the others.
//
//   1. The master creates the share (a native share: a POSIX segment named
//      after the key) and stores configuration 1.
//   2. Three readers open it by key. Each polls version() (one load from
//      shared memory, no syscall) and fetches the text when it moves; it
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
#include <string>

#include <sched.h>
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

} // namespace

int main()
{
    const key_t key = static_cast<key_t>(0x52000000 | (::getpid() & 0xffffff));
    int rc = 1;
    try {
        shmkit::share_options o;
        o.exclusive = true; // a fresh share; ours to remove (destroy)
        o.destroy = true;
        shmkit::share config(key, o);
        config.store(make_config(1, false));

        int report[2];
        if (::pipe(report) != 0) return 2;
        pid_t pids[readers];
        for (int r = 0; r < readers; ++r)
            if ((pids[r] = ::fork()) == 0) std::_Exit(reader(key, report[1]));
        ::close(report[1]);

        // A process that dies holding the exclusive lock.
        int locked[2];
        if (::pipe(locked) != 0) return 2;
        const pid_t holder = ::fork();
        if (holder == 0) {
            shmkit::share mine(key);
            mine.lock(shmkit::share::lock_ex);
            (void)!::write(locked[1], "x", 1);
            for (;;) ::pause();
        }
        char c;
        if (::read(locked[0], &c, 1) != 1) return 2;
        ::kill(holder, SIGKILL);
        ::waitpid(holder, nullptr, 0);

        for (int g = 2; g <= generations; ++g) config.store(make_config(g, false));
        config.store(make_config(generations + 1, true));

        int distinct_min = generations + 1, torn = 0, msg[2];
        for (int r = 0; r < readers; ++r) {
            if (::read(report[0], msg, sizeof msg) != sizeof msg) break;
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
        std::printf("%d readers each saw at least %d distinct configurations (they skip those published\n"
                    "while they were busy); torn configurations seen: %d\n",
                    readers, distinct_min, torn);
        rc = readers_ok && torn == 0 && st.lock_recoveries >= 1 && distinct_min >= 1 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "config_reload: %s\n", e.what());
    }
    std::printf(rc == 0 ? "\nok\n" : "\nFAILED\n");
    return rc;
}
