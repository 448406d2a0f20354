// shmkit bench [--only ROWS]... [--procs N] [--quick] [--json FILE]
// [--chart FILE.svg] [--bench-dir DIR]: runs the benchmark programs of
// bench/ (bench_rwlock, bench_buffer, bench_pool, bench_kv, bench_share;
// `b2 bench//stage` puts them in bin/stage beside the staged tool), one
// after another, each with --tsv FILE, and merges the rows they write into
// one table (bench_report.cpp). The benchmarks themselves are not here.
#include "bench_report.hpp"
#include "command.hpp"
#include "data_common.hpp"

#include <boost/program_options.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const bench_help =
    "usage: shmkit bench [options]\n\n"
    "Runs the benchmark programs of bench/ (rwlock, buffer, pool, kv, share: shmkit against its\n"
    "baselines) one after another, shows progress on stderr, and prints one table of their rows\n"
    "on stdout: benchmark, operation, shmkit ops/s, baseline, baseline ops/s, ratio, target.\n"
    "A benchmark whose program is not found, or bench_share without perl and IPC::ShareLite,\n"
    "is marked skipped. Build the programs with `b2 bench//stage` (to bin/stage, beside\n"
    "the tool staged by `b2 tools/shmkit//stage`).\n\n"
    "--only ITEM (repeatable): NAME (a benchmark: rwlock, buffer, pool, kv, share), NAME:ROWS\n"
    "(that benchmark's rows whose name contains ROWS) or ROWS (those rows of every benchmark).\n\n"
    "exit status: 0 done (also with skipped benchmarks), 1 a benchmark program failed,\n"
    "2 usage error\n";

const char* const all_benchmarks[] = {"rwlock", "buffer", "pool", "kv", "share"};

/// The bounds bench/harness.hpp puts on the same options.
constexpr std::uint64_t max_procs = 1024, max_runs = 1000;
constexpr double max_seconds = 3600;

/// A file named by --json or --chart. It is opened before the runs, so that
/// a bad path fails at once, with O_CLOEXEC, so that the benchmark programs
/// and perl probes started meanwhile do not inherit it, and written after.
class output_file {
public:
    output_file() = default;
    output_file(const output_file&) = delete;
    output_file& operator=(const output_file&) = delete;
    ~output_file()
    {
        if (fd_ >= 0) ::close(fd_);
    }

    /// Creates or truncates `path`; false (errno set) if it cannot.
    bool open(const std::string& path)
    {
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        return fd_ >= 0;
    }

    bool is_open() const { return fd_ >= 0; }

    /// Writes all of `text` and closes the file; false (errno set) if a
    /// write or the close failed.
    bool write_and_close(const std::string& text)
    {
        std::size_t done = 0;
        int error = 0;
        while (done < text.size() && error == 0) {
            const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
            if (n > 0) done += static_cast<std::size_t>(n);
            else if (n == 0) error = EIO;
            else if (errno != EINTR) error = errno;
        }
        if (::close(fd_) != 0 && error == 0) error = errno;
        fd_ = -1;
        errno = error;
        return error == 0;
    }

private:
    int fd_ = -1;
};

struct job {
    std::string bench;  ///< "buffer"
    std::string filter; ///< --filter, or empty
};

bool is_benchmark(const std::string& s)
{
    for (const char* b : all_benchmarks)
        if (s == b) return true;
    return false;
}

std::string strip_prefix(const std::string& s) { return s.rfind("bench_", 0) == 0 ? s.substr(6) : s; }

std::vector<job> plan(const std::vector<std::string>& only)
{
    std::vector<job> jobs;
    if (only.empty())
        for (const char* b : all_benchmarks) jobs.push_back({b, ""});
    for (const std::string& item : only) {
        if (item.empty()) throw usage_error("bench: --only needs a benchmark name or a row substring");
        const std::size_t colon = item.find(':');
        const std::string head = strip_prefix(item.substr(0, colon));
        if (is_benchmark(head)) jobs.push_back({head, colon == std::string::npos ? "" : item.substr(colon + 1)});
        else
            for (const char* b : all_benchmarks) jobs.push_back({b, item});
    }
    return jobs;
}

std::string self_dir()
{
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<std::size_t>(n));
    const std::size_t slash = p.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
}

std::string find_program(const std::vector<std::string>& dirs, const std::string& name)
{
    for (const std::string& d : dirs) {
        const std::string p = d + "/" + name;
        struct stat st;
        if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::size_t count_rows(const std::string& path) { return parse_bench_tsv(read_file(path)).size(); }

/// The last `lines` lines of `text`.
std::string tail(const std::string& text, int lines)
{
    std::size_t at = text.size();
    while (at > 0 && lines >= 0)
        if (text[--at] == '\n') --lines;
    return text.substr(at == 0 ? 0 : at + 1);
}

struct temp_dir {
    std::string path;
    temp_dir()
    {
        const char* t = std::getenv("TMPDIR");
        std::string tmpl = std::string(t && *t ? t : "/tmp") + "/shmkit-bench-XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("bench: mkdtemp: " + std::string(std::strerror(errno)));
        path = tmpl;
    }
    ~temp_dir()
    {
        for (const char* f : {"/rows.tsv", "/out.txt"}) ::unlink((path + f).c_str());
        ::rmdir(path.c_str());
    }
};

} // namespace

int run_bench(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    std::vector<std::string> only;
    std::string procs_text, runs_text; // Boost would read "-1" as 2^32-1
    unsigned procs = 0, runs = 0;
    double seconds = 0;
    std::string json_path, chart_path, bench_dir;
    opts.add_options()("help,h", "this text")(
        "only", po::value(&only)->composing(), "ITEM: NAME, NAME:ROWS or ROWS (repeatable; see above)")(
        "procs", po::value(&procs_text)->value_name("N"), "N: worker processes of the multi-process rows (the programs' default: 2)")(
        "quick", "smoke run: few, short measurements (the programs' --quick)")(
        "runs", po::value(&runs_text)->value_name("R"), "R: measurements per figure, the median is shown")(
        "time", po::value(&seconds)->value_name("S"), "S: seconds per measurement when calibrating")(
        "json", po::value(&json_path), "FILE: write every row as JSON")(
        "chart", po::value(&chart_path), "FILE.svg: write an SVG bar chart of the ratios")(
        "bench-dir", po::value(&bench_dir),
        "DIR: where the bench_* programs are (default: the directory of this shmkit, then bin/stage in it)");
    po::variables_map vm;
    po::store(po::command_line_parser(a).options(opts).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
        out << bench_help << "\n" << opts;
        return exit_ok;
    }
    if (vm.count("procs")) procs = static_cast<unsigned>(parse_unsigned(procs_text, "bench: --procs", max_procs));
    if (vm.count("runs")) runs = static_cast<unsigned>(parse_unsigned(runs_text, "bench: --runs", max_runs));
    if (vm.count("procs") && procs < 1) throw usage_error("bench: --procs must be at least 1");
    if (vm.count("runs") && runs < 1) throw usage_error("bench: --runs must be at least 1");
    if (vm.count("time") && !(seconds > 0 && seconds <= max_seconds))
        throw usage_error("bench: --time must be more than 0 and at most " + std::to_string(int(max_seconds)) + " s");
    const bool quick = vm.count("quick") > 0;
    const std::vector<job> jobs = plan(only);

    // The output files are opened first: a bad path fails now, not after the run.
    output_file json_file, chart_file;
    for (auto [path, file] : {std::pair{&json_path, &json_file}, std::pair{&chart_path, &chart_file}})
        if (!path->empty()) {
            if (!file->open(*path)) {
                err << "shmkit: bench: cannot write " << *path << ": " << std::strerror(errno) << "\n";
                return exit_problem;
            }
        }

    std::vector<std::string> dirs;
    if (!bench_dir.empty()) dirs.push_back(bench_dir);
    else dirs = {self_dir(), self_dir() + "/bin/stage"};
    std::string where;
    for (const std::string& d : dirs) where += (where.empty() ? "" : ", ") + d;

    const bool tty = ::isatty(STDERR_FILENO) == 1;
    const temp_dir tmp;
    const std::string tsv = tmp.path + "/rows.tsv", log = tmp.path + "/out.txt";
    std::vector<bench_group> groups;
    bool failed = false, fastmmap_noted = false;
    const auto t_all = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        const job& j = jobs[i];
        bench_group g;
        g.name = j.bench + (j.filter.empty() ? "" : " (" + j.filter + ")");
        g.program = find_program(dirs, "bench_" + j.bench);
        const std::string step = "[" + std::to_string(i + 1) + "/" + std::to_string(jobs.size()) + "] ";
        if (g.program.empty()) {
            g.status = "skipped";
            g.reason = "bench_" + j.bench + " not found in " + where + "; build it with `b2 bench//stage`";
        } else if (j.bench == "share" && !perl_has("IPC::ShareLite")) {
            g.status = "skipped";
            g.reason = "bench_share needs perl with IPC::ShareLite (Debian: libipc-sharelite-perl)";
        }
        if (!g.status.empty()) {
            err << "shmkit bench: " << step << g.name << ": " << g.status << " (" << g.reason << ")\n";
        } else {
            std::vector<std::string> argv = {g.program, "--tsv", tsv};
            if (quick) argv.push_back("--quick");
            if (vm.count("procs")) argv.insert(argv.end(), {"--procs", std::to_string(procs)});
            if (vm.count("runs")) argv.insert(argv.end(), {"--runs", std::to_string(runs)});
            if (vm.count("time")) {
                std::ostringstream s;
                s << seconds;
                argv.insert(argv.end(), {"--time", s.str()});
            }
            if (!j.filter.empty()) argv.insert(argv.end(), {"--filter", j.filter});
            ::unlink(tsv.c_str());
            err << "shmkit bench: " << step << g.name << ": running " << g.program << "\n";
            const auto t0 = std::chrono::steady_clock::now();
            auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
            double last_report = 0;
            const pid_t pid = start_program(argv, log);
            if (pid < 0) throw std::runtime_error("bench: fork: " + std::string(std::strerror(errno)));
            const int st = wait_program(pid, [&] {
                const double e = elapsed();
                if (tty) {
                    err << "\r  " << g.name << ": " << std::fixed << std::setprecision(1) << e << " s, "
                        << count_rows(tsv) << " rows\033[K" << std::flush;
                } else if (e - last_report >= 15) {
                    last_report = e;
                    err << "  " << g.name << ": " << std::fixed << std::setprecision(0) << e << " s, "
                        << count_rows(tsv) << " rows so far\n" << std::flush;
                }
            });
            if (tty) err << "\r\033[K";
            g.seconds = elapsed();
            g.rows = parse_bench_tsv(read_file(tsv));
            if (st == 0) {
                g.status = "ok";
            } else {
                failed = true;
                g.status = "failed";
                g.exit_status = st;
                g.reason = st == 127 ? "could not run " + g.program
                                     : (st > 128 ? "killed by signal " + std::to_string(st - 128)
                                                 : "exit status " + std::to_string(st));
                err << "shmkit bench: " << g.program << " failed (" << g.reason << "); the end of its output:\n"
                    << tail(read_file(log), 15);
            }
            err << "  " << g.name << ": " << g.status << ", " << g.rows.size() << " rows in " << std::fixed
                << std::setprecision(1) << g.seconds << " s\n" << std::defaultfloat;
        }
        groups.push_back(std::move(g));
        if (j.bench == "kv" && !fastmmap_noted) {
            // bench_kv's 10k rows carry the Cache::FastMmap baseline; without
            // the perl module they have none, and it is listed as skipped.
            fastmmap_noted = true;
            if (!perl_has("Cache::FastMmap")) {
                bench_group f;
                f.name = "Cache::FastMmap (perl)";
                f.status = "skipped";
                f.reason = "perl module not installed (libcache-fastmmap-perl)";
                groups.push_back(std::move(f));
            }
        }
    }
    err << "shmkit bench: done in " << std::fixed << std::setprecision(1)
        << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count() << " s\n"
        << std::defaultfloat;

    print_bench_table(out, groups);
    const auto save = [&](output_file& file, const std::string& path, const auto& write) {
        if (!file.is_open()) return;
        std::ostringstream text;
        write(text);
        if (!file.write_and_close(text.str())) {
            err << "shmkit: bench: writing " << path << " failed: " << std::strerror(errno) << "\n";
            failed = true;
        }
    };
    save(json_file, json_path, [&](std::ostream& o) { write_bench_json(o, groups, quick, vm.count("procs") ? procs : 0); });
    save(chart_file, chart_path, [&](std::ostream& o) { write_bench_svg(o, groups); });
    return failed ? exit_problem : exit_ok;
}

static const registrar reg{{"bench", "run the benchmarks of bench/ and print one table (--json, --chart SVG)", run_bench}};

} // namespace shmkit_tool
