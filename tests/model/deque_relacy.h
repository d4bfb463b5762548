/*
 * Shared by the two translation units of the Relacy deque model:
 *   deque_relacy_impl.cpp  the real src/deque.h + src/deque.c under the
 *                          Relacy atomics override (rebuilt per mutant by
 *                          run_relacy.sh, with -I <mutant dir> first);
 *   deque_relacy.cpp       the model: configurations, checks, driver
 *                          (built once; it uses deque.h only for types).
 * The static inline owner/thief operations of deque.h are reached through
 * the wrappers below, compiled in the impl unit.
 */
#ifndef WSCHED_MODEL_DEQUE_RELACY_H
#define WSCHED_MODEL_DEQUE_RELACY_H

#include "relacy_model.h"

/* Only turns DEBUG_POINT(label) into calls of wsched__debug_point, which the
 * model defines (its P2 ghost hooks); deque.h has no DEBUG_ASSERT. */
#define WSCHED_DEBUG 1
#include "deque.h"

int model_push_owner(struct deque *d, const struct task *t, bool *was_empty);
bool model_pop_owner(struct deque *d, struct task *out);
enum steal_result model_steal(struct deque *d, struct task *out);

#endif
