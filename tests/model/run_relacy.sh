#!/usr/bin/env bash
# Relacy model check of the real Chase-Lev deque (src/deque.h, src/deque.c),
# then a mutation check of its memory orderings.
#
#   tests/model/run_relacy.sh [BUILD_DIR]      (default: build-model/relacy)
#
# (a) builds tests/model/deque_relacy{,_impl}.cpp against src/ and runs every
#     configuration: it must pass.
# (b) for each mutant below: copies src/deque.h and src/deque.c into
#     BUILD_DIR/mutants/NAME, replaces ONE line there with sed (the original
#     line must occur exactly once, and afterwards exactly that line must
#     differ, or the script stops: it never tests nothing), builds
#     the deque unit against the copy (-I NAME first: deque_relacy_impl.cpp
#     includes "deque.h" and "deque.c", and deque.c's own "deque.h" then
#     resolves to the copy beside it) and runs the model with --mutant.
#     "caught" mutants must make the model fail.
#
# Exit status: 0 all as expected; 1 the real deque failed, a mutant that
# must be caught was not, or a mutant documented as not observable was
# caught (the explanation below is then wrong); 2 a mutation no longer
# applies (deque.h changed: update the table); 77 no <relacy/relacy.hpp>
# (ctest: skipped).
#
# Mutants (ordering labels of src/deque.h's top comment). Each is one step
# weaker than the source (seq_cst -> acquire/release/acq_rel, acquire or
# release -> relaxed):
#   P1        push: release store of bottom -> relaxed
#   P2        push: acquire load of top -> relaxed
#   T1-store  pop: seq_cst store of bottom -> release
#   T1-load   pop: seq_cst load of top -> acquire
#   S1-bottom steal: seq_cst load of bottom -> acquire
#   S2        steal: acquire load of array -> relaxed
#   G1        grow: release store of array -> relaxed
#   C1-steal  steal: seq_cst CAS on top -> acq_rel
# two for reclamation (R1), not orderings, to show that the model's leak and
# use-after-free checks are live:
#   R1-leak   deque_fini frees only the current array, not the retired ones
#   R1-free   grow frees the old array at once instead of retiring it
# and two that the model does not catch, for the reasons given:
#   S1-top    steal: seq_cst load of top -> acquire. Correct in C11: every
#             store to top after deque_init is a seq_cst CAS. If a thief's
#             acquire load of top returns the value of CAS X, X (a release)
#             happens before the thief's seq_cst load of bottom, so X
#             precedes that load in the total order S -- the step the S1
#             argument of deque.h needs ("thief load of top < thief load of
#             bottom" in S) holds without the load of top being in S. (The
#             paper's steal, too, loads top with acquire, then a seq_cst
#             fence.) Relaxed would be a real bug with two thieves (thief B
#             reads top from thief A's CAS and then an old bottom, S-before
#             the owner's pop: the relaxed load may be satisfied after the
#             seq_cst load of bottom, as on ARMv8), but Relacy cannot show
#             that either: no load of its returns a store not yet made in
#             its interleaving, nor a seq_cst load one older than the
#             latest seq_cst store to the location, so no load is ever
#             satisfied "early".
#   C1-pop    pop: seq_cst CAS on top (last element) -> acq_rel. Correct
#             in C11: what S1's argument needs from this CAS is its release
#             half. The CAS "that later advanced top past t" may be the
#             owner's own (it pops b on the fast path, then b-1 as the last
#             element); a thief that loads top from it (or from a later CAS,
#             all RMWs: its release sequence) synchronizes with it and so
#             sees the owner's decrements of bottom, not an older bottom
#             that would let it take b again. A thief that loads an older
#             top fails its CAS (top only grows; a CAS reads the latest
#             value). The acquire half is unused: P2's acquire load reads
#             the thieves' CASes through that release sequence. Relaxed
#             would be a real bug in C11 (elements 0, 1; the owner pops 1 on
#             the fast path and 0 by a relaxed CAS 0 -> 1; a thief loads
#             top = 1 from it, then bottom = 2, and takes 1 again), though
#             not on x86 or ARMv8, and not one Relacy can show, for the
#             reason given for S1-top (its loads return stores already made
#             in its interleaving; here the owner's decrements of bottom).
#             seq_cst costs nothing on x86 (lock cmpxchg) and matches the
#             paper.
#
# P2 is observable only through the model's ghost (see deque_relacy.cpp):
# Relacy never lets a load return a store made later in its interleaving,
# so the thief's slot read cannot return the owner's reuse of the slot; the
# ghost variables turn the missing happens-before edge into a data race.
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-model/relacy}
CXX=${CXX:-c++}
[ -n "$CXX" ] || CXX=c++
CXXFLAGS=${RELACY_CXXFLAGS:--O2}
read -ra extra <<<"$CXXFLAGS"
flags=(-std=c++17 "${extra[@]}" -Wall -Wextra)
# Relacy marks a destroyed rl::atomic by a store in its destructor, which
# GCC's lifetime dead-store elimination removes; without this, reads of a
# freed deque array go unnoticed (mutant R1-free).
if "$CXX" -fno-lifetime-dse -x c++ -fsyntax-only - </dev/null 2>/dev/null; then
    flags+=(-fno-lifetime-dse)
fi
inc=(-I"$root/tests/model" -I"$root/src" -I"$root/include")
jobs=${RELACY_JOBS:-2}

if ! echo '#include <relacy/relacy.hpp>' | "$CXX" -std=c++17 -fsyntax-only -x c++ - 2>/dev/null; then
    echo "run_relacy: <relacy/relacy.hpp> not found (Debian: relacy-dev): skipped"
    exit 77
fi

mkdir -p "$out"
start=$SECONDS

# name|file|expect|exact source line|its replacement
# (expect: caught = the model must fail; benign = documented above as not
# observable, the model must pass)
mutants=(
"P1|deque.h|caught|\
    st(&d->bottom, b + 1, REL); /* P1 */|\
    st(&d->bottom, b + 1, RLX); /* P1 */"
"P2|deque.h|caught|\
    int64_t top = ld(&d->top, ACQ);  /* P2 */|\
    int64_t top = ld(&d->top, RLX);  /* P2 */"
"T1-store|deque.h|caught|\
    st(&d->bottom, b, SC);          /* T1: claim b before reading top */|\
    st(&d->bottom, b, REL);          /* T1: claim b before reading top */"
"T1-load|deque.h|caught|\
    int64_t t = ld(&d->top, SC);    /* T1 */|\
    int64_t t = ld(&d->top, ACQ);    /* T1 */"
"S1-bottom|deque.h|caught|\
    int64_t b = ld(&d->bottom, SC); /* S1, and acquire for P1 (S2) */|\
    int64_t b = ld(&d->bottom, ACQ); /* S1, and acquire for P1 (S2) */"
"S2|deque.h|caught|\
    struct deque_array *a = ld(&d->array, ACQ); /* S2 / G1 */|\
    struct deque_array *a = ld(&d->array, RLX); /* S2 / G1 */"
"G1|deque.c|caught|\
    st(&d->array, a, REL); /* G1 */|\
    st(&d->array, a, RLX); /* G1 */"
"C1-steal|deque.h|caught|\
    if (!cas(&d->top, &t, t + 1, SC)) /* C1 */|\
    if (!cas(&d->top, &t, t + 1, AR)) /* C1 */"
"R1-leak|deque.c|caught|\
        a = older;|\
        a = NULL, (void)older;"
"R1-free|deque.c|caught|\
    a->retired = old;|\
    mem_free(d->mem, old, array_bytes(old->mask + 1), CACHELINE);"
"S1-top|deque.h|benign|\
    int64_t t = ld(&d->top, SC);    /* S1 */|\
    int64_t t = ld(&d->top, ACQ);    /* S1 */"
"C1-pop|deque.h|benign|\
        got = cas(&d->top, &t, t + 1, SC);|\
        got = cas(&d->top, &t, t + 1, AR);"
)

bad=0

# ======================================================================
# Completion chain (src/completion.h, B1-B4): tests/model/completion_relacy
# {,_impl}.cpp, the real header, then one mutant per memory order.
#
# (a) builds the model against src/ and runs every configuration: it must
#     pass. (b) each mutant: copies src/completion.h and src/atomics.h into
#     BUILD_DIR/completion/mutants/NAME, replaces ONE line of completion.h
#     with sed (checked as for the deque: the line occurs once, exactly it
#     changes, else exit 2), rebuilds completion_relacy_impl.cpp with -I
#     NAME first and runs the model with --mutant.
#   B2-rel    range done: fetch_sub acq_rel -> release. The last range does
#             not acquire the other ranges' slots: data race in the waiter.
#   B2-acq    fetch_sub acq_rel -> acquire. The other ranges do not release
#             their slots into the release sequence: data race.
#   B3-acq    signal: exchange acq_rel -> acquire. Nothing is published to
#             the waiter's acquire load: data race.
#   B4-load   completion_done: acquire load -> relaxed. The waiter reads
#             DONE without synchronizing: data race. (batch.c reads every
#             wait word through completion_done.)
#   B4-fail   announce: CAS failure order acquire -> relaxed. A failed CAS
#             that reads DONE returns "done" without synchronizing: race.
#   B3-wake   signal: "== BATCH_WAITED" -> "!= BATCH_WAITED" (wake only
#             when nobody announced). Not an ordering: shows that the lost
#             wake-up check is live (Relacy: deadlock, a waiter asleep on a
#             DONE word once every other thread has finished).
# and one that is a correct weakening, so the model must pass:
#   B3-rel    signal: exchange acq_rel -> release. Correct in C11: the
#             acquire half can synchronize with nothing. The exchange reads
#             the word's previous value, written by the relaxed
#             initialization (submit.c: st(..., BATCH_RUNNING, RLX)) or by a
#             waiter's announce CAS, whose success order is acquire only:
#             neither is a release, nor heads a release sequence. What the
#             signaller publishes it already holds: its own slots are
#             sequenced before the exchange, and the other ranges' come
#             from its own B2 fetch_sub (acq_rel: it acquires the whole
#             release sequence), also sequenced before. So the mutant has
#             the same executions as the source and no checker can tell
#             them apart. (Outside this model, `done` may be exchanged
#             twice -- signal_done on an early completion, then
#             batch_complete --; the second then acquires the first, which
#             nothing after it in batch_complete needs: batch_unref has its
#             own acq_rel.) batch.c's comment at word_signal ("ACQUIRE orders
#             it after the range that completed") is not needed for that:
#             program order already does it.
# source_model LABEL "FILES" MODEL OUT MUTANT...: the one driver of the
# deque, completion and admission models. (a) builds tests/model/MODEL.cpp
# and MODEL_impl.cpp against src/ and runs every configuration: it must
# pass. (b) each mutant "NAME|FILE|caught-or-benign|LINE|REPLACEMENT":
# copies the FILES of src/ and src/atomics.h into OUT/mutants/NAME,
# replaces the one line LINE of FILE (it must occur exactly once and be
# all that changes, else exit 2: every mutant is prepared before anything
# is built, so a stale table stops the script first), rebuilds
# MODEL_impl.cpp with -I that directory first, checks from the compiler's
# dependency list that the copy was read, and runs the model with
# --mutant.
source_model() {
    local label=$1 files=$2 model=$3 hout=$4
    shift 4
    local muts=("$@")
    mkdir -p "$hout"
    local m name header expect line want dir n lineno changed f
    for m in "${muts[@]}"; do
        IFS='|' read -r name header expect line want <<<"$m"
        dir="$hout/mutants/$name"
        rm -rf "$dir"
        mkdir -p "$dir"
        for f in $files atomics.h; do cp "$root/src/$f" "$dir/"; done
        n=$(grep -cFx -- "$line" "$dir/$header" || true)
        if [ "$n" != 1 ]; then
            echo "run_relacy: $label mutant $name: the line"
            echo "$line"
            echo "occurs $n times in src/$header (expected once): update the mutant table"
            exit 2
        fi
        lineno=$(grep -nFx -- "$line" "$dir/$header" | cut -d: -f1)
        sed -i "${lineno}c\\$want" "$dir/$header"
        changed=$(diff "$root/src/$header" "$dir/$header" | grep -c '^[<>]' || true)
        if [ "$changed" != 2 ] || [ "$(sed -n "${lineno}p" "$dir/$header")" != "$want" ]; then
            echo "run_relacy: $label mutant $name: sed did not replace exactly line $lineno"
            exit 2
        fi
    done

    # (a)
    local pid
    "$CXX" "${flags[@]}" "${inc[@]}" -c "$root/tests/model/$model.cpp" -o "$hout/model.o" &
    pid=$!
    "$CXX" "${flags[@]}" "${inc[@]}" -c "$root/tests/model/${model}_impl.cpp" -o "$hout/impl.o"
    wait $pid
    "$CXX" "$hout/model.o" "$hout/impl.o" -o "$hout/$model"
    echo "== real src/{${files// /,}}"
    if ! "$hout/$model" >"$hout/real.log" 2>&1; then
        grep '^RESULT' "$hout/real.log" || true
        echo "run_relacy: the REAL $label code FAILS the model: see $hout/real.log"
        bad=1
        return
    fi
    grep '^RESULT' "$hout/real.log"

    # (b)
    run_hmutant() {
        local dir="$hout/mutants/$1" header=$2
        if ! "$CXX" "${flags[@]}" -I"$dir" "${inc[@]}" -MMD -MF "$dir/impl.d" \
                -c "$root/tests/model/${model}_impl.cpp" -o "$dir/impl.o" >"$dir/build.log" 2>&1 ||
            ! "$CXX" "$hout/model.o" "$dir/impl.o" -o "$dir/$model" >>"$dir/build.log" 2>&1; then
            echo build >"$dir/status"
            return 0
        fi
        if ! tr -s ' \\\n' '\n' <"$dir/impl.d" | grep -Fx -- "$dir/$header" >/dev/null; then
            echo "the build did not read $dir/$header (see impl.d)" >>"$dir/build.log"
            echo "not-the-copy" >"$dir/status"
            return 0
        fi
        if "$dir/$model" --mutant >"$dir/log" 2>&1; then
            echo pass >"$dir/status"
        else
            echo fail >"$dir/status"
        fi
    }
    local running=0
    for m in "${muts[@]}"; do
        IFS='|' read -r name header _ <<<"$m"
        run_hmutant "$name" "$header" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
            wait -n || true
            running=$((running - 1))
        fi
    done
    wait

    echo "== $label mutants (one line of one file changed each)"
    local status what by why
    for m in "${muts[@]}"; do
        IFS='|' read -r name header expect line want <<<"$m"
        dir="$hout/mutants/$name"
        status=$(cat "$dir/status" 2>/dev/null || echo missing)
        what=$(printf '%-9s %-12s %s' "$name" "$header" "${want#"${want%%[! ]*}"}")
        by=$(grep -m1 '^RESULT.*FAIL' "$dir/log" 2>/dev/null | awk '{print $2, $3}' || true)
        why=$(grep -m1 -E '^[A-Z][A-Z /-]+ \(' "$dir/log" 2>/dev/null |
              sed 's/ (assertion: / (/' || true)
        case "$status/$expect" in
        fail/caught)
            echo "caught       $what   [$by: $why]" ;;
        pass/caught)
            echo "NOT CAUGHT   $what   (see $dir/log)"; bad=1 ;;
        pass/benign)
            echo "not caught   $what   (expected: a correct weakening, argued in this script)" ;;
        fail/benign)
            echo "CAUGHT (UNEXPECTED) $what   [$by: $why]: the comment's argument is wrong"; bad=1 ;;
        *)
            echo "ERROR        $what   ($status: see $dir/build.log)"; bad=1 ;;
        esac
    done
}

deque_start=$SECONDS
source_model deque "deque.h deque.c" deque_relacy "$out/deque" "${mutants[@]}"
echo "run_relacy: deque $((SECONDS - deque_start))s"

completion_model() {
    local cmutants=(
"B2-rel|completion.h|caught|\
    size_t old = fsub(remaining, count, AR); /* B2 */|\
    size_t old = fsub(remaining, count, REL); /* B2 */"
"B2-acq|completion.h|caught|\
    size_t old = fsub(remaining, count, AR); /* B2 */|\
    size_t old = fsub(remaining, count, ACQ); /* B2 */"
"B3-acq|completion.h|caught|\
    return xchg(word, BATCH_DONE, AR) == BATCH_WAITED; /* B3 */|\
    return xchg(word, BATCH_DONE, ACQ) == BATCH_WAITED; /* B3 */"
"B4-load|completion.h|caught|\
    return ld(word, ACQ) == BATCH_DONE; /* B4 */|\
    return ld(word, RLX) == BATCH_DONE; /* B4 */"
"B4-fail|completion.h|caught|\
    return !cas_f(word, &v, BATCH_WAITED, ACQ, ACQ) && v == BATCH_DONE; /* B4 */|\
    return !cas_f(word, &v, BATCH_WAITED, ACQ, RLX) && v == BATCH_DONE; /* B4 */"
"B3-wake|completion.h|caught|\
    return xchg(word, BATCH_DONE, AR) == BATCH_WAITED; /* B3 */|\
    return xchg(word, BATCH_DONE, AR) != BATCH_WAITED; /* B3 */"
"B3-rel|completion.h|benign|\
    return xchg(word, BATCH_DONE, AR) == BATCH_WAITED; /* B3 */|\
    return xchg(word, BATCH_DONE, REL) == BATCH_WAITED; /* B3 */"
    )
    source_model completion completion.h completion_relacy "$out/completion" "${cmutants[@]}"
}
completion_start=$SECONDS
completion_model
echo "run_relacy: completion $((SECONDS - completion_start))s, total $((SECONDS - start))s"

# ======================================================================
# Admission limit (src/admission.h, A1-A3): tests/model/admission_relacy
# {,_impl}.cpp, the real header with admission.c's waiting loop (wsched__admit_reserve)
# and release (wsched__admit_release) copied into the model, futex_wait /
# futex_wake_all as Relacy's futex (never spurious, no timeout): a lost
# wake-up leaves a waiter asleep for good, and Relacy reports DEADLOCK.
#
# (a) builds the model against src/ and runs every configuration: it must
#     pass. (b) each mutant: copies src/admission.h and src/atomics.h into
#     BUILD_DIR/admission/mutants/NAME, replaces ONE line of admission.h
#     with sed (checked as for the deque: the line occurs once, exactly it
#     changes, else exit 2), rebuilds admission_relacy_impl.cpp with -I
#     NAME first (and checks from the compiler's dependency list that it
#     read the copy), runs the model with --mutant. Every caught mutant is
#     the same lost wake-up: the releaser's A3 load of `waiters` reads 0,
#     the waiter's A1 re-check reads the unit still held, it sleeps on an
#     unchanged `word`.
#   A1        reserve: the first load of admitted seq_cst -> relaxed (issue
#             7, defect 5: the re-check after A2 may return the value from
#             before A3's release although A3's load of waiters missed A2)
#   A1-acq    the same load -> acquire (not enough either: it must be in S)
#   A2        waiter: fetch_add on waiters seq_cst -> acq_rel (not in S:
#             A3's seq_cst load may read the count from before it)
#   A2-rlx    the same -> relaxed
#   A3-rmw    release: fetch_sub on admitted seq_cst -> acq_rel (not in S:
#             the waiter's seq_cst load may read the unit still held)
#   A3-load   release: seq_cst load of waiters -> acquire
# and two correct weakenings, so the model must pass:
#   A1-cas    reserve: seq_cst CAS -> acq_rel. Correct in C11: the
#             argument needs the waiter's "does not fit" loads to see every
#             A3 release that precedes them in S. After initialization
#             every write to admitted is an RMW (A1's CAS, A3's fetch_sub),
#             so each of them lies in the release sequence of every earlier
#             release RMW: an acq_rel CAS X before an A3 fetch_sub A in
#             modification order synchronizes with A, and a seq_cst load,
#             which reads the last seq_cst write before it in S (such an A)
#             or a non-seq_cst write that does not happen before A, cannot
#             read X's value or an older one. A successful CAS is a
#             reservation, whose place in S the argument does not use; a
#             failed one (relaxed failure order) is sequenced after the
#             seq_cst first load and by read-read coherence reads no older
#             value than it.
#   A2-word   wait_begin: acquire load of word -> relaxed. Correct in C11,
#             as admission.h says (nothing rides on it but the value): the
#             value v must be older than the bump of any A3 that saw this
#             waiter. waiters is written only by RMWs (A2's seq_cst
#             fetch_add, wait_end's fetch_sub), so an A3 load that reads
#             A2's fetch_add or a later count synchronizes with that
#             fetch_add (a release); the load of word is sequenced before
#             the fetch_add, hence happens before A3's bump, and by
#             write-read coherence reads an older value: futex_wait returns
#             at once. (Relacy could not show the contrary anyway: its loads
#             never return a store later in their interleaving.)
admission_model() {
    local amutants=(
"A1|admission.h|caught|\
    int64_t cur = ld(&a->admitted, SC); /* A1: see above: not relaxed */|\
    int64_t cur = ld(&a->admitted, RLX); /* A1: see above: not relaxed */"
"A1-acq|admission.h|caught|\
    int64_t cur = ld(&a->admitted, SC); /* A1: see above: not relaxed */|\
    int64_t cur = ld(&a->admitted, ACQ); /* A1: see above: not relaxed */"
"A2|admission.h|caught|\
    fadd(&a->waiters, 1, SC); /* A2 */|\
    fadd(&a->waiters, 1, AR); /* A2 */"
"A2-rlx|admission.h|caught|\
    fadd(&a->waiters, 1, SC); /* A2 */|\
    fadd(&a->waiters, 1, RLX); /* A2 */"
"A3-rmw|admission.h|caught|\
    int64_t old = fsub(&a->admitted, (int64_t)n, SC); /* A3 */|\
    int64_t old = fsub(&a->admitted, (int64_t)n, AR); /* A3 */"
"A3-load|admission.h|caught|\
    return ld(&a->waiters, SC) != 0;    /* A3 */|\
    return ld(&a->waiters, ACQ) != 0;    /* A3 */"
"A1-cas|admission.h|benign|\
    } while (!cas_weak(&a->admitted, &cur, cur + (int64_t)n, SC)); /* A1 */|\
    } while (!cas_weak(&a->admitted, &cur, cur + (int64_t)n, AR)); /* A1 */"
"A2-word|admission.h|benign|\
    uint32_t v = ld(&a->word, ACQ);|\
    uint32_t v = ld(&a->word, RLX);"
    )
    source_model admission admission.h admission_relacy "$out/admission" "${amutants[@]}"
}
admission_start=$SECONDS
admission_model
echo "run_relacy: admission $((SECONDS - admission_start))s, total $((SECONDS - start))s"
exit $bad
