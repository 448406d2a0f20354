// The attach table: claiming, releasing and reclaiming entries (see the
// crash-window notes in attach_table.hpp).
#include <shmkit/detail/attach_table.hpp>
#include <shmkit/error.hpp>
#include <shmkit/sync/detail/held_locks.hpp>

#include <algorithm>

#include <fcntl.h>
#include <unistd.h>

namespace shmkit {
namespace detail {
namespace {

struct flock byte_lock(short type, std::uint32_t index) noexcept
{
    struct flock fl = {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = ofd_lock_base + static_cast<off_t>(index);
    fl.l_len = 1;
    return fl;
}

bool ofd_try_lock(int fd, std::uint32_t index) noexcept
{
    struct flock fl = byte_lock(F_WRLCK, index);
    return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

void ofd_unlock(int fd, std::uint32_t index) noexcept
{
    struct flock fl = byte_lock(F_UNLCK, index);
    ::fcntl(fd, F_OFD_SETLK, &fl);
}

std::uint64_t owner_word(const process_identity& id, bool ofd_backed) noexcept
{
    return (std::uint64_t(id.pid) << 32) | ((id.start_time & owner_start_mask) << 1) |
           (ofd_backed ? owner_ofd_backed : 0);
}

std::uint32_t owner_pid(std::uint64_t owner) noexcept { return std::uint32_t(owner >> 32); }
std::uint64_t owner_start(std::uint64_t owner) noexcept { return (owner >> 1) & owner_start_mask; }

/// Whether owner id `id` of entry i is the id of its claim of generation
/// `gen`. Compared as ids, not generations: an id holds only the low 52
/// bits of the generation, and a generation beyond them (no real count of
/// claims gets there; damaged memory can) must not make a live claimer's
/// own id look like another claim's.
bool names_current_claim(std::uint32_t i, std::uint64_t id, std::uint64_t gen) noexcept
{
    return make_owner_id(i, gen) == id;
}

} // namespace

// Our own description's lock never conflicts with itself, so it reads false.
bool ofd_held_elsewhere(int fd, std::uint32_t index) noexcept
{
    struct flock fl = byte_lock(F_WRLCK, index);
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return true; // cannot tell: assume alive
    return fl.l_type != F_UNLCK;
}

attachment::attachment(void* table, std::uint32_t capacity, int fd, std::string where,
                       std::vector<const std::atomic<std::uint32_t>*> lock_words)
    : header_(static_cast<attach_table_header*>(table)),
      entries_(reinterpret_cast<attach_entry*>(static_cast<char*>(table) + sizeof(attach_table_header))),
      capacity_(capacity), where_(std::move(where)), lock_words_(std::move(lock_words))
{
    static std::atomic<std::uint64_t> serials{0};
    serial_ = serials.fetch_add(1, std::memory_order_relaxed) + 1;
    if (fd >= 0) {
        // Our own description, for locks only (see fd_), opened and
        // registered in one step under the registry lock, so that a fork in
        // another thread cannot slip in between: a forked child swaps its
        // copy for a fresh description and never keeps our locks alive.
        fd_ = open_lock_description(fd);
        if (fd_ < 0) throw_errno(errno, where_, "cannot open a lock descriptor");
    }
    try {
        attach();
    } catch (...) {
        close_lock_description(fd_);
        throw;
    }
}

static_assert(8 + max_mutexes < 256, "lock ids must fit the low byte of a lock key");

attachment::~attachment()
{
    // Locks this thread still holds through this attachment are released
    // the hard way (their token dies with the entry, and the next waiter
    // recovers them); forget them here so a later attachment at the same
    // address is not mistaken for this one.
    sync::detail::held_set& held = sync::detail::held_by_this_thread;
    for (int i = held.count - 1; i >= 0; --i)
        if ((held.locks[i].key >> 8) == serial_) sync::detail::forget_held(&held.locks[i]);
    release();
    close_lock_description(fd_);
}

// Whether the owner recorded as `owner` in entry i still runs. A held OFD
// lock is proof of life; only its absence, or a PID probe that positively
// finds the process gone, is proof of death.
bool attachment::owner_alive(std::uint32_t i, std::uint64_t owner) const noexcept
{
    if (owner == 0) return false;
    const attach_entry& e = entries_[i];
    const auto probe = [&] {
        return probe_process(owner_pid(owner), owner_start(owner), owner_start_mask,
                             e.pidns.load(std::memory_order_relaxed)) != liveness::dead;
    };
    if ((owner & owner_ofd_backed) && fd_ >= 0) {
        if (ofd_held_elsewhere(fd_, i)) return true;
        // Not held by another description. With a private description of
        // our own that settles it; a shared one might be the holder's.
        return ofd_private() ? false : probe();
    }
    return probe();
}

bool attachment::try_take(std::uint32_t i, std::uint64_t seen_owner) noexcept
{
    attach_entry& e = entries_[i];
    if (owner_alive(i, seen_owner)) return false;
    // Another claimer with a private description may be between its OFD lock
    // and its CAS; the lock keeps two such claimers apart, the CAS settles
    // everything else (and makes our identity visible with the claim).
    const bool ofd = ofd_private();
    if (ofd && !ofd_try_lock(fd_, i)) return false;
    const process_identity* id = known_identity();
    std::uint64_t expected = seen_owner;
    if (!id || !e.owner.compare_exchange_strong(expected, owner_word(*id, ofd), std::memory_order_acq_rel)) {
        untake(i);
        return false;
    }
    e.start_time.store(id->start_time, std::memory_order_relaxed);
    e.pidns.store(id->pidns, std::memory_order_relaxed);
    return true;
}

void attachment::untake(std::uint32_t i) noexcept
{
    // Only a lock we took: with a shared description (no private one in a
    // forked child) an unlock would drop the sharer's lock.
    if (ofd_private()) ofd_unlock(fd_, i);
}

bool attachment::token_in_lock_word(std::uint32_t token) const noexcept
{
    for (const auto* w : lock_words_)
        if ((w->load(std::memory_order_relaxed) & token_mask) == token) return true;
    return false;
}

void attachment::wipe(std::uint32_t i) noexcept
{
    attach_entry& e = entries_[i];
    // The previous owner is dead, so nobody else increments these: plain
    // zeroing releases exactly the read locks it held.
    for (auto& r : e.readers) r.store(0, std::memory_order_relaxed);
    // Release: a checker that sees the new generation also sees zero readers.
    // A generation whose token a dead holder left in a lock word is skipped:
    // after 2^18 claims the generation wraps, and that token would otherwise
    // name us and never be recovered.
    std::uint64_t gen = e.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
    while (token_in_lock_word(make_token(i, std::uint32_t(gen))))
        gen = e.generation.fetch_add(1, std::memory_order_acq_rel) + 1;
}

bool attachment::in_use(std::uint32_t i) const noexcept
{
    const attach_entry& e = entries_[i];
    if (e.owner.load(std::memory_order_seq_cst) != 0) return true;
    for (const auto& r : e.readers)
        if (r.load(std::memory_order_seq_cst) != 0) return true;
    return false;
}

// Always an RMW, even when the mark is high enough already: the version
// bump makes a concurrent lower_water() that has not seen our owner store
// fail its CAS and look again.
void attachment::raise_water(std::uint32_t i) noexcept
{
    std::uint64_t w = header_->water.load(std::memory_order_relaxed);
    for (;;) {
        const std::uint32_t hw = std::max(static_cast<std::uint32_t>(w), i + 1);
        const std::uint64_t next = ((w >> 32) + 1) << 32 | hw;
        if (header_->water.compare_exchange_weak(w, next, std::memory_order_seq_cst)) return;
    }
}

// Lowers the mark to 1 + the highest entry in use. The CAS succeeds only if
// no claim happened since we read the word; a claim that happened before it
// is visible to our scan (its owner store precedes its seq_cst raise).
void attachment::lower_water() noexcept
{
    std::uint64_t w = header_->water.load(std::memory_order_seq_cst);
    for (;;) {
        const std::uint32_t old = static_cast<std::uint32_t>(w);
        std::uint32_t hw = std::min(old, capacity_); // the word is shared: never trust it as an index
        while (hw > 0 && !in_use(hw - 1)) --hw;
        if (hw == old) return;
        if (header_->water.compare_exchange_strong(w, (w & ~0xffffffffull) | hw, std::memory_order_seq_cst))
            return;
    }
}

void attachment::attach()
{
    current_identity(); // throws if this process cannot tell who it is
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        attach_entry& e = entries_[i];
        const std::uint64_t seen = e.owner.load(std::memory_order_acquire);
        if (!try_take(i, seen)) continue;
        wipe(i);
        if (seen != 0) header_->reclaimed.fetch_add(1, std::memory_order_relaxed);
        header_->attaches.fetch_add(1, std::memory_order_relaxed);
        raise_water(i);
        const std::uint64_t gen = e.generation.load(std::memory_order_relaxed);
        token_.store(make_token(i, std::uint32_t(gen)), std::memory_order_relaxed);
        owner_id_.store(make_owner_id(i, gen), std::memory_order_relaxed);
        fork_generation_.store(fork_generation(), std::memory_order_release);
        return;
    }
    throw_error(errc::attach_table_full, where_,
                "all " + std::to_string(capacity_) + " attach-table entries are held by live processes");
}

void attachment::reattach()
{
    std::lock_guard<std::mutex> lock(reattach_mutex_);
    // The entry we hold belongs to the parent: leave it, claim our own.
    if (fork_generation_.load(std::memory_order_relaxed) != fork_generation()) attach();
}

void attachment::release() noexcept
{
    if (token_.load(std::memory_order_relaxed) == 0) return;
    // In a forked child that never used this handle, the entry is the parent's.
    if (fork_generation_.load(std::memory_order_relaxed) != fork_generation()) return;
    const std::uint32_t i = index();
    entries_[i].owner.store(0, std::memory_order_release);
    untake(i);
    lower_water();
}

bool attachment::entry_alive(std::uint32_t i) const noexcept
{
    if (i >= capacity_) return false;
    const std::uint64_t owner = entries_[i].owner.load(std::memory_order_acquire);
    if (owner == 0) return false;
    const bool ours = token_.load(std::memory_order_relaxed) != 0 && i == index() &&
                      fork_generation_.load(std::memory_order_relaxed) == fork_generation();
    return ours || owner_alive(i, owner);
}

bool attachment::token_alive(std::uint32_t token) const noexcept
{
    const std::uint32_t i = token_index(token);
    if (token == 0 || i >= capacity_) return false;
    const std::uint64_t gen = entries_[i].generation.load(std::memory_order_acquire);
    if ((gen & token_generation_mask) != token_generation(token)) return false;
    return entry_alive(i);
}

bool attachment::owner_id_alive(std::uint64_t id) const noexcept
{
    const std::uint32_t i = owner_id_index(id);
    if (id == 0 || i >= capacity_) return false;
    if (!names_current_claim(i, id, entries_[i].generation.load(std::memory_order_acquire))) return false;
    return entry_alive(i);
}

std::uint32_t attachment::owner_id_pid(std::uint64_t id) const noexcept
{
    const std::uint32_t i = owner_id_index(id);
    if (id == 0 || i >= capacity_) return 0;
    const attach_entry& e = entries_[i];
    const std::uint64_t owner = e.owner.load(std::memory_order_acquire);
    // The generation is read after the owner word. A new claim of the entry
    // bumps it just after its CAS, so for that instant the new claimer's PID
    // can be returned: the answer is informational, never used for liveness.
    if (!names_current_claim(i, id, e.generation.load(std::memory_order_acquire))) return 0;
    return owner_pid(owner);
}

bool attachment::reclaim_if_dead(std::uint32_t i) noexcept
{
    if (i >= capacity_) return false;
    attach_entry& e = entries_[i];
    const std::uint64_t seen = e.owner.load(std::memory_order_acquire);
    if (seen != 0 && i == index() && token_.load(std::memory_order_relaxed) != 0 &&
        fork_generation_.load(std::memory_order_relaxed) == fork_generation())
        return false; // our own entry
    if (!try_take(i, seen)) return false;
    wipe(i);
    e.owner.store(0, std::memory_order_release);
    untake(i);
    header_->reclaimed.fetch_add(1, std::memory_order_relaxed);
    lower_water();
    return true;
}

std::uint32_t attachment::reclaim_dead() noexcept
{
    std::uint32_t n = 0;
    const std::uint32_t hw = high_water();
    for (std::uint32_t i = 0; i < hw && i < capacity_; ++i) {
        const attach_entry& e = entries_[i];
        bool has_readers = false;
        for (const auto& r : e.readers) has_readers |= r.load(std::memory_order_relaxed) != 0;
        if (e.owner.load(std::memory_order_relaxed) == 0 && !has_readers) continue;
        if (reclaim_if_dead(i)) ++n;
    }
    return n;
}

std::vector<attach_info> attachment::entries_in_use() const
{
    std::vector<attach_info> v;
    const std::uint32_t hw = high_water();
    for (std::uint32_t i = 0; i < hw && i < capacity_; ++i) {
        const std::uint64_t owner = entries_[i].owner.load(std::memory_order_acquire);
        if (owner != 0) v.push_back({i, std::uint32_t(owner >> 32), entry_alive(i)});
    }
    return v;
}

} // namespace detail
} // namespace shmkit
