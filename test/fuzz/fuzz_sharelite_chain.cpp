// Fuzz target: the IPC::ShareLite backend's chain of segments
// (libs/share/src/sharelite_chain.hpp) over arbitrary segment contents:
// header fields, lengths, links to other segments, to removed ones, to
// nothing, cycles, segments smaller than the head. The chain runs over an
// in-memory stand-in for System V (fake_sysv below), whose segments are
// heap blocks of their exact size, so that AddressSanitizer sees any
// access outside one.
//
//   byte 0   segments at the start (1..6);  byte 1   the head's size
//   then     each segment: size, header fields, removed or not
//   then     operations through two handles (two processes' views)
//
// Whatever the bytes: no crash, only shmkit::error (or std::length_error),
// every walk ends. Once a store succeeded, and as long as nothing but the
// two handles changed the segments, both handles must read that value and
// count its segments exactly. At the end the chain is destroyed as
// share::remove() does it; every attachment must have been detached.
#include "fuzz_support.hpp"
#include "sharelite_chain.hpp"

#include <shmkit/error.hpp>

#include <cerrno>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace fuzz {
namespace {

using shmkit::detail::sl_chain;
using shmkit::detail::sl_header;

/// System V shared memory as the chain uses it, in the heap: shmid k is
/// segment k; a removed segment can no longer be attached or looked at
/// (its memory stays valid for those who have it attached).
class fake_sysv final : public shmkit::detail::sl_memory {
public:
    struct segment {
        std::vector<char> bytes; ///< at least a header: a real segment is a whole page
        std::size_t size = 0;    ///< what IPC_STAT says
        bool removed = false;
        int attached = 0;
    };

    int add(std::size_t size)
    {
        auto s = std::make_unique<segment>();
        s->bytes.assign(std::max(size, sizeof(sl_header)), '\0');
        s->size = size;
        segs_.push_back(std::move(s));
        return static_cast<int>(segs_.size() - 1);
    }
    segment& at(int shmid) { return *segs_.at(static_cast<std::size_t>(shmid)); }
    std::size_t count() const noexcept { return segs_.size(); }
    sl_header& header(int shmid) { return *reinterpret_cast<sl_header*>(at(shmid).bytes.data()); }

    char* attach(int shmid, bool) override
    {
        segment* s = find(shmid);
        if (!s) return nullptr;
        ++s->attached;
        return s->bytes.data();
    }
    void detach(char* addr) noexcept override
    {
        for (auto& s : segs_)
            if (s->bytes.data() == addr && s->attached > 0) {
                --s->attached;
                return;
            }
        fail("shmdt of an address that is not attached");
    }
    bool size_of(int shmid, std::size_t& size) override
    {
        const segment* s = find(shmid);
        if (s) size = s->size;
        return s != nullptr;
    }
    int create(std::size_t size, int) override
    {
        if (segs_.size() >= max_segments) {
            errno = ENOSPC; // shmget's answer when SHMMNI or SHMALL is reached
            return -1;
        }
        return add(size);
    }
    void remove(int shmid) noexcept override
    {
        if (segment* s = find(shmid)) s->removed = true;
    }

    int attachments() const noexcept
    {
        int n = 0;
        for (const auto& s : segs_) n += s->attached;
        return n;
    }

private:
    static constexpr std::size_t max_segments = 40;

    segment* find(int shmid)
    {
        if (shmid < 0 || static_cast<std::size_t>(shmid) >= segs_.size() || segs_[shmid]->removed) {
            errno = EINVAL;
            return nullptr;
        }
        return segs_[shmid].get();
    }

    std::vector<std::unique_ptr<segment>> segs_;
};

/// A link: mostly to one of the segments (or -1, or one past them), now
/// and then any int.
std::int32_t pick_link(input& in, std::size_t n)
{
    const std::uint8_t b = in.u8();
    return b < 240 ? static_cast<std::int32_t>(b % (n + 2)) - 1 : static_cast<std::int32_t>(in.u32());
}

/// The segments the input describes; segment 0 is the head.
void build_segments(fake_sysv& mem, input& in, std::size_t n, std::size_t head_size)
{
    for (std::size_t k = 0; k < n; ++k) {
        const std::uint8_t s = in.u8();
        std::size_t size = head_size;
        if (k > 0 && s >= 192) size = s % 4 == 0 ? head_size - 1 - s % 8 : head_size + s % 8; // smaller, or larger
        const int id = mem.add(size);
        sl_header& h = mem.header(id);
        h.next_shmid = pick_link(in, n);
        const std::uint8_t l = in.u8();
        h.length = l < 240 ? static_cast<std::int32_t>(in.u16() % ((head_size - 16) * (n + 1) + 1))
                           : static_cast<std::int32_t>(in.u32());
        h.shm_state = in.u8();
        h.version = in.u8();
        std::vector<char>& bytes = mem.at(id).bytes;
        for (std::size_t b = sizeof(sl_header); b < bytes.size(); ++b) bytes[b] = static_cast<char>(s + b);
        if (k > 0 && (l & 7) == 7) mem.remove(id); // a store killed while it shortened the chain
    }
}

struct chain_run {
    fake_sysv mem;
    std::optional<sl_chain> a, b;
    std::size_t data_size = 0;
    std::optional<std::string> value; ///< the last value stored, while nothing else changed the segments
    bool exact_length = false;        ///< the chain is as long as the value needs (no failed store since)
    bool tampered = false;            ///< segments changed behind the handles' backs: no value expected any more

    void open(sl_chain& c, std::size_t head_size)
    {
        c.adopt_head(0, mem.attach(0, false));
        c.set_geometry(head_size, 0600);
    }
    sl_chain& handle(input& in) { return in.flag() ? *a : *b; }
};

void store_op(chain_run& r, input& in)
{
    const std::size_t len = in.u8() % (r.data_size * 6 + 2);
    std::string v(len, '\0');
    for (std::size_t k = 0; k < len; ++k) v[k] = static_cast<char>('A' + k % 26);
    sl_chain& c = r.handle(in);
    const std::uint32_t version = r.mem.header(0).version;
    try {
        c.store(v);
    } catch (const shmkit::error&) {
        // It failed getting its segments, before writing anything: the old
        // value stays, but the chain may have grown by segments it linked.
        r.exact_length = false;
        return;
    }
    if (r.mem.header(0).version != version + 1) fail("store did not bump the version by one");
    if (!r.tampered) {
        r.value = v;
        r.exact_length = true;
    }
}

void read_op(chain_run& r, unsigned op, input& in)
{
    sl_chain& c = r.handle(in);
    try {
        if (op == 0) {
            const std::string_view got = c.view();
            if (r.value && got != *r.value) fail("view differs from the value stored");
        } else {
            const std::size_t n = c.num_segments();
            if (r.value && r.exact_length && n != std::max<std::size_t>(1, (r.value->size() + r.data_size - 1) / r.data_size))
                fail("num_segments " + std::to_string(n) + " for a value of " + std::to_string(r.value->size()) + " bytes");
        }
    } catch (const shmkit::error& e) {
        if (r.value) fail(std::string("a stored value cannot be read back: ") + e.what());
    }
}

/// Another process (or a crash) changes a segment behind the handles' backs.
void tamper_op(chain_run& r, input& in)
{
    const int id = static_cast<int>(in.u8() % r.mem.count());
    r.tampered = true;
    r.value.reset();
    switch (in.u8() % 4) {
    case 0: if (id != 0) r.mem.remove(id); break;
    case 1: r.mem.header(id).next_shmid = pick_link(in, r.mem.count()); break;
    case 2: r.mem.header(id).length = static_cast<std::int32_t>(in.u16() % (r.data_size * 8)); break;
    default: r.mem.header(0).shm_state += 1; break;
    }
}

void run(input& in)
{
    const std::size_t n = 1 + in.u8() % 6;
    const std::size_t head_size = sizeof(sl_header) + 1 + in.u8() % 48;
    chain_run r;
    r.data_size = head_size - sizeof(sl_header);
    build_segments(r.mem, in, n, head_size);
    r.a.emplace(r.mem, "chain a");
    r.b.emplace(r.mem, "chain b");
    r.open(*r.a, head_size);
    r.open(*r.b, head_size);
    for (int ops = 0; !in.empty() && ops < 64; ++ops) {
        const std::uint8_t op = in.u8() % 8;
        if (op < 3) store_op(r, in);
        else if (op < 7) read_op(r, op % 2, in);
        else tamper_op(r, in);
    }
    r.a.reset();
    r.b.reset();
    sl_chain::remove_chain(r.mem, 0);
    if (r.mem.attachments() != 0) fail(std::to_string(r.mem.attachments()) + " segments left attached");
    if (r.mem.attach(0, false)) fail("remove_chain left the head");
}

} // namespace
} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz::input in(data, size);
    fuzz::run(in);
    return 0;
}
