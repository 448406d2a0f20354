// Race-free creation: many processes racing open_or_create on one name.
#define BOOST_TEST_MODULE creation_race
#include "support.hpp"

#include <shmkit/segment.hpp>

#include <atomic>
#include <cstring>

using namespace std::chrono_literals;
using shmkit::segment;

namespace {

constexpr int racers = 8;
constexpr int rounds = 20;

shmkit::segment_layout layout()
{
    shmkit::segment_layout l;
    l.data_size = 1 << 16;
    l.n_rwlocks = 1;
    l.attach_capacity = 16;
    return l;
}

struct tally {
    std::atomic<int> created;
    std::atomic<int> opened;
    std::atomic<int> saw_uninitialised;
};

/// Starts `racers` children blocked on one pipe; closing the write end
/// releases them all at once. Each runs `open` and records what it saw.
void race(const std::function<segment()>& open, tally* t)
{
    test::pipe_pair gate;
    std::vector<test::child> kids;
    for (int i = 0; i < racers; ++i)
        kids.emplace_back([&] {
            ::close(gate.wr);
            gate.receive(); // EOF when the parent closes the gate
            segment s = open();
            const auto* data = static_cast<const unsigned char*>(s.data());
            // The initialiser fills the payload with 0xAB: nobody may see
            // a segment whose payload is not initialised yet.
            for (std::size_t i = 0; i < s.data_size(); i += 512)
                if (data[i] != 0xAB) t->saw_uninitialised.fetch_add(1);
            (s.created() ? t->created : t->opened).fetch_add(1);
            return 0;
        });
    ::close(gate.wr);
    gate.wr = -1;
    for (auto& k : kids) BOOST_TEST(k.wait() == 0);
}

void fill(void* p, std::size_t n) { std::memset(p, 0xAB, n); }

} // namespace

BOOST_AUTO_TEST_CASE(file_open_or_create_race)
{
    tally* t = test::shared_scratch<tally>();
    for (int round = 0; round < rounds; ++round) {
        test::scratch_dir dir;
        const std::string path = dir / "raced";
        new (t) tally{};
        race([&] { return segment::file(shmkit::open_or_create, path, layout(), fill); }, t);
        BOOST_TEST_CONTEXT("round " << round)
        {
            BOOST_TEST(t->created.load() == 1);
            BOOST_TEST(t->opened.load() == racers - 1);
            BOOST_TEST(t->saw_uninitialised.load() == 0);
        }
        // Nothing but the segment is left in the directory.
        BOOST_TEST(test::read_file(path).size() == layout().total_size());
    }
}

BOOST_AUTO_TEST_CASE(posix_open_or_create_race)
{
    tally* t = test::shared_scratch<tally>();
    for (int round = 0; round < rounds; ++round) {
        test::shm_name name("race");
        new (t) tally{};
        race([&] { return segment::posix(shmkit::open_or_create, name.str(), layout(), fill); }, t);
        BOOST_TEST_CONTEXT("round " << round)
        {
            BOOST_TEST(t->created.load() == 1);
            BOOST_TEST(t->opened.load() == racers - 1);
            BOOST_TEST(t->saw_uninitialised.load() == 0);
        }
    }
}

BOOST_AUTO_TEST_CASE(creator_killed_during_initialisation_leaves_nothing)
{
    // The creator stops inside its initialiser and is killed there. The name
    // must not exist (nothing to wait for, nothing wedged), and the next
    // opener creates the segment afresh.
    test::scratch_dir dir;
    const std::string path = dir / "seg";
    test::pipe_pair inside;
    test::pipe_pair never;
    test::child creator([&] {
        segment::file(shmkit::open_or_create, path, layout(), [&](void* p, std::size_t n) {
            std::memset(p, 0x11, n / 2);
            inside.send();
            never.receive(); // blocks until killed
        });
        return 0;
    });
    BOOST_REQUIRE_EQUAL(inside.receive(30s), 'x');
    creator.kill();
    BOOST_TEST(creator.wait() == 128 + SIGKILL);
    BOOST_TEST(::access(path.c_str(), F_OK) != 0);
    segment s = segment::file(shmkit::open_or_create, path, layout(), fill);
    BOOST_TEST(s.created());
    BOOST_TEST(static_cast<unsigned char*>(s.data())[0] == 0xAB);
}

BOOST_AUTO_TEST_CASE(failing_initialiser_publishes_nothing)
{
    test::scratch_dir dir;
    const std::string path = dir / "seg";
    BOOST_CHECK_THROW(segment::file(shmkit::create_only, path, layout(),
                                    [](void*, std::size_t) { throw std::runtime_error("no"); }),
                      std::runtime_error);
    BOOST_TEST(::access(path.c_str(), F_OK) != 0);
}
