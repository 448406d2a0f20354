// sharelite_chain: see sharelite_chain.hpp.
#include "sharelite_chain.hpp"

#include <shmkit/error.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include <sys/ipc.h>
#include <sys/shm.h>

namespace shmkit {
namespace detail {

namespace {

class sysv_calls final : public sl_memory {
public:
    char* attach(int shmid, bool read_only) override
    {
        void* a = ::shmat(shmid, nullptr, read_only ? SHM_RDONLY : 0);
        return a == reinterpret_cast<void*>(-1) ? nullptr : static_cast<char*>(a);
    }
    void detach(char* addr) noexcept override { ::shmdt(addr); }
    bool size_of(int shmid, std::size_t& size) override
    {
        shmid_ds ds{};
        if (::shmctl(shmid, IPC_STAT, &ds) != 0) return false;
        // Removed, alive only while someone still has it attached: it
        // goes with the last detach, and what is written into it with it.
        if (ds.shm_perm.mode & SHM_DEST) {
            errno = EIDRM;
            return false;
        }
        size = ds.shm_segsz;
        return true;
    }
    int create(std::size_t size, int perms) override { return ::shmget(IPC_PRIVATE, size, perms | IPC_CREAT | IPC_EXCL); }
    void remove(int shmid) noexcept override { ::shmctl(shmid, IPC_RMID, nullptr); }
};

/// Removes the segments from `shmid` on, following their links, until a
/// segment `stop(shmid)` accepts or the chain comes back to a segment it
/// has passed (a cycle).
///
/// Last segment first: a process killed half-way leaves the segments it
/// has not removed yet still linked, from the head (removed last, it keeps
/// the key) or, when a store drops the tail, from the segment the store
/// keeps; the next removal or store finds them. ShareLite removes them in
/// chain order, and one killed after the first leaks the rest: segments
/// with no key, which nothing names any more. Only if the list of ids
/// cannot be had (no memory) are they removed in chain order.
template <class Stop>
void remove_segments(sl_memory& mem, int shmid, Stop&& stop) noexcept
{
    auto next_of = [&mem](int id) {
        int next = -1;
        if (char* a = mem.attach(id, true)) {
            next = sl_load(reinterpret_cast<sl_header*>(a)->next_shmid);
            mem.detach(a);
        }
        return next;
    };
    try {
        std::vector<int> ids;
        std::unordered_set<int> seen; // a cycle in the chain ends the walk
        for (int id = shmid; id >= 0 && !stop(id) && seen.insert(id).second; id = next_of(id)) ids.push_back(id);
        for (auto it = ids.rbegin(); it != ids.rend(); ++it) mem.remove(*it);
        return;
    } catch (const std::bad_alloc&) {
    }
    for (int guard = 0; shmid >= 0 && !stop(shmid) && guard < (1 << 20); ++guard) {
        const int next = next_of(shmid);
        mem.remove(shmid);
        shmid = next;
    }
}

} // namespace

sl_memory& sysv_memory() noexcept
{
    static sysv_calls calls;
    return calls;
}

void sl_chain::adopt_head(int shmid, char* addr) { nodes_.push_back({shmid, addr}); }

void sl_chain::set_geometry(std::size_t segment_size, int perms)
{
    segment_size_ = segment_size;
    data_size_ = segment_size_ - sizeof(sl_header);
    segment_perms_ = perms;
    cached_state_ = sl_load(head().shm_state);
}

void sl_chain::store(std::string_view value)
{
    if (value.size() > static_cast<std::size_t>(INT_MAX))
        throw std::length_error("shmkit::share: " + label_ + ": IPC::ShareLite values are limited to 2 GiB - 1");
    resync();
    const std::size_t used = std::max<std::size_t>(1, (value.size() + data_size_ - 1) / data_size_);
    // The chain first: a store that cannot get its segments (ENOSPC,
    // SHMMNI) fails with the old value still there. Perl ignores
    // segments beyond the length.
    node(used - 1, true);
    sl_header& h = head();
    sl_put(h.length, 0); // what ShareLite does: a store cut short reads as empty
    for (std::size_t i = 0, off = 0; off < value.size(); ++i, off += data_size_)
        // memmove: a value may be a view of this very segment (fetch_view()).
        std::memmove(node(i, false).data(), value.data() + off, std::min(data_size_, value.size() - off));
    sl_put(h.length, static_cast<std::int32_t>(value.size()));
    drop_after(used - 1);
    sl_put(h.version, sl_load(h.version) + 1);
}

std::string_view sl_chain::view() const
{
    resync();
    const std::int32_t len = sl_load(head().length);
    if (len < 0) throw_error(errc::corrupt_header, label_, "negative value length " + std::to_string(len));
    const std::size_t n = static_cast<std::size_t>(len);
    if (n <= data_size_) return {nodes_[0].data(), n};
    node((n - 1) / data_size_, false); // the whole chain is there before anything is allocated
    assembled_.resize(n);
    for (std::size_t off = 0, i = 0; off < n; off += data_size_, ++i)
        std::memcpy(&assembled_[off], node(i, false).data(), std::min(data_size_, n - off));
    return assembled_;
}

std::size_t sl_chain::num_segments() const
{
    resync();
    std::size_t i = 0;
    while (node(i, false).header().next_shmid >= 0) ++i;
    return i + 1;
}

void sl_chain::detach_all() noexcept
{
    for (const node_type& n : nodes_) mem_.detach(n.addr);
    nodes_.clear();
}

void sl_chain::remove_chain(sl_memory& mem, int shmid) noexcept
{
    remove_segments(mem, shmid, [](int) { return false; });
}

/// Under the lock: forget the segments after the head if a store
/// removed segments since this handle last looked (ShareLite's check).
void sl_chain::resync() const
{
    const std::uint32_t state = sl_load(head().shm_state);
    if (state == cached_state_) return;
    while (nodes_.size() > 1) {
        mem_.detach(nodes_.back().addr);
        nodes_.pop_back();
    }
    cached_state_ = state;
}

/// Segment `i` of the chain, attached now if this handle has not yet;
/// if the chain ends before it: a new segment when `grow`, else the
/// value is longer than the chain (corrupt).
const sl_chain::node_type& sl_chain::node(std::size_t i, bool grow) const
{
    if (i >= max_segments())
        throw_error(errc::corrupt_header, label_, "a value longer than IPC::ShareLite's 2 GiB limit");
    while (nodes_.size() <= i) {
        sl_header& tail = nodes_.back().header();
        int next = sl_load(tail.next_shmid);
        if (next >= 0 && !linkable(next)) {
            // A link to a removed segment (a store killed while it shortened
            // the chain): a store replaces it; a reader finds the value longer
            // than the chain.
            if (!grow) throw_error(errc::corrupt_header, label_, "the segment chain is shorter than the value");
            next = -1;
        }
        if (next < 0) {
            if (!grow) throw_error(errc::corrupt_header, label_, "the segment chain is shorter than the value");
            next = new_segment();
            sl_put(tail.next_shmid, next);
        }
        char* a = mem_.attach(next, false);
        if (!a) throw_errno(errno, label_, "cannot attach a segment of the chain");
        nodes_.push_back({next, a});
    }
    return nodes_[i];
}

/// The most segments a value of at most INT_MAX bytes takes.
std::size_t sl_chain::max_segments() const noexcept { return static_cast<std::size_t>(INT_MAX) / data_size_ + 1; }

/// Whether `shmid` may be the next segment of the chain: it exists and
/// is not removed (a removed one may live on while attached elsewhere),
/// is at least as big as the head (every segment holds data_size_ bytes)
/// and is not in the chain already (a cycle). Checked before it is
/// attached or cached: shared memory is never trusted as an index.
bool sl_chain::linkable(int shmid) const
{
    for (const node_type& n : nodes_)
        if (n.shmid == shmid) throw_error(errc::corrupt_header, label_, "the segment chain has a cycle");
    std::size_t size = 0;
    if (!mem_.size_of(shmid, size)) {
        if (errno == EINVAL || errno == EIDRM) return false;
        throw_errno(errno, label_, "cannot look at a segment of the chain");
    }
    if (size < segment_size_) throw_error(errc::corrupt_header, label_, "a segment of the chain is smaller than the head");
    return true;
}

/// A new last segment: no key (IPC_PRIVATE), so it can never be another
/// share's; header {next -1, length 0}. Its shmid is linked by the caller.
int sl_chain::new_segment() const
{
    const int id = mem_.create(segment_size_, segment_perms_);
    if (id < 0) throw_errno(errno, label_, "cannot create a segment for the value");
    char* a = mem_.attach(id, false);
    if (!a) {
        const int e = errno;
        mem_.remove(id);
        throw_errno(e, label_, "cannot attach a new segment");
    }
    auto* h = reinterpret_cast<sl_header*>(a);
    sl_put(h->next_shmid, -1);
    sl_put(h->length, 0);
    mem_.detach(a);
    return id;
}

/// Removes the segments after segment `last` (ShareLite's collection of
/// the chain's unused tail), bumping shm_state so that other handles
/// forget them.
void sl_chain::drop_after(std::size_t last)
{
    sl_header& h = nodes_[last].header();
    const int next = sl_load(h.next_shmid);
    if (next < 0) return;
    while (nodes_.size() > last + 1) {
        mem_.detach(nodes_.back().addr);
        nodes_.pop_back();
    }
    // The tail may lead back into the segments that stay (a cycle a
    // damaged chain has): the removal stops at any of them, not only at
    // the head, or the value just stored would lose a segment.
    remove_segments(mem_, next, [this](int id) {
        return std::any_of(nodes_.begin(), nodes_.end(), [id](const node_type& n) { return n.shmid == id; });
    });
    sl_put(h.next_shmid, -1);
    sl_header& hd = head();
    sl_put(hd.shm_state, sl_load(hd.shm_state) + 1);
}

} // namespace detail
} // namespace shmkit
