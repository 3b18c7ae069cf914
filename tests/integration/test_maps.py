#!/usr/bin/env python3
"""heapscope maps: a live process against pmap -x, and a trace's snapshots."""
import json
import os
import re
import shutil
import subprocess

import hstest as T
from hstest import check, eq

MiB = 1 << 20
ROW = re.compile(r"^([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+(\d+)\s+([-rwxsR]{5})\s")
TOTAL = re.compile(r"^total kB\s+(\d+)\s+(\d+)\s+(\d+)\s*$")


class Waiting:
    """mem_mmap --wait, stopped at "ready" until the test closes its input."""

    def __enter__(self):
        self.p = subprocess.Popen([T.build("mem_mmap"), "--wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        line = self.p.stdout.readline()
        if line != "ready\n":
            self.p.kill()
            raise T.Fail(f"mem_mmap --wait said {line!r}")
        return self.p.pid

    def __exit__(self, *exc):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def maps(*args, rc=0):
    T.need_heapscope()
    p = T.run([T.HEAPSCOPE, "maps", *args])
    check(not T.crashed(p), f"maps crashed: {T.tail(p.stderr)}")
    eq(p.returncode, rc, f"maps {' '.join(args)} exit status ({T.tail(p.stderr)})")
    return p


def rows_and_total(text):
    rows = [m.groups() for m in map(ROW.match, text.splitlines()) if m]
    totals = [m.groups() for m in map(TOTAL.match, text.splitlines()) if m]
    check(totals, f"no 'total kB' line in {T.tail(text)}")
    return rows, tuple(map(int, totals[0]))


@T.test("maps PID agrees with pmap -x, mapping by mapping and in total")
def _():
    pmap = shutil.which("pmap")
    if not pmap:
        raise T.Skip("pmap not installed")
    with Waiting() as pid:
        ours = maps(str(pid), "--pmap").stdout
        theirs = T.run([pmap, "-x", str(pid)])
        check(theirs.returncode == 0, f"pmap failed: {T.tail(theirs.stderr)}")
    our_rows, our_total = rows_and_total(ours)
    their_rows, their_total = rows_and_total(theirs.stdout)
    eq(our_total, their_total, "total kB (Kbytes, RSS, Dirty)")
    eq(len(our_rows), len(their_rows), "mappings")
    eq(our_rows, their_rows, "rows (address, Kbytes, RSS, Dirty, mode)")


@T.test("maps PID --json: groups add up to the total; the grouped view says the same")
def _():
    with Waiting() as pid:
        doc = json.loads(maps(str(pid), "--json").stdout)
        text = maps(str(pid), "--grouped").stdout
    eq(doc.get("format"), "heapscope-maps", "format")
    eq(doc.get("pid"), pid, "pid")
    snap = doc["snapshots"][0]
    total = snap["total"]
    for k in ("mappings", "size_bytes", "rss_bytes", "dirty_bytes", "anon_bytes"):
        eq(sum(g["total"][k] for g in snap["groups"]), total[k], f"groups' {k}")
        if k != "mappings":
            eq(sum(m[k] for m in snap["mappings"]), total[k], f"mappings' {k}")
    kinds = {g["kind"] for g in snap["groups"]}
    check({"stacks", "library", "kernel"} <= kinds, f"kinds {sorted(kinds)}")  # no malloc: no heap
    libs = [g["name"] for g in snap["groups"] if g["kind"] == "library"]
    check(any(os.path.basename(n).startswith("libc.so") for n in libs), f"no libc group: {libs}")
    # without a trace, the 1 MiB and 4 MiB it mapped and wrote are anonymous memory;
    # the kernel may merge them with a neighbour's few pages (the loader's)
    anon = sum(m["rss_bytes"] for m in snap["mappings"] if m["kind"] == "anonymous" and m["rss_bytes"] >= MiB)
    check(5 * MiB <= anon <= 5 * MiB + 64 * 1024, f"anonymous mappings of a MiB or more hold {anon} B")
    line = [l for l in text.splitlines() if l.startswith("total kB")]
    check(line, f"grouped view without total: {T.tail(text)}")
    nums = list(map(int, line[0].split()[2:]))
    eq(nums[:4], [total["mappings"], total["size_bytes"] // 1024, total["rss_bytes"] // 1024,
                  total["dirty_bytes"] // 1024], "grouped total line")


@T.once
def mmap_trace():
    path, _ = T.record(T.build("mem_mmap"), out=os.path.join(T.TMP, "maps_mem_mmap.hst"))
    return path


@T.test("maps TRACE: the exit snapshot shows the program's 5 MiB as mmap")
def _():
    doc = json.loads(maps(mmap_trace(), "--json", "--at", "exit").stdout)
    eq([s["at"] for s in doc["snapshots"]], ["exit"], "snapshots")
    snap = doc["snapshots"][0]
    mm = [g for g in snap["groups"] if g["kind"] == "mmap"]
    eq(len(mm), 1, "mmap groups")
    # whole mappings: one the kernel merged with a neighbour (the loader's pages,
    # heapscope's own buffer) counts whole
    size, rss = mm[0]["total"]["size_bytes"], mm[0]["total"]["rss_bytes"]
    check(5 * MiB <= rss <= size <= 6 * MiB, f"mmap group: {size} B, {rss} B resident")
    total = snap["total"]
    eq(sum(g["total"]["rss_bytes"] for g in snap["groups"]), total["rss_bytes"], "groups' RSS")
    text = maps(mmap_trace()).stdout
    check("at exit" in text and "total kB" in text and "mmap (the program's own)" in text,
          f"text view: {T.tail(text, 12)}")


@T.test("maps: errors are one line, with the next step")
def _():
    p = maps("999999999", rc=1)
    check(p.stderr.startswith("heapscope: ") and p.stderr.count("\n") == 1 and ";" in p.stderr,
          f"stderr {p.stderr!r}")
    p = maps("--bogus", "1", rc=2)
    check(p.stderr.startswith("heapscope: maps: unknown option"), f"stderr {p.stderr!r}")
    maps(rc=2)
    maps("1", "--at", "noon", rc=2)
    junk = os.path.join(T.TMP, "not-a-trace")
    with open(junk, "w") as f:
        f.write("hello\n")
    p = maps(junk, rc=1)
    check(p.stderr.startswith("heapscope: ") and p.stderr.count("\n") == 1, f"stderr {p.stderr!r}")


if __name__ == "__main__":
    T.main()
