// bench/bench_share.cpp: shmkit::share (native backend) against Perl's
// IPC::ShareLite, the library it is the C++ counterpart of, and against a
// value under a reader/writer mutex in Boost.Interprocess shared memory,
// all measured in the same run.
//
// One operation is a store+fetch pair: store(value), then fetch into a
// std::string that the loop reuses (shmkit: s.store(v); s.fetch(out)).
// Every subject locks for itself: the store exclusively, the fetch shared.
//
// Rows (pairs per second):
//   value sizes 16 B, 1 KiB, 64 KiB and 1 MiB, one process;
//   16 B, --procs processes (2 by default): every worker does store+fetch
//     pairs on the same share at once; the total pairs/s of all of them.
//
// The shmkit share is created once (key random per run, create +
// exclusive + destroy, size hint 64 KiB: values up to 64 KiB are kept in
// the share's inline areas, 1 MiB in a value segment of its own) and used
// by the single-process rows through this process's handle; the workers of
// the multi-process row open their own handle by key (untimed, with one
// untimed store that attaches them to the lock).
//
// Baselines (each row shows shmkit's ratio to each):
//   - "IPC::ShareLite (perl)": a perl process (perl -e, the script below)
//     with IPC::ShareLite->new(-key => K, -size => 65536, and -create =>
//     'yes', -destroy => 'yes' in the first process only, which has created
//     the share before any other is started) timing
//     `$share->store($value); $v = $share->fetch();` with Time::HiRes
//     (CLOCK_MONOTONIC, the clock of the harness). The perl process is
//     started once per row; this program sends it "go N STAMP" per timed
//     run on its stdin and reads back its start and end times, so the
//     calibration, the --runs runs, the median and the disturbed-run rule
//     (the perl side reads /proc/$$/schedstat) are those of the harness's
//     measure(). The multi-process row runs --procs perl processes on one
//     key, pinned like the harness's workers (unless --no-pin), all told
//     "go" once all are ready; the rate is all their pairs over the time
//     from the first start to the last end. Every row uses a fresh random
//     key K chosen so that no System V segment exists at K..K+63 and no
//     semaphore set at K (ShareLite's 64 KiB segments hold 65520 bytes of
//     value each: a 1 MiB value takes the segment at K and 16 more, created
//     at K+1, K+2, ...). The first process removes them when it exits;
//     whatever is left (a perl process killed, a failure) is removed after
//     the perl processes are gone: the segments at K..K+63 that a perl
//     process of the row created (shm_cpid), and the semaphore set at K if
//     it is ours and no other process operated on it.
//   - "boost sharable_mutex + vector (shm)": an interprocess_sharable_mutex
//     and a boost::interprocess::vector<char> in a 4 MiB
//     managed_shared_memory segment named shmkit_bench_share_<pid> (removed
//     at the end, also on failure); store = scoped_lock (exclusive) +
//     assign, fetch = sharable_lock + copy into the reused std::string. The
//     workers of the multi-process row use the mapping they inherit.
//
// Targets (checked on the lines they concern; --strict: exit status 2 when
// one is missed): 16 B >= 5 M pairs/s and >= 20x ShareLite; 64 KiB >= 3x
// ShareLite; 1 MiB >= 1.5x ShareLite; 16 B with --procs processes >= 1.0x
// shmkit's 1-process 16 B rate of the same run (checked only while --procs
// <= the CPUs online).
//
// Checksums (exit status 1 on a mismatch), once per timed run rather than
// per pair, the same way for all three: the values are "A" + the run's
// stamp in 8 hex digits + 'a'..'z' repeating ('A' + w for worker w of a
// multi-process run); after a run, the last value fetched must be exactly
// one of the values stored in that run (of this process or, with several
// processes, of another worker). The perl side checks its own and reports
// its length. shmkit's version() must have advanced by exactly the stores
// made (every operation of every run, calibration and warm-up included).

#include "harness.hpp"
#include "perl_driver.hpp"

#include <shmkit/error.hpp>
#include <shmkit/share.hpp>

#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/vector.hpp>
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/interprocess/sync/sharable_lock.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>

namespace {

namespace bip = boost::interprocess;
using namespace shmkit_bench;

constexpr std::size_t share_size_hint = 65536;       // shmkit's size hint and ShareLite's -size
constexpr std::size_t bip_segment_size = 4u << 20;   // 2x 1 MiB (old and new vector storage) and overhead
constexpr std::size_t stamp_digits = 8;              // value bytes 1..8: the run's stamp in hex
constexpr std::size_t value_head = 1 + stamp_digits; // tag + stamp; then 'a' + i % 26
constexpr key_t sysv_key_span = 64;                  // K..K+63: ShareLite's segment chain (17 at 1 MiB)

struct checksum_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------------ values

/// The value worker `tag` stores in the run stamped `stamp`: 'A' + tag, the
/// stamp in 8 hex digits, then 'a' + i % 26 at position i (as the perl
/// script builds it).
std::string value_for(std::size_t size, std::uint64_t stamp, unsigned tag)
{
    std::string v(size, '\0');
    for (std::size_t i = value_head; i < size; ++i) v[i] = char('a' + i % 26);
    char head[value_head + 1];
    std::snprintf(head, sizeof head, "%c%08x", 'A' + int(tag), unsigned(stamp & 0xffffffffu));
    std::memcpy(v.data(), head, std::min(size, value_head));
    return v;
}

/// The values of one timed run: what this worker stores, and every value
/// stored by any worker of the run (what a fetch may return at its end).
class run_values {
public:
    run_values(std::size_t size, std::uint64_t stamp, unsigned worker, unsigned procs) : own_(worker)
    {
        for (unsigned w = 0; w < procs; ++w) stored_.push_back(value_for(size, stamp, w));
    }
    const std::string& own() const noexcept { return stored_[own_]; }
    bool accepts(const std::string& fetched) const
    {
        return std::find(stored_.begin(), stored_.end(), fetched) != stored_.end();
    }

private:
    std::vector<std::string> stored_;
    unsigned own_;
};

std::string size_label(std::size_t size)
{
    if (size >= (1u << 20)) return std::to_string(size >> 20) + " MiB";
    if (size >= 1024) return std::to_string(size >> 10) + " KiB";
    return std::to_string(size) + " B";
}

// --------------------------------------------------------------- subjects

/// A random IPC key in [0x10000000, 0x7f000000): far from the small keys
/// people pick by hand, with room for ShareLite's chain above it.
key_t random_key()
{
    static std::mt19937_64 rng{std::random_device{}() ^ (std::uint64_t(::getpid()) << 32)};
    return key_t(0x10000000 + rng() % 0x6f000000);
}

/// The shmkit share of this run, under a fresh random key (created
/// exclusively; removed when the handle goes, also on failure).
shmkit::share create_shmkit_share()
{
    for (int attempt = 0;; ++attempt) {
        shmkit::share_options o;
        o.create = true;
        o.exclusive = true;
        o.destroy = true;
        o.size = share_size_hint;
        try {
            return shmkit::share(random_key(), o);
        }
        catch (const shmkit::error& e) {
            if (e.code() != std::errc::file_exists || attempt >= 16) throw;
        }
    }
}

/// The Boost baseline's shared object.
using char_allocator = bip::allocator<char, bip::managed_shared_memory::segment_manager>;
struct bip_value {
    bip::interprocess_sharable_mutex mutex;
    bip::vector<char, char_allocator> bytes;
    explicit bip_value(const char_allocator& a) : bytes(a) {}
};

/// A managed segment under a name unique to this process holding one
/// bip_value; the name is removed before creation (a leftover of a killed
/// run with our PID) and when this object goes, also during unwinding.
class bip_segment {
public:
    bip_segment()
        : rm_("shmkit_bench_share_" + std::to_string(::getpid())),
          seg_(bip::create_only, rm_.name.c_str(), bip_segment_size),
          value_(seg_.construct<bip_value>("value")(char_allocator(seg_.get_segment_manager())))
    {
    }
    bip_value* value() const noexcept { return value_; }

private:
    struct remover {
        std::string name;
        explicit remover(std::string n) : name(std::move(n)) { bip::shared_memory_object::remove(name.c_str()); }
        ~remover() { bip::shared_memory_object::remove(name.c_str()); }
    };
    remover rm_; // first: removed after seg_ is unmapped
    bip::managed_shared_memory seg_;
    bip_value* value_;
};

inline void store_value(shmkit::share& s, std::string_view v) { s.store(v); }
inline void fetch_value(const shmkit::share& s, std::string& out) { s.fetch(out); }

inline void store_value(bip_value& b, std::string_view v)
{
    bip::scoped_lock<bip::interprocess_sharable_mutex> lock(b.mutex);
    b.bytes.assign(v.begin(), v.end());
}
inline void fetch_value(bip_value& b, std::string& out)
{
    bip::sharable_lock<bip::interprocess_sharable_mutex> lock(b.mutex);
    out.assign(b.bytes.data(), b.bytes.size());
}

/// Everything the C++ subjects of a run share; inherited by forked workers.
struct fixture {
    shmkit::share share = create_shmkit_share();
    bip_segment bip;
    /// Runs whose last fetch was not a value of the run (any process).
    shared_object<std::atomic<std::uint64_t>> errors{0};
    /// make() calls since the row's start: stamp and worker number.
    shared_object<std::atomic<std::uint64_t>> makes{0};
    /// shmkit stores made outside the timed loops (workers' attach pair).
    shared_object<std::atomic<std::uint64_t>> untimed_stores{0};
    /// System V objects found left by the perl side and removed.
    std::size_t sysv_leftovers = 0;

    /// The values of the run this make() call belongs to: the calls of
    /// one run of `procs` workers are consecutive, worker w is call w.
    run_values next_run(std::size_t size, unsigned procs)
    {
        const std::uint64_t m = makes->fetch_add(1);
        return run_values(size, m / procs, unsigned(m % procs), procs);
    }
};

/// Store+fetch pairs on *target; when the run ends (the body is destroyed
/// after its timed loop) the last value fetched must be one of the run's.
/// Returned as a prvalue, never copied.
template <class Ptr>
class pair_body {
public:
    pair_body(Ptr target, run_values values, std::atomic<std::uint64_t>& errors)
        : target_(std::move(target)), values_(std::move(values)), errors_(errors)
    {
    }
    pair_body(const pair_body&) = delete;
    pair_body& operator=(const pair_body&) = delete;
    ~pair_body()
    {
        if (!values_.accepts(out_)) errors_.fetch_add(1);
    }
    void operator()()
    {
        store_value(*target_, values_.own());
        fetch_value(*target_, out_);
    }

private:
    Ptr target_;
    run_values values_;
    std::atomic<std::uint64_t>& errors_;
    std::string out_;
};
template <class Ptr>
pair_body<Ptr> pairs(Ptr target, run_values values, std::atomic<std::uint64_t>& errors)
{
    return pair_body<Ptr>(std::move(target), std::move(values), errors);
}

void check_errors(fixture& f, const std::string& what)
{
    const std::uint64_t e = f.errors->exchange(0);
    if (e)
        throw checksum_error("checksum mismatch for " + what + ": " + std::to_string(e) +
                             " runs fetched a value that was not stored in them");
}

void check_version(const std::string& what, std::uint64_t got, std::uint64_t expected)
{
    if (got != expected)
        throw checksum_error("checksum mismatch for " + what + ": version() advanced by " + std::to_string(got) +
                             ", expected " + std::to_string(expected) + " (the stores made)");
}

/// shmkit: `procs` == 1 uses this process's handle; workers open their own
/// by key and make one untimed store (attach, first touch).
result measure_shmkit(const options& o, fixture& f, std::size_t size, unsigned procs)
{
    const std::string what = "shmkit " + size_label(size) + ", " + std::to_string(procs) + " process(es)";
    f.makes->store(0);
    f.untimed_stores->store(0);
    const std::uint64_t v0 = f.share.version();
    result r;
    if (procs == 1) {
        r = measure(o, 1, [&] { return pairs(&f.share, f.next_run(size, 1), *f.errors); });
    }
    else {
        const key_t key = f.share.key();
        r = measure(o, procs, [&] {
            run_values v = f.next_run(size, procs);
            auto s = std::make_unique<shmkit::share>(key);
            s->store(v.own());
            f.untimed_stores->fetch_add(1);
            return pairs(std::move(s), std::move(v), *f.errors);
        });
    }
    check_errors(f, what);
    check_version(what, f.share.version() - v0, r.total_ops + f.untimed_stores->load());
    return r;
}

result measure_bip(const options& o, fixture& f, std::size_t size, unsigned procs)
{
    f.makes->store(0);
    const result r = measure(o, procs, [&] { return pairs(f.bip.value(), f.next_run(size, procs), *f.errors); });
    check_errors(f, "boost " + size_label(size) + ", " + std::to_string(procs) + " process(es)");
    return r;
}

// ------------------------------------------------------ IPC::ShareLite (perl)

/// Arguments: value size, key, worker number, workers, creator (0/1: with
/// -create and -destroy; the others attach).
/// Protocol: prints "ready"; then per line on stdin "go N STAMP": N timed
/// pairs, answered "done T0 T1 RUN_DELAY_NS LENGTH OK"; "exit" or EOF:
/// drops the share (the destroying process removes it), prints "bye".
const char* const perl_script = R"PERL(
use strict;
use warnings;
use IPC::ShareLite;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($size, $key, $tag, $procs, $creator) = @ARGV;
my $share = IPC::ShareLite->new(-key => $key, -create => ($creator ? 'yes' : 'no'),
                                -destroy => ($creator ? 'yes' : 'no'), -size => 65536)
    or die "IPC::ShareLite->new(-key => $key): $!\n";
my $fill = 'abcdefghijklmnopqrstuvwxyz' x (int($size / 26) + 1);

sub value_for {
    my ($stamp, $t) = @_;
    return substr(sprintf('%c%08x', 65 + $t, $stamp % 4294967296) . substr($fill, 9, $size - 9), 0, $size);
}

sub run_delay {
    open(my $f, '<', "/proc/$$/schedstat") or return -1;
    my @f = split ' ', (scalar(<$f>) // '');
    return @f >= 2 ? $f[1] : -1;
}

$| = 1;
print "ready\n";
while (my $line = <STDIN>) {
    my ($cmd, $n, $stamp) = split ' ', $line;
    last if $cmd eq 'exit';
    die "bench_share perl: bad command '$line'\n" unless $cmd eq 'go' && $n > 0;
    my $value = value_for($stamp, $tag);
    my $v = '';
    my $d0 = run_delay();
    my $t0 = clock_gettime(CLOCK_MONOTONIC);
    for (1 .. $n) {
        $share->store($value);
        $v = $share->fetch();
    }
    my $t1 = clock_gettime(CLOCK_MONOTONIC);
    my $d1 = run_delay();
    my $ok = grep { $v eq value_for($stamp, $_) } 0 .. $procs - 1;
    printf("done %.9f %.9f %d %d %d\n", $t0, $t1, ($d0 < 0 || $d1 < 0) ? -1 : $d1 - $d0,
           length($v), $ok ? 1 : 0);
}
undef $share;
print "bye\n";
)PERL";

/// Whether no System V object of ours or anybody's uses K..K+63.
bool sysv_keys_free(key_t key)
{
    if (::semget(key, 0, 0) >= 0 || errno != ENOENT) return false;
    for (key_t i = 0; i < sysv_key_span; ++i)
        if (::shmget(key + i, 0, 0) >= 0 || errno != ENOENT) return false;
    return true;
}

key_t pick_sysv_key()
{
    for (int attempt = 0; attempt < 64; ++attempt) {
        const key_t k = random_key();
        if (sysv_keys_free(k)) return k;
    }
    throw std::runtime_error("no free System V key range found for IPC::ShareLite");
}

bool one_of(pid_t pid, const std::vector<pid_t>& pids)
{
    return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

/// Removes the segments at key..key+63 created by one of `pids`, and the
/// semaphore set at `key` if it is ours (owner uid) and every process that
/// last operated on its semaphores is one of `pids`. Returns how many.
std::size_t remove_sysv_leftovers(key_t key, const std::vector<pid_t>& pids) noexcept
{
    std::size_t removed = 0;
    for (key_t i = 0; i < sysv_key_span; ++i) {
        const int id = ::shmget(key + i, 0, 0);
        struct shmid_ds ds;
        if (id < 0 || ::shmctl(id, IPC_STAT, &ds) != 0 || !one_of(ds.shm_cpid, pids)) continue;
        removed += ::shmctl(id, IPC_RMID, nullptr) == 0;
    }
    const int sem = ::semget(key, 0, 0);
    struct semid_ds ds;
    if (sem < 0 || ::semctl(sem, 0, IPC_STAT, &ds) != 0 || ds.sem_perm.cuid != ::geteuid()) return removed;
    for (unsigned n = 0; n < ds.sem_nsems; ++n) {
        const int last = ::semctl(sem, int(n), GETPID);
        if (last < 0 || (last != 0 && !one_of(last, pids))) return removed;
    }
    removed += ::semctl(sem, 0, IPC_RMID) == 0;
    return removed;
}

/// `procs` perl processes on one fresh key, for one row, started one after
/// another (the first creates the share, the others attach). The System V
/// objects they leave are removed when the session goes, after the
/// processes are gone (members are destroyed in reverse order).
class sharelite_session {
public:
    sharelite_session(const options& o, std::size_t size, unsigned procs, std::size_t& leftovers)
        : opt_(o), guard_{pick_sysv_key(), {}, leftovers}
    {
        for (unsigned w = 0; w < procs; ++w) {
            spawn(size, w, procs);
            expect_ready(procs_.back());
        }
    }

    /// One timed run of n pairs in every process, all told "go" once all
    /// are ready. `bad`: processes whose last fetch was not a value of the run.
    timing run(std::uint64_t n, std::uint64_t stamp, std::size_t size, std::uint64_t& bad)
    {
        const std::string go = "go " + std::to_string(n) + " " + std::to_string(stamp) + "\n";
        for (perl_process& p : procs_) p.send(go);
        double t0 = 1e300, t1 = -1e300;
        long long worst_delay = 0;
        for (perl_process& p : procs_) {
            const std::string line = p.reader.read_line(deadline(), p.name);
            double a = 0, b = 0;
            long long delay = 0, length = 0;
            int ok = 0;
            if (std::sscanf(line.c_str(), "done %lf %lf %lld %lld %d", &a, &b, &delay, &length, &ok) != 5)
                throw std::runtime_error(p.name + ": unexpected answer '" + line + "'");
            bad += !ok || std::size_t(length) != size;
            t0 = std::min(t0, a);
            t1 = std::max(t1, b);
            worst_delay = delay < 0 || worst_delay < 0 ? -1 : std::max(worst_delay, delay);
        }
        timing t{procs_.size() * n, t1 - t0, -1};
        if (worst_delay >= 0 && t.seconds > 0) t.preempted = double(worst_delay) * 1e-9 / t.seconds;
        return t;
    }

    /// Orderly end: the attached processes drop the share first, then the
    /// destroying one (process 0) removes it; waits for all to exit.
    void close()
    {
        for (std::size_t i = procs_.size(); i-- > 0;) {
            procs_[i].send("exit\n");
            expect(procs_[i], "bye");
        }
        group_.wait_all(opt_.timeout_s);
    }

private:
    struct cleanup_guard {
        key_t key;
        std::vector<pid_t> pids;
        std::size_t& removed;
        ~cleanup_guard() { removed += remove_sysv_leftovers(key, pids); }
    };

    std::int64_t deadline() const { return now_ns() + std::int64_t(opt_.timeout_s) * 1000000000; }

    void expect(perl_process& p, const std::string& word)
    {
        const std::string line = p.reader.read_line(deadline(), p.name);
        if (line != word) throw std::runtime_error(p.name + ": expected '" + word + "', got '" + line + "'");
    }

    void expect_ready(perl_process& p)
    {
        try {
            expect(p, "ready");
        }
        catch (const std::runtime_error& e) {
            throw std::runtime_error(std::string(e.what()) +
                                     "; it needs perl with IPC::ShareLite (Debian: libipc-sharelite-perl)");
        }
    }

    void spawn(std::size_t size, unsigned w, unsigned procs)
    {
        procs_.emplace_back();
        perl_process& p = procs_.back();
        const std::vector<std::string> args = {"perl", "-e", perl_script, "--", std::to_string(size),
                                               std::to_string(guard_.key), std::to_string(w),
                                               std::to_string(procs), w == 0 ? "1" : "0"};
        const bool pin = opt_.pin && procs > 1;
        spawn_perl(group_, p, args, pin ? int(w) : -1, "bench_share");
        guard_.pids.push_back(p.pid);
        p.name = "perl (IPC::ShareLite) worker " + std::to_string(w) + ", pid " + std::to_string(p.pid);
    }

    const options& opt_;
    cleanup_guard guard_; // first: runs after the processes are reaped
    worker_group group_;
    std::vector<perl_process> procs_;
};

result measure_sharelite(const options& o, fixture& f, std::size_t size, unsigned procs)
{
    sharelite_session session(o, size, procs, f.sysv_leftovers);
    std::uint64_t stamp = 0, bad = 0;
    const result r = measure_external(o, [&](std::uint64_t n) { return session.run(n, ++stamp, size, bad); });
    session.close();
    if (bad)
        throw checksum_error("checksum mismatch for IPC::ShareLite " + size_label(size) + ", " +
                             std::to_string(procs) + " process(es): " + std::to_string(bad) +
                             " runs fetched a value that was not stored in them");
    return r;
}

// ------------------------------------------------------------------- rows

struct row_result {
    result shm, lite, bip;
};

row_result row_pairs(const options& o, fixture& f, std::size_t size, unsigned procs)
{
    row_result r;
    r.shm = measure_shmkit(o, f, size, procs);
    r.lite = measure_sharelite(o, f, size, procs);
    r.bip = measure_bip(o, f, size, procs);
    return r;
}

/// Untimed: at least 0.1 s of 16-byte pairs, so that the first figure is
/// not taken while the CPU is still raising its clock.
void warm_up(const options& o, fixture& f)
{
    const std::string v = value_for(16, 0, 0);
    std::string out;
    const std::int64_t end = now_ns() + std::int64_t(std::max(0.1, o.seconds) * 1e9);
    while (now_ns() < end)
        for (int k = 0; k < 1000; ++k) {
            f.share.store(v);
            f.share.fetch(out);
        }
    if (out != v) throw checksum_error("checksum mismatch in the warm-up: fetched not what was stored");
}

const std::string lite_name = "IPC::ShareLite (perl)";
const std::string bip_name = "boost sharable_mutex + vector (shm)";

} // namespace

int main(int argc, char** argv)
{
    const options opt = parse_options(
        argc, argv,
        "bench_share: shmkit::share (native backend) store+fetch pairs (store(v), then fetch into a reused\n"
        "std::string) of 16 B, 1 KiB, 64 KiB and 1 MiB values in one process, and of 16 B values in --procs\n"
        "processes at once, vs Perl's IPC::ShareLite (perl -e, timed with Time::HiRes; needs the\n"
        "libipc-sharelite-perl package) vs an interprocess_sharable_mutex + vector<char> in Boost.Interprocess\n"
        "managed_shared_memory");
    print_preamble("bench_share: store+fetch pairs per second, shmkit::share (native backend, size hint 64 KiB);\n"
                   "  fetch into a reused std::string; multi-process row: total of all processes",
                   opt);
    std::signal(SIGPIPE, SIG_IGN); // a perl process that died: write() fails with EPIPE instead

    const unsigned np = opt.procs;
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    const target small_target{5e6, 20}; // 16 B >= 5 M pairs/s and >= 20x ShareLite
    const target mid_target{0, 3};      // 64 KiB >= 3x ShareLite
    const target large_target{0, 1.5};  // 1 MiB >= 1.5x ShareLite
    const target procs_target{0, 1.0};  // N processes >= 1.0x one process (aggregate)
    struct size_row {
        std::size_t size;
        const target* lite_target;
    };
    const size_row sizes[] = {{16, &small_target}, {1024, nullptr}, {65536, &mid_target}, {1u << 20, &large_target}};

    table tab(std::cout, 36, 38);
    try {
        fixture f;
        warm_up(opt, f);
        tab.print_header();
        std::optional<result> single_small;
        for (const size_row& s : sizes) {
            const std::string name = "store+fetch " + size_label(s.size) + ", 1 process";
            if (!selected(opt, name)) continue;
            const row_result r = row_pairs(opt, f, s.size, 1);
            tab.row(name, r.shm, lite_name, r.lite, opt, s.lite_target);
            tab.row("", r.shm, bip_name, r.bip, opt);
            if (s.size == 16) single_small = r.shm;
        }
        const std::string procs_name = "store+fetch 16 B, " + std::to_string(np) + " processes";
        if (np > 1 && selected(opt, procs_name)) {
            if (!single_small) single_small = measure_shmkit(opt, f, 16, 1); // its row was filtered out
            const row_result r = row_pairs(opt, f, 16, np);
            const bool scaling_target = np <= static_cast<unsigned>(std::max(1L, cpus));
            tab.row(procs_name, r.shm, lite_name + ", " + std::to_string(np) + " procs", r.lite, opt);
            tab.row("", r.shm, bip_name, r.bip, opt);
            tab.row("", r.shm, "shmkit 16 B, 1 process", *single_small, opt,
                    scaling_target ? &procs_target : nullptr);
        }
        if (f.sysv_leftovers)
            tab.note("\nnote: " + std::to_string(f.sysv_leftovers) +
                     " System V objects left by the perl processes were removed");
    }
    catch (const checksum_error& e) {
        std::cerr << "bench_share: " << e.what() << "\n";
        return 1;
    }
    catch (const std::exception& e) {
        std::cerr << "bench_share: error: " << e.what() << "\n";
        return 1;
    }
    tab.note("");
    tab.note("checksums: ok (after every timed run of every subject the last value fetched was one stored in that\n"
             "run, by this worker or another; shmkit's version() advanced by exactly the stores made)");
    tab.note("targets: 16 B >= 5M pairs/s and >= 20x IPC::ShareLite; 64 KiB >= 3x IPC::ShareLite; 1 MiB >= 1.5x\n"
             "IPC::ShareLite" +
             (np > 1 ? "; " + std::to_string(np) + "-process 16 B >= 1.0x the 1-process 16 B rate (total)" : ""));
    return tab.finish(opt);
}
