// Regions: every backing, every open mode, permissions, symlinks, fds.
#define BOOST_TEST_MODULE region
#include "support.hpp"

#include <shmkit/region.hpp>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using shmkit::region;

namespace {

const std::size_t size = 8192;

shmkit::region_initializer stamp(const char* text, int* calls = nullptr)
{
    return [text, calls](void* base, std::size_t n) {
        BOOST_REQUIRE_GE(n, size);
        std::strcpy(static_cast<char*>(base), text);
        if (calls) ++*calls;
    };
}


mode_t mode_of(const std::string& path)
{
    struct stat st;
    BOOST_REQUIRE_EQUAL(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

} // namespace

BOOST_AUTO_TEST_CASE(file_create_open_and_modes)
{
    test::scratch_dir dir;
    const std::string path = dir / "seg";
    int calls = 0;
    region a = region::file(shmkit::create_only, path, size, stamp("hello", &calls));
    BOOST_TEST(a.created());
    BOOST_TEST(calls == 1);
    BOOST_TEST(a.size() == size);
    BOOST_TEST(a.kind() == shmkit::backing::file);
    BOOST_TEST(a.name() == path);
    BOOST_TEST((::fcntl(a.fd(), F_GETFD) & FD_CLOEXEC) != 0);

    region b = region::file(shmkit::open_only, path);
    BOOST_TEST(!b.created());
    BOOST_TEST(std::string(static_cast<char*>(b.data())) == "hello");
    static_cast<char*>(b.data())[0] = 'J';
    BOOST_TEST(static_cast<char*>(a.data())[0] == 'J');

    region c = region::file(shmkit::open_or_create, path, size, stamp("other", &calls));
    BOOST_TEST(!c.created());
    BOOST_TEST(calls == 1);

    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::create_only, path, size, {}); }) == EEXIST);
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::open_only, dir / "missing"); }) == ENOENT);
    BOOST_CHECK_THROW(region::file(shmkit::create_only, dir / "zero", 0, {}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(error_message_names_the_path)
{
    test::scratch_dir dir;
    try {
        region::file(shmkit::open_only, dir / "nope");
        BOOST_FAIL("expected an error");
    } catch (const shmkit::error& e) {
        BOOST_TEST(std::string(e.what()).find(dir / "nope") != std::string::npos);
        BOOST_TEST(e.where() == dir / "nope");
    }
}

BOOST_AUTO_TEST_CASE(default_mode_is_0600_whatever_the_umask)
{
    test::scratch_dir dir;
    const mode_t old = ::umask(0);
    region a = region::file(shmkit::create_only, dir / "a", size, {});
    ::umask(077);
    region b = region::file(shmkit::create_only, dir / "b", size, {}, shmkit::region_options{0640});
    ::umask(old);
    BOOST_TEST(mode_of(dir / "a") == 0600u);
    BOOST_TEST(mode_of(dir / "b") == 0640u);
}

BOOST_AUTO_TEST_CASE(symlinks_are_never_followed)
{
    test::scratch_dir dir;
    const std::string target = dir / "target";
    const std::string link = dir / "link";
    test::write_file(target, "precious");
    BOOST_REQUIRE_EQUAL(::symlink(target.c_str(), link.c_str()), 0);
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::open_only, link); }) == ELOOP);
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::create_only, link, size, {}); }) == EEXIST);
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::open_or_create, link, size, {}); }) == ELOOP);
    BOOST_TEST(test::read_file(target) == "precious");

    // A dangling link: creating through it must not create its target.
    const std::string dangling = dir / "dangling";
    BOOST_REQUIRE_EQUAL(::symlink((dir / "never").c_str(), dangling.c_str()), 0);
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::open_or_create, dangling, size, {}); }) == ELOOP);
    BOOST_TEST(::access((dir / "never").c_str(), F_OK) != 0);
}

BOOST_AUTO_TEST_CASE(empty_and_non_regular_files_are_refused)
{
    test::scratch_dir dir;
    test::write_file(dir / "empty", "");
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::open_only, dir / "empty"); }) ==
               static_cast<int>(shmkit::errc::truncated));
    BOOST_TEST(test::read_file(dir / "empty").empty());
    BOOST_TEST(test::error_code_of([&] { region::file(shmkit::open_only, dir.path()); }) != 0);
}

BOOST_AUTO_TEST_CASE(unlink_removes_only_our_own_name)
{
    test::scratch_dir dir;
    const std::string path = dir / "seg";
    region a = region::file(shmkit::create_only, path, size, stamp("one"));
    BOOST_TEST(a.unlink());
    BOOST_TEST(::access(path.c_str(), F_OK) != 0);
    BOOST_TEST(!a.unlink());
    region b = region::file(shmkit::create_only, path, size, stamp("two"));
    BOOST_TEST(!a.unlink()); // the name now belongs to b's segment
    BOOST_TEST(::access(path.c_str(), F_OK) == 0);
    BOOST_TEST(std::string(static_cast<char*>(a.data())) == "one"); // still mapped
}

BOOST_AUTO_TEST_CASE(full_file_system_is_an_error_at_creation_not_sigbus)
{
    test::scratch_dir dir;
    const std::string path = dir / "big";
    // RLIMIT_FSIZE stands in for a full disk: the reservation must fail
    // cleanly (EFBIG) and leave no file behind.
    test::child c([&] {
        ::signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1 << 20, 1 << 20};
        if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return 2;
        try {
            region::file(shmkit::create_only, path, 16 << 20, {});
        } catch (const shmkit::error& e) {
            return e.code().value() == EFBIG || e.code().value() == ENOSPC ? 0 : 3;
        }
        return 4;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(::access(path.c_str(), F_OK) != 0);
}

BOOST_AUTO_TEST_CASE(posix_named_regions)
{
    test::shm_name name("region");
    region a = region::posix(shmkit::create_only, name.str(), size, stamp("posix"));
    BOOST_TEST(a.created());
    BOOST_TEST(a.name() == name.str());
    BOOST_TEST(mode_of(name.path()) == 0600u);
    region b = region::posix(shmkit::open_only, name.str().substr(1)); // "NAME" works as well as "/NAME"
    BOOST_TEST(std::string(static_cast<char*>(b.data())) == "posix");
    region c = region::posix(shmkit::open_or_create, name.str(), size, stamp("again"));
    BOOST_TEST(!c.created());

    // Interchangeable with Boost.Interprocess.
    namespace bip = boost::interprocess;
    bip::shared_memory_object shm(bip::open_only, name.str().c_str() + 1, bip::read_only);
    bip::mapped_region m(shm, bip::read_only);
    BOOST_TEST(std::string(static_cast<const char*>(m.get_address())) == "posix");

    BOOST_TEST(test::error_code_of([&] { region::posix(shmkit::create_only, name.str(), size, {}); }) == EEXIST);
    BOOST_TEST(a.unlink());
    BOOST_TEST(!region::remove_posix(name.str()));
    BOOST_CHECK_THROW(region::posix(shmkit::open_only, ""), std::invalid_argument);
    BOOST_CHECK_THROW(region::posix(shmkit::open_only, "/a/b"), std::invalid_argument);
    BOOST_TEST(test::error_code_of([&] { region::posix(shmkit::open_only, name.str()); }) == ENOENT);
}

BOOST_AUTO_TEST_CASE(anonymous_regions_are_shared_with_children)
{
    region a = region::anonymous(size, stamp("anon"));
    BOOST_TEST(a.fd() == -1);
    BOOST_TEST(!a.unlink());
    test::child c([&] {
        std::strcpy(static_cast<char*>(a.data()), "from child");
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(std::string(static_cast<char*>(a.data())) == "from child");
}

BOOST_AUTO_TEST_CASE(memfd_regions_are_sealed_and_passable)
{
    region a = region::memfd("test", size, stamp("memfd"));
    BOOST_TEST(a.kind() == shmkit::backing::memfd);
    const int seals = ::fcntl(a.fd(), F_GET_SEALS);
    BOOST_TEST((seals & F_SEAL_SHRINK) != 0);
    BOOST_TEST((seals & F_SEAL_GROW) != 0);
    BOOST_TEST(::ftruncate(a.fd(), 0) != 0);

    // The fd travels (here through fork; SCM_RIGHTS works the same) and the
    // receiver maps the same memory. The caller keeps its own fd.
    const int passed = ::fcntl(a.fd(), F_DUPFD, 0);
    test::child c([&] {
        region r = region::from_fd(passed);
        if (r.kind() != shmkit::backing::adopted_fd || r.size() != size) return 1;
        if (std::string(static_cast<char*>(r.data())) != "memfd") return 2;
        std::strcpy(static_cast<char*>(r.data()), "adopted");
        return 0;
    });
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(std::string(static_cast<char*>(a.data())) == "adopted");
    {
        region r = region::from_fd(passed);
        BOOST_TEST(r.fd() != passed);
    }
    BOOST_TEST(::fcntl(passed, F_GETFD) >= 0); // still open: adoption does not take it
    ::close(passed);
}

BOOST_AUTO_TEST_CASE(from_fd_refuses_a_fifo_without_opening_it)
{
    // Reopening what an fd names (through /proc) is an open of its own: of
    // a FIFO it adds a reader or writer, of a terminal it may make it the
    // controlling one. from_fd refuses anything but a regular file first;
    // inotify's IN_OPEN shows whether the FIFO was opened again.
    test::scratch_dir dir;
    const std::string fifo = dir / "fifo";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    BOOST_TEST_REQUIRE(rd >= 0);
    const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    BOOST_TEST_REQUIRE(in >= 0);
    BOOST_TEST_REQUIRE(::inotify_add_watch(in, fifo.c_str(), IN_OPEN) >= 0);
    BOOST_CHECK_EXCEPTION(region::from_fd(rd), shmkit::error,
                          [](const shmkit::error& e) { return e.code() == shmkit::errc::not_a_segment; });
    alignas(inotify_event) char events[4096];
    BOOST_TEST(::read(in, events, sizeof events) < 0); // no event: never opened
    BOOST_TEST(errno == EAGAIN);
    ::close(in);
    ::close(rd);
}

BOOST_AUTO_TEST_CASE(regions_move)
{
    region a = region::anonymous(size, stamp("moved"));
    void* base = a.data();
    region b(std::move(a));
    BOOST_TEST(!a);
    BOOST_TEST(b.data() == base);
    region c;
    c = std::move(b);
    BOOST_TEST(c.data() == base);
    BOOST_TEST(std::string(static_cast<char*>(c.data())) == "moved");
}
