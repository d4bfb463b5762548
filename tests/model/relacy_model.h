/*
 * The start of every Relacy model's own header (deque_relacy.h,
 * completion_relacy.h, admission_relacy.h), which both of its translation
 * units include before the source under test: Relacy itself, then the
 * atomics override that turns src/atomics.h's operations into rl::atomic
 * ones (relacy_atomics.h).
 */
#ifndef WSCHED_MODEL_RELACY_MODEL_H
#define WSCHED_MODEL_RELACY_MODEL_H

#include <relacy/relacy.hpp>
/* relacy.hpp redefines these as macros for code written against it; the
 * sources under test and the models' placement construction want the real
 * ones. */
#undef new
#undef delete
#undef malloc
#undef calloc
#undef realloc
#undef free

/* src/atomics.h includes this instead of <stdatomic.h> (found on -I). */
#define WSCHED_ATOMICS_OVERRIDE "relacy_atomics.h"

#endif
