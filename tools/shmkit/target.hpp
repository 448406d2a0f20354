// What the shmkit tool's subcommands share about the segments they look
// at: resolving a TARGET argument, inspecting it read-only, and writing
// what was found (JSON, times, names made safe for a terminal).
//
// A TARGET is one of (doc/shmkit/tool.adoc):
//   share:KEY      the root segment of the native share of KEY (KEY as for
//                  `shmkit share`: a number, 0x... hexadecimal, or a string
//                  of at most 4 bytes)
//   /NAME, NAME    the POSIX shared-memory object NAME (/dev/shm/NAME):
//                  a string without '/', or with '/' only at its start
//   a path         anything else containing '/' (./file, dir/file,
//                  /dir/file; a file directly in / is written //file)
#ifndef SHMKIT_TOOLS_TARGET_HPP
#define SHMKIT_TOOLS_TARGET_HPP

#include <shmkit/inspect.hpp>

#include <sys/types.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace shmkit_tool {

/// A resolved TARGET.
struct target {
    enum class form { path, posix_name, share_key };
    form how = form::path;
    std::string text; ///< as given on the command line
    std::string name; ///< the POSIX name "/NAME" (posix_name, share_key), else empty
    key_t key = 0;    ///< the IPC key (share_key)
};

/// What a TARGET is, for the commands' --help texts.
#define SHMKIT_TOOL_TARGET_HELP                                                                   \
    "/NAME or NAME (POSIX shared memory, /dev/shm/NAME), a path containing\n"                     \
    "'/' (./file, /dir/file), or share:KEY (the native share of KEY).\n"

/// "LABEL: message" of a library error (whose message names its segment
/// itself: the "shmkit: " prefix and a repeated label are dropped).
std::string labelled(const std::string& label, std::string what);

/// Parses a TARGET (see the header comment); refers to nothing on disk yet.
/// Throws usage_error for an empty target, an invalid POSIX name, or a bad
/// share key.
target resolve_target(const std::string& text);

/// resolve_target() of each TARGET, in order. The commands taking several
/// resolve them all before acting on any, so that a bad one is a usage
/// error with nothing done yet.
std::vector<target> resolve_targets(const std::vector<std::string>& texts);

/// A share KEY as `shmkit share` reads it: a decimal number, 0x...
/// hexadecimal (32 bits), or a string of 1 to 4 bytes (shmkit::share_key).
/// Throws usage_error.
key_t parse_share_key(const std::string& text);

/// shmkit::inspect() of the target, read-only. Throws shmkit::error (a
/// missing share names its key), std::bad_alloc.
shmkit::segment_report inspect_target(const target& t);

/// How outputs name an inspected segment: its POSIX name "/NAME" if it has
/// one, else its path.
std::string label_of(const shmkit::segment_report& r);

/// `s` with control characters and backslashes escaped (\n, \t, \\, \xHH),
/// so that a name can be neither a terminal escape sequence nor a line
/// break in line-oriented output.
std::string printable(std::string_view s);

/// ISO 8601 UTC with milliseconds ("2024-05-01T12:00:00.123Z") of a time in
/// ns since the epoch; "-" for 0.
std::string format_time(std::uint64_t ns);

/// A minimal streaming JSON writer: compact output, commas and string
/// escaping handled. Strings are written as UTF-8; bytes that are not valid
/// UTF-8 become U+FFFD; control characters, '"' and '\' are escaped.
/// Numbers are exact decimal integers (64-bit values: a reader using
/// doubles may round those above 2^53). Misuse (a value where a key is due)
/// is not checked.
class json_writer {
public:
    explicit json_writer(std::ostream& os) : os_(os) {}
    json_writer& begin_object();
    json_writer& end_object();
    json_writer& begin_array();
    json_writer& end_array();
    /// The key of the next value in the current object.
    json_writer& key(std::string_view k);
    json_writer& value(std::string_view s);
    json_writer& value(const char* s) { return value(std::string_view(s)); }
    json_writer& value(const std::string& s) { return value(std::string_view(s)); }
    json_writer& value(bool b);
    json_writer& value(std::uint64_t v);
    json_writer& value(std::uint32_t v) { return value(std::uint64_t(v)); }
    json_writer& value(unsigned long long v) { return value(std::uint64_t(v)); }
    json_writer& null();
    /// key(k).value(v)
    template <class T>
    json_writer& field(std::string_view k, const T& v)
    {
        return key(k).value(v);
    }

    /// `s` as a JSON string literal, quotes included.
    static std::string quote(std::string_view s);

private:
    void separate();

    std::ostream& os_;
    std::vector<bool> first_; ///< per open container: nothing written in it yet
    bool after_key_ = false;
};

/// The whole report as one JSON object (doc/shmkit/tool.adoc lists the fields).
void write_json(json_writer& j, const shmkit::segment_report& r);

} // namespace shmkit_tool

#endif
