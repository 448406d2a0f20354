// shmkit.hpp: the whole library.
#ifndef SHMKIT_HPP
#define SHMKIT_HPP

#include <shmkit/config.hpp>
#include <shmkit/error.hpp>
#include <shmkit/inspect.hpp>
#include <shmkit/buffer.hpp>
#include <shmkit/kv_store.hpp>
#include <shmkit/pool.hpp>
#include <shmkit/region.hpp>
#include <shmkit/segment.hpp>
#include <shmkit/share.hpp>
#include <shmkit/str_buffer.hpp>
#include <shmkit/str_pool.hpp>
#include <shmkit/raw_pool.hpp>
#include <shmkit/sync/futex.hpp>
#include <shmkit/sync/mutex.hpp>
#include <shmkit/sync/notifier.hpp>
#include <shmkit/sync/rwlock.hpp>
#include <shmkit/sync/seqlock.hpp>

#endif
