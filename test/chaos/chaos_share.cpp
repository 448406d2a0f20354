// share (native backend) under chaos: workers store values of varying size
// (inline in the share's segment, and in value segments of their own),
// fetch and verify them, and hold the lock shared and exclusive, while they
// are SIGKILLed at random.
//
// Values describe themselves: a header (magic, writer id, sequence, length,
// checksum of the content) and the content. A worker reports each store
// before it starts (intent) and after it returns (acknowledged). What must
// hold: every fetch during the run returns a whole value (length and
// checksum agree) that some process stored, both lock modes are always
// granted within a bound; at the end the value is a whole value stored by
// an acknowledged store or by a store whose writer was killed in it, the
// version counts exactly the committed stores, and no value segment is
// left behind once two inline stores have replaced both slots.
#define BOOST_TEST_MODULE chaos_share
#include "chaos.hpp"

#include <shmkit/share.hpp>

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <optional>

using namespace std::chrono_literals;
using shmkit::share;

namespace {

constexpr std::size_t inline_size = 4096; ///< the share's size hint: larger values go to value segments
constexpr std::uint32_t magic = 0x63686173;
constexpr std::uint32_t max_writer = 1u << 22;
constexpr auto lock_bound = chaos::sanitized ? 30s : 10s;

enum kind : std::uint32_t { store_intent = 1, store_done, seen, other };

struct header {
    std::uint32_t magic;
    std::uint32_t writer;
    std::uint64_t seq;
    std::uint64_t length; ///< of the whole value, header included
    std::uint64_t checksum; ///< checksum() of the content after the header
};
static_assert(sizeof(header) == 32);

/// FNV-1a over 8-byte words (the tail zero-padded): cheap next to a store,
/// so that most of a worker's time goes to the share, where kills matter.
std::uint64_t checksum(const char* p, std::size_t n)
{
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t w = 0;
        std::memcpy(&w, p + i, std::min<std::size_t>(8, n - i));
        h = (h ^ w) * 0x100000001b3ull;
    }
    return h;
}

/// Value `seq` of `writer`: about half inline, the others in value
/// segments of up to 256 KiB.
std::string make_value(std::uint32_t writer, std::uint64_t seq, std::mt19937_64& rng)
{
    const std::size_t n = rng() % 2 ? sizeof(header) + rng() % (inline_size - sizeof(header))
                                    : inline_size + 1 + rng() % (256 * 1024);
    std::string v(n, '\0');
    std::uint64_t x = rng();
    for (std::size_t i = sizeof(header); i < n; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::memcpy(v.data() + i, &x, std::min<std::size_t>(8, n - i));
    }
    const header h{magic, writer, seq, n, checksum(v.data() + sizeof(header), n - sizeof(header))};
    std::memcpy(v.data(), &h, sizeof h);
    return v;
}

/// The header of a whole value, or nothing for anything else.
std::optional<header> parse_value(std::string_view v)
{
    header h;
    if (v.size() < sizeof h) return std::nullopt;
    std::memcpy(&h, v.data(), sizeof h);
    if (h.magic != magic || h.length != v.size() || h.writer == 0 || h.writer >= max_writer) return std::nullopt;
    if (checksum(v.data() + sizeof h, v.size() - sizeof h) != h.checksum) return std::nullopt;
    return h;
}

share open_share(key_t key)
{
    shmkit::share_options o;
    o.create = true;
    o.size = inline_size;
    return share(key, o);
}

class share_worker {
public:
    share_worker(chaos::worker& w, key_t key) : w_(w), s_(open_share(key)) {}

    void loop()
    {
        while (w_.running()) {
            switch (w_.pick(0, 11)) {
            case 0: case 1: case 2: case 3: store(); break;
            case 4: store_under_lock(); break;
            case 5: case 6: case 7: case 8: verify(s_.fetch()); break;
            case 9: fetch_under_shared_lock(); break;
            case 10: version_only_grows(); break;
            case 11: lock_and_unlock(); break;
            }
        }
    }

private:
    void store()
    {
        const std::string v = make_value(w_.id(), ++seq_, w_.rng());
        w_.send(store_intent, 0, seq_);
        s_.store(v);
        w_.send(store_done, 0, seq_);
    }
    /// A read-modify-write: the value read under the lock is whole, and
    /// stays the value until this store replaces it.
    void store_under_lock()
    {
        if (!s_.try_lock_for(lock_bound)) return w_.violation("lock_ex not granted within the bound");
        const std::string before = s_.fetch();
        verify(before);
        const std::string v = make_value(w_.id(), ++seq_, w_.rng());
        w_.send(store_intent, 0, seq_);
        w_.expect(s_.fetch() == before, "the value changed under lock_ex");
        s_.store(v);
        s_.unlock();
        w_.send(store_done, 0, seq_);
    }
    void fetch_under_shared_lock()
    {
        if (!s_.try_lock_shared_for(lock_bound)) return w_.violation("lock_sh not granted within the bound");
        const std::string v(s_.fetch_view());
        s_.unlock();
        verify(v);
    }
    void version_only_grows()
    {
        const std::uint64_t v = s_.version();
        w_.expect(v >= version_, "version went back from " + std::to_string(version_) + " to " + std::to_string(v));
        version_ = v;
        w_.send(other);
    }
    void lock_and_unlock()
    {
        const bool ok = w_.pick(0, 1) ? s_.try_lock_for(lock_bound) : s_.try_lock_shared_for(lock_bound);
        if (!ok) return w_.violation("a lock was not granted within the bound");
        s_.unlock();
        w_.send(other);
    }
    /// A whole value: the parent learns whose, to check it was stored.
    void verify(const std::string& v)
    {
        if (v.empty()) return w_.send(seen, 0, 0); // the fresh share's value
        const auto h = parse_value(v);
        if (!h) return w_.violation("fetched " + std::to_string(v.size()) + " bytes that are not a whole value");
        w_.send(seen, h->writer, h->seq);
    }

    chaos::worker& w_;
    share s_;
    std::uint64_t seq_ = 0;
    std::uint64_t version_ = 0;
};

/// Stores begun and acknowledged by each writer, and the latest store of
/// each writer seen by a fetch.
class share_log {
public:
    void take(const chaos::incarnation& inc, const chaos::record& r)
    {
        grow(inc.id);
        operations_ += r.kind == store_done || r.kind == seen || r.kind == other;
        if (r.kind == store_intent) begun_[inc.id] = r.b;
        if (r.kind == store_done) done_[inc.id] = r.b, ++acknowledged_;
        if (r.kind == seen && r.a > 0) {
            if (r.a >= max_writer) return void(++unknown_seen_);
            grow(r.a);
            max_seen_[r.a] = std::max(max_seen_[r.a], r.b);
        }
    }

    /// Store `seq` of `writer` happened: acknowledged, or begun by a writer
    /// killed before it could acknowledge.
    bool stored(std::uint32_t writer, std::uint64_t seq, const chaos::run& run) const
    {
        if (writer == 0 || writer >= begun_.size() || seq == 0) return false;
        const bool killed_in_it = run.incarnations()[writer - 1].killed && begun_[writer] > done_[writer];
        return seq <= done_[writer] + (killed_in_it ? 1 : 0);
    }
    /// Stores that may have committed without being acknowledged.
    std::uint64_t in_flight(const chaos::run& run) const
    {
        std::uint64_t n = 0;
        for (std::size_t w = 1; w < begun_.size(); ++w) n += run.incarnations()[w - 1].killed && begun_[w] > done_[w];
        return n;
    }
    /// Every fetch during the run returned a stored value.
    std::string judge_fetches(const chaos::run& run) const
    {
        if (unknown_seen_) return "a fetch showed a writer that never ran";
        for (std::size_t w = 1; w < max_seen_.size(); ++w)
            if (max_seen_[w] && !stored(static_cast<std::uint32_t>(w), max_seen_[w], run))
                return "a fetch showed store " + std::to_string(max_seen_[w]) + " of #" + std::to_string(w) +
                       ", never stored";
        return {};
    }
    std::uint64_t acknowledged() const { return acknowledged_; }
    /// Stores, fetches and lock cycles completed (a read-modify-write
    /// counts as a fetch and a store).
    std::uint64_t operations() const { return operations_; }

private:
    void grow(std::uint32_t id)
    {
        if (begun_.size() <= id) begun_.resize(id + 1), done_.resize(id + 1), max_seen_.resize(id + 1);
    }

    std::vector<std::uint64_t> begun_, done_, max_seen_; ///< by incarnation id
    std::uint64_t acknowledged_ = 0;
    std::uint64_t unknown_seen_ = 0;
    std::uint64_t operations_ = 0;
};

key_t unique_key()
{
    return static_cast<key_t>(0x5d000000 | (::getpid() & 0xffff) << 8);
}

/// Names in /dev/shm of the value segments of share `key`.
std::size_t value_segment_names(key_t key)
{
    const std::string prefix = share::native_name(key) + "~";
    std::size_t n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(d)) n += std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0;
        ::closedir(d);
    }
    return n;
}

/// A share created fresh for the test; removed (value segments too) on scope exit.
struct fresh_share {
    key_t key = unique_key();
    fresh_share() { share::remove(key); }
    ~fresh_share()
    {
        try {
            share::remove(key);
        } catch (...) {
        }
    }
};

void check_final_value(share& s, const share_log& log, const chaos::run& run)
{
    const std::string v = s.fetch();
    const auto h = parse_value(v);
    BOOST_TEST_REQUIRE(h.has_value(), "the final value (" << v.size() << " bytes) is not a whole value");
    BOOST_TEST(log.stored(h->writer, h->seq, run), "the final value, store " << h->seq << " of #" << h->writer
                                                                             << ", was never stored");
    const std::uint64_t committed = s.version() - 1, lo = log.acknowledged(), hi = lo + log.in_flight(run);
    BOOST_TEST((lo <= committed && committed <= hi),
               "version says " << committed << " stores, acknowledged " << lo << " (+" << hi - lo << " in flight)");
}

} // namespace

BOOST_AUTO_TEST_CASE(values_stay_whole_and_locks_free_under_random_kills)
{
    const auto cfg = chaos::settings_from_command_line(200);
    fresh_share f;
    share s = open_share(f.key);

    share_log log;
    chaos::run run(
        cfg, [&](chaos::worker& w) { share_worker(w, f.key).loop(); },
        [&](const chaos::incarnation& i, const chaos::record& r) { log.take(i, r); });
    const auto sum = run.go();
    run.finish();

    BOOST_TEST_REQUIRE(s.try_lock_for(lock_bound), "lock_ex is granted within the bound");
    s.unlock();
    BOOST_TEST_REQUIRE(s.try_lock_shared_for(lock_bound), "lock_sh is granted within the bound");
    s.unlock();
    if (run.complete()) {
        const std::string during = log.judge_fetches(run);
        BOOST_TEST(during.empty(), during);
        check_final_value(s, log, run);
    }
    const auto st = s.stats();
    // Two inline stores replace both slots: no value segment may be left.
    s.store("a");
    s.store("b");
    BOOST_TEST(s.fetch() == "b");
    BOOST_TEST(value_segment_names(f.key) == 0u, "value segments left behind");

    chaos::report("share", run, sum, cfg, log.operations(),
                  "lock " + std::to_string(st.lock_recoveries) + ", repairs " + std::to_string(st.repairs) +
                      "; acknowledged stores " + std::to_string(log.acknowledged()) + ", in flight at a kill " +
                      std::to_string(log.in_flight(run)));
}
