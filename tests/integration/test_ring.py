#!/usr/bin/env python3
"""The ring protocol's watermark under stress (HEAPSCOPE_RING), both ways.

ring_stress.c runs two processes of 8 threads each (more than the cores)
allocating in bursts, stopped at random instructions by a spinning signal
handler, while the recorder merges their rings. An event whose time lies
below a watermark the recorder already wrote past is written late, at the
time of the one before: the recorder says so on stderr ("came after later
ones"), and a recording with it fails here. Every event must be there:
exact counts per line, each burst block temporary (its thread's order kept),
no block freed before its allocation or allocated while live (the threads'
order around the shared chain kept).
"""
import hstest as T
from hstest import eq

SRC = T.source_of("ring_stress")
M = T.markers(SRC)
THREADS, ROUNDS, PROCS = 8, 30000, 2
BURSTS = PROCS * THREADS * sum(1 + r % 8 for r in range(ROUNDS))
CHAIN = PROCS * THREADS * ROUNDS
BURST_SIZE, CHAIN_SIZE = 48, 200


def record(ring, *args, clock="auto"):
    prog = T.build("ring_stress", ("-pthread",))
    return T.record_env(prog, (*args, str(THREADS), str(ROUNDS)), f"ring_{ring}_{clock}{''.join(args)}.hst",
                        HEAPSCOPE_RING=ring, HEAPSCOPE_CLOCK=clock)


def at(doc, kind, line):
    """count and bytes of doc[kind] at ring_stress.c:line, over every process."""
    found = T.entries_at(doc, kind, "ring_stress.c", line)
    return sum(e["count"] for e in found), sum(e["bytes"] for e in found)


def check_stress(ring, *args, warn="", clock="auto"):
    trace, p = record(ring, *args, clock=clock)
    if ring == "membarrier" and p.returncode == 2 and "cannot be used here" in p.stderr:
        raise T.Skip("membarrier(2) cannot be used on this machine")
    eq(p.returncode, 0, f"record exit with HEAPSCOPE_RING={ring}: {T.tail(p.stderr)}")
    eq(p.stdout, "ring_stress: done\n", "program stdout")
    lines = p.stderr.splitlines()
    eq(lines[:-1], [warn] if warn else [], "stderr before the last line")
    doc = T.report_json(trace, "--top", "0")
    s = doc["summary"]
    eq(s.get("complete"), True, "summary.complete")
    eq(at(doc, "allocations", M["burst"]), (BURSTS, BURSTS * BURST_SIZE), "burst allocations (count, bytes)")
    eq(at(doc, "temporary", M["burst"]), (BURSTS, BURSTS * BURST_SIZE), "burst temporaries (count, bytes)")
    eq(at(doc, "allocations", M["chain"]), (CHAIN, CHAIN * CHAIN_SIZE), "chain allocations (count, bytes)")
    eq(at(doc, "temporary", M["chain"]), (0, 0), "chain temporaries")
    eq((s["leaked_blocks"], s["reused_live"]), (0, 0), "leaked blocks, allocations at a live address")


@T.test("HEAPSCOPE_RING=membarrier: every event, in time order, under preemption")
def _():
    check_stress("membarrier")


@T.test("HEAPSCOPE_RING=membarrier, HEAPSCOPE_CLOCK=monotonic: the same with clock_gettime")
def _():
    check_stress("membarrier", clock="monotonic")


@T.test("HEAPSCOPE_RING=fence: the same with the fenced protocol")
def _():
    check_stress("fence")


@T.test("a process that cannot register with membarrier writes fenced beside light ones")
def _():
    check_stress("membarrier", "-s", warn="heapscope: HEAPSCOPE_RING=membarrier, but 1 process could not register "
                 "with membarrier(2) and used the fenced ring protocol")


@T.test("HEAPSCOPE_RING=auto: the same, without a word on stderr")
def _():
    check_stress("auto", "-s")


T.main()
