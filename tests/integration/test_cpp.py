#!/usr/bin/env python3
"""cpp_new.cpp: new/delete, new[]/delete[], aligned and sized forms, one leak."""
import hstest as T
from hstest import check, eq

SRC = T.source_of("cpp_new")
M = T.markers(SRC)
# (marker, bytes) of each new-expression; each is one allocation.
NEWS = [("new", 40), ("new_array", 100), ("new_cookie", 56), ("new_aligned", 128), ("leak", 40)]


@T.once
def doc():
    path, p = T.record(T.build("cpp_new"))
    eq(p.stdout, "cpp_new: done\n", "program stdout under record")
    return T.report_json(path, "--top", "0")


@T.test("each new-expression is one allocation of known size")
def _():
    d = doc()
    bad = []
    for mark, size in NEWS:
        found = T.entries_at(d, "allocations", "cpp_new.cpp", M[mark])
        got = (sum(e["count"] for e in found), sum(e["bytes"] for e in found))
        if got != (1, size):
            bad.append(f"{mark} (line {M[mark]}): {got}, want {(1, size)}")
    check(not bad, "; ".join(bad))
    s = d["summary"]
    check(s["allocations"] >= len(NEWS), f"allocations {s['allocations']}")
    check(s["frees"] >= len(NEWS) - 1, f"frees {s['frees']}")


@T.test("the leaked new is the only leak")
def _():
    d = doc()
    T.summary_eq(d["summary"], {"leaked_bytes": 40, "leaked_blocks": 1})
    eq(len(d["leaks"]), 1, "number of leak entries")
    e = d["leaks"][0]
    eq((e["bytes"], e["count"]), (40, 1), "leak entry (bytes, count)")
    check(any(T.base(f) == "cpp_new.cpp" and f.get("line") == M["leak"] for f in e["stack"]),
          f"leak not at cpp_new.cpp:{M['leak']}: {T.fmt_stack(e['stack'])}")
    check(any(T.fn(f) == "main" for f in e["stack"]), "no main in the leak's stack")


@T.test("valgrind agrees")
def _():
    T.agrees_with_valgrind(doc()["summary"], T.build("cpp_new"))


if __name__ == "__main__":
    T.main()
