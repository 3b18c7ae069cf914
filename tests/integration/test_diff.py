#!/usr/bin/env python3
"""heapscope diff: grow.c built twice (the new build allocates a known amount
more, from code whose line numbers and addresses all moved, compiled from
another directory); the diff shows exactly the extra allocations, per stack."""
import json
import os

import hstest as T
from hstest import check, eq

GROW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs_export", "grow.c")
SHIFT = 7  # lines added above the new build's code

# grow.c's header: base and new totals
BASE = {"peak_heap_bytes": 6884, "leaked_bytes": 640, "leaked_blocks": 10, "allocations": 65, "frees": 55,
        "allocated_bytes": 11784, "temporary": 50, "temporary_bytes": 5000}
NEW = {"peak_heap_bytes": 14372, "leaked_bytes": 960, "leaked_blocks": 15, "allocations": 89, "frees": 74,
       "allocated_bytes": 21272, "temporary": 70, "temporary_bytes": 7000}

# Per metric, the stacks (by the function that allocates) that grew and shrank, with their values.
CHANGES = {
    "peak": {"growth": {"cache": (0, 8192), "leak_some": (640, 960)}, "shrinkage": {"buffers": (2048, 1024)}},
    "leaked": {"growth": {"leak_some": (640, 960)}, "shrinkage": {}},
    "allocations": {"growth": {"churn": (50, 70), "leak_some": (10, 15), "cache": (0, 1)},
                    "shrinkage": {"buffers": (4, 2)}},
    "temporary": {"growth": {"churn": (50, 70)}, "shrinkage": {}},
    "bytes": {"growth": {"cache": (0, 8192), "churn": (5000, 7000), "leak_some": (640, 960)},
              "shrinkage": {"buffers": (2048, 1024)}},
}


def compile_grow(name, src, *defs):
    out = os.path.join(T.TMP, name)
    p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", *defs, "-o", out, src])
    check(p.returncode == 0, f"cannot compile grow.c: {T.tail(p.stderr)}")
    return out


@T.once
def traces():
    base = compile_grow("grow_base", GROW)
    # The new build from a copy elsewhere (its debug info names another
    # path) with lines added at the top (every line number moves).
    d = os.path.join(T.TMP, "v2")
    os.makedirs(d, exist_ok=True)
    with open(GROW) as f, open(os.path.join(d, "grow.c"), "w") as g:
        g.write("/* the next version */\n" * SHIFT + f.read())
    new = compile_grow("grow_new", os.path.join(d, "grow.c"), "-DNEW")
    out = []
    for prog in (base, new):
        path, p = T.record(prog)
        eq(p.stdout, "grow: done\n", f"{os.path.basename(prog)} stdout under record")
        out.append(path)
    return out


def diff(*args):
    T.need_heapscope()
    p = T.run([T.HEAPSCOPE, "diff", *args])
    check(not T.crashed(p), f"diff crashed: {T.tail(p.stderr)}")
    check(p.returncode == 0, f"diff {' '.join(args)} exit {p.returncode}: {T.tail(p.stderr)}")
    return p


def diff_json(base, new, *opts):
    p = diff(base, new, "--json", *opts)
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        raise T.Fail(f"diff --json is not JSON ({e}): {p.stdout[:200]!r}")
    eq((doc.get("format"), doc.get("version")), ("heapscope-diff", 1), "format, version")
    return doc


@T.once
def doc():
    return diff_json(*traces(), "--top", "0")


def site(entry):
    """The function that allocated: the first frame of the entry's stack."""
    return T.fn(entry["stack"][0]) if entry["stack"] else ""


@T.test("the traces have grow.c's exact totals")
def _():
    base, new = traces()
    T.summary_eq(T.report_json(base)["summary"], BASE)
    T.summary_eq(T.report_json(new)["summary"], NEW)


@T.test("summary: base, new and delta of every total")
def _():
    s = doc()["summary"]
    for k in BASE:
        eq(s.get(k), {"base": BASE[k], "new": NEW[k], "delta": NEW[k] - BASE[k]}, f"summary.{k}")


@T.test("stacks are matched by function and file across builds, lines and addresses moved")
def _():
    d = doc()
    eq(d["stacks"], {"matched": 4, "base_only": 0, "new_only": 1}, "stacks")
    # the allocation sites of the two builds are on different lines
    e = [x for x in d["metrics"]["leaked"]["growth"] if site(x) == "leak_some"][0]
    check(e["in_base"] and e["in_new"], "leak_some is not matched")
    eq(e["stack"][0]["line"], T.line_of(GROW, "leaked[i] = malloc(64);") + SHIFT, "leak_some's line (new build)")
    check(e["stack"][0]["file"].endswith("/v2/grow.c"), f"frames come from the new build: {e['stack'][0]}")


@T.test("per metric, exactly the stacks that grew and shrank, with their values")
def _():
    for metric, want in CHANGES.items():
        m = doc()["metrics"][metric]
        for side in ("growth", "shrinkage"):
            got = {site(e): (e["base"], e["new"]) for e in m[side]}
            eq(got, want[side], f"{metric} {side}")
            eq(m[f"{side}_total"], len(want[side]), f"{metric} {side}_total")
            for e in m[side]:
                eq(e["delta"], e["new"] - e["base"], f"{metric} {side} {site(e)} delta")
                check((e["delta"] > 0) == (side == "growth"), f"{metric} {side} {site(e)} has delta {e['delta']}")
            eq([e["delta"] for e in m[side]], sorted((e["delta"] for e in m[side]), key=lambda v: -abs(v)),
               f"{metric} {side} order (largest change first)")
        key = {"peak": "peak_heap_bytes", "leaked": "leaked_bytes", "allocations": "allocations",
               "temporary": "temporary", "bytes": "allocated_bytes"}[metric]
        eq((m["base"], m["new"]), (BASE[key], NEW[key]), f"metrics.{metric} totals")
    cache = [e for e in doc()["metrics"]["peak"]["growth"] if site(e) == "cache"][0]
    eq((cache["in_base"], cache["in_new"]), (False, True), "cache is only in the new build")
    eq(cache["new_totals"]["allocations"], 1, "cache's allocations")


@T.test("a trace against itself: nothing changed")
def _():
    base, _ = traces()
    d = diff_json(base, base)
    for k, v in d["summary"].items():
        check(v["delta"] in (0, None), f"summary.{k} delta {v['delta']}")
    for metric, m in d["metrics"].items():
        eq((m["growth"], m["shrinkage"]), ([], []), f"{metric} changes")
    eq(d["stacks"]["base_only"] + d["stacks"]["new_only"], 0, "unmatched stacks")


@T.test("swapped traces: every delta negated")
def _():
    base, new = traces()
    d = diff_json(new, base, "--top", "0")
    for k in BASE:
        eq(d["summary"][k]["delta"], BASE[k] - NEW[k], f"summary.{k} delta")
    got = {site(e): (e["base"], e["new"]) for e in d["metrics"]["peak"]["shrinkage"]}
    eq(got, {k: (v[1], v[0]) for k, v in CHANGES["peak"]["growth"].items()}, "peak shrinkage")


@T.test("text: the summary's changes and the stacks, with --top and --depth")
def _():
    base, new = traces()
    out = diff(base, new).stdout
    check("(+7,488 B)" in out, "text has no peak change (+7,488 B)")
    for line in ("leaked", "allocation calls", "temporary"):
        check(any(l.strip().startswith(line) for l in out.splitlines()), f"text has no {line} row")
    check("[only in new]" in out and "cache" in out, "text does not name the new cache stack")
    check("stacks 4 matched" in out, "text does not count the matched stacks")
    top1 = diff(base, new, "--top", "1", "--depth", "1").stdout
    check(top1.count("#2 ") == 0 and "more (--top N" in top1, "--top 1 shows more than one entry per list")
    peak = top1.split("PEAK", 1)[1].split("LEAKED", 1)[0]
    check("cache" in peak and "  main " not in peak, f"--depth 1 shows more than the allocating frame: {peak!r}")


@T.test("errors: one line, what to do, the right exit status")
def _():
    base, _ = traces()
    for args, rc in (([base], 2), ([], 2), ([base, base, base], 2), ([base, base, "--top", "x"], 2),
                     ([base, os.path.join(T.TMP, "missing.hst")], 1)):
        p = T.run([T.HEAPSCOPE, "diff", *args])
        eq(p.returncode, rc, f"exit status of diff {' '.join(args)}")
        eq(len(p.stderr.splitlines()), 1, f"stderr lines of diff {' '.join(args)}")
        check(p.stderr.startswith("heapscope: "), f"message: {p.stderr!r}")


T.main()
