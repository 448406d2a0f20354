// shmkit ls [DIR...] [--json]: every shmkit segment in /dev/shm (or the
// given directories), one line each, read-only.
#include "command.hpp"
#include "parse.hpp"
#include "target.hpp"

#include <shmkit/error.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include <dirent.h>
#include <sys/stat.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;
using shmkit::segment_report;

const char* const shm_dir = "/dev/shm";

const char* const ls_help =
    "usage: shmkit ls [DIR...] [--json]\n\n"
    "Lists the shmkit segments in /dev/shm (default) or in each DIR, read-only: name,\n"
    "kind, element type, capacity, bytes of the file and bytes in memory, attached\n"
    "processes alive and dead, locks held and lock recoveries. Files that are not\n"
    "shmkit segments are skipped silently; files that cannot be read, and shmkit\n"
    "files that fail validation, are reported on stderr and skipped.\n\n"
    "exit status: 0 every DIR was read (even if some files were reported), 1 a DIR\n"
    "could not be read, 2 usage error.\n";

/// One listed segment.
struct listed {
    std::string shown; ///< "/NAME" in /dev/shm, else the path
    segment_report report;
};

std::string kind_label(const segment_report& r)
{
    return r.role == "table" || r.role == "value" ? r.kind_name + "/" + r.role : r.kind_name;
}

/// Whether `dir` is /dev/shm itself, so its files are shown as POSIX names.
bool is_shm_dir(const std::string& dir)
{
    struct stat a, b;
    return ::stat(dir.c_str(), &a) == 0 && ::stat(shm_dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/// Whether a failed inspection is a file that is not a segment (silently
/// skipped) rather than one worth a word on stderr.
bool skip_silently(const shmkit::error& e)
{
    // Gone since readdir, or a symbolic link / non-regular file: not a segment here.
    return e.code() == shmkit::errc::not_a_segment || e.code() == std::errc::no_such_file_or_directory ||
           e.code() == std::errc::too_many_symbolic_link_levels;
}

/// Names of the regular files (and entries of unknown type) in `dir`,
/// sorted. False (errno set) if it cannot be read.
bool file_names(const std::string& dir, std::vector<std::string>& names)
{
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) return false;
    errno = 0;
    while (const struct dirent* e = ::readdir(d.get())) {
        if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) names.emplace_back(e->d_name);
        errno = 0;
    }
    if (errno != 0) return false;
    std::sort(names.begin(), names.end());
    return true;
}

/// Inspects every file of `dir`; false if the directory cannot be read.
bool list_dir(const std::string& dir, std::vector<listed>& found, std::ostream& err)
{
    std::vector<std::string> names;
    if (!file_names(dir, names)) {
        err << "shmkit: ls: " << printable(dir) << ": cannot read the directory: " << std::strerror(errno) << "\n";
        return false;
    }
    const bool shm = is_shm_dir(dir);
    std::string prefix = dir;
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    if (prefix != "/") prefix += '/';
    for (const std::string& n : names) {
        const std::string path = prefix + n;
        try {
            segment_report r = shmkit::inspect(path);
            if (shm) r.name = "/" + n;
            found.push_back({shm ? "/" + n : path, std::move(r)});
        } catch (const shmkit::error& e) {
            if (!skip_silently(e)) err << printable(e.what()) << " (not listed)\n";
        }
    }
    return true;
}

void print_table(std::ostream& out, const std::vector<listed>& found)
{
    const std::vector<std::string> head = {"NAME",   "KIND",  "TYPE", "CAPACITY", "SIZE",
                                           "MEMORY", "ALIVE", "DEAD", "HELD",     "RECOVERIES", "LAST RECOVERY"};
    std::vector<std::vector<std::string>> rows{head};
    for (const listed& l : found) {
        const segment_report& r = l.report;
        rows.push_back({printable(l.shown), kind_label(r), r.elem_type_name, std::to_string(r.capacity),
                        std::to_string(r.file_size), std::to_string(r.memory_size), std::to_string(r.attached_alive()),
                        std::to_string(r.attached_dead()), std::to_string(r.locks_held()),
                        std::to_string(r.lock_recoveries()),
                        r.last_recovery_ns() ? format_time(r.last_recovery_ns()) : std::string("-")});
    }
    std::vector<std::size_t> width(head.size(), 0);
    for (const auto& row : rows)
        for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            const bool last = c + 1 == row.size();
            // Names and words left-aligned, numbers right-aligned.
            const std::string pad(width[c] - row[c].size(), ' ');
            line += c < 3 ? row[c] + (last ? "" : pad) : pad + row[c];
            if (!last) line += "  ";
        }
        out << line << "\n";
    }
}

void print_json(std::ostream& out, const std::vector<listed>& found)
{
    json_writer j(out);
    j.begin_array();
    for (const listed& l : found) {
        const segment_report& r = l.report;
        j.begin_object().field("name", l.shown).field("path", r.path).field("kind", r.kind_name);
        j.field("role", r.role).field("element_type", r.elem_type_name).field("elem_size", r.elem_size);
        j.field("capacity", r.capacity).field("file_size", r.file_size).field("memory_size", r.memory_size);
        j.field("attached_alive", r.attached_alive()).field("attached_dead", r.attached_dead());
        j.field("locks_held", r.locks_held()).field("locks_dirty", r.locks_dirty());
        j.field("lock_recoveries", r.lock_recoveries());
        if (const std::uint64_t last = r.last_recovery_ns()) j.field("last_recovery", format_time(last));
        else j.key("last_recovery").null();
        j.end_object();
    }
    j.end_array();
    out << "\n";
}

} // namespace

int run_ls(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("json", "machine-readable output: a JSON array of objects");
    const parsed_args p = parse_command_args(a, opts, "dir", unlimited);
    if (p.help) {
        out << ls_help << "\n" << opts;
        return exit_ok;
    }
    const std::vector<std::string> dirs = p.positional.empty() ? std::vector<std::string>{shm_dir} : p.positional;
    std::vector<listed> found;
    bool all_read = true;
    for (const std::string& d : dirs) {
        if (d.empty()) throw usage_error("ls: empty directory name");
        all_read &= list_dir(d, found, err);
    }
    if (p.vm.count("json")) print_json(out, found);
    else print_table(out, found);
    out.flush();
    return all_read && out ? exit_ok : exit_problem;
}

static const registrar reg{{"ls", "list the shmkit segments in /dev/shm or DIRs, read-only (--json)", run_ls}};

} // namespace shmkit_tool
