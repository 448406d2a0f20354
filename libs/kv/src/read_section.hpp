// read_section: which threads of this process may be reading a kv_store
// table, at almost no cost to the readers.
//
// A reader marks itself with a plain store on a word of its own (its
// depth) and unmarks itself with another; the rare thread that wants to
// unmap a replaced table pays instead: membarrier(PRIVATE_EXPEDITED) makes
// every thread of the process execute a full barrier, after which a reader
// that entered before is visible in its word, and a reader that enters
// after will load the new table. Where membarrier is not available (old
// kernel, seccomp), readers pay a seq_cst fence on entry instead.
#ifndef SHMKIT_LIBS_KV_READ_SECTION_HPP
#define SHMKIT_LIBS_KV_READ_SECTION_HPP

namespace shmkit {
namespace detail {

/// Marks the calling thread as possibly reading tables until leave() or
/// destruction. Nests. Throws nothing (std::bad_alloc aside, on a thread's
/// first use).
class read_section {
public:
    read_section();
    ~read_section() { leave(); }
    read_section(const read_section&) = delete;
    read_section& operator=(const read_section&) = delete;
    void leave() noexcept;

private:
    void* slot_;
    int depth_; ///< the depth to restore on leave; -1 once left
};

/// True if no thread of this process (the caller included) is inside a
/// read_section now; every store made before the call is then visible to
/// any section entered later. One membarrier syscall, or a fence, plus a
/// scan of the registered threads. Throws nothing.
bool no_readers() noexcept;

} // namespace detail
} // namespace shmkit

#endif
