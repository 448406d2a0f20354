// shmkit/kv_store.hpp: a named key-value store in POSIX shared memory that
// grows while processes are attached and survives processes killed in the
// middle of a write.
#ifndef SHMKIT_KV_STORE_HPP
#define SHMKIT_KV_STORE_HPP

#include <shmkit/segment.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace shmkit {

/// Tag: open a fresh, empty store (see kv_store's constructor).
struct exclusive_t {
    explicit exclusive_t() = default;
};
inline constexpr exclusive_t exclusive{};

/// How a kv_store is created and opened.
struct kv_options {
    /// Permission bits of the store's POSIX objects (exactly; no umask).
    mode_t mode = 0600;
    /// Handles attached at once (per process, or per thread with its own handle).
    std::uint32_t attach_capacity = 128;
    /// How long an opener waits for a store whose name exists but whose
    /// root is not (yet) initialised before it takes the name over. A store
    /// created by shmkit is never visible half-initialised (it is created
    /// unnamed and linked under its name when complete), so this only
    /// applies to a root left incomplete by something else. Taking over
    /// unlinks that root and the table names of its store; openers that
    /// time out on the same root together end up in one new store. An
    /// incomplete segment of another kind is not taken over (errc::not_initialised).
    std::chrono::milliseconds init_timeout{5000};
};

/// Counters and facts about a store (see kv_store::stats()).
struct kv_stats {
    std::size_t entries = 0;        ///< keys stored
    std::size_t table_capacity = 0; ///< index slots of the current table
    double load_factor = 0;         ///< (entries + erased slots) / table_capacity
    std::size_t bytes_used = 0;     ///< key and value bytes of the entries
    std::size_t bytes_mapped = 0;   ///< bytes of the current table's segment (index, records, free space)
    std::uint64_t grows = 0;        ///< tables built (growth, compaction, clear), ever
    std::uint64_t lock_recoveries = 0; ///< writers that died holding the lock, recovered
    std::uint64_t repairs = 0;      ///< stores repaired after such a death
    std::uint64_t generation = 0;   ///< the current table's number (0: no table yet, the store is empty)
};

namespace detail {
struct kv_impl;
}

/// A hash table of byte-string keys and values in POSIX shared memory,
/// opened by name from any number of processes: the C++ counterpart of
/// Shared::Simple.
///
/// Layout: a small root object `/NAME` (the writers' lock, the number of
/// the current table, counters) and the current table `/NAME~ID~GEN`
/// (open addressing over 40-byte cells that hold small entries in place,
/// and an append-only arena for larger ones). Growth builds a bigger table, publishes its number in the root
/// with one store, and unlinks the old table's name; every process maps the
/// new table when it next uses the store, and keeps reading the old one
/// until then (it stays valid while mapped).
///
/// Reads (get, contains, size) take no lock and never wait: a cell is
/// filled before its meta word is published (release) and never changed in
/// place while live; a reader that finds the cell's version changed under
/// its copy looks again. Writes (put, erase, clear) are serialised by
/// the root's crash-recoverable lock. get_all, visit and for_each take the
/// lock shared, so they see a consistent snapshot and writers wait for them.
///
/// Crash safety: every update takes effect with a single 8-byte store (a
/// cell's meta word, or the root's table number): a writer killed before it
/// leaves the store as it was, after it the update is done. What can be
/// left behind (unreferenced record bytes, counters not yet updated, both
/// cells of an overwrite, the name of a table that was being built) is
/// repaired by the next writer, which learns of the death from the lock
/// (stats().repairs), without changing any value readers could see. See
/// doc/shmkit/crash_safety.adoc.
///
/// Limits: keys up to max_key_size (64 KiB - 1), values up to
/// max_value_size (256 MiB); any bytes, NULs included.
///
/// Thread/process safety: every member may be used from any number of
/// processes, and from threads sharing a handle. Moving or destroying a
/// handle needs it to itself. Callbacks of visit/for_each run under the
/// shared lock: they must not write to the store (std::system_error,
/// resource_deadlock_would_occur).
class kv_store {
public:
    static constexpr std::size_t max_key_size = 65535;
    static constexpr std::size_t max_value_size = std::size_t(1) << 28;

    /// Opens the store `name` ("NAME" or "/NAME"), creating it empty if it
    /// does not exist (the Perl module's SHARED). Throws std::invalid_argument for
    /// a bad name (empty, longer than 200 bytes, or containing '/' after
    /// the first character, '~' or a NUL), shmkit::error for the system
    /// (EACCES, ENOSPC, EMFILE...) or a segment of another kind under the
    /// name (refused, left unchanged).
    explicit kv_store(const std::string& name, const kv_options& opt = {});
    /// Opens the store `name` and empties it, or creates it (the Perl module's
    /// EXCLUSIVE): the caller starts from an empty store. Processes attached
    /// already stay attached and see the store emptied, exactly as if
    /// clear() had been called; several processes doing this at once each
    /// empty it once, in turn. Throws as above.
    kv_store(const std::string& name, exclusive_t, const kv_options& opt = {});

    kv_store(kv_store&&) noexcept;
    kv_store& operator=(kv_store&&) noexcept;
    kv_store(const kv_store&) = delete;
    kv_store& operator=(const kv_store&) = delete;
    /// Detaches (the store stays). Throws nothing.
    ~kv_store();

    /// Deletes the store `name`: its root and its table lose their names,
    /// so the next opener creates a new store; attached processes keep the
    /// old one until they detach, but it can no longer grow (a put that
    /// needs more room throws shmkit::error, EIDRM). False if there was no
    /// such store. Throws std::invalid_argument for a bad name.
    static bool remove(const std::string& name);

    // ---- Writes: serialised by the crash-recoverable lock --------------------

    /// Stores `value` under `key`, replacing any previous value. O(key +
    /// value size) expected; a put that finds the table full rebuilds it
    /// bigger first (O(entries + bytes), amortised O(1) per put). Throws
    /// std::length_error (key or value too long) before anything changes,
    /// shmkit::error (ENOSPC when /dev/shm is full, EIDRM for a removed
    /// store) with the store unchanged.
    void put(std::string_view key, std::string_view value);
    /// Removes `key`; false if it was not there (a key longer than
    /// max_key_size never is: false, no exception). O(key size) expected.
    bool erase(std::string_view key);
    /// Removes every key: publishes a new, empty table. O(1) for the store
    /// (the old table is freed when its last reader detaches).
    void clear();
    /// Makes room for `entries` keys without further growth (the table is
    /// rebuilt now if it is smaller; never shrunk). Worth it before a known
    /// number of puts: each growth rebuilds the table. O(entries) when it
    /// rebuilds. Throws shmkit::error (ENOSPC, EIDRM for a removed store)
    /// with the store unchanged, std::length_error beyond 2^39 entries.
    void reserve(std::size_t entries);

    // ---- Reads: lock-free ------------------------------------------------------

    /// The value of `key`, or nothing. Never waits for a writer. O(key +
    /// value size) expected. Throws std::bad_alloc, and shmkit::error if a
    /// grown table cannot be mapped (EMFILE, ENOMEM).
    std::optional<std::string> get(std::string_view key) const;
    /// As get(), into `out` (its capacity is reused); false if absent.
    bool get(std::string_view key, std::string& out) const;
    /// Whether `key` is stored. As get() for cost.
    bool contains(std::string_view key) const;
    /// Keys stored (the Perl module's get_size). O(1). Right after a writer died
    /// mid-update it may be off by one until the next write repairs it.
    /// Maps the current table if another process grew the store, so it may
    /// throw shmkit::error as get() does (EMFILE, ENOMEM).
    std::size_t size() const;
    bool empty() const { return size() == 0; }

    // ---- Consistent views (shared lock) ----------------------------------------

    /// Every key and value, one consistent snapshot. O(entries + bytes).
    std::map<std::string, std::string> get_all() const;
    /// Calls f(key, value) for every entry of one consistent snapshot, in
    /// table order, under the shared lock; the views are valid during the
    /// call only. What f throws propagates (the lock is released).
    void visit(const std::function<void(std::string_view key, std::string_view value)>& f) const;
    /// The same as visit().
    void for_each(const std::function<void(std::string_view key, std::string_view value)>& f) const { visit(f); }

    // ---- Maintenance -------------------------------------------------------------

    /// Validates the whole structure (root, table header, every slot and
    /// record, probe chains, no duplicate keys, counters) under the
    /// exclusive lock, after repairing what a dead writer left. True if
    /// sound; otherwise false with the first problem in `why`. O(table).
    bool check(std::string* why = nullptr) const;
    /// Counters and sizes (relaxed loads). O(1). May map a grown table and
    /// throw as size().
    kv_stats stats() const;
    /// The store's name, as "/NAME".
    const std::string& name() const noexcept;

private:
    std::unique_ptr<detail::kv_impl> impl_;
};

} // namespace shmkit

#endif
