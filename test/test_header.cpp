// Segment header validation: every corrupted field is refused with an error
// naming the path and the problem, and the file stays byte-for-byte unchanged.
#define BOOST_TEST_MODULE header
#include "support.hpp"

#include <shmkit/segment.hpp>

#include <cstddef>
#include <cstring>

using shmkit::errc;
using shmkit::segment;
using shmkit::detail::segment_header;

namespace {

shmkit::segment_layout layout()
{
    shmkit::segment_layout l;
    l.kind = shmkit::structure_kind::buffer;
    l.elem_type = shmkit::element_type::i32;
    l.elem_size = 4;
    l.capacity = 100;
    l.data_size = 400;
    l.n_rwlocks = 1;
    l.n_mutexes = 1;
    l.attach_capacity = 8;
    return l;
}

struct fixture {
    test::scratch_dir dir;
    std::string good = dir / "good";
    std::string bad = dir / "bad";
    fixture() { segment::file(shmkit::create_only, good, layout()); }

    /// Writes `bad` as `good` changed by `edit`, then checks that opening it
    /// fails with `expected` (naming the path) and leaves it unchanged.
    void expect_refused(const std::function<void(std::string&)>& edit, errc expected, const char* what)
    {
        std::string bytes = test::read_file(good);
        edit(bytes);
        test::write_file(bad, bytes);
        BOOST_TEST_CONTEXT(what)
        {
            try {
                segment::file(shmkit::open_only, bad, layout().expectation());
                BOOST_ERROR("opened a corrupted segment");
            } catch (const shmkit::error& e) {
                BOOST_TEST(e.code() == shmkit::make_error_code(expected), e.what());
                BOOST_TEST(std::string(e.what()).find(bad) != std::string::npos);
            }
            BOOST_TEST((test::read_file(bad) == bytes), "file changed by a refused open");
        }
    }
};

template <class T>
void poke(std::string& bytes, std::size_t offset, T value)
{
    std::memcpy(&bytes[offset], &value, sizeof value);
}

template <class T>
T peek(const std::string& bytes, std::size_t offset)
{
    T v;
    std::memcpy(&v, &bytes[offset], sizeof v);
    return v;
}

/// Rewrites the checksum so only the semantic checks can catch the edit.
void reseal(std::string& bytes)
{
    segment_header h;
    std::memcpy(static_cast<void*>(&h), bytes.data(), sizeof h);
    poke(bytes, offsetof(segment_header, checksum), shmkit::detail::header_checksum(h));
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(header, fixture)

BOOST_AUTO_TEST_CASE(valid_segment_opens)
{
    segment s = segment::file(shmkit::open_only, good, layout().expectation());
    BOOST_TEST(s.capacity() == 100u);
    BOOST_TEST(s.data_size() == 400u);
}

BOOST_AUTO_TEST_CASE(every_single_byte_of_the_header_is_checked)
{
    // Flipping any byte covered by the checksum, or the checksum itself,
    // or the init word, must be refused.
    const std::size_t end = offsetof(segment_header, init_state) + sizeof(std::uint32_t);
    for (std::size_t off = 0; off < end; ++off) {
        if (off >= offsetof(segment_header, checksum) + 8 && off < offsetof(segment_header, init_state)) continue;
        std::string bytes = test::read_file(good);
        bytes[off] = static_cast<char>(bytes[off] ^ 0x5a);
        test::write_file(bad, bytes);
        BOOST_TEST_CONTEXT("byte " << off)
        {
            BOOST_CHECK_THROW(segment::file(shmkit::open_only, bad, layout().expectation()), shmkit::error);
            BOOST_TEST((test::read_file(bad) == bytes));
        }
    }
}

BOOST_AUTO_TEST_CASE(named_problems)
{
    expect_refused([](std::string& b) { b[0] = 'X'; }, errc::not_a_segment, "magic");
    expect_refused([](std::string& b) { poke<std::uint32_t>(b, offsetof(segment_header, byte_order), 0x04030201); },
                   errc::foreign_platform, "byte order");
    expect_refused([](std::string& b) { poke<std::uint32_t>(b, offsetof(segment_header, pointer_size), 4); },
                   errc::foreign_platform, "pointer size");
    expect_refused(
        [](std::string& b) {
            poke<std::uint32_t>(b, offsetof(segment_header, format_version), shmkit::detail::format_version + 1);
            reseal(b);
        },
        errc::version_mismatch, "version");
    expect_refused([](std::string& b) { poke<std::uint32_t>(b, offsetof(segment_header, init_state), 0); },
                   errc::not_initialised, "init state");
    expect_refused([](std::string& b) { poke<std::uint64_t>(b, offsetof(segment_header, capacity), 101); },
                   errc::corrupt_header, "capacity without checksum");
    expect_refused([](std::string& b) { b[offsetof(segment_header, checksum)] ^= 1; }, errc::corrupt_header,
                   "checksum");
}

BOOST_AUTO_TEST_CASE(consistent_but_impossible_layouts)
{
    // Each edit keeps a valid checksum: only layout validation can catch it.
    const auto field = [this](std::size_t off, std::uint64_t v, bool wide, const char* what) {
        expect_refused(
            [=](std::string& b) {
                if (wide) poke<std::uint64_t>(b, off, v);
                else poke<std::uint32_t>(b, off, static_cast<std::uint32_t>(v));
                reseal(b);
            },
            errc::corrupt_header, what);
    };
    field(offsetof(segment_header, header_size), 128, false, "header size");
    field(offsetof(segment_header, kind), 99, false, "kind");
    field(offsetof(segment_header, elem_type), 77, false, "element type");
    field(offsetof(segment_header, attach_capacity), 0, false, "attach capacity 0");
    field(offsetof(segment_header, attach_capacity), 100000, false, "attach capacity huge");
    field(offsetof(segment_header, n_rwlocks), 9, false, "rwlocks");
    field(offsetof(segment_header, n_mutexes), 1000, false, "mutexes");
    field(offsetof(segment_header, attach_offset), 8, true, "attach offset inside header");
    field(offsetof(segment_header, attach_offset), 260, true, "attach offset misaligned");
    field(offsetof(segment_header, sync_offset), ~0ull - 10, true, "sync offset overflow");
    field(offsetof(segment_header, data_offset), 1u << 30, true, "data offset beyond end");
    field(offsetof(segment_header, data_size), ~0ull, true, "data size overflow");
    expect_refused(
        [](std::string& b) {
            poke<std::uint64_t>(b, offsetof(segment_header, total_size), b.size() * 2);
            reseal(b);
        },
        errc::truncated, "total size larger than file");
}

BOOST_AUTO_TEST_CASE(empty_truncated_and_extended_files)
{
    expect_refused([](std::string& b) { b.clear(); }, errc::truncated, "empty");
    expect_refused([](std::string& b) { b.resize(100); }, errc::truncated, "shorter than a header");
    expect_refused([](std::string& b) { b.resize(b.size() / 2); }, errc::truncated, "half");
    expect_refused([](std::string& b) { b.append(4096, '\0'); }, errc::truncated, "longer than recorded");
    expect_refused([](std::string& b) { b.assign(8192, 'x'); }, errc::not_a_segment, "foreign file");
}

BOOST_AUTO_TEST_CASE(wrong_kind_type_and_capacity)
{
    const auto refused_with = [this](const shmkit::segment_expectation& x, errc expected, const char* needle) {
        const std::string before = test::read_file(good);
        try {
            segment::file(shmkit::open_only, good, x);
            BOOST_ERROR("opened with a wrong expectation");
        } catch (const shmkit::error& e) {
            BOOST_TEST(e.code() == shmkit::make_error_code(expected));
            BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
        BOOST_TEST((test::read_file(good) == before));
    };
    auto x = layout().expectation();
    x.kind = shmkit::structure_kind::pool;
    refused_with(x, errc::kind_mismatch, "segment is a buffer, expected a pool");
    x = layout().expectation();
    x.elem_type = shmkit::element_type::f64;
    refused_with(x, errc::type_mismatch, "holds int32, expected double");
    x = layout().expectation();
    x.elem_size = 8;
    refused_with(x, errc::type_mismatch, "element size is 4, expected 8");
    x = layout().expectation();
    x.capacity = 50;
    refused_with(x, errc::capacity_mismatch, "capacity is 100, requested 50");

    // open_or_create with another layout finds the existing one and refuses it.
    auto other = layout();
    other.capacity = 200;
    other.data_size = 800;
    BOOST_CHECK_THROW(segment::file(shmkit::open_or_create, good, other), shmkit::error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(layout_arguments_are_checked)
{
    shmkit::segment_layout l;
    l.attach_capacity = 0;
    BOOST_CHECK_THROW(l.total_size(), std::invalid_argument);
    l.attach_capacity = 5000;
    BOOST_CHECK_THROW(l.total_size(), std::invalid_argument);
    l.attach_capacity = 8;
    l.n_rwlocks = 9;
    BOOST_CHECK_THROW(l.total_size(), std::invalid_argument);
    l.n_rwlocks = 1;
    l.data_size = ~0ull - 100;
    BOOST_CHECK_THROW(l.total_size(), std::invalid_argument);
    l.data_size = 1;
    BOOST_TEST(l.total_size() % 4096 == 0u);
}
