#!/usr/bin/env python3
"""Turn the JSON of bench/report.sh into bench/results/report.md and PNG plots.

Input layout (written by report.sh):
    RESULTS/<allocator>/suite-<design>-<workload>.json   Google Benchmark JSON (steady state)
    RESULTS/<allocator>/burst-<cell>-<k>.json  one first-burst process each (--first-burst)
    RESULTS/<allocator>/openloop.json         wsched_openloop JSON
    RESULTS/machine.txt                       key=value: CPU, memory, load average, mode
Output:
    RESULTS/report.md, RESULTS/throughput_vs_workers.png,
    RESULTS/latency_vs_load.png, RESULTS/empty_jobs.png

Standard library only; the plots need matplotlib (Debian: python3-matplotlib)
and are skipped with a note when it is missing. Exit status 3 when a cell
failed (error, wrong checksum, missing jobs), so CI can gate on the smoke run.
"""
import argparse
import glob
import json
import math
import os
import sys

DESIGN_ORDER = ["wsched", "wsched-reserve", "mutex", "tpj", "omp", "tbb", "serial"]
DESIGN_LABEL = {
    "wsched": "wsched",
    "wsched-reserve": "wsched + reserve",
    "mutex": "mutex pool",
    "tpj": "thread per job",
    "omp": "OpenMP tasks",
    "tbb": "oneTBB",
    "serial": "serial",
}
FANOUT_VARIANTS = ["100ns", "1us", "10us", "1us-tail"]
FANOUT_MODELS = [("fanout", "4 clients"), ("fanout-1c", "1 client"), ("fanout-tasks", "tasks")]
# A cell whose repetitions (or first-burst processes) spread wider than this
# around their median, (max - min) / median, is flagged.
WIDE = 0.25
WIDE_MARK = "⚠"
COLOR = {d: f"C{i}" for i, d in enumerate(DESIGN_ORDER)}
UNIT_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


# ----------------------------------------------------------------- loading

class Cell:
    """One benchmark cell: its median figures and their spread."""

    def __init__(self, workload, variant, design, workers):
        self.workload, self.variant, self.design, self.workers = workload, variant, design, workers
        self.med = {}      # figure -> median (or the single run's value)
        self.sd = {}       # figure -> stddev across repetitions (absent with one run)
        self.runs = []     # every repetition's figures
        self.reps = 0
        self.error = None

    def get(self, key, default=None):
        return self.med.get(key, default)

    def spread(self, key):
        """(max - min) / median of figure key over the repetitions; None with
        fewer than two."""
        vs = [r[key] for r in self.runs if key in r]
        m = self.get(key)
        if len(vs) < 2 or not m:
            return None
        return (max(vs) - min(vs)) / m

    def wide(self, key):
        sp = self.spread(key)
        return sp is not None and sp > WIDE


def median(vs):
    vs = sorted(vs)
    n = len(vs)
    if not n:
        return None
    return vs[n // 2] if n % 2 else (vs[n // 2 - 1] + vs[n // 2]) / 2


def parse_name(run_name):
    parts = run_name.split("/")
    if len(parts) < 4 or not parts[3].startswith("workers:"):
        return None
    return parts[0], parts[1], parts[2], int(parts[3].split(":")[1])


def figures(b):
    """Numbers of one JSON benchmark entry: time in ms plus every counter."""
    f = {}
    scale = UNIT_TO_MS.get(b.get("time_unit", "ns"), 1e-6)
    if "real_time" in b:
        f["time_ms"] = b["real_time"] * scale
    if "cpu_time" in b:
        f["cpu_ms"] = b["cpu_time"] * scale
    skip = {"name", "run_name", "run_type", "aggregate_name", "aggregate_unit", "repetitions",
            "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
            "family_index", "per_family_instance_index", "error_occurred", "error_message"}
    for k, v in b.items():
        if k not in skip and isinstance(v, (int, float)):
            f[k] = float(v)
    return f


def load_docs(paths):
    """The Google Benchmark JSON documents of paths, in name order; a file
    that does not parse is reported and skipped."""
    for path in sorted(paths):
        with open(path) as fh:
            try:
                yield json.load(fh)
            except json.JSONDecodeError as e:
                print(f"report.py: skipping {path}: {e}", file=sys.stderr)


def load_suite(paths):
    cells = {}
    context = {}
    for doc in load_docs(paths):
        context = context or doc.get("context", {})
        runs = {}
        for b in doc.get("benchmarks", []):
            key = parse_name(b.get("run_name", b.get("name", "")))
            if not key:
                continue
            c = cells.setdefault(key, Cell(*key))
            if b.get("error_occurred"):
                c.error = b.get("error_message", "error")
                continue
            if b.get("run_type") == "aggregate":
                agg = b.get("aggregate_name")
                if agg == "median":
                    c.med = figures(b)
                elif agg == "stddev":
                    c.sd = figures(b)
            else:
                runs.setdefault(key, []).append(figures(b))
        for key, rs in runs.items():
            c = cells[key]
            c.runs = rs
            c.reps = len(rs)
            if not c.med and rs:  # a single repetition: no aggregates
                c.med = rs[-1]
            # Counters Google Benchmark aggregates as it does any other; the
            # verdict must hold in every repetition, not in the median.
            if rs:
                c.med["ok"] = min(r.get("ok", 0) for r in rs)
    return cells, context


def load_bursts(paths):
    """First-burst samples: one JSON per process, one run each. A cell's
    figures are the medians over its processes; ok must hold in all."""
    samples = {}
    context = {}
    for doc in load_docs(paths):
        context = context or doc.get("context", {})
        for b in doc.get("benchmarks", []):
            key = parse_name(b.get("run_name", b.get("name", "")))
            if not key or b.get("run_type") == "aggregate":
                continue
            c = samples.setdefault(key, Cell(*key))
            if b.get("error_occurred"):
                c.error = b.get("error_message", "error")
                continue
            c.runs.append(figures(b))
    for c in samples.values():
        c.reps = len(c.runs)
        keys = {k for r in c.runs for k in r}
        c.med = {k: median([r[k] for r in c.runs if k in r]) for k in keys}
        if c.runs:
            c.med["ok"] = min(r.get("ok", 0) for r in c.runs)
    return samples, context


def load_machine(path):
    m = {}
    try:
        with open(path) as fh:
            for line in fh:
                k, _, v = line.rstrip("\n").partition("=")
                m[k] = v
    except OSError:
        pass
    return m


def load_openloop(path):
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as e:
            print(f"report.py: skipping {path}: {e}", file=sys.stderr)
            return None


# -------------------------------------------------------------- formatting

def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.{digits}g}G"
    if a >= 1e6:
        return f"{v / 1e6:.{digits}g}M"
    if a >= 1e4:
        return f"{v / 1e3:.{digits}g}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def fmt_sd(c, key, digits=3):
    v = c.get(key)
    if v is None:
        return "–"
    s = c.sd.get(key)
    return (fmt(v, digits) + (f" ± {fmt(s, 2)}" if s is not None and c.reps > 1 else "")
            + (f" {WIDE_MARK}" if c.wide(key) else ""))


def fmt_wide(c, key, digits=3):
    """The median, flagged when its repetitions spread wide."""
    if c is None or c.error:
        return "–"
    v = c.get(key)
    return "–" if v is None else fmt(v, digits) + (f" {WIDE_MARK}" if c.wide(key) else "")


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------ tables

class Suite:
    def __init__(self, cells):
        self.cells = cells
        self.workers = sorted({k[3] for k in cells if k[3] > 0})
        present = {k[2] for k in cells}
        self.designs = [d for d in DESIGN_ORDER if d in present] + sorted(present - set(DESIGN_ORDER))

    def cell(self, workload, variant, design, workers):
        """The cell, mapping the worker-independent designs: serial runs at 1
        worker, thread per job at 0 (unbounded)."""
        if design == "serial":
            workers = 1
            if workload in ("fanout-tasks", "fanout-1c"):  # serial is the same in every model
                workload = "fanout"
        elif design == "tpj":
            workers = 0
        return self.cells.get((workload, variant, design, workers))

    def rows_for(self, workload, variant):
        """(design, workers) pairs present, grouped by worker count."""
        rows = []
        for w in self.workers:
            for d in self.designs:
                if d in ("serial", "tpj") and w != self.workers[-1] and len(self.workers) > 1:
                    # Worker-independent designs: listed once, at the top count.
                    continue
                c = self.cell(workload, variant, d, w)
                if c is not None:
                    rows.append((d, w, c))
        return rows


def verdict(c):
    if c.error:
        return "error: " + c.error
    ok = c.get("ok")
    return "–" if ok is None else ("yes" if ok >= 1 else "**NO**")


def threads(c):
    """Threads the cell created, and the most of the design's threads alive at
    once (a runtime's pool, created by an earlier cell, counts as alive)."""
    return f"{fmt(c.get('threads_created'))} / {fmt(c.get('threads_peak'))}"


def workers_label(d, w):
    if d == "serial":
        return "1"
    if d == "tpj":
        return "unbounded"
    return str(w)


def fanout_table(s, variant, workload="fanout"):
    header = ["design", "workers", "time ms (median ± sd)", "CPU ms", "ns/job", "wsched/this",
              "× serial", "jobs/s", "p50 µs", "p99 µs", "p99.9 µs", "p99 wsched/this",
              "peak RSS MiB", "RSS Δ MiB", "RSS wsched/this", "minor faults/req", "allocs/req",
              "threads created / peak alive", "checksum", "ok"]
    rows = []
    serial = s.cell(workload, variant, "serial", 1)
    for d, w, c in s.rows_for(workload, variant):
        ws = s.cell(workload, variant, "wsched", w if w > 0 else s.workers[-1])
        if c.error:
            rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w)] + ["–"] * 17 + [verdict(c)])
            continue
        npj = c.get("ns_per_job")
        rows.append([
            DESIGN_LABEL.get(d, d), workers_label(d, w), fmt_sd(c, "time_ms"), fmt(c.get("cpu_ms")),
            fmt(npj),
            fmt_ratio(ratio(ws.get("ns_per_job") if ws else None, npj)) if d != "wsched" else "1",
            fmt_ratio(ratio(serial.get("ns_per_job") if serial else None, npj)),
            fmt(c.get("jobs_per_s")), fmt(c.get("p50_us")), fmt(c.get("p99_us")),
            fmt(c.get("p999_us")),
            fmt_ratio(ratio(ws.get("p99_us") if ws else None, c.get("p99_us"))) if d != "wsched" else "1",
            fmt(c.get("rss_peak_kb", 0) / 1024), fmt(c.get("rss_delta_kb", 0) / 1024),
            fmt_ratio(ratio(ws.get("rss_peak_kb") if ws else None, c.get("rss_peak_kb"))) if d != "wsched" else "1",
            fmt(c.get("minflt_per_req")), fmt(c.get("allocs_per_req")),
            threads(c), f"{int(c.get('checksum', 0)):x}", verdict(c)])
    return table(header, rows)


def empty_table(s):
    variants = sorted({k[1] for k in s.cells if k[0] == "empty"},
                      key=lambda v: (v.split("-")[0] != "ext", int(v.split("-b")[1])))
    if not variants:
        return "_no data_"
    header = ["design", "workers"] + [v.replace("ext-b", "ext ×").replace("in-b", "in ×") for v in variants] + ["threads created / peak alive", "ok"]
    rows = []
    designs_seen = set()
    for w in s.workers:
        for d in s.designs:
            if d in ("serial", "tpj") and (d in designs_seen):
                continue
            row = [DESIGN_LABEL.get(d, d), workers_label(d, w)]
            any_cell = False
            oks = []
            thr = None
            for v in variants:
                c = s.cell("empty", v, d, w)
                if c is None:
                    row.append("–")
                    continue
                any_cell = True
                if c.error:
                    row.append("skip")
                    continue
                ws = s.cell("empty", v, "wsched", w if w > 0 else s.workers[-1])
                npj = c.get("ns_per_job")
                r = ratio(ws.get("ns_per_job") if ws and not ws.error else None, npj)
                row.append(fmt(npj) + ("" if d == "wsched" or r is None else f" ({r:.2f})"))
                oks.append(c.get("ok", 0) >= 1)
                thr = threads(c)
            if not any_cell:
                continue
            designs_seen.add(d)
            row += [thr or "–", "yes" if oks and all(oks) else ("–" if not oks else "**NO**")]
            rows.append(row)
    return table(header, rows)


def forkjoin_table(s, workload, variant, per_key, per_label):
    header = ["design", "workers", "time ms (median ± sd)", "CPU ms", per_label, "wsched/this",
              "× serial", "threads created / peak alive", "peak RSS MiB", "RSS Δ MiB", "checksum", "ok"]
    rows = []
    serial = s.cell(workload, variant, "serial", 1)
    for d, w, c in s.rows_for(workload, variant):
        ws = s.cell(workload, variant, "wsched", w)
        if c.error:
            rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w)] + ["–"] * 9 + [verdict(c)])
            continue
        v = c.get(per_key)
        rows.append([
            DESIGN_LABEL.get(d, d), workers_label(d, w), fmt_sd(c, "time_ms"), fmt(c.get("cpu_ms")), fmt(v),
            fmt_ratio(ratio(ws.get(per_key) if ws else None, v)) if d != "wsched" else "1",
            fmt_ratio(ratio(serial.get(per_key) if serial else None, v)),
            threads(c), fmt(c.get("rss_peak_kb", 0) / 1024), fmt(c.get("rss_delta_kb", 0) / 1024),
            f"{int(c.get('checksum', 0)):x}", verdict(c)])
    return table(header, rows)


def singles_table(s):
    v = next((k[1] for k in s.cells if k[0] == "singles"), None)
    header = ["design", "workers", "jobs", "time ms (median ± sd)", "CPU ms", "ns/job", "wsched/this",
              "threads created / peak alive", "ok"]
    rows = []
    for d, w, c in s.rows_for("singles", v):
        ws = s.cell("singles", v, "wsched", w)
        if c.error:
            rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w)] + ["–"] * 6 + [verdict(c)])
            continue
        rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w), fmt(c.get("jobs")), fmt_sd(c, "time_ms"),
                     fmt(c.get("cpu_ms")), fmt(c.get("ns_per_job")),
                     fmt_ratio(ratio(ws.get("ns_per_job") if ws and not ws.error else None,
                                     c.get("ns_per_job"))) if d != "wsched" else "1",
                     threads(c), verdict(c)])
    return table(header, rows)


def slots_table(s):
    header = ["workers", "packed ns/job", "padded ns/job", "packed/padded", "ok"]
    rows = []
    for w in s.workers:
        p = s.cell("slots", "packed", "wsched", w)
        q = s.cell("slots", "padded", "wsched", w)
        if not p and not q:
            continue
        rows.append([str(w), fmt_sd(p, "ns_per_job") if p else "–", fmt_sd(q, "ns_per_job") if q else "–",
                     fmt_ratio(ratio(p.get("ns_per_job") if p else None, q.get("ns_per_job") if q else None)),
                     "yes" if p and q and p.get("ok", 0) >= 1 and q.get("ok", 0) >= 1 else "**NO**"])
    return table(header, rows)


def idle_table(s):
    variant = next((k[1] for k in s.cells if k[0] == "idle"), None)
    if not variant:
        return "_no data_"
    header = ["design", "workers", "idle s", "CPU ms", "CPU % of one core", "wsched/this",
              "design threads alive"]
    rows = []
    for d, w, c in s.rows_for("idle", variant):
        ws = s.cell("idle", variant, "wsched", w)
        if c.error:
            rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w), "–", "–", "–", "–", verdict(c)])
            continue
        rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w), fmt(c.get("idle_s")),
                     fmt(c.get("cpu_ms")), fmt(c.get("cpu_pct")),
                     fmt_ratio(ratio(ws.get("cpu_ms") if ws else None, c.get("cpu_ms"))) if d != "wsched" else "1",
                     fmt(c.get("threads_peak"))])
    return table(header, rows)


def light_table(s):
    header = ["design", "workers", "CPU µs/job", "work µs/job", "wsched/this", "CPU %",
              "p50 µs", "p99 µs", "p99.9 µs", "ok"]
    rows = []
    for d, w, c in s.rows_for("light", "1ms"):
        ws = s.cell("light", "1ms", "wsched", w if w > 0 else s.workers[-1])
        if c.error:
            rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w)] + ["–"] * 7 + [verdict(c)])
            continue
        rows.append([DESIGN_LABEL.get(d, d), workers_label(d, w), fmt(c.get("cpu_us_per_job")),
                     fmt(c.get("work_us_per_job")),
                     fmt_ratio(ratio(ws.get("cpu_us_per_job") if ws else None, c.get("cpu_us_per_job"))) if d != "wsched" else "1",
                     fmt(c.get("cpu_pct")), fmt(c.get("p50_us")), fmt(c.get("p99_us")),
                     fmt(c.get("p999_us")), verdict(c)])
    return table(header, rows)


def openloop_table(doc):
    if not doc:
        return "_not run (`bench/report.sh --full` runs it)_"
    header = ["design", "workers", "load ρ", "offered req/s", "measured req/s", "p50 µs", "p99 µs",
              "p99.9 µs", "p99 from intended µs", "generator lag µs", "L sampled", "L exact", "λ·W",
              "Little error", "CPU %", "ok"]
    rows = []
    for p in doc.get("points", []):
        rows.append([DESIGN_LABEL.get(p["design"], p["design"]), str(p["workers"]), f"{p['rho']:.2f}",
                     fmt(p["rate_offered"]), fmt(p["rate_measured"]), fmt(p["p50_us"]),
                     fmt(p["p99_us"]), fmt(p["p999_us"]), fmt(p.get("p99_intended_us")),
                     fmt(p.get("lag_mean_us")), fmt(p["l_sampled"]), fmt(p.get("l_integral")),
                     fmt(p["l_little"]),
                     f"{100 * p['little_err']:+.1f}%", fmt(p["cpu_pct"]),
                     ("overloaded; " if p["overloaded"] else "") + ("yes" if p["ok"] else "**NO** " + p.get("error", ""))])
    note = ""
    if any(not p.get("sampler_rt", True) for p in doc.get("points", [])):
        note = ("\n\nThe sampler did not get SCHED_FIFO (no privilege): its reads wait for a free CPU "
                "and `L sampled` reads low under load; `L exact` is unaffected.")
    return table(header, rows) + note


# ----------------------------------------------------------------- targets

def targets(s, label):
    """The issue's targets at 2 workers (fib at 1), with pass/miss and margin."""
    W = 2
    lines = []

    def add(name, value, goal, passed, margin, note=""):
        if value is None:
            lines.append([name, "–", goal, "not measured", "–", note])
        else:
            lines.append([name, value, goal, "**pass**" if passed else "**MISS**", margin, note])

    def npj(variant, design, w=W, workload="fanout", key="ns_per_job"):
        c = s.cell(workload, variant, design, w)
        return None if c is None or c.error else c.get(key)

    for workload, model in (("fanout", "client model"), ("fanout-tasks", "task model")):
        if not any(k[0] == workload for k in s.cells):
            continue
        ws1 = npj("1us", "wsched", workload=workload)
        sp = ratio(npj("1us", "serial", workload=workload), ws1)
        add(f"fan-out 1 µs ({model}): wsched speed-up over serial (2 workers)",
            None if sp is None else f"{sp:.2f}×", "≥ 1.9×", sp is not None and sp >= 1.9,
            None if sp is None else f"{100 * (sp / 1.9 - 1):+.1f}%")
        peers = [(d, npj("1us", d, workload=workload)) for d in s.designs if d not in ("wsched", "serial")]
        peers = [(d, v) for d, v in peers if v is not None]
        name = f"fan-out 1 µs ({model}): wsched faster than every peer (2 workers)"
        if ws1 is not None and peers:
            worst = min(peers, key=lambda dv: dv[1])
            m = worst[1] / ws1
            add(name, f"closest: {DESIGN_LABEL.get(worst[0], worst[0])}, {m:.2f}× wsched's time",
                "every peer > 1×", m > 1, f"{100 * (m - 1):+.1f}%",
                "peers: " + ", ".join(DESIGN_LABEL.get(d, d) for d, _ in peers))
        else:
            add(name, None, "every peer > 1×", False, None)
        sp100 = ratio(npj("100ns", "serial", workload=workload), npj("100ns", "wsched", workload=workload))
        add(f"fan-out 100 ns ({model}): wsched faster than serial (2 workers)",
            None if sp100 is None else f"{sp100:.2f}×", "> 1×", sp100 is not None and sp100 > 1,
            None if sp100 is None else f"{100 * (sp100 - 1):+.1f}%")
    fib_v = next((k[1] for k in s.cells if k[0] == "fib"), None)
    f1 = npj(fib_v, "wsched", 1, "fib", "ns_per_task") if fib_v else None
    add(f"fib ({fib_v}) at 1 worker: ns per task", None if f1 is None else f"{f1:.2f} ns", "≤ 4 ns",
        f1 is not None and f1 <= 4, None if f1 is None else f"{100 * (4 - f1) / 4:+.1f}%")
    for ctx, name in (("ext", "external thread"), ("in", "inside a worker")):
        b = npj(f"{ctx}-b1000000", "wsched", W, "empty")
        add(f"empty jobs, batched (×10⁶, {name}, 2 workers)", None if b is None else f"{b:.2f} ns/job",
            "≤ 5 ns/job", b is not None and b <= 5, None if b is None else f"{100 * (5 - b) / 5:+.1f}%")
    for ctx, name in (("in", "inside a worker"), ("ext", "external thread")):
        b = npj(f"{ctx}-b1", "wsched", W, "empty")
        note = ("includes the waiting thread's futex sleep and wake-up" if ctx == "ext" else "")
        add(f"empty jobs, singly (batch of 1, {name}, 2 workers)", None if b is None else f"{fmt(b)} ns/job",
            "≤ 25 ns/job", b is not None and b <= 25, None if b is None else f"{100 * (25 - b) / 25:+.1f}%", note)
    wr = s.cell("fanout", "1us", "wsched", W)
    tr = s.cell("fanout", "1us", "tpj", 0)
    if wr and tr and not wr.error and not tr.error:
        r = wr.get("rss_peak_kb") / tr.get("rss_peak_kb")
        rd = ratio(wr.get("rss_delta_kb"), tr.get("rss_delta_kb"))
        add("fan-out 1 µs (client model): wsched peak RSS / thread-per-job peak RSS",
            f"{r:.3f} ({fmt(wr.get('rss_peak_kb') / 1024)} / {fmt(tr.get('rss_peak_kb') / 1024)} MiB)",
            "≤ 0.1", r <= 0.1, f"{100 * (0.1 - r) / 0.1:+.1f}%",
            "" if rd is None else f"rise over the cell's starting RSS: {rd:.3f}")
    else:
        add("fan-out 1 µs (client model): wsched peak RSS / thread-per-job peak RSS", None, "≤ 0.1", False, None)
    header = ["target", "measured", "goal", "verdict", "margin", "note"]
    return f"### Targets ({label})\n\n" + table(header, lines) + "\n"


# ------------------------------------------------------------------- plots

def legend_below(fig, axes):
    """One legend for the figure, under the plots, with every series once."""
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.tight_layout(rect=(0, 0.12, 1, 0.93))
    fig.legend(list(seen.values()), list(seen.keys()), loc="lower center",
               ncol=min(len(seen), 8), fontsize=8, frameon=False)


def plots(out_dir, suites, openloops):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["_Plots skipped: matplotlib is not installed (apt-get install python3-matplotlib)._"]
    notes = []
    alloc = "glibc" if "glibc" in suites else next(iter(suites), None)
    if alloc:
        s = suites[alloc]
        fig, axes = plt.subplots(1, len(FANOUT_VARIANTS), figsize=(4.2 * len(FANOUT_VARIANTS), 3.8))
        for ax, v in zip(axes, FANOUT_VARIANTS):
            for d in s.designs:
                if d == "serial":
                    c = s.cell("fanout", v, d, 1)
                    if c and not c.error:
                        ax.axhline(c.get("jobs_per_s") / 1e6, color="grey", ls="--", label="serial")
                    continue
                if d == "tpj":
                    c = s.cell("fanout", v, d, 0)
                    if c and not c.error:
                        ax.axhline(c.get("jobs_per_s") / 1e6, color=COLOR[d], ls=":", label="thread per job")
                    continue
                for workload, ls, suffix in (("fanout", "-", ""), ("fanout-tasks", "--", " (tasks)")):
                    xs, ys = [], []
                    for w in s.workers:
                        c = s.cell(workload, v, d, w)
                        if c and not c.error:
                            xs.append(w)
                            ys.append(c.get("jobs_per_s") / 1e6)
                    if xs:
                        ax.plot(xs, ys, marker="o", ls=ls, color=COLOR.get(d),
                                label=DESIGN_LABEL.get(d, d) + suffix)
            ax.set_title(f"fan-out {v}")
            ax.set_xlabel("workers")
            ax.set_ylabel("M jobs/s")
            ax.set_xticks(s.workers)
            ax.grid(alpha=0.3)
        legend_below(fig, axes)
        fig.suptitle(f"Fan-out throughput vs workers; solid: client model, dashed: task model ({alloc} malloc)")
        p = os.path.join(out_dir, "throughput_vs_workers.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        notes.append(f"![throughput vs workers]({os.path.basename(p)})")

        variants = sorted({k[1] for k in s.cells if k[0] == "empty"},
                          key=lambda v: (v.split("-")[0] != "ext", int(v.split("-b")[1])))
        if variants:
            w = s.workers[-1]
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
            for ax, ctx in zip(axes, ("ext", "in")):
                for d in s.designs:
                    xs, ys = [], []
                    for v in variants:
                        if not v.startswith(ctx + "-"):
                            continue
                        c = s.cell("empty", v, d, w)
                        if c and not c.error:
                            xs.append(int(v.split("-b")[1]))
                            ys.append(c.get("ns_per_job"))
                    if xs:
                        ax.plot(xs, ys, marker="o", color=COLOR.get(d), label=DESIGN_LABEL.get(d, d))
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel("jobs per batch")
                ax.set_title("from an external thread" if ctx == "ext" else "from inside a worker")
                ax.grid(alpha=0.3, which="both")
            axes[0].set_ylabel("ns per empty job")
            legend_below(fig, axes)
            fig.suptitle(f"Empty jobs, {w} workers ({alloc} malloc)")
            p = os.path.join(out_dir, "empty_jobs.png")
            fig.savefig(p, dpi=110)
            plt.close(fig)
            notes.append(f"![empty jobs]({os.path.basename(p)})")

    ol_alloc = "glibc" if openloops.get("glibc") else next((a for a, d in openloops.items() if d), None)
    if ol_alloc:
        doc = openloops[ol_alloc]
        pts = doc.get("points", [])
        wmax = max((p["workers"] for p in pts), default=0)
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
        for ax, key, title in zip(axes, ("p50_us", "p99_us", "p999_us"), ("p50", "p99", "p99.9")):
            for d in DESIGN_ORDER:
                sel = [p for p in pts if p["design"] == d and p["workers"] == wmax and p["ok"] and not p["overloaded"]]
                if sel:
                    ax.plot([p["rho"] for p in sel], [p[key] for p in sel], marker="o",
                            color=COLOR.get(d), label=DESIGN_LABEL.get(d, d))
            ax.set_yscale("log")
            ax.set_xlabel("offered load ρ")
            ax.set_title(f"{title} latency")
            ax.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("µs")
        legend_below(fig, axes)
        fig.suptitle(f"Open loop, {wmax} workers, {doc['context'].get('job_ns', 0) / 1000:g} µs jobs "
                     f"({ol_alloc} malloc; overloaded points left out)")
        p = os.path.join(out_dir, "latency_vs_load.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        notes.append(f"![latency vs load]({os.path.basename(p)})")
    return notes


# ---------------------------------------------------------- summary tables

def per_req(c, key):
    return None if c is None or c.error else c.get(key)


def fanout_summary(s, b, variant, w):
    """Every fan-out model at w workers, steady state beside first burst."""
    header = ["model", "design", "steady ns/job", "× serial", "p50 µs", "p99 µs",
              "first burst ns/job", "× serial", "first burst p99 µs",
              "minor faults/req (steady; first)", "allocs/req (steady; first)", "ok"]
    rows = []
    sser = s.cell("fanout", variant, "serial", 1)
    bser = b.cell("fanout", variant, "serial", 1) if b else None

    def row(model, d, c, bc):
        def pair(key, digits=3):
            a, z = per_req(c, key), per_req(bc, key)
            if a is None and z is None:
                return "–"
            return f"{fmt(a, digits)}; {fmt(z, digits)}"
        oks = [x for x in (c, bc) if x is not None]
        ok = ("**NO**" if any(x.error or x.get("ok", 0) < 1 for x in oks) else "yes") if oks else "–"
        sv = per_req(c, "ns_per_job")
        bv = per_req(bc, "ns_per_job")
        return [model, DESIGN_LABEL.get(d, d), fmt_wide(c, "ns_per_job"),
                fmt_ratio(ratio(per_req(sser, "ns_per_job"), sv)), fmt_wide(c, "p50_us"),
                fmt_wide(c, "p99_us"), fmt_wide(bc, "ns_per_job"),
                fmt_ratio(ratio(per_req(bser, "ns_per_job"), bv)), fmt_wide(bc, "p99_us"),
                pair("minflt_per_req"), pair("allocs_per_req"), ok]

    if sser or bser:
        rows.append(row("(all)", "serial", sser, bser))
    # First-burst-only designs too (wsched-reserve: report.sh).
    designs = list(s.designs) + [d for d in (b.designs if b else []) if d not in s.designs]
    designs.sort(key=lambda d: DESIGN_ORDER.index(d) if d in DESIGN_ORDER else len(DESIGN_ORDER))
    for workload, model in FANOUT_MODELS:
        for d in designs:
            if d == "serial":
                continue
            c = s.cell(workload, variant, d, w)
            bc = b.cell(workload, variant, d, w) if b else None
            if c is None and bc is None:
                continue
            rows.append(row(model, d, c, bc))
    return table(header, rows) if rows else "_no data_"


def costs_summary(s, w):
    """One-job and per-job costs at w workers."""
    header = ["design", "singles: ns/job (one submit each, ≤ 4,096 outstanding)",
              "round trip of one empty job, ns (submit + wait)", "empty batch ×10⁶, outside: ns/job",
              "empty batch ×10⁶, inside a worker: ns/job", "fib: ns/task", "fib × serial"]
    fib_v = next((k[1] for k in s.cells if k[0] == "fib"), None)
    sing_v = next((k[1] for k in s.cells if k[0] == "singles"), None)
    fser = s.cell("fib", fib_v, "serial", 1) if fib_v else None
    rows = []
    for d in s.designs:
        cs = [s.cell("singles", sing_v, d, w) if sing_v else None,
              s.cell("empty", "ext-b1", d, w), s.cell("empty", "ext-b1000000", d, w),
              s.cell("empty", "in-b1000000", d, w), s.cell("fib", fib_v, d, w) if fib_v else None]
        if all(c is None for c in cs):
            continue
        vals = [fmt_wide(c, "ns_per_job") for c in cs[:4]] + [fmt_wide(cs[4], "ns_per_task")]
        vals.append(fmt_ratio(ratio(per_req(fser, "ns_per_task"), per_req(cs[4], "ns_per_task"))))
        rows.append([DESIGN_LABEL.get(d, d)] + vals)
    return table(header, rows) if rows else "_no data_"


def perf_targets(s, b, w):
    """Issue 10's targets (2 workers), from the main comparison's cells."""
    rows = []

    def add(name, value, goal, passed, note=""):
        if value is None:
            rows.append([name, "–", goal, "not measured", note])
        else:
            rows.append([name, value, goal, "**pass**" if passed else "**MISS**", note])

    def npj(src, workload, variant, design, key="ns_per_job", workers=None):
        if src is None:
            return None
        c = src.cell(workload, variant, design, w if workers is None else workers)
        return None if c is None or c.error else c.get(key)

    def speedup(src, workload, variant, design="wsched"):
        return ratio(npj(src, "fanout", variant, "serial", workers=1), npj(src, workload, variant, design))

    models = (("fanout", "4 clients"), ("fanout-1c", "1 client"), ("fanout-tasks", "tasks"))
    for variant, goals in (("100ns", {"fanout": 1.3, "fanout-1c": 1.3, "fanout-tasks": 1.7}),
                           ("1us", {"fanout": 1.9, "fanout-1c": 1.9, "fanout-tasks": 1.9})):
        for workload, model in models:
            sp = speedup(s, workload, variant)
            g = goals[workload]
            add(f"steady state, {variant.replace('us', ' µs').replace('ns', ' ns')} jobs, {model}: × serial",
                None if sp is None else f"{sp:.2f}×", f"≥ {g}×", sp is not None and sp >= g)
    for variant, g in (("100ns", 1.0), ("1us", 1.7)):
        for workload, model in models:
            for design, how in (("wsched", ""), ("wsched-reserve", ", with wsched_reserve")):
                sp = speedup(b, workload, variant, design)
                if sp is None and design != "wsched":
                    continue
                add(f"first burst, {variant.replace('us', ' µs').replace('ns', ' ns')} jobs, {model}{how}: × serial",
                    None if sp is None else f"{sp:.2f}×", f"≥ {g}×", sp is not None and sp >= g)
    for workload, model in models:
        c = s.cell(workload, "100ns", "wsched", w)
        if c is None or c.error:
            continue
        a, f = c.get("allocs_per_req"), c.get("minflt_per_req")
        add(f"steady state, {model}: allocator calls / page faults per request",
            f"{fmt(a)} / {fmt(f)}", "0 / 0", a is not None and f is not None and a < 0.001 and f < 0.001)
    sing_v = next((k[1] for k in s.cells if k[0] == "singles"), None)
    if sing_v:
        ws = npj(s, "singles", sing_v, "wsched")
        mp = npj(s, "singles", sing_v, "mutex")
        add("single-job submits from one outside thread, ns/job", None if ws is None else f"{fmt(ws)} ns",
            "≤ 50 ns", ws is not None and ws <= 50)
        r = ratio(mp, ws)
        add("single-job submits: mutex pool's time / wsched's", None if r is None else f"{r:.2f}×",
            "≥ 3×", r is not None and r >= 3)
    rt = npj(s, "empty", "ext-b1", "wsched")
    add("round trip of one empty job from outside", None if rt is None else f"{fmt(rt)} ns", "≤ 1 µs",
        rt is not None and rt <= 1000, "2 workers on 2 CPUs: the caller shares a CPU with a worker")
    header = ["target (issue 10)", "measured", "goal", "verdict", "note"]
    return table(header, rows) + ("\n\nNot in this table: fib at 1 worker, 10^7 jobs in one batch and "
                                  "range jobs are `bench_micro`'s (`BM_Fib`, `BM_EmptyBatch`, "
                                  "`BM_RangeBatch`); the noisy neighbour is `bench/noisy.sh`'s.")


def count_wide(suites):
    n = 0
    for s in suites:
        for c in s.cells.values():
            key = "ns_per_task" if c.workload == "fib" else (
                "ns_per_node" if c.workload == "uts" else "ns_per_job")
            if not c.error and c.wide(key):
                n += 1
    return n


def summary_section(s, b, alloc, machine):
    w = s.workers[-1] if s.workers else 1
    out = [f"## Main comparison ({w} workers, {alloc} malloc)\n"]
    reps = machine.get("repetitions", "?")
    samples = machine.get("samples", "?")
    out.append(
        f"**Steady state**: in one process per design and workload, every fan-out cell runs the "
        f"whole workload {s_warmup(s)} times untimed on its pool, then the timed rounds; figures are "
        f"medians over {reps} repetitions (each on a pool of its own, warmed the same way). "
        f"**First burst**: a fresh process per sample, the pool just created, one timed round "
        f"with no warm-up (`wsched_bench --first-burst`); medians over {samples} processes, "
        f"taken round-robin over the cells. `× serial` divides serial's time measured the same "
        f"way by the design's (> 1: faster than serial). Minor faults are the process's "
        f"`ru_minflt` over the timed rounds per request (pages touched for the first time); "
        f"allocs are wsched's own allocator calls per request (`wsched_pool_stats.allocs`), "
        f"other designs do not count theirs.\n")
    for v, what in (("1us", "1 µs jobs"), ("100ns", "100 ns jobs")):
        out.append(f"### Fan-out, {what}: 1,000 requests of 10–20 jobs at once\n")
        out.append(fanout_summary(s, b, v, w) + "\n")
    out.append(f"### Costs of one job ({w} workers)\n")
    out.append("`singles`: empty jobs submitted one by one from one outside thread (wsched: a "
               "batch of one, freed after its wait; mutex pool: one task with its wait group; "
               "oneTBB: `task_arena::enqueue` of one task that sets a flag and wakes the waiter "
               "through a futex), at most 4,096 outstanding (the oldest waited for before the next "
               "submit). Round trip (`empty/ext-b1`): submit one empty job from outside and wait "
               "for it, one at a time, so it includes the waiter's sleep and wake-up.\n")
    out.append(costs_summary(s, w) + "\n")
    out.append(f"### Performance targets ({w} workers)\n")
    out.append(perf_targets(s, b, w) + "\n")
    return "\n".join(out)


def s_warmup(s):
    for c in s.cells.values():
        if c.workload.startswith("fanout") and c.get("warmup_rounds") is not None:
            return f"{c.get('warmup_rounds'):g}"
    return "3"


# -------------------------------------------------------------------- main

def suite_section(s, alloc, openloop):
    out = [f"## {alloc} malloc\n"]
    out.append(targets(s, alloc))
    what = {"100ns": "100 ns jobs", "1us": "1 µs jobs", "10us": "10 µs jobs",
            "1us-tail": "1 µs jobs, 1% of them 100× longer"}
    for workload, model in (("fanout", "client model: client threads submit and wait"),
                            ("fanout-1c", "one client submits every request, then waits for each in order"),
                            ("fanout-tasks", "task model: each request a task inside the scheduler")):
        for v in FANOUT_VARIANTS:
            if any(k[0] == workload and k[1] == v for k in s.cells):
                out.append(f"### Fan-out, {what[v]} ({model})\n")
                out.append(fanout_table(s, v, workload) + "\n")
    if any(k[0] == "singles" for k in s.cells):
        out.append("### Singles: empty jobs submitted one at a time, ≤ 4,096 outstanding\n")
        out.append(singles_table(s) + "\n")
    out.append("### Empty jobs: ns per job (wsched/this in parentheses; ext × 1 is the round trip of one empty job)\n")
    out.append(empty_table(s) + "\n")
    fib_v = next((k[1] for k in s.cells if k[0] == "fib"), None)
    if fib_v:
        out.append(f"### Fork-join: fib({fib_v[1:]}), every call a task\n")
        out.append(forkjoin_table(s, "fib", fib_v, "ns_per_task", "ns/task") + "\n")
    uts_v = next((k[1] for k in s.cells if k[0] == "uts"), None)
    if uts_v:
        c = next((c for k, c in s.cells.items() if k[0] == "uts" and not c.error), None)
        nodes = f", {int(c.get('nodes', 0))} nodes" if c else ""
        out.append(f"### Fork-join: UTS binomial tree (root {uts_v[1:]} children{nodes})\n")
        out.append(forkjoin_table(s, "uts", uts_v, "ns_per_node", "ns/node") + "\n")
    if any(k[0] == "slots" for k in s.cells):
        out.append("### Slots: packed (8 B) vs padded (64 B), each job rewriting its slot\n")
        out.append(slots_table(s) + "\n")
    if any(k[0] == "idle" for k in s.cells):
        out.append("### Idle pool: CPU burned with no work\n")
        out.append(idle_table(s) + "\n")
    if any(k[0] == "light" for k in s.cells):
        out.append("### Light load: one request per millisecond\n")
        out.append(light_table(s) + "\n")
    out.append("### Open loop: Poisson arrivals\n")
    if openloop:
        ctx = openloop.get("context", {})
        out.append(f"Jobs of {ctx.get('job_ns', 0) / 1000:g} µs, 10–20 per request, "
                   f"{ctx.get('duration_s')} s per point; ρ is the offered job work over the workers' "
                   f"capacity (the generator, reaper and sampler threads share the CPUs). Latency runs "
                   f"from submission; `p99 from intended` counts from the scheduled arrival instead "
                   f"(the generator wakes late by `generator lag`). Little's law: `L sampled` is the "
                   f"mean in-flight count read every {ctx.get('sample_us')} µs by a SCHED_FIFO sampler "
                   f"thread, `L exact` its time average integrated from the timestamps over the "
                   f"arrival window, `λ·W` measured rate × mean latency; `Little error` = L sampled / λ·W − 1. "
                   f"Requests still in flight when arrivals stop make λ·W exceed the windowed figures "
                   f"when latencies are not small against the window (overload).\n")
    out.append(openloop_table(openloop) + "\n")
    return "\n".join(out)


def micro_section(path):
    """bench_micro: per-job overhead and what each feature costs."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return ""
    med = {}
    for b in doc.get("benchmarks", []):
        if b.get("aggregate_name") == "median":
            name = b["run_name"]
            med[name] = b
    out = ["## Per-job overhead (bench_micro)\n"]
    rows = []
    for name, b in sorted(med.items()):
        if name.startswith("BM_EmptyBatch") or name.startswith("BM_Fib"):
            key = "ns_per_job" if "ns_per_job" in b else "ns_per_task"
            rows.append([name, fmt(b.get(key, 0) * 1e9), key.replace("_", " ")])
    if rows:
        out.append("Command: `WSCHED_BENCH_WORKERS=1,2 build-bench/bench_micro` (this report's run).\n")
        out.append(table(["benchmark (workers/size)", "ns", "per"], rows) + "\n")
    feats = [(n, b) for n, b in med.items() if n.startswith("BM_Feature")]
    if feats:
        # Google Benchmark stores these inverted-rate counters in seconds.
        base = next((b.get("ns_per_job") * 1e9 for n, b in feats if b.get("label") == "none"), None)
        out.append("### Cost of each feature: a batch of 100,000 empty jobs, the feature on\n")
        out.append("`none` is the plain batch: what every feature costs when unused (each is one "
                   "predictable branch on a field of the batch read once per range). The other rows "
                   "turn one feature on; empty jobs make the per-job cost as visible as it gets.\n")
        frows = []
        for n, b in sorted(feats, key=lambda nb: nb[0]):
            v = b.get("ns_per_job")
            v = v * 1e9 if v is not None else None
            frows.append([b.get("label", n), fmt(v), fmt(v - base) if base is not None and v is not None else "–"])
        out.append(table(["feature", "ns/job", "Δ vs none"], frows) + "\n")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--out", help="report path (default RESULTS/report.md)")
    args = ap.parse_args()

    allocs = sorted(d for d in os.listdir(args.results)
                    if os.path.isdir(os.path.join(args.results, d))) if os.path.isdir(args.results) else []
    allocs.sort(key=lambda a: (a != "glibc", a))
    suites, bursts, contexts, openloops = {}, {}, {}, {}
    for a in allocs:
        cells, ctx = load_suite(glob.glob(os.path.join(args.results, a, "suite-*.json")))
        if cells:
            suites[a] = Suite(cells)
            contexts[a] = ctx
        bcells, _ = load_bursts(glob.glob(os.path.join(args.results, a, "burst-*.json")))
        if bcells:
            bursts[a] = Suite(bcells)
        openloops[a] = load_openloop(os.path.join(args.results, a, "openloop.json"))
    machine = load_machine(os.path.join(args.results, "machine.txt"))
    if not suites:
        print(f"report.py: no suite-*.json under {args.results}/<allocator>/", file=sys.stderr)
        return 1

    ctx = contexts.get("glibc") or next(iter(contexts.values()))
    lines = ["# wsched benchmark report\n"]
    mode = machine.get("mode") or ("short" if ctx.get("wb_short") == "1" else "full")
    mode_what = {"short": "short (CI smoke: small sizes, few repetitions)",
                 "default": "default (the main tables at the largest worker count; `--full` for every cell)",
                 "full": "full"}.get(mode, mode)
    cpu = machine.get("cpu") or machine.get("cpu_proc") or "?"
    if machine.get("cpu_more"):
        cpu += f" ({machine['cpu_more']})"
    lines.append(
        f"Machine: {cpu}; {machine.get('nproc', ctx.get('num_cpus', '?'))} CPUs (nproc) at "
        f"{ctx.get('mhz_per_cpu', '?')} MHz; {machine.get('mem', '?')} memory; kernel "
        f"{machine.get('kernel', '?')}; host {ctx.get('host_name', '?')}. Load average (1, 5, 15 min) "
        f"{machine.get('load_before', '?')} before the runs, {machine.get('load_after', '?')} after. "
        f"Built {ctx.get('library_build_type', '?')} Google Benchmark library; run {ctx.get('date', '?')}; "
        f"benchmarks took {machine.get('bench_wall_s', '?')} s"
        + (f", the hypervisor stole {machine['steal_pct']}% of the CPUs' time meanwhile (/proc/stat)"
           if machine.get("steal_pct") else "") + f". Mode: {mode_what}. "
        f"Calibration (spin iterations per ns : timestamp ns): {ctx.get('wb_calib', '?')}.\n")
    lines.append(
        f"Fan-out: {ctx.get('wb_requests', '?')} requests, 10–20 jobs each, all arriving at once, in three "
        f"models. Client model (the scenario): {ctx.get('wb_clients', '?')} client threads submit the "
        f"requests and wait for them (wsched, mutex pool, thread per job, oneTBB through "
        f"task_arena::enqueue). One client (`fanout-1c`): a single thread submits all of them at "
        f"t = 0, then waits for each in order (wsched, mutex pool, oneTBB). Task model: each request is a task inside the scheduler that spawns "
        f"its jobs and waits (wsched nested batches, OpenMP tasks, oneTBB task_group); OpenMP has "
        f"no other. Latency of a request = last job's completion − round start. Times are medians over "
        f"repetitions (± standard deviation); ratios use medians. `wsched/this` < 1 means wsched takes "
        f"less (time, latency, memory, CPU); `× serial` is the speed-up over the serial baseline. Peak "
        f"RSS is the cell's high-water mark (reset at the start of each cell); each design and workload runs in its own process, the 1 µs fan-out first.\n")
    if any(c.get("wb_rss_reset") == "0" for c in contexts.values()):
        lines.append("**Note:** the kernel refused to reset the peak RSS (/proc/self/clear_refs), so "
                     "peak RSS figures are each process's high-water mark so far, not the cell's own.\n")
    lines.append("Allocators: " + ", ".join(f"{a} (malloc from {contexts[a].get('wb_malloc', '?')})" for a in suites) + ".\n")
    lines.append("This machine is shared and small; figures from a 2-CPU VM are noisy, the spread "
                 "columns say how much.\n")
    nwide = count_wide(list(suites.values()) + list(bursts.values()))
    lines.append(f"{WIDE_MARK} wide spread: the cell's repetitions (steady state) or processes (first "
                 f"burst) spread by more than {100 * WIDE:.0f}% of their median, (max − min) / median, "
                 f"in its main figure (ns per job, task or node); trust it to no better than that. "
                 f"{nwide} cell{'s' if nwide != 1 else ''} flagged in this report.\n")
    # Correctness first: every cell must have produced the serial run's
    # checksum (ok) and every open-loop request must have completed.
    bad = []
    total = 0
    for a, s in suites.items():
        for key, c in sorted(s.cells.items()):
            total += 1
            if c.error or c.get("ok", 0) < 1:
                bad.append(f"{a}: `{'/'.join(map(str, key[:3]))}/workers:{key[3]}`: "
                           + (c.error or "wrong checksum or job count"))
    for a, s in bursts.items():
        for key, c in sorted(s.cells.items()):
            total += 1
            if c.error or c.get("ok", 0) < 1:
                bad.append(f"{a}: first burst `{'/'.join(map(str, key[:3]))}/workers:{key[3]}`: "
                           + (c.error or "wrong checksum or job count"))
    for a, doc in openloops.items():
        for p in (doc or {}).get("points", []):
            total += 1
            if not p.get("ok"):
                bad.append(f"{a}: open loop {p['design']} ρ={p['rho']}: {p.get('error') or 'jobs missing'}")
    if bad:
        lines.append(f"**{len(bad)} of {total} cells FAILED:**\n")
        lines += [f"- {b}" for b in bad]
        lines.append("")
    else:
        lines.append(f"All {total} cells completed with the expected checksums and job counts.\n")
    a0 = "glibc" if "glibc" in suites else next(iter(suites))
    lines.append(summary_section(suites[a0], bursts.get(a0), a0, machine))
    lines += plots(args.results, suites, openloops)
    lines.append("")
    for a in suites:
        lines.append(suite_section(suites[a], a, openloops.get(a)))
    lines.append(micro_section(os.path.join(args.results, "micro.json")))
    out = args.out or os.path.join(args.results, "report.md")
    with open(out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"report.py: wrote {out}")
    if bad:
        print(f"report.py: {len(bad)} cells failed (see the report)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
