#!/usr/bin/env python3
"""Check that calls between the library's source files run one way.

  tools/check_layers.py OBJECT_DIR|OBJECT... [--graph]

Reads the symbols each object of src/*.c defines and uses (nm), draws an
edge a -> b when a uses a symbol b defines, and fails if the graph has a
cycle (printing it). --graph prints every file's edges, lowest layer
first. docs/design.md has the intended layers; this keeps them honest.
"""
import glob
import os
import subprocess
import sys


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBRVW":
            defined.add(f[2])
        elif len(f) == 2 and f[0] == "U":
            used.add(f[1])
    return defined, used


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    args = [a for a in sys.argv[1:] if a != "--graph"]
    if len(args) == 1 and os.path.isdir(args[0]):
        objs = sorted(glob.glob(os.path.join(args[0], "*.o")))
    else:
        objs = sorted(args)
    if not objs:
        sys.exit(f"check_layers: no objects in {args}")
    name = lambda o: os.path.basename(o).split(".")[0]
    table = {name(o): symbols(o) for o in objs}
    graph = {a: set() for a in table}
    for a, (_, used) in table.items():
        for b, (defined, _) in table.items():
            if a != b and used & defined:
                graph[a].add(b)
    # Depth-first search for a cycle; the order of finishing is a layering.
    state, order, stack = {}, [], []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cyc = stack[stack.index(v):] + [v]
                sys.exit("check_layers: a circle between source files: " + " -> ".join(cyc))
            if not state.get(v):
                visit(v)
        state[u] = 2
        stack.pop()
        order.append(u)

    for u in sorted(graph):
        if not state.get(u):
            visit(u)
    if "--graph" in sys.argv:
        for u in order:
            print(f"{u:10s} -> {', '.join(sorted(graph[u])) or '-'}")
    print(f"check_layers: {len(graph)} source files, calls run one way (no circle)")


if __name__ == "__main__":
    main()
