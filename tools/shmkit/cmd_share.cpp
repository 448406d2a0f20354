// shmkit share fetch|store|version|rm KEY: a share's value on stdout / from
// stdin, binary-safe, for scripts.
#include "command.hpp"
#include "data_common.hpp"
#include "target.hpp"

#include <shmkit/error.hpp>
#include <shmkit/share.hpp>

#include <boost/program_options.hpp>

#include <iostream>
#include <iterator>
#include <sstream>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const share_help =
    "usage: shmkit share fetch KEY [options]    write the value on stdout (raw bytes)\n"
    "       shmkit share store KEY [options]    replace the value with stdin (raw bytes)\n"
    "       shmkit share version KEY [options]  print the version (1 + stores)\n"
    "       shmkit share rm KEY [options]       remove the share\n\n"
    "KEY: a number (decimal, or 0x... hexadecimal) or a string of at most 4 bytes,\n"
    "mapped to an IPC key as IPC::ShareLite does.\n";

shmkit::share_backend parse_backend(const std::string& s)
{
    if (s == "native") return shmkit::share_backend::native;
    if (s == "sharelite") return shmkit::share_backend::sharelite;
    throw usage_error("--backend must be native or sharelite, not '" + s + "'");
}

} // namespace

int run_share(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    std::string backend = "native";
    unsigned mode = 0600;
    opts.add_options()("help,h", "this text")("backend", po::value(&backend),
                                               "native (default) or sharelite (IPC::ShareLite's System V objects)")(
        "create", "store: create the share if it does not exist")(
        "mode", po::value<std::string>(), "store --create: permission bits, octal (default 600)");
    po::options_description hidden;
    hidden.add_options()("action", po::value<std::string>())("key", po::value<std::string>());
    po::options_description all;
    all.add(opts).add(hidden);
    po::positional_options_description pos;
    pos.add("action", 1).add("key", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(a).options(all).positional(pos).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        out << share_help << "\n" << opts;
        return exit_ok;
    }
    if (!vm.count("action") || !vm.count("key")) throw usage_error("share: expected an action and a KEY");
    if (vm.count("mode")) mode = parse_mode(vm["mode"].as<std::string>());
    const std::string action = vm["action"].as<std::string>();
    const key_t key = parse_share_key(vm["key"].as<std::string>());
    shmkit::share_options o;
    o.backend = parse_backend(backend);
    o.mode = static_cast<mode_t>(mode);
    if (action == "rm") {
        if (shmkit::share::remove(key, o.backend)) return exit_ok;
        err << "shmkit: share rm: no share with key " << vm["key"].as<std::string>() << "\n";
        return exit_problem;
    }
    if (action == "store") {
        o.create = vm.count("create") > 0;
        const std::string value((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
        shmkit::share s(key, o);
        s.store(value);
        return exit_ok;
    }
    if (action == "fetch" || action == "version") {
        const shmkit::share s(key, o);
        if (action == "version") {
            out << s.version() << "\n";
        } else {
            const std::string v = s.fetch();
            out.write(v.data(), static_cast<std::streamsize>(v.size()));
        }
        return out ? exit_ok : exit_problem;
    }
    throw usage_error("share: unknown action '" + action + "' (fetch, store, version or rm)");
}

static const registrar reg{{"share", "fetch or store a share's value (stdin/stdout, binary-safe), version, rm", run_share}};

} // namespace shmkit_tool
