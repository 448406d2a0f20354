// The model fuzz_pool_ops checks a pool against, and the operations it
// drives: those every pool has (common_op) and those of each pool type
// (typed_op).
#ifndef SHMKIT_TEST_FUZZ_POOL_MODEL_HPP
#define SHMKIT_TEST_FUZZ_POOL_MODEL_HPP

#include "fuzz_support.hpp"

#include <shmkit/error.hpp>
#include <shmkit/pool.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace fuzz {

/// What this process owns of the pool, the bytes of every slot, and the
/// counters stats() must report. One process, one thread: exact.
struct pool_model {
    pool_model(std::size_t capacity, std::size_t slot_size)
        : cap(capacity), elem(slot_size), bytes(capacity * slot_size, '\0')
    {
    }

    std::size_t cap, elem;
    std::set<std::size_t> owned;
    std::string bytes;
    std::uint64_t allocs = 0, frees = 0, timeouts = 0;

    bool full() const noexcept { return owned.size() == cap; }
    std::size_t free_slots() const noexcept { return cap - owned.size(); }
    char* slot(std::size_t i) { return &bytes[i * elem]; }

    /// The pool gave out slot i: it must have been free.
    void take(std::size_t i, const char* what)
    {
        if (i >= cap || !owned.insert(i).second) fail(std::string(what) + ": gave out slot " + std::to_string(i) + ", which is not free");
        ++allocs;
    }
    /// Slot i was freed by a call that says so; true if it was ours.
    bool give(std::size_t i)
    {
        if (owned.erase(i) == 0) return false;
        ++frees;
        return true;
    }
};

/// A slot index: mostly in range, sometimes just past the end, sometimes huge.
inline std::size_t pick_index(input& in, std::size_t cap)
{
    const std::uint8_t v = in.u8();
    return v == 255 ? SIZE_MAX - in.u8() : v % (cap + 2);
}

/// Throws (as the element and slot accessors do) what the model predicts
/// for slot i: std::out_of_range, then shmkit::error for a free slot.
/// True if the access may go on.
template <class F>
bool expect_checked_access(const pool_model& m, std::size_t i, F&& f, const char* what)
{
    if (i >= m.cap) {
        expect_throw<std::out_of_range>(f, what);
        return false;
    }
    if (!m.owned.count(i)) {
        bool thrown = false;
        try {
            f();
        } catch (const shmkit::error& e) {
            thrown = e.code() == shmkit::errc::slot_not_allocated;
        }
        if (!thrown) fail(std::string(what) + ": a free slot was accessed without slot_not_allocated");
        return false;
    }
    return true;
}

template <class Pool>
void check_slot_state(Pool& p, const pool_model& m, std::size_t i)
{
    if (i >= m.cap) {
        expect_throw<std::out_of_range>([&] { (void)p.is_allocated(i); }, "is_allocated past the end");
        expect_throw<std::out_of_range>([&] { (void)p.holder_token(i); }, "holder_token past the end");
        expect_throw<std::out_of_range>([&] { (void)p.owner(i); }, "owner past the end");
        return;
    }
    const bool mine = m.owned.count(i) != 0;
    if (p.is_allocated(i) != mine || (p.holder_token(i) != 0) != mine || p.owner(i) != (mine ? ::getpid() : 0))
        fail("slot " + std::to_string(i) + ": allocation state differs from the model");
}

template <class Pool>
void check_all(Pool& p, const pool_model& m)
{
    if (p.used() != m.owned.size() || p.available() != m.free_slots()) fail("used()/available() differ from the model");
    const std::vector<std::size_t> listed = p.allocated_slots();
    if (std::set<std::size_t>(listed.begin(), listed.end()) != m.owned || listed.size() != m.owned.size())
        fail("allocated_slots() differs from the model");
    std::size_t seen = 0;
    p.each_allocated([&](std::size_t i) { seen += m.owned.count(i); });
    if (seen != m.owned.size()) fail("each_allocated() differs from the model");
    const shmkit::pool_stats s = p.stats();
    if (s.capacity != m.cap || s.elem_size != m.elem || s.used != m.owned.size() || s.allocs != m.allocs ||
        s.frees != m.frees || s.timeouts != m.timeouts || s.recoveries != 0)
        fail("stats() differ from the model: allocs " + std::to_string(s.allocs) + "/" + std::to_string(m.allocs) +
             ", frees " + std::to_string(s.frees) + "/" + std::to_string(m.frees) + ", timeouts " +
             std::to_string(s.timeouts) + "/" + std::to_string(m.timeouts));
    for (std::size_t i : m.owned) {
        const auto v = p.view(i);
        if (v.size() != m.elem || std::memcmp(v.data(), &m.bytes[i * m.elem], m.elem) != 0)
            fail("slot " + std::to_string(i) + ": bytes differ from the model");
    }
}

template <class T>
void typed_op(shmkit::pool<T>& p, pool_model& m, unsigned op, input& in);
void typed_op(shmkit::raw_pool& p, pool_model& m, unsigned op, input& in);
void typed_op(shmkit::str_pool& p, pool_model& m, unsigned op, input& in);
template <class Pool>
void alloc_ops(Pool& p, pool_model& m, unsigned op, input& in);
template <class Pool>
void batch_ops(Pool& p, pool_model& m, unsigned op, input& in);
template <class Pool>
void ownership_ops(Pool& p, pool_model& m, unsigned op, input& in);

/// The operations every pool has. `op` < 20.
template <class Pool>
void common_op(Pool& p, pool_model& m, unsigned op, input& in)
{
    if (op < 5) alloc_ops(p, m, op, in);
    else if (op < 9) batch_ops(p, m, op - 5, in);
    else if (op < 15) ownership_ops(p, m, op - 9, in);
    else typed_op(p, m, op - 15, in);
}

template <class Pool>
void alloc_ops(Pool& p, pool_model& m, unsigned op, input& in)
{
    using std::chrono::nanoseconds;
    switch (op) {
    case 0: { // try_alloc
        const auto i = p.try_alloc();
        if (m.full() != !i) fail("try_alloc: a slot was " + std::string(i ? "given out of a full pool" : "refused"));
        if (i) m.take(*i, "try_alloc");
        break;
    }
    case 1: { // alloc: blocking only when a slot is free, else a zero timeout
        if (!m.full()) {
            m.take(p.alloc().value(), "alloc");
        } else if (p.alloc(nanoseconds(0))) {
            fail("alloc(0): a slot out of a full pool");
        } else {
            ++m.timeouts;
        }
        break;
    }
    case 2: { // free
        const std::size_t i = pick_index(in, m.cap);
        if (i >= m.cap) expect_throw<std::out_of_range>([&] { p.free(i); }, "free past the end");
        else if (p.free(i) != m.give(i)) fail("free(" + std::to_string(i) + ") returned what the model does not");
        break;
    }
    case 3: { // a guard: kept (release) or freed at once (reset)
        shmkit::slot_guard g = p.try_alloc_guard();
        if (m.full() != !g) fail("try_alloc_guard: differs from the model");
        if (!g) break;
        m.take(*g, "try_alloc_guard");
        if (in.flag()) {
            (void)g.release();
        } else {
            const std::size_t i = *g;
            g.reset();
            if (!m.give(i) || p.is_allocated(i)) fail("a guard's reset did not free its slot");
        }
        break;
    }
    default: // slot state
        check_slot_state(p, m, pick_index(in, m.cap));
        break;
    }
}

template <class Pool>
void batch_ops(Pool& p, pool_model& m, unsigned op, input& in)
{
    const std::size_t n = in.u8() % (m.cap + 2);
    switch (op) {
    case 0:   // try_alloc_n(n)
    case 1: { // try_alloc_n(span)
        if (n > m.cap) {
            expect_throw<std::invalid_argument>([&] { (void)p.try_alloc_n(n); }, "try_alloc_n beyond the capacity");
            break;
        }
        std::vector<std::size_t> got(n);
        bool ok;
        if (op == 0) {
            const auto v = p.try_alloc_n(n);
            ok = v.has_value();
            if (ok) got = *v;
        } else {
            ok = p.try_alloc_n(boost::span<std::size_t>(got));
        }
        if (ok != (m.free_slots() >= n) || got.size() != n) fail("try_alloc_n: differs from the model");
        if (ok) for (std::size_t i : got) m.take(i, "try_alloc_n");
        break;
    }
    case 2: { // alloc_n: blocking only when enough are free
        if (n > m.cap) {
            expect_throw<std::invalid_argument>([&] { (void)p.alloc_n(n); }, "alloc_n beyond the capacity");
        } else if (m.free_slots() >= n) {
            const std::vector<std::size_t> got = p.alloc_n(n).value();
            for (std::size_t i : got) m.take(i, "alloc_n");
        } else if (p.alloc_n(n, std::chrono::nanoseconds(0))) {
            fail("alloc_n(0): more slots than are free");
        } else {
            ++m.timeouts;
        }
        break;
    }
    default: { // free_n, duplicates and free slots included
        std::vector<std::size_t> list(n % 6);
        for (std::size_t& i : list) i = pick_index(in, m.cap);
        const bool bad = std::any_of(list.begin(), list.end(), [&](std::size_t i) { return i >= m.cap; });
        if (bad) {
            expect_throw<std::out_of_range>([&] { (void)p.free_n(list); }, "free_n past the end");
            break;
        }
        std::size_t expected = 0;
        for (std::size_t i : list) expected += m.give(i);
        if (p.free_n(list) != expected) fail("free_n freed another count than the model");
        break;
    }
    }
}

template <class Pool>
void ownership_ops(Pool& p, pool_model& m, unsigned op, input& in)
{
    switch (op) {
    case 0: { // adopt(i): true exactly for an allocated slot
        const std::size_t i = pick_index(in, m.cap);
        if (i >= m.cap) expect_throw<std::out_of_range>([&] { (void)p.adopt(i); }, "adopt past the end");
        else if (p.adopt(i) != (m.owned.count(i) != 0)) fail("adopt(i) differs from the model");
        break;
    }
    case 1: { // adopt(i, token): true only for the current holder's token
        const std::size_t i = pick_index(in, m.cap);
        if (i >= m.cap) {
            expect_throw<std::out_of_range>([&] { (void)p.adopt(i, 1); }, "adopt past the end");
            break;
        }
        const std::uint64_t holder = p.holder_token(i);
        const std::uint64_t token = in.flag() ? holder : in.u64();
        if (p.adopt(i, token) != (m.owned.count(i) && token == holder)) fail("adopt(i, token) differs from the model");
        break;
    }
    case 2: check_all(p, m); break;
    case 3:
        if (p.recover_stale() != 0) fail("recover_stale freed a slot of a live owner");
        break;
    case 4: {
        if (p.reset() != m.owned.size()) fail("reset() freed another count than the model");
        m.frees += m.owned.size();
        m.owned.clear();
        break;
    }
    default: { // a slot's bytes through view()
        const std::size_t i = pick_index(in, m.cap);
        if (expect_checked_access(m, i, [&] { (void)p.view(i); }, "view"))
            if (std::memcmp(p.view(i).data(), m.slot(i), m.elem) != 0) fail("view: bytes differ from the model");
        break;
    }
    }
}

} // namespace fuzz

#include "pool_typed_ops.hpp"

#endif
