#!/usr/bin/env bash
# Model checks of wsched's concurrency protocols with spin (tests/model):
#   park.pml     idle/wake-up: searching count, parked mask, park_word futex,
#                producers (inbox push, deque push), stop_workers
#   destroy.pml  submit vs destroy: inflight, state, drain_word futex
#   waitq.pml    wait completion (src/waitq.c C1-C4, J2', R1-R3, T1-T5): one
#                job's armings, a waker (late wakes too), timers (owner, T5,
#                a thief's T2), a canceller (C3), destroy's sweep, the ready
#                queue and resumptions on two workers
#   timerwatch.pml  T6: a busy owner's published timer is watched by a
#                parker, or the publisher wakes one (src/waitq.c, idle.c)
#
# Every check is one spin run: the model with some -D macros, pan compiled
# for safety (assertions, the monitor's invariant, invalid end states) or
# for liveness (-a -f with the model's ltl formula).  Expected outcomes:
#   pass     spin must find no error, with the search complete;
#   mutant   a deliberately broken protocol: spin must report an error;
#   known    a property the model shows is violated by the protocol as the
#            code has it now (see the check's note); the check fails if the
#            violation disappears, so that the list gets updated.
# One line per check: verdict, name, outcome, states stored, seconds.
#
# Environment: SPIN (spin), CC (cc), MODEL_SKIP (a reason: skip, exit 77),
# MODEL_JOBS (parallel checks, default:
# CPUs, at most 4), MODEL_FULL=1 (also the long checks, several minutes),
# MODEL_WORKDIR (keep the run's files there; default: a temporary
# directory, removed at the end unless a check failed or was "known").
# Arguments: names (or shell patterns) of the checks to run; none = all.
# Exit status: 0 all as expected, 1 otherwise, 77 spin or cc missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
SPIN=${SPIN:-spin}
CC=${CC:-cc}
FULL=${MODEL_FULL:-0}
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
JOBS=${MODEL_JOBS:-$((ncpu < 4 ? ncpu : 4))}

if [ -n "${MODEL_SKIP:-}" ]; then
    echo "run_spin.sh: model checks skipped: $MODEL_SKIP"
    exit 77
fi
if ! command -v "$SPIN" >/dev/null 2>&1; then
    echo "run_spin.sh: '$SPIN' not found: model checks skipped"
    exit 77
fi
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "run_spin.sh: C compiler '$CC' not found: model checks skipped"
    exit 77
fi

if [ -n "${MODEL_WORKDIR:-}" ]; then
    work=$MODEL_WORKDIR
    mkdir -p "$work"
    keep=1
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/wsched-spin.XXXXXX")
    keep=0
fi

# name | model | expect | mode | macros | note
checks=(
# ---- park.pml: the protocol as the code has it (PENDING_FIRST 1, the
# model's default: src/inbox.h I1); park.inbox.old is the protocol before
# issue 7's fix, which must fail. ----
"park.safety.2w1p        |park|pass  |safety|-DNW=2 -DNP=1|2 workers, 1 submitter, a child pushed on a deque"
"park.safety.2w1p.stop   |park|pass  |safety|-DNW=2 -DNP=1 -DSTOP_RACE=1|stop_workers races with searching/parking"
"park.safety.2w1p.relaxed|park|pass  |safety|-DNW=2 -DNP=1 -DSTALE_HINTS -DCAP_ANY -DSPURIOUS=1 -DWRAP=4|stale relaxed loads, spurious futex returns, double-claim check"
"park.safety.2w2p.split  |park|pass  |safety|-DNW=2 -DNP=2 -DSPAWN=0 -DSAME_INBOX=0|2 submitters on different inboxes"
"park.safety.3w1p        |park|pass  |safety|-DNW=3 -DNP=1 -DSPAWN=0|3 workers"
"park.live.2w1p          |park|pass  |live  |-DNW=2 -DNP=1|every task eventually runs (weak fairness)"
"park.inbox.old          |park|known |safety|-DNW=2 -DNP=2 -DSPAWN=0 -DPENDING_FIRST=0|old protocol, 2 submitters on one inbox: a returned submit's batch hidden while all sleep"
"park.bound.strict       |park|known |safety|-DNW=2 -DNP=1 -DMAXSEARCH=2|searching exceeds the number of workers for a moment"
"park.inbox             |park|pass  |safety|-DNW=2 -DNP=2 -DSPAWN=0|2 submitters on one inbox"
"park.hold.split        |park|pass  |safety|-DNW=2 -DNP=2 -DSPAWN=0 -DSAME_INBOX=0 -DHOLD|each batch waits until both started (K6): no worker may sleep while the other waits"
"park.hold.inbox        |park|pass  |safety|-DNW=2 -DNP=2 -DSPAWN=0 -DHOLD|the same, both submitters on one inbox"
"park.live.2w1p.old      |park|pass  |live  |-DNW=2 -DNP=1 -DPENDING_FIRST=0|old protocol"
# ---- park.pml mutants (the ghost accounting check off: caught by the real properties) ----
"park.mut.no_rescan      |park|mutant|safety|-DNW=2 -DNP=1 -DSUM_CHECK=0 -DMUT_NO_RESCAN|"
"park.mut.rescan_first   |park|mutant|safety|-DNW=2 -DNP=1 -DSUM_CHECK=0 -DMUT_RESCAN_FIRST|"
"park.mut.stale_searching|park|mutant|safety|-DNW=2 -DNP=1 -DSUM_CHECK=0 -DMUT_STALE_SEARCHING|"
"park.mut.wake_order     |park|mutant|safety|-DNW=2 -DNP=1 -DSUM_CHECK=0 -DMUT_WAKE_ORDER|"
"park.mut.claim_no_rmw   |park|mutant|safety|-DNW=2 -DNP=1 -DSUM_CHECK=0 -DMUT_CLAIM_NO_RMW|"
"park.mut.no_k6          |park|mutant|safety|-DNW=2 -DNP=2 -DSPAWN=0 -DSAME_INBOX=0 -DHOLD -DMUT_NO_K6|the code before stop 23: a cancelled park leaves no searcher"
# ---- destroy.pml ----
"destroy.1s1d            |destroy|pass  |safety|-DNS=1 -DND=1|"
"destroy.2s1d            |destroy|pass  |safety|-DNS=2 -DND=1|"
"destroy.2s1d.nested     |destroy|pass  |safety|-DNS=2 -DND=1 -DNESTED=1|a job submits a batch from inside"
"destroy.2s2d            |destroy|pass  |safety|-DNS=2 -DND=2|two concurrent destroys"
"destroy.2s2d.nested     |destroy|pass  |safety|-DNS=2 -DND=2 -DNESTED=1|"
"destroy.mut.load_first  |destroy|mutant|safety|-DNS=2 -DMUT_DESTROY_LOAD_FIRST|"
"destroy.mut.submit_load |destroy|mutant|safety|-DNS=2 -DMUT_SUBMIT_LOAD_FIRST|"
"destroy.mut.one_unit    |destroy|mutant|safety|-DNS=2 -DMUT_ONE_UNIT|"
"destroy.mut.wait_late   |destroy|mutant|safety|-DNS=2 -DMUT_WAIT_LOAD_LATE|"
"destroy.mut.leave       |destroy|mutant|safety|-DNS=2 -DMUT_LEAVE_STATE_FIRST|"
# ---- waitq.pml: one job, 2 armings (the same cell recycled, or -DOTHER_CELL),
# 2 workers; resumptions run by the worker that scheduled them unless
# -DSTEAL; a thief's T2 fire posts to the owner (-DFOREIGN=1) or also pushes
# onto its own deque (2, as the code does).  The known checks are a defect
# of waitq.c as it is. ----
"waitq.wake              |waitq|pass  |safety|-DWAKES=2|2 wakes and a late one; timers or not"
"waitq.cancel            |waitq|pass  |safety|-DCANCEL=1 -DWAKE_OPT=1 -DT2=2|C3 vs J2', wakes optional"
"waitq.cancel.only       |waitq|pass  |safety|-DCANCEL=1 -DWAKE_OPT=1 -DT1=0 -DT2=0|no timers, no wake needed: the cancel alone completes the job"
"waitq.sweep.other       |waitq|pass  |safety|-DSWEEP=1 -DWAKE_OPT=1 -DT2=2 -DOTHER_CELL=1|destroy's sweep; the second arming in another cell"
"waitq.injob             |waitq|pass  |safety|-DINJOB=1 -DCANCEL=1 -DWAKES=2 -DT2=2|an in-job wait before the return (T5, T1 at an inner job's end)"
"waitq.foreign           |waitq|pass  |safety|-DFOREIGN=1 -DINJOB=1 -DCANCEL=1 -DT2=2|a thief's T2 fire, posted to the owner"
"waitq.all               |waitq|pass  |safety|-DCANCEL=1 -DSWEEP=1 -DWAKE_OPT=1 -DT2=2 -DINJOB=1 -DFOREIGN=1|every completer at once"
"waitq.steal             |waitq|pass  |safety|-DSTEAL=1 -DINJOB=1 -DCANCEL=1 -DWAKES=2 -DT2=2|resumptions stolen"
"waitq.foreign2          |waitq|pass  |safety|-DFOREIGN=2 -DCANCEL=1 -DSWEEP=1 -DWAKES=2 -DT2=2|T2 pushes onto the thief's deque (no in-job wait: the token is freed only after J2')"
"waitq.j2_tail           |waitq|pass  |safety|-DFOREIGN=2 -DINJOB=1|a thief's T2, the token freed at an inner job's end, takes the last unit right after J2''s RMW (J2' touches nothing after it)"
"waitq.j2_tail.cancel    |waitq|pass  |safety|-DFOREIGN=2 -DINJOB=1 -DCANCEL=1|the same, cancelled"
# ---- timerwatch.pml: T6, a timer published as its owner starts a long
# task is watched by an idle worker (src/waitq.c T6, src/idle.c) ----
"timerwatch.2p           |timerwatch|pass  |safety|-DNPK=2 -DCYCLES=2 -DPARKS=3|2 parkers, 2 releases with a take between"
"timerwatch.2p.producer  |timerwatch|pass  |safety|-DNPK=2 -DCYCLES=2 -DPARKS=3 -DPRODUCER|a producer's claims race the publisher's"
"timerwatch.3p           |timerwatch|pass  |safety|-DNPK=3 -DCYCLES=1 -DPARKS=2|3 parkers"
"timerwatch.mut.no_reread|timerwatch|mutant|safety|-DNPK=2 -DMUT_NO_REREAD|the code before T6: a parker's estimate only"
"timerwatch.mut.reread_first|timerwatch|mutant|safety|-DNPK=2 -DMUT_REREAD_FIRST|the re-read before K1"
"timerwatch.mut.no_watch |timerwatch|mutant|safety|-DNPK=2 -DMUT_NO_WATCH|the publisher checks no parker"
# ---- waitq.pml mutants ----
"waitq.mut.no_j2_cancel  |waitq|mutant|safety|-DCANCEL=1 -DWAKE_OPT=1 -DT1=0 -DT2=0 -DMUT_NO_J2_CANCEL_CHECK|"
"waitq.mut.c3_load_first |waitq|mutant|safety|-DCANCEL=1 -DWAKE_OPT=1 -DT1=0 -DT2=0 -DMUT_C3_LOAD_FIRST|"
"waitq.mut.j2_rmw_first  |waitq|mutant|safety|-DFOREIGN=2 -DINJOB=1 -DMUT_J2_RMW_FIRST|J2' before the fix: the RMW, then the cancel word (use after free)"
"waitq.mut.j2_rmw_first.c|waitq|mutant|safety|-DFOREIGN=2 -DINJOB=1 -DCANCEL=1 -DJ2_FREE_CHECK=0 -DMUT_J2_RMW_FIRST|the same, cancelled: the next arming claimed by the wrong worker"
"waitq.mut.no_gen        |waitq|mutant|safety|-DWAKES=1 -DMUT_NO_GEN|"
"waitq.mut.local_no_join |waitq|mutant|safety|-DINJOB=1 -DWAKES=1 -DMUT_LOCAL_NO_JOIN|"
"waitq.mut.range_done_0  |waitq|mutant|safety|-DSTEAL=1 -DWAKES=1 -DMUT_RANGE_DONE_0|run_range before f14a58d: the double completion"
)
if [ "$FULL" = 1 ]; then
    checks+=(
"park.safety.3w1p.spawn  |park|pass  |safety|-DNW=3 -DNP=1|"
"park.inbox.spawn        |park|pass  |safety|-DNW=2 -DNP=2|"
"park.live.2w2p.old      |park|pass  |live  |-DNW=2 -DNP=2 -DSPAWN=0 -DPENDING_FIRST=0|old protocol: the hidden batch is served once the preempted submitter runs"
"park.live.2w2p          |park|pass  |live  |-DNW=2 -DNP=2 -DSPAWN=0|"
"waitq.full              |waitq|pass  |safety|-DCANCEL=1 -DSWEEP=1 -DINJOB=1 -DFOREIGN=1 -DSTEAL=1 -DT2=2|every completer, stolen resumptions (3e7 states, 1.4 GB)"
    )
fi

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

# run_check INDEX: writes $work/NAME/result (one line) and returns.
run_check() {
    local IFS='|'
    # shellcheck disable=SC2206
    local f=(${checks[$1]})
    local name model expect mode defs note
    name=$(trim "${f[0]}"); model=$(trim "${f[1]}"); expect=$(trim "${f[2]}")
    mode=$(trim "${f[3]}"); defs=$(trim "${f[4]}"); note=$(trim "${f[5]:-}")
    unset IFS
    local d="$work/$name"
    rm -rf "$d" && mkdir -p "$d" && cp "$here/$model.pml" "$d/"
    local t0 t1 ccflags panflags
    t0=$(date +%s.%N)
    if [ "$mode" = live ]; then
        defs="$defs -DLIVENESS"
        ccflags="-DNFAIR=3"
        panflags="-a -f"
    else
        ccflags="-DSAFETY"
        panflags=""
    fi
    (
        cd "$d" || exit 2
        # shellcheck disable=SC2086
        "$SPIN" $defs -a "$model.pml" >spin.log 2>&1 || exit 2
        # shellcheck disable=SC2086
        "$CC" -w -O1 -DNOBOUNDCHECK -DCOLLAPSE $ccflags -o pan pan.c >cc.log 2>&1 || exit 3
        # shellcheck disable=SC2086
        ./pan -m1000000 $panflags >pan.log 2>&1
        exit 0
    )
    local rc=$?
    t1=$(date +%s.%N)
    local secs states errors incomplete=0 outcome verdict
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -ne 0 ]; then
        local what=spin; [ $rc -eq 3 ] && what=cc
        printf 'FAIL  %-26s %s failed (see %s/%s.log)\n' "$name" "$what" "$d" "$what" >"$d/result"
        return
    fi
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$d/pan.log" | tail -1)
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$d/pan.log" | tail -1)
    grep -q 'max search depth too small' "$d/pan.log" && incomplete=1
    grep -q 'out of memory' "$d/pan.log" && incomplete=1
    [ -z "$errors" ] && errors=-1
    if [ "$errors" -gt 0 ]; then
        local kind
        kind=$(grep -m1 -oE 'assertion violated|invalid end state|acceptance cycle|claim violated' "$d/pan.log")
        outcome="error: ${kind:-?}"
        # the trail, as the model's printf narration (spin -t)
        # shellcheck disable=SC2086
        (cd "$d" && "$SPIN" -t $defs "$model.pml" 2>&1 | sed -nE 's/^ *([A-Z][0-9]*:) +/\1 /p' >trail.txt)
    elif [ "$errors" -eq 0 ]; then
        outcome="no errors"
    else
        outcome="pan failed"
    fi
    case "$expect:$errors:$incomplete" in
        pass:0:0) verdict=ok ;;
        pass:*) verdict=FAIL ;;
        mutant:-1:*|mutant:0:*) verdict=FAIL outcome="$outcome: mutant NOT caught" ;;
        mutant:*) verdict=ok outcome="caught, $outcome" ;;
        known:-1:*|known:0:*) verdict=FAIL outcome="$outcome: the known violation is gone, update the checks" ;;
        known:*) verdict=ok outcome="known, $outcome (trail below)" ;;
    esac
    [ "$incomplete" = 1 ] && outcome="$outcome, search incomplete"
    printf '%-4s  %-26s %-8s %10s states %6ss  %s%s\n' "$verdict" "$name" "$expect" \
        "${states:-?}" "$secs" "$outcome" "${note:+  -- $note}" >"$d/result"
}

selected=()
for i in "${!checks[@]}"; do
    n=$(trim "${checks[$i]%%|*}")
    if [ $# -eq 0 ]; then
        selected+=("$i")
    else
        for pat in "$@"; do
            # shellcheck disable=SC2053
            if [[ $n == $pat ]]; then selected+=("$i"); break; fi
        done
    fi
done
if [ ${#selected[@]} -eq 0 ]; then
    echo "run_spin.sh: no check matches: $*" >&2
    exit 1
fi

echo "spin model checks: $(${SPIN} -V 2>&1 | head -1); ${#selected[@]} checks, $JOBS at a time; files in $work"
start=$(date +%s)
running=0
for i in "${selected[@]}"; do
    while [ "$running" -ge "$JOBS" ]; do
        wait -n
        running=$((running - 1))
    done
    run_check "$i" &
    running=$((running + 1))
done
wait

failed=0
known=0
for i in "${selected[@]}"; do
    n=$(trim "${checks[$i]%%|*}")
    if [ -f "$work/$n/result" ]; then
        cat "$work/$n/result"
        grep -q '^FAIL' "$work/$n/result" && failed=$((failed + 1))
        grep -q 'known, ' "$work/$n/result" && known=$((known + 1))
    else
        echo "FAIL  $n (no result)"
        failed=$((failed + 1))
    fi
done
for i in "${selected[@]}"; do
    n=$(trim "${checks[$i]%%|*}")
    if [ -s "$work/$n/trail.txt" ] && grep -q 'known, ' "$work/$n/result"; then
        echo "--- $n: the violating interleaving (spin -t)"
        sed 's/^/    /' "$work/$n/trail.txt"
    fi
done
echo "${#selected[@]} checks, $failed failed, $(( $(date +%s) - start ))s"
if [ "$keep" = 0 ]; then
    if [ "$failed" -eq 0 ]; then
        rm -rf "$work"
    else
        echo "files kept in $work"
    fi
fi
[ "$failed" -eq 0 ]
