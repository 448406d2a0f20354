// What every structure handle shares: opening its segment, its eventfd.
#include <shmkit/detail/structure_base.hpp>

#include <shmkit/error.hpp>

namespace shmkit {
namespace detail {

segment structure_base::open_segment(open_only_t, const std::string& path, const segment_expectation& expect)
{
    return segment::file(open_only, path, expect);
}

segment structure_base::open_segment(create_only_t, const std::string& path, const segment_layout& layout,
                                     const segment_expectation& expect, const structure_options& opt)
{
    return segment(region::file(create_only, path, layout.total_size(), segment::initializer(layout), {opt.mode}),
                   expect);
}

segment structure_base::open_segment(open_or_create_t, const std::string& path, const segment_layout& layout,
                                     const segment_expectation& expect, const structure_options& opt)
{
    return segment(region::file(open_or_create, path, layout.total_size(), segment::initializer(layout), {opt.mode}),
                   expect);
}

segment structure_base::open_anonymous_segment(const segment_layout& layout) { return segment::anonymous(layout); }

segment structure_base::open_memfd_segment(const std::string& name, const segment_layout& layout)
{
    return segment::memfd(name, layout);
}

segment structure_base::open_fd_segment(int fd, const segment_expectation& expect)
{
    return segment::from_fd(fd, expect);
}

int structure_base::create_eventfd()
{
    notifier_.emplace(sync::notifier::create());
    return notifier_->fd();
}

void structure_base::attach_eventfd(int fd, sync::ownership own)
{
    notifier_.emplace(sync::notifier::attach(fd, own));
}

sync::notifier& structure_base::require_notifier(const char* what) const
{
    if (!notifier_)
        throw_errno(EBADF, seg_.name(), std::string(what) + " without an eventfd (create_eventfd or attach_eventfd first)");
    return *notifier_;
}

void structure_base::notify(std::uint64_t n) { require_notifier("notify").notify(n); }

std::uint64_t structure_base::consume_notifications() { return require_notifier("consume_notifications").try_consume(); }

std::optional<std::uint64_t> structure_base::wait_notify(std::chrono::nanoseconds timeout)
{
    return require_notifier("wait_notify").wait(timeout);
}

} // namespace detail
} // namespace shmkit
