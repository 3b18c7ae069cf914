#!/usr/bin/env python3
"""family.c and pvalloc.c: each allocation function with known sizes."""
import os

import hstest as T
from hstest import check, eq

SRC = T.source_of("family")
M = T.markers(SRC)

# (marker, allocations, bytes) that each call adds; failing calls add nothing.
CALLS = [("calloc", 1, 120), ("realloc_null", 1, 40), ("grow_base", 1, 1000),
         ("grow_inplace", 1, 2000), ("pin", 1, 16), ("realloc_move", 1, 4000),
         ("reallocarray", 1, 3000), ("posix_memalign", 1, 100), ("aligned_alloc", 1, 128),
         ("memalign", 1, 100), ("valloc", 1, 1000)]


@T.once
def doc():
    path, p = T.record(T.build("family"))
    eq(p.stdout, "family: done\n", "program stdout under record")
    return T.report_json(path, "--top", "0")


@T.test("summary has the exact totals")
def _():
    s = doc()["summary"]
    T.summary_eq(s, {"allocations": 11, "frees": 11, "allocated_bytes": sum(b for _, _, b in CALLS),
                     "leaked_bytes": 0, "leaked_blocks": 0, "peak_heap_bytes": 4016})
    eq(s.get("complete"), True, "summary.complete")
    # libc's reallocarray calls realloc: recorded once, nothing dropped
    eq(s.get("dropped_events"), 0, "summary.dropped_events")


@T.test("each call is attributed to its line")
def _():
    d = doc()
    bad = []
    for mark, count, size in CALLS:
        found = T.entries_at(d, "allocations", "family.c", M[mark])
        got = (sum(e["count"] for e in found), sum(e["bytes"] for e in found))
        if got != (count, size):
            bad.append(f"{mark} (line {M[mark]}): {got}, want {(count, size)}")
    for mark in ("realloc_zero", "realloc_fail", "malloc_fail"):
        if T.entries_at(d, "allocations", "family.c", M[mark]):
            bad.append(f"{mark} (line {M[mark]}) counted, but returned no memory")
    check(not bad, "; ".join(bad))


@T.test("valgrind agrees")
def _():
    T.agrees_with_valgrind(doc()["summary"], T.build("family"))


@T.test("pvalloc counts whole pages")
def _():
    m = T.markers(T.source_of("pvalloc"))
    path, p = T.record(T.build("pvalloc"))
    eq(p.stdout, "pvalloc: done\n", "program stdout under record")
    d = T.report_json(path)
    page = os.sysconf("SC_PAGE_SIZE")
    a, b = (-(-n // page) * page for n in (5000, 8192))
    T.summary_eq(d["summary"], {"allocations": 2, "frees": 2, "allocated_bytes": a + b,
                                "peak_heap_bytes": a + b, "leaked_bytes": 0, "leaked_blocks": 0})
    for mark, size in (("pvalloc_5000", a), ("pvalloc_8192", b)):
        e = T.one_entry_at(d, "allocations", "pvalloc.c", m[mark])
        eq((e["count"], e["bytes"]), (1, size), f"{mark} (count, bytes)")


if __name__ == "__main__":
    T.main()
