#!/usr/bin/env python3
"""Write the seed corpus of fuzz_downstream (tests/fuzz/corpus-fuzz_downstream/)
in the input format described at the top of fuzz_downstream.c. Deterministic:
rerun after a format change and commit the files with it."""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-fuzz_downstream")

# Table indices (fuzz_downstream.c, decode_config).
ATT = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 255: 5, 256: 6, 8: 7}
CODE = {0: 0, "EIO": 1, "ETIMEDOUT": 2, "ENOENT": 3}
BASE = {0: 0, 1: 1, "1us": 2, "20us": 3, "100us": 4, "2^40": 5, "1h+1": 6, 50: 7}
CAP = {0: 0, 500: 1, 1000: 2, "200us": 3, "2ms": 4, "2^40": 5, "24h+1": 6, "50us": 7}
OPEN = {0: 0, "500us": 1, "1ms": 2, "2ms": 3, "3ms": 4, "1h": 5, "1h+1": 6}
RATE = {0: 0, 100: 2, 1000: 3, 100000: 4, 10**9: 5, 10**9 + 1: 6, 10: 7}
BURST = {0: 0, 1: 1, 2: 2, 5: 3, 100: 4, 3: 7}
CC_INIT = {0: 0, 1: 2, 2: 3, 4: 4, 16: 5}
CC_MAX = {0: 0, 1: 1, 2: 2, 4: 3, 16: 4}
HDELAY = {0: 0, "10us": 2, "50us": 3, "200us": 4, "1ms": 5}
PCT = {0: 0, 1: 3, 50: 4, 99: 5, 100: 6, 90: 7}
ATO = {0: 0, "50us": 3, "150us": 4, "1ms": 5}
RING = {0: 0, 2: 1, 3: 2, 4: 3, 1024: 4}

# By-hand operations.
OP_ACQUIRE, OP_RELEASE, OP_LIMIT, OP_DECIDE, OP_DECIDE_BAD, OP_BUDGET, OP_DRAIN, \
    OP_STATE, OP_STATS, OP_CLOCK, OP_BAD, OP_BACKOFF = range(12)

# Job behaviours per attempt (2 bits each).
OK, EIO, ENOENT, WAIT = range(4)
BEST, FAIL_FAST, QUORUM = range(3)


def config(att=0, jitter=0, seed=1, codes=(0, 0, 0), name=2, base=0, cap=0, tokens=0,
           ratio=0, fake=False, hook=False, rate_pct=0, fcount=0, min_calls=0, wcalls=0,
           wns=0, trials=0, open_=0, ramp=0, trials256=False, flights=False, ignore=(0, 0),
           amode=0, rate=0, burst=0, mode=0, cc_init=0, cc_min=0, cc_max=0, lat=0, hdelay=0,
           pct=0, ato=0, ring=0, reserved=0, fail_at=0, fail_rest=False):
    return bytes([
        ATT[att] | jitter << 3 | seed << 6,
        CODE[codes[0]] | CODE[codes[1]] << 2 | CODE[codes[2]] << 4 | name << 6,
        BASE[base] | CAP[cap] << 3,
        tokens | ratio << 3 | fake << 6 | hook << 7,
        rate_pct | fcount << 3 | min_calls << 6,
        wcalls | wns << 3 | trials << 6,
        OPEN[open_] | ramp << 3 | trials256 << 6 | flights << 7,
        ignore[0] | ignore[1] << 2 | amode << 6,
        RATE[rate] | BURST[burst] << 3 | mode << 6,
        CC_INIT[cc_init] | cc_min << 3 | CC_MAX[cc_max] << 5,
        lat | HDELAY[hdelay] << 2 | PCT[pct] << 5,
        ATO[ato] | RING[ring] << 3,
        reserved | fail_at << 4,
        int(fail_rest),
    ])


def ops(*pairs):
    out = bytes([len(pairs)])
    for op, a, p in pairs:
        out += bytes([op | a << 4, p])
    return out


def beh(*kinds):
    """Attempts 1-4 of the primary (a hedge of round k uses attempt k+2's)."""
    v = 0
    for k, x in enumerate(kinds):
        v |= x << (2 * k)
    return v


def batch(jobs, policy=BEST, deadline=None, cancel=False, quorum=1, advance=0,
          free_early=False):
    """jobs: list of (behaviour byte, wait length 0-7, wait code 0-3, key 0-3, tick)."""
    n = len(jobs)
    assert 1 <= n <= 16
    dl = 0 if deadline is None else deadline
    out = bytes([(n - 1) | policy << 4 | (deadline is not None) << 6 | cancel << 7,
                 (quorum - 1) | dl << 4, advance | free_early << 3])
    for b, wdur, wcode, key, tick in jobs:
        out += bytes([b, wdur | wcode << 3 | key << 5 | tick << 7])
    return out


def batches(*bs, overlap=False):
    return bytes([(len(bs) - 1) | overlap << 2]) + b"".join(bs)


WAIT_US = [20, 40, 60, 100, 150, 200, 250, 300]


def job(b, us=100, wcode=0, key=0, tick=False):
    """One job: behaviour byte b; a wait in attempt 1 of the primary lasts
    `us` (attempt k waits WAIT_US[(bits + k) % 8], a hedge one step more),
    then answers CODES[wcode] (0, -EIO, -ENOENT, 0); its flight key."""
    return (b, (WAIT_US.index(us) - 1) % 8, wcode, key, tick)


def jobs(n, b, us=100, wcode=0, key=0, tick=False):
    return [job(b, us, wcode, key, tick)] * n


SEEDS = {}

SEEDS["basic"] = config() + ops() + batches(batch(jobs(8, beh(OK))))

SEEDS["waits"] = config() + ops() + batches(
    batch(jobs(8, beh(WAIT), us=200)),
    batch([job(beh(WAIT), WAIT_US[k % 8], k % 3) for k in range(16)]))

SEEDS["retries"] = config(att=3, base="1us", cap="200us", codes=("EIO", "ETIMEDOUT", 0)) + \
    ops() + batches(batch(jobs(8, beh(EIO, WAIT, OK), wcode=1)),
                    batch(jobs(4, beh(EIO, EIO, EIO))),
                    batch(jobs(4, beh(ENOENT))))

SEEDS["retry_jitter"] = config(att=255, jitter=2, base="1us", cap="50us") + ops() + batches(
    batch(jobs(6, beh(EIO, EIO, EIO, EIO))))

SEEDS["budget"] = config(att=3, base="1us", tokens=3, ratio=1) + ops(
    (OP_BUDGET, 0, 0)) + batches(batch(jobs(4, beh(EIO, EIO, EIO))),
                                 batch(jobs(4, beh(EIO, OK))))

SEEDS["breaker"] = config(fake=True, fcount=4, wcalls=4, open_="2ms", trials=1) + ops(
    (OP_STATE, 0, 0)) + batches(batch(jobs(5, beh(EIO))),
                                batch(jobs(3, beh(OK))),
                                batch(jobs(2, beh(OK)), advance=4))

SEEDS["breaker_rate_ramp"] = config(fake=True, rate_pct=4, min_calls=2, wns=2, open_="1ms",
                                    ramp=2, trials=2, ignore=(1, 0)) + ops() + batches(
    batch(jobs(10, beh(EIO))),
    batch(jobs(6, beh(OK)), advance=2),
    batch(jobs(6, beh(ENOENT)), advance=5))

SEEDS["limit_reject"] = config(fake=True, rate=100, burst=5) + ops(
    (OP_LIMIT, 1, 0), (OP_CLOCK, 0, 4)) + batches(batch(jobs(16, beh(OK))),
                                                 batch(jobs(8, beh(OK)), advance=5))

SEEDS["limit_delay"] = config(rate=100000, burst=1, mode=1) + ops(
    (OP_LIMIT, 2, 3)) + batches(batch(jobs(10, beh(OK))),
                                batch(jobs(10, beh(OK)), deadline=2))

SEEDS["concurrency"] = config(cc_init=4, cc_min=1, cc_max=16, lat=1) + ops() + batches(
    batch(jobs(16, beh(WAIT), us=300)),
    batch(jobs(8, beh(EIO))))

SEEDS["hedge"] = config(hdelay="50us") + ops() + batches(
    batch(jobs(8, beh(WAIT, 0, OK), us=300)),
    batch(jobs(8, beh(WAIT, 0, EIO), us=300)),
    batch(jobs(4, beh(WAIT, 0, WAIT), us=250, wcode=1)))

SEEDS["hedge_adaptive_retry"] = config(hdelay="200us", pct=90, att=2, base="1us",
                                       tokens=4, ratio=3) + ops() + batches(
    batch(jobs(16, beh(WAIT, OK, WAIT, EIO), us=300, wcode=1)),
    batch(jobs(16, beh(WAIT, WAIT, OK, OK), us=150)))

SEEDS["attempt_timeout"] = config(ato="50us", att=2, base="1us",
                                  codes=("ETIMEDOUT", 0, 0)) + ops() + batches(
    batch(jobs(8, beh(WAIT, OK), us=300)),
    batch(jobs(4, beh(WAIT, WAIT), us=250)))

SEEDS["flights"] = config(flights=True) + ops() + batches(
    batch([job(beh(WAIT), 300, 0, 1)] * 8 + [job(beh(WAIT), 250, 1, 2)] * 4
          + [job(beh(OK))] * 2),
    batch([job(beh(WAIT), 300, 0, 1)] * 8, cancel=True))

SEEDS["flights_quorum"] = config(flights=True, att=2, base="1us") + ops() + batches(
    batch([job(beh(WAIT, OK), 300, 1, 1 + k % 3) for k in range(12)], policy=QUORUM,
          quorum=3),
    batch([job(beh(WAIT), 300, 0, 1)] * 6, deadline=0))

SEEDS["dead_letters_hook"] = config(hook=True, att=2, base="1us", fake=True, fcount=3,
                                    wcalls=2, open_="2ms", rate=100, burst=3) + ops() + batches(
    batch(jobs(8, beh(EIO, EIO))),
    batch(jobs(8, beh(OK))))

SEEDS["dead_letters_ring2"] = config(ring=2, att=2, base="1us") + ops(
    (OP_DRAIN, 0, 4)) + batches(batch(jobs(8, beh(EIO, EIO))))

SEEDS["policies"] = config(att=3, base="20us") + ops() + batches(
    batch(jobs(8, beh(EIO, ENOENT)), policy=FAIL_FAST),
    batch(jobs(8, beh(WAIT, OK), us=300), policy=QUORUM, quorum=4),
    batch(jobs(8, beh(WAIT), us=300), deadline=1, cancel=True))

SEEDS["deadline_backoff"] = config(att=4, base="100us", cap="2ms", jitter=3) + ops() + batches(
    batch(jobs(6, beh(EIO, EIO, EIO, OK)), deadline=3))

SEEDS["by_hand"] = config(att=3, base="1us", cap="200us", tokens=2, ratio=2, fake=True,
                          fcount=2, wcalls=3, open_="1ms", trials=2, rate=1000, burst=2,
                          mode=1) + ops(
    (OP_ACQUIRE, 0, 0), (OP_ACQUIRE, 0, 1), (OP_RELEASE, 1, 0), (OP_RELEASE, 1, 0),
    (OP_STATE, 0, 0), (OP_CLOCK, 0, 4), (OP_ACQUIRE, 0, 0), (OP_RELEASE, 0, 0),
    (OP_LIMIT, 0, 0), (OP_LIMIT, 3, 2), (OP_LIMIT, 6, 5),
    (OP_DECIDE, 1, 1), (OP_DECIDE, 2, 1 | 1 << 6), (OP_DECIDE, 9, 2 | 3 << 6),
    (OP_DECIDE, 0, 1), (OP_DECIDE, 6, 1), (OP_DECIDE, 1, 0), (OP_DECIDE, 1, 3),
    (OP_DECIDE_BAD, 0, 0), (OP_DECIDE_BAD, 1, 0), (OP_BUDGET, 0, 0), (OP_DRAIN, 0, 3),
    (OP_STATS, 1, 0)) + batches(batch(jobs(2, beh(OK)))) + bytes([3])

SEEDS["by_hand_stats"] = config(att=2, base="20us", jitter=1) + ops(
    (OP_STATS, 0, 0), (OP_STATS, 1, 0), (OP_STATS, 2, 0), (OP_STATS, 3, 0), (OP_STATS, 4, 0),
    (OP_BACKOFF, 0, 5), (OP_BACKOFF, 1, 9), (OP_BAD, 0, 0)) + batches(batch(jobs(1, beh(OK))))

SEEDS["alloc_fail_create"] = config(amode=2, fail_at=1) + ops() + batches(
    batch(jobs(1, beh(OK))))
SEEDS["alloc_fail_flights"] = config(amode=2, fail_at=3, fail_rest=True, flights=True,
                                     pct=50, hdelay="1ms") + ops() + batches(
    batch([job(beh(WAIT), 300, 0, 1)] * 6))
SEEDS["alloc_counting"] = config(amode=1, flights=True, hdelay="200us", pct=99) + ops() + \
    batches(batch([job(beh(WAIT), 300, 0, 2)] * 8))

SEEDS["overlap_flights_handover"] = config(flights=True) + ops() + batches(
    batch([job(beh(WAIT), 300, 0, 1)], deadline=0),
    batch([job(beh(WAIT), 100, 0, 1)] * 4),
    batch([job(beh(WAIT), 250, 1, 1)] * 4, deadline=2), overlap=True)

SEEDS["overlap_concurrency_hedge"] = config(cc_init=4, cc_min=2, cc_max=16, hdelay="50us",
                                            tokens=2, ratio=1, att=2, base="1us") + ops() + \
    batches(batch(jobs(8, beh(WAIT, EIO, WAIT, OK), us=300)),
            batch(jobs(8, beh(WAIT, OK, OK, OK), us=250), policy=FAIL_FAST),
            batch(jobs(8, beh(EIO, EIO), us=60), policy=QUORUM, quorum=2), overlap=True)

SEEDS["overlap_breaker_trials"] = config(fake=True, fcount=3, wcalls=3, open_="1ms", trials=2,
                                         ramp=2) + ops((OP_ACQUIRE, 0, 0)) + batches(
    batch(jobs(4, beh(EIO))),
    batch(jobs(6, beh(WAIT), us=300, tick=True), advance=3),
    batch(jobs(6, beh(OK)), advance=4, free_early=True), overlap=True) + bytes([1])

SEEDS["invalid_ring3"] = config(ring=3)
SEEDS["invalid_reserved"] = config(reserved=6)
SEEDS["invalid_open_500us"] = config(fcount=2, open_="500us")
SEEDS["invalid_trials256"] = config(fcount=2, open_="1ms", trials256=True)
SEEDS["invalid_cap_below_base"] = config(att=2, base="1us", cap=500)
SEEDS["invalid_free_null"] = config(amode=3)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
