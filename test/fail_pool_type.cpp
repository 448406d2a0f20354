// Must not compile: pool<T> accepts only the numeric element types
// (raw_pool holds bytes, str_pool strings).
#include <shmkit/pool.hpp>

#include <string>

int main()
{
    auto p = shmkit::pool<std::string>::anonymous(4);
    return p.capacity() == 4 ? 0 : 1;
}
