// The shmkit tool's subcommands: one function each, in a file of its own
// (cmd_<name>.cpp), registered in main.cpp.
//
// A subcommand receives its arguments (without the subcommand's name),
// parses them with Boost.Program_options (its own --help included), writes
// results on `out` and diagnostics on `err`, and returns the tool's exit
// status: 0 ok, 1 a problem found (a check failed, an error from the
// system or the library), 2 a usage error (throw usage_error for that).
#ifndef SHMKIT_TOOLS_COMMAND_HPP
#define SHMKIT_TOOLS_COMMAND_HPP

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

namespace shmkit_tool {

/// Exit statuses, as documented in `shmkit --help`.
enum exit_status : int { exit_ok = 0, exit_problem = 1, exit_usage = 2 };

/// A bad command line: main() prints it with a pointer to --help and exits 2.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using args = std::vector<std::string>;

/// What main() needs to know of a subcommand.
struct command {
    const char* name;
    const char* summary; ///< one line for `shmkit --help`
    int (*run)(const args& a, std::ostream& out, std::ostream& err);
};

/// Every subcommand, sorted by name (main.cpp).
const std::vector<command>& commands();

/// Registers a subcommand; each cmd_<name>.cpp has one at namespace scope:
///     static const shmkit_tool::registrar reg{{"name", "summary", run_name}};
struct registrar {
    explicit registrar(const command& c);
};

} // namespace shmkit_tool

#endif
