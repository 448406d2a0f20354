// Threads of one process sharing a pool handle (also run under
// ThreadSanitizer): allocation never hands one slot to two threads, blocked
// allocs are woken by other threads' frees, and batches stay all-or-nothing.
#define BOOST_TEST_MODULE pool_threads
#include "support.hpp"

#include <shmkit/pool.hpp>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;

namespace {
constexpr int threads = 4;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int rounds = 5000;
#else
constexpr int rounds = 50000;
#endif
} // namespace

BOOST_AUTO_TEST_CASE(threads_sharing_a_handle_never_share_a_slot)
{
    auto p = shmkit::pool<std::int64_t>::anonymous(8);
    std::atomic<int> violations{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (int k = 0; k < rounds; ++k) {
                const auto i = p.alloc(10s);
                if (!i) {
                    ++violations;
                    return;
                }
                const std::int64_t mine = std::int64_t(t) << 32 | k;
                p.set(*i, mine);
                if (p.get(*i) != mine) ++violations;
                if (!p.free(*i)) ++violations;
            }
        });
    for (auto& t : ts) t.join();
    BOOST_TEST(violations.load() == 0);
    BOOST_TEST(p.used() == 0u);
    const auto st = p.stats();
    BOOST_TEST(st.waiters == 0u);
}

BOOST_AUTO_TEST_CASE(a_blocked_thread_is_woken_by_another_threads_free)
{
    auto p = shmkit::pool<std::int32_t>::anonymous(2);
    auto a = p.try_alloc(), b = p.try_alloc();
    BOOST_REQUIRE(a && b);
    std::optional<std::size_t> got;
    std::atomic<bool> done{false};
    std::thread waiter([&] {
        got = p.alloc();
        done = true;
    });
    // The slot is freed only once the waiter is counted as blocked in
    // alloc(), bounded.
    BOOST_TEST(test::until([&] { return done || p.stats().waiters != 0; }, 30s));
    BOOST_TEST(!done.load());
    BOOST_TEST(p.stats().waiters == 1u);
    BOOST_TEST(p.free(*b));
    waiter.join();
    BOOST_TEST((got && *got == *b));
    BOOST_TEST(p.used() == 2u);
    BOOST_TEST(p.stats().waiters == 0u);
    BOOST_TEST(p.stats().waits == 1u);
}

BOOST_AUTO_TEST_CASE(batches_from_several_threads_stay_all_or_nothing)
{
    auto p = shmkit::pool<std::int64_t>::anonymous(12);
    std::atomic<int> violations{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (int k = 0; k < rounds / 10; ++k) {
                auto v = p.alloc_n(5, 10s);
                if (!v || v->size() != 5) {
                    ++violations;
                    return;
                }
                for (auto i : *v) p.set(i, k);
                for (auto i : *v)
                    if (p.get(i) != k) ++violations;
                if (p.free_n(*v) != 5) ++violations;
            }
        });
    for (auto& t : ts) t.join();
    BOOST_TEST(violations.load() == 0);
    BOOST_TEST(p.used() == 0u);
}
