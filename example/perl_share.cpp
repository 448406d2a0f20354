// A C++ program and a Perl script (example/perl_share.pl, plain
// IPC::ShareLite) sharing values: the C++ side stores a greeting, Perl
// reads it and answers, then both increment one counter under the
// exclusive lock at the same time, each locking out the other, and the
// count comes out exact.
//
//   perl_share path/to/perl_share.pl
//
// The shares use the sharelite backend (IPC::ShareLite's own System V
// segments and semaphores); the C++ side creates them with destroy, so they
// are gone when it exits.
#include <shmkit/share.hpp>

#include <csignal>
#include <iostream>
#include <stdexcept>
#include <string>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int rounds = 20000;

shmkit::share make_share(key_t key, const std::string& value)
{
    shmkit::share_options o;
    o.backend = shmkit::share_backend::sharelite;
    o.create = true;
    o.exclusive = true; // a fresh share: nobody else's data
    o.destroy = true;   // removed when this handle goes
    shmkit::share s(key, o);
    s.store(value);
    return s;
}

/// A running `perl script key rounds`, with pipes to its stdin and from
/// its stdout. Perl dies with this process; and when this object goes, on
/// any way out, it kills and reaps perl unless wait() has reaped it.
struct perl_process {
    pid_t pid = -1;
    int to = -1, from = -1;

    perl_process(const std::string& script, key_t key);
    perl_process(const perl_process&) = delete;
    perl_process& operator=(const perl_process&) = delete;
    ~perl_process()
    {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }

    /// Waits for perl to exit; whether it succeeded.
    bool wait()
    {
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
};

perl_process::perl_process(const std::string& script, key_t key)
{
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) throw std::runtime_error("pipe failed");
    const std::string k = std::to_string(key), r = std::to_string(rounds);
    const pid_t parent = ::getpid();
    pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL); // kept across exec
        if (::getppid() != parent) ::_exit(127);
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
        ::execlp("perl", "perl", script.c_str(), k.c_str(), r.c_str(), static_cast<char*>(nullptr));
        std::perror("exec perl");
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to = in[1];
    from = out[0];
}

/// Reads one line from `fd` (no buffering beyond it); what came if the
/// rest does not come within 20 s (a perl that hangs does not hang us).
std::string read_line(int fd)
{
    std::string line;
    char c;
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 20000) == 1 && ::read(fd, &c, 1) == 1 && c != '\n') line += c;
    return line;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " path/to/perl_share.pl\n";
        return 2;
    }
    // Keys of this run: IPC keys are global, so make them unlikely to be in use.
    const key_t key = static_cast<key_t>(0x50000000 | (::getpid() & 0xfffff) << 8);
    std::signal(SIGPIPE, SIG_IGN); // a write to a dead perl fails (EPIPE) instead of killing us
    try {
        // Every way out of this block removes the shares (destroy), after
        // perl, declared after them, has been killed and reaped.
        shmkit::share greeting = make_share(key, "hello from C++");
        shmkit::share counter = make_share(key + 100, "0");

        // Perl reads the greeting and answers, then says "ready"; from our
        // "go" on, both increment the counter under its exclusive lock.
        perl_process perl(argv[1], key);
        if (read_line(perl.from) != "ready") throw std::runtime_error("the perl script did not start");
        if (::write(perl.to, "go\n", 3) != 3) throw std::runtime_error("the perl script is gone");
        for (int i = 0; i < rounds; ++i) {
            counter.lock(shmkit::share::lock_ex);
            counter.store(std::to_string(std::stoi(counter.fetch()) + 1));
            counter.unlock();
        }
        if (!perl.wait()) throw std::runtime_error("the perl script failed");
        std::cout << "C++: read \"" << greeting.fetch() << "\" (version " << greeting.version() << ")\n";
        const int total = std::stoi(counter.fetch());
        std::cout << "C++: counter = " << total << " (expected " << 2 * rounds << "), " << counter.version() - 1
                  << " stores\n";
        return total == 2 * rounds ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "perl_share: " << e.what() << "\n";
        return 1;
    }
}
