/*
 * Shared by the two translation units of the Relacy completion model:
 *   completion_relacy_impl.cpp  the real src/completion.h under the Relacy
 *                               atomics override (rebuilt per mutant by
 *                               run_relacy.sh, with -I <mutant dir> first);
 *   completion_relacy.cpp       the model: ranges, batch_complete and
 *                               external_wait of wait.c, a futex, checks,
 *                               driver (built once; it uses completion.h
 *                               only for the BATCH_* states).
 * completion.h's static inline functions are reached through the wrappers
 * below, compiled in the impl unit.
 */
#ifndef WSCHED_MODEL_COMPLETION_RELACY_H
#define WSCHED_MODEL_COMPLETION_RELACY_H

#include "relacy_model.h"
#include "completion.h"

bool model_range_done(rl::atomic<size_t> *remaining, size_t count); /* B2 */
bool model_signal(rl::atomic<uint32_t> *word);                      /* B3 */
bool model_done(rl::atomic<uint32_t> *word);                        /* B4 */
bool model_announce(rl::atomic<uint32_t> *word);                    /* B4 */

#endif
