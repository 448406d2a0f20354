// Tests of shmkit/sync/notifier.hpp: counting, waiting with and without a
// deadline, signals, fork, descriptor ownership and validation, moves.
#define BOOST_TEST_MODULE test_notifier
#include "support.hpp"

#include <shmkit/error.hpp>
#include <shmkit/sync/notifier.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <limits>
#include <optional>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using shmkit::sync::notifier;
using shmkit::sync::ownership;

/// How long any wait in these tests may last before the test counts as failed.
constexpr auto test_limit = 10s;

static_assert(!std::is_copy_constructible_v<notifier>);
static_assert(!std::is_copy_assignable_v<notifier>);
static_assert(std::is_nothrow_move_constructible_v<notifier>);
static_assert(std::is_nothrow_move_assignable_v<notifier>);

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

bool is_closed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

/// A raw descriptor for the tests to own or hand over; closed at scope exit
/// unless released.
class raw_fd {
public:
    explicit raw_fd(int fd) : fd_(fd) { BOOST_REQUIRE(fd_ >= 0); }
    ~raw_fd()
    {
        if (fd_ >= 0) ::close(fd_);
    }
    raw_fd(const raw_fd&) = delete;
    raw_fd& operator=(const raw_fd&) = delete;

    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

/// Both ends of a pipe, closed at scope exit.
struct pipe_pair {
    int fds[2] = {-1, -1};
    pipe_pair() { BOOST_REQUIRE(::pipe(fds) == 0); }
    ~pipe_pair()
    {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
};

bool has_errc(const shmkit::error& e, std::errc code) { return e.code() == code; }

extern "C" void ignore_signal(int) {}

/// Installs a do-nothing handler without SA_RESTART, so blocking calls in
/// the signalled thread fail with EINTR; restores the old one at scope exit.
class eintr_signal {
public:
    explicit eintr_signal(int sig) : sig_(sig)
    {
        struct sigaction sa = {};
        sa.sa_handler = ignore_signal;
        sigemptyset(&sa.sa_mask);
        BOOST_REQUIRE(::sigaction(sig_, &sa, &old_) == 0);
    }
    ~eintr_signal() { ::sigaction(sig_, &old_, nullptr); }
    eintr_signal(const eintr_signal&) = delete;
    eintr_signal& operator=(const eintr_signal&) = delete;

private:
    int sig_;
    struct sigaction old_ = {};
};

} // namespace

BOOST_AUTO_TEST_SUITE(single_process)

BOOST_AUTO_TEST_CASE(create_makes_an_owned_nonblocking_cloexec_eventfd)
{
    notifier n = notifier::create();
    BOOST_TEST(n.fd() >= 0);
    BOOST_TEST(n.owns_fd());
    BOOST_TEST((::fcntl(n.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    BOOST_TEST((::fcntl(n.fd(), F_GETFL) & O_NONBLOCK) != 0);
    BOOST_TEST(n.try_consume() == 0u);
}

BOOST_AUTO_TEST_CASE(create_sets_the_initial_count)
{
    notifier n = notifier::create(5);
    BOOST_TEST(n.try_consume() == 5u);
    BOOST_TEST(n.try_consume() == 0u);
}

BOOST_AUTO_TEST_CASE(notify_then_wait)
{
    notifier n = notifier::create();
    n.notify();
    const std::optional<std::uint64_t> got = n.wait(test_limit);
    BOOST_REQUIRE(got.has_value());
    BOOST_TEST(*got == 1u);
    BOOST_TEST(n.try_consume() == 0u);
}

BOOST_AUTO_TEST_CASE(counts_accumulate_until_consumed)
{
    notifier n = notifier::create();
    n.notify();
    n.notify();
    n.notify();
    BOOST_TEST(n.wait(test_limit).value_or(0) == 3u);
    n.notify(40);
    n.notify(2);
    BOOST_TEST(n.wait() == 42u);
}

BOOST_AUTO_TEST_CASE(notify_zero_changes_nothing)
{
    notifier n = notifier::create();
    n.notify(0);
    BOOST_TEST(n.try_consume() == 0u);
}

BOOST_AUTO_TEST_CASE(wait_times_out_with_an_empty_optional)
{
    notifier n = notifier::create();
    BOOST_TEST(!n.wait(5ms).has_value());
    BOOST_TEST(!n.wait(0ns).has_value());
    BOOST_TEST(!n.wait(-1s).has_value());
}

BOOST_AUTO_TEST_CASE(zero_and_huge_timeouts_take_a_pending_count)
{
    notifier n = notifier::create();
    n.notify(2);
    BOOST_TEST(n.wait(0ns).value_or(0) == 2u);
    n.notify(3);
    BOOST_TEST(n.wait(std::chrono::nanoseconds::max()).value_or(0) == 3u);
    n.notify(4);
    BOOST_TEST(n.wait(std::chrono::nanoseconds::min()).value_or(0) == 4u);
}

BOOST_AUTO_TEST_CASE(counter_overflow_throws)
{
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    notifier n = notifier::create();
    BOOST_CHECK_THROW(n.notify(max), shmkit::error); // the kernel refuses 2^64-1
    n.notify(max - 1);
    try {
        n.notify(1);
        BOOST_FAIL("notify past the maximum did not throw");
    } catch (const shmkit::error& e) {
        BOOST_TEST(has_errc(e, std::errc::resource_unavailable_try_again));
    }
    BOOST_TEST(n.try_consume() == max - 1);
}

BOOST_AUTO_TEST_CASE(waiting_thread_is_woken)
{
    notifier n = notifier::create();
    std::uint64_t got = 0;
    std::thread waiter([&] { got = n.wait(); });
    n.notify();
    waiter.join();
    BOOST_TEST(got == 1u);
}

BOOST_AUTO_TEST_CASE(signals_neither_end_nor_extend_a_wait)
{
    eintr_signal usr1(SIGUSR1);
    notifier n = notifier::create();
    std::atomic<int> phase{0};
    std::optional<std::uint64_t> timed = 7;
    std::uint64_t untimed = 0;
    std::thread waiter([&] {
        timed = n.wait(20ms); // interrupted over and over, then times out
        phase.store(1);
        untimed = n.wait(); // interrupted over and over, then notified
        phase.store(2);
    });
    // Keep signalling; notify only once the timed wait is over, and only
    // after the untimed wait has had a chance to be interrupted too.
    // Bounded: a timed wait that restarts its timeout on EINTR never ends
    // while signalled.
    int sent_in_phase_1 = 0;
    const auto limit = std::chrono::steady_clock::now() + test_limit;
    while (phase.load() != 2 && std::chrono::steady_clock::now() < limit) {
        ::pthread_kill(waiter.native_handle(), SIGUSR1);
        if (phase.load() == 1 && ++sent_in_phase_1 == 200) n.notify(9);
        std::this_thread::yield();
    }
    const int reached = phase.load();
    BOOST_TEST(reached == 2, "the waits had not ended after " << test_limit.count() << " s of signals (phase "
                                                              << reached << ")");
    if (reached != 2) {
        // Signalling has stopped. The notification may come only once the
        // timed wait is over (a restarting one ends one timeout later; one
        // stuck is notified), or the timed wait would take it.
        const auto timed_wait_over = [&] { return phase.load() != 0; };
        if (!test::until(timed_wait_over, test_limit)) n.notify(1);
        test::until(timed_wait_over, test_limit);
        if (sent_in_phase_1 < 200) n.notify(9);
    }
    // A waiter still waiting would hang the join: the failed requirement
    // ends the test instead (std::thread's destructor terminates it).
    BOOST_TEST_REQUIRE(test::until([&] { return phase.load() == 2; }, test_limit), "the waiter never ended");
    waiter.join();
    BOOST_TEST(!timed.has_value());
    BOOST_TEST(untimed == 9u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(across_fork)

BOOST_AUTO_TEST_CASE(parent_waits_for_child)
{
    notifier n = notifier::create();
    test::child child([&] {
        n.notify(7);
        return 0;
    });
    BOOST_TEST(n.wait(test_limit).value_or(0) == 7u);
    BOOST_TEST(child.wait() == 0);
}

BOOST_AUTO_TEST_CASE(child_waits_for_parent)
{
    notifier n = notifier::create();
    test::child child([&] {
        const std::optional<std::uint64_t> got = n.wait(test_limit);
        return got ? static_cast<int>(*got) : 100;
    });
    n.notify(3);
    BOOST_TEST(child.wait() == 3);
}

BOOST_AUTO_TEST_CASE(ping_pong)
{
    constexpr int rounds = 200;
    notifier ping = notifier::create();
    notifier pong = notifier::create();
    test::child child([&] {
        for (int i = 0; i != rounds; ++i) {
            if (ping.wait(test_limit).value_or(0) != 1) return 1;
            pong.notify();
        }
        return 0;
    });
    int answered = 0;
    for (int i = 0; i != rounds; ++i) {
        ping.notify();
        if (pong.wait(test_limit).value_or(0) != 1) break;
        ++answered;
    }
    BOOST_TEST(answered == rounds);
    BOOST_TEST(child.wait() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(attach)

BOOST_AUTO_TEST_CASE(borrow_never_closes_the_fd)
{
    raw_fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    {
        notifier n = notifier::attach(fd.get());
        BOOST_TEST(n.fd() == fd.get());
        BOOST_TEST(!n.owns_fd());
        n.notify(2);
        BOOST_TEST(n.try_consume() == 2u);
    }
    BOOST_TEST(is_open(fd.get()));
    {
        notifier n = notifier::attach(fd.get(), ownership::borrow);
        n.close();
        BOOST_TEST(n.fd() == -1);
    }
    BOOST_TEST(is_open(fd.get()));
}

BOOST_AUTO_TEST_CASE(adopt_closes_the_fd_on_destruction)
{
    raw_fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    const int raw = fd.get();
    {
        notifier n = notifier::attach(fd.release(), ownership::adopt);
        BOOST_TEST(n.owns_fd());
    }
    BOOST_TEST(is_closed(raw));
}

BOOST_AUTO_TEST_CASE(adopt_closes_the_fd_on_close)
{
    raw_fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    const int raw = fd.release();
    notifier n = notifier::attach(raw, ownership::adopt);
    n.close();
    BOOST_TEST(is_closed(raw));
    BOOST_TEST(n.fd() == -1);
    BOOST_TEST(!n.owns_fd());
    n.close(); // a second close does nothing
}

BOOST_AUTO_TEST_CASE(attach_makes_a_blocking_eventfd_nonblocking)
{
    raw_fd fd(::eventfd(0, EFD_CLOEXEC)); // blocking
    notifier n = notifier::attach(fd.get());
    BOOST_TEST((::fcntl(fd.get(), F_GETFL) & O_NONBLOCK) != 0);
    BOOST_TEST(n.try_consume() == 0u); // returns instead of blocking
    BOOST_TEST(!n.wait(1ms).has_value());
}

BOOST_AUTO_TEST_CASE(attach_shares_the_counter_with_the_original)
{
    notifier original = notifier::create();
    notifier other = notifier::attach(original.fd());
    original.notify(5);
    BOOST_TEST(other.wait(test_limit).value_or(0) == 5u);
}

BOOST_AUTO_TEST_CASE(attach_refuses_a_pipe_and_leaves_it_open)
{
    pipe_pair p;
    try {
        (void)notifier::attach(p.fds[0]);
        BOOST_FAIL("attach accepted a pipe");
    } catch (const shmkit::error& e) {
        BOOST_TEST(has_errc(e, std::errc::invalid_argument));
        BOOST_TEST(e.where() == "fd " + std::to_string(p.fds[0]));
    }
    BOOST_CHECK_THROW((void)notifier::attach(p.fds[1], ownership::adopt), shmkit::error);
    BOOST_TEST(is_open(p.fds[0]));
    BOOST_TEST(is_open(p.fds[1])); // ownership passes only on success
}

BOOST_AUTO_TEST_CASE(attach_refuses_other_anonymous_inodes)
{
    raw_fd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    BOOST_CHECK_THROW((void)notifier::attach(timer.get()), shmkit::error);
}

BOOST_AUTO_TEST_CASE(attach_refuses_a_closed_or_negative_fd)
{
    int closed = -1;
    {
        raw_fd fd(::eventfd(0, EFD_CLOEXEC));
        closed = fd.get();
    }
    for (int fd : {closed, -1}) {
        try {
            (void)notifier::attach(fd);
            BOOST_FAIL("attach accepted fd " << fd);
        } catch (const shmkit::error& e) {
            BOOST_TEST(has_errc(e, std::errc::bad_file_descriptor));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(moves)

BOOST_AUTO_TEST_CASE(move_construction_transfers_the_fd)
{
    notifier a = notifier::create();
    const int fd = a.fd();
    notifier b(std::move(a));
    BOOST_TEST(a.fd() == -1); // NOLINT(bugprone-use-after-move): moved-from state is specified
    BOOST_TEST(!a.owns_fd());
    BOOST_TEST(b.fd() == fd);
    BOOST_TEST(b.owns_fd());
    b.notify();
    BOOST_TEST(b.try_consume() == 1u);
}

BOOST_AUTO_TEST_CASE(move_assignment_closes_the_previous_fd)
{
    notifier a = notifier::create();
    notifier b = notifier::create();
    const int a_fd = a.fd();
    const int b_fd = b.fd();
    b = std::move(a);
    BOOST_TEST(is_closed(b_fd));
    BOOST_TEST(b.fd() == a_fd);
    BOOST_TEST(is_open(a_fd));
    BOOST_TEST(a.fd() == -1); // NOLINT(bugprone-use-after-move)
}

BOOST_AUTO_TEST_CASE(move_assignment_keeps_a_borrowed_fd_open)
{
    raw_fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    notifier b = notifier::attach(fd.get());
    b = notifier::create();
    BOOST_TEST(is_open(fd.get()));
    BOOST_TEST(b.owns_fd());
}

BOOST_AUTO_TEST_CASE(self_move_assignment_keeps_the_fd)
{
    notifier a = notifier::create();
    const int fd = a.fd();
    notifier& alias = a;
    a = std::move(alias);
    BOOST_TEST(a.fd() == fd);
    BOOST_TEST(is_open(fd));
}

BOOST_AUTO_TEST_CASE(empty_notifier_throws_on_use)
{
    notifier empty;
    BOOST_TEST(empty.fd() == -1);
    BOOST_TEST(!empty.owns_fd());
    BOOST_CHECK_THROW(empty.notify(), shmkit::error);
    BOOST_CHECK_THROW(empty.try_consume(), shmkit::error);
    BOOST_CHECK_THROW(empty.wait(1ms), shmkit::error);
    BOOST_CHECK_THROW(empty.wait(), shmkit::error);
    empty.close(); // does nothing

    notifier moved_from = notifier::create();
    notifier taker(std::move(moved_from));
    BOOST_CHECK_THROW(moved_from.notify(), shmkit::error); // NOLINT(bugprone-use-after-move)
}

BOOST_AUTO_TEST_SUITE_END()
