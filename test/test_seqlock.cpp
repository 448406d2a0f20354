// Tests of shmkit/sync/seqlock.hpp and the atomic copy helpers: the
// sequence protocol, consistent snapshots under concurrent writes (threads
// and processes), and recovery after a writer is SIGKILLed mid-write.
#define BOOST_TEST_MODULE test_seqlock
#include "support.hpp"

#include <shmkit/sync/seqlock.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using shmkit::deadline_clock;
using shmkit::sync::atomic_copy_from_shared;
using shmkit::sync::atomic_copy_to_shared;
using shmkit::sync::seqlock;

constexpr auto test_limit = 10s;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int writes = 10000; // sanitizers slow every atomic access down
#else
constexpr int writes = 100000;
#endif

/// A seqlock and the 4 KiB it protects, as an owning structure lays them out.
struct protected_block {
    seqlock lock;
    alignas(shmkit::cache_line_size) unsigned char data[4096];
};

using snapshot = std::array<unsigned char, sizeof(protected_block::data)>;

/// A zero-filled MAP_SHARED|MAP_ANONYMOUS object, inherited by forked
/// children. No constructor runs: T must be valid as zeros, as a seqlock is.
template <class T>
class shared_object {
public:
    shared_object()
        : p_(::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0))
    {
        BOOST_REQUIRE(p_ != MAP_FAILED);
    }
    ~shared_object() { ::munmap(p_, sizeof(T)); }
    shared_object(const shared_object&) = delete;
    shared_object& operator=(const shared_object&) = delete;

    T& operator*() const { return *static_cast<T*>(p_); }
    T* operator->() const { return static_cast<T*>(p_); }

private:
    void* p_;
};

using shared_block = shared_object<protected_block>;
using shared_flag = shared_object<std::atomic<std::uint32_t>>;

/// Both ends of a pipe, closed on destruction.
struct pipe_pair {
    int fds[2] = {-1, -1};
    pipe_pair() { BOOST_REQUIRE(::pipe(fds) == 0); }
    ~pipe_pair()
    {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    int read_end() const { return fds[0]; }
    int write_end() const { return fds[1]; }

    /// The parent closes its write end after fork, so that a child that dies
    /// before writing gives EOF instead of blocking the parent forever.
    void close_write()
    {
        ::close(fds[1]);
        fds[1] = -1;
    }
};

/// Blocks until one byte arrives; false on EOF (the writer died first).
bool read_byte(int fd)
{
    char c;
    ssize_t r;
    while ((r = ::read(fd, &c, 1)) < 0 && errno == EINTR) {}
    return r == 1;
}

bool write_byte(int fd)
{
    const char c = 'x';
    return ::write(fd, &c, 1) == 1;
}

/// Fills the protected data with `value` under the seqlock (the caller is the
/// only writer, as the owning structure's write lock would guarantee).
void write_uniform(protected_block& b, unsigned char value)
{
    snapshot src;
    src.fill(value);
    b.lock.write_begin();
    atomic_copy_to_shared(b.data, src.data(), src.size());
    b.lock.write_end();
}

/// Rewrites the data and repairs the sequence, as a recovering writer does.
void repair(protected_block& b, unsigned char value)
{
    snapshot src;
    src.fill(value);
    atomic_copy_to_shared(b.data, src.data(), src.size());
    b.lock.recover();
}

bool uniform(const snapshot& s)
{
    return std::all_of(s.begin(), s.end(), [&](unsigned char c) { return c == s[0]; });
}

/// A snapshot through seqlock::read; a stall is a test failure unless
/// `on_stall` handles it.
template <class OnStall>
snapshot read_snapshot(protected_block& b, OnStall&& on_stall)
{
    snapshot dst;
    b.lock.read([&] { atomic_copy_from_shared(dst.data(), b.data, dst.size()); }, on_stall);
    return dst;
}

/// A snapshot through the low-level read_begin / read_retry loop.
snapshot read_snapshot_manually(protected_block& b)
{
    snapshot dst;
    std::uint32_t seq;
    do {
        seq = b.lock.read_begin();
        atomic_copy_from_shared(dst.data(), b.data, dst.size());
    } while (b.lock.read_retry(seq));
    return dst;
}

/// The value of write number i: never 0 (the zero-filled start) and never
/// equal to the value of write i-1, so a torn copy is never uniform.
unsigned char value_of(int i) { return static_cast<unsigned char>(i % 255 + 1); }

} // namespace

BOOST_AUTO_TEST_SUITE(protocol)

BOOST_AUTO_TEST_CASE(zero_filled_lock_is_stable)
{
    shared_block b;
    BOOST_TEST(b->lock.sequence() == 0u);
    const std::uint32_t seq = b->lock.read_begin();
    BOOST_TEST(seq == 0u);
    BOOST_TEST(!b->lock.read_retry(seq));
}

BOOST_AUTO_TEST_CASE(write_makes_the_sequence_odd_then_even)
{
    seqlock lock{};
    const std::uint32_t before = lock.read_begin();
    lock.write_begin();
    BOOST_TEST(lock.sequence() % 2 == 1u);
    BOOST_TEST(lock.read_retry(before));
    lock.write_end();
    BOOST_TEST(lock.sequence() == before + 2);
    BOOST_TEST(lock.read_retry(before));
    const std::uint32_t after = lock.read_begin();
    BOOST_TEST(after == before + 2);
    BOOST_TEST(!lock.read_retry(after));
}

BOOST_AUTO_TEST_CASE(recover_leaves_a_stable_sequence_alone)
{
    seqlock lock{};
    lock.write_begin();
    lock.write_end();
    BOOST_TEST(!lock.recover());
    BOOST_TEST(lock.sequence() == 2u);
}

BOOST_AUTO_TEST_CASE(recover_ends_an_interrupted_write)
{
    seqlock lock{};
    lock.write_begin(); // and no write_end: as a dead writer leaves it
    BOOST_TEST(lock.recover());
    BOOST_TEST(lock.sequence() == 2u);
    BOOST_TEST(!lock.recover());
}

BOOST_AUTO_TEST_CASE(write_begin_accepts_an_interrupted_write)
{
    seqlock lock{};
    lock.write_begin(); // the dead writer's
    const std::uint32_t odd = lock.sequence();
    lock.write_begin(); // a recovering writer starts over
    BOOST_TEST(lock.sequence() % 2 == 1u);
    BOOST_TEST(lock.sequence() != odd);
    lock.write_end();
    BOOST_TEST(lock.sequence() % 2 == 0u);
    BOOST_TEST(!lock.read_retry(lock.read_begin()));
}

BOOST_AUTO_TEST_CASE(read_copies_once_without_writers)
{
    seqlock lock{};
    int copies = 0;
    int stalls = 0;
    lock.read([&] { ++copies; }, [&] { ++stalls; });
    BOOST_TEST(copies == 1);
    BOOST_TEST(stalls == 0);
}

BOOST_AUTO_TEST_CASE(read_copies_again_after_an_overlapping_write)
{
    shared_block b;
    write_uniform(*b, 1);
    int copies = 0;
    snapshot dst;
    b->lock.read(
        [&] {
            atomic_copy_from_shared(dst.data(), b->data, dst.size());
            if (++copies == 1) write_uniform(*b, 2); // a write overlaps the first copy
        },
        [] { BOOST_FAIL("unexpected stall"); });
    BOOST_TEST(copies == 2);
    BOOST_TEST(uniform(dst));
    BOOST_TEST(dst[0] == 2);
}

BOOST_AUTO_TEST_CASE(read_passes_exceptions_through)
{
    seqlock lock{};
    BOOST_CHECK_THROW(lock.read([] { throw std::runtime_error("copy"); }, [] {}),
                      std::runtime_error);
    BOOST_TEST(lock.sequence() == 0u);
}

BOOST_AUTO_TEST_CASE(layout_fits_shared_memory)
{
    BOOST_TEST(std::is_standard_layout_v<seqlock>);
    BOOST_TEST(sizeof(seqlock) == shmkit::cache_line_size);
    BOOST_TEST(alignof(seqlock) == shmkit::cache_line_size);
    BOOST_TEST(offsetof(protected_block, data) == shmkit::cache_line_size);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(atomic_copies_match_memcpy_at_every_alignment)
{
    alignas(8) unsigned char shared[64];
    alignas(8) unsigned char private_src[64];
    alignas(8) unsigned char out[64];
    alignas(8) unsigned char expected[64];
    for (int i = 0; i != 64; ++i) private_src[i] = static_cast<unsigned char>(i * 7 + 1);
    bool all_equal = true;
    for (std::size_t off = 0; off != 8; ++off) {
        for (std::size_t n = 0; n != 40; ++n) {
            std::memset(shared, 0xAA, sizeof shared);
            std::memcpy(expected, shared, sizeof shared);
            std::memcpy(expected + off, private_src + 3, n);
            atomic_copy_to_shared(shared + off, private_src + 3, n);
            all_equal = all_equal && std::memcmp(shared, expected, sizeof shared) == 0;

            std::memset(out, 0x55, sizeof out);
            atomic_copy_from_shared(out + 5, shared + off, n);
            all_equal = all_equal && std::memcmp(out + 5, expected + off, n) == 0 &&
                        out[4] == 0x55 && out[5 + n] == 0x55;
        }
    }
    BOOST_TEST(all_equal);
}

BOOST_AUTO_TEST_CASE(reader_threads_see_only_uniform_snapshots)
{
    shared_block b;
    std::atomic<bool> writer_done{false};
    std::atomic<long> torn{0};
    std::atomic<long> reads{0};

    auto reader = [&](bool manual) {
        long my_torn = 0;
        long my_reads = 0;
        auto check = [&] {
            const snapshot s = manual ? read_snapshot_manually(*b)
                                      : read_snapshot(*b, [] { /* a live writer is never stalled */ });
            my_torn += uniform(s) ? 0 : 1;
            ++my_reads;
        };
        while (!writer_done.load(std::memory_order_acquire)) check();
        check(); // at least one read, also after the last write
        torn += my_torn;
        reads += my_reads;
    };

    std::vector<std::thread> readers;
    for (int i = 0; i != 3; ++i) readers.emplace_back(reader, i == 0);
    for (int i = 0; i != writes; ++i) write_uniform(*b, value_of(i));
    writer_done.store(true, std::memory_order_release);
    for (auto& t : readers) t.join();

    BOOST_TEST(torn.load() == 0);
    BOOST_TEST(reads.load() >= 3);
    const snapshot last = read_snapshot_manually(*b);
    BOOST_TEST(uniform(last));
    BOOST_TEST(last[0] == value_of(writes - 1));
    BOOST_TEST(b->lock.sequence() == 2u * writes);
}


BOOST_AUTO_TEST_CASE(read_begin_waits_for_write_end)
{
    seqlock lock{};
    lock.write_begin();
    std::uint32_t seq = 1;
    std::atomic<pid_t> tid{0};
    std::thread reader([&] {
        tid.store(test::this_thread_id());
        seq = lock.read_begin();
    });
    // The write ends only once the reader sleeps on the sequence word (no
    // other waiter count to watch: it is private), bounded.
    BOOST_TEST(test::until([&] { return tid.load() != 0; }, test_limit));
    BOOST_TEST(test::until_futex_waiting(tid.load(), &lock, sizeof lock, test_limit),
               "the reader never slept in read_begin");
    lock.write_end();
    reader.join();
    BOOST_TEST(seq == 2u);
}

BOOST_AUTO_TEST_CASE(reader_processes_see_only_uniform_snapshots)
{
    shared_block b;
    shared_flag stop;
    auto reader = [&](bool manual) {
        long torn = 0;
        while (stop->load(std::memory_order_acquire) == 0) {
            const snapshot s = manual ? read_snapshot_manually(*b) : read_snapshot(*b, [] {});
            torn += uniform(s) ? 0 : 1;
        }
        return torn == 0 ? 0 : 1;
    };
    test::child first([&] { return reader(false); });
    test::child second([&] { return reader(true); });
    for (int i = 0; i != writes; ++i) write_uniform(*b, value_of(i));
    stop->store(1, std::memory_order_release);
    BOOST_TEST(first.wait() == 0);
    BOOST_TEST(second.wait() == 0);
}

BOOST_AUTO_TEST_CASE(writer_killed_mid_write_is_recovered)
{
    shared_block b;
    write_uniform(*b, 1);
    pipe_pair inside;
    test::child writer([&] {
        snapshot two;
        two.fill(2);
        b->lock.write_begin();
        atomic_copy_to_shared(b->data, two.data(), two.size() / 2); // torn from here on
        if (!write_byte(inside.write_end())) return 1;
        for (;;) ::pause(); // SIGKILLed here, between write_begin and write_end
    });
    inside.close_write();
    BOOST_REQUIRE(read_byte(inside.read_end()));
    ::kill(writer.pid(), SIGKILL);
    BOOST_TEST(writer.wait() == 128 + SIGKILL);
    BOOST_TEST(b->lock.sequence() % 2 == 1u);

    int stalls = 0;
    const snapshot s = read_snapshot(*b, [&] {
        // What the owning structure does: it finds the writer dead, takes
        // over the write lock, makes the data consistent, and recovers.
        ++stalls;
        repair(*b, 3);
    });
    BOOST_TEST(stalls == 1);
    BOOST_TEST(uniform(s));
    BOOST_TEST(s[0] == 3);
    BOOST_TEST(b->lock.sequence() % 2 == 0u);

    const snapshot again = read_snapshot(*b, [] { BOOST_FAIL("stall after recovery"); });
    BOOST_TEST(again[0] == 3);
    write_uniform(*b, 5); // and writing goes on
    BOOST_TEST(read_snapshot_manually(*b)[0] == 5);
}

BOOST_AUTO_TEST_CASE(writers_killed_at_random_points_never_expose_a_torn_snapshot)
{
    constexpr int rounds = 20;
    shared_block b;
    write_uniform(*b, 1);
    int stalls = 0;
    int killed_mid_write = 0;
    for (int round = 0; round != rounds; ++round) {
        pipe_pair running;
        test::child writer([&] {
            for (int i = 0;; ++i) {
                write_uniform(*b, value_of(i));
                if (i == 64 && !write_byte(running.write_end())) return 1;
            }
        });
        running.close_write();
        BOOST_REQUIRE(read_byte(running.read_end()));
        ::kill(writer.pid(), SIGKILL); // lands wherever the writer's loop is
        BOOST_REQUIRE(writer.wait() == 128 + SIGKILL);
        killed_mid_write += static_cast<int>(b->lock.sequence() % 2);

        const snapshot s = read_snapshot(*b, [&] {
            ++stalls;
            repair(*b, 0xEE);
        });
        BOOST_TEST(uniform(s));
    }
    // A read stalls exactly when the kill left a write open.
    BOOST_TEST(stalls == killed_mid_write);
    BOOST_TEST_MESSAGE(killed_mid_write << " of " << rounds << " writers died mid-write");
}

BOOST_AUTO_TEST_CASE(on_stall_repeats_until_recover_wakes_the_reader)
{
    shared_block b;
    write_uniform(*b, 1);
    b->lock.write_begin(); // never ended, as by a dead writer

    std::atomic<std::uint32_t> stalls{0};
    snapshot s{};
    std::thread reader([&] {
        s = read_snapshot(*b, [&] {
            stalls.fetch_add(1);
            shmkit::sync::futex_wake(stalls);
        });
    });
    // Sleep on the stall counter (bounded) until the reader has stalled twice.
    const auto limit = deadline_clock::now() + test_limit;
    std::uint32_t seen;
    while ((seen = stalls.load()) < 2 && deadline_clock::now() < limit)
        shmkit::sync::futex_wait_until(stalls, seen, limit);
    repair(*b, 4); // from another thread than the stalled reader
    reader.join();

    BOOST_TEST(seen >= 2u);
    BOOST_TEST(uniform(s));
    BOOST_TEST(s[0] == 4);
}
