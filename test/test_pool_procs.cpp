// Pools across real forked processes: blocking allocs woken by frees in
// another process, timeouts, alloc_n served all-or-nothing and in turn,
// exclusive slots and exact atomic adds under contention, guards copied by
// fork(), hand-over by adopt(), recovery of dead owners' slots (by hand and
// automatic), a waiter killed while blocked, and pools opened by path and by
// memfd in the children.
//
// Ordering is always by pipes (or by the children's exit): the only polling
// loop (eventually()) observes a state, such as "one alloc is blocked now",
// that the test then asserts; nothing relies on it for correctness.
#define BOOST_TEST_MODULE pool_processes
#include "support.hpp"

#include <shmkit/pool.hpp>

#include <boost/mpl/list.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <thread>

using namespace std::chrono_literals;

namespace {

using i64_pool = shmkit::pool<std::int64_t>;

/// Writes one value into a pipe (atomically: it is smaller than PIPE_BUF).
template <class T>
void put(const test::pipe_pair& p, const T& v)
{
    if (::write(p.wr, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) std::_Exit(91);
}

/// Reads one value written by put(), waiting at most `limit`; nothing on
/// timeout or EOF.
template <class T>
std::optional<T> take(const test::pipe_pair& p, std::chrono::milliseconds limit = 30s)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    struct pollfd f = {p.rd, POLLIN, 0};
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) return std::nullopt;
        const int r = ::poll(&f, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return std::nullopt;
        break;
    }
    T v;
    char* b = reinterpret_cast<char*>(&v);
    std::size_t got = 0;
    while (got < sizeof v) {
        const ssize_t r = ::read(p.rd, b + got, sizeof v - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return std::nullopt;
        got += static_cast<std::size_t>(r);
    }
    return v;
}

/// Observes (never orders): true once `pred` holds, false after `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

constexpr std::size_t none = static_cast<std::size_t>(-1);

/// A child that allocates every slot of `p` and reports 'f', then waits
/// (until it is killed, or released by a byte on `hold`).
std::unique_ptr<test::child> filler(shmkit::detail::pool_base& p, const test::pipe_pair& ready,
                                    const test::pipe_pair& hold)
{
    return std::make_unique<test::child>([&] {
        if (!p.try_alloc_n(p.capacity())) return 1;
        ready.send('f');
        hold.receive();
        return 0;
    });
}

} // namespace

// ---- 1. A blocking alloc is woken by a free in another process -------------

BOOST_AUTO_TEST_CASE(blocked_alloc_is_woken_by_a_free_in_another_process)
{
    auto p = i64_pool::anonymous(4);
    std::vector<std::size_t> held = p.alloc_n(4).value();
    for (const bool timed : {false, true}) {
        BOOST_TEST_CONTEXT("alloc" << (timed ? "(30s)" : "()"))
        {
            test::pipe_pair up, down;
            test::child c([&] {
                up.send('b');
                const auto i = timed ? p.alloc(30s) : p.alloc();
                if (!i) return 1;
                if (p.owner(*i) != ::getpid()) return 2;
                p.set(*i, ::getpid());
                put(up, *i);
                if (down.receive() != 'x') return 3; // hold it until the parent looked
                return p.free(*i) ? 0 : 4;
            });
            BOOST_TEST(take<char>(up).value_or(0) == 'b');
            BOOST_TEST(eventually([&] { return p.stats().waiters == 1; }));
            const std::size_t freed = held.back();
            held.pop_back();
            BOOST_TEST(p.free(freed));
            BOOST_TEST(take<std::size_t>(up).value_or(none) == freed);
            BOOST_TEST(p.owner(freed) == c.pid());
            BOOST_TEST(p.get(freed) == c.pid());
            BOOST_TEST(p.stats().waiters == 0u);
            down.send('x');
            BOOST_TEST(c.wait() == 0);
            BOOST_TEST(!p.is_allocated(freed));
            held.push_back(p.alloc(1s).value()); // full again
        }
    }
    const auto s = p.stats();
    BOOST_TEST(s.waits == 2u);
    BOOST_TEST(s.timeouts == 0u);
    BOOST_TEST(p.free_n(held) == 4u);
    BOOST_TEST(p.used() == 0u);
}

// ---- 2. Timeouts ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(timed_alloc_on_a_full_pool_returns_nothing_and_is_counted)
{
    auto p = i64_pool::anonymous(3);
    auto held = p.alloc_n(3).value();

    test::child c([&] {
        if (p.alloc(50ms)) return 1;
        if (p.alloc_guard(50ms)) return 2;
        if (p.alloc_set(5, 50ms)) return 3;
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    auto s = p.stats();
    BOOST_TEST(s.timeouts == 3u);
    BOOST_TEST(s.waits == 3u);
    BOOST_TEST(s.waiters == 0u);
    BOOST_TEST(s.used == 3u);

    BOOST_TEST(!p.alloc(50ms));
    BOOST_TEST(p.stats().timeouts == 4u);

    // alloc_n gives up too, holding nothing afterwards.
    BOOST_TEST(p.free(held[0]));
    test::child batch([&] {
        if (p.alloc_n(2, 50ms)) return 1;
        return p.used() == 2 ? 0 : 2;
    });
    BOOST_TEST(batch.wait() == 0);
    s = p.stats();
    BOOST_TEST(s.timeouts == 5u);
    BOOST_TEST(s.used == 2u);
    BOOST_TEST(p.try_alloc().value_or(none) == held[0]);
    BOOST_TEST(p.free_n(held) == 3u);
}

// ---- 3. alloc_n all-or-nothing, served in turn ------------------------------

namespace {

/// Capacity 10; the parent holds `parent_holds` slots; two children each
/// alloc_n(6). One gets its 6 and holds them until released; the other
/// waits (holding nothing) and gets its 6 after the first frees. With
/// `parent_frees` the parent frees its slots while the second waits (still
/// not enough for it).
void two_batches_in_turn(std::size_t parent_holds, bool parent_frees, bool timed)
{
    auto p = i64_pool::anonymous(10);
    std::vector<std::size_t> mine;
    if (parent_holds) mine = p.alloc_n(parent_holds).value();
    test::pipe_pair got, release[2];
    std::unique_ptr<test::child> kids[2];
    for (int w = 0; w < 2; ++w)
        kids[w] = std::make_unique<test::child>([&, w] {
            const auto v = timed ? p.alloc_n(6, 30s) : p.alloc_n(6);
            if (!v || v->size() != 6) return 1;
            if (std::set<std::size_t>(v->begin(), v->end()).size() != 6) return 2;
            for (const std::size_t i : *v) {
                if (p.owner(i) != ::getpid()) return 3;
                p.set(i, ::getpid());
            }
            got.send(static_cast<char>('A' + w));
            if (release[w].receive() != 'x') return 4;
            for (const std::size_t i : *v)
                if (p.get(i) != ::getpid()) return 5; // nobody else had them meanwhile
            return p.free_n(*v) == 6 ? 0 : 6;
        });
    const char first = take<char>(got).value_or(0);
    BOOST_REQUIRE(((first == 'A') || (first == 'B')));
    const int a = first - 'A', b = 1 - a;
    // The other one is blocked in alloc_n (it cannot have 6 now).
    BOOST_TEST(eventually([&] { return p.stats().waiters == 1; }));
    if (parent_frees) {
        BOOST_TEST(p.free_n(mine) == parent_holds);
        mine.clear();
    }
    // The waiter holds none of the slots it cannot complete a batch with:
    // whatever it claims in a failed attempt it gives back before sleeping.
    BOOST_TEST(eventually([&] { return p.used() == mine.size() + 6; }));
    release[a].send('x');
    BOOST_TEST(kids[a]->wait(30s) == 0);
    BOOST_TEST(take<char>(got).value_or(0) == 'A' + b);
    release[b].send('x');
    BOOST_TEST(kids[b]->wait(30s) == 0);
    BOOST_TEST(p.used() == mine.size());
    BOOST_TEST(p.stats().waiters == 0u);
    BOOST_TEST(p.stats().timeouts == 0u);
    p.free_n(mine);
    BOOST_TEST(p.used() == 0u);
}

} // namespace

BOOST_AUTO_TEST_CASE(alloc_n_parent_holds_four_and_frees_them)
{
    two_batches_in_turn(4, true, true);
}

BOOST_AUTO_TEST_CASE(alloc_n_parent_holds_four_throughout)
{
    two_batches_in_turn(4, false, true);
}

BOOST_AUTO_TEST_CASE(alloc_n_on_an_empty_pool_one_after_the_other)
{
    two_batches_in_turn(0, false, false);
}

// ---- 4. A slot is never shared ------------------------------------------------

namespace {

void exclusive_slots(std::size_t cap)
{
    // Each worker holds a window of up to `window` slots: every iteration
    // frees its oldest (after checking that it still holds the worker's
    // value) and allocates a new one. 8 x 8 slots can fill a pool of 64 up
    // to 63, so scans are long and contended there; never all 64, so no
    // alloc waits (a worker allocates while holding at most 7).
    constexpr int procs = 8, iters = 50000;
    constexpr std::size_t window = 8;
    auto p = i64_pool::anonymous(cap);
    // holder[i]: which worker holds slot i (0: none), kept beside the pool:
    // two holders at once make one of the exchanges see the other.
    auto* holder = test::shared_scratch<std::atomic<int>>(cap);
    test::pipe_pair go;
    std::vector<std::unique_ptr<test::child>> kids;
    for (int w = 0; w < procs; ++w)
        kids.push_back(std::make_unique<test::child>([&, w] {
            ::close(go.wr);
            go.receive();
            const int me = w + 1;
            const std::int64_t base = static_cast<std::int64_t>(::getpid()) << 32;
            struct held_slot {
                std::size_t i;
                std::int64_t v;
            };
            std::vector<held_slot> ring; // oldest first
            const auto release = [&](const held_slot& h) {
                if (p.get(h.i) != h.v) return 5;
                if (holder[h.i].exchange(0) != me) return 6;
                return p.free(h.i) ? 0 : 7;
            };
            for (int k = 0; k < iters; ++k) {
                if (ring.size() == window) {
                    if (const int rc = release(ring.front())) return rc;
                    ring.erase(ring.begin());
                }
                const auto i = p.alloc(10s);
                if (!i || *i >= cap) return 1;
                if (holder[*i].exchange(me) != 0) return 2;
                const std::int64_t v = base | k;
                p.set(*i, v);
                if (p.get(*i) != v) return 3;
                if ((k & 1023) == 0 && p.owner(*i) != ::getpid()) return 4;
                ring.push_back({*i, v});
            }
            for (const held_slot& h : ring)
                if (const int rc = release(h)) return rc;
            return 0;
        }));
    ::close(go.wr);
    go.wr = -1;
    for (auto& k : kids) BOOST_TEST(k->wait(60s) == 0);
    BOOST_TEST(p.used() == 0u);
    const auto s = p.stats();
    BOOST_TEST(s.allocs == std::uint64_t(procs) * iters);
    BOOST_TEST(s.frees == std::uint64_t(procs) * iters);
    BOOST_TEST(s.waiters == 0u);
    ::munmap(holder, sizeof(std::atomic<int>) * cap);
}

} // namespace

BOOST_AUTO_TEST_CASE(eight_processes_never_share_a_slot_capacity_64)
{
    exclusive_slots(64);
}

BOOST_AUTO_TEST_CASE(eight_processes_never_share_a_slot_capacity_4096)
{
    exclusive_slots(4096);
}

// ---- 5. Exact atomic adds on one slot ----------------------------------------

using add_types = boost::mpl::list<std::int64_t, std::int32_t>;

BOOST_AUTO_TEST_CASE_TEMPLATE(eight_processes_add_exactly, T, add_types)
{
    constexpr int procs = 8, iters = 50000;
    auto p = shmkit::pool<T>::anonymous(8);
    const std::size_t i = p.alloc().value(), j = p.alloc().value();
    p.set(i, 0);
    p.set(j, 7);
    test::pipe_pair go;
    std::vector<std::unique_ptr<test::child>> kids;
    for (int w = 0; w < procs; ++w)
        kids.push_back(std::make_unique<test::child>([&] {
            ::close(go.wr);
            go.receive();
            for (int k = 0; k < iters; ++k) {
                if (p.add(i, T(1)) <= 0) return 1;
                p.incr(j);
                p.decr(j);
            }
            return 0;
        }));
    ::close(go.wr);
    go.wr = -1;
    for (auto& k : kids) BOOST_TEST(k->wait(60s) == 0);
    BOOST_TEST(p.get(i) == T(procs * iters));
    BOOST_TEST(p.get(j) == T(7));
    BOOST_TEST(p.owner(i) == ::getpid());
    BOOST_TEST(p.used() == 2u);
}

// ---- 6. Guards copied by fork() ---------------------------------------------

BOOST_AUTO_TEST_CASE(a_guard_copied_by_fork_frees_only_in_the_parent)
{
    auto p = i64_pool::anonymous(4);
    for (int how = 0; how < 3; ++how) {
        BOOST_TEST_CONTEXT("child ends its copy by " << (how == 0 ? "reset()" : how == 1 ? "scope exit" : "exiting"))
        {
            shmkit::slot_guard g = p.alloc_guard();
            BOOST_REQUIRE(g);
            const std::size_t i = *g;
            test::child c([&] {
                if (how == 0) {
                    g.reset();
                    if (g) return 1;
                } else if (how == 1) {
                    shmkit::slot_guard moved = std::move(g);
                    if (!moved || *moved != i) return 1;
                }
                if (!p.is_allocated(i)) return 2;
                // The child's own guard does free in the child.
                {
                    shmkit::slot_guard own = p.try_alloc_guard();
                    if (!own || *own == i) return 3;
                }
                return p.used() == 1 ? 0 : 4;
            });
            BOOST_TEST(c.wait() == 0);
            BOOST_TEST(p.is_allocated(i));
            BOOST_TEST(p.owner(i) == ::getpid());
            BOOST_TEST(p.used() == 1u);
            BOOST_TEST(p.recover_stale() == 0u);
            g.reset();
            BOOST_TEST(!g);
            BOOST_TEST(!p.is_allocated(i));
            BOOST_TEST(p.used() == 0u);
        }
    }
}

// ---- 7. Hand-over with adopt() -------------------------------------------------

namespace {

void pipeline(bool adopt)
{
    auto p = shmkit::str_pool::anonymous(8, 64);
    const std::string value("hand\0over", 9);
    test::pipe_pair handoff, report, producer_go, consumer_go;
    test::child producer([&] {
        const auto i = p.alloc_set(value);
        if (!i) return 1;
        if (p.owner(*i) != ::getpid()) return 2;
        put(handoff, *i);
        return producer_go.receive() == 'x' ? 0 : 3;
    });
    const pid_t producer_pid = producer.pid();
    test::child consumer([&] {
        const auto i = take<std::size_t>(handoff);
        if (!i) return 1;
        if (p.owner(*i) != producer_pid) return 2;
        if (adopt) {
            if (!p.adopt(*i)) return 3;
            if (p.owner(*i) != ::getpid()) return 4;
            if (!p.adopt(*i)) return 5; // already ours
        }
        put(report, *i);
        if (consumer_go.receive() != 'x') return 6;
        if (adopt) {
            if (p.get(*i) != value) return 7;
            return p.free(*i) ? 0 : 8;
        }
        // Recovered under us: the producer died and nobody adopted the slot.
        if (p.is_allocated(*i)) return 9;
        if (p.adopt(*i)) return 10;
        if (test::error_code_of([&] { p.get(*i); }) != static_cast<int>(shmkit::errc::slot_not_allocated))
            return 11;
        return 0;
    });
    const auto i = take<std::size_t>(report);
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(p.owner(*i) == (adopt ? consumer.pid() : producer_pid));
    producer_go.send('x');
    BOOST_TEST(producer.wait() == 0);
    const std::size_t recovered = p.recover_stale();
    if (adopt) {
        BOOST_TEST(recovered == 0u);
        BOOST_TEST(p.is_allocated(*i));
        BOOST_TEST(p.owner(*i) == consumer.pid());
        BOOST_TEST(p.get(*i) == value);
        BOOST_TEST(p.stats().recoveries == 0u);
    } else {
        BOOST_TEST(recovered == 1u);
        BOOST_TEST(!p.is_allocated(*i));
        BOOST_TEST(p.stats().recoveries == 1u);
    }
    consumer_go.send('x');
    BOOST_TEST(consumer.wait() == 0);
    BOOST_TEST(p.used() == 0u);
}

} // namespace

BOOST_AUTO_TEST_CASE(adopted_slot_survives_its_producer)
{
    pipeline(true);
}

BOOST_AUTO_TEST_CASE(slot_not_adopted_is_recovered_when_its_producer_dies)
{
    pipeline(false);
}

// ---- 8. recover_stale with dead owners ------------------------------------------

BOOST_AUTO_TEST_CASE(recover_stale_frees_exactly_the_slots_of_dead_owners)
{
    auto p = i64_pool::anonymous(64);
    const auto mine = p.alloc_n(2).value();
    // Workers 0 and 1 exit without freeing, 2 and 3 are SIGKILLed holding
    // their slots, 4 stays alive holding its slots.
    const std::size_t counts[] = {5, 7, 9, 3, 4};
    constexpr int n = 5;
    test::pipe_pair ready, hold;
    std::unique_ptr<test::child> kids[n];
    for (int w = 0; w < n; ++w)
        kids[w] = std::make_unique<test::child>([&, w] {
            if (w % 2 == 0) {
                if (!p.alloc_n(counts[w], 10s)) return 1;
            } else {
                for (std::size_t k = 0; k < counts[w]; ++k)
                    if (!p.alloc(10s)) return 1;
            }
            ready.send('r');
            if (w < 2) return 0;
            hold.receive();
            return 0;
        });
    for (int w = 0; w < n; ++w) BOOST_TEST(take<char>(ready).value_or(0) == 'r');
    kids[2]->kill();
    kids[3]->kill();
    std::set<pid_t> dead;
    for (int w = 0; w < 4; ++w) {
        dead.insert(kids[w]->pid());
        BOOST_TEST(kids[w]->wait() == (w < 2 ? 0 : 128 + SIGKILL));
    }
    const pid_t live = kids[4]->pid();
    BOOST_TEST(p.used() == 2u + 5 + 7 + 9 + 3 + 4);
    std::size_t of_live = 0, of_dead = 0;
    p.each_allocated([&](std::size_t i) {
        const pid_t o = p.owner(i);
        if (std::find(mine.begin(), mine.end(), i) != mine.end()) {
            BOOST_TEST(o == ::getpid());
        } else if (o == live) {
            ++of_live;
        } else {
            // A dead owner shows its PID until its attach entry is reclaimed.
            BOOST_TEST((o == 0 || dead.count(o) == 1), "slot " << i << " owner " << o);
            ++of_dead;
        }
    });
    BOOST_TEST(of_live == 4u);
    BOOST_TEST(of_dead == 24u);

    BOOST_TEST(p.recover_stale() == 24u);
    BOOST_TEST(p.used() == 2u + 4);
    BOOST_TEST(p.stats().recoveries == 24u);
    BOOST_TEST(p.recover_stale() == 0u);
    for (const std::size_t i : mine) BOOST_TEST(p.owner(i) == ::getpid());

    hold.send('x'); // the live one exits, still holding its 4
    BOOST_TEST(kids[4]->wait() == 0);
    BOOST_TEST(p.recover_stale() == 4u);
    BOOST_TEST(p.stats().recoveries == 28u);
    BOOST_TEST(p.used() == 2u);
    BOOST_TEST(p.free_n(mine) == 2u);
}

BOOST_AUTO_TEST_CASE(recover_stale_counts_a_destroyed_handle_as_dead)
{
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    i64_pool p(shmkit::create_only, path, 16);
    {
        i64_pool other(shmkit::open_only, path);
        BOOST_TEST(other.alloc_n(3).has_value());
    } // destroyed without freeing: its process lives on, the handle does not
    BOOST_TEST(p.used() == 3u);
    BOOST_TEST(p.recover_stale() == 3u);
    BOOST_TEST(p.used() == 0u);
}

BOOST_AUTO_TEST_CASE(concurrent_recoverers_free_each_dead_slot_once)
{
    constexpr int owners = 4, per_owner = 50, recoverers = 4;
    auto p = i64_pool::anonymous(owners * per_owner + 8);
    for (int w = 0; w < owners; ++w) {
        test::child c([&] { return p.alloc_n(per_owner, 10s) ? 0 : 1; });
        BOOST_TEST(c.wait() == 0);
    }
    BOOST_TEST(p.used() == std::size_t(owners * per_owner));
    auto* total = test::shared_scratch<std::atomic<long>>();
    test::pipe_pair go;
    std::vector<std::unique_ptr<test::child>> kids;
    for (int r = 0; r < recoverers; ++r)
        kids.push_back(std::make_unique<test::child>([&] {
            ::close(go.wr);
            go.receive();
            total->fetch_add(static_cast<long>(p.recover_stale()));
            return 0;
        }));
    ::close(go.wr);
    go.wr = -1;
    for (auto& k : kids) BOOST_TEST(k->wait() == 0);
    BOOST_TEST(total->load() == owners * per_owner);
    BOOST_TEST(p.used() == 0u);
    BOOST_TEST(p.stats().recoveries == std::uint64_t(owners * per_owner));
    ::munmap(total, sizeof(std::atomic<long>));
}

// ---- 9. auto_recover ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(auto_recover_alloc_frees_the_slots_of_the_dead_by_itself)
{
    shmkit::pool_options opt;
    opt.auto_recover = true;
    auto p = i64_pool::anonymous(8, opt);
    BOOST_TEST(p.auto_recover());

    // The pool is already full of a dead process's slots when we alloc.
    {
        test::pipe_pair ready, hold;
        auto f = filler(p, ready, hold);
        BOOST_TEST(take<char>(ready).value_or(0) == 'f');
        f->kill();
        BOOST_TEST(f->wait() == 128 + SIGKILL);
    }
    BOOST_TEST(p.used() == 8u);
    const auto i = p.alloc(10s);
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(p.owner(*i) == ::getpid());
    BOOST_TEST(p.used() == 1u);
    BOOST_TEST(p.stats().recoveries == 8u);
    BOOST_TEST(p.stats().timeouts == 0u);
    BOOST_TEST(p.free(*i));

    // The holder dies while an alloc already waits: it recovers by itself.
    {
        test::pipe_pair ready, hold, up;
        auto f = filler(p, ready, hold);
        BOOST_TEST(take<char>(ready).value_or(0) == 'f');
        test::child waiter([&] {
            up.send('b');
            const auto i = p.alloc(); // no timeout: only recovery can end it
            return i && p.owner(*i) == ::getpid() ? 0 : 1;
        });
        BOOST_TEST(take<char>(up).value_or(0) == 'b');
        BOOST_TEST(eventually([&] { return p.stats().waiters == 1; }));
        f->kill();
        BOOST_TEST(f->wait() == 128 + SIGKILL);
        BOOST_TEST(waiter.wait(30s) == 0);
    }
    BOOST_TEST(p.stats().recoveries == 16u);
    BOOST_TEST(p.stats().waiters == 0u);
}

BOOST_AUTO_TEST_CASE(without_auto_recover_alloc_times_out_on_a_dead_full_pool)
{
    auto p = i64_pool::anonymous(8);
    BOOST_TEST(!p.auto_recover());
    {
        test::pipe_pair ready, hold;
        auto f = filler(p, ready, hold);
        BOOST_TEST(take<char>(ready).value_or(0) == 'f');
        f->kill();
        BOOST_TEST(f->wait() == 128 + SIGKILL);
    }
    BOOST_TEST(!p.alloc(100ms));
    BOOST_TEST(p.stats().timeouts == 1u);
    BOOST_TEST(p.stats().recoveries == 0u);
    BOOST_TEST(p.used() == 8u);
    // Per handle: switched on, the same alloc recovers.
    p.set_auto_recover(true);
    const auto i = p.alloc(10s);
    BOOST_TEST(i.has_value());
    BOOST_TEST(p.stats().recoveries == 8u);
    BOOST_TEST(p.used() == 1u);
}

// ---- 10. A waiter killed while blocked -------------------------------------------

BOOST_AUTO_TEST_CASE(a_waiter_killed_while_blocked_leaves_no_trace)
{
    auto p = i64_pool::anonymous(2);
    const auto held = p.alloc_n(2).value();
    {
        test::pipe_pair up;
        test::child victim([&] {
            up.send('b');
            p.alloc();
            return 1; // there is no slot to get
        });
        BOOST_TEST(take<char>(up).value_or(0) == 'b');
        BOOST_TEST(eventually([&] { return p.stats().waiters == 1; }));
        victim.kill();
        BOOST_TEST(victim.wait() == 128 + SIGKILL);
    }
    BOOST_TEST(p.stats().waiters == 0u);
    BOOST_TEST(p.used() == 2u);
    BOOST_TEST(p.free(held[0]));
    BOOST_TEST(p.alloc(1s).value_or(none) == held[0]);

    // Blocking still works: a new waiter is woken by a free.
    test::pipe_pair up, down;
    test::child waiter([&] {
        up.send('b');
        const auto i = p.alloc();
        if (!i) return 1;
        put(up, *i);
        return down.receive() == 'x' && p.free(*i) ? 0 : 2;
    });
    BOOST_TEST(take<char>(up).value_or(0) == 'b');
    BOOST_TEST(eventually([&] { return p.stats().waiters == 1; }));
    BOOST_TEST(p.free(held[1]));
    BOOST_TEST(take<std::size_t>(up).value_or(none) == held[1]);
    BOOST_TEST(p.stats().waiters == 0u);
    down.send('x');
    BOOST_TEST(waiter.wait() == 0);
    BOOST_TEST(p.free(held[0]));
    BOOST_TEST(p.used() == 0u);
}

// ---- 11. Pools opened by path and by memfd in the children ------------------------

BOOST_AUTO_TEST_CASE(file_backed_pool_opened_by_path_in_children)
{
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    i64_pool p(shmkit::create_only, path, 4);
    test::pipe_pair ready, up, hold;

    // One child fills the pool through its own handle; another, also by
    // path, blocks; the parent frees one of the filler's slots (any process
    // may free any slot) and the waiter gets it.
    test::child fill([&] {
        i64_pool q(shmkit::open_only, path);
        if (q.capacity() != 4) return 1;
        const auto v = q.alloc_n(4);
        if (!v) return 2;
        for (const std::size_t i : *v) q.set(i, 100 + static_cast<std::int64_t>(i));
        ready.send('f');
        return hold.receive() == 'x' ? 0 : 3; // handle destroyed, slots kept
    });
    BOOST_TEST(take<char>(ready).value_or(0) == 'f');
    for (std::size_t i = 0; i < 4; ++i) {
        BOOST_TEST(p.get(i) == 100 + static_cast<std::int64_t>(i));
        BOOST_TEST(p.owner(i) == fill.pid());
    }
    test::child wait([&] {
        i64_pool q(shmkit::open_only, path);
        up.send('b');
        const auto i = q.alloc(30s);
        if (!i) return 1;
        q.set(*i, -1);
        put(up, *i);
        return 0; // exits holding it
    });
    BOOST_TEST(take<char>(up).value_or(0) == 'b');
    BOOST_TEST(eventually([&] { return p.stats().waiters == 1; }));
    BOOST_TEST(p.free(2));
    BOOST_TEST(take<std::size_t>(up).value_or(none) == 2u);
    BOOST_TEST(wait.wait() == 0);
    BOOST_TEST(p.get(2) == -1);
    hold.send('x');
    BOOST_TEST(fill.wait() == 0);
    BOOST_TEST(p.recover_stale() == 4u);
    BOOST_TEST(p.used() == 0u);
}

BOOST_AUTO_TEST_CASE(raw_and_str_pools_opened_by_path_in_children)
{
    test::scratch_dir dir;
    shmkit::raw_pool rp(shmkit::create_only, dir / "raw", 4, 24);
    shmkit::str_pool sp(shmkit::create_only, dir / "str", 4, 40);
    test::pipe_pair up, hold;
    test::child c([&] {
        shmkit::raw_pool r(shmkit::open_only, dir / "raw");
        shmkit::str_pool s(shmkit::open_only, dir / "str");
        if (r.capacity() != 4 || r.elem_size() != 24 || s.capacity() != 4 || s.max_length() != 40) return 1;
        const auto ri = r.alloc_set("abc");
        const auto si = s.alloc_set("hello, parent");
        if (!ri || !si) return 2;
        put(up, *ri);
        put(up, *si);
        return hold.receive() == 'x' ? 0 : 3;
    });
    const std::size_t ri = take<std::size_t>(up).value_or(none), si = take<std::size_t>(up).value_or(none);
    BOOST_REQUIRE(ri < 4u);
    BOOST_REQUIRE(si < 4u);
    BOOST_TEST(rp.get(ri) == std::string("abc") + std::string(21, '\0'));
    BOOST_TEST(sp.get(si) == "hello, parent");
    BOOST_TEST(sp.owner(si) == c.pid());
    BOOST_TEST(sp.adopt(si)); // the str slot is ours now; the raw one is not
    hold.send('x');
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(rp.recover_stale() == 1u);
    BOOST_TEST(sp.recover_stale() == 0u);
    BOOST_TEST(sp.get(si) == "hello, parent");
    BOOST_TEST(sp.free(si));
    BOOST_TEST(rp.used() == 0u);
    BOOST_TEST(sp.used() == 0u);
}

BOOST_AUTO_TEST_CASE(memfd_pool_passed_by_fd_across_fork)
{
    auto p = i64_pool::memfd("shmkit-test-pool", 8);
    const int fd = p.memfd();
    BOOST_TEST(fd >= 0);
    BOOST_TEST(i64_pool::anonymous(1).memfd() == -1);
    test::pipe_pair up, hold;
    test::child c([&] {
        auto q = i64_pool::from_fd(fd);
        if (q.capacity() != 8) return 1;
        const auto i = q.alloc_set(4242);
        if (!i) return 2;
        put(up, *i);
        return hold.receive() == 'x' ? 0 : 3;
    });
    const std::size_t i = take<std::size_t>(up).value_or(none);
    BOOST_REQUIRE(i < 8u);
    BOOST_TEST(p.get(i) == 4242);
    BOOST_TEST(p.owner(i) == c.pid());
    BOOST_TEST(p.recover_stale() == 0u); // its owner lives
    hold.send('x');
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(p.recover_stale() == 1u);
    BOOST_TEST(p.used() == 0u);
}

// A zombie (exited, not yet reaped by its parent) holds nothing: its slots
// are recovered before the parent reaps it, in a file pool (liveness by OFD
// lock) and in anonymous memory (liveness by PID + start time, where a
// zombie whose threads have all exited counts as gone).
BOOST_AUTO_TEST_CASE(slots_of_a_zombie_are_recovered_before_it_is_reaped)
{
    test::scratch_dir dir;
    i64_pool file(shmkit::create_only, dir / "p", 8);
    auto anon = i64_pool::anonymous(8);
    for (i64_pool* p : {&file, &anon}) {
        test::child c([p] {
            for (int k = 0; k < 3; ++k)
                if (!p->try_alloc()) return 1;
            return 0;
        });
        // Wait for the exit but leave the child a zombie (c reaps it, on every path).
        BOOST_REQUIRE(test::until_exited(c.pid(), 30s));
        siginfo_t info{};
        BOOST_REQUIRE(::waitid(P_PID, static_cast<id_t>(c.pid()), &info, WEXITED | WNOWAIT | WNOHANG) == 0);
        BOOST_REQUIRE(info.si_pid == c.pid());
        BOOST_REQUIRE(info.si_code == CLD_EXITED);
        BOOST_REQUIRE(info.si_status == 0);
        BOOST_TEST(p->used() == 3u);
        BOOST_TEST(p->recover_stale() == 3u);
        BOOST_TEST(p->used() == 0u);
        BOOST_TEST(c.wait() == 0);
    }
}

// The hand-off a dead producer cannot spoil: the consumer adopts with the
// holder token sent along with the index, and gets nothing if the slot was
// recovered and allocated again meanwhile (adopt by index alone would take
// the new holder's slot).
BOOST_AUTO_TEST_CASE(adopt_with_a_token_never_takes_a_reallocated_slot)
{
    auto p = i64_pool::anonymous(4);
    test::pipe_pair handoff;
    test::child producer([&] {
        const auto i = p.try_alloc_set(42);
        if (!i) return 1;
        const std::uint64_t msg[2] = {*i, p.holder_token(*i)};
        return ::write(handoff.wr, msg, sizeof msg) == sizeof msg ? 0 : 2;
    });
    BOOST_REQUIRE(producer.wait() == 0); // the producer is dead now
    std::uint64_t msg[2];
    BOOST_REQUIRE(::read(handoff.rd, msg, sizeof msg) == sizeof msg);
    const std::size_t i = msg[0];
    BOOST_TEST(p.recover_stale() == 1u);
    // Someone else (this process) gets the slot again.
    std::vector<std::size_t> mine;
    while (auto j = p.try_alloc()) mine.push_back(*j);
    BOOST_REQUIRE(std::find(mine.begin(), mine.end(), i) != mine.end());
    test::child consumer([&] {
        i64_pool& q = p;
        // Must refuse, both: the token is gone.
        return q.adopt(i, msg[1]) ? 1 : q.free(i, msg[1]) ? 2 : 0;
    });
    BOOST_TEST(consumer.wait() == 0);
    BOOST_TEST(p.owner(i) == ::getpid());
    // A token that still holds is adopted.
    const std::uint64_t mine_token = p.holder_token(i);
    test::child heir([&] { return p.adopt(i, mine_token) && p.owner(i) == ::getpid() ? 0 : 1; });
    BOOST_TEST(heir.wait() == 0);
    BOOST_TEST(p.owner(i) != ::getpid());
}

// free() in a forked child whose handle cannot get an attach entry throws
// before it frees anything.
BOOST_AUTO_TEST_CASE(free_in_a_child_that_cannot_attach_changes_nothing)
{
    shmkit::pool_options opt;
    opt.attach_capacity = 1;
    auto p = i64_pool::anonymous(4, opt);
    const auto i = p.try_alloc();
    BOOST_REQUIRE(i);
    test::child c([&] {
        try {
            p.free(*i);
            return 1;
        } catch (const shmkit::error& e) {
            if (e.code() != shmkit::errc::attach_table_full) return 2;
        }
        try {
            const std::size_t slots[] = {*i};
            p.free_n(slots);
            return 3;
        } catch (const shmkit::error&) {
        }
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(p.is_allocated(*i));
}
