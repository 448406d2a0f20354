// shmkit::share (native backend) with processes SIGKILLed at random points:
// while holding lock_ex, while holding lock_sh, and in the middle of
// stores of every kind (inline, into a value segment, needing a new value
// segment, going back inline); and stores killed at the exact steps of a
// new value segment's life (kill_point.hpp). After each kill the lock is
// available again, the value is one whole value (the last committed one or
// the one being stored), and no value segment is left without a slot
// naming it.
#define BOOST_TEST_MODULE share_crash
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/share.hpp>

#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <random>
#include <thread>

namespace utf = boost::unit_test;

namespace {

/// A share created fresh for the test, removed on scope exit.
struct fresh_share {
    key_t key = test::unique_key(0x5c);
    fresh_share() { shmkit::share::remove(key); }
    ~fresh_share() { shmkit::share::remove(key); }
    shmkit::share open() const
    {
        shmkit::share_options o;
        o.create = true;
        return shmkit::share(key, o);
    }
};

/// Names in /dev/shm of the value segments of share `key`.
std::size_t value_segment_names(key_t key)
{
    const std::string prefix = shmkit::share::native_name(key) + "~";
    std::size_t n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(d))
            if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) ++n;
        ::closedir(d);
    }
    return n;
}

// Values of the store loop: value `seq` has size sizes[seq % 5] and bytes
// that depend on seq and their position, with seq in its first 8 bytes
// when it has 8. The sizes take each slot (even and odd seq) through
// inline, a value segment, a bigger one (a new segment), and back inline.
constexpr std::size_t sizes[] = {16, 100000, 0, 2000000, 65521};
constexpr std::size_t n_sizes = sizeof sizes / sizeof sizes[0];

std::string make_value(std::uint64_t seq)
{
    std::string v(sizes[seq % n_sizes], '\0');
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>((seq * 131 + i * 7) & 0xff);
    if (v.size() >= 8) std::memcpy(&v[0], &seq, 8);
    return v;
}

/// The seq of a whole value of the loop, or -1 if it is not one. An empty
/// value names no seq (-2): the one a share or round begins with, or that
/// of any seq with sizes[seq % n_sizes] == 0.
long long seq_of(const std::string& v)
{
    if (v.empty()) return -2;
    if (v.size() < 8) return -1;
    std::uint64_t seq;
    std::memcpy(&seq, v.data(), 8);
    return make_value(seq) == v ? static_cast<long long>(seq) : -1;
}

/// Whether `v` is what a share holds after a writer of the loop was killed:
/// the value of `done`, the last store it reported done (-1: none, the
/// empty value it began with), or of the next one (committed, killed before
/// it could report).
bool last_or_next(const std::string& v, long long done)
{
    return v == (done < 0 ? std::string() : make_value(static_cast<std::uint64_t>(done))) ||
           v == make_value(static_cast<std::uint64_t>(done + 1));
}

} // namespace

BOOST_AUTO_TEST_SUITE(dead_lock_holders)

BOOST_AUTO_TEST_CASE(a_process_killed_holding_lock_ex_is_taken_over_by_blocking_and_non_blocking_lockers,
                     *utf::timeout(300))
{
    fresh_share f;
    shmkit::share s = f.open();
    s.store("before");
    for (int round = 0; round < 40; ++round) {
        test::pipe_pair ready;
        test::child holder([&]() -> int {
            shmkit::share mine = f.open();
            mine.lock(shmkit::share::lock_ex);
            mine.store("held " + std::to_string(round));
            ready.send();
            for (;;) ::pause();
        });
        BOOST_REQUIRE_EQUAL(ready.receive(std::chrono::seconds(30)), 'x');
        holder.kill();
        BOOST_REQUIRE_EQUAL(holder.wait(), 128 + SIGKILL);
        // A non-blocking attempt probes the dead holder at once.
        if (round % 3 == 0) BOOST_REQUIRE(s.lock(shmkit::share::lock_ex | shmkit::share::lock_nb));
        else if (round % 3 == 1) BOOST_REQUIRE(s.lock(shmkit::share::lock_sh | shmkit::share::lock_nb));
        else BOOST_REQUIRE(s.try_lock_for(std::chrono::seconds(10)));
        // The holder's store under the lock was complete: it is the value.
        BOOST_TEST(s.fetch() == "held " + std::to_string(round));
        s.unlock();
    }
    BOOST_TEST(s.stats().lock_recoveries >= 40u);
}

BOOST_AUTO_TEST_CASE(a_process_killed_holding_lock_sh_does_not_keep_writers_out, *utf::timeout(300))
{
    fresh_share f;
    shmkit::share s = f.open();
    for (int round = 0; round < 40; ++round) {
        test::pipe_pair ready;
        test::child holder([&]() -> int {
            shmkit::share mine = f.open();
            mine.lock(shmkit::share::lock_sh);
            ready.send();
            for (;;) ::pause();
        });
        BOOST_REQUIRE_EQUAL(ready.receive(std::chrono::seconds(30)), 'x');
        holder.kill();
        BOOST_REQUIRE_EQUAL(holder.wait(), 128 + SIGKILL);
        if (round % 2 == 0) BOOST_REQUIRE(s.lock(shmkit::share::lock_ex | shmkit::share::lock_nb));
        else BOOST_REQUIRE(s.try_lock_for(std::chrono::seconds(10)));
        s.store(std::to_string(round));
        s.unlock();
        BOOST_TEST(s.fetch() == std::to_string(round));
    }
}

BOOST_AUTO_TEST_CASE(readers_killed_in_the_middle_of_fetches_never_block_a_store, *utf::timeout(300))
{
    fresh_share f;
    shmkit::share s = f.open();
    s.store(std::string(300000, 'r'));
    std::mt19937 rng(7);
    for (int round = 0; round < 60; ++round) {
        test::pipe_pair ready;
        test::child reader([&]() -> int {
            shmkit::share mine = f.open();
            std::string out;
            mine.fetch(out);
            ready.send();
            for (;;) mine.fetch(out);
        });
        BOOST_REQUIRE_EQUAL(ready.receive(std::chrono::seconds(30)), 'x');
        // Where the kill lands is random; nothing waits on this sleep.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
        reader.kill();
        BOOST_REQUIRE_EQUAL(reader.wait(), 128 + SIGKILL);
        BOOST_REQUIRE(s.try_lock_for(std::chrono::seconds(10)));
        s.store(std::string(300000 + round, 'r'));
        s.unlock();
    }
    BOOST_TEST(s.fetch().size() == 300000u + 59);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(killed_stores)

BOOST_AUTO_TEST_CASE(a_store_killed_at_any_point_leaves_the_old_value_or_the_new_one_whole, *utf::timeout(600))
{
    fresh_share f;
    shmkit::share s = f.open();
    // The seq of the last store a writer reported done (-1: none yet, the
    // value is the fresh share's empty one).
    auto* done = test::shared_scratch<std::atomic<long long>>();
    done->store(-1);
    std::mt19937 rng(11);
    for (int round = 0; round < 300; ++round) {
        const long long from = done->load() + 1;
        // The writer says it is ready after `stores` stores (0: before the
        // first), so that most rounds kill it after some progress and
        // some during its first store, whatever the speed of the build.
        const unsigned stores = rng() % 4;
        test::pipe_pair ready;
        test::child writer([&]() -> int {
            shmkit::share mine = f.open();
            if (stores == 0) ready.send();
            for (long long seq = from;; ++seq) {
                mine.store(make_value(static_cast<std::uint64_t>(seq)));
                done->store(seq);
                if (seq - from + 1 == stores) ready.send();
            }
        });
        BOOST_REQUIRE_EQUAL(ready.receive(std::chrono::seconds(30)), 'x');
        // Where the kill lands is random; nothing waits on this sleep.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 8000));
        writer.kill();
        BOOST_REQUIRE_EQUAL(writer.wait(), 128 + SIGKILL);

        // Whole, and either the last store reported done or the next one
        // (committed, killed before it could report).
        const long long d = done->load();
        const std::string v = s.fetch();
        BOOST_REQUIRE_MESSAGE(last_or_next(v, d), "round " << round << ": " << v.size() << " bytes, seq "
                                                           << seq_of(v) << ", last done " << d);
        if (v == make_value(static_cast<std::uint64_t>(d + 1))) done->store(d + 1); // committed, not reported
        // The share counted every store committed so far, once (its version
        // is 1 + the stores): every store a writer reported made it count,
        // and none killed half-way counted.
        BOOST_TEST(s.version() == static_cast<std::uint64_t>(done->load() + 2),
                   "round " << round << " (from seq " << from << ", " << stores << " stores before the kill)");
    }
    // The next store repairs whatever names the last kill left.
    s.store("after");
    BOOST_TEST(s.fetch() == "after");
    BOOST_TEST(value_segment_names(f.key) <= 2u);
    s.store(std::string(10, 'x'));
    s.store(std::string(10, 'y'));
    BOOST_TEST(value_segment_names(f.key) == 0u);
}

BOOST_AUTO_TEST_CASE(a_store_killed_while_holding_lock_ex_across_calls_keeps_its_committed_stores,
                     *utf::timeout(300))
{
    fresh_share f;
    shmkit::share s = f.open();
    auto* committed = test::shared_scratch<std::atomic<long long>>();
    std::mt19937 rng(5);
    for (int round = 0; round < 100; ++round) {
        committed->store(-1);
        test::pipe_pair ready;
        test::child writer([&]() -> int {
            shmkit::share mine = f.open();
            mine.lock(shmkit::share::lock_ex);
            ready.send();
            for (long long seq = 0;; ++seq) {
                mine.store(make_value(static_cast<std::uint64_t>(seq)));
                committed->store(seq);
            }
        });
        BOOST_REQUIRE_EQUAL(ready.receive(std::chrono::seconds(30)), 'x');
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        writer.kill();
        BOOST_REQUIRE_EQUAL(writer.wait(), 128 + SIGKILL);
        BOOST_REQUIRE(s.try_lock_for(std::chrono::seconds(10)));
        const std::string v = s.fetch();
        const long long done = committed->load();
        // Whole (not torn), and the last committed store or the next one; an
        // empty value only where one of those is empty (nothing committed
        // yet: the round's own empty value, or a seq whose value is empty).
        BOOST_REQUIRE_MESSAGE(last_or_next(v, done), "round " << round << ": " << v.size() << " bytes, seq "
                                                              << seq_of(v) << ", last committed " << done);
        s.store(""); // start each round from an empty value
        s.unlock();
    }
    // One store leaves the other slot naming the last large value (it is
    // the previous one until replaced): two small stores replace both.
    s.store("");
    s.store("");
    BOOST_TEST(value_segment_names(f.key) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Killed at an exact step -------------------------------------------------------
//
// A store that needs a new value segment records its number (pending),
// creates it unnamed, links its name, attaches it (an OFD lock), copies,
// commits, and unlinks the segment the other slot no longer needs
// (retired) after the commit. Killed before the link, before the attach
// and before the unlink, the share shows the old value or the new one,
// whole, and the next store leaves no name that no slot holds.

namespace {

/// A store of `value` in a child killed at its first call of system call
/// `nr` with arguments `args`.
void store_killed_before(const fresh_share& f, const std::string& value, long nr,
                         std::initializer_list<test::syscall_arg> args = {})
{
    test::child writer([&] {
        shmkit::share mine = f.open();
        test::die_before_syscall(nr, args);
        mine.store(value);
        return 0;
    });
    BOOST_TEST_REQUIRE(writer.wait(std::chrono::seconds(30)) == test::killed_before_syscall);
}

/// Two inline stores replace both slots: every value segment name goes.
void expect_no_name_left_after_two_small_stores(shmkit::share& s)
{
    s.store("small 1");
    s.store("small 2");
    BOOST_TEST(s.fetch() == "small 2");
    BOOST_TEST(value_segment_names(s.key()) == 0u);
}

} // namespace

BOOST_AUTO_TEST_SUITE(killed_at_an_exact_step)

BOOST_AUTO_TEST_CASE(a_store_killed_before_naming_its_value_segment_leaves_the_old_value, *utf::timeout(60))
{
    fresh_share f;
    shmkit::share s = f.open();
    s.store("old");
    store_killed_before(f, make_value(3), __NR_linkat); // 2 MB: a value segment
    BOOST_TEST(s.fetch() == "old");
    BOOST_TEST(value_segment_names(f.key) == 0u); // the unnamed file went with the writer
    BOOST_TEST(s.version() == 2u);
    s.store(make_value(3));
    BOOST_TEST(s.fetch() == make_value(3));
    expect_no_name_left_after_two_small_stores(s);
}

BOOST_AUTO_TEST_CASE(a_store_killed_between_naming_its_value_segment_and_committing_leaves_a_name_the_next_store_unlinks,
                     *utf::timeout(60))
{
    fresh_share f;
    shmkit::share s = f.open();
    s.store("old");
    // The new segment's attach takes the first OFD lock after its link.
    store_killed_before(f, make_value(3), __NR_fcntl, {{1, F_OFD_SETLK}});
    BOOST_TEST(s.fetch() == "old");
    BOOST_TEST(value_segment_names(f.key) == 1u); // named, pending
    BOOST_TEST(s.version() == 2u);
    s.store("next"); // unlinks the pending name
    BOOST_TEST(value_segment_names(f.key) == 0u);
    BOOST_TEST(s.stats().repairs == 1u);
    expect_no_name_left_after_two_small_stores(s);
}

BOOST_AUTO_TEST_CASE(a_store_killed_between_committing_and_unlinking_the_retired_segment_shows_the_new_value,
                     *utf::timeout(60))
{
    fresh_share f;
    shmkit::share s = f.open();
    s.store(make_value(1)); // 100 000 bytes: value segment 1, slot 1
    s.store(make_value(3)); // 2 MB: value segment 2, slot 0
    BOOST_REQUIRE(value_segment_names(f.key) == 2u);
    // Inline into slot 1, whose segment 1 is retired and unlinked after the commit.
    store_killed_before(f, "new", __NR_unlink);
    BOOST_TEST(s.fetch() == "new");
    BOOST_TEST(s.version() == 4u);
    BOOST_TEST(value_segment_names(f.key) == 2u); // segment 1 still named
    s.store("next"); // the next writer unlinks it, and retires segment 2 of the slot it takes
    BOOST_TEST(value_segment_names(f.key) == 0u);
    expect_no_name_left_after_two_small_stores(s);
}

BOOST_AUTO_TEST_SUITE_END()
