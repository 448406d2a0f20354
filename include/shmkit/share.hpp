// shmkit/share.hpp: one value per key, stored and fetched whole by any
// process, with shared/exclusive locks and a version counter; the C++
// counterpart of Perl's IPC::ShareLite, and able to talk to it.
#ifndef SHMKIT_SHARE_HPP
#define SHMKIT_SHARE_HPP

#include <shmkit/sync/futex.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace shmkit {

/// Where a share keeps its value.
enum class share_backend {
    /// POSIX shared memory (/dev/shm/shmkit.share.0xKKKKKKKK and value
    /// segments named after it) with shmkit's crash-recoverable lock.
    /// Values of any size; a killed lock holder is recovered in
    /// milliseconds; a killed store leaves the old value or the new one.
    native,
    /// IPC::ShareLite's own System V segments and semaphores: a C++ process
    /// and a Perl process using IPC::ShareLite with the same key share the
    /// value and each other's locks. Inherits ShareLite's limits (see
    /// doc/shmkit/share.adoc): the kernel releases the locks of a killed process
    /// (SEM_UNDO), but a store killed half-way leaves a torn value.
    sharelite
};

/// How a share is opened; the names and meaning of IPC::ShareLite's
/// constructor options.
struct share_options {
    /// Create the share if it does not exist (ShareLite's -create).
    bool create = false;
    /// Fail if the share exists (ShareLite's -exclusive); implies create.
    bool exclusive = false;
    /// Remove the share when this handle is destroyed, by the process that
    /// constructed the handle or called destroy(true), never by a forked
    /// child that inherited the handle (ShareLite's -destroy).
    bool destroy = false;
    /// Permission bits of what a creator makes (exactly; no umask).
    /// ShareLite's default is 0666; shmkit's is 0600 (owner only).
    mode_t mode = 0600;
    /// Segment size hint in bytes (ShareLite's -size, default 65536; 0: the
    /// default). Native: values up to this size are kept in the share's main
    /// segment, larger ones in a value segment of their own. ShareLite:
    /// the size of each segment of the chain. Ignored when attaching: an
    /// existing share keeps the size it was created with. Native: more than
    /// 64 GiB is refused (EINVAL).
    std::size_t size = 65536;
    share_backend backend = share_backend::native;
};

/// Counters and facts about a share (see share::stats()).
struct share_stats {
    std::uint64_t version = 0;         ///< share::version()
    std::size_t value_size = 0;        ///< bytes of the value stored now
    std::size_t segments = 0;          ///< share::num_segments()
    std::size_t bytes_mapped = 0;      ///< bytes of those segments
    std::uint64_t lock_recoveries = 0; ///< native: dead lock holders recovered; sharelite: 0
    std::uint64_t repairs = 0;         ///< native: stores repaired after a writer died; sharelite: 0
};

/// The IPC key IPC::ShareLite uses for `key`: a string of digits is that
/// number (0 to 4294967295, the upper half read as negative ints, as
/// ShareLite does); any other string of 1 to 4 bytes is padded with spaces
/// to 4 bytes and read as a native-endian int (Perl's unpack('i',
/// pack('A4', key))). Throws shmkit::error (EINVAL) for an empty string, a
/// non-number longer than 4 bytes (ShareLite refuses it too), or a number
/// beyond 32 bits (ShareLite would silently wrap it onto another key).
/// O(1), pure.
key_t share_key(std::string_view key);

namespace detail {
class share_impl;
}

/// A value of any size shared by key between processes, stored and fetched
/// whole, with shared/exclusive locks and a version counter.
///
///     shmkit::share_options o;
///     o.create = true;
///     shmkit::share s(1234, o);
///     s.store("hello");
///     std::string v = s.fetch();                 // "hello" in any process
///     s.lock(shmkit::share::lock_ex);            // a read-modify-write
///     s.store(s.fetch() + "!");
///     s.unlock();
///
/// store() and fetch() are atomic: a fetch sees a whole value, never part
/// of one (a native store killed half-way leaves the old value, whole).
/// Without a lock held they lock for themselves (store exclusively, fetch
/// shared). The locks are for read-modify-write sequences across calls, as
/// with IPC::ShareLite.
///
/// Locks: lock(flags) with lock_sh, lock_ex, lock_nb, lock_un as in
/// IPC::ShareLite; also the standard Lockable, TimedLockable,
/// SharedLockable and SharedTimedLockable members, so std::unique_lock and
/// std::shared_lock work. Native: what is held is recorded per thread (the
/// calling thread holds the lock; several threads may share one share
/// object), a lock holder killed is recovered by the next waiter within
/// about 10 ms (shmkit::sync::rwlock), writers are never starved by
/// readers. ShareLite: what is held is recorded per handle, as in
/// IPC::ShareLite (use one handle per thread), and the kernel undoes a
/// killed process's locks (SEM_UNDO).
///
/// Thread safety: native: any member may be called from several threads
/// at once, except move assignment and destruction. ShareLite backend: one
/// thread at a time per handle.
///
/// Errors: shmkit::error naming the share for what the environment refuses
/// (no such share without create: ENOENT; exists with exclusive: EEXIST;
/// permission: EACCES; a full /dev/shm when a store needs a bigger
/// segment: ENOSPC, nothing stored; a destroyed share: EIDRM), and for a
/// bad key (EINVAL; the sharelite backend also refuses key 0, which is
/// IPC_PRIVATE: a new share at every open in IPC::ShareLite);
/// std::invalid_argument for bad lock flags; std::logic_error for
/// fetch_view() without a lock, and for any use of a moved-from share other
/// than its noexcept accessors, assignment and destruction. A constructor
/// that throws leaves nothing held and nothing created.
class share {
public:
    /// IPC::ShareLite's lock flags (the values of Fcntl's LOCK_*).
    static constexpr int lock_sh = 1; ///< shared lock
    static constexpr int lock_ex = 2; ///< exclusive lock
    static constexpr int lock_nb = 4; ///< with lock_sh/lock_ex: do not wait, return false if busy
    static constexpr int lock_un = 8; ///< release

    /// Opens the share of IPC key `key` as `opt` says. Throws as described
    /// above. O(segment size) when it creates (the segment is reserved
    /// with fallocate / written by shmget), a few syscalls otherwise.
    explicit share(key_t key, const share_options& opt = {});
    /// The same with a ShareLite string key (share_key(key)).
    explicit share(std::string_view key, const share_options& opt = {});
    explicit share(const char* key, const share_options& opt = {}) : share(std::string_view(key), opt) {}

    share(share&&) noexcept;
    /// Destroys what this handle held first (as the destructor).
    share& operator=(share&&) noexcept;
    share(const share&) = delete;
    share& operator=(const share&) = delete;
    /// Releases a lock the calling thread (native) / this handle
    /// (ShareLite) still holds, and removes the share if destroy() is true
    /// and this is the process that asked for it; removing takes the
    /// exclusive lock, so it waits for the other holders (a deadlock if
    /// this thread holds the lock through another handle). Throws nothing.
    ~share();

    // ---- Values ----------------------------------------------------------------

    /// Replaces the value with `value` (any size, 0 included) and adds 1 to
    /// the version. Takes the exclusive lock for the call unless the caller
    /// holds it; a caller holding the shared lock has it released, the
    /// store done under the exclusive lock, and the shared lock taken again
    /// (as IPC::ShareLite: not atomic with what was read before). Throws
    /// shmkit::error (ENOSPC or another failure to get memory: nothing
    /// stored, the old value intact; EIDRM: destroyed share),
    /// std::length_error (ShareLite backend: 2 GiB or more), std::bad_alloc. Native: O(|value|), one memcpy; a value larger than
    /// the slot it goes to costs a new value segment (creation, fallocate,
    /// mmap) the first time.
    void store(std::string_view value);
    /// The value (empty if nothing was stored yet). Takes the shared lock
    /// for the call unless the caller holds either lock. Throws
    /// shmkit::error, std::bad_alloc. O(|value|).
    std::string fetch() const;
    /// As fetch(), into `out` (reusing its capacity).
    void fetch(std::string& out) const;
    /// The value in place, without a copy. The caller must hold the lock
    /// (either mode) and the view is valid until it releases it or stores
    /// (native backend; the ShareLite backend assembles the chain's pieces
    /// into a buffer of this handle, valid as long). Throws std::logic_error
    /// if the calling thread/handle holds no lock.
    std::string_view fetch_view() const;

    // ---- Locks (IPC::ShareLite) ---------------------------------------------------

    /// lock_sh or lock_ex, optionally | lock_nb; or lock_un. Taking a mode
    /// the caller already holds does nothing; switching mode releases the
    /// held lock, then takes the other (not atomic, as in ShareLite). With
    /// lock_nb, returns false instead of waiting (and then holds nothing if
    /// it had to release the other mode first). Returns true otherwise.
    /// Throws std::invalid_argument for other flags, and what the backend
    /// throws (see rwlock / semop errors).
    bool lock(int flags);
    /// Releases whatever lock the caller holds; nothing if none. Throws
    /// nothing but what the backend throws for a broken lock.
    void unlock();

    // ---- Locks (standard Lockable / SharedLockable) ------------------------------

    // Each as lock(flags): a mode the caller holds already is kept (true);
    // the other mode is released first. Throw as lock(flags).

    /// lock(lock_ex).
    void lock() { lock(lock_ex); }
    /// lock(lock_ex | lock_nb).
    bool try_lock() { return lock(lock_ex | lock_nb); }
    /// lock(lock_sh).
    void lock_shared() { lock(lock_sh); }
    /// lock(lock_sh | lock_nb).
    bool try_lock_shared() { return lock(lock_sh | lock_nb); }
    /// Releases the shared lock (as unlock()).
    void unlock_shared() { unlock(); }
    /// The exclusive lock, waiting at most `d`; false on timeout. Native: a
    /// dead holder (writer or reader) is recovered once waited on for one
    /// poll interval, or at the deadline if that comes first. ShareLite:
    /// semtimedop(2).
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d)
    {
        return lock_until(lock_ex, sync::deadline_after(d));
    }
    /// As try_lock_for(), until a time point of any clock (one in the past:
    /// as try_lock()).
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        const auto now = Clock::now();
        return tp <= now ? try_lock() : try_lock_for(tp - now);
    }
    /// The shared lock, waiting at most `d`; false on timeout.
    template <class Rep, class Period>
    bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d)
    {
        return lock_until(lock_sh, sync::deadline_after(d));
    }
    /// As try_lock_shared_for(), until a time point of any clock (one in
    /// the past: as try_lock_shared()).
    template <class Clock, class Duration>
    bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& tp)
    {
        const auto now = Clock::now();
        return tp <= now ? try_lock_shared() : try_lock_shared_for(tp - now);
    }
    /// lock_sh or lock_ex if the caller holds that mode; 0 if none. O(1).
    int held() const noexcept;

    // ---- Facts (IPC::ShareLite's accessors) ----------------------------------------

    /// 1 for a fresh share, plus one per store. 64 bits (the ShareLite
    /// backend reads ShareLite's 32-bit counter, which wraps). One load, no
    /// lock, as IPC::ShareLite: a value fetched afterwards may be newer.
    std::uint64_t version() const;
    /// The IPC key (after share_key() for a string). 0 for a moved-from share.
    key_t key() const noexcept;
    /// The options it was opened with (false / 0 for a moved-from share).
    bool create() const noexcept;
    bool exclusive() const noexcept;
    mode_t mode() const noexcept;
    share_backend backend() const noexcept;
    /// Bytes of the share's main segment (the real size, not the hint).
    std::size_t size() const noexcept;
    /// Segments the share uses now (native: 1, plus the value segment
    /// holding the value if it is not inline; ShareLite: the chain's
    /// length). Takes the shared lock if the caller holds none.
    std::size_t num_segments() const;
    /// Whether this handle removes the share when destroyed.
    bool destroy() const noexcept;
    /// Sets it; with true, this process becomes the one that removes it
    /// (a forked child does not, unless it calls destroy(true) itself).
    void destroy(bool on) noexcept;
    /// Counters. Takes the shared lock if the caller holds none.
    share_stats stats() const;

    /// Removes the share of `key` now: its names go; processes attached
    /// keep what they have mapped. Native: their stores fail with EIDRM;
    /// their fetches return an inline value, or one in a value segment they
    /// had mapped, and fail with EIDRM for a value segment they had not
    /// mapped yet. False if there was none. Waits for the exclusive lock
    /// (see ~share()). Throws shmkit::error for other failures (EACCES;
    /// EPERM: another user's share in sticky /dev/shm, left unmarked).
    static bool remove(key_t key, share_backend backend = share_backend::native);
    /// The POSIX name of a native share's main segment, "shmkit.share.0xKKKKKKKK".
    static std::string native_name(key_t key);

private:
    bool lock_until(int mode, deadline_clock::time_point deadline);

    std::unique_ptr<detail::share_impl> impl_;
};

} // namespace shmkit

#endif
