#!/usr/bin/env python3
"""A/B of heapscope builds on the seed's 12 k-line CSV, rounds alternating.

usage: bench/seed_ab.py ROUNDS [--rt] [--no-cache] NAME=DIR [NAME=DIR ...]

Each DIR holds a heapscope binary and its libheapscope.so. Needs what
`make bench` built in build/bench (benchrun, procstat.so, the CSV input) and
the seed program. Each round runs the plain program, then every build's
`heapscope record -f -o T.hst -- PROGRAM` (in reverse order every other
round), each build with a symbol cache of its own warmed by one run first.
--rt runs each command at real-time priority (chrt -f 10): the machine's
other work no longer takes its CPUs, but its own threads no longer preempt
each other. Prints, per build, the median (min) of the wall time, the CPU of
all processes, of the recorder and of the program, and the wall ratio to
plain.
"""
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W = os.path.join(ROOT, "build", "bench")
PROG = os.path.join(ROOT, "build", "examples", "csv-rust", "release", "heaptrace_csv")
RUN_DIR = os.path.join(W, "in", "csv1")


def fail(msg):
    print("seed_ab: " + msg, file=sys.stderr)
    sys.exit(2)


def main():
    args = sys.argv[1:]
    if not args or not args[0].isdigit():
        fail("usage: bench/seed_ab.py ROUNDS [--rt] [--no-cache] NAME=DIR ...")
    rounds = int(args.pop(0))
    rt = "--rt" in args
    extra = [a for a in args if a == "--no-cache"]
    builds = [a.split("=", 1) for a in args if "=" in a]
    if not builds:
        fail("no build given; for example base=/path/to/dir")
    for need in (os.path.join(W, "bin", "benchrun"), os.path.join(W, "bin", "procstat.so"), PROG, RUN_DIR):
        if not os.path.exists(need):
            fail(f"{need} is missing: run 'make bench' first")
    scratch = tempfile.mkdtemp(prefix="seed_ab.")
    prefix = ["chrt", "-f", "10"] if rt else []

    def run(cmd, env=None):
        stat = os.path.join(scratch, "procstat")
        if os.path.exists(stat):
            os.unlink(stat)
        out = subprocess.run(prefix + [os.path.join(W, "bin", "benchrun"), "-C", RUN_DIR, "-p",
                                       os.path.join(W, "bin", "procstat.so"), "-s", stat, "--"] + cmd,
                             capture_output=True, text=True, env=env).stdout
        m = dict(kv.split("=", 1) for kv in out.split())
        if m.get("status") != "0":
            fail(f"{' '.join(cmd)}: {out.strip()}")
        procs = [dict(kv.split("=", 1) for kv in line.split()) for line in open(stat)]
        cpu = lambda p: (int(p["utime_us"]) + int(p["stime_us"])) / 1e3
        rec = sum(cpu(p) for p in procs if p["comm"] == "heapscope")
        prog = sum(cpu(p) for p in procs if p["comm"] != "heapscope")
        return int(m["wall_ns"]) / 1e6, (int(m["user_us"]) + int(m["sys_us"])) / 1e3, rec, prog

    envs, res = {}, {"plain": []}
    for name, d in builds:
        cache = os.path.join(scratch, "cache-" + name)
        os.makedirs(cache)
        envs[name] = dict(os.environ, XDG_CACHE_HOME=cache)
        res[name] = []
    record = lambda name, d: [os.path.join(d, "heapscope"), "record"] + extra + \
        ["-f", "-o", os.path.join(scratch, name + ".hst"), "--", PROG]
    for name, d in builds:
        run(record(name, d), envs[name])
    for r in range(rounds):
        res["plain"].append(run([PROG]))
        for name, d in (builds if r % 2 == 0 else builds[::-1]):
            res[name].append(run(record(name, d), envs[name]))
    plain = statistics.median(x[0] for x in res["plain"])
    print(f"{rounds} rounds{' at real-time priority' if rt else ''}{' --no-cache' if extra else ''}; "
          "ms, median (min): wall, CPU of all, recorder, program; wall over plain")
    for name, v in res.items():
        cols = "  ".join("%6.1f (%5.1f)" % (statistics.median(x[i] for x in v), min(x[i] for x in v))
                         for i in range(4))
        print("%-10s %s  %.2fx" % (name, cols, statistics.median(x[0] for x in v) / plain))
    subprocess.run(["rm", "-rf", scratch])


main()
