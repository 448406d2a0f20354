// Specimens and openers of the hostile-input catalogue.
//
// A *specimen* is the bytes of a valid segment of one kind (buffer<T> for
// each T, str_buffer, pool<T> for each T, raw_pool, str_pool, a plain
// segment, a kv_store root and table, a share root and value segment), or
// of something that is not a segment at all. An *opener* is one public way
// to open a segment that is already there (a constructor, from_fd(),
// segment::file, kv_store, share, inspect, check_segment), followed by a
// read of everything it can observe. The catalogue installs every specimen
// where an opener looks and checks that exactly the right ones are
// accepted, that the others are refused with an error naming the place,
// and that a refused file is left as it was.
#ifndef SHMKIT_TEST_HOSTILE_SPECIMENS_HPP
#define SHMKIT_TEST_HOSTILE_SPECIMENS_HPP

#include "hostile.hpp"

#include <shmkit.hpp>

#include <sstream>

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>

namespace hostile {

// ---- Where things live -------------------------------------------------------------------------

/// A share key no share, semaphore set or System V segment uses now.
inline key_t unused_share_key(unsigned salt)
{
    for (unsigned k = 0;; ++k) {
        const key_t key = static_cast<key_t>(0x48000000u | ((static_cast<unsigned>(::getpid()) & 0xfffffu) << 4) |
                                             ((salt + k) & 0xfu)) +
                          static_cast<key_t>((k / 16) << 24);
        const std::string root = "/dev/shm/" + shmkit::share::native_name(key);
        if (::access(root.c_str(), F_OK) != 0 && ::semget(key, 0, 0) < 0 && ::shmget(key, 0, 0) < 0) return key;
    }
}

/// Removes every trace of share `key`: its native names and its System V objects.
inline void remove_share_traces(key_t key)
{
    shm_prefix::sweep(shmkit::share::native_name(key));
    try {
        shmkit::share::remove(key, shmkit::share_backend::sharelite);
    } catch (...) {
    }
    const int sem = ::semget(key, 0, 0);
    if (sem >= 0) ::semctl(sem, 0, IPC_RMID);
    const int shm = ::shmget(key, 0, 0);
    if (shm >= 0) ::shmctl(shm, IPC_RMID, nullptr);
}

/// The places of one suite: a scratch directory, a /dev/shm prefix and a
/// share key, all removed with whatever is left there when it goes.
class site {
public:
    explicit site(const std::string& tag, unsigned salt = 0) : shm(tag), key(unused_share_key(salt)) {}
    ~site() { remove_share_traces(key); }
    site(const site&) = delete;
    site& operator=(const site&) = delete;

    std::string file(const std::string& leaf) const { return dir / leaf; }
    std::string kv_name() const { return shm.name("kv"); }
    std::string kv_root() const { return "/dev/shm/" + kv_name(); }
    std::string share_root() const { return "/dev/shm/" + shmkit::share::native_name(key); }

    test::scratch_dir dir;
    shm_prefix shm;
    key_t key;
};

/// Small handles: the catalogue's segments stay a few pages.
inline shmkit::structure_options small() { return {0600, 4}; }
inline shmkit::pool_options small_pool()
{
    shmkit::pool_options o;
    o.attach_capacity = 4;
    return o;
}
inline shmkit::kv_options small_kv(std::chrono::milliseconds init_timeout = std::chrono::milliseconds(5000))
{
    shmkit::kv_options o;
    o.attach_capacity = 4;
    o.init_timeout = init_timeout;
    return o;
}
inline shmkit::share_options share_open() { return {}; }
inline shmkit::share_options share_create()
{
    shmkit::share_options o;
    o.create = true;
    o.size = 256;
    return o;
}

/// Replaces whatever is at `path` by a regular file holding `bytes` (0600).
inline void install(const std::string& path, const std::string& bytes, mode_t mode = 0600)
{
    if (::unlink(path.c_str()) != 0) ::rmdir(path.c_str());
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        ::close(fd);
        throw std::runtime_error("cannot write " + path);
    }
    ::fchmod(fd, mode);
    ::close(fd);
}

// ---- Element types -----------------------------------------------------------------------------

template <class T> const char* type_name();
#define HOSTILE_TYPE_NAME(T, NAME)                                                                                     \
    template <> inline const char* type_name<T>() { return NAME; }
HOSTILE_TYPE_NAME(std::int8_t, "int8_t")
HOSTILE_TYPE_NAME(std::uint8_t, "uint8_t")
HOSTILE_TYPE_NAME(std::int16_t, "int16_t")
HOSTILE_TYPE_NAME(std::uint16_t, "uint16_t")
HOSTILE_TYPE_NAME(std::int32_t, "int32_t")
HOSTILE_TYPE_NAME(std::uint32_t, "uint32_t")
HOSTILE_TYPE_NAME(std::int64_t, "int64_t")
HOSTILE_TYPE_NAME(std::uint64_t, "uint64_t")
HOSTILE_TYPE_NAME(float, "float")
HOSTILE_TYPE_NAME(double, "double")
#undef HOSTILE_TYPE_NAME

/// Calls f(T{}) for each element type of buffer<T> and pool<T>.
template <class F>
void for_each_type(F&& f)
{
    f(std::int8_t{});
    f(std::uint8_t{});
    f(std::int16_t{});
    f(std::uint16_t{});
    f(std::int32_t{});
    f(std::uint32_t{});
    f(std::int64_t{});
    f(std::uint64_t{});
    f(float{});
    f(double{});
}

template <class T> std::string buffer_kind() { return std::string("buffer<") + type_name<T>() + ">"; }
template <class T> std::string pool_kind() { return std::string("pool<") + type_name<T>() + ">"; }

// ---- What an opened handle shows -----------------------------------------------------------------

template <class T>
void print_value(std::ostream& os, T v)
{
    if constexpr (std::is_floating_point_v<T>) os << std::hexfloat << v << std::defaultfloat;
    else os << +v;
}

template <class T>
std::string observe(const shmkit::buffer<T>& b)
{
    std::ostringstream os;
    os << buffer_kind<T>() << " cap " << b.capacity() << ":";
    for (T v : b.slice(0, b.capacity())) print_value(os << ' ', v);
    os << " raw " << b.get_raw(0, b.capacity() * sizeof(T)).size() << " stats " << b.stats().capacity;
    return os.str();
}

inline std::string observe(const shmkit::str_buffer& b)
{
    std::ostringstream os;
    os << "str_buffer cap " << b.capacity() << " width " << b.width() << ":";
    for (const std::string& v : b.slice(0, b.capacity())) os << " [" << v << "]";
    return os.str();
}

template <class T>
std::string observe(const shmkit::pool<T>& p)
{
    std::ostringstream os;
    os << pool_kind<T>() << " cap " << p.capacity() << " used " << p.used() << ":";
    for (std::size_t i : p.allocated_slots()) print_value(os << ' ' << i << '=', p.get(i));
    os << " stats " << p.stats().capacity;
    return os.str();
}

inline std::string observe(const shmkit::raw_pool& p)
{
    std::ostringstream os;
    os << "raw_pool cap " << p.capacity() << " slot " << p.elem_size() << ":";
    for (std::size_t i : p.allocated_slots()) os << ' ' << i << "=[" << p.get(i) << ']';
    return os.str();
}

inline std::string observe(const shmkit::str_pool& p)
{
    std::ostringstream os;
    os << "str_pool cap " << p.capacity() << " max " << p.max_length() << ":";
    for (std::size_t i : p.allocated_slots()) os << ' ' << i << "=[" << p.get(i) << ']';
    return os.str();
}

inline std::string observe(const shmkit::segment& s)
{
    std::ostringstream os;
    os << "segment cap " << s.capacity() << " data " << s.data_size() << " ["
       << std::string(static_cast<const char*>(s.data()), s.data_size()) << "] attach "
       << s.stats().attach_capacity;
    return os.str();
}

inline std::string observe(const shmkit::kv_store& s)
{
    std::ostringstream os;
    os << "kv_store size " << s.size() << ":";
    for (const auto& [k, v] : s.get_all()) os << " [" << k << "]=[" << v << ']';
    return os.str();
}

inline std::string observe(const shmkit::share& s)
{
    std::ostringstream os;
    const std::string v = s.fetch();
    os << "share version " << s.version() << " value " << v.size() << " [" << v.substr(0, 64) << ']';
    return os.str();
}

inline std::string observe(const shmkit::segment_report& r)
{
    return "inspect " + r.kind_name + "/" + r.elem_type_name + " " + r.role + " capacity " + std::to_string(r.capacity);
}

// ---- Specimens ---------------------------------------------------------------------------------

/// The bytes of a segment of kind `kind`, or of a file that is none.
struct specimen {
    std::string kind;
    std::string bytes;
    bool is_segment = true;
};

template <class T>
std::string make_buffer(const std::string& path)
{
    shmkit::buffer<T> b(shmkit::create_only, path, 8, small());
    for (std::size_t i = 0; i < 8; ++i) b.set(i, static_cast<T>(3 * i + 1));
    return content_of(path);
}

template <class T>
std::string make_pool(const std::string& path)
{
    shmkit::pool<T> p(shmkit::create_only, path, 8, small_pool());
    for (int i = 0; i < 3; ++i) p.alloc_set(static_cast<T>(7 * i + 2));
    return content_of(path); // the slots stay allocated to a dead owner: as a crashed user leaves them
}

inline std::string make_str_buffer(const std::string& path)
{
    shmkit::str_buffer b(shmkit::create_only, path, 6, 12, small());
    b.set(0, "first");
    b.set(5, std::string("nul\0in", 6));
    return content_of(path);
}

inline std::string make_raw_pool(const std::string& path)
{
    shmkit::raw_pool p(shmkit::create_only, path, 6, 16, small_pool());
    p.alloc_set("raw slot");
    return content_of(path);
}

inline std::string make_str_pool(const std::string& path)
{
    shmkit::str_pool p(shmkit::create_only, path, 6, 10, small_pool());
    p.alloc_set("str slot");
    return content_of(path);
}

inline shmkit::segment_layout plain_layout()
{
    shmkit::segment_layout l;
    l.data_size = 64;
    l.n_rwlocks = 1;
    l.n_mutexes = 1;
    l.attach_capacity = 4;
    l.capacity = 1;
    return l;
}

inline std::string make_segment(const std::string& path)
{
    shmkit::segment::file(shmkit::create_only, path, plain_layout(),
                          [](void* d, std::size_t n) { std::memset(d, 's', n); });
    return content_of(path);
}

/// The store at the site's kv name, with inline and arena entries. Stays in
/// /dev/shm (its table is where a copy of its root finds it).
inline void make_kv(const site& s)
{
    shmkit::kv_store kv(s.kv_name(), small_kv());
    kv.put("small", "inline value");
    kv.put("large", std::string(300, 'L'));
    kv.put(std::string("nul\0key", 7), "v");
}

/// The path of the newest table of the store at the site's kv name (the
/// current one, but for an instant during a growth).
inline std::string kv_table_path(const site& s)
{
    std::string newest;
    unsigned long long newest_gen = 0;
    for (const std::string& n : shm_entries(s.kv_name() + "~")) {
        const unsigned long long gen = std::strtoull(n.c_str() + n.rfind('~') + 1, nullptr, 10);
        if (newest.empty() || gen > newest_gen) {
            newest = n;
            newest_gen = gen;
        }
    }
    return newest.empty() ? std::string() : "/dev/shm/" + newest;
}

/// The share at the site's key, its value in a value segment (larger than
/// the 256-byte size hint). Stays in /dev/shm.
inline void make_share(const site& s)
{
    shmkit::share sh(s.key, share_create());
    sh.store(std::string(1000, 'V'));
}

inline std::string share_value_path(const site& s)
{
    const std::vector<std::string> v = shm_entries(shmkit::share::native_name(s.key) + "~");
    return v.empty() ? std::string() : "/dev/shm/" + v.back();
}

/// Every specimen: a valid segment of each kind (made in the site, the kv
/// store and the share left in place) and files that are not segments.
inline std::vector<specimen> make_specimens(const site& s)
{
    std::vector<specimen> out;
    int n = 0;
    const auto fresh = [&] { return s.file("specimen-" + std::to_string(n++)); };
    for_each_type([&](auto t) {
        using T = decltype(t);
        out.push_back({buffer_kind<T>(), make_buffer<T>(fresh())});
    });
    for_each_type([&](auto t) {
        using T = decltype(t);
        out.push_back({pool_kind<T>(), make_pool<T>(fresh())});
    });
    out.push_back({"str_buffer", make_str_buffer(fresh())});
    out.push_back({"raw_pool", make_raw_pool(fresh())});
    out.push_back({"str_pool", make_str_pool(fresh())});
    out.push_back({"segment", make_segment(fresh())});
    make_kv(s);
    out.push_back({"kv root", content_of(s.kv_root())});
    out.push_back({"kv table", content_of(kv_table_path(s))});
    make_share(s);
    out.push_back({"share root", content_of(s.share_root())});
    out.push_back({"share value", content_of(share_value_path(s))});

    std::string text;
    while (text.size() < 8192) text += "not a segment, only text. ";
    std::string noise(12288, '\0');
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (char& c : noise) c = static_cast<char>((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 56);
    out.push_back({"empty file", "", false});
    out.push_back({"one byte", "S", false});
    out.push_back({"255 zero bytes", std::string(255, '\0'), false});
    out.push_back({"256 zero bytes", std::string(256, '\0'), false});
    out.push_back({"a page of zeros", std::string(4096, '\0'), false});
    out.push_back({"8 KiB of text", text, false});
    out.push_back({"12 KiB of noise", noise, false});
    out.push_back({"an ELF program", content_of("/proc/self/exe").substr(0, 65536), false});
    // A header's magic alone, then nothing that fits it.
    std::string magic(4096, '\0');
    std::memcpy(&magic[0], shmkit::detail::segment_magic, sizeof shmkit::detail::segment_magic);
    out.push_back({"magic only", magic, false});
    return out;
}

// ---- Openers -------------------------------------------------------------------------------------

/// One public way to open what is at a place, and observe it.
struct opener {
    enum class place { file, kv, share };
    std::string name;
    place where;
    /// The specimen kind it accepts: a kind, "*" (any segment), or "" (none).
    std::string accepts;
    std::function<std::string(const site&, const std::string& path)> open;
    /// Changes what it accepts (kv_store exclusive empties the store).
    bool destructive = false;
};

/// Where opener `o` looks, for a file opener given the path `file`.
inline std::string place_of(const opener& o, const site& s, const std::string& file)
{
    switch (o.where) {
    case opener::place::file: return file;
    case opener::place::kv: return s.kv_root();
    case opener::place::share: return s.share_root();
    }
    return file;
}

/// Opens `path` read-write without following a symlink or blocking, for from_fd().
class path_fd {
public:
    explicit path_fd(const std::string& path)
        : fd_(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC))
    {
        if (fd_ < 0) throw shmkit::error(sys(errno), path, "test: cannot open for from_fd");
    }
    ~path_fd() { ::close(fd_); }
    path_fd(const path_fd&) = delete;
    path_fd& operator=(const path_fd&) = delete;
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

inline std::vector<opener> all_openers()
{
    using place = opener::place;
    std::vector<opener> v;
    for_each_type([&](auto t) {
        using T = decltype(t);
        v.push_back({buffer_kind<T>(), place::file, buffer_kind<T>(), [](const site&, const std::string& p) {
                         return observe(shmkit::buffer<T>(shmkit::open_only, p));
                     }});
    });
    for_each_type([&](auto t) {
        using T = decltype(t);
        v.push_back({pool_kind<T>(), place::file, pool_kind<T>(), [](const site&, const std::string& p) {
                         return observe(shmkit::pool<T>(shmkit::open_only, p));
                     }});
    });
    v.push_back({"str_buffer", place::file, "str_buffer",
                 [](const site&, const std::string& p) { return observe(shmkit::str_buffer(shmkit::open_only, p)); }});
    v.push_back({"raw_pool", place::file, "raw_pool",
                 [](const site&, const std::string& p) { return observe(shmkit::raw_pool(shmkit::open_only, p)); }});
    v.push_back({"str_pool", place::file, "str_pool",
                 [](const site&, const std::string& p) { return observe(shmkit::str_pool(shmkit::open_only, p)); }});
    v.push_back({"segment", place::file, "segment", [](const site&, const std::string& p) {
                     return observe(shmkit::segment::file(shmkit::open_only, p));
                 }});
    v.push_back({"buffer<int64_t>::from_fd", place::file, buffer_kind<std::int64_t>(),
                 [](const site&, const std::string& p) {
                     return observe(shmkit::buffer<std::int64_t>::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"buffer<float>::from_fd", place::file, buffer_kind<float>(), [](const site&, const std::string& p) {
                     return observe(shmkit::buffer<float>::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"str_buffer::from_fd", place::file, "str_buffer", [](const site&, const std::string& p) {
                     return observe(shmkit::str_buffer::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"pool<double>::from_fd", place::file, pool_kind<double>(), [](const site&, const std::string& p) {
                     return observe(shmkit::pool<double>::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"raw_pool::from_fd", place::file, "raw_pool", [](const site&, const std::string& p) {
                     return observe(shmkit::raw_pool::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"str_pool::from_fd", place::file, "str_pool", [](const site&, const std::string& p) {
                     return observe(shmkit::str_pool::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"segment::from_fd", place::file, "segment", [](const site&, const std::string& p) {
                     return observe(shmkit::segment::from_fd(path_fd(p).get()));
                 }});
    v.push_back({"inspect", place::file, "*",
                 [](const site&, const std::string& p) { return observe(shmkit::inspect(p)); }});
    v.push_back({"check_segment", place::file, "*", [](const site&, const std::string& p) {
                     const shmkit::check_report r = shmkit::check_segment(p);
                     return observe(r.report) + (r.ok() ? " sound" : " unsound");
                 }});
    v.push_back({"kv_store", place::kv, "kv root", [](const site& s, const std::string&) {
                     return observe(shmkit::kv_store(s.kv_name(), small_kv()));
                 }});
    v.push_back({"kv_store exclusive", place::kv, "kv root",
                 [](const site& s, const std::string&) {
                     return observe(shmkit::kv_store(s.kv_name(), shmkit::exclusive, small_kv()));
                 },
                 true});
    v.push_back({"share", place::share, "share root",
                 [](const site& s, const std::string&) { return observe(shmkit::share(s.key, share_open())); }});
    v.push_back({"share create", place::share, "share root",
                 [](const site& s, const std::string&) { return observe(shmkit::share(s.key, share_create())); }});
    return v;
}

/// The openers that take a path (not an fd, not a POSIX name).
inline std::vector<opener> path_openers()
{
    std::vector<opener> v;
    for (opener& o : all_openers())
        if (o.where == opener::place::file && o.name.find("from_fd") == std::string::npos) v.push_back(std::move(o));
    v.push_back({"region", opener::place::file, "", [](const site&, const std::string& p) {
                     return "region of " + std::to_string(shmkit::region::file(shmkit::open_only, p).size());
                 }});
    return v;
}

/// One public way to create a file-backed segment, in both creating modes.
struct creator {
    std::string name;
    std::function<void(const std::string& path)> create_only;
    std::function<void(const std::string& path)> open_or_create;
};

inline std::vector<creator> all_creators()
{
    namespace s = shmkit;
    std::vector<creator> v;
    v.push_back({"buffer<int64_t>", [](const std::string& p) { s::buffer<std::int64_t>(s::create_only, p, 4, small()); },
                 [](const std::string& p) { s::buffer<std::int64_t>(s::open_or_create, p, 4, small()); }});
    v.push_back({"buffer<double>", [](const std::string& p) { s::buffer<double>(s::create_only, p, 4, small()); },
                 [](const std::string& p) { s::buffer<double>(s::open_or_create, p, 4, small()); }});
    v.push_back({"str_buffer", [](const std::string& p) { s::str_buffer(s::create_only, p, 4, 8, small()); },
                 [](const std::string& p) { s::str_buffer(s::open_or_create, p, 4, 8, small()); }});
    v.push_back({"pool<int32_t>", [](const std::string& p) { s::pool<std::int32_t>(s::create_only, p, 4, small_pool()); },
                 [](const std::string& p) { s::pool<std::int32_t>(s::open_or_create, p, 4, small_pool()); }});
    v.push_back({"pool<double>", [](const std::string& p) { s::pool<double>(s::create_only, p, 4, small_pool()); },
                 [](const std::string& p) { s::pool<double>(s::open_or_create, p, 4, small_pool()); }});
    v.push_back({"raw_pool", [](const std::string& p) { s::raw_pool(s::create_only, p, 4, 8, small_pool()); },
                 [](const std::string& p) { s::raw_pool(s::open_or_create, p, 4, 8, small_pool()); }});
    v.push_back({"str_pool", [](const std::string& p) { s::str_pool(s::create_only, p, 4, 8, small_pool()); },
                 [](const std::string& p) { s::str_pool(s::open_or_create, p, 4, 8, small_pool()); }});
    v.push_back({"segment", [](const std::string& p) { s::segment::file(s::create_only, p, plain_layout()); },
                 [](const std::string& p) { s::segment::file(s::open_or_create, p, plain_layout()); }});
    v.push_back({"region", [](const std::string& p) { s::region::file(s::create_only, p, 4096, {}); },
                 [](const std::string& p) { s::region::file(s::open_or_create, p, 4096, {}); }});
    return v;
}

/// Whether opener `o` must accept specimen `sp`.
inline bool accepts(const opener& o, const specimen& sp)
{
    if (!sp.is_segment) return false;
    return o.accepts == "*" || o.accepts == sp.kind;
}

} // namespace hostile

#endif
