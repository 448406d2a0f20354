// shmkit buffer get|set|fill|add|incr|decr|cas: read and write the
// elements of a buffer<T> or str_buffer; the element type comes from the
// segment's header.
#include "command.hpp"
#include "data_common.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/error.hpp>
#include <shmkit/str_buffer.hpp>

#include <boost/program_options.hpp>

#include <iostream>
#include <string_view>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const buffer_help =
    "usage: shmkit buffer get TARGET INDEX [COUNT]        print COUNT (default 1) elements\n"
    "       shmkit buffer set TARGET INDEX VALUE...       set elements INDEX, INDEX+1, ...\n"
    "       shmkit buffer fill TARGET VALUE               set every element\n"
    "       shmkit buffer add TARGET INDEX DELTA          add, print the new value (integers)\n"
    "       shmkit buffer incr|decr TARGET INDEX          add 1 / subtract 1, print the new value\n"
    "       shmkit buffer cas TARGET INDEX EXPECTED DESIRED\n"
    "                 replace EXPECTED by DESIRED; print the value found; exit 0 if it\n"
    "                 was EXPECTED (replaced), 1 if not (unchanged)\n\n"
    "TARGET: a buffer or str_buffer: NAME or /NAME, the POSIX shared-memory object\n"
    "NAME (/dev/shm/NAME), or a file path (./f, dir/f, //f). The element type comes\n"
    "from the segment.\n"
    "Numbers: one per line; integers in decimal (input also 0x...), floats in the\n"
    "shortest form that reads back exactly (input also inf, -inf, nan).\n"
    "One value is set atomically; several (set with more than one VALUE, fill) as\n"
    "one bulk write that readers never see half-done.\n\n"
    "str_buffer: get of one value writes its bytes raw, nothing added; of several\n"
    "(COUNT > 1), or with --escape, one value per line, C-escaped (\\\\ \\t \\n \\r,\n"
    "\\xHH for other bytes outside printable ASCII). set takes the values as\n"
    "arguments, or one value, binary-safe, from standard input when none is given.\n"
    "add, incr, decr, cas: numeric buffers only (add, incr, decr: integers).\n";

struct request {
    std::string action;
    std::vector<std::string> pos; // after the action: TARGET ...
    bool escape = false;
};

std::size_t index_arg(const std::string& s) { return static_cast<std::size_t>(parse_unsigned(s, "INDEX")); }

void str_action(const segment_info& info, const request& r, std::ostream& out, int& status)
{
    shmkit::str_buffer b(shmkit::open_only, info.path);
    const std::string& act = r.action;
    if (act == "get") {
        const std::size_t i = index_arg(r.pos[1]);
        const std::size_t n = r.pos.size() > 2 ? static_cast<std::size_t>(parse_unsigned(r.pos[2], "COUNT")) : 1;
        if (n == 1 && !r.escape) {
            write_bytes(out, b.get(i));
            return;
        }
        std::string text;
        for (const std::string& v : b.slice(i, n)) text += c_escape(v) + "\n";
        out << text;
    } else if (act == "set") {
        const std::size_t i = index_arg(r.pos[1]);
        if (r.pos.size() == 2) {
            b.set(i, read_stdin());
        } else if (r.pos.size() == 3) {
            b.set(i, r.pos[2]);
        } else {
            std::vector<std::string_view> values(r.pos.begin() + 2, r.pos.end());
            b.set_slice(i, values);
        }
    } else if (act == "fill") {
        b.fill(r.pos[1]);
    } else {
        shmkit::detail::throw_error(shmkit::errc::type_mismatch, info.path,
                                    "buffer " + act + " needs a numeric buffer; this is a str_buffer");
    }
    (void)status;
}

template <class T>
void numeric_action(const segment_info& info, const request& r, std::ostream& out, std::ostream& err, int& status)
{
    const char* const tname = shmkit::to_string(info.type);
    shmkit::buffer<T> b(shmkit::open_only, info.path);
    const std::string& act = r.action;
    auto value = [&](const std::string& s, const char* what) { return parse_value<T>(s, what, tname); };
    if (act == "get") {
        const std::size_t i = index_arg(r.pos[1]);
        const std::size_t n = r.pos.size() > 2 ? static_cast<std::size_t>(parse_unsigned(r.pos[2], "COUNT")) : 1;
        std::string text;
        if (n == 1) {
            text = format_value(b.get(i)) + "\n";
        } else {
            for (const T v : b.slice(i, n)) text += format_value(v) + "\n";
        }
        out << text;
    } else if (act == "set") {
        const std::size_t i = index_arg(r.pos[1]);
        if (r.pos.size() < 3) throw usage_error("buffer set: expected TARGET INDEX VALUE... (a numeric buffer)");
        std::vector<T> values;
        for (std::size_t k = 2; k < r.pos.size(); ++k) values.push_back(value(r.pos[k], "VALUE"));
        if (values.size() == 1) b.set(i, values[0]);
        else b.set_slice(i, values);
    } else if (act == "fill") {
        b.fill(value(r.pos[1], "VALUE"));
    } else if (act == "cas") {
        const std::size_t i = index_arg(r.pos[1]);
        const T expected = value(r.pos[2], "EXPECTED");
        const T desired = value(r.pos[3], "DESIRED");
        const T found = b.cmpxchg(i, expected, desired);
        out << format_value(found) << "\n";
        if (!same_bits(found, expected)) {
            err << "shmkit: buffer cas: " << info.path << ": element " << i << " is " << format_value(found)
                << ", not " << r.pos[2] << ": unchanged\n";
            status = exit_problem;
        }
    } else {
        // add, incr, decr
        require_integers(info, ("buffer " + act).c_str());
        if constexpr (std::is_integral_v<T>) {
            const std::size_t i = index_arg(r.pos[1]);
            T now{};
            if (act == "add") now = b.add(i, parse_value<T>(r.pos[2], "DELTA", tname, true));
            else if (act == "incr") now = b.incr(i);
            else now = b.decr(i);
            out << format_value(now) << "\n";
        }
    }
}

} // namespace

int run_buffer(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("escape", "get of a str_buffer: C-escaped values, one per line");
    const parsed_args p = parse_args(a, opts);
    if (p.help) {
        out << buffer_help << "\n" << opts;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("buffer: expected an action (get, set, fill, add, incr, decr, cas)");
    request r;
    r.action = p.positional[0];
    r.pos.assign(p.positional.begin() + 1, p.positional.end());
    r.escape = p.vm.count("escape") > 0;
    const std::size_t n = r.pos.size();
    const std::string& act = r.action;
    bool ok = false;
    if (act == "get") ok = n == 2 || n == 3;
    else if (act == "set") ok = n >= 2;
    else if (act == "fill") ok = n == 2;
    else if (act == "add") ok = n == 3;
    else if (act == "incr" || act == "decr") ok = n == 2;
    else if (act == "cas") ok = n == 4;
    else throw usage_error("buffer: unknown action '" + act + "' (get, set, fill, add, incr, decr or cas)");
    if (!ok) throw usage_error("buffer " + act + ": wrong number of arguments");
    if (r.escape && act != "get") throw usage_error("buffer " + act + ": --escape applies to get only");
    // Indexes and counts are checked before anything is opened.
    if (act != "fill") index_arg(r.pos[1]);
    if (act == "get" && n == 3) parse_unsigned(r.pos[2], "COUNT");

    const segment_info info = probe_segment(segment_path(r.pos[0]));
    require_kind(info, shmkit::structure_kind::buffer);
    int status = exit_ok;
    if (info.type == shmkit::element_type::bytes) {
        str_action(info, r, out, status);
    } else {
        visit_numeric(info.type, [&](auto tag) {
            using T = typename decltype(tag)::type;
            numeric_action<T>(info, r, out, err, status);
        });
    }
    return status;
}

static const registrar reg{
    {"buffer", "get, set, fill, add, incr, decr, cas elements of a buffer or str_buffer", run_buffer}};

} // namespace shmkit_tool
