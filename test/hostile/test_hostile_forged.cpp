// Forged segments: headers with a valid checksum whose fields were set to
// values that break the arithmetic, and the shared words a forger sets
// deliberately: a str_buffer whose slots are too small for its width, a kv
// table whose arena tail wraps, an arena record whose lengths change while
// it is read, a header switched between two valid layouts while it is
// opened. The library must refuse, rebuild or skip, and never read or
// write outside its mapping.
#define BOOST_TEST_MODULE hostile_forged
#include "hostile_writer.hpp"

using namespace hostile;
namespace s = shmkit;
using s::detail::segment_header;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int race_rounds = 4000;
#else
constexpr int race_rounds = 20000;
#endif

template <class T>
void poke(std::string& bytes, std::size_t offset, T value)
{
    std::memcpy(&bytes[offset], &value, sizeof value);
}

template <class T>
T peek(const std::string& bytes, std::size_t offset)
{
    T v;
    std::memcpy(&v, &bytes[offset], sizeof v);
    return v;
}

/// Rewrites the checksum of the header at the start of `bytes`.
void reseal(std::string& bytes)
{
    alignas(segment_header) unsigned char h[sizeof(segment_header)];
    std::memcpy(h, bytes.data(), sizeof h);
    poke(bytes, offsetof(segment_header, checksum),
         s::detail::header_checksum(*reinterpret_cast<const segment_header*>(h)));
}

struct field {
    const char* name;
    std::size_t offset;
    bool wide;
};

const field fields[] = {
    {"kind", offsetof(segment_header, kind), false},
    {"elem_type", offsetof(segment_header, elem_type), false},
    {"elem_size", offsetof(segment_header, elem_size), false},
    {"attach_capacity", offsetof(segment_header, attach_capacity), false},
    {"n_rwlocks", offsetof(segment_header, n_rwlocks), false},
    {"n_mutexes", offsetof(segment_header, n_mutexes), false},
    {"capacity", offsetof(segment_header, capacity), true},
    {"total_size", offsetof(segment_header, total_size), true},
    {"attach_offset", offsetof(segment_header, attach_offset), true},
    {"sync_offset", offsetof(segment_header, sync_offset), true},
    {"data_offset", offsetof(segment_header, data_offset), true},
    {"data_size", offsetof(segment_header, data_size), true},
    {"params[0]", offsetof(segment_header, params), true},
    {"params[1]", offsetof(segment_header, params) + 8, true},
    {"params[2]", offsetof(segment_header, params) + 16, true},
    {"params[3]", offsetof(segment_header, params) + 24, true},
};

/// Values a forger would try for a field that holds `was`.
std::vector<std::uint64_t> forgeries(std::uint64_t was, bool wide)
{
    std::vector<std::uint64_t> v = {0,          1,          2,          4,           7,           8,
                                    64,         4095,       4096,       0x7fffffff,  0xffffffff,  was + 1,
                                    was - 1,    was * 2,    was / 2,    was + 8,     was - 8,     was + 64,
                                    was - 64,   was + 4096, was - 4096, was + 0x1000000};
    if (wide)
        v.insert(v.end(), {0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~0ull - 7,
                           ~0ull - 4095, was | (1ull << 40)});
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    v.erase(std::remove(v.begin(), v.end(), was), v.end());
    if (!wide) v.erase(std::remove_if(v.begin(), v.end(), [](std::uint64_t x) { return x > 0xffffffffull; }), v.end());
    return v;
}

/// Waits (bounded) until the `n` bytes at `offset` of `path` change: the
/// hostile process has started.
bool first_change(const std::string& path, std::uint64_t offset, std::size_t n)
{
    raw_mapping m(path);
    const std::string was(m.base() + offset, n);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        std::string now(n, '\0');
        s::detail::atomic_copy_from_shared(now.data(), m.base() + offset, n);
        if (now != was) return true;
        ::sched_yield();
    }
    return false;
}

} // namespace

BOOST_AUTO_TEST_CASE(forged_headers_with_a_valid_checksum)
{
    const site st("forge");
    run_family("forged headers (valid checksum)", [&](cases& c) {
        const std::vector<specimen> specimens = make_specimens(st);
        const std::vector<opener> openers = all_openers();
        const opener& check = *std::find_if(openers.begin(), openers.end(),
                                            [](const opener& x) { return x.name == "check_segment"; });
        const std::string file = st.file("forged");
        for (const specimen& sp : specimens) {
            if (!sp.is_segment || sp.kind == "kv table" || sp.kind == "share value") continue;
            const opener* own = nullptr;
            for (const opener& o : openers)
                if (o.accepts == sp.kind && !o.destructive && o.name.find("from_fd") == std::string::npos) own = &o;
            const std::string where = place_of(*own, st, file);
            for (const field& f : fields) {
                const std::uint64_t was = f.wide ? peek<std::uint64_t>(sp.bytes, f.offset)
                                                 : peek<std::uint32_t>(sp.bytes, f.offset);
                for (const std::uint64_t v : forgeries(was, f.wide)) {
                    std::string bytes = sp.bytes;
                    if (f.wide) poke<std::uint64_t>(bytes, f.offset, v);
                    else poke<std::uint32_t>(bytes, f.offset, static_cast<std::uint32_t>(v));
                    reseal(bytes);
                    // Its own opener where it lives; check_segment on a copy.
                    for (const opener* o : {own, &check}) {
                        const opener& use = *o;
                        const std::string at = o == own ? where : file;
                        c.begin(sp.kind + " " + f.name + " = " + std::to_string(v) + ", opened as " + use.name);
                        install(at, bytes);
                        const fingerprint before = fingerprint_of(at);
                        const attempt a = try_call([&] { use.open(st, file); });
                        if (a.returned()) {
                            c.tally("opened (the field is not one the structure relies on)");
                            continue;
                        }
                        c.refused(a, {}, "");
                        // A store or share id names the tables or value
                        // segments, and a share root holds its key: only
                        // the opener knows which it expects, so it checks
                        // them after attaching (the file's attach table
                        // then records the visit). Every other refusal
                        // comes before anything is written.
                        const bool checked_after_attaching =
                            (sp.kind == "kv root" && f.offset == offsetof(segment_header, params)) ||
                            (sp.kind == "share root" && (f.offset == offsetof(segment_header, params) ||
                                                         f.offset == offsetof(segment_header, params) + 16));
                        if (checked_after_attaching && o == own) c.tally("refused after attaching (an id or key)");
                        else c.unchanged(at, before);
                    }
                }
            }
            install(where, sp.bytes);
        }
    });
}

// ---- A str_buffer whose slots are too small for its width -----------------------------------------

BOOST_AUTO_TEST_CASE(str_buffer_slots_that_do_not_fit_their_strings_are_refused)
{
    const site st("stride");
    run_family("str_buffer slots that do not fit their strings", [&](cases& c) {
        // Valid checksums and sections, but slots of 8 bytes for strings of
        // 8 after a 4-byte length (each read would take 4 bytes of the next
        // slot, and the last one 4 bytes past the element area), or of 13
        // (every length word but the first misaligned).
        const std::string path = st.file("str");
        s::str_buffer(s::create_only, path, 440, 8, small()).set(0, "abcdefgh");
        const std::string made = content_of(path);
        for (const std::uint64_t stride : {8u, 13u}) {
            std::string bytes = made;
            poke<std::uint64_t>(bytes, offsetof(segment_header, params), stride);
            poke<std::uint64_t>(bytes, offsetof(segment_header, data_size), 128 + 440 * stride);
            reseal(bytes);
            install(path, bytes);
            const fingerprint before = fingerprint_of(path);
            const std::string what = "stride " + std::to_string(stride) + ": ";
            c.begin(what + "str_buffer open_only");
            c.refused(try_call([&] { observe(s::str_buffer(s::open_only, path)); }), {bad(s::errc::corrupt_header)},
                      path);
            c.begin(what + "str_buffer::from_fd");
            c.refused(try_call([&] { observe(s::str_buffer::from_fd(path_fd(path).get())); }),
                      {bad(s::errc::corrupt_header)}, "fd:");
            c.begin(what + "str_buffer open_or_create with its width");
            c.refused(try_call([&] { observe(s::str_buffer(s::open_or_create, path, 440, 8, small())); }),
                      {bad(s::errc::corrupt_header)}, path);
            c.unchanged(path, before);
        }
    });
}

// ---- A kv table whose arena tail wraps -------------------------------------------------------------

namespace {

/// Where the words of the current table of the site's store are.
struct kv_table_words {
    layout_of l;
    std::uint64_t cells, arena_offset;
    explicit kv_table_words(const std::string& path)
        : l(path), cells(l.h.params[0]),
          arena_offset(l.h.data_offset + sizeof(s::detail::kv_table_header) + cells * sizeof(s::detail::kv_cell))
    {
    }
    std::uint64_t tail_offset() const { return l.h.data_offset + offsetof(s::detail::kv_table_header, tail); }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_kv_tail_outside_the_arena_rebuilds_the_table)
{
    const site st("tail");
    run_family("kv arena tail outside the arena", [&](cases& c) {
        for (const std::uint64_t tail : {~0ull - 15, ~0ull, 3ull, 1ull << 40}) {
            const std::string name = st.shm.name("t" + std::to_string(tail % 1000));
            c.begin("tail " + std::to_string(tail) + ": put of an arena entry");
            s::kv_store kv(name, small_kv());
            kv.put("a", "inline");
            const std::string table = "/dev/shm/" + shm_entries(name + "~").at(0);
            const kv_table_words w(table);
            raw_mapping m(table); // kept: the old table's bytes stay visible after it is replaced
            const std::string before_arena(m.base() + w.arena_offset - 64, 64);
            __atomic_store_n(reinterpret_cast<std::uint64_t*>(m.base() + w.tail_offset()), tail, __ATOMIC_RELAXED);
            const std::string value(100, 'v');
            c.returned(try_call([&] { kv.put("big", value); }));
            c.check(std::string(m.base() + w.arena_offset - 64, 64) == before_arena,
                    "bytes before the arena were written");
            c.check(kv.stats().generation == 2, "the table was not rebuilt");
            c.check(kv.get("big").value_or("") == value && kv.get("a").value_or("") == "inline",
                    "an entry is missing after the put");
            c.check(kv.check(), "the store is not sound");
        }
    });
}

// ---- Arena record lengths that change while a reader reads them ------------------------------------

BOOST_AUTO_TEST_CASE(kv_record_lengths_changing_under_a_reader)
{
    const site st("record");
    run_family("kv record lengths changed under readers", [&](cases& c) {
        s::kv_store kv(st.kv_name(), small_kv());
        const std::string value(300, 'r');
        kv.put("big", value);
        const std::string table = kv_table_path(st);
        const kv_table_words w(table);
        // The one arena record: the cell whose state says so.
        std::uint64_t record = 0;
        {
            raw_mapping m(table);
            for (std::uint64_t i = 0; i < w.cells; ++i) {
                std::uint64_t meta;
                std::memcpy(&meta, m.base() + w.l.h.data_offset + sizeof(s::detail::kv_table_header) + i * 40, 8);
                if ((meta & s::detail::kv_meta::state_mask) == s::detail::kv_meta::arena_state)
                    record = w.arena_offset + s::detail::kv_meta::arena_offset(meta);
            }
        }
        c.begin("finding the record");
        if (!c.check(record != 0, "no arena record")) return;
        // The writer flips the value length between the real one and one
        // reaching far beyond the arena (and the mapping).
        test::child flipper([&] {
            raw_mapping m(table);
            auto* vlen = reinterpret_cast<std::uint32_t*>(m.base() + record + 4);
            std::uint64_t spin = 0;
            for (std::uint64_t n = 0;; ++n) {
                __atomic_store_n(vlen, n & 1 ? 300u : 0x0ffffff0u, __ATOMIC_RELAXED);
                // Each length held for an uneven while: readers meet both,
                // and the change at every point of a read.
                for (std::uint64_t k = (n * 2654435761u) % 256; k; --k) __atomic_store_n(&spin, k, __ATOMIC_RELAXED);
            }
            return 0;
        });
        c.begin("waiting for the first change of the length");
        if (!c.check(first_change(table, record + 4, sizeof(std::uint32_t)), "the flipper changed nothing")) return;
        std::uint32_t found = 0, missed = 0;
        for (int r = 0; r < race_rounds; ++r) {
            c.begin("get " + std::to_string(r) + " while the length changes");
            const auto v = kv.get("big");
            if (v) {
                ++found;
                if (*v != value) c.fail("a value of " + std::to_string(v->size()) + " bytes was returned");
            } else {
                ++missed;
            }
        }
        c.tally("reads that saw the record whole", found);
        c.tally("reads that skipped it as corrupt", missed);
    });
}

// ---- A header switched between two valid layouts while it is opened ---------------------------------

BOOST_AUTO_TEST_CASE(a_header_switched_between_two_layouts_while_opened)
{
    const site st("switch");
    run_family("header switched while opened", [&](cases& c) {
        // H1: the buffer as made (attach capacity 4, data at 640, 7552
        // bytes up to the end of its 8 KiB). H2: attach capacity 40, data
        // at 2944, 5248 bytes. Both are valid headers; H2 is too small for
        // the buffer and refused. A geometry that mixed H2's data offset
        // with H1's data size would put elements up to 2 KiB past the end.
        const std::string path = st.file("switch");
        s::buffer<std::int64_t>(s::create_only, path, 928, small()).fill(9);
        const std::string h1 = content_of(path).substr(0, sizeof(segment_header));
        c.begin("the layout of H1");
        if (!c.check(peek<std::uint64_t>(h1, offsetof(segment_header, data_offset)) == 640 &&
                         peek<std::uint64_t>(h1, offsetof(segment_header, total_size)) == 8192,
                     "the buffer's layout is not the one this case is built on"))
            return;
        std::string h2 = h1;
        poke<std::uint32_t>(h2, offsetof(segment_header, attach_capacity), 40);
        poke<std::uint64_t>(h2, offsetof(segment_header, sync_offset), 2880);
        poke<std::uint64_t>(h2, offsetof(segment_header, data_offset), 2944);
        poke<std::uint64_t>(h2, offsetof(segment_header, data_size), 5248);
        reseal(h2);
        test::child switcher([&] {
            raw_mapping m(path);
            std::uint64_t spin = 0;
            for (std::uint64_t n = 0;; ++n) {
                s::detail::atomic_copy_to_shared(m.base(), (n & 1 ? h2 : h1).data(), h1.size());
                // An uneven rhythm, so that switches land at every point of an open.
                for (std::uint64_t k = (n * 2654435761u) % 512; k; --k) __atomic_store_n(&spin, k, __ATOMIC_RELAXED);
            }
            return 0;
        });
        c.begin("waiting for the first switch");
        if (!c.check(first_change(path, offsetof(segment_header, data_offset), 8), "the switcher changed nothing"))
            return;
        for (int r = 0; r < race_rounds; ++r) {
            c.begin("open " + std::to_string(r) + " while the header switches");
            const attempt a = try_call([&] {
                s::buffer<std::int64_t> b(s::open_only, path);
                const s::segment& seg = b.get_segment();
                const char* base = static_cast<const char*>(seg.get_region().data());
                const char* data = static_cast<const char*>(seg.data());
                const bool inside = data >= base && data + seg.data_size() <= base + seg.get_region().size() &&
                                    b.capacity() * 8 + 128 <= seg.data_size();
                if (!c.check(inside, "a geometry beyond the mapping: data at " + std::to_string(data - base) + ", " +
                                         std::to_string(seg.data_size()) + " bytes, mapping of " +
                                         std::to_string(seg.get_region().size())))
                    return;
                b.get(b.capacity() - 1);
                b.slice(0, b.capacity());
            });
            if (a.returned()) c.tally("opened");
            else c.refused(a, {}, path);
        }
    });
}
