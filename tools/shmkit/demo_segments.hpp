// shmkit demo: the four structures the workers share, created by the
// parent under pid-based names, and removed on every path.
#ifndef SHMKIT_TOOLS_DEMO_SEGMENTS_HPP
#define SHMKIT_TOOLS_DEMO_SEGMENTS_HPP

#include "demo_plan.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/share.hpp>

#include <optional>
#include <string>
#include <vector>

namespace shmkit_tool::demo {

/// Creates the buffer, the pool, the kv_store and the share of `p` (and
/// chooses p.share_key: the first free key derived from the pid), and
/// removes them when destroyed, whatever happened: the destructor is the
/// cleanup of the error and exception paths. Not copyable or movable.
class segments {
public:
    /// Throws shmkit::error if a name is taken (nothing of it is removed
    /// then) or /dev/shm refuses; what was created so far is removed.
    explicit segments(plan& p);
    ~segments();
    segments(const segments&) = delete;
    segments& operator=(const segments&) = delete;

    shmkit::buffer<std::int64_t>& counters() { return *counters_; }
    shmkit::pool<std::int64_t>& slots() { return *slots_; }
    shmkit::kv_store& rounds() { return *rounds_; }
    shmkit::share& book() { return *book_; }

    /// Closes the parent's handles and removes every structure through the
    /// library (share::remove, kv_store::remove, unlink). Then lists
    /// /dev/shm for names still there with the demo's prefixes, unlinks
    /// them and returns them (a non-empty result means the library's
    /// removal missed something). Idempotent; throws nothing.
    std::vector<std::string> remove() noexcept;

    /// Names in /dev/shm starting with p.prefix or p.share_name().
    static std::vector<std::string> left_in_dev_shm(const plan& p);

private:
    const plan& p_;
    bool created_buffer_ = false, created_pool_ = false, created_kv_ = false, created_share_ = false;
    bool removed_ = false;
    std::optional<shmkit::buffer<std::int64_t>> counters_;
    std::optional<shmkit::pool<std::int64_t>> slots_;
    std::optional<shmkit::kv_store> rounds_;
    std::optional<shmkit::share> book_;
};

} // namespace shmkit_tool::demo

#endif
