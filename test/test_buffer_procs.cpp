// buffer<T> across processes: exact sums under contention, slices never
// torn by bulk writes, and processes killed while holding the lock or in
// the middle of a bulk write: at random moments, and at exact steps of
// the crash windows the code describes (kill_point.hpp).
#define BOOST_TEST_MODULE buffer_processes
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/buffer.hpp>

#include <algorithm>
#include <atomic>
#include <random>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(two_processes_increment_exactly)
{
    test::scratch_dir dir;
    const std::string path = dir / "counters";
    shmkit::buffer_i64 b(shmkit::create_only, path, 64);
    constexpr int n = 100000;
    test::pipe_pair go;
    std::vector<std::unique_ptr<test::child>> kids;
    for (int w = 0; w < 2; ++w)
        kids.push_back(std::make_unique<test::child>([&, w] {
            shmkit::buffer_i64 mine(shmkit::open_only, path);
            ::close(go.wr);
            go.receive();
            for (int i = 0; i < n; ++i) {
                mine.incr(0);           // one shared element
                mine.add(8 + w * 8, 2); // one element each
            }
            return 0;
        }));
    ::close(go.wr);
    go.wr = -1;
    for (auto& k : kids) BOOST_TEST(k->wait() == 0);
    BOOST_TEST(b.get(0) == 2 * n);
    BOOST_TEST(b.get(8) == 2 * n);
    BOOST_TEST(b.get(16) == 2 * n);
}

BOOST_AUTO_TEST_CASE(slices_never_see_a_torn_bulk_write)
{
    constexpr std::size_t cap = 4096;
    auto b = shmkit::buffer_u32::anonymous(cap);
    auto* torn = test::shared_scratch<std::atomic<int>>();
    auto* stop = test::shared_scratch<std::atomic<int>>();
    auto* slices = test::shared_scratch<std::atomic<long>>();
    test::child writer([&] {
        std::vector<std::uint32_t> v(cap);
        for (std::uint32_t k = 1; stop->load() == 0; ++k) {
            if (k % 2) {
                b.fill(k);
            } else {
                std::fill(v.begin(), v.end(), k);
                b.set_slice(0, v);
            }
        }
        return 0;
    });
    std::vector<std::unique_ptr<test::child>> readers;
    for (int r = 0; r < 2; ++r)
        readers.push_back(std::make_unique<test::child>([&] {
            for (int i = 0; i < 3000; ++i) {
                const auto s = b.slice(0, cap);
                if (std::count(s.begin(), s.end(), s[0]) != static_cast<long>(cap)) torn->fetch_add(1);
                const std::string raw = b.get_raw(0, 64);
                if (std::memcmp(raw.data(), raw.data() + 4, 60) != 0) torn->fetch_add(1);
                slices->fetch_add(1);
            }
            return 0;
        }));
    for (auto& r : readers) BOOST_TEST(r->wait() == 0);
    stop->store(1);
    BOOST_TEST(writer.wait() == 0);
    BOOST_TEST(torn->load() == 0);
    BOOST_TEST(slices->load() == 6000);
}

// ---------------------------------------------------------------------------
// Kill loop. Workers of three kinds run against one buffer:
//   bulk:   fill() with ever larger values (a large buffer: each fill takes a while)
//   writer: lock(), linger, unlock()
//   reader: lock_shared(), linger, unlock_shared()
// plus two slicers that never stop. The parent kills bulk writers in the
// middle of fill(), and writers and readers while they hold the lock, and
// after every kill waits until a slicer has completed a new slice: nobody
// stays blocked by the dead.
// ---------------------------------------------------------------------------

namespace {

constexpr std::size_t big = 1 << 18;
constexpr int kills_required = 120;

enum kind : int { bulk = 0, writer = 1, reader = 2, kinds = 3 };

struct board {
    std::atomic<int> state[kinds]; // 1 while the worker of that kind is inside
    std::atomic<std::uint32_t> next_value;
    std::atomic<long> slices;
    std::atomic<int> bad_shape;
    std::atomic<int> stop;
};

void linger()
{
    for (int i = 0; i < 2000; ++i) shmkit::sync::cpu_relax();
}

int work(const std::string& path, board* b, int k)
{
    shmkit::buffer_u32 buf(shmkit::open_only, path);
    while (b->stop.load() == 0) {
        switch (k) {
        case bulk: {
            // Under our own write lock (fill is reentrant there), so that
            // "inside" means "writing", not "waiting for the lock".
            buf.lock();
            const std::uint32_t v = b->next_value.fetch_add(1) + 1;
            b->state[k].store(1);
            buf.fill(v);
            b->state[k].store(0);
            buf.unlock();
            break;
        }
        case writer:
            buf.lock();
            b->state[k].store(1);
            linger();
            b->state[k].store(0);
            buf.unlock();
            break;
        case reader:
            buf.lock_shared();
            b->state[k].store(1);
            linger();
            b->state[k].store(0);
            buf.unlock_shared();
            break;
        }
        // A kind that met its quota is no longer killed and lives through
        // the rest of the loop, which may outlast the alarm.
        test::child::made_progress();
    }
    return 0;
}

/// Fills write increasing values from index 0 up, so any snapshot, even
/// with fills cut short by a death, is non-increasing from left to right.
/// A slice that is not was torn by a live writer.
int slicer(const std::string& path, board* b)
{
    shmkit::buffer_u32 buf(shmkit::open_only, path);
    std::vector<std::uint32_t> s(big);
    while (b->stop.load() == 0) {
        buf.slice(0, boost::span<std::uint32_t>(s));
        test::child::made_progress();
        for (std::size_t i = 1; i < big; ++i)
            if (s[i] > s[i - 1]) {
                b->bad_shape.fetch_add(1);
                break;
            }
        b->slices.fetch_add(1);
    }
    return 0;
}

} // namespace

BOOST_AUTO_TEST_CASE(kill_loop_lock_holders_and_bulk_writers)
{
    test::scratch_dir dir;
    const std::string path = dir / "big";
    shmkit::buffer_u32 buf(shmkit::create_only, path, big);
    board* b = test::shared_scratch<board>();
    std::unique_ptr<test::child> workers[kinds];
    const auto spawn = [&](int k) { workers[k] = std::make_unique<test::child>([&, k] { return work(path, b, k); }); };
    for (int k = 0; k < kinds; ++k) spawn(k);
    std::vector<std::unique_ptr<test::child>> slicers;
    for (int i = 0; i < 2; ++i)
        slicers.push_back(std::make_unique<test::child>([&] { return slicer(path, b); }));

    int kills[kinds] = {0, 0, 0};
    int total = 0, stuck = 0;
    // Kills go on until enough of each kind were confirmed inside: whether
    // a kill lands there depends on scheduling, so the quota is counted.
    const int quota = kills_required / kinds / 2;
    const auto short_kind = [&] {
        for (int k = 0; k < kinds; ++k)
            if (kills[k] < quota) return k;
        return -1;
    };
    const auto give_up = std::chrono::steady_clock::now() + 240s;
    while ((total < kills_required || short_kind() >= 0) && std::chrono::steady_clock::now() < give_up) {
        const int k = total < kills_required ? total % kinds : short_kind();
        // Wait (bounded) until that worker is inside, then kill it there.
        for (int spin = 0; spin < 200000 && b->state[k].load() == 0; ++spin) ::sched_yield();
        const bool inside = b->state[k].load() != 0;
        workers[k]->kill();
        workers[k]->wait();
        b->state[k].store(0);
        kills[k] += inside;
        ++total;
        // Nobody stays blocked: a slice completes after the death.
        const long before = b->slices.load();
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (b->slices.load() <= before + 1 && std::chrono::steady_clock::now() < deadline) ::sched_yield();
        if (b->slices.load() <= before + 1) ++stuck;
        spawn(k);
    }
    b->stop.store(1);
    for (auto& w : workers) BOOST_TEST(w->wait(30s) == 0);
    for (auto& s : slicers) BOOST_TEST(s->wait(30s) == 0);

    BOOST_TEST(stuck == 0);
    BOOST_TEST(b->bad_shape.load() == 0);
    BOOST_TEST(total >= kills_required);
    BOOST_TEST(kills[bulk] >= quota);
    BOOST_TEST(kills[writer] >= quota);
    BOOST_TEST(kills[reader] >= quota);
    // The lock works, and deaths were recovered and counted.
    BOOST_TEST(buf.try_lock_for(5s));
    buf.unlock();
    const auto st = buf.stats();
    BOOST_TEST(st.lock_recoveries > 0u);
    // Most kills of a bulk writer land inside fill(); each such death is
    // closed exactly once (never for a live writer).
    BOOST_TEST(st.bulk_recoveries >= static_cast<std::uint64_t>(kills[bulk]) / 2);
    BOOST_TEST(st.bulk_recoveries <= static_cast<std::uint64_t>(kills[bulk]));
    buf.fill(7);
    const auto s = buf.slice(0, big);
    BOOST_TEST(std::count(s.begin(), s.end(), 7u) == static_cast<long>(big));
    BOOST_TEST_MESSAGE("kills: in fill " << kills[bulk] << ", holding write " << kills[writer] << ", holding read "
                                         << kills[reader] << "; lock recoveries " << st.lock_recoveries
                                         << ", bulk recoveries " << st.bulk_recoveries);
}

BOOST_AUTO_TEST_CASE(a_lone_reader_recovers_a_bulk_writer_killed_mid_write)
{
    // Nobody else will ever take the write lock: the reader that finds the
    // sequence odd must recover the dead writer by itself.
    test::scratch_dir dir;
    const std::string path = dir / "lone";
    shmkit::buffer_u32 buf(shmkit::create_only, path, big);
    const auto& seq = static_cast<const shmkit::detail::buffer_control*>(buf.get_segment().data())->seq;
    std::uint32_t last = 0;
    int odd_kills = 0;
    for (int round = 0; round < 5; ++round) {
        test::child writer([&] {
            shmkit::buffer_u32 mine(shmkit::open_only, path);
            for (std::uint32_t v = 1;; ++v) mine.fill(v);
            return 0;
        });
        // Wait (bounded) until a fill is in progress, then kill the writer there.
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while ((seq.sequence() & 1) == 0 && std::chrono::steady_clock::now() < deadline) ::sched_yield();
        writer.kill();
        writer.wait();
        odd_kills += seq.sequence() & 1;
        // The slice must not wait forever: bounded in a child of its own.
        test::child reader([&] { return buf.slice(0, 16)[0] > 0 ? 0 : 1; });
        BOOST_TEST_REQUIRE(reader.wait(30s) == 0);
        last = buf.get(0);
    }
    BOOST_TEST(odd_kills > 0);
    BOOST_TEST(buf.stats().bulk_recoveries == static_cast<std::uint64_t>(odd_kills));
    BOOST_TEST(last > 0u);
}

namespace {

/// A child that opens the buffer at `path`, takes its write lock and opens
/// a bulk write (the seqlock odd), says so, and waits to be killed: what a
/// writer killed in the middle of fill() leaves, at a known moment.
struct writer_killed_mid_write {
    explicit writer_killed_mid_write(const std::string& path)
    {
        test::pipe_pair ready;
        test::child writer([&] {
            shmkit::buffer_u32 mine(shmkit::open_only, path);
            mine.lock();
            static_cast<shmkit::detail::buffer_control*>(mine.get_segment().data())->seq.write_begin();
            mine.set(0, 99); // part of the write
            ready.send();
            for (;;) ::pause();
            return 0;
        });
        BOOST_TEST_REQUIRE(ready.receive(30s) == 'x');
        writer.kill();
        BOOST_TEST_REQUIRE(writer.wait() == 128 + SIGKILL);
    }
};

std::uint32_t sequence_of(const shmkit::buffer_u32& b)
{
    return static_cast<const shmkit::detail::buffer_control*>(b.get_segment().data())->seq.sequence();
}

/// A 64-element buffer whose last writer was killed in the middle of a
/// bulk write (element 0 written: 99).
struct after_a_killed_bulk_write {
    test::scratch_dir dir;
    const std::string path = dir / "buffer";
    shmkit::buffer_u32 buf{shmkit::create_only, path, 64};
    after_a_killed_bulk_write() { writer_killed_mid_write{path}; }
};

/// The next writer is told recovered(), and once it has unlocked nobody is.
void expect_told_until_a_writer_unlocks(shmkit::buffer_u32& buf)
{
    buf.lock();
    BOOST_TEST(buf.recovered());
    buf.unlock();
    buf.lock();
    BOOST_TEST(!buf.recovered());
    buf.unlock();
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_shared_holder_closes_a_dead_writers_bulk_write_so_lock_free_readers_go_on, after_a_killed_bulk_write)
{
    BOOST_REQUIRE(sequence_of(buf) & 1u);
    buf.lock_shared(); // recovers the dead writer, and closes its write
    BOOST_TEST((sequence_of(buf) & 1u) == 0u);
    BOOST_TEST(buf.recovered());
    // While the shared lock is held no probe can take the write lock: a
    // lock-free slice elsewhere must not need one.
    test::child reader([&] { return buf.slice(0, 4)[0] == 99u ? 0 : 1; });
    BOOST_TEST(reader.wait(30s) == 0);
    buf.unlock_shared();
    BOOST_TEST(buf.stats().bulk_recoveries == 1u);
    // Told to the next writer too, until it releases the lock.
    expect_told_until_a_writer_unlocks(buf);
}

BOOST_FIXTURE_TEST_CASE(a_write_closed_by_a_stalled_reader_is_reported_to_writers_until_one_unlocks, after_a_killed_bulk_write)
{
    // A lock-free reader stalls, recovers the writer with a probe of its
    // own, closes the write and goes on.
    BOOST_TEST(buf.slice(0, 4)[0] == 99u);
    BOOST_TEST((sequence_of(buf) & 1u) == 0u);
    // A bulk write that takes the lock by itself repairs nothing of it.
    test::child other([&] {
        shmkit::buffer_u32 mine(shmkit::open_only, path);
        mine.set_slice(60, std::vector<std::uint32_t>{1, 2, 3, 4});
        return 0;
    });
    BOOST_TEST(other.wait(30s) == 0);
    buf.lock();
    BOOST_TEST(buf.recovered()); // half-written data: this writer is told
    buf.unlock();
    buf.lock_shared();
    BOOST_TEST(!buf.recovered()); // repaired, as far as the lock knows
    buf.unlock_shared();
    BOOST_TEST(buf.stats().bulk_recoveries == 1u);
}

// ---- Killed at an exact step -------------------------------------------------

namespace {

shmkit::detail::buffer_control& control_of(shmkit::buffer_u32& b)
{
    return *static_cast<shmkit::detail::buffer_control*>(b.get_segment().data());
}

shmkit::detail::buffer_counters& counters_of(shmkit::buffer_u32& b)
{
    return *reinterpret_cast<shmkit::detail::buffer_counters*>(static_cast<char*>(b.get_segment().data()) +
                                                                sizeof(shmkit::detail::buffer_control));
}

} // namespace

BOOST_AUTO_TEST_SUITE(killed_at_an_exact_step, *utf::precondition(test::write_watches_available()))

BOOST_AUTO_TEST_CASE(a_fill_killed_right_after_opening_its_write_is_closed_by_a_lone_reader_with_the_old_values)
{
    test::scratch_dir dir;
    const std::string path = dir / "fill";
    shmkit::buffer_u32 buf(shmkit::create_only, path, 64);
    buf.fill(3);
    test::child writer([&] {
        shmkit::buffer_u32 mine(shmkit::open_only, path);
        // The sequence is the seqlock's first word: write_begin's store.
        test::die_after_write(&control_of(mine).seq, sizeof(std::uint32_t));
        mine.fill(5);
        return 0;
    });
    BOOST_TEST_REQUIRE(writer.wait(30s) == test::killed_after_write);
    BOOST_TEST_REQUIRE((sequence_of(buf) & 1u) == 1u); // the write is open, nothing written yet
    const auto s = buf.slice(0, 64);                    // stalls, recovers the writer, closes the write
    BOOST_TEST(std::count(s.begin(), s.end(), 3u) == 64);
    BOOST_TEST((sequence_of(buf) & 1u) == 0u);
    BOOST_TEST(buf.stats().bulk_recoveries == 1u);
    expect_told_until_a_writer_unlocks(buf);
}

// close_interrupted_write(): the torn mark first, then the CAS that closes
// the write. A closer killed between the two leaves the write open for the
// next one, and the mark for its holders.
BOOST_FIXTURE_TEST_CASE(a_shared_holder_killed_between_marking_the_buffer_torn_and_closing_the_write_leaves_both_to_the_next, after_a_killed_bulk_write)
{
    test::child closer([&] {
        shmkit::buffer_u32 mine(shmkit::open_only, path);
        test::die_after_write(&counters_of(mine).torn, sizeof(std::uint32_t));
        mine.lock_shared(); // recovers the dead writer, marks the buffer torn, dies before the CAS
        return 0;
    });
    BOOST_TEST_REQUIRE(closer.wait(30s) == test::killed_after_write);
    BOOST_TEST_REQUIRE((sequence_of(buf) & 1u) == 1u);
    BOOST_TEST(counters_of(buf).torn.load() == 1u);
    BOOST_TEST(buf.stats().bulk_recoveries == 0u);
    buf.lock_shared(); // beside the dead closer's shared hold: closes the write
    BOOST_TEST((sequence_of(buf) & 1u) == 0u);
    BOOST_TEST(buf.recovered());
    buf.unlock_shared();
    BOOST_TEST(buf.stats().bulk_recoveries == 1u);
    BOOST_TEST(buf.slice(0, 4)[0] == 99u);
    expect_told_until_a_writer_unlocks(buf); // the first lock() reclaims the dead reader
}

// unlock(): the torn mark is cleared while the lock is still held, so a
// writer killed between the two is recovered as a dead holder, and the
// next one is told again.
BOOST_FIXTURE_TEST_CASE(a_writer_killed_between_clearing_the_torn_mark_and_releasing_the_lock_is_reported_again, after_a_killed_bulk_write)
{
    buf.lock_shared(); // closes the write: the mark stays until a writer unlocks
    buf.unlock_shared();
    BOOST_REQUIRE(counters_of(buf).torn.load() == 1u);
    test::child writer([&] {
        shmkit::buffer_u32 mine(shmkit::open_only, path);
        mine.lock();
        if (!mine.recovered()) return 3;
        test::die_after_write(&counters_of(mine).torn, sizeof(std::uint32_t));
        mine.unlock(); // clears the mark, dies before the release
        return 0;
    });
    BOOST_TEST_REQUIRE(writer.wait(30s) == test::killed_after_write);
    BOOST_TEST(counters_of(buf).torn.load() == 0u);
    const auto before = buf.stats().lock_recoveries;
    expect_told_until_a_writer_unlocks(buf); // the first lock() takes the dead writer's lock over
    BOOST_TEST(buf.stats().lock_recoveries == before + 1);
}

BOOST_AUTO_TEST_SUITE_END()
