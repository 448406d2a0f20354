// shmkit::share: IPC::ShareLite's key mapping and locking policy, once for
// both backends (native_share.cpp, sharelite_share.cpp).
#include "share_impl.hpp"

#include <shmkit/error.hpp>

#include <climits>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

namespace shmkit {

namespace detail {

std::string share_label(key_t key)
{
    char b[32];
    std::snprintf(b, sizeof b, "share key 0x%08x", static_cast<unsigned>(key));
    return b;
}

} // namespace detail

key_t share_key(std::string_view key)
{
    const auto bad = [&](const std::string& why) -> key_t {
        detail::throw_errno(EINVAL, "share key '" + std::string(key) + "'", why);
    };
    if (key.empty()) return bad("empty");
    // Perl's /^\d+$/ also takes digits followed by one newline.
    const std::string_view digits = key.size() > 1 && key.back() == '\n' ? key.substr(0, key.size() - 1) : key;
    if (digits.find_first_not_of("0123456789") == std::string_view::npos) {
        // ShareLite keeps the low 32 bits of any number (so 4294968530 is
        // 1234): numbers beyond 32 bits are refused rather than aliased.
        std::uint64_t v = 0;
        for (char c : digits) {
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
            if (v > UINT32_MAX) return bad("a number beyond 32 bits (IPC::ShareLite would wrap it onto another key)");
        }
        return static_cast<key_t>(static_cast<std::uint32_t>(v));
    }
    if (key.size() > 4) return bad("longer than 4 bytes (IPC::ShareLite uses only the first 4; name it exactly)");
    char padded[4] = {' ', ' ', ' ', ' '};
    std::memcpy(padded, key.data(), key.size());
    std::int32_t v;
    std::memcpy(&v, padded, 4);
    return static_cast<key_t>(v);
}

namespace {

std::unique_ptr<detail::share_impl> open_impl(key_t key, const share_options& opt)
{
    if (opt.backend == share_backend::sharelite) return detail::open_sharelite_share(key, opt);
    return detail::open_native_share(key, opt);
}

detail::share_impl& require(const std::unique_ptr<detail::share_impl>& p)
{
    if (!p) throw std::logic_error("shmkit::share: use of a moved-from share");
    return *p;
}

/// The lock flags as a mode, or throws.
detail::share_mode mode_of(int flags)
{
    const int m = flags & ~share::lock_nb;
    if (m == share::lock_sh) return detail::share_shared;
    if (m == share::lock_ex) return detail::share_exclusive;
    throw std::invalid_argument("shmkit::share::lock: flags " + std::to_string(flags) +
                                " are not lock_sh or lock_ex (optionally | lock_nb), or lock_un");
}

/// Holds `mode` for the scope of a store or fetch unless the caller holds
/// a lock that serves; a shared lock held across a store is given up and
/// taken again afterwards (IPC::ShareLite does the same).
class scoped_mode {
public:
    scoped_mode(detail::share_impl& s, detail::share_mode need) : s_(s), had_(s.held())
    {
        if (had_ == need || had_ == detail::share_exclusive) return;
        if (had_ != detail::share_none) s_.release();
        s_.acquire(need, std::nullopt);
        took_ = true;
    }
    /// Gives back what it took and takes again what the caller held. A
    /// failure to take it again (it cannot happen short of a full table of
    /// held locks) leaves the caller holding nothing, as held() then says.
    ~scoped_mode()
    {
        if (!took_) return;
        try {
            s_.release();
            if (had_ != detail::share_none) s_.acquire(had_, std::nullopt);
        } catch (...) {
        }
    }
    scoped_mode(const scoped_mode&) = delete;
    scoped_mode& operator=(const scoped_mode&) = delete;

private:
    detail::share_impl& s_;
    detail::share_mode had_;
    bool took_ = false;
};

} // namespace

share::share(key_t key, const share_options& opt) : impl_(open_impl(key, opt))
{
    if (opt.destroy) impl_->destroy_pid.store(::getpid(), std::memory_order_relaxed);
}

share::share(std::string_view key, const share_options& opt) : share(share_key(key), opt) {}

share::share(share&&) noexcept = default;

share& share::operator=(share&& o) noexcept
{
    if (this != &o) {
        share old(std::move(*this)); // released and, if asked, removed on the way out
        impl_ = std::move(o.impl_);
    }
    return *this;
}

share::~share()
{
    if (!impl_) return;
    try {
        if (impl_->held() != detail::share_none) impl_->release();
    } catch (...) {
    }
    const pid_t asker = impl_->destroy_pid.load(std::memory_order_relaxed);
    if (asker != 0 && asker == ::getpid()) impl_->remove();
}

void share::store(std::string_view value)
{
    auto& s = require(impl_);
    scoped_mode m(s, detail::share_exclusive);
    s.store_locked(value);
}

std::string share::fetch() const
{
    std::string out;
    fetch(out);
    return out;
}

void share::fetch(std::string& out) const
{
    auto& s = require(impl_);
    scoped_mode m(s, detail::share_shared);
    const std::string_view v = s.view_locked();
    out.assign(v.data(), v.size());
}

std::string_view share::fetch_view() const
{
    auto& s = require(impl_);
    if (s.held() == detail::share_none)
        throw std::logic_error("shmkit::share::fetch_view: the caller holds no lock on " + detail::share_label(s.key()));
    return s.view_locked();
}

bool share::lock(int flags)
{
    auto& s = require(impl_);
    if (flags & lock_un) {
        if (flags != lock_un)
            throw std::invalid_argument("shmkit::share::lock: lock_un combined with other flags (" +
                                        std::to_string(flags) + ")");
        unlock();
        return true;
    }
    const detail::share_mode want = mode_of(flags);
    if (flags & lock_nb) return lock_until(want, deadline_clock::time_point::min());
    const detail::share_mode had = s.held();
    if (had == want) return true;
    if (had != detail::share_none) s.release();
    return s.acquire(want, std::nullopt);
}

bool share::lock_until(int mode, deadline_clock::time_point deadline)
{
    auto& s = require(impl_);
    const auto want = static_cast<detail::share_mode>(mode);
    const detail::share_mode had = s.held();
    if (had == want) return true;
    if (had != detail::share_none) s.release();
    return s.acquire(want, deadline);
}

void share::unlock()
{
    auto& s = require(impl_);
    if (s.held() != detail::share_none) s.release();
}

int share::held() const noexcept { return impl_ ? impl_->held() : 0; }

std::uint64_t share::version() const
{
    auto& s = require(impl_);
    if (!s.version_needs_lock()) return s.version_locked();
    scoped_mode m(s, detail::share_shared);
    return s.version_locked();
}

key_t share::key() const noexcept { return impl_ ? impl_->key() : 0; }
bool share::create() const noexcept { return impl_ && impl_->options().create; }
bool share::exclusive() const noexcept { return impl_ && impl_->options().exclusive; }
mode_t share::mode() const noexcept { return impl_ ? impl_->options().mode : 0; }
share_backend share::backend() const noexcept { return impl_ ? impl_->options().backend : share_backend::native; }
std::size_t share::size() const noexcept { return impl_ ? impl_->size() : 0; }

std::size_t share::num_segments() const
{
    auto& s = require(impl_);
    scoped_mode m(s, detail::share_shared);
    return s.num_segments_locked();
}

bool share::destroy() const noexcept
{
    return impl_ && impl_->destroy_pid.load(std::memory_order_relaxed) == ::getpid();
}

void share::destroy(bool on) noexcept
{
    if (impl_) impl_->destroy_pid.store(on ? ::getpid() : 0, std::memory_order_relaxed);
}

share_stats share::stats() const
{
    auto& s = require(impl_);
    scoped_mode m(s, detail::share_shared);
    return s.stats_locked();
}

bool share::remove(key_t key, share_backend backend)
{
    return backend == share_backend::sharelite ? detail::remove_sharelite_share(key) : detail::remove_native_share(key);
}

std::string share::native_name(key_t key)
{
    char b[40];
    std::snprintf(b, sizeof b, "shmkit.share.0x%08x", static_cast<unsigned>(key));
    return b;
}

} // namespace shmkit
