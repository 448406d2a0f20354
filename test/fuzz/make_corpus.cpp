// Writes the seed corpus of the fuzz targets into DIR/<target>/:
//
//   make_corpus DIR
//
// fuzz_open gets real segments of every kind, made by the library and
// read back byte for byte: fresh ones, ones holding values and allocated
// slots, and ones snapshotted while a lock was held (a writer that is dead
// by the time the fuzzer reads them), so that mutations start from deep
// states. The operation targets get short random programs for each
// structure type (the fuzzer finds the rest), and fuzz_sharelite_chain a
// sound chain of three segments besides random ones.
#include "open_format.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>
#include <shmkit/str_buffer.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using fuzz::open_kind;

std::string out_dir;

void write_seed(const std::string& target, const std::string& name, const std::string& bytes)
{
    const std::string dir = out_dir + "/" + target;
    ::mkdir(dir.c_str(), 0755);
    std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
        std::perror((dir + "/" + name).c_str());
        std::exit(1);
    }
}

std::string read_path(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string read_fd(int fd) { return read_path("/proc/self/fd/" + std::to_string(fd)); }

/// The one /dev/shm entry whose name begins with `prefix`.
std::string shm_file_with_prefix(const std::string& prefix)
{
    std::string found;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(d))
            if (std::string(e->d_name).rfind(prefix, 0) == 0) found = e->d_name;
        ::closedir(d);
    }
    return found.empty() ? std::string() : read_path("/dev/shm/" + found);
}

std::string open_seed(open_kind kind, const std::string& image, std::uint8_t flags = fuzz::fixup_size | fuzz::fixup_checksum)
{
    return std::string{char(kind), char(flags)} + image;
}

std::string open_seed(open_kind kind, const std::string& first, const std::string& second)
{
    return std::string{char(kind), char(fuzz::fixup_size | fuzz::fixup_checksum), char(first.size() / fuzz::page_size)} +
           first + second;
}

/// The bytes of a structure made by `make` in a memfd: `use` runs on it,
/// and `snapshot_inside` decides whether the bytes are read while `use`'s
/// state is held (a lock) or after the handle is gone.
template <class S>
std::string image_of(S s, const std::function<void(S&)>& use, bool locked)
{
    const int fd = ::dup(s.fd());
    use(s);
    std::string bytes;
    if (locked) {
        s.lock();
        bytes = read_fd(fd);
        s.unlock();
    }
    { S gone = std::move(s); }
    if (!locked) bytes = read_fd(fd);
    ::close(fd);
    return bytes;
}

shmkit::structure_options small() { shmkit::structure_options o; o.attach_capacity = 4; return o; }
shmkit::pool_options small_pool() { shmkit::pool_options o; o.attach_capacity = 4; return o; }

template <class T>
void buffer_seeds(open_kind kind, const char* name)
{
    const auto fill = [](shmkit::buffer<T>& b) {
        for (std::size_t i = 0; i < b.capacity(); i += 3) b.set(i, T(i + 1));
    };
    for (bool locked : {false, true}) {
        const std::string img = image_of<shmkit::buffer<T>>(shmkit::buffer<T>::memfd("seed", 16, small()), fill, locked);
        write_seed("fuzz_open", std::string(name) + (locked ? "-locked" : ""), open_seed(kind, img));
    }
}

template <class P, class Make, class Use>
void pool_seed(open_kind kind, const char* name, Make make, Use use)
{
    P p = make();
    const int fd = ::dup(p.fd());
    use(p); // slots stay allocated: their owner is this process, dead when the fuzzer reads them
    { P gone = std::move(p); }
    write_seed("fuzz_open", name, open_seed(kind, read_fd(fd)));
    ::close(fd);
}

void pool_seeds()
{
    using namespace shmkit;
    const auto take = [](auto& p) {
        for (int k = 0; k < 5; ++k) (void)p.try_alloc();
    };
    pool_seed<pool<std::int64_t>>(open_kind::pool_i64, "pool_i64", [] { return pool<std::int64_t>::memfd("seed", 16, small_pool()); },
                                  [&](auto& p) { take(p); p.set(0, 42); });
    pool_seed<pool<std::int32_t>>(open_kind::pool_i32, "pool_i32", [] { return pool<std::int32_t>::memfd("seed", 16, small_pool()); }, take);
    pool_seed<pool<double>>(open_kind::pool_f64, "pool_f64", [] { return pool<double>::memfd("seed", 16, small_pool()); }, take);
    pool_seed<pool<std::uint8_t>>(open_kind::pool_u8, "pool_u8", [] { return pool<std::uint8_t>::memfd("seed", 16, small_pool()); }, take);
    pool_seed<raw_pool>(open_kind::raw_pool, "raw_pool", [] { return raw_pool::memfd("seed", 16, 24, small_pool()); },
                        [&](auto& p) { take(p); p.set(1, "raw bytes"); });
    pool_seed<str_pool>(open_kind::str_pool, "str_pool", [] { return str_pool::memfd("seed", 16, 20, small_pool()); },
                        [&](auto& p) { take(p); p.set(2, "a string"); });
}

void str_buffer_seeds()
{
    const auto fill = [](shmkit::str_buffer& b) {
        b.set(0, "zero");
        b.set(3, std::string("with\0nul", 8));
    };
    for (bool locked : {false, true}) {
        const std::string img = image_of<shmkit::str_buffer>(shmkit::str_buffer::memfd("seed", 8, 12, small()), fill, locked);
        write_seed("fuzz_open", locked ? "str_buffer-locked" : "str_buffer", open_seed(open_kind::str_buffer, img));
    }
}

void segment_seeds()
{
    shmkit::segment_layout l;
    l.data_size = 256;
    l.n_rwlocks = 2;
    l.n_mutexes = 2;
    l.attach_capacity = 4;
    shmkit::segment s = shmkit::segment::memfd("seed", l);
    const int fd = ::dup(s.fd());
    write_seed("fuzz_open", "segment", open_seed(open_kind::segment, read_fd(fd)));
    shmkit::sync::rwlock w = s.rwlock(1);
    w.lock();
    shmkit::sync::mutex m = s.mutex(0);
    m.lock();
    write_seed("fuzz_open", "segment-locked", open_seed(open_kind::segment, read_fd(fd)));
    write_seed("fuzz_open", "segment-no-fixups", open_seed(open_kind::segment, read_fd(fd), 0));
    m.unlock();
    w.unlock();
    ::close(fd);
}

void kv_seeds()
{
    const std::string name = "shmkit-corpus-" + std::to_string(::getpid()) + "-kv";
    {
        shmkit::kv_options o;
        o.attach_capacity = 4;
        shmkit::kv_store s(name, o);
        for (int k = 0; k < 20; ++k) s.put("key" + std::to_string(k), std::string(k * 5, char('a' + k)));
        s.erase("key3");
        s.put("key4", "overwritten");
    }
    const std::string root = read_path("/dev/shm/" + name), table = shm_file_with_prefix(name + "~");
    shmkit::kv_store::remove(name);
    write_seed("fuzz_open", "kv_store", open_seed(open_kind::kv_store, root, table));
    write_seed("fuzz_open", "kv_store-root-only", open_seed(open_kind::kv_store, root, std::string()));
}

void share_seeds()
{
    const key_t key = static_cast<key_t>(0x4e000000 | (::getpid() & 0xffffff));
    const std::string name = shmkit::share::native_name(key);
    shmkit::share_options o;
    o.create = true;
    o.size = 64;
    {
        shmkit::share s(key, o);
        s.store("inline");
        write_seed("fuzz_open", "share-inline", open_seed(open_kind::share, read_path("/dev/shm/" + name), std::string()));
        s.store(std::string(1000, 'v'));
    }
    const std::string root = read_path("/dev/shm/" + name), value = shm_file_with_prefix(name + "~");
    shmkit::share::remove(key);
    write_seed("fuzz_open", "share-segment", open_seed(open_kind::share, root, value));
}

/// `count` random programs of `length` bytes, each after a header.
void random_programs(const char* target, const std::vector<std::string>& headers, std::size_t length)
{
    std::mt19937 rng(20240611);
    int n = 0;
    for (const std::string& h : headers) {
        std::string bytes = h;
        for (std::size_t k = 0; k < length; ++k) bytes.push_back(static_cast<char>(rng()));
        write_seed(target, "random-" + std::to_string(n++), bytes);
    }
}

void operation_seeds()
{
    std::vector<std::string> buffers, pools;
    for (char t = 0; t < 11; ++t) buffers.push_back({t, char(15), char(9)});
    for (char t = 0; t < 7; ++t) pools.push_back({t, char(11), char(7)});
    random_programs("fuzz_buffer_ops", buffers, 200);
    random_programs("fuzz_pool_ops", pools, 200);
    random_programs("fuzz_kv_ops", {"", "", "", ""}, 300);
    random_programs("fuzz_sharelite_chain", {"", "", "", ""}, 120);
    // A sound chain: three segments of 32 bytes (16 of data) linked 0 -> 1
    // -> 2, a 40-byte value, then stores and reads through both handles.
    const std::string chain = {char(2), char(15), // 3 segments, head of 32 bytes
                               char(0), char(2), char(0), char(40), char(0), char(7), char(1), // head -> 1, length 40
                               char(0), char(3), char(0), char(0), char(0), char(0), char(0),  // 1 -> 2
                               char(0), char(0), char(0), char(0), char(0), char(0), char(0),  // 2 -> end
                               char(3), char(1), char(4), char(0), char(0), char(60), char(1), char(5), char(0), char(0), char(6), char(1)};
    write_seed("fuzz_sharelite_chain", "sound-chain", chain);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    ::mkdir(out_dir.c_str(), 0755);
    buffer_seeds<std::int8_t>(open_kind::buffer_i8, "buffer_i8");
    buffer_seeds<std::uint16_t>(open_kind::buffer_u16, "buffer_u16");
    buffer_seeds<std::int32_t>(open_kind::buffer_i32, "buffer_i32");
    buffer_seeds<std::uint64_t>(open_kind::buffer_u64, "buffer_u64");
    buffer_seeds<float>(open_kind::buffer_f32, "buffer_f32");
    buffer_seeds<double>(open_kind::buffer_f64, "buffer_f64");
    str_buffer_seeds();
    pool_seeds();
    segment_seeds();
    kv_seeds();
    share_seeds();
    operation_seeds();
    return 0;
}
