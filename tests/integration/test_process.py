#!/usr/bin/env python3
"""The target behaves as without heapscope: output, exit status, signals; trace naming and mode."""
import glob
import os
import stat

import hstest as T
from hstest import check, eq


def own_lines_removed(text):
    """The target's stderr: heapscope's own messages (prefixed 'heapscope') taken out."""
    return "".join(l for l in text.splitlines(True) if not l.startswith("heapscope"))


def same_as_direct(prog, args, rc, record_rc=None):
    """Runs prog with and without heapscope; rc is its status as Python reports it
    (-6 for SIGABRT), record_rc heapscope's (128 + 6 for SIGABRT, as a shell does)."""
    direct = T.run([prog, *args])
    eq(direct.returncode, rc, "exit status without heapscope")
    path, rec = T.record(prog, args, expect_rc=rc if record_rc is None else record_rc)
    eq(rec.stdout, direct.stdout, "stdout under record")
    eq(own_lines_removed(rec.stderr), direct.stderr, "stderr under record (heapscope lines removed)")
    return path


@T.test("exit 3: same output and status")
def _():
    m = T.markers(T.source_of("exit3"))
    path = same_as_direct(T.build("exit3"), ["one arg", "two"], 3)
    d = T.report_json(path)
    eq(d["summary"].get("exit_code"), 3, "summary.exit_code")
    T.summary_eq(d["summary"], {"leaked_bytes": 123, "leaked_blocks": 1})
    e = T.one_entry_at(d, "leaks", "exit3.c", m["leak"])
    eq((e["count"], e["bytes"]), (1, 123), "leak entry (count, bytes)")


@T.test("exit 3: valgrind agrees")
def _():
    prog = T.build("exit3")
    path, _ = T.record(prog, ["one arg", "two"], expect_rc=3)
    T.agrees_with_valgrind(T.report_json(path)["summary"], prog, ["one arg", "two"])


@T.test("SIGABRT: heapscope exits 134, the trace keeps what came before")
def _():
    m = T.markers(T.source_of("abort"))
    path = same_as_direct(T.build("abort"), [], -6, 134)
    d = T.report_json(path)
    T.summary_eq(d["summary"], {"allocations": 5, "frees": 0, "allocated_bytes": 5000})
    e = T.one_entry_at(d, "allocations", "abort.c", m["alloc"])
    eq((e["count"], e["bytes"]), (5, 5000), "allocations entry (count, bytes)")


@T.test("SIGABRT: valgrind agrees")
def _():
    prog = T.build("abort")
    path, _ = T.record(prog, expect_rc=134)
    T.agrees_with_valgrind(T.report_json(path)["summary"], prog)


@T.test("record without -o names heapscope.<prog>.<pid>.hst and says so")
def _():
    T.need_heapscope()
    prog = T.build("known")
    cwd = os.path.join(T.TMP, "noname")
    os.makedirs(cwd, exist_ok=True)
    p = T.run([T.HEAPSCOPE, "record", "--", prog], cwd=cwd)
    eq(p.returncode, 0, f"record exit ({T.tail(p.stderr)})")
    found = glob.glob(os.path.join(cwd, "heapscope.known.*.hst"))
    eq(len(found), 1, f"traces named heapscope.known.*.hst in {os.listdir(cwd)}")
    name = os.path.basename(found[0])
    pid = name[len("heapscope.known."):-len(".hst")]
    check(pid.isdigit(), f"{name}: no pid")
    check(name in p.stdout + p.stderr, f"record does not say it wrote {name}")
    eq(oct(stat.S_IMODE(os.stat(found[0]).st_mode)), oct(0o600), "trace mode")
    T.report_json(found[0])


@T.test("trace mode is 0600 whatever the umask")
def _():
    prog = T.build("known")
    old = os.umask(0)
    try:
        path, _ = T.record(prog, out=os.path.join(T.TMP, "umask0.hst"))
    finally:
        os.umask(old)
    eq(oct(stat.S_IMODE(os.stat(path).st_mode)), oct(0o600), "trace mode under umask 0")


@T.test("record refuses a missing program with one clear line")
def _():
    T.need_heapscope()
    p = T.run([T.HEAPSCOPE, "record", "-o", os.path.join(T.TMP, "missing.hst"), "--",
               os.path.join(T.TMP, "no-such-program")])
    check(not T.crashed(p), f"record crashed (exit {p.returncode})")
    check(p.returncode != 0, "record of a missing program exits 0")
    check("no-such-program" in p.stderr, f"message does not name the program: {T.tail(p.stderr)}")


if __name__ == "__main__":
    T.main()
