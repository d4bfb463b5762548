/*
 * T6 (src/waitq.c, src/idle.c): a timer published as its owner starts a
 * long task is watched by an idle worker, or one is woken to watch it.
 *
 * Processes:
 *  owner    holds its wheel (wheel_due: none, or marked held), then CYCLES
 *           times: releases it before a task (wsched__wheel_release: the
 *           seq_cst store of the due time D, then wsched__timers_watch's
 *           loads of the parked bits and park_until, a claim and wake when
 *           every parker is late), and, between two cycles, takes it back
 *           (wsched__wheel_take marks the time held). After its last
 *           release it runs a long task: it never fires D itself.
 *  parker   NPK of them (the pool's other idle workers). Each park
 *           (wsched__park): the estimate from wheel_due (worker.c) as
 *           park_until, K1 (set its bit), K2's re-read of wheel_due (T6),
 *           then it sleeps until its deadline (in time for D: it fires D,
 *           T2, and the check is over for it) or until claimed: then it
 *           searches and parks again, at most PARKS times.
 *  producer (-DPRODUCER) claims one parked worker once (N2), as a submit
 *           whose work the woken worker runs and then parks again.
 *
 * Time is abstract: a deadline is IN_TIME (at most D plus the grace) or
 * LATE. wheel_due's values: NONE; PUB (D, published: IN_TIME); H_SAME (D,
 * held: a future time, counts: IN_TIME); H_LATER (held, a future time
 * later than D, counts: LATE for D); H_PAST (held and past: skipped).
 * (A held time whose owner is parked is skipped too: LATE, as H_LATER; the
 * owner here is awake between its tasks.)
 * Spin's interleavings are sequentially consistent: every operation here is
 * seq_cst in the code (the store of D, the parked RMWs and loads, the
 * re-read), or published by one (park_until, by K1's release).
 *
 * Property (an assertion in the monitor, at the end of every run): once the
 * owner is in its task, some parker sleeps IN_TIME, or is awake (claimed,
 * about to search and park again with D in view), or every parker has used
 * its PARKS parks (the bound of the model, not a failure).
 *
 * Mutants: -DMUT_NO_REREAD (the code before T6: the estimate only),
 * -DMUT_REREAD_FIRST (the re-read before K1), -DMUT_NO_WATCH (the publisher
 * checks nothing).
 */
#ifndef NPK
#define NPK 2
#endif
#ifndef CYCLES
#define CYCLES 2
#endif
#ifndef PARKS
#define PARKS 2
#endif

#define NONE 0
#define PUB 1
#define H_SAME 2
#define H_LATER 3
#define H_PAST 4

#define IN_TIME 1
#define LATE 2

byte wheel_due = NONE;
bit parked[NPK];
byte park_until[NPK];
byte state[NPK];        /* 0 running, 1 asleep (deadline below), 2 done: IN_TIME, 3 claimed, 4 bound reached */
byte deadline[NPK];
bit owner_busy = 0;
byte wakes = 0;

/* What a parker's deadline becomes for a wheel_due value (T6's rule in
 * wsched__timers_due_elsewhere). */
inline classify(v, out) {
    if
    :: v == PUB || v == H_SAME -> out = IN_TIME
    :: else -> out = LATE
    fi
}

inline watch() {
    /* wsched__timers_watch: any parked worker in time? else claim one */
    byte k = 0;
    byte late = 255;
    bit ok = 0;
    do
    :: k < NPK ->
        if
        :: parked[k] ->
            if
            :: park_until[k] == IN_TIME -> ok = 1
            :: else -> late = k
            fi
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    if
    :: !ok && late != 255 ->
        atomic {
            if
            :: parked[late] -> parked[late] = 0; state[late] = 3; wakes++
            :: else -> skip /* lost: it is awake already */
            fi
        }
    :: else -> skip
    fi
}

active proctype owner()
{
    byte c = 0;
    if
    :: wheel_due = NONE
    :: wheel_due = H_SAME
    :: wheel_due = H_LATER
    :: wheel_due = H_PAST
    fi;
    do
    :: c < CYCLES ->
        wheel_due = PUB; /* T1/T6: the seq_cst store */
#ifndef MUT_NO_WATCH
        watch();
#endif
        c++;
        if
        :: c < CYCLES -> wheel_due = H_SAME /* the take between two tasks */
        :: else -> skip
        fi
    :: else -> break
    od;
    owner_busy = 1
}

proctype parker(byte me)
{
    byte n = 0;
    byte est, re;
    do
    :: n < PARKS ->
        n++;
        classify(wheel_due, est); /* the estimate, relaxed: worker.c */
        park_until[me] = est;
#ifdef MUT_REREAD_FIRST
        classify(wheel_due, re);
        parked[me] = 1;
#else
        parked[me] = 1; /* K1 */
#ifndef MUT_NO_REREAD
        classify(wheel_due, re); /* T6's re-read */
#else
        re = LATE;
#endif
#endif
        atomic {
            deadline[me] = (est == IN_TIME || re == IN_TIME -> IN_TIME : LATE);
            if
            :: state[me] == 3 -> skip /* claimed before it slept */
            :: else -> state[me] = 1
            fi
        }
        if
        :: deadline[me] == IN_TIME ->
            /* it wakes in time (K4), takes its bit back or accepts a claim,
             * and fires D (T2): done */
            atomic { parked[me] = 0; state[me] = 2 };
            break
        :: else
        fi;
        /* Asleep with a late deadline (a valid end: the monitor judges) */
end_sleep:
        (state[me] == 3); /* claimed: woken (K3), searches, parks again */
        state[me] = 0
    :: else ->
        state[me] = 4;
        break
    od
}

#ifdef PRODUCER
active proctype producer()
{
    byte k = 0;
    do
    :: k < NPK ->
        atomic {
            if
            :: parked[k] -> parked[k] = 0; state[k] = 3
            :: else -> skip
            fi
        };
        k++
    :: k < NPK -> k++
    :: else -> break
    od
}
#endif

init {
    byte i = 0;
    atomic {
        do
        :: i < NPK -> run parker(i); i++
        :: else -> break
        od
    }
}

/* At the end (every process blocked or done): with the owner busy, a
 * parker that fires D, or one awake, or the model's park bound. */
active proctype monitor()
{
    byte k;
    bit good;
    timeout ->
    good = 0;
    k = 0;
    do
    :: k < NPK ->
        if
        :: state[k] == 2 || state[k] == 3 || state[k] == 0 || state[k] == 4 -> good = 1
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    assert(!owner_busy || good)
}
