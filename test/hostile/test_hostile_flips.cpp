// Every single-bit flip of every byte of the common header of a valid
// segment of each kind (buffer, str_buffer, pool, raw_pool, str_pool, plain
// segment, kv_store root and table, share root and value segment), each
// opened by the structure itself and by inspect(): either it opens and shows
// the same state as before the flip, or it throws a shmkit::error naming
// the segment and leaves it byte-for-byte unchanged. Never a signal.
#define BOOST_TEST_MODULE hostile_flips
#include "specimens.hpp"

using namespace hostile;
namespace s = shmkit;

namespace {

constexpr std::size_t header_bytes = s::detail::header_size;
constexpr std::size_t init_word = offsetof(s::detail::segment_header, init_state);

/// Writes byte `value` at `offset` of `path`.
void poke(const std::string& path, std::size_t offset, char value)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || ::pwrite(fd, &value, 1, static_cast<off_t>(offset)) != 1)
        throw std::runtime_error("cannot write " + path);
    ::close(fd);
}

/// How the kind is reached: its own opener (at the place its bytes live)
/// and what errors name.
struct target {
    std::string kind;
    std::string path;    ///< where its bytes live
    std::string mention; ///< what a refusal names
    std::function<std::string()> open;
};

/// Flips every bit of the header of `t` in turn and opens it with `open`.
/// A kv_store root whose init word is flipped looks never initialised, and
/// a kv_store takes its name over (kv_options::init_timeout, 0 here),
/// unlinking the store's tables (`tables`) with it: that ending is counted
/// apart, and the root and the tables put back.
void flip_all(cases& c, const target& t, const std::string& via, const std::function<std::string()>& open,
              const std::vector<std::string>& tables = {})
{
    const bool takeover_allowed = !tables.empty();
    std::vector<std::string> table_bytes;
    for (const std::string& p : tables) table_bytes.push_back(content_of(p));
    const std::string original = content_of(t.path);
    c.begin(t.kind + " unflipped, opened by " + via);
    std::string reference;
    if (!c.returned(try_call([&] { reference = open(); }))) return;
    for (std::size_t byte = 0; byte < header_bytes; ++byte)
        for (int bit = 0; bit < 8; ++bit) {
            c.begin(t.kind + " header byte " + std::to_string(byte) + " bit " + std::to_string(bit) + ", opened by " +
                    via);
            poke(t.path, byte, static_cast<char>(original[byte] ^ (1 << bit)));
            const fingerprint before = fingerprint_of(t.path);
            std::string seen;
            const attempt a = try_call([&] { seen = open(); });
            const fingerprint after = fingerprint_of(t.path);
            if (takeover_allowed && byte >= init_word && byte < init_word + 4 && after.ino != before.ino) {
                c.tally("root taken over (init word)");
                c.check(::access(tables.front().c_str(), F_OK) != 0, "the taken-over store's table is still there");
                install(t.path, original);
                for (std::size_t i = 0; i < tables.size(); ++i) install(tables[i], table_bytes[i]);
                continue;
            }
            if (a.returned()) {
                c.tally("opened, same state");
                c.check(seen == reference, "opened with another state: " + seen + " instead of " + reference);
                c.check(after.ino == before.ino && after.mode == before.mode && after.uid == before.uid,
                        "the file was replaced or its mode changed");
            } else {
                c.refused(a, {}, t.mention);
                c.unchanged(t.path, before);
            }
            poke(t.path, byte, original[byte]);
        }
    c.check(content_of(t.path).substr(0, header_bytes) == original.substr(0, header_bytes),
            "the header was not restored");
}

} // namespace

BOOST_AUTO_TEST_CASE(every_bit_of_every_header)
{
    const site st("flips");
    run_family(
        "single-bit flips of every header",
        [&](cases& c) {
            const std::vector<specimen> specimens = make_specimens(st);
            const std::vector<opener> openers = all_openers();
            const auto opener_of = [&](const std::string& accepts) -> const opener& {
                for (const opener& o : openers)
                    if (o.accepts == accepts && o.name.find("from_fd") == std::string::npos) return o;
                throw std::logic_error("no opener for " + accepts);
            };
            std::vector<target> targets;
            const std::vector<std::string> file_kinds = {buffer_kind<std::int64_t>(), buffer_kind<double>(),
                                                         "str_buffer", pool_kind<std::int32_t>(), "raw_pool",
                                                         "str_pool", "segment"};
            for (const specimen& sp : specimens) {
                if (std::find(file_kinds.begin(), file_kinds.end(), sp.kind) == file_kinds.end()) continue;
                const std::string path = st.file("flip-" + std::to_string(targets.size()));
                install(path, sp.bytes);
                const opener& o = opener_of(sp.kind);
                targets.push_back({sp.kind, path, path, [&o, &st, path] { return o.open(st, path); }});
            }
            // The store and the share in place: a flipped table or value
            // segment is met when the value is read.
            const auto kv = [&st] { return observe(s::kv_store(st.kv_name(), small_kv(std::chrono::milliseconds(0)))); };
            const auto sh = [&st] { return observe(s::share(st.key, share_open())); };
            targets.push_back({"kv root", st.kv_root(), st.kv_name(), kv});
            targets.push_back({"kv table", kv_table_path(st), st.kv_name(), kv});
            targets.push_back({"share root", st.share_root(), s::share::native_name(st.key), sh});
            targets.push_back({"share value", share_value_path(st), s::share::native_name(st.key), sh});
            for (const target& t : targets) {
                flip_all(c, t, "itself", t.open,
                         t.kind == "kv root" ? std::vector<std::string>{kv_table_path(st)} : std::vector<std::string>{});
                flip_all(c, t, "inspect", [&] { return observe(s::inspect(t.path)); });
            }
        },
        std::chrono::seconds(60));
}
