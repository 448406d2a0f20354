// bench/bench_pool.cpp: shmkit::pool<std::int64_t> (and str_pool) against
// the hardware limit, the minimal lock-free slot allocator on raw atomics,
// and against Boost.Interprocess's managed_shared_memory allocator, all
// measured in the same run.
//
// Rows (one operation = one call, unless stated):
//   single process, pool<int64_t> of capacity 4096 (anonymous):
//     alloc+free pair: try_alloc() then free(i) (one slot allocated and
//       freed per operation);
//     alloc_n(64)+free_n: try_alloc_n(span of 64) then free_n(span),
//       reported in slots/s (64 slots per operation);
//     get, set, add, cas on allocated slots (the index rotates over 64
//       slots allocated for the row, so nothing can be hoisted);
//   single process, str_pool of 64 slots of at most 64 bytes: set and get
//     of a 48-byte string (informational);
//   --procs processes (2 by default): alloc+free pairs by every worker at
//     once on one pool, of capacity 64 and of capacity 4096 (total pairs/s;
//     informational).
//
// Baselines:
//   - allocation rows: "raw CAS/xchg owner words", the minimal lock-free slot
//     allocator a C programmer would write on a MAP_SHARED page: one 64-bit
//     owner word per slot, alloc = scan from a per-process cursor and CAS
//     0 -> id (acq_rel), free = exchange -> 0 (acq_rel), alloc_n = the same
//     scan claiming 64 words, free_n = 64 release stores. It is the same
//     algorithm and the same cursor rule as shmkit (so it allocates the same
//     slots in the same order), without the attach-table owner id, range
//     checks, per-handle counters and the wake-word check that make shmkit's
//     slots crash-recoverable and blockable;
//   - Boost.Interprocess: managed_shared_memory::allocate(8)/deallocate(p)
//     for alloc+free, allocate_many(8, 64, chain)/deallocate_many(chain)
//     for alloc_n (the segment manager's rbtree best-fit allocator under
//     its process-shared mutex), on a 1 MiB segment named
//     shmkit_bench_pool_<pid>, removed at the end, also on failure;
//   - element rows: a raw std::atomic<std::int64_t> array on a MAP_SHARED page,
//     indexed by the same 64 slot numbers, with the same memory orders as
//     shmkit: get = load(acquire), set = store(release), add =
//     fetch_add(acq_rel), cas = compare_exchange_strong(acq_rel, acquire);
//   - str_pool rows: the same slot layout (4-byte length word, then the
//     bytes; 68-byte slots) on a MAP_SHARED page: plain memcpy of the 48
//     bytes plus the length word (release store / acquire load), and
//     informational lines with the relaxed-atomic byte copy str_pool uses
//     (shmkit::detail::atomic_copy_*, minus str_pool's checks) and, for get,
//     a memcpy into a new std::string (what str_pool::get returns).
//
// Checksums (exit status 1 on a mismatch): every allocation is checked in
// the timed loop, by the same rule for shmkit and the baselines: an alloc
// that fails, returns an index >= capacity (a pointer outside the Boost
// segment), or a free that finds the slot free, counts an error (and
// free_n throws for an index >= capacity; its count must be 64, which also
// proves the 64 slots were distinct); after each allocation row no slot is
// allocated (used() == 0, every raw owner word 0, Boost's
// all_memory_deallocated() and free memory as before), and the pool's
// stats() count exactly the allocations and frees that were run (every
// operation of every run, calibration, warm-up and the workers' own attach
// check included). After get, the sum of the values read by the last run
// equals the sum of the values there; after set, every slot holds the
// number of the last operation that wrote it; after add, every slot holds
// the number of adds made to it; after cas, the successes counted equal the
// operations run (each cas expects the value the pattern left there) and
// every slot holds its number of successful CASes; after str_pool set,
// every slot holds the 48-byte string; str_pool get's sum of lengths and
// last bytes matches, and every slot reads back the string.

#include "harness.hpp"

#include <shmkit/detail/atomic_copy.hpp>
#include <shmkit/pool.hpp>

#include <boost/core/span.hpp>
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace bip = boost::interprocess;
using namespace shmkit_bench;

constexpr std::size_t capacity = 4096;      // the pool of the single-process rows
constexpr std::size_t small_capacity = 64;  // the small pool of a multi-process row
constexpr std::size_t batch = 64;           // alloc_n
constexpr std::size_t hot = 64;             // slots the element and string rows rotate over (power of 2)
constexpr std::size_t str_len = 48;         // the string of the str_pool rows
constexpr std::size_t str_max = 64;         // the str_pool's maximum length
constexpr std::size_t str_stride = 68;      // str_pool's slot size: 4 + 64, rounded up to 4
constexpr std::size_t bip_segment_size = 1 << 20;

using shm_pool = shmkit::pool<std::int64_t>;
using owner_word = std::atomic<std::uint64_t>;
using raw_elem = std::atomic<std::int64_t>;
using length_word = std::atomic<std::uint32_t>;
static_assert(sizeof(raw_elem) == sizeof(std::int64_t) && raw_elem::is_always_lock_free);
static_assert(sizeof(owner_word) == sizeof(std::uint64_t) && owner_word::is_always_lock_free);

/// The rotation of every element row: the next of the 64 held slots.
inline std::size_t next_hot(std::size_t k) noexcept { return (k + 1) % hot; }

/// The raw baseline allocator: shmkit's algorithm on bare owner words (see
/// the header comment). Per process (the cursor is private), the owner
/// words are shared.
struct raw_allocator {
    owner_word* owners;
    std::size_t cap;
    std::uint64_t me = static_cast<std::uint64_t>(::getpid()); // non-zero
    std::size_t cursor = 0;

    bool claim(std::size_t i) noexcept
    {
        std::uint64_t expected = 0;
        return owners[i].compare_exchange_strong(expected, me, std::memory_order_acq_rel, std::memory_order_relaxed);
    }
    /// A free slot, or cap if none.
    std::size_t alloc() noexcept
    {
        std::size_t i = cursor < cap ? cursor : 0;
        for (std::size_t k = 0; k < cap; ++k) {
            if (owners[i].load(std::memory_order_relaxed) == 0 && claim(i)) {
                cursor = i + 1;
                return i;
            }
            if (++i == cap) i = 0;
        }
        return cap;
    }
    /// False if slot i was free.
    bool free(std::size_t i) noexcept
    {
        if (owners[i].exchange(0, std::memory_order_acq_rel) == 0) return false;
        cursor = i;
        return true;
    }
    /// n slots, all or none.
    bool alloc_n(std::size_t* out, std::size_t n) noexcept
    {
        std::size_t got = 0, i = cursor < cap ? cursor : 0;
        for (std::size_t k = 0; k < cap && got < n; ++k) {
            if (owners[i].load(std::memory_order_relaxed) == 0 && claim(i)) out[got++] = i;
            if (++i == cap) i = 0;
        }
        if (got == n) {
            cursor = i;
            return true;
        }
        for (std::size_t k = 0; k < got; ++k) owners[out[k]].store(0, std::memory_order_release);
        return false;
    }
    void free_n(const std::size_t* slots, std::size_t n) noexcept
    {
        for (std::size_t k = 0; k < n; ++k) owners[slots[k]].store(0, std::memory_order_release);
        if (n) cursor = slots[0];
    }
};

/// A Boost.Interprocess managed segment under a name unique to this
/// process, removed before it is created (a leftover of a killed run with
/// our PID) and when this object is destroyed, also during unwinding.
class bip_segment {
public:
    bip_segment()
        : rm_("shmkit_bench_pool_" + std::to_string(::getpid())),
          seg_(bip::create_only, rm_.name.c_str(), bip_segment_size)
    {
        initial_free_ = seg_.get_free_memory();
    }
    bip::managed_shared_memory& seg() noexcept { return seg_; }
    /// Nothing allocated: as after creation.
    bool all_free() { return seg_.all_memory_deallocated() && seg_.get_free_memory() == initial_free_; }

private:
    struct remover {
        std::string name;
        explicit remover(std::string n) : name(std::move(n)) { bip::shared_memory_object::remove(name.c_str()); }
        ~remover() { bip::shared_memory_object::remove(name.c_str()); }
    };
    remover rm_; // first: removed after seg_ is unmapped
    bip::managed_shared_memory seg_;
    std::size_t initial_free_ = 0;
};

template <class T>
T* make_atomics(shared_mapping& m, std::size_t n)
{
    T* a = m.at<T>();
    for (std::size_t k = 0; k < n; ++k) new (a + k) T(0);
    return a;
}

/// Everything one run of the program measures on. The raw words are
/// page-aligned MAP_SHARED anonymous mappings, like the pools' data; all of
/// it is inherited by the forked workers of the multi-process rows.
struct fixture {
    shm_pool pool = shm_pool::anonymous(capacity);
    shm_pool small = shm_pool::anonymous(small_capacity);
    shmkit::str_pool strs = shmkit::str_pool::anonymous(hot, str_max);

    shared_mapping owners_map{capacity * sizeof(owner_word)};
    owner_word* owners = make_atomics<owner_word>(owners_map, capacity);
    shared_mapping small_owners_map{small_capacity * sizeof(owner_word)};
    owner_word* small_owners = make_atomics<owner_word>(small_owners_map, small_capacity);
    shared_mapping raw_map{capacity * sizeof(raw_elem)};
    raw_elem* raw = make_atomics<raw_elem>(raw_map, capacity);
    shared_mapping raw_str_map{hot * str_stride};
    char* raw_str = raw_str_map.at<char>();

    bip_segment bip;

    /// Failed allocation checks of the timed loops (any process).
    shared_object<std::atomic<std::uint64_t>> errors{0};
    /// Allocations made by make() in forked workers (their attach check).
    shared_object<std::atomic<std::uint64_t>> worker_allocs{0};

    void fail() noexcept { errors->fetch_add(1, std::memory_order_relaxed); }
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

/// No timed loop saw a failed allocation; resets the count.
void check_errors(const std::string& row, fixture& f)
{
    const std::uint64_t e = f.errors->exchange(0);
    check(row + ": failed allocation checks in the timed loop", (long double)e, 0);
}

/// Nothing allocated in `p` and in the raw owner words; `p`'s counters
/// advanced by exactly `ops` allocations and frees since `before`.
void check_pool_empty(const std::string& row, const shm_pool& p, const shmkit::pool_stats& before, std::uint64_t ops,
                      const owner_word* owners, std::size_t cap)
{
    const shmkit::pool_stats after = p.stats();
    check(row + " (shmkit) used()", (long double)after.used, 0);
    check(row + " (shmkit) stats().allocs", (long double)(after.allocs - before.allocs), (long double)ops);
    check(row + " (shmkit) stats().frees", (long double)(after.frees - before.frees), (long double)ops);
    std::size_t raw_used = 0;
    for (std::size_t k = 0; k < cap; ++k) raw_used += owners[k].load() != 0;
    check(row + " (raw) owner words in use", (long double)raw_used, 0);
}

/// A result of operations of `k` slots each, in slots/s.
result per_slot(result r, double k)
{
    r.median *= k;
    r.min *= k;
    r.max *= k;
    return r;
}

/// Operations of a run of n in rotation that land on slot position k (< hot).
inline std::uint64_t hits(std::uint64_t n, std::size_t k) noexcept { return n > k ? (n - k + hot - 1) / hot : 0; }

/// The 64 slots an element row works on, allocated for the row and freed
/// at its end (so the allocation rows find the pool empty).
class held_slots {
public:
    explicit held_slots(shmkit::detail::pool_base& p) : p_(p)
    {
        if (!p_.try_alloc_n(boost::span<std::size_t>(idx, hot)))
            throw std::runtime_error("could not allocate the 64 slots of an element row");
    }
    ~held_slots() { p_.free_n(boost::span<const std::size_t>(idx, hot)); }
    held_slots(const held_slots&) = delete;
    held_slots& operator=(const held_slots&) = delete;
    std::size_t idx[hot];

private:
    shmkit::detail::pool_base& p_;
};

/// A loop body that adds up what op(k) returns (k: the position in the
/// rotation over the held slots) and stores the sum in *sink when the run
/// ends (the body is destroyed after the timed loop): how the read rows
/// prove that they read what is there. Returned as a prvalue, never copied.
template <class Op>
class summing_body {
public:
    summing_body(Op op, std::int64_t* sink) : op_(std::move(op)), sink_(sink) {}
    summing_body(const summing_body&) = delete;
    summing_body& operator=(const summing_body&) = delete;
    ~summing_body() { *sink_ = acc_; }
    void operator()()
    {
        acc_ += op_(k_);
        k_ = next_hot(k_);
    }

private:
    Op op_;
    std::int64_t* sink_;
    std::size_t k_ = 0;
    std::int64_t acc_ = 0;
};
template <class Op>
summing_body<Op> summing(Op op, std::int64_t* sink)
{
    return summing_body<Op>(std::move(op), sink);
}

struct row_result {
    result shm, raw;
    bool has_bip = false;
    result bip;
    bool has_extra = false;
    result extra; ///< informational third line
    bool has_extra2 = false;
    result extra2; ///< informational fourth line
};

const std::string raw_alloc_name = "raw CAS/xchg owner words";
const std::string raw_alloc_n_name = "raw 64 CAS claims + 64 stores";
const std::string bip_alloc_name = "boost::interprocess allocate(8)";
const std::string bip_alloc_n_name = "bip allocate_many(8, 64)";
const std::string raw_elem_name = "raw std::atomic, MAP_SHARED";
const std::string raw_str_set_name = "raw memcpy 48 B + length word";
const std::string raw_str_get_name = "raw length word + memcpy 48 B";
const std::string atomic_copy_name = "(info) relaxed atomic copy + length";
const std::string new_string_name = "(info) memcpy into a new std::string";

// ------------------------------------------------------------------ rows

row_result row_alloc_free(const options& o, fixture& f)
{
    const shmkit::pool_stats before = f.pool.stats();
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [p = &f.pool, &f] {
            const std::optional<std::size_t> i = p->try_alloc();
            if (SHMKIT_UNLIKELY(!i || *i >= capacity || !p->free(*i))) f.fail();
        };
    });
    r.raw = measure(o, 1, [&] {
        return [a = raw_allocator{f.owners, capacity}, &f]() mutable {
            const std::size_t i = a.alloc();
            if (SHMKIT_UNLIKELY(i >= capacity || !a.free(i))) f.fail();
        };
    });
    r.has_bip = true;
    r.bip = measure(o, 1, [&] {
        bip::managed_shared_memory& seg = f.bip.seg();
        return [s = &seg, base = static_cast<const char*>(seg.get_address()), size = seg.get_size(), &f] {
            void* p = s->allocate(sizeof(std::int64_t)); // throws bad_alloc when full
            if (SHMKIT_UNLIKELY(std::size_t(static_cast<const char*>(p) - base) >= size)) f.fail();
            s->deallocate(p);
        };
    });
    check_errors("alloc+free", f);
    check_pool_empty("alloc+free", f.pool, before, r.shm.total_ops, f.owners, capacity);
    if (!f.bip.all_free()) check("alloc+free (boost) segment all free", 0, 1);
    return r;
}

row_result row_alloc_n(const options& o, fixture& f)
{
    const shmkit::pool_stats before = f.pool.stats();
    alignas(64) std::size_t out[batch];
    row_result r;
    r.shm = measure(o, 1, [&] {
        return [p = &f.pool, out = &out[0], &f] {
            const boost::span<std::size_t> s(out, batch);
            // free_n throws std::out_of_range for an index >= capacity.
            if (SHMKIT_UNLIKELY(!p->try_alloc_n(s) || p->free_n(s) != batch)) f.fail();
        };
    });
    r.raw = measure(o, 1, [&] {
        return [a = raw_allocator{f.owners, capacity}, out = &out[0], &f]() mutable {
            if (SHMKIT_UNLIKELY(!a.alloc_n(out, batch))) {
                f.fail();
                return;
            }
            a.free_n(out, batch);
        };
    });
    r.has_bip = true;
    r.bip = measure(o, 1, [&] {
        return [s = &f.bip.seg(), chain = bip::managed_shared_memory::multiallocation_chain(), &f]() mutable {
            s->allocate_many(sizeof(std::int64_t), batch, chain); // throws bad_alloc when full
            if (SHMKIT_UNLIKELY(chain.size() != batch)) f.fail();
            s->deallocate_many(chain);
        };
    });
    check_errors("alloc_n(64)+free_n", f);
    check_pool_empty("alloc_n(64)+free_n", f.pool, before, r.shm.total_ops * batch, f.owners, capacity);
    if (!f.bip.all_free()) check("alloc_n(64)+free_n (boost) segment all free", 0, 1);
    r.shm = per_slot(r.shm, batch);
    r.raw = per_slot(r.raw, batch);
    r.bip = per_slot(r.bip, batch);
    return r;
}

/// get: held slot k holds k + 1; the sum of what the last run read is
/// sum over its operations j of (j % 64) + 1.
row_result row_get(const options& o, fixture& f)
{
    held_slots h(f.pool);
    const std::size_t* idx = h.idx;
    for (std::size_t k = 0; k < hot; ++k) {
        f.pool.set(idx[k], std::int64_t(k + 1));
        f.raw[idx[k]].store(std::int64_t(k + 1));
    }
    std::int64_t sum_shm = -1, sum_raw = -1;
    row_result r;
    r.shm = measure(o, 1, [&] {
        return summing([p = &f.pool, idx](std::size_t k) { return p->get(idx[k]); }, &sum_shm);
    });
    r.raw = measure(o, 1, [&] {
        return summing([a = f.raw, idx](std::size_t k) { return a[idx[k]].load(std::memory_order_acquire); },
                       &sum_raw);
    });
    auto expected = [](std::uint64_t n) {
        long double s = 0;
        for (std::size_t k = 0; k < hot; ++k) s += (long double)hits(n, k) * (k + 1);
        return s;
    };
    check("get (shmkit) sum read", sum_shm, expected(r.shm.per_worker));
    check("get (raw) sum read", sum_raw, expected(r.raw.per_worker));
    return r;
}

/// set(slot, j + 1) for operation j of a run; each run starts from zeros
/// (untimed), so afterwards held slot k holds the number of the last
/// operation that wrote it.
row_result row_set(const options& o, fixture& f)
{
    held_slots h(f.pool);
    const std::size_t* idx = h.idx;
    row_result r;
    r.shm = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.pool.set(idx[k], 0);
        return [p = &f.pool, idx, k = std::size_t(0), j = std::int64_t(0)]() mutable {
            p->set(idx[k], ++j);
            k = next_hot(k);
        };
    });
    r.raw = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.raw[idx[k]].store(0);
        return [a = f.raw, idx, k = std::size_t(0), j = std::int64_t(0)]() mutable {
            a[idx[k]].store(++j, std::memory_order_release);
            k = next_hot(k);
        };
    });
    auto last_write = [](std::uint64_t n, std::size_t k) -> long double {
        const std::uint64_t c = hits(n, k);
        return c ? (long double)(k + (c - 1) * hot + 1) : 0;
    };
    for (std::size_t k = 0; k < hot; ++k) {
        check("set (shmkit) slot " + std::to_string(idx[k]), f.pool.get(idx[k]), last_write(r.shm.per_worker, k));
        check("set (raw) element " + std::to_string(idx[k]), f.raw[idx[k]].load(), last_write(r.raw.per_worker, k));
    }
    return r;
}

/// add(slot, 1); each run starts from zeros (untimed), so afterwards held
/// slot k holds the number of adds the last run made to it.
row_result row_add(const options& o, fixture& f)
{
    held_slots h(f.pool);
    const std::size_t* idx = h.idx;
    row_result r;
    r.shm = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.pool.set(idx[k], 0);
        return [p = &f.pool, idx, k = std::size_t(0)]() mutable {
            do_not_optimize(p->add(idx[k], 1));
            k = next_hot(k);
        };
    });
    r.raw = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.raw[idx[k]].store(0);
        return [a = f.raw, idx, k = std::size_t(0)]() mutable {
            do_not_optimize(a[idx[k]].fetch_add(1, std::memory_order_acq_rel) + 1);
            k = next_hot(k);
        };
    });
    for (std::size_t k = 0; k < hot; ++k) {
        check("add (shmkit) slot " + std::to_string(idx[k]), f.pool.get(idx[k]), hits(r.shm.per_worker, k));
        check("add (raw) element " + std::to_string(idx[k]), f.raw[idx[k]].load(), hits(r.raw.per_worker, k));
    }
    return r;
}

/// cas(slot, pass, pass + 1): a held slot holds the number of passes over
/// the 64 so far, so every CAS succeeds; each run starts from zeros
/// (untimed). The successes of the last run are counted (summing_body).
row_result row_cas(const options& o, fixture& f)
{
    held_slots h(f.pool);
    const std::size_t* idx = h.idx;
    std::int64_t ok_shm = -1, ok_raw = -1;
    row_result r;
    r.shm = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.pool.set(idx[k], 0);
        return summing(
            [p = &f.pool, idx, pass = std::int64_t(0)](std::size_t k) mutable {
                const bool ok = p->cas(idx[k], pass, pass + 1);
                pass += k == hot - 1;
                return std::int64_t(ok);
            },
            &ok_shm);
    });
    r.raw = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.raw[idx[k]].store(0);
        return summing(
            [a = f.raw, idx, pass = std::int64_t(0)](std::size_t k) mutable {
                std::int64_t e = pass;
                const bool ok = a[idx[k]].compare_exchange_strong(e, pass + 1, std::memory_order_acq_rel,
                                                                  std::memory_order_acquire);
                pass += k == hot - 1;
                return std::int64_t(ok);
            },
            &ok_raw);
    });
    check("cas (shmkit) successes", ok_shm, r.shm.per_worker);
    check("cas (raw) successes", ok_raw, r.raw.per_worker);
    for (std::size_t k = 0; k < hot; ++k) {
        check("cas (shmkit) slot " + std::to_string(idx[k]), f.pool.get(idx[k]), hits(r.shm.per_worker, k));
        check("cas (raw) element " + std::to_string(idx[k]), f.raw[idx[k]].load(), hits(r.raw.per_worker, k));
    }
    return r;
}

/// The 48-byte string of the str_pool rows.
std::string make_string()
{
    std::string s(str_len, '\0');
    for (std::size_t b = 0; b < str_len; ++b) s[b] = char('a' + (b * 7) % 26);
    return s;
}

/// The raw string slot k (same layout as str_pool's: length word, bytes).
inline length_word& raw_len(char* base, std::size_t k) noexcept
{
    return *reinterpret_cast<length_word*>(base + k * str_stride);
}
inline char* raw_bytes(char* base, std::size_t k) noexcept { return base + k * str_stride + sizeof(length_word); }

/// The held slots of `strs` and the raw string slots all hold `s`.
void check_strings(const std::string& row, fixture& f, const std::size_t* idx, const std::string& s,
                   std::uint64_t n_shm, std::uint64_t n_raw, std::uint64_t n_atomic)
{
    for (std::size_t k = 0; k < hot; ++k) {
        if (hits(n_shm, k) && f.strs.get(idx[k]) != s)
            check(row + " (shmkit) slot " + std::to_string(idx[k]) + " content", 0, 1);
        const std::string raw(raw_bytes(f.raw_str, k), raw_len(f.raw_str, k).load());
        if ((hits(n_raw, k) || hits(n_atomic, k)) && raw != s)
            check(row + " (raw) slot " + std::to_string(k) + " content", 0, 1);
    }
}

/// str_pool set of the 48-byte string; each run starts from empty slots
/// (untimed), so afterwards every slot written holds the string.
row_result row_str_set(const options& o, fixture& f)
{
    held_slots h(f.strs);
    const std::size_t* idx = h.idx;
    const std::string s = make_string();
    auto clear_raw = [&] {
        for (std::size_t k = 0; k < hot; ++k) {
            std::memset(raw_bytes(f.raw_str, k), 0, str_max);
            raw_len(f.raw_str, k).store(0);
        }
    };
    row_result r;
    r.shm = measure(o, 1, [&] {
        for (std::size_t k = 0; k < hot; ++k) f.strs.set(idx[k], std::string_view());
        return [p = &f.strs, idx, v = std::string_view(s), k = std::size_t(0)]() mutable {
            p->set(idx[k], v);
            k = next_hot(k);
        };
    });
    r.raw = measure(o, 1, [&] {
        clear_raw();
        return [base = f.raw_str, src = s.data(), k = std::size_t(0)]() mutable {
            std::memcpy(raw_bytes(base, k), src, str_len);
            raw_len(base, k).store(std::uint32_t(str_len), std::memory_order_release);
            k = next_hot(k);
        };
    });
    const std::uint64_t n_raw = r.raw.per_worker;
    check_strings("str_pool set", f, idx, s, r.shm.per_worker, n_raw, 0);
    r.has_extra = true;
    r.extra = measure(o, 1, [&] {
        clear_raw();
        return [base = f.raw_str, src = s.data(), k = std::size_t(0)]() mutable {
            shmkit::detail::atomic_copy_to_shared(raw_bytes(base, k), src, str_len);
            raw_len(base, k).store(std::uint32_t(str_len), std::memory_order_release);
            k = next_hot(k);
        };
    });
    check_strings("str_pool set", f, idx, s, r.shm.per_worker, 0, r.extra.per_worker);
    return r;
}

/// str_pool get of the 48-byte string: every read adds its length and its
/// last byte (the same for every slot) to the run's sum.
row_result row_str_get(const options& o, fixture& f)
{
    held_slots h(f.strs);
    const std::size_t* idx = h.idx;
    const std::string s = make_string();
    for (std::size_t k = 0; k < hot; ++k) {
        f.strs.set(idx[k], s);
        std::memcpy(raw_bytes(f.raw_str, k), s.data(), str_len);
        raw_len(f.raw_str, k).store(std::uint32_t(str_len));
    }
    check_strings("str_pool get", f, idx, s, hot, hot, 0);
    // The raw readers clamp the length as str_pool does (shared memory is
    // never trusted as a size).
    auto raw_length = [](char* base, std::size_t k) {
        const std::uint32_t n = raw_len(base, k).load(std::memory_order_acquire);
        return n < str_max ? n : std::uint32_t(str_max);
    };
    auto weight = [](std::size_t n, const char* bytes) {
        return std::int64_t(n) + (n ? std::int64_t(static_cast<unsigned char>(bytes[n - 1])) : 0);
    };
    std::int64_t sum_shm = -1, sum_raw = -1, sum_atomic = -1, sum_string = -1;
    row_result r;
    r.shm = measure(o, 1, [&] {
        return summing(
            [p = &f.strs, idx, weight](std::size_t k) {
                const std::string v = p->get(idx[k]);
                return weight(v.size(), v.data());
            },
            &sum_shm);
    });
    r.raw = measure(o, 1, [&] {
        return summing(
            [base = f.raw_str, raw_length, weight, buf = std::array<char, str_max>()](std::size_t k) mutable {
                const std::size_t n = raw_length(base, k);
                std::memcpy(buf.data(), raw_bytes(base, k), n);
                const char* b = buf.data();
                do_not_optimize(b); // the copy escapes: it is not optimised away
                return weight(n, b);
            },
            &sum_raw);
    });
    r.has_extra = true;
    r.extra = measure(o, 1, [&] {
        return summing(
            [base = f.raw_str, raw_length, weight, buf = std::array<char, str_max>()](std::size_t k) mutable {
                const std::size_t n = raw_length(base, k);
                shmkit::detail::atomic_copy_from_shared(buf.data(), raw_bytes(base, k), n);
                const char* b = buf.data();
                do_not_optimize(b);
                return weight(n, b);
            },
            &sum_atomic);
    });
    r.has_extra2 = true;
    r.extra2 = measure(o, 1, [&] {
        return summing(
            [base = f.raw_str, raw_length, weight](std::size_t k) {
                const std::string v(raw_bytes(base, k), raw_length(base, k));
                return weight(v.size(), v.data());
            },
            &sum_string);
    });
    const std::int64_t w = weight(s.size(), s.data());
    check("str_pool get (shmkit) sum", sum_shm, (long double)r.shm.per_worker * w);
    check("str_pool get (raw) sum", sum_raw, (long double)r.raw.per_worker * w);
    check("str_pool get (relaxed atomic copy) sum", sum_atomic, (long double)r.extra.per_worker * w);
    check("str_pool get (std::string) sum", sum_string, (long double)r.extra2.per_worker * w);
    return r;
}

/// alloc+free pairs in `procs` forked workers at once, on the pool of
/// capacity 64 (small) or 4096, and on raw owner words of the same number.
/// Every worker starts from the same cursor (shmkit: the parent's,
/// inherited; raw: 0), so the workers contend for the same slots.
row_result row_alloc_free_procs(const options& o, fixture& f, unsigned procs, bool small)
{
    shm_pool& pool = small ? f.small : f.pool;
    owner_word* owners = small ? f.small_owners : f.owners;
    const std::size_t cap = small ? small_capacity : capacity;
    const std::string row = "alloc+free, capacity " + std::to_string(cap) + ", " + std::to_string(procs) + " processes";
    if (procs > cap) throw std::invalid_argument(row + ": more processes than slots");
    const shmkit::pool_stats before = pool.stats();
    f.worker_allocs->store(0);
    row_result r;
    r.shm = measure(o, procs, [&] {
        // In the worker, untimed: the first use of the inherited handle
        // attaches this process to the pool; one checked pair.
        const std::optional<std::size_t> i = pool.try_alloc();
        if (!i || *i >= cap || !pool.free(*i)) f.fail();
        f.worker_allocs->fetch_add(1);
        return [p = &pool, cap, &f] {
            const std::optional<std::size_t> i = p->try_alloc();
            if (SHMKIT_UNLIKELY(!i || *i >= cap || !p->free(*i))) f.fail();
        };
    });
    r.raw = measure(o, procs, [&] {
        return [a = raw_allocator{owners, cap}, &f]() mutable {
            const std::size_t i = a.alloc();
            if (SHMKIT_UNLIKELY(i >= a.cap || !a.free(i))) f.fail();
        };
    });
    check_errors(row, f);
    check_pool_empty(row, pool, before, r.shm.total_ops + f.worker_allocs->load(), owners, cap);
    return r;
}

} // namespace

int main(int argc, char** argv)
{
    const options opt = parse_options(
        argc, argv,
        "bench_pool: shmkit::pool<int64_t> (capacity 4096) and str_pool vs the minimal lock-free slot allocator "
        "on raw atomics (MAP_SHARED) vs boost::interprocess::managed_shared_memory allocate/deallocate");
    print_preamble("bench_pool: operations per second, shmkit::pool<int64_t> of capacity 4096 "
                   "(alloc_n: slots per second; multi-process rows: total of all processes)",
                   opt);

    const std::string np = std::to_string(opt.procs) + " processes";
    const target alloc_rate{60e6, 0};   // alloc+free >= 60 M pairs/s
    const target alloc_vs_bip{0, 10};   // alloc+free >= 10x Boost.Interprocess allocate/deallocate
    const target alloc_n_rate{150e6, 0}; // alloc_n(64)+free_n >= 150 M slots/s
    const target near_raw{0, 0.9};      // get/set/add >= 0.9x the raw atomic

    enum class kind { alloc_free, alloc_n, get, set, add, cas, str_set, str_get, procs_small, procs_large };
    struct row_spec {
        std::string name;
        kind k;
        const target* raw_target; ///< checked on the raw-baseline line
        const target* bip_target; ///< checked on the Boost line
    };
    const row_spec rows[] = {
        {"alloc+free pair, 1 process", kind::alloc_free, &alloc_rate, &alloc_vs_bip},
        {"alloc_n(64)+free_n, slots/s, 1 process", kind::alloc_n, &alloc_n_rate, nullptr},
        {"get, 1 process", kind::get, &near_raw, nullptr},
        {"set, 1 process", kind::set, &near_raw, nullptr},
        {"add, 1 process", kind::add, &near_raw, nullptr},
        {"cas, 1 process", kind::cas, nullptr, nullptr},
        {"str_pool set (48 bytes), 1 process", kind::str_set, nullptr, nullptr},
        {"str_pool get (48 bytes), 1 process", kind::str_get, nullptr, nullptr},
        {"alloc+free pair, capacity 64, " + np, kind::procs_small, nullptr, nullptr},
        {"alloc+free pair, capacity 4096, " + np, kind::procs_large, nullptr, nullptr},
    };

    table tab(std::cout, 44, 38);
    try {
        fixture f;
        // Warm-up, untimed: at least 0.1 s of allocations before the first
        // row, so that the first figure is not taken while the CPU is still
        // raising its clock or the pages are still being faulted in.
        {
            raw_allocator a{f.owners, capacity};
            const std::int64_t warm_end = now_ns() + std::int64_t(std::max(0.1, opt.seconds) * 1e9);
            while (now_ns() < warm_end)
                for (int k = 0; k < 10000; ++k) {
                    const std::optional<std::size_t> i = f.pool.try_alloc();
                    if (!i || !f.pool.free(*i)) f.fail();
                    const std::size_t j = a.alloc();
                    if (j >= capacity || !a.free(j)) f.fail();
                }
            check_errors("warm-up", f);
        }
        tab.print_header();
        for (const row_spec& rs : rows) {
            if (!selected(opt, rs.name)) continue;
            row_result r;
            const std::string* raw_label = &raw_elem_name;
            const std::string* bip_label = &bip_alloc_name;
            const std::string* extra_label = &atomic_copy_name;
            switch (rs.k) {
            case kind::alloc_free:
                r = row_alloc_free(opt, f);
                raw_label = &raw_alloc_name;
                break;
            case kind::alloc_n:
                r = row_alloc_n(opt, f);
                raw_label = &raw_alloc_n_name;
                bip_label = &bip_alloc_n_name;
                break;
            case kind::get: r = row_get(opt, f); break;
            case kind::set: r = row_set(opt, f); break;
            case kind::add: r = row_add(opt, f); break;
            case kind::cas: r = row_cas(opt, f); break;
            case kind::str_set:
                r = row_str_set(opt, f);
                raw_label = &raw_str_set_name;
                break;
            case kind::str_get:
                r = row_str_get(opt, f);
                raw_label = &raw_str_get_name;
                break;
            case kind::procs_small:
                r = row_alloc_free_procs(opt, f, opt.procs, true);
                raw_label = &raw_alloc_name;
                break;
            case kind::procs_large:
                r = row_alloc_free_procs(opt, f, opt.procs, false);
                raw_label = &raw_alloc_name;
                break;
            }
            tab.row(rs.name, r.shm, *raw_label, r.raw, opt, rs.raw_target);
            if (r.has_bip) tab.row("", r.shm, *bip_label, r.bip, opt, rs.bip_target);
            if (r.has_extra) tab.row("", r.shm, *extra_label, r.extra, opt);
            if (r.has_extra2) tab.row("", r.shm, new_string_name, r.extra2, opt);
        }
    }
    catch (const checksum_error& e) {
        std::cerr << "bench_pool: " << e.what() << "\n";
        return 1;
    }
    catch (const std::exception& e) {
        std::cerr << "bench_pool: error: " << e.what() << "\n";
        return 1;
    }
    tab.note("");
    tab.note("checksums: ok (every alloc checked in the loop; pools empty and stats() allocs/frees equal to the\n"
             "operations run after each allocation row; get sums, set/add/cas contents, cas successes and\n"
             "str_pool contents as written)");
    tab.note("targets: alloc+free >= 60M pairs/s and >= 10x boost::interprocess allocate/deallocate;\n"
             "alloc_n(64)+free_n >= 150M slots/s; get/set/add >= 0.9x the raw atomic");
    return tab.finish(opt);
}
