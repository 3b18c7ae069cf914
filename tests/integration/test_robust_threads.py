#!/usr/bin/env python3
"""Threads, signals, fork and dlopen under heapscope: the events in the trace
are exactly the ones the program counted itself, and nothing deadlocks.

Each program prints its own counts at the end; its allocations come from one
marked line (LINE:name), so the report's entries at that line are compared
with them. Every block those lines allocate is freed again (or, where the
program keeps it, counted as kept): a lost free would show as a leaked block,
a lost allocation as a count short of the program's.
"""
import os
import re
import signal
import subprocess
import time

import hstest as T
from hstest import check, eq


def build(name, extra=()):
    return T.build(name, ["-lpthread", "-ldl", *extra])


def counts(text, prog):
    """The program's own 'prog: key N key N ...' line, as a dict."""
    m = re.search(rf"^{prog}: (.*)$", text, re.M)
    check(m, f"{prog} printed no counts: {T.tail(text)}")
    words = m.group(1).split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def innermost_at(doc, kind, file, line):
    """Entries whose innermost frame (the caller of malloc) is file:line: a
    signal handler's stack also holds the interrupted line further out."""
    return [e for e in doc[kind] if e["stack"] and T.base(e["stack"][0]) == file
            and e["stack"][0].get("line") == line]


def at_line(doc, src, marker):
    """Sum over the 'allocations' entries allocating at the marked line:
    (allocations, leaked blocks). The same line can sit under several stacks."""
    line = T.markers(T.source_of(src))[marker]
    found = innermost_at(doc, "allocations", src + ".c", line)
    check(found, f"no allocations entry at {src}.c:{line}; have: "
          + "; ".join(f"{e['count']}x {T.fmt_stack(e['stack'], 3)}" for e in doc["allocations"][:6]))
    return sum(e["count"] for e in found), sum(e["leaked_blocks"] for e in found)


def handlers_lost_dropped(doc, src, made):
    """The handler runs missing from the trace (at LINE:handler) are
    exactly the ones reported dropped: an allocation and its free each."""
    h, h_leaked = at_line(doc, src, "handler")
    lost = made - h
    check(lost >= 0, f"trace has {h} handler allocations, the program made {made}")
    eq(h_leaked, 0, "handler blocks never freed in the trace")
    eq(doc["summary"]["dropped_events"], 2 * lost,
       f"events reported dropped, for {lost} of {made} handler allocations missing")


def clean(doc):
    s = doc["summary"]
    eq(s["complete"], True, f"complete ({s.get('incomplete_reason')})")
    eq(s["dropped_events"], 0, "dropped events")
    eq(s["reused_live"], 0, "allocations at a still-live address (a lost free)")


@T.test("2 threads x 5 M operations: every malloc and free, exactly")
def _():
    path, rec = T.record(build("robust_ops"), ["2", "5000000"])
    own = counts(rec.stdout, "robust_ops")
    eq(own["ops"], 10_000_000, "operations the program made")
    d = T.report_json(path, "--top", "0")
    clean(d)
    allocs, leaked = at_line(d, "robust_ops", "alloc")
    eq(allocs, own["mallocs"], "allocations at LINE:alloc vs the program's count")
    eq(leaked, 0, "blocks of LINE:alloc never freed in the trace (frees lost)")
    # every free the program made is in the trace: the frees of its blocks
    # plus the few of libc's own (at least as many as the program's)
    check(d["summary"]["frees"] >= own["frees"], f"frees {d['summary']['frees']} < the program's {own['frees']}")
    check(d["summary"]["allocations"] - allocs < 50,
          f"{d['summary']['allocations'] - allocs} allocations besides the program's: more than libc's own")


@T.test("10 000 short-lived threads: every event, no ring lost")
def _():
    path, rec = T.record(build("robust_manythreads"), ["10000", "16"])
    own = counts(rec.stdout, "robust_manythreads")
    eq(own["threads"], 10_000, "threads the program ran")
    d = T.report_json(path, "--top", "0")
    clean(d)
    allocs, leaked = at_line(d, "robust_manythreads", "alloc")
    eq(allocs, own["mallocs"], "allocations at LINE:alloc vs the program's count")
    eq(leaked, 0, "blocks of LINE:alloc never freed in the trace (frees lost)")
    check(d["summary"]["threads"] >= 10_000, f"threads {d['summary']['threads']}, want >= 10000")


@T.test("10 000 short-lived threads while the recorder falls behind: still every event")
def _():
    # The recorder stopped for a moment (a busy machine, a debugger): the
    # threads that exit meanwhile leave their buffers for it to recycle.
    # Events are never dropped while the recorder lives; the program waits.
    prog = build("robust_manythreads")
    out = os.path.join(T.TMP, "manythreads-stall.hst")
    if os.path.exists(out):
        os.unlink(out)
    hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, "10000", "16"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=T.TMP)
    try:
        time.sleep(0.3)
        os.kill(hs.pid, signal.SIGSTOP)
        time.sleep(0.7)
        os.kill(hs.pid, signal.SIGCONT)
        stdout, stderr = hs.communicate(timeout=T.TIMEOUT)
    finally:
        if hs.poll() is None:
            os.kill(hs.pid, signal.SIGCONT)
            hs.kill()
            hs.wait()
    eq(hs.returncode, 0, f"record exit ({T.tail(stderr)})")
    own = counts(stdout, "robust_manythreads")
    d = T.report_json(out, "--top", "0")
    allocs, leaked = at_line(d, "robust_manythreads", "alloc")
    eq((allocs, leaked, d["summary"]["dropped_events"]), (own["mallocs"], 0, 0),
       "allocations at LINE:alloc, their blocks never freed, dropped events")


@T.test("2 000 threads alive at once, more than the per-thread buffers, and a fork meanwhile: every event")
def _():
    # 1 024 threads have a buffer of their own; the others, and the fork
    # child (started while every buffer is taken and the others write to
    # the shared one), share one under a lock.
    path, rec = T.record(build("robust_manythreads"), ["2000", "2000", "together", "fork"])
    own = counts(rec.stdout, "robust_manythreads")
    eq((own["mallocs"], own["children"]), (6000, 1), "the program's allocations, and its children")
    d = T.report_json(path, "--top", "0")
    clean(d)
    allocs, leaked = at_line(d, "robust_manythreads", "alloc")
    eq((allocs, leaked), (own["mallocs"], 0), "allocations at LINE:alloc, and their blocks never freed")
    child, child_leaked = at_line(d, "robust_manythreads", "child")
    eq((child, child_leaked), (3, 0), "the fork child's allocations, and their blocks never freed")
    # each thread once: the workers, the main thread and the child's
    eq(d["summary"]["threads"], 2002, "threads")


@T.test("signals to 1 100 threads, some on the shared buffer under its lock: no deadlock, every event or counted")
def _():
    # A handler that interrupts its thread while it holds (or takes) the
    # shared buffer's lock cannot wait for it: its two events are counted
    # dropped. Nothing else is lost.
    path, rec = T.record(build("robust_sigshared"), ["1100", "1000"])
    own = counts(rec.stdout, "robust_sigshared")
    # at least 1 000 each: they go on until the signals have come
    check(own["mallocs"] >= 1_100_000, f"the workers' allocations: {own['mallocs']}, want at least 1 100 000")
    check(own["handler"] >= 10, f"only {own['handler']} handler runs: the signals did not come")
    d = T.report_json(path, "--top", "0")
    eq(d["summary"]["complete"], True, "complete")
    allocs, leaked = at_line(d, "robust_sigshared", "worker")
    eq((allocs, leaked), (own["mallocs"], 0), "allocations at LINE:worker, and their blocks never freed")
    handlers_lost_dropped(d, "robust_sigshared", own["handler"])
    eq(d["summary"]["threads"], 1101, "threads: the workers and the main thread")


def handlers_all_recorded(*args):
    """robust_signal ARGS with handlers that never nest: every allocation of
    the main loop and of the handler recorded, none dropped. The report."""
    path, rec = T.record(build("robust_signal"), list(args))
    own = counts(rec.stdout, "robust_signal")
    check(own["handler"] > 100, f"only {own['handler']} handler runs: the signals did not come")
    d = T.report_json(path, "--top", "0")
    clean(d)
    main_allocs, main_leaked = at_line(d, "robust_signal", "main")
    eq((main_allocs, main_leaked), (own["main"], 0), "main loop allocations, and their blocks never freed")
    h, h_leaked = at_line(d, "robust_signal", "handler")
    eq((h, h_leaked), (own["handler"], 0), "handler allocations, and their blocks never freed")
    return d


@T.test("allocation in signal handlers that never nest: every one recorded, none dropped")
def _():
    # Most signals land while the main thread is inside one of heapscope's
    # own events (its hooks take most of the loop's time): the handler's
    # allocation is then written to the thread's second buffer, with a
    # stack taken without the interrupted unwinder.
    d = handlers_all_recorded("3000000", "masked")
    # the second buffer is the same thread's, not another one
    eq(d["summary"]["threads"], 1, "threads that allocated")


@T.test("a handler that allocates while malloc holds its arena lock: no deadlock, every allocation recorded")
def _():
    # The main loop's malloc(5000) goes to glibc's arena under its lock; the
    # handler's malloc(40) comes from the per-thread cache and works without
    # heapscope. Its event must not sample the allocator (mallinfo2 would
    # wait for the lock the interrupted malloc holds: a hang in 3 runs of 3
    # before the real call was made part of the event).
    handlers_all_recorded("2000000", "locked")


@T.test("a handler's mmap during one of heapscope's events: recorded or counted dropped, never lost silently")
def _():
    # The mapping hooks have no second buffer: a handler's mmap/munmap that
    # interrupts one of our events is counted as dropped (libunwind's own
    # mappings, made inside our events, are told apart by their caller).
    path, rec = T.record(build("robust_signal"), ["1000000", "mapped"])
    own = counts(rec.stdout, "robust_signal")
    check(own["handler"] > 100, f"only {own['handler']} handler runs: the signals did not come")
    d = T.report_json(path, "--top", "0")
    s = d["summary"]
    eq(s["complete"], True, "complete")
    calls = s["map_calls"]
    eq(calls["mmap"], calls["munmap"], "mmap and munmap calls recorded in pairs")
    eq(calls["mmap"] + calls["munmap"] + s["dropped_events"], 2 * own["handler"],
       f"the handler's mmap and munmap calls, recorded ({calls['mmap']} + {calls['munmap']}) or dropped "
       f"({s['dropped_events']})")
    main_allocs, main_leaked = at_line(d, "robust_signal", "main")
    eq((main_allocs, main_leaked), (own["main"], 0), "main loop allocations, and their blocks never freed")


@T.test("allocation in signal handlers that interrupt each other: recorded, a third level counted dropped")
def _():
    # A handler that runs while the other one is recording its own nested
    # event cannot be recorded: it is counted. Each lost handler run is one
    # allocation and its free, nothing else is ever dropped.
    path, rec = T.record(build("robust_signal"), ["3000000"])
    own = counts(rec.stdout, "robust_signal")
    check(own["handler"] > 100, f"only {own['handler']} handler runs: the signals did not come")
    d = T.report_json(path, "--top", "0")
    eq(d["summary"]["complete"], True, "complete")
    main_allocs, main_leaked = at_line(d, "robust_signal", "main")
    eq((main_allocs, main_leaked), (own["main"], 0), "main loop allocations, and their blocks never freed")
    handlers_lost_dropped(d, "robust_signal", own["handler"])


@T.test("fork while other threads allocate: children end, parent's counts exact")
def _():
    path, rec = T.record(build("robust_fork"), ["50"])
    own = counts(rec.stdout, "robust_fork")
    eq((own["ok"], own["hung"]), (50, 0), "children that exited 0, children that hung")
    d = T.report_json(path, "--top", "0")
    clean(d)
    allocs, leaked = at_line(d, "robust_fork", "worker")
    eq(allocs, own["mallocs"], "worker allocations vs the program's count")
    eq(leaked, 0, "worker blocks never freed in the trace")
    # Children are followed: the combined report holds each child's own 100
    # allocations, and the parent's own stream none of them.
    child_line = T.markers(T.source_of("robust_fork"))["child"]
    in_all = sum(e["count"] for e in innermost_at(d, "allocations", "robust_fork.c", child_line))
    eq(in_all, 50 * 100, "the children's allocations in the combined report")
    parent = T.report_json(path, "--top", "0", "--pid", str(d["summary"]["pid"]))
    in_parent = sum(e["count"] for e in innermost_at(parent, "allocations", "robust_fork.c", child_line))
    eq(in_parent, 0, "child allocations mixed into the parent's own report")


@T.test("dlopen/dlclose: frames of the unloaded library are named")
def _():
    prog = build("robust_dlopen")
    lib = os.path.join(T.TMP, "robust_dllib.so")
    p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-shared", "-fPIC", "-o", lib,
               T.source_of("robust_dllib")])
    check(p.returncode == 0, f"cannot build robust_dllib.so: {T.tail(p.stderr)}")
    path, rec = T.record(prog, [lib])
    own = counts(rec.stdout, "robust_dlopen")
    eq(own["unloaded"], 2, "dlclose calls that unloaded the library")
    d = T.report_json(path, "--top", "0")
    clean(d)
    m = T.markers(T.source_of("robust_dllib"))
    keep = innermost_at(d, "allocations", "robust_dllib.c", m["keep"])
    churn = innermost_at(d, "allocations", "robust_dllib.c", m["churn"])
    eq(sum(e["count"] for e in keep), own["kept"], "allocations in robust_dl_keep")
    eq(sum(e["count"] for e in churn), own["churned"], "allocations in robust_dl_churn")
    fns = {T.fn(e["stack"][0]) for e in keep + churn}
    eq(fns, {"robust_dl_keep", "robust_dl_churn"}, "function names from the unloaded library")
    leaks = innermost_at(d, "leaks", "robust_dllib.c", m["keep"])
    eq(sum(e["count"] for e in leaks), own["kept"], "leaked blocks of the unloaded library")


if __name__ == "__main__":
    T.main()
