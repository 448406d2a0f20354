// shmkit recover TARGET...: attaches to each segment and clears what dead
// processes left: their attach entries (and read locks), the locks they
// held (taken over and released), a pool's slots they owned, and a
// kv_store's or share's repair (through their own locking, which repairs).
#include "command.hpp"
#include "data_common.hpp"
#include "parse.hpp"
#include "target.hpp"

#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/raw_pool.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>
#include <shmkit/str_pool.hpp>

#include <boost/program_options.hpp>

#include <chrono>
#include <iostream>
#include <set>
#include <sstream>

#include <sys/stat.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;
using namespace shmkit;

const char* const recover_help =
    "usage: shmkit recover TARGET... [--wait S]\n\n"
    "Attaches to each segment and recovers what dead processes left there:\n"
    "  - their attach-table entries are freed (with any read locks they held);\n"
    "  - each rwlock or mutex held by a dead process is taken over and released\n"
    "    (a kv_store's or share's lock through the structure, which repairs what\n"
    "    the dead writer left half-done);\n"
    "  - a pool's slots owned by dead processes are freed.\n"
    "Prints what was recovered, one line per segment (`nothing to recover` if\n"
    "nothing was). A lock held by a live process is left alone (and reported).\n\n"
    "--wait S: how long to wait for each lock (default 5 seconds).\n\n"
    "Exit status: 0 done (also when nothing was needed), 1 a segment could not\n"
    "be opened or recovered, 2 usage error.\n\n"
    "TARGET: " SHMKIT_TOOL_TARGET_HELP;

std::string plural(std::uint64_t n, const char* one, const char* many)
{
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string holder_text(const lock_report& l, const char* role)
{
    return std::string("from dead ") + role + (l.holder_pid ? " pid " + std::to_string(l.holder_pid) : std::string());
}

/// Frees the slots of dead owners, opening the pool with its own type.
std::size_t recover_pool(const segment_report& r)
{
    pool_options o;
    o.auto_recover = false;
    if (r.elem_type == element_type::bytes) return raw_pool(open_only, r.path, o).recover_stale();
    if (r.elem_type == element_type::strings) return str_pool(open_only, r.path, o).recover_stale();
    std::size_t n = 0;
    visit_numeric(r.elem_type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        n = pool<T>(open_only, r.path, o).recover_stale();
    });
    return n;
}

/// The kv_store name of a root in /dev/shm, or throws.
std::string kv_store_name(const segment_report& r)
{
    if (r.name.empty() && r.path.rfind("/dev/shm/", 0) != 0)
        throw std::runtime_error("a kv_store outside /dev/shm cannot be opened by name to repair it");
    return r.name.empty() ? "/" + r.path.substr(9) : r.name;
}

/// Whether `path` still names the file `fd` has open. kv_store and share
/// open by name or key, and would open (kv_store: create) whatever is there
/// now: a target removed or replaced since it was inspected is left alone.
/// (The check and the open are two steps; a replacement between them is
/// not seen.)
bool still_named(int fd, const std::string& path)
{
    struct stat open_file, named;
    return ::fstat(fd, &open_file) == 0 && ::stat(path.c_str(), &named) == 0 && open_file.st_dev == named.st_dev &&
           open_file.st_ino == named.st_ino;
}

int recover_one(const target& t, std::chrono::milliseconds wait, std::ostream& out, std::ostream& err)
{
    const segment_report before = inspect_target(t);
    const std::string label = printable(t.text);
    std::vector<std::string> done, notes;
    bool failed = false;

    segment_expectation expect;
    expect.kind = before.kind;
    segment seg = segment::file(open_only, before.path, expect);

    // 1. Entries of dead processes (and their read locks).
    std::vector<std::uint32_t> dead_pids;
    std::set<std::uint32_t> dead_entries;
    for (const auto& e : before.entries)
        if (e.pid != 0 && !e.alive()) dead_pids.push_back(e.pid), dead_entries.insert(e.index);
    const std::uint32_t reclaimed = seg.reclaim_dead();

    // 2. Locks of dead holders.
    const bool kv_root = before.kv && !before.kv->is_table;
    const bool share_root = before.share && !before.share->is_value_segment;
    for (const auto& l : before.locks) {
        if (l.holder_token == 0) continue;
        const std::string name = std::string(to_string(l.type)) + " " + std::to_string(l.index);
        if (!l.held_by_dead()) {
            notes.push_back(name + " is held by live pid " + std::to_string(l.holder_pid) + ": left alone");
            continue;
        }
        const bool structural = l.type == lock_type::rwlock && l.index == 0 && (kv_root || share_root);
        if (structural) continue; // below, through the structure
        bool got = false, recovered = false;
        if (l.type == lock_type::rwlock) {
            sync::rwlock rw = seg.rwlock(l.index);
            if ((got = rw.try_lock_for(wait))) {
                recovered = rw.recovered();
                rw.unlock();
            }
        } else {
            sync::mutex m = seg.mutex(l.index);
            if ((got = m.try_lock_for(wait))) {
                recovered = m.owner_died();
                m.unlock();
            }
        }
        if (!got) notes.push_back(name + " is still held (a live process took it meanwhile?): not recovered");
        else done.push_back((recovered ? "recovered " : "released ") + name + " " +
                            holder_text(l, l.type == lock_type::rwlock ? "writer" : "owner"));
    }

    // 3. The structure's own recovery.
    if (before.pool) {
        const std::size_t n = recover_pool(before);
        if (n) done.push_back("freed " + plural(n, "pool slot", "pool slots"));
    }
    if (kv_root && ((!before.locks.empty() && before.locks[0].held_by_dead()) || before.kv->repair_needed)) {
        const std::uint64_t repairs = before.kv->repairs;
        const std::string name = kv_store_name(before);
        if (!still_named(seg.fd(), "/dev/shm" + name))
            throw std::runtime_error("the kv_store was removed or replaced since it was inspected: not repaired");
        kv_store kv(name);
        std::string why;
        const bool sound = kv.check(&why); // takes the writers' lock: repairs what a dead writer left
        const std::uint64_t now = kv.stats().repairs;
        const bool dead_writer = !before.locks.empty() && before.locks[0].held_by_dead();
        done.push_back((dead_writer ? "recovered the kv_store's writers' lock " + holder_text(before.locks[0], "writer")
                                    : std::string("finished a repair a writer had left owed")) +
                       (now > repairs ? ", repaired the store" : ""));
        if (!sound) {
            notes.push_back("the kv_store fails its check after the repair: " + why);
            failed = true;
        }
    }
    if (share_root && !before.locks.empty() && before.locks[0].held_by_dead()) {
        const key_t key = static_cast<key_t>(before.share->key);
        if (!still_named(seg.fd(), "/dev/shm/" + share::native_name(key)))
            throw std::runtime_error("the share of key " + std::to_string(before.share->key) +
                                     " is not this file (a copy, or removed or replaced since it was inspected): "
                                     "not recovered");
        share s(key, share_options{});
        if (s.try_lock_for(wait)) {
            s.unlock(); // the exclusive lock repairs what a dead writer left
            done.push_back("recovered the share's lock " + holder_text(before.locks[0], "writer"));
        } else {
            notes.push_back("the share's lock is still held: not recovered");
        }
    }

    // What is left.
    const segment_report after = inspect(before.path);
    std::vector<std::uint32_t> gone;
    for (std::size_t k = 0; k < dead_pids.size(); ++k) {
        bool still = false;
        for (const auto& e : after.entries) still |= e.pid == dead_pids[k] && !e.alive();
        if (!still) gone.push_back(dead_pids[k]);
    }
    if (!gone.empty() || reclaimed) {
        std::ostringstream s;
        const std::uint64_t n = std::max<std::uint64_t>(gone.size(), reclaimed);
        s << "reclaimed " << plural(n, "attach entry", "attach entries");
        if (!gone.empty()) {
            s << " (pid";
            for (std::size_t k = 0; k < gone.size(); ++k) s << (k ? ", " : " ") << gone[k];
            s << ")";
        }
        done.insert(done.begin(), s.str());
    }
    for (const auto& l : after.locks)
        if (l.held_by_dead()) {
            notes.push_back(std::string(to_string(l.type)) + " " + std::to_string(l.index) +
                            " is still held by a dead holder");
            failed = true;
        }
    if (after.pool && after.pool->dead_owned) {
        notes.push_back(plural(after.pool->dead_owned, "pool slot is", "pool slots are") + " still held by dead owners");
        failed = true;
    }

    if (done.empty()) out << label << ": nothing to recover\n";
    else {
        out << label << ": ";
        for (std::size_t k = 0; k < done.size(); ++k) out << (k ? ", " : "") << done[k];
        out << "\n";
    }
    for (const auto& n : notes) (failed ? err : out) << label << ": " << printable(n) << "\n";
    return failed ? exit_problem : exit_ok;
}

int run_recover(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("wait", po::value<double>()->default_value(5.0), "seconds to wait for each lock");
    const parsed_args p = parse_command_args(a, opts, "target", unlimited);
    if (p.help) {
        out << recover_help;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("recover: no TARGET");
    const double w = p.vm["wait"].as<double>();
    if (!(w >= 0 && w <= 86400)) throw usage_error("recover: --wait must be 0 to 86400 seconds");
    const auto wait = std::chrono::milliseconds(static_cast<long long>(w * 1000));
    const std::vector<target> targets = resolve_targets(p.positional);

    int status = exit_ok;
    for (const target& t : targets) {
        try {
            if (recover_one(t, wait, out, err) != exit_ok) status = exit_problem;
        } catch (const std::exception& e) {
            const std::string what = e.what();
            err << labelled(t.text, what) << "\n";
            status = exit_problem;
        }
    }
    return status;
}

} // namespace

static const registrar reg{{"recover", "reclaim dead processes' entries, locks and pool slots", run_recover}};

} // namespace shmkit_tool
