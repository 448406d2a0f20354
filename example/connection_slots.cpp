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

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int workers = 4;
constexpr int slots_per_worker = 2;

// A pipe byte says "I hold my slots"; the master's byte says "finish".
struct channel {
    int up[2], down[2];
    channel()
    {
        if (::pipe(up) != 0 || ::pipe(down) != 0) std::exit(2);
    }
};

void put(int fd) { (void)!::write(fd, "x", 1); }
bool get(int fd)
{
    char c;
    return ::read(fd, &c, 1) == 1;
}

int worker(const std::string& path, int id, channel& ch)
{
    shmkit::str_pool slots(shmkit::open_only, path);
    std::vector<shmkit::slot_guard> mine;
    for (int k = 0; k < slots_per_worker; ++k) {
        mine.push_back(slots.alloc_guard());
        slots.set(*mine.back(), "worker " + std::to_string(id) + " (pid " + std::to_string(::getpid()) +
                                    ") serving client " + std::to_string(10 * id + k));
    }
    put(ch.up[1]);
    get(ch.down[0]); // until told to finish (a killed worker never gets here)
    return 0;        // the guards free the slots
}

void show(const shmkit::str_pool& slots)
{
    slots.each_allocated([&](std::size_t i) {
        std::printf("  slot %zu  owner pid %-7d  %s\n", i, static_cast<int>(slots.owner(i)), slots.get(i).c_str());
    });
}

pid_t fork_worker(const std::string& path, int id, channel& ch)
{
    const pid_t pid = ::fork();
    if (pid == 0) std::_Exit(worker(path, id, ch));
    get(ch.up[0]); // it holds its slots now
    return pid;
}

int run(const std::string& path, shmkit::str_pool& slots)
{
    std::vector<channel> ch(workers + 1);
    std::vector<pid_t> pids;
    for (int id = 0; id < workers; ++id) pids.push_back(fork_worker(path, id, ch[id]));
    std::printf("%d workers hold %zu of %zu slots:\n", workers, slots.used(), slots.capacity());
    show(slots);

    const int victim = 2;
    ::kill(pids[victim], SIGKILL);
    ::waitpid(pids[victim], nullptr, 0);
    std::printf("\nworker %d (pid %d) was killed holding its slots; still %zu in use\n", victim,
                static_cast<int>(pids[victim]), slots.used());
    const std::size_t freed = slots.recover_stale();
    std::printf("recover_stale() freed %zu slots (the dead worker's); %zu in use:\n", freed, slots.used());
    show(slots);
    if (freed != slots_per_worker || slots.used() != (workers - 1) * slots_per_worker) return 1;

    // A late worker takes the two recovered slots: the pool is full. Then
    // worker 3 dies too, and a newcomer opened with auto_recover simply
    // asks for a slot: its alloc() finds the dead owner's slots by itself.
    pids.push_back(fork_worker(path, workers, ch[workers])); // takes the 2 recovered slots
    ::kill(pids[3], SIGKILL);
    ::waitpid(pids[3], nullptr, 0);
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

    for (int id : {0, 1, 4}) {
        put(ch[id].down[1]);
        ::waitpid(pids[id], nullptr, 0);
    }
    std::printf("\nthe live workers finished and their guards freed their slots: %zu in use\n", slots.used());
    return slots.used() == 0 ? 0 : 1;
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
