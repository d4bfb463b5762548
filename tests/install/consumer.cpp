// The C++ interface from an installed tree: wsched.hpp over the installed
// library, built with pkg-config's flags (tests/install/consume.sh).
#include <wsched.hpp>

#include <cstdio>

int main()
{
    wsched::pool pool;
    auto b = pool.submit(64, [](wsched::context &, std::size_t i) { return i * 2; });
    if (b.wait())
        return 1;
    std::size_t sum = 0;
    for (std::size_t i = 0; i < b.size(); i++)
        if (b.ok(i))
            sum += b[i];
    std::printf("consumer.cpp: sum %zu\n", sum);
    return sum == 64 * 63 ? 0 : 1;
}
