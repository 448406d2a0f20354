// Helpers of the data commands (create, buffer, pool, kv): see data_common.hpp.
#include "data_common.hpp"
#include "target.hpp"

#include <shmkit/error.hpp>
#include <shmkit/region.hpp>

#include <cerrno>
#include <ostream>

#include <sys/stat.h>
#include <unistd.h>

namespace shmkit_tool {

namespace po = boost::program_options;

std::string segment_path(const std::string& text)
{
    const target t = resolve_target(text); // the one TARGET rule of the tool
    if (t.how == target::form::share_key)
        throw usage_error("'" + text + "' is a share, not a buffer or pool (see shmkit share)");
    return t.how == target::form::posix_name ? "/dev/shm" + t.name : t.text;
}

std::string kv_name(const std::string& name)
{
    const std::string n = !name.empty() && name[0] == '/' ? name.substr(1) : name;
    if (n.empty() || n.size() > 200 || n.find_first_of(std::string("/~\0", 3)) != std::string::npos)
        throw usage_error("bad kv_store name '" + name +
                          "': expected NAME or /NAME, at most 200 bytes, no '/' after the first character, no '~'");
    return "/" + n;
}

bool kv_exists(const std::string& name)
{
    struct stat st {};
    return ::lstat(("/dev/shm" + name).c_str(), &st) == 0;
}

segment_info probe_segment(const std::string& path)
{
    const shmkit::region r = shmkit::region::file(shmkit::open_only, path);
    const auto& h = shmkit::detail::validate_layout(r.data(), r.size(), path);
    segment_info info;
    info.path = path;
    info.kind = static_cast<shmkit::structure_kind>(h.kind);
    info.type = static_cast<shmkit::element_type>(h.elem_type);
    info.elem_size = h.elem_size;
    info.capacity = h.capacity;
    return info;
}

void require_kind(const segment_info& info, shmkit::structure_kind kind)
{
    if (info.kind != kind)
        shmkit::detail::throw_error(shmkit::errc::kind_mismatch, info.path,
                                    std::string("segment is a ") + shmkit::to_string(info.kind) + ", expected a " +
                                        shmkit::to_string(kind));
}

void require_integers(const segment_info& info, const char* what)
{
    using shmkit::element_type;
    const bool integer = is_numeric(info.type) && info.type != element_type::f32 && info.type != element_type::f64;
    if (!integer)
        shmkit::detail::throw_error(shmkit::errc::type_mismatch, info.path,
                                    std::string(what) + " needs integer elements; the segment holds " +
                                        shmkit::to_string(info.type));
}

bool is_numeric(shmkit::element_type t) noexcept
{
    const auto v = static_cast<std::uint32_t>(t);
    return v >= static_cast<std::uint32_t>(shmkit::element_type::i8) &&
           v <= static_cast<std::uint32_t>(shmkit::element_type::f64);
}

shmkit::element_type parse_element_type(const std::string& s, const char* option)
{
    using shmkit::element_type;
    static const struct {
        const char* name;
        const char* alias;
        element_type type;
    } types[] = {
        {"i8", "int8", element_type::i8},       {"u8", "uint8", element_type::u8},
        {"i16", "int16", element_type::i16},    {"u16", "uint16", element_type::u16},
        {"i32", "int32", element_type::i32},    {"u32", "uint32", element_type::u32},
        {"i64", "int64", element_type::i64},    {"u64", "uint64", element_type::u64},
        {"f32", "float", element_type::f32},    {"f64", "double", element_type::f64},
    };
    for (const auto& t : types)
        if (s == t.name || s == t.alias) return t.type;
    throw usage_error(std::string(option) + " must be one of i8 u8 i16 u16 i32 u32 i64 u64 f32 f64, not '" + s + "'");
}

namespace detail {

void bad_number(const std::string& s, const char* what, const char* type_name, bool range)
{
    throw usage_error(std::string(what) + ": '" + s + "' is " +
                      (range ? std::string("out of range for ") : std::string("not a number of type ")) + type_name);
}

bool parse_integer(const std::string& s, bool& negative, std::uint64_t& magnitude)
{
    const char* b = s.data();
    const char* e = s.data() + s.size();
    negative = false;
    if (b != e && (*b == '-' || *b == '+')) negative = *b++ == '-';
    int base = 10;
    if (e - b > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
        b += 2;
        base = 16;
    }
    if (b == e || *b == '+' || *b == '-') return false;
    const auto r = std::from_chars(b, e, magnitude, base);
    if (r.ec == std::errc::result_out_of_range) {
        magnitude = std::numeric_limits<std::uint64_t>::max(); // out of every range
        return r.ptr == e;
    }
    return r.ec == std::errc() && r.ptr == e;
}

} // namespace detail

std::uint64_t parse_unsigned(const std::string& s, const char* what, std::uint64_t max)
{
    bool negative = false;
    std::uint64_t m = 0;
    if (!detail::parse_integer(s, negative, m) || (negative && m != 0))
        throw usage_error(std::string(what) + ": '" + s + "' is not a whole number");
    if (m > max) throw usage_error(std::string(what) + ": " + s + " is too large (at most " + std::to_string(max) + ")");
    return m;
}

std::string c_escape(std::string_view s)
{
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                out += static_cast<char>(c);
            } else {
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
    }
    return out;
}

std::string json_string(std::string_view s)
{
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    out.reserve(s.size() + 2);
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                out += static_cast<char>(c);
            } else {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
    }
    out += '"';
    return out;
}

std::string read_stdin()
{
    std::string data;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(0, buf, sizeof buf);
        if (n > 0) {
            data.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0) {
            return data;
        } else if (errno != EINTR) {
            shmkit::detail::throw_errno(errno, "standard input", "cannot read");
        }
    }
}

void write_bytes(std::ostream& out, std::string_view s)
{
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

namespace {

/// "-5", "-0x10", "-1.5", "-.5", "-inf", "-nan": a negative number, never an option.
bool negative_number(const std::string& s)
{
    if (s.size() < 2 || s[0] != '-') return false;
    const char c = s[1];
    if ((c >= '0' && c <= '9') || c == '.') return true;
    const std::string rest = s.substr(1);
    for (const char* w : {"inf", "infinity", "nan"}) {
        if (rest.size() != std::strlen(w)) continue;
        bool same = true;
        for (std::size_t k = 0; k < rest.size(); ++k)
            same = same && (rest[k] | 0x20) == w[k];
        if (same) return true;
    }
    return false;
}

} // namespace

parsed_args parse_args(const args& a, const po::options_description& opts)
{
    // The options first, in their order, then "--" and every positional
    // argument in its order: negative numbers and everything after "--"
    // are positional.
    args options, positional;
    bool ended = false;
    for (std::size_t k = 0; k < a.size(); ++k) {
        const std::string& s = a[k];
        if (ended) {
            positional.push_back(s);
        } else if (s == "--") {
            ended = true;
        } else if (s == "-h") {
            options.push_back("--help");
        } else if (s.size() > 1 && s[0] == '-' && !negative_number(s)) {
            if (s[1] != '-')
                throw usage_error("unknown option '" + s + "' (options are long: --name; \"--\" ends the options)");
            options.push_back(s);
            // An option that takes a value in the next argument ("--type i8"):
            // the value goes with it, even when it looks like a negative number.
            if (s.rfind("--", 0) == 0 && s.find('=') == std::string::npos && k + 1 < a.size()) {
                const po::option_description* d = opts.find_nothrow(s.substr(2), false);
                if (d && d->semantic()->max_tokens() > 0) options.push_back(a[++k]);
            }
        } else {
            positional.push_back(s);
        }
    }
    po::options_description all;
    all.add(opts);
    all.add_options()("positional__", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("positional__", -1);
    args line = options;
    line.push_back("--");
    line.insert(line.end(), positional.begin(), positional.end());
    parsed_args p;
    po::store(po::command_line_parser(line)
                  .options(all)
                  .positional(pos)
                  .style(po::command_line_style::unix_style & ~po::command_line_style::allow_short &
                         ~po::command_line_style::allow_guessing)
                  .run(),
              p.vm);
    po::notify(p.vm);
    p.help = p.vm.count("help") > 0;
    if (p.vm.count("positional__")) p.positional = p.vm["positional__"].as<std::vector<std::string>>();
    return p;
}

unsigned parse_mode(const std::string& s)
{
    if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos)
        throw usage_error("--mode: permission bits in octal, at most 777, not '" + s + "'");
    const unsigned m = static_cast<unsigned>(std::stoul(s, nullptr, 8));
    if (m > 0777) throw usage_error("--mode: permission bits in octal, at most 777, not '" + s + "'");
    return m;
}

} // namespace shmkit_tool
