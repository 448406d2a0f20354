// shmkit::inspect and the tool's read-only commands: `shmkit info`, `ls`,
// `stats` and `watch`, on real segments of every kind (and on files that are
// not segments, truncated or corrupted ones, entries and locks of killed
// processes): what they report, their JSON and Prometheus output, their
// exit codes, and that they change nothing in what they look at.
#define BOOST_TEST_MODULE tool_inspect
#include "tool_support.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/inspect.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include <grp.h>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace {

// ---- A strict little JSON parser: the tool's output must get through it ----------

struct jvalue {
    enum kind_t { null_v, bool_v, number_v, string_v, array_v, object_v } kind = null_v;
    bool b = false;
    std::string s; ///< a string, or a number's text
    std::vector<jvalue> items;
    std::vector<std::pair<std::string, jvalue>> members;

    bool has(const std::string& k) const
    {
        return std::any_of(members.begin(), members.end(), [&](const auto& m) { return m.first == k; });
    }
    const jvalue& operator[](const std::string& k) const
    {
        if (kind != object_v) throw std::runtime_error("json: not an object, looking for " + k);
        for (const auto& m : members)
            if (m.first == k) return m.second;
        throw std::runtime_error("json: no key " + k);
    }
    const jvalue& operator[](std::size_t i) const
    {
        if (kind != array_v) throw std::runtime_error("json: not an array");
        return items.at(i);
    }
    std::size_t size() const { return kind == array_v ? items.size() : members.size(); }
    std::uint64_t u() const
    {
        if (kind != number_v || s.find_first_not_of("0123456789") != std::string::npos)
            throw std::runtime_error("json: not an unsigned integer: " + s);
        return std::stoull(s);
    }
    const std::string& str() const
    {
        if (kind != string_v) throw std::runtime_error("json: not a string");
        return s;
    }
    bool boolean() const
    {
        if (kind != bool_v) throw std::runtime_error("json: not a boolean");
        return b;
    }
    bool is_null() const { return kind == null_v; }
};

class jparser {
public:
    /// Parses one JSON text (RFC 8259), throws std::runtime_error if it is not.
    static jvalue parse(std::string_view text)
    {
        jparser p(text);
        p.ws();
        jvalue v = p.value();
        p.ws();
        if (p.i_ != text.size()) p.fail("trailing bytes");
        return v;
    }

private:
    explicit jparser(std::string_view t) : t_(t) {}
    [[noreturn]] void fail(const std::string& what) const
    {
        throw std::runtime_error("json: " + what + " at byte " + std::to_string(i_));
    }
    char peek() const { return i_ < t_.size() ? t_[i_] : '\0'; }
    void expect(char c)
    {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++i_;
    }
    void ws()
    {
        while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t')) ++i_;
    }
    void literal(const char* word)
    {
        for (const char* p = word; *p; ++p) expect(*p);
    }
    jvalue value()
    {
        jvalue v;
        switch (peek()) {
        case '{': object(v); break;
        case '[': array(v); break;
        case '"':
            v.kind = jvalue::string_v;
            v.s = string();
            break;
        case 't': literal("true"), v.kind = jvalue::bool_v, v.b = true; break;
        case 'f': literal("false"), v.kind = jvalue::bool_v; break;
        case 'n': literal("null"); break;
        default: number(v);
        }
        return v;
    }
    void object(jvalue& v)
    {
        v.kind = jvalue::object_v;
        expect('{');
        ws();
        if (peek() == '}') return void(++i_);
        for (;;) {
            ws();
            std::string k = string();
            if (v.has(k)) fail("duplicate key " + k);
            ws();
            expect(':');
            ws();
            v.members.emplace_back(std::move(k), value());
            ws();
            if (peek() == ',') ++i_;
            else return expect('}');
        }
    }
    void array(jvalue& v)
    {
        v.kind = jvalue::array_v;
        expect('[');
        ws();
        if (peek() == ']') return void(++i_);
        for (;;) {
            ws();
            v.items.push_back(value());
            ws();
            if (peek() == ',') ++i_;
            else return expect(']');
        }
    }
    void number(jvalue& v)
    {
        const std::size_t start = i_;
        if (peek() == '-') ++i_;
        if (peek() == '0') ++i_;
        else if (peek() >= '1' && peek() <= '9') digits();
        else fail("expected a value");
        if (peek() == '.') ++i_, digits();
        if (peek() == 'e' || peek() == 'E') {
            ++i_;
            if (peek() == '+' || peek() == '-') ++i_;
            digits();
        }
        v.kind = jvalue::number_v;
        v.s = std::string(t_.substr(start, i_ - start));
    }
    void digits()
    {
        if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a digit");
        while (std::isdigit(static_cast<unsigned char>(peek()))) ++i_;
    }
    unsigned hex4()
    {
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = peek();
            ++i_;
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    static void utf8(std::string& out, unsigned cp)
    {
        if (cp < 0x80) out += char(cp);
        else if (cp < 0x800) out += char(0xc0 | cp >> 6), out += char(0x80 | (cp & 0x3f));
        else if (cp < 0x10000)
            out += char(0xe0 | cp >> 12), out += char(0x80 | (cp >> 6 & 0x3f)), out += char(0x80 | (cp & 0x3f));
        else
            out += char(0xf0 | cp >> 18), out += char(0x80 | (cp >> 12 & 0x3f)), out += char(0x80 | (cp >> 6 & 0x3f)),
                out += char(0x80 | (cp & 0x3f));
    }
    void escape(std::string& out)
    {
        const char c = peek();
        ++i_;
        switch (c) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
            unsigned cp = hex4();
            if (cp >= 0xd800 && cp < 0xdc00) {
                expect('\\');
                expect('u');
                const unsigned lo = hex4();
                if (lo < 0xdc00 || lo > 0xdfff) fail("bad surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                fail("lone surrogate");
            }
            utf8(out, cp);
            break;
        }
        default: fail("bad escape");
        }
    }
    std::string string()
    {
        expect('"');
        std::string out;
        for (;;) {
            if (i_ >= t_.size()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(t_[i_]);
            if (c == '"') break;
            if (c < 0x20) fail("raw control character in a string");
            ++i_;
            if (c == '\\') escape(out);
            else out += char(c);
        }
        ++i_;
        return out;
    }

    std::string_view t_;
    std::size_t i_ = 0;
};

jvalue parse_json(const std::string& text)
{
    try {
        return jparser::parse(text);
    } catch (const std::exception& e) {
        BOOST_TEST_MESSAGE("not JSON: " << text);
        throw;
    }
}

// ---- Prometheus text format ------------------------------------------------------

/// Empty if `text` is well-formed exposition format as the tool writes it:
/// every sample `name{label="value",...} number`, its metric's # HELP and
/// # TYPE (counter or gauge) before it, counters named *_total, names
/// prefixed shmkit_, a segment label; otherwise what is wrong.
std::string prometheus_problem(const std::string& text)
{
    static const std::regex sample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\} (-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)$)");
    static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
    static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
    std::set<std::string> helped, sampled;
    std::map<std::string, std::string> typed;
    std::istringstream in(text);
    std::string line;
    int samples = 0;
    if (text.empty() || text.back() != '\n') return "does not end with a line feed";
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_match(line, m, help)) {
            if (sampled.count(m[1]) || !helped.insert(m[1]).second) return "HELP after samples or twice: " + line;
        } else if (std::regex_match(line, m, type)) {
            if (!helped.count(m[1]) || sampled.count(m[1]) || typed.count(m[1])) return "TYPE out of place: " + line;
            typed[m[1]] = m[2];
        } else if (line.rfind("# ", 0) == 0) {
            continue; // a plain comment (watch's round line)
        } else if (std::regex_match(line, m, sample)) {
            const std::string name = m[1];
            if (!typed.count(name)) return "sample without HELP/TYPE before it: " + line;
            if (name.rfind("shmkit_", 0) != 0) return "not prefixed shmkit_: " + line;
            const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
            if ((typed[name] == "counter") != total) return "counter not named *_total (or a gauge that is): " + line;
            if (std::string(m[2]).find("segment=\"") != 0) return "no segment label: " + line;
            sampled.insert(name);
            ++samples;
        } else {
            return "malformed line: '" + line + "'";
        }
    }
    return samples > 0 ? "" : "no samples";
}

// ---- Helpers -------------------------------------------------------------------

/// The `name value` lines of `shmkit stats` as a map; fails the test on any other line.
std::map<std::string, std::uint64_t> plain_stats(const std::string& text)
{
    static const std::regex line_re(R"(^([a-z_]+) ([0-9]+)$)");
    std::map<std::string, std::uint64_t> v;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(line, m, line_re), "bad stats line '" << line << "'");
        v[m[1]] = std::stoull(m[2]);
    }
    return v;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::size_t count_of(const std::string& hay, const std::string& needle)
{
    std::size_t n = 0;
    for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

/// `shmkit info TARGET --json`, parsed; requires exit status 0.
jvalue info_json(const std::string& target)
{
    const auto r = test::run_tool({"info", target, "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, "info " << target << ": " << r.err);
    BOOST_TEST(r.err.empty());
    return parse_json(r.out);
}

/// The JSON object of the entry of `pid` in a report, or nullptr.
const jvalue* entry_of(const jvalue& report, pid_t pid)
{
    for (const jvalue& e : report["entries"].items)
        if (e["pid"].u() == static_cast<std::uint64_t>(pid)) return &e;
    return nullptr;
}

/// This suite's shares: keys 0x5fPPPPNN.
using share_guard = test::share_guard<0x5f>;
using test::kv_guard;
using test::lock_layout;

/// A child that opens the raw segment at `path`, takes what `hold` takes,
/// says so on `ready` and waits to be killed.
test::child holder(const std::string& path, const test::pipe_pair& ready,
                   const std::function<void(shmkit::segment&)>& hold)
{
    return test::child([&, path]() -> int {
        shmkit::segment s = shmkit::segment::file(shmkit::open_only, path);
        hold(s);
        ready.send();
        for (;;) ::pause();
    });
}

/// A segment (in a scratch directory) with an attach entry of a killed
/// process, a rwlock and a mutex held by it, and a read lock of another
/// killed process; this process keeps its own handle.
struct killed_holders {
    test::scratch_dir dir;
    std::string path = dir / "locks";
    shmkit::segment seg = shmkit::segment::file(shmkit::create_only, path, lock_layout());
    pid_t writer = 0, reader = 0;

    killed_holders()
    {
        test::pipe_pair ready;
        test::child w = holder(path, ready, [](shmkit::segment& s) {
            s.rwlock(0).lock();
            s.mutex(0).lock();
        });
        test::child r = holder(path, ready, [](shmkit::segment& s) { s.rwlock(1).lock_shared(); });
        BOOST_REQUIRE(ready.receive(30s) == 'x' && ready.receive(30s) == 'x');
        writer = w.pid();
        reader = r.pid();
        w.kill();
        r.kill();
        BOOST_REQUIRE(w.wait() == 128 + SIGKILL);
        BOOST_REQUIRE(r.wait() == 128 + SIGKILL);
    }
};

} // namespace

// ==== inspect (the library) ==========================================================

BOOST_AUTO_TEST_SUITE(inspect)

BOOST_AUTO_TEST_CASE(a_buffer_reports_its_header_this_process_alive_and_its_summary)
{
    test::shm_name n("ibuf");
    shmkit::buffer<std::int64_t> b(shmkit::create_only, n.path(), 100);
    b.set(7, 42);
    const shmkit::segment_report r = shmkit::inspect(shmkit::posix_name, n.str());
    BOOST_TEST(r.path == n.path());
    BOOST_TEST(r.name == n.str());
    BOOST_TEST(r.kind_name == "buffer");
    BOOST_TEST(r.elem_type_name == "int64");
    BOOST_TEST(r.elem_size == 8u);
    BOOST_TEST(r.capacity == 100u);
    BOOST_TEST(r.file_size == b.mmap_size());
    BOOST_TEST(r.total_size == b.mmap_size());
    BOOST_TEST(r.memory_size > 0u);
    BOOST_TEST(r.format_version == 2u);
    BOOST_TEST(r.created_ns > 0u);
    BOOST_TEST(r.attach_capacity == 128u);
    BOOST_TEST(r.attaches == 1u);
    BOOST_TEST_REQUIRE(r.entries.size() == 1u);
    BOOST_TEST(r.entries[0].pid == static_cast<std::uint32_t>(::getpid()));
    BOOST_TEST(r.entries[0].liveness == shmkit::process_liveness::alive);
    BOOST_TEST(r.entries[0].ofd_backed);
    BOOST_TEST(r.attached_alive() == 1u);
    BOOST_TEST(r.attached_dead() == 0u);
    BOOST_TEST_REQUIRE(r.locks.size() == 1u);
    BOOST_TEST(!r.locks[0].held());
    BOOST_TEST_REQUIRE(r.buffer.has_value());
    BOOST_TEST(r.buffer->elements == 100u);
    BOOST_TEST(r.buffer->type == shmkit::element_type::i64);
    BOOST_TEST(!r.buffer->write_open);
    BOOST_TEST(!r.pool.has_value());
    // The path overload sees the same segment (without a POSIX name).
    const shmkit::segment_report p = shmkit::inspect(n.path());
    BOOST_TEST(p.name.empty());
    BOOST_TEST(p.capacity == 100u);
}

BOOST_AUTO_TEST_CASE(a_killed_process_shows_as_a_dead_entry_and_dead_lock_holder_without_being_reclaimed)
{
    killed_holders k;
    const shmkit::segment_report r = shmkit::inspect(k.path);
    BOOST_TEST(r.attached_alive() == 1u); // this process
    BOOST_TEST(r.attached_dead() == 2u);
    BOOST_TEST(r.attaches == 3u);
    BOOST_TEST(r.reclaimed == 0u);
    BOOST_TEST_REQUIRE(r.locks.size() == 3u);
    const shmkit::lock_report& w = r.locks[0];
    BOOST_TEST(w.type == shmkit::lock_type::rwlock);
    BOOST_TEST(w.held());
    BOOST_TEST(w.held_by_dead());
    BOOST_TEST(w.holder_pid == static_cast<std::uint32_t>(k.writer));
    BOOST_TEST(r.locks[1].holder_token == 0u);
    BOOST_TEST(r.locks[1].readers == 1u);
    BOOST_TEST(r.locks[1].dead_readers == 1u);
    BOOST_TEST(r.locks[2].type == shmkit::lock_type::mutex);
    BOOST_TEST(r.locks[2].holder_pid == static_cast<std::uint32_t>(k.writer));
    BOOST_TEST(r.locks[2].held_by_dead());
    BOOST_TEST(r.locks_held() == 3u);
    // Nothing was reclaimed or recovered by looking: the library still finds
    // the dead entries, and recovers the locks itself.
    BOOST_TEST(k.seg.stats().attached_dead == 2u);
    auto l = k.seg.rwlock(0);
    l.lock();
    BOOST_TEST(l.recovered());
    const shmkit::segment_report after = shmkit::inspect(k.path);
    BOOST_TEST(after.locks[0].dirty);
    BOOST_TEST(after.locks[0].recoveries == 1u);
    BOOST_TEST(after.locks[0].holder_pid == static_cast<std::uint32_t>(::getpid()));
    BOOST_TEST(after.locks[0].holder_liveness == shmkit::process_liveness::alive);
    l.unlock();
    BOOST_TEST(!shmkit::inspect(k.path).locks[0].dirty);
}

BOOST_AUTO_TEST_CASE(files_that_are_not_whole_segments_are_refused_with_the_matching_error)
{
    test::scratch_dir d;
    const auto code = [](const std::string& path) { return test::error_code_of([&] { shmkit::inspect(path); }); };
    test::write_file(d / "text", "hello, world\n");
    test::write_file(d / "empty", "");
    BOOST_TEST(code(d / "text") == static_cast<int>(shmkit::errc::not_a_segment));
    BOOST_TEST(code(d / "empty") == static_cast<int>(shmkit::errc::not_a_segment));
    BOOST_TEST(code(d.path()) == static_cast<int>(shmkit::errc::not_a_segment)); // a directory
    BOOST_TEST(code(d / "missing") == ENOENT);
    {
        shmkit::buffer<std::int32_t> b(shmkit::create_only, d / "good", 1000);
    }
    const std::string good = test::read_file(d / "good");
    test::write_file(d / "truncated", good.substr(0, good.size() / 2));
    test::write_file(d / "short", good.substr(0, 100));
    std::string bad = good;
    bad[offsetof(shmkit::detail::segment_header, capacity)] ^= 1;
    test::write_file(d / "corrupt", bad);
    BOOST_TEST(code(d / "truncated") == static_cast<int>(shmkit::errc::truncated));
    BOOST_TEST(code(d / "short") == static_cast<int>(shmkit::errc::truncated));
    BOOST_TEST(code(d / "corrupt") == static_cast<int>(shmkit::errc::corrupt_header));
    BOOST_TEST(::symlink((d / "good").c_str(), (d / "link").c_str()) == 0);
    BOOST_TEST(code(d / "link") == ELOOP);
    BOOST_CHECK_THROW(shmkit::inspect(shmkit::posix_name, "a/b"), std::invalid_argument);
    try {
        shmkit::inspect(d / "text");
    } catch (const shmkit::error& e) {
        BOOST_TEST(contains(e.what(), d / "text"));
        BOOST_TEST(contains(e.what(), "not a shmkit segment"));
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ==== shmkit info ============================================================================

BOOST_AUTO_TEST_SUITE(info)

BOOST_AUTO_TEST_CASE(a_buffer_is_found_by_name_by_slash_name_and_by_path)
{
    test::shm_name n("buf");
    shmkit::buffer<std::int64_t> b(shmkit::create_only, n.path(), 100);
    const auto by_slash = test::run_tool({"info", n.str()});
    BOOST_TEST(by_slash.status == 0);
    BOOST_TEST(contains(by_slash.out, "kind:         buffer\n"));
    BOOST_TEST(contains(by_slash.out, "element type: int64, 8 bytes\n"));
    BOOST_TEST(contains(by_slash.out, "capacity:     100\n"));
    BOOST_TEST(contains(by_slash.out, "(POSIX name " + n.str() + ")"));
    BOOST_TEST(contains(by_slash.out, "attached:     1 alive, 0 dead\n"));
    const auto by_name = test::run_tool({"info", n.str().substr(1)});
    BOOST_TEST(by_name.status == 0);
    BOOST_TEST(by_name.out == by_slash.out);
    const auto by_path = test::run_tool({"info", n.path()});
    BOOST_TEST(by_path.status == 0);
    BOOST_TEST(!contains(by_path.out, "POSIX name"));

    const jvalue j = info_json(n.str());
    BOOST_TEST(j["kind"].str() == "buffer");
    BOOST_TEST(j["element_type"].str() == "int64");
    BOOST_TEST(j["capacity"].u() == 100u);
    BOOST_TEST(j["name"].str() == n.str());
    BOOST_TEST(j["path"].str() == n.path());
    BOOST_TEST(j["file_size"].u() == b.mmap_size());
    BOOST_TEST(j["params"].size() == 4u);
    BOOST_TEST(j["last_recovery"].is_null());
    BOOST_TEST(j["buffer"]["elements"].u() == 100u);
    BOOST_TEST(j["attached_alive"].u() == 1u);
    const jvalue* me = entry_of(j, ::getpid());
    BOOST_TEST_REQUIRE(me != nullptr);
    BOOST_TEST((*me)["state"].str() == "alive");
    BOOST_TEST((*me)["alive"].boolean());
    BOOST_TEST(j["locks"].size() == 1u);
    BOOST_TEST(!j["locks"][0]["held"].boolean());
    BOOST_TEST(j["locks"][0]["holder"].is_null());
    const auto path_json = info_json(n.path());
    BOOST_TEST(path_json["name"].is_null());
}

BOOST_AUTO_TEST_CASE(a_pool_shows_its_used_slots_and_those_of_a_killed_owner)
{
    test::shm_name n("pool");
    shmkit::pool<std::int64_t> p(shmkit::create_only, n.path(), 16);
    for (int i = 0; i < 3; ++i) BOOST_REQUIRE(p.try_alloc().has_value());
    test::pipe_pair ready;
    test::child owner([&]() -> int {
        shmkit::pool<std::int64_t> mine(shmkit::open_only, n.path());
        if (!mine.try_alloc() || !mine.try_alloc()) return 1;
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    const jvalue live = info_json(n.str());
    BOOST_TEST(live["pool"]["used"].u() == 5u);
    BOOST_TEST(live["pool"]["dead_owned"].u() == 0u);
    BOOST_TEST(live["attached_alive"].u() == 2u);
    const pid_t owner_pid = owner.pid();
    owner.kill();
    BOOST_REQUIRE(owner.wait() == 128 + SIGKILL);

    const jvalue j = info_json(n.str());
    BOOST_TEST(j["kind"].str() == "pool");
    BOOST_TEST(j["pool"]["slots"].u() == 16u);
    BOOST_TEST(j["pool"]["slot_size"].u() == 8u);
    BOOST_TEST(j["pool"]["used"].u() == 5u);
    BOOST_TEST(j["pool"]["dead_owned"].u() == 2u);
    BOOST_TEST(j["pool"]["available"].u() == 11u);
    BOOST_TEST(j["pool"]["allocs"].u() == 5u);
    BOOST_TEST(j["attached_alive"].u() == 1u);
    BOOST_TEST(j["attached_dead"].u() == 1u);
    const jvalue* dead = entry_of(j, owner_pid);
    BOOST_TEST_REQUIRE(dead != nullptr);
    BOOST_TEST((*dead)["state"].str() == "dead");
    BOOST_TEST(!(*dead)["alive"].boolean());

    const auto text = test::run_tool({"info", n.str()});
    BOOST_TEST(text.status == 0);
    BOOST_TEST(contains(text.out, "used 5 (2 held by dead owners), available 11"));
    BOOST_TEST(contains(text.out, "attached:     1 alive, 1 dead"));
    const auto st = test::run_tool({"stats", n.str()});
    BOOST_TEST(st.status == 0);
    const auto v = plain_stats(st.out);
    BOOST_TEST(v.at("pool_used") == 5u);
    BOOST_TEST(v.at("pool_dead_owned") == 2u);
    BOOST_TEST(v.at("pool_capacity") == 16u);
    BOOST_TEST(v.at("attached_dead") == 1u);
    BOOST_TEST(v.at("attached_alive") == 1u);
    BOOST_TEST(v.at("attaches") == 2u);
    // The library agrees, and recovers what the tool only reported.
    BOOST_TEST(p.recover_stale() == 2u);
    BOOST_TEST(info_json(n.str())["pool"]["used"].u() == 3u);
}

// An owner id holds the low 52 bits of its entry's generation. With a
// generation beyond them (damaged memory: no real count of claims gets
// there) the pool still knows its live owner (test_attach); inspect and
// check_segment must not report that owner dead either.
BOOST_AUTO_TEST_CASE(a_live_owner_stays_alive_in_reports_whatever_its_entry_generation)
{
    test::shm_name n("pool");
    shmkit::pool<std::int64_t> p(shmkit::create_only, n.path(), 4);
    BOOST_REQUIRE(p.try_alloc().has_value());
    {
        shmkit::segment_expectation any_pool;
        any_pool.kind = shmkit::structure_kind::pool;
        shmkit::segment s = shmkit::segment::file(shmkit::open_only, n.path(), any_pool);
        // The pool's handle claimed the first entry; this one the second.
        s.attachment().entry(0).generation.fetch_add(std::uint64_t(1) << 52);
    }
    const shmkit::check_report c = shmkit::check_segment(n.path());
    BOOST_TEST_REQUIRE(c.report.pool.has_value());
    BOOST_TEST(c.report.pool->used == 1u);
    BOOST_TEST(c.report.pool->dead_owned == 0u);
    BOOST_TEST(c.ok(), (c.corruption.empty() ? std::string() : c.corruption.front()));
    BOOST_TEST(shmkit::inspect(n.path()).pool->dead_owned == 0u);
    BOOST_TEST(p.recover_stale() == 0u);
    BOOST_TEST(p.used() == 1u);
}

BOOST_AUTO_TEST_CASE(a_kv_store_root_shows_its_current_table_and_the_table_itself)
{
    kv_guard g("inspect");
    shmkit::kv_store kv(g.name);
    for (int i = 0; i < 20; ++i) kv.put("key" + std::to_string(i), std::string(i * 10, 'v'));
    BOOST_REQUIRE(kv.erase("key3"));
    const jvalue root = info_json(g.name);
    BOOST_TEST(root["kind"].str() == "kv_store");
    BOOST_TEST(root["role"].str() == "root");
    BOOST_TEST(root["kv"]["generation"].u() >= 1u);
    BOOST_TEST_REQUIRE(!root["kv"]["table"].is_null());
    BOOST_TEST(root["kv"]["table"]["entries"].u() == 19u);
    BOOST_TEST(root["kv"]["table"]["erased"].u() == 1u);
    const std::string table = root["kv"]["table_path"].str();
    BOOST_TEST(table.rfind("/dev/shm/" + g.name + "~", 0) == 0);
    const jvalue t = info_json(table);
    BOOST_TEST(t["role"].str() == "table");
    BOOST_TEST(t["element_type"].str() == "bytes");
    BOOST_TEST(t["kv"]["table"]["entries"].u() == 19u);
    BOOST_TEST(t["kv"]["generation"].u() == root["kv"]["generation"].u());
    const auto v = plain_stats(test::run_tool({"stats", g.name}).out);
    BOOST_TEST(v.at("kv_entries") == 19u);
    BOOST_TEST(v.at("kv_generation") == root["kv"]["generation"].u());
    const auto text = test::run_tool({"info", "/" + g.name});
    BOOST_TEST(contains(text.out, "entries 19, erased 1"));
}

BOOST_AUTO_TEST_CASE(a_share_is_found_by_key_with_its_version_and_where_its_value_is)
{
    share_guard k;
    shmkit::share_options o;
    o.create = true;
    shmkit::share s(k.key, o);
    s.store("hello");
    jvalue j = info_json(k.target());
    BOOST_TEST(j["kind"].str() == "share");
    BOOST_TEST(j["role"].str() == "root");
    BOOST_TEST(j["name"].str() == "/" + shmkit::share::native_name(k.key));
    BOOST_TEST(j["share"]["key"].u() == static_cast<std::uint32_t>(k.key));
    BOOST_TEST(j["share"]["version"].u() == 2u);
    BOOST_TEST(j["share"]["value_size"].u() == 5u);
    BOOST_TEST(j["share"]["value_inline"].boolean());
    BOOST_TEST(j["share"]["value_path"].is_null());
    // A value too large for the root goes to a value segment.
    s.store(std::string(200000, 'x'));
    j = info_json(k.target());
    BOOST_TEST(j["share"]["version"].u() == 3u);
    BOOST_TEST(j["share"]["value_size"].u() == 200000u);
    BOOST_TEST(!j["share"]["value_inline"].boolean());
    const jvalue value = info_json(j["share"]["value_path"].str());
    BOOST_TEST(value["role"].str() == "value");
    BOOST_TEST(value["share"]["value_size"].u() >= 200000u);
    const auto v = plain_stats(test::run_tool({"stats", k.target()}).out);
    BOOST_TEST(v.at("share_version") == 3u);
    BOOST_TEST(v.at("share_value_bytes") == 200000u);
    BOOST_TEST(v.at("share_value_inline") == 0u);
    // Hexadecimal keys name the same share.
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(k.key));
    BOOST_TEST(test::run_tool({"info", std::string("share:") + hex}).status == 0);
}

BOOST_AUTO_TEST_CASE(locks_and_entries_of_killed_processes_are_shown_dead_with_their_pids)
{
    killed_holders k;
    const jvalue j = info_json(k.path);
    BOOST_TEST(j["kind"].str() == "segment");
    BOOST_TEST(j["attached_dead"].u() == 2u);
    BOOST_TEST(j["locks_held"].u() == 3u);
    const jvalue& w = j["locks"][0];
    BOOST_TEST(w["type"].str() == "rwlock");
    BOOST_TEST(w["held"].boolean());
    BOOST_TEST(w["exclusive"].boolean());
    BOOST_TEST(w["holder"]["pid"].u() == static_cast<std::uint64_t>(k.writer));
    BOOST_TEST(w["holder"]["state"].str() == "dead");
    BOOST_TEST(!w["holder"]["alive"].boolean());
    const jvalue& r = j["locks"][1];
    BOOST_TEST(r["held"].boolean());
    BOOST_TEST(!r["exclusive"].boolean());
    BOOST_TEST(r["readers"].u() == 1u);
    BOOST_TEST(r["dead_readers"].u() == 1u);
    const jvalue& m = j["locks"][2];
    BOOST_TEST(m["type"].str() == "mutex");
    BOOST_TEST(m["holder"]["pid"].u() == static_cast<std::uint64_t>(k.writer));
    BOOST_TEST_REQUIRE(entry_of(j, k.reader) != nullptr);
    BOOST_TEST((*entry_of(j, k.reader))["readers"][1].u() == 1u);
    const auto text = test::run_tool({"info", k.path});
    BOOST_TEST(contains(text.out, "rwlock 0: held by pid " + std::to_string(k.writer) + " (dead"));
    BOOST_TEST(contains(text.out, "mutex 0: held by pid " + std::to_string(k.writer) + " (dead"));
    BOOST_TEST(contains(text.out, "readers 1 (1 dead)"));
    BOOST_TEST(contains(text.out, "last recovery: never")); // held by the dead, not recovered yet
    BOOST_TEST(j["last_recovery"].is_null());

    // After the library recovered the writer: counters and the dirty mark.
    auto l = k.seg.rwlock(0);
    l.lock();
    const jvalue after = info_json(k.path);
    BOOST_TEST(after["locks"][0]["dirty"].boolean());
    BOOST_TEST(after["locks"][0]["recoveries"].u() == 1u);
    BOOST_TEST(after["locks"][0]["holder"]["state"].str() == "alive");
    BOOST_TEST(after["locks_dirty"].u() == 1u);
    // Stamped by the takeover: now-ish (the wall clock, so only its year is checked).
    BOOST_TEST(!after["last_recovery"].is_null());
    BOOST_TEST(contains(test::run_tool({"info", k.path}).out, "last recovery: 20"));
    l.unlock();
    const auto v = plain_stats(test::run_tool({"stats", k.path}).out);
    BOOST_TEST(v.at("lock_recoveries") >= 1u);
    BOOST_TEST(v.at("locks_dirty") == 0u);
}

BOOST_AUTO_TEST_CASE(missing_targets_and_files_that_are_not_segments_are_exit_1_with_a_message)
{
    test::scratch_dir d;
    test::write_file(d / "text", "not a segment at all\n");
    {
        shmkit::buffer<std::int32_t> b(shmkit::create_only, d / "good", 1000);
    }
    const std::string good = test::read_file(d / "good");
    test::write_file(d / "truncated", good.substr(0, 4096));
    std::string bad = good;
    bad[offsetof(shmkit::detail::segment_header, capacity)] ^= 1;
    test::write_file(d / "corrupt", bad);
    share_guard k;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {d / "text", "not a shmkit segment"},
        {d / "missing", "No such file"},
        {d / "truncated", "header says"},
        {d / "corrupt", "checksum"},
        {d.path(), "not a regular file"},
        {"/shmkit-test-no-such-segment-" + std::to_string(::getpid()), "No such file"},
        {k.target(), "no native share"}};
    for (const auto& [target, message] : cases) {
        for (const char* cmd : {"info", "stats"}) {
            const auto r = test::run_tool({cmd, target});
            BOOST_TEST(r.status == 1, cmd << " " << target);
            BOOST_TEST(r.out.empty());
            BOOST_TEST(contains(r.err, message), cmd << " " << target << ": " << r.err);
        }
    }
}

BOOST_AUTO_TEST_CASE(usage_errors_are_exit_2)
{
    for (const std::vector<std::string>& a :
         {std::vector<std::string>{"info"}, {"info", "a", "b"}, {"info", "x", "--bogus"}, {"info", "share:"},
          {"info", "share:abcde"}, {"info", "share:0xfffffffff"}, {"info", ""}, {"info", "/"}, {"info", ".."},
          {"stats"}, {"stats", "x", "--interval", "1"}, {"watch"}, {"watch", "x", "--interval", "0"},
          {"watch", "x", "--interval", "abc"}, {"watch", "x", "--count", "0"}, {"ls", "--bogus"}, {"ls", ""}}) {
        const auto r = test::run_tool(a);
        BOOST_TEST(r.status == 2, a.size() << " args, first " << (a.size() > 1 ? a[1] : a[0]));
        BOOST_TEST(r.out.empty());
        BOOST_TEST(!r.err.empty());
    }
    for (const char* cmd : {"info", "ls", "stats", "watch"}) {
        const auto h = test::run_tool({cmd, "--help"});
        BOOST_TEST(h.status == 0);
        BOOST_TEST(contains(h.out, std::string("usage: shmkit ") + cmd));
    }
    const auto all = test::run_tool({"--help"});
    for (const char* cmd : {"info", "ls", "stats", "watch"}) BOOST_TEST(contains(all.out, std::string("  ") + cmd));
}

BOOST_AUTO_TEST_SUITE_END()

// ==== shmkit ls =======================================================================

BOOST_AUTO_TEST_SUITE(ls)

BOOST_AUTO_TEST_CASE(lists_segments_skips_other_files_silently_and_reports_damaged_ones)
{
    test::scratch_dir d;
    shmkit::buffer<double> b(shmkit::create_only, d / "buf", 50);
    shmkit::pool<std::int32_t> p(shmkit::create_only, d / "pool", 8);
    BOOST_REQUIRE(p.try_alloc().has_value());
    test::write_file(d / "plain", "just text\n");
    test::write_file(d / "empty", "");
    BOOST_REQUIRE(::mkdir((d / "subdir").c_str(), 0700) == 0);
    BOOST_REQUIRE(::symlink((d / "buf").c_str(), (d / "link").c_str()) == 0);
    const std::string good = test::read_file(d / "buf");
    test::write_file(d / "broken", good.substr(0, 4096));

    const auto r = test::run_tool({"ls", d.path()});
    BOOST_TEST(r.status == 0);
    std::istringstream lines(r.out);
    std::vector<std::string> rows;
    for (std::string line; std::getline(lines, line);) rows.push_back(line);
    BOOST_TEST_REQUIRE(rows.size() == 3u); // header, buf, pool
    BOOST_TEST(rows[0].rfind("NAME", 0) == 0);
    BOOST_TEST(contains(rows[0], "KIND"));
    BOOST_TEST(rows[1].rfind(d / "buf", 0) == 0);
    BOOST_TEST(contains(rows[1], "buffer"));
    BOOST_TEST(contains(rows[1], "double"));
    BOOST_TEST(rows[2].rfind(d / "pool", 0) == 0);
    BOOST_TEST(contains(rows[2], "int32"));
    for (const char* other : {"plain", "empty", "subdir", "link"}) {
        BOOST_TEST(!contains(r.out, d / other));
        BOOST_TEST(!contains(r.err, d / other));
    }
    BOOST_TEST(contains(r.err, d / "broken"));
    BOOST_TEST(contains(r.err, "not listed"));

    const auto j = test::run_tool({"ls", "--json", d.path() + "/"});
    BOOST_TEST(j.status == 0);
    const jvalue a = parse_json(j.out);
    BOOST_TEST_REQUIRE(a.size() == 2u);
    BOOST_TEST(a[0]["name"].str() == d / "buf");
    BOOST_TEST(a[0]["path"].str() == d / "buf");
    BOOST_TEST(a[0]["kind"].str() == "buffer");
    BOOST_TEST(a[0]["element_type"].str() == "double");
    BOOST_TEST(a[0]["capacity"].u() == 50u);
    BOOST_TEST(a[0]["file_size"].u() == b.mmap_size());
    BOOST_TEST(a[0]["memory_size"].u() > 0u);
    BOOST_TEST(a[0]["attached_alive"].u() == 1u);
    BOOST_TEST(a[0]["attached_dead"].u() == 0u);
    BOOST_TEST(a[1]["kind"].str() == "pool");
    BOOST_TEST(a[1]["locks_held"].u() == 0u);

    // A directory that cannot be read: exit 1, the others still listed.
    const auto missing = test::run_tool({"ls", d / "nope", d.path()});
    BOOST_TEST(missing.status == 1);
    BOOST_TEST(contains(missing.err, d / "nope"));
    BOOST_TEST(contains(missing.out, d / "buf"));
    // An empty directory: only the header, or an empty array.
    test::scratch_dir none;
    BOOST_TEST(test::run_tool({"ls", none.path()}).status == 0);
    BOOST_TEST(parse_json(test::run_tool({"ls", none.path(), "--json"}).out).size() == 0u);
}

BOOST_AUTO_TEST_CASE(segments_in_dev_shm_are_listed_by_default_under_their_posix_names)
{
    test::shm_name n("ls");
    shmkit::buffer<std::uint8_t> b(shmkit::create_only, n.path(), 10);
    // Other programs' files may come and go in /dev/shm meanwhile: only ours is checked.
    const auto r = test::run_tool({"ls"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(contains(r.out, "\n" + n.str() + " "));
    const jvalue a = parse_json(test::run_tool({"ls", "--json"}).out);
    bool found = false;
    for (const jvalue& s : a.items)
        if (s["name"].str() == n.str()) {
            found = true;
            BOOST_TEST(s["path"].str() == n.path());
            BOOST_TEST(s["element_type"].str() == "uint8");
        }
    BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(names_with_quotes_control_characters_and_invalid_utf8_stay_well_formed)
{
    test::scratch_dir d;
    const std::string name = "we\"ird\\ na\nme\t\x01\xff\xc3\xa9";
    shmkit::buffer<std::int16_t> b(shmkit::create_only, d / name, 4);
    const auto j = test::run_tool({"ls", "--json", d.path()});
    BOOST_TEST(j.status == 0);
    const jvalue a = parse_json(j.out);
    BOOST_TEST_REQUIRE(a.size() == 1u);
    // Valid UTF-8 (é) passes; the invalid byte becomes U+FFFD.
    BOOST_TEST(a[0]["name"].str() == d / "we\"ird\\ na\nme\t\x01\xef\xbf\xbd\xc3\xa9");
    BOOST_TEST(count_of(j.out, "\n") == 1u);
    const auto t = test::run_tool({"ls", d.path()});
    BOOST_TEST(t.status == 0);
    BOOST_TEST(count_of(t.out, "\n") == 2u); // the name stays on its line
    BOOST_TEST(contains(t.out, "we\"ird\\\\ na\\nme\\t\\x01\\xff\xc3\xa9"));
    BOOST_TEST(!contains(t.out, "\x01"));
    BOOST_TEST(info_json(d / name)["path"].str() == a[0]["name"].str());
}

BOOST_AUTO_TEST_CASE(unreadable_files_are_reported_on_stderr_and_the_rest_listed)
{
    test::scratch_dir d;
    BOOST_REQUIRE(::chmod(d.path().c_str(), 0755) == 0);
    shmkit::structure_options open;
    open.mode = 0644;
    shmkit::buffer<std::int64_t> readable(shmkit::create_only, d / "readable", 10, open);
    shmkit::structure_options closed;
    closed.mode = 0600;
    shmkit::buffer<std::int64_t> secret(shmkit::create_only, d / "secret", 10, closed);
    if (::geteuid() != 0) BOOST_REQUIRE(::chmod((d / "secret").c_str(), 0) == 0);
    // As root, the tool runs as `nobody` in a child, so permissions apply.
    struct outcome {
        int ls_status, info_status, exec_ok;
        bool listed_readable, listed_secret, reported_secret, info_denied;
    };
    auto* o = test::shared_scratch<outcome>();
    test::child c([&]() -> int {
        if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0))
            return 3;
        o->exec_ok = ::access(test::tool_path().c_str(), X_OK) == 0;
        if (!o->exec_ok) return 0;
        const auto r = test::run_tool({"ls", d.path()});
        o->ls_status = r.status;
        o->listed_readable = contains(r.out, d / "readable");
        o->listed_secret = contains(r.out, d / "secret");
        o->reported_secret = contains(r.err, d / "secret") && contains(r.err, "Permission denied");
        const auto i = test::run_tool({"info", d / "secret"});
        o->info_status = i.status;
        o->info_denied = contains(i.err, "Permission denied");
        return 0;
    });
    BOOST_REQUIRE(c.wait() == 0);
    if (!o->exec_ok) {
        BOOST_TEST_MESSAGE("the tool is not executable as nobody here: permission case not run");
        return;
    }
    BOOST_TEST(o->ls_status == 0);
    BOOST_TEST(o->listed_readable);
    BOOST_TEST(!o->listed_secret);
    BOOST_TEST(o->reported_secret);
    BOOST_TEST(o->info_status == 1);
    BOOST_TEST(o->info_denied);
}

BOOST_AUTO_TEST_SUITE_END()

// ==== shmkit stats and watch ==========================================================

BOOST_AUTO_TEST_SUITE(stats)

BOOST_AUTO_TEST_CASE(plain_stats_are_name_value_lines_and_prometheus_output_is_well_formed)
{
    test::shm_name n("stats");
    shmkit::pool<std::int64_t> p(shmkit::create_only, n.path(), 4);
    BOOST_REQUIRE(p.try_alloc().has_value());
    const auto plain = test::run_tool({"stats", n.str()});
    BOOST_TEST(plain.status == 0);
    const auto v = plain_stats(plain.out);
    for (const char* k : {"attached_alive", "attached_dead", "attaches", "reclaimed", "lock_recoveries",
                          "pool_used", "pool_capacity"})
        BOOST_TEST(v.count(k) == 1u, k);
    BOOST_TEST(v.at("pool_used") == 1u);
    BOOST_TEST(v.at("attached_alive") == 1u);

    const auto prom = test::run_tool({"stats", n.str(), "--prometheus"});
    BOOST_TEST(prom.status == 0);
    BOOST_TEST(prometheus_problem(prom.out) == "");
    BOOST_TEST(contains(prom.out, "shmkit_pool_used{segment=\"" + n.str() + "\"} 1\n"));
    BOOST_TEST(contains(prom.out, "# TYPE shmkit_attaches_total counter\n"));
    BOOST_TEST(contains(prom.out, "# TYPE shmkit_attached_alive gauge\n"));
    // Every kind, and a label that needs escaping.
    test::scratch_dir d;
    const std::string odd = d / "a\"b\\c";
    shmkit::buffer<float> b(shmkit::create_only, odd, 3);
    const auto q = test::run_tool({"stats", odd, "--prometheus"});
    BOOST_TEST(q.status == 0);
    BOOST_TEST(prometheus_problem(q.out) == "");
    BOOST_TEST(contains(q.out, "segment=\"" + d.path() + "/a\\\"b\\\\c\"}"));
    BOOST_TEST(contains(q.out, "shmkit_buffer_capacity{"));
    share_guard k;
    shmkit::share_options o;
    o.create = true;
    shmkit::share s(k.key, o);
    s.store("v");
    const auto sp = test::run_tool({"stats", k.target(), "--prometheus"});
    BOOST_TEST(prometheus_problem(sp.out) == "");
    BOOST_TEST(contains(sp.out, "shmkit_share_version{"));
    kv_guard g("prometheus");
    shmkit::kv_store kv(g.name);
    kv.put("a", "b");
    const auto kp = test::run_tool({"stats", g.name, "--prometheus"});
    BOOST_TEST(prometheus_problem(kp.out) == "");
    BOOST_TEST(contains(kp.out, "shmkit_kv_entries{segment=\"/" + g.name + "\"} 1\n"));
}

BOOST_AUTO_TEST_CASE(watch_prints_count_rounds_and_ends_on_sigint_with_exit_0)
{
    test::shm_name n("watch");
    shmkit::buffer<std::int32_t> b(shmkit::create_only, n.path(), 5);
    const auto two = test::run_tool({"watch", n.str(), "--count", "2", "--interval", "0.01"});
    BOOST_TEST(two.status == 0);
    BOOST_TEST(count_of(two.out, "\nbuffer_capacity 5\n") == 2u);
    BOOST_TEST(count_of(two.out, "# ") == 2u);
    BOOST_TEST(count_of(two.out, " " + n.str() + "\n") == 2u);
    const auto one = test::run_tool({"watch", n.str(), "--count", "1", "--prometheus"});
    BOOST_TEST(one.status == 0);
    BOOST_TEST(prometheus_problem(one.out) == "");
    BOOST_TEST(count_of(one.out, "# HELP shmkit_buffer_capacity ") == 1u);

    std::string out;
    const int status = test::run_then_signal({"watch", n.str(), "--interval", "0.05"}, "buffer_capacity", SIGINT, out);
    BOOST_TEST(status == 0);
    BOOST_TEST(count_of(out, "buffer_capacity 5\n") >= 1u);
    // A segment that goes away ends watch with exit 1.
    test::shm_name gone("watchgone");
    const auto g = test::run_tool({"watch", gone.str(), "--count", "3"});
    BOOST_TEST(g.status == 1);
    BOOST_TEST(contains(g.err, "No such file"));
}

BOOST_AUTO_TEST_SUITE_END()

// ==== Read-only: nothing changes ======================================================

BOOST_AUTO_TEST_SUITE(read_only)

BOOST_AUTO_TEST_CASE(inspect_info_ls_stats_and_watch_change_no_byte_and_reclaim_or_recover_nothing)
{
    killed_holders k; // dead entries, a lock of a dead writer, a dead reader
    shmkit::pool<std::int64_t> p(shmkit::create_only, k.dir / "pool", 8);
    test::pipe_pair ready;
    test::child owner([&]() -> int {
        shmkit::pool<std::int64_t> mine(shmkit::open_only, k.dir / "pool");
        if (!mine.try_alloc()) return 1;
        ready.send();
        for (;;) ::pause();
    });
    BOOST_REQUIRE_EQUAL(ready.receive(30s), 'x');
    owner.kill();
    BOOST_REQUIRE(owner.wait() == 128 + SIGKILL);
    const std::vector<std::string> files = {k.path, k.dir / "pool"};
    std::vector<std::string> before;
    for (const auto& f : files) before.push_back(test::read_file(f));
    struct stat st_before;
    BOOST_REQUIRE(::stat(k.path.c_str(), &st_before) == 0);

    for (int round = 0; round < 2; ++round) {
        for (const auto& f : files) {
            const shmkit::segment_report r = shmkit::inspect(f);
            BOOST_TEST(r.attached_dead() >= 1u);
            for (const std::vector<std::string>& a :
                 {std::vector<std::string>{"info", f}, {"info", f, "--json"}, {"stats", f}, {"stats", f, "--prometheus"},
                  {"watch", f, "--count", "2", "--interval", "0.01"}})
                BOOST_TEST(test::run_tool(a).status == 0);
        }
        BOOST_TEST(test::run_tool({"ls", k.dir.path()}).status == 0);
        BOOST_TEST(test::run_tool({"ls", "--json", k.dir.path()}).status == 0);
    }
    for (std::size_t i = 0; i < files.size(); ++i) BOOST_TEST((test::read_file(files[i]) == before[i]), files[i]);
    struct stat st_after;
    BOOST_REQUIRE(::stat(k.path.c_str(), &st_after) == 0);
    BOOST_TEST(st_after.st_mtim.tv_sec == st_before.st_mtim.tv_sec);
    BOOST_TEST(st_after.st_mtim.tv_nsec == st_before.st_mtim.tv_nsec);
    // Still as the killed processes left it: nothing attached, reclaimed or recovered.
    const shmkit::segment_report r = shmkit::inspect(k.path);
    BOOST_TEST(r.attaches == 3u);
    BOOST_TEST(r.reclaimed == 0u);
    BOOST_TEST(r.attached_dead() == 2u);
    BOOST_TEST(r.locks[0].held_by_dead());
    BOOST_TEST(r.locks[0].recoveries == 0u);
    BOOST_TEST(r.locks[1].dead_readers == 1u);
    BOOST_TEST(r.locks[2].held_by_dead());
    BOOST_TEST(shmkit::inspect(k.dir / "pool").pool->dead_owned == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
