// The tool's maintenance commands: `shmkit check` (structural validation
// that changes nothing), `shmkit recover` (clears what killed processes
// left: entries, locks, pool slots) and `shmkit rm` (removes segments,
// stores with their tables and shares with their value segments, refusing
// those in use unless --force).
#define BOOST_TEST_MODULE tool_maint
#include "tool_support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/detail/header.hpp>
#include <shmkit/detail/kv_layout.hpp>
#include <shmkit/inspect.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>

#include <cstring>

using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

bool exists(const std::string& path)
{
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

/// This suite's shares: keys 0x5ePPPPNN.
using share_guard = test::share_guard<0x5e>;
using test::kv_guard;
using test::lock_layout;

/// Where the parts of the segment file at `path` are (from its header).
struct offsets {
    std::uint64_t attach = 0, sync = 0, data = 0;
    std::uint32_t attach_capacity = 0;
};
offsets header_of(const std::string& path)
{
    const std::string bytes = test::read_file(path);
    BOOST_REQUIRE(bytes.size() >= sizeof(shmkit::detail::segment_header));
    alignas(shmkit::detail::segment_header) unsigned char copy[sizeof(shmkit::detail::segment_header)];
    std::memcpy(copy, bytes.data(), sizeof copy);
    const auto& h = *reinterpret_cast<const shmkit::detail::segment_header*>(copy);
    return {h.attach_offset, h.sync_offset, h.data_offset, h.attach_capacity};
}

/// Overwrites 8 bytes at `offset` of the file at `path`.
void poke64(const std::string& path, std::uint64_t offset, std::uint64_t v)
{
    std::string bytes = test::read_file(path);
    BOOST_REQUIRE(offset + 8 <= bytes.size());
    std::memcpy(&bytes[offset], &v, 8);
    test::write_file(path, bytes);
}

void copy_file(const std::string& from, const std::string& to) { test::write_file(to, test::read_file(from)); }

} // namespace

// ==== check ===========================================================================

BOOST_AUTO_TEST_SUITE(check)

BOOST_AUTO_TEST_CASE(sound_segments_of_every_kind_are_ok)
{
    test::scratch_dir d;
    shmkit::segment raw = shmkit::segment::file(shmkit::create_only, d / "raw", lock_layout());
    shmkit::buffer<std::int64_t> buf(shmkit::create_only, d / "buffer", 16);
    test::shm_name pn("pool");
    shmkit::pool<std::int64_t> pool(shmkit::create_only, pn.path(), 16);
    BOOST_REQUIRE(pool.try_alloc().has_value());
    kv_guard kg("ok");
    share_guard sg;
    {
        shmkit::kv_store kv(kg.name);
        kv.put("small", "value");
        kv.put(std::string(100, 'k'), std::string(5000, 'v')); // an arena record
        kv.erase("small");
        kv.put("other", "x");
        shmkit::share_options o;
        o.create = true;
        shmkit::share s(sg.key, o);
        s.store(std::string(200000, 'z')); // a value segment
    }
    const shmkit::segment_report kr = shmkit::inspect(shmkit::posix_name, kg.name);
    BOOST_REQUIRE(kr.kv && kr.kv->table);
    BOOST_REQUIRE(!shmkit::inspect(shmkit::posix_name, shmkit::share::native_name(sg.key)).share->value_inline);

    const std::vector<std::string> targets = {d / "raw", d / "buffer", pn.str(), kg.name, kr.kv->table_path,
                                              sg.target()};
    for (const auto& t : targets) {
        const auto r = test::run_tool({"check", t});
        BOOST_TEST(r.status == 0, t << ": " << r.out << r.err);
        BOOST_TEST(r.out == t + ": ok\n", r.out);
        BOOST_TEST(r.err.empty());
    }
    std::vector<std::string> all = {"check"};
    all.insert(all.end(), targets.begin(), targets.end());
    const auto r = test::run_tool(all);
    BOOST_TEST(r.status == 0);
}

BOOST_AUTO_TEST_CASE(a_corrupted_attach_table_or_pool_owner_word_is_reported_precisely)
{
    test::scratch_dir d;
    {
        shmkit::segment raw = shmkit::segment::file(shmkit::create_only, d / "raw", lock_layout());
        shmkit::pool<std::int64_t> pool(shmkit::create_only, d / "pool", 8);
        BOOST_REQUIRE(pool.try_alloc().has_value());
    }
    copy_file(d / "raw", d / "raw-bad");
    const auto rh = header_of(d / "raw-bad");
    poke64(d / "raw-bad", rh.attach, 5000); // high-water mark beyond the table
    auto r = test::run_tool({"check", d / "raw-bad"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(contains(r.out, d / "raw-bad" + ": attach table: high-water mark 5000 exceeds the capacity 8"), r.out);
    BOOST_TEST(!contains(r.out, ": ok"));

    copy_file(d / "pool", d / "pool-bad");
    const auto ph = header_of(d / "pool-bad");
    // Owner words follow the control and counter lines and one line per attach entry.
    const std::uint64_t owners = ph.data + 2 * 64 + std::uint64_t(ph.attach_capacity) * 64;
    poke64(d / "pool-bad", owners + 3 * 8, 0xfff); // slot 3: an owner id naming entry 4094
    r = test::run_tool({"check", d / "pool-bad"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(contains(r.out, "pool slot 3: owner word names entry 4094, beyond the attach table"), r.out);

    // A lock word naming an entry beyond the table.
    copy_file(d / "raw", d / "lock-bad");
    poke64(d / "lock-bad", rh.sync, 0x00000fffu);
    r = test::run_tool({"check", d / "lock-bad"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(contains(r.out, "rwlock 0: holder token 0xfff names entry 4094, beyond the attach table (8 entries)"),
               r.out);

    // A broken header is a finding too; the sound ones still say ok.
    copy_file(d / "raw", d / "header-bad");
    poke64(d / "header-bad", 64, 0x123456789abcdefull);
    r = test::run_tool({"check", d / "raw", d / "header-bad", d / "pool"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(contains(r.out, d / "raw" + ": ok\n"));
    BOOST_TEST(contains(r.out, d / "pool" + ": ok\n"));
    BOOST_TEST(contains(r.out, d / "header-bad" + ": "));
    BOOST_TEST(!contains(r.out, d / "header-bad" + ": ok"));
}

BOOST_AUTO_TEST_CASE(check_reports_dead_holders_as_needing_recovery_and_changes_nothing)
{
    test::scratch_dir d;
    shmkit::segment seg = shmkit::segment::file(shmkit::create_only, d / "locks", lock_layout());
    shmkit::pool<std::int64_t> pool(shmkit::create_only, d / "pool", 8);
    test::pipe_pair ready;
    test::child c([&]() -> int {
        shmkit::segment s = shmkit::segment::file(shmkit::open_only, d / "locks");
        s.rwlock(0).lock();
        s.mutex(0).lock();
        shmkit::pool<std::int64_t> mine(shmkit::open_only, d / "pool");
        if (!mine.try_alloc()) return 1;
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    const pid_t pid = c.pid();
    c.kill();
    BOOST_REQUIRE(c.wait() == 128 + SIGKILL);

    const std::vector<std::string> files = {d / "locks", d / "pool"};
    std::vector<std::string> before;
    std::vector<struct stat> st_before(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
        before.push_back(test::read_file(files[i]));
        BOOST_REQUIRE(::stat(files[i].c_str(), &st_before[i]) == 0);
    }
    const auto r = test::run_tool({"check", d / "locks", d / "pool"});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(contains(r.out, d / "locks" + ": ok\n"));
    BOOST_TEST(contains(r.out, "attach entry 1 of dead pid " + std::to_string(pid)), r.out);
    BOOST_TEST(contains(r.out, "rwlock 0 held by a dead holder (pid " + std::to_string(pid) + ")"), r.out);
    BOOST_TEST(contains(r.out, "mutex 0 held by a dead holder"), r.out);
    BOOST_TEST(contains(r.out, d / "pool" + ": ok, needs recover: 1 pool slot(s) held by dead owners"), r.out);
    for (std::size_t i = 0; i < files.size(); ++i) {
        BOOST_TEST((test::read_file(files[i]) == before[i]), files[i]);
        struct stat st;
        BOOST_REQUIRE(::stat(files[i].c_str(), &st) == 0);
        BOOST_TEST(st.st_mtim.tv_sec == st_before[i].st_mtim.tv_sec);
        BOOST_TEST(st.st_mtim.tv_nsec == st_before[i].st_mtim.tv_nsec);
    }
    const auto after = shmkit::inspect(d / "locks");
    BOOST_TEST(after.attached_dead() == 1u);
    BOOST_TEST(after.reclaimed == 0u);
    BOOST_TEST(after.locks[0].held_by_dead());
}

BOOST_AUTO_TEST_SUITE_END()

// ==== recover =========================================================================

BOOST_AUTO_TEST_SUITE(check_kv_lookups)

/// The current table of kv_store `name`, mapped by hand.
shmkit::segment kv_table_of(const std::string& name)
{
    const auto r = shmkit::inspect(shmkit::posix_name, "/" + name);
    BOOST_TEST_REQUIRE(r.kv.has_value());
    shmkit::segment_expectation x;
    x.kind = shmkit::structure_kind::kv;
    const std::string path = r.kv->table_path;
    return shmkit::segment::posix(shmkit::open_only, path.substr(path.rfind('/') + 1), x);
}

BOOST_AUTO_TEST_CASE(a_sound_store_of_many_keys_passes_and_a_duplicated_key_is_found, *boost::unit_test::timeout(120))
{
    kv_guard g("lookups");
    {
        shmkit::kv_store kv(g.name);
        for (int i = 0; i < 3000; ++i) kv.put("key:" + std::to_string(i), "value " + std::to_string(i));
    }
    const auto ok = test::run_tool({"check", g.name});
    BOOST_TEST(ok.status == 0);
    BOOST_TEST(ok.out == g.name + ": ok\n");

    // Copy a live inline cell into the empty cell after its run: the key is
    // then stored twice (and the counters disagree with the cells).
    shmkit::segment t = kv_table_of(g.name);
    auto* cells = reinterpret_cast<shmkit::detail::kv_cell*>(static_cast<char*>(t.data()) +
                                                             sizeof(shmkit::detail::kv_table_header));
    const std::uint64_t n = t.param(0);
    std::uint64_t from = n, to = n;
    for (std::uint64_t i = 0; i + 1 < n && to == n; ++i)
        if (shmkit::detail::kv_meta::is_inline(cells[i].meta.load()) && cells[i + 1].meta.load() == 0) from = i, to = i + 1;
    BOOST_TEST_REQUIRE(to < n);
    for (int w = 0; w < 4; ++w) cells[to].bytes[w].store(cells[from].bytes[w].load());
    cells[to].meta.store(cells[from].meta.load());
    const auto bad = test::run_tool({"check", g.name});
    BOOST_TEST(bad.status == 1);
    BOOST_TEST(bad.out.find("its key is stored twice") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_key_cut_off_from_its_home_cell_is_found, *boost::unit_test::timeout(120))
{
    using shmkit::detail::kv_meta;
    kv_guard g("unreachable");
    {
        shmkit::kv_store kv(g.name);
        for (int i = 0; i < 3000; ++i) kv.put("k" + std::to_string(i), "v");
    }
    const std::uint64_t seed = shmkit::inspect(shmkit::posix_name, "/" + g.name).params[1];
    shmkit::segment t = kv_table_of(g.name);
    auto* cells = reinterpret_cast<shmkit::detail::kv_cell*>(static_cast<char*>(t.data()) +
                                                             sizeof(shmkit::detail::kv_table_header));
    const std::uint64_t n = t.param(0), mask = n - 1;
    // A key displaced from its home cell (a collision): empty its home cell,
    // and a lookup of it stops there.
    std::uint64_t home = n;
    for (std::uint64_t i = 0; i < n && home == n; ++i) {
        const std::uint64_t m = cells[i].meta.load();
        if (!kv_meta::is_inline(m)) continue;
        char b[32];
        for (int w = 0; w < 4; ++w) {
            const std::uint64_t v = cells[i].bytes[w].load();
            std::memcpy(b + 8 * w, &v, 8);
        }
        const std::uint64_t h = shmkit::detail::kv_hash(std::string_view(b, kv_meta::inline_klen(m)), seed) & mask;
        if (h != i) home = h;
    }
    BOOST_TEST_REQUIRE(home < n); // 3000 keys in a table at most half full: collisions happen
    cells[home].meta.store(0);
    const auto bad = test::run_tool({"check", g.name});
    BOOST_TEST(bad.status == 1);
    BOOST_TEST(bad.out.find("its key cannot be found") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(recover)

BOOST_AUTO_TEST_CASE(recover_clears_entries_locks_and_pool_slots_of_a_killed_process)
{
    test::scratch_dir d;
    shmkit::segment seg = shmkit::segment::file(shmkit::create_only, d / "locks", lock_layout());
    test::shm_name pn("rpool");
    shmkit::pool<std::int64_t> pool(shmkit::create_only, pn.path(), 8);
    test::pipe_pair ready;
    test::child c([&]() -> int {
        shmkit::segment s = shmkit::segment::file(shmkit::open_only, d / "locks");
        s.rwlock(0).lock();
        s.rwlock(1).lock_shared();
        s.mutex(0).lock();
        shmkit::pool<std::int64_t> mine(shmkit::open_only, pn.path());
        for (int i = 0; i < 3; ++i)
            if (!mine.try_alloc()) return 1;
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    const std::string pid = std::to_string(c.pid());
    c.kill();
    BOOST_REQUIRE(c.wait() == 128 + SIGKILL);
    BOOST_REQUIRE(pool.used() == 3u);

    auto r = test::run_tool({"recover", d / "locks", pn.str()});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(contains(r.out, d / "locks" + ": reclaimed 1 attach entry (pid " + pid + ")"), r.out);
    BOOST_TEST(contains(r.out, "recovered rwlock 0 from dead writer pid " + pid), r.out);
    BOOST_TEST(contains(r.out, "recovered mutex 0 from dead owner pid " + pid), r.out);
    BOOST_TEST(contains(r.out, pn.str() + ": reclaimed 1 attach entry (pid " + pid + "), freed 3 pool slots"), r.out);

    for (const std::string& f : {d / "locks", pn.path()}) {
        const auto after = shmkit::inspect(f);
        BOOST_TEST(after.attached_dead() == 0u, f);
        BOOST_TEST(after.locks_held() == 0u, f);
        for (const auto& l : after.locks) BOOST_TEST(!l.held_by_dead());
    }
    BOOST_TEST(pool.used() == 0u);
    BOOST_TEST(shmkit::inspect(pn.path()).pool->used == 0u);
    // The locks work again without waiting for anyone.
    BOOST_TEST(seg.rwlock(0).try_lock());
    seg.rwlock(0).unlock();
    BOOST_TEST(seg.mutex(0).try_lock());
    seg.mutex(0).unlock();

    r = test::run_tool({"recover", d / "locks", pn.str()});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out == d / "locks" + ": nothing to recover\n" + pn.str() + ": nothing to recover\n", r.out);
    // check agrees.
    r = test::run_tool({"check", d / "locks", pn.str()});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out == d / "locks" + ": ok\n" + pn.str() + ": ok\n", r.out);
}

BOOST_AUTO_TEST_CASE(recover_of_a_missing_segment_fails)
{
    test::scratch_dir d;
    const auto r = test::run_tool({"recover", d / "nothing"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(contains(r.err, "nothing"));
}

BOOST_AUTO_TEST_SUITE_END()

// ==== recover: kv_store and share roots, dead and live holders ===========================

BOOST_AUTO_TEST_SUITE(recover_structures)

namespace {

/// The key and value of the n-th put of round `round` (the value large, so
/// a put spends most of its time under the writers' lock).
std::string kv_key(int round, std::uint64_t n) { return "r" + std::to_string(round) + "-" + std::to_string(n); }
std::string kv_value(int round, std::uint64_t n)
{
    const std::string k = kv_key(round, n);
    return k + std::string(96 * 1024, static_cast<char>('a' + (round + n) % 26)) + k;
}

} // namespace

BOOST_AUTO_TEST_CASE(recover_repairs_a_kv_store_whose_writer_was_killed_inside_a_put)
{
    kv_guard kg("recover");
    constexpr int max_rounds = 200;
    // committed[r]: puts of round r that returned (bumped by the child after each).
    auto* committed = test::shared_scratch<std::uint64_t>(max_rounds);
    struct unmap {
        void* p;
        std::size_t n;
        ~unmap() { ::munmap(p, n); }
    } unmap_committed{committed, sizeof(std::uint64_t) * max_rounds};
    {
        shmkit::kv_store kv(kg.name);
        kv.put("seed", "value");
    }

    int rounds = 0;
    bool landed = false;
    pid_t dead_pid = 0;
    for (; rounds < max_rounds && !landed; ++rounds) {
        const int round = rounds;
        test::pipe_pair started;
        test::child c([&]() -> int {
            shmkit::kv_store kv(kg.name);
            for (std::uint64_t n = 0;; ++n) {
                kv.put(kv_key(round, n), kv_value(round, n));
                __atomic_store_n(&committed[round], n + 1, __ATOMIC_SEQ_CST);
                if (n == 0) started.send();
            }
        });
        BOOST_REQUIRE_EQUAL(started.receive(30s), 'x');
        const pid_t pid = c.pid();
        // Aimed: the kill comes once the child is seen holding the writers'
        // lock (bounded). It may have let go in between: the round counts
        // only if the lock is held by the dead child afterwards.
        const auto holder = [&] {
            const auto r = shmkit::inspect(shmkit::posix_name, kg.name);
            return r.locks.empty() ? 0u : r.locks[0].holder_pid;
        };
        BOOST_REQUIRE_MESSAGE(test::until([&] { return holder() == static_cast<std::uint32_t>(pid); }, 30s),
                              "round " << round << ": the writer was never seen holding the writers' lock");
        c.kill();
        BOOST_REQUIRE(c.wait() == 128 + SIGKILL);
        const auto r = shmkit::inspect(shmkit::posix_name, kg.name);
        BOOST_REQUIRE(!r.locks.empty());
        if (r.locks[0].held_by_dead()) {
            landed = true;
            dead_pid = pid;
            BOOST_TEST(r.locks[0].holder_pid == static_cast<std::uint32_t>(pid));
        }
    }
    BOOST_REQUIRE_MESSAGE(landed, "no kill of " << rounds << " landed inside the writers' lock");
    BOOST_TEST_MESSAGE("kill " << rounds << " landed inside the writers' lock");

    auto r = test::run_tool({"recover", kg.name});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(r.err.empty(), r.err);
    // One line for the store: reclaimed entries, if any, then the recovery of the lock.
    BOOST_TEST(r.out.rfind(kg.name + ": ", 0) == 0u, r.out);
    BOOST_TEST(contains(r.out, "recovered the kv_store's writers' lock from dead writer pid " +
                                   std::to_string(dead_pid)),
               r.out);

    const auto after = shmkit::inspect(shmkit::posix_name, kg.name);
    BOOST_TEST(after.attached_dead() == 0u, r.out);
    BOOST_TEST(after.locks_held() == 0u);
    for (const auto& l : after.locks) BOOST_TEST(!l.held_by_dead());
    BOOST_REQUIRE(after.kv);
    BOOST_TEST(!after.kv->repair_needed);
    if (!after.kv->table_path.empty()) {
        const auto table = shmkit::inspect(after.kv->table_path);
        for (const auto& l : table.locks) BOOST_TEST(!l.held_by_dead());
    }

    r = test::run_tool({"check", kg.name});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(r.out == kg.name + ": ok\n", r.out);

    shmkit::kv_store kv(kg.name);
    std::string why;
    BOOST_TEST(kv.check(&why), why);
    BOOST_TEST(kv.get("seed").value_or("") == "value");
    std::uint64_t total = 1;
    for (int round = 0; round < rounds; ++round) {
        const std::uint64_t n = __atomic_load_n(&committed[round], __ATOMIC_SEQ_CST);
        BOOST_TEST(n >= 1u, "round " << round);
        total += n;
        for (std::uint64_t i = 0; i < n; ++i) {
            const auto v = kv.get(kv_key(round, i));
            BOOST_TEST((v && *v == kv_value(round, i)), kv_key(round, i));
        }
    }
    // At most one uncommitted put per round may have taken effect before the kill.
    BOOST_TEST(kv.size() >= total);
    BOOST_TEST(kv.size() <= total + static_cast<std::uint64_t>(rounds));
    BOOST_TEST(kv.stats().lock_recoveries >= 1u);

    // Nothing is left to do.
    r = test::run_tool({"recover", kg.name});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out == kg.name + ": nothing to recover\n", r.out);
}

BOOST_AUTO_TEST_CASE(recover_releases_a_share_lock_held_by_a_killed_writer)
{
    share_guard sg;
    const std::string value(100000, 'v'); // beyond the inline size: a value segment
    shmkit::share_options co;
    co.create = true;
    {
        shmkit::share s(sg.key, co);
        s.store("old");
    }
    test::pipe_pair ready;
    test::child c([&]() -> int {
        shmkit::share s(sg.key);
        if (!s.lock(shmkit::share::lock_ex)) return 1;
        s.store(value);
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    const std::string pid = std::to_string(c.pid());
    c.kill();
    BOOST_REQUIRE(c.wait() == 128 + SIGKILL);
    const std::string root = "/dev/shm/" + shmkit::share::native_name(sg.key);
    const auto before = shmkit::inspect(root);
    BOOST_REQUIRE(!before.locks.empty());
    BOOST_REQUIRE(before.locks[0].held_by_dead());

    // A copy of the root elsewhere is not the share of its key: recover
    // leaves the share alone rather than open the native one by key.
    test::scratch_dir d;
    copy_file(root, d / "copy");
    const auto rc = test::run_tool({"recover", d / "copy"});
    BOOST_TEST(rc.status == 1);
    BOOST_TEST(contains(rc.err, "is not this file"), rc.err);
    BOOST_TEST(shmkit::inspect(root).locks[0].held_by_dead());

    auto r = test::run_tool({"recover", sg.target()});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(r.err.empty(), r.err);
    BOOST_TEST(contains(r.out, sg.target() + ": reclaimed 1 attach entry (pid " + pid + ")"), r.out);
    BOOST_TEST(contains(r.out, "recovered the share's lock from dead writer pid " + pid), r.out);

    const auto after = shmkit::inspect(root);
    BOOST_TEST(after.attached_dead() == 0u);
    BOOST_TEST(after.locks_held() == 0u);
    for (const auto& l : after.locks) BOOST_TEST(!l.held_by_dead());
    BOOST_REQUIRE(after.share);
    if (!after.share->value_path.empty())
        for (const auto& l : shmkit::inspect(after.share->value_path).locks) BOOST_TEST(!l.held_by_dead());

    shmkit::share s(sg.key);
    BOOST_TEST(s.lock(shmkit::share::lock_ex | shmkit::share::lock_nb));
    BOOST_TEST((s.fetch() == value));
    s.unlock();
    BOOST_TEST(s.stats().lock_recoveries >= 1u);

    r = test::run_tool({"check", sg.target()});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(r.out == sg.target() + ": ok\n", r.out);
}

BOOST_AUTO_TEST_CASE(recover_leaves_locks_held_by_a_live_process_alone)
{
    test::scratch_dir d;
    share_guard sg;
    {
        shmkit::segment s = shmkit::segment::file(shmkit::create_only, d / "locks", lock_layout());
        shmkit::share_options co;
        co.create = true;
        shmkit::share sh(sg.key, co);
        sh.store("kept");
    }
    const std::string root = "/dev/shm/" + shmkit::share::native_name(sg.key);
    test::pipe_pair ready, ask, answer;
    test::child c([&]() -> int {
        shmkit::segment s = shmkit::segment::file(shmkit::open_only, d / "locks");
        shmkit::sync::rwlock rw = s.rwlock(0);
        shmkit::sync::mutex m = s.mutex(0);
        rw.lock();
        m.lock();
        shmkit::share sh(sg.key);
        if (!sh.lock(shmkit::share::lock_ex)) return 1;
        ready.send();
        if (ask.receive() != 'q') return 2;
        // Still ours, in the shared words as well as in this thread's record.
        const auto me = static_cast<std::uint32_t>(::getpid());
        const auto seg = shmkit::inspect(d / "locks");
        const auto shr = shmkit::inspect(root);
        const bool ok = rw.holds_exclusive() && sh.held() == shmkit::share::lock_ex && seg.locks[0].holder_pid == me &&
                        seg.locks[2].holder_pid == me && shr.locks[0].holder_pid == me && !rw.recovered();
        sh.unlock();
        m.unlock();
        rw.unlock();
        answer.send(ok ? 'y' : 'n');
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    const std::string pid = std::to_string(c.pid());

    const auto r = test::run_tool({"recover", "--wait", "0.2", d / "locks", sg.target()});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(r.err.empty(), r.err);
    BOOST_TEST(contains(r.out, d / "locks" + ": nothing to recover\n"), r.out);
    BOOST_TEST(contains(r.out, d / "locks" + ": rwlock 0 is held by live pid " + pid + ": left alone\n"), r.out);
    BOOST_TEST(contains(r.out, d / "locks" + ": mutex 0 is held by live pid " + pid + ": left alone\n"), r.out);
    BOOST_TEST(contains(r.out, sg.target() + ": nothing to recover\n"), r.out);
    BOOST_TEST(contains(r.out, sg.target() + ": rwlock 0 is held by live pid " + pid + ": left alone\n"), r.out);
    BOOST_TEST(!contains(r.out, "recovered"), r.out);

    // The holder still holds everything: from here...
    for (const std::string& f : {d / "locks", root}) {
        const auto rep = shmkit::inspect(f);
        BOOST_TEST(rep.attached_alive() >= 1u, f);
        BOOST_TEST(rep.locks[0].holder_pid == static_cast<std::uint32_t>(c.pid()), f);
        BOOST_TEST(rep.locks[0].recoveries == 0u, f);
    }
    {
        shmkit::share sh(sg.key);
        BOOST_TEST(!sh.lock(shmkit::share::lock_ex | shmkit::share::lock_nb));
    }
    // ...and as the holder sees it.
    ask.send('q');
    BOOST_TEST(answer.receive(30s) == 'y');
    shmkit::share sh(sg.key);
    BOOST_TEST(sh.lock(shmkit::share::lock_ex | shmkit::share::lock_nb));
    BOOST_TEST(sh.fetch() == "kept");
    sh.unlock();
    BOOST_TEST(sh.stats().lock_recoveries == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ==== rm ==============================================================================

BOOST_AUTO_TEST_SUITE(rm)

BOOST_AUTO_TEST_CASE(rm_refuses_a_segment_with_a_live_process_attached_unless_forced)
{
    test::shm_name n("rm");
    {
        shmkit::segment s = shmkit::segment::posix(shmkit::create_only, n.str(), lock_layout());
    }
    test::pipe_pair ready;
    test::child c([&]() -> int {
        shmkit::segment s = shmkit::segment::posix(shmkit::open_only, n.str());
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    auto r = test::run_tool({"rm", n.str()});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(contains(r.err, "pid " + std::to_string(c.pid())), r.err);
    BOOST_TEST(contains(r.err, "--force"));
    BOOST_TEST(exists(n.path()));
    r = test::run_tool({"rm", n.str(), "--force"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(contains(r.out, n.str() + ": removed"));
    BOOST_TEST(!exists(n.path()));
}

BOOST_AUTO_TEST_CASE(rm_removes_plain_segments_and_refuses_what_is_not_one)
{
    test::scratch_dir d;
    {
        shmkit::segment s = shmkit::segment::file(shmkit::create_only, d / "seg", lock_layout());
    }
    test::write_file(d / "text", "not a segment");
    const auto r = test::run_tool({"rm", d / "seg", d / "text", d / "missing"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(!exists(d / "seg"));
    BOOST_TEST(exists(d / "text"));
    BOOST_TEST(contains(r.out, d / "seg" + ": removed"));
    BOOST_TEST(contains(r.err, "text"));
    BOOST_TEST(contains(r.err, "missing"));
}

BOOST_AUTO_TEST_CASE(rm_removes_a_kv_store_with_its_table_and_a_share_with_its_value_segment)
{
    kv_guard kg("rm");
    share_guard sg;
    {
        shmkit::kv_store kv(kg.name);
        for (int i = 0; i < 300; ++i) kv.put("key" + std::to_string(i), "value"); // grown: table 2 or more
        shmkit::share_options o;
        o.create = true;
        shmkit::share s(sg.key, o);
        s.store(std::string(200000, 'z'));
    }
    const auto kr = shmkit::inspect(shmkit::posix_name, kg.name);
    BOOST_REQUIRE(kr.kv && !kr.kv->table_path.empty());
    const std::string table = kr.kv->table_path;
    BOOST_REQUIRE(exists(table));
    const std::string b = "/dev/shm/" + shmkit::share::native_name(sg.key);
    const auto sr = shmkit::inspect(b);
    BOOST_REQUIRE(sr.share && !sr.share->value_inline);
    const std::string value = sr.share->value_path;
    BOOST_REQUIRE(exists(value));

    const auto r = test::run_tool({"rm", kg.name, sg.target()});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(!exists("/dev/shm/" + kg.name));
    BOOST_TEST(!exists(table));
    BOOST_TEST(!exists(b));
    BOOST_TEST(!exists(value));
    BOOST_TEST(contains(r.out, kg.name + ": removed (with table"));
    BOOST_TEST(contains(r.out, sg.target() + ": removed (with value segment"));
}

BOOST_AUTO_TEST_CASE(rm_of_a_root_elsewhere_removes_the_table_or_value_segment_it_names_only_if_it_is_one)
{
    kv_guard kg("rmcopy");
    share_guard sg;
    {
        shmkit::kv_store kv(kg.name);
        for (int i = 0; i < 300; ++i) kv.put("key" + std::to_string(i), "value");
        shmkit::share_options o;
        o.create = true;
        shmkit::share(sg.key, o).store(std::string(200000, 'z'));
    }
    const std::string share_root = "/dev/shm/" + shmkit::share::native_name(sg.key);
    test::scratch_dir d;
    // Copies of both roots: each names its table or value segment beside it.
    copy_file("/dev/shm/" + kg.name, d / "kv");
    copy_file(share_root, d / "share");
    const auto kc = shmkit::inspect(d / "kv");
    const auto sc = shmkit::inspect(d / "share");
    BOOST_REQUIRE(kc.kv && !kc.kv->table_path.empty());
    BOOST_REQUIRE(sc.share && !sc.share->value_path.empty());
    // Beside the kv root, a file that is not a table; beside the share
    // root, a real value segment (a copy of the share's).
    test::write_file(kc.kv->table_path, "not a table");
    copy_file(shmkit::inspect(share_root).share->value_path, sc.share->value_path);

    const auto r = test::run_tool({"rm", d / "kv", d / "share"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(!exists(d / "kv"));
    BOOST_TEST(test::read_file(kc.kv->table_path) == "not a table");
    BOOST_TEST(contains(r.out, kc.kv->table_path + " is not a kv_store table: left"), r.out);
    BOOST_TEST(!exists(d / "share"));
    BOOST_TEST(!exists(sc.share->value_path));
    BOOST_TEST(contains(r.out, "(with value segment"), r.out);
    // The originals are untouched.
    BOOST_TEST(shmkit::kv_store(kg.name).size() == 300u);
    BOOST_TEST(shmkit::share(sg.key).fetch() == std::string(200000, 'z'));
}

BOOST_AUTO_TEST_SUITE_END()

// ==== Usage ===========================================================================

BOOST_AUTO_TEST_CASE(usage_errors_exit_2)
{
    for (const std::vector<std::string>& a :
         {std::vector<std::string>{"check"}, {"recover"}, {"rm"}, {"check", "--bogus", "x"}, {"rm", "--force"},
          {"recover", "--wait", "-1", "x"}, {"check", "share:"}, {"check", ""}}) {
        const auto r = test::run_tool(a);
        BOOST_TEST(r.status == 2, a[0] << " " << (a.size() > 1 ? a[1] : ""));
        BOOST_TEST(r.out.empty());
    }
    for (const char* c : {"check", "recover", "rm"}) {
        const auto r = test::run_tool({c, "--help"});
        BOOST_TEST(r.status == 0);
        BOOST_TEST(contains(r.out, std::string("usage: shmkit ") + c));
    }
}
