// `shmkit bench`: a quick run of a real benchmark program (bench_buffer,
// one row group, tiny counts: the test also runs in the ASan build), its
// table, --json and --chart; missing programs are skipped, a failing one is
// exit 1, usage errors exit 2; stand-in programs (shell scripts writing
// --tsv rows) check the merge exactly.
//
// Arguments: the shmkit tool, then the bench_buffer program (test/Jamfile).
#define BOOST_TEST_MODULE tool_bench
#include "tool_support.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

namespace {

std::string bench_buffer_path()
{
    const auto& m = boost::unit_test::framework::master_test_suite();
    for (int i = 1; i < m.argc; ++i) {
        const std::string a = m.argv[i];
        if (a.size() >= 12 && a.compare(a.size() - 12, 12, "bench_buffer") == 0) return a;
    }
    throw std::runtime_error("the test needs the bench_buffer program's path as an argument");
}

std::string dir_of(const std::string& p) { return p.substr(0, p.rfind('/')); }

std::string slurp(const std::string& path)
{
    std::ifstream f(path);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::size_t count(const std::string& text, const std::string& what)
{
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

/// A minimal JSON check: one value, brackets balanced outside strings,
/// strings closed, nothing after the value but a newline.
bool json_balanced(const std::string& s)
{
    std::string stack;
    bool in_string = false;
    std::size_t i = 0;
    for (; i < s.size(); ++i) {
        const char c = s[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
            else if (static_cast<unsigned char>(c) < 0x20) return false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '{' || c == '[') stack += c;
        else if (c == '}' || c == ']') {
            if (stack.empty() || stack.back() != (c == '}' ? '{' : '[')) return false;
            stack.pop_back();
            if (stack.empty()) break;
        }
    }
    return !s.empty() && s[0] == '{' && stack.empty() && !in_string && s.substr(i + 1) == "\n";
}

/// Well-formed XML, minimally: every element closed in order, one root
/// (svg), '<' only starting markup, '&' only starting an entity.
bool xml_well_formed(const std::string& s)
{
    std::vector<std::string> open;
    int roots = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '&') {
            const std::size_t semi = s.find(';', i);
            if (semi == std::string::npos || semi - i > 6) return false;
            continue;
        }
        if (s[i] != '<') continue;
        const std::size_t end = s.find('>', i);
        if (end == std::string::npos) return false;
        const std::string tag = s.substr(i + 1, end - i - 1);
        i = end;
        if (tag.empty()) return false;
        if (tag[0] == '?') continue;
        if (tag[0] == '/') {
            if (open.empty() || open.back() != tag.substr(1)) return false;
            open.pop_back();
            continue;
        }
        if (tag.find('<') != std::string::npos || count(tag, "\"") % 2) return false;
        const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
        if (open.empty()) ++roots;
        if (open.empty() && name != "svg") return false;
        if (tag.back() != '/') open.push_back(name);
    }
    return open.empty() && roots == 1;
}

struct scratch_dir {
    std::string path;
    scratch_dir()
    {
        std::string t = "/tmp/test_tool_bench-XXXXXX";
        BOOST_TEST_REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~scratch_dir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const std::string& name) const { return path + "/" + name; }
    /// An executable shell script `name` with `body`.
    void script(const std::string& name, const std::string& body) const
    {
        std::ofstream(file(name)) << "#!/bin/sh\n" << body;
        ::chmod(file(name).c_str(), 0755);
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(quick_run_of_bench_buffer_prints_the_table_json_and_svg)
{
    const scratch_dir d;
    const std::string json = d.file("rows.json"), svg = d.file("chart.svg");
    const auto r = test::run_tool({"bench", "--quick", "--runs", "1", "--time", "0.002", "--only", "buffer:get, 1",
                                   "--bench-dir", dir_of(bench_buffer_path()), "--json", json, "--chart", svg},
                                  "", std::chrono::seconds(300));
    BOOST_TEST_INFO("stderr: " << r.err << "\nstdout: " << r.out);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.find("OPERATION") != std::string::npos);
    const std::size_t rows = count(r.out, "get, 1 process");
    BOOST_TEST(rows >= 2u); // shmkit against the raw atomic and against Boost
    BOOST_TEST(r.out.find("skipped") == std::string::npos);
    BOOST_TEST(r.err.find("bench_buffer") != std::string::npos); // progress
    const std::string j = slurp(json);
    BOOST_TEST(json_balanced(j));
    BOOST_TEST(j.find("\"status\":\"ok\"") != std::string::npos);
    BOOST_TEST(count(j, "\"operation\":\"get, 1 process\"") == rows);
    const std::string s = slurp(svg);
    BOOST_TEST(xml_well_formed(s));
    BOOST_TEST(s.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
    BOOST_TEST(count(s, "<rect") == rows);
}

BOOST_AUTO_TEST_CASE(missing_programs_are_skipped_not_failures)
{
    const scratch_dir d;
    const auto r = test::run_tool({"bench", "--quick", "--only", "buffer", "--only", "rwlock", "--bench-dir",
                                   d.file("none"), "--json", d.file("j"), "--chart", d.file("c.svg")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(count(r.out, "skipped (bench_") == 2u);
    BOOST_TEST(count(slurp(d.file("j")), "\"status\":\"skipped\"") == 2u);
    const std::string s = slurp(d.file("c.svg"));
    BOOST_TEST(xml_well_formed(s));
    BOOST_TEST(count(s, "<rect") == 0u);
}

BOOST_AUTO_TEST_CASE(rows_of_stand_in_programs_are_merged_and_a_failing_program_is_exit_1)
{
    const scratch_dir d;
    // bench_rwlock writes three rows (one without a baseline figure); its
    // arguments are recorded; bench_pool fails after one row.
    d.script("bench_rwlock", "echo \"$@\" > '" + d.file("args") +
                                 "'\nwhile [ $# -gt 0 ]; do [ \"$1\" = --tsv ] && f=$2; shift; done\n"
                                 "printf '# shmkit-bench-tsv 1\\n' > \"$f\"\n"
                                 "printf 'lock <a&b>\\t2000000.000\\tbase one\\t1000000.000\\t2.000000\\ttarget >= 1.5x\\tmet\\t\\n' >> \"$f\"\n"
                                 "printf 'lock <a&b>\\t2000000.000\\tbase two\\t4000000.000\\t0.500000\\t\\t\\t\\n' >> \"$f\"\n"
                                 "printf 'unlock\\t5.000\\tnone\\t0.000\\t\\t\\t\\t\\n' >> \"$f\"\n");
    d.script("bench_pool", "while [ $# -gt 0 ]; do [ \"$1\" = --tsv ] && f=$2; shift; done\n"
                           "printf 'alloc\\t9.000\\tb\\t3.000\\t3.000000\\ttarget >= 4x\\tnot met\\t\\n' > \"$f\"\n"
                           "echo pool broke; exit 3\n");
    const auto r = test::run_tool({"bench", "--procs", "3", "--only", "rwlock", "--only", "pool:alloc", "--bench-dir",
                                   d.path, "--json", d.file("j"), "--chart", d.file("c.svg")});
    BOOST_TEST_INFO("stderr: " << r.err << "\nstdout: " << r.out);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(slurp(d.file("args")).find("--procs 3") != std::string::npos);
    BOOST_TEST(r.err.find("pool broke") != std::string::npos);
    BOOST_TEST(r.out.find("2.00x") != std::string::npos);
    BOOST_TEST(r.out.find("0.50x") != std::string::npos);
    BOOST_TEST(r.out.find("target >= 1.5x: met") != std::string::npos);
    BOOST_TEST(r.out.find("failed (exit status 3)") != std::string::npos);
    const std::string j = slurp(d.file("j"));
    BOOST_TEST(json_balanced(j));
    BOOST_TEST(count(j, "\"operation\":") == 4u);
    BOOST_TEST(j.find("\"ratio\":null") != std::string::npos);
    BOOST_TEST(j.find("\"met\":false") != std::string::npos);
    const std::string s = slurp(d.file("c.svg"));
    BOOST_TEST(xml_well_formed(s));
    BOOST_TEST(count(s, "<rect") == 4u);
    BOOST_TEST(s.find("lock &lt;a&amp;b&gt;") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_help_exits_0)
{
    BOOST_TEST(test::run_tool({"bench", "--procs", "0"}).status == 2);
    BOOST_TEST(test::run_tool({"bench", "--bogus"}).status == 2);
    BOOST_TEST(test::run_tool({"bench", "--only", ""}).status == 2);
    const auto h = test::run_tool({"bench", "--help"});
    BOOST_TEST(h.status == 0);
    BOOST_TEST(h.out.find("--chart") != std::string::npos);
}
