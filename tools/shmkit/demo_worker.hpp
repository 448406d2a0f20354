// shmkit demo: the body of one worker process.
#ifndef SHMKIT_TOOLS_DEMO_WORKER_HPP
#define SHMKIT_TOOLS_DEMO_WORKER_HPP

#include "demo_plan.hpp"

namespace shmkit_tool::demo {

/// Runs worker `w` in a forked child: opens the four structures by name,
/// does p.rounds rounds (the victim: until it is killed), waits at
/// p.half() for a byte on `go_fd` (not the victim) and after its last round
/// for EOF there, and reports on `report_fd`. Checks what it can see itself
/// (its pool slot kept its tag, its free succeeded, the ledger decodes) and
/// reports a failure instead of going on. Returns the child's exit status:
/// 0 done, 1 failed, 3 the parent went away. Throws nothing.
int run_worker(const plan& p, int w, int report_fd, int go_fd) noexcept;

} // namespace shmkit_tool::demo

#endif
