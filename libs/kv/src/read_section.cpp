// read_section: see read_section.hpp.
#include "read_section.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace shmkit {
namespace detail {
namespace {

struct slot {
    std::atomic<int> depth{0};
    bool in_use = true;
};

std::mutex registry_mutex;
std::vector<std::unique_ptr<slot>>* registry = new std::vector<std::unique_ptr<slot>>; // never destroyed: threads may exit after main

/// The calling thread's slot, given back when the thread exits.
struct thread_slot {
    slot* s = nullptr;
    ~thread_slot()
    {
        if (!s) return;
        std::lock_guard<std::mutex> g(registry_mutex);
        s->depth.store(0, std::memory_order_relaxed);
        s->in_use = false;
    }
};
thread_local thread_slot mine;

enum mode : int { unknown, asymmetric, symmetric };
std::atomic<int> barrier_mode{unknown};

// fork() with the registry locked by the forking thread, so that the child
// never inherits it locked by a thread it does not have, nor half-updated.
void before_fork() { registry_mutex.lock(); }
void after_fork_in_parent() { registry_mutex.unlock(); }
/// A forked child has only the thread that forked: the other threads' slots
/// are free, whatever they were doing.
void after_fork_in_child()
{
    for (auto& s : *registry)
        if (s.get() != mine.s) {
            s->depth.store(0, std::memory_order_relaxed);
            s->in_use = false;
        }
    registry_mutex.unlock();
}

int current_mode()
{
    int m = barrier_mode.load(std::memory_order_acquire);
    if (m != unknown) return m;
    std::lock_guard<std::mutex> g(registry_mutex);
    m = barrier_mode.load(std::memory_order_relaxed);
    if (m == unknown) {
        const long r = ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
        m = r == 0 ? asymmetric : symmetric;
        ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
        barrier_mode.store(m, std::memory_order_release);
    }
    return m;
}

slot* my_slot()
{
    if (mine.s) return mine.s;
    std::lock_guard<std::mutex> g(registry_mutex);
    for (auto& s : *registry)
        if (!s->in_use) {
            s->in_use = true;
            return mine.s = s.get();
        }
    registry->push_back(std::make_unique<slot>());
    return mine.s = registry->back().get();
}

} // namespace

read_section::read_section() : slot_(my_slot())
{
    auto* s = static_cast<slot*>(slot_);
    depth_ = s->depth.load(std::memory_order_relaxed);
    s->depth.store(depth_ + 1, std::memory_order_relaxed);
    // The mark must be visible before this thread loads which table is
    // current: membarrier() gives that to the thread that frees tables; a
    // fence here does where it cannot.
    if (current_mode() == asymmetric) std::atomic_signal_fence(std::memory_order_seq_cst);
    else std::atomic_thread_fence(std::memory_order_seq_cst);
}

void read_section::leave() noexcept
{
    if (depth_ < 0) return;
    // Release: this thread's reads of the table happen before the table can
    // be seen unused.
    static_cast<slot*>(slot_)->depth.store(depth_, std::memory_order_release);
    depth_ = -1;
}

bool no_readers() noexcept
{
    if (current_mode() == asymmetric) {
        if (::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) return false;
    } else {
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    std::lock_guard<std::mutex> g(registry_mutex);
    for (const auto& s : *registry)
        if (s->in_use && s->depth.load(std::memory_order_acquire) != 0) return false;
    return true;
}

} // namespace detail
} // namespace shmkit
