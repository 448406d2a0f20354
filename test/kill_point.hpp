// Real kills at an exact step. A crash window of the library ("killed
// after this store and before that one") is tested by killing a real
// process there, not somewhere near it and not by writing the state it
// would leave by hand. The child that is to die arms a trigger that the
// code under test knows nothing of, then calls the library:
//
//   die_after_write(addr, len, nth)  a hardware watchpoint
//       (perf_event_open, PERF_TYPE_BREAKPOINT with sigtrap): the nth store
//       of this thread into the word at addr completes, and the SIGTRAP the
//       kernel raises before the next instruction runs a handler that
//       SIGKILLs the process. Shared memory is left with that store done
//       and nothing after it.
//   die_before_syscall(nr, {{arg, value}...})  a seccomp filter: the first
//       call of system call nr (whose arguments number `arg` equal `value`)
//       kills the process (SIGSYS) before the kernel runs it.
//
// The test then asserts how the child died (killed_after_write,
// killed_before_syscall): a trigger that never fires ends the child
// normally and fails the test instead of passing it without the kill.
#ifndef SHMKIT_TEST_KILL_POINT_HPP
#define SHMKIT_TEST_KILL_POINT_HPP

#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <initializer_list>
#include <system_error>
#include <vector>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace test {

/// How a child killed by die_after_write ends (child::wait()).
constexpr int killed_after_write = 128 + SIGKILL;
/// How a child killed by die_before_syscall ends.
constexpr int killed_before_syscall = 128 + SIGSYS;

namespace detail {

/// The watchpoint's perf event on the calling thread. sigtrap needs
/// remove_on_exec; user space only (exclude_kernel), as an unprivileged
/// process may watch itself.
inline int open_write_watch(const void* addr, std::size_t len, unsigned nth, bool disabled)
{
    perf_event_attr a;
    std::memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_BREAKPOINT;
    a.size = sizeof a;
    a.bp_type = HW_BREAKPOINT_W;
    a.bp_addr = reinterpret_cast<std::uintptr_t>(addr);
    a.bp_len = len;
    a.sample_period = nth;
    a.disabled = disabled;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    a.sigtrap = 1;
    a.remove_on_exec = 1;
    return static_cast<int>(::syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

inline void kill_self(int) { ::kill(::getpid(), SIGKILL); }

} // namespace detail

/// Empty if write watches can be armed on this machine; else why not (no
/// hardware breakpoints in this VM, perf_event_paranoid, seccomp policy).
inline std::string write_watch_unavailable()
{
    static const std::string why = [] {
        static std::uint64_t word = 0;
        const int fd = detail::open_write_watch(&word, sizeof word, 1, true);
        if (fd < 0) return "no hardware write watchpoint (perf_event_open: " + std::string(std::strerror(errno)) + ")";
        ::close(fd);
        return std::string();
    }();
    return why;
}

/// Boost.Test precondition: skips (and says why) a test whose kills need
/// write watches where there are none.
struct write_watches_available {
    boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const
    {
        const std::string why = write_watch_unavailable();
        boost::test_tools::assertion_result r(why.empty());
        r.message() << why;
        return r;
    }
};

/// Kills this process right after the nth store of the calling thread into
/// the `len` bytes at `addr` (len 1, 2, 4 or 8, addr aligned to len). For
/// a child of test::child, armed just before the call that is to die.
/// Throws std::system_error if the watchpoint cannot be set.
inline void die_after_write(const void* addr, std::size_t len, unsigned nth = 1)
{
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = detail::kill_self;
    if (::sigaction(SIGTRAP, &sa, nullptr) != 0) throw std::system_error(errno, std::generic_category(), "sigaction");
    if (detail::open_write_watch(addr, len, nth, false) < 0)
        throw std::system_error(errno, std::generic_category(), "perf_event_open (write watch)");
    // The event's fd stays open until the process dies: closing it would
    // disarm the watch.
}

/// An argument that die_before_syscall() matches: number `index` (0-5)
/// has `value` in its low 32 bits.
struct syscall_arg {
    unsigned index;
    std::uint32_t value;
};

/// Kills this process (SIGSYS) at its first call of system call `nr`
/// (__NR_...) whose arguments match all of `args`, before the kernel runs
/// it. For a child of test::child. Throws std::system_error if the filter
/// cannot be installed.
inline void die_before_syscall(long nr, std::initializer_list<syscall_arg> args = {})
{
    auto load = [](std::size_t offset) {
        return sock_filter BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(offset));
    };
    // Each test jumps to the final ALLOW when it fails; `jumps` are patched
    // once the program's length is known.
    std::vector<sock_filter> code;
    std::vector<std::size_t> jumps;
    auto allow_unless = [&](std::uint32_t k) {
        jumps.push_back(code.size());
        code.push_back(sock_filter BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
    };
    code.push_back(load(offsetof(seccomp_data, arch)));
    allow_unless(AUDIT_ARCH_X86_64);
    code.push_back(load(offsetof(seccomp_data, nr)));
    allow_unless(static_cast<std::uint32_t>(nr));
    for (const syscall_arg& a : args) {
        code.push_back(load(offsetof(seccomp_data, args) + 8 * a.index)); // the low half (little-endian)
        allow_unless(a.value);
    }
    code.push_back(sock_filter BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    code.push_back(sock_filter BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    for (std::size_t j : jumps) code[j].jf = static_cast<std::uint8_t>(code.size() - 1 - (j + 1));
    sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        throw std::system_error(errno, std::generic_category(), "seccomp filter");
}

} // namespace test

#endif
