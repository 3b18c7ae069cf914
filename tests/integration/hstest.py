"""hstest.py: the small harness the integration tests share (Python 3, stdlib only).

A test file registers functions with @test("name") and calls main(). Each test
prints one line, which tests/run.sh counts:

    ok   FILE: NAME
    FAIL FILE: NAME: why
    skip FILE: NAME: why

A test fails by raising Fail (or any exception) and is skipped by raising Skip,
which is only for a missing optional tool (valgrind, cargo), never for a missing
heapscope: a test that cannot run because heapscope does not work yet fails.

Environment: HEAPSCOPE_BUILD (default: build), HEAPSCOPE_TEST_TMP (a scratch
directory that the caller removes; without it, one is made and removed here).
"""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("HEAPSCOPE_BUILD", "build"))
HEAPSCOPE = os.path.join(BUILD, "heapscope")
PROGRAMS = os.path.join(ROOT, "tests", "programs")
EXAMPLES = os.path.join(ROOT, "examples")
TIMEOUT = 300


class Fail(AssertionError):
    pass


class Skip(Exception):
    pass


def _scratch():
    base = os.environ.get("HEAPSCOPE_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
        return tempfile.mkdtemp(prefix="it-", dir=base)
    d = tempfile.mkdtemp(prefix="heapscope-it-")
    atexit.register(shutil.rmtree, d, True)
    return d


TMP = _scratch()
# heapscope's symbol cache: the tests' own, empty at first, never the user's
os.environ["XDG_CACHE_HOME"] = os.path.join(TMP, "xdg-cache")
os.makedirs(os.environ["XDG_CACHE_HOME"], exist_ok=True)

# --- assertions ---------------------------------------------------------------

def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: got {got!r}, want {want!r}")


# --- running ------------------------------------------------------------------

def run(cmd, cwd=None, env=None, timeout=TIMEOUT, stdin=subprocess.DEVNULL):
    """Runs cmd, returns CompletedProcess with text stdout/stderr; Fail on timeout."""
    # its own process group, so that a timeout kills the recorded program
    # too: killing heapscope alone leaves it running, orphaned, for ever
    try:
        p = subprocess.Popen(cmd, cwd=cwd or TMP, env=env, stdin=stdin,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             errors="replace", start_new_session=True)
    except OSError as e:
        raise Fail(f"cannot run {cmd[0]}: {e}")
    with p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            raise Fail(f"timed out after {timeout}s: {' '.join(cmd)}")
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def crashed(proc):
    """True if the process died of a signal, or a sanitizer or the kernel said it crashed."""
    text = proc.stdout + proc.stderr
    return (proc.returncode < 0 or proc.returncode >= 128
            or "Sanitizer" in text or "core dumped" in text or "Segmentation fault" in text)


def tail(text, n=6):
    lines = text.strip().splitlines()
    return " | ".join(lines[-n:])


def need_heapscope():
    check(os.access(HEAPSCOPE, os.X_OK), f"{HEAPSCOPE} is not built (run make)")


_built = {}


def build(name, extra=()):
    """Compiles tests/programs/NAME.c (or .cpp) with -O2 -g into the scratch dir."""
    if name in _built:
        return _built[name]
    c = os.path.join(PROGRAMS, name + ".c")
    cpp = os.path.join(PROGRAMS, name + ".cpp")
    src, compiler = (c, os.environ.get("CC", "cc")) if os.path.exists(c) else (cpp, os.environ.get("CXX", "g++"))
    out = os.path.join(TMP, name)
    p = run([compiler, "-O2", "-g", "-o", out, src, *extra])
    check(p.returncode == 0, f"cannot compile {os.path.basename(src)}: {tail(p.stderr)}")
    _built[name] = out
    return out


def source_of(name):
    for ext in (".c", ".cpp"):
        path = os.path.join(PROGRAMS, name + ext)
        if os.path.exists(path):
            return path
    raise Fail(f"no source for {name}")


def markers(path):
    """Maps each LINE:name marker comment in the file to its 1-based line number."""
    lines = {}
    with open(path) as f:
        for i, line in enumerate(f, 1):
            for m in re.finditer(r"LINE:(\w+)", line):
                lines[m.group(1)] = i
    return lines


def line_of(path, text):
    """The 1-based number of the only line of path containing text."""
    with open(path) as f:
        found = [i for i, line in enumerate(f, 1) if text in line]
    check(len(found) == 1, f"{os.path.basename(path)}: {len(found)} lines contain {text!r}")
    return found[0]


def record(prog, args=(), out=None, cwd=None, expect_rc=0, opts=()):
    """Runs `heapscope record -o OUT OPTS -- PROG ARGS`; returns (trace path, process)."""
    need_heapscope()
    cwd = cwd or TMP
    if out is None:
        out = os.path.join(TMP, os.path.basename(prog) + ".hst")
    if os.path.exists(out):
        os.unlink(out)
    p = run([HEAPSCOPE, "record", "-o", out, *opts, "--", prog, *args], cwd=cwd)
    check("Sanitizer" not in p.stderr, f"record: sanitizer report: {tail(p.stderr)}")
    if expect_rc is not None:
        check(p.returncode == expect_rc,
              f"record exit {p.returncode}, want {expect_rc}: {tail(p.stderr)}")
    check(os.path.exists(out), f"record wrote no trace {out}: {tail(p.stderr)}")
    return out, p


def record_env(prog, args=(), name=None, **env):
    """`heapscope record -o TMP/NAME -- PROG ARGS` with env's variables set,
    unchecked (the caller looks at its exit and stderr); (trace path, process)."""
    need_heapscope()
    out = os.path.join(TMP, name or os.path.basename(prog) + ".hst")
    if os.path.exists(out):
        os.unlink(out)
    return out, run([HEAPSCOPE, "record", "-o", out, "--", prog, *args], env=dict(os.environ, **env))


def report(trace, *opts):
    """Runs `heapscope report TRACE OPTS`; Fail unless it exits 0."""
    need_heapscope()
    p = run([HEAPSCOPE, "report", trace, *opts])
    check(not crashed(p), f"report crashed (exit {p.returncode}): {tail(p.stderr)}")
    check(p.returncode == 0, f"report {' '.join(opts)} exit {p.returncode}: {tail(p.stderr)}")
    return p


SUMMARY_INTS = ("allocations", "frees", "allocated_bytes", "temporary", "peak_heap_bytes",
                "peak_rss_bytes", "leaked_bytes", "leaked_blocks")
LISTS = ("peak", "allocations", "temporary", "leaks")


def report_json(trace, *opts):
    """The parsed `report --json`, checked against the shape docs/json.md gives."""
    p = report(trace, "--json", *opts)
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        raise Fail(f"report --json is not JSON ({e}): {p.stdout[:200]!r}")
    check(isinstance(doc, dict) and isinstance(doc.get("summary"), dict), "JSON has no summary object")
    s = doc["summary"]
    for k in SUMMARY_INTS:
        check(type(s.get(k)) is int, f"summary.{k} is {s.get(k)!r}, not an integer")
    for k in LISTS:
        check(isinstance(doc.get(k), list), f"JSON has no array {k}")
        for e in doc[k]:
            check(type(e.get("bytes")) is int and type(e.get("count")) is int
                  and isinstance(e.get("stack"), list), f"{k} entry without bytes/count/stack: {e!r}")
    return doc


def summary_eq(summary, want):
    bad = [f"{k} {summary.get(k)!r} (want {v!r})" for k, v in want.items() if summary.get(k) != v]
    check(not bad, "summary: " + ", ".join(bad))


def base(frame):
    return os.path.basename(frame.get("file") or "")


def fn(frame):
    return frame.get("function") or ""


def fmt_stack(stack, n=8):
    return " <- ".join(f"{fn(f)}{'[inl]' if f.get('inlined') else ''}@{base(f)}:{f.get('line')}"
                       for f in stack[:n])


def entries_at(doc, kind, file, line):
    """Entries of doc[kind] whose stack has a frame at file:line (file by basename)."""
    return [e for e in doc[kind]
            if any(base(f) == file and f.get("line") == line for f in e["stack"])]


def one_entry_at(doc, kind, file, line):
    found = entries_at(doc, kind, file, line)
    check(len(found) == 1, f"{kind}: {len(found)} entries at {file}:{line}; have: "
          + "; ".join(f"{e['count']}x{e['bytes']}B {fmt_stack(e['stack'], 4)}" for e in doc[kind][:8]))
    return found[0]


# --- the Rust CSV example --------------------------------------------------------

def rust_csv():
    """Builds examples/csv-rust (release, offline) and returns its binary; Skip without cargo."""
    cargo = next((c for c in (os.environ.get("CARGO"), shutil.which("cargo"),
                              os.path.expanduser("~/.cargo/bin/cargo")) if c and os.access(c, os.X_OK)), None)
    if not cargo:
        raise Skip("cargo not installed")
    target = os.path.join(BUILD, "examples", "csv-rust")
    p = run([cargo, "build", "--release", "--offline", "--locked", "-q", "--manifest-path",
             os.path.join(EXAMPLES, "csv-rust", "Cargo.toml")], env=dict(os.environ, CARGO_TARGET_DIR=target))
    check(p.returncode == 0, f"cargo build: {tail(p.stderr)}")
    return os.path.join(target, "release", "heaptrace_csv")


def example_csv():
    """The directory holding examples/gen_csv.py's example.csv (scale 1), made once."""
    d = os.path.join(TMP, "csv")
    if not os.path.exists(os.path.join(d, "example.csv")):
        os.makedirs(d, exist_ok=True)
        p = run([sys.executable, os.path.join(EXAMPLES, "gen_csv.py"), "-o", os.path.join(d, "example.csv")])
        check(p.returncode == 0, f"gen_csv.py: {tail(p.stderr)}")
    return d


# --- valgrind -----------------------------------------------------------------

_VG_TOTAL = re.compile(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated")
_VG_INUSE = re.compile(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks")


def _num(s):
    return int(s.replace(",", ""))


def valgrind(prog, args=(), cwd=None):
    """memcheck's totals for the program: allocs, frees, bytes, in-use bytes and blocks."""
    vg = shutil.which("valgrind")
    if not vg:
        raise Skip("valgrind not installed")
    p = run([vg, "--tool=memcheck", "--leak-check=no", prog, *args], cwd=cwd, timeout=600)
    t, u = _VG_TOTAL.search(p.stderr), _VG_INUSE.search(p.stderr)
    check(t and u, f"no heap summary from valgrind: {tail(p.stderr)}")
    return {"allocations": _num(t.group(1)), "frees": _num(t.group(2)),
            "allocated_bytes": _num(t.group(3)),
            "leaked_bytes": _num(u.group(1)), "leaked_blocks": _num(u.group(2))}


def agrees_with_valgrind(summary, prog, args=(), cwd=None):
    vg = valgrind(prog, args, cwd)
    bad = [f"{k}: heapscope {summary.get(k)} valgrind {v}" for k, v in vg.items() if summary.get(k) != v]
    check(not bad, "; ".join(bad))


# --- the runner ---------------------------------------------------------------

_tests = []


def test(name):
    def register(f):
        _tests.append((name, f))
        return f
    return register


def once(f):
    """Memoizes a zero-argument function; a failure is remembered and raised again."""
    state = {}

    def wrapper():
        if "value" in state:
            return state["value"]
        if "error" in state:
            raise state["error"]
        try:
            state["value"] = f()
        except (Fail, Skip) as e:
            state["error"] = e
            raise
        return state["value"]
    return wrapper


def main():
    file = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    only = sys.argv[1:]
    failed = 0
    for name, f in _tests:
        if only and name not in only:
            continue
        try:
            f()
            print(f"ok   {file}: {name}", flush=True)
        except Skip as e:
            print(f"skip {file}: {name}: {e}", flush=True)
        except Fail as e:
            failed += 1
            print(f"FAIL {file}: {name}: {e}", flush=True)
        except Exception:
            failed += 1
            last = traceback.format_exc().strip().splitlines()[-1]
            print(f"FAIL {file}: {name}: {last}", flush=True)
    sys.exit(1 if failed else 0)
