// The pool under SIGKILL: workers allocating, freeing, batching, adopting
// and recovering are killed at random points, thousands of times, while
// others go on. Afterwards no slot is lost for good, no slot ever had two
// owners, and used() equals what the live processes hold. And a free
// killed at the exact step between its exchange and its wake
// (kill_point.hpp).
#define BOOST_TEST_MODULE pool_crash
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/pool.hpp>
#include <shmkit/sync/futex.hpp>

#include <atomic>
#include <random>
#include <thread>

using namespace std::chrono_literals;
using shmkit::pool;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kill_rounds = 400; // fork and exit are several times slower there
#else
constexpr int kill_rounds = 2000;
#endif
constexpr int concurrent_workers = 3;

/// What workers and the parent share outside the pool.
struct board {
    std::atomic<std::uint32_t> started[concurrent_workers]; ///< futex words: a worker finished its first round
    std::atomic<std::uint64_t> violations;                  ///< broken promises seen by any worker
    std::atomic<std::uint64_t> rounds;                      ///< operation rounds completed, all workers
    char first_violation[256];
};

void report(board* b, const std::string& what)
{
    if (b->violations.fetch_add(1) == 0) std::snprintf(b->first_violation, sizeof b->first_violation, "%s", what.c_str());
}

/// A slot this worker owns must hold its mark and name it as owner.
void verify_owned(pool<std::int64_t>& p, std::size_t i, std::int64_t mark, board* b, const char* where)
{
    try {
        if (p.get(i) != mark) report(b, std::string(where) + ": slot value changed under its owner");
        if (p.owner(i) != ::getpid()) report(b, std::string(where) + ": owner(i) is not the allocator");
    } catch (const std::exception& e) {
        report(b, std::string(where) + ": owned slot not allocated any more: " + e.what());
    }
}

/// One worker: a random mix of every pool operation, forever (until killed).
int work(const std::string& path, board* b, int w)
{
    shmkit::pool_options opt;
    opt.auto_recover = true; // recovery of dead workers' slots runs beside the kills
    pool<std::int64_t> p(shmkit::open_only, path, opt);
    const std::int64_t mark = ::getpid();
    std::mt19937 rng(static_cast<unsigned>(mark));
    std::vector<std::size_t> held; // slots kept across rounds: left behind when killed
    for (std::uint64_t round = 0;; ++round) {
        switch (rng() % 7) {
        case 0: { // alloc / set / verify / free
            if (auto i = p.alloc(2s)) {
                p.set(*i, mark);
                verify_owned(p, *i, mark, b, "alloc");
                if (!p.free(*i)) report(b, "free of an owned slot returned false");
            }
            break;
        }
        case 1: { // all-or-nothing batch
            if (auto v = p.alloc_n(3, 2s)) {
                for (auto i : *v) p.set(i, mark);
                for (auto i : *v) verify_owned(p, i, mark, b, "alloc_n");
                if (p.free_n(*v) != 3) report(b, "free_n of 3 owned slots did not free 3");
            }
            break;
        }
        case 2: p.recover_stale(); break;
        case 3: { // adopt one's own slot (a no-op transfer) and a guard
            if (auto g = p.try_alloc_guard()) {
                p.set(*g, mark);
                if (!p.adopt(*g)) report(b, "adopt of an owned slot failed");
                verify_owned(p, *g, mark, b, "adopt");
            }
            break;
        }
        case 4: // keep a slot across rounds
            if (held.size() < 2)
                if (auto i = p.try_alloc_set(mark)) held.push_back(*i);
            break;
        case 5: // give one back
            if (!held.empty()) {
                verify_owned(p, held.back(), mark, b, "held");
                if (!p.free(held.back())) report(b, "free of a held slot returned false");
                held.pop_back();
            }
            break;
        case 6:
            for (auto i : held) verify_owned(p, i, mark, b, "held");
            break;
        }
        b->rounds.fetch_add(1, std::memory_order_relaxed);
        if (round == 0) {
            b->started[w].store(1);
            shmkit::sync::futex_wake(b->started[w]);
        }
    }
}

/// Waits (futex, bounded) until worker w has completed a round.
bool wait_started(board* b, int w)
{
    const auto deadline = shmkit::deadline_clock::now() + 20s;
    while (b->started[w].load() == 0)
        if (shmkit::sync::futex_wait_until(b->started[w], 0, deadline) == shmkit::sync::wait_result::timed_out)
            return b->started[w].load() != 0;
    return true;
}

} // namespace

BOOST_AUTO_TEST_CASE(workers_killed_at_random_points_lose_no_slot_and_share_none)
{
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    pool<std::int64_t> p(shmkit::create_only, path, 16);
    board* b = test::shared_scratch<board>();
    // Slots the parent holds throughout: nobody may recover or reuse them.
    std::vector<std::size_t> mine;
    for (int k = 0; k < 3; ++k) mine.push_back(*p.alloc_set(-1));

    std::mt19937 rng(12345);
    std::unique_ptr<test::child> workers[concurrent_workers];
    auto spawn = [&](int w) {
        b->started[w].store(0);
        workers[w] = std::make_unique<test::child>([&, w] { return work(path, b, w); });
    };
    for (int w = 0; w < concurrent_workers; ++w) spawn(w);
    int killed_running = 0;
    for (int k = 0; k < kill_rounds && b->violations.load() == 0; ++k) {
        const int w = k % concurrent_workers;
        BOOST_REQUIRE(wait_started(b, w)); // a worker that never gets going is a failure
        // Where the kill lands is random; nothing waits on this sleep.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
        workers[w]->kill();
        killed_running += workers[w]->wait() == 128 + SIGKILL;
        spawn(w);
    }
    for (auto& wk : workers) wk.reset(); // kills and reaps the last ones

    BOOST_TEST(b->violations.load() == 0u, "first violation: " << b->first_violation);
    BOOST_TEST(killed_running == kill_rounds);
    // Every dead worker's slot comes back; the parent's stay.
    p.recover_stale();
    BOOST_TEST(p.used() == mine.size());
    for (auto i : mine) {
        BOOST_TEST(p.get(i) == -1);
        BOOST_TEST(p.owner(i) == ::getpid());
    }
    BOOST_TEST(p.allocated_slots() == mine);
    // Nothing leaked: every other slot can be allocated again.
    std::size_t more = 0;
    while (p.try_alloc()) ++more;
    BOOST_TEST(more == p.capacity() - mine.size());
    const auto st = p.stats();
    BOOST_TEST(st.recoveries > 0u);
    BOOST_TEST(st.waiters == 0u);
    BOOST_TEST_MESSAGE("kills " << killed_running << ", rounds " << b->rounds.load() << ", recoveries "
                                << st.recoveries << ", waits " << st.waits);
}

BOOST_AUTO_TEST_CASE(recoverers_killed_half_way_leave_the_rest_to_the_next)
{
    // Dead owners hold every slot of a large pool; recoverers are killed in
    // the middle of their scan; the last recovery leaves exactly the slots
    // of the live holder (this process).
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    constexpr std::size_t cap = 1 << 16;
    pool<std::int64_t> p(shmkit::create_only, path, cap);
    const std::size_t live = 10;
    for (std::size_t k = 0; k < live; ++k) p.alloc_set(7);
    for (int d = 0; d < 4; ++d) {
        test::child filler([&] {
            pool<std::int64_t> q(shmkit::open_only, path);
            while (q.try_alloc_set(d)) {
            }
            return 0;
        });
        BOOST_REQUIRE(filler.wait() == 0);
        BOOST_REQUIRE(p.used() == cap);
        std::mt19937 rng(d);
        for (int k = 0; k < 20; ++k) {
            test::pipe_pair go;
            test::child rec([&] {
                pool<std::int64_t> q(shmkit::open_only, path);
                go.send();
                for (;;) q.recover_stale();
                return 0;
            });
            BOOST_REQUIRE(go.receive(30s) == 'x');
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
            rec.kill();
            rec.wait();
        }
        p.recover_stale();
        BOOST_TEST(p.used() == live);
    }
}

BOOST_AUTO_TEST_CASE(adopters_killed_after_the_handoff_leave_nothing_behind)
{
    // A producer allocates, hands the slot over, and dies; consumers adopt
    // and are killed at random points; every slot ends up free or held by
    // a live process, never by a dead one after recovery.
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    pool<std::int64_t> p(shmkit::create_only, path, 8);
    std::mt19937 rng(7);
    for (int k = 0; k < kill_rounds / 10; ++k) {
        test::pipe_pair handoff;
        test::child producer([&] {
            pool<std::int64_t> q(shmkit::open_only, path);
            auto i = q.alloc_set(k, 2s);
            if (!i) return 1;
            char c = static_cast<char>(*i);
            return ::write(handoff.wr, &c, 1) == 1 ? 0 : 2;
        });
        BOOST_REQUIRE(producer.wait() == 0); // the allocator is dead now
        test::pipe_pair adopting;
        test::child consumer([&] {
            pool<std::int64_t> q(shmkit::open_only, path);
            char c = 0;
            if (::read(handoff.rd, &c, 1) != 1) return 1;
            const auto i = static_cast<std::size_t>(c);
            adopting.send(); // the kill below lands in the adopt loop, not before the pool is open
            for (;;) q.adopt(i); // may lose the race against recovery: then it is free
        });
        BOOST_REQUIRE(adopting.receive(30s) == 'x');
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        if (k % 2) p.recover_stale(); // races the adopt
        consumer.kill();
        consumer.wait();
        p.recover_stale();
        BOOST_TEST_REQUIRE(p.used() == 0u);
    }
}

// ---- Killed at an exact step --------------------------------------------------------

namespace {

/// Slot i's owner word in this handle's mapping (pool_base.hpp: the owners
/// follow the control and counters lines and one line per attach entry).
const void* owner_word(const pool<std::int64_t>& p, std::size_t i)
{
    using namespace shmkit::detail;
    const shmkit::segment& s = p.get_segment();
    const std::size_t owners = sizeof(pool_control) + sizeof(pool_counters) + s.attach_capacity() * sizeof(pool_handle_line);
    return static_cast<const char*>(s.data()) + owners + i * sizeof(std::uint64_t);
}

} // namespace

BOOST_AUTO_TEST_SUITE(killed_at_an_exact_step, *boost::unit_test::precondition(test::write_watches_available()))

// free(): the owner word's exchange, then the wake. A freer killed between
// the two leaves the slot free and a sleeper asleep: its poll finds it.
BOOST_AUTO_TEST_CASE(a_free_killed_between_its_exchange_and_the_wake_leaves_the_slot_to_a_sleepers_poll)
{
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    pool<std::int64_t> p(shmkit::create_only, path, 1);
    test::pipe_pair allocated, go;
    test::child freer([&] {
        pool<std::int64_t> mine(shmkit::open_only, path);
        if (mine.try_alloc() != std::optional<std::size_t>(0)) return 3;
        allocated.send();
        if (go.receive(std::chrono::seconds(30)) != 'x') return 4;
        test::die_after_write(owner_word(mine, 0), sizeof(std::uint64_t));
        mine.free(0); // dies before it looks at the sleepers bit
        return 0;
    });
    BOOST_REQUIRE_EQUAL(allocated.receive(30s), 'x');
    std::atomic<pid_t> tid{0};
    std::atomic<long> got{-1};
    std::thread waiter([&] {
        tid = test::this_thread_id();
        const auto i = p.alloc(30s);
        got = i ? static_cast<long>(*i) : -2;
    });
    BOOST_REQUIRE(test::until([&] { return tid.load() != 0; }, 10s));
    // Asleep on the wake word (the first line of the pool), its bit set.
    BOOST_REQUIRE(test::until_futex_waiting(tid, p.get_segment().data(), sizeof(shmkit::detail::pool_control), 10s));
    go.send();
    BOOST_TEST(freer.wait(30s) == test::killed_after_write);
    waiter.join();
    BOOST_TEST(got.load() == 0); // woken by its poll, not by the dead freer
    BOOST_TEST(p.owner(0) == ::getpid());
}

BOOST_AUTO_TEST_SUITE_END()
