// Threads of one process sharing a kv_store handle (also run under
// ThreadSanitizer): lookups stay right while other threads of the same
// handle grow the table, so a table one thread reads is never unmapped by
// another; writers of the same handle serialise on the lock.
#define BOOST_TEST_MODULE kv_threads
#include "support.hpp"

#include <shmkit/kv_store.hpp>

#include <atomic>
#include <thread>

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int per_writer = 4000;
#else
constexpr int per_writer = 40000;
#endif

std::string key(int w, int i) { return "w" + std::to_string(w) + ":" + std::to_string(i); }
std::string value(int w, int i) { return std::string(std::size_t(i % 70), char('a' + w)) + std::to_string(i); }

struct store_name {
    std::string name = "shmkit-test-kv-threads-" + std::to_string(::getpid());
    ~store_name() { shmkit::kv_store::remove(name); }
};

} // namespace

BOOST_AUTO_TEST_CASE(readers_and_writers_sharing_a_handle_while_it_grows)
{
    store_name n;
    shmkit::kv_store s(n.name);
    std::atomic<int> committed[2] = {{-1}, {-1}};
    std::atomic<int> wrong{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> ts;
    for (int w = 0; w < 2; ++w)
        ts.emplace_back([&, w] {
            for (int i = 0; i < per_writer; ++i) {
                s.put(key(w, i), value(w, i));
                committed[w].store(i, std::memory_order_release);
                if (i % 97 == 0 && !s.erase(key(w, i))) ++wrong; // and back
                if (i % 97 == 0) s.put(key(w, i), value(w, i));
            }
        });
    for (int r = 0; r < 2; ++r)
        ts.emplace_back([&, r] {
            std::string out;
            unsigned x = 12345u + unsigned(r);
            while (!done.load()) {
                const int w = int(x & 1);
                const int c = committed[w].load(std::memory_order_acquire);
                x = x * 1103515245u + 12345u;
                if (c < 0) continue;
                const int i = int(x % unsigned(c + 1));
                if (i % 97 == 0) continue; // erased and put back: may be absent for a moment
                if (!s.get(key(w, i), out) || out != value(w, i)) ++wrong;
            }
        });
    ts[0].join();
    ts[1].join();
    done.store(true);
    ts[2].join();
    ts[3].join();
    BOOST_TEST(wrong.load() == 0);
    BOOST_TEST(s.size() == std::size_t(2 * per_writer));
    std::string why;
    BOOST_TEST(s.check(&why), why);
    BOOST_TEST(s.stats().grows > 3u);
}

BOOST_AUTO_TEST_CASE(visits_and_clears_from_several_threads)
{
    store_name n;
    shmkit::kv_store s(n.name);
    std::atomic<int> wrong{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t)
        ts.emplace_back([&, t] {
            for (int round = 0; round < 30; ++round) {
                for (int i = 0; i < 200; ++i) s.put(key(t, i), value(t, i));
                s.visit([&](std::string_view k, std::string_view v) {
                    // Every entry seen is one some thread wrote for that key.
                    const auto colon = k.find(':');
                    if (colon == std::string_view::npos) { ++wrong; return; }
                    const int w = std::stoi(std::string(k.substr(1, colon - 1)));
                    const int i = std::stoi(std::string(k.substr(colon + 1)));
                    if (v != value(w, i)) ++wrong;
                });
                if (round % 10 == 9) s.clear();
            }
        });
    for (auto& t : ts) t.join();
    BOOST_TEST(wrong.load() == 0);
    std::string why;
    BOOST_TEST(s.check(&why), why);
}
