#!/usr/bin/env python3
"""Write the seed corpus of fuzz_api (tests/fuzz/corpus/) in the input
format described at the top of fuzz_api.c. Deterministic: rerun after a
format change and commit the files with it."""
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

(OP_SUBMIT, OP_CANCEL, OP_WAIT, OP_WAIT_IDLE, OP_NEXT_DONE, OP_DRAIN, OP_FREE,
 OP_CHECK, OP_STATS, OP_BAD, OP_QUERY, OP_SLEEP, OP_POST) = (0, 3, 4, 6, 7, 8, 9,
                                                          10, 11, 12, 13, 14, 15)
K_OK, K_ERR, K_RESV, K_POLL, K_SPAWN, K_SPAWN_IMPL, K_NESTED, K_BLOCK = range(8)
BEST, FAIL_FAST, QUORUM = range(3)
PAD, STREAM = 1, 2
NONE, LIB, CALLER = 0, 1, 2
# timeouts (index into tmo_tab): 0 poll, 1 1us, 2 50us, 3 500us, 4 2ms, 5 for ever
T0, T1US, T50US, T500US, T2MS, TINF = range(6)
# deadlines
DL_NONE, DL_PAST, DL_JUST_PAST, DL_NEAR, DL_1MS = 0, 4, 5, 6, 7
# the wait kinds of K_WAIT jobs (WSCHED_BATCH_WAITS batches: submit waits=True)
W_SLEEP, W_WAKER, W_FD, W_BATCH = 1, 2, 4, 8
W_ALL = 15


def kinds(*ks):
    m = 0
    for k in ks:
        m |= 1 << k
    return m


def header(workers=2, spin=0, custom=False, keep=False, late=False, helpers=0,
           maxjobs=0, fail_at=0, period=0, destroy=0):
    # destroy d > 0: the pool is destroyed with the batches left at the end
    # running, (d - 1) * 50 us after the last operation
    b0 = (workers - 1) | spin << 2 | custom << 5 | keep << 6 | late << 7
    b1 = helpers | maxjobs << 2 | destroy << 5
    return bytes([b0, b1, fail_at, period])


def submit(thread=0, n=8, flags=0, policy=BEST, prio=0, slots=LIB, timed=0,
           quorum=1, deadline=DL_NONE, dl_shift=0, mp=0, size=3, stride=0,
           allowed=kinds(K_OK), seed=1, waits=False, wmask=0, abuse=0):
    # waits: WSCHED_BATCH_WAITS; wmask: the wait kinds (W_*) of its K_WAIT
    # jobs; abuse: misuse of the waits in that many steps out of 8
    p1 = flags | prio << 4 | slots << 5 | (timed & 1) << 7
    # fuzz_api.c reads the policy as (p1 >> 2) % 3, the prio, slots and
    # timed bits included: choose the 2-bit field so that it decodes to
    # `policy` (before, a seed with slots got another policy than named).
    p1 |= next(v for v in range(4) if (v + (p1 >> 2)) % 3 == policy) << 2
    p2 = (timed >> 1) & 1 | (seed >> 8) << 1
    return bytes([OP_SUBMIT | thread << 4, n - 1, p1, p2 & 0xff, quorum - 1,
                  deadline | dl_shift << 3, mp | waits << 3 | wmask << 4,
                  size | stride << 3 | abuse << 5, allowed, seed & 0xff])


def op(code, a=0, b=0, thread=0):
    return bytes([code | thread << 4, a & 0xff, b & 0xff])


# single jobs (wsched_post): the record, the job's kind and code index, the
# wait after it (none, poll, for ever, 50 us), bad inputs first
PJ_CODE, PJ_SPAWN, PJ_NESTED, PJ_NOWAITS = range(4)
PW_NONE, PW_POLL, PW_INF, PW_50US = range(4)


def post(rec=0, kind=PJ_CODE, code=0, wait=PW_NONE, bad=False, thread=0):
    return op(OP_POST, rec | kind << 3 | code << 5, wait | bad << 2, thread)


ALL = 0xff
SEEDS = {
    "basic": header() + submit(n=16) + op(OP_WAIT, 0, TINF) + op(OP_FREE, 0, 0),
    "errors_best_effort": header(workers=3) +
        submit(n=32, allowed=kinds(K_OK, K_ERR, K_RESV), seed=7) + op(OP_CHECK),
    "fail_fast": header() +
        submit(n=40, policy=FAIL_FAST, allowed=kinds(K_OK, K_ERR, K_POLL), seed=3) +
        op(OP_WAIT, 0, TINF) + op(OP_QUERY, 0, 1),
    "quorum": header(workers=3) +
        submit(n=10, policy=QUORUM, quorum=3, allowed=kinds(K_OK, K_ERR, K_POLL), seed=9) +
        op(OP_WAIT, 0, TINF) + op(OP_WAIT_IDLE, 0, TINF),
    "deadline_past_stream": header() +
        submit(n=20, flags=STREAM, deadline=DL_PAST, allowed=kinds(K_OK, K_POLL)) +
        op(OP_DRAIN, 0, TINF) + op(OP_WAIT, 0, T0),
    "deadline_near": header(workers=1) +
        submit(n=64, deadline=DL_NEAR, dl_shift=1, allowed=kinds(K_POLL, K_BLOCK), seed=5) +
        op(OP_WAIT, 0, T50US) + op(OP_WAIT, 0, TINF) + op(OP_CHECK),
    "cancel": header() +
        submit(n=48, allowed=kinds(K_POLL, K_OK), seed=11) + op(OP_CANCEL, 0, 1) +
        op(OP_WAIT, 0, TINF),
    "max_parallel_caller_slots": header(workers=3) +
        submit(n=24, mp=5, slots=CALLER, size=4, stride=2, allowed=kinds(K_BLOCK, K_OK)) +
        op(OP_WAIT, 0, T500US) + op(OP_CHECK),
    "nested_spawn": header(workers=3) +
        submit(n=12, allowed=kinds(K_NESTED, K_SPAWN), seed=21) + op(OP_WAIT, 0, TINF),
    "spawn_implicit_one_worker": header(workers=1) +
        submit(n=30, allowed=kinds(K_SPAWN_IMPL, K_SPAWN), slots=NONE, seed=2) +
        op(OP_WAIT_IDLE, 0, TINF),
    "admission_timed": header(helpers=2, maxjobs=5) +
        submit(thread=0, n=8, allowed=kinds(K_BLOCK)) +
        submit(thread=1, n=6, timed=1, allowed=kinds(K_BLOCK)) +
        submit(thread=2, n=4, timed=2, allowed=kinds(K_POLL)) +
        submit(thread=1, n=20, timed=3) + submit(thread=0, n=9) +
        op(OP_STATS, 9, 0, thread=2),
    "helpers_streams": header(workers=3, helpers=2) +
        submit(thread=1, n=16, flags=STREAM, allowed=kinds(K_OK, K_ERR)) +
        submit(thread=2, n=16, flags=STREAM | PAD, policy=FAIL_FAST,
               allowed=kinds(K_OK, K_ERR), seed=4) +
        op(OP_NEXT_DONE, 0, T2MS, thread=1) + op(OP_NEXT_DONE, 0, T0, thread=2) +
        op(OP_NEXT_DONE, 0, TINF, thread=1) + op(OP_DRAIN, 0, TINF, thread=2),
    "bad_inputs": header() + b"".join(op(OP_BAD, k, 3 * k + 1) for k in range(18)) +
        op(OP_BAD, 4, 0x80) + op(OP_BAD, 12, 1),
    "early_free_keep": header(keep=True) +
        submit(n=64, allowed=kinds(K_POLL, K_BLOCK, K_SPAWN_IMPL), slots=CALLER) +
        submit(n=8, flags=STREAM) + op(OP_FREE, 0, 1) + op(OP_WAIT, 0, T0),
    "alloc_fail_create": header(custom=True, fail_at=3) + submit(n=4) + op(OP_CHECK),
    "alloc_fail_batches": header(workers=2, custom=True, fail_at=8, period=2) +
        submit(n=8) + submit(n=8, allowed=kinds(K_NESTED), seed=6) + submit(n=3) +
        op(OP_WAIT, 1, TINF) + op(OP_WAIT, 2, TINF),
    "late_submit_destroy": header(late=True, maxjobs=5) +
        submit(n=4, allowed=kinds(K_BLOCK)),
    "stats_query": header(workers=3, spin=3) + submit(n=50, allowed=kinds(K_OK, K_BLOCK)) +
        op(OP_STATS, 8 | 4) + op(OP_STATS, 8 | 1) + op(OP_QUERY, 0, 3) +
        op(OP_SLEEP, 4) + op(OP_STATS, 8 | 3),
    "priority_pad": header(helpers=1) +
        submit(n=33, prio=1, flags=PAD, size=7, stride=3) +
        submit(n=33, prio=0, flags=PAD, size=0, slots=LIB, thread=1) +
        op(OP_WAIT, 0, T1US) + op(OP_WAIT, 0, T1US, thread=1),
    "mix_all": header(workers=3, helpers=2, spin=6) +
        submit(thread=0, n=64, allowed=ALL, seed=100, flags=STREAM) +
        submit(thread=1, n=40, allowed=ALL, seed=101, policy=QUORUM, quorum=20) +
        submit(thread=2, n=40, allowed=ALL, seed=102, policy=FAIL_FAST, deadline=DL_1MS) +
        op(OP_DRAIN, 0, TINF) + op(OP_WAIT, 0, T2MS, thread=1) +
        op(OP_CANCEL, 0, 0, thread=2) + op(OP_WAIT, 0, TINF, thread=2),
    "reserved_fail_fast_stream": header() +
        submit(n=20, policy=FAIL_FAST, flags=STREAM, allowed=kinds(K_RESV, K_OK), seed=8) +
        op(OP_NEXT_DONE, 0, TINF) + op(OP_WAIT, 0, TINF) + op(OP_DRAIN, 0, T0),
    "quorum_deadline_stream": header(workers=2) +
        submit(n=30, policy=QUORUM, quorum=25, flags=STREAM, deadline=DL_NEAR, slots=CALLER,
               size=5, stride=3, allowed=kinds(K_POLL, K_ERR, K_OK), seed=13) +
        op(OP_WAIT, 0, T500US) + op(OP_DRAIN, 0, T50US) + op(OP_CHECK),
    "max_parallel_one_quorum": header(workers=3) +
        submit(n=16, mp=4, policy=QUORUM, quorum=16, allowed=kinds(K_OK, K_POLL)) +
        submit(n=16, mp=7, policy=BEST, deadline=DL_JUST_PAST) + op(OP_WAIT, 0, TINF) +
        op(OP_WAIT, 1, TINF),
    "many_small": header(workers=2, helpers=1) + b"".join(
        submit(thread=k % 2, n=1 + k, seed=k, allowed=kinds(K_OK, K_ERR)) +
        op(OP_FREE, 0, k & 1, thread=k % 2) for k in range(10)),
    "empty": b"",
    # API 1.0: jobs returning WSCHED_EEXCEPTION (kept) and other reserved
    # codes (WSCHED_EJOBCODE); seed 8 puts EEXCEPTION on jobs 0, 6 and 8 of
    # the first batch, seed 242 makes it the only error (jobs 1 and 3) of
    # the fail-fast batch (ends FAILED) and of the quorum one (5 of 6:
    # ends QUORUM_IMPOSSIBLE), so it is their first error.
    "api1_exception": header(workers=2) +
        submit(n=12, allowed=kinds(K_ERR, K_RESV), seed=8) +
        submit(n=6, policy=FAIL_FAST, allowed=kinds(K_OK, K_ERR), seed=242) +
        submit(n=6, policy=QUORUM, quorum=5, allowed=kinds(K_OK, K_ERR), seed=242) +
        op(OP_WAIT, 0, TINF) + op(OP_WAIT, 1, TINF) + op(OP_WAIT, 2, TINF) +
        op(OP_QUERY, 0, 9) + op(OP_CHECK, 1) + op(OP_CHECK, 2),
    # API 1.0 stats: larger caller structs (bits 4-7 of the first parameter
    # byte), per-worker counts, the -EINVAL size rules (OP_BAD 16).
    "api1_stats_sizes": header(workers=3, helpers=1) +
        submit(n=30, allowed=kinds(K_OK, K_BLOCK, K_SPAWN), seed=17) +
        op(OP_STATS, 8 | 4 | 1 << 4 | 2 << 6) + op(OP_STATS, 8 | 3 | 3 << 4 | 3 << 6, thread=1) +
        op(OP_BAD, 16, 0x55) + op(OP_BAD, 16, 0xfe, thread=1) + op(OP_QUERY, 0, 4) +
        op(OP_BAD, 15, 7) + op(OP_STATS, 8 | 2 | 2 << 4 | 1 << 6) + op(OP_CHECK),
    # API 1.0 deadlines: wsched_wait returns 0 at the batch deadline (the
    # outcome says DEADLINE), -ETIMEDOUT only for the caller's timeout.
    "api1_deadline_wait": header(workers=1) +
        submit(n=64, policy=FAIL_FAST, deadline=DL_NEAR, dl_shift=2,
               allowed=kinds(K_BLOCK, K_POLL), seed=23) +
        op(OP_WAIT, 0, T0) + op(OP_WAIT, 0, T50US) + op(OP_WAIT, 0, TINF) + op(OP_QUERY, 0, 2) +
        submit(n=5, policy=QUORUM, quorum=2, deadline=DL_JUST_PAST) +
        op(OP_WAIT, 1, T0) + op(OP_CHECK, 1) + op(OP_CHECK, 0),
    # Jobs that wait (WSCHED_BATCH_WAITS): sleeps, wakers (woken by the
    # harness's waker thread, by the job itself, late, never), fd waits on
    # socketpairs, nested batches; with policies, deadlines, max_parallel,
    # cancels, misuse, allocation failures, and destroys with waits pending.
    "waits_sleep_waker": header() +
        submit(n=16, waits=True, wmask=W_SLEEP | W_WAKER, seed=31) +
        op(OP_WAIT, 0, TINF) + op(OP_CHECK),
    "waits_fd": header(workers=3) +
        submit(n=24, waits=True, wmask=W_FD, seed=32) + op(OP_WAIT_IDLE, 0, TINF),
    "waits_nested_batch": header() +
        submit(n=12, waits=True, wmask=W_BATCH | W_SLEEP, seed=33) + op(OP_CHECK),
    "waits_policies": header(workers=3, helpers=1) +
        submit(thread=0, n=20, policy=FAIL_FAST, waits=True, wmask=W_ALL,
               allowed=kinds(K_OK, K_ERR), seed=34) +
        submit(thread=1, n=20, policy=QUORUM, quorum=8, waits=True, wmask=W_WAKER | W_FD,
               seed=35) +
        op(OP_WAIT, 0, TINF) + op(OP_WAIT, 0, TINF, thread=1),
    "waits_deadline_cancel": header() +
        submit(n=32, deadline=DL_NEAR, dl_shift=1, waits=True, wmask=W_WAKER | W_FD, seed=36) +
        submit(n=16, waits=True, wmask=W_ALL, seed=37) + op(OP_SLEEP, 3) + op(OP_CANCEL, 1, 1) +
        op(OP_WAIT, 0, TINF) + op(OP_WAIT, 1, TINF) + op(OP_CHECK, 1),
    "waits_max_parallel": header(workers=3) +
        submit(n=24, mp=5, waits=True, wmask=W_ALL, seed=38) + op(OP_WAIT, 0, T500US) +
        op(OP_CHECK),
    "waits_abuse": header() +
        submit(n=32, waits=True, wmask=W_ALL, abuse=5, allowed=kinds(K_OK, K_SPAWN, K_NESTED),
               seed=39) + op(OP_CHECK),
    "waits_destroy_pending": header(destroy=1) +
        submit(n=24, waits=True, wmask=W_SLEEP | W_WAKER | W_FD, seed=40) +
        submit(n=8, waits=True, wmask=W_BATCH, seed=41),
    "waits_destroy_later_kept": header(workers=1, keep=True, destroy=4) +
        submit(n=16, waits=True, wmask=W_ALL, abuse=2, seed=45) + op(OP_WAIT, 0, T50US) +
        submit(n=10, policy=QUORUM, quorum=3, waits=True, wmask=W_WAKER, seed=46),
    "waits_early_free_stream": header() +
        submit(n=20, flags=STREAM, waits=True, wmask=W_ALL, seed=42) +
        op(OP_NEXT_DONE, 0, T2MS) + op(OP_FREE, 0, 1),
    "waits_alloc_fail": header(custom=True, fail_at=12, period=5) +
        submit(n=16, waits=True, wmask=W_ALL, seed=43) + op(OP_CHECK),
    "posts": header(helpers=1) + post(0, PJ_CODE, 2, PW_INF, bad=True) +
        post(1, PJ_SPAWN, 3) + post(1, PJ_SPAWN, 3) + post(2, PJ_NESTED, 1, PW_POLL) +
        post(3, PJ_NOWAITS, 4, PW_50US, thread=1) + post(0, PJ_CODE, 5, thread=1) +
        submit(n=8, allowed=kinds(K_OK, K_NESTED), seed=50) + post(1, wait=PW_INF) +
        op(OP_CHECK),
    "posts_destroy_pending": header(workers=1, maxjobs=4, destroy=1) +
        post(0, PJ_NESTED, 6) + post(1, PJ_SPAWN) + post(2, PJ_CODE, 7) +
        post(0) + post(3, PJ_NESTED, 2, PW_POLL),
    "posts_alloc_fail": header(custom=True, fail_at=3, period=3) +
        post(0, PJ_NESTED, 1, PW_INF) + submit(n=4, seed=51) + post(1, PJ_SPAWN, 2, PW_INF),
    "waits_bad_inputs": header() + op(OP_BAD, 20, 3) + op(OP_BAD, 21, 9) +
        submit(n=4, waits=True, abuse=7, seed=44) + op(OP_CHECK),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
