// shmkit rm TARGET... [--force]: removes segments (a kv_store with its
// table, a share with its value segment), refusing those that live
// processes are attached to unless --force.
#include "command.hpp"
#include "parse.hpp"
#include "target.hpp"

#include <shmkit/error.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/share.hpp>

#include <boost/program_options.hpp>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <sstream>

#include <unistd.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;
using namespace shmkit;

const char* const rm_help =
    "usage: shmkit rm TARGET... [--force]\n\n"
    "Removes each segment (its name: processes attached keep what they mapped):\n"
    "  - a kv_store root removes the store (kv_store::remove: the root and its\n"
    "    current table; the table a root elsewhere names is removed only if it\n"
    "    is one);\n"
    "  - a share (share:KEY or its root) removes the share with its value\n"
    "    segment (share::remove);\n"
    "  - any other segment is unlinked.\n"
    "Only shmkit segments are removed (other files are refused). A segment that\n"
    "live processes are attached to is refused, naming their PIDs, unless\n"
    "--force is given.\n\n"
    "Exit status: 0 every TARGET was removed, 1 one could not be (missing, not a\n"
    "segment, in use, an error), 2 usage error.\n\n"
    "TARGET: " SHMKIT_TOOL_TARGET_HELP;

void unlink_file(const std::string& path)
{
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw std::runtime_error(path + ": cannot remove: " + std::strerror(errno));
}

/// Unlinks the kv table or share value segment `path` that a root names,
/// if it is one: a damaged or forged root can name any file of that name,
/// and rm removes only shmkit segments. Returns a note when it is left.
std::string unlink_part(const std::string& path, bool kv_table)
{
    try {
        const segment_report p = inspect(path);
        if (kv_table ? (p.kv && p.kv->is_table) : (p.share && p.share->is_value_segment)) {
            unlink_file(path);
            return "";
        }
    } catch (const shmkit::error& e) {
        if (e.code() == std::errc::no_such_file_or_directory) return "";
    }
    return std::string(" (") + path + " is not " + (kv_table ? "a kv_store table" : "a share value segment") + ": left)";
}

bool in_dev_shm(const segment_report& r) { return r.path.rfind("/dev/shm/", 0) == 0 && r.path.find('/', 9) == std::string::npos; }

/// Whether a live process holds lock 0 (the kv_store's or share's lock).
bool lock0_held_alive(const segment_report& r)
{
    if (r.locks.empty()) return false;
    const lock_report& l = r.locks[0];
    return (l.holder_token != 0 && !l.held_by_dead()) || l.readers > l.dead_readers;
}

std::string remove_one(const target& t, bool force)
{
    const segment_report r = inspect_target(t);
    std::vector<std::uint32_t> live;
    for (const auto& e : r.entries)
        if (e.pid != 0 && e.alive()) live.push_back(e.pid);
    if (!live.empty() && !force) {
        std::ostringstream s;
        s << "in use by " << live.size() << (live.size() == 1 ? " live process" : " live processes") << " (pid";
        for (std::size_t k = 0; k < live.size(); ++k) s << (k ? ", " : " ") << live[k];
        s << "); not removed (--force removes it anyway)";
        throw std::runtime_error(s.str());
    }
    std::string what = "removed", left;
    if (r.kv && !r.kv->is_table) {
        if (in_dev_shm(r) && !lock0_held_alive(r)) {
            kv_store::remove(r.path.substr(9));
        } else {
            unlink_file(r.path);
            if (!r.kv->table_path.empty()) left = unlink_part(r.kv->table_path, true);
        }
        if (!r.kv->table_path.empty() && left.empty()) what += " (with table " + std::to_string(r.kv->generation) + ")";
    } else if (r.share && !r.share->is_value_segment) {
        const std::string native = "/dev/shm/" + share::native_name(static_cast<key_t>(r.share->key));
        if (r.path == native && !lock0_held_alive(r)) {
            share::remove(static_cast<key_t>(r.share->key));
        } else {
            unlink_file(r.path);
            if (!r.share->value_path.empty()) left = unlink_part(r.share->value_path, false);
        }
        if (!r.share->value_inline && left.empty())
            what += " (with value segment " + std::to_string(r.share->value_generation) + ")";
    } else {
        if (::unlink(r.path.c_str()) != 0) throw std::runtime_error(std::string("cannot remove: ") + std::strerror(errno));
    }
    what += left;
    if (!live.empty()) {
        std::ostringstream s;
        s << " (forced; still attached: pid";
        for (std::size_t k = 0; k < live.size(); ++k) s << (k ? ", " : " ") << live[k];
        s << ")";
        what += s.str();
    }
    return what;
}

int run_rm(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("force", "remove segments that live processes are attached to");
    const parsed_args p = parse_command_args(a, opts, "target", unlimited);
    if (p.help) {
        out << rm_help;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("rm: no TARGET");
    const bool force = p.vm.count("force") != 0;
    const std::vector<target> targets = resolve_targets(p.positional);

    int status = exit_ok;
    for (const target& t : targets) {
        const std::string label = printable(t.text);
        try {
            out << label << ": " << remove_one(t, force) << "\n";
        } catch (const std::exception& e) {
            err << labelled(t.text, e.what()) << "\n";
            status = exit_problem;
        }
    }
    return status;
}

} // namespace

static const registrar reg{{"rm", "remove segments (a kv_store with its tables, a share with its values)", run_rm}};

} // namespace shmkit_tool
