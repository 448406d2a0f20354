// The IPC::ShareLite-compatible backend: ShareLite 0.17's System V segment
// chain and three-semaphore lock protocol, so that C++ and Perl processes
// share one value and each other's locks.
//
// What ShareLite keeps (all native-endian, x86-64 and every Linux ABI):
//   semaphore set at KEY, 3 semaphores: [0] 1 once the share is
//     initialised, [1] readers holding the lock, [2] 1 while a writer does;
//   head segment at KEY, then a chain of segments of the head's size
//   (sharelite_chain.hpp: their header, and how the chain is walked).
//
// The lock operations are ShareLite's exactly (the semop tables below,
// SEM_UNDO on every change, so the kernel releases a killed holder's
// locks). Where we differ, only for the better and without changing what
// a Perl process sees:
//   - extra segments are created with IPC_PRIVATE (no key): Perl finds
//     them by shmid anyway, and they can never be another share's segment
//     (ShareLite creates them at KEY+1, KEY+2, ... and so attaches to, and
//     overwrites, the share that has that key);
//   - every error path after the creation lock releases it, and a
//     semaphore set this open created is removed if the open fails;
//   - a blocking semop interrupted by a signal is resumed;
//   - a forked child does not think it holds its parent's lock (SEM_UNDO
//     locks belong to the process that took them).
// A store killed half-way leaves what ShareLite leaves: length 0 (an empty
// value) or the bytes written so far; the native backend does better.
#include "share_impl.hpp"
#include "sharelite_chain.hpp"

#include <shmkit/error.hpp>

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

namespace shmkit {
namespace detail {

namespace {

constexpr std::size_t default_segment_size = 65536;

// ShareLite's semop tables.
constexpr short undo = SEM_UNDO, nowait = IPC_NOWAIT;
sembuf get_ex[3] = {{1, 0, 0}, {2, 0, 0}, {2, 1, undo}};
sembuf get_ex_nb[3] = {{1, 0, nowait}, {2, 0, nowait}, {2, 1, undo | nowait}};
sembuf rm_ex[1] = {{2, -1, undo | nowait}};
sembuf get_sh[2] = {{2, 0, 0}, {1, 1, undo}};
sembuf get_sh_nb[2] = {{2, 0, nowait}, {1, 1, undo | nowait}};
sembuf rm_sh[1] = {{1, -1, undo | nowait}};

} // namespace

class sharelite_share final : public share_impl {
public:
    sharelite_share(key_t key, const share_options& opt)
        : share_impl(key, opt), label_(share_label(key)), chain_(sysv_memory(), label_)
    {
        if (key == IPC_PRIVATE)
            throw_errno(EINVAL, label_,
                        "key 0 is IPC_PRIVATE, a new share at every open in IPC::ShareLite: pass a key");
        open();
    }

    ~sharelite_share() override = default;

    // ---- Locking -------------------------------------------------------------------

    bool acquire(share_mode mode, std::optional<deadline_clock::time_point> deadline) override
    {
        const bool ex = mode == share_exclusive;
        const bool ok = ex ? semop_until(get_ex, get_ex_nb, 3, deadline, "take the exclusive lock")
                           : semop_until(get_sh, get_sh_nb, 2, deadline, "take the shared lock");
        if (ok) {
            held_ = mode;
            held_pid_ = ::getpid();
        }
        return ok;
    }

    void release() override
    {
        const share_mode m = held();
        if (m == share_none) return;
        held_ = share_none;
        if (::semop(semid_, m == share_exclusive ? rm_ex : rm_sh, 1) != 0) {
            if (errno == EIDRM || errno == EINVAL) throw_removed("release the lock");
            throw_errno(errno, label_, "cannot release the lock");
        }
    }

    share_mode held() const noexcept override { return held_pid_ == ::getpid() ? held_ : share_none; }

    // ---- Values --------------------------------------------------------------------

    void store_locked(std::string_view value) override { chain_.store(value); }

    std::string_view view_locked() const override { return chain_.view(); }

    std::size_t num_segments_locked() const override { return chain_.num_segments(); }

    share_stats stats_locked() const override
    {
        share_stats st;
        st.version = version_locked();
        st.value_size = view_locked().size();
        st.segments = num_segments_locked();
        st.bytes_mapped = st.segments * chain_.segment_size();
        return st;
    }

    std::uint64_t version_locked() const override { return sl_load(chain_.head().version); }
    bool version_needs_lock() const noexcept override { return false; }

    std::size_t size() const noexcept override { return chain_.segment_size(); }

    /// ShareLite's destroy: under the exclusive lock, every segment of the
    /// chain, then the semaphore set (which releases the lock).
    void remove() noexcept override
    {
        try {
            if (held() != share_exclusive) {
                if (held() == share_shared) release();
                acquire(share_exclusive, std::nullopt);
            }
        } catch (...) {
        }
        const int head = chain_.head_shmid();
        chain_.detach_all();
        sl_chain::remove_chain(sysv_memory(), head);
        // Not initialised any more, before the set goes: a remover killed
        // here leaves a set that the next creator initialises a new head in
        // (ShareLite's open, too), not one that claims a head that is gone.
        ::semctl(semid_, 0, SETVAL, 0);
        ::semctl(semid_, 0, IPC_RMID);
        held_ = share_none;
    }

private:
    /// ShareLite's new_share(), releasing everything it took if it fails.
    void open()
    {
        const int perms = static_cast<int>(options().mode & 0777);
        const bool create = options().create || options().exclusive;
        bool created_set = false;
        for (int attempt = 0;; ++attempt) {
            semid_ = -1;
            if (create) {
                semid_ = ::semget(key(), 3, perms | IPC_CREAT | IPC_EXCL);
                created_set = semid_ >= 0;
                if (semid_ < 0 && errno == EEXIST && options().exclusive)
                    throw_errno(EEXIST, label_, "the share exists and exclusive is set");
            }
            if (semid_ < 0) semid_ = ::semget(key(), 3, create ? perms | IPC_CREAT : 0);
            if (semid_ < 0) {
                if (errno == ENOENT) throw_errno(ENOENT, label_, "no such IPC::ShareLite share; set create to make it");
                throw_errno(errno, label_, "cannot open the semaphore set");
            }
            // Initialised already (sem[0] is set after the head is complete):
            // attach without the creation lock, so that opening does not
            // wait for the holders of the share's lock as ShareLite's does.
            // A head that is gone although the set says initialised (a
            // remover killed between the two): the creation-lock path below
            // sees to it, as it does for a set being removed.
            if (!created_set && ::semctl(semid_, 0, GETVAL) == 1) {
                try {
                    attach_head(perms, false);
                    return;
                } catch (const error& e) {
                    chain_.detach_all();
                    if (e.code() != std::errc::no_such_file_or_directory) throw;
                } catch (...) {
                    chain_.detach_all();
                    throw;
                }
            }
            // Its creation lock; a set removed meanwhile: open again. A set
            // this open created is removed if even that fails (EACCES: a
            // mode without alter permission), as nothing else would.
            bool locked = false;
            try {
                locked = semop_until(get_ex, get_ex_nb, 3, std::nullopt, "take the creation lock", true);
            } catch (...) {
                if (created_set) ::semctl(semid_, 0, IPC_RMID);
                throw;
            }
            if (locked) break;
            if (attempt > 100) throw_errno(EIDRM, label_, "the semaphore set keeps being removed");
        }
        held_ = share_exclusive;
        held_pid_ = ::getpid();
        try {
            attach_head(perms, create);
        } catch (...) {
            chain_.detach_all();
            if (created_head_ >= 0) ::shmctl(created_head_, IPC_RMID, nullptr);
            if (created_set) {
                ::semctl(semid_, 0, IPC_RMID);
            } else {
                ::semop(semid_, rm_ex, 1);
            }
            held_ = share_none;
            throw;
        }
        release();
    }

    /// Under the creation lock: attaches (creating if allowed) the head
    /// segment, initialises a share nobody has yet, learns the real sizes.
    void attach_head(int perms, bool create)
    {
        std::size_t want = options().size;
        if (want <= sizeof(sl_header)) want = default_segment_size;
        int shmid = -1;
        if (create) {
            // Exclusively first, to know whether a failed open must remove it.
            shmid = ::shmget(key(), want, perms | IPC_CREAT | IPC_EXCL);
            if (shmid >= 0) created_head_ = shmid;
            else if (errno != EEXIST || options().exclusive) throw_errno(errno, label_, "cannot create the head segment");
        }
        if (shmid < 0) shmid = ::shmget(key(), want, 0);
        if (shmid < 0 && errno == EINVAL) shmid = ::shmget(key(), 0, 0); // an existing head, smaller than asked
        if (shmid < 0) throw_errno(errno, label_, "cannot open the head segment");
        void* a = ::shmat(shmid, nullptr, 0);
        if (a == reinterpret_cast<void*>(-1)) throw_errno(errno, label_, "cannot attach the head segment");
        chain_.adopt_head(shmid, static_cast<char*>(a));
        shmid_ds ds{};
        if (::shmctl(shmid, IPC_STAT, &ds) != 0) throw_errno(errno, label_, "cannot stat the head segment");
        if (ds.shm_segsz <= sizeof(sl_header))
            throw_error(errc::corrupt_header, label_, "head segment of " + std::to_string(ds.shm_segsz) + " bytes");
        const int initialised = ::semctl(semid_, 0, GETVAL);
        if (initialised < 0) throw_errno(errno, label_, "cannot read the semaphore set");
        // A head this open created is new (all zeros: a next_shmid of 0
        // would name someone's segment 0) even if the set says initialised.
        if (initialised == 0 || created_head_ >= 0) {
            sl_header& h = chain_.head();
            sl_put(h.length, 0);
            sl_put(h.next_shmid, -1);
            sl_put(h.shm_state, 1u);
            sl_put(h.version, 1u);
            if (::semctl(semid_, 0, SETVAL, 1) != 0) throw_errno(errno, label_, "cannot mark the share initialised");
        }
        chain_.set_geometry(ds.shm_segsz, ds.shm_perm.mode & 0777);
    }

    /// One semop of `ops` (n of them): blocking, non-blocking (`nb` table)
    /// when the deadline has passed, else with a timeout. Resumed after a
    /// signal. False on timeout / would block; also, if `removed_ok`, when
    /// the set was removed meanwhile (EIDRM, EINVAL).
    bool semop_until(sembuf* ops, sembuf* nb, std::size_t n, std::optional<deadline_clock::time_point> deadline,
                     const char* what, bool removed_ok = false) const
    {
        for (;;) {
            int r;
            if (!deadline) {
                r = ::semop(semid_, ops, n);
            } else {
                const auto now = deadline_clock::now();
                if (*deadline <= now) {
                    r = ::semop(semid_, nb, n);
                } else {
                    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now).count();
                    timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
                    r = ::semtimedop(semid_, ops, n, &ts);
                }
            }
            if (r == 0) return true;
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return false;
            if (errno == EIDRM || errno == EINVAL) {
                if (removed_ok) return false;
                throw_removed(what);
            }
            throw_errno(errno, label_, std::string("cannot ") + what);
        }
    }

    /// A semop on our set failed with EINVAL (the set is gone: the kernel
    /// says EIDRM only to a caller that was asleep in it when it went) or
    /// EIDRM: the share was destroyed.
    [[noreturn]] void throw_removed(const char* what) const
    {
        throw_errno(EIDRM, label_, std::string("cannot ") + what + ": the share was destroyed");
    }

    std::string label_;
    sl_chain chain_; ///< the segments, head first (after label_: it names the share by it)
    int semid_ = -1;
    int created_head_ = -1; ///< the head segment, if this open created it
    share_mode held_ = share_none;
    pid_t held_pid_ = 0;
};

std::unique_ptr<share_impl> open_sharelite_share(key_t key, const share_options& opt)
{
    return std::make_unique<sharelite_share>(key, opt);
}

bool remove_sharelite_share(key_t key)
{
    if (key == IPC_PRIVATE) return false;
    const int semid = ::semget(key, 0, 0);
    const int shmid = ::shmget(key, 0, 0);
    if (semid < 0 && shmid < 0) return false;
    if (semid >= 0 && shmid >= 0) {
        share_options o;
        o.backend = share_backend::sharelite;
        try {
            sharelite_share s(key, o);
            s.remove();
            return true;
        } catch (const error&) {
            // Not a sound share: remove what there is below.
        }
    }
    if (shmid >= 0) sl_chain::remove_chain(sysv_memory(), shmid);
    if (semid >= 0) ::semctl(semid, 0, IPC_RMID);
    return true;
}

} // namespace detail
} // namespace shmkit
