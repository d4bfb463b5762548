#!/usr/bin/env python3
"""A/B two bench_micro builds, interleaved (A B A B ...), and print medians.

  tools/ab_micro.py OLD_BENCH NEW_BENCH [--filter REGEX] [--rounds N]
                    [--min-time S] [--out FILE]

Each round runs OLD then NEW with the same Google Benchmark filter; the
figure kept per benchmark is its ns_per_job / ns_per_task counter when it
has one (ns per job or task), else real_time in its unit. Interleaving means
a change in the machine's load hits both sides alike; check the printed
loadavg before quoting a figure. Default: the fan-out micro set, 5 rounds.
"""
import argparse
import collections
import json
import statistics
import subprocess
import sys


def run(binary, flt, min_time):
    out = subprocess.run([binary, f"--benchmark_filter={flt}",
                          f"--benchmark_min_time={min_time}",
                          "--benchmark_format=json"],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        for key in ("ns_per_job", "ns_per_task"):
            if key in b:
                res[b["name"]] = (b[key] * 1e9, key.replace("_", " "))
                break
        else:
            res[b["name"]] = (b["real_time"], b["time_unit"])
    return res


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--filter", default="BM_EmptyBatch/2/|BM_Fib/1/|BM_Fib/2/")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", default="0.5")
    ap.add_argument("--out")
    a = ap.parse_args()
    data = collections.defaultdict(list)
    units = {}
    lines = [f"# tools/ab_micro.py {a.old} {a.new} --filter '{a.filter}' "
             f"--rounds {a.rounds} --min-time {a.min_time}",
             f"# loadavg before: {loadavg()}"]
    for _ in range(a.rounds):
        for side, binary in (("old", a.old), ("new", a.new)):
            for name, (v, unit) in run(binary, a.filter, a.min_time).items():
                data[(name, side)].append(v)
                units[name] = unit
    lines.append(f"# loadavg after: {loadavg()}")
    for name in sorted(units):
        for side in ("old", "new"):
            vs = data[(name, side)]
            lines.append(f"{name} {side} median {statistics.median(vs):.3f} "
                         f"{units[name]}  [{' '.join(f'{x:.3f}' for x in vs)}]")
        o = statistics.median(data[(name, "old")])
        n = statistics.median(data[(name, "new")])
        lines.append(f"{name} new/old {n / o:.3f}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
