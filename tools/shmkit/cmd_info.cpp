// shmkit info TARGET [--json]: everything a read-only look at a segment
// finds (shmkit::inspect): header, attached processes and their liveness,
// locks, and a summary of the structure.
#include "command.hpp"
#include "parse.hpp"
#include "target.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;
using namespace shmkit;

const char* const info_help =
    "usage: shmkit info TARGET [--json]\n\n"
    "Shows a segment read-only: header, attached processes (alive or dead), locks\n"
    "(held, by whom, recoveries), and a summary of the structure it holds.\n"
    "Nothing in the segment is changed, nothing is attached or recovered.\n\n"
    "TARGET: " SHMKIT_TOOL_TARGET_HELP;

const char* yes_no(bool b) { return b ? "yes" : "no"; }

std::string readers_of(const attach_entry_report& e)
{
    std::string s;
    for (std::size_t i = 0; i < e.readers.size(); ++i)
        if (e.readers[i] != 0) s += (s.empty() ? "" : ",") + ("rw" + std::to_string(i)) + ":" + std::to_string(e.readers[i]);
    return s.empty() ? "-" : s;
}

void print_header(std::ostream& out, const segment_report& r)
{
    out << "segment:      " << printable(r.path);
    if (!r.name.empty()) out << " (POSIX name " << printable(r.name) << ")";
    out << "\nkind:         " << r.kind_name << (r.role.empty() ? "" : " " + r.role) << "\n"
        << "element type: " << r.elem_type_name << ", " << r.elem_size << " bytes\n"
        << "capacity:     " << r.capacity << "\n"
        << "size:         " << r.file_size << " bytes (file), " << r.memory_size << " bytes in memory; header: "
        << r.total_size << " bytes, payload " << r.data_size << " bytes\n"
        << "format:       version " << r.format_version << "\n"
        << "params:       " << r.params[0] << " " << r.params[1] << " " << r.params[2] << " " << r.params[3] << "\n"
        << "created:      " << format_time(r.created_ns) << "\n";
}

void print_attach(std::ostream& out, const segment_report& r)
{
    out << "attach table: capacity " << r.attach_capacity << ", high-water mark " << r.high_water << ", attaches "
        << r.attaches << ", reclaimed " << r.reclaimed << "\n"
        << "attached:     " << r.attached_alive() << " alive, " << r.attached_dead() << " dead\n";
    if (r.entries.empty()) return;
    out << "  " << std::left << std::setw(7) << "ENTRY" << std::setw(10) << "PID" << std::setw(9) << "STATE"
        << std::setw(5) << "OFD" << std::setw(12) << "GENERATION" << "READ LOCKS\n";
    for (const auto& e : r.entries)
        out << "  " << std::setw(7) << e.index << std::setw(10) << e.pid << std::setw(9) << to_string(e.liveness)
            << std::setw(5) << yes_no(e.ofd_backed) << std::setw(12) << e.generation << readers_of(e) << "\n";
    out << std::right;
}

std::string holder_of(const lock_report& l)
{
    if (l.holder_token == 0) return l.readers ? "read-locked" : "free";
    std::ostringstream s;
    s << "held by ";
    if (l.holder_pid) s << "pid " << l.holder_pid << " (" << to_string(l.holder_liveness);
    else s << "a dead holder (no process recorded any more";
    if (l.holder_entry) s << ", entry " << *l.holder_entry;
    s << ")";
    return s.str();
}

void print_locks(std::ostream& out, const segment_report& r)
{
    out << "locks:        " << r.locks.size() << " (" << r.locks_held() << " held), recoveries "
        << r.lock_recoveries() << "\n";
    for (const auto& l : r.locks) {
        out << "  " << to_string(l.type) << " " << l.index << ": " << holder_of(l);
        if (l.type == lock_type::rwlock)
            out << "; readers " << l.readers << " (" << l.dead_readers << " dead); dirty " << yes_no(l.dirty)
                << "; recoveries " << l.recoveries << " writers, " << l.reader_recoveries << " readers";
        else
            out << "; recoveries " << l.recoveries;
        out << "; waiters " << l.waiters << "\n";
    }
    const std::uint64_t last = r.last_recovery_ns();
    out << "last recovery: " << (last ? format_time(last) : std::string(r.lock_recoveries() ? "not recorded" : "never"));
    if (r.locks_dirty()) out << "; a dead writer was taken over and no writer has unlocked since";
    out << "\n";
}

void print_buffer(std::ostream& out, const buffer_summary& b)
{
    out << "buffer:       " << b.elements << " elements of " << to_string(b.type) << " (" << b.elem_size
        << " bytes, stride " << b.stride << "); bulk write open " << yes_no(b.write_open) << "; bulk recoveries "
        << b.bulk_recoveries << "\n";
}

void print_pool(std::ostream& out, const pool_summary& p)
{
    out << "pool:         " << p.slots << " slots of " << p.slot_size << " bytes; used " << p.used << " ("
        << p.dead_owned << " held by dead owners), available " << p.slots - std::min(p.used, p.slots) << "\n"
        << "              allocs " << p.allocs << ", frees " << p.frees << ", waits " << p.waits << ", timeouts "
        << p.timeouts << ", recoveries " << p.recoveries << "\n";
}

void print_kv_table(std::ostream& out, const kv_table_summary& t)
{
    out << "table:        " << printable(t.path) << " (generation " << t.generation << ")\n"
        << "              entries " << t.entries << ", erased " << t.erased << ", cells " << t.cells << "; arena "
        << t.arena_used << " of " << t.arena_size << " bytes; key and value bytes " << t.live_bytes
        << (t.overwrite_pending ? "; an interrupted overwrite is pending" : "") << "\n";
}

void print_kv(std::ostream& out, const kv_summary& k)
{
    out << "kv_store:     " << (k.is_table ? "table" : "root") << " of store " << std::hex << std::setw(16)
        << std::setfill('0') << k.store_id << std::dec << std::setfill(' ') << ", generation " << k.generation;
    if (!k.is_table)
        out << "; grows " << k.grows << ", repairs " << k.repairs << (k.repair_needed ? ", a repair is owed" : "")
            << (k.removed ? "; removed" : "");
    out << "\n";
    if (k.table) print_kv_table(out, *k.table);
    else if (!k.is_table && k.generation == 0) out << "table:        none yet (empty store)\n";
    else if (!k.is_table) out << "table:        " << printable(k.table_path) << " (cannot be inspected)\n";
}

void print_share(std::ostream& out, const share_summary& s)
{
    if (s.is_value_segment) {
        out << "share:        value segment " << s.value_generation << " of share " << std::hex << std::setw(16)
            << std::setfill('0') << s.share_id << std::dec << std::setfill(' ') << ", " << s.value_size
            << " bytes\n";
        return;
    }
    out << "share:        key " << s.key << " (0x" << std::hex << std::setw(8) << std::setfill('0') << s.key
        << std::dec << std::setfill(' ') << "), version " << s.version << ", value " << s.value_size << " bytes ";
    if (s.value_inline) out << "inline (slot " << s.current_slot << ", " << s.inline_capacity << " bytes each)";
    else out << "in value segment " << printable(s.value_path);
    out << "; repairs " << s.repairs << (s.removed ? "; destroyed" : "") << "\n";
}

void print_report(std::ostream& out, const segment_report& r)
{
    print_header(out, r);
    print_attach(out, r);
    print_locks(out, r);
    if (r.buffer) print_buffer(out, *r.buffer);
    if (r.pool) print_pool(out, *r.pool);
    if (r.kv) print_kv(out, *r.kv);
    if (r.share) print_share(out, *r.share);
}

} // namespace

int run_info(const args& a, std::ostream& out, std::ostream&)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("json", "machine-readable output: one JSON object");
    const parsed_args p = parse_command_args(a, opts, "target", 1);
    if (p.help) {
        out << info_help << "\n" << opts;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("info: expected a TARGET");
    const segment_report r = inspect_target(resolve_target(p.positional[0]));
    if (p.vm.count("json")) {
        json_writer j(out);
        write_json(j, r);
        out << "\n";
    } else {
        print_report(out, r);
    }
    out.flush();
    return out ? exit_ok : exit_problem;
}

static const registrar reg{{"info", "show everything about one segment, read-only (--json)", run_info}};

} // namespace shmkit_tool
