// shmkit check TARGET...: a structural validation of each segment that
// changes nothing (shmkit::check_segment: the read-only mapping of
// inspect(), no attach, no lock, no repair).
#include "command.hpp"
#include "parse.hpp"
#include "target.hpp"

#include <shmkit/error.hpp>

#include <boost/program_options.hpp>

#include <iostream>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const check_help =
    "usage: shmkit check TARGET...\n\n"
    "Validates each segment read-only: its header, attach table, lock words, and\n"
    "the structure it holds (pool owner words, kv_store root and table cells and\n"
    "counters, share root and value segment). Nothing is attached, locked,\n"
    "recovered or written.\n\n"
    "Prints `TARGET: ok` for a sound segment, followed by `TARGET: ok, needs\n"
    "recover: WHAT` for each dead holder found (dead attach entries, locks or\n"
    "pool slots of dead processes: `shmkit recover` clears them), or one line\n"
    "`TARGET: PROBLEM` for each problem found.\n\n"
    "Exit status: 0 every segment is sound (dead holders included), 1 a problem\n"
    "was found or a segment could not be read, 2 usage error.\n\n"
    "TARGET: " SHMKIT_TOOL_TARGET_HELP;

shmkit::check_report check_target(const target& t)
{
    if (t.how == target::form::path) return shmkit::check_segment(t.text);
    try {
        return shmkit::check_segment(shmkit::posix_name, t.name);
    } catch (const shmkit::error& e) {
        if (t.how == target::form::share_key && e.code() == std::errc::no_such_file_or_directory)
            inspect_target(t); // throws the "no native share with this key" error
        throw;
    }
}

int run_check(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text");
    const parsed_args p = parse_command_args(a, opts, "target", unlimited);
    if (p.help) {
        out << check_help;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("check: no TARGET");
    const std::vector<target> targets = resolve_targets(p.positional);

    int status = exit_ok;
    for (const target& t : targets) {
        const std::string label = printable(t.text);
        try {
            const shmkit::check_report c = check_target(t);
            for (const auto& p : c.corruption) out << label << ": " << printable(p) << "\n";
            if (c.ok()) out << label << ": ok\n";
            else status = exit_problem;
            for (const auto& n : c.needs_recover)
                out << label << (c.ok() ? ": ok, needs recover: " : ": needs recover: ") << printable(n) << "\n";
        } catch (const shmkit::error& e) {
            // A header that fails validation is a finding (stdout); a
            // system error (missing, unreadable) a failure (stderr).
            (e.code().category() == std::generic_category() ? err : out) << labelled(t.text, e.what()) << "\n";
            status = exit_problem;
        }
    }
    return status;
}

} // namespace

static const registrar reg{{"check", "validate segments' structure, read-only", run_check}};

} // namespace shmkit_tool
