// raw_pool: byte slots.
#include <shmkit/raw_pool.hpp>

#include <shmkit/detail/atomic_copy.hpp>

#include <stdexcept>

namespace shmkit {

detail::pool_spec raw_pool::spec(std::size_t elem_size) noexcept
{
    return {element_type::bytes, static_cast<std::uint32_t>(elem_size), static_cast<std::uint32_t>(elem_size),
            "slot size"};
}

namespace {
std::size_t require_size(std::size_t elem_size)
{
    if (elem_size == 0 || elem_size > UINT32_MAX)
        throw std::invalid_argument("shmkit: a raw_pool's slot size must be 1 to 2^32-1 bytes, not " +
                                    std::to_string(elem_size));
    return elem_size;
}
} // namespace

raw_pool::raw_pool(create_only_t, const std::string& path, std::size_t capacity, std::size_t elem_size,
                   const pool_options& opt)
    : pool_base(open(create_only, path, capacity, spec(require_size(elem_size)), opt), spec(elem_size), opt)
{
}

raw_pool::raw_pool(open_or_create_t, const std::string& path, std::size_t capacity, std::size_t elem_size,
                   const pool_options& opt)
    : pool_base(open(open_or_create, path, capacity, spec(require_size(elem_size)), opt), spec(elem_size), opt)
{
}

raw_pool::raw_pool(open_only_t, const std::string& path, const pool_options& opt)
    : pool_base(open(open_only, path, spec(0)), spec(0), opt)
{
}

raw_pool::raw_pool(segment seg, const pool_options& opt) : pool_base(std::move(seg), spec(0), opt) {}

raw_pool raw_pool::anonymous(std::size_t capacity, std::size_t elem_size, const pool_options& opt)
{
    return raw_pool(open_anonymous(capacity, spec(require_size(elem_size)), opt), opt);
}

raw_pool raw_pool::memfd(const std::string& name, std::size_t capacity, std::size_t elem_size,
                         const pool_options& opt)
{
    return raw_pool(open_memfd(name, capacity, spec(require_size(elem_size)), opt), opt);
}

raw_pool raw_pool::from_fd(int fd, const pool_options& opt) { return raw_pool(open_fd(fd, spec(0)), opt); }

std::string raw_pool::get(std::size_t i) const
{
    const char* p = static_cast<const char*>(ptr(i));
    std::string out(elem_size(), '\0');
    detail::atomic_copy_from_shared(out.data(), p, out.size());
    return out;
}

void raw_pool::get(std::size_t i, boost::span<std::byte> out) const
{
    const char* p = static_cast<const char*>(ptr(i));
    if (out.size() < elem_size())
        throw std::length_error("shmkit: " + path() + ": a buffer of " + std::to_string(out.size()) +
                                " bytes for a slot of " + std::to_string(elem_size()));
    detail::atomic_copy_from_shared(out.data(), p, elem_size());
}

void raw_pool::check_length(std::string_view bytes) const
{
    if (bytes.size() > elem_size())
        throw std::length_error("shmkit: " + path() + ": " + std::to_string(bytes.size()) +
                                " bytes do not fit a slot of " + std::to_string(elem_size()));
}

void raw_pool::store(std::size_t i, std::string_view bytes) noexcept
{
    char* p = slot(i);
    detail::atomic_copy_to_shared(p, bytes.data(), bytes.size());
    detail::atomic_zero_shared(p + bytes.size(), elem_size() - bytes.size());
}

void raw_pool::set(std::size_t i, std::string_view bytes)
{
    check_allocated(i);
    check_length(bytes);
    store(i, bytes);
}

std::optional<std::size_t> raw_pool::alloc_set(std::string_view bytes)
{
    check_length(bytes);
    return alloc_then(alloc(), [&](std::size_t i) { store(i, bytes); });
}

std::optional<std::size_t> raw_pool::try_alloc_set(std::string_view bytes)
{
    check_length(bytes);
    return alloc_then(try_alloc(), [&](std::size_t i) { store(i, bytes); });
}

} // namespace shmkit
