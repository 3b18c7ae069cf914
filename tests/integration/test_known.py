#!/usr/bin/env python3
"""known.c end to end: every number of the report is known in advance."""
import os
import stat

import hstest as T
from hstest import check, eq

SRC = T.source_of("known")
M = T.markers(SRC)
MiB = 1 << 20


@T.once
def trace():
    prog = T.build("known")
    path, p = T.record(prog)
    eq(p.stdout, "known: 100 blocks made\n", "program stdout under record")
    return path


@T.once
def doc():
    return T.report_json(trace())


@T.test("summary has the exact totals")
def _():
    s = doc()["summary"]
    T.summary_eq(s, {"allocations": 127, "frees": 117, "allocated_bytes": 25 * 200 + 3 * MiB + 100 * 48,
                     "temporary": 25, "peak_heap_bytes": 3 * MiB,
                     "leaked_bytes": 480, "leaked_blocks": 10})
    eq(s.get("complete"), True, "summary.complete")
    eq(s.get("exit_code"), 0, "summary.exit_code")
    # RSS is sampled (docs/definitions.md): a 5 ms run can miss the 3 MiB spike.
    check(s["peak_rss_bytes"] > 0, "peak_rss_bytes is 0")


@T.test("leak names g (inlined) in f, with file:line")
def _():
    leaks = doc()["leaks"]
    eq(len(leaks), 1, "number of leak entries")
    e = leaks[0]
    eq((e["bytes"], e["count"]), (480, 10), "leak entry (bytes, count)")
    st = e["stack"]
    gi = [i for i, f in enumerate(st) if T.fn(f) == "g"]
    check(gi, f"no frame g in {T.fmt_stack(st)}")
    i = gi[0]
    g, f = st[i], st[i + 1] if i + 1 < len(st) else {}
    eq(g.get("inlined"), True, "g.inlined")
    eq((T.base(g), g.get("line")), ("known.c", M["alloc"]), "g file:line")
    eq(T.fn(f), "f", f"frame after g in {T.fmt_stack(st)}")
    check(not f.get("inlined"), "f is marked inlined; it is noinline")
    eq((T.base(f), f.get("line")), ("known.c", M["call_g"]), "f file:line")
    mains = [x for x in st[i + 2:] if T.fn(x) == "main"]
    check(mains, f"no main after f in {T.fmt_stack(st)}")
    eq((T.base(mains[0]), mains[0].get("line")), ("known.c", M["call_f"]), "main file:line")
    check(all(x.get("module") for x in st[i:i + 2]), "frames of known without module")


@T.test("peak snapshot holds the 1 MiB and 2 MiB blocks")
def _():
    d = doc()
    peak = d["peak"]
    check(peak, "peak list is empty")
    top = peak[0]
    eq((top["bytes"], top["count"]), (2 * MiB, 1), "top peak entry (bytes, count)")
    check(any(T.base(f) == "known.c" and f.get("line") == M["big2"] for f in top["stack"]),
          f"top peak entry not at known.c:{M['big2']}: {T.fmt_stack(top['stack'])}")
    one = T.one_entry_at(d, "peak", "known.c", M["big1"])
    eq((one["bytes"], one["count"]), (MiB, 1), "1 MiB peak entry")
    eq(sum(e["bytes"] for e in peak), d["summary"]["peak_heap_bytes"], "sum of peak entries")


@T.test("temporaries are the 25 blocks of 200 bytes")
def _():
    d = doc()
    e = T.one_entry_at(d, "temporary", "known.c", M["temp"])
    eq((e["count"], e["bytes"]), (25, 5000), "temporary entry (count, bytes)")
    eq(sum(x["count"] for x in d["temporary"]), 25, "sum of temporary counts")


@T.test("allocations by stack")
def _():
    d = doc()
    for mark, count, size in (("alloc", 100, 4800), ("temp", 25, 5000), ("big1", 1, MiB), ("big2", 1, 2 * MiB)):
        e = T.one_entry_at(d, "allocations", "known.c", M[mark])
        eq((e["count"], e["bytes"]), (count, size), f"allocations at LINE:{mark} (count, bytes)")


@T.test("valgrind agrees")
def _():
    T.agrees_with_valgrind(doc()["summary"], T.build("known"))


@T.test("text report shows the leak's file:line")
def _():
    p = T.report(trace())
    check(f"known.c:{M['alloc']}" in p.stdout, f"no known.c:{M['alloc']} in the text report")


@T.test("--top 1 keeps one entry per list, same summary")
def _():
    d = T.report_json(trace(), "--top", "1")
    for k in T.LISTS:
        check(len(d[k]) <= 1, f"--top 1: {len(d[k])} entries in {k}")
    eq(d["summary"], doc()["summary"], "summary with --top 1")
    T.report(trace(), "--top", "1")


@T.test("--depth 2 cuts every stack to 2 frames")
def _():
    d = T.report_json(trace(), "--depth", "2")
    for k in T.LISTS:
        for e in d[k]:
            check(1 <= len(e["stack"]) <= 2, f"--depth 2: {k} stack of {len(e['stack'])} frames")
    T.report(trace(), "--depth", "2")


@T.test("trace file mode is 0600")
def _():
    mode = stat.S_IMODE(os.stat(trace()).st_mode)
    eq(oct(mode), oct(0o600), "trace mode")


if __name__ == "__main__":
    T.main()
