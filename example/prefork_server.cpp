// prefork_server: the sketch of a prefork server whose workers share four
// structures, and go on serving when one of them is killed mid-request.
//
//   counters  buffer_u64, one request counter per endpoint, bumped with
//             lock-free incr() by whichever worker served the request;
//   slots     str_pool, the connection slots: a worker holds one for the
//             length of a request and writes what it serves into it;
//   sessions  kv_store, the session of each client, written by the worker
//             that served the client last (any worker may serve any client);
//   config    share, the configuration, hot-reloaded: the master stores a
//             new one while the workers run, each worker notices the new
//             version before its next request.
//
// The master plays the listener: it hands each idle worker one request
// over that worker's pipe and reads "took"/"done" reports on a common pipe
// (16-byte writes, atomic on a pipe). A request comes in two parts, as from
// a client: the header, then, once the worker reports it has taken the
// request (it holds a connection slot by then), the body. Knowing which
// request each worker holds lets the master retry the request of a worker
// that dies, as a real server would re-queue the connection. Halfway
// through the first half of the requests, it SIGKILLs a worker that has
// taken a request and waits for its body - a worker stuck on a slow client
// - so the worker dies holding a connection slot; the master respawns it
// and gives the request to the new worker. At the end it checks every
// structure and prints an account. (A worker killed inside a kv_store
// write is example/session_store.cpp's subject.)
#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/share.hpp>
#include <shmkit/str_pool.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int workers = 4;
constexpr int requests = 2000;
constexpr int clients = 50;
constexpr int endpoints = 8;
constexpr int victim = 1;
constexpr int kill_after = requests / 4; // completed requests before the kill

/// Where everything lives; the names carry the master's PID, so that
/// several runs never meet.
struct names {
    std::string counters, slots, sessions;
    key_t config_key;
    explicit names(pid_t master)
        : counters("/dev/shm/shmkit-prefork-" + std::to_string(master) + "-counters"),
          slots("/dev/shm/shmkit-prefork-" + std::to_string(master) + "-slots"),
          sessions("/shmkit-prefork-" + std::to_string(master) + "-sessions"),
          config_key(static_cast<key_t>(0x51000000 | (master & 0xffffff)))
    {
    }
};

struct request {
    int id, client;
};

enum report_kind : int { took = 1, done = 2 };

struct report {
    int worker, request, kind, config_generation;
};

std::string config_text(int generation)
{
    return "generation=" + std::to_string(generation) + "\ngreeting=hello from config " + std::to_string(generation) +
           "\n";
}

int generation_of(const std::string& config) { return std::atoi(config.c_str() + std::string("generation=").size()); }

// ---- The worker -------------------------------------------------------------

int serve(const names& n, int id, int requests_fd, int reports_fd)
{
    shmkit::buffer_u64 counters(shmkit::open_only, n.counters);
    shmkit::pool_options slot_options;
    slot_options.auto_recover = true; // a full pool first frees dead workers' slots
    shmkit::str_pool slots(shmkit::open_only, n.slots, slot_options);
    shmkit::kv_store sessions(n.sessions);
    shmkit::share config(n.config_key);

    std::string current_config;
    std::uint64_t config_version = ~std::uint64_t(0);
    request r;
    while (::read(requests_fd, &r, sizeof r) == sizeof r) {
        // Hot reload: the version counter moves with every store, so one
        // read of it per request tells whether the text must be fetched.
        if (config.version() != config_version) {
            std::shared_lock<shmkit::share> lock(config); // text and version of one store
            current_config = config.fetch();
            config_version = config.version();
        }
        // A connection slot for the length of the request; the guard frees
        // it on every way out, and a killed worker's slot is recovered.
        shmkit::slot_guard slot = slots.alloc_guard(std::chrono::seconds(10));
        if (!slot) return 3;
        slots.set(*slot, "worker " + std::to_string(id) + " serving client " + std::to_string(r.client));
        const report taken{id, r.id, took, generation_of(current_config)};
        if (::write(reports_fd, &taken, sizeof taken) != sizeof taken) return 4;
        request body;
        if (::read(requests_fd, &body, sizeof body) != sizeof body || body.id != r.id) return 4;

        // The work: the client's session, then the endpoint's counter.
        sessions.put("session:" + std::to_string(r.client),
                     "last request " + std::to_string(r.id) + ", served by pid " + std::to_string(::getpid()));
        counters.incr(static_cast<std::size_t>(r.id % endpoints));
        slot.reset();

        const report finished{id, r.id, done, generation_of(current_config)};
        if (::write(reports_fd, &finished, sizeof finished) != sizeof finished) return 4;
    }
    return 0; // the master closed our pipe: shut down
}

// ---- The master ---------------------------------------------------------------

struct worker_process {
    pid_t pid = -1;       // -1 once reaped
    int requests_fd = -1; // the master's end of the worker's request pipe
    int holding = -1;     // the request it holds, -1 when idle

    /// A failure leaves it running: killed and reaped before main()
    /// removes the structures (it could create the kv_store again).
    ~worker_process()
    {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

class master {
public:
    explicit master(const names& n) : names_(n)
    {
        if (::pipe(reports_) != 0) throw std::runtime_error("pipe failed");
        for (int w = 0; w < workers; ++w) spawn(w);
    }

    /// Serves requests [first, last): hands them out to idle workers,
    /// collects their reports, kills the victim once, retries its request.
    void serve_range(int first, int last, int expected_generation)
    {
        int next = first, finished = 0;
        for (int w = 0; w < workers && next < last; ++w) hand(w, next++);
        while (finished < last - first) {
            // We hold the reports pipe's write end ourselves (for respawns),
            // so a worker that died quietly gives no EOF: bound the wait.
            pollfd p{reports_[0], POLLIN, 0};
            report rep;
            if (::poll(&p, 1, 20000) != 1 || ::read(reports_[0], &rep, sizeof rep) != sizeof rep)
                throw std::runtime_error("no report from the workers for 20 s");
            if (rep.worker < 0 || rep.worker >= workers || rep.request != procs_[rep.worker].holding) continue;
            if (rep.kind == took) {
                if (!killed_ && completed_ >= kill_after && rep.worker == victim) kill_and_respawn(rep.worker);
                else send(rep.worker, {rep.request, rep.request % clients}); // the body
                continue;
            }
            if (rep.kind != done) continue;
            ++finished;
            ++completed_;
            if (rep.config_generation != expected_generation) ++stale_config_;
            procs_[rep.worker].holding = -1;
            if (next < last) hand(rep.worker, next++);
        }
    }

    /// Closes every request pipe (the workers' signal to exit) and reaps them.
    bool shut_down()
    {
        bool clean = true;
        for (auto& p : procs_) ::close(p.requests_fd);
        for (auto& p : procs_) {
            int status = 0;
            ::waitpid(p.pid, &status, 0);
            p.pid = -1;
            clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        return clean;
    }

    int completed() const { return completed_; }
    int stale_config() const { return stale_config_; }
    int killed_request() const { return killed_request_; }
    std::size_t slots_recovered_by_master() const { return recovered_; }

private:
    void spawn(int w)
    {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        const pid_t master_pid = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            // The worker dies with the master, whichever way it leaves.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != master_pid) std::_Exit(5);
            ::close(fds[1]);
            ::close(reports_[0]);
            for (int o = 0; o < w; ++o) ::close(procs_[o].requests_fd); // siblings' pipes: not ours
            int rc = 5;
            try {
                rc = serve(names_, w, fds[0], reports_[1]);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "worker %d: %s\n", w, e.what());
            }
            std::_Exit(rc);
        }
        ::close(fds[0]);
        procs_[w].pid = pid;
        procs_[w].requests_fd = fds[1];
    }

    void hand(int w, int id)
    {
        procs_[w].holding = id;
        send(w, {id, id % clients});
    }

    void send(int w, const request& r)
    {
        if (::write(procs_[w].requests_fd, &r, sizeof r) != sizeof r)
            throw std::runtime_error("worker " + std::to_string(w) + " is gone");
    }

    void kill_and_respawn(int w)
    {
        const int lost = procs_[w].holding;
        ::kill(procs_[w].pid, SIGKILL);
        ::waitpid(procs_[w].pid, nullptr, 0);
        procs_[w].pid = -1;
        ::close(procs_[w].requests_fd);
        killed_ = true;
        killed_request_ = lost;
        // What a supervisor would do at once: give back the slot of the
        // dead (the workers' auto_recover would also do it, but only once
        // the pool looks full).
        shmkit::str_pool slots(shmkit::open_only, names_.slots);
        recovered_ = slots.recover_stale();
        spawn(w);
        hand(w, lost); // the retry
    }

    names names_;
    int reports_[2];
    worker_process procs_[workers];
    int completed_ = 0, stale_config_ = 0, killed_request_ = -1;
    bool killed_ = false;
    std::size_t recovered_ = 0;
};

// ---- The account --------------------------------------------------------------

bool verify(const names& n, master& m, bool workers_exited_cleanly)
{
    shmkit::buffer_u64 counters(shmkit::open_only, n.counters);
    shmkit::str_pool slots(shmkit::open_only, n.slots);
    shmkit::kv_store sessions(n.sessions);

    std::uint64_t counted = 0;
    for (int e = 0; e < endpoints; ++e) counted += counters.get(static_cast<std::size_t>(e));
    int sessions_present = 0;
    for (int c = 0; c < clients; ++c) sessions_present += sessions.contains("session:" + std::to_string(c));
    std::string why;
    const bool sound = sessions.check(&why);
    const std::size_t late_recoveries = slots.recover_stale();

    std::printf("%d workers served %d requests for %d clients; worker %d was SIGKILLed holding the slot of request %d,\n"
                "respawned, and the request was served again by its successor.\n\n",
                workers, m.completed(), clients, victim, m.killed_request());
    std::printf("counters (buffer):   %llu requests counted over %d endpoints\n",
                static_cast<unsigned long long>(counted), endpoints);
    std::printf("slots (str_pool):    %zu slot(s) of the dead worker recovered; %zu in use now\n",
                m.slots_recovered_by_master() + late_recoveries, slots.used());
    std::printf("sessions (kv_store): %d of %d clients have a session; check(): %s\n", sessions_present, clients,
                sound ? "sound" : why.c_str());
    std::printf("config (share):      reloaded while serving; %d request(s) served with a stale config\n",
                m.stale_config());

    return workers_exited_cleanly && m.completed() == requests &&
           counted == requests && m.slots_recovered_by_master() == 1 && slots.used() == 0 &&
           sessions_present == clients &&
           sound && m.stale_config() == 0;
}

void remove_all(const names& n)
{
    ::unlink(n.counters.c_str());
    ::unlink(n.slots.c_str());
    shmkit::kv_store::remove(n.sessions);
    shmkit::share::remove(n.config_key);
}

} // namespace

int main()
{
    std::signal(SIGPIPE, SIG_IGN); // a request to a dead worker fails (EPIPE), not the master
    const names n(::getpid());
    bool ok = false;
    try {
        shmkit::buffer_u64 counters(shmkit::create_only, n.counters, endpoints);
        shmkit::str_pool slots(shmkit::create_only, n.slots, workers * 2, 128);
        shmkit::kv_store sessions(n.sessions, shmkit::exclusive);
        shmkit::share_options o;
        o.exclusive = true;
        shmkit::share config(n.config_key, o);
        config.store(config_text(1));

        master m(n);
        m.serve_range(0, requests / 2, 1);
        config.store(config_text(2)); // hot reload: every later request sees it
        m.serve_range(requests / 2, requests, 2);
        const bool clean = m.shut_down();
        ok = verify(n, m, clean);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "prefork_server: %s\n", e.what());
    }
    remove_all(n);
    std::printf(ok ? "\nok\n" : "\nFAILED\n");
    return ok ? 0 : 1;
}
