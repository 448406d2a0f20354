// shmkit/inspect.hpp: a read-only look at a segment, for tools and
// monitoring: its header, who is attached and alive, the state of its
// locks, and a summary of the structure it holds.
//
//     shmkit::segment_report r = shmkit::inspect(shmkit::posix_name, "/jobs");
//     std::cout << r.kind_name << ": " << r.attached_alive() << " processes attached\n";
//     if (r.pool) std::cout << r.pool->used << " of " << r.pool->slots << " slots used\n";
//
// What inspect() does to the segment: nothing. It opens the file O_RDONLY,
// checks the header from a copy read with pread(2) (so a file that is not a
// segment is never mapped), maps the segment PROT_READ, and reads words
// with atomic loads. It claims no attach-table entry, takes no lock,
// recovers nothing and reclaims nothing: the attach counters and every
// byte of the file are the same afterwards, and processes using the
// segment are not disturbed. Liveness is probed as the library probes it
// (attach_table.hpp): an OFD-lock query (F_OFD_GETLK, through its own
// read-only description) for OFD-backed owners, /proc/<pid>/stat (PID +
// start time) otherwise.
//
// A report is a snapshot of relaxed loads taken while other processes may
// work on the segment: consistent word by word, not as a whole (a counter
// read before an allocation and the owner words after it, say).
#ifndef SHMKIT_INSPECT_HPP
#define SHMKIT_INSPECT_HPP

#include <shmkit/detail/header.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace shmkit {

/// Tag of the inspect() overload that takes a POSIX shared-memory name.
struct posix_name_t {
    explicit posix_name_t() = default;
};
/// Selects inspect(posix_name_t, name): `inspect(shmkit::posix_name, "/jobs")`.
inline constexpr posix_name_t posix_name{};

/// Whether a process recorded in a segment still runs, as a prober sees it.
enum class process_liveness {
    alive,  ///< it runs (its OFD lock is held, or its PID has its start time)
    dead,   ///< it is gone (or its PID now names another process)
    unknown ///< cannot tell (another PID namespace, /proc unreadable): never taken for a death
};

/// "alive", "dead" or "unknown". O(1), throws nothing.
const char* to_string(process_liveness l) noexcept;

/// Writes to_string(l).
inline std::ostream& operator<<(std::ostream& os, process_liveness l) { return os << to_string(l); }

/// One attach-table entry in use: claimed by a process, or still holding
/// read counts of one.
struct attach_entry_report {
    std::uint32_t index = 0;      ///< entry number in the attach table
    std::uint32_t pid = 0;        ///< PID recorded by the owner (in its PID namespace); 0: free entry with read counts left
    process_liveness liveness = process_liveness::dead; ///< of the owner; dead for a free entry
    bool ofd_backed = false;      ///< liveness known from an OFD lock (else PID + start time only)
    std::uint64_t generation = 0; ///< claims of this entry, ever
    std::vector<std::uint32_t> readers; ///< read locks held, one count per rwlock of the segment

    /// True unless the owner is known to be dead (unknown counts as alive,
    /// as it does for the library). O(1), throws nothing.
    bool alive() const noexcept { return liveness != process_liveness::dead; }
};

/// Which kind of lock a lock_report describes.
enum class lock_type { rwlock, mutex };

/// "rwlock" or "mutex". O(1), throws nothing.
const char* to_string(lock_type t) noexcept;

/// Writes to_string(t).
inline std::ostream& operator<<(std::ostream& os, lock_type t) { return os << to_string(t); }

/// The state of one lock of the segment (sync/lock_state.hpp).
///
/// Recoveries are counted, and the last one's time is stamped in the lock
/// (CLOCK_REALTIME; 0 in segments that never had one, or made by a version
/// before the stamp). For a rwlock, `dirty` says whether the latest
/// takeover of a dead writer has been followed by a writer's unlock yet (if
/// not, the data it guards may be half-updated).
struct lock_report {
    lock_type type = lock_type::rwlock; ///< a rwlock or a mutex
    std::uint32_t index = 0;        ///< rwlock i or mutex i of the segment
    std::uint32_t holder_token = 0; ///< token in the writer / owner word (attach_table.hpp); 0: not held so
    /// Entry of the exclusive holder (writer or mutex owner), if its token
    /// names an entry of the table.
    std::optional<std::uint32_t> holder_entry;
    /// PID of the exclusive holder; 0 if free, or if its claim of the entry
    /// has ended (the entry was reclaimed or claimed again: a stale token).
    std::uint32_t holder_pid = 0;
    /// Liveness of the exclusive holder: dead for a stale token; alive or
    /// unknown only while its claim lasts. Meaningless when holder_token is 0.
    process_liveness holder_liveness = process_liveness::dead;
    std::uint32_t readers = 0;      ///< rwlock: read locks held, all entries together
    std::uint32_t dead_readers = 0; ///< rwlock: of which by entries whose process is dead
    std::uint32_t waiters = 0;      ///< processes sleeping on the writer / owner word
    bool dirty = false;             ///< rwlock: a dead writer was taken over and no writer unlocked since
    std::uint64_t recoveries = 0;   ///< dead writers (rwlock) / owners (mutex) recovered, ever
    std::uint64_t reader_recoveries = 0; ///< rwlock: dead readers released by a writer, ever
    std::uint64_t last_recovery_ns = 0;  ///< CLOCK_REALTIME (ns) of the last recovery of this lock; 0: none recorded

    /// Held exclusively (writer or mutex owner) or, for a rwlock, shared.
    bool held() const noexcept { return holder_token != 0 || readers != 0; }
    /// Held exclusively by a process that is known to be dead: the next
    /// acquirer that waits will recover it.
    bool held_by_dead() const noexcept { return holder_token != 0 && holder_liveness == process_liveness::dead; }
};

/// buffer<T> / str_buffer (detail/buffer_base.hpp).
struct buffer_summary {
    std::uint64_t elements = 0;   ///< capacity, in elements
    element_type type = element_type::none; ///< the element type
    std::uint32_t elem_size = 0;  ///< bytes per element (str_buffer: the width)
    std::uint64_t stride = 0;     ///< bytes per slot of the element area
    std::uint32_t sequence = 0;   ///< the seqlock's sequence: odd while a bulk write is open
    bool write_open = false;      ///< a bulk write is in progress, or was left open by a dead writer
    std::uint64_t bulk_recoveries = 0; ///< bulk writes left open by a dead writer and closed, ever
};

/// raw_pool / pool<T> / str_pool (detail/pool_base.hpp).
struct pool_summary {
    std::uint64_t slots = 0;      ///< capacity
    std::uint64_t slot_size = 0;  ///< bytes per slot
    std::uint64_t used = 0;       ///< slots allocated now (non-zero owner words)
    std::uint64_t dead_owned = 0; ///< of which held by owners known to be dead (recoverable)
    std::uint64_t allocs = 0;     ///< slots allocated, ever (all handles' counters)
    std::uint64_t frees = 0;      ///< slots freed, ever
    std::uint64_t waits = 0;      ///< allocations that had to block
    std::uint64_t timeouts = 0;   ///< blocking allocations that gave up
    std::uint64_t recoveries = 0; ///< slots of dead owners freed
};

/// The facts of a kv_store table segment (detail/kv_layout.hpp).
struct kv_table_summary {
    std::string path;             ///< the table's file
    std::uint64_t generation = 0; ///< the table's number
    std::uint64_t cells = 0;      ///< capacity in cells
    std::uint64_t entries = 0;    ///< live entries
    std::uint64_t erased = 0;     ///< erased cells (reused by the next rebuild)
    std::uint64_t arena_size = 0; ///< bytes of the arena of large records
    std::uint64_t arena_used = 0; ///< arena bytes committed
    std::uint64_t live_bytes = 0; ///< key and value bytes of the live entries
    bool overwrite_pending = false; ///< an overwrite was interrupted (a writer died between its two steps)
};

/// kv_store: its root segment or one of its tables.
struct kv_summary {
    bool is_table = false;        ///< this segment is a table (else the root)
    std::uint64_t store_id = 0;   ///< names the store's tables
    /// Root: the current table's number (0: no table yet, the store is
    /// empty); table: this table's number.
    std::uint64_t generation = 0;
    bool removed = false;         ///< root: kv_store::remove() ran
    std::uint64_t grows = 0;      ///< root: table rebuilds, ever
    std::uint64_t repairs = 0;    ///< root: repairs after a writer died, ever
    bool repair_needed = false;   ///< root: a repair is owed (a takeover whose repair did not complete)
    /// Root: the current table's file (in the root's directory), empty when
    /// generation is 0.
    std::string table_path;
    /// The table's facts: this segment's if it is a table; for a root, the
    /// current table's if its file could be inspected (nothing otherwise).
    std::optional<kv_table_summary> table;
};

/// share (native backend, detail/share_layout.hpp): its root segment or a
/// value segment.
struct share_summary {
    bool is_value_segment = false; ///< this segment holds one value (else the root)
    std::uint64_t share_id = 0;    ///< names the value segments
    std::uint32_t key = 0;         ///< root: the IPC key (as an unsigned number)
    std::uint64_t inline_capacity = 0; ///< root: bytes of each inline area
    std::uint64_t version = 0;     ///< root: 1 + stores
    unsigned current_slot = 0;     ///< root: which of the two slots holds the value
    std::uint64_t value_size = 0;  ///< root: bytes of the value; value segment: its capacity
    bool value_inline = true;      ///< root: the value is in the root (else in a value segment)
    std::uint64_t value_generation = 0; ///< root: the value segment's number (0: inline); value segment: its own
    std::string value_path;        ///< root: the value segment's file, when not inline
    bool removed = false;          ///< root: the share was destroyed
    std::uint64_t repairs = 0;     ///< root: repairs after a writer died, ever
};

/// What inspect() found: the header, the attach table, the locks and a
/// summary of the structure. A value; copying it shares nothing.
struct segment_report {
    std::string path;            ///< the file inspected
    std::string name;            ///< the POSIX name ("/NAME") when inspected as one, else empty
    std::uint64_t file_size = 0; ///< bytes of the file (st_size)
    std::uint64_t memory_size = 0; ///< bytes allocated to it (st_blocks * 512): memory for /dev/shm

    structure_kind kind = structure_kind::raw;   ///< the structure the segment holds
    element_type elem_type = element_type::none; ///< the element type of its payload
    std::string kind_name;       ///< to_string(kind): "segment", "buffer", "pool", "kv_store", "share"
    std::string elem_type_name;  ///< to_string(elem_type): "int64", "bytes", ...
    /// What part of a structure this segment is: "root" or "table" (kv_store),
    /// "root" or "value" (share); empty for the others.
    std::string role;
    std::uint32_t elem_size = 0;  ///< bytes per element (str_buffer, str_pool: the maximum length)
    std::uint64_t capacity = 0;   ///< elements, slots, cells or bytes (1 for kv_store and share roots)
    std::uint64_t data_size = 0;  ///< payload bytes
    std::uint64_t total_size = 0; ///< bytes the header says the segment has
    std::uint32_t format_version = 0; ///< on-disk format version (detail::format_version)
    std::array<std::uint64_t, 4> params{}; ///< structure-specific parameters
    std::uint64_t created_ns = 0; ///< creation time, ns since the epoch (CLOCK_REALTIME)

    std::uint32_t attach_capacity = 0; ///< attach-table entries
    std::uint32_t high_water = 0; ///< 1 + the highest entry in use (writers scan below it)
    std::uint64_t attaches = 0;   ///< entries ever claimed
    std::uint64_t reclaimed = 0;  ///< entries of dead processes reclaimed
    std::uint32_t n_rwlocks = 0; ///< rwlocks of the segment
    std::uint32_t n_mutexes = 0; ///< mutexes of the segment

    std::vector<attach_entry_report> entries; ///< the entries in use, by index
    std::vector<lock_report> locks;           ///< the rwlocks, then the mutexes

    std::optional<buffer_summary> buffer; ///< for a buffer (nothing for other kinds)
    std::optional<pool_summary> pool;     ///< for a pool
    std::optional<kv_summary> kv;         ///< for a kv_store root or table
    std::optional<share_summary> share;   ///< for a share root or value segment

    /// Entries whose process is alive (or cannot be told dead). O(entries).
    std::uint32_t attached_alive() const noexcept;
    /// Entries whose process is dead, not yet reclaimed. O(entries).
    std::uint32_t attached_dead() const noexcept;
    /// Locks held now (exclusively or shared). O(locks).
    std::uint32_t locks_held() const noexcept;
    /// Locks marked dirty (a recovered dead writer, no writer unlock since). O(locks).
    std::uint32_t locks_dirty() const noexcept;
    /// Lock recoveries, all locks together (as segment_stats::lock_recoveries:
    /// dead writers, dead owners and dead readers). O(locks).
    std::uint64_t lock_recoveries() const noexcept;
    /// The latest last_recovery_ns of the locks (0: none recorded). O(locks).
    std::uint64_t last_recovery_ns() const noexcept;
};

/// Inspects the segment in the file at `path`, read-only (see the header
/// comment). Never follows a symbolic link at `path` (as opening a segment).
///
/// Throws std::invalid_argument for a path holding a NUL byte (the system
/// would read a shorter path, another file), and shmkit::error naming the
/// path: a system failure in
/// std::generic_category() (ENOENT, EACCES, ELOOP for a symbolic link,
/// EMFILE, ...); errc::not_a_segment for a file that is not a regular file
/// or has no shmkit magic (also one shorter than the magic); errc::truncated,
/// foreign_platform, version_mismatch, not_initialised and corrupt_header as
/// when opening it (detail::validate_layout); errc::corrupt_header when the
/// payload contradicts the header (a structure's parameters do not fit).
/// Throws std::bad_alloc.
///
/// Thread/process safety: any number of inspections may run beside any use
/// of the segment; they change nothing. Complexity: a few syscalls, one
/// liveness probe (a fcntl, or a /proc read) per attach entry in use,
/// O(attach capacity + locks) loads, and for a pool O(capacity) loads of the
/// owner words; a kv_store root also inspects its current table. Killed
/// half-way it leaves nothing behind (it holds nothing but its own fd and
/// mapping). The segment's file must not shrink while it is being read
/// (ftruncate by another process): reading a mapped page beyond the end of
/// a file raises SIGBUS, here as for any user of the segment.
segment_report inspect(const std::string& path);

/// Inspects the POSIX shared-memory object `name` ("NAME" or "/NAME", in
/// /dev/shm), as inspect(path). Throws std::invalid_argument for a name
/// shm_open would refuse, and what inspect(path) throws (the message names
/// it "/NAME").
segment_report inspect(posix_name_t, const std::string& name);

/// What check_segment() found beside the report: problems that make the
/// segment unsound (`corruption`: shared words that contradict each other
/// or the layout) and what a recovery would clear (`needs_recover`: dead
/// processes' entries, locks held by dead holders, slots of dead owners,
/// a repair owed). Each a one-line message.
struct check_report {
    segment_report report;
    std::vector<std::string> corruption;
    std::vector<std::string> needs_recover;

    /// No corruption (dead holders are not corruption). O(1), throws nothing.
    bool ok() const noexcept { return corruption.empty(); }
};

/// A structural validation of the segment at `path`, as read-only as
/// inspect() (same opening and mapping; nothing is attached, locked,
/// recovered or written): everything inspect() reads, then the attach
/// table (high-water mark within the table, owner words naming a PID),
/// the lock words (a token naming an entry beyond the table is corrupt; a
/// stale or dead one is a dead holder), a pool's owner words (each names an
/// entry of the table and a claim that happened), a kv_store root's current
/// table (it exists and is that store's) and a table's cells (states,
/// inline lengths, arena records within the committed arena, the entries,
/// erased and live-bytes counters against the cells), a share root's value
/// (its slot's value segment exists, the length fits). A snapshot: counters
/// are compared only while no writer holds the structure's lock.
///
/// Throws what inspect() throws (a header that fails validation, or
/// parameters that do not fit the payload: errc::corrupt_header).
/// Complexity: inspect()'s plus O(cells) for a kv_store table.
check_report check_segment(const std::string& path);

/// check_segment() of the POSIX shared-memory object `name`.
check_report check_segment(posix_name_t, const std::string& name);

} // namespace shmkit

#endif
