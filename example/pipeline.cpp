// pipeline: a producer fills pool slots and hands their indices to a
// consumer through a pipe; the consumer adopt()s each slot, so the slots it
// was handed survive the producer's death.
//
//   1. The parent creates a str_pool in a memfd and forks a consumer and a
//      producer (both inherit the memfd and open the pool from it).
//   2. The producer allocates a slot per message, writes the message into
//      it (zero-copy for the consumer, which reads it in place) and sends
//      the slot index down the pipe. After the last message it exits: its
//      process is gone while the consumer still has unread slots.
//   3. The consumer adopts every slot as it arrives, with the holder token
//      the producer sent along (so a slot recovered and reused by someone
//      else in between could not be taken): it becomes the slot's owner, so recover_stale(), run by the parent right after the
//      producer's exit, frees nothing. The consumer then reads and frees
//      each slot.
//   4. For contrast, a slot the producer allocated but never handed over
//      (a message it was still preparing when it exited) is freed by
//      recover_stale(): its owner is dead and nobody adopted it.
#include <shmkit/pool.hpp>

#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int messages = 5;

/// What travels down the pipe: the slot and the token of its holder, so
/// that the consumer's adopt() cannot take a slot that was recovered and
/// allocated again by someone else after the producer died.
struct handoff {
    std::uint64_t slot, token;
};
bool send(int fd, const handoff& h) { return ::write(fd, &h, sizeof h) == sizeof h; }
bool receive(int fd, handoff& h) { return ::read(fd, &h, sizeof h) == sizeof h; }

int producer(int memfd, int to_consumer, int done)
{
    shmkit::str_pool q = shmkit::str_pool::from_fd(memfd);
    for (int k = 0; k < messages; ++k) {
        auto i = q.alloc_set("message " + std::to_string(k) + " from pid " + std::to_string(::getpid()));
        if (!i || !send(to_consumer, {*i, q.holder_token(*i)})) return 1;
    }
    q.alloc_set("an unfinished message, never handed over");
    (void)!::write(done, "x", 1);
    return 0; // exits holding that last slot, and (until adopted) the others
}

int consumer(int memfd, int from_producer, int adopted, int go)
{
    shmkit::str_pool q = shmkit::str_pool::from_fd(memfd);
    std::uint64_t slots[messages];
    for (auto& i : slots) {
        handoff h;
        if (!receive(from_producer, h)) return 1;
        if (!q.adopt(h.slot, h.token)) return 2; // from now on the slot is ours
        i = h.slot;
    }
    (void)!::write(adopted, "x", 1);
    char c;
    if (::read(go, &c, 1) != 1) return 3; // the parent has run recover_stale()
    for (std::uint64_t i : slots) {
        const auto bytes = q.view(i); // zero-copy: length word, then the string
        std::printf("  consumer read slot %llu in place (%zu bytes): %s\n", static_cast<unsigned long long>(i),
                    bytes.size(), q.get(i).c_str());
        if (!q.free(i)) return 4;
    }
    std::fflush(stdout); // the child leaves with _Exit, which flushes nothing
    return 0;
}

/// Forks a child that runs `body` and leaves by _Exit with its result (1,
/// said on stderr, if it throws), never back through main(); it dies with
/// its parent. Returns the child's PID to the parent; throws if fork fails.
template <class F>
pid_t spawn(const char* who, F body)
{
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid > 0) return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int rc = 1;
    try {
        if (::getppid() == parent) rc = body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", who, e.what());
    }
    std::_Exit(rc);
}

int wait_for(pid_t pid)
{
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

} // namespace

int main()
{
    try {
        shmkit::str_pool q = shmkit::str_pool::memfd("pipeline", 16, 64);
        int data[2], adopted[2], go[2], done[2];
        if (::pipe(data) != 0 || ::pipe(adopted) != 0 || ::pipe(go) != 0 || ::pipe(done) != 0)
            throw std::runtime_error("pipe failed");

        // Each child keeps only its own pipe ends, and the parent closes the
        // children's write ends: a child that dies gives EOF to whoever reads it.
        const pid_t cons = spawn("consumer", [&] {
            for (int fd : {data[1], adopted[0], go[1], done[0], done[1]}) ::close(fd);
            return consumer(q.memfd(), data[0], adopted[1], go[0]);
        });
        const pid_t prod = spawn("producer", [&] {
            for (int fd : {data[0], adopted[0], adopted[1], go[0], go[1], done[0]}) ::close(fd);
            return producer(q.memfd(), data[1], done[1]);
        }); // if this fork fails, the consumer dies with us
        for (int fd : {data[1], adopted[1], done[1]}) ::close(fd);

        char c;
        if (::read(done[0], &c, 1) != 1 || wait_for(prod) != 0) throw std::runtime_error("the producer failed");
        std::printf("the producer exited; %zu slots in use (%d handed over, 1 unfinished)\n", q.used(), messages);
        // The consumer owns what it was handed once it says so.
        if (::read(adopted[0], &c, 1) != 1) throw std::runtime_error("the consumer failed");
        const std::size_t freed = q.recover_stale();
        std::printf("recover_stale() freed %zu slot (the unfinished message); the %zu adopted ones stay\n", freed,
                    q.used());
        std::fflush(stdout); // before the consumer writes to the same stdout
        (void)!::write(go[1], "x", 1);
        const int rc = wait_for(cons);
        std::printf("the consumer read and freed its slots (exit %d); %zu slots in use\n", rc, q.used());
        const bool ok = freed == 1 && rc == 0 && q.used() == 0;
        std::printf(ok ? "\nok\n" : "\nFAILED\n");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pipeline: %s\n", e.what());
        std::printf("\nFAILED\n");
        return 1;
    }
}
