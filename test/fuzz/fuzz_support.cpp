// fuzz_support: see fuzz_support.hpp.
#include "fuzz_support.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

namespace fuzz {

namespace {

constexpr const char* scratch_prefix = "shmkit-fuzz-";
constexpr const char* share_prefix = "shmkit.share.0x4f";
constexpr int share_key_base = 0x4f000000;

bool running(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH; }

/// Calls f(name) for each entry of /dev/shm.
void each_shm_entry(const std::function<void(const std::string&)>& f)
{
    DIR* d = ::opendir("/dev/shm");
    if (!d) return;
    while (const dirent* e = ::readdir(d)) f(e->d_name);
    ::closedir(d);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

/// The PID a scratch name belongs to, or 0 if it is not a scratch name.
long owner_pid(const std::string& name)
{
    if (starts_with(name, scratch_prefix)) return std::strtol(name.c_str() + std::strlen(scratch_prefix), nullptr, 10);
    // A share of key 0x4fPPPPPP: its root and its value segments.
    if (starts_with(name, share_prefix) && name.size() >= std::strlen(share_prefix) + 6)
        return std::strtol(name.substr(std::strlen(share_prefix), 6).c_str(), nullptr, 16);
    return 0;
}

} // namespace

void fail(const std::string& what)
{
    std::fprintf(stderr, "shmkit fuzz: FAILED: %s\n", what.c_str());
    std::fflush(stderr);
    remove_own_scratch();
    std::abort();
}

std::string scratch_name(const std::string& tag) { return scratch_prefix + std::to_string(::getpid()) + "-" + tag; }

int scratch_share_key() { return share_key_base | (::getpid() & 0xffffff); }

std::vector<std::string> shm_entries(const std::string& prefix)
{
    std::vector<std::string> found;
    each_shm_entry([&](const std::string& name) {
        if (starts_with(name, prefix)) found.push_back(name);
    });
    return found;
}

void remove_shm_prefix(const std::string& prefix)
{
    each_shm_entry([&](const std::string& name) {
        if (starts_with(name, prefix)) ::shm_unlink(name.c_str());
    });
}

void remove_own_scratch()
{
    const long me = ::getpid();
    each_shm_entry([&](const std::string& name) {
        if (owner_pid(name) == me) ::shm_unlink(name.c_str());
    });
}

void remove_dead_scratch()
{
    each_shm_entry([](const std::string& name) {
        const long pid = owner_pid(name);
        if (pid > 0 && !running(pid)) ::shm_unlink(name.c_str());
    });
}

} // namespace fuzz
