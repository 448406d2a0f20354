// Validation of the segment header against the mapping and the caller's
// expectation. Reads only: a refused file is left byte-for-byte unchanged.
#include <shmkit/detail/header.hpp>

#include <shmkit/detail/attach_table.hpp>
#include <shmkit/detail/checked.hpp>
#include <shmkit/error.hpp>

#include <cstring>

namespace shmkit {

const char* to_string(structure_kind k) noexcept
{
    switch (k) {
    case structure_kind::raw: return "segment";
    case structure_kind::buffer: return "buffer";
    case structure_kind::pool: return "pool";
    case structure_kind::kv: return "kv_store";
    case structure_kind::share: return "share";
    }
    return "unknown";
}

const char* to_string(element_type t) noexcept
{
    static const char* const names[] = {"none", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                                        "int64", "uint64", "float", "double", "bytes", "strings"};
    const auto i = static_cast<std::uint32_t>(t);
    return i < sizeof names / sizeof names[0] ? names[i] : "unknown";
}

namespace detail {
namespace {

constexpr std::uint64_t page_size = 4096;

[[noreturn]] void fail(errc e, const std::string& where, const std::string& what)
{
    throw_error(e, where, what);
}

std::string num(std::uint64_t v) { return std::to_string(v); }

std::string kind_name(std::uint32_t k)
{
    const char* n = to_string(static_cast<structure_kind>(k));
    return std::strcmp(n, "unknown") == 0 ? "kind " + num(k) : std::string(n);
}

void check_identity(const segment_header& h, std::size_t mapped, const std::string& where)
{
    if (std::memcmp(h.magic, segment_magic, sizeof segment_magic) != 0)
        fail(errc::not_a_segment, where, "not a shmkit segment (bad magic)");
    if (h.byte_order != byte_order_mark || h.pointer_size != sizeof(void*))
        fail(errc::foreign_platform, where, "segment was created with another byte order or pointer size");
    if (h.format_version != format_version)
        fail(errc::version_mismatch, where,
             "format version " + num(h.format_version) + ", this library reads version " + num(format_version));
    if (h.init_state.load(std::memory_order_acquire) != init_ready)
        fail(errc::not_initialised, where, "segment was never completely initialised");
    if (h.checksum != header_checksum(h))
        fail(errc::corrupt_header, where, "header checksum mismatch: the header is corrupted");
    if (h.header_size != header_size) fail(errc::corrupt_header, where, "bad header size " + num(h.header_size));
    if (h.total_size != mapped)
        fail(errc::truncated, where,
             "header says " + num(h.total_size) + " bytes but the segment has " + num(mapped));
}

void check_section(std::uint64_t offset, std::uint64_t length, std::uint64_t after, std::uint64_t total,
                   const char* what, const std::string& where)
{
    if (offset % cache_line_size != 0 || offset < after || !range_within(offset, length, total))
        fail(errc::corrupt_header, where, std::string("bad ") + what + " section: offset " + num(offset) +
                                              ", length " + num(length) + ", segment " + num(total));
}

void check_layout(const segment_header& h, const std::string& where)
{
    if (h.kind < 1 || h.kind > 5) fail(errc::corrupt_header, where, "unknown structure kind " + num(h.kind));
    if (h.elem_type > static_cast<std::uint32_t>(element_type::strings))
        fail(errc::corrupt_header, where, "unknown element type " + num(h.elem_type));
    if (h.attach_capacity == 0 || h.attach_capacity > max_attach_capacity)
        fail(errc::corrupt_header, where, "bad attach capacity " + num(h.attach_capacity));
    if (h.n_rwlocks > max_rwlocks || h.n_mutexes > max_mutexes)
        fail(errc::corrupt_header, where, "bad lock counts");
    const auto table = checked_add(sizeof(attach_table_header),
                                   *checked_mul(h.attach_capacity, sizeof(attach_entry)));
    const auto sync = checked_mul(std::uint64_t(h.n_rwlocks) + h.n_mutexes, cache_line_size);
    check_section(h.attach_offset, *table, header_size, h.total_size, "attach table", where);
    check_section(h.sync_offset, *sync, h.attach_offset + *table, h.total_size, "lock", where);
    check_section(h.data_offset, h.data_size, h.sync_offset + *sync, h.total_size, "data", where);
    if (h.total_size % page_size != 0) fail(errc::corrupt_header, where, "size is not a whole number of pages");
}

void check_expectation(const segment_header& h, const segment_expectation& x, const std::string& where)
{
    if (h.kind != static_cast<std::uint32_t>(x.kind))
        fail(errc::kind_mismatch, where,
             "segment is a " + kind_name(h.kind) + ", expected a " + kind_name(static_cast<std::uint32_t>(x.kind)));
    if (x.elem_type != element_type::none && h.elem_type != static_cast<std::uint32_t>(x.elem_type))
        fail(errc::type_mismatch, where,
             std::string("segment holds ") + to_string(static_cast<element_type>(h.elem_type)) + ", expected " +
                 to_string(x.elem_type));
    if (x.elem_size != 0 && h.elem_size != x.elem_size)
        fail(errc::type_mismatch, where,
             std::string("segment ") + x.elem_size_name + " is " + num(h.elem_size) + ", expected " +
                 num(x.elem_size));
    if (x.capacity != 0 && h.capacity != x.capacity)
        fail(errc::capacity_mismatch, where,
             "segment capacity is " + num(h.capacity) + ", requested " + num(x.capacity));
}

const segment_header& checked_header(const void* base, std::size_t mapped, const std::string& where)
{
    if (mapped < header_size)
        fail(errc::truncated, where,
             mapped == 0 ? std::string("segment is empty")
                         : "segment has " + num(mapped) + " bytes, less than a header");
    return *static_cast<const segment_header*>(base);
}

} // namespace

std::uint64_t header_checksum(const segment_header& h) noexcept
{
    const auto* p = reinterpret_cast<const unsigned char*>(&h);
    const std::size_t n = offsetof(segment_header, checksum);
    std::uint64_t x = 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < n; ++i) x = (x ^ p[i]) * 0x100000001b3ull;
    return x;
}

const segment_header& validate_layout(const void* base, std::size_t mapped, const std::string& where)
{
    const segment_header& h = checked_header(base, mapped, where);
    check_identity(h, mapped, where);
    check_layout(h, where);
    return h;
}

const segment_header& validate_header(const void* base, std::size_t mapped, const segment_expectation& x,
                                      const std::string& where)
{
    const segment_header& h = validate_layout(base, mapped, where);
    check_expectation(h, x, where);
    return h;
}

} // namespace detail
} // namespace shmkit
