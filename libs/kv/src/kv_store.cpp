// kv_store: root, tables, lock-free reads, writes with one commit point,
// growth by publishing a new table, repair after a dead writer. Layout:
// detail/kv_layout.hpp; crash windows: doc/shmkit/crash_safety.adoc.
#include <shmkit/kv_store.hpp>

#include "read_section.hpp"
#include "root_takeover.hpp"

#include <shmkit/detail/checked.hpp>
#include <shmkit/detail/kv_layout.hpp>
#include <shmkit/detail/random.hpp>
#include <shmkit/error.hpp>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/mman.h>

namespace shmkit {
namespace detail {

namespace {

constexpr std::size_t max_name_length = 200;
// How long a taker of an incomplete root waits for another one at least
// (it only lists /dev/shm and unlinks a few names).
constexpr std::chrono::milliseconds min_takeover_wait{1000};
// Small tables are rebuilt often by overwrites (each takes a cell and
// arena room until the next rebuild compacts): a table starts big enough
// that a rebuild costs little next to the writes between two of them.
constexpr std::uint64_t min_slots = 256;
constexpr std::uint64_t small_table = 1 << 14; ///< entries below which a table grows fourfold
constexpr std::uint64_t min_arena = 65536; ///< free arena of a table that has arena records

/// "NAME" or "/NAME" -> "NAME", validated.
std::string store_base_name(const std::string& name)
{
    const std::string n = (!name.empty() && name[0] == '/') ? name.substr(1) : name;
    const char* bad = nullptr;
    if (n.empty()) bad = "empty";
    else if (n.size() > max_name_length) bad = "longer than 200 bytes";
    else if (n.find('/') != std::string::npos) bad = "contains '/'";
    else if (n.find('~') != std::string::npos) bad = "contains '~' (reserved for table names)";
    else if (n.find('\0') != std::string::npos) bad = "contains a NUL byte";
    else if (n == "." || n == "..") bad = "is . or ..";
    if (bad) throw std::invalid_argument("shmkit: invalid kv_store name '" + name + "': " + bad);
    return n;
}

std::uint64_t next_pow2(std::uint64_t v)
{
    if (v > (std::uint64_t(1) << 40)) throw std::length_error("shmkit: kv_store: more than 2^39 entries");
    std::uint64_t p = min_slots;
    while (p < v) p <<= 1;
    return p;
}

/// What a root's payload must be, checked before attaching (a refused
/// file stays unchanged).
void check_root_payload(const segment_header& h, const std::string& where)
{
    if (h.params[0] == 0 || h.data_size < sizeof(kv_root) || h.n_rwlocks < 1)
        throw_error(errc::corrupt_header, where, "not a kv_store root");
}

/// The cells and arena of a table fit its data area (its generation and
/// store are checked by kv_table, which knows which it expects).
std::optional<std::uint64_t> table_index_bytes(const segment_header& h)
{
    const std::uint64_t n = h.params[0], arena_bytes = h.params[1];
    const auto index = checked_mul(n, sizeof(kv_cell));
    const auto need = index ? checked_add(sizeof(kv_table_header) + *index, arena_bytes) : std::nullopt;
    if (n < min_slots || (n & (n - 1)) != 0 || arena_bytes < 4096 || arena_bytes / 8 > kv_meta::payload_mask ||
        !need || *need > h.data_size)
        return std::nullopt;
    return index;
}

void check_table_payload(const segment_header& h, const std::string& where)
{
    if (!table_index_bytes(h)) throw_error(errc::corrupt_header, where, "not a kv_store table");
}

segment_expectation root_expectation()
{
    segment_expectation x;
    x.kind = structure_kind::kv;
    x.elem_type = element_type::none;
    x.check_payload = check_root_payload;
    return x;
}

segment_expectation table_expectation()
{
    segment_expectation x;
    x.kind = structure_kind::kv;
    x.elem_type = element_type::bytes;
    x.check_payload = check_table_payload;
    return x;
}

} // namespace

/// What a lookup found: the cell, and the key and value (views into the
/// arena, or into `copy` for an inline entry).
struct kv_found {
    std::uint64_t cell = 0;
    std::uint64_t meta = 0;
    std::string_view key, value;
    char copy[kv_inline_bytes];
};

/// One mapped table.
struct kv_table {
    segment seg;
    kv_table_header* h = nullptr;
    kv_cell* cells = nullptr;
    char* arena = nullptr;
    std::uint64_t mask = 0; ///< cells - 1
    std::uint64_t arena_size = 0;
    std::uint64_t generation = 0;

    std::uint64_t capacity() const noexcept { return mask + 1; }

    /// Validates what the (already validated) header says against the payload.
    explicit kv_table(segment s, std::uint64_t expect_generation, std::uint64_t store_id) : seg(std::move(s))
    {
        const std::uint64_t n = seg.param(0), arena_bytes = seg.param(1);
        const auto index = checked_mul(n, sizeof(kv_cell));
        const auto need = index ? checked_add(sizeof(kv_table_header) + *index, arena_bytes) : std::nullopt;
        if (n < min_slots || (n & (n - 1)) != 0 || arena_bytes < 4096 || arena_bytes / 8 > kv_meta::payload_mask ||
            !need || *need > seg.data_size() || seg.param(2) != expect_generation || seg.param(3) != store_id)
            throw_error(errc::corrupt_header, seg.name(), "not the table this store expects");
        char* d = static_cast<char*>(seg.data());
        h = reinterpret_cast<kv_table_header*>(d);
        cells = reinterpret_cast<kv_cell*>(d + sizeof(kv_table_header));
        arena = d + sizeof(kv_table_header) + *index;
        mask = n - 1;
        arena_size = arena_bytes;
        generation = expect_generation;
    }

    /// The key and value bytes of the arena record at `offset`, if it lies
    /// inside the first `limit` bytes, with its lengths in `head`. Shared
    /// memory is never trusted as an index, and the lengths are read once:
    /// read twice, the second read could differ from the one checked.
    const char* record(std::uint64_t offset, std::uint64_t limit, kv_record_head& head) const noexcept
    {
        if (offset < kv_arena_start || offset % 8 || offset > limit || limit - offset < sizeof(kv_record_head))
            return nullptr;
        const auto* r = reinterpret_cast<const kv_record_head*>(arena + offset);
        head.klen = __atomic_load_n(&r->klen, __ATOMIC_RELAXED);
        head.vlen = __atomic_load_n(&r->vlen, __ATOMIC_RELAXED);
        if (std::uint64_t(head.klen) + head.vlen > limit - offset - sizeof(kv_record_head)) return nullptr;
        return reinterpret_cast<const char*>(r + 1);
    }

    /// Reads the entry of cell i described by `meta` into `f`. False if the
    /// cell changed while it was copied (inline) or the meta word is bad.
    bool read(std::uint64_t i, std::uint64_t meta, kv_found& f) const noexcept
    {
        f.cell = i;
        f.meta = meta;
        if (kv_meta::is_inline(meta)) {
            const std::size_t klen = kv_meta::inline_klen(meta), vlen = kv_meta::inline_vlen(meta);
            if (klen + vlen > kv_inline_bytes) return false;
            for (std::size_t w = 0; w < 4; ++w) {
                const std::uint64_t v = cells[i].bytes[w].load(std::memory_order_relaxed);
                std::memcpy(f.copy + 8 * w, &v, 8);
            }
            // The copy is good only if the cell was not erased and filled
            // again meanwhile (the version in the meta word would differ).
            std::atomic_thread_fence(std::memory_order_acquire);
            if (cells[i].meta.load(std::memory_order_relaxed) != meta) return false;
            f.key = {f.copy, klen};
            f.value = {f.copy + klen, vlen};
            return true;
        }
        kv_record_head head;
        const char* p = record(kv_meta::arena_offset(meta), arena_size, head);
        if (!p) return false;
        f.key = {p, head.klen};
        f.value = {p + head.klen, head.vlen};
        return true;
    }

    /// Looks `key` up. Lock-free: retried from the start if an inline cell
    /// changed under the copy (it was erased and filled again).
    bool find(std::string_view key, std::uint64_t hash, kv_found& f) const noexcept
    {
    again:
        for (std::uint64_t k = 0, i = hash & mask; k <= mask; ++k, i = (i + 1) & mask) {
            const std::uint64_t m = cells[i].meta.load(std::memory_order_acquire);
            if (kv_meta::empty(m)) return false;
            if (!kv_meta::live(m) || !kv_meta::tag_matches(m, hash)) continue;
            if (!read(i, m, f)) {
                // Filled again under the copy: look again. Otherwise the
                // cell is unreadable (bad lengths or offset: corrupted
                // memory, which check() reports): never followed.
                if (cells[i].meta.load(std::memory_order_acquire) != m) goto again;
                continue;
            }
            if (f.key == key) return true;
        }
        return false;
    }

    /// Bytes an entry accounts for in live_bytes: its key and value.
    static std::uint64_t entry_bytes(std::size_t klen, std::size_t vlen) noexcept { return klen + vlen; }
    /// Arena bytes of an entry (0 for one that sits in its cell).
    static std::uint64_t arena_bytes(std::size_t klen, std::size_t vlen) noexcept
    {
        return kv_fits_inline(klen, vlen) ? 0 : kv_record_size(klen, vlen);
    }
};

struct kv_impl {
    std::string base;  ///< NAME
    std::string label; ///< /NAME
    kv_options opt;
    segment root_seg;
    kv_root* root = nullptr;
    std::uint64_t store_id = 0, seed = 0;
    mutable sync::rwlock lock;

    // The current table of this handle. Threads of the process read through
    // `current` inside a read_section; a table replaced by a newer one stays
    // mapped (in `owned`) until no thread of the process is in one.
    mutable std::atomic<kv_table*> current{nullptr};
    /// The current table's cells and mask, for a prefetch issued before the
    /// lock or the reader count (a hint: a stale value prefetches a wrong
    /// line, which costs nothing but the hint).
    mutable std::atomic<const kv_cell*> hint_cells{nullptr};
    mutable std::atomic<std::uint64_t> hint_mask{0};
    mutable std::atomic<bool> has_retired{false};
    mutable std::atomic<std::uint32_t> free_tries{0}; ///< readers' attempts to free replaced tables
    mutable std::mutex remap_mutex;
    mutable std::vector<std::unique_ptr<kv_table>> owned; ///< current and retired tables

    std::string table_name(std::uint64_t gen) const
    {
        char id[17];
        std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(store_id));
        return base + "~" + id + "~" + std::to_string(gen);
    }

    // ---- Opening ---------------------------------------------------------------

    static segment_layout root_layout(const kv_options& opt)
    {
        segment_layout l;
        l.kind = structure_kind::kv;
        l.elem_type = element_type::none;
        l.capacity = 1;
        l.data_size = sizeof(kv_root);
        l.n_rwlocks = 1;
        l.attach_capacity = opt.attach_capacity;
        l.params[0] = random_u64() | 1; // store id (never 0)
        l.params[1] = random_u64();     // hash seed
        l.check_payload = check_root_payload;
        return l;
    }

    segment open_root()
    {
        const auto deadline = deadline_clock::now() + opt.init_timeout;
        for (;;) {
            try {
                return segment::posix(open_or_create, base, root_layout(opt), {}, {opt.mode});
            } catch (const error& e) {
                if (e.code() != errc::not_initialised) throw;
                // A root that something else left incomplete: wait for it
                // (bounded), then take the name over.
                if (deadline_clock::now() >= deadline) take_over_incomplete_root(base, std::max(opt.init_timeout, min_takeover_wait));
                else std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
    }

    kv_impl(const std::string& name, const kv_options& o) : base(store_base_name(name)), label("/" + base), opt(o)
    {
        root_seg = open_root();
        root = static_cast<kv_root*>(root_seg.data());
        store_id = root_seg.param(0);
        seed = root_seg.param(1);
        if (store_id == 0 || root_seg.data_size() < sizeof(kv_root) || root_seg.n_rwlocks() < 1)
            throw_error(errc::corrupt_header, label, "not a kv_store root");
        lock = root_seg.rwlock(0);
    }

    // ---- Which table -------------------------------------------------------------

    /// Maps table `gen` and makes it current. nullptr if its name is gone
    /// (a newer table replaced it meanwhile: the caller looks again).
    kv_table* map_table(std::uint64_t gen) const
    {
        std::unique_ptr<kv_table> t;
        try {
            t = std::make_unique<kv_table>(segment::posix(open_only, table_name(gen), table_expectation()), gen,
                                           store_id);
        } catch (const error& e) {
            if (e.code() == std::errc::no_such_file_or_directory) return nullptr;
            throw;
        }
        return install(std::move(t));
    }

    kv_table* install(std::unique_ptr<kv_table> t) const
    {
        std::lock_guard<std::mutex> g(remap_mutex);
        kv_table* cur = current.load(std::memory_order_relaxed);
        if (cur && cur->generation >= t->generation) return cur; // another thread was first
        kv_table* raw = t.get();
        owned.push_back(std::move(t));
        current.store(raw, std::memory_order_seq_cst);
        hint_cells.store(raw->cells, std::memory_order_relaxed);
        hint_mask.store(raw->mask, std::memory_order_relaxed);
        if (cur) {
            free_tries.store(0, std::memory_order_relaxed); // the next reader out tries at once
            has_retired.store(true, std::memory_order_seq_cst);
        }
        free_retired_locked();
        return raw;
    }

    /// Frees replaced tables once no thread of the process is inside a
    /// read_section (readers enter one before they load `current`).
    void free_retired_locked() const
    {
        if (!has_retired.load(std::memory_order_seq_cst) || !no_readers()) return;
        kv_table* cur = current.load(std::memory_order_relaxed);
        owned.erase(std::remove_if(owned.begin(), owned.end(), [&](const auto& t) { return t.get() != cur; }),
                    owned.end());
        has_retired.store(false, std::memory_order_relaxed);
    }

    /// Starts loading the cell where a lookup of `hash` begins, so that the
    /// miss overlaps the locking that comes first. Never dereferences.
    void prefetch(std::uint64_t hash) const noexcept
    {
        const kv_cell* c = hint_cells.load(std::memory_order_relaxed);
        const std::uint64_t mask = hint_mask.load(std::memory_order_relaxed);
        if (c) __builtin_prefetch(reinterpret_cast<const char*>(c) + (hash & mask) * sizeof(kv_cell));
    }

    /// The table the root names now (nullptr: none yet). Maps it if this
    /// handle has an older one. The caller is inside a read_section, or
    /// holds the writers' lock.
    kv_table* table() const
    {
        for (int attempt = 0;; ++attempt) {
            const std::uint64_t gen = root->generation.load(std::memory_order_acquire);
            kv_table* t = current.load(std::memory_order_seq_cst);
            if (t && t->generation == gen) return t;
            if (gen == 0) return nullptr;
            if (kv_table* m = map_table(gen)) return m;
            // A writer links a new table before it publishes its generation
            // and unlinks the old one only after: a table that is missing
            // while the root still names it was not replaced - the store
            // was removed, or its root is damaged. Only a generation that
            // moved on is worth another try.
            if (root->generation.load(std::memory_order_acquire) == gen)
                throw_errno(ENOENT, label, "the table the store's root names does not exist");
            if (attempt > 1000) throw_errno(ENOENT, label, "the current table keeps disappearing");
        }
    }

    /// Marks the calling thread as a reader of this handle's tables; on the
    /// way out, frees tables replaced meanwhile if nobody reads any more.
    struct reading {
        const kv_impl& k;
        read_section section;
        explicit reading(const kv_impl& impl) : k(impl) {}
        ~reading()
        {
            section.leave();
            if (!k.has_retired.load(std::memory_order_relaxed)) return;
            // Each try is a membarrier() call and fails while another thread
            // of the process reads: try once in a while, not on every get
            // (a racy count is good enough for that).
            const std::uint32_t n = k.free_tries.load(std::memory_order_relaxed) + 1;
            k.free_tries.store(n, std::memory_order_relaxed);
            if (n % 256 != 1) return;
            std::unique_lock<std::mutex> g(k.remap_mutex, std::try_to_lock);
            if (g.owns_lock()) k.free_retired_locked();
        }
    };

    // ---- Writing -------------------------------------------------------------------

    /// Takes the writers' lock; repairs what a dead writer left.
    std::unique_lock<sync::rwlock> lock_for_write() const
    {
        std::unique_lock<sync::rwlock> g(lock);
        if (lock.recovered()) root->repair_needed.store(1, std::memory_order_relaxed);
        if (root->repair_needed.load(std::memory_order_relaxed)) repair();
        return g;
    }

    /// After a writer died holding the lock (we hold it now): finish an
    /// overwrite it left half-done, recount the table's counters from its
    /// cells (the cells are the truth), and remove the name of a table it
    /// may have been building, or of the one it had just replaced.
    void repair() const
    {
        reading r(*this);
        const std::uint64_t gen = root->generation.load(std::memory_order_acquire);
        region::remove_posix(table_name(gen + 1));
        if (gen > 1) region::remove_posix(table_name(gen - 1));
        if (kv_table* t = table()) {
            finish_overwrite(*t);
            recount(*t);
        }
        root->repairs.fetch_add(1, std::memory_order_relaxed);
        root->repair_needed.store(0, std::memory_order_relaxed);
    }

    /// An overwrite publishes the new cell, then erases the old one. Died
    /// between the two: both are live, and lookups have been finding the
    /// one that comes first in the key's probe sequence. That one stays
    /// (so nobody sees the value change under the repair) and the other
    /// goes: the overwrite is finished if the new cell came first, undone
    /// otherwise.
    void finish_overwrite(kv_table& t) const
    {
        const std::uint64_t old_cell = t.h->pending_old.load(std::memory_order_acquire);
        const std::uint64_t new_cell = t.h->pending_new.load(std::memory_order_acquire);
        if (old_cell && new_cell && old_cell <= t.capacity() && new_cell <= t.capacity() && old_cell != new_cell) {
            const std::uint64_t m_new = t.cells[new_cell - 1].meta.load(std::memory_order_acquire);
            const std::uint64_t m_old = t.cells[old_cell - 1].meta.load(std::memory_order_acquire);
            kv_found f, first;
            if (kv_meta::live(m_new) && kv_meta::live(m_old) && t.read(old_cell - 1, m_old, f)) {
                const std::string key(f.key);
                if (t.find(key, kv_hash(key, seed), first)) {
                    const std::uint64_t loser = first.cell == old_cell - 1 ? new_cell - 1 : old_cell - 1;
                    const std::uint64_t m = t.cells[loser].meta.load(std::memory_order_relaxed);
                    t.cells[loser].meta.store(kv_meta::erase(m), std::memory_order_release);
                }
            }
        }
        t.h->pending_old.store(0, std::memory_order_relaxed);
        t.h->pending_new.store(0, std::memory_order_relaxed);
    }

    static void recount(kv_table& t)
    {
        std::uint64_t entries = 0, erased = 0, bytes = 0, arena = 0;
        kv_found f;
        for (std::uint64_t i = 0; i <= t.mask; ++i) {
            const std::uint64_t m = t.cells[i].meta.load(std::memory_order_relaxed);
            if (kv_meta::erased(m)) ++erased;
            else if (kv_meta::live(m) && t.read(i, m, f)) {
                ++entries;
                bytes += kv_table::entry_bytes(f.key.size(), f.value.size());
                arena += kv_table::arena_bytes(f.key.size(), f.value.size());
            }
        }
        t.h->entries.store(entries, std::memory_order_relaxed);
        t.h->erased.store(erased, std::memory_order_relaxed);
        t.h->live_bytes.store(bytes, std::memory_order_relaxed);
        t.h->arena_live.store(arena, std::memory_order_relaxed);
    }

    /// Builds the next table, big enough for the live entries of `from` (or
    /// empty) plus `extra_entries` and `extra_bytes` of arena, and publishes
    /// it. Called under the writers' lock. Commit point: the store of the
    /// new generation in the root. Before it the new table is only a name
    /// that repair() removes; after it the old table's name is removed.
    kv_table* grow(const kv_table* from, std::uint64_t extra_entries, std::uint64_t extra_bytes) const
    {
        if (root->removed.load(std::memory_order_acquire))
            throw_errno(EIDRM, label, "the store was removed: it cannot grow");
        const std::uint64_t gen = root->generation.load(std::memory_order_relaxed);
        // Sized from the cells, not from the counters: the new table must
        // hold what build() copies, whatever a dead writer left in them.
        const census live = count_live(from);
        // Twice the live entries (a load factor of at most 1/2 after the
        // rebuild); four times while the table is small, where the fixed cost
        // of a rebuild (a new POSIX object) would dominate the puts.
        const std::uint64_t want = live.entries + extra_entries;
        const std::uint64_t cells = next_pow2(want < small_table ? 4 * want : 2 * want);
        // Arena: what the live records take, plus half again (at least
        // min_arena), so that overwrites do not rebuild the table at once.
        const std::uint64_t need = live.arena_bytes + extra_bytes;
        std::uint64_t arena = kv_arena_start + need + (need ? std::max<std::uint64_t>(need / 2, min_arena) : 0);
        arena = (arena + 4095) & ~std::uint64_t(4095);
        if (arena / 8 > kv_meta::payload_mask) throw std::length_error("shmkit: " + label + ": the store would exceed 2 TiB");

        segment_layout l;
        l.kind = structure_kind::kv;
        l.elem_type = element_type::bytes;
        l.elem_size = 1;
        l.capacity = cells;
        l.data_size = sizeof(kv_table_header) + cells * sizeof(kv_cell) + arena;
        l.attach_capacity = root_seg.attach_capacity();
        l.params[0] = cells;
        l.params[1] = arena;
        l.params[2] = gen + 1;
        l.params[3] = store_id;
        const std::string name = table_name(gen + 1);
        segment s = create_table(name, l, cells, arena, from);
        auto t = std::make_unique<kv_table>(std::move(s), gen + 1, store_id);
        root->generation.store(gen + 1, std::memory_order_release); // commit
        root->grows.fetch_add(1, std::memory_order_relaxed);
        if (gen) region::remove_posix(table_name(gen));
        return install(std::move(t));
    }

    /// Creates table `name` (not yet published) holding the live entries of
    /// `from`. A table of that name left by a writer that died building it
    /// is normally unlinked by repair(); if one is there all the same, it is
    /// unlinked and the creation tried again.
    segment create_table(const std::string& name, const segment_layout& l, std::uint64_t cells, std::uint64_t arena,
                         const kv_table* from) const
    {
        const auto init = [&](void* data, std::size_t size) {
            populate(data, size);
            build(static_cast<char*>(data), cells, arena, from);
        };
        try {
            return segment::posix(create_only, name, l, init, {opt.mode});
        } catch (const error& e) {
            if (e.code() != std::errc::file_exists) throw;
        }
        region::remove_posix(name);
        return segment::posix(create_only, name, l, init, {opt.mode});
    }

    /// What build() will copy out of `t`: live entries, and arena bytes of
    /// their records.
    struct census {
        std::uint64_t entries = 0, arena_bytes = 0;
    };
    static census count_live(const kv_table* t) noexcept
    {
        census c;
        if (!t) return c;
        const std::uint64_t limit = t->h->tail.load(std::memory_order_relaxed);
        kv_found f;
        for (std::uint64_t i = 0; i <= t->mask; ++i) {
            const std::uint64_t m = t->cells[i].meta.load(std::memory_order_relaxed);
            if (!kv_meta::live(m)) continue;
            ++c.entries;
            if (!kv_meta::is_inline(m) && kv_meta::arena_offset(m) <= limit && t->read(i, m, f))
                c.arena_bytes += kv_record_size(f.key.size(), f.value.size());
        }
        return c;
    }

    /// Maps the pages of a new table in one call rather than one fault at a
    /// time as build() writes them (the pages are allocated already: the
    /// segment was reserved with fallocate). Only a hint: errors (a kernel
    /// before 5.14) are ignored.
    static void populate(void* data, std::size_t size) noexcept
    {
#ifdef MADV_POPULATE_WRITE
        const std::uintptr_t page = 4096;
        const auto begin = reinterpret_cast<std::uintptr_t>(data) & ~(page - 1);
        const auto end = reinterpret_cast<std::uintptr_t>(data) + size;
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#else
        (void)data;
        (void)size;
#endif
    }

    /// Fills a new table's payload (not visible to anyone yet) with the live
    /// entries of `from`, the arena compacted.
    void build(char* data, std::uint64_t n_cells, std::uint64_t arena_size, const kv_table* from) const
    {
        auto* h = reinterpret_cast<kv_table_header*>(data);
        auto* cells = reinterpret_cast<kv_cell*>(data + sizeof(kv_table_header));
        char* arena = data + sizeof(kv_table_header) + n_cells * sizeof(kv_cell);
        const std::uint64_t mask = n_cells - 1;
        std::uint64_t tail = kv_arena_start, entries = 0, bytes = 0;
        if (from) {
            const std::uint64_t limit = from->h->tail.load(std::memory_order_relaxed);
            kv_found f;
            for (std::uint64_t i = 0; i <= from->mask; ++i) {
                const std::uint64_t m = from->cells[i].meta.load(std::memory_order_relaxed);
                if (!kv_meta::live(m) || !from->read(i, m, f)) continue;
                const std::uint64_t hash = kv_hash(f.key, seed);
                std::uint64_t j = hash & mask;
                while (!kv_meta::empty(cells[j].meta.load(std::memory_order_relaxed))) j = (j + 1) & mask;
                if (kv_meta::is_inline(m)) {
                    for (std::size_t w = 0; w < 4; ++w)
                        cells[j].bytes[w].store(from->cells[i].bytes[w].load(std::memory_order_relaxed),
                                                std::memory_order_relaxed);
                    cells[j].meta.store(kv_meta::make_inline(hash, 0, f.key.size(), f.value.size(), 0),
                                        std::memory_order_relaxed);
                } else {
                    if (kv_meta::arena_offset(m) > limit) continue; // beyond what was committed: never copied
                    if (kv_record_size(f.key.size(), f.value.size()) > arena_size - tail)
                        throw std::logic_error("shmkit: kv_store table rebuilt with too small an arena");
                    write_record(arena + tail, f.key, f.value);
                    cells[j].meta.store(kv_meta::make_arena(hash, 0, tail), std::memory_order_relaxed);
                    tail += kv_record_size(f.key.size(), f.value.size());
                }
                ++entries;
                bytes += kv_table::entry_bytes(f.key.size(), f.value.size());
            }
        }
        h->tail.store(tail, std::memory_order_relaxed);
        h->entries.store(entries, std::memory_order_relaxed);
        h->erased.store(0, std::memory_order_relaxed);
        h->live_bytes.store(bytes, std::memory_order_relaxed);
        h->arena_live.store(tail - kv_arena_start, std::memory_order_relaxed);
    }

    static void write_record(char* p, std::string_view key, std::string_view value) noexcept
    {
        const kv_record_head head{static_cast<std::uint32_t>(key.size()), static_cast<std::uint32_t>(value.size())};
        std::memcpy(p, &head, sizeof head);
        std::memcpy(p + sizeof head, key.data(), key.size());
        std::memcpy(p + sizeof head + key.size(), value.data(), value.size());
    }

    /// Fills empty or erased cell i with the entry (bytes first, the meta
    /// word last, with a release store: the commit point of an insert).
    /// A large entry is appended to the arena at `tail` first (the caller
    /// checked that it fits; killed before the meta store: unreferenced
    /// bytes, reclaimed by the next table).
    static void fill(kv_table& t, std::uint64_t i, std::uint64_t hash, std::string_view key, std::string_view value,
                     std::uint64_t tail)
    {
        kv_cell& c = t.cells[i];
        const std::uint64_t old = c.meta.load(std::memory_order_relaxed);
        std::uint64_t meta;
        // Seqlock writer order: the cell was erased (or is empty) before its
        // bytes change; a reader copying it meanwhile sees the meta change.
        std::atomic_thread_fence(std::memory_order_release);
        if (kv_fits_inline(key.size(), value.size())) {
            char buf[kv_inline_bytes] = {};
            std::memcpy(buf, key.data(), key.size());
            std::memcpy(buf + key.size(), value.data(), value.size());
            for (std::size_t w = 0; w < 4; ++w) {
                std::uint64_t v;
                std::memcpy(&v, buf + 8 * w, 8);
                c.bytes[w].store(v, std::memory_order_relaxed);
            }
            const std::uint64_t stamp = t.h->fills.load(std::memory_order_relaxed) + 1;
            t.h->fills.store(stamp, std::memory_order_relaxed);
            meta = kv_meta::make_inline(hash, old, key.size(), value.size(), stamp);
        } else {
            const std::uint64_t off = tail;
            write_record(t.arena + off, key, value);
            t.h->tail.store(off + kv_record_size(key.size(), value.size()), std::memory_order_relaxed);
            meta = kv_meta::make_arena(hash, old, off);
        }
        c.meta.store(meta, std::memory_order_release);
    }

    /// The first empty or erased cell from cell `start` on, in probe order;
    /// nothing if every cell is live (the load factor keeps that from
    /// happening in a sound table: the caller then rebuilds it).
    static std::optional<std::uint64_t> free_cell(const kv_table& t, std::uint64_t start)
    {
        for (std::uint64_t k = 0, i = start & t.mask; k <= t.mask; ++k, i = (i + 1) & t.mask)
            if (!kv_meta::live(t.cells[i].meta.load(std::memory_order_relaxed))) return i;
        return std::nullopt;
    }

    static void add(std::atomic<std::uint64_t>& c, std::int64_t d) noexcept
    {
        c.store(c.load(std::memory_order_relaxed) + std::uint64_t(d), std::memory_order_relaxed);
    }

    void put(std::string_view key, std::string_view value)
    {
        const std::uint64_t hash = kv_hash(key, seed);
        prefetch(hash);
        auto g = lock_for_write();
        // A reader too: this handle may still be on an older table than the
        // root names, and another thread of the process that maps the newer
        // one must not unmap the one this thread is about to use.
        reading rd(*this);
        const std::uint64_t arena_need = kv_fits_inline(key.size(), value.size()) ? 0 : kv_record_size(key.size(), value.size());
        kv_table* t = table();
        for (;; t = grow(t, 1, arena_need)) {
            if (!t) continue;
            kv_found old;
            const bool found = t->find(key, hash, old);
            const std::uint64_t used = t->h->entries.load(std::memory_order_relaxed) + t->h->erased.load(std::memory_order_relaxed);
            // The tail is shared memory: read once, and anything but a
            // committed offset within the arena (a sum that would wrap
            // included) means no room here. The rebuild starts a new arena.
            const std::uint64_t tail = t->h->tail.load(std::memory_order_relaxed);
            if (tail < kv_arena_start || tail % 8 || tail > t->arena_size || arena_need > t->arena_size - tail) continue;
            // An overwrite fills a cell AFTER the old one in the probe order:
            // a reader that has passed an earlier free cell and finds the old
            // one erased under it then still reaches the new one, and until
            // the erase every lookup finds the old one first.
            const auto free = free_cell(*t, found ? old.cell + 1 : hash);
            if (!free) continue;
            const std::uint64_t i = *free;
            const bool reuses_erased = kv_meta::erased(t->cells[i].meta.load(std::memory_order_relaxed));
            // A new cell is taken even to overwrite: unless it reuses an
            // erased one, it must leave the load factor under 0.8.
            if (!reuses_erased && (used + 1) * 10 > t->capacity() * 8) continue;
            if (found) {
                t->h->pending_old.store(old.cell + 1, std::memory_order_relaxed);
                t->h->pending_new.store(i + 1, std::memory_order_release);
            }
            fill(*t, i, hash, key, value, tail); // commit of an insert
            if (found) {
                // The commit of an overwrite: the old value goes. Killed
                // before this store: both cells are live, lookups find the
                // old one first, and repair() keeps it.
                t->cells[old.cell].meta.store(kv_meta::erase(old.meta), std::memory_order_release);
                t->h->pending_old.store(0, std::memory_order_relaxed);
                t->h->pending_new.store(0, std::memory_order_relaxed);
                add(t->h->erased, 1);
                add(t->h->live_bytes, -std::int64_t(kv_table::entry_bytes(old.key.size(), old.value.size())));
                add(t->h->arena_live, -std::int64_t(kv_table::arena_bytes(old.key.size(), old.value.size())));
            } else {
                add(t->h->entries, 1);
            }
            if (reuses_erased) add(t->h->erased, -1);
            add(t->h->live_bytes, std::int64_t(kv_table::entry_bytes(key.size(), value.size())));
            add(t->h->arena_live, std::int64_t(kv_table::arena_bytes(key.size(), value.size())));
            return;
        }
    }

    bool erase(std::string_view key)
    {
        const std::uint64_t hash = kv_hash(key, seed);
        prefetch(hash);
        auto g = lock_for_write();
        // A reader too: this handle may still be on an older table than the
        // root names, and another thread of the process that maps the newer
        // one must not unmap the one this thread is about to use.
        reading rd(*this);
        kv_table* t = table();
        if (!t) return false;
        kv_found f;
        if (!t->find(key, hash, f)) return false;
        t->cells[f.cell].meta.store(kv_meta::erase(f.meta), std::memory_order_release); // commit
        add(t->h->entries, -1);
        add(t->h->erased, 1);
        add(t->h->live_bytes, -std::int64_t(kv_table::entry_bytes(f.key.size(), f.value.size())));
        add(t->h->arena_live, -std::int64_t(kv_table::arena_bytes(f.key.size(), f.value.size())));
        return true;
    }

    void clear()
    {
        auto g = lock_for_write();
        // A reader too: this handle may still be on an older table than the
        // root names, and another thread of the process that maps the newer
        // one must not unmap the one this thread is about to use.
        reading rd(*this);
        kv_table* t = table();
        if (t && t->h->entries.load(std::memory_order_relaxed) == 0 && t->h->erased.load(std::memory_order_relaxed) == 0 &&
            t->h->tail.load(std::memory_order_relaxed) == kv_arena_start)
            return; // already a fresh table
        if (t || root->generation.load(std::memory_order_relaxed) != 0) grow(nullptr, 0, 0);
    }

    void reserve(std::uint64_t entries)
    {
        if (entries > (std::uint64_t(1) << 39)) throw std::length_error("shmkit: kv_store: more than 2^39 entries");
        auto g = lock_for_write();
        reading rd(*this);
        kv_table* t = table();
        const std::uint64_t used = t ? t->h->entries.load(std::memory_order_relaxed) : 0;
        // Room means staying under the 0.8 load factor that triggers growth.
        if (t && entries * 10 <= t->capacity() * 8) return;
        grow(t, entries > used ? entries - used : 0, 0);
    }

    // ---- Reading ---------------------------------------------------------------------

    bool get(std::string_view key, std::string& out) const
    {
        const std::uint64_t hash = kv_hash(key, seed);
        prefetch(hash);
        reading rd(*this);
        const kv_table* t = table();
        if (!t) return false;
        kv_found f;
        if (!t->find(key, hash, f)) return false;
        out.assign(f.value.data(), f.value.size());
        return true;
    }

    bool contains(std::string_view key) const
    {
        reading rd(*this);
        const kv_table* t = table();
        kv_found f;
        return t && t->find(key, kv_hash(key, seed), f);
    }

    std::size_t size() const
    {
        reading rd(*this);
        const kv_table* t = table();
        return t ? static_cast<std::size_t>(t->h->entries.load(std::memory_order_relaxed)) : 0;
    }

    /// Under the shared lock no writer runs, but an overwrite cut short by
    /// a death may have left two live cells for one key: the one its
    /// lookups find (the first in probe order) is the one shown.
    template <class F>
    void each(F&& f) const
    {
        std::shared_lock<sync::rwlock> g(lock);
        reading rd(*this);
        const kv_table* t = table();
        if (!t) return;
        const std::uint64_t dup = t->h->pending_new.load(std::memory_order_acquire);
        kv_found e;
        for (std::uint64_t i = 0; i <= t->mask; ++i) {
            const std::uint64_t m = t->cells[i].meta.load(std::memory_order_acquire);
            if (!kv_meta::live(m) || !t->read(i, m, e)) continue;
            if (dup && (i + 1 == dup || i + 1 == t->h->pending_old.load(std::memory_order_relaxed))) {
                kv_found first;
                if (!t->find(e.key, kv_hash(e.key, seed), first) || first.cell != i) continue;
            }
            f(e.key, e.value);
        }
    }

    // ---- Checking ----------------------------------------------------------------------

    bool check(std::string* why) const
    {
        auto g = lock_for_write();
        reading rd(*this);
        auto fail = [&](const std::string& what) {
            if (why) *why = label + ": " + what;
            return false;
        };
        const std::uint64_t gen = root->generation.load(std::memory_order_acquire);
        const kv_table* t = table();
        if (!t) return gen == 0 ? true : fail("the root names table " + std::to_string(gen) + ", which cannot be opened");
        if (t->generation != gen)
            return fail("mapped table " + std::to_string(t->generation) + ", root names " + std::to_string(gen));
        const std::uint64_t tail = t->h->tail.load(std::memory_order_relaxed);
        if (tail < kv_arena_start || tail > t->arena_size || tail % 8)
            return fail("arena tail " + std::to_string(tail) + " outside the arena of " + std::to_string(t->arena_size));
        if (t->h->pending_old.load(std::memory_order_relaxed) || t->h->pending_new.load(std::memory_order_relaxed))
            return fail("an overwrite is still pending after repair");
        std::uint64_t entries = 0, erased = 0, bytes = 0, arena = 0, empty = 0;
        kv_found f, first;
        for (std::uint64_t i = 0; i <= t->mask; ++i) {
            const std::uint64_t m = t->cells[i].meta.load(std::memory_order_relaxed);
            if (kv_meta::empty(m)) { ++empty; continue; }
            if (kv_meta::erased(m)) { ++erased; continue; }
            const std::string at = "cell " + std::to_string(i) + ": ";
            if (!kv_meta::live(m)) return fail(at + "bad state");
            kv_record_head head;
            if (!kv_meta::is_inline(m) && !t->record(kv_meta::arena_offset(m), tail, head))
                return fail(at + "record offset " + std::to_string(kv_meta::arena_offset(m)) + " outside the committed arena");
            if (!t->read(i, m, f)) return fail(at + "unreadable entry");
            if (f.key.size() > kv_store::max_key_size || f.value.size() > kv_store::max_value_size)
                return fail(at + "entry sizes beyond the limits");
            if (!kv_meta::is_inline(m) && kv_fits_inline(f.key.size(), f.value.size()))
                return fail(at + "a small entry in the arena");
            const std::uint64_t hash = kv_hash(f.key, seed);
            if (!kv_meta::tag_matches(m, hash)) return fail(at + "hash tag does not match the key");
            const std::string key(f.key);
            if (!t->find(key, hash, first) || first.cell != i)
                return fail(at + "key not reachable from its home cell, or stored twice");
            ++entries;
            bytes += kv_table::entry_bytes(f.key.size(), f.value.size());
            arena += kv_table::arena_bytes(f.key.size(), f.value.size());
        }
        if (empty == 0) return fail("no empty cell: lookups of absent keys would not end");
        if (entries != t->h->entries.load(std::memory_order_relaxed) || erased != t->h->erased.load(std::memory_order_relaxed) ||
            bytes != t->h->live_bytes.load(std::memory_order_relaxed) ||
            arena != t->h->arena_live.load(std::memory_order_relaxed))
            return fail("counters differ from the cells");
        if (arena > tail - kv_arena_start) return fail("live records exceed the committed arena");
        return true;
    }

    kv_stats stats() const
    {
        reading rd(*this);
        kv_stats st;
        if (const kv_table* t = table()) {
            st.entries = t->h->entries.load(std::memory_order_relaxed);
            st.table_capacity = t->capacity();
            st.load_factor = double(st.entries + t->h->erased.load(std::memory_order_relaxed)) / double(st.table_capacity);
            st.bytes_used = t->h->live_bytes.load(std::memory_order_relaxed);
            st.bytes_mapped = t->seg.get_region().size();
            st.generation = t->generation;
        }
        st.grows = root->grows.load(std::memory_order_relaxed);
        st.repairs = root->repairs.load(std::memory_order_relaxed);
        st.lock_recoveries = lock.recoveries();
        return st;
    }
};

} // namespace detail

// ---- kv_store ------------------------------------------------------------------------

namespace {
void check_sizes(std::string_view key, std::string_view value)
{
    if (key.size() > kv_store::max_key_size)
        throw std::length_error("shmkit: kv_store key of " + std::to_string(key.size()) + " bytes (at most " +
                                std::to_string(kv_store::max_key_size) + ")");
    if (value.size() > kv_store::max_value_size)
        throw std::length_error("shmkit: kv_store value of " + std::to_string(value.size()) + " bytes (at most " +
                                std::to_string(kv_store::max_value_size) + ")");
}
} // namespace

kv_store::kv_store(const std::string& name, const kv_options& opt) : impl_(std::make_unique<detail::kv_impl>(name, opt)) {}

kv_store::kv_store(const std::string& name, exclusive_t, const kv_options& opt) : kv_store(name, opt)
{
    clear();
}

kv_store::kv_store(kv_store&&) noexcept = default;
kv_store& kv_store::operator=(kv_store&&) noexcept = default;

kv_store::~kv_store() = default;

bool kv_store::remove(const std::string& name)
{
    const std::string base = detail::store_base_name(name);
    std::optional<segment> root;
    try {
        root.emplace(segment::posix(open_only, base, detail::root_expectation()));
    } catch (const error& e) {
        if (e.code() == std::errc::no_such_file_or_directory) return false;
        throw;
    }
    auto* r = static_cast<detail::kv_root*>(root->data());
    sync::rwlock l = root->rwlock(0);
    std::lock_guard<sync::rwlock> g(l);
    r->removed.store(1, std::memory_order_release);
    const std::uint64_t gen = r->generation.load(std::memory_order_acquire);
    char id[17];
    std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(root->param(0)));
    const std::string prefix = base + "~" + id + "~";
    if (gen) region::remove_posix(prefix + std::to_string(gen));
    // Names a dead writer may have left: the table it was building, the one
    // it had just replaced.
    region::remove_posix(prefix + std::to_string(gen + 1));
    if (gen > 1) region::remove_posix(prefix + std::to_string(gen - 1));
    return region::remove_posix(base);
}

void kv_store::put(std::string_view key, std::string_view value)
{
    check_sizes(key, value);
    impl_->put(key, value);
}

bool kv_store::erase(std::string_view key) { return key.size() <= max_key_size && impl_->erase(key); }

void kv_store::clear() { impl_->clear(); }

void kv_store::reserve(std::size_t entries) { impl_->reserve(entries); }

std::optional<std::string> kv_store::get(std::string_view key) const
{
    std::string out;
    if (!get(key, out)) return std::nullopt;
    return out;
}

bool kv_store::get(std::string_view key, std::string& out) const { return impl_->get(key, out); }

bool kv_store::contains(std::string_view key) const { return impl_->contains(key); }

std::size_t kv_store::size() const { return impl_->size(); }

std::map<std::string, std::string> kv_store::get_all() const
{
    std::map<std::string, std::string> all;
    impl_->each([&](std::string_view k, std::string_view v) { all.emplace(k, v); });
    return all;
}

void kv_store::visit(const std::function<void(std::string_view, std::string_view)>& f) const { impl_->each(f); }

bool kv_store::check(std::string* why) const { return impl_->check(why); }

kv_stats kv_store::stats() const { return impl_->stats(); }

const std::string& kv_store::name() const noexcept { return impl_->label; }

} // namespace shmkit
