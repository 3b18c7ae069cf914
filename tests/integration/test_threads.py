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
    return T.report_json(path, "--top", "0")


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
    # glibc's exit frees the last thread's TLS vector, main's latest allocation:
    # that one is temporary too, by the definition.
    others = [x for x in d["temporary"] if x is not e]
    check(all(not any(T.base(f) == "threads.c" and T.fn(f) != "main" for f in x["stack"]) for x in others),
          "another temporary entry in threads.c")
    eq(d["summary"]["temporary"], sum(x["count"] for x in d["temporary"]), "summary.temporary vs entries")


@T.test("leaks: 10 blocks of 64 bytes from worker")
def _():
    d = doc()
    T.summary_eq(d["summary"], {"leaked_bytes": LEAK_BLOCKS * LEAK_SIZE, "leaked_blocks": LEAK_BLOCKS})
    e = T.one_entry_at(d, "leaks", "threads.c", M["leak"])
    eq((e["count"], e["bytes"]), (LEAK_BLOCKS, LEAK_BLOCKS * LEAK_SIZE), "leak entry (count, bytes)")
    check(any(T.fn(f) == "worker" for f in e["stack"]), f"no worker in {T.fmt_stack(e['stack'])}")


@T.test("valgrind agrees (but for the TLS vectors)")
def _():
    # pthread_create callocs each thread's TLS vector (DTV), 16 bytes a slot,
    # with a slot per loaded module that has TLS. libheapscope.so and its
    # libunwind add such modules, so under heapscope each DTV is a few slots
    # bigger than under valgrind: the program really allocates more. Every
    # other number must match; the bytes differ by whole slots of the DTVs.
    d = doc()
    s = d["summary"]
    vg = T.valgrind(prog())
    bad = [f"{k}: heapscope {s.get(k)} valgrind {v}" for k, v in vg.items()
           if k != "allocated_bytes" and s.get(k) != v]
    check(not bad, "; ".join(bad))
    dtv = [e for e in d["allocations"] if any(T.fn(f) == "allocate_dtv" for f in e["stack"])]
    n = sum(e["count"] for e in dtv)
    eq(n, THREADS, "DTV allocations")
    diff = s["allocated_bytes"] - vg["allocated_bytes"]
    check(diff >= 0 and diff % (16 * n) == 0 and diff // (16 * n) <= 8,
          f"allocated_bytes: heapscope {s['allocated_bytes']} valgrind {vg['allocated_bytes']}: "
          f"{diff} is not a few 16-byte slots in each of {n} DTVs")
    eq(s["allocated_bytes"] - sum(e["bytes"] for e in dtv), PAIR_BYTES + LEAK_BLOCKS * LEAK_SIZE,
       "allocated_bytes without the DTVs")


if __name__ == "__main__":
    T.main()
