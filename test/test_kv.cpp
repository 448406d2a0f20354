// kv_store in one process (a child only where another process is the point):
// puts, gets, erases, binary keys and values, limits, names, consistent views
// and their callbacks, growth to a million entries and its memory overhead,
// clear and exclusive opening, remove, refusals, a root left uninitialised,
// stats, several handles, check().
#define BOOST_TEST_MODULE kv_store
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/detail/kv_layout.hpp>
#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/segment.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sched.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/mount.h>

using namespace std::chrono_literals;
using shmkit::kv_store;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace {

/// The objects in /dev/shm whose name starts with `prefix` (sorted).
std::vector<std::string> shm_objects_with_prefix(const std::string& prefix)
{
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/dev/shm", ec)) {
        const std::string f = e.path().filename().string();
        if (f.compare(0, prefix.size(), prefix) == 0) out.push_back(f);
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// A unique store name ("/shmkit-test-TAG-PID-N", optionally padded with 'x'
/// to `length` bytes). On scope exit the store is removed (kv_store::remove)
/// and every object left under NAME or NAME~... is unlinked as well, so a
/// failing test (or a library that leaks table names) leaves nothing behind.
class store_name {
public:
    explicit store_name(const std::string& tag, std::size_t length = 0) : shm_("kv-" + tag), name_(shm_.str())
    {
        if (name_.size() < length) name_.append(length - name_.size(), 'x');
    }
    ~store_name()
    {
        try {
            kv_store::remove(name_);
        } catch (...) {
        }
        ::shm_unlink(name_.c_str());
        for (const auto& t : tables()) ::shm_unlink(("/" + t).c_str());
    }
    store_name(const store_name&) = delete;
    store_name& operator=(const store_name&) = delete;

    /// "/NAME"
    const std::string& str() const { return name_; }
    /// "NAME"
    std::string bare() const { return name_.substr(1); }
    std::string root_path() const { return "/dev/shm" + name_; }
    bool root_exists() const { return ::access(root_path().c_str(), F_OK) == 0; }
    /// The table objects "NAME~ID~GEN" now in /dev/shm.
    std::vector<std::string> tables() const { return shm_objects_with_prefix(bare() + "~"); }

private:
    test::shm_name shm_;
    std::string name_;
};

/// GEN of a table object name "NAME~ID~GEN".
std::string generation_of(const std::string& table) { return table.substr(table.rfind('~') + 1); }

/// ID of a table object name "NAME~ID~GEN".
std::string store_id_of(const std::string& table)
{
    const auto last = table.rfind('~');
    const auto first = table.rfind('~', last - 1);
    return table.substr(first + 1, last - first - 1);
}

/// "key:0000042": 11 bytes for i < 10^7.
std::string key_of(std::size_t i)
{
    char b[32];
    std::snprintf(b, sizeof b, "key:%07zu", i);
    return b;
}

/// 16 bytes.
std::string value_of(std::size_t i)
{
    char b[32];
    std::snprintf(b, sizeof b, "val:%012zu", i);
    return b;
}

/// 40 bytes.
std::string long_value_of(std::size_t i)
{
    char b[64];
    std::snprintf(b, sizeof b, "long-value:%029zu", i);
    return b;
}

/// `n` bytes of a pattern that depends on `seed`.
std::string pattern(std::size_t n, unsigned seed)
{
    std::string s(n, '\0');
    std::uint32_t x = 2463534242u ^ seed;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return s;
}

/// How many of keys begin, begin+step, ... < end do not read back as value(i).
template <class F>
std::size_t count_wrong(const kv_store& s, std::size_t begin, std::size_t end, std::size_t step, F value)
{
    std::size_t wrong = 0;
    std::string out;
    for (std::size_t i = begin; i < end; i += step)
        if (!s.get(key_of(i), out) || out != value(i)) ++wrong;
    return wrong;
}

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

/// check() with its reason in the test log.
void expect_sound(const kv_store& s, const char* when)
{
    std::string why;
    const bool ok = s.check(&why);
    BOOST_TEST(ok, "check() failed " << when << ": " << why);
}

/// `f` must throw shmkit::error with `code`, naming the store, and leave the
/// object at `path` byte for byte as it was.
void expect_refused(const std::string& path, const std::string& bare_name, const std::function<void()>& f,
                    shmkit::errc code, const std::vector<std::string>& needles = {})
{
    const std::string before = test::read_file(path);
    BOOST_REQUIRE(!before.empty());
    try {
        f();
        BOOST_ERROR("not refused: " << path);
    } catch (const shmkit::error& e) {
        BOOST_TEST((e.code() == code), e.what());
        BOOST_TEST(contains(e.what(), bare_name), e.what());
        for (const auto& n : needles) BOOST_TEST(contains(e.what(), n), "'" << n << "' not in: " << e.what());
    }
    BOOST_TEST((test::read_file(path) == before), "refused object changed: " << path);
}

} // namespace

// ---- Basic operations ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(put_get_overwrite_erase_contains_size)
{
    store_name n("basic");
    kv_store s(n.str());
    BOOST_TEST(s.name() == n.str());
    BOOST_TEST(s.empty());
    BOOST_TEST(s.size() == 0u);
    BOOST_TEST(!s.get("a").has_value());
    BOOST_TEST(!s.contains("a"));
    std::string out = "untouched";
    BOOST_TEST(!s.get("a", out));
    BOOST_TEST(!s.erase("a")); // on a store that has no table yet
    BOOST_TEST(s.stats().generation == 0u);
    expect_sound(s, "on a new store");

    s.put("a", "1");
    BOOST_TEST(s.stats().generation > 0u);
    BOOST_TEST(!s.empty());
    BOOST_TEST(s.size() == 1u);
    BOOST_TEST(s.get("a").value_or("<none>") == "1");
    BOOST_TEST(s.contains("a"));
    BOOST_TEST(!s.contains("b"));
    BOOST_TEST(!s.get("b").has_value());

    s.put("a", "22"); // overwrite
    BOOST_TEST(s.size() == 1u);
    BOOST_TEST(s.get("a").value_or("<none>") == "22");
    s.put("a", "3"); // shorter
    BOOST_TEST(s.get("a").value_or("<none>") == "3");

    s.put("b", "bee");
    BOOST_TEST(s.size() == 2u);

    // get(key, out): the value replaces whatever `out` held.
    out = "previous contents that are longer than the value";
    BOOST_TEST(s.get("b", out));
    BOOST_TEST(out == "bee");
    BOOST_TEST(s.get("a", out));
    BOOST_TEST(out == "3");
    BOOST_TEST(!s.get("missing", out));

    BOOST_TEST(s.erase("a"));
    BOOST_TEST(!s.erase("a"));
    BOOST_TEST(!s.erase("never there"));
    BOOST_TEST(!s.contains("a"));
    BOOST_TEST(!s.get("a").has_value());
    BOOST_TEST(s.size() == 1u);
    BOOST_TEST(s.get("b").value_or("<none>") == "bee");

    // Erased, then put again.
    s.put("a", "again");
    BOOST_TEST(s.get("a").value_or("<none>") == "again");
    BOOST_TEST(s.size() == 2u);

    for (std::size_t i = 0; i < 500; ++i) s.put(key_of(i), value_of(i));
    BOOST_TEST(s.size() == 502u);
    BOOST_TEST(count_wrong(s, 0, 500, 1, value_of) == 0u);
    expect_sound(s, "after 502 puts");

    s.clear();
    BOOST_TEST(s.empty());
    BOOST_TEST(s.size() == 0u);
    BOOST_TEST(!s.contains("a"));
    BOOST_TEST(!s.contains("b"));
    BOOST_TEST(!s.contains(key_of(7)));
    BOOST_TEST(s.get_all().empty());
    expect_sound(s, "after clear");
    s.put("after", "clear");
    BOOST_TEST(s.size() == 1u);
    BOOST_TEST(s.get("after").value_or("<none>") == "clear");
}

BOOST_AUTO_TEST_CASE(clear_and_views_of_a_store_without_a_table)
{
    store_name n("notable");
    kv_store s(n.str());
    BOOST_TEST(s.stats().generation == 0u);
    BOOST_TEST(s.get_all().empty());
    int calls = 0;
    s.visit([&](std::string_view, std::string_view) { ++calls; });
    s.for_each([&](std::string_view, std::string_view) { ++calls; });
    BOOST_TEST(calls == 0);
    s.clear();
    BOOST_TEST(s.empty());
    expect_sound(s, "after clear of a store without a table");
    s.put("k", "v");
    BOOST_TEST(s.get("k").value_or("<none>") == "v");
}

// ---- Binary keys and values -------------------------------------------------------

BOOST_AUTO_TEST_CASE(binary_keys_and_values)
{
    store_name n("binary");
    kv_store s(n.str());
    std::map<std::string, std::string> expected;
    const auto put = [&](const std::string& k, const std::string& v) {
        s.put(k, v);
        expected[k] = v;
    };

    // Embedded NULs: keys that differ only after a NUL are different keys.
    const std::string a0b("a\0b", 3), a0c("a\0c", 3), a0("a\0", 2);
    put(a0b, std::string("1\0x", 3));
    put(a0c, std::string("2\0\0y", 4));
    put(a0, std::string("\0", 1));
    put("a", "plain");
    BOOST_TEST(s.get(a0b).value_or("<none>") == std::string("1\0x", 3));
    BOOST_TEST(s.get(a0c).value_or("<none>") == std::string("2\0\0y", 4));
    BOOST_TEST(s.get(a0).value_or("<none>") == std::string("\0", 1));
    BOOST_TEST(s.get("a").value_or("<none>") == "plain");
    BOOST_TEST(!s.contains(std::string("a\0d", 3)));

    // All 256 byte values, as a key and as a value; and every single-byte key.
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    std::string rev(all.rbegin(), all.rend());
    put(all, rev);
    BOOST_TEST(s.get(all).value_or("<none>") == rev);
    for (int c = 0; c < 256; ++c) put(std::string(1, static_cast<char>(c)), std::string(3, static_cast<char>(255 - c)));
    for (int c = 0; c < 256; ++c)
        BOOST_TEST(s.get(std::string(1, static_cast<char>(c))).value_or("<none>") ==
                   std::string(3, static_cast<char>(255 - c)));

    // The empty key.
    BOOST_TEST(!s.contains(""));
    put("", "empty key");
    BOOST_TEST(s.contains(""));
    BOOST_TEST(s.get("").value_or("<none>") == "empty key");

    // An empty value is a value: distinct from a missing key.
    put("empty value", "");
    const auto ev = s.get("empty value");
    BOOST_TEST(ev.has_value());
    BOOST_TEST(ev.value_or("<none>").empty());
    BOOST_TEST(s.contains("empty value"));
    std::string out = "junk";
    BOOST_TEST(s.get("empty value", out));
    BOOST_TEST(out.empty());
    // Empty key and empty value together.
    put("", "");
    BOOST_TEST(s.get("").has_value());
    BOOST_TEST(s.get("").value_or("<none>").empty());

    BOOST_TEST(s.size() == expected.size());
    BOOST_TEST((s.get_all() == expected));
    std::map<std::string, std::string> visited;
    s.visit([&](std::string_view k, std::string_view v) { visited.emplace(std::string(k), std::string(v)); });
    BOOST_TEST((visited == expected));
    expect_sound(s, "after binary puts");

    BOOST_TEST(s.erase(""));
    BOOST_TEST(!s.contains(""));
    BOOST_TEST(s.erase(a0));
    BOOST_TEST(s.contains(a0b));
    BOOST_TEST(s.contains("a"));
}

BOOST_AUTO_TEST_CASE(entries_of_every_small_size_round_trip)
{
    // Keys and values of 0..40 bytes each, in every combination (whatever
    // size an implementation keeps beside its index), overwritten with
    // other sizes, then erased.
    store_name n("sizes");
    kv_store s(n.str());
    std::map<std::string, std::string> expected;
    const auto key = [](std::size_t klen, std::size_t vlen) {
        std::string k = pattern(klen, unsigned(1000 + klen));
        if (klen) k[0] = static_cast<char>(vlen);
        return k;
    };
    for (std::size_t klen = 0; klen <= 40; ++klen)
        for (std::size_t vlen = 0; vlen <= 40; ++vlen) {
            const std::string k = key(klen, vlen), v = pattern(vlen, unsigned(klen * 100 + vlen));
            s.put(k, v);
            expected[k] = v;
        }
    BOOST_TEST(s.size() == expected.size());
    BOOST_TEST((s.get_all() == expected));
    std::size_t wrong = 0;
    for (const auto& [k, v] : expected) wrong += s.get(k).value_or("<none>") == v ? 0 : 1;
    BOOST_TEST(wrong == 0u);
    expect_sound(s, "after puts of every small size");

    // Overwrite each with a value of another size (small <-> large).
    for (auto& [k, v] : expected) {
        v = pattern(40 - std::min<std::size_t>(v.size(), 40) + (k.size() % 3) * 20, unsigned(k.size() + v.size()));
        s.put(k, v);
    }
    wrong = 0;
    for (const auto& [k, v] : expected) wrong += s.get(k).value_or("<none>") == v ? 0 : 1;
    BOOST_TEST(wrong == 0u);
    BOOST_TEST(s.size() == expected.size());
    BOOST_TEST((s.get_all() == expected));
    expect_sound(s, "after overwrites with other sizes");

    std::size_t erased = 0;
    for (const auto& [k, v] : expected) erased += s.erase(k) ? 1 : 0;
    BOOST_TEST(erased == expected.size());
    BOOST_TEST(s.empty());
    BOOST_TEST(s.stats().bytes_used == 0u);
    expect_sound(s, "after erasing everything");
}

// ---- Limits ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(key_size_limit)
{
    store_name n("keylimit");
    kv_store s(n.str());
    s.put("small", "v");
    const std::string longest = pattern(kv_store::max_key_size, 1);
    s.put(longest, "longest key");
    BOOST_TEST(s.get(longest).value_or("<none>") == "longest key");
    BOOST_TEST(s.size() == 2u);

    const auto before = s.stats();
    const std::string too_long = pattern(kv_store::max_key_size + 1, 2);
    BOOST_CHECK_THROW(s.put(too_long, "x"), std::length_error);
    BOOST_CHECK_THROW(s.put(too_long, ""), std::length_error);
    const auto after = s.stats();
    BOOST_TEST(s.size() == 2u);
    BOOST_TEST(after.entries == before.entries);
    BOOST_TEST(after.generation == before.generation);
    BOOST_TEST(after.grows == before.grows);
    BOOST_TEST(after.bytes_used == before.bytes_used);
    BOOST_TEST(!s.contains(too_long.substr(0, kv_store::max_key_size)));
    BOOST_TEST(s.get(longest).value_or("<none>") == "longest key");
    expect_sound(s, "after a refused key");
    BOOST_TEST(s.erase(longest));
    BOOST_TEST(s.size() == 1u);
}

BOOST_AUTO_TEST_CASE(large_values_and_the_value_size_limit)
{
    store_name n("vallimit");
    kv_store s(n.str());
    const std::string mib = pattern(std::size_t(1) << 20, 3);
    const std::string mib8 = pattern(std::size_t(8) << 20, 4);
    s.put("1MiB", mib);
    s.put("8MiB", mib8);
    s.put("small", "v");
    BOOST_TEST((s.get("1MiB").value_or("") == mib));
    BOOST_TEST((s.get("8MiB").value_or("") == mib8));
    std::string out;
    BOOST_TEST(s.get("8MiB", out));
    BOOST_TEST((out == mib8));
    // Overwrite the big one with a small one and back.
    s.put("8MiB", "tiny");
    BOOST_TEST(s.get("8MiB").value_or("") == "tiny");
    s.put("8MiB", mib8);
    BOOST_TEST((s.get("8MiB").value_or("") == mib8));
    BOOST_TEST(s.size() == 3u);
    expect_sound(s, "after large values");

    // max_value_size + 1 bytes of real (never touched, zero-page) memory: the
    // put must refuse it by its size, before reading or copying anything.
    const std::size_t big = kv_store::max_value_size + 1;
    void* p = ::mmap(nullptr, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    BOOST_REQUIRE(p != MAP_FAILED);
    const auto before = s.stats();
    BOOST_CHECK_THROW(s.put("too big", std::string_view(static_cast<const char*>(p), big)), std::length_error);
    BOOST_CHECK_THROW(s.put("8MiB", std::string_view(static_cast<const char*>(p), big)), std::length_error);
    ::munmap(p, big);
    const auto after = s.stats();
    BOOST_TEST(!s.contains("too big"));
    BOOST_TEST((s.get("8MiB").value_or("") == mib8));
    BOOST_TEST(s.size() == 3u);
    BOOST_TEST(after.generation == before.generation);
    BOOST_TEST(after.bytes_used == before.bytes_used);
    BOOST_TEST(after.bytes_mapped == before.bytes_mapped);
    expect_sound(s, "after a refused value");
}

// ---- Names ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(bad_names_are_invalid_arguments)
{
    store_name n("names");
    const std::string base = n.bare();
    const std::vector<std::string> bad = {
        "",
        "/",
        std::string(201, 'n'),
        "/" + base + "/b",
        base + "/b",
        "/" + base + "~b",
        base + "~b",
        "/" + base + std::string("\0b", 2),
        base + std::string(1, '\0'),
    };
    for (const auto& name : bad) {
        BOOST_TEST_CONTEXT("name of " << name.size() << " bytes: '" << name << "'")
        {
            BOOST_CHECK_THROW(kv_store s(name), std::invalid_argument);
            BOOST_CHECK_THROW(kv_store s(name, shmkit::exclusive), std::invalid_argument);
            BOOST_CHECK_THROW(kv_store::remove(name), std::invalid_argument);
        }
        // In case one was accepted: leave nothing behind.
        if (!name.empty() && name.find('\0') == std::string::npos && name.find('/', 1) == std::string::npos)
            ::shm_unlink((name[0] == '/' ? name : "/" + name).c_str());
    }
    BOOST_TEST(!n.root_exists());
    BOOST_TEST(shm_objects_with_prefix(base).empty());
}

BOOST_AUTO_TEST_CASE(with_or_without_the_slash_a_name_is_the_same_store)
{
    store_name n("slash");
    kv_store with(n.str());
    kv_store without(n.bare());
    BOOST_TEST(with.name() == n.str());
    BOOST_TEST(without.name() == n.str());
    with.put("k", "from with");
    BOOST_TEST(without.get("k").value_or("<none>") == "from with");
    without.put("j", "from without");
    BOOST_TEST(with.get("j").value_or("<none>") == "from without");
    BOOST_TEST(n.root_exists());
    BOOST_TEST(kv_store::remove(n.bare()));
    BOOST_TEST(!n.root_exists());
    BOOST_TEST(!kv_store::remove(n.str()));
}

BOOST_AUTO_TEST_CASE(a_name_of_200_bytes_works)
{
    store_name n("long", 200); // "/" + 199 bytes
    BOOST_REQUIRE(n.str().size() == 200u);
    kv_store s(n.str());
    for (std::size_t i = 0; i < 2000; ++i) s.put(key_of(i), value_of(i)); // a few generations
    BOOST_TEST(s.size() == 2000u);
    BOOST_TEST(count_wrong(s, 0, 2000, 1, value_of) == 0u);
    BOOST_TEST(n.tables().size() == 1u);
    expect_sound(s, "with a long name");
}

// ---- Consistent views and their callbacks ---------------------------------------------

BOOST_AUTO_TEST_CASE(get_all_visit_and_for_each_see_every_entry_once)
{
    store_name n("views");
    kv_store s(n.str());
    std::map<std::string, std::string> expected;
    for (std::size_t i = 0; i < 3000; ++i) {
        s.put(key_of(i), value_of(i));
        expected[key_of(i)] = value_of(i);
    }
    for (std::size_t i = 0; i < 3000; i += 3) {
        s.erase(key_of(i));
        expected.erase(key_of(i));
    }
    for (std::size_t i = 1; i < 3000; i += 3) {
        s.put(key_of(i), long_value_of(i));
        expected[key_of(i)] = long_value_of(i);
    }
    BOOST_TEST(s.size() == expected.size());
    BOOST_TEST((s.get_all() == expected));

    for (int pass = 0; pass < 2; ++pass) {
        std::map<std::string, std::string> seen;
        std::size_t calls = 0, repeats = 0;
        const auto f = [&](std::string_view k, std::string_view v) {
            ++calls;
            if (!seen.emplace(std::string(k), std::string(v)).second) ++repeats;
        };
        if (pass == 0)
            s.visit(f);
        else
            s.for_each(f);
        BOOST_TEST_CONTEXT((pass == 0 ? "visit" : "for_each"))
        {
            BOOST_TEST(calls == expected.size());
            BOOST_TEST(repeats == 0u);
            BOOST_TEST((seen == expected));
        }
    }
}

BOOST_AUTO_TEST_CASE(reads_inside_a_callback_work, *utf::timeout(60))
{
    store_name n("cbread");
    kv_store s(n.str());
    for (std::size_t i = 0; i < 10; ++i) s.put(key_of(i), value_of(i));
    std::size_t good = 0;
    s.visit([&](std::string_view k, std::string_view v) {
        const auto got = s.get(k);
        if (got && *got == v && s.contains(k) && s.size() == 10u) ++good;
    });
    BOOST_TEST(good == 10u);
}

BOOST_AUTO_TEST_CASE(a_callback_that_writes_gets_a_system_error_and_changes_nothing, *utf::timeout(60))
{
    store_name n("cbwrite");
    kv_store s(n.str());
    for (std::size_t i = 0; i < 10; ++i) s.put(key_of(i), value_of(i));
    const auto before = s.get_all();
    const auto stats_before = s.stats();

    const std::vector<std::pair<const char*, std::function<void()>>> writes = {
        {"put", [&] { s.put("written from a callback", "x"); }},
        {"put of an existing key", [&] { s.put(key_of(3), "overwritten from a callback"); }},
        {"erase", [&] { s.erase(key_of(4)); }},
        {"clear", [&] { s.clear(); }},
    };
    for (const auto& [what, write] : writes) {
        for (int via_for_each = 0; via_for_each < 2; ++via_for_each) {
            BOOST_TEST_CONTEXT(what << (via_for_each ? " in for_each" : " in visit"))
            {
                int calls = 0;
                const auto cb = [&, &write = write](std::string_view, std::string_view) {
                    ++calls;
                    write();
                };
                try {
                    if (via_for_each)
                        s.for_each(cb);
                    else
                        s.visit(cb);
                    BOOST_ERROR("a write inside a callback did not throw");
                } catch (const std::system_error& e) {
                    BOOST_TEST((e.code() == std::errc::resource_deadlock_would_occur), e.what());
                }
                BOOST_TEST(calls == 1); // the exception propagated out of visit at once
                BOOST_TEST((s.get_all() == before));
                BOOST_TEST(s.size() == before.size());
                BOOST_TEST(s.stats().generation == stats_before.generation);
            }
        }
    }
    // The lock was released: writes and check() (exclusive) work.
    s.put("after", "ok");
    BOOST_TEST(s.get("after").value_or("<none>") == "ok");
    BOOST_TEST(s.erase("after"));
    expect_sound(s, "after refused writes in callbacks");
}

BOOST_AUTO_TEST_CASE(an_exception_from_a_callback_propagates_and_releases_the_lock, *utf::timeout(60))
{
    struct boom {
        int calls;
    };
    store_name n("cbthrow");
    kv_store s(n.str());
    for (std::size_t i = 0; i < 10; ++i) s.put(key_of(i), value_of(i));
    for (int round = 0; round < 3; ++round) { // repeatedly: no lock leaks accumulate
        int calls = 0;
        try {
            s.visit([&](std::string_view, std::string_view) {
                if (++calls == 4) throw boom{calls};
            });
            BOOST_ERROR("the callback's exception did not propagate");
        } catch (const boom& b) {
            BOOST_TEST(b.calls == 4);
        }
        BOOST_TEST(calls == 4);
        BOOST_CHECK_THROW(s.for_each([](std::string_view, std::string_view) { throw std::runtime_error("x"); }),
                          std::runtime_error);
        // Writers and the exclusive lock of check() get in.
        s.put("after " + std::to_string(round), "ok");
        expect_sound(s, "after a throwing callback");
    }
    BOOST_TEST(s.size() == 13u);
    BOOST_TEST(s.stats().lock_recoveries == 0u);
}

// ---- Growth to a million entries ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(one_million_short_entries, *utf::timeout(600))
{
    constexpr std::size_t N = 1000000;
    constexpr std::size_t entry_bytes = 11 + 16; // key_of, value_of
    store_name n("million");
    kv_store s(n.str());
    const kv_store early(n.str()); // opened at generation 0, reads through every growth
    BOOST_TEST(s.stats().generation == 0u);

    for (std::size_t i = 0; i < N; ++i) s.put(key_of(i), value_of(i));

    auto st = s.stats();
    BOOST_TEST(s.size() == N);
    BOOST_TEST(st.entries == N);
    BOOST_TEST(st.grows > 5u);
    BOOST_TEST(st.generation > 5u); // every growth published generation + 1
    BOOST_TEST(st.table_capacity >= N);
    BOOST_TEST(st.load_factor > 0.0);
    BOOST_TEST(st.load_factor <= 0.8);
    BOOST_TEST(st.load_factor == double(N) / double(st.table_capacity), boost::test_tools::tolerance(1e-9));
    BOOST_TEST(st.bytes_used == N * entry_bytes); // key and value bytes
    BOOST_TEST(st.bytes_used <= st.bytes_mapped);
    BOOST_TEST(st.lock_recoveries == 0u);
    BOOST_TEST(st.repairs == 0u);
    const double per_entry = double(st.bytes_mapped) / double(N);
    const double overhead = per_entry - double(entry_bytes);
    BOOST_TEST_MESSAGE("1M entries of 11-byte keys and 16-byte values: bytes_mapped "
                       << st.bytes_mapped << " (" << per_entry << " B/entry, overhead " << overhead
                       << " B/entry beyond key and value), table_capacity " << st.table_capacity << ", load "
                       << st.load_factor << ", bytes_used " << st.bytes_used << ", grows " << st.grows
                       << ", generation " << st.generation);
    BOOST_TEST(overhead <= 64.0);

    // Exactly one table, named with the current generation, as big as stats() says.
    auto tables = n.tables();
    BOOST_TEST(tables.size() == 1u);
    if (tables.size() == 1) {
        BOOST_TEST(generation_of(tables[0]) == std::to_string(st.generation));
        BOOST_TEST(store_id_of(tables[0]).size() == 16u);
        BOOST_TEST(fs::file_size("/dev/shm/" + tables[0]) == st.bytes_mapped);
    }
    expect_sound(s, "after 1M puts");
    BOOST_TEST(count_wrong(s, 0, N, 1, value_of) == 0u);
    BOOST_TEST(early.size() == N);
    BOOST_TEST(count_wrong(early, 0, N, 997, value_of) == 0u);
    BOOST_TEST(!s.contains(key_of(N)));

    // Erase every even key.
    std::size_t erased = 0;
    for (std::size_t i = 0; i < N; i += 2) erased += s.erase(key_of(i)) ? 1 : 0;
    BOOST_TEST(erased == N / 2);
    BOOST_TEST(s.size() == N / 2);
    BOOST_TEST(!s.erase(key_of(0)));
    BOOST_TEST(!s.erase(key_of(N - 2)));
    st = s.stats();
    BOOST_TEST(st.entries == N / 2);
    BOOST_TEST(st.load_factor <= 0.8);
    BOOST_TEST(st.bytes_used == (N / 2) * entry_bytes);
    expect_sound(s, "after erasing half");
    std::size_t present = 0;
    for (std::size_t i = 0; i < N; i += 2) present += s.contains(key_of(i)) ? 1 : 0;
    BOOST_TEST(present == 0u);
    BOOST_TEST(count_wrong(s, 1, N, 2, value_of) == 0u);
    BOOST_TEST(early.size() == N / 2);
    BOOST_TEST(!early.contains(key_of(2)));

    // Put them back.
    for (std::size_t i = 0; i < N; i += 2) s.put(key_of(i), value_of(i));
    st = s.stats();
    BOOST_TEST(s.size() == N);
    BOOST_TEST(st.load_factor <= 0.8);
    expect_sound(s, "after reinserting half");
    BOOST_TEST(count_wrong(s, 0, N, 1, value_of) == 0u);

    // Overwrite every value with a longer one: the record area must be
    // compacted or grown along the way.
    const auto grows_before = st.grows;
    const auto gen_before = st.generation;
    for (std::size_t i = 0; i < N; ++i) s.put(key_of(i), long_value_of(i));
    st = s.stats();
    BOOST_TEST(s.size() == N);
    BOOST_TEST(st.entries == N);
    BOOST_TEST(st.grows > grows_before);
    BOOST_TEST(st.generation > gen_before);
    BOOST_TEST(st.load_factor <= 0.8);
    BOOST_TEST(st.bytes_used == N * (11 + 40));
    BOOST_TEST_MESSAGE("1M entries of 11-byte keys and 40-byte values: bytes_mapped "
                       << st.bytes_mapped << " (" << double(st.bytes_mapped) / double(N) - 51.0
                       << " B/entry overhead), grows " << st.grows << ", generation " << st.generation);
    expect_sound(s, "after overwriting with longer values");
    BOOST_TEST(count_wrong(s, 0, N, 1, long_value_of) == 0u);
    BOOST_TEST(count_wrong(early, 0, N, 991, long_value_of) == 0u);
    tables = n.tables();
    BOOST_TEST(tables.size() == 1u);
    if (tables.size() == 1) BOOST_TEST(generation_of(tables[0]) == std::to_string(st.generation));
}

BOOST_AUTO_TEST_CASE(overwriting_the_same_keys_does_not_grow_without_bound)
{
    store_name n("churn");
    kv_store s(n.str());
    constexpr std::size_t keys = 1000, rounds = 300, vsize = 100;
    std::string v(vsize, 'v');
    for (std::size_t r = 0; r < rounds; ++r) {
        for (std::size_t i = 0; i < keys; ++i) {
            std::snprintf(&v[0], vsize, "%05zu/%05zu", r, i); // writes 12 bytes, NUL included
            s.put(key_of(i), v);
        }
    }
    const auto st = s.stats();
    BOOST_TEST(s.size() == keys);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < keys; ++i) {
        std::snprintf(&v[0], vsize, "%05zu/%05zu", rounds - 1, i);
        if (s.get(key_of(i)).value_or("") != v) ++wrong;
    }
    BOOST_TEST(wrong == 0u);
    // 300 rounds appended ~34 MB of records; the live data is ~113 KB.
    BOOST_TEST_MESSAGE("after " << rounds * keys << " overwrites of " << keys << " keys: bytes_mapped "
                                << st.bytes_mapped << ", bytes_used " << st.bytes_used << ", grows " << st.grows);
    BOOST_TEST(st.bytes_mapped <= 10 * st.bytes_used + (std::size_t(4) << 20));
    BOOST_TEST(st.grows > 1u);
    BOOST_TEST(n.tables().size() == 1u);
    expect_sound(s, "after churn");
}

// ---- Clear, generations, table names ------------------------------------------------------

BOOST_AUTO_TEST_CASE(clear_publishes_a_new_empty_table_and_removes_the_old_name)
{
    store_name n("clear");
    kv_store s(n.str());
    kv_store other(n.str());
    for (std::size_t i = 0; i < 5000; ++i) s.put(key_of(i), value_of(i));
    BOOST_TEST(other.get(key_of(4999)).value_or("<none>") == value_of(4999));
    const auto before = s.stats();
    auto tables = n.tables();
    BOOST_REQUIRE(tables.size() == 1u);
    BOOST_TEST(generation_of(tables[0]) == std::to_string(before.generation));
    const std::string id = store_id_of(tables[0]);

    s.clear();
    const auto after = s.stats();
    BOOST_TEST(after.generation == before.generation + 1);
    BOOST_TEST(after.grows == before.grows + 1);
    BOOST_TEST(after.entries == 0u);
    BOOST_TEST(after.bytes_used == 0u);
    BOOST_TEST(s.empty());
    BOOST_TEST(other.empty());
    BOOST_TEST(!other.contains(key_of(0)));
    BOOST_TEST(other.get_all().empty());
    tables = n.tables();
    BOOST_TEST(tables.size() == 1u); // the old table's name is gone
    if (tables.size() == 1) {
        BOOST_TEST(generation_of(tables[0]) == std::to_string(after.generation));
        BOOST_TEST(store_id_of(tables[0]) == id); // the same store
    }
    expect_sound(s, "after clear");
    other.put("k", "v");
    BOOST_TEST(s.get("k").value_or("<none>") == "v");

    // Clear again (twice): empty, still one table name, generations never go back.
    s.clear();
    const auto gen2 = s.stats().generation;
    BOOST_TEST(gen2 == after.generation + 1);
    s.clear(); // of a table that is already fresh: may or may not build another
    BOOST_TEST(s.stats().generation >= gen2);
    BOOST_TEST(s.empty());
    BOOST_TEST(!s.contains("k"));
    tables = n.tables();
    BOOST_TEST(tables.size() == 1u);
    if (tables.size() == 1) BOOST_TEST(generation_of(tables[0]) == std::to_string(s.stats().generation));
}

BOOST_AUTO_TEST_CASE(growth_leaves_one_table_name)
{
    store_name n("tables");
    kv_store s(n.str());
    std::uint64_t last_gen = 0;
    std::size_t generations_seen = 0;
    std::size_t problems = 0;
    for (std::size_t i = 0; i < 100000; ++i) {
        s.put(key_of(i), value_of(i));
        const auto gen = s.stats().generation;
        if (gen != last_gen) {
            ++generations_seen;
            last_gen = gen;
            const auto tables = n.tables();
            if (tables.size() != 1 || generation_of(tables[0]) != std::to_string(gen)) {
                ++problems;
                BOOST_TEST_MESSAGE("at generation " << gen << ": " << tables.size() << " table names");
            }
        }
    }
    BOOST_TEST(generations_seen > 3u);
    BOOST_TEST(problems == 0u);
    BOOST_TEST(n.root_exists());
}

// ---- Exclusive opening -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(exclusive_empties_an_existing_store_for_everyone, *utf::timeout(60))
{
    store_name n("excl");
    kv_store a(n.str());
    for (std::size_t i = 0; i < 1000; ++i) a.put(key_of(i), value_of(i));
    kv_store b(n.str()); // opened before the exclusive opener
    BOOST_TEST(b.size() == 1000u);
    const auto gen = a.stats().generation;

    kv_store c(n.str(), shmkit::exclusive);
    BOOST_TEST(c.empty());
    BOOST_TEST(c.size() == 0u);
    BOOST_TEST(a.size() == 0u);
    BOOST_TEST(b.size() == 0u);
    BOOST_TEST(!b.get(key_of(0)).has_value());
    BOOST_TEST(!a.contains(key_of(999)));
    BOOST_TEST(b.get_all().empty());
    BOOST_TEST(c.stats().generation > gen);
    BOOST_TEST(n.tables().size() == 1u);

    c.put("x", "y");
    BOOST_TEST(a.get("x").value_or("<none>") == "y");
    BOOST_TEST(b.get("x").value_or("<none>") == "y");
    a.put("z", "w");
    BOOST_TEST(c.get("z").value_or("<none>") == "w");
    expect_sound(c, "after an exclusive open");

    // Again, on a store that has no table yet.
    store_name m("excl-empty");
    kv_store d(m.str());
    kv_store e(m.str(), shmkit::exclusive);
    BOOST_TEST(e.empty());
    e.put("k", "v");
    BOOST_TEST(d.get("k").value_or("<none>") == "v");
}

BOOST_AUTO_TEST_CASE(exclusive_creates_a_store_that_does_not_exist)
{
    store_name n("excl-new");
    BOOST_TEST(!n.root_exists());
    kv_store s(n.str(), shmkit::exclusive);
    BOOST_TEST(n.root_exists());
    BOOST_TEST(s.empty());
    BOOST_TEST(s.name() == n.str());
    s.put("k", "v");
    kv_store t(n.bare());
    BOOST_TEST(t.get("k").value_or("<none>") == "v");
}

// ---- remove -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(remove_unlinks_root_and_table_and_attached_handles_keep_the_old_store)
{
    store_name n("remove");
    BOOST_TEST(!kv_store::remove(n.str())); // nothing there
    kv_store a(n.str());
    a.put("k", "old");
    for (std::size_t i = 0; i < 100; ++i) a.put(key_of(i), value_of(i));
    auto tables = n.tables();
    BOOST_REQUIRE(tables.size() == 1u);
    const std::string old_id = store_id_of(tables[0]);

    BOOST_TEST(kv_store::remove(n.str()));
    BOOST_TEST(!kv_store::remove(n.str()));
    BOOST_TEST(!n.root_exists());
    BOOST_TEST(n.tables().empty());

    // The attached handle still reads its store.
    BOOST_TEST(a.size() == 101u);
    BOOST_TEST(a.get("k").value_or("<none>") == "old");
    BOOST_TEST(count_wrong(a, 0, 100, 1, value_of) == 0u);
    BOOST_TEST(a.get_all().size() == 101u);

    // A new opener gets a new, empty store.
    kv_store b(n.str());
    BOOST_TEST(b.empty());
    BOOST_TEST(!b.contains("k"));
    b.put("k", "new");
    BOOST_TEST(a.get("k").value_or("<none>") == "old");
    BOOST_TEST(b.get("k").value_or("<none>") == "new");
    tables = n.tables();
    BOOST_REQUIRE(tables.size() == 1u);
    BOOST_TEST(store_id_of(tables[0]) != old_id);

    // The removed store cannot grow: puts until one needs room throw EIDRM,
    // and that one changes nothing.
    const auto cap = a.stats().table_capacity;
    const auto size_before = a.size();
    std::size_t ok = 0;
    std::error_code ec;
    std::string failed_key;
    for (std::size_t i = 1000; i < 1000 + cap + 2; ++i) {
        try {
            a.put(key_of(i), value_of(i));
            ++ok;
        } catch (const shmkit::error& e) {
            ec = e.code();
            failed_key = key_of(i);
            BOOST_TEST_MESSAGE("growth of a removed store: " << e.what());
            break;
        }
    }
    BOOST_TEST((ec == std::errc::identifier_removed), "put on a removed store: " << ec.message() << " after "
                                                                                   << ok << " puts");
    BOOST_TEST(a.size() == size_before + ok);
    if (!failed_key.empty()) BOOST_TEST(!a.contains(failed_key));
    BOOST_TEST(a.get("k").value_or("<none>") == "old");
    expect_sound(a, "after EIDRM");
    // Nothing of the old store reappeared; the new one is untouched.
    tables = n.tables();
    BOOST_TEST(tables.size() == 1u);
    for (const auto& t : tables) BOOST_TEST(store_id_of(t) != old_id, t);
    BOOST_TEST(b.size() == 1u);
    BOOST_TEST(b.get("k").value_or("<none>") == "new");
    expect_sound(b, "the new store after the old one refused to grow");
}

BOOST_AUTO_TEST_CASE(remove_of_a_store_without_a_table)
{
    store_name n("remove-empty");
    {
        kv_store a(n.str());
        BOOST_TEST(n.root_exists());
    }
    BOOST_TEST(kv_store::remove(n.bare()));
    BOOST_TEST(!n.root_exists());
    BOOST_TEST(!kv_store::remove(n.bare()));
}

BOOST_AUTO_TEST_CASE(a_table_unlinked_behind_the_store_is_reported_at_once)
{
    store_name n("lost-table");
    kv_store a(n.str());
    a.put("k", "v");
    const auto tables = n.tables();
    BOOST_TEST_REQUIRE(tables.size() == 1u);
    BOOST_TEST_REQUIRE(::shm_unlink(("/" + tables.front()).c_str()) == 0);
    // `a` keeps the table it mapped; a new handle finds the root naming a
    // table that is gone. Nothing replaced it, so there is nothing to wait
    // for: the read fails with ENOENT at once, naming the store.
    BOOST_TEST(a.get("k").value_or("<none>") == "v");
    kv_store b(n.str());
    BOOST_CHECK_EXCEPTION(b.get("k"), shmkit::error, [&](const shmkit::error& e) {
        return e.code() == std::errc::no_such_file_or_directory &&
               std::string(e.what()).find(n.bare()) != std::string::npos &&
               std::string(e.what()).find("does not exist") != std::string::npos;
    });
    BOOST_CHECK_THROW(b.size(), shmkit::error);
    BOOST_TEST(kv_store::remove(n.bare()));
}

// ---- Refusals --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_segment_of_another_kind_is_refused_unchanged)
{
    for (const auto kind : {shmkit::structure_kind::raw, shmkit::structure_kind::buffer, shmkit::structure_kind::pool}) {
        BOOST_TEST_CONTEXT("kind " << kind)
        {
            store_name n("kind");
            shmkit::segment_layout l;
            l.kind = kind;
            l.data_size = 4096;
            l.n_rwlocks = 1;
            {
                auto seg = shmkit::segment::posix(shmkit::create_only, n.str(), l);
                std::memset(seg.data(), 0x5a, seg.data_size());
            }
            const std::string path = n.root_path();
            expect_refused(path, n.bare(), [&] { kv_store s(n.str()); }, shmkit::errc::kind_mismatch,
                           {"kv_store"});
            expect_refused(path, n.bare(), [&] { kv_store s(n.str(), shmkit::exclusive); },
                           shmkit::errc::kind_mismatch, {"kv_store"});
            BOOST_TEST(n.tables().empty());
            ::shm_unlink(n.str().c_str());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_foreign_object_is_refused_unchanged)
{
    store_name n("foreign");
    std::string garbage(8192, 'x');
    for (std::size_t i = 0; i < garbage.size(); i += 7) garbage[i] = static_cast<char>(i);
    test::write_file(n.root_path(), garbage);
    expect_refused(n.root_path(), n.bare(), [&] { kv_store s(n.str()); }, shmkit::errc::not_a_segment);
    expect_refused(n.root_path(), n.bare(), [&] { kv_store s(n.str(), shmkit::exclusive); },
                   shmkit::errc::not_a_segment);
    BOOST_TEST(n.tables().empty());
}

// ---- A root left uninitialised -------------------------------------------------------------

/// Leaves a store under `n` whose root's init word says "never
/// initialised", with a table holding one key.
void leave_uninitialised_root(const store_name& n, const shmkit::kv_options& opt = {})
{
    using shmkit::detail::segment_header;
    {
        kv_store a(n.str(), opt);
        a.put("old", "data");
    }
    BOOST_REQUIRE(n.tables().size() == 1u);
    const int fd = ::open(n.root_path().c_str(), O_RDWR);
    BOOST_REQUIRE(fd >= 0);
    std::uint32_t state = 1;
    BOOST_REQUIRE(::pread(fd, &state, sizeof state, offsetof(segment_header, init_state)) == ssize_t(sizeof state));
    BOOST_TEST(state == shmkit::detail::init_ready);
    state = 0;
    BOOST_REQUIRE(::pwrite(fd, &state, sizeof state, offsetof(segment_header, init_state)) == ssize_t(sizeof state));
    ::close(fd);
}

bool still_uninitialised(const store_name& n)
{
    using shmkit::detail::segment_header;
    std::uint32_t state = shmkit::detail::init_ready;
    const int fd = ::open(n.root_path().c_str(), O_RDONLY);
    if (fd < 0) return false;
    const bool got = ::pread(fd, &state, sizeof state, offsetof(segment_header, init_state)) == ssize_t(sizeof state);
    ::close(fd);
    return got && state != shmkit::detail::init_ready;
}

BOOST_AUTO_TEST_CASE(a_root_never_initialised_is_taken_over_after_init_timeout, *utf::timeout(120))
{
    store_name n("init");
    leave_uninitialised_root(n);
    const std::vector<std::string> old_tables = n.tables();
    shmkit::kv_options opt;
    opt.init_timeout = 200ms;
    kv_store b(n.str(), opt);
    BOOST_TEST(b.empty());
    BOOST_TEST(!b.contains("old"));
    // The old store's table went with its root: nothing else would ever
    // remove its name.
    BOOST_TEST(n.tables().empty());
    b.put("new", "value");
    BOOST_TEST(b.get("new").value_or("<none>") == "value");
    expect_sound(b, "after taking over an uninitialised root");
    kv_store c(n.str()); // the name is a valid store again
    BOOST_TEST(c.get("new").value_or("<none>") == "value");
    const std::vector<std::string> now = n.tables();
    BOOST_TEST_REQUIRE(now.size() == 1u);
    BOOST_TEST(now[0] != old_tables[0]);
}

// A process killed half-way through a takeover (after its table names, say,
// before the root) leaves the next opener a name to take over or a store.
BOOST_AUTO_TEST_CASE(a_taker_killed_anywhere_leaves_one_store_to_the_next_opener, *utf::timeout(300))
{
    std::mt19937 rng(20261123);
    int outcomes[3] = {}; // killed before touching the old store, half-way or before its put, after it
    for (int round = 0; round < 40; ++round) {
        store_name n("killed");
        leave_uninitialised_root(n);
        shmkit::kv_options now;
        now.init_timeout = 0ms;
        test::pipe_pair ready;
        test::child taker([&] {
            ready.send();
            kv_store s(n.str(), now);
            s.put("taker", "here");
            return 0;
        });
        BOOST_TEST_REQUIRE(ready.receive(10s) == 'x');
        // The moment of the kill is what varies, not an ordering.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 600));
        taker.kill();
        taker.wait();
        const bool old_root_left = n.root_exists() && !n.tables().empty() && still_uninitialised(n);
        kv_store s(n.str(), now);
        BOOST_TEST(!s.contains("old"), "round " << round);
        ++outcomes[old_root_left ? 0 : s.contains("taker") ? 2 : 1];
        s.put("next", "opener");
        BOOST_TEST(s.get("next").value_or("<none>") == "opener");
        BOOST_TEST(n.tables().size() == 1u, "round " << round << ": " << n.tables().size() << " table names");
        expect_sound(s, "after a killed takeover");
    }
    BOOST_TEST_MESSAGE("takers killed before the takeover: " << outcomes[0] << ", during it or before their put: "
                                                              << outcomes[1] << ", after: " << outcomes[2]);
}

/// A takeover of `n`'s incomplete root by a process killed at its `nth`
/// call of system call `nr` with arguments `args`.
void takeover_killed_before(const store_name& n, long nr, std::initializer_list<test::syscall_arg> args, unsigned nth)
{
    shmkit::kv_options now;
    now.init_timeout = 0ms;
    test::child taker([&] {
        test::die_before_syscall(nr, args, nth);
        kv_store s(n.str(), now);
        return 0;
    });
    BOOST_TEST_REQUIRE(taker.wait(30s) == test::killed_before_syscall);
}

/// The next opener of `n` takes over whatever the killed taker left and
/// gets an empty store of its own.
void expect_next_opener_gets_a_fresh_store(const store_name& n, const char* what)
{
    shmkit::kv_options now;
    now.init_timeout = 0ms;
    kv_store s(n.str(), now);
    BOOST_TEST(s.empty());
    s.put("k", "v");
    BOOST_TEST(n.tables().size() == 1u);
    expect_sound(s, what);
}

// A taker unlinks the old store's table names, then its root: killed at
// the root's unlink (the second), the incomplete root is left without
// tables.
BOOST_AUTO_TEST_CASE(a_taker_killed_between_the_table_names_and_the_root_leaves_a_root_the_next_opener_takes_over,
                     *utf::timeout(60))
{
    store_name n("half");
    leave_uninitialised_root(n);
    takeover_killed_before(n, __NR_unlink, {}, 2);
    BOOST_TEST(n.root_exists());
    BOOST_TEST(still_uninitialised(n));
    BOOST_TEST(n.tables().empty());
    expect_next_opener_gets_a_fresh_store(n, "after taking over a root without tables");
}

// Killed after the root's unlink, before it creates the new one: nothing is
// left under the name.
BOOST_AUTO_TEST_CASE(a_taker_killed_after_unlinking_the_root_leaves_the_name_free, *utf::timeout(60))
{
    store_name n("gone");
    leave_uninitialised_root(n);
    takeover_killed_before(n, __NR_openat, {{2, O_RDWR | O_CLOEXEC | O_TMPFILE}}, 1);
    BOOST_TEST(!n.root_exists());
    BOOST_TEST(n.tables().empty());
    expect_next_opener_gets_a_fresh_store(n, "after a takeover killed with the name free");
}

// Only kv_store's own table names go with the root: other objects whose
// names start with the store's, and an incomplete segment of another kind
// under the name itself, are left as they are.
BOOST_AUTO_TEST_CASE(a_takeover_leaves_what_is_not_the_stores_alone)
{
    store_name n("alone");
    leave_uninitialised_root(n);
    const std::vector<std::string> others = {n.bare() + "~backup", n.bare() + "~0123456789abcdef~1x",
                                             n.bare() + "~0123456789ABCDEF~1", n.bare() + "~0123456789abcdef"};
    for (const auto& o : others) test::write_file("/dev/shm/" + o, "not a table");
    shmkit::kv_options now;
    now.init_timeout = 0ms;
    { kv_store s(n.str(), now); }
    for (const auto& o : others) {
        BOOST_TEST(test::read_file("/dev/shm/" + o) == "not a table", o);
        ::shm_unlink(("/" + o).c_str());
    }

    store_name m("kind");
    {
        shmkit::buffer<std::uint64_t> b(shmkit::create_only, m.root_path(), 16);
    }
    {
        using shmkit::detail::segment_header;
        const int fd = ::open(m.root_path().c_str(), O_RDWR);
        BOOST_REQUIRE(fd >= 0);
        const std::uint32_t state = 0;
        BOOST_REQUIRE(::pwrite(fd, &state, sizeof state, offsetof(segment_header, init_state)) == ssize_t(sizeof state));
        ::close(fd);
    }
    const std::string before = test::read_file(m.root_path());
    BOOST_TEST(test::error_code_of([&] { kv_store s(m.str(), now); }) == int(shmkit::errc::not_initialised));
    BOOST_TEST(test::read_file(m.root_path()) == before);
}

// A root that this process may open but not unlink (another user's, in
// /dev/shm whose sticky bit keeps others from unlinking): the opener says
// so, rather than try again and again, and the root stays.
BOOST_AUTO_TEST_CASE(a_root_that_cannot_be_unlinked_is_reported_and_left, *utf::timeout(120))
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: not root, cannot become another user");
        return;
    }
    store_name n("perm");
    shmkit::kv_options everyone;
    everyone.mode = 0666;
    leave_uninitialised_root(n, everyone);
    const std::string before = test::read_file(n.root_path());
    test::child other([&] {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 2;
        ::prctl(PR_SET_DUMPABLE, 1); // /proc/self stays ours after setuid
        shmkit::kv_options now;
        now.init_timeout = 0ms;
        // shm_unlink(3) reports the sticky bit's EPERM as EACCES.
        const test::thrown t = test::error_of([&] { kv_store s(n.str(), now); });
        if (t.code == EACCES || t.code == EPERM) return 0;
        std::fprintf(stderr, "as nobody: %d %s\n", t.code, t.what.c_str());
        return 3;
    });
    BOOST_TEST(other.wait(30s) == 0);
    BOOST_TEST(test::read_file(n.root_path()) == before);
    BOOST_TEST(n.tables().size() == 1u);
}

/// True if process `pid` has `path` open.
bool has_open(pid_t pid, const std::string& path)
{
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::error_code ignored;
        if (fs::read_symlink(e.path(), ignored) == path) return true;
    }
    return false;
}

// Takers queued on the root while another one takes it over: the name
// then holds a new store, with a key in it, and every taker must open that
// store rather than take its name over too.
BOOST_AUTO_TEST_CASE(takers_that_queued_behind_another_open_the_store_it_made, *utf::timeout(120))
{
    constexpr int takers = 4;
    store_name n("queue");
    leave_uninitialised_root(n);
    // We are the first taker: we hold the root's lock.
    const int root_fd = ::open(n.root_path().c_str(), O_RDONLY);
    BOOST_REQUIRE(root_fd >= 0);
    BOOST_REQUIRE(::flock(root_fd, LOCK_EX) == 0);
    // A queued taker gives up after a second (max(init_timeout, 1 s)): the
    // takers start together, once all are forked, so that this parent's
    // forks (slow under a sanitizer on a loaded machine) do not use that
    // second up before the root changes.
    test::pipe_pair gate;
    std::vector<test::child> children;
    for (int i = 0; i < takers; ++i) {
        children.emplace_back([&, i] {
            ::close(gate.wr);
            if (gate.receive() != 0) return 97; // EOF only: every taker is forked
            shmkit::kv_options now;
            now.init_timeout = 0ms;
            kv_store s(n.str(), now);
            s.put("taker-" + std::to_string(i), "here");
            return 0;
        });
    }
    ::close(std::exchange(gate.wr, -1));
    // Until each of them has the root open, waiting for its lock (bounded).
    for (auto& c : children) {
        const auto end = std::chrono::steady_clock::now() + 10s;
        while (!has_open(c.pid(), n.root_path()) && std::chrono::steady_clock::now() < end)
            std::this_thread::yield();
        BOOST_TEST_REQUIRE(has_open(c.pid(), n.root_path()));
    }
    // What the first taker does: the root goes, a new store comes.
    for (const auto& t : n.tables()) ::shm_unlink(("/" + t).c_str());
    BOOST_REQUIRE(::shm_unlink(n.str().c_str()) == 0);
    kv_store s(n.str());
    s.put("first", "store");
    ::close(root_fd); // the lock goes
    for (auto& c : children) BOOST_TEST(c.wait() == 0);
    for (int i = 0; i < takers; ++i) BOOST_TEST(s.contains("taker-" + std::to_string(i)), "taker " << i << "'s key");
    BOOST_TEST(s.contains("first"));
    BOOST_TEST(n.tables().size() == 1u);
    expect_sound(s, "after queued takers");
}

// Several processes time out on the same incomplete root at once: one of
// them takes it over and the others must open the store it made, not
// unlink it and make one of their own (each would then write into a store
// the others never see).
BOOST_AUTO_TEST_CASE(processes_taking_over_one_root_at_once_end_in_one_store, *utf::timeout(300))
{
    constexpr int rounds = 20;
    constexpr int takers = 6;
    for (int round = 0; round < rounds; ++round) {
        store_name n("race");
        leave_uninitialised_root(n);
        test::pipe_pair go;
        std::vector<test::child> children;
        for (int i = 0; i < takers; ++i) {
            children.emplace_back([&, i] {
                ::close(go.wr);
                go.wr = -1;
                if (go.receive() != 0) return 3; // EOF: everybody starts
                shmkit::kv_options opt;
                opt.init_timeout = 20ms;
                kv_store s(n.str(), opt);
                s.put("taker-" + std::to_string(i), "here");
                return 0;
            });
        }
        ::close(go.wr); // the start signal: every child's read returns EOF
        go.wr = -1;
        for (auto& c : children) BOOST_TEST_REQUIRE(c.wait() == 0);
        kv_store s(n.str());
        for (int i = 0; i < takers; ++i)
            BOOST_TEST(s.contains("taker-" + std::to_string(i)), "round " << round << ": taker " << i << "'s key");
        BOOST_TEST(!s.contains("old"));
        BOOST_TEST(n.tables().size() == 1u, "round " << round << ": " << n.tables().size() << " table names");
        expect_sound(s, "after a takeover race");
    }
}

// ---- Options -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(mode_applies_to_root_and_tables)
{
    store_name n("mode");
    shmkit::kv_options opt;
    opt.mode = 0640;
    kv_store s(n.str(), opt);
    for (std::size_t i = 0; i < 5000; ++i) s.put(key_of(i), value_of(i));
    struct stat st {};
    BOOST_REQUIRE(::stat(n.root_path().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0640u);
    for (const auto& t : n.tables()) {
        BOOST_REQUIRE(::stat(("/dev/shm/" + t).c_str(), &st) == 0);
        BOOST_TEST((st.st_mode & 07777) == 0640u, t);
    }
}

BOOST_AUTO_TEST_CASE(attach_capacity_bounds_the_handles)
{
    store_name n("attach");
    shmkit::kv_options opt;
    opt.attach_capacity = 2;
    std::optional<kv_store> a(std::in_place, n.str(), opt);
    kv_store b(n.str());
    a->put("k", "v");
    BOOST_TEST(test::error_code_of([&] { kv_store c(n.str()); }) ==
               static_cast<int>(shmkit::errc::attach_table_full));
    a.reset();
    kv_store c(n.str());
    BOOST_TEST(c.get("k").value_or("<none>") == "v");
}

// ---- Stats ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stats_follow_what_was_done)
{
    store_name n("stats");
    kv_store s(n.str());
    auto st = s.stats();
    BOOST_TEST(st.entries == 0u);
    BOOST_TEST(st.generation == 0u);
    BOOST_TEST(st.grows == 0u);
    BOOST_TEST(st.bytes_used == 0u);
    BOOST_TEST(st.load_factor == 0.0);
    BOOST_TEST(st.lock_recoveries == 0u);
    BOOST_TEST(st.repairs == 0u);

    for (std::size_t i = 0; i < 10; ++i) s.put(key_of(i), value_of(i));
    st = s.stats();
    BOOST_TEST(st.entries == 10u);
    BOOST_TEST(st.generation > 0u);
    BOOST_TEST(st.table_capacity >= 10u);
    BOOST_TEST(st.load_factor == 10.0 / double(st.table_capacity), boost::test_tools::tolerance(1e-9));
    BOOST_TEST(st.bytes_used == 10 * (11 + 16u)); // key and value bytes
    BOOST_TEST(st.bytes_mapped > st.bytes_used);

    for (std::size_t i = 0; i < 3; ++i) s.erase(key_of(i));
    st = s.stats();
    BOOST_TEST(st.entries == 7u);
    BOOST_TEST(st.bytes_used == 7 * (11 + 16u));
    // Erased slots count until the table is rebuilt (or their chain ends).
    BOOST_TEST(st.load_factor >= 7.0 / double(st.table_capacity) - 1e-9);
    BOOST_TEST(st.load_factor <= 10.0 / double(st.table_capacity) + 1e-9);

    s.put(key_of(5), std::string(100, 'x')); // overwrite: 16 -> 100 bytes
    s.put("", "");                            // an entry of 0 bytes
    BOOST_TEST(s.stats().bytes_used == 7 * (11 + 16u) - 16 + 100);
    BOOST_TEST(s.stats().entries == 8u);

    const auto gen = s.stats().generation, grows = s.stats().grows;
    s.clear();
    st = s.stats();
    BOOST_TEST(st.entries == 0u);
    BOOST_TEST(st.bytes_used == 0u);
    BOOST_TEST(st.load_factor == 0.0);
    BOOST_TEST(st.generation == gen + 1);
    BOOST_TEST(st.grows == grows + 1);
    BOOST_TEST(st.lock_recoveries == 0u);
    BOOST_TEST(st.repairs == 0u);

    // Another handle sees the same counters.
    kv_store t(n.str());
    const auto ts = t.stats();
    BOOST_TEST(ts.entries == st.entries);
    BOOST_TEST(ts.generation == st.generation);
    BOOST_TEST(ts.grows == st.grows);
    BOOST_TEST(ts.table_capacity == st.table_capacity);
}

// ---- Handles ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(two_handles_see_each_others_writes)
{
    store_name n("handles");
    kv_store a(n.str());
    kv_store b(n.str());
    a.put("from a", "1");
    BOOST_TEST(b.get("from a").value_or("<none>") == "1"); // b maps the first table
    b.put("from b", "2");
    BOOST_TEST(a.get("from b").value_or("<none>") == "2");
    b.put("from a", "overwritten by b");
    BOOST_TEST(a.get("from a").value_or("<none>") == "overwritten by b");
    BOOST_TEST(a.erase("from b"));
    BOOST_TEST(!b.contains("from b"));

    // Growth by one handle; the other follows.
    for (std::size_t i = 0; i < 50000; ++i) (i % 2 ? a : b).put(key_of(i), value_of(i));
    BOOST_TEST(a.size() == 50001u);
    BOOST_TEST(b.size() == 50001u);
    BOOST_TEST(count_wrong(a, 0, 50000, 1, value_of) == 0u);
    BOOST_TEST(count_wrong(b, 0, 50000, 1, value_of) == 0u);
    BOOST_TEST(a.stats().generation == b.stats().generation);
    expect_sound(b, "after writes through two handles");
}

BOOST_AUTO_TEST_CASE(moved_handles_work)
{
    store_name n("move");
    store_name m("move-other");
    kv_store a(n.str());
    a.put("k", "v");
    kv_store b(std::move(a));
    BOOST_TEST(b.name() == n.str());
    BOOST_TEST(b.get("k").value_or("<none>") == "v");
    b.put("k2", "v2");
    kv_store c(m.str());
    c.put("other", "store");
    c = std::move(b); // c leaves the other store
    BOOST_TEST(c.name() == n.str());
    BOOST_TEST(c.get("k2").value_or("<none>") == "v2");
    BOOST_TEST(!c.contains("other"));
    for (std::size_t i = 0; i < 20000; ++i) c.put(key_of(i), value_of(i)); // grows through a moved handle
    BOOST_TEST(c.size() == 20002u);
    expect_sound(c, "through a moved-to handle");
    kv_store d(m.bare());
    BOOST_TEST(d.get("other").value_or("<none>") == "store");

    std::vector<kv_store> v;
    for (int i = 0; i < 8; ++i) v.emplace_back(n.str()); // reallocations move handles
    for (auto& h : v) BOOST_TEST(h.size() == 20002u);
}

BOOST_AUTO_TEST_CASE(a_child_process_writes_and_grows_the_store)
{
    store_name n("child");
    kv_store s(n.str());
    s.put("parent", "p");
    test::child ch([&] {
        kv_store c(n.str());
        if (c.get("parent").value_or("") != "p") return 1;
        for (std::size_t i = 0; i < 30000; ++i) c.put(key_of(i), value_of(i));
        return c.size() == 30001u ? 0 : 2;
    });
    BOOST_TEST(ch.wait() == 0);
    BOOST_TEST(s.size() == 30001u);
    BOOST_TEST(count_wrong(s, 0, 30000, 1, value_of) == 0u);
    BOOST_TEST(n.tables().size() == 1u);
    expect_sound(s, "after a child's writes");
    BOOST_TEST(s.stats().lock_recoveries == 0u);
    BOOST_TEST(s.stats().repairs == 0u);
}

// ---- check() ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(check_is_true_on_a_healthy_store)
{
    store_name n("check");
    kv_store s(n.str());
    std::string why = "unchanged";
    BOOST_TEST(s.check(&why));
    BOOST_TEST(s.check());
    for (std::size_t i = 0; i < 10000; ++i) s.put(key_of(i), value_of(i));
    for (std::size_t i = 0; i < 10000; i += 5) s.erase(key_of(i));
    why.clear();
    BOOST_TEST(s.check(&why), why);
}

BOOST_AUTO_TEST_CASE(check_reports_a_corrupted_table, *boost::unit_test::timeout(120))
{
    // The table's layout (detail/kv_layout.hpp): at the segment header's
    // data_offset a kv_table_header, then params[0] cells of 40 bytes (a
    // meta word, then 32 bytes), then the arena of params[1] bytes.
    using shmkit::detail::kv_cell;
    using shmkit::detail::kv_meta;
    using shmkit::detail::kv_table_header;
    using shmkit::detail::segment_header;
    store_name n("corrupt");
    kv_store s(n.str());
    for (std::size_t i = 0; i < 1000; ++i) s.put(key_of(i), value_of(i)); // in their cells
    for (std::size_t i = 0; i < 10; ++i) s.put("big " + key_of(i), pattern(100, unsigned(i))); // in the arena
    expect_sound(s, "before corruption");
    const auto tables = n.tables();
    BOOST_REQUIRE(tables.size() == 1u);
    const std::string path = "/dev/shm/" + tables[0];
    const std::string bytes = test::read_file(path);
    BOOST_REQUIRE(bytes.size() >= shmkit::detail::header_size);
    const auto word = [&](std::size_t offset) {
        std::uint64_t v;
        std::memcpy(&v, bytes.data() + offset, sizeof v);
        return v;
    };
    const std::uint64_t data_offset = word(offsetof(segment_header, data_offset));
    const std::uint64_t cells = word(offsetof(segment_header, params) + 0 * 8);
    const std::uint64_t arena = word(offsetof(segment_header, params) + 1 * 8);
    BOOST_REQUIRE(cells == s.stats().table_capacity);
    const std::uint64_t index = data_offset + sizeof(kv_table_header);
    BOOST_REQUIRE(index + cells * sizeof(kv_cell) + arena <= bytes.size());
    const auto meta_at = [&](std::uint64_t i) { return index + i * sizeof(kv_cell); };
    std::uint64_t small = cells, big = cells, empty = cells;
    for (std::uint64_t i = 0; i < cells; ++i) {
        const std::uint64_t m = word(meta_at(i));
        if (kv_meta::is_inline(m) && small == cells) small = i;
        if (kv_meta::live(m) && !kv_meta::is_inline(m) && big == cells) big = i;
        if (kv_meta::empty(m)) empty = i;
    }
    BOOST_REQUIRE(small < cells);
    BOOST_REQUIRE(big < cells);
    BOOST_REQUIRE(empty < cells);
    const std::uint64_t small_meta = word(meta_at(small)), big_meta = word(meta_at(big));
    const std::uint64_t entries_at = data_offset + offsetof(kv_table_header, entries);

    const int fd = ::open(path.c_str(), O_RDWR);
    BOOST_REQUIRE(fd >= 0);
    const auto poke = [&](std::uint64_t offset, const std::string& b) {
        BOOST_REQUIRE(::pwrite(fd, b.data(), b.size(), static_cast<off_t>(offset)) == ssize_t(b.size()));
    };
    const auto u64 = [](std::uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
    const auto original = [&](std::uint64_t offset, std::size_t len) { return bytes.substr(offset, len); };
    struct corruption {
        const char* what;
        std::uint64_t where;
        std::string bad;
    };
    const std::vector<corruption> corruptions = {
        {"hash tag of another key", meta_at(small), u64(small_meta ^ (std::uint64_t(1) << 63))},
        {"inline lengths beyond the cell", meta_at(small), u64((small_meta & ~std::uint64_t(0xffff)) | (30 << 8) | 30)},
        {"arena offset beyond the arena", meta_at(big),
         u64((big_meta & ~kv_meta::payload_mask) | ((arena + 4096) / 8))},
        {"the same entry in a second cell", meta_at(empty), original(meta_at(small), sizeof(kv_cell))},
        {"the same arena entry in a second cell", meta_at(empty), original(meta_at(big), sizeof(kv_cell))},
        {"entries counter off by one", entries_at, u64(word(entries_at) + 1)},
    };
    for (const auto& c : corruptions) {
        BOOST_TEST_CONTEXT(c.what)
        {
            poke(c.where, c.bad);
            // Lookups still end (a corrupted cell is never followed, never
            // looped on): at most the corrupted key reads wrong or missing.
            BOOST_TEST(count_wrong(s, 0, 1000, 1, value_of) <= 1u);
            std::string why;
            BOOST_TEST(!s.check(&why));
            BOOST_TEST(contains(why, n.bare()), why);
            BOOST_TEST_MESSAGE(c.what << ": " << why);
            poke(c.where, original(c.where, c.bad.size()));
            why.clear();
            BOOST_TEST(s.check(&why), "after restoring: " << why);
        }
    }
    ::close(fd);
    BOOST_TEST((test::read_file(path) == bytes));
    BOOST_TEST(s.size() == 1010u);
    BOOST_TEST(count_wrong(s, 0, 1000, 1, value_of) == 0u);
}

// A full /dev/shm: the put that needs a bigger table fails with ENOSPC and
// the store stays as it was (tables are reserved before they are used, so
// nothing is ever SIGBUSed). Runs in a child with a private mount namespace
// and a 4 MiB tmpfs on /dev/shm; where that cannot be set up (no
// CAP_SYS_ADMIN), the case says so and checks nothing.
BOOST_AUTO_TEST_CASE(a_full_dev_shm_fails_the_put_and_changes_nothing)
{
    test::child c([] {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=4m") != 0)
            return 77;
        shmkit::kv_store s("full");
        const std::string value(1000, 'v');
        std::size_t stored = 0;
        int code = 0;
        try {
            for (;; ++stored) s.put("k" + std::to_string(stored), value);
        } catch (const shmkit::error& e) {
            code = e.code().value();
        }
        if (code != ENOSPC) return 1;
        if (s.size() != stored) return 2;
        std::string why;
        if (!s.check(&why)) return 3;
        for (std::size_t k = 0; k < stored; ++k)
            if (s.get("k" + std::to_string(k)) != value) return 4;
        // Still usable: an overwrite that fits, and an erase.
        s.put("k0", "small");
        if (s.get("k0") != std::string("small") || !s.erase("k1")) return 5;
        return stored > 100 ? 0 : 6;
    });
    const int rc = c.wait();
    if (rc == 77) {
        BOOST_TEST_MESSAGE("no private mount namespace here (needs CAP_SYS_ADMIN): ENOSPC case not run");
        return;
    }
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(reserve_builds_the_table_once_for_the_puts_to_come)
{
    store_name n("reserve");
    kv_store s(n.str());
    s.reserve(100000);
    const shmkit::kv_stats before = s.stats();
    BOOST_TEST(before.grows == 1u);
    BOOST_TEST(before.table_capacity * 8 >= std::size_t(100000) * 10);
    for (int i = 0; i < 100000; ++i) s.put("k" + std::to_string(i), "v" + std::to_string(i));
    const shmkit::kv_stats after = s.stats();
    BOOST_TEST(after.grows == before.grows); // no rebuild while the puts fit
    BOOST_TEST(after.table_capacity == before.table_capacity);
    BOOST_TEST(s.size() == 100000u);
    s.reserve(10); // never shrinks
    BOOST_TEST(s.stats().grows == after.grows);
    s.reserve(300000); // keeps every entry
    BOOST_TEST(s.stats().grows == after.grows + 1);
    BOOST_TEST(s.size() == 100000u);
    BOOST_TEST((s.get("k99999") == std::string("v99999")));
    std::string why;
    BOOST_TEST(s.check(&why), why);
    BOOST_TEST(kv_store::remove(n.str()));
    BOOST_TEST(test::error_code_of([&] { s.reserve(10000000); }) == EIDRM);
}

// A handle that only reads while another grows the store does not keep the
// tables it has left behind mapped: each is unmapped once nothing reads it.
BOOST_AUTO_TEST_CASE(replaced_tables_are_unmapped_by_a_reading_handle)
{
    store_name n("unmap");
    kv_store writer(n.str()), reader(n.str());
    const std::string prefix = n.bare() + "~";
    auto mapped_tables = [&] {
        std::set<std::string> files;
        std::istringstream maps(test::read_file("/proc/self/maps"));
        for (std::string line; std::getline(maps, line);) {
            const auto at = line.find(prefix);
            if (at != std::string::npos) files.insert(line.substr(at));
        }
        return files.size();
    };
    std::string out;
    for (int round = 0; round < 12; ++round) {
        for (int i = 0; i < 3000; ++i) writer.put("r" + std::to_string(round) + ":" + std::to_string(i), "v");
        for (int k = 0; k < 3; ++k) BOOST_TEST(reader.get("r" + std::to_string(round) + ":0", out));
        BOOST_TEST(mapped_tables() <= 1u, "round " << round);
    }
    BOOST_TEST(writer.stats().grows >= 4u);
}
