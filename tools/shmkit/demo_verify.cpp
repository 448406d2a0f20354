// shmkit demo: the checks and the account.
//
// What is checked, and why each is exact (N rounds per worker, v the
// victim, b = its buffer counter and c = its count in the share's ledger):
//
// - Every survivor exited 0 (it checked its own slot's tag and its frees),
//   the victim was ended by SIGKILL.
// - buffer: every survivor's counter is N (one lock-free incr per round).
// - share: the ledger decodes; total == sum of the per-worker counts (they
//   are written by one store, so a death cannot separate them); total ==
//   version - 1 (the library counts every store itself: an increment lost
//   to a race or a torn store would break it); every survivor's count is N;
//   so the total is exactly (workers - 1) * N + c. The victim's c is read
//   from the ledger, and checked against its buffer counter: c == b, or
//   b + 1 when it died after its commit (step 5) but before its incr (8).
//   Where it was frozen narrows that: in kv_store::put or at halfway,
//   c == b exactly (the store comes after the put).
// - kv_store: check() passes; the key of every committed round (N per
//   survivor, c of the victim's) holds its value; the only other key there
//   may be is the victim's round c, put but not committed; size() equals
//   that count, so there is no stray key either.
// - pool: the slots the victim owned when frozen (read while it could not
//   change them) equal the slots recovered in all (survivors' alloc() with
//   auto_recover, plus the recover_stale() here), and used() is 0 after.
// - locks: the share's lock was recovered exactly once if the victim died
//   in its critical section (it held it for sure: the phase is set after
//   lock() returns and cleared before unlock()), at most once in any case,
//   and by exactly as many survivors as said so; the kv_store's lock at
//   most once, and never unless the victim died inside put. None is left
//   held: taking each now recovers nothing (share: the recovery count
//   equals what the last committer saw; kv_store: check(), which takes the
//   writers' lock, adds no recovery; buffer: try_lock succeeds, never
//   recovered).
#include "demo_verify.hpp"

#include <cstdio>
#include <sstream>

#include <sys/wait.h>

namespace shmkit_tool::demo {

namespace {

template <class... A>
std::string cat(const A&... a)
{
    std::ostringstream o;
    (o << ... << a);
    return o.str();
}

std::string ms(std::int64_t ns)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.1f ms", static_cast<double>(ns) / 1e6);
    return b;
}

std::string list(const std::vector<std::size_t>& v)
{
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s;
}

} // namespace

outcome verify(const plan& p, segments& s, const kill_record& k, const std::vector<worker_record>& ws)
{
    outcome o;
    auto check = [&](bool ok, const std::string& what) {
        if (!ok) o.failures.push_back(what);
        return ok;
    };
    const int n = p.rounds, v = k.victim;
    const std::string vname = cat("worker ", v);
    std::string survivors;
    for (int w = 0; w < p.workers; ++w)
        if (w != v) survivors += (survivors.empty() ? "" : ", ") + std::to_string(w);

    // ---- processes
    const worker_record& vr = ws[static_cast<std::size_t>(v)];
    check(vr.reaped && WIFSIGNALED(vr.status) && WTERMSIG(vr.status) == SIGKILL, vname + " did not die of SIGKILL");
    for (int w = 0; w < p.workers; ++w) {
        const worker_record& r = ws[static_cast<std::size_t>(w)];
        if (w == v) continue;
        for (const std::string& f : r.failures) o.failures.push_back(cat("worker ", w, ": ", f));
        check(r.reaped && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.done,
              cat("worker ", w, " did not finish its rounds"));
    }

    // ---- where it died
    const bool in_section = k.phase == in_ledger || k.phase == in_kv_put;
    const std::string held = k.slots_held.empty() ? "no pool slot"
                                                  : cat("pool slot", k.slots_held.size() > 1 ? "s " : " ", list(k.slots_held));
    const std::string plural_survivors = p.workers > 2 ? "workers " : "worker ";
    o.killed.push_back(cat(vname, " (pid ", k.pid, "), frozen by SIGSTOP at a random instruction of its round ",
                           k.rounds_done + 1, k.freezes > 1 ? cat(" (freeze ", k.freezes, ")") : std::string(),
                           ", SIGKILLed there:"));
    if (k.phase == in_ledger)
        o.killed.push_back(cat("holding the share's exclusive lock, in the middle of its read-modify-write, and ", held));
    else if (k.phase == in_kv_put)
        o.killed.push_back(cat("inside kv_store::put, under the share's exclusive lock, holding ", held));
    else if (k.phase == finished)
        o.killed.push_back(cat("after its last round (it reached its cap), holding ", held));
    else
        o.killed.push_back(cat("between critical sections (no freeze caught it in one), holding ", held));

    // ---- buffer
    auto& buf = s.counters();
    for (int w = 0; w < p.workers; ++w)
        if (w != v)
            check(buf.get(p.done_index(w)) == n, cat("buffer: worker ", w, " counted ", buf.get(p.done_index(w)),
                                                     " rounds, not ", n));
    const std::int64_t b = buf.get(p.done_index(v));
    check(b == k.rounds_done, cat("buffer: ", vname, "'s counter moved after its death"));

    // ---- share
    auto& book = s.book();
    ledger l(p.workers);
    std::int64_t version = 0, recoveries = 0;
    if (check(book.try_lock(), "share: its lock is held, though every worker is gone")) {
        const std::string value = book.fetch();
        check(l.decode(value), "share: the value is not a ledger: \"" + value + "\"");
        const shmkit::share_stats st = book.stats();
        version = static_cast<std::int64_t>(st.version);
        recoveries = static_cast<std::int64_t>(st.lock_recoveries);
        book.unlock();
    }
    std::int64_t sum = 0;
    for (const std::int64_t c : l.count) sum += c;
    const std::int64_t c = l.count[static_cast<std::size_t>(v)];
    o.committed = l.total;
    check(l.total == sum, cat("share: the counter is ", l.total, " but the ledger's parts add up to ", sum));
    check(l.total == version - 1, cat("share: the counter is ", l.total, " after ", version - 1, " stores"));
    for (int w = 0; w < p.workers; ++w)
        if (w != v)
            check(l.count[static_cast<std::size_t>(w)] == n,
                  cat("share: worker ", w, " committed ", l.count[static_cast<std::size_t>(w)], " increments, not ", n));
    check(c == b || c == b + 1, cat("share: ", vname, " committed ", c, " increments but completed ", b, " rounds"));
    check(!(k.phase == in_kv_put || k.phase == at_halfway || k.phase == finished) || c == b,
          cat("share: ", vname, " died before its commit but the ledger has ", c, " increments of it, not ", b));
    check(l.total == static_cast<std::int64_t>(p.workers - 1) * n + c,
          cat("share: the counter is ", l.total, ", expected ", p.workers - 1, " x ", n, " + ", c));
    int takeovers = 0, kv_recoverers = 0;
    std::string share_line = "share lock: the dead worker did not hold it: nothing to take over";
    std::string kv_who;
    std::int64_t kv_repairs = 0;
    for (int w = 0; w < p.workers; ++w) {
        const worker_record& r = ws[static_cast<std::size_t>(w)];
        if (w == v || !r.done) continue;
        if (r.done_report.share_takeover_round >= 0) {
            ++takeovers;
            share_line = cat("share lock: worker ", w, "'s lock_ex took the dead holder's lock over, ",
                             ms(r.done_report.share_takeover_at_ns - k.killed_at_ns), " after the kill");
        }
        if (r.done_report.kv_recovery_round >= 0) {
            ++kv_recoverers;
            kv_who = cat("worker ", w);
            kv_repairs += r.done_report.kv_repairs;
        }
    }
    check(recoveries <= 1, cat("share: its lock was recovered ", recoveries, " times after one death"));
    check(!in_section || recoveries == 1, "share: the dead worker held its lock, but nobody recovered it");
    check(takeovers == recoveries, cat("share: ", recoveries, " lock recoveries, but ", takeovers, " workers saw one"));
    check(recoveries == l.recoveries_seen, "share: the dead worker's lock was still held at the end");
    o.recovered.push_back(share_line);

    // ---- kv_store
    auto& kv = s.rounds();
    const shmkit::kv_stats before = kv.stats();
    std::string why;
    const bool sound = kv.check(&why);
    check(sound, "kv_store: check() failed: " + why);
    const shmkit::kv_stats after = kv.stats();
    check(after.lock_recoveries == before.lock_recoveries, "kv_store: the dead worker's lock was still held at the end");
    check(after.lock_recoveries <= 1, cat("kv_store: its lock was recovered ", after.lock_recoveries, " times"));
    check(k.phase == in_kv_put || after.lock_recoveries == 0, "kv_store: a lock recovery, but nobody died in a put");
    check(static_cast<std::uint64_t>(kv_recoverers) == after.lock_recoveries,
          cat("kv_store: ", after.lock_recoveries, " lock recoveries, but ", kv_recoverers, " workers saw one"));
    std::int64_t wrong = 0;
    std::string first_wrong, got;
    for (int w = 0; w < p.workers; ++w) {
        const int committed = w == v ? static_cast<int>(c) : n;
        for (int r = 0; r < committed; ++r)
            if (!kv.get(kv_key(w, r), got) || got != kv_value(w, r)) {
                if (!wrong++) first_wrong = kv_key(w, r);
            }
    }
    check(wrong == 0, cat("kv_store: ", wrong, " committed rounds missing or wrong, the first ", first_wrong));
    const bool last_put = kv.get(kv_key(v, static_cast<int>(c)), got);
    check(!last_put || got == kv_value(v, static_cast<int>(c)), "kv_store: the dead worker's last put holds a wrong value");
    const std::size_t expect_size = static_cast<std::size_t>(l.total) + (last_put ? 1 : 0);
    check(kv.size() == expect_size, cat("kv_store: ", kv.size(), " keys, expected ", expect_size));
    if (after.lock_recoveries)
        o.recovered.push_back(cat("kv_store: ", kv_who, "'s put recovered the writers' lock the dead worker held (",
                                  kv_repairs, kv_repairs == 1 ? " repair" : " repairs", "); check(): ", sound ? "sound" : "FAILED"));
    else
        o.recovered.push_back(cat("kv_store: the dead worker ",
                                  k.phase == in_kv_put ? "was in put() but did not hold the lock" : "was not in a put",
                                  ": nothing to repair; check(): ", sound ? "sound" : "FAILED"));

    // ---- pool
    auto& slots = s.slots();
    const std::uint64_t by_survivors = slots.stats().recoveries;
    const std::size_t by_parent = slots.recover_stale();
    check(by_survivors + by_parent == k.slots_held.size(),
          cat("pool: ", by_survivors + by_parent, " slots recovered, but the dead worker held ", k.slots_held.size()));
    const std::size_t used = slots.used();
    check(used == 0, cat("pool: ", used, " slots still in use"));
    if (k.slots_held.empty()) o.recovered.push_back("pool: the dead worker held no slot: nothing to recover");
    else
        o.recovered.push_back(cat("pool: the dead worker's ", held, " came back through ",
                                  by_parent == 0 ? "a survivor's alloc() (auto_recover)"
                                  : by_survivors == 0 ? "recover_stale() at the end"
                                                      : "survivors' alloc() and recover_stale()"));

    // ---- buffer lock
    const bool buf_lock = buf.try_lock();
    if (buf_lock) buf.unlock();
    check(buf_lock && buf.stats().lock_recoveries == 0, "buffer: its lock is held or was recovered");

    // ---- the account of the totals
    o.verified.push_back(cat("buffer: ", p.workers <= 6 ? plural_survivors + survivors : cat("the ", p.workers - 1, " others"),
                             " counted ", n, " rounds", p.workers > 2 ? " each; " : "; ", vname, " counted ", b,
                             " before it died"));
    o.verified.push_back(cat("share: counter ", l.total, " = ", p.workers - 1, " x ", n, " + ", c, " by ", vname,
                             " = the ", version - 1, " stores made: no increment lost"));
    if (c == b + 1)
        o.verified.push_back(cat("       (", vname, "'s increment of round ", c, " committed just before it died)"));
    o.verified.push_back(cat("kv_store: all ", l.total, " committed rounds present with their values; no other key",
                             last_put ? cat(" but ", vname, "'s uncommitted last put") : std::string()));
    o.verified.push_back(cat("pool: ", used, " of ", slots.capacity(), " slots in use; locks: share, kv_store, buffer all free"));
    return o;
}

} // namespace shmkit_tool::demo
