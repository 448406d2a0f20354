// histogram: worker processes fill a shared histogram with lock-free
// increments; one of them is killed while it holds the histogram's write
// lock, and the others go on.
//
//   1. The parent creates, in anonymous shared memory inherited by the
//      workers it forks:
//        - a shmkit::buffer<uint64_t> of 2 x 16 elements: the live histogram
//          (16 buckets) followed by a "published" copy of it (16 more);
//        - a shmkit::buffer<uint64_t> of per-worker sample counters;
//        - a shmkit::str_buffer config block: a label and the parameters
//          (bucket layout, samples per worker, seed), which the workers read
//          and parse.
//   2. Four workers draw samples (a bell curve: the sum of four uniform
//      numbers) and, for each one, incr() its bucket and then incr() their
//      own counter. Element operations are lock-free atomics: they never wait
//      for the lock, whoever holds it.
//   3. Worker 0 stops half-way and starts publishing a copy of the histogram:
//      it takes the write lock, snapshots the live buckets, writes the first
//      half of the copy with set_slice (reentrant under its lock), and is
//      SIGKILLed by the parent right there: the lock names a dead process and
//      the published copy is half old, half new. Every sample it drew was
//      counted in both buffers before it took the lock.
//   4. The surviving workers finish their samples, report their counts on a
//      pipe, and are then let go to publish their own copy: lock(), slice()
//      the live buckets, set_slice() the whole copy, unlock(). They need the
//      dead worker's lock: the first one to ask notices within about 10 ms
//      that its holder is dead, takes it over and is told so (recovered(),
//      asked while holding the lock); the others follow.
//   5. The parent prints the histogram and checks, exactly: the sum of the
//      buckets equals the samples the survivors reported plus the samples
//      the killed worker counted before it died (its counter), each counter
//      matches its worker's report, the published copy is whole again (equal
//      to the live buckets), and stats() shows one lock recovery.
//
// Synchronisation is by pipes only (no sleeps). Exit status 0 on success.
#include <shmkit.hpp>

#include <boost/core/span.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr unsigned n_workers = 4;
constexpr unsigned victim = 0;

// Messages from the workers to the parent, one write() each (smaller than
// PIPE_BUF, so writes of several workers to one pipe never interleave).
struct message {
    enum kind_t : std::uint32_t { sampled, locked, published } kind;
    std::uint32_t worker;
    std::uint64_t samples;   // sampled/locked: samples drawn
    double waited_ms;        // published: time spent waiting in lock()
    std::uint32_t recovered; // published: this worker recovered the lock
    std::uint32_t unused = 0; // the tail a compiler would pad: every byte sent is set
};

void send(int fd, const message& m)
{
    if (::write(fd, &m, sizeof m) != static_cast<ssize_t>(sizeof m)) std::_Exit(3);
}

// The parameters, as the workers parse them from the config block.
struct params {
    std::uint64_t buckets = 0, width = 0, samples = 0, seed = 0;
};

params parse(const shmkit::str_buffer& config)
{
    params p;
    unsigned long long b = 0, w = 0, s = 0, seed = 0;
    if (std::sscanf(config.get(1).c_str(), "buckets=%llu width=%llu", &b, &w) != 2 ||
        std::sscanf(config.get(2).c_str(), "samples=%llu", &s) != 1 ||
        std::sscanf(config.get(3).c_str(), "seed=%llu", &seed) != 1)
        std::_Exit(4);
    p.buckets = b;
    p.width = w;
    p.samples = s;
    p.seed = seed;
    return p;
}

// splitmix64: a small deterministic generator.
std::uint64_t next_random(std::uint64_t& state)
{
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// One sample: the sum of four numbers in [0, buckets*width/4), a bell curve.
std::uint64_t bucket_of_sample(std::uint64_t& state, const params& p)
{
    const std::uint64_t quarter = p.buckets * p.width / 4;
    std::uint64_t v = 0;
    for (int k = 0; k < 4; ++k) v += next_random(state) % quarter;
    return v / p.width;
}

double ms_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

int main()
{
    // A bounded run: if anything ever hung, the test suite sees a failure.
    ::alarm(60);

    // 1. The shared objects.
    const std::uint64_t buckets = 16;
    auto hist = shmkit::buffer<std::uint64_t>::anonymous(2 * buckets); // live + published copy
    auto counters = shmkit::buffer<std::uint64_t>::anonymous(n_workers);
    auto config = shmkit::str_buffer::anonymous(4, 64);
    const std::string_view settings[] = {"label: response time of fake requests, in microseconds",
                                         "buckets=16 width=25", "samples=200000", "seed=20240601"};
    config.set_slice(0, settings);
    const params p = parse(config);
    std::printf("parent %d: histogram buffer<uint64_t>[%zu] (%zu live buckets + a published copy), "
                "counters buffer<uint64_t>[%zu], config str_buffer[%zu] of width %zu\n",
                ::getpid(), hist.capacity(), std::size_t(buckets), counters.capacity(), config.capacity(),
                config.width());
    std::printf("config: \"%s\"; %s; %s; %s\n", config.get(0).c_str(), config.get(1).c_str(), config.get(2).c_str(),
                config.get(3).c_str());

    int report[2], publish_go[2], never[2];
    if (::pipe(report) != 0 || ::pipe(publish_go) != 0 || ::pipe(never) != 0) return 1;

    // 2. The workers.
    pid_t pids[n_workers];
    const pid_t parent = ::getpid();
    for (unsigned w = 0; w < n_workers; ++w) {
        std::fflush(stdout); // children must not inherit (and repeat) buffered output
        pids[w] = ::fork();
        if (pids[w] < 0) return 1;
        if (pids[w] != 0) continue;
        // Worker w. Dies with the parent; keeps only the pipe ends it uses.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) std::_Exit(5);
        ::close(report[0]);
        ::close(publish_go[1]);
        ::close(never[1]);
        const params cp = parse(config); // what the parent configured
        const std::uint64_t todo = w == victim ? cp.samples / 2 : cp.samples;
        std::uint64_t state = cp.seed + w;
        std::uint64_t drawn = 0;
        for (; drawn < todo; ++drawn) {
            hist.incr(bucket_of_sample(state, cp)); // lock-free
            counters.incr(w);                       // then count it: the two agree between samples
        }
        if (w == victim) {
            // 3. Publish a copy, and die half-way, holding the write lock.
            hist.lock();
            const std::vector<std::uint64_t> snap = hist.slice(0, cp.buckets); // under our own lock: one copy
            hist.set_slice(cp.buckets, boost::span<const std::uint64_t>(snap.data(), cp.buckets / 2));
            send(report[1], {message::locked, w, drawn, 0, 0});
            char c;
            (void)::read(never[0], &c, 1); // never returns: SIGKILLed here
            std::_Exit(6);
        }
        // 4. Report, wait for the go, publish a whole copy.
        send(report[1], {message::sampled, w, drawn, 0, 0});
        char c;
        if (::read(publish_go[0], &c, 1) != 0) std::_Exit(7); // EOF is "go"
        const auto t0 = std::chrono::steady_clock::now();
        hist.lock(); // the dead worker's lock: the first to ask takes it over
        const double waited = ms_since(t0);
        const bool took_over = hist.recovered(); // asked while holding the lock
        const std::vector<std::uint64_t> snap = hist.slice(0, cp.buckets);
        hist.set_slice(cp.buckets, snap); // reentrant under our own write lock
        hist.unlock();
        send(report[1], {message::published, w, drawn, waited, took_over ? 1u : 0u});
        std::_Exit(0);
    }
    ::close(report[1]);
    ::close(publish_go[0]);
    ::close(never[0]);

    // Reads one message; a worker that died early closes nothing by itself
    // (the others still hold the pipe), so the alarm bounds the wait.
    auto receive = [&](message& m) { return ::read(report[0], &m, sizeof m) == static_cast<ssize_t>(sizeof m); };

    // Wait until the victim holds the lock and every survivor has sampled.
    std::uint64_t reported[n_workers] = {};
    unsigned sampled = 0;
    bool victim_locked = false;
    while (!victim_locked || sampled < n_workers - 1) {
        message m;
        if (!receive(m)) return 1;
        if (m.kind == message::locked) {
            victim_locked = true;
            std::printf("worker %u (pid %d): drew %llu samples, took the write lock, published half a copy; "
                        "now killed\n",
                        m.worker, pids[m.worker], static_cast<unsigned long long>(m.samples));
        }
        else if (m.kind == message::sampled) {
            ++sampled;
            reported[m.worker] = m.samples;
            std::printf("worker %u (pid %d): drew %llu samples, all counted with lock-free incr\n", m.worker,
                        pids[m.worker], static_cast<unsigned long long>(m.samples));
        }
    }
    std::fflush(stdout);

    // Let the survivors publish (they now need the lock the victim holds),
    // and kill the victim.
    ::close(publish_go[1]);
    ::kill(pids[victim], SIGKILL);
    int vstatus = 0;
    ::waitpid(pids[victim], &vstatus, 0);
    std::printf("parent: SIGKILLed worker %u while it held the histogram's write lock\n", victim);
    std::fflush(stdout);

    unsigned recovered_by = 0, published = 0;
    for (unsigned k = 0; k < n_workers - 1; ++k) {
        message m;
        if (!receive(m) || m.kind != message::published) return 1;
        ++published;
        recovered_by += m.recovered;
        std::printf("worker %u: published a whole copy after waiting %.1f ms for the lock%s\n", m.worker,
                    m.waited_ms, m.recovered ? " (took it over from the dead worker: recovered() = true)" : "");
    }
    bool workers_ok = WIFSIGNALED(vstatus) && WTERMSIG(vstatus) == SIGKILL;
    for (unsigned w = 0; w < n_workers; ++w) {
        if (w == victim) continue;
        int st = 0;
        ::waitpid(pids[w], &st, 0);
        workers_ok = workers_ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }

    // 5. The histogram and the checks.
    const std::vector<std::uint64_t> live = hist.slice(0, buckets);
    const std::vector<std::uint64_t> copy = hist.slice(buckets, buckets);
    std::uint64_t total = 0, peak = 1;
    for (std::uint64_t v : live) {
        total += v;
        if (v > peak) peak = v;
    }
    std::printf("\n%s\n", config.get(0).c_str());
    for (std::uint64_t b = 0; b < buckets; ++b) {
        const int bar = static_cast<int>(live[b] * 50 / peak);
        std::printf("  [%3llu, %3llu) %7llu %.*s\n", static_cast<unsigned long long>(b * p.width),
                    static_cast<unsigned long long>((b + 1) * p.width), static_cast<unsigned long long>(live[b]), bar,
                    "##################################################");
    }

    std::uint64_t expected = 0;
    bool counters_ok = true;
    std::printf("\nper-worker counters:");
    for (unsigned w = 0; w < n_workers; ++w) {
        const std::uint64_t c = counters.get(w);
        std::printf(" %llu%s", static_cast<unsigned long long>(c), w == victim ? " (killed)" : "");
        expected += w == victim ? c : reported[w];
        if (w != victim && c != reported[w]) counters_ok = false;
    }
    std::printf("\ntotal in the buckets: %llu; survivors reported %llu + the killed worker counted %llu = %llu\n",
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(expected - counters.get(victim)),
                static_cast<unsigned long long>(counters.get(victim)), static_cast<unsigned long long>(expected));
    const bool copy_ok = copy == live;
    std::printf("published copy: %s\n", copy_ok ? "whole (equal to the live buckets)" : "TORN");

    const shmkit::buffer_stats st = hist.stats();
    std::printf("stats: capacity %zu, element size %zu, mapping %zu bytes, lock recoveries %llu, "
                "bulk-write recoveries %llu\n",
                st.capacity, st.elem_size, st.mmap_size, static_cast<unsigned long long>(st.lock_recoveries),
                static_cast<unsigned long long>(st.bulk_recoveries));

    // The dead writer is recovered once (lock_recoveries), and the one that
    // took it over is told; a second waiter may be told too (recovered()
    // errs on the safe side: two recoverers may both mark the lock before
    // one wins, and the loser's mark can outlive the winner's unlock).
    const bool ok = workers_ok && total == expected && counters_ok && copy_ok && published == n_workers - 1 &&
                    recovered_by >= 1 && st.lock_recoveries == 1 && counters.get(victim) == p.samples / 2;
    std::printf("%s\n", ok ? "histogram: OK" : "histogram: FAILED");
    return ok ? 0 : 1;
}
