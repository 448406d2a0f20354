// shmkit demo: worker processes share a buffer, a pool, a kv_store and a
// share; one is SIGKILLed in the middle of its work; the others recover
// what it held; every total is verified; an account is printed.
//
// The parts: demo_plan.hpp (names, the round, the ledger), demo_segments
// (creating and removing the structures), demo_worker (a worker's rounds),
// demo_crew (forking, the kill, reaping), demo_verify (the checks).
#include "command.hpp"
#include "data_common.hpp"
#include "demo_crew.hpp"
#include "demo_plan.hpp"
#include "demo_segments.hpp"
#include "demo_verify.hpp"
#include "parse.hpp"

#include <boost/program_options.hpp>

#include <iostream>
#include <random>

#include <unistd.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const demo_help =
    "usage: shmkit demo [options]\n\n"
    "Forks worker processes that use a buffer, a pool, a kv_store and a share at once,\n"
    "SIGKILLs one of them in the middle of its work, lets the others recover what it\n"
    "held, then verifies every total and prints an account of it.\n\n"
    "Each worker does --rounds rounds of: take a pool slot (the pool has half as many\n"
    "slots as there are workers), take the share's exclusive lock, record the round in\n"
    "the kv_store, add 1 to the share's counter, release the lock, free the slot, and\n"
    "count the round in the buffer (lock-free). The survivors wait at half their rounds\n"
    "until the victim, picked by the seed, is dead; it works on until then. The parent\n"
    "freezes it (SIGSTOP) at random instants after it enters its critical section, and\n"
    "SIGKILLs it there once a freeze finds it still inside (its phase word says so).\n"
    "The checks never depend on timing: only where the kill lands does.\n\n"
    "The structures live in /dev/shm under names starting with shmkit-demo-<pid>- and\n"
    "shmkit.share.0x<key> (printed); they are removed at the end, also after an error\n"
    "or Ctrl-C.\n\n"
    "exit status: 0 every check passed, 1 a check failed (each is printed on stderr) or\n"
    "an error, 2 usage error\n";

} // namespace

int run_demo(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    int workers = 4, rounds = 2000;
    opts.add_options()("help,h", "this text")("workers", po::value(&workers), "worker processes, 2 to 64 (default 4)")(
        "rounds", po::value(&rounds), "rounds per worker, 2 to 1000000 (default 2000)")(
        "seed", po::value<std::string>()->value_name("N"), "chooses the victim, its round and the freezes' delays (default: random)")(
        "quiet,q", "print only the last line (and, on stderr, what failed)");
    const parsed_args cmdline = parse_command_args(a, opts); // no operand: a stray argument is an error, not ignored
    if (cmdline.help) {
        out << demo_help << "\n" << opts;
        return exit_ok;
    }
    if (workers < 2 || workers > 64) throw usage_error("demo: --workers must be 2 to 64");
    if (rounds < 2 || rounds > 1000000) throw usage_error("demo: --rounds must be 2 to 1000000");
    const bool quiet = cmdline.vm.count("quiet") > 0;

    demo::plan p;
    p.workers = workers;
    p.rounds = rounds;
    p.seed = cmdline.vm.count("seed") ? parse_unsigned(cmdline.vm["seed"].as<std::string>(), "demo: --seed")
                                      : (std::uint64_t{std::random_device{}()} << 32 | std::random_device{}());
    p.prefix = "shmkit-demo-" + std::to_string(::getpid()) + "-";
    std::mt19937_64 rng(p.seed);
    p.victim = std::uniform_int_distribution<int>(0, workers - 1)(rng);
    const int steps = (p.half() - 1) / p.report_every();
    p.kill_round = p.report_every() * std::uniform_int_distribution<int>(0, steps)(rng);

    demo::outcome o;
    std::vector<std::string> left;
    try {
        demo::signal_scope signals;
        demo::segments s(p);
        if (!quiet) {
            out << "shmkit demo: " << workers << " worker processes share a buffer, a pool, a kv_store and a share"
                << " (seed " << p.seed << ")\n"
                << "  segments:  /dev/shm/" << p.prefix << "* and /dev/shm/" << p.share_name() << "*\n"
                << "  a round:   take a pool slot (" << p.pool_capacity() << " for " << workers
                << " workers), lock the share, record the round in the kv_store,\n"
                << "             add 1 to the share's counter, unlock, free the slot, count the round in the buffer\n"
                << "  plan:      each worker does " << rounds << " rounds; worker " << p.victim
                << ", picked by the seed, works on until it is killed\n";
        }
        out.flush();
        err.flush();
        demo::crew c(p, s);
        c.start();
        const demo::kill_record k = c.kill(rng);
        c.finish();
        o = demo::verify(p, s, k, c.workers());
        left = s.remove();
        if (!quiet) {
            const auto section = [&](const char* title, const std::vector<std::string>& lines) {
                for (std::size_t i = 0; i < lines.size(); ++i) out << "  " << (i ? "           " : title) << lines[i] << "\n";
            };
            section("killed:    ", o.killed);
            section("recovered: ", o.recovered);
            // What was verified, if it was: a failure is said on stderr instead.
            if (left.empty()) o.verified.push_back("segments: all removed from /dev/shm");
            if (o.failures.empty() && left.empty()) section("verified:  ", o.verified);
        }
    } catch (const std::exception& e) {
        // The guards have run: the workers are reaped, the segments removed.
        err << "shmkit demo: " << e.what() << " (workers stopped, segments removed)\n";
        return exit_problem;
    }
    for (const std::string& n : left) o.failures.push_back("left in /dev/shm after removal: " + n + " (unlinked now)");
    for (const std::string& f : o.failures) err << "shmkit demo: FAILED: " << f << "\n";
    if (!o.failures.empty()) {
        out << "demo FAILED: " << o.failures.size() << (o.failures.size() == 1 ? " check" : " checks")
            << " failed (see stderr); seed " << p.seed << "\n";
        return exit_problem;
    }
    out << "nothing was lost: " << o.committed << " committed rounds, every one accounted for; segments removed\n";
    return exit_ok;
}

static const registrar reg{{"demo", "run workers on every structure, SIGKILL one, verify the recovery", run_demo}};

} // namespace shmkit_tool
