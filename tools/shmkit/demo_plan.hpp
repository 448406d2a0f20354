// shmkit demo: what the parent and its workers agree on. The names of the
// four structures, the buffer's layout, the phases a worker announces in
// it, the ledger kept in the share, the kv_store's keys and values, the
// pool slots' tags and the messages of the report pipe.
//
// One round of worker w (the numbers are the steps the verification and
// the account refer to):
//
//   1. slot = pool.alloc(), set it to tag(w, r)    (blocks while the pool,
//      half as big as the crew, is full; auto_recover frees a dead owner's)
//   2. share.lock(lock_ex)                          phase = in_ledger
//   3. ledger = decode(share.fetch())
//   4. kv.put("w<w>:r<r>", value)                   phase = in_kv_put, then in_ledger
//   5. ledger.total += 1, ledger.count[w] += 1,
//      share.store(encode(ledger))                  <- the round's commit point
//   6. phase = working, share.unlock()
//   7. check pool.get(slot) == tag, pool.free(slot)
//   8. buffer.incr(done[w])                         (lock-free)
//
// The survivors do `rounds` rounds, and wait at half of them until the
// victim is dead, so that they always work (and recover) after the kill.
// The victim (chosen by the parent from the seed before the fork) works on
// without a limit (victim_cap() is only a safety net), so the kill never
// has to wait for the end of its work: the parent freezes it at random
// moments and kills it in the middle of whatever it is doing.
//
// The ledger is one string, stored whole: the total and who made each
// increment are written by one atomic store, so a death anywhere leaves
// them in agreement, and the share's version (the library's own count of
// stores) counts every increment a second time.
#ifndef SHMKIT_TOOLS_DEMO_PLAN_HPP
#define SHMKIT_TOOLS_DEMO_PLAN_HPP

#include <shmkit/share.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace shmkit_tool::demo {

/// The run's parameters and the names it uses (all under /dev/shm).
struct plan {
    int workers = 4;
    int rounds = 2000;
    std::uint64_t seed = 0;
    std::string prefix; ///< "shmkit-demo-<pid>-": every name but the share's starts with it
    key_t share_key = 0;

    std::string buffer_path() const { return "/dev/shm/" + prefix + "counters"; }
    std::string pool_path() const { return "/dev/shm/" + prefix + "slots"; }
    /// The kv_store's root is /dev/shm/<kv_name>, its tables <kv_name>~ID~GEN.
    std::string kv_name() const { return prefix + "rounds"; }
    /// The share's root, /dev/shm/<share_name>; value segments <share_name>~ID~N.
    std::string share_name() const { return shmkit::share::native_name(share_key); }

    int victim = 0;     ///< the worker that is killed
    int kill_round = 0; ///< the parent starts its freezes once the victim reports this round

    /// The survivors stop here until the victim is dead.
    int half() const { return rounds / 2; }
    /// The victim stops here if it is still alive (a safety net: the
    /// parent kills it long before, unless it cannot run at all).
    int victim_cap() const { return rounds + 100000; }
    /// A worker reports progress on the pipe at the start of every
    /// report_every()-th round.
    int report_every() const { return std::max(1, half() / 8); }
    /// Fewer slots than workers: workers wait for each other, and once the
    /// victim died holding one, a survivor's alloc() must recover it.
    std::size_t pool_capacity() const { return static_cast<std::size_t>(std::max(1, workers / 2)); }

    /// buffer<int64_t> layout: rounds completed by worker w, and its phase.
    std::size_t buffer_capacity() const { return 2 * static_cast<std::size_t>(workers); }
    std::size_t done_index(int w) const { return static_cast<std::size_t>(w); }
    std::size_t phase_index(int w) const { return static_cast<std::size_t>(workers + w); }
};

/// Where a worker is, published in the buffer (lock-free sets) for the
/// parent, which reads it while the worker is frozen.
enum phase : std::int64_t {
    working = 0,    ///< between critical sections (waiting for a slot or the lock included)
    in_ledger = 1,  ///< holding the share's exclusive lock: steps 3 and 5
    in_kv_put = 2,  ///< inside kv_store::put, under the share's lock: step 4
    at_halfway = 3, ///< waiting for the parent at half() rounds, holding nothing
    finished = 4,   ///< done, waiting for the parent to close its pipe
};

/// The share's value: "total count[0] ... count[n-1] recoveries_seen".
struct ledger {
    std::int64_t total = 0;
    std::vector<std::int64_t> count;
    /// The share lock's recovery counter as the last committer saw it: a
    /// worker that finds it higher knows its own lock_ex took over.
    std::int64_t recoveries_seen = 0;

    explicit ledger(int workers) : count(static_cast<std::size_t>(workers), 0) {}

    std::string encode() const
    {
        std::string s = std::to_string(total);
        for (const std::int64_t c : count) s += " " + std::to_string(c);
        return s + " " + std::to_string(recoveries_seen);
    }
    /// An empty value is the ledger before the first store. False for
    /// anything else that is not a ledger of this many workers.
    bool decode(std::string_view v)
    {
        if (v.empty()) return true;
        std::istringstream in{std::string(v)};
        in >> total;
        for (std::int64_t& c : count) in >> c;
        in >> recoveries_seen;
        return static_cast<bool>(in) && (in >> std::ws).eof();
    }
};

inline std::string kv_key(int w, int r) { return "w" + std::to_string(w) + ":r" + std::to_string(r); }
inline std::string kv_value(int w, int r)
{
    return "round " + std::to_string(r) + " of worker " + std::to_string(w);
}
/// What worker w writes into its pool slot in round r.
inline std::int64_t slot_tag(int w, int r) { return (static_cast<std::int64_t>(w + 1) << 32) | r; }

/// One message on the report pipe (a packet pipe: one write, one read).
struct report {
    enum kind_t : std::int32_t { progress, halfway, done, failed };
    std::int32_t worker = -1;
    std::int32_t kind = progress;
    std::int64_t round = 0; ///< progress: the round starting; failed: the round it failed in
    // done: what the worker saw of the dead worker (-1: nothing)
    std::int64_t share_takeover_round = -1; ///< the round whose lock_ex took the dead holder's lock over
    std::int64_t share_takeover_at_ns = 0;  ///< when it got it (steady clock)
    std::int64_t kv_recovery_round = -1;    ///< the round whose put recovered the kv_store's lock
    std::int64_t kv_repairs = 0;            ///< repairs that put made
    char text[200] = {};                    ///< failed: what
};

} // namespace shmkit_tool::demo

#endif
