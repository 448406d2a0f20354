// buffer<T> and str_buffer in one process: every operation, every type,
// extremes, opening and refusals.
#define BOOST_TEST_MODULE buffer
#include "support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/str_buffer.hpp>

#include <boost/mpl/list.hpp>

#include <cmath>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <limits>

using namespace std::chrono_literals;

using integer_types = boost::mpl::list<std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
                                       std::uint32_t, std::int64_t, std::uint64_t>;
using all_types = boost::mpl::list<std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
                                   std::uint32_t, std::int64_t, std::uint64_t, float, double>;

namespace {

template <class T>
bool same_bits(T a, T b)
{
    return std::memcmp(&a, &b, sizeof a) == 0;
}


} // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(get_set_extremes_and_persistence, T, all_types)
{
    test::scratch_dir dir;
    const std::string path = dir / "buf";
    using lim = std::numeric_limits<T>;
    std::vector<T> values = {T(0), T(1), lim::min(), lim::max(), lim::lowest()};
    if constexpr (std::is_floating_point_v<T>) {
        values.push_back(lim::quiet_NaN());
        values.push_back(lim::infinity());
        values.push_back(-lim::infinity());
        values.push_back(T(-0.0));
        values.push_back(lim::denorm_min());
        values.push_back(T(-1.5));
    } else if constexpr (std::is_signed_v<T>) {
        values.push_back(T(-1));
    }
    {
        shmkit::buffer<T> b(shmkit::create_only, path, values.size());
        BOOST_TEST(b.created());
        BOOST_TEST(b.capacity() == values.size());
        BOOST_TEST(b.elem_size() == sizeof(T));
        for (std::size_t i = 0; i < values.size(); ++i) {
            BOOST_TEST(same_bits(b.get(i), T(0)));
            b.set(i, values[i]);
            BOOST_TEST(same_bits(b.get(i), values[i]));
        }
    }
    // Persistence: a new handle (capacity from the header) sees the same bits.
    shmkit::buffer<T> b(shmkit::open_only, path);
    BOOST_TEST(!b.created());
    BOOST_TEST(b.capacity() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i) BOOST_TEST(same_bits(b.get(i), values[i]));
    const auto s = b.stats();
    BOOST_TEST(s.capacity == values.size());
    BOOST_TEST(s.elem_size == sizeof(T));
    BOOST_TEST((s.type == shmkit::buffer<T>::type));
    BOOST_TEST(s.mmap_size == b.mmap_size());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(exchange_and_compare, T, all_types)
{
    auto b = shmkit::buffer<T>::anonymous(4);
    b.set(0, T(5));
    BOOST_TEST(same_bits(b.xchg(0, T(7)), T(5)));
    BOOST_TEST(!b.cas(0, T(5), T(9)));
    BOOST_TEST(same_bits(b.get(0), T(7)));
    BOOST_TEST(b.cas(0, T(7), T(9)));
    BOOST_TEST(same_bits(b.cmpxchg(0, T(1), T(2)), T(9)));
    BOOST_TEST(same_bits(b.cmpxchg(0, T(9), T(3)), T(9)));
    BOOST_TEST(same_bits(b.get(0), T(3)));
    if constexpr (std::is_floating_point_v<T>) {
        // Bitwise comparison: -0.0 is not 0.0, and a NaN matches itself.
        b.set(1, T(-0.0));
        BOOST_TEST(!b.cas(1, T(0.0), T(1)));
        const T nan = std::numeric_limits<T>::quiet_NaN();
        b.set(2, nan);
        BOOST_TEST(b.cas(2, nan, T(4)));
        BOOST_TEST(b.get(2) == T(4));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(integer_arithmetic_wraps, T, integer_types)
{
    using lim = std::numeric_limits<T>;
    auto b = shmkit::buffer<T>::anonymous(8);
    BOOST_TEST(b.incr(0) == T(1));
    BOOST_TEST(b.incr(0) == T(2));
    BOOST_TEST(b.decr(0) == T(1));
    BOOST_TEST(b.add(0, T(10)) == T(11));
    b.set(1, lim::max());
    BOOST_TEST(b.incr(1) == lim::min()); // wraps
    BOOST_TEST(b.decr(1) == lim::max());
    b.set(2, lim::min());
    BOOST_TEST(b.decr(2) == lim::max());
    if constexpr (std::is_signed_v<T>) BOOST_TEST(b.add(0, T(-12)) == T(-1));
    b.set(3, T(0x0f));
    BOOST_TEST(b.fetch_or(3, T(0x30)) == T(0x0f));
    BOOST_TEST(b.fetch_and(3, T(0x3c)) == T(0x3f));
    BOOST_TEST(b.fetch_xor(3, T(0x0f)) == T(0x3c));
    BOOST_TEST(b.get(3) == T(0x33));
    const std::vector<T> deltas = {T(1), T(2), T(3)};
    b.add_slice(5, deltas);
    BOOST_TEST(b.get(5) == T(1));
    BOOST_TEST(b.get(7) == T(3));
    BOOST_CHECK_THROW(b.add_slice(6, deltas), std::out_of_range);
    BOOST_TEST(b.get(6) == T(2)); // nothing written by the refused call
}

BOOST_AUTO_TEST_CASE_TEMPLATE(bulk_operations, T, all_types)
{
    auto b = shmkit::buffer<T>::anonymous(10);
    const std::vector<T> v = {T(1), T(2), T(3)};
    b.set_slice(4, v);
    BOOST_TEST((b.slice(3, 5) == std::vector<T>{T(0), T(1), T(2), T(3), T(0)}));
    std::vector<T> out(3);
    b.slice(4, boost::span<T>(out));
    BOOST_TEST((out == v));
    BOOST_TEST(b.slice(10, 0).empty());
    b.fill(T(9));
    for (std::size_t i = 0; i < b.capacity(); ++i) BOOST_TEST(b.get(i) == T(9));
    b.clear();
    for (std::size_t i = 0; i < b.capacity(); ++i) BOOST_TEST(same_bits(b.get(i), T(0)));

    // Raw bytes of the element area.
    const T x = T(42);
    b.set_raw(2 * sizeof(T), std::string_view(reinterpret_cast<const char*>(&x), sizeof x));
    BOOST_TEST(b.get(2) == x);
    const std::string raw = b.get_raw(2 * sizeof(T), sizeof(T));
    BOOST_TEST(std::memcmp(raw.data(), &x, sizeof x) == 0);

    // Views.
    BOOST_TEST(b.view().size() == b.capacity());
    BOOST_TEST(b.ptr(2) == b.data() + 2);
    BOOST_TEST(*b.ptr(2) == x);
}

/// set_raw() of fresh bytes at every offset of `area` bytes, with every
/// length up to `longest`, each checked with get_raw() against a model.
void expect_set_raw_matches_a_model(shmkit::detail::buffer_base& b, std::size_t area, std::size_t longest)
{
    std::string model = b.get_raw(0, area);
    unsigned char next = 1;
    for (std::size_t off = 0; off <= area; ++off)
        for (std::size_t n = 0; n <= std::min(longest, area - off); ++n) {
            std::string bytes(n, '\0');
            for (char& c : bytes) c = static_cast<char>(next++);
            b.set_raw(off, bytes);
            model.replace(off, n, bytes);
            BOOST_TEST_REQUIRE(b.get_raw(0, area) == model, "set_raw(" << off << ", " << n << " bytes)");
        }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(set_raw_writes_exactly_its_bytes_at_any_offset_and_length, T, all_types)
{
    // Lengths up to 40: whole and partial elements and 8-byte words all occur.
    auto b = shmkit::buffer<T>::anonymous(12);
    expect_set_raw_matches_a_model(b, 12 * sizeof(T), 40);
}

BOOST_AUTO_TEST_CASE(str_buffer_set_raw_writes_exactly_its_bytes_at_any_offset_and_length)
{
    // Width 9: slots of 16 bytes, wider than any element type.
    auto b = shmkit::str_buffer::anonymous(4, 9);
    expect_set_raw_matches_a_model(b, 4 * 16, 24);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(out_of_range_writes_nothing, T, all_types)
{
    auto b = shmkit::buffer<T>::anonymous(4);
    b.fill(T(1));
    const std::vector<T> two = {T(5), T(6)};
    BOOST_CHECK_THROW(b.get(4), std::out_of_range);
    BOOST_CHECK_THROW(b.set(4, T(2)), std::out_of_range);
    BOOST_CHECK_THROW(b.xchg(4, T(2)), std::out_of_range);
    BOOST_CHECK_THROW(b.cas(4, T(1), T(2)), std::out_of_range);
    BOOST_CHECK_THROW(b.ptr(4), std::out_of_range);
    BOOST_CHECK_THROW(b.slice(3, 2), std::out_of_range);
    BOOST_CHECK_THROW(b.slice(std::size_t(-1), 2), std::out_of_range);
    BOOST_CHECK_THROW(b.set_slice(3, two), std::out_of_range);
    BOOST_CHECK_THROW(b.set_raw(4 * sizeof(T) - 1, "ab"), std::out_of_range);
    BOOST_CHECK_THROW(b.get_raw(1, 4 * sizeof(T)), std::out_of_range);
    BOOST_TEST((b.slice(0, 4) == std::vector<T>(4, T(1))));
}

BOOST_AUTO_TEST_CASE(opening_and_refusals)
{
    test::scratch_dir dir;
    const std::string path = dir / "b";
    BOOST_CHECK_THROW(shmkit::buffer_i32(shmkit::create_only, dir / "zero", 0), std::invalid_argument);
    BOOST_CHECK_THROW(shmkit::buffer_i32::anonymous(std::size_t(-1) / 2), std::invalid_argument);
    shmkit::buffer_i32 a(shmkit::open_or_create, path, 100);
    BOOST_TEST(a.created());
    a.set(7, 70);
    shmkit::buffer_i32 b(shmkit::open_or_create, path, 100);
    BOOST_TEST(!b.created());
    BOOST_TEST(b.get(7) == 70);
    BOOST_TEST(test::error_code_of([&] { shmkit::buffer_i32(shmkit::create_only, path, 100); }) == EEXIST);

    const auto refused = [&](const std::function<void()>& f, const std::string& needle) {
        try {
            f();
            BOOST_ERROR("not refused: " << needle);
        } catch (const shmkit::error& e) {
            BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
            BOOST_TEST(std::string(e.what()).find(path) != std::string::npos);
        }
    };
    refused([&] { shmkit::buffer_i64(shmkit::open_or_create, path, 100); }, "holds int32, expected int64");
    refused([&] { shmkit::buffer_f32(shmkit::open_only, path); }, "holds int32, expected float");
    refused([&] { shmkit::buffer_i32(shmkit::open_or_create, path, 50); }, "capacity is 100, requested 50");
    refused([&] { shmkit::str_buffer(shmkit::open_only, path); }, "holds int32, expected bytes");
    BOOST_TEST(a.get(7) == 70); // refusals change nothing

    BOOST_TEST(a.path() == path);
    BOOST_TEST(a.fd() >= 0);
    a.sync();
    BOOST_TEST(a.unlink());
    BOOST_TEST(::access(path.c_str(), F_OK) != 0);
}

BOOST_AUTO_TEST_CASE(memfd_and_passed_fd)
{
    auto a = shmkit::buffer_u64::memfd("counters", 16);
    a.set(3, 33);
    const int fd = a.fd();
    test::child c([&] {
        auto b = shmkit::buffer_u64::from_fd(fd);
        if (b.capacity() != 16 || b.get(3) != 33) return 1;
        b.incr(3);
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(a.get(3) == 34u);
    BOOST_CHECK_THROW(shmkit::buffer_i8::from_fd(fd), shmkit::error);
}

BOOST_AUTO_TEST_CASE(locking_and_reentrant_bulk_operations)
{
    auto b = shmkit::buffer_i32::anonymous(8);
    const std::vector<std::int32_t> v = {1, 2, 3};
    b.lock();
    b.set_slice(0, v); // under our own write lock: no deadlock
    b.fill(4);
    BOOST_TEST(b.slice(0, 2) == std::vector<std::int32_t>({4, 4}));
    BOOST_CHECK_THROW(b.lock(), std::system_error);
    b.unlock();
    b.lock_shared();
    BOOST_TEST(b.slice(0, 2) == std::vector<std::int32_t>({4, 4})); // under our own read lock
    BOOST_CHECK_THROW(b.set_slice(0, v), std::system_error);          // would be an upgrade
    b.unlock_shared();
    b.lock_wr();
    b.unlock_wr();
    b.lock_rd();
    b.unlock_rd();
    BOOST_TEST(b.try_lock_for(10ms));
    b.unlock();
    {
        std::unique_lock<shmkit::buffer_i32> g(b);
        b.set(0, 1);
    }
    {
        std::shared_lock<shmkit::buffer_i32> g(b);
        BOOST_TEST(b.get(0) == 1);
    }
}

BOOST_AUTO_TEST_CASE(deadlines_with_any_clock)
{
    auto b = shmkit::buffer_i32::anonymous(8);
    std::promise<void> held, release;
    std::thread holder([&] {
        b.lock(); // another thread: holding is recorded per thread
        held.set_value();
        release.get_future().wait();
        b.unlock();
    });
    held.get_future().wait();
    BOOST_TEST(!b.try_lock_until(std::chrono::steady_clock::now() + 20ms));
    BOOST_TEST(!b.try_lock_shared_until(std::chrono::system_clock::now() + 20ms));
    BOOST_TEST(!b.try_lock_until(std::chrono::steady_clock::now() - 1s)); // already past: one try
    {
        std::unique_lock<shmkit::buffer_i32> g(b, std::chrono::steady_clock::now() + 20ms);
        BOOST_TEST(!g.owns_lock());
    }
    release.set_value();
    holder.join();
    BOOST_TEST(b.try_lock_until(std::chrono::system_clock::now() + 5s));
    b.unlock();
    BOOST_TEST(b.try_lock_shared_until(std::chrono::steady_clock::now() + 5s));
    b.unlock_shared();
    {
        std::shared_lock<shmkit::buffer_i32> g(b, std::chrono::steady_clock::now() + 5s);
        BOOST_TEST(g.owns_lock());
    }
}

BOOST_AUTO_TEST_CASE(notification)
{
    auto b = shmkit::buffer_i32::anonymous(8);
    BOOST_CHECK_THROW(b.notify(), shmkit::error);
    const int efd = b.create_eventfd();
    BOOST_TEST(efd >= 0);
    BOOST_TEST(!b.wait_notify(1ms).has_value());
    test::child c([&] {
        b.incr(1);
        b.notify();
        b.notify(2);
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    const auto n = b.wait_notify(5s);
    BOOST_REQUIRE(n.has_value());
    BOOST_TEST(*n == 3u);
    BOOST_TEST(b.get(1) == 1);
    auto other = shmkit::buffer_i32::anonymous(1);
    other.attach_eventfd(efd);
    other.notify();
    BOOST_TEST(*b.wait_notify(1s) == 1u);
}

// ---- str_buffer ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(strings_are_binary_safe_and_bounded)
{
    test::scratch_dir dir;
    const std::string path = dir / "s";
    {
        shmkit::str_buffer s(shmkit::create_only, path, 4, 8);
        BOOST_TEST(s.width() == 8u);
        BOOST_TEST(s.get(0) == "");
        const std::string nuls("a\0b\0\0", 5);
        s.set(0, nuls);
        s.set(1, "12345678");
        s.set(2, std::string("\0\0", 2));
        BOOST_TEST(s.get(0) == nuls);
        BOOST_TEST(s.get(1) == "12345678");
        BOOST_TEST(s.get(2).size() == 2u);
        BOOST_CHECK_THROW(s.set(1, "123456789"), std::length_error);
        BOOST_TEST(s.get(1) == "12345678"); // nothing written
        BOOST_CHECK_THROW(s.set(4, "x"), std::out_of_range);
        BOOST_CHECK_THROW(s.get(4), std::out_of_range);
    }
    shmkit::str_buffer s(shmkit::open_only, path);
    BOOST_TEST(s.width() == 8u);
    BOOST_TEST(s.capacity() == 4u);
    BOOST_TEST(s.get(1) == "12345678");
    BOOST_TEST(s.slice(0, 2)[1] == "12345678");
    const std::vector<std::string_view> vals = {"x", "yy"};
    s.set_slice(2, vals);
    BOOST_TEST(s.get(3) == "yy");
    const std::vector<std::string_view> bad = {"ok", "much too long"};
    BOOST_CHECK_THROW(s.set_slice(0, bad), std::length_error);
    BOOST_TEST(s.get(0).size() == 5u); // validated before anything was written
    s.fill("f");
    BOOST_TEST(s.get(3) == "f");
    s.clear();
    BOOST_TEST(s.get(3) == "");
    BOOST_CHECK_THROW(shmkit::str_buffer(shmkit::create_only, dir / "w0", 4, 0), std::invalid_argument);
    try {
        shmkit::str_buffer(shmkit::open_or_create, path, 4, 16);
        BOOST_ERROR("another width accepted");
    } catch (const shmkit::error& e) {
        BOOST_TEST(std::string(e.what()).find("string width is 8, expected 16") != std::string::npos, e.what());
    }
    BOOST_CHECK_THROW(shmkit::buffer_u8(shmkit::open_only, path), shmkit::error);
}

BOOST_AUTO_TEST_CASE(str_buffer_backings)
{
    auto a = shmkit::str_buffer::anonymous(2, 3);
    a.set(0, "abc");
    auto m = shmkit::str_buffer::memfd("names", 2, 5);
    m.set(1, "hello");
    auto f = shmkit::str_buffer::from_fd(m.fd());
    BOOST_TEST(f.width() == 5u);
    BOOST_TEST(f.get(1) == "hello");
    BOOST_TEST(a.get(0) == "abc");
}
