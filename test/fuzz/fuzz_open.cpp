// Fuzz target: opening a segment of each kind from arbitrary bytes
// (open_format.hpp says how the input is read). The bytes are written
// into a scratch file in /dev/shm (one file, rewritten for each input) or,
// for the kinds opened by name, into the POSIX objects of that name.
//
// Before opening, inspect() and check_segment() read the bytes; they must
// change none of them. Opening must succeed or throw shmkit::error or a
// std::exception; a segment refused by the header validation must be left
// byte-for-byte unchanged. An opened structure is exercised
// (open_exercise.hpp) and closed. Never a crash, never a sanitizer report.
#include "fuzz_open.hpp"
#include "fuzz_support.hpp"
#include "open_exercise.hpp"
#include "open_format.hpp"

#include <shmkit/detail/header.hpp>
#include <shmkit/error.hpp>
#include <shmkit/inspect.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace fuzz {

void fix_up(std::string& image, std::uint8_t flags, const header_patch& patch)
{
    if (image.size() < shmkit::detail::header_size) return;
    if (flags & fixup_size) {
        const std::size_t total = (image.size() + page_size - 1) / page_size * page_size;
        image.resize(total, '\0');
        reinterpret_cast<shmkit::detail::segment_header*>(image.data())->total_size = total;
    }
    auto* h = reinterpret_cast<shmkit::detail::segment_header*>(image.data());
    if (flags & fixup_checksum) {
        if (patch) patch(*h);
        h->checksum = shmkit::detail::header_checksum(*h);
    }
}

bool refused_before_attaching(const shmkit::error& e)
{
    using shmkit::errc;
    for (errc c : {errc::not_a_segment, errc::truncated, errc::foreign_platform, errc::version_mismatch,
                   errc::not_initialised, errc::kind_mismatch, errc::type_mismatch, errc::capacity_mismatch})
        if (e.code() == c) return true;
    return false;
}

void inspect_read_only(const std::string& path, const std::function<std::string()>& contents,
                       const std::string& written)
{
    try {
        (void)shmkit::inspect(path);
    } catch (const shmkit::error&) {
    }
    try {
        (void)shmkit::check_segment(path);
    } catch (const shmkit::error&) {
    }
    if (contents() != written) fail("inspect or check_segment changed " + path);
}

namespace {

/// The scratch file the single-segment kinds are opened from, kept open
/// (and its name kept) for the whole run: rewritten for each input.
class image_file {
public:
    image_file() : path_("/dev/shm/" + scratch_name("open"))
    {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd_ < 0) {
            std::perror(path_.c_str());
            std::exit(2);
        }
    }
    void write(const std::string& image)
    {
        if (::ftruncate(fd_, 0) != 0 ||
            ::pwrite(fd_, image.data(), image.size(), 0) != static_cast<ssize_t>(image.size()))
            fail("cannot write the scratch file " + path_ + ": " + std::strerror(errno));
    }
    std::string contents() const
    {
        std::string s(static_cast<std::size_t>(::lseek(fd_, 0, SEEK_END)), '\0');
        if (::pread(fd_, s.data(), s.size(), 0) != static_cast<ssize_t>(s.size())) fail("cannot read " + path_);
        return s;
    }
    int fd() const noexcept { return fd_; }
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

image_file& scratch_file()
{
    static image_file f; // never closed: the name goes with the run (remove_dead_scratch)
    return f;
}

template <class Structure>
void open_and_exercise(const std::string& image)
{
    image_file& f = scratch_file();
    f.write(image);
    inspect_read_only(f.path(), [&] { return f.contents(); }, image);
    try {
        Structure s = Structure::from_fd(f.fd());
        exercise(s);
    } catch (const shmkit::error& e) {
        if (refused_before_attaching(e) && f.contents() != image)
            fail(std::string("a segment refused by validation was changed: ") + e.what());
    } catch (const std::exception&) {
        // Bad sizes and the like refused after the header: an error, not a crash.
    }
}

void open_single(open_kind kind, const std::string& image)
{
    using namespace shmkit;
    switch (kind) {
    case open_kind::buffer_i8: return open_and_exercise<buffer<std::int8_t>>(image);
    case open_kind::buffer_u16: return open_and_exercise<buffer<std::uint16_t>>(image);
    case open_kind::buffer_i32: return open_and_exercise<buffer<std::int32_t>>(image);
    case open_kind::buffer_u64: return open_and_exercise<buffer<std::uint64_t>>(image);
    case open_kind::buffer_f32: return open_and_exercise<buffer<float>>(image);
    case open_kind::buffer_f64: return open_and_exercise<buffer<double>>(image);
    case open_kind::str_buffer: return open_and_exercise<str_buffer>(image);
    case open_kind::pool_i64: return open_and_exercise<pool<std::int64_t>>(image);
    case open_kind::pool_i32: return open_and_exercise<pool<std::int32_t>>(image);
    case open_kind::pool_f64: return open_and_exercise<pool<double>>(image);
    case open_kind::pool_u8: return open_and_exercise<pool<std::uint8_t>>(image);
    case open_kind::raw_pool: return open_and_exercise<raw_pool>(image);
    case open_kind::str_pool: return open_and_exercise<str_pool>(image);
    case open_kind::segment: return open_and_exercise<segment>(image);
    default: return;
    }
}

} // namespace
} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace fuzz;
    input in(data, size);
    const auto kind = static_cast<open_kind>(in.u8() % static_cast<unsigned>(open_kind::count));
    const std::uint8_t flags = in.u8();
    if (!two_images(kind)) {
        std::string image(in.rest());
        fix_up(image, flags, {});
        open_single(kind, image);
        return 0;
    }
    const std::size_t first_size = std::size_t(in.u8()) * page_size;
    std::string first(in.bytes(first_size)), second(in.rest());
    if (kind == open_kind::kv_store) open_kv_store(first, second, flags);
    else open_share(first, second, flags);
    return 0;
}
