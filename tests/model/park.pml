/*
 * park.pml -- the idle/wake-up protocol of wsched (src/idle.c, src/worker.c, src/inbox.c)
 * in Promela.  Run by tests/model/run_spin.sh, which lists the checks.
 *
 * Shared variables, with the C names:
 *   searching     p->searching    searcher count (uint32 in C; signed here
 *                                 so that a dip below zero shows)
 *   parked        p->parked[0]    bit w set: worker w is claimable
 *   park_word[w]  w->park_word    futex word, bumped once per claim
 *                                 (wake_claimed), modulo WRAP
 *   dq[w]         w->dq           the Chase-Lev deque as a task count;
 *                                 push, pop and steal are single steps (the
 *                                 deque is tested by tests/unit/test_deque.c
 *                                 and tests/stress/test_deque_torture.c)
 *   ib[i]         w->inbox[]      worker i's inbox: the wfcqueue (node[],
 *                                 cnt; nlinked[p] = producer p's node is
 *                                 reachable, i.e. the link store after the
 *                                 tail xchg is done), `pending`, `token`
 *   stop          p->stop
 * Worker-private, global only so that the invariant can read them:
 *   claims[w]     w->claims       parks that wait for a claim, modulo WRAP
 *   ws[w]         w->searching    "counted in searching"
 * Ghosts (no C counterpart): asleep[w] (queued in the kernel inside
 * futex_wait(&w->park_word, v)), nspur[w] (spurious returns used), owed[w]
 * (counted in searching by a claimer, not running yet), inq[p] (producer
 * p's batch is in its inbox), inpush[p] (producer p has not returned from
 * wsched_submit), ndone, nexited.
 *
 * Processes:
 *   worker(w)    worker_main: find_local (own deque, own inbox), search
 *                (the searcher cap: at most half the workers, at least one;
 *                then one steal_once pass: the other deques, then the
 *                inboxes), the extra steal_once after PARK_SAW_WORK,
 *                stop_searching (the last searcher wakes one if work is
 *                visible), run_task, park (set the bit, leave searching,
 *                re-scan = work_visible || stop, cancel by fetch_and, then
 *                futex_wait on park_word until it equals claims).  Running
 *                producer 0's batch pushes one child task onto the worker's
 *                own deque, then wsched__notify if the deque was empty:
 *                producer kind (b) (split_upper, spawn, start_lanes do
 *                the same).
 *   producer(p)  an external wsched_submit: wsched__inbox_push onto inbox
 *                INBOX_OF(p) = cds_wfcq_enqueue (tail xchg, link store),
 *                fetch_add(pending) (SC), wsched__notify_after_sc(hint = the
 *                inbox's worker): if searching == 0, claim_parked (the
 *                hint's bit, else the lowest set bit, by fetch_and: one
 *                winner) and wake_claimed (searching++, bump park_word,
 *                futex_wake).
 *   stopper      stop_workers after wsched_pool_destroy's drain: store stop,
 *                claim and wake every parked worker, join.
 *   monitor      the invariant, in every reachable state.
 *
 * Memory model.  Every access the protocol's correctness rests on is
 * seq_cst in C (the RMWs on parked, searching and pending, the re-scan
 * loads of work_visible, the loads of searching and parked in
 * notify_after_sc, the fence of wsched__notify after a release push), and
 * the argument at the top of idle.c is a sequential-consistency argument:
 * Promela's interleaving semantics is the right model.  What is weaker in
 * C, and why that is safe or covered:
 *   - search(): the cap's load of searching is relaxed.  It only chooses
 *     between searching and parking; -DCAP_ANY makes that choice
 *     nondeterministic, which covers any stale value.
 *   - take_from(): the `pending > 0` pre-check is a relaxed hint; -DSTALE_
 *     HINTS also lets it answer "empty" at any time (sleeping is decided by
 *     the seq_cst re-scan).  Its fetch_sub of pending is relaxed: RMWs of
 *     one location are totally ordered anyway, and a re-scan that reads the
 *     value before the decrement only cancels a park.
 *   - park_word: the RELEASE bump / ACQUIRE load only order the claimer's
 *     data for the woken worker; futex_wait's compare-and-sleep is atomic in
 *     the kernel, futex_wake wakes whoever is queued on the word.
 *   - the token CAS/store (ACQUIRE/RELEASE) only serialise one inbox's
 *     consumers; the wfcqueue's nonblocking dequeue is one step under the
 *     token, with its three outcomes: NULL (empty), WOULDBLOCK (the head's
 *     link, or the head's next while the tail moved on, not stored yet),
 *     or the head node.
 *
 * Abstractions: one inbox per worker that gets work (the two priority
 * classes of wsched__take_inbox behave alike here; inboxes that never get
 * work are left out of the scans, their loads always read 0); the search
 * deadline is one steal_once pass; steal_once visits the other workers in a
 * fixed order, not from a random start; the deque_steal retry loop is one
 * step; futex_wait may return spuriously at most SPURIOUS times per worker
 * (finite, so a stuck system is still a deadlock spin reports); park_word
 * and claims are kept modulo WRAP (they differ by at most one claim, so 2
 * keeps the compare exact; 4 lets the invariant catch a double claim).
 *
 * Properties:
 *   - NO_LOST_WAKEUP: never every worker dormant (asleep in futex_wait with
 *     its parked bit still set, so no wake-up is in flight towards it) while
 *     a task is queued that a *finished* push published (a deque task, or a
 *     batch whose wsched_submit returned).  A push still in progress is not
 *     counted: it notifies by itself.
 *   - SEARCHING_OK: 0 <= searching <= MAXSEARCH, and (SUM_CHECK) searching
 *     equals the workers counted as searchers plus the claimed ones not yet
 *     running.  Searching bound: that sum can exceed the number of workers
 *     for a moment -- a searcher that has set its parked bit but not yet
 *     left the count can be claimed, and counted again by its claimer -- so
 *     the bound checked is 2 * NW; -DMAXSEARCH=NW shows the overshoot
 *     (wsched_stats clamps such values).
 *   - CLAIM_OK (WRAP >= 4): a park is never claimed twice.
 *   - stopper: searching == 0 once every worker has exited.
 *   - no invalid end state (pan without -E): nothing hangs.
 *   - -DLIVENESS: ltl all_done, <> every task ran (pan -a -f).
 *
 * Inbox protocol (the `pending` order of wsched__inbox_push):
 *   PENDING_FIRST 0  the old code (before issue 7's fix, kept as a record):
 *                    enqueue, then fetch_add(pending).
 *                    take_from can dequeue a node whose producer has not
 *                    counted it yet, so pending under-counts the queue: a
 *                    batch whose submit has returned can sit behind
 *                    pending <= 0 while every worker sleeps, until the
 *                    preempted producer runs again.  Spin finds it with two
 *                    producers on one inbox (run_spin.sh: park.inbox.current).
 *   PENDING_FIRST 1  the code (src/inbox.h I1/I2, the default here):
 *                    fetch_add(pending) first, then enqueue, then
 *                    notify_after_sc; take_from unchanged (pending > 0 with
 *                    a NULL or WOULDBLOCK dequeue returns false, and the
 *                    parking re-scan sees pending > 0: work is coming, the
 *                    worker does not sleep).  pending >= queued nodes always.
 *
 * HOLD (with SPAWN 0): a worker that runs a producer's batch holds it
 * until every producer's batch has been taken from its inbox (the ghost
 * nstart), as a job that waits for another request's job does (test_post's
 * test_run_stealable).  A worker then asleep while the other holds and a
 * batch is queued, with nobody searching, is a deadlock: spin reports an
 * invalid end state.  NO_LOST_WAKEUP ("never every worker asleep") does not
 * see that case, since one worker is busy.  K6 is what prevents it: a
 * searcher whose park is cancelled by its re-scan counts itself a searcher
 * again, so that its stop_searching re-scans after its take and wakes a
 * worker for the rest.  MUT_NO_K6 removes that (the code before stop 23).
 *
 * STOP_RACE 0 starts the stopper only when every worker sleeps (smaller
 * state spaces for the checks about work); STOP_RACE 1 lets stop race with
 * searching and parking workers, as destroy does.
 *
 * Mutants (each must make spin report an error):
 *   MUT_NO_RESCAN        park() sleeps without work_visible (still loads stop)
 *   MUT_RESCAN_FIRST     park() re-scans before it sets its parked bit
 *   MUT_STALE_SEARCHING  a producer loads searching before it publishes (the
 *                        missing store->load fence)
 *   MUT_WAKE_ORDER       wake_claimed bumps park_word before it counts the
 *                        sleeper in searching
 *   MUT_CLAIM_NO_RMW     claim_parked clears a bit with a load and a store
 *                        instead of fetch_and
 *   MUT_NO_K6            (with HOLD) a cancelled park does not count its
 *                        searcher again
 */

#ifndef NW
#define NW 2            /* workers (2 or 3) */
#endif
#ifndef NP
#define NP 1            /* external producers (1 or 2) */
#endif
#ifndef SAME_INBOX
#define SAME_INBOX 1    /* 1: every producer pushes to worker 0's inbox */
#endif
#ifndef SPAWN
#define SPAWN 1         /* 1: producer 0's batch pushes a child task */
#endif
#ifndef PENDING_FIRST
#define PENDING_FIRST 1 /* src/inbox.h I1: counted before linked */
#endif
#ifndef SPURIOUS
#define SPURIOUS 0      /* spurious futex returns allowed per worker */
#endif
#ifndef WRAP
#define WRAP 2          /* park_word and claims modulo WRAP: they differ by
                         * at most one claim, so 2 keeps the futex compare
                         * exact; 4 also lets the checker see a double claim */
#endif
#ifndef STOP_RACE
#define STOP_RACE 0     /* 1: stop may come while workers search and park */
#endif
#ifndef MAXSEARCH
#define MAXSEARCH (2 * NW)  /* see "searching bound" above */
#endif

#define TOTAL (NP + SPAWN)
#if SAME_INBOX
#define NI 1
#define INBOX_OF(p) 0
#else
#define NI NP
#define INBOX_OF(p) (p)
#endif

#define BIT(i) (1 << (i))
#define R_NONE 0        /* task kinds; R_NONE = nothing found */
#define T_LEAF 1
#define T_SPAWN 2
#define P_WOKEN 0       /* enum park_result */
#define P_SAW_WORK 1
#define P_STOP 2

typedef inbox_t {
    byte node[NP];      /* the queue, head first: producer id + 1 */
    byte cnt;           /* nodes in the queue (tail xchg done) */
    short pending;      /* inbox.pending */
    bool token          /* inbox.token */
};

short searching;
byte parked;
byte park_word[NW];
byte claims[NW];
bool ws[NW];
bool owed[NW];          /* ghost: counted in searching by a claimer, not yet running */
bool asleep[NW];
byte nspur[NW];
byte dq[NW];
inbox_t ib[NI];
bool nlinked[NP];
bool inq[NP];           /* ghost: producer p's node is in its inbox queue */
bool inpush[NP];        /* ghost: producer p has not returned from its push */
bool stop;
byte ndone;             /* ghost: tasks run */
byte nstart;            /* ghost: batches taken from an inbox (HOLD) */
byte nexited;           /* ghost: workers returned from worker_main */

/* ------------------------------------------------------------ invariants */

/* A worker is dormant when it sleeps in futex_wait and nobody has claimed it
 * (its parked bit is still set): no wake-up is in flight towards it. */
#define DORMANT(w) (asleep[w] && (parked & BIT(w)) != 0)
#if NW == 2
#define ALL_DORMANT (DORMANT(0) && DORMANT(1))
#define ALL_ASLEEP (asleep[0] && asleep[1])
#define SUM_WS (ws[0] + ws[1] + owed[0] + owed[1])
#define DQ_ANY (dq[0] + dq[1] > 0)
#define CLAIM_OK ((claims[0] - park_word[0] + WRAP) % WRAP != 2 && \
                  (claims[1] - park_word[1] + WRAP) % WRAP != 2)
#elif NW == 3
#define ALL_DORMANT (DORMANT(0) && DORMANT(1) && DORMANT(2))
#define ALL_ASLEEP (asleep[0] && asleep[1] && asleep[2])
#define SUM_WS (ws[0] + ws[1] + ws[2] + owed[0] + owed[1] + owed[2])
#define DQ_ANY (dq[0] + dq[1] + dq[2] > 0)
#define CLAIM_OK ((claims[0] - park_word[0] + WRAP) % WRAP != 2 && \
                  (claims[1] - park_word[1] + WRAP) % WRAP != 2 && \
                  (claims[2] - park_word[2] + WRAP) % WRAP != 2)
#else
#error "NW must be 2 or 3"
#endif
#if WRAP < 4
#undef CLAIM_OK
#define CLAIM_OK true
#endif
#if NP == 1
#define HIDDEN (inq[0] && !inpush[0])
#elif NP == 2
#define HIDDEN ((inq[0] && !inpush[0]) || (inq[1] && !inpush[1]))
#else
#error "NP must be 1 or 2"
#endif

#define NO_LOST_WAKEUP (!(ALL_DORMANT && (DQ_ANY || HIDDEN)))
#ifndef SUM_CHECK
#define SUM_CHECK 1     /* also check the ghost accounting searching == SUM_WS */
#endif
#define SEARCHING_OK (searching >= 0 && searching <= MAXSEARCH && (!SUM_CHECK || searching == SUM_WS))
#define INVARIANT (NO_LOST_WAKEUP && SEARCHING_OK && CLAIM_OK)

/* ------------------------------------------------------------ structure
 *
 * Each process is a loop of guarded d_steps on a local phase `ph`; every
 * d_step makes exactly one access to shared state (one C atomic operation)
 * together with the local control flow up to the next one, so the model
 * interleaves exactly at the C atomics and has no purely local steps.  A
 * few neighbouring accesses share a step where that provably adds or
 * removes no behaviour:
 *   - wake_claimed's park_word bump with its futex_wake (the sleeper cannot
 *     fall asleep in between: its compare would fail);
 *   - claim_parked's "load the hint's bit, then fetch_and it" (a load that
 *     sees the bit clear is a fetch_and that fails);
 *   - a load of `stop` with the access just before it (stop is written
 *     once, by a step that touches nothing else);
 *   - the owner-only w->claims and w->searching, and the ghosts, with
 *     anything.
 * Subroutines (take_from, steal_once, work_visible, notify_after_sc) are
 * phase groups with a local return code (rt, rs, rv, rn).
 */

/* worker phases */
#define W_POP     1     /* find_local: deque_pop_owner */
#define W_CAP     2     /* search: the relaxed load of searching (cap) */
#define W_SINC    3     /* search: fadd(searching, 1) */
#define W_STEAL   4     /* steal_once: deque_steal of worker (me+1+c)%NW */
#define W_STOPS   5     /* stop_searching: fsub(searching, 1) */
#define W_PUSH    6     /* run_task: deque_push_owner of the child */
#define W_PSET    7     /* park: fetch_or(parked, bit) */
#define W_PDEC    8     /* park: fsub(searching, 1) */
#define W_CANCEL  9     /* park: fetch_and(parked, ~bit); load stop */
#define W_WLOAD  10     /* park: w->claims++; load park_word */
#define W_FUTEX  11     /* futex_wait: compare and sleep */
#define W_SLEEP  12     /* queued in the kernel */
#define W_RELOAD 13     /* load park_word (after EAGAIN) */
#define W_WOKEN  14     /* w->searching = true; load stop */
#define W_EXIT   15     /* end of worker_main: fsub(searching) if searching */
#define W_END    16
#define W_PSTOP  17     /* MUT_NO_RESCAN: park loads only stop */
#define W_K6     18     /* park cancelled: fadd(searching, 1) if it searched */
#define W_HOLD   19     /* HOLD: the task waits for every batch to start */
#define T_HINT   20     /* take_from: relaxed load of pending */
#define T_CAS    21     /* take_from: token CAS with the nonblocking dequeue */
#define T_REL    22     /* take_from: token release */
#define T_DEC    23     /* take_from: relaxed fetch_sub(pending) */
#define V_SCAN   30     /* work_visible: seq_cst load number c */
/* notify_after_sc / claim_parked / wake_claimed (workers and producers) */
#define N_SRCH   40     /* load searching */
#define N_HINT   41     /* fetch_and of the hint's bit */
#define N_MASK   42     /* load of the mask */
#define N_FAND   43     /* fetch_and of bit c */
#define N_WAKE1  44     /* wake_claimed: fadd(searching, 1) */
#define N_WAKE2  45     /* wake_claimed: park_word bump + futex_wake */
#define N_HST    46     /* MUT_CLAIM_NO_RMW: the store after the load */
#define N_FST    47
/* producer phases */
#define P_SAW    50     /* MUT_STALE_SEARCHING: load searching first */
#define P_INC1   51     /* PENDING_FIRST: fadd(pending, 1) */
#define P_XCHG   52     /* cds_wfcq_enqueue: tail xchg */
#define P_LINK   53     /* cds_wfcq_enqueue: link store */
#define P_INC2   54     /* !PENDING_FIRST: fadd(pending, 1) */
#define P_END    55
/* return codes */
#define RT_OWN   1      /* take_from called by find_local */
#define RT_STEAL 2      /* ... by steal_once */
#define RS_SEARCH 1     /* steal_once called by search */
#define RS_SAW   2      /* ... after PARK_SAW_WORK */
#define RV_STOPS 1      /* work_visible called by stop_searching */
#define RV_PARK  2      /* ... by park (|| stop) */
#define RV_PRE   3      /* ... MUT_RESCAN_FIRST: before setting the bit */
#define RN_STOPS 1      /* notify called by stop_searching */
#define RN_PUSH  2      /* ... after the child push */
#define RN_PROD  3      /* ... by a producer */

/* work_visible's loads in the C order: worker c's deque, then its inbox's
 * pending (only the NI inboxes that ever get work). */
#define NSCAN (NW + NI)
#define SCAN(k) ((k) < 2 * NI -> ((k) % 2 == 0 -> dq[(k) / 2] > 0 : ib[(k) / 2].pending > 0) \
                              : dq[(k) - NI] > 0)

/* ---- local control flow, used inside d_steps ---- */
#define LEAF_DONE   ran = true; task = R_NONE; pr = P_WOKEN; ph = W_POP
#ifdef HOLD
#if SPAWN
#error "HOLD needs SPAWN 0"
#endif
#define GO_RUN      ph = W_HOLD
#else
#define GO_RUN      if :: task == T_SPAWN -> ph = W_PUSH :: else -> LEAF_DONE fi
#endif
#define GO_FOUND    if :: sr -> ph = W_STOPS :: else -> GO_RUN fi
#define GO_TAKE(i, r) ti = i; rt = r; ph = T_HINT
#define GO_STEAL(r) rs = r; c = 0; \
                    if :: NW > 1 -> ph = W_STEAL :: else -> GO_TAKE(0, RT_STEAL) fi
#define GO_SEARCH   if :: sr -> GO_STEAL(RS_SEARCH) :: else -> ph = W_CAP fi
#ifdef MUT_RESCAN_FIRST
#define GO_PARK     GO_SCAN(RV_PRE, true)
#else
#define GO_PARK     ph = W_PSET
#endif
#define GO_AFTER_SEARCH \
    if :: task != R_NONE -> GO_FOUND \
       :: task == R_NONE && pr == P_SAW_WORK -> GO_STEAL(RS_SAW) \
       :: else -> GO_PARK fi
#define GO_AFTER_SAW if :: task != R_NONE -> GO_FOUND :: else -> GO_PARK fi
#define RET_STEAL \
    if :: rs == RS_SEARCH -> rs = 0; GO_AFTER_SEARCH \
       :: else -> rs = 0; GO_AFTER_SAW fi
#define RET_TAKE \
    if :: rt == RT_OWN -> rt = 0; ti = 0; \
          if :: task != R_NONE -> GO_FOUND :: else -> GO_SEARCH fi \
       :: rt == RT_STEAL && (task != R_NONE || ti == NI - 1) -> rt = 0; ti = 0; RET_STEAL \
       :: else -> GO_TAKE(ti + 1, RT_STEAL) fi
#define GO_SCAN(r, withstop) rv = r; wstop = withstop; c = 0; vis = false; ph = V_SCAN
#if defined(MUT_NO_RESCAN)
#define PARK_SCAN   ph = W_PSTOP
#elif defined(MUT_RESCAN_FIRST)
#define PARK_SCAN   if :: pvis -> pvis = false; ph = W_CANCEL :: else -> ph = W_WLOAD fi
#else
#define PARK_SCAN   GO_SCAN(RV_PARK, true)
#endif
#define RET_SCAN \
    if :: rv == RV_STOPS -> rv = 0; \
          if :: vis -> vis = false; GO_NOTIFY(-1, RN_STOPS) :: else -> GO_RUN fi \
       :: rv == RV_PARK -> rv = 0; \
          if :: vis -> vis = false; ph = W_CANCEL :: else -> ph = W_WLOAD fi \
       :: else -> rv = 0; pvis = vis; vis = false; ph = W_PSET fi; \
    wstop = false
#define GO_NOTIFY(h, r) nh = h; rn = r; ph = N_SRCH
#define W_RET_NOTIFY \
    if :: rn == RN_STOPS -> rn = 0; GO_RUN :: else -> rn = 0; LEAF_DONE fi
#define P_RET_NOTIFY rn = 0; saw = false; inpush[p] = false; ph = P_END; printf("P%d: submit returned\n", p)

/* The notify_after_sc phase group, as do-options; RET_NOTIFY is the
 * caller's continuation.  hint nh (-1 = none); m = the mask loaded, c = the
 * bit being tried, got = the worker claimed. */
#ifdef MUT_CLAIM_NO_RMW
#define FAND_HINT \
    :: d_step { ph == N_HINT -> \
        if :: (parked & BIT(nh)) != 0 -> ph = N_HST :: else -> ph = N_MASK fi } \
    :: d_step { ph == N_HST -> parked = parked & ~BIT(nh); got = nh; ph = N_WAKE1 }
#define FAND_SCAN \
    :: d_step { ph == N_FAND -> \
        if :: (parked & BIT(c)) != 0 -> ph = N_FST \
           :: else -> c++; SKIP_CLEAR; \
              if :: c >= NW -> m = 0; c = 0; RET_NOTIFY :: else fi fi } \
    :: d_step { ph == N_FST -> parked = parked & ~BIT(c); got = c; m = 0; c = 0; ph = N_WAKE1 }
#else
#define FAND_HINT \
    :: d_step { ph == N_HINT -> \
        if :: (parked & BIT(nh)) != 0 -> parked = parked & ~BIT(nh); got = nh; ph = N_WAKE1 \
           :: else -> ph = N_MASK fi }
#define FAND_SCAN \
    :: d_step { ph == N_FAND -> \
        if :: (parked & BIT(c)) != 0 -> parked = parked & ~BIT(c); got = c; m = 0; c = 0; \
              ph = N_WAKE1 \
           :: else -> c++; SKIP_CLEAR; \
              if :: c >= NW -> m = 0; c = 0; RET_NOTIFY :: else fi fi }
#endif
#define SKIP_CLEAR do :: c < NW && (m & BIT(c)) == 0 -> c++ :: else -> break od
#ifdef MUT_WAKE_ORDER
#define WAKE_A(i) park_word[i] = (park_word[i] + 1) % WRAP; asleep[i] = false
#define WAKE_B(i) searching++; owed[i] = true
#else
#define WAKE_A(i) searching++; owed[i] = true
#define WAKE_B(i) park_word[i] = (park_word[i] + 1) % WRAP; asleep[i] = false
#endif
/* trail replay output (spin -t); printf is a no-op while verifying */
#define WHO if :: isp -> printf("P%d: ", id) :: else -> printf("W%d: ", id) fi
#define NOTIFY_OPTIONS \
    :: d_step { ph == N_SRCH -> \
        if :: searching != 0 -> WHO; printf("notify: searching=%d, no wake\n", searching); RET_NOTIFY \
           :: else -> if :: nh >= 0 -> ph = N_HINT :: else -> ph = N_MASK fi fi } \
    FAND_HINT \
    :: d_step { ph == N_MASK -> m = parked; c = 0; SKIP_CLEAR; \
        if :: c >= NW -> WHO; printf("notify: no worker parked\n"); m = 0; c = 0; RET_NOTIFY \
           :: else -> ph = N_FAND fi } \
    FAND_SCAN \
    :: d_step { ph == N_WAKE1 -> WAKE_A(got); ph = N_WAKE2; \
        WHO; printf("notify: claimed W%d, searching=%d\n", got, searching) } \
    :: d_step { ph == N_WAKE2 -> WAKE_B(got); WHO; printf("notify: woke W%d\n", got); \
        got = -1; nh = 0; RET_NOTIFY }

/* wfcqueue __cds_wfcq_dequeue_nonblocking on inbox i, under the token:
 * NULL (empty), WOULDBLOCK (the head's link, or the head's `next` while the
 * tail is elsewhere, not stored yet), or the head node. */
inline dequeue(i, nd)
{
    if
    :: ib[i].cnt == 0 -> skip
    :: ib[i].cnt > 0 && !nlinked[ib[i].node[0] - 1] -> skip
#if NP == 2
    :: ib[i].cnt > 1 && nlinked[ib[i].node[0] - 1] && !nlinked[ib[i].node[1] - 1] -> skip
#endif
    :: else ->
        nd = ib[i].node[0];
        inq[nd - 1] = false;
#if NP == 2
        ib[i].node[0] = ib[i].node[1];
#endif
        ib[i].node[NP - 1] = 0;
        ib[i].cnt--
    fi
}

/* ------------------------------------------------------------ processes */

proctype worker(byte me)
{
    byte ph = W_POP;
    byte task = R_NONE;         /* struct task t (R_NONE = not found) */
    byte pr = P_WOKEN;          /* the last park()'s result */
    byte cl;                    /* w->claims */
    bool sr;                    /* w->searching (ws[me] is its ghost copy) */
    byte v, m, c, nd, ti, rt, rs, rv, rn;
    int nh, got = -1;
    bool vis, wstop, pvis, ran;
    bool psr;                   /* park: w->searching before K1 (K6) */
    bool isp = false;
    byte id = me;

#define RET_NOTIFY W_RET_NOTIFY
    do
    /* find_local: own deque, then own inbox (ndone: the ghost count of the
     * task run just before) */
    :: d_step { ph == W_POP ->
        ndone = ndone + ran; ran = false;
        if :: task != R_NONE -> printf("W%d: ran a task\n", me) :: else fi;
        if
        :: dq[me] > 0 -> dq[me]--; task = T_LEAF; GO_FOUND
        :: else -> if :: me < NI -> GO_TAKE(me, RT_OWN) :: else -> GO_SEARCH fi
        fi }
    /* take_from(&ib[ti], t) */
    :: d_step { ph == T_HINT ->
        if :: ib[ti].pending > 0 -> ph = T_CAS
           :: else -> printf("W%d: inbox %d: pending=%d, looks empty\n", me, ti, ib[ti].pending);
              RET_TAKE fi }
#ifdef STALE_HINTS
    :: atomic { ph == T_HINT -> RET_TAKE }      /* a stale hint said empty */
#endif
    :: d_step { ph == T_CAS ->
        if :: ib[ti].token == 0 -> ib[ti].token = 1; dequeue(ti, nd); ph = T_REL;
              if :: nd != 0 -> printf("W%d: inbox %d: pending=%d, dequeued P%d's batch\n", me, ti, ib[ti].pending, nd - 1)
                 :: else -> printf("W%d: inbox %d: pending=%d, dequeue found nothing\n", me, ti, ib[ti].pending) fi
           :: else -> RET_TAKE fi }             /* token busy: look elsewhere */
    :: d_step { ph == T_REL -> ib[ti].token = 0;
        if :: nd != 0 -> ph = T_DEC :: else -> RET_TAKE fi }
    :: d_step { ph == T_DEC -> ib[ti].pending--; nstart++;
        printf("W%d: inbox %d: pending-- -> %d\n", me, ti, ib[ti].pending);
        task = ((nd == 1 && SPAWN) -> T_SPAWN : T_LEAF); nd = 0; RET_TAKE }
    /* search(w, t) */
#ifdef CAP_ANY
    :: atomic { ph == W_CAP -> GO_AFTER_SEARCH }
    :: atomic { ph == W_CAP -> ph = W_SINC }
#else
    :: d_step { ph == W_CAP ->
        if :: 2 * searching >= NW && searching > 0 -> GO_AFTER_SEARCH
           :: else -> ph = W_SINC fi }
#endif
    :: d_step { ph == W_SINC -> searching++; ws[me] = true; sr = true;
        printf("W%d: becomes a searcher, searching=%d\n", me, searching);
        GO_STEAL(RS_SEARCH) }
    /* steal_once: the other deques (deque_steal and its STEAL_RETRY loop as
     * one step), then every inbox from 0 */
    :: d_step { ph == W_STEAL ->
        if
        :: dq[(me + 1 + c) % NW] > 0 -> dq[(me + 1 + c) % NW]--; task = T_LEAF
        :: else
        fi;
        c++;
        if
        :: task != R_NONE -> c = 0; RET_STEAL
        :: task == R_NONE && c == NW - 1 -> c = 0; GO_TAKE(0, RT_STEAL)
        :: else
        fi }
    /* stop_searching: fsub(&searching, 1) == 1 && work_visible -> notify */
    :: d_step { ph == W_STOPS -> ws[me] = false; sr = false; searching--;
        printf("W%d: stop_searching, searching=%d\n", me, searching);
        if :: searching == 0 -> GO_SCAN(RV_STOPS, false) :: else -> GO_RUN fi }
    /* work_visible (|| stop, for park) */
    :: d_step { ph == V_SCAN -> vis = SCAN(c); c++;
        if :: wstop && c == NSCAN && !vis -> vis = stop :: else fi;
        if :: vis || c == NSCAN -> c = 0; RET_SCAN :: else fi }
    /* run_task: the child push; if (was_empty) wsched__notify */
    :: d_step { ph == W_PUSH -> vis = (dq[me] == 0); dq[me]++;
        if :: vis -> vis = false; GO_NOTIFY(-1, RN_PUSH) :: else -> LEAF_DONE fi }
    NOTIFY_OPTIONS
    /* park(w) */
    :: d_step { ph == W_PSET -> parked = parked | BIT(me); psr = sr;
        printf("W%d: parking (bit set)\n", me);
        if :: sr -> ph = W_PDEC :: else -> PARK_SCAN fi }
    :: d_step { ph == W_PDEC -> ws[me] = false; sr = false; searching--;
        printf("W%d: leaves searching to park, searching=%d\n", me, searching); PARK_SCAN }
#ifdef MUT_NO_RESCAN
    :: d_step { ph == W_PSTOP -> vis = stop;
        if :: vis -> vis = false; ph = W_CANCEL :: else -> ph = W_WLOAD fi }
#endif
    :: d_step { ph == W_CANCEL ->
        if
        :: (parked & BIT(me)) != 0 ->           /* cancelled */
            printf("W%d: park cancelled, work visible\n", me);
            parked = parked & ~BIT(me);
            pr = (stop -> P_STOP : P_SAW_WORK);
#ifdef MUT_NO_K6
            psr = false;
#endif
            if :: psr -> ph = W_K6
               :: else -> ph = (pr == P_STOP -> W_EXIT : W_POP) fi
        :: else -> ph = W_WLOAD                 /* claimed meanwhile */
        fi }
    :: d_step { ph == W_K6 -> searching++; ws[me] = true; sr = true; psr = false;
        printf("W%d: searches again (K6), searching=%d\n", me, searching);
        ph = (pr == P_STOP -> W_EXIT : W_POP) }
    :: d_step { ph == W_HOLD && nstart == NP -> LEAF_DONE }
    :: d_step { ph == W_WLOAD -> cl = (cl + 1) % WRAP; claims[me] = cl; psr = false;
        v = park_word[me]; ph = (v == cl -> W_WOKEN : W_FUTEX) }
    :: d_step { ph == W_FUTEX ->
        if :: park_word[me] == v -> asleep[me] = true; ph = W_SLEEP;
              printf("W%d: asleep in futex_wait\n", me)
           :: else -> ph = W_RELOAD fi }        /* EAGAIN */
    :: d_step { ph == W_RELOAD -> v = park_word[me]; ph = (v == cl -> W_WOKEN : W_FUTEX) }
    :: d_step { ph == W_SLEEP && !asleep[me] ->  /* woken */
        v = park_word[me]; ph = (v == cl -> W_WOKEN : W_FUTEX) }
    :: d_step { ph == W_SLEEP && asleep[me] && nspur[me] < SPURIOUS ->
        nspur[me]++; asleep[me] = false;         /* a spurious return */
        v = park_word[me]; ph = (v == cl -> W_WOKEN : W_FUTEX) }
    :: d_step { ph == W_WOKEN ->                 /* counted by the claimer */
        printf("W%d: woken (counted as a searcher)\n", me);
        ws[me] = true; sr = true; owed[me] = false; v = 0;
        pr = (stop -> P_STOP : P_WOKEN);
        ph = (pr == P_STOP -> W_EXIT : W_POP) }
    /* worker_main's exit */
    :: d_step { ph == W_EXIT ->
        if :: sr -> ws[me] = false; sr = false; searching-- :: else fi;
        nexited++; ph = W_END }; break
    od
#undef RET_NOTIFY
}

proctype producer(byte p)
{
    byte i = INBOX_OF(p);
    byte ph, m, c, rn;
    int nh, got = -1;
    bool saw;
    bool isp = true;
    byte id = p;

#ifdef MUT_STALE_SEARCHING
    ph = P_SAW;
#elif PENDING_FIRST
    ph = P_INC1;
#else
    ph = P_XCHG;
#endif
#define RET_NOTIFY P_RET_NOTIFY
    /* A finished producer stays blocked at ph == P_END (a valid end state;
     * it is never blocked before), which costs no extra states. */
end:
    do
    :: d_step { ph == P_SAW -> saw = (searching != 0);   /* loaded too early */
        ph = (PENDING_FIRST -> P_INC1 : P_XCHG) }
    :: d_step { ph == P_INC1 -> ib[i].pending++; ph = P_XCHG;
        printf("P%d: pending++ -> %d\n", p, ib[i].pending) }
    /* cds_wfcq_enqueue: the tail xchg, then the link store */
    :: d_step { ph == P_XCHG ->
        ib[i].node[ib[i].cnt] = p + 1; ib[i].cnt++; inq[p] = true; ph = P_LINK;
        printf("P%d: enqueue into inbox %d (tail xchg)\n", p, i) }
    :: d_step { ph == P_LINK -> nlinked[p] = true;
#if PENDING_FIRST
#ifdef MUT_STALE_SEARCHING
        nh = i; rn = RN_PROD;
        if :: saw -> RET_NOTIFY :: else -> ph = N_HINT fi
#else
        GO_NOTIFY(i, RN_PROD)
#endif
#else
        ph = P_INC2
#endif
        }
    :: d_step { ph == P_INC2 -> ib[i].pending++;
        printf("P%d: pending++ -> %d\n", p, ib[i].pending);
#ifdef MUT_STALE_SEARCHING
        nh = i; rn = RN_PROD;
        if :: saw -> RET_NOTIFY :: else -> ph = N_HINT fi
#else
        GO_NOTIFY(i, RN_PROD)
#endif
        }
    NOTIFY_OPTIONS
    od
#undef RET_NOTIFY
}

/* stop_workers, after wsched_pool_destroy's drain (abstracted as "every
 * task ran", and with STOP_RACE 0 also "every worker sleeps"): store stop,
 * claim and wake every parked worker, join them all. */
active proctype stopper()
{
    byte i = 0;
    int got = -1;
    (ndone == TOTAL && (STOP_RACE || ALL_ASLEEP));
    d_step { stop = true; printf("S: stop_workers: stop = 1\n") }
    do
    :: i < NW ->
        d_step {
            got = -1;
            if :: (parked & BIT(i)) != 0 -> parked = parked & ~BIT(i); got = i :: else fi
        }
        if
        :: got == i ->
            d_step { WAKE_A(i); printf("S: claimed W%d, searching=%d\n", i, searching) }
            d_step { WAKE_B(i); printf("S: woke W%d\n", i) }
        :: else
        fi;
        i++
    :: else -> break
    od;
    (nexited == NW);
    assert(searching == 0)
}

init
{
    byte k;
    atomic {
        for (k : 0 .. NP - 1) { inpush[k] = true }
        for (k : 0 .. NW - 1) { run worker(k) }
        for (k : 0 .. NP - 1) { run producer(k) }
    }
}

/* The invariants, in every reachable state: the monitor blocks (its
 * control state never changes, so it costs no states) until one fails. */
#ifndef LIVENESS
active proctype monitor()
{
end:
    atomic { !(INVARIANT) -> assert(INVARIANT) }
}
#endif

#ifdef LIVENESS
ltl all_done { <> (ndone == TOTAL) }
#endif
