// shmkit bench: the rows the benchmark programs wrote (their --tsv lines),
// and the three ways the tool reports them: the merged table (stdout), the
// JSON document (--json FILE) and the SVG bar chart of ratios (--chart FILE);
// and how the programs are started (bench_process.cpp).
#ifndef SHMKIT_TOOLS_BENCH_REPORT_HPP
#define SHMKIT_TOOLS_BENCH_REPORT_HPP

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <sys/types.h>

namespace shmkit_tool {

/// One line of a benchmark's table: shmkit's figure beside one baseline's.
struct bench_row {
    std::string name;       ///< the operation ("get, 1 process")
    double shmkit = 0;      ///< ops/s
    std::string baseline;   ///< the baseline's name
    double base = 0;        ///< its ops/s (0: none measured)
    double ratio = 0;       ///< shmkit / base; 0 when base is 0
    std::string target;     ///< "target >= 0.9x", or empty
    std::string met;        ///< "met", "not met" or empty
    std::string flag;       ///< "[noisy: ...]" or empty
};

/// One benchmark program's part of the run.
struct bench_group {
    std::string name;    ///< "rwlock", "buffer", ...
    std::string program; ///< its path ("" when not found)
    std::string status;  ///< "ok", "skipped" or "failed"
    std::string reason;  ///< why skipped or failed
    double seconds = 0;  ///< how long it ran
    int exit_status = 0; ///< the program's exit status (failed), 0 otherwise
    std::vector<bench_row> rows;
};

/// Parses the --tsv lines of one run (see bench/harness.hpp); lines that
/// are comments or malformed are ignored.
std::vector<bench_row> parse_bench_tsv(const std::string& text);

/// The merged table, on `out`: a row per bench_row, a line per skipped or
/// failed group.
void print_bench_table(std::ostream& out, const std::vector<bench_group>& groups);

/// The JSON document of --json (doc/shmkit/tool.adoc describes it); procs 0: not
/// given (the programs' default).
void write_bench_json(std::ostream& out, const std::vector<bench_group>& groups, bool quick, unsigned procs);

/// A standalone SVG 1.1 document: one horizontal bar (one <rect>) per row,
/// log-scale ratio axis with a 1.0x line.
void write_bench_svg(std::ostream& out, const std::vector<bench_group>& groups);

/// Runs argv[0] (searched in PATH) with stdout to `out_path` (stdout and
/// stderr to /dev/null if it is empty), stdin from /dev/null, stderr
/// inherited otherwise. Returns the pid; -1 if fork failed.
pid_t start_program(const std::vector<std::string>& argv, const std::string& out_path);

/// Waits for `pid`, calling `tick` every 200 ms meanwhile (if given).
/// Returns its exit status, 128 + signal, 127 if it could not be waited for.
int wait_program(pid_t pid, const std::function<void()>& tick = {});

/// Whether `perl -MMODULE -e 1` succeeds.
bool perl_has(const std::string& module);

} // namespace shmkit_tool

#endif
