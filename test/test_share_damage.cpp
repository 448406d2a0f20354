// What a killed process can leave in a share's shared memory, and what
// the next user must make of it: names a dead writer left are unlinked by
// the next store even if a lock holder came between; a remove killed
// half-way (a real remover, killed at the exact step: kill_point.hpp) is
// finished by the next opener, or the share is created again; a remove
// never unlinks a share re-created since; a short timed lock reclaims a
// dead reader; a ShareLite chain with a dangling link, a cycle or a
// too-small segment is an error or is repaired, never a crash. States
// other than a remover's are put there by hand: the exact state a SIGKILL
// between two steps leaves, without waiting for a kill to land there.
#define BOOST_TEST_MODULE share_damage
#include "kill_point.hpp"
#include "support.hpp"

#include <shmkit/detail/share_layout.hpp>
#include <shmkit/region.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>
#include <vector>
#include <dirent.h>
#include <grp.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>

namespace utf = boost::unit_test;
using shmkit::share;
using shmkit::share_backend;
using shmkit::share_options;

namespace {

/// A key whose shares (both backends) are removed before and after the test.
struct key_guard {
    key_t key = test::unique_key(0x5b, 4);
    key_guard() { clear(); }
    ~key_guard() { clear(); }
    void clear() const
    {
        share::remove(key);
        share::remove(key, share_backend::sharelite);
    }
};

share_options created(share_backend b = share_backend::native)
{
    share_options o;
    o.create = true;
    o.backend = b;
    return o;
}

/// The native share's root, mapped by hand (as another process would see it).
struct raw_root {
    shmkit::segment seg;
    shmkit::detail::share_root* root;
    explicit raw_root(key_t key)
        : seg(shmkit::segment::posix(shmkit::open_only, share::native_name(key), expectation())),
          root(static_cast<shmkit::detail::share_root*>(seg.data()))
    {
    }
    static shmkit::segment_expectation expectation()
    {
        shmkit::segment_expectation x;
        x.kind = shmkit::structure_kind::share;
        return x;
    }
    std::string value_name(std::uint64_t gen) const
    {
        char id[17];
        std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(seg.param(0)));
        return share::native_name(static_cast<key_t>(seg.param(2))) + "~" + id + "~" + std::to_string(gen);
    }
};

bool shm_exists(const std::string& name) { return ::access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

/// share::remove(key, backend) in a child killed by a seccomp filter at
/// its `nth` call of system call `nr` with arguments `args`.
void remove_killed_before(key_t key, share_backend backend, long nr, std::initializer_list<test::syscall_arg> args = {},
                          unsigned nth = 1)
{
    test::child remover([&] {
        test::die_before_syscall(nr, args, nth);
        share::remove(key, backend);
        return 0;
    });
    BOOST_TEST_REQUIRE(remover.wait(std::chrono::seconds(30)) == test::killed_before_syscall);
}

/// A native remove killed before its first unlink: after it marked the
/// root removed, before any name went.
void native_remove_killed_after_marking(key_t key)
{
    remove_killed_before(key, share_backend::native, __NR_unlink);
    raw_root raw(key);
    BOOST_TEST_REQUIRE(raw.root->removed.load() == 1u);
}

/// Creates an empty POSIX object `name` (a segment a dead writer created).
void make_object(const std::string& name)
{
    const int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
}

/// The head segment of a ShareLite share, attached by hand.
struct raw_head {
    int shmid;
    std::int32_t* words; // next_shmid, length, shm_state, version
    explicit raw_head(key_t key) : shmid(::shmget(key, 0, 0))
    {
        BOOST_REQUIRE(shmid >= 0);
        void* a = ::shmat(shmid, nullptr, 0);
        BOOST_REQUIRE(a != reinterpret_cast<void*>(-1));
        words = static_cast<std::int32_t*>(a);
    }
    ~raw_head() { ::shmdt(words); }
};

/// A segment of a ShareLite chain, attached by hand by its shmid.
struct raw_segment {
    std::int32_t* words; // next_shmid, length, shm_state, version
    explicit raw_segment(int shmid) : words(static_cast<std::int32_t*>(::shmat(shmid, nullptr, 0)))
    {
        BOOST_REQUIRE(words != reinterpret_cast<std::int32_t*>(-1));
    }
    ~raw_segment() { ::shmdt(words); }
};

/// A System V segment made for a test (IPC_PRIVATE: no key names it, so no
/// key_guard removes it), removed on scope exit whatever the test did.
struct private_segment {
    const int shmid;
    explicit private_segment(std::size_t size) : shmid(::shmget(IPC_PRIVATE, size, IPC_CREAT | 0600)) {}
    private_segment(const private_segment&) = delete;
    private_segment& operator=(const private_segment&) = delete;
    ~private_segment()
    {
        if (shmid >= 0) ::shmctl(shmid, IPC_RMID, nullptr);
    }
};

/// How many of this process's mappings are of files whose name contains `part`.
std::size_t mappings_of(const std::string& part)
{
    std::istringstream maps(test::read_file("/proc/self/maps"));
    std::size_t n = 0;
    for (std::string line; std::getline(maps, line);) n += line.find(part) != std::string::npos;
    return n;
}

/// Runs `f` in a child as user and group nobody (65534); returns its exit
/// status (f's result; 2 if it could not become nobody).
template <class F>
int as_nobody(F&& f)
{
    test::child c([&] {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 2;
        return f();
    });
    return c.wait(std::chrono::seconds(30));
}

} // namespace

BOOST_AUTO_TEST_SUITE(native)

BOOST_AUTO_TEST_CASE(names_a_dead_writer_left_are_unlinked_by_the_next_store_even_after_another_holder,
                     *utf::timeout(60))
{
    key_guard k;
    share s(k.key, created());
    s.store(std::string(200000, 'a'));
    raw_root raw(k.key);
    // A writer died after recording these (steps 1 of the store protocol);
    // the segments exist, no slot names them.
    const std::uint64_t pending = raw.root->next_gen.load() + 100, retired = pending + 1;
    make_object(raw.value_name(pending));
    make_object(raw.value_name(retired));
    raw.root->pending.store(pending);
    raw.root->retired.store(retired);
    // A holder that only reads comes between (its unlock clears the lock's
    // dead-writer mark, had there been one).
    s.lock(share::lock_ex);
    BOOST_TEST(s.fetch().size() == 200000u);
    s.unlock();
    s.store("small");
    BOOST_TEST(!shm_exists(raw.value_name(pending)));
    BOOST_TEST(!shm_exists(raw.value_name(retired)));
    BOOST_TEST(raw.root->pending.load() == 0u);
    BOOST_TEST(raw.root->retired.load() == 0u);
    BOOST_TEST(s.stats().repairs == 1u);
    BOOST_TEST(s.fetch() == "small");
}

BOOST_AUTO_TEST_CASE(a_remove_killed_after_marking_the_root_is_finished_by_the_next_opener, *utf::timeout(60))
{
    key_guard k;
    std::string value_segment;
    {
        share s(k.key, created());
        s.store(std::string(300000, 'b')); // a value segment too
        const raw_root raw(k.key);
        value_segment = raw.value_name(raw.root->next_gen.load()); // the only one handed out
    }
    BOOST_REQUIRE(shm_exists(value_segment));
    native_remove_killed_after_marking(k.key);
    BOOST_TEST(shm_exists(value_segment)); // killed before it unlinked anything
    share again(k.key, created());
    BOOST_TEST(!shm_exists(value_segment)); // the opener finished the removal
    BOOST_TEST(again.fetch() == ""); // a fresh share, not the removed one
    BOOST_TEST(again.version() == 1u);
    again.store("fresh");
    BOOST_TEST(share(k.key).fetch() == "fresh");
    // Without create, the half-removed share is removed and not found.
    key_guard k2;
    share(k2.key, created()).store("gone");
    native_remove_killed_after_marking(k2.key);
    BOOST_TEST(test::error_code_of([&] { share s(k2.key); }) == ENOENT);
}

// The remover unlinks the value segments, then the root: killed at the
// root's unlink, the root is marked removed and names no segment left.
BOOST_AUTO_TEST_CASE(a_remove_killed_before_unlinking_the_root_is_finished_by_the_next_opener, *utf::timeout(60))
{
    key_guard k;
    std::string value_segment;
    {
        share s(k.key, created());
        s.store(std::string(300000, 'v'));
        const raw_root raw(k.key);
        value_segment = raw.value_name(raw.root->next_gen.load());
    }
    remove_killed_before(k.key, share_backend::native, __NR_unlink, {}, 2);
    BOOST_TEST(!shm_exists(value_segment));
    BOOST_TEST_REQUIRE(shm_exists(share::native_name(k.key)));
    BOOST_TEST(raw_root(k.key).root->removed.load() == 1u);
    BOOST_TEST(test::error_code_of([&] { share s(k.key); }) == ENOENT); // finished, not found
    BOOST_TEST(!shm_exists(share::native_name(k.key)));
}

BOOST_AUTO_TEST_CASE(an_exclusive_create_finishes_a_remove_killed_after_marking_the_root, *utf::timeout(60))
{
    key_guard k;
    share(k.key, created()).store(std::string(300000, 'b'));
    native_remove_killed_after_marking(k.key);
    share_options x = created();
    x.exclusive = true;
    share fresh(k.key, x); // not EEXIST for ever
    BOOST_TEST(fresh.fetch() == "");
    BOOST_TEST(fresh.version() == 1u);
    // A live share still exists for an exclusive create.
    BOOST_TEST(test::error_code_of([&] { share again(k.key, x); }) == EEXIST);
    BOOST_TEST(share(k.key).version() == 1u);
}

BOOST_AUTO_TEST_CASE(a_fetch_only_handle_unmaps_the_value_segments_replaced_since, *utf::timeout(60))
{
    key_guard k;
    share writer(k.key, created());
    share reader(k.key);
    const std::string value_segments = share::native_name(k.key) + "~";
    writer.store(std::string(300000, 'v'));
    BOOST_TEST(reader.fetch().size() == 300000u);
    BOOST_TEST(mappings_of(value_segments) >= 1u);
    // Two inline values: the slot that named the value segment is reused,
    // and the segment unlinked.
    writer.store("small");
    writer.store("smaller");
    BOOST_TEST(reader.fetch() == "smaller");
    BOOST_TEST(mappings_of(value_segments) == 0u); // neither handle keeps it
}

BOOST_AUTO_TEST_CASE(remove_by_a_user_who_cannot_unlink_the_root_is_refused_and_marks_nothing, *utf::timeout(60))
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: not root, cannot become another user");
        return;
    }
    key_guard open_to_all, private_to_root;
    share_options everyone = created();
    everyone.mode = 0666;
    share a(open_to_all.key, everyone), b(private_to_root.key, created());
    a.store(std::string(200000, 'a'));
    b.store("b");
    // Another user who can open the share but not unlink it in sticky
    // /dev/shm: refused (EPERM), and a destroy-on-close handle does nothing.
    BOOST_TEST(as_nobody([&] {
                   const int code = test::error_code_of([&] { share::remove(open_to_all.key); });
                   share_options o;
                   o.destroy = true;
                   { share s(open_to_all.key, o); }
                   return code == EPERM ? 0 : 3;
               }) == 0);
    // One who cannot open it: EACCES, not "no such share", nothing removed.
    BOOST_TEST(as_nobody([&] {
                   return test::error_code_of([&] { share::remove(private_to_root.key); }) == EACCES ? 0 : 3;
               }) == 0);
    BOOST_TEST(raw_root(open_to_all.key).root->removed.load() == 0u);
    BOOST_TEST(share(open_to_all.key).fetch() == std::string(200000, 'a'));
    BOOST_TEST(share(private_to_root.key).fetch() == "b");
}

BOOST_AUTO_TEST_CASE(removing_through_an_old_handle_never_unlinks_a_share_created_since, *utf::timeout(60))
{
    key_guard k;
    share_options o = created();
    o.destroy = true;
    auto old = std::make_unique<share>(k.key, o);
    BOOST_TEST(share::remove(k.key));
    share fresh(k.key, created());
    fresh.store("the new share");
    old.reset(); // its destroy runs now
    BOOST_TEST(share(k.key).fetch() == "the new share");
}

BOOST_AUTO_TEST_CASE(a_short_timed_lock_reclaims_a_dead_reader_at_its_deadline, *utf::timeout(60))
{
    key_guard k;
    share s(k.key, created());
    test::pipe_pair ready;
    test::child reader([&]() -> int {
        share mine(k.key);
        mine.lock(share::lock_sh);
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(std::chrono::seconds(30)), 'x');
    reader.kill();
    BOOST_REQUIRE_EQUAL(reader.wait(), 128 + SIGKILL);
    // Far shorter than the 10 ms poll interval: the probe at the deadline finds it dead.
    BOOST_TEST(s.try_lock_for(std::chrono::milliseconds(2)));
    s.unlock();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sharelite)

share_options existing_sharelite()
{
    share_options o;
    o.backend = share_backend::sharelite;
    return o;
}

/// A ShareLite remove of `key` killed at its semctl(`cmd`), after it
/// removed the chain: the set (`set_value` in semaphore 0) outlives the
/// head. An open without create is ENOENT; returns the share that an open
/// with create makes, checked empty.
share sharelite_remove_killed_before(key_t key, int cmd, int set_value)
{
    remove_killed_before(key, share_backend::sharelite, __NR_semctl, {{2, static_cast<std::uint32_t>(cmd)}});
    BOOST_TEST_REQUIRE(::shmget(key, 0, 0) < 0);
    BOOST_TEST_REQUIRE(::semctl(::semget(key, 0, 0), 0, GETVAL) == set_value);
    BOOST_TEST(test::error_code_of([&] { share s(key, existing_sharelite()); }) == ENOENT);
    share fresh(key, created(share_backend::sharelite));
    BOOST_TEST(fresh.fetch() == "");
    return fresh;
}

BOOST_AUTO_TEST_CASE(a_remove_killed_before_the_semaphore_set_leaves_a_share_that_is_created_again, *utf::timeout(60))
{
    key_guard k;
    {
        share s(k.key, created(share_backend::sharelite));
        s.store("old value");
    }
    // The remover removed the chain and was killed before the set: the set
    // still says initialised, the head is gone.
    share fresh = sharelite_remove_killed_before(k.key, SETVAL, 1);
    {
        raw_head h(k.key); // initialised: no link to segment 0
        BOOST_TEST(h.words[0] == -1);
        BOOST_TEST(h.words[1] == 0);
    }
    fresh.store(std::string(200000, 'n')); // a chain of several segments
    BOOST_TEST(share(k.key, existing_sharelite()).fetch() == std::string(200000, 'n'));
}

BOOST_AUTO_TEST_CASE(a_remove_killed_between_uninitialising_the_set_and_removing_it_leaves_a_share_that_is_created_again,
                     *utf::timeout(60))
{
    key_guard k;
    share(k.key, created(share_backend::sharelite)).store(std::string(200000, 'o'));
    // The chain is gone and the set says "not initialised"; the remover's
    // lock went with it (SEM_UNDO).
    share fresh = sharelite_remove_killed_before(k.key, IPC_RMID, 0);
    fresh.store("new");
    BOOST_TEST(share(k.key, existing_sharelite()).fetch() == "new");
}

/// The shmids of share `key`'s chain, head first, read by hand.
std::vector<int> chain_ids(key_t key)
{
    std::vector<int> ids;
    for (int id = ::shmget(key, 0, 0); id >= 0 && ids.size() < 64;) {
        ids.push_back(id);
        id = raw_segment(id).words[0];
    }
    return ids;
}

/// How many of `ids` still exist (nobody here has them attached: a removed
/// one is gone).
std::size_t existing(const std::vector<int>& ids)
{
    return static_cast<std::size_t>(std::count_if(ids.begin(), ids.end(), [](int id) {
        shmid_ds ds{};
        return ::shmctl(id, IPC_STAT, &ds) == 0;
    }));
}

/// A store of `value` into ShareLite share `key`, in a child killed at its
/// shmctl(shmid, IPC_RMID): while it drops the segments `value` does not need.
void store_killed_before_removing(key_t key, int shmid, const std::string& value)
{
    test::child writer([&] {
        share mine(key, existing_sharelite());
        test::die_before_syscall(__NR_shmctl, {{0, static_cast<std::uint32_t>(shmid)}, {1, IPC_RMID}});
        mine.store(value);
        return 0;
    });
    BOOST_TEST_REQUIRE(writer.wait(std::chrono::seconds(30)) == test::killed_before_syscall);
}

// The chain is removed last segment first: a remover killed half-way
// leaves the segments it has not removed yet linked from the head, where
// the next removal finds them. Removed first segment first (as ShareLite
// does), they would be keyless segments that nothing names, for ever.
BOOST_AUTO_TEST_CASE(a_remove_killed_half_way_through_the_chain_leaves_no_segment_that_nothing_names, *utf::timeout(60))
{
    key_guard k;
    share(k.key, created(share_backend::sharelite)).store(std::string(200000, 'r'));
    const std::vector<int> ids = chain_ids(k.key);
    BOOST_REQUIRE_GE(ids.size(), 4u);
    remove_killed_before(k.key, share_backend::sharelite, __NR_shmctl,
                         {{0, static_cast<std::uint32_t>(ids[1])}, {1, IPC_RMID}});
    BOOST_TEST(existing(ids) == 2u); // the head and the segment it was about to remove
    BOOST_TEST(share::remove(k.key, share_backend::sharelite));
    BOOST_TEST(existing(ids) == 0u);
    BOOST_TEST(::semget(k.key, 0, 0) < 0);
}

// The same for a store that shortens the chain: the segments it drops go
// last first, so a store killed half-way leaves the rest linked, and the
// next store drops them.
BOOST_AUTO_TEST_CASE(a_store_killed_half_way_through_dropping_segments_leaves_them_to_the_next_store, *utf::timeout(60))
{
    key_guard k;
    share(k.key, created(share_backend::sharelite)).store(std::string(200000, 'd'));
    const std::vector<int> ids = chain_ids(k.key);
    BOOST_REQUIRE_GE(ids.size(), 4u);
    store_killed_before_removing(k.key, ids[2], "short");
    BOOST_TEST(existing(ids) == 3u); // the head, the segment it was about to drop and the one before
    share s(k.key, existing_sharelite());
    BOOST_TEST(s.fetch() == "short"); // the length was written before the segments were dropped
    s.store("next");
    BOOST_TEST(existing(ids) == 1u); // the head alone
    BOOST_TEST(s.fetch() == "next");
}

// A segment removed while another process still has it attached lives on
// (SHM_DEST) until that process detaches. A killed store can leave the
// chain linking to one; the next store must not put the value into it.
BOOST_AUTO_TEST_CASE(a_store_never_puts_the_value_into_a_removed_segment_that_someone_still_has_attached,
                     *utf::timeout(60))
{
    key_guard k;
    const std::string big(200000, 'b');
    share(k.key, created(share_backend::sharelite)).store(big);
    const std::vector<int> ids = chain_ids(k.key);
    BOOST_REQUIRE_EQUAL(ids.size(), 4u);
    std::optional<raw_segment> still_attached(ids[3]);
    // A store of a short value, killed when it has removed the last
    // segment: the chain still links to it, and we keep it alive.
    store_killed_before_removing(k.key, ids[2], "short");
    BOOST_TEST_REQUIRE(existing(ids) == 4u); // the last one removed, but attached here
    share(k.key, existing_sharelite()).store(big); // needs 4 segments again
    still_attached.reset();                        // the removed segment goes now
    BOOST_TEST(share(k.key, existing_sharelite()).fetch() == big);
}

BOOST_AUTO_TEST_CASE(a_failed_create_removes_the_semaphore_set_it_made, *utf::timeout(60))
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: not root, cannot become another user");
        return;
    }
    key_guard k;
    // Mode 0400: the creator itself may not alter the set (semop: EACCES).
    BOOST_TEST(as_nobody([&] {
                   share_options o = created(share_backend::sharelite);
                   o.mode = 0400;
                   return test::error_code_of([&] { share s(k.key, o); }) == EACCES ? 0 : 3;
               }) == 0);
    BOOST_TEST(::semget(k.key, 0, 0) == -1);
    BOOST_TEST(errno == ENOENT);
    BOOST_TEST(::shmget(k.key, 0, 0) == -1);
}

BOOST_AUTO_TEST_CASE(a_value_that_is_a_view_of_the_share_itself_is_stored_whole, *utf::timeout(60))
{
    key_guard k;
    share s(k.key, created(share_backend::sharelite));
    s.store("abcdefghij");
    s.lock(share::lock_ex);
    s.store(s.fetch_view().substr(1)); // overlaps the head segment's data
    BOOST_TEST(s.fetch() == "bcdefghij");
    s.unlock();
}

BOOST_AUTO_TEST_CASE(a_link_to_a_removed_segment_is_replaced_by_the_next_store, *utf::timeout(60))
{
    key_guard k;
    {
        share s(k.key, created(share_backend::sharelite));
        s.store(std::string(100000, 'c')); // two segments
    } // detached: a removed segment goes at once
    {
        raw_head h(k.key);
        const int second = h.words[0];
        BOOST_REQUIRE(second >= 0);
        ::shmctl(second, IPC_RMID, nullptr); // a store killed while shortening the chain
    }
    share other(k.key, share_options{false, false, false, 0600, 65536, share_backend::sharelite});
    BOOST_TEST(test::error_code_of([&] { (void)other.fetch(); }) != 0); // the value is longer than the chain
    other.store(std::string(150000, 'd'));
    BOOST_TEST(other.fetch() == std::string(150000, 'd'));
    BOOST_TEST(other.num_segments() == 3u);
}

BOOST_AUTO_TEST_CASE(a_cycle_in_the_chain_is_an_error_and_leaves_the_head_alone, *utf::timeout(60))
{
    key_guard k;
    share s(k.key, created(share_backend::sharelite));
    {
        raw_head h(k.key);
        h.words[0] = h.shmid; // the head links to itself
        h.words[1] = 200000;  // and the value claims four segments
    }
    share other(k.key, share_options{false, false, false, 0600, 65536, share_backend::sharelite});
    BOOST_TEST(test::error_code_of([&] { (void)other.fetch(); }) != 0);
    BOOST_TEST(test::error_code_of([&] { (void)other.num_segments(); }) != 0);
    BOOST_TEST(::shmget(k.key, 0, 0) >= 0); // the head is still there
}

// Found by test/fuzz/fuzz_sharelite_chain: the removal of the tail a store
// no longer needs followed a link back into the segments it keeps and
// removed them, so the value just stored lost a segment.
BOOST_AUTO_TEST_CASE(a_cycle_behind_the_segments_a_store_keeps_removes_none_of_them, *utf::timeout(60))
{
    key_guard k;
    const share_options attach{false, false, false, 0600, 65536, share_backend::sharelite};
    {
        share s(k.key, created(share_backend::sharelite));
        s.store(std::string(150000, 'a')); // three segments: head, second, third
    }
    {
        raw_head h(k.key);
        const int second = h.words[0];
        BOOST_REQUIRE(second >= 0);
        raw_segment s2(second);
        raw_segment s3(s2.words[0]);
        s3.words[0] = second; // the third links back to the second
    }
    {
        share writer(k.key, attach);
        writer.store(std::string(100000, 'b')); // keeps head and second, removes the third
    } // detached: a removed segment goes at once
    share reader(k.key, attach);
    BOOST_TEST(reader.fetch() == std::string(100000, 'b'));
    BOOST_TEST(reader.num_segments() == 2u);
}

BOOST_AUTO_TEST_CASE(a_segment_smaller_than_the_head_in_the_chain_is_refused_every_time, *utf::timeout(60))
{
    key_guard k;
    share s(k.key, created(share_backend::sharelite));
    const private_segment small(4096);
    BOOST_REQUIRE(small.shmid >= 0);
    {
        raw_head h(k.key);
        h.words[0] = small.shmid;
        h.words[1] = 100000;
    }
    share other(k.key, share_options{false, false, false, 0600, 65536, share_backend::sharelite});
    BOOST_TEST(test::error_code_of([&] { (void)other.fetch(); }) != 0);
    // Refused again, not cached: a store through the same handle must not
    // write 65520 bytes into the 4 KiB segment.
    BOOST_TEST(test::error_code_of([&] { other.store(std::string(100000, 'e')); }) != 0);
}

BOOST_AUTO_TEST_SUITE_END()
