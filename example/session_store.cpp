// session_store: worker processes share a session store; one is killed in
// the middle of writing, and the store is checked afterwards.
//
//   1. The master opens the kv_store "/shmkit-sessions-<pid>" empty
//      (shmkit::exclusive) and forks 3 workers, which open it by name.
//   2. Each worker writes sessions (key "session:<worker>:<n>", a value of
//      a few hundred bytes) and reports every session it has committed on
//      a pipe. The store grows by itself while they write.
//   3. Worker 1 is SIGKILLed while it is writing: it may die holding the
//      writers' lock, between two steps of a put, or in the middle of a
//      growth. The other workers go on; the next writer repairs what it left.
//   4. The master checks the whole structure (check()), and that every
//      session any worker reported committed - the killed one's included -
//      is there with its value.
#include <shmkit/kv_store.hpp>

#include <csignal>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int workers = 3;
constexpr int sessions_per_worker = 4000;
constexpr int victim = 1;

std::string key_of(int worker, int n) { return "session:" + std::to_string(worker) + ":" + std::to_string(n); }

std::string value_of(int worker, int n)
{
    return "{\"user\": " + std::to_string(1000 * worker + n) + ", \"cart\": \"" + std::string(100 + n % 300, 'x') +
           "\"}";
}

int worker(const std::string& name, int id, int report)
{
    shmkit::kv_store store(name);
    for (int n = 0; n < sessions_per_worker; ++n) {
        store.put(key_of(id, n), value_of(id, n));
        const int msg[2] = {id, n}; // committed
        if (::write(report, msg, sizeof msg) != sizeof msg) return 1;
    }
    return 0;
}

} // namespace

int main()
{
    const std::string name = "/shmkit-sessions-" + std::to_string(::getpid());
    // A bounded run: if anything ever hung, the test suite sees a failure.
    ::alarm(60);
    pid_t pids[workers] = {}; // > 0: a worker not reaped yet
    int rc = 1;
    try {
        shmkit::kv_store store(name, shmkit::exclusive);
        int report[2];
        if (::pipe(report) != 0) throw std::runtime_error("pipe failed");
        const pid_t master = ::getpid();
        for (int id = 0; id < workers; ++id) {
            pids[id] = ::fork();
            if (pids[id] < 0) throw std::runtime_error("fork failed");
            if (pids[id] == 0) {
                // A worker: dies with the master, and leaves by _Exit, never
                // through main's catch (which would remove the others' store).
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                int wrc = 1;
                try {
                    if (::getppid() == master) wrc = worker(name, id, report[1]);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "worker %d: %s\n", id, e.what());
                }
                std::_Exit(wrc);
            }
        }
        ::close(report[1]); // EOF once every worker has exited

        // Read the reports; kill the victim once it has committed a third of
        // its sessions (it is writing its next one right then, or about to).
        std::set<std::pair<int, int>> committed;
        int msg[2];
        bool killed = false;
        while (::read(report[0], msg, sizeof msg) == sizeof msg) {
            committed.insert({msg[0], msg[1]});
            if (!killed && msg[0] == victim && msg[1] == sessions_per_worker / 3) {
                ::kill(pids[victim], SIGKILL);
                killed = true;
            }
        }
        bool workers_ok = killed; // and the others finished their sessions
        for (int id = 0; id < workers; ++id) {
            int status = 0;
            ::waitpid(pids[id], &status, 0);
            pids[id] = 0;
            workers_ok = workers_ok && (id == victim || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        }

        std::string why;
        const bool sound = store.check(&why);
        std::size_t intact = 0;
        for (const auto& [w, n] : committed) {
            const auto v = store.get(key_of(w, n));
            intact += v && *v == value_of(w, n);
        }
        const shmkit::kv_stats st = store.stats();
        std::printf("worker %d was killed while writing; %zu sessions were reported committed\n", victim,
                    committed.size());
        if (!workers_ok) std::printf("but a worker failed, or the victim ended before it could be killed\n");
        std::printf("check(): %s\n", sound ? "sound" : why.c_str());
        std::printf("committed sessions intact: %zu of %zu\n", intact, committed.size());
        std::printf("store: %zu entries, %llu tables built while the workers wrote, %s\n", st.entries,
                    static_cast<unsigned long long>(st.grows),
                    st.lock_recoveries ? "the dead writer's lock was recovered and its work repaired"
                                       : "the victim died between two puts (nothing to repair)");
        rc = workers_ok && sound && intact == committed.size() && st.entries >= committed.size() ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "session_store: %s\n", e.what());
    }
    // Workers a failure left running go first: one that opens the store
    // after the remove would create it again.
    for (pid_t p : pids)
        if (p > 0) {
            ::kill(p, SIGKILL);
            ::waitpid(p, nullptr, 0);
        }
    shmkit::kv_store::remove(name);
    std::printf(rc == 0 ? "\nok\n" : "\nFAILED\n");
    return rc;
}
