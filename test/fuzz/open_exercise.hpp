// What fuzz_open does with a structure that opened from arbitrary bytes: a
// few reads, a few writes, its statistics. None of it may crash; what one
// process does alone must behave as documented whatever the bytes were
// (a value set is the value read back, a slot allocated is allocated).
//
// Nothing here may wait for a lock: the bytes can make a lock look held by
// a live process (this one, even). Bulk operations run only under the
// structure's lock, taken with a non-blocking attempt that recovers dead
// holders (try_lock_recovering) and so never waits.
#ifndef SHMKIT_TEST_FUZZ_OPEN_EXERCISE_HPP
#define SHMKIT_TEST_FUZZ_OPEN_EXERCISE_HPP

#include "fuzz_support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/str_buffer.hpp>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace fuzz {

/// Takes rwlock 0 of `seg` exclusively if it is free or its holders are
/// dead, then releases it: afterwards one blocking acquisition by this
/// thread cannot wait. False if a live holder (as the bytes say) has it.
inline bool lock_is_takeable(const shmkit::segment& seg)
{
    if (seg.header().n_rwlocks < 1) return false;
    shmkit::sync::rwlock l = seg.rwlock(0);
    if (!l.try_lock_recovering()) return false;
    l.unlock();
    return true;
}

/// The buffer's lock, if it can be had without waiting (see above).
template <class Buffer>
bool try_bulk_lock(Buffer& b)
{
    return lock_is_takeable(b.get_segment()) && b.try_lock();
}

template <class T>
void exercise_elements(shmkit::buffer<T>& b)
{
    const std::size_t n = b.capacity();
    b.set(n - 1, b.get(n - 1));
    expect_throw<std::out_of_range>([&] { (void)b.get(n); }, "buffer get past the end");
    const T one = T(1), two = T(2);
    (void)b.xchg(0, one);
    if (!b.cas(0, one, two) || !same_bits(b.get(0), two)) fail("buffer: cas after xchg did not take");
    if constexpr (std::is_integral_v<T>) {
        if (b.add(0, one) != T(3) || b.decr(0) != two) fail("buffer: add/decr");
        (void)b.fetch_or(n - 1, one);
    }
}

template <class T>
void exercise_bulk(shmkit::buffer<T>& b)
{
    const std::size_t n = std::min<std::size_t>(b.capacity(), 256);
    std::vector<T> v = b.slice(0, n);
    std::reverse(v.begin(), v.end());
    b.set_slice(0, v);
    if (b.get_raw(0, n * sizeof(T)).size() != n * sizeof(T)) fail("buffer: get_raw size");
    b.set_raw(0, std::string(sizeof(T), '\x7f'));
    b.fill(T(5));
    if (!same_bits(b.slice(b.capacity() - 1, 1).at(0), T(5))) fail("buffer: fill did not reach the last element");
}

template <class T>
void exercise(shmkit::buffer<T>& b)
{
    (void)b.stats();
    exercise_elements(b);
    if (try_bulk_lock(b)) {
        std::unique_lock<shmkit::buffer<T>> held(b, std::adopt_lock);
        exercise_bulk(b);
    }
    (void)b.stats();
}

void exercise(shmkit::str_buffer& b);
void exercise_pool(shmkit::detail::pool_base& p);
void exercise(shmkit::raw_pool& p);
void exercise(shmkit::str_pool& p);
void exercise(shmkit::segment& seg);

template <class T>
void exercise(shmkit::pool<T>& p)
{
    exercise_pool(p);
    if (auto i = p.try_alloc_set(T(7))) {
        if (!same_bits(p.get(*i), T(7))) fail("pool: try_alloc_set value not read back");
        if (!p.free(*i)) fail("pool: free of a slot just allocated");
    }
}

} // namespace fuzz

#endif
