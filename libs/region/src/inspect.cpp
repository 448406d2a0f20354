// shmkit::inspect: a read-only look at a segment (see inspect.hpp).
//
// Nothing here writes to the segment: the file is opened O_RDONLY and
// mapped PROT_READ (a write would fault rather than happen), every shared
// word is read with an atomic load, and liveness is probed with queries
// only (F_OFD_GETLK through our own read-only description, /proc reads).
// Every offset comes from the validated copy of the header, and every
// structure parameter is checked against the payload size before it is used
// as an offset: shared memory is never trusted as an index.
#include <shmkit/inspect.hpp>

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/detail/buffer_base.hpp>
#include <shmkit/detail/checked.hpp>
#include <shmkit/detail/identity.hpp>
#include <shmkit/detail/kv_layout.hpp>
#include <shmkit/detail/pool_base.hpp>
#include <shmkit/detail/share_layout.hpp>
#include <shmkit/detail/unique_fd.hpp>
#include <shmkit/error.hpp>
#include <shmkit/sync/lock_state.hpp>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <algorithm>
#include <unordered_set>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shmkit {

const char* to_string(process_liveness l) noexcept
{
    switch (l) {
    case process_liveness::alive: return "alive";
    case process_liveness::dead: return "dead";
    case process_liveness::unknown: return "unknown";
    }
    return "unknown";
}

const char* to_string(lock_type t) noexcept { return t == lock_type::rwlock ? "rwlock" : "mutex"; }

std::uint32_t segment_report::attached_alive() const noexcept
{
    std::uint32_t n = 0;
    for (const auto& e : entries) n += (e.pid != 0 && e.alive()) ? 1 : 0;
    return n;
}

std::uint32_t segment_report::attached_dead() const noexcept
{
    std::uint32_t n = 0;
    for (const auto& e : entries) n += (e.pid != 0 && !e.alive()) ? 1 : 0;
    return n;
}

std::uint32_t segment_report::locks_held() const noexcept
{
    std::uint32_t n = 0;
    for (const auto& l : locks) n += l.held() ? 1 : 0;
    return n;
}

std::uint32_t segment_report::locks_dirty() const noexcept
{
    std::uint32_t n = 0;
    for (const auto& l : locks) n += l.dirty ? 1 : 0;
    return n;
}

std::uint64_t segment_report::lock_recoveries() const noexcept
{
    std::uint64_t n = 0;
    for (const auto& l : locks) n += l.recoveries + l.reader_recoveries;
    return n;
}

std::uint64_t segment_report::last_recovery_ns() const noexcept
{
    std::uint64_t n = 0;
    for (const auto& l : locks) n = std::max(n, l.last_recovery_ns);
    return n;
}

namespace {

using detail::attach_entry;
using detail::attach_table_header;
using detail::segment_header;
using detail::throw_errno;
using detail::throw_error;

constexpr auto relaxed = std::memory_order_relaxed;

// ---- Opening, read-only --------------------------------------------------------

/// "NAME" or "/NAME" -> "NAME"; refuses what shm_open would refuse (as region does).
std::string posix_component(const std::string& name)
{
    std::string n = (!name.empty() && name[0] == '/') ? name.substr(1) : name;
    if (n.empty() || n.find('/') != std::string::npos || n.size() > NAME_MAX || n == "." || n == ".." ||
        n.find('\0') != std::string::npos)
        throw std::invalid_argument("shmkit: invalid POSIX shared memory name '" + name +
                                    "': expected NAME or /NAME, one component of at most 255 bytes, no NUL byte");
    return n;
}

detail::unique_fd open_read_only(const std::string& path, const std::string& where)
{
    // The system reads a path up to its first NUL: it would open another file.
    if (path.find('\0') != std::string::npos)
        throw std::invalid_argument("shmkit: path '" + where + "' contains a NUL byte");
    // O_NONBLOCK | O_NOCTTY: a FIFO or a device opens without side effects,
    // and the S_ISREG check refuses it. O_NOFOLLOW: as opening a segment.
    detail::unique_fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        if (errno == ELOOP) throw_errno(ELOOP, where, "is a symbolic link; refusing to follow it");
        throw_errno(errno, where, "cannot open");
    }
    return fd;
}

/// Reads up to `n` bytes at offset 0; returns how many there were.
std::size_t read_prefix(int fd, void* buf, std::size_t n, const std::string& where)
{
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::pread(fd, static_cast<char*>(buf) + got, n - got, static_cast<off_t>(got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw_errno(errno, where, "cannot read");
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    return got;
}

/// A validated segment file mapped read-only. Offsets come from a private
/// copy of the header, validated against the file's size before mapping.
class readonly_segment {
public:
    readonly_segment(const std::string& path, const std::string& where) : where_(where)
    {
        fd_ = open_read_only(path, where);
        if (::fstat(fd_.get(), &st_) != 0) throw_errno(errno, where, "cannot stat");
        if (!S_ISREG(st_.st_mode)) throw_error(errc::not_a_segment, where, "not a regular file");
        read_header();
        map();
    }
    ~readonly_segment()
    {
        if (base_) ::munmap(const_cast<char*>(base_), size_);
    }
    readonly_segment(const readonly_segment&) = delete;
    readonly_segment& operator=(const readonly_segment&) = delete;

    const segment_header& header() const noexcept { return *reinterpret_cast<const segment_header*>(copy_); }
    const struct stat& status() const noexcept { return st_; }
    int fd() const noexcept { return fd_.get(); }
    const std::string& where() const noexcept { return where_; }
    /// The object at `offset` of the segment (a validated offset).
    template <class T>
    const T& at(std::uint64_t offset) const noexcept
    {
        return *reinterpret_cast<const T*>(base_ + offset);
    }
    /// The object at `offset` of the payload; the caller checked that it fits.
    template <class T>
    const T& data(std::uint64_t offset) const noexcept
    {
        return at<T>(header().data_offset + offset);
    }
    [[noreturn]] void corrupt(const std::string& what) const { throw_error(errc::corrupt_header, where_, what); }

private:
    void read_header()
    {
        const auto size = static_cast<std::uint64_t>(st_.st_size);
        const std::size_t got = read_prefix(fd_.get(), copy_, sizeof copy_, where_);
        // Decided by the magic first: a short file that is no segment is
        // "not a segment", not "truncated".
        if (got < sizeof detail::segment_magic ||
            std::memcmp(copy_, detail::segment_magic, sizeof detail::segment_magic) != 0)
            throw_error(errc::not_a_segment, where_, "not a shmkit segment (bad magic)");
        // Reads the copy only; checks every field against the file's size.
        // (A file shorter than a header is refused before the copy is read.)
        detail::validate_layout(copy_, static_cast<std::size_t>(size), where_);
    }
    void map()
    {
        size_ = static_cast<std::size_t>(header().total_size); // == st_size, validated
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_.get(), 0);
        if (p == MAP_FAILED) throw_errno(errno, where_, "cannot map");
        base_ = static_cast<const char*>(p);
    }

    std::string where_;
    detail::unique_fd fd_;
    struct stat st_ = {};
    alignas(segment_header) unsigned char copy_[detail::header_size] = {};
    const char* base_ = nullptr;
    std::size_t size_ = 0;
};

// ---- Header ---------------------------------------------------------------------

void fill_header(segment_report& r, const readonly_segment& s)
{
    const segment_header& h = s.header();
    r.file_size = static_cast<std::uint64_t>(s.status().st_size);
    r.memory_size = static_cast<std::uint64_t>(s.status().st_blocks) * 512;
    r.kind = static_cast<structure_kind>(h.kind);
    r.elem_type = static_cast<element_type>(h.elem_type);
    r.kind_name = to_string(r.kind);
    r.elem_type_name = to_string(r.elem_type);
    r.elem_size = h.elem_size;
    r.capacity = h.capacity;
    r.data_size = h.data_size;
    r.total_size = h.total_size;
    r.format_version = h.format_version;
    for (std::size_t i = 0; i < r.params.size(); ++i) r.params[i] = h.params[i];
    r.created_ns = h.created_ns;
    r.attach_capacity = h.attach_capacity;
    r.n_rwlocks = h.n_rwlocks;
    r.n_mutexes = h.n_mutexes;
}

// ---- Attach table and liveness ---------------------------------------------------

process_liveness from(detail::liveness l) noexcept
{
    switch (l) {
    case detail::liveness::alive: return process_liveness::alive;
    case detail::liveness::dead: return process_liveness::dead;
    case detail::liveness::unknown: break;
    }
    return process_liveness::unknown;
}

/// The library's liveness rule (attachment::owner_alive) for a prober with
/// a private description that holds no liveness lock: a held OFD lock is
/// proof of life, its absence proof of death; PID + start time otherwise.
process_liveness owner_liveness(const attach_entry& e, std::uint32_t index, std::uint64_t owner, int fd) noexcept
{
    if (owner == 0) return process_liveness::dead;
    if (owner & detail::owner_ofd_backed)
        return detail::ofd_held_elsewhere(fd, index) ? process_liveness::alive : process_liveness::dead;
    const auto pid = static_cast<std::uint32_t>(owner >> 32);
    const std::uint64_t start = (owner >> 1) & detail::owner_start_mask;
    return from(detail::probe_process(pid, start, detail::owner_start_mask, e.pidns.load(relaxed)));
}

/// The attach table of a segment, with the liveness of every entry's owner
/// probed once.
struct table_view {
    const attach_table_header* header = nullptr;
    const attach_entry* entries = nullptr;
    std::uint32_t capacity = 0;
    std::vector<process_liveness> liveness; ///< per entry; dead when free

    explicit table_view(const readonly_segment& s)
    {
        const segment_header& h = s.header();
        header = &s.at<attach_table_header>(h.attach_offset);
        entries = &s.at<attach_entry>(h.attach_offset + sizeof(attach_table_header));
        capacity = h.attach_capacity;
        liveness.assign(capacity, process_liveness::dead);
    }
    /// Whether the claim `generation` of entry `index` still lasts, and its owner lives.
    process_liveness claim_liveness(std::uint32_t index, std::uint64_t generation, std::uint64_t mask) const noexcept
    {
        if (index >= capacity) return process_liveness::dead;
        if ((entries[index].generation.load(std::memory_order_acquire) & mask) != (generation & mask))
            return process_liveness::dead; // the claim ended: the entry was reclaimed or claimed again
        return liveness[index];
    }
};

std::optional<attach_entry_report> entry_report(const table_view& t, std::uint32_t i, std::uint32_t n_rwlocks)
{
    const attach_entry& e = t.entries[i];
    attach_entry_report r;
    r.readers.resize(n_rwlocks);
    bool reading = false;
    for (std::uint32_t k = 0; k < n_rwlocks; ++k) reading |= (r.readers[k] = e.readers[k].load(relaxed)) != 0;
    const std::uint64_t owner = e.owner.load(std::memory_order_acquire);
    if (owner == 0 && !reading) return std::nullopt;
    r.index = i;
    r.pid = static_cast<std::uint32_t>(owner >> 32);
    r.ofd_backed = (owner & detail::owner_ofd_backed) != 0;
    r.generation = e.generation.load(relaxed);
    r.liveness = t.liveness[i];
    return r;
}

void fill_attach_table(segment_report& r, table_view& t, const readonly_segment& s)
{
    const std::uint64_t water = t.header->water.load(std::memory_order_acquire);
    r.high_water = static_cast<std::uint32_t>(water);
    r.attaches = t.header->attaches.load(relaxed);
    r.reclaimed = t.header->reclaimed.load(relaxed);
    // Every entry, not only those below the mark: a claimer is between its
    // CAS and its raise of the mark for a moment.
    for (std::uint32_t i = 0; i < t.capacity; ++i) {
        const attach_entry& e = t.entries[i];
        t.liveness[i] = owner_liveness(e, i, e.owner.load(std::memory_order_acquire), s.fd());
        if (auto er = entry_report(t, i, r.n_rwlocks)) r.entries.push_back(std::move(*er));
    }
}

// ---- Locks -----------------------------------------------------------------------

/// Who the token in a writer / owner word names.
void fill_holder(lock_report& l, const table_view& t, std::uint32_t word)
{
    l.holder_token = word & detail::token_mask;
    if (l.holder_token == 0) return;
    const std::uint32_t i = detail::token_index(l.holder_token);
    if (i >= t.capacity) return; // names no entry: dead, no PID
    l.holder_entry = i;
    const attach_entry& e = t.entries[i];
    const std::uint64_t gen = e.generation.load(std::memory_order_acquire);
    // A stale token (its claim ended): dead, and the PID in the entry is a
    // later claimer's, not the holder's.
    if ((gen & detail::token_generation_mask) != detail::token_generation(l.holder_token)) return;
    l.holder_liveness = t.liveness[i];
    l.holder_pid = static_cast<std::uint32_t>(e.owner.load(std::memory_order_acquire) >> 32);
}

lock_report rwlock_report(const table_view& t, const segment_report& r, const sync::rwlock_state& st, std::uint32_t i)
{
    lock_report l;
    l.type = lock_type::rwlock;
    l.index = i;
    fill_holder(l, t, st.writer.load(std::memory_order_acquire));
    for (const auto& e : r.entries) {
        l.readers += e.readers[i];
        if (!e.alive()) l.dead_readers += e.readers[i];
    }
    l.waiters = st.waiters.load(relaxed);
    l.dirty = st.dirty.load(relaxed) != 0;
    l.recoveries = st.recoveries.load(relaxed);
    l.last_recovery_ns = st.last_recovery_ns.load(relaxed);
    l.reader_recoveries = st.reader_recoveries.load(relaxed);
    l.last_recovery_ns = st.last_recovery_ns.load(relaxed);
    return l;
}

lock_report mutex_report(const table_view& t, const sync::mutex_state& st, std::uint32_t i)
{
    lock_report l;
    l.type = lock_type::mutex;
    l.index = i;
    fill_holder(l, t, st.owner.load(std::memory_order_acquire));
    l.waiters = st.waiters.load(relaxed);
    l.recoveries = st.recoveries.load(relaxed);
    return l;
}

void fill_locks(segment_report& r, const table_view& t, const readonly_segment& s)
{
    const std::uint64_t base = s.header().sync_offset;
    for (std::uint32_t i = 0; i < r.n_rwlocks; ++i)
        r.locks.push_back(rwlock_report(t, r, s.at<sync::rwlock_state>(base + i * cache_line_size), i));
    const std::uint64_t mutexes = base + std::uint64_t(r.n_rwlocks) * cache_line_size;
    for (std::uint32_t i = 0; i < r.n_mutexes; ++i)
        r.locks.push_back(mutex_report(t, s.at<sync::mutex_state>(mutexes + i * cache_line_size), i));
}

// ---- Structures ----------------------------------------------------------------

/// `offset + length` of the payload lies within it.
bool fits(const readonly_segment& s, std::optional<std::uint64_t> end)
{
    return end && *end <= s.header().data_size;
}

/// The name of a kv_store table or share value segment of the structure at
/// `path`, in the same directory: "<path>~<id, 16 hex digits>~<gen>".
std::string sibling(const std::string& path, std::uint64_t id, std::uint64_t gen)
{
    char b[64];
    std::snprintf(b, sizeof b, "~%016llx~%llu", static_cast<unsigned long long>(id),
                  static_cast<unsigned long long>(gen));
    return path + b;
}

buffer_summary buffer_of(const readonly_segment& s)
{
    const segment_header& h = s.header();
    buffer_summary b;
    b.elements = h.capacity;
    b.type = static_cast<element_type>(h.elem_type);
    b.elem_size = h.elem_size;
    b.stride = h.params[0];
    const auto bytes = detail::checked_mul(h.capacity, b.stride);
    if (b.stride < h.elem_size || !bytes || !fits(s, detail::checked_add(*bytes, detail::buffer_payload_offset)))
        s.corrupt("buffer capacity and element stride do not fit the data area");
    b.sequence = s.data<detail::buffer_control>(0).seq.sequence();
    b.write_open = (b.sequence & 1) != 0;
    b.bulk_recoveries = s.data<detail::buffer_counters>(sizeof(detail::buffer_control)).bulk_recoveries.load(relaxed);
    return b;
}

/// Where the pool's parts are (as pool_base.cpp lays them out), checked.
struct pool_parts {
    std::uint64_t lines, owners;
};

pool_parts pool_geometry(const readonly_segment& s)
{
    using namespace detail;
    const segment_header& h = s.header();
    const std::uint64_t n_lines = h.params[0], stride = h.params[1];
    if (n_lines != h.attach_capacity) s.corrupt("pool handle lines differ from the attach capacity");
    if (h.elem_size == 0 || stride < h.elem_size || h.capacity == 0) s.corrupt("bad pool slot size or capacity");
    const std::uint64_t lines = sizeof(pool_control) + sizeof(pool_counters);
    const auto owners = checked_add(lines, n_lines * sizeof(pool_handle_line)); // n_lines <= 4095
    const auto owner_bytes = checked_mul(h.capacity, sizeof(std::uint64_t));
    const auto rounded = owner_bytes ? checked_align_up(*owner_bytes, cache_line_size) : std::nullopt;
    const auto slots = owners && rounded ? checked_add(*owners, *rounded) : std::nullopt;
    const auto slot_bytes = checked_mul(h.capacity, stride);
    if (!slots || !slot_bytes || !fits(s, checked_add(*slots, *slot_bytes)))
        s.corrupt("pool capacity and slot size do not fit the data area");
    return {lines, *owners};
}

pool_summary pool_of(const readonly_segment& s, const table_view& t)
{
    using namespace detail;
    const segment_header& h = s.header();
    const pool_parts g = pool_geometry(s);
    pool_summary p;
    p.slots = h.capacity;
    p.slot_size = h.params[1];
    const auto* owners = &s.data<std::atomic<std::uint64_t>>(g.owners);
    for (std::uint64_t i = 0; i < h.capacity; ++i) {
        const std::uint64_t id = owners[i].load(relaxed);
        if (id == 0) continue;
        ++p.used;
        if (t.claim_liveness(owner_id_index(id), owner_id_generation(id), owner_id_generation_mask) ==
            process_liveness::dead)
            ++p.dead_owned;
    }
    const auto* lines = &s.data<pool_handle_line>(g.lines);
    for (std::uint64_t i = 0; i < h.params[0]; ++i) {
        p.allocs += lines[i].allocs.load(relaxed);
        p.frees += lines[i].frees.load(relaxed);
    }
    const auto& c = s.data<pool_counters>(sizeof(pool_control));
    p.waits = c.waits.load(relaxed);
    p.timeouts = c.timeouts.load(relaxed);
    p.recoveries = c.recoveries.load(relaxed);
    return p;
}

/// A kv_store table's facts; checks its parameters as kv_store does.
kv_table_summary kv_table_of(const readonly_segment& s, const std::string& path)
{
    using namespace detail;
    const segment_header& h = s.header();
    const std::uint64_t cells = h.params[0], arena = h.params[1];
    const auto index = checked_mul(cells, sizeof(kv_cell));
    const auto need = index ? checked_add(sizeof(kv_table_header) + *index, arena) : std::nullopt;
    if (cells < 256 || (cells & (cells - 1)) != 0 || arena < 4096 || !fits(s, need))
        s.corrupt("not a valid kv_store table (cells " + std::to_string(cells) + ", arena " + std::to_string(arena) +
                  ")");
    const auto& th = s.data<kv_table_header>(0);
    kv_table_summary t;
    t.path = path;
    t.generation = h.params[2];
    t.cells = cells;
    t.entries = th.entries.load(relaxed);
    t.erased = th.erased.load(relaxed);
    t.arena_size = arena;
    t.arena_used = th.tail.load(relaxed);
    t.live_bytes = th.live_bytes.load(relaxed);
    t.overwrite_pending = th.pending_new.load(relaxed) != 0;
    return t;
}

/// The current table of a root, if its file can be inspected and is the
/// table the root names (nothing otherwise: it may be replaced meanwhile).
std::optional<kv_table_summary> current_kv_table(const kv_summary& k)
{
    try {
        readonly_segment t(k.table_path, k.table_path);
        const segment_header& h = t.header();
        if (h.kind != static_cast<std::uint32_t>(structure_kind::kv) ||
            h.elem_type != static_cast<std::uint32_t>(element_type::bytes) || h.params[2] != k.generation ||
            h.params[3] != k.store_id)
            return std::nullopt;
        return kv_table_of(t, k.table_path);
    } catch (const error&) {
        return std::nullopt;
    }
}

kv_summary kv_of(const readonly_segment& s, const std::string& path, segment_report& r)
{
    const segment_header& h = s.header();
    kv_summary k;
    if (h.elem_type == static_cast<std::uint32_t>(element_type::bytes)) {
        r.role = "table";
        k.is_table = true;
        k.store_id = h.params[3];
        k.generation = h.params[2];
        k.table = kv_table_of(s, path);
        return k;
    }
    if (h.elem_type != static_cast<std::uint32_t>(element_type::none) || h.n_rwlocks < 1 ||
        !fits(s, sizeof(detail::kv_root)))
        s.corrupt("not a valid kv_store root or table");
    r.role = "root";
    const auto& root = s.data<detail::kv_root>(0);
    k.store_id = h.params[0];
    k.generation = root.generation.load(std::memory_order_acquire);
    k.removed = root.removed.load(relaxed) != 0;
    k.grows = root.grows.load(relaxed);
    k.repairs = root.repairs.load(relaxed);
    k.repair_needed = root.repair_needed.load(relaxed) != 0;
    if (k.generation != 0) {
        k.table_path = sibling(path, k.store_id, k.generation);
        k.table = current_kv_table(k);
    }
    return k;
}

share_summary share_of(const readonly_segment& s, const std::string& path, segment_report& r)
{
    using namespace detail;
    const segment_header& h = s.header();
    share_summary v;
    v.share_id = h.params[0];
    if (h.elem_type == static_cast<std::uint32_t>(element_type::bytes)) {
        r.role = "value";
        v.is_value_segment = true;
        v.value_generation = h.params[1];
        v.value_size = h.capacity;
        v.value_inline = false;
        return v;
    }
    const std::uint64_t inline_capacity = h.params[1];
    if (h.elem_type != static_cast<std::uint32_t>(element_type::none) || h.n_rwlocks < 1 ||
        h.data_size < sizeof(share_root) || v.share_id == 0 || inline_capacity % cache_line_size != 0 ||
        inline_capacity > (h.data_size - sizeof(share_root)) / 2)
        s.corrupt("not a valid shmkit share root or value segment");
    r.role = "root";
    const auto& root = s.data<share_root>(0);
    const std::uint64_t state = root.state.load(std::memory_order_acquire);
    v.key = static_cast<std::uint32_t>(h.params[2]);
    v.inline_capacity = inline_capacity;
    v.version = share_state_version(state);
    v.current_slot = share_state_slot(state);
    v.value_size = root.slot[v.current_slot].length.load(relaxed);
    v.value_generation = root.slot[v.current_slot].gen.load(relaxed);
    v.value_inline = v.value_generation == 0;
    if (!v.value_inline) v.value_path = sibling(path, v.share_id, v.value_generation);
    v.removed = root.removed.load(relaxed) != 0;
    v.repairs = root.repairs.load(relaxed);
    return v;
}

void fill_structure(segment_report& r, const readonly_segment& s, const table_view& t, const std::string& path)
{
    switch (r.kind) {
    case structure_kind::buffer: r.buffer = buffer_of(s); break;
    case structure_kind::pool: r.pool = pool_of(s, t); break;
    case structure_kind::kv: r.kv = kv_of(s, path, r); break;
    case structure_kind::share: r.share = share_of(s, path, r); break;
    case structure_kind::raw: break;
    }
}

segment_report inspect_file(const std::string& path, const std::string& where)
{
    const readonly_segment s(path, where);
    segment_report r;
    r.path = path;
    fill_header(r, s);
    table_view t(s);
    fill_attach_table(r, t, s);
    fill_locks(r, t, s);
    fill_structure(r, s, t, path);
    return r;
}

// ---- Structural check (read-only) ----------------------------------------------

std::string num(std::uint64_t v) { return std::to_string(v); }

bool lock_busy(const segment_report& r, std::uint32_t rwlock)
{
    return rwlock < r.locks.size() && r.locks[rwlock].type == lock_type::rwlock && r.locks[rwlock].held();
}

void check_attach(check_report& c, const table_view& t)
{
    const segment_report& r = c.report;
    const std::uint32_t water = static_cast<std::uint32_t>(t.header->water.load(std::memory_order_acquire));
    if (water > t.capacity)
        c.corruption.push_back("attach table: high-water mark " + num(water) + " exceeds the capacity " +
                               num(t.capacity));
    for (const auto& e : r.entries) {
        const std::uint64_t owner = t.entries[e.index].owner.load(std::memory_order_acquire);
        std::uint32_t reads = 0;
        for (auto n : e.readers) reads += n;
        if (owner != 0 && e.pid == 0)
            c.corruption.push_back("attach entry " + num(e.index) + ": owner word names PID 0");
        else if (owner != 0 && !e.alive())
            c.needs_recover.push_back("attach entry " + num(e.index) + " of dead pid " + num(e.pid));
        else if (owner == 0 && reads != 0)
            c.needs_recover.push_back("attach entry " + num(e.index) + " is free but still holds " + num(reads) +
                                      " read lock(s)");
        if (owner == 0 && e.index >= water && reads != 0)
            c.corruption.push_back("attach entry " + num(e.index) + " above the high-water mark " + num(water) +
                                   " holds read locks");
    }
}

void check_locks(check_report& c, const table_view& t)
{
    for (const auto& l : c.report.locks) {
        const std::string name = std::string(to_string(l.type)) + " " + num(l.index);
        if (l.holder_token != 0 && detail::token_index(l.holder_token) >= t.capacity)
            c.corruption.push_back(name + ": holder token 0x" + [&] {
                char b[16];
                std::snprintf(b, sizeof b, "%x", l.holder_token);
                return std::string(b);
            }() + " names entry " + num(detail::token_index(l.holder_token)) + ", beyond the attach table (" +
                                   num(t.capacity) + " entries)");
        else if (l.held_by_dead())
            c.needs_recover.push_back(name + " held by a dead holder" +
                                      (l.holder_pid ? " (pid " + num(l.holder_pid) + ")" : std::string()));
        if (l.dead_readers != 0) c.needs_recover.push_back(name + ": " + num(l.dead_readers) + " read lock(s) of dead processes");
    }
}

void check_pool(check_report& c, const readonly_segment& s, const table_view& t)
{
    using namespace detail;
    const segment_header& h = s.header();
    const pool_parts g = pool_geometry(s);
    const auto* owners = &s.data<std::atomic<std::uint64_t>>(g.owners);
    std::uint64_t bad = 0;
    for (std::uint64_t i = 0; i < h.capacity; ++i) {
        const std::uint64_t id = owners[i].load(relaxed);
        if (id == 0) continue;
        const std::uint32_t e = owner_id_index(id);
        std::string why;
        if ((id & token_index_mask) == 0 || e >= t.capacity)
            why = "names entry " + num(std::uint64_t(id & token_index_mask) - 1) + ", beyond the attach table";
        else if (owner_id_generation(id) > t.entries[e].generation.load(relaxed))
            why = "names claim " + num(owner_id_generation(id)) + " of entry " + num(e) + ", which has had only " +
                  num(t.entries[e].generation.load(relaxed));
        if (why.empty()) continue;
        if (bad++ < 8) c.corruption.push_back("pool slot " + num(i) + ": owner word " + why);
    }
    if (bad > 8) c.corruption.push_back("pool: " + num(bad - 8) + " more slots with bad owner words");
    if (c.report.pool && c.report.pool->dead_owned)
        c.needs_recover.push_back(num(c.report.pool->dead_owned) + " pool slot(s) held by dead owners");
}

/// The key of live cell `m` (inline or arena; bounds checked already).
std::string_view kv_cell_key(const readonly_segment& s, const detail::kv_cell& cell, std::uint64_t m,
                             std::uint64_t arena_base, char (&copy)[detail::kv_inline_bytes])
{
    using namespace detail;
    if (kv_meta::is_inline(m)) {
        for (std::size_t w = 0; w < 4; ++w) {
            const std::uint64_t v = cell.bytes[w].load(relaxed);
            std::memcpy(copy + 8 * w, &v, 8);
        }
        return {copy, kv_meta::inline_klen(m)};
    }
    const auto& rh = s.data<kv_record_head>(arena_base + kv_meta::arena_offset(m));
    return {reinterpret_cast<const char*>(&rh + 1), rh.klen};
}

/// Hash-table invariants of a settled table: every live key's tag matches
/// its hash, the key is reachable from its home cell (no empty cell on the
/// way: a lookup stops at one) and is stored once.
void check_kv_lookups(check_report& c, const readonly_segment& s, const std::string& label, std::uint64_t seed)
{
    using namespace detail;
    const std::uint64_t cells = s.header().params[0], mask = cells - 1;
    const auto* cell = &s.data<kv_cell>(sizeof(kv_table_header));
    const std::uint64_t arena_base = sizeof(kv_table_header) + cells * sizeof(kv_cell);
    std::unordered_set<std::string> seen;
    std::uint64_t problems = 0;
    auto bad = [&](const std::string& what) {
        if (problems++ < 8) c.corruption.push_back(label + what);
    };
    for (std::uint64_t i = 0; i < cells; ++i) {
        const std::uint64_t m = cell[i].meta.load(relaxed);
        if (!kv_meta::live(m)) continue;
        char copy[kv_inline_bytes];
        const std::string_view key = kv_cell_key(s, cell[i], m, arena_base, copy);
        const std::uint64_t hash = kv_hash(key, seed);
        if (!kv_meta::tag_matches(m, hash)) bad("cell " + num(i) + ": its tag does not match its key's hash");
        for (std::uint64_t j = hash & mask; j != i; j = (j + 1) & mask)
            if (cell[j].meta.load(relaxed) == 0) {
                bad("cell " + num(i) + ": its key cannot be found (an empty cell " + num(j) +
                    " lies between it and its home cell)");
                break;
            }
        if (!seen.insert(std::string(key)).second) bad("cell " + num(i) + ": its key is stored twice");
    }
    if (problems > 8) c.corruption.push_back(label + num(problems - 8) + " more lookup problems");
}

/// A kv table's cells against its header; `settled`: no writer holds the
/// store's lock, so the counters must agree with the cells, and (with the
/// store's hash `seed`) the lookups must find every key once.
void check_kv_table(check_report& c, const readonly_segment& s, const std::string& label, bool settled,
                    std::optional<std::uint64_t> seed)
{
    using namespace detail;
    const segment_header& h = s.header();
    const std::uint64_t cells = h.params[0], arena = h.params[1];
    const auto& th = s.data<kv_table_header>(0);
    const auto* cell = &s.data<kv_cell>(sizeof(kv_table_header));
    const std::uint64_t arena_base = sizeof(kv_table_header) + cells * sizeof(kv_cell);
    const std::uint64_t tail = th.tail.load(relaxed);
    auto bad = [&](const std::string& what) { c.corruption.push_back(label + what); };
    if (tail > arena) bad("arena tail " + num(tail) + " beyond the arena's " + num(arena) + " bytes");
    const std::uint64_t limit = tail < arena ? tail : arena;
    std::uint64_t live = 0, erased = 0, bytes = 0, bad_cells = 0;
    for (std::uint64_t i = 0; i < cells; ++i) {
        const std::uint64_t m = cell[i].meta.load(relaxed);
        if (m == 0) continue;
        std::string why;
        const std::uint64_t st = m & kv_meta::state_mask;
        if (st == 0) why = "meta word 0x" + [&] {
            char b[24];
            std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(m));
            return std::string(b);
        }() + " has no state";
        else if (kv_meta::erased(m)) ++erased;
        else if (kv_meta::is_inline(m)) {
            const std::size_t kl = kv_meta::inline_klen(m), vl = kv_meta::inline_vlen(m);
            if (kl + vl > kv_inline_bytes) why = "inline key and value of " + num(kl + vl) + " bytes (at most 32)";
            else ++live, bytes += kl + vl;
        } else {
            const std::uint64_t off = kv_meta::arena_offset(m);
            if (off < kv_arena_start || off + sizeof(kv_record_head) > limit)
                why = "arena offset " + num(off) + " outside the committed arena (" + num(limit) + " bytes)";
            else {
                const auto& rh = s.data<kv_record_head>(arena_base + off);
                const std::uint64_t size = kv_record_size(rh.klen, rh.vlen);
                if (off + size > limit)
                    why = "arena record at " + num(off) + " (" + num(size) + " bytes) runs past the committed arena (" +
                          num(limit) + " bytes)";
                else ++live, bytes += std::uint64_t(rh.klen) + rh.vlen;
            }
        }
        if (!why.empty() && bad_cells++ < 8) bad("cell " + num(i) + ": " + why);
    }
    if (bad_cells > 8) bad(num(bad_cells - 8) + " more bad cells");
    if (!settled || bad_cells) return;
    const std::uint64_t e = th.entries.load(relaxed), x = th.erased.load(relaxed), lb = th.live_bytes.load(relaxed);
    if (e != live) bad("entries counter " + num(e) + " but " + num(live) + " live cells");
    if (x != erased) bad("erased counter " + num(x) + " but " + num(erased) + " erased cells");
    if (lb != bytes) bad("live bytes counter " + num(lb) + " but the live cells hold " + num(bytes));
    if (seed) check_kv_lookups(c, s, label, *seed);
}

void check_kv(check_report& c, const readonly_segment& s, const std::string& path)
{
    const segment_report& r = c.report;
    if (!r.kv) return;
    const kv_summary& k = *r.kv;
    if (k.is_table) {
        // The store's lock is in the root: the counters are compared only
        // if the root is there, names this table and no writer holds it.
        bool settled = false;
        std::optional<std::uint64_t> seed;
        const auto slash = path.rfind('/');
        const auto tilde = path.find('~', slash == std::string::npos ? 0 : slash);
        if (tilde != std::string::npos) {
            try {
                const segment_report root = inspect_file(path.substr(0, tilde), path.substr(0, tilde));
                settled = root.kv && !root.kv->is_table && root.kv->store_id == k.store_id &&
                          root.kv->generation == k.generation && !root.kv->repair_needed && !lock_busy(root, 0) &&
                          !root.locks.empty() && !root.locks[0].dirty;
                if (settled) seed = root.params[1];
            } catch (const error&) {
            }
        }
        check_kv_table(c, s, "", settled, seed);
        return;
    }
    if (k.repair_needed) c.needs_recover.push_back("kv_store: a repair is owed (a writer died)");
    if (k.generation == 0) return;
    try {
        readonly_segment t(k.table_path, k.table_path);
        const segment_header& h = t.header();
        if (h.kind != static_cast<std::uint32_t>(structure_kind::kv) ||
            h.elem_type != static_cast<std::uint32_t>(element_type::bytes) || h.params[3] != k.store_id ||
            h.params[2] != k.generation) {
            c.corruption.push_back("kv_store: the current table " + k.table_path + " is not table " +
                                   num(k.generation) + " of this store");
            return;
        }
        kv_table_of(t, k.table_path); // its parameters
        const bool settled = !lock_busy(r, 0) && !k.repair_needed && (!r.locks.empty() && !r.locks[0].dirty);
        check_kv_table(c, t, "kv_store table " + k.table_path + ": ", settled, r.params[1]);
    } catch (const error& e) {
        c.corruption.push_back("kv_store: the current table " + num(k.generation) + " (" + k.table_path +
                               ") cannot be read: " + e.what());
    }
}

void check_share(check_report& c, const std::string& path)
{
    const segment_report& r = c.report;
    if (!r.share || r.share->is_value_segment) return;
    const share_summary& v = *r.share;
    if (v.version == 0) c.corruption.push_back("share: version 0 (a share starts at version 1)");
    if (v.value_inline) {
        if (v.value_size > v.inline_capacity)
            c.corruption.push_back("share: the value's length " + num(v.value_size) + " exceeds the inline area's " +
                                   num(v.inline_capacity) + " bytes");
        return;
    }
    (void)path;
    try {
        readonly_segment t(v.value_path, v.value_path);
        const segment_header& h = t.header();
        if (h.kind != static_cast<std::uint32_t>(structure_kind::share) ||
            h.elem_type != static_cast<std::uint32_t>(element_type::bytes) || h.params[0] != v.share_id ||
            h.params[1] != v.value_generation)
            c.corruption.push_back("share: " + v.value_path + " is not value segment " + num(v.value_generation) +
                                   " of this share");
        else if (v.value_size > h.capacity)
            c.corruption.push_back("share: the value's length " + num(v.value_size) + " exceeds value segment " +
                                   num(v.value_generation) + "'s capacity " + num(h.capacity));
    } catch (const error& e) {
        c.corruption.push_back("share: slot " + num(v.current_slot) + " names value segment " +
                               num(v.value_generation) + ", which cannot be read: " + e.what());
    }
}

check_report check_file(const std::string& path, const std::string& where)
{
    const readonly_segment s(path, where);
    check_report c;
    segment_report& r = c.report;
    r.path = path;
    fill_header(r, s);
    table_view t(s);
    fill_attach_table(r, t, s);
    fill_locks(r, t, s);
    fill_structure(r, s, t, path);
    check_attach(c, t);
    check_locks(c, t);
    if (r.kind == structure_kind::pool) check_pool(c, s, t);
    if (r.kind == structure_kind::kv) check_kv(c, s, path);
    if (r.kind == structure_kind::share) check_share(c, path);
    return c;
}

} // namespace

segment_report inspect(const std::string& path) { return inspect_file(path, path); }

check_report check_segment(const std::string& path) { return check_file(path, path); }

check_report check_segment(posix_name_t, const std::string& name)
{
    const std::string n = posix_component(name);
    check_report c = check_file("/dev/shm/" + n, "/" + n);
    c.report.name = "/" + n;
    return c;
}

segment_report inspect(posix_name_t, const std::string& name)
{
    const std::string n = posix_component(name);
    segment_report r = inspect_file("/dev/shm/" + n, "/" + n);
    r.name = "/" + n;
    return r;
}

} // namespace shmkit
