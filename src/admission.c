/*
 * The pool's admission limit (max_jobs): reserving units for a batch
 * (load shedding, backpressure with a timeout, or waiting) and returning
 * them as ranges finish. The protocol (A1-A3) is admission.h's.
 */
#include <errno.h>
#include <time.h>

#include "futex.h"
#include "internal.h"

/* Admission units (admission.h, A1-A3): the waiting and the wake-up. */
void wsched__admit_release(struct pool *p, size_t n)
{
    if (admission_release(&p->admission, n)) { /* A3 */
        fadd(&p->admission.word, 1, REL);
        futex_wake_all(&p->admission.word);
    }
}

int wsched__admit_reserve(struct pool *p, size_t n, int64_t timeout_ns)
{
    struct admission *a = &p->admission;
    if (n > p->max_jobs)
        return -E2BIG;
    if (admission_try_reserve(a, p->max_jobs, n))
        return 0;
    if (timeout_ns == 0)
        return -EBUSY; /* load shedding */
    /* Only threads outside the pool get here (nested batches are exempt). */
    uint64_t until = timeout_ns > 0 ? wsched_now_ns() + (uint64_t)timeout_ns : 0;
    struct timespec ts;
    const struct timespec *deadline = abs_deadline(until, &ts);
    for (;;) {
        uint32_t v = admission_wait_begin(a); /* A2 */
        if (admission_try_reserve(a, p->max_jobs, n)) {
            admission_wait_end(a);
            return 0;
        }
        int fr = futex_wait(&a->word, v, deadline);
        admission_wait_end(a);
        if (admission_try_reserve(a, p->max_jobs, n))
            return 0;
        if (fr == -ETIMEDOUT || (until && wsched_now_ns() >= until))
            return -ETIMEDOUT;
    }
}
