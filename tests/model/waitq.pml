/*
 * waitq.pml -- the wait-completion protocol of wsched (src/waitq.c, labels
 * C1-C4, J2', R1-R3, T1-T5: wsched__wait_arm, wsched__wait_claim,
 * wsched__wake_cell, wsched__wait_done_remote, wsched__wait_post,
 * done_local, wsched__wait_finalize, timer_drop, wsched__wait_pending,
 * wsched__wait_drop, wsched__wait_take, wsched__wait_fire, fire_foreign,
 * fire_nested, wsched__help_waits, wsched__ready_run, the wheel's token,
 * wsched__wait_cancel_batch, wsched__wait_sweep; src/batch.h
 * call_job_waiting; src/run.c run_one_slow, run_range's tail and
 * wsched__run_resume; src/policy.c wsched__cancel_set) in Promela.  Run by
 * tests/model/run_spin.sh, which lists the checks.
 *
 * One job of a batch with waits (a batch of one job, so its completion
 * may free the batch and the record jw in it), two workers.  The job's
 * first range is on worker 0's deque.  Its first call arms a waker wait
 * (C1: a cell from the worker's free list, join = 2, cell->jw, the cell's
 * word = gen|ARMED, jw->cell; the handle, index + generation, goes to the
 * waker thread), with or without a deadline timer, and returns
 * WSCHED_PENDING (J2') or a value (then wait_drop).  Its resumption takes
 * the result from the cell and frees the cell one generation on
 * (wait_take), then calls the job again, which may arm a second wait: a
 * sleep (a timer) or a waker wait nobody holds a handle of (only a cancel
 * or destroy completes it).  The second arming uses the same cell,
 * recycled (the free lists are LIFO: the resuming worker frees it and pops
 * it again), or with -DOTHER_CELL=1 another one.  At most ROUNDS armings; a
 * call after that returns a value.  Whoever runs a call owns its arming
 * (jw->owner): its timer, its ready queue.
 *
 * Shared variables, with the C names:
 *   cst[c], cgen[c]  cell c's word: state (FREE, ARMED, or the result:
 *                    TIMER, WOKEN, TIMEDOUT, CANCELLED) and generation
 *   cjw[c]           cell->jw (1: our job's record, 0: NULL)
 *   cval[c]          cell->value (the waker's value)
 *   jcell            jw->cell (NOCELL = WAIT_NO_CELL)
 *   join             jw->join
 *   towner           jw->owner
 *   cancel           b->cancel (0 = CANCEL_NONE)
 *   rpend[w], rq[w]  worker w's ready_pending, and "jw->node is linked in
 *                    w's ready queue" (one post per arming at most)
 *   dq[w]            worker w's deque holds a task of our job (the first
 *                    range, or a resumption)
 *   tok[w]           w->wheel_tok: 1 held by w (wheel_held), 0 free, 2 a
 *                    thief's (T2)
 *   ttimed, tlate    jw->tflags JW_TIMED, JW_LATE
 *   timer_on         jw's timer is linked: on towner's wheel, or (tlate) on
 *                    its late list (T3); a fire unlinks it
 *   tdef[w]          jw is on w's deferred list (T3)
 * Ghosts (no C counterpart): narm (armings so far; the current one), per
 * arming a: aown (its owner), acell/agen (its cell and generation), aclaims
 * (successful claims), awho (the winner), aj2 (its J2' ran: the join RMW of
 * wait_pending), afin (finalized, or pushed by a thief: its resumption
 * scheduled), ares (resumed), adrop (taken back by wait_drop), aput (its
 * cell freed); incall (the job function is running); jdone (the job
 * completed: its batch, and jw, may be freed from then on; every access
 * to b or jw by a worker, a waker, the sweep or a post asserts !jdone).
 *
 * Processes:
 *   worker(w)  the loop (worker_main): take the wheel's token back when it
 *              is free (T1, T4, with the late timers and the deferred
 *              finalizes of T3); fire our due timer (wsched__wait_fire:
 *              claim TIMER/TIMEDOUT, done_local); finalize what our ready
 *              queue holds (R2); run a task of our deque, or (-DSTEAL=1)
 *              steal the other's, freeing our token first if our wheel has
 *              a timer (T1); (-DFOREIGN) fire the other's due timer while
 *              its token is free (T2, fire_foreign: claim, the join's unit;
 *              at 0 the resumption onto our own deque (FOREIGN=2, as the
 *              code does) or a post to the owner (an fd wait's, or our
 *              deque full: FOREIGN=1 only this)).  A task is the first
 *              range (run_one_slow, which skips the job if it sees the
 *              cancel; then T1 at the job's end, wheel_boundary; then
 *              run_range's range_done(w, b, 0) when the job went
 *              pending, which touches nothing) or a resumption
 *              (run_resume).  The job's call: arm or not; with
 *              -DINJOB=1 an in-job wait (wsched_wait,
 *              wsched_sync) between the arm and the return, whose steps
 *              are help_waits (T5: the ready queue, the token back, our due
 *              timer with fire_nested: claim, then the join's unit, C4) and
 *              the end of an inner job of a batch with waits (T1 at its
 *              end frees the token when the wheel has a timer); then the
 *              return and call_job_waiting (J2' or wait_drop).
 *   waker      a thread holding the handle of the first arming: WAKES
 *              wakes (wsched__wake_cell: C2 on the exact gen|ARMED word,
 *              the value, C4), any time after it got the handle (-DWAKE_OPT
 *              =1: it may stop before any of them); then one late wake once
 *              the first arming's cell was freed (its job resumed, the cell
 *              recycled, maybe re-armed, maybe the job completed): it must
 *              fail and touch nothing but the cell.
 *   canceller  -DCANCEL=1: wsched_cancel (wsched__cancel_set: CAS of the
 *              cancel word, the only canceller, so it wins), then the C3
 *              walk: load join; at 1 load jw->cell, claim CANCELLED, C4.
 *              It holds the batch (the user's reference, or a job of the
 *              batch for fail-fast and quorum, or the deadline timer's):
 *              its accesses to jw are allowed after the job completed.
 *   sweeper    -DSWEEP=1: wsched_pool_destroy's drain, polling
 *              wsched__wait_sweep until the job completed: per cell, load
 *              the word; ARMED: load cell->jw, CAS that word -> CANCELLED
 *              (C2, the generation included), C4.
 *
 * Memory model.  Promela interleaves: every access is sequentially
 * consistent.  The code's orderings, and why they give what the model
 * assumes (the C11/x86-TSO argument is in waitq.c's comments):
 *   - C1's relaxed stores (join = 2, cell->jw, cell->value) are published
 *     by the RELEASE store of the word; a claimer's ACQUIRE load (and its
 *     ACQ_REL CAS, which reads from that store or a later one) synchronizes
 *     with it, so a claimer that wins sees them, as in the model.  The
 *     model merges a claim's load of the word, its check of cell->jw and
 *     its CAS into one step where that is exact: cell->jw only changes
 *     while the word is not ARMED, and a CAS that fails changes nothing.
 *     The sweep's load and CAS stay two steps (its CAS compares the
 *     generation it loaded), and so do the canceller's load of jw->cell
 *     and its claim.
 *   - C4 and J2' (ACQ_REL) are RMWs of `join`: totally ordered
 *     in its modification order, each reads the latest value, and the one
 *     that reads 1 is last; the release sequence makes the other party's
 *     writes (the waker's value, the job's frame) visible to it.  One
 *     atomic decrement each.
 *   - C3 against J2' is a Dekker pair of SEQ_CST operations (the job: the
 *     C1 store of jw->cell, then J2''s load of the cancel word; the
 *     canceller: the cancel CAS, then its load of jw->cell), so the seq_cst
 *     interleaving is exact for it: one of the two loads sees the other
 *     side's write.  An index the canceller reads from an older arming
 *     (stale, NO_CELL) makes its claim fail, as the model's current value
 *     does; the cell's RELEASE word store (C1) publishes jw and join = 2
 *     to a claimer that reads ARMED.
 *   - wait_take's relaxed loads of the word and the value are published to
 *     the resumption by the join's RMWs and the deque push (deque.h P1);
 *     cell_put's relaxed stores need nothing: the cell is its worker's
 *     until the next C1 release, and a stale wake's load is followed by its
 *     CAS, an RMW that reads the latest word and fails.
 *   - run_resume and run_one_slow load the cancel word relaxed: the model
 *     lets them miss a cancel that is set (any time: more than coherence
 *     allows, so a pass covers the code).
 *   - the wheel's token: CAS 0 -> 1 / 0 -> 2 (ACQUIRE) and the RELEASE
 *     store of 0 hand the wheel (and jw's timer links) from one holder to
 *     the next: one step each.  wheel_due and the grace period only decide
 *     when a thief looks: it may fire a due timer whenever the token is
 *     free (any timer may be due).
 *   - R1/R2: ready_pending counted (SEQ_CST) before the node is linked, the
 *     wfcqueue's link one step (its internals and the owner's park, K1/K2
 *     against R1's parked-bit check, are park.pml's); a worker keeps
 *     looking while its ready_pending > 0.
 *
 * Abstracted: other jobs (the wheel holds only jw's timer: "armed" means
 * that one; an inner job of an in-job wait is its T1 boundary only); fd
 * waits (an fd event is the owner's claim, like its timer; FOREIGN's post
 * covers a thief's fd deadline); batch deadlines (run.c D1-D3: a deadline
 * acts through the cancel word, as the canceller here); deque overflow
 * (schedule_resume runs the resumption inline); wait_check's -ESHUTDOWN
 * (the job's choice not to arm covers it); cells_grow and generation
 * wrap-around (40 bits); batch waits (J1-J3).
 *
 * Properties (asserts; pan also reports invalid end states):
 *   - one claim wins per arming (aclaims <= 1 at each win, == 1 at the
 *     end), and a waker's win is for the arming of its handle;
 *   - every arming is finalized at most once, by its owner, and never
 *     before its J2' (afin, aj2): its resumption is never scheduled while
 *     the call that armed it still runs; resumed exactly once unless taken
 *     back by wait_drop; a resumption reads the winner's result (and the
 *     waker's value);
 *   - the late wake fails; a successful claimer's accesses to jw (C4, the
 *     post) come before the job completes (!jdone), and the cell it reads
 *     still names jw; nor does the worker that ran a call touch b or jw
 *     after its job completed elsewhere (J2''s load of b->cancel and its
 *     claim);
 *   - done_local's DEBUG_ASSERT: join == 1 at a claim won by the owner;
 *   - no lost completion: the job always completes (the workers' loops,
 *     not at an end label, block for ever otherwise: invalid end state),
 *     in particular when a cancel comes between the arm and the return (C3
 *     vs J2'), and a CANCELLED result resumes the job as cancelled;
 *   - at the end: jdone, nothing queued, no timer, the cells free.
 *
 * Found by this model and fixed (now MUT_J2_RMW_FIRST): J2' used to
 * load jw->b->cancel (and claim) after its join RMW (2 -> 1); a thief's T2
 * advance, with the token freed at an inner job's end, could take the last
 * unit (1 -> 0), push the resumption onto its own deque and complete the
 * job there first: a read of a batch that may be freed, or, with a cancel,
 * a claim of the job's next arming (made by the thief), finalized by the
 * wrong worker while that arming's call ran.
 *
 * Mutants (each must make spin report an error):
 *   MUT_NO_J2_CANCEL_CHECK  J2' does not load the cancel word (a cancel
 *                           between the arm and the return is lost: the
 *                           job stays pending for ever)
 *   MUT_C3_LOAD_FIRST       the canceller loads jw->cell before its CAS of
 *                           the cancel word (a pre-scan of the pending
 *                           jobs): the Dekker pair is broken, the same loss
 *   MUT_J2_RMW_FIRST        J2' as it was before the fix: its join RMW,
 *                           then the load of the cancel word and the claim;
 *                           a thief's T2 can take the last unit in between
 *                           and complete the job (use after free), and with
 *                           a cancel J2' claims the next arming
 *   MUT_NO_GEN              the waker's check ignores the generation: the
 *                           late wake completes the second arming
 *   MUT_LOCAL_NO_JOIN       a remote completer (waker, canceller, sweep)
 *                           posts without giving its unit of the join, as
 *                           if it were the owner's loop: the in-job wait's
 *                           ready_run (T5) resumes the job before its J2'
 *   MUT_RANGE_DONE_0        run_range as it was before f14a58d: its
 *                           range_done(w, b, 0), after its job went
 *                           pending, reads b (holds_admission, remaining);
 *                           with -DSTEAL=1 the resumption that J2'
 *                           scheduled (a completion came first) is stolen
 *                           and completes the batch first, and
 *                           completion_range_done(remaining, 0) then reads
 *                           0 and completes it a second time (this model
 *                           found it in the code of 779e30b, as f14a58d's
 *                           stress test did)
 */

#ifndef ROUNDS
#define ROUNDS 2        /* armings at most (1 or 2) */
#endif
#ifndef T1
#define T1 2            /* the first arming's deadline timer: 0 none, 1 always, 2 either */
#endif
#ifndef T2
#define T2 1            /* the second arming: 1 a sleep (timer), 0 an untimed waker wait, 2 either */
#endif
#ifndef WAKES
#define WAKES 1         /* the waker's wakes (0..2), besides the late one */
#endif
#ifndef WAKE_OPT
#define WAKE_OPT 0      /* 1: the waker may stop before any wake */
#endif
#ifndef CANCEL
#define CANCEL 0        /* 1: a canceller */
#endif
#ifndef SWEEP
#define SWEEP 0         /* 1: destroy's sweep */
#endif
#ifndef INJOB
#define INJOB 0         /* 1: an in-job wait between the arm and the return (T5) */
#endif
#ifndef DROP
#define DROP 1          /* 1: the job may arm and then return a value (wait_drop) */
#endif
#ifndef OTHER_CELL
#define OTHER_CELL 0    /* 1: the second arming takes cell 1 */
#endif
#ifndef STEAL
#define STEAL 0         /* 1: a worker may steal the job's task from the other's deque */
#endif
#ifndef FOREIGN
#define FOREIGN 0       /* 1: T2 fires, the resumption posted; 2: also pushed by the thief */
#endif
#ifndef J2_FREE_CHECK
#define J2_FREE_CHECK 1 /* 0: J2''s accesses after its join RMW are not checked against jdone */
#endif

#define NCELL 2
#define NOCELL 2

/* cell states (waitq.h) */
#define FREE 0
#define ARMED 1
#define TIMER 2
#define WOKEN 3
#define TIMEDOUT 4
#define CANCELLED 5

/* resume kinds of a call */
#define K_FIRST 0
#define K_TIMER 1
#define K_WOKEN 2
#define K_TIMEDOUT 3
#define K_CANCELLED 4

/* claimers (ghost) */
#define BY_TIMER 1      /* the owner's loop: wsched__wait_fire */
#define BY_WAKER 2
#define BY_CANCEL 3     /* C3 */
#define BY_J2 4         /* J2''s own cancel claim */
#define BY_DROP 5       /* wait_drop */
#define BY_NESTED 6     /* fire_nested (T5) */
#define BY_SWEEP 7
#define BY_FOREIGN 8    /* a thief's advance of the owner's wheel (T2) */

byte cst[NCELL];
byte cgen[NCELL] = 1;   /* cells_grow: generation 1 */
bit cjw[NCELL];
byte cval[NCELL];
byte jcell = NOCELL;
byte join;
byte towner;
bit cancel;
byte rpend[2];
bit rq[2];
bit dq[2];
byte tok[2] = 1;
bit ttimed;
bit tlate;
bit timer_on;
bit tdef[2];

/* the waker's handle (wsched_waker_arm's id) */
bit hready;
byte hidx;
byte hgen;

/* ghosts */
bit started;            /* the first range was taken */
bit incall;
bit jdone;
byte narm;
byte aown[ROUNDS + 1];
byte acell[ROUNDS + 1];
byte agen[ROUNDS + 1];
byte aclaims[ROUNDS + 1];
byte awho[ROUNDS + 1];
bit aj2[ROUNDS + 1];
byte afin[ROUNDS + 1];
byte ares[ROUNDS + 1];
bit adrop[ROUNDS + 1];
bit aput[ROUNDS + 1];

/* A claim won (inside the claim's atomic step): the arming ARMED now is
 * the current one, narm. */
inline won(who)
{
    assert(aclaims[narm] == 0);
    aclaims[narm]++;
    awho[narm] = who
}

/* C2 for a completer that knows jw (wsched__wait_claim), from the index
 * it loaded: the load of the word, the check of cell->jw and the CAS. */
inline claim_jw(idx, res, who, ok)
{
    atomic {
        if
        :: idx != NOCELL && cst[idx] == ARMED && cjw[idx] ->
            assert(acell[narm] == idx && agen[narm] == cgen[idx]);
            cst[idx] = res;
            won(who);
            ok = 1
        :: else -> ok = 0
        fi
    }
}

/* R1: wsched__wait_post (jw->owner read first; once linked, jw may be
 * resumed and gone).  The owner's parked bit: park.pml (ours never sleep). */
inline post(o)
{
    d_step { assert(!jdone); o = towner; rpend[o]++ }   /* jw->owner; ready_pending += 1 */
    d_step { assert(!jdone); assert(!rq[o]); rq[o] = 1; o = 0 }  /* enqueue: linked */
}

/* C4: wsched__wait_done_remote */
inline done_remote(old, o)
{
#ifdef MUT_LOCAL_NO_JOIN
    d_step { assert(!jdone); old = 1 }
#else
    d_step { assert(!jdone); old = join; join-- }   /* fsub ACQ_REL */
#endif
    if
    :: old == 1 -> post(o)
    :: else
    fi;
    old = 0
}

/* The resumption scheduled (schedule_resume, or fire_foreign's push). */
inline push_resume()
{
    assert(!dq[0] && !dq[1]);
    dq[me] = 1
}

/* wsched__wait_take's T3 part and the push: the finalize of a record on
 * our deferred list, or of one whose timer we may drop now. */
inline timer_drop_or_defer()
{
    if
    :: !ttimed -> push_resume()
    :: ttimed && tlate -> timer_on = 0; tlate = 0; ttimed = 0; push_resume()
    :: ttimed && !tlate && tok[me] == 1 -> timer_on = 0; ttimed = 0; push_resume()
    :: else -> tdef[me] = 1                 /* T3: once we hold the token */
    fi
}

/* wsched__wait_finalize (the owner) */
inline finalize()
{
    d_step {
        assert(!jdone);
        assert(aj2[narm]);              /* never before the arming call's J2' */
        assert(towner == me && aown[narm] == me);
        assert(afin[narm] == 0);
        afin[narm]++;
        timer_drop_or_defer()
    }
}

/* done_local: a claim won by the owner after J2' */
inline done_local()
{
    assert(join == 1);                  /* its DEBUG_ASSERT */
    finalize()
}

/* wsched__wheel_take: the token back if it is free, the late timers
 * filed, the deferred finalizes done. */
inline wheel_take()
{
    d_step {
        tok[me] == 0 ->
        tok[me] = 1;
        if
        :: timer_on && tlate && towner == me -> tlate = 0
        :: else
        fi;
        if
        :: tdef[me] -> tdef[me] = 0; timer_drop_or_defer()
        :: else
        fi
    }
}

/* wsched__wheel_release: only with a timer on our wheel */
inline wheel_release()
{
    d_step {
        if
        :: tok[me] == 1 && timer_on && !tlate && towner == me -> tok[me] = 0
        :: else
        fi
    }
}

/* wsched__wheel_boundary (T1 at a job's end inside a range) */
inline wheel_boundary()
{
    d_step {
        if
        :: tok[me] == 0 && timer_on && tlate && towner == me -> tok[me] = 1; tlate = 0
        :: else
        fi;
        if
        :: tdef[me] && tok[me] == 1 -> tdef[me] = 0; timer_drop_or_defer()
        :: else
        fi
    }
    wheel_release()
}

/* J2': wsched__wait_pending (as fixed: the cancel word loaded and the
 * self-claim made while the job's own unit of the join still holds jw;
 * after the join RMW it touches nothing unless it was the last party).
 * MUT_J2_RMW_FIRST is the order before the fix: the RMW, then the load and
 * the claim, which a completion can overtake (J2''s tail). */
inline wait_pending()
{
#ifndef MUT_J2_RMW_FIRST
#if !defined(MUT_NO_J2_CANCEL_CHECK)
    d_step {                                        /* ld(&jw->b->cancel, SC) */
        printf("W%d: J2' loads jw->b->cancel\n", me);
        assert(!J2_FREE_CHECK || !jdone);
        sawc = cancel
    }
    if
    :: sawc ->
        d_step { assert(!J2_FREE_CHECK || !jdone); c = jcell };   /* wait_claim: jw->cell */
        claim_jw(c, CANCELLED, BY_J2, ok);
        c = 0
    :: else -> ok = 0
    fi;
#else
    ok = 0;
#endif
    if
    :: ok ->
        printf("W%d: J2' claimed CANCELLED itself: both units\n", me);
        aj2[narm] = 1;
        finalize()
    :: else ->
        d_step { old = join; join--; aj2[narm] = 1 }    /* fsub ACQ_REL */
        printf("W%d: J2' join %d->%d\n", me, old, old - 1);
        if
        :: old == 1 -> finalize()
        :: else
        fi
    fi;
    ok = 0;
#else
    d_step { old = join; join--; aj2[narm] = 1 }
    printf("W%d: J2' join %d->%d\n", me, old, old - 1);
    if
    :: old == 1 -> finalize()
    :: else ->
        d_step {
            printf("W%d: J2' loads jw->b->cancel\n", me);
            assert(!J2_FREE_CHECK || !jdone);
            sawc = cancel
        }
        if
        :: sawc ->
            d_step { assert(!J2_FREE_CHECK || !jdone); c = jcell };
            claim_jw(c, CANCELLED, BY_J2, ok);
            c = 0;
            if
            :: ok -> done_local()
            :: else
            fi
        :: else
        fi
    fi;
#endif
    old = 0;
    sawc = 0
}

/* wsched__wait_take, with cell_put */
inline wait_take()
{
    d_step {
        c = jcell;
        assert(c != NOCELL && c == acell[narm]);
        res = cst[c];
        value = cval[c];
        assert(res >= TIMER && res <= CANCELLED && aclaims[narm] == 1);
        jcell = NOCELL;
        cjw[c] = 0;
        cgen[c]++;
        cst[c] = FREE;
        aput[narm] = 1;
        c = 0
    }
}

/* The job's call and call_job_waiting: kind in, pending out. */
inline jobcall()
{
    incall = 1;
    armed = 0;
    printf("W%d: job called (kind %d)\n", me, kind);
    /* the job's body: arm a wait (C1), or not */
    if
    :: narm < ROUNDS ->
        c = ((narm == 1 && OTHER_CELL) -> 1 : 0);   /* our free list's head */
        d_step {
            assert(cst[c] == FREE && cjw[c] == 0);
            towner = me;
            join = 2; cjw[c] = 1; cval[c] = 0       /* relaxed */
        }
        d_step {
            cst[c] = ARMED;                         /* the word: RELEASE */
            narm++;
            aown[narm] = me;
            acell[narm] = c;
            agen[narm] = cgen[c];
            printf("W%d: arm %d: cell %d gen %d\n", me, narm, c, cgen[c])
        }
        jcell = c;                                  /* relaxed */
        /* the timer (arm_timer: the wheel if we hold it, else late), the
         * waker's handle given out */
        if
        :: (narm == 1 && T1 != 0) || (narm == 2 && T2 != 0) ->
            d_step { ttimed = 1; timer_on = 1; tlate = (tok[me] != 1) }
        :: (narm == 1 && T1 != 1) || (narm == 2 && T2 != 1) -> ttimed = 0
        fi;
        if
        :: narm == 1 -> d_step { hidx = c; hgen = cgen[c]; hready = 1 }
        :: else
        fi;
        c = 0;
        armed = 1
    :: true
    fi;
#if INJOB
    /* an in-job wait that finds no task: help_waits (T5); or the end of
     * an inner job of a batch with waits that it runs (T1) */
    inner = 0;
    do
    :: rq[me] ->
        printf("W%d: in-job wait: ready queue\n", me);
        d_step { rq[me] = 0; rpend[me]-- };
        finalize()
    :: wheel_take()
    :: tok[me] == 1 && timer_on && !tlate && towner == me ->
        printf("W%d: in-job wait: fire_nested\n", me);
        d_step { timer_on = 0 };
        claim_jw(jcell, (narm == 1 -> TIMEDOUT : TIMER), BY_NESTED, ok);
        if
        :: ok -> d_step { old = join; join-- };
            if
            :: old == 1 -> finalize()
            :: else
            fi;
            old = 0
        :: else
        fi
    :: inner == 0 ->
        printf("W%d: in-job wait: an inner job ends\n", me);
        inner = 1;
        wheel_boundary()
    :: break
    od;
#endif
    /* the return */
    incall = 0;
    if
    :: armed ->
        if
        :: kind != K_CANCELLED ->
            printf("W%d: returned PENDING\n", me);
            wait_pending();
            pending = 1
        :: DROP || kind == K_CANCELLED ->
            /* a value (or PENDING from a cancelled call): wsched__wait_drop */
            printf("W%d: returned without waiting: drop\n", me);
            claim_jw(jcell, CANCELLED, BY_DROP, ok);
            if
            :: ok ->
                /* timer_drop, taking the token back first (T4) */
                do
                :: d_step { !(ttimed && !tlate && tok[me] != 1) ->
                        timer_on = 0; tlate = 0; ttimed = 0 } ->
                    break
                :: wheel_take()
                od;
                adrop[narm] = 1;
                wait_take();
                pending = 0
            :: else ->
                wait_pending();
                pending = 1
            fi
        fi;
        armed = 0
    :: else -> pending = 0
    fi;
    ok = 0
}

proctype worker(byte me)
{
    bit armed, pending, ok, cancelled, sawc, skipped, isfirst, inner;
    byte c, old, res, value, kind, o;
    do
    :: d_step { dq[me] -> dq[me] = 0; isfirst = !started; started = 1 }
        goto task
    :: d_step { STEAL && dq[1 - me] -> dq[1 - me] = 0; isfirst = !started; started = 1 }
task:   /* T1: our timers stay live during the task */
        wheel_release();
        if
        :: isfirst ->
            /* run_one_slow: reason = ld(cancel, RLX) */
            if
            :: cancel -> printf("W%d: job skipped, cancelled\n", me); skipped = 1
            :: true -> kind = K_FIRST
            fi
        :: else ->
            /* wsched__run_resume */
            d_step {
                assert(!incall && aj2[narm] && afin[narm] == 1);
                ares[narm]++;
                assert(ares[narm] == 1)
            }
            if
            :: cancel -> cancelled = 1
            :: true -> cancelled = 0                /* relaxed: maybe not seen yet */
            fi;
            wait_take();
            d_step {
                if
                :: res == WOKEN -> assert(awho[narm] == BY_WAKER && value == narm)
                :: res == CANCELLED ->
                    assert(awho[narm] == BY_CANCEL || awho[narm] == BY_J2 ||
                           awho[narm] == BY_SWEEP);
                    cancelled = 1                   /* the pool's destroy */
                :: else -> assert(awho[narm] == BY_TIMER || awho[narm] == BY_NESTED ||
                                  awho[narm] == BY_FOREIGN)
                fi;
                kind = (cancelled -> K_CANCELLED :
                        (res == WOKEN -> K_WOKEN : (res == TIMER -> K_TIMER : K_TIMEDOUT)));
                value = 0
            }
            printf("W%d: resume %d: result %d\n", me, narm, res)
        fi;
        if
        :: skipped -> pending = 0
        :: else -> jobcall()
        fi;
        if
        :: pending
        :: else ->
            d_step { assert(!incall && !jdone); jdone = 1; cancelled = 0; res = 0 }
            printf("W%d: job completed\n", me)
        fi;
        if
        :: isfirst ->
            /* run_one_slow: T1 at the job's end inside a range */
            wheel_boundary();
            /* run_range: range_done(w, b, r.count - pending), with 0
             * when the job went pending: it returns at once (f14a58d) */
#ifdef MUT_RANGE_DONE_0
            if
            :: pending ->
                d_step {
                    printf("W%d: run_range's range_done(w, b, 0)\n", me);
                    assert(!jdone)      /* b, and its remaining, after the batch completed */
                }
            :: else
            fi
#endif
        :: else
        fi;
        pending = 0; skipped = 0; isfirst = 0; kind = 0
    :: wheel_take()
    :: tok[me] == 1 && timer_on && !tlate && towner == me ->
        /* run_timers: the due timer, wsched__wait_fire */
        d_step { timer_on = 0 };
        claim_jw(jcell, (narm == 1 -> TIMEDOUT : TIMER), BY_TIMER, ok);
        if
        :: ok -> printf("W%d: timer claimed arm %d\n", me, narm); done_local()
        :: else
        fi;
        ok = 0
    :: rpend[me] > 0 && rq[me] ->
        /* wsched__ready_run (R2) */
        d_step { rq[me] = 0; rpend[me]-- };
        printf("W%d: ready queue: finalize\n", me);
        finalize()
    :: d_step { FOREIGN && tok[1 - me] == 0 && timer_on && !tlate && towner == 1 - me ->
                tok[1 - me] = 2; timer_on = 0 }
        /* T2: the other's wheel, fire_foreign */
        claim_jw(jcell, (narm == 1 -> TIMEDOUT : TIMER), BY_FOREIGN, ok);
        if
        :: ok ->
            printf("W%d: thief's advance claimed arm %d\n", me, narm);
            d_step { assert(!jdone); old = join; join-- };     /* C4 */
            if
            :: old == 1 ->
                if
                :: FOREIGN == 2 ->              /* onto our own deque */
                    d_step {
                        assert(!jdone && aj2[narm] && afin[narm] == 0);
                        afin[narm]++;
                        push_resume()
                    }
                :: true -> post(o)              /* an fd wait's; our deque full */
                fi
            :: else
            fi
        :: else
        fi;
        tok[1 - me] = 0;                        /* RELEASE */
        ok = 0; old = 0
    :: jdone && !dq[me] && !rq[me] && !tdef[me] -> break
    od
}

/* wsched__wake_cell with the handle (hidx, hgen) */
inline wake(ok, old, o)
{
    atomic {
        if
#ifdef MUT_NO_GEN
        :: cst[hidx] == ARMED ->
#else
        :: cst[hidx] == ARMED && cgen[hidx] == hgen ->
#endif
            assert(acell[narm] == hidx);
            won(BY_WAKER);
            assert(agen[narm] == hgen);     /* the arming of our handle */
            cst[hidx] = WOKEN;
            ok = 1
        :: else -> ok = 0
        fi
    }
    if
    :: ok ->
        printf("T: wake claimed\n");
        cval[hidx] = 1;                     /* the value: the handle's arming */
        d_step { assert(cjw[hidx] && !jdone) }   /* ld(c->jw), then C4 */
        done_remote(old, o)
    :: else -> printf("T: wake failed\n")
    fi
}

proctype waker()
{
    bit ok;
    byte k, old, o;
    if
    :: hready
    :: jdone && !hready -> goto out         /* the job never armed */
    fi;
    for (k : 1 .. WAKES) {
        if
        :: WAKE_OPT -> goto late
        :: true
        fi;
        wake(ok, old, o);
        ok = 0
    }
late:
    aput[1];                                /* the first arming's cell is freed */
    printf("T: late wake\n");
    wake(ok, old, o);
    assert(!ok);
out:
    skip
}

proctype canceller()
{
    bit ok;
    byte j, idx, old, o;
#ifdef MUT_C3_LOAD_FIRST
    idx = jcell;
#endif
    d_step { assert(!cancel); cancel = 1 }  /* CAS NONE -> USER, SC */
    printf("C: cancel set\n");
#ifndef MUT_C3_LOAD_FIRST
    idx = jcell;                            /* C3: ld(&jw->cell, SC) */
#endif
    j = 1;
    if
    :: idx != NOCELL ->
        claim_jw(idx, CANCELLED, BY_CANCEL, ok);
        if
        :: ok -> printf("C: claimed CANCELLED\n"); done_remote(old, o)
        :: else
        fi
    :: else -> printf("C: no cell armed, not visited\n")
    fi
}

proctype sweeper()
{
    bit ok, j;
    byte c, g, old, o;
end_poll:
    do
    :: jdone -> break
    :: atomic { cst[0] == ARMED -> c = 0; g = cgen[0]; j = cjw[0] }
#if OTHER_CELL
    :: atomic { cst[1] == ARMED -> c = 1; g = cgen[1]; j = cjw[1] }
#endif
        atomic {                            /* C2: CAS of the loaded word */
            if
            :: cst[c] == ARMED && cgen[c] == g ->
                assert(acell[narm] == c);
                won(BY_SWEEP);
                cst[c] = CANCELLED;
                ok = 1
            :: else -> ok = 0
            fi
        }
        if
        :: ok -> printf("D: sweep claimed cell %d\n", c); assert(j); done_remote(old, o)
        :: else
        fi;
        ok = 0; c = 0; g = 0; j = 0
    od
}

init
{
    byte a;
    atomic {
        dq[0] = 1;                          /* the job's range, on worker 0 */
        run worker(0);
        run worker(1);
        run waker();
#if CANCEL
        run canceller();
#endif
#if SWEEP
        run sweeper();
#endif
    }
    _nr_pr == 1;
    d_step {
        assert(jdone && !incall && !dq[0] && !dq[1] && !rq[0] && !rq[1]);
        assert(rpend[0] == 0 && rpend[1] == 0 && !timer_on && !tdef[0] && !tdef[1]);
        assert(jcell == NOCELL && cst[0] == FREE && cst[1] == FREE);
        for (a : 1 .. narm) {
            assert(aclaims[a] == 1 && aput[a]);
            assert(adrop[a] || (afin[a] == 1 && ares[a] == 1));
            assert(!adrop[a] || (afin[a] == 0 && ares[a] == 0))
        }
    }
}
