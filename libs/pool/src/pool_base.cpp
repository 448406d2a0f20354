// The slow paths of the pool: opening, blocking, batches, recovery, stats.
// Every shared-memory transition and its crash behaviour: pool_base.hpp.
#include <shmkit/detail/pool_base.hpp>

#include <shmkit/detail/checked.hpp>
#include <shmkit/error.hpp>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace shmkit {

// ---- slot_guard ---------------------------------------------------------------

slot_guard::slot_guard(detail::pool_base* p, std::size_t i) noexcept
    : pool_(p), index_(i), token_(p->holder_token(i)), fork_generation_(detail::fork_generation())
{
}

slot_guard::slot_guard(slot_guard&& o) noexcept
    : pool_(std::exchange(o.pool_, nullptr)), index_(o.index_), token_(o.token_),
      fork_generation_(o.fork_generation_)
{
}

slot_guard& slot_guard::operator=(slot_guard&& o) noexcept
{
    if (this != &o) {
        reset();
        pool_ = std::exchange(o.pool_, nullptr);
        index_ = o.index_;
        token_ = o.token_;
        fork_generation_ = o.fork_generation_;
    }
    return *this;
}

void slot_guard::reset() noexcept
{
    detail::pool_base* p = std::exchange(pool_, nullptr);
    // A copy made by fork() in a child: the slot is the parent's.
    if (p && fork_generation_ == detail::fork_generation()) {
        try {
            // By token: a slot handed over and adopted (or freed and given to
            // someone else) meanwhile is no longer the guard's to free.
            p->free(index_, token_);
        } catch (...) {
            // free() throws only for an index out of range (impossible for a
            // slot it gave out) or when a forked child cannot attach; a
            // destructor must not throw, and the slot is then recovered as
            // a dead owner's.
        }
    }
}

namespace detail {

namespace {

/// The payload's parts, from the facts in the header.
struct pool_geometry {
    std::uint64_t lines_offset, owners_offset, slots_offset, total;
};

std::optional<pool_geometry> geometry(std::uint64_t capacity, std::uint64_t elem_size, std::uint64_t n_lines)
{
    const std::uint64_t lines_offset = sizeof(pool_control) + sizeof(pool_counters);
    const auto lines = checked_mul(n_lines, sizeof(pool_handle_line));
    const auto owners_offset = lines ? checked_add(lines_offset, *lines) : std::nullopt;
    const auto owners = checked_mul(capacity, sizeof(std::uint64_t));
    const auto owners_rounded = owners ? checked_align_up(*owners, cache_line_size) : std::nullopt;
    const auto slots_offset =
        owners_offset && owners_rounded ? checked_add(*owners_offset, *owners_rounded) : std::nullopt;
    const auto slots = checked_mul(capacity, elem_size);
    const auto total = slots_offset && slots ? checked_add(*slots_offset, *slots) : std::nullopt;
    if (!total) return std::nullopt;
    return pool_geometry{lines_offset, *owners_offset, *slots_offset, *total};
}

/// What a pool's payload must be for every access to stay inside it:
/// checked before attaching (a refused file stays unchanged). A slot is
/// one element, but for str_pool: a 4-byte length and the string, padded
/// to 4 (str_pool.cpp).
void check_payload(const segment_header& h, const std::string& where)
{
    const std::uint64_t n_lines = h.params[0], stride = h.params[1];
    const bool strings = h.elem_type == static_cast<std::uint32_t>(element_type::strings);
    const std::uint64_t slot = strings ? (4 + std::uint64_t(h.elem_size) + 3) & ~std::uint64_t(3) : h.elem_size;
    if (n_lines != h.attach_capacity || h.n_mutexes < 1)
        throw_error(errc::corrupt_header, where,
                    "pool handle lines " + std::to_string(n_lines) + " differ from the attach capacity " +
                        std::to_string(h.attach_capacity) + ", or no alloc_n mutex");
    if (h.elem_size == 0 || stride > UINT32_MAX || stride != slot)
        throw_error(errc::corrupt_header, where, "bad slot size " + std::to_string(stride));
    const auto g = geometry(h.capacity, stride, n_lines);
    if (h.capacity == 0 || !g || g->total > h.data_size || h.capacity > SIZE_MAX / stride)
        throw_error(errc::corrupt_header, where, "pool capacity and slot size do not fit the data area");
}

} // namespace

segment_layout pool_base::layout(const pool_spec& spec, std::size_t capacity, const pool_options& opt)
{
    if (capacity == 0) throw std::invalid_argument("shmkit: a pool's capacity must not be 0");
    if (spec.elem_size == 0 || spec.stride < spec.elem_size)
        throw std::invalid_argument("shmkit: a pool's element size must not be 0");
    const auto g = geometry(capacity, spec.stride, opt.attach_capacity);
    if (!g) throw std::invalid_argument("shmkit: pool capacity " + std::to_string(capacity) + " is too large");
    segment_layout l;
    l.kind = structure_kind::pool;
    l.elem_type = spec.type;
    l.elem_size = spec.elem_size;
    l.capacity = capacity;
    l.data_size = g->total;
    l.n_mutexes = 1; // serialises blocked alloc_n callers
    l.attach_capacity = opt.attach_capacity;
    l.params[0] = opt.attach_capacity; // handle lines
    l.params[1] = spec.stride; // bytes per slot
    return l;
}

segment_expectation pool_base::expectation(const pool_spec& spec, std::size_t capacity)
{
    segment_expectation x;
    x.kind = structure_kind::pool;
    x.elem_type = spec.type;
    x.elem_size = spec.elem_size;
    x.capacity = capacity;
    x.elem_size_name = spec.size_name;
    x.check_payload = check_payload;
    return x;
}

segment pool_base::open(open_only_t, const std::string& path, const pool_spec& spec)
{
    return open_segment(open_only, path, expectation(spec, 0));
}

segment pool_base::open(create_only_t, const std::string& path, std::size_t capacity, const pool_spec& spec,
                        const pool_options& opt)
{
    return open_segment(create_only, path, layout(spec, capacity, opt), expectation(spec, capacity), opt);
}

segment pool_base::open(open_or_create_t, const std::string& path, std::size_t capacity, const pool_spec& spec,
                        const pool_options& opt)
{
    return open_segment(open_or_create, path, layout(spec, capacity, opt), expectation(spec, capacity), opt);
}

segment pool_base::open_anonymous(std::size_t capacity, const pool_spec& spec, const pool_options& opt)
{
    return open_anonymous_segment(layout(spec, capacity, opt));
}

segment pool_base::open_memfd(const std::string& name, std::size_t capacity, const pool_spec& spec,
                              const pool_options& opt)
{
    return open_memfd_segment(name, layout(spec, capacity, opt));
}

segment pool_base::open_fd(int fd, const pool_spec& spec) { return open_fd_segment(fd, expectation(spec, 0)); }

pool_base::pool_base(segment seg, const pool_spec& spec, const pool_options& opt)
    : structure_base(std::move(seg)), type_(spec.type), auto_recover_(opt.auto_recover)
{
    // The header is validated; what it says about the payload is checked
    // here before anything in it is touched, from the segment's private
    // copy of the header (the shared one may have changed since: stats()
    // indexes the attach table by handle line).
    const std::uint64_t n_lines = seg_.param(0);
    if (n_lines != seg_.attach_capacity())
        throw_error(errc::corrupt_header, seg_.name(),
                    "pool handle lines " + std::to_string(n_lines) + " differ from the attach capacity " +
                        std::to_string(seg_.attach_capacity()));
    const std::uint64_t stride = seg_.param(1);
    if (spec.stride != 0 && stride != spec.stride)
        throw_error(errc::corrupt_header, seg_.name(),
                    "slot size " + std::to_string(stride) + ", expected " + std::to_string(spec.stride));
    if (seg_.elem_size() == 0 || stride < seg_.elem_size() || stride > UINT32_MAX)
        throw_error(errc::corrupt_header, seg_.name(), "bad slot size " + std::to_string(stride));
    const auto g = geometry(seg_.capacity(), stride, n_lines);
    if (seg_.capacity() == 0 || !g || g->total > seg_.data_size() || seg_.capacity() > SIZE_MAX / stride)
        throw_error(errc::corrupt_header, seg_.name(), "pool capacity and slot size do not fit the data area");
    if (seg_.n_mutexes() < 1) throw_error(errc::corrupt_header, seg_.name(), "pool without its alloc_n mutex");
    capacity_ = static_cast<std::size_t>(seg_.capacity());
    elem_size_ = static_cast<std::size_t>(stride);
    n_lines_ = static_cast<std::uint32_t>(n_lines);
    char* data = static_cast<char*>(seg_.data());
    control_ = reinterpret_cast<pool_control*>(data);
    counters_ = reinterpret_cast<pool_counters*>(data + sizeof(pool_control));
    lines_ = reinterpret_cast<pool_handle_line*>(data + g->lines_offset);
    owners_ = reinterpret_cast<std::atomic<std::uint64_t>*>(data + g->owners_offset);
    slots_ = data + g->slots_offset;
    att_ = &seg_.attachment();
}

pool_base::pool_base(pool_base&& o) noexcept
    : structure_base(std::move(o)), att_(o.att_), control_(o.control_), counters_(o.counters_), lines_(o.lines_),
      owners_(o.owners_), slots_(o.slots_), capacity_(std::exchange(o.capacity_, 0)), elem_size_(o.elem_size_),
      n_lines_(o.n_lines_), type_(o.type_), auto_recover_(o.auto_recover_),
      cursor_(o.cursor_.load(std::memory_order_relaxed))
{
}

// ---- Blocking -----------------------------------------------------------------

void pool_base::wake_all(std::uint32_t seen) noexcept
{
    // seen is odd: seen + 1 clears the bit and advances the sequence, so a
    // waiter about to sleep on `seen` returns at once. One freer wins the
    // CAS; the others need not wake anyone (the winner wakes all, and a
    // waiter that announced itself after our load scans after our free).
    if (control_->wake.compare_exchange_strong(seen, seen + 1, std::memory_order_seq_cst))
        sync::futex_wake(control_->wake);
}

std::uint32_t pool_base::announce_sleeper() noexcept
{
    const std::uint32_t seen = control_->wake.fetch_or(1, std::memory_order_seq_cst) | 1;
    // The scan that follows reads owner words with relaxed loads: the fence
    // orders them after the announcement, against the freer's seq_cst RMW
    // and load of the wake word.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return seen;
}

void pool_base::note_waiting(std::uint64_t me, int delta) noexcept
{
    // waiting = owner id (40 bits) << 24 | count; a count under another id
    // was left by a dead handle of this entry and is restarted from zero.
    std::atomic<std::uint64_t>& w = line(me).waiting;
    const std::uint64_t tag = (me & ((std::uint64_t(1) << 40) - 1)) << 24;
    std::uint64_t cur = w.load(std::memory_order_relaxed);
    for (;;) {
        std::uint64_t count = (cur & ~(~std::uint64_t(0) << 24));
        if ((cur & (~std::uint64_t(0) << 24)) != tag) count = 0;
        const std::uint64_t next = tag | ((count + std::uint64_t(std::int64_t(delta))) & 0xffffff);
        if (w.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return;
    }
}

struct pool_base::waiting_scope {
    pool_base& p;
    std::uint64_t me;
    waiting_scope(pool_base& pool, std::uint64_t id) noexcept : p(pool), me(id) { p.note_waiting(me, +1); }
    ~waiting_scope() { p.note_waiting(me, -1); }
};

bool pool_base::enough_free(std::size_t n) const noexcept
{
    std::size_t found = 0;
    for (std::size_t i = 0; i < capacity_ && found < n; ++i)
        found += owners_[i].load(std::memory_order_relaxed) == 0;
    return found >= n;
}

bool pool_base::wait_for_free(std::uint32_t seen, std::optional<clock::time_point> deadline)
{
    const auto now = clock::now();
    if (deadline && now >= *deadline) return false;
    // With auto_recover, wake up every poll interval to look for dead owners
    // (nobody wakes us when a holder dies). Without it, a lost wakeup is
    // impossible (see the header), but the poll also bounds the cost of one.
    auto until = now + sync::liveness_poll_interval * (auto_recover_ ? 1 : 10);
    if (deadline && *deadline < until) until = *deadline;
    sync::futex_wait_until(control_->wake, seen, until);
    return true;
}

std::optional<std::size_t> pool_base::alloc_slow(std::optional<clock::time_point> deadline)
{
    // Only a moved-from handle has no slots (a pool has at least one): it
    // would wait for ever.
    if (capacity_ == 0) throw std::logic_error("shmkit: alloc() on a moved-from pool");
    const std::uint64_t me = att_->owner_id();
    counters_->waits.fetch_add(1, std::memory_order_relaxed);
    waiting_scope waiting(*this, me);
    for (;;) {
        const std::uint32_t seen = announce_sleeper();
        if (auto got = try_alloc()) return got;
        if (auto_recover_ && recover_stale() > 0) continue;
        if (!wait_for_free(seen, deadline)) {
            if (auto got = try_alloc()) return got;
            counters_->timeouts.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
    }
}

// ---- Batches ------------------------------------------------------------------

bool pool_base::claim_n(boost::span<std::size_t> out, std::uint64_t me) noexcept
{
    const std::size_t n = out.size(), cap = capacity_;
    std::size_t got = 0;
    std::size_t i = cursor_.load(std::memory_order_relaxed);
    if (i >= cap) i = 0;
    for (std::size_t k = 0; k < cap && got < n; ++k) {
        if (owners_[i].load(std::memory_order_relaxed) == 0 && claim(i, me)) out[got++] = i;
        if (++i == cap) i = 0;
    }
    if (got == n) {
        cursor_.store(i, std::memory_order_relaxed);
        bump(line(me).allocs, n);
        return true;
    }
    // Not enough: give back what we took, before anyone waits on us. A CAS
    // from our id: an adopt(i) or reset() that came between keeps its slot.
    for (std::size_t k = 0; k < got; ++k) {
        std::uint64_t mine = me;
        owners_[out[k]].compare_exchange_strong(mine, 0, std::memory_order_release, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (got) wake_sleepers();
    return false;
}

void pool_base::check_batch(std::size_t n) const
{
    if (n > capacity_)
        throw std::invalid_argument("shmkit: " + path() + ": alloc_n(" + std::to_string(n) +
                                    ") exceeds the capacity " + std::to_string(capacity_));
}

bool pool_base::try_alloc_n(boost::span<std::size_t> out)
{
    check_batch(out.size());
    if (out.empty()) return true;
    return claim_n(out, att_->owner_id());
}

std::optional<std::vector<std::size_t>> pool_base::try_alloc_n(std::size_t n)
{
    check_batch(n);
    std::vector<std::size_t> v(n);
    if (!try_alloc_n(boost::span<std::size_t>(v))) return std::nullopt;
    return v;
}

std::optional<std::vector<std::size_t>> pool_base::alloc_n(std::size_t n) { return alloc_n_until(n, std::nullopt); }

std::optional<std::vector<std::size_t>> pool_base::alloc_n_until(std::size_t n,
                                                                   std::optional<clock::time_point> deadline)
{
    check_batch(n);
    std::vector<std::size_t> v(n);
    if (try_alloc_n(boost::span<std::size_t>(v))) return v;
    // One blocked alloc_n at a time: two callers that each grab part of
    // what they need and give it back could otherwise keep failing each
    // other. The mutex holder holds no slot while it waits, so nobody can
    // wait on it for slots; a holder that dies is recovered by the mutex.
    // Waiting from here (stats().waiters, waits): in the queue for the
    // mutex as much as for slots.
    const std::uint64_t me = att_->owner_id();
    counters_->waits.fetch_add(1, std::memory_order_relaxed);
    waiting_scope waiting(*this, me);
    sync::mutex turn = seg_.mutex(0);
    const bool locked = deadline ? turn.try_lock_until(*deadline) : (turn.lock(), true);
    if (!locked) {
        counters_->timeouts.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    }
    std::unique_lock<sync::mutex> hold(turn, std::adopt_lock);
    // Claims only when enough slots look free: a claim that falls short
    // gives its slots back and wakes the sleepers, this thread included,
    // which would make the loop spin instead of sleep.
    const auto attempt = [&] { return enough_free(n) && claim_n(boost::span<std::size_t>(v), me); };
    for (;;) {
        const std::uint32_t seen = announce_sleeper();
        if (attempt()) return v;
        if (auto_recover_ && recover_stale() > 0) continue;
        if (!wait_for_free(seen, deadline)) {
            if (attempt()) return v;
            counters_->timeouts.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
    }
}

std::size_t pool_base::free_n(boost::span<const std::size_t> slots)
{
    for (const std::size_t i : slots) check_index(i);
    const std::uint64_t me = att_->owner_id(); // may throw in a forked child: before anything changes
    std::size_t freed = 0;
    for (const std::size_t i : slots) {
        if (owners_[i].load(std::memory_order_relaxed) == 0) continue;
        // Release: our writes to the slot happen before the next owner's.
        owners_[i].store(0, std::memory_order_release);
        ++freed;
    }
    if (freed == 0) return 0;
    cursor_.store(slots[0], std::memory_order_relaxed);
    bump(line(me).frees, freed);
    // Orders our stores before the load of the wake word (see the header).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_sleepers();
    return freed;
}

// ---- Guards -------------------------------------------------------------------

slot_guard pool_base::make_guard(std::optional<std::size_t> i) noexcept
{
    return i ? slot_guard(this, *i) : slot_guard();
}

slot_guard pool_base::alloc_guard() { return make_guard(alloc()); }

// ---- Ownership and recovery -----------------------------------------------------

pid_t pool_base::owner(std::size_t i) const
{
    check_index(i);
    const std::uint64_t o = owners_[i].load(std::memory_order_acquire);
    return o == 0 ? 0 : static_cast<pid_t>(att_->owner_id_pid(o));
}

bool pool_base::adopt(std::size_t i)
{
    check_index(i);
    return adopt(i, owners_[i].load(std::memory_order_acquire));
}

bool pool_base::adopt(std::size_t i, std::uint64_t token)
{
    check_index(i);
    const std::uint64_t me = att_->owner_id();
    if (token == 0) return false;
    if (token == me) return owners_[i].load(std::memory_order_acquire) == me;
    // One CAS, never retried against another holder: an id never comes
    // back, so success means the slot is still the one handed over.
    std::uint64_t expected = token;
    return owners_[i].compare_exchange_strong(expected, me, std::memory_order_acq_rel, std::memory_order_acquire);
}

std::size_t pool_base::used() const noexcept
{
    std::size_t n = 0;
    for (std::size_t i = 0; i < capacity_; ++i) n += owners_[i].load(std::memory_order_relaxed) != 0;
    return n;
}

std::vector<std::size_t> pool_base::allocated_slots() const
{
    std::vector<std::size_t> v;
    each_allocated([&](std::size_t i) { v.push_back(i); });
    return v;
}

std::size_t pool_base::recover_stale()
{
    // Liveness is probed once per distinct owner (a syscall each); owners
    // are few (one per handle), slots many.
    std::unordered_map<std::uint64_t, bool> alive;
    const std::uint64_t me = att_->owner_id();
    std::size_t freed = 0;
    // Counted and woken even if the scan throws part-way (bad_alloc of the
    // map): the slots freed so far are free.
    struct report_freed {
        pool_base& pool;
        const std::size_t& freed;
        ~report_freed()
        {
            if (!freed) return;
            pool.counters_->recoveries.fetch_add(freed, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            pool.wake_sleepers();
        }
    } report{*this, freed};
    for (std::size_t i = 0; i < capacity_; ++i) {
        std::uint64_t o = owners_[i].load(std::memory_order_acquire);
        if (o == 0 || o == me) continue;
        auto it = alive.find(o);
        if (it == alive.end()) it = alive.emplace(o, att_->owner_id_alive(o)).first;
        if (it->second) continue;
        // Fails if the slot was freed, adopted or recovered meanwhile: the
        // dead owner's id can only leave the word, never come back.
        if (owners_[i].compare_exchange_strong(o, 0, std::memory_order_acq_rel, std::memory_order_relaxed)) ++freed;
    }
    return freed;
}

std::size_t pool_base::reset()
{
    const std::uint64_t me = att_->owner_id(); // may throw in a forked child: before anything changes
    std::size_t freed = 0;
    for (std::size_t i = 0; i < capacity_; ++i)
        if (owners_[i].load(std::memory_order_relaxed) != 0 && owners_[i].exchange(0, std::memory_order_seq_cst) != 0)
            ++freed;
    if (freed) {
        bump(line(me).frees, freed);
        wake_sleepers(); // the exchanges were seq_cst RMWs
    }
    return freed;
}

// ---- Information ----------------------------------------------------------------

pool_stats pool_base::stats() const
{
    pool_stats s;
    s.capacity = capacity_;
    s.elem_size = elem_size_;
    s.used = used();
    s.available = capacity_ - s.used;
    s.mmap_size = mmap_size();
    for (std::uint32_t e = 0; e < n_lines_; ++e) {
        const pool_handle_line& l = lines_[e];
        s.allocs += l.allocs.load(std::memory_order_relaxed);
        s.frees += l.frees.load(std::memory_order_relaxed);
        const std::uint64_t w = l.waiting.load(std::memory_order_relaxed);
        const std::uint64_t count = w & 0xffffff;
        if (count == 0) continue;
        // Counted only while the handle that left it is alive.
        const std::uint64_t gen = att_->entry(e).generation.load(std::memory_order_acquire);
        const std::uint64_t id = make_owner_id(e, gen);
        if ((w >> 24) == (id & ((std::uint64_t(1) << 40) - 1)) && att_->owner_id_alive(id)) s.waiters += count;
    }
    s.waits = counters_->waits.load(std::memory_order_relaxed);
    s.timeouts = counters_->timeouts.load(std::memory_order_relaxed);
    s.recoveries = counters_->recoveries.load(std::memory_order_relaxed);
    s.segment = seg_.stats();
    return s;
}

void pool_base::throw_index(std::size_t i) const
{
    throw std::out_of_range("shmkit: " + path() + ": slot " + std::to_string(i) + " out of range (capacity " +
                            std::to_string(capacity_) + ")");
}

void pool_base::throw_not_allocated(std::size_t i) const
{
    throw_error(errc::slot_not_allocated, path(), "slot " + std::to_string(i) + " is not allocated");
}

} // namespace detail
} // namespace shmkit
