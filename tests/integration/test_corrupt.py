#!/usr/bin/env python3
"""Damaged traces: report says what is wrong in one line, or marks a cut trace
incomplete, and never crashes (a signal, a sanitizer report, a core dump)."""
import json
import os
import random

import hstest as T
from hstest import check


@T.once
def good():
    path, _ = T.record(T.build("known"))
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) >= 64, f"trace of known is only {len(data)} bytes")
    T.report_json(path)  # the errors below mean something only if report works
    return data


def write(name, data):
    path = os.path.join(T.TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def one_line_error(p, what):
    check(not T.crashed(p), f"{what}: report crashed (exit {p.returncode}): {T.tail(p.stderr)}")
    check(p.returncode != 0, f"{what}: report exits 0")
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(len(lines) == 1, f"{what}: {len(lines)} lines on stderr, want one: {T.tail(p.stderr)}")


def error_or_incomplete(path, what):
    """A cut trace: either one clear error, or a report marked incomplete."""
    T.need_heapscope()
    for opts in (["--json"], []):
        p = T.run([T.HEAPSCOPE, "report", path, *opts], timeout=60)
        label = f"{what} ({' '.join(opts) or 'text'})"
        check(not T.crashed(p), f"{label}: report crashed (exit {p.returncode}): {T.tail(p.stderr)}")
        if p.returncode != 0:
            one_line_error(p, label)
        elif opts:
            try:
                s = json.loads(p.stdout)["summary"]
            except (ValueError, KeyError, TypeError) as e:
                raise T.Fail(f"{label}: exit 0 but no JSON summary ({e})")
            check(s.get("complete") is False, f"{label}: exit 0 but summary.complete is {s.get('complete')!r}")
        else:
            check("incomplete" in p.stdout.lower(), f"{label}: exit 0 but the text report does not say incomplete")


@T.test("truncated at several offsets: error or incomplete")
def _():
    data = good()
    n = len(data)
    cuts = sorted({1, 2, 4, 8, 16, 32, 64, n // 8, n // 4, n // 2, 3 * n // 4, n - 64, n - 16, n - 1})
    failures = []
    for cut in cuts:
        try:
            error_or_incomplete(write(f"cut-{cut}.hst", data[:cut]), f"cut at {cut} of {n}")
        except T.Fail as e:
            failures.append(str(e))
    check(not failures, "; ".join(failures[:4]) + (f" (+{len(failures) - 4} more)" if len(failures) > 4 else ""))


@T.test("flipped bytes: never a crash, an error is one line")
def _():
    data = good()
    rng = random.Random(1234)
    failures = []
    for i in range(24):
        b = bytearray(data)
        off = i if i < 8 else rng.randrange(len(b))
        b[off] ^= 0xFF if i % 2 else (1 << rng.randrange(8))
        path = write(f"flip-{i}.hst", bytes(b))
        p = T.run([T.HEAPSCOPE, "report", path, "--json"], timeout=60)
        what = f"byte {off} flipped"
        if T.crashed(p):
            failures.append(f"{what}: crashed (exit {p.returncode}): {T.tail(p.stderr, 2)}")
        elif p.returncode != 0 and len([l for l in p.stderr.splitlines() if l.strip()]) != 1:
            failures.append(f"{what}: exit {p.returncode} without one line: {T.tail(p.stderr, 3)}")
    check(not failures, "; ".join(failures[:4]) + (f" (+{len(failures) - 4} more)" if len(failures) > 4 else ""))


@T.test("random bytes: one clear error")
def _():
    good()
    rng = random.Random(99)
    path = write("random.hst", bytes(rng.randrange(256) for _ in range(4096)))
    one_line_error(T.run([T.HEAPSCOPE, "report", path]), "random file")


@T.test("empty file: one clear error")
def _():
    good()
    path = write("empty.hst", b"")
    one_line_error(T.run([T.HEAPSCOPE, "report", path]), "empty file")


@T.test("missing file: one clear error naming it")
def _():
    good()
    path = os.path.join(T.TMP, "no-such-trace.hst")
    p = T.run([T.HEAPSCOPE, "report", path])
    one_line_error(p, "missing file")
    check("no-such-trace.hst" in p.stderr, f"message does not name the file: {T.tail(p.stderr)}")


@T.test("a directory, and a text file: one clear error")
def _():
    good()
    one_line_error(T.run([T.HEAPSCOPE, "report", T.TMP]), "directory")
    path = write("text.hst", b"this is not a heapscope trace\n" * 10)
    one_line_error(T.run([T.HEAPSCOPE, "report", path]), "text file")


if __name__ == "__main__":
    T.main()
