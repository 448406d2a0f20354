// How every fuzz target starts: the scratch objects a crashed earlier run
// left in /dev/shm are removed, and `--seeds=DIR` (what the Jamfile
// passes) becomes a run that reads the seed corpus DIR but writes nothing
// into it: new inputs go to a fresh temporary directory, crash artifacts
// beside them. The directory's path is printed; it is removed when the
// run passes and kept when it fails (libFuzzer leaves through _Exit then,
// which skips the atexit handler below).
//
// Without --seeds the arguments are libFuzzer's own, untouched.
#include "fuzz_support.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ftw.h>
#include <libgen.h>
#include <sys/stat.h>

namespace {

std::string& scratch_dir()
{
    static std::string dir;
    return dir;
}

void remove_scratch_dir()
{
    if (scratch_dir().empty()) return;
    ::nftw(scratch_dir().c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
           FTW_DEPTH | FTW_PHYS);
}

/// A fresh /tmp/shmkit-fuzz-PROG.XXXXXX with an empty corpus/ inside.
std::string make_scratch_dir(const char* argv0)
{
    std::string prog(argv0);
    prog = ::basename(prog.data());
    std::string tmpl = "/tmp/shmkit-fuzz-" + prog + ".XXXXXX";
    if (!::mkdtemp(tmpl.data()) || ::mkdir((tmpl + "/corpus").c_str(), 0700) != 0) {
        std::perror("shmkit fuzz: cannot create a scratch directory");
        std::exit(2);
    }
    return tmpl;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv)
{
    fuzz::remove_dead_scratch();
    static std::vector<std::string> words;
    static std::vector<char*> args;
    std::string seeds;
    for (int i = 0; i < *argc; ++i) {
        const char* a = (*argv)[i];
        if (std::strncmp(a, "--seeds=", 8) == 0) seeds = a + 8;
        else words.push_back(a);
    }
    if (seeds.empty()) return 0;
    const std::string dir = make_scratch_dir((*argv)[0]);
    scratch_dir() = dir;
    std::atexit(remove_scratch_dir);
    std::printf("shmkit fuzz: seeds from %s; new inputs and crash artifacts in %s (removed if the run passes)\n",
                seeds.c_str(), dir.c_str());
    std::fflush(stdout);
    words.push_back("-artifact_prefix=" + dir + "/");
    words.push_back(dir + "/corpus"); // libFuzzer writes new inputs into its first corpus directory
    words.push_back(seeds);
    for (std::string& w : words) args.push_back(w.data());
    args.push_back(nullptr);
    *argc = static_cast<int>(words.size());
    *argv = args.data();
    return 0;
}
