// Parsing a subcommand's command line with Boost.Program_options, the part
// that every subcommand does the same way: its visible options (those
// --help lists) and its positional arguments (operands: TARGETs, DIRs).
#ifndef SHMKIT_TOOLS_PARSE_HPP
#define SHMKIT_TOOLS_PARSE_HPP

#include "command.hpp"

#include <boost/program_options.hpp>

#include <string>
#include <vector>

namespace shmkit_tool {

/// A subcommand's command line, parsed (by parse_command_args(), or by
/// parse_args() of data_common.hpp for the data commands' conventions).
struct parsed_args {
    boost::program_options::variables_map vm; ///< the options (notified)
    std::vector<std::string> positional;      ///< the operands, in order
    bool help = false;                        ///< the option "help" was given
};

/// `max_operands` of parse_command_args(): any number of operands.
inline constexpr int unlimited = -1;

/// Parses `a` with the options `visible` and up to `max_operands` operands
/// (`unlimited`: any number) named `operand` (a hidden option, so that
/// --help shows `visible` alone); without an operand, a stray argument is
/// an error. Boost's default command-line style. Throws
/// boost::program_options errors (exit 2 in main()).
parsed_args parse_command_args(const args& a, const boost::program_options::options_description& visible,
                               const char* operand = nullptr, int max_operands = 0);

} // namespace shmkit_tool

#endif
