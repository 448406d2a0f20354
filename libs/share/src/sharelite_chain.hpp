// IPC::ShareLite's chain of System V segments, walked and written through
// the few System V calls it needs (sl_memory), so that the walk over
// untrusted segment contents can also run over memory that is not System V
// (the fuzz tests do; sharelite_share.cpp passes the real calls).
//
// The chain: a head segment, then segments of the head's size, each
// beginning with a 16-byte header {int32 next_shmid (-1: last), int32
// length (head only: the value's bytes), uint32 shm_state (head only:
// bumped whenever a store removes segments from the chain), uint32 version
// (head only: 1 at creation, +1 per store)}, then its part of the value.
// Everything in it is shared memory another process may have written:
// lengths and links are checked before they are used.
#ifndef SHMKIT_LIBS_SHARE_SHARELITE_CHAIN_HPP
#define SHMKIT_LIBS_SHARE_SHARELITE_CHAIN_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmkit {
namespace detail {

/// ShareLite's segment header.
struct sl_header {
    std::int32_t next_shmid;
    std::int32_t length;
    std::uint32_t shm_state;
    std::uint32_t version;
};
static_assert(sizeof(sl_header) == 16, "ShareLite's header is 16 bytes");

/// Loads and stores of header words that another process changes under
/// the lock we hold (plain accesses would do; these say so).
template <class T>
T sl_load(const T& w) noexcept
{
    return __atomic_load_n(&w, __ATOMIC_RELAXED);
}
template <class T>
void sl_put(T& w, T v) noexcept
{
    __atomic_store_n(&w, v, __ATOMIC_RELAXED);
}

/// The System V calls the chain makes. Failures return nullptr / false /
/// -1 with errno set, as the calls themselves do.
class sl_memory {
public:
    virtual ~sl_memory() = default;
    /// shmat(shmid, nullptr, read_only ? SHM_RDONLY : 0).
    virtual char* attach(int shmid, bool read_only) = 0;
    /// shmdt(addr).
    virtual void detach(char* addr) noexcept = 0;
    /// shmctl(shmid, IPC_STAT): the segment's size in bytes; false with
    /// EIDRM for a segment removed but still attached somewhere (SHM_DEST).
    virtual bool size_of(int shmid, std::size_t& size) = 0;
    /// shmget(IPC_PRIVATE, size, perms | IPC_CREAT | IPC_EXCL).
    virtual int create(std::size_t size, int perms) = 0;
    /// shmctl(shmid, IPC_RMID).
    virtual void remove(int shmid) noexcept = 0;
};

/// The real System V calls. One object per process; thread-safe (no state).
sl_memory& sysv_memory() noexcept;

/// One handle's view of a chain: the head and the prefix of the chain it
/// has attached. Its members expect the caller to hold the share's lock
/// (exclusive for store()). Throws shmkit::error naming `label`: a chain
/// that contradicts itself (a cycle, a segment smaller than the head, a
/// value longer than the chain, a negative length) is errc::corrupt_header,
/// a failed System V call its errno.
class sl_chain {
public:
    sl_chain(sl_memory& mem, std::string label) : mem_(mem), label_(std::move(label)) {}
    sl_chain(const sl_chain&) = delete;
    sl_chain& operator=(const sl_chain&) = delete;
    ~sl_chain() { detach_all(); }

    /// Takes the attached head segment `shmid` at `addr` (detached by
    /// detach_all()). The chain is usable once set_geometry() is called.
    void adopt_head(int shmid, char* addr);
    /// The head's size (more than a header) and the permissions new
    /// segments get; remembers the head's chain state.
    void set_geometry(std::size_t segment_size, int perms);

    sl_header& head() const noexcept { return nodes_[0].header(); }
    int head_shmid() const noexcept { return nodes_.empty() ? -1 : nodes_[0].shmid; }
    bool empty() const noexcept { return nodes_.empty(); }
    std::size_t segment_size() const noexcept { return segment_size_; }

    /// Replaces the value: the chain is extended first (so a failure to get
    /// segments leaves the old value), then written, then its unused tail
    /// removed, then the version bumped. Throws std::length_error for
    /// INT_MAX bytes or more.
    void store(std::string_view value);
    /// The value, in the head or assembled into a buffer of this chain
    /// (valid until the next call).
    std::string_view view() const;
    /// Segments of the chain, following every link from the head.
    std::size_t num_segments() const;

    void detach_all() noexcept;

    /// Removes the chain that begins at segment `shmid` (ShareLite's
    /// destroy), stopping after at most 2^20 segments (a cycle).
    static void remove_chain(sl_memory& mem, int shmid) noexcept;

private:
    struct node_type {
        int shmid = -1;
        char* addr = nullptr;
        sl_header& header() const noexcept { return *reinterpret_cast<sl_header*>(addr); }
        char* data() const noexcept { return addr + sizeof(sl_header); }
    };

    void resync() const;
    const node_type& node(std::size_t i, bool grow) const;
    std::size_t max_segments() const noexcept;
    bool linkable(int shmid) const;
    int new_segment() const;
    void drop_after(std::size_t last);

    sl_memory& mem_;
    std::string label_;
    std::size_t segment_size_ = 0, data_size_ = 0;
    int segment_perms_ = 0600;
    mutable std::vector<node_type> nodes_; ///< a prefix of the chain, head first
    mutable std::uint32_t cached_state_ = 0;
    mutable std::string assembled_; ///< view() of a value spread over several segments
};

} // namespace detail
} // namespace shmkit

#endif
