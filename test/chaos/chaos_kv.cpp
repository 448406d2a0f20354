// kv_store under chaos: workers put and erase keys, read keys and whole
// snapshots, and check the store, while they are SIGKILLed at random; the
// store grows and is rebuilt while they do.
//
// Each worker slot owns its keys ("k<slot>.<n>"): one writer at a time per
// key, so the last write of each key is known. A worker reports each write
// before it starts (intent) and after it returns (acknowledged). Values
// describe themselves (writer, sequence, then bytes derived from them and
// the key), so any reader can tell a whole value of that key from anything
// else. What must hold: every value read during the run is a whole value of
// its key, and a key this worker wrote reads back what it wrote; at the end
// check() passes, and each key holds its last acknowledged write, or one of
// the writes begun after it by workers killed before acknowledging; size()
// and a snapshot agree with that; no table is left behind once removed.
#define BOOST_TEST_MODULE chaos_kv
#include "chaos.hpp"

#include <shmkit/kv_store.hpp>

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

using shmkit::kv_store;

namespace {

constexpr std::uint32_t keys_per_slot = 256;
constexpr std::uint32_t max_writer = 1u << 22;

enum kind : std::uint32_t { put_intent = 1, put_done, erase_intent, erase_done, read_op };

std::uint64_t mix(std::uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

std::string key_name(int slot, std::uint32_t n) { return "k" + std::to_string(slot) + "." + std::to_string(n); }

/// A write: who made it, its number, and whether it erased.
struct write {
    std::uint32_t writer = 0; ///< incarnation id; 0: the store's initial state (absent)
    std::uint64_t seq = 0;
    bool erase = true;
};

/// The value of a put: "writer|seq|" and bytes derived from the key and
/// the write. Lengths vary from inline (key and value within a 32-byte
/// cell) to arena records of a few KiB.
std::string make_value(int slot, std::uint32_t key, std::uint32_t writer, std::uint64_t seq)
{
    std::string v = std::to_string(writer) + "|" + std::to_string(seq) + "|";
    const std::uint64_t h = mix(std::uint64_t(writer) << 40 ^ seq << 12 ^ key << 3 ^ static_cast<unsigned>(slot));
    const std::size_t len = h % 8 < 5 ? 1 + h % 7 : 64 + (h >> 8) % 3000;
    const std::size_t head = v.size();
    v.resize(head + len);
    for (std::size_t i = 0; i < len; i += 8) {
        const std::uint64_t w = mix(h + i);
        std::memcpy(&v[head + i], &w, std::min<std::size_t>(8, len - i));
    }
    return v;
}

/// The write a value says it comes from, if it is a whole value of that key.
std::optional<write> parse_value(int slot, std::uint32_t key, const std::string& v)
{
    unsigned long long f[2];
    std::size_t pos = 0;
    for (auto& x : f) {
        const std::size_t bar = v.find('|', pos);
        if (bar == std::string::npos || bar == pos || bar - pos > 19) return std::nullopt;
        if (v.find_first_not_of("0123456789", pos) < bar) return std::nullopt;
        x = std::stoull(v.substr(pos, bar - pos));
        pos = bar + 1;
    }
    if (f[0] == 0 || f[0] >= max_writer) return std::nullopt;
    const write w{static_cast<std::uint32_t>(f[0]), f[1], false};
    if (make_value(slot, key, w.writer, w.seq) != v) return std::nullopt;
    return w;
}

class kv_worker {
public:
    kv_worker(chaos::worker& w, const std::string& name, int workers) : w_(w), kv_(name), workers_(workers) {}

    void loop()
    {
        while (w_.running()) {
            switch (w_.pick(0, 19)) {
            case 0: case 1: case 2: case 3: case 4: case 5: case 6: put(); break;
            case 7: case 8: erase(); break;
            case 9: case 10: case 11: case 12: read_own(); break;
            case 13: case 14: case 15: case 16: read_any(); break;
            case 17: w_.expect(kv_.size() <= keys_per_slot * static_cast<std::size_t>(workers_), "size() too large"); break;
            case 18: if (w_.pick(0, 9) == 0) snapshot(); break;
            case 19: if (w_.pick(0, 49) == 0) check(); break;
            }
        }
    }

private:
    std::uint32_t some_key() { return static_cast<std::uint32_t>(w_.pick(0, keys_per_slot - 1)); }

    void put()
    {
        const std::uint32_t k = some_key();
        const write wr{w_.id(), ++seq_, false};
        w_.send(put_intent, k, wr.seq);
        kv_.put(key_name(w_.slot(), k), make_value(w_.slot(), k, wr.writer, wr.seq));
        w_.send(put_done, k, wr.seq);
        mine_[k] = wr;
    }
    void erase()
    {
        const std::uint32_t k = some_key();
        const write wr{w_.id(), ++seq_, true};
        w_.send(erase_intent, k, wr.seq);
        const bool was = kv_.erase(key_name(w_.slot(), k));
        w_.send(erase_done, k, wr.seq);
        const auto m = mine_.find(k);
        if (m != mine_.end()) w_.expect(was == !m->second.erase, "erase() of a key this worker wrote said otherwise");
        mine_[k] = wr;
    }
    /// A key of this slot: exactly what this worker wrote last, if it did.
    void read_own()
    {
        const std::uint32_t k = some_key();
        const auto v = kv_.get(key_name(w_.slot(), k));
        verify(w_.slot(), k, v);
        const auto m = mine_.find(k);
        if (m == mine_.end()) return w_.send(read_op);
        if (m->second.erase) w_.expect(!v, "a key this worker erased is there");
        else w_.expect(v && *v == make_value(w_.slot(), k, w_.id(), m->second.seq), "a key this worker put reads otherwise");
        w_.send(read_op);
    }
    /// Any key: absent or a whole value of it.
    void read_any()
    {
        const int slot = static_cast<int>(w_.pick(0, static_cast<std::uint64_t>(workers_ - 1)));
        const std::uint32_t k = some_key();
        verify(slot, k, kv_.get(key_name(slot, k)));
        w_.send(read_op);
    }
    void verify(int slot, std::uint32_t k, const std::optional<std::string>& v)
    {
        if (v && !parse_value(slot, k, *v)) w_.violation("key " + key_name(slot, k) + " holds a value that is not one of its writes");
    }
    /// A consistent snapshot (shared lock): only whole values of known keys,
    /// and this worker's own writes exactly.
    void snapshot()
    {
        std::size_t n = 0;
        kv_.visit([&](std::string_view key, std::string_view value) {
            ++n;
            int slot = -1;
            unsigned k = 0;
            if (std::sscanf(std::string(key).c_str(), "k%d.%u", &slot, &k) != 2 || key != key_name(slot, k))
                return w_.violation("a snapshot holds an unknown key");
            verify(slot, k, std::string(value));
            const auto m = mine_.find(k);
            if (slot == w_.slot() && m != mine_.end())
                w_.expect(!m->second.erase && value == make_value(slot, k, w_.id(), m->second.seq),
                          "a snapshot shows another value for a key this worker wrote");
        });
        w_.expect(n <= keys_per_slot * static_cast<std::size_t>(workers_), "a snapshot holds too many keys");
        w_.send(read_op);
    }
    void check()
    {
        std::string why;
        w_.expect(kv_.check(&why), "check() failed: " + why);
        w_.send(read_op);
    }

    chaos::worker& w_;
    kv_store kv_;
    int workers_;
    std::uint64_t seq_ = 0;
    std::map<std::uint32_t, write> mine_; ///< this worker's last write of each key
};

/// For each key: its last acknowledged write, and the writes begun after
/// it and never acknowledged (their writers were killed).
class kv_log {
public:
    explicit kv_log(int workers) : keys_(static_cast<std::size_t>(workers) * keys_per_slot) {}

    void take(const chaos::incarnation& inc, const chaos::record& r)
    {
        operations_ += r.kind == read_op || r.kind == put_done || r.kind == erase_done;
        if (r.kind == read_op) return;
        key_state& k = keys_.at(static_cast<std::size_t>(inc.slot) * keys_per_slot + r.a);
        const write w{inc.id, r.b, r.kind == erase_intent || r.kind == erase_done};
        if (r.kind == put_intent || r.kind == erase_intent) {
            k.unacknowledged.push_back(w);
        } else {
            k.last = w;
            k.unacknowledged.clear(); // begun before this write, by writers dead since
            ++acknowledged_;
        }
    }

    /// What key n of `slot` may hold: one of these writes.
    std::vector<write> allowed(int slot, std::uint32_t n) const
    {
        const key_state& k = keys_[static_cast<std::size_t>(slot) * keys_per_slot + n];
        std::vector<write> v{k.last};
        v.insert(v.end(), k.unacknowledged.begin(), k.unacknowledged.end());
        return v;
    }
    std::uint64_t acknowledged() const { return acknowledged_; }
    std::uint64_t operations() const { return operations_; }

private:
    struct key_state {
        write last;
        std::vector<write> unacknowledged;
    };
    std::vector<key_state> keys_;
    std::uint64_t acknowledged_ = 0;
    std::uint64_t operations_ = 0;
};

bool holds(const std::optional<std::string>& v, int slot, std::uint32_t key, const write& w)
{
    return w.erase ? !v : v && *v == make_value(slot, key, w.writer, w.seq);
}

/// Every key holds one of its allowed writes; returns the keys present.
std::size_t check_every_key(const kv_store& kv, const kv_log& log, int workers, std::size_t& undecided)
{
    std::size_t present = 0;
    for (int s = 0; s < workers; ++s)
        for (std::uint32_t k = 0; k < keys_per_slot; ++k) {
            const auto v = kv.get(key_name(s, k));
            const auto allowed = log.allowed(s, k);
            bool ok = false;
            for (const auto& w : allowed) ok = ok || holds(v, s, k, w);
            BOOST_TEST(ok, "key " << key_name(s, k) << " lost its last acknowledged write (holds "
                                  << (v ? v->substr(0, 32) : std::string("nothing")) << ")");
            present += v.has_value();
            undecided += allowed.size() > 1;
        }
    return present;
}

/// Names in /dev/shm of the store `name` ("/NAME"): its root and tables.
std::size_t shm_names(const std::string& name)
{
    const std::string base = name.substr(1);
    std::size_t n = 0;
    if (DIR* d = ::opendir("/dev/shm")) {
        while (const dirent* e = ::readdir(d)) {
            const std::string s = e->d_name;
            n += s == base || s.rfind(base + "~", 0) == 0;
        }
        ::closedir(d);
    }
    return n;
}

/// The store's name; root and tables removed on scope exit.
class store_name {
public:
    store_name() : n_("chaos-kv") {}
    ~store_name()
    {
        try {
            kv_store::remove(n_.str());
        } catch (...) {
        }
    }
    const std::string& str() const { return n_.str(); }

private:
    test::shm_name n_; // shm_unlinks the root too, should remove() have failed
};

} // namespace

BOOST_AUTO_TEST_CASE(acknowledged_writes_survive_random_kills_while_the_store_grows)
{
    const auto cfg = chaos::settings_from_command_line(200);
    store_name name;
    kv_store kv(name.str(), shmkit::exclusive);

    kv_log log(cfg.workers);
    chaos::run run(
        cfg, [&](chaos::worker& w) { kv_worker(w, name.str(), cfg.workers).loop(); },
        [&](const chaos::incarnation& i, const chaos::record& r) { log.take(i, r); });
    const auto sum = run.go();
    run.finish();

    std::string why;
    BOOST_TEST(kv.check(&why), why);
    std::size_t undecided = 0;
    const std::size_t present = run.complete() ? check_every_key(kv, log, cfg.workers, undecided) : kv.size();
    BOOST_TEST(kv.size() == present);
    BOOST_TEST(kv.get_all().size() == present);
    const auto st = kv.stats();
    BOOST_TEST(st.grows >= 3u, "the store grew " << st.grows << " times");
    BOOST_TEST(kv_store::remove(name.str()));
    BOOST_TEST(shm_names(name.str()) == 0u, "tables left behind");

    chaos::report("kv_store", run, sum, cfg, log.operations(),
                  "lock " + std::to_string(st.lock_recoveries) + ", repairs " + std::to_string(st.repairs) +
                      "; acknowledged writes " + std::to_string(log.acknowledged()) + ", keys " +
                      std::to_string(present) + " present, " + std::to_string(undecided) +
                      " with an unacknowledged write; tables built " + std::to_string(st.grows));
}
