/*
 * The completion chain under test: the real src/completion.h (or a mutant's
 * copy, whose directory run_relacy.sh puts first on the include path, with
 * a copy of src/atomics.h beside it), compiled as C++ with every atomic an
 * rl::atomic (relacy_atomics.h).
 */
#include "completion_relacy.h"

bool model_range_done(rl::atomic<size_t> *remaining, size_t count)
{
    return completion_range_done(remaining, count);
}

bool model_signal(rl::atomic<uint32_t> *word)
{
    return completion_signal(word);
}

bool model_done(rl::atomic<uint32_t> *word)
{
    return completion_done(word);
}

bool model_announce(rl::atomic<uint32_t> *word)
{
    return completion_announce(word);
}
