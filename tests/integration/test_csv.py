#!/usr/bin/env python3
"""The seed story's CSV loader, in Rust (examples/csv-rust) and in C (examples/csv-c)."""
import json
import os
import shutil

import hstest as T
from hstest import check, eq

CSV_DIR = os.path.join(T.TMP, "csv")
RUST_SRC = os.path.join(T.EXAMPLES, "csv-rust", "src", "main.rs")
C_SRC = os.path.join(T.EXAMPLES, "csv-c", "csv_load.c")
LINES, COLUMNS = 12427, 7


@T.once
def csv():
    """Generates example.csv (scale 1) and returns its fields, line by line."""
    os.makedirs(CSV_DIR, exist_ok=True)
    path = os.path.join(CSV_DIR, "example.csv")
    p = T.run(["python3", os.path.join(T.EXAMPLES, "gen_csv.py"), "-o", path])
    check(p.returncode == 0, f"gen_csv.py failed: {T.tail(p.stderr)}")
    eq(os.path.getsize(path), 999000, "example.csv size")
    with open(path) as f:
        rows = [line.rstrip("\n").split(",") for line in f]
    eq(len(rows), LINES, "example.csv lines")
    check(all(len(r) == COLUMNS and all(r) for r in rows), "example.csv: a row without 7 non-empty fields")
    return rows


def cargo():
    for c in (os.environ.get("CARGO"), shutil.which("cargo"), os.path.expanduser("~/.cargo/bin/cargo")):
        if c and os.access(c, os.X_OK):
            return c
    raise T.Skip("cargo not installed")


@T.once
def rust_binary():
    target = os.path.join(T.BUILD, "examples", "csv-rust")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    p = T.run([cargo(), "build", "--release", "--offline", "--locked", "-q",
               "--manifest-path", os.path.join(T.EXAMPLES, "csv-rust", "Cargo.toml")], env=env)
    check(p.returncode == 0, f"cargo build failed: {T.tail(p.stderr)}")
    return os.path.join(target, "release", "heaptrace_csv")


@T.once
def rust_doc():
    csv()
    path, _ = T.record(rust_binary(), cwd=CSV_DIR)
    return T.report_json(path, "--top", "0")


@T.test("rust: top peak entry is split_str / to_string at main.rs")
def _():
    d = rust_doc()
    split_line = T.line_of(RUST_SRC, "s.split(',').map(str::to_string).collect()")
    check(d["peak"], "peak list is empty")
    st = d["peak"][0]["stack"]
    check(any("split_str" in T.fn(f) or "to_string" in T.fn(f) for f in st),
          f"top peak entry names neither split_str nor to_string: {T.fmt_stack(st, 12)}")
    check(any(T.base(f) == "main.rs" and f.get("line") == split_line for f in st),
          f"top peak entry not at main.rs:{split_line}: {T.fmt_stack(st, 12)}")


@T.test("rust: the sheet is all freed, peak holds the fields")
def _():
    rows = csv()
    s = rust_doc()["summary"]
    field_bytes = sum(len(x) for r in rows for x in r)
    check(s["peak_heap_bytes"] >= field_bytes, f"peak_heap_bytes {s['peak_heap_bytes']} < field bytes {field_bytes}")
    check(s["allocations"] >= LINES * COLUMNS, f"allocations {s['allocations']} < {LINES * COLUMNS} fields")
    eq(s.get("complete"), True, "summary.complete")
    eq(s.get("exit_code"), 0, "summary.exit_code")


@T.test("rust: split_str makes one String per field and one Vec per line")
def _():
    rows, d = csv(), rust_doc()
    split_line = T.line_of(RUST_SRC, "s.split(',').map(str::to_string).collect()")
    at_split = T.entries_at(d, "allocations", "main.rs", split_line)
    strings = [e for e in at_split if any("to_string" in T.fn(f) for f in e["stack"])]
    eq((sum(e["count"] for e in strings), sum(e["bytes"] for e in strings)),
       (LINES * COLUMNS, sum(len(x) for r in rows for x in r)), "to_string (count, bytes)")
    # collect() allocates 4 slots, then grows to 8 at the fifth field: 2 calls a line.
    eq(sum(e["count"] for e in at_split), LINES * COLUMNS + 2 * LINES, "allocations at split_str")


def frames_of(doc):
    """Every frame of every stack of the report, without its address (which
    changes from run to run), counted."""
    seen = {}
    for k in T.LISTS:
        for e in doc[k]:
            for f in e["stack"]:
                key = json.dumps({x: v for x, v in f.items() if x != "address"}, sort_keys=True)
                seen[key] = seen.get(key, 0) + 1
    return seen


@T.test("rust: frames read from the symbol cache are the ones the debug info gives")
def _():
    csv()
    cache = os.path.join(T.TMP, "xdg-cache", "heapscope")
    out = os.path.join(T.TMP, "cache.hst")
    docs = []
    for opts in (["--no-cache"], [], []):  # afresh, then twice with the cache
        if os.path.exists(out):
            os.unlink(out)
        p = T.run([T.HEAPSCOPE, "record", *opts, "-o", out, "--", rust_binary()], cwd=CSV_DIR)
        eq(p.returncode, 0, f"record {' '.join(opts)} exit status")
        docs.append(frames_of(T.report_json(out, "--top", "0")))
        if not opts:
            check(any(n.startswith("sym-") for n in os.listdir(cache)), f"no cache file in {cache}")
    check(len(docs[0]) > 50, f"only {len(docs[0])} distinct frames")
    check(any('"inlined": true' in f for f in docs[0]) and any("libc" in f for f in docs[0]),
          "no inlined frame or no libc frame to compare")
    eq(docs[1], docs[0], "frames with the cache being filled vs without it")
    eq(docs[2], docs[0], "frames from the cache vs without it")


@T.test("rust: valgrind agrees")
def _():
    T.agrees_with_valgrind(rust_doc()["summary"], rust_binary(), cwd=CSV_DIR)


@T.once
def c_binary():
    out = os.path.join(T.TMP, "csv_load")
    p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-o", out, C_SRC])
    check(p.returncode == 0, f"cannot compile csv_load.c: {T.tail(p.stderr)}")
    return out


@T.once
def c_doc():
    csv()
    path, _ = T.record(c_binary(), cwd=CSV_DIR)
    return T.report_json(path, "--top", "0")


def totals_at(d, line):
    found = T.entries_at(d, "allocations", "csv_load.c", line)
    return sum(e["count"] for e in found), sum(e["bytes"] for e in found)


@T.test("c: one strdup per field, arrays doubled from 4")
def _():
    rows, d = csv(), c_doc()
    m = T.markers(C_SRC)
    nfields = LINES * COLUMNS
    field_bytes = sum(len(x) + 1 for r in rows for x in r)
    # The header and the rows are split from two lines of main: two stacks each.
    eq(totals_at(d, m["field"]), (nfields, field_bytes), "strdup (count, bytes)")
    # Each line's array: realloc(NULL, 4 slots), then to 8: 32 + 64 bytes.
    eq(totals_at(d, m["fields_grow"]), (2 * LINES, 96 * LINES), "field arrays (count, bytes)")
    caps = [4 << i for i in range(13)]  # 4 .. 16384 rows of 24 bytes
    e = T.one_entry_at(d, "allocations", "csv_load.c", m["rows_grow"])
    eq((e["count"], e["bytes"]), (len(caps), 24 * sum(caps)), "rows array (count, bytes)")
    s = d["summary"]
    T.summary_eq(s, {"leaked_bytes": 0, "leaked_blocks": 0, "frees": s["allocations"]})
    live = field_bytes + 64 * LINES + 24 * caps[-1]
    check(live <= s["peak_heap_bytes"] <= live + 8192, f"peak_heap_bytes {s['peak_heap_bytes']}, want {live} + stdio")


@T.test("c: valgrind agrees")
def _():
    T.agrees_with_valgrind(c_doc()["summary"], c_binary(), cwd=CSV_DIR)


if __name__ == "__main__":
    T.main()
