// shmkit demo: after the run, every total checked against what it must be,
// and the account of what happened.
#ifndef SHMKIT_TOOLS_DEMO_VERIFY_HPP
#define SHMKIT_TOOLS_DEMO_VERIFY_HPP

#include "demo_crew.hpp"
#include "demo_plan.hpp"
#include "demo_segments.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace shmkit_tool::demo {

struct outcome {
    std::vector<std::string> killed;    ///< account: who died where, holding what
    std::vector<std::string> recovered; ///< account: who recovered what
    std::vector<std::string> verified;  ///< account: the totals checked
    std::vector<std::string> failures;  ///< one line per failed check
    std::int64_t committed = 0;         ///< rounds committed, all workers
};

/// Runs every check once the workers are reaped (see the comment at the
/// top of demo_verify.cpp for what is exact and why). Finishes the
/// recovery the survivors may have left (pool::recover_stale) and takes
/// and releases each lock. Throws what the library throws.
outcome verify(const plan& p, segments& s, const kill_record& k, const std::vector<worker_record>& ws);

} // namespace shmkit_tool::demo

#endif
