#!/usr/bin/python3
"""Splits perf samples (perf script -F comm,sym output, call stacks) into categories by the frames they
contain: bench/profile keeps perf.data files with PERF_KEEP; then
  perf script -i FILE -F comm,sym | bench/stack_split.py ROOT_SYMBOL CATEGORY=SUBSTRING[,SUBSTRING...] ...
prints each category's share of all samples and of the samples under ROOT_SYMBOL (first match wins)."""
import sys

root = sys.argv[1]
cats = []
for arg in sys.argv[2:]:
    name, _, subs = arg.partition("=")
    cats.append((name, subs.split(",")))
total = under = 0
counts = {}
stack = []


def flush():
    global total, under
    if not stack:
        return
    total += 1
    if any(root in f for f in stack):
        under += 1
        for name, subs in cats:
            if any(s in f for f in stack for s in subs):
                counts[name] = counts.get(name, 0) + 1
                break
        else:
            counts["other"] = counts.get("other", 0) + 1


for line in sys.stdin:
    if not line.strip():
        flush()
        stack = []
    elif line.startswith((" ", "\t")):
        stack.append(line.strip())
flush()
print("samples: %d, under %s: %d (%.1f%%)" % (total, root, under, 100.0 * under / max(total, 1)))
for name, _ in cats + [("other", None)]:
    n = counts.get(name, 0)
    print("  %-28s %6.1f%% of %s, %5.1f%% of all" % (name, 100.0 * n / max(under, 1), root, 100.0 * n / max(total, 1)))
