// recovery_demo: processes share a segment and its reader/writer lock; one
// of them is killed while it holds the lock, and the others go on.
//
//   1. The parent creates a segment in /dev/shm holding a small record and
//      one crash-recoverable rwlock.
//   2. A writer process takes the write lock, updates half of the record,
//      and is SIGKILLed right there, in the middle of its update, while
//      three reader processes wait for the lock.
//   3. The readers waiting for the lock notice the dead holder within about
//      10 ms; one of them takes the lock over. Every one of them is told
//      (recovered()), because no writer has repaired the record yet. The
//      parent then takes the write lock, repairs the half-written record,
//      and from then on nobody is told anything.
#include <shmkit.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct record {
    std::uint64_t version;      // bumped first by a writer
    std::uint64_t committed;    // set equal to version when the update is done
    char message[64];
};

// A pipe byte is how a child says "I am ready"; EOF means it died (the
// parent closes its copy of the write end once the children are forked).
void signal_ready(int fd)
{
    const char c = 'r';
    if (::write(fd, &c, 1) != 1) std::_Exit(3);
}

bool wait_ready(int fd)
{
    char c;
    return ::read(fd, &c, 1) == 1;
}

double ms_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// The children die with the parent, whichever way it leaves: an early
// return leaves none behind holding or waiting for the lock.
void die_with(pid_t parent)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) std::_Exit(5);
}

int failed(const char* why)
{
    std::printf("demo: FAILED (%s)\n", why);
    return 1;
}

} // namespace

int main()
{
    // A bounded run: if anything ever hung, the test suite sees a failure.
    ::alarm(60);
    const std::string name = "/shmkit-demo-" + std::to_string(::getpid());
    shmkit::segment_layout layout;
    layout.data_size = sizeof(record);
    layout.n_rwlocks = 1;
    shmkit::segment seg = shmkit::segment::posix(shmkit::create_only, name, layout);
    seg.unlink(); // the name goes away now; the mapping lives on for everyone attached
    auto* rec = static_cast<record*>(seg.data());
    std::printf("parent %d: created segment %s (%zu bytes), one rwlock\n", ::getpid(), name.c_str(),
                seg.get_region().size());

    int writer_ready[2], never[2];
    if (::pipe(writer_ready) != 0 || ::pipe(never) != 0) return failed("pipe");
    const pid_t parent = ::getpid();

    // The writer: lock, half an update, then hang until killed.
    std::fflush(stdout); // children must not inherit (and repeat) buffered output
    const pid_t writer = ::fork();
    if (writer < 0) return failed("fork");
    if (writer == 0) {
        die_with(parent);
        auto lock = seg.rwlock(0); // a forked child registers itself on first use
        lock.lock();
        rec->version += 1;
        std::strcpy(rec->message, "half-written by the writer");
        signal_ready(writer_ready[1]);
        char c;
        (void)::read(never[0], &c, 1); // never returns: killed here
        std::_Exit(0);
    }
    ::close(writer_ready[1]);
    if (!wait_ready(writer_ready[0])) return failed("the writer died before it took the lock");
    std::printf("writer %d: holds the write lock, record half-updated (version %llu, committed %llu)\n", writer,
                static_cast<unsigned long long>(rec->version), static_cast<unsigned long long>(rec->committed));

    // Readers: they want the shared lock and queue behind the writer.
    int readers_ready[2]; // made now: the writer must not hold it
    if (::pipe(readers_ready) != 0) return failed("pipe");
    pid_t readers[3];
    std::fflush(stdout);
    for (pid_t& r : readers) {
        r = ::fork();
        if (r < 0) return failed("fork");
        if (r == 0) {
            die_with(parent);
            auto lock = seg.rwlock(0);
            signal_ready(readers_ready[1]);
            ::close(readers_ready[1]); // holding it on would hide another reader's death (no EOF)
            const auto t0 = std::chrono::steady_clock::now();
            lock.lock_shared();
            const bool torn = rec->version != rec->committed;
            std::printf("reader %d: got the shared lock after %.1f ms; recovered() = %s; record %s\n", ::getpid(),
                        ms_since(t0), lock.recovered() ? "true " : "false", torn ? "torn" : "consistent");
            std::fflush(stdout);
            lock.unlock_shared();
            std::_Exit(0);
        }
    }
    ::close(readers_ready[1]);
    for (int i = 0; i < 3; ++i)
        if (!wait_ready(readers_ready[0])) return failed("a reader died before it waited for the lock");

    ::kill(writer, SIGKILL);
    ::waitpid(writer, nullptr, 0);
    std::printf("parent: SIGKILLed the writer while it held the lock; readers are waiting\n");
    std::fflush(stdout);

    int healthy = 0;
    for (pid_t r : readers) {
        int status = 0;
        ::waitpid(r, &status, 0);
        healthy += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }

    // The record is still half-written: the dead writer cannot finish it.
    // Whoever writes next repairs it.
    auto lock = seg.rwlock(0);
    lock.lock();
    if (rec->version != rec->committed) {
        rec->committed = rec->version;
        std::strcpy(rec->message, "repaired after the writer died");
        std::printf("parent: took the write lock and repaired the record (version %llu)\n",
                    static_cast<unsigned long long>(rec->version));
    }
    lock.unlock();

    const std::uint32_t reclaimed = seg.reclaim_dead();
    const shmkit::segment_stats st = seg.stats();
    std::printf("readers: %d of 3 got the lock despite the dead writer\n", healthy);
    std::printf("stats: lock recoveries %llu; attach entries of exited processes reclaimed %u; attached now %u\n",
                static_cast<unsigned long long>(st.lock_recoveries), reclaimed, st.attached_alive);
    std::printf("record: \"%s\"\n", rec->message);
    const bool ok = healthy == 3 && st.lock_recoveries == 1 && rec->version == rec->committed;
    std::printf("%s\n", ok ? "demo: OK" : "demo: FAILED");
    return ok ? 0 : 1;
}
