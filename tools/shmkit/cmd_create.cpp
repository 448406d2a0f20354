// shmkit create KIND TARGET: create a buffer, str_buffer, pool, raw_pool,
// str_pool or kv_store (or open it if it exists and matches).
#include "command.hpp"
#include "data_common.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/error.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/str_buffer.hpp>

#include <boost/program_options.hpp>

#include <cerrno>
#include <iostream>
#include <set>

namespace shmkit_tool {

namespace {

namespace po = boost::program_options;

const char* const create_help =
    "usage: shmkit create KIND TARGET [options]\n\n"
    "Creates a segment, or with open-or-create semantics (the default) opens it if it\n"
    "exists and matches what is asked for (kind, type, sizes, capacity; anything else\n"
    "is refused, unchanged). Prints nothing (the path with --verbose).\n\n"
    "  KIND        TARGET  required options\n"
    "  buffer      TARGET  --type T --capacity N        N elements of type T\n"
    "  str_buffer  TARGET  --capacity N --width W       N strings of at most W bytes\n"
    "  pool        TARGET  --type T --capacity N        N slots of type T\n"
    "  raw_pool    TARGET  --capacity N --size B        N slots of B bytes\n"
    "  str_pool    TARGET  --capacity N --max-length L  N strings of at most L bytes\n"
    "  kv          NAME                                 a kv_store (grows by itself)\n\n"
    "TARGET: NAME or /NAME, the POSIX shared-memory object NAME (the file\n"
    "/dev/shm/NAME); anything else containing '/' is a file path (./f, dir/f, //f).\n"
    "kv NAME: NAME or /NAME, the store's POSIX objects.\n"
    "T: i8 u8 i16 u16 i32 u32 i64 u64 f32 f64.\n";

enum class kind { buffer, str_buffer, pool, raw_pool, str_pool, kv };

kind parse_kind(const std::string& s)
{
    if (s == "buffer") return kind::buffer;
    if (s == "str_buffer") return kind::str_buffer;
    if (s == "pool") return kind::pool;
    if (s == "raw_pool") return kind::raw_pool;
    if (s == "str_pool") return kind::str_pool;
    if (s == "kv" || s == "kv_store") return kind::kv;
    throw usage_error("create: unknown KIND '" + s + "' (buffer, str_buffer, pool, raw_pool, str_pool or kv)");
}

/// The options KIND needs, and the ones it takes.
void check_options(const po::variables_map& vm, kind k, const std::string& kind_name)
{
    std::set<std::string> needed, allowed{"mode", "exclusive", "verbose", "attach-capacity"};
    switch (k) {
    case kind::buffer:
    case kind::pool: needed = {"type", "capacity"}; break;
    case kind::str_buffer: needed = {"capacity", "width"}; break;
    case kind::raw_pool: needed = {"capacity", "size"}; break;
    case kind::str_pool: needed = {"capacity", "max-length"}; break;
    case kind::kv: allowed.insert("empty"); break;
    }
    allowed.insert(needed.begin(), needed.end());
    for (const auto& n : needed)
        if (!vm.count(n)) throw usage_error("create " + kind_name + ": --" + n + " is required");
    for (const auto& [name, value] : vm)
        if (name != "help" && name != "positional__" && !allowed.count(name))
            throw usage_error("create " + kind_name + ": --" + name + " does not apply");
    if (vm.count("exclusive") && vm.count("empty"))
        throw usage_error("create kv: --exclusive and --empty exclude each other");
}

/// Opens or creates the structure (which validates an existing one), then
/// lets the handle go: the segment stays.
template <class S, class... A>
std::string make(bool exclusive, const std::string& path, A&&... a)
{
    if (exclusive) return S(shmkit::create_only, path, std::forward<A>(a)...).path();
    return S(shmkit::open_or_create, path, std::forward<A>(a)...).path();
}

} // namespace

int run_create(const args& a, std::ostream& out, std::ostream& err)
{
    (void)err;
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")("type", po::value<std::string>()->value_name("T"), "buffer, pool: the element type T")(
        "capacity", po::value<std::string>()->value_name("N"), "elements or slots (at least 1)")(
        "width", po::value<std::string>()->value_name("W"), "str_buffer: the longest string, in bytes")(
        "size", po::value<std::string>()->value_name("B"), "raw_pool: bytes per slot")(
        "max-length", po::value<std::string>()->value_name("L"), "str_pool: the longest string, in bytes")(
        "mode", po::value<std::string>()->value_name("OCTAL"), "permission bits of what is created, octal (default 600)")(
        "attach-capacity", po::value<std::string>()->value_name("N"), "processes attached at once (default 128, at most 4095)")(
        "exclusive", "fail (exit 1) if TARGET exists")(
        "empty", "kv: open and empty the store, or create it (kv_store's exclusive mode)")(
        "verbose", "print the path (kv: the name) of the segment");
    const parsed_args p = parse_args(a, opts);
    if (p.help) {
        out << create_help << "\n" << opts;
        return exit_ok;
    }
    if (p.positional.size() != 2) throw usage_error("create: expected KIND and TARGET");
    const std::string& kind_name = p.positional[0];
    const kind k = parse_kind(kind_name);
    const po::variables_map& vm = p.vm;
    check_options(vm, k, kind_name);

    const bool exclusive = vm.count("exclusive") > 0;
    const unsigned mode = vm.count("mode") ? parse_mode(vm["mode"].as<std::string>()) : 0600;
    const auto attach = vm.count("attach-capacity")
                            ? static_cast<std::uint32_t>(parse_unsigned(vm["attach-capacity"].as<std::string>(),
                                                                        "--attach-capacity", 4095))
                            : std::uint32_t(128);
    if (attach == 0) throw usage_error("--attach-capacity: at least 1");
    auto number = [&](const char* name) {
        const auto v = parse_unsigned(vm[name].as<std::string>(), (std::string("--") + name).c_str(),
                                      std::numeric_limits<std::uint32_t>::max() - 64);
        if (v == 0) throw usage_error(std::string("--") + name + ": at least 1");
        return static_cast<std::size_t>(v);
    };

    std::string made;
    if (k == kind::kv) {
        const std::string name = kv_name(p.positional[1]);
        shmkit::kv_options o;
        o.mode = static_cast<mode_t>(mode);
        o.attach_capacity = attach;
        // kv_store has no create-only mode: --exclusive looks first (two
        // tools racing may both succeed; the store is created once).
        if (exclusive && kv_exists(name)) shmkit::detail::throw_errno(EEXIST, name, "cannot create");
        if (vm.count("empty")) made = shmkit::kv_store(name, shmkit::exclusive, o).name();
        else made = shmkit::kv_store(name, o).name();
    } else {
        const std::string path = segment_path(p.positional[1]);
        const std::size_t capacity = number("capacity");
        if (k == kind::buffer || k == kind::pool) {
            const shmkit::element_type t = parse_element_type(vm["type"].as<std::string>(), "--type");
            visit_numeric(t, [&](auto tag) {
                using T = typename decltype(tag)::type;
                if (k == kind::buffer) {
                    shmkit::structure_options o;
                    o.mode = static_cast<mode_t>(mode);
                    o.attach_capacity = attach;
                    made = make<shmkit::buffer<T>>(exclusive, path, capacity, o);
                } else {
                    shmkit::pool_options o;
                    o.mode = static_cast<mode_t>(mode);
                    o.attach_capacity = attach;
                    made = make<shmkit::pool<T>>(exclusive, path, capacity, o);
                }
            });
        } else if (k == kind::str_buffer) {
            shmkit::structure_options o;
            o.mode = static_cast<mode_t>(mode);
            o.attach_capacity = attach;
            made = make<shmkit::str_buffer>(exclusive, path, capacity, number("width"), o);
        } else {
            shmkit::pool_options o;
            o.mode = static_cast<mode_t>(mode);
            o.attach_capacity = attach;
            if (k == kind::raw_pool) made = make<shmkit::raw_pool>(exclusive, path, capacity, number("size"), o);
            else made = make<shmkit::str_pool>(exclusive, path, capacity, number("max-length"), o);
        }
    }
    if (vm.count("verbose")) out << made << "\n";
    return exit_ok;
}

static const registrar reg{{"create", "create a buffer, str_buffer, pool, raw_pool, str_pool or kv store", run_create}};

} // namespace shmkit_tool
