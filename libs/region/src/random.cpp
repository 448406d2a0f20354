// Random identifiers for new segments (see shmkit/detail/random.hpp).
#include <shmkit/detail/random.hpp>
#include <shmkit/error.hpp>

#include <cerrno>
#include <cstddef>

#include <sys/random.h>

namespace shmkit {
namespace detail {

std::uint64_t random_u64()
{
    std::uint64_t v = 0;
    auto* p = reinterpret_cast<unsigned char*>(&v);
    std::size_t got = 0;
    // Requests of up to 256 bytes are never cut short once the generator is
    // seeded; EINTR (a signal while it is not yet seeded) is retried.
    while (got < sizeof v) {
        const ssize_t n = ::getrandom(p + got, sizeof v - got, 0);
        if (n > 0) got += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EINTR) throw_errno(errno, "random identifier", "getrandom() failed");
    }
    return v;
}

} // namespace detail
} // namespace shmkit
