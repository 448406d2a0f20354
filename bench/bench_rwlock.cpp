// bench/bench_rwlock.cpp: shmkit::sync::rwlock against
// boost::interprocess::interprocess_sharable_mutex and a process-shared
// pthread_rwlock_t, all three in MAP_SHARED memory, measured in the same run.
//
// One operation = one lock + unlock pair. Under the exclusive lock each
// operation increments a counter in shared memory, and the program checks
// afterwards that no increment was lost (a mutual-exclusion checksum); under
// the shared lock it reads that counter.
//
// Rows: exclusive and shared, in 1 process (uncontended) and in --procs
// forked processes (2 by default) hammering the same lock. Each forked
// worker takes its own shmkit handle (segment::rwlock()) after fork, as a
// real multi-process program does. Every row gets a fresh segment, so only
// the processes of that row are attached to it. A last, informational row
// repeats the uncontended exclusive case on a segment to which 32 other
// processes had been attached at once (see the note it prints).

#include "harness.hpp"

#include <shmkit/segment.hpp>

#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <vector>
#include <stdexcept>
#include <cstdint>
#include <iostream>
#include <string>

namespace {

namespace bip = boost::interprocess;
using namespace shmkit_bench;

/// The baselines, placed in one MAP_SHARED mapping before the fork. Every
/// lock and every protected counter on its own cache line, like shmkit's
/// lock state (segment header area) and counter (segment data area).
struct baselines {
    alignas(64) bip::interprocess_sharable_mutex bip_mutex;
    alignas(64) pthread_rwlock_t prw;
    alignas(64) std::uint64_t bip_counter = 0;
    alignas(64) std::uint64_t prw_counter = 0;

    baselines()
    {
        pthread_rwlockattr_t a;
        ::pthread_rwlockattr_init(&a);
        if (::pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0)
            throw std::runtime_error("pthread_rwlockattr_setpshared failed");
        if (::pthread_rwlock_init(&prw, &a) != 0) throw std::runtime_error("pthread_rwlock_init failed");
        ::pthread_rwlockattr_destroy(&a);
    }
    ~baselines() { ::pthread_rwlock_destroy(&prw); }
    baselines(const baselines&) = delete;
    baselines& operator=(const baselines&) = delete;
};

/// A fresh segment (this process attached alone) and fresh baselines, per row.
struct fixture {
    shmkit::segment seg;
    std::uint64_t* counter;
    shared_object<baselines> base;

    fixture() : seg(make_segment()), counter(static_cast<std::uint64_t*>(seg.data())) {}

    static shmkit::segment make_segment()
    {
        shmkit::segment_layout l;
        l.n_rwlocks = 1;
        l.data_size = 4096;
        return shmkit::segment::memfd("bench_rwlock", l); // an fd, so more handles can attach
    }
};

enum class mode { exclusive, shared };

struct checksum_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(const char* what, std::uint64_t counter, std::uint64_t expected)
{
    if (counter != expected)
        throw checksum_error(std::string("checksum mismatch for ") + what + ": counter " + std::to_string(counter) +
                             ", expected " + std::to_string(expected) + " (mutual exclusion broken?)");
}

struct row_result {
    result shm, bip, prw;
};

/// `attached_before`: that many more handles stay attached to the segment,
/// idle, during the measurement, as the idle workers of a prefork server
/// would be. A writer scans the reader count of every attached entry, so
/// this shows what the exclusive lock costs with 1 + attached_before entries.
row_result run_row(const options& opt, mode m, unsigned procs, unsigned attached_before)
{
    fixture f;
    std::vector<shmkit::segment> idle;
    for (unsigned i = 0; i < attached_before; ++i) idle.push_back(shmkit::segment::from_fd(f.seg.fd()));
    row_result r;
    baselines& b = *f.base;
    if (m == mode::exclusive) {
        r.shm = measure(opt, procs, [&] {
            return [rw = f.seg.rwlock(0), c = f.counter]() mutable {
                rw.lock();
                ++*c;
                rw.unlock();
            };
        });
        check("shmkit::sync::rwlock", *f.counter, r.shm.total_ops);
        r.bip = measure(opt, procs, [&] {
            return [mx = &b.bip_mutex, c = &b.bip_counter] {
                mx->lock();
                ++*c;
                mx->unlock();
            };
        });
        check("interprocess_sharable_mutex", b.bip_counter, r.bip.total_ops);
        r.prw = measure(opt, procs, [&] {
            return [l = &b.prw, c = &b.prw_counter] {
                ::pthread_rwlock_wrlock(l);
                ++*c;
                ::pthread_rwlock_unlock(l);
            };
        });
        check("pthread_rwlock_t", b.prw_counter, r.prw.total_ops);
    }
    else {
        r.shm = measure(opt, procs, [&] {
            return [rw = f.seg.rwlock(0), c = f.counter]() mutable {
                rw.lock_shared();
                do_not_optimize(*c);
                rw.unlock_shared();
            };
        });
        r.bip = measure(opt, procs, [&] {
            return [mx = &b.bip_mutex, c = &b.bip_counter] {
                mx->lock_sharable();
                do_not_optimize(*c);
                mx->unlock_sharable();
            };
        });
        r.prw = measure(opt, procs, [&] {
            return [l = &b.prw, c = &b.prw_counter] {
                ::pthread_rwlock_rdlock(l);
                do_not_optimize(*c);
                ::pthread_rwlock_unlock(l);
            };
        });
    }
    return r;
}

} // namespace

/// Recovery latency: a writer process takes the lock and is SIGKILLed
/// while it holds it; how long until this process's lock() returns?
/// Returns the sorted latencies in milliseconds.
std::vector<double> recovery_latencies(int rounds)
{
    shmkit::segment_layout l;
    l.n_rwlocks = 1;
    l.data_size = 64;
    shmkit::segment seg = shmkit::segment::memfd("bench_recovery", l);
    auto lock = seg.rwlock(0);
    std::vector<double> ms;
    for (int r = 0; r < rounds; ++r) {
        int ready[2];
        if (::pipe(ready) != 0) throw std::runtime_error("pipe failed");
        const pid_t holder = ::fork();
        if (holder == 0) {
            auto mine = seg.rwlock(0);
            mine.lock();
            const char c = 'x';
            if (::write(ready[1], &c, 1) != 1) ::_exit(1);
            for (;;) ::pause(); // killed here, holding the lock
        }
        char c;
        const bool got = ::read(ready[0], &c, 1) == 1;
        ::close(ready[0]);
        ::close(ready[1]);
        const auto t0 = std::chrono::steady_clock::now();
        ::kill(holder, SIGKILL);
        ::waitpid(holder, nullptr, 0);
        if (!got) throw std::runtime_error("holder failed");
        lock.lock();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        lock.unlock();
    }
    std::sort(ms.begin(), ms.end());
    return ms;
}

int main(int argc, char** argv)
{
    const options opt = parse_options(argc, argv,
                                      "bench_rwlock: shmkit::sync::rwlock vs boost::interprocess::"
                                      "interprocess_sharable_mutex vs process-shared pthread_rwlock_t");
    print_preamble("bench_rwlock: lock+unlock pairs per second (one op = one pair), all locks in MAP_SHARED memory",
                   opt);

    const std::string bip_name = "boost::interprocess sharable_mutex";
    const std::string prw_name = "pthread_rwlock_t PROCESS_SHARED";
    const std::string np = std::to_string(opt.procs) + " processes";
    const target uncontended_exclusive{100e6, 3.0}; // issue: >= 100M pairs/s and >= 3x Boost.Interprocess

    struct row_spec {
        std::string name;
        mode m;
        unsigned procs;
        const target* t;
        unsigned attached_before;
    };
    const row_spec rows[] = {
        {"rwlock exclusive, 1 process (uncontended)", mode::exclusive, 1, &uncontended_exclusive, 0},
        {"rwlock shared, 1 process (uncontended)", mode::shared, 1, nullptr, 0},
        {"rwlock exclusive, " + np + " (contended)", mode::exclusive, opt.procs, nullptr, 0},
        {"rwlock shared, " + np, mode::shared, opt.procs, nullptr, 0},
        // Informational: the writer scans one reader slot per attached
        // entry, so the uncontended exclusive cost grows with the number of
        // attached processes; the baselines are unaffected (measured again).
        {"rwlock exclusive, 1 process, 32 more attached", mode::exclusive, 1, nullptr, 32},
    };

    table tab;
    tab.print_header();
    bool scan_row = false;
    try {
        for (const row_spec& rs : rows) {
            if (!selected(opt, rs.name)) continue;
            scan_row |= rs.attached_before != 0;
            const row_result r = run_row(opt, rs.m, rs.procs, rs.attached_before);
            tab.row(rs.name, r.shm, bip_name, r.bip, opt, rs.t);
            tab.row("", r.shm, prw_name, r.prw, opt);
        }
    }
    catch (const checksum_error& e) {
        std::cerr << "bench_rwlock: " << e.what() << "\n";
        return 1;
    }
    catch (const std::exception& e) {
        std::cerr << "bench_rwlock: error: " << e.what() << "\n";
        return 1;
    }
    tab.note("");
    if (scan_row)
        tab.note("\"32 more attached\": 32 more handles stay attached (idle) while one process locks; every exclusive\n"
                 "lock() checks the reader count of each of the 33 attached entries (one cache line each).");
    tab.note("checksums: ok (every exclusive-lock increment of the shared counters accounted for)");
    if (selected(opt, "recovery")) {
        // Not a throughput row: the time from the SIGKILL of a writer that
        // holds the lock to the return of the next lock(). The issue asks
        // for at most 50 ms; the waiter checks the holder every 10 ms.
        const std::vector<double> ms = recovery_latencies(opt.quick ? 5 : 20);
        char line[200];
        std::snprintf(line, sizeof line,
                      "recovery of a writer killed holding the lock: median %.1f ms, max %.1f ms over %zu kills; "
                      "target <= 50 ms: %s",
                      ms[ms.size() / 2], ms.back(), ms.size(), ms.back() <= 50.0 ? "met" : "NOT MET");
        tab.note(line);
    }
    return tab.finish(opt, "noisy: in some of the runs kept, a worker was runnable but waited for a CPU (taken by other "
                           "processes, or\nby the other worker when the scheduler put both on one CPU) for more than " +
                               std::to_string(int(opt.max_preempted * 100 + 0.5)) +
                               "% of the run: partly time-sharing, not parallel");
}
