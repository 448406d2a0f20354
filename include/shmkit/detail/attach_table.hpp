// shmkit/detail/attach_table.hpp: which processes are attached to a segment,
// and whether they are still alive.
//
// Every handle that opens a segment claims one entry. Lock owners and reader
// counts are recorded by entry, as a 32-bit *token*: the entry index + 1 in
// the low 12 bits and the low 18 bits of the entry's generation in bits 12-29 (bits 30
// and 31 stay free for the lock words). The generation changes every time an
// entry is claimed, so a token of a process that died stays dead even after
// its entry is reused: a stale lock can always be recovered.
//
// The owner word of an entry is claimed with one CAS and carries everything
// a liveness check needs, so identity and claim are published together:
// PID (high 32 bits), the low 31 bits of the process start time, and a flag
// telling how the owner's liveness is known:
//
// * OFD-backed (the segment has an fd and the owner has a private open file
//   description): the owner holds an OFD write lock on byte
//   (ofd_lock_base + index). The kernel drops it when the owner's
//   description goes away, i.e. when it dies, whatever its PID namespace,
//   and no PID reuse can fake it. A held lock means alive, full stop.
// * PID-backed (anonymous segments; a forked child that could not get a
//   private description): PID + start time (/proc/<pid>/stat). A PID of
//   another namespace, or a /proc that cannot be read, is "unknown", which is
//   never taken for a death.
//
// Claiming entry i (who does what, and what a kill between steps leaves):
//   1. check that the owner seen is dead (or the entry free);
//      with a private description, take the OFD lock on byte i
//      -> killed here: the lock goes with us; nothing else changed.
//   2. CAS the owner word from the value seen to ours
//      -> killed here: the entry names a dead owner: claimable again, and
//         the next claimer redoes 3-5.
//   3. zero the reader counts: releases read locks of a dead previous owner.
//   4. generation += 1 (skipping any generation whose token still sits in a
//      lock word of the segment, so a stale token can never come back to
//      life after the 18-bit generation wraps): old tokens are stale now.
//   5. raise the high-water mark to i + 1 so writers scan this entry's
//      reader counts (before this handle can take any read lock).
// A reclaimer (a waiter that found entry i dead) does 1-4 and then frees
// the entry (owner = 0, unlock). Releasing or reclaiming the highest entry
// lowers the mark again, so a writer's scan stays proportional to the
// processes attached now, not to the most ever attached.
#ifndef SHMKIT_DETAIL_ATTACH_TABLE_HPP
#define SHMKIT_DETAIL_ATTACH_TABLE_HPP

#include <shmkit/config.hpp>
#include <shmkit/detail/header.hpp>
#include <shmkit/detail/identity.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace shmkit {
namespace detail {

inline constexpr std::uint32_t token_index_bits = 12;
inline constexpr std::uint32_t token_index_mask = (1u << token_index_bits) - 1;
inline constexpr std::uint32_t token_generation_mask = (1u << 18) - 1; // 18 bits: 12 + 18 = 30
inline constexpr std::uint32_t token_mask = (1u << 30) - 1;

/// OFD lock bytes are far beyond any data: they lock nothing real.
inline constexpr off_t ofd_lock_base = off_t(1) << 40;

inline std::uint32_t make_token(std::uint32_t index, std::uint32_t generation) noexcept
{
    return ((generation & token_generation_mask) << token_index_bits) | (index + 1);
}
/// A 64-bit id of one claim of entry `index`: generation << 12 | index + 1.
/// Unlike a token it never repeats (a 52-bit generation does not wrap), so
/// it can sit in memory nobody scans (pool slot owners) and still never name
/// a later claimer. 0 is never an owner id.
inline std::uint64_t make_owner_id(std::uint32_t index, std::uint64_t generation) noexcept
{
    return (generation << token_index_bits) | (index + 1);
}
inline std::uint32_t owner_id_index(std::uint64_t id) noexcept { return std::uint32_t(id & token_index_mask) - 1; }
inline std::uint64_t owner_id_generation(std::uint64_t id) noexcept { return id >> token_index_bits; }
/// The bits of an entry's generation that an owner id holds (the low 52).
inline constexpr std::uint64_t owner_id_generation_mask = ~std::uint64_t(0) >> token_index_bits;

inline std::uint32_t token_index(std::uint32_t token) noexcept { return (token & token_index_mask) - 1; }
inline std::uint32_t token_generation(std::uint32_t token) noexcept
{
    return (token >> token_index_bits) & token_generation_mask;
}

struct attach_table_header {
    /// Low 32 bits: the high-water mark, 1 + the highest index of an entry
    /// in use (claimed, or still holding reader counts). Writers scan reader
    /// counts below it. High 32 bits: bumped by every claim, so that a
    /// process lowering the mark after a release (a CAS on the whole word)
    /// fails if anyone claimed an entry since it looked.
    alignas(cache_line_size) std::atomic<std::uint64_t> water;
    std::atomic<std::uint64_t> attaches;  ///< claims, ever
    std::atomic<std::uint64_t> reclaimed; ///< entries of dead processes reclaimed
};

/// Owner word: pid << 32 | (start time & 0x7fffffff) << 1 | ofd_backed; 0 = free.
inline constexpr std::uint64_t owner_ofd_backed = 1;
inline constexpr std::uint64_t owner_start_mask = 0x7fffffff;

struct alignas(cache_line_size) attach_entry {
    std::atomic<std::uint64_t> owner; ///< see owner_ofd_backed; 0 = free
    /// Claims of this entry, ever (64 bits: never wraps). Tokens carry its
    /// low 18 bits; owner ids (see attachment::owner_id()) carry all of it.
    std::atomic<std::uint64_t> generation;
    std::atomic<std::uint64_t> start_time;
    std::atomic<std::uint64_t> pidns;
    std::atomic<std::uint32_t> readers[max_rwlocks]; ///< read locks held, per rwlock of the segment
};

static_assert(sizeof(attach_table_header) == cache_line_size);
static_assert(sizeof(attach_entry) == cache_line_size, "one cache line per attached process");

/// True if an open file description other than `fd`'s holds the liveness
/// lock of entry `index` (byte ofd_lock_base + index), i.e. the entry's
/// OFD-backed owner is alive. One fcntl(F_OFD_GETLK): it only queries, so a
/// read-only description works too (shmkit::inspect). True if the query
/// fails (cannot tell: assume alive). Throws nothing.
bool ofd_held_elsewhere(int fd, std::uint32_t index) noexcept;

/// Snapshot of one entry, for tools and stats.
struct attach_info {
    std::uint32_t index;
    std::uint32_t pid;
    bool alive;
};

/// This process's attachment to one segment: its entry, its token, and the
/// liveness and reclaim operations on the table. Lives at a stable address
/// (held by unique_ptr in shmkit::segment) so lock handles can point at it.
class attachment {
public:
    /// `fd`: the segment's fd, or -1 (anonymous). The attachment opens its
    /// own description of that file for its OFD locks.
    /// `lock_words`: every token-holding lock word of the segment (rwlock
    /// writer words, mutex owner words), checked when generations advance.
    attachment(void* table, std::uint32_t capacity, int fd, std::string where,
               std::vector<const std::atomic<std::uint32_t>*> lock_words);
    ~attachment();
    attachment(const attachment&) = delete;
    attachment& operator=(const attachment&) = delete;

    /// Our token. One relaxed load and compare on the hot path; a forked
    /// child claims a fresh entry here before its first use (the parent's
    /// entry stays the parent's).
    std::uint32_t token()
    {
        if (SHMKIT_UNLIKELY(fork_generation_.load(std::memory_order_acquire) != fork_generation()))
            reattach();
        return token_.load(std::memory_order_relaxed);
    }
    /// Our owner id (see make_owner_id): as token(), with the whole
    /// generation. One relaxed load and compare on the hot path.
    std::uint64_t owner_id()
    {
        if (SHMKIT_UNLIKELY(fork_generation_.load(std::memory_order_acquire) != fork_generation()))
            reattach();
        return owner_id_.load(std::memory_order_relaxed);
    }
    /// Our entry index (valid after token()).
    std::uint32_t index() const noexcept { return token_index(token_.load(std::memory_order_relaxed)); }

    attach_entry& entry(std::uint32_t i) const noexcept { return entries_[i]; }
    /// Seq_cst: pairs with the seq_cst raise in attach(), so a writer that
    /// scans reader slots after its CAS never misses a newly claimed entry.
    std::uint32_t high_water() const noexcept
    {
        // Clamped: the word is in shared memory and must never make a scan
        // leave the table, whatever was written there.
        const auto hw = static_cast<std::uint32_t>(header_->water.load(std::memory_order_seq_cst));
        return hw < capacity_ ? hw : capacity_;
    }
    std::uint32_t capacity() const noexcept { return capacity_; }

    /// Whether the process that owned `token` still holds it. Slow: reads
    /// /proc and queries an OFD lock. Never true for a stale generation.
    bool token_alive(std::uint32_t token) const noexcept;

    /// As token_alive(), for an owner id: false for a claim that ended.
    bool owner_id_alive(std::uint64_t id) const noexcept;
    /// The PID recorded for the claim `id` while its entry still names it
    /// (alive, or dead and not yet reclaimed); 0 otherwise. Reads only.
    std::uint32_t owner_id_pid(std::uint64_t id) const noexcept;
    /// True if `id` is this attachment's own current claim. O(1), no syscall.
    bool is_own_owner_id(std::uint64_t id) const noexcept
    {
        return id != 0 && id == owner_id_.load(std::memory_order_relaxed) &&
               fork_generation_.load(std::memory_order_relaxed) == fork_generation();
    }

    /// Whether entry i is claimed by a live process.
    bool entry_alive(std::uint32_t index) const noexcept;

    /// If entry i belongs to a dead process, frees it and zeroes its reader
    /// counts (releasing its read locks). Returns true if it did.
    bool reclaim_if_dead(std::uint32_t index) noexcept;

    /// Reclaims every dead entry; returns how many.
    std::uint32_t reclaim_dead() noexcept;

    /// Entries currently claimed, with liveness, for tools.
    std::vector<attach_info> entries_in_use() const;

    std::uint64_t reclaimed() const noexcept { return header_->reclaimed.load(std::memory_order_relaxed); }
    std::uint64_t attaches() const noexcept { return header_->attaches.load(std::memory_order_relaxed); }

    /// Identifies lock `id` (< 256) of this attachment in the per-thread
    /// record of held locks: a serial number, never an address, so a record
    /// left by another thread can never match a later attachment.
    std::uint64_t lock_key(std::uint32_t id) const noexcept { return (serial_ << 8) | id; }

private:
    void attach();
    void reattach();
    void release() noexcept;
    bool owner_alive(std::uint32_t index, std::uint64_t owner) const noexcept;
    bool try_take(std::uint32_t index, std::uint64_t seen_owner) noexcept;
    void untake(std::uint32_t index) noexcept;
    void wipe(std::uint32_t index) noexcept;
    bool token_in_lock_word(std::uint32_t token) const noexcept;
    /// fd_ has a description of its own in this process now (false in a
    /// forked child whose swap failed): only then do our OFD locks and
    /// queries tell us apart from other processes.
    bool ofd_private() const noexcept { return fd_ >= 0 && has_private_description(fd_); }
    bool in_use(std::uint32_t index) const noexcept;
    void raise_water(std::uint32_t index) noexcept;
    void lower_water() noexcept;

    attach_table_header* header_;
    attach_entry* entries_;
    std::uint32_t capacity_;
    std::uint64_t serial_;
    /// A description of the segment's file used for OFD locks only, never
    /// mapped: a mapping holds a reference to the description it was made
    /// from, and a forked child inherits the mappings, so locks on the
    /// mapped description would outlive their owner. -1 without a file.
    int fd_ = -1;
    std::string where_;
    std::vector<const std::atomic<std::uint32_t>*> lock_words_;
    std::atomic<std::uint32_t> token_{0};
    std::atomic<std::uint64_t> owner_id_{0};
    std::atomic<std::uint32_t> fork_generation_{0};
    std::mutex reattach_mutex_;
};

} // namespace detail
} // namespace shmkit

#endif
