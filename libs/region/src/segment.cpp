// Segments: layout, initialisation, validation and attachment.
#include <shmkit/segment.hpp>

#include <shmkit/detail/atomic_copy.hpp>
#include <shmkit/detail/checked.hpp>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace shmkit {
namespace {

struct offsets {
    std::uint64_t attach, sync, data, total;
};

offsets compute(const segment_layout& l)
{
    using detail::checked_add;
    using detail::checked_align_up;
    if (l.attach_capacity == 0 || l.attach_capacity > detail::max_attach_capacity)
        throw std::invalid_argument("shmkit: attach capacity must be 1.." +
                                    std::to_string(detail::max_attach_capacity));
    if (l.n_rwlocks > detail::max_rwlocks) throw std::invalid_argument("shmkit: at most 8 rwlocks per segment");
    if (l.n_mutexes > detail::max_mutexes) throw std::invalid_argument("shmkit: at most 64 mutexes per segment");
    offsets o;
    o.attach = detail::header_size;
    o.sync = o.attach + sizeof(detail::attach_table_header) +
             std::uint64_t(l.attach_capacity) * sizeof(detail::attach_entry);
    o.data = o.sync + (std::uint64_t(l.n_rwlocks) + l.n_mutexes) * cache_line_size;
    const auto end = checked_add(o.data, l.data_size);
    const auto total = end ? checked_align_up(*end, 4096) : std::nullopt;
    if (!total || *total > std::uint64_t(PTRDIFF_MAX))
        throw std::invalid_argument("shmkit: segment payload of " + std::to_string(l.data_size) +
                                    " bytes is too large");
    o.total = *total;
    return o;
}

void write_header(void* base, const segment_layout& l, const offsets& o)
{
    auto* h = static_cast<detail::segment_header*>(base);
    std::memcpy(h->magic, detail::segment_magic, sizeof h->magic);
    h->format_version = detail::format_version;
    h->byte_order = detail::byte_order_mark;
    h->pointer_size = sizeof(void*);
    h->header_size = detail::header_size;
    h->kind = static_cast<std::uint32_t>(l.kind);
    h->elem_type = static_cast<std::uint32_t>(l.elem_type);
    h->elem_size = l.elem_size;
    h->attach_capacity = l.attach_capacity;
    h->n_rwlocks = l.n_rwlocks;
    h->n_mutexes = l.n_mutexes;
    h->capacity = l.capacity;
    h->total_size = o.total;
    h->attach_offset = o.attach;
    h->sync_offset = o.sync;
    h->data_offset = o.data;
    h->data_size = l.data_size;
    for (std::size_t i = 0; i < l.params.size(); ++i) h->params[i] = l.params[i];
    h->created_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    h->checksum = detail::header_checksum(*h);
    // Last, with release: the header is complete before anyone can see READY
    // (for named segments nobody can see anything before the link anyway).
    h->init_state.store(detail::init_ready, std::memory_order_release);
}

} // namespace

std::size_t segment_layout::total_size() const { return compute(*this).total; }

region_initializer segment::initializer(const segment_layout& layout, data_initializer init)
{
    const offsets o = compute(layout);
    return [layout, o, init = std::move(init)](void* base, std::size_t size) {
        if (size < o.total) throw std::logic_error("shmkit: region smaller than its layout");
        if (init) init(static_cast<char*>(base) + o.data, layout.data_size);
        write_header(base, layout, o);
    };
}

segment::segment(shmkit::region r, const segment_expectation& expect) : region_(std::move(r))
{
    // Validated and used from a private copy, as one consistent set of
    // fields: another process may write the shared header at any time, and
    // fields read from it one by one could pass validation each against a
    // different header and together describe sections beyond the mapping.
    alignas(detail::segment_header) unsigned char copy[detail::header_size] = {};
    if (region_.size() >= sizeof copy) detail::atomic_copy_from_shared(copy, region_.data(), sizeof copy);
    const detail::segment_header& h = detail::validate_header(copy, region_.size(), expect, region_.name());
    if (expect.check_payload) expect.check_payload(h, region_.name());
    header_ = static_cast<const detail::segment_header*>(region_.data());
    geometry_.elem_size = h.elem_size;
    geometry_.attach_capacity = h.attach_capacity;
    geometry_.n_rwlocks = h.n_rwlocks;
    geometry_.n_mutexes = h.n_mutexes;
    geometry_.capacity = h.capacity;
    geometry_.attach_offset = h.attach_offset;
    geometry_.sync_offset = h.sync_offset;
    geometry_.data_offset = h.data_offset;
    geometry_.data_size = h.data_size;
    for (int i = 0; i < 4; ++i) geometry_.params[i] = h.params[i];
    std::vector<const std::atomic<std::uint32_t>*> lock_words;
    for (std::uint32_t i = 0; i < geometry_.n_rwlocks; ++i) lock_words.push_back(&rwlock_state(i).writer);
    for (std::uint32_t i = 0; i < geometry_.n_mutexes; ++i) lock_words.push_back(&mutex_state(i).owner);
    att_ = std::make_unique<detail::attachment>(at(geometry_.attach_offset), geometry_.attach_capacity,
                                                region_.fd(), region_.name(), std::move(lock_words));
}

segment& segment::operator=(segment&& o) noexcept
{
    if (this != &o) {
        att_.reset(); // touches our mapping: before region_ is replaced
        region_ = std::move(o.region_);
        header_ = std::exchange(o.header_, nullptr);
        geometry_ = o.geometry_;
        att_ = std::move(o.att_);
    }
    return *this;
}

segment segment::file(create_only_t, const std::string& path, const segment_layout& layout,
                      data_initializer init, const region_options& opt)
{
    return segment(region::file(create_only, path, layout.total_size(), initializer(layout, std::move(init)), opt),
                   layout.expectation());
}

segment segment::file(open_only_t, const std::string& path, const segment_expectation& expect)
{
    return segment(region::file(open_only, path), expect);
}

segment segment::file(open_or_create_t, const std::string& path, const segment_layout& layout,
                      data_initializer init, const region_options& opt)
{
    return segment(
        region::file(open_or_create, path, layout.total_size(), initializer(layout, std::move(init)), opt),
        layout.expectation());
}

segment segment::posix(create_only_t, const std::string& name, const segment_layout& layout,
                       data_initializer init, const region_options& opt)
{
    return segment(region::posix(create_only, name, layout.total_size(), initializer(layout, std::move(init)), opt),
                   layout.expectation());
}

segment segment::posix(open_only_t, const std::string& name, const segment_expectation& expect)
{
    return segment(region::posix(open_only, name), expect);
}

segment segment::posix(open_or_create_t, const std::string& name, const segment_layout& layout,
                       data_initializer init, const region_options& opt)
{
    return segment(
        region::posix(open_or_create, name, layout.total_size(), initializer(layout, std::move(init)), opt),
        layout.expectation());
}

segment segment::anonymous(const segment_layout& layout, data_initializer init)
{
    return segment(region::anonymous(layout.total_size(), initializer(layout, std::move(init))),
                   layout.expectation());
}

segment segment::memfd(const std::string& name, const segment_layout& layout, data_initializer init)
{
    return segment(region::memfd(name, layout.total_size(), initializer(layout, std::move(init))),
                   layout.expectation());
}

segment segment::from_fd(int fd, const segment_expectation& expect)
{
    return segment(region::from_fd(fd), expect);
}

sync::rwlock_state& segment::rwlock_state(std::uint32_t i) const noexcept
{
    return static_cast<sync::rwlock_state*>(at(geometry_.sync_offset))[i];
}

sync::mutex_state& segment::mutex_state(std::uint32_t i) const noexcept
{
    return static_cast<sync::mutex_state*>(at(geometry_.sync_offset + geometry_.n_rwlocks * cache_line_size))[i];
}

sync::rwlock segment::rwlock(std::uint32_t i) const
{
    if (i >= geometry_.n_rwlocks)
        throw std::out_of_range("shmkit: " + name() + ": rwlock " + std::to_string(i) + " of " +
                                std::to_string(geometry_.n_rwlocks));
    return sync::rwlock(rwlock_state(i), *att_, i);
}

sync::mutex segment::mutex(std::uint32_t i) const
{
    if (i >= geometry_.n_mutexes)
        throw std::out_of_range("shmkit: " + name() + ": mutex " + std::to_string(i) + " of " +
                                std::to_string(geometry_.n_mutexes));
    return sync::mutex(mutex_state(i), *att_, i);
}

segment_stats segment::stats() const
{
    segment_stats s;
    s.attach_capacity = geometry_.attach_capacity;
    for (const auto& e : att_->entries_in_use()) (e.alive ? s.attached_alive : s.attached_dead) += 1;
    s.attaches = att_->attaches();
    s.reclaimed = att_->reclaimed();
    for (std::uint32_t i = 0; i < geometry_.n_rwlocks; ++i) {
        const auto& st = rwlock_state(i);
        s.lock_recoveries += st.recoveries.load(std::memory_order_relaxed) +
                             st.reader_recoveries.load(std::memory_order_relaxed);
    }
    for (std::uint32_t i = 0; i < geometry_.n_mutexes; ++i)
        s.lock_recoveries += mutex_state(i).recoveries.load(std::memory_order_relaxed);
    return s;
}

} // namespace shmkit
