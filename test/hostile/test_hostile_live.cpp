// Live segments under a hostile second process, which writes garbage into
// the shared header and each structure's control words (element sequence,
// counters, pool owner words and handle lines, string lengths, kv table
// header, cells and arena records, kv and share roots, ShareLite's head,
// the attach table and the lock words) while the process under test keeps
// using the structure. It may see errors, empty results or values it did
// not store (the memory is corrupt), but it never reads or writes outside
// its mapping, never dies of a signal and never blocks past its timeouts:
// every bound comes from the header it validated and copied at open.
// Built with AddressSanitizer as well, so that an overrun is caught.
#define BOOST_TEST_MODULE hostile_live
#include "hostile_writer.hpp"

using namespace hostile;
namespace s = shmkit;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int rounds = 600; // every access is several times slower there
#else
constexpr int rounds = 4000;
#endif

/// One operation of a round: any ending but a signal, a sanitizer report
/// or an exception outside the library's documented ones is acceptable on
/// corrupt memory.
template <class F>
void act(cases& c, const std::string& what, const char* op, F&& f)
{
    c.begin(what + ": " + op);
    const attempt a = try_call(f);
    c.tally(a.returned() ? "returned" : cases::label_of(a));
    if (a.how == attempt::ending::other) c.fail("an exception of an unexpected type: " + a.describe());
}

/// Runs `rounds` rounds of `round` while a continuous writer garbages `t`,
/// then one more after it stopped (the garbage stays).
void under_continuous_garbage(cases& c, const std::string& what, const garbage_target& t,
                              const std::function<void(int)>& round, int n = rounds)
{
    c.begin(what + ": starting the writer");
    continuous_writer w(t, std::hash<std::string>()(what));
    c.check(w.bursts() > 0, "the writer wrote nothing");
    for (int r = 0; r < n; ++r) round(r);
    c.begin(what + ": stopping the writer");
    const std::uint32_t bursts = w.bursts();
    const int status = w.finish();
    c.check(status == 0, "the writer ended with status " + std::to_string(status));
    c.tally("garbage bursts of 256 words, while running", bursts);
    round(n);
}

/// Runs `n` rounds of `round`, each after a burst of garbage into `t`.
void under_lockstep_garbage(cases& c, const std::string& what, const garbage_target& t,
                            const std::function<void(int)>& round, int n = rounds / 4)
{
    c.begin(what + ": starting the writer");
    lockstep_writer w(t, std::hash<std::string>()(what), 4);
    for (int r = 0; r < n; ++r) {
        c.begin(what + ": burst " + std::to_string(r));
        if (!c.check(w.burst(), "the writer is gone")) return;
        round(r);
    }
    c.check(w.finish() == 0, "the writer did not end cleanly");
}

garbage_target fixed(const std::string& path, std::function<std::vector<span_of_words>(const layout_of&)> spans)
{
    return {[path] { return path; }, [spans](const std::string& p) { return spans(layout_of(p)); }};
}

// ---- buffer<T> and str_buffer ------------------------------------------------------------------

void buffer_round(cases& c, const std::string& what, s::buffer<std::int64_t>& b, int r)
{
    const std::size_t i = static_cast<std::size_t>(r) % b.capacity();
    const std::int64_t four[4] = {r, r + 1, r + 2, r + 3};
    act(c, what, "get", [&] { b.get(i); });
    act(c, what, "set", [&] { b.set(i, r); });
    act(c, what, "add", [&] { b.add(i, 1); });
    act(c, what, "cas", [&] { b.cas(i, r, r + 1); });
    act(c, what, "slice", [&] { b.slice(0, b.capacity()); });
    act(c, what, "get_raw", [&] { b.get_raw(8, 64); });
    act(c, what, "set_slice", [&] { b.set_slice(b.capacity() - 4, four); });
    if (r % 16 == 0) act(c, what, "fill", [&] { b.fill(r); });
    act(c, what, "try_lock_for", [&] {
        if (b.try_lock_for(1ms)) b.unlock();
    });
    act(c, what, "try_lock_shared_for", [&] {
        if (b.try_lock_shared_for(1ms)) b.unlock_shared();
    });
    act(c, what, "stats", [&] { b.stats(); });
}

void str_round(cases& c, const std::string& what, s::str_buffer& b, int r)
{
    const std::size_t i = static_cast<std::size_t>(r) % b.capacity();
    act(c, what, "get", [&] { c.check(b.get(i).size() <= b.width(), "a string longer than the width"); });
    act(c, what, "set", [&] { b.set(i, std::string(static_cast<std::size_t>(r) % b.width(), 'x')); });
    act(c, what, "slice", [&] {
        for (const std::string& v : b.slice(0, b.capacity()))
            c.check(v.size() <= b.width(), "a string longer than the width");
    });
    act(c, what, "get_raw", [&] { b.get_raw(0, b.capacity() * 8); });
    if (r % 16 == 0) act(c, what, "fill", [&] { b.fill("filled"); });
    act(c, what, "stats", [&] { b.stats(); });
}

} // namespace

BOOST_AUTO_TEST_CASE(buffers_under_garbage)
{
    const site st("buffers");
    run_family("buffers under garbage", [&](cases& c) {
        const std::string path = st.file("buffer"), str_path = st.file("str");
        s::buffer<std::int64_t> b(s::create_only, path, 64, small());
        s::str_buffer sb(s::create_only, str_path, 32, 24, small());
        // The element counters and the string lengths, continuously; the
        // seqlock's sequence in lockstep (readers retry while it moves).
        under_continuous_garbage(c, "buffer<int64_t> header and counters", fixed(path, [](const layout_of& l) {
                                     return std::vector<span_of_words>{l.header(), l.data("counters", 64, 64)};
                                 }),
                                 [&](int r) { buffer_round(c, "buffer<int64_t>", b, r); });
        under_lockstep_garbage(c, "buffer<int64_t> sequence", fixed(path, [](const layout_of& l) {
                                   return std::vector<span_of_words>{l.data("seqlock", 0, 64)};
                               }),
                               [&](int r) { buffer_round(c, "buffer<int64_t>", b, r); });
        under_continuous_garbage(c, "str_buffer header, counters and lengths", fixed(str_path, [](const layout_of& l) {
                                     const std::uint64_t stride = l.h.params[0];
                                     std::vector<span_of_words> v{l.header(), l.data("counters", 64, 64)};
                                     for (std::uint64_t i = 0; i < l.h.capacity; ++i)
                                         v.push_back(l.data("length", 128 + i * stride, 4, 4));
                                     return v;
                                 }),
                                 [&](int r) { str_round(c, "str_buffer", sb, r); });
        under_lockstep_garbage(c, "str_buffer sequence", fixed(str_path, [](const layout_of& l) {
                                   return std::vector<span_of_words>{l.data("seqlock", 0, 64)};
                               }),
                               [&](int r) { str_round(c, "str_buffer", sb, r); });
    });
}

namespace {

// ---- pools ---------------------------------------------------------------------------------------

/// The pool payload's control words: wake word, counters, handle lines, owner words.
std::vector<span_of_words> pool_spans(const layout_of& l)
{
    const std::uint64_t lines = l.h.params[0] * 64, owners = (l.h.capacity * 8 + 63) / 64 * 64;
    return {l.header(), l.data("wake", 0, 64), l.data("counters", 64, 64), l.data("handle lines", 128, lines),
            l.data("owners", 128 + lines, owners)};
}

std::uint64_t pool_slots_offset(const layout_of& l)
{
    return 128 + l.h.params[0] * 64 + (l.h.capacity * 8 + 63) / 64 * 64;
}

template <class P, class Use>
void pool_round(cases& c, const std::string& what, P& p, int r, Use&& use)
{
    const std::size_t i = static_cast<std::size_t>(r) % p.capacity();
    act(c, what, "try_alloc, use, free", [&] {
        if (auto k = p.try_alloc()) {
            use(*k);
            p.free(*k);
        }
    });
    act(c, what, "alloc(1 ms)", [&] {
        if (auto k = p.alloc(1ms)) p.free(*k);
    });
    act(c, what, "alloc_n(2, 1 ms), free_n", [&] {
        if (auto v = p.alloc_n(2, 1ms)) p.free_n(*v);
    });
    act(c, what, "use a slot", [&] { use(i); });
    act(c, what, "owner", [&] { p.owner(i); });
    act(c, what, "adopt(holder_token)", [&] { p.adopt(i, p.holder_token(i)); });
    act(c, what, "is_allocated, used, allocated_slots", [&] {
        p.is_allocated(i);
        c.check(p.used() <= p.capacity(), "more slots used than there are");
        p.allocated_slots();
    });
    act(c, what, "recover_stale", [&] { p.recover_stale(); });
    act(c, what, "stats", [&] { p.stats(); });
    if (r % 32 == 31) act(c, what, "reset", [&] { p.reset(); });
}

} // namespace

BOOST_AUTO_TEST_CASE(pools_under_garbage)
{
    const site st("pools");
    run_family("pools under garbage", [&](cases& c) {
        const std::string pp = st.file("pool"), rp = st.file("raw"), sp = st.file("str");
        s::pool<std::int64_t> p(s::create_only, pp, 64, small_pool());
        s::raw_pool raw(s::create_only, rp, 32, 24, small_pool());
        s::str_pool str(s::create_only, sp, 32, 20, small_pool());
        under_continuous_garbage(c, "pool<int64_t> control words", fixed(pp, pool_spans), [&](int r) {
            pool_round(c, "pool<int64_t>", p, r, [&](std::size_t k) {
                p.set(k, r);
                p.add(k, 1);
                p.get(k);
            });
        });
        under_continuous_garbage(c, "raw_pool control words", fixed(rp, pool_spans), [&](int r) {
            pool_round(c, "raw_pool", raw, r, [&](std::size_t k) {
                raw.set(k, "raw bytes");
                c.check(raw.get(k).size() == raw.elem_size(), "a slot of another size");
            });
        });
        under_continuous_garbage(c, "str_pool control words and lengths", fixed(sp, [](const layout_of& l) {
                                     std::vector<span_of_words> v = pool_spans(l);
                                     const std::uint64_t slots = pool_slots_offset(l), stride = l.h.params[1];
                                     for (std::uint64_t i = 0; i < l.h.capacity; ++i)
                                         v.push_back(l.data("length", slots + i * stride, 4, 4));
                                     return v;
                                 }),
                                 [&](int r) {
                                     pool_round(c, "str_pool", str, r, [&](std::size_t k) {
                                         str.set(k, "str");
                                         c.check(str.get(k).size() <= str.max_length() &&
                                                     str.length(k) <= str.max_length(),
                                                 "a string longer than the maximum length");
                                     });
                                 });
    });
}

namespace {

// ---- kv_store ------------------------------------------------------------------------------------

void kv_round(cases& c, const std::string& what, s::kv_store& kv, int r)
{
    const std::string key = "key" + std::to_string(r % 40);
    act(c, what, "put inline", [&] { kv.put(key, "v" + std::to_string(r)); });
    act(c, what, "put arena", [&] { kv.put("big" + std::to_string(r % 7), std::string(100 + r % 300, 'b')); });
    act(c, what, "get", [&] {
        if (auto v = kv.get(key)) c.check(v->size() <= s::kv_store::max_value_size, "an impossible value");
    });
    act(c, what, "get arena", [&] { kv.get("big" + std::to_string(r % 7)); });
    act(c, what, "contains", [&] { kv.contains(key); });
    act(c, what, "erase", [&] { kv.erase("key" + std::to_string((r + 20) % 40)); });
    act(c, what, "size", [&] { kv.size(); });
    act(c, what, "get_all", [&] { kv.get_all(); });
    act(c, what, "visit", [&] { kv.visit([](std::string_view, std::string_view) {}); });
    act(c, what, "stats", [&] { kv.stats(); });
    if (r % 8 == 0) act(c, what, "check", [&] { c.tally(kv.check() ? "kv check: sound" : "kv check: unsound"); });
    // Garbage cells look live and each rebuild sizes the table for them:
    // start afresh before the tables grow large.
    act(c, what, "clear when large", [&] {
        if (kv.stats().table_capacity > 16384) kv.clear();
    });
}

} // namespace

BOOST_AUTO_TEST_CASE(kv_store_under_garbage)
{
    const site st("kv");
    run_family("kv_store under garbage", [&](cases& c) {
        s::kv_store kv(st.kv_name(), small_kv());
        for (int i = 0; i < 30; ++i) kv.put("key" + std::to_string(i), std::string(i * 5, 'v'));
        // The current table, found again after every growth.
        const garbage_target table{[&st] { return kv_table_path(st); }, [](const std::string& p) {
                                       const layout_of l(p);
                                       const std::uint64_t cells = l.h.params[0], arena = l.h.params[1];
                                       const std::uint64_t index = sizeof(s::detail::kv_table_header) + cells * 40;
                                       return std::vector<span_of_words>{
                                           l.header(), l.data("table header", 0, sizeof(s::detail::kv_table_header)),
                                           l.data("cells", sizeof(s::detail::kv_table_header), cells * 40),
                                           l.data("arena", index, std::min<std::uint64_t>(arena, 8192))};
                                   }};
        under_continuous_garbage(c, "kv_store table", table, [&](int r) { kv_round(c, "kv table", kv, r); });
        // The root's words: a table number that names no table costs each
        // operation a thousand failed opens, so fewer rounds.
        under_continuous_garbage(c, "kv_store root", fixed(st.kv_root(), [](const layout_of& l) {
                                     return std::vector<span_of_words>{l.header(),
                                                                       l.data("root", 0, sizeof(s::detail::kv_root))};
                                 }),
                                 [&](int r) { kv_round(c, "kv root", kv, r); }, rounds / 25);
    });
}

namespace {

// ---- share ---------------------------------------------------------------------------------------

void share_round(cases& c, const std::string& what, s::share& sh, int r)
{
    act(c, what, "store small", [&] { sh.store("value " + std::to_string(r)); });
    act(c, what, "fetch", [&] { sh.fetch(); });
    if (r % 4 == 0) act(c, what, "store large", [&] { sh.store(std::string(300 + r, 'L')); });
    act(c, what, "fetch under lock_sh", [&] {
        if (sh.lock(s::share::lock_sh | s::share::lock_nb)) {
            sh.fetch_view();
            sh.unlock();
        }
    });
    act(c, what, "version", [&] { sh.version(); });
    act(c, what, "num_segments", [&] { sh.num_segments(); });
    act(c, what, "stats", [&] { sh.stats(); });
    act(c, what, "try_lock_for", [&] {
        if (sh.try_lock_for(1ms)) sh.unlock();
    });
}

} // namespace

BOOST_AUTO_TEST_CASE(shares_under_garbage)
{
    const site st("share");
    run_family("shares under garbage", [&](cases& c) {
        {
            s::share sh(st.key, share_create());
            sh.store(std::string(1000, 'V'));
            under_continuous_garbage(c, "native share root", fixed(st.share_root(), [](const layout_of& l) {
                                         return std::vector<span_of_words>{
                                             l.header(), l.data("root", 0, sizeof(s::detail::share_root))};
                                     }),
                                     [&](int r) { share_round(c, "native share", sh, r); });
            sh.destroy(true);
        }
        s::share_options o = share_create();
        o.backend = s::share_backend::sharelite;
        o.size = 4096;
        s::share sl(st.key, o);
        sl.destroy(true);
        sl.store(std::string(10000, 'S')); // a chain of three segments
        // The head's length, state and version words. Its link to the next
        // segment is left alone: garbage there could name a System V
        // segment of another program, which the ShareLite format cannot
        // tell from its own (any size check passes for one large enough).
        const int head = ::shmget(st.key, 0, 0);
        c.begin("the ShareLite head segment");
        if (!c.check(head >= 0, "no head segment")) return;
        const garbage_target sl_head{[head] { return "shmid:" + std::to_string(head); }, [](const std::string&) {
                                         return std::vector<span_of_words>{{"length, state, version", 4, 12, 4}};
                                     }};
        under_continuous_garbage(c, "sharelite head", sl_head, [&](int r) { share_round(c, "sharelite", sl, r); });
    });
}

BOOST_AUTO_TEST_CASE(attach_tables_and_locks_under_garbage)
{
    const site st("locks");
    run_family("attach tables and lock words under garbage", [&](cases& c) {
        const std::string bp = st.file("buffer"), pp = st.file("pool");
        s::buffer<std::int64_t> b(s::create_only, bp, 64, small());
        s::pool<std::int64_t> p(s::create_only, pp, 16, small_pool());
        const auto attach_and_locks = [](const layout_of& l) {
            return std::vector<span_of_words>{l.attach_table(), l.locks()};
        };
        // Only what cannot wait forever on a holder the garbage invents:
        // element operations and timed locks.
        under_continuous_garbage(c, "buffer attach table and rwlock", fixed(bp, attach_and_locks), [&](int r) {
            const std::size_t i = static_cast<std::size_t>(r) % b.capacity();
            act(c, "buffer", "set, get", [&] {
                b.set(i, r);
                b.get(i);
            });
            act(c, "buffer", "try_lock_for", [&] {
                if (b.try_lock_for(1ms)) b.unlock();
            });
            act(c, "buffer", "try_lock_shared_for", [&] {
                if (b.try_lock_shared_for(1ms)) b.unlock_shared();
            });
            act(c, "buffer", "stats, attached", [&] {
                b.stats();
                b.get_segment().attached();
            });
        });
        under_continuous_garbage(c, "pool attach table and mutex", fixed(pp, attach_and_locks), [&](int) {
            act(c, "pool", "try_alloc, free", [&] {
                if (auto k = p.try_alloc()) p.free(*k);
            });
            act(c, "pool", "alloc_n(2, 1 ms)", [&] {
                if (auto v = p.alloc_n(2, 1ms)) p.free_n(*v);
            });
            act(c, "pool", "recover_stale", [&] { p.recover_stale(); });
            act(c, "pool", "stats", [&] { p.stats(); });
        });
    });
}
