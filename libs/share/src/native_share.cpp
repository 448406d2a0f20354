// The native share backend: a root segment in POSIX shared memory holding
// the lock, the commit word and two inline areas, and value segments for
// values too large for them. Layout and crash windows:
// shmkit/detail/share_layout.hpp.
#include "share_impl.hpp"

#include <shmkit/detail/random.hpp>
#include <shmkit/detail/share_layout.hpp>
#include <shmkit/error.hpp>
#include <shmkit/segment.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <sys/stat.h>

namespace shmkit {
namespace detail {

namespace {

constexpr std::uint64_t default_size = 65536;
constexpr std::uint64_t max_inline = std::uint64_t(1) << 36; ///< 64 GiB per inline area: a sanity bound

std::uint64_t random_id()
{
    const std::uint64_t id = random_u64();
    return id ? id : 1;
}

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

/// What a root's payload must be, checked before attaching (a refused file
/// stays unchanged; its key is checked by the opener, which knows it).
void check_root_payload(const segment_header& h, const std::string& where)
{
    if (h.n_rwlocks < 1 || h.data_size < sizeof(share_root) || h.params[0] == 0 || h.params[1] % cache_line_size != 0 ||
        h.params[1] > (h.data_size - sizeof(share_root)) / 2)
        throw_error(errc::corrupt_header, where, "not a shmkit share root");
}

segment_layout root_layout(key_t key, const share_options& opt)
{
    const std::uint64_t hint = opt.size ? opt.size : default_size;
    if (hint > max_inline)
        throw_errno(EINVAL, share_label(key), "size hint " + std::to_string(hint) + " is beyond 64 GiB");
    segment_layout l;
    l.kind = structure_kind::share;
    l.elem_type = element_type::none;
    l.capacity = 1;
    const std::uint64_t inline_capacity = round_up(hint, cache_line_size);
    l.data_size = sizeof(share_root) + 2 * inline_capacity;
    l.n_rwlocks = 1;
    l.params[0] = random_id();
    l.params[1] = inline_capacity;
    l.params[2] = static_cast<std::uint32_t>(key);
    l.check_payload = check_root_payload;
    return l;
}

segment_expectation root_expectation()
{
    segment_expectation x;
    x.kind = structure_kind::share;
    x.elem_type = element_type::none;
    x.capacity = 1;
    x.check_payload = check_root_payload;
    return x;
}

segment_expectation value_expectation()
{
    segment_expectation x;
    x.kind = structure_kind::share;
    x.elem_type = element_type::bytes;
    x.elem_size = 1;
    return x;
}

/// Initial state: version 1, slot 0 inline and empty.
void init_root(void* data, std::size_t)
{
    auto* r = static_cast<share_root*>(data);
    r->state.store(share_state(1, 0), std::memory_order_relaxed);
}

} // namespace

class native_share final : public share_impl {
public:
    native_share(key_t key, const share_options& opt) : share_impl(key, opt), name_(share::native_name(key))
    {
        root_seg_ = open_root();
        // A root marked removed but still named: its remover died between
        // the two. Finish the removal, then open (or create) afresh.
        for (int attempt = 0; removed_root(root_seg_); ++attempt) {
            if (attempt == 3) throw_errno(EIDRM, "/" + name_, "the share keeps being removed while opened");
            finish_removal(root_seg_);
            root_seg_ = segment();
            root_seg_ = open_root();
        }
        if (root_seg_.n_rwlocks() < 1 || root_seg_.data_size() < sizeof(share_root) ||
            root_seg_.param(0) == 0 || root_seg_.param(2) != static_cast<std::uint32_t>(key) ||
            root_seg_.param(1) % cache_line_size != 0 ||
            root_seg_.param(1) > (root_seg_.data_size() - sizeof(share_root)) / 2)
            throw_error(errc::corrupt_header, "/" + name_, "not a shmkit share root");
        root_ = static_cast<share_root*>(root_seg_.data());
        // Value segments get the share's permissions, whoever stores.
        struct stat st;
        value_mode_ = ::fstat(root_seg_.fd(), &st) == 0 ? (st.st_mode & 07777) : options().mode;
        share_id_ = root_seg_.param(0);
        inline_capacity_ = root_seg_.param(1);
        lock_ = root_seg_.rwlock(0);
    }

    // ---- Locking -------------------------------------------------------------------

    bool acquire(share_mode mode, std::optional<deadline_clock::time_point> deadline) override
    {
        const bool ex = mode == share_exclusive;
        if (!deadline) {
            if (ex) lock_.lock();
            else lock_.lock_shared();
            return true;
        }
        if (*deadline <= deadline_clock::now())
            return ex ? lock_.try_lock_recovering() : lock_.try_lock_shared_recovering();
        return ex ? lock_.try_lock_until(*deadline) : lock_.try_lock_shared_until(*deadline);
    }

    void release() override
    {
        if (lock_.holds_exclusive()) lock_.unlock();
        else lock_.unlock_shared();
    }

    share_mode held() const noexcept override
    {
        if (lock_.holds_exclusive()) return share_exclusive;
        if (lock_.holds_shared()) return share_shared;
        return share_none;
    }

    // ---- Values --------------------------------------------------------------------

    void store_locked(std::string_view value) override
    {
        // Under the exclusive lock a pending or retired number can only be
        // a dead writer's leftover (a store clears both before it returns),
        // whether or not the lock still says a writer died: a holder that
        // did not store has unlocked since, clearing that mark.
        if (lock_.recovered() || root_->pending.load(std::memory_order_relaxed) ||
            root_->retired.load(std::memory_order_relaxed))
            repair();
        if (root_->removed.load(std::memory_order_relaxed))
            throw_errno(EIDRM, "/" + name_, "the share was destroyed: store refused");
        const std::uint64_t state = root_->state.load(std::memory_order_relaxed);
        const unsigned target = 1 - share_state_slot(state);
        share_slot& slot = root_->slot[target];
        char* dest = storage_for(target, value.size());
        std::memcpy(dest, value.data(), value.size());
        slot.length.store(value.size(), std::memory_order_relaxed);
        // Commit: the value and its slot are complete before the state names them.
        root_->state.store(share_state(share_state_version(state) + 1, target), std::memory_order_release);
        drop_retired();
        forget_unnamed();
    }

    std::string_view view_locked() const override
    {
        // A fetch-only handle would otherwise keep the segments of values
        // replaced since it mapped them: the hint is exact under the lock
        // for this handle's own mappings, and only ever early or late.
        if (mapped_.load(std::memory_order_relaxed) != 0) forget_unnamed();
        const std::uint64_t state = root_->state.load(std::memory_order_acquire);
        const unsigned current = share_state_slot(state);
        const share_slot& slot = root_->slot[current];
        const std::uint64_t gen = slot.gen.load(std::memory_order_relaxed);
        const std::uint64_t length = slot.length.load(std::memory_order_relaxed);
        const auto [data, capacity] = gen == 0 ? inline_area(current) : value_segment(gen);
        if (length > capacity)
            throw_error(errc::corrupt_header, "/" + name_,
                        "the current value's length " + std::to_string(length) + " exceeds its storage of " +
                            std::to_string(capacity) + " bytes");
        return {data, static_cast<std::size_t>(length)};
    }

    std::size_t num_segments_locked() const override
    {
        const unsigned current = share_state_slot(root_->state.load(std::memory_order_acquire));
        return root_->slot[current].gen.load(std::memory_order_relaxed) ? 2 : 1;
    }

    share_stats stats_locked() const override
    {
        share_stats st;
        st.version = version_locked();
        st.value_size = view_locked().size();
        st.segments = num_segments_locked();
        st.bytes_mapped = root_seg_.get_region().size();
        const unsigned current = share_state_slot(root_->state.load(std::memory_order_acquire));
        if (const std::uint64_t gen = root_->slot[current].gen.load(std::memory_order_relaxed)) {
            std::lock_guard<std::mutex> g(cache_mutex_);
            for (const auto& m : cache_)
                if (m.gen == gen) st.bytes_mapped += m.seg.get_region().size();
        }
        st.lock_recoveries = lock_.recoveries();
        st.repairs = root_->repairs.load(std::memory_order_relaxed);
        return st;
    }

    std::uint64_t version_locked() const override
    {
        return share_state_version(root_->state.load(std::memory_order_acquire));
    }
    bool version_needs_lock() const noexcept override { return false; }

    std::size_t size() const noexcept override { return root_seg_.get_region().size(); }

    /// Under the exclusive lock (unless it cannot be had: then without),
    /// marks the root removed, so that stores in other processes refuse
    /// from now on and create no segment that nobody would remove, then
    /// unlinks the names. Mappings stay valid: attached processes can still
    /// fetch the last value.
    void remove() noexcept override
    {
        // A remover that cannot unlink the root must not mark it removed:
        // the mark would make every later open fail (EIDRM) on a name that
        // nobody but its owner can clear.
        if (!may_unlink_root()) return;
        bool locked = false;
        try {
            if (held() == share_none) {
                lock_.lock();
                locked = true;
            }
        } catch (...) {
        }
        root_->removed.store(1, std::memory_order_seq_cst);
        try {
            for (const std::atomic<std::uint64_t>* w :
                 {&root_->slot[0].gen, &root_->slot[1].gen, &root_->pending, &root_->retired})
                if (const std::uint64_t gen = w->load(std::memory_order_relaxed)) region::remove_posix(value_name(gen));
            // Only if the name still is this root: never a share re-created
            // under the key since (segment::unlink() checks the identity).
            root_seg_.unlink();
        } catch (...) {
        }
        if (locked) lock_.unlock();
    }

    /// Whether this process may unlink the root's name: in a sticky
    /// directory (/dev/shm is 1777) only the owner of the file or of the
    /// directory may, or root (checked as euid 0: a process with CAP_FOWNER
    /// alone is refused, on the safe side).
    bool may_unlink_root() const noexcept
    {
        struct stat file, dir;
        if (::fstat(root_seg_.fd(), &file) != 0 || ::stat("/dev/shm", &dir) != 0) return true; // let unlink say
        const uid_t me = ::geteuid();
        return !(dir.st_mode & S_ISVTX) || me == 0 || file.st_uid == me || dir.st_uid == me;
    }

    /// The owner of the root (for the message when it cannot be removed).
    uid_t root_owner() const noexcept
    {
        struct stat file;
        return ::fstat(root_seg_.fd(), &file) == 0 ? file.st_uid : 0;
    }

private:
    struct mapped_value {
        std::uint64_t gen = 0;
        segment seg;
    };

    segment open_root()
    {
        const region_options ro{options().mode};
        const bool create = options().create || options().exclusive;
        try {
            if (options().exclusive) return create_root_exclusively(ro);
            if (create) return segment::posix(open_or_create, name_, root_layout(key(), options()), init_root, ro);
            return segment::posix(open_only, name_, root_expectation());
        } catch (const error& e) {
            if (e.code() == std::errc::no_such_file_or_directory && !create)
                throw_errno(ENOENT, share_label(key()), "no such share (/dev/shm/" + name_ + "); set create to make it");
            if (e.code() == std::errc::file_exists)
                throw_errno(EEXIST, share_label(key()), "the share exists (/dev/shm/" + name_ + ") and exclusive is set");
            throw;
        }
    }

    /// An exclusive create. The name may still hold a root whose remover
    /// died between marking it removed and unlinking it: that removal is
    /// finished and the create tried again, rather than refused for ever as
    /// existing. Anything else under the name exists (EEXIST).
    segment create_root_exclusively(const region_options& ro)
    {
        for (int attempt = 0;; ++attempt) {
            try {
                return segment::posix(create_only, name_, root_layout(key(), options()), init_root, ro);
            } catch (const error& e) {
                if (e.code() != std::errc::file_exists || attempt == 3) throw;
            }
            segment there;
            try {
                there = segment::posix(open_only, name_, root_expectation());
            } catch (const error& e) {
                if (e.code() == std::errc::no_such_file_or_directory) continue; // gone meanwhile
                throw_errno(EEXIST, "/" + name_, "exists");
            }
            if (!removed_root(there)) throw_errno(EEXIST, "/" + name_, "exists");
            finish_removal(there);
        }
    }

    static bool removed_root(const segment& s)
    {
        return s.data_size() >= sizeof(share_root) &&
               static_cast<const share_root*>(s.data())->removed.load(std::memory_order_acquire) != 0;
    }

    /// What a killed remove() left undone: the names of `s`'s value segments
    /// and its own name (if it still is `s`).
    void finish_removal(segment& s)
    {
        const auto* r = static_cast<const share_root*>(s.data());
        share_id_ = s.param(0);
        for (const std::atomic<std::uint64_t>* w : {&r->slot[0].gen, &r->slot[1].gen, &r->pending, &r->retired})
            if (const std::uint64_t gen = w->load(std::memory_order_relaxed)) region::remove_posix(value_name(gen));
        s.unlink();
    }

    std::string value_name(std::uint64_t gen) const
    {
        char id[17];
        std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(share_id_));
        return name_ + "~" + id + "~" + std::to_string(gen);
    }

    std::pair<char*, std::uint64_t> inline_area(unsigned i) const noexcept
    {
        return {static_cast<char*>(root_seg_.data()) + share_inline_offset(i, inline_capacity_), inline_capacity_};
    }

    /// The mapped payload of value segment `gen` (mapped now if this handle
    /// has not yet). Under the lock, so `gen` is named by a slot and exists.
    std::pair<char*, std::uint64_t> value_segment(std::uint64_t gen) const
    {
        std::lock_guard<std::mutex> g(cache_mutex_);
        for (const auto& m : cache_)
            if (m.gen == gen) return {static_cast<char*>(m.seg.data()), m.seg.data_size()};
        segment s;
        try {
            s = segment::posix(open_only, value_name(gen), value_expectation());
        } catch (const error& e) {
            if (e.code() == std::errc::no_such_file_or_directory && root_->removed.load(std::memory_order_acquire))
                throw_errno(EIDRM, "/" + name_,
                            "the share was destroyed before this handle mapped the segment of its value");
            throw;
        }
        if (s.param(0) != share_id_ || s.param(1) != gen)
            throw_error(errc::corrupt_header, s.name(), "not the value segment this share expects");
        return remember(gen, std::move(s), 0);
    }

    /// Keeps `s` mapped in place of `replaced` (a segment a store is
    /// replacing), or else of a mapping no slot names any more. The lock is
    /// held: the slots do not change meanwhile, and no thread of this
    /// process reads a segment that no slot names (a store invalidates
    /// fetch_view()).
    std::pair<char*, std::uint64_t> remember(std::uint64_t gen, segment s, std::uint64_t replaced) const
    {
        const std::uint64_t g0 = root_->slot[0].gen.load(std::memory_order_relaxed);
        const std::uint64_t g1 = root_->slot[1].gen.load(std::memory_order_relaxed);
        mapped_value* victim = &cache_[0];
        for (auto& m : cache_)
            if (m.gen == 0 || (m.gen != g0 && m.gen != g1)) victim = &m;
        for (auto& m : cache_)
            if (replaced && m.gen == replaced) victim = &m;
        if (victim->gen == 0) mapped_.fetch_add(1, std::memory_order_relaxed);
        victim->gen = gen;
        victim->seg = std::move(s);
        return {static_cast<char*>(victim->seg.data()), victim->seg.data_size()};
    }

    /// Where slot `target` (not the current one) can take `bytes`: its
    /// inline area, its value segment if big enough, or a new value
    /// segment (steps 1 of the protocol).
    char* storage_for(unsigned target, std::uint64_t bytes)
    {
        share_slot& slot = root_->slot[target];
        const std::uint64_t old_gen = slot.gen.load(std::memory_order_relaxed);
        if (bytes <= inline_capacity_) {
            if (old_gen) retire(slot, old_gen, 0);
            return inline_area(target).first;
        }
        if (old_gen) {
            const auto [data, capacity] = value_segment(old_gen);
            if (bytes <= capacity) return data;
        }
        // Never 0 (inline) nor a number a slot names, whatever the counter says.
        std::uint64_t gen = root_->next_gen.load(std::memory_order_relaxed) + 1;
        while (gen == 0 || named_by_a_slot(gen)) ++gen;
        root_->next_gen.store(gen, std::memory_order_relaxed);
        root_->pending.store(gen, std::memory_order_relaxed);
        // Room for growth: a value that grows a little at each store does not
        // make a new segment each time.
        segment_layout l;
        l.kind = structure_kind::share;
        l.elem_type = element_type::bytes;
        l.elem_size = 1;
        l.capacity = round_up(bytes + bytes / 4, 4096);
        l.data_size = l.capacity;
        l.attach_capacity = root_seg_.attach_capacity();
        l.params[0] = share_id_;
        l.params[1] = gen;
        const std::string name = value_name(gen);
        segment s;
        try {
            s = create_value_segment(name, l);
        } catch (...) {
            // A create can fail after linking the name (attaching): no slot
            // will ever name it.
            region::remove_posix(name);
            root_->pending.store(0, std::memory_order_relaxed);
            throw;
        }
        char* data;
        {
            std::lock_guard<std::mutex> g(cache_mutex_);
            data = remember(gen, std::move(s), old_gen).first;
        }
        retire(slot, old_gen, gen);
        root_->pending.store(0, std::memory_order_relaxed);
        return data;
    }

    segment create_value_segment(const std::string& name, const segment_layout& l) const
    {
        try {
            return segment::posix(create_only, name, l, {}, {value_mode_});
        } catch (const error& e) {
            // Only a name whose number was handed out but never recorded in
            // a slot (not even in pending) can be there: replaced safely.
            if (e.code() != std::errc::file_exists) throw;
        }
        region::remove_posix(name);
        return segment::posix(create_only, name, l, {}, {value_mode_});
    }

    /// Points `slot` at `gen` (0: inline), recording the segment it named
    /// as retired first, so that a death before drop_retired() leaves a
    /// name the repair finds.
    void retire(share_slot& slot, std::uint64_t old_gen, std::uint64_t gen)
    {
        if (old_gen) root_->retired.store(old_gen, std::memory_order_relaxed);
        slot.gen.store(gen, std::memory_order_relaxed);
    }

    /// Step 4: unlinks the name of the segment a store replaced.
    void drop_retired()
    {
        const std::uint64_t r = root_->retired.load(std::memory_order_relaxed);
        if (!r) return;
        region::remove_posix(value_name(r));
        root_->retired.store(0, std::memory_order_relaxed);
    }

    /// Unmaps the value segments no slot names any more, so a replaced
    /// segment's memory is not kept alive by this handle. Under the lock
    /// (after a store, or in a fetch): the slots do not change meanwhile,
    /// and no thread of this process reads a segment that no slot names,
    /// as a view lasts only while the lock it was taken under is held.
    void forget_unnamed() const
    {
        std::lock_guard<std::mutex> g(cache_mutex_);
        for (auto& m : cache_)
            if (m.gen != 0 && !named_by_a_slot(m.gen)) {
                m = mapped_value{};
                mapped_.fetch_sub(1, std::memory_order_relaxed);
            }
    }

    bool named_by_a_slot(std::uint64_t gen) const noexcept
    {
        return root_->slot[0].gen.load(std::memory_order_relaxed) == gen ||
               root_->slot[1].gen.load(std::memory_order_relaxed) == gen;
    }

    /// After a writer died holding the lock (this one holds it now): the
    /// value is whole (see the protocol); only segment names it was creating
    /// or replacing may be left, unnamed by any slot.
    void repair()
    {
        bool repaired = false;
        for (std::atomic<std::uint64_t>* w : {&root_->pending, &root_->retired}) {
            const std::uint64_t gen = w->load(std::memory_order_relaxed);
            if (!gen) continue;
            if (!named_by_a_slot(gen)) region::remove_posix(value_name(gen));
            w->store(0, std::memory_order_relaxed);
            repaired = true;
        }
        if (repaired) root_->repairs.fetch_add(1, std::memory_order_relaxed);
    }

    std::string name_;
    segment root_seg_;
    share_root* root_ = nullptr;
    std::uint64_t share_id_ = 0, inline_capacity_ = 0;
    mode_t value_mode_ = 0600;
    mutable sync::rwlock lock_;
    mutable std::mutex cache_mutex_;
    mutable mapped_value cache_[2]; ///< the value segments this handle has mapped
    /// How many of cache_ are in use (changed under cache_mutex_): lets a
    /// fetch of an inline value skip the mutex.
    mutable std::atomic<unsigned> mapped_{0};
};

std::unique_ptr<share_impl> open_native_share(key_t key, const share_options& opt)
{
    return std::make_unique<native_share>(key, opt);
}

bool remove_native_share(key_t key)
{
    const std::string name = share::native_name(key);
    try {
        share_options o;
        native_share s(key, o);
        if (!s.may_unlink_root())
            throw_errno(EPERM, share_label(key),
                        "the share belongs to uid " + std::to_string(s.root_owner()) +
                            ": in /dev/shm only its owner (or root) can remove it");
        s.remove();
        return true;
    } catch (const error& e) {
        if (e.code() == std::errc::no_such_file_or_directory) return false;
        // A damaged root (not a share any more) goes by its name alone. Any
        // other failure (EACCES, EMFILE, a full attach table) says nothing
        // against a sound share: it is reported, and nothing is removed.
        if (e.code().category() != error_category() || e.code() == errc::attach_table_full) throw;
        return region::remove_posix(name);
    }
}

} // namespace detail
} // namespace shmkit
