// The machinery of the hostile-input catalogue.
//
// A *family* of cases runs in a forked child, so that a case that crashes,
// trips a sanitizer or blocks cannot take the test process with it. The
// child writes into shared memory the name of the case it is in, what went
// wrong, and how each case ended; the parent turns that into Boost.Test
// errors after the child ends, naming the case that was running if the
// child was killed by a signal, exited with a sanitizer's status, or had to
// be killed for overrunning its time.
//
// A case is an *attempt*: a call whose ending (a return, or which exception
// with which code and message) is classified, then checked against what the
// case expects, with the fingerprint (content digest, size, mode, owner) of
// every file the caller did not create compared before and after.
#ifndef SHMKIT_TEST_HOSTILE_HOSTILE_HPP
#define SHMKIT_TEST_HOSTILE_HOSTILE_HPP

#include "../support.hpp"

#include <shmkit/error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace hostile {

// ---- How a call ended ------------------------------------------------------------------------

/// The ending of one call, classified.
struct attempt {
    enum class ending { returned, shmkit_error, invalid_argument, length_error, out_of_range, logic_error, other };
    ending how = ending::returned;
    std::error_code code;
    std::string message;

    bool returned() const noexcept { return how == ending::returned; }
    bool threw() const noexcept { return how != ending::returned; }

    std::string describe() const
    {
        switch (how) {
        case ending::returned: return "returned normally";
        case ending::shmkit_error: return "shmkit::error [" + code.message() + "] " + message;
        case ending::invalid_argument: return "std::invalid_argument: " + message;
        case ending::length_error: return "std::length_error: " + message;
        case ending::out_of_range: return "std::out_of_range: " + message;
        case ending::logic_error: return "std::logic_error: " + message;
        case ending::other: return "another exception: " + message;
        }
        return "?";
    }
};

/// Calls `f` and classifies how it ended. Never throws.
template <class F>
attempt try_call(F&& f) noexcept
{
    attempt a;
    try {
        f();
    } catch (const shmkit::error& e) {
        a = {attempt::ending::shmkit_error, e.code(), e.what()};
    } catch (const std::invalid_argument& e) {
        a = {attempt::ending::invalid_argument, {}, e.what()};
    } catch (const std::length_error& e) {
        a = {attempt::ending::length_error, {}, e.what()};
    } catch (const std::out_of_range& e) {
        a = {attempt::ending::out_of_range, {}, e.what()};
    } catch (const std::logic_error& e) {
        a = {attempt::ending::logic_error, {}, e.what()};
    } catch (const std::exception& e) {
        a = {attempt::ending::other, {}, e.what()};
    } catch (...) {
        a = {attempt::ending::other, {}, "a non-standard exception"};
    }
    return a;
}

/// An errno value as the error_code shmkit::error carries.
inline std::error_code sys(int e) { return {e, std::generic_category()}; }
/// A shmkit condition as an error_code.
inline std::error_code bad(shmkit::errc e) { return shmkit::make_error_code(e); }

// ---- Fingerprints of files the caller does not own ---------------------------------------------

/// What must not change about a file a refused call was pointed at.
struct fingerprint {
    bool exists = false;
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    off_t size = 0;
    ino_t ino = 0;
    std::size_t digest = 0; ///< of the content (regular files only)

    bool operator==(const fingerprint& o) const noexcept
    {
        return exists == o.exists && mode == o.mode && uid == o.uid && gid == o.gid && size == o.size &&
               ino == o.ino && digest == o.digest;
    }
    bool operator!=(const fingerprint& o) const noexcept { return !(*this == o); }
    std::string describe() const
    {
        if (!exists) return "absent";
        char b[160];
        std::snprintf(b, sizeof b, "mode %o uid %u gid %u size %lld digest %zx", unsigned(mode), unsigned(uid),
                      unsigned(gid), static_cast<long long>(size), digest);
        return b;
    }
};

/// The content of a regular file, read without following a symlink and
/// without blocking on a FIFO; empty for anything else.
inline std::string content_of(const std::string& path)
{
    std::string out;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return out;
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        out.resize(static_cast<std::size_t>(st.st_size));
        std::size_t got = 0;
        while (got < out.size()) {
            const ssize_t r = ::pread(fd, &out[got], out.size() - got, static_cast<off_t>(got));
            if (r <= 0) break;
            got += static_cast<std::size_t>(r);
        }
        out.resize(got);
    }
    ::close(fd);
    return out;
}

/// The fingerprint of `path` itself (a symlink is not followed).
inline fingerprint fingerprint_of(const std::string& path)
{
    fingerprint f;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return f;
    f.exists = true;
    f.mode = st.st_mode;
    f.uid = st.st_uid;
    f.gid = st.st_gid;
    f.size = st.st_size;
    f.ino = st.st_ino;
    if (S_ISREG(st.st_mode)) f.digest = std::hash<std::string>()(content_of(path));
    return f;
}

/// Names in directory `dir` (without "." and ".."), sorted.
inline std::vector<std::string> list_dir(const std::string& dir)
{
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

/// Open fds of this process, counted in /proc/self/fd (the count includes
/// the directory's own fd, the same every time).
inline std::size_t open_fds() { return list_dir("/proc/self/fd").size(); }

// ---- A family's shared record ------------------------------------------------------------------

/// What a family's child reports to the parent (shared anonymous memory).
struct board {
    char current[256];
    std::uint32_t cases;
    std::uint32_t failures;
    std::uint32_t log_used;
    char log[32768];
    struct tally_entry {
        char label[72];
        std::uint32_t count;
    } tallies[64];
    std::uint32_t n_tallies;
};

/// The child's side: names cases, records failures and endings.
class cases {
public:
    explicit cases(board& b) : b_(b) {}

    /// Starts case `name`: a crash or hang from now on is blamed on it.
    void begin(const std::string& name)
    {
        std::snprintf(b_.current, sizeof b_.current, "%s", printable(name).c_str());
        ++b_.cases;
    }
    const char* current() const noexcept { return b_.current; }

    /// Records a failure of the current case.
    void fail(const std::string& what)
    {
        ++b_.failures;
        const std::string line = std::string(b_.current) + ": " + printable(what) + "\n";
        const std::size_t room = sizeof b_.log - 1 - b_.log_used;
        const std::size_t n = std::min(room, line.size());
        std::memcpy(b_.log + b_.log_used, line.data(), n);
        b_.log_used += static_cast<std::uint32_t>(n);
    }
    /// Records a failure unless `ok`; returns `ok`.
    bool check(bool ok, const std::string& what)
    {
        if (!ok) fail(what);
        return ok;
    }

    /// Counts `n` under `label` (the family's summary).
    void tally(const std::string& label, std::uint32_t n = 1)
    {
        for (std::uint32_t i = 0; i < b_.n_tallies; ++i)
            if (label == b_.tallies[i].label) {
                b_.tallies[i].count += n;
                return;
            }
        if (b_.n_tallies == sizeof b_.tallies / sizeof b_.tallies[0]) return;
        auto& t = b_.tallies[b_.n_tallies++];
        std::snprintf(t.label, sizeof t.label, "%s", label.c_str());
        t.count = n;
    }

    /// `a` must be a shmkit::error with one of `codes` (any if empty) whose
    /// message contains `mention`.
    bool refused(const attempt& a, const std::vector<std::error_code>& codes, std::string_view mention)
    {
        tally(a.returned() ? "returned" : label_of(a));
        if (a.how != attempt::ending::shmkit_error) return check(false, "expected a shmkit::error, " + a.describe());
        if (codes.size() && std::find(codes.begin(), codes.end(), a.code) == codes.end())
            return check(false, "unexpected error code: " + a.describe());
        return mentions(a, mention);
    }

    /// `a` must be a std::invalid_argument (or, where `or_error` lists codes,
    /// a shmkit::error with one of them) whose message contains `mention`.
    bool invalid(const attempt& a, std::string_view mention, const std::vector<std::error_code>& or_error = {})
    {
        tally(a.returned() ? "returned" : label_of(a));
        if (a.how == attempt::ending::shmkit_error && or_error.size() &&
            std::find(or_error.begin(), or_error.end(), a.code) != or_error.end())
            return mentions(a, mention);
        if (a.how != attempt::ending::invalid_argument)
            return check(false, "expected std::invalid_argument, " + a.describe());
        return mentions(a, mention);
    }

    /// `a` must have ended with exception kind `how` whose message contains `mention`.
    bool threw(const attempt& a, attempt::ending how, std::string_view mention)
    {
        tally(a.returned() ? "returned" : label_of(a));
        if (a.how != how) return check(false, "unexpected ending: " + a.describe());
        return mentions(a, mention);
    }

    /// `a` must have returned.
    bool returned(const attempt& a)
    {
        tally(a.returned() ? "returned" : label_of(a));
        return check(a.returned(), "expected success, " + a.describe());
    }

    /// The fingerprint of `path` must equal `before`.
    bool unchanged(const std::string& path, const fingerprint& before)
    {
        const fingerprint now = fingerprint_of(path);
        return check(now == before, path + " changed: was " + before.describe() + ", now " + now.describe());
    }

    static std::string label_of(const attempt& a)
    {
        switch (a.how) {
        case attempt::ending::returned: return "returned";
        case attempt::ending::shmkit_error: return "shmkit::error(" + code_name(a.code) + ")";
        case attempt::ending::invalid_argument: return "invalid_argument";
        case attempt::ending::length_error: return "length_error";
        case attempt::ending::out_of_range: return "out_of_range";
        case attempt::ending::logic_error: return "logic_error";
        case attempt::ending::other: return "other exception";
        }
        return "?";
    }

private:
    bool mentions(const attempt& a, std::string_view mention)
    {
        return check(mention.empty() || a.message.find(mention) != std::string::npos,
                     "the message does not name '" + std::string(mention) + "': " + a.describe());
    }

    static std::string code_name(const std::error_code& c)
    {
        if (c.category() == shmkit::error_category()) return c.message();
        const char* n = ::strerrorname_np(c.value());
        return n ? n : std::to_string(c.value());
    }

    /// Messages may carry NUL bytes and 4 KiB paths: keep them short and printable.
    static std::string printable(const std::string& s)
    {
        std::string out;
        for (char ch : s) {
            if (out.size() >= 400) {
                out += "...";
                break;
            }
            if (ch == '\0') out += "\\0";
            else if (ch == '\n') out += "\\n";
            else out += ch;
        }
        return out;
    }

    board& b_;
};

// ---- Running a family -----------------------------------------------------------------------------

/// Runs `body` in a forked child, bounded by `limit`, and reports in the
/// parent: every failure it recorded, and a signal, an abnormal exit status
/// (a sanitizer's) or an overrun with the name of the case it happened in.
/// Prints one summary line: cases, seconds, and how they ended.
inline void run_family(const std::string& family, const std::function<void(cases&)>& body,
                       std::chrono::seconds limit = std::chrono::seconds(50))
{
    board* b = test::shared_scratch<board>();
    std::memset(static_cast<void*>(b), 0, sizeof *b);
    const auto started = std::chrono::steady_clock::now();
    int rc;
    {
        test::child c([&] {
            cases cs(*b);
            try {
                body(cs);
            } catch (const std::exception& e) {
                cs.fail(std::string("escaped the family: ") + e.what());
            }
            return 0;
        });
        rc = c.wait(limit);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    BOOST_TEST_CONTEXT("family " << family)
    {
        if (rc == -1)
            BOOST_ERROR(family << ": blocked: no end after " << limit.count() << " s, in case '" << b->current << "'");
        else if (rc >= 128)
            BOOST_ERROR(family << ": killed by signal " << rc - 128 << " (" << ::strsignal(rc - 128) << ") in case '"
                               << b->current << "'");
        else if (rc != 0)
            BOOST_ERROR(family << ": exited with status " << rc << " in case '" << b->current
                               << "' (a sanitizer report, if any, is above)");
        std::string_view log(b->log, b->log_used);
        for (std::size_t pos = 0; pos < log.size();) {
            const std::size_t nl = log.find('\n', pos);
            BOOST_ERROR(std::string(log.substr(pos, nl - pos)));
            pos = nl == std::string_view::npos ? log.size() : nl + 1;
        }
        BOOST_TEST(b->cases > 0u, family << " ran no case");
    }
    std::string summary;
    for (std::uint32_t i = 0; i < b->n_tallies; ++i)
        summary += (i ? ", " : "") + std::string(b->tallies[i].label) + " " + std::to_string(b->tallies[i].count);
    std::printf("hostile: %-34s %5u cases %3u failed %6.2f s  [%s]\n", family.c_str(), b->cases, b->failures, seconds,
                summary.c_str());
    std::fflush(stdout);
    ::munmap(b, sizeof *b);
}

// ---- Names of shared objects, and their removal --------------------------------------------------

/// A prefix for POSIX names of this test process; every /dev/shm entry that
/// starts with it is removed on scope exit (kv tables and share value
/// segments included, whatever a child left).
class shm_prefix {
public:
    explicit shm_prefix(const std::string& tag)
        : prefix_("shmkit-hostile-" + std::to_string(::getpid()) + "-" + tag + "-")
    {
    }
    ~shm_prefix() { sweep(prefix_); }
    shm_prefix(const shm_prefix&) = delete;
    shm_prefix& operator=(const shm_prefix&) = delete;

    /// "PREFIX" + leaf: a name for kv_store or segment::posix.
    std::string name(const std::string& leaf) const { return prefix_ + leaf; }
    std::string path(const std::string& leaf) const { return "/dev/shm/" + name(leaf); }

    /// Removes every /dev/shm entry whose name starts with `prefix`
    /// (directories with what they hold).
    static void sweep(const std::string& prefix)
    {
        for (const std::string& n : list_dir("/dev/shm"))
            if (n.compare(0, prefix.size(), prefix) == 0) remove_tree("/dev/shm/" + n);
    }

    /// Removes `path`, and everything under it if it is a directory.
    static void remove_tree(const std::string& path)
    {
        ::nftw(path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
               FTW_DEPTH | FTW_PHYS);
    }

private:
    std::string prefix_;
};

/// /dev/shm entries of names starting with `prefix`.
inline std::vector<std::string> shm_entries(const std::string& prefix)
{
    std::vector<std::string> out;
    for (const std::string& n : list_dir("/dev/shm"))
        if (n.compare(0, prefix.size(), prefix) == 0) out.push_back(n);
    return out;
}

} // namespace hostile

#endif
