// shmkit: list, inspect, check, recover and remove shmkit segments; small
// data commands for scripts; the demo; the benchmarks. See `shmkit --help`
// and doc/shmkit/tool.adoc.
#include "command.hpp"
#include "target.hpp"

#include <shmkit/config.hpp>
#include <shmkit/error.hpp>

#include <boost/program_options.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <string>

namespace shmkit_tool {

namespace {

std::vector<command>& registry()
{
    static std::vector<command> all;
    return all;
}

} // namespace

registrar::registrar(const command& c)
{
    auto& all = registry();
    auto at = all.begin();
    while (at != all.end() && std::string(at->name) < c.name) ++at;
    all.insert(at, c);
}

const std::vector<command>& commands() { return registry(); }

namespace {

void print_usage(std::ostream& os)
{
    os << "usage: shmkit [--help] [--version] COMMAND [ARGS...]\n\n"
          "Inspect and operate shmkit shared-memory segments (buffer, pool, kv_store, share).\n\n"
          "commands:\n";
    for (const command& c : commands()) os << "  " << std::left << std::setw(10) << c.name << c.summary << "\n";
    os << "\n`shmkit COMMAND --help` describes a command.\n\n"
          "exit status: 0 ok, 1 a problem was found or an operation failed, 2 usage error\n";
}

const command* find(const std::string& name)
{
    for (const command& c : commands())
        if (name == c.name) return &c;
    return nullptr;
}

int dispatch(int argc, char** argv)
{
    namespace po = boost::program_options;
    // Global options come before the command; everything after the
    // command's name is its own (options included), verbatim.
    int k = 1;
    while (k < argc && argv[k][0] == '-') ++k;
    po::options_description global("options");
    global.add_options()("help,h", "this text")("version", "print the version");
    po::variables_map vm;
    po::store(po::command_line_parser(std::vector<std::string>(argv + 1, argv + k)).options(global).run(), vm);
    if (vm.count("version")) {
        std::cout << "shmkit " << SHMKIT_VERSION_STRING << "\n";
        return exit_ok;
    }
    if (k == argc) {
        if (vm.count("help")) {
            print_usage(std::cout);
            return exit_ok;
        }
        print_usage(std::cerr);
        return exit_usage;
    }
    const std::string name = argv[k];
    const command* c = find(name);
    if (!c) throw usage_error("unknown command '" + name + "'");
    args rest(argv + k + 1, argv + argc);
    if (vm.count("help")) rest.insert(rest.begin(), "--help");
    return c->run(rest, std::cout, std::cerr);
}

/// Flushes stdout and says whether everything written to it arrived: the
/// commands' text sits in stdio's buffer (std::cout is synced with it), so a
/// full disk (ENOSPC, /dev/full) shows only here, and must not exit 0.
bool output_written()
{
    std::cout.flush();
    return std::cout && std::fflush(stdout) == 0 && !std::ferror(stdout);
}

} // namespace
} // namespace shmkit_tool

int main(int argc, char** argv)
{
    using namespace shmkit_tool;
    // Messages can carry names from the command line or from /dev/shm:
    // printable() keeps them from being terminal escape sequences.
    int status = exit_problem;
    try {
        status = dispatch(argc, argv);
    } catch (const usage_error& e) {
        // (before std::exception: a usage error is exit status 2)
        std::cerr << "shmkit: " << printable(e.what()) << " (see shmkit --help)\n";
        status = exit_usage;
    } catch (const boost::program_options::error& e) {
        std::cerr << "shmkit: " << printable(e.what()) << " (see shmkit --help)\n";
        status = exit_usage;
    } catch (const std::exception& e) {
        // The library's messages name themselves ("shmkit: ..."); others get the prefix.
        const std::string what = printable(e.what());
        std::cerr << (what.rfind("shmkit", 0) == 0 ? "" : "shmkit: ") << what << "\n";
        status = exit_problem;
    }
    if (!output_written()) {
        const int e = errno;
        std::cerr << "shmkit: writing the output failed: " << std::strerror(e) << "\n";
        if (status == exit_ok) status = exit_problem;
    }
    return status;
}
