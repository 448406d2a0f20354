// kv_store across real forked processes: mixed writers on overlapping keys
// (no torn or foreign value is ever read, the end state is the last writes),
// growth while others read and write (no committed key is ever missed),
// creation and EXCLUSIVE races, writers SIGKILLed at random points hundreds
// of times (every committed value survives, the dead writer's leftovers are
// repaired by check() or by the next writer, a writer blocked on the dead
// one's lock takes it over, and an overwrite cut short is done or not and
// stays so through the repair), writers killed at the exact steps of a
// table's growth and of an overwrite (kill_point.hpp), and readers killed mid-get or inside a
// shared-lock view (nothing to recover, writers go on).
//
// Ordering is always by pipes, futexes or the children's exit. The only
// sleeps are the random delays before a kill: they choose where the kill
// lands, nothing waits on them. Every value written is derived from what
// identifies it (key, writer, sequence or version), so any value read can be
// checked byte for byte.
#define BOOST_TEST_MODULE kv_processes
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/detail/kv_layout.hpp>
#include <shmkit/inspect.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/sync/futex.hpp>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <thread>

#include <dirent.h>
#include <fcntl.h>

using namespace std::chrono_literals;
using shmkit::kv_store;

BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<std::string>)
namespace utf = boost::unit_test;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

// ---- Helpers -------------------------------------------------------------------

/// A unique store name; the store (root and tables) is removed on scope exit.
class store_name {
public:
    explicit store_name(const std::string& tag) : n_("kv-" + tag) {}
    ~store_name()
    {
        try {
            kv_store::remove(n_.str());
        } catch (...) {
        }
    }
    const std::string& str() const { return n_.str(); }

private:
    test::shm_name n_; // also shm_unlinks the root, should remove() have failed
};

/// Names under /dev/shm that belong to the store `name`: its root ("NAME")
/// when `root`, and its tables ("NAME~ID~GEN").
std::size_t shm_entries(const std::string& name, bool root = true)
{
    const std::string base = name.substr(1);
    const std::string tables = base + "~";
    std::size_t n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const struct dirent* e = ::readdir(d)) {
            const std::string_view s(e->d_name);
            if ((root && s == base) || s.substr(0, tables.size()) == tables) ++n;
        }
        ::closedir(d);
    }
    return n;
}

std::size_t table_names(const std::string& name) { return shm_entries(name, false); }

constexpr std::uint64_t mix(std::uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/// A value: the readable head "T|a|b|" and then `len` bytes (any byte, NULs
/// included) derived from (tag, a, b). Equal inputs give equal values; any
/// torn, truncated or foreign value differs from the one recomputed from its
/// head.
std::string make_value(char tag, std::uint64_t a, std::uint64_t b, std::size_t len)
{
    std::string v;
    v.reserve(48 + len);
    v += tag;
    v += '|';
    v += std::to_string(a);
    v += '|';
    v += std::to_string(b);
    v += '|';
    const std::uint64_t seed = mix((a << 24) ^ b ^ (std::uint64_t(static_cast<unsigned char>(tag)) << 56));
    for (std::size_t i = 0; i < len; i += 8) {
        const std::uint64_t r = mix(seed + i);
        for (std::size_t j = 0; j < 8 && i + j < len; ++j) v += static_cast<char>(r >> (8 * j));
    }
    return v;
}

/// Value lengths: mostly short, some hundreds of bytes, 1 in 32 a few KiB
/// (so records fill tables quickly: growth and compaction happen often).
std::size_t value_length(std::uint64_t h)
{
    switch (h % 32) {
    case 0: return 2048 + (h >> 8) % 4096;
    case 1: case 2: case 3: case 4: case 5: case 6: return 200 + (h >> 8) % 1300;
    default: return (h >> 8) % 200;
    }
}

/// Parses the head of a make_value() value.
bool parse_head(std::string_view v, char tag, std::uint64_t& a, std::uint64_t& b)
{
    if (v.size() < 6 || v[0] != tag || v[1] != '|') return false;
    std::size_t i = 2;
    const auto number = [&](std::uint64_t& out) {
        const std::size_t start = i;
        out = 0;
        while (i < v.size() && v[i] >= '0' && v[i] <= '9' && i - start < 19) out = out * 10 + std::uint64_t(v[i++] - '0');
        if (i == start || i >= v.size() || v[i] != '|') return false;
        ++i;
        return true;
    };
    return number(a) && number(b);
}

/// The first bytes of a value, printable, for messages.
std::string show(const std::optional<std::string>& v)
{
    if (!v) return "(absent)";
    std::string s = "\"";
    for (std::size_t i = 0; i < v->size() && i < 40; ++i) {
        const unsigned char c = static_cast<unsigned char>((*v)[i]);
        if (c >= 32 && c < 127) {
            s += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            s += hex;
        }
    }
    return s + (v->size() > 40 ? "...\" (" + std::to_string(v->size()) + " bytes)" : "\"");
}

/// Broken promises seen by children, reported to the parent in shared memory.
struct violation_log {
    std::atomic<std::uint64_t> count;
    char first[512];

    void report(const std::string& what)
    {
        if (count.fetch_add(1) == 0) std::snprintf(first, sizeof first, "[pid %d] %s", int(::getpid()), what.c_str());
    }
};

/// Runs a child's body; an exception is reported (and its word set to 2 and
/// woken, so a parent waiting for "started" learns of it at once).
int guarded(violation_log* log, std::atomic<std::uint32_t>* started, const std::function<int()>& body)
{
    try {
        return body();
    } catch (const std::exception& e) {
        log->report(std::string("exception: ") + e.what());
    }
    if (started) {
        started->store(2);
        shmkit::sync::futex_wake(*started);
    }
    return 97;
}

void signal_started(std::atomic<std::uint32_t>& word)
{
    word.store(1);
    shmkit::sync::futex_wake(word);
}

/// Waits (futex, bounded) until `word` is set; true if it became 1 (started),
/// false on timeout or 2 (the child failed before it started).
bool wait_started(const std::atomic<std::uint32_t>& word, std::chrono::seconds limit = 20s)
{
    const auto deadline = shmkit::deadline_clock::now() + limit;
    while (word.load() == 0)
        if (shmkit::sync::futex_wait_until(word, 0, deadline) == shmkit::sync::wait_result::timed_out) break;
    return word.load() == 1;
}

/// Releases children blocked in go.receive() all at once: EOF on the pipe.
void release(test::pipe_pair& go)
{
    ::close(go.wr);
    go.wr = -1;
}

/// Does one put through a fresh handle in a child, bounded in time: a
/// writer that cannot get the lock is a timeout (-1), not a hung test.
int bounded_put(const std::string& name, const std::string& key, const std::string& value)
{
    test::child c([&] {
        kv_store s(name);
        s.put(key, value);
        return s.get(key) == value ? 0 : 1;
    });
    return c.wait(20s);
}

} // namespace

// ---- 1. Mixed writers on overlapping keys ---------------------------------------

namespace mixed {

constexpr int procs = 4;
constexpr std::uint32_t keys = 2000;
constexpr std::uint32_t ops = 20000;
constexpr std::uint32_t finals = 200; // each process's own keys, written last

enum class kind { put, erase, get };
struct op {
    std::uint32_t key;
    kind what;
    std::uint64_t hash;
};

/// Operation `seq` of writer `w`: fixed, so that anyone can tell whether a
/// value (w, seq) was ever written, and to which key.
op op_of(std::uint32_t w, std::uint32_t seq)
{
    const std::uint64_t h = mix((std::uint64_t(w) << 32) | seq);
    const unsigned r = static_cast<unsigned>((h >> 20) % 100);
    return {static_cast<std::uint32_t>(h % keys), r < 55 ? kind::put : r < 75 ? kind::erase : kind::get, h};
}

std::string key(std::uint32_t k) { return "shared-" + std::to_string(k); }
std::string value(std::uint32_t w, std::uint32_t seq) { return make_value('S', w, seq, value_length(op_of(w, seq).hash >> 24)); }
std::string final_key(std::uint32_t w, std::uint32_t i) { return "final-" + std::to_string(w) + "-" + std::to_string(i); }
std::string final_value(std::uint32_t w, std::uint32_t i) { return make_value('F', w, i, value_length(mix(w * 1000 + i))); }

struct board {
    std::atomic<std::uint32_t> progress[procs]; ///< the operation each writer is at (or past)
    violation_log log;
};

/// Checks a value read for key k: one some writer wrote for k, not from the
/// future, and not older (per writer) than one this process saw before.
/// `last[k * procs + w]`: the newest sequence of writer w this process has
/// seen (or written, or erased) for key k.
void observe(board* b, std::vector<std::int64_t>& last, std::uint32_t k, const std::optional<std::string>& got,
             const char* where)
{
    if (!got) return;
    std::uint64_t w = 0, seq = 0;
    if (!parse_head(*got, 'S', w, seq) || w >= procs || seq >= ops) {
        b->log.report(std::string(where) + ": " + key(k) + " holds a value nobody wrote: " + show(got));
        return;
    }
    const op o = op_of(static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(seq));
    if (o.key != k || o.what != kind::put) {
        b->log.report(std::string(where) + ": " + key(k) + " holds the value of another key: " + show(got));
        return;
    }
    if (*got != value(static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(seq))) {
        b->log.report(std::string(where) + ": " + key(k) + " holds a torn value: " + show(got));
        return;
    }
    if (seq > b->progress[w].load()) b->log.report(std::string(where) + ": value from the future: " + show(got));
    std::int64_t& l = last[k * procs + w];
    if (static_cast<std::int64_t>(seq) < l)
        b->log.report(std::string(where) + ": " + key(k) + " went back in time: writer " + std::to_string(w) +
                      " seq " + std::to_string(seq) + " after seq " + std::to_string(l));
    l = std::max(l, static_cast<std::int64_t>(seq));
}

void check_view(board* b, std::vector<std::int64_t>& last, const std::string& k, const std::string& v,
                const char* where)
{
    if (k.rfind("shared-", 0) == 0) {
        const unsigned long n = std::stoul(k.substr(7));
        if (n >= keys || key(static_cast<std::uint32_t>(n)) != k) {
            b->log.report(std::string(where) + ": unknown key " + k);
            return;
        }
        observe(b, last, static_cast<std::uint32_t>(n), v, where);
    } else if (k.rfind("final-", 0) == 0) {
        std::uint64_t w = 0, i = 0;
        if (!parse_head(v, 'F', w, i) || w >= procs || i >= finals || final_key(std::uint32_t(w), std::uint32_t(i)) != k ||
            final_value(std::uint32_t(w), std::uint32_t(i)) != v)
            b->log.report(std::string(where) + ": bad final value under " + k + ": " + show(v));
    } else {
        b->log.report(std::string(where) + ": unknown key " + show(k));
    }
}

int worker(const std::string& name, board* b, std::uint32_t w, const test::pipe_pair& go)
{
    kv_store s(name);
    ::close(go.wr);
    go.receive();
    std::vector<std::int64_t> last(std::size_t(keys) * procs, -1);
    std::string buf;
    for (std::uint32_t seq = 0; seq < ops; ++seq) {
        b->progress[w].store(seq);
        if (seq % 1024 == 1023) test::child::made_progress(); // the parent waits longer than the alarm
        const op o = op_of(w, seq);
        const std::string k = key(o.key);
        switch (o.what) {
        case kind::put: {
            s.put(k, value(w, seq));
            last[o.key * procs + w] = seq;
            // Read your write: this value or a later one (another writer's).
            const auto got = s.get(k);
            observe(b, last, o.key, got, "read-back");
            if (got && got->compare(0, 2 + std::to_string(w).size() + 1, "S|" + std::to_string(w) + "|") == 0 &&
                *got != value(w, seq))
                b->log.report("read-back: " + k + " holds another value of this writer: " + show(got));
            break;
        }
        case kind::erase:
            s.erase(k);
            last[o.key * procs + w] = seq; // an older value of ours can no longer be read
            break;
        case kind::get:
            if (seq & 1) {
                observe(b, last, o.key, s.get(k), "get");
            } else {
                const bool found = s.get(k, buf);
                observe(b, last, o.key, found ? std::optional<std::string>(buf) : std::nullopt, "get(out)");
            }
            break;
        }
        if (seq % 2500 == 2499) {
            const auto all = s.get_all();
            for (const auto& [k2, v2] : all) check_view(b, last, k2, v2, "get_all");
        }
        if (seq % 5000 == 4999) {
            std::size_t n = 0;
            s.visit([&](std::string_view k2, std::string_view v2) {
                check_view(b, last, std::string(k2), std::string(v2), "visit");
                ++n;
            });
            if (n > keys + procs * finals) b->log.report("visit: more entries than keys");
        }
    }
    b->progress[w].store(ops);
    for (std::uint32_t i = 0; i < finals; ++i) s.put(final_key(w, i), final_value(w, i));
    for (std::uint32_t i = 0; i < finals; ++i)
        if (s.get(final_key(w, i)) != final_value(w, i)) b->log.report("final value not read back: " + final_key(w, i));
    return 0;
}

} // namespace mixed

BOOST_AUTO_TEST_CASE(four_processes_mixing_puts_gets_and_erases_read_only_written_values, *utf::timeout(300))
{
    using namespace mixed;
    store_name name("mixed");
    kv_store s(name.str());
    auto* b = test::shared_scratch<board>();
    test::pipe_pair go;
    std::vector<std::unique_ptr<test::child>> kids;
    for (std::uint32_t w = 0; w < procs; ++w)
        kids.push_back(std::make_unique<test::child>([&, w] { return guarded(&b->log, nullptr, [&] { return worker(name.str(), b, w, go); }); }));
    release(go);
    for (auto& k : kids) BOOST_TEST(k->wait(240s) == 0);
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);

    std::string why;
    BOOST_TEST(s.check(&why), why);
    const auto all = s.get_all();
    // Each key's final state is the last write of some writer: a value
    // (w, seq) only if seq is w's last write to it; absent only if some
    // writer's last write to it is an erase (or nobody wrote it).
    struct last_write {
        std::int64_t seq = -1;
        kind what = kind::get;
    };
    std::vector<last_write> lw(std::size_t(keys) * procs);
    for (std::uint32_t w = 0; w < procs; ++w)
        for (std::uint32_t seq = 0; seq < ops; ++seq) {
            const op o = op_of(w, seq);
            if (o.what != kind::get) lw[o.key * procs + w] = {seq, o.what};
        }
    std::size_t shared_present = 0, bad = 0;
    for (std::uint32_t k = 0; k < keys; ++k) {
        const auto it = all.find(key(k));
        const auto got = s.get(key(k));
        if ((it == all.end()) != !got || (got && *got != it->second)) {
            if (bad++ < 10) BOOST_TEST(false, key(k) << ": get() " << show(got) << " and get_all() disagree");
            continue;
        }
        if (got) {
            ++shared_present;
            std::uint64_t w = 0, seq = 0;
            const bool ok = parse_head(*got, 'S', w, seq) && w < procs && lw[k * procs + w].what == kind::put &&
                            lw[k * procs + w].seq == static_cast<std::int64_t>(seq) && *got == value(std::uint32_t(w), std::uint32_t(seq));
            if (!ok && bad++ < 10) BOOST_TEST(false, key(k) << " ends with " << show(got) << ", not a last write");
        } else {
            bool written = false, erased_last = false;
            for (std::uint32_t w = 0; w < procs; ++w) {
                written = written || lw[k * procs + w].seq >= 0;
                erased_last = erased_last || lw[k * procs + w].what == kind::erase;
            }
            if (written && !erased_last && bad++ < 10) BOOST_TEST(false, key(k) << " is absent but nobody's last write erased it");
        }
    }
    BOOST_TEST(bad == 0u);
    for (std::uint32_t w = 0; w < procs; ++w)
        for (std::uint32_t i = 0; i < finals; ++i) {
            const auto it = all.find(final_key(w, i));
            if (it == all.end() || it->second != final_value(w, i)) {
                BOOST_TEST(false, final_key(w, i) << " missing or wrong");
                break;
            }
        }
    BOOST_TEST(all.size() == shared_present + procs * finals);
    BOOST_TEST(s.size() == all.size());
    const auto st = s.stats();
    BOOST_TEST(st.entries == all.size());
    BOOST_TEST(st.lock_recoveries == 0u);
    BOOST_TEST(st.repairs == 0u);
    BOOST_TEST_MESSAGE("mixed: " << all.size() << " entries, grows " << st.grows << ", capacity " << st.table_capacity);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

// ---- 2. Growth while others read and write ----------------------------------------

namespace growth {

constexpr int writers = 2, readers = 2;
constexpr std::int64_t per_writer = 100000;

std::string key(std::uint64_t w, std::uint64_t i) { return "grow-" + std::to_string(w) + "-" + std::to_string(i); }
std::string value(std::uint64_t w, std::uint64_t i) { return make_value('G', w, i, mix(w << 40 | i) % 48); }

struct board {
    std::atomic<std::int64_t> committed[writers]; ///< highest index whose put has returned (-1: none)
    std::atomic<std::uint32_t> writers_done;
    std::atomic<std::uint64_t> gets_during_writes[readers];
    std::atomic<std::uint64_t> generations_seen[readers];
    violation_log log;
};

int writer(const std::string& name, board* b, int w, const test::pipe_pair& go)
{
    kv_store s(name);
    ::close(go.wr);
    go.receive();
    std::mt19937_64 rng(static_cast<std::uint64_t>(w) + 1);
    for (std::int64_t i = 0; i < per_writer; ++i) {
        s.put(key(w, i), value(w, i));
        b->committed[w].store(i, std::memory_order_release);
        if (i % 1024 == 1023) test::child::made_progress(); // the parent waits longer than the alarm
        if (i % 64 == 0) { // the writer reads too (its own and the other's)
            const int o = static_cast<int>(rng() % writers);
            const std::int64_t hi = b->committed[o].load(std::memory_order_acquire);
            if (hi >= 0) {
                const std::int64_t j = static_cast<std::int64_t>(rng() % std::uint64_t(hi + 1));
                const auto got = s.get(key(o, j));
                if (got != value(o, j)) b->log.report("writer: committed " + key(o, j) + " read as " + show(got));
            }
        }
    }
    b->writers_done.fetch_add(1);
    return 0;
}

int reader(const std::string& name, board* b, int r, const test::pipe_pair& go)
{
    kv_store s(name);
    ::close(go.wr);
    go.receive();
    std::mt19937_64 rng(static_cast<std::uint64_t>(r) + 100);
    std::string buf;
    std::uint64_t gets = 0, generation = 0, generations = 0;
    std::size_t last_size = 0;
    while (b->writers_done.load() < writers) {
        const int w = static_cast<int>(rng() % writers);
        const std::int64_t hi = b->committed[w].load(std::memory_order_acquire);
        if (hi < 0) continue;
        std::int64_t i = hi; // the newest half the time: the key most likely to be in flight
        switch (rng() % 4) {
        case 0: i = static_cast<std::int64_t>(rng() % std::uint64_t(hi + 1)); break;
        case 1: i = std::max<std::int64_t>(0, hi - static_cast<std::int64_t>(rng() % 256)); break;
        default: break;
        }
        const bool found = (gets & 1) ? s.get(key(w, i), buf) : [&] {
            auto v = s.get(key(w, i));
            if (v) buf = std::move(*v);
            return v.has_value();
        }();
        if (!found) {
            b->log.report("reader: committed " + key(w, i) + " (committed up to " + std::to_string(hi) + ") missing");
        } else if (buf != value(w, i)) {
            b->log.report("reader: committed " + key(w, i) + " read as " + show(buf));
        }
        ++gets;
        if (gets % 512 == 0) {
            test::child::made_progress(); // the parent waits longer than the alarm
            // size(): every committed put counted, and it never shrinks here (inserts only).
            const std::int64_t floor = b->committed[0].load() + b->committed[1].load() + 2;
            const std::size_t n = s.size();
            if (static_cast<std::int64_t>(n) < floor)
                b->log.report("reader: size() " + std::to_string(n) + " below the " + std::to_string(floor) + " committed");
            if (n < last_size) b->log.report("reader: size() went down from " + std::to_string(last_size) + " to " + std::to_string(n));
            last_size = n;
            const std::uint64_t g = s.stats().generation;
            if (g < generation) b->log.report("reader: table generation went back");
            if (g != generation) ++generations;
            generation = g;
        }
    }
    b->gets_during_writes[r].store(gets);
    b->generations_seen[r].store(generations);
    // Everything is committed now: one full pass.
    for (int w = 0; w < writers; ++w)
        for (std::int64_t i = 0; i < per_writer; ++i)
            if (!s.get(key(w, i), buf) || buf != value(w, i)) {
                b->log.report("reader, final pass: " + key(w, i) + " missing or wrong");
                return 1;
            }
    return 0;
}

} // namespace growth

BOOST_AUTO_TEST_CASE(readers_never_miss_a_committed_key_while_writers_grow_the_table, *utf::timeout(300))
{
    using namespace growth;
    store_name name("growth");
    kv_store s(name.str());
    BOOST_TEST(s.empty());
    BOOST_TEST(s.stats().generation == 0u);
    auto* b = test::shared_scratch<board>();
    for (auto& c : b->committed) c.store(-1);
    test::pipe_pair go;
    std::vector<std::unique_ptr<test::child>> kids;
    for (int r = 0; r < readers; ++r)
        kids.push_back(std::make_unique<test::child>([&, r] { return guarded(&b->log, nullptr, [&] { return reader(name.str(), b, r, go); }); }));
    for (int w = 0; w < writers; ++w)
        kids.push_back(std::make_unique<test::child>([&, w] { return guarded(&b->log, nullptr, [&] { return writer(name.str(), b, w, go); }); }));
    release(go);
    for (auto& k : kids) BOOST_TEST(k->wait(240s) == 0);
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);

    const auto st = s.stats();
    BOOST_TEST(st.grows >= 3u);
    BOOST_TEST(st.entries == std::size_t(writers * per_writer));
    BOOST_TEST(s.size() == std::size_t(writers * per_writer));
    std::string why;
    BOOST_TEST(s.check(&why), why);
    for (int w = 0; w < writers; ++w)
        for (std::int64_t i = 0; i < per_writer; i += 997) BOOST_TEST((s.get(key(w, i)) == value(w, i)), key(w, i));
    // The readers really read while the table grew.
    std::uint64_t generations = 0;
    for (int r = 0; r < readers; ++r) {
        BOOST_TEST(b->gets_during_writes[r].load() > 0u);
        generations += b->generations_seen[r].load();
    }
    BOOST_TEST(generations >= 2u);
    BOOST_TEST(table_names(name.str()) == 1u); // old tables' names are gone
    BOOST_TEST_MESSAGE("growth: grows " << st.grows << ", capacity " << st.table_capacity << ", reader gets "
                                        << b->gets_during_writes[0].load() << " + " << b->gets_during_writes[1].load()
                                        << ", generations seen " << generations);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

// ---- 3. Creation races ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(eight_processes_creating_one_store_at_once_all_succeed, *utf::timeout(300))
{
    constexpr int procs = 8;
    const int rounds = sanitized ? 8 : 25;
    auto* log = test::shared_scratch<violation_log>();
    for (int round = 0; round < rounds; ++round) {
        BOOST_TEST_CONTEXT("round " << round)
        {
            store_name name("create");
            test::pipe_pair go;
            std::vector<std::unique_ptr<test::child>> kids;
            for (int w = 0; w < procs; ++w)
                kids.push_back(std::make_unique<test::child>([&, w] {
                    ::close(go.wr);
                    go.receive();
                    return guarded(log, nullptr, [&] {
                        kv_store s(name.str());
                        const std::string k = "racer-" + std::to_string(w);
                        s.put(k, make_value('C', w, round, 64));
                        if (s.get(k) != make_value('C', w, round, 64)) return 1;
                        std::string why;
                        if (!s.check(&why)) {
                            log->report("check() in a racer: " + why);
                            return 2;
                        }
                        return 0;
                    });
                }));
            release(go);
            for (auto& k : kids) BOOST_TEST(k->wait() == 0);
            kv_store s(name.str());
            BOOST_TEST(s.size() == std::size_t(procs));
            for (int w = 0; w < procs; ++w)
                BOOST_TEST((s.get("racer-" + std::to_string(w)) == make_value('C', w, round, 64)), "racer-" << w);
            std::string why;
            BOOST_TEST(s.check(&why), why);
            BOOST_TEST(shm_entries(name.str()) == 2u); // the root and one table, nothing half-made
            BOOST_TEST(kv_store::remove(name.str()));
        }
    }
    BOOST_TEST(log->count.load() == 0u, "first violation: " << log->first);
}

namespace excl {

struct board {
    std::atomic<std::uint32_t> stop;
    std::atomic<std::uint32_t> started;
    std::atomic<std::uint64_t> holder_puts;
    violation_log log;
};

std::string holder_value(std::uint64_t i) { return make_value('H', 0, i, value_length(mix(i))); }
std::string opener_value(std::uint64_t w) { return make_value('X', w, 0, 100); }

} // namespace excl

BOOST_AUTO_TEST_CASE(exclusive_openers_racing_beside_a_writer_each_get_a_usable_store, *utf::timeout(300))
{
    using namespace excl;
    constexpr int openers = 4;
    const int rounds = sanitized ? 4 : 12;
    auto* b = test::shared_scratch<board>();
    for (int round = 0; round < rounds; ++round) {
        BOOST_TEST_CONTEXT("round " << round)
        {
            store_name name("excl");
            b->stop.store(0);
            b->started.store(0);
            // The holder: attached before and throughout, putting and reading back.
            test::child holder([&] {
                return guarded(&b->log, &b->started, [&] {
                    kv_store s(name.str());
                    s.put("sentinel", "put before the exclusive openers came");
                    signal_started(b->started);
                    std::uint64_t i = 0;
                    for (; b->stop.load() == 0; ++i) {
                        const std::string k = "h-" + std::to_string(i % 512); // bounded: the store stays small
                        s.put(k, holder_value(i % 512));
                        const auto got = s.get(k);
                        if (got && *got != holder_value(i % 512)) b->log.report("holder: " + k + " read as " + show(got));
                    }
                    b->holder_puts.fetch_add(i);
                    // At least one opener emptied the store after the sentinel was put.
                    if (s.contains("sentinel")) {
                        b->log.report("holder: the sentinel survived every exclusive open");
                        return 1;
                    }
                    s.put("h-final", holder_value(~0ull));
                    return s.get("h-final") == holder_value(~0ull) ? 0 : 2;
                });
            });
            BOOST_REQUIRE(wait_started(b->started));
            test::pipe_pair go; // made after the holder was forked: only the openers and we hold its write end
            std::vector<std::unique_ptr<test::child>> kids;
            for (int w = 0; w < openers; ++w)
                kids.push_back(std::make_unique<test::child>([&, w] {
                    ::close(go.wr);
                    go.receive();
                    return guarded(&b->log, nullptr, [&] {
                        kv_store s(name.str(), shmkit::exclusive);
                        if (s.name() != name.str()) return 1;
                        const std::string k = "x-" + std::to_string(w);
                        s.put(k, opener_value(w));
                        const auto got = s.get(k); // absent if a later opener emptied it meanwhile
                        if (got && *got != opener_value(w)) return 2;
                        std::string why;
                        if (!s.check(&why)) {
                            b->log.report("check() in an exclusive opener: " + why);
                            return 3;
                        }
                        return 0;
                    });
                }));
            release(go);
            for (auto& k : kids) BOOST_TEST(k->wait() == 0);
            b->stop.store(1);
            BOOST_TEST(holder.wait() == 0);

            kv_store s(name.str());
            std::string why;
            BOOST_TEST(s.check(&why), why);
            BOOST_TEST(!s.contains("sentinel"));
            BOOST_TEST((s.get("h-final") == holder_value(~0ull)), show(s.get("h-final")));
            int openers_left = 0;
            const auto all = s.get_all();
            for (const auto& [k, v] : all) {
                if (k.rfind("x-", 0) == 0) {
                    ++openers_left;
                    BOOST_TEST((v == opener_value(std::stoul(k.substr(2)))), k << ": " << show(v));
                } else if (k.rfind("h-", 0) == 0 && k != "h-final") {
                    BOOST_TEST((v == holder_value(std::stoull(k.substr(2)))), k << ": " << show(v));
                } else {
                    BOOST_TEST((k == "h-final"), "unexpected key " << show(k));
                }
            }
            // The last opener to empty the store put its key afterwards.
            BOOST_TEST(openers_left >= 1);
            BOOST_TEST(s.size() == all.size());
            BOOST_TEST(kv_store::remove(name.str()));
        }
    }
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);
    BOOST_TEST_MESSAGE("exclusive: holder puts " << b->holder_puts.load());
}

BOOST_AUTO_TEST_CASE(exclusive_and_plain_openers_racing_at_creation, *utf::timeout(300))
{
    const int rounds = sanitized ? 4 : 12;
    auto* log = test::shared_scratch<violation_log>();
    for (int round = 0; round < rounds; ++round) {
        BOOST_TEST_CONTEXT("round " << round)
        {
            store_name name("excl-create");
            test::pipe_pair go;
            std::vector<std::unique_ptr<test::child>> kids;
            for (int w = 0; w < 8; ++w)
                kids.push_back(std::make_unique<test::child>([&, w] {
                    ::close(go.wr);
                    go.receive();
                    return guarded(log, nullptr, [&] {
                        auto s = w % 2 ? kv_store(name.str(), shmkit::exclusive) : kv_store(name.str());
                        const std::string k = "o-" + std::to_string(w);
                        s.put(k, make_value('O', w, 0, 32));
                        const auto got = s.get(k);
                        if (got && *got != make_value('O', w, 0, 32)) return 1;
                        return s.check() ? 0 : 2;
                    });
                }));
            release(go);
            for (auto& k : kids) BOOST_TEST(k->wait() == 0);
            kv_store s(name.str());
            std::string why;
            BOOST_TEST(s.check(&why), why);
            const auto all = s.get_all();
            BOOST_TEST(all.size() >= 1u); // the last exclusive opener's own key at least
            for (const auto& [k, v] : all) BOOST_TEST((v == make_value('O', std::stoul(k.substr(2)), 0, 32)), show(k) << ": " << show(v));
            BOOST_TEST(kv_store::remove(name.str()));
        }
    }
    BOOST_TEST(log->count.load() == 0u, "first violation: " << log->first);
}

// ---- 4. Writers killed at random points --------------------------------------------

namespace kills {

constexpr int keys = 3000;

/// The model of the store, beside it in shared memory. A writer records its
/// intent (key, new version or 0 for erase) before each update and the
/// commit (model[key]) after it, then clears the intent; after a kill the
/// in-flight key may hold the old or the new state, every other key exactly
/// the model's.
struct board {
    std::atomic<std::uint32_t> started[2];
    std::atomic<std::uint32_t> stop[2];
    std::atomic<std::uint32_t> intent_key[2]; ///< key + 1; 0: no update in flight
    std::atomic<std::uint32_t> intent_version[2];
    std::atomic<std::uint32_t> next_version;
    std::atomic<std::uint64_t> ops[2];
    violation_log log;
    std::atomic<std::uint32_t> model[keys]; ///< committed version; 0: absent
};

/// Keys of varied lengths, some with a NUL inside.
std::string key(int k)
{
    std::string s = "kk" + std::to_string(k);
    if (k % 5 == 0) s += std::string("\0z", 2);
    return s + std::string(static_cast<std::size_t>(k % 11), 'p');
}

std::string value(int k, std::uint32_t v) { return make_value('K', static_cast<std::uint64_t>(k), v, value_length(mix(std::uint64_t(k) << 32 | v))); }

using key_fn = std::string (*)(int);
using value_fn = std::string (*)(int, std::uint32_t);

bool holds(const std::optional<std::string>& got, int k, std::uint32_t v, value_fn vf = value)
{
    return v == 0 ? !got : got && *got == vf(k, v);
}

/// A writer: random puts (new versions), erases and reads in [lo, hi), each
/// checked against the model, forever; after stop[slot], 200 more
/// operations and a check of its whole range.
int writer(const std::string& name, board* b, int slot, int lo, int hi)
{
    kv_store s(name);
    std::mt19937_64 rng(mix(static_cast<std::uint64_t>(::getpid()) << 8 | static_cast<std::uint64_t>(slot)));
    std::string buf;
    int after_stop = -1;
    for (std::uint64_t n = 0;; ++n) {
        if (after_stop < 0 && b->stop[slot].load()) after_stop = 200;
        if (after_stop == 0) {
            for (int k = lo; k < hi; ++k)
                if (!holds(s.get(key(k)), k, b->model[k].load())) {
                    b->log.report("writer at stop: " + key(k) + " does not hold version " + std::to_string(b->model[k].load()));
                    return 1;
                }
            return 0;
        }
        if (after_stop > 0) --after_stop;
        const int k = lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo));
        const std::string kk = key(k);
        const std::uint32_t cur = b->model[k].load();
        const unsigned r = static_cast<unsigned>(rng() % 100);
        if (r < 10) {
            const bool found = s.get(kk, buf);
            if (!holds(found ? std::optional<std::string>(buf) : std::nullopt, k, cur))
                b->log.report("writer: " + show(kk) + " does not hold version " + std::to_string(cur) + ": " +
                              show(found ? std::optional<std::string>(buf) : std::nullopt));
        } else if (r < 30) {
            b->intent_version[slot].store(0);
            b->intent_key[slot].store(static_cast<std::uint32_t>(k) + 1);
            const bool had = s.erase(kk);
            if (had != (cur != 0)) b->log.report("writer: erase(" + show(kk) + ") returned " + (had ? "true" : "false"));
            b->model[k].store(0);
            b->intent_key[slot].store(0);
        } else {
            const std::uint32_t v = b->next_version.fetch_add(1) + 1;
            const std::string val = value(k, v);
            b->intent_version[slot].store(v);
            b->intent_key[slot].store(static_cast<std::uint32_t>(k) + 1);
            s.put(kk, val);
            b->model[k].store(v);
            b->intent_key[slot].store(0);
        }
        b->ops[slot].fetch_add(1, std::memory_order_relaxed);
        if (n == 0) signal_started(b->started[slot]);
        if (n % 1024 == 1023) test::child::made_progress(); // writer B lives through every round
    }
}

/// After writer `slot` died: every key of [lo, hi) holds its model version,
/// the in-flight one its old or its new; the model then takes what the
/// in-flight key holds and the intent is cleared. So a later verify (after
/// check() or another writer repaired the store) requires the in-flight key
/// to hold what it was first seen to hold: a dead writer's update is done or
/// not, and stays so (the header: "A writer killed before [the commit point]
/// leaves the store as it was; after it, done"). Returns the number of keys
/// that are wrong (at most 5 reported).
int verify(const kv_store& s, board* b, int slot, int lo, int hi, key_fn kf = key, value_fn vf = value)
{
    const int in = static_cast<int>(b->intent_key[slot].load()) - 1;
    const std::uint32_t iv = b->intent_version[slot].load();
    int bad = 0;
    for (int k = lo; k < hi; ++k) {
        const auto got = s.get(kf(k));
        const std::uint32_t cur = b->model[k].load();
        if (holds(got, k, cur, vf)) continue;
        if (k == in && holds(got, k, iv, vf)) {
            b->model[k].store(iv);
            continue;
        }
        if (bad++ < 5)
            BOOST_TEST(false, "key " << k << " " << show(kf(k)) << ": expected version " << cur
                                     << (k == in ? " or the in-flight " + std::to_string(iv) : std::string()) << ", found "
                                     << show(got));
    }
    b->intent_key[slot].store(0);
    return bad;
}

std::size_t model_entries(const board* b)
{
    std::size_t n = 0;
    for (int k = 0; k < keys; ++k) n += b->model[k].load() != 0;
    return n;
}

} // namespace kills

BOOST_AUTO_TEST_CASE(writers_killed_at_random_points_lose_no_committed_data, *utf::timeout(600))
{
    using namespace kills;
    // 1 in 10 rounds kills without waiting for the writer to start: those
    // land in fork, open and attach.
    const int kill_rounds = sanitized ? 160 : 600;
    store_name name("kill");
    kv_store s(name.str());
    auto* b = test::shared_scratch<board>();
    std::mt19937 rng(20240601);
    int killed = 0, killed_working = 0, bad_total = 0, mid_growth = 0, checks = 0;
    for (int round = 0; round < kill_rounds && bad_total == 0 && b->log.count.load() == 0; ++round) {
        b->started[0].store(0);
        test::child w([&] { return guarded(&b->log, &b->started[0], [&] { return writer(name.str(), b, 0, 0, keys); }); });
        const bool early = round % 10 == 9;
        if (!early) BOOST_REQUIRE_MESSAGE(wait_started(b->started[0]), "writer of round " << round << " never started: " << b->log.first);
        // Where the kill lands is random; nothing waits on this sleep.
        std::this_thread::sleep_for(std::chrono::microseconds(early ? rng() % 3000 : rng() % 4000));
        w.kill();
        const int rc = w.wait();
        BOOST_TEST_REQUIRE(rc == 128 + SIGKILL, "round " << round << ": the writer ended with " << rc);
        ++killed;
        killed_working += !early;
        // A kill between linking a new table's name and retiring the old
        // one's leaves two names (a table being built has none yet).
        mid_growth += table_names(name.str()) > 1;

        // Lock-free reads see every committed value at once, before any repair.
        const int bad = verify(s, b, 0, 0, keys);
        bad_total += bad;
        BOOST_TEST_REQUIRE(bad == 0, "round " << round << ": committed data damaged by the kill");
        const std::size_t n = model_entries(b);
        const std::size_t sz = s.size();
        BOOST_TEST((sz + 1 >= n && sz <= n + 1), "round " << round << ": size() " << sz << ", " << n << " stored");
        // Two rounds in three, check() repairs; in the third the next writer does.
        if (round % 3 != 2) {
            std::string why;
            BOOST_TEST_REQUIRE(s.check(&why), "round " << round << ": check() after the kill: " << why);
            ++checks;
            BOOST_TEST_REQUIRE(s.size() == n, "round " << round);
            BOOST_TEST_REQUIRE(s.stats().entries == n, "round " << round);
            const auto gen = s.stats().generation;
            BOOST_TEST_REQUIRE(table_names(name.str()) == (gen != 0 ? 1u : 0u),
                               "round " << round << ": table names left behind after check()");
            // Fails (rarely here; see an_overwrite_cut_short_by_a_kill_...) when
            // the repair finishes an overwrite the store was showing as not done.
            BOOST_TEST_REQUIRE(verify(s, b, 0, 0, keys) == 0, "round " << round << ": check() changed what the store showed");
        }
    }
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);
    BOOST_TEST(killed == kill_rounds);
    BOOST_TEST(killed_working >= (sanitized ? 144 : 540));

    std::string why;
    BOOST_TEST(s.check(&why), why);
    const auto all = s.get_all();
    BOOST_TEST(all.size() == model_entries(b));
    for (int k = 0; k < keys; ++k) {
        const auto it = all.find(key(k));
        if (!holds(it == all.end() ? std::nullopt : std::optional<std::string>(it->second), k, b->model[k].load())) {
            BOOST_TEST(false, "get_all(): key " << k << " wrong");
            break;
        }
    }
    // A fresh writer works normally on the repaired store.
    BOOST_TEST(bounded_put(name.str(), "after", "the kills") == 0);
    BOOST_TEST(s.get("after") == std::string("the kills"));
    const auto st = s.stats();
    BOOST_TEST(st.repairs > 0u);
    BOOST_TEST(st.lock_recoveries > 0u);
    BOOST_TEST(st.lock_recoveries <= std::uint64_t(killed)); // only the dead are recovered from
    BOOST_TEST(st.grows > 0u);
    BOOST_TEST(s.check(&why), why);
    BOOST_TEST_MESSAGE("kills " << killed << " (" << killed_working << " while working), writer ops " << b->ops[0].load()
                                << ", kills leaving two table names " << mid_growth << ", check() calls " << checks
                                << ", lock recoveries " << st.lock_recoveries << ", repairs " << st.repairs
                                << ", grows " << st.grows << ", entries " << st.entries << ", capacity "
                                << st.table_capacity << ", mapped " << st.bytes_mapped);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

BOOST_AUTO_TEST_CASE(a_writer_waiting_for_a_killed_writers_lock_takes_it_over, *utf::timeout(600))
{
    // Writer B runs throughout on its half of the keys; writer A, on the
    // other half, is killed again and again (nobody calls check() between):
    // B, usually waiting for A's lock at the time, must take it over and go on.
    using namespace kills;
    const int kill_rounds = sanitized ? 40 : 120;
    constexpr int half = keys / 2;
    store_name name("takeover");
    kv_store s(name.str());
    auto* b = test::shared_scratch<board>();
    std::mt19937 rng(777);
    b->started[1].store(0);
    test::child wb([&] { return guarded(&b->log, &b->started[1], [&] { return writer(name.str(), b, 1, half, keys); }); });
    BOOST_REQUIRE(wait_started(b->started[1]));
    int killed = 0;
    for (int round = 0; round < kill_rounds && b->log.count.load() == 0; ++round) {
        b->started[0].store(0);
        test::child wa([&] { return guarded(&b->log, &b->started[0], [&] { return writer(name.str(), b, 0, 0, half); }); });
        BOOST_REQUIRE_MESSAGE(wait_started(b->started[0]), "writer A of round " << round << " never started: " << b->log.first);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        wa.kill();
        BOOST_TEST_REQUIRE(wa.wait() == 128 + SIGKILL);
        ++killed;
        BOOST_TEST_REQUIRE(verify(s, b, 0, 0, half) == 0, "round " << round);
        if (round % 10 == 9) { // check() beside the running writer B
            std::string why;
            BOOST_TEST_REQUIRE(s.check(&why), "round " << round << ": " << why);
        }
    }
    const std::uint64_t b_ops = b->ops[1].load();
    b->stop[1].store(1); // B does 200 more operations, then checks its half
    BOOST_TEST(wb.wait(60s) == 0);
    BOOST_TEST(b->ops[1].load() >= b_ops + 200);
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);

    std::string why;
    BOOST_TEST(s.check(&why), why);
    BOOST_TEST(verify(s, b, 0, 0, half) == 0);
    BOOST_TEST(verify(s, b, 1, half, keys) == 0);
    BOOST_TEST(s.size() == model_entries(b));
    const auto st = s.stats();
    BOOST_TEST(st.lock_recoveries > 0u);
    BOOST_TEST(st.lock_recoveries <= std::uint64_t(killed));
    BOOST_TEST(st.repairs > 0u);
    BOOST_TEST_MESSAGE("takeover: kills " << killed << ", A ops " << b->ops[0].load() << ", B ops " << b->ops[1].load()
                                          << ", lock recoveries " << st.lock_recoveries << ", repairs " << st.repairs
                                          << ", grows " << st.grows);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

namespace overwrite {

constexpr int keys = 64, variants = 8;

std::string key(int k) { return "ow-" + std::to_string(k); }
/// Even keys: values small enough to sit in the key's cell; odd keys: in
/// the arena. Versions v and v + 8 have the same value (only consecutive
/// versions must differ).
std::string value(int k, std::uint32_t v)
{
    return make_value('W', static_cast<std::uint64_t>(k), v % variants, k % 2 ? 100 + std::size_t(k) : std::size_t(k % 7));
}

/// Overwrites only, as fast as it can (values precomputed): the kills land
/// often between the two stores of an overwrite (the new cell filled, the
/// old one not yet erased).
int overwriter(const std::string& name, kills::board* b)
{
    kv_store s(name);
    std::vector<std::string> ks, vs;
    for (int k = 0; k < keys; ++k) {
        ks.push_back(key(k));
        for (int j = 0; j < variants; ++j) vs.push_back(value(k, static_cast<std::uint32_t>(j)));
    }
    std::mt19937 rng(static_cast<unsigned>(::getpid()));
    for (std::uint64_t n = 0;; ++n) {
        const int k = static_cast<int>(rng() % keys);
        const std::uint32_t v = b->model[k].load() + 1;
        b->intent_version[0].store(v);
        b->intent_key[0].store(static_cast<std::uint32_t>(k) + 1);
        s.put(ks[std::size_t(k)], vs[std::size_t(k) * variants + v % variants]);
        b->model[k].store(v);
        b->intent_key[0].store(0);
        b->ops[0].fetch_add(1, std::memory_order_relaxed);
        if (n == 0) signal_started(b->started[0]);
    }
}

} // namespace overwrite

BOOST_AUTO_TEST_CASE(an_overwrite_cut_short_by_a_kill_is_done_or_not_and_stays_so, *utf::timeout(600))
{
    // After each kill: what gets and get_all() show before any repair, and
    // what they show after check() repaired the store, must be the same for
    // every key, the in-flight one included. An implementation that lets
    // lookups find the old cell while the new one is already filled, and
    // whose repair then keeps the new one, fails here.
    //
    // The window: put() overwrites by filling a new cell and then erasing
    // the old one; killed between the two, both cells are live and lookups
    // show the one first in the probe order, which repair() must keep.
    using namespace kills;
    // Each round costs ~10 ms, nearly all of it the lock's liveness poll
    // before the dead writer is taken over; the window aimed at is a few
    // instructions wide: ~1 kill in 900 lands in it.
    const int kill_rounds = sanitized ? 150 : 2000;
    store_name name("overwrite");
    kv_store s(name.str());
    auto* b = test::shared_scratch<board>();
    for (int k = 0; k < overwrite::keys; ++k) {
        s.put(overwrite::key(k), overwrite::value(k, 1));
        b->model[k].store(1);
    }
    std::mt19937 rng(31337);
    int killed = 0, in_flight_done = 0, in_flight_not_done = 0;
    for (int round = 0; round < kill_rounds && b->log.count.load() == 0; ++round) {
        b->started[0].store(0);
        test::child w([&] { return guarded(&b->log, &b->started[0], [&] { return overwrite::overwriter(name.str(), b); }); });
        BOOST_REQUIRE_MESSAGE(wait_started(b->started[0]), "writer of round " << round << " never started: " << b->log.first);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        w.kill();
        BOOST_TEST_REQUIRE(w.wait() == 128 + SIGKILL);
        ++killed;
        const int in = static_cast<int>(b->intent_key[0].load()) - 1;
        const std::uint32_t before_model = in >= 0 ? b->model[in].load() : 0;
        // Before any repair: lock-free gets, then get_all() (which takes the
        // dead writer's lock over, shared, without repairing).
        BOOST_TEST_REQUIRE(verify(s, b, 0, 0, overwrite::keys, overwrite::key, overwrite::value) == 0, "round " << round);
        if (in >= 0) (b->model[in].load() == before_model ? in_flight_not_done : in_flight_done) += 1;
        const auto all = s.get_all();
        BOOST_TEST_REQUIRE(all.size() == std::size_t(overwrite::keys), "round " << round);
        for (int k = 0; k < overwrite::keys; ++k) {
            const auto it = all.find(overwrite::key(k));
            BOOST_TEST_REQUIRE((it != all.end() && it->second == overwrite::value(k, b->model[k].load())),
                               "round " << round << ": get_all() before repair disagrees with get() for key " << k
                                        << (k == in ? " (the in-flight key)" : ""));
        }
        std::string why;
        BOOST_TEST_REQUIRE(s.check(&why), "round " << round << ": " << why);
        // After the repair: the same, exactly.
        BOOST_TEST_REQUIRE(verify(s, b, 0, 0, overwrite::keys, overwrite::key, overwrite::value) == 0,
                           "round " << round << ": the repair changed what the store showed"
                                    << (in >= 0 ? " (in-flight key " + std::to_string(in) + ")" : std::string()));
        BOOST_TEST_REQUIRE(s.size() == std::size_t(overwrite::keys), "round " << round);
    }
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);
    BOOST_TEST(killed == kill_rounds);
    const auto st = s.stats();
    BOOST_TEST(st.lock_recoveries > 0u);
    BOOST_TEST(st.repairs > 0u);
    BOOST_TEST_MESSAGE("overwrite: kills " << killed << ", writer ops " << b->ops[0].load() << ", in flight at the kill: done "
                                           << in_flight_done << ", not done " << in_flight_not_done << ", lock recoveries "
                                           << st.lock_recoveries << ", repairs " << st.repairs << ", grows " << st.grows);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

// ---- 5. Readers killed ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(readers_killed_mid_get_leave_nothing_for_writers_to_recover, *utf::timeout(300))
{
    // Two readers get (lock-free) while the parent writes; they are killed at
    // random points and replaced. Every value they read is a version of its
    // key; afterwards nothing was recovered or repaired: a dead reader holds
    // nothing.
    using namespace kills;
    constexpr int n = 2000;
    const int kill_rounds = sanitized ? 60 : 200;
    store_name name("readers");
    kv_store s(name.str());
    auto* b = test::shared_scratch<board>();
    for (int k = 0; k < n; ++k) {
        const std::uint32_t v = b->next_version.fetch_add(1) + 1;
        s.put(key(k), value(k, v));
        b->model[k].store(v);
    }
    const auto reader = [&](int r) {
        return guarded(&b->log, &b->started[r], [&] {
            kv_store rs(name.str());
            std::mt19937_64 rng(mix(static_cast<std::uint64_t>(::getpid())));
            std::string buf;
            for (std::uint64_t i = 0;; ++i) {
                const int k = static_cast<int>(rng() % n);
                const std::uint32_t floor = b->model[k].load(); // committed before this get began
                const bool found = (i & 1) ? rs.get(key(k), buf) : [&] {
                    auto v = rs.get(key(k));
                    if (v) buf = std::move(*v);
                    return v.has_value();
                }();
                std::uint64_t kk = 0, v = 0;
                if (!found) {
                    b->log.report("reader: " + show(key(k)) + " missing");
                } else if (!parse_head(buf, 'K', kk, v) || kk != std::uint64_t(k) || v < floor || buf != value(k, std::uint32_t(v))) {
                    b->log.report("reader: " + show(key(k)) + " read as " + show(buf) + ", committed version " + std::to_string(floor));
                }
                if (i % 16 == 0 && !rs.contains(key(k))) b->log.report("reader: contains() false for a stored key");
                if (i == 0) signal_started(b->started[r]);
            }
            return 0;
        });
    };
    std::unique_ptr<test::child> readers[2];
    for (int r = 0; r < 2; ++r) {
        b->started[r].store(0);
        readers[r] = std::make_unique<test::child>([&, r] { return reader(r); });
    }
    std::mt19937 rng(4242);
    int killed = 0;
    for (int round = 0; round < kill_rounds && b->log.count.load() == 0; ++round) {
        const int r = round % 2;
        BOOST_REQUIRE_MESSAGE(wait_started(b->started[r]), "reader never started: " << b->log.first);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
        readers[r]->kill();
        BOOST_TEST_REQUIRE(readers[r]->wait() == 128 + SIGKILL);
        ++killed;
        // The writer goes on at once, and so do the other reader and a new one.
        b->started[r].store(0);
        readers[r] = std::make_unique<test::child>([&, r] { return reader(r); });
        for (int j = 0; j < 8; ++j) {
            const int k = static_cast<int>(rng() % n);
            const std::uint32_t v = b->next_version.fetch_add(1) + 1;
            s.put(key(k), value(k, v)); // a new version, then the model: readers' floors stay true
            b->model[k].store(v);
        }
    }
    // Both are in their get loop (past opening) when they are killed last.
    for (int r = 0; r < 2; ++r) BOOST_TEST(wait_started(b->started[r]));
    for (auto& r : readers) r.reset();
    BOOST_TEST(b->log.count.load() == 0u, "first violation: " << b->log.first);
    BOOST_TEST(killed == kill_rounds);
    const auto st = s.stats();
    BOOST_TEST(st.lock_recoveries == 0u);
    BOOST_TEST(st.repairs == 0u);
    std::string why;
    BOOST_TEST(s.check(&why), why);
    BOOST_TEST(s.stats().lock_recoveries == 0u);
    BOOST_TEST(verify(s, b, 0, 0, n) == 0);
    BOOST_TEST(s.size() == std::size_t(n));
    BOOST_TEST(bounded_put(name.str(), "after", "the readers") == 0);
    BOOST_TEST(s.stats().lock_recoveries == 0u);
    BOOST_TEST_MESSAGE("readers: kills " << killed << ", grows " << st.grows);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

BOOST_AUTO_TEST_CASE(a_reader_killed_inside_visit_or_get_all_does_not_block_writers, *utf::timeout(300))
{
    // visit() and get_all() hold the lock shared. A reader killed there must
    // not keep writers out: a writer already waiting, or one coming later,
    // gets the lock (bounded), and the store is sound.
    store_name name("views");
    kv_store s(name.str());
    for (int k = 0; k < 500; ++k) s.put("v" + std::to_string(k), make_value('V', k, 0, value_length(mix(k))));
    auto* log = test::shared_scratch<violation_log>();

    // Killed for sure while holding the shared lock: the callback blocks.
    for (int round = 0; round < 4; ++round) {
        BOOST_TEST_CONTEXT("visit round " << round)
        {
            test::pipe_pair in_callback, never;
            test::child victim([&] {
                return guarded(log, nullptr, [&] {
                    kv_store rs(name.str());
                    rs.visit([&](std::string_view, std::string_view) {
                        in_callback.send('v');
                        never.receive(); // until killed
                    });
                    return 1;
                });
            });
            BOOST_REQUIRE(in_callback.receive(30s) == 'v');
            const std::string k = "after-visit-" + std::to_string(round);
            if (round % 2 == 0) {
                // A writer already waiting for the shared holder when it dies.
                test::pipe_pair up;
                test::child w([&] {
                    kv_store ws(name.str());
                    up.send('w');
                    ws.put(k, "written");
                    return ws.get(k) == std::string("written") ? 0 : 1;
                });
                BOOST_REQUIRE(up.receive(30s) == 'w');
                // Waiting before the kill: it owns the writer word of the
                // root's lock (announced, draining the victim's read lock),
                // and, best effort, sleeps there.
                const auto waiting = [&] {
                    const auto r = shmkit::inspect(shmkit::posix_name, name.str());
                    return !r.locks.empty() && r.locks[0].holder_pid == static_cast<std::uint32_t>(w.pid()) &&
                           r.locks[0].readers != 0;
                };
                const auto by = std::chrono::steady_clock::now() + 30s;
                while (!waiting() && std::chrono::steady_clock::now() < by) std::this_thread::yield();
                BOOST_REQUIRE_MESSAGE(waiting(), "the writer never came to wait for the reader's lock");
                test::until_sleeping(w.pid());
                victim.kill();
                BOOST_TEST(victim.wait() == 128 + SIGKILL);
                BOOST_TEST(w.wait(20s) == 0);
            } else {
                victim.kill();
                BOOST_TEST(victim.wait() == 128 + SIGKILL);
                BOOST_TEST(bounded_put(name.str(), k, "written") == 0);
            }
            BOOST_TEST(s.get(k) == std::string("written"));
            std::string why;
            BOOST_TEST(s.check(&why), why);
        }
    }

    // Killed at random points of a get_all() loop.
    std::atomic<std::uint32_t>* started = test::shared_scratch<std::atomic<std::uint32_t>>();
    std::mt19937 rng(99);
    const int rounds = sanitized ? 10 : 40;
    for (int round = 0; round < rounds; ++round) {
        started->store(0);
        test::child victim([&] {
            return guarded(log, started, [&] {
                kv_store rs(name.str());
                for (std::uint64_t i = 0;; ++i) {
                    const auto all = rs.get_all();
                    if (all.size() < 500) log->report("get_all(): " + std::to_string(all.size()) + " entries");
                    if (i == 0) signal_started(*started);
                }
                return 1;
            });
        });
        BOOST_REQUIRE(wait_started(*started));
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        victim.kill();
        BOOST_TEST_REQUIRE(victim.wait() == 128 + SIGKILL);
        BOOST_TEST_REQUIRE(bounded_put(name.str(), "after-get_all", std::to_string(round)) == 0, "round " << round);
    }
    BOOST_TEST(s.get("after-get_all") == std::to_string(rounds - 1));
    std::string why;
    BOOST_TEST(s.check(&why), why);
    BOOST_TEST(log->count.load() == 0u, "first violation: " << log->first);
    const auto st = s.stats();
    BOOST_TEST_MESSAGE("views: lock recoveries " << st.lock_recoveries << ", repairs " << st.repairs);
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_entries(name.str()) == 0u);
}

// A key that is only ever overwritten is never missing to a reader. (The
// new cell of an overwrite comes after the old one in the probe order: a
// reader that has passed an erased cell before both, and then finds the old
// one erased, still reaches the new one.)
BOOST_AUTO_TEST_CASE(a_key_being_overwritten_is_never_missing, *utf::timeout(120))
{
    store_name name("overwritten");
    {
        kv_store s(name.str());
        s.put("k", "v0");
        for (int i = 0; i < 50; ++i) s.put("x" + std::to_string(i), "y");
    }
    std::atomic<int>* stop = test::shared_scratch<std::atomic<int>>();
    stop->store(0);
    test::pipe_pair writing;
    test::child writer([&] {
        kv_store s(name.str());
        for (long i = 0; stop->load() == 0; ++i) {
            s.put("k", (i & 1) ? "v1" : "v2");
            if (i == 0) writing.send(); // open, and overwriting until told to stop
        }
        return 0;
    });
    kv_store s(name.str());
    BOOST_REQUIRE_EQUAL(writing.receive(30s), 'x');
    // At least 3 M gets, and on until they have seen the value change 1000
    // times: they overlapped that many overwrites (bounded).
    std::string out, last = "v0";
    long misses = 0, wrong = 0, changes = 0;
    const auto limit = std::chrono::steady_clock::now() + 60s;
    for (long n = 0; n < 3000000 || changes < 1000; ++n) {
        if (!s.get("k", out)) ++misses;
        else if (out != "v0" && out != "v1" && out != "v2") ++wrong;
        else if (out != last) {
            ++changes;
            last = out;
        }
        if (n % 4096 == 0 && std::chrono::steady_clock::now() >= limit) break;
    }
    stop->store(1);
    BOOST_TEST(writer.wait() == 0);
    BOOST_TEST(changes >= 1000, "the gets saw the value change " << changes << " times (at least 1000 wanted)");
    BOOST_TEST(misses == 0);
    BOOST_TEST(wrong == 0);
    std::string why;
    BOOST_TEST(s.check(&why), why);
}

// ---- Killed at an exact step of a table's growth ---------------------------------
//
// grow(): the new table is built in an unnamed file and linked under its
// name, attached (an OFD lock on it), published by one store of the
// generation into the root, and then the old table's name is unlinked. A
// writer putting keys until its put grows the table is killed before the
// link, before the attach (linked, not published) and before the unlink
// (published): each time the committed keys stay readable, and the next
// writer (here check()) leaves exactly one table name. After the second
// and the third, that repair is itself killed before it unlinks the name
// left behind, and the writer after it repairs again.

namespace growth {

std::string key(int i) { return "g" + std::to_string(i); }

/// A store with its first table, and a writer of it killed by `arm`'s
/// trigger in the put that first grows the table.
struct killed_writer {
    store_name name;
    kv_store s;
    std::uint64_t generation_before = 0;
    int acked = 0; ///< puts that returned before the kill

    killed_writer(const std::string& tag, const std::function<void()>& arm) : name(tag), s(name.str())
    {
        s.put("first", "x"); // the first table: creating it unlinks nothing
        generation_before = s.stats().generation;
        auto* done = test::shared_scratch<std::atomic<int>>();
        test::child writer([&] {
            kv_store mine(name.str());
            for (int i = 0; i < 100000; ++i) {
                mine.put(key(i), key(i));
                done->store(i + 1);
                if (i == 0) arm(); // after the first put has attached the current table
            }
            return 0; // never grew, or not killed where it grew
        });
        BOOST_TEST_REQUIRE(writer.wait(60s) == test::killed_before_syscall);
        acked = done->load();
        BOOST_TEST_REQUIRE(acked > 0);
        BOOST_TEST_MESSAGE(tag << ": killed in put " << acked + 1 << ", the one that grew the table");
    }

    /// Every acknowledged put reads back, lock-free and under the lock;
    /// besides them the store holds `others` keys and perhaps the one in
    /// flight.
    void expect_acked_keys(std::size_t others = 1) const
    {
        for (int i = 0; i < acked; ++i) BOOST_TEST_REQUIRE(s.get(key(i)).value_or("<none>") == key(i), "key " << i);
        BOOST_TEST(s.get("first").value_or("<none>") == "x");
        const std::size_t n = s.get_all().size(), want = std::size_t(acked) + others;
        BOOST_TEST((n == want || n == want + 1), n << " keys, " << want << " acknowledged");
    }

    /// check() in a process killed before its `nth` unlink(2): in the
    /// repair of what the writer left, which removes the name of a table
    /// built and not published (the first unlink), then the name of the
    /// table replaced (the second).
    void repair_killed_before_unlink(unsigned nth) const
    {
        test::child repairer([&] {
            kv_store mine(name.str());
            test::die_before_syscall(__NR_unlink, {}, nth);
            mine.check();
            return 0;
        });
        BOOST_TEST_REQUIRE(repairer.wait(60s) == test::killed_before_syscall);
    }

    /// check() repairs what the writer left: one table name is left, and
    /// the store takes puts again (the next one grows the table, as the
    /// killed one would have).
    void expect_repaired_to_one_table()
    {
        std::string why;
        BOOST_TEST(s.check(&why), why);
        BOOST_TEST(table_names(name.str()) == 1u);
        s.put("after", "repair");
        BOOST_TEST(s.get("after").value_or("<none>") == "repair");
        expect_acked_keys(2);
    }
};

} // namespace growth

BOOST_AUTO_TEST_SUITE(killed_at_an_exact_step_of_growth)

BOOST_AUTO_TEST_CASE(a_writer_killed_before_naming_its_new_table_leaves_the_old_one_alone, *utf::timeout(120))
{
    growth::killed_writer w("grow-link", [] { test::die_before_syscall(__NR_linkat); });
    BOOST_TEST(table_names(w.name.str()) == 1u); // the unnamed file went with the writer
    BOOST_TEST(w.s.stats().generation == w.generation_before);
    w.expect_acked_keys();
    w.expect_repaired_to_one_table();
}

BOOST_AUTO_TEST_CASE(a_writer_killed_between_naming_its_new_table_and_publishing_it_leaves_a_name_the_next_writer_unlinks,
                     *utf::timeout(120))
{
    // The new table's attach takes the first OFD lock after the link.
    growth::killed_writer w("grow-attach", [] { test::die_before_syscall(__NR_fcntl, {{1, F_OFD_SETLK}}); });
    BOOST_TEST(table_names(w.name.str()) == 2u);
    BOOST_TEST(w.s.stats().generation == w.generation_before); // not published
    w.expect_acked_keys();
    w.expect_repaired_to_one_table();
}

BOOST_AUTO_TEST_CASE(a_writer_killed_between_publishing_a_new_table_and_unlinking_the_old_name_leaves_the_new_table,
                     *utf::timeout(120))
{
    growth::killed_writer w("grow-unlink", [] { test::die_before_syscall(__NR_unlink); });
    BOOST_TEST(table_names(w.name.str()) == 2u);
    BOOST_TEST(w.s.stats().generation == w.generation_before + 1); // published
    w.expect_acked_keys();
    w.expect_repaired_to_one_table();
}

// The repair after those two kills, itself killed before it unlinks the
// name left behind: the next writer (the lock the repairer died holding)
// repairs again.
BOOST_AUTO_TEST_CASE(a_repair_killed_before_unlinking_an_unpublished_table_is_done_again, *utf::timeout(120))
{
    growth::killed_writer w("grow-attach-repair", [] { test::die_before_syscall(__NR_fcntl, {{1, F_OFD_SETLK}}); });
    w.repair_killed_before_unlink(1);
    BOOST_TEST(table_names(w.name.str()) == 2u);
    BOOST_TEST(w.s.stats().generation == w.generation_before);
    w.expect_acked_keys();
    w.expect_repaired_to_one_table();
}

BOOST_AUTO_TEST_CASE(a_repair_killed_before_unlinking_the_replaced_table_is_done_again, *utf::timeout(120))
{
    growth::killed_writer w("grow-unlink-repair", [] { test::die_before_syscall(__NR_unlink); });
    w.repair_killed_before_unlink(2); // the first removes the next generation's name, absent here
    BOOST_TEST(table_names(w.name.str()) == 2u);
    BOOST_TEST(w.s.stats().generation == w.generation_before + 1);
    w.expect_acked_keys();
    w.expect_repaired_to_one_table();
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Killed at an exact step of an overwrite ---------------------------------------
//
// put() over a present key: the note (pending_old, then pending_new) in
// the table header, the new cell filled after the old one in the probe
// order and published by its meta store, the old cell erased, the note
// cleared. A writer is killed by a watchpoint right after the note and
// right after the new cell's publication (both cells live): lookups show
// the old value, and check() keeps it. Then the repair of the latter is
// killed in turn, at three of its steps: the next writer repairs again.

namespace overwrite_step {

const std::string key = "ow000003"; // 8 bytes, 8-byte values: inline cells

std::string value(int v) { return "value-" + std::to_string(10 + v); }

/// Where this process's mappings of /dev/shm/`file` (from offset 0) begin.
std::set<std::uintptr_t> mappings_of(const std::string& file)
{
    std::set<std::uintptr_t> found;
    std::ifstream maps("/proc/self/maps");
    const std::string suffix = " /dev/shm/" + file;
    for (std::string line; std::getline(maps, line);) {
        std::istringstream fields(line);
        std::string range, perms, offset;
        fields >> range >> perms >> offset;
        if (line.size() > suffix.size() && line.compare(line.size() - suffix.size(), suffix.size(), suffix) == 0 &&
            std::stoull(offset, nullptr, 16) == 0)
            found.insert(std::stoull(range.substr(0, range.find('-')), nullptr, 16));
    }
    return found;
}

/// A store holding 16 keys (value(1) each), and where in its table file the
/// overwrite of `key` writes: the note and the new cell's meta.
struct store_before_an_overwrite {
    store_name name{"ow-step"};
    kv_store s{name.str()};
    std::string table;                  ///< the table's name in /dev/shm
    std::size_t pending_new_offset = 0; ///< file offset of the header's pending_new
    std::size_t new_meta_offset = 0;    ///< file offset of the meta of the cell the overwrite fills
    std::size_t erased_offset = 0;      ///< file offset of the header's erased (recount()'s second store)
    shmkit::segment raw;                ///< the table, mapped here by hand

    store_before_an_overwrite()
    {
        for (int k = 0; k < 16; ++k) s.put("ow" + std::string(k < 10 ? "00000" : "0000") + std::to_string(k), value(1));
        const std::string prefix = name.str().substr(1) + "~";
        if (DIR* d = ::opendir("/dev/shm")) {
            while (const dirent* e = ::readdir(d))
                if (std::string_view(e->d_name).substr(0, prefix.size()) == prefix) table = e->d_name;
            ::closedir(d);
        }
        BOOST_TEST_REQUIRE(!table.empty());
        using namespace shmkit::detail;
        shmkit::segment_expectation x;
        x.kind = shmkit::structure_kind::kv;
        raw = shmkit::segment::posix(shmkit::open_only, table, x);
        char* const base = static_cast<char*>(raw.get_region().data());
        char* const data = static_cast<char*>(raw.data());
        const kv_cell* const cells = cells_of(raw);
        const std::uint64_t capacity = raw.param(0);
        // The key's cell (its 8 bytes are the first inline word), and the
        // first free cell after it: where the overwrite puts the new value.
        BOOST_TEST_REQUIRE(live_cells_of_key().size() == 1u);
        const std::uint64_t old = live_cells_of_key().front();
        std::uint64_t fresh = (old + 1) % capacity;
        while (kv_meta::live(cells[fresh].meta.load())) fresh = (fresh + 1) % capacity;
        new_meta_offset = static_cast<std::size_t>(reinterpret_cast<const char*>(&cells[fresh].meta) - base);
        const auto* const header = reinterpret_cast<const kv_table_header*>(data);
        pending_new_offset = static_cast<std::size_t>(reinterpret_cast<const char*>(&header->pending_new) - base);
        erased_offset = static_cast<std::size_t>(reinterpret_cast<const char*>(&header->erased) - base);
    }

    /// The table's header (mapped here by hand).
    const shmkit::detail::kv_table_header& header() const
    {
        return *reinterpret_cast<const shmkit::detail::kv_table_header*>(raw.data());
    }

    /// Whether the overwrite's note is still in the header.
    bool note_set() const { return header().pending_old.load() != 0 || header().pending_new.load() != 0; }

    static const shmkit::detail::kv_cell* cells_of(const shmkit::segment& table)
    {
        return reinterpret_cast<const shmkit::detail::kv_cell*>(static_cast<char*>(table.data()) +
                                                                sizeof(shmkit::detail::kv_table_header));
    }

    /// The live cells holding `key`.
    std::vector<std::uint64_t> live_cells_of_key() const
    {
        const shmkit::detail::kv_cell* const cells = cells_of(raw);
        std::vector<std::uint64_t> found;
        for (std::uint64_t i = 0; i < raw.param(0); ++i)
            if (shmkit::detail::kv_meta::live(cells[i].meta.load()) && std::memcmp(&cells[i].bytes[0], key.data(), 8) == 0)
                found.push_back(i);
        return found;
    }

    /// put(key, value(2)) in a writer killed right after its store to the
    /// word at `offset` of the table file.
    void overwrite_killed_after_writing(std::size_t offset)
    {
        killed_after_writing(offset, [](kv_store& mine) { mine.put(key, value(2)); });
    }

    /// check() in a process killed right after its store to the word at
    /// `offset` of the table file: in the repair of a dead writer's
    /// overwrite, which check() does first under the writers' lock.
    void repair_killed_after_writing(std::size_t offset)
    {
        killed_after_writing(offset, [](kv_store& mine) { mine.check(); });
    }

    /// `act` on the store in a process killed right after its store to the
    /// word at `offset` of the table file.
    void killed_after_writing(std::size_t offset, void (*act)(kv_store&))
    {
        test::child writer([&] {
            // The parent's mappings of the table are here too (fork): the
            // writer's own is the one its store adds.
            const std::set<std::uintptr_t> inherited = mappings_of(table);
            kv_store mine(name.str());
            if (mine.get(key) != value(1)) return 3; // the table is mapped now
            std::vector<std::uintptr_t> own;
            for (std::uintptr_t m : mappings_of(table))
                if (!inherited.count(m)) own.push_back(m);
            if (own.size() != 1) return 4;
            test::die_after_write(reinterpret_cast<char*>(own.front()) + offset, 8);
            act(mine);
            return 0;
        });
        BOOST_TEST_REQUIRE(writer.wait(60s) == test::killed_after_write);
    }

    /// Lookups, get_all() and, after check(), the store itself show the
    /// old value: the overwrite did not happen.
    void expect_old_value_kept()
    {
        BOOST_TEST(s.get(key).value_or("<none>") == value(1)); // lock-free, before any repair
        BOOST_TEST(s.get_all().at(key) == value(1));           // takes the dead writer's lock over
        std::string why;
        BOOST_TEST(s.check(&why), why);
        BOOST_TEST(live_cells_of_key().size() == 1u); // the repair erased the new cell
        BOOST_TEST(s.get(key).value_or("<none>") == value(1));
        BOOST_TEST(s.size() == 16u);
        s.put(key, value(3));
        BOOST_TEST(s.get(key).value_or("<none>") == value(3));
        BOOST_TEST(s.size() == 16u);
        BOOST_TEST(s.check(&why), why);
    }
};

} // namespace overwrite_step

BOOST_AUTO_TEST_SUITE(killed_at_an_exact_step_of_an_overwrite, *utf::precondition(test::write_watches_available()))

BOOST_AUTO_TEST_CASE(a_writer_killed_right_after_its_overwrite_note_leaves_the_old_value, *utf::timeout(120))
{
    overwrite_step::store_before_an_overwrite w;
    w.overwrite_killed_after_writing(w.pending_new_offset);
    BOOST_TEST(w.live_cells_of_key().size() == 1u); // the new cell not published
    w.expect_old_value_kept();
}

BOOST_AUTO_TEST_CASE(a_writer_killed_with_both_cells_live_leaves_the_old_value_which_the_repair_keeps, *utf::timeout(120))
{
    overwrite_step::store_before_an_overwrite w;
    w.overwrite_killed_after_writing(w.new_meta_offset);
    BOOST_TEST(w.live_cells_of_key().size() == 2u); // the window: both cells live
    w.expect_old_value_kept();
}

// The repair of that overwrite, itself killed: right after it erased the
// new cell (the note still there), right after it cleared the note (the
// counters not yet recounted: one cell erased, none counted), and in its
// recount, right after it stored the erased count. Its repair_needed mark
// and the lock it died holding make the next writer repair again.
BOOST_AUTO_TEST_CASE(a_repair_killed_right_after_erasing_the_losing_cell_is_done_again, *utf::timeout(120))
{
    overwrite_step::store_before_an_overwrite w;
    w.overwrite_killed_after_writing(w.new_meta_offset);
    BOOST_TEST_REQUIRE(w.note_set());
    w.repair_killed_after_writing(w.new_meta_offset);
    BOOST_TEST(w.live_cells_of_key().size() == 1u); // erased
    BOOST_TEST(w.note_set());
    w.expect_old_value_kept();
}

BOOST_AUTO_TEST_CASE(a_repair_killed_right_after_clearing_the_note_is_done_again, *utf::timeout(120))
{
    overwrite_step::store_before_an_overwrite w;
    w.overwrite_killed_after_writing(w.new_meta_offset);
    w.repair_killed_after_writing(w.pending_new_offset);
    BOOST_TEST(w.live_cells_of_key().size() == 1u);
    BOOST_TEST(!w.note_set());
    BOOST_TEST(w.header().erased.load() == 0u); // not recounted
    w.expect_old_value_kept();
}

BOOST_AUTO_TEST_CASE(a_repair_killed_in_its_recount_is_done_again, *utf::timeout(120))
{
    overwrite_step::store_before_an_overwrite w;
    w.overwrite_killed_after_writing(w.new_meta_offset);
    w.repair_killed_after_writing(w.erased_offset);
    BOOST_TEST(!w.note_set());
    BOOST_TEST(w.header().erased.load() == 1u); // recounted this far
    w.expect_old_value_kept();
}

BOOST_AUTO_TEST_SUITE_END()
