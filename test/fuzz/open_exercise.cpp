// open_exercise: see open_exercise.hpp.
#include "open_exercise.hpp"

#include <shmkit/sync/mutex.hpp>

namespace fuzz {

void exercise(shmkit::str_buffer& b)
{
    (void)b.stats();
    const std::size_t n = b.capacity();
    expect_throw<std::out_of_range>([&] { (void)b.get(n); }, "str_buffer get past the end");
    expect_throw<std::length_error>([&] { b.set(0, std::string(b.width() + 1, 'x')); }, "str_buffer set too long");
    if (!try_bulk_lock(b)) return;
    std::unique_lock<shmkit::str_buffer> held(b, std::adopt_lock);
    (void)b.get(n - 1);
    (void)b.slice(0, std::min<std::size_t>(n, 64));
    const std::string v(std::min<std::size_t>(b.width(), 5), 'v');
    b.set(n - 1, v);
    if (b.get(n - 1) != v) fail("str_buffer: set value not read back");
    (void)b.get_raw(0, std::min<std::size_t>(n * 8, 64));
    b.clear();
    if (!b.get(0).empty()) fail("str_buffer: clear left a value");
}

void exercise_pool(shmkit::detail::pool_base& p)
{
    const std::size_t n = p.capacity();
    (void)p.stats();
    (void)p.owner(n - 1);
    (void)p.holder_token(0);
    expect_throw<std::out_of_range>([&] { (void)p.is_allocated(n); }, "pool is_allocated past the end");
    for (std::size_t i : p.allocated_slots())
        if (!p.is_allocated(i)) fail("pool: allocated_slots lists a free slot");
    (void)p.recover_stale();
    if (auto i = p.try_alloc()) {
        if (!p.is_allocated(*i) || p.owner(*i) != ::getpid()) fail("pool: a slot just allocated is not ours");
        if (!p.free(*i)) fail("pool: free of a slot just allocated");
    }
    if (n >= 2) {
        if (auto v = p.try_alloc_n(2))
            if (p.free_n(*v) != 2) fail("pool: free_n of two slots just allocated");
    }
    const auto held = p.allocated_slots();
    if (!held.empty() && !p.adopt(held.front())) fail("pool: adopt of an allocated slot");
    (void)p.used();
    (void)p.reset();
    if (p.used() != 0) fail("pool: reset left slots allocated");
}

void exercise(shmkit::raw_pool& p)
{
    exercise_pool(p);
    const std::string v(std::min<std::size_t>(p.elem_size(), 3), 'r');
    if (auto i = p.try_alloc_set(v)) {
        if (p.get(*i).compare(0, v.size(), v) != 0) fail("raw_pool: value not read back");
        p.free(*i);
    }
}

void exercise(shmkit::str_pool& p)
{
    exercise_pool(p);
    const std::string v(std::min<std::size_t>(p.max_length(), 3), 's');
    if (auto i = p.try_alloc_set(v)) {
        if (p.get(*i) != v) fail("str_pool: value not read back");
        p.free(*i);
    }
}

void exercise(shmkit::segment& seg)
{
    (void)seg.stats();
    (void)seg.attached();
    for (std::uint32_t i = 0; i < seg.header().n_rwlocks; ++i) {
        shmkit::sync::rwlock l = seg.rwlock(i);
        if (l.try_lock_recovering()) l.unlock();
        if (l.try_lock_shared_recovering()) l.unlock_shared();
    }
    for (std::uint32_t i = 0; i < seg.header().n_mutexes; ++i) {
        shmkit::sync::mutex m = seg.mutex(i);
        if (m.try_lock()) m.unlock();
    }
    (void)seg.reclaim_dead();
    (void)seg.stats();
}

} // namespace fuzz
