// shmkit demo: the body of one worker process (the round is described in
// demo_plan.hpp).
#include "demo_worker.hpp"

#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/share.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <unistd.h>

namespace shmkit_tool::demo {

namespace {

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void send(int fd, const report& m)
{
    for (;;) {
        const ssize_t n = ::write(fd, &m, sizeof m);
        if (n == static_cast<ssize_t>(sizeof m)) return;
        if (n < 0 && errno == EINTR) continue;
        std::_Exit(3); // the parent is gone
    }
}

[[noreturn]] void fail(int r, const std::string& what)
{
    throw std::runtime_error("round " + std::to_string(r) + ": " + what);
}

} // namespace

int run_worker(const plan& p, int w, int report_fd, int go_fd) noexcept
{
    report done;
    done.worker = w;
    done.kind = report::done;
    int r = 0;
    try {
        shmkit::buffer<std::int64_t> counters(shmkit::open_only, p.buffer_path());
        shmkit::pool_options po;
        po.auto_recover = true;
        shmkit::pool<std::int64_t> slots(shmkit::open_only, p.pool_path(), po);
        shmkit::kv_store rounds(p.kv_name());
        shmkit::share_options so;
        shmkit::share book(p.share_key, so);
        const std::size_t phase_at = p.phase_index(w);
        ledger l(p.workers);
        std::string value;

        const bool victim = w == p.victim;
        const int last = victim ? p.victim_cap() : p.rounds;
        for (; r < last; ++r) {
            if (r == p.half() && !victim) {
                counters.set(phase_at, at_halfway);
                report h;
                h.worker = w;
                h.kind = report::halfway;
                h.round = r;
                send(report_fd, h);
                char c;
                ssize_t n;
                do n = ::read(go_fd, &c, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1) return 3;
                counters.set(phase_at, working);
            }
            if (r % p.report_every() == 0 && r < p.rounds) { // (the victim's overtime is not reported)
                report m;
                m.worker = w;
                m.round = r;
                send(report_fd, m);
            }

            // 1. a pool slot, tagged
            const std::int64_t tag = slot_tag(w, r);
            const std::size_t slot = *slots.alloc();
            slots.set(slot, tag);

            // 2. the share's exclusive lock
            book.lock(shmkit::share::lock_ex);
            const std::int64_t locked_at = now_ns();
            counters.set(phase_at, in_ledger);

            // 3. the ledger; did this lock_ex take a dead holder's lock over?
            book.fetch(value);
            if (!l.decode(value)) fail(r, "the share holds no ledger: \"" + value + "\"");
            const auto recoveries = static_cast<std::int64_t>(book.stats().lock_recoveries);
            if (recoveries > l.recoveries_seen) {
                done.share_takeover_round = r;
                done.share_takeover_at_ns = locked_at;
                l.recoveries_seen = recoveries;
            }

            // 4. the round's record in the kv_store
            const shmkit::kv_stats before = rounds.stats();
            counters.set(phase_at, in_kv_put);
            rounds.put(kv_key(w, r), kv_value(w, r));
            counters.set(phase_at, in_ledger);
            const shmkit::kv_stats after = rounds.stats();
            if (after.lock_recoveries > before.lock_recoveries) {
                done.kv_recovery_round = r;
                done.kv_repairs = static_cast<std::int64_t>(after.repairs - before.repairs);
            }

            // 5. commit: total and count[w] in one store
            l.total += 1;
            l.count[static_cast<std::size_t>(w)] += 1;
            book.store(l.encode());

            // 6.
            counters.set(phase_at, working);
            book.unlock();

            // 7. the slot is still ours and as we left it
            if (slots.get(slot) != tag) fail(r, "pool slot " + std::to_string(slot) + " changed under its owner");
            if (!slots.free(slot)) fail(r, "freeing its own pool slot " + std::to_string(slot) + " failed");

            // 8.
            counters.incr(p.done_index(w));
        }
        counters.set(phase_at, finished);
        done.round = r;
        send(report_fd, done);
        // Stay until the parent closes the pipe (a victim that reached its
        // cap is killed here).
        for (char c;;) {
            const ssize_t n = ::read(go_fd, &c, 1);
            if (n == 0 || (n < 0 && errno != EINTR)) break;
        }
        return 0;
    } catch (const std::exception& e) {
        report f;
        f.worker = w;
        f.kind = report::failed;
        f.round = r;
        std::snprintf(f.text, sizeof f.text, "%s", e.what());
        send(report_fd, f);
        return 1;
    }
}

} // namespace shmkit_tool::demo
