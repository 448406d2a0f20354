// A program outside the shmkit tree, built against an installed shmkit (CMake
// find_package, b2, pkg-config) or a shmkit added with add_subdirectory. It
// creates a buffer and a pool in a scratch directory and a kv_store in
// /dev/shm, uses them, removes them, and prints "consumer ok".
//
//   consumer [SCRATCH_DIR]     (default: a new directory under $TMPDIR or /tmp)
#include <shmkit.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

int failures = 0;

void expect(bool ok, const char* what)
{
    if (!ok) {
        std::fprintf(stderr, "consumer: check failed: %s\n", what);
        ++failures;
    }
}

} // namespace

int main(int argc, char** argv)
{
    std::string dir;
    bool own_dir = false;
    if (argc > 1) {
        dir = argv[1];
    } else {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/shmkit-consumer.XXXXXX";
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data())) {
            std::perror("consumer: mkdtemp");
            return 1;
        }
        dir = buf.data();
        own_dir = true;
    }
    const std::string buffer_path = dir + "/counters";
    const std::string pool_path = dir + "/slots";
    const std::string kv_name = "shmkit-consumer-" + std::to_string(::getpid());

    try {
        {
            shmkit::buffer<std::uint64_t> counters(shmkit::create_only, buffer_path, 16);
            counters.incr(3);
            counters.incr(3);
            counters.set(5, 42);
            std::vector<std::uint64_t> snap = counters.slice(0, 16);
            expect(snap.size() == 16 && snap[3] == 2 && snap[5] == 42, "buffer incr/set/slice");
        }
        {
            shmkit::buffer<std::uint64_t> again(shmkit::open_only, buffer_path);
            expect(again.capacity() == 16 && again.get(3) == 2, "buffer reopened");
        }
        {
            shmkit::pool<std::uint32_t> slots(shmkit::create_only, pool_path, 4);
            std::optional<std::size_t> a = slots.alloc_set(7);
            std::optional<std::size_t> b = slots.try_alloc();
            expect(a && b && *a != *b, "pool alloc");
            expect(a && slots.get(*a) == 7, "pool get");
            expect(a && slots.free(*a), "pool free");
            shmkit::slot_guard g = slots.try_alloc_guard();
            expect(static_cast<bool>(g), "pool guard");
        }
        {
            shmkit::kv_store kv(kv_name);
            kv.put("session:42", "{\"user\": 7}");
            kv.put("session:43", "{\"user\": 8}");
            expect(kv.get("session:42") == std::optional<std::string>("{\"user\": 7}"), "kv get");
            expect(kv.erase("session:43") && kv.size() == 1, "kv erase");
            std::string why;
            expect(kv.check(&why), "kv check");
        }
        expect(shmkit::kv_store::remove(kv_name), "kv remove");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        shmkit::kv_store::remove(kv_name);
        ++failures;
    }

    expect(::unlink(buffer_path.c_str()) == 0, "buffer file removed");
    expect(::unlink(pool_path.c_str()) == 0, "pool file removed");
    if (own_dir)
        expect(::rmdir(dir.c_str()) == 0, "scratch directory removed");

    if (failures != 0)
        return 1;
    std::printf("consumer ok (shmkit %s)\n", SHMKIT_VERSION_STRING);
    return 0;
}
