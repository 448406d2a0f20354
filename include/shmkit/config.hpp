// shmkit/config.hpp: version, compiler helpers and layout constants.
#ifndef SHMKIT_CONFIG_HPP
#define SHMKIT_CONFIG_HPP

#include <cstddef>

#if !defined(__linux__)
#error "shmkit supports Linux only (futex, memfd, OFD locks)"
#endif

#define SHMKIT_VERSION_MAJOR 0
#define SHMKIT_VERSION_MINOR 1
#define SHMKIT_VERSION_PATCH 0
#define SHMKIT_VERSION_STRING "0.1.0"

#define SHMKIT_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHMKIT_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace shmkit {

/// Size of a cache line. Hot words written by different processes are placed
/// this far apart so that they never share a line (no false sharing).
inline constexpr std::size_t cache_line_size = 64;

} // namespace shmkit

#endif
