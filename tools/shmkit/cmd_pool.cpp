// shmkit pool alloc|free|ls|recover|get|set: the slots of a pool<T>,
// raw_pool or str_pool; the pool's type comes from the segment's header.
//
// Slot ownership and the tool: a slot belongs to the handle that allocated
// it, and a slot whose owner is dead is freed by recover_stale() (and by
// the allocs of handles with auto_recover). The tool exits right after a
// command, so a slot it allocates is, from then on, a dead owner's. `pool
// alloc` therefore has two modes (doc/shmkit/tool.adoc):
//   - hand-over (default): the slot stays allocated after the tool exits,
//     for a program to take over with adopt(INDEX, TOKEN) (--token prints
//     the holder token), or for `pool free`; until then it is a dead
//     owner's slot, and a recovery frees it;
//   - --hold: the tool stays alive and owns the slot until its standard
//     input ends (or SIGINT/SIGTERM/SIGHUP), then frees it; a tool killed
//     otherwise leaves a dead owner's slot, recovered as any other.
#include "command.hpp"
#include "data_common.hpp"

#include <shmkit/error.hpp>
#include <shmkit/pool.hpp>

#include <boost/program_options.hpp>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <optional>

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const pool_help =
    "usage: shmkit pool alloc TARGET [options]   allocate a slot, print its index\n"
    "       shmkit pool free TARGET INDEX...     free slots\n"
    "       shmkit pool ls TARGET                list the allocated slots\n"
    "       shmkit pool recover TARGET           free the slots of dead owners, print how many\n"
    "       shmkit pool get TARGET INDEX         print the value of an allocated slot\n"
    "       shmkit pool set TARGET INDEX [VALUE] set the value of an allocated slot\n\n"
    "TARGET: a pool, raw_pool or str_pool: NAME or /NAME, the POSIX shared-memory\n"
    "object NAME (/dev/shm/NAME), or a file path (./f, dir/f, //f). The slot type\n"
    "comes from the segment.\n\n"
    "alloc: a slot belongs to the process that allocated it, and the tool exits at\n"
    "once; so by default the slot is allocated for handing over: it stays\n"
    "allocated, owned by a dead process, until a program adopts it\n"
    "(pool.adopt(INDEX, TOKEN), TOKEN printed by --token), `pool free` frees it, or\n"
    "a recovery (`pool recover`, recover_stale(), an alloc with auto_recover on a\n"
    "full pool) takes it back. With --hold the tool owns the slot while it runs:\n"
    "it prints the index, keeps the slot until its standard input ends (or SIGINT,\n"
    "SIGTERM, SIGHUP), and then frees it.\n"
    "Without --timeout, alloc does not wait: exit 1 if no slot is free. With\n"
    "--timeout, it waits up to MS milliseconds (--hold: or until one of those\n"
    "signals, which ends it with exit 1 and nothing allocated).\n\n"
    "ls: one line per allocated slot: INDEX, owner PID (0 once the owner's entry\n"
    "is gone), alive or dead, and the value (pool<T>: the number; str_pool: the\n"
    "string C-escaped; raw_pool: none), separated by tabs.\n\n"
    "Values: pool<T>: a number. str_pool and raw_pool: the bytes of VALUE, or of\n"
    "standard input when VALUE is omitted (set); get writes them raw (raw_pool:\n"
    "the whole slot).\n";

/// The pool behind `info`, opened with the right C++ type; f(pool) for it.
template <class F>
void with_pool(const segment_info& info, const shmkit::pool_options& o, F&& f)
{
    using shmkit::element_type;
    if (info.type == element_type::bytes) {
        shmkit::raw_pool p(shmkit::open_only, info.path, o);
        f(p);
    } else if (info.type == element_type::strings) {
        shmkit::str_pool p(shmkit::open_only, info.path, o);
        f(p);
    } else {
        visit_numeric(info.type, [&](auto tag) {
            using T = typename decltype(tag)::type;
            shmkit::pool<T> p(shmkit::open_only, info.path, o);
            f(p);
        });
    }
}

template <class P> struct is_typed : std::false_type {};
template <class T> struct is_typed<shmkit::pool<T>> : std::true_type {};

/// What set/alloc --value will store, checked before anything changes.
template <class P>
auto slot_value(const P& p, const segment_info& info, const std::string& text)
{
    if constexpr (is_typed<P>::value) {
        return parse_value<typename P::value_type>(text, "VALUE", shmkit::to_string(info.type));
    } else {
        (void)p;
        (void)info;
        return text;
    }
}

/// The slot's value as ls shows it ("" for raw_pool).
template <class P>
std::string listed_value(const P& p, std::size_t i)
{
    if constexpr (is_typed<P>::value) return format_value(p.get(i));
    else if constexpr (std::is_same_v<P, shmkit::str_pool>) return c_escape(p.get(i));
    else return {};
}

/// The signals that end a hold; blocked for the whole command so that the
/// hold sees them on a signalfd (and frees the slot) instead of dying.
sigset_t hold_signals()
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGHUP);
    return s;
}

/// Waits until standard input ends or a hold signal arrives.
void wait_for_release(const sigset_t& signals)
{
    const int sfd = ::signalfd(-1, &signals, SFD_CLOEXEC);
    if (sfd < 0) shmkit::detail::throw_errno(errno, "signalfd", "cannot create");
    bool done = false;
    while (!done) {
        struct pollfd f[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (::poll(f, 2, -1) < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            ::close(sfd);
            shmkit::detail::throw_errno(e, "poll", "failed");
        }
        if (f[1].revents) break;
        if (f[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            char buf[4096];
            const ssize_t n = (f[0].revents & POLLNVAL) ? 0 : ::read(0, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) done = true;
        }
    }
    ::close(sfd);
}

struct alloc_request {
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::string> value;
    bool token = false, hold = false;
};

/// Whether one of `signals` (blocked) is pending.
bool signal_pending(const sigset_t& signals)
{
    sigset_t pending;
    if (::sigpending(&pending) != 0) shmkit::detail::throw_errno(errno, "sigpending", "failed");
    for (const int s : {SIGINT, SIGTERM, SIGHUP})
        if (sigismember(&signals, s) && sigismember(&pending, s)) return true;
    return false;
}

/// alloc(timeout) for --hold, whose signals are blocked from the start (see
/// run_pool): it waits in slices and looks for a pending signal between
/// them, so that Ctrl-C ends a long wait instead of being held back until a
/// slot comes (and then freeing it at once). `interrupted` says why it
/// returned nothing. A free still wakes the wait at once; only the signal
/// waits up to a slice.
template <class P>
std::optional<std::size_t> alloc_for_hold(P& p, std::chrono::milliseconds timeout, bool& interrupted)
{
    using std::chrono::milliseconds;
    constexpr milliseconds slice(100);
    const sigset_t signals = hold_signals();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
        if (auto i = p.alloc(std::clamp(left, milliseconds(0), slice))) return i;
        if ((interrupted = signal_pending(signals)) || left <= slice) return std::nullopt;
    }
}

template <class P>
int do_alloc(P& p, const segment_info& info, const alloc_request& r, std::ostream& out, std::ostream& err)
{
    // Checked first: a bad value allocates nothing.
    std::optional<decltype(slot_value(p, info, std::string()))> v;
    if (r.value) {
        v = slot_value(p, info, *r.value);
        // Refused as set() would refuse it (exit 1), before allocating.
        if constexpr (std::is_same_v<P, shmkit::str_pool>) {
            if (v->size() > p.max_length())
                throw std::length_error("shmkit: " + info.path + ": a string of " + std::to_string(v->size()) +
                                        " bytes is longer than the maximum length " + std::to_string(p.max_length()));
        } else if constexpr (std::is_same_v<P, shmkit::raw_pool>) {
            if (v->size() > p.elem_size())
                throw std::length_error("shmkit: " + info.path + ": " + std::to_string(v->size()) +
                                        " bytes do not fit a slot of " + std::to_string(p.elem_size()) + " bytes");
        }
    }
    std::optional<std::size_t> i;
    bool interrupted = false;
    if (r.timeout && r.hold) {
        i = alloc_for_hold(p, *r.timeout, interrupted);
    } else if (r.timeout) {
        i = p.alloc(*r.timeout);
    } else {
        i = p.try_alloc();
        if (!i && p.auto_recover() && p.recover_stale() > 0) i = p.try_alloc();
    }
    if (!i) {
        err << "shmkit: pool alloc: " << info.path << ": no free slot";
        if (interrupted) err << " before a signal ended the wait";
        else if (r.timeout) err << " within " << r.timeout->count() << " ms";
        err << "\n";
        return exit_problem;
    }
    try {
        if (v) p.set(*i, *v);
    } catch (...) {
        p.free(*i);
        throw;
    }
    const std::uint64_t token = p.holder_token(*i);
    out << *i;
    if (r.token) out << " " << token;
    out << "\n";
    out.flush();
    if (r.hold) {
        wait_for_release(hold_signals());
        // Freed only if the tool still holds it (not freed, recovered or
        // adopted meanwhile): one CAS from its token, so that an adopt
        // landing at the same moment keeps the slot.
        p.free(*i, token);
    }
    return out ? exit_ok : exit_problem;
}

template <class P>
int do_ls(const P& p, std::ostream& out)
{
    const auto& att = p.get_segment().attachment();
    std::map<std::uint64_t, bool> alive; // one liveness probe per owner
    std::string text;
    p.each_allocated([&](std::size_t i) {
        const std::uint64_t owner = p.holder_token(i);
        if (owner == 0) return; // freed meanwhile
        auto it = alive.find(owner);
        if (it == alive.end()) it = alive.emplace(owner, att.owner_id_alive(owner)).first;
        std::string value;
        try {
            value = listed_value(p, i);
        } catch (const shmkit::error&) {
            return; // freed meanwhile (errc::slot_not_allocated)
        }
        text += std::to_string(i) + "\t" + std::to_string(att.owner_id_pid(owner)) + "\t" +
                (it->second ? "alive" : "dead");
        if constexpr (!std::is_same_v<P, shmkit::raw_pool>) text += "\t" + value;
        text += "\n";
    });
    out << text;
    return exit_ok;
}

} // namespace

int run_pool(const args& a, std::ostream& out, std::ostream& err)
{
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("timeout", po::value<std::string>()->value_name("MS"),
                                               "alloc: wait up to MS milliseconds for a free slot")(
        "value", po::value<std::string>()->value_name("V"), "alloc: set the slot to this value")(
        "token", "alloc: print the holder token after the index, for adopt(INDEX, TOKEN)")(
        "hold", "alloc: keep the slot until standard input ends, then free it")(
        "auto-recover", "alloc: free dead owners' slots first when the pool is full");
    const parsed_args p = parse_args(a, opts);
    if (p.help) {
        out << pool_help << "\n" << opts;
        return exit_ok;
    }
    if (p.positional.empty()) throw usage_error("pool: expected an action (alloc, free, ls, recover, get, set)");
    const std::string act = p.positional[0];
    const std::vector<std::string> pos(p.positional.begin() + 1, p.positional.end());
    const std::size_t n = pos.size();
    bool ok = false;
    if (act == "alloc" || act == "ls" || act == "recover") ok = n == 1;
    else if (act == "free") ok = n >= 2;
    else if (act == "get") ok = n == 2;
    else if (act == "set") ok = n == 2 || n == 3;
    else throw usage_error("pool: unknown action '" + act + "' (alloc, free, ls, recover, get or set)");
    if (!ok) throw usage_error("pool " + act + ": wrong number of arguments");
    for (const char* o : {"timeout", "value", "token", "hold", "auto-recover"})
        if (p.vm.count(o) && act != "alloc") throw usage_error("pool " + act + ": --" + o + " applies to alloc only");
    alloc_request ar;
    if (p.vm.count("timeout"))
        ar.timeout = std::chrono::milliseconds(
            parse_unsigned(p.vm["timeout"].as<std::string>(), "--timeout", std::uint64_t(1) << 40));
    if (p.vm.count("value")) ar.value = p.vm["value"].as<std::string>();
    ar.token = p.vm.count("token") > 0;
    ar.hold = p.vm.count("hold") > 0;
    if (ar.token && ar.hold)
        throw usage_error("pool alloc: --token and --hold exclude each other (a held slot is the tool's, not handed over)");
    std::vector<std::size_t> indexes;
    for (std::size_t k = 1; k < n && (act == "free" || act == "get" || act == "set"); ++k) {
        indexes.push_back(static_cast<std::size_t>(parse_unsigned(pos[k], "INDEX")));
        if (act == "set") break;
    }

    // Blocked before the slot exists, so that no hold signal can end the
    // tool between the alloc and the hold.
    const sigset_t held_signals = hold_signals();
    if (ar.hold && ::sigprocmask(SIG_BLOCK, &held_signals, nullptr) != 0)
        shmkit::detail::throw_errno(errno, "sigprocmask", "failed");

    const segment_info info = probe_segment(segment_path(pos[0]));
    require_kind(info, shmkit::structure_kind::pool);
    shmkit::pool_options o;
    o.auto_recover = p.vm.count("auto-recover") > 0;
    int status = exit_ok;
    with_pool(info, o, [&](auto& pool) {
        using P = std::remove_reference_t<decltype(pool)>;
        if (act == "alloc") {
            status = do_alloc(pool, info, ar, out, err);
        } else if (act == "ls") {
            status = do_ls(pool, out);
        } else if (act == "recover") {
            out << pool.recover_stale() << "\n";
        } else if (act == "free") {
            for (const std::size_t i : indexes) pool.is_allocated(i); // range checks first: nothing freed
            for (const std::size_t i : indexes) {
                if (!pool.free(i)) {
                    err << "shmkit: pool free: " << info.path << ": slot " << i << " was not allocated\n";
                    status = exit_problem;
                }
            }
        } else if (act == "get") {
            if constexpr (is_typed<P>::value) out << format_value(pool.get(indexes[0])) << "\n";
            else write_bytes(out, pool.get(indexes[0]));
        } else { // set
            const std::string text = n == 3 ? pos[2] : std::string();
            if constexpr (is_typed<P>::value) {
                if (n != 3) throw usage_error("pool set: expected TARGET INDEX VALUE (a pool of numbers)");
                pool.set(indexes[0], slot_value(pool, info, text));
            } else {
                pool.set(indexes[0], n == 3 ? text : read_stdin());
            }
        }
    });
    return status;
}

static const registrar reg{
    {"pool", "alloc, free, ls, recover, get, set slots of a pool, raw_pool or str_pool", run_pool}};

} // namespace shmkit_tool
