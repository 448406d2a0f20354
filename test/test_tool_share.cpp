// `shmkit share`: fetch/store binary-safe through stdin/stdout, version,
// rm, exit codes and messages; and the tool's global --help, --version and
// usage errors.
#define BOOST_TEST_MODULE tool_share
#include "tool_support.hpp"

#include <shmkit/share.hpp>

namespace {

struct key_guard {
    key_t key = test::unique_key(0x5e);
    key_guard() { shmkit::share::remove(key); }
    ~key_guard()
    {
        shmkit::share::remove(key);
        shmkit::share::remove(key, shmkit::share_backend::sharelite);
    }
    std::string str() const { return std::to_string(key); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(global)

BOOST_AUTO_TEST_CASE(help_lists_the_commands_and_exit_codes_and_version_prints_the_version)
{
    const auto h = test::run_tool({"--help"});
    BOOST_TEST(h.status == 0);
    BOOST_TEST(h.out.find("share") != std::string::npos);
    BOOST_TEST(h.out.find("exit status") != std::string::npos);
    const auto v = test::run_tool({"--version"});
    BOOST_TEST(v.status == 0);
    BOOST_TEST(v.out == std::string("shmkit ") + SHMKIT_VERSION_STRING + "\n");
}

BOOST_AUTO_TEST_CASE(no_command_an_unknown_command_or_a_bad_option_is_a_usage_error_on_stderr)
{
    const key_guard k; // what a store below would wrongly create
    for (const std::vector<std::string>& a :
         {std::vector<std::string>{}, {"frobnicate"}, {"--bogus"}, {"share"}, {"share", "fetch"}, {"share", "frob", "1"},
          {"share", "fetch", "abcde"}, {"share", "fetch", "1", "--backend", "sysv"},
          // A hexadecimal key is digits alone: no blank, no sign.
          {"share", "fetch", "0x 1"}, {"share", "fetch", "0x+1"}, {"share", "fetch", "0x-0"}, {"share", "fetch", "0x1 "},
          {"share", "fetch", "0x100000000"}, {"share", "store", k.str(), "--create", "--mode", "xyz"},
          {"share", "store", k.str(), "--create", "--mode", "+600"},
          {"share", "store", k.str(), "--create", "--mode", " 600"},
          {"share", "store", k.str(), "--create", "--mode", "1000"}}) {
        const auto r = test::run_tool(a);
        BOOST_TEST(r.status == 2);
        BOOST_TEST(r.out.empty());
        BOOST_TEST(!r.err.empty());
    }
    BOOST_TEST(!shmkit::share::remove(k.key)); // none was created
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(share)

BOOST_AUTO_TEST_CASE(store_then_fetch_round_trips_binary_bytes_and_counts_versions)
{
    for (const auto backend : {"native", "sharelite"}) {
        key_guard k;
        std::string value(100000, '\0');
        for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 31 + 7);
        BOOST_TEST(test::run_tool({"share", "store", k.str(), "--create", "--backend", backend}, value).status == 0);
        const auto f = test::run_tool({"share", "fetch", k.str(), "--backend", backend});
        BOOST_TEST(f.status == 0);
        BOOST_TEST((f.out == value));
        const auto v = test::run_tool({"share", "version", k.str(), "--backend", backend});
        BOOST_TEST(v.out == "2\n");
        // The library sees what the tool stored.
        shmkit::share_options o;
        o.backend = std::string(backend) == "native" ? shmkit::share_backend::native : shmkit::share_backend::sharelite;
        BOOST_TEST((shmkit::share(k.key, o).fetch() == value));
    }
}

BOOST_AUTO_TEST_CASE(a_hexadecimal_key_names_the_same_share_as_its_decimal_value)
{
    key_guard k;
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(k.key));
    BOOST_TEST(test::run_tool({"share", "store", hex, "--create"}, "by hex").status == 0);
    const auto f = test::run_tool({"share", "fetch", k.str()});
    BOOST_TEST(f.status == 0);
    BOOST_TEST(f.out == "by hex");
}

BOOST_AUTO_TEST_CASE(a_missing_share_is_exit_1_with_a_message_naming_it_and_rm_removes)
{
    key_guard k;
    const auto f = test::run_tool({"share", "fetch", k.str()});
    BOOST_TEST(f.status == 1);
    BOOST_TEST(f.err.find("no such share") != std::string::npos);
    BOOST_TEST(test::run_tool({"share", "store", k.str()}, "x").status == 1); // no --create
    BOOST_TEST(test::run_tool({"share", "store", k.str(), "--create", "--mode", "640"}, "x").status == 0);
    BOOST_TEST(test::run_tool({"share", "rm", k.str()}).status == 0);
    BOOST_TEST(test::run_tool({"share", "rm", k.str()}).status == 1);
}

BOOST_AUTO_TEST_SUITE_END()
