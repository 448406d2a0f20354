// raw_pool, pool<T> and str_pool in one process: allocation, batches,
// element operations, ownership, recovery of destroyed handles, guards,
// opening and refusals, stats, eventfd.
#define BOOST_TEST_MODULE pool
#include "support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/pool.hpp>

#include <boost/core/span.hpp>
#include <boost/mpl/list.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>
#include <type_traits>

#include <sys/eventfd.h>

using namespace std::chrono_literals;

using shmkit::pool;
using shmkit::raw_pool;
using shmkit::str_pool;

namespace {

/// try_alloc until the pool is full: every slot must come out exactly once.
/// Then frees every slot. used() is called only at the ends (O(capacity)).
template <class P>
void fill_and_drain(P& p)
{
    const std::size_t cap = p.capacity();
    std::vector<unsigned char> seen(cap, 0);
    std::size_t got = 0, dups = 0, bad = 0;
    while (const auto i = p.try_alloc()) {
        if (*i >= cap) {
            ++bad;
            break;
        }
        dups += seen[*i]++ != 0;
        if (++got > cap) break;
    }
    BOOST_TEST(got == cap);
    BOOST_TEST(dups == 0u);
    BOOST_TEST(bad == 0u);
    BOOST_TEST(std::count(seen.begin(), seen.end(), 1) == static_cast<std::ptrdiff_t>(cap));
    BOOST_TEST(p.used() == cap);
    BOOST_TEST(p.available() == 0u);
    BOOST_TEST(!p.try_alloc().has_value());
    std::size_t freed = 0;
    for (std::size_t i = 0; i < cap; ++i) freed += p.free(i) ? 1 : 0;
    BOOST_TEST(freed == cap);
    BOOST_TEST(p.used() == 0u);
    BOOST_TEST(p.available() == cap);
}

/// Fills the pool (slots allocated by this handle); returns them.
template <class P>
std::vector<std::size_t> fill(P& p)
{
    std::vector<std::size_t> v;
    while (const auto i = p.try_alloc()) v.push_back(*i);
    return v;
}

/// True if `f` throws shmkit::error with code() == errc::slot_not_allocated.
bool throws_not_allocated(const std::function<void()>& f)
{
    try {
        f();
    } catch (const shmkit::error& e) {
        return e.code() == shmkit::errc::slot_not_allocated;
    }
    return false;
}

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

/// `f` must throw shmkit::error with `code`, naming `path` and every needle,
/// and leave the file at `path` byte for byte as it was.
void expect_refused(const std::string& path, const std::function<void()>& f, shmkit::errc code,
                    const std::vector<std::string>& needles)
{
    const std::string before = test::read_file(path);
    BOOST_REQUIRE(!before.empty());
    try {
        f();
        BOOST_ERROR("not refused: " << needles.front());
    } catch (const shmkit::error& e) {
        BOOST_TEST((e.code() == code), e.what());
        BOOST_TEST(contains(e.what(), path), e.what());
        for (const auto& n : needles) BOOST_TEST(contains(e.what(), n), "'" << n << "' not in: " << e.what());
    }
    BOOST_TEST((test::read_file(path) == before), "refused file changed: " << path);
}

template <class T>
bool same_bits(T a, T b)
{
    return std::memcmp(&a, &b, sizeof a) == 0;
}

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Pools have no POSIX-name constructors (files, anonymous, memfd and fd only).
template <class P, class = void>
struct has_posix_create : std::false_type {};
template <class P>
struct has_posix_create<P, std::void_t<decltype(P::posix(shmkit::create_only, std::string(), std::size_t(1)))>>
    : std::true_type {};
template <class P, class = void>
struct has_posix_create_sized : std::false_type {};
template <class P>
struct has_posix_create_sized<
    P, std::void_t<decltype(P::posix(shmkit::create_only, std::string(), std::size_t(1), std::size_t(1)))>>
    : std::true_type {};
template <class P, class = void>
struct has_posix_open : std::false_type {};
template <class P>
struct has_posix_open<P, std::void_t<decltype(P::posix(shmkit::open_only, std::string()))>> : std::true_type {};

static_assert(!has_posix_create<pool<std::int64_t>>::value && !has_posix_open<pool<std::int64_t>>::value);
static_assert(!has_posix_create_sized<raw_pool>::value && !has_posix_open<raw_pool>::value);
static_assert(!has_posix_create_sized<str_pool>::value && !has_posix_open<str_pool>::value);

} // namespace

// ---- Fill and drain -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fill_and_drain_small_capacities)
{
    test::scratch_dir dir;
    for (const std::size_t cap : {1, 63, 64, 65, 127, 128, 129}) {
        BOOST_TEST_CONTEXT("capacity " << cap)
        {
            auto a = pool<std::int64_t>::anonymous(cap);
            fill_and_drain(a);
            fill_and_drain(a); // again, from wherever the cursor is now
            pool<std::int32_t> f(shmkit::create_only, dir / ("i32-" + std::to_string(cap)), cap);
            fill_and_drain(f);
            auto m = pool<double>::memfd("f64", cap);
            fill_and_drain(m);
            auto r = raw_pool::anonymous(cap, 24);
            fill_and_drain(r);
            auto s = str_pool::anonymous(cap, 10);
            fill_and_drain(s);
        }
    }
}

BOOST_AUTO_TEST_CASE(fill_and_drain_16m_slots)
{
    const std::size_t cap = std::size_t(1) << 24;
    auto p = pool<std::int32_t>::anonymous(cap);
    BOOST_TEST(p.capacity() == cap);
    fill_and_drain(p);
}

// ---- Full pool, free ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(full_pool_try_alloc_and_timed_alloc_return_nothing)
{
    auto p = pool<std::int64_t>::anonymous(3);
    BOOST_TEST(fill(p).size() == 3u);
    const auto before = p.stats();
    BOOST_TEST(!p.try_alloc().has_value());
    BOOST_TEST(p.stats().waits == before.waits); // try_alloc never waits
    BOOST_TEST(!p.alloc(20ms).has_value());
    BOOST_TEST(!p.alloc(0ms).has_value());
    const auto after = p.stats();
    BOOST_TEST(after.waits == before.waits + 2);
    BOOST_TEST(after.timeouts == before.timeouts + 2);
    BOOST_TEST(after.waiters == 0u);
    BOOST_TEST(after.used == 3u);
}

BOOST_AUTO_TEST_CASE(alloc_on_a_free_slot_returns_at_once)
{
    auto p = pool<std::int64_t>::anonymous(2);
    const auto i = p.alloc();
    BOOST_REQUIRE(i.has_value());
    const auto j = p.alloc(1h);
    BOOST_REQUIRE(j.has_value());
    BOOST_TEST(*i != *j);
    BOOST_TEST(p.stats().waits == 0u);
}

BOOST_AUTO_TEST_CASE(blocking_alloc_gets_the_slot_freed_meanwhile)
{
    auto p = pool<std::int64_t>::anonymous(1);
    const auto first = p.alloc();
    BOOST_REQUIRE(first.has_value());
    // Freed by index, then (the thread's slot: this handle's) by token.
    for (const bool by_token : {false, true}) {
        std::atomic<bool> done{false};
        std::optional<std::size_t> got;
        std::thread t([&] {
            got = p.alloc();
            done = true;
        });
        // Bounded: wait until the thread is announced as blocked in alloc().
        const auto limit = std::chrono::steady_clock::now() + 30s;
        while (!done && p.stats().waiters == 0 && std::chrono::steady_clock::now() < limit) std::this_thread::yield();
        BOOST_TEST(!done.load());
        BOOST_TEST(p.stats().waiters == 1u);
        BOOST_TEST((by_token ? p.free(*first, p.holder_token(*first)) : p.free(*first)));
        t.join();
        BOOST_REQUIRE(got.has_value());
        BOOST_TEST(*got == *first);
        BOOST_TEST(p.is_allocated(*got));
        BOOST_TEST(p.stats().waiters == 0u);
        BOOST_TEST(p.stats().waits == (by_token ? 2u : 1u));
    }
}

BOOST_AUTO_TEST_CASE(free_reports_whether_the_slot_was_allocated)
{
    auto p = pool<std::int64_t>::anonymous(4);
    BOOST_TEST(!p.free(2));
    const auto i = p.try_alloc();
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(p.free(*i));
    BOOST_TEST(!p.free(*i)); // already free
    BOOST_TEST(p.used() == 0u);
    BOOST_CHECK_THROW(p.free(4), std::out_of_range);
    BOOST_CHECK_THROW(p.free(std::size_t(-1)), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(free_with_a_token_frees_only_while_the_token_still_holds_the_slot)
{
    test::scratch_dir dir;
    pool<std::int64_t> a(shmkit::create_only, dir / "p", 2);
    pool<std::int64_t> b(shmkit::open_only, dir / "p"); // another holder
    const auto i = a.try_alloc();
    BOOST_REQUIRE(i.has_value());
    const std::uint64_t token = a.holder_token(*i);
    BOOST_TEST(!a.free(*i, 0));
    BOOST_TEST(!a.free(*i, token + 1));
    BOOST_TEST(!a.free((*i + 1) % 2, token)); // a free slot
    BOOST_TEST(a.is_allocated(*i));
    // Handed over and adopted: the old token frees nothing.
    BOOST_TEST(b.adopt(*i, token));
    BOOST_TEST(!a.free(*i, token));
    BOOST_TEST(b.owner(*i) == ::getpid());
    BOOST_TEST(b.holder_token(*i) != token);
    // The current holder's token frees it, once.
    const std::uint64_t b_token = b.holder_token(*i);
    BOOST_TEST(a.free(*i, b_token));
    BOOST_TEST(!a.is_allocated(*i));
    BOOST_TEST(!a.free(*i, b_token));
    // Allocated again by a: b's token frees nothing. (A token names a
    // holder, not one holding: a holds the slot again under its own.)
    const auto j = a.try_alloc();
    const auto k = a.try_alloc();
    BOOST_REQUIRE(j && k);
    BOOST_TEST(!b.free(*i, b_token));
    BOOST_TEST(a.used() == 2u);
    BOOST_TEST(a.holder_token(*i) == token);
    BOOST_CHECK_THROW(a.free(2, token), std::out_of_range);
}

// ---- Batches ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(alloc_n_beyond_capacity_throws_at_once)
{
    auto p = pool<std::int32_t>::anonymous(4);
    BOOST_CHECK_THROW(p.alloc_n(5), std::invalid_argument);
    BOOST_CHECK_THROW(p.try_alloc_n(5), std::invalid_argument);
    BOOST_CHECK_THROW(p.alloc_n(5, 10s), std::invalid_argument); // at once, not after 10 s
    std::vector<std::size_t> out(5);
    BOOST_CHECK_THROW(p.try_alloc_n(boost::span<std::size_t>(out)), std::invalid_argument);
    BOOST_TEST(p.used() == 0u);
    BOOST_TEST(p.stats().waits == 0u);
}

BOOST_AUTO_TEST_CASE(try_alloc_n_is_all_or_nothing)
{
    auto p = pool<std::int64_t>::anonymous(8);
    const auto held = p.alloc_n(6);
    BOOST_REQUIRE(held.has_value());
    BOOST_TEST(held->size() == 6u);
    BOOST_TEST(p.used() == 6u);
    BOOST_TEST(!p.try_alloc_n(3).has_value());
    BOOST_TEST(p.used() == 6u);
    BOOST_TEST(!p.alloc_n(3, 10ms).has_value());
    BOOST_TEST(p.used() == 6u);
    const auto two = p.try_alloc_n(2);
    BOOST_REQUIRE(two.has_value());
    BOOST_TEST(two->size() == 2u);
    BOOST_TEST((*two)[0] != (*two)[1]);
    for (const auto i : *two) BOOST_TEST((std::find(held->begin(), held->end(), i) == held->end()));
    BOOST_TEST(p.used() == 8u);
}

BOOST_AUTO_TEST_CASE(alloc_n_slots_are_distinct_and_allocated)
{
    auto p = raw_pool::anonymous(10, 8);
    const auto v = p.alloc_n(10);
    BOOST_REQUIRE(v.has_value());
    std::vector<std::size_t> sorted(*v);
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> all(10);
    for (std::size_t i = 0; i < 10; ++i) all[i] = i;
    BOOST_TEST(sorted == all);
    BOOST_TEST(p.used() == 10u);
}

BOOST_AUTO_TEST_CASE(alloc_n_of_zero_is_an_empty_vector)
{
    auto p = pool<std::int64_t>::anonymous(2);
    fill(p); // even a full pool gives zero slots
    const auto a = p.alloc_n(0);
    const auto b = p.try_alloc_n(0);
    const auto c = p.alloc_n(0, 1ms);
    BOOST_REQUIRE(a.has_value());
    BOOST_REQUIRE(b.has_value());
    BOOST_REQUIRE(c.has_value());
    BOOST_TEST(a->empty());
    BOOST_TEST(b->empty());
    BOOST_TEST(c->empty());
    BOOST_TEST(p.try_alloc_n(boost::span<std::size_t>()));
    BOOST_TEST(p.used() == 2u);
}

BOOST_AUTO_TEST_CASE(free_n_counts_and_skips_duplicates_and_free_slots)
{
    auto p = pool<std::int64_t>::anonymous(8);
    const auto v = p.alloc_n(3);
    BOOST_REQUIRE(v.has_value());
    const std::size_t a = (*v)[0], b = (*v)[1], c = (*v)[2];
    std::size_t free_slot = 0;
    while (p.is_allocated(free_slot)) ++free_slot;
    const std::vector<std::size_t> batch = {a, a, b, free_slot, b};
    BOOST_TEST(p.free_n(batch) == 2u);
    BOOST_TEST(!p.is_allocated(a));
    BOOST_TEST(!p.is_allocated(b));
    BOOST_TEST(p.is_allocated(c));
    BOOST_TEST(p.free_n({}) == 0u);
    BOOST_TEST(p.free_n(batch) == 0u); // all free now
    BOOST_TEST(p.used() == 1u);
}

BOOST_AUTO_TEST_CASE(free_n_with_a_bad_index_throws_and_frees_nothing)
{
    auto p = pool<std::int64_t>::anonymous(8);
    const auto v = p.alloc_n(3);
    BOOST_REQUIRE(v.has_value());
    const std::vector<std::size_t> batch = {(*v)[0], (*v)[1], 8, (*v)[2]};
    BOOST_CHECK_THROW(p.free_n(batch), std::out_of_range);
    BOOST_TEST(p.used() == 3u);
    for (const auto i : *v) BOOST_TEST(p.is_allocated(i));
    BOOST_TEST(p.free_n(*v) == 3u);
}

BOOST_AUTO_TEST_CASE(try_alloc_n_into_a_span)
{
    auto p = str_pool::anonymous(5, 4);
    std::vector<std::size_t> out(3, std::size_t(-1));
    BOOST_TEST(p.try_alloc_n(boost::span<std::size_t>(out)));
    BOOST_TEST(p.used() == 3u);
    std::vector<std::size_t> sorted(out);
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST((std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()));
    for (const auto i : out) {
        BOOST_TEST(i < 5u);
        if (i < 5) BOOST_TEST(p.is_allocated(i));
    }
    // Only 2 left: all or nothing.
    std::vector<std::size_t> more(3);
    BOOST_TEST(!p.try_alloc_n(boost::span<std::size_t>(more)));
    BOOST_TEST(p.used() == 3u);
    std::vector<std::size_t> rest(2);
    BOOST_TEST(p.try_alloc_n(boost::span<std::size_t>(rest)));
    BOOST_TEST(p.used() == 5u);
}

// ---- Element operations -----------------------------------------------------------

using integer_types = boost::mpl::list<std::int64_t, std::int32_t, std::uint64_t, std::int8_t>;

BOOST_AUTO_TEST_CASE_TEMPLATE(integer_element_operations, T, integer_types)
{
    auto p = pool<T>::anonymous(4);
    const auto slot = p.try_alloc();
    BOOST_REQUIRE(slot.has_value());
    const std::size_t i = *slot;
    BOOST_TEST(p.get(i) == T(0)); // a new pool is zeroed
    p.set(i, T(5));
    BOOST_TEST(p.get(i) == T(5));
    BOOST_TEST(p.xchg(i, T(7)) == T(5));
    BOOST_TEST(p.get(i) == T(7));
    BOOST_TEST(!p.cas(i, T(5), T(9)));
    BOOST_TEST(p.get(i) == T(7));
    BOOST_TEST(p.cas(i, T(7), T(9)));
    BOOST_TEST(p.get(i) == T(9));
    BOOST_TEST(p.cmpxchg(i, T(1), T(2)) == T(9)); // failed: the value found
    BOOST_TEST(p.get(i) == T(9));
    BOOST_TEST(p.cmpxchg(i, T(9), T(3)) == T(9)); // succeeded: == expected
    BOOST_TEST(p.get(i) == T(3));
    BOOST_TEST(p.add(i, T(10)) == T(13));
    BOOST_TEST(p.incr(i) == T(14));
    BOOST_TEST(p.decr(i) == T(13));
    BOOST_TEST(p.get(i) == T(13));
    if constexpr (std::is_signed_v<T>) {
        BOOST_TEST(p.add(i, T(-20)) == T(-7));
        BOOST_TEST(p.get(i) == T(-7));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(integer_element_operations_wrap_around, T, integer_types)
{
    using lim = std::numeric_limits<T>;
    auto p = pool<T>::anonymous(2);
    const auto i = p.alloc_set(lim::max());
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(p.incr(*i) == lim::min());
    BOOST_TEST(p.decr(*i) == lim::max());
    BOOST_TEST(p.add(*i, T(2)) == T(lim::min() + 1));
    p.set(*i, lim::min());
    BOOST_TEST(p.decr(*i) == lim::max());
    BOOST_TEST(p.get(*i) == lim::max());
}

BOOST_AUTO_TEST_CASE(double_element_operations)
{
    auto p = pool<double>::anonymous(4);
    const auto slot = p.try_alloc();
    BOOST_REQUIRE(slot.has_value());
    const std::size_t i = *slot;
    BOOST_TEST(same_bits(p.get(i), 0.0));
    p.set(i, 1.5);
    BOOST_TEST(p.get(i) == 1.5);
    BOOST_TEST(p.xchg(i, -2.25) == 1.5);
    BOOST_TEST(!p.cas(i, 1.5, 3.0));
    BOOST_TEST(p.get(i) == -2.25);
    BOOST_TEST(p.cas(i, -2.25, 3.0));
    BOOST_TEST(p.get(i) == 3.0);
    BOOST_TEST(p.cmpxchg(i, 0.0, 4.0) == 3.0);
    BOOST_TEST(p.cmpxchg(i, 3.0, 4.0) == 3.0);
    BOOST_TEST(p.get(i) == 4.0);
    // Bitwise comparison: -0.0 is not 0.0, and a NaN matches itself.
    p.set(i, -0.0);
    BOOST_TEST(!p.cas(i, 0.0, 1.0));
    BOOST_TEST(same_bits(p.get(i), -0.0));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    p.set(i, nan);
    BOOST_TEST(std::isnan(p.get(i)));
    BOOST_TEST(p.cas(i, nan, 5.0));
    BOOST_TEST(p.get(i) == 5.0);
    p.set(i, std::numeric_limits<double>::infinity());
    BOOST_TEST(p.get(i) == std::numeric_limits<double>::infinity());
}

BOOST_AUTO_TEST_CASE(element_operations_on_a_free_slot_throw_and_change_nothing)
{
    auto p = pool<std::int64_t>::anonymous(4);
    const auto slot = p.alloc_set(5);
    BOOST_REQUIRE(slot.has_value());
    const std::size_t i = *slot;
    BOOST_TEST(p.free(i));
    BOOST_TEST(throws_not_allocated([&] { p.get(i); }));
    BOOST_TEST(throws_not_allocated([&] { p.set(i, 6); }));
    BOOST_TEST(throws_not_allocated([&] { p.xchg(i, 6); }));
    BOOST_TEST(throws_not_allocated([&] { p.cas(i, 5, 6); }));
    BOOST_TEST(throws_not_allocated([&] { p.cmpxchg(i, 5, 6); }));
    BOOST_TEST(throws_not_allocated([&] { p.add(i, 1); }));
    BOOST_TEST(throws_not_allocated([&] { p.incr(i); }));
    BOOST_TEST(throws_not_allocated([&] { p.decr(i); }));
    BOOST_TEST(throws_not_allocated([&] { p.ptr(i); }));
    BOOST_TEST(throws_not_allocated([&] { p.view(i); }));
    BOOST_TEST(p.data()[i] == 5); // nothing written
    BOOST_TEST(p.used() == 0u);   // nothing allocated

    auto d = pool<double>::anonymous(2);
    BOOST_TEST(throws_not_allocated([&] { d.get(1); }));
    BOOST_TEST(throws_not_allocated([&] { d.set(1, 2.0); }));
    BOOST_TEST(throws_not_allocated([&] { d.cas(1, 0.0, 2.0); }));
    BOOST_TEST(same_bits(d.data()[1], 0.0));

    auto r = raw_pool::anonymous(2, 8);
    BOOST_TEST(throws_not_allocated([&] { r.get(0); }));
    BOOST_TEST(throws_not_allocated([&] { r.set(0, "abc"); }));
    BOOST_TEST(throws_not_allocated([&] { r.ptr(0); }));
    BOOST_TEST(static_cast<const char*>(r.data_ptr())[0] == '\0');

    auto s = str_pool::anonymous(2, 8);
    BOOST_TEST(throws_not_allocated([&] { s.get(0); }));
    BOOST_TEST(throws_not_allocated([&] { s.length(0); }));
    BOOST_TEST(throws_not_allocated([&] { s.set(0, "abc"); }));
    BOOST_TEST(std::all_of(static_cast<const char*>(s.data_ptr()),
                           static_cast<const char*>(s.data_ptr()) + s.elem_size(), [](char c) { return c == 0; }));

    try {
        p.get(i);
    } catch (const shmkit::error& e) {
        BOOST_TEST(contains(e.what(), "slot " + std::to_string(i)), e.what());
    }
}

BOOST_AUTO_TEST_CASE(index_out_of_range_throws_out_of_range)
{
    auto p = pool<std::int64_t>::anonymous(4);
    fill(p);
    BOOST_CHECK_THROW(p.get(4), std::out_of_range);
    BOOST_CHECK_THROW(p.set(4, 1), std::out_of_range);
    BOOST_CHECK_THROW(p.xchg(4, 1), std::out_of_range);
    BOOST_CHECK_THROW(p.cas(4, 0, 1), std::out_of_range);
    BOOST_CHECK_THROW(p.cmpxchg(4, 0, 1), std::out_of_range);
    BOOST_CHECK_THROW(p.add(4, 1), std::out_of_range);
    BOOST_CHECK_THROW(p.incr(4), std::out_of_range);
    BOOST_CHECK_THROW(p.decr(std::size_t(-1)), std::out_of_range);
    BOOST_CHECK_THROW(p.ptr(4), std::out_of_range);
    BOOST_CHECK_THROW(p.view(4), std::out_of_range);
    BOOST_CHECK_THROW(p.is_allocated(4), std::out_of_range);
    BOOST_CHECK_THROW(p.owner(4), std::out_of_range);
    BOOST_CHECK_THROW(p.adopt(4), std::out_of_range);
    auto r = raw_pool::anonymous(2, 4);
    BOOST_CHECK_THROW(r.get(2), std::out_of_range);
    BOOST_CHECK_THROW(r.set(2, "x"), std::out_of_range);
    auto s = str_pool::anonymous(2, 4);
    BOOST_CHECK_THROW(s.get(2), std::out_of_range);
    BOOST_CHECK_THROW(s.set(2, "x"), std::out_of_range);
    BOOST_CHECK_THROW(s.length(2), std::out_of_range);
}

// ---- Raw slot access ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(slots_are_contiguous_from_data_ptr)
{
    auto p = pool<std::int64_t>::anonymous(5);
    BOOST_TEST(p.elem_size() == sizeof(std::int64_t));
    for (const auto i : fill(p)) {
        p.set(i, static_cast<std::int64_t>(100 + i));
        BOOST_TEST(static_cast<void*>(static_cast<char*>(p.data_ptr()) + i * p.elem_size()) ==
                   static_cast<void*>(p.ptr(i)));
        BOOST_TEST(p.ptr(i) == p.data() + i);
        BOOST_TEST(*p.ptr(i) == static_cast<std::int64_t>(100 + i));
        BOOST_TEST(p.data()[i] == static_cast<std::int64_t>(100 + i));
        const auto v = p.view(i);
        BOOST_TEST(v.size() == sizeof(std::int64_t));
        BOOST_TEST(static_cast<const void*>(v.data()) == static_cast<const void*>(p.ptr(i)));
    }

    auto i32 = pool<std::int32_t>::anonymous(3);
    BOOST_TEST(i32.elem_size() == 4u);
    for (const auto i : fill(i32)) BOOST_TEST(i32.ptr(i) == i32.data() + i);
}

BOOST_AUTO_TEST_CASE(raw_and_str_views_show_the_slot)
{
    auto r = raw_pool::anonymous(4, 6);
    const auto i = r.alloc_set(std::string("ab\0c", 4));
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(r.ptr(*i) == static_cast<void*>(static_cast<char*>(r.data_ptr()) + *i * r.elem_size()));
    const auto v = r.view(*i);
    BOOST_TEST(v.size() == 6u);
    BOOST_TEST((std::string(reinterpret_cast<const char*>(v.data()), v.size()) == std::string("ab\0c\0\0", 6)));
    r.set(*i, "xyz"); // shows through the view
    BOOST_TEST(static_cast<char>(v[0]) == 'x');

    auto s = str_pool::anonymous(4, 10);
    const auto j = s.alloc_set("hello");
    BOOST_REQUIRE(j.has_value());
    BOOST_TEST(s.ptr(*j) == static_cast<void*>(static_cast<char*>(s.data_ptr()) + *j * s.elem_size()));
    const auto w = s.view(*j);
    BOOST_TEST(w.size() == s.elem_size());
    std::uint32_t len = 0;
    std::memcpy(&len, w.data(), sizeof len);
    BOOST_TEST(len == 5u);
    BOOST_TEST(std::string(reinterpret_cast<const char*>(w.data()) + 4, 5) == "hello");
}

// ---- Ownership and state ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(allocation_state_and_owner)
{
    auto p = pool<std::int64_t>::anonymous(10);
    std::vector<std::size_t> held;
    for (int k = 0; k < 6; ++k) held.push_back(*p.try_alloc());
    BOOST_TEST(p.free(held[1]));
    BOOST_TEST(p.free(held[4]));
    std::vector<std::size_t> expect = {held[0], held[2], held[3], held[5]};
    std::sort(expect.begin(), expect.end());
    BOOST_TEST(p.allocated_slots() == expect);
    std::vector<std::size_t> seen;
    p.each_allocated([&](std::size_t i) { seen.push_back(i); });
    BOOST_TEST(seen == expect);
    for (std::size_t i = 0; i < p.capacity(); ++i) {
        const bool mine = std::find(expect.begin(), expect.end(), i) != expect.end();
        BOOST_TEST(p.is_allocated(i) == mine);
        BOOST_TEST(p.owner(i) == (mine ? ::getpid() : 0));
    }
    auto empty = raw_pool::anonymous(3, 1);
    BOOST_TEST(empty.allocated_slots().empty());
}

BOOST_AUTO_TEST_CASE(adopt_takes_allocated_slots_only)
{
    auto p = pool<std::int32_t>::anonymous(4);
    const auto i = p.try_alloc();
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(p.adopt(*i)); // already ours
    BOOST_TEST(p.owner(*i) == ::getpid());
    BOOST_TEST(p.is_allocated(*i));
    const std::size_t free_slot = (*i + 1) % 4;
    BOOST_TEST(!p.adopt(free_slot));
    BOOST_TEST(!p.is_allocated(free_slot)); // adopt never allocates
    BOOST_TEST(p.used() == 1u);
}

BOOST_AUTO_TEST_CASE(reset_frees_every_slot_and_counts_them)
{
    auto p = str_pool::anonymous(8, 4);
    BOOST_TEST(p.reset() == 0u);
    const auto v = p.alloc_n(5);
    BOOST_REQUIRE(v.has_value());
    BOOST_TEST(p.reset() == 5u);
    BOOST_TEST(p.used() == 0u);
    BOOST_TEST(p.allocated_slots().empty());
    BOOST_TEST(p.reset() == 0u);
}

BOOST_AUTO_TEST_CASE(recover_stale_keeps_slots_of_live_owners)
{
    test::scratch_dir dir;
    pool<std::int64_t> a(shmkit::create_only, dir / "p", 8);
    pool<std::int64_t> b(shmkit::open_only, dir / "p");
    const auto mine = a.alloc_n(3);
    const auto theirs = b.alloc_n(2);
    BOOST_REQUIRE(mine && theirs);
    BOOST_TEST(a.recover_stale() == 0u); // b is alive
    BOOST_TEST(b.recover_stale() == 0u); // a is alive
    BOOST_TEST(a.used() == 5u);
    BOOST_TEST(a.stats().recoveries == 0u);

    auto anon = pool<std::int64_t>::anonymous(4);
    fill(anon);
    BOOST_TEST(anon.recover_stale() == 0u); // own slots are never recovered
    BOOST_TEST(anon.used() == 4u);
}

BOOST_AUTO_TEST_CASE(recover_stale_frees_slots_of_a_destroyed_handle)
{
    test::scratch_dir dir;
    pool<std::int64_t> a(shmkit::create_only, dir / "p", 8);
    const auto mine = a.try_alloc();
    BOOST_REQUIRE(mine.has_value());
    std::vector<std::size_t> theirs;
    std::size_t handed_over = 0;
    {
        pool<std::int64_t> b(shmkit::open_only, dir / "p");
        for (int k = 0; k < 3; ++k) theirs.push_back(*b.try_alloc_set(7));
        handed_over = *b.try_alloc();
        BOOST_TEST(a.adopt(handed_over)); // now a's: kept
        BOOST_TEST(a.owner(handed_over) == ::getpid());
    } // b destroyed without freeing: its slots count as a dead owner's
    for (const auto i : theirs) BOOST_TEST(a.is_allocated(i));
    BOOST_TEST(a.used() == 5u);
    BOOST_TEST(a.recover_stale() == 3u);
    for (const auto i : theirs) BOOST_TEST(!a.is_allocated(i));
    BOOST_TEST(a.is_allocated(*mine));
    BOOST_TEST(a.is_allocated(handed_over));
    BOOST_TEST(a.used() == 2u);
    BOOST_TEST(a.stats().recoveries == 3u);
    BOOST_TEST(a.recover_stale() == 0u);
}

// ---- Guards -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(guard_frees_on_scope_exit)
{
    auto p = pool<std::int64_t>::anonymous(2);
    std::size_t i = 0;
    {
        auto g = p.alloc_guard();
        BOOST_REQUIRE(static_cast<bool>(g));
        i = g.index();
        BOOST_TEST(*g == i);
        BOOST_TEST(p.is_allocated(i));
    }
    BOOST_TEST(!p.is_allocated(i));
    BOOST_TEST(p.used() == 0u);
    BOOST_TEST(!static_cast<bool>(shmkit::slot_guard()));
}

BOOST_AUTO_TEST_CASE(a_guard_leaves_alone_a_slot_another_holder_has_now)
{
    test::scratch_dir dir;
    pool<std::int64_t> a(shmkit::create_only, dir / "p", 1);
    pool<std::int64_t> b(shmkit::open_only, dir / "p");
    {
        auto g = a.alloc_guard();
        BOOST_REQUIRE(static_cast<bool>(g));
        BOOST_TEST(b.adopt(*g, a.holder_token(*g))); // handed over, release() forgotten
    }
    BOOST_TEST(a.used() == 1u); // b's slot was not freed under it
    BOOST_TEST(b.holder_token(0) != 0u);
    BOOST_TEST(b.free(0));
    {
        auto g = a.alloc_guard();
        BOOST_TEST(a.free(*g)); // freed by hand, then taken by b
        BOOST_TEST((b.try_alloc() == std::optional<std::size_t>(0)));
    }
    BOOST_TEST(a.used() == 1u);
    BOOST_TEST(b.free(0));
}

BOOST_AUTO_TEST_CASE(alloc_on_a_moved_from_pool_throws_rather_than_waits_for_ever, *boost::unit_test::timeout(60))
{
    auto p = pool<std::int64_t>::anonymous(2);
    auto q = std::move(p);
    BOOST_CHECK_THROW(p.alloc(), std::logic_error); // NOLINT(bugprone-use-after-move): what is tested
    BOOST_TEST(q.alloc().has_value());
}

BOOST_AUTO_TEST_CASE(alloc_n_queued_for_the_batch_mutex_counts_as_waiting)
{
    auto p = pool<std::int64_t>::anonymous(2);
    const auto held = p.alloc_n(2);
    BOOST_REQUIRE(held.has_value());
    const auto waiters_reach = [&](std::uint64_t n) {
        return test::until([&] { return p.stats().waiters == n; }, std::chrono::milliseconds(30000));
    };
    std::optional<std::vector<std::size_t>> got_a, got_b;
    std::thread a([&] { got_a = p.alloc_n(2, 60s); }); // holds the mutex, sleeps for slots
    BOOST_TEST_REQUIRE(waiters_reach(1));
    std::thread b([&] {
        got_b = p.alloc_n(2, 60s); // queued behind a for the mutex
        if (got_b) p.free_n(*got_b);
    });
    BOOST_TEST(waiters_reach(2));
    BOOST_TEST(p.free_n(*held) == 2u);
    a.join();
    BOOST_REQUIRE(got_a.has_value());
    BOOST_TEST(p.free_n(*got_a) == 2u);
    b.join();
    BOOST_TEST(got_b.has_value());
    const auto st = p.stats();
    BOOST_TEST(st.waits == 2u);
    BOOST_TEST(st.timeouts == 0u);
    BOOST_TEST(st.waiters == 0u);
}

BOOST_AUTO_TEST_CASE(guard_release_keeps_the_slot)
{
    auto p = pool<std::int64_t>::anonymous(2);
    std::size_t kept = 0;
    {
        auto g = p.alloc_guard();
        BOOST_REQUIRE(static_cast<bool>(g));
        const std::size_t i = *g;
        kept = g.release();
        BOOST_TEST(kept == i);
        BOOST_TEST(!static_cast<bool>(g));
    }
    BOOST_TEST(p.is_allocated(kept));
    BOOST_TEST(p.free(kept));
}

BOOST_AUTO_TEST_CASE(guard_reset_frees_now)
{
    auto p = pool<std::int64_t>::anonymous(2);
    auto g = p.alloc_guard();
    BOOST_REQUIRE(static_cast<bool>(g));
    const std::size_t i = *g;
    g.reset();
    BOOST_TEST(!static_cast<bool>(g));
    BOOST_TEST(!p.is_allocated(i));
    g.reset(); // empty: nothing
    BOOST_TEST(p.used() == 0u);
}

BOOST_AUTO_TEST_CASE(guard_move_assignment_frees_the_old_slot)
{
    auto p = pool<std::int64_t>::anonymous(3);
    auto g1 = p.alloc_guard();
    auto g2 = p.alloc_guard();
    BOOST_REQUIRE(g1 && g2);
    const std::size_t i1 = *g1, i2 = *g2;
    g1 = std::move(g2);
    BOOST_TEST(!p.is_allocated(i1));
    BOOST_TEST(p.is_allocated(i2));
    BOOST_TEST(!static_cast<bool>(g2));
    BOOST_TEST(*g1 == i2);
    shmkit::slot_guard g3(std::move(g1)); // move construction transfers
    BOOST_TEST(!static_cast<bool>(g1));
    BOOST_TEST(*g3 == i2);
    shmkit::slot_guard& same = g3;
    g3 = std::move(same); // self-assignment keeps the slot
    BOOST_TEST(static_cast<bool>(g3));
    BOOST_TEST(p.is_allocated(i2));
    g3.reset();
    BOOST_TEST(p.used() == 0u);
}

BOOST_AUTO_TEST_CASE(guards_on_a_full_pool_are_empty)
{
    auto p = pool<std::int64_t>::anonymous(1);
    auto held = p.try_alloc_guard();
    BOOST_REQUIRE(static_cast<bool>(held));
    const auto timeouts = p.stats().timeouts;
    auto g = p.try_alloc_guard();
    BOOST_TEST(!static_cast<bool>(g));
    auto t = p.alloc_guard(10ms);
    BOOST_TEST(!static_cast<bool>(t));
    BOOST_TEST(p.stats().timeouts == timeouts + 1);
    BOOST_TEST(p.used() == 1u);
    held.reset();
    auto later = p.alloc_guard(10ms);
    BOOST_TEST(static_cast<bool>(later));
}

// ---- Allocate and set ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(numeric_alloc_set_family)
{
    auto p = pool<std::int64_t>::anonymous(3);
    const auto a = p.alloc_set(-11);
    const auto b = p.try_alloc_set(22);
    const auto c = p.alloc_set(33, 10ms);
    BOOST_REQUIRE(a && b && c);
    BOOST_TEST(p.get(*a) == -11);
    BOOST_TEST(p.get(*b) == 22);
    BOOST_TEST(p.get(*c) == 33);
    BOOST_TEST(!p.try_alloc_set(44).has_value());
    BOOST_TEST(!p.alloc_set(44, 10ms).has_value());
    for (const auto i : {*a, *b, *c}) BOOST_TEST(p.get(i) != 44);

    auto d = pool<double>::anonymous(2);
    const auto x = d.alloc_set(2.5);
    const auto y = d.try_alloc_set(-1.0);
    BOOST_REQUIRE(x && y);
    BOOST_TEST(d.get(*x) == 2.5);
    BOOST_TEST(d.get(*y) == -1.0);
    BOOST_TEST(!d.alloc_set(9.0, 1ms).has_value());

    auto i32 = pool<std::int32_t>::anonymous(1);
    const auto z = i32.alloc_set(std::numeric_limits<std::int32_t>::min(), 1s);
    BOOST_REQUIRE(z.has_value());
    BOOST_TEST(i32.get(*z) == std::numeric_limits<std::int32_t>::min());
    BOOST_TEST(!i32.try_alloc_set(1).has_value());
}

BOOST_AUTO_TEST_CASE(raw_alloc_set_family)
{
    auto p = raw_pool::anonymous(3, 8);
    BOOST_TEST(p.elem_size() == 8u);
    const auto a = p.alloc_set("one");
    const auto b = p.try_alloc_set("two");
    const auto c = p.alloc_set("12345678", 10ms);
    BOOST_REQUIRE(a && b && c);
    BOOST_TEST(p.get(*a) == std::string("one\0\0\0\0\0", 8));
    BOOST_TEST(p.get(*b) == std::string("two\0\0\0\0\0", 8));
    BOOST_TEST(p.get(*c) == "12345678");
    BOOST_TEST(!p.try_alloc_set("x").has_value());
    BOOST_TEST(!p.alloc_set("x", 10ms).has_value());
}

BOOST_AUTO_TEST_CASE(str_alloc_set_family)
{
    auto p = str_pool::anonymous(3, 6);
    const auto a = p.alloc_set("one");
    const auto b = p.try_alloc_set("");
    const auto c = p.alloc_set("sixsix", 10ms);
    BOOST_REQUIRE(a && b && c);
    BOOST_TEST(p.get(*a) == "one");
    BOOST_TEST(p.get(*b) == "");
    BOOST_TEST(p.length(*b) == 0u);
    BOOST_TEST(p.get(*c) == "sixsix");
    BOOST_TEST(!p.try_alloc_set("x").has_value());
    BOOST_TEST(!p.alloc_set("x", 10ms).has_value());
}

BOOST_AUTO_TEST_CASE(raw_set_too_long_throws_and_writes_nothing)
{
    auto p = raw_pool::anonymous(2, 8);
    const auto i = p.alloc_set("abcdefgh");
    BOOST_REQUIRE(i.has_value());
    BOOST_CHECK_THROW(p.set(*i, "123456789"), std::length_error);
    BOOST_TEST(p.get(*i) == "abcdefgh");
    // A failed alloc_set leaves no slot allocated.
    BOOST_CHECK_THROW(p.alloc_set("123456789"), std::length_error);
    BOOST_CHECK_THROW(p.try_alloc_set("123456789"), std::length_error);
    BOOST_CHECK_THROW(p.alloc_set("123456789", 10ms), std::length_error);
    BOOST_TEST(p.used() == 1u);
    BOOST_TEST(p.allocated_slots() == std::vector<std::size_t>{*i});
    BOOST_TEST(p.stats().allocs == 1u);
}

BOOST_AUTO_TEST_CASE(raw_set_zero_fills_the_rest_of_the_slot)
{
    auto p = raw_pool::anonymous(2, 8);
    const auto i = p.alloc_set("abcdefgh");
    BOOST_REQUIRE(i.has_value());
    p.set(*i, "xy");
    BOOST_TEST(p.get(*i) == std::string("xy\0\0\0\0\0\0", 8));
    p.set(*i, "");
    BOOST_TEST(p.get(*i) == std::string(8, '\0'));
    p.set(*i, std::string("\0z", 2));
    BOOST_TEST(p.get(*i) == std::string("\0z\0\0\0\0\0\0", 8));
}

BOOST_AUTO_TEST_CASE(str_pool_is_binary_safe_and_bounded)
{
    auto p = str_pool::anonymous(3, 10);
    BOOST_TEST(p.max_length() == 10u);
    BOOST_TEST(p.elem_size() == 16u); // 4 + 10, rounded up to 4
    const std::string nuls("a\0b\0\0", 5);
    const auto i = p.alloc_set(nuls);
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(p.get(*i) == nuls);
    BOOST_TEST(p.length(*i) == 5u);
    p.set(*i, std::string("\0\0", 2));
    BOOST_TEST(p.get(*i) == std::string("\0\0", 2));
    BOOST_TEST(p.length(*i) == 2u);
    p.set(*i, "0123456789");
    BOOST_TEST(p.get(*i) == "0123456789");
    BOOST_TEST(p.length(*i) == 10u);
    BOOST_CHECK_THROW(p.set(*i, "0123456789A"), std::length_error);
    BOOST_TEST(p.get(*i) == "0123456789"); // nothing written
    p.set(*i, "");
    BOOST_TEST(p.get(*i).empty());
    BOOST_TEST(p.length(*i) == 0u);
}

BOOST_AUTO_TEST_CASE(str_alloc_set_too_long_allocates_nothing)
{
    auto p = str_pool::anonymous(3, 4);
    const auto i = p.alloc_set("keep");
    BOOST_REQUIRE(i.has_value());
    BOOST_CHECK_THROW(p.alloc_set("toolong"), std::length_error);
    BOOST_CHECK_THROW(p.try_alloc_set("toolong"), std::length_error);
    BOOST_CHECK_THROW(p.alloc_set("toolong", 10ms), std::length_error);
    BOOST_TEST(p.used() == 1u);
    BOOST_TEST(p.allocated_slots() == std::vector<std::size_t>{*i});
    BOOST_TEST(p.get(*i) == "keep");
    BOOST_TEST(p.stats().allocs == 1u);
}

// ---- Opening ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(file_pool_create_only_refuses_an_existing_path)
{
    test::scratch_dir dir;
    const std::string path = dir / "p";
    pool<std::int64_t> a(shmkit::create_only, path, 16);
    BOOST_TEST(a.created());
    BOOST_TEST(a.path() == path);
    BOOST_TEST(a.fd() >= 0);
    BOOST_TEST(a.capacity() == 16u);
    BOOST_TEST(test::error_code_of([&] { pool<std::int64_t>(shmkit::create_only, path, 16); }) == EEXIST);
    BOOST_TEST(test::error_code_of([&] { raw_pool(shmkit::create_only, path, 16, 8); }) == EEXIST);
    BOOST_TEST(test::error_code_of([&] { str_pool(shmkit::create_only, path, 16, 4); }) == EEXIST);
    BOOST_TEST(test::error_code_of([&] { pool<std::int64_t>(shmkit::open_only, dir / "none"); }) == ENOENT);
}

BOOST_AUTO_TEST_CASE(file_pool_open_or_create_and_open_only)
{
    test::scratch_dir dir;
    const std::string path = dir / "p";
    std::size_t i = 0;
    {
        pool<std::int64_t> a(shmkit::open_or_create, path, 16);
        BOOST_TEST(a.created());
        i = *a.alloc_set(77);
        pool<std::int64_t> b(shmkit::open_or_create, path, 16);
        BOOST_TEST(!b.created());
        BOOST_TEST(b.is_allocated(i));
        BOOST_TEST(b.get(i) == 77);
        pool<std::int64_t> c(shmkit::open_only, path);
        BOOST_TEST(!c.created());
        BOOST_TEST(c.capacity() == 16u); // from the header
        BOOST_TEST(c.elem_size() == 8u);
        BOOST_TEST(c.owner(i) == ::getpid());
        BOOST_TEST(c.memfd() == -1);
    }
    // The pool outlives its handles; the slot of the destroyed handle is stale.
    pool<std::int64_t> d(shmkit::open_only, path);
    BOOST_TEST(d.is_allocated(i));
    BOOST_TEST(d.get(i) == 77);
    BOOST_TEST(d.recover_stale() == 1u);
    BOOST_TEST(d.used() == 0u);
}

BOOST_AUTO_TEST_CASE(raw_and_str_open_only_take_sizes_from_the_header)
{
    test::scratch_dir dir;
    {
        raw_pool r(shmkit::create_only, dir / "r", 5, 24);
        r.alloc_set("hello");
        str_pool s(shmkit::create_only, dir / "s", 7, 13);
        s.alloc_set("world");
    }
    raw_pool r(shmkit::open_only, dir / "r");
    BOOST_TEST(r.capacity() == 5u);
    BOOST_TEST(r.elem_size() == 24u);
    BOOST_TEST(r.allocated_slots().size() == 1u);
    BOOST_TEST(r.get(r.allocated_slots()[0]).substr(0, 5) == "hello");
    str_pool s(shmkit::open_only, dir / "s");
    BOOST_TEST(s.capacity() == 7u);
    BOOST_TEST(s.max_length() == 13u);
    BOOST_TEST(s.elem_size() == 20u);
    BOOST_TEST(s.get(s.allocated_slots()[0]) == "world");
    raw_pool r2(shmkit::open_or_create, dir / "r", 5, 24);
    BOOST_TEST(!r2.created());
    str_pool s2(shmkit::open_or_create, dir / "s", 7, 13);
    BOOST_TEST(!s2.created());
}

BOOST_AUTO_TEST_CASE(memfd_is_the_fd_of_memfd_pools_only)
{
    test::scratch_dir dir;
    auto m = pool<std::int64_t>::memfd("slots", 4);
    BOOST_TEST(m.memfd() >= 0);
    BOOST_TEST(m.memfd() == m.fd());
    BOOST_TEST(m.get_segment().get_region().kind() == shmkit::backing::memfd);
    auto rm = raw_pool::memfd("raw", 4, 16);
    BOOST_TEST(rm.memfd() >= 0);
    auto sm = str_pool::memfd("str", 4, 16);
    BOOST_TEST(sm.memfd() >= 0);
    auto a = pool<std::int64_t>::anonymous(4);
    BOOST_TEST(a.memfd() == -1);
    BOOST_TEST(a.get_segment().get_region().kind() == shmkit::backing::anonymous);
    pool<std::int64_t> f(shmkit::create_only, dir / "f", 4);
    BOOST_TEST(f.memfd() == -1);
    BOOST_TEST(f.get_segment().get_region().kind() == shmkit::backing::file);
}

BOOST_AUTO_TEST_CASE(from_fd_of_a_memfd_shares_the_slots)
{
    auto a = pool<std::int64_t>::memfd("shared", 4);
    const auto i = a.alloc_set(42);
    BOOST_REQUIRE(i.has_value());
    auto b = pool<std::int64_t>::from_fd(a.memfd());
    BOOST_TEST(b.get_segment().get_region().kind() == shmkit::backing::adopted_fd);
    BOOST_TEST(b.capacity() == 4u);
    BOOST_TEST(b.is_allocated(*i));
    BOOST_TEST(b.get(*i) == 42);
    BOOST_TEST(b.owner(*i) == ::getpid());
    b.incr(*i);
    BOOST_TEST(a.get(*i) == 43);
    const auto j = b.try_alloc();
    BOOST_REQUIRE(j.has_value());
    BOOST_TEST(*j != *i);
    BOOST_TEST(a.is_allocated(*j));
    BOOST_TEST(a.used() == 2u);
    BOOST_TEST(a.free(*j));
    BOOST_TEST(!b.is_allocated(*j));
    BOOST_TEST(fd_open(a.memfd())); // the caller keeps its fd

    auto s = str_pool::memfd("strs", 2, 8);
    const auto k = s.alloc_set("abc");
    auto t = str_pool::from_fd(s.memfd());
    BOOST_TEST(t.max_length() == 8u);
    BOOST_TEST(t.get(*k) == "abc");
    auto r = raw_pool::memfd("raws", 2, 12);
    auto q = raw_pool::from_fd(r.memfd());
    BOOST_TEST(q.elem_size() == 12u);
    BOOST_TEST(q.capacity() == 2u);

    BOOST_TEST(test::error_code_of([&] { pool<std::int32_t>::from_fd(a.memfd()); }) ==
               static_cast<int>(shmkit::errc::type_mismatch));
    BOOST_TEST(test::error_code_of([&] { raw_pool::from_fd(a.memfd()); }) ==
               static_cast<int>(shmkit::errc::type_mismatch));
}

BOOST_AUTO_TEST_CASE(pools_open_files_anonymous_memory_memfds_and_fds_only)
{
    // The static_asserts at the top check that no posix() opener exists; a
    // path is always a file path, whatever it looks like.
    test::scratch_dir dir;
    pool<std::int64_t> f(shmkit::create_only, dir / "looks-like-a-name", 2);
    BOOST_TEST(f.get_segment().get_region().kind() == shmkit::backing::file);
    BOOST_TEST(::access((dir / "looks-like-a-name").c_str(), F_OK) == 0);
}

BOOST_AUTO_TEST_CASE(opening_another_kind_is_refused)
{
    test::scratch_dir dir;
    const std::string path = dir / "buf";
    shmkit::buffer_i64 b(shmkit::create_only, path, 8);
    b.set(3, 33);
    expect_refused(path, [&] { pool<std::int64_t>(shmkit::open_only, path); }, shmkit::errc::kind_mismatch,
                   {"buffer", "pool"});
    expect_refused(path, [&] { pool<std::int64_t>(shmkit::open_or_create, path, 8); },
                   shmkit::errc::kind_mismatch, {"buffer", "pool"});
    expect_refused(path, [&] { raw_pool(shmkit::open_only, path); }, shmkit::errc::kind_mismatch,
                   {"buffer", "pool"});
    expect_refused(path, [&] { str_pool(shmkit::open_only, path); }, shmkit::errc::kind_mismatch,
                   {"buffer", "pool"});
    BOOST_TEST(b.get(3) == 33);

    // And the other way round.
    const std::string ppath = dir / "pool";
    pool<std::int64_t> p(shmkit::create_only, ppath, 8);
    expect_refused(ppath, [&] { shmkit::buffer_i64(shmkit::open_only, ppath); }, shmkit::errc::kind_mismatch,
                   {"pool", "buffer"});
}

BOOST_AUTO_TEST_CASE(opening_another_element_type_is_refused)
{
    test::scratch_dir dir;
    const std::string path = dir / "p";
    pool<std::int32_t> p(shmkit::create_only, path, 8);
    p.alloc_set(5);
    expect_refused(path, [&] { pool<std::int64_t>(shmkit::open_only, path); }, shmkit::errc::type_mismatch,
                   {"int32", "int64"});
    expect_refused(path, [&] { pool<std::int64_t>(shmkit::open_or_create, path, 8); },
                   shmkit::errc::type_mismatch, {"int32", "int64"});
    expect_refused(path, [&] { pool<double>(shmkit::open_only, path); }, shmkit::errc::type_mismatch,
                   {"int32", "double"});
    expect_refused(path, [&] { raw_pool(shmkit::open_only, path); }, shmkit::errc::type_mismatch,
                   {"int32", "bytes"});
    expect_refused(path, [&] { str_pool(shmkit::open_only, path); }, shmkit::errc::type_mismatch,
                   {"int32", "strings"});
    BOOST_TEST(p.used() == 1u);
}

BOOST_AUTO_TEST_CASE(opening_another_capacity_is_refused)
{
    test::scratch_dir dir;
    const std::string path = dir / "p";
    pool<std::int64_t> p(shmkit::create_only, path, 8);
    expect_refused(path, [&] { pool<std::int64_t>(shmkit::open_or_create, path, 16); },
                   shmkit::errc::capacity_mismatch, {"capacity is 8, requested 16"});
    const std::string rpath = dir / "r";
    raw_pool r(shmkit::create_only, rpath, 4, 16);
    expect_refused(rpath, [&] { raw_pool(shmkit::open_or_create, rpath, 5, 16); },
                   shmkit::errc::capacity_mismatch, {"capacity is 4, requested 5"});
    const std::string spath = dir / "s";
    str_pool s(shmkit::create_only, spath, 4, 8);
    expect_refused(spath, [&] { str_pool(shmkit::open_or_create, spath, 3, 8); },
                   shmkit::errc::capacity_mismatch, {"capacity is 4, requested 3"});
}

BOOST_AUTO_TEST_CASE(opening_another_raw_slot_size_is_refused)
{
    test::scratch_dir dir;
    const std::string path = dir / "r";
    raw_pool r(shmkit::create_only, path, 4, 16);
    expect_refused(path, [&] { raw_pool(shmkit::open_or_create, path, 4, 32); }, shmkit::errc::type_mismatch,
                   {"slot size is 16, expected 32"});
}

/// Opening a str_pool of 4 strings of at most 8 bytes asking `asked` as the
/// maximum length is refused with type_mismatch, naming both lengths, and
/// changes nothing.
void check_str_max_length_refused(std::size_t asked)
{
    test::scratch_dir dir;
    const std::string path = dir / "s";
    str_pool s(shmkit::create_only, path, 4, 8);
    expect_refused(path, [&] { str_pool(shmkit::open_or_create, path, 4, asked); }, shmkit::errc::type_mismatch,
                   {"maximum length is 8, expected " + std::to_string(asked)});
    BOOST_TEST(s.max_length() == 8u);
}

BOOST_AUTO_TEST_CASE(opening_another_str_max_length_is_refused)
{
    // The maximum length is the header's element size: refused by the
    // header check, naming both lengths.
    check_str_max_length_refused(16);
}

// 4 + 5 and 4 + 8 both round to a slot size of 12: the maximum length
// itself must be compared, before anything is written to the file.
BOOST_AUTO_TEST_CASE(opening_another_str_max_length_of_the_same_slot_size_is_refused)
{
    check_str_max_length_refused(5);
}

BOOST_AUTO_TEST_CASE(capacity_or_size_zero_is_invalid)
{
    test::scratch_dir dir;
    BOOST_CHECK_THROW(pool<std::int64_t>::anonymous(0), std::invalid_argument);
    BOOST_CHECK_THROW(pool<std::int64_t>(shmkit::create_only, dir / "p0", 0), std::invalid_argument);
    BOOST_CHECK_THROW(pool<double>::memfd("zero", 0), std::invalid_argument);
    BOOST_CHECK_THROW(raw_pool::anonymous(0, 8), std::invalid_argument);
    BOOST_CHECK_THROW(raw_pool::anonymous(4, 0), std::invalid_argument);
    BOOST_CHECK_THROW(raw_pool(shmkit::create_only, dir / "r0", 4, 0), std::invalid_argument);
    BOOST_CHECK_THROW(str_pool::anonymous(0, 8), std::invalid_argument);
    BOOST_CHECK_THROW(str_pool::anonymous(4, 0), std::invalid_argument);
    BOOST_CHECK_THROW(str_pool(shmkit::create_only, dir / "s0", 4, 0), std::invalid_argument);
    BOOST_CHECK_THROW(pool<std::int64_t>::anonymous(std::size_t(-1) / 2), std::invalid_argument);
    BOOST_TEST(::access((dir / "p0").c_str(), F_OK) != 0); // nothing created
    BOOST_TEST(::access((dir / "r0").c_str(), F_OK) != 0);
    BOOST_TEST(::access((dir / "s0").c_str(), F_OK) != 0);
}

// ---- Stats ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stats_count_a_known_sequence)
{
    auto p = pool<std::int64_t>::anonymous(8);
    const auto s0 = p.stats();
    BOOST_TEST(s0.capacity == 8u);
    BOOST_TEST(s0.elem_size == 8u);
    BOOST_TEST(s0.used == 0u);
    BOOST_TEST(s0.available == 8u);
    BOOST_TEST(s0.allocs == 0u);
    BOOST_TEST(s0.frees == 0u);
    BOOST_TEST(s0.waits == 0u);
    BOOST_TEST(s0.timeouts == 0u);
    BOOST_TEST(s0.recoveries == 0u);
    BOOST_TEST(s0.waiters == 0u);
    BOOST_TEST(s0.mmap_size > 0u);
    BOOST_TEST(s0.mmap_size == p.mmap_size());

    const auto a = p.try_alloc();   // allocs 1
    const auto b = p.alloc();       // 2
    const auto c = p.alloc_set(1);  // 3
    BOOST_REQUIRE(a && b && c);
    BOOST_TEST(p.free(*a));         // frees 1
    BOOST_TEST(!p.free(*a));        // not counted
    const auto n = p.alloc_n(3);    // allocs 6
    BOOST_REQUIRE(n.has_value());
    BOOST_TEST(p.free_n(*n) == 3u); // frees 4
    { auto g = p.alloc_guard(); }   // allocs 7, frees 5
    const auto s1 = p.stats();
    BOOST_TEST(s1.allocs == 7u);
    BOOST_TEST(s1.frees == 5u);
    BOOST_TEST(s1.used == 2u);
    BOOST_TEST(s1.available == 6u);
    BOOST_TEST(s1.waits == 0u);
    BOOST_TEST(s1.waiters == 0u);
    BOOST_TEST(p.reset() == 2u);    // frees 7
    const auto s2 = p.stats();
    BOOST_TEST(s2.frees == 7u);
    BOOST_TEST(s2.used == 0u);
    BOOST_TEST(s2.available == 8u);

    auto s = str_pool::anonymous(3, 10);
    BOOST_TEST(s.stats().elem_size == 16u);
    BOOST_TEST(s.stats().capacity == 3u);
}

// ---- eventfd ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(notify_without_an_eventfd_throws)
{
    auto p = pool<std::int64_t>::anonymous(2);
    BOOST_TEST(p.fileno() == -1);
    BOOST_CHECK_THROW(p.notify(), shmkit::error);
    BOOST_CHECK_THROW(p.eventfd_consume(), shmkit::error);
    BOOST_TEST(test::error_code_of([&] { p.notify(); }) == EBADF);
}

BOOST_AUTO_TEST_CASE(eventfd_notify_and_consume)
{
    auto p = raw_pool::anonymous(2, 8);
    const int fd = p.create_eventfd();
    BOOST_TEST(fd >= 0);
    BOOST_TEST(p.fileno() == fd);
    BOOST_TEST(p.eventfd_consume() == 0u);
    p.notify();
    p.notify(4);
    BOOST_TEST(p.eventfd_consume() == 5u);
    BOOST_TEST(p.eventfd_consume() == 0u);
}

BOOST_AUTO_TEST_CASE(borrowed_eventfd_is_shared_and_never_closed)
{
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    BOOST_REQUIRE(efd >= 0);
    {
        auto a = pool<std::int64_t>::anonymous(2);
        auto b = str_pool::anonymous(2, 8);
        a.attach_eventfd(efd);
        b.attach_eventfd(efd);
        BOOST_TEST(a.fileno() == efd);
        BOOST_TEST(b.fileno() == efd);
        a.notify(2);
        b.notify();
        BOOST_TEST(b.eventfd_consume() == 3u);
        BOOST_TEST(a.eventfd_consume() == 0u);
    }
    BOOST_TEST(fd_open(efd)); // neither handle closed it
    BOOST_TEST(::close(efd) == 0);
}

BOOST_AUTO_TEST_CASE(adopted_eventfd_is_closed_with_the_pool)
{
    const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    BOOST_REQUIRE(efd >= 0);
    {
        auto p = pool<std::int32_t>::anonymous(2);
        p.attach_eventfd(efd, shmkit::sync::ownership::adopt);
        p.notify();
        BOOST_TEST(p.eventfd_consume() == 1u);
        BOOST_TEST(fd_open(efd));
    }
    errno = 0;
    BOOST_TEST(!fd_open(efd));
    BOOST_TEST(errno == EBADF);
}

BOOST_AUTO_TEST_CASE(created_eventfd_is_closed_with_the_pool)
{
    int efd = -1;
    {
        auto p = pool<double>::anonymous(2);
        efd = p.create_eventfd();
        BOOST_TEST(fd_open(efd));
    }
    BOOST_TEST(!fd_open(efd));
}

BOOST_AUTO_TEST_CASE(gets_into_a_callers_buffer)
{
    auto s = str_pool::anonymous(4, 64);
    const auto i = s.alloc_set(std::string("binary\0safe", 11));
    BOOST_REQUIRE(i);
    std::string out = "previous contents that are longer";
    s.get(*i, out);
    BOOST_TEST((out == std::string("binary\0safe", 11)));
    const auto free_slot = (*i + 1) % 4;
    BOOST_CHECK_THROW(s.get(free_slot, out), shmkit::error);
    BOOST_TEST((out == std::string("binary\0safe", 11))); // unchanged by the refusal

    auto r = raw_pool::anonymous(4, 16);
    const auto j = r.alloc_set("0123456789");
    BOOST_REQUIRE(j);
    std::array<std::byte, 16> buf{};
    r.get(*j, boost::span<std::byte>(buf));
    BOOST_TEST(std::memcmp(buf.data(), "0123456789\0\0\0\0\0\0", 16) == 0);
    std::array<std::byte, 8> small{};
    BOOST_CHECK_THROW(r.get(*j, boost::span<std::byte>(small)), std::length_error);
    BOOST_CHECK_THROW(r.get(99, boost::span<std::byte>(buf)), std::out_of_range);
}
