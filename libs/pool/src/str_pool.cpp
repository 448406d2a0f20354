// str_pool: length-prefixed strings in pool slots.
#include <shmkit/str_pool.hpp>

#include <shmkit/detail/atomic_copy.hpp>
#include <shmkit/error.hpp>

#include <atomic>
#include <stdexcept>

namespace shmkit {

namespace {

using length_word = std::atomic<std::uint32_t>;

constexpr std::size_t max_max_length = UINT32_MAX - 8;

std::size_t slot_size(std::size_t max_length) { return (sizeof(length_word) + max_length + 3) & ~std::size_t(3); }

/// The header's element size is the maximum length, so that opening with
/// another one is refused by validation (naming both), before anything is
/// written; the slot size is derived from it.
detail::pool_spec spec(std::size_t max_length)
{
    return {element_type::strings, static_cast<std::uint32_t>(max_length),
            max_length ? static_cast<std::uint32_t>(slot_size(max_length)) : 0, "maximum length"};
}

std::size_t require_length(std::size_t max_length)
{
    if (max_length == 0 || max_length > max_max_length)
        throw std::invalid_argument("shmkit: a str_pool's maximum length must be 1 to " +
                                    std::to_string(max_max_length) + ", not " + std::to_string(max_length));
    return max_length;
}

} // namespace

str_pool::str_pool(create_only_t, const std::string& path, std::size_t capacity, std::size_t max_length,
                   const pool_options& opt)
    : str_pool(open(create_only, path, capacity, spec(require_length(max_length)), opt), opt)
{
}

str_pool::str_pool(open_or_create_t, const std::string& path, std::size_t capacity, std::size_t max_length,
                   const pool_options& opt)
    : str_pool(open(open_or_create, path, capacity, spec(require_length(max_length)), opt), opt)
{
}

str_pool::str_pool(open_only_t, const std::string& path, const pool_options& opt)
    : str_pool(open(open_only, path, spec(0)), opt)
{
}

str_pool::str_pool(segment seg, const pool_options& opt) : pool_base(std::move(seg), spec(0), opt)
{
    const std::uint64_t m = seg_.elem_size();
    if (m == 0 || m > max_max_length || slot_size(m) != elem_size())
        detail::throw_error(errc::corrupt_header, path(),
                            "maximum length " + std::to_string(m) + " does not fit the slot size " +
                                std::to_string(elem_size()));
    max_length_ = static_cast<std::size_t>(m);
}

str_pool str_pool::anonymous(std::size_t capacity, std::size_t max_length, const pool_options& opt)
{
    return str_pool(open_anonymous(capacity, spec(require_length(max_length)), opt), opt);
}

str_pool str_pool::memfd(const std::string& name, std::size_t capacity, std::size_t max_length,
                         const pool_options& opt)
{
    return str_pool(open_memfd(name, capacity, spec(require_length(max_length)), opt), opt);
}

str_pool str_pool::from_fd(int fd, const pool_options& opt) { return str_pool(open_fd(fd, spec(0)), opt); }

std::size_t str_pool::length(std::size_t i) const
{
    const auto* len = static_cast<const length_word*>(ptr(i));
    const std::uint32_t n = len->load(std::memory_order_acquire);
    return n < max_length_ ? n : max_length_; // shared memory: never trust it as a size
}

std::string str_pool::get(std::size_t i) const
{
    std::string out;
    get(i, out);
    return out;
}

void str_pool::get(std::size_t i, std::string& out) const
{
    const std::size_t n = length(i);
    out.resize(n);
    detail::atomic_copy_from_shared(out.data(), slot(i) + sizeof(length_word), n);
}

void str_pool::check_length(std::string_view v) const
{
    if (v.size() > max_length_)
        throw std::length_error("shmkit: " + path() + ": a string of " + std::to_string(v.size()) +
                                " bytes is longer than the maximum length " + std::to_string(max_length_));
}

void str_pool::store(std::size_t i, std::string_view v) noexcept
{
    char* s = slot(i);
    detail::atomic_copy_to_shared(s + sizeof(length_word), v.data(), v.size());
    // Release: a reader that sees the new length also sees the new bytes.
    reinterpret_cast<length_word*>(s)->store(static_cast<std::uint32_t>(v.size()), std::memory_order_release);
}

void str_pool::set(std::size_t i, std::string_view v)
{
    check_allocated(i);
    check_length(v);
    store(i, v);
}

std::optional<std::size_t> str_pool::alloc_set(std::string_view v)
{
    check_length(v);
    return alloc_then(alloc(), [&](std::size_t i) { store(i, v); });
}

std::optional<std::size_t> str_pool::try_alloc_set(std::string_view v)
{
    check_length(v);
    return alloc_then(try_alloc(), [&](std::size_t i) { store(i, v); });
}

} // namespace shmkit
