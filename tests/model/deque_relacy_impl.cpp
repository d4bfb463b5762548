/*
 * The deque under test: the real src/deque.h and src/deque.c (or a mutant's
 * copies, whose directory run_relacy.sh puts first on the include path),
 * compiled as C++ with every atomic an rl::atomic (relacy_atomics.h).
 */
#include "deque_relacy.h"

#include "deque.c"

int model_push_owner(struct deque *d, const struct task *t, bool *was_empty)
{
    return deque_push_owner(d, t, was_empty);
}

bool model_pop_owner(struct deque *d, struct task *out)
{
    return deque_pop_owner(d, out);
}

enum steal_result model_steal(struct deque *d, struct task *out)
{
    return deque_steal(d, out);
}
