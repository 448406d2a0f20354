// What a share backend provides to shmkit::share, which adds the locking
// policy of IPC::ShareLite (lock(flags), store/fetch locking for
// themselves) on top of it once for both backends.
#ifndef SHMKIT_LIBS_SHARE_SHARE_IMPL_HPP
#define SHMKIT_LIBS_SHARE_SHARE_IMPL_HPP

#include <shmkit/share.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace shmkit {
namespace detail {

/// lock modes, as share::held() reports them.
enum share_mode : int { share_none = 0, share_shared = share::lock_sh, share_exclusive = share::lock_ex };

/// One open share. The value operations expect the caller to hold the lock
/// in the mode they name; the front (share.cpp) makes sure it does.
class share_impl {
public:
    share_impl(key_t key, const share_options& opt) : key_(key), opt_(opt) {}
    share_impl(const share_impl&) = delete;
    share_impl& operator=(const share_impl&) = delete;
    virtual ~share_impl() = default;

    /// Takes the lock in `mode` (the caller holds none): waits forever if
    /// `deadline` is empty, else until it; false on timeout. A deadline in
    /// the past is a non-blocking attempt.
    virtual bool acquire(share_mode mode, std::optional<deadline_clock::time_point> deadline) = 0;
    /// Releases the lock the caller holds.
    virtual void release() = 0;
    virtual share_mode held() const noexcept = 0;

    /// Exclusive lock held.
    virtual void store_locked(std::string_view value) = 0;
    /// Either lock held; the view is valid while it is.
    virtual std::string_view view_locked() const = 0;
    /// Either lock held.
    virtual std::size_t num_segments_locked() const = 0;
    /// Either lock held.
    virtual share_stats stats_locked() const = 0;
    /// No lock needed (native) or either lock held (ShareLite).
    virtual std::uint64_t version_locked() const = 0;
    virtual bool version_needs_lock() const noexcept = 0;

    virtual std::size_t size() const noexcept = 0;
    /// Removes the share's names / IPC objects. Throws nothing.
    virtual void remove() noexcept = 0;

    /// The process that removes the share when its handle goes (0: none).
    std::atomic<pid_t> destroy_pid{0};

    key_t key() const noexcept { return key_; }
    const share_options& options() const noexcept { return opt_; }
    share_options& options() noexcept { return opt_; }

private:
    key_t key_;
    share_options opt_;
};

/// The backends (native_share.cpp, sharelite_share.cpp).
std::unique_ptr<share_impl> open_native_share(key_t key, const share_options& opt);
bool remove_native_share(key_t key);
std::unique_ptr<share_impl> open_sharelite_share(key_t key, const share_options& opt);
bool remove_sharelite_share(key_t key);

/// "key 0x0000162e" for messages.
std::string share_label(key_t key);

} // namespace detail
} // namespace shmkit

#endif
