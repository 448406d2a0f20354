// fuzz_buffer_ops for str_buffer: the model keeps the slots as bytes, as
// str_buffer documents them (a 4-byte length, then `width` bytes, padded
// to 8); a length beyond the width reads as the width (set_raw can write
// one).
#include "buffer_model.hpp"
#include "fuzz_support.hpp"

#include <shmkit/str_buffer.hpp>

#include <algorithm>
#include <vector>

namespace fuzz {
namespace {

struct string_model : buffer_model {
    string_model(std::size_t cap, std::size_t width) : buffer_model(cap, (4 + width + 7) & ~std::size_t(7)), width(width) {}

    std::size_t width;

    std::string value(std::size_t i)
    {
        std::uint32_t n;
        std::memcpy(&n, slot(i), 4);
        return std::string(slot(i) + 4, std::min<std::size_t>(n, width));
    }
    void set(std::size_t i, std::string_view v)
    {
        const auto n = static_cast<std::uint32_t>(v.size());
        std::memcpy(slot(i), &n, 4);
        std::memcpy(slot(i) + 4, v.data(), v.size());
    }
};

/// A value of 0 .. width + 2 bytes: now and then too long.
std::string pick_value(input& in, std::size_t width) { return std::string(in.bytes(in.u8() % (width + 3))); }

void set_op(shmkit::str_buffer& b, string_model& m, input& in)
{
    const std::size_t i = pick_index(in, m.cap);
    const std::string v = pick_value(in, m.width);
    if (i >= m.cap) return expect_throw<std::out_of_range>([&] { b.set(i, v); }, "set out of range");
    if (v.size() > m.width) return expect_throw<std::length_error>([&] { b.set(i, v); }, "set too long");
    if (bulk_write(m, [&] { b.set(i, v); }, "set under a shared lock")) m.set(i, v);
}

void set_slice_op(shmkit::str_buffer& b, string_model& m, input& in)
{
    const std::size_t from = pick_index(in, m.cap);
    std::vector<std::string> values(in.u8() % (m.cap + 2));
    for (std::string& v : values) v = pick_value(in, m.width);
    const std::vector<std::string_view> views(values.begin(), values.end());
    const auto call = [&] { b.set_slice(from, views); };
    if (!m.in_range(from, views.size())) return expect_throw<std::out_of_range>(call, "set_slice out of range");
    if (std::any_of(values.begin(), values.end(), [&](const std::string& v) { return v.size() > m.width; }))
        return expect_throw<std::length_error>(call, "set_slice too long");
    if (bulk_write(m, call, "set_slice under a shared lock"))
        for (std::size_t k = 0; k < values.size(); ++k) m.set(from + k, values[k]);
}

void fill_op(shmkit::str_buffer& b, string_model& m, input& in)
{
    const bool use_clear = in.flag();
    const std::string v = use_clear ? std::string() : pick_value(in, m.width);
    const auto call = [&] { use_clear ? b.clear() : b.fill(v); };
    if (v.size() > m.width) return expect_throw<std::length_error>(call, "fill too long");
    if (bulk_write(m, call, "fill under a shared lock"))
        for (std::size_t k = 0; k < m.cap; ++k) m.set(k, v);
}

void read_op(shmkit::str_buffer& b, string_model& m, input& in)
{
    const std::size_t from = pick_index(in, m.cap), count = in.u8() % (m.cap + 2);
    if (in.flag()) {
        if (from >= m.cap) return expect_throw<std::out_of_range>([&] { (void)b.get(from); }, "get out of range");
        if (b.get(from) != m.value(from)) fail("get: value differs from the model");
        return;
    }
    if (!m.in_range(from, count)) return expect_throw<std::out_of_range>([&] { (void)b.slice(from, count); }, "slice out of range");
    const std::vector<std::string> got = b.slice(from, count);
    for (std::size_t k = 0; k < count; ++k)
        if (got.at(k) != m.value(from + k)) fail("slice: value differs from the model");
}

void string_op(shmkit::str_buffer& b, string_model& m, std::uint8_t op, input& in)
{
    switch (op % 8) {
    case 0: case 1: return read_op(b, m, in);
    case 2: return set_op(b, m, in);
    case 3: return set_slice_op(b, m, in);
    case 4: return fill_op(b, m, in);
    case 5: return raw_op(b, m, in);
    case 6: return lock_op(b, m, in.u8());
    default:
        if (b.width() != m.width || b.capacity() != m.cap) fail("width()/capacity() differ");
        return;
    }
}

} // namespace

void run_strings(std::size_t cap, std::size_t width, input& in)
{
    shmkit::structure_options o;
    o.attach_capacity = 4;
    auto b = shmkit::str_buffer::anonymous(cap, width, o);
    string_model m(cap, width);
    for (int ops = 0; !in.empty() && ops < 512; ++ops) string_op(b, m, in.u8(), in);
    release(b, m);
    check_all(b, m);
}

} // namespace fuzz
