// The attach table: entries per handle, liveness despite fork, zombies, PID
// reuse and PID namespaces, reclaiming dead entries, and a claimer killed at
// each step of its claim (kill_point.hpp).
#define BOOST_TEST_MODULE attach
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/segment.hpp>

#include <optional>

#include <sched.h>

using namespace std::chrono_literals;
using shmkit::segment;

namespace {

shmkit::segment_layout layout(std::uint32_t capacity = 16, std::uint32_t rwlocks = 1)
{
    shmkit::segment_layout l;
    l.data_size = 64;
    l.n_rwlocks = rwlocks;
    l.attach_capacity = capacity;
    return l;
}

std::uint32_t my_pid() { return static_cast<std::uint32_t>(::getpid()); }

/// The entry of `pid`, if any (a copy: the list is a temporary).
std::optional<shmkit::detail::attach_info> find(const std::vector<shmkit::detail::attach_info>& v, pid_t pid)
{
    for (const auto& e : v)
        if (e.pid == static_cast<std::uint32_t>(pid)) return e;
    return std::nullopt;
}

/// The end of a grandchild (a process a test::child forks, which the test
/// process cannot reap and may not get to kill): it waits until no one else
/// holds `never`'s write end, that is until the child that forked it is dead
/// and the test process has left the case (on any path, a failed assertion
/// included) or died, then exits. Closing its own copy first is what lets
/// that EOF come.
[[noreturn]] void outlive_the_case_only(const test::pipe_pair& never)
{
    ::close(never.wr);
    never.receive();
    std::_Exit(0);
}

} // namespace

BOOST_AUTO_TEST_CASE(each_handle_takes_an_entry_and_gives_it_back)
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout());
    {
        segment b = segment::file(shmkit::open_only, dir / "s");
        BOOST_TEST(a.stats().attached_alive == 2u);
        BOOST_TEST(a.attachment().token() != b.attachment().token());
        BOOST_TEST(a.attachment().token_alive(b.attachment().token()));
    }
    BOOST_TEST(a.stats().attached_alive == 1u);
    BOOST_TEST(a.stats().attached_dead == 0u);
}

// Found by test/fuzz/fuzz_open: an owner id holds the low 52 bits of its
// entry's generation, and a generation beyond them (damaged memory: no real
// count of claims gets there) made a live owner's own id look dead (its
// pool slots recoverable by anyone) and name no PID.
BOOST_AUTO_TEST_CASE(an_owner_id_names_its_live_claim_whatever_the_generation)
{
    test::scratch_dir dir;
    {
        segment s = segment::file(shmkit::create_only, dir / "s", layout(1));
        s.attachment().entry(0).generation.store(0xacacac0000000001ull);
    }
    segment s = segment::file(shmkit::open_only, dir / "s");
    const std::uint64_t id = s.attachment().owner_id();
    BOOST_TEST(s.attachment().owner_id_alive(id));
    BOOST_TEST(s.attachment().owner_id_pid(id) == my_pid());
}

BOOST_AUTO_TEST_CASE(dead_processes_are_seen_dead_and_reclaimed)
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout());
    test::pipe_pair attached, never;
    test::child c([&] {
        segment s = segment::file(shmkit::open_only, dir / "s");
        attached.send();
        never.receive();
        return 0;
    });
    BOOST_REQUIRE_EQUAL(attached.receive(30s), 'x');
    BOOST_TEST(a.stats().attached_alive == 2u);
    c.kill();
    // Not reaped yet: a zombie holds nothing and must count as dead.
    BOOST_REQUIRE(test::until_exited(c.pid(), 30s));
    const auto e = find(a.attached(), c.pid());
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(!e->alive);
    BOOST_TEST(a.stats().attached_dead == 1u);
    BOOST_TEST(a.reclaim_dead() == 1u);
    BOOST_TEST(a.stats().attached_dead == 0u);
    BOOST_TEST(a.stats().reclaimed == 1u);
}

BOOST_AUTO_TEST_CASE(forked_child_registers_its_own_entry)
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout());
    const std::uint32_t parent_token = a.attachment().token();
    std::uint32_t* child_token = test::shared_scratch<std::uint32_t>();
    test::child c([&] {
        // First use of the inherited handle in the child.
        *child_token = a.attachment().token();
        return a.attached().size() == 2 ? 0 : 1;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(*child_token != parent_token);
    BOOST_TEST(a.attachment().token() == parent_token);
    BOOST_TEST(a.attachment().token_alive(parent_token));
    BOOST_TEST(!a.attachment().token_alive(*child_token));
}

BOOST_AUTO_TEST_CASE(parent_death_is_seen_while_a_forked_child_lives)
{
    // P attaches and forks Q, which inherits the handle (and its fd) but
    // never uses it. When P dies, its entry must be dead although Q still
    // holds a descriptor of the same file.
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout());
    test::pipe_pair ready, started, never;
    pid_t* q_pid = test::shared_scratch<pid_t>();
    test::child p([&] {
        segment s = segment::file(shmkit::open_only, dir / "s");
        s.attachment().token();
        const pid_t q = ::fork();
        if (q == 0) {
            // fork() has returned here, so the fork handlers have run: Q's
            // copy of P's lock descriptor is already replaced. Q must outlive
            // P (so no PR_SET_PDEATHSIG here), and ends with the case.
            started.send();
            outlive_the_case_only(never);
        }
        *q_pid = q;
        if (started.receive(30s) != 'x') return 1;
        ready.send();
        never.receive();
        return 0;
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    const pid_t p_pid = p.pid();
    BOOST_TEST(find(a.attached(), p_pid)->alive);
    p.kill();
    p.wait();
    BOOST_TEST(::kill(*q_pid, 0) == 0); // Q lives on (reparented), holding its descriptor
    const auto e = find(a.attached(), p_pid);
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(!e->alive);
}

BOOST_AUTO_TEST_CASE(pid_reuse_does_not_fake_liveness)
{
    // An anonymous segment has no fd: liveness is PID + start time. An entry
    // naming a live PID (ours) with another start time is a dead process
    // whose PID was reused.
    segment a = segment::anonymous(layout());
    auto& e = a.attachment().entry(5);
    const auto word = [](std::uint32_t pid, std::uint64_t start) {
        return (std::uint64_t(pid) << 32) | ((start & shmkit::detail::owner_start_mask) << 1);
    };
    const auto& id = shmkit::detail::current_identity();
    e.owner.store(word(my_pid(), id.start_time + 12345));
    BOOST_TEST(!a.attachment().entry_alive(5));
    // Same PID, true start time: alive.
    e.owner.store(word(id.pid, id.start_time));
    BOOST_TEST(a.attachment().entry_alive(5));
    e.owner.store(0);
}

BOOST_AUTO_TEST_CASE(anonymous_segments_track_forked_children)
{
    segment a = segment::anonymous(layout());
    test::pipe_pair attached, never;
    test::child c([&] {
        a.attachment().token();
        attached.send();
        never.receive();
        return 0;
    });
    BOOST_REQUIRE_EQUAL(attached.receive(30s), 'x');
    const pid_t pid = c.pid();
    BOOST_TEST(find(a.attached(), pid)->alive);
    c.kill();
    c.wait();
    BOOST_REQUIRE(find(a.attached(), pid).has_value());
    BOOST_TEST(!find(a.attached(), pid)->alive);
    BOOST_TEST(a.reclaim_dead() == 1u);
}

BOOST_AUTO_TEST_CASE(full_table_is_an_error_until_someone_dies)
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout(2));
    test::pipe_pair attached, never;
    auto c = std::make_unique<test::child>([&] {
        segment s = segment::file(shmkit::open_only, dir / "s");
        attached.send();
        never.receive();
        return 0;
    });
    BOOST_REQUIRE_EQUAL(attached.receive(30s), 'x');
    try {
        segment::file(shmkit::open_only, dir / "s");
        BOOST_ERROR("attached beyond capacity");
    } catch (const shmkit::error& e) {
        BOOST_TEST(e.code() == shmkit::make_error_code(shmkit::errc::attach_table_full));
    }
    // A refused open leaves no descriptor behind.
    const auto fds = [] {
        int n = 0;
        for (int fd = 0; fd < 1024; ++fd) n += ::fcntl(fd, F_GETFD) >= 0;
        return n;
    };
    const int before = fds();
    for (int i = 0; i < 5; ++i) BOOST_CHECK_THROW(segment::file(shmkit::open_only, dir / "s"), shmkit::error);
    BOOST_TEST(fds() == before);
    c.reset(); // kills and reaps
    segment b = segment::file(shmkit::open_only, dir / "s");
    BOOST_TEST(a.stats().reclaimed == 1u);
}

BOOST_AUTO_TEST_CASE(processes_in_another_pid_namespace)
{
    // A process in its own PID namespace registers a PID that means nothing
    // here (1). The OFD lock still tells the truth.
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout());
    test::pipe_pair attached, known, never;
    int* unsupported = test::shared_scratch<int>();
    pid_t* inner_pid = test::shared_scratch<pid_t>(); // as seen from here
    test::child outer([&] {
        if (::unshare(CLONE_NEWPID) != 0) {
            *unsupported = 1;
            attached.send();
            return 0;
        }
        const pid_t inner = ::fork(); // pid 1 of the new namespace
        if (inner == 0) {
            // Dies with outer (which the test kills on any failure). Its
            // parent is outside its namespace, so getppid() is 0 whether or
            // not outer already died; outlive_the_case_only covers that race.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            segment s = segment::file(shmkit::open_only, dir / "s");
            attached.send();
            outlive_the_case_only(never);
        }
        *inner_pid = inner;
        known.send();
        int st;
        ::waitpid(inner, &st, 0);
        return 0;
    });
    BOOST_REQUIRE_EQUAL(attached.receive(30s), 'x');
    if (*unsupported) {
        BOOST_TEST_MESSAGE("unshare(CLONE_NEWPID) not permitted here; namespace case not exercised");
        return;
    }
    BOOST_REQUIRE_EQUAL(known.receive(30s), 'x');
    BOOST_REQUIRE_GT(*inner_pid, 1);
    const auto e = find(a.attached(), 1);
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->alive); // PID 1 here is our init: only the OFD lock can answer
    ::kill(*inner_pid, SIGKILL);
    BOOST_TEST(outer.wait() == 0); // outer reaped the inner process
    BOOST_TEST(!find(a.attached(), 1)->alive);
}

BOOST_AUTO_TEST_CASE(high_water_mark_follows_the_entries_in_use)
{
    // Writers scan reader counts below the mark: it must come down again
    // when processes detach or are reclaimed, or every exclusive lock would
    // pay for the most processes ever attached.
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout());
    BOOST_TEST(a.attachment().high_water() == 1u);
    {
        std::vector<segment> more;
        for (int i = 0; i < 5; ++i) more.push_back(segment::file(shmkit::open_only, dir / "s"));
        BOOST_TEST(a.attachment().high_water() == 6u);
        more.erase(more.begin()); // a hole: the mark stays
        BOOST_TEST(a.attachment().high_water() == 6u);
    }
    BOOST_TEST(a.attachment().high_water() == 1u);

    test::pipe_pair attached, never;
    test::child c([&] {
        std::vector<segment> mine;
        for (int i = 0; i < 3; ++i) mine.push_back(segment::file(shmkit::open_only, dir / "s"));
        attached.send();
        never.receive();
        return 0;
    });
    BOOST_REQUIRE_EQUAL(attached.receive(30s), 'x');
    BOOST_TEST(a.attachment().high_water() == 4u);
    c.kill();
    c.wait();
    BOOST_TEST(a.attachment().high_water() == 4u); // dead, not yet reclaimed
    BOOST_TEST(a.reclaim_dead() == 3u);
    BOOST_TEST(a.attachment().high_water() == 1u);
}

BOOST_AUTO_TEST_CASE(kills_during_attach_and_detach_leak_no_entry)
{
    // Children attach and detach in a tight loop; the parent kills them at
    // arbitrary points (inside claim, wipe, release, ...). Afterwards every
    // entry must be claimable again: none is stuck half-claimed.
    test::scratch_dir dir;
    constexpr std::uint32_t capacity = 6;
    segment a = segment::file(shmkit::create_only, dir / "s", layout(capacity));
    auto* cycles = test::shared_scratch<std::atomic<long>>();
    int kills = 0;
    for (int round = 0; round < 150; ++round) {
        test::child c([&] {
            for (;;) {
                try {
                    segment s = segment::file(shmkit::open_only, dir / "s");
                    s.attachment().token();
                    cycles->fetch_add(1);
                } catch (const shmkit::error&) {
                    // table momentarily full of dead entries: try again
                }
            }
            return 0;
        });
        // Let it get going (it has done at least one cycle), then kill it
        // wherever it is.
        const long before = cycles->load();
        for (int spin = 0; spin < 100000 && cycles->load() == before; ++spin) ::sched_yield();
        for (int spin = 0; spin < round % 7; ++spin) ::sched_yield();
        c.kill();
        c.wait();
        ++kills;
    }
    a.reclaim_dead();
    const auto st = a.stats();
    BOOST_TEST(st.attached_dead == 0u);
    BOOST_TEST(st.attached_alive == 1u);
    std::vector<segment> all;
    for (std::uint32_t i = 1; i < capacity; ++i) all.push_back(segment::file(shmkit::open_only, dir / "s"));
    BOOST_TEST(a.stats().attached_alive == capacity);
    BOOST_TEST(cycles->load() > kills);
    BOOST_TEST_MESSAGE("kills " << kills << ", attach/detach cycles " << cycles->load());
}

// ---- A claimer killed at an exact step of its claim ---------------------------------
//
// attach(): the CAS of the owner word, then the wipe (reader counts zeroed,
// then the generation bumped), then the claim counted and the high-water
// mark raised. A forked
// child of the test's segment claims an entry of its own (entry 0 is the
// parent's) and is killed right after one of those stores.

namespace {

/// The attach table's header (the table is its header followed by the
/// entries).
const shmkit::detail::attach_table_header& table_header(const segment& s)
{
    const char* entries = reinterpret_cast<const char*>(&s.attachment().entry(0));
    return *reinterpret_cast<const shmkit::detail::attach_table_header*>(
        entries - sizeof(shmkit::detail::attach_table_header));
}

/// Forks a child of `a` that claims an entry of its own on its first use
/// of the inherited handle (the same mapping), killed right after its first
/// store to the `len` bytes at `watched`. Returns the child's PID.
pid_t kill_a_claimer_after_writing(segment& a, const void* watched, std::size_t len)
{
    test::child claimer([&] {
        test::die_after_write(watched, len);
        a.attachment().token();
        return 0;
    });
    const pid_t pid = claimer.pid();
    BOOST_TEST_REQUIRE(claimer.wait(30s) == test::killed_after_write);
    return pid;
}

/// Entry 1 of the segment at `path` left by a process killed after `take`
/// took its locks.
void leave_a_dead_holder_in_entry_1(const std::string& path, void (*take)(segment&))
{
    test::pipe_pair holding, never;
    test::child holder([&] {
        segment s = segment::file(shmkit::open_only, path);
        take(s);
        holding.send();
        never.receive();
        return 0;
    });
    BOOST_REQUIRE_EQUAL(holding.receive(30s), 'x');
    holder.kill();
    BOOST_REQUIRE_EQUAL(holder.wait(), 128 + SIGKILL);
}

/// Entry 1 left by a process killed holding rwlock 0 exclusively and
/// rwlock 1 shared, then claimed by a child killed in its wipe: right after
/// the last of its stores zeroing the reader counts (before the generation
/// bump), or right after the bump. The read lock is released by the wipe,
/// the write lock recovered, once, by the next writer, and the claimer's
/// entry reclaimed.
void kill_a_claimer_in_its_wipe_of_a_dead_holder(bool after_the_bump)
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout(2, 2));
    leave_a_dead_holder_in_entry_1(dir / "s", [](segment& s) {
        s.rwlock(0).lock();
        s.rwlock(1).lock_shared();
    });
    shmkit::detail::attach_entry& e = a.attachment().entry(1);
    BOOST_REQUIRE_EQUAL(e.readers[1].load(), 1u);
    const std::uint64_t generation = e.generation.load();
    const auto& last_count = e.readers[shmkit::detail::max_rwlocks - 1];
    if (after_the_bump) kill_a_claimer_after_writing(a, &e.generation, sizeof e.generation);
    else kill_a_claimer_after_writing(a, &last_count, sizeof last_count);
    BOOST_TEST(e.readers[1].load() == 0u); // wiped
    BOOST_TEST(e.generation.load() == generation + (after_the_bump ? 1 : 0));
    BOOST_TEST(a.stats().attached_dead == 1u); // the claimer, not yet reclaimed
    auto r = a.rwlock(1);
    BOOST_TEST_REQUIRE(r.try_lock_for(10s)); // no reader left to drain
    r.unlock();
    BOOST_TEST(r.recoveries() == 0u);
    auto w = a.rwlock(0);
    BOOST_TEST_REQUIRE(w.try_lock_for(10s));
    w.unlock();
    BOOST_TEST(w.recoveries() == 1u);
    BOOST_TEST(a.reclaim_dead() == 1u);
    BOOST_TEST(a.stats().attached_dead == 0u);
    BOOST_TEST(a.attachment().high_water() == 1u);
}

} // namespace

// attach(): the CAS of the owner word claims the entry; the reader counts
// of its dead previous owner are zeroed only after it. A claimer killed
// between the two leaves an entry with a dead owner and the counts of the
// one before: a writer draining readers reclaims it, and the counts go.
BOOST_AUTO_TEST_CASE(a_claimer_killed_right_after_its_claim_leaves_an_entry_the_next_writer_reclaims,
                     *boost::unit_test::precondition(test::write_watches_available()))
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout(4)); // entry 0: ours
    leave_a_dead_holder_in_entry_1(dir / "s", [](segment& s) { s.rwlock(0).lock_shared(); });
    shmkit::detail::attach_entry& e = a.attachment().entry(1);
    BOOST_REQUIRE_EQUAL(e.readers[0].load(), 1u);
    const std::uint64_t generation = e.generation.load();
    // The claimer takes entry 1, the first not alive.
    const pid_t claimer_pid = kill_a_claimer_after_writing(a, &e.owner, sizeof e.owner);
    BOOST_TEST(e.readers[0].load() == 1u); // not wiped
    BOOST_TEST(e.generation.load() == generation);
    const auto dead = find(a.attached(), claimer_pid);
    BOOST_TEST_REQUIRE(dead.has_value()); // the entry names the dead claimer
    BOOST_TEST(!dead->alive);
    auto w = a.rwlock(0);
    BOOST_TEST_REQUIRE(w.try_lock_for(10s)); // drains: reclaims the dead entry and its count
    w.unlock();
    BOOST_TEST(e.readers[0].load() == 0u);
    BOOST_TEST(a.reclaim_dead() == 0u);
    BOOST_TEST(a.stats().attached_dead == 0u);
}

// Killed after zeroing the reader counts, before the generation bump: the
// dead writer's token still has the entry's generation, and the entry now
// names the dead claimer, so the token is dead either way; the dead
// reader's count is gone already.
BOOST_AUTO_TEST_CASE(a_claimer_killed_before_its_generation_bump_leaves_the_lock_recoverable,
                     *boost::unit_test::precondition(test::write_watches_available()))
{
    kill_a_claimer_in_its_wipe_of_a_dead_holder(false);
}

// Killed right after the generation bump: the dead writer's token is stale.
BOOST_AUTO_TEST_CASE(a_claimer_killed_after_its_generation_bump_leaves_the_lock_recoverable,
                     *boost::unit_test::precondition(test::write_watches_available()))
{
    kill_a_claimer_in_its_wipe_of_a_dead_holder(true);
}

// A claim of a fresh entry above the mark, killed after its wipe, before
// it raises the mark: the entry names a dead process that holds nothing,
// and reclaim_dead() and attached() do not see it (they scan below the
// mark), but the table has not lost it: the next process to attach takes
// it, and it goes when that one detaches.
BOOST_AUTO_TEST_CASE(a_claimer_killed_before_raising_the_mark_loses_no_entry,
                     *boost::unit_test::precondition(test::write_watches_available()))
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout(2));
    BOOST_REQUIRE_EQUAL(a.attachment().high_water(), 1u);
    shmkit::detail::attach_entry& e = a.attachment().entry(1);
    const std::uint64_t generation = e.generation.load();
    // The claim's count, stored between the wipe and the raise.
    const auto& attaches = table_header(a).attaches;
    kill_a_claimer_after_writing(a, &attaches, sizeof attaches);
    BOOST_TEST(e.owner.load() != 0u);
    BOOST_TEST(e.generation.load() == generation + 1);
    BOOST_TEST(a.attachment().high_water() == 1u); // killed inside the window
    BOOST_TEST(a.attached().size() == 1u);
    BOOST_TEST(a.reclaim_dead() == 0u);
    {
        // Entry 0 is ours: a table of two has room only if entry 1 is taken again.
        segment b = segment::file(shmkit::open_only, dir / "s");
        BOOST_TEST(b.attachment().index() == 1u);
        BOOST_TEST(a.attachment().high_water() == 2u);
        auto r = b.rwlock(0);
        BOOST_TEST(r.try_lock_shared_for(10s));
        r.unlock_shared();
    }
    BOOST_TEST(e.owner.load() == 0u);
    BOOST_TEST(a.attachment().high_water() == 1u);
    BOOST_TEST(a.attached().size() == 1u);
}

// Killed right after raising the mark: a dead entry below it, which
// reclaim_dead() finds and frees, bringing the mark down again.
BOOST_AUTO_TEST_CASE(a_claimer_killed_after_raising_the_mark_is_reclaimed,
                     *boost::unit_test::precondition(test::write_watches_available()))
{
    test::scratch_dir dir;
    segment a = segment::file(shmkit::create_only, dir / "s", layout(2));
    kill_a_claimer_after_writing(a, &table_header(a).water, sizeof(std::uint64_t));
    BOOST_TEST(a.attachment().high_water() == 2u);
    BOOST_TEST(a.stats().attached_dead == 1u);
    BOOST_TEST(a.reclaim_dead() == 1u);
    BOOST_TEST(a.attachment().high_water() == 1u);
    BOOST_TEST(a.stats().attached_dead == 0u);
}
