// Fuzz target: a kv_store driven by the input against a std::map. Keys are
// short and drawn from a small alphabet (so they repeat: overwrites,
// erases of present keys), values from empty to larger than a cell (so
// both inline entries and arena records), and a batch operation puts
// hundreds of keys at once, so that tables grow and are rebuilt. Reads go
// through the store's handle or a second handle on the same store (which
// must follow the growth). Every answer is checked; after the last
// operation the whole store, check(), and that remove() leaves no name in
// /dev/shm. A mismatch aborts with a message.
//
// The store is created for each input under a name of this process and
// removed after it.
#include "fuzz_support.hpp"

#include <shmkit/kv_store.hpp>

#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

namespace fuzz {
namespace {

using model_map = std::map<std::string, std::string>;

std::string pick_key(input& in)
{
    std::string k(in.u8() % 4, '\0');
    for (char& c : k) c = static_cast<char>('a' + in.u8() % 8);
    return k;
}

/// Inline-sized most of the time, sometimes an arena record.
std::string pick_value(input& in)
{
    const std::uint8_t b = in.u8();
    static constexpr std::size_t sizes[] = {0, 1, 7, 20, 29, 33, 100, 700};
    std::string v(sizes[b % 8], '\0');
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<char>(b + k * 7);
    return v;
}

struct kv_run {
    explicit kv_run(std::string n) : name(std::move(n)), store(name) {}

    std::string name;
    shmkit::kv_store store;
    std::optional<shmkit::kv_store> other; ///< a second handle, opened on first use
    model_map model;

    shmkit::kv_store& reader(input& in)
    {
        if (!in.flag()) return store;
        if (!other) other.emplace(name);
        return *other;
    }
};

void expect_value(const shmkit::kv_store& s, const model_map& m, const std::string& key, const char* what)
{
    const auto got = s.get(key);
    const auto it = m.find(key);
    if (got.has_value() != (it != m.end()) || (got && *got != it->second) || s.contains(key) != got.has_value())
        fail(std::string(what) + ": get/contains of '" + key + "' differ from the model");
}

void expect_all(const shmkit::kv_store& s, const model_map& m)
{
    if (s.get_all() != m || s.size() != m.size() || s.empty() != m.empty()) fail("get_all/size differ from the model");
    model_map seen;
    s.visit([&](std::string_view k, std::string_view v) {
        if (!seen.emplace(k, v).second) fail("visit: a key twice");
    });
    if (seen != m) fail("visit differs from the model");
}

void expect_stats(const shmkit::kv_store& s, const model_map& m)
{
    std::size_t bytes = 0;
    for (const auto& [k, v] : m) bytes += k.size() + v.size();
    const shmkit::kv_stats st = s.stats();
    if (st.entries != m.size() || st.bytes_used != bytes || st.load_factor > 0.8 || st.repairs != 0 ||
        st.lock_recoveries != 0)
        fail("stats() differ from the model");
    std::string why;
    if (!s.check(&why)) fail("check() failed: " + why);
}

void put_many(kv_run& r, input& in)
{
    // Mostly a few keys; now and then (1 in 8) enough to outgrow a table.
    const std::uint8_t b = in.u8();
    const std::size_t n = b < 32 ? 200 + in.u8() : 1 + b % 32;
    const std::string prefix = "m" + std::to_string(in.u8());
    for (std::size_t k = 0; k < n; ++k) {
        const std::string key = prefix + "." + std::to_string(k), value(k % 40, 'x');
        r.store.put(key, value);
        r.model[key] = value;
    }
}

void long_key_op(kv_run& r)
{
    const std::string key(shmkit::kv_store::max_key_size + 1, 'k');
    expect_throw<std::length_error>([&] { r.store.put(key, "v"); }, "put of a key too long");
    if (r.store.erase(key) || r.store.get(key) || r.store.contains(key)) fail("a key too long is found");
}

/// Cheap operations most of the time; those that build a table (a batch
/// that grows it, clear, reserve, a fresh exclusive handle) or read all of
/// it now and then.
void op(kv_run& r, std::uint8_t code, input& in)
{
    switch (code % 24) {
    case 15: return put_many(r, in);
    case 16:
        r.store.clear();
        r.model.clear();
        return;
    case 17: return r.store.reserve(in.u8() * std::size_t(2));
    case 18: return expect_all(r.reader(in), r.model);
    case 19: return expect_stats(r.reader(in), r.model);
    case 20: // the seed's EXCLUSIVE: a handle that starts from an empty store
        r.other.reset();
        r.other.emplace(r.name, shmkit::exclusive);
        r.model.clear();
        return;
    case 21:
        if (in.u8() == 0) long_key_op(r);
        return;
    default: break;
    }
    const std::uint8_t light = code % 24;
    const std::string k = pick_key(in);
    if (light < 6 || light >= 22) {
        const std::string v = pick_value(in);
        r.store.put(k, v);
        r.model[k] = v;
    } else if (light < 10) {
        expect_value(r.reader(in), r.model, k, "get");
    } else if (light < 13) {
        if (r.store.erase(k) != (r.model.erase(k) == 1)) fail("erase('" + k + "') differs from the model");
    } else {
        expect_value(r.store, r.model, k, "get after a put");
    }
}

} // namespace
} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace fuzz;
    input in(data, size);
    const std::string name = scratch_name("kv");
    {
        kv_run r(name);
        for (int ops = 0; !in.empty() && ops < 128; ++ops) op(r, in.u8(), in);
        expect_all(r.store, r.model);
        expect_stats(r.store, r.model);
        if (!shmkit::kv_store::remove(name)) fail("remove() found no store");
    }
    const std::vector<std::string> left = shm_entries(name);
    if (!left.empty()) fail("remove() left " + left.front() + " in /dev/shm");
    return 0;
}
