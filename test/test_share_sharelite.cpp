// shmkit::share with share_backend::sharelite against real Perl processes
// using IPC::ShareLite 0.17, and on its own:
//   - the format: what a C++ handle writes is ShareLite's (the 16-byte
//     header of every segment, the chain linked by shmid, the three
//     semaphores and what each lock does to them);
//   - values both ways (Perl stores, C++ fetches; C++ stores, Perl fetches)
//     of 0 bytes to 1 MiB with every byte value and NULs, compared exactly,
//     around the segment boundaries (65519, 65520, 65521 bytes); the
//     version and the segment count as Perl and C++ each report them; a
//     long-lived Perl handle and a C++ handle taking turns to grow and
//     shrink the chain; ShareLite's string keys;
//   - locks across languages: Perl holding LOCK_EX / LOCK_SH and what C++
//     gets (non-blocking, timed, blocking until Perl unlocks), and the
//     reverse; opening a C++ handle while Perl holds a lock does not wait;
//     Perl and C++ processes incrementing one counter under LOCK_EX;
//   - a holder killed with SIGKILL (C++ or Perl): the kernel (SEM_UNDO)
//     releases its lock;
//   - no key collisions: C++ puts the chain's extra segments at no key, so
//     the share at key+1 (a Perl one) keeps its value; the segments a
//     shorter value no longer needs are removed;
//   - within C++: round trips through two handles and a forked child, the
//     version, num_segments(), stats(), fetch_view(), size(), the options
//     (create, exclusive, mode, destroy; key 0 refused), share::remove(),
//     a forked child's inherited handle and its parent's lock;
//   - Perl's -destroy removing the share.
//
// Perl runs as `perl -MIPC::ShareLite=:lock -e SCRIPT ARGS` with pipes for
// its stdin and stdout (binmode: binary-safe); every read, write and wait
// has a deadline, after which the process is killed. Processes are ordered
// only by what they write on those pipes (Perl prints "lock 1" once it holds
// the lock and waits for its next command before unlocking), never by a
// sleep. Every test uses keys of its own (key..key+19), and everything at
// them is removed before the test and after it.
#define BOOST_TEST_MODULE share_sharelite
#include "share_support.hpp"

#include <shmkit/share.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/types.h>

using namespace std::chrono_literals;
using shmkit::share;
using shmkit::share_backend;
using shmkit::share_options;
using test::first_difference;
using test::pattern;
namespace utf = boost::unit_test;

namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * 1024;
/// ShareLite's default segment and the payload each segment holds.
constexpr std::size_t segment_bytes = 65536;
constexpr std::size_t data_bytes = segment_bytes - 16;
/// IPC::ShareLite's lock flags (Fcntl's).
constexpr int perl_lock_sh = 1, perl_lock_ex = 2, perl_lock_nb = 4;

// ---- Keys and cleanup ---------------------------------------------------------------

/// Keys no other test (of this process or another) uses, each with the 19
/// keys after it free too: 0xTT PPPP SS, SS a multiple of 20 (12 keys),
/// PPPP the low 16 bits of the PID, TT 0x5d, then 0x6d, 0x7d, 0x4d, 0x3d,
/// 0x2d, 0x1d, 0x0d (each after 12 keys): positive, so that Perl reads
/// them as numbers, and apart from the other suites' keys (0x5a, 0x5c).
key_t next_key()
{
    static unsigned n = 0;
    static const unsigned tops[] = {0x5d, 0x6d, 0x7d, 0x4d, 0x3d, 0x2d, 0x1d, 0x0d};
    const unsigned slot = n++;
    if (slot >= 12 * std::size(tops)) throw std::logic_error("test_share_sharelite: out of keys");
    return static_cast<key_t>(tops[slot / 12] << 24 | (static_cast<unsigned>(::getpid()) & 0xffffu) << 8 |
                              (slot % 12) * 20);
}

/// Removes everything at `key`..`key`+19: the share (ShareLite's way), then
/// any System V segment or semaphore set still there.
void remove_everything_at(key_t key) noexcept
{
    try {
        share::remove(key, share_backend::sharelite);
    } catch (...) {
    }
    for (int i = 0; i < 20; ++i) {
        const key_t k = key + i;
        const int shmid = ::shmget(k, 0, 0);
        if (shmid >= 0) ::shmctl(shmid, IPC_RMID, nullptr);
        const int semid = ::semget(k, 0, 0);
        if (semid >= 0) ::semctl(semid, 0, IPC_RMID);
    }
}

/// Owns a key (and the 19 after it): everything there is removed before the
/// test (a leftover of a crashed run) and on scope exit. Declared first in
/// a test, so that the processes and handles of the test are gone before
/// it cleans up.
class key_guard {
public:
    key_guard() : key_(next_key()) { remove_everything_at(key_); }
    ~key_guard() { remove_everything_at(key_); }
    key_guard(const key_guard&) = delete;
    key_guard& operator=(const key_guard&) = delete;
    key_t key() const { return key_; }

private:
    key_t key_;
};

share_options sl(bool create = false)
{
    share_options o;
    o.backend = share_backend::sharelite;
    o.create = create;
    return o;
}

share_options sl_created() { return sl(true); }

// ---- System V inspection ------------------------------------------------------------

union semun_arg {
    int val;
    struct semid_ds* buf;
    unsigned short* array;
};

/// The header of a ShareLite segment.
struct raw_header {
    std::int32_t next_shmid = 0;
    std::int32_t length = 0;
    std::uint32_t shm_state = 0;
    std::uint32_t version = 0;
};

/// The bytes of segment `shmid` (header included), read through a read-only
/// attachment; empty if it cannot be attached.
std::string segment_bytes_of(int shmid)
{
    struct shmid_ds ds {};
    if (::shmctl(shmid, IPC_STAT, &ds) != 0) return {};
    void* a = ::shmat(shmid, nullptr, SHM_RDONLY);
    if (a == reinterpret_cast<void*>(-1)) return {};
    std::string out(static_cast<const char*>(a), ds.shm_segsz);
    ::shmdt(a);
    return out;
}

raw_header header_of(const std::string& segment)
{
    raw_header h;
    if (segment.size() >= sizeof h) std::memcpy(&h, segment.data(), sizeof h);
    return h;
}

/// The shmids of the chain of the share of `key`, head first, found as Perl
/// finds them: attach each segment and follow next_shmid. Empty if there is
/// no head segment.
std::vector<int> chain_of(key_t key)
{
    std::vector<int> ids;
    int id = ::shmget(key, 0, 0);
    while (id >= 0 && ids.size() < 100000) {
        ids.push_back(id);
        void* a = ::shmat(id, nullptr, SHM_RDONLY);
        if (a == reinterpret_cast<void*>(-1)) break;
        std::int32_t next;
        std::memcpy(&next, a, sizeof next);
        ::shmdt(a);
        id = next;
    }
    return ids;
}

/// Whether segment `shmid` still exists (IPC_STAT succeeds).
bool segment_exists(int shmid)
{
    struct shmid_ds ds {};
    return ::shmctl(shmid, IPC_STAT, &ds) == 0;
}

/// errno of shmget(key, 0, 0), 0 if a segment has that key.
int shmget_errno(key_t key)
{
    errno = 0;
    return ::shmget(key, 0, 0) >= 0 ? 0 : errno;
}

/// errno of semget(key, 0, 0), 0 if a semaphore set has that key.
int semget_errno(key_t key)
{
    errno = 0;
    return ::semget(key, 0, 0) >= 0 ? 0 : errno;
}

/// Semaphore `n` of the set of `key`, -1 if there is none.
int sem_value(key_t key, int n)
{
    const int semid = ::semget(key, 0, 0);
    return semid < 0 ? -1 : ::semctl(semid, n, GETVAL);
}

/// The permission bits of the semaphore set of `key`, -1 if none.
int sem_permissions(key_t key)
{
    const int semid = ::semget(key, 0, 0);
    if (semid < 0) return -1;
    struct semid_ds ds {};
    semun_arg arg;
    arg.buf = &ds;
    if (::semctl(semid, 0, IPC_STAT, arg) != 0) return -1;
    return static_cast<int>(ds.sem_perm.mode & 0777);
}

int segment_permissions(int shmid)
{
    struct shmid_ds ds {};
    return ::shmctl(shmid, IPC_STAT, &ds) == 0 ? static_cast<int>(ds.shm_perm.mode & 0777) : -1;
}

std::size_t segment_size_of(int shmid)
{
    struct shmid_ds ds {};
    return ::shmctl(shmid, IPC_STAT, &ds) == 0 ? ds.shm_segsz : 0;
}

// ---- Values ----------------------------------------------------------------------------

/// Whether `s` holds each of the 256 byte values.
bool has_every_byte_value(std::string_view s)
{
    bool seen[256] = {};
    for (char c : s) seen[static_cast<unsigned char>(c)] = true;
    return std::all_of(std::begin(seen), std::end(seen), [](bool b) { return b; });
}

/// ShareLite's segment count for a value of `n` bytes in `seg`-byte segments.
std::size_t segments_for(std::size_t n, std::size_t seg = segment_bytes)
{
    const std::size_t d = seg - 16;
    return std::max<std::size_t>(1, (n + d - 1) / d);
}

// ---- A Perl process ---------------------------------------------------------------------

/// A running `perl -MIPC::ShareLite=:lock -e SCRIPT ARGS...`: its stdin and
/// stdout are pipes of ours, its stderr a memfd we read for messages. Every
/// read, write and wait has a deadline. Killed (SIGKILL) and reaped on
/// scope exit if still running; it also dies with the test process.
class perl_process {
public:
    perl_process(const std::string& script, const std::vector<std::string>& args)
    {
        // Everything the child needs is built before fork().
        std::vector<std::string> words = {"perl", "-MIPC::ShareLite=:lock", "-e", script};
        words.insert(words.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& w : words) argv.push_back(w.data());
        argv.push_back(nullptr);

        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        if (::pipe2(out, O_CLOEXEC) != 0) {
            ::close(in[0]);
            ::close(in[1]);
            throw std::runtime_error("pipe failed");
        }
        err_ = ::memfd_create("perl-stderr", MFD_CLOEXEC);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) {
            for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
            throw std::runtime_error("fork failed");
        }
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(126);
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            if (err_ >= 0) ::dup2(err_, 2);
            sigset_t none;
            ::sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::signal(SIGPIPE, SIG_DFL);
            ::execvp("perl", argv.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        in_ = in[1];
        out_ = out[0];
        ::fcntl(in_, F_SETFL, ::fcntl(in_, F_GETFL) | O_NONBLOCK);
        ::fcntl(out_, F_SETFL, ::fcntl(out_, F_GETFL) | O_NONBLOCK);
    }

    ~perl_process()
    {
        close_stdin();
        if (out_ >= 0) ::close(out_);
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (err_ >= 0) ::close(err_);
    }
    perl_process(const perl_process&) = delete;
    perl_process& operator=(const perl_process&) = delete;

    pid_t pid() const { return pid_; }

    /// Writes all of `bytes` to its stdin within `limit`; false if it could
    /// not (the process closed its stdin or died, or the time ran out).
    bool write(std::string_view bytes, std::chrono::milliseconds limit = 30s)
    {
        if (in_ < 0) return false;
        // A write to a dead reader must fail with EPIPE, not kill us.
        sigset_t pipe_set, old;
        ::sigemptyset(&pipe_set);
        ::sigaddset(&pipe_set, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        const auto deadline = std::chrono::steady_clock::now() + limit;
        bool ok = true;
        while (!bytes.empty()) {
            const ssize_t w = ::write(in_, bytes.data(), bytes.size());
            if (w > 0) {
                bytes.remove_prefix(static_cast<std::size_t>(w));
                continue;
            }
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) {
                struct pollfd p = {in_, POLLOUT, 0};
                if (::poll(&p, 1, left_ms(deadline)) > 0 || errno == EINTR) continue;
            }
            ok = false;
            break;
        }
        if (!ok) {
            const struct timespec zero = {0, 0};
            while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return ok;
    }

    /// Closes its stdin (it reads EOF).
    void close_stdin()
    {
        if (in_ >= 0) ::close(in_);
        in_ = -1;
    }

    /// The next line of its stdout without the '\n'; nothing on EOF or if
    /// none comes within `limit`.
    std::optional<std::string> read_line(std::chrono::milliseconds limit = 30s)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            const auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            if (!fill(deadline)) return std::nullopt;
        }
    }

    /// The next `n` bytes of its stdout; nothing if they do not come within
    /// `limit`.
    std::optional<std::string> read_bytes(std::size_t n, std::chrono::milliseconds limit = 30s)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (buf_.size() < n)
            if (!fill(deadline)) return std::nullopt;
        std::string out = buf_.substr(0, n);
        buf_.erase(0, n);
        return out;
    }

    /// All of its stdout up to EOF; nothing if EOF does not come within `limit`.
    std::optional<std::string> read_all(std::chrono::milliseconds limit = 60s)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!eof_)
            if (!fill(deadline) && !eof_) return std::nullopt;
        return std::exchange(buf_, std::string());
    }

    /// Whether a line is waiting to be read now (no waiting).
    bool line_ready()
    {
        if (buf_.find('\n') != std::string::npos) return true;
        fill(std::chrono::steady_clock::now());
        return buf_.find('\n') != std::string::npos;
    }

    /// Waits for it to exit, at most `limit`, and kills it if it overruns.
    /// Returns the exit status, 128 + signal, or -1 on overrun.
    int wait(std::chrono::milliseconds limit = 30s)
    {
        if (pid_ <= 0) return -2;
        return test::wait_for_exit(std::exchange(pid_, -1), limit);
    }

    void kill(int sig = SIGKILL) const
    {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    /// What it wrote to stderr so far (its first 4 KiB), for messages.
    std::string errors() const
    {
        if (err_ < 0) return {};
        char b[4096];
        const ssize_t n = ::pread(err_, b, sizeof b, 0);
        return n > 0 ? std::string(b, static_cast<std::size_t>(n)) : std::string();
    }

private:
    static int left_ms(std::chrono::steady_clock::time_point deadline)
    {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        return left < 0 ? 0 : static_cast<int>(left);
    }

    /// Reads what is there (waiting until `deadline` for something); false
    /// on EOF, error or timeout.
    bool fill(std::chrono::steady_clock::time_point deadline)
    {
        if (eof_ || out_ < 0) return false;
        for (;;) {
            char b[65536];
            const ssize_t r = ::read(out_, b, sizeof b);
            if (r > 0) {
                buf_.append(b, static_cast<std::size_t>(r));
                return true;
            }
            if (r == 0) {
                eof_ = true;
                return false;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return false;
            struct pollfd p = {out_, POLLIN, 0};
            const int pr = ::poll(&p, 1, left_ms(deadline));
            if (pr < 0 && errno == EINTR) continue;
            if (pr <= 0) return false;
        }
    }

    pid_t pid_ = -1;
    int in_ = -1, out_ = -1, err_ = -1;
    std::string buf_;
    bool eof_ = false;
};

// ---- One-shot Perl scripts ------------------------------------------------------------

/// Stores all of stdin (binary) into the share of key ARGV[0] (created if
/// missing, never destroyed; -size ARGV[1]), then prints
/// "VERSION SEGMENTS LENGTH\n".
const char* const perl_store_script = R"perl(
binmode STDIN; binmode STDOUT;
my $s = IPC::ShareLite->new(-key => $ARGV[0], -create => 'yes', -destroy => 'no', -size => $ARGV[1]);
my $d = do { local $/; <STDIN> };
$d = '' unless defined $d;
$s->store($d);
print $s->version, ' ', $s->num_segments, ' ', length($d), "\n";
)perl";

/// Opens the share of key ARGV[0] (or of the 4-byte string key
/// pack('V', ARGV[2]) if given), without create, with -size ARGV[1], and
/// prints "VERSION SEGMENTS LENGTH\n" then the value's raw bytes.
const char* const perl_fetch_script = R"perl(
binmode STDOUT;
my ($key, $size, $skey) = @ARGV;
$key = pack('V', $skey) if defined $skey;
my $s = IPC::ShareLite->new(-key => $key, -create => 'no', -destroy => 'no', -size => $size);
my $v = $s->fetch;
print $s->version, ' ', $s->num_segments, ' ', length($v), "\n", $v;
)perl";

/// What a one-shot Perl script reported.
struct perl_report {
    int status = -3;         ///< exit status (0: fine)
    std::uint64_t version = 0;
    std::size_t segments = 0;
    std::size_t length = 0;
    std::string value;       ///< fetch only
    std::string errors;      ///< its stderr
};

std::ostream& operator<<(std::ostream& os, const perl_report& r)
{
    return os << "perl exit " << r.status << ", version " << r.version << ", segments " << r.segments
              << ", length " << r.length << ", stderr: " << r.errors;
}

perl_report parse_report(perl_process& p, const std::optional<std::string>& out)
{
    perl_report r;
    r.status = p.wait(30s);
    r.errors = p.errors();
    if (!out) return r;
    const auto nl = out->find('\n');
    if (nl == std::string::npos) return r;
    std::istringstream in(out->substr(0, nl));
    in >> r.version >> r.segments >> r.length;
    r.value = out->substr(nl + 1);
    return r;
}

/// Perl stores `value` into the share of `key` (creating it if missing),
/// asking segments of `size` bytes (0: ShareLite's default, 65536; to attach
/// to a share of smaller segments, at most theirs).
perl_report perl_store(key_t key, std::string_view value, std::size_t size = 0)
{
    perl_process p(perl_store_script, {std::to_string(key), std::to_string(size)});
    const bool wrote = p.write(value, 60s);
    p.close_stdin();
    perl_report r = parse_report(p, p.read_all(60s));
    if (!wrote) r.status = -4;
    return r;
}

/// Perl fetches the value of the share of `key` (`size` as for perl_store).
perl_report perl_fetch(key_t key, std::size_t size = 0)
{
    perl_process p(perl_fetch_script, {std::to_string(key), std::to_string(size)});
    p.close_stdin();
    return parse_report(p, p.read_all(60s));
}

// ---- A long-lived Perl handle ------------------------------------------------------------

/// Opens the share of key ARGV[0] (-create ARGV[1], -destroy ARGV[2]),
/// prints "ready" (or "error ERRNO" and exits 3), then runs commands, one a
/// line, each answered by one line:
///   store N + N raw bytes  -> "stored VERSION"
///   fetch                  -> "value LENGTH VERSION SEGMENTS" + the raw bytes
///   lock FLAGS             -> "lock 1" (got it), "lock 0" (LOCK_NB: busy), "lock undef"
///   unlock                 -> "unlocked"
///   incr N                 -> N times: LOCK_EX, fetch, store +1, unlock; "incremented"
///   quit                   -> drops the handle (DESTROY) and prints "bye", exits 0
/// A command that dies answers "error MESSAGE".
const char* const perl_server_script = R"perl(
use strict;
binmode STDIN; binmode STDOUT; $| = 1;
my ($key, $create, $destroy) = @ARGV;
my $s = eval { IPC::ShareLite->new(-key => $key, -create => $create, -destroy => $destroy) };
if (!$s) { print "error ", ($! + 0), "\n"; exit 3; }
print "ready\n";
while (defined(my $line = <STDIN>)) {
    chomp $line;
    my ($cmd, $arg) = split / /, $line, 2;
    my $ok = eval {
        if ($cmd eq 'store') {
            my $d = '';
            while (length($d) < $arg) {
                my $r = read(STDIN, $d, $arg - length($d), length($d));
                die "short input\n" unless $r;
            }
            $s->store($d);
            print "stored ", $s->version, "\n";
        } elsif ($cmd eq 'fetch') {
            my $v = $s->fetch;
            print "value ", length($v), " ", $s->version, " ", $s->num_segments, "\n", $v;
        } elsif ($cmd eq 'lock') {
            my $r = $s->lock($arg + 0);
            print "lock ", (defined $r ? ($r ? 1 : 0) : "undef"), "\n";
        } elsif ($cmd eq 'unlock') {
            defined $s->unlock or die "unlock failed: $!\n";
            print "unlocked\n";
        } elsif ($cmd eq 'incr') {
            for (1 .. $arg) {
                $s->lock(LOCK_EX) or die "lock failed: $!\n";
                my $v = $s->fetch;
                $s->store(($v eq '' ? 0 : $v) + 1);
                defined $s->unlock or die "unlock failed: $!\n";
            }
            print "incremented\n";
        } elsif ($cmd eq 'quit') {
            undef $s;
            print "bye\n";
            exit 0;
        } else {
            die "unknown command '$cmd'\n";
        }
        1;
    };
    if (!$ok) { (my $e = $@) =~ s/\n/ /g; print "error $e\n"; }
}
)perl";

/// What a Perl handle fetched.
struct perl_value {
    bool ok = false;
    std::string value;
    std::uint64_t version = 0;
    std::size_t segments = 0;
};

/// A Perl process holding an IPC::ShareLite handle on one share, driven
/// by commands (perl_server_script). Its constructor waits for "ready"
/// (new() in Perl waits while anyone holds the share's lock: start it
/// before taking one).
class perl_handle {
public:
    explicit perl_handle(key_t key, bool create = true, bool destroy = false)
        : p_(perl_server_script, {std::to_string(key), create ? "yes" : "no", destroy ? "yes" : "no"})
    {
        const auto line = p_.read_line(60s);
        first_ = line.value_or("(nothing)");
        ready_ = line && *line == "ready";
    }

    bool ready() const { return ready_; }
    /// Its first line and stderr, for messages.
    std::string diagnostics() const { return "first line '" + first_ + "', stderr: " + p_.errors(); }
    perl_process& process() { return p_; }

    /// Sends one command line (without waiting for the answer).
    bool send(const std::string& line) { return p_.write(line + "\n"); }
    /// The next answer line ("" if none came in time).
    std::string answer(std::chrono::milliseconds limit = 30s) { return p_.read_line(limit).value_or(""); }

    /// Stores `v`; the version Perl reports after it, or nothing.
    std::optional<std::uint64_t> store(std::string_view v)
    {
        if (!p_.write("store " + std::to_string(v.size()) + "\n") || !p_.write(v, 60s)) return std::nullopt;
        const std::string a = answer(60s);
        if (a.rfind("stored ", 0) != 0) {
            last_error_ = a;
            return std::nullopt;
        }
        return std::stoull(a.substr(7));
    }

    perl_value fetch()
    {
        perl_value r;
        if (!send("fetch")) return r;
        const std::string a = answer(60s);
        std::istringstream in(a);
        std::string word;
        std::size_t len = 0;
        if (!(in >> word >> len >> r.version >> r.segments) || word != "value") {
            last_error_ = a;
            return r;
        }
        const auto bytes = p_.read_bytes(len, 60s);
        if (!bytes) return r;
        r.value = *bytes;
        r.ok = true;
        return r;
    }

    /// $s->lock(flags): 1 (got it), 0 (LOCK_NB and busy), -1 (error / no answer).
    int lock(int flags)
    {
        if (!send("lock " + std::to_string(flags))) return -1;
        return lock_answer();
    }
    /// The answer to a lock command sent with send().
    int lock_answer(std::chrono::milliseconds limit = 30s)
    {
        const std::string a = answer(limit);
        if (a == "lock 1") return 1;
        if (a == "lock 0") return 0;
        last_error_ = a;
        return -1;
    }

    bool unlock() { return send("unlock") && answer() == "unlocked"; }
    bool increment(int n) { return send("incr " + std::to_string(n)) && answer(120s) == "incremented"; }

    /// Drops the Perl handle (its DESTROY runs) and waits for the process to
    /// exit; true if all went as it should.
    bool quit()
    {
        if (!send("quit") || answer() != "bye") return false;
        p_.close_stdin();
        return p_.wait(30s) == 0;
    }

    const std::string& last_error() const { return last_error_; }

private:
    perl_process p_;
    std::string first_;
    bool ready_ = false;
    std::string last_error_;
};

} // namespace

// ---- The format ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(format)

BOOST_AUTO_TEST_CASE(a_fresh_share_is_sharelites_initialised_head_and_semaphore_set, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    BOOST_TEST((s.backend() == share_backend::sharelite));
    BOOST_TEST(s.key() == g.key());
    BOOST_TEST(s.size() == segment_bytes);

    const std::vector<int> chain = chain_of(g.key());
    BOOST_TEST_REQUIRE(chain.size() == 1u);
    BOOST_TEST(segment_size_of(chain[0]) == segment_bytes);
    const raw_header h = header_of(segment_bytes_of(chain[0]));
    BOOST_TEST(h.next_shmid == -1);
    BOOST_TEST(h.length == 0);
    BOOST_TEST(h.shm_state == 1u);
    BOOST_TEST(h.version == 1u);

    const int semid = ::semget(g.key(), 0, 0);
    BOOST_TEST_REQUIRE(semid >= 0);
    struct semid_ds ds {};
    semun_arg arg;
    arg.buf = &ds;
    BOOST_TEST_REQUIRE(::semctl(semid, 0, IPC_STAT, arg) == 0);
    BOOST_TEST(ds.sem_nsems == 3u);
    BOOST_TEST(sem_value(g.key(), 0) == 1); // initialised
    BOOST_TEST(sem_value(g.key(), 1) == 0); // no reader
    BOOST_TEST(sem_value(g.key(), 2) == 0); // no writer
}

BOOST_AUTO_TEST_CASE(a_stored_value_lies_in_the_chain_as_sharelite_lays_it_out, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    const std::string v = pattern(100000);
    s.store(v);

    const std::vector<int> chain = chain_of(g.key());
    BOOST_TEST_REQUIRE(chain.size() == 2u);
    const std::string head = segment_bytes_of(chain[0]);
    const std::string second = segment_bytes_of(chain[1]);
    BOOST_TEST_REQUIRE(head.size() == segment_bytes);
    BOOST_TEST_REQUIRE(second.size() == segment_bytes);
    const raw_header h = header_of(head);
    BOOST_TEST(h.next_shmid == chain[1]);
    BOOST_TEST(h.length == 100000);
    BOOST_TEST(h.shm_state == 1u); // nothing removed yet
    BOOST_TEST(h.version == 2u);
    const raw_header h2 = header_of(second);
    BOOST_TEST(h2.next_shmid == -1);
    BOOST_TEST(h2.length == 0);
    BOOST_TEST(first_difference(std::string_view(head).substr(16), std::string_view(v).substr(0, data_bytes)) == -1);
    BOOST_TEST(first_difference(std::string_view(second).substr(16, v.size() - data_bytes),
                                std::string_view(v).substr(data_bytes)) == -1);

    // A shorter value: the second segment goes, shm_state says so.
    s.store("x");
    const std::vector<int> after = chain_of(g.key());
    BOOST_TEST_REQUIRE(after.size() == 1u);
    BOOST_TEST(after[0] == chain[0]);
    const std::string head2 = segment_bytes_of(after[0]);
    const raw_header h3 = header_of(head2);
    BOOST_TEST(h3.next_shmid == -1);
    BOOST_TEST(h3.length == 1);
    BOOST_TEST(h3.shm_state == 2u);
    BOOST_TEST(h3.version == 3u);
    BOOST_TEST(head2[16] == 'x');
}

BOOST_AUTO_TEST_CASE(each_lock_mode_sets_the_semaphore_sharelite_reads, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    share t(g.key(), sl());
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    BOOST_TEST_REQUIRE(t.lock(share::lock_sh));
    BOOST_TEST(sem_value(g.key(), 1) == 2);
    BOOST_TEST(sem_value(g.key(), 2) == 0);
    t.unlock();
    BOOST_TEST(sem_value(g.key(), 1) == 1);
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex)); // a switch: releases lock_sh first
    BOOST_TEST(sem_value(g.key(), 1) == 0);
    BOOST_TEST(sem_value(g.key(), 2) == 1);
    s.unlock();
    BOOST_TEST(sem_value(g.key(), 1) == 0);
    BOOST_TEST(sem_value(g.key(), 2) == 0);
    BOOST_TEST(sem_value(g.key(), 0) == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Values between Perl and C++ --------------------------------------------------------

BOOST_AUTO_TEST_SUITE(values_across_languages)

const std::size_t interop_sizes[] = {0, 16, 65519, 65520, 65521, 64 * KiB, MiB};

BOOST_AUTO_TEST_CASE(a_value_perl_stores_is_fetched_exactly_by_cpp_and_back, *utf::timeout(300))
{
    for (const std::size_t size : interop_sizes) {
        BOOST_TEST_CONTEXT("value of " << size << " bytes")
        {
            key_guard g;
            const std::string a = pattern(size, 1);
            if (size >= 1) BOOST_TEST_REQUIRE(a.find('\0') != std::string::npos);
            if (size >= 64 * KiB) BOOST_TEST_REQUIRE(has_every_byte_value(a));
            const std::size_t segments = segments_for(size);

            // Perl creates the share and stores a.
            const perl_report stored = perl_store(g.key(), a);
            BOOST_TEST_REQUIRE(stored.status == 0, stored);
            BOOST_TEST(stored.length == size);
            BOOST_TEST(stored.version == 2u);
            BOOST_TEST(stored.segments == segments);

            // C++ attaches and sees a, at Perl's version, in Perl's segments.
            share s(g.key(), sl());
            const std::string got = s.fetch();
            BOOST_TEST(got.size() == size);
            BOOST_TEST(first_difference(got, a) == -1);
            BOOST_TEST(s.version() == stored.version);
            BOOST_TEST(s.num_segments() == stored.segments);
            BOOST_TEST(chain_of(g.key()).size() == segments);

            // Perl stores again (same size, other bytes) into the chain the
            // C++ handle has attached: C++ sees the new bytes.
            const std::string c = pattern(size, 3);
            const perl_report again = perl_store(g.key(), c);
            BOOST_TEST_REQUIRE(again.status == 0, again);
            BOOST_TEST(again.version == 3u);
            BOOST_TEST(first_difference(s.fetch(), c) == -1);
            BOOST_TEST(s.version() == 3u);
            BOOST_TEST(s.num_segments() == again.segments);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_value_cpp_stores_is_fetched_exactly_by_perl, *utf::timeout(300))
{
    for (const std::size_t size : interop_sizes) {
        BOOST_TEST_CONTEXT("value of " << size << " bytes")
        {
            key_guard g;
            const std::string b = pattern(size, 2);
            const std::size_t segments = segments_for(size);

            // C++ creates the share: Perl sees it empty at version 1.
            share s(g.key(), sl_created());
            const perl_report fresh = perl_fetch(g.key());
            BOOST_TEST_REQUIRE(fresh.status == 0, fresh);
            BOOST_TEST(fresh.version == 1u);
            BOOST_TEST(fresh.segments == 1u);
            BOOST_TEST(fresh.length == 0u);
            BOOST_TEST(fresh.value.empty());

            s.store(b);
            BOOST_TEST(s.version() == 2u);
            BOOST_TEST(s.num_segments() == segments);
            const perl_report got = perl_fetch(g.key());
            BOOST_TEST_REQUIRE(got.status == 0, got);
            BOOST_TEST(got.length == size);
            BOOST_TEST(got.value.size() == size);
            BOOST_TEST(first_difference(got.value, b) == -1);
            BOOST_TEST(got.version == 2u);
            BOOST_TEST(got.version == s.version());
            BOOST_TEST(got.segments == segments);
            BOOST_TEST(got.segments == s.num_segments());

            // A Perl store after it, then a C++ one: the versions go on.
            const perl_report p = perl_store(g.key(), "perl");
            BOOST_TEST_REQUIRE(p.status == 0, p);
            BOOST_TEST(p.version == 3u);
            BOOST_TEST(p.segments == 1u); // Perl removed what "perl" does not need
            BOOST_TEST(s.fetch() == "perl");
            BOOST_TEST(s.version() == 3u);
            BOOST_TEST(s.num_segments() == 1u);
            s.store(b);
            const perl_report last = perl_fetch(g.key());
            BOOST_TEST_REQUIRE(last.status == 0, last);
            BOOST_TEST(first_difference(last.value, b) == -1);
            BOOST_TEST(last.version == 4u);
            BOOST_TEST(s.version() == 4u);
            BOOST_TEST(last.segments == s.num_segments());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_perl_handle_and_a_cpp_handle_taking_turns_to_grow_and_shrink_the_chain_see_each_others_values,
                     *utf::timeout(300))
{
    key_guard g;
    share s(g.key(), sl_created());
    perl_handle perl(g.key(), false);
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());

    // Both handles keep their attachments between calls; each turn the other
    // side changes the chain under them.
    const std::size_t sizes[] = {200000, 10, MiB, 65521, 0, 300000, 5, MiB + 1, 65520, 131041};
    std::uint64_t version = 1;
    unsigned seed = 10;
    bool perl_turn = true;
    for (const std::size_t size : sizes) {
        BOOST_TEST_CONTEXT((perl_turn ? "perl" : "c++") << " stores " << size << " bytes")
        {
            const std::string v = pattern(size, seed++);
            if (perl_turn) {
                const auto pv = perl.store(v);
                BOOST_TEST_REQUIRE(pv.has_value(), perl.last_error() << " " << perl.diagnostics());
                BOOST_TEST(*pv == version + 1);
            } else {
                s.store(v);
            }
            ++version;
            perl_turn = !perl_turn;

            const std::string mine = s.fetch();
            BOOST_TEST(first_difference(mine, v) == -1);
            BOOST_TEST(s.version() == version);
            BOOST_TEST(s.num_segments() == segments_for(size));
            const perl_value theirs = perl.fetch();
            BOOST_TEST_REQUIRE(theirs.ok, perl.last_error() << " " << perl.diagnostics());
            BOOST_TEST(first_difference(theirs.value, v) == -1);
            BOOST_TEST(theirs.version == version);
            BOOST_TEST(theirs.segments == segments_for(size));
            BOOST_TEST(chain_of(g.key()).size() == segments_for(size));
        }
    }
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(a_sharelite_string_key_names_the_same_share_in_perl_and_cpp, *utf::timeout(60))
{
    key_guard g;
    // A 4-byte string key whose bytes are g.key() (little-endian, as
    // ShareLite's unpack 'i' reads them on x86-64); its last byte, 0x5d ']'
    // (or 0x4d 'M', ...), makes it a string, not a number.
    std::string skey(4, '\0');
    const std::uint32_t k = static_cast<std::uint32_t>(g.key());
    for (int i = 0; i < 4; ++i) skey[static_cast<std::size_t>(i)] = static_cast<char>(k >> (8 * i));
    BOOST_TEST_REQUIRE(shmkit::share_key(skey) == g.key());

    share s(std::string_view(skey), sl_created());
    BOOST_TEST(s.key() == g.key());
    const std::string v = pattern(70000, 7);
    s.store(v);

    perl_process p(perl_fetch_script, {"unused", "0", std::to_string(k)});
    p.close_stdin();
    const perl_report r = parse_report(p, p.read_all(60s));
    BOOST_TEST_REQUIRE(r.status == 0, r);
    BOOST_TEST(first_difference(r.value, v) == -1);
    BOOST_TEST(r.version == 2u);
    BOOST_TEST(r.segments == 2u);
}

BOOST_AUTO_TEST_CASE(segments_of_a_perl_share_grown_by_cpp_have_the_perl_shares_permission_bits, *utf::timeout(60))
{
    key_guard g;
    const perl_report made = perl_store(g.key(), "small");
    BOOST_TEST_REQUIRE(made.status == 0, made);
    BOOST_TEST(sem_permissions(g.key()) == 0666); // ShareLite's default
    share s(g.key(), sl()); // shmkit's default mode (0600) does not apply when attaching
    s.store(pattern(MiB));
    const std::vector<int> chain = chain_of(g.key());
    BOOST_TEST_REQUIRE(chain.size() == segments_for(MiB));
    for (int id : chain) {
        BOOST_TEST(segment_permissions(id) == 0666, "segment " << id);
        BOOST_TEST(segment_size_of(id) == segment_bytes, "segment " << id);
    }
    const perl_report r = perl_fetch(g.key());
    BOOST_TEST_REQUIRE(r.status == 0, r);
    BOOST_TEST(first_difference(r.value, pattern(MiB)) == -1);
}

BOOST_AUTO_TEST_CASE(a_share_of_small_segments_is_chunked_alike_in_perl_and_cpp, *utf::timeout(60))
{
    key_guard g;
    share_options o = sl_created();
    o.size = 4096;
    share s(g.key(), o);
    BOOST_TEST(s.size() == 4096u);
    const std::string v = pattern(10000, 4);
    s.store(v);
    BOOST_TEST(s.num_segments() == 3u); // 4080 bytes a segment
    // Perl asks no bigger segments than the share's (ShareLite fails with
    // EINVAL otherwise) and uses the share's, whatever it asked.
    const perl_report r = perl_fetch(g.key(), 1000);
    BOOST_TEST_REQUIRE(r.status == 0, r);
    BOOST_TEST(r.segments == 3u);
    BOOST_TEST(first_difference(r.value, v) == -1);

    // Perl grows it: its segments have the head's size, C++ reads them.
    const std::string w = pattern(20000, 5);
    const perl_report p = perl_store(g.key(), w, 4096);
    BOOST_TEST_REQUIRE(p.status == 0, p);
    BOOST_TEST(p.segments == 5u);
    BOOST_TEST(first_difference(s.fetch(), w) == -1);
    BOOST_TEST(s.num_segments() == 5u);
    for (int id : chain_of(g.key())) BOOST_TEST(segment_size_of(id) == 4096u, "segment " << id);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Locks between Perl and C++ ----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(locks_across_languages)

BOOST_AUTO_TEST_CASE(while_perl_holds_lock_ex_cpp_gets_no_lock_until_perl_unlocks, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("before");
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    BOOST_TEST_REQUIRE(perl.lock(perl_lock_ex) == 1, perl.last_error());
    BOOST_TEST(sem_value(g.key(), 2) == 1);

    BOOST_TEST(!s.lock(share::lock_ex | share::lock_nb));
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(!s.lock(share::lock_sh | share::lock_nb));
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(!s.try_lock_for(50ms));
    BOOST_TEST(!s.try_lock_shared_for(50ms));
    BOOST_TEST(!s.try_lock());
    BOOST_TEST(!s.try_lock_shared());
    BOOST_TEST(s.held() == 0);
    // Perl, holding the lock, stores; that is what C++ sees afterwards.
    BOOST_TEST_REQUIRE(perl.store("from perl").has_value(), perl.last_error());

    BOOST_TEST_REQUIRE(perl.unlock()); // answered once Perl has released it
    BOOST_TEST(sem_value(g.key(), 2) == 0);
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    BOOST_TEST(s.held() == share::lock_ex);
    BOOST_TEST(s.fetch() == "from perl");
    s.store("from c++");
    s.unlock();
    const perl_value v = perl.fetch();
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(v.value == "from c++");
    BOOST_TEST(v.version == 4u);
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(while_perl_holds_lock_sh_cpp_gets_lock_sh_but_not_lock_ex, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("shared");
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    BOOST_TEST_REQUIRE(perl.lock(perl_lock_sh) == 1, perl.last_error());
    BOOST_TEST(sem_value(g.key(), 1) == 1);

    BOOST_TEST(s.lock(share::lock_sh | share::lock_nb));
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(s.fetch() == "shared");
    s.unlock();
    BOOST_TEST(!s.lock(share::lock_ex | share::lock_nb));
    BOOST_TEST(s.held() == 0);
    BOOST_TEST(!s.try_lock_for(50ms));
    BOOST_TEST(s.try_lock_shared_for(50ms));
    s.unlock();

    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    s.unlock();
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(while_cpp_holds_lock_ex_perl_gets_no_lock_until_cpp_unlocks, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    // Perl's new() waits while anyone holds the lock: Perl first.
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));

    BOOST_TEST(perl.lock(perl_lock_ex | perl_lock_nb) == 0, perl.last_error());
    BOOST_TEST(perl.lock(perl_lock_sh | perl_lock_nb) == 0, perl.last_error());
    s.store("c++ under lock_ex");
    s.unlock();

    BOOST_TEST(perl.lock(perl_lock_ex | perl_lock_nb) == 1, perl.last_error());
    const perl_value v = perl.fetch(); // under its own lock
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(v.value == "c++ under lock_ex");
    BOOST_TEST(!s.lock(share::lock_sh | share::lock_nb)); // Perl holds it now
    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(s.lock(share::lock_sh | share::lock_nb));
    s.unlock();
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(while_cpp_holds_lock_sh_perl_gets_lock_sh_but_not_lock_ex, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("shared");
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));

    BOOST_TEST(perl.lock(perl_lock_sh | perl_lock_nb) == 1, perl.last_error());
    const perl_value v = perl.fetch();
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(v.value == "shared");
    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(perl.lock(perl_lock_ex | perl_lock_nb) == 0, perl.last_error());

    s.unlock();
    BOOST_TEST(perl.lock(perl_lock_ex | perl_lock_nb) == 1, perl.last_error());
    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(perl_blocked_in_lock_ex_gets_it_when_cpp_unlocks, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    BOOST_TEST_REQUIRE(perl.send("lock " + std::to_string(perl_lock_ex)));
    test::until_sleeping(perl.process().pid());
    BOOST_TEST(!perl.process().line_ready()); // it cannot have the lock while we hold it
    s.store("stored while perl waited");
    s.unlock();

    BOOST_TEST(perl.lock_answer() == 1, perl.last_error());
    BOOST_TEST(!s.lock(share::lock_ex | share::lock_nb));
    const perl_value v = perl.fetch();
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(v.value == "stored while perl waited");
    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    s.unlock();
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(a_cpp_process_blocked_in_lock_ex_gets_it_when_perl_unlocks, *utf::timeout(60))
{
    key_guard g;
    {
        share creator(g.key(), sl_created());
        creator.store("perl's");
    }
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    BOOST_TEST_REQUIRE(perl.lock(perl_lock_ex) == 1, perl.last_error());

    const key_t key = g.key();
    test::child c([&] {
        share mine(key, sl());
        mine.lock(share::lock_ex); // waits for Perl
        if (mine.held() != share::lock_ex) return 1;
        if (mine.fetch() != "perl's") return 2;
        mine.store("the child's");
        mine.unlock();
        return 0;
    });
    test::until_sleeping(c.pid());
    // While Perl holds the lock the child cannot have stored.
    const perl_value during = perl.fetch();
    BOOST_TEST_REQUIRE(during.ok, perl.last_error());
    BOOST_TEST(during.value == "perl's");
    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(c.wait(30s) == 0);
    const perl_value after = perl.fetch();
    BOOST_TEST_REQUIRE(after.ok, perl.last_error());
    BOOST_TEST(after.value == "the child's");
    BOOST_TEST(after.version == 3u);
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(opening_a_cpp_handle_while_perl_holds_a_lock_does_not_wait, *utf::timeout(120))
{
    key_guard g;
    {
        share creator(g.key(), sl_created());
        creator.store("value");
    }
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    const key_t key = g.key();
    for (const int mode : {perl_lock_ex, perl_lock_sh}) {
        BOOST_TEST_REQUIRE(perl.lock(mode) == 1, perl.last_error());
        for (const bool create : {false, true}) {
            BOOST_TEST_CONTEXT("perl holds " << (mode == perl_lock_ex ? "LOCK_EX" : "LOCK_SH") << ", create "
                                             << create)
            {
                // In a child, so that a constructor that waits for Perl's lock
                // is a failed wait, not a hung test.
                test::child c([&] {
                    share mine(key, sl(create));
                    if (mine.held() != 0) return 1;
                    if (mine.version() != 2u) return 2;
                    if (mine.lock(share::lock_ex | share::lock_nb)) return 3;
                    if (mode == perl_lock_sh && mine.fetch() != "value") return 4;
                    return 0;
                });
                BOOST_TEST(c.wait(20s) == 0);
            }
        }
        BOOST_TEST_REQUIRE(perl.unlock());
    }
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(perl_and_cpp_processes_incrementing_a_counter_under_lock_ex_lose_no_increment,
                     *utf::timeout(300))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("0");
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());

    constexpr int per_process = 300;
    const key_t key = g.key();
    const auto incrementer = [&] {
        share mine(key, sl());
        for (int i = 0; i < per_process; ++i) {
            if (!mine.lock(share::lock_ex)) return 1;
            const std::string v = mine.fetch();
            mine.store(std::to_string(std::stoi(v) + 1));
            mine.unlock();
        }
        return 0;
    };
    test::child c1(incrementer), c2(incrementer);
    BOOST_TEST(perl.increment(per_process), perl.last_error() << " " << perl.diagnostics());
    BOOST_TEST(c1.wait(120s) == 0);
    BOOST_TEST(c2.wait(120s) == 0);
    BOOST_TEST(s.fetch() == std::to_string(3 * per_process));
    BOOST_TEST(s.version() == 2u + 3u * per_process);
    const perl_value v = perl.fetch();
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(v.value == std::to_string(3 * per_process));
    BOOST_TEST(v.version == s.version());
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Killed lock holders -----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(killed_holders)

/// A C++ child takes `mode` and is killed holding it; afterwards Perl and C++
/// get the lock at once.
void check_killed_cpp_holder(int mode)
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("before");
    perl_handle perl(g.key());
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());

    const key_t key = g.key();
    test::pipe_pair to_parent, never;
    test::child c([&] {
        share mine(key, sl());
        if (!mine.lock(mode)) return 1;
        to_parent.send('L');
        never.receive(); // until killed
        return 2;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'L');
    BOOST_TEST(sem_value(key, mode == share::lock_ex ? 2 : 1) == 1);
    BOOST_TEST(perl.lock(perl_lock_ex | perl_lock_nb) == 0, perl.last_error());
    BOOST_TEST(!s.lock(share::lock_ex | share::lock_nb));
    if (mode == share::lock_ex) {
        BOOST_TEST(perl.lock(perl_lock_sh | perl_lock_nb) == 0, perl.last_error());
        BOOST_TEST(!s.lock(share::lock_sh | share::lock_nb));
    }

    c.kill(SIGKILL);
    BOOST_TEST(c.wait(30s) == 128 + SIGKILL);
    BOOST_TEST(sem_value(key, 1) == 0);
    BOOST_TEST(sem_value(key, 2) == 0);
    BOOST_TEST(perl.lock(perl_lock_ex | perl_lock_nb) == 1, perl.last_error());
    BOOST_TEST_REQUIRE(perl.unlock());
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    s.store("after");
    s.unlock();
    const perl_value v = perl.fetch();
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(v.value == "after");
    BOOST_TEST(perl.quit(), perl.diagnostics());
}

BOOST_AUTO_TEST_CASE(a_cpp_process_killed_holding_lock_ex_leaves_the_lock_free_for_perl_and_cpp, *utf::timeout(60))
{
    check_killed_cpp_holder(share::lock_ex);
}

BOOST_AUTO_TEST_CASE(a_cpp_process_killed_holding_lock_sh_leaves_the_lock_free_for_perl_and_cpp, *utf::timeout(60))
{
    check_killed_cpp_holder(share::lock_sh);
}

BOOST_AUTO_TEST_CASE(a_perl_process_killed_holding_lock_ex_leaves_the_lock_free_for_cpp, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    {
        perl_handle perl(g.key());
        BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
        BOOST_TEST_REQUIRE(perl.lock(perl_lock_ex) == 1, perl.last_error());
        BOOST_TEST(!s.lock(share::lock_ex | share::lock_nb));
        perl.process().kill(SIGKILL);
        BOOST_TEST(perl.process().wait(30s) == 128 + SIGKILL);
    }
    BOOST_TEST(sem_value(g.key(), 2) == 0);
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    s.unlock();
    BOOST_TEST(s.lock(share::lock_sh | share::lock_nb));
    s.unlock();
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Keys of the chain's segments --------------------------------------------------------

BOOST_AUTO_TEST_SUITE(segment_keys)

BOOST_AUTO_TEST_CASE(a_cpp_chain_takes_none_of_the_keys_after_the_shares, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store(pattern(MiB));
    BOOST_TEST(s.num_segments() == 17u);
    BOOST_TEST_REQUIRE(chain_of(g.key()).size() == 17u);
    for (int i = 1; i < 20; ++i) BOOST_TEST(shmget_errno(g.key() + i) == ENOENT, "key + " << i);
}

BOOST_AUTO_TEST_CASE(the_perl_share_at_the_next_key_keeps_its_value_whatever_cpp_stores, *utf::timeout(120))
{
    key_guard g;
    const key_t k = g.key(), k1 = g.key() + 1;
    share s(k, sl_created());
    s.store(pattern(MiB, 1));
    for (int i = 1; i < 20; ++i) BOOST_TEST(shmget_errno(k + i) == ENOENT, "key + " << i);

    // Perl makes the share at k + 1 (its extra segments at k + 2, ...).
    const std::string theirs = pattern(100000, 2);
    const perl_report made = perl_store(k1, theirs);
    BOOST_TEST_REQUIRE(made.status == 0, made);
    BOOST_TEST_REQUIRE(made.segments == 2u);
    const std::vector<int> their_chain = chain_of(k1);
    BOOST_TEST_REQUIRE(their_chain.size() == 2u);

    share t(k1, sl());
    const std::string sizes_note[] = {"1 MiB", "10 bytes", "1 MiB again"};
    const std::string values[] = {pattern(MiB, 3), pattern(10, 4), pattern(MiB, 5)};
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST_CONTEXT("after c++ stores " << sizes_note[i] << " into key")
        {
            s.store(values[i]);
            for (int id : chain_of(k))
                BOOST_TEST(std::count(their_chain.begin(), their_chain.end(), id) == 0, "shmid " << id);
            BOOST_TEST(chain_of(k1) == their_chain);
            // k + 1, through Perl and C++.
            const perl_report r = perl_fetch(k1);
            BOOST_TEST_REQUIRE(r.status == 0, r);
            BOOST_TEST(first_difference(r.value, theirs) == -1);
            BOOST_TEST(r.version == 2u);
            BOOST_TEST(first_difference(t.fetch(), theirs) == -1);
            BOOST_TEST(t.version() == 2u);
            // k, through Perl and C++.
            const perl_report mine = perl_fetch(k);
            BOOST_TEST_REQUIRE(mine.status == 0, mine);
            BOOST_TEST(first_difference(mine.value, values[i]) == -1);
            BOOST_TEST(first_difference(s.fetch(), values[i]) == -1);
            BOOST_TEST(s.num_segments() == segments_for(values[i].size()));
        }
    }
}

BOOST_AUTO_TEST_CASE(the_segments_a_shorter_value_no_longer_needs_are_removed, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store(pattern(MiB));
    const std::vector<int> big = chain_of(g.key());
    BOOST_TEST_REQUIRE(big.size() == 17u);
    BOOST_TEST(s.num_segments() == 17u);

    s.store(pattern(150000)); // 3 segments
    BOOST_TEST(s.num_segments() == 3u);
    const std::vector<int> mid = chain_of(g.key());
    BOOST_TEST_REQUIRE(mid.size() == 3u);
    BOOST_TEST(std::equal(mid.begin(), mid.end(), big.begin())); // the first three are kept
    for (std::size_t i = 0; i < big.size(); ++i)
        BOOST_TEST(segment_exists(big[i]) == (i < 3), "segment " << i << " (shmid " << big[i] << ")");

    s.store("tiny");
    BOOST_TEST(s.num_segments() == 1u);
    BOOST_TEST(chain_of(g.key()) == std::vector<int>{big[0]});
    for (std::size_t i = 1; i < big.size(); ++i)
        BOOST_TEST(!segment_exists(big[i]), "segment " << i << " (shmid " << big[i] << ")");
    BOOST_TEST(s.fetch() == "tiny");
}

BOOST_AUTO_TEST_CASE(segments_another_handle_had_attached_go_once_it_looks_again, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    share other(g.key(), sl());
    s.store(pattern(MiB));
    BOOST_TEST(first_difference(other.fetch(), pattern(MiB)) == -1); // attaches all 17
    const std::vector<int> big = chain_of(g.key());
    BOOST_TEST_REQUIRE(big.size() == 17u);

    s.store("short");
    BOOST_TEST(other.fetch() == "short"); // sees the chain changed, detaches
    BOOST_TEST(other.num_segments() == 1u);
    for (std::size_t i = 1; i < big.size(); ++i)
        BOOST_TEST(!segment_exists(big[i]), "segment " << i << " (shmid " << big[i] << ")");

    // And it grows the chain again from its own (fresh) view of it.
    other.store(pattern(200000, 9));
    BOOST_TEST(first_difference(s.fetch(), pattern(200000, 9)) == -1);
    BOOST_TEST(s.num_segments() == 4u);
    BOOST_TEST(chain_of(g.key()).size() == 4u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Within C++ -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(values_within_cpp)

/// The round trip of one value through one handle, a second handle and a
/// forked child's own handle, with the version, num_segments() and stats().
void check_round_trip(std::size_t size)
{
    BOOST_TEST_CONTEXT("value of " << size << " bytes")
    {
        key_guard g;
        share s(g.key(), sl_created());
        share other(g.key(), sl());
        BOOST_TEST(s.version() == 1u);
        BOOST_TEST(s.fetch().empty());
        const std::string v = pattern(size);
        const std::size_t segments = segments_for(size);

        s.store(v);
        BOOST_TEST(s.version() == 2u);
        BOOST_TEST(other.version() == 2u);
        test::check_fetches(s, v);
        test::check_fetches(other, v);
        BOOST_TEST(s.num_segments() == segments);
        BOOST_TEST(other.num_segments() == segments);
        BOOST_TEST(chain_of(g.key()).size() == segments);

        const shmkit::share_stats st = other.stats();
        BOOST_TEST(st.version == 2u);
        BOOST_TEST(st.value_size == size);
        BOOST_TEST(st.segments == segments);
        BOOST_TEST(st.bytes_mapped == segments * segment_bytes);
        BOOST_TEST(st.lock_recoveries == 0u);
        BOOST_TEST(st.repairs == 0u);

        const key_t key = g.key();
        test::child c([&] {
            share mine(key, sl());
            if (mine.version() != 2u) return 1;
            const std::string seen = mine.fetch();
            if (seen != v) return 2;
            if (mine.num_segments() != segments) return 3;
            mine.store(std::string(v.rbegin(), v.rend()));
            if (mine.version() != 3u) return 4;
            return 0;
        });
        BOOST_TEST(c.wait(60s) == 0);
        const std::string reversed(v.rbegin(), v.rend());
        BOOST_TEST(s.version() == 3u);
        BOOST_TEST(first_difference(s.fetch(), reversed) == -1);
        BOOST_TEST(first_difference(other.fetch(), reversed) == -1);

        other.store("small");
        BOOST_TEST(s.version() == 4u);
        BOOST_TEST(s.fetch() == "small");
        BOOST_TEST(s.num_segments() == 1u);
        BOOST_TEST(chain_of(g.key()).size() == 1u);
    }
}

BOOST_AUTO_TEST_CASE(values_of_every_size_round_trip_exactly_between_handles_and_processes, *utf::timeout(300))
{
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(16), std::size_t(65519), std::size_t(65520),
                             std::size_t(65521), MiB})
        check_round_trip(size);
}

BOOST_AUTO_TEST_CASE(fetch_into_a_string_replaces_its_contents, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store(pattern(200000));
    std::string out = "old contents";
    s.fetch(out);
    BOOST_TEST(first_difference(out, pattern(200000)) == -1);
    s.store("");
    s.fetch(out);
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(fetch_view_under_a_lock_is_the_whole_value_and_without_one_a_logic_error, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store(pattern(300000));
    BOOST_CHECK_THROW(s.fetch_view(), std::logic_error);
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    BOOST_TEST(first_difference(s.fetch_view(), pattern(300000)) == -1);
    s.unlock();
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    s.store("short");
    BOOST_TEST(s.fetch_view() == "short");
    s.unlock();
}

BOOST_AUTO_TEST_CASE(stores_and_fetches_under_a_held_lock_keep_it_held, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    s.store(pattern(70000));
    BOOST_TEST(first_difference(s.fetch(), pattern(70000)) == -1);
    BOOST_TEST(s.held() == share::lock_ex);
    BOOST_TEST(sem_value(g.key(), 2) == 1);
    s.unlock();
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    s.store("under lock_sh");
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(sem_value(g.key(), 1) == 1);
    BOOST_TEST(sem_value(g.key(), 2) == 0);
    BOOST_TEST(s.fetch() == "under lock_sh");
    s.unlock();
    BOOST_TEST(sem_value(g.key(), 1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(opening)

BOOST_AUTO_TEST_CASE(size_is_65536_by_default_and_an_attaching_handle_gets_the_creators, *utf::timeout(60))
{
    {
        key_guard g;
        share s(g.key(), sl_created());
        BOOST_TEST(s.size() == 65536u);
        share_options o = sl();
        o.size = 4096; // a hint: ignored when attaching
        share t(g.key(), o);
        BOOST_TEST(t.size() == 65536u);
    }
    for (const std::size_t hint : {std::size_t(0), std::size_t(16)}) {
        key_guard g;
        share_options o = sl_created();
        o.size = hint; // ShareLite: 16 bytes or less is the default
        share s(g.key(), o);
        BOOST_TEST(s.size() == 65536u, "hint " << hint);
        BOOST_TEST(segment_size_of(chain_of(g.key()).at(0)) == 65536u);
    }
    for (const std::size_t creators : {std::size_t(4096), std::size_t(100000)}) {
        BOOST_TEST_CONTEXT("creator's size " << creators)
        {
            key_guard g;
            share_options o = sl_created();
            o.size = creators;
            share s(g.key(), o);
            BOOST_TEST(s.size() == creators);
            for (const std::size_t asked : {std::size_t(0), std::size_t(1000), std::size_t(8192),
                                            std::size_t(65536), std::size_t(200000)}) {
                share_options a = sl();
                a.size = asked;
                share t(g.key(), a);
                BOOST_TEST(t.size() == creators, "asked " << asked);
            }
            const std::string v = pattern(3 * creators);
            share t(g.key(), sl());
            t.store(v);
            BOOST_TEST(s.num_segments() == segments_for(v.size(), creators));
            BOOST_TEST(first_difference(s.fetch(), v) == -1);
            for (int id : chain_of(g.key())) BOOST_TEST(segment_size_of(id) == creators);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_missing_share_without_create_is_enoent_naming_create_and_creates_nothing, *utf::timeout(60))
{
    key_guard g;
    const test::thrown t = test::error_of([&] { share s(g.key(), sl()); });
    BOOST_TEST(t.code == ENOENT);
    BOOST_TEST(t.what.find("create") != std::string::npos, t.what);
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(shmget_errno(g.key()) == ENOENT);
}

BOOST_AUTO_TEST_CASE(exclusive_on_an_existing_share_is_eexist_and_changes_nothing, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("kept");
    for (const bool create : {false, true}) {
        share_options o = sl(create);
        o.exclusive = true;
        BOOST_TEST(test::error_code_of([&] { share t(g.key(), o); }) == EEXIST, "create " << create);
    }
    BOOST_TEST(s.fetch() == "kept");
    BOOST_TEST(s.version() == 2u);
    // The failed opens hold nothing.
    BOOST_TEST(sem_value(g.key(), 1) == 0);
    BOOST_TEST(sem_value(g.key(), 2) == 0);
    BOOST_TEST(s.lock(share::lock_ex | share::lock_nb));
    s.unlock();
    // Perl sees the share as it was.
    const perl_report r = perl_fetch(g.key());
    BOOST_TEST_REQUIRE(r.status == 0, r);
    BOOST_TEST(r.value == "kept");
    BOOST_TEST(r.version == 2u);
}

BOOST_AUTO_TEST_CASE(exclusive_alone_creates_a_fresh_share, *utf::timeout(60))
{
    key_guard g;
    share_options o = sl();
    o.exclusive = true;
    share s(g.key(), o);
    BOOST_TEST(s.exclusive());
    BOOST_TEST(!s.create());
    BOOST_TEST(semget_errno(g.key()) == 0);
    BOOST_TEST(s.fetch().empty());
    BOOST_TEST(s.version() == 1u);
    s.store("x");
    share t(g.key(), sl());
    BOOST_TEST(t.fetch() == "x");
}

BOOST_AUTO_TEST_CASE(exclusive_over_a_stray_segment_at_the_key_is_eexist_and_leaves_no_semaphore_set,
                     *utf::timeout(60))
{
    key_guard g;
    // A segment at the key without a semaphore set (as Perl's extra segment
    // of the share at key - 1 would be).
    const int stray = ::shmget(g.key(), 4096, IPC_CREAT | IPC_EXCL | 0600);
    BOOST_TEST_REQUIRE(stray >= 0);
    void* a = ::shmat(stray, nullptr, 0);
    BOOST_TEST_REQUIRE(a != reinterpret_cast<void*>(-1));
    std::memset(a, 0x5a, 4096);
    ::shmdt(a);

    share_options o = sl_created();
    o.exclusive = true;
    BOOST_TEST(test::error_code_of([&] { share s(g.key(), o); }) == EEXIST);
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(segment_exists(stray));
    const std::string bytes = segment_bytes_of(stray);
    BOOST_TEST(bytes == std::string(4096, '\x5a')); // untouched
}

BOOST_AUTO_TEST_CASE(the_accessors_report_how_the_share_was_opened, *utf::timeout(60))
{
    key_guard g;
    share_options o = sl_created();
    o.mode = 0640;
    o.destroy = true;
    share s(g.key(), o);
    BOOST_TEST(s.key() == g.key());
    BOOST_TEST((s.backend() == share_backend::sharelite));
    BOOST_TEST(s.create());
    BOOST_TEST(!s.exclusive());
    BOOST_TEST(s.mode() == mode_t(0640));
    BOOST_TEST(s.destroy());
    BOOST_TEST(s.held() == 0);

    share plain(g.key(), sl());
    BOOST_TEST(!plain.create());
    BOOST_TEST(!plain.destroy());
    BOOST_TEST((plain.backend() == share_backend::sharelite));
}

BOOST_AUTO_TEST_CASE(the_semaphore_set_and_every_segment_get_exactly_the_mode_asked, *utf::timeout(60))
{
    for (const mode_t mode : {mode_t(0600), mode_t(0640), mode_t(0604), mode_t(0666)}) {
        BOOST_TEST_CONTEXT("mode 0" << std::oct << mode)
        {
            key_guard g;
            share_options o = sl_created();
            o.mode = mode;
            share s = test::share_under_umask(0077, g.key(), o);
            BOOST_TEST(sem_permissions(g.key()) == static_cast<int>(mode));
            s.store(pattern(200000));
            // Segments made by another handle (asking nothing) too.
            share other(g.key(), sl());
            other.store(pattern(400000));
            const std::vector<int> chain = chain_of(g.key());
            BOOST_TEST_REQUIRE(chain.size() == segments_for(400000));
            for (int id : chain) BOOST_TEST(segment_permissions(id) == static_cast<int>(mode), "shmid " << id);
        }
    }
}

BOOST_AUTO_TEST_CASE(key_0_is_refused_with_einval, *utf::timeout(60))
{
    for (const bool create : {false, true}) {
        const test::thrown t = test::error_of([&] { share s(key_t(0), sl(create)); });
        BOOST_TEST(t.code == EINVAL, "create " << create << ": " << t.what);
    }
    BOOST_TEST(!share::remove(0, share_backend::sharelite));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Destroy and remove --------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(destroying)

BOOST_AUTO_TEST_CASE(a_handle_with_destroy_removes_the_semaphore_set_and_every_segment, *utf::timeout(60))
{
    key_guard g;
    std::vector<int> chain;
    int semid = -1;
    {
        share_options o = sl_created();
        o.destroy = true;
        share s(g.key(), o);
        s.store(pattern(200000));
        chain = chain_of(g.key());
        semid = ::semget(g.key(), 0, 0);
    }
    BOOST_TEST_REQUIRE(chain.size() == 4u);
    BOOST_TEST_REQUIRE(semid >= 0);
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(shmget_errno(g.key()) == ENOENT);
    for (int id : chain) BOOST_TEST(!segment_exists(id), "shmid " << id);
    BOOST_TEST(::semctl(semid, 0, GETVAL) == -1);
    BOOST_TEST(test::error_code_of([&] { share t(g.key(), sl()); }) == ENOENT);
}

BOOST_AUTO_TEST_CASE(a_handle_without_destroy_leaves_the_share, *utf::timeout(60))
{
    key_guard g;
    {
        share s(g.key(), sl_created());
        s.store(pattern(200000));
    }
    BOOST_TEST(semget_errno(g.key()) == 0);
    BOOST_TEST(chain_of(g.key()).size() == 4u);
    share t(g.key(), sl());
    BOOST_TEST(first_difference(t.fetch(), pattern(200000)) == -1);
}

BOOST_AUTO_TEST_CASE(a_forked_child_destroying_an_inherited_destroy_handle_does_not_remove_the_share,
                     *utf::timeout(60))
{
    key_guard g;
    share_options o = sl_created();
    o.destroy = true;
    std::optional<share> s(std::in_place, g.key(), o);
    s->store(pattern(200000));
    const std::vector<int> chain = chain_of(g.key());
    BOOST_TEST_REQUIRE(chain.size() == 4u);
    test::child c([&] {
        if (s->destroy()) return 1; // not this process's to remove
        {
            share local(std::move(*s));
        }
        return 0;
    });
    BOOST_TEST(c.wait(30s) == 0);
    BOOST_TEST(semget_errno(g.key()) == 0);
    BOOST_TEST(chain_of(g.key()) == chain);
    {
        share t(g.key(), sl());
        BOOST_TEST(first_difference(t.fetch(), pattern(200000)) == -1);
    }
    BOOST_TEST(s->destroy());
    s.reset(); // the parent's handle does remove it
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(shmget_errno(g.key()) == ENOENT);
    for (int id : chain) BOOST_TEST(!segment_exists(id), "shmid " << id);
}

BOOST_AUTO_TEST_CASE(a_store_into_a_destroyed_share_through_an_attached_handle_is_eidrm, *utf::timeout(60))
{
    key_guard g;
    share keeper(g.key(), sl_created());
    {
        share_options o = sl();
        o.destroy = true;
        share s(g.key(), o);
        s.store("x");
    }
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    const test::thrown t = test::error_of([&] { keeper.store("y"); });
    BOOST_TEST(t.code == EIDRM, t.what);
}

BOOST_AUTO_TEST_CASE(remove_is_true_for_an_existing_share_then_false, *utf::timeout(60))
{
    key_guard g;
    std::vector<int> chain;
    {
        share s(g.key(), sl_created());
        s.store(pattern(MiB));
        chain = chain_of(g.key());
    }
    BOOST_TEST_REQUIRE(chain.size() == 17u);
    BOOST_TEST(share::remove(g.key(), share_backend::sharelite));
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(shmget_errno(g.key()) == ENOENT);
    for (int id : chain) BOOST_TEST(!segment_exists(id), "shmid " << id);
    BOOST_TEST(!share::remove(g.key(), share_backend::sharelite));
    BOOST_TEST(test::error_code_of([&] { share t(g.key(), sl()); }) == ENOENT);
}

BOOST_AUTO_TEST_CASE(a_perl_handle_with_destroy_removes_the_share_when_perl_drops_it, *utf::timeout(60))
{
    key_guard g;
    std::vector<int> chain;
    {
        share s(g.key(), sl_created());
        s.store(pattern(200000));
        chain = chain_of(g.key());
    }
    BOOST_TEST_REQUIRE(chain.size() == 4u);
    perl_handle perl(g.key(), false, true);
    BOOST_TEST_REQUIRE(perl.ready(), perl.diagnostics());
    const perl_value v = perl.fetch();
    BOOST_TEST_REQUIRE(v.ok, perl.last_error());
    BOOST_TEST(first_difference(v.value, pattern(200000)) == -1);
    BOOST_TEST(perl.quit(), perl.diagnostics());

    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(shmget_errno(g.key()) == ENOENT);
    for (int id : chain) BOOST_TEST(!segment_exists(id), "shmid " << id);
    const test::thrown t = test::error_of([&] { share s(g.key(), sl()); });
    BOOST_TEST(t.code == ENOENT, t.what);
    BOOST_TEST(!share::remove(g.key(), share_backend::sharelite));
}

BOOST_AUTO_TEST_CASE(a_perl_process_with_destroy_exiting_removes_the_share_cpp_made, *utf::timeout(60))
{
    key_guard g;
    {
        share s(g.key(), sl_created());
        s.store("doomed");
    }
    // The object goes at the end of the script, without an explicit undef.
    perl_process p("my $s = IPC::ShareLite->new(-key => $ARGV[0], -create => 'no', -destroy => 'yes'); "
                   "print $s->fetch, \"\\n\";",
                   {std::to_string(g.key())});
    p.close_stdin();
    const auto out = p.read_all(30s);
    BOOST_TEST(p.wait(30s) == 0, p.errors());
    BOOST_TEST(out.value_or("") == "doomed\n");
    BOOST_TEST(semget_errno(g.key()) == ENOENT);
    BOOST_TEST(shmget_errno(g.key()) == ENOENT);
    BOOST_TEST(test::error_code_of([&] { share s(g.key(), sl()); }) == ENOENT);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Forked children and their parent's lock -------------------------------------------------

BOOST_AUTO_TEST_SUITE(forked_children)

BOOST_AUTO_TEST_CASE(a_forked_child_does_not_hold_the_lock_ex_its_parent_holds_on_the_inherited_handle,
                     *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        if (s.held() != 0) return 1;
        if (s.lock(share::lock_ex | share::lock_nb)) return 2;
        if (s.lock(share::lock_sh | share::lock_nb)) return 3;
        if (s.try_lock_for(50ms)) return 4;
        if (s.held() != 0) return 5;
        to_parent.send();
        if (to_child.receive(30s) != 'u') return 6;
        if (!s.lock(share::lock_ex | share::lock_nb)) return 7;
        if (s.held() != share::lock_ex) return 8;
        s.store("child");
        s.unlock();
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    BOOST_TEST(s.held() == share::lock_ex); // still ours
    BOOST_TEST(sem_value(g.key(), 2) == 1);
    s.unlock();
    to_child.send('u');
    BOOST_TEST(c.wait(30s) == 0);
    BOOST_TEST(s.fetch() == "child");
    BOOST_TEST(sem_value(g.key(), 2) == 0);
}

BOOST_AUTO_TEST_CASE(a_forked_child_does_not_hold_the_lock_sh_its_parent_holds_on_the_inherited_handle,
                     *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    s.store("value");
    BOOST_TEST_REQUIRE(s.lock(share::lock_sh));
    test::child c([&] {
        if (s.held() != 0) return 1;
        if (s.lock(share::lock_ex | share::lock_nb)) return 2;
        if (!s.lock(share::lock_sh | share::lock_nb)) return 3;
        if (s.fetch() != "value") return 4;
        s.unlock();
        return 0;
    });
    BOOST_TEST(c.wait(30s) == 0);
    BOOST_TEST(s.held() == share::lock_sh);
    BOOST_TEST(sem_value(g.key(), 1) == 1); // the parent's, still
    s.unlock();
    BOOST_TEST(sem_value(g.key(), 1) == 0);
}

BOOST_AUTO_TEST_CASE(while_one_cpp_process_holds_lock_ex_another_gets_no_lock_until_it_unlocks, *utf::timeout(60))
{
    key_guard g;
    share s(g.key(), sl_created());
    BOOST_TEST_REQUIRE(s.lock(share::lock_ex));
    const key_t key = g.key();
    test::pipe_pair to_child, to_parent;
    test::child c([&] {
        share mine(key, sl()); // opens without waiting for the lock
        if (mine.lock(share::lock_ex | share::lock_nb)) return 1;
        if (mine.lock(share::lock_sh | share::lock_nb)) return 2;
        if (mine.try_lock_for(50ms)) return 3;
        if (mine.try_lock_shared_for(50ms)) return 4;
        if (mine.held() != 0) return 5;
        to_parent.send();
        if (to_child.receive(30s) != 'u') return 6;
        if (!mine.lock(share::lock_ex | share::lock_nb)) return 7;
        mine.unlock();
        return 0;
    });
    BOOST_TEST_REQUIRE(to_parent.receive(30s) == 'x');
    s.unlock();
    to_child.send('u');
    BOOST_TEST(c.wait(30s) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
