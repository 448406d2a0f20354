// Fuzz target: buffer<T> (every element type) and str_buffer driven by the
// input against a model of their bytes (buffer_model.hpp). Every result,
// every exception and, at the end, the whole element area are checked; a
// mismatch aborts with a message.
//
//   byte 0   the type (10 element types, then str_buffer)
//   byte 1   capacity (1..64);  byte 2   str_buffer width (1..40)
//   then     operations, one byte each and their arguments
//
// The buffer is created fresh (anonymous memory) for each input.
#include "buffer_model.hpp"
#include "fuzz_support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/str_buffer.hpp>

#include <type_traits>
#include <vector>

namespace fuzz {
namespace {

template <class T>
T value_at(buffer_model& m, std::size_t i)
{
    T v;
    std::memcpy(&v, m.slot(i), sizeof(T));
    return v;
}

template <class T>
void set_value(buffer_model& m, std::size_t i, T v)
{
    std::memcpy(m.slot(i), &v, sizeof(T));
}

template <class T>
void element_op(shmkit::buffer<T>& b, buffer_model& m, unsigned op, input& in)
{
    const std::size_t i = pick_index(in, m.cap);
    const T v = in.pod<T>();
    if (i >= m.cap) return expect_throw<std::out_of_range>([&] { (void)b.xchg(i, v); }, "element op out of range");
    const T old = value_at<T>(m, i);
    const T expected = in.flag() ? old : in.pod<T>();
    T now = old;
    switch (op) {
    case 0:
        if (!same_bits(b.get(i), old)) fail("get: value differs from the model");
        break;
    case 1: b.set(i, v); now = v; break;
    case 2:
        if (!same_bits(b.xchg(i, v), old)) fail("xchg: old value differs from the model");
        now = v;
        break;
    case 3:
        if (b.cas(i, expected, v) != same_bits(expected, old)) fail("cas: differs from the model");
        if (same_bits(expected, old)) now = v;
        break;
    default:
        if (!same_bits(b.cmpxchg(i, expected, v), old)) fail("cmpxchg: found value differs from the model");
        if (same_bits(expected, old)) now = v;
        break;
    }
    set_value(m, i, now);
}

template <class T>
void integer_op(shmkit::buffer<T>& b, buffer_model& m, unsigned op, input& in)
{
    using U = std::make_unsigned_t<T>; // the arithmetic wraps around
    const std::size_t i = pick_index(in, m.cap);
    const T d = in.pod<T>();
    if (i >= m.cap) return expect_throw<std::out_of_range>([&] { (void)b.add(i, d); }, "add out of range");
    const T old = value_at<T>(m, i);
    T now, got;
    switch (op) {
    case 0: now = T(U(old) + U(d)), got = b.add(i, d); break;
    case 1: now = T(U(old) + U(1)), got = b.incr(i); break;
    case 2: now = T(U(old) - U(1)), got = b.decr(i); break;
    case 3: now = T(old & d), got = b.fetch_and(i, d); break;
    case 4: now = T(old | d), got = b.fetch_or(i, d); break;
    default: now = T(old ^ d), got = b.fetch_xor(i, d); break;
    }
    // add/incr/decr return the new value, the fetch_* the old one.
    if (!same_bits(got, op < 3 ? now : old)) fail("integer op " + std::to_string(op) + ": result differs from the model");
    set_value(m, i, now);
}

template <class T>
void add_slice_op(shmkit::buffer<T>& b, buffer_model& m, input& in)
{
    using U = std::make_unsigned_t<T>;
    const std::size_t from = pick_index(in, m.cap);
    std::vector<T> deltas(in.u8() % (m.cap + 2));
    for (T& d : deltas) d = in.pod<T>();
    if (!m.in_range(from, deltas.size()))
        return expect_throw<std::out_of_range>([&] { b.add_slice(from, deltas); }, "add_slice out of range");
    b.add_slice(from, deltas);
    for (std::size_t k = 0; k < deltas.size(); ++k) set_value(m, from + k, T(U(value_at<T>(m, from + k)) + U(deltas[k])));
}

template <class T>
void bulk_op(shmkit::buffer<T>& b, buffer_model& m, unsigned op, input& in)
{
    const std::size_t from = pick_index(in, m.cap), count = in.u8() % (m.cap + 2);
    if (op == 2) { // fill / clear: no range to check
        const bool use_clear = in.flag();
        const T v = use_clear ? T(0) : in.pod<T>();
        if (bulk_write(m, [&] { use_clear ? b.clear() : b.fill(v); }, "fill under a shared lock"))
            for (std::size_t k = 0; k < m.cap; ++k) set_value(m, k, v);
        return;
    }
    if (!m.in_range(from, count)) {
        if (op == 0) return expect_throw<std::out_of_range>([&] { (void)b.slice(from, count); }, "slice out of range");
        return expect_throw<std::out_of_range>([&] { b.set_slice(from, std::vector<T>(count)); }, "set_slice out of range");
    }
    if (op == 0) {
        std::vector<T> out;
        if (in.flag()) {
            out.resize(count);
            b.slice(from, boost::span<T>(out.data(), out.size()));
        } else {
            out = b.slice(from, count);
        }
        for (std::size_t k = 0; k < count; ++k)
            if (!same_bits(out[k], value_at<T>(m, from + k))) fail("slice: value differs from the model");
        return;
    }
    std::vector<T> values(count);
    for (T& v : values) v = in.pod<T>();
    if (bulk_write(m, [&] { b.set_slice(from, values); }, "set_slice under a shared lock"))
        for (std::size_t k = 0; k < count; ++k) set_value(m, from + k, values[k]);
}

template <class T>
void numeric_op(shmkit::buffer<T>& b, buffer_model& m, std::uint8_t op, input& in)
{
    switch (op % 12) {
    case 0: case 1: case 2: return element_op(b, m, op % 5, in);
    case 3: case 4:
        if constexpr (std::is_integral_v<T>) return integer_op(b, m, op % 6, in);
        return element_op(b, m, op % 5, in);
    case 5:
        if constexpr (std::is_integral_v<T>) return add_slice_op(b, m, in);
        return;
    case 6: case 7: return bulk_op(b, m, op % 3, in);
    case 8: return raw_op(b, m, in);
    case 9: case 10: return lock_op(b, m, in.u8());
    default: {
        const std::size_t i = pick_index(in, m.cap);
        if (i >= m.cap) return expect_throw<std::out_of_range>([&] { (void)b.ptr(i); }, "ptr out of range");
        if (b.ptr(i) != b.data() + i || b.view().size() != m.cap) fail("ptr/view differ from data()");
        return;
    }
    }
}

template <class T>
void run_numeric(std::size_t cap, input& in)
{
    shmkit::structure_options o;
    o.attach_capacity = 4;
    auto b = shmkit::buffer<T>::anonymous(cap, o);
    buffer_model m(cap, sizeof(T));
    for (int ops = 0; !in.empty() && ops < 512; ++ops) numeric_op(b, m, in.u8(), in);
    release(b, m);
    check_all(b, m);
}

} // namespace

void run_strings(std::size_t cap, std::size_t width, input& in);

} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace fuzz;
    input in(data, size);
    const unsigned type = in.u8() % 11;
    const std::size_t cap = 1 + in.u8() % 64;
    const std::size_t width = 1 + in.u8() % 40;
    switch (type) {
    case 0: run_numeric<std::int8_t>(cap, in); break;
    case 1: run_numeric<std::uint8_t>(cap, in); break;
    case 2: run_numeric<std::int16_t>(cap, in); break;
    case 3: run_numeric<std::uint16_t>(cap, in); break;
    case 4: run_numeric<std::int32_t>(cap, in); break;
    case 5: run_numeric<std::uint32_t>(cap, in); break;
    case 6: run_numeric<std::int64_t>(cap, in); break;
    case 7: run_numeric<std::uint64_t>(cap, in); break;
    case 8: run_numeric<float>(cap, in); break;
    case 9: run_numeric<double>(cap, in); break;
    default: run_strings(cap, width, in); break;
    }
    return 0;
}
