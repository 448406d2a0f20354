// The kinds of fuzz_open that are opened by name: a kv_store (its root and
// the table the root names) and a native share (its root and a value
// segment). Their images are written into POSIX objects named after this
// process, which are all removed after each input, whatever the structure
// created or renamed meanwhile.
#include "fuzz_open.hpp"
#include "fuzz_support.hpp"
#include "open_exercise.hpp"

#include <shmkit/detail/header.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>

namespace fuzz {

namespace {

using shmkit::detail::segment_header;

std::string shm_path(const std::string& name) { return "/dev/shm/" + name; }

void write_file(const std::string& path, const std::string& bytes)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) fail("cannot write " + path);
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

const segment_header* header_of(const std::string& image)
{
    return image.size() < shmkit::detail::header_size ? nullptr
                                                       : reinterpret_cast<const segment_header*>(image.data());
}

/// NAME~<id, 16 hex digits>~<gen>: how kv tables and share value segments
/// are named after their root.
std::string child_name(const std::string& base, std::uint64_t id, std::uint64_t gen)
{
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(id));
    return base + "~" + hex + "~" + std::to_string(gen);
}

/// Writes `root` under `name` and, if both have a header, `child` under
/// the name the root gives it (its id in params[0], the child's number in
/// params[gen_param]); then inspects the root, which must stay unchanged.
void write_pair(const std::string& name, const std::string& root, const std::string& child, int gen_param)
{
    write_file(shm_path(name), root);
    const segment_header* r = header_of(root);
    const segment_header* c = header_of(child);
    if (r && c) write_file(shm_path(child_name(name, r->params[0], c->params[gen_param])), child);
    inspect_read_only(shm_path(name), [&] { return read_file(shm_path(name)); }, root);
}

bool root_lock_takeable(const std::string& name)
{
    shmkit::segment_expectation x;
    x.kind = shmkit::structure_kind::kv;
    try {
        return lock_is_takeable(shmkit::segment::posix(shmkit::open_only, name, x));
    } catch (const shmkit::error&) {
        return false;
    }
}

void exercise(shmkit::kv_store& s, const std::string& name)
{
    (void)s.size();
    (void)s.get("a");
    (void)s.contains("fuzz");
    (void)s.stats();
    if (!root_lock_takeable(name)) return;
    (void)s.get_all();
    std::string why;
    (void)s.check(&why);
    // A key absent before must be found after a put. (A key present may
    // have corrupt duplicates further on, which a lookup can find first.)
    const bool had = s.contains("fuzz");
    s.put("fuzz", "value");
    if (!had && s.get("fuzz") != "value") fail("kv_store: a key put is not found");
    (void)s.erase("fuzz");
    s.put("big", std::string(100, 'b')); // a record in the arena
    s.clear();
    if (s.size() != 0 || !s.get_all().empty()) fail("kv_store: clear left entries");
}

void exercise(shmkit::share& s)
{
    (void)s.version();
    (void)s.size();
    if (!s.try_lock()) return; // as lock(lock_ex | lock_nb): dead holders recovered, live ones not waited for
    std::unique_lock<shmkit::share> held(s, std::adopt_lock);
    (void)s.fetch();
    (void)s.fetch_view();
    (void)s.num_segments();
    (void)s.stats();
    for (std::size_t n : {5, 3000}) {
        const std::string v(n, 'v');
        s.store(v);
        if (s.fetch() != v) fail("share: a value stored under the lock is not fetched back");
    }
}

} // namespace

void open_kv_store(std::string root, std::string table, std::uint8_t flags)
{
    fix_up(root, flags, {});
    fix_up(table, flags, {});
    const std::string name = scratch_name("kv");
    write_pair(name, root, table, 2);
    try {
        shmkit::kv_options o;
        o.init_timeout = std::chrono::milliseconds(0); // a root never initialised is taken over at once
        shmkit::kv_store s(name, o);
        exercise(s, name);
    } catch (const std::exception&) {
        // shmkit::error for bad bytes; std::logic_error, std::length_error for sizes they claim.
    }
    remove_shm_prefix(name);
}

void open_share(std::string root, std::string value, std::uint8_t flags)
{
    const key_t key = scratch_share_key();
    fix_up(root, flags, [&](segment_header& h) { h.params[2] = static_cast<std::uint32_t>(key); });
    fix_up(value, flags, {});
    const std::string name = shmkit::share::native_name(key);
    write_pair(name, root, value, 1);
    try {
        shmkit::share_options o; // open only: the bytes written are the share
        shmkit::share s(key, o);
        exercise(s);
    } catch (const std::exception&) {
    }
    remove_shm_prefix(name);
}

} // namespace fuzz
