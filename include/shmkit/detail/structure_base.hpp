// shmkit/detail/structure_base.hpp: what every shmkit structure handle has,
// whatever it stores: its segment (where it lives, how it is opened) and an
// optional eventfd notifier of its own.
#ifndef SHMKIT_DETAIL_STRUCTURE_BASE_HPP
#define SHMKIT_DETAIL_STRUCTURE_BASE_HPP

#include <shmkit/segment.hpp>
#include <shmkit/sync/notifier.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace shmkit {
namespace detail {

/// The members shared by every structure handle (buffer, pool, ...).
///
/// Thread/process safety: the observers are O(1), noexcept, no syscall, and
/// may be called from any thread. notify()/wait_notify() may run in several
/// threads at once; create_eventfd()/attach_eventfd() replace this handle's
/// notifier and may not run beside any other use of it.
class structure_base {
public:
    structure_base(const structure_base&) = delete;
    structure_base& operator=(const structure_base&) = delete;

    /// Path (file), "/NAME", "memfd:NAME", "anonymous" or "fd:N".
    const std::string& path() const noexcept { return seg_.name(); }
    /// The fd behind the mapping (a file, POSIX object or memfd), -1 for
    /// anonymous memory. Owned by the handle: dup() it to keep it.
    int fd() const noexcept { return seg_.fd(); }
    /// True if this handle created the segment.
    bool created() const noexcept { return seg_.created(); }
    /// Bytes mapped (the whole segment).
    std::size_t mmap_size() const noexcept { return seg_.get_region().size(); }
    /// The underlying segment (attach table, header), for tools.
    const segment& get_segment() const noexcept { return seg_; }

    /// msync of the mapping (region::sync()). Throws shmkit::error.
    void sync(bool wait = true) { seg_.sync(wait); }
    /// Removes the name (file path or POSIX name); the mapping stays valid.
    /// False if unnamed, if the path now names another file, or if
    /// unlink(2) failed; throws nothing (region::unlink()).
    bool unlink() { return seg_.unlink(); }

    // ---- Notification (an eventfd held by this handle) -----------------------
    // The eventfd is not in the segment: each handle has its own (or none),
    // and processes share one by passing the fd (fork, SCM_RIGHTS).
    // Semantics, costs and crash behaviour: sync/notifier.hpp.

    /// Creates an eventfd for this handle and returns it. Replaces (and
    /// closes, if owned) any previous one. One syscall; throws shmkit::error
    /// (EMFILE...).
    int create_eventfd();
    /// Uses an existing eventfd. With ownership::borrow (the default) the
    /// caller keeps the fd and must keep it open while the handle uses it:
    /// two handles may borrow one fd and nothing is closed twice. With
    /// ownership::adopt this handle closes it (give it to one handle only).
    /// Throws shmkit::error (EBADF, EINVAL if not an eventfd); the previous
    /// notifier is kept if it throws.
    void attach_eventfd(int fd, sync::ownership own = sync::ownership::borrow);
    /// The eventfd, or -1.
    int eventfd() const noexcept { return notifier_ ? notifier_->fd() : -1; }
    /// Adds `n` to the eventfd counter: one write(2). Throws shmkit::error
    /// (EBADF) without an eventfd, or as notifier::notify().
    void notify(std::uint64_t n = 1);
    /// Consumes the pending notifications without blocking; returns their
    /// count (0 if none). One read(2). Throws shmkit::error (EBADF) without
    /// an eventfd.
    std::uint64_t consume_notifications();
    /// Waits up to `timeout` for notifications and consumes them; returns
    /// the count, or nothing on timeout. Blocks in poll(2). Throws
    /// shmkit::error (EBADF) without an eventfd, or as notifier::wait().
    std::optional<std::uint64_t> wait_notify(std::chrono::nanoseconds timeout);

protected:
    explicit structure_base(segment seg) noexcept : seg_(std::move(seg)) {}
    structure_base(structure_base&&) noexcept = default;
    ~structure_base() = default;

    // Opening, for the derived handles. `expect` names what an opener must
    // find (and how errors name the element size); `layout` is what a
    // creator makes. Throw what segment and region throw.
    static segment open_segment(open_only_t, const std::string& path, const segment_expectation& expect);
    static segment open_segment(create_only_t, const std::string& path, const segment_layout& layout,
                                const segment_expectation& expect, const structure_options& opt);
    static segment open_segment(open_or_create_t, const std::string& path, const segment_layout& layout,
                                const segment_expectation& expect, const structure_options& opt);
    static segment open_anonymous_segment(const segment_layout& layout);
    static segment open_memfd_segment(const std::string& name, const segment_layout& layout);
    static segment open_fd_segment(int fd, const segment_expectation& expect);

    segment seg_;

private:
    sync::notifier& require_notifier(const char* what) const;
    mutable std::optional<sync::notifier> notifier_;
};

} // namespace detail
} // namespace shmkit

#endif
