#!/usr/bin/env python3
"""Child processes are recorded (and --no-follow turns it off): fork without
exec, fork+exec, posix_spawn, vfork, system(), the program exec'ing itself,
a program that clears its environment, a static program (not recorded, but
named), a daemon that outlives the program, and `report --pid`.

The programs (tests/programs/follow_*.c) make known allocations in each
process: a started "leaf" allocates 4 x 300 bytes, frees 2 and exits 5; a
fork child of follow_fork allocates 3 x 200, frees 2 of them and its copy of
a block of its parent's, and exits 3.
"""
import json
import os
import re
import signal
import subprocess
import time

import hstest as T
from hstest import check, eq

LEAF = {"allocations": 4, "frees": 2, "allocated_bytes": 1200, "leaked_bytes": 600, "leaked_blocks": 2}


def exe(name, extra=()):
    return T.build(name, extra)


def pids(text, word):
    return [int(x) for x in re.findall(rf"^{word} (\d+)$", text, re.M)]


def procs(doc):
    check(isinstance(doc.get("processes"), list), "the JSON report has no processes array")
    return doc["processes"]


def only(doc, **want):
    found = [p for p in procs(doc) if all(p.get(k) == v for k, v in want.items())]
    check(len(found) == 1, f"{len(found)} processes with {want}; have: "
          + "; ".join(f"#{p['index']} pid {p['pid']} {p['how']} of {p['parent']} {os.path.basename(p['exe'] or '')} "
                      f"{p['argv']} end {p['end']}" for p in procs(doc)))
    return found[0]


def own(p, want):
    bad = [f"{k} {p['summary'].get(k)} (want {v})" for k, v in want.items() if p["summary"].get(k) != v]
    check(not bad, f"process #{p['index']} ({p['how']}): " + ", ".join(bad))


def leaf_of(doc, argv0):
    """The leaf image: argv [PROG, leaf], recorded, exited 5."""
    p = only(doc, argv=[argv0, "leaf"], recorded=True)
    eq((p["end"], p["exit_code"]), ("exited", 5), "the leaf's end")
    own(p, LEAF)
    return p


def record_follow(mode, *more, expect_rc=0, out=None):
    prog = exe("follow_exec")
    path, rec = T.record(prog, [mode, *more], expect_rc=expect_rc, out=out)
    return prog, path, rec, T.report_json(path)


@T.test("fork without exec: each child its own process, numbers exact")
def _():
    prog = exe("follow_fork")
    path, rec = T.record(prog, ["2"])
    children = pids(rec.stdout, "child")
    eq(len(children), 2, "children the program started")
    d = T.report_json(path)
    eq(len(procs(d)), 3, "processes in the trace")
    root = only(d, how="program")
    eq((root["pid"], root["parent"], root["end"], root["exit_code"]), (rec_pid(d), None, "exited", 0), "the program")
    own(root, {"allocations": 2, "frees": 1, "allocated_bytes": 1100, "leaked_bytes": 100, "leaked_blocks": 1})
    for pid in children:
        c = only(d, pid=pid)
        eq((c["how"], c["parent"], c["end"], c["exit_code"]), ("fork", root["index"], "exited", 3), f"child {pid}")
        # its copy of the parent's 1000-byte block is a free of its own, not
        # the parent's block (which the parent frees later)
        own(c, {"allocations": 3, "frees": 2, "inherited_frees": 1, "allocated_bytes": 600,
                "leaked_bytes": 200, "leaked_blocks": 1})
    T.summary_eq(d["summary"], {"allocations": 8, "frees": 7, "allocated_bytes": 2300,
                                "leaked_bytes": 500, "leaked_blocks": 3})
    eq(d["summary"]["reused_live"], 0, "blocks taken for another's (one address in two processes)")


@T.test("fork: leaks are counted at each process's own exit, at the child's line")
def _():
    prog = exe("follow_fork")
    path, _ = T.record(prog, ["2"])
    d = T.report_json(path, "--top", "0")
    m = T.markers(T.source_of("follow_fork"))
    e = T.one_entry_at(d, "leaks", "follow_fork.c", m["child3"])
    eq((e["count"], e["bytes"]), (2, 400), "leak at LINE:child3 (one per child)")
    e = T.one_entry_at(d, "leaks", "follow_fork.c", m["keep"])
    eq((e["count"], e["bytes"]), (1, 100), "leak at LINE:keep")
    check(not T.entries_at(d, "leaks", "follow_fork.c", m["shared"]), "the block every process freed is a leak")


def rec_pid(d):
    return d["summary"]["pid"]


@T.test("fork + exec: the child's new program is an image of its own")
def _():
    prog, path, rec, d = record_follow("fork-exec")
    child = pids(rec.stdout, "child")[0]
    root = only(d, how="program")
    own(root, {"allocations": 1, "leaked_bytes": 64, "leaked_blocks": 1})
    forked = only(d, pid=child, how="fork")
    eq((forked["parent"], forked["end"]), (root["index"], "exec"), "the fork child, replaced by exec")
    leaf = leaf_of(d, prog)
    eq((leaf["pid"], leaf["how"], leaf["parent"]), (child, "exec", forked["index"]), "the exec'd image")
    T.summary_eq(d["summary"], {"allocations": 5, "frees": 2, "leaked_bytes": 664, "leaked_blocks": 3})


@T.test("posix_spawn: the child is recorded, with its exit status")
def _():
    prog, path, rec, d = record_follow("spawn")
    child = pids(rec.stdout, "child")[0]
    leaf = leaf_of(d, prog)
    eq((leaf["pid"], leaf["how"], leaf["parent"]), (child, "spawn", only(d, how="program")["index"]), "spawned child")
    eq(len(procs(d)), 2, "processes")


@T.test("vfork + exec: the child is recorded")
def _():
    prog, path, rec, d = record_follow("vfork")
    child = pids(rec.stdout, "child")[0]
    leaf = leaf_of(d, prog)
    eq((leaf["pid"], leaf["how"]), (child, "spawn"), "the vfork child's program")
    own(only(d, how="program"), {"allocations": 1, "leaked_bytes": 64})


@T.test("system(): the shell and the command it runs are recorded")
def _():
    prog, path, rec, d = record_follow("system")
    eq(pids(rec.stdout, "status"), [5], "the command's status as system() returned it")
    leaf = leaf_of(d, prog)
    shells = [p for p in procs(d) if p["how"] == "spawn" and p["parent"] == only(d, how="program")["index"]]
    eq(len(shells), 1, "a shell spawned by the program")
    check(shells[0]["recorded"], "the shell is recorded")
    eq((shells[0]["end"], shells[0]["exit_code"]), ("exited", 5), "the shell's status")
    # the leaf came from the shell, by exec or by a child of its own
    chain = [leaf]
    while chain[-1]["parent"] is not None and chain[-1]["index"] != shells[0]["index"]:
        chain.append(only(d, index=chain[-1]["parent"]))
    eq(chain[-1]["index"], shells[0]["index"], "the leaf descends from the shell")


@T.test("exec of the program itself: its first image's blocks are live at exec, not leaks")
def _():
    prog, path, rec, d = record_follow("self", expect_rc=5)
    first = only(d, how="program")
    eq(first["end"], "exec", "the first image ended by exec")
    own(first, {"allocations": 4, "leaked_bytes": 0, "leaked_blocks": 0,
                "live_at_exec_bytes": 214, "live_at_exec_blocks": 4})
    leaf = leaf_of(d, prog)
    eq((leaf["pid"], leaf["how"], leaf["parent"]), (first["pid"], "exec", first["index"]), "the new image")
    T.summary_eq(d["summary"], {"allocations": 8, "leaked_bytes": 600, "leaked_blocks": 2})
    eq(d["summary"]["exit_code"], 5, "exit status of the program (its last image)")
    m = T.markers(T.source_of("follow_exec"))
    check(not T.entries_at(d, "leaks", "follow_exec.c", m["before_exec"]), "blocks live at exec reported as leaks")


@T.test("a program that clears its environment still has its children recorded")
def _():
    prog, path, rec, d = record_follow("clearenv")
    leaf_of(d, prog)


@T.test("execve with an empty environment: the child is still recorded")
def _():
    prog, path, rec, d = record_follow("emptyenv")
    leaf_of(d, prog)


@T.test("the programs never see heapscope's variables, the started ones neither")
def _():
    prog = exe("follow_exec")
    path, rec = T.record("/bin/sh", ["-c", f"'{prog}' env; '{prog}' env"])
    eq(rec.stdout.count("HEAPSCOPE_SHM unset 0"), 2, f"HEAPSCOPE_SHM in the environment: {rec.stdout!r}")
    eq(rec.stdout.count("LD_PRELOAD unset 0"), 2, f"LD_PRELOAD in the environment: {rec.stdout!r}")
    d = T.report_json(path)
    eq(len([p for p in procs(d) if p["argv"] == [prog, "env"] and p["recorded"]]), 2,
       "the two commands the shell ran, recorded")


@T.test("--no-follow: the program only; its children run as without heapscope")
def _():
    prog = exe("follow_exec")
    out = os.path.join(T.TMP, "nofollow.hst")
    T.need_heapscope()
    p = T.run([T.HEAPSCOPE, "record", "--no-follow", "-o", out, "--", prog, "fork-exec"])
    eq(p.returncode, 0, f"record exit ({T.tail(p.stderr)})")
    eq(pids(p.stdout, "status"), [5], "the child ran")
    d = T.report_json(out)
    eq(len(procs(d)), 1, "processes in the trace")
    T.summary_eq(d["summary"], {"allocations": 1, "leaked_bytes": 64})


@T.test("a static program started by the program: named as not recorded, with its status")
def _():
    static = os.path.join(T.TMP, "follow_static")
    c = T.run([os.environ.get("CC", "cc"), "-static", "-O2", "-o", static, T.source_of("follow_static")])
    if c.returncode != 0:
        raise T.Skip("no static libc to link with")
    prog, path, rec, d = record_follow("fork-exec", static)
    child = pids(rec.stdout, "child")[0]
    gap = only(d, pid=child, how="exec")
    eq((gap["recorded"], gap["not_recorded_reason"], gap["exe"]), (False, "static", static), "the static image")
    eq((gap["end"], gap["exit_code"]), ("exited", 4), "its end")
    eq(only(d, pid=child, how="fork")["end"], "exec", "the fork child it replaced")
    text = T.report(path).stdout
    check("NOT RECORDED: statically linked" in text, f"the text report does not name the gap: {text[:800]}")
    check("not recorded" in rec.stderr, f"record does not say a process was not recorded: {T.tail(rec.stderr)}")


@T.test("report --pid: one process alone, its numbers and its status")
def _():
    prog = exe("follow_fork")
    path, rec = T.record(prog, ["2"])
    child = pids(rec.stdout, "child")[1]
    d = T.report_json(path, "--pid", str(child))
    eq([p["pid"] for p in procs(d)], [child], "processes in the --pid report")
    T.summary_eq(d["summary"], {"allocations": 3, "frees": 2, "allocated_bytes": 600,
                                "leaked_bytes": 200, "leaked_blocks": 1})
    eq((d["summary"]["pid"], d["summary"]["exit_code"]), (child, 3), "pid and exit status")
    p = T.run([T.HEAPSCOPE, "report", path, "--pid", "1"])
    eq(p.returncode, 1, "exit status for a pid not in the trace")
    check("no process with pid 1" in p.stderr, f"message: {T.tail(p.stderr)}")


@T.test("different programs at the same addresses: each image's frames are its own")
def _():
    # non-PIE programs load at the same address: only the address space
    # tells which program an address belongs to
    a = T.build("follow_exec", ["-no-pie"])
    b = os.path.join(T.TMP, "follow_fork_nopie")
    c = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-no-pie", "-o", b, T.source_of("follow_fork")])
    check(c.returncode == 0, f"cannot build follow_fork -no-pie: {T.tail(c.stderr)}")
    path, rec = T.record(a, ["fork-exec", b])
    d = T.report_json(path, "--top", "0")
    mf, me = T.markers(T.source_of("follow_fork")), T.markers(T.source_of("follow_exec"))
    e = T.one_entry_at(d, "leaks", "follow_fork.c", mf["keep"])
    eq(T.fn(e["stack"][0]), "main", "the exec'd program's frame")
    e = T.one_entry_at(d, "leaks", "follow_exec.c", me["keep"])
    eq(T.fn(e["stack"][0]), "main", "the program's own frame")


@T.test("a daemon that outlives the program: recorded until the grace time, named as running")
def _():
    prog = exe("follow_exec")
    out = os.path.join(T.TMP, "daemon.hst")
    T.need_heapscope()
    start = time.monotonic()
    p = T.run([T.HEAPSCOPE, "record", "-o", out, "--", prog, "daemon"])
    took = time.monotonic() - start
    daemon = pids(p.stdout, "child")
    try:
        eq(p.returncode, 0, f"record exit ({T.tail(p.stderr)})")
        check(took < 15, f"record took {took:.1f} s: it waited for the daemon")
        check("still ran" in p.stderr, f"record does not say a process still ran: {T.tail(p.stderr)}")
        d = T.report_json(out)
        eq(d["summary"]["complete"], True, "the trace is complete")
        dp = only(d, pid=daemon[0])
        eq((dp["how"], dp["end"]), ("fork", "running"), "the daemon")
        own(dp, {"allocations": 1, "allocated_bytes": 777})
    finally:
        for pid in daemon:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    T.main()
