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
//   die_before_syscall(nr, {{arg, value}...}, nth)  a seccomp filter: the
//       nth call of system call nr (whose arguments number `arg` equal
//       `value`) kills the process (SIGSYS) before the kernel runs it. The
//       calls before it are trapped (SIGSYS to a handler) and made again by
//       the handler from the one instruction the filter lets through.
//
// The test then asserts how the child died (killed_after_write,
// killed_before_syscall): a trigger that never fires ends the child
// normally and fails the test instead of passing it without the kill.
// Under Valgrind, both work but a kill at the nth call for nth > 1: the
// program's calls are made from Valgrind's code, so the filter cannot let
// the earlier ones through (test/memcheck/valgrind.sh skips those cases).
#ifndef SHMKIT_TEST_KILL_POINT_HPP
#define SHMKIT_TEST_KILL_POINT_HPP

#ifndef __x86_64__
#error "kill_point.hpp is for x86-64 (its seccomp filter and system call stub)"
#endif

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <system_error>
#include <vector>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

// A system call from a known instruction: what die_before_syscall's filter
// lets through. shmkit_test_syscall_return is the address after the
// `syscall` instruction, which is what seccomp reports as the caller's.
// Weak, in a COMDAT group: one copy however many files include this.
asm(R"(
    .pushsection .text.shmkit_test_syscall,"axG",@progbits,shmkit_test_syscall,comdat
    .weak shmkit_test_syscall
    .type shmkit_test_syscall, @function
shmkit_test_syscall:
    movq %rdi, %rax
    movq %rsi, %rdi
    movq %rdx, %rsi
    movq %rcx, %rdx
    movq %r8, %r10
    movq %r9, %r8
    movq 8(%rsp), %r9
    syscall
    .weak shmkit_test_syscall_return
shmkit_test_syscall_return:
    ret
    .size shmkit_test_syscall, .-shmkit_test_syscall
    .popsection
)");
extern "C" long shmkit_test_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
extern "C" const char shmkit_test_syscall_return[];

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

/// Matching system calls still to let through before die_before_syscall's
/// target (a trapped call counts it down).
inline std::atomic<unsigned> calls_to_let_through{0};

/// SIGSYS from the filter (SECCOMP_RET_TRAP): the kernel has rolled the
/// call back (RAX holds its number again). Either make it from the allowed
/// instruction and put its result where the caller's `syscall` would, or,
/// at the target call, die of SIGSYS (SA_NODEFER: not blocked here).
inline void on_trapped_syscall(int, siginfo_t*, void* context)
{
    greg_t* r = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
    if (calls_to_let_through.load() == 0) {
        struct sigaction dfl;
        std::memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGSYS, &dfl, nullptr);
        ::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), SIGSYS);
    }
    calls_to_let_through.fetch_sub(1);
    r[REG_RAX] = shmkit_test_syscall(r[REG_RAX], r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8], r[REG_R9]);
}

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

/// Kills this process (SIGSYS) at its `nth` call of system call `nr`
/// (__NR_...) whose arguments match all of `args`, before the kernel runs
/// it; the calls before it run as usual. For a child of test::child, whose
/// other threads, if any, must not make that call. Throws
/// std::system_error if the filter cannot be installed.
inline void die_before_syscall(long nr, std::initializer_list<syscall_arg> args = {}, unsigned nth = 1)
{
    auto load = [](std::size_t offset) {
        return sock_filter BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(offset));
    };
    // Jumps to the final ALLOW (when a test fails: allow_unless; when it
    // holds: allow_if) are patched once the program's length is known.
    std::vector<sock_filter> code;
    std::vector<std::size_t> unless_jumps, if_jumps;
    auto jump = [&](std::vector<std::size_t>& to_patch, std::uint32_t k) {
        to_patch.push_back(code.size());
        code.push_back(sock_filter BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
    };
    auto allow_unless = [&](std::uint32_t k) { jump(unless_jumps, k); };
    code.push_back(load(offsetof(seccomp_data, arch)));
    allow_unless(AUDIT_ARCH_X86_64);
    code.push_back(load(offsetof(seccomp_data, nr)));
    allow_unless(static_cast<std::uint32_t>(nr));
    for (const syscall_arg& a : args) {
        code.push_back(load(offsetof(seccomp_data, args) + 8 * a.index)); // the low half (little-endian)
        allow_unless(a.value);
    }
    if (nth <= 1) {
        code.push_back(sock_filter BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    } else {
        // Trapped, unless made from shmkit_test_syscall (the handler's):
        // its low half differs, skip to TRAP; both halves equal, ALLOW.
        const auto ip = reinterpret_cast<std::uint64_t>(shmkit_test_syscall_return);
        code.push_back(load(offsetof(seccomp_data, instruction_pointer)));
        code.push_back(sock_filter BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(ip), 0, 2));
        code.push_back(load(offsetof(seccomp_data, instruction_pointer) + 4));
        jump(if_jumps, static_cast<std::uint32_t>(ip >> 32));
        code.push_back(sock_filter BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP));
        detail::calls_to_let_through = nth - 1;
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = detail::on_trapped_syscall;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        if (::sigaction(SIGSYS, &sa, nullptr) != 0)
            throw std::system_error(errno, std::generic_category(), "sigaction");
    }
    code.push_back(sock_filter BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    const std::size_t allow = code.size() - 1;
    for (std::size_t j : unless_jumps) code[j].jf = static_cast<std::uint8_t>(allow - (j + 1));
    for (std::size_t j : if_jumps) code[j].jt = static_cast<std::uint8_t>(allow - (j + 1));
    sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        throw std::system_error(errno, std::generic_category(), "seccomp filter");
}

} // namespace test

#endif
