#!/usr/bin/env python3
"""The library's own stack walk (src/preload/unwind.c) against libunwind's
unw_backtrace, which it replaces on the hot path and falls back to.

Two ways: HEAPSCOPE_UNWIND=check walks every stack both ways in the same
process and counts the stacks that differ (HEAPSCOPE_UNWIND_STATS=1 prints the
counts at exit); and a recording with HEAPSCOPE_UNWIND=fast against one with
=libunwind, whose allocation stacks (module and offset of every frame) must
be the same with the same counts and bytes. The two runs swap the values of
two variables, so the program sees an environment of the same size.
"""
import os
import re

import hstest as T
from hstest import check, eq

STATS = re.compile(r"^heapscope: unwind pid (\d+) (\w+): walked (\d+), fell back: complex (\d+) stack (\d+) "
                   r"cache (\d+) unloading (\d+); rules parsed (\d+) complex (\d+); checked (\d+) differ (\d+)$",
                   re.M)
FIELDS = ("walked", "complex", "stack", "cache", "unloading", "parsed", "parsed_complex", "checked", "differ")
FLAGS = {"O0": ["-O0"], "O2": ["-O2"], "O2-fp": ["-O2", "-fno-omit-frame-pointer"],
         "O2-nofp": ["-O2", "-fomit-frame-pointer"]}


def build(name, flags, extra=(), cxx=False):
    """tests/programs/NAME with these flags (hstest.build compiles at -O2 only)."""
    src = T.source_of(name)
    out = os.path.join(T.TMP, f"{name}-{'-'.join(f.lstrip('-') for f in flags)}")
    if not os.path.exists(out):
        cc = os.environ.get("CXX", "g++") if cxx else os.environ.get("CC", "cc")
        p = T.run([cc, *flags, "-g", "-o", out, src, *extra])
        check(p.returncode == 0, f"cannot compile {name} {flags}: {T.tail(p.stderr)}")
    return out


def record(prog, args=(), mode="fast", stats=False, cwd=None, env=None):
    """heapscope record with HEAPSCOPE_UNWIND=mode; returns (trace, process)."""
    T.need_heapscope()
    e = dict(os.environ, **(env or {}))
    e["HEAPSCOPE_UNWIND"] = mode
    e["HEAPSCOPE_UNWIND_PEER"] = {"fast": "libunwind", "libunwind": "fast"}.get(mode, "")
    e.pop("HEAPSCOPE_UNWIND_STATS", None)
    if stats:
        e["HEAPSCOPE_UNWIND_STATS"] = "1"
    out = os.path.join(T.TMP, f"{os.path.basename(prog)}.{mode}.hst")
    p = T.run([T.HEAPSCOPE, "record", "--force", "-o", out, "--", prog, *args], cwd=cwd, env=e)
    check(p.returncode == 0 and not T.crashed(p), f"record ({mode}) exit {p.returncode}: {T.tail(p.stderr)}")
    return out, p


def stats(p):
    found = STATS.findall(p.stderr)
    eq(len(found), 1, "unwind statistics lines on stderr")
    return dict(zip(FIELDS, (int(v) for v in found[0][2:])))


def checked(prog, args=(), cwd=None, env=None):
    """Every stack walked both ways: none differs, every walk was compared."""
    path, p = record(prog, args, "check", True, cwd, env)
    s = stats(p)
    eq(s["differ"], 0, f"stacks that differ from libunwind's ({s})")
    eq(s["checked"], s["walked"], "walks compared")
    return s, T.report_json(path, "--top", "0")


def stacks(path):
    """Allocation stacks as (module base name, offset) frames -> [count, bytes]."""
    d = T.report_json(path, "--top", "0")
    out = {}
    for e in d["allocations"]:
        key = tuple((os.path.basename(f.get("module") or ""), f.get("offset")) for f in e["stack"])
        c = out.setdefault(key, [0, 0])
        c[0] += e["count"]
        c[1] += e["bytes"]
    return out, d["summary"]


def same_stacks(prog, args=(), cwd=None, env=None, least=1):
    """A recording with the walk and one with libunwind: the same stacks."""
    fast, sf = stacks(record(prog, args, "fast", cwd=cwd, env=env)[0])
    slow, ss = stacks(record(prog, args, "libunwind", cwd=cwd, env=env)[0])
    for k in ("allocations", "frees", "allocated_bytes", "truncated_stacks", "stacks", "dropped_events"):
        eq(sf[k], ss[k], f"summary.{k}, fast against libunwind")
    diff = [k for k in set(fast) | set(slow) if fast.get(k) != slow.get(k)]
    check(not diff, f"{len(diff)} of {len(fast)} stacks differ; first: "
          + "; ".join(f"{fast.get(k)} against {slow.get(k)}: {k[:6]}" for k in diff[:2]))
    check(len(fast) >= least, f"{len(fast)} distinct stacks, want at least {least}")
    return fast, sf


def calls(s):
    """Stacks captured: an allocation's or a mapping call's."""
    return s["allocations"] + sum(s["map_calls"].values())


# ---- C, each optimisation level, with and without frame pointers ---------

for level, flags in FLAGS.items():
    @T.test(f"plain C {level}: every stack walked, none falls back, all equal to libunwind's")
    def _(flags=flags):
        prog = build("unwind_cases", flags, ["-pthread"])
        s, d = checked(prog, ["plain"])
        eq({k: s[k] for k in ("complex", "stack", "cache", "unloading")},
           {"complex": 0, "stack": 0, "cache": 0, "unloading": 0}, "fallbacks")
        eq(s["walked"], calls(d["summary"]), "walks, against the stacks in the trace")
        # the deepest recursion (294 frames) is cut at 256 frames, like libunwind's
        check(d["summary"]["truncated_stacks"] > 0, "no truncated stack from the deep recursion")
        same_stacks(prog, ["plain"], least=40)

    for part, n, what in (("realign", 40, "a realigned stack (DRAP)"), ("signal", 30, "a signal handler")):
        @T.test(f"{what}, C {level}: each of its {n} stacks falls back (a complex frame)")
        def _(flags=flags, part=part, n=n):
            prog = build("unwind_cases", flags, ["-pthread"])
            s, _ = checked(prog, [part, str(n)])
            eq(s["complex"], n, "stacks handed to libunwind for a complex frame")
            same_stacks(prog, [part, str(n)])


@T.test("threads: 4 threads walk and fill one cache; none differs from libunwind")
def _():
    prog = build("unwind_cases", FLAGS["O2"], ["-pthread"])
    s, d = checked(prog, ["threads", "3000"])
    eq((s["complex"], s["stack"]), (0, 0), "fallbacks for a complex frame or the stack bounds")
    eq(s["walked"] + s["cache"], calls(d["summary"]), "walks and cache fallbacks, against the stacks")
    same_stacks(prog, ["threads", "3000"], least=8)


for level in ("O0", "O2"):
    @T.test(f"C++ exceptions {level}: allocations while throwing, unwinding and catching")
    def _(level=level):
        prog = build("unwind_exc", FLAGS[level], cxx=True)
        s, _ = checked(prog)
        # only libstdc++'s start-up allocation: ld.so's entry has no FDE
        check(s["complex"] <= 1, f"{s['complex']} stacks fell back, want at most 1")
        same_stacks(prog, least=20)


@T.test("python3 (PYTHONMALLOC=malloc): the same stacks as libunwind's")
def _():
    env = {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}
    script = os.path.join(T.ROOT, "bench", "workloads", "pydict.py")
    s, _ = checked("/usr/bin/python3", [script, "2000"], env=env)
    eq(s["complex"], 0, "stacks that fell back")
    same_stacks("/usr/bin/python3", [script, "2000"], env=env, least=1000)


@T.test("the Rust CSV example: the same stacks as libunwind's")
def _():
    prog, d = T.rust_csv(), T.example_csv()
    s, _ = checked(prog, cwd=d)
    eq(s["complex"], 0, "stacks that fell back")
    same_stacks(prog, cwd=d, least=10)


# ---- dlopen / dlclose ---------------------------------------------------

@T.once
def dl_programs():
    main = build("unwind_dlmain", FLAGS["O2"])
    libs = []
    for name, pad in (("a", 4096), ("b", 8192)):
        out = os.path.join(T.TMP, f"libunwind_dl{name}.so")
        p = T.run([os.environ.get("CC", "cc"), "-O2", "-g", "-shared", "-fPIC", f"-DPAD={pad}", "-o", out,
                   T.source_of("unwind_dllib")])
        check(p.returncode == 0, f"cannot build {out}: {T.tail(p.stderr)}")
        libs.append(out)
    return main, libs


def dl_stacks(path):
    """The stacks of unwind_dl_alloc's allocations: (function, line) frames."""
    d = T.report_json(path, "--top", "0")
    out = []
    for e in d["allocations"]:
        st = [(T.fn(f), f.get("line")) for f in e["stack"] if not f.get("inlined")]
        if st and st[0][0] == "unwind_dl_alloc":
            out.append((e["count"], st[:3]))
    return sorted(out, key=lambda x: x[1][-1][1] or 0)


@T.test("dlopen, dlclose, another library at the same address: its frames are walked with its own rules")
def _():
    main, libs = dl_programs()
    ml, mm = T.markers(T.source_of("unwind_dllib")), T.markers(T.source_of("unwind_dlmain"))
    want = [(10, [("unwind_dl_alloc", ml["dl_alloc"]), ("use", mm["use"]), ("main", mm["use_a"])]),
            (10, [("unwind_dl_alloc", ml["dl_alloc"]), ("use", mm["use"]), ("main", mm["use_b"])])]
    path, p = record(main, libs, "fast", stats=True)
    eq(p.stdout, "unwind_dlmain: same address yes\n", "program output (the second library must reuse the "
       "first one's address for this test to mean anything)")
    s = stats(p)
    eq((s["complex"], s["stack"]), (0, 0), "fallbacks")
    eq(dl_stacks(path), want, "the two libraries' allocation stacks")
    # libunwind's own cache keeps the first library's rules (see RESULTS.md):
    # its stacks are compared for the first library only
    slow = dl_stacks(record(main, libs, "libunwind")[0])
    eq([x for x in slow if x[1][-1] == ("main", mm["use_a"])], want[:1], "libunwind's stacks of the first library")


if __name__ == "__main__":
    T.main()
