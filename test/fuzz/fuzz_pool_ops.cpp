// Fuzz target: a pool (pool<T> of several T, raw_pool, str_pool) driven by
// the input against a model: the set of slots this process owns, the
// bytes of every slot, and the allocation counters. Every answer of the
// pool is checked against the model; a mismatch aborts with a message.
//
//   byte 0   the pool type;  byte 1   capacity (1..48);
//   byte 2   slot size / maximum length (raw_pool, str_pool: 1..24)
//   then     operations, one byte each and their arguments
//
// The pool is created fresh (anonymous memory) for each input. No
// operation may block: a blocking alloc is only asked for when the model
// says a slot is free, and otherwise with a zero timeout.
#include "fuzz_support.hpp"
#include "pool_model.hpp"

#include <shmkit/pool.hpp>

namespace fuzz {
namespace {

template <class Pool>
void run(Pool p, input& in)
{
    pool_model m(p.capacity(), p.elem_size());
    for (int ops = 0; !in.empty() && ops < 512; ++ops) {
        const std::uint8_t op = in.u8();
        if (op < 200) common_op(p, m, op % 20, in);
        else typed_op(p, m, op % 8, in);
    }
    check_all(p, m);
}

shmkit::pool_options options()
{
    shmkit::pool_options o;
    o.attach_capacity = 4;
    return o;
}

} // namespace
} // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace fuzz;
    using namespace shmkit;
    input in(data, size);
    const unsigned type = in.u8() % 7;
    const std::size_t cap = 1 + in.u8() % 48;
    const std::size_t width = 1 + in.u8() % 24;
    switch (type) {
    case 0: run(pool<std::int64_t>::anonymous(cap, options()), in); break;
    case 1: run(pool<std::int32_t>::anonymous(cap, options()), in); break;
    case 2: run(pool<double>::anonymous(cap, options()), in); break;
    case 3: run(pool<std::uint8_t>::anonymous(cap, options()), in); break;
    case 4: run(pool<std::uint16_t>::anonymous(cap, options()), in); break;
    case 5: run(raw_pool::anonymous(cap, width, options()), in); break;
    default: run(str_pool::anonymous(cap, width, options()), in); break;
    }
    return 0;
}
