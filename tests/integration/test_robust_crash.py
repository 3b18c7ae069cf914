#!/usr/bin/env python3
"""Crashes: the program killed (SIGKILL, SIGSEGV, abort) at a random point,
and heapscope itself interrupted (SIGINT, SIGTERM, SIGKILL to the recorder
only). The trace stays readable, the report says how the run ended or that
the trace is incomplete, what was recorded up to the end is exact, and a
program that outlives its recorder goes on unharmed.

The random points come from a seed printed with every failure; set
HS_SEED to replay one."""
import json
import os
import random
import signal
import subprocess
import time

import hstest as T
from hstest import check, eq

SEED = int(os.environ.get("HS_SEED") or time.time_ns() % 1_000_000)
rng = random.Random(SEED)


def build(name):
    return T.build(name, ["-lpthread"])


def innermost(doc, kind, src, marker):
    line = T.markers(T.source_of(src))[marker]
    return sum(e["count"] for e in doc[kind]
               if e["stack"] and T.base(e["stack"][0]) == src + ".c" and e["stack"][0].get("line") == line)


def report_any(path):
    """report --json of a trace that may be incomplete: (doc, stderr)."""
    p = T.run([T.HEAPSCOPE, "report", path, "--json", "--top", "0"])
    check(not T.crashed(p), f"report crashed (exit {p.returncode}): {T.tail(p.stderr)}")
    eq(p.returncode, 0, f"report exit ({T.tail(p.stderr)})")
    return json.loads(p.stdout), p.stderr


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def wait_for(cond, what, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise T.Fail(f"timed out waiting for {what} (seed {SEED})")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@T.test("killed by SIGKILL, SIGSEGV, abort() at a random point: every event up to it")
def _():
    prog = build("robust_crash")
    for how, sig in (("kill", 9), ("segv", 11), ("abort", 6)):
        n = rng.randrange(1, 60000)
        out = os.path.join(T.TMP, f"crash-{how}.hst")
        path, rec = T.record(prog, [str(n), how], out=out, expect_rc=128 + sig)
        eq(rec.stdout.strip(), f"robust_crash: allocated {n}", f"{how}: the program's output (seed {SEED})")
        d, _ = report_any(path)
        s = d["summary"]
        eq((s["exit"], s["exit_signal"]), ("signaled", sig), f"{how}: exit, signal")
        eq(innermost(d, "allocations", "robust_crash", "alloc"), n, f"{how}: allocations up to the crash (seed {SEED})")
        # no exit path ran: what is live is "at the end of the trace", not leaks at exit
        eq(s["leaks_at_exit"], False, f"{how}: leaks_at_exit")
        text = T.report(path).stdout
        check(f"signal {sig}" in text, f"{how}: the report does not say the program was killed by signal {sig}")


@T.test("SIGKILL from outside at a random moment: the trace holds what completed")
def _():
    prog = build("robust_crash")
    for i in range(3):
        counter = os.path.join(T.TMP, f"counter{i}")
        out = os.path.join(T.TMP, f"extkill{i}.hst")
        if os.path.exists(out):
            os.unlink(out)
        hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, "loop", counter],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=T.TMP)
        try:
            target = wait_for(lambda: children_of(hs.pid), "the target to start")[0]
            wait_for(lambda: os.path.exists(counter) and os.path.getsize(counter) >= 8, "the counter file")
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(target, signal.SIGKILL)
            _, err = hs.communicate(timeout=60)
        finally:
            if hs.poll() is None:
                hs.kill()
                hs.wait()
        eq(hs.returncode, 137, f"record exit ({T.tail(err.decode(errors='replace'))})")
        with open(counter, "rb") as f:
            done = int.from_bytes(f.read(8), "little")
        d, _ = report_any(out)
        got = innermost(d, "allocations", "robust_crash", "loop")
        # the counter is stored after malloc returned: the last one may be in
        # the trace and not yet counted
        check(got in (done, done + 1), f"trace has {got} allocations, the program completed {done} (seed {SEED})")
        eq(d["summary"]["exit_signal"], 9, "summary.exit_signal")


@T.test("SIGKILL to the recorder: what is lost is at most its last second")
def _():
    # The writer closes a block at least every second, so a killed recorder
    # loses what it had not yet flushed: about one second of events (and the
    # symbol table, written at the end).
    prog = build("robust_crash")
    counter = os.path.join(T.TMP, "reckill.counter")
    out = os.path.join(T.TMP, "reckill.hst")
    for f in (counter, out):
        if os.path.exists(f):
            os.unlink(f)
    hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, "loop", counter],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=T.TMP)
    target = None
    samples = []
    try:
        target = wait_for(lambda: children_of(hs.pid), "the target to start")[0]
        wait_for(lambda: os.path.exists(counter) and os.path.getsize(counter) >= 8, "the counter file")
        end = time.monotonic() + 2.0 + rng.uniform(0, 1.0)
        while time.monotonic() < end:
            with open(counter, "rb") as f:
                samples.append((time.monotonic(), int.from_bytes(f.read(8), "little")))
            time.sleep(0.02)
        os.kill(hs.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        hs.wait(timeout=30)
        with open(counter, "rb") as f:
            after = int.from_bytes(f.read(8), "little")
        check(alive(target), "the program died with its recorder")
    finally:
        if hs.poll() is None:
            hs.kill()
            hs.wait()
        if target and alive(target):
            os.kill(target, signal.SIGKILL)
    d, rep_err = report_any(out)
    s = d["summary"]
    eq(s["complete"], False, "complete")
    check("incomplete" in rep_err, f"report does not say the trace is incomplete: {T.tail(rep_err)}")
    # the program's count 1.5 s before the kill (one second of flush interval,
    # half a second for scheduling on a busy machine) must all be there
    before = [c for t, c in samples if t <= killed_at - 1.5]
    check(before, "no sample 1.5 s before the kill")
    got = s["allocations"]
    check(got >= before[-1], f"trace has {got} allocations; the program had made {before[-1]} "
          f"1.5 s before the recorder was killed (seed {SEED})")
    check(got <= after + 1 + 10, f"trace has {got} allocations, more than the program made ({after})")


@T.test("Ctrl-C (SIGINT to the whole group): the program ends, the trace is whole")
def _():
    prog = build("robust_outlive")
    res = os.path.join(T.TMP, "ctrlc.out")
    go = os.path.join(T.TMP, "ctrlc.go")
    out = os.path.join(T.TMP, "ctrlc.hst")
    for f in (res, go, out):
        if os.path.exists(f):
            os.unlink(f)
    # its own process group, as a shell's foreground job
    hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, res, go],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=T.TMP, start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(res) and open(res).read().startswith("pid "), "the program's pid")
        time.sleep(rng.uniform(0.2, 0.8))
        os.killpg(hs.pid, signal.SIGINT)
        _, err = hs.communicate(timeout=60)
    finally:
        if hs.poll() is None:
            os.killpg(hs.pid, signal.SIGKILL)
            hs.wait()
    eq(hs.returncode, 130, f"record exit ({T.tail(err.decode(errors='replace'))})")
    d, _ = report_any(out)
    s = d["summary"]
    eq((s["exit"], s["exit_signal"]), ("signaled", 2), "summary exit, signal")
    eq(s["complete"], True, f"complete ({s.get('incomplete_reason')})")
    check(innermost(d, "allocations", "robust_outlive", "phase1") > 0, "no phase 1 allocation in the trace")


@T.test("a dead recorder not yet reaped (a zombie) does not block the program")
def _():
    # Whoever started heapscope may reap it late (a busy supervisor, a
    # script that waits for something else first). Dead is dead: the
    # program must not wait on the rings of a recorder that is a zombie.
    prog = build("robust_outlive")
    res = os.path.join(T.TMP, "zombie.out")
    go = os.path.join(T.TMP, "zombie.go")
    out = os.path.join(T.TMP, "zombie.hst")
    for f in (res, go, out):
        if os.path.exists(f):
            os.unlink(f)
    hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, res, go],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          cwd=T.TMP)
    target = None
    finished = False
    try:
        target = wait_for(lambda: os.path.exists(res) and open(res).read().startswith("pid ")
                          and int(open(res).read().split()[1]), "the program's pid")
        time.sleep(0.5)
        os.kill(hs.pid, signal.SIGKILL)
        wait_for(lambda: open(f"/proc/{hs.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
                 "the recorder to be a zombie")
        open(go, "w").close()
        end = time.monotonic() + 20
        while time.monotonic() < end and not finished:
            finished = "phase2" in open(res).read()
            time.sleep(0.05)
    finally:
        hs.wait()  # reaped only now
        if target and not finished:
            # let it finish now that the recorder is reaped, then judge
            wait_for(lambda: "phase2" in open(res).read() or not alive(target), "the program after the reap", 30)
        if target and alive(target):
            os.kill(target, signal.SIGKILL)
    check(finished, "the program blocked while its dead recorder was not yet reaped "
          "(it went on only once the zombie was gone)")


def outlive(how, seed_sleep):
    """Records robust_outlive, interrupts the recorder with how, lets the
    program go on. Returns (recorder status, trace doc, report stderr,
    program's phase counts, phase-1 count seen before the interruption)."""
    prog = build("robust_outlive")
    tag = how.lower()
    out = os.path.join(T.TMP, f"outlive-{tag}.hst")
    res = os.path.join(T.TMP, f"outlive-{tag}.out")
    go = os.path.join(T.TMP, f"outlive-{tag}.go")
    for f in (out, res, go):
        if os.path.exists(f):
            os.unlink(f)
    hs = subprocess.Popen([T.HEAPSCOPE, "record", "-o", out, "--", prog, res, go],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=T.TMP)
    target = None
    try:
        target = wait_for(lambda: os.path.exists(res) and open(res).read().startswith("pid ")
                          and int(open(res).read().split()[1]), "the program's pid")
        # past the first flush (every second), at a random moment
        time.sleep(1.2 + seed_sleep)
        os.kill(hs.pid, getattr(signal, how))
        if how == "SIGINT":
            time.sleep(0.3)
            check(hs.poll() is None, "the recorder ended on a SIGINT sent to it alone")
        else:
            # SIGTERM: forwarded, ignored by the program, the recorder stops
            # after its grace period; SIGKILL: at once. Reaped here, so the
            # library sees it gone.
            hs.wait(timeout=30)
        check(alive(target), f"the program did not outlive the recorder ({how})")
        open(go, "w").close()
        if how == "SIGINT":
            hs.wait(timeout=120)
        wait_for(lambda: "phase2" in open(res).read(), "the program to finish after the recorder", 120)
        wait_for(lambda: not alive(target), "the program to exit", 30)
    finally:
        if hs.poll() is None:
            hs.kill()
            hs.wait()
        if target and alive(target):
            os.kill(target, signal.SIGKILL)
    err = hs.stderr.read().decode(errors="replace")
    words = open(res).read().split()
    own = {words[i]: int(words[i + 1]) for i in range(3, len(words) - 1, 2)}
    d, rep_err = report_any(out)
    return hs.returncode, d, rep_err, own, err


@T.test("SIGINT to the recorder alone: ignored, the recording goes on to the end")
def _():
    rc, d, _, own, err = outlive("SIGINT", rng.uniform(0, 0.5))
    eq(rc, 0, f"record exit ({T.tail(err)})")
    eq(own["phase2"], 2000000, "the program's phase 2")
    s = d["summary"]
    eq(s["complete"], True, f"complete ({s.get('incomplete_reason')})")
    eq(s["dropped_events"], 0, "dropped events")
    eq(innermost(d, "allocations", "robust_outlive", "phase1"), own["phase1"], "phase 1 allocations")
    eq(innermost(d, "allocations", "robust_outlive", "phase2"), own["phase2"], "phase 2 allocations")


@T.test("SIGTERM to the recorder: forwarded; the program ignores it and outlives the recorder")
def _():
    rc, d, rep_err, own, err = outlive("SIGTERM", rng.uniform(0, 0.5))
    eq(rc, 143, f"record exit ({T.tail(err)})")
    eq(own["phase2"], 2000000, "the program's phase 2, after the recorder stopped")
    s = d["summary"]
    eq(s["complete"], False, "complete")
    check(s["incomplete_reason"] and "incomplete" in rep_err,
          f"report does not say the trace is incomplete and why: {s['incomplete_reason']!r} / {T.tail(rep_err)}")
    got = innermost(d, "allocations", "robust_outlive", "phase1")
    check(0 < got <= own["phase1"], f"phase 1 allocations in the trace {got}, the program made {own['phase1']}")
    eq(innermost(d, "allocations", "robust_outlive", "phase2"), 0, "phase 2 allocations (after the recorder stopped)")


@T.test("SIGKILL to the recorder: the trace reads up to its last block, the program goes on")
def _():
    rc, d, rep_err, own, err = outlive("SIGKILL", rng.uniform(0, 0.5))
    eq(rc, -9, "record killed")
    eq(own["phase2"], 2000000, "the program's phase 2, after the recorder died")
    s = d["summary"]
    eq(s["complete"], False, "complete")
    check(s["incomplete_reason"] and "incomplete" in rep_err,
          f"report does not say the trace is incomplete and why: {s['incomplete_reason']!r} / {T.tail(rep_err)}")
    # No symbol table (it is written at the end): count all allocations;
    # besides phase 1 only libc's few (stdio's buffer for the output file).
    # Blocks are flushed at least every second: a run of over a second has some.
    got = s["allocations"]
    check(0 < got <= own["phase1"] + 10, f"allocations in the trace {got}, the program made {own['phase1']}")


if __name__ == "__main__":
    T.main()
