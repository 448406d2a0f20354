// The model fuzz_buffer_ops checks a buffer against: the element area as
// bytes (what get_raw() returns), and what the calling thread holds of the
// buffer's lock, which decides whether a bulk write runs or throws.
#ifndef SHMKIT_TEST_FUZZ_BUFFER_MODEL_HPP
#define SHMKIT_TEST_FUZZ_BUFFER_MODEL_HPP

#include "fuzz_support.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace fuzz {

enum class held { none, shared, exclusive };

struct buffer_model {
    buffer_model(std::size_t capacity, std::size_t stride) : cap(capacity), stride(stride), raw(capacity * stride, '\0') {}

    std::size_t cap, stride;
    std::string raw; ///< the element area, byte for byte
    held lock = held::none;

    char* slot(std::size_t i) { return &raw[i * stride]; }
    bool in_range(std::size_t from, std::size_t count) const noexcept { return from <= cap && count <= cap - from; }
    bool raw_in_range(std::size_t off, std::size_t n) const noexcept
    {
        return off <= raw.size() && n <= raw.size() - off;
    }
};

/// An element index: mostly in range, sometimes just past the end, sometimes huge.
inline std::size_t pick_index(input& in, std::size_t cap)
{
    const std::uint8_t v = in.u8();
    return v == 255 ? SIZE_MAX - in.u8() : v % (cap + 2);
}

/// Runs a bulk write as the model says it must go: it throws
/// std::system_error if the thread holds the lock shared (upgrading would
/// deadlock), and runs otherwise. True if it ran.
template <class F>
bool bulk_write(const buffer_model& m, F&& f, const char* what)
{
    if (m.lock == held::shared) {
        expect_throw<std::system_error>(f, what);
        return false;
    }
    f();
    return true;
}

/// The lock operations against the model: acquiring what the thread holds
/// already (either mode) throws std::system_error; so does releasing a mode
/// it does not hold; nobody else holds the lock, so every attempt succeeds.
template <class Buffer>
void lock_op(Buffer& b, buffer_model& m, unsigned op)
{
    const bool free = m.lock == held::none;
    const auto acquire = [&](auto&& f, held mode, const char* what) {
        if (!free) return expect_throw<std::system_error>(f, what);
        f();
        m.lock = mode;
    };
    switch (op % 8) {
    case 0: return acquire([&] { b.lock(); }, held::exclusive, "lock while held");
    case 1: return acquire([&] { b.lock_shared(); }, held::shared, "lock_shared while held");
    case 2: return acquire([&] { if (!b.try_lock()) fail("try_lock of a free lock failed"); }, held::exclusive, "try_lock while held");
    case 3:
        return acquire([&] { if (!b.try_lock_shared()) fail("try_lock_shared of a free lock failed"); }, held::shared,
                       "try_lock_shared while held");
    case 4:
        return acquire([&] { if (!b.try_lock_for(std::chrono::milliseconds(0))) fail("try_lock_for of a free lock failed"); },
                       held::exclusive, "try_lock_for while held");
    case 5:
        if (m.lock != held::exclusive) return expect_throw<std::system_error>([&] { b.unlock(); }, "unlock not held");
        b.unlock();
        m.lock = held::none;
        return;
    case 6:
        if (m.lock != held::shared) return expect_throw<std::system_error>([&] { b.unlock_shared(); }, "unlock_shared not held");
        b.unlock_shared();
        m.lock = held::none;
        return;
    default:
        if (b.recovered()) fail("recovered() without a dead holder");
        return;
    }
}

/// Leaves the lock as it found it: unheld.
template <class Buffer>
void release(Buffer& b, buffer_model& m)
{
    if (m.lock == held::exclusive) b.unlock();
    if (m.lock == held::shared) b.unlock_shared();
    m.lock = held::none;
}

/// get_raw / set_raw against the model's bytes.
template <class Buffer>
void raw_op(Buffer& b, buffer_model& m, input& in)
{
    const std::size_t off = in.u8() % (m.raw.size() + 2), n = in.u8() % (m.raw.size() + 2);
    if (in.flag()) {
        if (!m.raw_in_range(off, n)) return expect_throw<std::out_of_range>([&] { (void)b.get_raw(off, n); }, "get_raw out of range");
        if (b.get_raw(off, n) != m.raw.substr(off, n)) fail("get_raw: bytes differ from the model");
        return;
    }
    const std::string bytes(in.bytes(n));
    if (!m.raw_in_range(off, bytes.size()))
        return expect_throw<std::out_of_range>([&] { b.set_raw(off, bytes); }, "set_raw out of range");
    if (bulk_write(m, [&] { b.set_raw(off, bytes); }, "set_raw under a shared lock")) m.raw.replace(off, bytes.size(), bytes);
}

/// The whole element area, compared at the end of each input.
template <class Buffer>
void check_all(Buffer& b, const buffer_model& m)
{
    if (b.get_raw(0, m.raw.size()) != m.raw) fail("the element area differs from the model");
    const auto s = b.stats();
    if (s.capacity != m.cap || s.lock_recoveries != 0 || s.bulk_recoveries != 0) fail("stats() differ from the model");
}

} // namespace fuzz

#endif
