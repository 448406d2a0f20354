// `shmkit demo`: it passes (exit 0, "nothing was lost") and its account
// names the killed worker and the recovery, with the default settings, with
// two workers and few rounds, and with several seeds; it leaves nothing in
// /dev/shm, also when it is interrupted; --help; usage errors.
#define BOOST_TEST_MODULE tool_demo
#include "tool_support.hpp"

#include <dirent.h>

#include <algorithm>
#include <optional>
#include <regex>

namespace {

/// The name prefixes the demo printed ("segments: /dev/shm/A* and /dev/shm/B*").
std::vector<std::string> prefixes_of(const std::string& out)
{
    std::vector<std::string> found;
    const std::regex seg(R"(/dev/shm/([^*\s]+)\*)");
    for (std::sregex_iterator i(out.begin(), out.end(), seg), e; i != e; ++i) found.push_back((*i)[1]);
    return found;
}

/// Names in /dev/shm starting with any of `prefixes`; nothing if /dev/shm
/// cannot be read.
std::optional<std::vector<std::string>> in_dev_shm(const std::vector<std::string>& prefixes)
{
    DIR* d = ::opendir("/dev/shm");
    if (!d) return std::nullopt;
    std::vector<std::string> found;
    while (const dirent* e = ::readdir(d))
        for (const std::string& p : prefixes)
            if (std::string(e->d_name).rfind(p, 0) == 0) found.push_back(e->d_name);
    ::closedir(d);
    return found;
}

/// Names in /dev/shm starting with any of `prefixes`.
std::vector<std::string> left_behind(const std::vector<std::string>& prefixes)
{
    auto left = in_dev_shm(prefixes);
    BOOST_REQUIRE(left);
    return *left;
}

/// On scope exit, removes what is left in /dev/shm under the names a demo
/// printed in `out` (only names of the demo's own: shmkit-demo-<pid>- and
/// its share's shmkit.share.KEY). A passing demo has removed them itself;
/// this is for a failed or killed one, so that a failure leaves nothing.
struct remove_leftovers {
    const std::string& out;
    ~remove_leftovers()
    {
        std::vector<std::string> ours;
        for (const std::string& p : prefixes_of(out))
            if (p.rfind("shmkit-demo-", 0) == 0 || p.rfind("shmkit.share.", 0) == 0) ours.push_back(p);
        if (ours.empty()) return;
        for (const std::string& n : in_dev_shm(ours).value_or(std::vector<std::string>{}))
            ::unlink(("/dev/shm/" + n).c_str());
    }
};

std::string last_line(const std::string& s)
{
    const std::size_t end = s.find_last_not_of('\n');
    if (end == std::string::npos) return "";
    const std::size_t begin = s.rfind('\n', end);
    return s.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
}

/// A successful run: exit 0, the last line, the killed worker named (the
/// one the plan picked), a recovery, every check listed, nothing left.
void check_success(const test::tool_result& r)
{
    const remove_leftovers cleanup{r.out};
    BOOST_TEST_INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.err.empty());
    BOOST_TEST(last_line(r.out).rfind("nothing was lost: ", 0) == 0);

    std::smatch planned, killed;
    BOOST_TEST(std::regex_search(r.out, planned, std::regex(R"(plan: .*; worker (\d+), picked by the seed)")));
    BOOST_TEST(std::regex_search(r.out, killed, std::regex(R"(killed: +worker (\d+) \(pid \d+\), frozen by SIGSTOP)")));
    if (!planned.empty() && !killed.empty()) BOOST_TEST(planned[1].str() == killed[1].str());
    BOOST_TEST(r.out.find("recovered: share lock: ") != std::string::npos);
    for (const char* line : {"verified:  buffer: ", "share: counter ", "no increment lost", "kv_store: all ",
                             "pool: 0 of ", "locks: share, kv_store, buffer all free", "segments: all removed"})
        BOOST_TEST(r.out.find(line) != std::string::npos, "missing: " << line);

    const auto prefixes = prefixes_of(r.out);
    BOOST_TEST(prefixes.size() == 2u);
    BOOST_TEST(prefixes_of(r.out).front().rfind("shmkit-demo-", 0) == 0);
    const auto left = left_behind(prefixes);
    BOOST_TEST(left.empty(), "left in /dev/shm: " << (left.empty() ? "" : left.front()));
}

} // namespace

BOOST_AUTO_TEST_CASE(the_default_demo_kills_a_worker_shows_the_recovery_and_loses_nothing)
{
    const auto r = test::run_tool({"demo"});
    check_success(r);
    // Within the promised size of the account.
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') <= 25);
}

BOOST_AUTO_TEST_CASE(two_workers_and_few_rounds)
{
    for (const char* rounds : {"2", "3", "10"})
        check_success(test::run_tool({"demo", "--workers", "2", "--rounds", rounds}));
}

BOOST_AUTO_TEST_CASE(several_seeds_and_crew_sizes)
{
    for (int seed = 1; seed <= 6; ++seed) {
        const std::string workers = std::to_string(2 + seed % 4);
        const auto r = test::run_tool({"demo", "--seed", std::to_string(seed), "--workers", workers, "--rounds", "200"});
        check_success(r);
        BOOST_TEST(r.out.find("(seed " + std::to_string(seed) + ")") != std::string::npos);
    }
    // The seed picks the victim.
    const auto a = test::run_tool({"demo", "--seed", "77", "--rounds", "50"});
    const auto b = test::run_tool({"demo", "--seed", "77", "--rounds", "50"});
    check_success(a);
    check_success(b);
    std::smatch ma, mb;
    const std::regex picked(R"(worker (\d+), picked by the seed)");
    BOOST_TEST((std::regex_search(a.out, ma, picked) && std::regex_search(b.out, mb, picked) && ma[1] == mb[1]));
}

BOOST_AUTO_TEST_CASE(quiet_prints_only_the_last_line)
{
    const auto r = test::run_tool({"demo", "--quiet", "--rounds", "100"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    BOOST_TEST(r.out.rfind("nothing was lost: ", 0) == 0);
}

BOOST_AUTO_TEST_CASE(an_interrupted_demo_stops_its_workers_and_removes_its_segments)
{
    // A long run, interrupted once it has printed its segments' names.
    std::string text;
    const remove_leftovers cleanup{text};
    const int status = test::run_then_signal({"demo", "--rounds", "1000000", "--workers", "3"}, "plan:", SIGTERM, text,
                                             std::chrono::seconds(120));
    BOOST_TEST_INFO("stdout and stderr:\n" << text);
    BOOST_TEST((status == 0 || status == 1), "exit status " << status); // -1: it overran and was killed
    if (status != 0) // (0 only if it had finished first)
        BOOST_TEST(text.find("shmkit demo: interrupted by SIGTERM (workers stopped, segments removed)") != std::string::npos);
    const auto prefixes = prefixes_of(text);
    BOOST_REQUIRE(prefixes.size() == 2u);
    BOOST_TEST(left_behind(prefixes).empty());
}

BOOST_AUTO_TEST_CASE(help_describes_it_and_names_the_segments)
{
    const auto h = test::run_tool({"demo", "--help"});
    BOOST_TEST(h.status == 0);
    BOOST_TEST(h.out.find("usage: shmkit demo") != std::string::npos);
    BOOST_TEST(h.out.find("shmkit-demo-<pid>-") != std::string::npos);
    BOOST_TEST(h.out.find("--workers") != std::string::npos);
    BOOST_TEST(h.out.find("--seed") != std::string::npos);
    const auto g = test::run_tool({"--help"});
    BOOST_TEST(g.out.find("demo") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_options_are_usage_errors)
{
    for (const std::vector<std::string>& a :
         {std::vector<std::string>{"demo", "--workers", "1"}, {"demo", "--workers", "65"}, {"demo", "--workers", "x"},
          {"demo", "--rounds", "1"}, {"demo", "--rounds", "2000001"}, {"demo", "--seed", "seven"}, {"demo", "--bogus"},
          {"demo", "extra"}, {"demo", "--rounds"}}) {
        const auto r = test::run_tool(a);
        BOOST_TEST_INFO(a.back());
        BOOST_TEST(r.status == 2);
        BOOST_TEST(r.out.empty());
        BOOST_TEST(!r.err.empty());
    }
}
