// root_takeover: freeing a kv_store's name from a root left incomplete.
//
// shmkit creates a root complete before it links it under its name, so a
// root whose init word is not "ready" was left by something else (or its
// header was damaged after). An opener that has waited init_timeout for it
// takes the name over: it unlinks the table names of the store it was,
// then the root, and opens or creates the store again.
//
// Openers that time out on the same root take turns on a flock(2) of it (a
// lock of another kind than the OFD byte locks that tell the liveness of
// its attach entries; the two do not interact on local file systems). The
// first one in unlinks it. The others then find the name gone, or naming a
// complete root that an opener created since, and leave it: unlinking that
// one would split the store between the processes that opened it and
// those that did not. The tables go first, while the name still holds the
// incomplete root, so that no table of a new store can be among them.
//
// Killed at any step, a taker leaves the root still incomplete (some of
// its table names gone), or no name at all; either way the next opener
// goes on. What remains: a process outside this protocol unlinking the
// name and creating it again between the last check and the unlink (no
// call unlinks a name only if it names a given file); and processes still
// attached to the old root (whose header was damaged under them), which
// keep a store no other opener sees and find its tables gone when they
// next look one up by name.
#ifndef SHMKIT_LIBS_KV_ROOT_TAKEOVER_HPP
#define SHMKIT_LIBS_KV_ROOT_TAKEOVER_HPP

#include <chrono>
#include <string>

namespace shmkit {
namespace detail {

/// Takes over the name "/BASE" (`base` without the '/') from an incomplete
/// kv_store root, or returns at once if it no longer holds one: the
/// caller then opens or creates the store again. Waits at most `lock_wait`
/// for another taker of the same root. Throws shmkit::error: not_initialised
/// if the incomplete segment is not a kv_store root (it is left alone) or
/// another taker holds it past `lock_wait`; an errno code if a name cannot
/// be unlinked (the root then stays, for a later opener to retry).
void take_over_incomplete_root(const std::string& base, std::chrono::milliseconds lock_wait);

} // namespace detail
} // namespace shmkit

#endif
