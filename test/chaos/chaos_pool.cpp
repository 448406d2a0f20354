// pool<T> under chaos: workers allocate (one slot, a batch, a guard), write
// their id into what they hold, verify it, free, and recover dead owners'
// slots, while they are SIGKILLed at random.
//
// The pool has room for every worker's largest holding (and the parent's),
// so with dead owners recovered by the allocators (auto_recover) a bounded
// wait always gets a slot: an alloc that times out is a lost slot. What must
// hold, during the run: a slot a worker holds keeps its id and names it as
// owner (no second owner). At the end, with the workers stopped and alive:
// after recover_stale(), used() is exactly what the workers and the parent
// hold, no slot is held by two of them, each holds its own slots; once the
// workers are gone too, every other slot can be allocated again (no leak).
#define BOOST_TEST_MODULE chaos_pool
#include "chaos.hpp"

#include <shmkit/pool.hpp>

#include <algorithm>
#include <map>
#include <set>

using namespace std::chrono_literals;
using pool = shmkit::pool<std::int64_t>;

namespace {

constexpr std::size_t max_hold = 6;
constexpr std::size_t parent_hold = 2;
constexpr std::int64_t parent_mark = -1;
constexpr auto alloc_bound = chaos::sanitized ? 30s : 10s;

enum kind : std::uint32_t { op = 1, recovered, holding };

class pool_worker {
public:
    pool_worker(chaos::worker& w, const std::string& path) : w_(w), p_(shmkit::open_only, path, options()) {}

    void loop()
    {
        while (w_.running()) {
            verify_held();
            switch (w_.pick(0, 9)) {
            case 0: case 1: alloc_one(); break;
            case 2: try_alloc_one(); break;
            case 3: alloc_batch(); break;
            case 4: case 5: free_one(); break;
            case 6: free_batch(); break;
            case 7: guarded(); break;
            case 8: recover(); break;
            case 9: adopt_own(); break;
            }
            w_.send(op);
        }
        verify_held();
        for (auto i : held_) w_.send(holding, 0, i);
        w_.park(); // attached, holding its slots, until the parent has checked them
    }

private:
    static shmkit::pool_options options()
    {
        shmkit::pool_options o;
        o.auto_recover = true;
        return o;
    }
    std::int64_t mark() const { return w_.id(); }
    std::size_t room() const { return max_hold - held_.size(); }

    void take(std::size_t i)
    {
        p_.set(i, mark());
        held_.push_back(i);
    }
    void alloc_one()
    {
        if (!room()) return;
        if (auto i = p_.alloc(alloc_bound)) take(*i);
        else w_.violation("alloc timed out although the pool has room for every live holding");
    }
    void try_alloc_one()
    {
        if (!room()) return;
        if (auto i = p_.try_alloc_set(mark())) held_.push_back(*i); // none free now: dead owners' slots
    }
    void alloc_batch()
    {
        if (room() < 2) return;
        const std::size_t n = w_.pick(2, room());
        auto v = p_.alloc_n(n, alloc_bound);
        if (!v) return w_.violation("alloc_n(" + std::to_string(n) + ") timed out with room for it");
        w_.expect(v->size() == n, "alloc_n returned a batch of another size");
        for (auto i : *v) take(i);
    }
    void free_one()
    {
        if (held_.empty()) return;
        const std::size_t k = w_.pick(0, held_.size() - 1);
        const std::size_t i = held_[k];
        held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(k));
        w_.expect(p_.free(i), "free of a held slot found it free");
    }
    void free_batch()
    {
        if (held_.empty()) return;
        const std::vector<std::size_t> v(held_);
        held_.clear();
        w_.expect(p_.free_n(v) == v.size(), "free_n of held slots freed fewer");
    }
    void guarded()
    {
        if (!room()) return;
        auto g = p_.alloc_guard(alloc_bound);
        if (!g) return w_.violation("alloc_guard timed out with room for it");
        p_.set(*g, mark());
        check(*g, "guarded slot");
    }
    void recover()
    {
        if (const std::size_t n = p_.recover_stale()) w_.send(recovered, 0, n);
    }
    void adopt_own()
    {
        if (held_.empty()) return;
        const std::size_t i = held_[w_.pick(0, held_.size() - 1)];
        w_.expect(p_.adopt(i, p_.holder_token(i)), "adopting a held slot failed");
    }

    void verify_held()
    {
        for (auto i : held_) check(i, "held slot");
    }
    void check(std::size_t i, const char* what)
    {
        try {
            w_.expect(p_.get(i) == mark(), std::string(what) + " " + std::to_string(i) + " holds " +
                                               std::to_string(p_.get(i)) + ", written by another owner");
            w_.expect(p_.owner(i) == ::getpid(), std::string(what) + " " + std::to_string(i) + " names owner " +
                                                      std::to_string(p_.owner(i)));
        } catch (const shmkit::error& e) {
            w_.violation(std::string(what) + " " + std::to_string(i) + " is no longer allocated: " + e.what());
        }
    }

    chaos::worker& w_;
    pool p_;
    std::vector<std::size_t> held_;
};

/// What the records say: recoveries by workers, and the holdings of the
/// workers alive at the end.
struct pool_log {
    std::uint64_t operations = 0; ///< rounds of the worker loops
    std::uint64_t recovered_by_workers = 0;
    std::map<std::uint32_t, std::vector<std::size_t>> holdings; ///< by incarnation id

    void take(const chaos::incarnation& inc, const chaos::record& r)
    {
        if (r.kind == op) ++operations;
        if (r.kind == recovered) recovered_by_workers += r.b;
        if (r.kind == holding) holdings[inc.id].push_back(static_cast<std::size_t>(r.b));
    }
};

/// With the workers stopped but alive: each slot a worker reports holds
/// its id and names it, no slot is reported twice, and the allocated slots
/// are exactly the reported ones and the parent's.
void check_live_holdings(pool& p, const pool_log& log, const chaos::run& run, const std::vector<std::size_t>& mine)
{
    p.recover_stale();
    std::set<std::size_t> expected(mine.begin(), mine.end());
    std::size_t held = mine.size();
    for (const auto& [id, slots] : log.holdings) {
        const chaos::incarnation& inc = run.incarnations()[id - 1];
        BOOST_TEST_REQUIRE(!inc.killed);
        for (auto i : slots) {
            BOOST_TEST(expected.insert(i).second, "slot " << i << " is held by two owners");
            if (!p.is_allocated(i)) {
                BOOST_ERROR("slot " << i << ", held by live worker #" << id << ", was freed");
                continue;
            }
            BOOST_TEST(p.get(i) == static_cast<std::int64_t>(id), "slot " << i << " of #" << id);
            BOOST_TEST(p.owner(i) == inc.pid, "owner of slot " << i << " of #" << id);
        }
        held += slots.size();
    }
    BOOST_TEST(p.used() == held);
    const auto allocated = p.allocated_slots();
    BOOST_TEST(std::set<std::size_t>(allocated.begin(), allocated.end()) == expected);
}

/// With every worker gone: only the parent's slots stay, and every other
/// slot can be allocated.
void check_nothing_leaked(pool& p, const std::vector<std::size_t>& mine)
{
    p.recover_stale();
    BOOST_TEST(p.used() == mine.size());
    for (auto i : mine) BOOST_TEST(p.get(i) == parent_mark);
    std::size_t more = 0;
    while (p.try_alloc()) ++more;
    BOOST_TEST(more == p.capacity() - mine.size());
}

} // namespace

BOOST_AUTO_TEST_CASE(slots_are_neither_lost_nor_shared_under_random_kills)
{
    const auto cfg = chaos::settings_from_command_line(200);
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    pool p(shmkit::create_only, path, static_cast<std::size_t>(cfg.workers) * max_hold + parent_hold);
    std::vector<std::size_t> mine; // held throughout: nobody may recover or reuse them
    for (std::size_t k = 0; k < parent_hold; ++k) mine.push_back(*p.alloc_set(parent_mark));

    pool_log log;
    chaos::run run(
        cfg, [&](chaos::worker& w) { pool_worker(w, path).loop(); },
        [&](const chaos::incarnation& i, const chaos::record& r) { log.take(i, r); });
    const auto sum = run.go();
    if (run.complete()) check_live_holdings(p, log, run, mine);
    run.finish();
    check_nothing_leaked(p, mine);

    const auto st = p.stats();
    BOOST_TEST(st.waiters == 0u);
    chaos::report("pool", run, sum, cfg, log.operations,
                  std::to_string(st.recoveries) + " slots (" + std::to_string(log.recovered_by_workers) +
                      " by recover_stale() in workers), waits " + std::to_string(st.waits));
}
