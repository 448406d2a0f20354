// buffer<T> under chaos: workers fill and slice a range under the seqlock,
// take the rwlock shared and exclusive, add to counters and set, swap and
// compare-and-swap scratch elements, while they are SIGKILLed at random.
//
// Element layout:
//   [0, bulk)                  the bulk range: every fill writes one pattern
//                              (writer id << 32 | its fill number) to all of it
//   bulk + slot                each worker slot's counter
//   bulk + workers             the counter every worker adds to
//   bulk + workers + 1 ...     scratch elements, each always x | ~x << 32
//
// What must hold: a bulk write is atomic for readers, not for the death of
// its writer (detail/buffer_base.hpp): a fill killed half-way stays partly
// applied. So every slice, during the run and at the end, shows one pattern
// besides, at most, the patterns of fills whose writer was killed in them;
// and every pattern seen was written. Each counter lies within [acknowledged
// adds, acknowledged + the adds of workers killed before acknowledging];
// no scratch element is ever torn. At the end both lock modes are granted
// within a bound, and a fill by the parent reads back whole.
#define BOOST_TEST_MODULE chaos_buffer
#include "chaos.hpp"

#include <shmkit/buffer.hpp>

#include <algorithm>

using namespace std::chrono_literals;
using buffer = shmkit::buffer<std::uint64_t>;

namespace {

constexpr std::size_t bulk = 65536;
constexpr std::size_t scratch_count = 16;
constexpr std::uint64_t max_delta = 7;
constexpr auto lock_bound = chaos::sanitized ? 30s : 10s;
/// A slice holding more patterns than this is torn beyond what kills explain.
constexpr std::size_t max_patterns = 8;
/// Incarnation ids beyond this are garbage, not writers (a run spawns fewer).
constexpr std::uint32_t max_writer = 1u << 22;

enum kind : std::uint32_t { fill_done = 1, seen, slice_end, added, lock_recovered, other };

std::uint64_t pattern(std::uint32_t writer, std::uint32_t fill) { return std::uint64_t(writer) << 32 | fill; }
std::uint32_t writer_of(std::uint64_t p) { return static_cast<std::uint32_t>(p >> 32); }
std::uint32_t fill_of(std::uint64_t p) { return static_cast<std::uint32_t>(p); }

std::uint64_t scratch_value(std::uint32_t x) { return x | std::uint64_t(~x) << 32; }
bool is_scratch_value(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32) == static_cast<std::uint32_t>(~v); }

struct layout {
    int workers;
    std::size_t own_counter(int slot) const { return bulk + static_cast<std::size_t>(slot); }
    std::size_t shared_counter() const { return bulk + static_cast<std::size_t>(workers); }
    std::size_t scratch(std::size_t k) const { return shared_counter() + 1 + k; }
    std::size_t capacity() const { return scratch(scratch_count); }
};

// ---- Workers -----------------------------------------------------------------------

class buffer_worker {
public:
    buffer_worker(chaos::worker& w, const std::string& path, layout l)
        : w_(w), buf_(shmkit::open_only, path), l_(l)
    {
    }

    void loop()
    {
        while (w_.running()) {
            switch (w_.pick(0, 11)) {
            case 0: case 1: fill(); break;
            case 2: fill_under_lock(); break;
            case 3: case 4: read_window(); break;
            case 5: read_under_shared_lock(); break;
            case 6: case 7: add(l_.own_counter(w_.slot()), 0); break;
            case 8: add(l_.shared_counter(), 1); break;
            case 9: case 10: touch_scratch(); break;
            case 11: lock_and_unlock(); break;
            }
        }
    }

private:
    void fill()
    {
        const std::vector<std::uint64_t> v(bulk, pattern(w_.id(), ++fills_));
        buf_.set_slice(0, v);
        w_.send(fill_done, 0, fills_);
    }
    void fill_under_lock()
    {
        if (!lock_exclusive()) return;
        const std::vector<std::uint64_t> v(bulk, pattern(w_.id(), ++fills_));
        buf_.set_slice(0, v); // reentrant: runs inside the lock we hold
        buf_.unlock();
        w_.send(fill_done, 0, fills_);
    }
    void read_window()
    {
        const std::size_t from = w_.pick(0, bulk - 1);
        report_slice(buf_.slice(from, w_.pick(1, bulk - from)));
    }
    void read_under_shared_lock()
    {
        if (!buf_.try_lock_shared_for(lock_bound))
            return w_.violation("lock_shared not granted within the bound");
        const auto v = buf_.slice(0, bulk);
        buf_.unlock_shared();
        report_slice(v);
    }
    /// Sends the patterns of a slice; the parent judges them (it knows
    /// which writers were killed in which fill).
    void report_slice(const std::vector<std::uint64_t>& v)
    {
        std::vector<std::uint64_t> patterns;
        for (auto x : v)
            if (std::find(patterns.begin(), patterns.end(), x) == patterns.end()) patterns.push_back(x);
        if (patterns.size() > max_patterns)
            return w_.violation("a slice holds " + std::to_string(patterns.size()) + " patterns");
        for (auto p : patterns) w_.send(seen, 0, p);
        w_.send(slice_end, static_cast<std::uint32_t>(patterns.size()));
    }
    void add(std::size_t i, std::uint32_t which)
    {
        std::uint64_t d = w_.pick(1, max_delta);
        switch (w_.pick(0, 2)) {
        case 0: buf_.add(i, d); break;
        case 1: buf_.incr(i); d = 1; break;
        case 2:
            for (std::uint64_t v = buf_.get(i); !buf_.cas(i, v, v + d);) v = buf_.get(i);
            break;
        }
        w_.send(added, which, d);
    }
    void touch_scratch()
    {
        const std::size_t i = l_.scratch(w_.pick(0, scratch_count - 1));
        const std::uint64_t v = scratch_value(static_cast<std::uint32_t>(w_.rng()()));
        std::uint64_t old = buf_.get(i);
        switch (w_.pick(0, 2)) {
        case 0: buf_.set(i, v); break;
        case 1: old = buf_.xchg(i, v); break;
        case 2: buf_.cas(i, old, v); break;
        }
        w_.expect(is_scratch_value(old), "torn scratch element");
        w_.send(other);
    }
    void lock_and_unlock()
    {
        if (w_.pick(0, 1)) {
            if (lock_exclusive()) buf_.unlock();
        } else if (buf_.try_lock_shared_for(lock_bound)) {
            buf_.unlock_shared();
        } else {
            return w_.violation("lock_shared not granted within the bound");
        }
        w_.send(other);
    }
    bool lock_exclusive()
    {
        if (!buf_.try_lock_for(lock_bound)) {
            w_.violation("lock not granted within the bound");
            return false;
        }
        if (buf_.recovered()) w_.send(lock_recovered);
        return true;
    }

    chaos::worker& w_;
    buffer buf_;
    layout l_;
    std::uint32_t fills_ = 0;
};

// ---- The parent's record of the run ----------------------------------------------------

/// What the records say: fills acknowledged, patterns seen, counters added.
class buffer_log {
public:
    explicit buffer_log(int workers)
        : acked_own_(static_cast<std::size_t>(workers)), slices_open_(static_cast<std::size_t>(workers))
    {
    }

    void take(const chaos::incarnation& inc, const chaos::record& r)
    {
        grow(inc.id);
        operations_ += r.kind == fill_done || r.kind == slice_end || r.kind == added || r.kind == other;
        switch (r.kind) {
        case fill_done: last_fill_[inc.id] = static_cast<std::uint32_t>(r.b); break;
        case seen: open_slice(inc).push_back(r.b); break;
        case slice_end: close_slice(open_slice(inc)); break;
        case added: (r.a == 0 ? acked_own_[static_cast<std::size_t>(inc.slot)] : acked_shared_) += r.b; break;
        case lock_recovered: ++recoveries_seen_; break;
        }
    }

    /// Pattern p was written: the parent's first fill, or a fill its writer
    /// acknowledged or was killed in.
    bool written(std::uint64_t p, const chaos::run& run) const
    {
        const std::uint32_t w = writer_of(p), f = fill_of(p);
        if (w == 0) return f == 1;
        if (w > run.incarnations().size() || f == 0) return false;
        return f <= last_fill(w) + (run.incarnations()[w - 1].killed ? 1 : 0);
    }
    /// Pattern p is the fill its writer was killed in.
    bool of_killed_fill(std::uint64_t p, const chaos::run& run) const
    {
        const std::uint32_t w = writer_of(p);
        return w > 0 && w <= run.incarnations().size() && run.incarnations()[w - 1].killed &&
               fill_of(p) == last_fill(w) + 1;
    }
    /// A slice is sound if every pattern in it was written and at most one
    /// of them is not the remains of a fill killed half-way.
    std::string judge(const std::vector<std::uint64_t>& patterns, const chaos::run& run) const
    {
        std::size_t whole = 0;
        for (auto p : patterns) {
            if (!written(p, run)) return "pattern " + describe(p) + " was never written";
            whole += !of_killed_fill(p, run);
        }
        if (whole > 1) return "a slice mixes " + std::to_string(whole) + " completed fills: " + describe(patterns);
        return {};
    }
    /// judge() of every slice the workers reported.
    std::string judge_all(const chaos::run& run) const
    {
        for (std::size_t w = 1; w < max_seen_.size(); ++w)
            if (max_seen_[w] && !written(pattern(static_cast<std::uint32_t>(w), max_seen_[w]), run))
                return "a slice showed " + describe(pattern(static_cast<std::uint32_t>(w), max_seen_[w])) +
                       ", never written";
        if (parent_seen_ > 1) return "a slice showed a parent fill that was not done yet";
        for (const auto& t : mixed)
            if (auto why = judge(t, run); !why.empty()) return why;
        return {};
    }

    std::uint64_t acked_own(int slot) const { return acked_own_[static_cast<std::size_t>(slot)]; }
    std::uint64_t acked_shared() const { return acked_shared_; }
    std::uint64_t recoveries_seen() const { return recoveries_seen_; }
    std::uint64_t slices() const { return slices_; }
    std::uint64_t operations() const { return operations_; }

    std::vector<std::vector<std::uint64_t>> mixed; ///< slices with several patterns

private:
    std::uint32_t last_fill(std::uint32_t w) const { return w < last_fill_.size() ? last_fill_[w] : 0; }
    void grow(std::uint32_t id)
    {
        if (last_fill_.size() <= id) last_fill_.resize(id + 1), max_seen_.resize(id + 1);
    }
    /// The patterns reported so far of the slice `inc` is reading. What a
    /// killed reader of the same slot left unfinished is dropped.
    std::vector<std::uint64_t>& open_slice(const chaos::incarnation& inc)
    {
        auto& [reader, patterns] = slices_open_[static_cast<std::size_t>(inc.slot)];
        if (reader != inc.id) patterns.clear();
        reader = inc.id;
        return patterns;
    }
    void close_slice(std::vector<std::uint64_t>& patterns)
    {
        ++slices_;
        if (patterns.size() > 1) mixed.push_back(patterns);
        if (patterns.size() == 1) {
            const std::uint32_t w = writer_of(patterns[0]);
            if (w == 0) {
                parent_seen_ = std::max(parent_seen_, fill_of(patterns[0]));
            } else if (w < max_writer) {
                grow(w);
                max_seen_[w] = std::max(max_seen_[w], fill_of(patterns[0]));
            } else {
                mixed.push_back(patterns); // no such writer: judge() says so
            }
        }
        patterns.clear();
    }
    static std::string describe(std::uint64_t p)
    {
        return "#" + std::to_string(writer_of(p)) + "/" + std::to_string(fill_of(p));
    }
    static std::string describe(const std::vector<std::uint64_t>& ps)
    {
        std::string s;
        for (auto p : ps) s += describe(p) + " ";
        return s;
    }

    std::vector<std::uint32_t> last_fill_; ///< by incarnation id
    std::vector<std::uint32_t> max_seen_;  ///< by incarnation id: its latest fill seen alone in a slice
    std::uint32_t parent_seen_ = 0;
    std::vector<std::uint64_t> acked_own_;
    /// By worker slot: the reader's id and the patterns of its slice so far.
    std::vector<std::pair<std::uint32_t, std::vector<std::uint64_t>>> slices_open_;
    std::uint64_t acked_shared_ = 0;
    std::uint64_t recoveries_seen_ = 0;
    std::uint64_t slices_ = 0;
    std::uint64_t operations_ = 0;
};

std::vector<std::uint64_t> patterns_of(const std::vector<std::uint64_t>& v)
{
    std::vector<std::uint64_t> p(v);
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    return p;
}

// ---- Final checks -----------------------------------------------------------------------

void check_locks(buffer& buf)
{
    BOOST_TEST_REQUIRE(buf.try_lock_for(lock_bound), "the lock is granted within the bound");
    buf.unlock();
    BOOST_TEST_REQUIRE(buf.try_lock_shared_for(lock_bound), "the shared lock is granted within the bound");
    buf.unlock_shared();
}

void check_counters(const buffer& buf, const layout& l, const buffer_log& log, const chaos::run& run)
{
    long all_kills = 0;
    for (int s = 0; s < l.workers; ++s) {
        const std::uint64_t v = buf.get(l.own_counter(s)), lo = log.acked_own(s);
        const std::uint64_t hi = lo + max_delta * static_cast<std::uint64_t>(run.kills_of(s));
        BOOST_TEST((lo <= v && v <= hi), "counter of slot " << s << " is " << v << ", not in [" << lo << ", " << hi << "]");
        all_kills += run.kills_of(s);
    }
    const std::uint64_t v = buf.get(l.shared_counter()), lo = log.acked_shared();
    const std::uint64_t hi = lo + max_delta * static_cast<std::uint64_t>(all_kills);
    BOOST_TEST((lo <= v && v <= hi), "shared counter is " << v << ", not in [" << lo << ", " << hi << "]");
}

void check_scratch(const buffer& buf, const layout& l)
{
    for (std::size_t k = 0; k < scratch_count; ++k)
        BOOST_TEST(is_scratch_value(buf.get(l.scratch(k))), "scratch element " << k << " is torn");
}

} // namespace

BOOST_AUTO_TEST_CASE(fills_slices_locks_and_counters_survive_random_kills)
{
    const auto cfg = chaos::settings_from_command_line(200);
    const layout l{cfg.workers};
    test::scratch_dir dir;
    const std::string path = dir / "buffer";
    buffer buf(shmkit::create_only, path, l.capacity());
    buf.set_slice(0, std::vector<std::uint64_t>(bulk, pattern(0, 1)));
    for (std::size_t k = 0; k < scratch_count; ++k) buf.set(l.scratch(k), scratch_value(0));

    buffer_log log(cfg.workers);
    chaos::run run(
        cfg, [&](chaos::worker& w) { buffer_worker(w, path, l).loop(); },
        [&](const chaos::incarnation& i, const chaos::record& r) { log.take(i, r); });
    const auto sum = run.go();
    run.finish();

    check_locks(buf);
    if (run.complete()) {
        const std::string during = log.judge_all(run);
        BOOST_TEST(during.empty(), "during the run: " << during);
        const std::string at_end = log.judge(patterns_of(buf.slice(0, bulk)), run);
        BOOST_TEST(at_end.empty(), "at the end: " << at_end);
        check_counters(buf, l, log, run);
    }
    check_scratch(buf, l);
    // The structure goes on: a fill after all this reads back whole.
    buf.set_slice(0, std::vector<std::uint64_t>(bulk, pattern(0, 2)));
    BOOST_TEST(patterns_of(buf.slice(0, bulk)) == std::vector<std::uint64_t>{pattern(0, 2)});

    const auto st = buf.stats();
    chaos::report("buffer", run, sum, cfg, log.operations(),
                  "lock " + std::to_string(st.lock_recoveries) + " (" + std::to_string(log.recoveries_seen()) +
                      " seen by lockers), bulk writes closed " + std::to_string(st.bulk_recoveries) +
                      "; slices " + std::to_string(log.slices()) + ", showing remains of killed fills " +
                      std::to_string(log.mixed.size()));
}
