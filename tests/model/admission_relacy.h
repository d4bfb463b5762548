/*
 * Shared by the two translation units of the Relacy admission model:
 *   admission_relacy_impl.cpp  the real src/admission.h under the Relacy
 *                              atomics override (rebuilt per mutant by
 *                              run_relacy.sh, with -I <mutant dir> first);
 *   admission_relacy.cpp       the model: the waiting loop of admission.c,
 *                              configurations, checks, driver (built once;
 *                              it uses admission.h only for the struct).
 * admission.h's static inline functions are reached through the wrappers
 * below, compiled in the impl unit.
 */
#ifndef WSCHED_MODEL_ADMISSION_RELACY_H
#define WSCHED_MODEL_ADMISSION_RELACY_H

#include "relacy_model.h"
#include "admission.h"

bool model_try_reserve(struct admission *a, uint64_t max, size_t n); /* A1 */
uint32_t model_wait_begin(struct admission *a);                     /* A2 */
void model_wait_end(struct admission *a);
bool model_release(struct admission *a, size_t n); /* A3 */

#endif
