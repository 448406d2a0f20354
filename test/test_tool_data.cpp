// The data commands of the shmkit tool: `create`, `buffer`, `pool`, `kv`.
// Every command runs on real segments made by the test; what the tool writes
// is read back with the library and the other way round; exit statuses 0
// (done), 1 (the library or the segment says no), 2 (a bad command line).
// Every segment has a name unique to this process (pid + counter) and a
// guard that removes it on every path.
#define BOOST_TEST_MODULE tool_data
#include "tool_support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/str_buffer.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <dirent.h>
#include <limits>
#include <string>
#include <vector>

namespace {

using test::run_tool;
using args = std::vector<std::string>;

std::string unique(const std::string& tag)
{
    static int counter = 0;
    return "shmkit-tooldata-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

/// A buffer or pool under a POSIX name (the tool's TARGET NAME, the file
/// /dev/shm/NAME); removed on scope exit.
struct shm_target {
    std::string name = unique("seg");
    std::string path = "/dev/shm/" + name;
    shm_target() { ::unlink(path.c_str()); }
    ~shm_target() { ::unlink(path.c_str()); }
};

/// A kv_store name; the store (root, tables, any stray table name) removed
/// on scope exit.
struct kv_target {
    std::string name = unique("kv");
    kv_target() { remove(); }
    ~kv_target() { remove(); }
    void remove() const
    {
        try {
            shmkit::kv_store::remove(name);
        } catch (...) {
        }
        if (DIR* d = ::opendir("/dev/shm")) {
            const std::string prefix = name + "~";
            while (const dirent* e = ::readdir(d))
                if (std::string(e->d_name).rfind(prefix, 0) == 0) ::unlink(("/dev/shm/" + std::string(e->d_name)).c_str());
            ::closedir(d);
        }
    }
    bool exists() const
    {
        struct stat st {};
        return ::lstat(("/dev/shm/" + name).c_str(), &st) == 0;
    }
};

bool exists(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

mode_t mode_of(const std::string& path)
{
    struct stat st {};
    ::lstat(path.c_str(), &st);
    return st.st_mode & 07777;
}

/// The tool ran, succeeded, and said nothing on stderr.
void expect_ok(const test::tool_result& r, const std::string& out)
{
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.err == "");
    BOOST_TEST(r.out == out);
}

/// Exit 2, nothing on stdout, a message on stderr.
void expect_usage(const args& a, const std::string& input = "")
{
    const auto r = run_tool(a, input);
    BOOST_TEST_INFO("shmkit " << [&] {
        std::string s;
        for (const auto& x : a) s += x + " ";
        return s;
    }());
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(!r.err.empty());
}

/// Exit 1 with a message on stderr containing `what`.
void expect_problem(const args& a, const std::string& what, const std::string& input = "")
{
    const auto r = run_tool(a, input);
    BOOST_TEST_INFO("shmkit " << [&] {
        std::string s;
        for (const auto& x : a) s += x + " ";
        return s;
    }());
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find(what) != std::string::npos, "stderr '" << r.err << "' should contain '" << what << "'");
}

/// Runs `shmkit args...` with its stdout on /dev/full (every write fails
/// with ENOSPC); returns its exit status, and its stderr in `err`.
int run_tool_into_dev_full(const args& a, std::string& err)
{
    test::pipe_pair e;
    const std::string tool = test::tool_path();
    test::child c([&] {
        const int full = ::open("/dev/full", O_WRONLY);
        if (full < 0 || ::dup2(full, 1) < 0 || ::dup2(e.wr, 2) < 0) return 126;
        std::vector<char*> argv{const_cast<char*>(tool.c_str())};
        for (const auto& x : a) argv.push_back(const_cast<char*>(x.c_str()));
        argv.push_back(nullptr);
        ::execv(tool.c_str(), argv.data());
        return 127;
    });
    ::close(e.wr);
    e.wr = -1;
    for (char ch; (ch = e.receive(std::chrono::seconds(60))) != 0;) err += ch;
    return c.wait();
}

/// Whether process `pid` runs `program` (it has exec'd it) and has signal
/// `sig` blocked (/proc/PID/status SigBlk). Before the exec the mask is the
/// forked test's, and under valgrind valgrind's own (all blocked).
bool runs_with_signal_blocked(pid_t pid, const std::string& program, int sig)
{
    std::error_code ec;
    const std::string proc = "/proc/" + std::to_string(pid);
    if (std::filesystem::read_symlink(proc + "/exe", ec) != std::filesystem::canonical(program, ec)) return false;
    const std::string status = test::read_file(proc + "/status");
    const auto at = status.find("SigBlk:");
    return at != std::string::npos && (std::stoull(status.substr(at + 7), nullptr, 16) >> (sig - 1) & 1) != 0;
}

/// Every byte value, NULs and newlines included, several times over.
std::string binary_value(std::size_t n)
{
    std::string v(n, '\0');
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + i / 256) & 0xff);
    return v;
}

} // namespace

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(help)

BOOST_AUTO_TEST_CASE(every_command_has_help_and_the_tool_lists_them)
{
    const auto h = run_tool({"--help"});
    BOOST_TEST(h.status == 0);
    for (const char* c : {"create", "buffer", "pool", "kv"}) {
        BOOST_TEST(h.out.find(std::string("  ") + c) != std::string::npos);
        for (const char* flag : {"--help", "-h"}) {
            const auto r = run_tool({c, flag});
            BOOST_TEST(r.status == 0);
            BOOST_TEST(r.out.find(std::string("usage: shmkit ") + c) != std::string::npos);
            BOOST_TEST(r.err.empty());
        }
        // shmkit --help COMMAND works too
        BOOST_TEST(run_tool({"--help", c}).out.find(std::string("usage: shmkit ") + c) != std::string::npos);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(create)

BOOST_AUTO_TEST_CASE(creates_each_kind_that_the_library_then_opens_with_the_asked_sizes)
{
    {
        shm_target t;
        expect_ok(run_tool({"create", "buffer", t.name, "--type", "u16", "--capacity", "100"}), "");
        shmkit::buffer<std::uint16_t> b(shmkit::open_only, t.path);
        BOOST_TEST(b.capacity() == 100u);
        BOOST_TEST(mode_of(t.path) == 0600u);
    }
    {
        shm_target t;
        expect_ok(run_tool({"create", "str_buffer", t.name, "--capacity", "5", "--width", "40"}), "");
        shmkit::str_buffer b(shmkit::open_only, t.path);
        BOOST_TEST(b.capacity() == 5u);
        BOOST_TEST(b.width() == 40u);
    }
    {
        shm_target t;
        expect_ok(run_tool({"create", "pool", t.name, "--type", "f64", "--capacity", "7", "--mode", "640"}), "");
        shmkit::pool<double> p(shmkit::open_only, t.path);
        BOOST_TEST(p.capacity() == 7u);
        BOOST_TEST(p.used() == 0u);
        BOOST_TEST(mode_of(t.path) == 0640u);
    }
    {
        shm_target t;
        expect_ok(run_tool({"create", "raw_pool", t.name, "--capacity", "3", "--size", "100"}), "");
        shmkit::raw_pool p(shmkit::open_only, t.path);
        BOOST_TEST(p.capacity() == 3u);
        BOOST_TEST(p.elem_size() == 100u);
    }
    {
        shm_target t;
        expect_ok(run_tool({"create", "str_pool", t.name, "--capacity", "4", "--max-length", "20"}), "");
        shmkit::str_pool p(shmkit::open_only, t.path);
        BOOST_TEST(p.capacity() == 4u);
        BOOST_TEST(p.max_length() == 20u);
    }
    {
        kv_target k;
        expect_ok(run_tool({"create", "kv", k.name, "--mode", "604"}), "");
        BOOST_TEST(k.exists());
        BOOST_TEST(mode_of("/dev/shm/" + k.name) == 0604u);
        shmkit::kv_store kv(k.name);
        BOOST_TEST(kv.size() == 0u);
    }
}

BOOST_AUTO_TEST_CASE(every_element_type_is_accepted_and_a_file_path_is_a_target)
{
    test::scratch_dir dir;
    for (const char* t : {"i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64"}) {
        const std::string path = dir / (std::string("b-") + t);
        const auto r = run_tool({"create", "buffer", path, "--type", t, "--capacity", "2", "--verbose"});
        expect_ok(r, path + "\n");
        expect_ok(run_tool({"create", "pool", dir / (std::string("p-") + t), "--type", t, "--capacity", "2"}), "");
    }
    shmkit::buffer<std::int8_t> b(shmkit::open_only, dir / "b-i8");
    shmkit::pool<float> p(shmkit::open_only, dir / "p-f32");
    BOOST_TEST(b.capacity() == 2u);
    BOOST_TEST(p.capacity() == 2u);
    // NAME and /NAME are the same POSIX object, /dev/shm/NAME.
    shm_target t;
    expect_ok(run_tool({"create", "buffer", "/" + t.name, "--type", "u8", "--capacity", "3", "--verbose"}),
              t.path + "\n");
    expect_ok(run_tool({"buffer", "set", "/" + t.name, "1", "9"}), "");
    expect_ok(run_tool({"buffer", "get", t.name, "1"}), "9\n");
    expect_usage({"buffer", "get", "share:1", "0"});
    expect_usage({"buffer", "get", "/", "0"});
}

BOOST_AUTO_TEST_CASE(open_or_create_accepts_a_match_and_refuses_a_mismatch_unchanged_and_exclusive_refuses_any)
{
    shm_target t;
    expect_ok(run_tool({"create", "buffer", t.name, "--type", "i64", "--capacity", "10"}), "");
    shmkit::buffer<std::int64_t>(shmkit::open_only, t.path).set(3, 77);
    // The same again: opened, kept.
    expect_ok(run_tool({"create", "buffer", t.name, "--type", "i64", "--capacity", "10"}), "");
    BOOST_TEST(shmkit::buffer<std::int64_t>(shmkit::open_only, t.path).get(3) == 77);
    const std::string before = test::read_file(t.path);
    expect_problem({"create", "buffer", t.name, "--type", "i64", "--capacity", "11"}, "capacity");
    expect_problem({"create", "buffer", t.name, "--type", "i32", "--capacity", "10"}, "int64");
    expect_problem({"create", "pool", t.name, "--type", "i64", "--capacity", "10"}, "kind");
    expect_problem({"create", "buffer", t.name, "--type", "i64", "--capacity", "10", "--exclusive"}, "exists");
    BOOST_TEST((test::read_file(t.path) == before));

    kv_target k;
    expect_ok(run_tool({"create", "kv", k.name, "--exclusive"}), "");
    shmkit::kv_store(k.name).put("a", "1");
    expect_problem({"create", "kv", k.name, "--exclusive"}, "exists");
    expect_ok(run_tool({"create", "kv", k.name}), ""); // open-or-create: kept
    BOOST_TEST(shmkit::kv_store(k.name).get("a").value_or("") == "1");
    expect_ok(run_tool({"create", "kv", "/" + k.name, "--empty", "--verbose"}), "/" + k.name + "\n");
    BOOST_TEST(shmkit::kv_store(k.name).size() == 0u);
    // A kv name that holds a buffer is refused.
    expect_problem({"create", "kv", t.name}, t.name);
}

BOOST_AUTO_TEST_CASE(bad_command_lines_are_usage_errors_and_create_nothing)
{
    shm_target t;
    for (const args& a : {args{"create"}, args{"create", "buffer"}, args{"create", "bogus", t.name},
                          args{"create", "buffer", t.name, "--capacity", "4"},                       // no --type
                          args{"create", "buffer", t.name, "--type", "i65", "--capacity", "4"},      // bad type
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "0"},       // capacity 0
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "-1"},
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "x"},
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "4", "--width", "3"},
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "4", "--mode", "999"},
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "4", "--bogus"},
                          args{"create", "buffer", t.name, "--type", "i8", "--capacity", "4", "-x"},
                          args{"create", "buffer", t.name, "extra", "--type", "i8", "--capacity", "4"},
                          args{"create", "str_buffer", t.name, "--capacity", "4"},
                          args{"create", "raw_pool", t.name, "--capacity", "4"},
                          args{"create", "str_pool", t.name, "--capacity", "4", "--size", "3"},
                          args{"create", "kv", "a/b"}, args{"create", "kv", "a~b"},
                          args{"create", "kv", t.name, "--capacity", "3"},
                          args{"create", "kv", t.name, "--empty", "--exclusive"}})
        expect_usage(a);
    BOOST_TEST(!exists(t.path));
}

BOOST_AUTO_TEST_CASE(a_target_in_a_missing_directory_is_exit_1)
{
    expect_problem({"create", "buffer", "/nonexistent-dir-shmkit/b", "--type", "i8", "--capacity", "4"},
                   "/nonexistent-dir-shmkit/b");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(buffer)

template <class T>
void round_trip_extremes(const char* type)
{
    shm_target t;
    BOOST_TEST_INFO(type);
    expect_ok(run_tool({"create", "buffer", t.name, "--type", type, "--capacity", "4"}), "");
    using lim = std::numeric_limits<T>;
    std::vector<T> values = {lim::lowest(), lim::max(), T(0), T(1)};
    if constexpr (std::is_floating_point_v<T>) values[2] = lim::denorm_min();
    // The library writes, the tool reads...
    {
        shmkit::buffer<T> b(shmkit::open_only, t.path);
        b.set_slice(0, values);
    }
    const auto r = run_tool({"buffer", "get", t.name, "0", "4"});
    BOOST_TEST(r.status == 0);
    std::vector<std::string> lines;
    for (std::size_t at = 0, nl; (nl = r.out.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(r.out.substr(at, nl - at));
    BOOST_TEST_REQUIRE(lines.size() == 4u);
    // ... and what it printed, written back by the tool, is bit for bit what was there.
    {
        shmkit::buffer<T> b(shmkit::open_only, t.path);
        b.clear();
    }
    args set = {"buffer", "set", t.name, "0"};
    set.insert(set.end(), lines.begin(), lines.end());
    expect_ok(run_tool(set), "");
    shmkit::buffer<T> b(shmkit::open_only, t.path);
    for (std::size_t i = 0; i < values.size(); ++i) {
        const T got = b.get(i);
        BOOST_TEST(std::memcmp(&got, &values[i], sizeof(T)) == 0, type << " element " << i << ": " << lines[i]);
    }
    if constexpr (std::is_integral_v<T>) {
        BOOST_TEST(lines[0] == std::to_string(static_cast<long long>(lim::lowest())));
        BOOST_TEST(lines[1] == (std::is_signed_v<T> ? std::to_string(static_cast<long long>(lim::max()))
                                                    : std::to_string(static_cast<unsigned long long>(lim::max()))));
    }
}

BOOST_AUTO_TEST_CASE(every_element_type_round_trips_its_extremes_between_tool_and_library)
{
    round_trip_extremes<std::int8_t>("i8");
    round_trip_extremes<std::uint8_t>("u8");
    round_trip_extremes<std::int16_t>("i16");
    round_trip_extremes<std::uint16_t>("u16");
    round_trip_extremes<std::int32_t>("i32");
    round_trip_extremes<std::uint32_t>("u32");
    round_trip_extremes<std::int64_t>("i64");
    round_trip_extremes<std::uint64_t>("u64");
    round_trip_extremes<float>("f32");
    round_trip_extremes<double>("f64");
}

BOOST_AUTO_TEST_CASE(get_set_fill_add_incr_decr_and_cas_on_an_integer_buffer)
{
    shm_target t;
    expect_ok(run_tool({"create", "buffer", t.name, "--type", "i32", "--capacity", "6"}), "");
    expect_ok(run_tool({"buffer", "set", t.name, "1", "-5", "0x10", "+7"}), "");
    {
        shmkit::buffer<std::int32_t> b(shmkit::open_only, t.path);
        BOOST_TEST(b.slice(0, 4) == (std::vector<std::int32_t>{0, -5, 16, 7}), boost::test_tools::per_element());
        b.set(5, 1000);
    }
    expect_ok(run_tool({"buffer", "get", t.name, "5"}), "1000\n");
    expect_ok(run_tool({"buffer", "get", t.name, "0", "3"}), "0\n-5\n16\n");
    expect_ok(run_tool({"buffer", "get", t.name, "2", "0"}), "");
    expect_ok(run_tool({"buffer", "add", t.name, "1", "-10"}), "-15\n");
    expect_ok(run_tool({"buffer", "incr", t.name, "1"}), "-14\n");
    expect_ok(run_tool({"buffer", "decr", t.name, "0"}), "-1\n");
    // cas: the value found, exit 0 when it was EXPECTED ...
    expect_ok(run_tool({"buffer", "cas", t.name, "2", "16", "-2"}), "16\n");
    // ... and exit 1, unchanged, when it was not.
    const auto miss = run_tool({"buffer", "cas", t.name, "2", "16", "99"});
    BOOST_TEST(miss.status == 1);
    BOOST_TEST(miss.out == "-2\n");
    BOOST_TEST(miss.err.find("unchanged") != std::string::npos);
    expect_ok(run_tool({"buffer", "fill", t.name, "-3"}), "");
    shmkit::buffer<std::int32_t> b(shmkit::open_only, t.path);
    BOOST_TEST(b.slice(0, 6) == std::vector<std::int32_t>(6, -3), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unsigned_deltas_wrap_floats_refuse_integer_operations_and_cas_compares_bits)
{
    shm_target u, f;
    expect_ok(run_tool({"create", "buffer", u.name, "--type", "u8", "--capacity", "2"}), "");
    expect_ok(run_tool({"buffer", "add", u.name, "0", "-1"}), "255\n"); // a delta, modulo 256
    expect_ok(run_tool({"buffer", "incr", u.name, "0"}), "0\n");
    expect_usage({"buffer", "set", u.name, "0", "-1"}); // a value is not a delta
    expect_usage({"buffer", "set", u.name, "0", "256"});
    expect_usage({"buffer", "add", u.name, "0", "-256"});

    expect_ok(run_tool({"create", "buffer", f.name, "--type", "f64", "--capacity", "4"}), "");
    expect_ok(run_tool({"buffer", "set", f.name, "0", "0.1", "-inf", "nan", "-0"}), "");
    {
        shmkit::buffer<double> b(shmkit::open_only, f.path);
        BOOST_TEST(b.get(0) == 0.1);
        BOOST_TEST(std::isinf(b.get(1)));
        BOOST_TEST(std::isnan(b.get(2)));
        BOOST_TEST(std::signbit(b.get(3)));
    }
    expect_ok(run_tool({"buffer", "get", f.name, "0", "2"}), "0.1\n-inf\n");
    expect_problem({"buffer", "add", f.name, "0", "1"}, "integer");
    expect_problem({"buffer", "incr", f.name, "0"}, "integer");
    // -0.0 is not 0.0 for cas (bitwise).
    const auto r = run_tool({"buffer", "cas", f.name, "3", "0", "5"});
    BOOST_TEST(r.status == 1);
    expect_ok(run_tool({"buffer", "cas", f.name, "3", "-0", "5"}), "-0\n");
    BOOST_TEST(shmkit::buffer<double>(shmkit::open_only, f.path).get(3) == 5.0);
    expect_usage({"buffer", "set", f.name, "0", "1e999"});
    expect_usage({"buffer", "set", f.name, "0", "1.5x"});
}

BOOST_AUTO_TEST_CASE(str_buffer_values_are_binary_safe_through_stdin_and_raw_output)
{
    shm_target t;
    expect_ok(run_tool({"create", "str_buffer", t.name, "--capacity", "4", "--width", "300"}), "");
    const std::string v = binary_value(300);
    expect_ok(run_tool({"buffer", "set", t.name, "1"}, v), "");
    {
        shmkit::str_buffer b(shmkit::open_only, t.path);
        BOOST_TEST((b.get(1) == v));
        b.set(2, std::string("a\0b\tc\\\n", 7));
    }
    const auto g = run_tool({"buffer", "get", t.name, "1"});
    BOOST_TEST(g.status == 0);
    BOOST_TEST((g.out == v));
    // Several values: one per line, C-escaped; --escape does it for one.
    expect_ok(run_tool({"buffer", "get", t.name, "2", "2"}), "a\\x00b\\tc\\\\\\n\n\n");
    expect_ok(run_tool({"buffer", "get", t.name, "2", "--escape"}), "a\\x00b\\tc\\\\\\n\n");
    // Values as arguments: one, several (one bulk write), every one.
    expect_ok(run_tool({"buffer", "set", t.name, "0", "x", "", "yz"}), "");
    expect_ok(run_tool({"buffer", "get", t.name, "0", "3"}), "x\n\nyz\n");
    expect_ok(run_tool({"buffer", "fill", t.name, "-"}), "");
    BOOST_TEST(shmkit::str_buffer(shmkit::open_only, t.path).slice(0, 4) == std::vector<std::string>(4, "-"),
               boost::test_tools::per_element());
    // Too long: the library's refusal, nothing written.
    expect_problem({"buffer", "set", t.name, "0"}, "width", std::string(301, 'x'));
    expect_problem({"buffer", "set", t.name, "0", "a", std::string(301, 'x')}, "width");
    BOOST_TEST(shmkit::str_buffer(shmkit::open_only, t.path).get(0) == "-");
    expect_problem({"buffer", "add", t.name, "0", "1"}, "str_buffer");
    expect_problem({"buffer", "cas", t.name, "0", "a", "b"}, "str_buffer");
}

BOOST_AUTO_TEST_CASE(out_of_range_a_missing_target_and_another_kind_are_exit_1)
{
    shm_target t, p;
    expect_ok(run_tool({"create", "buffer", t.name, "--type", "i64", "--capacity", "3"}), "");
    expect_problem({"buffer", "get", t.name, "3"}, "range");
    expect_problem({"buffer", "get", t.name, "2", "2"}, "range");
    expect_problem({"buffer", "set", t.name, "2", "1", "2"}, "range");
    shm_target missing;
    expect_problem({"buffer", "get", missing.name, "0"}, missing.path);
    expect_problem({"buffer", "get", "/nonexistent-dir-shmkit/x", "0"}, "/nonexistent-dir-shmkit/x");
    BOOST_TEST(!exists(missing.path));
    expect_ok(run_tool({"create", "pool", p.name, "--type", "i64", "--capacity", "3"}), "");
    expect_problem({"buffer", "get", p.name, "0"}, "kind");
    // A file that is not a segment, left as it was.
    test::scratch_dir dir;
    test::write_file(dir / "junk", std::string(8192, 'j'));
    expect_problem({"buffer", "get", dir / "junk", "0"}, dir / "junk");
    BOOST_TEST((test::read_file(dir / "junk") == std::string(8192, 'j')));
}

BOOST_AUTO_TEST_CASE(bad_command_lines_are_usage_errors)
{
    shm_target t;
    expect_ok(run_tool({"create", "buffer", t.name, "--type", "i8", "--capacity", "3"}), "");
    for (const args& a :
         {args{"buffer"}, args{"buffer", "frob", t.name}, args{"buffer", "get", t.name}, args{"buffer", "get", t.name, "x"},
          args{"buffer", "get", t.name, "-1"}, args{"buffer", "get", t.name, "0", "1", "2"},
          args{"buffer", "set", t.name, "0"}, args{"buffer", "set", t.name, "0", "128"},
          args{"buffer", "set", t.name, "0", "1.5"}, args{"buffer", "add", t.name, "0"},
          args{"buffer", "incr", t.name}, args{"buffer", "cas", t.name, "0", "1"}, args{"buffer", "fill", t.name},
          args{"buffer", "set", t.name, "0", "1", "--escape"}, args{"buffer", "get", t.name, "0", "--bogus"}})
        expect_usage(a);
    expect_usage({"buffer", "get", "", "0"});
    BOOST_TEST((shmkit::buffer<std::int8_t>(shmkit::open_only, t.path).slice(0, 3) == std::vector<std::int8_t>(3, 0)));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(pool)

/// The slot index (and token) `pool alloc` printed.
std::pair<std::size_t, std::uint64_t> allocated(const test::tool_result& r)
{
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    std::size_t i = 0;
    unsigned long long token = 0;
    const int n = std::sscanf(r.out.c_str(), "%zu %llu", &i, &token);
    BOOST_TEST_REQUIRE(n >= 1);
    return {i, token};
}

BOOST_AUTO_TEST_CASE(alloc_hands_a_slot_over_that_stays_allocated_until_adopted_freed_or_recovered)
{
    shm_target t;
    expect_ok(run_tool({"create", "pool", t.name, "--type", "i64", "--capacity", "4"}), "");
    const auto [a, tok_a] = allocated(run_tool({"pool", "alloc", t.name, "--token", "--value", "-42"}));
    const auto [b, tok_b] = allocated(run_tool({"pool", "alloc", t.name}));
    BOOST_TEST(a != b);
    BOOST_TEST(tok_a != 0u);
    shmkit::pool<std::int64_t> p(shmkit::open_only, t.path);
    BOOST_TEST(p.is_allocated(a));
    BOOST_TEST(p.is_allocated(b));
    BOOST_TEST(p.get(a) == -42);
    BOOST_TEST(p.holder_token(a) == tok_a);
    // Adopted with the token the tool printed: ours now, never recovered.
    BOOST_TEST(p.adopt(a, tok_a));
    BOOST_TEST(p.owner(a) == ::getpid());
    // b's owner (the tool) is dead: recovered, and only b.
    expect_ok(run_tool({"pool", "recover", t.name}), "1\n");
    BOOST_TEST(p.is_allocated(a));
    BOOST_TEST(!p.is_allocated(b));
    expect_ok(run_tool({"pool", "recover", t.name}), "0\n");
    expect_ok(run_tool({"pool", "ls", t.name}), std::to_string(a) + "\t" + std::to_string(::getpid()) + "\talive\t-42\n");
    // A stale token adopts nothing.
    const auto [c, tok_c] = allocated(run_tool({"pool", "alloc", t.name, "--token"}));
    BOOST_TEST(p.free(c));
    BOOST_TEST(!p.adopt(c, tok_c));
}

BOOST_AUTO_TEST_CASE(ls_free_get_set_and_a_full_pool)
{
    shm_target t;
    expect_ok(run_tool({"create", "pool", t.name, "--type", "f32", "--capacity", "2"}), "");
    expect_ok(run_tool({"pool", "ls", t.name}), "");
    shmkit::pool<float> p(shmkit::open_only, t.path);
    const std::size_t mine = *p.alloc_set(1.5f);
    const auto [theirs, tok] = allocated(run_tool({"pool", "alloc", t.name, "--value", "-0.25"}));
    (void)tok;
    BOOST_TEST(p.get(theirs) == -0.25f);
    // ls: index, owner PID (0 once the tool's entry is gone), alive/dead, value.
    std::string expect;
    for (std::size_t i = 0; i < 2; ++i)
        expect += i == mine ? std::to_string(i) + "\t" + std::to_string(::getpid()) + "\talive\t1.5\n"
                            : std::to_string(i) + "\t0\tdead\t-0.25\n";
    expect_ok(run_tool({"pool", "ls", t.name}), expect);
    // Full: alloc does not wait without --timeout, gives up with it.
    expect_problem({"pool", "alloc", t.name}, "no free slot");
    expect_problem({"pool", "alloc", t.name, "--timeout", "20"}, "no free slot");
    // --auto-recover takes the dead tool's slot back.
    const auto [again, tok2] = allocated(run_tool({"pool", "alloc", t.name, "--auto-recover"}));
    (void)tok2;
    BOOST_TEST(again == theirs);
    expect_ok(run_tool({"pool", "set", t.name, std::to_string(mine), "8"}), "");
    BOOST_TEST(p.get(mine) == 8.0f);
    p.set(again, 3.25f);
    expect_ok(run_tool({"pool", "get", t.name, std::to_string(again)}), "3.25\n");
    // free: every slot given; one that was not allocated is exit 1 after the others are freed.
    expect_ok(run_tool({"pool", "free", t.name, std::to_string(mine)}), "");
    BOOST_TEST(!p.is_allocated(mine));
    expect_problem({"pool", "free", t.name, std::to_string(mine), std::to_string(again)}, "was not allocated");
    BOOST_TEST(p.used() == 0u);
    expect_problem({"pool", "free", t.name, "2"}, "range");
    expect_problem({"pool", "get", t.name, "0"}, "not allocated");
    expect_problem({"pool", "set", t.name, "0", "1"}, "not allocated");
}

BOOST_AUTO_TEST_CASE(str_and_raw_pools_take_values_from_arguments_or_stdin_binary_safe)
{
    shm_target s, r;
    expect_ok(run_tool({"create", "str_pool", s.name, "--capacity", "2", "--max-length", "600"}), "");
    expect_ok(run_tool({"create", "raw_pool", r.name, "--capacity", "2", "--size", "8"}), "");
    const std::string v = binary_value(600);
    const auto [i, ti] = allocated(run_tool({"pool", "alloc", s.name, "--value", "a\tb"}));
    (void)ti;
    expect_ok(run_tool({"pool", "ls", s.name}), std::to_string(i) + "\t0\tdead\ta\\tb\n");
    expect_ok(run_tool({"pool", "set", s.name, std::to_string(i)}, v), "");
    shmkit::str_pool sp(shmkit::open_only, s.path);
    BOOST_TEST((sp.get(i) == v));
    const auto g = run_tool({"pool", "get", s.name, std::to_string(i)});
    BOOST_TEST(g.status == 0);
    BOOST_TEST((g.out == v));
    expect_problem({"pool", "alloc", s.name, "--value", std::string(601, 'x')}, "maximum length");
    BOOST_TEST(sp.used() == 1u); // the refused alloc allocated nothing

    const auto [j, tj] = allocated(run_tool({"pool", "alloc", r.name, "--value", "ab"}));
    (void)tj;
    shmkit::raw_pool rp(shmkit::open_only, r.path);
    BOOST_TEST((rp.get(j) == std::string("ab\0\0\0\0\0\0", 8)));
    rp.set(j, std::string("\0\1\2\n", 4));
    const auto rg = run_tool({"pool", "get", r.name, std::to_string(j)});
    BOOST_TEST((rg.out == std::string("\0\1\2\n\0\0\0\0", 8)));
    expect_ok(run_tool({"pool", "ls", r.name}), std::to_string(j) + "\t0\tdead\n");
    expect_problem({"pool", "set", r.name, std::to_string(j), "123456789"}, std::to_string(9));
}

/// `shmkit pool alloc TARGET --hold` running with a pipe on its stdin.
struct holder {
    test::pipe_pair in, out;
    std::unique_ptr<test::child> proc;
    std::size_t index = 0;

    explicit holder(const std::string& target)
    {
        const std::string tool = test::tool_path();
        proc = std::make_unique<test::child>([&] {
            ::dup2(in.rd, 0);
            ::dup2(out.wr, 1);
            ::execl(tool.c_str(), tool.c_str(), "pool", "alloc", target.c_str(), "--hold", static_cast<char*>(nullptr));
            return 127;
        });
        ::close(in.rd);
        in.rd = -1;
        ::close(out.wr);
        out.wr = -1;
        // The index line, bounded (the hold starts after it).
        std::string line;
        for (;;) {
            struct pollfd p = {out.rd, POLLIN, 0};
            BOOST_TEST_REQUIRE(::poll(&p, 1, 60000) == 1);
            char c = 0;
            const ssize_t n = ::read(out.rd, &c, 1);
            BOOST_TEST_REQUIRE(n == 1);
            if (c == '\n') break;
            line += c;
        }
        index = std::stoul(line);
    }
    /// Ends the hold: closes the tool's stdin; returns its exit status.
    int release()
    {
        ::close(in.wr);
        in.wr = -1;
        return proc->wait();
    }
};

BOOST_AUTO_TEST_CASE(hold_owns_the_slot_while_the_tool_runs_and_frees_it_when_stdin_ends_or_on_sigterm)
{
    shm_target t;
    expect_ok(run_tool({"create", "pool", t.name, "--type", "i32", "--capacity", "2"}), "");
    shmkit::pool<std::int32_t> p(shmkit::open_only, t.path);
    {
        holder h(t.name);
        BOOST_TEST(p.is_allocated(h.index));
        BOOST_TEST(p.owner(h.index) == h.proc->pid());
        BOOST_TEST(p.recover_stale() == 0u); // a live owner
        expect_ok(run_tool({"pool", "ls", t.name}),
                  std::to_string(h.index) + "\t" + std::to_string(h.proc->pid()) + "\talive\t0\n");
        BOOST_TEST(h.release() == 0);
        BOOST_TEST(!p.is_allocated(h.index));
    }
    {
        holder h(t.name);
        BOOST_TEST(p.is_allocated(h.index));
        h.proc->kill(SIGTERM);
        BOOST_TEST(h.proc->wait() == 0);
        BOOST_TEST(!p.is_allocated(h.index));
    }
    {
        // Adopted by another process while held: the tool leaves it alone.
        holder h(t.name);
        BOOST_TEST(p.adopt(h.index, p.holder_token(h.index)));
        BOOST_TEST(h.release() == 0);
        BOOST_TEST(p.is_allocated(h.index));
        BOOST_TEST(p.owner(h.index) == ::getpid());
        BOOST_TEST(p.free(h.index));
    }
    {
        // Killed outright: a dead owner's slot, recovered as any.
        holder h(t.name);
        h.proc->kill(SIGKILL);
        BOOST_TEST(h.proc->wait() == 128 + SIGKILL);
        BOOST_TEST(p.is_allocated(h.index));
        BOOST_TEST(p.recover_stale() == 1u);
    }
}

BOOST_AUTO_TEST_CASE(a_signal_ends_a_hold_s_wait_for_a_slot_with_exit_1_and_nothing_allocated)
{
    shm_target t;
    expect_ok(run_tool({"create", "pool", t.name, "--type", "u16", "--capacity", "1"}), "");
    shmkit::pool<std::uint16_t> p(shmkit::open_only, t.path);
    holder first(t.name); // the only slot
    for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
        const std::string tool = test::tool_path();
        test::child waiter([&] {
            ::execl(tool.c_str(), tool.c_str(), "pool", "alloc", t.name.c_str(), "--hold", "--timeout", "600000",
                    static_cast<char*>(nullptr));
            return 127;
        });
        // The tool blocks its hold signals before it allocates: from then
        // on the signal is its to handle, not the default action's.
        BOOST_TEST_REQUIRE(test::until([&] { return runs_with_signal_blocked(waiter.pid(), tool, sig); },
                                       std::chrono::seconds(60)));
        waiter.kill(sig);
        BOOST_TEST(waiter.wait() == 1); // not the 10 minutes of its --timeout
        BOOST_TEST(p.used() == 1u);
        BOOST_TEST(p.owner(first.index) == first.proc->pid());
    }
    BOOST_TEST(first.release() == 0);
    BOOST_TEST(p.used() == 0u);
}

BOOST_AUTO_TEST_CASE(bad_command_lines_are_usage_errors_and_missing_pools_exit_1)
{
    shm_target t, b;
    expect_ok(run_tool({"create", "pool", t.name, "--type", "u8", "--capacity", "2"}), "");
    for (const args& a : {args{"pool"}, args{"pool", "frob", t.name}, args{"pool", "alloc"},
                          args{"pool", "alloc", t.name, "extra"}, args{"pool", "free", t.name},
                          args{"pool", "free", t.name, "x"}, args{"pool", "get", t.name},
                          args{"pool", "ls", t.name, "--timeout", "5"}, args{"pool", "alloc", t.name, "--timeout", "x"},
                          args{"pool", "alloc", t.name, "--token", "--hold"},
                          args{"pool", "alloc", t.name, "--value", "256"}, args{"pool", "alloc", t.name, "--value", "-1"},
                          args{"pool", "set", t.name, "0"}, args{"pool", "recover", t.name, "1"}})
        expect_usage(a);
    BOOST_TEST(shmkit::pool<std::uint8_t>(shmkit::open_only, t.path).used() == 0u);
    shm_target missing;
    for (const char* act : {"alloc", "ls", "recover"}) expect_problem({"pool", act, missing.name}, missing.path);
    expect_problem({"pool", "free", missing.name, "0"}, missing.path);
    BOOST_TEST(!exists(missing.path));
    expect_ok(run_tool({"create", "buffer", b.name, "--type", "u8", "--capacity", "2"}), "");
    expect_problem({"pool", "ls", b.name}, "kind");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(kv)

BOOST_AUTO_TEST_CASE(put_and_get_are_binary_safe_both_ways_with_the_library)
{
    kv_target k;
    expect_ok(run_tool({"kv", "put", k.name, "plain", "hello", "--create"}), "");
    const std::string big = binary_value(200000);
    expect_ok(run_tool({"kv", "put", k.name, "big"}, big), "");
    expect_ok(run_tool({"kv", "put", k.name, "empty", ""}), "");
    {
        shmkit::kv_store kv(k.name);
        BOOST_TEST(kv.get("plain").value_or("") == "hello");
        BOOST_TEST((kv.get("big").value_or("") == big));
        BOOST_TEST(kv.contains("empty"));
        BOOST_TEST(kv.get("empty").value_or("x") == "");
        kv.put("from-lib", std::string("\0\n\0", 3));
    }
    const auto g = run_tool({"kv", "get", k.name, "big"});
    BOOST_TEST(g.status == 0);
    BOOST_TEST((g.out == big));
    expect_ok(run_tool({"kv", "get", "/" + k.name, "from-lib"}), std::string("\0\n\0", 3));
    expect_ok(run_tool({"kv", "get", k.name, "empty"}), "");
    // Keys that look like options or numbers, after "--" or as negative numbers.
    expect_ok(run_tool({"kv", "put", k.name, "--", "--key", "-v"}), "");
    expect_ok(run_tool({"kv", "put", k.name, "-1", "-2"}), "");
    shmkit::kv_store kv(k.name);
    BOOST_TEST(kv.get("--key").value_or("") == "-v");
    BOOST_TEST(kv.get("-1").value_or("") == "-2");
}

BOOST_AUTO_TEST_CASE(absent_keys_and_missing_stores_are_exit_1_and_nothing_is_created)
{
    kv_target k;
    expect_problem({"kv", "get", k.name, "a"}, k.name);
    expect_problem({"kv", "put", k.name, "a", "1"}, k.name); // no --create
    expect_problem({"kv", "erase", k.name, "a"}, k.name);
    expect_problem({"kv", "dump", k.name}, k.name);
    expect_problem({"kv", "check", k.name}, k.name);
    BOOST_TEST(!k.exists());
    expect_ok(run_tool({"kv", "put", k.name, "a", "1", "--create", "--mode", "640"}), "");
    BOOST_TEST(mode_of("/dev/shm/" + k.name) == 0640u);
    const auto r = run_tool({"kv", "get", k.name, "b\nc"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(r.err.find("no key 'b\\nc'") != std::string::npos);
    expect_ok(run_tool({"kv", "erase", k.name, "a"}), "");
    BOOST_TEST(!shmkit::kv_store(k.name).contains("a"));
    expect_problem({"kv", "erase", k.name, "a"}, "no key 'a'");
    // A name holding something else is refused.
    shm_target t;
    expect_ok(run_tool({"create", "buffer", t.name, "--type", "u8", "--capacity", "2"}), "");
    expect_problem({"kv", "get", t.name, "a"}, t.name);
}

BOOST_AUTO_TEST_CASE(dump_escapes_every_byte_unambiguously_in_both_formats)
{
    kv_target k;
    {
        shmkit::kv_store kv(k.name);
        kv.put("b", std::string("x\0y\tz\n\\\x7f\xff\"", 10));
        kv.put("a key", "plain");
        kv.put(std::string("\x01k", 2), "");
    }
    expect_ok(run_tool({"kv", "dump", k.name}),
              "\\x01k\t\n"
              "a key\tplain\n"
              "b\tx\\x00y\\tz\\n\\\\\\x7f\\xff\"\n");
    expect_ok(run_tool({"kv", "dump", k.name, "--json"}),
              "{\n"
              "  \"\\u0001k\": \"\",\n"
              "  \"a key\": \"plain\",\n"
              "  \"b\": \"x\\u0000y\\tz\\n\\\\\\u007f\\u00ff\\\"\"\n"
              "}\n");
    kv_target empty;
    expect_ok(run_tool({"create", "kv", empty.name}), "");
    expect_ok(run_tool({"kv", "dump", empty.name}), "");
    expect_ok(run_tool({"kv", "dump", empty.name, "--json"}), "{}\n");
}

BOOST_AUTO_TEST_CASE(check_reports_a_sound_store)
{
    kv_target k;
    {
        shmkit::kv_store kv(k.name);
        for (int i = 0; i < 1000; ++i) kv.put("key:" + std::to_string(i), std::string(i % 70, 'v'));
    }
    expect_ok(run_tool({"kv", "check", k.name}), "/" + k.name + ": ok, 1000 keys\n");
}

BOOST_AUTO_TEST_CASE(bad_command_lines_are_usage_errors)
{
    kv_target k;
    expect_ok(run_tool({"create", "kv", k.name}), "");
    for (const args& a : {args{"kv"}, args{"kv", "frob", k.name}, args{"kv", "get", k.name},
                          args{"kv", "get", k.name, "a", "b"}, args{"kv", "put", k.name}, args{"kv", "dump"},
                          args{"kv", "check", k.name, "x"}, args{"kv", "get", k.name, "a", "--json"},
                          args{"kv", "get", k.name, "a", "--create"}, args{"kv", "put", k.name, "a", "--mode", "600"},
                          args{"kv", "put", k.name, "a", "b", "--create", "--mode", "8"}, args{"kv", "get", "a/b", "k"},
                          args{"kv", "get", "", "k"}, args{"kv", "get", k.name, "-k"}})
        expect_usage(a);
    BOOST_TEST(shmkit::kv_store(k.name).size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(messages_and_output)

BOOST_AUTO_TEST_CASE(output_that_cannot_be_written_is_exit_1_with_the_reason)
{
    kv_target k;
    shm_target b;
    expect_ok(run_tool({"kv", "put", k.name, "key", "value", "--create"}), "");
    expect_ok(run_tool({"create", "buffer", b.name, "--type", "u32", "--capacity", "4"}), "");
    for (const args& a : {args{"kv", "get", k.name, "key"}, args{"kv", "dump", k.name}, args{"buffer", "get", b.name, "0"},
                          args{"ls"}, args{"--version"}}) {
        BOOST_TEST_INFO("shmkit " << a.front() << (a.size() > 1 ? " " + a[1] : std::string()));
        std::string err;
        BOOST_TEST(run_tool_into_dev_full(a, err) == 1);
        BOOST_TEST(err.find("No space left on device") != std::string::npos, "stderr: " << err);
    }
}

BOOST_AUTO_TEST_CASE(names_in_error_messages_cannot_be_terminal_escape_sequences)
{
    const std::string hostile = "./\x1b\x1b]0;owned\x07\n";
    for (const args& a : {args{"info", hostile}, args{"check", hostile}, args{"stats", hostile}, args{"rm", hostile},
                          args{"buffer", "get", hostile, "0"}, args{"kv", "get", "\x1b]0;owned\x07", "k"},
                          args{"info", "/\x1b]0;" + std::string(300, 'x')}}) {
        const auto r = run_tool(a);
        BOOST_TEST_INFO("shmkit " << a.front());
        BOOST_TEST((r.status == 1 || r.status == 2));
        BOOST_TEST(!r.err.empty());
        BOOST_TEST(r.err.find('\x1b') == std::string::npos, "stderr: " << r.err);
        BOOST_TEST(r.err.find('\x07') == std::string::npos);
        BOOST_TEST(r.err.find("\\x1b") != std::string::npos, "stderr: " << r.err); // escaped, still readable
        BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);      // one line
    }
}

BOOST_AUTO_TEST_CASE(counts_seeds_and_float_values_take_no_wrapped_or_doubled_signs)
{
    for (const args& a : {args{"watch", "x", "--count=-1"}, args{"watch", "x", "--count", "0x"},
                          args{"bench", "--procs=-1"}, args{"bench", "--runs", "-1"}, args{"bench", "--runs", "1001"},
                          args{"bench", "--procs", "99999999999999999999"}, args{"bench", "--time", "inf"},
                          args{"demo", "--seed=-1"}, args{"demo", "--seed", "12abc"}})
        expect_usage(a);
    shm_target f;
    expect_ok(run_tool({"create", "buffer", f.name, "--type", "f64", "--capacity", "1"}), "");
    expect_ok(run_tool({"buffer", "set", f.name, "0", "+2.5"}), "");
    for (const char* v : {"+-5", "-+5", "++5", "--5", "+", "+ 5"}) expect_usage({"buffer", "set", f.name, "0", v});
    expect_ok(run_tool({"buffer", "get", f.name, "0"}), "2.5\n");
}

BOOST_AUTO_TEST_SUITE_END()
