// bench/bench_kv.cpp: shmkit::kv_store against the memory-latency limit of
// a hash-table lookup (a minimal in-process open-addressing table), against
// a boost::unordered_map in Boost.Interprocess shared memory guarded by an
// interprocess_mutex and, on the 10k rows, against Perl's Cache::FastMmap,
// all measured in the same run.
//
// Keys are "key:NNNNNNN" (11 bytes: "key:" and 7 digits, key i for i in
// 0..n-1), values "value-NNNNNNNNNN" (16 bytes, value i for key i). Two key
// counts: 1 000 000 (the index and records are far larger than the caches:
// every lookup is a cache miss or two) and 10 000 (cache-resident).
//
// Rows (one operation = one call):
//   for n = 1M and n = 10k, single process:
//     put, from empty: every run starts from a fresh, empty store (created
//       untimed in the run's set-up, under a name with this process's pid)
//       and puts the n keys once, in key order, so the run includes every
//       growth of the table (shmkit: new table segments; the baselines:
//       their rehashes);
//     get hit, shuffled: gets of the n stored keys in a random order (a
//       fixed permutation, laid out sequentially so the benchmark's own key
//       stream is prefetched and the lookups are what misses the cache);
//     get miss: gets of n absent keys (key n..2n-1), shuffled;
//     erase, shuffled: every run starts from a full store (refilled untimed
//       in the run's set-up when the previous run emptied it) and erases
//       the n keys once, in another random order;
//   --procs processes (2 by default) doing get hits, shuffled, on the 1M
//     store (this row comes after the 1M get-hit row, before the erase
//     row), each through its own handle opened in the worker (untimed),
//     each starting at a different point of the permutation: the total rate
//     of all workers, and its ratio to shmkit's single-process get-hit rate
//     measured in the same run (target for 2 processes: 1.6x; for N: 0.8 N,
//     checked only while N <= the CPUs online). Before its timed loop every
//     shmkit worker gets every key once (untimed, checked), so the figure is
//     the steady state, not the first touch of the table's pages by a new
//     handle. Informational lines: the baselines with the same workers
//     (the in-process table: the copy-on-write copy inherited by fork, page
//     tables included; Boost: the inherited mapping of its segment, whose
//     pages fault in during the first run's first milliseconds).
//
// Gets copy the value out, for shmkit and the baselines alike, into a
// std::string that the loop reuses (shmkit: get(key, out)), so that the
// figure is the lookup and the copy, not a heap allocation per operation.
//
// Runs and iterations: the get rows are calibrated to --time per run as
// usual; their position in the key sequence carries over from one run to
// the next (wrapping around), so that a short run (--quick) does not read
// again the keys the previous run has just brought into the cache. The put and erase
// rows are not calibrated: a run is always exactly one pass over the n
// keys (n operations), since it must start from an empty (put) or full
// (erase) store; --iterations and --time do not apply to them. The 1M
// put/erase rows make --runs runs (with --quick: 1), plus one warm-up of
// n/10 operations; the 10k ones 3 x --runs (a run lasts milliseconds).
//
// Baselines:
//   - "in-process open addressing": the memory-latency limit of one lookup,
//     a table in private memory of this process, written for this benchmark
//     and specialised to it: linear probing, power-of-two capacity (at most
//     3/4 full; doubled when a put would exceed that, from 16 slots), 32-byte
//     slots holding the key inline (at most 15 bytes, zero-padded, its length
//     in the 16th byte) and the value inline (exactly 16 bytes), a 64-bit
//     multiply-fold hash of the 16 key bytes, erase by backward shifting (no
//     tombstones). No lock, no crash safety, no sharing between processes
//     (the forked workers of the multi-process line read their copy-on-write
//     inherited copy). Slot arrays are fresh anonymous mappings (page faults
//     included, as for shmkit's fresh segments).
//   - "boost unordered_map + mutex (shm)": boost::unordered_map<shm_string,
//     shm_string> with boost::interprocess::allocator, in a
//     managed_shared_memory segment sized generously (1M keys: 512 MiB,
//     the map uses about 90 MiB; 10k keys: 32 MiB, the map uses about
//     1 MiB; Boost 1.81 reserves the whole segment with posix_fallocate, so
//     it is allocated in /dev/shm while it exists, and its pages are never
//     allocated by a timed operation) named
//     shmkit_bench_kv_bip_<pid>_<n>, created afresh for every put run and
//     every refill (untimed), removed at the end and on failure; every
//     operation takes an interprocess_mutex in the segment. shm_string is
//     boost::container::basic_string with the segment allocator (keys and
//     values fit its internal buffer: no allocation per string); the hash
//     is boost::hash_range over the bytes, lookups and erases are
//     heterogeneous (std::string_view, no key object built), put is
//     try_emplace (assign on an existing key).
//   - "Cache::FastMmap (perl)", on the 10k rows only (put, get hit, get
//     miss, erase; not the multi-process row): a perl process (perl -e, the
//     script below) per row, started with the row's keys and values (made
//     as make_key/make_value make them) and, for the get and erase rows, the
//     row's key sequence (the same permutations, sent on its stdin); it times
//     $cache->set / get / remove with Time::HiRes (CLOCK_MONOTONIC), one
//     "go N STAMP" per timed run, so the calibration, --runs, the median
//     and the disturbed-run rule are the harness's (bench/perl_driver.hpp,
//     as bench_share's IPC::ShareLite). Cache::FastMmap->new(share_file =>
//     /dev/shm/shmkit_bench_kv_fmm_<pid>_<n> (removed before, at the end
//     and on failure), init_file => 1, num_pages => 89, page_size => 64 KiB
//     (5.6 MiB, about 7 KiB of entries per page: it is a fixed-size cache
//     that evicts when a page is full, and is sized so that every key
//     fits), raw_values => 1, serializer => '', no compressor, expire_time
//     => 0); it locks a page per operation (fcntl). Put: a fresh cache file
//     per run (untimed), keys in key order; gets: from a cursor that carries
//     over; erase: refilled (untimed) after a run that emptied it. Its
//     checks (exit status 1 on a mismatch): every get hit returns the key's
//     value, every miss undef, every remove true, the key count (get_keys)
//     after every put and erase run; at the end of the put and get rows
//     every key is still there with its value (nothing evicted), of the
//     erase row none. Not on the 1M rows: at 1M keys perl makes about
//     130-170k FastMmap operations per second here, a pass takes ~7 s,
//     and the 1M put and erase rows (a pass per run, plus refills) would
//     take well over 20 s each. No targets (information only). Without perl
//     or the module (Debian: libcache-fastmmap-perl) its lines read
//     "skipped (perl module Cache::FastMmap not installed)".
// The shmkit store is named shmkit_bench_kv_<pid>_<n>, removed with
// shmkit::kv_store::remove before use, at the end and on failure.
//
// Targets (checked on the lines they concern; --strict: exit status 2 when
// one is missed): get hit at 1M keys >= 0.8x the in-process table and >= 3x
// Boost; get hit at 10k keys >= 20 M/s; put (1M and 10k keys) >= 3 M/s and
// >= 3x Boost; 2-process get hits >= 1.6x shmkit's 1-process rate.
//
// Checksums (exit status 1 on a mismatch): every get hit returns exactly the
// key's value (a miss or a wrong value counts a mismatch, in the timed loop,
// the same way for all three); every get miss returns false; every erase
// returns true; after every put run the store holds as many keys as were
// put (size()), after every erase run as many as remain; after each put
// row every key of the last run's store reads back its value, after each
// erase row none is found; the shmkit workers of the multi-process row
// check every value in their untimed pass; shmkit's check() validates the
// store after each put and erase row.

#include "harness.hpp"
#include "perl_driver.hpp"

#include <shmkit/config.hpp>
#include <shmkit/kv_store.hpp>

#include <boost/container/string.hpp>
#include <boost/container_hash/hash.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/unordered_map.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace {

namespace bip = boost::interprocess;
using namespace shmkit_bench;

constexpr std::size_t big_n = 1000000;
constexpr std::size_t small_n = 10000;
constexpr std::size_t key_len = 11;   // "key:" + 7 digits
constexpr std::size_t value_len = 16; // "value-" + 10 digits
/// The Boost segment for n keys: generous (see the header comment).
constexpr std::size_t bip_segment_size(std::size_t n)
{
    return n >= big_n ? std::size_t(512) << 20 : std::size_t(32) << 20;
}

using error_counter = std::atomic<std::uint64_t>;

struct checksum_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------- the keys

/// A key's bytes, zero-padded to 16.
struct alignas(16) key16 {
    char b[16];
};
/// A value's 16 bytes.
struct alignas(16) val16 {
    char b[16];
};
/// A key and its value, side by side: the stream of the get-hit rows.
struct alignas(32) hit_entry {
    key16 key;
    val16 value;
};

inline std::string_view key_view(const key16& k) noexcept { return {k.b, key_len}; }
inline std::string_view val_view(const val16& v) noexcept { return {v.b, value_len}; }

key16 make_key(std::size_t i)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "key:%07zu", i);
    key16 k{};
    std::memcpy(k.b, buf, key_len);
    return k;
}

val16 make_value(std::size_t i)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "value-%010zu", i);
    val16 v{};
    std::memcpy(v.b, buf, value_len);
    return v;
}

/// The keys of one key count: in key order (put), in two random orders
/// (get hit, erase), and n absent keys in random order (get miss). Each
/// sequence is read sequentially by the timed loops.
struct keyset {
    std::size_t n;
    std::vector<key16> keys;     ///< key i, i = 0..n-1
    std::vector<val16> values;   ///< value i
    std::vector<hit_entry> hits; ///< a permutation of (key, value)
    std::vector<key16> misses;   ///< keys n..2n-1, permuted
    std::vector<key16> erases;   ///< another permutation of the keys

    explicit keyset(std::size_t count) : n(count)
    {
        if (2 * n > 10000000) throw std::invalid_argument("keyset: 7 digits");
        keys.reserve(n);
        values.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            keys.push_back(make_key(i));
            values.push_back(make_value(i));
        }
        std::mt19937_64 rng(0x6b765f62656e6368ull + n);
        std::vector<std::size_t> perm(n);
        for (std::size_t i = 0; i < n; ++i) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        hits.reserve(n);
        for (std::size_t i : perm) hits.push_back({keys[i], values[i]});
        std::shuffle(perm.begin(), perm.end(), rng);
        erases.reserve(n);
        for (std::size_t i : perm) erases.push_back(keys[i]);
        std::shuffle(perm.begin(), perm.end(), rng);
        misses.reserve(n);
        for (std::size_t i : perm) misses.push_back(make_key(n + i));
    }
};

// ------------------------------------------- baseline 1: in-process table

/// The memory-latency baseline (see the header comment): linear probing,
/// keys and values inline in 32-byte slots, power-of-two capacity.
class flat_table {
public:
    bool full = false; ///< holds exactly the n keys of its keyset (benchmark bookkeeping)

    flat_table() { alloc(min_capacity); }
    ~flat_table() { release(); }
    flat_table(const flat_table&) = delete;
    flat_table& operator=(const flat_table&) = delete;

    /// Empty, at the minimum capacity (fresh memory).
    void recreate()
    {
        release();
        alloc(min_capacity);
    }

    void put(std::string_view k, std::string_view v)
    {
        if (v.size() != value_len) throw std::length_error("flat_table: values are exactly 16 bytes");
        const packed p = pack(k);
        if ((size_ + 1) * 4 > (mask_ + 1) * 3) grow();
        std::size_t i = p.h & mask_;
        for (;; i = (i + 1) & mask_) {
            slot& s = slots_[i];
            if (s.key.b[15] == 0) {
                std::memcpy(s.key.b, &p.w0, 8);
                std::memcpy(s.key.b + 8, &p.w1, 8);
                ++size_;
                break;
            }
            if (s.matches(p)) break;
        }
        std::memcpy(slots_[i].value.b, v.data(), value_len);
    }

    bool get(std::string_view k, std::string& out) const
    {
        const packed p = pack(k);
        for (std::size_t i = p.h & mask_;; i = (i + 1) & mask_) {
            const slot& s = slots_[i];
            if (s.matches(p)) {
                out.assign(s.value.b, value_len);
                return true;
            }
            if (s.key.b[15] == 0) return false;
        }
    }

    bool erase(std::string_view k)
    {
        const packed p = pack(k);
        std::size_t i = p.h & mask_;
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].matches(p)) break;
            if (slots_[i].key.b[15] == 0) return false;
        }
        // Backward shift: move later members of the cluster into the hole
        // when the hole lies between their home slot and where they are.
        for (std::size_t j = i;;) {
            j = (j + 1) & mask_;
            const slot& sj = slots_[j];
            if (sj.key.b[15] == 0) break;
            const std::size_t home = sj.hash() & mask_;
            if (((j - home) & mask_) >= ((j - i) & mask_)) {
                slots_[i] = sj;
                i = j;
            }
        }
        slots_[i] = slot{};
        --size_;
        return true;
    }

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return mask_ + 1; }

private:
    static constexpr std::size_t min_capacity = 16;

    static std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept
    {
        const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
        return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
    }
    static std::uint64_t hash_words(std::uint64_t w0, std::uint64_t w1) noexcept
    {
        return mix(w0 ^ 0xa0761d6478bd642full, w1 ^ 0xe7037ed1a0b428dbull);
    }

    /// A key as the two words of its slot image, and its hash.
    struct packed {
        std::uint64_t w0, w1, h;
    };
    static packed pack(std::string_view k)
    {
        if (k.empty() || k.size() > 15) throw std::length_error("flat_table: keys are 1..15 bytes");
        char b[16] = {};
        std::memcpy(b, k.data(), k.size());
        b[15] = static_cast<char>(k.size());
        packed p;
        std::memcpy(&p.w0, b, 8);
        std::memcpy(&p.w1, b + 8, 8);
        p.h = hash_words(p.w0, p.w1);
        return p;
    }

    struct alignas(32) slot {
        key16 key;   ///< b[15]: key length; 0: empty slot
        val16 value;
        bool matches(const packed& p) const noexcept
        {
            std::uint64_t w0, w1;
            std::memcpy(&w0, key.b, 8);
            std::memcpy(&w1, key.b + 8, 8);
            return w0 == p.w0 && w1 == p.w1;
        }
        std::uint64_t hash() const noexcept
        {
            std::uint64_t w0, w1;
            std::memcpy(&w0, key.b, 8);
            std::memcpy(&w1, key.b + 8, 8);
            return hash_words(w0, w1);
        }
    };
    static_assert(sizeof(slot) == 32);

    void alloc(std::size_t cap)
    {
        void* p = ::mmap(nullptr, cap * sizeof(slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("flat_table: mmap");
        slots_ = static_cast<slot*>(p); // zero-filled: every slot empty
        mask_ = cap - 1;
        size_ = 0;
    }
    void release() noexcept
    {
        if (slots_) ::munmap(slots_, (mask_ + 1) * sizeof(slot));
        slots_ = nullptr;
    }
    void grow()
    {
        slot* const old = slots_;
        const std::size_t old_cap = mask_ + 1, n = size_;
        slots_ = nullptr;
        try {
            alloc(old_cap * 2);
        }
        catch (...) {
            slots_ = old;
            mask_ = old_cap - 1;
            throw;
        }
        for (std::size_t k = 0; k < old_cap; ++k) {
            const slot& s = old[k];
            if (s.key.b[15] == 0) continue;
            std::size_t i = s.hash() & mask_;
            while (slots_[i].key.b[15] != 0) i = (i + 1) & mask_;
            slots_[i] = s;
        }
        size_ = n;
        ::munmap(old, old_cap * sizeof(slot));
    }

    slot* slots_ = nullptr;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

// ---------------------------------------- baseline 2: Boost.Interprocess

using segment_manager = bip::managed_shared_memory::segment_manager;
using char_alloc = bip::allocator<char, segment_manager>;
using shm_string = boost::container::basic_string<char, std::char_traits<char>, char_alloc>;

inline std::string_view view(std::string_view s) noexcept { return s; }
inline std::string_view view(const shm_string& s) noexcept { return {s.data(), s.size()}; }

/// boost::hash_range over the bytes; transparent (string_view lookups).
struct bytes_hash {
    using is_transparent = void;
    template <class S>
    std::size_t operator()(const S& s) const noexcept
    {
        const std::string_view v = view(s);
        return boost::hash_range(v.data(), v.data() + v.size());
    }
};
struct bytes_equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept
    {
        return view(a) == view(b);
    }
};

using pair_alloc = bip::allocator<std::pair<const shm_string, shm_string>, segment_manager>;
using bip_map = boost::unordered_map<shm_string, shm_string, bytes_hash, bytes_equal, pair_alloc>;

/// The Boost baseline: a managed segment named `name` holding a mutex and
/// the map. The segment is removed before it is created (a leftover of a
/// killed run with our pid) and when this object is destroyed, also during
/// unwinding.
class bip_store {
public:
    bool full = false;

    bip_store(std::string name, std::size_t size) : name_(std::move(name)), size_(size)
    {
        bip::shared_memory_object::remove(name_.c_str());
    }
    ~bip_store()
    {
        seg_.reset();
        bip::shared_memory_object::remove(name_.c_str());
    }
    bip_store(const bip_store&) = delete;
    bip_store& operator=(const bip_store&) = delete;

    /// A fresh segment with an empty map.
    void recreate()
    {
        mx_ = nullptr;
        map_ = nullptr;
        seg_.reset();
        bip::shared_memory_object::remove(name_.c_str());
        seg_.emplace(bip::create_only, name_.c_str(), size_);
        mx_ = seg_->construct<bip::interprocess_mutex>(bip::anonymous_instance)();
        map_ = seg_->construct<bip_map>(bip::anonymous_instance)(std::size_t(0), bytes_hash(), bytes_equal(),
                                                                 pair_alloc(seg_->get_segment_manager()));
    }

    void put(std::string_view k, std::string_view v)
    {
        bip::scoped_lock<bip::interprocess_mutex> g(*mx_);
        const char_alloc a(seg_->get_segment_manager());
        auto r = map_->try_emplace(shm_string(k.data(), k.size(), a), v.data(), v.size(), a);
        if (!r.second) r.first->second.assign(v.data(), v.data() + v.size());
    }
    bool get(std::string_view k, std::string& out) const
    {
        bip::scoped_lock<bip::interprocess_mutex> g(*mx_);
        const auto it = map_->find(k);
        if (it == map_->end()) return false;
        out.assign(it->second.data(), it->second.size());
        return true;
    }
    bool erase(std::string_view k)
    {
        bip::scoped_lock<bip::interprocess_mutex> g(*mx_);
        return map_->erase(k) != 0;
    }
    std::size_t size() const
    {
        bip::scoped_lock<bip::interprocess_mutex> g(*mx_);
        return map_->size();
    }
    /// Bytes of the segment in use.
    std::size_t bytes_used() const { return seg_->get_size() - seg_->get_free_memory(); }

private:
    std::string name_;
    std::size_t size_;
    std::optional<bip::managed_shared_memory> seg_;
    bip::interprocess_mutex* mx_ = nullptr;
    bip_map* map_ = nullptr;
};

// ------------------------------------------------------------------ shmkit

/// The shmkit store under test, recreated empty on demand; its name is
/// removed before use and when this object is destroyed (also during
/// unwinding).
class shm_store {
public:
    bool full = false;

    explicit shm_store(std::string name) : name_(std::move(name)) { remove_quietly(); }
    ~shm_store()
    {
        s_.reset();
        remove_quietly();
    }
    shm_store(const shm_store&) = delete;
    shm_store& operator=(const shm_store&) = delete;

    /// A fresh, empty store (the old one's names removed first).
    void recreate()
    {
        s_.reset();
        shmkit::kv_store::remove(name_);
        s_.emplace(name_, shmkit::exclusive);
    }

    void put(std::string_view k, std::string_view v) { s_->put(k, v); }
    bool get(std::string_view k, std::string& out) const { return s_->get(k, out); }
    bool erase(std::string_view k) { return s_->erase(k); }
    std::size_t size() const { return s_->size(); }

    const std::string& name() const noexcept { return name_; }
    shmkit::kv_store& store()
    {
        if (!s_) recreate();
        return *s_;
    }

private:
    void remove_quietly() noexcept
    {
        try {
            shmkit::kv_store::remove(name_);
        }
        catch (...) {
        }
    }
    std::string name_;
    std::optional<shmkit::kv_store> s_;
};

// ------------------------------------------------------------ loop bodies
//
// Bodies are classes (not lambdas) so that their destructors, which run
// after the timed loop, can hand over what the loop counted. They are
// returned as prvalues and never copied. P is a pointer to the store (or,
// in a forked worker, the unique_ptr owning the worker's own handle).

/// put(key i, value i), i = 0, 1, ... (wrapping at n). Afterwards the store
/// must hold min(puts, n) keys.
template <class S>
class put_body {
public:
    put_body(S& s, const keyset& ks, error_counter& e) : s_(&s), ks_(&ks), e_(&e) {}
    put_body(const put_body&) = delete;
    put_body& operator=(const put_body&) = delete;
    ~put_body()
    {
        try {
            if (s_->size() != std::min<std::uint64_t>(done_, ks_->n)) e_->fetch_add(1);
        }
        catch (...) {
            e_->fetch_add(1);
        }
        s_->full = done_ >= ks_->n;
    }
    void operator()()
    {
        s_->put(key_view(ks_->keys[i_]), val_view(ks_->values[i_]));
        if (++i_ == ks_->n) i_ = 0;
        ++done_;
    }

private:
    S* s_;
    const keyset* ks_;
    error_counter* e_;
    std::size_t i_ = 0;
    std::uint64_t done_ = 0;
};

/// A position in a key sequence that survives the run (in shared memory,
/// so that a forked worker's next run also goes on where it stopped): every
/// run reads keys the previous runs did not just read, so that a short run
/// does not find its keys' slots and records still in the cache.
using cursor = std::atomic<std::uint64_t>;

/// get of the hit sequence from *cur, wrapping; a miss or a wrong value
/// counts a mismatch.
template <class P>
class get_hit_body {
public:
    get_hit_body(P s, const keyset& ks, cursor& cur, error_counter& e)
        : s_(std::move(s)), seq_(ks.hits.data()), n_(ks.n), i_(cur.load() % ks.n), cur_(&cur), e_(&e)
    {
        out_.reserve(64);
    }
    get_hit_body(const get_hit_body&) = delete;
    get_hit_body& operator=(const get_hit_body&) = delete;
    ~get_hit_body()
    {
        cur_->store(i_);
        e_->fetch_add(bad_);
    }
    void operator()()
    {
        const hit_entry& h = seq_[i_];
        if (SHMKIT_UNLIKELY(!s_->get(key_view(h.key), out_) || out_.size() != value_len ||
                            std::memcmp(out_.data(), h.value.b, value_len) != 0))
            ++bad_;
        if (++i_ == n_) i_ = 0;
    }

private:
    P s_;
    const hit_entry* seq_;
    std::size_t n_, i_;
    cursor* cur_;
    error_counter* e_;
    std::string out_;
    std::uint64_t bad_ = 0;
};

/// get of the absent keys from *cur, wrapping; a get that finds one counts
/// a mismatch.
template <class P>
class get_miss_body {
public:
    get_miss_body(P s, const keyset& ks, cursor& cur, error_counter& e)
        : s_(std::move(s)), seq_(ks.misses.data()), n_(ks.n), i_(cur.load() % ks.n), cur_(&cur), e_(&e)
    {
        out_.reserve(64);
    }
    get_miss_body(const get_miss_body&) = delete;
    get_miss_body& operator=(const get_miss_body&) = delete;
    ~get_miss_body()
    {
        cur_->store(i_);
        e_->fetch_add(bad_);
    }
    void operator()()
    {
        if (SHMKIT_UNLIKELY(s_->get(key_view(seq_[i_]), out_))) ++bad_;
        if (++i_ == n_) i_ = 0;
    }

private:
    P s_;
    const key16* seq_;
    std::size_t n_, i_;
    cursor* cur_;
    error_counter* e_;
    std::string out_;
    std::uint64_t bad_ = 0;
};

/// erase of the erase sequence; each must succeed (a run is at most n
/// erases, from a full store). Afterwards the store holds n - erases keys.
template <class S>
class erase_body {
public:
    erase_body(S& s, const keyset& ks, error_counter& e) : s_(&s), ks_(&ks), e_(&e) {}
    erase_body(const erase_body&) = delete;
    erase_body& operator=(const erase_body&) = delete;
    ~erase_body()
    {
        try {
            if (s_->size() != ks_->n - std::min<std::uint64_t>(i_, ks_->n)) ++bad_;
        }
        catch (...) {
            ++bad_;
        }
        e_->fetch_add(bad_);
        s_->full = i_ == 0;
    }
    void operator()()
    {
        if (SHMKIT_UNLIKELY(i_ >= ks_->n || !s_->erase(key_view(ks_->erases[i_])))) ++bad_;
        ++i_;
    }

private:
    S* s_;
    const keyset* ks_;
    error_counter* e_;
    std::uint64_t i_ = 0, bad_ = 0;
};

// ------------------------------------------------------------- fixture

/// The three stores of one key count.
struct subjects {
    const keyset& ks;
    shm_store shm;
    flat_table flat;
    bip_store bip;

    explicit subjects(const keyset& k)
        : ks(k), shm("shmkit_bench_kv_" + std::to_string(::getpid()) + "_" + std::to_string(k.n)),
          bip("shmkit_bench_kv_bip_" + std::to_string(::getpid()) + "_" + std::to_string(k.n), bip_segment_size(k.n))
    {
    }
};

struct fixture {
    explicit fixture(unsigned procs) : cursor_map((procs + 1) * 64), n_cursors(procs + 1)
    {
        for (unsigned k = 0; k < n_cursors; ++k) new (cursor_map.at<cursor>(k * 64)) cursor(0);
    }

    /// Mismatches counted by the timed loops (any process).
    shared_object<error_counter> errors{0};
    shared_object<std::atomic<std::uint64_t>> worker_counter{0};
    /// Cursor 0: the single-process get rows; 1 + w: worker w of a
    /// multi-process row. One cache line each.
    shared_mapping cursor_map;
    unsigned n_cursors;

    cursor& cur(unsigned k) { return *cursor_map.at<cursor>(std::size_t(k) * 64); }
    /// Cursor 0 set to 0, cursors of workers 0..procs-1 spread over the n
    /// keys (worker w starts at w * n / procs): at the start of a figure.
    void reset_cursors(std::size_t n, unsigned procs)
    {
        cur(0).store(0);
        for (unsigned w = 0; w < procs && w + 1 < n_cursors; ++w) cur(1 + w).store(std::uint64_t(w) * n / procs);
    }

    /// Worker number (0..procs-1) of a forked worker, distinct within one run.
    unsigned worker_number(unsigned procs) { return unsigned(worker_counter->fetch_add(1) % procs); }
};

/// No timed loop counted a mismatch since the last call; resets the count.
void check_errors(fixture& f, const std::string& what)
{
    const std::uint64_t e = f.errors->exchange(0);
    if (e) throw checksum_error("checksum mismatch for " + what + ": " + std::to_string(e) + " mismatches");
}

/// Fresh store with the n keys, untimed.
template <class S>
void fill(S& s, const keyset& ks)
{
    s.full = false;
    s.recreate();
    for (std::size_t i = 0; i < ks.n; ++i) s.put(key_view(ks.keys[i]), val_view(ks.values[i]));
    s.full = true;
}

template <class S>
void ensure_full(S& s, const keyset& ks)
{
    if (!s.full) fill(s, ks);
}

/// The store holds exactly the n keys, each with its value.
template <class S>
void verify_full(const S& s, const keyset& ks, const std::string& what)
{
    if (s.size() != ks.n)
        throw checksum_error(what + ": size() " + std::to_string(s.size()) + ", expected " + std::to_string(ks.n));
    std::string out;
    for (std::size_t i = 0; i < ks.n; ++i)
        if (!s.get(key_view(ks.keys[i]), out) || out != val_view(ks.values[i]))
            throw checksum_error(what + ": key " + std::string(key_view(ks.keys[i])) + " reads back " +
                                 (s.get(key_view(ks.keys[i]), out) ? "\"" + out + "\"" : "nothing") +
                                 ", expected " + std::string(val_view(ks.values[i])));
}

/// The store holds none of the n keys.
template <class S>
void verify_empty(const S& s, const keyset& ks, const std::string& what)
{
    if (s.size() != 0) throw checksum_error(what + ": size() " + std::to_string(s.size()) + ", expected 0");
    std::string out;
    for (std::size_t i = 0; i < ks.n; ++i)
        if (s.get(key_view(ks.keys[i]), out))
            throw checksum_error(what + ": erased key " + std::string(key_view(ks.keys[i])) + " still found");
}

void check_shmkit(shm_store& s, const std::string& what)
{
    std::string why;
    if (!s.store().check(&why)) throw checksum_error(what + ": kv_store::check() failed: " + why);
}

/// The options of a row that is not calibrated: one pass over the n keys
/// per run.
options one_pass(const options& o, std::size_t n)
{
    options f = o;
    f.iterations = n;
    if (n < big_n) f.runs = 3 * o.runs;
    else if (o.quick) f.runs = 1;
    return f;
}

struct row_result {
    result shm, flat, bip;
};

// ------------------------------------- baseline 3: Cache::FastMmap (perl)

/// Cache::FastMmap's geometry for n keys: every key must fit (it is a
/// cache and evicts when a page is full). An entry takes about 60 bytes of
/// its page (header, key, value); 10k keys: 89 pages of 64 KiB (5.6 MiB,
/// about 112 entries of 7 KiB per page); 1M keys: 1021 pages of 256 KiB
/// (about 980 entries, 60 KiB, per page).
struct fastmmap_geometry {
    std::size_t num_pages, page_size;
};
fastmmap_geometry fastmmap_size(std::size_t n)
{
    return n <= small_n ? fastmmap_geometry{89, 64 << 10} : fastmmap_geometry{1021, 256 << 10};
}

/// Arguments: operation (put, hit, miss, erase), n, share file, num_pages,
/// page_size. For hit, miss and erase, the key numbers of the sequence
/// follow on stdin ("seq N" and N lines), then the cache is filled
/// (untimed). Protocol: prints "ready"; then per line on stdin "go N
/// STAMP": one timed run of N operations, answered "done T0 T1
/// RUN_DELAY_NS BAD" (put: a fresh cache file first, untimed, then key i
/// for i = 0, 1, ... wrapping at n; erase: refilled first, untimed, when a
/// run has emptied it; hit and miss: from a cursor that carries over from
/// run to run, wrapping; BAD: gets that missed or returned another value,
/// misses that found something, removes that found nothing, and 1 if the
/// key count after a put or erase run is not what it must be); "check
/// full" / "check empty": whether every key is present with its value
/// (and no other) / none is, answered "checked BAD"; "exit" or EOF: drops
/// the cache (its file is unlinked), prints "bye".
const char* const fastmmap_script = R"PERL(
use strict;
use warnings;
use Cache::FastMmap;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($op, $n, $file, $num_pages, $page_size) = @ARGV;
my @keys = map { sprintf('key:%07d', $_) } 0 .. $n - 1;
my @values = map { sprintf('value-%010d', $_) } 0 .. $n - 1;
my (@seq_keys, @seq_values);
if ($op ne 'put') {
    my ($word, $count) = split ' ', (scalar(<STDIN>) // '');
    die "bench_kv perl: expected 'seq $n'\n" unless defined $count && $word eq 'seq' && $count == $n;
    for (1 .. $count) {
        my $i = <STDIN>;
        die "bench_kv perl: sequence cut short\n" unless defined $i;
        chomp $i;
        push @seq_keys, sprintf('key:%07d', $i);
        push @seq_values, $i < $n ? $values[$i] : undef;
    }
}

my $cache;
my $full = 0;

sub fresh {
    undef $cache; # unlinks the old file (unlink_on_exit)
    unlink $file;
    $cache = Cache::FastMmap->new(share_file => $file, init_file => 1, unlink_on_exit => 1,
                                  num_pages => $num_pages, page_size => $page_size, raw_values => 1,
                                  serializer => '', compressor => '', expire_time => 0)
        or die "Cache::FastMmap->new($file): $!\n";
    $full = 0;
}

sub fill {
    fresh();
    $cache->set($keys[$_], $values[$_]) for 0 .. $n - 1;
    $full = 1;
}

sub key_count { my @k = $cache->get_keys(0); return scalar @k; }

sub run_delay {
    open(my $f, '<', "/proc/$$/schedstat") or return -1;
    my @f = split ' ', (scalar(<$f>) // '');
    return @f >= 2 ? $f[1] : -1;
}

fill() if $op ne 'put';
$| = 1;
print "ready\n";
my $cur = 0;
while (my $line = <STDIN>) {
    my ($cmd, $count) = split ' ', $line;
    last if $cmd eq 'exit';
    if ($cmd eq 'check') {
        my $bad = 0;
        if ($count eq 'full') {
            for my $i (0 .. $n - 1) {
                my $v = $cache->get($keys[$i]);
                ++$bad unless defined $v && $v eq $values[$i];
            }
            $bad += key_count() != $n;
        }
        else {
            for my $i (0 .. $n - 1) { ++$bad if defined $cache->get($keys[$i]); }
            $bad += key_count() != 0;
        }
        print "checked $bad\n";
        next;
    }
    die "bench_kv perl: bad command '$line'\n" unless $cmd eq 'go' && $count > 0;
    my $bad = 0;
    my ($d0, $t0, $t1, $d1);
    if ($op eq 'put') {
        fresh();
        my $i = 0;
        $d0 = run_delay();
        $t0 = clock_gettime(CLOCK_MONOTONIC);
        for (1 .. $count) {
            $cache->set($keys[$i], $values[$i]);
            $i = 0 if ++$i == $n;
        }
        $t1 = clock_gettime(CLOCK_MONOTONIC);
        $d1 = run_delay();
        $bad += key_count() != ($count < $n ? $count : $n);
        $full = $count >= $n;
    }
    elsif ($op eq 'hit') {
        my $i = $cur;
        $d0 = run_delay();
        $t0 = clock_gettime(CLOCK_MONOTONIC);
        for (1 .. $count) {
            my $v = $cache->get($seq_keys[$i]);
            ++$bad unless defined $v && $v eq $seq_values[$i];
            $i = 0 if ++$i == $n;
        }
        $t1 = clock_gettime(CLOCK_MONOTONIC);
        $d1 = run_delay();
        $cur = $i;
    }
    elsif ($op eq 'miss') {
        my $i = $cur;
        $d0 = run_delay();
        $t0 = clock_gettime(CLOCK_MONOTONIC);
        for (1 .. $count) {
            ++$bad if defined $cache->get($seq_keys[$i]);
            $i = 0 if ++$i == $n;
        }
        $t1 = clock_gettime(CLOCK_MONOTONIC);
        $d1 = run_delay();
        $cur = $i;
    }
    elsif ($op eq 'erase') {
        fill() unless $full;
        $d0 = run_delay();
        $t0 = clock_gettime(CLOCK_MONOTONIC);
        for my $j (0 .. $count - 1) {
            ++$bad unless $j < $n && $cache->remove($seq_keys[$j]);
        }
        $t1 = clock_gettime(CLOCK_MONOTONIC);
        $d1 = run_delay();
        $bad += key_count() != ($count < $n ? $n - $count : 0);
        $full = 0;
    }
    else {
        die "bench_kv perl: unknown operation '$op'\n";
    }
    printf("done %.9f %.9f %d %d\n", $t0, $t1, ($d0 < 0 || $d1 < 0) ? -1 : $d1 - $d0, $bad);
}
undef $cache;
print "bye\n";
)PERL";

enum class fastmmap_op { put, hit, miss, erase };

const char* op_word(fastmmap_op op)
{
    switch (op) {
    case fastmmap_op::put: return "put";
    case fastmmap_op::hit: return "hit";
    case fastmmap_op::miss: return "miss";
    case fastmmap_op::erase: return "erase";
    }
    return "?";
}

/// A key's number (its 7 digits).
std::size_t key_number(const key16& k) { return std::strtoul(k.b + 4, nullptr, 10); }

/// One perl process with one Cache::FastMmap for one row. Its share file,
/// /dev/shm/shmkit_bench_kv_fmm_<pid>_<n>, is removed before the process
/// starts (a leftover of a killed run with our pid) and after it is gone
/// (members are destroyed in reverse order), also on failure.
class fastmmap_session {
public:
    fastmmap_session(const options& o, const keyset& ks, fastmmap_op op)
        : opt_(o), file_("/dev/shm/shmkit_bench_kv_fmm_" + std::to_string(::getpid()) + "_" + std::to_string(ks.n))
    {
        const fastmmap_geometry g = fastmmap_size(ks.n);
        const std::vector<std::string> args = {"perl", "-e", fastmmap_script, "--", op_word(op),
                                               std::to_string(ks.n), file_.path, std::to_string(g.num_pages),
                                               std::to_string(g.page_size)};
        spawn_perl(group_, p_, args, -1, "bench_kv");
        p_.name = "perl (Cache::FastMmap) " + std::string(op_word(op)) + ", pid " + std::to_string(p_.pid);
        if (op != fastmmap_op::put) {
            std::string seq = "seq " + std::to_string(ks.n) + "\n";
            for (std::size_t i = 0; i < ks.n; ++i) {
                const key16& k = op == fastmmap_op::hit    ? ks.hits[i].key
                                 : op == fastmmap_op::miss ? ks.misses[i]
                                                           : ks.erases[i];
                seq += std::to_string(key_number(k)) + "\n";
            }
            p_.send(seq);
        }
        expect("ready");
    }

    /// One timed run of n operations; adds the perl side's mismatches to `bad`.
    timing run(std::uint64_t n, std::uint64_t stamp, std::uint64_t& bad)
    {
        p_.send("go " + std::to_string(n) + " " + std::to_string(stamp) + "\n");
        const std::string line = p_.reader.read_line(deadline(), p_.name);
        double a = 0, b = 0;
        long long delay = 0, wrong = 0;
        if (std::sscanf(line.c_str(), "done %lf %lf %lld %lld", &a, &b, &delay, &wrong) != 4)
            throw std::runtime_error(p_.name + ": unexpected answer '" + line + "'");
        bad += std::uint64_t(wrong);
        timing t{n, b - a, -1};
        if (delay >= 0 && t.seconds > 0) t.preempted = double(delay) * 1e-9 / t.seconds;
        return t;
    }

    /// Keys found wrong by "check full" (every key with its value) or
    /// "check empty" (none).
    std::uint64_t check(bool full)
    {
        p_.send(std::string("check ") + (full ? "full" : "empty") + "\n");
        const std::string line = p_.reader.read_line(deadline(), p_.name);
        unsigned long long wrong = 0;
        if (std::sscanf(line.c_str(), "checked %llu", &wrong) != 1)
            throw std::runtime_error(p_.name + ": unexpected answer '" + line + "'");
        return wrong;
    }

    void close()
    {
        p_.send("exit\n");
        expect("bye");
        group_.wait_all(opt_.timeout_s);
    }

private:
    struct file_remover {
        std::string path;
        explicit file_remover(std::string p) : path(std::move(p)) { ::unlink(path.c_str()); }
        ~file_remover() { ::unlink(path.c_str()); }
    };

    std::int64_t deadline() const { return now_ns() + std::int64_t(opt_.timeout_s) * 1000000000; }

    void expect(const std::string& word)
    {
        const std::string line = p_.reader.read_line(deadline(), p_.name);
        if (line != word) throw std::runtime_error(p_.name + ": expected '" + word + "', got '" + line + "'");
    }

    const options& opt_;
    file_remover file_; // first: removed after the process is reaped
    worker_group group_;
    perl_process p_;
};

/// One figure of the Cache::FastMmap baseline: put and erase one pass over
/// the keys per run (as one_pass()), gets calibrated; afterwards every key
/// must be in the cache with its value (put, hit, miss: nothing evicted) or
/// none (erase).
result measure_fastmmap(const options& o, const keyset& ks, fastmmap_op op)
{
    const bool pass = op == fastmmap_op::put || op == fastmmap_op::erase;
    const options fo = pass ? one_pass(o, ks.n) : o;
    fastmmap_session session(o, ks, op);
    std::uint64_t stamp = 0, bad = 0;
    const result r = measure_external(fo, [&](std::uint64_t n) { return session.run(n, ++stamp, bad); });
    const std::uint64_t wrong = session.check(op != fastmmap_op::erase);
    session.close();
    const std::string what = std::string("checksum mismatch for Cache::FastMmap ") + op_word(op) + ", " +
                             std::to_string(ks.n) + " keys: ";
    if (bad) throw checksum_error(what + std::to_string(bad) + " mismatches in the timed runs");
    if (wrong)
        throw checksum_error(what + std::to_string(wrong) +
                             (op == fastmmap_op::erase ? " erased keys still found at the end"
                                                       : " keys missing or wrong at the end (evicted?)"));
    return r;
}

// ------------------------------------------------------------------ rows

row_result row_put(const options& o, fixture& f, subjects& sub)
{
    const keyset& ks = sub.ks;
    const options fo = one_pass(o, ks.n);
    auto fig = [&](auto& s, const std::string& who) {
        using S = std::remove_reference_t<decltype(s)>;
        const result r = measure(fo, 1, [&] {
            s.full = false;
            s.recreate();
            return put_body<S>(s, ks, *f.errors);
        });
        check_errors(f, "put (" + who + ")");
        verify_full(s, ks, "put (" + who + ")");
        return r;
    };
    row_result r;
    r.shm = fig(sub.shm, "shmkit");
    check_shmkit(sub.shm, "put");
    r.flat = fig(sub.flat, "in-process table");
    r.bip = fig(sub.bip, "boost");
    return r;
}

/// A get row: `body(store pointer, keys, cursor, errors)` on each subject
/// in turn, from a full store, with the cursors reset.
template <class Body>
row_result row_gets(const options& o, fixture& f, subjects& sub, const std::string& what, Body body)
{
    const keyset& ks = sub.ks;
    auto fig = [&](auto& s, const std::string& who) {
        ensure_full(s, ks);
        f.reset_cursors(ks.n, 1);
        const result r = measure(o, 1, [&] { return body(&s, ks, f.cur(0), *f.errors); });
        check_errors(f, what + " (" + who + ")");
        return r;
    };
    row_result r;
    r.shm = fig(sub.shm, "shmkit");
    r.flat = fig(sub.flat, "in-process table");
    r.bip = fig(sub.bip, "boost");
    return r;
}

row_result row_get_hit(const options& o, fixture& f, subjects& sub)
{
    return row_gets(o, f, sub, "get hit", [](const auto* s, const keyset& ks, auto& cur, auto& errors) {
        return get_hit_body<decltype(s)>(s, ks, cur, errors);
    });
}

row_result row_get_miss(const options& o, fixture& f, subjects& sub)
{
    return row_gets(o, f, sub, "get miss", [](const auto* s, const keyset& ks, auto& cur, auto& errors) {
        return get_miss_body<decltype(s)>(s, ks, cur, errors);
    });
}

row_result row_erase(const options& o, fixture& f, subjects& sub)
{
    const keyset& ks = sub.ks;
    const options fo = one_pass(o, ks.n);
    auto fig = [&](auto& s, const std::string& who) {
        using S = std::remove_reference_t<decltype(s)>;
        const result r = measure(fo, 1, [&] {
            ensure_full(s, ks); // refill, untimed, after a run that erased
            return erase_body<S>(s, ks, *f.errors);
        });
        check_errors(f, "erase (" + who + ")");
        verify_empty(s, ks, "erase (" + who + ")");
        return r;
    };
    row_result r;
    r.shm = fig(sub.shm, "shmkit");
    check_shmkit(sub.shm, "erase");
    r.flat = fig(sub.flat, "in-process table");
    r.bip = fig(sub.bip, "boost");
    return r;
}

/// Get hits in `procs` forked workers on the 1M stores. shmkit: each worker
/// opens its own handle by name and first gets every key once, untimed,
/// checking the values (its new mapping's pages are touched before the
/// timed loop); the baselines: the inherited table / mapping, as they are.
row_result row_get_hit_procs(const options& o, fixture& f, subjects& sub, unsigned procs)
{
    const keyset& ks = sub.ks;
    row_result r;
    ensure_full(sub.shm, ks);
    const std::string name = sub.shm.name();
    f.reset_cursors(ks.n, procs);
    r.shm = measure(o, procs, [&] {
        const unsigned w = f.worker_number(procs);
        auto h = std::make_unique<shmkit::kv_store>(name);
        std::string out;
        std::uint64_t bad = 0;
        for (std::size_t i = 0; i < ks.n; ++i) {
            const hit_entry& e = ks.hits[i];
            if (!h->get(key_view(e.key), out) || out != val_view(e.value)) ++bad;
        }
        f.errors->fetch_add(bad);
        return get_hit_body<std::unique_ptr<shmkit::kv_store>>(std::move(h), ks, f.cur(1 + w), *f.errors);
    });
    check_errors(f, "get hit, " + std::to_string(procs) + " processes (shmkit)");
    auto fig = [&](auto& s, const std::string& who) {
        using S = std::remove_reference_t<decltype(s)>;
        ensure_full(s, ks);
        f.reset_cursors(ks.n, procs);
        const result res = measure(o, procs, [&] {
            const unsigned w = f.worker_number(procs);
            return get_hit_body<const S*>(&s, ks, f.cur(1 + w), *f.errors);
        });
        check_errors(f, "get hit, " + std::to_string(procs) + " processes (" + who + ")");
        return res;
    };
    r.flat = fig(sub.flat, "in-process table");
    r.bip = fig(sub.bip, "boost");
    return r;
}

std::string mib(double bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
    return buf;
}

const std::string flat_name = "in-process open addressing table";
const std::string bip_name = "boost unordered_map + mutex (shm)";
const std::string fmm_name = "Cache::FastMmap (perl)";

} // namespace

int main(int argc, char** argv)
{
    const options opt = parse_options(
        argc, argv,
        "bench_kv: shmkit::kv_store (1M and 10k keys of 11 bytes, 16-byte values) vs an in-process open-addressing "
        "table (the memory-latency limit) vs boost::unordered_map in managed_shared_memory under an "
        "interprocess_mutex vs, on the 10k rows, Perl's Cache::FastMmap (perl -e, timed with Time::HiRes; needs the "
        "libcache-fastmmap-perl package, else skipped)");
    print_preamble("bench_kv: operations per second, shmkit::kv_store, keys \"key:NNNNNNN\" (11 bytes), 16-byte "
                   "values;\n  put/erase: one pass over the keys per run (from an empty / a full store); gets copy "
                   "into a reused std::string; multi-process row: total of all processes",
                   opt);

    const unsigned np = opt.procs;
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    const target get_vs_flat{0, 0.8};        // get hit at 1M keys >= 0.8x the in-process table
    const target get_vs_bip{0, 3};           // get hit at 1M keys >= 3x Boost
    const target get_small{20e6, 0};         // get hit at 10k keys >= 20 M/s
    const target put_vs_bip{3e6, 3};         // put (1M and 10k keys) >= 3 M/s and >= 3x Boost
    const target procs_scaling{0, 0.8 * np}; // N-process gets >= 0.8 N x one process (1.6x for 2)

    std::signal(SIGPIPE, SIG_IGN); // a perl process that died: write() fails with EPIPE instead
    const bool fmm_present = perl_has_module("Cache::FastMmap");

    table tab(std::cout, 40, 40);
    std::vector<std::string> notes;
    // The Cache::FastMmap line of a 10k row (the 1M rows have none: see the
    // header comment), or why it is missing.
    auto fmm_line = [&](const result& shm, const keyset& ks, fastmmap_op op) {
        if (ks.n != small_n) return;
        if (fmm_present) tab.row("", shm, fmm_name, measure_fastmmap(opt, ks, op), opt);
        else tab.skipped("", shm.median, fmm_name, "skipped (perl module Cache::FastMmap not installed)");
    };
    try {
        fixture f(np);
        tab.print_header();
        for (const std::size_t n : {big_n, small_n}) {
            const std::string nk = n == big_n ? "1M keys" : "10k keys";
            const std::string put_name = "put, " + nk + ", from empty";
            const std::string hit_name = "get hit, " + nk + ", shuffled";
            const std::string procs_name = "get hit, " + nk + ", shuffled, " + std::to_string(np) + " processes";
            const std::string miss_name = "get miss, " + nk;
            const std::string erase_name = "erase, " + nk + ", shuffled";
            const bool want_procs = n == big_n && np > 1 && selected(opt, procs_name);
            if (!selected(opt, put_name) && !selected(opt, hit_name) && !want_procs && !selected(opt, miss_name) &&
                !selected(opt, erase_name))
                continue;
            const keyset ks(n);
            subjects sub(ks);
            const bool small = n != big_n;
            std::optional<result> single_get;

            if (selected(opt, put_name)) {
                const row_result r = row_put(opt, f, sub);
                tab.row(put_name, r.shm, flat_name, r.flat, opt);
                tab.row("", r.shm, bip_name, r.bip, opt, &put_vs_bip);
                fmm_line(r.shm, ks, fastmmap_op::put);
                const shmkit::kv_stats st = sub.shm.store().stats();
                std::ostringstream s;
                s << "after the " << nk << " put rows: shmkit (stats()): " << st.entries << " entries, table capacity "
                  << st.table_capacity << " (load " << std::setprecision(2) << st.load_factor << "), bytes_used "
                  << mib(double(st.bytes_used)) << ", bytes_mapped " << mib(double(st.bytes_mapped)) << ", "
                  << st.grows << " tables built by the last run's store;\n  in-process table: capacity "
                  << sub.flat.capacity() << " (" << mib(double(sub.flat.capacity()) * 32) << "); boost segment: "
                  << mib(double(sub.bip.bytes_used())) << " used";
                notes.push_back(s.str());
            }
            if (selected(opt, hit_name)) {
                const row_result r = row_get_hit(opt, f, sub);
                tab.row(hit_name, r.shm, flat_name, r.flat, opt, small ? &get_small : &get_vs_flat);
                tab.row("", r.shm, bip_name, r.bip, opt, small ? nullptr : &get_vs_bip);
                fmm_line(r.shm, ks, fastmmap_op::hit);
                if (!small) single_get = r.shm;
            }
            if (want_procs) {
                if (!single_get) { // the 1-process figure of this run, when its row was filtered out
                    ensure_full(sub.shm, ks);
                    f.reset_cursors(ks.n, 1);
                    single_get = measure(opt, 1, [&] {
                        return get_hit_body<const shm_store*>(&sub.shm, ks, f.cur(0), *f.errors);
                    });
                    check_errors(f, "get hit (shmkit)");
                }
                const row_result r = row_get_hit_procs(opt, f, sub, np);
                const bool scaling_target = np <= static_cast<unsigned>(std::max(1L, cpus));
                tab.row(procs_name, r.shm, "shmkit get hit, 1 process", *single_get, opt,
                        scaling_target ? &procs_scaling : nullptr);
                tab.row("", r.shm, "(info) " + flat_name, r.flat, opt);
                tab.row("", r.shm, "(info) " + bip_name, r.bip, opt);
            }
            if (selected(opt, miss_name)) {
                const row_result r = row_get_miss(opt, f, sub);
                tab.row(miss_name, r.shm, flat_name, r.flat, opt);
                tab.row("", r.shm, bip_name, r.bip, opt);
                fmm_line(r.shm, ks, fastmmap_op::miss);
            }
            if (selected(opt, erase_name)) {
                const row_result r = row_erase(opt, f, sub);
                tab.row(erase_name, r.shm, flat_name, r.flat, opt);
                tab.row("", r.shm, bip_name, r.bip, opt);
                fmm_line(r.shm, ks, fastmmap_op::erase);
            }
        }
    }
    catch (const checksum_error& e) {
        std::cerr << "bench_kv: " << e.what() << "\n";
        return 1;
    }
    catch (const std::exception& e) {
        std::cerr << "bench_kv: error: " << e.what() << "\n";
        return 1;
    }
    tab.note("");
    for (const std::string& s : notes) tab.note(s);
    if (!notes.empty()) tab.note("");
    tab.note("checksums: ok (every get hit returned its key's value, every miss nothing, every erase true; sizes\n"
             "after every put/erase run; contents after the put rows, none left after the erase rows;\n"
             "kv_store::check())");
    tab.note("Cache::FastMmap (perl): 10k rows only (perl does one pass over 1M keys in ~7 s: the 1M put and erase\n"
             "rows would take over 40 s each); " +
             std::string(fmm_present ? "a perl process per row, 89 pages of 64 KiB, raw values, no compression;\n"
                                       "its checksums: ok (every result, key counts after put/erase runs, every key kept)"
                                     : "skipped: perl module Cache::FastMmap not installed (libcache-fastmmap-perl)"));
    tab.note("runs: put/erase rows are one pass over the keys per run (not calibrated), 1M: --runs runs (--quick: 1),\n"
             "10k: 3x --runs; boost segment 512 MiB (1M) / 32 MiB (10k), fallocated; in-process table: private\n"
             "memory, at most 3/4 full");
    tab.note("targets: get hit at 1M keys >= 0.8x the in-process table and >= 3x boost; get hit at 10k keys >= 20M/s;\n"
             "put (1M and 10k keys) >= 3M/s and >= 3x boost; " + std::to_string(np) + "-process get hits >= " +
             std::to_string(np * 8 / 10) + "." + std::to_string(np * 8 % 10) + "x the 1-process rate");
    return tab.finish(opt);
}
