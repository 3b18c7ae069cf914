#!/usr/bin/env python3
"""heapscope export: known.c in every format, each read back by its own consumer
(protoc for pprof, ms_print for massif, speedscope's importer when installed)
with the exact totals of the model."""
import base64
import codecs
import gzip
import json
import os
import re
import shutil
import subprocess

import hstest as T
from hstest import check, eq

SRC = T.source_of("known")
M = T.markers(SRC)
MiB = 1 << 20
PROTO_DIR = os.path.join(T.ROOT, "proto")

# known.c's totals (see its header), per model metric
TOTALS = {"peak": 3 * MiB, "leaked": 480, "allocations": 127, "temporary": 25,
          "bytes": 25 * 200 + 3 * MiB + 100 * 48}


@T.once
def prog():
    return T.build("known")


@T.once
def trace():
    path, _ = T.record(prog())
    return path


OUTPUTS = set()


def export(fmt, *opts, name=None):
    """Runs `heapscope export TRACE --format FMT -o OUT OPTS`; returns OUT."""
    out = os.path.join(T.TMP, name or f"known.{fmt}")
    OUTPUTS.add(out)
    p = T.run([T.HEAPSCOPE, "export", trace(), "--format", fmt, "-o", out, *opts])
    check(not T.crashed(p), f"export {fmt} crashed: {T.tail(p.stderr)}")
    check(p.returncode == 0, f"export {fmt} exit {p.returncode}: {T.tail(p.stderr)}")
    check(os.path.exists(out), f"export {fmt} wrote no {out}")
    return out


# --- pprof -------------------------------------------------------------------

def parse_text_proto(text):
    """protoc --decode's text format as nested dicts of lists."""
    root, stack = {}, []
    cur = root
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.endswith("{"):
            d = {}
            cur.setdefault(line[:-1].strip(), []).append(d)
            stack.append(cur)
            cur = d
        elif line == "}":
            cur = stack.pop()
        else:
            k, v = line.split(":", 1)
            v = v.strip()
            if v.startswith('"'):
                v = codecs.escape_decode(v[1:-1].encode())[0].decode("utf-8", "replace")
            elif v in ("true", "false"):
                v = v == "true"
            else:
                v = int(v)
            cur.setdefault(k, []).append(v)
    return root


def one(d, k, default=0):
    return d.get(k, [default])[0]


@T.once
def pprof():
    protoc = shutil.which("protoc")
    if not protoc:
        raise T.Skip("protoc not installed (Debian: protobuf-compiler)")
    with open(export("pprof"), "rb") as f:
        raw = f.read()
    eq(raw[:2], b"\x1f\x8b", "pprof file starts with the gzip magic")
    p = subprocess.run([protoc, "--decode", "perftools.profiles.Profile", f"--proto_path={PROTO_DIR}",
                        "profile.proto"], input=gzip.decompress(raw), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=T.TIMEOUT)
    check(p.returncode == 0, f"protoc --decode failed: {T.tail(p.stderr.decode(errors='replace'))}")
    prof = parse_text_proto(p.stdout.decode("utf-8", "replace"))
    strs = prof.get("string_table", [])
    check(strs and strs[0] == "", "string_table[0] is not the empty string")
    prof["_str"] = lambda i: strs[i]
    return prof


def pprof_functions(prof):
    s = prof["_str"]
    return {one(f, "id"): (s(one(f, "name")), s(one(f, "filename"))) for f in prof.get("function", [])}


@T.test("pprof: protoc decodes it and each sample type sums to the model's total")
def _():
    prof = pprof()
    s = prof["_str"]
    types = [(s(one(t, "type")), s(one(t, "unit"))) for t in prof["sample_type"]]
    eq(types, [("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"),
               ("inuse_space", "bytes"), ("peak_objects", "count"), ("peak_space", "bytes"),
               ("temporary_objects", "count"), ("temporary_space", "bytes")], "sample types")
    sums = [0] * len(types)
    for smp in prof["sample"]:
        vals = smp.get("value", [])
        eq(len(vals), len(types), "values per sample")
        sums = [a + b for a, b in zip(sums, vals)]
    got = dict(zip((t for t, _ in types), sums))
    eq(got, {"alloc_objects": 127, "alloc_space": TOTALS["bytes"], "inuse_objects": 10, "inuse_space": 480,
             "peak_objects": 2, "peak_space": 3 * MiB, "temporary_objects": 25, "temporary_space": 5000},
       "sums of the sample values")
    eq(s(one(prof, "default_sample_type")), "peak_space", "default_sample_type")
    eq(one(prof, "period"), 1, "period (every allocation is recorded)")


@T.test("pprof: the leak's location has g inlined in f (Line entries innermost first)")
def _():
    prof = pprof()
    funcs = pprof_functions(prof)
    locs = {one(l, "id"): l for l in prof["location"]}
    leaks = [smp for smp in prof["sample"] if smp["value"][3] == 480]
    eq(len(leaks), 1, "samples with inuse_space 480")
    ids = leaks[0]["location_id"]
    check(all(i in locs for i in ids), "a sample names a location that does not exist")

    def lines(loc):
        return [(funcs[one(ln, "function_id")][0], os.path.basename(funcs[one(ln, "function_id")][1]),
                 one(ln, "line")) for ln in loc.get("line", [])]
    eq(lines(locs[ids[0]]), [("g", "known.c", M["alloc"]), ("f", "known.c", M["call_g"])],
       "the leaf location's lines")
    eq(lines(locs[ids[1]]), [("main", "known.c", M["call_f"])], "the next location")


@T.test("pprof: mappings carry paths and build-ids; locations fall in their mapping")
def _():
    prof = pprof()
    s = prof["_str"]
    maps = {one(m, "id"): m for m in prof["mapping"]}
    exe = [m for m in prof["mapping"] if s(one(m, "filename")) == prog()]
    eq(len(exe), 1, f"mappings of {prog()}")
    eq(one(prof["mapping"][0], "id"), one(exe[0], "id"), "mapping[0] is the main binary")
    readelf = shutil.which("readelf")
    if readelf:
        p = T.run([readelf, "-n", prog()])
        bid = re.search(r"Build ID: ([0-9a-f]+)", p.stdout)
        check(bid, f"readelf shows no build-id for {prog()}")
        eq(s(one(exe[0], "build_id")), bid.group(1), "build_id of the executable's mapping")
    else:
        check(re.fullmatch(r"[0-9a-f]{40}", s(one(exe[0], "build_id"))), "build_id is not a hex GNU build-id")
    for loc in prof["location"]:
        mid = one(loc, "mapping_id")
        if not mid:
            continue
        m = maps.get(mid)
        check(m is not None, f"location {one(loc, 'id')} names mapping {mid}, which does not exist")
        a = one(loc, "address")
        check(one(m, "memory_start") <= a < one(m, "memory_limit"),
              f"location {one(loc, 'id')} at {a:#x} outside its mapping {s(one(m, 'filename'))}")


@T.test("pprof: go tool pprof reads it")
def _():
    go = shutil.which("go")
    if not go:
        raise T.Skip("go not installed")
    path = export("pprof")
    p = T.run([go, "tool", "pprof", "-raw", path])
    check(p.returncode == 0, f"go tool pprof -raw failed: {T.tail(p.stderr)}")
    check("alloc_space" in p.stdout, "go tool pprof shows no alloc_space")


# --- speedscope --------------------------------------------------------------

UNITS = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}


@T.once
def speedscope():
    path = export("speedscope")
    with open(path) as f:
        try:
            return path, json.load(f)
        except ValueError as e:
            raise T.Fail(f"speedscope export is not JSON: {e}")


@T.test("speedscope: the file format's required fields, one profile per metric with exact totals")
def _():
    _, d = speedscope()
    eq(d.get("$schema"), "https://www.speedscope.app/file-format-schema.json", "$schema")
    frames = d.get("shared", {}).get("frames")
    check(isinstance(frames, list) and frames, "shared.frames is not a non-empty list")
    for fr in frames:
        check(isinstance(fr.get("name"), str), f"frame without a string name: {fr!r}")
        check("file" not in fr or isinstance(fr["file"], str), f"frame file is not a string: {fr!r}")
        check("line" not in fr or type(fr["line"]) is int, f"frame line is not a number: {fr!r}")
    profiles = d.get("profiles")
    check(isinstance(profiles, list), "profiles is not a list")
    eq([p.get("name", "").split(":")[0] for p in profiles], list(TOTALS), "profile per metric, in order")
    for p, (metric, total) in zip(profiles, TOTALS.items()):
        for k in ("type", "name", "unit", "startValue", "endValue", "samples", "weights"):
            check(k in p, f"profile {metric} has no {k}")
        eq(p["type"], "sampled", f"{metric} type")
        check(p["unit"] in UNITS, f"{metric} unit {p['unit']!r}")
        eq(p["unit"], "none" if metric in ("allocations", "temporary") else "bytes", f"{metric} unit")
        eq(len(p["samples"]), len(p["weights"]), f"{metric}: samples and weights")
        for st in p["samples"]:
            check(st and all(type(i) is int and 0 <= i < len(frames) for i in st),
                  f"{metric}: a sample is not a list of frame indices: {st!r}")
        check(all(type(w) is int and w > 0 for w in p["weights"]), f"{metric}: weights not positive integers")
        eq(sum(p["weights"]), total, f"{metric}: sum of weights")
        eq((p["startValue"], p["endValue"]), (0, total), f"{metric}: startValue, endValue")
    leaked = profiles[1]
    eq(len(leaked["samples"]), 1, "samples of the leaked profile")
    names = [frames[i]["name"] for i in leaked["samples"][0]]
    eq(names[-3:], ["main", "f", "g"], "the leak's stack, outermost first, ends")
    eq(names[0], "_start", "the leak's stack starts at")


def speedscope_package():
    """The npm package's directory, or None."""
    cands = [os.environ.get("HEAPSCOPE_SPEEDSCOPE", ""), os.path.join(T.ROOT, "node_modules", "speedscope")]
    npm = shutil.which("npm")
    if npm:
        p = T.run([npm, "root", "-g"], timeout=60)
        if p.returncode == 0:
            cands.append(os.path.join(p.stdout.strip(), "speedscope"))
    for c in cands:
        if c and os.path.exists(os.path.join(c, "dist", "release", "index.html")):
            return c
    return None


@T.test("speedscope: the package's schema and importer accept it (headless Chromium)")
def _():
    path, d = speedscope()
    pkg = speedscope_package()
    if not pkg:
        raise T.Skip("the speedscope npm package is not installed (npm install -g speedscope)")
    schema_path = os.path.join(pkg, "dist", "release", "file-format-schema.json")
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema and os.path.exists(schema_path):
        with open(schema_path) as f:
            schema = json.load(f)
        try:
            jsonschema.validate(d, schema)
        except jsonschema.ValidationError as e:
            raise T.Fail(f"speedscope's schema rejects the file: {e.message}")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise T.Skip("chromium not installed")
    # What the package's own command line does: a script that hands the file
    # to speedscope.loadFileFromBase64, named in the page's #localProfilePath.
    loader = os.path.join(T.TMP, "speedscope-load.js")
    with open(path, "rb") as f:
        b64 = base64.b64encode(f.read()).decode()
    with open(loader, "w") as f:
        f.write(f"speedscope.loadFileFromBase64({json.dumps(os.path.basename(path))}, {json.dumps(b64)})")
    url = "file://" + os.path.join(pkg, "dist", "release", "index.html") + "#localProfilePath=" + loader
    p = T.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
               f"--user-data-dir={os.path.join(T.TMP, 'chromium')}", "--virtual-time-budget=10000",
               "--dump-dom", url], timeout=120)
    text = [t.strip() for t in re.sub(r"<[^>]+>", "\n", p.stdout).splitlines() if t.strip()]
    check(f"{os.path.basename(trace())} - speedscope" in text,
          f"speedscope did not load the file (title): {T.tail(p.stderr)}")
    # The profile list: each profile's name and its total weight as speedscope shows it.
    for name, shown in (("leaked: bytes not freed at exit", "480 B"), ("allocations: allocation calls", "127"),
                        ("temporary: temporary allocations", "25"),
                        ("peak: bytes live at the peak heap", "3.00 MB")):
        check(name in text, f"speedscope lists no profile {name!r}")
        i = len(text) - 1 - text[::-1].index(name)
        eq(text[i + 1] if i + 1 < len(text) else None, shown, f"speedscope's total for {name!r}")


# --- massif ------------------------------------------------------------------

@T.once
def ms_print():
    ms = shutil.which("ms_print")
    if not ms:
        raise T.Skip("ms_print not installed (Debian: valgrind)")
    p = T.run([ms, export("massif")])
    check(p.returncode == 0, f"ms_print failed: {T.tail(p.stderr)}")
    return p.stdout


@T.test("massif: ms_print reads it and shows the peak of the report")
def _():
    out = ms_print()
    m = re.search(r"Detailed snapshots: \[(.*)\]", out)
    check(m, "ms_print lists no detailed snapshots")
    peak = re.search(r"(\d+) \(peak\)", m.group(1))
    check(peak, f"no peak snapshot among {m.group(1)}")
    rows = {int(r.group(1)): [int(x.replace(",", "")) for x in r.group(2, 3, 4, 5)]
            for r in re.finditer(r"^\s*(\d+)\s+[\d,.]+\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s*$", out, re.M)}
    eq(rows.get(int(peak.group(1))), [3 * MiB, 3 * MiB, 0, 0], "the peak snapshot's total, useful, extra, stacks")
    eq(max(r[0] for r in rows.values()), 3 * MiB, "the highest snapshot")
    check("100.00% (3,145,728B) (heap allocation functions)" in out, "the peak tree's root is not 3,145,728 B")
    check(re.search(rf"->66\.67% \(2,097,152B\) 0x[0-9A-F]+: main \(known\.c:{M['big2']}\)", out),
          "the peak tree has no 2 MiB entry at main (known.c:big2)")
    check(re.search(rf"->33\.33% \(1,048,576B\) 0x[0-9A-F]+: main \(known\.c:{M['big1']}\)", out),
          "the peak tree has no 1 MiB entry at main (known.c:big1)")


@T.test("massif: the last detailed snapshot is the leaks, g in f in main")
def _():
    out = ms_print()
    tail = out[out.rfind("heap allocation functions"):]
    check("100.00% (480B) (heap allocation functions)" in out, "no tree of 480 B")
    for fn, line in (("g", M["alloc"]), ("f", M["call_g"]), ("main", M["call_f"])):
        check(re.search(rf"\(480B\) 0x[0-9A-F]+: {fn} \(known\.c:{line}\)", tail),
              f"the leak tree has no {fn} (known.c:{line})")


# --- folded and json ---------------------------------------------------------

@T.test("folded: each --metric sums to the model's total; the leak is main;f;g")
def _():
    for metric, total in TOTALS.items():
        with open(export("folded", "--metric", metric, name=f"known.{metric}.folded")) as f:
            lines = f.read().splitlines()
        pairs = [l.rsplit(" ", 1) for l in lines]
        check(all(len(p) == 2 and p[1].isdigit() for p in pairs), f"{metric}: a line is not 'stack value'")
        paths = [p[0] for p in pairs]
        eq(paths, sorted(set(paths)), f"{metric}: lines sorted and unique")
        eq(sum(int(p[1]) for p in pairs), total, f"{metric}: sum of values")
        if metric == "leaked":
            eq(len(lines), 1, "leaked lines")
            check(lines[0].endswith(";main;f;g 480") and lines[0].startswith("_start;"),
                  f"leaked line: {lines[0]!r}")
    with open(export("folded", name="known.default.folded")) as f:
        default = f.read()
    with open(os.path.join(T.TMP, "known.peak.folded")) as f:
        eq(default, f.read(), "folded without --metric (peak)")


@T.test("json: the same bytes as report --json")
def _():
    with open(export("json")) as f:
        got = f.read()
    eq(got, T.report(trace(), "--json").stdout, "export --format json vs report --json")


# --- errors ------------------------------------------------------------------

@T.test("errors: one line, what to do, the right exit status, no half-written file")
def _():
    T.need_heapscope()
    cases = [(["--format", "xml", "-o", "x"], 2, "unknown format"),
             ([], 2, "no --format"),
             (["--format", "pprof", "--metric", "peak", "-o", "x"], 2, "--metric is for"),
             (["--format", "folded", "--metric", "nope"], 2, "unknown metric")]
    for args, rc, what in cases:
        p = T.run([T.HEAPSCOPE, "export", trace(), *args])
        eq(p.returncode, rc, f"exit status of export {' '.join(args)}")
        eq(len(p.stderr.splitlines()), 1, f"stderr lines of export {' '.join(args)}")
        check(p.stderr.startswith("heapscope: ") and what in p.stderr, f"message: {p.stderr!r}")
    p = T.run([T.HEAPSCOPE, "export", os.path.join(T.TMP, "missing.hst"), "--format", "json"])
    eq(p.returncode, 1, "exit status for a missing trace")
    check(p.stderr.startswith("heapscope: ") and "heapscope record" in p.stderr, f"message: {p.stderr!r}")
    bad = os.path.join(T.TMP, "no-such-dir", "out.pb.gz")
    p = T.run([T.HEAPSCOPE, "export", trace(), "--format", "pprof", "-o", bad])
    eq(p.returncode, 1, "exit status when the output cannot be created")
    eq(len(p.stderr.splitlines()), 1, "stderr lines")
    check(not os.path.exists(os.path.dirname(bad)), "a directory was made")
    out = os.path.join(T.TMP, "stdout.folded")
    with open(out, "w") as f:
        p = subprocess.run([T.HEAPSCOPE, "export", trace(), "--format", "folded", "--metric", "leaked"],
                           stdout=f, stderr=subprocess.PIPE, timeout=T.TIMEOUT)
    eq(p.returncode, 0, "export to standard output")
    with open(out) as f:
        check(f.read().endswith(";main;f;g 480\n"), "folded on standard output")
    # an export is written to OUT.XXXXXX, then renamed to OUT
    leftovers = [n for n in os.listdir(T.TMP) if n[-7:-6] == "." and os.path.join(T.TMP, n[:-7]) in OUTPUTS]
    eq(leftovers, [], "temporary files left next to the exports")


T.main()
