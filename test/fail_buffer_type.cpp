// Must not compile: buffer<T> accepts only the ten numeric element types.
#include <shmkit/buffer.hpp>

struct point {
    int x, y;
};

int main()
{
    auto b = shmkit::buffer<point>::anonymous(4);
    return b.capacity() == 4 ? 0 : 1;
}
