// Hostile arguments: paths and names with NUL bytes, too long, empty or
// with '/'; capacities of 0, 1, 2^38 and SIZE_MAX; element and slot sizes
// whose layout overflows; indexes, ranges, lengths and flags at their
// extremes. Each ends in a clear exception naming what is wrong (or works,
// where it is valid), creates nothing, and changes nothing it was not asked to.
#define BOOST_TEST_MODULE hostile_arguments
#include "specimens.hpp"

#include <climits>
#include <cstdint>
#include <limits>

#include <sys/resource.h>

using namespace hostile;
namespace s = shmkit;

namespace {

constexpr std::size_t size_max = std::numeric_limits<std::size_t>::max();
constexpr std::size_t cap_2_38 = std::size_t(1) << 38;

/// The part of `path` the system would read, shortened for a message check.
std::string mention_of(const std::string& path)
{
    return path.substr(0, std::min<std::size_t>(path.find('\0'), 60));
}

/// A path of components of at most 200 bytes, `length` bytes long.
std::string long_path(const std::string& base, std::size_t length)
{
    std::string p = base;
    while (p.size() < length) p += "/" + std::string(200, 'q');
    p.resize(length);
    if (p.back() == '/') p.back() = 'q';
    return p;
}

/// A path `length` bytes long whose directories exist (made here).
std::string existing_long_path(const std::string& base, std::size_t length)
{
    std::string p = base;
    while (length - p.size() > 251) {
        p += "/" + std::string(249, 'd');
        ::mkdir(p.c_str(), 0700);
    }
    return p + "/" + std::string(length - p.size() - 1, 'f');
}

struct bad_path {
    std::string what;
    std::string path;
    std::vector<std::error_code> codes; ///< empty: std::invalid_argument
};

std::vector<bad_path> bad_paths(const std::string& base)
{
    std::vector<bad_path> v;
    v.push_back({"empty path", "", {}});
    v.push_back({"NUL byte in the name of an existing segment", base + "/victim" + std::string("\0.other", 7), {}});
    v.push_back({"NUL byte alone", std::string(1, '\0'), {}});
    v.push_back({"NUL byte in a directory", base + std::string("/\0dir/seg", 9), {}});
    v.push_back({"component of NAME_MAX+1 bytes", base + "/" + std::string(NAME_MAX + 1, 'n'), {sys(ENAMETOOLONG)}});
    // Its directories do not exist either: a creator that stages the file
    // there first learns that (ENOENT) before the length matters.
    v.push_back({"path of PATH_MAX+1 bytes", long_path(base, PATH_MAX + 1), {sys(ENAMETOOLONG), sys(ENOENT)}});
    v.push_back({"path of 4 KiB", long_path(base, 4096), {sys(ENAMETOOLONG), sys(ENOENT)}});
    v.push_back({"directory that does not exist", base + "/missing/seg", {sys(ENOENT)}});
    v.push_back({"trailing '/'", base + "/seg/", {sys(ENOENT), sys(EISDIR)}});
    v.push_back({"a regular file as a directory", base + "/plain/seg", {sys(ENOTDIR)}});
    v.push_back({"the directory itself", base, {sys(EISDIR), sys(EEXIST)}});
    v.push_back({"the directory, with '/.'", base + "/.", {sys(EISDIR), sys(EEXIST)}});
    v.push_back({"the root directory", "/", {sys(EISDIR), sys(EEXIST)}});
    return v;
}

/// Checks how a call given bad path `bp` ended.
void expect_path_refusal(cases& c, const attempt& a, const bad_path& bp)
{
    if (bp.codes.empty()) {
        // An opener that takes the empty path to open(2) says ENOENT: as clear.
        c.invalid(a, mention_of(bp.path), {sys(ENOENT)});
        return;
    }
    if (a.how == attempt::ending::shmkit_error &&
        std::find(bp.codes.begin(), bp.codes.end(), a.code) == bp.codes.end())
        c.fail("unexpected error code: " + a.describe());
    c.refused(a, {}, mention_of(bp.path));
}

} // namespace

BOOST_AUTO_TEST_CASE(file_paths)
{
    test::scratch_dir dir;
    const site st("paths");
    run_family("file paths", [&](cases& c) {
        const std::string base = dir.path();
        make_buffer<std::int64_t>(base + "/victim");
        test::write_file(base + "/plain", "a plain file");
        const fingerprint victim = fingerprint_of(base + "/victim");
        const std::vector<std::string> listing = list_dir(base);
        const auto nothing_created = [&] {
            c.check(list_dir(base) == listing, "something was created or removed in the scratch directory");
            c.unchanged(base + "/victim", victim);
        };
        for (const bad_path& bp : bad_paths(base)) {
            for (const creator& cr : all_creators()) {
                c.begin(cr.name + " create_only: " + bp.what);
                expect_path_refusal(c, try_call([&] { cr.create_only(bp.path); }), bp);
                nothing_created();
                c.begin(cr.name + " open_or_create: " + bp.what);
                expect_path_refusal(c, try_call([&] { cr.open_or_create(bp.path); }), bp);
                nothing_created();
            }
            for (const opener& o : path_openers()) {
                c.begin(o.name + " open_only: " + bp.what);
                // Opening never stages anything, so a missing directory is
                // ENOENT; inspect opens a directory read-only and refuses it
                // as not a segment.
                auto codes = bp.codes;
                if (!codes.empty()) codes.insert(codes.end(), {sys(ENOENT), bad(s::errc::not_a_segment)});
                expect_path_refusal(c, try_call([&] { o.open(st, bp.path); }), {bp.what, bp.path, codes});
                nothing_created();
            }
        }
        // The longest path the system takes works everywhere.
        ::mkdir((base + "/long").c_str(), 0700);
        const std::string longest = existing_long_path(base + "/long", PATH_MAX - 1);
        for (const creator& cr : all_creators()) {
            c.begin(cr.name + ": a path of PATH_MAX-1 bytes");
            c.returned(try_call([&] { cr.create_only(longest); }));
            c.returned(try_call([&] { cr.open_or_create(longest); }));
            c.check(::unlink(longest.c_str()) == 0, "the segment was not created at the long path");
        }
    });
}

BOOST_AUTO_TEST_CASE(posix_names)
{
    const site st("names");
    const std::string victim = st.shm.name("victim");
    run_family("POSIX names", [&](cases& c) {
        s::segment::posix(s::create_only, victim, plain_layout());
        const fingerprint before = fingerprint_of("/dev/shm/" + victim);
        // Only this suite's names: other programs use /dev/shm meanwhile.
        const auto ours = [&] { return shm_entries(st.shm.name("")); };
        const std::vector<std::string> shm = ours();
        struct call {
            const char* name;
            std::function<void(const std::string&)> f;
        };
        const std::vector<call> calls = {
            {"segment::posix create_only", [](const std::string& n) { s::segment::posix(s::create_only, n, plain_layout()); }},
            {"segment::posix open_or_create",
             [](const std::string& n) { s::segment::posix(s::open_or_create, n, plain_layout()); }},
            {"segment::posix open_only", [](const std::string& n) { s::segment::posix(s::open_only, n); }},
            {"region::posix create_only", [](const std::string& n) { s::region::posix(s::create_only, n, 4096, {}); }},
            {"region::posix open_or_create",
             [](const std::string& n) { s::region::posix(s::open_or_create, n, 4096, {}); }},
            {"region::posix open_only", [](const std::string& n) { s::region::posix(s::open_only, n); }},
            {"region::remove_posix", [](const std::string& n) { s::region::remove_posix(n); }},
            {"kv_store", [](const std::string& n) { s::kv_store(n, small_kv()); }},
            {"kv_store exclusive", [](const std::string& n) { s::kv_store(n, s::exclusive, small_kv()); }},
            {"kv_store::remove", [](const std::string& n) { s::kv_store::remove(n); }},
            {"inspect", [](const std::string& n) { s::inspect(s::posix_name, n); }},
            {"check_segment", [](const std::string& n) { s::check_segment(s::posix_name, n); }},
        };
        const std::vector<std::pair<const char*, std::string>> names = {
            {"empty", ""},
            {"'/' alone", "/"},
            {"'//'", "//"},
            {"two components", "a/b"},
            {"two components after '/'", "/a/b"},
            {"trailing '/'", "/" + victim + "/"},
            {"'.'", "."},
            {"'..'", "/.."},
            {"NUL alone", std::string(1, '\0')},
            {"NUL after an existing name", "/" + victim + std::string("\0x", 2)},
            {"NAME_MAX+1 bytes", std::string(NAME_MAX + 1, 'n')},
            {"PATH_MAX+1 bytes", std::string(PATH_MAX + 1, 'p')},
            {"4 KiB with '/'", long_path("k", 4096)},
        };
        for (const auto& [what, n] : names)
            for (const call& k : calls) {
                c.begin(std::string(k.name) + ": " + what);
                c.invalid(try_call([&] { k.f(n); }), mention_of(n));
                c.unchanged("/dev/shm/" + victim, before);
                c.check(ours() == shm, "an entry appeared or went in /dev/shm");
            }
        // What only a kv_store refuses: '~' (its tables' separator) and more than 200 bytes.
        for (const std::string& n : {victim + "~1", st.shm.name(std::string(201, 'k'))})
            for (const call& k : calls)
                if (std::string(k.name).rfind("kv_store", 0) == 0) {
                    c.begin(std::string(k.name) + ": " + (n.size() > 200 ? "201 bytes" : "'~'"));
                    c.invalid(try_call([&] { k.f(n); }), mention_of(n));
                    c.check(ours() == shm, "an entry appeared or went in /dev/shm");
                }
        c.begin("a name of NAME_MAX bytes works");
        const std::string longest = st.shm.name("") + std::string(NAME_MAX - st.shm.name("").size(), 'm');
        c.returned(try_call([&] { s::segment::posix(s::create_only, longest, plain_layout()); }));
        c.check(s::region::remove_posix(longest), "the NAME_MAX name was not there to remove");
    });
}

BOOST_AUTO_TEST_CASE(memfd_labels)
{
    run_family("memfd labels", [&](cases& c) {
        struct call {
            const char* name;
            std::function<void(const std::string&)> f;
        };
        const std::vector<call> calls = {
            {"buffer<int64_t>::memfd", [](const std::string& n) { s::buffer<std::int64_t>::memfd(n, 4, small()); }},
            {"str_buffer::memfd", [](const std::string& n) { s::str_buffer::memfd(n, 4, 8, small()); }},
            {"pool<int32_t>::memfd", [](const std::string& n) { s::pool<std::int32_t>::memfd(n, 4, small_pool()); }},
            {"raw_pool::memfd", [](const std::string& n) { s::raw_pool::memfd(n, 4, 8, small_pool()); }},
            {"str_pool::memfd", [](const std::string& n) { s::str_pool::memfd(n, 4, 8, small_pool()); }},
            {"segment::memfd", [](const std::string& n) { s::segment::memfd(n, plain_layout()); }},
            {"region::memfd", [](const std::string& n) { s::region::memfd(n, 4096, {}); }},
        };
        const std::size_t fds = open_fds();
        for (const call& k : calls) {
            c.begin(std::string(k.name) + ": NUL byte");
            c.invalid(try_call([&] { k.f(std::string("label\0more", 10)); }), "label");
            c.begin(std::string(k.name) + ": 250 bytes (beyond memfd_create's 249)");
            c.refused(try_call([&] { k.f(std::string(250, 'm')); }), {sys(EINVAL)}, "memfd:mmm");
            c.begin(std::string(k.name) + ": empty label works");
            c.returned(try_call([&] { k.f(""); }));
            c.begin(std::string(k.name) + ": 249 bytes and a '/' work");
            c.returned(try_call([&] { k.f("a/" + std::string(247, 'm')); }));
            c.check(open_fds() == fds, "an fd was leaked");
        }
    });
}

BOOST_AUTO_TEST_CASE(share_keys_and_flags)
{
    const site st("keys");
    run_family("share keys and lock flags", [&](cases& c) {
        for (const char* k : {"", "4294967296", "99999999999999999999999", "abcde", "keys too long"}) {
            c.begin(std::string("share_key '") + k + "'");
            c.refused(try_call([&] { s::share_key(k); }), {sys(EINVAL)}, std::string("share key '") + k);
            c.begin(std::string("share '") + k + "'");
            c.refused(try_call([&] { s::share(std::string_view(k), share_create()); }), {sys(EINVAL)}, "share key");
        }
        c.begin("share_key with a NUL byte is ShareLite's pack('A4')");
        const std::string nul("a\0b", 3);
        key_t expected;
        std::memcpy(&expected, "a\0b ", 4);
        c.check(s::share_key(nul) == expected, "share_key(\"a\\0b\") differs from pack('A4')");
        c.begin("sharelite share of key 0 (IPC_PRIVATE)");
        shmkit::share_options sl = share_create();
        sl.backend = s::share_backend::sharelite;
        c.refused(try_call([&] { s::share(key_t(0), sl); }), {sys(EINVAL)}, "IPC_PRIVATE");
        c.begin("share without create that does not exist");
        c.refused(try_call([&] { s::share(st.key, share_open()); }), {sys(ENOENT)}, "share key");
        for (const auto backend : {s::share_backend::native, s::share_backend::sharelite}) {
            const char* b = backend == s::share_backend::native ? "native" : "sharelite";
            shmkit::share_options o = share_create();
            o.backend = backend;
            s::share sh(st.key, o);
            sh.store("kept");
            for (int flags : {0, 3, 4, 16, -1, s::share::lock_un | s::share::lock_sh, 1 << 30}) {
                c.begin(std::string(b) + " lock(" + std::to_string(flags) + ")");
                c.invalid(try_call([&] { sh.lock(flags); }), "flags");
                c.check(sh.held() == 0, "a lock is held after refused flags");
            }
            c.begin(std::string(b) + " fetch_view without a lock");
            c.threw(try_call([&] { sh.fetch_view(); }), attempt::ending::logic_error, "holds no lock");
            c.begin(std::string(b) + " exclusive on an existing share");
            shmkit::share_options x = o;
            x.exclusive = true;
            c.refused(try_call([&] { s::share(st.key, x); }), {sys(EEXIST)}, "exists");
            c.check(sh.fetch() == "kept", "the value changed");
            sh.destroy(true);
        }
    });
}

namespace {

/// Exercises a structure of capacity 1: element 0 works, element 1 is out of range.
template <class B>
void exercise_one(cases& c, B& b)
{
    b.set(0, 7);
    c.check(b.get(0) == 7, "element 0 does not hold what was set");
    c.threw(try_call([&] { b.get(1); }), attempt::ending::out_of_range, "out of range");
}

/// A structure of capacity `cap`: refused as too large, or usable at its last index.
template <class Make>
void huge(cases& c, const std::string& what, Make&& make, std::string_view mention)
{
    c.begin(what);
    const attempt a = try_call([&] { make(); });
    if (a.returned()) c.tally("returned (memory is overcommitted)");
    else c.refused(a, {sys(EFBIG), sys(ENOSPC), sys(ENOMEM)}, mention);
}

/// Runs the capacity cases of structure `name`, made by make(place, capacity).
template <class Make>
void capacities(cases& c, const std::string& name, const std::string& path, Make&& make)
{
    for (const char* backing : {"file", "anonymous", "memfd"}) {
        const std::string where = std::string(backing) == "file" ? path : std::string(backing) == "memfd" ? "memfd:" : "anonymous";
        const auto at = [&](std::size_t cap) { return make(backing, cap); };
        c.begin(name + " " + backing + " capacity 0");
        c.invalid(try_call([&] { at(0); }), "capacity");
        c.begin(name + " " + backing + " capacity SIZE_MAX");
        c.invalid(try_call([&] { at(size_max); }), "too large");
        c.begin(name + " " + backing + " capacity 1");
        c.returned(try_call([&] { at(1); }));
        ::unlink(path.c_str());
        huge(c, name + " " + backing + " capacity 2^38", [&] { at(cap_2_38); }, where);
        ::unlink(path.c_str());
    }
}

/// make(backing, capacity) for the structure `S` built by `build`.
template <class Build>
auto maker(const std::string& path, Build&& build)
{
    return [path, build](const std::string& backing, std::size_t cap) { build(backing, path, cap); };
}

} // namespace

BOOST_AUTO_TEST_CASE(capacities_and_sizes)
{
    const site st("capacity");
    const std::string dir = st.shm.path("dir");
    BOOST_REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    run_family("capacities and element sizes", [&](cases& c) {
        // A safety belt: tmpfs refuses a reservation beyond its size at
        // once, and this keeps any file system from being filled.
        ::signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 20, 64 << 20};
        ::setrlimit(RLIMIT_FSIZE, &rl);
        const std::string path = dir + "/seg";
        const auto buffer = [&](const std::string& b, const std::string& p, std::size_t cap) {
            auto x = b == "file" ? s::buffer<std::int8_t>(s::create_only, p, cap, small())
                                 : b == "memfd" ? s::buffer<std::int8_t>::memfd("b", cap, small())
                                                : s::buffer<std::int8_t>::anonymous(cap, small());
            if (cap == 1) exercise_one(c, x);
            else x.set(cap - 1, 1);
        };
        capacities(c, "buffer<int8_t>", path, maker(path, buffer));
        const auto pool = [&](const std::string& b, const std::string& p, std::size_t cap) {
            auto x = b == "file" ? s::pool<std::int64_t>(s::create_only, p, cap, small_pool())
                                 : b == "memfd" ? s::pool<std::int64_t>::memfd("p", cap, small_pool())
                                                : s::pool<std::int64_t>::anonymous(cap, small_pool());
            const auto i = x.try_alloc_set(7);
            c.check(i && x.get(*i) == 7, "the first slot does not work");
            if (cap == 1) c.check(!x.try_alloc(), "a pool of capacity 1 gave a second slot");
        };
        capacities(c, "pool<int64_t>", path, maker(path, pool));
        const auto str = [&](const std::string& b, const std::string& p, std::size_t cap) {
            auto x = b == "file" ? s::str_buffer(s::create_only, p, cap, 8, small())
                                 : b == "memfd" ? s::str_buffer::memfd("s", cap, 8, small())
                                                : s::str_buffer::anonymous(cap, 8, small());
            x.set(cap - 1, "last");
            c.check(x.get(cap - 1) == "last", "the last string does not work");
        };
        capacities(c, "str_buffer", path, maker(path, str));
        const auto raw = [&](const std::string& b, const std::string& p, std::size_t cap) {
            auto x = b == "file" ? s::raw_pool(s::create_only, p, cap, 8, small_pool())
                                 : b == "memfd" ? s::raw_pool::memfd("r", cap, 8, small_pool())
                                                : s::raw_pool::anonymous(cap, 8, small_pool());
            c.check(x.try_alloc_set("bytes").has_value(), "the first slot does not work");
        };
        capacities(c, "raw_pool", path, maker(path, raw));
        const auto strp = [&](const std::string& b, const std::string& p, std::size_t cap) {
            auto x = b == "file" ? s::str_pool(s::create_only, p, cap, 8, small_pool())
                                 : b == "memfd" ? s::str_pool::memfd("q", cap, 8, small_pool())
                                                : s::str_pool::anonymous(cap, 8, small_pool());
            c.check(x.try_alloc_set("str").has_value(), "the first slot does not work");
        };
        capacities(c, "str_pool", path, maker(path, strp));

        // Element and slot sizes.
        for (std::size_t w : {std::size_t(0), std::size_t(UINT32_MAX) + 1, size_max}) {
            c.begin("str_buffer width " + std::to_string(w));
            c.invalid(try_call([&] { s::str_buffer::anonymous(4, w, small()); }), "width");
            c.begin("raw_pool slot size " + std::to_string(w));
            c.invalid(try_call([&] { s::raw_pool::anonymous(4, w, small_pool()); }), "slot size");
            c.begin("str_pool maximum length " + std::to_string(w));
            c.invalid(try_call([&] { s::str_pool::anonymous(4, w, small_pool()); }), "maximum length");
        }
        huge(c, "str_buffer width 2^32-17 (the largest), file", [&] {
            s::str_buffer(s::create_only, path, 4, UINT32_MAX - 16, small());
        }, path);
        huge(c, "raw_pool slot size 2^32-1 (the largest), memfd", [&] {
            s::raw_pool::memfd("r", 4, UINT32_MAX, small_pool());
        }, "memfd:r");
        huge(c, "str_pool maximum length 2^32-9 (the largest), anonymous", [&] {
            s::str_pool::anonymous(4, UINT32_MAX - 8, small_pool());
        }, "anonymous");
        for (std::uint32_t a : {0u, 4096u, UINT32_MAX}) {
            c.begin("attach capacity " + std::to_string(a));
            c.invalid(try_call([&] { s::buffer<std::int32_t>::anonymous(4, {0600, a}); }), "attach capacity");
        }
        c.begin("attach capacity 4095 (the largest) works");
        c.returned(try_call([&] { s::buffer<std::int32_t>::anonymous(4, {0600, 4095}); }));

        // Layouts whose sizes overflow size_t, or whose sections together do.
        const std::pair<const char*, std::function<void()>> overflows[] = {
            {"buffer<int64_t> capacity * 8 overflows", [] { s::buffer<std::int64_t>::anonymous(size_max / 8 + 1); }},
            {"buffer<int8_t> capacity + control overflows", [] { s::buffer<std::int8_t>::anonymous(size_max - 100); }},
            {"buffer<int8_t> segment beyond PTRDIFF_MAX", [] { s::buffer<std::int8_t>::anonymous(PTRDIFF_MAX - 4096); }},
            {"pool<int64_t> owners and slots overflow", [] { s::pool<std::int64_t>::anonymous(size_max / 16 + 1); }},
            {"raw_pool 2^33 slots of 2^32-1 bytes", [] { s::raw_pool::anonymous(std::size_t(1) << 33, UINT32_MAX); }},
            {"str_buffer 2^40 strings of 2^30 bytes", [] { s::str_buffer::anonymous(std::size_t(1) << 40, 1 << 30); }},
            {"str_pool 2^40 strings of 2^30 bytes", [] { s::str_pool::anonymous(std::size_t(1) << 40, 1 << 30); }},
            {"segment_layout data_size SIZE_MAX", [] {
                 auto l = plain_layout();
                 l.data_size = size_max;
                 s::segment::anonymous(l);
             }},
            {"segment_layout 9 rwlocks", [] {
                 auto l = plain_layout();
                 l.n_rwlocks = 9;
                 s::segment::anonymous(l);
             }},
            {"segment_layout 65 mutexes", [] {
                 auto l = plain_layout();
                 l.n_mutexes = 65;
                 s::segment::anonymous(l);
             }},
            {"region of size 0", [] { s::region::anonymous(0, {}); }},
            {"region beyond LLONG_MAX", [&] { s::region::file(s::create_only, path, size_max, {}); }},
        };
        for (const auto& [what, f] : overflows) {
            c.begin(what);
            c.invalid(try_call(f), "shmkit");
            c.check(::access(path.c_str(), F_OK) != 0, "a file was left behind");
        }
        huge(c, "segment_layout data_size 2^62, anonymous", [] {
            auto l = plain_layout();
            l.data_size = std::uint64_t(1) << 62;
            s::segment::anonymous(l);
        }, "anonymous");
        huge(c, "buffer<int8_t> of 2^62 elements, file", [&] {
            s::buffer<std::int8_t>(s::create_only, path, std::size_t(1) << 62, small());
        }, path);
        c.check(list_dir(dir).empty(), "files left in the capacity directory");
    });
}

BOOST_AUTO_TEST_CASE(store_and_share_sizes)
{
    const site st("sizes");
    run_family("kv_store reserve and share sizes", [&](cases& c) {
        ::signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 20, 64 << 20};
        ::setrlimit(RLIMIT_FSIZE, &rl);
        {
            s::kv_store kv(st.kv_name(), small_kv());
            kv.put("k", "v");
            const std::string before = observe(kv);
            for (std::size_t n : {std::size_t(0), std::size_t(1)}) {
                c.begin("kv_store reserve(" + std::to_string(n) + ")");
                c.returned(try_call([&] { kv.reserve(n); }));
            }
            for (std::size_t n : {(std::size_t(1) << 39) + 1, size_max}) {
                c.begin("kv_store reserve(" + std::to_string(n) + ")");
                c.threw(try_call([&] { kv.reserve(n); }), attempt::ending::length_error, "2^39");
            }
            c.begin("kv_store reserve(2^38)");
            c.refused(try_call([&] { kv.reserve(cap_2_38); }), {sys(EFBIG), sys(ENOSPC), sys(ENOMEM)}, st.kv_name());
            c.check(observe(kv) == before && kv.check(), "the store changed after a refused reserve");
            for (std::uint32_t a : {0u, 4096u}) {
                c.begin("kv_store attach capacity " + std::to_string(a));
                s::kv_options o = small_kv();
                o.attach_capacity = a;
                c.invalid(try_call([&] { s::kv_store(st.shm.name("attach"), o); }), "attach capacity");
            }
        }
        s::kv_store::remove(st.kv_name());
        const auto share_size = [&](s::share_backend b, std::size_t size) {
            s::share_options o = share_create();
            o.backend = b;
            o.size = size;
            s::share sh(st.key, o);
            sh.destroy(true);
            sh.store(std::string(100, 'v'));
            c.check(sh.fetch() == std::string(100, 'v'), "the value did not round-trip");
        };
        for (std::size_t n : {size_max, cap_2_38, (std::size_t(1) << 36) + 64}) {
            c.begin("native share size " + std::to_string(n));
            c.refused(try_call([&] { share_size(s::share_backend::native, n); }), {sys(EINVAL)}, "size hint");
        }
        c.begin("native share size 2^36 (the largest)");
        c.refused(try_call([&] { share_size(s::share_backend::native, std::size_t(1) << 36); }),
                  {sys(EFBIG), sys(ENOSPC), sys(ENOMEM)}, s::share::native_name(st.key));
        c.begin("native share size 1");
        c.returned(try_call([&] { share_size(s::share_backend::native, 1); }));
        for (std::size_t n : {size_max, cap_2_38}) {
            c.begin("sharelite share size " + std::to_string(n));
            c.refused(try_call([&] { share_size(s::share_backend::sharelite, n); }),
                      {sys(EINVAL), sys(ENOMEM), sys(ENOSPC)}, "share key");
            c.check(::semget(st.key, 0, 0) < 0, "a semaphore set was left behind");
        }
        c.begin("sharelite share size 17: a chain of 1-byte segments");
        c.returned(try_call([&] { share_size(s::share_backend::sharelite, 17); }));
        c.check(::semget(st.key, 0, 0) < 0 && ::shmget(st.key, 0, 0) < 0, "System V objects were left behind");
    });
}

namespace {

/// Calls `f`, which must end as `check` says, with `observe()` the same afterwards.
template <class Observe, class F, class Check>
void unchanged_after(cases& c, const std::string& what, Observe&& observe, F&& f, Check&& check)
{
    c.begin(what);
    const std::string before = observe();
    check(try_call(f));
    c.check(observe() == before, "the structure changed: was " + before + ", now " + observe());
}

} // namespace

BOOST_AUTO_TEST_CASE(operation_arguments)
{
    const site st("ops");
    run_family("operation arguments", [&](cases& c) {
        const auto range = [&](const attempt& a) { c.threw(a, attempt::ending::out_of_range, "out"); };
        const auto length = [&](const attempt& a) { c.threw(a, attempt::ending::length_error, "shmkit"); };
        const auto invalid = [&](const attempt& a) { c.invalid(a, "shmkit"); };
        const char big[16] = "0123456789abcde";
        const std::string_view endless(big, size_max / 2); // never read: refused on its length first

        auto b = s::buffer<std::int32_t>::anonymous(2, small());
        b.set(0, 11);
        const auto ob = [&] { return observe(b); };
        const std::int32_t two[2] = {1, 2};
        unchanged_after(c, "buffer get(2)", ob, [&] { b.get(2); }, range);
        unchanged_after(c, "buffer get(SIZE_MAX)", ob, [&] { b.get(size_max); }, range);
        unchanged_after(c, "buffer set(2)", ob, [&] { b.set(2, 5); }, range);
        unchanged_after(c, "buffer add(SIZE_MAX)", ob, [&] { b.add(size_max, 1); }, range);
        unchanged_after(c, "buffer cas(2)", ob, [&] { b.cas(2, 0, 1); }, range);
        unchanged_after(c, "buffer fetch_or(SIZE_MAX)", ob, [&] { b.fetch_or(size_max, 1); }, range);
        unchanged_after(c, "buffer slice(0, 3)", ob, [&] { b.slice(0, 3); }, range);
        unchanged_after(c, "buffer slice(3, 0)", ob, [&] { b.slice(3, 0); }, range);
        unchanged_after(c, "buffer slice(1, SIZE_MAX)", ob, [&] { b.slice(1, size_max); }, range);
        unchanged_after(c, "buffer slice(SIZE_MAX, 1)", ob, [&] { b.slice(size_max, 1); }, range);
        unchanged_after(c, "buffer set_slice(1, 2 values)", ob, [&] { b.set_slice(1, two); }, range);
        unchanged_after(c, "buffer add_slice(SIZE_MAX, 2 values)", ob, [&] { b.add_slice(size_max, two); }, range);
        unchanged_after(c, "buffer get_raw(0, 9)", ob, [&] { b.get_raw(0, 9); }, range);
        unchanged_after(c, "buffer get_raw(SIZE_MAX, 1)", ob, [&] { b.get_raw(size_max, 1); }, range);
        unchanged_after(c, "buffer set_raw(8, 1 byte)", ob, [&] { b.set_raw(8, "x"); }, range);
        unchanged_after(c, "buffer set_raw(0, SIZE_MAX/2 bytes)", ob, [&] { b.set_raw(0, endless); }, range);
        unchanged_after(c, "buffer ptr(2)", ob, [&] { b.ptr(2); }, range);

        auto sb = s::str_buffer::anonymous(2, 4, small());
        sb.set(0, "ab");
        const auto osb = [&] { return observe(sb); };
        const std::string_view good_bad[2] = {"ok", "too long"};
        unchanged_after(c, "str_buffer get(2)", osb, [&] { sb.get(2); }, range);
        unchanged_after(c, "str_buffer set(2)", osb, [&] { sb.set(2, "a"); }, range);
        unchanged_after(c, "str_buffer set(0, 5 bytes)", osb, [&] { sb.set(0, "12345"); }, length);
        unchanged_after(c, "str_buffer set(0, SIZE_MAX/2 bytes)", osb, [&] { sb.set(0, endless); }, length);
        unchanged_after(c, "str_buffer slice(0, 3)", osb, [&] { sb.slice(0, 3); }, range);
        unchanged_after(c, "str_buffer set_slice(0, ok + too long)", osb, [&] { sb.set_slice(0, good_bad); }, length);
        unchanged_after(c, "str_buffer set_slice(1, 2 values)", osb, [&] { sb.set_slice(1, good_bad); }, range);
        unchanged_after(c, "str_buffer fill(too long)", osb, [&] { sb.fill("too long"); }, length);
        unchanged_after(c, "str_buffer get_raw(0, SIZE_MAX)", osb, [&] { sb.get_raw(0, size_max); }, range);

        auto p = s::pool<std::int64_t>::anonymous(2, small_pool());
        const std::size_t held = *p.try_alloc_set(5);
        const std::size_t other = 1 - held;
        const auto op = [&] { return observe(p); };
        const std::size_t mixed[2] = {held, 5};
        const auto not_allocated = [&](const attempt& a) {
            c.refused(a, {bad(s::errc::slot_not_allocated)}, "not allocated");
        };
        unchanged_after(c, "pool get(2)", op, [&] { p.get(2); }, range);
        unchanged_after(c, "pool get(free slot)", op, [&] { p.get(other); }, not_allocated);
        unchanged_after(c, "pool set(free slot)", op, [&] { p.set(other, 1); }, not_allocated);
        unchanged_after(c, "pool add(SIZE_MAX)", op, [&] { p.add(size_max, 1); }, range);
        unchanged_after(c, "pool free(2)", op, [&] { p.free(2); }, range);
        unchanged_after(c, "pool free(SIZE_MAX)", op, [&] { p.free(size_max); }, range);
        unchanged_after(c, "pool free_n(held, 5)", op, [&] { p.free_n(mixed); }, range);
        unchanged_after(c, "pool try_alloc_n(3)", op, [&] { p.try_alloc_n(3); }, invalid);
        unchanged_after(c, "pool alloc_n(SIZE_MAX)", op, [&] { p.alloc_n(size_max); }, invalid);
        unchanged_after(c, "pool alloc_n(3, 1 ms)", op, [&] { p.alloc_n(3, std::chrono::milliseconds(1)); }, invalid);
        unchanged_after(c, "pool adopt(2)", op, [&] { p.adopt(2); }, range);
        unchanged_after(c, "pool adopt(SIZE_MAX, token)", op, [&] { p.adopt(size_max, 1); }, range);
        unchanged_after(c, "pool holder_token(2)", op, [&] { p.holder_token(2); }, range);
        unchanged_after(c, "pool owner(2)", op, [&] { p.owner(2); }, range);
        unchanged_after(c, "pool is_allocated(SIZE_MAX)", op, [&] { p.is_allocated(size_max); }, range);
        unchanged_after(c, "pool view(free slot)", op, [&] { p.view(other); }, not_allocated);
        unchanged_after(c, "pool adopt(held, a token never issued)", op,
                        [&] { c.check(!p.adopt(held, ~std::uint64_t(0)), "adopted with a forged token"); },
                        [&](const attempt& a) { c.returned(a); });

        auto rp = s::raw_pool::anonymous(2, 4, small_pool());
        const std::size_t r0 = *rp.try_alloc_set("abcd");
        const auto orp = [&] { return observe(rp); };
        std::byte small_out[3];
        unchanged_after(c, "raw_pool set(5 bytes)", orp, [&] { rp.set(r0, "12345"); }, length);
        unchanged_after(c, "raw_pool alloc_set(5 bytes)", orp, [&] { rp.alloc_set("12345"); }, length);
        unchanged_after(c, "raw_pool try_alloc_set(SIZE_MAX/2 bytes)", orp, [&] { rp.try_alloc_set(endless); }, length);
        unchanged_after(c, "raw_pool get(into 3 bytes)", orp, [&] { rp.get(r0, small_out); }, length);
        unchanged_after(c, "raw_pool get(2)", orp, [&] { rp.get(2); }, range);

        auto sp = s::str_pool::anonymous(2, 4, small_pool());
        const std::size_t s0 = *sp.try_alloc_set("abc");
        const auto osp = [&] { return observe(sp); };
        unchanged_after(c, "str_pool set(5 bytes)", osp, [&] { sp.set(s0, "12345"); }, length);
        unchanged_after(c, "str_pool alloc_set(SIZE_MAX/2 bytes)", osp, [&] { sp.alloc_set(endless); }, length);
        unchanged_after(c, "str_pool length(2)", osp, [&] { sp.length(2); }, range);

        s::kv_store kv(st.kv_name(), small_kv());
        kv.put("k", "v");
        const auto okv = [&] { return observe(kv); };
        const std::string long_key(s::kv_store::max_key_size + 1, 'k');
        unchanged_after(c, "kv put(key of 64 KiB)", okv, [&] { kv.put(long_key, "v"); }, length);
        unchanged_after(c, "kv put(value of 256 MiB + 1)", okv,
                        [&] { kv.put("k", std::string_view(big, s::kv_store::max_value_size + 1)); }, length);
        unchanged_after(c, "kv erase(key of 64 KiB)", okv, [&] { c.check(!kv.erase(long_key), "erased"); },
                        [&](const attempt& a) { c.returned(a); });
        unchanged_after(c, "kv get(key of 64 KiB)", okv, [&] { c.check(!kv.get(long_key), "found"); },
                        [&](const attempt& a) { c.returned(a); });

        s::share_options so = share_create();
        so.backend = s::share_backend::sharelite;
        s::share sl(st.key, so);
        sl.destroy(true);
        sl.store("kept");
        const auto osl = [&] { return observe(sl); };
        unchanged_after(c, "sharelite store(2 GiB)", osl,
                        [&] { sl.store(std::string_view(big, std::size_t(INT_MAX) + 1)); }, length);
    });
}
