/*
 * The admission protocol under test: the real src/admission.h (or a
 * mutant's copy, whose directory run_relacy.sh puts first on the include
 * path), compiled as C++ with every atomic an rl::atomic (relacy_atomics.h).
 */
#include "admission_relacy.h"

bool model_try_reserve(struct admission *a, uint64_t max, size_t n)
{
    return admission_try_reserve(a, max, n);
}

uint32_t model_wait_begin(struct admission *a)
{
    return admission_wait_begin(a);
}

void model_wait_end(struct admission *a)
{
    admission_wait_end(a);
}

bool model_release(struct admission *a, size_t n)
{
    return admission_release(a, n);
}
