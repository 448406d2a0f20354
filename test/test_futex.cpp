// Tests of shmkit/sync/futex.hpp: wait outcomes, deadlines, and wakeups from
// another thread and from another process.
#define BOOST_TEST_MODULE test_futex
#include "support.hpp"

#include <shmkit/sync/futex.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <ostream>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shmkit {
namespace sync {
// Lets BOOST_TEST print wait_result values in failure messages.
inline std::ostream& boost_test_print_type(std::ostream& os, wait_result r)
{
    static const char* const names[] = {"woken", "value_changed", "timed_out", "interrupted"};
    return os << names[static_cast<int>(r)];
}
} // namespace sync
} // namespace shmkit

namespace {

using namespace std::chrono_literals;
using shmkit::deadline_clock;
using shmkit::sync::futex_wait;
using shmkit::sync::futex_wait_until;
using shmkit::sync::futex_wake;
using shmkit::sync::wait_result;
using word_type = std::atomic<std::uint32_t>;

/// How long any waiter in these tests may wait before the test counts as failed.
constexpr auto test_limit = 10s;

/// A zero-filled MAP_SHARED|MAP_ANONYMOUS page, inherited by forked children.
class shared_page {
public:
    shared_page()
        : p_(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0))
    {
        BOOST_REQUIRE(p_ != MAP_FAILED);
    }
    ~shared_page() { ::munmap(p_, size); }
    shared_page(const shared_page&) = delete;
    shared_page& operator=(const shared_page&) = delete;

    /// The futex word at the start of the page (zero, so valid without construction).
    word_type& word() const { return *static_cast<word_type*>(p_); }

private:
    static constexpr std::size_t size = 4096;
    void* p_;
};

/// Wakes one waiter on `word`, retrying until one was actually asleep
/// (futex_wake returns how many it woke), or until the test limit.
int wake_one_sleeper(word_type& word)
{
    const auto limit = deadline_clock::now() + test_limit;
    int woken = 0;
    while (woken == 0 && deadline_clock::now() < limit) {
        woken = futex_wake(word, 1);
        if (woken == 0) std::this_thread::yield();
    }
    return woken;
}

extern "C" void ignore_signal(int) {}

} // namespace

BOOST_AUTO_TEST_CASE(wait_returns_value_changed_when_word_differs)
{
    word_type word{1};
    BOOST_TEST(futex_wait_until(word, 0, deadline_clock::now() + test_limit) ==
               wait_result::value_changed);
    BOOST_TEST(futex_wait(word, 0) == wait_result::value_changed);
    BOOST_TEST(word.load() == 1u);
}

BOOST_AUTO_TEST_CASE(wait_returns_timed_out_after_past_deadline)
{
    word_type word{0};
    BOOST_TEST(futex_wait_until(word, 0, deadline_clock::now() - 1s) == wait_result::timed_out);
    BOOST_TEST(futex_wait_until(word, 0, deadline_clock::time_point{}) == wait_result::timed_out);
}

BOOST_AUTO_TEST_CASE(wait_returns_timed_out_after_short_deadline)
{
    word_type word{0};
    const auto deadline = deadline_clock::now() + 2ms;
    wait_result r;
    do r = futex_wait_until(word, 0, deadline);
    while (r == wait_result::interrupted);
    BOOST_TEST(r == wait_result::timed_out);
    // Never early: a correctness property of absolute deadlines, not a speed one.
    BOOST_TEST((deadline_clock::now() >= deadline));
}

BOOST_AUTO_TEST_CASE(wake_returns_zero_without_waiters)
{
    word_type word{0};
    BOOST_TEST(futex_wake(word) == 0);
    BOOST_TEST(futex_wake(word, 1) == 0);
    // A waiter that timed out is no longer a waiter.
    BOOST_TEST(futex_wait_until(word, 0, deadline_clock::now() - 1s) == wait_result::timed_out);
    BOOST_TEST(futex_wake(word) == 0);
}

BOOST_AUTO_TEST_CASE(wait_is_woken_by_another_thread)
{
    word_type word{0};
    wait_result r = wait_result::timed_out;
    std::thread waiter([&] { r = futex_wait_until(word, 0, deadline_clock::now() + test_limit); });
    const int woken = wake_one_sleeper(word);
    waiter.join();
    BOOST_TEST(woken == 1);
    BOOST_TEST(r == wait_result::woken);
}

BOOST_AUTO_TEST_CASE(untimed_wait_is_woken_by_another_thread)
{
    word_type word{0};
    wait_result r = wait_result::timed_out;
    std::thread waiter([&] { r = futex_wait(word, 0); });
    const int woken = wake_one_sleeper(word);
    if (woken == 0) { // never fell asleep: release the thread before failing
        word.store(1);
        futex_wake(word);
    }
    waiter.join();
    BOOST_TEST(woken == 1);
    BOOST_TEST(r == wait_result::woken);
}

BOOST_AUTO_TEST_CASE(waiter_sees_a_published_change)
{
    // The canonical pattern: store, then wake; the waiter re-checks the word
    // whatever the wait returned.
    word_type word{0};
    std::uint32_t seen = 0;
    std::thread waiter([&] {
        const auto deadline = deadline_clock::now() + test_limit;
        while ((seen = word.load(std::memory_order_acquire)) == 0)
            if (futex_wait_until(word, 0, deadline) == wait_result::timed_out) break;
    });
    word.store(7, std::memory_order_release);
    futex_wake(word);
    waiter.join();
    BOOST_TEST(seen == 7u);
}

BOOST_AUTO_TEST_CASE(wake_wakes_at_most_count_waiters)
{
    constexpr int waiters = 3;
    word_type word{0};
    std::vector<wait_result> results(waiters, wait_result::timed_out);
    std::vector<std::thread> threads;
    for (int i = 0; i != waiters; ++i)
        threads.emplace_back([&, i] {
            results[i] = futex_wait_until(word, 0, deadline_clock::now() + test_limit);
        });
    int total = 0;
    bool at_most_one = true;
    for (int i = 0; i != waiters; ++i) {
        const int woken = wake_one_sleeper(word);
        at_most_one = at_most_one && woken <= 1;
        total += woken;
    }
    for (auto& t : threads) t.join();
    BOOST_TEST(at_most_one);
    BOOST_TEST(total == waiters);
    for (wait_result r : results) BOOST_TEST(r == wait_result::woken);
}

BOOST_AUTO_TEST_CASE(wait_reports_interruption_by_a_signal)
{
    struct sigaction sa = {};
    sa.sa_handler = ignore_signal; // no SA_RESTART: the wait must return EINTR
    sigemptyset(&sa.sa_mask);
    struct sigaction old = {};
    BOOST_REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);

    word_type word{0};
    std::atomic<bool> done{false};
    wait_result r = wait_result::woken;
    std::thread waiter([&] {
        r = futex_wait_until(word, 0, deadline_clock::now() + test_limit);
        done.store(true);
    });
    const pthread_t handle = waiter.native_handle();
    // Signals that land before the thread sleeps are harmless; keep sending
    // until one interrupts the sleep.
    while (!done.load()) {
        ::pthread_kill(handle, SIGUSR1);
        std::this_thread::yield();
    }
    waiter.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    BOOST_TEST(r == wait_result::interrupted);
}

BOOST_AUTO_TEST_CASE(wait_is_woken_by_another_process)
{
    shared_page page;
    word_type& word = page.word();
    test::child child([&] {
        return static_cast<int>(futex_wait_until(word, 0, deadline_clock::now() + test_limit));
    });
    const int woken = wake_one_sleeper(word);
    BOOST_TEST(woken == 1);
    BOOST_TEST(child.wait() == static_cast<int>(wait_result::woken));
}

BOOST_AUTO_TEST_CASE(process_sees_a_change_published_by_another_process)
{
    shared_page page;
    word_type& word = page.word();
    test::child child([&] {
        const auto deadline = deadline_clock::now() + test_limit;
        std::uint32_t seen;
        while ((seen = word.load(std::memory_order_acquire)) == 0)
            if (futex_wait_until(word, 0, deadline) == wait_result::timed_out) break;
        return static_cast<int>(seen);
    });
    word.store(42, std::memory_order_release);
    futex_wake(word);
    BOOST_TEST(child.wait() == 42);
}
