// What the data commands of the shmkit tool share (create, buffer, pool,
// kv): where a segment lives, what a segment holds, element types and
// numbers on the command line, escaping of bytes for text output, and the
// command-line conventions of these commands. See doc/shmkit/tool.adoc.
#ifndef SHMKIT_TOOLS_DATA_COMMON_HPP
#define SHMKIT_TOOLS_DATA_COMMON_HPP

#include "command.hpp"
#include "parse.hpp"

#include <shmkit/detail/header.hpp>

#include <boost/program_options.hpp>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace shmkit_tool {

// ---- Where a segment lives ----------------------------------------------------

/// The file of a buffer or pool TARGET, as the other commands of the tool
/// read a TARGET (target.hpp, doc/shmkit/tool.adoc): NAME or /NAME (no '/' but a
/// leading one) is the POSIX shared-memory object NAME, whose file is
/// /dev/shm/NAME (what shm_open("/NAME") opens); anything else containing
/// '/' is a file path, used as given (a file directly in / is //file).
/// Throws usage_error for an empty TARGET, a name that cannot be one (".",
/// "..", longer than 255 bytes), or a share:KEY target.
std::string segment_path(const std::string& target);

/// A kv_store NAME ("NAME" or "/NAME"), checked as kv_store checks it (not
/// empty, at most 200 bytes, no '/' after the first character, no '~'), as
/// "/NAME". Throws usage_error.
std::string kv_name(const std::string& name);

/// Whether the root object of kv_store `name` (as kv_name() returns it)
/// exists. kv_store has no open-only mode (opening creates), so the commands
/// that must not create a store look first. Throws nothing.
bool kv_exists(const std::string& name);

// ---- What a segment holds -------------------------------------------------------

/// The facts of a segment's header, validated (detail::validate_layout)
/// without attaching to it.
struct segment_info {
    std::string path;
    shmkit::structure_kind kind{};
    shmkit::element_type type{};
    std::uint32_t elem_size = 0;
    std::uint64_t capacity = 0;
};

/// Maps `path` and validates its header. Throws shmkit::error (ENOENT, not
/// a segment, corrupt, ...). Reads only.
segment_info probe_segment(const std::string& path);

/// Throws shmkit::error (errc::kind_mismatch) naming `info.path` unless it
/// holds a `kind`.
void require_kind(const segment_info& info, shmkit::structure_kind kind);

/// Throws shmkit::error (errc::type_mismatch) naming `info.path`, `what`
/// being the operation that needs integers.
void require_integers(const segment_info& info, const char* what);

/// True for i8 ... f64.
bool is_numeric(shmkit::element_type t) noexcept;

// ---- Element types and numbers ------------------------------------------------------

/// "i8" ... "f64" (also "int64", "double" ...: see the implementation), or
/// throws usage_error naming `option`.
shmkit::element_type parse_element_type(const std::string& s, const char* option);

template <class T> struct type_tag {
    using type = T;
};

/// Calls f(type_tag<T>{}) with the C++ type of numeric element type `t`.
/// Throws std::logic_error for a non-numeric type.
template <class F>
void visit_numeric(shmkit::element_type t, F&& f)
{
    using shmkit::element_type;
    switch (t) {
    case element_type::i8: return f(type_tag<std::int8_t>{});
    case element_type::u8: return f(type_tag<std::uint8_t>{});
    case element_type::i16: return f(type_tag<std::int16_t>{});
    case element_type::u16: return f(type_tag<std::uint16_t>{});
    case element_type::i32: return f(type_tag<std::int32_t>{});
    case element_type::u32: return f(type_tag<std::uint32_t>{});
    case element_type::i64: return f(type_tag<std::int64_t>{});
    case element_type::u64: return f(type_tag<std::uint64_t>{});
    case element_type::f32: return f(type_tag<float>{});
    case element_type::f64: return f(type_tag<double>{});
    default: throw std::logic_error("shmkit: not a numeric element type");
    }
}

/// A whole number for a count, index or size: decimal or 0x hexadecimal,
/// at most `max`. Throws usage_error naming `what`.
std::uint64_t parse_unsigned(const std::string& s, const char* what,
                             std::uint64_t max = std::numeric_limits<std::uint64_t>::max());

namespace detail {
[[noreturn]] void bad_number(const std::string& s, const char* what, const char* type_name, bool range);
bool parse_integer(const std::string& s, bool& negative, std::uint64_t& magnitude);
} // namespace detail

/// A value of element type T: integers in decimal (optionally signed) or 0x
/// hexadecimal, in T's range; floats as std::from_chars reads them (also
/// inf, -inf, nan). With `wrap`, an unsigned T also takes a negative number
/// down to -max(T), converted modulo 2^bits (a delta for add). Throws
/// usage_error naming `what`.
template <class T>
T parse_value(const std::string& s, const char* what, const char* type_name, bool wrap = false)
{
    if constexpr (std::is_floating_point_v<T>) {
        T v{};
        const char* b = s.data();
        const char* e = s.data() + s.size();
        if (b != e && *b == '+' && ++b != e && *b == '-') detail::bad_number(s, what, type_name, false); // "+-5"
        const auto r = std::from_chars(b, e, v);
        if (b == e || r.ptr != e || r.ec == std::errc::invalid_argument) detail::bad_number(s, what, type_name, false);
        if (r.ec == std::errc::result_out_of_range) detail::bad_number(s, what, type_name, true);
        return v;
    } else {
        bool negative = false;
        std::uint64_t m = 0;
        if (!detail::parse_integer(s, negative, m)) detail::bad_number(s, what, type_name, false);
        using U = std::make_unsigned_t<T>;
        constexpr std::uint64_t umax = std::numeric_limits<U>::max();
        if constexpr (std::is_signed_v<T>) {
            constexpr std::uint64_t pmax = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
            if (!negative ? m > pmax : m > pmax + 1) detail::bad_number(s, what, type_name, true);
            return negative ? static_cast<T>(static_cast<U>(0) - static_cast<U>(m)) : static_cast<T>(m);
        } else {
            if (m > umax || (negative && !wrap && m != 0)) detail::bad_number(s, what, type_name, true);
            return negative ? static_cast<T>(static_cast<U>(0) - static_cast<U>(m)) : static_cast<T>(m);
        }
    }
}

/// A value as text: integers in decimal (8-bit ones as numbers), floats in
/// the shortest form that reads back as the same value (std::to_chars).
template <class T>
std::string format_value(T v)
{
    if constexpr (std::is_floating_point_v<T>) {
        char buf[64];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        return std::string(buf, r.ptr);
    } else if constexpr (std::is_signed_v<T>) {
        return std::to_string(static_cast<long long>(v));
    } else {
        return std::to_string(static_cast<unsigned long long>(v));
    }
}

/// Whether a and b have the same bits (cas compares bit patterns).
template <class T>
bool same_bits(T a, T b) noexcept
{
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// ---- Bytes as text -------------------------------------------------------------

/// C-style escaping: printable ASCII (0x20-0x7e) as is except the
/// backslash (\\); tab, newline and carriage return as \t \n \r; every other
/// byte as \xHH with exactly two hexadecimal digits (lower case). The result
/// is ASCII without tabs or newlines, and decodes back to exactly `s`.
std::string c_escape(std::string_view s);

/// A JSON string literal (with the quotes) holding one code point per byte
/// (U+0000-U+00FF): printable ASCII as is except " and \; \b \f \n \r \t;
/// other bytes as \u00hh. Decoding the string and encoding it as Latin-1
/// gives back exactly `s`.
std::string json_string(std::string_view s);

// ---- Input and output --------------------------------------------------------------

/// All of standard input (binary-safe, read(2) until end of file). Throws
/// shmkit::error on a read error.
std::string read_stdin();

/// Writes raw bytes.
void write_bytes(std::ostream& out, std::string_view s);

// ---- Command lines ----------------------------------------------------------------

/// The command line of a data command: `opts` (visible in --help) and the
/// positional arguments in order. Negative numbers ("-5", "-1.5", "-inf")
/// are positional arguments, never options; long options only, plus -h for
/// --help; "--" ends the options. Throws boost::program_options errors
/// (exit 2 in main()).
parsed_args parse_args(const args& a, const boost::program_options::options_description& opts);

/// Permission bits from --mode (octal, at most 777). Throws usage_error.
unsigned parse_mode(const std::string& s);

} // namespace shmkit_tool

#endif
