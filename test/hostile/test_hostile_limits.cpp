// Hostile limits: no file descriptor left (RLIMIT_NOFILE), a file size
// limit below the segment (RLIMIT_FSIZE, SIGXFSZ ignored), and a tmpfs too
// small for the segment, also over /dev/shm where kv_store and share live
// (in a mount namespace of the child's own). Each ends in a clear exception
// naming the path at creation or growth time, never a SIGBUS later; no fd
// is leaked; what existed before is intact and still works.
#define BOOST_TEST_MODULE hostile_limits
#include "specimens.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

using namespace hostile;
namespace s = shmkit;

namespace {

constexpr int fd_limit = 256;

/// Open fds below fd_limit, counted without opening one.
int count_fds()
{
    int n = 0;
    for (int fd = 0; fd < fd_limit; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
    return n;
}

/// Ends `a` may have when fds run out: success, or EMFILE naming `mention`.
void emfile_or_success(cases& c, const attempt& a, const std::string& mention)
{
    if (a.returned()) c.tally("returned");
    else c.refused(a, {sys(EMFILE), sys(ENFILE)}, mention);
}

/// Every operation that needs fds, each one case; `spare` fds are free.
void operations_without_fds(cases& c, const site& st, const std::vector<std::pair<std::string, std::string>>& kinds,
                            int seg_fd, const std::string& tag, s::kv_store& kv)
{
    const auto run = [&](const std::string& what, const std::string& mention, const std::function<void()>& f) {
        c.begin(what + tag);
        const int before = count_fds();
        emfile_or_success(c, try_call(f), mention);
        c.check(count_fds() == before, "fds leaked: " + std::to_string(before) + " before, " +
                                           std::to_string(count_fds()) + " after");
    };
    const std::string fresh = st.file("fresh");
    for (const creator& cr : all_creators()) {
        run(cr.name + " create_only", fresh, [&] { cr.create_only(fresh); });
        ::unlink(fresh.c_str());
    }
    for (const auto& [kind, path] : kinds)
        for (const opener& o : path_openers())
            if (o.accepts == kind) run(o.name + " open_only", path, [&, &path = path] { o.open(st, path); });
    run("inspect", kinds[0].second, [&] { s::inspect(kinds[0].second); });
    run("buffer<int64_t>::from_fd", "fd:", [&] { s::buffer<std::int64_t>::from_fd(seg_fd); });
    run("buffer<int64_t>::memfd", "memfd:", [&] { s::buffer<std::int64_t>::memfd("m", 8, small()); });
    run("pool<int64_t>::anonymous", "anonymous", [&] { s::pool<std::int64_t>::anonymous(8, small_pool()); });
    run("kv_store open", st.kv_name(), [&] { observe(s::kv_store(st.kv_name(), small_kv())); });
    run("kv_store create", st.shm.name("new"), [&] { s::kv_store(st.shm.name("new"), small_kv()).put("k", "v"); });
    run("share open", s::share::native_name(st.key), [&] { observe(s::share(st.key, share_open())); });
    // A new table (a new POSIX object), as a growth makes, without growing:
    // done, or refused with the store as it was.
    const std::string before = observe(kv);
    bool cleared = false;
    run("kv clear (a new table)", st.kv_name(), [&] {
        kv.clear();
        cleared = true;
    });
    c.check(cleared ? kv.size() == 0 : observe(kv) == before, "the store changed under a refused clear");
    kv.put("k0", "v0"); // in a cell of the table there is: no fd needed
    c.check(kv.get("k0").value_or("") == "v0", "a put without a new table failed");
}

} // namespace

BOOST_AUTO_TEST_CASE(no_file_descriptor_left)
{
    const site st("nofile");
    run_family("RLIMIT_NOFILE exhausted", [&](cases& c) {
        const std::vector<std::pair<std::string, std::string>> kinds = {
            {buffer_kind<std::int64_t>(), st.file("buffer")}, {"str_buffer", st.file("str_buffer")},
            {pool_kind<std::int64_t>(), st.file("pool")},     {"raw_pool", st.file("raw_pool")},
            {"str_pool", st.file("str_pool")},                {"segment", st.file("segment")}};
        make_buffer<std::int64_t>(kinds[0].second);
        make_str_buffer(kinds[1].second);
        make_pool<std::int64_t>(kinds[2].second);
        make_raw_pool(kinds[3].second);
        make_str_pool(kinds[4].second);
        make_segment(kinds[5].second);
        make_kv(st);
        make_share(st);
        const int seg_fd = ::open(kinds[0].second.c_str(), O_RDWR | O_CLOEXEC);
        s::kv_store kv(st.kv_name(), small_kv()); // the process knows who it is (/proc/self/stat) from here on
        kv.put("k0", "v0");
        // UndefinedBehaviorSanitizer checks an object's dynamic type with a
        // pipe(2) the first time it meets it, and takes a failed pipe for
        // a bad object: every operation, and the checks of a refusal, run
        // once while fds are plenty.
        operations_without_fds(c, st, kinds, seg_fd, " before the limit", kv);
        c.refused(try_call([&] { s::buffer<std::int64_t>(s::open_only, st.file("missing")); }), {sys(ENOENT)},
                  st.file("missing"));
        c.refused(try_call([&] { s::segment::posix(s::open_only, st.shm.name("missing")); }), {sys(ENOENT)},
                  st.shm.name("missing"));
        struct rlimit rl = {fd_limit, fd_limit};
        c.begin("setrlimit(RLIMIT_NOFILE)");
        if (!c.check(::setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit failed")) return;
        std::vector<int> fillers;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
        c.check(errno == EMFILE, "filling the table did not end in EMFILE");
        for (int spare : {0, 1, 2, 3, 4, 6, 8}) {
            while (count_fds() > fd_limit - spare && !fillers.empty()) {
                ::close(fillers.back());
                fillers.pop_back();
            }
            operations_without_fds(c, st, kinds, seg_fd, " with " + std::to_string(spare) + " fds free", kv);
        }
        for (int fd : fillers) ::close(fd);
        c.begin("everything works again with fds");
        c.returned(try_call([&] {
            for (const creator& cr : all_creators()) {
                cr.create_only(st.file("after"));
                ::unlink(st.file("after").c_str());
            }
            kv.reserve(4 * kv.stats().table_capacity);
        }));
        c.check(kv.check(), "the store is not sound");
    });
}

BOOST_AUTO_TEST_CASE(file_size_limit_below_the_segment)
{
    const site st("fsize");
    run_family("RLIMIT_FSIZE below the segment", [&](cases& c) {
        const std::string big_before = st.file("big-before");
        s::buffer<std::int64_t>(s::create_only, big_before, 32768, small()).fill(5); // 256 KiB, made before the limit
        s::kv_store kv(st.kv_name(), small_kv());
        kv.put("kept", "value");
        s::share sh(st.key, share_create());
        sh.store("old value");
        ::signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 10, 64 << 10};
        c.begin("setrlimit(RLIMIT_FSIZE)");
        if (!c.check(::setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit failed")) return;
        const std::string path = st.file("big");
        const auto too_big = [&](const std::string& what, const std::string& mention, const std::function<void()>& f) {
            c.begin(what);
            c.refused(try_call(f), {sys(EFBIG)}, mention);
            c.check(::access(path.c_str(), F_OK) != 0, "a file was left behind");
        };
        too_big("buffer<int64_t> of 128 KiB", path, [&] { s::buffer<std::int64_t>(s::create_only, path, 16384, small()); });
        too_big("str_buffer of 128 KiB", path, [&] { s::str_buffer(s::open_or_create, path, 1024, 120, small()); });
        too_big("pool<double> of 128 KiB", path, [&] { s::pool<double>(s::create_only, path, 8192, small_pool()); });
        too_big("raw_pool of 128 KiB", path, [&] { s::raw_pool(s::create_only, path, 1024, 128, small_pool()); });
        too_big("str_pool of 128 KiB", path, [&] { s::str_pool(s::create_only, path, 1024, 124, small_pool()); });
        too_big("segment of 128 KiB", path, [&] {
            auto l = plain_layout();
            l.data_size = 128 << 10;
            s::segment::file(s::create_only, path, l);
        });
        too_big("segment::posix of 128 KiB", st.shm.name("big"), [&] {
            auto l = plain_layout();
            l.data_size = 128 << 10;
            s::segment::posix(s::create_only, st.shm.name("big"), l);
        });
        too_big("memfd buffer of 128 KiB", "memfd:big", [&] { s::buffer<std::int64_t>::memfd("big", 16384, small()); });
        too_big("kv_store growth beyond the limit", st.kv_name(), [&] {
            for (int i = 0; i < 64; ++i) kv.put("large" + std::to_string(i), std::string(4000, 'x'));
        });
        c.check(kv.get("kept").value_or("") == "value" && kv.check(), "the store is not whole");
        too_big("share store of 128 KiB", s::share::native_name(st.key), [&] { sh.store(std::string(128 << 10, 'v')); });
        c.check(sh.fetch() == "old value", "the share lost its value");
        c.begin("a segment below the limit works");
        c.returned(try_call([&] { s::buffer<std::int64_t>(s::create_only, st.file("small"), 512, small()).fill(1); }));
        c.begin("a segment made before the limit opens and is written whole");
        c.returned(try_call([&] {
            s::buffer<std::int64_t> b(s::open_only, big_before);
            b.fill(7);
            c.check(b.get(32767) == 7, "the last element was not written");
        }));
        c.check(shm_entries(st.shm.name("big")).empty(), "a POSIX object was left behind");
    });
}

namespace {

/// Mounts a tmpfs of `size` at `dir` in the calling process's mount namespace.
bool mount_tmpfs(cases& c, const std::string& dir, const char* size)
{
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID, size) == 0) return true;
    c.tally(std::string("skipped: mount of a tmpfs on ") + dir + ": " + std::strerror(errno));
    return false;
}

/// Fills a file-backed tmpfs of 256 KiB at `dir`.
void fill_small_tmpfs(cases& c, const std::string& dir)
{
    const auto enospc = [&](const std::string& what, const std::string& path, const std::function<void()>& f) {
        c.begin(what);
        c.refused(try_call(f), {sys(ENOSPC)}, path);
        c.check(::access(path.c_str(), F_OK) != 0, "a file was left behind");
    };
    const std::string big = dir + "/big";
    enospc("buffer<int64_t> of 512 KiB", big, [&] { s::buffer<std::int64_t>(s::create_only, big, 65536, small()); });
    enospc("pool<int64_t> of 512 KiB", big, [&] { s::pool<std::int64_t>(s::create_only, big, 32768, small_pool()); });
    enospc("str_buffer of 512 KiB", big, [&] { s::str_buffer(s::create_only, big, 4096, 120, small()); });
    c.begin("two segments of 96 KiB fit");
    std::vector<s::buffer<std::int64_t>> kept;
    c.returned(try_call([&] {
        for (int i = 0; i < 2; ++i) kept.emplace_back(s::create_only, dir + "/fits" + std::to_string(i), 12288, small());
    }));
    enospc("a third of 96 KiB", dir + "/fits2", [&] { s::buffer<std::int64_t>(s::create_only, dir + "/fits2", 12288, small()); });
    c.begin("every byte of the segments that fit is written (reserved, no SIGBUS)");
    for (auto& b : kept) b.fill(-1);
    for (auto& b : kept) c.check(b.get(b.capacity() - 1) == -1, "the last element was not written");
}

/// kv_store, share and POSIX segments in a /dev/shm of 256 KiB.
void fill_small_dev_shm(cases& c, const site& st)
{
    c.begin("kv_store grows until /dev/shm is full");
    std::optional<s::kv_store> kv;
    if (!c.returned(try_call([&] { kv.emplace(st.kv_name(), small_kv()); }))) return;
    int stored = 0;
    const attempt a = try_call([&] {
        for (; stored < 1000; ++stored) kv->put("key" + std::to_string(stored), std::string(3000, 'k'));
    });
    c.refused(a, {sys(ENOSPC)}, st.kv_name());
    c.begin("kv_store after the failed growth");
    c.check(stored > 0 && static_cast<int>(kv->size()) == stored, "the store lost or gained entries");
    for (int i = 0; i < stored; ++i)
        if (kv->get("key" + std::to_string(i)).value_or("") != std::string(3000, 'k'))
            c.fail("entry " + std::to_string(i) + " lost");
    c.check(kv->check(), "the store is not sound");
    c.check(kv->erase("key0"), "erase after the failed growth");
    kv->put("small", "fits in a cell");
    c.check(kv->get("small").value_or("") == "fits in a cell", "a put without growth fails");
    kv.reset();
    s::kv_store::remove(st.kv_name());

    c.begin("share store larger than /dev/shm");
    s::share sh(st.key, share_create());
    sh.store("old value");
    c.refused(try_call([&] { sh.store(std::string(300 << 10, 'v')); }), {sys(ENOSPC)}, s::share::native_name(st.key));
    c.check(sh.fetch() == "old value", "the share lost its value");
    sh.destroy(true);
    c.begin("segment::posix larger than /dev/shm");
    auto l = plain_layout();
    l.data_size = 512 << 10;
    c.refused(try_call([&] { s::segment::posix(s::create_only, st.shm.name("big"), l); }), {sys(ENOSPC)},
              st.shm.name("big"));
}

} // namespace

BOOST_AUTO_TEST_CASE(tmpfs_too_small_for_the_segment)
{
    const site st("tmpfs");
    const std::string mnt = st.file("mnt");
    BOOST_REQUIRE(::mkdir(mnt.c_str(), 0700) == 0);
    run_family("tmpfs too small (private mounts)", [&](cases& c) {
        c.begin("a mount namespace of our own");
        if (::unshare(CLONE_NEWNS) != 0) {
            c.tally(std::string("skipped: unshare(CLONE_NEWNS): ") + std::strerror(errno));
            return;
        }
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            c.tally(std::string("skipped: making mounts private: ") + std::strerror(errno));
            return;
        }
        if (mount_tmpfs(c, mnt, "size=256k")) fill_small_tmpfs(c, mnt);
        if (mount_tmpfs(c, "/dev/shm", "size=256k")) fill_small_dev_shm(c, st);
    });
}
