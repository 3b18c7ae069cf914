#!/usr/bin/env python3
"""threads.c end to end: four threads, each with known temporaries and leaks."""
import hstest as T
from hstest import check, eq

SRC = T.source_of("threads")
M = T.markers(SRC)
THREADS, PAIRS, PAIR_SIZE, LEAK_SIZE = 4, 1000, 100, 64
PAIR_BYTES = sum(PAIRS * (PAIR_SIZE + t) for t in range(THREADS))
LEAK_BLOCKS = sum(t + 1 for t in range(THREADS))


def prog():
    return T.build("threads", ["-pthread"])


@T.once
def doc():
    path, p = T.record(prog())
    eq(p.stdout, "threads: joined\n", "program stdout under record")
    return T.report_json(path)


@T.test("the workers' allocations are all there")
def _():
    d = doc()
    e = T.one_entry_at(d, "allocations", "threads.c", M["pair"])
    eq((e["count"], e["bytes"]), (THREADS * PAIRS, PAIR_BYTES), "pairs (count, bytes)")
    e = T.one_entry_at(d, "allocations", "threads.c", M["leak"])
    eq((e["count"], e["bytes"]), (LEAK_BLOCKS, LEAK_BLOCKS * LEAK_SIZE), "leaked blocks (count, bytes)")
    s = d["summary"]
    check(s["allocations"] >= THREADS * PAIRS + LEAK_BLOCKS, f"allocations {s['allocations']} too few")
    eq(s.get("complete"), True, "summary.complete")


@T.test("each thread's pairs are temporary")
def _():
    d = doc()
    e = T.one_entry_at(d, "temporary", "threads.c", M["pair"])
    eq((e["count"], e["bytes"]), (THREADS * PAIRS, PAIR_BYTES), "temporary pairs (count, bytes)")
    eq(d["summary"]["temporary"], THREADS * PAIRS, "summary.temporary")


@T.test("leaks: 10 blocks of 64 bytes from worker")
def _():
    d = doc()
    T.summary_eq(d["summary"], {"leaked_bytes": LEAK_BLOCKS * LEAK_SIZE, "leaked_blocks": LEAK_BLOCKS})
    e = T.one_entry_at(d, "leaks", "threads.c", M["leak"])
    eq((e["count"], e["bytes"]), (LEAK_BLOCKS, LEAK_BLOCKS * LEAK_SIZE), "leak entry (count, bytes)")
    check(any(T.fn(f) == "worker" for f in e["stack"]), f"no worker in {T.fmt_stack(e['stack'])}")


@T.test("valgrind agrees")
def _():
    T.agrees_with_valgrind(doc()["summary"], prog())


if __name__ == "__main__":
    T.main()
