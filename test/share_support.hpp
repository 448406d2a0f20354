// Helpers of the shmkit::share suites (both backends): the values they
// store, comparing what comes back, and opening a share under a umask.
#ifndef SHMKIT_TEST_SHARE_SUPPORT_HPP
#define SHMKIT_TEST_SHARE_SUPPORT_HPP

#include "support.hpp"

#include <shmkit/share.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include <sys/stat.h>
#include <sys/types.h>

namespace test {

/// `n` bytes that depend on `n`, `seed` and the position: every byte value
/// (when n >= a few hundred), NULs included (every 97th byte is one).
inline std::string pattern(std::size_t n, unsigned seed = 0)
{
    std::string s(n, '\0');
    std::uint64_t x = 0x9e3779b97f4a7c15ull ^ (std::uint64_t(n) * 0xbf58476d1ce4e5b9ull) ^ (std::uint64_t(seed) << 32);
    for (std::size_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        s[i] = static_cast<char>(i % 97 == 0 ? 0 : x >> 56);
    }
    return s;
}

/// Where two byte strings first differ (for messages), or -1.
inline long long first_difference(std::string_view a, std::string_view b)
{
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return static_cast<long long>(i);
    return a.size() == b.size() ? -1 : static_cast<long long>(n);
}

/// Checks that `h` fetches exactly `v`: its size, then its bytes.
inline void check_fetches(shmkit::share& h, std::string_view v)
{
    const std::string got = h.fetch();
    BOOST_TEST(got.size() == v.size());
    BOOST_TEST(first_difference(got, v) == -1);
}

/// The share of `key` opened with `o` while the process's umask is `mask`;
/// the umask is restored before it returns, or throws.
inline shmkit::share share_under_umask(mode_t mask, key_t key, const shmkit::share_options& o)
{
    struct restore {
        mode_t old;
        ~restore() { ::umask(old); }
    } const r{::umask(mask)};
    return shmkit::share(key, o);
}

} // namespace test

#endif
