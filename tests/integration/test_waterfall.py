#!/usr/bin/env python3
"""Memory beyond the heap: usable bytes, growth chains, the program's own
mappings and the waterfall from bytes requested to RSS, on programs whose
numbers are known (tests/programs/mem_*.c) and on the seed's CSV loader."""
import os
import re
import shutil

import hstest as T
from hstest import check, eq

MiB = 1 << 20
ANON_STEPS_END = "unexplained"     # the step that ends the anonymous part
HEAP_STEPS_END = "not_resident"    # the step that ends the heap part


@T.once
def small():
    path, _ = T.record(T.build("mem_small"))
    return T.report_json(path)


@T.once
def growth_run():
    path, p = T.record(T.build("mem_growth"))
    m = re.search(r"chains (\d+) reallocs (\d+) moves (\d+) copied (\d+) max (\d+) final (\d+) slack (\d+)",
                  p.stdout)
    check(m, f"mem_growth printed no numbers: {p.stdout!r}")
    keys = ("chains", "reallocs", "moves", "copied_bytes", "max_bytes", "final_bytes", "slack_bytes")
    return T.report_json(path), dict(zip(keys, map(int, m.groups())))


@T.once
def mmap_doc():
    path, _ = T.record(T.build("mem_mmap"))
    return T.report_json(path)


def waterfall(doc, at):
    w = doc.get("waterfall", {}).get(at)
    check(isinstance(w, dict), f"no waterfall at {at}: {doc.get('waterfall')!r}")
    return w


def step(w, name):
    found = [s for s in w["steps"] if s["step"] == name]
    eq(len(found), 1, f"steps named {name}")
    return found[0]["bytes"]


def check_sums(w, what):
    """The steps add up: to heap RSS, to anonymous RSS, to RSS; unexplained is reported."""
    total, at = 0, {}
    for s in w["steps"]:
        total += s["bytes"]
        eq(s["total"], total, f"{what}: running total at {s['step']}")
        at[s["step"]] = total
    eq(at[HEAP_STEPS_END], w["heap_rss_bytes"], f"{what}: steps to heap RSS")
    eq(at[ANON_STEPS_END], w["anon_rss_bytes"], f"{what}: steps to anonymous RSS")
    eq(total, w["rss_bytes"], f"{what}: all steps, RSS")
    eq(w["unexplained_bytes"], step(w, "unexplained") + step(w, "unexplained_shared"), f"{what}: unexplained")
    share = w["unexplained_bytes"] / w["anon_rss_bytes"] if w["anon_rss_bytes"] else 0.0
    check(abs(w["unexplained_share"] - share) < 1e-3, f"{what}: unexplained_share {w['unexplained_share']}")
    kinds = sum(k["rss_bytes"] for k in w["by_kind"])
    eq(kinds, w["rss_bytes"], f"{what}: RSS by kind")
    eq(sum(k["anon_bytes"] for k in w["by_kind"]), w["anon_rss_bytes"], f"{what}: anonymous RSS by kind")


@T.test("mem_small: malloc(1) costs 24 usable bytes, 23 of them rounding, plus an 8-byte header")
def _():
    d = small()
    s = d["summary"]
    T.summary_eq(s, {"allocations": 1000, "leaked_bytes": 1000, "leaked_blocks": 1000,
                     "peak_usable_bytes": 24000, "leaked_usable_bytes": 24000})
    w = waterfall(d, "exit")
    eq(w["live_blocks"], 1000, "live blocks at exit")
    eq((step(w, "requested"), step(w, "usable"), step(w, "headers")), (1000, 23000, 8000),
       "requested, rounding, headers")
    eq(w["chunk_bytes"], 32000, "chunks at exit")
    check(w["allocator_stats"], "no mallinfo2 sample at exit")
    # glibc counts its thread cache's chunk in use too: a few hundred bytes, not less
    check(0 <= step(w, "allocator_in_use") < 4096, f"allocator_in_use {step(w, 'allocator_in_use')}")


@T.test("mem_small: the waterfall adds up, at exit and at peak RSS")
def _():
    d = small()
    check_sums(waterfall(d, "exit"), "exit")
    if d["waterfall"]["peak"] is not None:
        check_sums(waterfall(d, "peak"), "peak")


@T.test("mem_growth: 3 chains of 12 reallocs at grow(), moves and copies as the program counted them")
def _():
    d, want = growth_run()
    first = T.markers(T.source_of("mem_growth"))["first"]
    found = [g for g in d["growth"] if any(T.base(f) == "mem_growth.c" and f.get("line") == first
                                          for f in g["stack"][:2])]
    eq(len(found), 1, f"growth entries at mem_growth.c:{first} (have {len(d['growth'])})")
    got = {k: found[0][k] for k in want}
    eq(got, want, "growth chain")
    eq(found[0]["longest"], 12, "longest chain")
    check(want["moves"] and want["copied_bytes"], f"no block moved: {want}")  # the fences make some move


@T.test("mem_mmap: calls, peak and exit of the program's own mappings")
def _():
    d = mmap_doc()
    s = d["summary"]
    eq(s["map_calls"], {"mmap": 3, "munmap": 1, "mremap": 1, "brk": 0, "sbrk": 0}, "map_calls")
    T.summary_eq(s, {"peak_mapped_bytes": 6 * MiB, "leaked_mapped_bytes": 5 * MiB, "leaked_mapped_regions": 2,
                     "allocations": 0})
    m = T.markers(T.source_of("mem_mmap"))
    peak = {e["stack"][0].get("line"): e["bytes"] for e in d["peak_mapped"]}
    eq(peak, {m["map_a"]: 1 * MiB, m["map_b"]: 2 * MiB, m["map_c"]: 3 * MiB}, "peak_mapped by line")
    leaks = {e["stack"][0].get("line"): e["bytes"] for e in d["leaks_mapped"]}
    eq(leaks, {m["map_a"]: 1 * MiB, m["remap"]: 4 * MiB}, "leaks_mapped by line")
    check(all(e["kind"] == "mmap" for e in d["peak_mapped"] + d["leaks_mapped"]), "entries not marked mmap")
    eq(d["peak"], [], "heap peak entries")


@T.test("mem_mmap: the 5 MiB it wrote are the waterfall's mmap step at exit")
def _():
    w = waterfall(mmap_doc(), "exit")
    check_sums(w, "exit")
    eq(step(w, "mmap"), 5 * MiB, "mmap step")
    eq(w["mapped_bytes"], 5 * MiB, "mapped bytes")
    mmap_kind = [k for k in w["by_kind"] if k["kind"] == "mmap"]
    eq(len(mmap_kind), 1, "mmap groups")
    # by kind counts whole mappings: one the kernel merged with a neighbour (the
    # loader's pages, heapscope's own buffer) counts whole
    check(5 * MiB <= mmap_kind[0]["size_bytes"] <= 6 * MiB, f"mmap group {mmap_kind[0]}")


@T.test("text report: WATERFALL, GROWTH and [mmap] entries")
def _():
    path, _ = T.record(T.build("mem_mmap"), out=os.path.join(T.TMP, "mem_mmap_text.hst"))
    out = T.report(path).stdout
    for want in ("WATERFALL  at exit", "= anonymous RSS", "= RSS", "unexplained:", "[mmap]",
                 "mapped by the program"):
        check(want in out, f"text report has no {want!r}")
    path, _ = T.record(T.build("mem_growth"), out=os.path.join(T.TMP, "mem_growth_text.hst"))
    out = T.report(path).stdout
    check("GROWTH" in out and "3 chains, 36 reallocs" in out and "reserve capacity up front" in out,
          f"GROWTH section: {T.tail(out, 30)}")


# ---- the seed story ---------------------------------------------------------

RUST_SRC = os.path.join(T.EXAMPLES, "csv-rust", "src", "main.rs")


@T.once
def csv_doc():
    cargo = None
    for c in (os.environ.get("CARGO"), shutil.which("cargo"), os.path.expanduser("~/.cargo/bin/cargo")):
        if c and os.access(c, os.X_OK):
            cargo = c
            break
    if not cargo:
        raise T.Skip("cargo not installed")
    target = os.path.join(T.BUILD, "examples", "csv-rust")
    p = T.run([cargo, "build", "--release", "--offline", "--locked", "-q",
               "--manifest-path", os.path.join(T.EXAMPLES, "csv-rust", "Cargo.toml")],
              env=dict(os.environ, CARGO_TARGET_DIR=target))
    check(p.returncode == 0, f"cargo build failed: {T.tail(p.stderr)}")
    work = os.path.join(T.TMP, "csv")
    os.makedirs(work, exist_ok=True)
    p = T.run(["python3", os.path.join(T.EXAMPLES, "gen_csv.py"), "-o", os.path.join(work, "example.csv")])
    check(p.returncode == 0, f"gen_csv.py failed: {T.tail(p.stderr)}")
    path, _ = T.record(os.path.join(target, "release", "heaptrace_csv"), cwd=work)
    return T.report_json(path)


@T.test("csv-rust: growth names the rows Vec grown to 16384 x 24 bytes at main.rs's collect")
def _():
    d = csv_doc()
    collect = T.line_of(RUST_SRC, ".collect(),")
    rows = [g for g in d["growth"] if g["max_bytes"] == 16384 * 24]
    eq(len(rows), 1, f"growth entries up to 393216 B: {[(g['chains'], g['max_bytes']) for g in d['growth']]}")
    g = rows[0]
    eq((g["chains"], g["reallocs"]), (1, 12), "rows Vec: chains, reallocs (capacity 4 to 16384)")
    check(any(T.base(f) == "main.rs" and f.get("line") == collect for f in g["stack"]),
          f"rows Vec chain not at main.rs:{collect}: {T.fmt_stack(g['stack'], 20)}")


@T.test("csv-rust: at exit the waterfall names at least 90% of anonymous RSS")
def _():
    w = waterfall(csv_doc(), "exit")
    check_sums(w, "exit")
    check(w["unexplained_share"] <= 0.10,
          f"unexplained {w['unexplained_bytes']} of {w['anon_rss_bytes']} anonymous bytes")


@T.test("csv-rust: at peak RSS the heap holds what the rows need, and the steps add up")
def _():
    d = csv_doc()
    w = d["waterfall"]["peak"]
    if w is None:
        raise T.Fail("no waterfall at peak RSS")
    check_sums(w, "peak")
    check(w["requested_bytes"] <= w["usable_bytes"] <= w["chunk_bytes"], "requested <= usable <= chunks")


if __name__ == "__main__":
    T.main()
