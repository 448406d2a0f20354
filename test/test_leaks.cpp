// Opening and closing leaks nothing. Every kind of handle (buffer<T> in a
// file, in /dev/shm, anonymous, in a memfd and from an fd; str_buffer;
// pool<T>, raw_pool, str_pool; kv_store, also while it grows under a handle
// held open; share with both backends; bare segments with their locks; the
// eventfd notifier) is opened, used and closed a thousand times, and so is
// every way of failing to open one (a missing name, a wrong kind, type or
// capacity, a name taken, an initialiser that throws, an fd that is no
// segment). Before and after, the process must hold the same descriptors
// (/proc/self/fd), the same shared and segment mappings (/proc/self/maps;
// private anonymous memory such as the heap is allocator noise, not a
// handle's), and the same System V segments and semaphore sets
// (/proc/sysvipc/shm, /proc/sysvipc/sem).
//
// One cycle runs before the first look, so that what the library sets up
// once per process (cached identity, thread-local lock records) is not
// counted. No process is forked; every name is removed on scope exit.
#define BOOST_TEST_MODULE leaks
#include "support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/raw_pool.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>
#include <shmkit/str_buffer.hpp>
#include <shmkit/str_pool.hpp>
#include <shmkit/sync/notifier.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <dirent.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>

using namespace std::chrono_literals;
using shmkit::share;
using shmkit::share_backend;
using shmkit::share_options;

namespace {

constexpr int cycles = 1000;

// ---- What a process holds ------------------------------------------------------------

/// The top 24 bits of this suite's share keys, 0x59PPPPNN (PPPP: the low 16
/// bits of the PID; NN: a counter): apart from the other suites' 0x5a..0x5f.
key_t key_prefix() { return static_cast<key_t>(0x590000u | (static_cast<unsigned>(::getpid()) & 0xffffu)); }

bool is_suite_key(long long key)
{
    return (static_cast<std::uint32_t>(key) >> 8) == static_cast<std::uint32_t>(key_prefix());
}

key_t next_key()
{
    static unsigned n = 0;
    return static_cast<key_t>(static_cast<unsigned>(key_prefix()) << 8 | (n++ & 0xffu));
}

/// Open descriptors: number -> what it refers to.
std::map<int, std::string> open_fds()
{
    std::map<int, std::string> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    BOOST_REQUIRE(dir != nullptr);
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd == ::dirfd(dir)) continue; // the listing's own descriptor
        char target[PATH_MAX] = {};
        const ssize_t n = ::readlink(("/proc/self/fd/" + std::string(e->d_name)).c_str(), target, sizeof target - 1);
        fds[fd] = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
    }
    ::closedir(dir);
    return fds;
}

/// A line of /proc/self/maps that a handle could have left: any shared
/// mapping (file, /dev/shm, memfd, anonymous shared, System V), or a private
/// one of a segment's file.
bool is_segment_mapping(const std::string& line)
{
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    if (perms.size() == 4 && perms[3] == 's') return true;
    for (const char* where : {"/dev/shm/", "/memfd:", "/tmp/", "/SYSV"})
        if (path.rfind(where, 0) == 0) return true;
    return false;
}

std::vector<std::string> segment_mappings()
{
    std::vector<std::string> lines;
    std::istringstream maps(test::read_file("/proc/self/maps"));
    for (std::string line; std::getline(maps, line);)
        if (is_segment_mapping(line)) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
}

/// The rows (after the header) of a /proc/sysvipc table whose column
/// `column` satisfies `keep`, as "key id" strings.
std::vector<std::string> sysvipc_rows(const std::string& table, std::size_t column,
                                      const std::function<bool(long long)>& keep)
{
    std::vector<std::string> rows;
    std::istringstream in(test::read_file("/proc/sysvipc/" + table));
    std::string line;
    std::getline(in, line); // the header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::vector<long long> v{std::istream_iterator<long long>(fields), std::istream_iterator<long long>()};
        if (v.size() > column && keep(v[column])) rows.push_back(std::to_string(v[0]) + " id " + std::to_string(v[1]));
    }
    std::sort(rows.begin(), rows.end());
    return rows;
}

/// What a leaking handle would leave behind in this process.
struct holdings {
    std::map<int, std::string> fds;
    std::vector<std::string> mappings;
    std::vector<std::string> sysv_shm; ///< segments this process created (cpid): chains use IPC_PRIVATE
    std::vector<std::string> sysv_sem; ///< semaphore sets at this suite's keys (no creator column)

    static holdings now()
    {
        holdings h;
        h.fds = open_fds();
        h.mappings = segment_mappings();
        const long long pid = ::getpid();
        h.sysv_shm = sysvipc_rows("shm", 4, [pid](long long cpid) { return cpid == pid; });
        h.sysv_sem = sysvipc_rows("sem", 0, is_suite_key);
        return h;
    }
};

template <class Seq>
std::string difference(const Seq& before, const Seq& after, const char* what)
{
    std::vector<typename Seq::value_type> gone, added;
    std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(gone));
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
    std::ostringstream out;
    auto show = [&](const auto& x) {
        if constexpr (std::is_same_v<typename Seq::value_type, std::string>) out << x;
        else out << x.first << " -> " << x.second;
    };
    auto list = [&](const auto& xs, const char* sign) {
        for (const auto& x : xs) {
            out << "  " << sign << " " << what << " ";
            show(x);
            out << "\n";
        }
    };
    list(added, "+");
    list(gone, "-");
    return out.str();
}

/// What changed between two looks, one line per descriptor, mapping or IPC
/// object; empty if nothing did.
std::string difference(const holdings& before, const holdings& after)
{
    return difference(before.fds, after.fds, "fd") + difference(before.mappings, after.mappings, "mapping") +
           difference(before.sysv_shm, after.sysv_shm, "shm") + difference(before.sysv_sem, after.sysv_sem, "sem");
}

/// Runs `cycle(0)` once, then `cycle(1..cycles)`, and checks that the
/// process holds after them what it held before.
void expect_no_leak(const std::string& what, const std::function<void(int)>& cycle)
{
    cycle(0);
    const holdings before = holdings::now();
    for (int i = 1; i <= cycles; ++i) cycle(i);
    const std::string d = difference(before, holdings::now());
    BOOST_CHECK_MESSAGE(d.empty(), what << ": " << cycles << " cycles leaked:\n" << d);
}

/// The shmkit::error `f` must throw (any other outcome fails the test).
void expect_error(const std::function<void()>& f)
{
    BOOST_CHECK_THROW(f(), shmkit::error);
}

// ---- Names removed on scope exit ----------------------------------------------------

/// A kv_store name, the store removed before use and on scope exit (or
/// whatever else a test put under the name).
class kv_name {
public:
    explicit kv_name(const std::string& tag) : name_("shmkit-test-leaks-" + tag + "-" + std::to_string(::getpid()))
    {
        clean();
    }
    ~kv_name() { clean(); }
    kv_name(const kv_name&) = delete;
    kv_name& operator=(const kv_name&) = delete;
    const std::string& str() const { return name_; }

private:
    void clean() const noexcept
    {
        try {
            shmkit::kv_store::remove(name_);
        } catch (...) {
            ::shm_unlink(("/" + name_).c_str()); // not a store: kv_store::remove refuses it
        }
    }
    std::string name_;
};

/// A share key of this suite; whatever either backend keeps there (native
/// root and value segments, ShareLite's head, chain and semaphores) is
/// removed before use and on scope exit.
class share_key_guard {
public:
    share_key_guard() : key_(next_key()) { clean(); }
    ~share_key_guard() { clean(); }
    share_key_guard(const share_key_guard&) = delete;
    share_key_guard& operator=(const share_key_guard&) = delete;
    key_t key() const { return key_; }

private:
    void clean() const noexcept
    {
        for (auto backend : {share_backend::native, share_backend::sharelite}) {
            try {
                share::remove(key_, backend);
            } catch (...) {
            }
        }
        remove_native_names();
        const int shmid = ::shmget(key_, 0, 0);
        if (shmid >= 0) ::shmctl(shmid, IPC_RMID, nullptr);
        const int semid = ::semget(key_, 0, 0);
        if (semid >= 0) ::semctl(semid, 0, IPC_RMID);
    }
    /// The native root and its value segments ("NAME~..."), if a failed
    /// test left them.
    void remove_native_names() const noexcept
    {
        const std::string prefix = share::native_name(key_);
        if (DIR* dir = ::opendir("/dev/shm")) {
            std::vector<std::string> names;
            while (const dirent* e = ::readdir(dir))
                if (std::string(e->d_name).rfind(prefix, 0) == 0) names.push_back(e->d_name);
            ::closedir(dir);
            for (const auto& n : names) ::shm_unlink(("/" + n).c_str());
        }
    }
    key_t key_;
};

share_options share_opts(share_backend backend, bool create, bool destroy = false)
{
    share_options o;
    o.backend = backend;
    o.create = create;
    o.destroy = destroy;
    o.size = 4096; // values past it need value segments (native) or a chain (ShareLite)
    return o;
}

/// A value longer than share_opts().size: two more ShareLite segments, or a
/// native value segment.
std::string long_value(int i) { return std::string(10000, static_cast<char>('a' + i % 26)); }

/// A descriptor closed on scope exit.
struct scoped_fd {
    int fd;
    explicit scoped_fd(int f) : fd(f) { BOOST_REQUIRE(fd >= 0); }
    ~scoped_fd() { ::close(fd); }
};

} // namespace

// ---- buffer<T> and str_buffer ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(buffer_file_backed)
{
    test::scratch_dir dir;
    const std::string path = dir / "buffer";
    expect_no_leak("buffer<int64_t> file", [&](int i) {
        shmkit::buffer<std::int64_t> b(shmkit::open_or_create, path, 64);
        b.set(1, i);
        {
            shmkit::buffer<std::int64_t> other(shmkit::open_only, path);
            BOOST_REQUIRE_EQUAL(other.get(1), i);
        }
        BOOST_REQUIRE(b.unlink());
    });
}

BOOST_AUTO_TEST_CASE(buffer_posix)
{
    test::shm_name name("leaks-buffer");
    expect_no_leak("buffer<double> /dev/shm", [&](int i) {
        shmkit::buffer<double> b(shmkit::create_only, name.path(), 64);
        b.set(63, i);
        {
            shmkit::buffer<double> other(shmkit::open_only, name.path());
            BOOST_REQUIRE_EQUAL(other.get(63), i);
        }
        BOOST_REQUIRE(b.unlink());
    });
}

BOOST_AUTO_TEST_CASE(buffer_anonymous)
{
    expect_no_leak("buffer<uint8_t> anonymous", [](int i) {
        auto b = shmkit::buffer<std::uint8_t>::anonymous(4096);
        b.set(4095, static_cast<std::uint8_t>(i));
        BOOST_REQUIRE_EQUAL(b.get(4095), static_cast<std::uint8_t>(i));
    });
}

BOOST_AUTO_TEST_CASE(buffer_memfd_and_from_fd)
{
    expect_no_leak("buffer<uint32_t> memfd + from_fd", [](int i) {
        auto b = shmkit::buffer<std::uint32_t>::memfd("leaks", 64);
        b.set(5, static_cast<std::uint32_t>(i));
        auto other = shmkit::buffer<std::uint32_t>::from_fd(b.fd());
        BOOST_REQUIRE_EQUAL(other.get(5), static_cast<std::uint32_t>(i));
    });
}

BOOST_AUTO_TEST_CASE(str_buffer_every_backing)
{
    test::scratch_dir dir;
    const std::string path = dir / "strings";
    expect_no_leak("str_buffer file, anonymous, memfd, from_fd", [&](int i) {
        const std::string v = "value " + std::to_string(i);
        {
            shmkit::str_buffer b(shmkit::create_only, path, 8, 32);
            b.set(0, v);
            shmkit::str_buffer other(shmkit::open_only, path);
            BOOST_REQUIRE_EQUAL(other.get(0), v);
            BOOST_REQUIRE(b.unlink());
        }
        auto a = shmkit::str_buffer::anonymous(8, 32);
        a.set(7, v);
        BOOST_REQUIRE_EQUAL(a.get(7), v);
        auto m = shmkit::str_buffer::memfd("leaks", 8, 32);
        m.set(3, v);
        auto f = shmkit::str_buffer::from_fd(m.fd());
        BOOST_REQUIRE_EQUAL(f.get(3), v);
    });
}

// ---- pool<T>, raw_pool, str_pool ----------------------------------------------------

BOOST_AUTO_TEST_CASE(pool_every_backing)
{
    test::scratch_dir dir;
    const std::string path = dir / "pool";
    expect_no_leak("pool<int64_t> file, anonymous, memfd, from_fd", [&](int i) {
        {
            shmkit::pool<std::int64_t> p(shmkit::create_only, path, 16);
            auto slot = p.alloc();
            BOOST_REQUIRE(slot);
            p.set(*slot, i);
            shmkit::pool<std::int64_t> other(shmkit::open_only, path);
            BOOST_REQUIRE_EQUAL(other.get(*slot), i);
            BOOST_REQUIRE(p.free(*slot));
            BOOST_REQUIRE(p.unlink());
        }
        auto a = shmkit::pool<std::int64_t>::anonymous(16);
        BOOST_REQUIRE(a.alloc());
        auto m = shmkit::pool<std::int64_t>::memfd("leaks", 16);
        auto slot = m.alloc();
        BOOST_REQUIRE(slot);
        m.set(*slot, i);
        auto f = shmkit::pool<std::int64_t>::from_fd(m.memfd());
        BOOST_REQUIRE_EQUAL(f.get(*slot), i);
    });
}

BOOST_AUTO_TEST_CASE(raw_pool_every_backing)
{
    test::scratch_dir dir;
    const std::string path = dir / "raw";
    expect_no_leak("raw_pool file, anonymous, memfd, from_fd", [&](int i) {
        const std::string v(24, static_cast<char>(i));
        {
            shmkit::raw_pool p(shmkit::open_or_create, path, 16, 24);
            auto slot = p.alloc();
            BOOST_REQUIRE(slot);
            p.set(*slot, v);
            shmkit::raw_pool other(shmkit::open_only, path);
            BOOST_REQUIRE(other.get(*slot) == v);
            BOOST_REQUIRE(p.unlink());
        }
        auto a = shmkit::raw_pool::anonymous(16, 24);
        BOOST_REQUIRE(a.alloc());
        auto m = shmkit::raw_pool::memfd("leaks", 16, 24);
        auto slot = m.alloc();
        BOOST_REQUIRE(slot);
        m.set(*slot, v);
        auto f = shmkit::raw_pool::from_fd(m.memfd());
        BOOST_REQUIRE(f.get(*slot) == v);
    });
}

BOOST_AUTO_TEST_CASE(str_pool_every_backing)
{
    test::scratch_dir dir;
    const std::string path = dir / "str";
    expect_no_leak("str_pool file, anonymous, memfd, from_fd", [&](int i) {
        const std::string v = "slot " + std::to_string(i);
        {
            shmkit::str_pool p(shmkit::create_only, path, 16, 40);
            auto slot = p.alloc();
            BOOST_REQUIRE(slot);
            p.set(*slot, v);
            shmkit::str_pool other(shmkit::open_only, path);
            BOOST_REQUIRE_EQUAL(other.get(*slot), v);
            BOOST_REQUIRE(p.unlink());
        }
        auto a = shmkit::str_pool::anonymous(16, 40);
        BOOST_REQUIRE(a.alloc());
        auto m = shmkit::str_pool::memfd("leaks", 16, 40);
        auto slot = m.alloc();
        BOOST_REQUIRE(slot);
        m.set(*slot, v);
        auto f = shmkit::str_pool::from_fd(m.memfd());
        BOOST_REQUIRE_EQUAL(f.get(*slot), v);
    });
}

// ---- kv_store -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(kv_store_open_use_remove)
{
    kv_name name("kv");
    kv_name other_name("kv-other");
    expect_no_leak("kv_store", [&](int i) {
        shmkit::kv_store kv(name.str());
        kv.put("key", std::to_string(i));
        {
            shmkit::kv_store reader(name.str());
            BOOST_REQUIRE_EQUAL(reader.get("key").value_or(""), std::to_string(i));
            reader = shmkit::kv_store(other_name.str(), shmkit::exclusive); // move-assigned over an open handle
            BOOST_REQUIRE(reader.empty());
        }
        BOOST_REQUIRE(shmkit::kv_store::remove(name.str()));
        BOOST_REQUIRE(shmkit::kv_store::remove(other_name.str()));
    });
}

// A handle held open while other handles grow the store maps each new table
// and must let the old ones go: it keeps as many descriptors and mappings as
// it had with the first table (the root and one table), and once it is
// closed nothing of the store remains.
BOOST_AUTO_TEST_CASE(kv_store_growing_under_a_held_handle)
{
    kv_name name("kv-grow");
    const holdings before_open = holdings::now();
    std::uint64_t grows = 0;
    {
        shmkit::kv_store held(name.str());
        held.put("seed", "0");
        const holdings with_first_table = holdings::now();
        for (int i = 0; i < cycles; ++i) {
            {
                shmkit::kv_store writer(name.str());
                for (int k = 0; k < 8; ++k) writer.put("key " + std::to_string(i * 8 + k), std::string(16, 'v'));
            }
            // The held handle catches up with the newest table.
            BOOST_REQUIRE_EQUAL(held.get("key " + std::to_string(i * 8)).value_or(""), std::string(16, 'v'));
            const holdings h = holdings::now();
            BOOST_REQUIRE_MESSAGE(h.fds.size() == with_first_table.fds.size() &&
                                      h.mappings.size() == with_first_table.mappings.size(),
                                  "kv_store growing: cycle " << i << " holds more than the first table did:\n"
                                                              << difference(with_first_table, h));
        }
        BOOST_CHECK_EQUAL(held.size(), 8u * cycles + 1);
        grows = held.stats().grows;
    }
    BOOST_CHECK_GE(grows, 3u); // the table was rebuilt bigger, again and again
    BOOST_REQUIRE(shmkit::kv_store::remove(name.str()));
    const std::string d = difference(before_open, holdings::now());
    BOOST_CHECK_MESSAGE(d.empty(), "kv_store growing: left after closing and removing:\n" << d);
}

// ---- share --------------------------------------------------------------------------

namespace {

/// A share at `key` that exists across the cycles: each cycle opens a
/// handle, grows the value past the segment size, shrinks it, and closes;
/// then a share created and destroyed by its handle, replaced by move
/// assignment.
void share_cycles(share_backend backend, const char* what)
{
    share_key_guard kept, fresh, fresh_too;
    share(kept.key(), share_opts(backend, true)).store("short");
    expect_no_leak(what, [&](int i) {
        {
            share s(kept.key(), share_opts(backend, false));
            s.store(long_value(i));
            BOOST_REQUIRE(s.fetch() == long_value(i));
            BOOST_REQUIRE_GE(s.num_segments(), 2u);
            std::unique_lock<share> lock(s);
            s.store("short");
        }
        share s(fresh.key(), share_opts(backend, true, true));
        s.store(long_value(i));
        s = share(fresh_too.key(), share_opts(backend, true, true)); // destroys the first one
        s.store(long_value(i + 1));
        BOOST_REQUIRE(s.fetch() == long_value(i + 1));
    });
}

} // namespace

BOOST_AUTO_TEST_CASE(share_native)
{
    share_cycles(share_backend::native, "share (native)");
}

BOOST_AUTO_TEST_CASE(share_sharelite)
{
    share_cycles(share_backend::sharelite, "share (sharelite)");
}

// ---- Segments, locks, notifier ------------------------------------------------------

BOOST_AUTO_TEST_CASE(segment_with_its_locks)
{
    test::shm_name name("leaks-segment");
    shmkit::segment_layout layout;
    layout.data_size = 256;
    layout.n_rwlocks = 1;
    layout.n_mutexes = 1;
    expect_no_leak("segment, rwlock, mutex", [&](int) {
        auto seg = shmkit::segment::posix(shmkit::create_only, name.str(), layout);
        auto rw = seg.rwlock();
        auto mx = seg.mutex();
        {
            std::scoped_lock both(rw, mx);
        }
        {
            std::shared_lock<shmkit::sync::rwlock> reading(rw);
        }
        auto other = shmkit::segment::posix(shmkit::open_only, name.str());
        seg = std::move(other); // move assignment releases the first handle
        BOOST_REQUIRE(seg.unlink());
    });
}

BOOST_AUTO_TEST_CASE(notifiers)
{
    using shmkit::sync::notifier;
    using shmkit::sync::ownership;
    expect_no_leak("notifier and structure eventfds", [](int) {
        notifier n = notifier::create();
        n.notify(2);
        BOOST_REQUIRE_EQUAL(n.try_consume(), 2u);
        n = notifier::create(); // the first one is closed
        {
            const scoped_fd raw(::eventfd(0, EFD_CLOEXEC));
            notifier borrowed = notifier::attach(raw.fd);
        }
        auto b = shmkit::buffer<std::int32_t>::anonymous(4);
        b.create_eventfd();
        b.create_eventfd(); // replaces and closes the first
        b.attach_eventfd(::eventfd(0, EFD_CLOEXEC), ownership::adopt);
        b.notify();
        BOOST_REQUIRE_EQUAL(b.consume_notifications(), 1u);
    });
}

// ---- Failed opens ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(failed_opens_of_files)
{
    test::scratch_dir dir;
    const std::string buffer_path = dir / "buffer", pool_path = dir / "pool", junk_path = dir / "junk";
    shmkit::buffer<std::int64_t> existing(shmkit::create_only, buffer_path, 64);
    shmkit::pool<std::int64_t> a_pool(shmkit::create_only, pool_path, 8);
    test::write_file(junk_path, std::string(8192, 'x'));
    expect_no_leak("failed opens (files)", [&](int) {
        expect_error([&] { shmkit::buffer<std::int64_t>(shmkit::open_only, dir / "missing"); });
        expect_error([&] { shmkit::buffer<std::int64_t>(shmkit::open_only, pool_path); });       // wrong kind
        expect_error([&] { shmkit::buffer<std::int32_t>(shmkit::open_only, buffer_path); });     // wrong type
        expect_error([&] { shmkit::buffer<std::int64_t>(shmkit::open_or_create, buffer_path, 65); }); // capacity
        expect_error([&] { shmkit::buffer<std::int64_t>(shmkit::create_only, buffer_path, 64); });    // name taken
        expect_error([&] { shmkit::pool<std::int64_t>(shmkit::open_only, buffer_path); });
        expect_error([&] { shmkit::str_pool(shmkit::open_only, junk_path); });                   // not a segment
        expect_error([&] { shmkit::raw_pool(shmkit::open_only, dir.path()); });                  // a directory
    });
}

BOOST_AUTO_TEST_CASE(failed_opens_of_fds)
{
    auto a_buffer = shmkit::buffer<std::int64_t>::memfd("leaks", 64);
    const test::pipe_pair pipe;
    expect_no_leak("failed opens (fds)", [&](int) {
        expect_error([&] { shmkit::pool<std::int64_t>::from_fd(a_buffer.fd()); }); // wrong kind
        expect_error([&] { shmkit::buffer<double>::from_fd(a_buffer.fd()); });      // wrong type
        expect_error([&] { shmkit::str_buffer::from_fd(pipe.rd); });               // not a file
        expect_error([&] { shmkit::raw_pool::from_fd(-1); });
        expect_error([&] { shmkit::sync::notifier::attach(pipe.wr); });            // not an eventfd
    });
}

BOOST_AUTO_TEST_CASE(failed_opens_of_names)
{
    test::shm_name taken("leaks-taken"), missing("leaks-missing"), staged("leaks-staged");
    kv_name kv_taken("kv-taken");
    const std::string kv_taken_path = "/dev/shm/" + kv_taken.str();
    shmkit::buffer<std::int64_t>(shmkit::create_only, kv_taken_path, 8).set(0, 42);
    shmkit::segment_layout layout;
    layout.data_size = 64;
    auto existing = shmkit::segment::posix(shmkit::create_only, taken.str(), layout);
    share_key_guard native_key, sharelite_key, absent_key;
    share existing_native(native_key.key(), share_opts(share_backend::native, true));
    share existing_sharelite(sharelite_key.key(), share_opts(share_backend::sharelite, true));
    expect_no_leak("failed opens (names, keys)", [&](int) {
        expect_error([&] { shmkit::segment::posix(shmkit::open_only, missing.str()); });
        expect_error([&] { shmkit::segment::posix(shmkit::create_only, taken.str(), layout); });
        BOOST_CHECK_THROW(shmkit::region::posix(shmkit::create_only, staged.str(), 4096,
                                                [](void*, std::size_t) { throw std::runtime_error("init"); }),
                          std::runtime_error);
        expect_error([&] { shmkit::kv_store kv(kv_taken.str()); }); // a buffer under the name
        for (auto backend : {share_backend::native, share_backend::sharelite}) {
            expect_error([&] { share(absent_key.key(), share_opts(backend, false)); });
            share_options exclusive = share_opts(backend, true);
            exclusive.exclusive = true;
            const key_t existing_key = backend == share_backend::native ? native_key.key() : sharelite_key.key();
            expect_error([&] { share(existing_key, exclusive); });
        }
    });
    // The buffer a kv_store refused a thousand times is still there, intact.
    BOOST_CHECK_EQUAL(shmkit::buffer<std::int64_t>(shmkit::open_only, kv_taken_path).get(0), 42);
}
