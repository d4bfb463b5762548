#!/usr/bin/env python3
"""Medians of tools/ab_suite.sh's raw lines ("side cell value unit"), per
cell: old, new, new/old and every round's value."""
import collections
import statistics
import sys

runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("#"):
        print(line.strip())
        continue
    side, cell, value, unit = line.split()
    runs[(cell, unit)].append((side, float(value)))
for (cell, unit), vs in sorted(runs.items()):
    old = [v for s, v in vs if s == "old"]
    new = [v for s, v in vs if s == "new"]
    if not old or not new:
        continue
    mo, mn = statistics.median(old), statistics.median(new)
    print(f"{cell:45s} old {mo:9.3f} new {mn:9.3f} {unit}  new/old {mn / mo:.3f}"
          f"   old={old} new={new}")
