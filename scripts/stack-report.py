#!/usr/bin/env python3
"""Worst-case stack depth from GCC's -fcallgraph-info=su output (.ci files).

Reads every .ci file under the given directories, joins the per-file graphs
into one, and for each root function prints its own frame, the deepest call
chain below it and that chain's total. Indirect calls (function pointers, e.g.
the crypto port) and calls into libc/libgcc count as 0 and are flagged, as is
recursion. Report only: it never fails a build.

usage: stack-report.py [--roots-from DIR]... [--static] [--top N] DIR...
  --roots-from DIR  report the global functions defined in DIR's .ci files
                    (repeatable; default: every global function found)
  --static          with --roots-from, report file-static functions too
"""
import argparse
import os
import re
import sys

NODE = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
BYTES = re.compile(r'\\n(\d+) bytes \(([^)]*)\)')


def ci_files(d):
    for root, _dirs, files in os.walk(d):
        for f in files:
            if f.endswith(".ci"):
                yield os.path.join(root, f)


def load(dirs):
    frames = {}  # title -> (bytes, qualifier, short name)
    edges = {}  # title -> set(target titles)
    for d in dirs:
        for path in ci_files(d):
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = NODE.match(line)
                    if m:
                        title, label = m.groups()
                        b = BYTES.search(label)
                        if b:
                            frames[title] = (int(b.group(1)), b.group(2), label.split("\\n")[0])
                        continue
                    m = EDGE.match(line)
                    if m:
                        edges.setdefault(m.group(1), set()).add(m.group(2))
    return frames, edges


def analyse(frames, edges):
    memo = {}  # title -> (total, chain, flags)

    def visit(t, stack):
        if t in memo:
            return memo[t]
        if t in stack:
            return 0, [], {"recursion"}
        if t == "__indirect_call":
            return 0, [], {"indirect"}
        if t not in frames:
            return 0, [], {"extern:" + t}
        own, qual, _name = frames[t]
        flags = set()
        if qual != "static":
            flags.add("dynamic:" + t)
        best, best_chain = 0, []
        stack.add(t)
        for c in sorted(edges.get(t, ())):
            tot, chain, fl = visit(c, stack)
            flags |= fl
            if tot > best or (not best_chain and chain):
                best, best_chain = tot, chain
        stack.discard(t)
        res = (own + best, [t] + best_chain, flags)
        if "recursion" not in flags:
            memo[t] = res
        return res

    return visit


def short(t, frames):
    return frames[t][2] if t in frames else t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots-from", action="append", default=[])
    ap.add_argument("--static", action="store_true")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()

    frames, edges = load(a.dirs)
    if a.roots_from:
        rf, _ = load(a.roots_from)
        roots = [t for t in rf if a.static or ":" not in t]
    else:
        roots = [t for t in frames if ":" not in t]
    visit = analyse(frames, edges)
    rows = []
    for r in roots:
        tot, chain, flags = visit(r, set())
        rows.append((tot, r, chain, flags))
    rows.sort(key=lambda x: (-x[0], x[1]))
    print(f"  {'worst-case':>10}  {'own':>5}  function  [deepest chain]")
    for tot, r, chain, flags in rows[: a.top]:
        notes = []
        if "indirect" in flags:
            notes.append("+indirect calls")
        if "recursion" in flags:
            notes.append("RECURSION")
        if any(f.startswith("dynamic:") for f in flags):
            notes.append("DYNAMIC frame")
        ext = sorted({f[7:].rsplit("/", 1)[-1] for f in flags if f.startswith("extern:")})
        if ext:
            notes.append("+" + ",".join(ext[:4]) + (",..." if len(ext) > 4 else ""))
        path = " > ".join(short(t, frames) for t in chain[1:6])
        if len(chain) > 6:
            path += " > ..."
        note = f"  ({'; '.join(notes)})" if notes else ""
        print(f"  {tot:>10}  {frames[r][0]:>5}  {short(r, frames)}"
              + (f"  [{path}]" if path else "") + note)
    if len(rows) > a.top:
        print(f"  ... {len(rows) - a.top} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
