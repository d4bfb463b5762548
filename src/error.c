#include <errno.h>

#include "wsched.h"

unsigned wsched_version(void) { return WSCHED_VERSION; }

const char *wsched_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case WSCHED_ENOTRUN: return "job never ran";
    case WSCHED_EJOBCODE: return "job returned a code in wsched's reserved range";
    case WSCHED_ECANCELLED: return "job not run: batch cancelled (cancel, fail-fast or quorum decided)";
    case WSCHED_EDEADLINE: return "job not run (or not finished) by the batch deadline";
    case WSCHED_EEXCEPTION: return "job threw a C++ exception";
    case WSCHED_EBREAKER: return "job not run: its downstream's circuit breaker was open";
    case WSCHED_ELIMITED: return "job not run: its downstream's rate limit had no room";
    case WSCHED_PENDING: return "job pending on a wait (a return value, not a status)";
    case -EINVAL: return "invalid argument (NULL, zero count, bad flag or index, reserved field set)";
    case -EOVERFLOW: return "size overflow (njobs times slot stride does not fit)";
    case -ENOMEM: return "out of memory";
    case -EAGAIN: return "could not start a worker thread";
    case -ESHUTDOWN: return "pool is shutting down";
    case -EBADF: return "pool was destroyed";
    case -ETIMEDOUT: return "timed out";
    case -EDEADLK: return "would deadlock (called from one of the pool's own workers)";
    case -ECANCELED: return "cancelled";
    case -EPERM: return "operation not permitted";
    case -EBUSY: return "pool full (max_jobs): batch not admitted";
    case -E2BIG: return "batch larger than the pool's max_jobs";
    case -ENODATA: return "every job of the stream was returned";
    case -ESRCH: return "the calling thread is not a worker";
    default: return code < 0 ? "unknown error (a job's own code?)" : "not an error code";
    }
}
