// shmkit::share, native backend: IPC::ShareLite's string keys (share_key and
// the string constructor); opening (create, exclusive, ENOENT / EEXIST,
// accessors, permission bits, size hints); a fresh share; values of every
// size from 0 bytes to 256 MiB, binary and with NULs, read back by other
// handles and other processes, with the version, the segment count and
// stats(); the value segments many stores leave in /dev/shm; the locks
// across real processes (exclusive, shared, non-blocking, timed, a blocked
// waiter released) and within one handle (stores and fetches under a held
// lock, mode switches, no-ops, std::unique_lock / std::shared_lock, bad
// flags); fetch_view(); destroy (by the handle's process only, never by a
// forked child unless it asks); share::remove() and what attached handles
// can still do; moved-from handles; four processes incrementing a counter
// under the exclusive lock.
//
// Every test uses its own key, removed (with any value segment left) before
// use and on scope exit. Children are forked (test::child), ordered by pipes
// and report through their exit codes; nothing waits on a sleep.
#define BOOST_TEST_MODULE share
#include "share_support.hpp"

#include <shmkit/share.hpp>

#include <climits>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

using namespace std::chrono_literals;
using shmkit::share;
using shmkit::share_options;
using test::first_difference;
using test::pattern;
namespace utf = boost::unit_test;

namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * 1024;

// ---- Helpers -------------------------------------------------------------------

/// The names in /dev/shm that begin with `prefix` (all of them when `exact`
/// is false; only `prefix` itself when true).
std::vector<std::string> shm_names(const std::string& prefix, bool exact = false)
{
    std::vector<std::string> out;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const struct dirent* e = ::readdir(d)) {
            const std::string_view s(e->d_name);
            if (exact ? s == prefix : s.substr(0, prefix.size()) == prefix) out.emplace_back(s);
        }
        ::closedir(d);
    }
    return out;
}

/// The value segments of the share of `key` now in /dev/shm ("NAME~...").
std::vector<std::string> value_segments(key_t key) { return shm_names(share::native_name(key) + "~"); }

/// The permission bits of `st` in octal ("0640").
std::string permissions(const struct stat& st)
{
    char b[16];
    std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return b;
}

/// Checks that the share of `key` has value segments, each with the
/// permission bits `bits` ("0640").
void check_value_segment_permissions(key_t key, const std::string& bits)
{
    const auto segs = value_segments(key);
    BOOST_TEST_REQUIRE(segs.size() >= 1u);
    for (const auto& n : segs) {
        BOOST_TEST_CONTEXT(n)
        {
            struct stat st {};
            BOOST_TEST_REQUIRE(::stat(("/dev/shm/" + n).c_str(), &st) == 0);
            BOOST_TEST(permissions(st) == bits);
        }
    }
}

bool root_exists(key_t key) { return !shm_names(share::native_name(key), true).empty(); }

/// Owns a key: the share of that key is removed before use (a leftover of a
/// crashed earlier run) and on scope exit, and whatever names it left in
/// /dev/shm are unlinked too, so a failing test leaves nothing behind.
class share_guard {
public:
    share_guard() : share_guard(test::unique_key(0x5a)) {} // a key no other test uses
    explicit share_guard(key_t key) : key_(key) { clean(); }
    ~share_guard() { clean(); }
    share_guard(const share_guard&) = delete;
    share_guard& operator=(const share_guard&) = delete;

    key_t key() const { return key_; }
    std::string path() const { return "/dev/shm/" + share::native_name(key_); }

private:
    void clean() const noexcept
    {
        try {
            share::remove(key_);
        } catch (...) {
        }
        try {
            ::shm_unlink(("/" + share::native_name(key_)).c_str());
            for (const auto& n : value_segments(key_)) ::shm_unlink(("/" + n).c_str());
        } catch (...) {
        }
    }
    key_t key_;
};

share_options created()
{
    share_options o;
    o.create = true;
    return o;
}

share_options created_with_size(std::size_t size)
{
    share_options o = created();
    o.size = size;
    return o;
}

/// In a forked child: opens the share of `key` (its own handle) and tries
/// lock(flags | lock_nb). Returns 1 if it got the lock, 0 if not, 99 if
/// something threw, -1 if the child did not finish.
int other_process_gets(key_t key, int flags)
{
    test::child c([&] {
        share mine(key);
        const bool got = mine.lock(flags | share::lock_nb);
        if (got != (mine.held() == (flags & (share::lock_sh | share::lock_ex)))) return 10;
        return got ? 1 : 0;
    });
    return c.wait(30s);
}

/// An anonymous shared int for children to report through; unmapped on
/// scope exit.
struct shared_flag {
    std::atomic<int>* p = test::shared_scratch<std::atomic<int>>();
    shared_flag() { p->store(0); }
    ~shared_flag() { ::munmap(p, sizeof *p); }
    std::atomic<int>& operator*() const { return *p; }
};

/// This process holds lock_ex on a fresh share (`s`) while a child process
/// (`waiter`), with a handle of its own, blocks in lock(mode). Once it has the
/// lock the child sets acquired(), checks that it holds `mode` and sees
/// "parent" (what the parent stored before unlocking), runs `under_lock`
/// and unlocks; its exit status says which check failed.
struct blocked_waiter {
    share_guard g;
    share s{g.key(), created()};
    shared_flag flag;
    test::pipe_pair to_parent;
    std::optional<test::child> waiter;

    explicit blocked_waiter(int mode, const std::function<void(share&)>& under_lock = {})
    {
        BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
        const key_t key = g.key();
        waiter.emplace([&] {
            share mine(key);
            to_parent.send('r');
            if (!mine.lock(mode)) return 1;
            *flag = 1;
            if (mine.held() != mode) return 2;
            if (mine.fetch() != "parent") return 3; // what the parent stored before unlocking
            if (under_lock) under_lock(mine);
            mine.unlock();
            return 0;
        });
        BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'r');
        test::until_sleeping(waiter->pid());
    }

    /// 1 once the child has the lock.
    int acquired() const { return (*flag).load(); }
};

/// The round trip of one value: stores it through one handle, reads it back
/// through that handle, a second handle and a forked child's own handle,
/// with the version, num_segments() and stats() each sees.
void check_round_trip(std::size_t size)
{
    BOOST_TEST_CONTEXT("value of " << size << " bytes")
    {
        share_guard g;
        share s(g.key(), created());
        share other(g.key());
        const std::string v = pattern(size);
        if (size >= 1) BOOST_TEST_REQUIRE(v.find('\0') != std::string::npos);

        const std::uint64_t v0 = s.version();
        s.store(v);
        BOOST_TEST(s.version() == v0 + 1);
        BOOST_TEST(other.version() == v0 + 1);

        test::check_fetches(s, v);
        test::check_fetches(other, v);

        const std::size_t segments = size <= 65536 ? 1 : 2;
        BOOST_TEST(s.num_segments() == segments);
        BOOST_TEST(other.num_segments() == segments);
        const shmkit::share_stats st = s.stats();
        BOOST_TEST(st.version == v0 + 1);
        BOOST_TEST(st.value_size == size);
        BOOST_TEST(st.segments == segments);
        BOOST_TEST(st.bytes_mapped >= s.size() + (segments == 2 ? size : 0));
        BOOST_TEST(st.lock_recoveries == 0u);
        BOOST_TEST(st.repairs == 0u);
        const shmkit::share_stats ost = other.stats();
        BOOST_TEST(ost.version == v0 + 1);
        BOOST_TEST(ost.value_size == size);
        BOOST_TEST(ost.segments == segments);

        // Another process: the same bytes, the same version, and its own
        // store counted by everyone.
        const key_t key = g.key();
        test::child c([&] {
            share mine(key);
            if (mine.version() != v0 + 1) return 1;
            const std::string seen = mine.fetch();
            if (seen.size() != v.size()) return 2;
            if (seen != v) return 3;
            if (mine.num_segments() != segments) return 4;
            std::string reversed(v.rbegin(), v.rend());
            mine.store(reversed);
            if (mine.version() != v0 + 2) return 5;
            return 0;
        });
        BOOST_TEST(c.wait(120s) == 0);
        BOOST_TEST(s.version() == v0 + 2);
        const std::string reversed(v.rbegin(), v.rend());
        BOOST_TEST(first_difference(s.fetch(), reversed) == -1);
        BOOST_TEST(first_difference(other.fetch(), reversed) == -1);

        // Back to a small value: one segment again.
        s.store("small");
        BOOST_TEST(s.version() == v0 + 3);
        BOOST_TEST(s.num_segments() == 1u);
        BOOST_TEST(other.fetch() == "small");
        BOOST_TEST(other.stats().value_size == 5u);
        BOOST_TEST(value_segments(g.key()).size() <= 2u);
    }
}

} // namespace

// ---- Keys -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(keys)

BOOST_AUTO_TEST_CASE(a_string_of_digits_is_that_number)
{
    BOOST_TEST(shmkit::share_key("1234") == 1234);
    BOOST_TEST(shmkit::share_key("0") == 0);
    BOOST_TEST(shmkit::share_key("007") == 7);
    BOOST_TEST(shmkit::share_key("12345") == 12345); // longer than 4 bytes: still a number
    BOOST_TEST(shmkit::share_key("2147483647") == 2147483647);
    // The upper half of the 32-bit range is read as negative ints, as ShareLite does.
    BOOST_TEST(shmkit::share_key("2147483648") == INT_MIN);
    BOOST_TEST(static_cast<std::uint32_t>(shmkit::share_key("3000000000")) == 0xb2d05e00u);
    BOOST_TEST(shmkit::share_key("4294967295") == -1);
    BOOST_TEST(shmkit::share_key("12\n") == 12); // Perl's /^\d+$/ allows one trailing newline
}

BOOST_AUTO_TEST_CASE(other_strings_of_up_to_4_bytes_are_their_space_padded_bytes_as_a_native_int)
{
    const auto int_of = [](const char (&b)[4]) {
        std::int32_t v;
        std::memcpy(&v, b, 4);
        return static_cast<key_t>(v);
    };
    BOOST_TEST(shmkit::share_key("abcd") == int_of({'a', 'b', 'c', 'd'}));
    BOOST_TEST(shmkit::share_key("ab") == int_of({'a', 'b', ' ', ' '}));
    BOOST_TEST(shmkit::share_key("ab") == shmkit::share_key("ab  "));
    BOOST_TEST(shmkit::share_key("x") == int_of({'x', ' ', ' ', ' '}));
    BOOST_TEST(shmkit::share_key("-1") == int_of({'-', '1', ' ', ' '}));
    BOOST_TEST(shmkit::share_key("12a") == int_of({'1', '2', 'a', ' '}));
    BOOST_TEST(shmkit::share_key(std::string_view("a\0bc", 4)) == int_of({'a', '\0', 'b', 'c'}));
    BOOST_TEST(shmkit::share_key(std::string_view("\0\0\0\0", 4)) == 0);
    BOOST_TEST(shmkit::share_key("abcd") != shmkit::share_key("abce"));
}

BOOST_AUTO_TEST_CASE(empty_too_long_and_out_of_range_keys_are_refused_with_einval)
{
    for (const std::string k : {"", "abcde", "99999999999", "4294967296", "4294968530", "a1234"}) {
        BOOST_TEST_CONTEXT("key '" << k << "'")
        {
            BOOST_TEST(test::error_code_of([&] { (void)shmkit::share_key(k); }) == EINVAL);
        }
    }
    BOOST_TEST(test::error_code_of([] { share s("abcde", created()); }) == EINVAL);
    BOOST_TEST(test::error_code_of([] { share s("", created()); }) == EINVAL);
}

BOOST_AUTO_TEST_CASE(the_string_constructor_opens_the_share_of_share_key)
{
    // A 3-byte key unique to this process ('~' keeps it from being digits).
    const auto pid = static_cast<unsigned>(::getpid());
    const std::string name = {static_cast<char>(pid & 0xff), static_cast<char>((pid >> 8) & 0xff), '~'};
    const key_t key = shmkit::share_key(name);
    share_guard g(key);

    share s(name, created());
    BOOST_TEST(s.key() == key);
    BOOST_TEST(root_exists(key));
    s.store("through the string key");
    share by_number(key);
    BOOST_TEST(by_number.fetch() == "through the string key");
    share by_padded_name(std::string_view(name + " "));
    BOOST_TEST(by_padded_name.key() == key);
    BOOST_TEST(by_padded_name.fetch() == "through the string key");

    // Digits: the number.
    share_guard g2;
    const std::string digits = std::to_string(g2.key());
    share d(digits.c_str(), created());
    BOOST_TEST(d.key() == g2.key());
    BOOST_TEST(root_exists(g2.key()));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Opening ------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(opening)

BOOST_AUTO_TEST_CASE(a_missing_share_without_create_is_enoent_naming_create)
{
    share_guard g;
    const test::thrown t = test::error_of([&] { share s(g.key()); });
    BOOST_TEST(t.code == ENOENT);
    BOOST_TEST(t.what.find("create") != std::string::npos, t.what);
    BOOST_TEST(!root_exists(g.key()));
}

BOOST_AUTO_TEST_CASE(exclusive_on_an_existing_share_is_eexist_and_changes_nothing)
{
    share_guard g;
    share s(g.key(), created());
    s.store("kept");
    for (bool create : {false, true}) {
        share_options o;
        o.create = create;
        o.exclusive = true;
        BOOST_TEST(test::error_code_of([&] { share t(g.key(), o); }) == EEXIST);
    }
    BOOST_TEST(s.fetch() == "kept");
    BOOST_TEST(s.version() == 2u);
    share again(g.key());
    BOOST_TEST(again.fetch() == "kept");
}

BOOST_AUTO_TEST_CASE(exclusive_alone_creates)
{
    share_guard g;
    share_options o;
    o.exclusive = true;
    share s(g.key(), o);
    BOOST_TEST(root_exists(g.key()));
    BOOST_TEST(s.exclusive());
    BOOST_TEST(!s.create());
    BOOST_TEST(s.fetch() == "");
    BOOST_TEST(s.version() == 1u);
    s.store("x");
    share t(g.key());
    BOOST_TEST(t.fetch() == "x");
}

BOOST_AUTO_TEST_CASE(create_attaches_to_an_existing_share_and_sees_its_value)
{
    share_guard g;
    share s(g.key(), created());
    s.store("first");
    s.store("second");
    share t(g.key(), created());
    BOOST_TEST(t.fetch() == "second");
    BOOST_TEST(t.version() == 3u);
    t.store("third");
    BOOST_TEST(s.fetch() == "third");
    BOOST_TEST(s.version() == 4u);
}

BOOST_AUTO_TEST_CASE(the_accessors_report_how_the_share_was_opened)
{
    share_guard g;
    share_options o;
    o.create = true;
    o.mode = 0640;
    o.size = 4096;
    share s(g.key(), o);
    BOOST_TEST(s.key() == g.key());
    BOOST_TEST(s.create());
    BOOST_TEST(!s.exclusive());
    BOOST_TEST(s.mode() == mode_t(0640));
    BOOST_TEST((s.backend() == shmkit::share_backend::native));
    BOOST_TEST(!s.destroy());
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(s.size() >= 4096u);

    share plain(g.key());
    BOOST_TEST(plain.key() == g.key());
    BOOST_TEST(!plain.create());
    BOOST_TEST(!plain.exclusive());
    BOOST_TEST((plain.backend() == shmkit::share_backend::native));
}

BOOST_AUTO_TEST_CASE(the_share_gets_exactly_the_permission_bits_asked_whatever_the_umask)
{
    share_guard g;
    share_options o = created();
    o.mode = 0640;
    share s = test::share_under_umask(0077, g.key(), o);
    struct stat st {};
    BOOST_TEST_REQUIRE(::stat(g.path().c_str(), &st) == 0);
    BOOST_TEST(permissions(st) == "0640");
    BOOST_TEST(s.mode() == mode_t(0640));

    share_guard g2;
    share d(g2.key(), created());
    BOOST_TEST_REQUIRE(::stat(g2.path().c_str(), &st) == 0);
    BOOST_TEST(permissions(st) == "0600"); // the default
}

BOOST_AUTO_TEST_CASE(a_value_segment_made_by_the_creator_has_the_shares_permission_bits)
{
    share_guard g;
    share_options o = created();
    o.mode = 0640;
    share s(g.key(), o);
    s.store(pattern(MiB));
    check_value_segment_permissions(g.key(), "0640");
}

BOOST_AUTO_TEST_CASE(a_value_segment_made_by_an_attached_handle_has_the_shares_permission_bits)
{
    // The creator made the share 0640 (readable by its group); a handle
    // that attached with the default options stores a large value. Its
    // value segment must be as readable as the share, or the group could
    // open the share but not fetch its value.
    share_guard g;
    share_options o = created();
    o.mode = 0640;
    share s(g.key(), o);
    share attached(g.key());
    attached.store(pattern(MiB));
    check_value_segment_permissions(g.key(), "0640");
}

BOOST_AUTO_TEST_CASE(size_is_at_least_the_hint_and_an_attaching_handle_keeps_the_creators)
{
    for (std::size_t hint : {std::size_t(0), std::size_t(1000), std::size_t(65536), std::size_t(MiB)}) {
        BOOST_TEST_CONTEXT("size hint " << hint)
        {
            share_guard g;
            share s(g.key(), created_with_size(hint));
            const std::size_t effective = hint ? hint : 65536;
            BOOST_TEST(s.size() >= effective);
            struct stat st {};
            BOOST_TEST_REQUIRE(::stat(g.path().c_str(), &st) == 0);
            BOOST_TEST(s.size() > 0u);
            BOOST_TEST(s.size() <= std::size_t(st.st_size));

            share other(g.key(), created_with_size(hint == MiB ? 4096 : 4 * MiB));
            BOOST_TEST(other.size() == s.size());
            share plain(g.key());
            BOOST_TEST(plain.size() == s.size());

            // Values up to the hint stay inline, also through the handle
            // that asked for another size.
            other.store(pattern(effective));
            BOOST_TEST(s.num_segments() == 1u);
            BOOST_TEST(first_difference(s.fetch(), pattern(effective)) == -1);
            other.store(pattern(2 * effective + 1));
            BOOST_TEST(s.num_segments() == 2u);
            BOOST_TEST(first_difference(s.fetch(), pattern(2 * effective + 1)) == -1);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_fresh_share_is_empty_at_version_1_in_one_segment)
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST(s.fetch() == "");
    BOOST_TEST(s.version() == 1u);
    BOOST_TEST(s.num_segments() == 1u);
    std::string out = "not empty";
    s.fetch(out);
    BOOST_TEST(out == "");
    const shmkit::share_stats st = s.stats();
    BOOST_TEST(st.version == 1u);
    BOOST_TEST(st.value_size == 0u);
    BOOST_TEST(st.segments == 1u);
    BOOST_TEST(st.bytes_mapped >= s.size());
    BOOST_TEST(st.lock_recoveries == 0u);
    BOOST_TEST(st.repairs == 0u);
    BOOST_TEST(value_segments(g.key()).empty());

    share other(g.key());
    BOOST_TEST(other.fetch() == "");
    BOOST_TEST(other.version() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Values ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(values)

BOOST_AUTO_TEST_CASE(values_of_every_size_up_to_1_mib_round_trip_exactly_everywhere, *utf::timeout(300))
{
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(16), std::size_t(65519),
                             std::size_t(65520), std::size_t(65521), std::size_t(65536), std::size_t(65537),
                             MiB})
        check_round_trip(size);
}

BOOST_AUTO_TEST_CASE(a_value_of_256_mib_round_trips_exactly_everywhere, *utf::timeout(600))
{
    check_round_trip(256 * MiB);
}

BOOST_AUTO_TEST_CASE(the_version_counts_every_store_seen_from_another_process, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST(s.version() == 1u);
    const std::size_t sizes[] = {0, 5, 100 * KiB, 5, 0, 3 * MiB, 3 * MiB, 70 * KiB, 1};
    std::uint64_t expected = 1;
    for (std::size_t n : sizes) {
        s.store(pattern(n));
        ++expected;
        BOOST_TEST(s.version() == expected);
    }
    s.store(s.fetch()); // the same value again is a store too
    ++expected;
    BOOST_TEST(s.version() == expected);

    const key_t key = g.key();
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        share mine(key);
        if (mine.version() != expected) return 1;
        to_parent.send();
        if (to_child.receive(30s) != 'x') return 2;
        if (mine.version() != expected + 3) return 3; // the parent's three stores
        mine.store("from the child");
        if (mine.version() != expected + 4) return 4;
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    s.store("a");
    s.store(pattern(2 * MiB));
    s.store("b");
    to_child.send();
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(s.version() == expected + 4);
    BOOST_TEST(s.fetch() == "from the child");
}

BOOST_AUTO_TEST_CASE(num_segments_is_two_exactly_while_the_value_exceeds_the_inline_size)
{
    share_guard g;
    share s(g.key(), created());
    share other(g.key());
    const std::pair<std::size_t, std::size_t> cases[] = {
        {10, 1}, {65536, 1}, {65537, 2}, {100, 1}, {3 * MiB, 2}, {70 * KiB, 2}, {0, 1}, {65536, 1}, {65537, 2}, {1, 1}};
    for (const auto& [n, segments] : cases) {
        BOOST_TEST_CONTEXT("after storing " << n << " bytes")
        {
            s.store(pattern(n));
            BOOST_TEST(s.num_segments() == segments);
            BOOST_TEST(other.num_segments() == segments);
            BOOST_TEST(other.stats().segments == segments);
            BOOST_TEST(other.stats().value_size == n);
            BOOST_TEST(first_difference(other.fetch(), pattern(n)) == -1);
        }
    }
}

BOOST_AUTO_TEST_CASE(fetch_into_a_string_replaces_its_contents_and_reuses_its_capacity)
{
    share_guard g;
    share s(g.key(), created());
    std::string out(200 * KiB, 'z');
    out.assign("previous contents that are longer than the value");
    const char* const buffer = out.data();
    const std::size_t capacity = out.capacity();

    s.store("short");
    s.fetch(out);
    BOOST_TEST(out == "short");
    BOOST_TEST(out.size() == 5u);
    BOOST_TEST(static_cast<const void*>(out.data()) == static_cast<const void*>(buffer));

    const std::string big = pattern(100 * KiB);
    s.store(big);
    s.fetch(out);
    BOOST_TEST(first_difference(out, big) == -1);
    BOOST_TEST(static_cast<const void*>(out.data()) == static_cast<const void*>(buffer));
    BOOST_TEST(out.capacity() == capacity);

    s.store("");
    s.fetch(out);
    BOOST_TEST(out.empty());

    // A value larger than the capacity: it grows.
    const std::string bigger = pattern(capacity + 1);
    s.store(bigger);
    s.fetch(out);
    BOOST_TEST(first_difference(out, bigger) == -1);
}

BOOST_AUTO_TEST_CASE(many_stores_of_mixed_sizes_leave_at_most_two_value_segments_and_remove_leaves_none,
                     *utf::timeout(300))
{
    share_guard g;
    share s(g.key(), created());
    share other(g.key());
    const std::size_t sizes[] = {10, 100 * KiB, 3 * MiB, 70 * KiB};
    std::string out;
    std::size_t most = 0;
    for (int i = 0; i < 200; ++i) {
        const std::size_t n = sizes[i % 4];
        const std::string v = pattern(n + i); // a different value each time
        (i % 3 == 0 ? other : s).store(v);
        (i % 2 == 0 ? other : s).fetch(out);
        BOOST_TEST_REQUIRE(first_difference(out, v) == -1, "store " << i);
        const std::size_t segs = value_segments(g.key()).size();
        most = std::max(most, segs);
        BOOST_TEST_REQUIRE(segs <= 2u, "store " << i << ": " << segs << " value segments");
    }
    BOOST_TEST(most >= 1u);
    BOOST_TEST(s.version() == 201u);

    BOOST_TEST(share::remove(g.key()));
    BOOST_TEST(value_segments(g.key()).empty());
    BOOST_TEST(!root_exists(g.key()));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Locks across processes --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(locks_across_processes)

BOOST_AUTO_TEST_CASE(while_one_process_holds_lock_ex_another_gets_no_lock_until_it_unlocks, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    BOOST_TEST(s.held() == share::lock_ex);

    const key_t key = g.key();
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        share mine(key);
        if (mine.lock(share::lock_ex | share::lock_nb)) return 1;
        if (mine.held() != 0) return 2;
        if (mine.lock(share::lock_sh | share::lock_nb)) return 3;
        if (mine.held() != 0) return 4;
        if (mine.try_lock_for(50ms)) return 5;
        if (mine.try_lock_shared_for(50ms)) return 6;
        if (mine.try_lock() || mine.try_lock_shared()) return 7;
        if (mine.held() != 0) return 8;
        to_parent.send();
        if (to_child.receive(30s) != 'u') return 9;
        if (!mine.lock(share::lock_ex | share::lock_nb)) return 10;
        if (mine.held() != share::lock_ex) return 11;
        mine.unlock();
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    BOOST_TEST(s.held() == share::lock_ex); // still
    s.unlock();
    BOOST_TEST(s.held() == 0);
    to_child.send('u');
    BOOST_TEST(c.wait() == 0);
}

BOOST_AUTO_TEST_CASE(a_forked_child_using_the_inherited_handle_does_not_hold_the_parents_lock, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        if (s.held() != 0) return 1;
        if (s.lock(share::lock_ex | share::lock_nb)) return 2;
        if (s.lock(share::lock_sh | share::lock_nb)) return 3;
        to_parent.send();
        if (to_child.receive(30s) != 'u') return 4;
        if (!s.lock(share::lock_ex | share::lock_nb)) return 5;
        s.store("child");
        s.unlock();
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    s.unlock();
    to_child.send('u');
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(s.fetch() == "child");
}

BOOST_AUTO_TEST_CASE(while_one_process_holds_lock_sh_another_gets_lock_sh_but_not_lock_ex, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    s.store("shared");
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    BOOST_TEST(s.held() == share::lock_sh);

    const key_t key = g.key();
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        share mine(key);
        if (!mine.lock(share::lock_sh | share::lock_nb)) return 1;
        if (mine.held() != share::lock_sh) return 2;
        if (mine.fetch() != "shared") return 3;
        // Switching to lock_ex gives up lock_sh first; refused, it holds nothing.
        if (mine.lock(share::lock_ex | share::lock_nb)) return 4;
        if (mine.held() != 0) return 5;
        if (mine.try_lock_for(50ms)) return 6;
        if (!mine.try_lock_shared()) return 7;
        mine.unlock_shared();
        if (mine.held() != 0) return 8;
        to_parent.send();
        if (to_child.receive(30s) != 'u') return 9;
        if (!mine.lock(share::lock_ex | share::lock_nb)) return 10;
        mine.store("child");
        mine.unlock();
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(s.fetch() == "shared");
    s.unlock();
    BOOST_TEST(s.held() == 0);
    to_child.send('u');
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(s.fetch() == "child");
}

BOOST_AUTO_TEST_CASE(a_process_blocked_in_lock_ex_gets_it_when_the_holder_unlocks, *utf::timeout(60))
{
    // The child stores "child" under the lock it gets.
    blocked_waiter w(share::lock_ex, [](share& mine) { mine.store("child"); });
    BOOST_TEST(w.acquired() == 0); // not while the parent holds it
    w.s.store("parent");
    BOOST_TEST(w.acquired() == 0);
    w.s.unlock();
    BOOST_TEST(w.waiter->wait() == 0);
    BOOST_TEST(w.acquired() == 1);
    BOOST_TEST(w.s.fetch() == "child");
    BOOST_TEST(w.s.version() == 3u);
}

BOOST_AUTO_TEST_CASE(a_process_blocked_in_lock_sh_gets_it_when_the_writer_unlocks, *utf::timeout(60))
{
    blocked_waiter w(share::lock_sh);
    BOOST_TEST(w.acquired() == 0);
    w.s.store("parent");
    w.s.unlock();
    BOOST_TEST(w.waiter->wait() == 0);
    BOOST_TEST(w.acquired() == 1);
}

BOOST_AUTO_TEST_CASE(held_reports_the_mode_the_caller_holds, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(s.lock(share::lock_sh));
    BOOST_TEST(s.held() == share::lock_sh);
    s.unlock();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(s.lock(share::lock_ex));
    BOOST_TEST(s.held() == share::lock_ex);
    s.unlock();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    BOOST_TEST(s.held() == share::lock_ex);
    BOOST_TEST(s.lock(share::lock_un));
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(s.lock(share::lock_sh | share::lock_nb));
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(s.lock(share::lock_un));
    BOOST_TEST(s.held() == 0);

    // What held() reports is really held: nobody else gets it meanwhile.
    BOOST_TEST(s.lock(share::lock_ex));
    BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 0);
    s.unlock();
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Locks within a handle ----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(locks_within_a_handle)

BOOST_AUTO_TEST_CASE(store_and_fetch_under_a_held_lock_ex_work_and_keep_it_held, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    s.store("one");
    BOOST_TEST(s.held() == share::lock_ex);
    BOOST_TEST(s.fetch() == "one");
    s.store(s.fetch() + "+two");
    const std::string big = pattern(2 * MiB);
    s.store(big);
    BOOST_TEST(first_difference(s.fetch(), big) == -1);
    BOOST_TEST(s.num_segments() == 2u);
    BOOST_TEST(s.stats().version == 4u);
    BOOST_TEST(s.held() == share::lock_ex);
    BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 0);
    s.unlock();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
    BOOST_TEST(s.version() == 4u);
}

BOOST_AUTO_TEST_CASE(fetch_under_a_held_lock_sh_works_and_keeps_it_held, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    s.store("value");
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    BOOST_TEST(s.fetch() == "value");
    std::string out;
    s.fetch(out);
    BOOST_TEST(out == "value");
    BOOST_TEST(s.num_segments() == 1u);
    BOOST_TEST(s.stats().value_size == 5u);
    BOOST_TEST(s.version() == 2u);
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 1);
    s.unlock();
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
}

BOOST_AUTO_TEST_CASE(store_under_a_held_lock_sh_works_and_leaves_lock_sh_held, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    s.store("stored under lock_sh");
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(s.fetch() == "stored under lock_sh");
    s.store(pattern(MiB)); // a new value segment too
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(first_difference(s.fetch(), pattern(MiB)) == -1);
    BOOST_TEST(s.version() == 3u);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 0); // still held, shared
    BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 1);
    s.unlock();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
}

BOOST_AUTO_TEST_CASE(taking_the_mode_already_held_is_a_no_op_returning_true, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    BOOST_TEST(s.lock(share::lock_ex));
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    BOOST_TEST(s.try_lock_for(10ms));
    BOOST_TEST(s.held() == share::lock_ex);
    s.unlock(); // once releases it
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);

    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    BOOST_TEST(s.lock(share::lock_sh));
    BOOST_TEST(s.lock(share::lock_sh | share::lock_nb));
    BOOST_TEST(s.try_lock_shared_for(10ms));
    BOOST_TEST(s.held() == share::lock_sh);
    s.unlock(); // once: no reader count is left behind
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
}

BOOST_AUTO_TEST_CASE(switching_between_lock_sh_and_lock_ex_works, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    BOOST_TEST(s.lock(share::lock_ex));
    BOOST_TEST(s.held() == share::lock_ex);
    BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 0);
    BOOST_TEST(s.lock(share::lock_sh));
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 1);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 0);
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    BOOST_TEST(s.held() == share::lock_ex);
    s.unlock();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
}

BOOST_AUTO_TEST_CASE(lock_un_and_unlock_release_and_unlock_without_a_lock_does_nothing, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    s.unlock(); // nothing held: nothing happens
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(s.lock(share::lock_un)); // likewise
    BOOST_TEST(s.held() == 0);

    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    BOOST_TEST(s.lock(share::lock_un));
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
    s.unlock();
    BOOST_TEST(s.held() == 0);

    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    s.unlock();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);

    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    s.unlock_shared();
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);

    // The share works as before.
    s.store("after");
    BOOST_TEST(s.fetch() == "after");
}

BOOST_AUTO_TEST_CASE(std_unique_lock_and_std_shared_lock_work, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    {
        std::unique_lock<share> lk(s);
        BOOST_TEST(lk.owns_lock());
        BOOST_TEST(s.held() == share::lock_ex);
        s.store(s.fetch() + "a");
        BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 0);
    }
    BOOST_TEST(s.held() == 0);
    {
        std::unique_lock<share> lk(s, std::try_to_lock);
        BOOST_TEST(lk.owns_lock());
        BOOST_TEST(s.held() == share::lock_ex);
        lk.unlock();
        BOOST_TEST(s.held() == 0);
        BOOST_TEST(lk.try_lock_for(100ms));
        BOOST_TEST(s.held() == share::lock_ex);
    }
    BOOST_TEST(s.held() == 0);
    {
        std::shared_lock<share> lk(s);
        BOOST_TEST(lk.owns_lock());
        BOOST_TEST(s.held() == share::lock_sh);
        BOOST_TEST(s.fetch() == "a");
        BOOST_TEST(other_process_gets(g.key(), share::lock_sh) == 1);
        BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 0);
    }
    BOOST_TEST(s.held() == 0);
    {
        std::shared_lock<share> lk(s, std::try_to_lock);
        BOOST_TEST(lk.owns_lock());
        lk.unlock();
        BOOST_TEST(lk.try_lock_for(100ms));
        BOOST_TEST(s.held() == share::lock_sh);
    }
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(other_process_gets(g.key(), share::lock_ex) == 1);
    BOOST_TEST(s.version() == 2u);
}

BOOST_AUTO_TEST_CASE(a_timed_lock_gets_a_free_lock_and_times_out_on_a_held_one, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    BOOST_TEST(s.try_lock_until(std::chrono::steady_clock::now() + 100ms));
    BOOST_TEST(s.held() == share::lock_ex);
    s.unlock();
    BOOST_TEST(s.try_lock_shared_until(std::chrono::system_clock::now() + 100ms));
    BOOST_TEST(s.held() == share::lock_sh);
    s.unlock();

    const key_t key = g.key();
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        share mine(key);
        if (!mine.lock(share::lock_ex)) return 1;
        to_parent.send();
        if (to_child.receive(30s) != 'x') return 2;
        mine.unlock();
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    BOOST_TEST(!s.try_lock_until(std::chrono::steady_clock::now() + 30ms));
    BOOST_TEST(!s.try_lock_shared_until(std::chrono::steady_clock::now() + 30ms));
    BOOST_TEST(!s.try_lock_shared_for(30ms));
    BOOST_TEST(s.held() == 0);
    to_child.send();
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(s.try_lock_for(10s));
    s.unlock();
}

BOOST_AUTO_TEST_CASE(invalid_lock_flags_throw_invalid_argument_and_change_nothing)
{
    share_guard g;
    share s(g.key(), created());
    const int bad[] = {0,
                       share::lock_sh | share::lock_ex,
                       share::lock_un | share::lock_sh,
                       share::lock_un | share::lock_ex,
                       share::lock_un | share::lock_nb,
                       16,
                       share::lock_sh | 16,
                       share::lock_nb,
                       -1};
    for (int flags : bad) {
        BOOST_TEST_CONTEXT("flags " << flags)
        {
            BOOST_CHECK_THROW(s.lock(flags), std::invalid_argument);
            BOOST_TEST(s.held() == 0);
        }
    }
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    for (int flags : bad) {
        BOOST_TEST_CONTEXT("flags " << flags << " while holding lock_ex")
        {
            BOOST_CHECK_THROW(s.lock(flags), std::invalid_argument);
            BOOST_TEST(s.held() == share::lock_ex);
        }
    }
    s.unlock();
}

BOOST_AUTO_TEST_SUITE_END()

// ---- fetch_view -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(fetching_in_place)

BOOST_AUTO_TEST_CASE(fetch_view_without_a_lock_is_a_logic_error)
{
    share_guard g;
    share s(g.key(), created());
    s.store("v");
    BOOST_CHECK_THROW((void)s.fetch_view(), std::logic_error);
    s.lock(share::lock_ex);
    s.unlock();
    BOOST_CHECK_THROW((void)s.fetch_view(), std::logic_error);
}

BOOST_AUTO_TEST_CASE(fetch_view_under_a_lock_is_the_exact_value_inline_or_not)
{
    share_guard g;
    share s(g.key(), created());
    share other(g.key());
    for (std::size_t n : {std::size_t(0), std::size_t(100), std::size_t(65536), std::size_t(65537), 3 * MiB}) {
        BOOST_TEST_CONTEXT(n << " bytes")
        {
            const std::string v = pattern(n);
            s.store(v);
            {
                std::shared_lock<share> lk(other);
                const std::string_view view = other.fetch_view();
                BOOST_TEST(view.size() == n);
                BOOST_TEST(first_difference(view, v) == -1);
            }
            {
                std::shared_lock<share> lk(s);
                BOOST_TEST(first_difference(s.fetch_view(), v) == -1);
            }
            {
                std::unique_lock<share> lk(other);
                BOOST_TEST(first_difference(other.fetch_view(), v) == -1);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Destroy -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(destroying)

BOOST_AUTO_TEST_CASE(a_handle_with_destroy_removes_the_share_when_it_goes)
{
    share_guard g;
    share keeper(g.key(), created()); // another handle does not keep it alive
    {
        share_options o = created();
        o.destroy = true;
        share s(g.key(), o);
        BOOST_TEST(s.destroy());
        s.store(pattern(MiB));
        BOOST_TEST(value_segments(g.key()).size() >= 1u);
    }
    BOOST_TEST(!root_exists(g.key()));
    BOOST_TEST(value_segments(g.key()).empty());
    BOOST_TEST(test::error_code_of([&] { share t(g.key()); }) == ENOENT);
    BOOST_TEST(test::error_code_of([&] { keeper.store("x"); }) == EIDRM);
}

BOOST_AUTO_TEST_CASE(destroy_reports_and_sets_it_and_destroy_false_cancels_it)
{
    share_guard g;
    {
        share plain(g.key(), created());
        BOOST_TEST(!plain.destroy());
    }
    BOOST_TEST(root_exists(g.key()));
    {
        share_options o;
        o.destroy = true;
        share s(g.key(), o);
        BOOST_TEST(s.destroy());
        s.destroy(false);
        BOOST_TEST(!s.destroy());
    }
    BOOST_TEST(root_exists(g.key()));
    share t(g.key());
    BOOST_TEST(t.fetch() == "");
    {
        share u(g.key());
        BOOST_TEST(!u.destroy());
        u.destroy(true);
        BOOST_TEST(u.destroy());
    }
    BOOST_TEST(!root_exists(g.key()));
    BOOST_TEST(test::error_code_of([&] { share v(g.key()); }) == ENOENT);
}

BOOST_AUTO_TEST_CASE(a_forked_child_destroying_an_inherited_destroy_handle_does_not_remove_the_share,
                     *utf::timeout(60))
{
    share_guard g;
    share_options o = created();
    o.destroy = true;
    std::optional<share> s(std::in_place, g.key(), o);
    s->store(pattern(MiB));
    test::child c([&] {
        if (s->destroy()) return 1; // not this process's to remove
        {
            share local(std::move(*s));
        }
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(root_exists(g.key()));
    BOOST_TEST(value_segments(g.key()).size() >= 1u);
    {
        share t(g.key());
        BOOST_TEST(first_difference(t.fetch(), pattern(MiB)) == -1);
    }
    BOOST_TEST(s->destroy());
    s.reset(); // the parent's handle does remove it
    BOOST_TEST(!root_exists(g.key()));
    BOOST_TEST(value_segments(g.key()).empty());
}

BOOST_AUTO_TEST_CASE(a_forked_child_that_asks_with_destroy_true_removes_the_share, *utf::timeout(60))
{
    share_guard g;
    share s(g.key(), created());
    s.store(pattern(MiB));
    test::child c([&] {
        s.destroy(true);
        if (!s.destroy()) return 1;
        {
            share local(std::move(s));
        }
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(!s.destroy());
    BOOST_TEST(!root_exists(g.key()));
    BOOST_TEST(value_segments(g.key()).empty());
    BOOST_TEST(test::error_code_of([&] { share t(g.key()); }) == ENOENT);
    BOOST_TEST(test::error_code_of([&] { s.store("x"); }) == EIDRM);
}

BOOST_AUTO_TEST_CASE(move_assigning_over_a_destroy_handle_removes_its_share)
{
    share_guard g1, g2;
    share_options o = created();
    o.destroy = true;
    share a(g1.key(), o);
    share b(g2.key(), created());
    a = std::move(b);
    BOOST_TEST(!root_exists(g1.key()));
    BOOST_TEST(root_exists(g2.key()));
    BOOST_TEST(a.key() == g2.key());
    BOOST_TEST(!a.destroy());
    a.store("moved");
    share c(g2.key());
    BOOST_TEST(c.fetch() == "moved");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- remove and moved-from handles ------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(removing)

BOOST_AUTO_TEST_CASE(remove_is_true_for_an_existing_share_then_false)
{
    share_guard g;
    BOOST_TEST(!share::remove(g.key()));
    {
        share s(g.key(), created());
        s.store(pattern(MiB));
    }
    BOOST_TEST(root_exists(g.key()));
    BOOST_TEST(share::remove(g.key()));
    BOOST_TEST(!root_exists(g.key()));
    BOOST_TEST(value_segments(g.key()).empty());
    BOOST_TEST(!share::remove(g.key()));
    BOOST_TEST(test::error_code_of([&] { share t(g.key()); }) == ENOENT);
}

BOOST_AUTO_TEST_CASE(after_remove_attached_handles_refuse_stores_with_eidrm_but_fetch_the_last_value,
                     *utf::timeout(60))
{
    for (std::size_t n : {std::size_t(20), 2 * MiB}) {
        BOOST_TEST_CONTEXT(n << " bytes")
        {
            share_guard g;
            share s(g.key(), created());
            share other(g.key());
            const std::string v = pattern(n);
            s.store(v);
            BOOST_TEST(first_difference(other.fetch(), v) == -1); // maps what it needs

            BOOST_TEST(share::remove(g.key()));
            const test::thrown t = test::error_of([&] { s.store("refused"); });
            BOOST_TEST(t.code == EIDRM);
            BOOST_TEST(test::error_of([&] { other.store(pattern(3 * MiB)); }).code == EIDRM);
            BOOST_TEST(s.version() == 2u);
            BOOST_TEST(first_difference(s.fetch(), v) == -1);
            BOOST_TEST(first_difference(other.fetch(), v) == -1);
            BOOST_TEST(value_segments(g.key()).empty());
            BOOST_TEST(!root_exists(g.key()));

            // In another process, through the inherited handle.
            test::child c([&] {
                if (test::error_of([&] { s.store("child"); }).code != EIDRM) return 1;
                if (s.fetch() != v) return 2;
                return 0;
            });
            BOOST_TEST(c.wait() == 0);

            // A new share of the key is a fresh one; the old handles stay
            // with the old.
            share fresh(g.key(), created());
            BOOST_TEST(fresh.fetch() == "");
            BOOST_TEST(fresh.version() == 1u);
            fresh.store("new");
            BOOST_TEST(first_difference(s.fetch(), v) == -1);
            BOOST_TEST(test::error_of([&] { s.store("x"); }).code == EIDRM);
            BOOST_TEST(fresh.fetch() == "new");
        }
    }
}

BOOST_AUTO_TEST_CASE(after_remove_a_value_a_handle_had_not_mapped_yet_is_gone_with_eidrm, *utf::timeout(60))
{
    // `other` attached before the value went to a value segment, and never
    // read it: the remove unlinks that segment's name before `other` maps it.
    share_guard g;
    share s(g.key(), created());
    share other(g.key());
    s.store(pattern(2 * MiB));
    BOOST_TEST(share::remove(g.key()));
    BOOST_TEST(test::error_code_of([&] { (void)other.fetch(); }) == EIDRM);
    // What `s` mapped (it wrote it) stays readable.
    BOOST_TEST(s.fetch().size() == 2 * MiB);
}

BOOST_AUTO_TEST_CASE(a_moved_from_share_throws_logic_error_from_its_operations)
{
    share_guard g;
    share s(g.key(), created());
    s.store("kept");
    share t(std::move(s));
    BOOST_CHECK_THROW(s.store("x"), std::logic_error);
    BOOST_CHECK_THROW((void)s.fetch(), std::logic_error);
    std::string out;
    BOOST_CHECK_THROW(s.fetch(out), std::logic_error);
    BOOST_CHECK_THROW((void)s.fetch_view(), std::logic_error);
    BOOST_CHECK_THROW(s.lock(share::lock_ex), std::logic_error);
    BOOST_CHECK_THROW((void)s.version(), std::logic_error);
    BOOST_CHECK_THROW((void)s.num_segments(), std::logic_error);
    BOOST_CHECK_THROW((void)s.stats(), std::logic_error);
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(!s.destroy());
    BOOST_TEST(t.fetch() == "kept");
    BOOST_TEST(t.key() == g.key());
    t.store("moved");
    BOOST_TEST(t.version() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Several processes ------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(several_processes)

BOOST_AUTO_TEST_CASE(four_processes_incrementing_a_counter_under_lock_ex_lose_no_increment, *utf::timeout(300))
{
    constexpr int children = 4;
    constexpr int rounds = 2000;
    share_guard g;
    share s(g.key(), created());
    const key_t key = g.key();
    test::pipe_pair start;
    std::vector<test::child> kids;
    kids.reserve(children);
    for (int k = 0; k < children; ++k) {
        kids.emplace_back([&, k] {
            // Two children use the handle they inherited, two open their own.
            std::optional<share> own;
            if (k % 2) own.emplace(key);
            share& h = own ? *own : s;
            if (start.receive(30s) != 'g') return 1;
            for (int i = 0; i < rounds; ++i) {
                if (!h.lock(share::lock_ex)) return 2;
                const std::string v = h.fetch();
                long n = 0;
                for (char ch : v) {
                    if (ch < '0' || ch > '9') return 3;
                    n = n * 10 + (ch - '0');
                }
                const std::string next = std::to_string(n + 1);
                h.store(next);
                if (h.fetch() != next) return 4;
                if (h.held() != share::lock_ex) return 5;
                h.unlock();
            }
            return 0;
        });
    }
    for (int k = 0; k < children; ++k) start.send('g');
    for (int k = 0; k < children; ++k) BOOST_TEST(kids[k].wait(240s) == 0, "child " << k);
    BOOST_TEST(s.fetch() == std::to_string(children * rounds));
    BOOST_TEST(s.version() == std::uint64_t(1 + children * rounds));
    BOOST_TEST(s.num_segments() == 1u);
    BOOST_TEST(s.stats().lock_recoveries == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
