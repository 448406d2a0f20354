// bench/bench_buffer.cpp: shmkit::buffer<std::int64_t> against the
// hardware limit (a raw std::atomic<std::int64_t> array on a MAP_SHARED page)
// and against an int64 array guarded by
// boost::interprocess::interprocess_sharable_mutex, all measured in the same
// run, on a buffer of capacity 10 000.
//
// Rows (one operation = one call):
//   single process: get, set, incr, add, cas, slice(100) into a caller's
//   span, set_slice(100), fill (all 10 000 elements), lock+unlock;
//   --procs processes (2 by default): incr, each worker on its own element
//   (elements 16 apart: different cache lines), and incr, all workers on
//   one shared element.
//
// Baselines use the same memory orders as shmkit: get = load(acquire),
// set = store(release), incr/add = fetch_add(acq_rel), cas =
// compare_exchange_strong(acq_rel, acquire). For the bulk rows the raw
// baseline is a loop of relaxed atomic element loads/stores with no lock and
// no seqlock (what shmkit's copy loop is, minus the synchronisation); an
// informational third line gives plain memcpy / std::fill (vectorised, not
// race-free). For lock+unlock the raw baseline is a bare CAS spinlock word
// (acquire CAS, release store: no crash recovery, no readers). The Boost
// baseline takes the sharable (shared) lock for reads and the exclusive lock
// for writes.
//
// The element index changes on every operation, by the same rule for shmkit
// and the baselines (next_index: i+1, wrapping at the capacity; slices step
// by 100), so no load or store can be hoisted out of the timed loop, and the
// result of every read is kept alive (do_not_optimize).
//
// Checksums (exit status 1 on a mismatch): after each incr/add figure the
// sum of the elements equals the operations run (times the delta); after
// cas, the sum equals the successful CASes of the last run (each succeeds:
// it expects the value the pattern left there); after set every element
// holds its index; after set_slice the array holds the slice pattern; after
// fill every element holds the last value filled; slice returns that.

#include "harness.hpp"

#include <shmkit/buffer.hpp>

#include <boost/core/span.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>

namespace {

namespace bip = boost::interprocess;
using namespace shmkit_bench;

constexpr std::size_t capacity = 10000;
constexpr std::size_t slice_len = 100;
constexpr std::size_t spread = 16; // elements between two workers' elements: 128 bytes, two cache lines

using shm_buffer = shmkit::buffer<std::int64_t>;
using raw_elem = std::atomic<std::int64_t>;
static_assert(sizeof(raw_elem) == sizeof(std::int64_t) && raw_elem::is_always_lock_free);

/// The index rule of every element row: the next element, wrapping around.
inline std::size_t next_index(std::size_t i) noexcept { return i + 1 == capacity ? 0 : i + 1; }
/// The start rule of every slice row: the next 100 elements, wrapping around.
inline std::size_t next_slice(std::size_t from) noexcept
{
    return from + 2 * slice_len > capacity ? 0 : from + slice_len;
}

/// The Boost.Interprocess baseline: the lock on its own cache line, the
/// array after it.
struct bip_array {
    alignas(64) bip::interprocess_sharable_mutex mx;
    alignas(64) std::int64_t a[capacity] = {};
};

/// A bare spinlock word for the raw lock+unlock baseline.
struct alignas(64) raw_lock {
    std::atomic<std::uint32_t> word{0};
};

/// Everything one run of the program measures on. The raw array is a
/// page-aligned MAP_SHARED anonymous mapping, like the buffer's data; both
/// are inherited by the forked workers of the 2-process rows, and the worker
/// counter hands each forked worker its own element.
raw_elem* make_raw(shared_mapping& m)
{
    auto* a = m.at<raw_elem>();
    for (std::size_t k = 0; k < capacity; ++k) new (a + k) raw_elem(0);
    return a;
}

struct fixture {
    shm_buffer buf = shm_buffer::anonymous(capacity);
    shared_mapping raw_map{capacity * sizeof(raw_elem)};
    raw_elem* raw = make_raw(raw_map);
    shared_object<bip_array> bipa;
    shared_object<raw_lock> spin;
    shared_object<std::atomic<std::uint64_t>> worker_counter{0};

    void zero_all()
    {
        buf.clear();
        for (std::size_t k = 0; k < capacity; ++k) raw[k].store(0, std::memory_order_relaxed);
        std::fill(bipa->a, bipa->a + capacity, 0);
    }
    /// Worker number (0..procs-1) of a forked worker, distinct within one run:
    /// every run takes exactly `procs` numbers.
    unsigned worker_number(unsigned procs) { return unsigned(worker_counter->fetch_add(1) % procs); }
};

struct checksum_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(const std::string& what, long double got, long double expected)
{
    if (got != expected)
        throw checksum_error("checksum mismatch for " + what + ": " + std::to_string(got) + ", expected " +
                             std::to_string(expected));
}

template <class Get>
long double sum_of(Get get)
{
    long double s = 0;
    for (std::size_t k = 0; k < capacity; ++k) s += static_cast<long double>(get(k));
    return s;
}

/// The three arrays' sums.
struct sums {
    long double shm, raw, bip;
};
sums sum_all(fixture& f)
{
    return {sum_of([&](std::size_t k) { return f.buf.get(k); }),
            sum_of([&](std::size_t k) { return f.raw[k].load(); }),
            sum_of([&](std::size_t k) { return f.bipa->a[k]; })};
}

/// Every element of the three arrays satisfies pred(k, value).
template <class Pred>
void check_each(const std::string& row, fixture& f, Pred pred)
{
    for (std::size_t k = 0; k < capacity; ++k) {
        if (!pred(k, f.buf.get(k))) check(row + " (shmkit) element " + std::to_string(k), f.buf.get(k), -1);
        if (!pred(k, f.raw[k].load())) check(row + " (raw) element " + std::to_string(k), f.raw[k].load(), -1);
        if (!pred(k, f.bipa->a[k])) check(row + " (boost) element " + std::to_string(k), f.bipa->a[k], -1);
    }
}

struct row_result {
    result shm, raw, bip;
    bool has_plain = false;
    result plain; ///< informational: plain memcpy / std::fill, no atomics, no lock
};

const std::string raw_name = "raw std::atomic, MAP_SHARED";
const std::string raw_bulk_name = "raw relaxed-atomic loop, no lock";
const std::string raw_lock_name = "raw CAS spinlock word";
const std::string bip_name = "boost::interprocess sharable_mutex";

// ------------------------------------------------------------------ rows

row_result row_get(const options& o, fixture& f)
{
    for (std::size_t k = 0; k < capacity; ++k) f.buf.set(k, std::int64_t(k));
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [b = &f.buf, i = std::size_t(0)]() mutable {
            do_not_optimize(b->get(i));
            i = next_index(i);
        };
    });
    r.raw = measure(o, 1, [&] {
        return [a = f.raw, i = std::size_t(0)]() mutable {
            do_not_optimize(a[i].load(std::memory_order_acquire));
            i = next_index(i);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get(), i = std::size_t(0)]() mutable {
            p->mx.lock_sharable();
            const std::int64_t v = p->a[i];
            p->mx.unlock_sharable();
            do_not_optimize(v);
            i = next_index(i);
        };
    });
    return r;
}

row_result row_set(const options& o, fixture& f)
{
    f.zero_all();
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [b = &f.buf, i = std::size_t(0)]() mutable {
            b->set(i, std::int64_t(i));
            i = next_index(i);
        };
    });
    r.raw = measure(o, 1, [&] {
        return [a = f.raw, i = std::size_t(0)]() mutable {
            a[i].store(std::int64_t(i), std::memory_order_release);
            i = next_index(i);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get(), i = std::size_t(0)]() mutable {
            p->mx.lock();
            p->a[i] = std::int64_t(i);
            p->mx.unlock();
            i = next_index(i);
        };
    });
    check_each("set", f, [](std::size_t k, std::int64_t v) { return v == std::int64_t(k); });
    return r;
}

/// incr (delta 1, through incr()) or add (delta 2, through add()).
row_result row_add(const options& o, fixture& f, bool incr)
{
    f.zero_all();
    const std::int64_t d = incr ? 1 : 2;
    row_result r;
    if (incr)
        r.shm = measure(o, 1, [&] {
            return [b = &f.buf, i = std::size_t(0)]() mutable {
                do_not_optimize(b->incr(i));
                i = next_index(i);
            };
        });
    else
        r.shm = measure(o, 1, [&] {
            return [b = &f.buf, i = std::size_t(0)]() mutable {
                do_not_optimize(b->add(i, 2));
                i = next_index(i);
            };
        });
    r.raw = measure(o, 1, [&] {
        return [a = f.raw, d, i = std::size_t(0)]() mutable {
            do_not_optimize(a[i].fetch_add(d, std::memory_order_acq_rel) + d);
            i = next_index(i);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get(), d, i = std::size_t(0)]() mutable {
            p->mx.lock();
            const std::int64_t v = p->a[i] += d;
            p->mx.unlock();
            do_not_optimize(v);
            i = next_index(i);
        };
    });
    const sums s = sum_all(f);
    const std::string what = incr ? "incr" : "add";
    check(what + " (shmkit)", s.shm, (long double)r.shm.total_ops * d);
    check(what + " (raw)", s.raw, (long double)r.raw.total_ops * d);
    check(what + " (boost)", s.bip, (long double)r.bip.total_ops * d);
    return r;
}

/// cas(i, pass, pass + 1): element i holds the number of passes over the
/// array so far, so every CAS succeeds and changes the element. Each run
/// starts from zero (the maker clears, untimed), so afterwards the sum of
/// the elements is the number of successful CASes of the last run.
row_result row_cas(const options& o, fixture& f)
{
    row_result r;
    r.shm = measure(o, 1, [&] {
        f.buf.clear();
        return [b = &f.buf, i = std::size_t(0), pass = std::int64_t(0)]() mutable {
            do_not_optimize(b->cas(i, pass, pass + 1));
            i = next_index(i);
            pass += i == 0;
        };
    });
    r.raw = measure(o, 1, [&] {
        for (std::size_t k = 0; k < capacity; ++k) f.raw[k].store(0, std::memory_order_relaxed);
        return [a = f.raw, i = std::size_t(0), pass = std::int64_t(0)]() mutable {
            std::int64_t e = pass;
            do_not_optimize(
                a[i].compare_exchange_strong(e, pass + 1, std::memory_order_acq_rel, std::memory_order_acquire));
            i = next_index(i);
            pass += i == 0;
        };
    });
    r.bip = measure(o, 1, [&] {
        std::fill(f.bipa->a, f.bipa->a + capacity, 0);
        return [p = f.bipa.get(), i = std::size_t(0), pass = std::int64_t(0)]() mutable {
            p->mx.lock();
            const bool ok = p->a[i] == pass;
            if (ok) p->a[i] = pass + 1;
            p->mx.unlock();
            do_not_optimize(ok);
            i = next_index(i);
            pass += i == 0;
        };
    });
    const sums s = sum_all(f);
    check("cas (shmkit)", s.shm, (long double)r.shm.per_worker);
    check("cas (raw)", s.raw, (long double)r.raw.per_worker);
    check("cas (boost)", s.bip, (long double)r.bip.per_worker);
    return r;
}

/// The content every slice row reads: element k = 3k + 1.
void fill_pattern(fixture& f)
{
    for (std::size_t k = 0; k < capacity; ++k) {
        f.buf.set(k, std::int64_t(3 * k + 1));
        f.raw[k].store(std::int64_t(3 * k + 1));
        f.bipa->a[k] = std::int64_t(3 * k + 1);
    }
}

row_result row_slice(const options& o, fixture& f)
{
    fill_pattern(f);
    row_result r;
    alignas(64) std::int64_t out[slice_len];
    r.shm = measure(o, 1, [&] {
        return [b = &f.buf, out = &out[0], from = std::size_t(0)]() mutable {
            b->slice(from, boost::span<std::int64_t>(out, slice_len));
            do_not_optimize(out[0]); // and the "memory" clobber keeps every out[k]
            from = next_slice(from);
        };
    });
    r.raw = measure(o, 1, [&] {
        return [a = f.raw, out = &out[0], from = std::size_t(0)]() mutable {
            // The same loop shape as shmkit's (locals, unrolled by 8): a fair baseline.
            const std::atomic<std::int64_t>* const p = a + from;
#pragma GCC unroll 8
            for (std::size_t k = 0; k < slice_len; ++k) out[k] = p[k].load(std::memory_order_relaxed);
            do_not_optimize(out[0]);
            from = next_slice(from);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get(), out = &out[0], from = std::size_t(0)]() mutable {
            p->mx.lock_sharable();
            std::memcpy(out, p->a + from, slice_len * sizeof(std::int64_t));
            p->mx.unlock_sharable();
            do_not_optimize(out[0]);
            from = next_slice(from);
        };
    });
    r.has_plain = true;
    r.plain = measure(o, 1, [&] {
        return [a = reinterpret_cast<const std::int64_t*>(f.raw), out = &out[0], from = std::size_t(0)]() mutable {
            std::memcpy(out, a + from, slice_len * sizeof(std::int64_t));
            do_not_optimize(out[0]);
            from = next_slice(from);
        };
    });
    // The slices read what is there.
    for (std::size_t from = 0; from + slice_len <= capacity; from = from + slice_len) {
        f.buf.slice(from, boost::span<std::int64_t>(out, slice_len));
        for (std::size_t k = 0; k < slice_len; ++k)
            if (out[k] != std::int64_t(3 * (from + k) + 1))
                check("slice element " + std::to_string(from + k), out[k], 3 * (from + k) + 1);
    }
    return r;
}

row_result row_set_slice(const options& o, fixture& f)
{
    f.zero_all();
    std::int64_t src[slice_len];
    for (std::size_t k = 0; k < slice_len; ++k) src[k] = std::int64_t(k + 1);
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [b = &f.buf, src = &src[0], from = std::size_t(0)]() mutable {
            b->set_slice(from, boost::span<const std::int64_t>(src, slice_len));
            from = next_slice(from);
        };
    });
    r.raw = measure(o, 1, [&] {
        return [a = f.raw, src = &src[0], from = std::size_t(0)]() mutable {
            std::atomic<std::int64_t>* const p = a + from;
#pragma GCC unroll 8
            for (std::size_t k = 0; k < slice_len; ++k) p[k].store(src[k], std::memory_order_relaxed);
            from = next_slice(from);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get(), src = &src[0], from = std::size_t(0)]() mutable {
            p->mx.lock();
            std::memcpy(p->a + from, src, slice_len * sizeof(std::int64_t));
            p->mx.unlock();
            from = next_slice(from);
        };
    });
    check_each("set_slice", f, [](std::size_t k, std::int64_t v) { return v == std::int64_t(k % slice_len + 1); });
    r.has_plain = true;
    r.plain = measure(o, 1, [&] {
        return [a = reinterpret_cast<std::int64_t*>(f.raw), src = &src[0], from = std::size_t(0)]() mutable {
            std::memcpy(a + from, src, slice_len * sizeof(std::int64_t));
            do_not_optimize(a[from]);
            from = next_slice(from);
        };
    });
    return r;
}

row_result row_fill(const options& o, fixture& f)
{
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [b = &f.buf, v = std::int64_t(0)]() mutable { b->fill(++v); };
    });
    r.raw = measure(o, 1, [&] {
        return [a = f.raw, v = std::int64_t(0)]() mutable {
            ++v;
#pragma GCC unroll 8
            for (std::size_t k = 0; k < capacity; ++k) a[k].store(v, std::memory_order_relaxed);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get(), v = std::int64_t(0)]() mutable {
            p->mx.lock();
            std::fill(p->a, p->a + capacity, ++v);
            p->mx.unlock();
        };
    });
    // Every array holds the last value filled: the last run's op count.
    const std::int64_t ws = std::int64_t(r.shm.per_worker), wr = std::int64_t(r.raw.per_worker),
                       wb = std::int64_t(r.bip.per_worker);
    for (std::size_t k = 0; k < capacity; ++k) {
        if (f.buf.get(k) != ws) check("fill (shmkit) element " + std::to_string(k), f.buf.get(k), ws);
        if (f.raw[k].load() != wr) check("fill (raw) element " + std::to_string(k), f.raw[k].load(), wr);
        if (f.bipa->a[k] != wb) check("fill (boost) element " + std::to_string(k), f.bipa->a[k], wb);
    }
    r.has_plain = true;
    r.plain = measure(o, 1, [&] {
        return [a = reinterpret_cast<std::int64_t*>(f.raw), v = std::int64_t(0)]() mutable {
            std::fill(a, a + capacity, ++v);
            do_not_optimize(a[0]);
        };
    });
    return r;
}

row_result row_lock(const options& o, fixture& f)
{
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [b = &f.buf] {
            b->lock();
            b->unlock();
        };
    });
    r.raw = measure(o, 1, [&] {
        return [w = &f.spin->word] {
            std::uint32_t e = 0;
            while (!w->compare_exchange_strong(e, 1, std::memory_order_acquire, std::memory_order_relaxed)) e = 0;
            w->store(0, std::memory_order_release);
        };
    });
    r.bip = measure(o, 1, [&] {
        return [p = f.bipa.get()] {
            p->mx.lock();
            p->mx.unlock();
        };
    });
    return r;
}

/// incr in `procs` forked workers: on one element each (distinct = true;
/// element w * spread, different cache lines), or all on element 0.
row_result row_incr_procs(const options& o, fixture& f, unsigned procs, bool distinct)
{
    f.zero_all();
    auto element = [&f, procs, distinct] { return distinct ? f.worker_number(procs) * spread : std::size_t(0); };
    row_result r;
    r.shm = measure(o, procs, [&] {
        return [b = &f.buf, i = element()] { do_not_optimize(b->incr(i)); };
    });
    r.raw = measure(o, procs, [&] {
        return [e = &f.raw[element()]] { do_not_optimize(e->fetch_add(1, std::memory_order_acq_rel) + 1); };
    });
    r.bip = measure(o, procs, [&] {
        return [p = f.bipa.get(), i = element()] {
            p->mx.lock();
            const std::int64_t v = ++p->a[i];
            p->mx.unlock();
            do_not_optimize(v);
        };
    });
    const std::string what = distinct ? "incr distinct" : "incr shared";
    const sums s = sum_all(f);
    check(what + " (shmkit)", s.shm, (long double)r.shm.total_ops);
    check(what + " (raw)", s.raw, (long double)r.raw.total_ops);
    check(what + " (boost)", s.bip, (long double)r.bip.total_ops);
    if (distinct)
        for (unsigned w = 0; w < procs; ++w) {
            // Every worker ran the same number of operations on its element.
            check(what + " (shmkit) worker element", f.buf.get(w * spread), (long double)r.shm.total_ops / procs);
            check(what + " (raw) worker element", f.raw[w * spread].load(), (long double)r.raw.total_ops / procs);
            check(what + " (boost) worker element", f.bipa->a[w * spread], (long double)r.bip.total_ops / procs);
        }
    return r;
}

} // namespace

int main(int argc, char** argv)
{
    const options opt = parse_options(
        argc, argv,
        "bench_buffer: shmkit::buffer<int64_t> (capacity 10000) vs a raw std::atomic<int64_t> array on a "
        "MAP_SHARED page vs an int64 array under boost::interprocess::interprocess_sharable_mutex");
    print_preamble("bench_buffer: operations per second, shmkit::buffer<int64_t> of capacity 10000 "
                   "(multi-process rows: total of all processes)",
                   opt);

    const std::string np = std::to_string(opt.procs) + " processes";
    const target near_raw{0, 0.9};        // get/set/incr/add: >= 0.9x the raw atomic
    const target set_slice_rate{25e6, 0}; // set_slice(100) >= 25 M/s
    const target slice_rate{40e6, 0};     // slice(100) >= 40 M/s
    const target lock_rate{100e6, 0};     // lock+unlock >= 100 M pairs/s

    enum class kind { get, set, incr, add, cas, slice, set_slice, fill, lock, incr_distinct, incr_shared };
    struct row_spec {
        std::string name;
        kind k;
        const target* raw_target;  ///< checked on the raw-baseline line
        const target* rate_target; ///< an absolute rate, checked on the first line
    };
    const row_spec rows[] = {
        {"get, 1 process", kind::get, &near_raw, nullptr},
        {"set, 1 process", kind::set, &near_raw, nullptr},
        {"incr, 1 process", kind::incr, &near_raw, nullptr},
        {"add, 1 process", kind::add, &near_raw, nullptr},
        {"cas, 1 process", kind::cas, nullptr, nullptr},
        {"slice(100) into a span, 1 process", kind::slice, nullptr, &slice_rate},
        {"set_slice(100), 1 process", kind::set_slice, nullptr, &set_slice_rate},
        {"fill (10000 elements), 1 process", kind::fill, nullptr, nullptr},
        {"lock+unlock, 1 process", kind::lock, nullptr, &lock_rate},
        {"incr, distinct elements, " + np, kind::incr_distinct, nullptr, nullptr},
        {"incr, one shared element, " + np, kind::incr_shared, nullptr, nullptr},
    };

    table tab;
    try {
        fixture f;
        // Warm-up, untimed: at least 0.1 s of element operations before the
        // first row, so that the first figure is not taken while the CPU is
        // still raising its clock or the pages are still being faulted in.
        const std::int64_t warm_end = now_ns() + std::int64_t(std::max(0.1, opt.seconds) * 1e9);
        for (std::size_t i = 0; now_ns() < warm_end;)
            for (int k = 0; k < 10000; ++k) {
                do_not_optimize(f.buf.incr(i));
                f.raw[i].fetch_add(1, std::memory_order_acq_rel);
                i = next_index(i);
            }
        tab.print_header();
        for (const row_spec& rs : rows) {
            if (!selected(opt, rs.name)) continue;
            row_result r;
            const std::string* raw_label = &raw_name;
            const char* plain_label = nullptr;
            switch (rs.k) {
            case kind::get: r = row_get(opt, f); break;
            case kind::set: r = row_set(opt, f); break;
            case kind::incr: r = row_add(opt, f, true); break;
            case kind::add: r = row_add(opt, f, false); break;
            case kind::cas: r = row_cas(opt, f); break;
            case kind::slice:
                r = row_slice(opt, f);
                raw_label = &raw_bulk_name;
                plain_label = "(info) plain memcpy, not race-free";
                break;
            case kind::set_slice:
                r = row_set_slice(opt, f);
                raw_label = &raw_bulk_name;
                plain_label = "(info) plain memcpy, not race-free";
                break;
            case kind::fill:
                r = row_fill(opt, f);
                raw_label = &raw_bulk_name;
                plain_label = "(info) std::fill, not race-free";
                break;
            case kind::lock:
                r = row_lock(opt, f);
                raw_label = &raw_lock_name;
                break;
            case kind::incr_distinct: r = row_incr_procs(opt, f, opt.procs, true); break;
            case kind::incr_shared: r = row_incr_procs(opt, f, opt.procs, false); break;
            }
            if (rs.rate_target) {
                tab.row(rs.name, r.shm, *raw_label, r.raw, opt, rs.rate_target);
            }
            else {
                tab.row(rs.name, r.shm, *raw_label, r.raw, opt, rs.raw_target);
            }
            tab.row("", r.shm, bip_name, r.bip, opt);
            if (r.has_plain) tab.row("", r.shm, plain_label, r.plain, opt);
        }
    }
    catch (const checksum_error& e) {
        std::cerr << "bench_buffer: " << e.what() << "\n";
        return 1;
    }
    catch (const std::exception& e) {
        std::cerr << "bench_buffer: error: " << e.what() << "\n";
        return 1;
    }
    tab.note("");
    tab.note("checksums: ok (incr/add sums equal the operations run, cas sums the successful CASes, set/set_slice/fill/\n"
             "slice contents as written)");
    tab.note("targets: get/set/incr/add >= 0.9x the raw atomic; slice(100) >= 40M/s; set_slice(100) >= 25M/s;\n"
             "lock+unlock >= 100M pairs/s");
    return tab.finish(opt);
}
