// shmkit stats TARGET [--prometheus]: a segment's counters as `name value`
// lines, or in the Prometheus text exposition format.
// shmkit watch TARGET [--interval S] [--count N] [--prometheus]: the same,
// every interval, until interrupted (SIGINT, SIGTERM) or N times.
// Both read the segment with shmkit::inspect: nothing in it changes.
#include "command.hpp"
#include "data_common.hpp"
#include "parse.hpp"
#include "target.hpp"

#include <boost/program_options.hpp>

#include <chrono>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <iostream>

#include <pthread.h>
#include <time.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;
using namespace shmkit;

const char* const stats_help =
    "usage: shmkit stats TARGET [--prometheus]\n\n"
    "Prints the counters of a segment, read-only, as `name value` lines, or in the\n"
    "Prometheus text exposition format (metrics shmkit_*, label segment=\"...\").\n\n"
    "TARGET: /NAME or NAME (POSIX shared memory), a path containing '/', or share:KEY.\n";

const char* const watch_help =
    "usage: shmkit watch TARGET [--interval S] [--count N] [--prometheus]\n\n"
    "Prints the counters of a segment (as `shmkit stats`) every S seconds, each round\n"
    "after a line `# TIME TARGET`, until interrupted (SIGINT or SIGTERM: exit 0) or N\n"
    "rounds are printed. Exit 1 if the segment cannot be read (any round).\n";

/// One exported number.
struct metric {
    std::string name; ///< without the shmkit_ prefix and the _total suffix
    const char* help;
    bool counter;     ///< only ever grows (Prometheus counter); else a gauge
    std::uint64_t value;
};

using metrics = std::vector<metric>;

void add(metrics& m, std::string name, const char* help, bool counter, std::uint64_t v)
{
    m.push_back({std::move(name), help, counter, v});
}

constexpr bool counter = true, gauge = false;

void segment_metrics(metrics& m, const segment_report& r)
{
    add(m, "capacity", "Capacity in the segment header (elements, slots; 1 for roots).", gauge, r.capacity);
    add(m, "size_bytes", "Bytes of the segment's file.", gauge, r.file_size);
    add(m, "memory_bytes", "Bytes of memory or disk allocated to the segment's file.", gauge, r.memory_size);
    add(m, "attach_capacity", "Attach-table entries (processes attached at once, at most).", gauge,
        r.attach_capacity);
    add(m, "attached_alive", "Attach-table entries held by live processes.", gauge, r.attached_alive());
    add(m, "attached_dead", "Attach-table entries of dead processes, not reclaimed yet.", gauge, r.attached_dead());
    add(m, "attaches", "Attach-table entries claimed, ever.", counter, r.attaches);
    add(m, "reclaimed", "Attach-table entries of dead processes reclaimed, ever.", counter, r.reclaimed);
    add(m, "locks_held", "Locks held now (exclusively or shared).", gauge, r.locks_held());
    add(m, "locks_dirty", "Locks whose dead writer was taken over, with no writer unlock since.", gauge,
        r.locks_dirty());
    add(m, "lock_recoveries", "Dead lock holders (writers, owners, readers) recovered, ever.", counter,
        r.lock_recoveries());
}

void buffer_metrics(metrics& m, const buffer_summary& b)
{
    add(m, "buffer_capacity", "Elements of the buffer.", gauge, b.elements);
    add(m, "buffer_write_open", "1 while a bulk write is open (or was left open by a dead writer).", gauge,
        b.write_open ? 1 : 0);
    add(m, "buffer_bulk_recoveries", "Bulk writes left open by a dead writer and closed, ever.", counter,
        b.bulk_recoveries);
}

void pool_metrics(metrics& m, const pool_summary& p)
{
    add(m, "pool_capacity", "Slots of the pool.", gauge, p.slots);
    add(m, "pool_used", "Slots allocated now.", gauge, p.used);
    add(m, "pool_dead_owned", "Slots allocated to owners that are dead (recoverable).", gauge, p.dead_owned);
    add(m, "pool_allocs", "Slots allocated, ever.", counter, p.allocs);
    add(m, "pool_frees", "Slots freed, ever.", counter, p.frees);
    add(m, "pool_waits", "Allocations that had to block, ever.", counter, p.waits);
    add(m, "pool_timeouts", "Blocking allocations that gave up, ever.", counter, p.timeouts);
    add(m, "pool_recoveries", "Slots of dead owners freed, ever.", counter, p.recoveries);
}

void kv_metrics(metrics& m, const kv_summary& k)
{
    add(m, "kv_generation", "Number of the store's current table (of this table, for a table).", gauge,
        k.generation);
    if (!k.is_table) {
        add(m, "kv_grows", "Table rebuilds, ever.", counter, k.grows);
        add(m, "kv_repairs", "Repairs after a writer died, ever.", counter, k.repairs);
    }
    if (!k.table) return;
    add(m, "kv_entries", "Live entries.", gauge, k.table->entries);
    add(m, "kv_erased", "Erased cells, reused by the next rebuild.", gauge, k.table->erased);
    add(m, "kv_cells", "Cells of the current table.", gauge, k.table->cells);
    add(m, "kv_arena_used_bytes", "Arena bytes committed in the current table.", gauge, k.table->arena_used);
    add(m, "kv_live_bytes", "Key and value bytes of the live entries.", gauge, k.table->live_bytes);
}

void share_metrics(metrics& m, const share_summary& s)
{
    add(m, "share_value_bytes", "Bytes of the value.", gauge, s.value_size);
    if (s.is_value_segment) return;
    add(m, "share_version", "Version of the value: 1 + stores.", gauge, s.version);
    add(m, "share_value_inline", "1 if the value is kept in the root segment.", gauge, s.value_inline ? 1 : 0);
    add(m, "share_repairs", "Repairs after a writer died, ever.", counter, s.repairs);
}

metrics metrics_of(const segment_report& r)
{
    metrics m;
    segment_metrics(m, r);
    if (r.buffer) buffer_metrics(m, *r.buffer);
    if (r.pool) pool_metrics(m, *r.pool);
    if (r.kv) kv_metrics(m, *r.kv);
    if (r.share) share_metrics(m, *r.share);
    return m;
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
std::string label_value(const std::string& s)
{
    std::string out;
    for (const char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void print_plain(std::ostream& out, const metrics& m)
{
    for (const metric& x : m) out << x.name << " " << x.value << "\n";
}

void print_prometheus(std::ostream& out, const metrics& m, const std::string& label)
{
    const std::string labels = "{segment=\"" + label_value(label) + "\"}";
    for (const metric& x : m) {
        const std::string name = "shmkit_" + x.name + (x.counter ? "_total" : "");
        out << "# HELP " << name << " " << x.help << "\n"
            << "# TYPE " << name << " " << (x.counter ? "counter" : "gauge") << "\n"
            << name << labels << " " << x.value << "\n";
    }
}

void print_stats(std::ostream& out, const segment_report& r, bool prometheus)
{
    const metrics m = metrics_of(r);
    if (prometheus) print_prometheus(out, m, label_of(r));
    else print_plain(out, m);
}

/// The TARGET and options of stats and watch.
struct stats_args {
    target t;
    bool prometheus = false;
    double interval = 1.0;
    std::uint64_t count = 0; ///< 0: until interrupted
    std::string count_text;  ///< --count as given (Boost would read "-1" as 2^64-1)
    bool help = false;
};

stats_args parse(const args& a, bool watch, std::ostream& out)
{
    po::options_description opts("options");
    stats_args s;
    opts.add_options()("help,h", "this text")("prometheus", "Prometheus text exposition format");
    if (watch)
        opts.add_options()("interval", po::value(&s.interval), "seconds between rounds (default 1)")(
            "count", po::value(&s.count_text)->value_name("N"), "stop after N rounds (default: until interrupted)");
    const parsed_args p = parse_command_args(a, opts, "target", 1);
    s.help = p.help;
    if (s.help) {
        out << (watch ? watch_help : stats_help) << "\n" << opts;
        return s;
    }
    const char* cmd = watch ? "watch" : "stats";
    if (p.positional.empty()) throw usage_error(std::string(cmd) + ": expected a TARGET");
    if (!(s.interval > 0) || !std::isfinite(s.interval) || s.interval > 86400)
        throw usage_error("watch: --interval must be more than 0 and at most 86400 seconds");
    if (p.vm.count("count") && (s.count = parse_unsigned(s.count_text, "watch: --count")) == 0)
        throw usage_error("watch: --count must be at least 1");
    s.prometheus = p.vm.count("prometheus") > 0;
    s.t = resolve_target(p.positional[0]);
    return s;
}

/// Blocks SIGINT and SIGTERM for its lifetime, so that watch waits for them
/// with sigtimedwait (no race between a check and a sleep); consumes any
/// still pending before unblocking them again.
class interrupt_wait {
public:
    interrupt_wait()
    {
        ::sigemptyset(&set_);
        ::sigaddset(&set_, SIGINT);
        ::sigaddset(&set_, SIGTERM);
        ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    ~interrupt_wait()
    {
        const struct timespec zero = {0, 0};
        while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    interrupt_wait(const interrupt_wait&) = delete;
    interrupt_wait& operator=(const interrupt_wait&) = delete;

    /// Waits `seconds`; true if SIGINT or SIGTERM came first.
    bool interrupted_within(double seconds)
    {
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            const struct timespec ts = {static_cast<time_t>(left.count() / 1000000000),
                                        static_cast<long>(left.count() % 1000000000)};
            if (::sigtimedwait(&set_, nullptr, &ts) > 0) return true;
            if (errno == EAGAIN) return false;
            // EINTR: another signal's handler ran; wait for the rest.
        }
    }

private:
    sigset_t set_, old_;
};

std::string now_text()
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    return format_time(static_cast<std::uint64_t>(ns));
}

} // namespace

int run_stats(const args& a, std::ostream& out, std::ostream&)
{
    const stats_args s = parse(a, false, out);
    if (s.help) return exit_ok;
    print_stats(out, inspect_target(s.t), s.prometheus);
    out.flush();
    return out ? exit_ok : exit_problem;
}

int run_watch(const args& a, std::ostream& out, std::ostream&)
{
    const stats_args s = parse(a, true, out);
    if (s.help) return exit_ok;
    interrupt_wait wait;
    for (std::uint64_t round = 1;; ++round) {
        const segment_report r = inspect_target(s.t);
        out << "# " << now_text() << " " << printable(label_of(r)) << "\n";
        print_stats(out, r, s.prometheus);
        out.flush();
        if (!out) return exit_problem;
        if (s.count != 0 && round >= s.count) return exit_ok;
        if (wait.interrupted_within(s.interval)) return exit_ok;
    }
}

static const registrar reg_stats{
    {"stats", "print a segment's counters as name value lines or for Prometheus", run_stats}};
static const registrar reg_watch{{"watch", "print a segment's counters every interval until interrupted", run_watch}};

} // namespace shmkit_tool
