// shmkit/detail/random.hpp: random identifiers for new segments.
//
// Store ids and hash seeds only need to differ between segments and be
// unpredictable to another user; they are drawn once per created segment.
// getrandom(2) is one system call. std::random_device was used before: its
// constructor probes the CPU (cpuid), which a virtual machine may trap, and
// it made creating a store measurably slower there.
#ifndef SHMKIT_DETAIL_RANDOM_HPP
#define SHMKIT_DETAIL_RANDOM_HPP

#include <cstdint>

namespace shmkit {
namespace detail {

/// 64 random bits from the kernel's generator (getrandom(2), which blocks
/// only before the generator is first seeded at boot). Throws shmkit::error
/// with the errno if the kernel refuses (ENOSYS before Linux 3.17).
std::uint64_t random_u64();

} // namespace detail
} // namespace shmkit

#endif
