// str_buffer: fixed-width, length-prefixed byte strings.
#include <shmkit/str_buffer.hpp>

#include <atomic>
#include <limits>
#include <stdexcept>

namespace shmkit {
namespace {

using length_word = std::atomic<std::uint32_t>;

constexpr std::size_t max_width = std::numeric_limits<std::uint32_t>::max() - 16;

} // namespace

detail::buffer_spec str_buffer::spec(std::size_t width)
{
    if (width > max_width) throw std::invalid_argument("shmkit: str_buffer width " + std::to_string(width) + " is too large");
    // Width 0 means "from the header" when opening; creation refuses it.
    const std::uint32_t w = static_cast<std::uint32_t>(width);
    const std::uint32_t stride = w == 0 ? 0 : static_cast<std::uint32_t>((sizeof(length_word) + w + 7) & ~std::size_t(7));
    return {element_type::bytes, w, stride, "string width"};
}

namespace {
void require_width(std::size_t width)
{
    if (width == 0) throw std::invalid_argument("shmkit: a str_buffer's width must not be 0");
}
} // namespace

str_buffer::str_buffer(create_only_t, const std::string& path, std::size_t capacity, std::size_t width,
                       const structure_options& opt)
    : buffer_base((require_width(width), open(create_only, path, capacity, spec(width), opt)), spec(width))
{
}

str_buffer::str_buffer(open_or_create_t, const std::string& path, std::size_t capacity, std::size_t width,
                       const structure_options& opt)
    : buffer_base((require_width(width), open(open_or_create, path, capacity, spec(width), opt)), spec(width))
{
}

str_buffer::str_buffer(open_only_t, const std::string& path) : buffer_base(open(open_only, path, spec(0)), spec(0)) {}

str_buffer::str_buffer(segment seg, std::size_t width) : buffer_base(std::move(seg), spec(width)) {}

str_buffer str_buffer::anonymous(std::size_t capacity, std::size_t width, const structure_options& opt)
{
    require_width(width);
    return str_buffer(open_anonymous(capacity, spec(width), opt), width);
}

str_buffer str_buffer::memfd(const std::string& name, std::size_t capacity, std::size_t width,
                             const structure_options& opt)
{
    require_width(width);
    return str_buffer(open_memfd(name, capacity, spec(width), opt), width);
}

str_buffer str_buffer::from_fd(int fd) { return str_buffer(open_fd(fd, spec(0)), 0); }

void str_buffer::check_length(std::string_view v) const
{
    if (v.size() > width())
        throw std::length_error("shmkit: " + path() + ": value of " + std::to_string(v.size()) +
                                " bytes is longer than the width " + std::to_string(width()));
}

void str_buffer::store(std::size_t i, std::string_view v) noexcept
{
    char* s = slot(i);
    reinterpret_cast<length_word*>(s)->store(static_cast<std::uint32_t>(v.size()), std::memory_order_relaxed);
    sync::atomic_copy_to_shared(s + sizeof(length_word), v.data(), v.size());
}

std::string str_buffer::load(std::size_t i) const
{
    const char* s = slot(i);
    std::string out;
    bulk_read([&] {
        // A torn copy may read any length; clamp it so the copy stays inside
        // the slot. The seqlock then throws the torn copy away.
        std::size_t n = reinterpret_cast<const length_word*>(s)->load(std::memory_order_relaxed);
        if (n > width()) n = width();
        out.resize(n);
        sync::atomic_copy_from_shared(out.data(), s + sizeof(length_word), n);
    });
    return out;
}

std::string str_buffer::get(std::size_t i) const
{
    check_index(i);
    return load(i);
}

void str_buffer::set(std::size_t i, std::string_view v)
{
    check_index(i);
    check_length(v);
    bulk_write([&] { store(i, v); });
}

std::vector<std::string> str_buffer::slice(std::size_t from, std::size_t count) const
{
    check_range(from, count);
    std::vector<std::string> out(count);
    bulk_read([&] {
        for (std::size_t k = 0; k < count; ++k) {
            const char* s = slot(from + k);
            std::size_t n = reinterpret_cast<const length_word*>(s)->load(std::memory_order_relaxed);
            if (n > width()) n = width();
            out[k].resize(n);
            sync::atomic_copy_from_shared(out[k].data(), s + sizeof(length_word), n);
        }
    });
    return out;
}

void str_buffer::set_slice(std::size_t from, boost::span<const std::string_view> values)
{
    check_range(from, values.size());
    for (std::string_view v : values) check_length(v);
    bulk_write([&] {
        for (std::size_t k = 0; k < values.size(); ++k) store(from + k, values[k]);
    });
}

void str_buffer::fill(std::string_view v)
{
    check_length(v);
    bulk_write([&] {
        for (std::size_t k = 0; k < capacity(); ++k) store(k, v);
    });
}

} // namespace shmkit
