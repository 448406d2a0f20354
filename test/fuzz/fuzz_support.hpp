// What the fuzz targets share: the input read as a stream of choices,
// failing loudly on a mismatch with a model, and scratch objects in
// /dev/shm named after the process, so that the next run removes what a
// crashed one left.
#ifndef SHMKIT_TEST_FUZZ_SUPPORT_HPP
#define SHMKIT_TEST_FUZZ_SUPPORT_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace fuzz {

/// The fuzzer's input as a stream of choices. Reading past the end gives
/// zeros, so every input is a complete program.
class input {
public:
    input(const std::uint8_t* data, std::size_t size) noexcept : p_(data), left_(size) {}

    bool empty() const noexcept { return left_ == 0; }
    std::size_t left() const noexcept { return left_; }

    std::uint8_t u8() noexcept { return pod<std::uint8_t>(); }
    std::uint16_t u16() noexcept { return pod<std::uint16_t>(); }
    std::uint32_t u32() noexcept { return pod<std::uint32_t>(); }
    std::uint64_t u64() noexcept { return pod<std::uint64_t>(); }
    bool flag() noexcept { return u8() & 1; }

    /// sizeof(T) bytes as a T (any bit pattern, NaNs included).
    template <class T>
    T pod() noexcept
    {
        static_assert(std::is_trivially_copyable_v<T>);
        T v{};
        const std::size_t n = left_ < sizeof(T) ? left_ : sizeof(T);
        std::memcpy(&v, p_, n);
        skip(n);
        return v;
    }
    /// The next `n` bytes (fewer at the end of the input).
    std::string_view bytes(std::size_t n) noexcept
    {
        if (n > left_) n = left_;
        std::string_view v(reinterpret_cast<const char*>(p_), n);
        skip(n);
        return v;
    }
    std::string_view rest() noexcept { return bytes(left_); }

private:
    void skip(std::size_t n) noexcept
    {
        p_ += n;
        left_ -= n;
    }

    const std::uint8_t* p_;
    std::size_t left_;
};

/// Reports `what` on stderr, removes this process's scratch objects and
/// aborts: libFuzzer records the input as a crash.
[[noreturn]] void fail(const std::string& what);

/// True if `f` threw an E, false if it returned. Other exceptions pass:
/// an exception the target did not expect crashes the run.
template <class E, class F>
bool throws(F&& f)
{
    try {
        f();
    } catch (const E&) {
        return true;
    }
    return false;
}

/// Fails unless `f` throws an E.
template <class E, class F>
void expect_throw(F&& f, const char* what)
{
    if (!throws<E>(f)) fail(std::string(what) + ": expected an exception, none was thrown");
}

/// Bit-for-bit equality (floats: NaNs by their bits, -0.0 differs from 0.0).
template <class T>
bool same_bits(const T& a, const T& b) noexcept
{
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// "shmkit-fuzz-<pid>-<tag>": a name in /dev/shm for this process.
std::string scratch_name(const std::string& tag);
/// The IPC key of this process's native share (0x4f000000 | pid).
int scratch_share_key();
/// The /dev/shm entries whose names begin with `prefix`.
std::vector<std::string> shm_entries(const std::string& prefix);
/// Removes the /dev/shm entries whose names begin with `prefix`.
void remove_shm_prefix(const std::string& prefix);
/// Removes this process's scratch objects (every name scratch_name() and
/// scratch_share_key() give).
void remove_own_scratch();
/// Removes the scratch objects of fuzz processes that no longer run.
void remove_dead_scratch();

} // namespace fuzz

#endif
