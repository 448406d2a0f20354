// TARGET resolution, read-only inspection and the output helpers shared by
// the inspecting subcommands (see target.hpp).
#include "target.hpp"

#include "command.hpp"

#include <shmkit/error.hpp>
#include <shmkit/share.hpp>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>
#include <ctime>
#include <ostream>
#include <sstream>
#include <system_error>

namespace shmkit_tool {

// ---- Targets ----------------------------------------------------------------------

std::string labelled(const std::string& label, std::string what)
{
    if (what.rfind("shmkit: ", 0) == 0) what.erase(0, 8);
    if (what.rfind(label + ": ", 0) == 0) return printable(what);
    return printable(label) + ": " + printable(what);
}

key_t parse_share_key(const std::string& s)
{
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        // from_chars, unlike stoul, takes neither blanks nor a sign: "0x 1"
        // is no key rather than 1.
        std::uint32_t v = 0;
        const char* const end = s.data() + s.size();
        const auto r = std::from_chars(s.data() + 2, end, v, 16);
        if (r.ec != std::errc() || r.ptr != end) throw usage_error("bad hexadecimal key '" + s + "'");
        return static_cast<key_t>(v);
    }
    try {
        return shmkit::share_key(s);
    } catch (const shmkit::error& e) {
        throw usage_error(e.what());
    }
}

namespace {

std::string checked_posix_name(const std::string& text)
{
    const std::string n = (!text.empty() && text[0] == '/') ? text.substr(1) : text;
    if (n.empty() || n.size() > NAME_MAX || n == "." || n == "..")
        throw usage_error("invalid target '" + text +
                          "': a POSIX name is NAME or /NAME, one component of at most 255 bytes");
    return "/" + n;
}

} // namespace

target resolve_target(const std::string& text)
{
    target t;
    t.text = text;
    if (text.empty()) throw usage_error("empty target");
    if (text.rfind("share:", 0) == 0) {
        if (text.size() == 6) throw usage_error("share: target without a KEY");
        t.how = target::form::share_key;
        t.key = parse_share_key(text.substr(6));
        t.name = "/" + shmkit::share::native_name(t.key);
    } else if (text.find('/', 1) == std::string::npos) {
        t.how = target::form::posix_name;
        t.name = checked_posix_name(text);
    } else {
        t.how = target::form::path;
    }
    return t;
}

std::vector<target> resolve_targets(const std::vector<std::string>& texts)
{
    std::vector<target> targets;
    for (const std::string& text : texts) targets.push_back(resolve_target(text));
    return targets;
}

shmkit::segment_report inspect_target(const target& t)
{
    if (t.how == target::form::path) return shmkit::inspect(t.text);
    try {
        return shmkit::inspect(shmkit::posix_name, t.name);
    } catch (const shmkit::error& e) {
        if (t.how != target::form::share_key || e.code() != std::errc::no_such_file_or_directory) throw;
        throw shmkit::error(e.code(), t.text, "no native share with this key (no " + t.name + ")");
    }
}

std::string label_of(const shmkit::segment_report& r) { return r.name.empty() ? r.path : r.name; }

// ---- Text -------------------------------------------------------------------------

namespace {

/// Length of the valid UTF-8 sequence starting at s[i] (1 to 4), or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i)
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf; // range of the second byte
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;      // no overlong forms
        else if (c == 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        else if (c == 0xf4) hi = 0x8f; // nothing beyond U+10FFFF
    } else return 0;
    if (i + n > s.size() || b(1) < lo || b(1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(k) < 0x80 || b(k) > 0xbf) return 0;
    return n;
}

} // namespace

std::string printable(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        const auto u = static_cast<unsigned char>(c);
        // Valid UTF-8 passes, but for the C1 controls (U+0080..U+009F).
        const std::size_t n = u >= 0x80 ? utf8_sequence(s, i) : 1;
        if (n > 1 && !(u == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0)) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (u < 0x20 || u >= 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", u);
            out += b;
        } else out += c;
        ++i;
    }
    return out;
}

std::string format_time(std::uint64_t ns)
{
    if (ns == 0) return "-";
    const std::time_t secs = static_cast<std::time_t>(ns / 1000000000u);
    std::tm tm{};
    if (!::gmtime_r(&secs, &tm)) return std::to_string(ns) + "ns";
    char b[64];
    const std::size_t n = std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(b + n, sizeof b - n, ".%03uZ", static_cast<unsigned>(ns / 1000000u % 1000u));
    return b;
}

// ---- JSON ---------------------------------------------------------------------------

namespace {

void append_escaped(std::string& out, std::string_view s)
{
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence(s, i);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                out += b;
            } else {
                out += static_cast<char>(c);
            }
        }
        ++i;
    }
}

} // namespace

std::string json_writer::quote(std::string_view s)
{
    std::string out = "\"";
    append_escaped(out, s);
    out += '"';
    return out;
}

void json_writer::separate()
{
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (first_.empty()) return;
    if (!first_.back()) os_ << ',';
    first_.back() = false;
}

json_writer& json_writer::begin_object()
{
    separate();
    os_ << '{';
    first_.push_back(true);
    return *this;
}

json_writer& json_writer::end_object()
{
    os_ << '}';
    first_.pop_back();
    return *this;
}

json_writer& json_writer::begin_array()
{
    separate();
    os_ << '[';
    first_.push_back(true);
    return *this;
}

json_writer& json_writer::end_array()
{
    os_ << ']';
    first_.pop_back();
    return *this;
}

json_writer& json_writer::key(std::string_view k)
{
    separate();
    os_ << quote(k) << ':';
    after_key_ = true;
    return *this;
}

json_writer& json_writer::value(std::string_view s)
{
    separate();
    os_ << quote(s);
    return *this;
}

json_writer& json_writer::value(bool b)
{
    separate();
    os_ << (b ? "true" : "false");
    return *this;
}

json_writer& json_writer::value(std::uint64_t v)
{
    separate();
    os_ << v;
    return *this;
}

json_writer& json_writer::null()
{
    separate();
    os_ << "null";
    return *this;
}

// ---- The report as JSON -----------------------------------------------------------

namespace {

using namespace shmkit;

void write_entry(json_writer& j, const attach_entry_report& e)
{
    j.begin_object()
        .field("index", e.index)
        .field("pid", e.pid)
        .field("state", to_string(e.liveness))
        .field("alive", e.alive())
        .field("ofd_backed", e.ofd_backed)
        .field("generation", e.generation);
    j.key("readers").begin_array();
    for (const std::uint32_t n : e.readers) j.value(n);
    j.end_array().end_object();
}

void write_lock(json_writer& j, const lock_report& l)
{
    j.begin_object().field("type", to_string(l.type)).field("index", l.index).field("held", l.held());
    j.field("exclusive", l.holder_token != 0);
    if (l.holder_token != 0) {
        j.key("holder").begin_object().field("token", l.holder_token);
        j.key("entry");
        if (l.holder_entry) j.value(*l.holder_entry);
        else j.null();
        j.field("pid", l.holder_pid).field("state", to_string(l.holder_liveness));
        j.field("alive", l.holder_liveness != process_liveness::dead).end_object();
    } else {
        j.key("holder").null();
    }
    if (l.type == lock_type::rwlock)
        j.field("readers", l.readers).field("dead_readers", l.dead_readers).field("dirty", l.dirty);
    j.field("waiters", l.waiters).field("recoveries", l.recoveries);
    if (l.type == lock_type::rwlock) j.field("reader_recoveries", l.reader_recoveries);
    j.end_object();
}

void write_buffer(json_writer& j, const buffer_summary& b)
{
    j.key("buffer").begin_object();
    j.field("elements", b.elements).field("element_type", to_string(b.type)).field("elem_size", b.elem_size);
    j.field("stride", b.stride).field("sequence", b.sequence).field("write_open", b.write_open);
    j.field("bulk_recoveries", b.bulk_recoveries).end_object();
}

void write_pool(json_writer& j, const pool_summary& p)
{
    j.key("pool").begin_object();
    j.field("slots", p.slots).field("slot_size", p.slot_size).field("used", p.used);
    j.field("available", p.slots - std::min(p.used, p.slots)).field("dead_owned", p.dead_owned);
    j.field("allocs", p.allocs).field("frees", p.frees).field("waits", p.waits).field("timeouts", p.timeouts);
    j.field("recoveries", p.recoveries).end_object();
}

void write_kv_table(json_writer& j, const kv_table_summary& t)
{
    j.begin_object().field("path", t.path).field("generation", t.generation).field("cells", t.cells);
    j.field("entries", t.entries).field("erased", t.erased).field("arena_size", t.arena_size);
    j.field("arena_used", t.arena_used).field("live_bytes", t.live_bytes);
    j.field("overwrite_pending", t.overwrite_pending).end_object();
}

void write_kv(json_writer& j, const kv_summary& k)
{
    j.key("kv").begin_object().field("role", k.is_table ? "table" : "root");
    j.field("store_id", k.store_id).field("generation", k.generation);
    if (!k.is_table) {
        j.field("removed", k.removed).field("grows", k.grows).field("repairs", k.repairs);
        j.field("repair_needed", k.repair_needed).field("table_path", k.table_path);
    }
    j.key("table");
    if (k.table) write_kv_table(j, *k.table);
    else j.null();
    j.end_object();
}

void write_share(json_writer& j, const share_summary& s)
{
    j.key("share").begin_object().field("role", s.is_value_segment ? "value" : "root");
    j.field("share_id", s.share_id);
    if (s.is_value_segment) {
        j.field("generation", s.value_generation).field("value_size", s.value_size).end_object();
        return;
    }
    j.field("key", s.key).field("version", s.version).field("value_size", s.value_size);
    j.field("value_inline", s.value_inline).field("current_slot", s.current_slot);
    j.field("inline_capacity", s.inline_capacity).field("value_generation", s.value_generation);
    j.key("value_path");
    if (s.value_inline) j.null();
    else j.value(s.value_path);
    j.field("removed", s.removed).field("repairs", s.repairs).end_object();
}

void write_header(json_writer& j, const segment_report& r)
{
    j.field("path", r.path);
    j.key("name");
    if (r.name.empty()) j.null();
    else j.value(r.name);
    j.field("file_size", r.file_size).field("memory_size", r.memory_size);
    j.field("kind", r.kind_name).field("role", r.role).field("element_type", r.elem_type_name);
    j.field("elem_size", r.elem_size).field("capacity", r.capacity).field("data_size", r.data_size);
    j.field("total_size", r.total_size).field("format_version", r.format_version);
    j.key("params").begin_array();
    for (const std::uint64_t p : r.params) j.value(p);
    j.end_array();
    j.field("created_ns", r.created_ns).field("created", format_time(r.created_ns));
}

void write_attach(json_writer& j, const segment_report& r)
{
    j.field("attach_capacity", r.attach_capacity).field("high_water", r.high_water);
    j.field("attaches", r.attaches).field("reclaimed", r.reclaimed);
    j.field("attached_alive", r.attached_alive()).field("attached_dead", r.attached_dead());
    j.key("entries").begin_array();
    for (const auto& e : r.entries) write_entry(j, e);
    j.end_array();
}

} // namespace

void write_json(json_writer& j, const shmkit::segment_report& r)
{
    j.begin_object();
    write_header(j, r);
    write_attach(j, r);
    j.field("locks_held", r.locks_held()).field("locks_dirty", r.locks_dirty());
    j.field("lock_recoveries", r.lock_recoveries());
    // Stamped by the lock that recovered (0: none, or a segment older than the stamp).
    if (const std::uint64_t last = r.last_recovery_ns()) j.field("last_recovery", format_time(last));
    else j.key("last_recovery").null();
    j.key("locks").begin_array();
    for (const auto& l : r.locks) write_lock(j, l);
    j.end_array();
    if (r.buffer) write_buffer(j, *r.buffer);
    if (r.pool) write_pool(j, *r.pool);
    if (r.kv) write_kv(j, *r.kv);
    if (r.share) write_share(j, *r.share);
    j.end_object();
}

} // namespace shmkit_tool
