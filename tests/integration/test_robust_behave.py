#!/usr/bin/env python3
"""The program behaves as it does without heapscope: what it sees of its
process (environment, descriptors, signal state, core limit), its input and
output, its exit status, its signals and its core dumps."""
import os
import re
import resource
import shutil
import signal
import subprocess

import hstest as T
from hstest import check, eq


def build(name):
    return T.build(name, ["-lpthread", "-ldl"])


def own_lines_removed(text):
    return "".join(l for l in text.splitlines(True) if not l.startswith("heapscope"))


CORE_LIMIT = 64 << 20  # enough for the program's core, not for a GiB of someone else's memory


def run_in(cwd, cmd, core=False, stdin=subprocess.DEVNULL, timeout=T.TIMEOUT):
    """Runs cmd in cwd; core=True raises the core size limit to CORE_LIMIT."""
    def limits():
        if core:
            resource.setrlimit(resource.RLIMIT_CORE, (CORE_LIMIT, CORE_LIMIT))
    try:
        return subprocess.run(cmd, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, preexec_fn=limits)
    except subprocess.TimeoutExpired:
        raise T.Fail(f"timed out: {' '.join(cmd)}")


def fresh_dir(name):
    d = os.path.join(T.TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


@T.test("the program sees the same environment, descriptors and signal state")
def _():
    prog = build("robust_behave")
    direct = T.run([prog, "state"])
    eq(direct.returncode, 0, "exit without heapscope")
    path, rec = T.record(prog, ["state"])
    a, b = direct.stdout.splitlines(), rec.stdout.splitlines()
    extra = [l for l in b if l not in a]
    missing = [l for l in a if l not in b]
    check(not extra and not missing,
          f"under heapscope the program also sees {extra} and no longer sees {missing}")


@T.test("the program's own LD_PRELOAD and environment are kept")
def _():
    prog = build("robust_behave")
    env = dict(os.environ, LD_PRELOAD="libm.so.6", HS_ROBUST_MARK="a b:c=d")
    kw = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=T.TIMEOUT, env=env, cwd=T.TMP)
    direct = subprocess.run([prog, "state"], **kw)
    out = os.path.join(T.TMP, "preload.hst")
    if os.path.exists(out):
        os.unlink(out)
    rec = subprocess.run([T.HEAPSCOPE, "record", "-o", out, "--", prog, "state"], **kw)
    eq(rec.returncode, 0, f"record exit ({T.tail(rec.stderr)})")
    envs = lambda text: [l for l in text.splitlines() if l.startswith("env ")]
    check("env LD_PRELOAD=libm.so.6" in envs(direct.stdout), "LD_PRELOAD not set for the direct run")
    eq(envs(rec.stdout), envs(direct.stdout), "the environment the program sees")
    T.report_json(out)


def inherited_signal_state():
    """What a caller may hand down: SIGINT ignored, SIGUSR2 blocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})


@T.test("an ignored and a blocked signal are inherited as without heapscope")
def _():
    prog = build("robust_behave")
    kw = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=T.TIMEOUT,
              preexec_fn=inherited_signal_state, cwd=T.TMP)
    direct = subprocess.run([prog, "state"], **kw)
    out = os.path.join(T.TMP, "inherit.hst")
    if os.path.exists(out):
        os.unlink(out)
    rec = subprocess.run([T.HEAPSCOPE, "record", "-o", out, "--", prog, "state"], **kw)
    eq(rec.returncode, 0, f"record exit ({T.tail(rec.stderr)})")
    sig = lambda text: [l for l in text.splitlines() if l.startswith(("SigIgn", "SigBlk", "SigCgt"))]
    check(sig(direct.stdout) and sig(direct.stdout)[0] != "SigIgn:\t0000000000000000",
          f"the caller's SIGINT was not ignored: {sig(direct.stdout)}")
    eq(sig(rec.stdout), sig(direct.stdout), "ignored, blocked and caught signals")


@T.test("SIGPIPE: a reader that goes away ends the program as without heapscope")
def _():
    prog = build("robust_behave")

    def run(cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=T.TMP)
        p.stdout.read(4096)
        p.stdout.close()
        try:
            err = p.stderr.read()
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise T.Fail(f"{cmd[0]} did not end after its reader went away")
        return p.returncode, err.decode(errors="replace")
    rc, _ = run([prog, "flood"])
    eq(rc, -13, "without heapscope")
    out = os.path.join(T.TMP, "flood.hst")
    if os.path.exists(out):
        os.unlink(out)
    rc, err = run([T.HEAPSCOPE, "record", "-o", out, "--", prog, "flood"])
    eq(rc, 128 + 13, f"record exit ({T.tail(err)})")
    s = T.report_json(out)["summary"]
    eq((s["exit"], s["exit_signal"]), ("signaled", 13), "summary exit, signal")


@T.test("a program that closes every descriptor keeps its own files")
def _():
    # Daemons close all descriptors above stderr, then open files that take
    # the lowest numbers. A preloaded library's descriptors are gone then:
    # it must not read, write or close the numbers the program reuses.
    prog = build("robust_closefds")
    out = os.path.join(T.TMP, "closefds.txt")
    direct = T.run([prog, out])
    eq(direct.returncode, 0, f"exit without heapscope ({direct.stdout.strip()})")
    path, rec = T.record(prog, [out], expect_rc=None)
    check(rec.returncode == 0, f"under heapscope the program's file was touched: exit {rec.returncode}, "
          f"{rec.stdout.strip() or 'no output'}")
    T.report_json(path)


@T.test("stdin passes through byte for byte")
def _():
    prog = build("robust_behave")
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(300_000))
    src = os.path.join(T.TMP, "stdin.bin")
    with open(src, "wb") as f:
        f.write(data)
    out = os.path.join(T.TMP, "echo.hst")
    if os.path.exists(out):
        os.unlink(out)
    with open(src, "rb") as f:
        p = run_in(T.TMP, [T.HEAPSCOPE, "record", "-o", out, "--", prog, "echo"], stdin=f)
    eq(p.returncode, 0, f"record exit ({T.tail(p.stderr.decode(errors='replace'))})")
    check(p.stdout == data, f"stdout differs from stdin ({len(p.stdout)} of {len(data)} bytes)")
    # and through a pipe, as a shell pipeline gives it
    p2 = subprocess.run([T.HEAPSCOPE, "record", "-f", "-o", out, "--", prog, "echo"], input=data,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=T.TIMEOUT, cwd=T.TMP)
    check(p2.stdout == data, f"piped: stdout differs from stdin ({len(p2.stdout)} of {len(data)} bytes)")
    d = T.report_json(out)
    line = T.markers(T.source_of("robust_behave"))["echo"]
    e = T.one_entry_at(d, "allocations", "robust_behave.c", line)
    m = re.search(rb"echoed (\d+) bytes in (\d+) reads", p2.stderr)
    check(m, f"no echo count on stderr: {p2.stderr[-200:]!r}")
    eq(int(m.group(1)), len(data), "bytes the program echoed")
    reads = int(m.group(2))
    eq(e["count"], reads + 1, "echo buffers (one per read, and the last one that read nothing)")


@T.test("exit status 0, 3 and 255 are the program's")
def _():
    prog = build("robust_behave")
    for code in (0, 3, 255):
        direct = T.run([prog, "exit", str(code)])
        eq(direct.returncode, code, "exit without heapscope")
        path, rec = T.record(prog, ["exit", str(code)], expect_rc=code)
        eq(rec.stdout, direct.stdout, "stdout")
        eq(T.report_json(path)["summary"]["exit_code"], code, "summary.exit_code")


@T.test("SIGTERM raised by the program: 143, reported as the signal")
def _():
    prog = build("robust_behave")
    eq(T.run([prog, "term"]).returncode, -15, "without heapscope")
    path, _ = T.record(prog, ["term"], expect_rc=143)
    s = T.report_json(path)["summary"]
    eq((s["exit"], s["exit_signal"]), ("signaled", 15), "summary exit, signal")


@T.test("SIGSEGV: 139, and a core dump exactly when there is one without heapscope")
def _():
    prog = build("robust_behave")
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    for core in (False, True):
        d1 = fresh_dir(f"segv-direct-{core}")
        p = run_in(d1, [prog, "segv"], core=core)
        eq(p.returncode, -11, "without heapscope")
        d2 = fresh_dir(f"segv-hs-{core}")
        out = os.path.join(d2, "segv.hst")
        r = run_in(d2, [T.HEAPSCOPE, "record", "-o", out, "--", prog, "segv"], core=core)
        eq(r.returncode, 139, f"record exit ({T.tail(r.stderr.decode(errors='replace'))})")
        s = T.report_json(out)["summary"]
        eq((s["exit"], s["exit_signal"]), ("signaled", 11), "summary exit, signal")
        if pattern.startswith("|"):
            continue  # a core handler program takes the dump: nothing to compare here
        size = lambda d, fs: sum(os.stat(os.path.join(d, f)).st_blocks * 512 for f in fs)
        cores1 = [f for f in os.listdir(d1) if f.startswith("core")]
        cores2 = [f for f in os.listdir(d2) if f.startswith("core")]
        s1, s2 = size(d1, cores1), size(d2, cores2)
        shutil.rmtree(d1, ignore_errors=True)  # cores are big: gone at once
        shutil.rmtree(d2, ignore_errors=True)
        eq(bool(cores2), bool(cores1), f"core dumped under heapscope (limit {CORE_LIMIT if core else 'as is'})")
        # heapscope's own shared buffers (a GiB of address space) are not
        # the program's memory: they must not fill its core file
        check(s2 <= s1 + (16 << 20), f"the core under heapscope takes {s2 >> 20} MiB on disk, "
              f"{s1 >> 20} MiB without (limit {CORE_LIMIT >> 20} MiB)")


if __name__ == "__main__":
    T.main()
