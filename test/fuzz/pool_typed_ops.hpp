// The operations of each pool type for fuzz_pool_ops (pool_model.hpp):
// values set and read back, the atomic element operations of pool<T>,
// alloc_set / try_alloc_set. The model keeps every slot as bytes, laid out
// as the pool documents it (raw_pool: the bytes, zero-padded; str_pool: a
// 4-byte length, then the bytes).
#ifndef SHMKIT_TEST_FUZZ_POOL_TYPED_OPS_HPP
#define SHMKIT_TEST_FUZZ_POOL_TYPED_OPS_HPP

#include "pool_model.hpp"

#include <type_traits>

namespace fuzz {

/// `n` bytes made from one input byte (NULs included now and then).
inline std::string pattern(input& in, std::size_t n)
{
    const std::uint8_t seed = in.u8();
    std::string s(n, '\0');
    for (std::size_t k = 0; k < n; ++k) s[k] = static_cast<char>(seed + k * 31);
    return s;
}

template <class T>
T model_value(pool_model& m, std::size_t i)
{
    T v;
    std::memcpy(&v, m.slot(i), sizeof(T));
    return v;
}

template <class T>
void set_model_value(pool_model& m, std::size_t i, T v)
{
    std::memcpy(m.slot(i), &v, sizeof(T));
}

/// alloc_set(v): blocking only when a slot is free, else a zero timeout.
/// Returns the slot (the model has taken it), or nothing.
template <class Pool, class V>
std::optional<std::size_t> model_alloc_set(Pool& p, pool_model& m, const V& v)
{
    if (m.full()) {
        if (p.alloc_set(v, std::chrono::nanoseconds(0))) fail("alloc_set(0): a slot out of a full pool");
        ++m.timeouts;
        return std::nullopt;
    }
    const std::size_t i = p.alloc_set(v).value();
    m.take(i, "alloc_set");
    return i;
}

template <class Pool, class V>
std::optional<std::size_t> model_try_alloc_set(Pool& p, pool_model& m, const V& v)
{
    const auto i = p.try_alloc_set(v);
    if (m.full() != !i) fail("try_alloc_set: differs from the model");
    if (i) m.take(*i, "try_alloc_set");
    return i;
}

/// The read-modify-writes of pool<T>: xchg, cas, cmpxchg, add/incr/decr.
template <class T>
void rmw_op(shmkit::pool<T>& p, pool_model& m, std::size_t i, unsigned op, input& in)
{
    const T old = model_value<T>(m, i);
    const T v = in.pod<T>();
    const T expected = in.flag() ? old : in.pod<T>();
    T now = old;
    if (op == 0) {
        if (!same_bits(p.xchg(i, v), old)) fail("xchg: old value differs from the model");
        now = v;
    } else if (op == 1) {
        if (p.cas(i, expected, v) != same_bits(expected, old)) fail("cas: differs from the model");
        if (same_bits(expected, old)) now = v;
    } else if (op == 2) {
        if (!same_bits(p.cmpxchg(i, expected, v), old)) fail("cmpxchg: found value differs from the model");
        if (same_bits(expected, old)) now = v;
    } else if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>; // the arithmetic wraps around
        T got;
        if (in.flag()) {
            now = static_cast<T>(U(old) + U(v));
            got = p.add(i, v);
        } else {
            now = static_cast<T>(U(old) - U(1));
            got = p.decr(i);
        }
        if (!same_bits(got, now)) fail("add/decr: result differs from the model");
    }
    set_model_value(m, i, now);
}

template <class T>
void typed_op(shmkit::pool<T>& p, pool_model& m, unsigned op, input& in)
{
    if (op >= 6) {
        const T v = in.pod<T>();
        const auto i = op == 6 ? model_alloc_set(p, m, v) : model_try_alloc_set(p, m, v);
        if (i) set_model_value(m, *i, v);
        return;
    }
    const std::size_t i = pick_index(in, m.cap);
    const T v = in.pod<T>();
    if (!expect_checked_access(m, i, [&] { (void)p.xchg(i, v); }, "pool element op")) return;
    if (op == 0) {
        p.set(i, v);
        set_model_value(m, i, v);
    } else if (op == 1) {
        if (!same_bits(p.get(i), model_value<T>(m, i))) fail("get: value differs from the model");
    } else {
        rmw_op(p, m, i, op - 2, in);
    }
}

/// raw_pool: a slot holds the bytes set, zero-padded.
inline void model_raw_set(pool_model& m, std::size_t i, const std::string& v)
{
    std::memset(m.slot(i), 0, m.elem);
    std::memcpy(m.slot(i), v.data(), v.size());
}

inline void typed_op(shmkit::raw_pool& p, pool_model& m, unsigned op, input& in)
{
    const std::string v = pattern(in, in.u8() % (m.elem + 3));
    const bool too_long = v.size() > m.elem;
    if (op >= 3 && op <= 4) {
        if (too_long) {
            expect_throw<std::length_error>([&] { (void)p.try_alloc_set(v); }, "raw try_alloc_set too long");
            expect_throw<std::length_error>([&] { (void)p.alloc_set(v); }, "raw alloc_set too long");
            return;
        }
        const auto i = op == 3 ? model_alloc_set(p, m, v) : model_try_alloc_set(p, m, v);
        if (i) model_raw_set(m, *i, v);
        return;
    }
    const std::size_t i = pick_index(in, m.cap);
    if (!expect_checked_access(m, i, [&] { p.set(i, v); }, "raw_pool set")) return;
    if (op == 0) {
        if (too_long) return expect_throw<std::length_error>([&] { p.set(i, v); }, "raw_pool set too long");
        p.set(i, v);
        model_raw_set(m, i, v);
    } else if (op == 1) {
        if (p.get(i) != std::string(m.slot(i), m.elem)) fail("raw_pool get: bytes differ from the model");
    } else {
        std::vector<std::byte> out(v.size());
        if (out.size() < m.elem)
            return expect_throw<std::length_error>([&] { p.get(i, out); }, "raw_pool get into a short buffer");
        p.get(i, out);
        if (std::memcmp(out.data(), m.slot(i), m.elem) != 0) fail("raw_pool get(span): bytes differ from the model");
    }
}

/// str_pool: a 4-byte length, then the bytes; a length beyond the maximum
/// reads as the maximum.
inline void model_str_set(pool_model& m, std::size_t i, const std::string& v)
{
    const auto n = static_cast<std::uint32_t>(v.size());
    std::memcpy(m.slot(i) + 4, v.data(), v.size());
    std::memcpy(m.slot(i), &n, 4);
}

inline std::string model_str(pool_model& m, std::size_t i, std::size_t max_length)
{
    std::uint32_t n;
    std::memcpy(&n, m.slot(i), 4);
    return std::string(m.slot(i) + 4, std::min<std::size_t>(n, max_length));
}

inline void typed_op(shmkit::str_pool& p, pool_model& m, unsigned op, input& in)
{
    const std::size_t max = p.max_length();
    const std::string v = pattern(in, in.u8() % (max + 3));
    const bool too_long = v.size() > max;
    if (op >= 3 && op <= 4) {
        if (too_long) {
            expect_throw<std::length_error>([&] { (void)p.try_alloc_set(v); }, "str try_alloc_set too long");
            expect_throw<std::length_error>([&] { (void)p.alloc_set(v); }, "str alloc_set too long");
            return;
        }
        const auto i = op == 3 ? model_alloc_set(p, m, v) : model_try_alloc_set(p, m, v);
        if (i) model_str_set(m, *i, v);
        return;
    }
    const std::size_t i = pick_index(in, m.cap);
    if (!expect_checked_access(m, i, [&] { p.set(i, v); }, "str_pool set")) return;
    if (op == 0) {
        if (too_long) return expect_throw<std::length_error>([&] { p.set(i, v); }, "str_pool set too long");
        p.set(i, v);
        model_str_set(m, i, v);
    } else if (op == 1) {
        if (p.get(i) != model_str(m, i, max)) fail("str_pool get: value differs from the model");
    } else {
        std::string out = "previous";
        p.get(i, out);
        if (out != model_str(m, i, max) || p.length(i) != out.size()) fail("str_pool get(out)/length differ");
    }
}

} // namespace fuzz

#endif
