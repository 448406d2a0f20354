// connection_slots: prefork workers share a pool of connection slots; one
// worker is killed while it holds some, and they come back.
//
//   1. The master creates a str_pool of 8 slots ("connection slots", each
//      holding a description of the connection it serves) and forks
//      4 workers, which open the pool by path as a prefork server would.
//   2. Each worker takes 2 slots (alloc_guard: freed when it is done) and
//      tells the master. Worker 2 is SIGKILLed while holding its slots:
//      it never frees them.
//   3. The master sees 8 slots in use, 2 of them owned by a dead process.
//      recover_stale() frees exactly those 2 (liveness comes from the
//      attach table, so a reused PID could not fool it); the live workers'
//      slots are untouched.
//   4. A late worker opened with auto_recover would not even need the
//      master: shown by killing another worker and letting a blocking
//      alloc() recover its slots by itself.
#include <shmkit/pool.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int workers = 4;
constexpr int slots_per_worker = 2;

void put(int fd) { (void)!::write(fd, "x", 1); }
bool get(int fd)
{
    char c;
    return ::read(fd, &c, 1) == 1;
}

int worker(const std::string& path, int id, int ready, int finish)
{
    shmkit::str_pool slots(shmkit::open_only, path);
    std::vector<shmkit::slot_guard> mine;
    for (int k = 0; k < slots_per_worker; ++k) {
        mine.push_back(slots.alloc_guard(std::chrono::seconds(10)));
        if (!mine.back()) return 1; // no slot came free: the master sees EOF on `ready`
        slots.set(*mine.back(), "worker " + std::to_string(id) + " (pid " + std::to_string(::getpid()) +
                                    ") serving client " + std::to_string(10 * id + k));
    }
    put(ready);
    get(finish); // until told to finish (a killed worker never gets here)
    return 0;    // the guards free the slots
}

void show(const shmkit::str_pool& slots)
{
    slots.each_allocated([&](std::size_t i) {
        std::printf("  slot %zu  owner pid %-7d  %s\n", i, static_cast<int>(slots.owner(i)), slots.get(i).c_str());
    });
}

/// A forked worker that holds its slots: its PID, and the master's end of
/// the pipe on which a byte tells it to finish.
struct worker_process {
    pid_t pid;
    int finish;
};

// A pipe byte says "I hold my slots" (EOF: the worker died first); the
// master's byte on the other pipe says "finish".
worker_process fork_worker(const std::string& path, int id)
{
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) throw std::runtime_error("pipe failed");
    const pid_t master = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        // The worker: dies with the master, and leaves by _Exit, never
        // through main's catch (which would unlink the pool).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::close(up[0]);
        ::close(down[1]);
        int rc = 1;
        try {
            if (::getppid() == master) rc = worker(path, id, up[1], down[0]);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "worker %d: %s\n", id, e.what());
        }
        std::_Exit(rc);
    }
    ::close(up[1]); // the worker's ends: once ours are closed, its death gives EOF
    ::close(down[0]);
    const bool ready = get(up[0]);
    ::close(up[0]);
    if (!ready) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw std::runtime_error("worker " + std::to_string(id) + " exited before it took its slots");
    }
    return {pid, down[1]};
}

int run(const std::string& path, shmkit::str_pool& slots)
{
    // On every way out of run(), the workers still running die with the
    // master (PR_SET_PDEATHSIG), after main() has unlinked the pool.
    std::vector<worker_process> w;
    for (int id = 0; id < workers; ++id) w.push_back(fork_worker(path, id));
    std::printf("%d workers hold %zu of %zu slots:\n", workers, slots.used(), slots.capacity());
    show(slots);

    const int victim = 2;
    ::kill(w[victim].pid, SIGKILL);
    ::waitpid(w[victim].pid, nullptr, 0);
    std::printf("\nworker %d (pid %d) was killed holding its slots; still %zu in use\n", victim,
                static_cast<int>(w[victim].pid), slots.used());
    const std::size_t freed = slots.recover_stale();
    std::printf("recover_stale() freed %zu slots (the dead worker's); %zu in use:\n", freed, slots.used());
    show(slots);
    if (freed != slots_per_worker || slots.used() != (workers - 1) * slots_per_worker) return 1;

    // A late worker takes the two recovered slots: the pool is full. Then
    // worker 3 dies too, and a newcomer opened with auto_recover simply
    // asks for a slot: its alloc() finds the dead owner's slots by itself.
    w.push_back(fork_worker(path, workers)); // takes the 2 recovered slots
    ::kill(w[3].pid, SIGKILL);
    ::waitpid(w[3].pid, nullptr, 0);
    shmkit::pool_options opt;
    opt.auto_recover = true;
    shmkit::str_pool newcomer(shmkit::open_only, path, opt);
    std::printf("\nworker 3 was killed too; the pool is full (%zu of %zu). A newcomer opened with "
                "auto_recover calls alloc():\n",
                newcomer.used(), newcomer.capacity());
    auto got = newcomer.alloc(std::chrono::seconds(5));
    if (!got) return 1;
    std::printf("  it got slot %zu by recovering the dead worker's slots itself (stats: %llu recovered)\n", *got,
                static_cast<unsigned long long>(newcomer.stats().recoveries));
    newcomer.free(*got);

    bool finished = true;
    for (int id : {0, 1, 4}) {
        put(w[id].finish);
        int status = 0;
        ::waitpid(w[id].pid, &status, 0);
        finished = finished && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    std::printf("\nthe live workers finished and their guards freed their slots: %zu in use\n", slots.used());
    return finished && slots.used() == 0 ? 0 : 1;
}

} // namespace

int main()
{
    const std::string path = "/tmp/shmkit-connection-slots-" + std::to_string(::getpid());
    int rc = 1;
    try {
        shmkit::str_pool slots(shmkit::create_only, path, workers * slots_per_worker, 64);
        rc = run(path, slots);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "connection_slots: %s\n", e.what());
    }
    ::unlink(path.c_str());
    std::printf(rc == 0 ? "\nok\n" : "\nFAILED\n");
    return rc;
}
