// Hostile files: a segment of every kind opened as every other kind, files
// that are not segments, segments cut short or grown by a byte, directories,
// FIFOs, sockets, devices, symlinks, bad descriptors, and segments of
// another user. Every refusal is a shmkit::error naming the path (or fd, or
// name) and the mismatch, and leaves the file as it was: content, mode and
// owner; nothing blocks.
#define BOOST_TEST_MODULE hostile_files
#include "specimens.hpp"

#include <grp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

using namespace hostile;
namespace s = shmkit;

namespace {

/// What an error from opener `o` at `where` must name.
std::string mention_for(const opener& o, const site& st, const std::string& where)
{
    if (o.name.find("from_fd") != std::string::npos) return "fd:";
    switch (o.where) {
    case opener::place::file: return where;
    case opener::place::kv: return st.kv_name();
    case opener::place::share: return s::share::native_name(st.key);
    }
    return where;
}

/// The codes a refusal of specimen `sp` by an opener of another kind may carry.
std::vector<std::error_code> mismatch_codes(const specimen& sp)
{
    // A kv_store or share root opener accepts any element type of its kind
    // and requires capacity 1: a table or value segment fails on that.
    if (sp.is_segment)
        return {bad(s::errc::kind_mismatch), bad(s::errc::type_mismatch), bad(s::errc::capacity_mismatch)};
    return {bad(s::errc::not_a_segment), bad(s::errc::truncated), bad(s::errc::foreign_platform)};
}

/// The opener called `name`.
const opener& named(const std::vector<opener>& openers, const std::string& name)
{
    for (const opener& o : openers)
        if (o.name == name) return o;
    throw std::logic_error("no opener " + name);
}

} // namespace

BOOST_AUTO_TEST_CASE(every_kind_opened_as_every_other)
{
    const site st("matrix");
    run_family("every kind opened as every other", [&](cases& c) {
        const std::vector<specimen> specimens = make_specimens(st);
        const std::vector<opener> openers = all_openers();
        const std::string file = st.file("matrix");
        for (const specimen& sp : specimens)
            for (const opener& o : openers) {
                const bool fits = accepts(o, sp);
                if (fits && o.destructive) continue;
                c.begin(sp.kind + " opened as " + o.name);
                const std::string where = place_of(o, st, file);
                install(where, sp.bytes);
                const fingerprint before = fingerprint_of(where);
                const attempt a = try_call([&] { o.open(st, file); });
                if (fits) {
                    c.returned(a);
                    const fingerprint after = fingerprint_of(where);
                    c.check(after.mode == before.mode && after.uid == before.uid && after.size == before.size,
                            "mode, owner or size changed by an accepted open");
                } else {
                    c.refused(a, mismatch_codes(sp), mention_for(o, st, where));
                    c.unchanged(where, before);
                }
            }
        // Leave the kv store and the share whole for the site to remove.
        for (const specimen& sp : specimens) {
            if (sp.kind == "kv root") install(st.kv_root(), sp.bytes);
            if (sp.kind == "share root") install(st.share_root(), sp.bytes);
        }
    });
}

namespace {

/// The opener of specimen kind `kind` (its own structure), and where its
/// bytes live when they are a kv table or a share value segment.
const opener& own_opener(const std::vector<opener>& openers, const std::string& kind)
{
    const std::string want = kind == "kv table" ? "kv root" : kind == "share value" ? "share root" : kind;
    for (const opener& o : openers)
        if (o.accepts == want && !o.destructive) return o;
    throw std::logic_error("no opener for " + kind);
}

std::string place_of_specimen(const specimen& sp, const opener& o, const site& st, const std::string& file)
{
    if (sp.kind == "kv table") return kv_table_path(st);
    if (sp.kind == "share value") return share_value_path(st);
    return place_of(o, st, file);
}

} // namespace

BOOST_AUTO_TEST_CASE(truncated_and_extended_segments)
{
    const site st("cut");
    run_family("truncated and extended segments", [&](cases& c) {
        const std::vector<specimen> specimens = make_specimens(st);
        const std::vector<opener> openers = all_openers();
        const std::string file = st.file("cut");
        for (const specimen& sp : specimens) {
            if (!sp.is_segment) continue;
            const opener& own = own_opener(openers, sp.kind);
            const std::string where = place_of_specimen(sp, own, st, file);
            const std::size_t n = sp.bytes.size();
            const std::vector<std::pair<std::string, std::string>> cuts = {
                {"one byte short", sp.bytes.substr(0, n - 1)},
                {"one page short", sp.bytes.substr(0, n - 4096)},
                {"only the header", sp.bytes.substr(0, 256)},
                {"one byte less than a header", sp.bytes.substr(0, 255)},
                {"one byte", sp.bytes.substr(0, 1)},
                {"empty", ""},
                {"one byte more", sp.bytes + "x"},
                {"one page more", sp.bytes + std::string(4096, '\0')},
            };
            for (const auto& [what, bytes] : cuts) {
                // Its own opener where it lives; inspect and check_segment on a copy.
                for (const opener* o : {&own, &named(openers, "inspect"), &named(openers, "check_segment")}) {
                    const std::string at = o == &own ? where : file;
                    c.begin(sp.kind + " " + what + ", opened as " + o->name);
                    install(at, bytes);
                    const fingerprint before = fingerprint_of(at);
                    const attempt a = try_call([&] { o->open(st, file); });
                    c.refused(a, {bad(s::errc::truncated), bad(s::errc::not_a_segment)}, mention_for(*o, st, at));
                    c.unchanged(at, before);
                }
            }
            install(where, sp.bytes); // the kv table and share value stay in use
        }
    });
}

namespace {

/// Makes a FIFO, a unix socket, a device node, a directory and a symlink to
/// /dev/null at `path` in turn; calls f(what) with each in place.
template <class F>
void each_special(const std::string& path, F&& f)
{
    const auto clear = [&] {
        if (::unlink(path.c_str()) != 0) ::rmdir(path.c_str());
    };
    clear();
    ::mkfifo(path.c_str(), 0600);
    f("a FIFO");
    clear();
    {
        const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        const bool bound = ::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (bound) f("a unix socket");
        ::close(sock);
    }
    clear();
    if (::mknod(path.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0) f("a character device");
    clear();
    ::mkdir(path.c_str(), 0700);
    f("a directory");
    clear();
    ::symlink("/dev/null", path.c_str());
    f("a symlink to /dev/null");
    clear();
}

} // namespace

BOOST_AUTO_TEST_CASE(special_files_in_place_of_a_segment)
{
    const site st("special");
    run_family(
        "special files in place of a segment",
        [&](cases& c) {
            const std::string file = st.file("special");
            const std::vector<opener> openers = all_openers();
            // glibc's shm_open reports a directory as EINVAL.
            const auto refused = [&](const attempt& a, const std::string& mention) {
                c.refused(a,
                          {sys(EISDIR), sys(EINVAL), sys(ENXIO), sys(EEXIST), sys(ELOOP), sys(EACCES), sys(ENOENT),
                           bad(s::errc::not_a_segment)},
                          mention);
            };
            for (const std::string& where : {file, st.kv_root(), st.share_root()})
                each_special(where, [&](const char* what) {
                    const fingerprint before = fingerprint_of(where);
                    for (const opener& o : openers) {
                        // from_fd is fed these kinds of files as fds (bad_descriptors).
                        if (place_of(o, st, file) != where || o.name.find("from_fd") != std::string::npos) continue;
                        c.begin(o.name + " on " + what);
                        refused(try_call([&] { o.open(st, file); }), mention_for(o, st, where));
                        c.unchanged(where, before);
                    }
                    if (where != file) return;
                    for (const creator& cr : all_creators()) {
                        c.begin(cr.name + " create_only on " + what);
                        refused(try_call([&] { cr.create_only(where); }), where);
                        c.unchanged(where, before);
                        c.begin(cr.name + " open_or_create on " + what);
                        refused(try_call([&] { cr.open_or_create(where); }), where);
                        c.unchanged(where, before);
                    }
                });
            c.begin("every opener on /dev/null itself");
            const fingerprint null = fingerprint_of("/dev/null");
            for (const opener& o : path_openers())
                refused(try_call([&] { o.open(st, "/dev/null"); }), "/dev/null");
            c.unchanged("/dev/null", null);
        },
        std::chrono::seconds(20));
}

namespace {

/// The from_fd openers of every structure, and region::from_fd.
std::vector<std::pair<std::string, std::function<void(int)>>> fd_openers()
{
    return {
        {"buffer<int64_t>::from_fd", [](int fd) { observe(s::buffer<std::int64_t>::from_fd(fd)); }},
        {"buffer<float>::from_fd", [](int fd) { observe(s::buffer<float>::from_fd(fd)); }},
        {"str_buffer::from_fd", [](int fd) { observe(s::str_buffer::from_fd(fd)); }},
        {"pool<double>::from_fd", [](int fd) { observe(s::pool<double>::from_fd(fd)); }},
        {"raw_pool::from_fd", [](int fd) { observe(s::raw_pool::from_fd(fd)); }},
        {"str_pool::from_fd", [](int fd) { observe(s::str_pool::from_fd(fd)); }},
        {"segment::from_fd", [](int fd) { observe(s::segment::from_fd(fd)); }},
        {"region::from_fd", [](int fd) { s::region::from_fd(fd); }},
    };
}

/// An fd of some kind, closed on scope exit.
struct bad_fd {
    std::string what;
    int fd;
    int other = -1; ///< the other end of a pipe or socket pair
};

std::vector<bad_fd> bad_fds(const std::string& dir)
{
    std::vector<bad_fd> v;
    v.push_back({"fd -1", -1});
    // Far above the fds in use, so that no open below takes its number again.
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int closed = ::fcntl(null, F_DUPFD_CLOEXEC, 900);
    ::close(closed);
    ::close(null);
    v.push_back({"a closed fd", closed});
    v.push_back({"fd INT_MAX", INT_MAX});
    v.push_back({"/dev/null", ::open("/dev/null", O_RDWR | O_CLOEXEC)});
    v.push_back({"a directory", ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)});
    const std::string fifo = dir + "/fifo";
    ::mkfifo(fifo.c_str(), 0600);
    const int fifo_rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    v.push_back({"a FIFO's read end, no writer", fifo_rd});
    v.push_back({"a FIFO's write end", ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)});
    v.push_back({"an O_PATH fd of a FIFO", ::open(fifo.c_str(), O_PATH | O_CLOEXEC)});
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
        v.push_back({"a pipe's read end", p[0], p[1]});
        v.push_back({"a pipe's write end", p[1]});
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) v.push_back({"a socket", sv[0], sv[1]});
    v.push_back({"an eventfd", ::eventfd(0, EFD_CLOEXEC)});
    v.push_back({"an epoll fd", ::epoll_create1(EPOLL_CLOEXEC)});
    v.push_back({"an empty memfd", ::memfd_create("empty", MFD_CLOEXEC)});
    const int junk = ::memfd_create("junk", MFD_CLOEXEC);
    if (::write(junk, "not a segment at all", 20) != 20) ::close(junk);
    v.push_back({"a memfd of 20 bytes", junk});
    return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(bad_descriptors)
{
    test::scratch_dir dir;
    run_family(
        "bad descriptors",
        [&](cases& c) {
            const std::vector<bad_fd> fds = bad_fds(dir.path());
            for (const bad_fd& b : fds)
                for (const auto& [name, open] : fd_openers()) {
                    c.begin(name + " on " + b.what);
                    const std::size_t before = open_fds();
                    const attempt a = try_call([&, &open = open] { open(b.fd); });
                    // A region maps any regular file that is not empty; only
                    // a segment checks what it holds.
                    if (name == "region::from_fd" && b.what == "a memfd of 20 bytes")
                        c.returned(a);
                    else
                        c.refused(a, {sys(EBADF), bad(s::errc::not_a_segment), bad(s::errc::truncated)},
                                  "fd:" + std::to_string(b.fd));
                    c.check(open_fds() == before, "an fd was leaked");
                }
            for (const bad_fd& b : fds) {
                if (b.fd >= 0 && b.fd != INT_MAX) ::close(b.fd);
                if (b.other >= 0) ::close(b.other);
            }
            // A segment whose name is gone is still a segment: from_fd takes it.
            c.begin("from_fd of an unlinked segment");
            const std::string path = dir / "unlinked";
            make_buffer<std::int64_t>(path);
            const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
            ::unlink(path.c_str());
            c.returned(try_call([&] { observe(s::buffer<std::int64_t>::from_fd(fd)); }));
            ::close(fd);
        },
        std::chrono::seconds(20));
}

BOOST_AUTO_TEST_CASE(symlinks_are_never_followed)
{
    const site st("links");
    run_family("symlinks", [&](cases& c) {
        const std::vector<specimen> specimens = make_specimens(st);
        const std::string link = st.file("link");
        const std::string empty = st.file("empty");
        test::write_file(empty, "");
        const std::string dangling = st.file("nowhere");
        const auto refused = [&](const attempt& a, const std::string& mention) {
            c.refused(a, {sys(ELOOP), sys(EEXIST)}, mention);
        };
        for (const specimen& sp : specimens) {
            if (!sp.is_segment) continue;
            const std::string target = st.file("target");
            install(target, sp.bytes);
            for (const auto& [what, to] : std::vector<std::pair<std::string, std::string>>{
                     {"an empty file", empty}, {"a " + sp.kind, target}, {"nothing (dangling)", dangling}}) {
                ::unlink(link.c_str());
                ::symlink(to.c_str(), link.c_str());
                const fingerprint link_before = fingerprint_of(link), to_before = fingerprint_of(to);
                const auto untouched = [&] {
                    c.unchanged(link, link_before);
                    c.unchanged(to, to_before);
                };
                for (const opener& o : path_openers()) {
                    if (o.accepts != sp.kind && o.accepts != "*" && o.accepts != "") continue;
                    c.begin(o.name + " through a symlink to " + what);
                    refused(try_call([&] { o.open(st, link); }), link);
                    untouched();
                }
                if (sp.kind != "segment") continue;
                for (const creator& cr : all_creators()) {
                    c.begin(cr.name + " create_only through a symlink to " + what);
                    refused(try_call([&] { cr.create_only(link); }), link);
                    untouched();
                    c.begin(cr.name + " open_or_create through a symlink to " + what);
                    refused(try_call([&] { cr.open_or_create(link); }), link);
                    untouched();
                }
            }
        }
        // The POSIX places: a symlink where the kv_store root or the share
        // root would be (shm_open follows none: O_NOFOLLOW).
        const std::string victim = st.file("victim");
        make_buffer<std::int32_t>(victim);
        const fingerprint v = fingerprint_of(victim);
        for (const opener& o : all_openers()) {
            if (o.where == opener::place::file) continue;
            const std::string where = place_of(o, st, victim);
            install(where + ".real", content_of(where)); // keep the real root
            for (const std::string& to : {victim, dangling}) {
                ::unlink(where.c_str());
                ::symlink(to.c_str(), where.c_str());
                c.begin(o.name + " through a symlink in /dev/shm to " + (to == victim ? "a buffer" : "nothing"));
                refused(try_call([&] { o.open(st, victim); }), mention_for(o, st, where));
                c.unchanged(victim, v);
                c.check(::access(dangling.c_str(), F_OK) != 0, "the symlink's target was created");
            }
            ::rename((where + ".real").c_str(), where.c_str());
        }
    });
}

BOOST_AUTO_TEST_CASE(segments_of_another_user)
{
    const site st("owner");
    // Made by this process (root) with the default mode 0600, in a directory
    // others may enter.
    ::chmod(st.dir.path().c_str(), 0755);
    std::vector<specimen> specimens;
    try {
        specimens = make_specimens(st);
    } catch (const std::exception& e) {
        BOOST_FAIL("cannot make the specimens: " << e.what());
    }
    // make_specimens() numbers the files it makes in the order of the list.
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < specimens.size(); ++i)
        if (::access(st.file("specimen-" + std::to_string(i)).c_str(), F_OK) == 0)
            paths.push_back(st.file("specimen-" + std::to_string(i)));
    const std::size_t files = paths.size();
    paths.push_back(st.kv_root());
    paths.push_back(kv_table_path(st));
    paths.push_back(st.share_root());
    paths.push_back(share_value_path(st));
    s::share_options sl = share_create();
    sl.backend = s::share_backend::sharelite;
    const key_t sl_key = unused_share_key(7);
    s::share sharelite(sl_key, sl);
    sharelite.store("root's value");
    sharelite.destroy(true);
    std::vector<fingerprint> before;
    for (const std::string& p : paths) before.push_back(fingerprint_of(p));

    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("segments_of_another_user: skipped: not root, cannot become another user");
        return;
    }
    run_family("segments of another user", [&](cases& c) {
        c.begin("becoming nobody (65534)");
        if (!c.check(::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0 &&
                         ::geteuid() == 65534,
                     "setuid to nobody failed"))
            return;
        // setuid made the process undumpable, which hands /proc/self to
        // root: the library (and a sanitizer) read it.
        ::prctl(PR_SET_DUMPABLE, 1);
        const auto denied = [&](const attempt& a, const std::string& mention) {
            c.refused(a, {sys(EACCES)}, mention);
        };
        for (std::size_t i = 0; i < files; ++i) {
            for (const opener& o : all_openers()) {
                if (o.where != opener::place::file || o.name.find("from_fd") != std::string::npos) continue;
                c.begin(o.name + " on root's 0600 " + paths[i]);
                denied(try_call([&] { o.open(st, paths[i]); }), paths[i]);
            }
        }
        for (const creator& cr : all_creators()) {
            c.begin(cr.name + " create_only in root's directory");
            denied(try_call([&] { cr.create_only(st.file("mine")); }), st.file("mine"));
            c.begin(cr.name + " open_or_create of root's segment");
            denied(try_call([&] { cr.open_or_create(paths.front()); }), paths.front());
        }
        for (const opener& o : all_openers()) {
            if (o.where == opener::place::file) continue;
            c.begin(o.name + " of root's 0600 store or share");
            denied(try_call([&] { o.open(st, ""); }), mention_for(o, st, ""));
        }
        c.begin("kv_store::remove of root's store");
        denied(try_call([&] { s::kv_store::remove(st.kv_name()); }), st.kv_name());
        c.begin("share::remove of root's share");
        denied(try_call([&] { s::share::remove(st.key); }), s::share::native_name(st.key));
        c.begin("sharelite share of root's 0600 key");
        s::share_options o = share_open();
        o.backend = s::share_backend::sharelite;
        denied(try_call([&] { s::share(sl_key, o); }), "share key");
        c.begin("inspect of root's kv root by name");
        denied(try_call([&] { s::inspect(s::posix_name, st.kv_name()); }), st.kv_name());
    });
    for (std::size_t i = 0; i < paths.size(); ++i)
        BOOST_TEST((fingerprint_of(paths[i]) == before[i]), paths[i] << " changed: was " << before[i].describe()
                                                                   << ", now " << fingerprint_of(paths[i]).describe());
    BOOST_TEST(sharelite.fetch() == "root's value");
}
