// The shared part of buffer<T> and str_buffer.
#include <shmkit/detail/buffer_base.hpp>

#include <shmkit/detail/checked.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace shmkit {
namespace detail {
namespace {

/// What a buffer's payload must be for every access to stay inside it and
/// aligned: checked before attaching (a refused file stays unchanged). An
/// element is its own slot, but for str_buffer (the only buffer of bytes):
/// a 4-byte length and the string, padded to 8 (str_buffer.hpp).
void check_payload(const segment_header& h, const std::string& where)
{
    const std::uint64_t stride = h.params[0];
    const bool strings = h.elem_type == static_cast<std::uint32_t>(element_type::bytes);
    const bool slot_fits = strings ? stride >= h.elem_size + std::uint64_t(4) && stride % 8 == 0 : stride == h.elem_size;
    const auto bytes = checked_mul(h.capacity, stride);
    const auto need = bytes ? checked_add(*bytes, buffer_payload_offset) : std::nullopt;
    if (h.n_rwlocks < 1 || h.elem_size == 0 || stride > UINT32_MAX || !slot_fits)
        throw_error(errc::corrupt_header, where,
                    "bad element stride " + std::to_string(stride) + " for elements of " + std::to_string(h.elem_size) +
                        " bytes, or no lock");
    if (h.capacity == 0 || !need || *need > h.data_size)
        throw_error(errc::corrupt_header, where, "buffer capacity and element size do not fit the data area");
}

} // namespace

segment_layout buffer_base::layout(const buffer_spec& spec, std::size_t capacity, const structure_options& opt)
{
    if (capacity == 0) throw std::invalid_argument("shmkit: a buffer's capacity must not be 0");
    const auto bytes = checked_mul(capacity, spec.stride);
    const auto total = bytes ? checked_add(*bytes, buffer_payload_offset) : std::nullopt;
    if (!total) throw std::invalid_argument("shmkit: buffer capacity " + std::to_string(capacity) + " is too large");
    segment_layout l;
    l.kind = structure_kind::buffer;
    l.elem_type = spec.type;
    l.elem_size = spec.elem_size;
    l.capacity = capacity;
    l.data_size = *total;
    l.n_rwlocks = 1;
    l.attach_capacity = opt.attach_capacity;
    l.params[0] = spec.stride;
    return l;
}

segment_expectation buffer_base::expectation(const buffer_spec& spec, std::size_t capacity)
{
    segment_expectation x;
    x.kind = structure_kind::buffer;
    x.elem_type = spec.type;
    x.elem_size = spec.elem_size;
    x.capacity = capacity;
    x.elem_size_name = spec.size_name;
    x.check_payload = check_payload;
    return x;
}

segment buffer_base::open(open_only_t, const std::string& path, const buffer_spec& spec)
{
    return open_segment(open_only, path, expectation(spec, 0));
}

segment buffer_base::open(create_only_t, const std::string& path, std::size_t capacity, const buffer_spec& spec,
                          const structure_options& opt)
{
    return open_segment(create_only, path, layout(spec, capacity, opt), expectation(spec, capacity), opt);
}

segment buffer_base::open(open_or_create_t, const std::string& path, std::size_t capacity,
                          const buffer_spec& spec, const structure_options& opt)
{
    return open_segment(open_or_create, path, layout(spec, capacity, opt), expectation(spec, capacity), opt);
}

segment buffer_base::open_anonymous(std::size_t capacity, const buffer_spec& spec, const structure_options& opt)
{
    return open_anonymous_segment(layout(spec, capacity, opt));
}

segment buffer_base::open_memfd(const std::string& name, std::size_t capacity, const buffer_spec& spec,
                                const structure_options& opt)
{
    return open_memfd_segment(name, layout(spec, capacity, opt));
}

segment buffer_base::open_fd(int fd, const buffer_spec& spec)
{
    return open_fd_segment(fd, expectation(spec, 0));
}

buffer_base::buffer_base(segment seg, const buffer_spec& spec_in) : structure_base(std::move(seg)), spec_(spec_in)
{
    // The header is validated (and the segment works from a private copy);
    // what it says about the payload is checked here before any element is
    // touched.
    if (spec_.elem_size == 0) spec_.elem_size = seg_.elem_size(); // str_buffer by path: width from the header
    const std::uint64_t stride = seg_.param(0);
    if (stride != spec_.stride && spec_.stride != 0)
        throw_error(errc::corrupt_header, seg_.name(),
                    "element stride " + std::to_string(stride) + ", expected " + std::to_string(spec_.stride));
    if (stride > UINT32_MAX || stride < spec_.elem_size || spec_.elem_size == 0)
        throw_error(errc::corrupt_header, seg_.name(), "bad element stride " + std::to_string(stride));
    spec_.stride = static_cast<std::uint32_t>(stride);
    const auto bytes = checked_mul(seg_.capacity(), spec_.stride);
    const auto need = bytes ? checked_add(*bytes, buffer_payload_offset) : std::nullopt;
    if (seg_.capacity() == 0 || !need || *need > seg_.data_size())
        throw_error(errc::corrupt_header, seg_.name(), "buffer capacity and element size do not fit the data area");
    capacity_ = static_cast<std::size_t>(seg_.capacity());
    char* data = static_cast<char*>(seg_.data());
    control_ = reinterpret_cast<buffer_control*>(data);
    counters_ = reinterpret_cast<buffer_counters*>(data + sizeof(buffer_control));
    elems_ = data + buffer_payload_offset;
    lock_ = seg_.rwlock(0);
}

buffer_base::buffer_base(buffer_base&& o) noexcept
    : structure_base(std::move(o)), spec_(o.spec_), lock_(std::move(o.lock_)), control_(o.control_),
      counters_(o.counters_), elems_(o.elems_), capacity_(std::exchange(o.capacity_, 0))
{
}

void buffer_base::close_interrupted_write() const noexcept
{
    // We hold the lock, exclusively or shared: no writer runs, so an odd
    // sequence can only be a writer that died between write_begin and
    // write_end. The mark goes first: a closer killed between the two
    // leaves the sequence odd for the next one. Relaxed: the lock orders
    // it for every later holder. Several shared holders may close at once:
    // recover_once() lets one count it.
    if ((control_->seq.sequence() & 1u) == 0) return;
    counters_->torn.store(1, std::memory_order_relaxed);
    if (control_->seq.recover_once()) counters_->bulk_recoveries.fetch_add(1, std::memory_order_relaxed);
}

void buffer_base::unlock()
{
    // Cleared while still held: a writer killed after this and before the
    // release is recovered as a dead holder, and reported again. The load
    // first: the usual unlock pays one relaxed load, not a second lookup
    // of the thread's lock record.
    if (counters_->torn.load(std::memory_order_relaxed) != 0 && lock_.holds_exclusive())
        counters_->torn.store(0, std::memory_order_relaxed);
    lock_.unlock();
}

void buffer_base::lock()
{
    lock_.lock();
    close_interrupted_write();
}

bool buffer_base::try_lock()
{
    if (!lock_.try_lock()) return false;
    close_interrupted_write();
    return true;
}

// A bulk write has kept the sequence odd for a whole poll interval. Taking
// the write lock (through a handle of our own: this may run on any thread)
// recovers a dead writer and closes its write; a live writer just finishes.
void buffer_base::recover_stalled_writer() const
{
    sync::rwlock probe = seg_.rwlock(0);
    if (!probe.try_lock_for(2 * sync::liveness_poll_interval)) return;
    close_interrupted_write(); // marks the buffer torn: the probe's unlock repairs nothing
    probe.unlock();
}

void buffer_base::throw_index(std::size_t i) const
{
    throw std::out_of_range("shmkit: " + seg_.name() + ": index " + std::to_string(i) + " out of range (capacity " +
                            std::to_string(capacity_) + ")");
}

void buffer_base::throw_range(std::size_t from, std::size_t count) const
{
    throw std::out_of_range("shmkit: " + seg_.name() + ": elements [" + std::to_string(from) + ", " +
                            std::to_string(from) + "+" + std::to_string(count) + ") out of range (capacity " +
                            std::to_string(capacity_) + ")");
}

std::string buffer_base::get_raw(std::size_t byte_offset, std::size_t n) const
{
    const std::size_t area = capacity_ * spec_.stride;
    if (byte_offset > area || n > area - byte_offset)
        throw std::out_of_range("shmkit: " + seg_.name() + ": bytes [" + std::to_string(byte_offset) + ", +" +
                                std::to_string(n) + ") outside the element area of " + std::to_string(area));
    std::string out(n, '\0');
    bulk_read([&] { sync::atomic_copy_from_shared(out.data(), elems_ + byte_offset, n); });
    return out;
}

namespace {

/// Stores into the element of `T` at `e` the bytes [lo, hi) of it (offsets
/// from the element) taken from `from`: the whole element with one store,
/// a part of it merged in with a CAS of the whole element, so that an
/// element operation beside it (get, cas) sees the element old or new.
template <class T>
void store_element_part(char* e, std::size_t lo, std::size_t hi, const char* from) noexcept
{
    T* const p = reinterpret_cast<T*>(e);
    if (lo == 0 && hi == sizeof(T)) {
        T v;
        std::memcpy(&v, from, sizeof v);
        __atomic_store_n(p, v, __ATOMIC_RELAXED);
        return;
    }
    T old = __atomic_load_n(p, __ATOMIC_RELAXED), merged;
    do {
        merged = old;
        std::memcpy(reinterpret_cast<char*>(&merged) + lo, from, hi - lo);
    } while (!__atomic_compare_exchange_n(p, &old, merged, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void store_element_part(std::size_t size, char* e, std::size_t lo, std::size_t hi, const char* from) noexcept
{
    switch (size) {
    case 1: return store_element_part<std::uint8_t>(e, lo, hi, from);
    case 2: return store_element_part<std::uint16_t>(e, lo, hi, from);
    case 4: return store_element_part<std::uint32_t>(e, lo, hi, from);
    default: return store_element_part<std::uint64_t>(e, lo, hi, from);
    }
}

} // namespace

// For buffer<T>, whose elements are read and written one by one without
// the seqlock, set_raw() writes every element whole: the 8-byte aligned
// words it covers entirely with 8-byte stores (whole elements, T being 1 to
// 8 bytes), the elements around them one by one. A str_buffer's values
// (element type bytes, of any width) are only ever read under the seqlock:
// the plain copy does.
void buffer_base::store_raw(std::size_t off, const char* src, std::size_t n) noexcept
{
    const std::size_t es = spec_.elem_size;
    const bool numeric = spec_.type >= element_type::i8 && spec_.type <= element_type::f64;
    if (!numeric || (es != 1 && es != 2 && es != 4 && es != 8) || spec_.stride != es) {
        sync::atomic_copy_to_shared(elems_ + off, src, n);
        return;
    }
    const std::size_t end = off + n;
    for (std::size_t e = off / es * es; e < end;) {
        if (e >= off && e % 8 == 0 && end - e >= 8) {
            const std::size_t words = (end - e) / 8 * 8;
            sync::atomic_copy_to_shared(elems_ + e, src + (e - off), words);
            e += words;
            continue;
        }
        const std::size_t lo = std::max(e, off), hi = std::min(e + es, end);
        store_element_part(es, elems_ + e, lo - e, hi - e, src + (lo - off));
        e += es;
    }
}

void buffer_base::set_raw(std::size_t byte_offset, std::string_view bytes)
{
    const std::size_t area = capacity_ * spec_.stride;
    if (byte_offset > area || bytes.size() > area - byte_offset)
        throw std::out_of_range("shmkit: " + seg_.name() + ": bytes [" + std::to_string(byte_offset) + ", +" +
                                std::to_string(bytes.size()) + ") outside the element area of " +
                                std::to_string(area));
    bulk_write([&] { store_raw(byte_offset, bytes.data(), bytes.size()); });
}

buffer_stats buffer_base::stats() const
{
    buffer_stats s;
    s.capacity = capacity_;
    s.elem_size = spec_.elem_size;
    s.mmap_size = mmap_size();
    s.type = spec_.type;
    s.lock_recoveries = lock_.recoveries();
    s.bulk_recoveries = counters_->bulk_recoveries.load(std::memory_order_relaxed);
    s.segment = seg_.stats();
    return s;
}

} // namespace detail
} // namespace shmkit
