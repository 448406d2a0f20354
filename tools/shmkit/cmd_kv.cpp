// shmkit kv get|put|erase|dump|check: a kv_store's keys and values,
// binary-safe, for scripts.
#include "command.hpp"
#include "data_common.hpp"

#include <shmkit/error.hpp>
#include <shmkit/kv_store.hpp>

#include <boost/program_options.hpp>

#include <cerrno>
#include <iostream>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const kv_help =
    "usage: shmkit kv get NAME KEY            write the value on stdout, raw; exit 1 if absent\n"
    "       shmkit kv put NAME KEY [VALUE]    store VALUE, or standard input (binary-safe)\n"
    "       shmkit kv erase NAME KEY          remove KEY; exit 1 if absent\n"
    "       shmkit kv dump NAME [--json]      every key and value\n"
    "       shmkit kv check NAME              validate the store; exit 1 on a problem\n\n"
    "NAME: a kv_store's name, NAME or /NAME (the POSIX object /dev/shm/NAME).\n"
    "A store that does not exist is an error (exit 1); put --create creates it.\n\n"
    "dump: one line per key, sorted by key bytes: KEY<TAB>VALUE, both C-escaped:\n"
    "\\\\ for a backslash, \\t \\n \\r, and \\xHH (two hex digits) for every other\n"
    "byte outside printable ASCII (0x20-0x7e). --json: one JSON object; each\n"
    "string holds one code point U+0000-U+00FF per byte (encode it as Latin-1 to\n"
    "get the bytes back). Both are one consistent snapshot of the store.\n";

/// Opens an existing store (kv_store alone would create a missing one).
shmkit::kv_store open_existing(const std::string& name, const shmkit::kv_options& o = {})
{
    if (!kv_exists(name)) shmkit::detail::throw_errno(ENOENT, name, "no such kv_store");
    return shmkit::kv_store(name, o);
}

void dump(const shmkit::kv_store& kv, bool json, std::ostream& out)
{
    const std::map<std::string, std::string> all = kv.get_all();
    std::string text;
    if (json) {
        text = "{";
        bool first = true;
        for (const auto& [k, v] : all) {
            text += first ? "\n  " : ",\n  ";
            text += json_string(k) + ": " + json_string(v);
            first = false;
        }
        text += all.empty() ? "}\n" : "\n}\n";
    } else {
        for (const auto& [k, v] : all) text += c_escape(k) + "\t" + c_escape(v) + "\n";
    }
    out << text;
}

} // namespace

int run_kv(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("create", "put: create the store if it does not exist")(
        "mode", po::value<std::string>()->value_name("OCTAL"), "put --create: permission bits, octal (default 600)")(
        "json", "dump: a JSON object");
    const parsed_args p = parse_args(a, opts);
    if (p.help) {
        out << kv_help << "\n" << opts;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("kv: expected an action (get, put, erase, dump, check)");
    const std::string act = p.positional[0];
    const std::vector<std::string> pos(p.positional.begin() + 1, p.positional.end());
    const std::size_t n = pos.size();
    bool ok = false;
    if (act == "get" || act == "erase") ok = n == 2;
    else if (act == "put") ok = n == 2 || n == 3;
    else if (act == "dump" || act == "check") ok = n == 1;
    else throw usage_error("kv: unknown action '" + act + "' (get, put, erase, dump or check)");
    if (!ok) throw usage_error("kv " + act + ": wrong number of arguments");
    if ((p.vm.count("create") || p.vm.count("mode")) && act != "put")
        throw usage_error("kv " + act + ": --create and --mode apply to put only");
    if (p.vm.count("mode") && !p.vm.count("create")) throw usage_error("kv put: --mode needs --create");
    if (p.vm.count("json") && act != "dump") throw usage_error("kv " + act + ": --json applies to dump only");
    const std::string name = kv_name(pos[0]);

    if (act == "put") {
        shmkit::kv_options o;
        if (p.vm.count("mode")) o.mode = static_cast<mode_t>(parse_mode(p.vm["mode"].as<std::string>()));
        const std::string& key = pos[1];
        if (key.size() > shmkit::kv_store::max_key_size)
            throw usage_error("kv put: KEY is longer than " + std::to_string(shmkit::kv_store::max_key_size) + " bytes");
        // The value is read before the store is opened or created: a put
        // that cannot happen leaves nothing behind.
        const std::string value = n == 3 ? pos[2] : read_stdin();
        shmkit::kv_store kv = p.vm.count("create") ? shmkit::kv_store(name, o) : open_existing(name);
        kv.put(key, value);
        return exit_ok;
    }
    shmkit::kv_store kv = open_existing(name);
    if (act == "get") {
        std::string value;
        if (!kv.get(pos[1], value)) {
            err << "shmkit: kv get: " << name << ": no key '" << c_escape(pos[1]) << "'\n";
            return exit_problem;
        }
        write_bytes(out, value);
        return out ? exit_ok : exit_problem;
    }
    if (act == "erase") {
        if (!kv.erase(pos[1])) {
            err << "shmkit: kv erase: " << name << ": no key '" << c_escape(pos[1]) << "'\n";
            return exit_problem;
        }
        return exit_ok;
    }
    if (act == "dump") {
        dump(kv, p.vm.count("json") > 0, out);
        return out ? exit_ok : exit_problem;
    }
    // check
    std::string why;
    if (!kv.check(&why)) {
        err << "shmkit: kv check: " << name << ": " << why << "\n";
        return exit_problem;
    }
    const std::size_t size = kv.size();
    out << name << ": ok, " << size << (size == 1 ? " key\n" : " keys\n");
    return exit_ok;
}

static const registrar reg{{"kv", "get, put, erase, dump, check a kv_store (values raw, binary-safe)", run_kv}};

} // namespace shmkit_tool
