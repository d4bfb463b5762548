/*
 * destroy.pml -- the submit vs destroy handshake of wsched (src/pool.c,
 * labels H1-H4: wsched__pool_enter, wsched__pool_leave, wsched_pool_destroy,
 * handle_check; src/submit.c submit_impl, src/batch.c batch_complete) in
 * Promela.  Run by
 * tests/model/run_spin.sh.
 *
 * Variables, with the C names:
 *   state       h->state        ALIVE, DRAINING, DEAD (the handle is a
 *                               tombstone, never freed: touching it after
 *                               destroy is fine)
 *   inflight    h->inflight     2 per submit call in progress (enter), of
 *                               which 1 is the batch's (dropped by
 *                               batch_complete) and 1 the call's own
 *                               (dropped at the end of submit_impl); 1 per
 *                               nested batch submitted from inside a job
 *   drain_word  h->drain_word   futex word, bumped by the leave that
 *                               drops inflight to 0 while not ALIVE
 *   dsleep[d]   -               destroyer d is queued in the kernel inside
 *                               futex_wait(&h->drain_word, v)
 *   queued      -               batches handed to the pool (inbox push)
 *                               and not yet taken by a worker
 *   freed       -               free_pool(p) happened: every access to the
 *                               pool (h->p, p->mem, p->workers, an inbox,
 *                               notify) asserts !freed
 *   inpool[s]   -               submitter s is between a successful enter
 *                               and its final leave(1): it may touch the
 *                               pool
 *   stop        p->stop         stop_workers' flag; `wexited` = joined
 *
 * Processes: NS submitters (wsched_submit from outside the pool), one
 * worker standing for the pool's workers (it takes batches and completes
 * them; with NESTED its first batch submits a nested batch from inside, as
 * submit_impl's `inside` path does), ND destroyers (wsched_pool_destroy).
 *
 * Memory model: every access of the handshake is seq_cst in C (the RMWs on
 * inflight, the loads and the CAS of state), except handle_check's ACQUIRE
 * load of state (a pre-check; enter's SC load decides), the nested
 * submit's relaxed fadd (ordered before the parent's completion by program
 * order and the release chain of `remaining`, so inflight cannot touch 0 in
 * between), the RELEASE bump / ACQUIRE load of drain_word (the futex
 * compare is atomic in the kernel), and destroy's RELEASE store of DEAD.
 * Under those orders the Dekker pair "submitter: inflight += 2, then load
 * state / destroy: store DRAINING, then load inflight" is a sequential-
 * consistency argument, so Promela's interleaving is the right model.
 * Abstracted: what a batch does inside the pool (one step "run and
 * complete"); the park/wake protocol (park.pml), replaced by a worker that
 * takes a queued batch whenever there is one; allocation failures and
 * admission limits (wsched__admit_reserve), which only add early leave(2) paths
 * like the ESHUTDOWN back-out; futex_wait may return spuriously at most
 * SPURIOUS times per destroyer.
 *
 * Properties:
 *   - free_pool never runs while a submitter that has entered may still
 *     touch the pool, while a batch is queued or incomplete, or while the
 *     worker runs (assert at the free, and !freed at every pool access);
 *   - no invalid end state: destroy never hangs, nor does anything else;
 *   - at the end: every submit returned OK (and its batch completed) or
 *     -ESHUTDOWN (or -EBADF when it came after the pool was DEAD, which is
 *     a use of a destroyed handle); exactly one destroy returned 0; inflight
 *     is 0.
 *
 * Mutants (each must make spin report an error):
 *   MUT_DESTROY_LOAD_FIRST  destroy loads inflight before it stores
 *                           DRAINING and trusts that load
 *   MUT_SUBMIT_LOAD_FIRST   enter loads state before adding to inflight
 *   MUT_ONE_UNIT            enter takes only the batch's unit: no unit for
 *                           the submit call itself
 *   MUT_WAIT_LOAD_LATE      destroy loads drain_word after inflight (the
 *                           futex value can already include the wake-up)
 *   MUT_LEAVE_STATE_FIRST   leave loads state before its fetch_sub
 */

#ifndef NS
#define NS 2            /* submitters (1 or 2) */
#endif
#ifndef ND
#define ND 1            /* destroyers (1 or 2) */
#endif
#ifndef NESTED
#define NESTED 0        /* 1: the first batch run submits a nested batch */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1
#endif

#define ALIVE 1
#define DRAINING 2
#define DEAD 3

#define R_NONE 0        /* submit / destroy results */
#define R_OK 1
#define R_ESHUTDOWN 2
#define R_EBADF 3
#define R_BUSY 4        /* destroy: another thread is destroying it */

byte state = ALIVE;
short inflight;
byte drain_word;
bool dsleep[ND];
byte dspur[ND];
byte queued;
bool freed;
bool inpool[NS];
bool stop;
bool wexited;
byte accepted;          /* ghost: batches accepted (outside and nested) */
byte completed;         /* ghost: batches completed */
byte sres[NS];          /* ghost: what each wsched_submit returned */
bool sdone[NS];
byte dres[ND];
bool ddone[ND];

/* futex_wake_all(&h->drain_word) */
#if ND == 1
#define WAKE_ALL dsleep[0] = false
#else
#define WAKE_ALL dsleep[0] = false; dsleep[1] = false
#endif

/* wsched__pool_leave(h, k): fsub(inflight, k) == k && state != ALIVE ->
 * bump drain_word and futex_wake_all (one step: a destroyer cannot fall
 * asleep in between, its compare would fail).  Touches only the handle. */
inline leave(k, old)
{
#ifdef MUT_LEAVE_STATE_FIRST
    atomic { old = (state != ALIVE) }
    if
    :: old ->
        atomic {
            old = (inflight == k); inflight = inflight - k;
            if
            :: old -> drain_word = (drain_word + 1) % 4; WAKE_ALL
            :: else
            fi
        }
    :: else -> inflight = inflight - k
    fi;
    old = 0
#else
    atomic { old = (inflight == k); inflight = inflight - k }
    atomic {
        if
        :: old && state != ALIVE -> drain_word = (drain_word + 1) % 4; WAKE_ALL
        :: else
        fi;
        old = 0
    }
#endif
}

proctype submitter(byte s)
{
    bool old;
    byte st;
    /* handle_check: ACQUIRE load of state */
    atomic {
        if
        :: state == DEAD -> sres[s] = R_EBADF; goto out
        :: state == DRAINING -> sres[s] = R_ESHUTDOWN; goto out
        :: else
        fi
    }
    /* wsched__pool_enter: fadd(inflight, 2) then load state, both SC */
#if defined(MUT_SUBMIT_LOAD_FIRST)
    st = state;
    inflight = inflight + 2;
#elif defined(MUT_ONE_UNIT)
    inflight = inflight + 1;
    st = state;
#else
    inflight = inflight + 2;
    st = state;
#endif
    if
    :: st != ALIVE ->                           /* back out: leave(2) */
#ifdef MUT_ONE_UNIT
        leave(1, old);
#else
        leave(2, old);
#endif
        sres[s] = (st == DEAD -> R_EBADF : R_ESHUTDOWN);
        goto out
    :: else
    fi;
    /* entered: p = h->p, allocate and fill the batch, push it onto an
     * inbox, notify_after_sc: all of it touches the pool */
    d_step { st = 0; inpool[s] = true; assert(!freed) }
    d_step { assert(!freed); queued++; accepted++ }
    d_step { assert(!freed); sres[s] = R_OK; inpool[s] = false }
    /* "The batch may be complete and freed by now: touch only the handle." */
#ifndef MUT_ONE_UNIT
    leave(1, old);
#endif
out:
    sdone[s] = true
}

/* The pool's workers: take a queued batch, run it, batch_complete. */
active proctype worker()
{
    bool old;
    bool nested = NESTED;
end_idle:
    do
    :: d_step { queued > 0 -> assert(!freed); queued-- }
        if
        :: nested ->
            /* a job submits a batch from inside the pool: one unit,
             * relaxed, accepted even while draining; then its push */
            d_step { nested = false; inflight = inflight + 1; accepted++ }
            d_step { assert(!freed); queued++ }
        :: else
        fi;
        /* the jobs ran; batch_complete: word_signal(done/idle), then
         * leave(1) (the pool itself is kept alive by the join) */
        d_step { assert(!freed); completed++ }
        leave(1, old)
    :: stop -> break
    od;
    wexited = true
}

proctype destroyer(byte d)
{
    byte v;
    bool zero;
    /* handle_check (-ESHUTDOWN becomes -EBADF here) */
    atomic {
        if
        :: state != ALIVE -> dres[d] = R_EBADF; goto out
        :: else
        fi
    }
#ifdef MUT_DESTROY_LOAD_FIRST
    zero = (inflight == 0);
#endif
    /* cas(&h->state, ALIVE, DRAINING) */
    atomic {
        if
        :: state == ALIVE -> state = DRAINING
        :: else -> dres[d] = R_BUSY; goto out
        fi
    }
#ifdef MUT_DESTROY_LOAD_FIRST
    if
    :: zero -> goto drained
    :: else
    fi;
#endif
    /* drain: v = drain_word (ACQUIRE); if inflight == 0 (SC) break;
     * futex_wait(&h->drain_word, v) */
    do
    ::
#ifdef MUT_WAIT_LOAD_LATE
        zero = (inflight == 0);
        v = drain_word;
#else
        v = drain_word;
        zero = (inflight == 0);
#endif
        if
        :: zero -> break
        :: else
        fi;
        atomic {
            if
            :: drain_word == v -> dsleep[d] = true
            :: else                             /* EAGAIN */
            fi
        }
        if
        :: !dsleep[d]
        :: atomic { dsleep[d] && dspur[d] < SPURIOUS -> dspur[d]++; dsleep[d] = false }
        fi
    od;
drained:
    /* stop_workers: store stop (and wake them), join */
    stop = true;
    wexited;
    /* qsbr_barrier, free_pool */
    d_step {
        assert(queued == 0 && completed == accepted);
        assert(!inpool[0]);
#if NS == 2
        assert(!inpool[1]);
#endif
        freed = true
    }
    d_step { state = DEAD; dres[d] = R_OK }     /* RELEASE store */
out:
    ddone[d] = true
}

init
{
    byte k;
    atomic {
        for (k : 0 .. NS - 1) { run submitter(k) }
        for (k : 0 .. ND - 1) { run destroyer(k) }
    }
    /* everything returned: check the results */
#if NS == 1 && ND == 1
    (sdone[0] && ddone[0]);
#elif NS == 2 && ND == 1
    (sdone[0] && sdone[1] && ddone[0]);
#elif NS == 1 && ND == 2
    (sdone[0] && ddone[0] && ddone[1]);
#else
    (sdone[0] && sdone[1] && ddone[0] && ddone[1]);
#endif
    d_step {
        for (k : 0 .. NS - 1) {
            assert(sres[k] == R_OK || sres[k] == R_ESHUTDOWN || sres[k] == R_EBADF)
        }
        assert(completed == accepted && queued == 0 && inflight == 0 && freed && wexited);
#if ND == 1
        assert(dres[0] == R_OK);
#else
        assert((dres[0] == R_OK) != (dres[1] == R_OK));
        assert(dres[0] == R_OK || dres[0] == R_BUSY || dres[0] == R_EBADF);
        assert(dres[1] == R_OK || dres[1] == R_BUSY || dres[1] == R_EBADF);
#endif
    }
}
