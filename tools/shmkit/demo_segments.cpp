// shmkit demo: creating and removing the shared structures.
#include "demo_segments.hpp"

#include <shmkit/error.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shmkit_tool::demo {

segments::segments(plan& p) : p_(p)
{
    try {
        counters_.emplace(shmkit::create_only, p.buffer_path(), p.buffer_capacity());
        created_buffer_ = true;
        slots_.emplace(shmkit::create_only, p.pool_path(), p.pool_capacity());
        created_pool_ = true;
        // A kv_store opened `exclusive` is emptied if it exists: refuse a
        // name that is there already rather than take someone's store.
        struct stat st;
        if (::stat(("/dev/shm/" + p.kv_name()).c_str(), &st) == 0)
            throw shmkit::error(std::make_error_code(std::errc::file_exists), "/dev/shm/" + p.kv_name(),
                                "a kv_store of that name exists already");
        rounds_.emplace(p.kv_name(), shmkit::exclusive);
        created_kv_ = true;
        // The share's key: 0x5d + the pid's 24 bits; another high byte if taken.
        const auto pid = static_cast<std::uint32_t>(::getpid()) & 0xffffffu;
        for (std::uint32_t high = 0x5d;; ++high) {
            p.share_key = static_cast<key_t>(high << 24 | pid);
            shmkit::share_options o;
            o.create = o.exclusive = true;
            o.size = 4096;
            try {
                book_.emplace(p.share_key, o);
                created_share_ = true;
                break;
            } catch (const shmkit::error& e) {
                if (e.code() != std::errc::file_exists || high == 0x6c) throw;
            }
        }
    } catch (...) {
        remove();
        throw;
    }
}

segments::~segments() { remove(); }

std::vector<std::string> segments::remove() noexcept
{
    if (removed_) return {};
    removed_ = true;
    book_.reset();
    rounds_.reset();
    slots_.reset();
    counters_.reset();
    try {
        if (created_share_) shmkit::share::remove(p_.share_key);
    } catch (...) {
    }
    try {
        if (created_kv_) shmkit::kv_store::remove(p_.kv_name());
    } catch (...) {
    }
    if (created_pool_) ::unlink(p_.pool_path().c_str());
    if (created_buffer_) ::unlink(p_.buffer_path().c_str());
    // Only once something was created under these names are they ours.
    if (!(created_buffer_ || created_share_)) return {};
    std::vector<std::string> left;
    try {
        left = left_in_dev_shm(p_);
    } catch (...) {
    }
    for (const std::string& n : left) ::unlink(("/dev/shm/" + n).c_str());
    return left;
}

std::vector<std::string> segments::left_in_dev_shm(const plan& p)
{
    std::vector<std::string> found;
    DIR* d = ::opendir("/dev/shm");
    if (!d) return found;
    while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if ((!p.prefix.empty() && n.rfind(p.prefix, 0) == 0) || (p.share_key && n.rfind(p.share_name(), 0) == 0))
            found.push_back(n);
    }
    ::closedir(d);
    return found;
}

} // namespace shmkit_tool::demo
